"""Random templates for AVX and AVX2 (the `avx` family): the VEX.128 and VEX.256 forms of the
SSE..SSE4.2 instructions and the AVX-only ones (broadcasts, 128-bit inserts/extracts,
permutes, masked moves, per-element shifts, gathers).

Like cases_vex.py, a template loads full YMM registers from the scratch area (vmovdqu),
applies one instruction and stores the registers it wrote back as full YMM values, so the
scratch comparison sees the results and VEX.128's zeroing of bits 255:128. On top of it:

- Floating point runs under a random MXCSR most of the time (rounding, DAZ, FTZ, sticky
  flags, and a random set of unmasked exceptions, as cases_sse4.py does), stores the MXCSR it
  leaves to scratch and restores 0x1f80; an unmasked exception ends the case in #XM (the
  harness compares the MXCSR and the vector registers the fault left). vdpps/vdppd run with
  exceptions masked only (see sse_fp.c). Edge values (NaNs, denormals, infinities...) are
  written into the sources first.
- Memory operands at any offset (VEX has no alignment rule), aligned for vmovntps/pd/dq and
  vmovntdqa; narrow ones (m32/m64/m128) where the instruction reads fewer bytes.
- Masked loads and stores with random masks on scratch; gathers with indices shifted into
  range (vpsrld/vpsrad/vpsrlq) so the elements land in scratch, random masks, every scale.

Every template is long (one per case: cases._long_template), so a case stays in its slot.
"""

from __future__ import annotations

from .cases import ARITH, FP32_EDGES, FP64_EDGES, Insn
from .cases_sse4 import F32, F64, _mxcsr

MXCSR_DEFAULT = 0x1F80
MEM = {1: "byte", 2: "word", 4: "dword", 8: "qword", 16: "xmmword", 32: "ymmword"}

# (name, width rule): "nds" dest = vvvv OP r/m; "un" dest = OP r/m (no vvvv)
FP_NDS = [f"v{op}{t}" for op in ("add", "sub", "mul", "div", "min", "max") for t in ("ps", "pd")] + \
    ["vaddsubps", "vaddsubpd", "vhaddps", "vhaddpd", "vhsubps", "vhsubpd"]
FP_UNARY = ["vsqrtps", "vsqrtpd", "vrsqrtps", "vrcpps", "vcvtdq2ps", "vcvtps2dq", "vcvttps2dq"]
FP_SCALAR = [f"v{op}{t}" for op in ("add", "sub", "mul", "div", "min", "max", "sqrt") for t in ("ss", "sd")] + \
    ["vrsqrtss", "vrcpss", "vcvtss2sd", "vcvtsd2ss"]
BITWISE = [f"v{op}{t}" for op in ("and", "andn", "or", "xor", "unpckl", "unpckh") for t in ("ps", "pd")]
INT_NDS = [
    "vpunpcklbw", "vpunpcklwd", "vpunpckldq", "vpacksswb", "vpcmpgtb", "vpcmpgtw", "vpcmpgtd", "vpackuswb",
    "vpunpckhbw", "vpunpckhwd", "vpunpckhdq", "vpackssdw", "vpunpcklqdq", "vpunpckhqdq", "vpcmpeqb", "vpcmpeqw",
    "vpcmpeqd", "vpaddq", "vpmullw", "vpsubusb", "vpsubusw", "vpminub", "vpand", "vpaddusb", "vpaddusw", "vpmaxub",
    "vpandn", "vpavgb", "vpavgw", "vpmulhuw", "vpmulhw", "vpsubsb", "vpsubsw", "vpminsw", "vpor", "vpaddsb",
    "vpaddsw", "vpmaxsw", "vpxor", "vpmuludq", "vpmaddwd", "vpsadbw", "vpsubb", "vpsubw", "vpsubd", "vpsubq",
    "vpaddb", "vpaddw", "vpaddd", "vpshufb", "vphaddw", "vphaddd", "vphaddsw", "vpmaddubsw", "vphsubw", "vphsubd",
    "vphsubsw", "vpsignb", "vpsignw", "vpsignd", "vpmulhrsw", "vpmuldq", "vpcmpeqq", "vpackusdw", "vpcmpgtq",
    "vpminsb", "vpminsd", "vpminuw", "vpminud", "vpmaxsb", "vpmaxsd", "vpmaxuw", "vpmaxud", "vpmulld",
    "vpsllvd", "vpsllvq", "vpsrlvd", "vpsrlvq", "vpsravd", "vpermilps", "vpermilpd",
]
INT_UNARY = ["vpabsb", "vpabsw", "vpabsd", "vmovshdup", "vmovsldup"]
SHIFT_REG = ["vpsrlw", "vpsrld", "vpsrlq", "vpsraw", "vpsrad", "vpsllw", "vpslld", "vpsllq"]
SHIFT_IMM = SHIFT_REG + ["vpsrldq", "vpslldq"]
PMOV = {f"vpmov{s}x{t}": (f, to) for s in "sz" for t, f, to in
        (("bw", 1, 2), ("bd", 1, 4), ("bq", 1, 8), ("wd", 2, 4), ("wq", 2, 8), ("dq", 4, 8))}
