"""Start a vCPU directly in real, 32-bit protected or 64-bit long mode, without firmware.

For protected and long mode the VMM writes a boot GDT (and, for long mode, identity page
tables and a TSS) into guest RAM at the addresses named in `layout`, then loads the matching
segment state into the vCPU, exactly as a boot loader would have left it.
"""

from __future__ import annotations

import enum
import struct

from .. import layout
from ..memory import GuestMemory

# Control-register and EFER bits used below (Intel SDM vol. 3, 2.5 and 2.2.1).
CR0_PE = 1 << 0
CR0_MP = 1 << 1
CR0_ET = 1 << 4
CR0_NE = 1 << 5
CR0_WP = 1 << 16
CR0_PG = 1 << 31
CR4_PAE = 1 << 5
CR4_OSFXSR = 1 << 9
CR4_OSXMMEXCPT = 1 << 10
EFER_SCE = 1 << 0
EFER_LME = 1 << 8
EFER_LMA = 1 << 10

PTE_PRESENT = 1 << 0
PTE_WRITABLE = 1 << 1
PTE_USER = 1 << 2
PTE_HUGE = 1 << 7
PAGE_2M = 2 << 20

TSS_SIZE = 104
TSS_RSP0_OFFSET = 4
TSS_IOPB_OFFSET = 102
# An all-zero I/O permission bitmap (every port allowed) follows the TSS, then the 0xff byte
# the CPU requires after it. Ring-3 guests get port access through it and through IOPL 3,
# because KVMs differ: PVM clears IOPL on iretq, and QEMU's emulated AMD-V (the nested lane)
# refuses the bitmap of a busy TSS, which is what a loaded TR is.
IO_BITMAP_SIZE = 65536 // 8
TSS_LIMIT = TSS_SIZE + IO_BITMAP_SIZE

FPU_DEFAULT_FCW = 0x37F
MXCSR_DEFAULT = 0x1F80


class StartMode(enum.Enum):
    REAL = "real"
    PROTECTED = "protected"
    LONG = "long"


def gdt_entry(access: int, flags: int, base: int = 0, limit: int = 0xFFFFF) -> int:
    """An 8-byte code/data descriptor: access byte (P, DPL, S, type) and flags nibble (G, DB, L)."""
    return (
        (limit & 0xFFFF)
        | (base & 0xFFFFFF) << 16
        | access << 40
        | ((limit >> 16) & 0xF) << 48
        | flags << 52
        | ((base >> 24) & 0xFF) << 56
    )


def tss_descriptor(base: int, limit: int) -> tuple[int, int]:
    """The 16-byte 64-bit TSS descriptor (type 9: available), as two quadwords."""
    low = gdt_entry(access=0x89, flags=0, base=base, limit=limit)
    return low, base >> 32


# Descriptors in the boot GDT, indexed by selector >> 3 (see layout.GDT_*).
_ACCESS_CODE_RING0 = 0x9B  # present, DPL0, code, execute/read, accessed
_ACCESS_DATA_RING0 = 0x93  # present, DPL0, data, read/write, accessed
_ACCESS_CODE_RING3 = 0xFB
_ACCESS_DATA_RING3 = 0xF3
_FLAGS_LONG = 0xA  # G, L
_FLAGS_32 = 0xC  # G, DB


def boot_gdt() -> list[int]:
    entries = [0] * layout.GDT_ENTRIES
    entries[layout.GDT_KERNEL_CODE64 >> 3] = gdt_entry(_ACCESS_CODE_RING0, _FLAGS_LONG)
    entries[layout.GDT_KERNEL_DATA >> 3] = gdt_entry(_ACCESS_DATA_RING0, _FLAGS_32)
    entries[layout.GDT_USER_CODE64 >> 3] = gdt_entry(_ACCESS_CODE_RING3, _FLAGS_LONG)
    entries[layout.GDT_USER_DATA >> 3] = gdt_entry(_ACCESS_DATA_RING3, _FLAGS_32)
    low, high = tss_descriptor(layout.BOOT_TSS_ADDR, TSS_LIMIT)
    entries[layout.GDT_TSS >> 3] = low
    entries[(layout.GDT_TSS >> 3) + 1] = high
    entries[layout.GDT_KERNEL_CODE32 >> 3] = gdt_entry(_ACCESS_CODE_RING0, _FLAGS_32)
    return entries


def write_boot_tables(memory: GuestMemory, long_mode: bool) -> None:
    """GDT, empty IDT, TSS and (for long mode) identity page tables into guest RAM."""
    gdt = boot_gdt()
    memory.write(layout.BOOT_GDT_ADDR, struct.pack(f"<{len(gdt)}Q", *gdt))
    memory.fill(layout.BOOT_IDT_ADDR, 16)
    tss = bytearray(TSS_LIMIT + 1)
    struct.pack_into("<Q", tss, TSS_RSP0_OFFSET, layout.BOOT_STACK_TOP)
    struct.pack_into("<H", tss, TSS_IOPB_OFFSET, TSS_SIZE)
    tss[TSS_LIMIT] = 0xFF
    memory.write(layout.BOOT_TSS_ADDR, bytes(tss))
    if long_mode:
        write_identity_page_tables(memory)


