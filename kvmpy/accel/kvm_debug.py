"""Debugging under KVM: `KVM_SET_GUEST_DEBUG` arms the four debug registers for hardware
breakpoints and watchpoints and single-steps with the trap flag (interrupts blocked where KVM
can); software breakpoints are int3 bytes written into guest RAM, reported by KVM as #BP
exits (or, where the host cannot emulate int3 in ring 0, as PVM cannot, as an emulation
failure at an int3 this backend planted).

Each vCPU thread arms its own vCPU when the debugger releases it (`arm`), because the ioctl
must not race with that vCPU's KVM_RUN; breakpoints change only while every vCPU is held.
"""

from __future__ import annotations

from ..exits.kinds import Debug, Fallback, GuestDebug
from ..native import ffi, lib
from ..paging import translate
from .debug import (
    CONTROL_NAMES,
    GPR_NAMES,
    SEGMENT_NAMES,
    BreakpointKind,
    Cause,
    CpuState,
    DebugBackend,
    DebugStop,
)

HARDWARE_SLOTS = 4
DR6_INDEX, DR7_INDEX = 6, 7
DR6_SLOT_HITS = 0xF                 # B0-B3: which debug register matched
DR6_SINGLE_STEP = 1 << 14           # BS
DR7_RESERVED_ONE = 1 << 10
DR7_RW_SHIFT, DR7_LEN_SHIFT, DR7_SLOT_BITS = 16, 18, 4
DR7_RW = {BreakpointKind.HARDWARE: 0b00, BreakpointKind.WRITE: 0b01, BreakpointKind.ACCESS: 0b11}
DR7_LEN = {1: 0b00, 2: 0b01, 8: 0b10, 4: 0b11}
DEBUG_VECTOR, BREAKPOINT_VECTOR = 1, 3
INT3 = 0xCC
EFER_LMA = 1 << 10
LINEAR_32BIT_MASK = 0xFFFFFFFF

# The FXSAVE image (64-bit layout) against struct kvm_fpu's fields
FX_FCW, FX_FSW, FX_FTW, FX_FOP, FX_FIP, FX_FDP, FX_MXCSR = 0, 2, 4, 6, 8, 16, 24
FX_ST, FX_XMM, FX_REGISTER_STRIDE = 32, 160, 16
X87_REGISTERS, XMM_REGISTERS = 8, 16


