"""What every virtio transport does, whatever its registers look like (virtio 1.x section 3):
device status, feature negotiation, queue setup and activation, queue processing, the
interrupt causes, and the failure policy.

A transport (`mmio.py`: a register window; `pci.py`: PCI capabilities in a BAR) decodes its
own register layout and calls these methods; the device model behind it (`device.py`) never
learns which transport carries it.

Failure policy: whatever the guest writes, no exception leaves a transport. A malformed
ring or request (`VirtqueueError`, or any other exception out of the device model) sets
DEVICE_NEEDS_RESET, raises a configuration-change interrupt and stops the device until the
driver resets it; the VMM and the other devices carry on.

Threads: register accesses arrive on vCPU threads, queue processing may also run on a
worker or backend thread; one re-entrant lock per transport serialises them all.
"""

from __future__ import annotations

import logging
import threading

from ..errors import GuestMemoryError
from ..memory import GuestMemory
from .constants import (
    F_RING_EVENT_IDX,
    F_RING_INDIRECT_DESC,
    F_VERSION_1,
    INTERRUPT_CONFIG_CHANGE,
    INTERRUPT_USED_BUFFER,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
    bit,
)
from .device import VirtioDevice
from .queue import Virtqueue, VirtqueueError

log = logging.getLogger(__name__)

# Features every device gets from the transport and ring implementation.
TRANSPORT_FEATURES = bit(F_VERSION_1) | bit(F_RING_INDIRECT_DESC) | bit(F_RING_EVENT_IDX)


