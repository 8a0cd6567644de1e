"""System instructions, FPU/SSE state, I/O callbacks, mode switches and run control."""

import threading

import pytest

from kvmpy.interp import StopReason
from kvmpy.interp.testing import CODE_ADDR, DATA_ADDR, Machine, assemble, run_snippet

AC = 1 << 18


class RecordingBus:
    def __init__(self, mmio_value=0):
        self.events = []
        self.mmio_value = mmio_value

    def pio_in(self, port, size):
        self.events.append(("in", port, size))
        return 0x12345678

    def pio_out(self, port, size, value):
        self.events.append(("out", port, size, value))

    def mmio_read(self, gpa, size):
        self.events.append(("read", gpa, size))
        return self.mmio_value

    def mmio_write(self, gpa, size, value):
        self.events.append(("write", gpa, size, value))

    def ack_irq(self):
        return -1


@pytest.fixture(scope="module")
def machine():
    return Machine()


def test_cpuid_comes_from_the_table():
    cpuid = [(0, 0, 0, 0xD, 0x756E6547, 0x6C65746E, 0x49656E69),
             (7, 0, 1, 0, 0x11, 0, 0), (7, 1, 1, 0, 0x22, 0, 0),
             (1, 0, 0, 0x806F0, 0, 0x00800000, 0x178BFBFF)]
    code = assemble("""
        xor eax, eax
        cpuid
        mov r8, rbx
        mov eax, 7
        mov ecx, 1
        cpuid
        mov r9, rbx
        mov eax, 1
        cpuid
        mov r10, rcx
        mov eax, 0x40000000
        cpuid
        hlt""")
    r = run_snippet(code, cpuid=cpuid)
    assert r.regs["r8"] == 0x756E6547
    assert r.regs["r9"] == 0x22
    assert r.regs["r10"] == 0x00800000 | (1 << 27)            # OSXSAVE follows CR4
    assert (r.regs["rax"], r.regs["rbx"], r.regs["rcx"], r.regs["rdx"]) == (0, 0, 0, 0)


def test_clac_stac(machine):
    r = machine.run(assemble("stac\npushfq\npop rax\nclac\nhlt"))
    assert r.regs["rax"] & AC
    assert not r.flags & AC


def test_smap_blocks_supervisor_access_to_user_pages_unless_ac():
    code = assemble("""
        mov rax, cr4
        or rax, 1 << 21
        mov cr4, rax
        stac
        mov rbx, [rsi]
        clac
        mov rcx, [rsi]
        hlt""")
    def setup(m):
        from kvmpy.interp.testing import pte_address
        m.write_int(DATA_ADDR, 8, 9)
        for page in range(0, 0x200000, 0x1000):              # the first 2 MiB become supervisor pages
            m.write_int(pte_address(page), 8, page | 3)
    r = run_snippet(code, {"rsi": DATA_ADDR}, memory_setup=setup)
    assert r.regs["rbx"] == 9
    assert r.exception == 14 and r.frame["error_code"] == 1


def test_popcnt_mnemonic_and_fallback_names():
    m = Machine()
    names = {}
    for text in ("popcnt rax, rbx", "int3", "clac", "stac", "xrstor [rsi]", "xsave [rsi]",
                 "fxsave [rsi]", "fxrstor [rsi]", "rdmsr", "mov cr3, rax", "dec rcx", "lock cmpxchg [rsi], rbx"):
        m.memory.write(CODE_ADDR, assemble(text))
        m.cpu.reset()
        from kvmpy.interp.testing import setup_long_mode
        setup_long_mode(m.cpu)
        m.cpu.set("rip", CODE_ADDR)
        names[text] = m.cpu.mnemonic()
    assert names == {"popcnt rax, rbx": "popcnt", "int3": "int3", "clac": "clac", "stac": "stac",
                     "xrstor [rsi]": "xrstor", "xsave [rsi]": "xsave", "fxsave [rsi]": "fxsave",
                     "fxrstor [rsi]": "fxrstor", "rdmsr": "rdmsr", "mov cr3, rax": "mov_cr",
                     "dec rcx": "dec", "lock cmpxchg [rsi], rbx": "cmpxchg"}


