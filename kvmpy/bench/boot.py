"""Boot: time from VM start to Linux's "Run /init" line and to the init's boot-timer write,
for kvmpy with KVM, kvmpy's interpreter and QEMU TCG (microvm) on the same kernel/initramfs.

Both marks come from the guest itself: the kernel prints "Run /init as init process" right
before it executes init, and /init writes the boot-timer port first thing (Firecracker's
boot-timer idea). QEMU has no boot-timer device, so for it the console line is the mark.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

from ..linux import command_cmdline, run_command
from .report import Figure, Missing, Report

INIT_LINE = b"Run /init as init process"
QEMU = "qemu-system-x86_64"
QEMU_GAVE_UP = b"emulation failure"  # QEMU pauses the VM there and would wait forever


class ConsoleMark:
    """Echo target that notes when a line first appears on the console."""

    def __init__(self, needle: bytes):
        self.needle, self.started, self.seen_at = needle, time.monotonic(), None
        self._tail = b""

    def __call__(self, data: bytes) -> None:
        if self.seen_at is None:
            self._tail = (self._tail + bytes(data))[-4096:]
            if self.needle in self._tail:
                self.seen_at = time.monotonic() - self.started


def kvmpy_boot(kernel: str, initrd: str, accel: str, timeout: float) -> tuple[float | None, float | None, str]:
    """(seconds to the "Run /init" line, seconds to the boot-timer write, how it ended)."""
    mark = ConsoleMark(INIT_LINE)
    result = run_command(kernel, "true", initrd, accel=accel, timeout=timeout, echo=mark)
    return mark.seen_at, result.boot_seconds, result.stop.message


def qemu_boot(kernel: str, initrd: str, accel: str, timeout: float) -> tuple[float | None, str]:
    """(seconds to the "Run /init" line under QEMU, how it ended)."""
    command = [QEMU, "-accel", accel, "-M", "microvm", "-m", "256", "-display", "none", "-serial", "stdio",
               "-no-reboot", "-kernel", kernel, "-initrd", initrd, "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
               "-append", command_cmdline("true")]
    seen, tail, returncode = qemu_console_time(command, INIT_LINE, timeout)
    text = tail.decode(errors="replace")
    if QEMU_GAVE_UP.decode() in text:
        failure = next(line for line in text.splitlines() if QEMU_GAVE_UP.decode() in line)
        return seen, f"QEMU stopped: {failure.strip()[:100]}"
    last = text.strip().splitlines()[-1:] or ["(no output)"]
    return seen, f"exit status {returncode}: {last[0][:120]}"


def qemu_console_time(command: list[str], needle: bytes, timeout: float) -> tuple[float | None, bytes, int]:
    """Run QEMU until it exits (killed after `timeout` s, or at an emulation failure, where it
    would wait for ever); (seconds until `needle` first appeared on its console, the console's
    last 8 KiB, its exit status)."""
    start = time.monotonic()
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    seen, tail = None, b""
    try:
        for chunk in iter(lambda: process.stdout.read1(4096), b""):
            tail = (tail + chunk)[-8192:]
            if seen is None and needle in tail:
                seen = time.monotonic() - start
            if QEMU_GAVE_UP in tail:
                process.kill()
        process.wait()
    finally:
        timer.cancel()
    return seen, tail, process.returncode


def run_boot(report: Report, kernel: str, initrd: str, repeats: int, include_kvm: bool, timeout: float,
             progress=print) -> None:
    interp_init = Figure("boot", "kvmpy interp: to 'Run /init'", "s")
    interp_timer = Figure("boot", "kvmpy interp: to init's boot-timer write", "s")
    kvm_init = Figure("boot", "kvmpy kvm: to 'Run /init'", "s")
    tcg_init = Figure("boot", "QEMU TCG microvm: to 'Run /init'", "s")
    for repeat in range(repeats):
        progress(f"boot: round {repeat + 1}/{repeats} (kvmpy interp)")
        seen, timer, _how = kvmpy_boot(kernel, initrd, "interp", timeout)
        if seen is not None:
            interp_init.samples.append(seen)
        if timer is not None:
            interp_timer.samples.append(timer)
        if include_kvm:
            progress(f"boot: round {repeat + 1}/{repeats} (kvmpy kvm; ring 0 is emulated by this host, slow)")
            seen, _timer, how = kvmpy_boot(kernel, initrd, "kvm", timeout)
            if seen is not None:
                kvm_init.samples.append(seen)
        if shutil.which(QEMU):
            progress(f"boot: round {repeat + 1}/{repeats} (QEMU TCG)")
            seen, _how = qemu_boot(kernel, initrd, "tcg", timeout)
            if seen is not None:
                tcg_init.samples.append(seen)
    report.figures += [f for f in (interp_init, interp_timer, kvm_init, tcg_init) if f.samples]
    if not include_kvm:
        report.missing.append(Missing("kvmpy kvm boot", "skipped by --quick (ring-0 emulation makes it ~2 min here)"))
    if not shutil.which(QEMU):
        report.missing.append(Missing("QEMU TCG boot", f"{QEMU} is not installed"))
    else:
        progress("boot: QEMU with -accel kvm (expected to stop at the first emulation failure on PVM hosts)")
        seen, how = qemu_boot(kernel, initrd, "kvm", min(timeout, 120))
        if seen is None:
            report.missing.append(Missing("QEMU KVM boot", f"did not reach init: {how}"))
        else:
            report.figures.append(Figure("boot", "QEMU KVM microvm: to 'Run /init'", "s", [seen]))
