"""The initial ramdisk (or a multiboot module, or a PVH module): read from a file into the
highest page-aligned spot of low RAM that the kernel allows and that leaves the kernel alone."""

from __future__ import annotations

import os

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory

INITRD_ALIGN = layout.PAGE_SIZE
LOW_RAM_LIMIT = layout.MMIO_HOLE_START - 1  # for a kernel that sets no limit: anywhere in low RAM (32-bit)


def place_initrd(memory: GuestMemory, size: int, limit: int, kernel_end: int, name: str) -> int:
    """The highest page-aligned address below `limit` where an initrd of `size` bytes fits."""
    low_ram_end = memory.regions[0].end
    top = min(limit + 1, low_ram_end)
    address = (top - size) // INITRD_ALIGN * INITRD_ALIGN
    if size > top or address < kernel_end:
        raise ConfigError(
            f"{name}: the initrd ({size >> 20} MiB) does not fit in guest RAM below "
            f"{top >> 20} MiB next to the kernel; give the guest more --mem"
        )
    return address


def load_initrd(memory: GuestMemory, path: str, limit: int, kernel_end: int) -> tuple[int, int]:
    """Read the file at `path` into guest RAM where place_initrd puts it; (address, size)."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise ConfigError(f"{path}: the initrd file is empty")
        address = place_initrd(memory, size, limit, kernel_end, path)
        with open(path, "rb") as initrd:
            view = memory.view(address, size)
            if initrd.readinto(view) != size:
                raise ConfigError(f"{path}: the initrd changed size while being read")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such initrd file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not an initrd") from None
    return address, size
