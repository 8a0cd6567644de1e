"""Each 9P2000.L handler against a temporary directory, through the wire format; escapes out
of the export; read-only refusals. Every test runs with openat2 and with the O_NOFOLLOW
component walk that replaces it on kernels without openat2."""

import errno
import os
import stat

import pytest

from kvmpy.errors import ConfigError
from kvmpy.virtio import p9_protocol as proto
from kvmpy.virtio import p9_server
from kvmpy.virtio.p9_fs import Export, _probe_openat2
from kvmpy.virtio.p9_server import Server

from p9_client import O_RDONLY, O_RDWR, O_WRONLY, Client

pytestmark = pytest.mark.virtio
SECRET = b"outside the export: must never reach the guest"


@pytest.fixture(params=[pytest.param(True, id="openat2"), pytest.param(False, id="walk")])
def use_openat2(request):
    if request.param and not _probe_openat2():
        pytest.skip("no openat2 on this kernel")
    return request.param


@pytest.fixture
def tree(tmp_path):
    export = tmp_path / "export"
    (export / "sub" / "deeper").mkdir(parents=True)
    (export / "hello.txt").write_bytes(b"hello, guest\n")
    (export / "sub" / "inner.txt").write_bytes(b"inner")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    os.symlink("../outside/secret.txt", export / "relative-escape")
    os.symlink(str(outside), export / "absolute-escape")
    os.symlink("/etc", export / "etc")
    os.symlink("hello.txt", export / "inside-link")
    return tmp_path


def make_client(tree, use_openat2, read_only=False, msize=512 * 1024):
    server = Server(Export(str(tree / "export"), read_only=read_only, use_openat2=use_openat2))
    client = Client(server, msize)
    client.start()
    return client, server


@pytest.fixture
def client(tree, use_openat2):
    client, server = make_client(tree, use_openat2)
    yield client
    server.close()
    server.export.close()


@pytest.fixture
def ro_client(tree, use_openat2):
    client, server = make_client(tree, use_openat2, read_only=True)
    yield client
    server.close()
    server.export.close()


def snapshot(root):
    """Everything under root: path -> (mode, size, content or link target)."""
    result = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            content = (os.readlink(path) if stat.S_ISLNK(st.st_mode)
                       else open(path, "rb").read() if stat.S_ISREG(st.st_mode) else None)
            result[os.path.relpath(path, root)] = (st.st_mode, st.st_size, content)
    return result


# --- Session ------------------------------------------------------------------------------

def test_version_negotiates_msize_up_to_512k(tree, use_openat2):
    server = Server(Export(str(tree / "export"), use_openat2=use_openat2))
    client = Client(server)
    assert client.rpc("Tversion", 1 << 20, b"9P2000.L") == [512 * 1024, b"9P2000.L"]
    assert client.rpc("Tversion", 8192, b"9P2000.L") == [8192, b"9P2000.L"]
    assert client.rpc("Tversion", 8192, b"9P2000.u") == [8192, b"unknown"]
    assert client.errno_of("Tversion", 100, b"9P2000.L") == errno.EINVAL


def test_version_forgets_every_fid(client):
    client.walk(0, b"hello.txt", newfid=5)
    client.rpc("Tversion", 8192, b"9P2000.L")
    assert client.errno_of("Tgetattr", 5, 0) == errno.EBADF
    assert client.errno_of("Tgetattr", 0, 0) == errno.EBADF


def test_attach_gives_the_root_and_refuses_a_fid_in_use(client, tree):
    attrs = client.getattr(0)
    assert attrs["qid"].type == proto.QTDIR and attrs["qid"].path == os.stat(tree / "export").st_ino
    assert client.errno_of("Tattach", 0, proto.NOFID, b"", b"", 0) == errno.EBADF
    assert client.errno_of("Tauth", 1, b"", b"", 0) == errno.EOPNOTSUPP


def test_unknown_and_legacy_types_get_eopnotsupp(client):
    for mtype in (124, 112, 250, 0):  # Tstat and Topen of 9P2000, nonsense, nothing
        reply = client.answer(proto.HEADER.pack(7, mtype, 9) + b"")
        assert proto.unpack(reply) == (proto.RLERROR, 9, [errno.EOPNOTSUPP])


