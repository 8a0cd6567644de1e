"""The machine's PCI root: the host bridge on its ports, BARs in layout's PCI window on the
MMIO bus (moved when the guest moves them), and the INTx routes the MP table describes."""

from __future__ import annotations

import logging
from typing import NamedTuple

from .. import layout
from ..bus import Bus
from ..errors import ConfigError
from .config import Bar
from .host import PciHostBridge

log = logging.getLogger(__name__)


class PciRoute(NamedTuple):
    slot: int
    irq: int  # the IOAPIC input the slot's INTA# drives


class PciRoot:
    def __init__(self, ports: Bus, mmio: Bus):
        self.host = PciHostBridge()
        self.mmio = mmio
        self.routes: list[PciRoute] = []
        self._next_bar = layout.PCI_MMIO_BASE
        ports.insert(self.host, layout.PCI_CONFIG_PORT, layout.PCI_CONFIG_PORT_LENGTH, "pci-config")

    def add(self, function, bar_size: int, irq: int | None) -> tuple[int, int]:
        """Plug `function` (which is also the bus device behind its BAR 0) with a BAR 0 of
        `bar_size` bytes and INTA# on `irq` (None: it has no interrupt); return its slot and
        BAR address."""
        address = (self._next_bar + bar_size - 1) & ~(bar_size - 1)
        if address + bar_size > layout.PCI_MMIO_BASE + layout.PCI_MMIO_SIZE:
            raise ConfigError("the PCI memory window is full")
        slot = self.host.plug(function)
        self._next_bar = address + bar_size
        bar = function.config.add_bar(0, bar_size, address)
        if irq is not None:
            function.config.set_interrupt_line(irq)
            self.routes.append(PciRoute(slot, irq))
        self.mmio.insert(function, address, bar.size, function.name)
        mapped = [address]

        def moved(bar: Bar) -> None:
            if bar.address == mapped[0]:
                return
            self.mmio.remove(mapped[0])
            try:
                self.mmio.insert(function, bar.address, bar.size, function.name)
                mapped[0] = bar.address
            except ConfigError as overlap:  # the guest put it on top of something: unmapped
                log.warning("pci slot %d: BAR 0 moved to %#x: %s", slot, bar.address, overlap)
                self.mmio.insert(function, mapped[0], bar.size, function.name)

        function.config.on_bar_moved = moved
        return slot, address
