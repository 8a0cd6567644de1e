"""ACPI: the AML encoder against hand-assembled bytes, every table's layout and checksum against
the ACPI 6.5 field offsets, and the PM registers' power-off, reset and halt bookkeeping."""

import struct

import pytest

from kvmpy import layout
from kvmpy.acpi import MmioWindow, Platform, aml, build_tables, dump, pm
from kvmpy.acpi.tables import GAS, HEADER
from kvmpy.pci.root import PciRoute

pytestmark = pytest.mark.acpi


# --- AML ------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, encoded", [
    (0, b"\x01"), (62, b"\x3f"),  # one byte: the length counts itself, up to 63
    (63, b"\x41\x04"), (4093, b"\x4f\xff"),  # two bytes: low nibble, then the next 8 bits
    (4094, b"\x81\x00\x01"), (1 << 20, b"\xc4\x00\x00\x01"),  # then 3 and 4 bytes
])
def test_package_length_counts_its_own_bytes(body, encoded):
    assert aml.package_length(body) == encoded


@pytest.mark.parametrize("value, encoded", [
    (0, b"\x00"), (1, b"\x01"), (2, b"\x0a\x02"), (0xFF, b"\x0a\xff"), (0x100, b"\x0b\x00\x01"),
    (0xC000_0000, b"\x0c\x00\x00\x00\xc0"), (1 << 32, b"\x0e" + (1 << 32).to_bytes(8, "little")),
])
def test_integers_take_the_shortest_constant(value, encoded):
    assert aml.integer(value) == encoded


@pytest.mark.parametrize("path, encoded", [
    ("_S5", b"_S5_"), ("\\_SB", b"\\_SB_"), ("\\_SB.LS01", b"\\\x2e_SB_LS01"),
    ("\\_SB.PCI0.LS01", b"\\\x2f\x03_SB_PCI0LS01"),
])
def test_name_strings(path, encoded):
    assert aml.name_string(path) == encoded


def test_bad_names_are_refused():
    with pytest.raises(ValueError):
        aml.name_segment("pci0")
    with pytest.raises(ValueError):
        aml.name_segment("TOOLONG")


def test_eisa_ids_pack_as_asl_does():
    assert aml.eisa_id("PNP0A03") == b"\x0c\x41\xd0\x0a\x03"  # 0x030AD041
    assert aml.eisa_id("PNP0501") == b"\x0c\x41\xd0\x05\x01"


def test_name_package_and_method_terms():
    assert aml.name("\\_S5", aml.package(*(aml.integer(v) for v in (5, 5, 0, 0)))) == \
        b"\x08\\_S5_\x12\x08\x04\x0a\x05\x0a\x05\x00\x00"
    assert aml.method("_SRS", 1) == b"\x14\x06_SRS\x01"
    assert aml.device("COM1", aml.name("_UID", aml.integer(1))) == b"\x5b\x82\x0b" + b"COM1" + b"\x08_UID\x01"
    assert aml.scope("\\_SB") == b"\x10\x06\\_SB_"


def test_resource_descriptors():
    assert aml.io_port(0x3F8, 8) == bytes.fromhex("47 01 f8 03 f8 03 01 08")
    assert aml.irq_no_flags(4) == bytes.fromhex("22 10 00")
    assert aml.memory32_fixed(0xD000_0000, 0x1000) == bytes.fromhex("86 09 00 01 00 00 00 d0 00 10 00 00")
    assert aml.interrupt(5, aml.INTERRUPT_CONSUMER | aml.INTERRUPT_EDGE) == bytes.fromhex("89 06 00 03 01 05 00 00 00")
    bus = aml.word_address(aml.SPACE_BUS, 0, 0xFF)
    assert bus == bytes.fromhex("88 0d 00 02 0c 00 0000 0000 ff00 0000 0001")
    memory = aml.dword_address(aml.SPACE_MEMORY, 0xC000_0000, 0xCFFF_FFFF, aml.MEMORY_NONCACHEABLE_READ_WRITE)
    assert memory[:6] == bytes.fromhex("87 17 00 00 0c 01")
    assert struct.unpack_from("<IIIII", memory, 6) == (0, 0xC000_0000, 0xCFFF_FFFF, 0, 0x1000_0000)
    template = aml.resource_template(aml.irq_no_flags(4))
    assert template == b"\x11\x08\x0a\x05" + bytes.fromhex("22 10 00") + b"\x79\x00"


# --- tables ---------------------------------------------------------------------------------
PLATFORM = Platform(cpus=2, pci_routes=(PciRoute(2, 5), PciRoute(3, 6)),
                    virtio_mmio=(MmioWindow(layout.VIRTIO_MMIO_BASE, layout.VIRTIO_MMIO_SIZE, 7),))


