"""The gdb stub (`kvmpy run --gdb`): the GDB remote serial protocol over the machine's debug
control (kvmpy/accel/debug.py). packets.py frames, registers.py and target_xml.py describe
the x86-64 registers, monitor.py serves `monitor` commands, server.py the connection."""

from .server import GdbServer, parse_address

__all__ = ["GdbServer", "parse_address"]
