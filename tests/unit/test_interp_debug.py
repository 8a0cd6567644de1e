"""The interpreter's debugger facility (what --gdb uses under --accel interp): breakpoints
checked before each instruction, watchpoints on data accesses, single steps without interrupts."""

import pytest

from kvmpy.interp import StopReason
from kvmpy.interp.cpu import WatchKind
from kvmpy.interp.testing import CODE_ADDR, DATA_ADDR, Machine, assemble

pytestmark = pytest.mark.gdb

CODE = assemble(f"""
    mov eax, 1
    mov ebx, 2
    mov qword ptr [{DATA_ADDR:#x}], rbx
    mov rcx, qword ptr [{DATA_ADDR + 8:#x}]
    add eax, ebx
    hlt""")
MOV_EBX = CODE_ADDR + 5        # mov eax, 1 is 5 bytes
STORE = MOV_EBX + 5
LOAD = STORE + 8               # mov [abs32], r64: REX.W 89 1C 25 disp32
AFTER_LOAD = LOAD + 8


@pytest.fixture
def machine():
    machine = Machine()
    machine.prepare(CODE)
    return machine


def test_a_breakpoint_stops_before_its_instruction(machine):
    cpu = machine.cpu
    cpu.set_breakpoints([MOV_EBX])
    result = cpu.run(100, breakpoints=True)
    assert result.reason == StopReason.BREAKPOINT
    assert cpu.get("rip") == MOV_EBX and cpu.get("rax") == 1 and cpu.get("rbx") == 0
    assert result.executed == 1


def test_breakpoints_are_ignored_without_the_flag_and_after_removal(machine):
    cpu = machine.cpu
    cpu.set_breakpoints([MOV_EBX])
    assert cpu.run(100).reason == StopReason.HLT
    machine.prepare(CODE)
    cpu.set_breakpoints([])
    assert cpu.run(100, breakpoints=True).reason == StopReason.HLT
    assert cpu.get("rax") == 3


def test_a_single_step_runs_exactly_one_instruction_past_a_breakpoint(machine):
    cpu = machine.cpu
    cpu.set_breakpoints([CODE_ADDR])
    assert cpu.run(100, breakpoints=True).reason == StopReason.BREAKPOINT
    step = cpu.run(1, no_interrupts=True)
    assert step.executed == 1 and cpu.get("rip") == MOV_EBX


def test_a_step_with_interrupts_blocked_leaves_the_interrupt_pending(machine):
    cpu = machine.cpu
    cpu.set("rflags", cpu.get("rflags") | (1 << 9))
    cpu.raise_irq()
    step = cpu.run(1, no_interrupts=True)
    assert step.executed == 1 and cpu.get("rip") == MOV_EBX
    assert cpu.raw.irq_pending == 1


@pytest.mark.parametrize("kind, address, stops_after", [
    (WatchKind.WRITE, DATA_ADDR, LOAD),
    (WatchKind.WRITE, DATA_ADDR + 7, LOAD),             # overlaps the 8-byte store's last byte
    (WatchKind.READ, DATA_ADDR + 8, AFTER_LOAD),
    (WatchKind.READ | WatchKind.WRITE, DATA_ADDR + 12, AFTER_LOAD),
])
def test_a_watchpoint_stops_after_the_accessing_instruction(machine, kind, address, stops_after):
    cpu = machine.cpu
    cpu.set_watchpoints([(DATA_ADDR + 0x100, 8, WatchKind.READ | WatchKind.WRITE), (address, 1, kind)])
    result = cpu.run(100)
    assert result.reason == StopReason.WATCHPOINT
    assert cpu.watch_hit == 1 and cpu.get("rip") == stops_after


def test_a_watchpoint_of_the_wrong_kind_or_place_does_not_stop(machine):
    cpu = machine.cpu
    cpu.set_watchpoints([(DATA_ADDR, 8, WatchKind.READ), (DATA_ADDR + 16, 8, WatchKind.READ | WatchKind.WRITE)])
    assert cpu.run(100).reason == StopReason.HLT
    assert cpu.watch_hit is None
