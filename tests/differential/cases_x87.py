"""x87 cases: load values, compute, store, and save the whole FPU state to scratch.

Each case starts from a known FPU (cases in a batch share it): FNINIT, eight FLDZ and FNINIT
again, so that the empty registers hold zeros -- what an empty register holds is kept by
FNINIT but not across KVM's switch of the FPU between cases, which may save the state
XSAVE's init optimization considers initial and restore zeros. Then it sometimes loads a random
control word (precision, rounding, and now and then unmasked exceptions, which end the case
in #MF at the next waiting instruction), pushes values from scratch (float, integer, BCD and
80-bit edge values: denormals, pseudo-denormals, unnormals, NaNs, infinities, values that
overflow integer stores), runs one to three computing instructions, stores a result and
ends with a 16-bit FNSAVE into scratch: control, status and full tag word and all eight
registers are then compared with the CPU's. The FNSAVE's instruction and data pointers are
cleared before the comparison: they are addresses, and which instructions update them (and
whether FOP is kept) differs between processor generations.
"""

from __future__ import annotations

from .cases import ARITH, CF, PF, SCRATCH_REG, SCRATCH_SIZE, ZF, Insn

SAVE_BYTES = 14 + 80  # a 16-bit FNSAVE: the environment, then ST(0)..ST(7)
ENV16_POINTERS = 6  # FIP, FCS, FDP, FDS: four words from offset 6 of the 16-bit environment

# 80-bit values worth meeting, as (exponent word, mantissa).
FP80_EDGES = [
    (0x0000, 0), (0x8000, 0), (0x3FFF, 1 << 63), (0xBFFF, 1 << 63), (0x7FFF, 1 << 63), (0xFFFF, 1 << 63),
    (0x7FFF, 0xC000000000000000), (0xFFFF, 0xC000000000000000), (0x7FFF, 0xA000000000000001),
    (0x7FFF, 0xC000000012345678), (0x0000, 1), (0x0000, 0x7FFFFFFFFFFFFFFF), (0x0000, 0x8000000000000000),
    (0x3FFF, 0x4000000000000000), (0x7FFF, 0), (0x7FFF, 0x4000000000000000), (0x7FFE, 0xFFFFFFFFFFFFFFFF),
    (0x0001, 1 << 63), (0x403E, 1 << 63), (0xC03E, 1 << 63), (0x401D, 0xFFFFFFFE00000000),
    (0x400D, 0xFFFF000000000000), (0x4000, 0xC90FDAA22168C235), (0x403F, 0x8AC7230489E80000),
    (0x3FFE, 0xFFFFFFFFFFFFFFFF), (0x4032, 0xB504F333F9DE6484), (0xC00A, 0x9C40000000000000),
]  # fmt: skip

# A known FPU to start from: see the module docstring.
CLEAN_START = ["fninit", *["fldz"] * 8, "fninit"]
CONTROL_WORDS_MASKED = 0x3F
ARITH_REG = ["fadd", "fmul", "fsub", "fsubr", "fdiv", "fdivr"]
ARITH_MEM = ["fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr"]
NULLARY = ["fchs", "fabs", "ftst", "fxam", "fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz",
           "f2xm1", "fyl2x", "fptan", "fpatan", "fxtract", "fprem1", "fdecstp", "fincstp", "fprem", "fyl2xp1",
           "fsqrt", "fsincos", "frndint", "fscale", "fsin", "fcos", "fnop", "fcompp", "fucompp", "fnclex", "fwait"]
FCMOV = ["fcmovb", "fcmove", "fcmovbe", "fcmovu", "fcmovnb", "fcmovne", "fcmovnbe", "fcmovnu"]
COMPARE_FLAGS = ["fcomi", "fcomip", "fucomi", "fucomip"]
REG_ONE = ["fcom", "fcomp", "fucom", "fucomp", "fxch", "fld", "fst", "fstp", "ffree", "ffreep"]
INT_MEM = ["fiadd", "fimul", "ficom", "ficomp", "fisub", "fisubr", "fidiv", "fidivr"]
STORES = [("fst", "dword"), ("fst", "qword"), ("fstp", "dword"), ("fstp", "qword"), ("fstp", "tbyte"),
          ("fist", "word"), ("fist", "dword"), ("fistp", "word"), ("fistp", "dword"), ("fistp", "qword"),
          ("fisttp", "word"), ("fisttp", "dword"), ("fisttp", "qword"), ("fbstp", "tbyte"),
          ("fnstcw", "word"), ("fnstsw", "word")]  # fmt: skip


