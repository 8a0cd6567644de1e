"""Linux's own vmlinux through its PVH entry (hvm_start_info: command line, initrd as module 0,
memory map): the test kernel's vmlinux boots to the initramfs with both vCPUs, skipping the
bzImage decompressor."""

import pathlib

import pytest

from kvmpy.linux import run_command

pytestmark = pytest.mark.linux


def test_the_test_kernels_vmlinux_boots_through_pvh_with_its_initrd(test_kernel, test_initrd, linux_accel):
    vmlinux = pathlib.Path(test_kernel).with_name("vmlinux")
    result = run_command(str(vmlinux), "nproc; cat /proc/cmdline", test_initrd, cpus=2, accel=linux_accel, timeout=600)
    assert result.ok, result.console[-3000:]
    count, cmdline = result.output.splitlines()
    assert count == "2"
    assert "console=ttyS0" in cmdline and "panic=-1" in cmdline
