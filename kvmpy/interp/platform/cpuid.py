"""The CPUID the interpreted guest sees: what the interpreter in native/interp implements, and
nothing more (a guest told about AVX would use it and meet #UD).

The instruction-set features come from the CPU model (`--cpu`, kvmpy/cpu_model.py): `max`,
the default, is IMPLEMENTED below, a level is its own set (and must be part of IMPLEMENTED).
The platform features are always there: the TSC, MSRs, PSE/PAE/PGE/PAT, CLFLUSH, the local
APIC (xAPIC, no x2APIC and no TSC-deadline timer), FSGSBASE, SMEP, SMAP, UMIP, RDPID, NX,
1 GiB pages, SYSCALL, long mode, the hypervisor bit, and "FPU CS and DS deprecated" (the
x87 stores 0 for both). With the model's XSAVE, leaf 0xD describes the x87, SSE and (with
AVX) YMM state in the standard layout, with XSAVEOPT and XSAVEC (not XSAVES: no IA32_XSS).
Not advertised: SYSENTER (64-bit guests use SYSCALL).

The vendor is GenuineIntel, family 6 with a model number Intel never used (0x10), so Linux
applies no model quirks. Leaf 0x15 reports the TSC frequency, with the local APIC timer's
clock as the "crystal": Linux then neither calibrates the TSC against the PIT nor the APIC
timer against anything, which saves seconds of interpreted boot. Leaf 0x40000000 names the
hypervisor ("kvmpy interp", so no paravirtual interface is assumed) and 0x40000010 repeats
both frequencies in kHz, in the layout VMware defined and other hypervisors copied.
"""

from __future__ import annotations

import struct

from ...cpu_model import BASELINE, FEATURES, CpuModel

LEAF_VENDOR = 0x0
LEAF_FEATURES = 0x1
LEAF_STRUCTURED_FEATURES = 0x7
LEAF_XSAVE = 0xD
LEAF_TSC_CRYSTAL = 0x15
LEAF_FREQUENCIES = 0x16
LEAF_HYPERVISOR = 0x4000_0000
LEAF_HYPERVISOR_TIMING = 0x4000_0010
LEAF_EXTENDED = 0x8000_0000
LEAF_EXTENDED_FEATURES = 0x8000_0001
LEAF_BRAND = (0x8000_0002, 0x8000_0003, 0x8000_0004)
LEAF_POWER = 0x8000_0007
LEAF_ADDRESS_SIZES = 0x8000_0008

VENDOR = b"GenuineIntel"
HYPERVISOR_SIGNATURE = b"kvmpy interp"
BRAND = b"kvmpy interpreted x86-64 CPU"
FAMILY = 6
MODEL = 0x10
STEPPING = 1
CLFLUSH_LINE_QWORDS = 8  # 64-byte lines
PHYSICAL_ADDRESS_BITS = 40
LINEAR_ADDRESS_BITS = 48
SIGNIFICANT_INDEX = 1  # kvm_cpuid_entry2 flag: the subleaf matters

# The instruction-set features the interpreter executes (cpu_model.FEATURES names).
IMPLEMENTED = BASELINE | {"cx16", "popcnt", "lahf_lm", "abm", "rdtscp", "pni", "ssse3", "sse4_1", "sse4_2", "movbe",
                          "xsave", "bmi1", "bmi2", "adx", "rdrand", "rdseed", "avx", "avx2", "fma", "f16c"}

# Platform features, by leaf and register.
PSE, TSC, MSR, PAE, APIC, PGE, PAT, CLFSH = 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 9, 1 << 13, 1 << 16, 1 << 19
HYPERVISOR = 1 << 31
FSGSBASE, SMEP, ERMS, FPU_CS_DS_DEPRECATED, SMAP = 1 << 0, 1 << 7, 1 << 9, 1 << 13, 1 << 20
UMIP, RDPID = 1 << 2, 1 << 22
SYSCALL, NX, PAGE_1GB, LONG_MODE = 1 << 11, 1 << 20, 1 << 26, 1 << 29
INVARIANT_TSC = 1 << 8  # leaf 0x80000007 EDX
# XSAVE (leaf 0xD): the components the interpreter holds, where the standard format puts them.
XCR0_X87, XCR0_SSE, XCR0_AVX = 1 << 0, 1 << 1, 1 << 2
XSAVE_LEGACY_AND_HEADER = 576  # the FXSAVE image and the XSAVE header: component 2 starts here
XSAVE_AVX_SIZE = 256
XSAVEOPT, XSAVEC = 1 << 0, 1 << 1  # leaf 0xD subleaf 1 EAX (no XSAVES: no IA32_XSS)

PLATFORM = {
    (LEAF_FEATURES, "edx"): PSE | TSC | MSR | PAE | APIC | PGE | PAT | CLFSH,
    (LEAF_FEATURES, "ecx"): HYPERVISOR,
    (LEAF_STRUCTURED_FEATURES, "ebx"): FSGSBASE | SMEP | ERMS | FPU_CS_DS_DEPRECATED | SMAP,
    (LEAF_STRUCTURED_FEATURES, "ecx"): UMIP | RDPID,
    (LEAF_EXTENDED_FEATURES, "edx"): SYSCALL | NX | PAGE_1GB | LONG_MODE,
}
MAX_MODEL = CpuModel("max", None)


