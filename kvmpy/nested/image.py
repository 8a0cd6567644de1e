"""Build, once, the lane's outer kernel and initramfs from Debian's packages, and cache them.

The outer kernel is Debian's stock one (the package `linux-image-amd64` depends on), because
its modules carry what the lane needs: `kvm_amd` (AMD-V, which QEMU's TCG emulates), virtio-9p
and overlayfs. The initramfs holds Debian's static busybox, exactly those modules with their
dependencies in load order, and the /init of INIT_SCRIPT. Both are cached as

    ${XDG_CACHE_HOME:-~/.cache}/kvmpy/nested-<hash>/{vmlinuz,lane.cpio}

where <hash> covers the kernel package's file name (so its version), the init script, the
module list and busybox. A cache hit asks apt for the package name and reads busybox; it
downloads nothing.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from typing import NamedTuple, TextIO

from ..initramfs import DEVICE_NODES, DIRECTORIES, SYMLINKS, NewcArchive, cache_root, read_busybox
from ..initramfs import InitramfsError

KERNEL_METAPACKAGE = "linux-image-amd64"
# What the lane loads, by module name; their dependencies come along.
MODULES = ("kvm_amd", "9p", "9pnet_virtio", "virtio_pci", "overlay", "tun")
HOST_ROOT_TAG = "hostroot"  # the 9p mount tag of the host's / (read-only)
JOB_TAG = "job"  # the 9p mount tag of the job directory (read-write): command, env, status
# While the outer kernel runs, its init touches job/HEARTBEAT_FILE every HEARTBEAT_INTERVAL
# seconds: the host tells an outer VM that froze from a command that is quiet.
HEARTBEAT_FILE = "heartbeat"
HEARTBEAT_INTERVAL = 2

# The outer VM's /init. The job directory (kvmpy.lane.job=PATH on the command line) holds
# command.sh and the list of writable shares; the init runs the command in a chroot of the host's / with a tmpfs overlay, its output on
# the console between the markers KVMPY-LANE-BEGIN / KVMPY-LANE-END, its status in job/status.
INIT_SCRIPT = f"""\
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

cmdline_param() {{
    for arg in $(cat /proc/cmdline); do
        case "$arg" in "$1"=*) echo "${{arg#"$1"=}}" ;; esac
    done
}}

fail() {{
    echo "kvmpy lane: $*"
    echo "KVMPY-LANE-FAILED $*"
    poweroff -f
}}

for module in $(cat /lib/modules/load-order); do
    insmod "/lib/modules/$module" || fail "insmod $module failed"
done
echo "KVMPY-LANE-KERNEL $(uname -r)"
dmesg | grep -E 'kvm:|SVM:' | sed 's/^/KVMPY-LANE-KVM /'
[ -c /dev/kvm ] || fail "no /dev/kvm: kvm_amd did not load (does the CPU model have svm?)"

job=$(cmdline_param kvmpy.lane.job)
[ -n "$job" ] || fail "no kvmpy.lane.job= on the command line"
mkdir -p /host /rw /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose {HOST_ROOT_TAG} /host \\
    || fail "cannot mount the host's / over 9p"
mount -t tmpfs -o size=75% tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot \\
    || fail "cannot put an overlay on the host's /"
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mount -t tmpfs tmpfs /newroot/run
mkdir -p "/newroot$job"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 {JOB_TAG} "/newroot$job" \\
    || fail "cannot mount the job directory over 9p"
# job/shares: "TAG PATH" per line, host directories shared writable at the same path inside
while read -r tag path; do
    mkdir -p "/newroot$path"
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 "$tag" "/newroot$path" \\
        || fail "cannot mount the writable share $path"
done < "/newroot$job/shares"
hostname kvmpy-lane

( while :; do touch "/newroot$job/{HEARTBEAT_FILE}"; sleep {HEARTBEAT_INTERVAL}; done ) </dev/null >/dev/null 2>&1 &
heartbeat=$!

echo KVMPY-LANE-BEGIN
chroot /newroot /bin/sh "$job/command.sh" </dev/null
status=$?
kill $heartbeat
echo "KVMPY-LANE-END status=$status"
echo "$status" > "/newroot$job/status"
sync
umount "/newroot$job"
poweroff -f
"""


class LaneUnavailable(Exception):
    """The lane cannot be built or run here; the message says what is missing, in one line."""


class LaneImage(NamedTuple):
    kernel: pathlib.Path
    initrd: pathlib.Path
    release: str  # the outer kernel's release, e.g. 6.1.0-57-amd64


def kernel_package() -> str:
    """The versioned kernel package Debian's metapackage points at (e.g. linux-image-6.1.0-57-amd64)."""
    try:
        out = subprocess.run(["apt-cache", "depends", KERNEL_METAPACKAGE], capture_output=True, text=True)
    except FileNotFoundError:
        raise LaneUnavailable("apt-cache not found: the lane takes its kernel from Debian's packages") from None
    match = re.search(r"Depends:\s*(linux-image-\S+)", out.stdout)
    if not match:
        raise LaneUnavailable(f"apt knows no {KERNEL_METAPACKAGE} (run 'apt-get update' first)")
    return match.group(1)


