"""kvmpy's pytest plugin: boot a kernel and run commands in it from a test.

Installed with kvmpy (entry point `pytest11`), so a kernel project only configures it:

    pytest --kvmpy-kernel arch/x86/boot/bzImage            # or, in pytest.ini / pyproject:
    [pytest]                                              # kvmpy_kernel = arch/x86/boot/bzImage
    kvmpy_kernel = arch/x86/boot/bzImage

    def test_uname(kvmpy_linux):
        result = kvmpy_linux.run("uname -r")
        assert result.status == 0 and result.output.startswith("6.")

The kernel needs an 8250 console, initrd support and (for `--cpus` > 1) an MP-table SMP
kernel; the initramfs defaults to kvmpy's busybox one (needs Debian's busybox-static). When a
test fails, the console of every guest it booted is attached to the report.
"""

from __future__ import annotations

import pytest

from .linux import DEFAULT_CMDLINE, DEFAULT_MEM_SIZE, CommandResult, run_command

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

    def __init__(self, kernel: str, initrd: str, accel: str, timeout: float):
        self.kernel, self.initrd, self.accel, self.timeout = kernel, initrd, accel, timeout
        self.consoles: list[tuple[str, str]] = []

    def run(self, command: str, *, cpus: int = 1, mem_size: int = DEFAULT_MEM_SIZE, timeout: float | None = None,
            cmdline: str = DEFAULT_CMDLINE, disks: tuple = ()) -> CommandResult:
        result = run_command(self.kernel, command, self.initrd, cpus=cpus, mem_size=mem_size,
                             timeout=timeout or self.timeout, accel=self.accel, cmdline=cmdline, disks=disks)
        self.consoles.append((command, result.console))
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
    if not initrd:
        from .initramfs import ensure_initramfs

        initrd = str(ensure_initramfs())
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
