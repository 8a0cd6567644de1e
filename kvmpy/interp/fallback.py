"""Execute, in software, the instructions this host's KVM cannot emulate.

When KVM_RUN reports an emulation failure, the vCPU thread hands the vCPU here: its state is
copied from KVM into a SoftCpu, the interpreter executes the failing instruction (and, if a
burst is allowed, keeps going while the guest stays in ring 0), and the state goes back to
KVM before the guest resumes. Devices that live inside KVM (LAPIC, IOAPIC, PIC, PIT) and MSRs
the interpreter does not keep are never touched from here: an instruction reaching one ends
the burst before it executes, and KVM executes it instead.
"""

from __future__ import annotations

from .. import layout
from ..errors import GuestError
from ..native import ffi as kvm_ffi, lib as kvm_lib
from .cpu import SoftCpu, StopReason, ffi

# KVM segment name -> interpreter segment index (ES CS SS DS FS GS LDTR TR).
SEGMENTS = (("es", 0), ("cs", 1), ("ss", 2), ("ds", 3), ("fs", 4), ("gs", 5), ("ldt", 6), ("tr", 7))
CONTROL = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")
GPRS = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")  # fmt: skip
MSRS = {  # MSR index -> interpreter field
    0xC0000081: "star", 0xC0000082: "lstar", 0xC0000083: "cstar", 0xC0000084: "sfmask",
    0xC0000102: "kernel_gs_base", 0xC0000103: "tsc_aux", 0x174: "sysenter_cs", 0x175: "sysenter_esp",
    0x176: "sysenter_eip", 0x277: "pat", 0x1A0: "misc_enable",
}  # fmt: skip
MSR_TSC = 0x10
XSAVE_LEGACY = slice(0, 512)
XSAVE_YMMH = slice(576, 576 + 256)
XSTATE_BV_OFFSET = 512
XCR0_INDEX = 0

# Ports and MMIO ranges served inside KVM when it has an in-kernel irqchip and PIT.
IN_KERNEL_PORTS = (range(0x20, 0x22), range(0xA0, 0xA2), range(0x40, 0x44), range(0x61, 0x62), range(0x4D0, 0x4D2))
IN_KERNEL_MMIO = (range(layout.LAPIC_ADDR, layout.LAPIC_ADDR + 0x1000),
                  range(layout.IOAPIC_ADDR, layout.IOAPIC_ADDR + 0x1000))



class BackToKvm(Exception):
    """The burst reached something only KVM can do; KVM executes this instruction."""


class _FallbackBus:
    """The machine's buses as the interpreter sees them, minus what KVM keeps in the kernel."""

    def __init__(self, buses):
        self.buses = buses

    def pio_in(self, port: int, size: int) -> int:
        if any(port in ports for ports in IN_KERNEL_PORTS):
            raise BackToKvm(f"port {port:#x}")
        value = self.buses.ports.read(port, size)
        return (1 << (8 * size)) - 1 if value is None else value

    def pio_out(self, port: int, size: int, value: int) -> None:
        if any(port in ports for ports in IN_KERNEL_PORTS):
            raise BackToKvm(f"port {port:#x}")
        self.buses.ports.write(port, size, value)

    def mmio_read(self, gpa: int, size: int) -> int:
        if any(gpa in window for window in IN_KERNEL_MMIO):
            raise BackToKvm(f"mmio {gpa:#x}")
        value = self.buses.mmio.read(gpa, size)
        return (1 << (8 * size)) - 1 if value is None else value

    def mmio_write(self, gpa: int, size: int, value: int) -> None:
        if any(gpa in window for window in IN_KERNEL_MMIO):
            raise BackToKvm(f"mmio {gpa:#x}")
        self.buses.mmio.write(gpa, size, value)

    def ack_irq(self) -> int:
        return -1  # interrupts stay with KVM's irqchip; none are raised in the interpreter

    def rdmsr(self, msr: int):
        raise BackToKvm(f"rdmsr {msr:#x}")

    def wrmsr(self, msr: int, value: int):
        raise BackToKvm(f"wrmsr {msr:#x}")


class EmulationFallback:
    """The vCPU thread's hook for KVM emulation failures (one per vCPU: it owns a SoftCpu)."""

    def __init__(self, memory, buses, cpuid: list[dict], burst: int = 1):
        self.cpu = SoftCpu(memory, _FallbackBus(buses))
        self.cpu.set_cpuid(tuple(e[k] for k in ("function", "index", "flags", "eax", "ebx", "ecx", "edx"))
                           for e in cpuid)
        self.burst = burst
        self.counts: dict[str, int] = {}  # mnemonic -> fallbacks that started there
        self.instructions = 0  # instructions the interpreter executed for KVM, in all

    def __call__(self, vcpu, action) -> None:
        snapshot = load_from_kvm(self.cpu, vcpu)
        name = self.cpu.mnemonic()
        self.counts[name] = self.counts.get(name, 0) + 1
        result = self.cpu.run(self.burst, stop_on_cpl3=True, stop_on_unimplemented=True)
        self.instructions += result.executed
        if result.executed == 0:
            why = {StopReason.UNIMPLEMENTED: "the interpreter does not implement it either",
                   StopReason.IO_ERROR: f"it needs {result.error}", StopReason.CPL3: "it is at CPL 3"}
            code = action.exit.instruction.hex(" ") or "unknown"
            raise GuestError(f"KVM could not emulate '{name}' ({code}) and the fallback cannot run it: "
                             f"{why.get(result.reason, result.reason.name)}")
        if result.reason == StopReason.SHUTDOWN:
            raise GuestError("guest shutdown (triple fault) inside the fallback interpreter")
        store_to_kvm(self.cpu, vcpu, snapshot)


    def close(self) -> None:
        self.cpu.close()


