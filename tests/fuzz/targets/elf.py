"""The ELF loader (program headers, notes, kvmpy's start-mode note) and the PVH entry it
finds (Xen's PHYS32_ENTRY note), as `kvmpy run vmlinux` uses them."""

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader.elf import is_elf, is_linux_elf, load_elf
from kvmpy.loader.pvh import load_pvh

from ._guest_ram import memory


def one_input(data: bytes) -> None:
    if not is_elf(data):
        return
    is_linux_elf(data)
    try:
        loaded = load_elf(data, memory, "fuzz")
        if loaded.pvh_entry is not None:
            load_pvh(loaded.pvh_entry, loaded.end, memory, layout.CMDLINE_ADDR, None)
    except ConfigError:
        return
    assert memory.contains(loaded.entry), f"entry {loaded.entry:#x} outside RAM"
