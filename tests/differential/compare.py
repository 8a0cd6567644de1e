"""Compare a case's outcome on hardware (KVM) and in the interpreter; format mismatch reports."""

from __future__ import annotations

import re
from typing import NamedTuple

from .cases import GPRS64, LOW_SCRATCH_ADDR, SCRATCH_ADDR, SCRATCH_SIZE
from .common import WINDOWS

COMPAT_REGS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"]

DF, IF, FIXED1 = 0x400, 0x200, 0x2
RF = 0x10000
# Compared RFLAGS bits: all of them (status flags minus those the case leaves undefined, DF,
# IF, bit 1, and TF IOPL NT VM AC VIF VIP ID, which cases can only change through popf) except
# RF, which a completed instruction clears (KVM leaves it set after an MMIO exit). The RF
# pushed in an exception frame is compared with the rest of the frame.
COMPARED_FLAGS = ((1 << 22) - 1) & ~RF
FLAG_NAMES = [(0x1, "CF"), (0x4, "PF"), (0x10, "AF"), (0x40, "ZF"), (0x80, "SF"), (0x200, "IF"), (0x400, "DF"),
              (0x800, "OF"), (0x2, "bit1"), (0x100, "TF"), (0x3000, "IOPL"), (0x4000, "NT"), (0x10000, "RF"),
              (0x20000, "VM"), (0x40000, "AC"), (0x80000, "VIF"), (0x100000, "VIP"), (0x200000, "ID")]
FRAME_FIELDS = ("error_code", "rip", "cs", "rflags", "rsp", "ss")
STATUS_FLAGS = 0x8D5  # CF PF AF ZF SF OF


class VendorSpecific(NamedTuple):
    """What a case may leave differently on Intel and AMD, so the interpreter (which follows
    one of them) is not held to the other."""
    skip_stack: bool  # the stack window
    loose_flags: int  # RFLAGS bits
    skip_cr2: bool
    skip_upper_vregs: bool  # the ymm registers' upper halves after a fault
    scratch_bytes: frozenset  # offsets in the scratch area


MASKED_STORE = re.compile(r"\b(vmaskmovp[sd]|vpmaskmov[dq]) [xy]mmword ptr")
XMM_GATHER = re.compile(r"\bv(p?gather[dq][dq]|gather[dq]p[sd]) xmm")
FPU_ENVIRONMENT = re.compile(r"\bfn(?:stenv|save) \[r15(?: \+ (\d+))?\]")
UD_VECTOR = 6
FCS_FDS_OFFSETS = (16, 17, 24, 25)  # in the protected-mode environment both store: the code and data selectors


def vendor_specific(case, hw) -> VendorSpecific:
    """Seen, Intel Xeon against AMD EPYC (Zen 4):
    - a `call` to a non-canonical target faults after pushing the return address on Intel
      and before it on AMD;
    - a `repe/repne cmps/scas` that faults in a later iteration leaves the flags of the
      iterations done on AMD and the flags it started with on Intel;
    - a masked store that faults reports the last byte of the faulting element in CR2 on
      Intel, the first byte of the page it could not write on AMD;
    - an xmm-form gather that faults zeroes the upper halves of its destination and mask on
      Intel and leaves them on AMD;
    - `fnstenv`/`fnsave` store FCS and FDS as 0 on Intel (CPUID.7.EBX[13], the selectors
      deprecated) and the selectors on AMD;
    - after the #UD of an invalid VEX.L/VEX.W encoding, AMD shows the destination's upper
      half as all ones."""
    text = " ; ".join(case.lines)
    environment = frozenset(int(offset or 0) + byte for offset in FPU_ENVIRONMENT.findall(text)
                            for byte in FCS_FDS_OFFSETS)
    if hw.vector is None:
        return VendorSpecific(False, 0, False, False, environment)
    string_compare = any(f"{rep} {op}" in text for rep in ("repe", "repne", "repz", "repnz") for op in ("cmps", "scas"))
    return VendorSpecific("call" in text, STATUS_FLAGS if string_compare else 0, bool(MASKED_STORE.search(text)),
                          bool(XMM_GATHER.search(text)) or (hw.vector == UD_VECTOR and text.startswith(".byte 0xc4")),
                          environment)


def flag_names(bits: int) -> str:
    names = [name for bit, name in FLAG_NAMES if bits & bit]
    rest = bits & ~sum(bit for bit, _ in FLAG_NAMES)
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) or "-"


