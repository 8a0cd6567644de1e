"""ACPI's fixed-layout tables, byte for byte: RSDP, XSDT, FADT, FACS and MADT (ACPI 6.5, ch. 5.2).

Every builder returns the finished table, checksum included; addresses of the tables it
points to are its arguments, so `kvmpy.acpi.build` can place them in any order.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

OEM_ID = b"KVMPY "
OEM_TABLE_ID = b"KVMPYVM "
OEM_REVISION = 1
CREATOR_ID = b"KVPY"
CREATOR_REVISION = 1

HEADER = struct.Struct("<4sIBB6s8sI4sI")  # signature, length, revision, checksum, OEM ids, creator
CHECKSUM_OFFSET = 9
RSDP_SIZE = 36
RSDP_V1_SIZE = 20
RSDP_REVISION = 2  # ACPI 2.0+: the XSDT address and the extended checksum are valid
XSDT_REVISION = 1
FADT_REVISION, FADT_MINOR_REVISION, FADT_SIZE = 6, 5, 276
MADT_REVISION = 5
FACS_SIZE = 64
FACS_VERSION = 2
FACS_ALIGNMENT = 64

# Generic Address Structure (5.2.3.2)
GAS = struct.Struct("<BBBBQ")  # address space, bit width, bit offset, access size, address
SPACE_SYSTEM_IO = 1
ACCESS_BYTE, ACCESS_WORD, ACCESS_DWORD = 1, 2, 3

# FADT (5.2.9): field offsets
FADT_FACS, FADT_DSDT, FADT_PROFILE, FADT_SCI_INT = 36, 40, 45, 46
FADT_PM1A_EVT_BLK, FADT_PM1A_CNT_BLK = 56, 64
FADT_PM1_EVT_LEN, FADT_PM1_CNT_LEN = 88, 89
FADT_IAPC_BOOT_ARCH, FADT_FLAGS = 109, 112
FADT_RESET_REG, FADT_RESET_VALUE, FADT_MINOR_VERSION = 116, 128, 131
FADT_X_FACS, FADT_X_DSDT, FADT_X_PM1A_EVT_BLK, FADT_X_PM1A_CNT_BLK = 132, 140, 148, 172
PROFILE_UNSPECIFIED = 0
BOOT_ARCH_LEGACY_DEVICES = 1 << 0  # ISA devices the OS finds through the DSDT (COM1, ...)
BOOT_ARCH_8042 = 1 << 1
BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2
BOOT_ARCH_MSI_NOT_SUPPORTED = 1 << 3  # kvmpy's PCI functions have INTx only
FLAG_WBINVD = 1 << 0
FLAG_PROC_C1 = 1 << 2
FLAG_PWR_BUTTON = 1 << 4  # set: no fixed-feature power button
FLAG_SLP_BUTTON = 1 << 5  # set: no fixed-feature sleep button
FLAG_RESET_REG_SUP = 1 << 10

# MADT (5.2.12): interrupt controller structures
MADT_PCAT_COMPAT = 1  # the dual 8259 PICs are present too
MADT_LOCAL_APIC = struct.Struct("<BBBBI")  # type 0: type, length, processor UID, APIC id, flags
MADT_IO_APIC = struct.Struct("<BBBBII")  # type 1: type, length, id, reserved, address, GSI base
MADT_OVERRIDE = struct.Struct("<BBBBIH")  # type 2: type, length, bus, source IRQ, GSI, flags
MADT_LOCAL_APIC_NMI = struct.Struct("<BBBHB")  # type 4: type, length, processor UID, flags, LINT#
LOCAL_APIC_ENABLED = 1
ISA_BUS = 0
ALL_PROCESSORS = 0xFF
INTI_ACTIVE_HIGH, INTI_LEVEL = 0b01, 0b11 << 2  # MPS INTI flags: polarity bits 0-1, trigger 2-3
INTI_CONFORMING = 0


class PmRegisters(NamedTuple):
    """Where the FADT says the fixed-hardware registers are (all in I/O space)."""

    event_block: int  # PM1a_EVT_BLK: status word, then enable word
    event_length: int
    control_block: int  # PM1a_CNT_BLK
    control_length: int
    reset_port: int
    reset_value: int
    sci_irq: int


def checksum(data: bytes) -> int:
    """The byte that makes `data` sum to zero modulo 256."""
    return -sum(data) & 0xFF


def _with_checksum(table: bytearray, offset: int = CHECKSUM_OFFSET) -> bytes:
    table[offset] = 0
    table[offset] = checksum(table)
    return bytes(table)


def header(signature: bytes, length: int, revision: int) -> bytes:
    """The 36-byte System Description Table header, checksum left 0 for the builder to fill."""
    return HEADER.pack(signature, length, revision, 0, OEM_ID, OEM_TABLE_ID, OEM_REVISION, CREATOR_ID, CREATOR_REVISION)


def system_table(signature: bytes, revision: int, body: bytes) -> bytes:
    """A header and `body`, checksummed: what the DSDT, the XSDT and the MADT are."""
    return _with_checksum(bytearray(header(signature, HEADER.size + len(body), revision) + body))


def rsdp(xsdt_address: int) -> bytes:
    """The Root System Description Pointer (5.2.5.3), pointing at the XSDT only."""
    table = bytearray(struct.pack("<8sB6sBIIQB3s", b"RSD PTR ", 0, OEM_ID, RSDP_REVISION, 0, RSDP_SIZE,
                                  xsdt_address, 0, bytes(3)))
    table[8] = checksum(table[:RSDP_V1_SIZE])
    table[32] = checksum(table)
    return bytes(table)


def xsdt(table_addresses: list[int]) -> bytes:
    return system_table(b"XSDT", XSDT_REVISION, b"".join(struct.pack("<Q", address) for address in table_addresses))


def facs() -> bytes:
    """The Firmware ACPI Control Structure (5.2.10): no waking vector, no global lock. It has no checksum."""
    return struct.pack("<4sIIIIIQB3sI24s", b"FACS", FACS_SIZE, 0, 0, 0, 0, 0, FACS_VERSION, bytes(3), 0, bytes(24))


def _io_gas(port: int, length: int, access: int) -> bytes:
    return GAS.pack(SPACE_SYSTEM_IO, 8 * length, 0, access, port)


def fadt(facs_address: int, dsdt_address: int, pm: PmRegisters) -> bytes:
    """A hardware-full FADT whose PM1a registers and reset register are kvmpy's (kvmpy.acpi.pm):
    SMI_CMD is 0, so the OS finds ACPI already enabled."""
    table = bytearray(FADT_SIZE)
    table[:HEADER.size] = header(b"FACP", FADT_SIZE, FADT_REVISION)
    struct.pack_into("<II", table, FADT_FACS, facs_address, dsdt_address)
    table[FADT_PROFILE] = PROFILE_UNSPECIFIED
    struct.pack_into("<H", table, FADT_SCI_INT, pm.sci_irq)
    struct.pack_into("<I", table, FADT_PM1A_EVT_BLK, pm.event_block)
    struct.pack_into("<I", table, FADT_PM1A_CNT_BLK, pm.control_block)
    table[FADT_PM1_EVT_LEN] = pm.event_length
    table[FADT_PM1_CNT_LEN] = pm.control_length
    struct.pack_into("<H", table, FADT_IAPC_BOOT_ARCH,
                     BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_MSI_NOT_SUPPORTED)
    struct.pack_into("<I", table, FADT_FLAGS,
                     FLAG_WBINVD | FLAG_PROC_C1 | FLAG_PWR_BUTTON | FLAG_SLP_BUTTON | FLAG_RESET_REG_SUP)
    table[FADT_RESET_REG:FADT_RESET_REG + GAS.size] = _io_gas(pm.reset_port, 1, ACCESS_BYTE)
    table[FADT_RESET_VALUE] = pm.reset_value
    table[FADT_MINOR_VERSION] = FADT_MINOR_REVISION
    # The FACS through its 32-bit field only: with both, Linux installs (and lists) it twice.
    struct.pack_into("<QQ", table, FADT_X_FACS, 0, dsdt_address)
    # PM1 registers are accessed a word at a time: the event block is two 16-bit registers.
    table[FADT_X_PM1A_EVT_BLK:FADT_X_PM1A_EVT_BLK + GAS.size] = _io_gas(pm.event_block, pm.event_length, ACCESS_WORD)
    table[FADT_X_PM1A_CNT_BLK:FADT_X_PM1A_CNT_BLK + GAS.size] = _io_gas(pm.control_block, pm.control_length, ACCESS_WORD)
    return _with_checksum(table)


def madt(cpus: int, ioapic_id: int, ioapic_address: int, lapic_address: int, sci_irq: int) -> bytes:
    """One enabled local APIC per vCPU (UID = APIC id = index), the IOAPIC at GSI 0, the SCI
    as a level-triggered active-high ISA override, and every LAPIC's LINT1 as NMI."""
    body = struct.pack("<II", lapic_address, MADT_PCAT_COMPAT)
    body += b"".join(MADT_LOCAL_APIC.pack(0, MADT_LOCAL_APIC.size, cpu, cpu, LOCAL_APIC_ENABLED) for cpu in range(cpus))
    body += MADT_IO_APIC.pack(1, MADT_IO_APIC.size, ioapic_id, 0, ioapic_address, 0)
    body += MADT_OVERRIDE.pack(2, MADT_OVERRIDE.size, ISA_BUS, sci_irq, sci_irq, INTI_LEVEL | INTI_ACTIVE_HIGH)
    body += MADT_LOCAL_APIC_NMI.pack(4, MADT_LOCAL_APIC_NMI.size, ALL_PROCESSORS, INTI_CONFORMING, 1)
    return system_table(b"APIC", MADT_REVISION, body)
