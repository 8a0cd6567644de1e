"""The interpreted platform wired together: IRQ routing, the 8259A path to the BSP, timers,
the bus mappings, and the CPUID the interpreted CPU reports."""

import pytest

from kvmpy import layout
from kvmpy.exits import Buses
from kvmpy.interp.platform import Chipset, apic_bus_hz, interp_cpuid
from kvmpy.interp.platform.cpuid import LINUX_UINT_LIMIT
from kvmpy.interp.platform.ioapic import IOREGSEL, IOWIN
from kvmpy.interp.platform.lapic import LVT_LINT0, LVT_TIMER, SVR, TIMER_DIVIDE, TIMER_INITIAL
from kvmpy.interp.platform.pit import ticks_to_ns

BUS_HZ = 1_000_000_000


class FakeClock:
    def __init__(self):
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def chipset(cpus: int = 2) -> tuple[Chipset, FakeClock]:
    clock = FakeClock()
    return Chipset(cpus, BUS_HZ, clock), clock


def init_pic(board: Chipset, base: int = 0x20) -> None:
    for offset, data in ((0, (0x11, base, 4, 1, 0)), (2, (0x11, base + 8, 2, 1, 0))):
        board.pic.write(offset, 1, data[0])
        for value in data[1:]:
            board.pic.write(offset + 1, 1, value)


def route(board: Chipset, pin: int, vector: int, destination: int = 0) -> None:
    board.ioapic.write(IOREGSEL, 4, 0x11 + 2 * pin)
    board.ioapic.write(IOWIN, 4, destination << 24)
    board.ioapic.write(IOREGSEL, 4, 0x10 + 2 * pin)
    board.ioapic.write(IOWIN, 4, vector)


def test_isa_irqs_reach_both_the_8259a_and_the_ioapic():
    board, _ = chipset()
    init_pic(board)
    board.lapics[1].write(SVR, 4, 0x1FF)
    route(board, layout.COM1_IRQ, 0x44, destination=1)
    board.irq_line(layout.COM1_IRQ).set_level(True)
    assert board.pic.output and board.lapics[1].pending_vector() == 0x44


def test_gsis_above_15_reach_only_the_ioapic():
    board, _ = chipset()
    init_pic(board)
    board.lapics[0].write(SVR, 4, 0x1FF)
    route(board, 17, 0x51)
    board.irq_line(17).pulse()
    assert not board.pic.output and board.lapics[0].pending_vector() == 0x51


def test_irq_lines_exist_for_the_ioapic_pins_only():
    board, _ = chipset()
    with pytest.raises(Exception, match="IOAPIC pin"):
        board.irq_line(layout.IOAPIC_PINS)


def test_the_pit_interrupts_the_bsp_through_the_8259a_in_virtual_wire_mode():
    """The timer guest's path: no APIC set up, PIC remapped, PIT channel 0 in mode 2."""
    board, clock = chipset()
    init_pic(board)
    heard = []
    board.lapics[0].listener = lambda: heard.append(board.interrupt_pending(0))
    board.pit.write(3, 1, 0x34)
    board.pit.write(0, 1, 100)
    board.pit.write(0, 1, 0)
    assert board.next_deadline(0) == clock.now + ticks_to_ns(100)
    clock.now += ticks_to_ns(100)
    board.poll(0)
    assert heard == [True] and not board.interrupt_pending(1)
    assert board.acknowledge(0) == 0x20
    assert not board.interrupt_pending(0)


def test_a_bsp_that_masks_lint0_no_longer_takes_8259a_interrupts():
    board, _ = chipset()
    init_pic(board)
    board.lapics[0].write(LVT_LINT0, 4, 1 << 16 | 0x700)
    board.set_irq(1, True)
    assert board.pic.output and not board.interrupt_pending(0)
    assert board.acknowledge(0) == -1


