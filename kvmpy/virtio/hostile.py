"""A hostile driver for fuzzing device models: one example (a re-initialised device, a ring
full of what the guest chose, kicks) decoded from a string of bytes, and the properties that
must hold after it whatever the bytes were.

Each example re-initialises the device through the mock driver (random EVENT_IDX / INDIRECT
negotiation, random queue size including invalid ones), fills a descriptor table, an indirect
area and the available ring with random descriptors (addresses in RAM, in the hole, at region
edges, over the rings themselves, far outside; lengths zero, small, huge; random flags and
next links), moves avail idx (sometimes by an illegal jump) and kicks.  The properties:

  * no exception leaves the transport;
  * afterwards the device is either live or flagged DEVICE_NEEDS_RESET;
  * no access outside guest RAM was even attempted (TracingGuestMemory records them);
  * the used index moved forward, by at most the queue size.

The bytes are read by a small reader that continues from a PRNG seeded with them once they
run out, so short inputs (what hypothesis draws most, and where libFuzzer starts) still fill
a whole ring, deterministically.  Used by tests/unit/test_virtio_fuzz.py (hypothesis) and the
coverage-guided targets in tests/fuzz (atheris).
"""

from __future__ import annotations

import os
import random
import struct

from . import blk
from .blk import BlockDevice
from .console import ConsoleDevice
from .constants import F_RING_EVENT_IDX, F_RING_INDIRECT_DESC, F_VERSION_1
from .net import NetDevice
from .netbackend import VNET_HDR_SIZE
from .rng import RngDevice
from .testing import MockGuest

QUEUE_SIZES = (1, 2, 4, 8, 16) * 6 + (3, 0, 512)  # mostly valid
DATA_START, DATA_END = MockGuest.DATA_AREA
INDIRECT_AREA = DATA_END - 0x200  # random descriptors an INDIRECT descriptor may point at
_DESC = struct.Struct("<QIHH")


class Blob:
    """Reads little integers from the example's bytes, then from a PRNG seeded with them.

    Hypothesis draws short blobs more often than long ones; the seeded continuation still
    fills a whole ring from them, deterministically, so failures replay and shrink.
    """

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0
        self.more = random.Random(data)

    def u8(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1] if self.pos <= len(self.data) else self.more.getrandbits(8)

    def u16(self) -> int:
        return self.u8() | self.u8() << 8


def address(blob: Blob) -> int:
    kind, offset = blob.u8() % 10, blob.u16()
    return (
        DATA_START + offset % (DATA_END - DATA_START),  # ordinary data
        0x20000 + offset,  # second RAM region
        0x10000 + offset,  # the hole
        0x10000 - offset % 64,  # end of the first region
        0x30000 - offset % 64,  # end of the second region
        0x1000 + offset % 0x5000,  # over the rings
        INDIRECT_AREA + 16 * (offset % 16),  # an indirect table
        0xFFFF_FFFF_FFFF_0000 + offset,  # far outside, near 64-bit wraparound
        0,
        DATA_START + 64 * (offset % 64),  # a prepared request header
    )[kind]


def length(blob: Blob) -> int:
    kind, value = blob.u8() % 9, blob.u16()
    return (value % 64, value % 2048, 0, 0xFFFF_FFFF, 16 * (value % 12), 512 * (value % 4), VNET_HDR_SIZE, 1, value)[kind]


def descriptor(blob: Blob, table_size: int) -> tuple[int, int, int, int]:
    flags = blob.u8()
    flags = flags & 0x7 if flags < 224 else flags | flags << 8  # mostly known bits
    return address(blob), length(blob), flags, blob.u8() % (table_size + 2)


def plausible_chain(blob: Blob, style: int) -> list[tuple[int, int, bool]]:
    """Buffers as a driver would lay them out: in RAM, readable ones first.

    `style` is per example, like a real driver's habits: bits 0-1 pick all readable, all
    writable or readable-then-writable (twice as likely); the next three bit pairs make
    (each with probability 3/4) the first readable buffer a prepared request header, the
    last writable one a status byte, and the other sizes whole sectors.
    """
    count = 1 + blob.u8() % 4
    pattern, header, status, sectors = style & 3, style & 0xC, style & 0x30, style & 0xC0
    split = {0: count, 1: 0}.get(pattern, 1 + blob.u8() % count)
    chain = []
    for position in range(count):
        writable, value = position >= split, blob.u16()
        if position == 0 and not writable and header:  # request header (+ discard segment)
            chain.append((DATA_START + 64 * (value % 64), 32 if value & 3 == 0 else 16, False))
        elif position == count - 1 and writable and status:
            chain.append((DATA_START + value % 0x8000, 1, True))
        else:
            size = (1 + value % 200, VNET_HDR_SIZE + value % 1600, 16, 512 * (1 + value % 4))[3 if sectors else blob.u8() & 3]
            chain.append((DATA_START + value % 0x8000, size, writable))
    return chain


