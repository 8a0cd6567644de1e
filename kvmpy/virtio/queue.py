"""The split virtqueue (virtio 1.x section 2.7), seen from the device side.

The driver owns three areas of guest RAM: the descriptor table, the available ("driver") ring
and the used ("device") ring.  Everything read from them is hostile input: each address and
length is checked against guest RAM (through `GuestMemory`, never a raw pointer) before the
device uses it, chains are bounded and loops detected, and anything malformed raises
`VirtqueueError`.  The transport turns that error into DEVICE_NEEDS_RESET; nothing here
decides policy.

Memory ordering: guest RAM is a shared mmap and Python stores to it happen in program order,
which on x86 (TSO) is also the order other CPUs observe them; loads are not reordered with
other loads either.  So `add_used` writes the used element before the used index that
publishes it, and reading avail idx before the ring entries and descriptors it covers is
enough.  The one reordering x86 allows -- a later load passing an earlier store -- matters
where the device stores an index and then loads the driver's (avail_event then avail idx,
used idx then used_event); `_full_barrier` sits there.  The indices the driver and device
update concurrently are accessed as single aligned 16-bit loads and stores (`_load_u16`,
`_store_u16`), so neither side can see half of an update.  (Rings are little-endian, as is
the x86 host.)
"""

from __future__ import annotations

import struct
import threading
from dataclasses import dataclass

from ..errors import KvmpyError
from ..memory import GuestMemory
from .constants import (
    AVAIL_F_NO_INTERRUPT,
    AVAIL_RING_ALIGN,
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    DESC_SIZE,
    DESC_TABLE_ALIGN,
    USED_ELEM_SIZE,
    USED_RING_ALIGN,
)

# A generous bound on the bytes one chain may describe: guards the host against a chain of
# many descriptors all naming the same large stretch of RAM (virtio-blk would do that I/O).
MAX_CHAIN_BYTES = 256 << 20

_DESC = struct.Struct("<QIHH")
_USED_ELEM = struct.Struct("<II")
_RING_HEADER = 4  # le16 flags, le16 idx, before the ring entries of both rings
_barrier_lock = threading.Lock()


class VirtqueueError(KvmpyError):
    """The driver put something on a virtqueue that the device must refuse.

    Raised by the queue code (and by devices, for requests whose layout is malformed); the
    transport catches it and sets DEVICE_NEEDS_RESET.
    """


def _full_barrier() -> None:
    """A store-load fence: taking an uncontended lock is a locked (serialising) instruction."""
    with _barrier_lock:
        pass


@dataclass(frozen=True, slots=True)
class Buffer:
    """One checked guest buffer of a chain: [addr, addr+length) lies inside one RAM region."""

    addr: int
    length: int


class DescriptorChain:
    """One request popped from the available ring: readable buffers, then writable ones.

    Offsets passed to the accessors are byte offsets into the concatenation of the readable
    (respectively writable) buffers; a range beyond their end raises `VirtqueueError`, so a
    device can ask for the header it needs and let a short chain fail on its own.
    """

    def __init__(self, memory: GuestMemory, head: int, readable: list[Buffer], writable: list[Buffer]):
        self.memory = memory
        self.head = head
        self.readable = readable
        self.writable = writable
        self.readable_len = sum(b.length for b in readable)
        self.writable_len = sum(b.length for b in writable)

    def readable_views(self, start: int, length: int) -> list[memoryview]:
        return _views(self.memory, self.readable, start, length)

    def writable_views(self, start: int, length: int) -> list[memoryview]:
        return _views(self.memory, self.writable, start, length)

    def read(self, start: int, length: int) -> bytes:
        return b"".join(self.readable_views(start, length))

    def write(self, start: int, data: bytes) -> None:
        done = 0
        for view in self.writable_views(start, len(data)):
            view[:] = data[done : done + len(view)]
            done += len(view)


def _views(memory: GuestMemory, buffers: list[Buffer], start: int, length: int) -> list[memoryview]:
    """Memoryviews covering bytes [start, start+length) of the concatenated buffers."""
    if start < 0 or length < 0 or start + length > sum(buf.length for buf in buffers):
        raise VirtqueueError("descriptor chain is shorter than the request needs")
    views = []
    for buf in buffers:
        if length == 0:
            break
        if start >= buf.length:
            start -= buf.length
            continue
        take = min(buf.length - start, length)
        views.append(memory.view(buf.addr + start, take))
        length -= take
        start = 0
    return views


def _load_u16(memory: GuestMemory, addr: int) -> int:
    """One aligned 16-bit load (a memoryview cast reads the whole word at once)."""
    return memory.view(addr, 2).cast("H")[0]


def _store_u16(memory: GuestMemory, addr: int, value: int) -> None:
    memory.view(addr, 2).cast("H")[0] = value


