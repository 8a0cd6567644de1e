"""ACPI's fixed-hardware power-management registers, as the FADT describes them: the PM1a event
block (status, enable), the PM1a control block (SCI_EN, SLP_TYP, SLP_EN) and a reset register.

Writing SLP_EN with the \\_S5 sleep type powers the machine off; writing the reset value to the
reset register resets it. Those are how an ACPI kernel's `poweroff` and `reboot` reach kvmpy.
Any access also records that the guest drives ACPI, so a later halt loop is a halt, not a
power-off (see Machine.run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

# Register offsets in the block
PM1_STATUS = 0  # 16 bits, write 1 to clear
PM1_ENABLE = 2  # 16 bits
PM1_CONTROL = 4  # 16 bits
RESET = 8  # 8 bits
BLOCK_LENGTH = 16
EVENT_LENGTH = 4  # status + enable, as the FADT's PM1_EVT_LEN counts them
CONTROL_LENGTH = 2

SCI_EN = 1 << 0  # always set: the machine is in ACPI mode from the start (the FADT's SMI_CMD is 0)
SLP_TYP_SHIFT, SLP_TYP_MASK = 10, 0b111
SLP_EN = 1 << 13
SLEEP_TYPE_S5 = 5  # the value the DSDT's \_S5 package gives for SLP_TYP
RESET_VALUE = 0x06


class AcpiPm:
    """The register block; `on_power_off()` and `on_reset()` are the VM's stop requests."""

    def __init__(self, on_power_off: Callable[[], None], on_reset: Callable[[], None]):
        self._on_power_off = on_power_off
        self._on_reset = on_reset
        self._registers = bytearray(BLOCK_LENGTH)
        self._registers[PM1_CONTROL] = SCI_EN
        self.used_by_guest = False

    def read(self, offset: int, size: int) -> int:
        self.used_by_guest = True
        return int.from_bytes(self._registers[offset:offset + size].ljust(size, b"\0"), "little")

    def write(self, offset: int, size: int, value: int) -> None:
        self.used_by_guest = True
        for index, byte in enumerate((value & ((1 << 8 * size) - 1)).to_bytes(size, "little")):
            self._write_byte(offset + index, byte)

    def _write_byte(self, offset: int, byte: int) -> None:
        if offset in (PM1_STATUS, PM1_STATUS + 1):
            self._registers[offset] &= ~byte & 0xFF  # no event ever sets a status bit; clearing is all
        elif offset in (PM1_ENABLE, PM1_ENABLE + 1):
            self._registers[offset] = byte
        elif offset == PM1_CONTROL:
            self._registers[offset] = byte | SCI_EN
        elif offset == PM1_CONTROL + 1:
            self._registers[offset] = byte & ~(SLP_EN >> 8) & 0xFF  # SLP_EN reads as 0
            if byte & (SLP_EN >> 8):
                self._sleep((byte << 8 >> SLP_TYP_SHIFT) & SLP_TYP_MASK)
        elif offset == RESET:
            if byte == RESET_VALUE:
                self._on_reset()
            else:
                log.debug("acpi: reset register written with %#x, not %#x: ignored", byte, RESET_VALUE)
        else:
            log.debug("acpi: write %#x to unused PM offset %#x", byte, offset)

    def _sleep(self, sleep_type: int) -> None:
        if sleep_type == SLEEP_TYPE_S5:
            self._on_power_off()
        else:
            log.warning("acpi: the guest asked for sleep type %d, which kvmpy does not offer: ignored", sleep_type)
