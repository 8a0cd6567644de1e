"""The 9P2000.L wire format on its own: every message round-trips, malformed ones are refused."""

import random

import pytest

from kvmpy.virtio import p9_protocol as proto
from kvmpy.virtio.p9_protocol import ProtocolError, Qid

pytestmark = pytest.mark.virtio


def sample(letter: str, rng: random.Random):
    if letter in "bwdq":
        return rng.getrandbits({"b": 8, "w": 16, "d": 32, "q": 64}[letter])
    if letter == "s":
        return rng.randbytes(rng.randrange(0, 40))
    if letter == "Q":
        return Qid(rng.getrandbits(8), rng.getrandbits(32), rng.getrandbits(64))
    if letter == "S":
        return [sample("s", rng) for _ in range(rng.randrange(0, 17))]
    if letter == "R":
        return [sample("Q", rng) for _ in range(rng.randrange(0, 17))]
    if letter == "D":
        return rng.randbytes(rng.randrange(0, 300))
    raise AssertionError(letter)


@pytest.mark.parametrize("number", sorted(proto.MESSAGES), ids=lambda n: proto.MESSAGES[n][0])
def test_every_message_round_trips(number):
    rng = random.Random(number)
    for _ in range(20):
        fields = [sample(letter, rng) for letter in proto.MESSAGES[number][1]]
        tag = rng.getrandbits(16)
        message = proto.pack(number, tag, *fields)
        assert proto.unpack_header(message) == (len(message), number, tag)
        assert proto.unpack(message) == (number, tag, fields)


def test_known_encodings_match_the_specification():
    # Tversion msize=8192 "9P2000.L", tag NOTAG, byte for byte
    assert proto.pack("Tversion", proto.NOTAG, 8192, b"9P2000.L") == (
        b"\x15\x00\x00\x00\x64\xff\xff\x00\x20\x00\x00\x08\x009P2000.L")
    assert proto.lerror(3, 2) == b"\x0b\x00\x00\x00\x07\x03\x00\x02\x00\x00\x00"
    # Rwalk with one qid: size 4+1+2 + 2 + 13
    reply = proto.pack("Rwalk", 1, [Qid(proto.QTDIR, 0, 0x1122)])
    assert len(reply) == 22 and reply[7:9] == b"\x01\x00" and reply[9] == proto.QTDIR


def test_dirents_round_trip():
    entries = [(Qid(0, 1, 2), 1, 8, b"file"), (Qid(proto.QTDIR, 0, 9), 2, 4, b"dir \xff name")]
    data = b"".join(proto.dirent(*entry) for entry in entries)
    assert proto.parse_dirents(data) == entries


@pytest.mark.parametrize("cut", range(proto.HEADER_SIZE, 30))
def test_truncated_messages_are_refused(cut):
    message = proto.pack("Twalk", 5, 1, 2, [b"alpha", b"beta"])
    assert len(message) == 30
    truncated = bytearray(message[:cut])
    truncated[0:4] = len(truncated).to_bytes(4, "little")  # a consistent size field, missing fields
    with pytest.raises(ProtocolError):
        proto.unpack(bytes(truncated))


def test_header_shorter_than_seven_bytes():
    with pytest.raises(ProtocolError):
        proto.unpack_header(b"\x07\x00\x00\x00\x64")


def test_size_field_must_match():
    message = proto.pack("Tclunk", 1, 7)
    with pytest.raises(ProtocolError):
        proto.unpack(message + b"\0")
    with pytest.raises(ProtocolError):
        proto.unpack(message[:-1])


def test_unknown_type():
    with pytest.raises(ProtocolError, match="unknown message type"):
        proto.unpack(proto.HEADER.pack(7, 250, 1))


def test_huge_counts_are_refused_before_allocating():
    # Twalk claiming 65535 names in 2 bytes; Twrite claiming 4 GiB of data
    walk = proto.HEADER.pack(17, proto.NUMBERS["Twalk"], 1) + (1).to_bytes(4, "little") * 2 + b"\xff\xff"
    with pytest.raises(ProtocolError, match="cannot fit"):
        proto.unpack(walk)
    write = proto.HEADER.pack(23, proto.NUMBERS["Twrite"], 1) + bytes(12) + b"\xff\xff\xff\xff"
    with pytest.raises(ProtocolError, match="past the message end"):
        proto.unpack(write)


def test_trailing_bytes_inside_size_are_ignored():
    message = bytearray(proto.pack("Tclunk", 1, 7) + b"extra")
    message[0:4] = len(message).to_bytes(4, "little")
    assert proto.unpack(bytes(message)) == (proto.NUMBERS["Tclunk"], 1, [7])


def test_pack_checks_field_count_and_string_length():
    with pytest.raises(TypeError):
        proto.pack("Tclunk", 1)
    with pytest.raises(ProtocolError):
        proto.pack("Rreadlink", 1, b"x" * 70000)
