"""Benchmark results: repeated samples summarised as median/min/max, a table, and JSON."""

from __future__ import annotations

import json
import platform
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One measured quantity over several runs."""

    group: str
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def as_dict(self) -> dict:
        return {
            "group": self.group, "name": self.name, "unit": self.unit, "note": self.note,
            "median": self.median, "min": min(self.samples), "max": max(self.samples), "samples": self.samples,
        }  # fmt: skip


@dataclass
class Ratio:
    """A figure against its baseline from the same run, and the target it is judged by."""

    name: str
    value: float
    target: str
    met: bool

    def as_dict(self) -> dict:
        return {"name": self.name, "value": self.value, "target": self.target, "met": self.met}


@dataclass
class Missing:
    """A baseline that could not be measured here, reported rather than faked."""

    name: str
    why: str


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def table(self) -> str:
        lines = [f"{'group':<10} {'figure':<44} {'median':>12} {'min':>12} {'max':>12}  unit"]
        for figure in self.figures:
            lines.append(
                f"{figure.group:<10} {figure.name:<44} {_fmt(figure.median):>12} {_fmt(min(figure.samples)):>12} "
                f"{_fmt(max(figure.samples)):>12}  {figure.unit}"
            )
        if self.ratios:
            lines += ["", f"{'ratio':<56} {'value':>12}  {'target':<18} met"]
            for ratio in self.ratios:
                lines.append(f"{ratio.name:<56} {_fmt(ratio.value):>12}  {ratio.target:<18} {'yes' if ratio.met else 'NO'}")
        for missing in self.missing:
            lines.append(f"missing: {missing.name}: {missing.why}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "machine": {"node": platform.node(), "kernel": platform.release(), "python": platform.python_version()},
            "figures": [f.as_dict() for f in self.figures],
            "ratios": [r.as_dict() for r in self.ratios],
            "missing": [{"name": m.name, "why": m.why} for m in self.missing],
        }

    def write_json(self, path: str) -> None:
        with open(path, "w") as out:
            json.dump(self.as_dict(), out, indent=2)
            out.write("\n")


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 100000:
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return f"{value:.3e}"
