"""What only the interpreter accelerator does: ring 0 for syscall, HLT that really sleeps,
exact instruction counts, unimplemented instructions, its vCPU limit. (Every guest's result
and the stop/pause/timeout contract under both accelerators: tests/machine.)"""

import threading

import pytest

from kvmpy import layout
from kvmpy.loader import BootImage
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


def test_pause_and_stop_reach_a_vcpu_sleeping_in_hlt(guest):
    """The halt guest sleeps with interrupts off, which nothing in the guest can end: the
    machine's power-off check must pause it to see that, and the stop must end its thread."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp") as machine:
        machine.load(guest("halt"))
        reason = machine.run(timeout=30)
        assert reason.kind == "poweroff"
        assert machine.runners[0].join(0) and machine.runners[0].parked()


def test_an_unimplemented_instruction_is_counted_and_raises_ud_in_the_guest():
    """sysenter (not in the interpreter: 64-bit guests use syscall) at the entry, with the boot
    IDT empty: the #UD the guest gets cannot be delivered, so it ends in a triple fault."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="interp") as machine:
        machine.memory.write(layout.HIGH_MEMORY, bytes.fromhex("0f34"))  # sysenter
        machine.image = BootImage(layout.HIGH_MEMORY, StartMode.LONG)
        machine.accel.start(machine.image)
        reason = machine.run(timeout=30)
        assert machine.stats()["unimplemented"] == {"sysenter": 1}
    assert reason.kind == "shutdown"


def test_too_many_vcpus_is_a_configuration_error():
    with pytest.raises(Exception, match="--cpus"):
        Machine(mem_size=32 * MiB, cpus=17, accel="interp")
