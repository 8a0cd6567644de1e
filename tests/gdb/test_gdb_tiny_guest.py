"""The real gdb (Debian's gdb 13, batch mode) drives `kvmpy run --gdb --gdb-wait` on the
gdb_target tiny guest, under KVM and under the interpreter: breakpoints of both kinds, the
stop address, registers, a single step, memory, a register write the guest's verdict shows,
and the end of the guest as gdb's "exited with code"."""

import re

import pytest

from kvmpy.gdb.testing import run_gdb

pytestmark = pytest.mark.gdb

GDB_TIMEOUT = 120
EXIT_TIMEOUT = 60
START_BYTES = "0x31\t0xdb\t0xb9\t0x03"          # xor ebx, ebx; mov ecx, 3
CHANGED_VERDICT = 7


def symbol_address(output: str, pattern: str) -> int:
    return int(re.search(pattern, output).group(1), 16)


def test_gdb_breaks_steps_reads_and_continues_to_the_end(guest, accel, gdb_binary, kvmpy_under_gdb, tmp_path):
    image = guest("gdb_target")
    kvmpy = kvmpy_under_gdb(image, "--accel", accel, "--gdb", f"unix:{tmp_path / 'gdb.sock'}", "--gdb-wait",
                            "--timeout", "300")
    output = run_gdb(gdb_binary, image, [
        f"target remote {kvmpy.target}",
        "info registers rip",
        "hbreak bump",
        "break after_loop",
        "continue",
        "info registers rip",
        "stepi",
        "info registers rip",
        "x/4xb _start",
        "delete 1",
        "continue",
        "info registers rip rbx",
        f"set var $rbx = {CHANGED_VERDICT}",
        "continue",
    ], GDB_TIMEOUT)
    status, _, stderr = kvmpy.finish(EXIT_TIMEOUT)
    assert "0x0000000000100000 in _start ()" in output, output       # held at the entry until gdb continued
    bump = symbol_address(output, r"Hardware assisted breakpoint 1 at (0x[0-9a-f]+)")
    after_loop = symbol_address(output, r"Breakpoint 2 at (0x[0-9a-f]+)")
    assert f"Breakpoint 1, 0x{bump:016x} in bump ()" in output, output
    rips = [int(value, 16) for value in re.findall(r"^rip\s+(0x[0-9a-f]+)", output, re.M)]
    assert rips[:3] == [0x100000, bump, bump + 3], output              # add ebx, 1 is 3 bytes
    assert START_BYTES in output, output
    assert f"Breakpoint 2, 0x{after_loop:016x} in after_loop ()" in output, output
    assert rips[3] == after_loop
    assert re.search(r"^rbx\s+0x3\s", output, re.M), output            # bump ran 3 times, stepped or not
    assert f"exited with code {CHANGED_VERDICT:02o}" in output, output
    assert status == CHANGED_VERDICT, stderr


def test_watchpoints_in_the_interpreter_over_tcp(guest, gdb_binary, kvmpy_under_gdb):
    """A write watchpoint (the interpreter's watch set; under PVM KVM emulates ring 0 and its
    emulator ignores data breakpoints, so this is an interpreter test here), over TCP."""
    image = guest("gdb_target")
    kvmpy = kvmpy_under_gdb(image, "--accel", "interp", "--gdb", "tcp:127.0.0.1:0", "--gdb-wait")
    output = run_gdb(gdb_binary, image, [
        f"target remote {kvmpy.target}",
        "watch *(long *) &counter",
        "continue",
        "info registers rip",
        "delete",
        "continue",
    ], GDB_TIMEOUT)
    status, _, _ = kvmpy.finish(EXIT_TIMEOUT)
    assert "Hardware watchpoint 1: *(long *) &counter" in output, output
    assert re.search(r"Old value = 0\s+New value = 3", output), output
    store_done = re.search(r"^rip\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+ <store_done>", output, re.M)
    assert store_done, output                                           # stopped right after the store
    assert "exited with code 03" in output and status == 3, output


def test_detach_lets_the_guest_finish(guest, accel, gdb_binary, kvmpy_under_gdb, tmp_path):
    image = guest("gdb_target")
    kvmpy = kvmpy_under_gdb(image, "--accel", accel, "--gdb", f"unix:{tmp_path / 'gdb.sock'}", "--gdb-wait")
    output = run_gdb(gdb_binary, image, [f"target remote {kvmpy.target}", "break after_loop", "detach"], GDB_TIMEOUT)
    status, stdout, _ = kvmpy.finish(EXIT_TIMEOUT)
    assert "[Inferior 1 (Remote target) detached]" in output, output
    assert status == 3 and "gdb target done" in stdout                  # the breakpoint went with gdb


def test_kill_ends_the_vm(guest, gdb_binary, kvmpy_under_gdb, tmp_path):
    image = guest("gdb_target")
    kvmpy = kvmpy_under_gdb(image, "--accel", "interp", "--gdb", f"unix:{tmp_path / 'gdb.sock'}", "--gdb-wait")
    run_gdb(gdb_binary, image, [f"target remote {kvmpy.target}", "kill"], GDB_TIMEOUT)
    status, stdout, _ = kvmpy.finish(EXIT_TIMEOUT)
    assert status == 0 and "gdb target done" not in stdout
