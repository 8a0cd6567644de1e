"""The gdb stub's packet layer (kvmpy/gdb/packets.py) on made-up byte streams."""

import pytest
from hypothesis import given, strategies as st

from kvmpy.gdb.packets import (
    Acknowledgement,
    BadPacket,
    Interrupt,
    Packet,
    PacketReader,
    checksum,
    escape,
    frame,
    unescape,
)

pytestmark = pytest.mark.gdb


def test_frame_and_checksum_match_the_protocols_example():
    assert checksum(b"OK") == 0x9A
    assert frame(b"OK") == b"$OK#9a"
    assert frame(b"") == b"$#00"


def test_reserved_bytes_are_escaped_in_frames():
    assert escape(b"a$b#c}d*e") == b"a}\x04b}\x03c}]d}\x0ae"
    assert frame(b"}") == b"$}]#" + b"%02x" % checksum(b"}]")


@given(st.binary(max_size=300))
def test_escape_round_trips_and_hides_every_reserved_byte(data):
    escaped = escape(data)
    assert unescape(escaped) == data
    assert b"$" not in escaped and b"#" not in escaped and b"*" not in escaped


@given(st.lists(st.binary(max_size=80), max_size=8), st.integers(1, 17))
def test_the_reader_gets_every_framed_packet_back_in_any_chunking(payloads, chunk):
    stream = b"".join(frame(payload) for payload in payloads)
    reader = PacketReader(4096)
    events = []
    for start in range(0, len(stream), chunk):
        events += reader.feed(stream[start:start + chunk])
    assert events == [Packet(payload) for payload in payloads]


def test_acks_interrupts_and_noise_between_packets():
    reader = PacketReader(100)
    events = reader.feed(b"+-\x03garbage$g#67\n")
    assert events == [Acknowledgement(True), Acknowledgement(False), Interrupt(), Packet(b"g")]


@pytest.mark.parametrize("wire, why", [
    (b"$g#00", "does not match"),
    (b"$g#zz", "not hexadecimal"),
    (b"$" + b"x" * 20 + b"#00", "longer than"),
])
def test_bad_packets_are_reported_and_the_reader_recovers(wire, why):
    reader = PacketReader(16)
    events = reader.feed(wire + b"$?#3f")
    bad = [event for event in events if isinstance(event, BadPacket)]
    assert len(bad) == 1 and why in bad[0].why
    assert events[-1] == Packet(b"?")
