"""PCI: configuration mechanism #1, BAR sizing and moves, capabilities, and virtio-pci's
transport-specific parts (the device models run over it in test_virtio_blk/rng too)."""

import pytest

from kvmpy import layout
from kvmpy.bus import Bus
from kvmpy.irq import RecordingIrqLine
from kvmpy.pci import ConfigSpace, PciRoot
from kvmpy.pci.config import BAR0, COMMAND, COMMAND_INTX_DISABLE, COMMAND_MEMORY, STATUS, STATUS_CAPABILITIES
from kvmpy.pci.host import CLASS_HOST_BRIDGE, ENABLE
from kvmpy.virtio import pci as virtio_pci
from kvmpy.virtio.constants import INTERRUPT_USED_BUFFER
from kvmpy.virtio.rng import RngDevice
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.pci

DATA = 4  # the data register's offset in the 0xCF8 window


def config_address(slot: int, register: int, bus: int = 0, function: int = 0) -> int:
    return ENABLE | bus << 16 | slot << 11 | function << 8 | register


@pytest.fixture
def root():
    ports, mmio = Bus("ports"), Bus("mmio")
    return PciRoot(ports, mmio), ports, mmio


def config_read(ports: Bus, slot: int, register: int, size: int = 4, bus: int = 0, function: int = 0) -> int:
    ports.write(layout.PCI_CONFIG_PORT, 4, config_address(slot, register & ~3, bus, function))
    return ports.read(layout.PCI_CONFIG_PORT + DATA + (register & 3), size)


def config_write(ports: Bus, slot: int, register: int, value: int, size: int = 4) -> None:
    ports.write(layout.PCI_CONFIG_PORT, 4, config_address(slot, register & ~3))
    ports.write(layout.PCI_CONFIG_PORT + DATA + (register & 3), size, value)


def test_the_address_register_reads_back_as_linux_s_type_1_probe_expects(root):
    _, ports, _ = root
    ports.write(layout.PCI_CONFIG_PORT + 3, 1, 0x01)  # Linux pokes this byte first; ignored
    ports.write(layout.PCI_CONFIG_PORT, 4, 0x8000_0000)
    assert ports.read(layout.PCI_CONFIG_PORT, 4) == 0x8000_0000


def test_slot_0_is_a_host_bridge_and_empty_slots_functions_and_buses_read_all_ones(root):
    _, ports, _ = root
    assert config_read(ports, 0, 0x08) >> 8 == CLASS_HOST_BRIDGE
    assert config_read(ports, 5, 0x00) == 0xFFFF_FFFF
    assert config_read(ports, 0, 0x00, function=1) == 0xFFFF_FFFF
    assert config_read(ports, 0, 0x00, bus=1) == 0xFFFF_FFFF
    assert config_read(ports, 0, 0x02, size=2) == 0x0008  # device id, through the data port's upper half


def test_a_virtio_pci_function_is_found_with_its_ids_bar_and_interrupt_routing(root):
    pci, ports, mmio = root
    guest = MockGuest(RngDevice(), transport="pci")
    slot, address = pci.add(guest.transport, virtio_pci.BAR_SIZE, irq=5)
    assert slot == 1 and address == layout.PCI_MMIO_BASE
    assert config_read(ports, slot, 0x00) == (0x1040 + 4) << 16 | 0x1AF4
    assert config_read(ports, slot, 0x08, size=1) == 1  # revision 1: a modern device
    assert config_read(ports, slot, 0x2E, size=2) >= 0x40
    assert config_read(ports, slot, 0x3C, size=1) == 5 and config_read(ports, slot, 0x3D, size=1) == 1  # INTA#
    assert config_read(ports, slot, STATUS, size=2) & STATUS_CAPABILITIES
    assert pci.routes == [(1, 5)]
    assert mmio.find(address).device is guest.transport
    guest.close()


