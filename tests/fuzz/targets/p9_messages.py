"""The 9P2000.L server (kvmpy/virtio/p9_server.py) on a real export: a stream of messages,
each framed by its own size field, on a fresh copy of a small tree per input.  Properties:
every request with a header gets a reply with its tag and either its R-type or Rlerror,
and nothing outside the export (a sibling directory, the target of a link out) changes."""

import os
import shutil

from kvmpy.virtio import p9_protocol as proto
from kvmpy.virtio.p9_fs import Export
from kvmpy.virtio.p9_server import Server

from ._support import WORK_DIR

EXPORT = os.path.join(WORK_DIR, "export")
OUTSIDE = os.path.join(WORK_DIR, "outside")
MESSAGES_PER_INPUT = 64


def _make_outside() -> dict:
    os.makedirs(OUTSIDE, exist_ok=True)
    with open(os.path.join(OUTSIDE, "secret"), "w") as secret:
        secret.write("host only\n")
    return _listing(OUTSIDE)


def _listing(root: str) -> dict:
    return {entry.name: (entry.stat(follow_symlinks=False).st_mtime_ns, entry.stat(follow_symlinks=False).st_size)
            for entry in os.scandir(root)} | {".": os.stat(root).st_mtime_ns}


def _fresh_export() -> None:
    """The tree each input starts from.  What the last input left must go without an error:
    a file the server made that the host cannot remove would be a finding too."""
    if os.path.lexists(EXPORT):
        shutil.rmtree(EXPORT)
    os.makedirs(os.path.join(EXPORT, "dir", "sub"))
    with open(os.path.join(EXPORT, "file"), "wb") as file:
        file.write(bytes(range(256)) * 16)
    os.symlink("../outside/secret", os.path.join(EXPORT, "link-out"))
    os.symlink(OUTSIDE, os.path.join(EXPORT, "abs-out"))
    os.symlink("file", os.path.join(EXPORT, "link-in"))


OUTSIDE_BEFORE = _make_outside()


def messages(data: bytes):
    """The messages of the stream: each as long as its size field says, the last one
    whatever is left (a size that lies is part of what is tested)."""
    position = 0
    while position < len(data):
        size = int.from_bytes(data[position : position + 4], "little")
        end = position + size if proto.HEADER_SIZE <= size <= len(data) - position else len(data)
        yield data[position:end]
        position = end


def one_input(data: bytes) -> None:
    _fresh_export()
    export = Export(EXPORT)
    server = Server(export)
    try:
        for count, message in enumerate(messages(data)):
            if count == MESSAGES_PER_INPUT:
                break
            reply = server.handle(message)
            if reply is None:
                continue
            _, mtype, tag = proto.unpack_header(message)
            _, reply_type, reply_tag = proto.unpack_header(reply)
            assert reply_tag == tag, (tag, reply_tag)
            assert reply_type in (mtype + 1, proto.RLERROR), (mtype, reply_type)
            assert len(reply) <= server.msize or reply_type == proto.RLERROR, (len(reply), server.msize)
    finally:
        server.close()
        export.close()
    assert _listing(OUTSIDE) == OUTSIDE_BEFORE, "a file outside the export changed"
