"""A minimal QEMU-compatible fw_cfg: the "traditional" port interface (a 16-bit selector
register, an 8-bit data register that streams the selected item), with the items hobby and
conformance kernels read from QEMU: its signature, RAM size, CPU count and command line.

No DMA interface, no writable items, and an empty file directory.
"""

from __future__ import annotations

import os
import struct

SELECTOR = 0  # register offsets from the device's base port
DATA = 1
PORT_LENGTH = 2

SIGNATURE = 0x0000
ID = 0x0001
RAM_SIZE = 0x0003
NB_CPUS = 0x0005
MAX_CPUS = 0x000F
CMDLINE_SIZE = 0x0014
CMDLINE_DATA = 0x0015
FILE_DIR = 0x0019
FEATURE_TRADITIONAL = 1 << 0  # the port interface (bit 1 would be DMA)


def machine_items(ram_size: int, cpus: int, cmdline: str) -> dict[int, bytes]:
    """The items for a machine: little-endian numbers, as QEMU's; the file directory's count is
    big-endian (as every field of it is), and zero."""
    encoded = os.fsencode(cmdline) + b"\0"  # argv's bytes, as the loader writes them
    return {
        SIGNATURE: b"QEMU",
        ID: struct.pack("<I", FEATURE_TRADITIONAL),
        RAM_SIZE: struct.pack("<Q", ram_size),
        NB_CPUS: struct.pack("<H", cpus),
        MAX_CPUS: struct.pack("<H", cpus),
        CMDLINE_SIZE: struct.pack("<I", len(encoded)),
        CMDLINE_DATA: encoded,
        FILE_DIR: struct.pack(">I", 0),
    }


class FwCfg:
    """Select an item by writing its key; then each data read gives its next byte (0 past the end,
    and for a key with no item)."""

    def __init__(self, items: dict[int, bytes] | None = None):
        self.items = dict(items or {})
        self._selected = b""
        self._position = 0

    def read(self, offset: int, size: int) -> int:
        if offset != DATA:
            return 0
        value = 0
        for index in range(size):  # a wider read streams that many bytes, as QEMU's does
            byte = self._selected[self._position] if self._position < len(self._selected) else 0
            self._position += 1
            value |= byte << (8 * index)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        if offset == SELECTOR:
            self._selected = self.items.get(value & 0xFFFF, b"")
            self._position = 0
