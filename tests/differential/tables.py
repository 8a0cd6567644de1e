"""Table-driven cases: every integer ALU operation x operand size x edge values, and faults.

`table_cases()` enumerates (rather than samples) the operations the random generator draws
from, one instruction per case, with the edge values where flags change: 0, 1, -1, the signed
minimum and maximum and their neighbours, carry/overflow boundaries, nibble boundaries (AF).
`fault_cases()` lists instructions that must fault at ring 3, each with its expected vector:
both sides must end in the same IDT stub with the same exception frame (error code, RIP, CS,
RFLAGS including RF, RSP, SS), CR2 and registers/memory.

Not in fault_cases, because under PVM the "hardware" answer there is PVM's emulation, not the
CPU's: int3 / int n / syscall / icebp (PVM delivers #BP through a DPL-0 gate, turns `int 0x80`
into #UD, and reports icebp's #DB with the RIP of the icebp itself), segment-register loads and
reads (ring 3 runs on the host's GDT and selectors), #AC (the host's CR0.AM applies), and
xgetbv/xsave/rdfsbase (the host's CR4 applies).
"""

from __future__ import annotations

import random

from .cases import (ARITH, CF, CONDITIONS, GPRS64, OF, PF, SCRATCH_SIZE, SF, ZF, AF, Case, Generator, RFLAGS_FIXED,
                    reg)
from .common import ABSENT_PAGE, PAGE_2M, READONLY_PAGE, SCRATCH_ADDR, SPLIT_CODE_ADDR, SUPERVISOR_PAGE, host_vendor
from .cases_x87 import CLEAN_START

MUL_UNDEFINED = SF | ZF | AF | PF
SIZES = (8, 16, 32, 64)
DST, SRC = "rbx", "rsi"  # operand registers of the table cases
MEM_OFFSET = 64  # memory operands: [r15 + MEM_OFFSET]


def edge_values(size: int) -> list[int]:
    mask = (1 << size) - 1
    sign = 1 << (size - 1)
    values = {0, 1, 2, 0x0F, 0x10, 0x7F & mask, 0x80 & mask, sign - 1, sign, sign + 1, mask, mask - 1,
              0x5555555555555555 & mask, 0xAAAAAAAAAAAAAAAA & mask}
    return sorted(values)


def immediate(value: int, size: int) -> int | None:
    """`value` as an immediate operand of a `size`-bit instruction (64-bit: a sign-extended imm32)."""
    if size < 64:
        return value
    signed = value - (1 << 64) if value >> 63 else value
    return signed if -(1 << 31) <= signed < 1 << 31 else None


def _base_regs(rng: random.Random) -> dict[str, int]:
    return {name: rng.getrandbits(64) for name in GPRS64}


