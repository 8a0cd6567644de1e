"""The IOAPIC of the interpreted platform: redirection entries, masking, edge and level pins."""

from kvmpy.interp.platform.apic_bus import ApicBus
from kvmpy.interp.platform.ioapic import IOREGSEL, IOWIN, IoApic
from kvmpy.interp.platform.lapic import EOI, LDR, SVR, TPR, LocalApic

PINS = 24
MASKED = 1 << 16
LEVEL = 1 << 15
REMOTE_IRR = 1 << 14
LOGICAL = 1 << 11
LOWEST_PRIORITY = 1 << 8
NMI = 4 << 8


class Platform:
    """An IOAPIC and two local APICs on one bus, with register helpers."""

    def __init__(self):
        self.bus = ApicBus()
        self.lapics = [LocalApic(index, 1_000_000, lambda: 0, self.bus, bsp=index == 0) for index in range(2)]
        for lapic in self.lapics:
            lapic.write(SVR, 4, 0x1FF)
        self.ioapic = IoApic(self.bus, PINS, ioapic_id=2)

    def register(self, index: int, value: int | None = None) -> int:
        self.ioapic.write(IOREGSEL, 4, index)
        if value is not None:
            self.ioapic.write(IOWIN, 4, value)
        return self.ioapic.read(IOWIN, 4)

    def route(self, pin: int, low: int, destination: int = 0) -> None:
        self.register(0x11 + 2 * pin, destination << 24)
        self.register(0x10 + 2 * pin, low)

    def pending(self) -> list:
        return [lapic.pending_vector() for lapic in self.lapics]

    def take(self, cpu: int) -> int:
        vector = self.lapics[cpu].acknowledge()
        self.lapics[cpu].write(EOI, 4, 0)
        return vector


def test_identification_registers():
    platform = Platform()
    assert platform.register(0x00) == 2 << 24
    assert platform.register(0x01) == (PINS - 1) << 16 | 0x11


def test_entries_start_masked_and_read_back_without_their_read_only_bits_changing():
    platform = Platform()
    assert platform.register(0x10 + 2 * 7) == MASKED
    platform.route(7, LEVEL | 0x41 | REMOTE_IRR, destination=1)
    assert platform.register(0x10 + 2 * 7) == LEVEL | 0x41
    assert platform.register(0x11 + 2 * 7) == 1 << 24


def test_an_edge_pin_sends_its_vector_to_the_destination_once_per_rising_edge():
    platform = Platform()
    platform.route(4, 0x34, destination=1)
    platform.ioapic.set_irq(4, True)
    assert platform.pending() == [None, 0x34]
    platform.take(1)
    platform.ioapic.set_irq(4, True)
    assert platform.pending() == [None, None]
    platform.ioapic.set_irq(4, False)
    platform.ioapic.set_irq(4, True)
    assert platform.pending() == [None, 0x34]


def test_an_edge_arriving_while_masked_is_lost():
    platform = Platform()
    platform.route(5, MASKED | 0x35)
    platform.ioapic.set_irq(5, True)
    platform.route(5, 0x35)
    assert platform.pending() == [None, None]


def test_a_level_pin_waits_for_the_eoi_and_sends_again_while_still_high():
    platform = Platform()
    platform.route(10, LEVEL | 0x3A)
    platform.ioapic.set_irq(10, True)
    assert platform.register(0x10 + 2 * 10) & REMOTE_IRR
    assert platform.lapics[0].acknowledge() == 0x3A
    platform.ioapic.set_irq(10, True)
    assert platform.pending() == [None, None]  # Remote IRR holds it back
    platform.lapics[0].write(EOI, 4, 0)
    assert platform.pending() == [0x3A, None]  # the line is still high: sent again
    platform.ioapic.set_irq(10, False)
    platform.take(0)
    assert platform.pending() == [None, None]
    assert not platform.register(0x10 + 2 * 10) & REMOTE_IRR


def test_unmasking_an_asserted_level_pin_delivers_it():
    platform = Platform()
    platform.route(11, MASKED | LEVEL | 0x3B)
    platform.ioapic.set_irq(11, True)
    assert platform.pending() == [None, None]
    platform.route(11, LEVEL | 0x3B)
    assert platform.pending() == [0x3B, None]


def test_logical_destinations_and_lowest_priority():
    platform = Platform()
    for index, lapic in enumerate(platform.lapics):
        lapic.write(LDR, 4, (1 << index) << 24)
    platform.route(6, LOGICAL | 0x36, destination=0b10)
    platform.ioapic.set_irq(6, True)
    assert platform.pending() == [None, 0x36]
    platform.take(1)
    platform.lapics[0].write(TPR, 4, 0x20)
    platform.route(7, LOGICAL | LOWEST_PRIORITY | 0x47, destination=0b11)
    platform.ioapic.set_irq(7, True)
    assert platform.pending() == [None, 0x47]  # the CPU with the lower task priority


def test_nmi_delivery_mode():
    platform = Platform()
    platform.route(3, NMI)
    platform.ioapic.set_irq(3, True)
    assert platform.lapics[0].nmi_pending and platform.pending() == [None, None]
