"""Linux bzImage via the x86 boot protocol's 64-bit entry.

The protected-mode kernel is copied to 1 MiB, the zero page gets the image's setup header
plus what a boot loader fills in (command line, initrd, e820 map), and the boot vCPU starts
in long mode at load address + 0x200 with RSI pointing at the zero page.
"""

from __future__ import annotations

import os
import struct

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory
from ..vcpu.modes import StartMode
from . import bootparams as bp
from .bootimage import BootImage
from .initrd import load_initrd

MIN_BOOT_PROTOCOL = 0x0206  # cmdline_size, xloadflags-era kernels; older ones are refused
SECTOR = 512
DEFAULT_SETUP_SECTS = 4  # "if setup_sects is 0, the real value is 4"


def is_bzimage(data: bytes) -> bool:
    return len(data) > bp.HEADER_MAGIC + 4 and data[bp.HEADER_MAGIC : bp.HEADER_MAGIC + 4] == bp.HEADER_MAGIC_VALUE


def _u(data, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def check_header(data: bytes, name: str) -> tuple[int, int]:
    """(setup header length, offset of the protected-mode kernel) after validating the header."""
    if _u(data, bp.BOOT_FLAG, 2) != bp.BOOT_FLAG_VALUE:
        raise ConfigError(f"{name}: not a bzImage (no 0xAA55 boot flag)")
    version = _u(data, bp.VERSION, 2)
    if version < MIN_BOOT_PROTOCOL:
        raise ConfigError(
            f"{name}: boot protocol {version >> 8}.{version & 0xFF:02d} is too old (kvmpy needs 2.06 or newer)"
        )
    if not _u(data, bp.XLOADFLAGS, 2) & bp.XLF_KERNEL_64:
        raise ConfigError(f"{name}: the kernel has no 64-bit entry point (a 32-bit kernel?)")
    if not data[bp.LOADFLAGS] & bp.LOADFLAGS_LOADED_HIGH:
        raise ConfigError(f"{name}: a zImage (loaded low) is not supported")
    setup_sects = data[bp.SETUP_SECTS] or DEFAULT_SETUP_SECTS
    kernel_offset = (setup_sects + 1) * SECTOR
    if kernel_offset >= len(data):
        raise ConfigError(f"{name}: truncated bzImage (the setup code claims the whole file)")
    header_length = bp.HEADER_MAGIC + data[bp.SETUP_HEADER_END_BYTE] - bp.SETUP_HEADER
    return header_length, kernel_offset


def load_bzimage(data: bytes, memory: GuestMemory, cmdline_addr: int, cmdline: str, initrd: str | None, name: str):
    header_length, kernel_offset = check_header(data, name)
    kernel = memoryview(data)[kernel_offset:]
    load_address = layout.HIGH_MEMORY
    # The decompressor needs init_size bytes from where it runs (at least its preferred address).
    needed = max(load_address, _u(data, bp.PREF_ADDRESS, 8)) + _u(data, bp.INIT_SIZE, 4)
    if not memory.contains(load_address, len(kernel)) or needed > memory.regions[0].end:
        raise ConfigError(f"{name}: the kernel needs at least {-(-needed // layout.MiB)} MiB of guest RAM")
    memory.write(load_address, kernel)

    zero_page = bytearray(bp.BOOT_PARAMS_SIZE)
    zero_page[bp.SETUP_HEADER : bp.SETUP_HEADER + header_length] = data[bp.SETUP_HEADER : bp.SETUP_HEADER + header_length]
    zero_page[bp.TYPE_OF_LOADER] = bp.TYPE_OF_LOADER_UNDEFINED
    cmdline_limit = _u(data, bp.CMDLINE_SIZE, 4)
    if len(os.fsencode(cmdline)) > cmdline_limit:
        raise ConfigError(f"{name}: the command line is longer than this kernel accepts ({cmdline_limit} bytes)")
    struct.pack_into("<I", zero_page, bp.CMD_LINE_PTR, cmdline_addr)
    if initrd is not None:
        address, size = load_initrd(memory, initrd, _u(data, bp.INITRD_ADDR_MAX, 4), needed)
        struct.pack_into("<II", zero_page, bp.RAMDISK_IMAGE, address, size)
    bp.write_e820(zero_page, bp.e820_map(memory))
    memory.write(layout.ZERO_PAGE_ADDR, bytes(zero_page))
    return BootImage(load_address + bp.ENTRY_64_OFFSET, StartMode.LONG, (("rsi", layout.ZERO_PAGE_ADDR),),
                     boot_cpu_only=True)
