"""The 8254 PIT and port 0x61 of the interpreted platform, on a fake clock."""

from kvmpy.interp.platform.pit import CONTROL, NS_PER_S, PIT_HZ, Pit, ticks_to_ns
from kvmpy.interp.platform.speaker import SpeakerPort

CHANNEL0, CHANNEL2 = 0, 2
SPEAKER_GATE, SPEAKER_OUTPUT = 0x01, 0x20


class FakeClock:
    def __init__(self):
        self.now = 1_000_000  # ns; not 0, so nothing depends on starting there

    def __call__(self) -> int:
        return self.now

    def advance_ticks(self, ticks: int) -> None:
        self.now += ticks_to_ns(ticks)


def pit_with_irqs():
    clock, irqs = FakeClock(), []
    return Pit(clock, on_irq=lambda: irqs.append(clock.now)), clock, irqs


def program(pit: Pit, channel: int, mode: int, count: int, access: int = 3) -> None:
    pit.write(CONTROL, 1, channel << 6 | access << 4 | mode << 1)
    if access in (1, 3):
        pit.write(channel, 1, count & 0xFF)
    if access in (2, 3):
        pit.write(channel, 1, count >> 8)


def latched_count(pit: Pit, channel: int) -> int:
    pit.write(CONTROL, 1, channel << 6)  # counter latch
    return pit.read(channel, 1) | pit.read(channel, 1) << 8


def test_mode2_counts_down_and_reloads():
    pit, clock, _ = pit_with_irqs()
    program(pit, CHANNEL0, 2, 1000)
    assert latched_count(pit, CHANNEL0) == 1000
    clock.advance_ticks(250)
    assert latched_count(pit, CHANNEL0) == 750
    clock.advance_ticks(1000)
    assert latched_count(pit, CHANNEL0) == 750