def x87_case(gen) -> Insn | None:
    """An x87 template (a long one: Generator.gen_x87 allows one per case)."""
    rng = gen.rng

    def at(width: int) -> str:
        return f"[{SCRATCH_REG} + {rng.randrange(0, SCRATCH_SIZE - width + 1)}]"

    lines = list(CLEAN_START)
    reads, writes = 0, 0
    if rng.random() < 0.4:
        precision, rounding = rng.randrange(4), rng.randrange(4)
        masks = CONTROL_WORDS_MASKED if rng.random() < 0.85 else rng.randrange(0x40)
        offset = rng.randrange(0, SCRATCH_SIZE - 1)
        lines += [f"mov word ptr [{SCRATCH_REG} + {offset}], {rounding << 10 | precision << 8 | masks:#x}",
                  f"fldcw word ptr [{SCRATCH_REG} + {offset}]"]
    if rng.random() < 0.5:
        exponent, mantissa = rng.choice(FP80_EDGES)
        offset = rng.randrange(0, SCRATCH_SIZE - 9)
        lines += [f"mov rax, {mantissa:#x}", f"mov qword ptr [{SCRATCH_REG} + {offset}], rax",
                  f"mov word ptr [{SCRATCH_REG} + {offset + 8}], {exponent:#x}",
                  f"fld tbyte ptr [{SCRATCH_REG} + {offset}]"]
    for _ in range(rng.randint(1, 2)):
        kind = rng.randrange(6)
        if kind == 0:
            lines.append(f"fld {rng.choice(['dword', 'qword', 'tbyte'])} ptr {at(10)}")
        elif kind == 1:
            lines.append(f"fild {rng.choice(['word', 'dword', 'qword'])} ptr {at(8)}")
        elif kind == 2:
            lines.append(f"fbld tbyte ptr {at(10)}")
        else:
            lines.append(rng.choice(["fld1", "fldz", "fldpi", "fldl2e", "fldln2", f"fld st({rng.randrange(8)})"]))
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(9)
        i = rng.randrange(8)
        if kind == 0:
            op = rng.choice(ARITH_REG)
            lines.append(rng.choice([f"{op} st(0), st({i})", f"{op} st({i}), st(0)", f"{op}p st({i}), st(0)"]))
        elif kind == 1:
            lines.append(f"{rng.choice(ARITH_MEM)} {rng.choice(['dword', 'qword'])} ptr {at(8)}")
        elif kind == 2:
            lines.append(f"{rng.choice(INT_MEM)} {rng.choice(['word', 'dword'])} ptr {at(4)}")
        elif kind in (3, 4):
            lines.append(rng.choice(NULLARY))
        elif kind == 5:
            lines.append(f"{rng.choice(FCMOV)} st(0), st({i})")
            reads |= (CF | ZF | PF) & ~writes  # unless an fcomi above defined them
        elif kind == 6:
            lines.append(f"{rng.choice(COMPARE_FLAGS)} st(0), st({i})")
            writes |= ARITH
        elif kind == 7:
            lines.append(f"{rng.choice(REG_ONE)} st({i})")
        else:
            lines.append("fnstsw ax")
    op, width = rng.choice(STORES)
    lines.append(f"{op} {width} ptr {at(10)}" if width != "word" or op[:3] != "fns" else f"{op} word ptr {at(2)}")
    offset = rng.randrange(0, SCRATCH_SIZE - SAVE_BYTES + 1)
    lines += [f"data16 fnsave [{SCRATCH_REG} + {offset}]",
              f"mov qword ptr [{SCRATCH_REG} + {offset + ENV16_POINTERS}], 0"]
    return Insn("\n".join(lines), reads, writes)
