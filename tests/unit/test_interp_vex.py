"""VEX decoding (C4/C5), BMI1/BMI2, ADX, FMA3, F16C and RDRAND/RDSEED in the software
interpreter: known answers, #UD/#NM/#XM rules, LES/LDS still decoded outside 64-bit mode.

The differential suite (tests/differential/cases_vex.py) compares the same instructions with
the hardware on random values; these are the fixed points and the exception paths it cannot
take (unmasked MXCSR exceptions, CR4/XCR0/CR0.TS settings, 32-bit mode)."""

import struct

import pytest

from kvmpy.interp.testing import (CR0_ET, CR0_MP, CR0_NE, CR0_PE, CR0_PG, CR0_WP, CR4_OSFXSR, CR4_OSXMMEXCPT,
                                  CR4_OSXSAVE, CR4_PAE, DATA_ADDR, Machine, assemble)

pytestmark = pytest.mark.isa

CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
UD, NM, GP, XM = 6, 7, 13, 19
AVX_STATE = {"xcr0": 7}          # x87 | SSE | AVX: what VEX vector instructions need
CR0_LONG = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG
CR4_LONG = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE


@pytest.fixture(scope="module")
def machine():
    return Machine()


def run(machine, source, regs=None, **kw):
    return machine.run(assemble(source + "\nhlt"), {**AVX_STATE, **(regs or {})}, **kw)