def write_identity_page_tables(memory: GuestMemory) -> None:
    """Map [0, IDENTITY_MAP_SIZE) 1:1 with 2 MiB pages, user-accessible so ring-3 guests work."""
    table_flags = PTE_PRESENT | PTE_WRITABLE | PTE_USER
    directories = layout.IDENTITY_MAP_SIZE // layout.GiB
    memory.write(layout.PML4_ADDR, struct.pack("<Q", layout.PDPT_ADDR | table_flags) + bytes(4088))
    pdpt = [layout.PD_ADDR + i * layout.PAGE_SIZE | table_flags for i in range(directories)]
    memory.write(layout.PDPT_ADDR, struct.pack(f"<{directories}Q", *pdpt) + bytes(8 * (512 - directories)))
    for directory in range(directories):
        first = directory * 512
        entries = [(first + i) * PAGE_2M | table_flags | PTE_HUGE for i in range(512)]
        memory.write(layout.PD_ADDR + directory * layout.PAGE_SIZE, struct.pack("<512Q", *entries))


def _load_segment(segment, selector: int, descriptor: int) -> None:
    """Fill a kvm_segment from a GDT descriptor, as the CPU's hidden part would be."""
    access = (descriptor >> 40) & 0xFF
    flags = (descriptor >> 52) & 0xF
    limit = (descriptor & 0xFFFF) | ((descriptor >> 48) & 0xF) << 16
    segment.selector = selector
    segment.base = (descriptor >> 16) & 0xFFFFFF | ((descriptor >> 56) & 0xFF) << 24
    segment.limit = (limit << 12 | 0xFFF) if flags & 0x8 else limit
    segment.type = access & 0xF
    segment.s = (access >> 4) & 1
    segment.dpl = (access >> 5) & 3
    segment.present = (access >> 7) & 1
    segment.avl = flags & 1
    segment.l = (flags >> 1) & 1
    segment.db = (flags >> 2) & 1
    segment.g = (flags >> 3) & 1
    segment.unusable = 0


def configure_sregs(sregs, mode: StartMode) -> None:
    """Set segment, descriptor-table and control registers for a start in `mode`."""
    if mode is StartMode.REAL:
        for segment in (sregs.cs, sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
            segment.selector = layout.REAL_MODE_SEGMENT
            segment.base = layout.REAL_MODE_LOAD_ADDR
            segment.limit = 0xFFFF
        return
    gdt = boot_gdt()
    code = layout.GDT_KERNEL_CODE64 if mode is StartMode.LONG else layout.GDT_KERNEL_CODE32
    _load_segment(sregs.cs, code, gdt[code >> 3])
    for segment in (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss):
        _load_segment(segment, layout.GDT_KERNEL_DATA, gdt[layout.GDT_KERNEL_DATA >> 3])
    _load_segment(sregs.tr, layout.GDT_TSS, gdt[layout.GDT_TSS >> 3])
    sregs.tr.type = 0xB  # a loaded TSS is busy
    sregs.gdt.base = layout.BOOT_GDT_ADDR
    sregs.gdt.limit = 8 * len(gdt) - 1
    sregs.idt.base = layout.BOOT_IDT_ADDR
    sregs.idt.limit = 0
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE
    if mode is StartMode.LONG:
        sregs.cr0 |= CR0_PG | CR0_WP
        sregs.cr3 = layout.PML4_ADDR
        sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT
        sregs.efer = EFER_LME | EFER_LMA | EFER_SCE


def start_vcpu(vcpu, memory: GuestMemory, mode: StartMode, entry: int, registers=()) -> None:
    """Put a vCPU at guest-physical `entry` in `mode`; `registers` are (name, value) pairs that
    carry boot arguments (Linux: rsi = the zero page). Real-mode entries must lie in the 64 KiB
    segment at REAL_MODE_LOAD_ADDR."""
    if mode is not StartMode.REAL:
        write_boot_tables(memory, long_mode=mode is StartMode.LONG)
    sregs = vcpu.get_sregs()
    configure_sregs(sregs, mode)
    vcpu.set_sregs(sregs)
    regs = vcpu.get_regs()
    regs.rflags = 0x2
    if mode is StartMode.REAL:
        regs.rip = entry - layout.REAL_MODE_LOAD_ADDR
        regs.rsp = 0xFFF0
    else:
        regs.rip = entry
        regs.rsp = layout.BOOT_STACK_TOP
        regs.rbp = layout.BOOT_STACK_TOP
        for name, value in registers:
            setattr(regs, name, value)
    vcpu.set_regs(regs)
    fpu = vcpu.get_fpu()
    fpu.fcw = FPU_DEFAULT_FCW
    fpu.mxcsr = MXCSR_DEFAULT
    vcpu.set_fpu(fpu)
