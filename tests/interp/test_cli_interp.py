"""`kvmpy run --accel interp`: the interpreter from the command line."""

import os
import pathlib
import subprocess
import sys

import kvmpy

PACKAGE_PARENT = str(pathlib.Path(kvmpy.__file__).resolve().parent.parent)


def kvmpy_cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    return subprocess.run([sys.executable, "-m", "kvmpy", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_default_guest_greets_and_exits_zero():
    result = kvmpy_cli("run", "--accel", "interp")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from a kvmpy guest")


def test_verdict_becomes_the_exit_code(guest):
    result = kvmpy_cli("run", guest("exit_code"), "--cmdline", "42", "--accel", "interp")
    assert result.returncode == 42


def test_triple_fault_is_a_clear_nonzero_exit(guest):
    result = kvmpy_cli("run", guest("triple_fault"), "--accel", "interp")
    assert result.returncode == 1 and "guest shutdown" in result.stderr


def test_two_vcpus_and_the_stats(guest):
    result = kvmpy_cli("run", guest("smp"), "--cpus", "2", "--cmdline", "2", "--accel", "interp", "--stats")
    assert result.returncode == 0, result.stderr
    assert "hello from vCPU 1" in result.stdout
    assert "accelerator interp" in result.stderr and "instructions executed by the interpreter" in result.stderr


def test_too_many_vcpus_is_one_line_and_exit_code_2(guest):
    result = kvmpy_cli("run", guest("hello"), "--cpus", "17", "--accel", "interp")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--cpus must be between 1 and 16" in lines[0]


def test_share_of_a_missing_directory_is_one_line_and_exit_code_2(guest, tmp_path):
    result = kvmpy_cli("run", guest("hello"), "--accel", "interp", "--share", str(tmp_path / "missing"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no such directory" in lines[0] and "missing" in lines[0], result.stderr


def test_share_options_are_checked(guest, tmp_path):
    (tmp_path / "file").write_text("")
    for spec, message in ((f"{tmp_path},rw", "options are"), (f"{tmp_path / 'file'}", "not a directory"),
                          (f"{tmp_path},tag=a b", "mount tag"), (",ro", "no directory")):
        result = kvmpy_cli("run", guest("hello"), "--accel", "interp", "--share", spec)
        assert result.returncode == 2 and message in result.stderr, (spec, result.stderr)
    result = kvmpy_cli("run", guest("hello"), "--accel", "interp", "--share", f"{tmp_path},tag=t",
                       "--share", f"{tmp_path},tag=t")
    assert result.returncode == 2 and "used twice" in result.stderr


def test_a_shared_directory_does_not_disturb_a_guest_that_ignores_it(guest, tmp_path):
    result = kvmpy_cli("run", guest("hello"), "--accel", "interp", "--share", f"{tmp_path},ro")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from a kvmpy guest")