@pytest.fixture(scope="module")
def tables():
    return {table.signature: table for table in build_tables(PLATFORM)}


def test_every_table_sums_to_zero(tables):
    assert set(tables) == {"RSDP", "FACS", "DSDT", "FACP", "APIC", "XSDT"}
    for signature, table in tables.items():
        if signature == "RSDP":
            assert sum(table.data[:20]) % 256 == 0 and sum(table.data) % 256 == 0
        elif signature != "FACS":  # the FACS has no checksum
            length = struct.unpack_from("<I", table.data, 4)[0]
            assert length == len(table.data), signature
            assert sum(table.data) % 256 == 0, signature


def test_tables_fit_the_bios_area_without_overlapping(tables):
    spans = sorted((t.address, t.address + len(t.data)) for t in tables.values())
    assert spans[0][0] == layout.ACPI_TABLES_ADDR and spans[-1][1] <= layout.ACPI_TABLES_END
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))
    assert tables["FACS"].address % 64 == 0


def test_rsdp_points_at_the_xsdt_which_lists_fadt_and_madt(tables):
    rsdp = tables["RSDP"].data
    signature, _, oem, revision, rsdt, length, xsdt_address = struct.unpack_from("<8sB6sBIIQ", rsdp)
    assert (signature, oem, revision, rsdt, length) == (b"RSD PTR ", b"KVMPY ", 2, 0, 36)
    assert xsdt_address == tables["XSDT"].address
    xsdt = tables["XSDT"].data
    assert struct.unpack_from("<2Q", xsdt, HEADER.size) == (tables["FACP"].address, tables["APIC"].address)


def test_fadt_fields(tables):
    fadt = tables["FACP"].data
    assert HEADER.unpack_from(fadt)[:3] == (b"FACP", 276, 6)
    facs, dsdt = struct.unpack_from("<II", fadt, 36)
    assert (facs, dsdt) == (tables["FACS"].address, tables["DSDT"].address)
    assert struct.unpack_from("<QQ", fadt, 132) == (0, dsdt)  # X_FACS 0: the 32-bit field alone
    assert struct.unpack_from("<H", fadt, 46)[0] == layout.ACPI_SCI_IRQ
    assert struct.unpack_from("<I", fadt, 48)[0] == 0  # no SMI_CMD: ACPI is on from the start
    assert struct.unpack_from("<II", fadt, 56) == (layout.ACPI_PM_PORT, 0)
    assert struct.unpack_from("<I", fadt, 64)[0] == layout.ACPI_PM_PORT + pm.PM1_CONTROL
    assert (fadt[88], fadt[89]) == (4, 2)
    assert GAS.unpack_from(fadt, 116) == (1, 8, 0, 1, layout.ACPI_PM_PORT + pm.RESET)
    assert fadt[128] == pm.RESET_VALUE
    assert struct.unpack_from("<I", fadt, 112)[0] & (1 << 10)  # RESET_REG_SUP
    assert struct.unpack_from("<H", fadt, 109)[0] == 0b1111  # legacy devices, 8042, no VGA, no MSI
    assert GAS.unpack_from(fadt, 148) == (1, 32, 0, 2, layout.ACPI_PM_PORT)
    assert GAS.unpack_from(fadt, 172) == (1, 16, 0, 2, layout.ACPI_PM_PORT + pm.PM1_CONTROL)


def test_facs_layout(tables):
    facs = tables["FACS"].data
    assert len(facs) == 64 and facs[:4] == b"FACS" and struct.unpack_from("<I", facs, 4)[0] == 64
    assert facs[32] == 2  # version


def test_madt_lists_every_vcpu_the_ioapic_the_sci_and_the_nmi(tables):
    madt = tables["APIC"].data
    assert HEADER.unpack_from(madt)[:3] == (b"APIC", len(madt), 5)
    assert struct.unpack_from("<II", madt, 36) == (layout.LAPIC_ADDR, 1)
    entries, offset = [], 44
    while offset < len(madt):
        kind, length = madt[offset], madt[offset + 1]
        entries.append((kind, madt[offset:offset + length]))
        offset += length
    assert offset == len(madt)
    assert [kind for kind, _ in entries] == [0, 0, 1, 2, 4]
    assert [struct.unpack("<BBBBI", body)[2:] for kind, body in entries if kind == 0] == [(0, 0, 1), (1, 1, 1)]
    assert struct.unpack("<BBBBII", entries[2][1])[2:] == (2, 0, layout.IOAPIC_ADDR, 0)
    assert struct.unpack("<BBBBIH", entries[3][1])[2:] == (0, 9, 9, 0b1101)
    assert struct.unpack("<BBBHB", entries[4][1])[2:] == (0xFF, 0, 1)


