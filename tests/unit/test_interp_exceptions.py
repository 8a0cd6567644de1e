"""Exceptions, interrupts, paging faults and privilege changes in the software interpreter."""

import pytest

from kvmpy.interp import StopReason
from kvmpy.interp.testing import (CODE_ADDR, DATA_ADDR, IDT_ADDR, KSTACK_TOP, Machine, PML4_ADDR,
                                  SEL_CODE64, SEL_UCODE64, STACK_TOP, STUB_ADDR, assemble,
                                  pte_address, run_snippet)

PF_P, PF_W, PF_U, PF_RSVD, PF_I = 1, 2, 4, 8, 16


@pytest.fixture(scope="module")
def machine():
    return Machine()


def test_ud2_and_undefined_opcode_raise_ud_through_idt(machine):
    for code in (assemble("ud2"), bytes([0x0F, 0x0B]), bytes([0xD6]), bytes([0x0F, 0xFF, 0xC0]), bytes([0x06])):
        r = machine.run(code)
        assert r.exception == 6
        assert r.frame["rip"] == CODE_ADDR
        assert r.frame["cs"] == SEL_CODE64
        assert r.stop == StopReason.HLT


def test_int3_through_idt_and_back_with_iretq(machine):
    code = assemble(f"""
        lea rax, [rip + handler]
        mov word ptr [{IDT_ADDR} + 3*16], ax
        shr rax, 16
        mov word ptr [{IDT_ADDR} + 3*16 + 6], ax
        mov rbx, 1
        int3
        add rbx, 100
        hlt
    handler:
        mov rcx, [rsp]          # saved RIP: after the int3
        add rbx, 10
        iretq""")
    r = machine.run(code)
    assert r.exception is None
    assert r.regs["rbx"] == 111
    assert r.regs["rcx"] == CODE_ADDR + code.index(b"\xcc") + 1
    assert r.regs["rsp"] == STACK_TOP


def test_int_n_and_interrupt_gate_clears_if(machine):
    r = machine.run(assemble("sti\nint 0x80\nhlt"))
    assert r.exception == 0x80
    assert r.frame["rflags"] & 0x200
    assert not r.flags & 0x200


def test_page_fault_not_present_error_code_and_cr2():
    def unmap(mem):
        mem.write_int(pte_address(DATA_ADDR), 8, 0)
    r = run_snippet(assemble("mov rax, [rbx + 8]\nhlt"), {"rbx": DATA_ADDR}, memory_setup=unmap)
    assert r.exception == 14
    assert r.frame["error_code"] == 0
    assert r.cpu.get("cr2") == DATA_ADDR + 8
    r = run_snippet(assemble("mov [rbx], rax\nhlt"), {"rbx": DATA_ADDR}, memory_setup=unmap)
    assert r.frame["error_code"] == PF_W


def test_page_fault_write_to_readonly_with_wp():
    def readonly(mem):
        mem.write_int(pte_address(DATA_ADDR), 8, DATA_ADDR | 0x5)     # P|U, not W
    r = run_snippet(assemble("add qword ptr [rbx], 1\nhlt"), {"rbx": DATA_ADDR}, memory_setup=readonly)
    assert r.exception == 14
    assert r.frame["error_code"] == PF_P | PF_W
    assert r.frame["rip"] == CODE_ADDR


def test_page_fault_user_access_to_supervisor_page():
    def supervisor(mem):
        mem.write_int(pte_address(DATA_ADDR), 8, DATA_ADDR | 0x3)     # P|W, not U
    r = run_snippet(assemble("mov rax, [rbx]\nhlt"), {"rbx": DATA_ADDR}, cpl=3, memory_setup=supervisor)
    assert r.exception == 14
    assert r.frame["error_code"] == PF_P | PF_U
    assert r.frame["cs"] == SEL_UCODE64
    assert r.regs["rsp"] == KSTACK_TOP - 48                            # switched to TSS.RSP0


def test_nx_fetch_fault():
    def nx(mem):
        mem.write_int(pte_address(DATA_ADDR), 8, DATA_ADDR | 0x7 | (1 << 63))
    r = run_snippet(assemble(f"mov rax, {DATA_ADDR}\njmp rax"), memory_setup=nx)
    assert r.exception == 14
    assert r.frame["error_code"] == PF_P | PF_I
    assert r.frame["rip"] == DATA_ADDR