def feature_registers(model: CpuModel) -> dict[tuple[int, str], int]:
    """(leaf, register) -> bits: the platform features and the model's instruction sets."""
    registers = dict(PLATFORM)
    for name in IMPLEMENTED if model.features is None else model.features:
        feature = FEATURES[name]
        registers[feature.leaf, feature.register] = registers.get((feature.leaf, feature.register), 0) | feature.mask
    return registers


LINUX_UINT_LIMIT = 1 << 32  # Linux computes crystal kHz * 1000 in 32-bit arithmetic


def _registers(text: bytes) -> tuple[int, ...]:
    """Bytes as the little-endian 32-bit registers CPUID returns them in."""
    return struct.unpack(f"<{len(text) // 4}I", text)


def tsc_to_bus_ratio(tsc_hz: int) -> int:
    """How many TSC ticks make one tick of the local APIC timer's input clock (the "crystal"):
    1, unless the TSC is too fast for Linux's 32-bit arithmetic on the crystal frequency."""
    ratio = 1
    while tsc_hz // ratio >= LINUX_UINT_LIMIT:
        ratio += 1
    return ratio


def apic_bus_hz(tsc_hz: int) -> int:
    """The local APIC timer's input clock, in Hz (a whole number of kHz, as leaf 0x15 needs)."""
    return tsc_hz // tsc_to_bus_ratio(tsc_hz) // 1000 * 1000


def xsave_leaves(avx: bool) -> list[tuple[int, int, int, int, int, int, int]]:
    """Leaf 0xD: x87 and SSE state, and the AVX upper halves where the model has AVX. EBX of
    subleaves 0 and 1 (the XSAVE and XSAVEC sizes for the XCR0 in force) is filled in by the
    interpreter's CPUID."""
    components = XCR0_X87 | XCR0_SSE | (XCR0_AVX if avx else 0)
    largest = XSAVE_LEGACY_AND_HEADER + (XSAVE_AVX_SIZE if avx else 0)
    leaves = [(LEAF_XSAVE, 0, SIGNIFICANT_INDEX, components, XSAVE_LEGACY_AND_HEADER, largest, 0),
              (LEAF_XSAVE, 1, SIGNIFICANT_INDEX, XSAVEOPT | XSAVEC, 0, 0, 0)]
    if avx:
        leaves.append((LEAF_XSAVE, 2, SIGNIFICANT_INDEX, XSAVE_AVX_SIZE, XSAVE_LEGACY_AND_HEADER, 0, 0))
    return leaves


def interp_cpuid(index: int, cpus: int, tsc_hz: int,
                 model: CpuModel = MAX_MODEL) -> list[tuple[int, int, int, int, int, int, int]]:
    """CPUID entries for vCPU `index` of `cpus`, as (function, index, flags, eax, ebx, ecx, edx)."""
    bits = feature_registers(model)
    features = IMPLEMENTED if model.features is None else model.features
    bus_hz, ratio = apic_bus_hz(tsc_hz), tsc_to_bus_ratio(tsc_hz)
    vendor_ebx, vendor_edx, vendor_ecx = _registers(VENDOR)
    signature = (MODEL >> 4) << 16 | FAMILY << 8 | (MODEL & 0xF) << 4 | STEPPING
    brand = _registers(BRAND.ljust(48, b"\0"))
    mhz = tsc_hz // 1_000_000
    return [
        (LEAF_VENDOR, 0, 0, LEAF_FREQUENCIES, vendor_ebx, vendor_ecx, vendor_edx),
        (LEAF_FEATURES, 0, 0, signature, index << 24 | (cpus & 0xFF) << 16 | CLFLUSH_LINE_QWORDS << 8,
         bits[LEAF_FEATURES, "ecx"], bits[LEAF_FEATURES, "edx"]),
        (LEAF_STRUCTURED_FEATURES, 0, SIGNIFICANT_INDEX, 0, bits[LEAF_STRUCTURED_FEATURES, "ebx"],
         bits[LEAF_STRUCTURED_FEATURES, "ecx"], 0),
        *(xsave_leaves("avx" in features) if "xsave" in features else ()),
        (LEAF_TSC_CRYSTAL, 0, 0, 1, ratio, bus_hz, 0),  # TSC = crystal * ratio / 1
        (LEAF_FREQUENCIES, 0, 0, mhz, mhz, bus_hz // 1_000_000, 0),
        (LEAF_HYPERVISOR, 0, 0, LEAF_HYPERVISOR_TIMING, *_registers(HYPERVISOR_SIGNATURE)),
        (LEAF_HYPERVISOR_TIMING, 0, 0, tsc_hz // 1000, bus_hz // 1000, 0, 0),
        (LEAF_EXTENDED, 0, 0, LEAF_ADDRESS_SIZES, 0, 0, 0),
        (LEAF_EXTENDED_FEATURES, 0, 0, 0, 0, bits.get((LEAF_EXTENDED_FEATURES, "ecx"), 0),
         bits[LEAF_EXTENDED_FEATURES, "edx"]),
        *((leaf, 0, 0, *brand[4 * i : 4 * i + 4]) for i, leaf in enumerate(LEAF_BRAND)),
        (LEAF_POWER, 0, 0, 0, 0, 0, INVARIANT_TSC),
        (LEAF_ADDRESS_SIZES, 0, 0, LINEAR_ADDRESS_BITS << 8 | PHYSICAL_ADDRESS_BITS, 0, 0, 0),
    ]
