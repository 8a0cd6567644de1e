"""The PC's two cascaded 8259A interrupt controllers and their edge/level control registers.

The master takes IRQ 0-7, the slave IRQ 8-15 and drives the master's input 2. Each chip
latches requests in IRR (on a rising edge, or for as long as the line is high when the ELCR
makes it level-triggered), masks them with IMR and raises its output while its best unmasked
request outranks everything in service (ISR). The CPU's interrupt-acknowledge cycle
(`PicPair.acknowledge`) moves that request to ISR and yields its vector; the guest ends it with
an EOI command.

Modelled: the ICW1-ICW4 initialisation sequence, OCW1 (mask), OCW2 (specific and non-specific
EOI, rotation, set priority), OCW3 (read IRR/ISR, poll, special mask), auto-EOI, special fully
nested mode, spurious IRQ 7/15. Not modelled: 8080 mode and buffered mode, which change nothing
on a PC. Accesses wider than a byte use their low byte, as each port is one 8-bit register.

Register offsets as the bus hands them to `PicPair` (three port ranges, one device):
0/1 master command/data (0x20/0x21), 2/3 slave command/data (0xA0/0xA1), 4/5 ELCR (0x4D0/0x4D1).
"""

from __future__ import annotations

from collections.abc import Callable

# --- Register offsets ----------------------------------------------------------------------
MASTER_COMMAND = 0
MASTER_DATA = 1
SLAVE_COMMAND = 2
SLAVE_DATA = 3
ELCR_MASTER = 4
ELCR_SLAVE = 5

# --- Command bits --------------------------------------------------------------------------
ICW1 = 0x10  # a command-port write with this bit starts initialisation
ICW1_NEEDS_ICW4 = 0x01
ICW1_SINGLE = 0x02  # no cascade: ICW3 is skipped
ICW4_AUTO_EOI = 0x02
ICW4_SPECIAL_FULLY_NESTED = 0x10
OCW3 = 0x08  # with ICW1 clear: OCW3 if set, OCW2 if not
OCW3_READ_REGISTER = 0x02  # with OCW3_READ_ISR: ISR, without: IRR
OCW3_READ_ISR = 0x01
OCW3_POLL = 0x04
OCW3_SET_SPECIAL_MASK = 0x40  # with OCW3_SPECIAL_MASK: set, without: clear
OCW3_SPECIAL_MASK = 0x20
OCW2_LEVEL = 0x07
OCW2_COMMAND = 0xE0
# OCW2 bits 7-5: rotate, specific, EOI.
OCW2_ROTATE_AUTO_EOI_CLEAR = 0x00
OCW2_EOI = 0x20
OCW2_NOP = 0x40
OCW2_SPECIFIC_EOI = 0x60
OCW2_ROTATE_AUTO_EOI_SET = 0x80
OCW2_ROTATE_EOI = 0xA0
OCW2_SET_PRIORITY = 0xC0
OCW2_ROTATE_SPECIFIC_EOI = 0xE0
POLL_INTERRUPT = 0x80  # poll-mode read: an interrupt was pending (its level in bits 2-0)

CASCADE_PIN = 2
SPURIOUS_PIN = 7
PINS = 8
# ELCR bits that exist: IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge-triggered.
ELCR_WRITABLE = (0xF8, 0xDE)


