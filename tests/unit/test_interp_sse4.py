"""SSE3..SSE4.2, CRC32, MOVBE and MXCSR in the software interpreter: known answers.

(The differential suite compares the same instructions with the CPU on random operands;
these pin down a few answers that are known independently of any CPU.)"""

import struct

import pytest

from kvmpy.interp.testing import DATA_ADDR, Machine, assemble

pytestmark = pytest.mark.isa

CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
MXCSR_DEFAULT = 0x1F80


@pytest.fixture(scope="module")
def machine():
    return Machine()


def run(machine, text, data=b"", regs=None, xmm=None):
    def setup(mem):
        mem.write(DATA_ADDR, data.ljust(256, b"\0"))
    all_regs = {"rsi": DATA_ADDR, "rdi": DATA_ADDR + 128}
    all_regs.update(regs or {})
    return machine.run(assemble(text + "\nhlt"), all_regs, memory_setup=setup, xmm=xmm)


def f32(value):
    return struct.unpack("<I", struct.pack("<f", value))[0]


def as_f32(bits):
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]


def test_crc32c_check_value_byte_by_byte_and_wide(machine):
    """CRC-32C("123456789") = 0xE3069283 (init and final xor 0xFFFFFFFF, done by the code)."""
    data = b"123456789"
    bytewise = "\n".join(f"crc32 eax, byte ptr [rsi + {i}]" for i in range(9))
    r = run(machine, f"mov eax, -1\n{bytewise}\nnot eax", data)
    assert r.exception is None and r.regs["rax"] == 0xE3069283
    r = run(machine, "mov rax, -1\ncrc32 rax, qword ptr [rsi]\ncrc32 rax, byte ptr [rsi + 8]\nnot eax", data)
    assert r.regs["rax"] == 0xE3069283
    r = run(machine, "mov eax, -1\ncrc32 eax, dword ptr [rsi]\ncrc32 eax, word ptr [rsi + 4]\n"
                     "mov bx, word ptr [rsi + 6]\ncrc32 eax, bx\nmov bh, byte ptr [rsi + 8]\ncrc32 eax, bh\nnot eax", data)
    assert r.regs["rax"] == 0xE3069283


def test_crc32_leaves_flags_and_clears_the_upper_half(machine):
    r = run(machine, "stc\ncrc32 rax, bl", regs={"rax": 0xFFFFFFFF_00000000, "rbx": 0})
    assert r.regs["rax"] == 0 and r.flags & CF


def test_movbe_all_sizes(machine):
    data = bytes(range(1, 9))
    r = run(machine, "movbe rax, qword ptr [rsi]\nmovbe ebx, dword ptr [rsi]\nmov rcx, -1\nmovbe cx, word ptr [rsi]\n"
                     "movbe qword ptr [rdi], rax\nmov rdx, qword ptr [rdi]", data)
    assert r.regs["rax"] == 0x0102030405060708
    assert r.regs["rbx"] == 0x01020304
    assert r.regs["rcx"] == 0xFFFFFFFFFFFF0102
    assert r.regs["rdx"] == 0x0807060504030201


def test_movbe_register_form_is_ud(machine):
    r = run(machine, ".byte 0x0f, 0x38, 0xf0, 0xc3")  # movbe eax, ebx (mod = 3)
    assert r.exception == 6


def test_pcmpistri_equal_any_and_equal_ordered(machine):
    data = b"hello world\0".ljust(16, b"\0") + b"wo\0".ljust(16, b"\0") + b"lo\0".ljust(16, b"\0")
    # equal any with the set {'w','o'}: the first 'o' of "hello world" is at 4
    r = run(machine, "movdqu xmm1, [rsi + 16]\npcmpistri xmm1, [rsi], 0x00", data)
    assert r.regs["rcx"] == 4 and r.flags & CF and r.flags & ZF and r.flags & SF
    # the most significant match instead (imm8[6]): the 'o' of "world" at 7
    r = run(machine, "movdqu xmm1, [rsi + 16]\npcmpistri xmm1, [rsi], 0x40", data)
    assert r.regs["rcx"] == 7
    # equal ordered (substring): "wo" starts at 6, "lo" at 3
    r = run(machine, "movdqu xmm1, [rsi + 16]\npcmpistri xmm1, [rsi], 0x0c", data)
    assert r.regs["rcx"] == 6
    r = run(machine, "movdqu xmm1, [rsi + 32]\npcmpistri xmm1, [rsi], 0x0c", data)
    assert r.regs["rcx"] == 3
    # no match: the index is 16, CF clear
    r = run(machine, "pxor xmm1, xmm1\nmov eax, 'z'\nmovd xmm1, eax\npcmpistri xmm1, [rsi], 0x00", data)
    assert r.regs["rcx"] == 16 and not r.flags & CF


