"""Exit decoding from made-up kvm_run pages, and exit handling from made-up exits."""

import pytest

from kvmpy.bus import Bus
from kvmpy.exits import Buses, decode_exit, handle_exit
from kvmpy.exits.kinds import (
    RESUME,
    Debug,
    Fallback,
    FailEntry,
    GuestDebug,
    Halt,
    InternalError,
    Interrupted,
    MmioRead,
    MmioWrite,
    PortIn,
    PortOut,
    Resume,
    Shutdown,
    Stop,
    SystemEvent,
    Unhandled,
    UnknownExit,
)
from kvmpy.native import ffi, lib

RUN_SIZE = 4096
DATA_OFFSET = 0x200  # where our fake KVM puts port data, as real KVM does (after the struct)


def fake_run():
    buffer = ffi.new("char[]", RUN_SIZE)
    return ffi.cast("struct kvm_run *", buffer), ffi.buffer(buffer), buffer


def test_decode_port_out_string():
    run, raw, _keep = fake_run()
    run.exit_reason = lib.KVM_EXIT_IO
    run.io.direction, run.io.size, run.io.port, run.io.count = lib.KVM_EXIT_IO_OUT, 2, 0x3F8, 3
    run.io.data_offset = DATA_OFFSET
    raw[DATA_OFFSET : DATA_OFFSET + 6] = b"aabbcc"
    assert decode_exit(run, memoryview(raw)) == PortOut(0x3F8, 2, 3, b"aabbcc")


def test_decode_port_in_names_where_the_answer_goes():
    run, raw, _keep = fake_run()
    run.exit_reason = lib.KVM_EXIT_IO
    run.io.direction, run.io.size, run.io.port, run.io.count = lib.KVM_EXIT_IO_IN, 1, 0x71, 1
    run.io.data_offset = DATA_OFFSET
    assert decode_exit(run, memoryview(raw)) == PortIn(0x71, 1, 1, DATA_OFFSET)


def test_decode_mmio_write_and_read():
    run, raw, _keep = fake_run()
    run.exit_reason = lib.KVM_EXIT_MMIO
    run.mmio.phys_addr, run.mmio.len, run.mmio.is_write = 0xD0000050, 4, 1
    for i, byte in enumerate(b"\x78\x56\x34\x12"):
        run.mmio.data[i] = byte
    assert decode_exit(run, memoryview(raw)) == MmioWrite(0xD0000050, 4, 0x12345678)
    run.mmio.is_write = 0
    exit = decode_exit(run, memoryview(raw))
    assert isinstance(exit, MmioRead) and (exit.address, exit.size) == (0xD0000050, 4)
    assert exit.response_offset == ffi.offsetof("struct kvm_run", "mmio", "data")


def test_decode_emulation_failure_carries_instruction_bytes():
    run, raw, _keep = fake_run()
    run.exit_reason = lib.KVM_EXIT_INTERNAL_ERROR
    failure = run.emulation_failure
    failure.suberror, failure.ndata = lib.KVM_INTERNAL_ERROR_EMULATION, 3
    failure.flags = lib.KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
    failure.insn_size = 3
    for i, byte in enumerate(b"\x0f\x01\xca"):
        failure.insn_bytes[i] = byte
    exit = decode_exit(run, memoryview(raw))
    assert exit.is_emulation_failure and exit.instruction == b"\x0f\x01\xca"


@pytest.mark.parametrize(
    "reason,expected",
    [
        (lib.KVM_EXIT_HLT, Halt()),
        (lib.KVM_EXIT_SHUTDOWN, Shutdown()),
        (lib.KVM_EXIT_INTR, Interrupted()),
        (lib.KVM_EXIT_FAIL_ENTRY, FailEntry(0, 0)),
        (lib.KVM_EXIT_DEBUG, GuestDebug(0, 0)),
        (lib.KVM_EXIT_SYSTEM_EVENT, SystemEvent(0, ())),
        (999, UnknownExit(999)),
    ],
)
def test_decode_other_exits(reason, expected):
    run, raw, _keep = fake_run()
    run.exit_reason = reason
    assert decode_exit(run, memoryview(raw)) == expected


