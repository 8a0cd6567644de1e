"""A driver-side mock of virtio-mmio and split virtqueues, for testing device models.

It does what a guest driver does, through the same paths: register accesses on the
transport (reset, ACKNOWLEDGE, DRIVER, feature negotiation, FEATURES_OK, queue setup,
DRIVER_OK, QueueNotify) and ring writes in guest memory (descriptor tables, indirect tables,
available ring entries), then reads back the used ring.  Raw writers (`write_desc`,
`set_avail_idx`, ...) let hostile-guest tests build rings no well-behaved driver would.
"""

from __future__ import annotations

import struct
from typing import Sequence

from ..errors import GuestMemoryError
from ..irq import IrqLine, RecordingIrqLine
from ..memory import GuestMemory, MemoryRegion
from .constants import (
    AVAIL_RING_ALIGN,
    CONFIG_SPACE,
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    DESC_SIZE,
    DESC_TABLE_ALIGN,
    DEVICE_FEATURES,
    DEVICE_FEATURES_SEL,
    DRIVER_FEATURES,
    DRIVER_FEATURES_SEL,
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
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
    STATUS_ACKNOWLEDGE,
    STATUS_DRIVER,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
    USED_ELEM_SIZE,
    USED_RING_ALIGN,
)
from .device import VirtioDevice
from ..pci.config import CAPABILITIES_POINTER
from . import pci
from .mmio import VirtioMmioTransport
from .pci import VirtioPciTransport

_DESC = struct.Struct("<QIHH")
_USED_ELEM = struct.Struct("<II")

# One buffer of a chain as a test describes it: (guest address, length, device-writable).
BufferSpec = tuple[int, int, bool]


