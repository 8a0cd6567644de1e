"""virtio devices seen from a real Linux guest: ext4 on virtio-blk, a read-only disk, data
surviving SIGKILL of the VMM, the entropy device (the network over a real TAP: its own module).
Each runs in the interpreter and, where KVM runs Linux, under KVM over both virtio paths."""

import hashlib
import os
import re
import secrets
import signal
import subprocess
import sys

import pytest

from kvmpy.linux import command_cmdline, run_command

pytestmark = [pytest.mark.linux, pytest.mark.virtio]

TIMEOUT = 600
IMAGE_SIZE = 64 << 20


@pytest.fixture
def ext4_image(tmp_path):
    image = tmp_path / "disk.ext4"
    with open(image, "wb") as file:
        file.truncate(IMAGE_SIZE)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    return image


def command_lines(output: str) -> list[str]:
    """The command's own lines: kernel messages ("[    3.67] random: crng init done", which
    virtio-rng's entropy triggers at its own moment) share the console and may interleave."""
    return [line for line in output.splitlines() if line and not re.match(r"\s*\[ *\d+\.\d+\]", line)]


def host_read_file(image, name: str) -> bytes:
    """A file's bytes as the host sees them in the image (debugfs reads ext4 without mounting)."""
    result = subprocess.run(["debugfs", "-R", f"cat /{name}", str(image)], capture_output=True, check=True)
    return result.stdout


def test_ext4_written_and_read_back_in_the_guest_is_in_the_image(test_kernel, test_initrd, ext4_image, guest_path):
    payload = f"kvmpy virtio-blk {secrets.token_hex(16)}"
    command = (f"mount -t ext4 /dev/vda /mnt && printf '%s' '{payload}' > /mnt/hello.txt && sync && "
               "echo 3 > /proc/sys/vm/drop_caches && echo read-back=$(cat /mnt/hello.txt) && umount /mnt")
    result = run_command(test_kernel, command, test_initrd, disks=((str(ext4_image), False),), timeout=TIMEOUT,
                         accel=guest_path.accel, virtio_path=guest_path.virtio_path)
    assert result.status == 0, result.console[-3000:]
    assert f"read-back={payload}" in result.output
    guest_path.assert_drove(result.stats)
    assert host_read_file(ext4_image, "hello.txt") == payload.encode()
    assert subprocess.run(["e2fsck", "-fn", str(ext4_image)], capture_output=True).returncode == 0


def test_a_read_only_disk_refuses_writes(test_kernel, test_initrd, ext4_image, guest_path):
    before = hashlib.sha256(ext4_image.read_bytes()).hexdigest()
    command = "cat /sys/block/vda/ro; dd if=/dev/zero of=/dev/vda bs=4096 count=1 conv=fsync; echo dd=$?"
    result = run_command(test_kernel, command, test_initrd, disks=((str(ext4_image), True),), timeout=TIMEOUT,
                         accel=guest_path.accel, virtio_path=guest_path.virtio_path)
    assert result.status == 0, result.console[-3000:]
    lines = result.output.split()
    assert lines[0] == "1"  # the guest kernel sees VIRTIO_BLK_F_RO
    dd_status = re.search(r"dd=(\d+)", result.output)
    assert dd_status and dd_status.group(1) != "0", result.output
    assert hashlib.sha256(ext4_image.read_bytes()).hexdigest() == before


def test_synced_data_survives_sigkill_of_the_vmm(test_kernel, test_initrd, ext4_image, guest_path):
    payload = f"synced before the kill {secrets.token_hex(8)}"
    command = (f"mount -t ext4 /dev/vda /mnt && printf '%s' '{payload}' > /mnt/kept.txt && sync "
               "&& echo DATA-IS-SYNCED && sleep 100000")
    vmm = subprocess.Popen(
        [sys.executable, "-m", "kvmpy", "run", test_kernel, "--initrd", test_initrd, "--disk", str(ext4_image),
         *guest_path.cli_options(), "--cmdline", command_cmdline(command), "--timeout", str(TIMEOUT)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []
    for line in vmm.stdout:
        seen.append(line)
        if b"DATA-IS-SYNCED" in line:
            os.kill(vmm.pid, signal.SIGKILL)
            break
    vmm.wait()
    assert vmm.returncode == -signal.SIGKILL, b"".join(seen[-40:]).decode(errors="replace")
    assert host_read_file(ext4_image, "kept.txt") == payload.encode()


def test_hwrng_yields_bytes_from_virtio_rng(test_kernel, test_initrd, guest_path):
    command = ("cat /sys/class/misc/hw_random/rng_current; "
               "dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d ' \\n'; echo")
    result = run_command(test_kernel, command, test_initrd, rng=True, timeout=TIMEOUT, accel=guest_path.accel,
                         virtio_path=guest_path.virtio_path)
    assert result.status == 0, result.console[-3000:]
    guest_path.assert_drove(result.stats)
    current, random_hex = command_lines(result.output)
    assert current.startswith("virtio_rng")
    assert len(random_hex) == 64 and len(set(random_hex)) > 4


@pytest.mark.parametrize("transport", [pytest.param("pci", marks=pytest.mark.pci), "mmio"])
def test_disk_network_and_rng_are_found_over_either_transport(test_kernel, test_initrd, tmp_path, linux_accel,
                                                             transport):
    """virtio-pci (the default: PCI functions behind the host bridge, INTA# routed by the MP
    table) and virtio-mmio (announced on the command line) carry the same devices."""
    image = tmp_path / "raw.img"
    payload = secrets.token_hex(16).encode()
    image.write_bytes(payload.ljust(1 << 20, b"\0"))
    command = ("head -c 32 /dev/vda; echo; head -c 8 /dev/hwrng | wc -c; cat /sys/class/net/eth0/address; "
               "cat /sys/bus/pci/devices/*/vendor /sys/bus/pci/devices/*/device 2>/dev/null | sort | tr '\\n' ' '")
    result = run_command(test_kernel, command, test_initrd, disks=((str(image), True),), rng=True, net="auto",
                         timeout=TIMEOUT, accel=linux_accel, virtio_transport=transport)
    assert result.status == 0, result.console[-3000:]
    lines = command_lines(result.output)
    assert lines[0] == payload.decode() and lines[1].strip() == "8", result.output
    assert lines[2].count(":") == 5, result.output  # eth0's MAC address
    pci_ids = lines[3].split() if len(lines) > 3 else []
    if transport == "pci":  # the host bridge, virtio-net (0x1041), -blk (0x1042) and -rng (0x1044)
        assert {"0x1af4", "0x1041", "0x1042", "0x1044", "0x1b36", "0x0008"} <= set(pci_ids), result.output
    else:
        assert "0x1af4" not in pci_ids, result.output
    assert {device["transport"] for device in result.stats["virtio"].values()} == {transport}
