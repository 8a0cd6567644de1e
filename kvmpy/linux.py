"""Boot a Linux kernel and run one command in it: the building block for kernel CI.

The guest side is the initramfs contract of boot/linux/README.md: `kvmpy.cmd=<base64>` on
the command line makes /init run the command between two serial markers and report its
exit status on the debug-exit port, so the status arrives even if the output is garbled.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from typing import NamedTuple

from . import layout
from .errors import ConfigError
from .exits.kinds import StopReason

COMMAND_BEGIN = "KVMPY-CMD-BEGIN"
COMMAND_END = re.compile(r"KVMPY-CMD-END status=(\d+)")
DEFAULT_CMDLINE = "console=ttyS0 panic=-1"
DEFAULT_MEM_SIZE = 256 * layout.MiB


class CommandResult(NamedTuple):
    status: int | None  # the command's exit status; None when the guest never reported one
    output: str  # what the command printed
    console: str  # the whole serial console
    stop: StopReason
    boot_seconds: float | None  # VM start to the init's boot-timer write
    seconds: float  # VM start to stop
    stats: dict = {}  # Machine.stats(): the accelerator, exits, fallbacks, virtio paths

    @property
    def ok(self) -> bool:
        return self.status == 0


class ConsoleLog:
    """Collects guest serial output; thread-safe, decoded on demand."""

    def __init__(self, echo=None):
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._echo = echo

    def write(self, data: bytes) -> None:
        with self._lock:
            self._chunks.append(bytes(data))
        if self._echo is not None:
            self._echo(data)

    def text(self) -> str:
        with self._lock:
            raw = b"".join(self._chunks)
        return raw.decode(errors="replace").replace("\r\n", "\n")


def marked_output(console: str, begin: str, end: re.Pattern) -> tuple[str, int | None]:
    """The text between the `begin` marker and the first match of `end`, and the status that
    `end` carries as its group 1 (None, with the text to the end, if `end` never came)."""
    start = console.find(begin)
    if start < 0:
        return "", None
    body = console[start + len(begin) :].lstrip("\n")
    match = end.search(body)
    if match is None:
        return body, None
    return body[: match.start()], int(match.group(1))


def command_output(console: str) -> tuple[str, int | None]:
    """The text between the init's markers and the status it printed."""
    return marked_output(console, COMMAND_BEGIN, COMMAND_END)


def command_cmdline(command: str, cmdline: str = DEFAULT_CMDLINE) -> str:
    encoded = base64.b64encode(command.encode()).decode()
    return f"{cmdline} kvmpy.cmd={encoded}".strip()


def run_command(
    kernel: str,
    command: str,
    initrd: str,
    *,
    cpus: int = 1,
    mem_size: int = DEFAULT_MEM_SIZE,
    timeout: float = 600,
    accel: str = "auto",
    cmdline: str = DEFAULT_CMDLINE,
    disks: tuple = (),
    shares: tuple = (),
    rng: bool = False,
    net: str | None = None,
    virtio_path: str = "eventfd",
    virtio_transport: str = "pci",
    echo=None,
    cpu: str = "max",
) -> CommandResult:
    """Boot `kernel` with `initrd`, run `command` in the guest, power off; return what happened.

    `disks` are (path, read_only) pairs attached as virtio-blk (vda, vdb, ...); `shares` host
    directories as virtio-9p, each a path or a (path, tag[, read_only]) tuple, as --share (tag
    None: the directory's name); `rng` adds a
    virtio-rng; `net` a virtio-net on a TAP ('auto' or 'tap=NAME', as --net); `virtio_path`
    is 'eventfd' (ioeventfd/irqfd where the accelerator has them) or 'exit', as --virtio-path;
    `virtio_transport` 'pci' or 'mmio', as --virtio-transport; `cpu` the CPU model, as --cpu.
    """
    from .accel import accelerator_for_image
    from .machine import Machine
    from .virtio import BlockDevice, NetDevice, RngDevice
    from .virtio.tap import open_tap

    if not command:
        raise ConfigError("no command to run in the guest")
    if virtio_path not in ("eventfd", "exit"):
        raise ConfigError(f"virtio_path must be 'eventfd' or 'exit' (got {virtio_path!r})")
    fast = virtio_path == "eventfd"
    log = ConsoleLog(echo)
    accel = accelerator_for_image(accel, kernel)
    with Machine(mem_size=mem_size, cpus=cpus, serial_output=log.write, accel=accel, cpu=cpu) as machine:
        for path, read_only in disks:
            machine.add_virtio(BlockDevice(path, read_only=read_only), fast, virtio_transport)
        if net is not None:
            machine.add_virtio(NetDevice(open_tap(net)), fast, virtio_transport)
        for share in shares:
            path, tag, read_only = (share, None, False) if isinstance(share, (str, os.PathLike)) else (*share, False)[:3]
            machine.add_share(os.fspath(path), tag, read_only, fast, virtio_transport)
        if rng:
            machine.add_virtio(RngDevice(), fast, virtio_transport)
        machine.load(kernel, command_cmdline(command, cmdline), initrd)
        stop = machine.run(timeout=timeout)
        stats = machine.stats()
    console = log.text()
    output, printed_status = command_output(console)
    status = stop.exit_code if stop.kind == "verdict" else printed_status
    return CommandResult(status, output, console, stop, stats["boot_seconds"], stats["seconds"], stats)
