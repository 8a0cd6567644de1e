"""Test helpers for the gdb stub: a `kvmpy run --gdb` process waited for until its stub
listens, and the real gdb in batch mode (used by tests/gdb and tests/linux)."""

from __future__ import annotations

import os
import pathlib
import re
import selectors
import shutil
import subprocess
import sys

PACKAGE_PARENT = pathlib.Path(__file__).resolve().parents[2]
GDB = "/usr/bin/gdb"
ANNOUNCE_TIMEOUT = 60.0
LISTENING = re.compile(r"kvmpy: gdb stub listening on (\S+)")


def gdb_path() -> str | None:
    """Debian's gdb, or whichever gdb is on PATH; None without one."""
    return GDB if os.access(GDB, os.X_OK) else shutil.which("gdb")


class KvmpyUnderGdb:
    """`kvmpy run ... --gdb ADDRESS`, started and waited for until its stub listens."""

    def __init__(self, args: list[str]):
        env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT))
        self.process = subprocess.Popen([sys.executable, "-m", "kvmpy", "run", *args], env=env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stderr = ""
        self.address = self._await_announcement()

    def _await_announcement(self) -> str:
        """Read stderr until the stub says where it listens (select with a deadline: no sleeps)."""
        selector = selectors.DefaultSelector()
        selector.register(self.process.stderr, selectors.EVENT_READ)
        try:
            while True:
                if not selector.select(ANNOUNCE_TIMEOUT):
                    raise AssertionError(f"kvmpy announced no gdb stub within {ANNOUNCE_TIMEOUT} s")
                line = self.process.stderr.readline().decode()
                if not line:
                    raise AssertionError(f"kvmpy ended before its stub listened: {self.stderr}")
                self.stderr += line
                match = LISTENING.search(line)
                if match:
                    return match.group(1)
        finally:
            selector.close()

    @property
    def target(self) -> str:
        """What `target remote` takes for the address."""
        kind, _, where = self.address.partition(":")
        return where

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Exit status, stdout and the rest of stderr."""
        out, err = self.process.communicate(timeout=timeout)
        self.stderr += err.decode()
        return self.process.returncode, out.decode(), self.stderr

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def run_gdb(gdb_binary: str, symbols: str | None, commands: list[str], timeout: float) -> str:
    """gdb in batch mode on `commands`; its whole output (stdout and stderr together)."""
    args = [gdb_binary, "-batch", "-nx", "-ex", "set pagination off", "-ex", "set confirm off"]
    for command in commands:
        args += ["-ex", command]
    if symbols:
        args.append(symbols)
    result = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    return result.stdout + result.stderr
