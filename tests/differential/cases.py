"""Generate instruction sequences for differential testing, with which flags they leave defined.

Each case is a few instruction templates of GNU assembler text (Intel syntax) plus an initial
register file, RFLAGS and scratch memory. The generator tracks, per case, which RFLAGS bits
the architecture leaves undefined (after `mul`, multi-bit shifts, `bsf`...), and never lets a
later instruction read such a flag, so the comparison with hardware is exact on everything
the SDM/APM define.

A template may be several lines (e.g. `mov cl, 9` before `rcr al, cl`, or the register
setup of a string instruction) so that operands whose range matters (shift counts, divisors,
pointers, bit offsets into memory) have values the generator knows. Memory operands are
`[r15 + disp]` into the SCRATCH_SIZE-byte scratch area (sometimes with a segment override or
a 32-bit address size); pushes and pops use the stack below the initial RSP.

Never generated, on purpose: setting RFLAGS.AC (under PVM the host's CR0.AM applies to
guest ring 3, so a misaligned access then raises #AC although the guest's CR0.AM is 0),
RFLAGS.NT (PVM clears it whenever it resumes guest user mode after a host interrupt or exit,
so whether it survives a case depends on timing) and RFLAGS.TF (single-step traps).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

CF, PF, AF, ZF, SF, OF = 0x1, 0x4, 0x10, 0x40, 0x80, 0x800
DF, IF, NT, ID = 0x400, 0x200, 0x4000, 0x200000
ARITH = CF | PF | AF | ZF | SF | OF
LOGIC_UNDEFINED = AF
STATUS = ARITH
RFLAGS_FIXED = 0x202  # bit 1 is always set; IF stays on

# Registers a case may use as operands. r15 is reserved: it points at the scratch page, so
# memory operands are [r15 + disp]; rsp is only moved by push/pop/call/ret/enter/leave.
GPRS64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14"]
_NAMES = {
    "rax": ("eax", "ax", "al"), "rbx": ("ebx", "bx", "bl"), "rcx": ("ecx", "cx", "cl"),
    "rdx": ("edx", "dx", "dl"), "rsi": ("esi", "si", "sil"), "rdi": ("edi", "di", "dil"),
    "rbp": ("ebp", "bp", "bpl"),
}  # fmt: skip
# 8-bit registers encodable without REX (ah..dh cannot appear with a REX prefix, so they are
# used only register-to-register among themselves, or with immediates).
LEGACY8 = ["al", "bl", "cl", "dl", "ah", "bh", "ch", "dh"]
SIZES = (8, 16, 32, 64)
SCRATCH_REG = "r15"
SCRATCH_SIZE = 256  # bytes of the scratch area cases read and write
# Where r15 points; 32-bit code uses the address directly. It straddles a 4 KiB page boundary
# (0x301000), so that some accesses are split across two pages.
SCRATCH_ADDR = 0x300F80
LOW_SCRATCH_ADDR = 0x3F80  # a copy of the scratch area below 64 KiB (16-bit addressing); straddles 0x4000
PTR = {8: "byte ptr", 16: "word ptr", 32: "dword ptr", 64: "qword ptr"}
SEGMENT_OVERRIDES = ["fs", "gs", "ds", "es", "ss", "cs"]  # all have base 0 here

EDGE_VALUES = [
    0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
    0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF,
    0x8000000000000001, 0xFFFFFFFFFFFFFFFE, 0x0123456789ABCDEF, 0xFEDCBA9876543210,
]  # fmt: skip

CONDITIONS = {
    "o": OF, "no": OF, "b": CF, "ae": CF, "e": ZF, "ne": ZF, "be": CF | ZF, "a": CF | ZF,
    "s": SF, "ns": SF, "p": PF, "np": PF, "l": SF | OF, "ge": SF | OF, "le": ZF | SF | OF, "g": ZF | SF | OF,
}  # fmt: skip


def reg(name64: str, size: int) -> str:
    if size == 64:
        return name64
    if name64.startswith("r") and name64[1:].isdigit():
        return name64 + {32: "d", 16: "w", 8: "b"}[size]
    return _NAMES[name64][{32: 0, 16: 1, 8: 2}[size]]


def to_signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


@dataclass
class Insn:
    text: str  # one or more lines
    reads: int = 0  # flags consumed
    writes: int = 0  # flags given a defined value
    undefined: int = 0  # flags left undefined


@dataclass
class Case:
    lines: list[str]
    regs: dict[str, int]
    rflags: int
    scratch: bytes
    undefined_flags: int = 0
    tags: list[str] = field(default_factory=list)
    mode: int = 64  # 64: 64-bit code; 32 / 16: compatibility mode with a 32- / 16-bit code segment
    # Flags some instruction of the case left undefined at some point: a case that faults part
    # way compares its RFLAGS without these (which were undefined at the fault is not tracked).
    ever_undefined_flags: int = 0


class Generator:
    """Instruction templates; each `gen_*` returns an Insn with its flag behaviour."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    # ---- operands ----------------------------------------------------------------------
    def _reg(self, size: int, avoid: tuple = ()) -> str:
        return reg(self.rng.choice([r for r in GPRS64 if r not in avoid]), size)

    def _mem(self, size: int, fancy: bool = True, offset: int | None = None) -> str:
        if offset is None:
            offset = self.rng.randrange(0, SCRATCH_SIZE - size // 8 + 1)
        base = SCRATCH_REG
        prefix = ""
        if fancy:
            roll = self.rng.random()
            if roll < 0.06:
                base = SCRATCH_REG + "d"  # 32-bit address size (67 prefix); r15 < 4 GiB
            elif roll < 0.12:
                prefix = self.rng.choice(SEGMENT_OVERRIDES) + ":"
        return f"{PTR[size]} {prefix}[{base} + {offset}]"

    def _imm(self, size: int) -> int:
        bits = min(size, 32)
        value = self.rng.choice([0, 1, -1, 0x7F, -0x80, self.rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1))])
        if size == 8:
            return value & 0xFF
        return value

    def _legacy8(self) -> bool:
        return self.rng.random() < 0.25

    def _dst_src(self, size: int) -> tuple[str, str]:
        if size == 8 and self._legacy8():
            if self.rng.random() < 0.7:
                return self.rng.choice(LEGACY8), self.rng.choice(LEGACY8)
            return self.rng.choice(LEGACY8), str(self._imm(8))
        form = self.rng.randrange(4)
        if form == 0:
            return self._reg(size), self._reg(size)
        if form == 1:
            return self._reg(size), str(self._imm(size))
        if form == 2 and self.rng.random() < 0.3:
            return self._mem(size), str(self._imm(size))
        if form == 2:
            return self._mem(size), self._reg(size)
        return self._reg(size), self._mem(size)

    def _target(self, size: int, mem_probability: float = 0.3) -> str:
        """A register or memory operand to modify in place."""
        if self.rng.random() < mem_probability:
            return self._mem(size)
        if size == 8 and self._legacy8():
            return self.rng.choice(LEGACY8)
        return self._reg(size)

    def _lock(self, operand: str) -> str:
        return "lock " if "ptr" in operand and self.rng.random() < 0.3 else ""

    # ---- integer ALU -------------------------------------------------------------------
    def gen_alu(self, size: int) -> Insn:
        op = self.rng.choice(["add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"])
        dst, src = self._dst_src(size)
        if op == "test" and "ptr" not in dst and "ptr" in src:
            dst, src = src, dst
        reads = CF if op in ("adc", "sbb") else 0
        undefined = AF if op in ("and", "or", "xor", "test") else 0
        lock = self._lock(dst) if op not in ("cmp", "test") else ""
        return Insn(f"{lock}{op} {dst}, {src}", reads, ARITH & ~undefined, undefined)

    def gen_unary(self, size: int) -> Insn:
        op = self.rng.choice(["inc", "dec", "neg", "not"])
        target = self._target(size)
        writes = {"inc": ARITH & ~CF, "dec": ARITH & ~CF, "neg": ARITH, "not": 0}[op]
        return Insn(f"{self._lock(target)}{op} {target}", 0, writes)

    @staticmethod
    def shift_flags(op: str, size: int, count: int) -> tuple[int, int]:
        """(writes, undefined) of a shift/rotate by `count` (before masking)."""
        masked = count & (0x3F if size == 64 else 0x1F)
        if masked == 0:
            return 0, 0
        if op in ("rol", "ror", "rcl", "rcr"):
            # SDM/APM: OF is defined only when the *masked* count is 1 (not the count left after
            # the modulo of 8/16-bit rotates); ROL/ROR set CF from the result for any non-zero
            # masked count; RCL/RCR rotate (count mod 9 or 17) times, so CF keeps its value when
            # that is 0 (e.g. `rcr al, 9`) while OF still becomes undefined.
            undefined = OF if masked != 1 else 0
            if op in ("rcl", "rcr") and size < 32 and masked % (size + 1) == 0:
                return 0, undefined
            return (CF | OF) & ~undefined, undefined
        undefined = AF | (OF if masked != 1 else 0)
        if masked >= size and op in ("shl", "sal", "shr"):
            undefined |= CF  # SDM: CF undefined for SHL/SHR when count >= operand size (not SAR)
        return ARITH & ~undefined, undefined

    def _count(self, size: int) -> int:
        return self.rng.choice([0, 1, 1, 2, 3, size - 1, size, size + 1, 31, 32, 33, 63, self.rng.randrange(256)])

    def gen_shift(self, size: int) -> Insn:
        op = self.rng.choice(["shl", "shr", "sar", "rol", "ror", "rcl", "rcr", "sal"])
        count = self._count(size)
        reads = CF if op in ("rcl", "rcr") else 0
        target = self._target(size)
        form = self.rng.randrange(3)
        if form == 0:  # count in CL, set just before (the target may be CL or RCX itself)
            count &= 0xFF
            text = f"mov cl, {count}\n{op} {target}, cl"
        elif form == 1:
            count &= 0xFF
            text = f"{op} {target}, {count}"
        else:  # the D0/D1 encodings (gas picks them for a count of 1)
            count = 1
            text = f"{op} {target}, 1" if self.rng.random() < 0.5 else f"{op} {target}"
        writes, undefined = self.shift_flags(op, size, count)
        return Insn(text, reads, writes, undefined)

    def gen_mul(self, size: int) -> Insn:
        form = self.rng.randrange(4)
        flags = (0, CF | OF, SF | ZF | AF | PF)
        if form == 0 or size == 8:
            op = self.rng.choice(["mul", "imul"])
            return Insn(f"{op} {self._target(size, 0.25)}", *flags)
        if form == 1:
            return Insn(f"imul {self._reg(size)}, {self._reg(size)}", *flags)
        if form == 2:
            return Insn(f"imul {self._reg(size)}, {self._mem(size)}", *flags)
        src = self._reg(size) if self.rng.random() < 0.7 else self._mem(size)
        return Insn(f"imul {self._reg(size)}, {src}, {self._imm(min(size, 32))}", *flags)

    def gen_bits(self, size: int) -> Insn:
        size = max(size, 16)
        op = self.rng.choice(["bt", "bts", "btr", "btc", "bsf", "bsr", "popcnt", "lzcnt", "tzcnt"])
        if op.startswith("bt"):
            flags = (0, CF, OF | SF | AF | PF)  # ZF is unaffected (SDM)
            form = self.rng.randrange(4)
            if form == 0:
                return Insn(f"{op} {self._reg(size)}, {self.rng.randrange(256)}", *flags)
            if form == 1:
                return Insn(f"{op} {self._reg(size)}, {self._reg(size)}", *flags)
            if form == 2:  # memory, immediate: the offset is taken modulo the operand size
                target = self._mem(size)
                lock = self._lock(target) if op != "bt" else ""
                return Insn(f"{lock}{op} {target}, {self.rng.randrange(256)}", *flags)
            # memory, register: the signed bit offset reaches beyond the operand (kept in scratch)
            width = size // 8
            offset = self.rng.randrange(0, SCRATCH_SIZE - width + 1)
            lo, hi = -(offset // width), (SCRATCH_SIZE - width - offset) // width
            unit = self.rng.randint(lo, hi)
            bit = unit * size + self.rng.randrange(size)
            index = self._reg(size)
            lock = "lock " if op != "bt" and self.rng.random() < 0.3 else ""
            operand = self._mem(size, fancy=False, offset=offset)
            return Insn(f"mov {index}, {bit}\n{lock}{op} {operand}, {index}", *flags)
        src = self._reg(size) if self.rng.random() < 0.7 else self._mem(size)
        text = f"{op} {self._reg(size)}, {src}"
        if op in ("bsf", "bsr"):
            return Insn(text, 0, ZF, CF | OF | SF | AF | PF)
        if op == "popcnt":
            return Insn(text, 0, ARITH)
        return Insn(text, 0, CF | ZF, OF | SF | AF | PF)

    # ---- moves -------------------------------------------------------------------------
    def gen_move(self, size: int) -> Insn:
        form = self.rng.randrange(13)
        if form == 0:
            dst, src = self._dst_src(size)
            if "ptr" in dst and "ptr" in src:
                src = self._reg(size)
            return Insn(f"mov {dst}, {src}")
        if form == 1 and size >= 16:
            src_size = self.rng.choice([s for s in (8, 16) if s < size])
            op = self.rng.choice(["movzx", "movsx"])
            roll = self.rng.random()
            if src_size == 8 and size < 64 and roll < 0.25:
                return Insn(f"{op} {reg(self.rng.choice(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp']), size)}, "
                            f"{self.rng.choice(LEGACY8)}")
            src = self._mem(src_size) if roll > 0.7 else self._reg(src_size)
            return Insn(f"{op} {self._reg(size)}, {src}")
        if form == 2:
            src = self._reg(32) if self.rng.random() < 0.7 else self._mem(32)
            dst_size = self.rng.choice([64, 64, 32, 16])
            return Insn(f"movsxd {self._reg(dst_size)}, {src}")
        if form == 3 and size >= 16:
            cc = self.rng.choice(list(CONDITIONS))
            src = self._reg(size) if self.rng.random() < 0.7 else self._mem(size)
            return Insn(f"cmov{cc} {self._reg(size)}, {src}", CONDITIONS[cc])
        if form == 4:
            cc = self.rng.choice(list(CONDITIONS))
            return Insn(f"set{cc} {self._target(8, 0.2)}", CONDITIONS[cc])
        if form == 5 and size >= 16:
            return Insn(f"bswap {self._reg(max(size, 32))}")
        if form == 6:
            if size == 8 and self._legacy8():
                return Insn(f"xchg {self.rng.choice(LEGACY8)}, {self.rng.choice(LEGACY8)}")
            if self.rng.random() < 0.3:
                return Insn(f"xchg {self._mem(size)}, {self._reg(size)}")
            return Insn(f"xchg {self._reg(size)}, {self._reg(size)}")
        if form == 7 and size >= 16:
            base, index = self._reg(64), self._reg(64)
            scale = self.rng.choice([1, 2, 4, 8])
            roll = self.rng.random()
            if roll < 0.2:  # 32-bit address size: the sum wraps at 4 GiB
                base, index = reg(base, 32), reg(index, 32)
            elif roll < 0.3:
                return Insn(f"lea {self._reg(size)}, [rip + {self._imm(32)}]")
            return Insn(f"lea {self._reg(size)}, [{base} + {index}*{scale} + {self._imm(32)}]")
        if form == 8:
            return Insn(f"mov {self._target(size, 0.5)}, {self._imm(size)}")
        if form == 9:
            return Insn(f"mov {self._reg(64)}, {self.rng.choice(EDGE_VALUES + [self.rng.getrandbits(64)]):#x}")
        if form == 10 and size == 8:
            return Insn(f"mov {self.rng.choice(LEGACY8)}, {self.rng.choice(LEGACY8)}")
        if form == 11:
            return Insn(f"lea rbx, [{SCRATCH_REG}]\nxlatb")
        return Insn(self.rng.choice(["cbw", "cwde", "cdqe", "cwd", "cdq", "cqo", "nop", "pause"]))

    def gen_exchange_add(self, size: int) -> Insn:
        op = self.rng.choice(["xadd", "cmpxchg"])
        if size == 8 and self._legacy8():
            return Insn(f"{op} {self.rng.choice(LEGACY8)}, {self.rng.choice(LEGACY8)}", 0, ARITH)
        dst = self._reg(size) if self.rng.random() < 0.5 else self._mem(size)
        if op == "cmpxchg" and "ptr" in dst and self.rng.random() < 0.4:
            # make the comparison succeed sometimes: load the accumulator from the operand
            acc = reg("rax", size)
            return Insn(f"mov {acc}, {dst}\n{self._lock(dst)}cmpxchg {dst}, {self._reg(size)}", 0, ARITH)
        src = self._reg(size) if self.rng.random() < 0.8 else reg("rax", size)
        return Insn(f"{self._lock(dst)}{op} {dst}, {src}", 0, ARITH)

    def gen_cmpxchg_wide(self, size: int) -> Insn:
        """cmpxchg8b / cmpxchg16b (16-byte aligned), sometimes primed to succeed."""
        wide = self.rng.random() < 0.5
        width = 16 if wide else 8
        if wide:
            offset = self.rng.randrange(0, SCRATCH_SIZE // width) * width
        else:
            offset = self.rng.randrange(0, SCRATCH_SIZE - 7)
        operand = f"{'xmmword' if wide else 'qword'} ptr [{SCRATCH_REG} + {offset}]"
        lines = []
        if self.rng.random() < 0.5:
            half = 8 if wide else 4
            lines.append(f"mov {'rax' if wide else 'eax'}, {PTR[half * 8]} [{SCRATCH_REG} + {offset}]")
            lines.append(f"mov {'rdx' if wide else 'edx'}, {PTR[half * 8]} [{SCRATCH_REG} + {offset + half}]")
        lock = "lock " if self.rng.random() < 0.5 else ""
        lines.append(f"{lock}{'cmpxchg16b' if wide else 'cmpxchg8b'} {operand}")
        return Insn("\n".join(lines), 0, ZF)  # the other flags are unaffected

    def gen_double_shift(self, size: int) -> Insn:
        size = max(size, 16)
        op = self.rng.choice(["shld", "shrd"])
        count = self.rng.choice([0, 1, 2, size - 1, size, self.rng.randrange(0, 64), self.rng.randrange(256)])
        masked = count & (0x3F if size == 64 else 0x1F)
        if masked > size:  # 16-bit operands with counts above 16: result and flags undefined
            count = self.rng.randrange(0, 17)
            masked = count
        dst = self._reg(size) if self.rng.random() < 0.7 else self._mem(size)
        src = self._reg(size)
        if self.rng.random() < 0.4:
            text = f"mov cl, {count}\n{op} {dst}, {src}, cl"
        else:
            text = f"{op} {dst}, {src}, {count}"
        if masked == 0:
            return Insn(text)
        undefined = AF | (OF if masked != 1 else 0)
        return Insn(text, 0, ARITH & ~undefined, undefined)

    def gen_flags(self, size: int) -> Insn:
        op = self.rng.choice(["stc", "clc", "cmc", "lahf", "sahf", "std", "cld"])
        return {
            "stc": Insn("stc", 0, CF), "clc": Insn("clc", 0, CF), "cmc": Insn("cmc", CF, CF),
            "lahf": Insn("lahf", SF | ZF | AF | PF | CF), "sahf": Insn("sahf", 0, SF | ZF | AF | PF | CF),
            "std": Insn("std"), "cld": Insn("cld"),
        }[op]  # fmt: skip

    # ---- control flow ------------------------------------------------------------------
    def _simple_body(self, avoid_rcx: bool = False) -> Insn:
        """A one-instruction register ALU op (writes ZF, never touches rcx if asked)."""
        size = self.rng.choice(SIZES)
        op = self.rng.choice(["add", "sub", "and", "or", "xor", "cmp", "adc", "sbb", "inc", "dec"])
        avoid = ("rcx",) if avoid_rcx else ()
        target = self._reg(size, avoid)
        if op in ("inc", "dec"):
            return Insn(f"{op} {target}", 0, ARITH & ~CF)
        src = self._reg(size) if self.rng.random() < 0.5 else str(self._imm(size))
        undefined = AF if op in ("and", "or", "xor") else 0
        return Insn(f"{op} {target}, {src}", CF if op in ("adc", "sbb") else 0, ARITH & ~undefined, undefined)

    def gen_branch(self, size: int) -> Insn:
        form = self.rng.randrange(5)
        body = self._simple_body(avoid_rcx=True)
        if form <= 1:  # jcc over one instruction: afterwards each flag is the old or the new value
            cc = self.rng.choice(list(CONDITIONS))
            return Insn(f"j{cc} 1f\n{body.text}\n1:", CONDITIONS[cc] | body.reads, 0, body.undefined)
        if form == 2:
            return Insn(f"jrcxz 1f\n{body.text}\n1:", body.reads, 0, body.undefined)
        if form == 3:  # loop N times (N >= 1: the body always runs)
            n = self.rng.randint(1, 5)
            op = self.rng.choice(["loop", "loope", "loopne"])
            if op != "loop" and body.writes & ZF == 0:
                op = "loop"
            return Insn(f"mov ecx, {n}\n1:\n{body.text}\n{op} 1b", body.reads, body.writes, body.undefined)
        return Insn(f"call 1f\njmp 2f\n1:\n{body.text}\nret\n2:", body.reads, body.writes, body.undefined)

    def gen_stack(self, size: int) -> Insn:
        form = self.rng.randrange(8)
        if form == 0:
            width = self.rng.choice([64, 64, 16])
            return Insn(f"push {self._reg(width)}\npop {self._reg(width)}")
        if form == 1:
            return Insn(f"push {self._imm(32)}\npop {self._target(64, 0.3)}")
        if form == 2:
            width = self.rng.choice([64, 16])
            return Insn(f"push {self._mem(width, fancy=False)}\npop {self._mem(width, fancy=False)}")
        if form == 3:  # pushf reads every flag
            return Insn(f"pushfq\npop {self._reg(64)}", ARITH)
        if form == 4:  # popf: status flags, DF, ID, IOPL/IF (ignored at CPL 3); never TF, AC or NT
            value = RFLAGS_FIXED | (self.rng.getrandbits(22) & (ARITH | DF | ID | 0x3000))
            if self.rng.random() < 0.2:
                value &= ~IF
            if self.rng.random() < 0.2:
                return Insn(f"push {value}\npopfw", 0, ARITH)  # 16-bit: pops the low word only
            return Insn(f"push {value}\npopfq", 0, ARITH)
        if form == 5:
            return Insn(f"pushfw\npop {self._reg(16)}", ARITH)
        if form == 6:
            alloc = self.rng.choice([0, 8, 16, 24])
            level = self.rng.choice([0, 0, 1, 2, 3])
            return Insn(f"lea rbp, [rsp - 32]\nenter {alloc}, {level}\nmov {self._reg(64, ('rbp',))}, rsp\nleave")
        return Insn(f"call 1f\n1:\npop {self._reg(64)}")

    def gen_string(self, size: int) -> Insn:
        """A (rep) string instruction with rsi/rdi/rcx pointing into scratch, forward or backward."""
        op = self.rng.choice(["movs", "stos", "lods", "cmps", "scas"])
        width = size // 8
        suffix = {8: "b", 16: "w", 32: "d", 64: "q"}[size]
        rep = self.rng.choice(["", "rep", "rep"] if op in ("movs", "stos", "lods") else ["", "repe", "repne"])
        count = self.rng.randint(0, 8) if rep else 1
        backward = self.rng.random() < 0.3
        span = count * width
        lo, hi = (span - width, SCRATCH_SIZE - width) if backward else (0, SCRATCH_SIZE - span)
        lo, hi = max(lo, 0), max(hi, 0)
        src, dst = self.rng.randint(lo, hi), self.rng.randint(lo, hi)
        lines = ["std" if backward else "cld", f"lea rsi, [{SCRATCH_REG} + {src}]", f"lea rdi, [{SCRATCH_REG} + {dst}]"]
        if rep:
            lines.append(f"mov ecx, {count}")
        lines.append(f"{rep} {op}{suffix}".strip())
        if op in ("cmps", "scas") and count:
            return Insn("\n".join(lines), 0, ARITH)
        return Insn("\n".join(lines))

    # ---- addressing modes ----------------------------------------------------------------
    def gen_address(self, size: int) -> Insn:
        """ModRM/SIB forms with registers set to known values: base + index*scale + disp (any
        base, rbp/r13/r12 included; no base; 32-bit address size with wrap-around), rsp-based
        stack accesses, and RIP-relative reads of the case's own code (immediates after the
        displacement move the end of the instruction)."""
        rng = self.rng
        width = size // 8
        ptr = PTR[size]
        form = rng.randrange(6)
        if form == 0:
            disp = rng.randrange(-48, 8)
            where = f"[rip + {disp}]" if disp >= 0 else f"[rip - {-disp}]"
            if rng.random() < 0.5:
                return Insn(f"mov {self._reg(size)}, {ptr} {where}")
            op = rng.choice(["cmp", "test", "add", "or"])
            if op in ("cmp", "test"):
                return Insn(f"{op} {ptr} {where}, {self._imm(size)}", 0, ARITH & ~(AF if op == "test" else 0),
                            AF if op == "test" else 0)
            return Insn(f"{op} {self._reg(size)}, {ptr} {where}", 0, ARITH & ~(AF if op == "or" else 0),
                        AF if op == "or" else 0)
        if form == 1:  # the stack around rsp (compared in the stack window)
            disp = rng.randrange(-128, 0)
            if rng.random() < 0.5:
                return Insn(f"mov {ptr} [rsp - {-disp}], {self._reg(size)}")
            return Insn(f"mov {self._reg(size)}, {ptr} [rsp + {rng.randrange(-128, 64)}]")
        target = SCRATCH_ADDR + rng.randrange(0, SCRATCH_SIZE - width + 1)
        scale = rng.choice([1, 2, 4, 8])
        index_value = rng.randrange(-20, 21)
        disp = rng.choice([0, 0, 1, -1, 127, -128, 128, -129, 0x1000, -0x1000, rng.randrange(-(1 << 31), 1 << 31)])
        base = rng.choice(["rbp", "r13", "r12", "rax", "rbx", "rsi", "rdi", "r8", "r11"])
        index = rng.choice([r for r in GPRS64 if r != base])
        lines = [f"mov {index}, {index_value}"]
        if form == 2:  # no base: [index*scale + disp32]
            disp = target - index_value * scale
            address = f"[{index}*{scale} + {disp:#x}]"
        elif form == 3:  # 32-bit address size: the sum wraps at 4 GiB
            base_value = (target - index_value * scale - disp) & 0xFFFFFFFF
            lines.append(f"mov {reg(base, 32)}, {base_value:#x}")
            lines[0] = f"mov {reg(index, 32)}, {index_value & 0xFFFFFFFF:#x}"
            address = f"[{reg(base, 32)} + {reg(index, 32)}*{scale} + {disp}]"
        elif form == 4:  # base and displacement only (rbp/r13 need a displacement byte, r12 a SIB)
            lines = [f"lea {base}, [r15 + {target - SCRATCH_ADDR - disp}]"]
            address = f"[{base} + {disp}]" if disp else f"[{base}]"
        else:
            base_value = target - index_value * scale - disp
            lines.append(f"mov {base}, {base_value:#x}")
            address = f"[{base} + {index}*{scale} + {disp}]"
        avoid = (base, index)
        roll = rng.randrange(4)
        if roll == 0:
            lines.append(f"lea {self._reg(max(size, 16), avoid)}, {address}")
            return Insn("\n".join(lines))
        if roll == 1:
            lines.append(f"mov {self._reg(size, avoid)}, {ptr} {address}")
            return Insn("\n".join(lines))
        if roll == 2:
            lines.append(f"mov {ptr} {address}, {self._reg(size, avoid)}")
            return Insn("\n".join(lines))
        op = rng.choice(["add", "sub", "xor", "adc"])
        lines.append(f"{op} {ptr} {address}, {self._reg(size, avoid)}")
        return Insn("\n".join(lines), CF if op == "adc" else 0, ARITH & ~(AF if op == "xor" else 0),
                    AF if op == "xor" else 0)

    # ---- SSE ---------------------------------------------------------------------------
    def gen_sse(self, size: int) -> Insn:
        return _sse(self, size)

    # ---- VEX: BMI1/2, ADX, FMA, F16C (cases_vex.py) --------------------------------------
    def gen_vex(self, size: int) -> Insn:
        from .cases_vex import gen_vex
        return gen_vex(self, size)

    # ---- AVX / AVX2 (cases_avx.py) -------------------------------------------------------
    def gen_avx(self, size: int) -> Insn | None:
        from .cases_avx import gen_avx
        return gen_avx(self, size)

    def _sse_address(self, offset: int) -> str:
        return f"[{SCRATCH_REG} + {offset}]"

    # ---- long templates: one per case, or its code would overflow the case's slot --------
    def _long_template(self) -> bool:
        if getattr(self, "long_template_used", False):
            return False
        self.long_template_used = True
        return True

    def gen_x87(self, size: int) -> Insn | None:
        from .cases_x87 import x87_case  # noqa: PLC0415 (cases_x87 imports this module)
        return x87_case(self) if self._long_template() else None

    def gen_mmx(self, size: int) -> Insn | None:
        from .cases_mmx import mmx_case
        return mmx_case(self) if self._long_template() else None

    def gen_sse4(self, size: int) -> Insn | None:
        from .cases_sse4 import sse4  # SSE3..SSE4.2, crc32, movbe, MXCSR
        return sse4(self, size) if self._long_template() else None

    # ---- divide ------------------------------------------------------------------------
    def gen_div(self, size: int, regs: dict[str, int]) -> Insn | None:
        """A div/idiv that cannot fault for the case's register values (computed here)."""
        divisor_reg = self.rng.choice([r for r in GPRS64 if r not in ("rax", "rdx")])
        return self._div(size, regs["rax"], regs["rdx"], regs[divisor_reg], reg(divisor_reg, size))

    def gen_div_setup(self, size: int) -> Insn | None:
        """Registers (or memory) loaded with known values, then a div/idiv that cannot fault."""
        def pick():
            return self.rng.choice(EDGE_VALUES) if self.rng.random() < 0.5 else self.rng.getrandbits(64)
        rax, rdx, divisor = pick(), pick(), pick()
        if self.rng.random() < 0.3:
            divisor = self.rng.randrange(1, 256)
        divisor_reg = self.rng.choice([r for r in GPRS64 if r not in ("rax", "rdx")])
        if self.rng.random() < 0.3:
            offset = self.rng.randrange(0, SCRATCH_SIZE - size // 8 + 1)
            operand = f"{PTR[size]} [{SCRATCH_REG} + {offset}]"
            setup = f"mov {divisor_reg}, {divisor:#x}\nmov {operand}, {reg(divisor_reg, size)}"
        else:
            operand = reg(divisor_reg, size)
            setup = f"mov {divisor_reg}, {divisor:#x}"
        insn = self._div(size, rax, rdx, divisor, operand)
        if insn is None:
            return None
        insn.text = f"mov rax, {rax:#x}\nmov rdx, {rdx:#x}\n{setup}\n{insn.text}"
        return insn

    def _div(self, size, rax, rdx, divisor, operand) -> Insn | None:
        mask = (1 << size) - 1
        divisor &= mask
        if size == 8:
            dividend = rax & 0xFFFF
        else:
            dividend = (rdx & mask) << size | (rax & mask)
        signed = self.rng.random() < 0.5
        if divisor == 0:
            return None
        if signed:
            quotient = abs(to_signed(dividend, 2 * size)) // abs(to_signed(divisor, size))
            negative = (to_signed(dividend, 2 * size) < 0) != (to_signed(divisor, size) < 0)
            if quotient > (1 << (size - 1)) - (0 if negative else 1):
                return None
        elif dividend // divisor > mask:
            return None
        return Insn(f"{'idiv' if signed else 'div'} {operand}", 0, 0, ARITH)


# SSE/SSE2 (+ pshufb, palignr) instructions the interpreter implements, by operand shape.
SSE_INT_OPS = [
    "punpcklbw", "punpcklwd", "punpckldq", "packsswb", "pcmpgtb", "pcmpgtw", "pcmpgtd", "packuswb",
    "punpckhbw", "punpckhwd", "punpckhdq", "packssdw", "punpcklqdq", "punpckhqdq", "pcmpeqb", "pcmpeqw",
    "pcmpeqd", "paddq", "pmullw", "psubusb", "psubusw", "pminub", "pand", "paddusb", "paddusw", "pmaxub",
    "pandn", "pavgb", "pavgw", "pmulhuw", "pmulhw", "psubsb", "psubsw", "pminsw", "por", "paddsb", "paddsw",
    "pmaxsw", "pxor", "pmuludq", "pmaddwd", "psadbw", "psubb", "psubw", "psubd", "psubq", "paddb", "paddw",
    "paddd", "psrlw", "psrld", "psrlq", "psraw", "psrad", "psllw", "pslld", "psllq", "pshufb",
]
SSE_FP_OPS = ["add", "mul", "sub", "min", "div", "max", "sqrt"]
SSE_FP_BITWISE = ["andps", "andnps", "orps", "xorps", "andpd", "andnpd", "orpd", "xorpd"]
SSE_CONVERT = ["cvtps2pd", "cvtpd2ps", "cvtss2sd", "cvtsd2ss", "cvtdq2ps", "cvtps2dq", "cvttps2dq", "cvtdq2pd",
               "cvtpd2dq", "cvttpd2dq"]
SSE_SHUFFLE = ["unpcklps", "unpckhps", "unpcklpd", "unpckhpd", "movhlps", "movlhps"]
# Floating-point bit patterns worth meeting: zeros, ones, infinities, NaNs (quiet, signalling,
# with payloads), denormals, extremes, values that round or overflow integer conversions.
FP32_EDGES = [0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
              0x7FA00001, 0x7FC12345, 0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0x00800000, 0x4F000000, 0xCF000000,
              0x3F000000, 0x3FC00000, 0x40200000, 0x5F000000, 0xDF000000, 0x4EFFFFFF]
FP64_EDGES = [0x0000000000000000, 0x8000000000000000, 0x3FF0000000000000, 0xBFF0000000000000, 0x7FF0000000000000,
              0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000, 0x7FF4000000000001, 0x7FF8000012345678,
              0x0000000000000001, 0x800FFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF, 0x0010000000000000, 0x41E0000000000000,
              0xC1E0000000000000, 0x3FE0000000000000, 0x3FF8000000000000, 0x4004000000000000, 0x43E0000000000000,
              0xC3E0000000000000, 0x41DFFFFFFFC00000, 0x47EFFFFFE0000000, 0x36A0000000000000]


def fp_scratch(rng: random.Random) -> bytes:
    """Scratch bytes with floating-point edge values among random ones (for the SSE family)."""
    data = bytearray(rng.randbytes(SCRATCH_SIZE))
    for offset in range(0, SCRATCH_SIZE, 8):
        roll = rng.random()
        if roll < 0.3:
            data[offset:offset + 8] = rng.choice(FP64_EDGES).to_bytes(8, "little")
        elif roll < 0.6:
            data[offset:offset + 4] = rng.choice(FP32_EDGES).to_bytes(4, "little")
            data[offset + 4:offset + 8] = rng.choice(FP32_EDGES).to_bytes(4, "little")
    return bytes(data)


def _sse(self, size: int) -> Insn:
    """Load xmm registers from scratch, apply one SSE operation, store them back to scratch
    (so XMM state needs no plumbing: the scratch comparison sees it). MXCSR is whatever the
    case finds (the default: the sse4 family, cases_sse4.py, is the one that varies it)."""
    rng = self.rng
    mode = getattr(self, "mode", 64)
    a, b = (f"xmm{r}" for r in rng.sample(range(16 if mode == 64 else 8), 2))
    at = self._sse_address
    aligned = lambda: rng.randrange(0, SCRATCH_SIZE // 16) * 16  # noqa: E731
    lines = [f"movdqu {a}, xmmword ptr {at(rng.randrange(0, SCRATCH_SIZE - 15))}",
             f"movups {b}, xmmword ptr {at(rng.randrange(0, SCRATCH_SIZE - 15))}"]
    src = b if rng.random() < 0.7 else f"xmmword ptr {at(aligned())}"
    reads, writes = 0, 0
    kind = rng.randrange(9)
    if kind <= 2:
        lines.append(f"{rng.choice(SSE_INT_OPS)} {a}, {src}")
    elif kind == 3:  # shifts by an immediate
        op = rng.choice(["psrlw", "psraw", "psllw", "psrld", "psrad", "pslld", "psrlq", "psllq", "psrldq", "pslldq"])
        lines.append(f"{op} {a}, {rng.choice([0, 1, 7, 8, 15, 16, 31, 32, 63, 64, 200, rng.randrange(256)])}")
    elif kind == 4:  # packed and scalar floating point
        op, form = rng.choice(SSE_FP_OPS), rng.choice(["ps", "pd", "ss", "sd"])
        if form in ("ss", "sd") and "ptr" in src:
            src = f"{'dword' if form == 'ss' else 'qword'} ptr {at(rng.randrange(0, SCRATCH_SIZE - 7))}"
        lines.append(f"{op}{form} {a}, {src}")
    elif kind == 5:
        form = rng.choice(["ps", "pd", "ss", "sd"])
        if form in ("ss", "sd") and "ptr" in src:
            src = f"{'dword' if form == 'ss' else 'qword'} ptr {at(rng.randrange(0, SCRATCH_SIZE - 7))}"
        lines.append(f"cmp{form} {a}, {src}, {rng.randrange(8)}")
    elif kind == 6:
        op = rng.choice(SSE_FP_BITWISE + SSE_CONVERT + SSE_SHUFFLE + ["shufps", "shufpd", "pshufd", "pshufhw",
                                                                       "pshuflw", "palignr"])
        if op in ("movhlps", "movlhps"):
            src = b
        narrow = {"cvtps2pd": "qword", "cvtdq2pd": "qword", "cvtsd2ss": "qword", "cvtss2sd": "dword"}
        if op in narrow and "ptr" in src:
            src = f"{narrow[op]} ptr {at(rng.randrange(0, SCRATCH_SIZE - 7))}"
        if op in ("shufps", "shufpd", "pshufd", "pshufhw", "pshuflw", "palignr"):
            lines.append(f"{op} {a}, {src}, {rng.randrange(256) if op != 'palignr' else rng.randrange(40)}")
        else:
            lines.append(f"{op} {a}, {src}")
    elif kind == 7:  # to and from general registers, and flag-setting compares
        g32, g64 = self._reg(32), self._reg(64)
        op = rng.choice(["movd_to", "movq_to", "movd_from", "movq_from", "cvtsi2ss", "cvtsi2sd", "cvtss2si",
                         "cvtsd2si", "cvttss2si", "cvttsd2si", "movmskps", "movmskpd", "pmovmskb", "pextrw",
                         "pinsrw", "comiss", "ucomiss", "comisd", "ucomisd"])
        gpr = g64 if rng.random() < 0.5 else g32
        if mode != 64:
            gpr = g32
            if op in ("movq_to", "movq_from"):
                op = op.replace("movq", "movd")
        text = {
            "movd_to": f"movd {a}, {g32}", "movq_to": f"movq {a}, {g64}", "movd_from": f"movd {g32}, {b}",
            "movq_from": f"movq {g64}, {b}", "cvtsi2ss": f"cvtsi2ss {a}, {gpr}", "cvtsi2sd": f"cvtsi2sd {a}, {gpr}",
            "cvtss2si": f"cvtss2si {gpr}, {b}", "cvtsd2si": f"cvtsd2si {gpr}, {b}",
            "cvttss2si": f"cvttss2si {gpr}, {b}", "cvttsd2si": f"cvttsd2si {gpr}, {b}",
            "movmskps": f"movmskps {g32}, {b}", "movmskpd": f"movmskpd {g32}, {b}", "pmovmskb": f"pmovmskb {g32}, {b}",
            "pextrw": f"pextrw {g32}, {b}, {rng.randrange(256)}", "pinsrw": f"pinsrw {a}, {g32}, {rng.randrange(256)}",
        }.get(op, f"{op} {a}, {b}")
        lines.append(text)
        if "comis" in op:
            writes = ARITH
    else:  # moves between registers and memory
        op = rng.choice(["movss", "movsd", "movq", "movlps", "movhps", "movlpd", "movhpd", "movaps", "movapd",
                         "movdqa"])
        if op in ("movss", "movsd", "movq") and rng.random() < 0.5:
            lines.append(f"{op} {a}, {b}")
        elif op in ("movaps", "movapd", "movdqa"):
            lines.append(f"{op} {a}, xmmword ptr {at(aligned())}")
        else:
            width = "dword" if op == "movss" else "qword"
            lines.append(f"{op} {a}, {width} ptr {at(rng.randrange(0, SCRATCH_SIZE - 7))}")
    for reg_name in (a, b):
        lines.append(f"movdqu xmmword ptr {at(rng.randrange(0, SCRATCH_SIZE - 15))}, {reg_name}")
    return Insn("\n".join(lines), reads, writes)



# ---- compatibility mode (32- and 16-bit code segments at ring 3) ------------------------------

COMPAT_GPRS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp"]
ADDR16_FORMS = [("bx", "si"), ("bx", "di"), ("bp", "si"), ("bp", "di"), ("si", None), ("di", None), ("bp", None),
                ("bx", None)]


class CompatGenerator(Generator):
    """The same templates for 32- or 16-bit code: no REX registers, no 64-bit operands,
    absolute or 16-bit addressing instead of [r15 + disp].

    Under PVM, compatibility-mode user code is not run by the CPU but by KVM's instruction
    emulator (about 1 us per instruction), so these cases check the interpreter against that
    emulator, not against hardware. They leave out what the emulator gets wrong or lacks
    (found with this suite; the interpreter follows the SDM there): popcnt/lzcnt/tzcnt and
    SSE (#UD; lzcnt runs as bsr), ENTER with a nesting level (#UD), and 16-bit ENTER (it pushes
    32 bits of EBP)."""

    def __init__(self, rng: random.Random, mode: int):
        super().__init__(rng)
        self.mode = mode

    def _reg(self, size: int, avoid: tuple = ()) -> str:
        if size == 8:
            banned = {f"{r[1]}{suffix}" for r in avoid if r in ("rax", "rbx", "rcx", "rdx") for suffix in "lh"}
            return self.rng.choice([r for r in LEGACY8 if r not in banned])
        return reg(self.rng.choice([r for r in COMPAT_GPRS if r not in avoid]), min(size, 32))

    def _legacy8(self) -> bool:
        return False  # every 8-bit register is a legacy one here

    def _mem(self, size: int, fancy: bool = True, offset: int | None = None) -> str:
        if offset is None:
            offset = self.rng.randrange(0, SCRATCH_SIZE - size // 8 + 1)
        prefix = self.rng.choice(["ds:", "es:", "ss:"]) if fancy and self.rng.random() < 0.1 else ""
        if self.mode == 16 or (fancy and self.rng.random() < 0.2):  # 16-bit absolute address
            return f"{PTR[size]} {prefix}[{LOW_SCRATCH_ADDR + offset:#x}]"
        return f"{PTR[size]} {prefix}[{SCRATCH_ADDR + offset:#x}]"

    def _addr32(self, text: str) -> str:
        """`text` with a 32-bit absolute address: needs the addr32 prefix in 16-bit code."""
        return f"addr32 {text}" if self.mode == 16 else text

    def gen_move(self, size: int) -> Insn:
        rng = self.rng
        form = rng.randrange(11)
        if form == 0:
            dst, src = self._dst_src(size)
            return Insn(f"mov {dst}, {src if 'ptr' not in dst or 'ptr' not in src else self._reg(size)}")
        if form == 1 and size >= 16:
            src = self._mem(8 if size == 32 and rng.random() < 0.5 else 8) if rng.random() < 0.3 else self._reg(8)
            if size == 32 and rng.random() < 0.5:
                src = self._reg(16) if rng.random() < 0.7 else self._mem(16)
            return Insn(f"{rng.choice(['movzx', 'movsx'])} {self._reg(size)}, {src}")
        if form == 2 and size >= 16:
            cc = rng.choice(list(CONDITIONS))
            src = self._reg(size) if rng.random() < 0.7 else self._mem(size)
            return Insn(f"cmov{cc} {self._reg(size)}, {src}", CONDITIONS[cc])
        if form == 3:
            cc = rng.choice(list(CONDITIONS))
            return Insn(f"set{cc} {self._target(8, 0.2)}", CONDITIONS[cc])
        if form == 4:
            return Insn(f"bswap {self._reg(32)}")
        if form == 5:
            if rng.random() < 0.3:
                return Insn(f"xchg {self._mem(size)}, {self._reg(size)}")
            return Insn(f"xchg {self._reg(size)}, {self._reg(size)}")
        if form == 6 and size >= 16:
            base, index = self._reg(32), self._reg(32)
            return Insn(f"lea {self._reg(size)}, [{base} + {index}*{rng.choice([1, 2, 4, 8])} + {self._imm(32)}]")
        if form == 7:
            return Insn(f"mov {self._target(size, 0.5)}, {self._imm(size)}")
        if form == 8:
            if rng.random() < 0.5:
                return Insn(f"mov ebx, {SCRATCH_ADDR:#x}\n{self._addr32('xlatb')}")
            return Insn(f"mov bx, {LOW_SCRATCH_ADDR:#x}\n{'addr16 ' if self.mode == 32 else ''}xlatb")
        if form == 9:
            return Insn(rng.choice(["pushad\npopad", "pushaw\npopaw", "pushad\npop eax\npop ebx\npopad",
                                    "pushaw\npop ax\npop cx\npopaw"]))
        return Insn(rng.choice(["cbw", "cwde", "cwd", "cdq", "nop"]))

    def gen_bits(self, size: int) -> Insn:
        while True:  # KVM's emulator has no popcnt/lzcnt/tzcnt
            insn = super().gen_bits(size)
            if not insn.text.startswith(("popcnt", "lzcnt", "tzcnt")):
                return insn

    def gen_cmpxchg_wide(self, size: int) -> Insn:
        offset = self.rng.randrange(0, SCRATCH_SIZE - 7)
        operand = self._addr32(f"cmpxchg8b qword ptr [{SCRATCH_ADDR + offset:#x}]")
        lines = []
        if self.rng.random() < 0.5:
            lines.append(self._addr32(f"mov eax, dword ptr [{SCRATCH_ADDR + offset:#x}]"))
            lines.append(self._addr32(f"mov edx, dword ptr [{SCRATCH_ADDR + offset + 4:#x}]"))
        lines.append(("lock " if self.rng.random() < 0.5 else "") + operand)
        return Insn("\n".join(lines), 0, ZF)

    def gen_branch(self, size: int) -> Insn:
        insn = super().gen_branch(size)
        insn.text = insn.text.replace("jrcxz", "jecxz" if self.mode == 32 else "jcxz")
        return insn

    def gen_stack(self, size: int) -> Insn:
        form = self.rng.randrange(7)
        wide = self.rng.choice([32, 16])
        if form == 0:
            return Insn(f"push {self._reg(wide)}\npop {self._reg(wide)}")
        if form == 1:
            width = 16 if self.mode == 16 else 32
            return Insn(f"push {self._imm(width)}\npop {self._target(width, 0.3)}")
        if form == 2:
            return Insn(f"push {self._mem(wide, fancy=False)}\npop {self._mem(wide, fancy=False)}")
        if form == 3:
            return Insn(f"{'pushfd' if wide == 32 else 'pushfw'}\npop {self._reg(wide)}", ARITH)
        if form == 4:  # popf (see Generator.gen_stack)
            value = RFLAGS_FIXED | (self.rng.getrandbits(22) & (ARITH | DF | ID | 0x3000))
            if wide == 32:
                return Insn(f"mov ebx, {value:#x}\npush ebx\npopfd", 0, ARITH)
            return Insn(f"mov bx, {value & 0xFFFF:#x}\npush bx\npopfw", 0, ARITH)
        if form == 5:
            enter = f"enter {self.rng.choice([0, 8, 16])}, 0"  # KVM's emulator: no nesting levels
            if self.mode == 16:
                enter = f"data32 {enter}"  # KVM's emulator pushes 32 bits of EBP for a 16-bit ENTER
            return Insn(f"lea ebp, [esp - 32]\n{enter}\nmov {self._reg(32, ('rbp',))}, esp\nleave")
        return Insn(f"call 1f\n1:\npop {self._reg(wide)}")

    def gen_string(self, size: int) -> Insn:
        size = min(size, 32)
        insn = super().gen_string(size)
        low = self.mode == 16 and self.rng.random() < 0.6
        lines = []
        for line in insn.text.split("\n"):
            if line.startswith("lea rsi") or line.startswith("lea rdi"):
                register, offset = line[4:7], int(line.split("+ ")[1].rstrip("]"))
                if low:
                    lines.append(f"mov {register[1:]}, {LOW_SCRATCH_ADDR + offset:#x}")
                else:
                    lines.append(f"mov e{register[1:]}, {SCRATCH_ADDR + offset:#x}")
            elif line.split()[-1].startswith(("movs", "stos", "lods", "cmps", "scas")):
                if self.mode == 16 and not low:
                    line = f"addr32 {line}"
                elif self.mode == 32 and low:
                    line = f"addr16 {line}"
                lines.append(line)
            else:
                lines.append(line)
        insn.text = "\n".join(lines)
        return insn

    def gen_div_setup(self, size: int) -> Insn | None:
        size = min(size, 32)
        def pick():
            return self.rng.choice(EDGE_VALUES) & 0xFFFFFFFF if self.rng.random() < 0.5 else self.rng.getrandbits(32)
        rax, rdx, divisor = pick(), pick(), pick()
        if self.rng.random() < 0.3:
            divisor = self.rng.randrange(1, 256)
        divisor_reg = self.rng.choice(["rbx", "rcx"] if size == 8 else ["rbx", "rcx", "rsi", "rdi", "rbp"])
        if self.rng.random() < 0.3:
            operand = self._mem(size, fancy=False)
            setup = f"mov {reg(divisor_reg, 32)}, {divisor:#x}\nmov {operand}, {reg(divisor_reg, size)}"
        else:
            operand = reg(divisor_reg, size)
            setup = f"mov {reg(divisor_reg, 32)}, {divisor:#x}"
        insn = self._div(size, rax, rdx, divisor, operand)
        if insn is None:
            return None
        insn.text = f"mov eax, {rax:#x}\nmov edx, {rdx:#x}\n{setup}\n{insn.text}"
        return insn

    # ---- AVX / AVX2 (cases_avx.py) -------------------------------------------------------
    def gen_avx(self, size: int) -> Insn | None:
        from .cases_avx import gen_avx
        return gen_avx(self, size)

    def _sse_address(self, offset: int) -> str:
        return f"[{(LOW_SCRATCH_ADDR if self.mode == 16 else SCRATCH_ADDR) + offset:#x}]"

    def gen_addr16(self, size: int) -> Insn:
        """16-bit addressing forms ([bx+si+disp]...) into the low scratch area, with wrap-around."""
        size = min(size, 32)
        base, index = self.rng.choice(ADDR16_FORMS)
        disp = self.rng.choice([0, 0, 8, 0x7F, -0x80, 0x100, -2, self.rng.randrange(-0x8000, 0x8000)])
        width = size // 8
        target = (LOW_SCRATCH_ADDR + self.rng.randrange(0, SCRATCH_SIZE - width + 1)) & 0xFFFF
        index_value = self.rng.randrange(0x10000) if index else 0
        base_value = (target - disp - index_value) & 0xFFFF  # the sum wraps at 64 KiB
        if base == "bp" and index is None and disp == 0:
            disp = 8
            base_value = (target - 8) & 0xFFFF
        address = f"[{base}{f' + {index}' if index else ''}{f' + {disp}' if disp >= 0 else f' - {-disp}'}]"
        lines = [f"mov {base}, {base_value:#x}"] + ([f"mov {index}, {index_value:#x}"] if index else [])
        avoid = ("rbx", "rsi", "rdi", "rbp")
        operand = f"{PTR[size]} {address}"
        roll = self.rng.randrange(5)
        prefix = "addr16 " if self.mode == 32 else ""  # gas adds it by itself, but be explicit
        if roll == 0:
            lines.append(f"{prefix}lea {self._reg(max(size, 16), avoid)}, {address}")
            return Insn("\n".join(lines))
        if roll == 1:
            lines.append(f"{prefix}mov {self._reg(size, avoid)}, {operand}")
            return Insn("\n".join(lines))
        op = self.rng.choice(["add", "adc", "sub", "sbb", "and", "or", "xor", "cmp"])
        undefined = AF if op in ("and", "or", "xor") else 0
        if roll == 2:
            lines.append(f"{prefix}{op} {operand}, {self._reg(size, avoid)}")
        elif roll == 3:
            lines.append(f"{prefix}{op} {self._reg(size, avoid)}, {operand}")
        else:
            lines.append(f"{prefix}{op} {operand}, {self._imm(size)}")
        return Insn("\n".join(lines), CF if op in ("adc", "sbb") else 0, ARITH & ~undefined, undefined)


FAMILY_WEIGHTS = {
    "alu": 6, "unary": 2, "shift": 4, "mul": 2, "bits": 2, "move": 4, "exchange_add": 2, "cmpxchg_wide": 1,
    "double_shift": 2, "flags": 2, "branch": 2, "stack": 2, "string": 2, "div": 1, "div_setup": 1, "sse": 3,
    "address": 2, "x87": 2, "mmx": 2, "sse4": 3, "vex": 3, "avx": 6,
}  # fmt: skip
_FAMILIES = list(FAMILY_WEIGHTS)
_WEIGHTS = list(FAMILY_WEIGHTS.values())


COMPAT_FAMILIES = [family for family in _FAMILIES if family not in ("div", "sse", "address", "x87", "mmx", "sse4", "vex",
                                                                            "avx")] + \
    ["addr16"]
COMPAT_WEIGHTS = [FAMILY_WEIGHTS[family] for family in COMPAT_FAMILIES[:-1]] + [3]


def random_case(rng: random.Random, length: int | None = None, mode: int = 64) -> Case:
    """A random case; mode 32 or 16 makes a compatibility-mode case (see CompatGenerator)."""
    if mode != 64:
        return _compat_case(rng, mode, length)
    gen = Generator(rng)
    regs = {name: rng.choice(EDGE_VALUES) if rng.random() < 0.6 else rng.getrandbits(64) for name in GPRS64}
    rflags = RFLAGS_FIXED | (rng.getrandbits(12) & STATUS) | (DF if rng.random() < 0.1 else 0)
    scratch = fp_scratch(rng) if rng.random() < 0.3 else rng.randbytes(SCRATCH_SIZE)
    lines, undefined, ever_undefined, tags = [], 0, 0, []
    count = length or rng.randint(1, 5)
    while len(tags) < count:
        size = rng.choice(SIZES)
        family = rng.choices(_FAMILIES, _WEIGHTS)[0]
        if family == "div":
            insn = gen.gen_div(size, regs) if not lines else None
        else:
            insn = getattr(gen, f"gen_{family}")(size)
        if insn is None:
            continue
        if insn.reads & undefined:
            continue  # would consume a flag the architecture left undefined
        lines.extend(insn.text.split("\n"))
        tags.append(family)
        undefined = (undefined & ~insn.writes) | insn.undefined
        ever_undefined |= insn.undefined
    return Case(lines, regs, rflags, scratch, undefined, tags, ever_undefined_flags=ever_undefined)


def generate(seed: int, count: int) -> list[Case]:
    rng = random.Random(seed)
    return [random_case(rng) for _ in range(count)]


def _compat_case(rng: random.Random, mode: int, length: int | None) -> Case:
    gen = CompatGenerator(rng, mode)
    regs = {name: rng.choice(EDGE_VALUES) if rng.random() < 0.6 else rng.getrandbits(64) for name in GPRS64}
    rflags = RFLAGS_FIXED | (rng.getrandbits(12) & STATUS) | (DF if rng.random() < 0.1 else 0)
    scratch = fp_scratch(rng) if rng.random() < 0.2 else rng.randbytes(SCRATCH_SIZE)
    lines, undefined, ever_undefined, tags = [], 0, 0, []
    count = length or rng.randint(1, 5)
    while len(tags) < count:
        size = rng.choice((8, 16, 32))
        family = rng.choices(COMPAT_FAMILIES, COMPAT_WEIGHTS)[0]
        insn = getattr(gen, f"gen_{family}")(size)
        if insn is None or insn.reads & undefined:
            continue
        lines.extend(insn.text.split("\n"))
        tags.append(family)
        undefined = (undefined & ~insn.writes) | insn.undefined
        ever_undefined |= insn.undefined
    return Case(lines, regs, rflags, scratch, undefined, tags, mode, ever_undefined)
