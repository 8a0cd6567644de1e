"""The accelerator each machine test runs under: KVM (skipped with the reason where /dev/kvm
is unusable) and the interpreter."""

import pytest

from kvmpy.kvm import kvm_usable


@pytest.fixture(params=[pytest.param("kvm", marks=pytest.mark.kvm), "interp"])
def accel(request):
    if request.param == "kvm":
        usable, why = kvm_usable()
        if not usable:
            pytest.skip(f"/dev/kvm is not usable here: {why}")
    return request.param