def test_bar_sizing_reads_the_size_mask_and_restoring_keeps_the_mapping(root):
    pci, ports, mmio = root
    guest = MockGuest(RngDevice(), transport="pci")
    slot, address = pci.add(guest.transport, virtio_pci.BAR_SIZE, irq=5)
    for register, expected in ((BAR0, ~(virtio_pci.BAR_SIZE - 1) & 0xFFFF_FFF0 | 0x4), (BAR0 + 4, 0xFFFF_FFFF)):
        original = config_read(ports, slot, register)
        config_write(ports, slot, register, 0xFFFF_FFFF)
        assert config_read(ports, slot, register) == expected
        config_write(ports, slot, register, original)
        assert config_read(ports, slot, register) == original
    assert mmio.find(address).device is guest.transport
    guest.close()


def test_a_bar_the_guest_moves_is_served_at_its_new_address_only(root):
    pci, ports, mmio = root
    guest = MockGuest(RngDevice(), transport="pci")
    slot, address = pci.add(guest.transport, virtio_pci.BAR_SIZE, irq=5)
    new = layout.PCI_MMIO_BASE + 0x10_0000
    config_write(ports, slot, BAR0, new | 0x4)
    assert mmio.find(address) is None and mmio.find(new).device is guest.transport
    common = virtio_pci.REGION_COMMON + virtio_pci.NUM_QUEUES
    assert mmio.read(new + common, 2) == 1
    guest.close()


def test_the_capability_chain_names_every_region_of_bar_0():
    guest = MockGuest(RngDevice(), transport="pci")
    assert guest.driver.regions == {virtio_pci.CFG_COMMON: virtio_pci.REGION_COMMON,
                                    virtio_pci.CFG_NOTIFY: virtio_pci.REGION_NOTIFY,
                                    virtio_pci.CFG_ISR: virtio_pci.REGION_ISR,
                                    virtio_pci.CFG_DEVICE: virtio_pci.REGION_DEVICE}
    assert guest.driver.notify_multiplier == virtio_pci.NOTIFY_MULTIPLIER
    guest.close()


def _used_buffer(guest) -> None:
    (guest.queue,) = guest.driver.init()
    buffer = guest.buffer(16)
    guest.queue.add_chain([(buffer, 16, True)])
    guest.driver.kick(0)


def test_an_interrupt_pulses_inta_and_sets_the_isr_which_a_read_clears():
    irq = RecordingIrqLine()
    guest = MockGuest(RngDevice(), irq=irq, transport="pci")
    _used_buffer(guest)
    assert irq.pulses == 1
    assert guest.driver.ack_interrupt() == INTERRUPT_USED_BUFFER
    assert guest.driver.ack_interrupt() == 0
    guest.close()


def test_intx_disabled_in_the_command_register_sends_no_interrupt():
    irq = RecordingIrqLine()
    guest = MockGuest(RngDevice(), irq=irq, transport="pci")
    guest.transport.config.write(COMMAND, 2, COMMAND_MEMORY | COMMAND_INTX_DISABLE)
    _used_buffer(guest)
    assert irq.pulses == 0 and guest.driver.ack_interrupt() == INTERRUPT_USED_BUFFER
    guest.close()


def test_msix_vectors_read_back_as_none_so_drivers_use_intx():
    guest = MockGuest(RngDevice(), transport="pci")
    common = guest.driver.regions[virtio_pci.CFG_COMMON]
    guest.transport.write(common + virtio_pci.CONFIG_MSIX_VECTOR, 2, 0)
    assert guest.transport.read(common + virtio_pci.CONFIG_MSIX_VECTOR, 2) == virtio_pci.NO_VECTOR
    guest.close()


def test_config_space_capabilities_are_chained_and_aligned():
    config = ConfigSpace(0x1234, 0x5678, 0xFF0000)
    first = config.add_capability(0x09, b"\x05abc")
    second = config.add_capability(0x09, b"\x03z")
    assert config.read(0x34, 1) == first == 0x40
    assert config.read(first + 1, 1) == second and second % 4 == 0
    assert config.read(second + 1, 1) == 0
    with pytest.raises(ValueError):
        config.add_bar(1, 0x800, 0)  # too small to be a page-aligned BAR
