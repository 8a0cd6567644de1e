"""The software PC platform the interpreter runs whole guests on (`--accel interp`): the 8259A
pair, the 8254 PIT with port 0x61, the IOAPIC and a local APIC per vCPU (`Chipset` wires
them), the CPUID the interpreted CPU reports, and the host TSC frequency it runs at.

Under `--accel kvm` KVM's in-kernel devices play these parts; the models here behave like
them where a guest can tell. Each device is a plain object with `read(offset, size)` /
`write(offset, size, value)` registers and a `clock()` returning nanoseconds, so tests drive
them with a fake clock.
"""

from .chipset import Chipset
from .cpuid import IMPLEMENTED, apic_bus_hz, interp_cpuid

__all__ = ["IMPLEMENTED", "Chipset", "apic_bus_hz", "interp_cpuid"]
