"""Telling a guest kernel panic from an ordinary stop, so `kvmpy run` ends at once with status 3.

A kernel that panics either resets (Linux with `panic=-1`, which kvmpy adds where the command
line does not set `panic=`), waits (`panic=N`), or spins for ever (`panic=0`). None of those
is an error kvmpy could see from the vCPU alone: a reset looks like `reboot`, a spin like a
busy guest. The evidence is the pvpanic device (a kernel with PVPANIC_PCI writes to it from
its panic notifier, after the report) or the console's `Kernel panic - not syncing: ...`
line. Once the line has been seen the VM stops with PANIC_STATUS at the first of: the pvpanic
write, the report's closing `---[ end Kernel panic` line, a reset or shutdown (the panic's own
reboot), or PANIC_GRACE seconds (for the stack trace that follows the line to reach the console).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .devices.pvpanic import PANICKED as PVPANIC_PANICKED
from .exits.kinds import StopReason

PANIC_STATUS = 3
PANIC_LINE = b"Kernel panic - not syncing"
END_OF_REPORT = b"---[ end Kernel panic"
PANIC_GRACE = 0.5  # seconds from the panic line to the stop, at the longest
MAX_LINE = 4096  # a console that never sends a newline is not buffered without end
PANIC_REBOOT_KINDS = ("reset", "shutdown")  # what a panicking kernel's own reboot looks like
# What stopped a panicking VM (Machine.stats()["panic_trigger"]).
PVPANIC, END_LINE, REBOOT, GRACE = "pvpanic", "end of the report", "the panic's reboot", "grace period"


class PanicWatch:
    """Reads the guest's console output and calls `on_panic(reason)` once, when a panic report
    is complete; `explain` turns the reboot that follows a panic into that panic."""

    def __init__(self, on_panic: Callable[[StopReason], None], grace: float = PANIC_GRACE):
        self._on_panic = on_panic
        self._grace = grace
        self._line = bytearray()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.reason: StopReason | None = None  # set at the panic line
        self.seen_at: float | None = None  # time.monotonic() of the panic line
        self.trigger: str | None = None  # what stopped the VM: PVPANIC, END_LINE, REBOOT or GRACE

    def feed(self, data: bytes) -> None:
        """Console bytes, as the guest wrote them (any chunking)."""
        for line in self._lines(data):
            if self.reason is None and PANIC_LINE in line:
                self._panic_line(line)
            elif self.reason is not None and END_OF_REPORT in line:
                self._report_ended(END_LINE)

    def _lines(self, data: bytes) -> list[bytes]:
        with self._lock:
            if b"\n" not in data:  # the common case: a UART delivers a byte at a time
                self._line += data
                del self._line[:-MAX_LINE]
                return []
            self._line += data
            *complete, rest = bytes(self._line).split(b"\n")
            self._line = bytearray(rest[-MAX_LINE:])
        return complete

    def _panic_line(self, line: bytes) -> None:
        text = line[line.index(PANIC_LINE):].decode(errors="replace").strip()
        self.reason = StopReason("panic", PANIC_STATUS, f"guest kernel panic: {text}")
        self.seen_at = time.monotonic()
        self._timer = threading.Timer(self._grace, self._report_ended, args=(GRACE,))
        self._timer.daemon = True
        self._timer.start()

    def _report_ended(self, trigger: str) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.trigger is None:
            self.trigger = trigger
        self._on_panic(self.reason)

    def pvpanic_event(self, events: int) -> None:
        """The guest's pvpanic device reported `events`: PANICKED stops the VM now (with the
        console's panic line if it came first); CRASH_LOADED alone means a kdump kernel takes
        over, which is not a stop."""
        if not events & PVPANIC_PANICKED:
            return
        if self.reason is None:
            self.reason = StopReason("panic", PANIC_STATUS, "guest kernel panic (reported by pvpanic; "
                                                            "no panic line on the console)")
            self.seen_at = time.monotonic()
        self._report_ended(PVPANIC)

    def explain(self, reason: StopReason) -> StopReason:
        """`reason`, or the panic it really is: a reset or shutdown after the panic line."""
        if self.reason is not None and reason.kind in PANIC_REBOOT_KINDS:
            if self.trigger is None:
                self.trigger = REBOOT
            return self.reason
        return reason

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