def test_accessed_and_dirty_bits_are_set():
    r = run_snippet(assemble("mov rax, [rbx]\nmov [rbx + 0x1000], rax\nhlt"), {"rbx": DATA_ADDR})
    assert r.memory.read_int(pte_address(DATA_ADDR), 8) & 0x60 == 0x20
    assert r.memory.read_int(pte_address(DATA_ADDR + 0x1000), 8) & 0x60 == 0x60


def test_invlpg_and_cr3_reload_drop_stale_translations():
    pte = pte_address(DATA_ADDR)
    code = assemble(f"""
        mov rax, [rbx]              # caches the translation
        mov qword ptr [{pte}], {DATA_ADDR + 0x1000} | 7
        mov rcx, [rbx]              # stale: still the old page
        invlpg [rbx]
        mov rdx, [rbx]              # new page
        hlt""")
    def setup(mem):
        mem.write_int(DATA_ADDR, 8, 111)
        mem.write_int(DATA_ADDR + 0x1000, 8, 222)
    r = run_snippet(code, {"rbx": DATA_ADDR}, memory_setup=setup)
    assert (r.regs["rax"], r.regs["rcx"], r.regs["rdx"]) == (111, 111, 222)


def test_jump_to_unmapped_address_faults():
    r = run_snippet(assemble("mov rax, 0x40000000\njmp rax"))
    assert r.exception == 14
    assert r.cpu.get("cr2") == 0x40000000
    assert r.frame["error_code"] == PF_I


def test_page_table_pointing_beyond_ram_gives_page_fault():
    def hostile(mem):
        mem.write_int(PML4_ADDR + 0x2000 + 8 * (DATA_ADDR >> 21), 8, (1 << 40) | 7)   # PT far outside RAM
    r = run_snippet(assemble("mov rax, [rbx]\nhlt"), {"rbx": DATA_ADDR}, memory_setup=hostile)
    assert r.exception == 14
    assert r.frame["error_code"] == 0


def test_non_canonical_address_is_gp(machine):
    r = machine.run(assemble("mov rbx, 0x0000800000000000\nmov rax, [rbx]\nhlt"))
    assert r.exception == 13
    r = machine.run(assemble("mov rbp, 0x0000800000000000\nmov rax, [rbp]\nhlt"))
    assert r.exception == 12                                          # stack segment: #SS


def test_reserved_bit_fault():
    def rsvd(mem):
        mem.write_int(PML4_ADDR + 0x2000 + 8 * (DATA_ADDR >> 21), 8, (PML4_ADDR + 0x4000) | 7 | 0x80 | 0x1000)
    r = run_snippet(assemble("mov rax, [rbx]\nhlt"), {"rbx": DATA_ADDR}, memory_setup=rsvd)
    assert r.exception == 14
    assert r.frame["error_code"] & (PF_P | PF_RSVD) == PF_P | PF_RSVD


def test_ring3_to_ring0_through_interrupt_gate_and_back():
    code = assemble("""
        mov rbx, 5
        int3
        add rbx, 1
        hlt
    """)
    handler = assemble("""
        mov rcx, [rsp + 8]      # saved CS
        mov rdx, rsp
        add rbx, 10
        iretq""", origin=STUB_ADDR + 3 * 16)
    r = run_snippet(code, cpl=3, memory_setup=lambda m: m.write(STUB_ADDR + 3 * 16, handler))
    assert r.exception is None                                    # the final hlt at CPL 3
    assert r.regs["rbx"] == 16
    assert r.regs["rcx"] == SEL_UCODE64
    assert r.regs["rdx"] == KSTACK_TOP - 40
    assert r.regs["rsp"] == STACK_TOP                             # user stack restored by iretq


def test_user_int_to_dpl0_gate_is_gp():
    r = run_snippet(assemble("int 0x80\nhlt"), cpl=3)
    assert r.exception == 13
    assert r.frame["error_code"] == 0x80 * 8 + 2


def test_privileged_instructions_at_cpl3_are_gp():
    for insn in ("cli", "mov cr3, rax", "wrmsr", "lgdt [rax]", "clac", "invlpg [rax]", "in al, 0x60"):
        r = run_snippet(assemble(f"{insn}\nhlt"), {"rax": DATA_ADDR}, cpl=3)
        assert r.exception == 13, insn
        assert r.frame["rip"] == CODE_ADDR, insn


def test_ist_stack_is_used():
    def ist(mem):
        lo = mem.read_int(IDT_ADDR + 16 * 6, 8)
        mem.write_int(IDT_ADDR + 16 * 6, 8, lo | (1 << 32))        # #UD on IST1
    r = run_snippet(assemble("ud2"), memory_setup=ist)
    assert r.exception == 6
    assert r.regs["rsp"] == 0x9E000 - 40