class VirtioTransport:
    """The transport-independent half of one virtio device's transport.

    Subclasses decode registers and deliver interrupts: `signal(cause, queue_index)` is
    called for each used-buffer (with the queue) or configuration-change (queue None) event.
    """

    def __init__(self, device: VirtioDevice, memory: GuestMemory, name: str | None = None):
        self.device = device
        self.memory = memory
        self.name = name or type(device).__name__
        self.lock = threading.RLock()
        self.queues = [Virtqueue(memory, max_size) for max_size in device.queue_max_sizes]
        self.config_generation = 0
        self.register_kicks = 0  # queue notifications written to a register (the exit path)
        self.interrupts = 0  # used-buffer and configuration-change interrupts raised
        self._reset_state()
        device.bind(self)

    @property
    def offered_features(self) -> int:
        return self.device.features | TRANSPORT_FEATURES

    @property
    def needs_reset(self) -> bool:
        return bool(self.status & STATUS_DEVICE_NEEDS_RESET)

    def _reset_state(self) -> None:
        self.status = 0
        self.driver_features = 0
        self.active = False
        for queue in self.queues:
            queue.reset()

    # --- Feature words (each transport has its own select registers) -------------------------

    def device_features_word(self, select: int) -> int:
        """32 bits of the offered features: word `select` (0 or 1; others read 0)."""
        return self.offered_features >> (32 * select) & 0xFFFF_FFFF if select <= 1 else 0

    def driver_features_word(self, select: int) -> int:
        """32 bits of the features the driver wrote: word `select` (0 or 1; others read 0)."""
        return self.driver_features >> (32 * select) & 0xFFFF_FFFF if select <= 1 else 0

    def set_driver_features_word(self, select: int, value: int) -> bool:
        """Set 32 bits of the driver's features; False when the write means nothing."""
        if self.status & STATUS_FEATURES_OK or select > 1:
            return False
        shift = 32 * select
        self.driver_features = self.driver_features & ~(0xFFFF_FFFF << shift) | (value & 0xFFFF_FFFF) << shift
        return True

    # --- Queues -----------------------------------------------------------------------------

    def queue(self, index: int) -> Virtqueue | None:
        return self.queues[index] if 0 <= index < len(self.queues) else None

    def enable_queue(self, queue: Virtqueue) -> None:
        """The driver set the queue ready: check its layout first (a bad one fails the device)."""
        try:
            queue.validate()
        except VirtqueueError as exc:
            self.fail(exc)
            return
        self._apply_ring_features(queue)
        queue.ready = True

    def _apply_ring_features(self, queue: Virtqueue) -> None:
        queue.event_idx = bool(self.driver_features & bit(F_RING_EVENT_IDX))
        queue.indirect = bool(self.driver_features & bit(F_RING_INDIRECT_DESC))

    # --- Status ------------------------------------------------------------------------------

    def write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        old = self.status
        if value & ~old & STATUS_FEATURES_OK and not self._features_acceptable():
            value &= ~STATUS_FEATURES_OK  # the driver re-reads the status and sees the refusal
        if value & ~old & STATUS_DRIVER_OK and not value & STATUS_FEATURES_OK:
            log.debug("%s: DRIVER_OK without FEATURES_OK refused", self.name)
            value &= ~STATUS_DRIVER_OK
        self.status = value | (old & STATUS_DEVICE_NEEDS_RESET)
        if value & ~old & STATUS_DRIVER_OK and not self.needs_reset:
            self._activate()

    def _features_acceptable(self) -> bool:
        unknown = self.driver_features & ~self.offered_features
        if unknown:
            log.debug("%s: driver asked for features %#x never offered", self.name, unknown)
            return False
        if not self.driver_features & bit(F_VERSION_1):
            log.debug("%s: legacy driver (no VERSION_1) refused", self.name)
            return False
        return True

    def _activate(self) -> None:
        for queue in self.queues:
            self._apply_ring_features(queue)
        try:
            self.device.activate(self.memory, self.queues, self.driver_features)
        except Exception as exc:  # a device model bug must not take the vCPU thread down
            self.fail(exc)
            return
        self.active = True

    def reset(self) -> None:
        """Device reset, as when the driver writes 0 to the status."""
        with self.lock:
            self._stop_device()
            self._reset_state()

    def _stop_device(self) -> None:
        try:
            self.device.reset()
        except Exception:
            log.exception("%s: device reset failed", self.name)

    def fail(self, reason: BaseException) -> None:
        """Mark the device broken until the driver resets it (DEVICE_NEEDS_RESET)."""
        if isinstance(reason, (VirtqueueError, GuestMemoryError)):
            log.warning("%s: device needs reset: %s", self.name, str(reason))
        else:
            log.error("%s: device model failed; device needs reset", self.name, exc_info=reason)
        self.active = False
        self.status |= STATUS_DEVICE_NEEDS_RESET
        self._stop_device()
        if self.status & STATUS_DRIVER_OK:
            self._interrupt(INTERRUPT_CONFIG_CHANGE, None)

    # --- Device configuration space ------------------------------------------------------------

    def read_config(self, offset: int, size: int) -> int:
        try:
            return self.device.read_config(offset, size)
        except Exception as exc:
            self.fail(exc)
            return 0

    def write_config(self, offset: int, size: int, value: int) -> None:
        try:
            self.device.write_config(offset, size, value)
        except Exception as exc:
            self.fail(exc)

    # --- Queue processing and interrupts -----------------------------------------------------

    def notify(self, queue_index: int) -> None:
        """The driver kicked `queue_index` (a notify register write or its ioeventfd)."""
        self.process_queue(queue_index)

    def process_queue(self, index: int) -> None:
        """Let the device process queue `index` if the device is live and the queue ready."""
        with self.lock:
            if not self.active or not 0 <= index < len(self.queues) or not self.queues[index].ready:
                log.debug("%s: queue %d not live (status %#x); ignored", self.name, index, self.status)
                return
            try:
                self.device.process(index)
                notify = self.queues[index].should_notify()
            except Exception as exc:
                self.fail(exc)
                return
            if notify:
                self._interrupt(INTERRUPT_USED_BUFFER, index)

    def config_changed(self) -> None:
        with self.lock:
            self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
            if self.status & STATUS_DRIVER_OK:
                self._interrupt(INTERRUPT_CONFIG_CHANGE, None)

    def _interrupt(self, cause: int, queue_index: int | None) -> None:
        self.interrupts += 1
        self.signal(cause, queue_index)

    def signal(self, cause: int, queue_index: int | None) -> None:
        """Deliver one interrupt of `cause` (the transport's own mechanism)."""
        raise NotImplementedError

    def close(self) -> None:
        """Reset the device and release its host resources."""
        self.reset()
        self.device.close()
