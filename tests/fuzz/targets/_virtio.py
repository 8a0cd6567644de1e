"""What the virtio targets share: a fresh device on a mock guest per input (so an input
always replays the same way), and the properties every run must keep."""

from __future__ import annotations

from kvmpy.virtio.hostile import DEVICE_MAKERS, HostileDriver
from kvmpy.virtio.testing import MockGuest

from ._support import WORK_DIR, Input

DEVICE_NAMES = tuple(sorted(DEVICE_MAKERS))
RAM_WRITE_SIZE = 4


def fresh_guest(device_name: str, transport: str) -> MockGuest:
    return MockGuest(DEVICE_MAKERS[device_name](WORK_DIR), transport=transport)


def write_ram(guest: MockGuest, reader: Input) -> None:
    """The guest writes 4 bytes of its RAM (a ring or a request), anywhere in its two regions."""
    address = reader.u16() << 2
    region_base, region_size = guest.REGIONS[address >> 16 & 1]
    guest.memory.write(region_base + address % (region_size - RAM_WRITE_SIZE), reader.take(RAM_WRITE_SIZE))


def check(guest: MockGuest) -> None:
    """No access outside guest RAM was ever attempted, and the status register still holds
    one byte (after arbitrary register writes a device may be anywhere in negotiation)."""
    assert guest.memory.refused == [], guest.memory.refused
    status = guest.transport.status
    assert 0 <= status <= 0xFF, status


def play_hostile_rings(device_name: str, data: bytes) -> None:
    """One HostileDriver example against a fresh device; the first byte picks the transport."""
    guest = fresh_guest(device_name, ("mmio", "pci")[data[0] & 1] if data else "mmio")
    try:
        HostileDriver(guest).run(data[1:])
        check(guest)
    finally:
        guest.close()


def play_transport_ops(transport: str, data: bytes, step) -> None:
    """A fresh device (the first byte picks which) on `transport`, then `step(guest, reader,
    op, where)` for each (op, where) byte pair of the rest; the properties at the end."""
    reader = Input(data)
    guest = fresh_guest(DEVICE_NAMES[reader.u8() % len(DEVICE_NAMES)], transport)
    try:
        while not reader.exhausted:
            step(guest, reader, reader.u8(), reader.u8())
        check(guest)
    finally:
        guest.close()
