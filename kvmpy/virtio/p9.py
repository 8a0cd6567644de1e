"""virtio-9p (device id 9): a host directory shared with the guest over 9P2000.L.

One request queue. Each chain is one request: the device-readable buffers hold a T-message
and the device-writable buffers receive its R-message, both as one byte stream across the
buffers (Linux's zero-copy reads and writes put the header and the payload in separate
descriptors; concatenated they are an ordinary message). The configuration space is the
mount tag (VIRTIO_9P_MOUNT_TAG): le16 length, then the tag's bytes.

What the requests mean is `p9_server`'s business, what they may touch `p9_fs`'s; this module
only moves bytes between chains and the server. A request whose size field disagrees with
the chain, or that is larger than the negotiated msize, is answered Rlerror(EINVAL) (when it
has a header); a reply that does not fit the writable buffers is replaced by
Rlerror(ENOBUFS); a chain too short for even that is returned with nothing written.
"""

from __future__ import annotations

import errno
import logging
import os
import struct

from ..errors import ConfigError
from . import p9_protocol as proto
from .device import VirtioDevice
from .p9_fs import Export
from .p9_server import Server

log = logging.getLogger(__name__)

ID_9P = 9
F_MOUNT_TAG = 0
QUEUE_SIZE = 256  # Linux's 9p transport adds up to 128 buffers per request (indirect)
MAX_TAG_LENGTH = 255


def check_tag(tag: str) -> bytes:
    encoded = tag.encode()
    if not 0 < len(encoded) <= MAX_TAG_LENGTH or any(c in tag for c in ",= \t\n\0"):
        raise ConfigError(f"9p mount tag {tag!r}: 1..{MAX_TAG_LENGTH} bytes without spaces, ',', '=' or NUL")
    return encoded


class P9Device(VirtioDevice):
    """virtio-9p exporting the host directory `root` under mount tag `tag`."""

    device_id = ID_9P

    def __init__(self, root: str, tag: str, read_only: bool = False, queue_size: int = QUEUE_SIZE):
        encoded = check_tag(tag)
        self.export = Export(root, read_only=read_only)
        self.server = Server(self.export)
        self.tag = tag
        super().__init__(1 << F_MOUNT_TAG, [queue_size], struct.pack("<H", len(encoded)) + encoded)

    def reset(self) -> None:
        super().reset()
        self.server.reset()

    def close(self) -> None:
        self.server.close()
        self.export.close()

    def process(self, queue_index: int) -> None:
        queue = self.queues[queue_index]
        while (chain := queue.pop()) is not None:
            reply = self._answer(chain)
            written = 0
            if reply is not None and len(reply) <= chain.writable_len:
                chain.write(0, reply)
                written = len(reply)
            queue.add_used(chain.head, written)

    def _answer(self, chain) -> bytes | None:
        if chain.readable_len < proto.HEADER_SIZE:
            return None
        size, mtype, tag = proto.unpack_header(chain.read(0, proto.HEADER_SIZE))
        if size > chain.readable_len or size < proto.HEADER_SIZE or size > self.server.msize:
            log.debug("9p: request size %d in a chain of %d bytes refused", size, chain.readable_len)
            reply = proto.lerror(tag, errno.EINVAL)
        else:
            reply = self.server.handle(chain.read(0, size))
        if reply is not None and len(reply) > chain.writable_len:
            reply = proto.lerror(tag, errno.ENOBUFS)
        return reply


def default_tag(path: str, taken: set[str]) -> str:
    """The directory's name when it makes a valid, unused tag; else the first free shareN."""
    name = os.path.basename(os.path.normpath(path))
    try:
        if name not in taken and name not in ("", ".", "..", "/"):
            check_tag(name)
            return name
    except ConfigError:
        pass
    return next(f"share{n}" for n in range(len(taken) + 1) if f"share{n}" not in taken)
