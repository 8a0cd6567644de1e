"""Linux under the interpreter alone (`accel="interp"`): the whole platform at work (local
APIC timers, the IOAPIC, INIT/STARTUP and IPIs between two vCPUs, the 8250's interrupts)."""

import threading

import pytest

from kvmpy.linux import DEFAULT_MEM_SIZE, run_command
from kvmpy.machine import Machine

pytestmark = pytest.mark.linux

TIMEOUT = 300


def test_two_vcpus_boot_and_take_interrupts(kernel, initrd):
    result = run_command(kernel, "grep -c ^processor /proc/cpuinfo; cat /proc/interrupts", initrd, cpus=2,
                         accel="interp", timeout=TIMEOUT)
    assert result.status == 0, result.console[-3000:]
    lines = result.output.splitlines()
    assert lines[0].strip() == "2"
    counts = {line.split(":")[0].strip(): line.split()[1:3] for line in lines[2:] if ":" in line}
    assert all(int(count) > 0 for count in counts["LOC"])  # both local APIC timers tick
    assert "IO-APIC" in " ".join(lines) and int(counts["0"][0]) > 0  # the PIT, through the IOAPIC
    assert result.boot_seconds is not None and result.boot_seconds < result.seconds


def test_cpuinfo_shows_the_interpreted_cpu(kernel, initrd):
    result = run_command(kernel, "cat /proc/cpuinfo", initrd, accel="interp", timeout=TIMEOUT)
    assert result.status == 0, result.console[-3000:]
    assert "kvmpy interpreted x86-64 CPU" in result.output
    flags = next(line for line in result.output.splitlines() if line.startswith("flags")).split()
    assert {"sse2", "pni", "ssse3", "sse4_2", "popcnt", "lm", "nx", "apic", "tsc_known_freq", "hypervisor"} <= set(flags)
    assert {"xsave", "avx", "avx2", "fma", "f16c", "bmi2"} <= set(flags) and "x2apic" not in flags
    assert "x86/fpu: Supporting XSAVE feature 0x004: 'AVX registers'" in result.console


def test_poweroff_without_acpi_is_detected_with_every_vcpu_halted(kernel, initrd):
    """`poweroff -f` before init reports a status: the kernel halts every CPU with interrupts
    off, which the machine must recognise as a power-off."""
    result = run_command(kernel, "poweroff -f", initrd, cpus=2, accel="interp", timeout=TIMEOUT)
    assert result.stop.kind == "poweroff", result.console[-3000:]
    assert "reboot: System halted" in result.console


class Console:
    """Collects the serial output and signals when `marker` has appeared."""

    def __init__(self, marker: str):
        self.text, self.marker, self.seen = "", marker, threading.Event()

    def write(self, data: bytes) -> None:
        self.text += data.decode(errors="replace")
        if self.marker in self.text:
            self.seen.set()


def test_typed_input_reaches_the_shell_through_the_uarts_interrupt(kernel, initrd):
    """Without kvmpy.cmd init starts a shell: the guest idles in HLT until the receive
    interrupt of what the host types wakes it."""
    console = Console("KVMPY-SHELL")
    with Machine(mem_size=DEFAULT_MEM_SIZE, serial_output=console.write, accel="interp") as machine:
        machine.load(kernel, "console=ttyS0", initrd)
        result = {}
        runner = threading.Thread(target=lambda: result.update(reason=machine.run(timeout=TIMEOUT)))
        runner.start()
        assert console.seen.wait(TIMEOUT), console.text[-3000:]
        machine.serial.enqueue_input(b"echo $((6 * 7)); exit 5\n")
        runner.join(TIMEOUT)
    assert (result["reason"].kind, result["reason"].exit_code) == ("verdict", 5), console.text[-3000:]
    assert "\n42" in console.text.replace("\r\n", "\n")
