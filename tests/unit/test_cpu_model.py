"""CPU models (--cpu): levels as feature sets, applied to KVM's CPUID and the interpreter's."""

import pytest

from kvmpy.cpu_model import FEATURES, LEVELS, CpuModel, cpu_model, features_in, highest_level
from kvmpy.errors import ConfigError
from kvmpy.interp.platform import IMPLEMENTED, interp_cpuid
from kvmpy.interp.platform.cpuid import HYPERVISOR

TSC_HZ = 2_000_000_000


def entry(function, ebx=0, ecx=0, edx=0, index=0):
    return {"function": function, "index": index, "flags": 0, "eax": 0, "ebx": ebx, "ecx": ecx, "edx": edx}


def everything():
    """A CPUID table with every registry feature set, plus a platform bit and a subleaf 1."""
    entries = {function: entry(function) for function in (1, 7, 0x8000_0001)}
    for feature in FEATURES.values():
        entries[feature.leaf][feature.register] |= feature.mask
    entries[1]["ecx"] |= HYPERVISOR
    return [*entries.values(), entry(7, ebx=0xFFFF_FFFF, index=1)]


def test_levels_nest_and_restrict_clears_only_what_the_level_lacks():
    assert LEVELS["x86-64"] < LEVELS["x86-64-v2"] < LEVELS["x86-64-v3"] < LEVELS["x86-64-v4"]
    table = everything()
    for name, needed in LEVELS.items():
        restricted = CpuModel(name, needed).restrict(table)
        assert features_in(restricted) == set(needed), name
        assert restricted[0]["ecx"] & HYPERVISOR  # platform bits are the accelerator's
        assert restricted[3] == table[3]  # other subleaves are untouched
    assert features_in(CpuModel("max", None).restrict(table)) == set(FEATURES)


def test_a_level_the_accelerator_cannot_run_is_refused_with_what_is_missing():
    available = set(LEVELS["x86-64-v2"])
    assert cpu_model("x86-64-v2", available, "here").features == LEVELS["x86-64-v2"]
    with pytest.raises(ConfigError, match=r"--cpu x86-64-v3 needs .*avx2.*which here does not execute.*x86-64-v2"):
        cpu_model("x86-64-v3", available, "here")
    with pytest.raises(ConfigError, match="--cpu must be one of"):
        cpu_model("pentium", available, "here")
    assert highest_level(set()) == "none"


def leaf_registers(entries, function):
    return next((ebx, ecx, edx) for f, _, _, _, ebx, ecx, edx in entries if f == function)


def test_the_interpreter_advertises_exactly_its_model():
    as_dicts = lambda entries: [dict(zip(("function", "index", "flags", "eax", "ebx", "ecx", "edx"), e))  # noqa: E731
                                for e in entries]
    assert features_in(as_dicts(interp_cpuid(0, 1, TSC_HZ))) == set(IMPLEMENTED)
    baseline = cpu_model("x86-64", set(IMPLEMENTED), "the interpreter")
    entries = interp_cpuid(0, 1, TSC_HZ, baseline)
    assert features_in(as_dicts(entries)) == set(LEVELS["x86-64"])
    assert leaf_registers(entries, 1)[1] & HYPERVISOR
