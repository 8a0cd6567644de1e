"""Integer ALU instructions of the software interpreter against a Python reference model.

Only architecturally defined flags are compared (see FLAG masks per operation)."""

import pytest

from kvmpy.interp.testing import DATA_ADDR, Machine, assemble

CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
ARITH = CF | PF | AF | ZF | SF | OF
SIZES = {1: ("al", "bl"), 2: ("ax", "bx"), 4: ("eax", "ebx"), 8: ("rax", "rbx")}


def edge_values(size):
    bits = 8 * size
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    return sorted({0, 1, 2, 0x0F, 0x10, sign - 1, sign, sign + 1, mask - 1, mask, 0x5A & mask, (0xA5 * 0x0101010101010101) & mask})


def szp(res, size):
    f = 0
    if res == 0:
        f |= ZF
    if res >> (8 * size - 1) & 1:
        f |= SF
    if bin(res & 0xFF).count("1") % 2 == 0:
        f |= PF
    return f


def ref_binop(op, a, b, size, cf_in):
    bits = 8 * size
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    if op in ("add", "adc"):
        c = cf_in if op == "adc" else 0
        full = a + b + c
        res = full & mask
        f = (CF if full > mask else 0) | (OF if (a ^ res) & (b ^ res) & sign else 0)
        f |= AF if (a ^ b ^ res) & 0x10 else 0
        return res, f | szp(res, size), ARITH
    if op in ("sub", "sbb", "cmp"):
        c = cf_in if op == "sbb" else 0
        full = a - b - c
        res = full & mask
        f = (CF if full < 0 else 0) | (OF if (a ^ b) & (a ^ res) & sign else 0)
        f |= AF if (a ^ b ^ res) & 0x10 else 0
        return (a if op == "cmp" else res), f | szp(res, size), ARITH
    res = {"and": a & b, "or": a | b, "xor": a ^ b, "test": a & b}[op]
    return (a if op == "test" else res), szp(res, size), ARITH & ~AF


@pytest.fixture(scope="module")
def machine():
    return Machine()


def pairs(size):
    vals = edge_values(size)
    return [(a, b) for a in vals for b in vals[::3]] + [(b, a) for a in vals for b in vals[1::4]]


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("op", ["add", "adc", "sub", "sbb", "cmp", "and", "or", "xor", "test"])
def test_binop_register_forms(machine, op, size):
    ra, rb = SIZES[size]
    codes = {cf: assemble(f"{'stc' if cf else 'clc'}\n{op} {ra}, {rb}\nhlt") for cf in (0, 1)}
    mask = (1 << (8 * size)) - 1
    for a, b in pairs(size):
        for cf in (0, 1):
            upper = 0x1122334455667788
            r = machine.run(codes[cf], {"rax": (upper & ~mask) | a, "rbx": b})
            res, flags, defined = ref_binop(op, a, b, size, cf)
            if size == 4:
                expect_rax = res                     # 32-bit results zero-extend
            elif size == 8:
                expect_rax = res
            else:
                expect_rax = (upper & ~mask) | res
            if op in ("cmp", "test"):
                expect_rax = (upper & ~mask) | a
            assert r.regs["rax"] == expect_rax, (op, size, hex(a), hex(b), cf)
            assert r.flags & defined == flags, (op, size, hex(a), hex(b), cf, hex(r.flags))


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("op", ["inc", "dec", "neg", "not"])
def test_unary(machine, op, size):
    ra, _ = SIZES[size]
    mask = (1 << (8 * size)) - 1
    sign = 1 << (8 * size - 1)
    for cf in (0, 1):
        code = assemble(f"{'stc' if cf else 'clc'}\n{op} {ra}\nhlt")
        for a in edge_values(size):
            r = machine.run(code, {"rax": a})
            got = r.regs["rax"] & mask
            if op == "inc":
                res = (a + 1) & mask
                f = szp(res, size) | (OF if res == sign else 0) | (AF if (a ^ 1 ^ res) & 0x10 else 0) | cf
                assert r.flags & ARITH == f
            elif op == "dec":
                res = (a - 1) & mask
                f = szp(res, size) | (OF if a == sign else 0) | (AF if (a ^ 1 ^ res) & 0x10 else 0) | cf
                assert r.flags & ARITH == f
            elif op == "neg":
                res, f, defined = ref_binop("sub", 0, a, size, 0)
                assert r.flags & defined == f
            else:
                res = ~a & mask
                assert r.flags & CF == cf
            assert got == res, (op, size, hex(a))