IMM_NDS = {"vshufps": 256, "vshufpd": 256, "vblendps": 256, "vblendpd": 16, "vpblendw": 256, "vpalignr": 40,
           "vmpsadbw": 64, "vpblendd": 256, "vdpps": 256}


def _at(offset: int) -> str:
    return f"[r15 + {offset}]"


def _name(reg: int, width: int) -> str:
    return f"{'ymm' if width == 256 else 'xmm'}{reg}"


class _Builder:
    """One template: YMM registers loaded from scratch, one operation, results stored back."""

    def __init__(self, gen):
        self.gen, self.rng = gen, gen.rng
        self.lines: list[str] = []
        self.stores: list[int] = []
        self.writes = 0
        self.mxcsr = None

    def near(self, width: int = 32) -> int:  # a disp8 offset: short encodings
        return self.rng.randrange(0, 128 - width + 1)

    def anywhere(self, width: int) -> int:
        return self.rng.randrange(0, 256 - width + 1)

    def regs(self, count: int) -> list[int]:
        picked = self.rng.sample(range(16), count)
        for r in picked:
            self.lines.append(f"vmovdqu ymm{r}, ymmword ptr {_at(self.near())}")
        return picked

    def edge(self, dbl: bool | None = None) -> int:
        """Write one or two edge values at a disp8 offset; returns it (for a load from there)."""
        offset = self.near()
        if dbl is None:
            dbl = self.rng.random() < 0.5
        if dbl:
            value = self.rng.choice(F64 if self.rng.random() < 0.5 else FP64_EDGES)
            words = [value & 0xFFFFFFFF, value >> 32]
            lane = 8 * self.rng.randrange(4)
        else:
            words = [self.rng.choice(F32 if self.rng.random() < 0.5 else FP32_EDGES)]
            lane = 4 * self.rng.randrange(8)
        self.lines += [f"mov dword ptr {_at(offset + lane + 4 * i)}, {word:#x}" for i, word in enumerate(words)]
        return offset

    def fp_regs(self, count: int, dbl: bool | None = None) -> list[int]:
        picked = self.rng.sample(range(16), count)
        for r in picked:
            offset = self.edge(dbl) if self.rng.random() < 0.35 else self.near()
            self.lines.append(f"vmovdqu ymm{r}, ymmword ptr {_at(offset)}")
        return picked

    def with_mxcsr(self, allow_unmasked: bool = True) -> None:
        if self.rng.random() < 0.25:
            return
        value = _mxcsr(self.rng)
        if not allow_unmasked:
            value |= 0x1F80
        self.mxcsr = value
        slot = self.near(4)
        if ~value & 0x1F80:  # may fault: no flag left undefined by an earlier template
            self.lines.insert(0, f"cmp {self.gen._reg(64)}, {self.gen._reg(64)}")
            self.writes = ARITH
        self.lines.insert(1 if ~value & 0x1F80 else 0, f"ldmxcsr dword ptr {_at(slot)}")
        self.lines.insert(1 if ~value & 0x1F80 else 0, f"mov dword ptr {_at(slot)}, {value:#x}")

    def op(self, text: str, writes: int = 0) -> None:
        self.lines.append(text)
        self.writes |= writes

    def store(self, *regs: int) -> None:
        self.stores += regs

    def insn(self) -> Insn:
        for r in self.stores:
            self.lines.append(f"vmovdqu ymmword ptr {_at(self.near())}, ymm{r}")
        if self.mxcsr is not None:
            slot = self.near(4)
            self.lines += [f"stmxcsr dword ptr {_at(self.near(4))}", f"mov dword ptr {_at(slot)}, {MXCSR_DEFAULT:#x}",
                           f"ldmxcsr dword ptr {_at(slot)}"]
        return Insn("\n".join(self.lines), 0, self.writes)

    def src(self, reg: int, width: int, mem_width: int | None = None, p: float = 0.3) -> str:
        """A register or (with probability p) a memory operand of mem_width bytes."""
        if self.rng.random() < p:
            mem_width = mem_width or width // 8
            return f"{MEM[mem_width]} ptr {_at(self.anywhere(mem_width))}"
        return _name(reg, width)


