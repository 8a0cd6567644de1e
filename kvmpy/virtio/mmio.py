"""The virtio-mmio transport, version 2 (virtio 1.x section 4.2): one device's register window.

`VirtioMmioTransport` is a bus `Device`: it decodes 32-bit register accesses at offsets
below 0x100 and byte/word/dword accesses to the device configuration space from 0x100 on.
It owns the device status and feature negotiation (only modern drivers: VERSION_1 is offered
and required), the queue registers, the interrupt status and the interrupt line.

Failure policy: whatever the guest writes, no exception leaves `read`, `write` or `notify`.
Accesses of the wrong size or to unknown offsets are logged at debug level and ignored.  A
malformed ring or request (`VirtqueueError`, or any other exception out of the device model)
sets DEVICE_NEEDS_RESET, raises a configuration-change interrupt and stops the device until
the driver resets it; the VMM and the other devices carry on.

Threads: register accesses arrive on vCPU threads, queue processing may also run on a
worker or backend thread; one re-entrant lock per transport serialises them all.
"""

from __future__ import annotations

import logging
import threading

from ..errors import GuestMemoryError
from ..irq import IrqLine
from ..layout import VIRTIO_MMIO_SIZE
from ..memory import GuestMemory
from .constants import (
    CONFIG_GENERATION,
    CONFIG_SPACE,
    DEVICE_FEATURES,
    DEVICE_FEATURES_SEL,
    DEVICE_ID,
    DRIVER_FEATURES,
    DRIVER_FEATURES_SEL,
    F_RING_EVENT_IDX,
    F_RING_INDIRECT_DESC,
    F_VERSION_1,
    INTERRUPT_ACK,
    INTERRUPT_CONFIG_CHANGE,
    INTERRUPT_STATUS,
    INTERRUPT_USED_BUFFER,
    MAGIC_VALUE,
    MMIO_MAGIC,
    MMIO_VERSION,
    QUEUE_DESC_HIGH,
    QUEUE_DESC_LOW,
    QUEUE_DEVICE_HIGH,
    QUEUE_DEVICE_LOW,
    QUEUE_DRIVER_HIGH,
    QUEUE_DRIVER_LOW,
    QUEUE_NOTIFY,
    QUEUE_NUM,
    QUEUE_NUM_MAX,
    QUEUE_READY,
    QUEUE_SEL,
    STATUS,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
    VENDOR_ID,
    VENDOR_ID_KVMPY,
    VERSION,
    bit,
)
from .device import VirtioDevice
from .queue import Virtqueue, VirtqueueError

log = logging.getLogger(__name__)

# Features every device gets from the transport and ring implementation.
TRANSPORT_FEATURES = bit(F_VERSION_1) | bit(F_RING_INDIRECT_DESC) | bit(F_RING_EVENT_IDX)

# Queue registers that set one 32-bit half of a ring address: (attribute, shift).
_QUEUE_ADDRESS_REGISTERS = {
    QUEUE_DESC_LOW: ("desc_addr", 0),
    QUEUE_DESC_HIGH: ("desc_addr", 32),
    QUEUE_DRIVER_LOW: ("avail_addr", 0),
    QUEUE_DRIVER_HIGH: ("avail_addr", 32),
    QUEUE_DEVICE_LOW: ("used_addr", 0),
    QUEUE_DEVICE_HIGH: ("used_addr", 32),
}


def virtio_mmio_cmdline(base: int, irq: int, size: int = VIRTIO_MMIO_SIZE) -> str:
    """The Linux command-line fragment that declares one virtio-mmio device.

    >>> virtio_mmio_cmdline(0xD0000000, 5)
    'virtio_mmio.device=4K@0xd0000000:5'
    """
    size_text = f"{size // 1024}K" if size % 1024 == 0 else str(size)
    return f"virtio_mmio.device={size_text}@{base:#x}:{irq}"