def ref_shift(op, a, count, size, cf_in):
    """Returns (result, flags, defined-mask) or None when nothing changes."""
    bits = 8 * size
    mask = (1 << bits) - 1
    msb = 1 << (bits - 1)
    count &= 0x3F if size == 8 else 0x1F
    if count == 0:
        return a, 0, 0
    if op in ("shl", "shr", "sar"):
        if op == "shl":
            res = (a << count) & mask
            cf = (a >> (bits - count)) & 1 if count <= bits else 0
            of = ((res & msb) != 0) ^ cf
        elif op == "shr":
            res = a >> count
            cf = (a >> (count - 1)) & 1
            of = (a & msb) != 0
        else:
            s = a - (1 << bits) if a & msb else a
            res = (s >> count) & mask
            cf = (s >> (count - 1)) & 1 if count <= bits else (1 if s < 0 else 0)
            of = 0
        defined = CF | ZF | SF | PF | (OF if count == 1 else 0)
        if count > bits:
            defined &= ~CF                       # CF undefined when the count exceeds the width
        return res, (CF if cf else 0) | (OF if of else 0) | szp(res, size), defined
    if op in ("rol", "ror"):
        c = count % bits
        res = ((a << c) | (a >> (bits - c))) & mask if op == "rol" else ((a >> c) | (a << (bits - c))) & mask
        if op == "rol":
            cf = res & 1
            of = ((res & msb) != 0) ^ cf
        else:
            cf = (res & msb) != 0
            of = cf ^ ((res & (msb >> 1)) != 0)
        return res, (CF if cf else 0) | (OF if of else 0), CF | (OF if count == 1 else 0)
    c = count % (bits + 1)
    wide = (cf_in << bits) | a if op == "rcl" else (a << 1) | cf_in
    width = bits + 1
    if op == "rcl":
        rot = ((wide << c) | (wide >> (width - c))) & ((1 << width) - 1) if c else wide
        res, cf = rot & mask, rot >> bits
        of = ((res & msb) != 0) ^ cf
    else:
        rot = ((wide >> c) | (wide << (width - c))) & ((1 << width) - 1) if c else wide
        res, cf = rot >> 1, rot & 1
        of = ((res & msb) != 0) ^ ((res & (msb >> 1)) != 0)
    return res, (CF if cf else 0) | (OF if of else 0), CF | (OF if count == 1 else 0)


@pytest.mark.parametrize("size", [1, 2, 4, 8])
@pytest.mark.parametrize("op", ["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"])
def test_shifts_and_rotates(machine, op, size):
    ra, _ = SIZES[size]
    mask = (1 << (8 * size)) - 1
    values = [v for v in edge_values(size) if v not in (0,)] + [0]
    counts = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65]
    for cf in (0, 1):
        code = assemble(f"{'stc' if cf else 'clc'}\n{op} {ra}, cl\nhlt")
        for a in values:
            for count in counts:
                r = machine.run(code, {"rax": a, "rcx": count})
                res, flags, defined = ref_shift(op, a, count, size, cf)
                assert r.regs["rax"] & mask == res, (op, size, hex(a), count, cf)
                assert r.flags & defined == flags & defined, (op, size, hex(a), count, cf, hex(r.flags))
                if defined == 0:
                    assert r.flags & CF == cf               # count 0: flags untouched


