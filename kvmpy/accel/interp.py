"""The interpreter accelerator: every vCPU is a SoftCpu (native/interp) run by a thread of its
own, and the interrupt controllers and timers KVM would keep in the kernel are the software
models of kvmpy/interp/platform. The machine's devices and buses are the same as under KVM.

Used where /dev/kvm is absent, on request (`--accel interp`), and for Linux on hosts whose KVM
cannot run its user space (a PVM KVM lands `syscall` from ring 3 in the handler at ring 3).
"""

from __future__ import annotations

from ..cpu_model import cpu_model
from ..errors import ConfigError
from ..interp.cpu import SoftCpu, ffi as interp_ffi
from ..interp.fallback import CONTROL, GPRS, SEGMENTS
from ..interp.platform import IMPLEMENTED, Chipset, apic_bus_hz, interp_cpuid
from ..interp.platform.tsc import host_tsc_hz, rdtsc
from ..interp.runner import InterpRunner, power_on
from ..native import ffi as kvm_ffi
from ..vcpu.modes import start_vcpu

MAX_VCPUS = 16  # the IOAPIC's 4-bit ID follows the vCPUs' APIC IDs in the MP table
PAUSE_TIMEOUT = 10.0
TSC_MASK = (1 << 64) - 1
FCW_OFFSET = 0


class InterpAccelerator:
    name = "interp"
    supports_eventfds = False  # virtio then notifies through MMIO writes and pulses its IRQ line

    def __init__(self, memory, cpus: int, cpu: str = "max"):
        if not 1 <= cpus <= MAX_VCPUS:
            raise ConfigError(f"--cpus must be between 1 and {MAX_VCPUS} with the interpreter (got {cpus})")
        self.cpu_model = cpu_model(cpu, IMPLEMENTED, "the interpreter")
        self.memory = memory
        self.tsc_hz = host_tsc_hz()
        self.chipset = Chipset(cpus, apic_bus_hz(self.tsc_hz))
        self.tsc_offset = -rdtsc() & TSC_MASK  # the guest's TSCs start at 0, together
        self.vcpus: list[SoftCpu] = []
        for index in range(cpus):
            cpu = SoftCpu(memory)
            cpu.set_cpuid(interp_cpuid(index, cpus, self.tsc_hz, self.cpu_model))
            power_on(cpu, index == 0, self.tsc_offset)
            self.chipset.lapics[index].base_msr = lambda raw=cpu.raw: raw.msr.apic_base
            self.vcpus.append(cpu)
        self.runners: list[InterpRunner] = []

    def irq_line(self, irq: int):
        return self.chipset.irq_line(irq)

    def create_runners(self, buses, on_stop) -> list[InterpRunner]:
        self.chipset.attach(buses)
        self.runners = [InterpRunner(index, cpu, self.chipset, buses, on_stop, self.tsc_offset)
                        for index, cpu in enumerate(self.vcpus)]
        return list(self.runners)

    def start(self, image) -> None:
        """Put the vCPUs at the image's entry: all of them for tiny guests, the first for an
        operating system, which starts the others itself (INIT and STARTUP IPIs through the local APICs)."""
        for runner in self.runners[:1] if image.boot_cpu_only else self.runners:
            start_vcpu(KvmRegisterView(runner.vcpu), self.memory, image.mode, image.entry, image.registers)
            runner.waiting_for_startup = False

    def debug_backend(self):
        """What a debugger drives under the interpreter (kvmpy/accel/interp_debug.py)."""
        from .interp_debug import InterpDebug

        return InterpDebug(self.memory, self.vcpus)

    def halted_for_good(self, runners) -> bool:
        """Every vCPU is parked: in HLT with interrupts disabled, or waiting for a STARTUP that
        no running vCPU is left to send. vCPUs are held one at a time to read their state."""
        for runner in runners:
            if not runner.pause(timeout=PAUSE_TIMEOUT):
                return False
            try:
                if not runner.parked():
                    return False
            finally:
                runner.resume()
        return True

    def stats(self, runners) -> dict:
        unimplemented: dict[str, int] = {}
        for runner in runners:
            for name, count in runner.unimplemented.items():
                unimplemented[name] = unimplemented.get(name, 0) + count
        return {
            "exits": sum(runner.exit_count for runner in runners),
            "interpreted_instructions": sum(cpu.insn_count for cpu in self.vcpus),
            "unimplemented": unimplemented,
        }

    def close(self) -> None:
        """Release guest RAM from every SoftCpu whose thread has ended (one still running, which
        only a stuck device could cause, keeps its mapping rather than crash the process)."""
        for runner in self.runners:
            runner.request_stop()
        for index, cpu in enumerate(self.vcpus):
            if index >= len(self.runners) or self.runners[index].join(PAUSE_TIMEOUT):
                cpu.close()


class KvmRegisterView:
    """A SoftCpu seen through KVM's register structures (get/set regs, sregs and fpu), so that
    vcpu/modes.start_vcpu, the one definition of kvmpy's boot state, starts interpreted
    vCPUs exactly as it starts KVM's."""

    def __init__(self, cpu: SoftCpu):
        self.cpu = cpu
        self.raw = cpu.raw

    def get_regs(self):
        regs = kvm_ffi.new("struct kvm_regs *")
        for index, name in enumerate(GPRS):
            setattr(regs, name, self.raw.gpr[index])
        regs.rip, regs.rflags = self.raw.rip, self.raw.rflags
        return regs

    def set_regs(self, regs) -> None:
        for index, name in enumerate(GPRS):
            self.raw.gpr[index] = getattr(regs, name)
        self.raw.rip, self.raw.rflags = regs.rip, regs.rflags

    def _segment(self, index: int):
        return interp_ffi.buffer(interp_ffi.addressof(self.raw.seg[index]))

    def get_sregs(self):
        sregs = kvm_ffi.new("struct kvm_sregs *")
        for name, index in SEGMENTS:  # kvm_segment and interp_segment have the same layout
            kvm_ffi.buffer(kvm_ffi.addressof(getattr(sregs, name)))[:] = self._segment(index)[:]
        for name in ("gdt", "idt"):
            table, ours = getattr(sregs, name), getattr(self.raw, name)
            table.base, table.limit = ours.base, ours.limit
        for name in CONTROL:
            setattr(sregs, name, getattr(self.raw, name))
        sregs.apic_base = self.raw.msr.apic_base
        return sregs

    def set_sregs(self, sregs) -> None:
        for name, index in SEGMENTS:
            self._segment(index)[:] = kvm_ffi.buffer(kvm_ffi.addressof(getattr(sregs, name)))[:]
        for name in ("gdt", "idt"):
            table, ours = getattr(sregs, name), getattr(self.raw, name)
            ours.base, ours.limit = table.base, table.limit
        for name in CONTROL:
            setattr(self.raw, name, getattr(sregs, name))
        self.raw.msr.apic_base = sregs.apic_base
        self.cpu.flush_tlb()

    def get_fpu(self):
        fpu = kvm_ffi.new("struct kvm_fpu *")
        fpu.fcw = int.from_bytes(self.cpu.fxsave_image[FCW_OFFSET:FCW_OFFSET + 2], "little")
        fpu.mxcsr = self.cpu.get("mxcsr")
        return fpu

    def set_fpu(self, fpu) -> None:
        """The control words (what a boot sets); registers are left as they are."""
        image = bytearray(self.cpu.fxsave_image)
        image[FCW_OFFSET:FCW_OFFSET + 2] = fpu.fcw.to_bytes(2, "little")
        self.cpu.fxsave_image = bytes(image)
        self.cpu.set("mxcsr", fpu.mxcsr)