def test_fxsave_fxrstor_round_trip(machine):
    code = assemble("""
        fxsave [rsi]
        pxor xmm0, xmm0
        pcmpeqb xmm1, xmm1
        mov eax, 0x1f80
        mov [rdi], eax
        ldmxcsr [rdi]
        fxrstor [rsi]
        stmxcsr [rdi + 4]
        hlt""")
    r = machine.run(code, {"rsi": DATA_ADDR, "rdi": DATA_ADDR + 0x800, "rax": 0},
                    xmm={0: 0x0123456789ABCDEF_FEDCBA9876543210, 1: 5},
                    memory_setup=lambda m: None)
    cpu = r.cpu
    assert cpu.xmm(0) == 0x0123456789ABCDEF_FEDCBA9876543210
    assert cpu.xmm(1) == 5
    assert r.memory.read_int(DATA_ADDR + 160, 16) == 0x0123456789ABCDEF_FEDCBA9876543210
    assert r.memory.read_int(DATA_ADDR, 2) == 0x37F                   # FCW
    assert r.memory.read_int(DATA_ADDR + 0x804, 4) == 0x1F80


def test_fxsave_requires_alignment(machine):
    r = machine.run(assemble("fxsave [rsi]\nhlt"), {"rsi": DATA_ADDR + 8})
    assert r.exception == 13


def test_xsave_xrstor_round_trip_and_init_state(machine):
    code = assemble("""
        mov eax, 3
        xor edx, edx
        xsave [rsi]
        pcmpeqb xmm2, xmm2
        xrstor [rsi]
        movq r8, xmm2
        mov qword ptr [rsi + 512], 1        # XSTATE_BV: SSE state "init"
        xrstor [rsi]
        movq r9, xmm2
        hlt""")
    r = machine.run(code, {"rsi": DATA_ADDR}, xmm={2: 0xAAAA_BBBB_CCCC_DDDD})
    assert r.exception is None
    assert r.regs["r8"] == 0xAAAA_BBBB_CCCC_DDDD
    assert r.regs["r9"] == 0                                          # initialised by xrstor
    assert r.memory.read_int(DATA_ADDR + 160 + 32, 8) == 0xAAAA_BBBB_CCCC_DDDD


def test_xsave_respects_requested_feature_bitmap(machine):
    code = assemble("""
        mov eax, 1                          # x87 only
        xor edx, edx
        xsave [rsi]
        hlt""")
    r = machine.run(code, {"rsi": DATA_ADDR}, xmm={0: 0x77},
                    memory_setup=lambda m: m.fill(DATA_ADDR, 1024, 0xEE))
    assert r.memory.read(DATA_ADDR + 160, 16) == b"\xee" * 16          # SSE area untouched
    assert r.memory.read_int(DATA_ADDR, 2) == 0x37F
    assert r.memory.read_int(DATA_ADDR + 512, 8) == 0xEEEEEEEEEEEEEEEF    # only XSTATE_BV[0] written


def test_xrstor_rejects_bad_header(machine):
    code = assemble("mov eax, 3\nxor edx, edx\nxrstor [rsi]\nhlt")
    r = machine.run(code, {"rsi": DATA_ADDR},
                    memory_setup=lambda m: (m.fill(DATA_ADDR, 1024, 0), m.write_int(DATA_ADDR + 512, 8, 1 << 5)))
    assert r.exception == 13
    r = machine.run(code, {"rsi": DATA_ADDR + 16})
    assert r.exception == 13                                          # not 64-byte aligned


def test_xgetbv_xsetbv(machine):
    r = machine.run(assemble("xor ecx, ecx\nxgetbv\nmov r8, rax\nmov eax, 7\nxor edx, edx\nxsetbv\nxgetbv\nhlt"))
    assert r.regs["r8"] == 3 and r.regs["rax"] == 7
    r = machine.run(assemble("xor ecx, ecx\nmov eax, 2\nxor edx, edx\nxsetbv\nhlt"))
    assert r.exception == 13


def test_fpu_control_instructions(machine):
    r = machine.run(assemble("""
        fninit
        fnstcw [rsi]
        mov word ptr [rsi + 2], 0x27f
        fldcw [rsi + 2]
        fnstcw [rsi + 4]
        fnstsw ax
        fwait
        emms
        hlt"""), {"rsi": DATA_ADDR})
    assert r.memory.read_int(DATA_ADDR, 2) == 0x37F
    assert r.memory.read_int(DATA_ADDR + 4, 2) == 0x27F
    assert r.regs["rax"] & 0xFFFF == 0


def test_sse2_integer_and_moves(machine):
    r = machine.run(assemble("""
        movdqu xmm0, [rsi]
        movdqa xmm1, xmm0
        paddd xmm1, xmm0
        pshufd xmm2, xmm0, 0x1b
        pxor xmm3, xmm3
        pcmpeqb xmm3, xmm0
        pmovmskb eax, xmm3
        movq rbx, xmm1
        movd ecx, xmm2
        psrldq xmm0, 4
        movq rdx, xmm0
        punpcklbw xmm4, xmm4
        pslld xmm1, 1
        movq r8, xmm1
        hlt"""), {"rsi": DATA_ADDR},
        memory_setup=lambda m: m.write(DATA_ADDR, bytes([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0])))
    assert r.regs["rbx"] == 0x0000000400000002
    assert r.regs["rcx"] == 0
    assert r.regs["rdx"] == 0x0000000300000002
    assert r.regs["rax"] == 0xFFFF & ~0b0000000100010001
    assert r.regs["r8"] == 0x0000000800000004


