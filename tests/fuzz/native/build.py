"""Build the interpreter's libFuzzer target with clang, AddressSanitizer and
UndefinedBehaviorSanitizer, cached under ~/.cache/kvmpy/fuzz/ by a hash of its sources.

Comparison tracing (-fsanitize-coverage=trace-cmp) is left out: it made each input three
times slower, and edge coverage alone reaches the same instructions (an opcode is one byte
a mutation finds anyway).  clang and its libFuzzer runtime come from the distribution
(Debian: `apt install clang libclang-rt-14-dev`); where they are missing the target is
unavailable, with that reason."""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import subprocess

from kvmpy.initramfs import cache_root

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent.parent
INTERP_SOURCES = REPO / "native" / "interp"
HARNESS = HERE / "interp_fuzz.c"
CACHE = cache_root() / "fuzz"  # the built binary; run.py keeps corpora and crashes beside it
FLAGS = ["-g", "-O1", "-pthread", "-std=gnu11", "-fno-strict-aliasing",
         "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-sanitize-coverage=trace-cmp"]


class Unavailable(Exception):
    """This target cannot be built here; the message says why and what to install."""


def _sources() -> list[pathlib.Path]:
    return sorted(INTERP_SOURCES.glob("*.c")) + [HARNESS]


def _digest() -> str:
    digest = hashlib.sha256(" ".join(FLAGS).encode())
    for path in _sources() + sorted(INTERP_SOURCES.glob("*.h")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def interp_binary() -> pathlib.Path:
    """The built target (built now if its sources changed)."""
    binary = CACHE / f"interp_fuzz-{_digest()}"
    if binary.exists():
        return binary
    clang = shutil.which("clang")
    if clang is None:
        raise Unavailable("no clang (apt install clang libclang-rt-14-dev)")
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    build = subprocess.run([clang, *FLAGS, f"-I{INTERP_SOURCES}", *map(str, _sources()), "-lm", "-o", str(partial)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        if "libclang_rt.fuzzer" in build.stderr or "fuzzer" in build.stderr and "cannot find" in build.stderr:
            raise Unavailable("clang has no libFuzzer runtime (apt install libclang-rt-14-dev)")
        raise RuntimeError(f"building the interpreter's fuzz target failed:\n{build.stderr[-3000:]}")
    partial.rename(binary)  # whole or not at all: an interrupted build leaves no binary behind
    return binary
