"""The kernel most developers build (`make x86_64_defconfig` + kvm_guest.config, with no
virtio-mmio at all) finds kvmpy's disk and network over virtio-pci."""

import pathlib
import re
import secrets

import pytest

from kvmpy.linux import run_command

pytestmark = [pytest.mark.linux, pytest.mark.pci, pytest.mark.virtio]

TIMEOUT = 900
KERNEL_MESSAGE = re.compile(r"\[ *\d+\.\d+\] .*")


def test_a_defconfig_kernel_finds_disk_and_network_over_virtio_pci(defconfig_kernel, test_initrd, tmp_path,
                                                                   linux_accel):
    config = (pathlib.Path(defconfig_kernel).parent / "config").read_text()
    assert "# CONFIG_VIRTIO_MMIO is not set" in config and "CONFIG_VIRTIO_PCI=y" in config
    image = tmp_path / "raw.img"
    payload = secrets.token_hex(16)
    image.write_bytes(payload.encode().ljust(1 << 20, b"\0"))
    command = "head -c 32 /dev/vda; echo; cat /sys/class/net/eth0/address; cat /sys/bus/virtio/devices/*/device"
    result = run_command(defconfig_kernel, command, test_initrd, disks=((str(image), True),), net="auto",
                         accel=linux_accel, timeout=TIMEOUT, cmdline="console=ttyS0 panic=-1 quiet")
    assert result.ok, result.console[-3000:]
    # A kernel message may still land anywhere, even mid-line: cut each one out.
    lines = [line for line in (KERNEL_MESSAGE.sub("", line).strip() for line in result.output.splitlines()) if line]
    assert lines[0] == payload
    assert lines[1].count(":") == 5  # eth0 has a MAC address
    assert sorted(lines[2:]) == ["0x0001", "0x0002"]  # virtio-net, virtio-blk
    assert {device["transport"] for device in result.stats["virtio"].values()} == {"pci"}
