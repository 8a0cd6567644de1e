"""Compute beyond integers: the x87 block and the AVX2 block of native/compute_blocks.inc, run
by kvmpy's interpreter, by QEMU TCG and by the host itself, in MIPS.

The interpreter and QEMU run the same PVH loop guest (patched to the block and an iteration
count); the interpreter's figure is the time between the guest's two POST marks, QEMU's the
difference between two runs of different lengths (see compute.py); the host runs the same
block text compiled into kvmpy's native module. The interpreter's x87 goes through the host's
x87 unit one instruction at a time (native/interp/x87.c): its cost per instruction, not the
host's arithmetic, is what this row shows.
"""

from __future__ import annotations

import tempfile

from ..interp.platform import IMPLEMENTED
from ..native import lib
from ..probe import time_guest_loop
from .compute import QEMU, host_ns_per_iteration, mips, patched_pvh_loop, qemu_tcg_ns_per_iteration
from .report import Figure, Missing, Ratio, Report

LOOP_OVERHEAD = 2  # dec; jnz
BLOCKS = {  # name: (pvh_loop kind, instructions per block, host function, interpreter feature)
    "x87": (1, 8, lib.kvmpy_host_x87_loop, "fpu"),
    "AVX2": (2, 8, lib.kvmpy_host_avx2_loop, "avx2"),
}
HOST_FACTOR = 100  # the host runs this many times the interpreter's iterations
QEMU_FACTOR = 40  # a difference of two QEMU runs needs a long one to rise above its start-up noise


def run_isa_compute(report: Report, repeats: int, iterations: int, progress=print) -> None:
    """`iterations` of each block in the interpreter (more on the host and under QEMU)."""
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-") as directory:
        for name, (kind, instructions, host_function, feature) in BLOCKS.items():
            interp = Figure("compute", f"{name} block, kvmpy interpreter", "MIPS")
            host = Figure("compute", f"{name} block on the host", "MIPS")
            qemu = Figure("compute", f"{name} block, QEMU TCG", "MIPS", note="difference of two runs")
            runs_here = feature in IMPLEMENTED
            image = patched_pvh_loop(iterations, directory, kind)
            for repeat in range(repeats):
                progress(f"compute: {name} block, round {repeat + 1}/{repeats}")
                if runs_here:
                    timing = time_guest_loop("pvh_loop", iterations, accel="interp", image=image)
                    interp.samples.append(mips(timing.ns_per_iteration, instructions + LOOP_OVERHEAD))
                host_ns = host_ns_per_iteration(host_function, iterations * HOST_FACTOR)
                host.samples.append(mips(host_ns, instructions + LOOP_OVERHEAD))
                qemu_ns = qemu_tcg_ns_per_iteration(iterations, iterations * QEMU_FACTOR, kind)
                if qemu_ns is not None:
                    qemu.samples.append(mips(qemu_ns, instructions + LOOP_OVERHEAD))
            report.figures += [figure for figure in (interp, host, qemu) if figure.samples]
            if not runs_here:
                report.missing.append(Missing(f"{name} block, interpreter", f"the interpreter does not execute {name}"))
            if not qemu.samples:
                report.missing.append(Missing(f"{name} block, QEMU TCG", f"{QEMU} is not installed"))
            if interp.samples and qemu.samples:
                report.ratios.append(Ratio(f"{name} block: interpreter / QEMU TCG", interp.median / qemu.median,
                                           "(reference)", True))
            if interp.samples:
                report.ratios.append(Ratio(f"{name} block: interpreter / host", interp.median / host.median,
                                           "(reference)", True))