def test_malformed_request_gets_einval_with_its_tag(client):
    message = proto.pack("Twalk", 42, 0, 1, [b"a", b"b"])[:-1]
    message = len(message).to_bytes(4, "little") + message[4:]
    assert proto.unpack(client.answer(message)) == (proto.RLERROR, 42, [errno.EINVAL])
    assert client.answer(b"\x03\x00") is None  # no header: nothing to answer


def test_flush_is_answered(client):
    assert client.rpc("Tflush", 7) == []


# --- Walk and getattr ---------------------------------------------------------------------

def test_walk_and_getattr_of_a_file(client, tree):
    fid = client.walk(0, b"sub", b"inner.txt")
    attrs = client.getattr(fid)
    st = os.stat(tree / "export" / "sub" / "inner.txt")
    assert attrs["size"] == 5 and attrs["mode"] == st.st_mode and attrs["qid"].path == st.st_ino
    assert attrs["qid"].type == proto.QTFILE and attrs["nlink"] == 1
    assert attrs["mtime_sec"] == int(st.st_mtime) and attrs["uid"] == st.st_uid


def test_walk_with_no_names_clones_the_fid(client):
    clone = client.walk(0)
    assert client.getattr(clone)["qid"] == client.getattr(0)["qid"]


def test_partial_walk_returns_the_qids_so_far_and_creates_no_fid(client):
    qids = client.rpc("Twalk", 0, 9, [b"sub", b"missing", b"x"])[0]
    assert len(qids) == 1 and qids[0].type == proto.QTDIR
    assert client.errno_of("Tgetattr", 9, 0) == errno.EBADF
    assert client.errno_of("Twalk", 0, 9, [b"missing"]) == errno.ENOENT


def test_walk_refuses_bad_names_and_too_many(client):
    for name in (b"a/b", b"/", b".", b"", b"nul\0byte"):
        assert client.errno_of("Twalk", 0, 9, [name]) == errno.EINVAL, name
    assert client.errno_of("Twalk", 0, 9, [b"sub"] * 17) == errno.EINVAL
    assert client.errno_of("Twalk", 77, 9, []) == errno.EBADF  # unknown fid
    client.walk(0, b"sub", newfid=9)
    assert client.errno_of("Twalk", 0, 9, [b"hello.txt"]) == errno.EBADF  # newfid in use


def walk_stops_after(client, fid, names) -> int:
    """How many names a walk got through when it cannot go all the way (no new fid then)."""
    qids = client.rpc("Twalk", fid, 999, names)[0]
    assert len(qids) < len(names), qids
    assert client.errno_of("Tclunk", 999) == errno.EBADF
    return len(qids)


def test_walk_from_a_file_is_enotdir(client):
    fid = client.walk(0, b"hello.txt")
    assert client.errno_of("Twalk", fid, 9, [b"x"]) == errno.ENOTDIR


def test_dotdot_at_the_root_stays_at_the_root(client):
    root = client.getattr(0)["qid"]
    fid = client.walk(0, b"..", b"..", b"..")
    assert client.getattr(fid)["qid"] == root
    fid = client.walk(0, b"sub", b"deeper", b"..", b"..", b"..", b"hello.txt")
    assert client.getattr(fid)["size"] == len(b"hello, guest\n")
    # and nothing above the root can be named through '..': 'outside' is looked for in the root
    assert walk_stops_after(client, 0, [b"..", b"outside"]) == 1
    assert walk_stops_after(client, 0, [b"sub", b"..", b"..", b"..", b"outside", b"secret.txt"]) == 4


def test_symlink_out_of_the_export_is_never_followed(client):
    for name in (b"relative-escape", b"absolute-escape", b"etc"):
        fid = client.walk(0, name)
        assert client.getattr(fid)["qid"].type == proto.QTSYMLINK
        assert client.errno_of("Tlopen", fid, O_RDONLY) == errno.ELOOP  # O_NOFOLLOW semantics
    assert client.rpc("Treadlink", client.walk(0, b"etc")) == [b"/etc"]
    # walking through a link as a directory fails: the host never resolves it
    assert walk_stops_after(client, 0, [b"absolute-escape", b"secret.txt"]) == 1
    assert walk_stops_after(client, 0, [b"etc", b"passwd"]) == 1
    assert walk_stops_after(client, 0, [b"sub", b"..", b"etc", b"passwd"]) == 3


