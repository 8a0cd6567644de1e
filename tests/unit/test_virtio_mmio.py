"""The virtio-mmio v2 transport: registers, negotiation, reset, failure handling."""

import pytest

from kvmpy.layout import VIRTIO_MMIO_BASE, virtio_irqs
from kvmpy.virtio import constants as c
from kvmpy.virtio.queue import _DESC
from kvmpy.virtio.console import ConsoleDevice
from kvmpy.virtio.mmio import virtio_mmio_cmdline
from kvmpy.virtio.rng import RngDevice
from kvmpy.virtio.testing import FeaturesRefused, MockGuest

pytestmark = pytest.mark.virtio


@pytest.fixture
def guest():
    g = MockGuest(RngDevice(source=lambda n: b"\xaa" * n))
    yield g
    g.close()


def test_identification_registers(guest):
    drv = guest.driver
    assert drv.read_reg(c.MAGIC_VALUE) == 0x74726976
    assert drv.read_reg(c.VERSION) == 2
    assert drv.read_reg(c.DEVICE_ID) == c.ID_RNG
    assert drv.read_reg(c.VENDOR_ID) == c.VENDOR_ID_KVMPY


def test_device_features_in_two_halves(guest):
    features = guest.driver.device_features()
    for feature in (c.F_VERSION_1, c.F_RING_INDIRECT_DESC, c.F_RING_EVENT_IDX):
        assert features >> feature & 1
    guest.driver.write_reg(c.DEVICE_FEATURES_SEL, 2)
    assert guest.driver.read_reg(c.DEVICE_FEATURES) == 0


def test_full_initialisation_and_one_request(guest):
    (queue,) = guest.driver.init()
    assert guest.driver.status == 0xF
    buf = guest.buffer(8)
    queue.add_chain([(buf, 8, True)])
    guest.driver.kick(0)
    assert queue.take_used() == [(0, 8)]
    assert guest.memory.read(buf, 8) == b"\xaa" * 8
    assert guest.irq.pulses == 1
    assert guest.driver.ack_interrupt() == c.INTERRUPT_USED_BUFFER
    assert guest.driver.read_reg(c.INTERRUPT_STATUS) == 0


def test_features_not_offered_are_refused(guest):
    guest.driver.reset()
    with pytest.raises(FeaturesRefused):
        guest.driver.negotiate(guest.driver.device_features() | 1 << 40)


def test_legacy_driver_without_version_1_is_refused(guest):
    guest.driver.reset()
    with pytest.raises(FeaturesRefused):
        guest.driver.negotiate(0)


def test_driver_features_frozen_after_features_ok(guest):
    guest.driver.reset()
    guest.driver.negotiate(1 << c.F_VERSION_1)
    guest.driver.write_reg(c.DRIVER_FEATURES_SEL, 0)
    guest.driver.write_reg(c.DRIVER_FEATURES, 1 << c.F_RING_EVENT_IDX)
    assert guest.transport.driver_features == 1 << c.F_VERSION_1


def test_driver_ok_without_features_ok_is_refused(guest):
    guest.driver.reset()
    guest.driver.set_status_bits(c.STATUS_ACKNOWLEDGE | c.STATUS_DRIVER)
    guest.driver.setup_queue(0)
    guest.driver.driver_ok()
    assert not guest.driver.status & c.STATUS_DRIVER_OK
    guest.driver.queues[0].add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    assert guest.driver.queues[0].used_idx == 0


def test_writing_zero_to_status_resets(guest):
    (queue,) = guest.driver.init()
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    guest.driver.write_reg(c.STATUS, 0)
    assert guest.driver.status == 0
    assert guest.driver.read_reg(c.INTERRUPT_STATUS) == 0
    guest.driver.write_reg(c.QUEUE_SEL, 0)
    assert guest.driver.read_reg(c.QUEUE_READY) == 0
    assert guest.transport.driver_features == 0
    (queue,) = guest.driver.init()  # and it works again from scratch
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    assert queue.take_used() == [(0, 4)]


def test_notify_before_driver_ok_is_ignored(guest):
    guest.driver.reset()
    guest.driver.negotiate()
    queue = guest.driver.setup_queue(0)
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    guest.driver.kick(7)  # no such queue
    assert queue.used_idx == 0 and guest.irq.pulses == 0
    guest.driver.driver_ok()
    guest.driver.kick(0)
    assert queue.used_idx == 1


@pytest.mark.parametrize("size", [0, 3, 100, 512])
def test_bad_queue_size_sets_needs_reset(guest, size):
    guest.driver.reset()
    guest.driver.negotiate()
    guest.driver.setup_queue(0, size=size)
    assert guest.driver.status & c.STATUS_DEVICE_NEEDS_RESET
    guest.driver.write_reg(c.QUEUE_SEL, 0)
    assert guest.driver.read_reg(c.QUEUE_READY) == 0
    guest.driver.driver_ok()
    assert not guest.transport.active


def test_rings_outside_ram_set_needs_reset(guest):
    guest.driver.reset()
    guest.driver.negotiate()
    guest.driver.setup_queue(0, desc=0x10000)  # the hole between the RAM regions
    assert guest.transport.needs_reset
    assert guest.memory.refused == []


