"""The interpreter's x87 FPU: known answers, every encoding, #NM/#MF, and the saved state.

The differential suite (tests/differential, family x87 and the fault table) compares all of
this with the CPU instruction by instruction; these tests pin down answers that are known
without a CPU: exact roundings under each precision and rounding control, BCD and integer
conversions, the FNSAVE/FXSAVE layouts, and which encodings exist.
"""

from __future__ import annotations

import struct
from fractions import Fraction

import pytest

from kvmpy.interp.testing import DATA_ADDR, Machine, assemble

pytestmark = pytest.mark.isa

NM, MF, UD = 7, 16, 6
FSW_TOP_SHIFT = 11


@pytest.fixture(scope="module")
def machine():
    return Machine()


def extended(value: Fraction, mantissa_bits: int = 64, rounding: str = "nearest") -> tuple[int, int]:
    """(exponent word, 64-bit mantissa) of a positive `value` rounded to `mantissa_bits`."""
    exponent = 0
    while value >= 2:
        value, exponent = value / 2, exponent + 1
    while value < 1:
        value, exponent = value * 2, exponent - 1
    scaled = value * (1 << (mantissa_bits - 1))
    floor = scaled.numerator // scaled.denominator
    remainder = scaled - floor
    if rounding == "up" and remainder or rounding == "nearest" and (remainder > Fraction(1, 2) or
                                                                     remainder == Fraction(1, 2) and floor & 1):
        floor += 1
    return 0x3FFF + exponent, floor << (64 - mantissa_bits)


def read_extended(memory, address: int) -> tuple[int, int]:
    mantissa, exponent = struct.unpack("<QH", memory.read(address, 10))
    return exponent, mantissa


def control_word(precision: int, rounding: int) -> int:
    return 0x37F & ~0xF00 | precision << 8 | rounding << 10


@pytest.mark.parametrize("precision, bits", [(0, 24), (2, 53), (3, 64)])
@pytest.mark.parametrize("rounding, name", [(0, "nearest"), (1, "down"), (2, "up"), (3, "zero")])
def test_division_rounds_under_precision_and_rounding_control(machine, precision, bits, rounding, name):
    code = assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        mov word ptr [rbx], {control_word(precision, rounding):#x}
        fninit
        fldcw word ptr [rbx]
        fld1
        mov dword ptr [rbx + 4], 3
        fidiv dword ptr [rbx + 4]
        fstp tbyte ptr [rbx + 16]
        hlt""")
    result = machine.run(code)
    assert result.exception is None
    expected = extended(Fraction(1, 3), bits, "up" if name == "up" else "nearest" if name == "nearest" else "down")
    assert read_extended(result.memory, DATA_ADDR + 16) == expected


def test_square_root_of_two_is_correctly_rounded(machine):
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        fld1
        fld1
        faddp st(1), st(0)
        fsqrt
        fstp tbyte ptr [rbx]
        hlt"""))
    assert read_extended(result.memory, DATA_ADDR) == (0x3FFF, 0xB504F333F9DE6484)


def test_integer_and_bcd_conversions(machine):
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        mov rax, -1234567890123
        mov qword ptr [rbx], rax
        fild qword ptr [rbx]
        fbstp tbyte ptr [rbx + 16]
        mov dword ptr [rbx + 32], 7
        fild dword ptr [rbx + 32]
        mov dword ptr [rbx + 36], 2
        fidiv dword ptr [rbx + 36]
        fist dword ptr [rbx + 40]
        fisttp dword ptr [rbx + 44]
        fbld tbyte ptr [rbx + 16]
        fistp qword ptr [rbx + 48]
        fldpi
        fistp word ptr [rbx + 56]
        hlt"""))
    memory = result.memory
    assert memory.read(DATA_ADDR + 16, 10) == bytes.fromhex("2301896745230100 0080".replace(" ", ""))
    assert struct.unpack("<ii", memory.read(DATA_ADDR + 40, 8)) == (4, 3)  # 3.5 to even; truncated
    assert struct.unpack("<q", memory.read(DATA_ADDR + 48, 8))[0] == -1234567890123
    assert struct.unpack("<h", memory.read(DATA_ADDR + 56, 2))[0] == 3


def test_compare_into_rflags_and_conditional_moves(machine):
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        fld1
        fldz
        fcomi st(0), st(1)
        setb al
        fcmovb st(0), st(1)
        fstp qword ptr [rbx]
        fucomip st(0), st(0)
        sete ah
        hlt"""))
    assert result.regs["rax"] & 0xFFFF == 0x0101
    assert struct.unpack("<d", result.memory.read(DATA_ADDR, 8))[0] == 1.0


