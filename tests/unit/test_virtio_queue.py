"""The split virtqueue on its own: chain walking, checks on hostile rings, used ring, EVENT_IDX."""

import pytest

from kvmpy.memory import MemoryRegion
from kvmpy.virtio import queue as queue_module
from kvmpy.virtio.constants import DESC_F_INDIRECT, DESC_F_NEXT
from kvmpy.virtio.queue import Virtqueue, VirtqueueError
from kvmpy.virtio.testing import MockSplitQueue, TracingGuestMemory

pytestmark = pytest.mark.virtio

SIZE = 8
DESC, AVAIL, USED = 0x1000, 0x2000, 0x3000
DATA = 0x8000
HOLE = 0x10000  # RAM is [0, 64K) and [128K, 192K)


@pytest.fixture
def memory():
    mem = TracingGuestMemory([MemoryRegion(0, 0x10000), MemoryRegion(0x20000, 0x10000)])
    yield mem
    mem.close()


@pytest.fixture
def rings(memory):
    """(device-side Virtqueue, driver-side MockSplitQueue) over the same memory."""
    vq = Virtqueue(memory, max_size=16)
    vq.size, vq.desc_addr, vq.avail_addr, vq.used_addr = SIZE, DESC, AVAIL, USED
    vq.indirect = True
    vq.validate()
    vq.ready = True
    return vq, MockSplitQueue(memory, SIZE, DESC, AVAIL, USED)


def test_chain_splits_readable_and_writable_and_reads_across_buffers(rings, memory):
    vq, mq = rings
    memory.write(DATA, b"hello ")
    memory.write(DATA + 0x100, b"world")
    head = mq.add_chain([(DATA, 6, False), (DATA + 0x100, 5, False), (DATA + 0x200, 4, True), (DATA + 0x300, 4, True)])
    chain = vq.pop()
    assert chain.head == head
    assert (chain.readable_len, chain.writable_len) == (11, 8)
    assert chain.read(0, 11) == b"hello world"
    assert chain.read(4, 4) == b"o wo"
    chain.write(2, b"ABCD")
    assert memory.read(DATA + 0x200, 4) == b"\0\0AB" and memory.read(DATA + 0x300, 4) == b"CD\0\0"
    assert vq.pop() is None
    assert memory.refused == []


def test_indirect_chain(rings, memory):
    vq, mq = rings
    memory.write(DATA, b"abc")
    mq.add_indirect_chain(DATA + 0x800, [(DATA, 3, False), (DATA + 0x100, 16, True)])
    chain = vq.pop()
    assert chain.read(0, 3) == b"abc" and chain.writable_len == 16


def test_zero_length_descriptors_are_skipped(rings):
    vq, mq = rings
    mq.add_chain([(DATA, 0, False), (0xFFFF_FFFF_0000, 0, True), (DATA, 4, True)])
    chain = vq.pop()
    assert chain.readable == [] and chain.writable_len == 4


def test_reading_past_the_chain_is_a_virtqueue_error(rings):
    vq, mq = rings
    mq.add_chain([(DATA, 4, False)])
    with pytest.raises(VirtqueueError):
        vq.pop().read(0, 16)


@pytest.mark.parametrize(
    "addr, length",
    [
        (HOLE, 16),  # in the hole between the regions
        (0x10000 - 8, 16),  # runs off the end of the first region
        (0x30000, 1),  # beyond all RAM
        (DATA, 0xFFFF_FFFF),  # huge length
        (0xFFFF_FFFF_FFFF_FFF0, 0x20),  # 64-bit wraparound
    ],
)
def test_buffers_outside_ram_are_refused_without_touching_memory(rings, memory, addr, length):
    vq, mq = rings
    mq.add_chain([(addr, length, True)])
    with pytest.raises(VirtqueueError):
        vq.pop()
    assert memory.refused == []


def test_descriptor_loop_is_detected(rings):
    vq, mq = rings
    mq.write_desc(0, DATA, 4, DESC_F_NEXT, 1)
    mq.write_desc(1, DATA, 4, DESC_F_NEXT, 0)
    mq.publish(0)
    with pytest.raises(VirtqueueError, match="loops"):
        vq.pop()


def test_next_index_outside_the_table(rings):
    vq, mq = rings
    mq.write_desc(0, DATA, 4, DESC_F_NEXT, SIZE)
    mq.publish(0)
    with pytest.raises(VirtqueueError, match="outside a table"):
        vq.pop()


def test_head_index_outside_the_table(rings):
    vq, mq = rings
    mq.publish(SIZE + 3)
    with pytest.raises(VirtqueueError):
        vq.pop()


def test_readable_after_writable_is_refused(rings):
    vq, mq = rings
    mq.add_chain([(DATA, 4, True), (DATA + 4, 4, False)])
    with pytest.raises(VirtqueueError, match="after a device-writable"):
        vq.pop()


def test_indirect_inside_indirect_is_refused(rings, memory):
    vq, mq = rings
    inner, outer = DATA + 0x400, DATA + 0x800
    memory.write_struct(inner, queue_module._DESC, DATA, 4, 0, 0)
    memory.write_struct(outer, queue_module._DESC, inner, 16, DESC_F_INDIRECT, 0)
    mq.write_desc(0, outer, 16, DESC_F_INDIRECT)
    mq.publish(0)
    with pytest.raises(VirtqueueError, match="inside an indirect"):
        vq.pop()