def gen_avx(gen, size: int) -> Insn | None:
    if not gen._long_template():
        return None
    b = _Builder(gen)
    kind = b.rng.choices(
        ["fp", "fp_scalar", "fp_imm", "fp_cvt", "fp_flags", "int", "int_imm", "shift", "pmov", "move", "gpr",
         "perm", "blendv", "mask", "gather", "string", "test"],
        [10, 6, 5, 5, 3, 10, 4, 4, 2, 6, 4, 6, 2, 4, 5, 2, 2])[0]
    globals()[f"_{kind}"](b)
    return b.insn()


def _width(b) -> int:
    return b.rng.choice([128, 256])


def _fp(b) -> None:
    w = _width(b)
    if b.rng.random() < 0.7:
        op = b.rng.choice(FP_NDS)
        d, x, y = b.fp_regs(3, op.endswith("pd"))
        b.with_mxcsr()
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}")
    else:
        op = b.rng.choice(FP_UNARY + BITWISE)
        d, x, y = b.fp_regs(3, op.endswith("pd"))
        b.with_mxcsr()
        if op in BITWISE:
            b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}")
        else:
            b.op(f"{op} {_name(d, w)}, {b.src(y, w)}")
    b.store(d)


def _fp_scalar(b) -> None:
    op = b.rng.choice(FP_SCALAR + ["vcmpss", "vcmpsd", "vroundss", "vroundsd"])
    dbl = op == "vcvtsd2ss" if op in ("vcvtss2sd", "vcvtsd2ss") else op.endswith("sd")
    d, x, y = b.fp_regs(3, dbl)
    b.with_mxcsr()
    src = b.src(y, 128, 8 if dbl else 4)
    imm = ""
    if op.startswith("vcmp"):
        imm = f", {b.rng.randrange(32)}"
    elif op.startswith("vround"):
        imm = f", {b.rng.randrange(16)}"
    b.op(f"{op} {_name(d, 128)}, {_name(x, 128)}, {src}{imm}")
    b.store(d)


def _fp_imm(b) -> None:
    w = _width(b)
    op = b.rng.choice(["vcmpps", "vcmppd", "vcmpps", "vcmppd", "vroundps", "vroundpd", "vdpps", "vdppd"])
    if op == "vdppd":
        w = 128
    d, x, y = b.fp_regs(3, op.endswith("pd"))
    b.with_mxcsr(allow_unmasked=not op.startswith("vdp"))
    if op.startswith("vround"):
        b.op(f"{op} {_name(d, w)}, {b.src(y, w)}, {b.rng.randrange(16)}")
    else:
        imm = b.rng.randrange(32 if op.startswith("vcmp") else 256)
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}, {imm}")
    b.store(d)


