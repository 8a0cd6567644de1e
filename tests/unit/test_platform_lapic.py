"""The local APIC of the interpreted platform: timer, priorities and EOI, IPIs, INIT/STARTUP."""

import pytest

from kvmpy.interp.platform.apic_bus import ApicBus
from kvmpy.interp.platform.lapic import (
    EOI,
    ICR_HIGH,
    ICR_LOW,
    ID,
    IRR,
    ISR,
    LDR,
    LVT_LINT0,
    LVT_TIMER,
    PPR,
    SVR,
    TIMER_CURRENT,
    TIMER_DIVIDE,
    TIMER_INITIAL,
    TPR,
    VERSION,
    MAX_TIMER_BACKLOG,
    LocalApic,
)

BUS_HZ = 100_000_000  # 10 ns per bus clock
SOFTWARE_ENABLE = 0x1FF
MASKED = 1 << 16
PERIODIC = 1 << 17
DIVIDE_BY_1 = 0xB
DIVIDE_BY_16 = 0x3


class FakeClock:
    def __init__(self):
        self.now = 5_000_000

    def __call__(self) -> int:
        return self.now


def apics(count: int = 2):
    clock, bus = FakeClock(), ApicBus()
    lapics = [LocalApic(index, BUS_HZ, clock, bus, bsp=index == 0) for index in range(count)]
    for lapic in lapics:
        lapic.write(SVR, 4, SOFTWARE_ENABLE)
    return lapics, clock, bus


def test_identity_and_version_registers():
    (first, second), _, _ = apics()
    assert second.read(ID, 4) == 1 << 24
    assert first.read(VERSION, 4) & 0xFF == 0x14 and (first.read(VERSION, 4) >> 16) & 0xFF == 5


def test_one_shot_timer_counts_down_fires_once_and_stops():
    (lapic, _), clock, _ = apics()
    lapic.write(TIMER_DIVIDE, 4, DIVIDE_BY_16)
    lapic.write(LVT_TIMER, 4, 0xEC)
    lapic.write(TIMER_INITIAL, 4, 1000)  # 1000 * 16 clocks = 160 us
    start = clock.now
    assert lapic.timer_deadline() == start + 160_000
    clock.now += 80_000
    assert lapic.read(TIMER_CURRENT, 4) == 500
    lapic.poll_timer()
    assert lapic.pending_vector() is None
    clock.now = start + 160_000
    lapic.poll_timer()
    assert lapic.pending_vector() == 0xEC
    assert lapic.read(TIMER_CURRENT, 4) == 0 and lapic.timer_deadline() is None


def take(lapic: LocalApic) -> int | None:
    """The CPU takes the pending interrupt and ends it at once."""
    vector = lapic.acknowledge()
    if vector is not None:
        lapic.write(EOI, 4, 0)
    return vector


def test_periodic_timer_reloads_and_delivers_late_expiries_one_at_a_time():
    (lapic, _), clock, _ = apics()
    lapic.write(TIMER_DIVIDE, 4, DIVIDE_BY_1)
    lapic.write(LVT_TIMER, 4, PERIODIC | 0xEC)
    lapic.write(TIMER_INITIAL, 4, 100)  # 1 us
    start = clock.now
    clock.now = start + 1_000
    lapic.poll_timer()
    assert take(lapic) == 0xEC
    assert lapic.timer_deadline() == start + 2_000
    clock.now = start + 5_500  # four periods late
    assert lapic.read(TIMER_CURRENT, 4) == 50
    lapic.poll_timer()
    lapic.poll_timer()  # the first late one is still in IRR: nothing more queues behind it
    assert take(lapic) == 0xEC and lapic.pending_vector() is None
    late = 1
    while True:
        lapic.poll_timer()
        if take(lapic) is None:
            break
        late += 1
    assert late == 4  # every missed period arrived, none twice
    assert lapic.timer_deadline() == start + 6_000