def test_dsdt_describes_cpus_pci_routes_com1_pvpanic_and_virtio_mmio(tables):
    dsdt = tables["DSDT"].data
    assert HEADER.unpack_from(dsdt)[:3] == (b"DSDT", len(dsdt), 2)
    for term in (
        aml.device("C000", aml.name("_HID", aml.string("ACPI0007")), aml.name("_UID", aml.integer(0))),
        aml.device("C001", aml.name("_HID", aml.string("ACPI0007")), aml.name("_UID", aml.integer(1))),
        aml.name("_HID", aml.eisa_id("PNP0A03")),
        aml.package(aml.integer(2 << 16 | 0xFFFF), aml.integer(0), aml.name_string("\\_SB.LS02"), aml.integer(0)),
        aml.package(aml.integer(3 << 16 | 0xFFFF), aml.integer(0), aml.name_string("\\_SB.LS03"), aml.integer(0)),
        aml.name("_CRS", aml.resource_template(aml.interrupt(6, aml.INTERRUPT_CONSUMER | aml.INTERRUPT_EDGE))),
        aml.resource_template(aml.io_port(0x3F8, 8), aml.irq_no_flags(4)),
        aml.name("_HID", aml.eisa_id("PNP0B00")) + aml.name("_CRS", aml.resource_template(
            aml.io_port(0x70, 2), aml.irq_no_flags(8))),
        aml.name("_HID", aml.eisa_id("PNP0303")) + aml.name("_CRS", aml.resource_template(
            aml.io_port(0x60, 1), aml.io_port(0x64, 1), aml.irq_no_flags(1))),
        aml.name("_HID", aml.string("QEMU0001")) + aml.name("_CRS", aml.resource_template(aml.io_port(0x505, 1))),
        aml.name("_HID", aml.string("LNRO0005")),
        aml.resource_template(aml.memory32_fixed(layout.VIRTIO_MMIO_BASE, 0x1000),
                              aml.interrupt(7, aml.INTERRUPT_CONSUMER | aml.INTERRUPT_EDGE)),
        aml.name("\\_S5", aml.package(*(aml.integer(v) for v in (5, 5, 0, 0)))),
    ):
        assert term in dsdt, term.hex()
    assert dsdt.count(b"\x5b\x82") == 2 + 1 + 2 + 1 + 1 + 1 + 1 + 1  # CPUs, PCI0, links, COM1, RTC, KBD, PEVT, VR00


def test_dump_reads_like_acpidump(tables):
    text = dump([tables["RSDP"]])
    assert text.splitlines()[0] == f"RSDP @ {layout.ACPI_TABLES_ADDR:#018x}"
    first_row = text.splitlines()[1]
    assert first_row.startswith("    0000: 52 53 44 20 50 54 52 20 ") and first_row[59:67] == "RSD PTR "


# --- PM registers ---------------------------------------------------------------------------
class Events:
    def __init__(self):
        self.seen = []
        self.device = pm.AcpiPm(lambda: self.seen.append("poweroff"), lambda: self.seen.append("reset"))


def test_sci_en_is_always_set_and_slp_en_reads_as_zero():
    events = Events()
    assert not events.device.used_by_guest
    assert events.device.read(pm.PM1_CONTROL, 2) & pm.SCI_EN
    assert events.device.used_by_guest
    events.device.write(pm.PM1_CONTROL, 2, 0)
    assert events.device.read(pm.PM1_CONTROL, 2) == pm.SCI_EN


def test_slp_en_with_the_s5_type_powers_off_and_other_types_do_not():
    events = Events()
    events.device.write(pm.PM1_CONTROL, 2, 3 << 10 | pm.SLP_EN)  # S3: not offered
    assert events.seen == []
    events.device.write(pm.PM1_CONTROL, 2, pm.SLEEP_TYPE_S5 << 10)  # the type first, as ACPICA does
    assert events.seen == []
    events.device.write(pm.PM1_CONTROL, 2, pm.SLEEP_TYPE_S5 << 10 | pm.SLP_EN)
    assert events.seen == ["poweroff"]


def test_reset_register_resets_only_with_its_value():
    events = Events()
    events.device.write(pm.RESET, 1, 0x01)
    assert events.seen == []
    events.device.write(pm.RESET, 1, pm.RESET_VALUE)
    assert events.seen == ["reset"]


def test_pm1_enable_is_stored_and_status_clears_on_write():
    events = Events()
    events.device.write(pm.PM1_STATUS, 4, 0x0120_FFFF)  # clear all status, enable bits 5 and 8
    assert events.device.read(pm.PM1_STATUS, 2) == 0
    assert events.device.read(pm.PM1_ENABLE, 2) == 0x0120
