"""`kvmpy run` as a user runs it: exit codes and one-line errors."""

import os
import pathlib
import subprocess
import sys

import pytest

import kvmpy

PACKAGE_PARENT = str(pathlib.Path(kvmpy.__file__).resolve().parent.parent)


def kvmpy_cli(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT)
    return subprocess.run([sys.executable, "-m", "kvmpy", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_default_guest_greets_and_exits_zero():
    result = kvmpy_cli("run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Hello from a kvmpy guest")


def test_verdict_becomes_the_exit_code(guest):
    result = kvmpy_cli("run", guest("exit_code"), "--cmdline", "42")
    assert result.returncode == 42


def test_triple_fault_is_a_clear_nonzero_exit(guest):
    result = kvmpy_cli("run", guest("triple_fault"))
    assert result.returncode == 1
    assert "guest shutdown" in result.stderr


def test_two_vcpus_from_the_command_line(guest):
    result = kvmpy_cli("run", guest("smp"), "--cpus", "2", "--cmdline", "2")
    assert result.returncode == 0 and "hello from vCPU 1" in result.stdout


@pytest.fixture
def bad_files(tmp_path):
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    big = tmp_path / "big.img"
    with open(big, "wb") as f:
        f.truncate(40 << 20)
    text = tmp_path / "notes.txt"
    text.write_text("not a kernel\n")
    truncated = tmp_path / "truncated.elf"
    truncated.write_bytes(b"\x7fELF\x02\x01\x01" + b"\0" * 20)
    return {"empty": empty, "big": big, "text": text, "truncated": truncated, "missing": tmp_path / "nope.img"}


@pytest.mark.parametrize(
    "args,message",
    [
        (["{missing}"], "no such image file"),
        (["{empty}"], "is empty"),
        (["{big}", "--mem", "32M"], "larger than guest RAM"),
        (["{text}"], "not a bootable image"),
        (["{truncated}"], "truncated"),
        (["--mem", "0"], "--mem must be larger than 0"),
        (["--mem", "huge"], "--mem: cannot read"),
        (["--cpus", "0"], "--cpus must be between 1 and"),
        (["--cpus", "100000"], "--cpus must be between 1 and"),
        (["--mem", "1000T"], "the host cannot give 1048576000 MiB of guest RAM"),  # beyond any address space
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(bad_files, args, message):
    result = kvmpy_cli("run", *[arg.format(**bad_files) for arg in args])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmpy: error:") and message in lines[0]
    assert "Traceback" not in result.stderr


def test_info_reports_capabilities_and_what_runs_natively():
    result = kvmpy_cli("info")
    assert result.returncode == 0, result.stderr
    assert "API version 12" in result.stdout
    assert "ring-0 guest code:" in result.stdout


def test_info_reports_the_flavour_and_every_probe():
    result = kvmpy_cli("info", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "KVM flavour: " in result.stdout and "what it means: " in result.stdout
    assert "ring-0 guest code: " in result.stdout and "syscall from ring 3: " in result.stdout


def test_a_failing_probe_is_one_line_of_the_info_report(monkeypatch, capsys):
    """`kvmpy info` prints no traceback when a probe fails, and still exits 0."""
    from kvmpy import cli, probe

    def broken():
        raise RuntimeError("ring3_loop did not complete: guest shutdown (triple fault)")

    monkeypatch.setattr(probe, "measure_ring_speeds", broken)
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "ring-3 vs ring-0 guest loop: probe failed: ring3_loop did not complete" in out
    assert "syscall from ring 3: " in out
