"""One command in a fresh kernel: `kvmpy exec <kernel> -- true`, wall time as a user sees it
(process start to exit, Python's start-up included), against QEMU TCG booting the same
kernel with the same init on a 9p root (QEMU's own virtio-9p, the host's / read-only).
The issue's target: <= 1.5 s here, where the interpreter runs the guest."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from .. import layout
from ..exec.job import make_job, write_job
from ..exec.session import kernel_cmdline
from .boot import QEMU
from .report import Figure, Missing, Ratio, Report

TARGET_SECONDS = 1.5


def kvmpy_exec_seconds(kernel: str, accel: str, timeout: float) -> float | None:
    """Wall seconds of `kvmpy exec --accel ACCEL KERNEL -- true`; None when it failed."""
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "kvmpy", "exec", "--accel", accel, "--timeout", str(timeout),
                          kernel, "--", "true"], capture_output=True)
    return time.monotonic() - start if run.returncode == 0 else None


def qemu_exec_seconds(kernel: str, timeout: float) -> float | None:
    """Wall seconds of QEMU TCG (-M pc: its microvm finds no virtio-mmio device in this kernel; SeaBIOS included) running kvmpy exec's init and `true` on a 9p root;
    None when the guest did not report status 0 through isa-debug-exit."""
    with tempfile.TemporaryDirectory(prefix="kvmpy-exec-") as directory:
        write_job(make_job(["true"]), pathlib.Path(directory))
        command = [QEMU, "-accel", "tcg", "-M", "pc", "-m", "256", "-display", "none",
                   "-no-reboot", "-serial", "null", "-kernel", kernel,
                   "-fsdev", "local,id=root,path=/,security_model=none,readonly=on",
                   "-device", "virtio-9p-pci,fsdev=root,mount_tag=/dev/root",
                   "-chardev", "null,id=out", "-chardev", "null,id=err", "-device", "virtio-serial-pci",
                   "-device", "virtconsole,chardev=out", "-device", "virtconsole,chardev=err",
                   "-device", f"isa-debug-exit,iobase={layout.DEBUG_EXIT_PORT:#x},iosize=1",
                   "-append", kernel_cmdline(directory)]
        start = time.monotonic()
        try:
            run = subprocess.run(command, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        # isa-debug-exit makes QEMU exit with (value << 1) | 1: status 0 of `true` is 1
        return time.monotonic() - start if run.returncode == 1 else None


def run_oneshot(report: Report, kernel: str, repeats: int, timeout: float, progress=print) -> None:
    interp = Figure("exec", "kvmpy exec -- true (interp), wall", "s")
    tcg = Figure("exec", "QEMU TCG -M pc, 9p root, same init -- true, wall", "s")
    for repeat in range(repeats):
        progress(f"exec: round {repeat + 1}/{repeats}")
        seconds = kvmpy_exec_seconds(kernel, "interp", timeout)
        if seconds is not None:
            interp.samples.append(seconds)
        if shutil.which(QEMU):
            seconds = qemu_exec_seconds(kernel, timeout)
            if seconds is not None:
                tcg.samples.append(seconds)
    report.figures += [figure for figure in (interp, tcg) if figure.samples]
    if interp.samples:
        report.ratios.append(Ratio("kvmpy exec -- true, interp: wall seconds", interp.median,
                                   f"<= {TARGET_SECONDS} s", interp.median <= TARGET_SECONDS))
    else:
        report.missing.append(Missing("kvmpy exec", "kvmpy exec -- true did not succeed"))
    if not tcg.samples:
        report.missing.append(Missing("QEMU TCG exec", f"{QEMU} missing or its 9p boot failed"))
    report.missing.append(Missing("kvmpy exec under KVM", "Linux user space needs hardware virtualization: "
                                  "measured in the lane (the 'nested' group, kvmpy bench --nested)"))
