"""The CPUID each vCPU gets: its APIC ID, the hypervisor bit, and TSC deadline when KVM has it."""

from kvmpy.vcpu.cpuid import FEATURES_ECX_HYPERVISOR, FEATURES_ECX_TSC_DEADLINE, vcpu_cpuid

SUPPORTED = [
    {"function": 0x1, "index": 0, "flags": 0, "eax": 0x806F8, "ebx": 0x0000_0800, "ecx": 0x1, "edx": 0},
    {"function": 0xB, "index": 0, "flags": 1, "eax": 0, "ebx": 1, "ecx": 0x100, "edx": 0},
]


def test_each_vcpu_gets_its_apic_id_and_the_hypervisor_bit():
    leaf1, leafb = vcpu_cpuid(SUPPORTED, 3, 4)
    assert leaf1["ebx"] >> 24 == 3 and leaf1["ebx"] >> 16 & 0xFF == 4 and leaf1["ebx"] & 0xFFFF == 0x0800
    assert leaf1["ecx"] & FEATURES_ECX_HYPERVISOR and not leaf1["ecx"] & FEATURES_ECX_TSC_DEADLINE
    assert leafb["edx"] == 3
    assert SUPPORTED[0]["ebx"] == 0x0000_0800  # KVM's list is copied, not changed


def test_tsc_deadline_is_offered_only_where_kvm_s_lapic_has_it():
    (leaf1, _) = vcpu_cpuid(SUPPORTED, 0, 1, tsc_deadline=True)
    assert leaf1["ecx"] & FEATURES_ECX_TSC_DEADLINE and leaf1["ecx"] & 0x1
