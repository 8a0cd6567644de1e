"""kvmpy.bench.io without a VM: the guest script, parsing what it prints, the marks, and how
runs become figures (the empty workload subtracted, failures reported, the eventfd caveat)."""

import re

import pytest

from kvmpy.bench import io
from kvmpy.bench.report import Report
from kvmpy.linux import command_cmdline

MiB = 1 << 20


@pytest.mark.parametrize("sizes", [io.QUICK_SIZES, io.FULL_SIZES])
def test_the_guest_script_fits_the_kernel_command_line(sizes):
    cmdline = command_cmdline(io.guest_script(sizes))
    # 2048 bytes on x86, with room for the virtio_mmio.device= entries the VMM appends
    assert len(cmdline) < 1800


def test_the_guest_script_runs_every_workload_between_its_marks():
    script = io.guest_script(io.QUICK_SIZES)
    runs = re.findall(r"^r (\d+) (\S+) ", script, re.MULTILINE)
    assert [(int(mark), name) for mark, name in runs] == [(mark, name) for name, mark in io.PHASES.items()]
    assert "iflag=direct" in script and "oflag=direct" in script
    assert f"seek={io.MARK_PORT} " in script
    assert f"count={io.QUICK_SIZES.disk_mib} " in script  # bs=1M


def test_block_sizes():
    assert io._bytes("1M") == MiB and io._bytes("128k") == 128 << 10 and io._bytes("512") == 512
    with pytest.raises(ValueError):
        io._bytes("1G")


def test_results_are_parsed_from_the_command_output():
    output = ("noise\nIO empty 0 0 100.000000 100.010000\n"
              "IO blk-read 0 16777216 100.500000 100.600000\n"
              "IO tcp-in 1 8388608 101.000000 103.000000\n")
    results = io.parse_results(output)
    assert set(results) == {"empty", "blk-read", "tcp-in"}
    assert results["blk-read"].nbytes == 16 * MiB
    assert results["blk-read"].seconds == pytest.approx(0.1)
    assert results["blk-read"].mib_per_s == pytest.approx(160)
    assert results["tcp-in"].status == 1


def test_marks_snapshot_the_counters():
    counter = {"exits": 0}
    marks = io.PhaseMarks(lambda: dict(counter))
    marks.write(0, 1, 4)
    counter["exits"] = 30
    marks.write(0, 1, 5)
    seconds, deltas = marks.between(4)
    assert seconds >= 0 and deltas == {"exits": 30}
    assert marks.between(6) is None
    assert marks.read(0, 1) == 0


def test_a_timed_device_forwards_and_adds_up_its_time():
    class Registers:
        def __init__(self):
            self.written = []

        def read(self, offset, size):
            return offset + size

        def write(self, offset, size, value):
            self.written.append((offset, size, value))

    inner = Registers()
    timed = io.TimedDevice(inner)
    assert timed.read(8, 4) == 12
    timed.write(0x50, 4, 1)
    assert inner.written == [(0x50, 4, 1)] and timed.ns > 0


def test_thread_cpu_time_by_role():
    totals = io.thread_cpu_ns()
    assert set(totals) == {"vcpu_cpu_ns", "device_threads_cpu_ns", "other_cpu_ns"}
    assert totals["other_cpu_ns"] > 0  # this thread


def counters(exits, instructions=0, vcpu_ms=0, device_ms=0, on_vcpu_ms=0):
    return {"exits": exits, "instructions": instructions, "vcpu_cpu_ns": vcpu_ms * 10**6,
            "device_threads_cpu_ns": device_ms * 10**6, "device_on_vcpu_ns": on_vcpu_ms * 10**6, "other_cpu_ns": 0}


