"""Every tiny guest of boot/guests run whole in the software interpreter (`accel="interp"`):
the same output and verdict as under KVM (tests/kvm/test_tiny_guests.py), and the runner's
control interface (stop, pause, timeout, errors) behaving like the KVM runner's."""

import os
import threading

import pytest

from kvmpy import layout
from kvmpy.exits.kinds import StopReason
from kvmpy.loader import BootImage
from kvmpy.guests import EXPECTED
from kvmpy.machine import Machine
from kvmpy.vcpu.modes import StartMode

MiB = 1 << 20


def run_guest(path, cmdline="", cpus=1, timeout=60):
    output = bytearray()
    with Machine(mem_size=32 * MiB, cpus=cpus, serial_output=output.extend, accel="interp") as machine:
        machine.load(path, cmdline)
        reason = machine.run(timeout=timeout)
        stats = machine.stats()
    return reason, output.decode(), stats


@pytest.mark.parametrize("name,cmdline,kind,code,expected_output", EXPECTED, ids=[e.name for e in EXPECTED])
def test_tiny_guest(guest, name, cmdline, kind, code, expected_output):
    """The same as under KVM; and the syscall probe's handler runs at CPL 0, as on hardware."""
    reason, output, stats = run_guest(guest(name), cmdline)
    assert (reason.kind, reason.exit_code) == (kind, code), reason.message
    assert output.startswith(expected_output)
    assert stats["accel"] == "interp" and stats["interpreted_instructions"] > 0


def test_syscall_reaches_ring_0(guest):
    reason, _, _ = run_guest(guest("syscall"))
    assert (reason.kind, reason.exit_code) == ("verdict", 0)


def test_the_timer_guest_sleeps_in_hlt_between_ticks(guest):
    """Five ticks at 100 Hz: about 50 ms of waiting on the PIT, not of spinning through HLT."""
    reason, _, stats = run_guest(guest("timer"))
    assert reason.kind == "verdict" and reason.exit_code == 0
    assert stats["seconds"] >= 0.04
    assert stats["interpreted_instructions"] < 10_000


def test_loop_guests_count_every_iteration(guest):
    _, _, small = run_guest(guest("ring3_loop"), "1000")
    _, _, large = run_guest(guest("ring3_loop"), "101000")
    extra = large["interpreted_instructions"] - small["interpreted_instructions"]
    assert 2 * 100_000 <= extra < 2 * 100_000 + 100  # two instructions a loop, plus two more digits parsed
    _, _, ports = run_guest(guest("port_loop"), "1000")
    assert ports["exits"] >= 1000


def test_two_vcpus_start_at_the_entry_and_both_report(guest):
    reason, output, _ = run_guest(guest("smp"), cmdline="2", cpus=2)
    assert (reason.kind, reason.exit_code) == ("verdict", 0)
    assert sorted(output.splitlines()) == ["hello from vCPU 0", "hello from vCPU 1"]


class Signal:
    """A port device that sets an event when the guest writes to it."""

    def __init__(self):
        self.written = threading.Event()

    def read(self, offset, size):
        return 0

    def write(self, offset, size, value):
        self.written.set()


def spinning_machine(guest, port=layout.POST_PORT, name="ring3_loop"):
    """A machine whose guest marks `port`, then counts down for far longer than any test."""
    machine = Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp")
    marker = Signal()
    machine.buses.ports.remove(port)
    machine.add_port_device(marker, port, 1)
    machine.load(guest(name), str(2**62))
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
    machine, bench_port = spinning_machine(guest, layout.BENCH_PORT, "port_loop")
    threading.Thread(target=machine.run, daemon=True).start()
    assert bench_port.written.wait(30)
    runner = machine.runners[0]
    assert runner.pause(timeout=30)
    held = machine.vcpus[0].get("rcx")
    bench_port.written.clear()
    assert not bench_port.written.wait(0.2) and machine.vcpus[0].get("rcx") == held
    runner.resume()
    assert bench_port.written.wait(30), "the guest did not run again after resume"
    assert runner.pause(timeout=30)
    assert machine.vcpus[0].get("rcx") < held
    machine.request_stop(StopReason("quit", 0, "done"))
    assert runner.join(30)
    machine.close()


def test_pause_and_stop_reach_a_vcpu_sleeping_in_hlt(guest):
    """The halt guest sleeps with interrupts off, which nothing in the guest can end: the
    machine's power-off check must pause it to see that, and the stop must end its thread."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp") as machine:
        machine.load(guest("halt"))
        reason = machine.run(timeout=30)
        assert reason.kind == "poweroff"
        assert machine.runners[0].join(0) and machine.runners[0].parked()


class Exploding:
    def read(self, offset, size):
        raise RuntimeError("device model bug")

    def write(self, offset, size, value):
        raise RuntimeError("device model bug")


def test_an_exception_in_a_device_stops_the_vm_and_names_the_error(guest):
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp") as machine:
        machine.buses.ports.remove(layout.DEBUG_EXIT_PORT)
        machine.add_port_device(Exploding(), layout.DEBUG_EXIT_PORT, 1)
        machine.load(guest("hello"))
        reason = machine.run(timeout=30)
    assert reason.kind == "error" and "device model bug" in reason.message and reason.exit_code != 0


def test_an_unimplemented_instruction_is_counted_and_raises_ud_in_the_guest():
    """movddup (SSE3, not in the interpreter) at the entry, with the boot IDT empty: the #UD
    the guest gets cannot be delivered, so it ends in a triple fault."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp") as machine:
        machine.memory.write(layout.HIGH_MEMORY, bytes.fromhex("f20f12c1"))  # movddup xmm0, xmm1
        machine.image = BootImage(layout.HIGH_MEMORY, StartMode.LONG)
        machine.accel.start(machine.image)
        reason = machine.run(timeout=30)
        assert machine.stats()["unimplemented"] == {"sse_0f12": 1}
    assert reason.kind == "shutdown"


def test_every_fd_is_closed_after_the_machine_is(guest):
    before = set(os.listdir("/proc/self/fd"))
    reason, _, _ = run_guest(guest("smp"), "2", cpus=2)
    assert reason.kind == "verdict"
    assert set(os.listdir("/proc/self/fd")) <= before


def test_too_many_vcpus_is_a_configuration_error():
    with pytest.raises(Exception, match="--cpus"):
        Machine(mem_size=32 * MiB, cpus=17, accel="interp")