class Pic8259:
    """One 8259A: request, mask and in-service registers and the priority logic."""

    def __init__(self, master: bool):
        self.master = master
        self.elcr = 0  # the ELCR is a separate chipset register: initialisation leaves it alone
        self.levels = 0  # current input line levels, for edge detection
        self.vector_base = 0
        self.cascade = 0  # ICW3
        self.irr = 0
        self._initialise()
        self.init_step = 0  # out of reset the chip takes masks and commands at once

    def _initialise(self) -> None:
        """ICW1's effects: masks, in-service and priorities cleared, edge detection re-armed."""
        self.irr &= self.elcr
        self.imr = 0
        self.isr = 0
        self.lowest = PINS - 1  # lowest-priority pin; the one after it has the highest priority
        self.auto_eoi = False
        self.rotate_on_auto_eoi = False
        self.special_fully_nested = False
        self.special_mask = False
        self.read_isr = False
        self.poll = False
        self.levels &= self.elcr
        self.needs_icw4 = False
        self.single = False
        self.init_step = 2

    # --- priorities ----------------------------------------------------------------------
    def _rank(self, pin: int) -> int:
        """0 for the highest-priority pin, 7 for the lowest."""
        return (pin - self.lowest - 1) % PINS

    def _best(self, bits: int) -> int | None:
        """The highest-priority pin among `bits`."""
        for rank in range(PINS):
            pin = (self.lowest + 1 + rank) % PINS
            if bits & (1 << pin):
                return pin
        return None

    def pending(self) -> int | None:
        """The pin this chip would signal now: its best unmasked request, if it outranks ISR."""
        request = self._best(self.irr & ~self.imr)
        if request is None:
            return None
        in_service = self.isr
        if self.special_mask:
            in_service &= ~self.imr
        if self.special_fully_nested and self.master:
            in_service &= ~(1 << CASCADE_PIN)  # the slave does its own nesting
        current = self._best(in_service)
        if current is not None and self._rank(current) <= self._rank(request):
            return None
        return request

    @property
    def output(self) -> bool:
        return self.pending() is not None

    # --- inputs --------------------------------------------------------------------------
    def set_irq(self, pin: int, level: bool) -> None:
        mask = 1 << pin
        if level:
            if self.elcr & mask or not self.levels & mask:
                self.irr |= mask
            self.levels |= mask
        else:
            self.levels &= ~mask
            if self.elcr & mask:
                self.irr &= ~mask

    def acknowledge(self) -> int | None:
        """The INTA cycle: the signalled pin moves to ISR (unless auto-EOI); None if spurious."""
        pin = self.pending()
        if pin is None:
            return None
        mask = 1 << pin
        if not self.elcr & mask:
            self.irr &= ~mask  # an edge is consumed; a level keeps requesting while high
        if self.auto_eoi:
            if self.rotate_on_auto_eoi:
                self.lowest = pin
        else:
            self.isr |= mask
        return pin

    # --- registers -----------------------------------------------------------------------
    def read_command(self) -> int:
        if self.poll:
            self.poll = False
            pin = self.acknowledge()
            return 0 if pin is None else POLL_INTERRUPT | pin
        return self.isr if self.read_isr else self.irr

    def read_data(self) -> int:
        return self.imr

    def write_command(self, value: int) -> None:
        if value & ICW1:
            self._initialise()
            self.needs_icw4 = bool(value & ICW1_NEEDS_ICW4)
            self.single = bool(value & ICW1_SINGLE)
        elif value & OCW3:
            self._ocw3(value)
        else:
            self._ocw2(value)

    def write_data(self, value: int) -> None:
        if self.init_step == 2:
            self.vector_base = value & 0xF8
            self.init_step = 0 if self.single and not self.needs_icw4 else (4 if self.single else 3)
        elif self.init_step == 3:
            self.cascade = value
            self.init_step = 4 if self.needs_icw4 else 0
        elif self.init_step == 4:
            self.auto_eoi = bool(value & ICW4_AUTO_EOI)
            self.special_fully_nested = bool(value & ICW4_SPECIAL_FULLY_NESTED)
            self.init_step = 0
        else:
            self.imr = value

    def _ocw2(self, value: int) -> None:
        command, level = value & OCW2_COMMAND, value & OCW2_LEVEL
        if command in (OCW2_EOI, OCW2_ROTATE_EOI):
            pin = self._best(self.isr)
            if pin is not None:
                self.isr &= ~(1 << pin)
                if command == OCW2_ROTATE_EOI:
                    self.lowest = pin
        elif command in (OCW2_SPECIFIC_EOI, OCW2_ROTATE_SPECIFIC_EOI):
            self.isr &= ~(1 << level)
            if command == OCW2_ROTATE_SPECIFIC_EOI:
                self.lowest = level
        elif command == OCW2_SET_PRIORITY:
            self.lowest = level
        elif command in (OCW2_ROTATE_AUTO_EOI_SET, OCW2_ROTATE_AUTO_EOI_CLEAR):
            self.rotate_on_auto_eoi = command == OCW2_ROTATE_AUTO_EOI_SET

    def _ocw3(self, value: int) -> None:
        if value & OCW3_POLL:
            self.poll = True
        if value & OCW3_READ_REGISTER:
            self.read_isr = bool(value & OCW3_READ_ISR)
        if value & OCW3_SET_SPECIAL_MASK:
            self.special_mask = bool(value & OCW3_SPECIAL_MASK)


class PicPair:
    """Master and slave 8259A, cascaded on the master's input 2, plus the ELCR.

    `on_output(level)` is called whenever the master's interrupt output changes.
    """

    def __init__(self, on_output: Callable[[bool], None] = lambda level: None):
        self.master = Pic8259(master=True)
        self.slave = Pic8259(master=False)
        self._on_output = on_output
        self._output = False

    @property
    def output(self) -> bool:
        return self._output

    def set_irq(self, irq: int, level: bool) -> None:
        """Drive ISA line `irq` (0-15)."""
        if irq < PINS:
            self.master.set_irq(irq, level)
        else:
            self.slave.set_irq(irq - PINS, level)
        self._update()

    def acknowledge(self) -> int:
        """The vector of the interrupt the CPU takes now (IRQ 7 or 15's when spurious)."""
        pin = self.master.acknowledge()
        if pin is None:
            vector = self.master.vector_base + SPURIOUS_PIN
        elif pin == CASCADE_PIN and not self.master.single:
            slave_pin = self.slave.acknowledge()
            vector = self.slave.vector_base + (SPURIOUS_PIN if slave_pin is None else slave_pin)
        else:
            vector = self.master.vector_base + pin
        self._update()
        return vector

    def _update(self) -> None:
        self.master.set_irq(CASCADE_PIN, self.slave.output)
        output = self.master.output
        if output != self._output:
            self._output = output
            self._on_output(output)

    # --- the bus device ------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if offset in (ELCR_MASTER, ELCR_SLAVE):
            return self._chip(offset - ELCR_MASTER).elcr
        chip = self._chip(offset // 2)
        value = chip.read_command() if offset % 2 == 0 else chip.read_data()
        self._update()  # a poll-mode read acknowledges
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        if offset in (ELCR_MASTER, ELCR_SLAVE):
            index = offset - ELCR_MASTER
            self._chip(index).elcr = value & ELCR_WRITABLE[index]
        else:
            chip = self._chip(offset // 2)
            if offset % 2 == 0:
                chip.write_command(value)
            else:
                chip.write_data(value)
        self._update()

    def _chip(self, index: int) -> Pic8259:
        return self.master if index == 0 else self.slave
