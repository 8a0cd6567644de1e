"""A virtio-net backend on a Linux TAP device (/dev/net/tun), set up with pyroute2.

The TAP is opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR and a 12-byte vnet header
(TUNSETVNETHDRSZ), so packets cross it in exactly the format virtio-net uses.  Offloads are
switched off (TUNSETOFFLOAD 0): the device offers none, so the host must hand over only
complete, checksummed frames.

Two modes (`open_tap`):
  * ``auto`` creates a new TAP named ``kvmpy%d`` and brings it up.  It is created
    non-persistent, so closing the file descriptor removes it -- also when the VMM dies.
  * ``tap=NAME`` attaches to an existing (persistent, typically pre-configured) TAP, and
    leaves it in place on close.
"""

from __future__ import annotations

import fcntl
import os
import struct
from typing import Sequence


from ..errors import ConfigError
from .netbackend import VNET_HDR_SIZE

TUN_DEVICE = "/dev/net/tun"
TUNSETIFF = 0x400454CA
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFNAMSIZ = 16
_IFREQ = struct.Struct(f"{IFNAMSIZ}sH22x")  # struct ifreq: name, flags, padding to 40 bytes
AUTO_NAME_TEMPLATE = "kvmpy%d"
MAX_PACKET = VNET_HDR_SIZE + 65535 + 14  # header, the largest IP datagram, Ethernet header


class TapBackend:
    """An open TAP device.  Use `create`, `attach` or `open_tap` rather than the constructor."""

    def __init__(self, fd: int, ifname: str, created: bool):
        self.fd = fd
        self.ifname = ifname
        self.created = created

    @classmethod
    def create(cls, template: str = AUTO_NAME_TEMPLATE) -> "TapBackend":
        """A new TAP (the kernel fills in %d), up, removed again when closed."""
        tap = cls(*_open_tun(template), created=True)
        try:
            with _iproute() as ipr:
                ipr.link("set", index=_link_index(ipr, tap.ifname), state="up")
        except Exception:
            tap.close()
            raise
        return tap

    @classmethod
    def attach(cls, ifname: str) -> "TapBackend":
        """The existing TAP `ifname`; it must exist (TUNSETIFF would silently create one)."""
        with _iproute() as ipr:
            if not ipr.link_lookup(ifname=ifname):
                raise ConfigError(f"TAP device {ifname} does not exist")
        fd, name = _open_tun(ifname)
        return cls(fd, name, created=False)

    def fileno(self) -> int:
        return self.fd

    def recv(self) -> bytes | None:
        try:
            return os.read(self.fd, MAX_PACKET)
        except BlockingIOError:
            return None

    def send(self, parts: Sequence[bytes | memoryview]) -> None:
        os.writev(self.fd, parts)

    def close(self) -> None:
        """Close the TAP; one we created disappears with its last file descriptor."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_tap(spec: str) -> TapBackend:
    """A TAP backend from a command-line style spec: ``auto`` or ``tap=NAME``."""
    if spec == "auto":
        return TapBackend.create()
    if spec.startswith("tap=") and len(spec) > 4:
        return TapBackend.attach(spec[4:])
    raise ConfigError(f"network backend {spec!r}: expected 'auto' or 'tap=NAME'")


def _open_tun(name: str) -> tuple[int, str]:
    """Open /dev/net/tun as TAP `name` with a vnet header; (fd, actual interface name)."""
    if len(name.encode()) >= IFNAMSIZ:
        raise ConfigError(f"interface name {name!r} is longer than {IFNAMSIZ - 1} bytes")
    try:
        fd = os.open(TUN_DEVICE, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"cannot open {TUN_DEVICE}: {exc.strerror}") from exc
    try:
        reply = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HDR_SIZE))
        fcntl.ioctl(fd, TUNSETOFFLOAD, 0)
    except OSError as exc:
        os.close(fd)
        raise ConfigError(f"cannot set up TAP {name}: {exc.strerror} (CAP_NET_ADMIN needed?)") from exc
    return fd, _IFREQ.unpack(reply)[0].rstrip(b"\0").decode()


def _iproute():
    """pyroute2's netlink handle, imported on first use: pyroute2 takes ~0.1 s to import."""
    from pyroute2 import IPRoute

    return IPRoute()


def _link_index(ipr, ifname: str) -> int:
    indices = ipr.link_lookup(ifname=ifname)
    if not indices:
        raise ConfigError(f"TAP device {ifname} vanished")
    return indices[0]
