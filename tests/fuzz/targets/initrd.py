"""Initrd placement (the highest page-aligned spot below the kernel's limit that leaves the
kernel alone) and loading from a file, with sizes, limits and kernel ends from the input."""

import os

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader.initrd import INITRD_ALIGN, load_initrd, place_initrd

from ._guest_ram import memory
from ._support import WORK_DIR, Input

_INITRD = os.path.join(WORK_DIR, "initrd")


def one_input(data: bytes) -> None:
    reader = Input(data)
    size, limit, kernel_end = reader.u32() % (2 * memory.size), reader.u32(), reader.u32() % (2 * memory.size)
    try:
        address = place_initrd(memory, size, limit, kernel_end, "fuzz")
    except ConfigError:
        pass
    else:
        assert address % INITRD_ALIGN == 0 and address >= kernel_end
        assert address + size <= min(limit + 1, memory.regions[0].end)
    content = reader.rest()[: layout.MiB]
    with open(_INITRD, "wb") as initrd:
        initrd.write(content)
    try:
        address, size = load_initrd(memory, _INITRD, limit, kernel_end)
    except ConfigError:
        return
    assert memory.read(address, size) == content