def _segment_bytes(segment) -> bytes:
    return bytes(kvm_ffi.buffer(kvm_ffi.addressof(segment)))


def load_from_kvm(cpu: SoftCpu, vcpu) -> dict:
    """Copy the vCPU's architectural state into `cpu`; return what was read (for store_to_kvm)."""
    raw = cpu.raw
    regs = vcpu.get_regs()
    for index, name in enumerate(GPRS):
        raw.gpr[index] = getattr(regs, name)
    raw.rip, raw.rflags = regs.rip, regs.rflags
    sregs = vcpu.get_sregs()
    for name, index in SEGMENTS:
        ffi.buffer(ffi.addressof(raw.seg[index]))[:] = _segment_bytes(getattr(sregs, name))
    for name in ("gdt", "idt"):
        table = getattr(sregs, name)
        getattr(raw, name).base, getattr(raw, name).limit = table.base, table.limit
    for name in CONTROL:
        setattr(raw, name, getattr(sregs, name))
    raw.msr.apic_base = sregs.apic_base
    xsave = vcpu.get_xsave()
    area = kvm_ffi.buffer(xsave.region)
    ffi.buffer(raw.fxsave)[:] = area[XSAVE_LEGACY]
    ffi.buffer(raw.ymmh)[:] = area[XSAVE_YMMH]
    xcrs = vcpu.get_xcrs()
    raw.xcr0 = next((xcrs.xcrs[i].value for i in range(xcrs.nr_xcrs) if xcrs.xcrs[i].xcr == XCR0_INDEX), 1)
    msrs = vcpu.get_msrs([*MSRS, MSR_TSC])
    for index, field in MSRS.items():
        if index in msrs:
            setattr(raw.msr, field, msrs[index])
    raw.msr.tsc_offset = (msrs.get(MSR_TSC, 0) - kvm_lib.kvmpy_rdtsc()) & (2**64 - 1)
    raw.halted = 0
    cpu.flush_tlb()
    return {"sregs": sregs, "xsave": xsave, "xsave_bytes": bytes(area), "xcr0": raw.xcr0, "msrs": msrs,
            "sregs_state": _sregs_state(raw)}


def _sregs_state(raw) -> bytes:
    """Everything KVM_SET_SREGS would carry, as bytes, to tell whether it changed."""
    parts = [bytes(ffi.buffer(ffi.addressof(raw.seg[i]))) for i in range(8)]
    parts += [raw.gdt.base.to_bytes(8, "little"), raw.gdt.limit.to_bytes(2, "little"),
              raw.idt.base.to_bytes(8, "little"), raw.idt.limit.to_bytes(2, "little")]
    parts += [getattr(raw, name).to_bytes(8, "little") for name in CONTROL]
    return b"".join(parts)


def store_to_kvm(cpu: SoftCpu, vcpu, snapshot: dict) -> None:
    """Write back what the interpreter changed: always the registers, the rest only if changed."""
    raw = cpu.raw
    regs = kvm_ffi.new("struct kvm_regs *")
    for index, name in enumerate(GPRS):
        setattr(regs, name, raw.gpr[index])
    regs.rip, regs.rflags = raw.rip, raw.rflags
    vcpu.set_regs(regs)
    if _sregs_state(raw) != snapshot["sregs_state"]:
        sregs = snapshot["sregs"]
        for name, index in SEGMENTS:
            kvm_ffi.buffer(kvm_ffi.addressof(getattr(sregs, name)))[:] = bytes(ffi.buffer(ffi.addressof(raw.seg[index])))
        for name in ("gdt", "idt"):
            getattr(sregs, name).base, getattr(sregs, name).limit = getattr(raw, name).base, getattr(raw, name).limit
        for name in CONTROL:
            setattr(sregs, name, getattr(raw, name))
        vcpu.set_sregs(sregs)
    xsave, area = snapshot["xsave"], kvm_ffi.buffer(snapshot["xsave"].region)
    legacy, ymmh = bytes(ffi.buffer(raw.fxsave)), bytes(ffi.buffer(raw.ymmh))
    if legacy != snapshot["xsave_bytes"][XSAVE_LEGACY] or ymmh != snapshot["xsave_bytes"][XSAVE_YMMH]:
        area[XSAVE_LEGACY] = legacy
        area[XSAVE_YMMH] = ymmh
        bv = int.from_bytes(area[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8], "little") | 0x3 | (0x4 if any(ymmh) else 0)
        area[XSTATE_BV_OFFSET : XSTATE_BV_OFFSET + 8] = bv.to_bytes(8, "little")
        vcpu.set_xsave(xsave)
    if raw.xcr0 != snapshot["xcr0"]:
        xcrs = kvm_ffi.new("struct kvm_xcrs *")
        xcrs.nr_xcrs = 1
        xcrs.xcrs[0].xcr, xcrs.xcrs[0].value = XCR0_INDEX, raw.xcr0
        vcpu.set_xcrs(xcrs)
    changed = {index: getattr(raw.msr, field) for index, field in MSRS.items()
               if index in snapshot["msrs"] and getattr(raw.msr, field) != snapshot["msrs"][index]}
    if changed:
        vcpu.set_msrs(changed)
