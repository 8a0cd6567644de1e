"""The CPUID each vCPU sees: what KVM supports, made per-vCPU (APIC IDs) and hypervisor-honest."""

from __future__ import annotations

LEAF_FEATURES = 0x1
LEAF_EXTENDED_TOPOLOGY = 0xB
LEAF_V2_EXTENDED_TOPOLOGY = 0x1F
FEATURES_ECX_HYPERVISOR = 1 << 31


def vcpu_cpuid(supported: list[dict], index: int, vcpu_count: int) -> list[dict]:
    """A copy of KVM's supported CPUID with vCPU `index`'s APIC ID and the hypervisor bit."""
    entries = [dict(entry) for entry in supported]
    for entry in entries:
        if entry["function"] == LEAF_FEATURES:
            entry["ebx"] = (entry["ebx"] & 0x0000FFFF) | (vcpu_count & 0xFF) << 16 | (index & 0xFF) << 24
            entry["ecx"] |= FEATURES_ECX_HYPERVISOR
        elif entry["function"] in (LEAF_EXTENDED_TOPOLOGY, LEAF_V2_EXTENDED_TOPOLOGY):
            entry["edx"] = index  # x2APIC ID
    return entries
