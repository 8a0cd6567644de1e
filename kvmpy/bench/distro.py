"""The kernels users bring, timed against QEMU TCG on the same inputs: Debian 12 (its stock
kernel, initramfs-tools initrd and a debootstrap root file system on virtio-blk over
virtio-pci) from VM start to systemd's multi-user.target, and the defconfig kernel from VM
start to "Run /init". Both are the interpreter's figures here: QEMU TCG is the baseline.

The images are the ones boot/distro/build_image.py and `build_kernel.py --defconfig` cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ..linux import command_cmdline, run_command
from .boot import QEMU, ConsoleMark, kvmpy_boot, qemu_boot, qemu_console_time
from .report import Figure, Missing, Ratio, Report

MULTI_USER_LINE = b"Multi-User System"  # systemd: "[  OK  ] Reached target ... Multi-User System."
DISTRO_CMDLINE = "console=ttyS0 root=/dev/vda panic=-1"
DISTRO_MEMORY_MIB = 1024
TARGET = 1.5  # kvmpy within 1.5x of QEMU TCG


def _fresh_copy(rootfs: str, directory: str) -> str:
    copy = os.path.join(directory, "rootfs.img")
    subprocess.run(["cp", "--sparse=always", rootfs, copy], check=True)
    return copy


def kvmpy_to_multi_user(image: str, timeout: float) -> tuple[float | None, str]:
    mark = ConsoleMark(MULTI_USER_LINE)
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-") as work:
        result = run_command(os.path.join(image, "vmlinuz"), "true", os.path.join(image, "initrd.img"),
                             disks=((_fresh_copy(os.path.join(image, "rootfs.img"), work), False),),
                             mem_size=DISTRO_MEMORY_MIB << 20, cmdline=DISTRO_CMDLINE, accel="interp",
                             timeout=timeout, echo=mark)
    return mark.seen_at, result.stop.message


def qemu_to_multi_user(image: str, timeout: float) -> tuple[float | None, str]:
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-") as work:
        rootfs = _fresh_copy(os.path.join(image, "rootfs.img"), work)
        command = [QEMU, "-accel", "tcg", "-M", "pc", "-m", str(DISTRO_MEMORY_MIB), "-display", "none",
                   "-serial", "stdio", "-no-reboot", "-kernel", os.path.join(image, "vmlinuz"),
                   "-initrd", os.path.join(image, "initrd.img"), "-append", command_cmdline("true", DISTRO_CMDLINE),
                   "-drive", f"file={rootfs},if=virtio,format=raw"]
        seen, _tail, returncode = qemu_console_time(command, MULTI_USER_LINE, timeout)
    return seen, f"exit status {returncode}"


def run_distro(report: Report, timeout: float, progress=print) -> None:
    from ..initramfs import newest_cached

    image = newest_cached("distro-*/")
    defconfig = newest_cached("kernel-defconfig-*/bzImage")
    if not shutil.which(QEMU):
        report.missing.append(Missing("distribution boots", f"{QEMU} is not installed (the baseline)"))
        return
    if image is None:
        report.missing.append(Missing("Debian to multi-user", "no image: python3 boot/distro/build_image.py"))
    else:
        progress("distro: Debian 12 to multi-user.target, kvmpy interp")
        ours, how = kvmpy_to_multi_user(image, timeout)
        progress("distro: Debian 12 to multi-user.target, QEMU TCG")
        theirs, their_how = qemu_to_multi_user(image, timeout)
        _compare(report, "Debian 12 to multi-user.target", ours, how, theirs, their_how)
    if defconfig is None:
        report.missing.append(Missing("defconfig boot", "no kernel: python3 boot/linux/build_kernel.py --defconfig"))
    else:
        from ..initramfs import ensure_initramfs

        initrd = str(ensure_initramfs())
        progress("distro: the defconfig kernel to 'Run /init', kvmpy interp and QEMU TCG")
        ours, _timer, how = kvmpy_boot(defconfig, initrd, "interp", timeout)
        theirs, their_how = qemu_boot(defconfig, initrd, "tcg", timeout)
        _compare(report, "defconfig kernel to 'Run /init'", ours, how, theirs, their_how)


def _compare(report: Report, what: str, ours: float | None, how: str, theirs: float | None, their_how: str) -> None:
    if ours is None or theirs is None:
        who = "kvmpy" if ours is None else "QEMU TCG"
        report.missing.append(Missing(what, f"{who} did not get there ({how if ours is None else their_how})"))
        return
    report.figures.append(Figure("distro", f"{what}: kvmpy interp", "s", [ours]))
    report.figures.append(Figure("distro", f"{what}: QEMU TCG", "s", [theirs]))
    ratio = ours / theirs
    report.ratios.append(Ratio(f"{what}: kvmpy interp / QEMU TCG", ratio, f"<= {TARGET}x", ratio <= TARGET))