def test_even_a_link_inside_the_export_is_not_followed(client):
    fid = client.walk(0, b"inside-link")
    assert client.errno_of("Tlopen", fid, O_RDONLY) == errno.ELOOP
    assert client.rpc("Treadlink", fid) == [b"hello.txt"]


def test_a_directory_swapped_for_a_link_after_the_walk_does_not_lead_out(client, tree):
    """A fid keeps its path; each use resolves it again, so the swap is seen and refused."""
    fid = client.walk(0, b"sub", b"inner.txt")
    sub = tree / "export" / "sub"
    os.rename(sub, tree / "export" / "moved")
    os.symlink(str(tree / "outside"), sub)
    os.rename(tree / "outside" / "secret.txt", tree / "outside" / "inner.txt")
    assert client.errno_of("Tlopen", fid, O_RDONLY) in (errno.ENOTDIR, errno.ELOOP)
    assert client.errno_of("Tgetattr", fid, 0) in (errno.ENOTDIR, errno.ELOOP)
    assert client.errno_of("Tsetattr", fid, proto.SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0) in (errno.ENOTDIR, errno.ELOOP)
    assert (tree / "outside" / "inner.txt").read_bytes() == SECRET


# --- Open, read, write, create -------------------------------------------------------------

def test_lopen_and_read(client):
    fid = client.open(b"hello.txt")
    assert client.read_all(fid, chunk=4) == b"hello, guest\n"
    assert client.rpc("Tread", fid, 7, 100) == [b"guest\n"]
    assert client.rpc("Tread", fid, 1 << 40, 100) == [b""]
    assert client.errno_of("Tlopen", fid, O_RDONLY) == errno.EBADF  # already open
    assert client.errno_of("Twrite", fid, 0, b"x") == errno.EBADF  # opened read-only


def test_read_count_is_bounded_by_msize(tree, use_openat2):
    (tree / "export" / "big").write_bytes(os.urandom(64 * 1024))
    client, _server = make_client(tree, use_openat2, msize=8192)
    fid = client.open(b"big")
    (data,) = client.rpc("Tread", fid, 0, 0xFFFF_FFFF)
    assert len(data) == 8192 - proto.IOHDRSZ


def test_huge_offset_is_einval_not_a_crash(client):
    fid = client.open(b"hello.txt")
    assert client.errno_of("Tread", fid, 0xFFFF_FFFF_FFFF_FFFF, 10) == errno.EINVAL


def test_read_and_write_need_an_open_fid(client):
    fid = client.walk(0, b"hello.txt")
    assert client.errno_of("Tread", fid, 0, 10) == errno.EBADF
    assert client.errno_of("Twrite", fid, 0, b"x") == errno.EBADF
    assert client.errno_of("Tfsync", fid, 0) == errno.EBADF


def test_write_reaches_the_host_file(client, tree):
    fid = client.open(b"hello.txt", flags=O_RDWR)
    assert client.rpc("Twrite", fid, 7, b"world!") == [6]
    assert client.rpc("Tfsync", fid, 1) == []
    assert (tree / "export" / "hello.txt").read_bytes() == b"hello, world!"


def test_lopen_truncates_with_o_trunc(client, tree):
    client.open(b"hello.txt", flags=O_WRONLY | os.O_TRUNC)
    assert (tree / "export" / "hello.txt").read_bytes() == b""


