"""Run assembled cases in the software interpreter from the state the KVM side starts from.

Same memory layout, boot tables, IDT stubs and ring-3 segments (tests/differential/common.py);
one SoftCpu is reused across cases.  A case ends when its `out 0xf6, al` (or an IDT stub's
`out 0xf7, al`) reaches the bus: the bus raises, which stops interp_run at once with RIP at
the `out`.  Needs no /dev/kvm.
"""

from __future__ import annotations

from kvmpy.interp.cpu import GPR_NAMES, SEGMENT_NAMES, SoftCpu, StopReason, ffi
from kvmpy.memory import GuestMemory, MemoryRegion

from .cases import GPRS64, SCRATCH_ADDR, SCRATCH_REG
from .common import (BENCH_PORT, END_INSN_LEN, FAULT_PORT, GUEST_XCR0, MEM_SIZE, MXCSR_DEFAULT, SEGMENT_FIELDS,
                     STACK_TOP, Outcome, case_rip, fault_outcome, load_code, plain_sregs, prepare_memory, read_scratch,
                     read_windows, reset_windows, set_code_mode, user_sregs, write_scratch)

# Instructions a case may run before it must have ended: a case is at most a few dozen
# instructions, plus the one-instruction IDT stub.
MAX_INSNS = 256
_CASE_GPRS = [(GPR_NAMES.index(name), name) for name in GPRS64]
_RSP, _R15 = GPR_NAMES.index("rsp"), GPR_NAMES.index(SCRATCH_REG)
_CS = SEGMENT_NAMES.index("cs")
_KVM_SEGMENTS = {"es": "es", "cs": "cs", "ss": "ss", "ds": "ds", "fs": "fs", "gs": "gs", "ldtr": "ldt", "tr": "tr"}


class _CaseEnd(Exception):
    """Raised by the bus at the `out` that ends a case."""


class _EndBus:
    """Port 0xf6 / 0xf7 end the case; anything else on the bus is unexpected."""

    def __init__(self):
        self.port = None
        self.unexpected = None

    def pio_out(self, port, size, value):
        self.port = port
        if port not in (BENCH_PORT, FAULT_PORT):
            self.unexpected = f"out to port {port:#x}"
        raise _CaseEnd

    def pio_in(self, port, size):
        self.unexpected = f"in from port {port:#x}"
        raise _CaseEnd

    def mmio_read(self, gpa, size):
        self.unexpected = f"MMIO read at {gpa:#x}"
        raise _CaseEnd

    def mmio_write(self, gpa, size, value):
        self.unexpected = f"MMIO write at {gpa:#x}"
        raise _CaseEnd

    def ack_irq(self):
        return -1


class InterpCaseRunner:
    """The interpreter counterpart of kvm_side.KvmCaseRunner (same constructor and run())."""

    def __init__(self, blob: bytes):
        self.memory = GuestMemory([MemoryRegion(0, MEM_SIZE)])
        prepare_memory(self.memory, blob)
        self.bus = _EndBus()
        self.cpu = SoftCpu(self.memory, self.bus)
        self.bus.cpu = None
        c = self.cpu.raw
        sregs = plain_sregs()
        user_sregs(sregs)
        for index, name in enumerate(SEGMENT_NAMES):
            source = getattr(sregs, _KVM_SEGMENTS[name])
            for field in SEGMENT_FIELDS:
                setattr(c.seg[index], field, getattr(source, field))
        self.cpu.set_dtable("gdt", sregs.gdt.base, sregs.gdt.limit)
        self.cpu.set_dtable("idt", sregs.idt.base, sregs.idt.limit)
        self.cpu.set_regs(cr0=sregs.cr0, cr3=sregs.cr3, cr4=sregs.cr4, efer=sregs.efer, xcr0=GUEST_XCR0)
        self._segments = bytes(ffi.buffer(c.seg))  # restored after a case that faulted to ring 0
        self._dirty = False
        self.blob = blob
        self.mode = 64

    def load(self, blob: bytes) -> None:
        load_code(self.memory, blob)
        self.blob = blob

    def _enter_mode(self, mode: int) -> None:
        c = self.cpu.raw
        if self._dirty:
            ffi.buffer(c.seg)[:] = self._segments
            c.halted = 0
            self._dirty, self.mode = False, 64
        if mode != self.mode:
            set_code_mode(c.seg[_CS], mode)
            self.mode = mode

    def run(self, index: int, case) -> Outcome:
        cpu, c, bus, memory = self.cpu, self.cpu.raw, self.bus, self.memory
        self._enter_mode(case.mode)
        write_scratch(memory, case.scratch)
        reset_windows(memory)
        gpr = c.gpr
        for slot, name in _CASE_GPRS:
            gpr[slot] = case.regs[name]
        gpr[_R15] = SCRATCH_ADDR
        gpr[_RSP] = STACK_TOP
        c.rip = case_rip(index, case, memory, self.blob)
        c.rflags = case.rflags
        bus.port = bus.unexpected = None
        result = cpu.run(MAX_INSNS)
        values = {name: gpr[slot] for slot, name in _CASE_GPRS}
        values["rsp"] = gpr[_RSP]
        scratch = read_scratch(memory)
        windows = read_windows(memory)
        rip = c.rip
        ended = result.reason == StopReason.IO_ERROR and isinstance(result.error, _CaseEnd)
        if ended and bus.port == BENCH_PORT and bus.unexpected is None:
            return Outcome(values, c.rflags, scratch, windows, rip + END_INSN_LEN)
        self._dirty = True
        if ended and bus.port == FAULT_PORT:
            outcome = fault_outcome(memory, values, rip + END_INSN_LEN, gpr[_RSP], scratch, windows, c.cr2)
            outcome.mxcsr = cpu.get("mxcsr")
            outcome.vregs = bytes(c.fxsave[160:416]) + bytes(c.ymmh[0:256])
            cpu.set("mxcsr", MXCSR_DEFAULT)
            return outcome
        if ended:  # the same words as kvm_side.describe_exit, so that both sides compare equal
            return Outcome(values, c.rflags, scratch, windows, rip, fault=f"{bus.unexpected} at {rip:#x}")
        if result.reason == StopReason.SHUTDOWN:
            what = f"shutdown (triple fault, last vector {c.shutdown_vector})"
        else:
            what = f"stop {result.reason.name}" + (f" ({result.error!r})" if result.error else "")
        return Outcome(values, c.rflags, scratch, windows, rip, fault=f"interpreter: {what} at {rip:#x}")

    def close(self) -> None:
        # The SoftCpu's cffi buffers pin the mmap: drop both and let the GC unmap it.
        self.cpu = self.bus.cpu = None
        self.memory = None
