"""The machine's contract, whichever accelerator runs the vCPUs: every tiny guest's result,
two vCPUs, stop/timeout/pause from another thread, device errors, nothing left open.

Each test runs under `kvm` (skipped with the reason where /dev/kvm is unusable) and `interp`.
"""

import os
import threading

import pytest

from kvmpy import layout
from kvmpy.exits.kinds import StopReason
from kvmpy.guests import EXPECTED
from kvmpy.machine import Machine

MiB = 1 << 20


def run_guest(path, accel, cmdline="", cpus=1, timeout=60):
    output = bytearray()
    with Machine(mem_size=32 * MiB, cpus=cpus, serial_output=output.extend, accel=accel) as machine:
        machine.load(path, cmdline)
        reason = machine.run(timeout=timeout)
        stats = machine.stats()
    return reason, output.decode(), stats


@pytest.mark.parametrize("name,cmdline,kind,code,expected_output", EXPECTED, ids=[e.name for e in EXPECTED])
def test_tiny_guest(guest, accel, name, cmdline, kind, code, expected_output):
    reason, output, stats = run_guest(guest(name), accel, cmdline)
    assert (reason.kind, reason.exit_code) == (kind, code), reason.message
    assert output.startswith(expected_output)
    assert stats["accel"] == accel


def test_two_vcpus_run_and_both_report(guest, accel):
    reason, output, _ = run_guest(guest("smp"), accel, cmdline="2", cpus=2)
    assert (reason.kind, reason.exit_code) == ("verdict", 0)
    assert sorted(output.splitlines()) == ["hello from vCPU 0", "hello from vCPU 1"]


class Signal:
    """A port device that sets an event when the guest writes to it (a POST marker)."""

    def __init__(self):
        self.written = threading.Event()

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        self.written.set()


def spinning_machine(guest, accel, name="ring3_loop", port=layout.POST_PORT):
    """A machine whose guest writes `port`, then loops for far longer than any test."""
    machine = Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel=accel)
    marker = Signal()
    machine.buses.ports.remove(port)
    machine.add_port_device(marker, port, 1)
    machine.load(guest(name), str(2**62))
    return machine, marker


def rcx(machine) -> int:
    vcpu = machine.vcpus[0]
    return vcpu.get("rcx") if hasattr(vcpu, "get") else vcpu.get_regs().rcx


def test_stop_from_another_thread_ends_a_running_guest(guest, accel):
    machine, marker = spinning_machine(guest, accel)
    result = {}
    runner = threading.Thread(target=lambda: result.update(reason=machine.run()))
    runner.start()
    assert marker.written.wait(30), "guest never reached its loop"
    machine.request_stop(StopReason("quit", 0, "test stop"))
    runner.join(30)
    assert not runner.is_alive()
    assert result["reason"].message == "test stop"
    machine.close()


def test_timeout_stops_a_guest_that_never_finishes(guest, accel):
    machine, _marker = spinning_machine(guest, accel)
    with machine:
        reason = machine.run(timeout=0.5)
    assert (reason.kind, reason.exit_code) == ("timeout", 124)


def test_pause_holds_the_vcpu_so_its_registers_can_be_read(guest, accel):
    machine, bench_port = spinning_machine(guest, accel, "port_loop", layout.BENCH_PORT)
    running = threading.Thread(target=machine.run, daemon=True)
    running.start()
    assert bench_port.written.wait(30)
    runner = machine.runners[0]
    assert runner.pause(timeout=30)
    held = rcx(machine)
    bench_port.written.clear()
    assert not bench_port.written.is_set() and rcx(machine) == held
    runner.resume()
    assert bench_port.written.wait(30), "the guest did not run again after resume"
    assert runner.pause(timeout=30)
    assert rcx(machine) < held
    machine.request_stop(StopReason("quit", 0, "done"))
    running.join(30)  # run() itself must have returned before the vCPUs are closed under it
    assert not running.is_alive() and runner.join(0)
    machine.close()


class Exploding:
    def read(self, offset, size):
        raise RuntimeError("device model bug")

    def write(self, offset, size, value):
        raise RuntimeError("device model bug")


def test_an_exception_in_a_device_stops_the_vm_and_names_the_error(guest, accel):
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel=accel) as machine:
        machine.buses.ports.remove(layout.DEBUG_EXIT_PORT)
        machine.add_port_device(Exploding(), layout.DEBUG_EXIT_PORT, 1)
        machine.load(guest("hello"))
        reason = machine.run(timeout=30)
    assert reason.kind == "error" and "device model bug" in reason.message and reason.exit_code != 0


def test_every_fd_is_closed_after_the_machine_is(guest, accel):
    before = set(os.listdir("/proc/self/fd"))
    reason, _, _ = run_guest(guest("smp"), accel, "2", cpus=2)
    assert reason.kind == "verdict"
    assert set(os.listdir("/proc/self/fd")) <= before
