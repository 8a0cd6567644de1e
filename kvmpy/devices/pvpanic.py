"""pvpanic-pci: the PCI function (1b36:0011, as QEMU's) a Linux kernel with PVPANIC_PCI
writes to from its panic notifier, so the VMM learns of a panic without reading the console.

BAR 0's first byte: reading it gives the events the device understands, writing it reports
one (PANICKED, or CRASH_LOADED when a kdump kernel takes over instead).
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
    """The function: `config` for the PCI bus, and the bus device behind BAR 0.
    `on_event(events)` gets each non-zero write (PANICKED and/or CRASH_LOADED bits)."""

    def __init__(self, on_event: Callable[[int], None]):
        self.config = ConfigSpace(VENDOR_REDHAT, DEVICE_PVPANIC, CLASS_SYSTEM_OTHER, interrupt_pin=0)
        self.name = "pvpanic"
        self._on_event = on_event

    def read(self, offset: int, size: int) -> int:
        return PANICKED | CRASH_LOADED if offset == EVENTS_REGISTER else 0

    def write(self, offset: int, size: int, value: int) -> None:
        events = value & (PANICKED | CRASH_LOADED)
        if offset == EVENTS_REGISTER and events:
            self._on_event(events)
        else:
            log.debug("pvpanic: ignored write %#x at %#x", value, offset)
