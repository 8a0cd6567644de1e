"""A static program per x86-64 level (tests/linux/isa_check.c: x87, SSE4.2, AVX2, FMA, BMI2...)
prints the same in a Linux guest under `--accel interp` as on the host.

The guest is told the level (`cpu=level`), so glibc dispatches its string functions as on
such a machine. A level the interpreter does not execute yet is skipped with what it lacks;
so is one the host CPU lacks (no reference output).
"""

from __future__ import annotations

import hashlib
import pathlib
import shutil
import subprocess

import pytest

from kvmpy.cpu_model import LEVELS
from kvmpy.initramfs import NewcArchive, cache_root
from kvmpy.interp.platform import IMPLEMENTED
from kvmpy.linux import run_command

pytestmark = [pytest.mark.linux, pytest.mark.isa]

SOURCE = pathlib.Path(__file__).with_name("isa_check.c")
TIMEOUT = 600


def build(level: str) -> pathlib.Path:
    """The program for `level`, compiled once per source and compiler (cached)."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed (apt install gcc)")
    compiler = subprocess.run(["gcc", "--version"], capture_output=True, text=True).stdout
    key = hashlib.sha256(SOURCE.read_bytes() + compiler.encode()).hexdigest()[:16]
    binary = cache_root() / f"isa-check-{key}" / f"isa-check-{level}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        built = subprocess.run(["gcc", "-static", "-O2", f"-march={level}", "-o", str(tmp), str(SOURCE), "-lm"],
                               capture_output=True, text=True)
        if built.returncode:
            pytest.skip(f"cannot build a static program here (glibc's libc.a?): {built.stderr[-500:]}")
        tmp.replace(binary)
    return binary


def host_features() -> set[str]:
    flags = next(line for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    return set(flags.split(":")[1].split())


@pytest.mark.parametrize("level", list(LEVELS)[:3])
def test_each_instruction_class_gives_the_hosts_results(level, test_kernel, test_initrd, tmp_path):
    missing = LEVELS[level] - IMPLEMENTED
    if missing:
        pytest.skip(f"the interpreter does not execute {level} yet: no {', '.join(sorted(missing))}")
    if LEVELS[level] - host_features():
        pytest.skip(f"this host's CPU is not {level}: no reference output")
    binary = build(level)
    expected = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    extra = NewcArchive()
    extra.add_file("bin/isa-check", binary.read_bytes(), 0o755)
    initrd = tmp_path / "initrd.cpio"
    initrd.write_bytes(pathlib.Path(test_initrd).read_bytes() + extra.finish())  # the kernel unpacks both
    result = run_command(test_kernel, "/bin/isa-check", str(initrd), accel="interp", cpu=level, timeout=TIMEOUT)
    assert result.status == 0, result.console[-3000:]
    assert result.output.splitlines() == expected.splitlines()
