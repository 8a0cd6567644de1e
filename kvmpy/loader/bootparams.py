"""Linux's `boot_params` (the zero page): the setup header fields kvmpy fills in, and the e820 map.

Offsets are those of `struct boot_params` and `struct setup_header` in the x86 boot protocol
(Documentation/arch/x86/boot.rst and zero-page.rst).
"""

from __future__ import annotations

import struct

from .. import layout
from ..memory import GuestMemory

BOOT_PARAMS_SIZE = 4096

# struct boot_params
E820_ENTRIES = 0x1E8  # u8
SETUP_HEADER = 0x1F1  # struct setup_header starts here, copied from the image
E820_TABLE = 0x2D0  # 128 x struct boot_e820_entry {u64 addr; u64 size; u32 type}
E820_MAX_ENTRIES = 128
E820_ENTRY = struct.Struct("<QQI")

# struct setup_header (absolute offsets in the zero page / the bzImage)
SETUP_SECTS = 0x1F1  # u8
BOOT_FLAG = 0x1FE  # u16, 0xAA55
SETUP_HEADER_END_BYTE = 0x201  # the jump's displacement: the header ends at 0x202 + this
HEADER_MAGIC = 0x202  # "HdrS"
VERSION = 0x206  # u16
TYPE_OF_LOADER = 0x210  # u8
LOADFLAGS = 0x211  # u8
CODE32_START = 0x214  # u32
RAMDISK_IMAGE = 0x218  # u32
RAMDISK_SIZE = 0x21C  # u32
CMD_LINE_PTR = 0x228  # u32
INITRD_ADDR_MAX = 0x22C  # u32
KERNEL_ALIGNMENT = 0x230  # u32
RELOCATABLE_KERNEL = 0x234  # u8
XLOADFLAGS = 0x236  # u16
CMDLINE_SIZE = 0x238  # u32
PREF_ADDRESS = 0x258  # u64
INIT_SIZE = 0x260  # u32

BOOT_FLAG_VALUE = 0xAA55
HEADER_MAGIC_VALUE = b"HdrS"
LOADFLAGS_LOADED_HIGH = 0x01
XLF_KERNEL_64 = 0x01  # the kernel has a 64-bit entry point at its load address + 0x200
ENTRY_64_OFFSET = 0x200
TYPE_OF_LOADER_UNDEFINED = 0xFF  # "a boot loader with no assigned ID"

E820_RAM = 1
E820_RESERVED = 2


def e820_map(memory: GuestMemory) -> list[tuple[int, int, int]]:
    """(address, size, type): conventional RAM, the legacy hole reserved, then RAM above 1 MiB."""
    entries = [(0, layout.EBDA_START, E820_RAM), (layout.EBDA_START, layout.HIGH_MEMORY - layout.EBDA_START, E820_RESERVED)]
    for region in memory.regions:
        start = max(region.guest_addr, layout.HIGH_MEMORY)
        if region.end > start:
            entries.append((start, region.end - start, E820_RAM))
    return entries


def write_e820(zero_page: bytearray, entries: list[tuple[int, int, int]]) -> None:
    zero_page[E820_ENTRIES] = len(entries)
    for index, entry in enumerate(entries[:E820_MAX_ENTRIES]):
        E820_ENTRY.pack_into(zero_page, E820_TABLE + index * E820_ENTRY.size, *entry)