def test_shift_immediate_and_by_one_forms(machine):
    r = machine.run(assemble("shl eax, 4\nsar bx, 1\nrol rdx, 60\nshr byte ptr [rsi], 3\nhlt"),
                    {"rax": 0xF000000F, "rbx": 0x8002, "rdx": 0x1234, "rsi": DATA_ADDR},
                    memory_setup=lambda m: m.write(DATA_ADDR, b"\xf8"))
    assert r.regs["rax"] == 0xF0
    assert r.regs["rbx"] & 0xFFFF == 0xC001
    assert r.regs["rdx"] == ((0x1234 << 60) | (0x1234 >> 4)) & (2**64 - 1)
    assert r.memory.read(DATA_ADDR, 1) == b"\x1f"


@pytest.mark.parametrize("size", [2, 4, 8])
def test_shld_shrd(machine, size):
    ra, rb = SIZES[size]
    bits = 8 * size
    mask = (1 << bits) - 1
    a, b = 0x8123456789ABCDEF & mask, 0xFEDCBA9876543210 & mask
    for count in (1, 4, bits - 1):
        r = machine.run(assemble(f"shld {ra}, {rb}, cl\nhlt"), {"rax": a, "rbx": b, "rcx": count})
        exp = ((a << count) | (b >> (bits - count))) & mask
        assert r.regs["rax"] & mask == exp
        assert bool(r.flags & CF) == bool((a >> (bits - count)) & 1)
        r = machine.run(assemble(f"shrd {ra}, {rb}, cl\nhlt"), {"rax": a, "rbx": b, "rcx": count})
        exp = ((a >> count) | (b << (bits - count))) & mask
        assert r.regs["rax"] & mask == exp
        assert bool(r.flags & CF) == bool((a >> (count - 1)) & 1)


def signed(v, size):
    bits = 8 * size
    return v - (1 << bits) if v >> (bits - 1) else v


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_mul_imul_one_operand(machine, size):
    ra, rb = SIZES[size]
    bits = 8 * size
    mask = (1 << bits) - 1
    for op in ("mul", "imul"):
        code = assemble(f"{op} {rb}\nhlt")
        for a in edge_values(size):
            for b in edge_values(size)[::2]:
                r = machine.run(code, {"rax": a, "rbx": b, "rdx": 0x5555})
                if op == "mul":
                    prod = a * b
                    overflow = prod >> bits != 0
                else:
                    prod = signed(a, size) * signed(b, size)
                    overflow = prod != signed(prod & mask, size)
                prod &= (1 << (2 * bits)) - 1
                if size == 1:
                    assert r.regs["rax"] & 0xFFFF == prod
                else:
                    assert r.regs["rax"] & mask == prod & mask
                    assert r.regs["rdx"] & mask == prod >> bits
                assert bool(r.flags & CF) == overflow and bool(r.flags & OF) == overflow


@pytest.mark.parametrize("size", [2, 4, 8])
def test_imul_two_and_three_operand(machine, size):
    ra, rb = SIZES[size]
    mask = (1 << (8 * size)) - 1
    for a in edge_values(size)[::2]:
        for b in edge_values(size)[::3]:
            r = machine.run(assemble(f"imul {ra}, {rb}\nhlt"), {"rax": a, "rbx": b})
            prod = signed(a, size) * signed(b, size)
            assert r.regs["rax"] & mask == prod & mask
            assert bool(r.flags & CF) == (prod != signed(prod & mask, size))
    r = machine.run(assemble(f"imul {ra}, {rb}, -3\nhlt"), {"rbx": 7})
    assert r.regs["rax"] & mask == (-21) & mask
    r = machine.run(assemble(f"imul {ra}, {rb}, 1000\nhlt"), {"rbx": 7})
    assert r.regs["rax"] & mask == 7000 & mask


