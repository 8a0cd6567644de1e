"""The 8254 programmable interval timer: three 16-bit down-counters clocked at 1.193182 MHz.

Nothing ticks: a channel remembers when counting started and works its counter and output
out from the host clock whenever they are looked at. Channel 0's output is IRQ 0: `poll()`
reports the rising edges that have come due as one pulse on `on_irq` (several missed periods
become one interrupt, as they would for a CPU that did not take the first one in time).
Channel 2's gate and output are wired to port 0x61 (see speaker.py), which is how Linux
calibrates the TSC against the PIT. Channel 1 (DRAM refresh on a PC) counts and drives nothing.

Modelled: modes 0-5 (6 and 7 alias 2 and 3), low/high/word access with the read and write
flip-flops, the counter-latch command, the read-back command (count and status), and the
gate of channel 2 (pause for modes 0, 2, 3 and 4, trigger for modes 1 and 5). Not modelled:
BCD counting (the BCD bit is kept and reported, but counts are binary) and the one clock a
newly written count waits before it is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

PIT_HZ = 1_193_182
NS_PER_S = 1_000_000_000
COUNTER_RANGE = 0x10000  # a count of 0 means 65536

# --- Register offsets ----------------------------------------------------------------------
CHANNEL_DATA = (0, 1, 2)
CONTROL = 3

# --- The control word ----------------------------------------------------------------------
SELECT_SHIFT = 6
SELECT_READ_BACK = 3
ACCESS_SHIFT = 4
ACCESS_LATCH = 0  # the counter-latch command
ACCESS_LOW = 1
ACCESS_HIGH = 2
ACCESS_WORD = 3  # low byte, then high byte
MODE_SHIFT = 1
BCD = 0x01
READ_BACK_NO_COUNT = 0x20  # read-back: bits active low
READ_BACK_NO_STATUS = 0x10
READ_BACK_CHANNELS_SHIFT = 1
STATUS_OUTPUT = 0x80
STATUS_NULL_COUNT = 0x40

# --- Modes ---------------------------------------------------------------------------------
INTERRUPT_ON_TERMINAL_COUNT = 0
ONE_SHOT = 1  # hardware-retriggerable
RATE_GENERATOR = 2
SQUARE_WAVE = 3
SOFTWARE_STROBE = 4
HARDWARE_STROBE = 5
GATE_PAUSES = (INTERRUPT_ON_TERMINAL_COUNT, RATE_GENERATOR, SQUARE_WAVE, SOFTWARE_STROBE)
GATE_TRIGGERS = (ONE_SHOT, HARDWARE_STROBE)
PERIODIC = (RATE_GENERATOR, SQUARE_WAVE)


def ticks_to_ns(ticks: int) -> int:
    return -(-ticks * NS_PER_S // PIT_HZ)


class PitChannel:
    """One counter: its mode, the count written, and when (in host time) it started counting."""

    def __init__(self, clock: Callable[[], int]):
        self._clock = clock
        self.gate = True  # only channel 2's gate is wired to anything (port 0x61)
        self.mode = INTERRUPT_ON_TERMINAL_COUNT
        self.access = ACCESS_WORD
        self.bcd = False
        self._program()

    def _program(self) -> None:
        """What a control word resets: no count loaded, flip-flops and latches cleared."""
        self.reload = COUNTER_RANGE
        self.loaded = False
        self.null_count = True
        self.start = 0  # clock() when counting (re)started
        self.frozen: int | None = None  # ticks counted when a low gate paused the counter
        self.triggered = False  # modes 1 and 5: a gate rising edge started the count
        self.edges = 0  # rising edges of the output since counting started, already reported
        self._low_byte: int | None = None  # word writes: the low byte, waiting for the high one
        self._read_high = False  # word reads: the next byte is the high one
        self.latched: int | None = None
        self._latched_high = False
        self.status: int | None = None

    # --- counting ------------------------------------------------------------------------
    def ticks(self, now: int) -> int | None:
        """Clock ticks counted since the count started; None while it has not started."""
        if not self.loaded or (self.mode in GATE_TRIGGERS and not self.triggered):
            return None
        if self.frozen is not None:
            return self.frozen
        return (now - self.start) * PIT_HZ // NS_PER_S

    def count(self, now: int) -> int:
        """The counting element's value, as a read returns it."""
        ticks = self.ticks(now)
        reload = self.reload
        if ticks is None:
            return reload & 0xFFFF
        if self.mode == RATE_GENERATOR:
            value = reload - ticks % reload
        elif self.mode == SQUARE_WAVE:  # counts down by two in each half-period
            phase, high = ticks % reload, (reload + 1) // 2
            value = reload - 2 * (phase if phase < high else phase - high)
        else:
            value = reload - ticks
        return value & 0xFFFF

    def output(self, now: int) -> bool:
        ticks = self.ticks(now)
        reload = self.reload
        if not self.loaded:
            return self.mode != INTERRUPT_ON_TERMINAL_COUNT  # mode 0 starts low, the others high
        if ticks is None:
            return True
        if self.mode in (INTERRUPT_ON_TERMINAL_COUNT, ONE_SHOT):
            return ticks >= reload
        if self.mode == RATE_GENERATOR:
            return ticks % reload != reload - 1
        if self.mode == SQUARE_WAVE:
            return ticks % reload < (reload + 1) // 2
        return ticks != reload  # the strobes: low for one tick at terminal count

    def _next_edge_tick(self) -> int | None:
        """Tick (from the start of counting) of the next rising output edge not yet reported."""
        if self.mode in PERIODIC:
            return (self.edges + 1) * self.reload
        if self.edges:
            return None
        if self.mode in (INTERRUPT_ON_TERMINAL_COUNT, ONE_SHOT):
            return self.reload
        return self.reload + 1  # the strobes rise again one tick after terminal count

    def next_edge(self) -> int | None:
        """clock() value of the next rising output edge, or None if none is coming."""
        if self.ticks(self._clock()) is None or self.frozen is not None:
            return None
        tick = self._next_edge_tick()
        return None if tick is None else self.start + ticks_to_ns(tick)

    def take_edges(self, now: int) -> bool:
        """True if at least one rising edge is due (and from now on reported)."""
        ticks = self.ticks(now)
        due = None if ticks is None or self.frozen is not None else self._next_edge_tick()
        if due is None or ticks < due:
            return False
        self.edges = ticks // self.reload if self.mode in PERIODIC else 1
        return True

    # --- gate ----------------------------------------------------------------------------
    def set_gate(self, level: bool) -> None:
        if level == self.gate:
            return
        now = self._clock()
        self.gate = level
        if not self.loaded:
            return
        if not level:
            if self.mode in GATE_PAUSES:  # modes 2 and 3 also force the output high
                self.frozen = self.ticks(now) if self.mode not in PERIODIC else 0
        elif self.mode in GATE_TRIGGERS or self.mode in PERIODIC:
            self.start, self.frozen, self.triggered, self.edges = now, None, True, 0
        elif self.frozen is not None:
            self.start, self.frozen = now - ticks_to_ns(self.frozen), None

    # --- registers -----------------------------------------------------------------------
    def set_mode(self, control: int) -> None:
        mode = (control >> MODE_SHIFT) & 7
        self.mode = mode - 4 if mode >= 6 else mode
        self.access = (control >> ACCESS_SHIFT) & 3
        self.bcd = bool(control & BCD)
        self._program()

    def latch_count(self) -> None:
        if self.latched is None:
            self.latched = self.count(self._clock())
            self._latched_high = False

    def latch_status(self) -> None:
        if self.status is None:
            self.status = ((STATUS_OUTPUT if self.output(self._clock()) else 0)
                           | (STATUS_NULL_COUNT if self.null_count else 0)
                           | self.access << ACCESS_SHIFT | self.mode << MODE_SHIFT | int(self.bcd))

    def read(self) -> int:
        if self.status is not None:
            value, self.status = self.status, None
            return value
        if self.latched is not None:
            value = self.latched
            high = self.access == ACCESS_HIGH or (self.access == ACCESS_WORD and self._latched_high)
            self._latched_high = self.access == ACCESS_WORD and not self._latched_high
            if not self._latched_high:
                self.latched = None
            return (value >> 8) if high else value & 0xFF
        value = self.count(self._clock())
        high = self.access == ACCESS_HIGH or (self.access == ACCESS_WORD and self._read_high)
        if self.access == ACCESS_WORD:
            self._read_high = not self._read_high
        return (value >> 8) if high else value & 0xFF

    def write(self, value: int) -> None:
        if self.access == ACCESS_LOW:
            self._load(value)
        elif self.access == ACCESS_HIGH:
            self._load(value << 8)
        elif self._low_byte is None:
            self._low_byte = value
            if self.mode == INTERRUPT_ON_TERMINAL_COUNT:
                self.loaded = False  # the first byte stops mode 0 and drops its output
        else:
            self._load(self._low_byte | value << 8)
            self._low_byte = None

    def _load(self, value: int) -> None:
        self.reload = value or COUNTER_RANGE
        self.loaded, self.null_count, self.triggered, self.edges = True, False, False, 0
        self.start = self._clock()
        self.frozen = 0 if not self.gate and self.mode in GATE_PAUSES else None


