"""kvmpy's pytest plugin: boot a kernel and run commands in it from a test.

Installed with kvmpy (entry point `pytest11`), so a kernel project only configures it:

    pytest --kvmpy-kernel arch/x86/boot/bzImage            # or, in pytest.ini / pyproject:
    [pytest]                                              # kvmpy_kernel = arch/x86/boot/bzImage
    kvmpy_kernel = arch/x86/boot/bzImage

    def test_uname(kvmpy_linux):
        result = kvmpy_linux.run("uname -r")
        assert result.status == 0 and result.output.startswith("6.")

    def test_on_the_host_files(kvmpy_linux):      # kvmpy exec: the host's / as the root
        result = kvmpy_linux.exec(["python3", "-c", "print(6 * 7)"])
        assert result.status == 0 and result.stdout == b"42\n"

The kernel needs an 8250 console, initrd support and (for `--cpus` > 1) an MP-table SMP
kernel; the initramfs defaults to kvmpy's busybox one (needs Debian's busybox-static). When a
test fails, the console of every guest it booted is attached to the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .linux import DEFAULT_CMDLINE, DEFAULT_MEM_SIZE, CommandResult, run_command

if TYPE_CHECKING:
    from .exec import ExecResult

CONSOLE_TAIL = 40_000  # characters of console kept in a failure report


def pytest_addoption(parser):
    group = parser.getgroup("kvmpy", "boot kernels under kvmpy")
    group.addoption("--kvmpy-kernel", help="kernel image (bzImage) the kvmpy_linux fixture boots")
    group.addoption("--kvmpy-initrd", help="initramfs (default: kvmpy's busybox initramfs)")
    group.addoption("--kvmpy-accel", default=None, help="auto (default), kvm or interp")
    group.addoption("--kvmpy-timeout", type=float, default=None, help="seconds per command (default 600)")
    parser.addini("kvmpy_kernel", "kernel image the kvmpy_linux fixture boots")
    parser.addini("kvmpy_initrd", "initramfs for the kvmpy_linux fixture")
    parser.addini("kvmpy_accel", "accelerator for the kvmpy_linux fixture", default="auto")
    parser.addini("kvmpy_timeout", "seconds per command", default="600")


class LinuxGuest:
    """Runs commands in fresh boots of one kernel; remembers each console for failure reports."""

    def __init__(self, kernel: str, initrd: str | None, accel: str, timeout: float):
        self.kernel, self._initrd, self.accel, self.timeout = kernel, initrd, accel, timeout
        self.consoles: list[tuple[str, str]] = []

    @property
    def initrd(self) -> str:
        """The configured initramfs, or kvmpy's busybox one, built when `run` first needs it."""
        if self._initrd is None:
            from .initramfs import ensure_initramfs

            self._initrd = str(ensure_initramfs())
        return self._initrd

    def run(self, command: str, *, cpus: int = 1, mem_size: int = DEFAULT_MEM_SIZE, timeout: float | None = None,
            cmdline: str = DEFAULT_CMDLINE, disks: tuple = ()) -> CommandResult:
        result = run_command(self.kernel, command, self.initrd, cpus=cpus, mem_size=mem_size,
                             timeout=timeout or self.timeout, accel=self.accel, cmdline=cmdline, disks=disks)
        self.consoles.append((command, result.console))
        return result

    def exec(self, argv: list[str], *, rw: tuple = (), cwd: str | None = None, cpus: int = 1,
             mem_size: int = DEFAULT_MEM_SIZE, timeout: float | None = None, cmdline: str = "") -> ExecResult:
        """`kvmpy exec`: `argv` run in `cwd` (default: the test's) on the host's own / as the
        guest's root; `rw` directories writable through. ExecResult has status, stdout, stderr."""
        from .exec import exec_command

        result = exec_command(self.kernel, argv, rw=rw, cwd=cwd, accel=self.accel, cpus=cpus, mem_size=mem_size,
                              timeout=timeout or self.timeout, cmdline=cmdline)
        self.consoles.append((" ".join(argv), result.console + "\n--- stderr\n" + result.stderr.decode(errors="replace")))
        return result


def _setting(config, option: str, ini: str):
    return config.getoption(option) or config.getini(ini) or None


@pytest.fixture
def kvmpy_linux(request) -> LinuxGuest:
    config = request.config
    kernel = _setting(config, "--kvmpy-kernel", "kvmpy_kernel")
    if not kernel:
        pytest.skip("no kernel configured for kvmpy_linux: pass --kvmpy-kernel or set kvmpy_kernel")
    initrd = _setting(config, "--kvmpy-initrd", "kvmpy_initrd")
    accel = _setting(config, "--kvmpy-accel", "kvmpy_accel") or "auto"
    timeout = float(_setting(config, "--kvmpy-timeout", "kvmpy_timeout") or 600)
    guest = LinuxGuest(str(kernel), initrd, accel, timeout)
    request.node._kvmpy_guest = guest
    return guest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    guest = getattr(item, "_kvmpy_guest", None)
    if report.failed and guest is not None:
        for command, console in guest.consoles:
            report.sections.append((f"kvmpy console ({command!r})", console[-CONSOLE_TAIL:]))