@pytest.mark.parametrize("size", [1, 2, 4, 8])
def test_div_idiv(machine, size):
    ra, rb = SIZES[size]
    bits = 8 * size
    mask = (1 << bits) - 1
    cases = [(100, 7), (mask, 3), (12345 & mask, 1)]
    for op in ("div", "idiv"):
        code = assemble(f"{op} {rb}\nhlt")
        for dividend, divisor in cases:
            r = machine.run(code, {"rax": dividend, "rdx": 0, "rbx": divisor})
            if op == "div":
                q, rem = dividend // divisor, dividend % divisor
            else:
                d = signed(dividend & 0xFFFF, 2) if size == 1 else dividend
                v = signed(divisor, size)
                q = abs(d) // abs(v) * (1 if (d < 0) == (v < 0) else -1)   # truncates toward 0
                rem = d - q * v
                if not -(1 << (bits - 1)) <= q < (1 << (bits - 1)):
                    assert r.exception == 0
                    continue
            assert r.exception is None
            if size == 1:
                assert r.regs["rax"] & 0xFFFF == (q & 0xFF) | ((rem & 0xFF) << 8)
            else:
                assert r.regs["rax"] & mask == q & mask
                assert r.regs["rdx"] & mask == rem & mask


def test_idiv_negative(machine):
    r = machine.run(assemble("cqo\nidiv rbx\nhlt"), {"rax": (-100) & (2**64 - 1), "rbx": 7})
    assert signed(r.regs["rax"], 8) == -14 and signed(r.regs["rdx"], 8) == -2


@pytest.mark.parametrize("insn,regs", [
    ("div rbx", {"rax": 1, "rdx": 0, "rbx": 0}),
    ("div ebx", {"rax": 0, "rdx": 1, "rbx": 1}),                 # quotient too large
    ("idiv rbx", {"rax": 0, "rdx": 0x8000000000000000, "rbx": 2**64 - 1}),
    ("idiv rbx", {"rax": 0, "rdx": 2**63, "rbx": 2**64 - 1}),
    ("idiv bl", {"rax": 0x8000, "rbx": 0xFF}),
])
def test_divide_error_goes_through_idt(machine, insn, regs):
    code = assemble(f"{insn}\nhlt")
    r = machine.run(code, regs)
    assert r.exception == 0
    assert r.frame["rip"] == 0x100000                             # fault: RIP of the div


def test_bit_test_family(machine):
    r = machine.run(assemble("""
        mov rax, 0b1010
        bt rax, 1
        setc bl
        bts rax, 0
        btr rax, 3
        btc rax, 63
        bt rax, 2
        setc bh
        hlt"""))
    assert r.regs["rax"] == 0x8000000000000003
    assert r.regs["rbx"] & 0xFFFF == 0x0001


def test_bt_memory_with_large_and_negative_offsets(machine):
    def setup(m):
        m.write(DATA_ADDR - 8, b"\x00" * 7 + b"\x80")
        m.write(DATA_ADDR + 8, b"\x02")
    r = machine.run(assemble("""
        bt qword ptr [rsi], rcx
        setc al
        bts dword ptr [rsi], edx
        setc bl
        hlt"""), {"rsi": DATA_ADDR, "rcx": 65, "rdx": (-1) & (2**64 - 1)}, memory_setup=setup)
    assert r.regs["rax"] & 0xFF == 1
    assert r.regs["rbx"] & 0xFF == 1                               # bit 63 of [rsi-8] was set


def test_bsf_bsr_popcnt_lzcnt_tzcnt(machine):
    r = machine.run(assemble("""
        bsf rax, rcx
        bsr rbx, rcx
        popcnt rdx, rcx
        lzcnt rsi, rcx
        tzcnt rdi, rcx
        hlt"""), {"rcx": 0x00F0_0000_0000_0100})
    assert (r.regs["rax"], r.regs["rbx"], r.regs["rdx"], r.regs["rsi"], r.regs["rdi"]) == (8, 55, 5, 8, 8)
    r = machine.run(assemble("popcnt eax, ecx\nhlt"), {"rcx": 0, "rax": 0xFFFF_FFFF_FFFF})
    assert r.regs["rax"] == 0 and r.flags & ZF and not r.flags & (CF | OF | SF | PF)
    r = machine.run(assemble("bsf rax, rcx\nhlt"), {"rcx": 0, "rax": 1234})
    assert r.regs["rax"] == 1234 and r.flags & ZF
    r = machine.run(assemble("lzcnt eax, ecx\ntzcnt bx, cx\nhlt"), {"rcx": 0})
    assert r.regs["rax"] == 32 and r.regs["rbx"] & 0xFFFF == 16 and r.flags & CF
    r = machine.run(assemble("popcnt ax, word ptr [rsi]\nhlt"), {"rsi": DATA_ADDR},
                    memory_setup=lambda m: m.write(DATA_ADDR, b"\xff\x01"))
    assert r.regs["rax"] & 0xFFFF == 9


