"""One guest RAM for the loader targets (mapping it per input would dominate the run):
64 MiB from address 0, with the PC's MMIO hole as kvmpy lays it out."""

from kvmpy import layout
from kvmpy.memory import GuestMemory

RAM_SIZE = 64 * layout.MiB
memory = GuestMemory.with_hole(RAM_SIZE, layout.MMIO_HOLE_START, layout.MMIO_HOLE_END)
