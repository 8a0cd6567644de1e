"""Interrupt lines as devices see them: something to raise, lower or pulse.

Devices are handed an `IrqLine` and never learn whether it ends at KVM's in-kernel irqchip,
an irqfd, the software interrupt controller of the interpreter, or a test recorder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class IrqLine(Protocol):
    def set_level(self, high: bool) -> None:
        """Drive a level-triggered line (a 16550 holds its line while an interrupt is pending)."""

    def pulse(self) -> None:
        """Signal an edge (virtio-mmio used-buffer notifications)."""


class CallbackIrqLine:
    """An IRQ line that forwards to a function taking the new level (0 or 1)."""

    def __init__(self, set_level: Callable[[int], None]):
        self._set = set_level
        self.level = 0

    def set_level(self, high: bool) -> None:
        level = 1 if high else 0
        if level != self.level:
            self.level = level
            self._set(level)

    def pulse(self) -> None:
        self._set(1)
        self._set(0)
        self.level = 0


class RecordingIrqLine:
    """An IRQ line that remembers what was done to it; for unit tests of devices."""

    def __init__(self):
        self.level = False
        self.pulses = 0
        self.history: list[bool] = []

    def set_level(self, high: bool) -> None:
        self.level = bool(high)
        self.history.append(self.level)

    def pulse(self) -> None:
        self.pulses += 1
