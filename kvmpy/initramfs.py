"""Build, once, the busybox initramfs that kvmpy's test kernel boots into, and cache it.

The archive is an uncompressed cpio in the kernel's "newc" format, written here in Python so
the `cpio` tool is not needed. It holds Debian's static busybox (package busybox-static)
with a symlink per applet, the /init script below (its contract is in README.md), the
few /dev nodes init needs before devtmpfs is mounted, and a minimal /etc. It is cached as

    ${XDG_CACHE_HOME:-~/.cache}/kvmpy/initramfs-<hash>.cpio

where <hash> covers the whole uncompressed archive (so the init script, busybox and the
layout); a cache hit costs one read of busybox.

Command line (boot/linux/build_initramfs.py is the same):
    python3 -m kvmpy.initramfs                       # the archive path
    INITRD=$(python3 -m kvmpy.initramfs --print-path)   # same, messages to stderr

From Python: ensure_initramfs() -> pathlib.Path of the .cpio. It lives in the package
(not only in boot/) because kvmpy's pytest plugin builds it for kernel projects.
Exit status: 0 ok, 1 failure, 2 busybox-static missing.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import pathlib
import stat
import struct
import subprocess
import sys
from typing import TextIO

from . import layout

BUSYBOX = pathlib.Path("/bin/busybox")
BUSYBOX_PACKAGE = "busybox-static"

# I/O ports the VMM watches; init writes them through /dev/port (offset = port number):
# the debug-exit port gets the exit status of kvmpy.cmd (or of the shell), the boot-timer
# port any byte as soon as init starts.
DEBUG_EXIT_PORT = layout.DEBUG_EXIT_PORT
BOOT_TIMER_PORT = layout.BOOT_TIMER_PORT

INIT_SCRIPT = f"""\
#!/bin/sh
# kvmpy initramfs /init. The VMM and the tests rely on this contract (boot/linux/README.md):
# boot-timer byte on port {BOOT_TIMER_PORT:#x}, kvmpy.cmd=<base64> run between the markers
# KVMPY-CMD-BEGIN / KVMPY-CMD-END status=<N>, N reported on port {DEBUG_EXIT_PORT:#x}.
export PATH=/bin HOME=/root

BOOT_TIMER_PORT={BOOT_TIMER_PORT}
DEBUG_EXIT_PORT={DEBUG_EXIT_PORT}

# port_write PORT VALUE: write the byte VALUE & 255 to I/O port PORT via /dev/port.
port_write() {{
    printf "\\\\$(printf %03o $(($2 & 255)))" |
        dd of=/dev/port bs=1 seek="$1" count=1 conv=notrunc 2>/dev/null
}}

# cmdline_param NAME: print the value of NAME=VALUE on the kernel command line, if any.
cmdline_param() {{
    set -f
    for arg in $(cat /proc/cmdline); do
        case "$arg" in "$1"=*) echo "${{arg#"$1"=}}" ;; esac
    done
    set +f
}}

port_write $BOOT_TIMER_PORT 1

mount -t proc proc /proc
mount -t sysfs sysfs /sys
grep -q '^devtmpfs /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

cmd_b64=$(cmdline_param kvmpy.cmd)
if [ -n "$cmd_b64" ]; then
    echo KVMPY-CMD-BEGIN
    if cmd=$(echo "$cmd_b64" | base64 -d); then
        sh -c "$cmd"
        status=$?
    else
        echo "kvmpy init: kvmpy.cmd is not valid base64" >&2
        status=255
    fi
    echo "KVMPY-CMD-END status=$status"
else
    echo KVMPY-SHELL
    setsid cttyhack sh
    status=$?