def test_indirect_needs_the_feature(rings):
    vq, mq = rings
    vq.indirect = False
    mq.add_indirect_chain(DATA + 0x800, [(DATA, 4, False)])
    with pytest.raises(VirtqueueError, match="INDIRECT_DESC"):
        vq.pop()


@pytest.mark.parametrize("length", [0, 8, 17, 16 * (SIZE + 1)])
def test_indirect_table_length_must_be_whole_descriptors_within_queue_size(rings, length):
    vq, mq = rings
    mq.write_desc(0, DATA, length, DESC_F_INDIRECT)
    mq.publish(0)
    with pytest.raises(VirtqueueError):
        vq.pop()


def test_indirect_with_next_is_refused(rings):
    vq, mq = rings
    mq.write_desc(0, DATA, 16, DESC_F_INDIRECT | DESC_F_NEXT, 1)
    mq.publish(0)
    with pytest.raises(VirtqueueError):
        vq.pop()


def test_indirect_table_outside_ram(rings, memory):
    vq, mq = rings
    mq.write_desc(0, HOLE, 32, DESC_F_INDIRECT)
    mq.publish(0)
    with pytest.raises(VirtqueueError, match="outside guest RAM"):
        vq.pop()
    assert memory.refused == []


def test_loop_inside_an_indirect_table(rings, memory):
    vq, mq = rings
    table = DATA + 0x800
    memory.write_struct(table, queue_module._DESC, DATA, 4, DESC_F_NEXT, 1)
    memory.write_struct(table + 16, queue_module._DESC, DATA, 4, DESC_F_NEXT, 0)
    mq.write_desc(0, table, 32, DESC_F_INDIRECT)
    mq.publish(0)
    with pytest.raises(VirtqueueError, match="loops"):
        vq.pop()


def test_total_bytes_bound(rings, monkeypatch):
    vq, mq = rings
    monkeypatch.setattr(queue_module, "MAX_CHAIN_BYTES", 1000)
    mq.add_chain([(DATA, 600, False), (DATA, 600, False)])
    with pytest.raises(VirtqueueError, match="more than 1000"):
        vq.pop()


def test_avail_idx_may_advance_by_the_queue_size_but_no_more(rings):
    vq, mq = rings
    for _ in range(SIZE):
        mq.add_chain([(DATA, 1, True)])
    assert sum(1 for _ in iter(vq.pop, None)) == SIZE
    mq.set_avail_idx(mq.avail_idx + SIZE + 1)
    with pytest.raises(VirtqueueError, match="jumped"):
        vq.pop()


def test_indices_wrap_at_16_bits(rings):
    vq, mq = rings
    vq.next_avail = vq.next_used = vq.signalled_used = 0xFFFF
    mq.set_avail_idx(0xFFFF)
    mq.memory.write_int(USED + 2, 2, 0xFFFF)
    mq.last_used = 0xFFFF
    heads = [mq.add_chain([(DATA, 1, True)]) for _ in range(2)]
    for _ in heads:
        chain = vq.pop()
        vq.add_used(chain.head, 1)
    assert mq.used_idx == 1
    assert mq.take_used() == [(heads[0], 1), (heads[1], 1)]


def test_used_element_is_written_before_the_index(rings, memory):
    vq, mq = rings
    order = []
    write, view = memory.write, memory.view

    def spy_write(gpa, data):
        order.append(gpa)
        write(gpa, data)

    def spy_view(gpa, length):
        order.append(gpa)
        return view(gpa, length)

    memory.write, memory.view = spy_write, spy_view
    vq.add_used(3, 42)
    assert order == [USED + 4, USED + 2]
    assert mq.take_used() == [(3, 42)]


@pytest.mark.parametrize(
    "size, desc, avail, used",
    [
        (0, DESC, AVAIL, USED),
        (6, DESC, AVAIL, USED),  # not a power of two
        (32, DESC, AVAIL, USED),  # above QueueNumMax (16)
        (8, DESC + 8, AVAIL, USED),  # descriptor table misaligned
        (8, DESC, AVAIL + 1, USED),
        (8, DESC, AVAIL, USED + 2),
        (8, HOLE, AVAIL, USED),
        (8, DESC, 0xFFF8, USED),  # runs off the first region
    ],
)
def test_validate_refuses_bad_configurations(memory, size, desc, avail, used):
    vq = Virtqueue(memory, max_size=16)
    vq.size, vq.desc_addr, vq.avail_addr, vq.used_addr = size, desc, avail, used
    with pytest.raises(VirtqueueError):
        vq.validate()


def test_no_interrupt_flag_suppresses_notification_without_event_idx(rings):
    vq, mq = rings
    assert not vq.should_notify()  # nothing used yet
    mq.add_chain([(DATA, 1, True)])
    vq.add_used(vq.pop().head, 1)
    mq.set_avail_flags(1)
    assert not vq.should_notify()
    mq.set_avail_flags(0)
    mq.add_chain([(DATA, 1, True)])
    vq.add_used(vq.pop().head, 1)
    assert vq.should_notify()


def test_event_idx_used_event_and_avail_event(rings):
    vq, mq = rings
    vq.event_idx = True
    assert vq.pop() is None
    assert mq.avail_event == 0  # published when the queue ran dry
    for _ in range(3):
        mq.add_chain([(DATA, 1, True)])
    mq.set_used_event(2)  # "interrupt me when the used idx passes 2"
    for expected in (False, False, True):
        vq.add_used(vq.pop().head, 1)
        assert vq.should_notify() is expected
    assert vq.pop() is None
    assert mq.avail_event == 3
