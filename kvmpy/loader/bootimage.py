"""What a loader hands the machine: where and how to start the boot vCPU."""

from __future__ import annotations

from typing import NamedTuple

from ..vcpu.modes import StartMode


class BootImage(NamedTuple):
    """Where the boot vCPU starts, the registers its boot protocol passes arguments in (Linux:
    RSI = the zero page; multiboot: EAX = its magic, EBX = the information structure), and
    whether only that vCPU starts at the entry, the others waiting for INIT/SIPI as on a PC
    (what an operating system expects; kvmpy's tiny guests start every vCPU at the entry)."""

    entry: int
    mode: StartMode
    registers: tuple[tuple[str, int], ...] = ()
    boot_cpu_only: bool = False