class Pit:
    """The three channels behind ports 0x40-0x43; channel 0's rising edges go to `on_irq`."""

    def __init__(self, clock: Callable[[], int], on_irq: Callable[[], None] = lambda: None):
        self._clock = clock
        self._on_irq = on_irq
        self.channels = [PitChannel(clock) for _ in CHANNEL_DATA]

    def read(self, offset: int, size: int) -> int:
        if offset == CONTROL:
            return 0xFF  # write-only
        return self.channels[offset].read()

    def write(self, offset: int, size: int, value: int) -> None:
        value &= 0xFF
        if offset != CONTROL:
            self.channels[offset].write(value)
            return
        select = value >> SELECT_SHIFT
        if select == SELECT_READ_BACK:
            for index, channel in enumerate(self.channels):
                if value & (1 << (index + READ_BACK_CHANNELS_SHIFT)):
                    if not value & READ_BACK_NO_STATUS:
                        channel.latch_status()
                    if not value & READ_BACK_NO_COUNT:
                        channel.latch_count()
        elif (value >> ACCESS_SHIFT) & 3 == ACCESS_LATCH:
            self.channels[select].latch_count()
        else:
            self.channels[select].set_mode(value)

    def set_gate(self, channel: int, level: bool) -> None:
        self.channels[channel].set_gate(level)

    def output(self, channel: int) -> bool:
        return self.channels[channel].output(self._clock())

    def next_event(self) -> int | None:
        """clock() value at which `poll` has an IRQ 0 edge to report, or None."""
        return self.channels[0].next_edge()

    def poll(self) -> None:
        if self.channels[0].take_edges(self._clock()):
            self._on_irq()
