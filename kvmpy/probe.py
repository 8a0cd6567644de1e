"""What this host's KVM is, and what it runs natively: its flavour (VT-x, AMD-V or PVM, nested
or not), the same countdown loop timed in ring 3 and ring 0, and whether `syscall` works.

On VT-x/AMD-V both loops run at host speed. On a KVM without hardware support (PVM, nested in
a VM) ring 3 still runs natively but every ring-0 instruction is emulated by the host kernel,
which is orders of magnitude slower: a VMM and its users need to know which they have.
"""

from __future__ import annotations

import functools
import pathlib
from dataclasses import dataclass

from . import layout
from .devices.testdev import MarkerClock
from .guests import guest_path
from .machine import Machine

# Iteration counts sized so each loop takes a few milliseconds even where ring 0 is emulated.
RING3_ITERATIONS = 20_000_000
RING0_ITERATIONS = 20_000
EMULATED_THRESHOLD = 100.0  # ring 0 this many times slower per iteration than ring 3: emulated
# (PVM measures 1000-4000x; hardware virtualization ~1x, and ~10x nested under QEMU TCG)


@dataclass(frozen=True)
class LoopTiming:
    iterations: int
    elapsed_ns: int

    @property
    def ns_per_iteration(self) -> float:
        return self.elapsed_ns / self.iterations


def time_guest_loop(guest: str, iterations: int, mem_size: int = 16 * layout.MiB, timeout: float = 120,
                    accel: str = "kvm", image: str | None = None) -> LoopTiming:
    """Run a marker-bracketed loop guest and return the time between its two marks; `image`
    replaces the embedded guest (a patched copy that ignores the command line)."""
    with Machine(mem_size=mem_size, cpus=1, serial_output=lambda data: None, accel=accel) as machine:
        clock = MarkerClock()
        machine.buses.ports.remove(layout.POST_PORT)
        machine.add_port_device(clock, layout.POST_PORT, 1, "marker-clock")
        machine.load(image or str(guest_path(guest)), str(iterations))
        reason = machine.run(timeout=timeout)
        if reason.kind != "verdict" or reason.exit_code != 0:
            raise RuntimeError(f"{guest} did not complete: {reason.message}")
        return LoopTiming(iterations, clock.elapsed_ns())


@dataclass(frozen=True)
class RingSpeeds:
    ring3: LoopTiming
    ring0: LoopTiming

    @property
    def ring0_slowdown(self) -> float:
        return self.ring0.ns_per_iteration / self.ring3.ns_per_iteration

    @property
    def ring0_emulated(self) -> bool:
        return self.ring0_slowdown > EMULATED_THRESHOLD


# KVM's vendor modules, by the name /sys/module gives them.
HARDWARE_MODULES = {"kvm_intel": "Intel VT-x", "kvm_amd": "AMD-V"}
PVM_MODULE = "kvm_pvm"


@dataclass(frozen=True)
class KvmFlavour:
    """Which KVM serves /dev/kvm: its vendor module (None where none is visible) and whether
    this host is itself a virtual machine (the CPUID hypervisor bit), i.e. KVM is nested."""

    module: str | None
    nested: bool

    @property
    def hardware(self) -> bool:
        return self.module in HARDWARE_MODULES

    @property
    def pvm(self) -> bool:
        return self.module == PVM_MODULE

    def describe(self) -> str:
        if self.hardware:
            kind = f"hardware virtualization ({HARDWARE_MODULES[self.module]}, {self.module})"
        elif self.pvm:
            kind = f"PVM ({self.module}: KVM without VT-x/AMD-V, guest page tables shadowed in software)"
        else:
            kind = "unknown (no kvm_intel, kvm_amd or kvm_pvm in /sys/module)"
        return kind + ("; nested: this host is itself a virtual machine" if self.nested else "")

    def meaning(self) -> str:
        """What the flavour means for someone running guests with kvmpy."""
        if self.hardware:
            text = "guest code runs on the CPU at every privilege level; exits cost a VM exit"
            if self.nested:
                text += " of the outer hypervisor too (slower than on bare metal)"
            return text
        if self.pvm:
            return ("ring-3 guest code runs natively, ring 0 is emulated by the host kernel (~1000x slower); "
                    "Linux guests go to kvmpy's interpreter under --accel auto")
        return "the ring-speed and syscall probes below tell what runs natively"


def detect_kvm_flavour(sys_module: pathlib.Path = pathlib.Path("/sys/module"),
                       cpuinfo: pathlib.Path = pathlib.Path("/proc/cpuinfo")) -> KvmFlavour:
    """Read the flavour off the loaded modules and the CPU flags; no VM is created."""
    module = next((name for name in (*HARDWARE_MODULES, PVM_MODULE) if (sys_module / name).is_dir()), None)
    try:
        flags = next((line.split(":", 1)[1].split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        flags = []
    return KvmFlavour(module, "hypervisor" in flags)


@functools.lru_cache(maxsize=None)
def syscall_lands_in_ring0() -> bool:
    """Whether `syscall` from ring 3 reaches its handler in ring 0, as the architecture says.

    PVM without hardware virtualization has been seen to jump to the handler but stay in
    ring 3, which makes every system call of a standard Linux user space fault. The answer
    cannot change while the process lives, so it is measured once.
    """
    with Machine(mem_size=16 * layout.MiB, cpus=1, serial_output=lambda data: None, accel="kvm") as machine:
        machine.load(str(guest_path("syscall")))
        reason = machine.run(timeout=60)
    if reason.kind != "verdict":
        raise RuntimeError(f"syscall probe did not complete: {reason.message}")
    return reason.exit_code == 0


def measure_ring_speeds() -> RingSpeeds:
    return RingSpeeds(
        ring3=time_guest_loop("ring3_loop", RING3_ITERATIONS),
        ring0=time_guest_loop("ring0_loop", RING0_ITERATIONS),
    )


def kvm_runs_linux_user_space() -> tuple[bool, str]:
    """Whether Linux user space can run under this host's KVM, and if not, why (one line)."""
    from .kvm import kvm_usable

    usable, why = kvm_usable()
    if not usable:
        return False, f"/dev/kvm is not usable ({why})"
    if not syscall_lands_in_ring0():
        return False, ("this host's KVM runs syscall handlers in ring 3 (PVM; see `kvmpy info`), so Linux "
                       "user space cannot run under it")
    return True, ""
