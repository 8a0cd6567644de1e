"""The tiny guest images built from boot/guests/ at install time (`kvmpy run` embeds `hello`)."""

import pathlib
from typing import NamedTuple

from ..errors import ConfigError

GUEST_DIR = pathlib.Path(__file__).resolve().parent
DEFAULT_GUEST = "hello"


def guest_path(name: str = DEFAULT_GUEST) -> pathlib.Path:
    path = GUEST_DIR / f"{name}.elf"
    if not path.exists():
        raise ConfigError(
            f"embedded guest '{name}' is not built; reinstall kvmpy (`pip install .`) "
            "or run `python boot/guests/build.py`"
        )
    return path


def available() -> list[str]:
    return sorted(path.stem for path in GUEST_DIR.glob("*.elf"))


class Expected(NamedTuple):
    """What a tiny guest does when run with `cmdline`, whichever accelerator runs it."""

    name: str
    cmdline: str
    kind: str  # the StopReason kind
    exit_code: int
    output: str  # what the serial console starts with


EXPECTED = [
    Expected("hello", "", "verdict", 0, "Hello from a kvmpy guest"),
    Expected("realmode", "", "verdict", 0, "real mode: 16-bit code printed this\n"),
    Expected("protected", "", "verdict", 0, "protected mode: 32-bit code printed this\n"),
    Expected("string_io", "", "verdict", 0, "string I/O: rep outsb reached the UART\n"),
    Expected("mmio", "", "verdict", 0, "mmio: all sizes read back\n"),
    Expected("timer", "", "verdict", 0, "timer: 5 interrupts from the PIT woke HLT\n"),
    Expected("exit_code", "42", "verdict", 42, ""),
    Expected("ring3_loop", "100000", "verdict", 0, ""),
    Expected("ring0_loop", "1000", "verdict", 0, ""),
    Expected("port_loop", "1000", "verdict", 0, ""),
    Expected("fallback_loop", "100", "verdict", 0, ""),
    Expected("pvh_loop", "", "verdict", 0, ""),
    Expected("fallback", "", "verdict", 0, "fallback: int3 popcnt stac clac xsave xrstor all behaved\n"),
    Expected("reset", "", "reset", 0, "resetting through the i8042\n"),
    Expected("triple_fault", "", "shutdown", 1, "about to triple fault\n"),
    Expected("halt", "", "poweroff", 0, "halting with interrupts off\n"),
    Expected("acpi_poweroff", "", "poweroff", 0, "powering off through ACPI\n"),
    Expected("acpi_halt", "", "halted", 4, "halting with interrupts off after using ACPI\n"),
]
