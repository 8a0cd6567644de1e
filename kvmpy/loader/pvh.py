"""The PVH boot ABI for ELF kernels with Xen's PHYS32_ENTRY note (Linux's `vmlinux` with
CONFIG_PVH): the boot vCPU starts in 32-bit protected mode at the note's entry with EBX = an
`hvm_start_info` (version 1: command line, `--initrd` as module 0, the memory map). Linux's
PVH entry needs all of it (without a memory map it asks Xen for one, and there is no Xen);
it skips the bzImage decompressor, the costliest part of an interpreted boot. The other vCPUs
wait for INIT/SIPI.
"""

from __future__ import annotations

import struct

from .. import layout
from ..memory import GuestMemory
from ..vcpu.modes import StartMode
from . import bootparams as bp
from .bootimage import BootImage
from .initrd import LOW_RAM_LIMIT, load_initrd

START_INFO_MAGIC = 0x336EC578  # "xEn3"
START_INFO_VERSION = 1  # has the memory map fields
# magic, version, flags, nr_modules, modlist_paddr, cmdline_paddr, rsdp_paddr,
# memmap_paddr, memmap_entries, reserved
START_INFO = struct.Struct("<IIIIQQQQII")
MODULE = struct.Struct("<QQQQ")  # paddr, size, cmdline_paddr, reserved
MEMORY_MAP_ENTRY = struct.Struct("<QQII")  # addr, size, type (e820's), reserved


def load_pvh(entry: int, kernel_end: int, memory: GuestMemory, cmdline_addr: int, initrd: str | None) -> BootImage:
    """Write the start info for a kernel already loaded (entry: the PVH note's, guest-physical)."""
    modules = b""
    if initrd is not None:
        address, size = load_initrd(memory, initrd, LOW_RAM_LIMIT, kernel_end)
        modules = MODULE.pack(address, size, 0, 0)
    memory_map = bp.e820_map(memory)
    memory.write(layout.BOOT_INFO_MEMORY_MAP_ADDR,
                 b"".join(MEMORY_MAP_ENTRY.pack(base, size, kind, 0) for base, size, kind in memory_map))
    memory.write(layout.BOOT_INFO_MODULES_ADDR, modules)
    # rsdp_paddr 0: the kernel finds the RSDP where it scans the BIOS area (kvmpy.acpi)
    memory.write(layout.BOOT_INFO_ADDR, START_INFO.pack(
        START_INFO_MAGIC, START_INFO_VERSION, 0, len(modules) // MODULE.size, layout.BOOT_INFO_MODULES_ADDR,
        cmdline_addr, 0, layout.BOOT_INFO_MEMORY_MAP_ADDR, len(memory_map), 0))
    return BootImage(entry, StartMode.PROTECTED, (("rbx", layout.BOOT_INFO_ADDR),), boot_cpu_only=True)
