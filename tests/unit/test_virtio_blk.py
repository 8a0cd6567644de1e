"""virtio-blk on a real temporary image file, driven through the mock driver."""

import os
import struct

import pytest

from kvmpy.errors import ConfigError
from kvmpy.virtio import blk
from kvmpy.virtio.blk import BlockDevice
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.virtio

SECTORS = 64


def pattern(sector: int) -> bytes:
    return bytes([sector]) * 512


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(b"".join(pattern(i) for i in range(SECTORS)))
    return path


def make_guest(path, transport="mmio", **kwargs):
    guest = MockGuest(BlockDevice(str(path), **kwargs), transport=transport)
    (guest.queue,) = guest.driver.init()
    return guest


@pytest.fixture(params=["mmio", pytest.param("pci", marks=pytest.mark.pci)])
def guest(image, request):
    """The device over each transport: the model must not know which carries it."""
    g = make_guest(image, request.param, serial="kvmpy-serial-0001")
    yield g
    g.close()


def submit(guest, req_type, sector=0, out=b"", in_len=0, split=1):
    """Submit one request; returns (status, used length, data read)."""
    header = guest.buffer(struct.pack("<IIQ", req_type, 0, sector))
    chain = [(header, 16, False)]
    if out:
        chain.append((guest.buffer(out), len(out), False))
    data = guest.buffer(in_len) if in_len else 0
    piece = in_len // split if in_len else 0
    for i in range(split if in_len else 0):
        length = piece if i < split - 1 else in_len - piece * (split - 1)
        chain.append((data + i * piece, length, True))
    status = guest.buffer(b"\xff")
    chain.append((status, 1, True))
    guest.queue.add_chain(chain)
    guest.driver.kick(0)
    ((_, used_len),) = guest.queue.take_used()
    return guest.memory.read(status, 1)[0], used_len, guest.memory.read(data, in_len) if in_len else b""


def test_config_space(guest):
    drv = guest.driver
    assert drv.read_config(0, 4) | drv.read_config(4, 4) << 32 == SECTORS
    assert drv.read_config(20, 4) == 512  # blk_size
    assert drv.read_config(12, 4) == 254  # seg_max
    features = drv.device_features()
    assert features >> blk.F_FLUSH & 1 and features >> blk.F_SEG_MAX & 1 and not features >> blk.F_RO & 1


def test_read_scattered_into_several_buffers(guest):
    status, used, data = submit(guest, blk.T_IN, sector=3, in_len=3 * 512, split=3)
    assert status == blk.S_OK
    assert used == 3 * 512 + 1
    assert data == pattern(3) + pattern(4) + pattern(5)


def test_write_reaches_the_file(guest, image):
    payload = os.urandom(1024)
    status, used, _ = submit(guest, blk.T_OUT, sector=10, out=payload)
    assert (status, used) == (blk.S_OK, 1)
    contents = image.read_bytes()
    assert contents[10 * 512 : 12 * 512] == payload
    assert contents[9 * 512 : 10 * 512] == pattern(9) and contents[12 * 512 : 13 * 512] == pattern(12)


def test_indirect_write_then_read_back(guest):
    payload = os.urandom(512)
    header = guest.buffer(struct.pack("<IIQ", blk.T_OUT, 0, 7))
    status = guest.buffer(b"\xff")
    table = guest.buffer(16 * 3)
    guest.queue.add_indirect_chain(table, [(header, 16, False), (guest.buffer(payload), 512, False), (status, 1, True)])
    guest.driver.kick(0)
    assert guest.queue.take_used() == [(0, 1)]
    assert guest.memory.read(status, 1) == b"\0"
    assert submit(guest, blk.T_IN, sector=7, in_len=512)[2] == payload


def test_flush(guest):
    assert submit(guest, blk.T_FLUSH)[:2] == (blk.S_OK, 1)


@pytest.mark.hostile
def test_an_image_deleted_under_the_vm_is_reported_once_and_keeps_working(image, caplog):
    guest = make_guest(image)
    try:
        os.unlink(image)
        assert submit(guest, blk.T_OUT, 1, out=pattern(9))[0] == blk.S_OK
        assert submit(guest, blk.T_FLUSH)[0] == blk.S_OK
        assert submit(guest, blk.T_FLUSH)[0] == blk.S_OK
        assert submit(guest, blk.T_IN, 1, in_len=512)[2] == pattern(9)
    finally:
        guest.close()
    deleted = [r.getMessage() for r in caplog.records if "was deleted while the VM runs" in r.getMessage()]
    assert deleted == [f"virtio-blk: the disk image {image} was deleted while the VM runs: "
                       "what the guest writes is lost when the VM ends"]


@pytest.mark.hostile
def test_an_image_truncated_under_the_vm_gives_ioerr_past_its_new_end(guest, image, caplog):
    os.truncate(image, 4 * 512)
    assert submit(guest, blk.T_IN, 2, in_len=512)[2] == pattern(2)
    status, used, _ = submit(guest, blk.T_IN, 8, in_len=1024)
    assert status == blk.S_IOERR
    assert any("unexpected end of disk image" in r.getMessage() for r in caplog.records)
    assert submit(guest, blk.T_IN, 3, in_len=512)[2] == pattern(3)  # the device lives on


def test_get_id(guest):
    status, used, data = submit(guest, blk.T_GET_ID, in_len=20)
    assert (status, used) == (blk.S_OK, 21)
    assert data == b"kvmpy-serial-0001\0\0\0"