def test_lcreate_makes_and_opens_a_file(client, tree):
    fid = client.walk(0, b"sub")
    qid, iounit = client.rpc("Tlcreate", fid, b"new.txt", O_RDWR, 0o640, 0)
    assert qid.type == proto.QTFILE and iounit == 0
    assert client.rpc("Twrite", fid, 0, b"created") == [7]
    path = tree / "export" / "sub" / "new.txt"
    assert path.read_bytes() == b"created" and stat.S_IMODE(path.stat().st_mode) == 0o640 & ~current_umask()
    assert client.getattr(fid)["qid"].path == path.stat().st_ino  # the fid is now the new file
    # O_EXCL on an existing name, creating through a dangling link
    assert client.errno_of("Tlcreate", client.walk(0), b"hello.txt", O_RDWR | os.O_EXCL, 0o600, 0) == errno.EEXIST
    os.symlink(str(tree / "outside" / "planted"), tree / "export" / "dangling")
    assert client.errno_of("Tlcreate", client.walk(0), b"dangling", O_RDWR, 0o600, 0) in (errno.ELOOP, errno.EEXIST)
    assert not (tree / "outside" / "planted").exists()
    for bad in (b"../x", b"..", b"a/b"):
        assert client.errno_of("Tlcreate", client.walk(0), bad, O_RDWR, 0o600, 0) == errno.EINVAL


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_fifo_opens_without_blocking(client, tree):
    os.mkfifo(tree / "export" / "pipe")
    fid = client.open(b"pipe")
    assert client.rpc("Tread", fid, 0, 10) == [b""]  # no writer: end of file, not a hang
    writer = os.open(tree / "export" / "pipe", os.O_WRONLY | os.O_NONBLOCK)
    assert client.errno_of("Tread", fid, 0, 10) == errno.EAGAIN  # a writer, no data: still no hang
    os.write(writer, b"through the pipe")
    assert client.rpc("Tread", fid, 0, 100) == [b"through the pipe"]  # no offset on a pipe
    os.close(writer)


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_device_nodes_in_the_export_are_not_opened(client, tree):
    os.mknod(tree / "export" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    fid = client.walk(0, b"null")
    assert client.errno_of("Tlopen", fid, O_RDWR) == errno.EACCES


def test_too_many_open_fids(client, tree, monkeypatch):
    monkeypatch.setattr(p9_server, "MAX_OPEN_FIDS", 3)
    fids = [client.open(b"hello.txt") for _ in range(3)]
    assert client.errno_of("Tlopen", client.walk(0, b"hello.txt"), O_RDONLY) == errno.ENFILE
    assert client.errno_of("Tlopen", client.walk(0, b"sub", b"inner.txt"), O_WRONLY | os.O_TRUNC) == errno.ENFILE
    assert client.errno_of("Tlcreate", client.walk(0), b"not-made", O_RDWR, 0o600, 0) == errno.ENFILE
    assert (tree / "export" / "sub" / "inner.txt").read_bytes() == b"inner"  # refused before opening
    assert not (tree / "export" / "not-made").exists()
    client.clunk(fids[0])
    client.open(b"hello.txt")


# --- Directories ----------------------------------------------------------------------------

def test_readdir_lists_everything_with_resumable_offsets(client, tree):
    for index in range(50):
        (tree / "export" / "sub" / f"file-{index:02}").write_bytes(b"")
    fid = client.open(b"sub")
    names = client.readdir(fid, count=200)  # many small replies, each resumed at its last offset
    expected = {b".", b"..", b"inner.txt", b"deeper"} | {f"file-{i:02}".encode() for i in range(50)}
    assert sorted(names) == sorted(expected) and len(names) == len(expected)
    (data,) = client.rpc("Treaddir", fid, 0, 8192)
    entries = {name: (qid, dtype) for qid, _, dtype, name in proto.parse_dirents(data)}
    assert entries[b"deeper"][0].type == proto.QTDIR and entries[b"deeper"][1] == 4
    assert entries[b"inner.txt"][0].path == os.stat(tree / "export" / "sub" / "inner.txt").st_ino
    assert client.errno_of("Treaddir", client.walk(0, b"sub"), 0, 100) == errno.EBADF  # not open
    assert client.errno_of("Tread", fid, 0, 100) == errno.EISDIR


def test_readdir_of_the_root_shows_links_as_links(client):
    fid = client.walk(0)
    client.rpc("Tlopen", fid, O_RDONLY | os.O_DIRECTORY)
    (data,) = client.rpc("Treaddir", fid, 0, 8192)
    entries = {name: (qid, dtype) for qid, _, dtype, name in proto.parse_dirents(data)}
    assert entries[b"etc"] == (entries[b"etc"][0], 10) and entries[b"etc"][0].type == proto.QTSYMLINK
    assert b"secret.txt" not in entries


def test_mkdir_and_unlinkat(client, tree):
    qid = client.rpc("Tmkdir", 0, b"made", 0o755, 0)[0]
    assert qid.type == proto.QTDIR and (tree / "export" / "made").is_dir()
    assert client.errno_of("Tmkdir", 0, b"made", 0o755, 0) == errno.EEXIST
    assert client.errno_of("Tunlinkat", 0, b"made", 0) in (errno.EISDIR, errno.EPERM)
    assert client.rpc("Tunlinkat", 0, b"made", proto.AT_REMOVEDIR) == []
    assert client.rpc("Tunlinkat", 0, b"hello.txt", 0) == []
    assert not (tree / "export" / "made").exists() and not (tree / "export" / "hello.txt").exists()
    assert client.errno_of("Tunlinkat", 0, b"..", proto.AT_REMOVEDIR) == errno.EINVAL
    assert client.errno_of("Tunlinkat", 0, b"sub", 0x4000) == errno.EINVAL
    assert client.errno_of("Tmkdir", 0, b"../up", 0o755, 0) == errno.EINVAL


def test_unlinking_a_link_removes_the_link_not_its_target(client, tree):
    assert client.rpc("Tunlinkat", 0, b"relative-escape", 0) == []
    assert (tree / "outside" / "secret.txt").read_bytes() == SECRET


def test_renameat_moves_and_open_fids_follow(client, tree):
    inner = client.open(b"sub", b"inner.txt")
    deeper = client.walk(0, b"sub", b"deeper")
    assert client.rpc("Trenameat", 0, b"sub", 0, b"renamed") == []
    assert (tree / "export" / "renamed" / "inner.txt").exists()
    assert client.read_all(inner) == b"inner"
    assert client.getattr(deeper)["qid"].type == proto.QTDIR  # a walked, unopened fid follows too
    assert client.rpc("Tmkdir", deeper, b"x", 0o755, 0)
    assert (tree / "export" / "renamed" / "deeper" / "x").is_dir()
    assert client.errno_of("Trenameat", 0, b"..", 0, b"x") == errno.EINVAL
    assert client.errno_of("Trenameat", 0, b"hello.txt", 0, b"../hello.txt") == errno.EINVAL


def test_rename_of_a_fid(client, tree):
    fid = client.walk(0, b"hello.txt")
    target = client.walk(0, b"sub")
    assert client.rpc("Trename", fid, target, b"moved.txt") == []
    assert (tree / "export" / "sub" / "moved.txt").read_bytes() == b"hello, guest\n"
    assert client.getattr(fid)["size"] == 13
    assert client.errno_of("Trename", 0, target, b"root") == errno.EBUSY  # not the root


def test_remove_clunks_the_fid_even_when_it_fails(client, tree):
    fid = client.walk(0, b"hello.txt")
    assert client.rpc("Tremove", fid) == []
    assert not (tree / "export" / "hello.txt").exists()
    assert client.errno_of("Tclunk", fid) == errno.EBADF
    fid = client.walk(0, b"sub")  # not empty
    assert client.errno_of("Tremove", fid) == errno.ENOTEMPTY
    assert client.errno_of("Tgetattr", fid, 0) == errno.EBADF
    assert client.errno_of("Tremove", client.walk(0)) == errno.EBUSY  # the root


def test_symlink_and_readlink(client, tree):
    qid = client.rpc("Tsymlink", 0, b"link", b"/etc/shadow", 0)[0]
    assert qid.type == proto.QTSYMLINK and os.readlink(tree / "export" / "link") == "/etc/shadow"
    assert client.rpc("Treadlink", client.walk(0, b"link")) == [b"/etc/shadow"]
    assert client.errno_of("Treadlink", client.walk(0, b"hello.txt")) == errno.EINVAL
    assert client.errno_of("Tsymlink", 0, b"empty", b"", 0) == errno.EINVAL


def test_hard_link(client, tree):
    assert client.rpc("Tlink", 0, client.walk(0, b"hello.txt"), b"again") == []
    assert os.stat(tree / "export" / "again").st_ino == os.stat(tree / "export" / "hello.txt").st_ino
    assert client.errno_of("Tlink", 0, 0, b"rootlink") == errno.EPERM


def test_mknod_makes_regular_files_and_fifos_only(client, tree):
    assert client.rpc("Tmknod", 0, b"fifo", stat.S_IFIFO | 0o600, 0, 0, 0)[0].type == proto.QTFILE
    assert stat.S_ISFIFO(os.lstat(tree / "export" / "fifo").st_mode)
    client.rpc("Tmknod", 0, b"plain", stat.S_IFREG | 0o600, 0, 0, 0)
    assert (tree / "export" / "plain").is_file()
    for kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK, 0):
        assert client.errno_of("Tmknod", 0, b"dev", kind | 0o666, 1, 3, 0) == errno.EPERM
    assert not (tree / "export" / "dev").exists()


