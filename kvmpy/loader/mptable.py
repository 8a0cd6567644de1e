"""An Intel MultiProcessor Specification 1.4 table, so a Linux guest without ACPI finds every
vCPU, the IOAPIC and how the ISA interrupts are wired.

Layout in guest RAM (at layout.MPTABLE_ADDR, inside the e820-reserved EBDA): the 16-byte
floating pointer ("_MP_"), then the configuration table ("PCMP") with one processor entry per
vCPU, the ISA bus and PCI bus 0, one IOAPIC, an I/O interrupt entry per IOAPIC pin and per
PCI slot in use, and the two local interrupt entries (ExtINT on LINT0, NMI on LINT1) of a PC in virtual-wire mode.
"""

from __future__ import annotations

import struct

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory

MP_SPEC_REVISION = 4  # 1.4
APIC_VERSION = 0x14  # an integrated APIC, as KVM's LAPIC reports
IOAPIC_VERSION = 0x11
CPU_ENABLED = 0x01
CPU_BOOTSTRAP = 0x02
CPU_SIGNATURE = 0x600  # family 6
CPU_FEATURES = 0x201  # FPU, APIC
ISA_BUS_ID = 0
PCI_BUS_ID = 1  # the MP table's name for PCI bus 0
IOAPIC_ENABLED = 0x01

ENTRY_PROCESSOR, ENTRY_BUS, ENTRY_IOAPIC, ENTRY_IO_INTERRUPT, ENTRY_LOCAL_INTERRUPT = range(5)
INT_TYPE_INT, INT_TYPE_NMI, INT_TYPE_SMI, INT_TYPE_EXTINT = range(4)
FLAGS_CONFORMING = 0  # polarity and trigger as the bus defines them (ISA: high, edge)
FLAGS_EDGE_ACTIVE_HIGH = 0b0101  # trigger (bits 2-3) edge, polarity (bits 0-1) high
ALL_LOCAL_APICS = 0xFF

FLOATING_POINTER = struct.Struct("<4sIBBB5s")  # signature, table address, length/16, rev, checksum, features
TABLE_HEADER = struct.Struct("<4sHBB8s12sIHHI4s")
PROCESSOR = struct.Struct("<BBBBII8s")
BUS = struct.Struct("<BB6s")
IOAPIC = struct.Struct("<BBBBI")
INTERRUPT = struct.Struct("<BBHBBBB")


def _checksum_byte(data: bytes) -> int:
    return -sum(data) & 0xFF


def build_mptable(cpus: int, pci_routes=()) -> bytes:
    """The floating pointer followed by the configuration table, checksummed. `pci_routes`
    are (slot, irq) pairs: each slot's INTA# drives that IOAPIC input, edge-triggered and
    active high (as kvmpy signals it)."""
    if not 1 <= cpus < 255:
        raise ConfigError(f"an MP table describes 1 to 254 vCPUs, not {cpus}")
    ioapic_id = cpus  # APIC IDs 0..cpus-1 are the vCPUs'
    entries = b"".join(
        PROCESSOR.pack(ENTRY_PROCESSOR, cpu, APIC_VERSION, CPU_ENABLED | (CPU_BOOTSTRAP if cpu == 0 else 0),
                       CPU_SIGNATURE, CPU_FEATURES, bytes(8))
        for cpu in range(cpus)
    )
    entries += BUS.pack(ENTRY_BUS, ISA_BUS_ID, b"ISA   ")
    entries += BUS.pack(ENTRY_BUS, PCI_BUS_ID, b"PCI   ")
    entries += IOAPIC.pack(ENTRY_IOAPIC, ioapic_id, IOAPIC_VERSION, IOAPIC_ENABLED, layout.IOAPIC_ADDR)
    entries += b"".join(
        INTERRUPT.pack(ENTRY_IO_INTERRUPT, INT_TYPE_INT, FLAGS_CONFORMING, ISA_BUS_ID, irq, ioapic_id, irq)
        for irq in range(layout.IOAPIC_PINS)
    )
    entries += b"".join(
        INTERRUPT.pack(ENTRY_IO_INTERRUPT, INT_TYPE_INT, FLAGS_EDGE_ACTIVE_HIGH, PCI_BUS_ID, slot << 2, ioapic_id, irq)
        for slot, irq in pci_routes
    )
    entries += INTERRUPT.pack(ENTRY_LOCAL_INTERRUPT, INT_TYPE_EXTINT, FLAGS_CONFORMING, ISA_BUS_ID, 0, ALL_LOCAL_APICS, 0)
    entries += INTERRUPT.pack(ENTRY_LOCAL_INTERRUPT, INT_TYPE_NMI, FLAGS_CONFORMING, ISA_BUS_ID, 0, ALL_LOCAL_APICS, 1)
    entry_count = cpus + 3 + layout.IOAPIC_PINS + len(pci_routes) + 2
    table_address = layout.MPTABLE_ADDR + FLOATING_POINTER.size
    length = TABLE_HEADER.size + len(entries)

    def header(checksum: int) -> bytes:
        return TABLE_HEADER.pack(b"PCMP", length, MP_SPEC_REVISION, checksum, b"KVMPY   ", b"KVMPY-VM    ",
                                 0, 0, entry_count, layout.LAPIC_ADDR, bytes(4))

    table = header(_checksum_byte(header(0) + entries)) + entries
    pointer = FLOATING_POINTER.pack(b"_MP_", table_address, 1, MP_SPEC_REVISION, 0, bytes(5))
    pointer = FLOATING_POINTER.pack(b"_MP_", table_address, 1, MP_SPEC_REVISION, _checksum_byte(pointer), bytes(5))
    return pointer + table


def write_mptable(memory: GuestMemory, cpus: int, pci_routes=()) -> None:
    table = build_mptable(cpus, pci_routes)
    if layout.MPTABLE_ADDR + len(table) > layout.LOW_RAM_END:
        raise ConfigError(f"the MP table for {cpus} vCPUs does not fit in the EBDA")
    memory.write(layout.MPTABLE_ADDR, table)
