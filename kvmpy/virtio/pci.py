"""The modern virtio-pci transport (virtio 1.x section 4.1): a PCI function whose BAR 0 holds
the common configuration, the ISR status, the device configuration and the notify area, each
found by the driver through a vendor-specific capability.

BAR 0 layout (REGION_* offsets): common configuration at 0x0000, ISR at 0x1000, device
configuration at 0x2000, notify area at 0x3000 (queue i's notify register at
0x3000 + i * NOTIFY_MULTIPLIER). Interrupts are the function's INTx pin, signalled as an edge
(the MP table and ACPI describe the line as edge-triggered, active high), with the ISR
recording why; reading the ISR clears it.

Not here yet: MSI-X (drivers fall back to INTx), the PCI-configuration access capability
(only firmware uses it), legacy (0.9.5) drivers.
"""

from __future__ import annotations

import logging

from ..irq import IrqLine
from ..memory import GuestMemory
from ..pci.config import ConfigSpace
from .constants import ID_BLOCK, ID_NET
from .device import VirtioDevice
from .transport import VirtioTransport

log = logging.getLogger(__name__)

PCI_VENDOR_VIRTIO = 0x1AF4
PCI_DEVICE_MODERN_BASE = 0x1040  # + virtio device id
PCI_REVISION_MODERN = 1
PCI_SUBSYSTEM_ID_MODERN = 0x40
CLASS_BY_DEVICE = {ID_BLOCK: 0x018000, ID_NET: 0x020000}  # mass storage, network; others "other"
CLASS_OTHER = 0xFF0000

BAR_INDEX = 0
BAR_SIZE = 0x4000
REGION_COMMON = 0x0000
REGION_ISR = 0x1000
REGION_DEVICE = 0x2000
REGION_NOTIFY = 0x3000
REGION_SIZE = 0x1000
NOTIFY_MULTIPLIER = 4

CAP_VENDOR_SPECIFIC = 0x09
CFG_COMMON, CFG_NOTIFY, CFG_ISR, CFG_DEVICE = 1, 2, 3, 4
COMMON_LENGTH = 0x38

# Common configuration structure offsets (section 4.1.4.3).
DEVICE_FEATURE_SELECT = 0x00
DEVICE_FEATURE = 0x04
DRIVER_FEATURE_SELECT = 0x08
DRIVER_FEATURE = 0x0C
CONFIG_MSIX_VECTOR = 0x10
NUM_QUEUES = 0x12
DEVICE_STATUS = 0x14
CONFIG_GENERATION = 0x15
QUEUE_SELECT = 0x16
QUEUE_SIZE = 0x18
QUEUE_MSIX_VECTOR = 0x1A
QUEUE_ENABLE = 0x1C
QUEUE_NOTIFY_OFF = 0x1E
QUEUE_DESC = 0x20
QUEUE_DRIVER = 0x28
QUEUE_DEVICE = 0x30
NO_VECTOR = 0xFFFF

_QUEUE_ADDRESSES = {QUEUE_DESC: "desc_addr", QUEUE_DRIVER: "avail_addr", QUEUE_DEVICE: "used_addr"}


def _capability(cfg_type: int, offset: int, length: int, extra: bytes = b"") -> bytes:
    """A virtio_pci_cap body after id and next: cap_len, cfg_type, bar, id, padding, offset, length."""
    cap_len = 16 + len(extra)
    return (bytes([cap_len, cfg_type, BAR_INDEX, 0, 0, 0]) + offset.to_bytes(4, "little")
            + length.to_bytes(4, "little") + extra)


