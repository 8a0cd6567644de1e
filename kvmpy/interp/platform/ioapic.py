"""The IOAPIC: 24 interrupt input pins, each with a redirection entry that turns it into an
APIC-bus message (vector, delivery mode, destination), at layout.IOAPIC_ADDR.

Registers are reached indirectly: the guest writes a register index to IOREGSEL and reads or
writes the register through IOWIN. An edge-triggered pin sends its message on each rising edge
(while unmasked; an edge that arrives masked is lost). A level-triggered pin sends it while
the line is high and Remote IRR is clear, sets Remote IRR, and waits for the local APIC's EOI
of that vector before it may send again. Line levels are logical (asserted or not), as KVM
treats them: the polarity bit is kept but does not invert anything. Version 0x11, like the
MP table says: no EOI register, no directed EOI.
"""

from __future__ import annotations

from .apic_bus import ApicBus

# --- Register offsets (MMIO) ---------------------------------------------------------------
IOREGSEL = 0x00
IOWIN = 0x10

# --- Indirect registers --------------------------------------------------------------------
REG_ID = 0x00
REG_VERSION = 0x01
REG_ARBITRATION = 0x02
REG_REDIRECTION = 0x10  # two 32-bit registers per pin: low, then high
ID_SHIFT = 24
IOAPIC_VERSION = 0x11
MAX_ENTRY_SHIFT = 16

# --- Redirection entry bits ----------------------------------------------------------------
VECTOR = 0xFF
DELIVERY_MODE_SHIFT = 8
LOGICAL = 1 << 11
DELIVERY_PENDING = 1 << 12
ACTIVE_LOW = 1 << 13
REMOTE_IRR = 1 << 14
LEVEL_TRIGGERED = 1 << 15
MASKED = 1 << 16
DESTINATION_SHIFT = 56
READ_ONLY = DELIVERY_PENDING | REMOTE_IRR
WRITABLE_LOW = 0x1FFFF & ~READ_ONLY


class IoApic:
    def __init__(self, bus: ApicBus, pins: int, ioapic_id: int = 0):
        self._bus = bus
        self.id = ioapic_id
        self.select = 0
        self.entries = [MASKED] * pins
        self.levels = [False] * pins
        bus.eoi_listeners.append(self.end_of_interrupt)

    # --- pins ----------------------------------------------------------------------------
    def set_irq(self, pin: int, level: bool) -> None:
        rising = level and not self.levels[pin]
        self.levels[pin] = level
        if self.entries[pin] & LEVEL_TRIGGERED:
            self._service_level(pin)
        elif rising and not self.entries[pin] & MASKED:
            self._send(pin)

    def _service_level(self, pin: int) -> None:
        entry = self.entries[pin]
        if self.levels[pin] and not entry & (MASKED | REMOTE_IRR):
            self.entries[pin] |= REMOTE_IRR
            self._send(pin)

    def _send(self, pin: int) -> None:
        entry = self.entries[pin]
        self._bus.send((entry >> DELIVERY_MODE_SHIFT) & 7, entry & VECTOR, entry >> DESTINATION_SHIFT,
                       bool(entry & LOGICAL), bool(entry & LEVEL_TRIGGERED))

    def end_of_interrupt(self, vector: int) -> None:
        """A local APIC ended level-triggered `vector`: pins that sent it may send again."""
        for pin, entry in enumerate(self.entries):
            if entry & REMOTE_IRR and entry & VECTOR == vector:
                self.entries[pin] &= ~REMOTE_IRR
                self._service_level(pin)

    # --- registers -----------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset == IOREGSEL:
            return self.select
        if offset == IOWIN:
            return self._read_register(self.select)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == IOREGSEL:
            self.select = value & 0xFF
        elif offset == IOWIN:
            self._write_register(self.select, value & 0xFFFF_FFFF)

    def _read_register(self, index: int) -> int:
        if index == REG_ID or index == REG_ARBITRATION:
            return self.id << ID_SHIFT
        if index == REG_VERSION:
            return IOAPIC_VERSION | (len(self.entries) - 1) << MAX_ENTRY_SHIFT
        pin, high = divmod(index - REG_REDIRECTION, 2)
        if 0 <= pin < len(self.entries):
            return (self.entries[pin] >> (32 * high)) & 0xFFFF_FFFF
        return 0

    def _write_register(self, index: int, value: int) -> None:
        if index == REG_ID:
            self.id = (value >> ID_SHIFT) & 0xF
            return
        pin, high = divmod(index - REG_REDIRECTION, 2)
        if not 0 <= pin < len(self.entries):
            return
        entry = self.entries[pin]
        if high:
            entry = (entry & 0xFFFF_FFFF) | value << 32
        else:
            entry = (entry & ~0xFFFF_FFFF) | (entry & READ_ONLY) | (value & WRITABLE_LOW)
            if not entry & LEVEL_TRIGGERED:
                entry &= ~REMOTE_IRR
        self.entries[pin] = entry
        if entry & LEVEL_TRIGGERED:
            self._service_level(pin)  # unmasking an asserted level-triggered pin delivers it

