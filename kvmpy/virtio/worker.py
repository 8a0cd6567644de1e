"""The eventfd fast path: queue kicks and interrupts that bypass the vCPU thread.

Exit-driven path: a notify register write exits to the VMM and the transport's `write`
processes the queue synchronously on the vCPU thread.

Eventfd-driven path: the VMM registers each of `VirtioWorker.queue_eventfds` with KVM's
ioeventfd at the queue's notify register (the transport's `notify_points`: address, width,
datamatch = queue index), so a kick only signals an eventfd and the vCPU resumes at once;
the worker thread waits on those eventfds and processes the queue.  `EventFdIrqLine` is the other direction: registered as a KVM
irqfd for the device's GSI, a `pulse()` is one eventfd write the kernel turns into an
interrupt.

Both paths go through the transport's per-device lock, so they may be mixed.
"""

from __future__ import annotations

import logging
import os
import selectors
import threading
from dataclasses import dataclass

from .transport import VirtioTransport

log = logging.getLogger(__name__)


def _new_eventfd() -> int:
    return os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)


class EventFdIrqLine:
    """An IRQ line that is an eventfd: register `fd` as a KVM irqfd for the device's GSI.

    An irqfd injects an edge; `set_level(True)` therefore also signals one edge and
    `set_level(False)` does nothing (level-triggered lines would need a resample fd).
    """

    def __init__(self) -> None:
        self.fd = _new_eventfd()

    def pulse(self) -> None:
        os.eventfd_write(self.fd, 1)

    def set_level(self, high: bool) -> None:
        if high:
            self.pulse()

    def close(self) -> None:
        os.close(self.fd)


@dataclass(frozen=True)
class IoEventFd:
    """One KVM_IOEVENTFD registration the VMM should make: MMIO write at `address` of
    `length` bytes whose value equals `datamatch` signals `fd`."""

    address: int
    length: int
    datamatch: int
    fd: int


class VirtioWorker:
    """A thread that processes a transport's queues when their notify eventfds fire."""

    def __init__(self, transport: VirtioTransport, name: str | None = None):
        self.transport = transport
        self.queue_eventfds = [_new_eventfd() for _ in transport.queues]
        self._wakeup = _new_eventfd()
        self._stopping = False
        self.kicks = 0  # queue notifications that arrived through an ioeventfd
        self._thread = threading.Thread(target=self._run, name=name or f"virtio-{transport.name}", daemon=True)

    def ioeventfds(self, notify_points: list[tuple[int, int]]) -> list[IoEventFd]:
        """The ioeventfd registrations for the transport's (address, width) notify register
        per queue; the value written is the queue index."""
        return [IoEventFd(address, width, index, fd)
                for index, ((address, width), fd) in enumerate(zip(notify_points, self.queue_eventfds))]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Wake the thread, wait for it, and close the eventfds (unregister them from KVM first)."""
        if self._stopping:
            return
        self._stopping = True
        os.eventfd_write(self._wakeup, 1)
        if self._thread.is_alive():
            self._thread.join()
        for fd in (*self.queue_eventfds, self._wakeup):
            os.close(fd)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wakeup, selectors.EVENT_READ, None)
            for index, fd in enumerate(self.queue_eventfds):
                selector.register(fd, selectors.EVENT_READ, index)
            while not self._stopping:
                for key, _ in selector.select():
                    os.eventfd_read(key.fd)  # resets the counter: kicks since the last read merge
                    if key.data is not None and not self._stopping:
                        self.kicks += 1
                        self._notify(key.data)

    def _notify(self, index: int) -> None:
        try:
            self.transport.notify(index)
        except Exception:  # the transport already contains device errors; this is a backstop
            log.exception("%s: queue %d notification failed", self.transport.name, index)