# --- Setattr ----------------------------------------------------------------------------------

def setattr(client, fid, valid, mode=0, uid=0, gid=0, size=0, atime=(0, 0), mtime=(0, 0)):
    return client.rpc("Tsetattr", fid, valid, mode, uid, gid, size, *atime, *mtime)


def test_chmod_truncate_and_times(client, tree):
    path = tree / "export" / "hello.txt"
    fid = client.walk(0, b"hello.txt")
    setattr(client, fid, proto.SETATTR_MODE, mode=0o100604)
    assert stat.S_IMODE(path.stat().st_mode) == 0o604
    setattr(client, fid, proto.SETATTR_SIZE, size=5)
    assert path.read_bytes() == b"hello"
    setattr(client, fid, proto.SETATTR_SIZE, size=100)
    assert path.stat().st_size == 100
    setattr(client, fid, proto.SETATTR_ATIME | proto.SETATTR_ATIME_SET | proto.SETATTR_MTIME | proto.SETATTR_MTIME_SET,
            atime=(1_000_000, 5), mtime=(2_000_000, 7))
    st = path.stat()
    assert st.st_atime_ns == 1_000_000 * 10**9 + 5 and st.st_mtime_ns == 2_000_000 * 10**9 + 7
    setattr(client, fid, proto.SETATTR_MTIME)  # "now"; atime kept
    st2 = path.stat()
    assert st2.st_atime_ns == st.st_atime_ns and st2.st_mtime_ns > st.st_mtime_ns
    attrs = client.getattr(fid)
    assert attrs["mtime_sec"] == int(st2.st_mtime) and attrs["size"] == 100
    assert client.errno_of("Tsetattr", fid, proto.SETATTR_ATIME | proto.SETATTR_ATIME_SET, 0, 0, 0, 0,
                           1, 10**9, 0, 0) == errno.EINVAL