fi
port_write $DEBUG_EXIT_PORT $status
exec poweroff -f
"""

ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": "root:x:0:\n",
}
DIRECTORIES = {  # path: permission bits
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555, "sys": 0o555,
    "tmp": 0o1777, "mnt": 0o755, "root": 0o700, "usr": 0o755,
}
SYMLINKS = {"sbin": "bin", "usr/bin": "../bin", "usr/sbin": "../bin"}
# Nodes needed before devtmpfs is mounted: the console for init's stdin/stdout (the
# kernel opens it before running /init), port and null for the boot-timer write.
DEVICE_NODES = {  # path: (permission bits, major, minor)
    "dev/console": (0o600, 5, 1),
    "dev/null": (0o666, 1, 3),
    "dev/port": (0o600, 1, 4),
}


class InitramfsError(Exception):
    """The initramfs could not be built; the message is one line for the user."""


class MissingPrerequisites(InitramfsError):
    """busybox-static is missing; the message names the apt package."""


class NewcArchive:
    """Accumulates a cpio archive in the "newc" (SVR4, no checksum) format.

    Each entry is the 110-byte ASCII header "070701" + 13 eight-digit hex fields, the
    NUL-terminated name, padding to 4 bytes, the data, padding to 4 bytes; a
    "TRAILER!!!" entry ends the archive. All timestamps are 0 so output is reproducible.
    """

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._next_ino = 1

    def _add(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
             nlink: int = 1) -> None:
        encoded = name.encode() + b"\0"
        fields = (self._next_ino, mode, 0, 0, nlink, 0, len(data), 0, 0, *rdev,
                  len(encoded), 0)  # ino mode uid gid nlink mtime size dev(2) rdev(2) namesize check
        self._next_ino += 1
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._chunks += [header, encoded, _pad4(len(header) + len(encoded)), data,
                         _pad4(len(data))]

    def add_dir(self, name: str, perm: int) -> None:
        self._add(name, stat.S_IFDIR | perm, nlink=2)

    def add_file(self, name: str, data: bytes, perm: int) -> None:
        self._add(name, stat.S_IFREG | perm, data)

    def add_symlink(self, name: str, target: str) -> None:
        self._add(name, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, name: str, perm: int, major: int, minor: int) -> None:
        self._add(name, stat.S_IFCHR | perm, rdev=(major, minor))

    def finish(self) -> bytes:
        """Append the trailer and return the whole archive."""
        self._add("TRAILER!!!", 0)
        return b"".join(self._chunks)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def cache_root() -> pathlib.Path:
    """${XDG_CACHE_HOME:-~/.cache}/kvmpy, shared with build_kernel.py."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "kvmpy"


def newest_cached(pattern: str, accept=lambda path: True) -> str | None:
    """The most recently built path under cache_root() matching the glob `pattern` (and
    `accept`), or None: how the benchmarks find what the builders made."""
    found = [path for path in glob.glob(os.path.join(cache_root(), pattern)) if accept(path)]
    return max(found, key=os.path.getmtime) if found else None


def _is_static_elf(data: bytes) -> bool:
    """True for a 64-bit little-endian ELF without a PT_INTERP (dynamic loader) header."""
    if data[:6] != b"\x7fELF\x02\x01":
        return False
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    pt_interp = 3
    return all(struct.unpack_from("<I", data, phoff + i * phentsize)[0] != pt_interp
               for i in range(phnum))


def read_busybox() -> tuple[bytes, list[str]]:
    """Return the static busybox binary and its applet names, or explain what to install."""
    install = f"install it with: apt-get install -y {BUSYBOX_PACKAGE}"
    if not BUSYBOX.is_file():
        raise MissingPrerequisites(f"{BUSYBOX} not found; {install}")
    data = BUSYBOX.read_bytes()
    if not _is_static_elf(data):
        raise MissingPrerequisites(f"{BUSYBOX} is not a static x86-64 binary; {install}")
    out = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True)
    applets = [a for a in out.stdout.split() if a != "busybox" and "/" not in a]
    if out.returncode != 0 or not applets:
        raise InitramfsError(f"`{BUSYBOX} --list` failed (exit {out.returncode})")
    return data, applets


def build_archive(busybox: bytes, applets: list[str]) -> bytes:
    """The uncompressed newc archive: layout, busybox and applet links, /init, /etc."""
    archive = NewcArchive()
    for name, perm in DIRECTORIES.items():
        archive.add_dir(name, perm)
    for name, target in SYMLINKS.items():
        archive.add_symlink(name, target)
    for name, (perm, major, minor) in DEVICE_NODES.items():
        archive.add_chardev(name, perm, major, minor)
    for name, text in ETC_FILES.items():
        archive.add_file(name, text.encode(), 0o644)
    archive.add_file("bin/busybox", busybox, 0o755)
    for applet in sorted(applets):
        archive.add_symlink(f"bin/{applet}", "busybox")
    archive.add_file("init", INIT_SCRIPT.encode(), 0o755)
    return archive.finish()


def ensure_initramfs(stream: TextIO = sys.stderr) -> pathlib.Path:
    """Return the cached initramfs path, writing it first if needed.

    Messages go to `stream`. Raises MissingPrerequisites or InitramfsError.
    """
    archive = build_archive(*read_busybox())
    digest = hashlib.sha256(archive).hexdigest()[:16]
    # Uncompressed: the kernel unpacks the initramfs in ring 0, which some hosts' KVM emulates
    # instruction by instruction; gunzip there cost ~55 s of a ~125 s boot (2 MiB vs 1 MiB).
    path = cache_root() / f"initramfs-{digest}.cpio"
    if path.is_file():
        return path
    print(f"writing {path}", file=stream, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(archive)
    tmp.replace(path)  # atomic: concurrent callers write identical bytes
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-path", action="store_true",
                        help="print only the archive path on stdout; messages go to stderr")
    args = parser.parse_args(argv)
    try:
        path = ensure_initramfs(sys.stderr if args.print_path else sys.stdout)
    except MissingPrerequisites as e:
        print(f"build_initramfs: {e}", file=sys.stderr)
        return 2
    except (InitramfsError, OSError) as e:
        print(f"build_initramfs: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
