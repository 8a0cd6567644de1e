"""kvmpy exec's job files (what its init reads) and its C header, without a VM."""

import pytest

from kvmpy.errors import ConfigError
from kvmpy.exec.contract import c_header
from kvmpy.exec.job import DEFAULT_PATH, make_job, write_job

pytestmark = pytest.mark.exec


def test_the_job_files_are_nul_separated_strings(tmp_path):
    writable = tmp_path / "w"
    writable.mkdir()
    job = make_job(["sh", "-c", "echo 'a b'"], cwd=str(tmp_path), rw=[str(writable)], terminals=(True, False),
                   environ={"HOME": "/h", "LANG": "C", "SECRET": "x"})
    write_job(job, tmp_path)
    assert (tmp_path / "argv").read_bytes() == b"sh\0-c\0echo 'a b'\0"
    assert (tmp_path / "env").read_bytes() == f"HOME=/h\0LANG=C\0PATH={DEFAULT_PATH}\0".encode()
    assert (tmp_path / "cwd").read_bytes() == f"{tmp_path}\0".encode()
    assert (tmp_path / "rw").read_bytes() == f"kvmpy-rw0\0{writable}\0".encode()
    assert (tmp_path / "tty").read_bytes() == b"1\x000\0"


@pytest.mark.parametrize("arguments, message", [
    (dict(argv=[]), "no command given"),
    (dict(argv=["true"], rw=["/nonexistent/kvmpy"]), "no such directory"),
    (dict(argv=["true"], rw=[__file__]), "not a directory"),
    (dict(argv=["a\0b"]), "NUL byte"),
])
def test_bad_jobs_are_refused_with_the_reason(arguments, message):
    with pytest.raises(ConfigError, match=message):
        make_job(**arguments)


def test_the_header_carries_the_ports_and_paths():
    header = c_header()
    assert "#define DEBUG_EXIT_PORT 0x" in header and '#define STDERR_CONSOLE "/dev/hvc1"' in header


def test_exec_options_may_come_after_the_kernel_when_a_double_dash_ends_them():
    from kvmpy.cli import _parser, exec_options_after_kernel

    args = exec_options_after_kernel(_parser().parse_args(
        ["exec", "--rw", "/a", "bzImage", "--rw", "/b", "--verbose", "--", "make", "--rw"]))
    assert (args.kernel, args.rw, args.verbose, args.argv) == ("bzImage", ["/a", "/b"], True, ["make", "--rw"])
    plain = exec_options_after_kernel(_parser().parse_args(["exec", "bzImage", "ls", "--", "x"]))
    assert (plain.kernel, plain.argv) == ("bzImage", ["ls", "--", "x"])
