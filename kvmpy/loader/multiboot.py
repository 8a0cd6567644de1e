"""Multiboot (version 1) kernels, as QEMU's `-kernel` and GRUB boot them: hobby kernels and VMM
conformance kernels.

The image carries a header in its first 8 KiB. It is loaded from its ELF program headers, or,
when the header's address fields are valid (flag 16, the "a.out kludge"), from those. The boot
vCPU starts in 32-bit protected mode with paging off, EAX = the boot loader magic and EBX =
the multiboot information: memory sizes, the command line, `--initrd` as module 0, a memory
map, the loader's name. The other vCPUs wait for INIT/SIPI, as on a PC.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory
from ..vcpu.modes import StartMode
from . import bootparams as bp
from .bootimage import BootImage
from .elf import is_elf, load_elf
from .initrd import LOW_RAM_LIMIT, load_initrd

HEADER_MAGIC = 0x1BADB002
BOOTLOADER_MAGIC = 0x2BADB002
SEARCH_LIMIT = 8192
HEADER = struct.Struct("<III")  # magic, flags, checksum
ADDRESS_FIELDS = struct.Struct("<IIIII")  # header, load, load_end, bss_end, entry addresses

# Header flags: bits 0-15 are requirements a loader must meet or refuse the image.
REQUIRE_PAGE_ALIGNED_MODULES = 1 << 0  # kvmpy always page-aligns them
REQUIRE_MEMORY_INFO = 1 << 1  # kvmpy always gives it
REQUIRE_VIDEO_MODE = 1 << 2  # kvmpy has no display
HAS_ADDRESS_FIELDS = 1 << 16
REQUIREMENTS = 0xFFFF
MET_REQUIREMENTS = REQUIRE_PAGE_ALIGNED_MODULES | REQUIRE_MEMORY_INFO

# struct multiboot_info: flags saying which fields are valid, then the fields kvmpy fills in
INFO = struct.Struct("<IIIIIII16sIIIIIII")  # ... to apm_table (72 bytes)
INFO_MEMORY = 1 << 0
INFO_CMDLINE = 1 << 2
INFO_MODULES = 1 << 3
INFO_MEMORY_MAP = 1 << 6
INFO_LOADER_NAME = 1 << 9
MODULE = struct.Struct("<IIII")  # mod_start, mod_end, string, reserved
MEMORY_MAP_ENTRY = struct.Struct("<IQQI")  # size (of what follows), base, length, type
LOADER_NAME = b"kvmpy\0"
LOW_MEMORY_KIB = layout.EBDA_START // 1024


class MultibootHeader(NamedTuple):
    offset: int  # in the file
    flags: int
    addresses: tuple[int, int, int, int, int] | None  # header, load, load_end, bss_end, entry


def find_header(data: bytes) -> MultibootHeader | None:
    """The first valid header in the image's first 8 KiB (4-byte aligned, checksummed)."""
    for offset in range(0, min(len(data), SEARCH_LIMIT) - HEADER.size + 1, 4):
        magic, flags, checksum = HEADER.unpack_from(data, offset)
        if magic == HEADER_MAGIC and (magic + flags + checksum) & 0xFFFFFFFF == 0:
            addresses = None
            if flags & HAS_ADDRESS_FIELDS and offset + HEADER.size + ADDRESS_FIELDS.size <= len(data):
                addresses = ADDRESS_FIELDS.unpack_from(data, offset + HEADER.size)
            return MultibootHeader(offset, flags, addresses)
    return None


def _load_kernel(data: bytes, header: MultibootHeader, memory: GuestMemory, name: str) -> tuple[int, int]:
    """Copy the kernel into RAM; (entry, end of what it occupies)."""
    if header.flags & HAS_ADDRESS_FIELDS:
        if header.addresses is None:
            raise ConfigError(f"{name}: the multiboot header's address fields are truncated")
        header_addr, load_addr, load_end, bss_end, entry = header.addresses
        start = header.offset - (header_addr - load_addr)
        size = (load_end - load_addr) if load_end else len(data) - start
        if header_addr < load_addr or start < 0 or size <= 0 or start + size > len(data):
            raise ConfigError(f"{name}: the multiboot header's load addresses do not match the file")
        end = max(load_addr + size, bss_end)
        if not memory.contains(load_addr, end - load_addr):
            raise ConfigError(f"{name}: the kernel at {load_addr:#x}-{end:#x} does not fit in guest RAM")
        memory.write(load_addr, data[start:start + size])
        memory.fill(load_addr + size, end - load_addr - size)
        return entry, end
    if not is_elf(data):
        raise ConfigError(f"{name}: a multiboot image without address fields must be an ELF file")
    loaded = load_elf(data, memory, name)
    return loaded.entry, loaded.end


def _memory_map(memory: GuestMemory) -> bytes:
    return b"".join(MEMORY_MAP_ENTRY.pack(MEMORY_MAP_ENTRY.size - 4, base, size, kind)
                    for base, size, kind in bp.e820_map(memory))


def load_multiboot(data: bytes, header: MultibootHeader, memory: GuestMemory, cmdline_addr: int,
                   initrd: str | None, name: str) -> BootImage:
    """Load a kernel whose header find_header found."""
    unmet = header.flags & REQUIREMENTS & ~MET_REQUIREMENTS
    if unmet & REQUIRE_VIDEO_MODE:
        raise ConfigError(f"{name}: the multiboot kernel asks for a video mode; kvmpy has no display")
    if unmet:
        raise ConfigError(f"{name}: the multiboot kernel requires features kvmpy does not know (flags {unmet:#x})")
    entry, kernel_end = _load_kernel(data, header, memory, name)
    flags = INFO_MEMORY | INFO_CMDLINE | INFO_MEMORY_MAP | INFO_LOADER_NAME
    modules = b""
    if initrd is not None:
        start, size = load_initrd(memory, initrd, LOW_RAM_LIMIT, kernel_end)
        module_name = os.path.basename(initrd).encode() + b"\0"
        memory.write(layout.BOOT_INFO_STRINGS_ADDR + len(LOADER_NAME), module_name)
        modules = MODULE.pack(start, start + size, layout.BOOT_INFO_STRINGS_ADDR + len(LOADER_NAME), 0)
        flags |= INFO_MODULES
    memory_map = _memory_map(memory)
    if len(memory_map) > layout.BOOT_INFO_STRINGS_ADDR - layout.BOOT_INFO_MEMORY_MAP_ADDR:
        raise ConfigError(f"{name}: the memory map does not fit in its multiboot area")
    upper_kib = (memory.regions[0].end - layout.HIGH_MEMORY) // 1024
    info = INFO.pack(flags, LOW_MEMORY_KIB, upper_kib, 0, cmdline_addr, len(modules) // MODULE.size,
                     layout.BOOT_INFO_MODULES_ADDR, bytes(16), len(memory_map), layout.BOOT_INFO_MEMORY_MAP_ADDR,
                     0, 0, 0, layout.BOOT_INFO_STRINGS_ADDR, 0)
    memory.write(layout.BOOT_INFO_ADDR, info)
    memory.write(layout.BOOT_INFO_MODULES_ADDR, modules)
    memory.write(layout.BOOT_INFO_MEMORY_MAP_ADDR, memory_map)
    memory.write(layout.BOOT_INFO_STRINGS_ADDR, LOADER_NAME)
    return BootImage(entry, StartMode.PROTECTED, (("rax", BOOTLOADER_MAGIC), ("rbx", layout.BOOT_INFO_ADDR)),
                     boot_cpu_only=True)