def test_sse_float_scalar(machine):
    r = machine.run(assemble("""
        mov rax, 3
        cvtsi2sd xmm0, rax
        mov rax, 4
        cvtsi2sd xmm1, rax
        mulsd xmm0, xmm1
        sqrtsd xmm2, xmm0
        cvttsd2si rbx, xmm2
        ucomisd xmm0, xmm1
        seta cl
        hlt"""))
    assert r.regs["rbx"] == 3
    assert r.regs["rcx"] & 0xFF == 1


def test_port_io_reaches_bus_with_size_and_value():
    bus = RecordingBus()
    r = run_snippet(assemble("""
        mov al, 0x41
        out 0xe9, al
        mov dx, 0x3f8
        mov ax, 0x1234
        out dx, ax
        mov eax, 0xdeadbeef
        out dx, eax
        in al, 0x60
        mov bl, al
        in eax, dx
        hlt"""), bus=bus)
    assert bus.events == [("out", 0xE9, 1, 0x41), ("out", 0x3F8, 2, 0x1234), ("out", 0x3F8, 4, 0xDEADBEEF),
                          ("in", 0x60, 1), ("in", 0x3F8, 4)]
    assert r.regs["rbx"] & 0xFF == 0x78
    assert r.regs["rax"] == 0x12345678


def test_rep_outsb_and_insw():
    bus = RecordingBus()
    r = run_snippet(assemble("""
        mov dx, 0xe9
        mov ecx, 3
        rep outsb
        mov ecx, 2
        rep insw
        hlt"""), {"rsi": DATA_ADDR, "rdi": DATA_ADDR + 0x100}, bus=bus,
        memory_setup=lambda m: m.write(DATA_ADDR, b"abc"))
    assert bus.events[:3] == [("out", 0xE9, 1, ord("a")), ("out", 0xE9, 1, ord("b")), ("out", 0xE9, 1, ord("c"))]
    assert bus.events[3:] == [("in", 0xE9, 2), ("in", 0xE9, 2)]
    assert r.memory.read(DATA_ADDR + 0x100, 4) == b"\x78\x56\x78\x56"


def test_mmio_outside_ram_calls_back():
    bus = RecordingBus(mmio_value=0xAABBCCDD)
    mmio = 0xFEB00000

    def map_mmio(mem):
        # Map linear DATA_ADDR + 0x3000 to the MMIO page (outside the 4 MiB of RAM).
        from kvmpy.interp.testing import pte_address
        mem.write_int(pte_address(DATA_ADDR + 0x3000), 8, mmio | 3)
    r = run_snippet(assemble("""
        mov dword ptr [rbx + 0x10], 0x55
        mov eax, [rbx + 4]
        mov word ptr [rbx], 7
        mov qword ptr [rbx + 8], rax
        hlt"""), {"rbx": DATA_ADDR + 0x3000}, bus=bus, memory_setup=map_mmio)
    assert bus.events == [("write", mmio + 0x10, 4, 0x55), ("read", mmio + 4, 4), ("write", mmio, 2, 7),
                          ("write", mmio + 8, 8, 0xAABBCCDD)]
    assert r.regs["rax"] == 0xAABBCCDD


def test_callback_exception_stops_with_io_error():
    class Broken(RecordingBus):
        def pio_out(self, port, size, value):
            raise RuntimeError("device on fire")

    r = run_snippet(assemble("mov rbx, 1\nout 0x80, al\nmov rbx, 2\nhlt"), bus=Broken())
    assert r.stop == StopReason.IO_ERROR
    assert r.regs["rbx"] == 1
    assert r.regs["rip"] == CODE_ADDR + 7                             # at the out instruction

    class BadValue(RecordingBus):
        def pio_in(self, port, size):
            return "not a number"

    machine = Machine(bus=BadValue())
    r = machine.run(assemble("in al, 0x80\nhlt"))
    assert r.stop == StopReason.IO_ERROR
    result = machine.cpu.run(10)
    assert result.reason == StopReason.IO_ERROR and isinstance(result.error, ValueError)


