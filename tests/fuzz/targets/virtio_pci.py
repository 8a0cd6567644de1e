"""The virtio-pci transport (virtio 1.x section 4.1): its configuration space with the
vendor capabilities, and BAR 0's common configuration, ISR, device configuration and
notification regions, with the guest's RAM (its rings) changing between accesses.  Each
device model sits behind it in turn."""

from kvmpy.virtio import pci

from ._support import Input
from ._virtio import DEVICE_NAMES, check, fresh_guest, write_ram

REGIONS = (pci.REGION_COMMON, pci.REGION_ISR, pci.REGION_DEVICE, pci.REGION_NOTIFY)
RAM_WRITE, CONFIG_READ, CONFIG_WRITE = 0, 1, 2  # op kinds beside the BAR's read and write


def one_input(data: bytes) -> None:
    reader = Input(data)
    guest = fresh_guest(DEVICE_NAMES[reader.u8() % len(DEVICE_NAMES)], "pci")
    try:
        transport = guest.transport
        while not reader.exhausted:
            op, where = reader.u8(), reader.u8()
            kind, size = op & 7, (4, 1, 2, 8)[op >> 3 & 3]
            value = (reader.u16() | (op >> 5) << 16) & ((1 << 8 * size) - 1)
            if kind == RAM_WRITE:
                write_ram(guest, reader)
            elif kind == CONFIG_READ:
                assert 0 <= transport.config.read(where, min(size, 4)) < 1 << 8 * min(size, 4)
            elif kind == CONFIG_WRITE:
                transport.config.write(where, min(size, 4), value & ((1 << 8 * min(size, 4)) - 1))
            else:
                offset = REGIONS[where >> 6] + (where & 0x3F)
                if kind & 1:
                    transport.write(offset, size, value)
                else:
                    assert 0 <= transport.read(offset, size) < 1 << 8 * size
        check(guest)
    finally:
        guest.close()