def test_double_fault_and_triple_fault():
    def bad_gp(mem):
        mem.write_int(IDT_ADDR + 16 * 13 + 8, 8, 0)
        mem.write_int(IDT_ADDR + 16 * 13, 8, 0)                      # #GP gate not present -> #NP -> #DF
    r = run_snippet(assemble("mov rbx, 0x0000800000000000\nmov rax, [rbx]\nhlt"), memory_setup=bad_gp)
    assert r.exception == 8
    assert r.frame["error_code"] == 0

    def no_idt(mem):
        mem.fill(IDT_ADDR, 4096, 0)
    r = run_snippet(assemble("ud2"), memory_setup=no_idt)
    assert r.stop == StopReason.SHUTDOWN


def test_exception_frame_on_unmapped_stack_is_double_fault():
    def unmap_stack(mem):
        mem.write_int(pte_address(STACK_TOP - 8), 8, 0)
    # #UD cannot push its frame (#PF), which becomes #DF; without an IST its frame faults too.
    r = run_snippet(assemble("ud2"), memory_setup=unmap_stack)
    assert r.stop == StopReason.SHUTDOWN
    assert r.cpu.raw.shutdown_vector == 14

    def df_on_ist(mem):
        unmap_stack(mem)
        lo = mem.read_int(IDT_ADDR + 16 * 8, 8)
        mem.write_int(IDT_ADDR + 16 * 8, 8, lo | (1 << 32))
    r = run_snippet(assemble("ud2"), memory_setup=df_on_ist)
    assert r.exception == 8
    assert r.regs["rsp"] == 0x9E000 - 48


def test_syscall_sysret_round_trip():
    code = assemble(f"""
        mov ecx, 0xC0000081
        mov edx, (0x10 << 16) | {SEL_CODE64}
        xor eax, eax
        wrmsr
        mov ecx, 0xC0000082
        lea rax, [rip + entry]
        mov rdx, rax
        shr rdx, 32
        wrmsr
        lea rcx, [rip + user]
        mov r11, 0x202
        sysretq
    user:
        mov rbx, 7
        syscall
    entry:
        mov rdx, rcx
        hlt""")
    r = run_snippet(code)
    assert r.regs["rbx"] == 7
    assert r.regs["rdx"] == CODE_ADDR + code.index(b"\x0f\x05") + 2
    assert r.cpu.get_segment("cs")["selector"] == SEL_CODE64
    assert r.regs["r11"] & 0x200


def test_pending_interrupt_is_delivered_when_if_set():
    class Bus:
        def __init__(self):
            self.acks = 0

        def ack_irq(self):
            self.acks += 1
            return 0x30

    bus = Bus()
    machine = Machine(bus=bus)
    r = machine.run(assemble("mov rax, 1\nmov rax, 2\nsti\nmov rbx, 3\nhlt"),
                    memory_setup=lambda mem: machine.cpu.raise_irq())
    assert bus.acks == 1
    assert r.exception == 0x30
    assert r.regs["rbx"] == 3                                     # the sti shadow let one more run
    assert r.frame["rip"] == CODE_ADDR + len(assemble("mov rax, 1\nmov rax, 2\nsti\nmov rbx, 3"))


def test_hlt_wakes_on_interrupt():
    class Bus:
        def ack_irq(self):
            return 0x31

    machine = Machine(bus=Bus())
    r = machine.run(assemble("sti\nhlt\nmov rax, 5\nhlt"))
    assert r.stop == StopReason.HLT and machine.cpu.halted
    machine.cpu.raise_irq()
    result = machine.cpu.run(100)
    assert result.reason == StopReason.HLT
    assert machine.memory.read_int(0x7000, 4) == 0x31


def test_a_fault_storm_ends_the_run_at_its_budget():
    """A #UD handler that is the faulting ud2 itself, on an IST stack: the CPU delivers the
    fault forever without retiring an instruction.  Each delivery counts against the run's
    budget, so the run still returns (found by the interpreter's fuzz target)."""
    from kvmpy.interp.testing import _gate64

    machine = Machine()

    def handler_is_the_fault(memory):
        memory.write(IDT_ADDR + 16 * 6, _gate64(CODE_ADDR, SEL_CODE64, 0, ist=1))

    machine.prepare(bytes([0x0F, 0x0B]), memory_setup=handler_is_the_fault)
    result = machine.cpu.run(1000)
    assert result.reason == StopReason.BUDGET
    assert result.executed == 0
    assert machine.cpu.get("rip") == CODE_ADDR
