"""Run kvmpy's coverage-guided fuzz targets and report what they did.

    python tests/fuzz/run.py --minutes 10              # every target, 10 minutes each
    python tests/fuzz/run.py --seconds 30 elf virtio_blk interp
    python tests/fuzz/run.py --minutes 10 --jobs 2 --json fuzz.json

Each target runs in a process of its own: atheris for the Python targets (tests/fuzz/targets/),
the libFuzzer binary for the interpreter (tests/fuzz/native/).  A run starts from the target's
seed corpus (tests/fuzz/corpus/TARGET/) and its regressions (tests/fuzz/regressions/TARGET/),
and grows a working corpus under ~/.cache/kvmpy/fuzz/corpus/TARGET/ that the next run starts
from.  A crash, hang (an input running over --input-timeout seconds) or out-of-memory leaves
its input under ~/.cache/kvmpy/fuzz/crashes/; copy it to tests/fuzz/regressions/TARGET/ to
keep it as a regression test once it is fixed.

The table gives executions, executions per second, coverage (libFuzzer's `cov`: edges of
kvmpy's code reached) and features (`ft`).  --json writes the same as a list of objects.
Exit status: 0 when every target ran clean, 1 when one crashed, hung or ran out of memory,
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]  # the targets, and this checkout's kvmpy

from native.build import CACHE, Unavailable, interp_binary  # noqa: E402
from targets import ALL_TARGETS, NATIVE_TARGETS  # noqa: E402

SEEDS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"
ARTIFACT_KINDS = ("crash", "timeout", "oom", "leak")  # libFuzzer's artifact file prefixes
RSS_LIMIT_MB = 2048
_STATS = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


@dataclasses.dataclass
class Result:
    target: str
    seconds: float
    status: str  # "ok", one of ARTIFACT_KINDS, "failed" (no artifact), or "unavailable"
    executions: int = 0
    coverage: int = 0
    features: int = 0
    corpus: int = 0
    artifact: str | None = None
    detail: str = ""  # the reason a target is unavailable, or the end of a failed run's log

    @property
    def per_second(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return self.status in ("ok", "unavailable")


def command(target: str) -> list[str]:
    """How to start `target`'s fuzzer (before libFuzzer's options)."""
    if target in NATIVE_TARGETS:
        return [str(interp_binary())]
    return [sys.executable, str(HERE / "harness.py"), target]


def corpus_directories(target: str) -> list[pathlib.Path]:
    """The working corpus (written to) first, then the read-only seeds and regressions."""
    work = CACHE / "corpus" / target
    work.mkdir(parents=True, exist_ok=True)
    return [work] + [d for d in (SEEDS / target, REGRESSIONS / target) if d.is_dir()]


def run_target(target: str, seconds: float, input_timeout: int = 20) -> Result:
    """Fuzz `target` for `seconds` (wall clock, start-up excluded by libFuzzer) and report."""
    try:
        argv = command(target)
    except Unavailable as why:
        return Result(target, 0.0, "unavailable", detail=str(why))
    crashes = CACHE / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    before = set(crashes.iterdir())
    argv += [f"-max_total_time={max(1, round(seconds))}", f"-timeout={input_timeout}",
             f"-rss_limit_mb={RSS_LIMIT_MB}", "-print_final_stats=1", f"-artifact_prefix={crashes}/{target}-"]
    argv += [str(d) for d in corpus_directories(target)]
    started = time.monotonic()
    process = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                             env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0"})
    elapsed = time.monotonic() - started
    log = process.stderr + process.stdout
    artifacts = sorted(set(crashes.iterdir()) - before)
    result = Result(target, elapsed, "ok" if process.returncode == 0 else "failed")
    stats = _STATS.findall(log)
    if stats:
        _, cov, ft, corp = stats[-1]
        result.coverage, result.features, result.corpus = int(cov), int(ft), int(corp)
    executions = _EXECS.findall(log)
    result.executions = int(executions[-1]) if executions else 0
    if process.returncode != 0:
        result.detail = log[-4000:]
        for artifact in artifacts:
            kind = artifact.name[len(target) + 1 :].split("-")[0]
            if kind in ARTIFACT_KINDS:
                result.status, result.artifact = kind, str(artifact)
                break
    return result


def replay(target: str, inputs: list[pathlib.Path]) -> subprocess.CompletedProcess:
    """Run `target` once over each of `inputs` (a regression check); raises Unavailable."""
    argv = command(target) + [f"-rss_limit_mb={RSS_LIMIT_MB}"] + [str(path) for path in inputs]
    return subprocess.run(argv, capture_output=True, text=True, errors="replace",
                          env={**os.environ, "ASAN_OPTIONS": "detect_leaks=0"})


def table(results: list[Result]) -> str:
    lines = [f"{'target':<16} {'seconds':>8} {'executions':>11} {'exec/s':>8} {'cov':>6} {'ft':>7} {'corpus':>7}  result"]
    for r in results:
        outcome = r.status if r.status != "unavailable" else f"unavailable: {r.detail}"
        if r.artifact:
            outcome += f" ({r.artifact})"
        lines.append(f"{r.target:<16} {r.seconds:>8.1f} {r.executions:>11} {r.per_second:>8.0f} {r.coverage:>6} "
                     f"{r.features:>7} {r.corpus:>7}  {outcome}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="how long each target runs (default: 10 seconds)")
    length.add_argument("--seconds", type=float, help="how long each target runs, in seconds")
    parser.add_argument("--jobs", type=int, default=1, help="targets run at the same time (default 1)")
    parser.add_argument("--input-timeout", type=int, default=20, help="seconds one input may take (a hang)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: all of {', '.join(ALL_TARGETS)}")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in ALL_TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; the targets are {', '.join(ALL_TARGETS)}")
    seconds = args.minutes * 60 if args.minutes is not None else args.seconds if args.seconds is not None else 10
    targets = args.targets or list(ALL_TARGETS)
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: run_target(t, seconds, args.input_timeout), targets))
    print(table(results))
    for failed in (r for r in results if not r.clean):
        print(f"\n--- {failed.target}: {failed.status}\n{failed.detail}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as out:
            json.dump([{**dataclasses.asdict(r), "exec_per_second": round(r.per_second, 1)} for r in results],
                      out, indent=2)
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
