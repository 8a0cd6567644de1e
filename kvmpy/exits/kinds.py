"""Exit values (what the guest did) and actions (what the vCPU loop must do next).

Plain immutable records, so a test can build any exit by hand and feed it to `handle_exit`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "PortOut", "PortIn", "MmioWrite", "MmioRead", "Halt", "Shutdown", "SystemEvent",
    "InternalError", "FailEntry", "GuestDebug", "Interrupted", "UnknownExit",
    "Resume", "Stop", "Fallback", "Unhandled", "StopReason", "RESUME",
]  # fmt: skip


# --- exits ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PortOut:
    """`out`/`outs`: `count` items of `size` bytes each, in `data` (count * size bytes)."""

    port: int
    size: int
    count: int
    data: bytes


@dataclass(frozen=True, slots=True)
class PortIn:
    """`in`/`ins`: the loop must place count * size bytes at `response_offset` in kvm_run."""

    port: int
    size: int
    count: int
    response_offset: int


@dataclass(frozen=True, slots=True)
class MmioWrite:
    address: int
    size: int
    value: int


@dataclass(frozen=True, slots=True)
class MmioRead:
    """The loop must place `size` bytes at `response_offset` (kvm_run.mmio.data)."""

    address: int
    size: int
    response_offset: int


@dataclass(frozen=True, slots=True)
class Halt:
    """HLT without an in-kernel irqchip (with one, KVM waits for the interrupt itself)."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """The guest triple-faulted (or otherwise forced a shutdown)."""


@dataclass(frozen=True, slots=True)
class SystemEvent:
    """KVM_SYSTEM_EVENT_{SHUTDOWN,RESET,CRASH,...} with its event data."""

    kind: int
    data: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class InternalError:
    """KVM could not go on; suberror 1 (emulation failure) carries the instruction bytes."""

    suberror: int
    data: tuple[int, ...] = ()
    instruction: bytes = b""

    @property
    def is_emulation_failure(self) -> bool:
        from ..native import lib

        return self.suberror == lib.KVM_INTERNAL_ERROR_EMULATION


@dataclass(frozen=True, slots=True)
class FailEntry:
    hardware_reason: int
    cpu: int


@dataclass(frozen=True, slots=True)
class GuestDebug:
    exception: int
    pc: int


@dataclass(frozen=True, slots=True)
class Interrupted:
    """KVM_RUN returned because the vCPU was kicked (EINTR or KVM_EXIT_INTR)."""


@dataclass(frozen=True, slots=True)
class UnknownExit:
    reason: int


# --- what to do next ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StopReason:
    """Why the VM stopped and the exit status `kvmpy run` reports for it."""

    kind: str  # "verdict", "poweroff", "reset", "shutdown", "error", "quit"
    exit_code: int
    message: str = ""

    @classmethod
    def verdict(cls, code: int) -> "StopReason":
        return cls("verdict", code, f"guest verdict {code}")

    @classmethod
    def error(cls, message: str) -> "StopReason":
        return cls("error", 1, message)


@dataclass(frozen=True, slots=True)
class Resume:
    """Enter the guest again, first writing `response` for an IN or MMIO read."""

    response: bytes | None = None


RESUME = Resume()


@dataclass(frozen=True, slots=True)
class Stop:
    reason: StopReason


@dataclass(frozen=True, slots=True)
class Fallback:
    """KVM cannot emulate the instruction at RIP: software must execute it, then resume."""

    exit: InternalError


@dataclass(frozen=True, slots=True)
class Unhandled:
    """No one knows what to do; the loop reports it with registers and instruction bytes."""

    exit: object
    why: str = field(default="")