def test_late_expiries_are_bounded_and_dropped_when_the_timer_is_masked():
    (lapic, _), clock, _ = apics()
    lapic.write(TIMER_DIVIDE, 4, DIVIDE_BY_1)
    lapic.write(LVT_TIMER, 4, PERIODIC | 0xEC)
    lapic.write(TIMER_INITIAL, 4, 1)  # 10 ns
    clock.now += 10 * (MAX_TIMER_BACKLOG + 500)
    lapic.poll_timer()
    assert lapic.timer_backlog == MAX_TIMER_BACKLOG - 1  # one delivered, the rest capped
    lapic.write(LVT_TIMER, 4, MASKED | PERIODIC | 0xEC)
    take(lapic)
    lapic.poll_timer()
    assert lapic.pending_vector() is None and lapic.timer_backlog == 0


def test_a_masked_timer_keeps_counting_without_interrupting():
    (lapic, _), clock, _ = apics()
    lapic.write(LVT_TIMER, 4, MASKED | PERIODIC | 0xEC)
    lapic.write(TIMER_INITIAL, 4, 50)  # divide by 2 (the reset value): 1 us
    clock.now += 1_000
    lapic.poll_timer()
    assert lapic.pending_vector() is None
    assert lapic.timer_deadline() == clock.now + 1_000


def test_writing_zero_to_the_initial_count_stops_the_timer():
    (lapic, _), _, _ = apics()
    lapic.write(TIMER_INITIAL, 4, 10)
    lapic.write(TIMER_INITIAL, 4, 0)
    assert lapic.timer_deadline() is None


def test_the_highest_vector_is_taken_first_and_in_service_blocks_its_class():
    (lapic, _), _, _ = apics()
    lapic.accept_fixed(0x41)
    lapic.accept_fixed(0x61)
    assert lapic.acknowledge() == 0x61
    assert lapic.read(ISR + 0x30, 4) == 1 << 1  # vector 0x61: ISR register 3, bit 1
    assert lapic.read(PPR, 4) == 0x60
    lapic.accept_fixed(0x62)
    assert lapic.pending_vector() is None  # same priority class as the one in service
    lapic.write(EOI, 4, 0)
    assert lapic.acknowledge() == 0x62
    lapic.write(EOI, 4, 0)
    assert lapic.acknowledge() == 0x41


def test_the_task_priority_holds_back_lower_classes():
    (lapic, _), _, _ = apics()
    lapic.write(TPR, 4, 0x50)
    lapic.accept_fixed(0x45)
    assert lapic.pending_vector() is None and lapic.read(IRR + 0x20, 4) == 1 << 5
    lapic.write(TPR, 4, 0x30)
    assert lapic.pending_vector() == 0x45


def test_eoi_of_a_level_triggered_vector_is_broadcast():
    (lapic, _), _, bus = apics()
    ended = []
    bus.eoi_listeners.append(ended.append)
    lapic.accept_fixed(0x33, level_triggered=True)
    lapic.accept_fixed(0x34)
    lapic.acknowledge()
    lapic.write(EOI, 4, 0)  # 0x34: edge
    lapic.acknowledge()
    lapic.write(EOI, 4, 0)  # 0x33: level
    assert ended == [0x33]


def test_a_software_disabled_apic_drops_fixed_interrupts_and_masks_its_lvts():
    (lapic, _), _, _ = apics()
    lapic.write(LVT_TIMER, 4, 0xEC)
    lapic.write(SVR, 4, 0xFF)
    lapic.accept_fixed(0x50)
    assert lapic.pending_vector() is None
    assert lapic.read(LVT_TIMER, 4) & MASKED
    lapic.write(LVT_TIMER, 4, 0xEC)
    assert lapic.read(LVT_TIMER, 4) & MASKED  # stays masked while disabled


def test_vectors_below_16_are_dropped():
    (lapic, _), _, _ = apics()
    lapic.accept_fixed(0x0E)
    assert lapic.read(IRR, 4) == 0


