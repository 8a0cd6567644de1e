"""Read the exit KVM_RUN left in the shared kvm_run page into an exit value."""

from __future__ import annotations

from ..native import ffi, lib
from .kinds import (
    GuestDebug,
    FailEntry,
    Halt,
    Interrupted,
    InternalError,
    MmioRead,
    MmioWrite,
    PortIn,
    PortOut,
    Shutdown,
    SystemEvent,
    UnknownExit,
)

_RUN_IO = lib.KVM_EXIT_IO
_RUN_MMIO = lib.KVM_EXIT_MMIO
_IO_OUT = lib.KVM_EXIT_IO_OUT
MMIO_DATA_OFFSET = ffi.offsetof("struct kvm_run", "mmio", "data")



def decode_exit(run, run_bytes: memoryview):
    """The exit in `run` (a `struct kvm_run *`), with data copied out of `run_bytes`."""
    reason = run.exit_reason
    if reason == _RUN_IO:
        io = run.io
        if io.direction == _IO_OUT:
            start = io.data_offset
            return PortOut(io.port, io.size, io.count, bytes(run_bytes[start : start + io.size * io.count]))
        return PortIn(io.port, io.size, io.count, io.data_offset)
    if reason == _RUN_MMIO:
        mmio = run.mmio
        size = mmio.len
        if mmio.is_write:
            value = int.from_bytes(run_bytes[MMIO_DATA_OFFSET : MMIO_DATA_OFFSET + size], "little")
            return MmioWrite(mmio.phys_addr, size, value)
        return MmioRead(mmio.phys_addr, size, MMIO_DATA_OFFSET)
    return _decode_rare(run, reason)


def _decode_rare(run, reason: int):
    if reason == lib.KVM_EXIT_HLT:
        return Halt()
    if reason == lib.KVM_EXIT_SHUTDOWN:
        return Shutdown()
    if reason == lib.KVM_EXIT_INTR:
        return Interrupted()
    if reason == lib.KVM_EXIT_SYSTEM_EVENT:
        event = run.system_event
        return SystemEvent(event.type, tuple(event.data[i] for i in range(min(event.ndata, 16))))
    if reason == lib.KVM_EXIT_INTERNAL_ERROR:
        return _decode_internal_error(run)
    if reason == lib.KVM_EXIT_FAIL_ENTRY:
        return FailEntry(run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu)
    if reason == lib.KVM_EXIT_DEBUG:
        return GuestDebug(run.debug.arch.exception, run.debug.arch.pc, run.debug.arch.dr6)
    return UnknownExit(reason)


def _decode_internal_error(run) -> InternalError:
    internal = run.internal
    data = tuple(internal.data[i] for i in range(min(internal.ndata, 16)))
    instruction = b""
    failure = run.emulation_failure
    if (
        internal.suberror == lib.KVM_INTERNAL_ERROR_EMULATION
        and failure.ndata >= 3  # flags + 16 bytes of instruction occupy data[0..2]
        and failure.flags & lib.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
    ):
        instruction = bytes(failure.insn_bytes)[: failure.insn_size]
    return InternalError(internal.suberror, data, instruction)
