"""virtio-net on a real TAP device, created with pyroute2 inside a fresh network namespace.

The host side of the TAP lives in its own namespace with address 10.99.0.1/24.  The guest
(the mock driver) transmits an ARP request for that address: the host's packet socket sees
the frame, and the host kernel's ARP reply comes back through the TAP into a receive buffer.
A frame the host writes with a packet socket arrives in a receive buffer too.
"""

import os
import select
import socket
import struct
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pyroute2 import IPRoute, netns

from kvmpy.errors import ConfigError
from kvmpy.virtio import net
from kvmpy.virtio.net import NetDevice
from kvmpy.virtio.netbackend import VNET_HDR_SIZE
from kvmpy.virtio.tap import TapBackend, open_tap
from kvmpy.virtio.testing import MockGuest
from kvmpy.virtio.worker import EventFdIrqLine

pytestmark = pytest.mark.virtio

MAC = bytes.fromhex("020000123456")
HOST_IP, GUEST_IP = "10.99.0.1", "10.99.0.2"
ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_EXPERIMENTAL = 0x88B5
TIMEOUT = 5.0


def arp_request() -> bytes:
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC, socket.inet_aton(GUEST_IP), bytes(6), socket.inet_aton(HOST_IP))
    return (b"\xff" * 6 + MAC + struct.pack("!H", ETH_P_ARP) + arp).ljust(60, b"\0")


@pytest.fixture
def host_namespace():
    """An executor whose one thread lives in a fresh network namespace."""
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("/dev/net/tun is missing")
    name = f"kvmpy-test-{uuid.uuid4().hex[:8]}"
    try:
        netns.create(name)
    except OSError as exc:
        pytest.skip(f"cannot create a network namespace (CAP_SYS_ADMIN/CAP_NET_ADMIN needed): {exc}")
    executor = ThreadPoolExecutor(max_workers=1, initializer=netns.setns, initargs=(name,), thread_name_prefix="netns")
    try:
        yield executor
    finally:
        executor.shutdown()
        netns.remove(name)


def set_up_host_side():
    """In the namespace: a TAP, its address, and a packet socket watching it."""
    tap = TapBackend.create()
    with IPRoute() as ipr:
        (index,) = ipr.link_lookup(ifname=tap.ifname)
        ipr.addr("add", index=index, address=HOST_IP, prefixlen=24)
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniffer.bind((tap.ifname, 0))
    return tap, sniffer


def frames_from_guest(sniffer, limit=64):
    """Frames the host receives on the TAP (that is, frames the guest transmitted)."""
    for _ in range(limit):
        readable, _, _ = select.select([sniffer], [], [], TIMEOUT)
        if not readable:
            return
        frame, (_, _, pkttype, _, _) = sniffer.recvfrom(65536)
        if pkttype != socket.PACKET_OUTGOING:
            yield frame


def received(guest, buffers, irq):
    """Frames in receive buffers as they complete (waiting on the irqfd-style line)."""
    while True:
        for head, length in guest.rx.take_used():
            yield guest.memory.read(buffers[head] + VNET_HDR_SIZE, length - VNET_HDR_SIZE)
        readable, _, _ = select.select([irq.fd], [], [], TIMEOUT)
        if not readable:
            return
        os.eventfd_read(irq.fd)


def test_arp_round_trip_and_host_frame_through_a_real_tap(host_namespace):
    try:
        tap, sniffer = host_namespace.submit(set_up_host_side).result()
    except ConfigError as exc:
        pytest.skip(f"cannot create a TAP device: {exc}")
    irq = EventFdIrqLine()
    guest = MockGuest(NetDevice(tap, mac=MAC, queue_size=16), irq=irq)
    try:
        guest.rx, guest.tx = guest.driver.init()
        buffers = {}
        for _ in range(16):
            addr = guest.buffer(VNET_HDR_SIZE + 1514)
            buffers[guest.rx.add_chain([(addr, VNET_HDR_SIZE + 1514, True)])] = addr
        guest.driver.kick(net.RECEIVE_QUEUE)

        request = arp_request()
        guest.tx.add_chain([(guest.buffer(bytes(VNET_HDR_SIZE)), VNET_HDR_SIZE, False), (guest.buffer(request), len(request), False)])
        guest.driver.kick(net.TRANSMIT_QUEUE)
        assert request in frames_from_guest(sniffer), "the host never saw the guest's ARP request"

        frames = received(guest, buffers, irq)
        reply = next(f for f in frames if f[12:14] == struct.pack("!H", ETH_P_ARP) and f[20:22] == b"\x00\x02")
        assert reply[:6] == MAC
        assert reply[28:32] == socket.inet_aton(HOST_IP)  # sender protocol address

        payload = b"from the host side " + os.urandom(16)
        host_frame = MAC + bytes.fromhex("02aabbccddee") + struct.pack("!H", ETH_P_EXPERIMENTAL) + payload
        sniffer.send(host_frame)
        assert any(f.startswith(host_frame) for f in frames), "the host's frame never reached a receive buffer"
        assert not guest.transport.needs_reset
    finally:
        guest.close()
        sniffer.close()
        irq.close()


def test_attach_to_an_existing_tap_and_bad_specs(host_namespace):
    def attach():
        with IPRoute() as ipr:
            ipr.link("add", ifname="kvmpytap0", kind="tuntap", mode="tap")
        tap = open_tap("tap=kvmpytap0")
        name, created = tap.ifname, tap.created
        tap.close()
        with IPRoute() as ipr:
            still_there = bool(ipr.link_lookup(ifname="kvmpytap0"))
        return name, created, still_there

    assert host_namespace.submit(attach).result() == ("kvmpytap0", False, True)
    for spec in ("tap=does-not-exist", "bridge", "tap="):
        with pytest.raises(ConfigError):
            host_namespace.submit(open_tap, spec).result()


def test_created_tap_disappears_on_close(host_namespace):
    def create_and_close():
        tap = TapBackend.create()
        with IPRoute() as ipr:
            up = ipr.link_lookup(ifname=tap.ifname) and ipr.get_links(ifname=tap.ifname)[0].get_attr("IFLA_OPERSTATE")
            tap.close()
            return tap.ifname, up, ipr.link_lookup(ifname=tap.ifname)

    name, state, after = host_namespace.submit(create_and_close).result()
    assert name.startswith("kvmpy") and state in ("UP", "UNKNOWN") and after == []
