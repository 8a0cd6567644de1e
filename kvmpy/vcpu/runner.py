"""The thread that runs one vCPU: KVM_RUN, decode the exit, act on it, repeat.

Control from other threads (stop, pause) goes through `kvm_run.immediate_exit` plus a signal
whose C handler does nothing: a vCPU inside KVM_RUN comes back with EINTR, one about to
enter it returns at once, so no request is ever lost between a check and the ioctl.
"""

from __future__ import annotations

import errno
import logging
import signal
import threading
from collections.abc import Callable

from ..errors import GuestError, KvmError
from ..exits import Buses, decode_exit, handle_exit
from ..exits.kinds import Debug, Fallback, Resume, Stop, StopReason, Unhandled
from ..native import lib

log = logging.getLogger("kvmpy.vcpu")

KICK_SIGNAL = signal.SIGRTMIN + 1
_kick_handler_installed = False


def _install_kick_handler() -> None:
    global _kick_handler_installed
    if not _kick_handler_installed:
        result = lib.kvmpy_install_kick_handler(KICK_SIGNAL)
        if result < 0:
            raise KvmError("sigaction for the vCPU kick signal", -result)
        _kick_handler_installed = True


#: A fallback executes the instruction KVM failed to emulate, updating the vCPU's state.
#: It returns normally to resume the guest, or raises GuestError to stop the VM.
FallbackHook = Callable[["object", "Fallback"], None]


class VcpuRunner:
    """Runs a vCPU in its own thread until the VM stops; reports the stop through `on_stop`."""

    def __init__(self, vcpu, buses: Buses, on_stop: Callable[[StopReason], None], fallback: FallbackHook | None = None):
        self.vcpu = vcpu
        self.buses = buses
        self.on_stop = on_stop
        self.fallback = fallback
        self.exit_count = 0
        self._stop_requested = False
        self._pause_requested = False
        self._paused = threading.Event()
        self._resume = threading.Event()
        self._thread: threading.Thread | None = None
        self.debug = None          # the DebugSession (kvmpy/accel/debug.py) while a debugger is attached
        self.debug_hold = False    # the debugger wants this vCPU parked outside KVM_RUN
        self.debug_stepping = False
        _install_kick_handler()

    # --- control from other threads ----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"vcpu{self.vcpu.index}", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Make the vCPU leave KVM_RUN (or not enter it) and look at its requests."""
        self.vcpu.run_state.immediate_exit = 1
        thread = self._thread
        if thread is not None and thread.is_alive() and thread.ident is not None:
            try:
                signal.pthread_kill(thread.ident, KICK_SIGNAL)
            except ProcessLookupError:  # it just finished
                pass

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        self._stop_requested = True
        self._resume.set()
        self.kick()
        if self.debug is not None:
            self.debug.wake()

    def pause(self, timeout: float | None = None) -> bool:
        """Hold the vCPU outside KVM_RUN (for state inspection); True once it is held."""
        self._resume.clear()
        self._pause_requested = True
        self.kick()
        return self._paused.wait(timeout)

    def resume(self) -> None:
        self._pause_requested = False
        self._paused.clear()
        self._resume.set()

    @property
    def running(self) -> bool:
        """The thread has started and not yet ended."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # --- the vCPU thread ---------------------------------------------------------------------
    def _main(self) -> None:
        try:
            reason = self._loop()
        except Exception as error:  # any failure stops the whole VM, with the reason
            log.debug("vCPU %d failed", self.vcpu.index, exc_info=True)
            reason = StopReason.error(f"vCPU {self.vcpu.index}: {error}")
        if reason is not None:
            self.on_stop(reason)
        if self.debug is not None:
            self.debug.wake()

    def _handle_requests(self) -> bool:
        """Serve pause/stop and the debugger's hold after a kick; False when the thread must end."""
        self.vcpu.run_state.immediate_exit = 0
        while not self._stop_requested:
            if self._pause_requested:
                self._paused.set()
                self._resume.wait()
            elif self.debug_hold:
                self._debug_park()
            else:
                break
        return not self._stop_requested

    def _debug_park(self) -> None:
        """Wait while the debugger holds this vCPU, then arm what it asked for (in this thread:
        KVM_SET_GUEST_DEBUG must not race with KVM_RUN)."""
        step = self.debug.park(self.vcpu.index)
        if not self._stop_requested:
            self.debug_stepping = step
            self.debug.backend.arm(self, step)

    def _loop(self) -> StopReason | None:
        if self.debug is not None:
            self._debug_park()  # breakpoints armed (or a step asked for) before this thread started
        vcpu, buses, run_state, run_bytes = self.vcpu, self.buses, self.vcpu.run_state, self.vcpu.run_bytes
        run = vcpu.run
        while True:
            if self._stop_requested or self._pause_requested or self.debug_hold:
                if not self._handle_requests():
                    return None
            result = run()
            if result < 0:
                if result in (-errno.EINTR, -errno.EAGAIN):
                    run_state.immediate_exit = 0  # served: a kick meant for a request set it first
                    continue
                raise KvmError("KVM_RUN", -result)
            self.exit_count += 1
            exit = decode_exit(run_state, run_bytes)
            action = handle_exit(exit, buses)
            if type(action) is Resume:
                if action.response is not None:
                    start = exit.response_offset
                    run_bytes[start : start + len(action.response)] = action.response
                continue
            if type(action) is Stop:
                return action.reason
            if self.debug is not None and type(action) in (Debug, Fallback):
                if self.debug.backend.debug_exit(self, action):
                    continue  # a breakpoint, watchpoint or step end: reported, and parked next
            if type(action) is Fallback and self.fallback is not None:
                self.fallback(vcpu, action)
                if self.debug_stepping:  # the step's instruction ran in the interpreter
                    self.debug.backend.step_done(self)
                continue
            raise GuestError(describe_unhandled(vcpu, action))


def describe_unhandled(vcpu, action) -> str:
    """One paragraph with what happened, the registers and the instruction bytes at RIP."""
    why = action.why if isinstance(action, Unhandled) else "KVM could not emulate an instruction"
    instruction = getattr(action.exit, "instruction", b"")
    try:
        regs = vcpu.get_regs()
        sregs = vcpu.get_sregs()
        state = (
            f"rip={regs.rip:#x} rsp={regs.rsp:#x} rflags={regs.rflags:#x} rax={regs.rax:#x} "
            f"rcx={regs.rcx:#x} rdx={regs.rdx:#x} cs={sregs.cs.selector:#x} cr0={sregs.cr0:#x} "
            f"cr3={sregs.cr3:#x} cr4={sregs.cr4:#x} efer={sregs.efer:#x}"
        )
    except KvmError as error:
        state = f"(registers unavailable: {error})"
    code = f"; instruction bytes {instruction.hex(' ')}" if instruction else ""
    return f"{why}: {state}{code}"


