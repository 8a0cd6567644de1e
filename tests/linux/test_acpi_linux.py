"""An ACPI kernel on kvmpy's tables: Debian's stock kernel (the kind users bring) accepts every
table without a complaint, finds both vCPUs through the MADT and the PCI root through the
DSDT, and its `poweroff`, `reboot` and `halt` end the run as what they are. The test kernel,
built without ACPI, still powers off by halting."""

import re

import pytest

from kvmpy.linux import run_command

pytestmark = [pytest.mark.linux, pytest.mark.acpi]

BOOT_TIMEOUT = 600
# What an ACPI kernel prints once it has parsed the tables and the DSDT's AML.
ACCEPTED = (
    "ACPI: RSDP 0x00000000000E0000 000024 (v02 KVMPY )",
    "ACPI: 1 ACPI AML tables successfully acquired and loaded",
    "ACPI: Interpreter enabled",
    "ACPI: PM: (supports S0 S5)",
    "ACPI: Using ACPI (MADT) for SMP configuration information",
    "ACPI: PCI Root Bridge [PCI0] (domain 0000 [bus 00-ff])",
    "PCI: Using ACPI for IRQ routing",
)
COMPLAINT = re.compile(r"ACPI (BIOS )?(Error|Warning)|ACPI Exception|\bFirmware Bug\b", re.IGNORECASE)


def test_debian_kernel_accepts_the_tables_and_powers_off_through_acpi(debian_kernel, test_initrd, linux_accel):
    result = run_command(debian_kernel, "nproc; ls /sys/firmware/acpi/tables; poweroff -f", test_initrd,
                         cpus=2, accel=linux_accel, timeout=BOOT_TIMEOUT)
    assert (result.stop.kind, result.stop.exit_code, result.stop.message) == \
        ("poweroff", 0, "guest powered off through ACPI"), result.console[-3000:]
    for line in ACCEPTED:
        assert line in result.console, line
    assert not COMPLAINT.search(result.console), COMPLAINT.search(result.console).group(0)
    lines = result.output.split()
    assert lines[0] == "2"  # both vCPUs, from the MADT
    assert {"APIC", "DSDT", "FACP", "FACS"} <= set(lines[1:])


@pytest.mark.parametrize("command, kind, status, message", [
    ("reboot -f", "reset", 0, "guest reset through the ACPI reset register"),
    ("halt -f", "halted", 4, "all vCPUs halted with interrupts off"),
])
def test_an_acpi_kernel_s_reboot_and_halt_are_told_apart_from_poweroff(defconfig_kernel, test_initrd,
                                                                       command, kind, status, message):
    """x86_64_defconfig has ACPI, as Debian's kernel (the test above) does, and boots in the
    interpreter in a quarter of its time."""
    result = run_command(defconfig_kernel, command, test_initrd, accel="interp", timeout=BOOT_TIMEOUT)
    assert (result.stop.kind, result.stop.exit_code, result.stop.message) == (kind, status, message), \
        result.console[-3000:]


def test_a_kernel_without_acpi_still_powers_off_by_halting(test_kernel, test_initrd, linux_accel):
    result = run_command(test_kernel, "halt -f", test_initrd, accel=linux_accel, timeout=BOOT_TIMEOUT)
    assert (result.stop.kind, result.stop.exit_code) == ("poweroff", 0), result.console[-3000:]
    assert "ACPI" not in result.console
