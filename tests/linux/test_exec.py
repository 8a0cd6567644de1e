"""`kvmpy exec`: one command in a fresh kernel whose root is the host's own / over virtio-9p,
its output and exit status back. The test kernel (overlayfs: everything writable, nothing
reaches the host) and the defconfig kernel (no overlayfs: a read-only root with tmpfs on
/tmp), through the CLI as a user types it and through the Python API and pytest plugin."""

import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest

from kvmpy.exec import exec_command
from kvmpy.exec.contract import INIT_FAILED

pytestmark = [pytest.mark.linux, pytest.mark.virtio, pytest.mark.exec]

TIMEOUT = 600
ACCEPTANCE = "cat /proc/version; ls \"$PWD\" | head -3; exit 7"


@pytest.fixture
def workdir():
    """A host directory outside /tmp (where the kernel has no overlayfs the guest's /tmp is a
    tmpfs of its own) holding four known files."""
    with tempfile.TemporaryDirectory(prefix="kvmpy-exec-test-", dir=pathlib.Path.home()) as name:
        directory = pathlib.Path(name)
        for entry in ("a-first", "b-second", "c-third", "d-fourth"):
            (directory / entry).write_text(entry)
        yield directory


REPO = pathlib.Path(__file__).resolve().parents[2]


def kvmpy_exec(*arguments, cwd):
    """`kvmpy exec` as a user types it, from this checkout whatever is installed."""
    environ = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "kvmpy", "exec", "--timeout", str(TIMEOUT), *arguments],
                          capture_output=True, text=True, cwd=cwd, timeout=TIMEOUT + 60, env=environ)


def test_the_acceptance_command_prints_version_and_listing_and_exits_7(test_kernel, linux_accel, workdir):
    run = kvmpy_exec("--accel", linux_accel, test_kernel, "--", "sh", "-c", ACCEPTANCE, cwd=workdir)
    assert run.returncode == 7, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Linux version 6.1") and lines[1:] == ["a-first", "b-second", "c-third"], run.stdout
    assert "Booting" not in run.stdout + run.stderr  # the kernel log stays out of the command's output


def test_the_defconfig_kernel_runs_it_too_with_a_read_only_root(defconfig_kernel, workdir):
    command = ACCEPTANCE.replace("exit 7", "touch /usr/kvmpy-was-here; echo tmp > /tmp/t && cat /tmp/t; exit 7")
    run = kvmpy_exec("--accel", "interp", defconfig_kernel, "--", "sh", "-c", command, cwd=workdir)
    assert run.returncode == 7, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("Linux version 6.1") and lines[1:] == ["a-first", "b-second", "c-third", "tmp"]
    assert "Read-only file system" in run.stderr  # no overlayfs in defconfig: / stays read-only
    assert not os.path.exists("/usr/kvmpy-was-here")


def test_a_rw_directory_is_written_through_and_the_rest_only_in_the_overlay(test_kernel, linux_accel, workdir):
    writable = workdir / "writable"
    writable.mkdir()
    token = secrets.token_hex(8)
    command = f"echo {token} > {writable}/f && echo elsewhere > {workdir}/g && cat {workdir}/g"
    run = kvmpy_exec("--accel", linux_accel, "--rw", str(writable), test_kernel, "--", "sh", "-c", command,
                     cwd=workdir)
    assert run.returncode == 0, run.stderr
    assert (writable / "f").read_text() == f"{token}\n"
    assert run.stdout == "elsewhere\n"  # the guest saw its own write...
    assert not (workdir / "g").exists()  # ...which stayed in the tmpfs overlay