class VirtioMmioTransport:
    """A virtio-mmio v2 register window carrying one `VirtioDevice`.

    `memory` is the guest RAM the rings live in; `irq` is the device's interrupt line and
    is pulsed for used-buffer and configuration-change notifications (it may be an irqfd).
    """

    def __init__(self, device: VirtioDevice, memory: GuestMemory, irq: IrqLine, name: str | None = None):
        self.device = device
        self.memory = memory
        self.irq = irq
        self.name = name or type(device).__name__
        self.lock = threading.RLock()
        self.queues = [Virtqueue(memory, max_size) for max_size in device.queue_max_sizes]
        self.config_generation = 0
        self.register_kicks = 0  # QueueNotify writes that reached this window (the exit path)
        self.interrupts = 0  # used-buffer and configuration-change interrupts raised
        self._reset_registers()
        device.bind(self)

    @property
    def offered_features(self) -> int:
        return self.device.features | TRANSPORT_FEATURES

    @property
    def needs_reset(self) -> bool:
        return bool(self.status & STATUS_DEVICE_NEEDS_RESET)

    def _reset_registers(self) -> None:
        self.status = 0
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.driver_features = 0
        self.queue_sel = 0
        self.interrupt_status = 0
        self.active = False
        for queue in self.queues:
            queue.reset()

    # --- Bus device interface -------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self.lock:
            if offset >= CONFIG_SPACE:
                if size in (1, 2, 4):
                    try:
                        return self.device.read_config(offset - CONFIG_SPACE, size)
                    except Exception as exc:
                        self._fail(exc)
                        return 0
            elif size == 4 and offset % 4 == 0:
                value = self._read_register(offset)
                if value is not None:
                    return value
            log.debug("%s: ignored read at %#x/%d", self.name, offset, size)
            return 0

    def write(self, offset: int, size: int, value: int) -> None:
        with self.lock:
            if offset >= CONFIG_SPACE:
                if size in (1, 2, 4):
                    try:
                        self.device.write_config(offset - CONFIG_SPACE, size, value)
                    except Exception as exc:
                        self._fail(exc)
                    return
            elif size == 4 and offset % 4 == 0:
                if self._write_register(offset, value & 0xFFFF_FFFF):
                    return
            log.debug("%s: ignored write at %#x/%d = %#x", self.name, offset, size, value)

    def _selected_queue(self) -> Virtqueue | None:
        return self.queues[self.queue_sel] if self.queue_sel < len(self.queues) else None

    def _read_register(self, offset: int) -> int | None:
        """A register's value; None for write-only or unknown offsets (they read as 0)."""
        queue = self._selected_queue()
        if offset == MAGIC_VALUE:
            return MMIO_MAGIC
        if offset == VERSION:
            return MMIO_VERSION
        if offset == DEVICE_ID:
            return self.device.device_id
        if offset == VENDOR_ID:
            return VENDOR_ID_KVMPY
        if offset == DEVICE_FEATURES:
            if self.device_features_sel > 1:
                return 0
            return self.offered_features >> (32 * self.device_features_sel) & 0xFFFF_FFFF
        if offset == QUEUE_NUM_MAX:
            return queue.max_size if queue else 0
        if offset == QUEUE_READY:
            return int(queue.ready) if queue else 0
        if offset == INTERRUPT_STATUS:
            return self.interrupt_status
        if offset == STATUS:
            return self.status
        if offset == CONFIG_GENERATION:
            return self.config_generation
        return None

    def _write_register(self, offset: int, value: int) -> bool:
        """Apply a register write; False when the write means nothing (it is then logged)."""
        if offset == DEVICE_FEATURES_SEL:
            self.device_features_sel = value
        elif offset == DRIVER_FEATURES_SEL:
            self.driver_features_sel = value
        elif offset == DRIVER_FEATURES:
            if self.status & STATUS_FEATURES_OK or self.driver_features_sel > 1:
                return False
            shift = 32 * self.driver_features_sel
            self.driver_features = self.driver_features & ~(0xFFFF_FFFF << shift) | value << shift
        elif offset == QUEUE_SEL:
            self.queue_sel = value
        elif offset == QUEUE_NOTIFY:
            self.register_kicks += 1
            self.notify(value & 0xFFFF)
        elif offset == INTERRUPT_ACK:
            self.interrupt_status &= ~value
        elif offset == STATUS:
            self._write_status(value & 0xFF)
        else:
            return self._write_queue_register(offset, value)
        return True

    def _write_queue_register(self, offset: int, value: int) -> bool:
        queue = self._selected_queue()
        if queue is None:
            return False
        if offset == QUEUE_READY:
            if value & 1 and not queue.ready:
                self._ready_queue(queue)
            elif not value & 1:
                queue.ready = False
            return True
        if queue.ready or (offset != QUEUE_NUM and offset not in _QUEUE_ADDRESS_REGISTERS):
            return False  # the spec forbids reprogramming a live queue
        if offset == QUEUE_NUM:
            queue.size = value
        else:
            attr, shift = _QUEUE_ADDRESS_REGISTERS[offset]
            setattr(queue, attr, getattr(queue, attr) & ~(0xFFFF_FFFF << shift) | value << shift)
        return True

    def _ready_queue(self, queue: Virtqueue) -> None:
        try:
            queue.validate()
        except VirtqueueError as exc:
            self._fail(exc)
            return
        self._apply_ring_features(queue)
        queue.ready = True

    def _apply_ring_features(self, queue: Virtqueue) -> None:
        queue.event_idx = bool(self.driver_features & bit(F_RING_EVENT_IDX))
        queue.indirect = bool(self.driver_features & bit(F_RING_INDIRECT_DESC))

    # --- Status and feature negotiation ------------------------------------------------------

    def _write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        old = self.status
        if value & ~old & STATUS_FEATURES_OK and not self._features_acceptable():
            value &= ~STATUS_FEATURES_OK  # the driver re-reads Status and sees the refusal
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
            self._fail(exc)
            return
        self.active = True

    def reset(self) -> None:
        """Device reset, as when the driver writes 0 to Status."""
        with self.lock:
            self._stop_device()
            self._reset_registers()

    def _stop_device(self) -> None:
        try:
            self.device.reset()
        except Exception:
            log.exception("%s: device reset failed", self.name)

    def _fail(self, reason: BaseException) -> None:
        """Mark the device broken until the driver resets it (DEVICE_NEEDS_RESET)."""
        if isinstance(reason, (VirtqueueError, GuestMemoryError)):
            log.warning("%s: device needs reset: %s", self.name, str(reason))
        else:
            log.error("%s: device model failed; device needs reset", self.name, exc_info=reason)
        self.active = False
        self.status |= STATUS_DEVICE_NEEDS_RESET
        self._stop_device()
        if self.status & STATUS_DRIVER_OK:
            self._interrupt(INTERRUPT_CONFIG_CHANGE)

    # --- Queue processing and interrupts -----------------------------------------------------

    def notify(self, queue_index: int) -> None:
        """The driver kicked `queue_index` (QueueNotify write or its ioeventfd)."""
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
                self._fail(exc)
                return
            if notify:
                self._interrupt(INTERRUPT_USED_BUFFER)

    def config_changed(self) -> None:
        with self.lock:
            self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
            if self.status & STATUS_DRIVER_OK:
                self._interrupt(INTERRUPT_CONFIG_CHANGE)

    def _interrupt(self, cause: int) -> None:
        self.interrupt_status |= cause
        self.interrupts += 1
        self.irq.pulse()

    def close(self) -> None:
        """Reset the device and release its host resources."""
        self.reset()
        self.device.close()
