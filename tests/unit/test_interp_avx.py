"""AVX and AVX2 in the software interpreter: known answers for the VEX.128/VEX.256 forms, the
AVX-only instructions, and the exception rules (#UD for vvvv/L/W encodings, #GP for
misaligned vmovaps, masked-off elements never faulting, a gather's progress after a fault,
#XM of a 256-bit operation).

The differential suite (tests/differential/cases_avx.py) compares these instructions with the
hardware on random values; these are fixed points, and what it cannot reach (#GP under PVM
becomes #UD there, unmasked exceptions in both halves)."""

import struct

import pytest

from kvmpy.interp.testing import DATA_ADDR, Machine, assemble, pte_address

pytestmark = pytest.mark.isa

UD, GP, PF, XM = 6, 13, 14, 19
ZF, CF = 0x40, 0x1
UNMAPPED = 0x7F00_0000_0000  # canonical, never mapped: any access is a #PF


@pytest.fixture(scope="module")
def machine():
    return Machine()


def run(machine, source, data=b"", regs=None):
    def setup(mem):
        mem.write(DATA_ADDR, data.ljust(512, b"\0"))
    return machine.run(assemble(source + "\nhlt"), {"xcr0": 7, "rsi": DATA_ADDR, **(regs or {})},
                       memory_setup=setup)


def ymm(result, index) -> int:
    raw = result.cpu.raw
    low = bytes(raw.fxsave[160 + 16 * index:176 + 16 * index])
    return int.from_bytes(low + bytes(raw.ymmh[16 * index:16 * index + 16]), "little")


