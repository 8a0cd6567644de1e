"""Random cases for SSE3, SSSE3, SSE4.1, SSE4.2, CRC32, MOVBE and MXCSR (the `sse4` family).

Like cases._sse, a case loads XMM registers from the scratch area, applies one operation
and stores the registers back, so the scratch comparison sees the XMM state. On top of it:

- MXCSR: most cases first `ldmxcsr` a random rounding control / DAZ / FTZ / sticky-flag
  value (with all exceptions masked, or a random set unmasked), then `stmxcsr` the result
  to the scratch area and restore the default 0x1f80 (the cases of a batch share MXCSR). An
  unmasked exception ends the case with #XM before the restore: the harness compares the
  MXCSR a fault leaves (the flags of the #XM) and resets it. Some cases begin with `stmxcsr`
  (the MXCSR the case found).
- Floating-point inputs: sometimes a register is loaded from 16 bytes of edge values
  (infinities, NaNs, denormals, values that overflow, underflow or round) written first.
- dpps/dppd run with every exception masked: the interpreter does not model which of their
  multiply/add steps raises an unmasked exception (see sse_fp.c).
- Memory operands: 16-byte aligned where legacy SSE requires it (a misaligned one raises #GP,
  which under PVM reaches the host's instruction emulator, and that answers #UD for the
  instructions it does not know); anywhere for lddqu, pcmp*str* and the narrow operands.
- A case that unmasks exceptions starts with a `cmp` so that no flag is undefined where it
  may fault (the frame's RFLAGS are compared); the MXCSR a fault leaves is compared by the
  harness, which then resets it.
"""

from __future__ import annotations

from .cases import ARITH, FP32_EDGES, FP64_EDGES, PTR, SCRATCH_SIZE, Insn, reg

MXCSR_DEFAULT = 0x1F80
FP32_EXTRA = [0x00800001, 0x00FFFFFF, 0x7F000000, 0x3F800001, 0x3EAAAAAB, 0x01000000, 0x80800000, 0x40490FDB]
FP64_EXTRA = [0x0010000000000001, 0x7FE0000000000000, 0x3FF0000000000001, 0x001FFFFFFFFFFFFF, 0x3FD5555555555555,
              0x0020000000000000]
F32 = FP32_EDGES + FP32_EXTRA
F64 = FP64_EDGES + FP64_EXTRA

# Two-operand XMM ops `op xmm, xmm/m128` (memory 16-byte aligned for legacy SSE).
INT_OPS = ["pabsb", "pabsw", "pabsd", "psignb", "psignw", "psignd", "phaddw", "phaddd", "phaddsw", "phsubw", "phsubd",
           "phsubsw", "pmaddubsw", "pmulhrsw", "pshufb", "pmuldq", "pmulld", "pcmpeqq", "packusdw", "pminsb", "pminsd",
           "pminuw", "pminud", "pmaxsb", "pmaxsd", "pmaxuw", "pmaxud", "phminposuw", "pcmpgtq", "movshdup", "movsldup"]
FP_OPS = ["addsubps", "addsubpd", "haddps", "haddpd", "hsubps", "hsubpd"] + \
    [f"{op}{form}" for op in ("add", "sub", "mul", "div", "min", "max", "sqrt") for form in ("ps", "pd", "ss", "sd")] + \
    ["rcpps", "rcpss", "rsqrtps", "rsqrtss", "cvtps2pd", "cvtpd2ps", "cvtss2sd", "cvtsd2ss", "cvtdq2ps", "cvtps2dq",
     "cvttps2dq", "cvtdq2pd", "cvtpd2dq", "cvttpd2dq"]