def compare(case, hw, sw) -> list[str]:
    """Differences between the hardware outcome `hw` and the interpreter's `sw` (empty: agree)."""
    diffs = []
    if hw.fault != sw.fault:
        diffs.append(f"end: hardware {hw.fault or 'normal'}, interpreter {sw.fault or 'normal'}")
        if hw.vector is None or sw.vector is None:
            return diffs
    if hw.end_rip != sw.end_rip and not diffs:
        diffs.append(f"end rip: hardware {hw.end_rip:#x}, interpreter {sw.end_rip:#x}")
    mode = getattr(case, "mode", 64)
    # In compatibility mode only eax..edi and esp exist, and the upper halves of registers are
    # architecturally undefined after running 32-bit code: compare the low 32 bits.
    names, mask = (GPRS64 + ["rsp"], (1 << 64) - 1) if mode == 64 else (COMPAT_REGS, 0xFFFFFFFF)
    for name in names:
        a, b = hw.regs[name] & mask, sw.regs[name] & mask
        if a != b:
            diffs.append(f"{name}: hardware {a:#018x}, interpreter {b:#018x} (xor {a ^ b:#x})")
    vendor = vendor_specific(case, hw)
    skip_stack, loose_flags = vendor.skip_stack, vendor.loose_flags
    mask = COMPARED_FLAGS & ~case.undefined_flags & ~loose_flags
    if hw.vector is not None:  # faulted part way: what was undefined there is not tracked
        loose_flags |= case.ever_undefined_flags
        mask &= ~loose_flags
    if (hw.rflags ^ sw.rflags) & mask:
        diffs.append(f"rflags: hardware {hw.rflags:#x} [{flag_names(hw.rflags & mask)}], interpreter "
                     f"{sw.rflags:#x} [{flag_names(sw.rflags & mask)}]; "
                     f"differ in {flag_names((hw.rflags ^ sw.rflags) & mask)}")
    for start, name, addr in ((0, "scratch", SCRATCH_ADDR), (SCRATCH_SIZE, "low scratch", LOW_SCRATCH_ADDR)):
        a, b = hw.scratch[start:start + SCRATCH_SIZE], sw.scratch[start:start + SCRATCH_SIZE]
        if start == 0 and vendor.scratch_bytes:
            a = bytes(0 if i in vendor.scratch_bytes else byte for i, byte in enumerate(a))
            b = bytes(0 if i in vendor.scratch_bytes else byte for i, byte in enumerate(b))
        if a != b:
            where = [i for i in range(len(a)) if a[i] != b[i]]
            first, last = where[0], where[-1]
            diffs.append(f"{name} [{first}..{last}] (at {addr + first:#x}): hardware {a[first:last + 1].hex()}, "
                         f"interpreter {b[first:last + 1].hex()}")
    for (name, addr, _), a, b in zip(WINDOWS, hw.windows, sw.windows):
        if a != b and not (skip_stack and name == "stack"):
            where = [i for i in range(len(a)) if a[i] != b[i]]
            first, last = where[0], where[-1]
            diffs.append(f"memory {name} [{addr + first:#x}..{addr + last:#x}]: hardware {a[first:last + 1].hex()}, "
                         f"interpreter {b[first:last + 1].hex()}")
    if hw.vector is not None:
        for field, a, b in zip(FRAME_FIELDS, hw.frame, sw.frame):
            if field == "rflags" and a is not None and b is not None:
                a, b = a & ~loose_flags, b & ~loose_flags
            if a != b:
                diffs.append(f"exception frame {field}: hardware {a if a is None else hex(a)}, "
                             f"interpreter {b if b is None else hex(b)}")
        if hw.cr2 != sw.cr2 and not vendor.skip_cr2:
            diffs.append(f"cr2: hardware {hw.cr2:#x}, interpreter {sw.cr2:#x}")
        if hw.mxcsr != sw.mxcsr:  # e.g. the exception flags an #XM left
            diffs.append(f"mxcsr after the fault: hardware {hw.mxcsr:#x}, interpreter {sw.mxcsr:#x}")
        if hw.vregs != sw.vregs:  # e.g. a gather's progress
            for i in range(16 if vendor.skip_upper_vregs else 32):
                a, b = hw.vregs[16 * i:16 * i + 16], sw.vregs[16 * i:16 * i + 16]
                if a != b:
                    name = f"xmm{i}" if i < 16 else f"ymm{i - 16}[255:128]"
                    diffs.append(f"{name} after the fault: hardware {a[::-1].hex()}, interpreter {b[::-1].hex()}")
    return diffs


def format_case(case) -> str:
    regs = " ".join(f"{name}={value:#x}" for name, value in case.regs.items())
    mode = getattr(case, "mode", 64)
    label = "code:      " if mode == 64 else f"code ({mode}-bit, compatibility mode): "
    return (f"    {label}{' ; '.join(case.lines)}\n"
            f"    rflags in: {case.rflags:#x} [{flag_names(case.rflags)}]; undefined at end: "
            f"{flag_names(case.undefined_flags)}\n"
            f"    regs in:   {regs}\n"
            f"    scratch:   {case.scratch[:32].hex()}...")


def format_report(mismatches, total: int, seed, limit: int = 10) -> str:
    """mismatches: (label, case, diffs) triples; label says how to regenerate the case."""
    lines = [f"{len(mismatches)} of {total} cases differ between hardware and the interpreter (seed {seed})"]
    for label, case, diffs in mismatches[:limit]:
        lines.append(f"  {label}:")
        if case is not None:
            lines.append(format_case(case))
        lines.extend(f"    - {diff}" for diff in diffs)
    if len(mismatches) > limit:
        lines.append(f"  ... and {len(mismatches) - limit} more")
    return "\n".join(lines)
