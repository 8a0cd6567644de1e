"""The CMOS RTC: host time in BCD or binary, 12/24-hour, status registers and CMOS storage."""

import time
from datetime import datetime, timezone

import pytest

from kvmpy.devices.rtc import (
    B_24_HOUR,
    B_DM_BINARY,
    C_UF,
    CMOS_SIZE,
    D_VRT,
    DATA,
    INDEX,
    INDEX_NMI_DISABLE,
    REG_A,
    REG_B,
    REG_C,
    REG_CENTURY,
    REG_D,
    REG_DAY_OF_MONTH,
    REG_DAY_OF_WEEK,
    REG_HOURS,
    REG_MINUTES,
    REG_MONTH,
    REG_SECONDS,
    REG_YEAR,
    CmosRtc,
)

TIME_FIELDS = (REG_SECONDS, REG_MINUTES, REG_HOURS, REG_DAY_OF_WEEK, REG_DAY_OF_MONTH,
               REG_MONTH, REG_YEAR, REG_CENTURY)


class FakeClock:
    def __init__(self, when: datetime):
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def at(*fields: int) -> FakeClock:
    return FakeClock(datetime(*fields, tzinfo=timezone.utc))


def cmos_read(rtc: CmosRtc, index: int) -> int:
    rtc.write(INDEX, 1, index)
    return rtc.read(DATA, 1)


def cmos_write(rtc: CmosRtc, index: int, value: int) -> None:
    rtc.write(INDEX, 1, index)
    rtc.write(DATA, 1, value)


def read_time(rtc: CmosRtc) -> tuple[int, ...]:
    return tuple(cmos_read(rtc, index) for index in TIME_FIELDS)


def from_bcd(value: int) -> int:
    return (value >> 4) * 10 + (value & 0x0F)


# --- Time registers -----------------------------------------------------------------------


def test_default_mode_is_bcd_24_hour():
    rtc = CmosRtc(clock=at(2024, 3, 9, 13, 5, 7))  # a Saturday
    assert cmos_read(rtc, REG_B) & (B_DM_BINARY | B_24_HOUR) == B_24_HOUR
    assert read_time(rtc) == (0x07, 0x05, 0x13, 7, 0x09, 0x03, 0x24, 0x20)


def test_binary_mode():
    rtc = CmosRtc(clock=at(2024, 12, 31, 23, 59, 58))  # a Tuesday
    cmos_write(rtc, REG_B, B_24_HOUR | B_DM_BINARY)
    assert read_time(rtc) == (58, 59, 23, 3, 31, 12, 24, 20)


@pytest.mark.parametrize(
    "hour, bcd, binary",
    [(0, 0x12, 12), (1, 0x01, 1), (11, 0x11, 11), (12, 0x92, 0x80 | 12), (13, 0x81, 0x81),
     (23, 0x91, 0x80 | 11)],
)
def test_12_hour_mode_sets_pm_in_bit_7(hour, bcd, binary):
    rtc = CmosRtc(clock=at(2024, 1, 1, hour, 0, 0))
    cmos_write(rtc, REG_B, 0)
    assert cmos_read(rtc, REG_HOURS) == bcd
    cmos_write(rtc, REG_B, B_DM_BINARY)
    assert cmos_read(rtc, REG_HOURS) == binary


@pytest.mark.parametrize("day, weekday", [(7, 1), (8, 2), (13, 7)])  # Jan 2024: the 7th a Sunday
def test_day_of_week_counts_from_sunday(day, weekday):
    rtc = CmosRtc(clock=at(2024, 1, day, 0, 0, 0))
    assert cmos_read(rtc, REG_DAY_OF_WEEK) == weekday


def test_time_follows_the_clock_at_read_time():
    clock = at(2024, 3, 9, 13, 5, 7)
    rtc = CmosRtc(clock=clock)
    clock.now += 61
    assert cmos_read(rtc, REG_SECONDS) == 0x08
    assert cmos_read(rtc, REG_MINUTES) == 0x06


