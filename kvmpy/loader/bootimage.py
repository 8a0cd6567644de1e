"""What a loader hands the machine: where and how to start the boot vCPU."""

from __future__ import annotations

from typing import NamedTuple

from ..vcpu.modes import StartMode


class BootImage(NamedTuple):
    """Where the boot vCPU starts, the argument it gets in RSI (Linux: the zero page), and
    whether it is a Linux kernel (which starts its other vCPUs itself, through INIT/SIPI)."""

    entry: int
    mode: StartMode
    boot_argument: int = 0
    linux: bool = False
