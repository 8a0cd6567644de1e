"""A PC-like virtual machine: guest RAM, legacy devices, virtio, and an accelerator (KVM or the
software interpreter) that runs the vCPUs.

This is the object a script drives: build it, `load` an image, `run` it, read the stop reason.

    with Machine(mem_size=64 * MiB, cpus=2) as machine:
        machine.load("guest.elf")
        reason = machine.run(timeout=10)
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from . import layout
from .acpi import MmioWindow, Platform, write_tables
from .acpi.pm import AcpiPm
from .bus import Device
from .devices import BootTimer, CmosRtc, DebugExit, I8042, PostCode, Uart16550
from .devices import fw_cfg
from .devices.pvpanic import BAR_SIZE as PVPANIC_BAR_SIZE
from .devices.pvpanic import PvPanic, PvPanicPci
from .devices.testdev import MmioTestDevice, PortSink
from .errors import ConfigError
from .exits import Buses
from .exits.kinds import StopReason
from .accel import create_accelerator
from .loader import BootImage, load_image
from .loader.mptable import write_mptable
from .memory import GuestMemory
from .panic import PanicWatch
from .pci import PciRoot

DEFAULT_MEM_SIZE = 256 * layout.MiB
MIN_MEM_SIZE = 2 * layout.MiB  # room for the boot structures and a 1 MiB-based image
STOP_JOIN_TIMEOUT = 10.0
HALT_CHECK_INTERVAL = 0.5  # how often run() looks for a guest that halted for good


def _stdout_sink(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


class Machine:
    """One VM and everything attached to it; every resource is released by `close()`."""

    def __init__(
        self,
        mem_size: int = DEFAULT_MEM_SIZE,
        cpus: int = 1,
        serial_output: Callable[[bytes], None] = _stdout_sink,
        accel: str = "auto",
        kvm=None,
        fallback_burst: int = 1,
        acpi: bool = True,
        cpu: str = "max",
    ):
        if mem_size < MIN_MEM_SIZE or mem_size % layout.PAGE_SIZE:
            raise ConfigError(
                f"--mem must be a multiple of 4 KiB and at least {MIN_MEM_SIZE >> 20} MiB (got {mem_size} bytes)"
            )
        self.stop_reason: StopReason | None = None
        self._stopped = threading.Event()
        self._stop_lock = threading.RLock()  # re-entrant: a signal handler may stop the VM from inside run()
        self.memory = GuestMemory.with_hole(mem_size, layout.MMIO_HOLE_START, layout.MMIO_HOLE_END)
        try:
            self.accel = create_accelerator(accel, self.memory, cpus, kvm, fallback_burst, cpu=cpu)
        except BaseException:
            self.memory.close()
            raise
        self.buses = Buses()
        self.panic_watch = PanicWatch(self.request_stop)
        self._add_legacy_devices(serial_output)
        self.pci = PciRoot(self.buses.ports, self.buses.mmio)
        self.pci.add(PvPanicPci(self.panic_watch.pvpanic_event), PVPANIC_BAR_SIZE, irq=None)
        self.acpi = acpi
        self.runners = self.accel.create_runners(self.buses, self.request_stop)
        self.image: BootImage | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self.virtio_slots = []  # see virtio_slots.attach_virtio; announced on the cmdline
        self.debug = None  # the DebugSession of attach_debugger

    def add_virtio(self, device, fast_path: bool = True, transport: str = "pci"):
        """Attach a virtio device over virtio-pci or virtio-mmio (before `load`, which writes
        the MP table with its PCI route, or announces an mmio device on the command line)."""
        from .virtio_slots import attach_virtio

        return attach_virtio(self, device, fast_path, transport)

    def add_share(self, path: str, tag: str | None = None, read_only: bool = False, fast_path: bool = True,
                  transport: str = "pci"):
        """Share the host directory `path` as virtio-9p under mount tag `tag` (default: the
        directory's name, or share0, share1, ... when that is not a usable tag); the guest
        mounts it with `mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt`."""
        from .virtio.p9 import P9Device, default_tag

        taken = {slot.transport.device.tag for slot in self.virtio_slots
                 if isinstance(slot.transport.device, P9Device)}
        tag = default_tag(path, taken) if tag is None else tag
        if tag in taken:
            raise ConfigError(f"9p mount tag {tag!r} is used twice")
        return self.add_virtio(P9Device(path, tag, read_only=read_only), fast_path, transport)

    @property
    def vcpus(self):
        return self.accel.vcpus

    # --- devices -----------------------------------------------------------------------------
    def _add_legacy_devices(self, serial_output: Callable[[bytes], None]) -> None:
        ports = self.buses.ports

        def console(data: bytes) -> None:
            serial_output(data)
            self.panic_watch.feed(data)

        self.serial = Uart16550(self.accel.irq_line(layout.COM1_IRQ), console)
        ports.insert(self.serial, layout.COM1_PORT, layout.COM_PORT_LENGTH, "com1")
        i8042 = I8042(self._on_i8042_reset)
        ports.insert(i8042, layout.I8042_DATA_PORT, 1, "i8042-data")
        command_offset = layout.I8042_COMMAND_PORT - layout.I8042_DATA_PORT
        ports.insert(i8042, layout.I8042_COMMAND_PORT, 1, "i8042-command", offset=command_offset)
        ports.insert(CmosRtc(), layout.RTC_PORT, layout.RTC_PORT_LENGTH, "rtc")
        self.post = PostCode()
        ports.insert(self.post, layout.POST_PORT, 1, "post")
        ports.insert(DebugExit(self._on_verdict), layout.DEBUG_EXIT_PORT, 1, "debug-exit")
        self.boot_timer = BootTimer()
        ports.insert(self.boot_timer, layout.BOOT_TIMER_PORT, 1, "boot-timer")
        ports.insert(PortSink(), layout.BENCH_PORT, 1, "bench")
        self.buses.mmio.insert(MmioTestDevice(), layout.TEST_DEVICE_MMIO_BASE, layout.TEST_DEVICE_MMIO_SIZE, "testdev")
        ports.insert(PvPanic(self.panic_watch.pvpanic_event), layout.PVPANIC_PORT, 1, "pvpanic")
        self.fw_cfg = fw_cfg.FwCfg()
        ports.insert(self.fw_cfg, layout.FW_CFG_PORT, fw_cfg.PORT_LENGTH, "fw_cfg")
        self.acpi_pm = AcpiPm(self._on_acpi_power_off, self._on_acpi_reset)
        ports.insert(self.acpi_pm, layout.ACPI_PM_PORT, layout.ACPI_PM_PORT_LENGTH, "acpi-pm")

    def add_port_device(self, device: Device, base: int, length: int, name: str | None = None) -> None:
        self.buses.ports.insert(device, base, length, name)

    def add_mmio_device(self, device: Device, base: int, length: int, name: str | None = None) -> None:
        self.buses.mmio.insert(device, base, length, name)

    def _on_verdict(self, code: int) -> None:
        self.request_stop(StopReason.verdict(code))

    def _on_i8042_reset(self) -> None:
        self.request_stop(StopReason("reset", 0, "guest reset through the i8042"))

    def _on_acpi_power_off(self) -> None:
        self.request_stop(StopReason("poweroff", 0, "guest powered off through ACPI"))

    def _on_acpi_reset(self) -> None:
        self.request_stop(StopReason("reset", 0, "guest reset through the ACPI reset register"))

    def _halted_for_good(self) -> StopReason:
        """A guest whose vCPUs all sit in `cli; hlt`: powered off, unless it drove ACPI and so
        could have powered off through it (then it died, or halted on purpose, in a halt loop)."""
        if self.acpi_pm.used_by_guest:
            return StopReason("halted", 4, "all vCPUs halted with interrupts off")
        return StopReason("poweroff", 0, "guest halted with interrupts off (powered off, without ACPI)")

    # --- life cycle --------------------------------------------------------------------------
    def load(self, path: str, cmdline: str = "", initrd: str | None = None) -> BootImage:
        """Load an image, describe the machine to it (MP table, ACPI tables, fw_cfg), and put
        the vCPUs at its entry point."""
        announced = " ".join([cmdline] + [slot.cmdline for slot in self.virtio_slots]).strip()
        self.image = load_image(path, self.memory, announced, initrd)
        self.fw_cfg.items = fw_cfg.machine_items(self.memory.size, len(self.runners), announced)
        write_mptable(self.memory, len(self.runners), self.pci.routes)
        if self.acpi:
            mmio = tuple(MmioWindow(slot.base, layout.VIRTIO_MMIO_SIZE, slot.irq)
                         for slot in self.virtio_slots if slot.kind == "mmio")
            write_tables(self.memory, Platform(len(self.runners), tuple(self.pci.routes), mmio))
        self.accel.start(self.image)
        return self.image

    def attach_debugger(self, hold_at_start: bool = False):
        """The vCPUs' debug control (kvmpy/accel/debug.py) for a debugger such as kvmpy/gdb;
        `hold_at_start`: no vCPU runs a single instruction until the debugger resumes it."""
        from .accel.debug import DebugSession

        if self.debug is None:
            self.debug = DebugSession(self.runners, self.accel.debug_backend(), hold_at_start)
        return self.debug

    def request_stop(self, reason: StopReason) -> None:
        """Stop the VM for `reason`; the first reason given wins. Safe from any thread."""
        reason = self.panic_watch.explain(reason)
        with self._stop_lock:
            if self.stop_reason is None:
                self.stop_reason = reason
                self._stopped.set()
        for runner in self.runners:
            runner.request_stop()

    def run(self, timeout: float | None = None) -> StopReason:
        """Run every vCPU until the VM stops (or `timeout` seconds pass); return why it stopped."""
        if self.image is None:
            raise ConfigError("load an image before running the machine")
        self.started_at = time.monotonic()
        for runner in self.runners:
            runner.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stopped.wait(self._next_check(deadline)):
                if deadline is not None and time.monotonic() >= deadline:
                    self.request_stop(StopReason("timeout", 124, f"the guest was still running after {timeout} s"))
                elif self.debug is not None and self.debug.holding:
                    continue  # held by the debugger: not the guest's doing
                elif self.accel.halted_for_good(self.runners):
                    self.request_stop(self._halted_for_good())
        except KeyboardInterrupt:
            self.request_stop(StopReason("quit", 130, "interrupted"))
        self.request_stop(StopReason("quit", 0, "stopped"))  # no-op unless someone forgot a reason
        stuck = [index for index, r in enumerate(self.runners) if not r.join(STOP_JOIN_TIMEOUT)]
        if stuck:
            raise RuntimeError(f"vCPU threads {stuck} did not stop")
        self.stopped_at = time.monotonic()
        return self.stop_reason

    def stats(self) -> dict:
        """What the run cost: exits, fallbacks by instruction, time to init, unclaimed I/O, how
        each virtio device was driven, and how long a panic took to stop the VM."""
        booted = self.boot_timer.booted_at
        return {
            "accel": self.accel.name,
            "seconds": (self.stopped_at or time.monotonic()) - (self.started_at or time.monotonic()),
            "boot_seconds": None if booted is None or self.started_at is None else booted - self.started_at,
            "unclaimed": dict(self.buses.unclaimed),
            "virtio": {slot.transport.name: slot.stats() for slot in self.virtio_slots},
            "panic_to_stop_seconds": (None if self.panic_watch.seen_at is None or self.stopped_at is None
                                      else self.stopped_at - self.panic_watch.seen_at),
            "panic_trigger": self.panic_watch.trigger,
            **self.accel.stats(self.runners),
        }

    @staticmethod
    def _next_check(deadline: float | None) -> float:
        if deadline is None:
            return HALT_CHECK_INTERVAL
        return max(0.0, min(HALT_CHECK_INTERVAL, deadline - time.monotonic()))

    def close(self) -> None:
        self.panic_watch.close()
        for slot in self.virtio_slots:
            slot.close()
        self.accel.close()
        self.memory.close()

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
