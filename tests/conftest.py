"""Shared fixtures: freshly built tiny guests, the accelerator a tiny-guest test runs under, gdb,
and the /dev/kvm gate for tests that need it."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]  # tests/linux/test_plugin.py runs the kvmpy plugin in a separate tree


def pytest_collection_modifyitems(config, items):
    """Everything under tests/kvm needs a usable /dev/kvm: mark it, and skip it where there is none.
    (tests/linux and tests/interp choose their accelerator themselves: they run without KVM.)"""
    from kvmpy.kvm import kvm_usable

    usable, reason = kvm_usable()
    skip = pytest.mark.skip(reason=f"/dev/kvm is not usable here: {reason}")
    for item in items:
        if "tests/kvm/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.kvm)
            if not usable:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def guest_dir(tmp_path_factory) -> pathlib.Path:
    """The tiny guests of boot/guests, assembled for this test session."""
    out = tmp_path_factory.mktemp("guests")
    subprocess.run([sys.executable, str(REPO / "boot" / "guests" / "build.py"), "--out", str(out)],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def guest(guest_dir):
    """guest("hello") -> path of that tiny guest's ELF image."""

    def path(name: str) -> str:
        image = guest_dir / f"{name}.elf"
        assert image.exists(), f"no tiny guest named {name}"
        return str(image)

    return path


@pytest.fixture(params=[pytest.param("kvm", marks=pytest.mark.kvm), "interp"])
def accel(request):
    """The accelerator of a tiny-guest test: KVM (skipped with the reason where /dev/kvm is
    unusable) and the interpreter."""
    if request.param == "kvm":
        from kvmpy.kvm import kvm_usable

        usable, why = kvm_usable()
        if not usable:
            pytest.skip(f"/dev/kvm is not usable here: {why}")
    return request.param


@pytest.fixture(scope="session")
def gdb_binary() -> str:
    from kvmpy.gdb.testing import gdb_path

    path = gdb_path()
    if path is None:
        pytest.skip("no gdb here (apt-get install gdb)")
    return path
