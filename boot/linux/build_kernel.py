#!/usr/bin/env python3
"""Build, once, a Linux kernel that kvmpy boots, and cache it. Two flavours:

- `test` (default): the minimal test kernel, `make tinyconfig` plus config.fragment;
- `defconfig` (--defconfig): the kernel most developers build, `make x86_64_defconfig` plus
  the kernel's own kernel/configs/kvm_guest.config, unmodified: virtio-pci only, no virtio-mmio.

Both come from the distro's Linux 6.1 source (Debian package linux-source-6.1). Results are
cached under

    ${XDG_CACHE_HOME:-~/.cache}/kvmpy/kernel-<hash>/{bzImage,vmlinux,config}          (test)
    ${XDG_CACHE_HOME:-~/.cache}/kvmpy/kernel-defconfig-<hash>/{bzImage,vmlinux,config}

where <hash> covers the flavour's configuration, the source tarball's name and size, and the
source edits in PATCHES; a cache hit returns at once. Each flavour's extracted source tree is
kept in the cache too (kvmpy/linux-src-<hash>[-defconfig]/), so a changed fragment rebuilds
incrementally.

Command line:
    python3 boot/linux/build_kernel.py [--defconfig]     # steps, then the bzImage path
    KERNEL=$(python3 boot/linux/build_kernel.py --print-path)   # steps go to stderr

From Python: ensure_kernel(flavour="test") -> pathlib.Path of bzImage (vmlinux and config beside it).
Exit status: 0 ok, 1 build failure, 2 missing prerequisites (the apt packages are named).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from typing import Iterator, NamedTuple, TextIO

HERE = pathlib.Path(__file__).resolve().parent
FRAGMENT = HERE / "config.fragment"
SOURCE_TARBALL = pathlib.Path("/usr/src/linux-source-6.1.tar.xz")
SOURCE_PACKAGE = "linux-source-6.1"
ARCH = "x86_64"

# Build tools (found on PATH) and headers, each with the Debian package providing it.
REQUIRED_TOOLS = {
    "make": "make", "gcc": "gcc", "flex": "flex", "bison": "bison", "bc": "bc",
    "tar": "tar", "xz": "xz-utils", "lz4": "lz4",
}
REQUIRED_HEADERS = {
    "/usr/include/libelf.h": "libelf-dev",
    "/usr/include/openssl/opensslv.h": "libssl-dev",
}

# Edits to the extracted source: (file, exact old text, new text). They are part of the
# cache key. DEVPORT (/dev/port) depends on "ISA || PCI", but x86_64 has no ISA symbol and
# kvmpy has no PCI; the driver itself only needs inb/outb, which x86 always provides.
PATCHES = (
    ("drivers/char/Kconfig",
     'config DEVPORT\n\tbool "/dev/port character device"\n\tdepends on ISA || PCI\n',
     'config DEVPORT\n\tbool "/dev/port character device"\n'),
)


class Flavour(NamedTuple):
    name: str
    base_target: str  # the make target the configuration starts from
    fragment: pathlib.Path | str  # merged on top: a file of this folder, or a path in the source tree
    cache_prefix: str
    source_suffix: str


FLAVOURS = {
    "test": Flavour("test", "tinyconfig", FRAGMENT, "kernel", ""),
    "defconfig": Flavour("defconfig", "x86_64_defconfig", "kernel/configs/kvm_guest.config",
                         "kernel-defconfig", "-defconfig"),
}

STEPS = 5
# A kbuild line announcing an object being compiled or assembled, e.g. "  CC      mm/slub.o".
OBJECT_LINE = re.compile(r"^  (CC|AS)\s+\S+\.o$")
PROGRESS_PERIOD_S = 30.0  # how often to print a progress line when not on a terminal
LOG_TAIL_LINES = 25  # lines of the make log shown when a step fails


class BuildError(Exception):
    """The kernel could not be built; the message is one line for the user."""


class MissingPrerequisites(BuildError):
    """A tool, header or the source tarball is missing; the message names the apt packages."""


def cache_root() -> pathlib.Path:
    """${XDG_CACHE_HOME:-~/.cache}/kvmpy, shared with build_initramfs.py."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "kvmpy"


def _digest(*parts: bytes) -> str:
    """First 16 hex digits of sha256 over the NUL-separated parts."""
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:16]


def source_key() -> str:
    """Identifies the patched source tree: tarball name and size plus PATCHES."""
    size = SOURCE_TARBALL.stat().st_size
    return _digest(SOURCE_TARBALL.name.encode(), str(size).encode(), repr(PATCHES).encode())