def test_time_is_utc_whatever_the_host_time_zone(monkeypatch):
    monkeypatch.setenv("TZ", "XST+05")
    time.tzset()
    try:
        rtc = CmosRtc(clock=at(2024, 3, 9, 13, 5, 7))
        assert cmos_read(rtc, REG_HOURS) == 0x13
    finally:
        monkeypatch.undo()
        time.tzset()


def test_time_matches_the_host_clock_in_utc():
    rtc = CmosRtc()
    cmos_write(rtc, REG_B, B_24_HOUR | B_DM_BINARY)
    before = datetime.now(timezone.utc).replace(microsecond=0)
    for _ in range(3):  # like Linux: read twice, retry if a second ticked in between
        first = read_time(rtc)
        if read_time(rtc) == first:
            break
    after = datetime.now(timezone.utc)
    sec, minute, hour, _weekday, day, month, year, century = first
    seen = datetime(century * 100 + year, month, day, hour, minute, sec, tzinfo=timezone.utc)
    assert before <= seen <= after
    assert first[3] == seen.isoweekday() % 7 + 1


def test_host_time_in_bcd_decodes_to_the_binary_reading():
    rtc = CmosRtc()
    for _ in range(3):
        cmos_write(rtc, REG_B, B_24_HOUR | B_DM_BINARY)
        binary = read_time(rtc)
        cmos_write(rtc, REG_B, B_24_HOUR)
        bcd = read_time(rtc)
        if tuple(from_bcd(v) for v in bcd) == binary:
            break
    assert tuple(from_bcd(v) for v in bcd) == binary
    assert bcd[7] == 0x20 and binary[7] == 20  # the century, at least, differs between modes


def test_writes_to_time_registers_are_ignored():
    rtc = CmosRtc(clock=at(2024, 3, 9, 13, 5, 7))
    for index in TIME_FIELDS:
        cmos_write(rtc, index, 0x42)
    assert read_time(rtc) == (0x07, 0x05, 0x13, 7, 0x09, 0x03, 0x24, 0x20)


# --- Status registers ---------------------------------------------------------------------


def test_register_a_never_shows_update_in_progress():
    rtc = CmosRtc()
    assert cmos_read(rtc, REG_A) == 0x26
    cmos_write(rtc, REG_A, 0xA3)
    assert cmos_read(rtc, REG_A) == 0x23


def test_register_b_stores():
    rtc = CmosRtc()
    cmos_write(rtc, REG_B, 0x86)
    assert cmos_read(rtc, REG_B) == 0x86


def test_register_c_reports_one_update_per_second_and_clears_on_read():
    clock = at(2024, 3, 9, 13, 5, 7)
    rtc = CmosRtc(clock=clock)
    assert cmos_read(rtc, REG_C) == 0
    clock.now += 1
    assert cmos_read(rtc, REG_C) == C_UF
    assert cmos_read(rtc, REG_C) == 0
    cmos_write(rtc, REG_C, 0xFF)
    assert cmos_read(rtc, REG_C) == 0


def test_register_d_reports_valid_time():
    rtc = CmosRtc()
    cmos_write(rtc, REG_D, 0x00)
    assert cmos_read(rtc, REG_D) == D_VRT


# --- Index register and storage -----------------------------------------------------------


def test_nmi_disable_bit_is_masked_off_the_index():
    rtc = CmosRtc()
    assert cmos_read(rtc, INDEX_NMI_DISABLE | REG_D) == D_VRT
    cmos_write(rtc, INDEX_NMI_DISABLE | 0x40, 0x99)
    assert cmos_read(rtc, 0x40) == 0x99
    assert rtc.read(INDEX, 1) == 0x40


def test_cmos_bytes_are_plain_storage():
    rtc = CmosRtc()
    storage = [0x01, 0x03, 0x05, *range(0x0E, CMOS_SIZE)]
    storage.remove(REG_CENTURY)
    for index in storage:
        cmos_write(rtc, index, (index * 7 + 3) & 0xFF)
    assert [cmos_read(rtc, index) for index in storage] == [(i * 7 + 3) & 0xFF for i in storage]


def test_word_write_sets_index_then_data():
    rtc = CmosRtc()
    rtc.write(INDEX, 2, 0x0E | 0xAB << 8)
    assert cmos_read(rtc, 0x0E) == 0xAB
