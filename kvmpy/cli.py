"""`kvmpy run`, `kvmpy info`: the command line.

Errors a user can fix are one line on stderr and exit status 2; a failing VM is one line and
status 1; `--debug` adds tracebacks and debug logging.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import signal
import sys

from . import layout
from .cpu_model import MODEL_NAMES
from .errors import ConfigError, KvmpyError

EXIT_USAGE = 2
EXIT_FAILURE = 1
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGTkmgt]?)(?:i?[Bb])?\s*$")
_SIZE_UNITS = {"": layout.MiB, "K": layout.KiB, "M": layout.MiB, "G": layout.GiB, "T": layout.TiB}


def parse_size(text: str) -> int:
    """'256M', '1G', '512K', '1T' or a bare number of MiB (as QEMU's -m) into bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"--mem: cannot read '{text}' as a size (examples: 256M, 1G)")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
    if size <= 0:
        raise ConfigError("--mem must be larger than 0")
    return size


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kvmpy", description="A thin VMM in Python on /dev/kvm.")
    parser.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="boot an image (default: the embedded hello guest)")
    run.add_argument("image", nargs="?", help="ELF guest or Linux kernel; omitted: embedded 'hello' guest")
    run.add_argument("--mem", default="256M", help="guest RAM, e.g. 256M or 1G (default 256M)")
    run.add_argument("--cpus", type=int, default=1, help="number of vCPUs (default 1)")
    run.add_argument("--cmdline", default="", help="kernel command line")
    run.add_argument("--initrd", help="initial ramdisk for a Linux kernel")
    run.add_argument("--timeout", type=float, help="stop the guest after this many seconds (exit 124)")
    run.add_argument("--disk", action="append", default=[], metavar="PATH[,ro]",
                     help="raw disk image as virtio-blk (repeatable; ',ro' for read-only)")
    run.add_argument("--net", action="append", default=[], metavar="auto|tap=NAME[,mac=MAC]",
                     help="virtio-net on a TAP: 'auto' creates one (removed at exit), 'tap=NAME' attaches")
    run.add_argument("--share", action="append", default=[], metavar="PATH[,tag=NAME][,ro]",
                     help="share a host directory as virtio-9p (repeatable; tag default: the directory's name); "
                          "in the guest: mount -t 9p -o trans=virtio,version=9p2000.L TAG /mnt")
    run.add_argument("--rng", action="store_true", help="virtio-rng fed from the host's entropy")
    run.add_argument("--console", metavar="file=PATH", help="virtio-console (hvc0) whose output goes to PATH")
    run.add_argument("--virtio-path", choices=("eventfd", "exit"), default="eventfd",
                     help="queue notifies via ioeventfd/irqfd (default) or via exits to Python")
    run.add_argument("--virtio-transport", choices=("pci", "mmio"), default="pci",
                     help="virtio devices as PCI functions (default: what every common kernel finds) or as "
                          "virtio-mmio windows announced on the command line (kernels with VIRTIO_MMIO_CMDLINE_DEVICES)")
    run.add_argument("--no-acpi", dest="acpi", action="store_false",
                     help="no ACPI tables: the kernel finds CPUs and interrupts in the MP table alone")
    run.add_argument("--accel", choices=("auto", "kvm", "interp"), default="auto",
                     help="kvm: /dev/kvm with the interpreter for what KVM cannot emulate; interp: all in "
                          "software; auto (default): kvm where /dev/kvm is usable")
    run.add_argument("--cpu", choices=MODEL_NAMES, default="max",
                     help="the CPU model the guest sees: an x86-64 level (x86-64, -v2, -v3, -v4) or max "
                          "(default: everything the accelerator executes); a level it cannot run is refused")
    run.add_argument("--fallback-burst", type=int, default=1, metavar="N",
                     help="instructions the interpreter may run per KVM emulation failure, staying in ring 0 "
                          "(default 1: just the failing one); 0 = no fallback, stop with the failure")
    run.add_argument("--stats", action="store_true", help="print exit and fallback counts when the VM stops")
    run.add_argument("--gdb", metavar="tcp:HOST:PORT|unix:PATH",
                     help="serve the GDB remote protocol there (one gdb at a time; `target remote HOST:PORT`)")
    run.add_argument("--gdb-wait", action="store_true",
                     help="with --gdb: run no guest instruction until gdb attaches and continues")
    run.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    execute = commands.add_parser(
        "exec", help="boot KERNEL on the host's own / (read-only) and run one command in it",
        description="Boot KERNEL with the host's / shared read-only as its root (virtio-9p; a tmpfs overlay on "
                    "top when the kernel has overlayfs), run COMMAND in the current directory with PATH, HOME, "
                    "TERM and LANG, print its stdout and stderr as they come, exit with its status "
                    "(3: kernel panic, 124: --timeout, 125: the guest's init failed, 1: no status came back).")
    execute.add_argument("kernel", help="bzImage (9p, virtio-pci and virtio-console built in: defconfig has them)")
    execute.add_argument("argv", nargs=argparse.REMAINDER, metavar="[--] COMMAND...", help="what to run")
    execute.add_argument("--rw", action="append", default=[], metavar="PATH",
                         help="make the host directory PATH writable through (repeatable)")
    execute.add_argument("--timeout", type=float, help="stop the guest after this many seconds (exit 124)")
    execute.add_argument("--verbose", action="store_true", help="show the kernel log (on stderr) as well")
    execute.add_argument("--mem", default="256M", help="guest RAM (default 256M)")
    execute.add_argument("--cpus", type=int, default=1, help="number of vCPUs (default 1)")
    execute.add_argument("--cmdline", default="", help="added to the kernel command line")
    execute.add_argument("--accel", choices=("auto", "kvm", "interp"), default="auto",
                         help="as for kvmpy run (auto: KVM where it runs Linux user space)")
    execute.add_argument("--cpu", choices=MODEL_NAMES, default="max", help="the CPU model, as for kvmpy run")
    execute.set_defaults(exec_parser=execute)

    commands.add_parser("info", help="what this host's KVM can do, measured")

    bench = commands.add_parser("bench", help="measure native vs. emulated paths; print a table, write JSON")
    bench.add_argument("--quick", action="store_true", help="fewer, shorter runs (under a minute)")
    bench.add_argument("--json", default="bench-results.json",
                       help="where to write the JSON (default: %(default)s; the chart goes beside it as .svg)")
    bench.add_argument("--kernel", help="bzImage for the boot figures (default: the cached test kernel)")
    bench.add_argument("--initrd", help="initramfs for the boot figures (default: kvmpy's busybox one)")
    bench.add_argument("--nested", action=argparse.BooleanOptionalAction, default=None,
                       help="also measure inside the hardware-virtualization lane (AMD-V nested in QEMU TCG; "
                            "default: in a full run, not with --quick)")
    bench.add_argument("--distro", action="store_true",
                       help="also boot Debian 12 to multi-user.target and the defconfig kernel to init, "
                            "against QEMU TCG (the images of boot/distro and build_kernel.py --defconfig)")
    return parser