def test_pcmpestrm_ranges_and_masks(machine):
    """Ranges 'a'..'z' over "Hello World!", explicit lengths: lower-case letters at 1-4 and 7-10."""
    data = b"Hello World!".ljust(16, b"\0") + b"az".ljust(16, b"\0")
    r = run(machine, "movdqu xmm1, [rsi + 16]\nmov eax, 2\nmov edx, 12\npcmpestrm xmm1, [rsi], 0x04", data)
    assert r.cpu.xmm(0) == 0b11110011110
    assert r.flags & ZF and r.flags & SF and r.flags & CF and not r.flags & OF
    # negative polarity, byte mask: the complement within the 16 elements, as bytes
    r = run(machine, "movdqu xmm1, [rsi + 16]\nmov eax, 2\nmov edx, 12\npcmpestrm xmm1, [rsi], 0x54", data)
    mask = ~0b11110011110 & 0xFFFF
    assert r.cpu.xmm(0) == sum(0xFF << (8 * i) for i in range(16) if mask >> i & 1)
    assert r.flags & OF                                  # IntRes2[0] ('H' is not lower case)
    # explicit lengths are |EAX| / |EDX| saturated at 16
    r = run(machine, "movdqu xmm1, [rsi + 16]\nmov eax, -2\nmov edx, 100\npcmpestri xmm1, [rsi], 0x04", data)
    assert r.regs["rcx"] == 1 and not r.flags & ZF


@pytest.mark.parametrize("rc, expect", [(0, (2.0, -2.0, 4.0)), (1, (2.0, -3.0, 3.0)), (2, (3.0, -2.0, 4.0)),
                                        (3, (2.0, -2.0, 3.0))])
def test_roundss_with_each_rounding_control(machine, rc, expect):
    """roundss with imm8 = rc, and with imm8[2] (MXCSR.RC) after ldmxcsr of the same rc."""
    data = struct.pack("<fff", 2.5, -2.5, 3.5) + struct.pack("<I", MXCSR_DEFAULT | rc << 13)
    for imm, prefix in ((rc, ""), (4, "ldmxcsr [rsi + 12]\n")):
        text = prefix + "\n".join(f"movss xmm{i}, [rsi + {4 * i}]\nroundss xmm{i}, xmm{i}, {imm}" for i in range(3))
        r = run(machine, text, data)
        assert tuple(as_f32(r.cpu.xmm(i)) for i in range(3)) == expect


def test_roundps_precision_suppression_and_inexact_flag(machine):
    data = struct.pack("<ffff", 1.5, 2.0, -0.5, 7.0)
    r = run(machine, "movups xmm0, [rsi]\nroundps xmm0, xmm0, 0x08\nstmxcsr [rdi]\nmovups xmm1, [rsi]\n"
                     "roundps xmm1, xmm1, 0\nstmxcsr [rdi + 4]", data)
    words = r.memory.read(DATA_ADDR + 128, 8)
    assert struct.unpack("<II", words) == (MXCSR_DEFAULT, MXCSR_DEFAULT | 0x20)   # PE only without imm8[3]
    assert [as_f32(r.cpu.xmm(1) >> (32 * i)) for i in range(4)] == [2.0, 2.0, -0.0, 7.0]


def test_mxcsr_rounding_control_applies_to_arithmetic(machine):
    data = struct.pack("<ff", 1.0, 2.0 ** -30) + struct.pack("<I", MXCSR_DEFAULT | 2 << 13)   # round up
    r = run(machine, "ldmxcsr [rsi + 8]\nmovss xmm0, [rsi]\naddss xmm0, [rsi + 4]\nstmxcsr [rdi]", data)
    assert r.cpu.xmm(0) & 0xFFFFFFFF == f32(1.0) + 1                # one ulp above 1.0
    assert r.memory.read_int(DATA_ADDR + 128, 4) == MXCSR_DEFAULT | 2 << 13 | 0x20   # PE


