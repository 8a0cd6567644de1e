"""The benchmark report's table, JSON and chart, from made-up figures."""

import json
import xml.etree.ElementTree as ElementTree

from kvmpy.bench.chart import render_svg
from kvmpy.bench.report import Figure, Missing, Ratio, Report


def sample_report() -> Report:
    report = Report()
    report.figures += [
        Figure("compute", "ring-0 loop, kvmpy interpreter", "MIPS", [95.0, 97.0, 99.0]),
        Figure("compute", "ring-0 loop, KVM (host emulation here)", "MIPS", [1.7, 1.8, 4.4]),
        Figure("exits", "port-I/O exit round trip, C loop", "µs/exit", [25.0, 26.0]),
    ]
    report.ratios.append(Ratio("interpreter / host's ring-0 emulation", 53.9, ">= 20x", True))
    report.missing.append(Missing("QEMU TCG", "not installed"))
    return report


def test_figures_summarise_their_samples():
    figure = sample_report().figures[1]
    assert figure.median == 1.8 and figure.as_dict()["min"] == 1.7 and figure.as_dict()["max"] == 4.4


def test_table_lists_every_figure_ratio_and_missing_baseline():
    table = sample_report().table()
    assert "ring-0 loop, kvmpy interpreter" in table and "97" in table
    assert "53.9" in table and ">= 20x" in table and "yes" in table
    assert "missing: QEMU TCG: not installed" in table


def test_json_round_trips(tmp_path):
    path = tmp_path / "bench.json"
    sample_report().write_json(str(path))
    data = json.loads(path.read_text())
    assert [f["name"] for f in data["figures"]][0] == "ring-0 loop, kvmpy interpreter"
    assert data["ratios"][0]["met"] is True and data["missing"][0]["name"] == "QEMU TCG"


def test_chart_is_valid_svg_with_a_bar_per_figure_on_a_log_scale_when_needed():
    svg = render_svg(sample_report(), "test chart")
    root = ElementTree.fromstring(svg)
    namespace = "{http://www.w3.org/2000/svg}"
    bars = root.findall(f"{namespace}rect")[1:]  # the first rect is the background
    assert len(bars) == 3
    texts = [element.text for element in root.iter(f"{namespace}text")]
    assert "log scale; whiskers: min-max" in texts  # 1.8 vs 99 MIPS spans more than a decade
    widths = [float(bar.get("width")) for bar in bars[:2]]
    assert widths[0] > widths[1] > 0
