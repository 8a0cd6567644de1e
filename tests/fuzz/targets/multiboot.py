"""The multiboot (v1) loader: header search, address fields or ELF, the information structure."""

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader import multiboot as mb

from ._guest_ram import memory


def one_input(data: bytes) -> None:
    header = mb.find_header(data)
    if header is None:
        return
    try:
        mb.load_multiboot(data, header, memory, layout.CMDLINE_ADDR, None, "fuzz")
    except ConfigError:
        return
