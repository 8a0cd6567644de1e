"""kvmpy/paging.py: virtual -> physical translation over hand-built page tables."""

import pytest

from kvmpy.memory import GuestMemory, MemoryRegion
from kvmpy.paging import PagingState, read_virtual, translate, write_virtual

pytestmark = pytest.mark.gdb

P, W, PS = 1, 2, 0x80
CR0_PE, CR0_PG = 1, 1 << 31
CR4_PSE, CR4_PAE = 1 << 4, 1 << 5
EFER_LME_LMA = (1 << 8) | (1 << 10)
MiB = 1 << 20


@pytest.fixture
def memory():
    memory = GuestMemory([MemoryRegion(0, 8 * MiB)])
    yield memory
    memory.close()


def long_mode(memory) -> PagingState:
    """PML4 at 0x1000 -> PDPT 0x2000 -> PD 0x3000: 0x400000 is a 2 MiB page at 0x600000,
    0xffff800000201000 a 4 KiB page (PT 0x4000) at 0x5000; everything else unmapped."""
    memory.write_int(0x1000 + 8 * 0, 8, 0x2000 | P | W)
    memory.write_int(0x1000 + 8 * 256, 8, 0x2000 | P | W)     # the kernel half aliases the same PDPT
    memory.write_int(0x2000, 8, 0x3000 | P | W)
    memory.write_int(0x3000 + 8 * 2, 8, 0x600000 | P | W | PS)
    memory.write_int(0x3000 + 8 * 1, 8, 0x4000 | P | W)
    memory.write_int(0x4000 + 8 * 1, 8, 0x5000 | P | W)
    return PagingState(CR0_PE | CR0_PG, 0x1000, CR4_PAE, EFER_LME_LMA)


def test_no_paging_is_identity(memory):
    assert translate(memory, PagingState(CR0_PE, 0, 0, 0), 0x12345) == 0x12345


def test_long_mode_large_and_small_pages(memory):
    state = long_mode(memory)
    assert translate(memory, state, 0x400123) == 0x600123
    assert translate(memory, state, 0xFFFF800000201ABC) == 0x5ABC
    assert translate(memory, state, 0x200000) is None           # PT entry 0 absent
    assert translate(memory, state, 0x40000000) is None         # PDPT entry 1 absent


def test_reads_and_writes_cross_pages_and_refuse_holes(memory):
    state = long_mode(memory)
    memory.write(0x600FFE, b"\x11\x22\x33\x44")
    assert read_virtual(memory, state, 0x400FFE, 4) == b"\x11\x22\x33\x44"
    assert write_virtual(memory, state, 0xFFFF800000201000, b"abc")
    assert memory.read(0x5000, 3) == b"abc"
    assert read_virtual(memory, state, 0x5FFFFE, 4) is None     # runs into the unmapped 0x600000
    assert not write_virtual(memory, state, 0x5FFFFE, b"\0" * 4)


def test_a_table_outside_ram_is_unmapped(memory):
    state = PagingState(CR0_PE | CR0_PG, 0x7FFF0000, CR4_PAE, EFER_LME_LMA)
    assert translate(memory, state, 0x1000) is None


def test_32_bit_paging_with_4mib_pages(memory):
    memory.write_int(0x1000 + 4 * 1, 4, 0x2000 | P)                 # 0x400000: PT at 0x2000
    memory.write_int(0x2000 + 4 * 3, 4, 0x7000 | P)
    memory.write_int(0x1000 + 4 * 2, 4, 0x400000 | P | PS)          # 0x800000: a 4 MiB page at 4 MiB
    state = PagingState(CR0_PE | CR0_PG, 0x1000, CR4_PSE, 0)
    assert translate(memory, state, 0x403010) == 0x7010
    assert translate(memory, state, 0x812345) == 0x412345
    assert translate(memory, state, 0xC00000) is None


def test_pae_paging(memory):
    memory.write_int(0x1000 + 8 * 3, 8, 0x2000 | P)                 # 0xC0000000: PD at 0x2000
    memory.write_int(0x2000, 8, 0x3000 | P)
    memory.write_int(0x3000 + 8 * 5, 8, 0x9000 | P)
    state = PagingState(CR0_PE | CR0_PG, 0x1000, CR4_PAE, 0)
    assert translate(memory, state, 0xC0005123) == 0x9123
    assert translate(memory, state, 0x00005123) is None
