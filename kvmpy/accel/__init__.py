"""Accelerators: what executes guest code. `kvm` (hardware via /dev/kvm, with the software
interpreter for what KVM cannot emulate) or `interp` (the software interpreter alone).

An accelerator owns the vCPUs and the interrupt controllers; the machine owns RAM, buses and
devices, which are the same whichever accelerator runs the guest.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError

ACCELERATORS = ("auto", "kvm", "interp")


def create_accelerator(name: str, memory, cpus: int, kvm=None, fallback_burst: int = 1, notice=None,
                       cpu: str = "max"):
    """The accelerator called `name`; `auto` is KVM where /dev/kvm is usable, else the interpreter.
    `fallback_burst` is how many instructions the interpreter may run for KVM per emulation
    failure; 0 leaves failures unhandled (to see what KVM alone does). `cpu` names the CPU
    model the guest is shown (kvmpy/cpu_model.py)."""
    if name not in ACCELERATORS:
        raise ConfigError(f"--accel must be one of {', '.join(ACCELERATORS)} (got {name!r})")
    if name == "auto" and kvm is None:
        name = _auto("", notice)
    if name == "interp":
        from .interp import InterpAccelerator

        return InterpAccelerator(memory, cpus, cpu)
    from .kvm import KvmAccelerator

    return KvmAccelerator(memory, cpus, kvm, fallback_burst, cpu)


def accelerator_for_image(requested: str, image: str, notice=None) -> str:
    """Resolve `auto` for a given image: KVM, unless /dev/kvm is unusable, or the image is a
    Linux kernel and this host's KVM breaks `syscall` from ring 3 (then Linux user space could
    not make a single system call, so the interpreter runs the guest instead)."""
    if requested != "auto":
        return requested
    return _auto(image, notice)


def _auto(image: str, notice) -> str:
    """`auto` resolved: for a Linux kernel image, KVM only if it can run Linux user space."""
    from ..kvm import kvm_usable
    from ..probe import kvm_runs_linux_user_space

    linux = bool(image) and _is_linux_kernel(image)
    if linux:
        runs, why = kvm_runs_linux_user_space()
    else:
        runs, reason = kvm_usable()
        why = f"/dev/kvm is not usable ({reason})"
    if runs:
        return "kvm"
    (notice or _stderr_notice)(f"kvmpy: {why}; running the guest in the interpreter"
                               + (" (--accel kvm to insist)" if linux else ""))
    return "interp"


def _is_linux_kernel(image: str) -> bool:
    """A bzImage, or a vmlinux (read whole: its notes can be anywhere in the file)."""
    from ..loader.bzimage import is_bzimage
    from ..loader.elf import is_elf, is_linux_elf

    try:
        with open(image, "rb") as file:
            head = file.read(1024)
            if is_bzimage(head):
                return True
            return is_elf(head) and is_linux_elf(head + file.read())
    except OSError:
        return False  # the loader reports unreadable images with a proper message


def _stderr_notice(message: str) -> None:
    print(message, file=sys.stderr)