def test_fnsave_layout_and_frstor_round_trip(machine):
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        fld1
        fldz
        fldpi
        fnsave [rbx]
        fnstsw word ptr [rbx + 200]
        frstor [rbx]
        fnstsw word ptr [rbx + 202]
        fstp tbyte ptr [rbx + 210]
        hlt"""))
    memory = result.memory
    fcw, fsw, ftw = struct.unpack("<HxxHxxHxx", memory.read(DATA_ADDR, 12))
    assert fcw == 0x37F and fsw >> FSW_TOP_SHIFT & 7 == 5
    # Physical registers 7, 6, 5 hold 1.0 (valid), 0.0 (zero), pi (valid); the rest are empty.
    assert ftw == 0b00_01_00_11_11_11_11_11
    assert read_extended(memory, DATA_ADDR + 28) == (0x4000, 0xC90FDAA22168C235)  # ST(0) = pi
    after_save, after_restore = struct.unpack("<HH", memory.read(DATA_ADDR + 200, 4))
    assert after_save == 0 and after_restore == fsw  # FNSAVE reinitialises, FRSTOR restores
    assert read_extended(memory, DATA_ADDR + 210) == (0x4000, 0xC90FDAA22168C235)


def test_fxsave_holds_the_same_state(machine):
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        fld1
        fldl2e
        fxsave [rbx]
        hlt"""))
    image = result.memory.read(DATA_ADDR, 512)
    fsw, abridged = struct.unpack("<HB", image[2:5])
    assert fsw >> FSW_TOP_SHIFT & 7 == 6 and abridged == 0b1100_0000
    assert struct.unpack("<QH", image[32:42]) == (0xB8AA3B295C17F0BC, 0x3FFF)  # log2(e)
    assert struct.unpack("<QH", image[48:58]) == (1 << 63, 0x3FFF)


def test_unmasked_exception_raises_mf_at_the_next_waiting_instruction(machine):
    code = assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        fninit
        mov word ptr [rbx], 0x37b
        fldcw word ptr [rbx]
        fld1
        fldz
        fdivp st(1), st(0)
        fnstsw ax
        fwait
        hlt""")
    result = machine.run(code)
    assert result.exception == MF
    assert result.regs["rax"] & 0xFF == 0x84  # ZE, ES
    assert result.memory.read(result.frame["rip"], 1) == b"\x9b"  # the fwait, not the fdivp


def test_an_unmasked_invalid_operation_stores_nothing(machine):
    """1e30 does not fit a 32-bit integer: with IE unmasked FISTP stores nothing (and does not
    pop); the #MF waits for the next x87 instruction, which never comes."""
    result = machine.run(assemble(f"""
        mov rbx, {DATA_ADDR:#x}
        mov dword ptr [rbx + 8], 0x55555555
        mov rax, 0x46293e5939a08cea
        mov qword ptr [rbx + 16], rax
        fninit
        mov word ptr [rbx], 0x37e
        fldcw word ptr [rbx]
        fld qword ptr [rbx + 16]
        fistp dword ptr [rbx + 8]
        fnstsw ax
        hlt"""))
    assert result.exception is None
    assert result.memory.read_int(DATA_ADDR + 8, 4) == 0x55555555
    assert result.regs["rax"] & 0xFFFF == 7 << FSW_TOP_SHIFT | 0x8081  # TOP 7 (no pop), B, ES, IE


def test_task_switched_raises_nm(machine):
    result = machine.run(assemble("mov rax, cr0\nor rax, 8\nmov cr0, rax\nfld1\nhlt"))
    assert result.exception == NM


REGISTER_FORMS = [(op, modrm) for op in range(0xD8, 0xE0) for modrm in range(0xC0, 0x100)]
RESERVED = {(0xD9, m) for m in (*range(0xD1, 0xD8), 0xE2, 0xE3, 0xE6, 0xE7, 0xEF)} | \
    {(0xDA, m) for m in range(0xE0, 0x100) if m != 0xE9} | \
    {(0xDB, m) for m in (*range(0xE5, 0xE8), *range(0xF8, 0x100))} | \
    {(0xDD, m) for m in range(0xF0, 0x100)} | \
    {(0xDE, m) for m in range(0xD8, 0xE0) if m != 0xD9} | \
    {(0xDF, m) for m in (*range(0xE1, 0xE8), *range(0xF8, 0x100))}


def test_every_register_form_runs_or_is_reserved(machine):
    """All 512 register encodings: the ones the SDM's opcode map (and the aliases processors
    run) defines execute, from a stack with two values; the reserved ones raise #UD."""
    prologue = assemble("fninit\nfld1\nfldpi")
    wrong = []
    for op, modrm in REGISTER_FORMS:
        result = machine.run(prologue + bytes([op, modrm, 0xF4]))
        expected = UD if (op, modrm) in RESERVED else None
        if result.exception != expected:
            wrong.append(f"{op:02x} {modrm:02x}: {result.exception}")
    assert not wrong
