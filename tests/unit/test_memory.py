import mmap

import pytest

from kvmpy.errors import ConfigError, GuestMemoryError
from kvmpy.memory import GuestMemory, MemoryRegion

MiB = 1 << 20


@pytest.fixture
def memory():
    mem = GuestMemory.with_hole(8 * MiB, hole_start=4 * MiB, hole_end=16 * MiB)
    yield mem
    mem.close()


def test_hole_splits_ram_into_two_regions(memory):
    assert [(r.guest_addr, r.size) for r in memory.regions] == [(0, 4 * MiB), (16 * MiB, 4 * MiB)]
    assert memory.size == 8 * MiB


def test_read_write_round_trip_in_both_regions(memory):
    memory.write(0x1000, b"abc")
    memory.write_int(16 * MiB + 8, 8, 0x1122334455667788)
    assert memory.read(0x1000, 3) == b"abc"
    assert memory.read_int(16 * MiB + 8, 8) == 0x1122334455667788
    assert memory.read(16 * MiB + 8, 1) == b"\x88"


@pytest.mark.parametrize(
    "address,length",
    [
        (4 * MiB, 1),  # first byte of the hole
        (4 * MiB - 2, 4),  # straddles the end of RAM below the hole
        (16 * MiB - 1, 2),  # straddles the start of RAM above it
        (20 * MiB, 1),  # past the end
        (2**64 - 1, 2),
    ],
)
def test_accesses_outside_ram_raise(memory, address, length):
    assert not memory.contains(address, length)
    with pytest.raises(GuestMemoryError):
        memory.read(address, length)
    with pytest.raises(GuestMemoryError):
        memory.write(address, b"\0" * length)
    with pytest.raises(GuestMemoryError):
        memory.view(address, length)


def test_negative_addresses_and_lengths_raise(memory):
    with pytest.raises(GuestMemoryError):
        memory.read(-1, 1)
    with pytest.raises(GuestMemoryError):
        memory.read(0, -1)


def test_view_is_a_writable_window(memory):
    window = memory.view(0x2000, 4)
    window[:] = b"wxyz"
    assert memory.read(0x2000, 4) == b"wxyz"
    with pytest.raises(ValueError):
        window[:] = b"too long"


def test_overlapping_regions_are_refused():
    with pytest.raises(ConfigError):
        GuestMemory([MemoryRegion(0, 2 * mmap.PAGESIZE), MemoryRegion(mmap.PAGESIZE, mmap.PAGESIZE)])


@pytest.mark.parametrize("address,size", [(0, 0), (1, mmap.PAGESIZE), (0, 100)])
def test_unaligned_or_empty_regions_are_refused(address, size):
    with pytest.raises(ConfigError):
        MemoryRegion(address, size)
