"""PCI configuration mechanism #1 at port 0xCF8 on kvmpy's bus 0 (the host bridge, a
virtio-pci function, pvpanic): address and data registers at every size and byte offset,
BAR sizing probes and BAR moves, and accesses where the BARs now are.  A BAR moved onto
another device must be refused, never leave two devices on one address."""

from kvmpy import layout
from kvmpy.bus import Bus
from kvmpy.devices.pvpanic import BAR_SIZE as PVPANIC_BAR_SIZE
from kvmpy.devices.pvpanic import PvPanicPci
from kvmpy.irq import RecordingIrqLine
from kvmpy.memory import MemoryRegion
from kvmpy.pci.host import DATA_REGISTER, ENABLE
from kvmpy.pci.root import PciRoot
from kvmpy.virtio import pci
from kvmpy.virtio.pci import VirtioPciTransport
from kvmpy.virtio.rng import RngDevice
from kvmpy.virtio.testing import MockGuest, TracingGuestMemory

from ._support import Input

PORT = layout.PCI_CONFIG_PORT
SLOTS_USED = 4  # the bridge, two functions, one empty slot
MMIO_REACH = 0x20000  # how far past the window's start the guest probes


def one_input(data: bytes) -> None:
    memory = TracingGuestMemory([MemoryRegion(base, size) for base, size in MockGuest.REGIONS])
    ports, mmio = Bus("port"), Bus("mmio")
    root = PciRoot(ports, mmio)
    root.add(VirtioPciTransport(RngDevice(), memory, RecordingIrqLine()), pci.BAR_SIZE, irq=5)
    root.add(PvPanicPci(lambda event: None), PVPANIC_BAR_SIZE, irq=None)
    reader = Input(data)
    try:
        while not reader.exhausted:
            op = reader.u8()
            kind, size = op & 3, (1, 2, 4)[(op >> 2) % 3]
            if kind == 0:  # select a function and register
                enable = 0 if op & 0x80 else ENABLE
                ports.write(PORT, 4, enable | (reader.u8() % SLOTS_USED) << 11 | reader.u8() | (op >> 4 & 7) << 8)
            elif kind == 1:
                value = ports.read(PORT + DATA_REGISTER + (op >> 4 & 3), size)
                assert 0 <= value < 1 << 8 * size
            elif kind == 2:
                ports.write(PORT + DATA_REGISTER + (op >> 4 & 3), size, reader.uint(size))
            else:
                address = layout.PCI_MMIO_BASE + reader.u32() % MMIO_REACH
                if op & 0x80:
                    mmio.write(address, size, reader.u32() & ((1 << 8 * size) - 1))
                else:
                    mmio.read(address, size)
        mappings = sorted(mmio, key=lambda mapping: mapping.base)
        for first, second in zip(mappings, mappings[1:]):
            assert first.end <= second.base, (first, second)
        assert memory.refused == []
    finally:
        memory.close()
