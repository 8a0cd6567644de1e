"""Named CPU models (`--cpu`): the x86-64 micro-architecture levels as sets of CPUID features.

The levels are the psABI's: `x86-64` (the baseline every x86-64 CPU has), `x86-64-v2`
(CMPXCHG16B, LAHF in 64-bit mode, POPCNT, SSE3 to SSE4.2), `x86-64-v3` (AVX, AVX2, BMI1/2,
F16C, FMA, LZCNT, MOVBE, XSAVE) and `x86-64-v4` (the AVX-512 foundation). Distributions build
for them (RHEL 9 for v2, RHEL 10 for v3), so a guest told it runs on a level behaves as on
such a machine: glibc and every program that dispatches on CPUID pick the code for it.
`max` is everything the accelerator executes: the host's features under KVM, everything
the interpreter implements under `--accel interp`.

A model is applied to a CPUID table by clearing every feature of the registry below that
the model lacks; features outside the registry (platform ones: the APIC, NX, PAE...) are the
accelerator's business and stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

LEAF_FEATURES = 0x1
LEAF_STRUCTURED = 0x7
LEAF_EXTENDED = 0x8000_0001


@dataclass(frozen=True)
class Feature:
    leaf: int
    register: str  # "ebx", "ecx" or "edx"; subleaf 0
    bit: int

    @property
    def mask(self) -> int:
        return 1 << self.bit


# Instruction-set features by their Linux /proc/cpuinfo names.
FEATURES = {
    "fpu": Feature(LEAF_FEATURES, "edx", 0), "cx8": Feature(LEAF_FEATURES, "edx", 8),
    "cmov": Feature(LEAF_FEATURES, "edx", 15), "mmx": Feature(LEAF_FEATURES, "edx", 23),
    "fxsr": Feature(LEAF_FEATURES, "edx", 24), "sse": Feature(LEAF_FEATURES, "edx", 25),
    "sse2": Feature(LEAF_FEATURES, "edx", 26),
    "pni": Feature(LEAF_FEATURES, "ecx", 0), "pclmulqdq": Feature(LEAF_FEATURES, "ecx", 1),
    "ssse3": Feature(LEAF_FEATURES, "ecx", 9), "fma": Feature(LEAF_FEATURES, "ecx", 12),
    "cx16": Feature(LEAF_FEATURES, "ecx", 13), "sse4_1": Feature(LEAF_FEATURES, "ecx", 19),
    "sse4_2": Feature(LEAF_FEATURES, "ecx", 20), "movbe": Feature(LEAF_FEATURES, "ecx", 22),
    "popcnt": Feature(LEAF_FEATURES, "ecx", 23), "aes": Feature(LEAF_FEATURES, "ecx", 25),
    "xsave": Feature(LEAF_FEATURES, "ecx", 26), "avx": Feature(LEAF_FEATURES, "ecx", 28),
    "f16c": Feature(LEAF_FEATURES, "ecx", 29), "rdrand": Feature(LEAF_FEATURES, "ecx", 30),
    "bmi1": Feature(LEAF_STRUCTURED, "ebx", 3), "avx2": Feature(LEAF_STRUCTURED, "ebx", 5),
    "bmi2": Feature(LEAF_STRUCTURED, "ebx", 8), "avx512f": Feature(LEAF_STRUCTURED, "ebx", 16),
    "avx512dq": Feature(LEAF_STRUCTURED, "ebx", 17), "rdseed": Feature(LEAF_STRUCTURED, "ebx", 18),
    "adx": Feature(LEAF_STRUCTURED, "ebx", 19), "avx512cd": Feature(LEAF_STRUCTURED, "ebx", 28),
    "sha_ni": Feature(LEAF_STRUCTURED, "ebx", 29), "avx512bw": Feature(LEAF_STRUCTURED, "ebx", 30),
    "avx512vl": Feature(LEAF_STRUCTURED, "ebx", 31),
    "lahf_lm": Feature(LEAF_EXTENDED, "ecx", 0), "abm": Feature(LEAF_EXTENDED, "ecx", 5),
    "rdtscp": Feature(LEAF_EXTENDED, "edx", 27),
}  # fmt: skip

BASELINE = frozenset({"fpu", "cx8", "cmov", "mmx", "fxsr", "sse", "sse2"})
V2 = BASELINE | {"cx16", "lahf_lm", "popcnt", "pni", "ssse3", "sse4_1", "sse4_2"}
V3 = V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
V4 = V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
LEVELS = {"x86-64": BASELINE, "x86-64-v2": V2, "x86-64-v3": V3, "x86-64-v4": V4}
MODEL_NAMES = (*LEVELS, "max")


@dataclass(frozen=True)
class CpuModel:
    name: str
    features: frozenset | None  # None: every feature the accelerator has (`max`)

    def restrict(self, entries: list[dict]) -> list[dict]:
        """A copy of CPUID `entries` (kvm_cpuid_entry2 dicts) without the registry's features
        this model lacks."""
        if self.features is None:
            return [dict(entry) for entry in entries]
        clear: dict[tuple[int, str], int] = {}
        for name, feature in FEATURES.items():
            if name not in self.features:
                clear[feature.leaf, feature.register] = clear.get((feature.leaf, feature.register), 0) | feature.mask
        restricted = []
        for entry in entries:
            entry = dict(entry)
            if entry["function"] in (LEAF_FEATURES, LEAF_STRUCTURED, LEAF_EXTENDED) and entry.get("index", 0) == 0:
                for register in ("ebx", "ecx", "edx"):
                    entry[register] &= ~clear.get((entry["function"], register), 0)
            restricted.append(entry)
        return restricted


def features_in(entries: list[dict]) -> set[str]:
    """The registry's features that CPUID `entries` report."""
    found = set()
    for entry in entries:
        if entry.get("index", 0) != 0:
            continue
        for name, feature in FEATURES.items():
            if entry["function"] == feature.leaf and entry[feature.register] & feature.mask:
                found.add(name)
    return found


def cpu_model(name: str, available: set[str], where: str) -> CpuModel:
    """The model called `name` for an accelerator that executes the `available` features;
    a level with features it cannot run is refused (a guest told of them would use them)."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"--cpu must be one of {', '.join(MODEL_NAMES)} (got {name!r})")
    if name == "max":
        return CpuModel(name, None)
    missing = LEVELS[name] - available
    if missing:
        raise ConfigError(f"--cpu {name} needs {', '.join(sorted(missing))}, which {where} does not execute "
                          f"(the highest level it runs: {highest_level(available)})")
    return CpuModel(name, LEVELS[name])


def highest_level(available: set[str]) -> str:
    return max((name for name, needed in LEVELS.items() if needed <= available), key=lambda n: len(LEVELS[n]),
               default="none")
