"""Devices that exist for tests and benchmarks: an MMIO scratch device and a port sink."""

from __future__ import annotations

import threading
import time

ID_OFFSET = 0x00
ID_VALUE = 0x504D564B  # "KVMP", little-endian
SCRATCH_OFFSET = 0x08
SCRATCH_SIZE = 0x80


class MmioTestDevice:
    """A read-only ID register, then scratch bytes that read back whatever was written.

    Accesses of any size and alignment work, so a guest can check that MMIO of every width
    reaches a device with the right offset, size and value.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._scratch = bytearray(SCRATCH_SIZE)

    def read(self, offset: int, size: int) -> int:
        if offset == ID_OFFSET and size == 4:
            return ID_VALUE
        start = offset - SCRATCH_OFFSET
        if 0 <= start and start + size <= SCRATCH_SIZE:
            with self._lock:
                return int.from_bytes(self._scratch[start : start + size], "little")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        start = offset - SCRATCH_OFFSET
        if 0 <= start and start + size <= SCRATCH_SIZE:
            with self._lock:
                self._scratch[start : start + size] = value.to_bytes(size, "little")


class PortSink:
    """Accepts every write and reads as zero: the cheapest possible device, for exit benchmarks."""

    def __init__(self):
        self.writes = 0

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.writes += 1


class MarkerClock:
    """Stands in for the POST port during measurements: timestamps each code the guest writes.

    The loop guests write 1 before and 2 after the code under test, so the time between the
    two marks is the guest's own time for it, without VM set-up or tear-down.
    """

    def __init__(self, clock=time.perf_counter_ns):
        self._clock = clock
        self.marks: dict[int, int] = {}

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.marks[value & 0xFF] = self._clock()

    def elapsed_ns(self, start: int = 1, end: int = 2) -> int:
        return self.marks[end] - self.marks[start]
