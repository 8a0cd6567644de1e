"""virtio-rng (virtio 1.x section 5.4): entropy for the guest from the host's getrandom().

One request queue; every chain is device-writable buffers the device fills with random
bytes.  A request gets at most `MAX_BYTES_PER_REQUEST` bytes (the spec lets the device fill
less than the whole buffer), which bounds the work one guest kick can cause.
"""

from __future__ import annotations

import os
from typing import Callable

from .constants import ID_RNG
from .device import VirtioDevice
from .queue import VirtqueueError

REQUEST_QUEUE = 0
QUEUE_SIZE = 256
MAX_BYTES_PER_REQUEST = 64 * 1024


class RngDevice(VirtioDevice):
    """virtio-rng; `source(n)` returns n random bytes (default `os.urandom`, i.e. getrandom)."""

    device_id = ID_RNG

    def __init__(self, source: Callable[[int], bytes] = os.urandom, queue_size: int = QUEUE_SIZE):
        super().__init__(features=0, queue_max_sizes=[queue_size])
        self.source = source

    def process(self, queue_index: int) -> None:
        queue = self.queues[queue_index]
        while (chain := queue.pop()) is not None:
            if chain.readable:
                raise VirtqueueError("virtio-rng request with device-readable buffers")
            count = min(chain.writable_len, MAX_BYTES_PER_REQUEST)
            chain.write(0, self.source(count))
            queue.add_used(chain.head, count)