def test_bad_chain_sets_needs_reset_with_config_interrupt_and_stops_the_device(guest):
    (queue,) = guest.driver.init()
    queue.add_chain([(0x10000, 16, True)])  # in the RAM hole
    guest.driver.kick(0)
    assert guest.driver.status & c.STATUS_DEVICE_NEEDS_RESET
    assert guest.driver.read_reg(c.INTERRUPT_STATUS) & c.INTERRUPT_CONFIG_CHANGE
    assert guest.irq.pulses == 1
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    assert queue.used_idx == 0  # stopped until reset
    guest.driver.set_status_bits(c.STATUS_DRIVER_OK)  # rewriting status keeps the bit
    assert guest.transport.needs_reset
    (queue,) = guest.driver.init()
    assert not guest.driver.status & c.STATUS_DEVICE_NEEDS_RESET
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    assert queue.used_idx == 1


def test_a_crashing_device_model_never_raises_out_of_the_transport():
    class Broken(RngDevice):
        def process(self, queue_index):
            raise RuntimeError("model bug")

    guest = MockGuest(Broken())
    (queue,) = guest.driver.init()
    queue.add_chain([(guest.buffer(4), 4, True)])
    guest.driver.kick(0)
    assert guest.transport.needs_reset
    guest.close()


def test_wrong_sizes_and_unknown_offsets_are_ignored(guest):
    t = guest.transport
    assert t.read(c.MAGIC_VALUE, 2) == 0
    assert t.read(c.MAGIC_VALUE + 1, 4) == 0
    assert t.read(0x0C8, 4) == 0  # unknown register
    assert t.read(c.QUEUE_DESC_LOW, 4) == 0  # write-only register
    t.write(c.STATUS, 1, c.STATUS_ACKNOWLEDGE)
    t.write(0x0C8, 4, 0x1234)
    t.write(c.CONFIG_SPACE, 8, 0)
    assert t.read(c.CONFIG_SPACE, 8) == 0
    assert t.read(c.STATUS, 4) == 0
    assert t.read(0xFFF, 1) == 0  # beyond the (empty) rng config space


def test_queue_registers_of_missing_queues_and_live_queues(guest):
    drv = guest.driver
    drv.write_reg(c.QUEUE_SEL, 5)
    assert drv.read_reg(c.QUEUE_NUM_MAX) == 0
    drv.write_reg(c.QUEUE_READY, 1)
    assert drv.read_reg(c.QUEUE_READY) == 0
    (queue,) = drv.init()
    drv.write_reg(c.QUEUE_SEL, 0)
    assert drv.read_reg(c.QUEUE_NUM_MAX) == 256
    drv.write_reg(c.QUEUE_DESC_LOW, 0x10000)  # ignored: the queue is live
    assert guest.transport.queues[0].desc_addr == queue.desc_addr


def test_config_space_accesses_and_generation():
    guest = MockGuest(ConsoleDevice(sink=lambda data: None, size=(80, 25)))
    drv = guest.driver
    drv.init()
    assert drv.read_config(0, 2) == 80 and drv.read_config(2, 2) == 25
    assert drv.read_config(0, 4) == 80 | 25 << 16
    assert drv.read_config(1, 1) == 0
    generation = drv.read_reg(c.CONFIG_GENERATION)
    guest.device.resize(132, 50)
    assert drv.read_reg(c.CONFIG_GENERATION) == generation + 1
    assert drv.ack_interrupt() == c.INTERRUPT_CONFIG_CHANGE
    assert drv.read_config(0, 4) == 132 | 50 << 16
    guest.close()


def test_event_idx_suppresses_interrupts_through_the_transport(guest):
    (queue,) = guest.driver.init()
    queue.set_used_event(5)
    for _ in range(3):
        queue.add_chain([(guest.buffer(1), 1, True)])
        guest.driver.kick(0)
    assert queue.used_idx == 3 and guest.irq.pulses == 0
    for _ in range(3):
        queue.add_chain([(guest.buffer(1), 1, True)])
        guest.driver.kick(0)
    assert guest.irq.pulses == 1  # used idx went past 5


def test_cmdline_fragment():
    assert virtio_mmio_cmdline(VIRTIO_MMIO_BASE, virtio_irqs()[0]) == "virtio_mmio.device=4K@0xd0000000:5"
    assert virtio_mmio_cmdline(0xD0001000, 6, size=0x200) == "virtio_mmio.device=512@0xd0001000:6"


@pytest.mark.parametrize(
    "hostile",
    ["outside_ram", "huge_length", "loop", "indirect_in_indirect", "avail_jump", "head_out_of_range"],
)
def test_hostile_rings_end_in_needs_reset_never_an_exception(guest, hostile):
    (queue,) = guest.driver.init()
    buf = guest.buffer(64)
    if hostile == "outside_ram":
        queue.add_chain([(buf, 8, True), (0x30000 - 4, 8, True)])
    elif hostile == "huge_length":
        queue.add_chain([(buf, 0xFFFF_FFFF, True)])
    elif hostile == "loop":
        queue.write_desc(0, buf, 8, c.DESC_F_WRITE | c.DESC_F_NEXT, 1)
        queue.write_desc(1, buf, 8, c.DESC_F_WRITE | c.DESC_F_NEXT, 0)
        queue.publish(0)
    elif hostile == "indirect_in_indirect":
        guest.memory.write_struct(buf, _DESC, buf + 32, 16, c.DESC_F_INDIRECT, 0)
        queue.write_desc(0, buf, 16, c.DESC_F_INDIRECT)
        queue.publish(0)
    elif hostile == "avail_jump":
        queue.add_chain([(buf, 8, True)])
        queue.set_avail_idx(0x8000)
    else:
        queue.publish(queue.size)
    guest.driver.kick(0)
    assert guest.transport.needs_reset
    assert guest.driver.read_reg(c.INTERRUPT_STATUS) == c.INTERRUPT_CONFIG_CHANGE
    assert queue.used_idx == 0
    assert guest.memory.refused == []
