"""The debug-exit port: how a test guest reports its verdict and ends the run.

Any write to offset 0 calls `on_verdict` with the low 8 bits of the value written, whatever
the access size (an exit status has 8 bits; `outw`/`outl` of 0..255 therefore work as well as
`outb`). Every write is reported; the VMM acts on the first. Reads return 0. Unlike QEMU's
isa-debug-exit the code is passed through unchanged, so `kvmpy run` exits with exactly the
byte the guest wrote.
"""

from __future__ import annotations

from typing import Callable

# --- Register offsets ------------------------------------------------------------------
VERDICT = 0

VERDICT_MASK = 0xFF


class DebugExit:
    """A write-only verdict register; stateless, so safe from any number of vCPUs."""

    def __init__(self, on_verdict: Callable[[int], None]):
        self._on_verdict = on_verdict

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == VERDICT:
            self._on_verdict(value & VERDICT_MASK)
