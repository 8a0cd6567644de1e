"""What the Python fuzz targets share: a reader that turns fuzz bytes into numbers, and a
guard that turns a contained device-model bug into a crash the fuzzer sees."""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import tempfile

WORK_DIR = tempfile.mkdtemp(prefix="kvmpy-fuzz-")  # files a target needs: disk images, an initrd, a 9p export
atexit.register(shutil.rmtree, WORK_DIR, ignore_errors=True)


class Input:
    """Little-endian integers and byte strings read from the front of the fuzz input; past
    its end every read gives zeros, so any input is a complete, deterministic example."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk + bytes(count - len(chunk))

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def u8(self) -> int:
        return self.uint(1)

    def u16(self) -> int:
        return self.uint(2)

    def u32(self) -> int:
        return self.uint(4)

    def rest(self) -> bytes:
        chunk, self.pos = self.data[self.pos :], len(self.data)
        return chunk

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.data)


class ContainedBug(AssertionError):
    """A device model raised something unexpected; kvmpy contained it (logged, device reset)
    but it is a bug all the same."""


class _RaiseOnContainedBug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.levelno >= logging.ERROR:
            raise ContainedBug(record.getMessage()) from record.exc_info[1]


@contextlib.contextmanager
def contained_bugs_raise():
    """While inside, kvmpy's `log.exception` backstops (transport, worker, 9p server) raise
    instead, so the fuzzer reports what they would hide.  The fuzz harness stays inside for
    its whole run; an in-process replay (the test suite) leaves kvmpy's logging as it was."""
    logger, handler = logging.getLogger("kvmpy"), _RaiseOnContainedBug()
    level, raise_exceptions = logger.level, logging.raiseExceptions
    logger.addHandler(handler)
    logger.setLevel(min(level or logging.WARNING, logging.WARNING))
    logging.raiseExceptions = True
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logging.raiseExceptions = raise_exceptions


def register_ops(reader: Input, registers: int, sizes=(1,)):
    """Decode a register-file workload: (is_write, offset, size, value) per 4 bytes, to the
    end of the input.  Values reach 21 bits: enough for a register, a ring address in a
    small RAM, a BAR."""
    while not reader.exhausted:
        op, offset, value = reader.u8(), reader.uint(2 if registers > 256 else 1), reader.u16()
        yield op & 1, offset % registers, sizes[(op >> 1) % len(sizes)], value | (op >> 3) << 16


def play_register_ops(device, reader: Input, registers: int, sizes=(1,)) -> None:
    """Drive a device's `read(offset, size)`/`write(offset, size, value)` as a guest's port
    or MMIO accesses would, checking that every read fits the access."""
    for is_write, offset, size, value in register_ops(reader, registers, sizes):
        if is_write:
            device.write(offset, size, value & ((1 << 8 * size) - 1))
        else:
            result = device.read(offset, size)
            assert 0 <= result < 1 << 8 * size, f"read of {size} bytes at {offset:#x} gave {result:#x}"


def discard(_data: bytes) -> None:
    """An output sink (a UART's line, a console's host side) that drops what it is given."""
