"""The test kernel and initramfs of boot/linux (built once and cached), for Linux under the
interpreter."""

from __future__ import annotations

import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kernel() -> str:
    spec = importlib.util.spec_from_file_location("kvmpy_build_kernel", REPO / "boot" / "linux" / "build_kernel.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    try:
        return str(builder.ensure_kernel())
    except builder.MissingPrerequisites as missing:
        pytest.skip(f"cannot build the test kernel here: {missing}")


@pytest.fixture(scope="session")
def initrd() -> str:
    from kvmpy.initramfs import MissingPrerequisites, ensure_initramfs

    try:
        return str(ensure_initramfs())
    except MissingPrerequisites as missing:
        pytest.skip(f"cannot build the test initramfs here: {missing}")
