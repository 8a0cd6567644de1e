"""Exit values (what the guest did) and actions (what the vCPU loop must do next).

Plain immutable records, so a test can build any exit by hand and feed it to `handle_exit`.
They are named tuples that only compare equal to their own kind: cheap to create on the
exit path, and cheap to define at start-up.
"""

from __future__ import annotations

from collections import namedtuple

__all__ = [
    "PortOut", "PortIn", "MmioWrite", "MmioRead", "Halt", "Shutdown", "SystemEvent",
    "InternalError", "FailEntry", "GuestDebug", "Interrupted", "UnknownExit",
    "Resume", "Stop", "Fallback", "Debug", "Unhandled", "StopReason", "RESUME",
]  # fmt: skip


def _record(name: str, fields: str, doc: str, defaults: tuple = ()):
    """A named tuple type whose instances equal only instances of the same type."""
    base = namedtuple(name, fields, defaults=defaults)
    namespace = {
        "__slots__": (),
        "__doc__": doc,
        "__eq__": lambda self, other: type(self) is type(other) and tuple.__eq__(self, other),
        "__ne__": lambda self, other: not (type(self) is type(other) and tuple.__eq__(self, other)),
        "__hash__": tuple.__hash__,
    }
    return type(name, (base,), namespace)


# --- exits ----------------------------------------------------------------------------------
PortOut = _record("PortOut", "port size count data", "`out`/`outs`: `count` items of `size` bytes in `data`.")
PortIn = _record("PortIn", "port size count response_offset",
                 "`in`/`ins`: the loop must place count * size bytes at `response_offset` in kvm_run.")
MmioWrite = _record("MmioWrite", "address size value", "A guest store to an address no RAM backs.")
MmioRead = _record("MmioRead", "address size response_offset",
                   "A guest load from MMIO: the loop must place `size` bytes at `response_offset`.")
Halt = _record("Halt", "", "HLT without an in-kernel irqchip (with one, KVM waits for the interrupt).")
Shutdown = _record("Shutdown", "", "The guest triple-faulted (or otherwise forced a shutdown).")
Interrupted = _record("Interrupted", "", "KVM_RUN returned because the vCPU was kicked.")
SystemEvent = _record("SystemEvent", "kind data", "KVM_SYSTEM_EVENT_{SHUTDOWN,RESET,CRASH,...}.", ((),))
FailEntry = _record("FailEntry", "hardware_reason cpu", "VM entry failed (bad guest state).")
GuestDebug = _record("GuestDebug", "exception pc dr6",
                     "A debug exception (#DB: 1, #BP: 3) with guest debugging enabled; `dr6` says which #DB.", (0,))
UnknownExit = _record("UnknownExit", "reason", "An exit reason kvmpy does not know.")


class InternalError(_record("InternalError", "suberror data instruction",
                            "KVM could not go on; suberror 1 (emulation failure) carries the instruction.",
                            ((), b""))):
    __slots__ = ()

    @property
    def is_emulation_failure(self) -> bool:
        from ..native import lib

        return self.suberror == lib.KVM_INTERNAL_ERROR_EMULATION


# --- what to do next ------------------------------------------------------------------------
class StopReason(_record("StopReason", "kind exit_code message",
                         "Why the VM stopped ('verdict', 'poweroff', 'reset', 'shutdown', 'halt', 'halted', 'panic', 'error',"
                         " 'timeout', 'quit', 'signal') and the exit status `kvmpy run` reports for it.", ("",))):
    __slots__ = ()

    @classmethod
    def verdict(cls, code: int) -> "StopReason":
        return cls("verdict", code, f"guest verdict {code}")

    @classmethod
    def error(cls, message: str) -> "StopReason":
        return cls("error", 1, message)


Resume = _record("Resume", "response", "Enter the guest again, first writing `response` (IN/MMIO read data).", (None,))
RESUME = Resume()
Stop = _record("Stop", "reason", "Stop the VM for `reason` (a StopReason).")
Fallback = _record("Fallback", "exit", "KVM cannot emulate the instruction at RIP: software must run it.")
Debug = _record("Debug", "exit", "A breakpoint, watchpoint or single step of the attached debugger (a GuestDebug exit).")
Unhandled = _record("Unhandled", "exit why", "Nobody knows what to do; reported with registers.", ("",))
