"""Exit decoding from raw `kvm_run` bytes and the dispatch of the result to a real
machine's buses: what a vCPU thread does with every exit a guest causes.

The guest chooses the port or address, the access's size and count and the data; the rest
of the page comes raw from the input.  What KVM itself guarantees is kept: port data lives
at `data_offset` in the page after the struct, port sizes are 1, 2 or 4 with the data
inside that page, MMIO lengths are 1 to 8."""

from kvmpy.exits.decode import decode_exit
from kvmpy.exits.dispatch import handle_exit
from kvmpy.exits.kinds import MmioRead, PortIn, Resume
from kvmpy.layout import PAGE_SIZE
from kvmpy.machine import MIN_MEM_SIZE, Machine
from kvmpy.native import ffi, lib
from kvmpy.virtio.rng import RngDevice

from ._support import Input, discard

RUN_SIZE = ffi.sizeof("struct kvm_run")
UNION_OFFSET = ffi.offsetof("struct kvm_run", "io")
UNION_BYTES = 64  # io, mmio, system_event, internal, fail_entry, debug all start in these
REASONS = (lib.KVM_EXIT_IO, lib.KVM_EXIT_MMIO, lib.KVM_EXIT_HLT, lib.KVM_EXIT_SHUTDOWN, lib.KVM_EXIT_INTR,
           lib.KVM_EXIT_SYSTEM_EVENT, lib.KVM_EXIT_INTERNAL_ERROR, lib.KVM_EXIT_FAIL_ENTRY, lib.KVM_EXIT_DEBUG)
EXITS_PER_INPUT = 16
PORT_SIZES = (1, 2, 4)


def _machine() -> Machine:
    machine = Machine(mem_size=MIN_MEM_SIZE, accel="interp", serial_output=discard)
    machine.add_virtio(RngDevice(), fast_path=False, transport="mmio")
    machine.add_virtio(RngDevice(), fast_path=False, transport="pci")
    return machine


def _fill_run(run, page: memoryview, reader: Input) -> None:
    """One exit as KVM would leave it, from the input."""
    choice = reader.u8()
    run.exit_reason = REASONS[choice % len(REASONS)] if choice < 0xF0 else reader.u32()
    page[UNION_OFFSET : UNION_OFFSET + UNION_BYTES] = reader.take(UNION_BYTES)
    if run.exit_reason == lib.KVM_EXIT_IO:
        io = run.io
        io.size = PORT_SIZES[io.size % len(PORT_SIZES)]
        io.count = 1 + io.count % (PAGE_SIZE // io.size) if io.count & 0x80 else 1
        io.data_offset = PAGE_SIZE
        page[PAGE_SIZE : PAGE_SIZE + io.size * io.count] = reader.take(io.size * io.count)
    elif run.exit_reason == lib.KVM_EXIT_MMIO:
        run.mmio.len = 1 + run.mmio.len % 8


def one_input(data: bytes) -> None:
    reader = Input(data)
    buffer = ffi.new("char[]", 2 * PAGE_SIZE)
    run, page = ffi.cast("struct kvm_run *", buffer), memoryview(ffi.buffer(buffer))
    with _machine() as machine:
        for _ in range(EXITS_PER_INPUT):
            if reader.exhausted:
                break
            _fill_run(run, page, reader)
            exit = decode_exit(run, page)
            action = handle_exit(exit, machine.buses)
            if isinstance(exit, PortIn):
                assert isinstance(action, Resume) and len(action.response) == exit.size * exit.count, (exit, action)
            elif isinstance(exit, MmioRead):
                assert isinstance(action, Resume) and len(action.response) == exit.size, (exit, action)
