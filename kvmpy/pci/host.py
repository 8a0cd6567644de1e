"""The PCI host bridge: configuration mechanism #1 (an address port, then a data port) onto
bus 0, whose device 0 is the bridge itself.

The guest writes `enable | bus << 16 | device << 11 | function << 8 | register` to the
address register (offset 0) and reads or writes the data register (offsets 4-7, any
size, the low address bits choosing the bytes). Only bus 0, function 0 of each slot exists;
everything else reads as all ones, as an empty slot does on real hardware.
"""

from __future__ import annotations

import logging

from .config import ConfigSpace

log = logging.getLogger(__name__)

ADDRESS_REGISTER = 0  # offsets within the 8-port window at layout.PCI_CONFIG_PORT
DATA_REGISTER = 4
WINDOW_LENGTH = 8
ENABLE = 1 << 31
SLOTS = 32

# The bridge's own identity: Red Hat's generic PCI host bridge ID (as QEMU's), class host bridge.
HOST_BRIDGE_VENDOR = 0x1B36
HOST_BRIDGE_DEVICE = 0x0008
CLASS_HOST_BRIDGE = 0x060000


class PciFunction:
    """What the bus needs of a function: its configuration space (and `name` for logs)."""

    config: ConfigSpace
    name: str


class HostBridgeFunction(PciFunction):
    def __init__(self):
        self.config = ConfigSpace(HOST_BRIDGE_VENDOR, HOST_BRIDGE_DEVICE, CLASS_HOST_BRIDGE, interrupt_pin=0)
        self.name = "pci-host-bridge"


class PciHostBridge:
    """The configuration-mechanism-#1 port device, and the slots of bus 0."""

    def __init__(self):
        self.address = 0
        self.slots: list[PciFunction | None] = [HostBridgeFunction()] + [None] * (SLOTS - 1)

    def plug(self, function: PciFunction) -> int:
        """Put `function` in the first free slot; return the slot number."""
        for slot, occupant in enumerate(self.slots):
            if occupant is None:
                self.slots[slot] = function
                return slot
        raise ValueError("PCI bus 0 is full")

    def _selected(self) -> tuple[PciFunction | None, int]:
        """The function the address register points at (None: nothing there), and the register."""
        if not self.address & ENABLE:
            return None, 0
        bus, slot, function = self.address >> 16 & 0xFF, self.address >> 11 & 0x1F, self.address >> 8 & 0x7
        if bus or function:
            return None, 0
        return self.slots[slot], self.address & 0xFC

    # --- Bus device interface -------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        if offset == ADDRESS_REGISTER and size == 4:
            return self.address
        if offset >= DATA_REGISTER:
            function, register = self._selected()
            if function is not None:
                return function.config.read(register + offset - DATA_REGISTER, size)
        return (1 << 8 * size) - 1

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == ADDRESS_REGISTER and size == 4:
            self.address = value & 0x80FF_FFFC
        elif offset >= DATA_REGISTER:
            function, register = self._selected()
            if function is not None:
                function.config.write(register + offset - DATA_REGISTER, size, value)
        else:
            log.debug("pci: ignored %d-byte write at config-address offset %d", size, offset)
