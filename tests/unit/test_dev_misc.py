"""The small ports: debug-exit verdicts, POST codes and the boot timer."""

import logging
import threading

import pytest

from kvmpy import devices
from kvmpy.devices.boot_timer import BootTimer
from kvmpy.devices.debug_exit import DebugExit
from kvmpy.devices.post import PostCode

# --- Debug exit ---------------------------------------------------------------------------


@pytest.mark.parametrize("size, value, code", [(1, 0x00, 0), (1, 0x2A, 42), (2, 0x01FF, 0xFF),
                                               (4, 0x12345601, 1)])
def test_debug_exit_reports_the_low_byte(size, value, code):
    verdicts: list[int] = []
    DebugExit(on_verdict=verdicts.append).write(0, size, value)
    assert verdicts == [code]


def test_debug_exit_reports_every_write_and_reads_zero():
    verdicts: list[int] = []
    dev = DebugExit(on_verdict=verdicts.append)
    dev.write(0, 1, 3)
    dev.write(0, 1, 4)
    assert verdicts == [3, 4]
    assert dev.read(0, 1) == 0


# --- POST codes ---------------------------------------------------------------------------


def test_post_code_is_remembered_and_read_back():
    dev = PostCode()
    assert dev.read(0, 1) == 0
    dev.write(0, 1, 0x1234)
    assert dev.last_code == 0x34
    assert dev.read(0, 1) == 0x34


def test_post_code_is_logged_at_debug(caplog):
    with caplog.at_level(logging.DEBUG, logger="kvmpy.post"):
        PostCode().write(0, 1, 0x42)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("kvmpy.post", logging.DEBUG, "POST code 0x42")
    ]


def test_post_code_is_silent_above_debug(caplog):
    with caplog.at_level(logging.INFO, logger="kvmpy.post"):
        PostCode().write(0, 1, 0x42)
    assert caplog.records == []


# --- Boot timer ---------------------------------------------------------------------------


def test_boot_timer_records_only_the_first_write():
    ticks = iter([10.5, 99.0])
    seen: list[float] = []
    timer = BootTimer(on_boot=seen.append, clock=lambda: next(ticks))
    assert timer.booted_at is None
    timer.write(0, 1, 0x01)
    timer.write(0, 1, 0x02)
    assert timer.booted_at == 10.5
    assert seen == [10.5]
    assert timer.read(0, 1) == 0


def test_boot_timer_without_callback_uses_the_monotonic_clock():
    import time

    before = time.monotonic()
    timer = BootTimer()
    timer.write(0, 1, 0)
    assert before <= timer.booted_at <= time.monotonic()


def test_boot_timer_fires_once_when_vcpus_race():
    seen: list[float] = []
    timer = BootTimer(on_boot=seen.append)
    start = threading.Barrier(4)

    def vcpu() -> None:
        start.wait()
        timer.write(0, 1, 1)

    threads = [threading.Thread(target=vcpu) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == [timer.booted_at]


# --- Package ------------------------------------------------------------------------------


def test_package_exports_every_device():
    assert set(devices.__all__) == {
        "BootTimer", "CmosRtc", "DebugExit", "I8042", "PostCode", "Uart16550"
    }
    assert all(hasattr(devices, name) for name in devices.__all__)
