"""A small AML encoder: the few ACPI Machine Language terms kvmpy's DSDT needs, as bytes.

Each function returns the encoding of one term (ACPI 6.5, chapter 20, "ACPI Machine Language
Specification"); nesting is by passing the encoded children. Resource descriptors (chapter 6.4)
are here too, since they only ever appear inside a `_CRS`/`_PRS` buffer.
"""

from __future__ import annotations

import re
import struct

ZERO_OP, ONE_OP, ONES_OP = 0x00, 0x01, 0xFF
BYTE_PREFIX, WORD_PREFIX, DWORD_PREFIX, STRING_PREFIX, QWORD_PREFIX = 0x0A, 0x0B, 0x0C, 0x0D, 0x0E
NAME_OP, SCOPE_OP, BUFFER_OP, PACKAGE_OP, METHOD_OP, RETURN_OP = 0x08, 0x10, 0x11, 0x12, 0x14, 0xA4
EXT_OP_PREFIX, DEVICE_OP = 0x5B, 0x82
ROOT_CHAR, DUAL_NAME_PREFIX, MULTI_NAME_PREFIX = 0x5C, 0x2E, 0x2F

_NAME_SEGMENT = re.compile(r"[A-Z_][A-Z0-9_]{0,3}")


def name_segment(segment: str) -> bytes:
    """A 4-character NameSeg, padded with '_' as ASL does."""
    if not _NAME_SEGMENT.fullmatch(segment):
        raise ValueError(f"not an ACPI name segment: {segment!r}")
    return segment.ljust(4, "_").encode()


def name_string(path: str) -> bytes:
    """A NameString: 'PCI0', '\\_SB.PCI0' or '\\_SB.PCI0.LS01' (absolute when it starts with '\\')."""
    prefix = b""
    if path.startswith("\\"):
        prefix, path = bytes([ROOT_CHAR]), path[1:]
    segments = [name_segment(segment) for segment in path.split(".")] if path else []
    if len(segments) == 2:
        return prefix + bytes([DUAL_NAME_PREFIX]) + b"".join(segments)
    if len(segments) > 2:
        return prefix + bytes([MULTI_NAME_PREFIX, len(segments)]) + b"".join(segments)
    return prefix + b"".join(segments)


def package_length(body_length: int) -> bytes:
    """PkgLength for a body of `body_length` bytes: the encoded length counts its own bytes."""
    for extra in range(4):
        total = body_length + 1 + extra
        if (extra == 0 and total < 0x40) or (extra and total < 1 << (4 + 8 * extra)):
            if extra == 0:
                return bytes([total])
            return bytes([extra << 6 | total & 0x0F]) + (total >> 4).to_bytes(extra, "little")
    raise ValueError(f"an AML package of {body_length} bytes is too long")


def _packaged(opcode: bytes, body: bytes) -> bytes:
    return opcode + package_length(len(body)) + body


def integer(value: int) -> bytes:
    """The shortest constant for `value` (ZeroOp, OneOp, or a Byte/Word/DWord/QWord prefix)."""
    if value < 0 or value >= 1 << 64:
        raise ValueError(f"AML integers are unsigned 64-bit: {value}")
    if value in (ZERO_OP, ONE_OP):
        return bytes([value])
    for prefix, width in ((BYTE_PREFIX, 1), (WORD_PREFIX, 2), (DWORD_PREFIX, 4), (QWORD_PREFIX, 8)):
        if value < 1 << (8 * width):
            return bytes([prefix]) + value.to_bytes(width, "little")
    raise AssertionError("unreachable")


def string(text: str) -> bytes:
    return bytes([STRING_PREFIX]) + text.encode("ascii") + b"\0"


def eisa_id(text: str) -> bytes:
    """EISAID("PNP0A03"): three letters of 5 bits and four hex digits, packed big-endian."""
    if not re.fullmatch(r"[A-Z]{3}[0-9A-F]{4}", text):
        raise ValueError(f"not an EISA id: {text!r}")
    letters = [ord(char) - 0x40 for char in text[:3]]
    packed = letters[0] << 26 | letters[1] << 21 | letters[2] << 16 | int(text[3:], 16)
    return integer(int.from_bytes(packed.to_bytes(4, "big"), "little"))


