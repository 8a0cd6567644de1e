"""Wide port accesses split into the byte accesses an ISA bus turns them into.

An `inw`/`outl` aimed at an 8-bit device reaches consecutive registers one byte at a time,
lowest address first; the CMOS idiom `outw(index | value << 8, 0x70)` relies on it.
"""

from __future__ import annotations

from typing import Callable

OPEN_BUS = 0xFF  # what a read of an undecoded byte returns on an ISA bus


def read_bytes(read_byte: Callable[[int], int], offset: int, size: int) -> int:
    """Little-endian value of `size` byte reads starting at register `offset`."""
    value = 0
    for i in range(size):
        value |= read_byte(offset + i) << (8 * i)
    return value


def write_bytes(
    write_byte: Callable[[int, int], None], offset: int, size: int, value: int
) -> None:
    """Deliver `value` as `size` byte writes starting at register `offset`."""
    for i in range(size):
        write_byte(offset + i, (value >> (8 * i)) & 0xFF)
