"""Debug control of a machine's vCPUs: the narrow interface a debugger (kvmpy/gdb) drives and
each accelerator implements.

All-stop, as gdb's default mode is: when any vCPU stops (breakpoint, watchpoint, the end of a
single step) or the debugger interrupts, every vCPU is held outside the guest; the debugger
then reads and writes state, and resumes some or all of them, each to continue or to step.

`DebugSession` is that protocol between the debugger's thread and the vCPU threads, the same
for every accelerator. What differs per accelerator is a `DebugBackend`: how registers are
read, how breakpoints are armed (KVM: `KVM_SET_GUEST_DEBUG` with the debug registers and
int3; the interpreter: its own address and watch sets), and how a vCPU thread turns what it
met into a `DebugStop`. A runner takes part through `debug` (the session), `debug_hold` (set: park
before entering the guest again), `stop_requested`, `running` and `kick()`.
"""

from __future__ import annotations

import enum
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..paging import PagingState, read_virtual, write_virtual

GPR_NAMES = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SEGMENT_NAMES = ("cs", "ss", "ds", "es", "fs", "gs")
CONTROL_NAMES = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")
FXSAVE_SIZE = 512


class BreakpointKind(enum.IntEnum):
    """What is asked for, numbered as gdb's Z packets number them."""
    SOFTWARE = 0
    HARDWARE = 1
    WRITE = 2
    READ = 3
    ACCESS = 4


WATCH_KINDS = (BreakpointKind.WRITE, BreakpointKind.READ, BreakpointKind.ACCESS)


class Action(enum.Enum):
    """What a released vCPU does."""
    CONTINUE = "continue"
    STEP = "step"


class Cause(enum.Enum):
    """Why a vCPU stopped."""
    SOFTWARE_BREAKPOINT = "swbreak"
    HARDWARE_BREAKPOINT = "hwbreak"
    WATCHPOINT = "watch"
    STEP = "step"
    INTERRUPT = "interrupt"     # the debugger asked (Ctrl-C), or the guest was started held


@dataclass(frozen=True)
class DebugStop:
    vcpu: int
    cause: Cause
    address: int | None = None               # the watched address, for WATCHPOINT
    kind: BreakpointKind | None = None       # which watch kind, for WATCHPOINT


@dataclass
class CpuState:
    """A vCPU's registers as a debugger sees them, the same shape under every accelerator."""
    gprs: dict[str, int]                     # GPR_NAMES, rip, rflags
    segments: dict[str, tuple[int, int]]     # SEGMENT_NAMES -> (selector, base)
    control: dict[str, int]                  # CONTROL_NAMES
    fxsave: bytes                            # the x87/SSE state as a 512-byte FXSAVE image (64-bit layout)

    @property
    def paging(self) -> PagingState:
        control = self.control
        return PagingState(control["cr0"], control["cr3"], control["cr4"], control["efer"])


