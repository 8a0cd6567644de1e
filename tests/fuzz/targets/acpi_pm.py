"""The ACPI fixed-hardware registers (PM1 event/control, the PM timer, the reset register):
a guest's power-off and reset requests through them."""

from kvmpy.acpi.pm import AcpiPm
from kvmpy.layout import ACPI_PM_PORT_LENGTH

from ._support import Input, play_register_ops


def one_input(data: bytes) -> None:
    events = []
    pm = AcpiPm(lambda: events.append("off"), lambda: events.append("reset"))
    play_register_ops(pm, Input(data), ACPI_PM_PORT_LENGTH, (1, 2, 4))
