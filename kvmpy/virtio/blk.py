"""virtio-blk (virtio 1.x section 5.2) backed by a raw image file.

A request is a chain: a 16-byte device-readable header (type, reserved, sector), data
buffers (device-readable for writes, device-writable for reads), and a device-writable status
byte at the very end.  Data moves with `os.preadv` / `os.pwritev` straight between the file
and memoryviews of guest RAM, without an intermediate copy.  The status byte is written
after the data, so the driver never sees OK before the data is in place.

Capacity is the file size in whole 512-byte sectors; a trailing partial sector of an image
whose size is not a multiple of 512 is not exposed to the guest (and never touched).

A malformed chain (no header, no status byte) is a `VirtqueueError`; a well-formed request
the device cannot honour gets a status: IOERR for ranges beyond capacity, lengths that are not
whole sectors, data buffers of the wrong direction (device-writable data in a write, readable
data in a read), host I/O errors and writes to a read-only disk (the spec's requirement for
VIRTIO_BLK_F_RO), UNSUPP for request types not offered.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import struct
from typing import Callable

from ..errors import ConfigError
from .constants import ID_BLOCK, bit
from .device import VirtioDevice
from .queue import DescriptorChain, VirtqueueError

log = logging.getLogger(__name__)

SECTOR_SIZE = 512
QUEUE_SIZE = 256
ID_BYTES = 20

# Feature bits (section 5.2.3)
F_SEG_MAX = 2
F_RO = 5
F_BLK_SIZE = 6
F_FLUSH = 9
F_DISCARD = 13
F_WRITE_ZEROES = 14

# Request types and status values (section 5.2.6)
T_IN = 0
T_OUT = 1
T_FLUSH = 4
T_GET_ID = 8
T_DISCARD = 11
T_WRITE_ZEROES = 13
S_OK = 0
S_IOERR = 1
S_UNSUPP = 2

_HEADER = struct.Struct("<IIQ")  # type, reserved, sector
_SEGMENT = struct.Struct("<QII")  # discard / write-zeroes range: sector, num_sectors, flags
SEGMENT_F_UNMAP = 0x1

MAX_DISCARD_SECTORS = 1 << 22  # 2 GiB per segment
MAX_DISCARD_SEGMENTS = 16
_ZERO_CHUNK = bytes(1 << 20)
_IOV_MAX = os.sysconf("SC_IOV_MAX")

# struct virtio_blk_config up to and including the write-zeroes fields (60 bytes).
_CONFIG_SIZE = 60
_CONFIG_CAPACITY = 0
_CONFIG_SEG_MAX = 12
_CONFIG_BLK_SIZE = 20
_CONFIG_DISCARD = 36  # max_discard_sectors, max_discard_seg, discard_sector_alignment
_CONFIG_WRITE_ZEROES = 48  # max_write_zeroes_sectors, max_write_zeroes_seg, may_unmap

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc = ctypes.CDLL(None, use_errno=True)
_libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


def _punch_hole(fd: int, offset: int, length: int) -> None:
    """Deallocate a file range (reads return zeros); raises OSError when unsupported."""
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class BlockDevice(VirtioDevice):
    """virtio-blk on the raw image at `path`.

    `read_only` opens the file read-only and offers VIRTIO_BLK_F_RO (no discard/write-zeroes
    then); `serial` is the GET_ID string (at most 20 bytes, default the file name).
    """

    device_id = ID_BLOCK

    def __init__(self, path: str, read_only: bool = False, serial: str | None = None, queue_size: int = QUEUE_SIZE):
        try:
            self.fd = os.open(path, (os.O_RDONLY if read_only else os.O_RDWR) | os.O_CLOEXEC)
        except OSError as exc:
            raise ConfigError(f"cannot open disk image {path}: {exc.strerror}") from exc
        size = os.fstat(self.fd).st_size
        if size % SECTOR_SIZE:
            log.warning("%s: size %d is not a multiple of %d; the last partial sector is hidden", path, size, SECTOR_SIZE)
        self.capacity = size // SECTOR_SIZE
        self.path = path
        self.read_only = read_only
        self._deletion_reported = False
        self.serial = (serial if serial is not None else os.path.basename(path)).encode()[:ID_BYTES]
        features = bit(F_SEG_MAX) | bit(F_BLK_SIZE) | bit(F_FLUSH)
        features |= bit(F_RO) if read_only else bit(F_DISCARD) | bit(F_WRITE_ZEROES)
        config = bytearray(_CONFIG_SIZE)
        struct.pack_into("<Q", config, _CONFIG_CAPACITY, self.capacity)
        struct.pack_into("<I", config, _CONFIG_SEG_MAX, queue_size - 2)  # header and status take two
        struct.pack_into("<I", config, _CONFIG_BLK_SIZE, SECTOR_SIZE)
        struct.pack_into("<III", config, _CONFIG_DISCARD, MAX_DISCARD_SECTORS, MAX_DISCARD_SEGMENTS, 1)
        struct.pack_into("<IIB", config, _CONFIG_WRITE_ZEROES, MAX_DISCARD_SECTORS, MAX_DISCARD_SEGMENTS, 1)
        super().__init__(features, [queue_size], bytes(config))

    def _report_deletion(self) -> None:
        """Say once when the image file was deleted under a running VM: the guest's writes
        (and flushes) still succeed, into a file that disappears when kvmpy closes it."""
        if not self._deletion_reported and not self.read_only and os.fstat(self.fd).st_nlink == 0:
            self._deletion_reported = True
            log.warning("virtio-blk: the disk image %s was deleted while the VM runs: "
                        "what the guest writes is lost when the VM ends", self.path)

    def close(self) -> None:
        if self.fd >= 0:
            self._report_deletion()
            os.close(self.fd)
            self.fd = -1

    def process(self, queue_index: int) -> None:
        queue = self.queues[queue_index]
        while (chain := queue.pop()) is not None:
            req_type, _, sector = _HEADER.unpack(chain.read(0, _HEADER.size))
            status_at = chain.writable_len - 1
            if status_at < 0:
                raise VirtqueueError("virtio-blk request without a status byte")
            written = 0
            try:
                status, written = self._execute(chain, req_type, sector, status_at)
            except OSError as exc:
                log.warning("virtio-blk: host I/O error: %s", str(exc))  # not exc: its frames hold guest RAM views
                status = S_IOERR
            chain.write(status_at, bytes([status]))
            queue.add_used(chain.head, written + 1)

    def _execute(self, chain: DescriptorChain, req_type: int, sector: int, data_in: int) -> tuple[int, int]:
        """Run one request; (status, bytes written to the guest before the status byte)."""
        data_out = chain.readable_len - _HEADER.size
        if req_type == T_IN:
            if data_out or not self._in_range(sector, data_in):
                return S_IOERR, 0
            self._transfer(os.preadv, chain.writable_views(0, data_in), sector * SECTOR_SIZE)
            return S_OK, data_in
        if req_type == T_OUT:
            if self.read_only or data_in or not self._in_range(sector, data_out):
                return S_IOERR, 0
            self._transfer(os.pwritev, chain.readable_views(_HEADER.size, data_out), sector * SECTOR_SIZE)
            return S_OK, 0
        if req_type == T_FLUSH:
            os.fsync(self.fd)
            self._report_deletion()
            return S_OK, 0
        if req_type == T_GET_ID:
            count = min(ID_BYTES, data_in)
            chain.write(0, self.serial.ljust(ID_BYTES, b"\0")[:count])
            return S_OK, count
        if req_type in (T_DISCARD, T_WRITE_ZEROES):
            feature = F_DISCARD if req_type == T_DISCARD else F_WRITE_ZEROES
            if self.has_feature(feature):
                return self._ranges(chain, req_type, data_out), 0
        return S_UNSUPP, 0

    def _in_range(self, sector: int, length: int) -> bool:
        return length % SECTOR_SIZE == 0 and sector + length // SECTOR_SIZE <= self.capacity

    def _transfer(self, call: Callable[[int, list[memoryview], int], int], views: list[memoryview], offset: int) -> None:
        """preadv/pwritev until every view is done (they may return short)."""
        while views:
            done = call(self.fd, views[:_IOV_MAX], offset)
            if done == 0:
                raise OSError(errno.EIO, "unexpected end of disk image")
            offset += done
            while views and done >= len(views[0]):
                done -= len(views[0])
                views.pop(0)
            if done:
                views[0] = views[0][done:]

    def _ranges(self, chain: DescriptorChain, req_type: int, data_out: int) -> int:
        """DISCARD / WRITE_ZEROES over the segments that follow the header."""
        count, rest = divmod(data_out, _SEGMENT.size)
        if rest or not 0 < count <= MAX_DISCARD_SEGMENTS:
            return S_IOERR
        segments = [
            _SEGMENT.unpack(chain.read(_HEADER.size + i * _SEGMENT.size, _SEGMENT.size)) for i in range(count)
        ]
        for sector, sectors, flags in segments:
            allowed_flags = SEGMENT_F_UNMAP if req_type == T_WRITE_ZEROES else 0
            if flags & ~allowed_flags:
                return S_UNSUPP
            if sectors > MAX_DISCARD_SECTORS or not self._in_range(sector, sectors * SECTOR_SIZE):
                return S_IOERR
        for sector, sectors, flags in segments:
            offset, length = sector * SECTOR_SIZE, sectors * SECTOR_SIZE
            if req_type == T_DISCARD:
                self._discard(offset, length)
            else:
                self._write_zeroes(offset, length, unmap=bool(flags & SEGMENT_F_UNMAP))
        return S_OK

    def _discard(self, offset: int, length: int) -> None:
        """Discard is advisory: a file system without hole punching just keeps the data."""
        try:
            _punch_hole(self.fd, offset, length)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                raise

    def _write_zeroes(self, offset: int, length: int, unmap: bool) -> None:
        if unmap:
            try:
                _punch_hole(self.fd, offset, length)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS):
                    raise
        while length:
            chunk = min(length, len(_ZERO_CHUNK))
            written = os.pwrite(self.fd, memoryview(_ZERO_CHUNK)[:chunk], offset)
            offset += written
            length -= written