def _fp_cvt(b) -> None:
    op = b.rng.choice(["vcvtps2pd", "vcvtpd2ps", "vcvtdq2pd", "vcvtpd2dq", "vcvttpd2dq"])
    w = _width(b)
    widen = op in ("vcvtps2pd", "vcvtdq2pd")
    d, y = b.fp_regs(2, not widen and op != "vcvtdq2pd")
    b.with_mxcsr()
    if widen:  # ymm <- xmm/m128, xmm <- xmm/m64
        src = b.src(y, 128, w // 16)
        b.op(f"{op} {_name(d, w)}, {src}")
    else:  # xmm <- ymm/m256 or xmm/m128
        src = b.src(y, w)
        b.op(f"{op} {_name(d, 128)}, {src}")
    b.store(d)


def _fp_flags(b) -> None:
    op = b.rng.choice(["vcomiss", "vucomiss", "vcomisd", "vucomisd"])
    x, y = b.fp_regs(2, op.endswith("sd"))
    b.with_mxcsr()
    b.op(f"{op} {_name(x, 128)}, {b.src(y, 128, 8 if op.endswith('sd') else 4)}", ARITH)


def _int(b) -> None:
    w = _width(b)
    d, x, y = b.regs(3)
    if b.rng.random() < 0.15 and w == 256:
        op = b.rng.choice(["vpermd", "vpermps"])
    elif b.rng.random() < 0.2:
        op = b.rng.choice(INT_UNARY + ["vmovddup", "vphminposuw"])
        if op == "vphminposuw":
            w = 128
        mem = 8 if op == "vmovddup" and w == 128 else None
        b.op(f"{op} {_name(d, w)}, {b.src(y, w, mem)}")
        b.store(d)
        return
    else:
        op = b.rng.choice(INT_NDS)
    if op in ("vpsllvd", "vpsllvq", "vpsrlvd", "vpsrlvq", "vpsravd") and b.rng.random() < 0.7:
        b.op(f"vpsrl{'q' if op.endswith('q') else 'd'} ymm{y}, ymm{y}, {b.rng.choice([26, 57, 58])}")  # counts near the width
        src = _name(y, w)
    else:
        src = b.src(y, w)
    b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {src}")
    b.store(d)


def _int_imm(b) -> None:
    w = _width(b)
    d, x, y = b.regs(3)
    if b.rng.random() < 0.3:
        op = b.rng.choice(["vpshufd", "vpshufhw", "vpshuflw", "vpermilps", "vpermilpd"]
                          + (["vpermq", "vpermpd"] if w == 256 else []))
        b.op(f"{op} {_name(d, w)}, {b.src(y, w)}, {b.rng.randrange(256)}")
    else:
        op = b.rng.choice(sorted(IMM_NDS))
        if op == "vdpps":
            op = "vpblendd"
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}, {b.rng.randrange(IMM_NDS[op])}")
    b.store(d)


def _shift(b) -> None:
    w = _width(b)
    d, x, y = b.regs(3)
    if b.rng.random() < 0.5:
        op = b.rng.choice(SHIFT_IMM)
        count = b.rng.choice([0, 1, 3, 7, 8, 15, 16, 17, 31, 32, 63, 64, 200, b.rng.randrange(256)])
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {count}")
    else:
        op = b.rng.choice(SHIFT_REG)
        if b.rng.random() < 0.7:  # a useful count: low quadword of y small
            b.op(f"vpsrlq xmm{y}, xmm{y}, 58")
            src = _name(y, 128)
        else:
            src = b.src(y, 128)
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {src}")
    b.store(d)


def _pmov(b) -> None:
    w = _width(b)
    d, y = b.regs(2)
    op = b.rng.choice(sorted(PMOV))
    frm, to = PMOV[op]
    b.op(f"{op} {_name(d, w)}, {b.src(y, 128, w // 8 // to * frm)}")
    b.store(d)


