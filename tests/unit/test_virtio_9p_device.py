"""virtio-9p through the mock driver, over both transports: id, mount tag, requests and
replies spread over descriptors as Linux lays them out, and what a malformed chain gets."""

import errno
import os

import pytest

from kvmpy.errors import ConfigError
from kvmpy.virtio import p9_protocol as proto
from kvmpy.virtio.constants import DEVICE_ID
from kvmpy.virtio.p9 import F_MOUNT_TAG, ID_9P, P9Device, check_tag, default_tag
from kvmpy.virtio.pci import PCI_DEVICE_MODERN_BASE
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.virtio


@pytest.fixture(params=["mmio", pytest.param("pci", marks=pytest.mark.pci)])
def guest(request, tmp_path):
    export = tmp_path / "export"
    export.mkdir()
    (export / "data.bin").write_bytes(bytes(range(256)) * 64)  # 16 KiB
    g = MockGuest(P9Device(str(export), "hostshare"), transport=request.param)
    g.kind = request.param
    g.export = export
    (g.queue,) = g.driver.init()
    yield g
    g.close()


def request(guest, message: bytes, reply_sizes=(4096,), split_at=()):
    """Send `message` (cut into descriptors at `split_at`) with writable buffers of
    `reply_sizes`; return the bytes the device wrote, as far as the used length says."""
    cuts = [0, *split_at, len(message)]
    readable = [(guest.buffer(message[a:b]), b - a, False) for a, b in zip(cuts, cuts[1:])]
    writable = [(guest.buffer(size), size, True) for size in reply_sizes]
    head = guest.queue.add_chain(readable + writable)
    guest.driver.kick(0)
    used = guest.queue.take_used()
    assert used and used[-1][0] == head, used
    length = used[-1][1]
    data = b"".join(guest.memory.read(addr, size) for addr, size, _ in writable)
    return data[:length]


def rpc(guest, name, *fields, tag=1, **kwargs):
    reply = request(guest, proto.pack(name, tag, *fields), **kwargs)
    return proto.unpack(reply)


def test_device_id_feature_and_mount_tag(guest):
    if guest.kind == "mmio":
        assert guest.driver.read_reg(DEVICE_ID) == ID_9P
    else:
        assert guest.transport.config.read(2, 2) == PCI_DEVICE_MODERN_BASE + ID_9P
    assert guest.driver.device_features() & 1 << F_MOUNT_TAG
    assert guest.driver.read_config(0, 2) == len(b"hostshare")
    tag = bytes(guest.driver.read_config(2 + i, 1) for i in range(len(b"hostshare")))
    assert tag == b"hostshare"


def test_version_attach_and_a_read_split_like_linux_zero_copy(guest):
    assert rpc(guest, "Tversion", 512000, b"9P2000.L", tag=proto.NOTAG) == (101, proto.NOTAG, [512000, b"9P2000.L"])
    assert rpc(guest, "Tattach", 0, proto.NOFID, b"", b"", 0)[0] == proto.NUMBERS["Rattach"]
    assert rpc(guest, "Twalk", 0, 1, [b"data.bin"])[0] == proto.NUMBERS["Rwalk"]
    assert rpc(guest, "Tlopen", 1, os.O_RDONLY)[0] == proto.NUMBERS["Rlopen"]
    # header (11 bytes) in one writable descriptor, the data in pages after it
    reply = request(guest, proto.pack("Tread", 2, 1, 100, 9000), reply_sizes=(11, 4096, 4096, 4096))
    mtype, tag, (data,) = proto.unpack(reply)
    assert (mtype, tag) == (proto.NUMBERS["Rread"], 2)
    assert data == (bytes(range(256)) * 64)[100:9100]


