"""A 9P2000.L session over one `Export`: the fid table and a handler per T-message.

`Server.handle(request) -> reply` takes one whole request message and returns one whole
reply message; it never raises for anything the guest sends. A request that does not decode
gets Rlerror(EINVAL) (when it has a tag to answer), a host error its errno, an unknown or
legacy 9P2000 type EOPNOTSUPP. Requests are answered in order, synchronously, so Tflush has
nothing left to cancel and is answered at once.

A fid names a path (components beneath the export, see `p9_fs`) and, once opened, an fd.
Paths, not fds, are what a fid keeps between messages: every operation resolves them
beneath the root again, and renames update the paths of the fids below the renamed name
(as QEMU does), so a fid follows its file. An opened fid reads, writes and stats through
its fd, so an open file that is unlinked keeps working.

Limits a hostile guest meets: MAX_FIDS fids, MAX_OPEN_FIDS of them open (each holds a host
fd), MAXWELEM names per walk, and msize at most MAX_MSIZE.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import time
from dataclasses import dataclass, field

from . import p9_protocol as proto
from .p9_fs import Export, Path, check_name, error
from .p9_protocol import Qid

log = logging.getLogger(__name__)

MAX_MSIZE = 512 * 1024
MIN_MSIZE = 4096
MAX_FIDS = 65536
MAX_OPEN_FIDS = 1024

# d_type values of Rreaddir entries (Linux DT_*)
_DT = {stat.S_IFDIR: 4, stat.S_IFREG: 8, stat.S_IFLNK: 10, stat.S_IFIFO: 1, stat.S_IFSOCK: 12,
       stat.S_IFCHR: 2, stat.S_IFBLK: 6}


@dataclass
class Fid:
    path: Path
    fd: int | None = None  # once opened (Tlopen / Tlcreate)
    is_dir: bool = False
    xattr: bool = False  # an (empty) xattr fid from Txattrwalk
    listing: list = field(default_factory=list)  # Treaddir's snapshot: (name, qid, d_type)


class Server:
    """The server side of one 9P2000.L connection (one virtio-9p device)."""

    def __init__(self, export: Export):
        self.export = export
        self.msize = MAX_MSIZE  # until Tversion says otherwise
        self.fids: dict[int, Fid] = {}
        self.open_count = 0
        self._handlers = {number: getattr(self, "_" + name[1:].lower()) for number, (name, _) in proto.MESSAGES.items()
                          if name.startswith("T") and hasattr(self, "_" + name[1:].lower())}

    # --- Session ----------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every fid (Tversion, device reset)."""
        for fid in self.fids.values():
            self._close_fd(fid)
        self.fids.clear()

    def close(self) -> None:
        self.reset()

    def handle(self, request: bytes) -> bytes | None:
        """The reply to one request; None when it has no header to answer to."""
        try:
            _size, mtype, tag = proto.unpack_header(request)
        except proto.ProtocolError:
            return None
        try:
            handler = self._handlers.get(mtype)
            if handler is None:
                return proto.lerror(tag, errno.EOPNOTSUPP)
            _, _, fields = proto.unpack(request)
            return proto.pack(mtype + 1, tag, *handler(*fields))
        except OSError as exc:
            return proto.lerror(tag, exc.errno or errno.EIO)
        except (proto.ProtocolError, ValueError, OverflowError) as exc:  # ValueError: NUL in a path
            log.debug("9p: %s refused: %s", proto.name_of(mtype), exc)
            return proto.lerror(tag, errno.EINVAL)
        except Exception:  # a server bug must not take the VMM down; the guest sees EIO
            log.exception("9p: %s failed", proto.name_of(mtype))
            return proto.lerror(tag, errno.EIO)

    # --- Helpers ------------------------------------------------------------------------------

    def _fid(self, number: int) -> Fid:
        fid = self.fids.get(number)
        if fid is None:
            raise error(errno.EBADF)
        return fid

    def _new_fid(self, number: int, fid: Fid) -> None:
        if number in self.fids or number == proto.NOFID:
            raise error(errno.EBADF)
        if len(self.fids) >= MAX_FIDS:
            raise error(errno.ENFILE)
        self.fids[number] = fid

    def _dir_fid(self, number: int) -> Fid:
        fid = self._fid(number)
        if fid.xattr:
            raise error(errno.EINVAL)
        if not stat.S_ISDIR(self.export.lstat(fid.path).st_mode):
            raise error(errno.ENOTDIR)
        return fid

    def _room_to_open(self) -> None:
        """Before opening anything (an O_TRUNC must not happen for a refused open)."""
        if self.open_count >= MAX_OPEN_FIDS:
            raise error(errno.ENFILE)

    def _opened(self, fid: Fid, fd: int, is_dir: bool) -> None:
        fid.fd, fid.is_dir, fid.listing = fd, is_dir, []
        self.open_count += 1

    def _close_fd(self, fid: Fid) -> None:
        if fid.fd is not None:
            os.close(fid.fd)
            fid.fd = None
            self.open_count -= 1

    def _stat(self, fid: Fid) -> os.stat_result:
        return os.fstat(fid.fd) if fid.fd is not None else self.export.lstat(fid.path)

    def qid(self, st: os.stat_result) -> Qid:
        kind = (proto.QTDIR if stat.S_ISDIR(st.st_mode) else
                proto.QTSYMLINK if stat.S_ISLNK(st.st_mode) else proto.QTFILE)
        return Qid(kind, st.st_mtime_ns & 0xFFFF_FFFF if kind == proto.QTFILE else 0, self._qid_path(st.st_ino, st.st_dev))

    def _qid_path(self, ino: int, dev: int) -> int:
        if dev == self.export.root_dev:
            return ino
        return (ino ^ (dev & 0xFFFF) << 48) & 0xFFFF_FFFF_FFFF_FFFF  # a file system mounted inside the export

    def _qid_of(self, path: Path) -> Qid:
        return self.qid(self.export.lstat(path))

    def _renamed(self, old: Path, new: Path) -> None:
        """Fids at or below `old` now live at `new`."""
        for fid in self.fids.values():
            if fid.path[: len(old)] == old:
                fid.path = new + fid.path[len(old):]

    # --- Session messages -------------------------------------------------------------------

    def _version(self, msize: int, version: bytes):
        self.reset()
        if not version.startswith(proto.VERSION_9P2000_L):
            return msize, b"unknown"
        if msize < MIN_MSIZE:
            raise error(errno.EINVAL)
        self.msize = min(msize, MAX_MSIZE)
        return self.msize, proto.VERSION_9P2000_L

    def _auth(self, afid, uname, aname, n_uname):
        raise error(errno.EOPNOTSUPP)  # no authentication: attach directly

    def _attach(self, fid: int, afid: int, uname: bytes, aname: bytes, n_uname: int):
        self._new_fid(fid, Fid(()))
        return (self._qid_of(()),)

    def _flush(self, oldtag: int):
        return ()  # every earlier request has been answered already

    def _clunk(self, fid: int):
        self._close_fd(self._fid(fid))
        del self.fids[fid]
        return ()

    # --- Walking and attributes -------------------------------------------------------------

    def _walk(self, fid: int, newfid: int, names: list[bytes]):
        source = self._fid(fid)
        if source.xattr or len(names) > proto.MAXWELEM:
            raise error(errno.EINVAL)
        if newfid != fid and newfid in self.fids:
            raise error(errno.EBADF)
        if newfid == fid and names and source.fd is not None:
            raise error(errno.EBUSY)  # an open fid cannot move
        if names and not stat.S_ISDIR(self._stat(source).st_mode):
            raise error(errno.ENOTDIR)
        path, qids = source.path, []
        for name in names:
            # '..' of the root is the root; any other step resolves its parent as a directory
            step = path[:-1] if name == b".." else path + (check_name(name),)
            try:
                qids.append(self._qid_of(step))
            except OSError:
                if not qids:
                    raise
                return (qids,)  # a partial walk: the new fid is not created
            path = step
        if newfid == fid:
            source.path = path
        else:
            self._new_fid(newfid, Fid(path))
        return (qids,)

    def _getattr(self, fid: int, request_mask: int):
        target = self._fid(fid)
        if target.xattr:
            raise error(errno.EINVAL)
        st = self._stat(target)
        return (proto.GETATTR_BASIC, self.qid(st), st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_rdev,
                st.st_size, st.st_blksize, st.st_blocks,
                *_timespec(st.st_atime_ns), *_timespec(st.st_mtime_ns), *_timespec(st.st_ctime_ns), 0, 0, 0, 0)

    def _setattr(self, fid: int, valid: int, mode: int, uid: int, gid: int, size: int,
                 atime_sec: int, atime_nsec: int, mtime_sec: int, mtime_nsec: int):
        target = self._fid(fid)
        self.export.check_writable()
        if target.xattr:
            raise error(errno.EINVAL)
        if valid & proto.SETATTR_MODE:
            self.export.chmod(target.path, mode)
        if valid & (proto.SETATTR_UID | proto.SETATTR_GID):
            self.export.chown(target.path, uid if valid & proto.SETATTR_UID else -1,
                              gid if valid & proto.SETATTR_GID else -1)
        if valid & proto.SETATTR_SIZE:
            self.export.truncate(target.path, size, target.fd)
        if valid & (proto.SETATTR_ATIME | proto.SETATTR_MTIME):
            now = None
            times = []
            for bit, bit_set, sec, nsec in ((proto.SETATTR_ATIME, proto.SETATTR_ATIME_SET, atime_sec, atime_nsec),
                                            (proto.SETATTR_MTIME, proto.SETATTR_MTIME_SET, mtime_sec, mtime_nsec)):
                if not valid & bit:
                    times.append(None)
                elif valid & bit_set:
                    if nsec >= 10**9:
                        raise error(errno.EINVAL)
                    times.append((sec - (1 << 64) if sec >> 63 else sec) * 10**9 + nsec)  # sec is an s64
                else:
                    now = now if now is not None else _now_ns()
                    times.append(now)
            self.export.utime(target.path, *times)
        return ()

    def _statfs(self, fid: int):
        self._fid(fid)
        vfs = self.export.statvfs()
        return (proto.V9FS_MAGIC, vfs.f_frsize or vfs.f_bsize, vfs.f_blocks, vfs.f_bfree, vfs.f_bavail,
                vfs.f_files, vfs.f_ffree, vfs.f_fsid & 0xFFFF_FFFF_FFFF_FFFF, vfs.f_namemax)

    def _readlink(self, fid: int):
        target = self._fid(fid)
        if target.xattr:
            raise error(errno.EINVAL)
        return (self.export.readlink(target.path),)

    # --- Opening, reading, writing ----------------------------------------------------------

    def _lopen(self, fid: int, flags: int):
        target = self._fid(fid)
        if target.fd is not None or target.xattr:
            raise error(errno.EBADF)
        self._room_to_open()
        fd = self.export.open_file(target.path, flags)
        st = os.fstat(fd)
        self._opened(target, fd, stat.S_ISDIR(st.st_mode))
        return self.qid(st), 0

    def _lcreate(self, fid: int, name: bytes, flags: int, mode: int, gid: int):
        target = self._dir_fid(fid)
        if target.fd is not None:
            raise error(errno.EBADF)
        self._room_to_open()
        fd = self.export.create_file(target.path, name, flags, mode)
        self._opened(target, fd, False)
        target.path = target.path + (name,)
        return self.qid(os.fstat(fd)), 0

    def _read(self, fid: int, offset: int, count: int):
        target = self._fid(fid)
        count = min(count, self.msize - proto.IOHDRSZ)
        if target.xattr:
            return (b"",)
        if target.fd is None:
            raise error(errno.EBADF)
        if target.is_dir:
            raise error(errno.EISDIR)
        try:
            return (os.pread(target.fd, count, offset),)
        except OSError as exc:
            if exc.errno != errno.ESPIPE:
                raise
            return (os.read(target.fd, count),)  # a FIFO: no offsets

    def _write(self, fid: int, offset: int, data: bytes):
        target = self._fid(fid)
        self.export.check_writable()
        if target.fd is None or target.xattr:
            raise error(errno.EBADF)
        try:
            return (os.pwrite(target.fd, data, offset),)
        except OSError as exc:
            if exc.errno != errno.ESPIPE:
                raise
            return (os.write(target.fd, data),)

    def _fsync(self, fid: int, datasync: int):
        target = self._fid(fid)
        if target.fd is None:
            raise error(errno.EBADF)
        (os.fdatasync if datasync else os.fsync)(target.fd)
        return ()

    def _readdir(self, fid: int, offset: int, count: int):
        target = self._fid(fid)
        if target.fd is None or not target.is_dir:
            raise error(errno.EBADF)
        if offset == 0 or not target.listing:
            target.listing = self._listing(target)
        budget = min(count, self.msize - proto.IOHDRSZ)
        out, used = [], 0
        for index in range(min(offset, len(target.listing)), len(target.listing)):
            name, qid, dtype = target.listing[index]
            entry = proto.dirent(qid, index + 1, dtype, name)
            if used + len(entry) > budget:
                break
            out.append(entry)
            used += len(entry)
        return (b"".join(out),)

    def _listing(self, target: Fid) -> list:
        here = self.qid(os.fstat(target.fd))
        parent = self._qid_of(target.path[:-1]) if target.path else here
        listing = [(b".", here, 4), (b"..", parent, 4)]
        for entry in self.export.list_dir(target.fd):
            st_mode = (stat.S_IFLNK if entry.is_symlink() else stat.S_IFDIR if entry.is_dir(follow_symlinks=False)
                       else stat.S_IFREG if entry.is_file(follow_symlinks=False) else 0)
            kind = proto.QTDIR if st_mode == stat.S_IFDIR else proto.QTSYMLINK if st_mode == stat.S_IFLNK else proto.QTFILE
            name = os.fsencode(entry.name)
            listing.append((name, Qid(kind, 0, self._qid_path(entry.inode(), self.export.root_dev)),
                            _DT.get(st_mode, 0)))
        return listing

    # --- Creating, removing, renaming -------------------------------------------------------

    def _mkdir(self, dfid: int, name: bytes, mode: int, gid: int):
        directory = self._dir_fid(dfid)
        self.export.mkdir(directory.path, name, mode)
        return (self._qid_of(directory.path + (name,)),)

    def _symlink(self, fid: int, name: bytes, target: bytes, gid: int):
        directory = self._dir_fid(fid)
        self.export.symlink(directory.path, name, target)
        return (self._qid_of(directory.path + (name,)),)

    def _mknod(self, dfid: int, name: bytes, mode: int, major: int, minor: int, gid: int):
        directory = self._dir_fid(dfid)
        self.export.mknod(directory.path, name, mode)
        return (self._qid_of(directory.path + (name,)),)

    def _link(self, dfid: int, fid: int, name: bytes):
        directory = self._dir_fid(dfid)
        self.export.link(self._fid(fid).path, directory.path, name)
        return ()

    def _rename(self, fid: int, dfid: int, name: bytes):
        source = self._fid(fid)
        directory = self._dir_fid(dfid)
        if not source.path:
            raise error(errno.EBUSY)
        self.export.rename(source.path[:-1], source.path[-1], directory.path, name)
        self._renamed(source.path, directory.path + (name,))
        return ()

    def _renameat(self, olddirfid: int, oldname: bytes, newdirfid: int, newname: bytes):
        old_dir, new_dir = self._dir_fid(olddirfid), self._dir_fid(newdirfid)
        self.export.rename(old_dir.path, oldname, new_dir.path, newname)
        self._renamed(old_dir.path + (oldname,), new_dir.path + (newname,))
        return ()

    def _unlinkat(self, dirfd: int, name: bytes, flags: int):
        directory = self._dir_fid(dirfd)
        if flags & ~proto.AT_REMOVEDIR:
            raise error(errno.EINVAL)
        self.export.unlink(directory.path, name, bool(flags & proto.AT_REMOVEDIR))
        return ()

    def _remove(self, fid: int):
        target = self._fid(fid)
        try:
            self.export.remove(target.path)
        finally:  # Tremove clunks the fid whatever happens
            self._close_fd(target)
            del self.fids[fid]
        return ()

    # --- Extended attributes and locks: none to keep ----------------------------------------

    def _xattrwalk(self, fid: int, newfid: int, name: bytes):
        source = self._fid(fid)
        if name:
            raise error(errno.ENODATA)
        self._new_fid(newfid, Fid(source.path, xattr=True))  # the (empty) list of names
        return (0,)

    def _xattrcreate(self, fid: int, name: bytes, attr_size: int, flags: int):
        self._fid(fid)
        self.export.check_writable()
        raise error(errno.EOPNOTSUPP)

    def _lock(self, fid: int, lock_type: int, flags: int, start: int, length: int, proc_id: int, client_id: bytes):
        self._fid(fid)
        return (proto.LOCK_SUCCESS,)

    def _getlock(self, fid: int, lock_type: int, start: int, length: int, proc_id: int, client_id: bytes):
        self._fid(fid)
        return (proto.LOCK_TYPE_UNLCK, start, length, proc_id, client_id)


def _timespec(ns: int) -> tuple[int, int]:
    """(seconds as a u64 holding an s64, nanoseconds) of a time in nanoseconds."""
    seconds, nanoseconds = divmod(ns, 10**9)
    return seconds & 0xFFFF_FFFF_FFFF_FFFF, nanoseconds


def _now_ns() -> int:
    return time.time_ns()