def f64(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def as_f64(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def ymm_high(result, index):
    raw = result.cpu.raw
    return int.from_bytes(bytes(raw.ymmh[16 * index:16 * index + 16]), "little")


# ---- BMI1 / BMI2 ------------------------------------------------------------------------------

def test_pdep_pext_known_values(machine):
    r = run(machine, "pdep rcx, rax, rbx\npext rdx, rax, rbx\npdep r8d, eax, ebx\npext r9d, eax, ebx",
            {"rax": 0x12345678, "rbx": 0xFF00FF00, "rdx": 0xDEAD})
    assert r.exception is None
    assert r.regs["rcx"] == 0x56007800          # the low 16 bits of rax spread over the mask bytes
    assert r.regs["rdx"] == 0x1256              # the mask's bytes of rax, packed
    assert r.regs["r8"] == 0x56007800 and r.regs["r9"] == 0x1256
    r = run(machine, "pdep rcx, rax, rbx\npext rdx, rbx, rax", {"rax": 0b1011, "rbx": 0x8000_0000_0000_0101})
    assert r.regs["rcx"] == 0x101                # source bits 1, 1, 0 into mask bits 0, 8, 63
    assert r.regs["rdx"] == 0b1                  # bits 0, 1, 3 of rbx: 1, 0, 0


def test_mulx_known_values_and_flags_untouched(machine):
    r = run(machine, "stc\nmulx rcx, rbx, rax", {"rdx": 0xFFFF_FFFF_FFFF_FFFF, "rax": 3})
    assert r.regs["rcx"] == 2 and r.regs["rbx"] == 0xFFFF_FFFF_FFFF_FFFD
    assert r.flags & CF                          # mulx leaves every flag alone
    r = run(machine, "mulx ecx, ebx, eax", {"rdx": 0xFFFF_FFFF, "rax": 0xFFFF_FFFF, "rcx": -1 & (2**64 - 1)})
    assert r.regs["rcx"] == 0xFFFF_FFFE and r.regs["rbx"] == 1
    r = run(machine, "mulx rcx, rcx, rax", {"rdx": 1 << 63, "rax": 4})   # one register: the high half
    assert r.regs["rcx"] == 2


def test_andn_bextr_bzhi_and_flags(machine):
    r = run(machine, "andn rcx, rax, rbx", {"rax": 0xF0F0, "rbx": 0xFFFF})
    assert r.regs["rcx"] == 0x0F0F and r.flags & (CF | OF | ZF | SF) == 0
    r = run(machine, "stc\nandn rcx, rax, rbx", {"rax": 0xFFFF, "rbx": 0xFF})
    assert r.regs["rcx"] == 0 and r.flags & (CF | OF | ZF) == ZF
    r = run(machine, "bextr rcx, rax, rbx", {"rax": 0x1234_5678_9ABC_DEF0, "rbx": 0x0C10})   # 12 bits from bit 16
    assert r.regs["rcx"] == 0xABC
    r = run(machine, "bextr ecx, eax, ebx", {"rax": 0xFFFF_FFFF, "rbx": 0x0820})      # start 32 >= 32: 0
    assert r.regs["rcx"] == 0 and r.flags & ZF
    r = run(machine, "bzhi rcx, rax, rbx", {"rax": -1 & (2**64 - 1), "rbx": 0x105})     # index = bl = 5
    assert r.regs["rcx"] == 0x1F and not r.flags & CF
    r = run(machine, "bzhi ecx, eax, ebx", {"rax": 0x8000_0001, "rbx": 40})           # index > 31: CF, unchanged
    assert r.regs["rcx"] == 0x8000_0001 and r.flags & (CF | SF) == CF | SF


def test_blsi_blsmsk_blsr(machine):
    r = run(machine, "blsi rcx, rax\nblsmsk rdx, rax\nblsr rbx, rax", {"rax": 0b1011000})
    assert (r.regs["rcx"], r.regs["rdx"], r.regs["rbx"]) == (0b1000, 0b1111, 0b1010000)
    assert r.flags & (CF | ZF) == 0              # blsr: CF = (source == 0)
    r = run(machine, "blsi rcx, rax", {"rax": 0})
    assert r.regs["rcx"] == 0 and r.flags & (CF | ZF) == ZF   # blsi: CF = (source != 0)
    r = run(machine, "blsmsk ecx, eax", {"rax": 0})
    assert r.regs["rcx"] == 0xFFFF_FFFF and r.flags & (CF | ZF | SF) == CF | SF   # ZF cleared


def test_shifts_and_rorx_with_memory_operands(machine):
    def setup(mem):
        mem.write_int(DATA_ADDR, 8, 0x8000_0000_0000_0010)

    code = (f"mov r8, {DATA_ADDR}\nshlx rax, [r8], rcx\nsarx rbx, [r8], rcx\nshrx rdx, [r8], rcx\n"
            "rorx rsi, [r8], 68\nsarx edi, [r8], ecx")
    r = run(machine, code, {"rcx": 0x44}, memory_setup=setup)   # count masked to 4 (and 4 for 32-bit)
    assert r.regs["rax"] == 0x100
    assert r.regs["rbx"] == 0xF800_0000_0000_0001
    assert r.regs["rdx"] == 0x0800_0000_0000_0001
    assert r.regs["rsi"] == 0x0800_0000_0000_0001
    assert r.regs["rdi"] == 0x1


def test_adcx_adox_independent_carry_chains(machine):
    r = run(machine, "stc\nadcx rax, rbx\nadox rcx, rdx\nadox rsi, rdi",
            {"rax": 2**64 - 1, "rbx": 0, "rcx": 2**64 - 1, "rdx": 1, "rsi": 5, "rdi": 6, "rflags": 0x2})
    assert r.regs["rax"] == 0 and r.flags & CF      # -1 + 0 + CF: carry out
    assert r.regs["rcx"] == 0                       # OF was 0: -1 + 1 carries into OF
    assert r.regs["rsi"] == 12 and not r.flags & OF  # 5 + 6 + OF(1)
    r = run(machine, "adcx eax, ebx", {"rax": 0xFFFF_FFFF, "rbx": 1, "rflags": 0x2 | ZF | SF})
    assert r.regs["rax"] == 0 and r.flags & (CF | ZF | SF) == CF | ZF | SF   # only CF changes


def test_bmi_needs_no_vector_state(machine):
    """BMI is GPR-only: it runs with CR4.OSXSAVE = 0 and XCR0 without AVX."""
    r = run(machine, "andn rax, rbx, rcx", {"rbx": 1, "rcx": 3, "xcr0": 3, "cr4": CR4_LONG & ~CR4_OSXSAVE})
    assert r.exception is None and r.regs["rax"] == 2


def test_bmi_vex_l1_is_ud(machine):
    # andn rax, rbx, rcx is C4 E2 E0 F2 C1; VEX.L is bit 2 of the third byte
    assert machine.run(bytes([0xC4, 0xE2, 0xE0, 0xF2, 0xC1, 0xF4]), AVX_STATE).exception is None
    assert machine.run(bytes([0xC4, 0xE2, 0xE0 | 4, 0xF2, 0xC1, 0xF4]), AVX_STATE).exception == UD


# ---- VEX prefix rules -------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", [0x66, 0xF2, 0xF3, 0x48, 0xF0])
def test_vex_after_legacy_prefix_or_rex_is_ud(machine, prefix):
    andn = bytes([0xC4, 0xE2, 0xE0, 0xF2, 0xC1])
    assert machine.run(andn + b"\xf4", AVX_STATE).exception is None
    assert machine.run(bytes([prefix]) + andn + b"\xf4", AVX_STATE).exception == UD


def test_vex_segment_and_address_size_prefixes_are_fine(machine):
    r = run(machine, f"mov r8, {DATA_ADDR}\n.byte 0x64, 0x67\nandn rax, rbx, [r8d]", {"rbx": 0},
            memory_setup=lambda mem: mem.write_int(DATA_ADDR, 8, 0x55))
    assert r.exception is None and r.regs["rax"] == 0x55


def test_vex_vector_ud_without_osxsave_or_avx_state_and_nm_with_ts(machine):
    code = "vfmadd231ps xmm0, xmm1, xmm2"
    assert run(machine, code).exception is None
    assert run(machine, code, {"cr4": CR4_LONG & ~CR4_OSXSAVE}).exception == UD
    assert run(machine, code, {"xcr0": 3}).exception == UD                 # no AVX state
    assert run(machine, code, {"cr0": CR0_LONG | 8}).exception == NM       # CR0.TS
    assert run(machine, code, {"cr0": CR0_LONG | 4}).exception is None     # CR0.EM does not apply to VEX


def test_vex_reserved_map_is_ud(machine):
    assert machine.run(bytes([0xC4, 0xE4, 0x79, 0x00, 0xC0, 0xF4]), AVX_STATE).exception == UD   # map 4


@pytest.fixture(scope="module")
def machine32():
    return Machine("prot32")


def test_les_lds_still_work_in_32_bit_mode(machine32):
    def setup(mem):
        mem.write_int(DATA_ADDR, 4, 0x11223344)
        mem.write_int(DATA_ADDR + 4, 2, 0x10)            # SEL_DATA
    code = assemble(f"les eax, [{DATA_ADDR:#x}]\nlds ebx, [{DATA_ADDR:#x}]\nhlt", bits=32)
    assert code[0] == 0xC4 and code[1] < 0xC0            # the ModRM byte makes it LES
    r = machine32.run(code, memory_setup=setup)
    assert r.exception is None
    assert r.regs["rax"] == 0x11223344 and r.regs["rbx"] == 0x11223344
    assert r.cpu.get_segment("es")["selector"] == 0x10 and r.cpu.get_segment("ds")["selector"] == 0x10


def test_vex_in_32_bit_mode(machine32):
    code = assemble("andn eax, ebx, ecx\nshlx edx, ecx, ebx\nhlt", bits=32)
    r = machine32.run(code, {"rbx": 4, "rcx": 0xFF})
    assert r.exception is None and r.regs["rax"] == 0xFB and r.regs["rdx"] == 0xFF0


# ---- FMA --------------------------------------------------------------------------------------

def test_fma_rounds_once(machine):
    """a*a - round(a*a): the product's rounding error, 2^-54 for a = 1 + 2^-27; a separate
    multiply and subtract give 0."""
    a = 1 + 2.0 ** -27
    product = a * a                                      # rounded: 1 + 2^-26
    r = run(machine, "vfmsub231sd xmm0, xmm1, xmm1\nmovq rax, xmm0\nmulsd xmm1, xmm1\nsubsd xmm1, xmm2\n"
            "movq rbx, xmm1", xmm={0: f64(product), 1: f64(a), 2: f64(product)})
    assert r.exception is None
    assert as_f64(r.regs["rax"]) == 2.0 ** -54
    assert as_f64(r.regs["rbx"]) == 0.0


@pytest.mark.parametrize("form, expect", [("132", 1 * 3 + 2), ("213", 2 * 1 + 3), ("231", 2 * 3 + 1)])
def test_fma_operand_orders(machine, form, expect):
    r = run(machine, f"vfmadd{form}ss xmm0, xmm1, xmm2\nmovd eax, xmm0",
            xmm={0: 0x3F800000, 1: 0x40000000, 2: 0x40400000})
    assert struct.unpack("<f", r.regs["rax"].to_bytes(4, "little"))[0] == expect


def test_fma_packed_256_and_vex128_zeroes_upper(machine):
    def setup(mem):
        mem.write(DATA_ADDR, struct.pack("<8f", *range(1, 9)))          # a
        mem.write(DATA_ADDR + 32, struct.pack("<8f", *[2.0] * 8))       # b
        mem.write(DATA_ADDR + 64, struct.pack("<8f", *[0.5] * 8))       # c
    code = (f"mov r8, {DATA_ADDR}\nvmovdqu ymm0, [r8]\nvmovdqu ymm1, [r8 + 32]\n"
            "vfnmadd213ps ymm0, ymm1, [r8 + 64]\nvmovdqu [r8 + 96], ymm0\n"
            "vmovdqu ymm3, [r8]\nvfmaddsub231ps xmm3, xmm1, [r8 + 64]\nvmovdqu [r8 + 128], ymm3")
    r = run(machine, code, memory_setup=setup)
    assert r.exception is None
    assert list(struct.unpack("<8f", r.memory.read(DATA_ADDR + 96, 32))) == [-2 * x + 0.5 for x in range(1, 9)]
    # fmaddsub: even elements a*b - c, odd a*b + c (a = 2.0, b = 0.5, c = dest); upper half zeroed
    assert list(struct.unpack("<8f", r.memory.read(DATA_ADDR + 128, 32))) == [0.0, 3.0, -2.0, 5.0, 0, 0, 0, 0]
    assert ymm_high(r, 3) == 0


def test_fma_nan_propagation_and_negation(machine):
    """The first NaN of (multiplicand, multiplier, addend), quieted, never negated."""
    snan, qnan = 0x7FA00001, 0x7FC00002
    r = run(machine, "vfnmadd132ss xmm0, xmm1, xmm2\nmovd eax, xmm0",
            xmm={0: 0x3F800000, 1: qnan, 2: snan})
    assert r.regs["rax"] == 0x7FE00001                  # src3 (the multiplier for 132) before src2
    r = run(machine, "vfmsub231ss xmm0, xmm1, xmm2\nmovd eax, xmm0\nstmxcsr [rsp - 8]\nmov ebx, [rsp - 8]",
            xmm={0: qnan, 1: 0, 2: 0x7F800000})
    assert r.regs["rax"] == qnan                        # 0 * inf + QNaN: the QNaN, no invalid
    assert r.regs["rbx"] & 0x3F == 0


def test_fma_uses_mxcsr_rounding_and_sets_flags(machine):
    def mxcsr(value):
        return f"mov dword ptr [rsp - 8], {value:#x}\nldmxcsr [rsp - 8]\n"
    code = "vfmadd231sd xmm0, xmm1, xmm2\nmovq rax, xmm0\nstmxcsr [rsp - 8]\nmov ebx, [rsp - 8]"
    values = {0: f64(1.0), 1: f64(1.0), 2: f64(2.0 ** -60)}    # 1 + 2^-60: inexact
    nearest = run(machine, mxcsr(0x1F80) + code, xmm=values)
    up = run(machine, mxcsr(0x5F80) + code, xmm=values)        # RC = up
    assert as_f64(nearest.regs["rax"]) == 1.0 and nearest.regs["rbx"] == 0x1F80 | 0x20   # PE
    assert as_f64(up.regs["rax"]) == 1.0 + 2.0 ** -52


def test_fma_unmasked_exception_raises_xm_without_writing(machine):
    code = ("mov dword ptr [rsp - 8], 0x1f00\nldmxcsr [rsp - 8]\n"    # invalid unmasked (IM = 0)
            "vfmadd231ps xmm0, xmm1, xmm2")
    values = {0: 0x12345678, 1: 0x7FA00000, 2: 0x3F800000}          # SNaN: invalid
    r = run(machine, code, xmm=values)
    assert r.exception == XM
    assert r.cpu.xmm(0) == 0x12345678
    assert int.from_bytes(bytes(r.cpu.raw.fxsave[24:28]), "little") & 1       # MXCSR.IE set
    r = run(machine, code, {"cr4": CR4_LONG & ~CR4_OSXMMEXCPT}, xmm=values)
    assert r.exception == UD


# ---- F16C -------------------------------------------------------------------------------------

def test_f16c_conversions(machine):
    def setup(mem):
        mem.write(DATA_ADDR, struct.pack("<4f", 1.0, 65520.0, -2.0 ** -25, 0.333))
    code = (f"mov r8, {DATA_ADDR}\nvmovdqu xmm1, [r8]\nvcvtps2ph xmm2, xmm1, 0\nvcvtps2ph [r8 + 16], xmm1, 3\n"
            "vcvtph2ps ymm3, xmm2\nvmovdqu [r8 + 32], ymm3\nstmxcsr [rsp - 8]\nmov eax, [rsp - 8]")
    r = run(machine, code, memory_setup=setup)
    assert r.exception is None
    nearest = struct.unpack("<4H", r.cpu.xmm(2).to_bytes(16, "little")[:8])
    assert nearest == (0x3C00, 0x7C00, 0x8000, 0x3554)     # 65520 overflows to inf; -2^-25 rounds to -0
    assert struct.unpack("<4H", r.memory.read(DATA_ADDR + 16, 8)) == (0x3C00, 0x7BFF, 0x8000, 0x3553)  # toward 0
    assert r.cpu.xmm(2) >> 64 == 0 and ymm_high(r, 2) == 0
    assert struct.unpack("<8f", r.memory.read(DATA_ADDR + 32, 32))[:3] == (1.0, float("inf"), -0.0)
    assert r.regs["rax"] & 0x3F == 0x38                     # OE, UE, PE


# ---- RDRAND / RDSEED, RDTSCP / RDPID, CMPXCHG16B ----------------------------------------------

def test_rdrand_rdseed(machine):
    r = run(machine, "rdrand rax\nsetc bl\nrdseed ecx\nsetc bh\nrdrand dx\nsetc sil",
            {"rax": 0, "rcx": 2**64 - 1, "rdx": 2**64 - 1})
    assert r.regs["rbx"] & 0xFFFF == 0x0101 and r.regs["rsi"] & 0xFF == 1
    assert r.regs["rcx"] >> 32 == 0                      # 32-bit destination zero-extended
    assert r.regs["rdx"] >> 16 == 0xFFFF_FFFF_FFFF       # 16-bit destination merged
    values = {run(machine, "rdrand rax").regs["rax"] for _ in range(4)}
    assert len(values) > 1
    r = run(machine, "mov eax, 0x8d5\npush rax\npopfq\nrdrand rax", {})
    assert r.flags & 0x8D5 == CF                         # the other arithmetic flags cleared


def test_rdtscp_and_rdpid(machine):
    r = machine.run(assemble("rdtscp\nrdpid rbx\nhlt"), {"rcx": 2**64 - 1},
                    memory_setup=lambda mem: setattr(machine.cpu.raw.msr, "tsc_aux", 0x1234))
    assert r.exception is None
    assert r.regs["rcx"] == 0x1234 and r.regs["rbx"] == 0x1234


def test_cmpxchg16b_alignment_and_results(machine):
    def setup(mem):
        mem.write_int(DATA_ADDR, 8, 1)
        mem.write_int(DATA_ADDR + 8, 8, 2)
    code = f"mov r8, {DATA_ADDR}\nlock cmpxchg16b [r8]\nsetz sil"
    ok = run(machine, code, {"rax": 1, "rdx": 2, "rbx": 3, "rcx": 4}, memory_setup=setup)
    assert ok.regs["rsi"] & 1 and ok.memory.read_int(DATA_ADDR, 8) == 3 and ok.memory.read_int(DATA_ADDR + 8, 8) == 4
    bad = run(machine, code, {"rax": 1, "rdx": 5, "rbx": 3, "rcx": 4}, memory_setup=setup)
    assert not bad.regs["rsi"] & 1 and (bad.regs["rax"], bad.regs["rdx"]) == (1, 2)
    assert bad.memory.read_int(DATA_ADDR, 8) == 1
    misaligned = run(machine, f"mov r8, {DATA_ADDR + 8}\ncmpxchg16b [r8]", memory_setup=setup)
    assert misaligned.exception == GP


# ---- names ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, name", [
    ("pdep rax, rbx, rcx", "pdep"), ("mulx rax, rbx, [rcx]", "mulx"), ("blsmsk eax, ebx", "blsmsk"),
    ("rorx rax, rbx, 3", "rorx"), ("vfmadd231ps ymm0, ymm1, ymm2", "vfmadd231ps"),
    ("vfnmsub132sd xmm0, xmm1, xmm2", "vfnmsub132sd"), ("vfmsubadd213pd xmm0, xmm1, xmm2", "vfmsubadd213pd"),
    ("vcvtps2ph xmm0, ymm1, 4", "vcvtps2ph"), ("vcvtph2ps ymm0, xmm1", "vcvtph2ps"), ("adcx rax, rbx", "adcx"),
    ("adox eax, ebx", "adox"), ("vpaddd ymm0, ymm1, ymm2", "vex_0ffe"),
])
def test_mnemonics(machine, source, name):
    r = machine.run(assemble(source + "\nhlt"), AVX_STATE, max_insns=0)
    assert r.cpu.mnemonic() == name