def _run(args) -> int:
    from .console import Console
    from .guests import guest_path
    from .machine import Machine

    from .accel import accelerator_for_image

    mem_size = parse_size(args.mem)
    image = args.image or str(guest_path())
    accel = accelerator_for_image(args.accel, image)
    with contextlib.ExitStack() as resources, Machine(mem_size=mem_size, cpus=args.cpus, accel=accel,
                                                     fallback_burst=args.fallback_burst, acpi=args.acpi,
                                                     cpu=args.cpu) as machine:
        attach_virtio_devices(machine, args, resources)
        machine.load(image, args.cmdline, args.initrd)
        gdb = _gdb_server(machine, args, resources)
        quit_reason = lambda: machine.request_stop(_user_quit())  # noqa: E731
        with Console(on_input=machine.serial.enqueue_input, on_quit=quit_reason), _stopped_by_signals(machine):
            reason = machine.run(timeout=args.timeout)
        if gdb is not None:
            gdb.finish(reason.exit_code)
        if args.stats:
            print(format_stats(machine.stats()), file=sys.stderr)
    if reason.kind in ("shutdown", "error", "timeout", "panic", "halted", "signal"):
        print(f"kvmpy: {reason.message}", file=sys.stderr)
    return reason.exit_code


PANIC_LINES = 40  # of the kernel log shown when the kernel panics and --verbose was not given
NO_ROOT = "Unable to mount root fs"
EXEC_KERNEL_NEEDS = "CONFIG_NET_9P_VIRTIO, CONFIG_9P_FS and CONFIG_VIRTIO_PCI built in (=y, not modules)"