class Virtqueue:
    """Device-side state of one split virtqueue, and the operations on its rings.

    The transport programs `size`, the three area addresses and `ready` from the driver's
    register writes, checks them with `validate()` and sets `event_idx` / `indirect` from
    the negotiated features; the device then calls `pop`, `add_used` and `should_notify`.
    """

    def __init__(self, memory: GuestMemory, max_size: int):
        self.memory = memory
        self.max_size = max_size
        self.reset()

    def reset(self) -> None:
        self.size = 0
        self.ready = False
        self.desc_addr = 0
        self.avail_addr = 0
        self.used_addr = 0
        self.event_idx = False
        self.indirect = False
        self.next_avail = 0  # free-running 16-bit index of the next avail entry to pop
        self.next_used = 0  # free-running 16-bit index of the next used slot to fill
        self.signalled_used = 0  # next_used when should_notify last ran

    def validate(self) -> None:
        """Check the driver's queue configuration; raise `VirtqueueError` if it is unusable."""
        size = self.size
        if size == 0 or size & (size - 1) or size > self.max_size:
            raise VirtqueueError(f"queue size {size} is not a power of two <= {self.max_size}")
        areas = (
            ("descriptor table", self.desc_addr, DESC_SIZE * size, DESC_TABLE_ALIGN),
            ("available ring", self.avail_addr, _RING_HEADER + 2 * size + 2, AVAIL_RING_ALIGN),
            ("used ring", self.used_addr, _RING_HEADER + USED_ELEM_SIZE * size + 2, USED_RING_ALIGN),
        )
        for name, addr, length, align in areas:
            if addr % align:
                raise VirtqueueError(f"{name} at {addr:#x} is not {align}-byte aligned")
            if not self.memory.contains(addr, length):
                raise VirtqueueError(f"{name} {addr:#x}+{length:#x} is outside guest RAM")

    # --- Available ring ------------------------------------------------------------------

    def _avail_idx(self) -> int:
        idx = _load_u16(self.memory, self.avail_addr + 2)
        if (idx - self.next_avail) & 0xFFFF > self.size:
            raise VirtqueueError(f"avail idx jumped from {self.next_avail} to {idx}")
        return idx

    def pop(self) -> DescriptorChain | None:
        """The next available chain, checked, or None when the driver has offered nothing.

        With EVENT_IDX, an empty queue publishes avail_event (asking the driver to kick at its
        next addition) and looks again, so a buffer added meanwhile is not missed.
        """
        if self._avail_idx() == self.next_avail:
            if not self.event_idx:
                return None
            _store_u16(self.memory, self._avail_event_addr(), self.next_avail)
            _full_barrier()
            if self._avail_idx() == self.next_avail:
                return None
        slot = self.avail_addr + _RING_HEADER + 2 * (self.next_avail % self.size)
        head = self.memory.read_int(slot, 2)
        self.next_avail = (self.next_avail + 1) & 0xFFFF
        return self._walk(head)

    def _walk(self, head: int) -> DescriptorChain:
        """Follow a chain from `head` through at most one indirect table, checking everything."""
        table, entries = self.desc_addr, self.size
        index, seen, in_indirect, total = head, 0, False, 0
        readable: list[Buffer] = []
        writable: list[Buffer] = []
        while True:
            if index >= entries:
                raise VirtqueueError(f"descriptor index {index} outside a table of {entries}")
            seen += 1
            if seen > entries:
                raise VirtqueueError("descriptor chain loops or is longer than its table")
            addr, length, flags, nxt = self.memory.read_struct(table + DESC_SIZE * index, _DESC)
            if flags & DESC_F_INDIRECT:
                table, entries = self._indirect_table(addr, length, flags, in_indirect)
                index, seen, in_indirect = 0, 0, True
                continue
            total += length
            if total > MAX_CHAIN_BYTES:
                raise VirtqueueError(f"descriptor chain describes more than {MAX_CHAIN_BYTES} bytes")
            if length:
                if not self.memory.contains(addr, length):
                    raise VirtqueueError(f"buffer {addr:#x}+{length:#x} is outside guest RAM")
                if flags & DESC_F_WRITE:
                    writable.append(Buffer(addr, length))
                elif writable:
                    raise VirtqueueError("device-readable descriptor after a device-writable one")
                else:
                    readable.append(Buffer(addr, length))
            if not flags & DESC_F_NEXT:
                return DescriptorChain(self.memory, head, readable, writable)
            index = nxt

    def _indirect_table(self, addr: int, length: int, flags: int, in_indirect: bool) -> tuple[int, int]:
        if not self.indirect:
            raise VirtqueueError("indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC")
        if in_indirect:
            raise VirtqueueError("indirect descriptor inside an indirect table")
        if flags & DESC_F_NEXT:
            raise VirtqueueError("indirect descriptor with the NEXT flag")
        entries = length // DESC_SIZE
        if length % DESC_SIZE or not 0 < entries <= self.size:
            raise VirtqueueError(f"indirect table length {length} is not 1..{self.size} descriptors")
        if not self.memory.contains(addr, length):
            raise VirtqueueError(f"indirect table {addr:#x}+{length:#x} is outside guest RAM")
        return addr, entries

    # --- Used ring -----------------------------------------------------------------------

    def add_used(self, head: int, length: int) -> None:
        """Return chain `head` to the driver with `length` bytes written; publish idx last."""
        slot = self.used_addr + _RING_HEADER + USED_ELEM_SIZE * (self.next_used % self.size)
        self.memory.write_struct(slot, _USED_ELEM, head, length)
        self.next_used = (self.next_used + 1) & 0xFFFF
        _store_u16(self.memory, self.used_addr + 2, self.next_used)

    def should_notify(self) -> bool:
        """Whether the used buffers added since the last call warrant an interrupt.

        Honours used_event with EVENT_IDX (the driver's "interrupt me once used idx passes
        this") and VIRTQ_AVAIL_F_NO_INTERRUPT without it.
        """
        old, new = self.signalled_used, self.next_used
        if old == new:
            return False
        self.signalled_used = new
        _full_barrier()
        if self.event_idx:
            used_event = _load_u16(self.memory, self._used_event_addr())
            return (new - used_event - 1) & 0xFFFF < (new - old) & 0xFFFF
        return not _load_u16(self.memory, self.avail_addr) & AVAIL_F_NO_INTERRUPT

    def _used_event_addr(self) -> int:
        return self.avail_addr + _RING_HEADER + 2 * self.size

    def _avail_event_addr(self) -> int:
        return self.used_addr + _RING_HEADER + USED_ELEM_SIZE * self.size
