"""virtio-net (virtio 1.x section 5.1): one receive and one transmit queue, no offloads.

Only VIRTIO_NET_F_MAC is offered besides VERSION_1, so every packet carries a 12-byte
`virtio_net_hdr_v1` that must say "no checksum offload, no GSO".  The device enforces that in
both directions: what it sends to the backend and what it writes to the guest carry a clean
header (num_buffers = 1 on receive, as VERSION_1 without MRG_RXBUF requires), whatever the
guest or the host put there.

Transmit runs when the guest kicks the transmit queue: each chain (header + frame, all
device-readable) is gathered from guest memory and written to the backend in one call.

Receive runs on the device's own thread, which blocks in poll() on the backend's fd and a
wakeup eventfd -- never a busy loop or a sleep.  It polls the backend only while the guest
has receive buffers: when they run out, the packet in hand is kept and the thread waits
until the guest kicks the receive queue.  Packets are not dropped while buffers are coming,
and `close()` wakes the thread however long it has been waiting.
"""

from __future__ import annotations

import logging
import os
import select
import threading

from ..memory import GuestMemory
from .constants import ID_NET, bit
from .device import VirtioDevice
from .netbackend import VNET_HDR_SIZE, NetBackend
from .queue import Virtqueue, VirtqueueError

log = logging.getLogger(__name__)

RECEIVE_QUEUE = 0
TRANSMIT_QUEUE = 1
QUEUE_SIZE = 256
F_MAC = 5

_RX_HEADER = bytes(VNET_HDR_SIZE - 2) + (1).to_bytes(2, "little")  # num_buffers = 1
_TX_HEADER = bytes(VNET_HDR_SIZE)


def random_mac() -> bytes:
    """A random unicast, locally administered MAC address."""
    first, *rest = os.urandom(6)
    return bytes([first & 0xFC | 0x02, *rest])


class NetDevice(VirtioDevice):
    """virtio-net over `backend`; `mac` defaults to a random locally administered address."""

    device_id = ID_NET

    def __init__(self, backend: NetBackend, mac: bytes | None = None, queue_size: int = QUEUE_SIZE):
        self.mac = mac or random_mac()
        if len(self.mac) != 6:
            raise ValueError("a MAC address has 6 bytes")
        # struct virtio_net_config: mac, le16 status, le16 max_virtqueue_pairs
        config = self.mac + (0).to_bytes(2, "little") + (1).to_bytes(2, "little")
        super().__init__(bit(F_MAC), [queue_size, queue_size], config)
        self.backend = backend
        self.rx_dropped = 0
        self.tx_dropped = 0
        self._pending: bytes | None = None  # a received packet waiting for a guest buffer
        self._poll_backend = False  # whether the receive thread should wait for packets
        self._rx_stalled = False  # the thread's last attempt found the device not live
        self._closed = False
        self._wakeup = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._thread = threading.Thread(target=self._receive_loop, name="virtio-net-rx", daemon=True)
        self._thread.start()

    # --- Life cycle ------------------------------------------------------------------------

    def activate(self, memory: GuestMemory, queues: list[Virtqueue], driver_features: int) -> None:
        super().activate(memory, queues, driver_features)
        self._rx_stalled = False
        self._set_poll_backend(True)

    def reset(self) -> None:
        super().reset()
        self._set_poll_backend(False)

    def close(self) -> None:
        """Stop the receive thread and close the backend."""
        if self._closed:
            return
        self._closed = True
        os.eventfd_write(self._wakeup, 1)
        self._thread.join()
        os.close(self._wakeup)
        self.backend.close()

    # --- Queue processing (device lock held) ---------------------------------------------------

    def process(self, queue_index: int) -> None:
        if queue_index == RECEIVE_QUEUE:
            self._receive()
        elif queue_index == TRANSMIT_QUEUE:
            self._transmit()

    def _transmit(self) -> None:
        queue = self.queues[TRANSMIT_QUEUE]
        while (chain := queue.pop()) is not None:
            if chain.writable:
                raise VirtqueueError("virtio-net transmit chain has device-writable buffers")
            if chain.readable_len < VNET_HDR_SIZE:
                raise VirtqueueError("virtio-net transmit chain shorter than its header")
            frame = chain.readable_views(VNET_HDR_SIZE, chain.readable_len - VNET_HDR_SIZE)
            try:
                self.backend.send([_TX_HEADER, *frame])
            except OSError as exc:
                self.tx_dropped += 1
                log.debug("virtio-net: backend refused a %d-byte frame: %s", chain.readable_len, exc)
            queue.add_used(chain.head, 0)

    def _receive(self) -> None:
        """Move packets from the backend into guest buffers until either runs out."""
        queue = self.queues[RECEIVE_QUEUE]
        if self._rx_stalled:
            self._rx_stalled = False
            if threading.current_thread() is not self._thread:
                os.eventfd_write(self._wakeup, 1)
        while True:
            if self._pending is None:
                self._pending = self.backend.recv()
                if self._pending is None:
                    self._set_poll_backend(True)
                    return
            chain = queue.pop()
            if chain is None:
                self._set_poll_backend(False)  # wait for the guest's next receive kick
                return
            packet, self._pending = self._pending, None
            if chain.readable:
                raise VirtqueueError("virtio-net receive chain has device-readable buffers")
            if not VNET_HDR_SIZE <= len(packet) <= chain.writable_len:
                self.rx_dropped += 1  # the guest sees a zero-length (error) completion
                queue.add_used(chain.head, 0)
                continue
            chain.write(0, _RX_HEADER)
            chain.write(VNET_HDR_SIZE, memoryview(packet)[VNET_HDR_SIZE:])
            queue.add_used(chain.head, len(packet))

    # --- Receive thread ----------------------------------------------------------------------

    def _set_poll_backend(self, wanted: bool) -> None:
        if self._poll_backend != wanted:
            self._poll_backend = wanted
            os.eventfd_write(self._wakeup, 1)

    def _receive_loop(self) -> None:
        """Wait for packets while the guest has buffers; hand them over under the device lock.

        Before each attempt the thread marks itself stalled; `_receive` clears the mark.  If
        it is still set afterwards the device was not live (reset, or its receive queue not
        ready), and the thread stops polling the backend -- instead of spinning on a
        readable fd -- until `_receive` runs again (the guest's next receive kick).
        """
        poller = select.poll()
        poller.register(self._wakeup, select.POLLIN)
        backend_fd, polling = self.backend.fileno(), False
        while not self._closed:
            wanted = self._poll_backend and not self._rx_stalled
            if wanted != polling:
                polling = wanted
                if polling:
                    poller.register(backend_fd, select.POLLIN)
                else:
                    poller.unregister(backend_fd)
            ready = {fd for fd, _ in poller.poll()}
            if self._wakeup in ready:
                os.eventfd_read(self._wakeup)
            if backend_fd in ready and polling and not self._closed:
                self._rx_stalled = True
                self.request_processing(RECEIVE_QUEUE)
