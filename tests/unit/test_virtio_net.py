"""virtio-net with the in-memory backend: transmit, receive (on the device's thread), errors."""

import os
import select

import pytest

from kvmpy.virtio import net
from kvmpy.virtio.net import NetDevice
from kvmpy.virtio.netbackend import VNET_HDR_SIZE, MemoryBackend
from kvmpy.virtio.testing import MockGuest
from kvmpy.virtio.worker import EventFdIrqLine

pytestmark = pytest.mark.virtio
RX, TX = net.RECEIVE_QUEUE, net.TRANSMIT_QUEUE
MAC = bytes.fromhex("020000abcdef")
FRAME = bytes.fromhex("ffffffffffff") + MAC + b"\x08\x06" + bytes(range(46))


def rx_buffer(guest, size=VNET_HDR_SIZE + 1514):
    addr = guest.buffer(size)
    guest.rx.add_chain([(addr, size, True)])
    return addr


def wait_for_interrupt(irq: EventFdIrqLine, timeout: float = 5.0) -> None:
    readable, _, _ = select.select([irq.fd], [], [], timeout)
    assert readable, "no interrupt within the timeout"
    os.eventfd_read(irq.fd)


@pytest.fixture
def guest():
    backend = MemoryBackend()
    irq = EventFdIrqLine()
    g = MockGuest(NetDevice(backend, mac=MAC), irq=irq)
    g.backend = backend
    g.rx, g.tx = g.driver.init()
    yield g
    g.close()
    irq.close()


def test_config_has_the_mac(guest):
    assert bytes(guest.driver.read_config(i, 1) for i in range(6)) == MAC
    assert guest.driver.device_features() >> net.F_MAC & 1


def test_transmit_gathers_the_chain_and_cleans_the_header(guest):
    header = bytes([1, 4]) + bytes(10)  # NEEDS_CSUM and GSO_TCPV4: never negotiated
    guest.tx.add_chain(
        [(guest.buffer(header), VNET_HDR_SIZE, False), (guest.buffer(FRAME[:20]), 20, False), (guest.buffer(FRAME[20:]), len(FRAME) - 20, False)]
    )
    guest.driver.kick(TX)
    assert guest.backend.sent == [bytes(VNET_HDR_SIZE) + FRAME]
    assert guest.tx.take_used() == [(0, 0)]
    wait_for_interrupt(guest.irq)


def test_receive_on_the_device_thread(guest):
    addr = rx_buffer(guest)
    guest.driver.kick(RX)
    guest.backend.inject(bytes([2]) + bytes(11) + FRAME)  # host says DATA_VALID; not negotiated
    wait_for_interrupt(guest.irq)
    assert guest.rx.take_used() == [(0, VNET_HDR_SIZE + len(FRAME))]
    header = guest.memory.read(addr, VNET_HDR_SIZE)
    assert header == bytes(10) + b"\x01\x00"  # clean, num_buffers = 1
    assert guest.memory.read(addr + VNET_HDR_SIZE, len(FRAME)) == FRAME


def test_packets_wait_for_buffers_instead_of_being_dropped(guest):
    for i in range(3):
        guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME + bytes([i]))
    addrs = [rx_buffer(guest) for _ in range(2)]
    guest.driver.kick(RX)  # delivers two, keeps the third
    assert [length for _, length in guest.rx.take_used()] == [VNET_HDR_SIZE + len(FRAME) + 1] * 2
    assert guest.backend.pending + (guest.device._pending is not None) == 1
    last = rx_buffer(guest)
    guest.driver.kick(RX)
    assert len(guest.rx.take_used()) == 1
    tails = [guest.memory.read(a + VNET_HDR_SIZE + len(FRAME), 1) for a in (*addrs, last)]
    assert tails == [b"\0", b"\1", b"\2"]
    assert guest.device.rx_dropped == 0


def test_receive_resumes_after_buffers_ran_out(guest):
    rx_buffer(guest)
    guest.driver.kick(RX)
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)
    wait_for_interrupt(guest.irq)
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)  # no buffer: held, the thread stops polling
    rx_buffer(guest)
    guest.driver.kick(RX)  # delivered by the kick itself, whoever picked it up first
    assert len(guest.rx.take_used()) == 2  # and asks for an interrupt at the next one
    rx_buffer(guest)
    guest.driver.kick(RX)
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)  # the thread polls the backend again
    while guest.rx.used_idx != 3:
        wait_for_interrupt(guest.irq)


def test_packet_larger_than_the_buffer_is_dropped(guest):
    rx_buffer(guest, size=32)
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)
    guest.driver.kick(RX)
    assert guest.rx.take_used() == [(0, 0)]
    assert guest.device.rx_dropped == 1
    assert not guest.transport.needs_reset


def test_backend_refusal_drops_the_frame_only():
    class Refusing(MemoryBackend):
        def send(self, parts):
            raise OSError("link down")

    g = MockGuest(NetDevice(Refusing()))
    _, tx = g.driver.init()
    tx.add_chain([(g.buffer(VNET_HDR_SIZE + 60), VNET_HDR_SIZE + 60, False)])
    g.driver.kick(TX)
    assert tx.take_used() == [(0, 0)] and g.device.tx_dropped == 1
    assert not g.transport.needs_reset
    g.close()


@pytest.mark.parametrize(
    "queue, chain",
    [
        (TX, [(0x7000, VNET_HDR_SIZE + 60, True)]),  # device-writable transmit buffer
        (TX, [(0x7000, VNET_HDR_SIZE - 1, False)]),  # shorter than the header
        (RX, [(0x7000, 64, False)]),  # device-readable receive buffer
    ],
)
def test_malformed_chains_set_needs_reset(guest, queue, chain):
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)
    (guest.tx if queue == TX else guest.rx).add_chain(chain)
    guest.driver.kick(queue)
    assert guest.transport.needs_reset
    assert guest.backend.sent == []


def test_reset_and_reinitialise_keeps_receiving(guest):
    guest.driver.reset()
    guest.rx, guest.tx = guest.driver.init()
    addr = rx_buffer(guest)
    guest.driver.kick(RX)
    guest.backend.inject(bytes(VNET_HDR_SIZE) + FRAME)
    wait_for_interrupt(guest.irq)
    assert guest.memory.read(addr + VNET_HDR_SIZE, len(FRAME)) == FRAME


def test_random_mac_is_unicast_and_locally_administered():
    mac = net.random_mac()
    assert len(mac) == 6 and mac[0] & 1 == 0 and mac[0] & 2