def test_the_next_deadline_is_the_earlier_of_the_pit_and_the_cpus_apic_timer():
    board, clock = chipset()
    lapic = board.lapics[1]
    lapic.write(SVR, 4, 0x1FF)
    lapic.write(LVT_TIMER, 4, 0xEC)
    lapic.write(TIMER_DIVIDE, 4, 0xB)
    lapic.write(TIMER_INITIAL, 4, 500)  # 500 ns at 1 GHz
    assert board.next_deadline(1) == clock.now + 500 and board.next_deadline(0) is None
    board.pit.write(3, 1, 0x34)
    board.pit.write(0, 1, 1)
    board.pit.write(0, 1, 0)
    assert board.next_deadline(0) == clock.now + ticks_to_ns(1)
    assert board.next_deadline(1) == clock.now + 500
    clock.now += 500
    board.poll(1)
    assert board.interrupt_pending(1) and board.acknowledge(1) == 0xEC


def test_attach_maps_the_shared_devices_on_the_machine_buses():
    board, _ = chipset()
    buses = Buses()
    board.attach(buses)
    expected = {layout.PIC_MASTER_PORT: "pic-master", layout.PIC_SLAVE_PORT + 1: "pic-slave",
                layout.ELCR_PORT + 1: "elcr", layout.PIT_PORT + 3: "pit", layout.PC_SPEAKER_PORT: "speaker"}
    assert {port: buses.ports.find(port).name for port in expected} == expected
    assert buses.mmio.find(layout.IOAPIC_ADDR).name == "ioapic"
    assert buses.mmio.find(layout.LAPIC_ADDR) is None  # each vCPU's own, not on the shared bus
    buses.ports.write(layout.PIC_SLAVE_PORT + 1, 1, 0x5A)  # through the lock, to the slave's mask
    assert board.pic.slave.imr == 0x5A


# --- CPUID ------------------------------------------------------------------------------------


def leaf(entries, function: int, index: int = 0):
    return next(e[3:] for e in entries if e[0] == function and (not e[2] or e[1] == index))


def test_cpuid_gives_each_vcpu_its_apic_id_and_the_vcpu_count():
    for index in range(3):
        _, ebx, _, _ = leaf(interp_cpuid(index, 3, 2_500_000_000), 1)
        assert ebx >> 24 == index and (ebx >> 16) & 0xFF == 3


def test_cpuid_platform_bits_are_the_interpreters_own():
    """Which instruction sets appear is test_cpu_model's subject; here the platform: no x2APIC,
    no TSC-deadline timer, the hypervisor bit,
    long mode, SYSCALL and NX."""
    entries = interp_cpuid(0, 1, 2_500_000_000)
    _, _, ecx, _ = leaf(entries, 1)
    for bit in (21, 24):  # x2APIC TSC-deadline
        assert not ecx & (1 << bit)
    assert ecx & (1 << 31)  # hypervisor
    _, _, _, ext_edx = leaf(entries, 0x8000_0001)
    assert ext_edx & (1 << 29) and ext_edx & (1 << 11) and ext_edx & (1 << 20)  # LM, SYSCALL, NX


def test_cpuid_leaf_15h_gives_linux_the_tsc_and_apic_timer_frequencies():
    tsc_hz = 2_595_659_000
    denominator, numerator, crystal_hz, _ = leaf(interp_cpuid(0, 1, tsc_hz), 0x15)
    assert crystal_hz == apic_bus_hz(tsc_hz) == tsc_hz
    assert crystal_hz // 1000 * numerator // denominator == tsc_hz // 1000  # Linux's tsc_khz


def test_a_tsc_too_fast_for_linuxs_arithmetic_gets_a_slower_crystal():
    tsc_hz = 5_000_000_000
    denominator, numerator, crystal_hz, _ = leaf(interp_cpuid(0, 1, tsc_hz), 0x15)
    assert crystal_hz // 1000 * 1000 < LINUX_UINT_LIMIT
    assert crystal_hz // 1000 * numerator // denominator == tsc_hz // 1000


def test_cpuid_vendor_and_hypervisor_signature():
    entries = interp_cpuid(0, 1, 2_000_000_000)
    _, ebx, ecx, edx = leaf(entries, 0)
    assert (ebx.to_bytes(4, "little") + edx.to_bytes(4, "little") + ecx.to_bytes(4, "little")) == b"GenuineIntel"
    _, ebx, ecx, edx = leaf(entries, 0x4000_0000)
    assert b"".join(r.to_bytes(4, "little") for r in (ebx, ecx, edx)) == b"kvmpy interp"
