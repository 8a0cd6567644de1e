"""The 9P2000.L wire format: message numbers, field layouts, encoding and decoding.

A message is size[4] type[1] tag[2] then fields, all little-endian. Each message type has a
layout string here, one letter per field:

    b u8    w u16    d u32    q u64
    s string (u16 length, bytes; kept as bytes, never decoded)
    Q qid (type[1] version[4] path[8], as a `Qid`)
    S strings (u16 count, then that many s)
    R qids (u16 count, then that many Q)
    D data (u32 count, then that many bytes)

`pack` and `unpack` work for both directions (the device decodes T-messages and encodes
R-messages; tests and fuzzers do the opposite), so round trips are exact. Everything decoded
is hostile input: a field running past the end of the message raises `ProtocolError`, and
counts are checked against the bytes actually present before anything is allocated.

Errors travel as Rlerror carrying a Linux errno; this module is only used on Linux hosts,
where Python's `errno` values are the Linux ones the client expects.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

VERSION_9P2000_L = b"9P2000.L"
NOTAG = 0xFFFF
NOFID = 0xFFFF_FFFF
HEADER = struct.Struct("<IBH")  # size, type, tag
HEADER_SIZE = HEADER.size
IOHDRSZ = 11  # Rread / Rreaddir header: size type tag count
MAXWELEM = 16  # names per Twalk

# qid types
QTDIR = 0x80
QTSYMLINK = 0x02
QTFILE = 0x00

# Tgetattr / Rgetattr valid bits
GETATTR_BASIC = 0x0000_07FF  # mode .. blocks: what Linux asks for

# Tsetattr valid bits
SETATTR_MODE = 0x001
SETATTR_UID = 0x002
SETATTR_GID = 0x004
SETATTR_SIZE = 0x008
SETATTR_ATIME = 0x010
SETATTR_MTIME = 0x020
SETATTR_CTIME = 0x040
SETATTR_ATIME_SET = 0x080
SETATTR_MTIME_SET = 0x100

# Tunlinkat flags, Tlock / Tgetlock values
AT_REMOVEDIR = 0x200
LOCK_SUCCESS = 0
LOCK_TYPE_UNLCK = 2

V9FS_MAGIC = 0x01021997  # Rstatfs type


class Qid(NamedTuple):
    type: int
    version: int
    path: int


class ProtocolError(ValueError):
    """A message that does not decode: too short, a count past its end, an unknown type."""


# type number: (name, layout). T-messages are even, their R-message is type + 1.
MESSAGES: dict[int, tuple[str, str]] = {
    7: ("Rlerror", "d"),
    8: ("Tstatfs", "d"),
    9: ("Rstatfs", "ddqqqqqqd"),
    12: ("Tlopen", "dd"),
    13: ("Rlopen", "Qd"),
    14: ("Tlcreate", "dsddd"),
    15: ("Rlcreate", "Qd"),
    16: ("Tsymlink", "dssd"),
    17: ("Rsymlink", "Q"),
    18: ("Tmknod", "dsdddd"),
    19: ("Rmknod", "Q"),
    20: ("Trename", "dds"),
    21: ("Rrename", ""),
    22: ("Treadlink", "d"),
    23: ("Rreadlink", "s"),
    24: ("Tgetattr", "dq"),
    25: ("Rgetattr", "qQdddqqqqqqqqqqqqqqq"),
    26: ("Tsetattr", "dddddqqqqq"),
    27: ("Rsetattr", ""),
    30: ("Txattrwalk", "dds"),
    31: ("Rxattrwalk", "q"),
    32: ("Txattrcreate", "dsqd"),
    33: ("Rxattrcreate", ""),
    40: ("Treaddir", "dqd"),
    41: ("Rreaddir", "D"),
    50: ("Tfsync", "dd"),
    51: ("Rfsync", ""),
    52: ("Tlock", "dbdqqds"),
    53: ("Rlock", "b"),
    54: ("Tgetlock", "dbqqds"),
    55: ("Rgetlock", "bqqds"),
    70: ("Tlink", "dds"),
    71: ("Rlink", ""),
    72: ("Tmkdir", "dsdd"),
    73: ("Rmkdir", "Q"),
    74: ("Trenameat", "dsds"),
    75: ("Rrenameat", ""),
    76: ("Tunlinkat", "dsd"),
    77: ("Runlinkat", ""),
    100: ("Tversion", "ds"),
    101: ("Rversion", "ds"),
    102: ("Tauth", "dssd"),
    103: ("Rauth", "Q"),
    104: ("Tattach", "ddssd"),
    105: ("Rattach", "Q"),
    108: ("Tflush", "w"),
    109: ("Rflush", ""),
    110: ("Twalk", "ddS"),
    111: ("Rwalk", "R"),
    116: ("Tread", "dqd"),
    117: ("Rread", "D"),
    118: ("Twrite", "dqD"),
    119: ("Rwrite", "d"),
    120: ("Tclunk", "d"),
    121: ("Rclunk", ""),
    122: ("Tremove", "d"),
    123: ("Rremove", ""),
}
NUMBERS = {name: number for number, (name, _) in MESSAGES.items()}
RLERROR = NUMBERS["Rlerror"]

_INTS = {"b": struct.Struct("<B"), "w": struct.Struct("<H"), "d": struct.Struct("<I"), "q": struct.Struct("<Q")}
_QID = struct.Struct("<BIQ")
_U16 = _INTS["w"]
_U32 = _INTS["d"]


# --- Decoding ------------------------------------------------------------------------------

class _Reader:
    def __init__(self, data: bytes | memoryview, pos: int = 0):
        self.data = data
        self.pos = pos

    def take(self, count: int) -> bytes:
        end = self.pos + count
        if count < 0 or end > len(self.data):
            raise ProtocolError(f"field of {count} bytes at {self.pos} runs past the message end ({len(self.data)})")
        chunk = bytes(self.data[self.pos : end])
        self.pos = end
        return chunk

    def unpack(self, fmt: struct.Struct) -> int:
        return fmt.unpack(self.take(fmt.size))[0]

    def string(self) -> bytes:
        return self.take(self.unpack(_U16))

    def qid(self) -> Qid:
        return Qid(*_QID.unpack(self.take(_QID.size)))

    def counted(self, item, item_min: int) -> list:
        count = self.unpack(_U16)
        if count * item_min > len(self.data) - self.pos:
            raise ProtocolError(f"{count} items cannot fit in the {len(self.data) - self.pos} bytes left")
        return [item() for _ in range(count)]

    def field(self, letter: str) -> Any:
        if letter in _INTS:
            return self.unpack(_INTS[letter])
        if letter == "s":
            return self.string()
        if letter == "Q":
            return self.qid()
        if letter == "S":
            return self.counted(self.string, _U16.size)
        if letter == "R":
            return self.counted(self.qid, _QID.size)
        if letter == "D":
            return self.take(self.unpack(_U32))
        raise AssertionError(f"unknown layout letter {letter!r}")


def unpack_header(data: bytes | memoryview) -> tuple[int, int, int]:
    """(size, type, tag) of a message; raises `ProtocolError` below 7 bytes."""
    if len(data) < HEADER_SIZE:
        raise ProtocolError(f"a message of {len(data)} bytes has no header")
    return HEADER.unpack(bytes(data[:HEADER_SIZE]))


def unpack(data: bytes | memoryview) -> tuple[int, int, list]:
    """(type, tag, fields) of one whole message.

    The size field must match the bytes given; bytes after the last field (inside size)
    are ignored, as the fields of a newer protocol revision would be.
    """
    size, mtype, tag = unpack_header(data)
    if size != len(data):
        raise ProtocolError(f"size field {size} but {len(data)} bytes")
    if mtype not in MESSAGES:
        raise ProtocolError(f"unknown message type {mtype}")
    reader = _Reader(data, HEADER_SIZE)
    return mtype, tag, [reader.field(letter) for letter in MESSAGES[mtype][1]]


# --- Encoding ------------------------------------------------------------------------------

def _encode(letter: str, value: Any, out: list) -> None:
    if letter in _INTS:
        out.append(_INTS[letter].pack(value))
    elif letter == "s":
        if len(value) > 0xFFFF:
            raise ProtocolError("string longer than 65535 bytes")
        out += [_U16.pack(len(value)), bytes(value)]
    elif letter == "Q":
        out.append(_QID.pack(*value))
    elif letter == "S":
        out.append(_U16.pack(len(value)))
        for item in value:
            _encode("s", item, out)
    elif letter == "R":
        out.append(_U16.pack(len(value)))
        out += [_QID.pack(*qid) for qid in value]
    elif letter == "D":
        out += [_U32.pack(len(value)), value]
    else:
        raise AssertionError(f"unknown layout letter {letter!r}")


def pack(mtype: int | str, tag: int, *fields: Any) -> bytes:
    """One message of type `mtype` (number or name) with `fields` in its layout's order."""
    number = NUMBERS[mtype] if isinstance(mtype, str) else mtype
    layout = MESSAGES[number][1]
    if len(fields) != len(layout):
        raise TypeError(f"{MESSAGES[number][0]} has {len(layout)} fields, {len(fields)} given")
    out: list = []
    for letter, value in zip(layout, fields):
        _encode(letter, value, out)
    body = b"".join(out)
    return HEADER.pack(HEADER_SIZE + len(body), number, tag) + body


def lerror(tag: int, errno_value: int) -> bytes:
    return pack(RLERROR, tag, errno_value)


def dirent(qid: Qid, offset: int, dtype: int, name: bytes) -> bytes:
    """One Rreaddir entry: qid[13] offset[8] type[1] name[s]."""
    return _QID.pack(*qid) + struct.pack("<QBH", offset, dtype, len(name)) + name


def parse_dirents(data: bytes) -> list[tuple[Qid, int, int, bytes]]:
    """The entries of an Rreaddir's data (for clients and tests)."""
    reader, entries = _Reader(data), []
    while reader.pos < len(data):
        entries.append((reader.qid(), reader.unpack(_INTS["q"]), reader.unpack(_INTS["b"]), reader.string()))
    return entries


def name_of(mtype: int) -> str:
    return MESSAGES[mtype][0] if mtype in MESSAGES else f"type {mtype}"
