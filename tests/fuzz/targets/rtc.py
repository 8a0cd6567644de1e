"""The CMOS RTC: index and data ports, time registers in BCD and binary, 12/24-hour modes,
status registers A-D, and the 16-bit `outw(index | value << 8)` idiom."""

from kvmpy.devices.rtc import CmosRtc
from kvmpy.layout import RTC_PORT_LENGTH

from ._support import Input, play_register_ops

FIXED_TIME = 1_700_000_000.5  # a fixed clock: the same input gives the same reads


def one_input(data: bytes) -> None:
    play_register_ops(CmosRtc(clock=lambda: FIXED_TIME), Input(data), RTC_PORT_LENGTH, (1, 2, 4))
