"""The interpreter's MMX (and the byte-masked stores of SSE2 and AVX): known answers and the
x87 state it shares (the differential suite's mmx family compares all of it with the CPU)."""

from __future__ import annotations

import struct

import pytest

from kvmpy.interp.testing import DATA_ADDR, Machine, assemble

pytestmark = pytest.mark.isa

UD, MF = 6, 16


@pytest.fixture(scope="module")
def machine():
    return Machine()


def run(machine, body: str):
    result = machine.run(assemble(f"mov rbx, {DATA_ADDR:#x}\n{body}\nhlt"), {"xcr0": 7})  # AVX state on
    assert result.exception is None
    return result


def qwords(result, count: int) -> tuple[int, ...]:
    return struct.unpack(f"<{count}Q", result.memory.read(DATA_ADDR, 8 * count))


def test_saturating_packing_and_multiply_add(machine):
    result = run(machine, """
        mov rax, 0xF0F0F0F0F0F0F0F0
        movq mm0, rax
        mov rax, 0x2020202020202020
        movq mm1, rax
        paddusb mm0, mm1
        movq [rbx], mm0
        mov rax, 0x7FFF80000100FF00
        movq mm2, rax
        mov rax, 0x00010002FFFF0003
        movq mm3, rax
        movq mm4, mm2
        packsswb mm4, mm3
        movq [rbx + 8], mm4
        pmaddwd mm2, mm3
        movq [rbx + 16], mm2
        psadbw mm1, mm0
        movq [rbx + 24], mm1""")
    saturated, packed, madd, sad = qwords(result, 4)
    assert saturated == 0xFFFFFFFFFFFFFFFF
    assert packed == 0x0102FF037F807F80  # [7f 80 7f 80 | 03 ff 02 01] per byte, low first
    assert madd == 0xFFFF7FFF_FFFFFC00  # -256*3 + 256*-1, -32768*2 + 32767*1
    assert sad == 8 * (0xFF - 0x20)


def test_an_mmx_instruction_makes_top_zero_and_every_register_valid(machine):
    result = run(machine, """
        fninit
        fld1
        fldpi
        mov rax, 0x1122334455667788
        movq mm5, rax
        fnstenv [rbx]
        movq [rbx + 32], mm5
        emms
        fnstenv [rbx + 64]""")
    memory = result.memory
    fsw, ftw = struct.unpack("<xxxxHxxHxx", memory.read(DATA_ADDR, 12))
    assert fsw >> 11 & 7 == 0
    # R5 was written by MMX (exponent all ones: special); R6, R7 hold pi and 1.0 (valid); the
    # empty registers, now valid, hold zeros.
    assert ftw >> 10 & 3 == 2 and ftw >> 12 & 3 == 0 and ftw >> 14 & 3 == 0 and ftw & 3 == 1
    assert memory.read_int(DATA_ADDR + 32, 8) == 0x1122334455667788
    assert struct.unpack("<H", memory.read(DATA_ADDR + 64 + 8, 2))[0] == 0xFFFF  # EMMS: all empty


def test_a_pending_x87_exception_raises_mf_and_cr0_em_raises_ud(machine):
    pending = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        mov word ptr [rbx], 0x37b
        fldcw word ptr [rbx]
        fld1
        fldz
        fdivp st(1), st(0)
        paddb mm0, mm1
        hlt"""))
    assert pending.exception == MF
    emulated = machine.run(assemble("mov rax, cr0\nor rax, 4\nmov cr0, rax\npaddb mm0, mm1\nhlt"))
    assert emulated.exception == UD


def test_conversions_between_mmx_and_xmm(machine):
    result = run(machine, """
        mov rax, 0xFFFFFFFD00000007
        movq mm0, rax
        cvtpi2ps xmm1, mm0
        movdqu [rbx], xmm1
        cvttps2pi mm2, xmm1
        movq [rbx + 16], mm2
        movq2dq xmm3, mm0
        movdqu [rbx + 24], xmm3""")
    memory = result.memory
    assert struct.unpack("<ff", memory.read(DATA_ADDR, 8)) == (7.0, -3.0)
    assert memory.read_int(DATA_ADDR + 16, 8) == 0xFFFFFFFD00000007
    assert memory.read(DATA_ADDR + 24, 16) == bytes.fromhex("07000000fdffffff0000000000000000")


def test_ssse3_mmx_forms_shuffle_eight_bytes_and_add_pairs_of_both_operands(machine):
    result = run(machine, """
        mov rax, 0x0807060504030201
        movq mm0, rax
        mov rax, 0x800F000102030809
        movq mm1, rax
        pshufb mm0, mm1
        movq [rbx], mm0
        mov rax, 0x0004000300020001
        movq mm2, rax
        mov rax, 0x0040003000200010
        movq mm3, rax
        phaddw mm2, mm3
        movq [rbx + 8], mm2
        mov rax, 0x1111111111111111
        movq mm4, rax
        mov rax, 0x8877665544332211
        movq mm5, rax
        palignr mm4, mm5, 3
        movq [rbx + 16], mm4""")
    shuffled, added, aligned = qwords(result, 3)
    # indices 9, 8, 3, 2, 1, 0, 15, 0x80 -> bytes [1]=2, [0]=1, 4, 3, 2, 1, [7]=8, 0 (3 bits of index)
    assert shuffled == 0x0008010203040102
    assert added == 0x0070003000070003  # a0+a1, a2+a3, b0+b1, b2+b3
    assert aligned == 0x1111118877665544  # (mm4:mm5) >> 24, the low 8 bytes


def test_masked_byte_stores_write_only_the_selected_bytes_at_rdi(machine):
    result = run(machine, """
        mov rax, -1
        mov [rbx], rax
        mov [rbx + 8], rax
        mov [rbx + 16], rax
        mov [rbx + 24], rax
        mov rax, 0x1122334455667788
        movq xmm0, rax
        pinsrq xmm0, rax, 1
        mov rax, 0x0080008000800080
        movq xmm1, rax
        pinsrq xmm1, rax, 1
        lea rdi, [rbx]
        maskmovdqu xmm0, xmm1
        mov rax, 0x8000000000000080
        movq xmm2, rax
        lea rdi, [rbx + 16]
        vmaskmovdqu xmm0, xmm2""")
    first, second, third, fourth = qwords(result, 4)
    assert first == second == 0xFF22FF44FF66FF88  # the bytes whose mask byte has bit 7 set
    assert third == 0x11FFFFFFFFFFFF88 and fourth == 0xFFFFFFFFFFFFFFFF
