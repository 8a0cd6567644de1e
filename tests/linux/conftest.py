"""The test kernel and initramfs, built once and cached (boot/linux/README.md), and the
accelerator and virtio path each Linux test runs over."""

from __future__ import annotations

import importlib.util
import pathlib
from typing import NamedTuple

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _kernel_builder():
    spec = importlib.util.spec_from_file_location("kvmpy_build_kernel", REPO / "boot" / "linux" / "build_kernel.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def test_kernel() -> str:
    builder = _kernel_builder()
    try:
        return str(builder.ensure_kernel())
    except builder.MissingPrerequisites as missing:
        pytest.skip(f"cannot build the test kernel here: {missing}")


@pytest.fixture(scope="session")
def defconfig_kernel() -> str:
    """x86_64_defconfig + kvm_guest.config: what most developers build (virtio-pci only)."""
    builder = _kernel_builder()
    try:
        return str(builder.ensure_kernel(flavour="defconfig"))
    except builder.MissingPrerequisites as missing:
        pytest.skip(f"cannot build the defconfig kernel here: {missing}")


@pytest.fixture(scope="session")
def test_initrd() -> str:
    from kvmpy.initramfs import MissingPrerequisites, ensure_initramfs

    try:
        return str(ensure_initramfs())
    except MissingPrerequisites as missing:
        pytest.skip(f"cannot build the test initramfs here: {missing}")


@pytest.fixture(scope="session")
def debian_kernel() -> str:
    """Debian 12's stock kernel (linux-image-amd64, cached with the nested lane's image): a
    kernel users bring, with ACPI and its virtio drivers as modules."""
    import sys

    from kvmpy.nested.image import LaneUnavailable, ensure_lane_image

    try:
        return str(ensure_lane_image(sys.stderr).kernel)
    except LaneUnavailable as missing:
        pytest.skip(f"no Debian kernel here: {missing}")


@pytest.fixture(scope="session")
def distro_image():
    """Debian 12 built by debootstrap (boot/distro/build_image.py, cached): Debian's kernel, its
    own initramfs-tools initrd, and an ext4 root file system with systemd."""
    spec = importlib.util.spec_from_file_location("kvmpy_build_distro", REPO / "boot" / "distro" / "build_image.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    try:
        return builder.ensure_distro_image()
    except builder.MissingPrerequisites as missing:
        pytest.skip(f"cannot build the Debian image here: {missing}")


def _skip_unless_kvm_runs_linux() -> None:
    from kvmpy.probe import kvm_runs_linux_user_space

    runs, why = kvm_runs_linux_user_space()
    if not runs:
        pytest.skip(f"{why}; the hardware-virtualization lane runs these (pytest -m nested)")


class GuestPath(NamedTuple):
    """Which accelerator runs the Linux guest and how its virtio queues are kicked."""

    accel: str
    virtio_path: str

    def assert_drove(self, stats: dict) -> None:
        """Every virtio device of a run (Machine.stats()) was kicked by this path and
        interrupted the guest; on the eventfd path no kick took an exit."""
        assert stats["accel"] == self.accel
        assert stats["virtio"], "no virtio device in the run"
        for name, device in stats["virtio"].items():
            assert device["path"] == self.virtio_path, (name, device)
            kicks = device["eventfd_kicks"] if self.virtio_path == "eventfd" else device["exit_kicks"]
            assert kicks > 0 and device["interrupts"] > 0, (name, device)
            if self.virtio_path == "eventfd":
                assert device["exit_kicks"] == 0, (name, device)

    def cli_options(self) -> list[str]:
        """The same choice as `kvmpy run` options."""
        return ["--accel", self.accel, "--virtio-path", self.virtio_path]


# Every Linux test runs in the interpreter; the `hwvirt` ones under KVM too, where KVM can run
# Linux user space (hardware virtualization: any VT-x/AMD-V host, and the nested lane here).
@pytest.fixture(params=["interp", pytest.param("kvm", marks=pytest.mark.hwvirt)])
def linux_accel(request) -> str:
    if request.param == "kvm":
        _skip_unless_kvm_runs_linux()
    return request.param


# The interpreter has no ioeventfd/irqfd (its "eventfd" path would be the exit path again), so
# it runs each virtio test once; KVM runs it over both paths.
@pytest.fixture(params=[
    pytest.param(GuestPath("interp", "exit"), id="interp"),
    pytest.param(GuestPath("kvm", "eventfd"), id="kvm-eventfd", marks=pytest.mark.hwvirt),
    pytest.param(GuestPath("kvm", "exit"), id="kvm-exit", marks=pytest.mark.hwvirt),
])
def guest_path(request) -> GuestPath:
    if request.param.accel == "kvm":
        _skip_unless_kvm_runs_linux()
    return request.param
