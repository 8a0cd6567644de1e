"""Port 0x61, "system control port B": PIT channel 2's gate and output, and the speaker enable.

Linux calibrates the TSC against PIT channel 2 through this port: it raises the gate (bit 0),
programs channel 2 in mode 0 and polls bit 5 (the channel's output) until the count runs out.
Bit 4 toggles every refresh period (about 15 us) as it does on a PC, for old delay loops
that time themselves by it. The speaker itself makes no sound.
"""

from __future__ import annotations

from collections.abc import Callable

from .pit import Pit

# --- Bits ----------------------------------------------------------------------------------
GATE2 = 0x01
SPEAKER_DATA = 0x02
WRITABLE = 0x0F  # gate, speaker data, and the parity/channel-check enables
REFRESH_TOGGLE = 0x10
OUTPUT2 = 0x20

SPEAKER_CHANNEL = 2
REFRESH_PERIOD_NS = 15_085


class SpeakerPort:
    def __init__(self, pit: Pit, clock: Callable[[], int]):
        self._pit = pit
        self._clock = clock
        self.value = 0  # the writable bits
        pit.set_gate(SPEAKER_CHANNEL, False)

    def read(self, offset: int, size: int) -> int:
        refresh = REFRESH_TOGGLE if (self._clock() // REFRESH_PERIOD_NS) & 1 else 0
        output = OUTPUT2 if self._pit.output(SPEAKER_CHANNEL) else 0
        return self.value | refresh | output

    def write(self, offset: int, size: int, value: int) -> None:
        self.value = value & WRITABLE
        self._pit.set_gate(SPEAKER_CHANNEL, bool(value & GATE2))