class _Builder:
    def __init__(self, seed: int = 12345):
        self.rng = random.Random(seed)
        self.cases: list[Case] = []
        self.scratch = bytes(self.rng.getrandbits(8) for _ in range(SCRATCH_SIZE))

    def add(self, lines, regs=None, rflags=RFLAGS_FIXED, undefined=0, tag="", memory: dict | None = None):
        values = _base_regs(self.rng)
        values.update(regs or {})
        scratch = bytearray(self.scratch)
        for offset, (size, value) in (memory or {}).items():
            scratch[offset:offset + size // 8] = (value & ((1 << size) - 1)).to_bytes(size // 8, "little")
        lines = lines.split("\n") if isinstance(lines, str) else list(lines)
        self.cases.append(Case(lines, values, rflags, bytes(scratch), undefined, [tag]))

    def upper(self, value: int, size: int) -> int:
        """`value` in the low `size` bits of a register whose other bits are random."""
        if size == 64:
            return value
        return (self.rng.getrandbits(64) & ~((1 << size) - 1)) | value


def _with_cf(cf: int) -> int:
    return RFLAGS_FIXED | (CF if cf else 0)


def table_cases(seed: int = 12345) -> list[Case]:
    b = _Builder(seed)
    _binary(b)
    _unary(b)
    _shifts(b)
    _multiply(b)
    _divide(b)
    _bit_ops(b)
    _double_shifts(b)
    _exchange(b)
    _extend(b)
    _conditions(b)
    return b.cases


def _binary(b: _Builder) -> None:
    for size in SIZES:
        values = edge_values(size)
        dst, src = reg(DST, size), reg(SRC, size)
        for op in ("add", "adc", "sub", "sbb", "and", "or", "xor", "cmp", "test"):
            undefined = AF if op in ("and", "or", "xor", "test") else 0
            carries = (0, 1) if op in ("adc", "sbb") else (0,)
            pairs = [(x, y) for x in values for y in values]
            if op in ("and", "or", "xor", "test"):
                pairs = pairs[::3]
            for x, y in pairs:
                for cf in carries:
                    b.add(f"{op} {dst}, {src}", {DST: b.upper(x, size), SRC: b.upper(y, size)}, _with_cf(cf),
                          undefined, op)
            # memory destination, memory source and immediate forms on a subset
            for x, y in pairs[::7]:
                mem = f"{'byte word dword qword'.split()[SIZES.index(size)]} ptr [r15 + {MEM_OFFSET}]"
                b.add(f"{op} {mem}, {src}", {SRC: b.upper(y, size)}, _with_cf(x & 1), undefined, op,
                      {MEM_OFFSET: (size, x)})
                if op != "test":
                    b.add(f"{op} {dst}, {mem}", {DST: b.upper(x, size)}, _with_cf(y & 1), undefined, op,
                          {MEM_OFFSET: (size, y)})
                imm = immediate(y, size)
                if imm is None:
                    continue
                b.add(f"{op} {dst}, {imm}", {DST: b.upper(x, size)}, _with_cf(y & 1), undefined, op)
                b.add(f"{op} {reg('rax', size)}, {imm}", {"rax": b.upper(x, size)}, _with_cf(y & 1), undefined, op)


def _unary(b: _Builder) -> None:
    for size in SIZES:
        for op in ("inc", "dec", "neg", "not"):
            for x in edge_values(size):
                for cf in (0, 1):
                    b.add(f"{op} {reg(DST, size)}", {DST: b.upper(x, size)}, _with_cf(cf), 0, op)
                mem = f"{'byte word dword qword'.split()[SIZES.index(size)]} ptr [r15 + {MEM_OFFSET}]"
                b.add(f"{op} {mem}", {}, _with_cf(x & 1), 0, op, {MEM_OFFSET: (size, x)})


SHIFT_COUNTS = (0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255)


def _shifts(b: _Builder) -> None:
    for size in SIZES:
        counts = sorted({0, 1, 2, size - 1, size, size + 1, 31, 63} | set(SHIFT_COUNTS))
        values = edge_values(size)[::2] + [0x8000000000000001 & ((1 << size) - 1)]
        for op in ("shl", "shr", "sar", "rol", "ror", "rcl", "rcr"):
            for count in counts:
                writes, undefined = Generator.shift_flags(op, size, count)
                for x in values:
                    for cf in ((0, 1) if op in ("rcl", "rcr") else (x & 1,)):
                        rflags = _with_cf(cf) | (OF if x & 2 else 0)
                        if count < 256 and count % 2:
                            b.add(f"{op} {reg(DST, size)}, {count}", {DST: b.upper(x, size)}, rflags, undefined, op)
                        else:  # count in CL (the full byte)
                            regs = {DST: b.upper(x, size), "rcx": b.upper(count & 0xFF, 8)}
                            b.add(f"{op} {reg(DST, size)}, cl", regs, rflags, undefined, op)


def _multiply(b: _Builder) -> None:
    for size in SIZES:
        values = edge_values(size)
        for x in values:
            for y in values:
                regs = {"rax": b.upper(x, size), DST: b.upper(y, size), "rdx": b.rng.getrandbits(64)}
                b.add(f"mul {reg(DST, size)}", regs, RFLAGS_FIXED, MUL_UNDEFINED, "mul")
                b.add(f"imul {reg(DST, size)}", regs, RFLAGS_FIXED, MUL_UNDEFINED, "imul")
                if size > 8:
                    b.add(f"imul {reg(DST, size)}, {reg(SRC, size)}", {DST: b.upper(x, size), SRC: b.upper(y, size)},
                          RFLAGS_FIXED, MUL_UNDEFINED, "imul")
            for imm in (0, 1, -1, 2, 127, -128, 0x7FFF, -0x8000, 0x7FFFFFFF, -0x80000000):
                if size == 8 or (size == 16 and not -0x8000 <= imm <= 0x7FFF):
                    continue
                b.add(f"imul {reg(SRC, size)}, {reg(DST, size)}, {imm}", {DST: b.upper(x, size)}, RFLAGS_FIXED,
                      MUL_UNDEFINED, "imul")


def _divide(b: _Builder) -> None:
    """div/idiv with dividends and divisors at the edges, where the quotient fits."""
    for size in SIZES:
        mask = (1 << size) - 1
        values = edge_values(size)
        for hi in (0, 1, mask, mask >> 1, 1 << (size - 1)):
            for lo in values:
                for divisor in values:
                    if divisor == 0:
                        continue
                    dividend = lo if size == 8 else (hi << size) | lo
                    if size == 8:
                        dividend = (hi & 0xFF) << 8 | lo
                    for signed in (False, True):
                        if signed:
                            top = 2 * size
                            sd = dividend - (1 << top) if dividend >> (top - 1) else dividend
                            sv = divisor - (1 << size) if divisor >> (size - 1) else divisor
                            q = abs(sd) // abs(sv)
                            q = -q if (sd < 0) != (sv < 0) else q
                            if not -(1 << (size - 1)) <= q < (1 << (size - 1)):
                                continue
                        elif dividend // divisor > mask:
                            continue
                        regs = {DST: b.upper(divisor, size)}
                        if size == 8:
                            regs["rax"] = b.upper(dividend, 16)
                        else:
                            regs["rax"], regs["rdx"] = b.upper(lo, size), b.upper(hi, size)
                        b.add(f"{'idiv' if signed else 'div'} {reg(DST, size)}", regs, RFLAGS_FIXED, ARITH,
                              "idiv" if signed else "div")


def _bit_ops(b: _Builder) -> None:
    for size in (16, 32, 64):
        values = edge_values(size)
        for op in ("bt", "bts", "btr", "btc"):
            for x in values[::2]:
                for bit in (0, 1, size - 1, size, size + 5, 255):
                    undefined = OF | SF | AF | PF
                    b.add(f"{op} {reg(DST, size)}, {bit}", {DST: b.upper(x, size)}, RFLAGS_FIXED | ZF, undefined, op)
                    b.add(f"{op} {reg(DST, size)}, {reg(SRC, size)}", {DST: b.upper(x, size), SRC: b.upper(bit, size)},
                          RFLAGS_FIXED, undefined, op)
            # memory with a register offset reaching other bytes (signed): stay in scratch
            width = size // 8
            for bit in (-8 * MEM_OFFSET, -1, 0, 5, size, 8 * (SCRATCH_SIZE - MEM_OFFSET) - 1):
                mem = f"{'word dword qword'.split()[(16, 32, 64).index(size)]} ptr [r15 + {MEM_OFFSET}]"
                if MEM_OFFSET * 8 + bit < 0 or MEM_OFFSET + (bit // size) * width + width > SCRATCH_SIZE:
                    continue
                b.add(f"{op} {mem}, {reg(SRC, size)}", {SRC: bit & ((1 << 64) - 1)}, RFLAGS_FIXED,
                      OF | SF | AF | PF, op)
        for op in ("bsf", "bsr", "popcnt", "lzcnt", "tzcnt"):
            undefined = {"bsf": CF | OF | SF | AF | PF, "bsr": CF | OF | SF | AF | PF,
                         "popcnt": 0}.get(op, OF | SF | AF | PF)  # lzcnt/tzcnt define CF and ZF
            for x in values + [1 << (size // 2), (1 << (size - 1)) | 1]:
                b.add(f"{op} {reg(DST, size)}, {reg(SRC, size)}", {SRC: b.upper(x, size)}, RFLAGS_FIXED | CF,
                      undefined, op)


def _double_shifts(b: _Builder) -> None:
    for size in (16, 32, 64):
        values = edge_values(size)[::3]
        for op in ("shld", "shrd"):
            for count in sorted({0, 1, 2, size - 1, size, 31, 63, 64, 65}):
                masked = count & (63 if size == 64 else 31)
                if masked > size:
                    continue  # undefined result
                undefined = 0 if masked == 0 else AF | (OF if masked != 1 else 0)
                for x in values:
                    for y in values[::2]:
                        regs = {DST: b.upper(x, size), SRC: b.upper(y, size), "rcx": b.upper(count, 8)}
                        line = f"{op} {reg(DST, size)}, {reg(SRC, size)}, " + (f"{count}" if count % 2 else "cl")
                        b.add(line, regs, RFLAGS_FIXED | CF | OF, undefined, op)


def _exchange(b: _Builder) -> None:
    for size in SIZES:
        values = edge_values(size)[::2]
        for x in values:
            for y in values:
                regs = {DST: b.upper(x, size), SRC: b.upper(y, size)}
                b.add(f"xadd {reg(DST, size)}, {reg(SRC, size)}", regs, RFLAGS_FIXED, 0, "xadd")
                b.add(f"xadd {reg(DST, size)}, {reg(DST, size)}", regs, RFLAGS_FIXED, 0, "xadd")
                for acc in (x, y):
                    regs = {DST: b.upper(x, size), SRC: b.upper(y, size), "rax": b.upper(acc, size)}
                    b.add(f"cmpxchg {reg(DST, size)}, {reg(SRC, size)}", regs, RFLAGS_FIXED, 0, "cmpxchg")
                    mem = f"{'byte word dword qword'.split()[SIZES.index(size)]} ptr [r15 + {MEM_OFFSET}]"
                    b.add(f"lock cmpxchg {mem}, {reg(SRC, size)}", {SRC: b.upper(y, size), "rax": b.upper(acc, size)},
                          RFLAGS_FIXED, 0, "cmpxchg", {MEM_OFFSET: (size, x)})
                b.add(f"cmpxchg {reg('rax', size)}, {reg(SRC, size)}", regs, RFLAGS_FIXED, 0, "cmpxchg")


def _extend(b: _Builder) -> None:
    for src_size, dst_sizes in ((8, (16, 32, 64)), (16, (32, 64))):
        for x in edge_values(src_size):
            for dst_size in dst_sizes:
                for op in ("movzx", "movsx"):
                    b.add(f"{op} {reg(DST, dst_size)}, {reg(SRC, src_size)}",
                          {DST: b.rng.getrandbits(64), SRC: b.upper(x, src_size)}, RFLAGS_FIXED, 0, op)
    for x in edge_values(32):
        for dst_size in (16, 32, 64):
            b.add(f"movsxd {reg(DST, dst_size)}, {reg(SRC, 32)}", {SRC: b.upper(x, 32)}, RFLAGS_FIXED, 0, "movsxd")
    for x in edge_values(64)[::2]:
        for line in ("cbw", "cwde", "cdqe", "cwd", "cdq", "cqo"):
            b.add(line, {"rax": x, "rdx": b.rng.getrandbits(64)}, RFLAGS_FIXED, 0, line)


def _conditions(b: _Builder) -> None:
    """setcc / cmovcc / jcc for all 16 conditions under every combination of CF PF ZF SF OF."""
    status = (CF, PF, ZF, SF, OF)
    for bits in range(32):
        rflags = RFLAGS_FIXED | sum(flag for i, flag in enumerate(status) if bits >> i & 1)
        for cc in CONDITIONS:
            b.add(f"set{cc} bl", {}, rflags, 0, "setcc")
            b.add(f"set{cc} byte ptr [r15 + {MEM_OFFSET}]", {}, rflags, 0, "setcc")
            for size in (16, 32, 64):
                b.add(f"cmov{cc} {reg(DST, size)}, {reg(SRC, size)}", {}, rflags, 0, "cmovcc")
            b.add(f"j{cc} 1f\ninc rbx\n1:", {}, rflags, 0, "jcc")


# ---- faults ---------------------------------------------------------------------------------

NONCANONICAL = 0x8000000000000000
UNMAPPED = 0x8000000000  # PML4 entry 1: not present


def fault_cases() -> list[tuple[int | None, Case]]:
    """(expected vector or None for "no fault", case) pairs; see the module docstring."""
    b = _Builder(54321)
    expected: list[int | None] = []

    def add(vector, lines, regs=None, rflags=RFLAGS_FIXED, memory=None, undefined=0):
        # A fault leaves the flags as they were before the faulting instruction: all defined.
        b.add(lines, regs, rflags, undefined, "fault", memory)
        expected.append(vector)

    UD, DE, GP, SS, PF_ = 6, 0, 13, 12, 14
    # invalid opcodes and LOCK misuse
    add(UD, "ud2")
    add(UD, "ud1 eax, dword ptr [rax]")
    add(UD, ".byte 0x0f, 0xff, 0xc0")  # ud0
    add(UD, "add rax, rbx\nud2")  # the add has happened
    add(UD, ".byte 0xf0, 0x01, 0xd8")  # lock add eax, ebx: register destination
    add(UD, ".byte 0xf0, 0x41, 0x89, 0x07")  # lock mov [r15], eax
    add(UD, ".byte 0xf0, 0x41, 0x39, 0x07")  # lock cmp [r15], eax
    add(UD, ".byte 0xf0, 0x41, 0x0f, 0xa3, 0x07")  # lock bt [r15], eax
    add(UD, ".byte 0xf0, 0xff, 0xc0")  # lock inc eax
    add(UD, ".byte 0xf0, 0x87, 0xd8")  # lock xchg eax, ebx
    add(UD, ".byte 0xf0, 0x90")  # lock nop
    add(None, "lock add dword ptr [r15], eax")
    add(None, "lock xchg qword ptr [r15 + 8], rax")
    add(None, "lock btc word ptr [r15 + 2], 9")
    add(UD, ".byte 0xce")  # into: invalid in 64-bit mode
    add(UD, ".byte 0x27")  # daa: invalid in 64-bit mode
    # divide errors
    for size in SIZES:
        r = reg("rbx", size)
        add(DE, f"div {r}", {"rbx": 0, "rax": 5, "rdx": 0})
        add(DE, f"idiv {r}", {"rbx": 0, "rax": 5, "rdx": 0})
        minimum = 1 << (size - 1)
        if size == 8:
            add(DE, f"idiv {r}", {"rbx": 0xFF, "rax": 0x8000 & 0xFFFF})  # -32768 / -1
            add(DE, f"div {r}", {"rbx": 2, "rax": 0x200})  # quotient 256
        else:
            add(DE, f"idiv {r}", {"rbx": (1 << size) - 1, "rax": 0, "rdx": minimum})  # MIN / -1
            add(DE, f"div {r}", {"rbx": 1, "rax": 0, "rdx": 1})  # quotient 2^size
        mem = f"{'byte word dword qword'.split()[SIZES.index(size)]} ptr [r15 + 16]"
        add(DE, f"div {mem}", {"rax": 7, "rdx": 0}, memory={16: (size, 0)})
    add(None, "idiv bl", {"rbx": 0xFF, "rax": 0x0080}, undefined=ARITH)  # 128 / -1 = -128 fits
    add(None, "idiv rbx", {"rbx": 2, "rax": 0, "rdx": (1 << 64) - 1}, undefined=ARITH)  # -2^64 / 2 = -2^63
    add(DE, "idiv rbx", {"rbx": (1 << 64) - 2, "rax": 0, "rdx": (1 << 64) - 1})  # -2^64 / -2 = 2^63
    # privileged or disabled at CPL 3
    for line in ("hlt", "cli", "sti", "rdpmc", "rdmsr", "wrmsr", "mov rax, cr0", "mov cr3, rax", "mov rax, dr7",
                 "lgdt [r15]", "lidt [r15]", "invlpg [r15]", "wbinvd", "invd", "clts", "swapgs", "iretq", "retf",
                 "ltr ax", "lldt ax"):
        add(GP, line, {"rcx": 0x10, "rax": 0})
    # misaligned 16-byte operands
    add(GP, "movaps xmm0, xmmword ptr [r15 + 8]")
    add(GP, "movdqa xmmword ptr [r15 + 4], xmm1")
    add(GP, "cmpxchg16b xmmword ptr [r15 + 8]")
    add(None, "movups xmm0, xmmword ptr [r15 + 8]\nmovdqa xmmword ptr [r15 + 32], xmm0")
    # non-canonical addresses: #GP, or #SS when the stack segment is used
    add(GP, "mov rbx, qword ptr [rax]", {"rax": NONCANONICAL})
    add(GP, "mov qword ptr [rax + 8], rbx", {"rax": NONCANONICAL - 16})
    add(GP, "jmp rax", {"rax": NONCANONICAL})
    add(GP, "call rax", {"rax": NONCANONICAL})
    add(GP, "push rax\nret", {"rax": NONCANONICAL})
    add(GP, "mov rsi, rax\nlodsb", {"rax": NONCANONICAL})
    add(SS, "mov rsp, rax\npush rbx", {"rax": NONCANONICAL})
    add(SS, "mov rsp, rax\npop rbx", {"rax": NONCANONICAL})
    add(SS, "mov rbx, qword ptr [rbp + 8]", {"rbp": NONCANONICAL})
    add(SS, "mov rbx, qword ptr [rsp + rax]", {"rax": NONCANONICAL})
    # page faults: not present, read-only, supervisor-only; CR2 and the error code
    add(PF_, "mov rbx, qword ptr [rax]", {"rax": UNMAPPED})
    add(PF_, "mov qword ptr [rax], rbx", {"rax": UNMAPPED + 0x123})
    add(PF_, "mov ebx, dword ptr [rax]", {"rax": ABSENT_PAGE + 0x40})
    add(PF_, "add dword ptr [rax], ebx", {"rax": ABSENT_PAGE})
    add(PF_, "mov dword ptr [rax], ebx", {"rax": READONLY_PAGE + 8})
    add(None, "mov ebx, dword ptr [rax]", {"rax": READONLY_PAGE + 8})
    add(PF_, "inc dword ptr [rax]", {"rax": READONLY_PAGE + 8})
    add(PF_, "lock cmpxchg dword ptr [rax], ebx", {"rax": READONLY_PAGE, "rbx": 1})  # writes even when unequal
    add(PF_, "xchg qword ptr [rax], rbx", {"rax": READONLY_PAGE + 16})
    add(PF_, "mov ebx, dword ptr [rax]", {"rax": SUPERVISOR_PAGE + 4})
    add(PF_, "mov dword ptr [rax], ebx", {"rax": SUPERVISOR_PAGE + 4})
    add(PF_, "jmp rax", {"rax": UNMAPPED})
    add(PF_, "jmp rax", {"rax": ABSENT_PAGE + 0x100})
    add(PF_, "jmp rax", {"rax": SUPERVISOR_PAGE})
    add(PF_, "call rax", {"rax": ABSENT_PAGE})
    add(PF_, "jmp rax", {"rax": SPLIT_CODE_ADDR})  # the instruction's tail is on a supervisor page
    add(PF_, "mov rsp, rax\npush rbx", {"rax": ABSENT_PAGE + 0x1000})
    add(PF_, "mov rsp, rax\npush rbx", {"rax": READONLY_PAGE + 0x1000})
    add(PF_, "mov rsp, rax\ncall 1f\n1:", {"rax": READONLY_PAGE + 0x1000})
    add(PF_, "mov rsp, rax\npop rbx", {"rax": ABSENT_PAGE})
    # accesses split across a page boundary whose second page faults: nothing is written
    add(PF_, "mov qword ptr [rax], rbx", {"rax": ABSENT_PAGE - 4, "rbx": 0x1122334455667788})
    add(PF_, "add qword ptr [rax], rbx", {"rax": ABSENT_PAGE - 3})
    add(PF_, "mov rbx, qword ptr [rax]", {"rax": ABSENT_PAGE - 2})
    add(PF_, "mov dword ptr [rax], ebx", {"rax": SUPERVISOR_PAGE - 2})
    add(PF_, "movups xmmword ptr [rax], xmm0", {"rax": ABSENT_PAGE - 8})
    # string instructions stopped part way by a fault: rcx, rsi, rdi show the progress
    add(PF_, "mov ecx, 32\ncld\nrep movsb", {"rsi": ABSENT_PAGE - 8, "rdi": SCRATCH_ADDR})
    add(PF_, "mov ecx, 8\ncld\nrep movsq", {"rsi": SCRATCH_ADDR, "rdi": READONLY_PAGE - 24})
    add(PF_, "mov ecx, 40\ncld\nrep stosb", {"rdi": ABSENT_PAGE - 16, "rax": 0x5A})
    add(PF_, "mov ecx, 10\nstd\nrep stosw\ncld", {"rdi": ABSENT_PAGE + PAGE_2M + 6, "rax": 0x1234})
    add(PF_, "mov ecx, 20\ncld\nrepe cmpsb", {"rsi": ABSENT_PAGE - 10, "rdi": ABSENT_PAGE - 10})
    add(PF_, "mov ecx, 20\ncld\nrep lodsd", {"rsi": ABSENT_PAGE - 12})
    # x87: a faulting memory operand changes nothing (no pop, no partial store); pending
    # unmasked exceptions raise #MF at the next waiting instruction only; reserved encodings
    clean_fpu = "\n".join(CLEAN_START)
    x87_state = f"{clean_fpu}\nfldpi\nfld1"
    after = "\nfnsave [r15 + 16]\nmov qword ptr [r15 + 28], 0\nmov qword ptr [r15 + 36], 0"  # pointers cleared
    MF = 16
    add(PF_, f"{x87_state}\nfstp qword ptr [rax]", {"rax": READONLY_PAGE + 8})
    add(PF_, f"{x87_state}\nfistp dword ptr [rax]", {"rax": ABSENT_PAGE - 2})
    add(PF_, f"{x87_state}\nfld tbyte ptr [rax]", {"rax": ABSENT_PAGE - 6})
    add(PF_, f"{x87_state}\nfadd qword ptr [rax]", {"rax": UNMAPPED})
    add(PF_, f"{x87_state}\nfnsave [rax]", {"rax": READONLY_PAGE - 50})
    add(PF_, f"{x87_state}\nfnstenv [rax]", {"rax": SUPERVISOR_PAGE - 10})
    add(None, f"{x87_state}\nfstp qword ptr [rax]{after}", {"rax": SCRATCH_ADDR + 200})
    add(PF_, f"{x87_state}\nfldenv [rax]", {"rax": ABSENT_PAGE - 10})
    add(PF_, f"{x87_state}\nfrstor [rax]", {"rax": ABSENT_PAGE - 100})
    unmask_zero_divide = "\nmov word ptr [r15], 0x37b\nfldcw word ptr [r15]"
    add(MF, f"{x87_state}{unmask_zero_divide}\nfldz\nfdivp st(1), st(0)\nfnstsw ax\nfwait")
    add(None, f"{x87_state}{unmask_zero_divide}\nfldz\nfdivp st(1), st(0)\nfnstenv [r15 + 8]\nfwait")  # masks all
    add(MF, f"{x87_state}{unmask_zero_divide}\nfldz\nfdivp st(1), st(0)\nfld1")
    add(MF, f"{x87_state}{unmask_zero_divide}\nfldz\nfdivp st(1), st(0)\nfistp dword ptr [r15 + 40]")
    add(None, f"{x87_state}{unmask_zero_divide}\nfldz\nfdivp st(1), st(0)\nfnclex\nfld1{after}")
    add(MF, f"{clean_fpu}\nfld1\nfstp st(1)\nfstp st(0)\nfstp st(0)\nmov word ptr [r15], 0x37e"
            f"\nfldcw word ptr [r15]\nfld1")  # stack underflow flagged (masked), unmasked by fldcw
    add(MF, f"{x87_state}\nmov word ptr [r15], 0x37e\nfldcw word ptr [r15]\nfld qword ptr [r15 + 8]"
            "\nfistp word ptr [r15 + 32]\nfwait", memory={8: (64, 0x7FF8000000000000)})  # QNaN to integer: IE,
    # and with IE unmasked nothing is stored
    for encoding in ("0xd9, 0xd1", "0xd9, 0xe2", "0xd9, 0xe7", "0xd9, 0xef", "0xda, 0xe0", "0xdb, 0xe5",
                     "0xdb, 0xf8", "0xdd, 0xf0", "0xde, 0xd8", "0xdf, 0xe1", "0xdf, 0xf8"):
        add(UD, f".byte {encoding}")
    add(UD, ".byte 0x41, 0xd9, 0x4f, 0x00")  # D9 /1 memory form
    add(UD, ".byte 0xf0, 0xd8, 0xc1")  # lock fadd
    # AVX/AVX2: masked moves never touch a masked-off element; a gather stopped by a fault
    # leaves its progress (the vector registers after a fault are compared); VEX #UD rules
    half_mask = {0: (64, -1), 8: (64, -1), 16: (64, 0x7FFFFFFF7FFFFFFF), 24: (64, 0)}  # dwords 0-3 on
    load_mask = "vmovdqu ymm1, ymmword ptr [r15]"
    for op, base in (("vmaskmovps", ABSENT_PAGE - 16), ("vpmaskmovd", ABSENT_PAGE - 16),
                     ("vmaskmovpd", ABSENT_PAGE - 16), ("vpmaskmovq", ABSENT_PAGE - 16)):
        add(None, f"{load_mask}\n{op} ymm0, ymm1, ymmword ptr [rax]\nvmovdqu ymmword ptr [r15 + 64], ymm0",
            {"rax": base}, memory=half_mask)
        add(PF_, f"vpcmpeqd ymm1, ymm1, ymm1\n{op} ymm0, ymm1, ymmword ptr [rax]", {"rax": base})
        add(None, f"{load_mask}\nvmovdqu ymm0, ymmword ptr [r15 + 32]\n{op} ymmword ptr [rax], ymm1, ymm0",
            {"rax": READONLY_PAGE - 16}, memory=half_mask)
        add(PF_, f"vpcmpeqd ymm1, ymm1, ymm1\nvmovdqu ymm0, ymmword ptr [r15 + 32]\n{op} ymmword ptr [rax], ymm1, ymm0",
            {"rax": READONLY_PAGE - 16})  # nothing written below the read-only page either
    add(None, f"vpxor xmm1, xmm1, xmm1\nvmaskmovps xmm0, xmm1, xmmword ptr [rax]\nvmaskmovps xmmword ptr [rbx], xmm1, xmm0",
        {"rax": ABSENT_PAGE + 64, "rbx": READONLY_PAGE + 64})
    add(PF_, "vpcmpeqd ymm1, ymm1, ymm1\nvmaskmovps xmmword ptr [rax], xmm1, xmm0", {"rax": SUPERVISOR_PAGE - 8})
    six = {0: (64, -1), 8: (64, -1), 16: (64, -1), 24: (64, 0)}  # dwords 0-5 on: CR2 is element 5's last byte
    add(PF_, f"{load_mask}\nvmaskmovps ymmword ptr [rax], ymm1, ymm0", {"rax": READONLY_PAGE - 16}, memory=six)
    add(PF_, f"{load_mask}\nvmaskmovpd ymmword ptr [rax], ymm1, ymm0", {"rax": READONLY_PAGE - 20}, memory=six)
    # gathers: indices 0, 4, 8, ... from 8 bytes below the absent page: elements 2.. fault
    gather_idx = {0: (64, 0x0000000400000000), 8: (64, 0x0000000C00000008), 16: (64, 0x0000001400000010),
                  24: (64, 0x0000001C00000018), 32: (64, 0), 40: (64, 8), 48: (64, 16), 56: (64, 24)}
    setup = "vmovdqu ymm2, ymmword ptr [r15]\nvmovdqu ymm0, ymmword ptr [r15 + 64]\nvpcmpeqd ymm3, ymm3, ymm3"
    add(PF_, f"{setup}\nvpgatherdd ymm0, [rax + ymm2*1], ymm3", {"rax": ABSENT_PAGE - 8}, memory=gather_idx)
    add(PF_, f"{setup}\nvgatherdps xmm0, [rax + xmm2*1], xmm3", {"rax": ABSENT_PAGE - 8}, memory=gather_idx)
    add(PF_, f"{setup}\nvmovdqu ymm2, ymmword ptr [r15 + 32]\nvgatherqps xmm0, [rax + xmm2*1], xmm3",
        {"rax": ABSENT_PAGE - 10}, memory=gather_idx)  # element 1 straddles into the absent page
    add(PF_, f"{setup}\nvmovdqu ymm2, ymmword ptr [r15 + 32]\nvpgatherqd xmm0, [rax + ymm2*1], xmm3",
        {"rax": ABSENT_PAGE - 16}, memory=gather_idx)
    add(PF_, f"{setup}\nvpgatherdq ymm0, [rax + xmm2*2], ymm3", {"rax": ABSENT_PAGE - 16}, memory=gather_idx)
    add(PF_, f"{setup}\nvmovdqu ymm2, ymmword ptr [r15 + 32]\nvgatherqpd ymm0, [rax + ymm2*1], ymm3",
        {"rax": ABSENT_PAGE - 16}, memory=gather_idx)
    add(PF_, f"{setup}\nvpsllq ymm3, ymm3, 32\nvpgatherdd ymm0, [rax + ymm2*1], ymm3", {"rax": ABSENT_PAGE - 8},
        memory=gather_idx)  # the odd elements: 1 done, 3 faults
    add(None, f"{setup}\nvpsrldq xmm3, xmm3, 8\nvpgatherdd xmm0, [rax + xmm2*1], xmm3\n"
              "vmovdqu ymmword ptr [r15 + 96], ymm0\nvmovdqu ymmword ptr [r15 + 128], ymm3",
        {"rax": ABSENT_PAGE - 8}, memory=gather_idx)  # elements 2 and 3 (on the absent page) masked off
    add(UD, ".byte 0xc4, 0xe2, 0x75, 0x90, 0x04, 0x88")  # vpgatherdd ymm0, [rax + ymm1*4], ymm1: mask = index
    add(UD, ".byte 0xc4, 0xe2, 0x75, 0x90, 0x0c, 0x80")  # vpgatherdd ymm1, [rax + ymm0*4], ymm1: dest = mask
    add(UD, ".byte 0xc4, 0xe2, 0x75, 0x90, 0xc1")  # register operand
    # (misaligned vmovaps/vmovntps/vmovntdqa: the #GP goes to PVM's instruction emulator, which
    # answers #UD for VEX instructions: tests/unit/test_interp_avx.py checks the #GP)
    add(None, "vaddps ymm0, ymm1, ymmword ptr [r15 + 1]\nvmovdqu ymmword ptr [r15 + 64], ymm0")
    add(UD, ".byte 0xc5, 0xf1, 0x70, 0xc0, 0x00")  # vpshufd with vvvv != 1111b
    add(UD, ".byte 0xc5, 0xfd, 0x6e, 0xc0")  # vmovd with VEX.L = 1
    add(UD, ".byte 0xc4, 0xe2, 0x79, 0x19, 0xc1")  # vbroadcastsd with VEX.L = 0
    if host_vendor() == "GenuineIntel":  # AMD EPYC (Zen 4) runs it as vpermq: no #UD to compare
        add(UD, ".byte 0xc4, 0xe3, 0x7d, 0x00, 0xc1, 0x00")  # vpermq with VEX.W = 0
    add(UD, ".byte 0xc4, 0xe3, 0x79, 0x18, 0xc1, 0x00")  # vinsertf128 with VEX.L = 0
    add(UD, ".byte 0xc4, 0xe2, 0xfd, 0x18, 0xc1")  # vbroadcastss with VEX.W = 1
    # CPL-3 system instructions that do not fault without UMIP (PVM answers with guest state)
    add(None, "smsw eax")
    add(None, "str eax")
    add(None, "sldt eax")
    add(None, "sgdt [r15 + 16]")
    add(None, "sidt [r15 + 32]")
    return list(zip(expected, b.cases))
