#!/usr/bin/env python3
"""Build, once, a Debian 12 system image kvmpy boots end to end, and cache it.

`debootstrap` (minbase, from the package registry apt already uses) installs systemd, udev,
iproute2, python3 and Debian's stock kernel, whose own initramfs-tools initrd is generated
inside the image, unmodified. One unit is added: at multi-user.target it prints the system
state and any failed unit, runs the command given base64-encoded as `kvmpy.cmd=` on the
kernel command line between the markers kvmpy's initramfs uses, and powers off with
`systemctl poweroff`. The serial console is that unit's: the getty systemd would start on
ttyS0 is masked (its vhangup() would cut the unit's output off). The root file system
becomes an ext4 image (`mkfs.ext4 -d`).

Cached under ${XDG_CACHE_HOME:-~/.cache}/kvmpy/distro-<hash>/{vmlinuz,initrd.img,rootfs.img}, where
<hash> covers this file; a cache hit returns at once. Boot it with
    kvmpy run vmlinuz --initrd initrd.img --disk COPY_OF_rootfs.img --mem 1G \\
        --cmdline "console=ttyS0 root=/dev/vda"

    python3 boot/distro/build_image.py [--print-dir]
Exit status: 0 ok, 1 build failure, 2 missing prerequisites (named).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
from typing import NamedTuple, TextIO

HERE = pathlib.Path(__file__).resolve()
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("systemd", "systemd-sysv", "udev", "iproute2", "python3", "linux-image-amd64", "initramfs-tools")
IMAGE_SIZE = "2G"
READY_MARKER = "KVMPY-MULTI-USER"  # printed by the unit once multi-user.target is reached

COMMAND_SCRIPT = f"""#!/bin/sh
# kvmpy: multi-user.target is up; report it, run kvmpy.cmd from the kernel command line, power off.
echo "{READY_MARKER} state=$(systemctl is-system-running)"
systemctl --failed --no-legend --plain | sed 's/^/KVMPY-FAILED-UNIT /'
cmd_b64=$(tr ' ' '\\n' < /proc/cmdline | sed -n 's/^kvmpy\\.cmd=//p')
echo KVMPY-CMD-BEGIN
if [ -n "$cmd_b64" ] && cmd=$(echo "$cmd_b64" | base64 -d); then
    sh -c "$cmd"
    status=$?
else
    status=255
fi
echo "KVMPY-CMD-END status=$status"
systemctl poweroff
"""

COMMAND_UNIT = """[Unit]
Description=kvmpy: run the command from the kernel command line, then power off
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/kvmpy-command
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
"""

FILES = {
    "etc/fstab": "/dev/vda / ext4 defaults 0 1\n",
    "etc/hostname": "kvmpy-debian\n",
    "usr/local/sbin/kvmpy-command": COMMAND_SCRIPT,
    "etc/systemd/system/kvmpy-command.service": COMMAND_UNIT,
}
REQUIRED_TOOLS = {"debootstrap": "debootstrap", "mkfs.ext4": "e2fsprogs"}


class DistroImage(NamedTuple):
    kernel: pathlib.Path
    initrd: pathlib.Path
    rootfs: pathlib.Path  # boot a copy: the guest writes to its root file system


class BuildError(Exception):
    """The image could not be built; the message is one line."""


class MissingPrerequisites(BuildError):
    """A tool is missing, or this is not root; the message says what to install or do."""


def cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    key = hashlib.sha256(HERE.read_bytes()).hexdigest()[:16]
    return pathlib.Path(base) / "kvmpy" / f"distro-{key}"


def _image(directory: pathlib.Path) -> DistroImage:
    return DistroImage(directory / "vmlinuz", directory / "initrd.img", directory / "rootfs.img")


def check_prerequisites() -> None:
    missing = [package for tool, package in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    if missing:
        raise MissingPrerequisites(f"install them with: apt-get install -y {' '.join(missing)}")
    if os.geteuid() != 0:
        raise MissingPrerequisites("debootstrap needs root")


def _run(command: list[str], log: TextIO) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        raise BuildError(f"`{' '.join(command[:3])} ...` failed (exit {result.returncode}); log: {log.name}")


def _build(directory: pathlib.Path, stream: TextIO) -> None:
    work = pathlib.Path(tempfile.mkdtemp(prefix="kvmpy-distro-", dir=directory.parent))
    work.chmod(0o755)
    root = work / "root"
    try:
        with open(work / "build.log", "w") as log:
            print(f"kvmpy distro: debootstrap {SUITE} ({', '.join(PACKAGES)}), a few minutes", file=stream, flush=True)
            _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(root), MIRROR], log)
            for relative, text in FILES.items():
                path = root / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            (root / "usr/local/sbin/kvmpy-command").chmod(0o755)
            wants = root / "etc/systemd/system/multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            (wants / "kvmpy-command.service").symlink_to("/etc/systemd/system/kvmpy-command.service")
            (root / "etc/systemd/system/serial-getty@ttyS0.service").symlink_to("/dev/null")
            shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
            (root / "var/cache/apt/archives/partial").mkdir(parents=True)
            kernels = sorted((root / "boot").glob("vmlinuz-*"))
            initrds = sorted((root / "boot").glob("initrd.img-*"))
            if not kernels or not initrds:
                raise BuildError(f"the image has no kernel or no initrd in /boot; log: {log.name}")
            shutil.copyfile(kernels[-1], work / "vmlinuz")
            shutil.copyfile(initrds[-1], work / "initrd.img")
            print("kvmpy distro: making the ext4 root file system", file=stream, flush=True)
            _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(work / "rootfs.img"), IMAGE_SIZE], log)
        shutil.rmtree(root)
        work.rename(directory)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_distro_image(stream: TextIO = sys.stderr) -> DistroImage:
    """The cached image, built first if needed. Raises MissingPrerequisites or BuildError."""
    directory = cache_dir()
    if _image(directory).rootfs.is_file():
        return _image(directory)
    check_prerequisites()
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / ".distro.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _image(directory).rootfs.is_file():
            _build(directory, stream)
    return _image(directory)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-dir", action="store_true", help="print only the image's directory on stdout")
    args = parser.parse_args()
    try:
        image = ensure_distro_image(sys.stderr if args.print_dir else sys.stdout)
    except MissingPrerequisites as missing:
        print(f"build_image: {missing}", file=sys.stderr)
        return 2
    except (BuildError, OSError) as error:
        print(f"build_image: error: {error}", file=sys.stderr)
        return 1
    print(image.rootfs.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
