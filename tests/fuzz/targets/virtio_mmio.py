"""The virtio-mmio transport's register file (virtio 1.x section 4.2.2) as a driver sees it:
identification, feature negotiation in halves, queue selection and addresses, status
writes and resets, notifications and interrupt acks, and the device's config space, with
the guest's RAM (its rings) changing between accesses.  Each device model sits behind it
in turn."""

from ._virtio import play_transport_ops, write_ram

WINDOW = 0x200  # registers at 0x000-0x0ff, device config from 0x100
RAM_WRITE = 0xFF  # the `where` byte that means "write guest RAM" instead


def access(guest, reader, op: int, where: int) -> None:
    if where == RAM_WRITE:
        write_ram(guest, reader)
        return
    offset = (where << 2 | op >> 6) % WINDOW  # aligned registers, sometimes misaligned
    size = (4, 1, 2, 8)[op >> 1 & 3]
    if op & 1:
        guest.transport.write(offset, size, (reader.u16() | (op >> 3 & 7) << 16) & ((1 << 8 * size) - 1))
    else:
        assert 0 <= guest.transport.read(offset, size) < 1 << 8 * size


def one_input(data: bytes) -> None:
    play_transport_ops("mmio", data, access)