# Memory width of a source operand narrower than 128 bits.
NARROW = {"ss": "dword", "sd": "qword", "cvtps2pd": "qword", "cvtdq2pd": "qword", "cvtss2sd": "dword",
          "cvtsd2ss": "qword", "rcpss": "dword", "rsqrtss": "dword", "roundss": "dword", "roundsd": "qword",
          "movddup": "qword", "pmovsxbw": "qword", "pmovsxbd": "dword", "pmovsxbq": "word", "pmovsxwd": "qword",
          "pmovsxwq": "dword", "pmovsxdq": "qword", "pmovzxbw": "qword", "pmovzxbd": "dword", "pmovzxbq": "word",
          "pmovzxwd": "qword", "pmovzxwq": "dword", "pmovzxdq": "qword", "insertps": "dword"}
PMOV = [f"pmov{s}x{t}" for s in "sz" for t in ("bw", "bd", "bq", "wd", "wq", "dq")]
IMM_OPS = {"blendps": 16, "blendpd": 4, "pblendw": 256, "dpps": 256, "dppd": 256, "mpsadbw": 256, "palignr": 40,
           "roundps": 256, "roundpd": 256, "roundss": 256, "roundsd": 256, "insertps": 256}
FP_IMM_OPS = {"dpps", "dppd", "roundps", "roundpd", "roundss", "roundsd"}
STRING_OPS = ["pcmpestri", "pcmpestrm", "pcmpistri", "pcmpistrm"]


def _narrow(op: str) -> str | None:
    for key in (op, op[-2:]):
        if key in NARROW and (key == op or op[-2:] in ("ss", "sd")):
            return NARROW[key]
    return None


def _mxcsr(rng) -> int:
    value = MXCSR_DEFAULT
    value |= rng.choice([0, 0, 1, 2, 3]) << 13  # rounding control
    if rng.random() < 0.3:
        value |= 0x40  # DAZ
    if rng.random() < 0.3:
        value |= 0x8000  # FTZ
    if rng.random() < 0.2:
        value |= rng.getrandbits(6)  # sticky flags already set
    if rng.random() < 0.3:
        value &= ~(rng.getrandbits(6) << 7)  # unmask some exceptions
    return value