def test_a_write_split_like_linux_zero_copy_reaches_the_file(guest):
    rpc(guest, "Tversion", 65536, b"9P2000.L")
    rpc(guest, "Tattach", 0, proto.NOFID, b"", b"", 0)
    rpc(guest, "Twalk", 0, 1, [b"data.bin"])
    rpc(guest, "Tlopen", 1, os.O_RDWR)
    payload = os.urandom(6000)
    message = proto.pack("Twrite", 3, 1, 0, payload)
    assert rpc_raw(guest, message, split_at=(23, 23 + 4096)) == (proto.NUMBERS["Rwrite"], 3, [6000])
    assert (guest.export / "data.bin").read_bytes()[:6000] == payload


def rpc_raw(guest, message, **kwargs):
    return proto.unpack(request(guest, message, **kwargs))


def test_a_reply_that_does_not_fit_becomes_enobufs(guest):
    rpc(guest, "Tversion", 65536, b"9P2000.L")
    rpc(guest, "Tattach", 0, proto.NOFID, b"", b"", 0)
    rpc(guest, "Twalk", 0, 1, [b"data.bin"])
    rpc(guest, "Tlopen", 1, os.O_RDONLY)
    assert rpc(guest, "Tread", 1, 0, 4096, reply_sizes=(100,)) == (proto.RLERROR, 1, [errno.ENOBUFS])
    assert request(guest, proto.pack("Tread", 1, 1, 0, 4096), reply_sizes=(8,)) == b""  # not even Rlerror fits
    assert not guest.transport.needs_reset


def test_size_field_that_lies_is_einval(guest):
    message = bytearray(proto.pack("Tclunk", 5, 0))
    message[0:4] = (1000).to_bytes(4, "little")  # more than the chain holds
    assert rpc_raw(guest, bytes(message)) == (proto.RLERROR, 5, [errno.EINVAL])
    message[0:4] = (3).to_bytes(4, "little")  # less than a header
    assert rpc_raw(guest, bytes(message)) == (proto.RLERROR, 5, [errno.EINVAL])


def test_requests_larger_than_msize_are_refused(guest):
    rpc(guest, "Tversion", 4096, b"9P2000.L")
    rpc(guest, "Tattach", 0, proto.NOFID, b"", b"", 0)
    rpc(guest, "Twalk", 0, 1, [b"data.bin"])
    rpc(guest, "Tlopen", 1, os.O_RDWR)
    assert rpc(guest, "Twrite", 1, 0, bytes(5000), tag=8) == (proto.RLERROR, 8, [errno.EINVAL])
    assert (guest.export / "data.bin").read_bytes()[:16] == bytes(range(16))


def test_chains_without_a_header_or_reply_room_complete_empty(guest):
    assert request(guest, b"\x01\x02\x03") == b""
    assert request(guest, proto.pack("Tversion", 1, 8192, b"9P2000.L"), reply_sizes=()) == b""
    assert not guest.transport.needs_reset
    assert rpc(guest, "Tversion", 8192, b"9P2000.L")[0] == proto.NUMBERS["Rversion"]  # still answering


def test_driver_reset_closes_every_fid(guest):
    rpc(guest, "Tversion", 8192, b"9P2000.L")
    rpc(guest, "Tattach", 0, proto.NOFID, b"", b"", 0)
    rpc(guest, "Twalk", 0, 1, [b"data.bin"])
    rpc(guest, "Tlopen", 1, os.O_RDONLY)
    server = guest.device.server
    assert server.open_count == 1
    guest.driver.reset()
    assert server.fids == {} and server.open_count == 0


def test_tags_and_default_tags():
    assert check_tag("ok_tag-1") == b"ok_tag-1"
    for bad in ("", "a b", "a,b", "x" * 256, "a=b"):
        with pytest.raises(ConfigError):
            check_tag(bad)
    assert default_tag("/srv/data/", set()) == "data"
    assert default_tag("/srv/data", {"data"}) == "share0"
    assert default_tag("/", set()) == "share0"
    assert default_tag("/srv/with space", {"share0"}) == "share1"


def test_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot share"):
        P9Device(str(tmp_path / "nope"), "tag")