def kernel_dir(flavour: Flavour = FLAVOURS["test"]) -> pathlib.Path:
    """The cache directory for the flavour's configuration and the current source."""
    configuration = FRAGMENT.read_bytes() if flavour.name == "test" else repr(flavour).encode()
    return cache_root() / f"{flavour.cache_prefix}-{_digest(configuration, source_key().encode())}"


def fragment_path(flavour: Flavour, tree: pathlib.Path) -> pathlib.Path:
    return flavour.fragment if isinstance(flavour.fragment, pathlib.Path) else tree / flavour.fragment


def check_prerequisites() -> None:
    """Raise MissingPrerequisites naming every missing apt package."""
    missing = [pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None]
    missing += [pkg for path, pkg in REQUIRED_HEADERS.items() if not os.path.exists(path)]
    if not SOURCE_TARBALL.is_file():
        missing.insert(0, SOURCE_PACKAGE)
    if missing:
        raise MissingPrerequisites(
            f"missing build prerequisites; install them with: apt-get install -y {' '.join(missing)}")


def parse_fragment(text: str) -> dict[str, str | None]:
    """Map each CONFIG_ symbol in a .config-style text to its value (None = "is not set")."""
    options: dict[str, str | None] = {}
    for line in text.splitlines():
        if m := re.fullmatch(r"(CONFIG_\w+)=(.*)", line.strip()):
            options[m[1]] = m[2]
        elif m := re.fullmatch(r"# (CONFIG_\w+) is not set", line.strip()):
            options[m[1]] = None
    return options


def config_mismatches(wanted: dict[str, str | None], config_text: str) -> list[str]:
    """Describe each wanted option that the final .config does not honour."""
    have = parse_fragment(config_text)
    problems = []
    for name, value in wanted.items():
        got = have.get(name)
        if got != value:
            problems.append(f"{name}={value if value is not None else 'n'} "
                            f"(got {got if got is not None else 'n'})")
    return problems