def test_streams_environment_directory_and_statuses(test_kernel, linux_accel, workdir):
    environ = {"PATH": os.environ["PATH"], "HOME": "/home/someone", "TERM": "dumb", "LANG": "C.UTF-8",
               "KVMPY_NOT_PASSED": "secret"}
    script = ("echo out; echo err >&2; pwd; echo $HOME $TERM $LANG ${KVMPY_NOT_PASSED:-unset}; "
              "id -u; exit 42")
    result = exec_command(test_kernel, ["sh", "-c", script], cwd=str(workdir), environ=environ, accel=linux_accel,
                          timeout=TIMEOUT)
    assert (result.status, result.command_status, result.stop.kind) == (42, 42, "verdict"), result.console[-2000:]
    assert result.stdout.decode().splitlines() == [
        "out", str(workdir), "/home/someone dumb C.UTF-8 unset", "0"]
    assert result.stderr == b"err\n"
    missing = exec_command(test_kernel, ["kvmpy-no-such-command"], cwd=str(workdir), accel=linux_accel,
                           timeout=TIMEOUT)
    assert missing.status == 127 and b"command not found" in missing.stderr
    killed = exec_command(test_kernel, ["sh", "-c", "kill -9 $$"], cwd=str(workdir), accel=linux_accel,
                          timeout=TIMEOUT)
    assert killed.status == 128 + 9
    descriptors = exec_command(test_kernel, ["sh", "-c", "ls /proc/$$/fd"], cwd=str(workdir), accel=linux_accel,
                               timeout=TIMEOUT)
    assert descriptors.stdout == b"0\n1\n2\n"  # nothing of the init's leaks into the command


def test_a_directory_the_guest_cannot_enter_is_the_init_s_failure(test_kernel, workdir):
    result = exec_command(test_kernel, ["true"], cwd=str(workdir / "not-there"), accel="interp", timeout=TIMEOUT)
    assert result.status == INIT_FAILED and b"cannot enter" in result.stderr


def test_timeout_is_124_and_a_panic_is_3_with_its_line(test_kernel, workdir):
    hung = kvmpy_exec("--accel", "interp", "--timeout", "5", test_kernel, "--", "sleep", "600", cwd=workdir)
    assert hung.returncode == 124 and "still running after 5" in hung.stderr
    # no 9p root for the kernel: VFS panics before any user space
    panicked = kvmpy_exec("--accel", "interp", "--cmdline", "rootfstype=ext4", test_kernel, "--", "true",
                          cwd=workdir)
    assert panicked.returncode == 3, panicked.stderr
    assert "kvmpy: guest kernel panic: Kernel panic - not syncing: VFS" in panicked.stderr
    assert "it needs CONFIG_NET_9P_VIRTIO" in panicked.stderr  # what to fix, for a kernel without 9p


def test_usage_errors_are_one_line_and_status_2(test_kernel, tmp_path):
    for arguments, message in (([test_kernel], "no command given"),
                               ([str(tmp_path / "nope"), "true"], "no such kernel image"),
                               (["--rw", str(tmp_path / "nope"), test_kernel, "true"], "no such directory")):
        run = kvmpy_exec(*arguments, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_the_plugin_s_exec(pytester, test_kernel):
    pytester.makepyfile(test_outside='''
def test_exec(kvmpy_linux):
    result = kvmpy_linux.exec(["sh", "-c", "echo $((6 * 7)); exit 3"])
    assert (result.status, result.stdout) == (3, b"42\\n")
''')
    result = pytester.runpytest_subprocess(f"--kvmpy-kernel={test_kernel}", "--kvmpy-accel=interp",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_bench_row_measures_kvmpy_exec_and_qemu_on_the_same_kernel_and_init(test_kernel):
    from kvmpy.bench.oneshot import run_oneshot
    from kvmpy.bench.report import Report

    report = Report()
    run_oneshot(report, test_kernel, 1, TIMEOUT, progress=lambda message: None)
    names = [figure.name for figure in report.figures]
    assert any("kvmpy exec" in name for name in names), report.missing
    assert [ratio.name for ratio in report.ratios] == ["kvmpy exec -- true, interp: wall seconds"]
    if shutil.which("qemu-system-x86_64"):
        assert any("QEMU TCG" in name for name in names), report.missing