def test_truncate_through_an_open_fid_and_chown_to_self(client, tree):
    fid = client.open(b"hello.txt", flags=O_RDWR)
    setattr(client, fid, proto.SETATTR_SIZE, size=1)
    assert (tree / "export" / "hello.txt").read_bytes() == b"h"
    setattr(client, fid, proto.SETATTR_UID | proto.SETATTR_GID, uid=os.getuid(), gid=os.getgid())
    assert client.errno_of("Tsetattr", client.walk(0, b"sub"), proto.SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0) in (
        errno.EISDIR, errno.EINVAL)


def test_chmod_of_a_link_changes_nothing_outside(client, tree):
    before = os.stat(tree / "outside" / "secret.txt").st_mode
    fid = client.walk(0, b"relative-escape")
    assert client.errno_of("Tsetattr", fid, proto.SETATTR_MODE, 0o777, 0, 0, 0, 0, 0, 0, 0) == errno.EOPNOTSUPP
    assert client.errno_of("Tsetattr", fid, proto.SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0) == errno.ELOOP
    assert os.stat(tree / "outside" / "secret.txt").st_mode == before
    assert (tree / "outside" / "secret.txt").read_bytes() == SECRET


# --- The rest: statfs, xattrs, locks, clunk ------------------------------------------------------

def test_statfs(client, tree):
    fields = client.rpc("Tstatfs", 0)
    vfs = os.statvfs(tree / "export")
    assert fields[0] == proto.V9FS_MAGIC and fields[2] == vfs.f_blocks and fields[8] == vfs.f_namemax


