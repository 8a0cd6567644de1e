"""The `kvmpy bench` suite: which workloads run, how many times, and where results go."""

from __future__ import annotations

import os
import platform
import re
import sys
import time

from .boot import run_boot
from .chart import render_svg
from .compute import run_compute
from .isa_compute import run_isa_compute
from .core import run_core
from .distro import run_distro
from .io import run_io
from .nested import run_nested
from .oneshot import run_oneshot
from .report import Missing, Report

# repeats, port-I/O exits per run, ring-3 / ring-0 (KVM) / interpreter loop iterations
FULL = {"repeats": 5, "exits": 200_000, "ring3": 1_000_000_000, "ring0": 200_000, "interp": 100_000_000, "isa": 200_000,
        "boot_repeats": 3, "boot_kvm": True}
QUICK = {"repeats": 3, "exits": 30_000, "ring3": 200_000_000, "ring0": 20_000, "interp": 20_000_000, "isa": 50_000,
         "boot_repeats": 1, "boot_kvm": False}
BOOT_TIMEOUT = 600
DISTRO_TIMEOUT = 1800
TEST_KERNEL_DIR = re.compile(r"kernel-[0-9a-f]{16}")  # not kernel-defconfig-*


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def default_kernel() -> str | None:
    """The newest test kernel built by boot/linux/build_kernel.py, if any."""
    from ..initramfs import newest_cached

    return newest_cached(os.path.join("kernel-*", "bzImage"),
                         lambda path: TEST_KERNEL_DIR.fullmatch(os.path.basename(os.path.dirname(path))))


def run_suite(quick: bool, json_path: str, kernel: str | None = None, initrd: str | None = None,
              nested: bool | None = None, distro: bool = False) -> Report:
    """Every group of figures; `nested` adds the lane's (default: in a full run, not in --quick),
    `distro` the Debian and defconfig boots against QEMU TCG (~10 min more)."""
    sizes = QUICK if quick else FULL
    report = Report()
    started = time.monotonic()
    run_core(report, sizes["repeats"], sizes["exits"], progress=progress)
    run_compute(report, sizes["repeats"], sizes["ring3"], sizes["ring0"], sizes["interp"], progress=progress)
    run_isa_compute(report, sizes["repeats"], sizes["isa"], progress=progress)
    kernel = kernel or default_kernel()
    if kernel is None:
        report.missing.append(Missing("boot", "no kernel: pass --kernel or build one (boot/linux/build_kernel.py)"))
    else:
        if initrd is None:
            from ..initramfs import ensure_initramfs

            initrd = str(ensure_initramfs(sys.stderr))
        run_boot(report, kernel, initrd, sizes["boot_repeats"], sizes["boot_kvm"], BOOT_TIMEOUT, progress=progress)
        run_io(report, kernel, initrd, quick, progress=progress)
        run_oneshot(report, kernel, sizes["repeats"], BOOT_TIMEOUT, progress=progress)
    if distro:
        run_distro(report, DISTRO_TIMEOUT, progress=progress)
    else:
        report.missing.append(Missing("distribution boots", "not asked for (add --distro: ~10 min more)"))
    if nested if nested is not None else not quick:
        run_nested(report, quick, progress=progress)
    else:
        report.missing.append(Missing("nested lane", "not run by --quick (add --nested: ~15 min more)"))
    print(report.table())
    report.write_json(json_path)
    chart_path = os.path.splitext(json_path)[0] + ".svg"
    title = f"kvmpy bench{' --quick' if quick else ''} on {platform.node()} ({time.strftime('%Y-%m-%d')})"
    with open(chart_path, "w") as chart:
        chart.write(render_svg(report, title))
    progress(f"done in {time.monotonic() - started:.0f} s: JSON {json_path}, chart {chart_path}")
    return report
