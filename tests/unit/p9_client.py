"""A tiny 9P2000.L client for tests: encodes T-messages, hands them to a `Server` (or any
callable taking a request and returning the reply), decodes and checks the reply."""

from __future__ import annotations

import os

from kvmpy.virtio import p9_protocol as proto

O_RDONLY, O_WRONLY, O_RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR


class P9Error(Exception):
    def __init__(self, errno_value: int):
        super().__init__(errno_value, os.strerror(errno_value))
        self.errno = errno_value


class Client:
    def __init__(self, server, msize: int = 512 * 1024):
        self.answer = server.handle if hasattr(server, "handle") else server
        self.next_tag = 1
        self.next_fid = 100
        self.msize = msize

    def rpc(self, name: str, *fields):
        tag = self.next_tag
        self.next_tag = (self.next_tag + 1) % 0xFFFF
        reply = self.answer(proto.pack(name, tag, *fields))
        mtype, rtag, values = proto.unpack(reply)
        assert rtag == tag, (name, rtag, tag)
        if mtype == proto.RLERROR:
            raise P9Error(values[0])
        assert proto.name_of(mtype) == "R" + name[1:], (name, proto.name_of(mtype))
        return values

    def errno_of(self, name: str, *fields) -> int:
        """The errno of a request expected to fail."""
        try:
            values = self.rpc(name, *fields)
        except P9Error as error:
            return error.errno
        raise AssertionError(f"{name} succeeded: {values}")

    def fid(self) -> int:
        self.next_fid += 1
        return self.next_fid

    # --- Conveniences ----------------------------------------------------------------------

    def start(self, root_fid: int = 0):
        self.rpc("Tversion", self.msize, b"9P2000.L")
        return self.rpc("Tattach", root_fid, proto.NOFID, b"root", b"", 0)[0]

    def walk(self, fid: int, *names: bytes, newfid: int | None = None) -> int:
        newfid = self.fid() if newfid is None else newfid
        qids = self.rpc("Twalk", fid, newfid, list(names))[0]
        assert len(qids) == len(names), qids
        return newfid

    def open(self, *names: bytes, flags: int = O_RDONLY, root: int = 0) -> int:
        fid = self.walk(root, *names)
        self.rpc("Tlopen", fid, flags)
        return fid

    def read_all(self, fid: int, chunk: int = 8192) -> bytes:
        data, offset = b"", 0
        while True:
            (got,) = self.rpc("Tread", fid, offset, chunk)
            if not got:
                return data
            data += got
            offset += len(got)

    def getattr(self, fid: int) -> dict:
        names = ("valid qid mode uid gid nlink rdev size blksize blocks atime_sec atime_nsec mtime_sec mtime_nsec "
                 "ctime_sec ctime_nsec btime_sec btime_nsec gen data_version").split()
        return dict(zip(names, self.rpc("Tgetattr", fid, proto.GETATTR_BASIC)))

    def readdir(self, fid: int, count: int = 8192) -> list[bytes]:
        names, offset = [], 0
        while True:
            (data,) = self.rpc("Treaddir", fid, offset, count)
            entries = proto.parse_dirents(data)
            if not entries:
                return names
            names += [name for _qid, _off, _type, name in entries]
            offset = entries[-1][1]

    def clunk(self, fid: int) -> None:
        self.rpc("Tclunk", fid)
