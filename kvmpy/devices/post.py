"""Port 0x80, where firmware and early boot code write progress (POST) codes.

The last code is kept for reads and for the VMM's diagnostics, and each write is logged at
DEBUG level on the "kvmpy.post" logger. Linux also writes this port as an I/O delay; giving the
guest KVM's NOP_IO_DELAY CPUID feature (or `io_delay=none`) avoids those exits.
"""

from __future__ import annotations

import logging

# --- Register offsets ------------------------------------------------------------------
CODE = 0

_log = logging.getLogger("kvmpy.post")


class PostCode:
    """The last POST code written; one attribute store per write, so no lock is needed."""

    def __init__(self):
        # --- State ---
        self.last_code = 0

    def read(self, offset: int, size: int) -> int:
        return self.last_code

    def write(self, offset: int, size: int, value: int) -> None:
        code = value & 0xFF
        self.last_code = code
        _log.debug("POST code %#04x", code)  # formatted only when DEBUG is enabled
