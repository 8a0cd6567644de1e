"""Run assembled cases natively: ring 3 under KVM, the hardware being the oracle.

One VM with one vCPU (no irqchip, no devices: kvmpy.kvm/vm/vcpu directly, so nothing but the
CPU is involved), set up as tests/differential/common.py describes; the vCPU is dropped into
ring 3 at each case in turn.  Under PVM ring-3 code runs natively; the IDT stubs a fault
reaches run at ring 0 (emulated by the host kernel).
"""

from __future__ import annotations

from kvmpy.exits import decode_exit
from kvmpy.exits.kinds import MmioRead, MmioWrite, PortIn, PortOut
from kvmpy.kvm import Kvm
from kvmpy.memory import GuestMemory, MemoryRegion
from kvmpy.vcpu.cpuid import vcpu_cpuid
from kvmpy.vcpu.modes import start_vcpu, StartMode

from .cases import GPRS64, SCRATCH_REG
from .common import (BENCH_PORT, CODE_ADDR, FAULT_PORT, GUEST_XCR0, MEM_SIZE, MXCSR_DEFAULT, SCRATCH_ADDR, STACK_TOP,
                     Outcome, case_rip, fault_outcome, load_code, prepare_memory, read_scratch, read_windows,
                     reset_windows, set_code_mode, user_sregs, write_scratch)


MXCSR_WORD = 24 // 4  # MXCSR's place in the XSAVE (FXSAVE) image, in 32-bit words
XMM_WORD, YMMH_WORD = 160 // 4, 576 // 4  # XMM0..15 and the AVX component (upper halves of YMM0..15)


def describe_exit(exit) -> str:
    """An unexpected exit, in the words interp_side uses for the same event."""
    if isinstance(exit, MmioRead):
        return f"MMIO read at {exit.address:#x}"
    if isinstance(exit, MmioWrite):
        return f"MMIO write at {exit.address:#x}"
    if isinstance(exit, PortIn):
        return f"in from port {exit.port:#x}"
    if isinstance(exit, PortOut):
        return f"out to port {exit.port:#x}"
    return f"KVM exit {exit!r}"


class KvmCaseRunner:
    """One VM in long mode whose vCPU is dropped into ring 3 at each case in turn."""

    def __init__(self, blob: bytes):
        self.kvm = Kvm()
        self.memory = GuestMemory([MemoryRegion(0, MEM_SIZE)])
        self.vm = self.kvm.create_vm()
        self.vm.map_memory(self.memory)
        self.vcpu = self.vm.create_vcpu(0)
        self.vcpu.set_cpuid(vcpu_cpuid(self.kvm.supported_cpuid(), 0, 1))  # long mode needs CPUID.LM
        start_vcpu(self.vcpu, self.memory, StartMode.LONG, CODE_ADDR)  # also FPU/MXCSR defaults
        prepare_memory(self.memory, blob)
        sregs = self.vcpu.get_sregs()
        user_sregs(sregs)
        self.vcpu.set_sregs(sregs)
        xcrs = self.vcpu.get_xcrs()  # XCR0 (CR4.OSXSAVE is set now): x87 | SSE | AVX
        xcrs.nr_xcrs, xcrs.flags = 1, 0
        xcrs.xcrs[0].xcr, xcrs.xcrs[0].value = 0, GUEST_XCR0
        self.vcpu.set_xcrs(xcrs)
        self.sregs = self.vcpu.get_sregs()
        self.blob = blob
        self.mode = 64
        self._dirty_sregs = False

    def load(self, blob: bytes) -> None:
        """Replace the cases (for batches): same VM, new code."""
        load_code(self.memory, blob)
        self.blob = blob

    def _enter_mode(self, mode: int) -> None:
        if self._dirty_sregs or mode != self.mode:  # the last case faulted into ring 0, or another CS
            set_code_mode(self.sregs.cs, mode)
            self.vcpu.set_sregs(self.sregs)
            self.mode, self._dirty_sregs = mode, False

    def run(self, index: int, case) -> Outcome:
        vcpu, memory = self.vcpu, self.memory
        self._enter_mode(case.mode)
        write_scratch(memory, case.scratch)
        reset_windows(memory)
        regs = vcpu.get_regs()
        for name, value in case.regs.items():
            setattr(regs, name, value)
        setattr(regs, SCRATCH_REG, SCRATCH_ADDR)
        regs.rsp = STACK_TOP
        regs.rip = case_rip(index, case, memory, self.blob)
        regs.rflags = case.rflags
        vcpu.set_regs(regs)
        vcpu.run()
        exit = decode_exit(vcpu.run_state, vcpu.run_bytes)
        regs = vcpu.get_regs()
        values = {name: getattr(regs, name) for name in GPRS64}
        values["rsp"] = regs.rsp
        scratch = read_scratch(memory)
        windows = read_windows(memory)
        if type(exit) is PortOut and exit.port == BENCH_PORT:
            return Outcome(values, regs.rflags, scratch, windows, regs.rip)
        self._dirty_sregs = True
        if type(exit) is PortOut and exit.port == FAULT_PORT:
            cr2 = vcpu.get_sregs().cr2
            outcome = fault_outcome(memory, values, regs.rip, regs.rsp, scratch, windows, cr2)
            xsave = vcpu.get_xsave()  # (KVM_GET_FPU reports MXCSR as 0 here)
            outcome.mxcsr = xsave.region[MXCSR_WORD]
            outcome.vregs = b"".join(word.to_bytes(4, "little") for word in
                                     [*xsave.region[XMM_WORD:XMM_WORD + 64], *xsave.region[YMMH_WORD:YMMH_WORD + 64]])
            if outcome.mxcsr != MXCSR_DEFAULT:
                xsave.region[MXCSR_WORD] = MXCSR_DEFAULT
                vcpu.set_xsave(xsave)
            return outcome
        self._complete_pending_io()
        return Outcome(values, regs.rflags, scratch, windows, regs.rip, fault=f"{describe_exit(exit)} at {regs.rip:#x}")

    def _complete_pending_io(self) -> None:
        """After an MMIO or port-in exit KVM finishes the instruction on the next KVM_RUN (and
        would override the next case's RIP): let it do so now, without running guest code."""
        self.vcpu.run_state.immediate_exit = 1
        self.vcpu.run()  # -EINTR once the pending completion is done
        self.vcpu.run_state.immediate_exit = 0

    def close(self) -> None:
        self.vcpu.close()
        self.vm.close()
        self.kvm.close()
        self.memory.close()
