"""Guest virtual -> physical translation by walking the guest's page tables in guest RAM, for
tools outside the vCPU (the gdb stub's memory access, KVM software breakpoints).

Covers what x86 has: no paging (real mode and protected mode without CR0.PG: linear =
physical), 32-bit paging (with 4 MiB pages under CR4.PSE), PAE, and 4- and 5-level long-mode
paging with large pages. Only presence is checked, not permissions: a debugger may read what
the guest could not. Addresses are linear (segment bases are the caller's business).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import GuestMemoryError

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
CR0_PG = 1 << 31
CR4_PSE = 1 << 4
CR4_PAE = 1 << 5
CR4_LA57 = 1 << 12
EFER_LMA = 1 << 10
PTE_PRESENT = 1 << 0
PTE_LARGE = 1 << 7                      # PS: this entry maps a large page
ADDRESS_MASK = ((1 << 52) - 1) & ~(PAGE_SIZE - 1)
LEGACY_ADDRESS_MASK = 0xFFFFF000
PSE_LOW_MASK = 0xFFC00000               # a 4 MiB page's address bits 31:22 ...
PSE_HIGH_SHIFT, PSE_HIGH_MASK = 13, 0xFF  # ... and bits 39:32 from PDE bits 20:13
PAE_PDPT_MASK = 0xFFFFFFE0


@dataclass(frozen=True)
class PagingState:
    """The registers that decide how a linear address translates."""
    cr0: int
    cr3: int
    cr4: int
    efer: int


def translate(memory, state: PagingState, linear: int) -> int | None:
    """The physical address of `linear`, or None where a table entry is not present (or a
    table lies outside guest RAM)."""
    try:
        if not state.cr0 & CR0_PG:
            return linear & 0xFFFFFFFF if not state.efer & EFER_LMA else linear
        if state.efer & EFER_LMA:
            levels = 5 if state.cr4 & CR4_LA57 else 4
            return _walk(memory, state.cr3 & ADDRESS_MASK, linear, levels, 8, ADDRESS_MASK)
        if state.cr4 & CR4_PAE:
            linear &= 0xFFFFFFFF
            pdpte = memory.read_int((state.cr3 & PAE_PDPT_MASK) + 8 * (linear >> 30), 8)
            if not pdpte & PTE_PRESENT:
                return None
            return _walk(memory, pdpte & ADDRESS_MASK, linear, 2, 8, ADDRESS_MASK)
        return _walk_legacy(memory, state, linear & 0xFFFFFFFF)
    except GuestMemoryError:  # a table outside guest RAM
        return None


def _walk(memory, table: int, linear: int, levels: int, entry_size: int, mask: int) -> int | None:
    """Walk 9-bit-indexed levels down to a 4 KiB page, or stop at a large page."""
    for level in range(levels, 0, -1):
        shift = PAGE_SHIFT + 9 * (level - 1)
        entry = memory.read_int(table + entry_size * ((linear >> shift) & 0x1FF), entry_size)
        if not entry & PTE_PRESENT:
            return None
        if level == 1 or (entry & PTE_LARGE and level <= 3):
            page_mask = (1 << shift) - 1
            return (entry & mask & ~page_mask) | (linear & page_mask)
        table = entry & mask
    raise AssertionError("unreachable: level 1 always returns")


def _walk_legacy(memory, state: PagingState, linear: int) -> int | None:
    """32-bit paging: 10-bit indices, 4-byte entries, 4 MiB pages under CR4.PSE."""
    pde = memory.read_int((state.cr3 & LEGACY_ADDRESS_MASK) + 4 * (linear >> 22), 4)
    if not pde & PTE_PRESENT:
        return None
    if pde & PTE_LARGE and state.cr4 & CR4_PSE:
        high = (pde >> PSE_HIGH_SHIFT) & PSE_HIGH_MASK
        return (high << 32) | (pde & PSE_LOW_MASK) | (linear & ~PSE_LOW_MASK)
    pte = memory.read_int((pde & LEGACY_ADDRESS_MASK) + 4 * ((linear >> PAGE_SHIFT) & 0x3FF), 4)
    if not pte & PTE_PRESENT:
        return None
    return (pte & LEGACY_ADDRESS_MASK) | (linear & (PAGE_SIZE - 1))


def read_virtual(memory, state: PagingState, linear: int, length: int) -> bytes | None:
    """`length` bytes at `linear`, page by page; None if any page is unmapped or not RAM."""
    out = bytearray()
    for physical, chunk in _pieces(memory, state, linear, length):
        if physical is None:
            return None
        out += memory.read(physical, chunk)
    return bytes(out)


def write_virtual(memory, state: PagingState, linear: int, data: bytes) -> bool:
    """Write `data` at `linear`; False (nothing written) if any page is unmapped or not RAM."""
    pieces = list(_pieces(memory, state, linear, len(data)))
    if any(physical is None for physical, _ in pieces):
        return False
    done = 0
    for physical, chunk in pieces:
        memory.write(physical, data[done:done + chunk])
        done += chunk
    return True


def _pieces(memory, state, linear: int, length: int):
    """(physical address or None, length) of each page-bounded piece of [linear, +length);
    a piece that is not guest RAM is None too."""
    while length > 0:
        chunk = min(length, PAGE_SIZE - (linear & (PAGE_SIZE - 1)))
        physical = translate(memory, state, linear)
        if physical is not None and not memory.contains(physical, chunk):
            physical = None
        yield physical, chunk
        linear += chunk
        length -= chunk
