"""I/O: virtio-blk sequential throughput and TCP throughput over virtio-net, measured in the
guest, for kvmpy with the eventfd fast path, kvmpy with the exit path, and QEMU TCG (microvm,
its own virtio-mmio blk and net, with its network offloads on and off) on the same kernel and
initramfs.

One boot per configuration runs every workload in turn (`guest_script`):

  empty       true                                                 (what the bracketing costs)
  blk-read    dd if=/dev/vda of=/dev/null bs=1M iflag=direct       (the guest page cache bypassed)
  blk-write   dd if=/dev/zero of=/dev/vda bs=1M oflag=direct
  tcp-in      wget -O /dev/null http://HOST/                       (host -> guest)
  tcp-out     wget -O /dev/null --post-file FILE http://HOST/      (guest -> host, FILE in tmpfs)

busybox wget moves up to 64 KiB per system call; busybox nc moves 1 KiB, which made its
system calls, not the network, what a transfer measured.

Each workload is timed by the guest's own clock (CLOCK_REALTIME through busybox `adjtimex`,
microseconds), so VM start-up and tear-down are not in the figures. Around each workload the
guest writes a mark to the bench port (0xF6, through /dev/port); kvmpy's handler snapshots
counters there: exits (port/MMIO accesses under the interpreter), instructions the interpreter
ran, CPU time of the vCPU and virtio threads, and time spent in the virtio register handlers.
Per MiB, less what the empty workload cost, that says where the time goes. QEMU ignores the
port; its rows are throughput only.

The network is a TAP inside a network namespace created for the run, with a host-side HTTP
server (a Python subprocess in the namespace) that answers a GET with the download's bytes and
counts the bytes of each POST. Nothing leaves the namespace. kvmpy opens the TAP from inside
the namespace (setns on this thread, then back); QEMU runs in it.

What the two kvmpy rows compare: under `--accel kvm` queue notifies are KVM ioeventfds
served by a device thread and interrupts irqfds, against MMIO exits into Python and
KVM_IRQ_LINE. The interpreter has neither eventfd mechanism (`supports_eventfds` is False),
so where Linux runs in the interpreter -- a PVM host, where KVM breaks `syscall` from ring 3
-- both rows take the exit path: each figure's note says which path ran, and the report lists
the eventfd path as missing.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .. import layout
from ..linux import ConsoleLog, command_cmdline, command_output
from .report import Figure, Missing, Report

QEMU = "qemu-system-x86_64"
MiB = 1 << 20
MARK_PORT = layout.BENCH_PORT
HOST_ADDRESS, GUEST_ADDRESS, PREFIX = "10.213.8.1", "10.213.8.2", 24
HTTP_PORT = 5601
TAP_NAME = "kvmpyio0"
MEM_SIZE = 256 * MiB
# Workloads and the bench-port mark the guest writes before each (and that plus one after).
# "empty" brackets nothing: what the bracketing itself costs (the clock reads and the marks'
# own processes), subtracted from every other workload's time and counters.
PHASES = {"empty": 2, "blk-read": 4, "blk-write": 6, "tcp-in": 8, "tcp-out": 10}
RESULT = re.compile(r"^IO (\S+) (\d+) (\d+) (\d+\.\d+) (\d+\.\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class IoSizes:
    disk_mib: int  # read and written on virtio-blk, per workload
    block_size: str  # dd's bs=
    net_mib: int  # host -> guest
    upload_mib: int  # guest -> host
    repeats: int


QUICK_SIZES = IoSizes(disk_mib=32, block_size="1M", net_mib=8, upload_mib=4, repeats=1)
FULL_SIZES = IoSizes(disk_mib=128, block_size="1M", net_mib=32, upload_mib=16, repeats=3)


# --- the guest's side ----------------------------------------------------------------------

def guest_script(sizes: IoSizes) -> str:
    """The shell command the guest runs: every workload, each bracketed by marks and timed.

    Prints one line per workload: `IO <name> <exit status> <bytes> <start> <end>` (seconds of
    the guest's clock)."""
    count = sizes.disk_mib * MiB // _bytes(sizes.block_size)
    lines = [
        f"m(){{ printf \"\\\\$(printf %o $1)\"|dd of=/dev/port bs=1 seek={MARK_PORT} count=1 conv=notrunc "
        "2>/dev/null;}",
        "t(){ adjtimex|awk '/tv_sec/{s=$2}/tv_usec/{printf \"%d.%06d\",s,$2}';}",
        'r(){ m $1;a=$(t);eval "$3";s=$?;b=$(t);m $(($1+1));echo "IO $2 $s $4 $a $b";}',
        f"ip link set eth0 up;ip addr add {GUEST_ADDRESS}/{PREFIX} dev eth0",
        f"r {PHASES['empty']} empty true 0",
        f"r {PHASES['blk-read']} blk-read 'dd if=/dev/vda of=/dev/null bs={sizes.block_size} count={count} "
        f"iflag=direct 2>/dev/null' {sizes.disk_mib * MiB}",
        f"r {PHASES['blk-write']} blk-write 'dd if=/dev/zero of=/dev/vda bs={sizes.block_size} count={count} "
        f"oflag=direct 2>/dev/null' {sizes.disk_mib * MiB}",
        f"r {PHASES['tcp-in']} tcp-in 'wget -q -O /dev/null http://{HOST_ADDRESS}:{HTTP_PORT}/' "
        f"{sizes.net_mib * MiB}",
        # busybox wget posts a file as a C string: no NUL bytes in it
        f"dd if=/dev/zero bs=64k count=16 2>/dev/null|tr '\\0' k >/tmp/m;"
        f"for i in $(seq {sizes.upload_mib});do cat /tmp/m;done>/tmp/u",
        f"r {PHASES['tcp-out']} tcp-out 'wget -q -O /dev/null --post-file /tmp/u http://{HOST_ADDRESS}:{HTTP_PORT}/' "
        f"{sizes.upload_mib * MiB}",
    ]
    return "\n".join(lines)


def _bytes(size: str) -> int:
    units = {"": 1, "k": 1 << 10, "K": 1 << 10, "M": MiB}
    match = re.fullmatch(r"(\d+)([kKM]?)", size)
    if not match:
        raise ValueError(f"block size {size!r}")
    return int(match.group(1)) * units[match.group(2)]


@dataclass
class PhaseResult:
    name: str
    status: int
    nbytes: int
    seconds: float  # by the guest's clock

    @property
    def mib_per_s(self) -> float:
        return self.nbytes / MiB / self.seconds


def parse_results(output: str) -> dict[str, PhaseResult]:
    results = {}
    for name, status, nbytes, start, end in RESULT.findall(output):
        results[name] = PhaseResult(name, int(status), int(nbytes), float(end) - float(start))
    return results


# --- kvmpy's side ----------------------------------------------------------------------------

class TimedDevice:
    """A bus device wrapped to add up the time its register accesses take (on vCPU threads:
    with the exit path, that is where a queue notify processes the queue)."""

    def __init__(self, device):
        self.device = device
        self.ns = 0

    def read(self, offset: int, size: int) -> int:
        start = time.perf_counter_ns()
        try:
            return self.device.read(offset, size)
        finally:
            self.ns += time.perf_counter_ns() - start

    def write(self, offset: int, size: int, value: int) -> None:
        start = time.perf_counter_ns()
        try:
            self.device.write(offset, size, value)
        finally:
            self.ns += time.perf_counter_ns() - start


def thread_cpu_ns() -> dict[str, int]:
    """CPU time of this process's threads so far, by role: vCPU threads, virtio threads
    (net receive, eventfd workers) and the rest."""
    totals = {"vcpu_cpu_ns": 0, "device_threads_cpu_ns": 0, "other_cpu_ns": 0}
    for thread in threading.enumerate():
        try:
            used = time.clock_gettime_ns(time.pthread_getcpuclockid(thread.ident))
        except (OSError, TypeError):  # ended meanwhile, or not started
            continue
        role = ("vcpu_cpu_ns" if thread.name.startswith("vcpu") else
                "device_threads_cpu_ns" if thread.name.startswith("virtio") else "other_cpu_ns")
        totals[role] += used
    return totals


class PhaseMarks:
    """The bench port during an I/O run: snapshots the machine's counters at each mark."""

    def __init__(self, counters):
        self._counters = counters  # () -> dict of running totals
        self.marks: dict[int, tuple[int, dict]] = {}

    def read(self, offset: int, size: int) -> int:
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.marks[value & 0xFF] = (time.monotonic_ns(), self._counters())

    def between(self, start: int) -> tuple[float, dict] | None:
        """(host seconds, counter deltas) from mark `start` to mark `start + 1`."""
        if start not in self.marks or start + 1 not in self.marks:
            return None
        (t0, c0), (t1, c1) = self.marks[start], self.marks[start + 1]
        return (t1 - t0) / 1e9, {key: c1[key] - c0[key] for key in c0}


@dataclass
class RunResult:
    phases: dict[str, PhaseResult]
    costs: dict[str, tuple[float, dict]] = field(default_factory=dict)  # phase -> (host s, deltas)
    path: str = ""  # the virtio path that actually ran
    accel: str = ""
    problem: str | None = None


def kvmpy_io_run(kernel: str, initrd: str, image: str, namespace: str, sizes: IoSizes, fast_path: bool,
                 accel: str = "auto", timeout: float = 300) -> RunResult:
    """Boot kvmpy with the disk and a virtio-net on the namespace's TAP, run the workloads."""
    from ..accel import accelerator_for_image
    from ..machine import Machine
    from ..virtio import BlockDevice, NetDevice

    log = ConsoleLog()
    accel = accelerator_for_image(accel, kernel, notice=lambda message: None)
    with Machine(mem_size=MEM_SIZE, cpus=1, serial_output=log.write, accel=accel) as machine:
        timed: list[TimedDevice] = []

        def counters() -> dict:
            stats = machine.accel.stats(machine.runners)
            return {"exits": stats.get("exits", 0), "instructions": stats.get("interpreted_instructions", 0),
                    "device_on_vcpu_ns": sum(device.ns for device in timed), **thread_cpu_ns()}

        marks = PhaseMarks(counters)
        machine.buses.ports.remove(MARK_PORT)
        machine.add_port_device(marks, MARK_PORT, 1, "io-marks")
        for device in (BlockDevice(image), NetDevice(_tap_in_namespace(namespace))):
            slot = machine.add_virtio(device, fast_path)
            mapping = machine.buses.mmio.find(slot.base)
            timed.append(TimedDevice(machine.buses.mmio.remove(slot.base)))
            machine.add_mmio_device(timed[-1], slot.base, mapping.length, mapping.name)
        machine.load(kernel, command_cmdline(guest_script(sizes)), initrd)
        stop = machine.run(timeout=timeout)
        path = "eventfd" if fast_path and machine.accel.supports_eventfds else "exit"
        result = RunResult({}, path=path, accel=machine.accel.name)
    output, status = command_output(log.text())
    result.phases = parse_results(output)
    for name, mark in PHASES.items():
        cost = marks.between(mark)
        if cost is not None:
            result.costs[name] = cost
    if status != 0 or stop.kind != "verdict":
        result.problem = f"{stop.kind}: {stop.message}; last output: {output.strip()[-300:]!r}"
    return result


def _tap_in_namespace(namespace: str):
    """Attach to the namespace's TAP from inside it; the fd keeps working from any namespace."""
    from pyroute2 import netns

    from ..virtio.tap import open_tap

    netns.pushns(namespace)
    try:
        return open_tap(f"tap={TAP_NAME}")
    finally:
        netns.popns()


# --- QEMU's side -----------------------------------------------------------------------------

# kvmpy's virtio-net offers no offloads (no checksum, TSO/GSO or merged receive buffers), so
# every frame is at most 1514 bytes and the guest checksums everything itself. QEMU offers all
# of them by default; with these off its device does what kvmpy's does.
QEMU_NET_NO_OFFLOADS = ("csum=off,guest_csum=off,gso=off,guest_tso4=off,guest_tso6=off,guest_ecn=off,"
                        "guest_ufo=off,host_tso4=off,host_tso6=off,host_ecn=off,host_ufo=off,mrg_rxbuf=off")


def qemu_io_run(kernel: str, initrd: str, image: str, namespace: str, sizes: IoSizes, offloads: bool = True,
                timeout: float = 300) -> RunResult:
    """The same workloads under QEMU TCG (microvm, acpi=off so that it announces its virtio-mmio
    devices on the kernel command line), its virtio-blk and virtio-net on the same TAP."""
    net_device = "virtio-net-device,netdev=n0" + ("" if offloads else "," + QEMU_NET_NO_OFFLOADS)
    command = [
        "ip", "netns", "exec", namespace,
        QEMU, "-accel", "tcg", "-M", "microvm,acpi=off", "-m", str(MEM_SIZE // MiB), "-smp", "1", "-display", "none",
        "-serial", "stdio", "-no-reboot", "-kernel", kernel, "-initrd", initrd,
        "-device", "isa-debug-exit,iobase=0xf4,iosize=1",
        "-drive", f"file={image},if=none,id=d0,format=raw",
        "-device", "virtio-blk-device,drive=d0",
        "-netdev", f"tap,id=n0,ifname={TAP_NAME},script=no,downscript=no",
        "-device", net_device,
        "-append", command_cmdline(guest_script(sizes)),
    ]
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        console = (expired.stdout or b"").decode(errors="replace")
        return RunResult({}, path="qemu", accel="tcg", problem=f"timed out after {timeout} s: {console[-300:]!r}")
    console = done.stdout.decode(errors="replace").replace("\r\n", "\n")
    output, status = command_output(console)
    result = RunResult(parse_results(output), path="qemu", accel="tcg")
    if status != 0:  # isa-debug-exit: QEMU exits with (status << 1) | 1
        tail = (output or console).strip()[-300:] + done.stderr.decode(errors="replace")[-300:]
        result.problem = f"exit status {done.returncode}, guest status {status}: {tail!r}"
    return result


# --- the namespace and the host-side server ------------------------------------------------

SERVER = """
import socket, sys, threading
download_bytes = int(sys.argv[1])
data = bytes(range(256)) * (1 << 12)  # 1 MiB
server = socket.create_server(("{host}", {port}), backlog=8)
output = threading.Lock()

def handle(client):
    with client:
        stream = client.makefile("rb")
        method, length = stream.readline().split()[:1], 0
        while (line := stream.readline()) not in (b"\\r\\n", b"\\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if method == [b"GET"]:
            client.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % download_bytes)
            left = download_bytes
            while left:
                left -= client.send(memoryview(data)[:min(left, len(data))])
        else:
            total = 0
            while total < length and (chunk := stream.read1(min(1 << 16, length - total))):
                total += len(chunk)
            with output:
                print("UPLOAD", total, flush=True)
            client.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 0\\r\\n\\r\\n")

print("READY", flush=True)
while True:
    client, _ = server.accept()
    threading.Thread(target=handle, args=(client,), daemon=True).start()
""".format(host=HOST_ADDRESS, port=HTTP_PORT)


class BenchNetwork:
    """A network namespace with a persistent TAP (host end addressed) and the server in it."""

    def __init__(self, download_bytes: int):
        from pyroute2 import NetNS, netns

        self.name = f"kvmpy-bench-{os.getpid()}"
        netns.create(self.name)
        self.server = None
        self.uploads: list[int] = []
        self._changed = threading.Condition()
        self._server_gone = False
        try:
            with NetNS(self.name) as ns:
                ns.link("add", ifname=TAP_NAME, kind="tuntap", mode="tap")
                index = ns.link_lookup(ifname=TAP_NAME)[0]
                ns.addr("add", index=index, address=HOST_ADDRESS, prefixlen=PREFIX)
                ns.link("set", index=index, state="up")
                ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
            self.server = subprocess.Popen(
                ["ip", "netns", "exec", self.name, sys.executable, "-c", SERVER, str(download_bytes)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
            if self.server.stdout.readline().strip() != "READY":
                raise RuntimeError("the bench's network server did not start")
            self._reader = threading.Thread(target=self._read_uploads, daemon=True)
            self._reader.start()
        except BaseException:
            self.close()
            raise

    def _read_uploads(self) -> None:
        for line in self.server.stdout:
            if line.startswith("UPLOAD "):
                with self._changed:
                    self.uploads.append(int(line.split()[1]))
                    self._changed.notify_all()
        with self._changed:
            self._server_gone = True
            self._changed.notify_all()

    def wait_for_uploads(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until the server has reported `count` uploads (it prints each when the client
        has closed, which may be a moment after the guest's nc returned)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.uploads) >= count or self._server_gone, timeout)

    def close(self) -> None:
        from pyroute2 import netns

        if self.server is not None:
            self.server.kill()
            self.server.wait()
        netns.remove(self.name)

    def __enter__(self) -> "BenchNetwork":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def network_unavailable() -> str | None:
    """Why the TAP workloads cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (a network namespace and a TAP)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "pyroute2 is not installed"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) to run the server in the namespace"
    return None


def make_image(path: str, mib: int) -> None:
    """A raw image of `mib` MiB, every block allocated (a sparse file would read faster)."""
    block = bytes(range(256)) * (MiB // 256)
    with open(path, "wb") as image:
        for _ in range(mib):
            image.write(block)


# --- the figures -----------------------------------------------------------------------------

CONFIGURATIONS = (  # (label, fast_path)
    ("kvmpy eventfd", True),
    ("kvmpy exit", False),
)


def cost_figures(label: str, name: str, entries: list[tuple[float, dict, int]]) -> list[Figure]:
    """What a MiB of workload `name` cost between the guest's marks: exits, host CPU time
    (vCPU threads plus virtio threads) and the part of it in virtio device code, and the
    instructions the interpreter ran (when it ran the guest)."""
    def per_mib(value) -> list[float]:
        return [value(deltas) / (nbytes / MiB) for _, deltas, nbytes in entries]

    wall = statistics.median(seconds * 1000 / (nbytes / MiB) for seconds, _, nbytes in entries)
    title = f"{label}: {name}"
    figures = [
        Figure("io-exits", title, "exits/MiB", per_mib(lambda d: d["exits"]),
               note="port and MMIO accesses (exits under KVM) between the guest's marks, less the empty "
                    "workload's"),
        Figure("io-cpu", f"{title}: total", "CPU ms/MiB",
               per_mib(lambda d: (d["vcpu_cpu_ns"] + d["device_threads_cpu_ns"]) / 1e6),
               note=f"CPU time of the vCPU and virtio threads; wall time {wall:.0f} ms/MiB"),
        Figure("io-cpu", f"{title}: in virtio code", "CPU ms/MiB",
               per_mib(lambda d: (d["device_on_vcpu_ns"] + d["device_threads_cpu_ns"]) / 1e6),
               note="virtio register and notify handlers on vCPU threads, plus the virtio threads (net "
                    "receive, eventfd workers); the rest of the total is the guest's own code"),
    ]
    instructions = per_mib(lambda d: d["instructions"] / 1e6)
    if any(instructions):
        figures.append(Figure("io-insns", title, "M insns/MiB", instructions,
                              note="guest instructions the interpreter ran between the marks"))
    return figures


class IoResults:
    """Runs' results gathered into figures: throughput per configuration and workload, what a
    MiB cost, and what could not be measured."""

    def __init__(self) -> None:
        self.throughput: dict[tuple[str, str], Figure] = {}
        self.costs: dict[tuple[str, str], list[tuple[float, dict, int]]] = {}
        self.paths: dict[str, set] = {}  # label -> {(accelerator, virtio path)}
        self.problems: list[str] = []

    def add(self, label: str, result: RunResult, uploads: list[int]) -> None:
        """One boot's results; `uploads` are the byte counts the host received meanwhile."""
        self.paths.setdefault(label, set()).add((result.accel, result.path))
        if result.problem:
            self.problems.append(f"{label}: {result.problem}")
        phases, costs = dict(result.phases), dict(result.costs)
        empty, empty_cost = phases.pop("empty", None), costs.pop("empty", None)
        if empty is None:
            if phases:
                self.problems.append(f"{label}: the empty workload did not run")
            return
        for name, phase in phases.items():
            seconds = phase.seconds - empty.seconds
            if phase.status != 0 or seconds <= 0:
                self.problems.append(f"{label}: {name} failed in the guest (status {phase.status})")
                continue
            if name == "tcp-out" and phase.nbytes not in uploads:
                self.problems.append(f"{label}: tcp-out: the host did not receive {phase.nbytes} bytes")
                continue
            figure = self.throughput.setdefault((label, name), Figure(
                "io", f"{label}: {name}", "MiB/s",
                note=f"{phase.nbytes / MiB:g} MiB, by the guest's clock, less the empty workload's time"))
            figure.samples.append(phase.nbytes / MiB / seconds)
            if name in costs and empty_cost is not None:
                (host_seconds, deltas), (empty_seconds, empty_deltas) = costs[name], empty_cost
                net = {key: value - empty_deltas[key] for key, value in deltas.items()}
                self.costs.setdefault((label, name), []).append((host_seconds - empty_seconds, net, phase.nbytes))

    def into(self, report: Report) -> None:
        for (label, name), figure in self.throughput.items():
            if label.startswith("kvmpy"):
                ran = sorted(self.paths.get(label, ()))
                figure.note += "; ran: " + ", ".join(f"{accel} accelerator, {path} path" for accel, path in ran)
            elif "no-offload" in label:
                figure.note += "; QEMU's virtio-mmio blk and net, net offloads off as in kvmpy's device"
            else:
                figure.note += "; QEMU's virtio-mmio blk and net, net offloads on (its default)"
            report.figures.append(figure)
        kvmpy_runs = {run for label, _ in CONFIGURATIONS for run in self.paths.get(label, ())}
        if kvmpy_runs and all(path != "eventfd" for _, path in kvmpy_runs):
            accels = "/".join(sorted({accel for accel, _ in kvmpy_runs}))
            report.missing.append(Missing(
                "io: kvmpy eventfd path",
                f"not measurable here: the guest ran on the {accels} accelerator, which has no ioeventfd/irqfd "
                "(Linux runs in the interpreter where /dev/kvm is unusable or breaks syscall from ring 3, as "
                "on a PVM host), so the 'eventfd path' rows took the exit path too"))
        for (label, name), entries in self.costs.items():
            report.figures += cost_figures(label, name, entries)
        for problem in self.problems:
            report.missing.append(Missing("io", problem))


def run_io(report: Report, kernel: str, initrd: str, quick: bool, progress=print, include_qemu: bool = True,
           sizes: IoSizes | None = None) -> None:
    """Boot each configuration `sizes.repeats` times, run the workloads, add the figures."""
    sizes = sizes or (QUICK_SIZES if quick else FULL_SIZES)
    why = network_unavailable()
    if why is not None:
        report.missing.append(Missing("io", f"the I/O figures need a TAP in a network namespace: {why}"))
        return
    results = IoResults()
    with tempfile.TemporaryDirectory(prefix="kvmpy-bench-io-") as directory, \
            BenchNetwork(sizes.net_mib * MiB) as network:
        image = os.path.join(directory, "disk.img")
        make_image(image, sizes.disk_mib)
        runs = [(label, lambda fast=fast_path: kvmpy_io_run(kernel, initrd, image, network.name, sizes, fast))
                for label, fast_path in CONFIGURATIONS]
        if include_qemu and shutil.which(QEMU):
            runs.append(("QEMU TCG", lambda: qemu_io_run(kernel, initrd, image, network.name, sizes)))
            runs.append(("QEMU TCG no-offload",
                         lambda: qemu_io_run(kernel, initrd, image, network.name, sizes, offloads=False)))
        for repeat in range(sizes.repeats):
            for label, run in runs:
                progress(f"io: round {repeat + 1}/{sizes.repeats} ({label})")
                before = len(network.uploads)
                result = run()
                if "tcp-out" in result.phases:
                    network.wait_for_uploads(before + 1)
                results.add(label, result, network.uploads[before:])
    results.into(report)
    if include_qemu and not shutil.which(QEMU):
        report.missing.append(Missing("io: QEMU TCG", f"{QEMU} is not installed"))


if __name__ == "__main__":  # python -m kvmpy.bench.io KERNEL INITRD [--full]: the I/O figures alone
    report = Report()
    with contextlib.suppress(KeyboardInterrupt):
        run_io(report, sys.argv[1], sys.argv[2], quick="--full" not in sys.argv,
               progress=lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
    print(report.table())
    for figure in report.figures:
        if figure.note:
            print(f"note: {figure.name} [{figure.unit}]: {figure.note}")