def test_movzx_movsx_movsxd_lea_xchg_bswap(machine):
    r = machine.run(assemble("""
        movzx eax, cl
        movsx rbx, cl
        movsxd rdx, ecx
        lea rsi, [rax + rbx*4 + 16]
        mov rdi, 0x1122334455667788
        bswap rdi
        xchg r8, r9
        movsx ebp, cx
        hlt"""), {"rcx": 0x80000081, "r8": 1, "r9": 2})
    assert r.regs["rax"] == 0x81
    assert r.regs["rbx"] == 0xFFFFFFFFFFFFFF81
    assert r.regs["rdx"] == 0xFFFFFFFF80000081
    assert r.regs["rsi"] == (0x81 + 0xFFFFFFFFFFFFFF81 * 4 + 16) & (2**64 - 1)
    assert r.regs["rdi"] == 0x8877665544332211
    assert (r.regs["r8"], r.regs["r9"]) == (2, 1)
    assert r.regs["rbp"] == 0x81


def test_cmpxchg_and_xadd(machine):
    code = assemble("""
        mov qword ptr [rsi], 5
        mov rax, 5
        mov rcx, 9
        lock cmpxchg qword ptr [rsi], rcx
        setz bl
        mov rax, 1
        cmpxchg qword ptr [rsi], rcx
        setz bh
        mov rdx, 10
        lock xadd qword ptr [rsi], rdx
        hlt""")
    r = machine.run(code, {"rsi": DATA_ADDR})
    assert r.regs["rbx"] & 0xFFFF == 0x0001
    assert r.regs["rax"] == 9
    assert r.regs["rdx"] == 9
    assert r.memory.read_int(DATA_ADDR, 8) == 19


def test_cmpxchg8b_16b(machine):
    def setup(m):
        m.write_int(DATA_ADDR, 8, 0x1111111122222222)
        m.write_int(DATA_ADDR + 16, 8, 1)
        m.write_int(DATA_ADDR + 24, 8, 2)
    r = machine.run(assemble("""
        mov eax, 0x22222222
        mov edx, 0x11111111
        mov ebx, 0x44444444
        mov ecx, 0x33333333
        cmpxchg8b qword ptr [rsi]
        setz r8b
        xor eax, eax
        xor edx, edx
        cmpxchg16b xmmword ptr [rsi + 16]
        setz r9b
        hlt"""), {"rsi": DATA_ADDR}, memory_setup=setup)
    assert r.memory.read_int(DATA_ADDR, 8) == 0x3333333344444444
    assert r.regs["r8"] & 0xFF == 1 and r.regs["r9"] & 0xFF == 0
    assert (r.regs["rax"], r.regs["rdx"]) == (1, 2)


def test_setcc_cmovcc_jcc(machine):
    r = machine.run(assemble("""
        cmp rax, rbx
        setl cl
        setb ch
        setg dl
        seta dh
        mov rsi, 0
        cmovl rsi, rax
        mov rdi, 7
        cmovae edi, ebx
        jle 1f
        mov r8, 1
    1:  jbe 2f
        mov r9, 1
    2:  hlt"""), {"rax": (-5) & (2**64 - 1), "rbx": 3})
    assert r.regs["rcx"] & 0xFFFF == 0x0001          # signed less, not unsigned below
    assert r.regs["rdx"] & 0xFFFF == 0x0100          # not greater, unsigned above
    assert r.regs["rsi"] == (-5) & (2**64 - 1)
    assert r.regs["rdi"] == 3
    assert r.regs["r8"] == 0 and r.regs["r9"] == 1


