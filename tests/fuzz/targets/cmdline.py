"""What users type: the kernel command line (kvmpy's panic option, its fixed place and size
limit) and the CLI's value parsers (--mem sizes, --share specs, MAC addresses, --gdb
addresses).  argv reaches Python as str with undecodable bytes escaped, so the input is
decoded the same way."""

from kvmpy.cli import parse_mac, parse_share, parse_size
from kvmpy.errors import ConfigError
from kvmpy.gdb.server import parse_address
from kvmpy.loader.image import linux_cmdline, write_cmdline

from ._guest_ram import memory

PARSERS = (parse_size, parse_share, parse_mac, parse_address)


def one_input(data: bytes) -> None:
    if not data:
        return
    text = data[1:].decode("utf-8", "surrogateescape")
    try:
        if data[0] & 0x80:
            PARSERS[data[0] % len(PARSERS)](text)
        else:
            write_cmdline(memory, linux_cmdline(text))
    except ConfigError:
        return
