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


# Debian's own programs on numbers: Python's decimal, math and statistics, coreutils' long
# double printf, seq, sort -g and numfmt, and mawk -- x87 and SSE code paths of libc, libm and
# the programs themselves (under the interpreter these died with SIGILL before it had an x87).
NUMERIC = ("python3 -c 'import decimal, math, statistics, fractions; decimal.getcontext().prec = 40; "
           "print(decimal.Decimal(2).sqrt(), math.fsum([0.1] * 10), statistics.stdev([1.5, 2.5, 2.5, 2.75, 3.25, 4.75]), "
           "math.lgamma(10.5), fractions.Fraction(3.14159).limit_denominator(1000))'; "
           "/usr/bin/printf '%.18Lg %La\\n' 1.1 3.3; seq 0 0.3 1.5 | tr '\\n' ' '; echo; "
           "printf '1e3\\n-2.5\\n0x10\\n1.5e-3\\ninf\\n' | sort -g | tr '\\n' ' '; echo; "
           "numfmt --to=iec-i --suffix=B 123456789 1048575; "
           "awk 'BEGIN { printf \"%.12f %.12f %.12f %d\\n\", sin(1), exp(1), atan2(1, 2), 2^53 + 1 }'")
NUMERIC_RESULTS = [
    "1.414213562373095048801688724209698078570 1.0 1.0810874155219827 13.940625219403763 355/113",
    "1.1 0xd.333333333333333p-2", "0.0 0.3 0.6 0.9 1.2 1.5 ", "-2.5 1.5e-3 0x10 1e3 inf ", "118MiB", "1.0MiB",
    "0.841470984808 2.718281828459 0.463647609001 2147483647",
]


def test_debian_boots_to_multi_user_runs_a_command_and_powers_off(distro_image, tmp_path, linux_accel):
    rootfs = tmp_path / "rootfs.img"
    subprocess.run(["cp", "--sparse=always", str(distro_image.rootfs), str(rootfs)], check=True)
    result = run_command(str(distro_image.kernel), f"uname -r; python3 -c 'print(6 * 7)'; ip -br link show lo; {NUMERIC}",
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
    release, answer, loopback, *numeric = result.output.splitlines()
    assert release.endswith("-amd64") and answer == "42" and loopback.startswith("lo ")
    assert numeric == NUMERIC_RESULTS
    assert "Reached target System Power Off" in console or "reboot: Power down" in console
    shutil.rmtree(tmp_path, ignore_errors=True)