def test_fixed_ipi_to_a_physical_destination():
    (first, second), _, _ = apics()
    first.write(ICR_HIGH, 4, 1 << 24)
    first.write(ICR_LOW, 4, 0x4000 | 0x51)
    assert second.pending_vector() == 0x51 and first.pending_vector() is None
    assert first.read(ICR_LOW, 4) & (1 << 12) == 0  # delivery status: idle at once


@pytest.mark.parametrize("shorthand, receivers", [(1, [0]), (2, [0, 1]), (3, [1])])
def test_ipi_shorthands(shorthand, receivers):
    lapics, _, _ = apics()
    lapics[0].write(ICR_LOW, 4, shorthand << 18 | 0x4000 | 0x52)
    assert [i for i, lapic in enumerate(lapics) if lapic.pending_vector() == 0x52] == receivers


def test_logical_flat_destinations_address_every_cpu_in_the_mask():
    lapics, _, _ = apics(3)
    for index, lapic in enumerate(lapics):
        lapic.write(LDR, 4, (1 << index) << 24)
    lapics[0].write(ICR_HIGH, 4, 0b110 << 24)
    lapics[0].write(ICR_LOW, 4, 1 << 11 | 0x4000 | 0x53)
    assert [lapic.pending_vector() for lapic in lapics] == [None, 0x53, 0x53]


def test_listener_hears_of_every_arrival():
    (first, second), _, _ = apics()
    heard = []
    second.listener = lambda: heard.append(second.pending_vector())
    first.write(ICR_HIGH, 4, 1 << 24)
    first.write(ICR_LOW, 4, 0x4000 | 0x60)
    assert heard == [0x60]


def test_init_then_startup_as_linux_wakes_an_application_processor():
    (bsp, ap), _, _ = apics()
    bsp.write(ICR_HIGH, 4, 1 << 24)
    bsp.write(ICR_LOW, 4, 0xC500)  # INIT, level, assert
    assert ap.init_pending
    ap.init_pending = False
    bsp.write(ICR_LOW, 4, 0x8500)  # INIT level de-assert: no effect
    assert not ap.init_pending
    bsp.write(ICR_LOW, 4, 0x4600 | 0x9A)  # STARTUP at page 0x9A
    assert ap.startup_vector == 0x9A


def test_nmi_ipi():
    (first, second), _, _ = apics()
    first.write(ICR_HIGH, 4, 1 << 24)
    first.write(ICR_LOW, 4, 0x4400)
    assert second.nmi_pending and not first.nmi_pending


def test_reset_keeps_the_apic_id_and_disables_the_apic():
    (_, second), _, _ = apics()
    second.accept_fixed(0x70)
    second.reset()
    assert second.read(ID, 4) == 1 << 24 and second.read(SVR, 4) == 0xFF and second.pending_vector() is None


def test_the_8259a_reaches_the_bsp_through_lint0_until_the_guest_masks_it():
    (bsp, ap), _, _ = apics()
    assert bsp.accepts_pic_interrupts() and not ap.accepts_pic_interrupts()
    bsp.write(LVT_LINT0, 4, MASKED | 0x700)
    assert not bsp.accepts_pic_interrupts()


def test_a_hardware_disabled_apic_passes_the_8259a_through_and_takes_nothing_itself():
    clock, bus = FakeClock(), ApicBus()
    base = [0xFEE00000]
    lapic = LocalApic(1, BUS_HZ, clock, bus, base_msr=lambda: base[0])
    lapic.write(SVR, 4, SOFTWARE_ENABLE)
    lapic.accept_fixed(0x80)
    assert lapic.accepts_pic_interrupts() and lapic.pending_vector() is None
    base[0] |= 1 << 11
    assert not lapic.accepts_pic_interrupts() and lapic.pending_vector() == 0x80


@pytest.mark.parametrize("divide, divisor", [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64),
                                             (0xA, 128), (0xB, 1)])
def test_divide_configuration(divide, divisor):
    (lapic, _), _, _ = apics()
    lapic.write(TIMER_DIVIDE, 4, divide)
    assert lapic.timer_divisor == divisor
