"""Attach virtio devices to a machine, over virtio-pci (a PCI slot, a BAR, INTA# routed to an
IOAPIC input) or virtio-mmio (a window and an IRQ, announced on the kernel command line),
and with or without the fast path.

Fast path (default): queue notifies are KVM ioeventfds served by a device thread, and
interrupts are KVM irqfds, so neither stops a vCPU in Python. Exit-driven path: the notify
write exits to the vCPU thread, which processes the queue before resuming the guest, and the
interrupt goes through KVM_IRQ_LINE. Both exist so the benchmark can compare them.
"""

from __future__ import annotations

from . import layout
from .errors import ConfigError
from .virtio import EventFdIrqLine, VirtioDevice, VirtioMmioTransport, VirtioWorker, virtio_mmio_cmdline
from .virtio.pci import BAR_SIZE, VirtioPciTransport

TRANSPORTS = ("pci", "mmio")


class VirtioSlot:
    """One attached device: where it lives, and everything to release when the VM goes."""

    def __init__(self, transport, kind: str, base: int, irq: int, worker: VirtioWorker | None, irq_line):
        self.transport, self.kind, self.base, self.irq = transport, kind, base, irq
        self.worker, self.irq_line = worker, irq_line

    @property
    def cmdline(self) -> str:
        """What the kernel command line must say for the guest to find the device."""
        return virtio_mmio_cmdline(self.base, self.irq) if self.kind == "mmio" else ""

    def stats(self) -> dict:
        """How this device was driven: transport, path, kicks by ioeventfd and by exit, interrupts."""
        return {
            "transport": self.kind,
            "path": "exit" if self.worker is None else "eventfd",
            "eventfd_kicks": 0 if self.worker is None else self.worker.kicks,
            "exit_kicks": self.transport.register_kicks,
            "interrupts": self.transport.interrupts,
        }

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.transport.close()
        if isinstance(self.irq_line, EventFdIrqLine):
            self.irq_line.close()


def attach_virtio(machine, device: VirtioDevice, fast_path: bool = True, transport: str = "pci") -> VirtioSlot:
    """Give `device` the next free IRQ of `machine` and a PCI slot or an MMIO window."""
    if transport not in TRANSPORTS:
        raise ConfigError(f"--virtio-transport must be one of {', '.join(TRANSPORTS)} (got {transport!r})")
    index = len(machine.virtio_slots)
    irqs = layout.virtio_irqs()
    if index >= min(layout.VIRTIO_MMIO_MAX_DEVICES, len(irqs)):
        raise ConfigError(f"at most {min(layout.VIRTIO_MMIO_MAX_DEVICES, len(irqs))} virtio devices")
    irq = irqs[index]
    accel = machine.accel
    fast_path = fast_path and accel.supports_eventfds
    if fast_path:
        irq_line = EventFdIrqLine()
        accel.register_irqfd(irq_line.fd, irq)
    else:
        irq_line = accel.irq_line(irq)
    name = f"virtio-{type(device).__name__.removesuffix('Device').lower()}{index}"
    if transport == "pci":
        carrier = VirtioPciTransport(device, machine.memory, irq_line, name=name)
        _slot, base = machine.pci.add(carrier, BAR_SIZE, irq)
    else:
        carrier = VirtioMmioTransport(device, machine.memory, irq_line, name=name)
        base = layout.VIRTIO_MMIO_BASE + index * layout.VIRTIO_MMIO_SIZE
        machine.add_mmio_device(carrier, base, layout.VIRTIO_MMIO_SIZE, name)
    worker = None
    if fast_path:
        worker = VirtioWorker(carrier)
        for registration in worker.ioeventfds(carrier.notify_points(base)):
            accel.register_ioeventfd(registration.fd, registration.address, registration.length,
                                     registration.datamatch)
        worker.start()
    slot = VirtioSlot(carrier, transport, base, irq, worker, irq_line)
    machine.virtio_slots.append(slot)
    return slot