def test_mode2_raises_irq0_once_per_period():
    pit, clock, irqs = pit_with_irqs()
    program(pit, CHANNEL0, 2, 11932)  # 100 Hz, as the timer guest programs it
    start = clock.now
    assert pit.next_event() == start + ticks_to_ns(11932)
    clock.now = pit.next_event() - 1
    pit.poll()
    assert irqs == []
    for period in (1, 2, 3):
        clock.now = start + ticks_to_ns(11932 * period)
        pit.poll()
        assert len(irqs) == period
        pit.poll()
        assert len(irqs) == period  # polled twice, fired once
    assert abs(ticks_to_ns(11932) - NS_PER_S // 100) < 100_000


def test_missed_periods_become_one_interrupt():
    pit, clock, irqs = pit_with_irqs()
    program(pit, CHANNEL0, 2, 100)
    start = clock.now
    clock.advance_ticks(1050)
    pit.poll()
    assert len(irqs) == 1
    assert pit.next_event() == start + ticks_to_ns(1100)


def test_mode0_output_rises_at_terminal_count_once_and_the_counter_wraps():
    pit, clock, irqs = pit_with_irqs()
    program(pit, CHANNEL0, 0, 500)
    assert not pit.output(CHANNEL0)
    clock.advance_ticks(499)
    pit.poll()
    assert not pit.output(CHANNEL0) and irqs == []
    clock.advance_ticks(1)
    pit.poll()
    assert pit.output(CHANNEL0) and len(irqs) == 1
    clock.advance_ticks(600)
    pit.poll()
    assert len(irqs) == 1 and pit.next_event() is None
    assert latched_count(pit, CHANNEL0) == (500 - 1100) & 0xFFFF


def test_mode0_first_byte_of_a_new_count_stops_the_counter_and_drops_the_output():
    pit, clock, _ = pit_with_irqs()
    program(pit, CHANNEL0, 0, 10)
    clock.advance_ticks(20)
    assert pit.output(CHANNEL0)
    pit.write(CHANNEL0, 1, 0x34)
    assert not pit.output(CHANNEL0)


def test_mode3_square_wave_is_high_for_the_first_half_and_counts_by_two():
    pit, clock, irqs = pit_with_irqs()
    program(pit, CHANNEL0, 3, 1000)
    clock.advance_ticks(100)
    assert pit.output(CHANNEL0) and latched_count(pit, CHANNEL0) == 800
    clock.advance_ticks(500)
    assert not pit.output(CHANNEL0) and latched_count(pit, CHANNEL0) == 800
    clock.advance_ticks(400)
    pit.poll()
    assert pit.output(CHANNEL0) and len(irqs) == 1


def test_mode4_strobe_fires_one_edge_after_terminal_count():
    pit, clock, irqs = pit_with_irqs()
    program(pit, CHANNEL0, 4, 50)
    clock.advance_ticks(50)
    assert not pit.output(CHANNEL0)
    pit.poll()
    assert irqs == []
    clock.advance_ticks(1)
    pit.poll()
    assert pit.output(CHANNEL0) and len(irqs) == 1


def test_a_latched_count_holds_while_the_counter_runs_on():
    pit, clock, _ = pit_with_irqs()
    program(pit, CHANNEL0, 2, 0x1234)
    clock.advance_ticks(0x34)
    pit.write(CONTROL, 1, 0x00)  # latch channel 0: 0x1200
    clock.advance_ticks(0x100)
    assert pit.read(CHANNEL0, 1) == 0x00
    clock.advance_ticks(0x100)
    assert pit.read(CHANNEL0, 1) == 0x12
    assert latched_count(pit, CHANNEL0) == 0x1234 - 0x234  # unlatched: live again


def test_live_word_reads_alternate_low_and_high_bytes():
    pit, clock, _ = pit_with_irqs()
    program(pit, CHANNEL0, 2, 0xABCD)
    clock.advance_ticks(0xCD)
    assert (pit.read(CHANNEL0, 1), pit.read(CHANNEL0, 1)) == (0x00, 0xAB)


def test_low_byte_only_access():
    pit, clock, _ = pit_with_irqs()
    program(pit, CHANNEL0, 2, 200, access=1)
    clock.advance_ticks(50)
    assert (pit.read(CHANNEL0, 1), pit.read(CHANNEL0, 1)) == (150, 150)


def test_read_back_latches_status_then_count():
    pit, clock, _ = pit_with_irqs()
    pit.write(CONTROL, 1, 0xB0)  # channel 2, word access, mode 0
    pit.write(CONTROL, 1, 0xE8)  # read back the status of channel 2
    assert pit.read(CHANNEL2, 1) == 0x40 | 0x30  # output low, null count, word access, mode 0
    program(pit, CHANNEL2, 0, 300)
    pit.write(CONTROL, 1, 0xC8)  # read back status and count
    clock.advance_ticks(100)
    assert pit.read(CHANNEL2, 1) == 0x30  # count loaded: null count clear
    assert pit.read(CHANNEL2, 1) | pit.read(CHANNEL2, 1) << 8 == 300


def test_channel2_runs_only_while_port_0x61_raises_its_gate():
    """Linux's TSC calibration: gate up, mode 0, poll bit 5 until the count runs out."""
    clock = FakeClock()
    pit = Pit(clock)
    speaker = SpeakerPort(pit, clock)
    program(pit, CHANNEL2, 0, 1000)
    clock.advance_ticks(5000)
    assert not speaker.read(0, 1) & SPEAKER_OUTPUT  # the gate is low: nothing counted
    assert latched_count(pit, CHANNEL2) == 1000
    speaker.write(0, 1, SPEAKER_GATE)
    assert speaker.read(0, 1) & SPEAKER_GATE
    clock.advance_ticks(999)
    assert not speaker.read(0, 1) & SPEAKER_OUTPUT
    clock.advance_ticks(1)
    assert speaker.read(0, 1) & SPEAKER_OUTPUT


def test_lowering_channel2s_gate_pauses_mode0_and_restarts_mode2():
    clock = FakeClock()
    pit = Pit(clock)
    pit.set_gate(CHANNEL2, True)
    program(pit, CHANNEL2, 0, 1000)
    clock.advance_ticks(300)
    pit.set_gate(CHANNEL2, False)
    clock.advance_ticks(5000)
    pit.set_gate(CHANNEL2, True)
    clock.advance_ticks(100)
    assert latched_count(pit, CHANNEL2) == 600
    program(pit, CHANNEL2, 2, 1000)
    clock.advance_ticks(998)
    pit.set_gate(CHANNEL2, False)
    assert pit.output(CHANNEL2)  # mode 2: a low gate forces the output high
    pit.set_gate(CHANNEL2, True)
    clock.advance_ticks(10)
    assert latched_count(pit, CHANNEL2) == 990  # reloaded on the rising gate


def test_the_refresh_bit_toggles_with_time():
    clock = FakeClock()
    speaker = SpeakerPort(Pit(clock), clock)
    first = speaker.read(0, 1) & 0x10
    clock.now += 15_085
    assert speaker.read(0, 1) & 0x10 != first


def test_the_tick_rate_is_the_pc_crystal_divided_by_twelve():
    assert PIT_HZ == round(14_318_180 / 12)