def kvmpy_run(path="exit", accel="interp"):
    phases = {
        "empty": io.PhaseResult("empty", 0, 0, 0.5),
        "blk-read": io.PhaseResult("blk-read", 0, 16 * MiB, 1.5),
        "tcp-out": io.PhaseResult("tcp-out", 0, 4 * MiB, 4.5),
    }
    costs = {
        "empty": (0.6, counters(10, 1000, vcpu_ms=500)),
        "blk-read": (1.6, counters(10 + 16 * 7, 1000 + 16 * 250_000, vcpu_ms=500 + 16 * 6, on_vcpu_ms=16)),
        "tcp-out": (4.6, counters(10 + 4 * 200, 1000, vcpu_ms=500 + 4 * 150, device_ms=4 * 20)),
    }
    return io.RunResult(phases, costs, path=path, accel=accel)


def figures_by_name(report):
    return {(figure.group, figure.name, figure.unit): figure for figure in report.figures}


def test_runs_become_throughput_and_cost_figures_less_the_empty_workload():
    results = io.IoResults()
    results.add("kvmpy exit", kvmpy_run(), uploads=[4 * MiB])
    report = Report()
    results.into(report)
    figures = figures_by_name(report)
    assert figures["io", "kvmpy exit: blk-read", "MiB/s"].samples == [pytest.approx(16.0)]
    assert figures["io", "kvmpy exit: tcp-out", "MiB/s"].samples == [pytest.approx(1.0)]
    assert "interp accelerator, exit path" in figures["io", "kvmpy exit: blk-read", "MiB/s"].note
    assert figures["io-exits", "kvmpy exit: blk-read", "exits/MiB"].samples == [pytest.approx(7)]
    assert figures["io-insns", "kvmpy exit: blk-read", "M insns/MiB"].samples == [pytest.approx(0.25)]
    assert figures["io-cpu", "kvmpy exit: blk-read: total", "CPU ms/MiB"].samples == [pytest.approx(6)]
    assert figures["io-cpu", "kvmpy exit: blk-read: in virtio code", "CPU ms/MiB"].samples == [
        pytest.approx(1)]
    assert figures["io-cpu", "kvmpy exit: tcp-out: in virtio code", "CPU ms/MiB"].samples == [
        pytest.approx(20)]
    assert "kvmpy exit: tcp-out" not in {f.name for f in report.figures if f.group == "io-insns"}
    assert not [m for m in report.missing if m.name == "io"]


def test_the_eventfd_caveat_is_reported_when_no_kvmpy_run_took_the_eventfd_path():
    for path, caveat in (("exit", True), ("eventfd", False)):
        results = io.IoResults()
        results.add("kvmpy eventfd", kvmpy_run(path=path, accel="interp" if caveat else "kvm"), [4 * MiB])
        results.add("kvmpy exit", kvmpy_run(accel="interp" if caveat else "kvm"), [4 * MiB])
        report = Report()
        results.into(report)
        assert any(m.name == "io: kvmpy eventfd path" for m in report.missing) == caveat


def test_failures_are_reported_not_measured():
    run = kvmpy_run()
    run.phases["blk-read"] = io.PhaseResult("blk-read", 1, 16 * MiB, 1.5)
    run.problem = "timeout: the guest was still running"
    results = io.IoResults()
    results.add("kvmpy exit", run, uploads=[123])  # not what the guest sent
    report = Report()
    results.into(report)
    assert not [f for f in report.figures if f.group == "io"]
    problems = " | ".join(m.why for m in report.missing if m.name == "io")
    assert "blk-read failed in the guest" in problems
    assert "did not receive 4194304 bytes" in problems
    assert "timeout" in problems


def test_a_run_without_the_empty_workload_is_a_problem():
    run = kvmpy_run()
    del run.phases["empty"]
    results = io.IoResults()
    results.add("QEMU TCG", run, uploads=[4 * MiB])
    assert results.problems and not results.throughput


def test_the_bench_says_why_when_it_cannot_make_a_network(monkeypatch):
    monkeypatch.setattr(io, "network_unavailable", lambda: "needs root")
    report = Report()
    io.run_io(report, "bzImage", "initrd", quick=True)
    assert not report.figures
    assert [m.why for m in report.missing] == ["the I/O figures need a TAP in a network namespace: needs root"]
