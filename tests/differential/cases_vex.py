"""Random templates for the VEX-encoded instructions and their legacy-encoded relatives:
BMI1/BMI2 and ADX on general registers (all forms, memory operands included), FMA3 and F16C
on XMM/YMM registers loaded from and stored back to scratch (so the scratch comparison sees
the vector state, as in cases._sse), and vzeroupper.

Floating-point templates sometimes run under a random MXCSR (rounding control, DAZ, FTZ;
every exception masked, flags clear), read the resulting MXCSR back onto the stack (the stack
window is compared: exception flags and all) and restore the default MXCSR before going on,
because the interpreter's SSE arithmetic does not model MXCSR and the hardware's does.
Floating-point templates are "heavy" (up to ~67 bytes): at most one per case (the generator
falls back to BMI after it), so that a case of five templates stays inside its 256-byte slot
(assemble.SLOT; the templates of cases.py stay under ~46 bytes, and so do the other ones here).

Not generated: rdrand/rdseed (not deterministic), unmasked MXCSR exceptions (#XM would leave
the guest MXCSR changed for the next case; tests/unit/test_interp_vex.py covers #XM), AVX/AVX2
arithmetic (the interpreter does not implement it).
"""

from __future__ import annotations

import struct

from .cases import AF, CF, FP32_EDGES, FP64_EDGES, GPRS64, OF, PF, SCRATCH_REG, SCRATCH_SIZE, SF, ZF, Insn, reg

BMI_OPS = ["andn", "bextr", "blsi", "blsmsk", "blsr", "bzhi", "mulx", "pdep", "pext", "rorx", "sarx", "shlx",
           "shrx", "adcx", "adox"]
# (flags written with a defined value, flags left undefined) -- SDM, per instruction.
BMI_FLAGS = {
    "andn": (SF | ZF | CF | OF, AF | PF), "bextr": (ZF | CF | OF, AF | SF | PF),
    "blsi": (SF | ZF | CF | OF, AF | PF), "blsmsk": (SF | ZF | CF | OF, AF | PF),
    "blsr": (SF | ZF | CF | OF, AF | PF), "bzhi": (SF | ZF | CF | OF, AF | PF),
}  # fmt: skip
FMA_KINDS = ["fmadd", "fmsub", "fnmadd", "fnmsub"]
# Half-precision-friendly singles: around the half range (overflow at 65520, tininess at 2^-14,
# subnormal halves down to 2^-24) plus the generic edges.
F16_EDGES = [0x477FE000, 0x477FF000, 0x477FEFFF, 0x477FFFFF, 0x47800000, 0x387FF000, 0x387FE001, 0x387FFFFF,
             0x38800000, 0x33800000, 0x33000000, 0x33000001, 0xB87FF800, 0xB87FE800, 0x3F801000, 0x3F803000,
             0x3F801001, 0xC77FF000, 0x00400000, 0x7FA00001] + FP32_EDGES
# MXCSR values for the bracketed templates: default masks, random RC, DAZ (bit 6), FTZ (bit 15).
MXCSR_DEFAULT = 0x1F80


def _vreg(rng, width: int, count: int, low: bool = False) -> list[str]:
    prefix = "ymm" if width == 256 else "xmm"
    return [f"{prefix}{r}" for r in rng.sample(range(8 if low else 16), count)]


def _random_mxcsr(rng) -> int:
    value = MXCSR_DEFAULT | rng.randrange(4) << 13
    if rng.random() < 0.3:
        value |= 0x40  # DAZ
    if rng.random() < 0.3:
        value |= 0x8000  # FTZ
    return value


def _mxcsr_bracket(op_lines: list[str], mxcsr: int) -> list[str]:
    """Run op_lines under `mxcsr`, leave the MXCSR they produced at [rsp - 4] (in the compared
    stack window) and restore the default."""
    return [f"push {mxcsr:#x}", "ldmxcsr dword ptr [rsp]", *op_lines, "stmxcsr dword ptr [rsp + 4]",
            f"mov dword ptr [rsp], {MXCSR_DEFAULT:#x}", "ldmxcsr dword ptr [rsp]", "lea rsp, [rsp + 8]"]


def _at(offset: int) -> str:
    return f"[{SCRATCH_REG} + {offset}]"


