"""kvmpy's hardware path, tested in the nested lane: AMD-V emulated by QEMU's TCG, `kvm_amd` in
Debian's kernel, and kvmpy inside it under --accel kvm (kvmpy/nested).

One lane boot runs tests/nested/inner.py, which runs `kvmpy info`, a 2-vCPU Linux guest's
user-space command, and every test that needs a hardware-virtualization KVM (its selection is
INNER_SELECTION there, read back from pytest -v's line per test); each test here checks one
part of what came back. Skipped, with the
reason, where the lane cannot run (no QEMU, no Debian packages), inside the lane itself, and on
hosts whose own KVM runs Linux user space (VT-x/AMD-V: there the hwvirt tests run directly).
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import time
from typing import NamedTuple

import pytest

from kvmpy.nested import LaneResult, lane_available, run_in_lane
from kvmpy.nested.lane import INSIDE_MARKER_ENV
from kvmpy.probe import kvm_runs_linux_user_space

pytestmark = pytest.mark.nested

REPO = pathlib.Path(__file__).resolve().parents[2]
INNER = REPO / "tests" / "nested" / "inner.py"
LANE_BUDGET = 1800  # seconds for every attempt together (one inner run: see README, Tests)
# The outer VM freezes now and then (FROZEN_AFTER in kvmpy/nested/lane.py: about one 2-vCPU
# Linux boot in 10, told within 30 s by its heartbeat); the lane is then booted again for
# the tests that had not finished, within LANE_BUDGET.
ATTEMPTS = 10
IDLE_TIMEOUT = 300  # a hung command (not a frozen VM): the inner pytest prints every test's start and end


class InnerCase(NamedTuple):
    nodeid: str  # e.g. tests/linux/test_boot.py::test_uname_and_cpuinfo[kvm]
    module: str  # e.g. tests.linux.test_boot
    name: str  # e.g. test_uname_and_cpuinfo[kvm]
    outcome: str  # PASSED, FAILED, ERROR, SKIPPED, or UNFINISHED (started, never ended)


# pytest -v's line per test: "tests/linux/test_boot.py::test_x[kvm] PASSED [ 74%]"
CASE_LINE = re.compile(r"^(tests/\S+\.py)::(\S+(?:\[.*?\])?) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
CASE_START = re.compile(r"^(tests/\S+\.py)::(\S+(?:\[.*?\])?) ?$")


class Lane(NamedTuple):
    result: LaneResult  # of the last attempt
    out: pathlib.Path
    cases: list[InnerCase]  # every inner test's last outcome over the attempts
    attempts: int

    def file(self, name: str) -> str:
        path = self.out / name
        return path.read_text() if path.is_file() else ""

    def explain(self) -> str:
        return (f"lane status {self.result.status} after {self.result.seconds:.0f} s {self.result.message}; "
                f"console in {self.out / 'console.log'}; last lines:\n{self.result.console[-3000:]}")


KERNEL_MESSAGE = re.compile(r"\s*\[ *\d+\.\d+\] .*$")  # the outer kernel's, cut into a test's line
BARE_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")


def read_cases(console: str) -> list[InnerCase]:
    """The inner tests' outcomes from pytest -v's lines; a test whose line never got its
    outcome (the lane died in it) is UNFINISHED. A kernel message may cut a test's line in
    two: its outcome then starts a later line."""
    cases = []
    for line in console.splitlines():
        line = KERNEL_MESSAGE.sub("", line)
        match = CASE_LINE.match(line) or CASE_START.match(line)
        if match:
            module = match.group(1).removesuffix(".py").replace("/", ".")
            outcome = match.group(3) if match.re is CASE_LINE else "UNFINISHED"
            cases.append(InnerCase(f"{match.group(1)}::{match.group(2)}", module, match.group(2), outcome))
        elif cases and cases[-1].outcome == "UNFINISHED" and BARE_OUTCOME.match(line):
            cases[-1] = cases[-1]._replace(outcome=BARE_OUTCOME.match(line).group(1))
    return cases


def test_outcomes_are_read_even_where_a_kernel_message_cut_a_test_s_line():
    console = ("tests/linux/test_boot.py::test_a[kvm] PASSED [ 10%]\n"
               "tests/linux/test_boot.py::test_b[kvm-reboot -f-reset] [  388.2] watchdog: BUG: soft lockup\n\n"
               "PASSED [ 20%]\n"
               "tests/linux/test_boot.py::test_c[kvm] \n")
    assert [(case.name, case.outcome) for case in read_cases(console)] == [
        ("test_a[kvm]", "PASSED"), ("test_b[kvm-reboot -f-reset]", "PASSED"), ("test_c[kvm]", "UNFINISHED")]


def test_a_failed_inner_test_s_report_is_quoted_from_the_console():
    console = ("tests/kvm/test_a.py::test_x FAILED [ 50%]\n"
               "=================================== FAILURES ===================================\n"
               "____________________________________ test_x ____________________________________\n"
               "    def test_x():\n"
               ">       assert 1 == 2\n"
               "E       assert 1 == 2\n"
               "____________________________________ test_y ____________________________________\n"
               "E       unrelated\n")
    assert failure_section(console, "test_x").splitlines()[-1] == "E       assert 1 == 2"
    assert "unrelated" not in failure_section(console, "test_x")
    assert "no report section" in failure_section(console, "test_z")


@pytest.fixture(scope="module")
def lane(tmp_path_factory) -> Lane:
    if os.environ.get(INSIDE_MARKER_ENV):
        pytest.skip("already inside the nested lane")
    if kvm_runs_linux_user_space()[0]:
        pytest.skip("this host's KVM runs Linux user space itself: the hwvirt tests run here directly, "
                    "no lane needed (python boot/nested/run.py still works by hand)")
    available, why = lane_available()
    if not available:
        pytest.skip(f"the nested lane cannot run here: {why}")
    out = tmp_path_factory.mktemp("lane")
    cases: dict[str, InnerCase] = {}
    give_up = time.monotonic() + LANE_BUDGET
    freezes, revived = [], []
    with open(out / "console.log", "w", buffering=1) as log:  # line by line: follow it with tail -f
        for attempt in range(1, ATTEMPTS + 1):
            log.write(f"=== lane attempt {attempt} of at most {ATTEMPTS}\n")
            result = run_in_lane([sys.executable, str(INNER), str(out)], cwd=str(REPO), writable=(str(out),),
                                 timeout=max(60.0, give_up - time.monotonic()), idle_timeout=IDLE_TIMEOUT,
                                 echo=log.write)
            cases.update((case.nodeid, case) for case in read_cases(result.output))
            revived += result.revivals
            log.writelines(f"=== the outer VM froze and was revived {revival}\n" for revival in result.revivals)
            if not result.timed_out or time.monotonic() >= give_up:
                break
            log.write(f"=== attempt {attempt} stopped: {result.message}\n")
            freezes.append(result.message.splitlines()[0])
            finished = [case.nodeid for case in cases.values() if case.outcome != "UNFINISHED"]
            (out / "done.txt").write_text("".join(f"{nodeid}\n" for nodeid in finished))
    print(f"nested lane: {attempt} attempt(s), {len(cases)} inner tests, {len(revived)} freeze(s) revived; "
          f"console in {out / 'console.log'}", *freezes, *revived, sep="\n  ")
    return Lane(result, out, list(cases.values()), attempt)


def test_the_outer_kernel_runs_kvm_amd_with_nested_paging(lane):
    lines = "\n".join(lane.result.outer_kernel_lines)
    assert "SVM: kvm: Nested Paging enabled" in lines, lane.explain()
    assert "kvm: Nested Virtualization enabled" in lines, lane.explain()


def test_kvmpy_info_reports_hardware_virtualization_without_a_traceback(lane):
    info = lane.file("info.txt")
    assert lane.file("info.status").strip() == "0", info or lane.explain()
    assert "Traceback" not in info, info
    assert "KVM flavour: hardware virtualization (AMD-V, kvm_amd); nested" in info, info
    assert "ring-0 guest code: native" in info, info
    assert "syscall from ring 3: reaches ring 0" in info, info


def test_a_linux_guest_runs_user_space_on_two_vcpus_under_kvm(lane):
    guest = lane.file("guest.txt")
    assert guest.startswith("status=0 accel=kvm\n"), guest or lane.explain()
    assert "user space on 2 vCPUs says 42" in guest, guest


# What the lane must have run, by module and parameter, and at least how many of each.
GROUPS = {
    "tiny guests (tests/machine) under --accel kvm": ("tests.machine.", "", 24),
    "tests/kvm: fallback, unhandled exits, syscall probe, CLI": ("tests.kvm.", "", 17),
    "Linux user space under KVM: init, 2 vCPUs, poweroff, reboot": ("tests.linux.test_boot", "[kvm", 3),
    "virtio-blk and virtio-rng through ioeventfd/irqfd": ("tests.linux.test_virtio_guest", "[kvm-eventfd]", 2),
    "virtio-blk and virtio-rng through exits": ("tests.linux.test_virtio_guest", "[kvm-exit]", 2),
    "virtio-net over a TAP, ping and TCP, through ioeventfd/irqfd": ("tests.linux.test_network_guest", "[kvm-eventfd", 1),
    "a kernel panic ends the run with status 3 under KVM (pvpanic)": ("tests.linux.test_panic", "[kvm-", 1),
    "ACPI: Debian's kernel on kvmpy's tables, 2 vCPUs, power-off; halt without ACPI":
        ("tests.linux.test_acpi_linux", "[kvm]", 2),
    "Linux's vmlinux through its PVH entry, 2 vCPUs": ("tests.linux.test_pvh", "[kvm]", 1),
    "a multiboot kernel starts its second vCPU by INIT/SIPI": ("tests.machine.test_multiboot", "[kvm-2cpus]", 1),
    "defconfig kernel: disk and network over virtio-pci": ("tests.linux.test_defconfig", "[kvm]", 1),
    "Debian 12 to multi-user.target on virtio-blk, powered off through ACPI": ("tests.linux.test_distro", "[kvm]", 1),
    "kvmpy exec: the host's root over 9p, the acceptance command under KVM": ("tests.linux.test_exec", "[kvm]", 1),
    "virtio-9p over both virtio paths and both transports": ("tests.linux.test_virtio_9p_guest", "[kvm-", 2),
    "a guest attacking its virtio-blk devices, both paths and transports": ("tests.machine.test_hostile_guest", "[kvm-", 2),
}


@pytest.mark.parametrize("group", list(GROUPS))
def test_inner_tests_passed_in_the_lane(lane, group):
    module, parameter, at_least = GROUPS[group]
    cases = [case for case in lane.cases if case.module.startswith(module) and parameter in case.name]
    assert len(cases) >= at_least, f"{len(cases)} of at least {at_least} ran; " + lane.explain()
    assert_all_passed(cases, lane.result.output)


def test_every_inner_test_passed(lane):
    """The groups above, and anything else the inner selection picked up: nothing failed or
    was skipped (a skip inside the lane means part of the hardware path went untested)."""
    assert lane.cases, lane.explain()
    assert_all_passed(lane.cases, lane.result.output)
    assert lane.result.status == 0, lane.explain()


def failure_section(console: str, name: str, lines: int = 40) -> str:
    """The end of the inner pytest's report on test `name` (its "___ name ___" section), so
    that a failure inside the lane explains itself in the outer report."""
    header = re.compile(r"^_{3,} " + re.escape(name) + r" _{3,}$")
    section: list[str] | None = None
    for line in console.splitlines():
        line = KERNEL_MESSAGE.sub("", line)
        if section is None:
            section = [] if header.match(line) else None
        elif re.match(r"^(_{3,} \S+ _{3,}|={3,} .* ={3,})$", line):
            break
        else:
            section.append(line)
    return "\n".join((section or ["(no report section found in the console)"])[-lines:])


def assert_all_passed(cases: list[InnerCase], console: str) -> None:
    bad = [case for case in cases if case.outcome != "PASSED"]
    assert not bad, "\n".join(f"{case.module}::{case.name} {case.outcome}\n{failure_section(console, case.name)}"
                               for case in bad)