def _move(b) -> None:
    rng = b.rng
    d, x, y = b.regs(3)
    form = rng.randrange(12)
    if form == 0:  # vmovss / vmovsd: three-operand register form, load, store
        op = rng.choice(["vmovss", "vmovsd"])
        width = 4 if op == "vmovss" else 8
        roll = rng.randrange(3)
        if roll == 0:
            b.op(f"{op} xmm{d}, xmm{x}, xmm{y}")
        elif roll == 1:
            b.op(f"{op} xmm{d}, {MEM[width]} ptr {_at(b.anywhere(width))}")
        else:
            b.op(f"{op} {MEM[width]} ptr {_at(b.anywhere(width))}, xmm{d}")
    elif form == 1:  # vmovlps/hps/lpd/hpd loads (three operands) and stores, vmovhlps/lhps
        op = rng.choice(["vmovlps", "vmovhps", "vmovlpd", "vmovhpd", "vmovhlps", "vmovlhps"])
        if op in ("vmovhlps", "vmovlhps"):
            b.op(f"{op} xmm{d}, xmm{x}, xmm{y}")
        elif rng.random() < 0.6:
            b.op(f"{op} xmm{d}, xmm{x}, qword ptr {_at(b.anywhere(8))}")
        else:
            b.op(f"{op} qword ptr {_at(b.anywhere(8))}, xmm{d}")
    elif form == 2:  # vmovd / vmovq
        g = b.gen._reg(rng.choice([32, 64]))
        op = "vmovq" if g[0] == "r" and g[-1] not in "dwb" else "vmovd"
        roll = rng.randrange(5)
        if roll == 0:
            b.op(f"{op} xmm{d}, {g}")
        elif roll == 1:
            b.op(f"{op} {g}, xmm{x}")
        elif roll == 2:
            b.op(f"vmovq xmm{d}, {b.src(y, 128, 8, 0.5)}")
        elif roll == 3:
            b.op(f"vmovq qword ptr {_at(b.anywhere(8))}, xmm{x}")
        else:
            width = 8 if op == "vmovq" else 4
            b.op(f"{op} xmm{d}, {MEM[width]} ptr {_at(b.anywhere(width))}")
    elif form == 3:  # non-temporal stores and loads: aligned
        w = _width(b)
        op = rng.choice(["vmovntps", "vmovntpd", "vmovntdq", "vmovntdqa"])
        if op == "vmovntdqa":
            b.op(f"vmovntdqa {_name(d, w)}, {MEM[w // 8]} ptr {_at(rng.randrange(256 // (w // 8)) * (w // 8))}")
        else:
            b.op(f"{op} {MEM[w // 8]} ptr {_at(rng.randrange(256 // (w // 8)) * (w // 8))}, {_name(x, w)}")
    elif form == 4:
        w = _width(b)
        b.op(f"vlddqu {_name(d, w)}, {MEM[w // 8]} ptr {_at(b.anywhere(w // 8))}")
    elif form == 5:  # broadcasts
        w = _width(b)
        op = rng.choice(["vbroadcastss", "vpbroadcastb", "vpbroadcastw", "vpbroadcastd", "vpbroadcastq"]
                        + (["vbroadcastsd", "vbroadcastf128", "vbroadcasti128"] if w == 256 else []))
        esize = {"vbroadcastss": 4, "vbroadcastsd": 8, "vpbroadcastb": 1, "vpbroadcastw": 2, "vpbroadcastd": 4,
                 "vpbroadcastq": 8, "vbroadcastf128": 16, "vbroadcasti128": 16}[op]
        src = b.src(y, 128, esize, 1.0 if esize == 16 else 0.5)
        b.op(f"{op} {_name(d, w)}, {src}")
    elif form == 6:  # 128-bit inserts and extracts
        op = rng.choice(["vinsertf128", "vinserti128", "vextractf128", "vextracti128"])
        if op.startswith("vinsert"):
            b.op(f"{op} ymm{d}, ymm{x}, {b.src(y, 128)}, {rng.randrange(4)}")
        elif rng.random() < 0.4:
            b.op(f"{op} xmmword ptr {_at(b.anywhere(16))}, ymm{x}, {rng.randrange(4)}")
        else:
            b.op(f"{op} xmm{d}, ymm{x}, {rng.randrange(4)}")
    elif form == 7:  # vpextr* / vextractps
        op = rng.choice(["vpextrb", "vpextrw", "vpextrd", "vpextrq", "vextractps"])
        width = {"vpextrb": 1, "vpextrw": 2, "vpextrd": 4, "vpextrq": 8, "vextractps": 4}[op]
        gpr = b.gen._reg(64 if width == 8 else 32)
        dst = f"{MEM[width]} ptr {_at(b.anywhere(width))}" if rng.random() < 0.4 else gpr
        b.op(f"{op} {dst}, xmm{x}, {rng.randrange(256)}")
    elif form == 8:  # vpinsr* / vinsertps
        op = rng.choice(["vpinsrb", "vpinsrw", "vpinsrd", "vpinsrq", "vinsertps"])
        width = {"vpinsrb": 1, "vpinsrw": 2, "vpinsrd": 4, "vpinsrq": 8, "vinsertps": 4}[op]
        if op == "vinsertps":
            src = b.src(y, 128, 4, 0.4)
        else:
            src = f"{MEM[width]} ptr {_at(b.anywhere(width))}" if rng.random() < 0.4 else \
                b.gen._reg(64 if width == 8 else 32)
        b.op(f"{op} xmm{d}, xmm{x}, {src}, {rng.randrange(256)}")
    elif form == 9:  # vperm2f128 / vperm2i128
        op = rng.choice(["vperm2f128", "vperm2i128"])
        b.op(f"{op} ymm{d}, ymm{x}, {b.src(y, 256)}, {rng.randrange(256)}")
    elif form == 10:  # sign masks
        w = _width(b)
        op = rng.choice(["vmovmskps", "vmovmskpd", "vpmovmskb"])
        b.op(f"{op} {b.gen._reg(rng.choice([32, 64]))}, {_name(x, w)}")
    else:  # vmovddup / vmovsldup / vmovshdup / whole-register moves, vzeroupper
        w = _width(b)
        op = rng.choice(["vmovddup", "vmovsldup", "vmovshdup", "vzeroupper", "vzeroall"])
        if op.startswith("vzero"):
            b.op(op)
            b.store(x, y)
        else:
            b.op(f"{op} {_name(d, w)}, {b.src(y, w, 8 if op == 'vmovddup' and w == 128 else None)}")
    b.store(d)