def f32s(*values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def dwords(value: int, count: int = 8) -> list[int]:
    return [(value >> (32 * i)) & 0xFFFFFFFF for i in range(count)]


def test_vaddps_256_computes_both_halves_and_vex128_zeroes_the_upper_half(machine):
    data = f32s(*range(1, 9)) + f32s(*[0.5] * 8)
    r = run(machine, "vmovups ymm0, [rsi]\nvmovups ymm1, [rsi + 32]\nvaddps ymm2, ymm0, ymm1\n"
                     "vmovups ymm3, [rsi]\nvaddps xmm3, xmm0, xmm1", data)
    assert r.exception is None
    assert ymm(r, 2).to_bytes(32, "little") == f32s(*[i + 0.5 for i in range(1, 9)])
    assert ymm(r, 3) >> 128 == 0 and ymm(r, 3).to_bytes(32, "little")[:16] == f32s(1.5, 2.5, 3.5, 4.5)


def test_vcmpps_predicates_8_to_31_and_their_signalling(machine):
    nan = struct.unpack("<f", struct.pack("<I", 0x7FC00000))[0]
    data = f32s(1.0, nan, 2.0, 3.0) + f32s(1.0, 1.0, 1.0, 3.0)
    expected = {8: [1, 1, 0, 1], 9: [0, 1, 0, 0], 10: [1, 1, 0, 1], 11: [0, 0, 0, 0], 12: [0, 0, 1, 0],
                13: [1, 0, 1, 1], 14: [0, 0, 1, 0], 15: [1, 1, 1, 1], 16: [1, 0, 0, 1], 24: [1, 1, 0, 1],
                29: [1, 0, 1, 1]}
    for predicate, bits in expected.items():
        r = run(machine, f"vmovups xmm0, [rsi]\nvmovups xmm1, [rsi + 16]\nvcmpps xmm2, xmm0, xmm1, {predicate}\n"
                         "vstmxcsr [rsi + 64]\nmov eax, [rsi + 64]", data)
        assert [d & 1 for d in dwords(ymm(r, 2), 4)] == bits, predicate
        signalling = predicate in (9, 10, 13, 14, 16, 24)   # QNaN operand: IE only for these
        assert bool(r.regs["rax"] & 1) == signalling, predicate


def test_permutes(machine):
    data = bytes(range(64)) + struct.pack("<8I", 7, 6, 5, 4, 3, 2, 1, 8)   # 8: index bits 2:0 only
    r = run(machine, "vmovdqu ymm0, [rsi]\nvmovdqu ymm1, [rsi + 32]\nvmovdqu ymm5, [rsi + 64]\n"
                     "vpermd ymm2, ymm5, ymm0\nvpermq ymm3, ymm0, 0x1b\nvperm2f128 ymm4, ymm0, ymm1, 0x83", data)
    src = dwords(int.from_bytes(data[:32], "little"))
    assert dwords(ymm(r, 2)) == src[:0:-1] + src[:1]
    quads = [int.from_bytes(data[8 * i:8 * i + 8], "little") for i in range(4)]
    assert ymm(r, 3) == sum(q << (64 * i) for i, q in enumerate(quads[::-1]))
    assert ymm(r, 4) == int.from_bytes(data[48:64], "little")         # low: ymm1's high lane, high: zero


def test_pshufb_and_palignr_work_per_lane(machine):
    data = bytes(range(32)) + bytes([15 - (i % 16) for i in range(32)])
    r = run(machine, "vmovdqu ymm0, [rsi]\nvmovdqu ymm1, [rsi + 32]\nvpshufb ymm2, ymm0, ymm1\n"
                     "vpalignr ymm3, ymm0, ymm0, 4", data)
    out = ymm(r, 2).to_bytes(32, "little")
    assert out[:16] == bytes(range(15, -1, -1)) and out[16:] == bytes(range(31, 15, -1))
    out = ymm(r, 3).to_bytes(32, "little")
    assert out[:16] == bytes(list(range(4, 16)) + list(range(0, 4)))
    assert out[16:] == bytes(list(range(20, 32)) + list(range(16, 20)))


def test_broadcasts_inserts_extracts(machine):
    data = bytes(range(1, 33))
    r = run(machine, "vbroadcastss ymm0, [rsi + 4]\nvpbroadcastb xmm1, [rsi + 2]\nvbroadcastf128 ymm2, [rsi + 16]\n"
                     "vmovdqu ymm3, [rsi]\nvinserti128 ymm4, ymm3, [rsi], 1\nvextractf128 xmm5, ymm3, 1\n"
                     "vextracti128 [rsi + 64], ymm3, 0\nmov rax, [rsi + 64]", data)
    assert dwords(ymm(r, 0)) == [0x08070605] * 8
    assert ymm(r, 1) == int.from_bytes(bytes([3]) * 16, "little")
    assert ymm(r, 2) == int.from_bytes(data[16:] * 2, "little")
    assert ymm(r, 4) == int.from_bytes(data[:16] * 2, "little")
    assert ymm(r, 5) == int.from_bytes(data[16:], "little")
    assert r.regs["rax"] == int.from_bytes(data[:8], "little")


def test_blendv_takes_its_mask_from_imm8_7_4(machine):
    r = run(machine, "vpcmpeqd ymm0, ymm0, ymm0\nvpxor ymm1, ymm1, ymm1\nvpsllq ymm9, ymm0, 63\n"
                     "vblendvpd ymm2, ymm1, ymm0, ymm9\nvpsrlq ymm9, ymm0, 1\nvblendvpd ymm3, ymm1, ymm0, ymm9")
    assert ymm(r, 2) == (1 << 256) - 1 and ymm(r, 3) == 0


def test_variable_shifts(machine):
    data = struct.pack("<8I", 0x80000000, 1, 2, 3, 4, 5, 6, 7) + struct.pack("<8I", 31, 32, 1, 0, 40, 2, 3, 33)
    r = run(machine, "vmovdqu ymm0, [rsi]\nvmovdqu ymm1, [rsi + 32]\nvpsravd ymm2, ymm0, ymm1\n"
                     "vpsllvd ymm3, ymm0, ymm1\nvpsrlvq ymm4, ymm0, ymm1", data)
    assert dwords(ymm(r, 2)) == [0xFFFFFFFF, 0, 1, 3, 0, 1, 0, 0]
    assert dwords(ymm(r, 3)) == [0, 0, 4, 3, 0, 20, 48, 0]
    assert ymm(r, 4) & ((1 << 64) - 1) == 0        # count 0x20_0000001f >= 64: zero


def test_vptest_and_vtestps_over_256_bits(machine):
    r = run(machine, "vpcmpeqd ymm0, ymm0, ymm0\nvpxor xmm1, xmm1, xmm1\nvptest ymm0, ymm1\npushfq\npop rax\n"
                     "vptest ymm1, ymm0\npushfq\npop rbx\nvpsrld ymm2, ymm0, 1\nvtestps ymm2, ymm2\npushfq\npop rcx")
    assert r.regs["rax"] & (ZF | CF) == ZF | CF      # ymm1 = 0
    assert r.regs["rbx"] & (ZF | CF) == ZF           # 0 AND ones = 0; NOT 0 AND ones != 0
    assert r.regs["rcx"] & (ZF | CF) == ZF | CF      # no sign bits


def test_cvtpd2ps_256_narrows_to_xmm(machine):
    data = struct.pack("<4d", 1.5, -2.0, 3.25, 1e300)
    r = run(machine, "vcvtpd2ps xmm0, ymmword ptr [rsi]\nvcvtps2pd ymm1, xmm0", data)
    assert ymm(r, 0).to_bytes(32, "little")[:12] == f32s(1.5, -2.0, 3.25) and ymm(r, 0) >> 128 == 0
    assert ymm(r, 0) >> 96 & 0xFFFFFFFF == 0x7F800000    # overflow to infinity (masked)
    assert ymm(r, 1).to_bytes(32, "little")[:24] == struct.pack("<3d", 1.5, -2.0, 3.25)


def test_masked_off_elements_never_fault(machine):
    r = run(machine, "vpxor xmm1, xmm1, xmm1\nvmaskmovps ymm0, ymm1, [rax]\nvmaskmovpd [rax], ymm1, ymm0\n"
                     "vpmaskmovq ymm2, ymm1, [rax]", regs={"rax": UNMAPPED})
    assert r.exception is None and ymm(r, 0) == 0
    r = run(machine, "vpcmpeqd ymm1, ymm1, ymm1\nvpslldq ymm1, ymm1, 12\nvmaskmovps ymm0, ymm1, [rax]",
            regs={"rax": UNMAPPED})                   # elements 3 and 7 enabled: 3 faults
    assert r.exception == PF and r.cpu.raw.cr2 == UNMAPPED + 12


def test_gather_loads_and_clears_the_mask(machine):
    data = struct.pack("<8I", 7, 0, 3, 3, 1, 6, 2, 5) + bytes(range(0, 64, 2)) + struct.pack("<8I", *range(100, 108))
    r = run(machine, "vmovdqu ymm1, [rsi]\nvpcmpeqd ymm2, ymm2, ymm2\nvpsrlq ymm2, ymm2, 32\n"   # even elements
                     "vpcmpeqd ymm0, ymm0, ymm0\nvpgatherdd ymm0, [rsi + ymm1*4 + 64], ymm2", data)
    assert r.exception is None
    assert dwords(ymm(r, 0)) == [107, 0xFFFFFFFF, 103, 0xFFFFFFFF, 101, 0xFFFFFFFF, 102, 0xFFFFFFFF]
    assert ymm(r, 2) == 0
    r = run(machine, "vmovdqu ymm1, [rsi]\nvpcmpeqd ymm2, ymm2, ymm2\nvgatherdpd xmm0, [rsi + xmm1*8 + 64], xmm2",
            data)
    assert ymm(r, 0) == (101 << 32 | 100) << 64        # index 7: zeros past the data, index 0: dwords 100, 101


def test_gather_fault_leaves_progress():
    """Indices 0, 1, 2, 3 (scale 8) from 16 bytes below a not-present page: elements 0 and 1
    are loaded (their mask elements cleared), element 2 faults; the restart finishes."""
    machine = Machine()
    page = DATA_ADDR + 0x1000

    def setup(mem):
        mem.write(DATA_ADDR, struct.pack("<4I", 0, 1, 2, 3))
        mem.write(page - 16, struct.pack("<2Q", 0x1111, 0x2222))
        mem.write_int(pte_address(page), 8, 0)
    code = assemble(f"mov rax, {page - 16:#x}\nvmovdqu xmm1, [rsi]\nvpcmpeqd ymm2, ymm2, ymm2\n"
                    "vpxor xmm0, xmm0, xmm0\nvpgatherdq ymm0, [rax + xmm1*8], ymm2\nhlt")
    r = machine.run(code, {"xcr0": 7, "rsi": DATA_ADDR}, memory_setup=setup)
    assert r.exception == PF and r.cpu.raw.cr2 == page
    assert ymm(r, 0) == 0x1111 | 0x2222 << 64
    assert ymm(r, 2) == ((1 << 128) - 1) << 128            # elements 2 and 3 still to do


def test_gather_register_overlap_is_ud(machine):
    r = run(machine, ".byte 0xc4, 0xe2, 0x75, 0x90, 0x04, 0x88")   # vpgatherdd ymm0, [rax + ymm1*4], ymm1
    assert r.exception == UD
    r = run(machine, ".byte 0xc4, 0xe2, 0x75, 0x90, 0xc1")         # no memory operand
    assert r.exception == UD


def test_encoding_rules(machine):
    assert run(machine, "vmovaps ymm0, [rsi + 16]").exception == GP      # 32-byte alignment
    assert run(machine, "vmovaps xmm0, [rsi + 16]").exception is None
    assert run(machine, "vmovntdqa ymm0, [rsi + 16]").exception == GP
    assert run(machine, "vaddps ymm0, ymm1, [rsi + 3]").exception is None  # VEX: no alignment rule
    assert run(machine, ".byte 0xc5, 0xf1, 0x70, 0xc0, 0x00").exception == UD   # vpshufd with vvvv != 1111b
    assert run(machine, ".byte 0xc5, 0xfd, 0x6e, 0xc0").exception == UD         # vmovd with VEX.L = 1
    assert run(machine, ".byte 0xc4, 0xe3, 0x7d, 0x00, 0xc1, 0x00").exception == UD   # vpermq with W0
    assert run(machine, ".byte 0xc4, 0xe2, 0x79, 0x5a, 0x06").exception == UD   # vbroadcasti128 with L = 0


def test_256_bit_exception_in_the_upper_half_writes_nothing(machine):
    data = f32s(*[1.0] * 8) + f32s(*[1.0] * 7, 0.0)
    unmask_ze = "mov dword ptr [rsi + 128], 0x1d80\nvldmxcsr [rsi + 128]\n"
    r = run(machine, unmask_ze + "vmovups ymm0, [rsi]\nvmovups ymm1, [rsi + 32]\nvmovups ymm2, [rsi]\n"
                                 "vdivps ymm2, ymm0, ymm1", data)
    assert r.exception == XM
    assert ymm(r, 2) == int.from_bytes(f32s(*[1.0] * 8), "little")       # untouched
    assert r.cpu.get("mxcsr") & 0x3F == 0x04                             # ZE only
    r = run(machine, "vmovups ymm0, [rsi]\nvmovups ymm1, [rsi + 32]\nvdivps ymm2, ymm0, ymm1\n"
                     "vstmxcsr [rsi + 128]\nmov eax, [rsi + 128]", data)
    assert r.exception is None and r.regs["rax"] & 0x3F == 0x04
    assert dwords(ymm(r, 2))[7] == 0x7F800000


def test_vmovss_register_form_has_three_operands(machine):
    r = run(machine, "vpcmpeqd ymm1, ymm1, ymm1\nvpxor xmm2, xmm2, xmm2\nmov eax, 0x12345678\nvmovd xmm3, eax\n"
                     "vmovss xmm0, xmm1, xmm3")
    assert ymm(r, 0) == (((1 << 128) - 1) & ~0xFFFFFFFF) | 0x12345678


def test_pcmpistri_vex(machine):
    data = b"hello world\0....needle"
    r = run(machine, "vmovdqu xmm1, [rsi]\nmov eax, 0x6f\nvmovd xmm2, eax\nvpcmpistri xmm2, xmm1, 0x00", data)
    assert r.exception is None and r.regs["rcx"] == 4                   # first 'o'


@pytest.mark.parametrize("source,name", [("vpclmulqdq xmm0, xmm1, xmm2, 0", "vpclmulqdq"),
                                         ("vaesenc xmm0, xmm1, xmm2", "vaesenc")])
def test_what_is_left_is_unimplemented_by_name(machine, source, name):
    from kvmpy.interp import StopReason
    from kvmpy.interp.testing import CODE_ADDR, STACK_TOP, setup_long_mode

    cpu = machine.cpu
    cpu.reset()
    setup_long_mode(cpu, 0)
    machine.memory.write(CODE_ADDR, assemble(source + "\nhlt"))
    cpu.set_regs(rip=CODE_ADDR, rsp=STACK_TOP, xcr0=7)
    assert cpu.run(10, stop_on_unimplemented=True).reason == StopReason.UNIMPLEMENTED
    assert cpu.mnemonic() == name
