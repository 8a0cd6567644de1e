"""Accelerators: what executes guest code. `kvm` (hardware via /dev/kvm, with the software
interpreter for what KVM cannot emulate) or `interp` (the software interpreter alone).

An accelerator owns the vCPUs and the interrupt controllers; the machine owns RAM, buses and
devices, which are the same whichever accelerator runs the guest.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError

ACCELERATORS = ("auto", "kvm", "interp")


def create_accelerator(name: str, memory, cpus: int, kvm=None, fallback: bool = True, notice=None):
    """The accelerator called `name`; `auto` is KVM where /dev/kvm is usable, else the interpreter.
    `fallback=False` leaves KVM's emulation failures unhandled (to see what KVM alone does)."""
    if name not in ACCELERATORS:
        raise ConfigError(f"--accel must be one of {', '.join(ACCELERATORS)} (got {name!r})")
    if name == "auto" and kvm is None:
        from ..kvm import kvm_usable

        usable, why = kvm_usable()
        if not usable:
            (notice or _stderr_notice)(f"kvmpy: /dev/kvm is not usable ({why}); running the guest in the interpreter")
            name = "interp"
    if name == "interp":
        from .interp import InterpAccelerator

        return InterpAccelerator(memory, cpus)
    from .kvm import KvmAccelerator

    return KvmAccelerator(memory, cpus, kvm, fallback)


def _stderr_notice(message: str) -> None:
    print(message, file=sys.stderr)