def test_msr_access_and_unknown_msr_gp():
    code = assemble("""
        mov ecx, 0xC0000102
        mov eax, 0x1000
        mov edx, 0xffff8000
        wrmsr
        swapgs
        mov ecx, 0xC0000101
        rdmsr
        mov r8, rax
        mov ecx, 0x12345
        rdmsr
        hlt""")
    r = run_snippet(code)
    assert r.regs["r8"] == 0x1000
    assert r.cpu.get_segment("gs")["base"] == 0xFFFF800000001000
    assert r.exception == 13

    class MsrBus(RecordingBus):
        def rdmsr(self, msr):
            return 0x99 if msr == 0x12345 else None
    r = run_snippet(code, bus=MsrBus())
    assert r.exception is None and r.regs["rax"] == 0x99


def test_mov_cr_dr_and_descriptor_tables(machine):
    r = machine.run(assemble("""
        mov rax, cr0
        mov rbx, cr4
        mov rcx, 0x1234
        mov dr0, rcx
        mov rdx, dr0
        sgdt [rsi]
        sidt [rsi + 16]
        str r8w
        mov rax, cr8
        hlt"""), {"rsi": DATA_ADDR})
    assert r.regs["rax"] == 0
    assert r.regs["rbx"] & (1 << 5)
    assert r.regs["rdx"] == 0x1234
    assert r.memory.read_int(DATA_ADDR, 2) == 0x4F
    assert r.memory.read_int(DATA_ADDR + 2, 8) == 0x1000
    assert r.memory.read_int(DATA_ADDR + 18, 8) == 0x2000
    assert r.regs["r8"] & 0xFFFF == 0x30


def test_string_ops_with_rep_and_df(machine):
    def setup(m):
        m.write(DATA_ADDR, b"hello world\x00")
    r = machine.run(assemble(f"""
        mov rsi, {DATA_ADDR}
        mov rdi, {DATA_ADDR + 0x100}
        mov rcx, 12
        rep movsb
        mov rdi, {DATA_ADDR + 0x200}
        mov eax, 0x41424344
        mov rcx, 3
        rep stosd
        mov rdi, {DATA_ADDR}
        mov al, 'w'
        mov rcx, 100
        repne scasb
        mov r8, rcx
        mov rsi, {DATA_ADDR}
        mov rdi, {DATA_ADDR + 0x100}
        mov rcx, 12
        repe cmpsb
        mov r9, rcx
        std
        mov rsi, {DATA_ADDR + 4}
        lodsb
        mov r10, rsi
        mov rdi, {DATA_ADDR + 0x30F}
        mov rsi, {DATA_ADDR + 4}
        mov rcx, 5
        rep movsb
        cld
        hlt"""), memory_setup=setup)
    assert r.memory.read(DATA_ADDR + 0x100, 12) == b"hello world\x00"
    assert r.memory.read(DATA_ADDR + 0x200, 12) == b"DCBA" * 3
    assert r.regs["r8"] == 100 - 7
    assert r.regs["r9"] == 0
    assert r.regs["rax"] & 0xFF == ord("o") and r.regs["r10"] == DATA_ADDR + 3
    assert r.memory.read(DATA_ADDR + 0x30B, 5) == b"hello"


def test_rep_stos_large_block_and_fault_midway():
    def setup(m):
        from kvmpy.interp.testing import pte_address
        m.write_int(pte_address(DATA_ADDR + 0x2000), 8, 0)
    r = run_snippet(assemble("mov al, 0x5a\nrep stosb\nhlt"), {"rdi": DATA_ADDR, "rcx": 0x3000}, memory_setup=setup)
    assert r.exception == 14
    assert r.cpu.get("rcx") == 0x1000 and r.cpu.get("rdi") == DATA_ADDR + 0x2000
    assert r.memory.read(DATA_ADDR, 0x2000) == b"\x5a" * 0x2000