def _exec(args) -> int:
    from .exec import exec_command

    args = exec_options_after_kernel(args)
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not os.path.isfile(args.kernel):
        raise ConfigError(f"{args.kernel}: no such kernel image")
    verbose = _flushed(sys.stderr.buffer) if args.verbose else None
    result = exec_command(args.kernel, argv, rw=args.rw, accel=args.accel, cpus=args.cpus,
                          mem_size=parse_size(args.mem), timeout=args.timeout, cmdline=args.cmdline, cpu=args.cpu,
                          stdout=_flushed(sys.stdout.buffer), stderr=_flushed(sys.stderr.buffer), console=verbose,
                          terminals=(sys.stdout.isatty(), sys.stderr.isatty()),
                          notice=(lambda text: print(text, file=sys.stderr)) if args.verbose else None,
                          while_running=_stopped_by_signals)
    if result.stop.kind != "verdict":
        if result.stop.kind == "panic" and not args.verbose:
            print("\n".join(result.console.splitlines()[-PANIC_LINES:]), file=sys.stderr)
        print(f"kvmpy: {result.stop.message}", file=sys.stderr)
        if result.stop.kind == "panic" and NO_ROOT in result.stop.message:
            print(f"kvmpy: the kernel could not mount the host's / as its root: it needs {EXEC_KERNEL_NEEDS}",
                  file=sys.stderr)
    return result.status


def exec_options_after_kernel(args):
    """`kvmpy exec KERNEL --rw out -- make` as well as `kvmpy exec --rw out KERNEL -- make`:
    what stands between KERNEL and `--` is parsed as options too, when it starts with one (a
    command never starts with '-'; `kvmpy exec KERNEL ls -- x` runs `ls -- x`)."""
    if "--" not in args.argv or not args.argv[0].startswith("-") or args.argv[0] == "--":
        return args
    split = args.argv.index("--")
    return args.exec_parser.parse_args([*args.argv[:split], args.kernel, *args.argv[split:]], namespace=args)


def _flushed(stream):
    """A sink writing bytes to `stream` at once: output is shown as the guest sends it."""
    def write(data: bytes) -> None:
        stream.write(data)
        stream.flush()
    return write


def _gdb_server(machine, args, resources: contextlib.ExitStack):
    """The gdb stub of --gdb, listening (and announced on stderr) before the guest starts."""
    if args.gdb is None:
        if args.gdb_wait:
            raise ConfigError("--gdb-wait needs --gdb tcp:HOST:PORT or unix:PATH")
        return None
    from .exits.kinds import StopReason
    from .gdb import GdbServer

    session = machine.attach_debugger(hold_at_start=args.gdb_wait)
    server = GdbServer(session, args.gdb,
                       on_kill=lambda: machine.request_stop(StopReason("quit", 0, "killed by gdb")))
    resources.callback(server.close)
    server.start()
    waiting = " (the guest starts when gdb continues)" if args.gdb_wait else ""
    print(f"kvmpy: gdb stub listening on {server.address}{waiting}", file=sys.stderr, flush=True)
    return server


