"""MMX cases: the 64-bit SIMD instructions on MM0-MM7 and what they do to the x87 state.

From a known FPU (cases_x87.CLEAN_START), sometimes with values pushed so that TOP is not 0,
the template loads MMX registers from scratch, runs one or two MMX instructions (every
operand form: mm, m64, GPRs, immediates; the SSE and SSSE3 additions; the conversions to and
from XMM), stores the registers it used and ends, with or without EMMS, in a 16-bit FNSAVE
of the whole x87 state: TOP, the tags and the registers' exponent bits show the MMX
transition the CPU made.
"""

from __future__ import annotations

from .cases import SCRATCH_REG, SCRATCH_SIZE, Insn
from .cases_x87 import CLEAN_START, ENV16_POINTERS, SAVE_BYTES

BINARY = [
    "paddb", "paddw", "paddd", "paddq", "paddsb", "paddsw", "paddusb", "paddusw", "psubb", "psubw", "psubd", "psubq",
    "psubsb", "psubsw", "psubusb", "psubusw", "pmullw", "pmulhw", "pmulhuw", "pmuludq", "pmaddwd", "pand", "pandn",
    "por", "pxor", "pcmpeqb", "pcmpeqw", "pcmpeqd", "pcmpgtb", "pcmpgtw", "pcmpgtd", "packsswb", "packssdw", "packuswb",
    "punpcklbw", "punpcklwd", "punpckldq", "punpckhbw", "punpckhwd", "punpckhdq", "pavgb", "pavgw", "pminub",
    "pmaxub", "pminsw", "pmaxsw", "psadbw", "psrlw", "psrld", "psrlq", "psraw", "psrad", "psllw", "pslld", "psllq",
]  # fmt: skip
SSSE3 = ["pshufb", "phaddw", "phaddd", "phaddsw", "pmaddubsw", "phsubw", "phsubd", "phsubsw", "psignb", "psignw",
         "psignd", "pmulhrsw", "pabsb", "pabsw", "pabsd"]
SHIFT_IMMEDIATE = ["psrlw", "psrld", "psrlq", "psraw", "psrad", "psllw", "pslld", "psllq"]
COUNTS = [0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 200]


def mmx_case(gen) -> Insn:
    rng = gen.rng

    def at(width: int) -> str:
        return f"[{SCRATCH_REG} + {rng.randrange(0, SCRATCH_SIZE - width + 1)}]"

    lines = list(CLEAN_START)
    for _ in range(rng.choice([0, 0, 1, 2])):  # TOP != 0 when the MMX transition comes
        lines.append(rng.choice(["fld1", "fldpi", f"fld qword ptr {at(8)}"]))
    used = [f"mm{i}" for i in rng.sample(range(8), 2)]
    for register in used:
        lines.append(f"movq {register}, qword ptr {at(8)}")
    for _ in range(rng.randint(1, 2)):
        a, b = rng.choice(used), rng.choice(used)
        kind = rng.randrange(11)
        if kind == 10:  # SSSE3's MMX forms
            source = b if rng.random() < 0.7 else f"qword ptr {at(8)}"
            lines.append(f"palignr {a}, {source}, {rng.choice([0, 1, 3, 7, 8, 9, 15, 16, 200])}" if rng.random() < 0.2
                         else f"{rng.choice(SSSE3)} {a}, {source}")
        elif kind <= 3:
            op = rng.choice(BINARY)
            memory = f"dword ptr {at(4)}" if op.startswith("punpckl") else f"qword ptr {at(8)}"  # m32 there
            lines.append(f"{op} {a}, {b if rng.random() < 0.7 else memory}")
        elif kind == 4:
            lines.append(f"{rng.choice(SHIFT_IMMEDIATE)} {a}, {rng.choice(COUNTS)}")
        elif kind == 5:
            lines.append(f"pshufw {a}, {b if rng.random() < 0.7 else 'qword ptr ' + at(8)}, {rng.randrange(256)}")
        elif kind == 6:
            g32, g64 = gen._reg(32), gen._reg(64)
            lines.append(rng.choice([f"movd {a}, {g32}", f"movq {a}, {g64}", f"movd {g32}, {a}", f"movq {g64}, {a}",
                                     f"pinsrw {a}, {g32}, {rng.randrange(256)}", f"pextrw {g32}, {b}, {rng.randrange(256)}",
                                     f"pmovmskb {g32}, {b}", f"movd {a}, dword ptr {at(4)}",
                                     f"movd dword ptr {at(4)}, {a}"]))
        elif kind == 7:
            lines.append(rng.choice([f"movq qword ptr {at(8)}, {a}", f"movntq qword ptr {at(8)}, {a}",
                                     f"movq {a}, {b}"]))
        elif kind == 8:
            x = f"xmm{rng.randrange(16)}"
            lines.append(f"movdqu {x}, xmmword ptr {at(16)}")
            lines.append(rng.choice([f"cvtpi2ps {x}, {a}", f"cvtpi2pd {x}, {a}", f"cvtps2pi {a}, {x}",
                                     f"cvttps2pi {a}, {x}", f"cvtpd2pi {a}, {x}", f"cvttpd2pi {a}, {x}",
                                     f"cvtpi2pd {x}, qword ptr {at(8)}", f"movq2dq {x}, {a}", f"movdq2q {a}, {x}"]))
            lines.append(f"movdqu xmmword ptr {at(16)}, {x}")
        elif rng.random() < 0.5:
            lines.append(f"lea rdi, {at(8)}")
            lines.append(f"maskmovq {a}, {b}")
        else:  # its SSE2 form on XMM registers
            x, y = (f"xmm{i}" for i in rng.sample(range(16), 2))
            lines += [f"movdqu {x}, xmmword ptr {at(16)}", f"movdqu {y}, xmmword ptr {at(16)}",
                      f"lea rdi, {at(16)}", f"maskmovdqu {x}, {y}"]
    for register in used:
        lines.append(f"movq qword ptr {at(8)}, {register}")
    if rng.random() < 0.3:
        lines.append("emms")
    offset = rng.randrange(0, SCRATCH_SIZE - SAVE_BYTES + 1)
    lines += [f"data16 fnsave [{SCRATCH_REG} + {offset}]",
              f"mov qword ptr [{SCRATCH_REG} + {offset + ENV16_POINTERS}], 0"]
    return Insn("\n".join(lines))