def name(path: str, value: bytes) -> bytes:
    """Name(path, value): `value` is an encoded data object (integer, string, package...)."""
    return bytes([NAME_OP]) + name_string(path) + value


def scope(path: str, *terms: bytes) -> bytes:
    return _packaged(bytes([SCOPE_OP]), name_string(path) + b"".join(terms))


def device(path: str, *terms: bytes) -> bytes:
    return _packaged(bytes([EXT_OP_PREFIX, DEVICE_OP]), name_string(path) + b"".join(terms))


def method(path: str, arguments: int, *terms: bytes) -> bytes:
    """A NotSerialized method taking `arguments` (0-7) arguments."""
    if not 0 <= arguments <= 7:
        raise ValueError(f"AML methods take 0 to 7 arguments, not {arguments}")
    return _packaged(bytes([METHOD_OP]), name_string(path) + bytes([arguments]) + b"".join(terms))


def return_(value: bytes) -> bytes:
    return bytes([RETURN_OP]) + value


def package(*elements: bytes) -> bytes:
    if len(elements) > 0xFF:
        raise ValueError("a Package has at most 255 elements")
    return _packaged(bytes([PACKAGE_OP]), bytes([len(elements)]) + b"".join(elements))


def buffer(data: bytes) -> bytes:
    return _packaged(bytes([BUFFER_OP]), integer(len(data)) + data)


# --- resource descriptors (ACPI 6.5, 6.4) ---------------------------------------------------
END_TAG = bytes([0x79, 0x00])  # small end tag; checksum 0 means "not computed"
IO_DECODE_16 = 0x01
MEMORY_READ_WRITE = 0x01

# Extended interrupt descriptor flags (6.4.3.6)
INTERRUPT_CONSUMER = 0x01
INTERRUPT_EDGE = 0x02
INTERRUPT_ACTIVE_LOW = 0x04
INTERRUPT_SHARED = 0x08

# Address space descriptors (6.4.3.5): resource type, general flags, type-specific flags
SPACE_MEMORY, SPACE_IO, SPACE_BUS = 0, 1, 2
ADDRESS_MIN_FIXED, ADDRESS_MAX_FIXED = 0x04, 0x08
MEMORY_NONCACHEABLE_READ_WRITE = 0x01
IO_ENTIRE_RANGE = 0x03


def resource_template(*descriptors: bytes) -> bytes:
    """ResourceTemplate(){...}: a Buffer of the descriptors and the end tag."""
    return buffer(b"".join(descriptors) + END_TAG)


def io_port(base: int, length: int, alignment: int = 1) -> bytes:
    """IO(Decode16, base, base, alignment, length): a fixed range of ports."""
    return struct.pack("<BBHHBB", 0x47, IO_DECODE_16, base, base, alignment, length)


def irq_no_flags(irq: int) -> bytes:
    """IRQNoFlags(){irq}: an ISA interrupt, edge-triggered and active high."""
    return struct.pack("<BH", 0x22, 1 << irq)


def memory32_fixed(base: int, length: int) -> bytes:
    return struct.pack("<BHBII", 0x86, 9, MEMORY_READ_WRITE, base, length)


def interrupt(irq: int, flags: int) -> bytes:
    """Interrupt(ResourceConsumer, ...){irq}: an extended interrupt descriptor with one GSI."""
    return struct.pack("<BHBBI", 0x89, 6, flags, 1, irq)


def word_address(space: int, minimum: int, maximum: int, type_flags: int = 0) -> bytes:
    """WordBusNumber/WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, ...): a window."""
    return struct.pack("<BHBBBHHHHH", 0x88, 13, space, ADDRESS_MIN_FIXED | ADDRESS_MAX_FIXED, type_flags,
                       0, minimum, maximum, 0, maximum - minimum + 1)


def dword_address(space: int, minimum: int, maximum: int, type_flags: int = 0) -> bytes:
    """DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, ...): a 32-bit window."""
    return struct.pack("<BHBBBIIIII", 0x87, 23, space, ADDRESS_MIN_FIXED | ADDRESS_MAX_FIXED, type_flags,
                       0, minimum, maximum, 0, maximum - minimum + 1)
