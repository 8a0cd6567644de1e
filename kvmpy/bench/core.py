"""The core VMM's figures: exit round trip (Python vs C), start-up, RSS.

The C exit loop and the Python exit loop serve the same guest in the same process, in the
same run, so their ratio is fair whatever the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from .. import layout
from ..devices.testdev import MarkerClock
from ..exits import decode_exit, handle_exit
from ..guests import guest_path
from ..machine import Machine
from ..native import ffi, lib
from ..probe import time_guest_loop
from .report import Figure, Ratio, Report

MARK_LOOP_START = 1
MiB = layout.MiB


def _port_loop_machine(exits: int) -> tuple[Machine, MarkerClock]:
    machine = Machine(mem_size=16 * MiB, serial_output=lambda data: None)
    clock = MarkerClock(clock=lib.kvmpy_monotonic_ns)
    machine.buses.ports.remove(layout.POST_PORT)
    machine.add_port_device(clock, layout.POST_PORT, 1, "marker-clock")
    machine.load(str(guest_path("port_loop")), str(exits))
    return machine, clock


def exit_round_trip_python(exits: int) -> float:
    """µs per port-I/O exit through kvmpy's full path: run thread, decode, dispatch, bus, device."""
    machine, clock = _port_loop_machine(exits)
    with machine:
        reason = machine.run(timeout=600)
        if reason.kind != "verdict":
            raise RuntimeError(f"port_loop guest failed: {reason.message}")
    return clock.elapsed_ns() / exits / 1000


def exit_round_trip_c(exits: int) -> float:
    """µs per port-I/O exit when a minimal C loop answers them: the floor set by KVM itself."""
    machine, clock = _port_loop_machine(exits)
    with machine:
        vcpu = machine.vcpus[0]
        while MARK_LOOP_START not in clock.marks:  # the guest's ring-0 set-up, in Python
            vcpu.run()
            handle_exit(decode_exit(vcpu.run_state, vcpu.run_bytes), machine.buses)
        count = ffi.new("uint64_t *")
        start = lib.kvmpy_monotonic_ns()
        reason = lib.kvmpy_run_port_loop(vcpu.fd, vcpu.run_state, layout.BENCH_PORT, count)
        elapsed = lib.kvmpy_monotonic_ns() - start
        if reason < 0 or count[0] != exits:
            raise RuntimeError(f"C exit loop stopped early: {reason}, {count[0]} exits")
    return elapsed / exits / 1000


def fallback_round_trip_us(count: int) -> float:
    """µs per `popcnt` at ring 0 under KVM: on PVM each is an emulation failure that kvmpy's
    interpreter executes (state out of KVM, one instruction, state back); natively ~0."""
    return time_guest_loop("fallback_loop", count).ns_per_iteration / 1000


def startup_ms() -> float:
    """Process start to the default guest's first byte on our stdout (its first exit), in ms."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "kvmpy", "run"], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, env=_child_env())
    first = process.stdout.read(1)
    elapsed = (time.perf_counter() - start) * 1000
    process.stdout.read()
    if process.wait() != 0 or not first:
        raise RuntimeError("kvmpy run failed while measuring start-up")
    return elapsed


def _child_env() -> dict:
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return dict(os.environ, PYTHONPATH=package_parent)


FOOTPRINT_SCRIPT = """
import json
from kvmpy.machine import Machine
from kvmpy.guests import guest_path
from kvmpy.native import ffi
machine = Machine(mem_size=256 << 20, serial_output=lambda data: None)
machine.load(str(guest_path()))
machine.run(timeout=60)
guest = [(int(ffi.cast('uintptr_t', ffi.from_buffer(r.backing))), r.size) for r in machine.memory.regions]
total = guest_rss = 0
start = None
for line in open('/proc/self/smaps'):
    head = line.split()[0]
    if '-' in head and not head.endswith(':'):
        start = int(head.split('-')[0], 16)
    elif head == 'Rss:':
        kib = int(line.split()[1])
        total += kib
        if any(base == start for base, size in guest):
            guest_rss += kib
print(json.dumps({'rss_kib': total, 'guest_rss_kib': guest_rss}))
"""


def vmm_rss_mib() -> float:
    """Resident memory of a process that ran a VM, without the guest RAM mappings, in MiB."""
    result = subprocess.run([sys.executable, "-c", FOOTPRINT_SCRIPT], capture_output=True, text=True,
                            env=_child_env(), check=True)
    footprint = json.loads(result.stdout)
    return (footprint["rss_kib"] - footprint["guest_rss_kib"]) / 1024


def run_core(report: Report, repeats: int, exits: int, progress=print) -> None:
    py = Figure("exits", "port-I/O exit round trip, Python handler", "µs/exit")
    c = Figure("exits", "port-I/O exit round trip, C loop", "µs/exit")
    fallback = Figure("exits", "KVM emulation failure -> interpreter -> KVM", "µs/instruction")
    start = Figure("start-up", "process start -> first guest exit", "ms")
    rss = Figure("memory", "VMM RSS without guest RAM", "MiB")
    for repeat in range(repeats):
        progress(f"core: round {repeat + 1}/{repeats}")
        c.samples.append(exit_round_trip_c(exits))
        py.samples.append(exit_round_trip_python(exits))
        fallback.samples.append(fallback_round_trip_us(max(exits // 20, 100)))
        start.samples.append(startup_ms())
        rss.samples.append(vmm_rss_mib())
    report.figures += [py, c, fallback, start, rss]
    exit_ratio = py.median / c.median
    report.ratios += [
        Ratio("exit round trip: Python / C", exit_ratio, "<= 1.5x", exit_ratio <= 1.5),
        Ratio("start-up (ms)", start.median, "<= 100 ms", start.median <= 100),
        Ratio("VMM RSS without guest RAM (MiB)", rss.median, "<= 30 MiB", rss.median <= 30),
    ]
