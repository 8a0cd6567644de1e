"""The DSDT's AML: what kvmpy's machine has that an ACPI kernel cannot probe for itself.

Under \\_SB: each vCPU (ACPI0007), the PCI root bridge (PNP0A03) with its bus, I/O and memory
windows and an interrupt routing table whose every slot's INTA# goes to a link device of its
own (PNP0C0F, one fixed GSI, edge-triggered and active high, as kvmpy signals INTx), COM1
(PNP0501), the CMOS RTC (PNP0B00), the i8042 keyboard controller (PNP0303), the ISA pvpanic
port (QEMU0001) and each virtio-mmio window (LNRO0005). At the root: \\_S5, the sleep type
acpi/pm.py reads as power-off.
"""

from __future__ import annotations

from .. import layout
from . import aml
from .pm import SLEEP_TYPE_S5
from .tables import system_table

DSDT_REVISION = 2  # 64-bit AML integers
ALL_FUNCTIONS = 0xFFFF  # a _PRT address names a slot: device << 16 | 0xFFFF
INTA = 0
LINK_STATUS = 0x0B  # present, enabled, functioning (not shown in a UI)
PCI_CONFIG_PORTS_END = layout.PCI_CONFIG_PORT + layout.PCI_CONFIG_PORT_LENGTH
EDGE_HIGH = aml.INTERRUPT_CONSUMER | aml.INTERRUPT_EDGE


def _link_name(slot: int) -> str:
    return f"LS{slot:02X}"


def _cpu(index: int) -> bytes:
    return _device(f"C{index:03X}", aml.string("ACPI0007"), uid=index)


def _pci_root(routes) -> bytes:
    windows = aml.resource_template(
        aml.word_address(aml.SPACE_BUS, 0, 0xFF),
        aml.io_port(layout.PCI_CONFIG_PORT, layout.PCI_CONFIG_PORT_LENGTH),
        aml.word_address(aml.SPACE_IO, 0, layout.PCI_CONFIG_PORT - 1, aml.IO_ENTIRE_RANGE),
        aml.word_address(aml.SPACE_IO, PCI_CONFIG_PORTS_END, 0xFFFF, aml.IO_ENTIRE_RANGE),
        aml.dword_address(aml.SPACE_MEMORY, layout.PCI_MMIO_BASE, layout.PCI_MMIO_BASE + layout.PCI_MMIO_SIZE - 1,
                          aml.MEMORY_NONCACHEABLE_READ_WRITE),
    )
    routing = aml.package(*(
        aml.package(aml.integer(route.slot << 16 | ALL_FUNCTIONS), aml.integer(INTA),
                    aml.name_string(f"\\_SB.{_link_name(route.slot)}"), aml.integer(0))
        for route in routes
    ))
    return aml.device(
        "PCI0",
        aml.name("_HID", aml.eisa_id("PNP0A03")),
        aml.name("_UID", aml.integer(0)),
        aml.name("_CRS", windows),
        aml.name("_PRT", routing),
    )


def _link(route) -> bytes:
    irq = aml.resource_template(aml.interrupt(route.irq, EDGE_HIGH))
    return aml.device(
        _link_name(route.slot),
        aml.name("_HID", aml.eisa_id("PNP0C0F")),
        aml.name("_UID", aml.integer(route.slot)),
        aml.name("_STA", aml.integer(LINK_STATUS)),
        aml.name("_PRS", irq),
        aml.name("_CRS", irq),
        aml.method("_SRS", 1),  # the one possible GSI is always the current one
        aml.method("_DIS", 0),
    )


def _device(name: str, hid: bytes, resources=(), uid: int | None = None) -> bytes:
    """Device(name) with its _HID (an encoded EISA id or string), an optional _UID, and a
    _CRS of `resources` when it has any."""
    terms = [aml.name("_HID", hid)]
    if uid is not None:
        terms.append(aml.name("_UID", aml.integer(uid)))
    if resources:
        terms.append(aml.name("_CRS", aml.resource_template(*resources)))
    return aml.device(name, *terms)


def _legacy_devices() -> list[bytes]:
    """COM1, the CMOS RTC, the i8042 and the ISA pvpanic port, as QEMU describes them."""
    return [
        _device("COM1", aml.eisa_id("PNP0501"),
                (aml.io_port(layout.COM1_PORT, layout.COM_PORT_LENGTH), aml.irq_no_flags(layout.COM1_IRQ)), uid=1),
        _device("RTC", aml.eisa_id("PNP0B00"),
                (aml.io_port(layout.RTC_PORT, layout.RTC_PORT_LENGTH), aml.irq_no_flags(layout.RTC_IRQ))),
        _device("KBD", aml.eisa_id("PNP0303"),
                (aml.io_port(layout.I8042_DATA_PORT, 1), aml.io_port(layout.I8042_COMMAND_PORT, 1),
                 aml.irq_no_flags(layout.I8042_KEYBOARD_IRQ))),
        _device("PEVT", aml.string("QEMU0001"), (aml.io_port(layout.PVPANIC_PORT, 1),)),
    ]


def _virtio_mmio(index: int, window) -> bytes:
    return _device(f"VR{index:02X}", aml.string("LNRO0005"),
                   (aml.memory32_fixed(window.base, window.size), aml.interrupt(window.irq, EDGE_HIGH)), uid=index)


def dsdt(platform) -> bytes:
    """The DSDT for `platform` (a kvmpy.acpi.Platform), checksummed."""
    system_bus = aml.scope(
        "\\_SB",
        *(_cpu(index) for index in range(platform.cpus)),
        _pci_root(platform.pci_routes),
        *(_link(route) for route in platform.pci_routes),
        *_legacy_devices(),
        *(_virtio_mmio(index, window) for index, window in enumerate(platform.virtio_mmio)),
    )
    s5 = aml.name("\\_S5", aml.package(*(aml.integer(value) for value in (SLEEP_TYPE_S5, SLEEP_TYPE_S5, 0, 0))))
    return system_table(b"DSDT", DSDT_REVISION, system_bus + s5)
