"""A PCI function's configuration space (PCI Local Bus 3.0, type 0 header) and its BARs.

`ConfigSpace` holds the 256 bytes the guest reads through configuration cycles, with the
header's read-only fields fixed, the command register and BARs writable, and capabilities
chained from 0x40 on. A BAR is sized the way every OS does it (write all ones, read back
the size mask) and moved by writing an address; the function is told when one moves so
the bus can map its region there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

CONFIG_SPACE_SIZE = 256

# --- Type 0 header offsets ----------------------------------------------------------------
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION_ID = 0x08
CLASS_PROG_IF = 0x09  # then subclass at 0x0A, base class at 0x0B
HEADER_TYPE = 0x0E
BAR0 = 0x10
BAR_COUNT = 6
SUBSYSTEM_VENDOR_ID = 0x2C
SUBSYSTEM_ID = 0x2E
CAPABILITIES_POINTER = 0x34
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D
FIRST_CAPABILITY = 0x40

COMMAND_IO = 0x1
COMMAND_MEMORY = 0x2
COMMAND_BUS_MASTER = 0x4
COMMAND_INTX_DISABLE = 0x400
WRITABLE_COMMAND_BITS = COMMAND_IO | COMMAND_MEMORY | COMMAND_BUS_MASTER | COMMAND_INTX_DISABLE
STATUS_INTERRUPT = 0x08
STATUS_CAPABILITIES = 0x10

BAR_MEMORY_64 = 0x4  # memory BAR, 64-bit: the BAR and the next one hold the address
BAR_PREFETCHABLE = 0x8
BAR_IO = 0x1
INTERRUPT_PIN_INTA = 1


@dataclass
class Bar:
    """One memory BAR: `size` bytes (a power of two, at least 4 KiB here), at `address`."""

    index: int
    size: int
    address: int = 0
    is_64bit: bool = True

    @property
    def flags(self) -> int:
        return BAR_MEMORY_64 if self.is_64bit else 0


class ConfigSpace:
    """The configuration space of one function.

    `on_bar_moved(bar)` is called when the guest writes a new address into a BAR (after a
    sizing probe, too, when the address is written back).
    """

    def __init__(self, vendor_id: int, device_id: int, class_code: int, revision: int = 0,
                 subsystem_vendor_id: int = 0, subsystem_id: int = 0, interrupt_pin: int = INTERRUPT_PIN_INTA):
        self.data = bytearray(CONFIG_SPACE_SIZE)
        self._put(VENDOR_ID, 2, vendor_id)
        self._put(DEVICE_ID, 2, device_id)
        self._put(REVISION_ID, 1, revision)
        self._put(CLASS_PROG_IF, 3, class_code)
        self._put(SUBSYSTEM_VENDOR_ID, 2, subsystem_vendor_id)
        self._put(SUBSYSTEM_ID, 2, subsystem_id)
        self._put(INTERRUPT_PIN, 1, interrupt_pin)
        self.bars: dict[int, Bar] = {}
        self._sizing: set[int] = set()  # BAR registers the guest has just written all ones to
        self._next_capability = FIRST_CAPABILITY
        self._last_capability: int | None = None
        self.on_bar_moved: Callable[[Bar], None] = lambda bar: None

    def _put(self, offset: int, size: int, value: int) -> None:
        self.data[offset:offset + size] = value.to_bytes(size, "little")

    def _get(self, offset: int, size: int) -> int:
        return int.from_bytes(self.data[offset:offset + size], "little")

    @property
    def command(self) -> int:
        return self._get(COMMAND, 2)

    @property
    def intx_disabled(self) -> bool:
        return bool(self.command & COMMAND_INTX_DISABLE)

    def set_interrupt_status(self, pending: bool) -> None:
        status = self._get(STATUS, 2)
        self._put(STATUS, 2, status | STATUS_INTERRUPT if pending else status & ~STATUS_INTERRUPT)

    def set_interrupt_line(self, irq: int) -> None:
        """What firmware would write: the IRQ the function's pin is routed to."""
        self._put(INTERRUPT_LINE, 1, irq)

    # --- Building --------------------------------------------------------------------------

    def add_bar(self, index: int, size: int, address: int) -> Bar:
        if size < 0x1000 or size & (size - 1):
            raise ValueError(f"BAR size {size:#x}: a power of two of at least 4 KiB")
        bar = Bar(index, size, address)
        self.bars[index] = bar
        self._write_bar_address(bar, address)
        return bar

    def add_capability(self, cap_id: int, body: bytes) -> int:
        """Chain a capability (id, next pointer, then `body`); return its offset."""
        offset = self._next_capability
        length = 2 + len(body)
        if offset + length > CONFIG_SPACE_SIZE:
            raise ValueError("configuration space full")
        self.data[offset] = cap_id
        self.data[offset + 1] = 0
        self.data[offset + 2:offset + length] = body
        if self._last_capability is None:
            self._put(CAPABILITIES_POINTER, 1, offset)
            self._put(STATUS, 2, self._get(STATUS, 2) | STATUS_CAPABILITIES)
        else:
            self.data[self._last_capability + 1] = offset
        self._last_capability = offset
        self._next_capability = (offset + length + 3) & ~3
        return offset

    # --- Configuration cycles --------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        if offset + size > CONFIG_SPACE_SIZE:
            return (1 << 8 * size) - 1
        value = self._get(offset, size)
        for register in self._sizing:
            if register < offset + size and offset < register + 4:
                value = self._overlay_size_mask(register, offset, size, value)
        return value

    def _overlay_size_mask(self, register: int, offset: int, size: int, value: int) -> int:
        """A BAR just written with all ones reads back its size mask (and flags)."""
        bar, high = self._bar_at(register)
        if high:
            mask = (~(bar.size - 1) >> 32) & 0xFFFF_FFFF
        else:
            mask = (~(bar.size - 1) & 0xFFFF_FFF0) | bar.flags
        full = mask.to_bytes(4, "little")
        window = bytearray(self.data[offset:offset + size])
        for index in range(size):
            position = offset + index
            if register <= position < register + 4:
                window[index] = full[position - register]
        return int.from_bytes(window, "little")

    def write(self, offset: int, size: int, value: int) -> None:
        if offset + size > CONFIG_SPACE_SIZE:
            return
        if offset <= COMMAND < offset + size:
            command = value >> 8 * (COMMAND - offset) & 0xFFFF if size >= 2 else value
            self._put(COMMAND, 2, command & WRITABLE_COMMAND_BITS)
        elif offset == INTERRUPT_LINE and size == 1:
            self._put(INTERRUPT_LINE, 1, value)
        elif BAR0 <= offset < BAR0 + 4 * BAR_COUNT and size == 4 and offset % 4 == 0:
            self._write_bar_register(offset, value)

    def _bar_at(self, register: int) -> tuple[Bar | None, bool]:
        """The BAR a 32-bit BAR register belongs to, and whether it is its high half."""
        index = (register - BAR0) // 4
        if index in self.bars:
            return self.bars[index], False
        low = self.bars.get(index - 1)
        if low is not None and low.is_64bit:
            return low, True
        return None, False

    def _write_bar_register(self, register: int, value: int) -> None:
        bar, high = self._bar_at(register)
        if bar is None:
            return  # unimplemented BARs stay zero
        if value == 0xFFFF_FFFF:
            self._sizing.add(register)
            return
        self._sizing.discard(register)
        if high:
            address = (bar.address & 0xFFFF_FFFF) | value << 32
        else:
            address = (bar.address & ~0xFFFF_FFFF) | (value & ~(bar.size - 1) & 0xFFFF_FFF0)
        self._write_bar_address(bar, address)
        self.on_bar_moved(bar)

    def _write_bar_address(self, bar: Bar, address: int) -> None:
        bar.address = address
        register = BAR0 + 4 * bar.index
        self._put(register, 4, (address & 0xFFFF_FFF0) | bar.flags)
        if bar.is_64bit:
            self._put(register + 4, 4, address >> 32)
