"""virtio-net over a real TAP, inside a network namespace this test creates: the guest gets an
address, host and guest ping each other, and a few MiB cross over TCP each way with matching
digests. Every address is inside the namespace; nothing leaves this machine.

The host side needs no tools beyond Python: its ping is a raw ICMP socket (PING_SCRIPT), not
iputils' `ping`, which many hosts (this CI host included) do not have.
"""

import os
import subprocess
import sys
import threading

import pytest

from kvmpy.linux import command_cmdline

pytestmark = [pytest.mark.linux, pytest.mark.virtio]

TIMEOUT = 600
HOST_ADDRESS, GUEST_ADDRESS, PREFIX = "10.213.7.1", "10.213.7.2", 24
PORT = 5555  # host -> guest: the host serves DOWNLOAD_BYTES to the first client
UPLOAD_PORT = 5557  # guest -> host: the host digests what the first client sends
GO_PORT = 5556  # the guest waits on it until the host has pinged it
DOWNLOAD_BYTES = 4 << 20
UPLOAD_BLOCKS = 32  # of 64 KiB: 2 MiB
TAP = "kvmpytap0"

# Inside the namespace: serves DOWNLOAD_BYTES of a fixed pseudo-random stream to one client,
# and digests one upload. Prints the download's md5 first, the upload's md5 and size last.
SERVER = f"""
import hashlib, socket, threading
data = b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() for i in range({DOWNLOAD_BYTES} // 32))
download = socket.create_server(("{HOST_ADDRESS}", {PORT}))
upload = socket.create_server(("{HOST_ADDRESS}", {UPLOAD_PORT}))
print(hashlib.md5(data).hexdigest(), flush=True)

def serve_download():
    client, _ = download.accept()
    client.sendall(data)
    client.close()

threading.Thread(target=serve_download, daemon=True).start()
client, _ = upload.accept()
digest, size = hashlib.md5(), 0
while chunk := client.recv(1 << 16):
    digest.update(chunk)
    size += len(chunk)
client.close()
print("UPLOAD", digest.hexdigest(), size, flush=True)
"""

# Inside the namespace: ping ADDRESS COUNT times (an ICMP echo request over a raw socket, one
# at a time, each awaited for up to TIMEOUT seconds); a reply must carry our id, sequence
# number and payload, and a valid checksum. Exit status 0 if every request got its reply.
PING_SCRIPT = """
import os, select, socket, struct, sys, time

def checksum(data):
    data += bytes(len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF

address, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident, replies = os.getpid() & 0xFFFF, 0
for seq in range(1, count + 1):
    payload = os.urandom(56)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    sock.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload, (address, 0))
    sent = time.monotonic()
    while (left := sent + timeout - time.monotonic()) > 0 and select.select([sock], [], [], left)[0]:
        packet, (source, _) = sock.recvfrom(4096)
        icmp = packet[(packet[0] & 0xF) * 4:]
        kind, _, _, their_id, their_seq = struct.unpack("!BBHHH", icmp[:8])
        if (source, kind, their_id, their_seq, icmp[8:]) == (address, 0, ident, seq, payload) and not checksum(icmp):
            print(f"reply from {source}: seq={seq} time={(time.monotonic() - sent) * 1000:.1f} ms", flush=True)
            replies += 1
            break
    else:
        print(f"no reply from {address} to seq={seq} within {timeout} s", flush=True)
sys.exit(0 if replies == count else 1)
"""


@pytest.fixture
def namespace():
    pyroute2 = pytest.importorskip("pyroute2")
    if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
        pytest.skip("needs root and /dev/net/tun to create a TAP in a network namespace")
    name = f"kvmpy-test-{os.getpid()}"
    pyroute2.netns.create(name)
    try:
        with pyroute2.NetNS(name) as ns:
            ns.link("add", ifname=TAP, kind="tuntap", mode="tap")
            index = ns.link_lookup(ifname=TAP)[0]
            ns.addr("add", index=index, address=HOST_ADDRESS, prefixlen=PREFIX)
            ns.link("set", index=index, state="up")
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        pyroute2.netns.remove(name)


def in_namespace(name: str, *command: str) -> list[str]:
    return ["ip", "netns", "exec", name, *command]


def test_ping_both_ways_and_tcp_both_ways(namespace, test_kernel, test_initrd, guest_path):
    server = subprocess.Popen(in_namespace(namespace, sys.executable, "-c", SERVER), stdout=subprocess.PIPE,
                              text=True)
    download_md5 = server.stdout.readline().strip()
    guest_command = (
        f"ip link set eth0 up && ip addr add {GUEST_ADDRESS}/{PREFIX} dev eth0 && "
        f"ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*' && "
        f"ping -c 2 -W 5 {HOST_ADDRESS} >/dev/null && echo GUEST-PINGED-HOST && "
        f"echo NET-READY && nc -l -p {GO_PORT} >/dev/null && "
        f"nc {HOST_ADDRESS} {PORT} | md5sum && "
        f"dd if=/dev/urandom of=/tmp/upload bs=64k count={UPLOAD_BLOCKS} 2>/dev/null && "
        f"md5sum /tmp/upload && nc {HOST_ADDRESS} {UPLOAD_PORT} < /tmp/upload"
    )
    vmm = subprocess.Popen(
        in_namespace(namespace, sys.executable, "-m", "kvmpy", "run", test_kernel, "--initrd", test_initrd,
                     "--net", f"tap={TAP}", *guest_path.cli_options(), "--cmdline", command_cmdline(guest_command),
                     "--timeout", str(TIMEOUT)),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    console, host_side = [], {}

    def ping_guest_then_let_it_go_on():
        try:
            host_side["ping"] = subprocess.run(
                in_namespace(namespace, sys.executable, "-c", PING_SCRIPT, GUEST_ADDRESS, "2", "5"),
                capture_output=True, text=True)
        finally:  # let the guest go on whatever the ping did, so a failure ends the run quickly
            connect = f"import socket; socket.create_connection(('{GUEST_ADDRESS}', {GO_PORT}), timeout=60).close()"
            host_side["go"] = subprocess.run(in_namespace(namespace, sys.executable, "-c", connect),
                                             capture_output=True, text=True)
            if host_side["go"].returncode != 0:
                vmm.kill()

    pinger = threading.Thread(target=ping_guest_then_let_it_go_on)
    try:
        for line in vmm.stdout:
            console.append(line.decode(errors="replace"))
            if "NET-READY" in console[-1] and pinger.ident is None:
                pinger.start()
        vmm.wait()
        if pinger.ident is not None:
            pinger.join(120)
        # the server has digested the upload once the guest's nc has returned (status 0)
        upload = server.communicate(timeout=60)[0].split() if vmm.returncode == 0 else []
    finally:
        server.kill()
        vmm.kill()
    text = "".join(console)
    output = text.split("KVMPY-CMD-BEGIN")[-1]
    assert vmm.returncode == 0, text[-3000:]
    assert f"inet {GUEST_ADDRESS}/{PREFIX}" in output
    assert "GUEST-PINGED-HOST" in output
    ping = host_side["ping"]
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("reply from") == 2
    assert download_md5 in output
    assert upload[0] == "UPLOAD" and int(upload[2]) == UPLOAD_BLOCKS << 16, upload
    assert upload[1] in output  # the md5 the guest printed for what it sent