def format_stats(stats: dict) -> str:
    """The --stats report: one line per figure, fallbacks by instruction, most frequent first."""
    lines = [f"kvmpy stats: accelerator {stats['accel']}, ran {stats['seconds']:.2f} s"]
    lines.append(f"  exits to the VMM: {stats['exits']}")
    if "fallbacks" in stats:  # the KVM accelerator
        fallbacks = stats["fallbacks"]
        lines.append(f"  emulation-failure fallbacks: {sum(fallbacks.values())} "
                     f"({stats.get('fallback_instructions', 0)} instructions interpreted)")
        lines += [f"    {name:<12} {count}" for name, count in sorted(fallbacks.items(), key=lambda item: -item[1])]
    for name, count in sorted(stats.get("unimplemented", {}).items(), key=lambda item: -item[1]):
        lines.append(f"  unimplemented in the interpreter (#UD to the guest): {name} x{count}")
    if stats.get("interpreted_instructions"):
        lines.append(f"  instructions executed by the interpreter: {stats['interpreted_instructions']}")
    if stats.get("boot_seconds") is not None:
        lines.append(f"  time to init (boot-timer port): {stats['boot_seconds']:.2f} s")
    if stats.get("panic_to_stop_seconds") is not None:
        lines.append(f"  kernel panic line to stop: {stats['panic_to_stop_seconds']:.3f} s "
                     f"(stopped by {stats['panic_trigger']})")
    for address, count in sorted(stats.get("unclaimed", {}).items()):
        lines.append(f"  unclaimed {address}: {count} accesses")
    return "\n".join(lines)


def attach_virtio_devices(machine, args, resources: contextlib.ExitStack) -> None:
    """The --disk/--net/--share/--rng/--console devices, in that order (so disks are vda, vdb...)."""
    if not (args.disk or args.net or args.share or args.rng or args.console):
        return  # and spare start-up the virtio imports
    from .virtio import BlockDevice, ConsoleDevice, NetDevice, RngDevice

    fast, transport = args.virtio_path == "eventfd", args.virtio_transport
    for spec in args.disk:
        path, _, option = spec.partition(",")
        if option not in ("", "ro"):
            raise ConfigError(f"--disk {spec}: the only option is ',ro'")
        machine.add_virtio(BlockDevice(path, read_only=option == "ro"), fast, transport)
    for spec in args.net:
        from .virtio.tap import open_tap

        backend_spec, _, option = spec.partition(",")
        mac = None
        if option:
            if not option.startswith("mac="):
                raise ConfigError(f"--net {spec}: the only option is ',mac=MAC'")
            mac = parse_mac(option[4:])
        machine.add_virtio(NetDevice(open_tap(backend_spec), mac=mac), fast, transport)
    for spec in args.share:
        path, tag, read_only = parse_share(spec)
        machine.add_share(path, tag, read_only, fast, transport)
    if args.rng:
        machine.add_virtio(RngDevice(), fast, transport)
    if args.console:
        kind, _, path = args.console.partition("=")
        if kind != "file" or not path:
            raise ConfigError("--console takes file=PATH")
        try:
            log = resources.enter_context(open(path, "ab", buffering=0))
        except OSError as error:
            raise ConfigError(f"--console {path}: {error.strerror}") from None
        machine.add_virtio(ConsoleDevice(log.write), fast, transport)


def parse_share(spec: str) -> tuple[str, str | None, bool]:
    """--share PATH[,tag=NAME][,ro] as (path, tag or None for the default, read_only); the
    directory must exist."""
    path, *options = spec.split(",")
    tag, read_only = None, False
    for option in options:
        if option == "ro":
            read_only = True
        elif option.startswith("tag=") and option[4:]:
            tag = option[4:]
        else:
            raise ConfigError(f"--share {spec}: options are ',tag=NAME' and ',ro'")
    if not path:
        raise ConfigError(f"--share {spec}: no directory given")
    if not os.path.isdir(path):
        raise ConfigError(f"--share {path}: {'not a directory' if os.path.exists(path) else 'no such directory'}")
    return path, tag, read_only


