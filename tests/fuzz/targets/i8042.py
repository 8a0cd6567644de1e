"""The i8042 keyboard controller: its data port (offset 0) and command/status port
(offset 4, as kvmpy maps 0x60 and 0x64), including the reset command kvmpy stops on."""

from kvmpy.devices.i8042 import I8042
from kvmpy.layout import I8042_COMMAND_PORT, I8042_DATA_PORT

from ._support import Input, play_register_ops

REGISTERS = I8042_COMMAND_PORT - I8042_DATA_PORT + 1


def one_input(data: bytes) -> None:
    resets = []
    play_register_ops(I8042(lambda: resets.append(True)), Input(data), REGISTERS, (1, 2, 4))