def gen_vex(self, size: int) -> Insn:
    rng = self.rng
    roll = rng.random()
    if roll < 0.5 or (roll < 0.97 and not self._long_template()):  # FMA/F16C templates are long
        return _bmi(self, size)
    if roll < 0.85:
        return _fma(self)
    if roll < 0.97:
        return _f16c(self)
    width = rng.choice([128, 256])
    a = _vreg(rng, 256, 1)[0]
    return Insn(f"vmovdqu {a}, ymmword ptr {_at(rng.randrange(0, SCRATCH_SIZE - 31))}\nvzeroupper\n"
                f"vmovdqu {'ymmword' if width == 256 else 'xmmword'} ptr {_at(rng.randrange(0, SCRATCH_SIZE - 31))}, "
                f"{a if width == 256 else a.replace('y', 'x')}")


def _bmi(self, size: int) -> Insn:
    rng = self.rng
    size = 64 if size == 64 or rng.random() < 0.4 else 32
    op = rng.choice(BMI_OPS)
    dst, src1 = self._reg(size), self._reg(size)
    src2 = self._mem(size) if rng.random() < 0.3 else self._reg(size)
    writes, undefined = BMI_FLAGS.get(op, (0, 0))
    reads = 0
    lines = []
    if op in ("bextr", "bzhi") and rng.random() < 0.7:  # a control value with a useful range
        control = rng.choice(GPRS64)
        start, length = rng.randrange(0, 72), rng.randrange(0, 72)
        value = (length << 8 | start) if op == "bextr" else start
        if rng.random() < 0.2:
            value |= rng.getrandbits(16) << 16  # upper bits are ignored
        lines.append(f"mov {reg(control, 32)}, {value:#x}")
        src1 = reg(control, size)
    if op in ("andn", "mulx", "pdep", "pext"):
        lines.append(f"{op} {dst}, {src1}, {src2}")  # r, vvvv, r/m
    elif op in ("bextr", "bzhi", "sarx", "shlx", "shrx"):
        lines.append(f"{op} {dst}, {src2}, {src1}")  # r, r/m, vvvv
    elif op in ("blsi", "blsmsk", "blsr"):
        lines.append(f"{op} {dst}, {src2}")  # vvvv, r/m
    elif op == "rorx":
        lines.append(f"rorx {dst}, {src2}, {rng.randrange(256)}")
    else:  # adcx / adox: r += r/m + CF / OF, only that flag changes
        flag = CF if op == "adcx" else OF
        reads, writes = flag, flag
        lines.append(f"{op} {dst}, {src2}")
    return Insn("\n".join(lines), reads, writes, undefined)


def _poke(offset: int, value: int, width: int) -> list[str]:
    """Store an FP bit pattern into scratch with dword immediates (no GPR needed)."""
    lines = [f"mov dword ptr {_at(offset)}, {value & 0xFFFFFFFF:#x}"]
    if width == 64:
        lines.append(f"mov dword ptr {_at(offset + 4)}, {value >> 32:#x}")
    return lines


