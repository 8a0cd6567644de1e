"""An SVG chart of a benchmark report: one panel per group, one bar per figure (median, with
a min-max whisker), on a log scale when a panel spans more than a decade. No dependencies."""

from __future__ import annotations

import math
from html import escape

WIDTH = 960
LABEL_WIDTH = 330
VALUE_WIDTH = 130
BAR_HEIGHT = 18
BAR_GAP = 8
PANEL_GAP = 34
TOP = 48
DETAIL_SUFFIXES = ("-cpu", "-insns", "-exits")  # where-the-time-goes groups: in the table and JSON only
MISSING_LINE_CHARS = 150
COLORS = ["#3b6ea8", "#d9822b", "#5a9e4b", "#b8474b", "#7d5ba6", "#8c6d46", "#4aa3a2"]


def _scale(values: list[float]):
    """value -> fraction of the bar area; log when the spread is over 10x."""
    low, high = min(values), max(values)
    if low > 0 and high / low > 10:
        floor = 10 ** math.floor(math.log10(low))
        span = math.log10(high) - math.log10(floor)
        return lambda v: max(0.02, (math.log10(max(v, floor)) - math.log10(floor)) / span), "log scale"
    return lambda v: max(0.02, v / high if high else 0), "linear scale"


def render_svg(report, title: str) -> str:
    groups: dict[str, list] = {}
    for figure in report.figures:
        if not figure.group.endswith(DETAIL_SUFFIXES):
            groups.setdefault(figure.group, []).append(figure)
    bar_area = WIDTH - LABEL_WIDTH - VALUE_WIDTH - 20
    parts, y = [], TOP
    for group_index, (group, figures) in enumerate(groups.items()):
        units = sorted({f.unit for f in figures})
        parts.append(f'<text x="10" y="{y}" class="group">{escape(group)} ({escape(", ".join(units))})</text>')
        y += 10
        by_unit = {unit: _scale([f.median for f in figures if f.unit == unit] +
                                [max(f.samples) for f in figures if f.unit == unit]) for unit in units}
        for figure in figures:
            scale, kind = by_unit[figure.unit]
            color = COLORS[group_index % len(COLORS)]
            length = scale(figure.median) * bar_area
            low, high = scale(min(figure.samples)) * bar_area, scale(max(figure.samples)) * bar_area
            middle = y + BAR_HEIGHT / 2
            parts += [
                f'<text x="{LABEL_WIDTH - 8}" y="{middle + 4}" class="label">{escape(figure.name)}</text>',
                f'<rect x="{LABEL_WIDTH}" y="{y}" width="{length:.1f}" height="{BAR_HEIGHT}" fill="{color}"/>',
                f'<line x1="{LABEL_WIDTH + low:.1f}" x2="{LABEL_WIDTH + high:.1f}" y1="{middle}" y2="{middle}" '
                f'class="whisker"/>',
                f'<text x="{LABEL_WIDTH + bar_area + 8}" y="{middle + 4}" class="value">'
                f'{figure.median:.3g} {escape(figure.unit)}</text>',
            ]
            y += BAR_HEIGHT + BAR_GAP
        parts.append(f'<text x="{LABEL_WIDTH}" y="{y + 4}" class="note">{kind}; whiskers: min-max</text>')
        y += PANEL_GAP
    for missing in report.missing:
        text = f"missing: {missing.name}: {missing.why}"
        while text:
            parts.append(f'<text x="10" y="{y}" class="note">{escape(text[:MISSING_LINE_CHARS])}</text>')
            text, y = text[MISSING_LINE_CHARS:], y + 16
    style = (
        "text{font-family:sans-serif;font-size:13px;fill:#222}.group{font-weight:bold;font-size:14px}"
        ".label{text-anchor:end}.note{font-size:11px;fill:#666}.whisker{stroke:#111;stroke-width:1.5}"
        ".title{font-size:16px;font-weight:bold}"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y + 10}" viewBox="0 0 {WIDTH} {y + 10}">'
        f'<style>{style}</style><rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="24" class="title">{escape(title)}</text>' + "".join(parts) + "</svg>\n"
    )
