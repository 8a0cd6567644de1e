"""Host directories shared over virtio-9p, seen from the test kernel's 9P2000.L client:
reading, listing, writing and metadata changes through a read-write share, a big file read
with msize 512 KiB, a read-only share refusing writes, and links that point out of the
export resolving in the guest, never on the host. Over virtio-pci and virtio-mmio."""

import hashlib
import os
import re
import secrets
import stat
import subprocess
import sys

import pytest

from kvmpy.linux import command_cmdline, run_command

pytestmark = [pytest.mark.linux, pytest.mark.virtio, pytest.mark.exec]

TIMEOUT = 600
MOUNT = "mount -t 9p -o trans=virtio,version=9p2000.L{options} {tag} {where}"
TRANSPORTS = [pytest.param("pci", marks=pytest.mark.pci), "mmio"]


def mount(tag: str, where: str = "/mnt", options: str = "") -> str:
    return MOUNT.format(tag=tag, where=where, options=options)


def command_lines(output: str) -> list[str]:
    """The command's own lines, without kernel messages that may interleave."""
    return [line for line in output.splitlines() if line and not re.match(r"\s*\[ *\d+\.\d+\]", line)]


def boot(test_kernel, test_initrd, guest_path, transport, command, shares):
    result = run_command(test_kernel, command, test_initrd, shares=shares, timeout=TIMEOUT, accel=guest_path.accel,
                         virtio_path=guest_path.virtio_path, virtio_transport=transport)
    assert result.status == 0, result.console[-3000:]
    guest_path.assert_drove(result.stats)
    assert {device["transport"] for device in result.stats["virtio"].values()} == {transport}
    return result


