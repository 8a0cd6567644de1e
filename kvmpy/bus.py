"""Address ranges mapped to devices, for both the port-I/O and the MMIO address space.

A device never sees absolute addresses: the bus translates an access into the device's own
register offset, so the same UART model serves COM1 at 0x3f8 and COM2 at 0x2f8 unchanged.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple, Protocol

from .errors import ConfigError


class Device(Protocol):
    """What a bus needs from a device: register reads and writes by offset."""

    def read(self, offset: int, size: int) -> int:
        """Value of `size` bytes at register `offset` (little-endian)."""

    def write(self, offset: int, size: int, value: int) -> None:
        """Store `size` bytes of `value` at register `offset`."""


class Mapping(NamedTuple):
    base: int
    length: int
    device: Device
    name: str
    offset: int = 0  # the device's register offset at `base` (a device split over two ranges)

    @property
    def end(self) -> int:
        return self.base + self.length


class Bus:
    """One address space (ports or MMIO): non-overlapping ranges, each owned by a device."""

    def __init__(self, name: str):
        self.name = name
        self._bases: list[int] = []
        self._mappings: list[Mapping] = []

    def insert(self, device: Device, base: int, length: int, name: str | None = None, offset: int = 0) -> Mapping:
        """Map [base, base+length) to `device`, whose registers there start at `offset`."""
        if length <= 0:
            raise ConfigError(f"{self.name} range for {name or device!r} must be non-empty")
        mapping = Mapping(base, length, device, name or type(device).__name__, offset)
        index = bisect.bisect_left(self._bases, base)
        neighbours = self._mappings[max(index - 1, 0) : index + 1]
        for other in neighbours:
            if other.base < mapping.end and mapping.base < other.end:
                raise ConfigError(
                    f"{self.name} range {base:#x}+{length:#x} ({mapping.name}) overlaps {other.name}"
                )
        self._bases.insert(index, base)
        self._mappings.insert(index, mapping)
        return mapping

    def remove(self, base: int) -> Device:
        """Detach the device mapped at exactly `base` and return it."""
        index = bisect.bisect_left(self._bases, base)
        if index == len(self._bases) or self._bases[index] != base:
            raise ConfigError(f"no {self.name} device is mapped at {base:#x}")
        del self._bases[index]
        return self._mappings.pop(index).device

    def find(self, address: int) -> Mapping | None:
        """The mapping covering `address`, or None when nothing is there."""
        index = bisect.bisect_right(self._bases, address) - 1
        if index >= 0:
            mapping = self._mappings[index]
            if address < mapping.end:
                return mapping
        return None

    def read(self, address: int, size: int) -> int | None:
        """A device's answer, or None when no device decodes `address`."""
        mapping = self.find(address)
        if mapping is None:
            return None
        return mapping.device.read(address - mapping.base + mapping.offset, size)

    def write(self, address: int, size: int, value: int) -> bool:
        """Deliver a write; False when no device decodes `address`."""
        mapping = self.find(address)
        if mapping is None:
            return False
        mapping.device.write(address - mapping.base + mapping.offset, size, value)
        return True

    def __iter__(self):
        return iter(self._mappings)
