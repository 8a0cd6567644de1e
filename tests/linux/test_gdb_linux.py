"""The acceptance case of the gdb stub: the test kernel's vmlinux under `--gdb-wait`, driven
by the real gdb with the kernel's own symbols: a hardware breakpoint at start_kernel, the stop
there, a backtrace, a single step, and the guest running to its end afterwards.

In the interpreter here; the KVM parameter is `hwvirt` (on this PVM host Linux cannot run
under KVM; the nested lane runs it)."""

import pathlib
import re

import pytest

from kvmpy.gdb.testing import KvmpyUnderGdb, run_gdb
from kvmpy.linux import command_cmdline

pytestmark = [pytest.mark.linux, pytest.mark.gdb]

GDB_TIMEOUT = 600
EXIT_TIMEOUT = 300
COMMAND_STATUS = 7


def test_gdb_stops_linux_at_start_kernel_and_lets_it_finish(test_kernel, test_initrd, linux_accel, gdb_binary,
                                                            tmp_path):
    vmlinux = str(pathlib.Path(test_kernel).with_name("vmlinux"))
    socket_path = tmp_path / "gdb.sock"
    kvmpy = KvmpyUnderGdb([vmlinux, "--initrd", test_initrd, "--accel", linux_accel,
                           "--cmdline", command_cmdline(f"exit {COMMAND_STATUS}"),
                           "--gdb", f"unix:{socket_path}", "--gdb-wait", "--timeout", str(GDB_TIMEOUT)])
    try:
        output = run_gdb(gdb_binary, vmlinux, [
            f"target remote {kvmpy.target}",
            "hbreak start_kernel",
            "continue",
            "info registers rip",
            "bt",
            "stepi",
            "info registers rip",
            "delete",
            "continue",
        ], GDB_TIMEOUT)
        status, _, stderr = kvmpy.finish(EXIT_TIMEOUT)
    finally:
        kvmpy.kill()
    start_kernel = int(re.search(r"Hardware assisted breakpoint 1 at (0x[0-9a-f]+)", output).group(1), 16)
    assert re.search(rf"Breakpoint 1, 0x0*{start_kernel:x} in start_kernel \(\)", output), output
    rips = [int(value, 16) for value in re.findall(r"^rip\s+(0x[0-9a-f]+)", output, re.M)]
    assert rips[0] == start_kernel, output
    assert re.search(r"^#0\s+0x0*%x in start_kernel" % start_kernel, output, re.M), output
    assert re.search(r"^#1\s+0x[0-9a-f]+ in \w+", output, re.M), output        # the caller, from the stack
    assert rips[1] != start_kernel and rips[1] - start_kernel < 16, output      # one instruction on
    assert f"exited with code {COMMAND_STATUS:02o}" in output, output
    assert status == COMMAND_STATUS, stderr[-2000:]
