"""The GDB remote serial protocol's framing: `$payload#cc` packets with a modulo-256 checksum,
`}`-escaping of the reserved bytes, acknowledgements and the out-of-band interrupt byte.

`PacketReader` turns the byte stream from gdb into events; `frame` builds a packet to send.
Nothing here knows what a packet means (that is server.py's business).
"""

from __future__ import annotations

from dataclasses import dataclass

START, END, ESCAPE, REPEAT = ord("$"), ord("#"), ord("}"), ord("*")
ESCAPE_XOR = 0x20
INTERRUPT_BYTE = 0x03      # Ctrl-C, sent outside any packet
ACK, NACK = b"+", b"-"
CHECKSUM_DIGITS = 2
RESERVED = frozenset((START, END, ESCAPE, REPEAT))
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Packet:
    """A well-formed packet's payload, unescaped."""
    payload: bytes


@dataclass(frozen=True)
class BadPacket:
    """A packet whose checksum did not match, or that grew past the size limit: answered
    with a NACK so that gdb sends it again."""
    why: str


@dataclass(frozen=True)
class Interrupt:
    """gdb asks the running target to stop (the 0x03 byte)."""


@dataclass(frozen=True)
class Acknowledgement:
    positive: bool


def checksum(data: bytes) -> int:
    return sum(data) & 0xFF


def escape(payload: bytes) -> bytes:
    """`}` followed by the byte XOR 0x20 for each of `$`, `#`, `}` and `*`."""
    if not RESERVED.intersection(payload):
        return payload
    out = bytearray()
    for byte in payload:
        if byte in RESERVED:
            out += bytes((ESCAPE, byte ^ ESCAPE_XOR))
        else:
            out.append(byte)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """The inverse of `escape` (a trailing lone `}` is kept as it is)."""
    if ESCAPE not in data:
        return data
    out = bytearray()
    index = 0
    while index < len(data):
        byte = data[index]
        if byte == ESCAPE and index + 1 < len(data):
            out.append(data[index + 1] ^ ESCAPE_XOR)
            index += 2
        else:
            out.append(byte)
            index += 1
    return bytes(out)


def frame(payload: bytes) -> bytes:
    """`payload` as a packet on the wire."""
    body = escape(payload)
    return b"$" + body + b"#" + b"%02x" % checksum(body)


class PacketReader:
    """Splits what gdb sends into Packet, BadPacket, Interrupt and Acknowledgement events.
    Bytes between packets that mean nothing are dropped, as the protocol asks."""

    def __init__(self, max_payload: int):
        self.max_payload = max_payload
        self._body: bytearray | None = None     # inside a packet: its (escaped) bytes so far
        self._checksum: bytearray | None = None  # after '#': the checksum digits so far

    def feed(self, data: bytes) -> list:
        events = []
        for byte in data:
            event = self._byte(byte)
            if event is not None:
                events.append(event)
        return events

    def _byte(self, byte: int):
        if self._checksum is not None:
            self._checksum.append(byte)
            if len(self._checksum) < CHECKSUM_DIGITS:
                return None
            return self._complete()
        if self._body is not None:
            if byte == END:
                self._checksum = bytearray()
            elif len(self._body) >= self.max_payload:
                self._body = None
                return BadPacket(f"packet longer than {self.max_payload} bytes")
            else:
                self._body.append(byte)
            return None
        if byte == START:
            self._body = bytearray()
        elif byte == INTERRUPT_BYTE:
            return Interrupt()
        elif byte in (ACK[0], NACK[0]):
            return Acknowledgement(byte == ACK[0])
        return None

    def _complete(self):
        body, digits = bytes(self._body), bytes(self._checksum)
        self._body = self._checksum = None
        if not HEX_DIGITS.issuperset(digits):
            return BadPacket(f"checksum {digits!r} is not hexadecimal")
        if int(digits, 16) != checksum(body):
            return BadPacket(f"checksum {digits.decode()} does not match {checksum(body):02x}")
        return Packet(unescape(body))
