"""Telling a guest kernel panic from an ordinary stop, so `kvmpy run` ends at once with status 3.

A kernel that panics either resets (Linux with `panic=-1`, which kvmpy adds where the command
line does not set `panic=`), waits (`panic=N`), or spins for ever (`panic=0`). None of those
is an error kvmpy could see from the vCPU alone: a reset looks like `reboot`, a spin like a
busy guest. The evidence is the console's `Kernel panic - not syncing: ...` line. Once it has
been seen the VM stops with PANIC_STATUS at the first of: the report's closing
`---[ end Kernel panic` line, a reset or shutdown (the panic's own reboot), or PANIC_GRACE
seconds (for the stack trace that follows the line to reach the console).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .exits.kinds import StopReason

PANIC_STATUS = 3
PANIC_LINE = b"Kernel panic - not syncing"
END_OF_REPORT = b"---[ end Kernel panic"
PANIC_GRACE = 0.5  # seconds from the panic line to the stop, at the longest
MAX_LINE = 4096  # a console that never sends a newline is not buffered without end
PANIC_REBOOT_KINDS = ("reset", "shutdown")  # what a panicking kernel's own reboot looks like


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

    def feed(self, data: bytes) -> None:
        """Console bytes, as the guest wrote them (any chunking)."""
        for line in self._lines(data):
            if self.reason is None and PANIC_LINE in line:
                self._panic_line(line)
            elif self.reason is not None and END_OF_REPORT in line:
                self._report_ended()

    def _lines(self, data: bytes) -> list[bytes]:
        with self._lock:
            self._line += data
            *complete, rest = bytes(self._line).split(b"\n")
            self._line = bytearray(rest[-MAX_LINE:])
        return complete

    def _panic_line(self, line: bytes) -> None:
        text = line[line.index(PANIC_LINE):].decode(errors="replace").strip()
        self.reason = StopReason("panic", PANIC_STATUS, f"guest kernel panic: {text}")
        self.seen_at = time.monotonic()
        self._timer = threading.Timer(self._grace, self._report_ended)
        self._timer.daemon = True
        self._timer.start()

    def _report_ended(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._on_panic(self.reason)

    def explain(self, reason: StopReason) -> StopReason:
        """`reason`, or the panic it really is: a reset or shutdown after the panic line."""
        if self.reason is not None and reason.kind in PANIC_REBOOT_KINDS:
            return self.reason
        return reason

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