class Register:
    def __init__(self, value=0):
        self.value, self.writes, self.reads = value, [], 0

    def read(self, offset, size):
        self.reads += 1
        return self.value + offset

    def write(self, offset, size, value):
        self.writes.append((offset, size, value))


@pytest.fixture
def buses():
    buses = Buses(Bus("port"), Bus("mmio"))
    buses.device = Register(0x40)
    buses.ports.insert(buses.device, 0x3F8, 8)
    buses.mmio.insert(buses.device, 0xD0000000, 0x1000)
    return buses


def test_port_out_reaches_the_device_at_its_offset(buses):
    assert handle_exit(PortOut(0x3F9, 1, 1, b"\x05"), buses) is RESUME
    assert buses.device.writes == [(1, 1, 5)]


def test_string_out_is_one_write_per_element(buses):
    handle_exit(PortOut(0x3F8, 2, 3, b"\x01\x00\x02\x00\x03\x00"), buses)
    assert buses.device.writes == [(0, 2, 1), (0, 2, 2), (0, 2, 3)]


def test_port_in_answers_with_device_bytes(buses):
    assert handle_exit(PortIn(0x3FD, 1, 1, 0), buses) == Resume(bytes([0x45]))
    assert handle_exit(PortIn(0x3F8, 2, 2, 0), buses) == Resume(b"\x40\x00\x40\x00")
    assert buses.device.reads == 3


def test_unclaimed_port_reads_all_ones_and_is_counted(buses):
    assert handle_exit(PortIn(0x2F8, 1, 1, 0), buses) == Resume(b"\xff")
    assert handle_exit(PortOut(0x2F8, 1, 1, b"x"), buses) is RESUME
    assert buses.unclaimed == {"port 0x2f8": 2}


def test_mmio_read_and_write(buses):
    assert handle_exit(MmioRead(0xD0000004, 4, 0), buses) == Resume((0x44).to_bytes(4, "little"))
    assert handle_exit(MmioWrite(0xD0000008, 8, 2**63), buses) is RESUME
    assert buses.device.writes == [(8, 8, 2**63)]
    assert handle_exit(MmioRead(0xE0000000, 2, 0), buses) == Resume(b"\xff\xff")


def test_triple_fault_stops_with_a_failure_code(buses):
    action = handle_exit(Shutdown(), buses)
    assert isinstance(action, Stop) and action.reason.kind == "shutdown" and action.reason.exit_code != 0


@pytest.mark.parametrize(
    "kind,stop_kind,code",
    [(lib.KVM_SYSTEM_EVENT_SHUTDOWN, "poweroff", 0), (lib.KVM_SYSTEM_EVENT_RESET, "reset", 0),
     (lib.KVM_SYSTEM_EVENT_CRASH, "shutdown", 1)],
)
def test_system_events(buses, kind, stop_kind, code):
    action = handle_exit(SystemEvent(kind), buses)
    assert (action.reason.kind, action.reason.exit_code) == (stop_kind, code)


def test_emulation_failure_goes_to_the_fallback(buses):
    exit = InternalError(lib.KVM_INTERNAL_ERROR_EMULATION, (), b"\xcc")
    assert handle_exit(exit, buses) == Fallback(exit)


@pytest.mark.parametrize(
    "exit", [InternalError(lib.KVM_INTERNAL_ERROR_SIMUL_EX), FailEntry(0x21, 0), UnknownExit(77)]
)
def test_everything_else_is_unhandled_with_a_reason(buses, exit):
    action = handle_exit(exit, buses)
    assert isinstance(action, Unhandled) and action.why


def test_a_debug_exit_goes_to_the_debugger(buses):
    exit = GuestDebug(1, 0x1000, 0x4000)
    assert handle_exit(exit, buses) == Debug(exit)


def test_kick_resumes(buses):
    assert handle_exit(Interrupted(), buses) is RESUME