def parse_mac(text: str) -> bytes:
    parts = text.split(":")
    try:
        if len(parts) != 6:
            raise ValueError
        return bytes(int(part, 16) for part in parts)
    except ValueError:
        raise ConfigError(f"'{text}' is not a MAC address (like 52:54:00:12:34:56)") from None


# Signals that stop the VM in order (devices closed, TAP removed, terminal restored, disk
# flushed by close) with the shell's status for a process killed by them: 128 + the number.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


@contextlib.contextmanager
def _stopped_by_signals(machine):
    """While the VM runs, STOP_SIGNALS stop it with `kvmpy: stopped by SIG...` and 128 + signo."""
    from .exits.kinds import StopReason

    def stop(signum, _frame):
        name = signal.Signals(signum).name
        machine.request_stop(StopReason("signal", 128 + signum, f"stopped by {name}"))

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _user_quit():
    from .exits.kinds import StopReason

    return StopReason("quit", 0, "quit from the console")


def _info(args) -> int:
    """The host's KVM: capabilities, flavour and three measurements. A probe that fails is one
    line of the report (and does not change the exit status): the report is the point."""
    from .kvm import Kvm
    from .probe import detect_kvm_flavour

    with Kvm() as kvm:
        print(f"/dev/kvm API version {kvm.api_version}")
        print(f"vCPUs: recommended {kvm.recommended_vcpus}, maximum {kvm.max_vcpus}; memory slots {kvm.max_memslots}")
        capabilities = kvm.capabilities()
        print("capabilities: " + " ".join(f"{name}{'' if value else '(no)'}" for name, value in capabilities.items()))
    flavour = detect_kvm_flavour()
    print(f"KVM flavour: {flavour.describe()}")
    print(f"  what it means: {flavour.meaning()}")
    for probe in (_report_ring_speeds, _report_syscall):
        try:
            print(probe())
        except Exception as error:  # noqa: BLE001 - any failure is reported, not raised
            if args.debug:
                raise
            print(f"{probe.__doc__}: probe failed: {error}")
    return 0


def _report_ring_speeds() -> str:
    """ring-3 vs ring-0 guest loop"""
    from .probe import measure_ring_speeds

    speeds = measure_ring_speeds()
    where = ("EMULATED by the host kernel (no hardware virtualization; e.g. PVM)" if speeds.ring0_emulated
             else "native (hardware virtualization)")
    return (f"ring-3 guest loop: {speeds.ring3.ns_per_iteration:.2f} ns/iteration; "
            f"ring-0 guest loop: {speeds.ring0.ns_per_iteration:.2f} ns/iteration "
            f"({speeds.ring0_slowdown:.0f}x)\nring-0 guest code: {where}")


def _report_syscall() -> str:
    """syscall from ring 3"""
    from .probe import syscall_lands_in_ring0

    if syscall_lands_in_ring0():
        return "syscall from ring 3: reaches ring 0 (Linux user space can run under KVM; --accel auto uses it)"
    return ("syscall from ring 3: BROKEN, the handler runs in ring 3 (Linux user space cannot make system "
            "calls under this KVM; --accel auto runs Linux in the interpreter)")


def _bench(args) -> int:
    from .bench.suite import run_suite

    run_suite(quick=args.quick, json_path=args.json, kernel=args.kernel, initrd=args.initrd, nested=args.nested,
              distro=args.distro)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="kvmpy: %(name)s: %(message)s")
    try:
        return {"run": _run, "exec": _exec, "info": _info, "bench": _bench}[args.command](args)
    except ConfigError as error:
        if args.debug:
            raise
        print(f"kvmpy: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KvmpyError as error:
        if args.debug:
            raise
        print(f"kvmpy: {error}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