def blk_requests() -> bytes:
    """The data area, with request headers and discard segments every 64 bytes."""
    area = bytearray(os.urandom(DATA_END - DATA_START))
    types = (blk.T_IN, blk.T_OUT, blk.T_FLUSH, blk.T_GET_ID, blk.T_DISCARD, blk.T_WRITE_ZEROES, 99)
    for k in range(len(area) // 64):
        struct.pack_into("<IIQ", area, 64 * k, types[k % len(types)], 0, k % 80)
        struct.pack_into("<QII", area, 64 * k + 16, k % 70, k % 5, k % 3 // 2)
    return bytes(area)


class EndlessBackend:
    """A net backend that always has a packet and takes any, never waking the RX thread
    (so all processing happens in the kick, and examples stay deterministic)."""

    def __init__(self):
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.sent = 0

    def fileno(self):
        return self._fd

    def recv(self):
        return bytes(VNET_HDR_SIZE) + b"\xff" * 60

    def send(self, parts):
        self.sent += 1

    def close(self):
        os.close(self._fd)


def make_blk(directory: str) -> BlockDevice:
    image = os.path.join(directory, "fuzz.img")
    with open(image, "wb") as disk:
        disk.write(bytes(64 * 512))
    return BlockDevice(image, queue_size=16)


def make_rng(directory: str) -> RngDevice:
    return RngDevice(queue_size=16)


def make_console(directory: str) -> ConsoleDevice:
    device = ConsoleDevice(sink=lambda data: None, queue_size=16)
    device.enqueue_input(b"x" * 100_000)
    return device


def make_net(directory: str) -> NetDevice:
    return NetDevice(EndlessBackend(), queue_size=16)


DEVICE_MAKERS = {"blk": make_blk, "rng": make_rng, "console": make_console, "net": make_net}


class HostileDriver:
    """A device on the mock transport, driven by examples: `run(data)` plays one and checks
    the properties (AssertionError when one fails)."""

    def __init__(self, guest: MockGuest):
        self.guest = guest
        self.data_image = blk_requests()
        self.base_features = guest.transport.device.features | 1 << F_VERSION_1

    def run(self, data: bytes) -> None:
        transport, memory, driver = self.guest.transport, self.guest.memory, self.guest.driver
        data_image, base_features, queue_count = self.data_image, self.base_features, len(transport.queues)
        blob = Blob(data)
        memory.write(DATA_START, data_image)
        choice = blob.u8()
        features = base_features | (choice & 1) << F_RING_EVENT_IDX | (choice >> 1 & 1) << F_RING_INDIRECT_DESC
        size = QUEUE_SIZES[blob.u8() % len(QUEUE_SIZES)]
        target = blob.u8() % queue_count
        advance, jump, kicks = blob.u8(), blob.u16(), blob.u8()
        driver.reset()
        driver.allocator.reset()
        driver.negotiate(features)
        rings = [driver.setup_queue(i, size if i == target else 16) for i in range(queue_count)]
        driver.driver_ok()
        ring = rings[target]
        table = ring.size
        if choice & 4:  # a wild ring: every descriptor and avail entry random
            for index in range(table):
                ring.write_desc(index, *descriptor(blob, table))
            for index in range(16):
                memory.write_struct(INDIRECT_AREA + 16 * index, _DESC, *descriptor(blob, 16))
            for slot in range(table):
                ring.set_avail_entry(slot, blob.u8() % (table + 2))
            ring.set_avail_idx(advance % (table + 1) if advance < 240 else jump)
        else:  # plausible chains, then a few random corruptions
            style = blob.u8()
            for _ in range(1 + advance % table):
                chain = plausible_chain(blob, style)
                if choice & 8 and features >> F_RING_INDIRECT_DESC & 1:
                    ring.add_indirect_chain(INDIRECT_AREA, chain)
                elif len(chain) <= table:
                    ring.add_chain(chain)
            for _ in range(max(0, (choice >> 4 & 3) - 1)):
                ring.write_desc(blob.u8() % table, *descriptor(blob, table))
        ring.set_used_event(blob.u16())
        ring.set_avail_flags(blob.u8() & 1)
        before = [q.next_used for q in transport.queues]

        driver.kick(target)
        if kicks & 1:
            driver.kick(kicks >> 1 & 3)  # another queue, or one that does not exist

        assert transport.needs_reset or transport.active
        assert memory.refused == []
        for queue, old in zip(transport.queues, before):
            assert (queue.next_used - old) & 0xFFFF <= max(queue.size, 0)