def test_ftz_and_daz(machine):
    tiny = 2.0 ** -126                                  # the smallest normal single
    data = struct.pack("<ff", tiny, 0.5) + struct.pack("<II", MXCSR_DEFAULT | 0x8000, MXCSR_DEFAULT | 0x40)
    r = run(machine, "ldmxcsr [rsi + 8]\nmovss xmm0, [rsi]\nmulss xmm0, [rsi + 4]\nstmxcsr [rdi]", data)
    assert r.cpu.xmm(0) & 0xFFFFFFFF == 0                # flushed to zero, UE and PE set
    assert r.memory.read_int(DATA_ADDR + 128, 4) == MXCSR_DEFAULT | 0x8000 | 0x30
    r = run(machine, "movss xmm0, [rsi]\nmulss xmm0, [rsi + 4]\nstmxcsr [rdi]", data)
    assert r.cpu.xmm(0) & 0xFFFFFFFF == 0x00400000       # without FTZ: the exact denormal, no flag
    assert r.memory.read_int(DATA_ADDR + 128, 4) == MXCSR_DEFAULT
    denormal = struct.pack("<I", 1)
    r = run(machine, "ldmxcsr [rsi + 12]\nmovss xmm0, [rsi + 16]\naddss xmm0, xmm0\nstmxcsr [rdi]", data[:16] + denormal)
    assert r.cpu.xmm(0) & 0xFFFFFFFF == 0 and r.memory.read_int(DATA_ADDR + 128, 4) == MXCSR_DEFAULT | 0x40


def test_unmasked_divide_by_zero_raises_xm_without_writing(machine):
    data = struct.pack("<ff", 1.0, 0.0) + struct.pack("<I", MXCSR_DEFAULT & ~0x200)   # ZM clear
    r = run(machine, "ldmxcsr [rsi + 8]\nmovss xmm0, [rsi]\ndivss xmm0, [rsi + 4]", data)
    assert r.exception == 19
    assert r.cpu.xmm(0) & 0xFFFFFFFF == f32(1.0)         # destination unchanged
    assert r.cpu.get("mxcsr") == (MXCSR_DEFAULT & ~0x200) | 0x4   # ZE set


def test_unmasked_exception_without_osxmmexcpt_is_ud(machine):
    data = struct.pack("<ff", 1.0, 0.0) + struct.pack("<I", MXCSR_DEFAULT & ~0x200)
    code = assemble("mov rax, cr4\nand rax, ~0x400\nmov cr4, rax\nldmxcsr [rsi + 8]\nmovss xmm0, [rsi]\n"
                    "divss xmm0, [rsi + 4]\nhlt")
    r = machine.run(code, {"rsi": DATA_ADDR}, memory_setup=lambda mem: mem.write(DATA_ADDR, data))
    assert r.exception == 6


def test_unmasked_overflow_reports_oe_and_pe_only_if_inexact(machine):
    """Unmasked overflow: OE, plus PE when the result rounded with an unbounded exponent is
    inexact (2^127 * 4 is exact there; the largest single times 3 is not)."""
    mxcsr = MXCSR_DEFAULT & ~0x400                       # OM clear
    for big, flags in ((0x7F000000, 0x08), (0x7F7FFFFF, 0x28)):
        data = struct.pack("<If", big, 4.0 if flags == 0x08 else 3.0) + struct.pack("<I", mxcsr)
        r = run(machine, "ldmxcsr [rsi + 8]\nmovss xmm0, [rsi]\nmulss xmm0, [rsi + 4]", data)
        assert r.exception == 19 and r.cpu.get("mxcsr") == mxcsr | flags


def test_sse3_horizontal_and_duplicates(machine):
    data = struct.pack("<ffff", 1.0, 2.0, 3.0, 4.0) + struct.pack("<ffff", 10.0, 20.0, 30.0, 40.0)
    r = run(machine, "movups xmm0, [rsi]\nmovups xmm1, [rsi + 16]\nhaddps xmm0, xmm1\nmovups xmm2, [rsi]\n"
                     "addsubps xmm2, xmm1\nmovshdup xmm3, [rsi]\nmovddup xmm4, [rsi + 16]", data)
    lanes = lambda v: [as_f32(v >> (32 * i)) for i in range(4)]  # noqa: E731
    assert lanes(r.cpu.xmm(0)) == [3.0, 7.0, 30.0, 70.0]
    assert lanes(r.cpu.xmm(2)) == [-9.0, 22.0, -27.0, 44.0]
    assert lanes(r.cpu.xmm(3)) == [2.0, 2.0, 4.0, 4.0]
    assert lanes(r.cpu.xmm(4)) == [10.0, 20.0, 10.0, 20.0]


