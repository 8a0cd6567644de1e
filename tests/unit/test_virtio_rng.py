"""virtio-rng through the mock driver."""

import pytest

from kvmpy.virtio import rng
from kvmpy.virtio.rng import RngDevice
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.virtio


@pytest.fixture(params=["mmio", pytest.param("pci", marks=pytest.mark.pci)])
def guest(request):
    """The device over each transport: the model must not know which carries it."""
    g = MockGuest(RngDevice(), transport=request.param)
    (g.queue,) = g.driver.init()
    yield g
    g.close()


def test_fills_every_writable_buffer_of_a_chain(guest):
    first, second = guest.buffer(64), guest.buffer(64)
    head = guest.queue.add_chain([(first, 64, True), (second, 64, True)])
    guest.driver.kick(0)
    assert guest.queue.take_used() == [(head, 128)]
    data = guest.memory.read(first, 64) + guest.memory.read(second, 64)
    assert data != bytes(128) and len(set(data)) > 16
    assert guest.irq.pulses == 1


def test_several_requests_in_one_kick_including_indirect(guest):
    heads = [guest.queue.add_chain([(guest.buffer(16), 16, True)]) for _ in range(3)]
    heads.append(guest.queue.add_indirect_chain(guest.buffer(16), [(guest.buffer(32), 32, True)]))
    guest.driver.kick(0)
    assert guest.queue.take_used() == [(h, n) for h, n in zip(heads, (16, 16, 16, 32))]


def test_bytes_per_request_are_bounded():
    asked = []
    guest = MockGuest(RngDevice(source=lambda n: asked.append(n) or bytes(n)))
    (queue,) = guest.driver.init()
    queue.add_chain([(guest.buffer(0x8000), 0x8000, True), (0x20000, 0x10000, True)])  # 96 KiB
    guest.driver.kick(0)
    assert asked == [rng.MAX_BYTES_PER_REQUEST]
    assert queue.take_used() == [(0, rng.MAX_BYTES_PER_REQUEST)]
    guest.close()


def test_device_readable_buffer_sets_needs_reset(guest):
    guest.queue.add_chain([(guest.buffer(16), 16, False)])
    guest.driver.kick(0)
    assert guest.transport.needs_reset
    assert guest.queue.used_idx == 0


def test_zero_length_request_completes_empty(guest):
    guest.queue.add_chain([(guest.buffer(1), 0, True)])
    guest.driver.kick(0)
    assert guest.queue.take_used() == [(0, 0)]