def test_stack_call_ret_enter_leave(machine):
    r = machine.run(assemble("""
        push 0x1234
        push rax
        pop rbx
        pop rcx
        call f
        jmp done
    f:  enter 16, 0
        mov qword ptr [rbp - 8], 77
        mov rdx, [rbp - 8]
        leave
        ret
    done:
        push word ptr [rsp - 64]
        pop si
        hlt"""), {"rax": 0xAB})
    assert r.regs["rbx"] == 0xAB and r.regs["rcx"] == 0x1234 and r.regs["rdx"] == 77
    assert r.regs["rsp"] == 0x1F0000


def test_loop_jrcxz_and_sign_extension(machine):
    r = machine.run(assemble("""
        mov ecx, 5
        xor eax, eax
    1:  inc eax
        loop 1b
        jrcxz 2f
        mov eax, 99
    2:  mov ebx, 0x8000
        movsx ebx, bx
        mov ax, -2
        cwde
        mov rdx, rax
        cdqe
        cqo
        mov esi, 0x80
        xchg eax, esi
        cbw
        hlt"""))
    assert r.regs["rcx"] == 0
    assert r.regs["rbx"] == 0xFFFF8000
    assert r.regs["rdx"] == 0xFFFFFFFFFFFFFFFF
    assert r.regs["rsi"] == 0xFFFFFFFE                   # 32-bit xchg zero-extends
    assert r.regs["rax"] & 0xFFFF == 0xFF80


def test_flags_instructions(machine):
    r = machine.run(assemble("""
        stc
        cmc
        setc al
        mov ah, 0xD5
        sahf
        lahf
        mov bl, ah
        pushfq
        pop rcx
        std
        pushfq
        pop rdx
        cld
        hlt"""))
    assert r.regs["rax"] & 0xFF == 0
    assert r.regs["rbx"] & 0xFF == 0xD7
    assert r.regs["rcx"] & 0xD5 == 0xD5
    assert r.regs["rdx"] & 0x400
    assert not r.flags & 0x400


def test_memory_operand_addressing(machine):
    def setup(m):
        m.write_int(DATA_ADDR + 0x40 + 3 * 8, 8, 1000)
    r = machine.run(assemble("""
        mov rax, [rbx + rcx*8 + 0x40]
        add qword ptr [rip + slot], 5
        mov rdx, [rip + slot]
        add dword ptr [rbx + 0x100], 0x7fffffff
        mov esi, [rbx + 0x100]
        xor r8, r8
        mov r8b, byte ptr [rbx + rcx*8 + 0x40]
        hlt
    slot: .quad 37"""), {"rbx": DATA_ADDR, "rcx": 3}, memory_setup=setup)
    assert r.regs["rax"] == 1000
    assert r.regs["rdx"] == 42
    assert r.regs["rsi"] == 0x7FFFFFFF
    assert r.regs["r8"] == 1000 & 0xFF


def test_high_byte_registers_and_rex(machine):
    r = machine.run(assemble("""
        mov ah, 0x12
        mov bh, ah
        mov sil, 0x34
        mov r9b, sil
        hlt"""), {"rax": 0, "rbx": 0, "rsi": 0xFF00})
    assert r.regs["rax"] == 0x1200 and r.regs["rbx"] == 0x1200
    assert r.regs["rsi"] == 0xFF34 and r.regs["r9"] == 0x34


def test_nop_forms_and_pause(machine):
    r = machine.run(assemble("nop\npause\nnop dword ptr [rax + rax*1 + 0]\n.byte 0x66, 0x0f, 0x1f, 0x44, 0, 0\nmov eax, 1\nhlt"))
    assert r.regs["rax"] == 1 and r.exception is None


def test_xlat(machine):
    r = machine.run(assemble("xlatb\nhlt"), {"rbx": DATA_ADDR, "rax": 5},
                    memory_setup=lambda m: m.write(DATA_ADDR, bytes(range(100, 120))))
    assert r.regs["rax"] == 105
