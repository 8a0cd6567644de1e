"""The bzImage loader: setup header checks, kernel placement, the zero page and e820 map."""

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader.bzimage import is_bzimage, load_bzimage

from ._guest_ram import memory

CMDLINE = "console=ttyS0 panic=-1"


def one_input(data: bytes) -> None:
    if not is_bzimage(data):
        return
    try:
        image = load_bzimage(data, memory, layout.CMDLINE_ADDR, CMDLINE, None, "fuzz")
    except ConfigError:
        return
    assert memory.contains(image.entry), f"entry {image.entry:#x} outside RAM"
