"""The CPUID each vCPU sees: what KVM supports, made per-vCPU (APIC IDs) and hypervisor-honest."""

from __future__ import annotations

LEAF_FEATURES = 0x1
LEAF_EXTENDED_TOPOLOGY = 0xB
LEAF_V2_EXTENDED_TOPOLOGY = 0x1F
FEATURES_ECX_HYPERVISOR = 1 << 31
FEATURES_ECX_TSC_DEADLINE = 1 << 24


def vcpu_cpuid(supported: list[dict], index: int, vcpu_count: int, tsc_deadline: bool = False) -> list[dict]:
    """A copy of KVM's supported CPUID with vCPU `index`'s APIC ID and the hypervisor bit,
    and the TSC-deadline timer where KVM's in-kernel LAPIC has it (`tsc_deadline`: KVM does
    not report it in its supported CPUID, api.rst; Linux then arms its timer with one MSR
    write and skips calibrating the LAPIC timer against the PIT, 100 ms of guest ticks)."""
    entries = [dict(entry) for entry in supported]
    for entry in entries:
        if entry["function"] == LEAF_FEATURES:
            entry["ebx"] = (entry["ebx"] & 0x0000FFFF) | (vcpu_count & 0xFF) << 16 | (index & 0xFF) << 24
            entry["ecx"] |= FEATURES_ECX_HYPERVISOR | (FEATURES_ECX_TSC_DEADLINE if tsc_deadline else 0)
        elif entry["function"] in (LEAF_EXTENDED_TOPOLOGY, LEAF_V2_EXTENDED_TOPOLOGY):
            entry["edx"] = index  # x2APIC ID
    return entries