def _gpr(b) -> None:
    rng = b.rng
    op = rng.choice(["vcvtsi2ss", "vcvtsi2sd", "vcvtss2si", "vcvtsd2si", "vcvttss2si", "vcvttsd2si",
                     "vldmxcsr_stmxcsr"])
    if op == "vldmxcsr_stmxcsr":
        slot = b.near(4)
        b.op(f"mov dword ptr {_at(slot)}, {_mxcsr(b.rng) | 0x1F80:#x}")
        b.op(f"vldmxcsr dword ptr {_at(slot)}")
        b.op(f"vstmxcsr dword ptr {_at(b.near(4))}")
        b.mxcsr = MXCSR_DEFAULT
        return
    d, x = b.fp_regs(2, "sd" in op)
    b.with_mxcsr()
    g = b.gen._reg(rng.choice([32, 64]))
    wide = g[0] == "r" and g[-1] not in "dwb"
    if op.startswith("vcvtsi"):
        if rng.random() < 0.5:
            value = rng.choice([0, 1, -1, 1 << 24 | 1, (1 << 53) + 1, (1 << 31) - 1, rng.getrandbits(31)])
            b.op(f"mov {g}, {value if wide or value < 1 << 31 else value & 0x7FFFFFFF}")
        src = g if rng.random() < 0.7 else f"{'qword' if wide else 'dword'} ptr {_at(b.anywhere(8))}"
        b.op(f"{op} xmm{d}, xmm{x}, {src}")
        b.store(d)
    else:
        b.op(f"{op} {g}, {b.src(x, 128, 8 if 'sd' in op else 4)}")


def _perm(b) -> None:
    d, x, y = b.regs(3)
    op = b.rng.choice(["vpermd", "vpermps", "vpermq", "vpermpd", "vpermilps", "vpermilpd", "vperm2f128",
                       "vperm2i128", "vshufps", "vshufpd", "vpalignr"])
    w = 256 if op in ("vpermd", "vpermps", "vpermq", "vpermpd", "vperm2f128", "vperm2i128") else _width(b)
    if op in ("vpermq", "vpermpd"):
        b.op(f"{op} ymm{d}, {b.src(y, 256)}, {b.rng.randrange(256)}")
    elif op in ("vpermilps", "vpermilpd") and b.rng.random() < 0.5:
        b.op(f"{op} {_name(d, w)}, {b.src(y, w)}, {b.rng.randrange(256)}")
    elif op in ("vperm2f128", "vperm2i128", "vshufps", "vshufpd", "vpalignr"):
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}, {b.rng.randrange(256 if op != 'vpalignr' else 40)}")
    else:
        b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}")
    b.store(d)


