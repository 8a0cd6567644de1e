"""The virtio-pci transport (virtio 1.x section 4.1): its configuration space with the
vendor capabilities, and BAR 0's common configuration, ISR, device configuration and
notification regions, with the guest's RAM (its rings) changing between accesses.  Each
device model sits behind it in turn."""

from kvmpy.virtio import pci

from ._virtio import play_transport_ops, write_ram

REGIONS = (pci.REGION_COMMON, pci.REGION_ISR, pci.REGION_DEVICE, pci.REGION_NOTIFY)
RAM_WRITE, CONFIG_READ, CONFIG_WRITE = 0, 1, 2  # op kinds beside the BAR's read and write


def access(guest, reader, op: int, where: int) -> None:
    transport = guest.transport
    kind, size = op & 7, (4, 1, 2, 8)[op >> 3 & 3]
    value = (reader.u16() | (op >> 5) << 16) & ((1 << 8 * size) - 1)
    config_size = min(size, 4)
    if kind == RAM_WRITE:
        write_ram(guest, reader)
    elif kind == CONFIG_READ:
        assert 0 <= transport.config.read(where, config_size) < 1 << 8 * config_size
    elif kind == CONFIG_WRITE:
        transport.config.write(where, config_size, value & ((1 << 8 * config_size) - 1))
    else:
        offset = REGIONS[where >> 6] + (where & 0x3F)
        if kind & 1:
            transport.write(offset, size, value)
        else:
            assert 0 <= transport.read(offset, size) < 1 << 8 * size


def one_input(data: bytes) -> None:
    play_transport_ops("pci", data, access)
