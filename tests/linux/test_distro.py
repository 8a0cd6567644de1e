"""A real distribution end to end: Debian 12's stock kernel and its own initramfs-tools initrd
find the root file system on virtio-blk over virtio-pci, systemd reaches multi-user.target,
a command runs, and `systemctl poweroff` ends the VM with status 0 through ACPI."""

import re
import shutil
import subprocess

import pytest

from kvmpy.linux import run_command

pytestmark = [pytest.mark.linux, pytest.mark.distro]

TIMEOUT = 1500
MEMORY = 1 << 30
CMDLINE = "console=ttyS0 root=/dev/vda panic=-1"


def test_debian_boots_to_multi_user_runs_a_command_and_powers_off(distro_image, tmp_path, linux_accel):
    rootfs = tmp_path / "rootfs.img"
    subprocess.run(["cp", "--sparse=always", str(distro_image.rootfs), str(rootfs)], check=True)
    result = run_command(str(distro_image.kernel), "uname -r; python3 -c 'print(6 * 7)'; ip -br link show lo",
                         str(distro_image.initrd), disks=((str(rootfs), False),), mem_size=MEMORY,
                         cmdline=CMDLINE, accel=linux_accel, timeout=TIMEOUT)
    console = result.console
    assert (result.stop.kind, result.stop.exit_code, result.stop.message) == \
        ("poweroff", 0, "guest powered off through ACPI"), console[-4000:]
    ready = re.search(r"KVMPY-MULTI-USER state=(\w+)", console)
    assert ready, console[-4000:]
    failed = re.findall(r"KVMPY-FAILED-UNIT (\S+)", console)
    assert failed == [], failed
    assert ready.group(1) in ("starting", "running")  # "starting" while the command's own unit runs
    assert "invalid opcode" not in console and "ALERT!" not in console
    assert result.status == 0, result.output
    release, answer, loopback = result.output.splitlines()[:3]
    assert release.endswith("-amd64") and answer == "42" and loopback.startswith("lo ")
    assert "Reached target System Power Off" in console or "reboot: Power down" in console
    shutil.rmtree(tmp_path, ignore_errors=True)
