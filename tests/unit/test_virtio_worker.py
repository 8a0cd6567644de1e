"""The eventfd fast path: queue kicks through ioeventfd-style eventfds, interrupts through an
irqfd-style EventFdIrqLine, processed on the worker thread."""

import os
import select

import pytest

from kvmpy.virtio.constants import QUEUE_NOTIFY
from kvmpy.virtio.rng import RngDevice
from kvmpy.virtio.testing import MockGuest
from kvmpy.virtio.worker import EventFdIrqLine, IoEventFd, VirtioWorker

pytestmark = pytest.mark.virtio
BASE = 0xD000_0000


def wait_for_interrupt(irq: EventFdIrqLine, timeout: float = 5.0) -> int:
    readable, _, _ = select.select([irq.fd], [], [], timeout)
    assert readable, "no interrupt within the timeout"
    return os.eventfd_read(irq.fd)


@pytest.fixture
def fast_path():
    irq = EventFdIrqLine()
    guest = MockGuest(RngDevice(), irq=irq)
    worker = VirtioWorker(guest.transport)
    worker.start()
    (guest.queue,) = guest.driver.init()
    yield guest, worker, irq
    worker.stop()
    guest.close()
    irq.close()


def test_ioeventfd_registrations():
    guest = MockGuest(RngDevice())
    worker = VirtioWorker(guest.transport)
    (registration,) = worker.ioeventfds(guest.transport.notify_points(BASE))
    assert registration == IoEventFd(BASE + QUEUE_NOTIFY, 4, 0, worker.queue_eventfds[0])
    worker.stop()  # never started: still closes its eventfds
    guest.close()


def test_kick_through_the_eventfd_is_processed_on_the_worker(fast_path):
    guest, worker, irq = fast_path
    buf = guest.buffer(32)
    guest.queue.add_chain([(buf, 32, True)])
    os.eventfd_write(worker.queue_eventfds[0], 1)
    wait_for_interrupt(irq)
    assert guest.queue.take_used() == [(0, 32)]
    assert guest.memory.read(buf, 32) != bytes(32)
    # counted as an eventfd kick, not a register write (what Machine.stats() reports per path)
    assert (worker.kicks, guest.transport.register_kicks, guest.transport.interrupts) == (1, 0, 1)


def test_many_kicks_and_both_paths_mixed(fast_path):
    guest, worker, irq = fast_path
    for i in range(50):
        guest.queue.add_chain([(guest.buffer(8), 8, True)])
        if i % 2:
            os.eventfd_write(worker.queue_eventfds[0], 1)
        else:
            guest.driver.kick(0)  # exit-driven: processed synchronously here
        while guest.queue.used_idx != i + 1:
            wait_for_interrupt(irq)
        guest.queue.take_used()
    assert guest.transport.register_kicks == 25
    assert 1 <= worker.kicks <= 25  # kicks that arrive before the worker reads its eventfd merge


def test_errors_on_the_worker_become_needs_reset_and_the_thread_lives_on(fast_path):
    guest, worker, irq = fast_path
    guest.queue.add_chain([(0x10000, 8, True)])  # in the RAM hole
    os.eventfd_write(worker.queue_eventfds[0], 1)
    wait_for_interrupt(irq)  # the configuration-change interrupt
    assert guest.transport.needs_reset
    assert guest.memory.refused == []
    (guest.queue,) = guest.driver.init()
    guest.queue.add_chain([(guest.buffer(8), 8, True)])
    os.eventfd_write(worker.queue_eventfds[0], 1)
    wait_for_interrupt(irq)
    assert guest.queue.take_used() == [(0, 8)]


def test_eventfd_irq_line_counts_pulses():
    irq = EventFdIrqLine()
    irq.pulse()
    irq.set_level(True)
    irq.set_level(False)
    assert os.eventfd_read(irq.fd) == 2
    irq.close()


def test_a_device_model_exception_on_the_worker_becomes_needs_reset():
    class FailsOnce(RngDevice):
        failed = False

        def process(self, queue_index):
            if not self.failed:
                FailsOnce.failed = True
                raise RuntimeError("device model bug")
            super().process(queue_index)

    irq = EventFdIrqLine()
    guest = MockGuest(FailsOnce(), irq=irq)
    worker = VirtioWorker(guest.transport)
    worker.start()
    (queue,) = guest.driver.init()
    os.eventfd_write(worker.queue_eventfds[0], 1)
    wait_for_interrupt(irq)
    assert guest.transport.needs_reset
    (queue,) = guest.driver.init()
    queue.add_chain([(guest.buffer(8), 8, True)])
    os.eventfd_write(worker.queue_eventfds[0], 1)
    wait_for_interrupt(irq)
    assert queue.take_used() == [(0, 8)]
    worker.stop()
    guest.close()
    irq.close()