class VirtioPciTransport(VirtioTransport):
    """One virtio device as a PCI function: `config` is its configuration space, and the
    object itself is the bus device behind BAR 0 (offsets relative to the BAR)."""

    def __init__(self, device: VirtioDevice, memory: GuestMemory, irq: IrqLine, name: str | None = None):
        self.irq = irq
        super().__init__(device, memory, name)
        self.config = ConfigSpace(PCI_VENDOR_VIRTIO, PCI_DEVICE_MODERN_BASE + device.device_id,
                                  CLASS_BY_DEVICE.get(device.device_id, CLASS_OTHER), PCI_REVISION_MODERN,
                                  PCI_VENDOR_VIRTIO, PCI_SUBSYSTEM_ID_MODERN)
        self.config.add_capability(CAP_VENDOR_SPECIFIC, _capability(CFG_COMMON, REGION_COMMON, COMMON_LENGTH))
        self.config.add_capability(CAP_VENDOR_SPECIFIC, _capability(
            CFG_NOTIFY, REGION_NOTIFY, max(len(self.queues), 1) * NOTIFY_MULTIPLIER,
            NOTIFY_MULTIPLIER.to_bytes(4, "little")))
        self.config.add_capability(CAP_VENDOR_SPECIFIC, _capability(CFG_ISR, REGION_ISR, 1))
        self.config.add_capability(CAP_VENDOR_SPECIFIC, _capability(CFG_DEVICE, REGION_DEVICE, REGION_SIZE))

    def _reset_state(self) -> None:
        super()._reset_state()
        self.device_feature_select = 0
        self.driver_feature_select = 0
        self.queue_select = 0
        self.isr = 0
        for queue in self.queues:
            queue.size = queue.max_size  # queue_size reads the maximum until the driver lowers it

    def notify_points(self, bar_address: int) -> list[tuple[int, int]]:
        """(address, width) of each queue's notify register, for a BAR 0 at `bar_address`."""
        return [(bar_address + REGION_NOTIFY + index * NOTIFY_MULTIPLIER, 2) for index in range(len(self.queues))]

    # --- BAR 0 ----------------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self.lock:
            region, within = offset & ~(REGION_SIZE - 1), offset & (REGION_SIZE - 1)
            if region == REGION_COMMON:
                value = self._read_common(within, size)
                if value is not None:
                    return value
            elif region == REGION_ISR and within == 0:
                isr, self.isr = self.isr, 0  # reading clears it (and would lower a level line)
                self.config.set_interrupt_status(False)
                return isr
            elif region == REGION_DEVICE and size in (1, 2, 4):
                return self.read_config(within, size)
            log.debug("%s: ignored read at BAR offset %#x/%d", self.name, offset, size)
            return 0

    def write(self, offset: int, size: int, value: int) -> None:
        with self.lock:
            region, within = offset & ~(REGION_SIZE - 1), offset & (REGION_SIZE - 1)
            if region == REGION_COMMON and self._write_common(within, size, value):
                return
            if region == REGION_NOTIFY and size in (2, 4):
                self.register_kicks += 1
                self.notify(value & 0xFFFF)
                return
            if region == REGION_DEVICE and size in (1, 2, 4):
                self.write_config(within, size, value)
                return
            log.debug("%s: ignored write at BAR offset %#x/%d = %#x", self.name, offset, size, value)

    # --- Common configuration -------------------------------------------------------------

    def _read_common(self, offset: int, size: int) -> int | None:
        queue = self.queue(self.queue_select)
        field = _COMMON_READS.get((offset, size))
        if field is not None:
            return field(self, queue)
        base = offset & ~7
        if base in _QUEUE_ADDRESSES and size == 4:
            return getattr(queue, _QUEUE_ADDRESSES[base]) >> (8 * (offset - base)) & 0xFFFF_FFFF if queue else 0
        return None

    def _write_common(self, offset: int, size: int, value: int) -> bool:
        """Apply a common-configuration write; False when it means nothing (it is logged)."""
        if (offset, size) == (DEVICE_FEATURE_SELECT, 4):
            self.device_feature_select = value
        elif (offset, size) == (DRIVER_FEATURE_SELECT, 4):
            self.driver_feature_select = value
        elif (offset, size) == (DRIVER_FEATURE, 4):
            return self.set_driver_features_word(self.driver_feature_select, value)
        elif (offset, size) == (DEVICE_STATUS, 1):
            self.write_status(value & 0xFF)
        elif (offset, size) == (QUEUE_SELECT, 2):
            self.queue_select = value
        elif (offset, size) in ((CONFIG_MSIX_VECTOR, 2), (QUEUE_MSIX_VECTOR, 2)):
            pass  # no MSI-X: the vector reads back as NO_VECTOR, which tells the driver so
        else:
            return self._write_queue_field(offset, size, value)
        return True

    def _write_queue_field(self, offset: int, size: int, value: int) -> bool:
        queue = self.queue(self.queue_select)
        if queue is None:
            return False
        if (offset, size) == (QUEUE_ENABLE, 2):
            if value & 1 and not queue.ready:
                self.enable_queue(queue)
            return True  # writing 0 is not allowed (section 4.1.4.3.2): ignored
        if queue.ready:
            return False  # the spec forbids reprogramming a live queue
        if (offset, size) == (QUEUE_SIZE, 2):
            queue.size = value
            return True
        base = offset & ~7
        if base in _QUEUE_ADDRESSES and size == 4:
            attribute, shift = _QUEUE_ADDRESSES[base], 8 * (offset - base)
            setattr(queue, attribute, getattr(queue, attribute) & ~(0xFFFF_FFFF << shift) | value << shift)
            return True
        return False

    # --- Interrupts -----------------------------------------------------------------------

    def signal(self, cause: int, queue_index: int | None) -> None:
        self.isr |= cause
        if not self.config.intx_disabled:
            self.config.set_interrupt_status(True)
            self.irq.pulse()


# Readable common-configuration fields by (offset, width): their value for a transport and its
# selected queue (None when the selector points past the last queue).
_COMMON_READS = {
    (DEVICE_FEATURE_SELECT, 4): lambda transport, queue: transport.device_feature_select,
    (DEVICE_FEATURE, 4): lambda transport, queue: transport.device_features_word(transport.device_feature_select),
    (DRIVER_FEATURE_SELECT, 4): lambda transport, queue: transport.driver_feature_select,
    (DRIVER_FEATURE, 4): lambda transport, queue: transport.driver_features_word(transport.driver_feature_select),
    (CONFIG_MSIX_VECTOR, 2): lambda transport, queue: NO_VECTOR,
    (NUM_QUEUES, 2): lambda transport, queue: len(transport.queues),
    (DEVICE_STATUS, 1): lambda transport, queue: transport.status,
    (CONFIG_GENERATION, 1): lambda transport, queue: transport.config_generation & 0xFF,
    (QUEUE_SELECT, 2): lambda transport, queue: transport.queue_select,
    (QUEUE_SIZE, 2): lambda transport, queue: queue.size if queue else 0,
    (QUEUE_MSIX_VECTOR, 2): lambda transport, queue: NO_VECTOR,
    (QUEUE_ENABLE, 2): lambda transport, queue: int(queue.ready) if queue else 0,
    (QUEUE_NOTIFY_OFF, 2): lambda transport, queue: transport.queue_select if queue else 0,
}