class KvmDebug(DebugBackend):
    hardware_slots = HARDWARE_SLOTS

    def __init__(self, memory, vcpus, block_irq: bool):
        super().__init__(memory)
        self.vcpus = vcpus
        self.block_irq = block_irq  # KVM_GUESTDBG_BLOCKIRQ: steps take no interrupt (KVM_CAP_SET_GUEST_DEBUG2)
        self.slots: list[tuple[int, BreakpointKind, int, int] | None] = [None] * HARDWARE_SLOTS
        self.software: dict[int, tuple[int, int, bytes]] = {}  # linear -> (vcpu, physical, original byte)

    # --- registers ---------------------------------------------------------------------------
    def read_state(self, vcpu: int) -> CpuState:
        kvm_vcpu = self.vcpus[vcpu]
        regs, sregs, fpu = kvm_vcpu.get_regs(), kvm_vcpu.get_sregs(), kvm_vcpu.get_fpu()
        gprs = {name: getattr(regs, name) for name in GPR_NAMES + ("rip", "rflags")}
        segments = {name: (getattr(sregs, name).selector, getattr(sregs, name).base) for name in SEGMENT_NAMES}
        control = {name: getattr(sregs, name) for name in CONTROL_NAMES}
        return CpuState(gprs, segments, control, _fxsave_of(fpu))

    def write_state(self, vcpu: int, state: CpuState) -> None:
        kvm_vcpu = self.vcpus[vcpu]
        regs = kvm_vcpu.get_regs()
        for name, value in state.gprs.items():
            setattr(regs, name, value)
        kvm_vcpu.set_regs(regs)
        before = self.read_state(vcpu)
        if (before.segments, before.control) != (state.segments, state.control):
            sregs = kvm_vcpu.get_sregs()
            for name, (selector, base) in state.segments.items():
                segment = getattr(sregs, name)
                segment.selector, segment.base = selector, base
            for name, value in state.control.items():
                setattr(sregs, name, value)
            kvm_vcpu.set_sregs(sregs)
        if before.fxsave != state.fxsave:
            fpu = kvm_vcpu.get_fpu()
            _fxsave_into(fpu, state.fxsave)
            kvm_vcpu.set_fpu(fpu)

    # --- breakpoints -------------------------------------------------------------------------
    def supports(self, kind: BreakpointKind) -> bool:
        return kind != BreakpointKind.READ  # x86's debug registers watch writes, or all accesses

    def insert(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        if kind == BreakpointKind.SOFTWARE:
            return self._insert_int3(vcpu, address)
        if not self.supports(kind) or None not in self.slots:
            return False
        if kind != BreakpointKind.HARDWARE and (length not in DR7_LEN or address % length):
            return False  # a debug register watches 1, 2, 4 or 8 aligned bytes
        entry = (vcpu, kind, address, length)
        if entry not in self.slots:
            self.slots[self.slots.index(None)] = entry
        return True

    def _insert_int3(self, vcpu: int, address: int) -> bool:
        if address in self.software:
            return True
        physical = self._physical(vcpu, address)
        if physical is None:
            return False
        self.software[address] = (vcpu, physical, self.memory.read(physical, 1))
        self.memory.write(physical, bytes([INT3]))
        return True

    def _physical(self, vcpu: int, address: int) -> int | None:
        physical = translate(self.memory, self.read_state(vcpu).paging, address)
        return physical if physical is not None and self.memory.contains(physical) else None

    def remove(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        if kind == BreakpointKind.SOFTWARE:
            planted = self.software.pop(address, None)
            if planted is None:
                return False
            _, physical, original = planted
            self.memory.write(physical, original)
            return True
        for slot, entry in enumerate(self.slots):
            if entry is not None and entry[1:] == (kind, address, length):
                self.slots[slot] = None
                return True
        return False

    def armed(self) -> list[tuple[int, BreakpointKind, int, int]]:
        software = [(vcpu, BreakpointKind.SOFTWARE, address, 1) for address, (vcpu, _, _) in self.software.items()]
        return software + [entry for entry in self.slots if entry is not None]

    # --- the vCPU threads' side --------------------------------------------------------------
    def arm(self, runner, step: bool) -> None:
        """Before `runner` enters the guest again: its KVM_SET_GUEST_DEBUG for what is armed."""
        control = 0
        debugregs = [0] * 8
        if any(self.slots):
            control |= lib.KVM_GUESTDBG_USE_HW_BP
            dr7 = DR7_RESERVED_ONE
            for slot, entry in enumerate(self.slots):
                if entry is None:
                    continue
                _, kind, address, length = entry
                debugregs[slot] = address
                dr7 |= 1 << (2 * slot)  # the slot's local enable
                dr7 |= DR7_RW[kind] << (DR7_RW_SHIFT + DR7_SLOT_BITS * slot)
                if kind != BreakpointKind.HARDWARE:
                    dr7 |= DR7_LEN[length] << (DR7_LEN_SHIFT + DR7_SLOT_BITS * slot)
            debugregs[DR7_INDEX] = dr7
        if self.software:
            control |= lib.KVM_GUESTDBG_USE_SW_BP
        if step:
            control |= lib.KVM_GUESTDBG_SINGLESTEP | (lib.KVM_GUESTDBG_BLOCKIRQ if self.block_irq else 0)
        if control:
            control |= lib.KVM_GUESTDBG_ENABLE
        runner.vcpu.set_guest_debug(control, debugregs)

    def debug_exit(self, runner, action) -> bool:
        """A GuestDebug exit, or an emulation failure that may be a planted int3: report the
        stop and return True; False leaves the action to the normal path."""
        index = runner.vcpu.index
        if type(action) is Fallback:
            if not action.exit.instruction.startswith(bytes([INT3])) or self._linear_rip(index) not in self.software:
                return False
            stop = DebugStop(index, Cause.SOFTWARE_BREAKPOINT)
        elif type(action) is Debug and type(action.exit) is GuestDebug:
            stop = self._classify(index, action.exit, runner.debug_stepping)
        else:
            return False
        runner.debug.report(stop)
        return True

    def _classify(self, index: int, exit: GuestDebug, stepping: bool) -> DebugStop:
        if exit.exception == BREAKPOINT_VECTOR:
            return DebugStop(index, Cause.SOFTWARE_BREAKPOINT)
        hits = exit.dr6 & DR6_SLOT_HITS
        for slot in range(HARDWARE_SLOTS):
            entry = self.slots[slot]
            if hits & (1 << slot) and entry is not None:
                _, kind, address, _ = entry
                if kind == BreakpointKind.HARDWARE:
                    return DebugStop(index, Cause.HARDWARE_BREAKPOINT)
                return DebugStop(index, Cause.WATCHPOINT, address, kind)
        return DebugStop(index, Cause.STEP)  # BS, or a #DB nothing else explains

    def step_done(self, runner) -> None:
        """The stepped instruction ran in the fallback interpreter: the step is over."""
        runner.debug.report(DebugStop(runner.vcpu.index, Cause.STEP))

    def _linear_rip(self, index: int) -> int:
        vcpu = self.vcpus[index]
        rip, sregs = vcpu.get_regs().rip, vcpu.get_sregs()
        if sregs.efer & EFER_LMA and sregs.cs.l:
            return rip
        return (sregs.cs.base + rip) & LINEAR_32BIT_MASK


def _fxsave_of(fpu) -> bytes:
    """struct kvm_fpu as an FXSAVE image (MXCSR_MASK and the reserved bytes left zero)."""
    image = bytearray(512)
    image[FX_FCW:FX_FCW + 2] = fpu.fcw.to_bytes(2, "little")
    image[FX_FSW:FX_FSW + 2] = fpu.fsw.to_bytes(2, "little")
    image[FX_FTW] = fpu.ftwx
    image[FX_FOP:FX_FOP + 2] = fpu.last_opcode.to_bytes(2, "little")
    image[FX_FIP:FX_FIP + 8] = fpu.last_ip.to_bytes(8, "little")
    image[FX_FDP:FX_FDP + 8] = fpu.last_dp.to_bytes(8, "little")
    image[FX_MXCSR:FX_MXCSR + 4] = fpu.mxcsr.to_bytes(4, "little")
    for index in range(X87_REGISTERS):
        start = FX_ST + FX_REGISTER_STRIDE * index
        image[start:start + FX_REGISTER_STRIDE] = bytes(ffi.buffer(fpu.fpr[index]))
    for index in range(XMM_REGISTERS):
        start = FX_XMM + FX_REGISTER_STRIDE * index
        image[start:start + FX_REGISTER_STRIDE] = bytes(ffi.buffer(fpu.xmm[index]))
    return bytes(image)


def _fxsave_into(fpu, image: bytes) -> None:
    """An FXSAVE image's fields into struct kvm_fpu."""
    fpu.fcw = int.from_bytes(image[FX_FCW:FX_FCW + 2], "little")
    fpu.fsw = int.from_bytes(image[FX_FSW:FX_FSW + 2], "little")
    fpu.ftwx = image[FX_FTW]
    fpu.last_opcode = int.from_bytes(image[FX_FOP:FX_FOP + 2], "little")
    fpu.last_ip = int.from_bytes(image[FX_FIP:FX_FIP + 8], "little")
    fpu.last_dp = int.from_bytes(image[FX_FDP:FX_FDP + 8], "little")
    fpu.mxcsr = int.from_bytes(image[FX_MXCSR:FX_MXCSR + 4], "little")
    for index in range(X87_REGISTERS):
        start = FX_ST + FX_REGISTER_STRIDE * index
        ffi.buffer(fpu.fpr[index])[:] = image[start:start + FX_REGISTER_STRIDE]
    for index in range(XMM_REGISTERS):
        start = FX_XMM + FX_REGISTER_STRIDE * index
        ffi.buffer(fpu.xmm[index])[:] = image[start:start + FX_REGISTER_STRIDE]