@pytest.fixture
def export(tmp_path):
    root = tmp_path / "export"
    (root / "dir").mkdir(parents=True)
    for name in ("alpha", "beta", "gamma"):
        (root / "dir" / name).write_text(name)
    (root / "hello.txt").write_text(f"hello from the host {secrets.token_hex(8)}\n")
    return root


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_read_list_and_write_through_a_share(test_kernel, test_initrd, guest_path, transport, export):
    payload = f"written by the guest {secrets.token_hex(8)}"
    command = (f"{mount('work')} && grep ' /mnt 9p ' /proc/mounts && cat /mnt/hello.txt && "
               "echo listing: $(ls /mnt/dir) && "
               f"printf '%s' '{payload}' > /mnt/from-guest.txt && umount /mnt")
    result = boot(test_kernel, test_initrd, guest_path, transport, command, ((str(export), "work", False),))
    lines = command_lines(result.output)
    assert "trans=virtio" in lines[0]
    assert lines[1] == (export / "hello.txt").read_text().strip()
    assert lines[2] == "listing: alpha beta gamma"
    assert (export / "from-guest.txt").read_text() == payload


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mkdir_rename_unlink_symlink_chmod_truncate(test_kernel, test_initrd, guest_path, transport, export):
    command = " && ".join([
        mount("work"),
        "mkdir /mnt/made", "mkdir -p /mnt/made/deep/er",
        "mv /mnt/dir/alpha /mnt/made/alpha-moved", "mv /mnt/made/deep /mnt/made/deep-renamed",
        "rm /mnt/dir/beta", "rmdir /mnt/made/deep-renamed/er",
        "ln -s ../hello.txt /mnt/made/link", "echo readlink=$(readlink /mnt/made/link)",
        "echo through-link=$(cat /mnt/made/link)",  # the guest follows it, inside the share
        "chmod 640 /mnt/dir/gamma", "echo mode=$(stat -c %a /mnt/dir/gamma)",
        "printf 0123456789 > /mnt/trunc", "truncate -s 4 /mnt/trunc", "echo size=$(stat -c %s /mnt/trunc)",
        "ln /mnt/trunc /mnt/hardlink", "echo nlink=$(stat -c %h /mnt/trunc)",
        "touch -d '2001-02-03 04:05:06' /mnt/dir/gamma",
        "umount /mnt",
    ])
    result = boot(test_kernel, test_initrd, guest_path, transport, command, ((str(export), "work", False),))
    lines = command_lines(result.output)
    hello = (export / "hello.txt").read_text().strip()
    assert lines == ["readlink=../hello.txt", f"through-link={hello}", "mode=640", "size=4", "nlink=2"], result.output
    assert (export / "made").is_dir() and (export / "made" / "deep-renamed").is_dir()
    assert not (export / "made" / "deep-renamed" / "er").exists()
    assert (export / "made" / "alpha-moved").read_text() == "alpha" and not (export / "dir" / "alpha").exists()
    assert not (export / "dir" / "beta").exists()
    assert os.readlink(export / "made" / "link") == "../hello.txt"
    gamma = (export / "dir" / "gamma").stat()
    assert stat.S_IMODE(gamma.st_mode) == 0o640
    assert (export / "trunc").read_bytes() == b"0123"
    assert (export / "hardlink").stat().st_ino == (export / "trunc").stat().st_ino
    assert gamma.st_mtime == pytest.approx(981173106, abs=86400)  # 2001-02-03, whatever the guest's time zone


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_big_file_reads_back_with_the_hosts_checksum(test_kernel, test_initrd, guest_path, transport, tmp_path):
    root = tmp_path / "big"
    root.mkdir()
    data = os.urandom(6 << 20)
    (root / "big.bin").write_bytes(data)
    command = (f"{mount('big', options=',msize=524288')} && grep -o 'msize=[0-9]*' /proc/mounts && "
               "sha256sum /mnt/big.bin && cp /mnt/big.bin /mnt/copy.bin && umount /mnt")
    result = boot(test_kernel, test_initrd, guest_path, transport, command, ((str(root), "big", False),))
    lines = command_lines(result.output)
    assert lines[0] == "msize=512000"  # the client's virtio limit (PAGE_SIZE * 125), below what the device allows
    assert lines[1].split()[0] == hashlib.sha256(data).hexdigest()
    assert (root / "copy.bin").read_bytes() == data  # 6 MiB written back through the share


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_read_only_share_refuses_writes_with_erofs(test_kernel, test_initrd, guest_path, transport, export):
    before = sorted((p.relative_to(export), p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
                    for p in export.rglob("*"))
    attempts = ["touch /mnt/new", "echo x > /mnt/hello.txt", "mkdir /mnt/newdir", "rm /mnt/dir/alpha",
                "mv /mnt/dir/alpha /mnt/renamed", "ln -s x /mnt/link", "chmod 600 /mnt/hello.txt",
                "truncate -s 0 /mnt/hello.txt"]
    command = f"{mount('ro-share')} && cat /mnt/dir/alpha && echo && " + " ; ".join(
        f"{attempt} 2>&1; echo status=$?" for attempt in attempts) + " ; umount /mnt"
    result = boot(test_kernel, test_initrd, guest_path, transport, command, ((str(export), "ro-share", True),))
    lines = command_lines(result.output)
    assert lines[0] == "alpha"  # reading works
    statuses = [line for line in lines if line.startswith("status=")]
    assert len(statuses) == len(attempts) and "status=0" not in statuses, result.output
    assert result.output.count("Read-only file system") == len(attempts), result.output
    after = sorted((p.relative_to(export), p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
                   for p in export.rglob("*"))
    assert after == before


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_links_out_of_the_export_resolve_in_the_guest_not_on_the_host(test_kernel, test_initrd, guest_path,
                                                                      transport, tmp_path, export):
    secret = f"host secret {secrets.token_hex(16)}"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(secret)
    os.symlink("/etc", export / "hostetc")
    os.symlink("../outside/secret.txt", export / "relative-out")
    os.symlink(str(outside / "secret.txt"), export / "absolute-out")
    command = (f"{mount('work')} && echo guest-etc: $(ls /etc) && echo via-link: $(ls /mnt/hostetc/) && "
               "cat /mnt/relative-out 2>&1; cat /mnt/absolute-out 2>&1; cat /mnt/hostetc/hostname 2>&1; "
               "echo up: $(ls /mnt/../ | head -3); umount /mnt")
    result = boot(test_kernel, test_initrd, guest_path, transport, command, ((str(export), "work", False),))
    lines = command_lines(result.output)
    guest_etc = lines[0].removeprefix("guest-etc: ")
    assert lines[1] == f"via-link: {guest_etc}"  # the guest's own /etc, not the host's
    assert sorted(os.listdir("/etc")) != guest_etc.split()
    assert secret not in result.console
    assert sum("No such file or directory" in line for line in lines) >= 2, result.output


def test_kvmpy_run_share_option(test_kernel, test_initrd, export):
    command = f"{mount('cli-tag')} && cat /mnt/hello.txt && echo made > /mnt/by-cli && umount /mnt"
    result = subprocess.run(
        [sys.executable, "-m", "kvmpy", "run", test_kernel, "--initrd", test_initrd, "--accel", "interp",
         "--share", f"{export},tag=cli-tag", "--share", f"{export},ro", "--virtio-transport", "mmio",
         "--cmdline", command_cmdline(command), "--timeout", str(TIMEOUT)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT + 60)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert (export / "hello.txt").read_text().strip() in result.stdout
    assert (export / "by-cli").read_text() == "made\n"


@pytest.mark.pci
def test_a_defconfig_kernel_mounts_a_share(defconfig_kernel, test_initrd, linux_accel, export):
    """x86_64_defconfig has the 9p client and its virtio transport built in: no test-kernel
    options needed."""
    command = f"{mount('work')} && cat /mnt/hello.txt && echo defconfig > /mnt/from-defconfig"
    result = run_command(defconfig_kernel, command, test_initrd, shares=((str(export), "work", False),),
                         accel=linux_accel, timeout=900, cmdline="console=ttyS0 panic=-1 quiet")
    assert result.ok, result.console[-3000:]
    assert (export / "hello.txt").read_text().strip() in result.output
    assert (export / "from-defconfig").read_text() == "defconfig\n"