def _fma(self) -> Insn:
    rng = self.rng
    bracket = rng.random() < 0.4  # under a random MXCSR
    kind = rng.randrange(10)
    dbl = rng.random() < 0.5
    esize = 64 if dbl else 32
    order = rng.choice(["132", "213", "231"])
    lines: list[str] = []
    if kind == 0 and not bracket:
        # Cancellation: a*a - round(a*a) is the product's rounding error, only a fused
        # multiply-add gets it (scalar; a from the edges or random).
        if dbl:
            a = rng.getrandbits(64) if rng.random() < 0.7 else rng.choice(FP64_EDGES)
            af = struct.unpack("<d", struct.pack("<Q", a))[0]
            product = struct.unpack("<Q", struct.pack("<d", af * af))[0]
        else:
            a = rng.getrandbits(32) if rng.random() < 0.7 else rng.choice(FP32_EDGES)
            af = struct.unpack("<f", struct.pack("<I", a))[0]
            try:
                product = struct.unpack("<I", struct.pack("<f", af * af))[0]
            except OverflowError:
                product = 0x7F800000
        x, y = _vreg(rng, 128, 2)
        lines += _poke(0, a, esize) + _poke(16, product, esize)
        lines += [f"vmovdqu {x}, xmmword ptr {_at(16)}", f"vmovdqu {y}, xmmword ptr {_at(0)}"]
        op = rng.choice(["fmsub", "fnmadd"])
        lines.append(f"v{op}231s{'d' if dbl else 's'} {x}, {y}, {y}")
        lines.append(f"vmovdqu xmmword ptr {_at(rng.randrange(0, 112))}, {x}")
        return Insn("\n".join(lines))
    scalar = kind <= 3
    if scalar:
        op = f"v{rng.choice(FMA_KINDS)}{order}s{'d' if dbl else 's'}"
        width = 128
    else:
        op = f"v{rng.choice(FMA_KINDS + ['fmaddsub', 'fmsubadd'])}{order}p{'d' if dbl else 's'}"
        width = rng.choice([128, 256])
    limit = 128 - 32 if bracket else SCRATCH_SIZE - 31  # bracketed: disp8 offsets, short encodings
    a, b, c = _vreg(rng, 256, 3, low=bracket)
    if rng.random() < 0.15:
        b = a  # the same register as two operands
    offsets = [rng.randrange(0, limit) for _ in range(3)]
    if not bracket and rng.random() < 0.5:  # an edge value into the low element of a source
        slot = rng.randrange(3)
        lines += _poke(offsets[slot], rng.choice(FP64_EDGES if dbl else FP32_EDGES), esize)
    for name, offset in zip((a, b, c), offsets):
        lines.append(f"vmovdqu {name}, ymmword ptr {_at(offset)}")  # full YMM: upper halves known
    regs = [r if width == 256 else r.replace("y", "x") for r in (a, b, c)]
    if rng.random() < 0.3:  # r/m source in memory
        mem_width = esize if scalar else width
        ptr = {32: "dword ptr", 64: "qword ptr", 128: "xmmword ptr", 256: "ymmword ptr"}[mem_width]
        regs[2] = f"{ptr} {_at(rng.randrange(0, limit))}"
    elif scalar:
        regs = [r.replace("y", "x") for r in regs]
    if scalar:
        regs[0], regs[1] = regs[0].replace("y", "x"), regs[1].replace("y", "x")
    op_line = f"{op} {regs[0]}, {regs[1]}, {regs[2]}"
    store = f"vmovdqu ymmword ptr {_at(rng.randrange(0, limit))}, {a}"  # bits 255:128 zeroed for VEX.128
    if bracket:
        lines += _mxcsr_bracket([op_line], _random_mxcsr(rng))
    else:
        lines.append(op_line)
    lines.append(store)
    return Insn("\n".join(lines))


def _f16c(self) -> Insn:
    rng = self.rng
    bracket = rng.random() < 0.4
    width = rng.choice([128, 256])
    limit = 128 - 32 if bracket else SCRATCH_SIZE - 31
    a, b = _vreg(rng, 256, 2, low=bracket)
    lines: list[str] = []
    src_offset = rng.randrange(0, limit)
    if rng.random() < 0.5 and not bracket:
        for _ in range(2):
            lines += _poke(src_offset + 4 * rng.randrange(width // 32), rng.choice(F16_EDGES), 32)
    lines.append(f"vmovdqu {a}, ymmword ptr {_at(src_offset)}")
    lines.append(f"vmovdqu {b}, ymmword ptr {_at(rng.randrange(0, limit))}")
    half_width = width // 2
    if rng.random() < 0.5:  # vcvtph2ps: halves in, singles out
        src = a.replace("y", "x")
        if rng.random() < 0.3:
            src = f"{'xmmword' if width == 256 else 'qword'} ptr {_at(rng.randrange(0, limit))}"
        op_line = f"vcvtph2ps {b if width == 256 else b.replace('y', 'x')}, {src}"
    else:  # vcvtps2ph: singles in, halves out (register or memory), rounding by imm8
        imm = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, rng.randrange(256)])
        source = a if width == 256 else a.replace("y", "x")
        if rng.random() < 0.3:
            ptr = "xmmword" if half_width == 128 else "qword"
            op_line = f"vcvtps2ph {ptr} ptr {_at(rng.randrange(0, limit))}, {source}, {imm}"
        else:
            op_line = f"vcvtps2ph {b.replace('y', 'x')}, {source}, {imm}"
    store = f"vmovdqu ymmword ptr {_at(rng.randrange(0, limit))}, {b}"
    if bracket:
        lines += _mxcsr_bracket([op_line], _random_mxcsr(rng))
    else:
        lines.append(op_line)
    lines.append(store)
    return Insn("\n".join(lines))