def test_real_to_protected_to_long_mode_switch():
    bus = RecordingBus()
    source = """
        cli
        xor ax, ax
        mov ds, ax
        mov al, 'R'
        out 0xe9, al
        lgdt [gdtr]
        mov eax, cr0
        or eax, 1
        mov cr0, eax
        .byte 0x66, 0xea
        .long prot
        .word 0x18
    .align 8
    gdt:
        .quad 0, 0x00209A0000000000, 0x00CF92000000FFFF, 0x00CF9A000000FFFF
    gdtr:
        .word 31
        .long gdt
    .code32
    prot:
        mov ax, 0x10
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov esp, 0x7000
        mov al, 'P'
        out 0xe9, al
        mov edi, 0x20000
        xor eax, eax
        mov ecx, 3 * 1024
        rep stosd
        mov dword ptr [0x20000], 0x21003
        mov dword ptr [0x21000], 0x22003
        mov dword ptr [0x22000], 0x83
        mov eax, 0x20000
        mov cr3, eax
        mov eax, cr4
        or eax, 0x20
        mov cr4, eax
        mov ecx, 0xC0000080
        rdmsr
        or eax, 0x100
        wrmsr
        mov eax, cr0
        or eax, 0x80000000
        mov cr0, eax
        .byte 0xea
        .long long
        .word 0x08
    .code64
    long:
        mov al, 'L'
        out 0xe9, al
        mov rax, 0x1122334455667788
        hlt
    """
    from kvmpy.interp.testing import REAL_CODE_ADDR
    code = assemble(source, bits=16, origin=REAL_CODE_ADDR)
    r = run_snippet(code, mode="real", bus=bus)
    assert [e[3] for e in bus.events] == [ord("R"), ord("P"), ord("L")]
    assert r.regs["rax"] == 0x1122334455667788
    assert r.cpu.get("efer") & 0x500 == 0x500
    assert r.cpu.get_segment("cs")["l"] == 1


def test_real_mode_interrupt_through_ivt():
    from kvmpy.interp.testing import REAL_CODE_ADDR
    code = assemble("""
        xor ax, ax
        mov ds, ax
        mov word ptr [0x21 * 4], offset handler
        mov word ptr [0x21 * 4 + 2], 0
        mov bx, 1
        int 0x21
        add bx, 100
        hlt
    handler:
        add bx, 10
        iret
    """, bits=16, origin=REAL_CODE_ADDR)
    r = run_snippet(code, mode="real")
    assert r.regs["rbx"] == 111


def test_protected_mode_32bit_code_and_interrupt():
    code = assemble("""
        mov eax, 0xffffffff
        add eax, 2
        mov ebx, [esi]
        push 7
        pop ecx
        int 0x40
    """, bits=32)
    r = run_snippet(code, {"rsi": DATA_ADDR}, mode="prot32",
                    memory_setup=lambda m: m.write_int(DATA_ADDR, 4, 0xCAFE))
    assert r.regs["rax"] == 1 and r.regs["rbx"] == 0xCAFE and r.regs["rcx"] == 7
    assert r.exception == 0x40


def test_stop_on_cpl3_and_unimplemented():
    machine = Machine()
    from kvmpy.interp.testing import setup_long_mode
    machine.memory.write(CODE_ADDR, assemble("""
        lea rcx, [rip + user]
        mov r11, 0x2
        mov ecx, ecx
        sysretq
    user:
        nop
        hlt"""))
    cpu = machine.cpu
    cpu.reset()
    setup_long_mode(cpu)
    cpu.set_regs(rip=CODE_ADDR, rsp=0x1F0000, star=(0x10 << 48))
    result = cpu.run(1000, stop_on_cpl3=True)
    assert result.reason == StopReason.CPL3 and cpu.cpl == 3
    assert result.executed == 4

    machine.memory.write(CODE_ADDR, assemble("sysenter\nhlt"))
    cpu.reset()
    setup_long_mode(cpu)
    cpu.set_regs(rip=CODE_ADDR, rsp=0x1F0000)
    result = cpu.run(1000, stop_on_unimplemented=True)
    assert result.reason == StopReason.UNIMPLEMENTED and cpu.get("rip") == CODE_ADDR
    assert cpu.mnemonic() == "sysenter"


def test_budget_and_stop_request():
    machine = Machine()
    r = machine.run(assemble("1: jmp 1b"), max_insns=5000)
    assert r.stop == StopReason.BUDGET and machine.cpu.insn_count == 5000

    from kvmpy.interp.testing import setup_long_mode
    cpu = machine.cpu
    setup_long_mode(cpu)
    cpu.set_regs(rip=CODE_ADDR)
    timer = threading.Timer(0.05, cpu.request_stop)
    timer.start()
    result = cpu.run(10**12)
    timer.join()
    assert result.reason == StopReason.REQUEST


def test_hostile_state_does_not_crash():
    # Random garbage code in every mode must end in a stop reason, never a host crash.
    import random
    rng = random.Random(1234)
    for mode, bits in (("long", 64), ("prot32", 32), ("real", 16)):
        machine = Machine(mode)
        for _ in range(60):
            blob = bytes(rng.randrange(256) for _ in range(64))
            r = machine.run(blob, {"rax": rng.getrandbits(64), "rsi": rng.getrandbits(64),
                                   "rdi": rng.getrandbits(64), "rcx": rng.getrandbits(8)}, max_insns=2000)
            assert isinstance(r.stop, StopReason)
