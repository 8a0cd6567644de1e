"""The accelerators' debug control with real vCPU threads (kvmpy/accel/debug.py): a running
guest interrupted, a single step, breakpoints of each kind, and 2 vCPUs held and released."""

import threading

import pytest

from kvmpy.accel.debug import Action, BreakpointKind, Cause
from kvmpy.machine import Machine

pytestmark = pytest.mark.gdb

STOP_TIMEOUT = 60.0
RUN_TIMEOUT = 120.0
LOOP_COUNT = "100000000000"      # ring0_loop counts down this far: running until interrupted
MARK_LOOP_START = 1              # ring0_loop's POST code on entering its loop


class Debugged:
    """A machine run in a thread under a DebugSession, with a wait for the next stop."""

    def __init__(self, accel, image, cmdline="", cpus=1):
        self.machine = Machine(mem_size=64 << 20, cpus=cpus, accel=accel, serial_output=lambda data: None)
        self.machine.load(image, cmdline)
        self.session = self.machine.attach_debugger(hold_at_start=True)
        self._stopped = threading.Event()
        self.session.add_listener(self._stopped.set)
        self.in_loop = threading.Event()
        post, write = self.machine.post, self.machine.post.write

        def post_write(offset, size, value):
            write(offset, size, value)
            if value & 0xFF == MARK_LOOP_START:
                self.in_loop.set()

        post.write = post_write
        self.reason = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self):
        self.reason = self.machine.run(timeout=RUN_TIMEOUT)

    def next_stop(self):
        while True:
            stop = self.session.next_stop()
            if stop is not None:
                return stop
            assert self._stopped.wait(STOP_TIMEOUT), "no stop came"
            self._stopped.clear()

    def rip(self, vcpu=0):
        return self.session.backend.read_state(vcpu).gprs["rip"]

    def close(self):
        self.session.detach()
        self.machine.request_stop(self.machine.stop_reason or _quit())
        self.thread.join()
        self.machine.close()


def _quit():
    from kvmpy.exits.kinds import StopReason

    return StopReason("quit", 0, "test over")


@pytest.fixture
def debugged():
    made = []

    def make(*args, **kwargs):
        made.append(Debugged(*args, **kwargs))
        return made[-1]

    yield make
    for run in made:
        run.close()


def test_hold_at_start_runs_nothing_until_resumed(debugged, guest, accel):
    run = debugged(accel, guest("gdb_target"))
    run.session.interrupt()
    assert run.next_stop().cause is Cause.INTERRUPT
    assert run.rip() == 0x100000 and run.machine.stop_reason is None
    run.session.resume({0: Action.CONTINUE})
    run.thread.join(RUN_TIMEOUT)
    assert run.reason.exit_code == 3


def test_a_running_guest_is_interrupted_and_stepped(debugged, guest, accel):
    run = debugged(accel, guest("ring0_loop"), LOOP_COUNT)
    run.session.resume({0: Action.CONTINUE})
    assert run.in_loop.wait(STOP_TIMEOUT)
    run.session.interrupt()
    stop = run.next_stop()
    assert stop.cause is Cause.INTERRUPT and stop.vcpu == 0
    rcx = run.session.backend.read_state(0).gprs["rcx"]
    assert 0 < rcx <= int(LOOP_COUNT)                  # it is in the loop
    before = run.rip()
    run.session.resume({0: Action.STEP})
    assert run.next_stop().cause is Cause.STEP
    after = run.session.backend.read_state(0)
    assert after.gprs["rip"] != before                 # dec rcx / jnz: one of them ran
    assert after.gprs["rcx"] in (rcx, rcx - 1)


def test_software_and_hardware_breakpoints_stop_where_asked(debugged, guest, accel):
    run = debugged(accel, guest("gdb_target"))
    run.session.interrupt()
    run.next_stop()
    backend = run.session.backend
    assert backend.insert(0, BreakpointKind.SOFTWARE, 0x100010, 1)      # after_loop
    assert backend.insert(0, BreakpointKind.HARDWARE, 0x100027, 1)      # bump
    run.session.resume({0: Action.CONTINUE})
    assert run.next_stop().cause is Cause.HARDWARE_BREAKPOINT and run.rip() == 0x100027
    assert backend.remove(0, BreakpointKind.HARDWARE, 0x100027, 1)
    assert not backend.remove(0, BreakpointKind.HARDWARE, 0x100027, 1)
    run.session.resume({0: Action.CONTINUE})
    assert run.next_stop().cause is Cause.SOFTWARE_BREAKPOINT and run.rip() == 0x100010
    assert backend.read_state(0).gprs["rbx"] == 3
    backend.remove_all()
    assert backend.armed() == [] and run.session.read_memory(0, 0x100010, 1) != b"\xcc"


def test_kvm_has_four_debug_registers_and_no_read_watch(debugged, guest, accel):
    if accel != "kvm":
        pytest.skip("the interpreter has no slot limit and watches reads")
    run = debugged(accel, guest("gdb_target"))
    backend = run.session.backend
    assert not backend.insert(0, BreakpointKind.WRITE, 0x100041, 8)      # unaligned
    for slot in range(4):
        assert backend.insert(0, BreakpointKind.HARDWARE, 0x100000 + slot, 1)
    assert not backend.insert(0, BreakpointKind.WRITE, 0x100040, 8)      # all four in use
    assert not backend.supports(BreakpointKind.READ)


def test_two_vcpus_are_held_together_and_one_steps_alone(debugged, guest, accel):
    run = debugged(accel, guest("ring0_loop"), LOOP_COUNT, cpus=2)
    run.session.resume({0: Action.CONTINUE, 1: Action.CONTINUE})
    assert run.in_loop.wait(STOP_TIMEOUT)
    run.session.interrupt()
    run.next_stop()
    assert all(runner.debug_hold for runner in run.machine.runners)
    held_rip = run.rip(1)
    run.session.resume({0: Action.STEP})
    assert run.next_stop().vcpu == 0
    assert run.rip(1) == held_rip                      # vCPU 1 stayed where it was
