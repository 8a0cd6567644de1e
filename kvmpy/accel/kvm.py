"""The KVM accelerator: a VM with KVM's in-kernel irqchip and PIT, one thread per vCPU, and
the software interpreter standing in for instructions KVM cannot emulate."""

from __future__ import annotations

from ..cpu_model import cpu_model, features_in
from ..errors import ConfigError
from ..irq import CallbackIrqLine
from ..kvm import Kvm
from ..native import lib
from ..vcpu.cpuid import vcpu_cpuid
from ..vcpu.modes import start_vcpu
from ..vcpu.runner import VcpuRunner

RFLAGS_IF = 1 << 9
PAUSE_TIMEOUT = 10.0


class KvmAccelerator:
    name = "kvm"
    supports_eventfds = True

    def __init__(self, memory, cpus: int, kvm: Kvm | None = None, fallback_burst: int = 1, cpu: str = "max"):
        self.kvm = kvm or Kvm()
        limit = self.kvm.max_vcpus
        try:
            if not 1 <= cpus <= limit:
                raise ConfigError(f"--cpus must be between 1 and {limit} on this host (got {cpus})")
            supported = self.kvm.supported_cpuid()
            model = cpu_model(cpu, features_in(supported), "this host's KVM")
        except ConfigError:
            self.kvm.close()
            raise
        supported = model.restrict(supported)
        self.memory = memory
        self.vm = self.kvm.create_vm()
        self.vm.setup_x86_platform()
        self.vm.map_memory(memory)
        self.vcpus = [self.vm.create_vcpu(index) for index in range(cpus)]
        tsc_deadline = bool(self.kvm.check_extension(lib.KVM_CAP_TSC_DEADLINE_TIMER))
        self.cpuid = [vcpu_cpuid(supported, vcpu.index, cpus, tsc_deadline) for vcpu in self.vcpus]
        for vcpu, entries in zip(self.vcpus, self.cpuid):
            vcpu.set_cpuid(entries)
        self.fallback_burst = fallback_burst  # 0: leave emulation failures unhandled
        self.fallbacks = []

    def irq_line(self, irq: int) -> CallbackIrqLine:
        return CallbackIrqLine(lambda level: self.vm.set_irq_line(irq, level))

    def register_irqfd(self, eventfd: int, gsi: int) -> None:
        self.vm.register_irqfd(eventfd, gsi)

    def register_ioeventfd(self, eventfd: int, address: int, length: int, datamatch: int) -> None:
        self.vm.register_ioeventfd(eventfd, address, length, datamatch)

    def create_runners(self, buses, on_stop) -> list[VcpuRunner]:
        runners = []
        for vcpu, cpuid in zip(self.vcpus, self.cpuid):
            fallback = None
            if self.fallback_burst:
                fallback = _OnFirstFailure(self.memory, buses, cpuid, self.fallback_burst)
                self.fallbacks.append(fallback)
            runners.append(VcpuRunner(vcpu, buses, on_stop, fallback))
        return runners

    def start(self, image) -> None:
        """Put the vCPUs at the image's entry: all of them for tiny guests, the first for an
        operating system, which starts the others itself (INIT/SIPI through the in-kernel LAPIC)."""
        for vcpu in self.vcpus[:1] if image.boot_cpu_only else self.vcpus:
            start_vcpu(vcpu, self.memory, image.mode, image.entry, image.registers)
            if not image.boot_cpu_only:
                vcpu.set_mp_state(lib.KVM_MP_STATE_RUNNABLE)

    def debug_backend(self):
        """What a debugger drives under KVM (kvmpy/accel/kvm_debug.py)."""
        from .kvm_debug import KvmDebug

        flags = self.kvm.check_extension(lib.KVM_CAP_SET_GUEST_DEBUG2)  # the KVM_GUESTDBG_* bits this KVM takes
        return KvmDebug(self.memory, self.vcpus, block_irq=bool(flags & lib.KVM_GUESTDBG_BLOCKIRQ))

    def halted_for_good(self, runners) -> bool:
        """Every vCPU sits in HLT with interrupts disabled: nothing but an NMI could wake it.
        vCPUs are held one at a time just long enough to read their state."""
        for runner in runners:
            if not runner.pause(timeout=PAUSE_TIMEOUT):
                return False
            try:
                halted = runner.vcpu.get_mp_state() == lib.KVM_MP_STATE_HALTED
                if not halted or runner.vcpu.get_regs().rflags & RFLAGS_IF:
                    return False
            finally:
                runner.resume()
        return True

    def stats(self, runners) -> dict:
        counts: dict[str, int] = {}
        used = [fallback.real for fallback in self.fallbacks if fallback.real is not None]
        for fallback in used:
            for name, count in fallback.counts.items():
                counts[name] = counts.get(name, 0) + count
        return {
            "exits": sum(runner.exit_count for runner in runners),
            "fallbacks": counts,
            "fallback_instructions": sum(fallback.instructions for fallback in used),
        }

    def close(self) -> None:
        for fallback in self.fallbacks:
            if fallback.real is not None:
                fallback.real.close()
        for vcpu in self.vcpus:
            vcpu.close()
        self.vm.close()
        self.kvm.close()


class _OnFirstFailure:
    """The emulation-failure hook, built when KVM first fails: loading and setting up the
    interpreter costs start-up time that most guests (and every VT-x host) never need."""

    def __init__(self, memory, buses, cpuid, burst: int):
        self._arguments = (memory, buses, cpuid, burst)
        self.real = None

    def __call__(self, vcpu, action) -> None:
        if self.real is None:
            from ..interp.fallback import EmulationFallback

            self.real = EmulationFallback(*self._arguments)
        self.real(vcpu, action)