def test_no_xattrs(client):
    assert client.errno_of("Txattrwalk", 0, 9, b"user.foo") == errno.ENODATA
    assert client.rpc("Txattrwalk", 0, 9, b"") == [0]  # the list of names is empty
    assert client.rpc("Tread", 9, 0, 100) == [b""]
    assert client.errno_of("Tlopen", 9, O_RDONLY) == errno.EBADF
    client.clunk(9)
    assert client.errno_of("Txattrcreate", 0, b"user.foo", 3, 0) == errno.EOPNOTSUPP


def test_locks_report_success_and_unlocked(client):
    fid = client.open(b"hello.txt", flags=O_RDWR)
    assert client.rpc("Tlock", fid, 1, 0, 0, 0, 42, b"guest") == [proto.LOCK_SUCCESS]
    assert client.rpc("Tgetlock", fid, 1, 10, 20, 42, b"guest") == [proto.LOCK_TYPE_UNLCK, 10, 20, 42, b"guest"]


def test_clunked_fids_are_gone_and_fids_are_reusable(client):
    fid = client.walk(0, b"hello.txt", newfid=7)
    client.clunk(fid)
    for message, fields in (("Tgetattr", (7, 0)), ("Tlopen", (7, 0)), ("Twalk", (7, 8, [])), ("Tclunk", (7,)),
                            ("Tread", (7, 0, 1)), ("Treadlink", (7,)), ("Tstatfs", (7,))):
        assert client.errno_of(message, *fields) == errno.EBADF, message
    client.walk(0, b"sub", newfid=7)  # the number can be used again
    assert client.getattr(7)["qid"].type == proto.QTDIR


def test_walking_an_open_fid_onto_itself_is_refused(client):
    fid = client.open(b"sub")
    assert client.errno_of("Twalk", fid, fid, [b"inner.txt"]) == errno.EBUSY


# --- A read-only export -----------------------------------------------------------------------

def test_read_only_export_refuses_every_write_with_erofs(ro_client, tree):
    client = ro_client
    before = snapshot(tree)
    fid = client.walk(0, b"hello.txt")
    sub = client.walk(0, b"sub")
    refusals = [
        ("Tlopen", client.walk(0, b"hello.txt"), O_WRONLY),
        ("Tlopen", client.walk(0, b"hello.txt"), O_RDWR),
        ("Tlopen", client.walk(0, b"hello.txt"), O_RDONLY | os.O_TRUNC),
        ("Tlcreate", client.walk(0), b"new", O_RDWR, 0o644, 0),
        ("Tmkdir", 0, b"dir", 0o755, 0),
        ("Tsymlink", 0, b"link", b"target", 0),
        ("Tmknod", 0, b"fifo", stat.S_IFIFO | 0o600, 0, 0, 0),
        ("Tlink", 0, fid, b"hard"),
        ("Trenameat", 0, b"hello.txt", 0, b"renamed"),
        ("Trename", fid, sub, b"renamed"),
        ("Tunlinkat", 0, b"hello.txt", 0),
        ("Tunlinkat", sub, b"deeper", proto.AT_REMOVEDIR),
        ("Tsetattr", fid, proto.SETATTR_MODE, 0o777, 0, 0, 0, 0, 0, 0, 0),
        ("Tsetattr", fid, proto.SETATTR_SIZE, 0, 0, 0, 0, 0, 0, 0, 0),
        ("Tsetattr", fid, proto.SETATTR_MTIME, 0, 0, 0, 0, 0, 0, 0, 0),
        ("Txattrcreate", fid, b"user.x", 1, 0),
        ("Tremove", client.walk(0, b"hello.txt")),
    ]
    for message, *fields in refusals:
        assert client.errno_of(message, *fields) == errno.EROFS, message
    assert snapshot(tree) == before
    # reading still works
    assert client.read_all(client.open(b"hello.txt")) == b"hello, guest\n"
    assert b"inner.txt" in client.readdir(client.open(b"sub"))


def test_export_of_a_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot share"):
        Export(str(tmp_path / "missing"))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigError, match="cannot share"):
        Export(str(tmp_path / "file"))


def test_an_export_opened_and_closed_leaves_no_fd_behind(tree):
    """Found by the p9_messages fuzz target (EMFILE after ~20,000 exports): the openat2 probe
    kept the fd of '/' it resolved from."""
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        Export(str(tree)).close()
    assert len(os.listdir("/proc/self/fd")) == before
