"""One `kvmpy exec`: boot a kernel on the host's root, run one command, return its status.

The machine: the host's `/` as a read-only virtio-9p root (mount tag ROOT_TAG, which is what
the kernel's `root=` names for a root that is not a block device), one read-write 9p share
per --rw directory, two virtio-consoles carrying the command's stdout and stderr, the serial
console carrying the kernel log (kept, shown with --verbose, searched for a panic), and the
job directory of job.py, whose path is the init's argument. All devices are virtio-pci: the
transport every common kernel (defconfig, distributions) finds without help.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..exits.kinds import StopReason
from ..linux import DEFAULT_MEM_SIZE, ConsoleLog
from .contract import MSIZE, init_path
from .job import make_job, write_job

ROOT_TAG = "/dev/root"
# cache=loose: the root is read-only and only this guest looks at it while the command runs,
# so the guest may keep what it read (a program's libraries are read once, not per page fault).
ROOT_FLAGS = f"trans=virtio,version=9p2000.L,msize={MSIZE},cache=loose"
KERNEL_CMDLINE = f"console=ttyS0 quiet panic=-1 root={ROOT_TAG} rootfstype=9p rootflags={ROOT_FLAGS} ro"


def kernel_cmdline(job_directory: str, extra: str = "") -> str:
    """The command line that boots into kvmpy's init with `job_directory`: KERNEL_CMDLINE, the
    caller's `extra`, then init= and, after --, the job (the init takes its last argument)."""
    return f"{KERNEL_CMDLINE} {extra} init={init_path()} -- {job_directory}"
EXIT_FAILURE = 1  # the guest stopped without reporting a status (documented in the README)

Sink = Callable[[bytes], None]


class ExecResult(NamedTuple):
    status: int  # what `kvmpy exec` exits with: the command's status, 3 panic, 124 timeout, ...
    command_status: int | None  # the command's own status; None when it never reported one
    stop: StopReason
    stdout: bytes
    stderr: bytes
    console: str  # the kernel's serial console (its log)
    stats: dict  # Machine.stats()


class _Collected:
    """Keeps what a console sent and passes it on to an optional sink as it comes."""

    def __init__(self, sink: Sink | None):
        self.chunks: list[bytes] = []
        self._sink = sink

    def write(self, data: bytes) -> None:
        self.chunks.append(bytes(data))
        if self._sink is not None:
            self._sink(data)

    def bytes(self) -> bytes:
        return b"".join(self.chunks)


def exec_command(kernel: str, argv: Sequence[str], *, rw: Sequence[str] = (), cwd: str | None = None,
                 environ: dict | None = None, accel: str = "auto", cpus: int = 1, mem_size: int = DEFAULT_MEM_SIZE,
                 timeout: float | None = None, cmdline: str = "", cpu: str = "max", stdout: Sink | None = None,
                 stderr: Sink | None = None, console: Sink | None = None, terminals: tuple[bool, bool] = (False, False),
                 notice: Callable[[str], None] | None = None,
                 while_running: Callable[[object], contextlib.AbstractContextManager] | None = None) -> ExecResult:
    """Boot `kernel` with the host's `/` as its read-only root and run `argv` in `cwd`.

    `rw` directories are writable through (shared read-write, mounted over themselves);
    `environ` gives PATH, HOME, TERM and LANG (default: ours); `stdout`, `stderr` and
    `console` receive the command's output and the kernel log as they come; `terminals` make
    the command's stdout and stderr terminals (hvc consoles) rather than pipes; `cmdline` is
    added to the kernel command line; `notice` gets kvmpy's own remarks (the accelerator
    chosen by `auto`); `while_running(machine)` is a context entered around the run (the CLI
    stops the machine on SIGTERM with it). Returns when the guest stops.
    """
    from ..accel import accelerator_for_image
    from ..machine import Machine
    from ..virtio import ConsoleDevice

    job = make_job(argv, cwd, environ, rw, terminals)
    accel = accelerator_for_image(accel, kernel, notice=notice or (lambda message: None))
    out, err, log = _Collected(stdout), _Collected(stderr), ConsoleLog(console)
    with tempfile.TemporaryDirectory(prefix="kvmpy-exec-") as directory, \
            Machine(mem_size=mem_size, cpus=cpus, serial_output=log.write, accel=accel, cpu=cpu) as machine:
        write_job(job, pathlib.Path(directory))
        machine.add_share(os.sep, ROOT_TAG, read_only=True)
        for share in job.rw:
            machine.add_share(share.path, share.tag)
        machine.add_virtio(ConsoleDevice(out.write))  # hvc0, the command's stdout
        machine.add_virtio(ConsoleDevice(err.write))  # hvc1, its stderr
        machine.load(kernel, kernel_cmdline(directory, cmdline))
        with (while_running or (lambda _machine: contextlib.nullcontext()))(machine):
            stop = machine.run(timeout=timeout)
        stats = machine.stats()
    command_status = stop.exit_code if stop.kind == "verdict" else None
    status = stop.exit_code if stop.kind in ("verdict", "panic", "timeout", "signal") else EXIT_FAILURE
    return ExecResult(status, command_status, stop, out.bytes(), err.bytes(), log.text(), stats)
