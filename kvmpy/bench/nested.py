"""Figures measured inside the hardware-virtualization lane (kvmpy/nested), where kvmpy's KVM
path runs on an AMD-V KVM: the port-I/O exit round trip in Python vs a C loop, virtio-blk and
TCP throughput over the eventfd and the exit path, Linux to /init and `kvmpy exec -- true`
under KVM vs the interpreter.

The outer side (`run_nested`) boots the lane once and runs this module inside it
(`python -m kvmpy.bench.nested OUT.json [--quick]`), which writes its own report as JSON; the
outer side adds those figures to its report in the group "nested", each name prefixed
"nested:", with the ratios between figures of that same lane run. TCG emulates everything
underneath, so only the ratios mean something: never compare a nested figure with one
measured on the outer host.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

from .report import Figure, Missing, Ratio, Report

GROUP = "nested"
PREFIX = "nested: "
QUICK = {"repeats": 3, "exits": 3_000, "boot_repeats": 1}
FULL = {"repeats": 5, "exits": 10_000, "boot_repeats": 3}
LANE_TIMEOUT = 2400
BOOT_TIMEOUT = 600
BLK_TARGET = 1.5  # eventfd / exit throughput for virtio-blk, from the issue that set up the lane


def measure_inside(quick: bool, progress) -> Report:
    """Inside the lane: the figures, in a report of their own."""
    from . import suite
    from .boot import kvmpy_boot
    from .core import exit_round_trip_c, exit_round_trip_python
    from .io import run_io
    from .oneshot import kvmpy_exec_seconds
    from ..initramfs import ensure_initramfs

    sizes = QUICK if quick else FULL
    report = Report()
    python = Figure(GROUP, "port-I/O exit round trip, Python handler", "µs/exit")
    c_loop = Figure(GROUP, "port-I/O exit round trip, C loop", "µs/exit")
    for repeat in range(sizes["repeats"]):
        progress(f"nested: exits, round {repeat + 1}/{sizes['repeats']}")
        c_loop.samples.append(exit_round_trip_c(sizes["exits"]))
        python.samples.append(exit_round_trip_python(sizes["exits"]))
    report.figures += [python, c_loop]
    kernel = suite.default_kernel()
    if kernel is None:
        report.missing.append(Missing("nested boot and I/O", "no test kernel in the cache (boot/linux/build_kernel.py)"))
        return report
    initrd = str(ensure_initramfs(sys.stderr))
    for accel in ("kvm", "interp"):
        figure = Figure(GROUP, f"kvmpy {accel}: Linux to 'Run /init'", "s")
        for repeat in range(sizes["boot_repeats"]):
            progress(f"nested: boot under {accel}, round {repeat + 1}/{sizes['boot_repeats']}")
            seen, _timer, how = kvmpy_boot(kernel, initrd, accel, BOOT_TIMEOUT)
            if seen is None:
                report.missing.append(Missing(f"nested boot under {accel}", how))
            else:
                figure.samples.append(seen)
        if figure.samples:
            report.figures.append(figure)
    for accel in ("kvm", "interp"):
        figure = Figure(GROUP, f"kvmpy exec -- true ({accel}), wall", "s")
        for repeat in range(sizes["repeats"]):
            progress(f"nested: kvmpy exec under {accel}, round {repeat + 1}/{sizes['repeats']}")
            seconds = kvmpy_exec_seconds(kernel, accel, BOOT_TIMEOUT)
            if seconds is not None:
                figure.samples.append(seconds)
        if figure.samples:
            report.figures.append(figure)
        else:
            report.missing.append(Missing(f"nested kvmpy exec under {accel}", "kvmpy exec -- true did not succeed"))
    io = Report()
    run_io(io, kernel, initrd, quick, progress=progress, include_qemu=False)
    throughput = [figure for figure in io.figures if figure.group == "io"]  # not the per-MiB cost groups
    for figure in throughput:
        figure.group = GROUP
    report.figures += throughput
    report.missing += io.missing
    return report


def lane_ratios(figures: dict[str, Figure]) -> list[Ratio]:
    """The ratios the lane is for, from figures keyed by their names (without the prefix)."""
    ratios = []

    def ratio(name: str, top: str, bottom: str, target: str = "", meets=lambda value: True) -> None:
        if top in figures and bottom in figures:
            value = figures[top].median / figures[bottom].median
            ratios.append(Ratio(PREFIX + name, value, target or "(measured)", meets(value)))

    ratio("exit round trip: Python / C", "port-I/O exit round trip, Python handler",
          "port-I/O exit round trip, C loop", "<= 1.5x", lambda value: value <= 1.5)
    for workload in ("blk-read", "blk-write"):
        ratio(f"virtio-blk {workload[4:]}: eventfd / exit", f"kvmpy eventfd: {workload}", f"kvmpy exit: {workload}",
              f">= {BLK_TARGET}x", lambda value: value >= BLK_TARGET)
    for workload in ("tcp-in", "tcp-out"):
        ratio(f"TCP {workload[4:]}: eventfd / exit", f"kvmpy eventfd: {workload}", f"kvmpy exit: {workload}")
    ratio("Linux to /init: interp / kvm (time)", "kvmpy interp: Linux to 'Run /init'",
          "kvmpy kvm: Linux to 'Run /init'")
    return ratios


def run_nested(report: Report, quick: bool, progress=print) -> None:
    """Boot the lane, measure inside it, and add its figures and ratios to `report`."""
    from ..nested import LaneUnavailable, lane_available, run_in_lane

    available, why = lane_available()
    if not available:
        report.missing.append(Missing("nested lane", why))
        return
    progress("nested: booting the hardware-virtualization lane (QEMU TCG + kvm_amd; several minutes)")
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-nested-") as out:
        path = os.path.join(out, "nested.json")
        command = [sys.executable, "-m", "kvmpy.bench.nested", path, *(["--quick"] if quick else [])]
        def relay(line: str) -> None:  # the inner bench's progress lines, as ours
            if line.startswith("[bench] "):
                progress(line.strip().removeprefix("[bench] "))

        try:
            result = run_in_lane(command, writable=(out,), timeout=LANE_TIMEOUT, echo=relay)
        except LaneUnavailable as error:
            report.missing.append(Missing("nested lane", str(error)))
            return
        if result.status != 0 or not os.path.isfile(path):
            report.missing.append(Missing("nested lane", f"the lane's bench failed (status {result.status}) "
                                                         f"{result.message}: {result.output.strip()[-300:]!r}"))
            return
        with open(path) as file:
            inner = json.load(file)
    figures = {}
    for entry in inner["figures"]:
        figure = Figure(GROUP, PREFIX + entry["name"], entry["unit"], entry["samples"],
                        note=("measured in the nested lane (AMD-V in QEMU TCG); " + entry["note"]).rstrip("; "))
        report.figures.append(figure)
        figures[entry["name"]] = figure
    report.ratios += lane_ratios(figures)
    report.missing += [Missing(PREFIX + entry["name"], entry["why"]) for entry in inner["missing"]]


def main(argv: list[str]) -> int:
    """Inside the lane: measure, write the report as JSON to argv[0]."""
    quick = "--quick" in argv
    report = measure_inside(quick, lambda message: print(f"[bench] {message}", flush=True))
    report.write_json(argv[0])
    print(report.table(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
