"""Each tiny guest of boot/guests, run under the real /dev/kvm."""

import os
import threading

import pytest

from kvmpy import layout
from kvmpy.errors import GuestError
from kvmpy.exits.kinds import StopReason
from kvmpy.guests import EXPECTED
from kvmpy.machine import Machine

MiB = 1 << 20


def run_guest(path, cmdline="", cpus=1, timeout=60):
    output = bytearray()
    with Machine(mem_size=32 * MiB, cpus=cpus, serial_output=output.extend) as machine:
        machine.load(path, cmdline)
        reason = machine.run(timeout=timeout)
    return reason, output.decode()


@pytest.mark.parametrize("name,cmdline,kind,code,expected_output", EXPECTED, ids=[e.name for e in EXPECTED])
def test_tiny_guest(guest, name, cmdline, kind, code, expected_output):
    reason, output = run_guest(guest(name), cmdline)
    assert (reason.kind, reason.exit_code) == (kind, code), reason.message
    assert output.startswith(expected_output)


def test_two_vcpus_run_concurrently_and_both_report(guest):
    reason, output = run_guest(guest("smp"), cmdline="2", cpus=2)
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


def spinning_machine(guest):
    """A machine whose guest marks the POST port, then counts down for far longer than any test."""
    machine = Machine(mem_size=32 * MiB, serial_output=lambda data: None)
    marker = Signal()
    machine.buses.ports.remove(layout.POST_PORT)
    machine.add_port_device(marker, layout.POST_PORT, 1)
    machine.load(guest("ring3_loop"), str(2**62))
    return machine, marker


def test_stop_from_another_thread_ends_a_running_guest(guest):
    machine, marker = spinning_machine(guest)
    result = {}
    runner = threading.Thread(target=lambda: result.update(reason=machine.run()))
    runner.start()
    assert marker.written.wait(30), "guest never reached its loop"
    machine.request_stop(StopReason("quit", 0, "test stop"))
    runner.join(30)
    assert not runner.is_alive()
    assert result["reason"].message == "test stop"
    machine.close()


def test_timeout_stops_a_guest_that_never_finishes(guest):
    machine, _marker = spinning_machine(guest)
    with machine:
        reason = machine.run(timeout=0.5)
    assert (reason.kind, reason.exit_code) == ("timeout", 124)


def test_pause_holds_the_vcpu_so_its_registers_can_be_read(guest):
    machine = Machine(mem_size=32 * MiB, serial_output=lambda data: None)
    bench_port = Signal()  # port_loop writes it on every iteration
    machine.buses.ports.remove(layout.BENCH_PORT)
    machine.add_port_device(bench_port, layout.BENCH_PORT, 1)
    machine.load(guest("port_loop"), str(2**62))
    threading.Thread(target=machine.run, daemon=True).start()
    assert bench_port.written.wait(30)
    runner = machine.runners[0]
    assert runner.pause(timeout=30)
    held = machine.vcpus[0].get_regs().rcx
    bench_port.written.clear()
    assert not bench_port.written.is_set() and machine.vcpus[0].get_regs().rcx == held
    runner.resume()
    assert bench_port.written.wait(30), "the guest did not run again after resume"
    assert runner.pause(timeout=30)
    assert machine.vcpus[0].get_regs().rcx < held
    machine.request_stop(StopReason("quit", 0, "done"))
    assert runner.join(30)
    machine.close()


class Exploding:
    def read(self, offset, size):
        raise RuntimeError("device model bug")

    def write(self, offset, size, value):
        raise RuntimeError("device model bug")


def test_an_exception_in_a_vcpu_thread_stops_the_vm_and_names_the_error(guest):
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None) as machine:
        machine.buses.ports.remove(layout.DEBUG_EXIT_PORT)
        machine.add_port_device(Exploding(), layout.DEBUG_EXIT_PORT, 1)
        machine.load(guest("hello"))
        reason = machine.run(timeout=30)
    assert reason.kind == "error" and "device model bug" in reason.message and reason.exit_code != 0


def test_every_fd_is_closed_after_the_machine_is(guest):
    before = set(os.listdir("/proc/self/fd"))
    reason, _ = run_guest(guest("smp"), "2", cpus=2)
    assert reason.kind == "verdict"
    assert set(os.listdir("/proc/self/fd")) <= before


def test_unhandled_exit_reports_registers(guest):
    from kvmpy.exits.kinds import FailEntry, Unhandled
    from kvmpy.vcpu.runner import describe_unhandled

    with Machine(mem_size=32 * MiB, serial_output=lambda data: None) as machine:
        machine.load(guest("hello"))
        text = describe_unhandled(machine.vcpus[0], Unhandled(FailEntry(0x21, 0), "VM entry failed"))
    assert text.startswith("VM entry failed: rip=0x100000") and "cr0=" in text
    assert issubclass(GuestError, Exception)


def test_instructions_kvm_cannot_emulate_are_run_by_the_fallback(guest):
    """Here (PVM) KVM fails on int3/popcnt/stac/clac/xsave/xrstor at ring 0; with VT-x it does not."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="kvm", fallback_burst=0) as machine:
        machine.load(guest("fallback"))
        bare = machine.run(timeout=60)
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="kvm") as machine:
        machine.load(guest("fallback"))
        helped = machine.run(timeout=60)
        fallbacks = machine.stats()["fallbacks"]
    assert (helped.kind, helped.exit_code) == ("verdict", 0), helped.message
    if bare.kind == "verdict":  # hardware virtualization: KVM ran everything itself
        assert bare.exit_code == 0 and not fallbacks
    else:
        assert bare.kind == "error" and "could not emulate" in bare.message and "instruction bytes" in bare.message
        assert set(fallbacks) <= {"int3", "popcnt", "stac", "clac", "xsave", "xrstor", "xsetbv", "movdqu"}
        assert fallbacks and all(count >= 1 for count in fallbacks.values())


def test_syscall_probe_reports_a_ring(guest):
    reason, _ = run_guest(guest("syscall"))
    assert reason.kind == "verdict" and reason.exit_code in (0, 3)
