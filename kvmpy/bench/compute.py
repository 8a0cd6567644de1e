"""Compute: the same countdown loop natively (ring 3 under KVM), emulated by the host's KVM
(ring 0), in kvmpy's interpreter, under QEMU TCG, and on the host itself.

Loop guests bracket the loop with POST-port marks, so only the loop is timed. QEMU has no
such hook: its figure is the difference between two runs of the PVH loop guest that differ
only in their iteration count, which cancels QEMU's own start-up and firmware time.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time

from ..guests import guest_path
from ..native import lib
from ..probe import time_guest_loop
from .report import Figure, Missing, Ratio, Report

INSTRUCTIONS_PER_ITERATION = 2  # dec; jnz
ITERATION_TAG = b"KVMPYITR"
KIND_TAG = b"KVMPYKND"  # which loop pvh_loop runs: 0 the countdown, 1 x87, 2 AVX2 (compute_blocks.inc)
KIND_COUNTDOWN = 0
QEMU = "qemu-system-x86_64"


def host_ns_per_iteration(loop, iterations: int) -> float:
    """ns per iteration of a host loop function of kvmpy's native module (`loop(iterations)`)."""
    start = time.perf_counter_ns()
    loop(iterations)
    return (time.perf_counter_ns() - start) / iterations


def mips(ns_per_iteration: float, instructions: int = INSTRUCTIONS_PER_ITERATION) -> float:
    return instructions / ns_per_iteration * 1000


def patched_pvh_loop(iterations: int, directory: str, kind: int = KIND_COUNTDOWN) -> str:
    """A copy of the PVH loop guest that runs loop `kind` `iterations` times."""
    image = bytearray(guest_path("pvh_loop").read_bytes())
    for tag, value in ((ITERATION_TAG, iterations), (KIND_TAG, kind)):
        where = image.index(tag) + len(tag)
        image[where : where + 8] = value.to_bytes(8, "little")
    path = f"{directory}/pvh_loop_{kind}_{iterations}.elf"
    with open(path, "wb") as out:
        out.write(image)
    return path


def qemu_tcg_ns_per_iteration(small: int, large: int, kind: int = KIND_COUNTDOWN) -> float | None:
    """ns per iteration of loop `kind` under QEMU TCG (`-cpu max`: AVX2 included), or None when
    QEMU is not installed."""
    if shutil.which(QEMU) is None:
        return None
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-") as directory:
        times = []
        for iterations in (small, large):
            image = patched_pvh_loop(iterations, directory, kind)
            start = time.perf_counter()
            subprocess.run([QEMU, "-accel", "tcg", "-cpu", "max", "-M", "q35", "-m", "64", "-display", "none",
                            "-no-reboot",
                            "-kernel", image, "-device", "isa-debug-exit,iobase=0xf4,iosize=1"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
            times.append(time.perf_counter() - start)
    return (times[1] - times[0]) * 1e9 / (large - small)


def run_compute(report: Report, repeats: int, ring3_iterations: int, ring0_iterations: int,
                interp_iterations: int, progress=print) -> None:
    ring3 = Figure("compute", "ring-3 loop, KVM (native)", "MIPS")
    ring0 = Figure("compute", "ring-0 loop, KVM (host emulation here)", "MIPS")
    interp = Figure("compute", "ring-0 loop, kvmpy interpreter", "MIPS")
    host = Figure("compute", "same loop on the host", "MIPS")
    qemu = Figure("compute", "ring-0 loop, QEMU TCG", "MIPS", note="difference of two runs")
    for repeat in range(repeats):
        progress(f"compute: round {repeat + 1}/{repeats}")
        ring3.samples.append(mips(time_guest_loop("ring3_loop", ring3_iterations).ns_per_iteration))
        ring0.samples.append(mips(time_guest_loop("ring0_loop", ring0_iterations).ns_per_iteration))
        interp.samples.append(mips(time_guest_loop("ring0_loop", interp_iterations, accel="interp").ns_per_iteration))
        host.samples.append(mips(host_ns_per_iteration(lib.kvmpy_host_countdown, ring3_iterations)))
        qemu_ns = qemu_tcg_ns_per_iteration(interp_iterations // 10, interp_iterations * 2)
        if qemu_ns is not None:
            qemu.samples.append(mips(qemu_ns))
    report.figures += [ring3, ring0, interp, host]
    if qemu.samples:
        report.figures.append(qemu)
    else:
        report.missing.append(Missing("QEMU TCG", f"{QEMU} is not installed (apt-get install qemu-system-x86)"))
    speedup = interp.median / ring0.median
    native = ring3.median / host.median
    report.ratios += [
        Ratio("ring-3 guest speed / host speed", native, ">= 0.95x", native >= 0.95),
        Ratio("interpreter / host's ring-0 emulation", speedup, ">= 20x", speedup >= 20),
        Ratio("interpreter MIPS", interp.median, ">= 100 MIPS", interp.median >= 100),
        Ratio("interpreter / ring 3 native", interp.median / ring3.median, "(reference)", True),
    ]
    if qemu.samples:
        report.ratios.append(Ratio("interpreter / QEMU TCG", interp.median / qemu.median, "(reference)", True))