def sse4(gen, size: int) -> Insn:
    rng = gen.rng
    a, b = (f"xmm{r}" for r in rng.sample(range(16), 2))

    def at(offset: int) -> str:
        return f"[r15 + {offset}]"

    def aligned() -> int:  # (a misaligned one: #GP, which PVM's emulator turns into #UD)
        return rng.randrange(0, SCRATCH_SIZE // 16) * 16

    def anywhere(width: int) -> int:
        return rng.randrange(0, SCRATCH_SIZE - width + 1)

    def near(width: int) -> int:  # a disp8: keeps the template short (a case has 256 bytes)
        return rng.randrange(0, 128 - width + 1) if rng.random() < 0.9 else anywhere(width)

    lines: list[str] = []
    writes = 0
    fp_case = rng.random() < 0.55
    mxcsr = None
    if rng.random() < 0.1:
        lines.append(f"stmxcsr dword ptr {at(near(4))}")
    if rng.random() < (0.85 if fp_case else 0.2):
        mxcsr = _mxcsr(rng)
        slot = near(4)
        if ~mxcsr & 0x1F80:  # may fault: flags an earlier instruction left undefined become defined
            lines.append(f"cmp {gen._reg(64)}, {gen._reg(64)}")
        lines += [f"mov dword ptr {at(slot)}, {mxcsr:#x}", f"ldmxcsr dword ptr {at(slot)}"]
    edges = fp_case and rng.random() < 0.6
    for register in (a, b, "xmm0"):
        if register == "xmm0" and rng.random() < 0.6:
            continue
        offset = near(16)
        if edges and register in (a, b) and rng.random() < 0.7:  # edge values in one or two lanes
            if rng.random() < 0.5:
                words = [rng.choice(F32), rng.choice(F32)]
            else:
                value = rng.choice(F64)
                words = [value & 0xFFFFFFFF, value >> 32]
            lane = rng.choice([0, 0, 8])
            lines += [f"mov dword ptr {at(offset + lane + 4 * i)}, {word:#x}" for i, word in enumerate(words)]
        lines.append(f"movdqu {register}, xmmword ptr {at(offset)}")

    if any(line.startswith("cmp r") for line in lines):
        writes = ARITH
    src = b if rng.random() < 0.6 else f"xmmword ptr {at(aligned())}"
    if fp_case:
        roll = rng.random()
        if roll < 0.55:
            op = rng.choice(FP_OPS)
            narrow = _narrow(op)
            if narrow and "ptr" in src:
                src = f"{narrow} ptr {at(anywhere(8))}"
            lines.append(f"{op} {a}, {src}")
        elif roll < 0.75:
            op = rng.choice(sorted(FP_IMM_OPS))
            if op in ("dpps", "dppd") and mxcsr is not None and ~mxcsr & 0x1F80:
                op = "roundps"  # dpps/dppd with unmasked exceptions: not modelled step by step
            narrow = _narrow(op)
            if narrow and "ptr" in src:
                src = f"{narrow} ptr {at(anywhere(8))}"
            lines.append(f"{op} {a}, {src}, {rng.randrange(IMM_OPS[op])}")
        elif roll < 0.85:
            form = rng.choice(["ps", "pd", "ss", "sd"])
            if form in ("ss", "sd") and "ptr" in src:
                src = f"{'dword' if form == 'ss' else 'qword'} ptr {at(anywhere(8))}"
            lines.append(f"cmp{form} {a}, {src}, {rng.randrange(8)}")
        elif roll < 0.92:
            op = rng.choice(["comiss", "ucomiss", "comisd", "ucomisd"])
            if "ptr" in src:
                src = f"{'dword' if op.endswith('ss') else 'qword'} ptr {at(anywhere(8))}"
            lines.append(f"{op} {a}, {src}")
            writes = ARITH
        else:
            gpr = gen._reg(rng.choice([32, 64]))
            op = rng.choice(["cvtsi2ss", "cvtsi2sd", "cvtss2si", "cvtsd2si", "cvttss2si", "cvttsd2si"])
            if op.startswith("cvtsi"):
                source = gpr if rng.random() < 0.7 else f"{'qword' if gpr.startswith('r') and gpr[-1] not in 'dwb' else 'dword'} ptr {at(anywhere(8))}"
                if rng.random() < 0.5:
                    lines.append(f"mov {reg(rng.choice(['rax', 'rbx', 'rcx']), 64)}, {rng.choice([0, 1, -1, 1 << 24 | 1, (1 << 53) + 1, (1 << 63) - 1, -(1 << 63), rng.getrandbits(63)])}")
                lines.append(f"{op} {a}, {source}")
            else:
                source = b if rng.random() < 0.7 else f"{'dword' if 'ss' in op else 'qword'} ptr {at(anywhere(8))}"
                lines.append(f"{op} {gpr}, {source}")
    else:
        roll = rng.random()
        if roll < 0.3:
            op = rng.choice(INT_OPS)
            lines.append(f"{op} {a}, {src}")
        elif roll < 0.4:
            op = rng.choice(PMOV + ["movddup"])
            if "ptr" in src:
                src = f"{_narrow(op)} ptr {at(anywhere(8))}"
            lines.append(f"{op} {a}, {src}")
        elif roll < 0.5:
            op = rng.choice(["blendps", "blendpd", "pblendw", "mpsadbw", "palignr", "insertps"])
            if op == "insertps" and "ptr" in src:
                src = f"dword ptr {at(anywhere(4))}"
            lines.append(f"{op} {a}, {src}, {rng.randrange(IMM_OPS[op])}")
        elif roll < 0.56:
            op = rng.choice(["pblendvb", "blendvps", "blendvpd"])
            if a == "xmm0":
                a = "xmm1" if b != "xmm1" else "xmm2"
            lines.append(f"{op} {a}, {src}, xmm0")
        elif roll < 0.62:
            lines.append(f"ptest {a}, {src}")
            writes = ARITH
        elif roll < 0.72:
            op = rng.choice(STRING_OPS)
            text = f"{op} {a}, {src if rng.random() < 0.6 else f'xmmword ptr {at(anywhere(16))}'}, {rng.randrange(256)}"
            if "estr" in op:
                lengths = [rng.choice([0, 1, 5, 7, 8, 9, 15, 16, 17, -1, -3, -8, -16, -17, 0x7FFFFFFF, -0x80000000,
                                       rng.randrange(-40, 40)]) for _ in range(2)]
                lines += [f"mov eax, {lengths[0]}", f"mov edx, {lengths[1]}"]
                if rng.random() < 0.3:
                    lines += [f"mov rax, {rng.choice([-2, 3, 1 << 32, -(1 << 40), (1 << 32) | 3])}"]
                    text = text.replace(op, op + "q", 1)
            elif rng.random() < 0.5:  # strings with nulls
                lines.append(f"mov byte ptr {at(anywhere(1))}, 0")
            lines.append(text)
            writes = ARITH
        elif roll < 0.8:  # extracts and inserts
            g32, g64 = gen._reg(32), gen._reg(64)
            op = rng.choice(["pextrb", "pextrw", "pextrd", "pextrq", "extractps", "pinsrb", "pinsrd", "pinsrq"])
            width = {"pextrb": 8, "pextrw": 16, "pextrd": 32, "pextrq": 64, "extractps": 32, "pinsrb": 8, "pinsrd": 32,
                     "pinsrq": 64}[op]
            gpr = g64 if width == 64 else g32
            mem = f"{PTR[width]} {at(anywhere(width // 8))}"
            imm = rng.randrange(256)
            if op.startswith("pins"):
                lines.append(f"{op} {a}, {gpr if rng.random() < 0.6 else mem}, {imm}")
            else:
                lines.append(f"{op} {mem if op == 'pextrw' or rng.random() < 0.4 else gpr}, {a}, {imm}")
        elif roll < 0.84:
            op = rng.choice(["lddqu", "movntdqa"])
            lines.append(f"{op} {a}, xmmword ptr {at(anywhere(16) if op == 'lddqu' else aligned())}")
        elif roll < 0.94:  # crc32
            width = rng.choice([8, 16, 32, 64])
            wide = width == 64 or (width == 8 and rng.random() < 0.3)  # r64 only with r/m8 or r/m64
            if width == 8 and not wide and rng.random() < 0.2:  # ah..dh: no REX anywhere
                dst, source = reg(rng.choice(["rax", "rbx", "rcx", "rdx", "rsi", "rdi"]), 32), \
                    rng.choice(["ah", "bh", "ch", "dh"])
            else:
                dst = gen._reg(64 if wide else 32)
                source = f"{PTR[width]} {at(anywhere(width // 8))}" if rng.random() < 0.5 else gen._reg(width)
            lines.append(f"crc32 {dst}, {source}")
        else:  # movbe
            width = rng.choice([16, 32, 64])
            mem = f"{PTR[width]} {at(anywhere(width // 8))}"
            r = gen._reg(width)
            lines.append(f"movbe {r}, {mem}" if rng.random() < 0.5 else f"movbe {mem}, {r}")
    for register in (a, b, "xmm0"):
        lines.append(f"movdqu xmmword ptr {at(near(16))}, {register}")
    if mxcsr is not None or rng.random() < 0.2:
        lines.append(f"stmxcsr dword ptr {at(near(4))}")
    if mxcsr is not None:
        slot = near(4)
        lines += [f"mov dword ptr {at(slot)}, {MXCSR_DEFAULT:#x}", f"ldmxcsr dword ptr {at(slot)}"]
    return Insn("\n".join(lines), 0, writes)
