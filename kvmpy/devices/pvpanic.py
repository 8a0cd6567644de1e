"""pvpanic: the register a Linux kernel's panic notifier writes to, so the VMM learns of a panic
without reading the console. Two ways to find it, as on QEMU: the ISA port the DSDT describes
as QEMU0001 (driver pvpanic-mmio), and the PCI function 1b36:0011 (driver pvpanic-pci).

The register (the port, or BAR 0's first byte): reading it gives the events the device
understands, writing it reports one (PANICKED, or CRASH_LOADED when a kdump kernel takes over).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..pci.config import ConfigSpace

log = logging.getLogger(__name__)

VENDOR_REDHAT = 0x1B36
DEVICE_PVPANIC = 0x0011
CLASS_SYSTEM_OTHER = 0x088000
BAR_SIZE = 0x1000
EVENTS_REGISTER = 0
PANICKED = 0x1
CRASH_LOADED = 0x2


class PvPanic:
    """The register, as a bus device. `on_event(events)` gets each non-zero write (PANICKED
    and/or CRASH_LOADED bits)."""

    def __init__(self, on_event: Callable[[int], None]):
        self._on_event = on_event

    def read(self, offset: int, size: int) -> int:
        return PANICKED | CRASH_LOADED if offset == EVENTS_REGISTER else 0

    def write(self, offset: int, size: int, value: int) -> None:
        events = value & (PANICKED | CRASH_LOADED)
        if offset == EVENTS_REGISTER and events:
            self._on_event(events)
        else:
            log.debug("pvpanic: ignored write %#x at %#x", value, offset)


class PvPanicPci(PvPanic):
    """The PCI function: `config` for the PCI bus, the register behind BAR 0."""

    def __init__(self, on_event: Callable[[int], None]):
        super().__init__(on_event)
        self.config = ConfigSpace(VENDOR_REDHAT, DEVICE_PVPANIC, CLASS_SYSTEM_OTHER, interrupt_pin=0)
        self.name = "pvpanic"
