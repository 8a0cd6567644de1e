"""virtio devices on the virtio-mmio transport (virtio 1.x, split virtqueues).

Wiring one device into the VM:

    device = BlockDevice("disk.img")
    transport = VirtioMmioTransport(device, memory, irq_line)
    mmio_bus.insert(transport, base, VIRTIO_MMIO_SIZE, "virtio-blk")
    cmdline += " " + virtio_mmio_cmdline(base, irq)

and, for the eventfd fast path, a `VirtioWorker(transport)` whose `ioeventfds(base)` are
registered with KVM_IOEVENTFD, with an `EventFdIrqLine` (registered as a KVM irqfd) as the
transport's IRQ line.  `worker.py` explains both paths.
"""

from .blk import BlockDevice
from .console import ConsoleDevice
from .device import VirtioDevice
from .mmio import VirtioMmioTransport, virtio_mmio_cmdline
from .net import NetDevice
from .netbackend import MemoryBackend, NetBackend
from .p9 import P9Device
from .queue import VirtqueueError
from .rng import RngDevice
from .worker import EventFdIrqLine, IoEventFd, VirtioWorker

__all__ = [
    "BlockDevice",
    "ConsoleDevice",
    "EventFdIrqLine",
    "IoEventFd",
    "MemoryBackend",
    "NetBackend",
    "NetDevice",
    "P9Device",
    "RngDevice",
    "VirtioDevice",
    "VirtioMmioTransport",
    "VirtioWorker",
    "VirtqueueError",
    "virtio_mmio_cmdline",
]
