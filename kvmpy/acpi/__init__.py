"""ACPI for the kernels users bring: the tables that describe kvmpy's machine, and the
power-management registers through which such a kernel powers the machine off or resets it.

The tables sit in the BIOS area (layout.ACPI_TABLES_ADDR), RSDP first, where an OS without
firmware hands-off scans for it: RSDP -> XSDT -> FADT (-> FACS, DSDT) and MADT. The MP table
stays beside them for kernels built without ACPI.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory
from . import pm
from .dsdt import dsdt
from .tables import FACS_ALIGNMENT, FACS_SIZE, RSDP_SIZE, PmRegisters, facs, fadt, madt, rsdp, xsdt

log = logging.getLogger(__name__)

TABLE_ALIGNMENT = 8
PM_REGISTERS = PmRegisters(
    event_block=layout.ACPI_PM_PORT + pm.PM1_STATUS,
    event_length=pm.EVENT_LENGTH,
    control_block=layout.ACPI_PM_PORT + pm.PM1_CONTROL,
    control_length=pm.CONTROL_LENGTH,
    reset_port=layout.ACPI_PM_PORT + pm.RESET,
    reset_value=pm.RESET_VALUE,
    sci_irq=layout.ACPI_SCI_IRQ,
)


class MmioWindow(NamedTuple):
    base: int
    size: int
    irq: int


class Platform(NamedTuple):
    """What the tables describe beyond layout's fixed devices."""

    cpus: int
    pci_routes: tuple = ()  # kvmpy.pci.PciRoute: slot and the GSI its INTA# drives
    virtio_mmio: tuple = ()  # MmioWindow per virtio-mmio device


class Table(NamedTuple):
    address: int
    data: bytes

    @property
    def signature(self) -> str:
        return self.data[:4].decode() if self.data[:4] != b"RSD " else "RSDP"


def _align(address: int, alignment: int) -> int:
    return (address + alignment - 1) & ~(alignment - 1)


def build_tables(platform: Platform, base: int = layout.ACPI_TABLES_ADDR) -> list[Table]:
    """Every table, placed from `base` up: RSDP, FACS, DSDT, FADT, MADT, XSDT."""
    ioapic_id = platform.cpus  # APIC ids 0..cpus-1 are the vCPUs', as in the MP table
    facs_address = _align(base + RSDP_SIZE, FACS_ALIGNMENT)
    dsdt_table = dsdt(platform)
    dsdt_address = _align(facs_address + FACS_SIZE, TABLE_ALIGNMENT)
    fadt_address = _align(dsdt_address + len(dsdt_table), TABLE_ALIGNMENT)
    fadt_table = fadt(facs_address, dsdt_address, PM_REGISTERS)
    madt_address = _align(fadt_address + len(fadt_table), TABLE_ALIGNMENT)
    madt_table = madt(platform.cpus, ioapic_id, layout.IOAPIC_ADDR, layout.LAPIC_ADDR, layout.ACPI_SCI_IRQ)
    xsdt_address = _align(madt_address + len(madt_table), TABLE_ALIGNMENT)
    return [
        Table(base, rsdp(xsdt_address)),
        Table(facs_address, facs()),
        Table(dsdt_address, dsdt_table),
        Table(fadt_address, fadt_table),
        Table(madt_address, madt_table),
        Table(xsdt_address, xsdt([fadt_address, madt_address])),
    ]


def write_tables(memory: GuestMemory, platform: Platform) -> list[Table]:
    tables = build_tables(platform)
    end = max(table.address + len(table.data) for table in tables)
    if end > layout.ACPI_TABLES_END:
        raise ConfigError(f"the ACPI tables for {platform.cpus} vCPUs do not fit below {layout.ACPI_TABLES_END:#x}")
    for table in tables:
        memory.write(table.address, table.data)
    if log.isEnabledFor(logging.DEBUG):
        log.debug("ACPI tables written:\n%s", dump(tables))
    return tables


def dump(tables: list[Table]) -> str:
    """The tables as `acpidump` prints them: a heading per table, then offset, hex and ASCII."""
    lines = []
    for table in tables:
        lines.append(f"{table.signature} @ {table.address:#018x}")
        for offset in range(0, len(table.data), 16):
            chunk = table.data[offset:offset + 16]
            text = "".join(chr(byte) if 0x20 <= byte < 0x7F else "." for byte in chunk)
            lines.append(f"    {offset:04X}: {' '.join(f'{byte:02X}' for byte in chunk):<47}  {text}")
        lines.append("")
    return "\n".join(lines)
