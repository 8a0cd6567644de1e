"""virtio-console (virtio 1.x section 5.3): one port, no MULTIPORT.

Queue 0 (receiveq) carries host input to the guest: `enqueue_input` buffers bytes and they
are copied into the guest's receive buffers as the guest makes them available.  Queue 1
(transmitq) carries guest output, handed to the injected `sink`.  The console size
(VIRTIO_CONSOLE_F_SIZE) is offered when `size` is given and can change with `resize`;
emergency writes (VIRTIO_CONSOLE_F_EMERG_WRITE: the driver writes one character to the
emerg_wr config field before the queues work) go to the sink too.
"""

from __future__ import annotations

import struct
import threading
from typing import Callable

from .constants import ID_CONSOLE, bit
from .device import VirtioDevice
from .queue import VirtqueueError

RECEIVE_QUEUE = 0
TRANSMIT_QUEUE = 1
QUEUE_SIZE = 64

F_SIZE = 0
F_EMERG_WRITE = 2

# struct virtio_console_config: le16 cols, le16 rows, le32 max_nr_ports, le32 emerg_wr
_CONFIG = struct.Struct("<HHII")
_EMERG_WR_OFFSET = 8

# Host input held while the guest has no receive buffers; older bytes are dropped beyond it.
MAX_PENDING_INPUT = 1 << 20


class ConsoleDevice(VirtioDevice):
    """virtio-console with one port; `sink(bytes)` receives everything the guest writes."""

    device_id = ID_CONSOLE

    def __init__(self, sink: Callable[[bytes], None], size: tuple[int, int] | None = None, queue_size: int = QUEUE_SIZE):
        features = bit(F_EMERG_WRITE) | (bit(F_SIZE) if size else 0)
        cols, rows = size or (0, 0)
        super().__init__(features, [queue_size, queue_size], _CONFIG.pack(cols, rows, 1, 0))
        self.sink = sink
        self._input = bytearray()
        self._input_lock = threading.Lock()  # enqueue_input runs outside the device lock

    def enqueue_input(self, data: bytes) -> None:
        """Queue host input for the guest (from any thread) and deliver what fits now."""
        with self._input_lock:
            self._input += data
            del self._input[: max(0, len(self._input) - MAX_PENDING_INPUT)]
        self.request_processing(RECEIVE_QUEUE)

    def resize(self, cols: int, rows: int) -> None:
        """Change the console size and tell the driver (configuration-change interrupt)."""
        _CONFIG.pack_into(self.config, 0, cols, rows, 1, 0)
        self.notify_config_changed()

    def write_config(self, offset: int, size: int, value: int) -> None:
        if offset == _EMERG_WR_OFFSET:
            self.sink(bytes([value & 0xFF]))
        else:
            super().write_config(offset, size, value)

    def process(self, queue_index: int) -> None:
        if queue_index == RECEIVE_QUEUE:
            self._receive()
        elif queue_index == TRANSMIT_QUEUE:
            self._transmit()

    def _receive(self) -> None:
        queue = self.queues[RECEIVE_QUEUE]
        with self._input_lock:
            while self._input and (chain := queue.pop()) is not None:
                if chain.readable:
                    raise VirtqueueError("virtio-console receive buffer is device-readable")
                count = min(chain.writable_len, len(self._input))
                chain.write(0, bytes(self._input[:count]))
                del self._input[:count]
                queue.add_used(chain.head, count)

    def _transmit(self) -> None:
        queue = self.queues[TRANSMIT_QUEUE]
        while (chain := queue.pop()) is not None:
            if chain.writable:
                raise VirtqueueError("virtio-console transmit buffer is device-writable")
            data = chain.read(0, chain.readable_len)
            queue.add_used(chain.head, 0)
            if data:
                self.sink(data)