def _blendv(b) -> None:
    w = _width(b)
    d, x, y, m = b.regs(4)
    op = b.rng.choice(["vblendvps", "vblendvpd", "vpblendvb"])
    b.op(f"{op} {_name(d, w)}, {_name(x, w)}, {b.src(y, w)}, {_name(m, w)}")
    b.store(d)


def _mask(b) -> None:
    w = _width(b)
    d, m = b.regs(2)
    if b.rng.random() < 0.15:  # vmaskmovdqu: the bytes of d selected by m, to [rdi]
        b.op(f"lea rdi, {_at(b.anywhere(16))}")
        b.op(f"vmaskmovdqu {_name(d, 128)}, {_name(m, 128)}")
        return
    op = b.rng.choice(["vmaskmovps", "vmaskmovpd", "vpmaskmovd", "vpmaskmovq"])
    mem = f"{MEM[w // 8]} ptr {_at(b.anywhere(w // 8))}"
    if b.rng.random() < 0.5:
        b.op(f"{op} {_name(d, w)}, {_name(m, w)}, {mem}")
        b.store(d)
    else:
        b.op(f"{op} {mem}, {_name(m, w)}, {_name(d, w)}")


def _gather(b) -> None:
    rng = b.rng
    op = rng.choice(["vgatherdps", "vgatherdpd", "vgatherqps", "vgatherqpd", "vpgatherdd", "vpgatherdq",
                     "vpgatherqd", "vpgatherqq"])
    w = _width(b)
    d, i, m = b.regs(3)
    qidx = op.split("gather")[1][0] == "q"
    esize = 8 if op in ("vgatherdpd", "vgatherqpd", "vpgatherdq", "vpgatherqq") else 4
    scale = rng.choice([1, 2, 4, 8])
    signed = not qidx and rng.random() < 0.5
    if qidx:
        b.op(f"vpsrlq ymm{i}, ymm{i}, 59")  # 0..31
        base = 0
    elif signed:
        b.op(f"vpsrad ymm{i}, ymm{i}, 27")  # -16..15
        base = 128
    else:
        b.op(f"vpsrld ymm{i}, ymm{i}, 27")  # 0..31
        base = 0
    span = 31 * scale + esize
    if base == 0:
        base = rng.randrange(0, max(1, 256 - span + 1))
    # the widths: dword indices with qword elements (or qword indices with dword elements) take
    # an index (or destination) register half as wide
    if esize == 8 and not qidx:
        dst, idx, msk = _name(d, w), _name(i, 128), _name(m, w)
    elif esize == 4 and qidx:
        dst, idx, msk = _name(d, 128), _name(i, w), _name(m, 128)
    else:
        dst, idx, msk = _name(d, w), _name(i, w), _name(m, w)
    b.op(f"{op} {dst}, [r15 + {idx}*{scale} + {base}], {msk}")
    b.store(d, m)


def _string(b) -> None:
    x, y = b.regs(2)
    op = b.rng.choice(["vpcmpestri", "vpcmpestrm", "vpcmpistri", "vpcmpistrm"])
    if "estr" in op:
        b.op(f"mov eax, {b.rng.choice([0, 3, 8, 16, 17, -5, b.rng.randrange(-20, 20)])}")
        b.op(f"mov edx, {b.rng.choice([0, 5, 8, 16, 17, -9, b.rng.randrange(-20, 20)])}")
    b.op(f"{op} xmm{x}, {b.src(y, 128, 16, 0.4)}, {b.rng.randrange(256)}", ARITH)
    b.store(0)


def _test(b) -> None:
    w = _width(b)
    x, y = b.regs(2)
    op = b.rng.choice(["vptest", "vtestps", "vtestpd"])
    b.op(f"{op} {_name(x, w)}, {b.src(y, w)}", ARITH)