def module_index(tree: pathlib.Path) -> dict[str, pathlib.Path]:
    """Module name (with '_' for '-') -> its .ko file below `tree`."""
    return {path.stem.replace("-", "_"): path for path in tree.rglob("*.ko")}


def module_dependencies(ko: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo section: the modules it needs loaded first."""
    match = re.search(rb"\0depends=([^\0]*)\0", ko)
    if not match:
        return []
    return [name.replace("-", "_") for name in match.group(1).decode().split(",") if name]


def load_order(wanted: tuple[str, ...], index: dict[str, pathlib.Path]) -> list[str]:
    """`wanted` and everything they depend on, each after its dependencies (built-ins omitted:
    a name absent from `index` is taken to be built into the kernel)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name not in index:
            return
        if name in visiting:
            raise LaneUnavailable(f"module dependency loop at {name}")
        visiting.add(name)
        for dependency in module_dependencies(index[name].read_bytes()):
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        if name not in index:
            raise LaneUnavailable(f"the outer kernel has no module {name}")
        visit(name)
    return order


def build_archive(busybox: bytes, applets: list[str], modules: list[tuple[str, bytes]]) -> bytes:
    """The outer VM's newc initramfs: busybox, the modules in load order, /init."""
    archive = NewcArchive()
    for name, perm in {**DIRECTORIES, "lib": 0o755, "lib/modules": 0o755}.items():
        archive.add_dir(name, perm)
    for name, target in SYMLINKS.items():
        archive.add_symlink(name, target)
    for name, (perm, major, minor) in DEVICE_NODES.items():
        archive.add_chardev(name, perm, major, minor)
    archive.add_file("bin/busybox", busybox, 0o755)
    for applet in sorted(applets):
        archive.add_symlink(f"bin/{applet}", "busybox")
    for file_name, data in modules:
        archive.add_file(f"lib/modules/{file_name}", data, 0o644)
    archive.add_file("lib/modules/load-order", "".join(f"{name}\n" for name, _ in modules).encode(), 0o644)
    archive.add_file("init", INIT_SCRIPT.encode(), 0o755)
    return archive.finish()


def _cache_key(package: str, busybox: bytes) -> str:
    digest = hashlib.sha256()
    for part in (package.encode(), INIT_SCRIPT.encode(), " ".join(MODULES).encode(), busybox):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _extract_package(package: str, work: pathlib.Path, stream: TextIO) -> pathlib.Path:
    """Download `package` with apt and unpack it below `work`; return the unpacked tree."""
    print(f"kvmpy lane: downloading {package}", file=stream, flush=True)
    download = subprocess.run(["apt-get", "download", "-q", package], cwd=work, capture_output=True, text=True)
    debs = list(work.glob("*.deb"))
    if download.returncode != 0 or not debs:
        raise LaneUnavailable(f"apt-get download {package} failed: {download.stderr.strip()[-300:]}")
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True)
    return tree


def ensure_lane_image(stream: TextIO) -> LaneImage:
    """Return the cached outer kernel and initramfs, building them first if needed.

    Raises LaneUnavailable (busybox-static or apt missing, download failed, a module absent).
    """
    package = kernel_package()
    release = package.removeprefix("linux-image-")
    try:
        busybox, applets = read_busybox()
    except InitramfsError as error:
        raise LaneUnavailable(str(error)) from None
    directory = cache_root() / f"nested-{_cache_key(package, busybox)}"
    image = LaneImage(directory / "vmlinuz", directory / "lane.cpio", release)
    if image.kernel.is_file() and image.initrd.is_file():
        return image
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=".nested-") as temporary:
        work = pathlib.Path(temporary)
        tree = _extract_package(package, work, stream)
        index = module_index(tree / "lib" / "modules" / release)
        modules = [(index[name].name, index[name].read_bytes()) for name in load_order(MODULES, index)]
        staging = work / "out"
        staging.mkdir()
        shutil.copyfile(tree / "boot" / f"vmlinuz-{release}", staging / "vmlinuz")
        (staging / "lane.cpio").write_bytes(build_archive(busybox, applets, modules))
        print(f"kvmpy lane: outer kernel {release}, modules {' '.join(n for n, _ in modules)}", file=stream,
              flush=True)
        try:
            os.rename(staging, directory)  # atomic; a concurrent builder that won leaves its copy
        except OSError:
            if not image.kernel.is_file():
                raise
    return image
