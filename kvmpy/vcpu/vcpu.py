"""A KVM vCPU fd: register state access and the shared `kvm_run` page.

The `kvm_run` page is mapped once; `run` is a cdata view onto it, so reading an exit costs
attribute accesses, never a copy.
"""

from __future__ import annotations

import mmap
import os

from ..native import ffi, ioctl, ioctl_int, lib

REG_NAMES = (
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rip", "rflags",
)  # fmt: skip


class Vcpu:
    """One vCPU of a VM. State getters return cdata structs that can be modified and set back."""

    def __init__(self, vm, index: int):
        self.vm = vm
        self.index = index
        self.fd = ioctl_int(vm.fd, lib.KVM_CREATE_VCPU, index, f"KVM_CREATE_VCPU {index}")
        self._run_map = mmap.mmap(self.fd, vm.kvm.vcpu_mmap_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._run_buffer = ffi.from_buffer(self._run_map)
        self.run_state = ffi.cast("struct kvm_run *", self._run_buffer)
        self.run_bytes = memoryview(self._run_map)

    # --- running -----------------------------------------------------------------------------
    def run(self) -> int:
        """One KVM_RUN; returns 0 or -errno (EINTR on a kick) without raising, for the hot loop."""
        return lib.kvmpy_kvm_run(self.fd)

    # --- state -------------------------------------------------------------------------------
    def _get(self, request: int, ctype: str, name: str):
        state = ffi.new(ctype)
        ioctl(self.fd, request, state, name)
        return state

    def get_regs(self):
        return self._get(lib.KVM_GET_REGS, "struct kvm_regs *", "KVM_GET_REGS")

    def set_regs(self, regs) -> None:
        ioctl(self.fd, lib.KVM_SET_REGS, regs, "KVM_SET_REGS")

    def get_sregs(self):
        return self._get(lib.KVM_GET_SREGS, "struct kvm_sregs *", "KVM_GET_SREGS")

    def set_sregs(self, sregs) -> None:
        ioctl(self.fd, lib.KVM_SET_SREGS, sregs, "KVM_SET_SREGS")

    def get_fpu(self):
        return self._get(lib.KVM_GET_FPU, "struct kvm_fpu *", "KVM_GET_FPU")

    def set_fpu(self, fpu) -> None:
        ioctl(self.fd, lib.KVM_SET_FPU, fpu, "KVM_SET_FPU")

    def get_xsave(self):
        return self._get(lib.KVM_GET_XSAVE, "struct kvm_xsave *", "KVM_GET_XSAVE")

    def set_xsave(self, xsave) -> None:
        ioctl(self.fd, lib.KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE")

    def get_xcrs(self):
        return self._get(lib.KVM_GET_XCRS, "struct kvm_xcrs *", "KVM_GET_XCRS")

    def set_xcrs(self, xcrs) -> None:
        ioctl(self.fd, lib.KVM_SET_XCRS, xcrs, "KVM_SET_XCRS")

    def get_msrs(self, indices: list[int]) -> dict[int, int]:
        msrs = ffi.new("struct kvm_msrs *", {"nmsrs": len(indices), "entries": len(indices)})
        for slot, index in enumerate(indices):
            msrs.entries[slot].index = index
        read = ioctl(self.fd, lib.KVM_GET_MSRS, msrs, "KVM_GET_MSRS")
        return {msrs.entries[i].index: msrs.entries[i].data for i in range(read)}

    def set_msrs(self, values: dict[int, int]) -> None:
        msrs = ffi.new("struct kvm_msrs *", {"nmsrs": len(values), "entries": len(values)})
        for slot, (index, data) in enumerate(values.items()):
            msrs.entries[slot].index = index
            msrs.entries[slot].data = data
        written = ioctl(self.fd, lib.KVM_SET_MSRS, msrs, "KVM_SET_MSRS")
        if written != len(values):
            failed = list(values)[written]
            raise ValueError(f"KVM_SET_MSRS refused MSR {failed:#x}")

    def set_cpuid(self, entries: list[dict]) -> None:
        cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": len(entries), "entries": len(entries)})
        for slot, entry in enumerate(entries):
            for field, value in entry.items():
                setattr(cpuid.entries[slot], field, value)
        ioctl(self.fd, lib.KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2")

    def get_mp_state(self) -> int:
        return self._get(lib.KVM_GET_MP_STATE, "struct kvm_mp_state *", "KVM_GET_MP_STATE").mp_state

    def set_mp_state(self, state: int) -> None:
        mp_state = ffi.new("struct kvm_mp_state *", {"mp_state": state})
        ioctl(self.fd, lib.KVM_SET_MP_STATE, mp_state, "KVM_SET_MP_STATE")

    def get_lapic(self):
        return self._get(lib.KVM_GET_LAPIC, "struct kvm_lapic_state *", "KVM_GET_LAPIC")

    def set_lapic(self, lapic) -> None:
        ioctl(self.fd, lib.KVM_SET_LAPIC, lapic, "KVM_SET_LAPIC")

    def get_vcpu_events(self):
        return self._get(lib.KVM_GET_VCPU_EVENTS, "struct kvm_vcpu_events *", "KVM_GET_VCPU_EVENTS")

    def set_vcpu_events(self, events) -> None:
        ioctl(self.fd, lib.KVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS")

    def set_guest_debug(self, control: int, debugregs=()) -> None:
        """KVM_SET_GUEST_DEBUG: `control` is KVM_GUESTDBG_* bits, `debugregs` DR0-DR7 as the
        debugger wants them (used with KVM_GUESTDBG_USE_HW_BP; DR4/DR5 are ignored)."""
        debug = ffi.new("struct kvm_guest_debug *", {"control": control})
        for index, value in enumerate(debugregs):
            debug.arch.debugreg[index] = value
        ioctl(self.fd, lib.KVM_SET_GUEST_DEBUG, debug, "KVM_SET_GUEST_DEBUG")

    def regs_dict(self) -> dict[str, int]:
        regs = self.get_regs()
        return {name: getattr(regs, name) for name in REG_NAMES}

    def close(self) -> None:
        if self.fd >= 0:
            self.run_bytes.release()
            del self.run_state, self._run_buffer
            self._run_map.close()
            os.close(self.fd)
            self.fd = -1