def test_ssse3_and_sse41_integer_answers(machine):
    words = struct.pack("<8H", 9, 7, 65535, 3, 7, 100, 5, 3)
    r = run(machine, "movdqu xmm1, [rsi]\nphminposuw xmm0, xmm1\npmovsxbw xmm2, qword ptr [rsi + 16]\n"
                     "pabsw xmm3, xmm1\nptest xmm1, xmm1", words + bytes([0x80, 0x7F, 0xFF, 1, 0, 2, 3, 4]))
    assert r.cpu.xmm(0) == 3 | 3 << 16                   # minimum 3, first at index 3
    assert r.cpu.xmm(2) == int.from_bytes(struct.pack("<8h", -128, 127, -1, 1, 0, 2, 3, 4), "little")
    assert (r.cpu.xmm(3) >> 32) & 0xFFFF == 1            # |0xffff as -1| = 1
    assert not r.flags & ZF and r.flags & CF             # a & a != 0, ~a & a == 0
    r = run(machine, "movdqu xmm1, [rsi]\npmaddubsw xmm1, [rsi + 16]\nmovdqu xmm2, [rsi]\npmulhrsw xmm2, [rsi + 32]",
            bytes([200, 200]) + bytes(14) + bytes([0x7F, 0x7F]) + bytes(14) + struct.pack("<h", 0x4000) + bytes(14),
            )
    assert r.cpu.xmm(1) & 0xFFFF == 32767                # 200*127 + 200*127 saturates
    a = 200 + 200 * 256 - 65536                          # 0xc8c8 as a signed word, times 0.5 (Q15)
    assert r.cpu.xmm(2) & 0xFFFF == (((a * 0x4000 >> 14) + 1) >> 1) & 0xFFFF


def test_extract_insert_and_blends(machine):
    data = bytes(range(16)) + bytes(range(0x80, 0x90))
    r = run(machine, "movdqu xmm1, [rsi]\npextrb eax, xmm1, 13\npextrq rbx, xmm1, 1\nextractps ecx, xmm1, 2\n"
                     "movdqu xmm2, [rsi]\npinsrd xmm2, eax, 3\nmovdqu xmm0, [rsi + 16]\nmovdqu xmm3, [rsi]\n"
                     "pblendvb xmm3, xmm1, xmm0\nmovdqu xmm4, [rsi]\ninsertps xmm4, xmm1, 0b11000101\n"
                     "movdqu xmm5, [rsi]\nmpsadbw xmm5, [rsi], 0", data)
    assert r.regs["rax"] == 13 and r.regs["rbx"] == 0x0F0E0D0C0B0A0908 and r.regs["rcx"] == 0x0B0A0908
    assert r.cpu.xmm(2) >> 96 == 13
    assert r.cpu.xmm(3) == int.from_bytes(bytes(range(16)), "little")
    assert r.cpu.xmm(4) == int.from_bytes(bytes(4) + bytes(range(4, 8)) + bytes(4) + bytes(range(12, 16)), "little")
    assert r.cpu.xmm(5) & 0xFFFF == 0                    # |b[0..3] - b[0..3]|


def test_mnemonics_of_the_new_maps(machine):
    from kvmpy.interp.testing import CODE_ADDR, setup_long_mode
    cpu = machine.cpu
    names = {}
    for text in ("crc32 eax, bl", "movbe eax, [rsi]", "pcmpistri xmm1, xmm2, 0", "pclmulqdq xmm0, xmm1, 0",
                 "ptest xmm0, xmm1", "roundsd xmm0, xmm1, 0"):
        machine.memory.write(CODE_ADDR, assemble(text))
        cpu.reset()
        setup_long_mode(cpu)
        cpu.set("rip", CODE_ADDR)
        names[text] = cpu.mnemonic()
    assert list(names.values()) == ["crc32", "movbe", "pcmpistri", "pclmulqdq", "ptest", "roundsd"]