class GuestAllocator:
    """Hands out aligned, non-overlapping stretches of guest RAM from [start, end)."""

    def __init__(self, start: int, end: int):
        self.start = self.next = start
        self.end = end

    def alloc(self, size: int, align: int = 16) -> int:
        addr = -(-self.next // align) * align
        if addr + size > self.end:
            raise MemoryError(f"test allocator exhausted ({size} bytes wanted)")
        self.next = addr + size
        return addr

    def reset(self) -> None:
        self.next = self.start


class MockSplitQueue:
    """The driver's half of one split virtqueue laid out in guest memory.

    Descriptors are handed out round-robin and never tracked as free or busy: a test keeps
    at most `size` descriptors in flight, or overwrites its own earlier chains.
    """

    def __init__(self, memory: GuestMemory, size: int, desc_addr: int, avail_addr: int, used_addr: int):
        self.memory = memory
        self.size = size
        self.desc_addr = desc_addr
        self.avail_addr = avail_addr
        self.used_addr = used_addr
        self.avail_idx = 0
        self.last_used = 0
        self._next_free = 0
        for addr, length in ((desc_addr, DESC_SIZE * size), (avail_addr, 6 + 2 * size), (used_addr, 6 + USED_ELEM_SIZE * size)):
            if memory.contains(addr, length):  # hostile tests place rings outside RAM on purpose
                memory.fill(addr, length)

    # --- Raw writers -------------------------------------------------------------------------

    def write_desc(self, index: int, addr: int, length: int, flags: int = 0, next: int = 0) -> None:
        self.memory.write_struct(self.desc_addr + DESC_SIZE * index, _DESC, addr, length, flags, next)

    def set_avail_idx(self, value: int) -> None:
        self.avail_idx = value & 0xFFFF
        self.memory.write_int(self.avail_addr + 2, 2, self.avail_idx)

    def set_avail_entry(self, slot: int, head: int) -> None:
        self.memory.write_int(self.avail_addr + 4 + 2 * (slot % self.size), 2, head)

    def set_avail_flags(self, flags: int) -> None:
        self.memory.write_int(self.avail_addr, 2, flags)

    def set_used_event(self, value: int) -> None:
        self.memory.write_int(self.avail_addr + 4 + 2 * self.size, 2, value)

    # --- What a driver does ------------------------------------------------------------------

    def _take_descriptors(self, count: int) -> list[int]:
        if count > self.size:
            raise ValueError(f"a chain of {count} descriptors does not fit a queue of {self.size}")
        indices = [(self._next_free + i) % self.size for i in range(count)]
        self._next_free = (self._next_free + count) % self.size
        return indices

    def add_chain(self, buffers: Sequence[BufferSpec], publish: bool = True) -> int:
        """Write `buffers` as a NEXT-linked chain; make it available unless `publish` is False."""
        indices = self._take_descriptors(len(buffers))
        for position, (addr, length, writable) in enumerate(buffers):
            last = position == len(buffers) - 1
            flags = (DESC_F_WRITE if writable else 0) | (0 if last else DESC_F_NEXT)
            self.write_desc(indices[position], addr, length, flags, 0 if last else indices[position + 1])
        if publish:
            self.publish(indices[0])
        return indices[0]

    def add_indirect_chain(self, table_addr: int, buffers: Sequence[BufferSpec], publish: bool = True) -> int:
        """Write `buffers` as an indirect table at `table_addr`, referenced by one descriptor."""
        for i, (addr, length, writable) in enumerate(buffers):
            last = i == len(buffers) - 1
            flags = (DESC_F_WRITE if writable else 0) | (0 if last else DESC_F_NEXT)
            self.memory.write_struct(table_addr + DESC_SIZE * i, _DESC, addr, length, flags, 0 if last else i + 1)
        (head,) = self._take_descriptors(1)
        self.write_desc(head, table_addr, DESC_SIZE * len(buffers), DESC_F_INDIRECT)
        if publish:
            self.publish(head)
        return head

    def publish(self, head: int) -> None:
        """Put `head` in the next available ring slot, then bump avail idx (idx last)."""
        self.set_avail_entry(self.avail_idx, head)
        self.set_avail_idx(self.avail_idx + 1)

    @property
    def used_idx(self) -> int:
        return self.memory.read_int(self.used_addr + 2, 2)

    @property
    def avail_event(self) -> int:
        return self.memory.read_int(self.used_addr + 4 + USED_ELEM_SIZE * self.size, 2)

    def take_used(self) -> list[tuple[int, int]]:
        """The (head, length) used elements the device added since the last call.

        Like Linux, it then sets used_event to the new position: with EVENT_IDX the driver
        asks for an interrupt at the next used buffer.
        """
        elements = []
        used_idx = self.used_idx
        while self.last_used != used_idx:
            slot = self.used_addr + 4 + USED_ELEM_SIZE * (self.last_used % self.size)
            elements.append(self.memory.read_struct(slot, _USED_ELEM))
            self.last_used = (self.last_used + 1) & 0xFFFF
        self.set_used_event(self.last_used)
        return elements


class FeaturesRefused(Exception):
    """The device did not keep FEATURES_OK set: it refused the features the driver chose."""


class MockDriver:
    """Drives a `VirtioMmioTransport` the way the Linux virtio-mmio driver does.

    Rings and buffers are placed with `allocator`; `init()` runs the whole initialisation
    sequence, and the smaller steps are public for tests that want to stop half-way.
    """

    def __init__(self, transport: VirtioMmioTransport, memory: GuestMemory, allocator: GuestAllocator):
        self.transport = transport
        self.memory = memory
        self.allocator = allocator
        self.queues: dict[int, MockSplitQueue] = {}

    def read_reg(self, offset: int) -> int:
        return self.transport.read(offset, 4)

    def write_reg(self, offset: int, value: int) -> None:
        self.transport.write(offset, 4, value)

    @property
    def status(self) -> int:
        return self.read_reg(STATUS)

    def set_status_bits(self, bits: int) -> None:
        self.write_reg(STATUS, self.status | bits)

    def reset(self) -> None:
        self.write_reg(STATUS, 0)
        self.queues.clear()

    def _device_features_word(self, half: int) -> int:
        self.write_reg(DEVICE_FEATURES_SEL, half)
        return self.read_reg(DEVICE_FEATURES)

    def _write_driver_features_word(self, half: int, value: int) -> None:
        self.write_reg(DRIVER_FEATURES_SEL, half)
        self.write_reg(DRIVER_FEATURES, value)

    def device_features(self) -> int:
        return self._device_features_word(0) | self._device_features_word(1) << 32

    def negotiate(self, features: int | None = None) -> int:
        """ACKNOWLEDGE, DRIVER, write `features` (default: all offered), FEATURES_OK."""
        self.set_status_bits(STATUS_ACKNOWLEDGE)
        self.set_status_bits(STATUS_DRIVER)
        chosen = self.device_features() if features is None else features
        for half in (0, 1):
            self._write_driver_features_word(half, chosen >> (32 * half) & 0xFFFF_FFFF)
        self.set_status_bits(STATUS_FEATURES_OK)
        if not self.status & STATUS_FEATURES_OK:
            raise FeaturesRefused(f"device refused features {chosen:#x}")
        return chosen

    def setup_queue(
        self,
        index: int,
        size: int | None = None,
        desc: int | None = None,
        avail: int | None = None,
        used: int | None = None,
    ) -> MockSplitQueue:
        """Program queue `index` (default size: the largest offered; rings from the allocator)."""
        size = self._max_queue_size(index) if size is None else size
        ring = max(size, 1)
        desc = self.allocator.alloc(DESC_SIZE * ring, DESC_TABLE_ALIGN) if desc is None else desc
        avail = self.allocator.alloc(6 + 2 * ring, AVAIL_RING_ALIGN) if avail is None else avail
        used = self.allocator.alloc(6 + USED_ELEM_SIZE * ring, USED_RING_ALIGN) if used is None else used
        queue = MockSplitQueue(self.memory, ring, desc, avail, used)
        self._program_queue(index, size, desc, avail, used)
        self.queues[index] = queue
        return queue

    def _max_queue_size(self, index: int) -> int:
        self.write_reg(QUEUE_SEL, index)
        return self.read_reg(QUEUE_NUM_MAX)

    def _program_queue(self, index: int, size: int, desc: int, avail: int, used: int) -> None:
        self.write_reg(QUEUE_SEL, index)
        self.write_reg(QUEUE_NUM, size)
        for low, high, addr in (
            (QUEUE_DESC_LOW, QUEUE_DESC_HIGH, desc),
            (QUEUE_DRIVER_LOW, QUEUE_DRIVER_HIGH, avail),
            (QUEUE_DEVICE_LOW, QUEUE_DEVICE_HIGH, used),
        ):
            self.write_reg(low, addr & 0xFFFF_FFFF)
            self.write_reg(high, addr >> 32)
        self.write_reg(QUEUE_READY, 1)

    def driver_ok(self) -> None:
        self.set_status_bits(STATUS_DRIVER_OK)

    def init(self, features: int | None = None, queue_sizes: Sequence[int | None] | None = None) -> list[MockSplitQueue]:
        """The full sequence: reset, negotiate, set up every queue, DRIVER_OK."""
        self.reset()
        self.allocator.reset()
        self.negotiate(features)
        count = len(self.transport.queues)
        sizes = list(queue_sizes) if queue_sizes is not None else [None] * count
        queues = [self.setup_queue(i, size) for i, size in enumerate(sizes)]
        self.driver_ok()
        return queues

    def kick(self, queue_index: int) -> None:
        self.write_reg(QUEUE_NOTIFY, queue_index)

    def ack_interrupt(self) -> int:
        """Read InterruptStatus and acknowledge what was there, like the driver's handler."""
        pending = self.read_reg(INTERRUPT_STATUS)
        self.write_reg(INTERRUPT_ACK, pending)
        return pending

    def read_config(self, offset: int, size: int) -> int:
        return self.transport.read(CONFIG_SPACE + offset, size)

    def write_config(self, offset: int, size: int, value: int) -> None:
        self.transport.write(CONFIG_SPACE + offset, size, value)


class MockPciDriver(MockDriver):
    """Drives a `VirtioPciTransport` the way Linux's virtio-pci (modern) driver does: it finds
    the common, notify, ISR and device regions by walking the vendor capabilities, then runs
    the same sequence as `MockDriver` through them."""

    def __init__(self, transport, memory: GuestMemory, allocator: GuestAllocator):
        super().__init__(transport, memory, allocator)
        self.regions: dict[int, int] = {}  # cfg_type -> offset in BAR 0
        config = transport.config
        pointer = config.read(CAPABILITIES_POINTER, 1)
        while pointer:
            if config.read(pointer, 1) == pci.CAP_VENDOR_SPECIFIC:
                cfg_type = config.read(pointer + 3, 1)
                self.regions.setdefault(cfg_type, config.read(pointer + 8, 4))
                if cfg_type == pci.CFG_NOTIFY:
                    self.notify_multiplier = config.read(pointer + 16, 4)
            pointer = config.read(pointer + 1, 1)

    def _common(self, offset: int, size: int, value: int | None = None) -> int:
        address = self.regions[pci.CFG_COMMON] + offset
        if value is None:
            return self.transport.read(address, size)
        self.transport.write(address, size, value)
        return value

    @property
    def status(self) -> int:
        return self._common(pci.DEVICE_STATUS, 1)

    def set_status_bits(self, bits: int) -> None:
        self._common(pci.DEVICE_STATUS, 1, self.status | bits)

    def reset(self) -> None:
        self._common(pci.DEVICE_STATUS, 1, 0)
        self.queues.clear()

    def _device_features_word(self, half: int) -> int:
        self._common(pci.DEVICE_FEATURE_SELECT, 4, half)
        return self._common(pci.DEVICE_FEATURE, 4)

    def _write_driver_features_word(self, half: int, value: int) -> None:
        self._common(pci.DRIVER_FEATURE_SELECT, 4, half)
        self._common(pci.DRIVER_FEATURE, 4, value)

    def _max_queue_size(self, index: int) -> int:
        self._common(pci.QUEUE_SELECT, 2, index)
        return self._common(pci.QUEUE_SIZE, 2)

    def _program_queue(self, index: int, size: int, desc: int, avail: int, used: int) -> None:
        self._common(pci.QUEUE_SELECT, 2, index)
        self._common(pci.QUEUE_SIZE, 2, size)
        for field, addr in ((pci.QUEUE_DESC, desc), (pci.QUEUE_DRIVER, avail), (pci.QUEUE_DEVICE, used)):
            self._common(field, 4, addr & 0xFFFF_FFFF)  # as Linux's vp_iowrite64_twopart
            self._common(field + 4, 4, addr >> 32)
        self._common(pci.QUEUE_ENABLE, 2, 1)

    def kick(self, queue_index: int) -> None:
        self._common(pci.QUEUE_SELECT, 2, queue_index)
        notify_off = self._common(pci.QUEUE_NOTIFY_OFF, 2)
        self.transport.write(self.regions[pci.CFG_NOTIFY] + notify_off * self.notify_multiplier, 2, queue_index)

    def ack_interrupt(self) -> int:
        """Read the ISR, which clears it, like the driver's INTx handler."""
        return self.transport.read(self.regions[pci.CFG_ISR], 1)

    def read_config(self, offset: int, size: int) -> int:
        return self.transport.read(self.regions[pci.CFG_DEVICE] + offset, size)

    def write_config(self, offset: int, size: int, value: int) -> None:
        self.transport.write(self.regions[pci.CFG_DEVICE] + offset, size, value)


class TracingGuestMemory(GuestMemory):
    """Guest memory that records every read/write/view refused for lying outside RAM.

    `contains()` checks are not recorded: they are how careful code avoids such accesses.
    """

    def __init__(self, regions: list[MemoryRegion]):
        super().__init__(regions)
        self.refused: list[tuple[int, int]] = []

    def _checked(self, gpa: int, length: int) -> None:
        if not self.contains(gpa, length):
            self.refused.append((gpa, length))
            raise GuestMemoryError(f"guest access {gpa:#x}+{length:#x} is outside guest RAM")

    def view(self, gpa: int, length: int) -> memoryview:
        self._checked(gpa, length)
        return super().view(gpa, length)

    def read(self, gpa: int, length: int) -> bytes:
        self._checked(gpa, length)
        return super().read(gpa, length)

    def write(self, gpa: int, data: bytes) -> None:
        self._checked(gpa, len(data))
        super().write(gpa, data)


class MockGuest:
    """A device on a transport (mmio or pci) with small guest RAM, an IRQ line (recording by
    default), and the matching driver.

    RAM is two 64 KiB regions with a hole between them ([0, 64K) and [128K, 192K)), so
    tests can aim at the hole and at region edges.  Rings are allocated from the first
    16 KiB page range of RAM, data buffers (`buffer()`) from the rest.
    """

    REGIONS = ((0x0, 0x10000), (0x20000, 0x10000))
    RING_AREA = (0x1000, 0x6000)
    DATA_AREA = (0x6000, 0x10000)

    def __init__(self, device: VirtioDevice, irq: IrqLine | None = None, transport: str = "mmio"):
        self.memory = TracingGuestMemory([MemoryRegion(addr, size) for addr, size in self.REGIONS])
        self.irq = irq if irq is not None else RecordingIrqLine()
        self.device = device
        if transport == "pci":
            self.transport = VirtioPciTransport(device, self.memory, self.irq)
            self.driver = MockPciDriver(self.transport, self.memory, GuestAllocator(*self.RING_AREA))
        else:
            self.transport = VirtioMmioTransport(device, self.memory, self.irq)
            self.driver = MockDriver(self.transport, self.memory, GuestAllocator(*self.RING_AREA))
        self.data = GuestAllocator(*self.DATA_AREA)

    def buffer(self, content: bytes | int) -> int:
        """Guest address of a new data buffer holding `content` (bytes) or that many zeros."""
        data = bytes(content) if isinstance(content, int) else content
        addr = self.data.alloc(len(data))
        self.memory.write(addr, data)
        return addr

    def close(self) -> None:
        self.transport.close()
        self.memory.close()
