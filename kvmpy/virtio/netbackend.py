"""Where virtio-net packets go: the backend interface, and an in-memory backend.

A backend exchanges *packets*: a 12-byte `virtio_net_hdr_v1` followed by an Ethernet frame,
the format a TAP device with IFF_VNET_HDR reads and writes, so the TAP backend passes
packets through unchanged.  `MemoryBackend` keeps packets in Python lists for tests and
for VMs that need a NIC with nothing behind it.
"""

from __future__ import annotations

import collections
import os
import threading
from typing import Protocol, Sequence

VNET_HDR_SIZE = 12  # struct virtio_net_hdr_v1 (num_buffers included): the VERSION_1 header


class NetBackend(Protocol):
    def fileno(self) -> int:
        """A file descriptor that polls readable while `recv` has a packet."""

    def recv(self) -> bytes | None:
        """The next packet from the host side, or None if there is none now (never blocks)."""

    def send(self, parts: Sequence[bytes | memoryview]) -> None:
        """Send one packet, given as the pieces that concatenate to it; OSError if refused."""

    def close(self) -> None:
        """Release the backend's host resources."""


class MemoryBackend:
    """A backend in memory: `sent` collects the guest's packets, `inject` feeds it new ones."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self._incoming: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._event = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def inject(self, packet: bytes) -> None:
        """Make `packet` (header and frame) arrive from the host side."""
        with self._lock:
            self._incoming.append(bytes(packet))
            os.eventfd_write(self._event, 1)

    def fileno(self) -> int:
        return self._event

    def recv(self) -> bytes | None:
        with self._lock:
            if not self._incoming:
                return None
            packet = self._incoming.popleft()
            if not self._incoming:
                os.eventfd_read(self._event)  # clears the counter: no longer readable
            return packet

    def send(self, parts: Sequence[bytes | memoryview]) -> None:
        self.sent.append(b"".join(parts))

    @property
    def pending(self) -> int:
        """Packets injected but not yet taken by the device."""
        with self._lock:
            return len(self._incoming)

    def close(self) -> None:
        os.close(self._event)
