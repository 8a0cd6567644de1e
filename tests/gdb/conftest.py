"""The real gdb driving `kvmpy run --gdb`: the accelerator each test runs under, gdb itself,
and kvmpy processes whose stubs listen (kvmpy/gdb/testing.py), killed if a test leaves them."""

from __future__ import annotations

import pytest

from kvmpy.gdb.testing import KvmpyUnderGdb, gdb_path
from kvmpy.kvm import kvm_usable


@pytest.fixture(params=[pytest.param("kvm", marks=pytest.mark.kvm), "interp"])
def accel(request):
    if request.param == "kvm":
        usable, why = kvm_usable()
        if not usable:
            pytest.skip(f"/dev/kvm is not usable here: {why}")
    return request.param


@pytest.fixture(scope="session")
def gdb_binary() -> str:
    path = gdb_path()
    if path is None:
        pytest.skip("no gdb here (apt-get install gdb)")
    return path


@pytest.fixture
def kvmpy_under_gdb():
    started = []

    def start(*args: str) -> KvmpyUnderGdb:
        run = KvmpyUnderGdb(list(args))
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()