class DebugBackend(ABC):
    """One accelerator's side of debugging. Called with every vCPU held, except where noted."""

    #: how many hardware breakpoints and watchpoints together can be armed (None: no limit)
    hardware_slots: int | None = None

    def __init__(self, memory):
        self.memory = memory

    @abstractmethod
    def read_state(self, vcpu: int) -> CpuState: ...

    @abstractmethod
    def write_state(self, vcpu: int, state: CpuState) -> None: ...

    @abstractmethod
    def insert(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        """Arm a breakpoint or watchpoint at a linear address (`vcpu`'s page tables translate
        it where memory must be patched); False if this accelerator cannot."""

    @abstractmethod
    def remove(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        """Disarm what `insert` armed; False if there was no such breakpoint."""

    def remove_all(self) -> None:
        """Disarm everything (the debugger detaches)."""
        for vcpu, kind, address, length in list(self.armed()):
            self.remove(vcpu, kind, address, length)

    @abstractmethod
    def armed(self) -> list[tuple[int, BreakpointKind, int, int]]:
        """What is armed, as (vcpu, kind, address, length) of the `insert` calls."""

    def supports(self, kind: BreakpointKind) -> bool:
        return True


class DebugSession:
    """All-stop control of the vCPUs, between one debugger thread and the vCPU threads."""

    def __init__(self, runners: list, backend: DebugBackend, hold_at_start: bool = False):
        self.runners = runners
        self.backend = backend
        self._cond = threading.Condition()
        self._parked: set[int] = set()
        self._actions: dict[int, Action] = {}
        self._events: deque[DebugStop] = deque()
        self._listeners: list[Callable[[], None]] = []
        for runner in runners:
            runner.debug = self
            runner.debug_hold = hold_at_start

    @property
    def vcpu_count(self) -> int:
        return len(self.runners)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """`listener()` is called (from any thread) when a stop event is queued."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()

    @property
    def holding(self) -> bool:
        """The debugger holds (or is about to hold) some vCPU."""
        return any(runner.debug_hold for runner in self.runners)

    # --- the debugger's side -----------------------------------------------------------------
    def hold_all(self, timeout: float | None = None) -> bool:
        """Stop every vCPU outside the guest; True once all are parked (or their threads ended)."""
        with self._cond:
            for runner in self.runners:
                runner.debug_hold = True
        for runner in self.runners:
            runner.kick()
        with self._cond:
            return self._cond.wait_for(self._all_parked, timeout)

    def _all_parked(self) -> bool:
        return all(index in self._parked or not runner.running for index, runner in enumerate(self.runners))

    def interrupt(self, vcpu: int = 0) -> None:
        """Stop the guest on the debugger's request: hold all, and queue an INTERRUPT stop for
        `vcpu` unless some vCPU stopped by itself meanwhile (that stop is the answer then)."""
        self.hold_all()
        with self._cond:
            if not self._events:
                self._events.append(DebugStop(vcpu, Cause.INTERRUPT))
        self._notify()

    def next_stop(self) -> DebugStop | None:
        """The oldest queued stop (every vCPU held by then), or None."""
        with self._cond:
            if not self._events:
                return None
            stop = self._events.popleft()
        self.hold_all()
        return stop

    def resume(self, actions: dict[int, Action]) -> None:
        """Release the vCPUs named, each to continue or step; the others stay held. Stops
        queued but not yet collected are dropped (a vCPU meets its breakpoint again)."""
        with self._cond:
            self._events.clear()
            for index, action in actions.items():
                self._actions[index] = action
                self.runners[index].debug_hold = False
            self._cond.notify_all()

    def detach(self) -> None:
        """Disarm every breakpoint and let every vCPU run free."""
        self.hold_all()
        self.backend.remove_all()
        self.resume({index: Action.CONTINUE for index in range(len(self.runners))})

    # --- memory, through `vcpu`'s page tables ------------------------------------------------
    def read_memory(self, vcpu: int, address: int, length: int) -> bytes | None:
        return read_virtual(self.backend.memory, self.backend.read_state(vcpu).paging, address, length)

    def write_memory(self, vcpu: int, address: int, data: bytes) -> bool:
        return write_virtual(self.backend.memory, self.backend.read_state(vcpu).paging, address, data)

    # --- the vCPU threads' side --------------------------------------------------------------
    def park(self, index: int) -> bool:
        """Called by vCPU `index`'s thread when it sees `debug_hold`: wait until released (or
        the VM stops); True if it is to single-step (else it continues)."""
        runner = self.runners[index]
        with self._cond:
            self._parked.add(index)
            self._cond.notify_all()
            while runner.debug_hold and not runner.stop_requested:
                self._cond.wait()
            self._parked.discard(index)
            return self._actions.pop(index, Action.CONTINUE) is Action.STEP

    def report(self, stop: DebugStop) -> None:
        """Called by a vCPU thread that stopped: queue the stop and hold every vCPU (the
        reporter parks at its next look at `debug_hold`)."""
        with self._cond:
            self._events.append(stop)
            for runner in self.runners:
                runner.debug_hold = True
        for index, runner in enumerate(self.runners):
            if index != stop.vcpu:
                runner.kick()
        self._notify()

    def wake(self) -> None:
        """A runner's state changed (stop requested, thread ended): re-check the waits."""
        with self._cond:
            self._cond.notify_all()