@pytest.mark.parametrize(
    "req_type, sector, out, in_len",
    [
        (blk.T_IN, SECTORS, b"", 512),  # starts at the end
        (blk.T_IN, SECTORS - 1, b"", 1024),  # runs past the end
        (blk.T_IN, 2**64 - 1, b"", 512),  # sector arithmetic must not wrap
        (blk.T_OUT, SECTORS, b"x" * 512, 0),
        (blk.T_IN, 0, b"", 100),  # not whole sectors
        (blk.T_OUT, 0, b"x" * 100, 0),
        (blk.T_OUT, 0, b"x" * 512, 512),  # device-writable data in a write
        (blk.T_IN, 0, b"x" * 512, 512),  # device-readable data in a read
    ],
)
def test_bad_ranges_and_directions_get_ioerr(guest, image, req_type, sector, out, in_len):
    before = image.read_bytes()
    status, used, _ = submit(guest, req_type, sector=sector, out=out, in_len=in_len)
    assert (status, used) == (blk.S_IOERR, 1)
    assert image.read_bytes() == before
    assert not guest.transport.needs_reset


def test_unknown_request_type_is_unsupported(guest):
    assert submit(guest, 99)[0] == blk.S_UNSUPP


def test_read_only_refuses_writes(image):
    guest = make_guest(image, read_only=True)
    features = guest.driver.device_features()
    assert features >> blk.F_RO & 1 and not features >> blk.F_DISCARD & 1
    before = image.read_bytes()
    assert submit(guest, blk.T_OUT, sector=0, out=b"x" * 512)[0] == blk.S_IOERR
    assert submit(guest, blk.T_WRITE_ZEROES, out=struct.pack("<QII", 0, 1, 0))[0] == blk.S_UNSUPP
    assert submit(guest, blk.T_IN, sector=1, in_len=512)[2] == pattern(1)
    assert submit(guest, blk.T_FLUSH)[0] == blk.S_OK
    assert image.read_bytes() == before
    guest.close()


@pytest.mark.parametrize("unmap", [0, blk.SEGMENT_F_UNMAP])
def test_write_zeroes(guest, image, unmap):
    segments = struct.pack("<QII", 4, 2, unmap) + struct.pack("<QII", 20, 1, 0)
    assert submit(guest, blk.T_WRITE_ZEROES, out=segments)[0] == blk.S_OK
    contents = image.read_bytes()
    assert contents[4 * 512 : 6 * 512] == bytes(1024) and contents[20 * 512 : 21 * 512] == bytes(512)
    assert contents[6 * 512 : 7 * 512] == pattern(6)
    assert len(contents) == SECTORS * 512


def test_discard(guest, image):
    assert submit(guest, blk.T_DISCARD, out=struct.pack("<QII", 8, 8, 0))[0] == blk.S_OK
    assert os.path.getsize(image) == SECTORS * 512
    assert submit(guest, blk.T_IN, sector=16, in_len=512)[2] == pattern(16)


@pytest.mark.parametrize(
    "req_type, segments, expected",
    [
        (blk.T_DISCARD, struct.pack("<QII", 0, 1, blk.SEGMENT_F_UNMAP), blk.S_UNSUPP),
        (blk.T_WRITE_ZEROES, struct.pack("<QII", 0, 1, 0x80), blk.S_UNSUPP),
        (blk.T_DISCARD, struct.pack("<QII", SECTORS - 1, 2, 0), blk.S_IOERR),
        (blk.T_DISCARD, b"short", blk.S_IOERR),
        (blk.T_DISCARD, struct.pack("<QII", 0, 1, 0) * (blk.MAX_DISCARD_SEGMENTS + 1), blk.S_IOERR),
        (blk.T_WRITE_ZEROES, b"", blk.S_IOERR),
    ],
)
def test_bad_discard_requests(guest, image, req_type, segments, expected):
    before = image.read_bytes()
    assert submit(guest, req_type, out=segments)[0] == expected
    assert image.read_bytes() == before


def test_image_size_not_a_multiple_of_512_hides_the_tail(tmp_path):
    path = tmp_path / "odd.img"
    path.write_bytes(b"a" * 1300)
    guest = make_guest(path)
    assert guest.driver.read_config(0, 4) == 2
    assert submit(guest, blk.T_IN, sector=2, in_len=512)[0] == blk.S_IOERR
    guest.close()


def test_missing_image_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        BlockDevice(str(tmp_path / "nope.img"))


@pytest.mark.parametrize(
    "chain",
    [
        "no_status",  # everything device-readable
        "header_writable",  # header in a device-writable buffer
        "short_header",
    ],
)
def test_malformed_requests_set_needs_reset(guest, chain):
    header = guest.buffer(struct.pack("<IIQ", blk.T_IN, 0, 0))
    if chain == "no_status":
        guest.queue.add_chain([(header, 16, False), (guest.buffer(512), 512, False)])
    elif chain == "header_writable":
        guest.queue.add_chain([(header, 16, True), (guest.buffer(1), 1, True)])
    else:
        guest.queue.add_chain([(header, 8, False), (guest.buffer(1), 1, True)])
    guest.driver.kick(0)
    assert guest.transport.needs_reset
    assert guest.queue.used_idx == 0
    assert guest.memory.refused == []
