"""`kvmpy run` on a real terminal (a tmux pane): stdin goes to raw mode while the guest runs,
and SIGTERM gives the terminal back exactly as it was, with one line and status 143."""

import os
import shutil
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.hostile

SESSION = f"kvmpy-terminal-{os.getpid()}"
WAIT = 60.0  # seconds any one step may take before the test gives up


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout.strip()


def wait_for(what: str, condition):
    """Poll a condition no event announces (another process's terminal mode) until it holds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # polling an outside process's state: there is nothing to wait on
    pytest.fail(f"timed out waiting for {what}")


def terminal_mode(tty: str) -> str:
    return subprocess.run(["stty", "-F", tty, "-g"], check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def pane(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    tmux("new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40", "sh")
    try:
        yield tmux("display-message", "-p", "-t", SESSION, "#{pane_tty}")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


def test_sigterm_in_interactive_mode_restores_the_terminal(guest, pane, tmp_path):
    cooked = terminal_mode(pane)
    status_file, stderr_file = tmp_path / "status", tmp_path / "stderr"
    command = (f"PYTHONPATH={os.getcwd()} {sys.executable} -m kvmpy run {guest('ring0_loop')} --accel interp "
               f"--cmdline 999999999999 --timeout 300 2>{stderr_file}; echo $? > {status_file}; tmux wait-for -S {SESSION}")
    tmux("send-keys", "-t", SESSION, command, "Enter")
    raw = wait_for("kvmpy to put the terminal in raw mode", lambda: (mode := terminal_mode(pane)) != cooked and mode)
    kvmpy = wait_for("the kvmpy process", lambda: subprocess.run(
        ["pgrep", "-f", "-n", f"kvmpy run {guest('ring0_loop')}"], capture_output=True, text=True).stdout.split())
    os.kill(int(kvmpy[0]), 15)
    subprocess.run(["tmux", "wait-for", SESSION], check=True, timeout=WAIT)  # the shell signals when kvmpy is done
    assert status_file.read_text().strip() == "143", stderr_file.read_text()
    assert stderr_file.read_text().strip().splitlines()[-1] == "kvmpy: stopped by SIGTERM", stderr_file.read_text()
    assert raw != cooked
    assert terminal_mode(pane) == cooked, "the terminal was not restored"
