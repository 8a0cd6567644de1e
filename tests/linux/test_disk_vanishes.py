"""A disk image deleted or truncated while `kvmpy run` boots Linux on it: the VM runs on, says
so in one line on stderr, and the guest gets what the README promises (a deleted image keeps
working; a truncated one gives I/O errors past its new end).  The host changes the file while
the guest waits on its console for a line, so the change lands between two guest requests."""

import os
import subprocess
import sys

import pytest

from kvmpy.linux import command_cmdline

pytestmark = [pytest.mark.linux, pytest.mark.hostile]

READY = "KVMPY-DISK-READY"
IMAGE_SIZE = 1 << 20
TIMEOUT = 600

# The guest writes and reads back the image's first 64 KiB, then reads its last 4 KiB.
COMMAND = (
    f"echo {READY}; read go; "
    "dd if=/dev/urandom of=/tmp/w bs=4096 count=16 2>/dev/null; "
    "dd if=/tmp/w of=/dev/vda bs=4096 count=16 conv=fsync 2>/dev/null; echo write=$?; "
    "echo 3 > /proc/sys/vm/drop_caches; "
    "dd if=/dev/vda of=/tmp/r bs=4096 count=16 iflag=direct 2>/dev/null; cmp /tmp/w /tmp/r; echo same=$?; "
    f"dd if=/dev/vda of=/dev/null bs=4096 skip={IMAGE_SIZE // 4096 - 1} count=1 iflag=direct 2>/dev/null; "
    "echo tail=$?"
)


def change(image, how: str) -> None:
    if how == "deleted":
        os.unlink(image)
    else:
        os.truncate(image, IMAGE_SIZE // 2)


@pytest.mark.parametrize("how, warning, tail_status", [
    ("deleted", "was deleted while the VM runs", "0"),
    ("truncated", "unexpected end of disk image", "1"),
], ids=["deleted", "truncated"])
def test_a_disk_image_changed_under_the_running_vm(test_kernel, test_initrd, tmp_path, how, warning, tail_status):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(IMAGE_SIZE))
    process = subprocess.Popen(
        [sys.executable, "-m", "kvmpy", "run", test_kernel, "--initrd", test_initrd, "--accel", "interp",
         "--disk", str(image), "--timeout", str(TIMEOUT), "--cmdline", command_cmdline(COMMAND)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:  # the guest has /dev/vda and waits for our line
            if READY in line and "echo" not in line:
                break
        change(image, how)
        process.stdin.write("go\n")
        process.stdin.flush()
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    results = dict(line.strip().split("=", 1) for line in stdout.splitlines()
                   if line.strip().split("=")[0] in ("write", "same", "tail"))
    assert results == {"write": "0", "same": "0", "tail": tail_status}, stdout[-2000:]
    assert [line for line in stderr.splitlines() if warning in line] != [], stderr
    if how == "deleted":
        assert sum(warning in line for line in stderr.splitlines()) == 1, stderr
