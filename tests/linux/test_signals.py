"""SIGTERM, SIGHUP and SIGINT during a Linux guest's run stop `kvmpy run` in order: one line
`kvmpy: stopped by SIG...`, the shell's status for that signal (128 + its number), and the
TAP that `--net auto` created is gone."""

import os
import signal
import subprocess
import sys

import pytest

from kvmpy.linux import command_cmdline

pytestmark = [pytest.mark.linux, pytest.mark.hostile]

READY = "KVMPY-TEST-READY"


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_stops_the_vm_in_order(test_kernel, test_initrd, signum):
    if os.geteuid() != 0:
        pytest.skip("--net auto creates a TAP, which needs root")
    before = links()
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmpy", "run", test_kernel, "--initrd", test_initrd, "--accel", "interp",
         "--net", "auto", "--timeout", "600", "--cmdline", command_cmdline(f"echo {READY}; sleep 1000")],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:  # the guest is up and its TAP exists once the command runs
            if READY in line and "echo" not in line:
                break
        during = links()
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines()[-1] == f"kvmpy: stopped by {signum.name}"
    assert len(during - before) == 1  # the TAP of --net auto ...
    assert links() == before  # ... removed
