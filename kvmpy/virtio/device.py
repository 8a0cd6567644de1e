"""What every virtio device model provides, independent of the transport carrying it.

A device declares its id, the device-specific features it offers, its configuration space and
its queues, and processes a queue when asked.  It never sees register offsets: the transport
(`mmio.py`) owns status, feature negotiation, queue setup and interrupts, and calls
`activate` / `process` / `reset` with its per-device lock held.  A device that produces work
on its own (network frames arriving, console input) asks the transport to run `process` via
`request_processing`, from whatever thread it is on.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar, Protocol, Sequence

from ..memory import GuestMemory
from .queue import Virtqueue

log = logging.getLogger(__name__)


class DeviceHost(Protocol):
    """The transport as a device sees it."""

    def process_queue(self, index: int) -> None:
        """Run the device's `process(index)` under the device lock, if the device is live."""

    def config_changed(self) -> None:
        """Bump the configuration generation and send a configuration-change interrupt."""


class VirtioDevice(ABC):
    """Base class for device models.

    `features` are the device-specific feature bits offered (the transport adds VERSION_1 and
    the ring features); `queue_max_sizes` gives QueueNumMax for each queue; `config` is the
    initial device configuration space, read little-endian by the driver.
    """

    device_id: ClassVar[int]

    def __init__(self, features: int, queue_max_sizes: Sequence[int], config: bytes = b""):
        self.features = features
        self.queue_max_sizes = tuple(queue_max_sizes)
        self.config = bytearray(config)
        self.memory: GuestMemory | None = None
        self.queues: list[Virtqueue] = []
        self.driver_features = 0
        self._host: DeviceHost | None = None

    def bind(self, host: DeviceHost) -> None:
        """Called once by the transport that carries this device."""
        self._host = host

    def has_feature(self, feature: int) -> bool:
        """Whether feature bit `feature` was negotiated (valid while active)."""
        return bool(self.driver_features >> feature & 1)

    # --- Configuration space -------------------------------------------------------------

    def read_config(self, offset: int, size: int) -> int:
        """Little-endian value of config bytes [offset, offset+size); 0 beyond the end."""
        if offset + size > len(self.config):
            log.debug("%s: config read %#x/%d beyond %d bytes", type(self).__name__, offset, size, len(self.config))
            return 0
        return int.from_bytes(self.config[offset : offset + size], "little")

    def write_config(self, offset: int, size: int, value: int) -> None:
        """Config writes are ignored unless a device has writable fields (override then)."""
        log.debug("%s: ignored config write %#x/%d = %#x", type(self).__name__, offset, size, value)

    # --- Life cycle (called by the transport with the device lock held) -------------------

    def activate(self, memory: GuestMemory, queues: list[Virtqueue], driver_features: int) -> None:
        """The driver set DRIVER_OK: `queues` are validated and ready (or not configured)."""
        self.memory = memory
        self.queues = queues
        self.driver_features = driver_features

    def reset(self) -> None:
        """The driver wrote 0 to Status: forget everything negotiated; keep host resources."""
        self.memory = None
        self.queues = []
        self.driver_features = 0

    @abstractmethod
    def process(self, queue_index: int) -> None:
        """Handle what the driver made available on queue `queue_index`.

        Only called while active and only for a ready queue.  Raises `VirtqueueError` for
        malformed chains; the transport then marks the device as needing reset.
        """

    def close(self) -> None:
        """Release host resources (files, threads, sockets) when the VM goes away."""

    # --- Work the device starts itself -----------------------------------------------------

    def request_processing(self, queue_index: int) -> None:
        if self._host is not None:
            self._host.process_queue(queue_index)

    def notify_config_changed(self) -> None:
        if self._host is not None:
            self._host.config_changed()
