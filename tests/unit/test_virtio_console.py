"""virtio-console through the mock driver: output to a sink, input into receive buffers."""

import pytest

from kvmpy.virtio import console
from kvmpy.virtio.console import ConsoleDevice
from kvmpy.virtio.constants import INTERRUPT_USED_BUFFER
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.virtio
RX, TX = console.RECEIVE_QUEUE, console.TRANSMIT_QUEUE


@pytest.fixture
def guest():
    output = []
    g = MockGuest(ConsoleDevice(sink=output.append))
    g.output = output
    g.rx, g.tx = g.driver.init()
    yield g
    g.close()


def test_output_goes_to_the_sink(guest):
    guest.tx.add_chain([(guest.buffer(b"hello, "), 7, False), (guest.buffer(b"world\n"), 6, False)])
    guest.tx.add_chain([(guest.buffer(b"again"), 5, False)])
    guest.driver.kick(TX)
    assert guest.output == [b"hello, world\n", b"again"]
    assert guest.tx.take_used() == [(0, 0), (2, 0)]
    assert guest.driver.ack_interrupt() == INTERRUPT_USED_BUFFER


def test_input_waits_for_receive_buffers(guest):
    guest.device.enqueue_input(b"typed before buffers")
    assert guest.rx.used_idx == 0
    first, second = guest.buffer(8), guest.buffer(64)
    guest.rx.add_chain([(first, 8, True)])
    guest.rx.add_chain([(second, 64, True)])
    guest.driver.kick(RX)
    assert guest.rx.take_used() == [(0, 8), (1, 12)]
    assert guest.memory.read(first, 8) + guest.memory.read(second, 12) == b"typed before buffers"


def test_input_is_delivered_at_once_when_buffers_are_there(guest):
    buf = guest.buffer(32)
    guest.rx.add_chain([(buf, 32, True)])
    guest.driver.kick(RX)  # nothing to deliver yet
    assert guest.rx.used_idx == 0 and guest.irq.pulses == 0
    guest.device.enqueue_input(b"ls\n")
    assert guest.rx.take_used() == [(0, 3)]
    assert guest.memory.read(buf, 3) == b"ls\n"
    assert guest.irq.pulses == 1


def test_input_before_activation_is_kept():
    g = MockGuest(ConsoleDevice(sink=lambda data: None))
    g.device.enqueue_input(b"early")
    rx, _ = g.driver.init()
    buf = g.buffer(16)
    rx.add_chain([(buf, 16, True)])
    g.driver.kick(RX)
    assert rx.take_used() == [(0, 5)] and g.memory.read(buf, 5) == b"early"
    g.close()


def test_emergency_write_goes_to_the_sink(guest):
    guest.driver.write_config(8, 4, ord("!"))
    assert guest.output == [b"!"]


def test_size_feature_only_with_a_size():
    assert not MockGuest(ConsoleDevice(sink=print)).driver.device_features() >> console.F_SIZE & 1
    g = MockGuest(ConsoleDevice(sink=print, size=(100, 40)))
    assert g.driver.device_features() >> console.F_SIZE & 1
    assert (g.driver.read_config(0, 2), g.driver.read_config(2, 2)) == (100, 40)


@pytest.mark.parametrize("queue, writable", [(TX, True), (RX, False)])
def test_wrong_direction_sets_needs_reset(guest, queue, writable):
    guest.device.enqueue_input(b"x")
    ring = guest.tx if queue == TX else guest.rx
    ring.add_chain([(guest.buffer(4), 4, writable)])
    guest.driver.kick(queue)
    assert guest.transport.needs_reset
    assert guest.output == []