class Reporter:
    """Step messages and build progress, to a terminal (updating line) or a log (periodic)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()

    def step(self, n: int, text: str) -> None:
        print(f"[{n}/{STEPS}] {text}", file=self.stream, flush=True)

    def progress(self, text: str, final: bool = False) -> None:
        if self.tty:
            print(f"\r\033[K      {text}", end="\n" if final else "", file=self.stream, flush=True)
        else:
            print(f"      {text}", file=self.stream, flush=True)


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive lock so concurrent builds (e.g. parallel tests) take turns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _run_logged(cmd: list[str], cwd: pathlib.Path, log: pathlib.Path) -> None:
    """Run a quiet command, appending its output to the log; raise BuildError on failure."""
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        _fail(f"`{' '.join(cmd)}` failed (exit {rc})", log)


def _fail(what: str, log: pathlib.Path) -> None:
    """Show the end of the log on stderr, then raise one clear BuildError line."""
    lines = log.read_text(errors="replace").splitlines()
    print("\n".join(lines[-LOG_TAIL_LINES:]), file=sys.stderr)
    raise BuildError(f"{what}; full log: {log}")


def extract_source(rep: Reporter, flavour: Flavour) -> pathlib.Path:
    """Extract and patch the flavour's source tree once; return it (reused across builds)."""
    work = cache_root() / f"linux-src-{source_key()}{flavour.source_suffix}"
    tree = work / SOURCE_TARBALL.name.removesuffix(".tar.xz")
    stamp = work / ".extracted"
    if stamp.exists():
        rep.step(1, f"source already extracted in {tree}")
        return tree
    rep.step(1, f"extracting {SOURCE_TARBALL} to {work}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rc = subprocess.run(["tar", "-xJf", str(SOURCE_TARBALL), "-C", str(work)]).returncode
    if rc != 0 or not (tree / "Makefile").is_file():
        raise BuildError(f"extracting {SOURCE_TARBALL} failed (tar exit {rc})")
    for rel, old, new in PATCHES:
        path = tree / rel
        text = path.read_text()
        if text.count(old) != 1:
            raise BuildError(f"cannot patch {path}: expected text not found exactly once")
        path.write_text(text.replace(old, new))
    stamp.touch()
    return tree


def configure(tree: pathlib.Path, log: pathlib.Path, rep: Reporter, flavour: Flavour) -> str:
    """The base configuration + the fragment (merge_config.sh -m) + olddefconfig; the .config text."""
    fragment = fragment_path(flavour, tree)
    rep.step(2, f"configuring: {flavour.base_target} + {fragment.name}")
    _run_logged(["make", f"ARCH={ARCH}", flavour.base_target], tree, log)
    _run_logged(["scripts/kconfig/merge_config.sh", "-m", ".config", str(fragment)], tree, log)
    _run_logged(["make", f"ARCH={ARCH}", "olddefconfig"], tree, log)
    return (tree / ".config").read_text()


def verify_config(config_text: str, rep: Reporter, fragment: pathlib.Path, flavour: Flavour) -> None:
    """Fail loudly if Kconfig dropped or changed any fragment option (unmet dependencies). The
    kernel's own fragments name other architectures' options too (S390_GUEST): those, which
    this architecture's Kconfig does not know, are left out."""
    wanted = parse_fragment(fragment.read_text())
    if flavour.name != "test":
        known = set(parse_fragment(config_text))
        wanted = {name: value for name, value in wanted.items() if name in known}
    rep.step(3, f"verifying that all {len(wanted)} options of {fragment.name} hold")
    problems = config_mismatches(wanted, config_text)
    if problems:
        raise BuildError(f"Kconfig did not honour {fragment.name} (unmet dependencies?): "
                         + ", ".join(problems))


def build(tree: pathlib.Path, log: pathlib.Path, rep: Reporter) -> None:
    """make bzImage (which also links vmlinux), reporting how many objects were compiled."""
    jobs = len(os.sched_getaffinity(0))
    rep.step(4, f"building bzImage with make -j{jobs} (a few minutes)")
    start = last_report = time.monotonic()
    compiled = 0
    with open(log, "a") as f:
        proc = subprocess.Popen(["make", f"ARCH={ARCH}", f"-j{jobs}", "bzImage"], cwd=tree,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            f.write(line)
            if OBJECT_LINE.match(line.rstrip("\n")):
                compiled += 1
            now = time.monotonic()
            if now - last_report >= (0.5 if rep.tty else PROGRESS_PERIOD_S):
                rep.progress(f"{compiled} objects compiled, {now - start:.0f}s")
                last_report = now
        rc = proc.wait()
    if rc != 0:
        _fail(f"make bzImage failed (exit {rc})", log)
    rep.progress(f"{compiled} objects compiled in {time.monotonic() - start:.0f}s", final=True)


def store(tree: pathlib.Path, dest: pathlib.Path, rep: Reporter) -> None:
    """Copy bzImage, vmlinux and .config into the cache, atomically (rename of a temp dir)."""
    rep.step(5, f"caching in {dest}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for src, name in ((f"arch/{ARCH}/boot/bzImage", "bzImage"), ("vmlinux", "vmlinux"),
                      (".config", "config")):
        shutil.copyfile(tree / src, tmp / name)
    tmp.rename(dest)


def ensure_kernel(stream: TextIO = sys.stderr, flavour: str = "test") -> pathlib.Path:
    """Return the cached bzImage path of the flavour, building the kernel first if needed.

    Step messages go to `stream`. Raises MissingPrerequisites or BuildError.
    """
    if not SOURCE_TARBALL.is_file():
        check_prerequisites()  # raises, naming the source package and whatever else is missing
    chosen = FLAVOURS[flavour]
    dest = kernel_dir(chosen)
    bzimage = dest / "bzImage"
    if bzimage.is_file():  # a cache hit needs the tarball (for the key) but no build tools
        return bzimage
    check_prerequisites()
    with _locked(cache_root() / ".kernel.lock"):
        if bzimage.is_file():  # built by a concurrent caller while we waited
            return bzimage
        rep = Reporter(stream)
        tree = extract_source(rep, chosen)
        log = tree.parent / "build.log"
        log.write_text("")
        verify_config(configure(tree, log, rep, chosen), rep, fragment_path(chosen, tree), chosen)
        build(tree, log, rep)
        store(tree, dest, rep)
    return bzimage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print-path", action="store_true",
                        help="print only the bzImage path on stdout; step messages go to stderr")
    parser.add_argument("--defconfig", action="store_true",
                        help="the defconfig flavour: x86_64_defconfig + kvm_guest.config (virtio-pci only)")
    args = parser.parse_args(argv)
    try:
        path = ensure_kernel(sys.stderr if args.print_path else sys.stdout,
                             "defconfig" if args.defconfig else "test")
    except MissingPrerequisites as e:
        print(f"build_kernel: {e}", file=sys.stderr)
        return 2
    except (BuildError, OSError) as e:
        print(f"build_kernel: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("build_kernel: interrupted", file=sys.stderr)
        return 130
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
