"""The boot-timer port: the guest's init writes here once user space runs.

The first write's `time.monotonic()` is recorded and handed to `on_boot`, so the VMM can report
time-to-init against its own start time (Firecracker's boot-timer idea). Later writes and the
value written are ignored; reads return 0.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

# --- Register offsets ------------------------------------------------------------------
MARK = 0


class BootTimer:
    """Remembers when the guest first reached user space."""

    def __init__(
        self,
        on_boot: Callable[[float], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._on_boot = on_boot
        self._clock = clock
        self._lock = threading.Lock()

        # --- State ---
        self.booted_at: float | None = None  # clock() at the first write

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if offset != MARK:
            return
        with self._lock:  # two vCPUs may race to be first
            if self.booted_at is not None:
                return
            self.booted_at = stamp = self._clock()
        if self._on_boot is not None:
            self._on_boot(stamp)
