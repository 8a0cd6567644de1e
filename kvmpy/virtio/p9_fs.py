"""A host directory exported to a guest: every path resolved beneath it, nothing followed.

Paths are tuples of name components (bytes) relative to the export's root, as the 9P server
tracks them per fid. Each operation resolves its path afresh from a directory fd of the
root, so a component the host or guest changed meanwhile cannot redirect it:

  * with openat2(2) (Linux >= 5.6, called through ctypes: Python has no wrapper) and
    RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS: the kernel refuses any
    step out of the root and any symbolic link anywhere in the path;
  * without it (ENOSYS, or a seccomp filter's EPERM), component by component: each directory
    opened with O_PATH | O_DIRECTORY | O_NOFOLLOW relative to the one before.

Either way a symlink is never followed on the host: the guest's 9p client reads links with
Treadlink and resolves them in its own name space. Operations on a name (create, remove,
rename, link, chmod, ...) run relative to the parent's fd with the *at calls' no-follow
forms. Components are validated before they reach the host: no '/', no NUL, not empty,
not '.' or '..' (the server resolves '..' on its component list, never on the host).

A read-only export refuses every modifying call with EROFS before touching the host.
Device nodes are never opened (EACCES) and only regular files and FIFOs can be created
(EPERM otherwise), so an export cannot become a door to the host's devices.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from typing import Iterator

from ..errors import ConfigError

Path = tuple[bytes, ...]

_SYS_OPENAT2 = 437  # x86-64
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS = _PATH_FLAGS | os.O_DIRECTORY
# Open flags a guest may pass through (the 9P2000.L values are x86 Linux's own). Others are
# dropped: O_APPEND (the client sends explicit offsets), O_DIRECT (alignment), O_NOATIME
# (owner only), O_CREAT/O_EXCL (Tlcreate does creation), O_ASYNC, O_NOCTTY.
OPEN_FLAGS_ALLOWED = os.O_ACCMODE | os.O_TRUNC | os.O_DIRECTORY | os.O_DSYNC | os.O_SYNC
CREATE_FLAGS_ALLOWED = OPEN_FLAGS_ALLOWED | os.O_EXCL


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _openat2(dirfd: int, path: bytes, flags: int, mode: int = 0) -> int:
    how = _OpenHow(flags, mode, _RESOLVE)
    fd = _libc.syscall(ctypes.c_long(_SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return fd


def _probe_openat2() -> bool:
    root = os.open("/", _DIR_FLAGS)
    try:
        os.close(_openat2(root, b".", _DIR_FLAGS))
    except OSError:
        return False
    finally:
        os.close(root)
    return True


def error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


def check_name(name: bytes) -> bytes:
    """A single component a guest may name: EINVAL for '', '.', '..', '/' or NUL inside."""
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise error(errno.EINVAL)
    return name


class Export:
    """The host directory `root`, shared read-write or read-only."""

    def __init__(self, root: str, read_only: bool = False, use_openat2: bool | None = None):
        try:
            self.root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # the user's path may be a link
        except OSError as exc:
            raise ConfigError(f"cannot share {root}: {exc.strerror}") from None
        self.root = root
        self.read_only = read_only
        self.root_dev = os.stat(self.root_fd).st_dev
        self.use_openat2 = _probe_openat2() if use_openat2 is None else use_openat2

    def close(self) -> None:
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def check_writable(self) -> None:
        if self.read_only:
            raise error(errno.EROFS)

    # --- Resolution -----------------------------------------------------------------------

    def open(self, path: Path, flags: int, mode: int = 0) -> int:
        """An fd for `path` opened with `flags` (plus O_NOFOLLOW | O_CLOEXEC), beneath the root."""
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC
        if self.use_openat2:
            return _openat2(self.root_fd, b"/".join(path) or b".", flags, mode)
        if not path:
            return os.open(b".", flags, mode, dir_fd=self.root_fd)
        with self._dir(path[:-1]) as parent:
            return os.open(path[-1], flags, mode, dir_fd=parent)

    def _open_dir(self, path: Path) -> int:
        if self.use_openat2 or not path:
            return self.open(path, _DIR_FLAGS)
        fd = os.dup(self.root_fd)
        try:
            for name in path:
                next_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        return fd

    class _Fd:
        def __init__(self, fd: int):
            self.fd = fd

        def __enter__(self) -> int:
            return self.fd

        def __exit__(self, *exc) -> None:
            os.close(self.fd)

    def _dir(self, path: Path) -> "Export._Fd":
        """A context holding an O_PATH fd of directory `path` (ENOTDIR/ELOOP if it is not one)."""
        return self._Fd(self._open_dir(path))

    def _parent(self, path: Path) -> tuple["Export._Fd", bytes]:
        """(the parent directory's fd context, the last name); the root is (root, '.')."""
        if not path:
            return self._Fd(os.dup(self.root_fd)), b"."
        return self._dir(path[:-1]), path[-1]

    # --- Objects by path ------------------------------------------------------------------

    def lstat(self, path: Path) -> os.stat_result:
        context, name = self._parent(path)
        with context as parent:
            return os.stat(name, dir_fd=parent, follow_symlinks=False)

    def readlink(self, path: Path) -> bytes:
        context, name = self._parent(path)
        with context as parent:
            return os.readlink(name, dir_fd=parent)

    def open_file(self, path: Path, flags: int) -> int:
        """Open for Tlopen: regular files, directories and FIFOs (never blocking); devices refused."""
        flags &= OPEN_FLAGS_ALLOWED
        if self.read_only and (flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC):
            raise error(errno.EROFS)
        fd = self.open(path, flags | os.O_NONBLOCK)
        mode = os.fstat(fd).st_mode
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
            os.close(fd)
            raise error(errno.EACCES)
        return fd

    def create_file(self, directory: Path, name: bytes, flags: int, mode: int) -> int:
        self.check_writable()
        flags = flags & CREATE_FLAGS_ALLOWED | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        with self._dir(directory) as parent:
            return os.open(check_name(name), flags, mode & 0o7777, dir_fd=parent)

    def mkdir(self, directory: Path, name: bytes, mode: int) -> None:
        self.check_writable()
        with self._dir(directory) as parent:
            os.mkdir(check_name(name), mode & 0o7777, dir_fd=parent)

    def symlink(self, directory: Path, name: bytes, target: bytes) -> None:
        self.check_writable()
        if not target or b"\0" in target:
            raise error(errno.EINVAL)
        with self._dir(directory) as parent:
            os.symlink(target, check_name(name), dir_fd=parent)

    def mknod(self, directory: Path, name: bytes, mode: int) -> None:
        self.check_writable()
        kind = stat.S_IFMT(mode)
        if kind not in (stat.S_IFREG, stat.S_IFIFO):
            raise error(errno.EPERM)
        with self._dir(directory) as parent:
            os.mknod(check_name(name), kind | mode & 0o7777, dir_fd=parent)

    def link(self, source: Path, directory: Path, name: bytes) -> None:
        self.check_writable()
        if not source:
            raise error(errno.EPERM)
        with self._dir(source[:-1]) as src_parent, self._dir(directory) as dst_parent:
            os.link(source[-1], check_name(name), src_dir_fd=src_parent, dst_dir_fd=dst_parent,
                    follow_symlinks=False)

    def rename(self, old_dir: Path, old_name: bytes, new_dir: Path, new_name: bytes) -> None:
        self.check_writable()
        with self._dir(old_dir) as src_parent, self._dir(new_dir) as dst_parent:
            os.rename(check_name(old_name), check_name(new_name), src_dir_fd=src_parent, dst_dir_fd=dst_parent)

    def unlink(self, directory: Path, name: bytes, remove_dir: bool) -> None:
        self.check_writable()
        with self._dir(directory) as parent:
            if remove_dir:
                os.rmdir(check_name(name), dir_fd=parent)
            else:
                os.unlink(check_name(name), dir_fd=parent)

    def remove(self, path: Path) -> None:
        """Tremove: the object itself, a directory with rmdir."""
        self.check_writable()
        if not path:
            raise error(errno.EBUSY)
        is_dir = stat.S_ISDIR(self.lstat(path).st_mode)
        self.unlink(path[:-1], path[-1], is_dir)

    # --- Attributes -----------------------------------------------------------------------

    def chmod(self, path: Path, mode: int) -> None:
        self.check_writable()
        context, name = self._parent(path)
        with context as parent:
            if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                raise error(errno.EOPNOTSUPP)  # Linux has no modes on symlinks
            try:
                os.chmod(name, mode & 0o7777, dir_fd=parent, follow_symlinks=False)
            except (NotImplementedError, ValueError):
                raise error(errno.EOPNOTSUPP) from None

    def chown(self, path: Path, uid: int, gid: int) -> None:
        self.check_writable()
        context, name = self._parent(path)
        with context as parent:
            os.chown(name, uid, gid, dir_fd=parent, follow_symlinks=False)

    def truncate(self, path: Path, size: int, fd: int | None = None) -> None:
        """Truncate a regular file, through the fid's open fd when it has a writable one."""
        self.check_writable()
        if fd is not None:
            try:
                os.ftruncate(fd, size)
                return
            except OSError as exc:
                if exc.errno not in (errno.EBADF, errno.EINVAL):
                    raise
        fd = self.open(path, os.O_WRONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise error(errno.EINVAL)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)

    def utime(self, path: Path, atime_ns: int | None, mtime_ns: int | None) -> None:
        """Set the times given (None: keep that one)."""
        self.check_writable()
        context, name = self._parent(path)
        with context as parent:
            if atime_ns is None or mtime_ns is None:
                old = os.stat(name, dir_fd=parent, follow_symlinks=False)
                atime_ns = old.st_atime_ns if atime_ns is None else atime_ns
                mtime_ns = old.st_mtime_ns if mtime_ns is None else mtime_ns
            os.utime(name, ns=(atime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)

    def statvfs(self) -> os.statvfs_result:
        return os.fstatvfs(self.root_fd)

    # --- Directories ----------------------------------------------------------------------

    def list_dir(self, fd: int) -> Iterator[os.DirEntry]:
        """The entries of the open directory `fd`, '.' and '..' not included."""
        with os.scandir(fd) as entries:
            yield from entries
