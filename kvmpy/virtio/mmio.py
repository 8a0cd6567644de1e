"""The virtio-mmio transport, version 2 (virtio 1.x section 4.2): one device's register window.

`VirtioMmioTransport` is a bus `Device`: it decodes 32-bit register accesses at offsets
below 0x100 and byte/word/dword accesses to the device configuration space from 0x100 on,
and raises its interrupt line with InterruptStatus set. Status, feature negotiation, queue
processing and the failure policy are the transport core's (`transport.py`). Accesses of
the wrong size or to unknown offsets are logged at debug level and ignored.
"""

from __future__ import annotations

import logging

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
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
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
    VENDOR_ID,
    VENDOR_ID_KVMPY,
    VERSION,
)
from .device import VirtioDevice
from .queue import Virtqueue
from .transport import VirtioTransport

log = logging.getLogger(__name__)

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


class VirtioMmioTransport(VirtioTransport):
    """A virtio-mmio v2 register window carrying one `VirtioDevice`.

    `memory` is the guest RAM the rings live in; `irq` is the device's interrupt line and
    is pulsed for used-buffer and configuration-change notifications (it may be an irqfd).
    """

    def __init__(self, device: VirtioDevice, memory: GuestMemory, irq: IrqLine, name: str | None = None):
        self.irq = irq
        super().__init__(device, memory, name)

    def _reset_state(self) -> None:
        super()._reset_state()
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.queue_sel = 0
        self.interrupt_status = 0

    # --- Bus device interface -------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self.lock:
            if offset >= CONFIG_SPACE:
                if size in (1, 2, 4):
                    return self.read_config(offset - CONFIG_SPACE, size)
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
                    self.write_config(offset - CONFIG_SPACE, size, value)
                    return
            elif size == 4 and offset % 4 == 0:
                if self._write_register(offset, value & 0xFFFF_FFFF):
                    return
            log.debug("%s: ignored write at %#x/%d = %#x", self.name, offset, size, value)

    def _selected_queue(self) -> Virtqueue | None:
        return self.queue(self.queue_sel)

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
            return self.device_features_word(self.device_features_sel)
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
            return self.set_driver_features_word(self.driver_features_sel, value)
        elif offset == QUEUE_SEL:
            self.queue_sel = value
        elif offset == QUEUE_NOTIFY:
            self.register_kicks += 1
            self.notify(value & 0xFFFF)
        elif offset == INTERRUPT_ACK:
            self.interrupt_status &= ~value
        elif offset == STATUS:
            self.write_status(value & 0xFF)
        else:
            return self._write_queue_register(offset, value)
        return True

    def _write_queue_register(self, offset: int, value: int) -> bool:
        queue = self._selected_queue()
        if queue is None:
            return False
        if offset == QUEUE_READY:
            if value & 1 and not queue.ready:
                self.enable_queue(queue)
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

    def notify_points(self, base: int) -> list[tuple[int, int]]:
        """(address, width) of each queue's notify register, for a window at `base`."""
        return [(base + QUEUE_NOTIFY, 4)] * len(self.queues)

    def signal(self, cause: int, queue_index: int | None) -> None:
        self.interrupt_status |= cause
        self.irq.pulse()
