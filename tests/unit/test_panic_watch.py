"""The panic watch: the console's panic line makes the stop a panic (status 3, its first
line), at the report's end, at the panic's own reboot, or after the grace period."""

import threading

import pytest

from kvmpy.exits.kinds import StopReason
from kvmpy.loader.image import linux_cmdline
from kvmpy.panic import PANIC_STATUS, PanicWatch

pytestmark = pytest.mark.panic

PANIC = (b"[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\r\n"
         b"[    2.1] CPU: 0 PID: 1 Comm: swapper/0 Not tainted 6.1.0 #1\r\n")
END = b"[    2.2] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n"
MESSAGE = "guest kernel panic: Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"


def _watch(grace: float = 60.0):
    stops = []
    return PanicWatch(stops.append, grace), stops


def test_the_report_s_end_line_stops_with_the_panic_line_as_the_message():
    watch, stops = _watch()
    for byte in PANIC + END:  # one byte at a time, as a UART delivers it
        watch.feed(bytes([byte]))
    watch.close()
    assert stops == [StopReason("panic", PANIC_STATUS, MESSAGE)] and watch.trigger == "end of the report"


def test_a_reset_after_the_panic_line_is_the_panic_and_before_it_a_reset():
    watch, stops = _watch()
    reset = StopReason("reset", 0, "guest reset through the i8042")
    assert watch.explain(reset) is reset
    watch.feed(PANIC)
    assert watch.explain(reset) == StopReason("panic", PANIC_STATUS, MESSAGE)
    assert watch.explain(StopReason("shutdown", 1, "guest shutdown (triple fault)")).kind == "panic"
    assert watch.explain(StopReason("timeout", 124, "")).kind == "timeout"
    watch.close()
    assert stops == []  # the end line never came, the grace period has not passed


def test_a_kernel_that_says_nothing_more_is_stopped_after_the_grace_period():
    stopped = threading.Event()
    reasons = []
    watch = PanicWatch(lambda reason: (reasons.append(reason), stopped.set()), grace=0.05)
    watch.feed(PANIC)
    assert stopped.wait(10)
    assert reasons[0].message == MESSAGE


def test_console_text_without_a_panic_changes_nothing():
    watch, stops = _watch()
    watch.feed(b"Run /init as init process\r\nKernel panics are documented in Documentation/\r\n" * 100)
    watch.feed(b"x" * 100_000)  # no newline: kept bounded, still nothing
    assert watch.reason is None and stops == []
    assert watch.explain(StopReason("reset", 0, "")).kind == "reset"


@pytest.mark.parametrize("given, expected", [
    ("", "panic=-1"),
    ("console=ttyS0", "console=ttyS0 panic=-1"),
    ("console=ttyS0 panic=10", "console=ttyS0 panic=10"),
    ("panic=0 quiet", "panic=0 quiet"),
    ("oops=panic", "oops=panic panic=-1"),
])
def test_linux_gets_panic_reboot_unless_its_command_line_chose(given, expected):
    assert linux_cmdline(given) == expected


@pytest.mark.parametrize("kind", ["isa", "pci"])
def test_pvpanic_offers_both_events_and_reports_each_write(kind):
    from kvmpy.devices.pvpanic import CRASH_LOADED, PANICKED, PvPanic, PvPanicPci

    events = []
    device = PvPanic(events.append) if kind == "isa" else PvPanicPci(events.append)
    assert device.read(0, 1) == PANICKED | CRASH_LOADED
    if kind == "pci":
        assert (device.config.read(0, 2), device.config.read(2, 2)) == (0x1B36, 0x0011)
        assert device.config.read(0x3D, 1) == 0  # no interrupt pin
    device.write(0, 1, 0)
    device.write(0, 1, PANICKED)
    assert events == [PANICKED]


def test_a_pvpanic_report_stops_at_once_with_the_console_line_if_it_came_first():
    from kvmpy.devices.pvpanic import CRASH_LOADED, PANICKED

    watch, stops = _watch()
    watch.pvpanic_event(CRASH_LOADED)  # a kdump kernel takes over: not a stop
    assert stops == []
    watch.feed(PANIC)
    watch.pvpanic_event(PANICKED)
    assert stops == [StopReason("panic", PANIC_STATUS, MESSAGE)]
    watch.close()

    silent, stops = _watch()  # the console said nothing (no console=ttyS0, say)
    silent.pvpanic_event(PANICKED)
    assert stops[0].kind == "panic" and "pvpanic" in stops[0].message
    assert silent.explain(StopReason("reset", 0, "")).kind == "panic"
