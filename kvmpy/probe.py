"""Measure what this host's KVM runs natively: the same countdown loop in ring 3 and ring 0.

On VT-x/AMD-V both run at host speed. On a KVM without hardware support (PVM, nested in a
VM) ring 3 still runs natively but every ring-0 instruction is emulated by the host kernel,
which is orders of magnitude slower: a VMM and its users need to know which they have.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import layout
from .devices.testdev import MarkerClock
from .guests import guest_path
from .machine import Machine

# Iteration counts sized so each loop takes a few milliseconds even where ring 0 is emulated.
RING3_ITERATIONS = 20_000_000
RING0_ITERATIONS = 20_000
EMULATED_THRESHOLD = 10.0  # ring 0 this many times slower per iteration than ring 3: emulated


@dataclass(frozen=True)
class LoopTiming:
    iterations: int
    elapsed_ns: int

    @property
    def ns_per_iteration(self) -> float:
        return self.elapsed_ns / self.iterations


def time_guest_loop(guest: str, iterations: int, mem_size: int = 16 * layout.MiB, timeout: float = 120,
                    accel: str = "kvm") -> LoopTiming:
    """Run a marker-bracketed loop guest and return the time between its two marks."""
    with Machine(mem_size=mem_size, cpus=1, serial_output=lambda data: None, accel=accel) as machine:
        clock = MarkerClock()
        machine.buses.ports.remove(layout.POST_PORT)
        machine.add_port_device(clock, layout.POST_PORT, 1, "marker-clock")
        machine.load(str(guest_path(guest)), str(iterations))
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


def syscall_lands_in_ring0() -> bool:
    """Whether `syscall` from ring 3 reaches its handler in ring 0, as the architecture says.

    PVM without hardware virtualization has been seen to jump to the handler but stay in
    ring 3, which makes every system call of a standard Linux user space fault.
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
