"""Emulated legacy PC devices: pure register models behind the port bus.

Each device sees only register offsets and signals the VMM through injected callables and
`IrqLine`s, so it can be tested without KVM.
"""

from .boot_timer import BootTimer
from .debug_exit import DebugExit
from .i8042 import I8042
from .post import PostCode
from .rtc import CmosRtc
from .serial import Uart16550

__all__ = ["BootTimer", "CmosRtc", "DebugExit", "I8042", "PostCode", "Uart16550"]
