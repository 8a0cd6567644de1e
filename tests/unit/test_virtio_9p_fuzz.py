"""A hostile guest against virtio-9p: random and mutated 9P messages through the device.

Each iteration sends one request through the mock driver: a well-formed message of a random
type (fids from a small pool, so fids are reused, clunked and walked from after clunking;
names from a pool of escape attempts: '..', links out of the export, absolute links, '/'
inside names, NUL; huge counts and offsets), or such a message mutated (bytes flipped,
truncated, extended, its size field a lie, its type replaced). Properties:

  * the device answers every request that has a header with a reply carrying its tag,
    the matching R-type or Rlerror, and never needs a reset;
  * no file outside the export is created, changed or removed, whatever was tried.

Seeded, so a failure replays; KVMPY_9P_FUZZ_ITERATIONS runs more (or fewer).
"""

import os
import random
import stat

import pytest

from kvmpy.virtio import p9_protocol as proto
from kvmpy.virtio.p9 import P9Device
from kvmpy.virtio.testing import MockGuest

pytestmark = [pytest.mark.virtio, pytest.mark.hostile]

ITERATIONS = int(os.environ.get("KVMPY_9P_FUZZ_ITERATIONS", "6000"))
NAMES = [b"sub", b"file", b"dir", b"new", b"..", b".", b"", b"sub", b"file", b"new", b"link-out", b"abs-out", b"etc", b"../outside", b"a/b",
         b"/etc/passwd", b"nul\0", b"outside", b"secret", b"x" * 300, b"dir", b"fifo"]
REQUEST_AREA, REPLY_AREA = 0x6000, 0x8000  # MockGuest's data area: 8 KiB request, 32 KiB reply
REPLY_SIZE = 0x8000


def snapshot(root: str, skip: str) -> dict:
    result = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.join(directory, d) != skip]
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            content = (os.readlink(path) if stat.S_ISLNK(st.st_mode)
                       else open(path, "rb").read() if stat.S_ISREG(st.st_mode) else None)
            result[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, content)
    return result


def field(letter: str, rng: random.Random):
    if letter == "d":  # mostly fids and small numbers, sometimes anything
        return rng.choice([rng.randrange(8), rng.randrange(8), rng.randrange(8), rng.randrange(8), 0, 0,
                           proto.NOFID, rng.getrandbits(32), os.O_RDONLY, os.O_WRONLY,
                           os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o100644, stat.S_IFCHR | 0o666, 0x200])
    if letter == "q":
        return rng.choice([0, 1, 4096, rng.getrandbits(64), (1 << 63) - 1, 1 << 40, rng.getrandbits(20)])
    if letter in "bw":
        return rng.getrandbits(8 if letter == "b" else 16)
    if letter == "s":
        return rng.choice(NAMES) if rng.random() < 0.9 else rng.randbytes(rng.randrange(20))
    if letter == "S":
        return [rng.choice(NAMES) for _ in range(rng.choice([0, 1, 1, 1, 2, 2, 3, 17, rng.randrange(40)]))]
    if letter == "D":
        return rng.randbytes(rng.choice([0, 1, 100, 4000]))
    if letter == "Q":
        return proto.Qid(0, 0, 0)
    if letter == "R":
        return []
    raise AssertionError(letter)


T_TYPES = [number for number, (name, _) in proto.MESSAGES.items() if name.startswith("T")]


# Walks and opens often, so that fids exist for everything else; Tversion (which drops every
# fid) rarely.
WEIGHTS = {"Twalk": 30, "Tattach": 6, "Tlopen": 10, "Tread": 5, "Treaddir": 5, "Tclunk": 12, "Tversion": 0.3}
TYPE_WEIGHTS = [WEIGHTS.get(proto.MESSAGES[number][0], 2) for number in T_TYPES]


def message(rng: random.Random, tag: int) -> bytes:
    mtype = rng.choices(T_TYPES, TYPE_WEIGHTS)[0]
    layout = proto.MESSAGES[mtype][1]
    data = bytearray(proto.pack(mtype, tag, *(field(letter, rng) for letter in layout)))
    roll = rng.random()
    if roll < 0.15:  # flip bytes after the header
        for _ in range(rng.randrange(1, 6)):
            if len(data) > 7:
                data[rng.randrange(7, len(data))] = rng.getrandbits(8)
    elif roll < 0.25:  # truncate, keeping the size field consistent or not
        data = data[: rng.randrange(7, len(data) + 1)]
        if rng.random() < 0.5:
            data[0:4] = len(data).to_bytes(4, "little")
    elif roll < 0.3:  # a size field that lies
        data[0:4] = rng.getrandbits(32).to_bytes(4, "little")
    elif roll < 0.35:  # any type at all
        data[4] = rng.getrandbits(8)
    elif roll < 0.4:  # garbage appended inside the size
        data += rng.randbytes(rng.randrange(1, 50))
        data[0:4] = len(data).to_bytes(4, "little")
    return bytes(data[:0x2000])


@pytest.mark.parametrize("use_openat2", [pytest.param(True, id="openat2"), pytest.param(False, id="walk")])
def test_random_and_mutated_messages(tmp_path, use_openat2):
    root = tmp_path / "export"
    (root / "sub").mkdir(parents=True)
    (root / "file").write_bytes(b"content")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"secret")
    os.symlink("../outside", root / "link-out")
    os.symlink(str(tmp_path / "outside"), root / "abs-out")
    os.symlink("/etc", root / "etc")
    os.symlink("../outside", root / "sub" / "outside")
    before = snapshot(str(tmp_path), skip=str(root))

    device = P9Device(str(root), "fuzz")
    if use_openat2 and not device.export.use_openat2:
        pytest.skip("no openat2 on this kernel")
    device.export.use_openat2 = use_openat2
    guest = MockGuest(device)
    (queue,) = guest.driver.init(queue_sizes=[16])
    server = guest.device.server
    rng = random.Random(9)
    answered = errors = 0
    try:
        for iteration in range(ITERATIONS):
            if iteration % 500 == 0:  # start over sometimes: version, attach
                for setup in (proto.pack("Tversion", 0, 65536, b"9P2000.L"),
                              proto.pack("Tattach", 1, 0, proto.NOFID, b"", b"", 0)):
                    send(guest, queue, setup)
            tag = rng.getrandbits(16)
            data = message(rng, tag)
            reply = send(guest, queue, data)
            assert not guest.transport.needs_reset, iteration
            if len(data) >= 7:
                assert len(reply) >= 7, (iteration, data)
                size, rtype, rtag = proto.unpack_header(reply)
                assert size == len(reply) and rtag == tag, (iteration, data)
                assert rtype in (proto.RLERROR, data[4] + 1), (iteration, data, reply)
                proto.unpack(reply)  # the reply itself is well-formed
                answered += 1
                errors += rtype == proto.RLERROR
            assert server.open_count <= len(server.fids)
    finally:
        guest.close()
    assert snapshot(str(tmp_path), skip=str(root)) == before
    assert not (tmp_path / "new").exists() and not (tmp_path / "outside" / "new").exists()
    assert answered > ITERATIONS * 0.9 and 0 < errors < answered  # some requests succeeded too


def send(guest, queue, data: bytes) -> bytes:
    guest.memory.write(REQUEST_AREA, data)
    head = queue.add_chain([(REQUEST_AREA, len(data), False), (REPLY_AREA, REPLY_SIZE, True)])
    guest.driver.kick(0)
    used = queue.take_used()
    assert len(used) == 1 and used[0][0] == head
    return guest.memory.read(REPLY_AREA, used[0][1])
