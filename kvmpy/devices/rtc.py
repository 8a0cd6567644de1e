"""An MC146818 CMOS real-time clock: wall-clock time for the guest, plus 128 bytes of CMOS.

The time registers show the host's clock in UTC at the moment they are read, encoded as
register B asks (BCD or binary, 24- or 12-hour). Writes to them are accepted and ignored:
the guest cannot move this clock, so `hwclock --systohc` is a no-op. The update cycle is never
in progress (A.UIP reads 0) and the battery is always good (D.VRT reads 1). No interrupt is
raised; register C reports the update-ended flag once per host second so a guest polling it
sees the clock tick. Every other byte (alarms, 0x0E-0x7F) is plain storage.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from ._access import read_bytes, write_bytes

# --- Register offsets (from port 0x70) --------------------------------------------------
INDEX = 0  # write: selects the CMOS byte; bit 7 disables NMI
DATA = 1  # the selected CMOS byte

INDEX_NMI_DISABLE = 0x80
INDEX_MASK = 0x7F

# --- CMOS byte indices -----------------------------------------------------------------
REG_SECONDS = 0x00
REG_MINUTES = 0x02
REG_HOURS = 0x04
REG_DAY_OF_WEEK = 0x06
REG_DAY_OF_MONTH = 0x07
REG_MONTH = 0x08
REG_YEAR = 0x09
REG_A = 0x0A
REG_B = 0x0B
REG_C = 0x0C
REG_D = 0x0D
REG_CENTURY = 0x32
CMOS_SIZE = 128

TIME_REGISTERS = frozenset(
    (REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH, REG_MONTH,
     REG_YEAR, REG_CENTURY)
)

# --- Register bits ---------------------------------------------------------------------
A_UIP = 0x80  # update in progress: always reads 0
A_DEFAULT = 0x26  # 32.768 kHz time base, 1024 Hz periodic rate
B_SET = 0x80
B_DM_BINARY = 0x04  # data mode: 1 = binary, 0 = BCD
B_24_HOUR = 0x02
B_DEFAULT = B_24_HOUR  # BCD, 24-hour: what PC firmware sets up
C_UF = 0x10  # update-ended flag
D_VRT = 0x80  # valid RAM and time
HOUR_PM = 0x80  # in 12-hour mode


def _bcd(value: int) -> int:
    return (value // 10) << 4 | value % 10


class CmosRtc:
    """The index register, the CMOS bytes and the clock behind the time registers.

    `clock` returns seconds since the epoch (UTC); tests pass a fixed one.
    """

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()

        # --- State ---
        self._index = 0
        self._cmos = bytearray(CMOS_SIZE)
        self._cmos[REG_A] = A_DEFAULT
        self._cmos[REG_B] = B_DEFAULT
        self._last_c_second = int(clock())  # host second when C last reported an update

    # --- Bus interface -------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self._lock:
            if size == 1:
                return self._read_byte(offset)
            return read_bytes(self._read_byte, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            if size == 1:
                self._write_byte(offset, value & 0xFF)
            else:
                write_bytes(self._write_byte, offset, size, value)

    # --- Read/write handlers -------------------------------------------------------------

    def _read_byte(self, offset: int) -> int:
        if offset == DATA:
            return self._read_cmos(self._index)
        return self._index  # the index register reads back; harmless and handy for debugging

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == DATA:
            self._write_cmos(self._index, value)
        else:
            self._index = value & INDEX_MASK  # the NMI-disable bit is not ours to model

    def _read_cmos(self, index: int) -> int:
        if index in TIME_REGISTERS:
            return self._time_register(index)
        if index == REG_A:
            return self._cmos[REG_A] & ~A_UIP
        if index == REG_C:
            return self._read_c()
        if index == REG_D:
            return D_VRT
        return self._cmos[index]

    def _write_cmos(self, index: int, value: int) -> None:
        if index in TIME_REGISTERS or index in (REG_C, REG_D):
            return  # the clock follows the host; C and D are read-only
        self._cmos[index] = value

    # --- Clock ---------------------------------------------------------------------------

    def _time_register(self, index: int) -> int:
        now = time.gmtime(self._clock())
        control = self._cmos[REG_B]
        pm = 0
        if index == REG_SECONDS:
            value = now.tm_sec
        elif index == REG_MINUTES:
            value = now.tm_min
        elif index == REG_HOURS:
            value = now.tm_hour
            if not control & B_24_HOUR:
                pm = HOUR_PM if value >= 12 else 0
                value = value % 12 or 12
        elif index == REG_DAY_OF_WEEK:
            value = (now.tm_wday + 1) % 7 + 1  # 1 = Sunday; tm_wday has 0 = Monday
        elif index == REG_DAY_OF_MONTH:
            value = now.tm_mday
        elif index == REG_MONTH:
            value = now.tm_mon
        elif index == REG_YEAR:
            value = now.tm_year % 100
        else:
            value = now.tm_year // 100
        if not control & B_DM_BINARY:
            value = _bcd(value)
        return value | pm

    def _read_c(self) -> int:
        second = int(self._clock())
        if second == self._last_c_second:
            return 0
        self._last_c_second = second
        return C_UF
