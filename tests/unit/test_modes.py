"""Boot GDT, page tables and segment state, checked without KVM."""

import struct

from kvmpy import layout
from kvmpy.memory import GuestMemory
from kvmpy.native import ffi
from kvmpy.vcpu.modes import (
    CR0_PE,
    CR0_PG,
    EFER_LMA,
    TSS_LIMIT,
    StartMode,
    boot_gdt,
    configure_sregs,
    write_boot_tables,
)


def test_long_mode_code_descriptor_matches_the_sdm():
    # 0x00af9b000000ffff: base 0, limit 0xfffff, G and L set, present DPL0 execute/read code.
    assert boot_gdt()[layout.GDT_KERNEL_CODE64 >> 3] == 0x00AF9B000000FFFF
    assert boot_gdt()[layout.GDT_KERNEL_DATA >> 3] == 0x00CF93000000FFFF
    assert boot_gdt()[layout.GDT_USER_CODE64 >> 3] == 0x00AFFB000000FFFF


def test_long_mode_sregs():
    sregs = ffi.new("struct kvm_sregs *")
    configure_sregs(sregs, StartMode.LONG)
    assert sregs.cs.l == 1 and sregs.cs.db == 0 and sregs.cs.selector == layout.GDT_KERNEL_CODE64
    assert sregs.ss.selector == layout.GDT_KERNEL_DATA and sregs.ss.limit == 0xFFFFFFFF
    assert sregs.cr0 & (CR0_PE | CR0_PG) == CR0_PE | CR0_PG and sregs.efer & EFER_LMA
    assert sregs.cr3 == layout.PML4_ADDR
    assert sregs.tr.base == layout.BOOT_TSS_ADDR and sregs.tr.limit == TSS_LIMIT and sregs.tr.type == 0xB


def test_real_mode_sregs_use_the_load_segment():
    sregs = ffi.new("struct kvm_sregs *")
    configure_sregs(sregs, StartMode.REAL)
    assert sregs.cs.selector == layout.REAL_MODE_SEGMENT and sregs.cs.base == layout.REAL_MODE_LOAD_ADDR
    assert sregs.cr0 & CR0_PE == 0


def test_identity_page_tables_map_the_mmio_test_device():
    memory = GuestMemory.with_hole(16 << 20, layout.MMIO_HOLE_START, layout.MMIO_HOLE_END)
    write_boot_tables(memory, long_mode=True)
    address = layout.TEST_DEVICE_MMIO_BASE
    pml4e = memory.read_int(layout.PML4_ADDR + 8 * ((address >> 39) & 511), 8)
    pdpte = memory.read_int((pml4e & ~0xFFF) + 8 * ((address >> 30) & 511), 8)
    pde = memory.read_int((pdpte & ~0xFFF) + 8 * ((address >> 21) & 511), 8)
    assert pde & 0x87 == 0x87  # present, writable, user, 2 MiB page
    assert pde & ~0xFFF == address & ~((2 << 20) - 1)
    tss_io_bitmap_offset = struct.unpack_from("<H", memory.read(layout.BOOT_TSS_ADDR + 102, 2))[0]
    assert memory.read(layout.BOOT_TSS_ADDR + tss_io_bitmap_offset, 8) == b"\0" * 8
    memory.close()
