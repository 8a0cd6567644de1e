"""The x87 and AVX2 compute rows of `kvmpy bench`: the same block runs in the interpreter (the
PVH loop guest, patched) and on the host, and the interpreter's result is the loop finishing."""

import pytest

from kvmpy.bench.isa_compute import BLOCKS, run_isa_compute
from kvmpy.bench.report import Report
from kvmpy.interp.platform import IMPLEMENTED

pytestmark = pytest.mark.isa


def test_each_block_is_measured_where_it_runs_and_reported_missing_where_not(monkeypatch):
    monkeypatch.setattr("kvmpy.bench.isa_compute.qemu_tcg_ns_per_iteration", lambda *args: None)
    report = Report()
    run_isa_compute(report, 1, 2000, progress=lambda message: None)
    names = {figure.name: figure for figure in report.figures}
    for name, (_, _, _, feature) in BLOCKS.items():
        assert names[f"{name} block on the host"].median > 0
        if feature in IMPLEMENTED:
            assert names[f"{name} block, kvmpy interpreter"].median > 0
        else:
            assert any(m.name == f"{name} block, interpreter" for m in report.missing)
        assert any(m.name == f"{name} block, QEMU TCG" for m in report.missing)
