"""The guest both runners build: memory layout, boot tables, IDT stubs, ring-3 segments.

KVM (hardware) and the interpreter start every case from the same state:

    64 MiB of RAM at 0; kvmpy.vcpu.modes' boot GDT, TSS (with an all-allowing I/O bitmap)
    and identity page tables (2 MiB pages, user-accessible, 4 GiB);
    CS = user code (GDT_USER_CODE64 | 3), SS/DS/ES = user data (GDT_USER_DATA | 3), CPL 3;
    code at CODE_ADDR (case N at CODE_ADDR + assemble.case_offset(N)), scratch at SCRATCH_ADDR (r15) and a
    copy of it at LOW_SCRATCH_ADDR, RSP = STACK_TOP;
    compatibility-mode cases: CS = GDT_USER_CODE32 | 3 or GDT_USER_CODE16 | 3 (16-bit cases
    run from a copy of their code at CODE16_ADDR);
    READONLY_PAGE, SUPERVISOR_PAGE and ABSENT_PAGE: 2 MiB pages mapped read-only, supervisor-only
    and not at all (for page faults);
    an IDT whose vector v goes (interrupt gate, DPL 0, ring-0 code) to the stub at
    STUB_ADDR + STUB_SIZE * v: `out FAULT_PORT, al; hlt`.  A fault therefore ends the case
    with a port write too, and the vector is read off RIP; the exception frame (error code,
    RIP, CS, RFLAGS, RSP, SS) is on the ring-0 stack that TSS.RSP0 names.

The stubs run at ring 0 (emulated by the host kernel under PVM), which only matters for
cases that fault.
"""

from __future__ import annotations

import struct
from types import SimpleNamespace

from kvmpy import layout
from kvmpy.vcpu.modes import StartMode, configure_sregs, gdt_entry, write_boot_tables

from .assemble import SLOT, case_offset
from .cases import GPRS64, LOW_SCRATCH_ADDR, SCRATCH_ADDR, SCRATCH_SIZE

MEM_SIZE = 64 * layout.MiB
CODE_ADDR = 0x400000  # identity-mapped, user-accessible (see kvmpy.vcpu.modes)
STACK_TOP = 0x380000
STACK_AREA = 256  # bytes below STACK_TOP, zeroed before each case and compared after it
STACK_BASE = STACK_TOP - STACK_AREA
IDT_ADDR = 0x200000
STUB_ADDR = 0x210000
STUB_SIZE = 16
IDT_VECTORS = 256
# Three 2 MiB pages of RAM with special page-table entries, for the fault cases (tables.py),
# each with an ordinary page below and above it.
READONLY_PAGE = 0x2000000  # present, user, read-only
SUPERVISOR_PAGE = 0x2400000  # present, writable, supervisor-only
ABSENT_PAGE = 0x2800000  # not present
PAGE_2M = 2 * layout.MiB
MAX_CODE = READONLY_PAGE - PAGE_2M - CODE_ADDR  # the cases stay clear of the special pages
# Code that starts in the last bytes of an ordinary page and continues into SUPERVISOR_PAGE:
# `mov eax, 0x11223344` (b8 44 33 22 11) with its first three bytes in the ordinary page.
SPLIT_CODE_ADDR = SUPERVISOR_PAGE - 3
SPLIT_CODE = bytes([0xB8, 0x44, 0x33, 0x22, 0x11])
# Memory windows zeroed before each case and compared after it (besides the scratch area):
# the stack below STACK_TOP, and the bytes around the special pages (partial writes by faulting
# string or page-split instructions land there).
WINDOWS = (("stack", STACK_BASE, STACK_AREA), ("below absent page", ABSENT_PAGE - 64, 64),
           ("above absent page", ABSENT_PAGE + PAGE_2M, 64), ("below read-only page", READONLY_PAGE - 64, 64),
           ("below supervisor page", SUPERVISOR_PAGE - 64, 64))
# What a window holds at the start of a case: zeros, but the head of SPLIT_CODE where it lies.
_WINDOW_INIT = []
for _name, _addr, _size in WINDOWS:
    _init = bytearray(_size)
    for _i, _byte in enumerate(SPLIT_CODE):
        if _addr <= SPLIT_CODE_ADDR + _i < _addr + _size:
            _init[SPLIT_CODE_ADDR + _i - _addr] = _byte
    _WINDOW_INIT.append((_addr, bytes(_init)))
# Compatibility mode: ring-3 32- and 16-bit code segments in GDT slots 8 and 9; 16-bit cases
# run from a copy of their code below 64 KiB (IP is 16 bits), and address a copy of the
# scratch area there too.
GDT_USER_CODE32 = 0x40
GDT_USER_CODE16 = 0x48
GDT_LIMIT = 0x4F
CODE16_ADDR = 0x5000
BENCH_PORT = layout.BENCH_PORT  # a case's normal end: `out 0xf6, al`
FAULT_PORT = 0xF7  # an exception's end: the IDT stub's `out 0xf7, al`
MXCSR_DEFAULT = 0x1F80
END_INSN_LEN = 2  # `out imm8, al` is E6 ib
VECTORS_WITH_ERROR_CODE = frozenset({8, 10, 11, 12, 13, 14, 17, 21, 29, 30})
VECTOR_NAMES = {0: "#DE", 1: "#DB", 3: "#BP", 4: "#OF", 5: "#BR", 6: "#UD", 7: "#NM", 8: "#DF", 10: "#TS",
                11: "#NP", 12: "#SS", 13: "#GP", 14: "#PF", 16: "#MF", 17: "#AC", 18: "#MC", 19: "#XM"}


def case_addr(index: int) -> int:
    return CODE_ADDR + case_offset(index)


class Outcome:
    """How a case ended, on either side.

    regs: the 14 case GPRs (cases.GPRS64) and rsp; rflags; scratch: the scratch bytes;
    windows: the bytes of the WINDOWS, one bytes object each;
    end_rip: RIP just after the `out` that ended the case (the case's own or the IDT stub's);
    vector: the exception vector when a fault ended it (else None); frame: its exception frame
    (error_code (None when the vector has none), rip, cs, rflags, rsp, ss); cr2;
    fault: None for a normal end, else a one-line description (vector or unexpected stop);
    mxcsr: after a fault, the MXCSR it left (the runners then reset it to MXCSR_DEFAULT, so a
    case that faulted with exceptions unmasked does not leak them into the next case);
    vregs: after a fault, XMM0..15 then the upper halves of YMM0..15 (512 bytes): what an
    interrupted instruction (a gather part way) left in the registers.
    """

    __slots__ = ("regs", "rflags", "scratch", "windows", "end_rip", "vector", "frame", "cr2", "fault", "mxcsr",
                 "vregs")

    def __init__(self, regs, rflags, scratch, windows, end_rip=None, vector=None, frame=None, cr2=0, fault=None):
        self.regs, self.rflags, self.scratch, self.windows, self.end_rip = regs, rflags, scratch, windows, end_rip
        self.vector, self.frame, self.cr2, self.fault = vector, frame, cr2, fault
        self.mxcsr = None
        self.vregs = None

    def __repr__(self) -> str:
        return f"Outcome(fault={self.fault!r}, end_rip={self.end_rip}, rflags={self.rflags:#x})"


def describe_vector(vector: int) -> str:
    return f"{VECTOR_NAMES.get(vector, 'vector')} ({vector})"


def read_frame(memory, rsp: int, vector: int) -> tuple:
    """(error_code or None, rip, cs, rflags, rsp, ss) from the ring-0 stack."""
    has_error = vector in VECTORS_WITH_ERROR_CODE
    words = struct.unpack("<6Q", memory.read(rsp, 48))
    if has_error:
        return words[0], *words[1:6]
    return None, *words[0:5]


def fault_outcome(memory, regs: dict, rip: int, rsp: int, scratch: bytes, windows, cr2: int) -> Outcome:
    """The outcome of a case that ended in IDT stub code at `rip` (after its `out`).

    regs["rsp"] and rflags are the interrupted code's (from the exception frame)."""
    vector = (rip - END_INSN_LEN - STUB_ADDR) // STUB_SIZE
    if not 0 <= vector < IDT_VECTORS or rip - END_INSN_LEN != STUB_ADDR + STUB_SIZE * vector:
        return Outcome(regs, 0, scratch, windows, rip, None, None, 0, f"fault port written from {rip:#x}")
    frame = read_frame(memory, rsp, vector)
    regs["rsp"] = frame[4]
    return Outcome(regs, frame[3], scratch, windows, rip, vector, frame, cr2 if vector == 14 else 0,
                   describe_vector(vector))


def write_scratch(memory, scratch: bytes) -> None:
    memory.write(SCRATCH_ADDR, scratch)
    memory.write(LOW_SCRATCH_ADDR, scratch)


def read_scratch(memory) -> bytes:
    """The scratch area then its low copy (2 * SCRATCH_SIZE bytes)."""
    return memory.read(SCRATCH_ADDR, SCRATCH_SIZE) + memory.read(LOW_SCRATCH_ADDR, SCRATCH_SIZE)


def case_rip(index: int, case, memory, blob: bytes) -> int:
    """Where case `index` starts; a 16-bit case gets its code copied below 64 KiB first."""
    if getattr(case, "mode", 64) == 16:
        memory.write(CODE16_ADDR, blob[case_offset(index):case_offset(index) + SLOT])
        return CODE16_ADDR
    return case_addr(index)


def reset_windows(memory) -> None:
    for addr, data in _WINDOW_INIT:
        memory.write(addr, data)


def read_windows(memory) -> tuple:
    return tuple(memory.read(addr, size) for _, addr, size in WINDOWS)


def _gate64(handler: int, selector: int) -> bytes:
    low = (handler & 0xFFFF) | selector << 16 | 0xE << 40 | 1 << 47 | ((handler >> 16) & 0xFFFF) << 48
    return struct.pack("<QQ", low, handler >> 32)


def load_code(memory, blob: bytes) -> None:
    """The assembled cases at CODE_ADDR (a new batch: nothing else is rewritten, in particular
    not the page tables, whose userspace rewrite KVM's shadow MMU would not notice)."""
    if len(blob) > MAX_CODE:
        raise ValueError(f"{len(blob)} bytes of cases do not fit in {MAX_CODE} (use smaller batches)")
    memory.write(CODE_ADDR, blob)


def prepare_memory(memory, blob: bytes) -> None:
    """Boot tables, IDT and stubs, special pages, and the assembled cases at CODE_ADDR."""
    load_code(memory, blob)
    write_boot_tables(memory, long_mode=True)
    stub = bytes([0xE6, FAULT_PORT, 0xF4]).ljust(STUB_SIZE, b"\x90")  # out FAULT_PORT, al; hlt
    memory.write(STUB_ADDR, stub * IDT_VECTORS)
    memory.write(IDT_ADDR, b"".join(_gate64(STUB_ADDR + STUB_SIZE * v, layout.GDT_KERNEL_CODE64)
                                    for v in range(IDT_VECTORS)))
    pte = lambda addr: layout.PD_ADDR + 8 * (addr // PAGE_2M)  # noqa: E731  (first GiB: one PD page)
    huge, present, writable, user = 1 << 7, 1, 2, 4
    memory.write_int(pte(READONLY_PAGE), 8, READONLY_PAGE | huge | present | user)
    memory.write_int(pte(SUPERVISOR_PAGE), 8, SUPERVISOR_PAGE | huge | present | writable)
    memory.write_int(pte(ABSENT_PAGE), 8, 0)
    memory.write(SPLIT_CODE_ADDR, SPLIT_CODE)
    memory.write_int(layout.BOOT_GDT_ADDR + GDT_USER_CODE32, 8, gdt_entry(0xFB, 0xC))  # P DPL3 code; G D
    memory.write_int(layout.BOOT_GDT_ADDR + GDT_USER_CODE16, 8, gdt_entry(0xFB, 0x8))  # P DPL3 code; G


def user_sregs(sregs) -> None:
    """Long mode (kvmpy.vcpu.modes), then ring-3 CS/SS/DS/ES and our IDT, into a kvm_sregs-like object."""
    configure_sregs(sregs, StartMode.LONG)
    for segment, selector in ((sregs.cs, layout.GDT_USER_CODE64), (sregs.ss, layout.GDT_USER_DATA),
                              (sregs.ds, layout.GDT_USER_DATA), (sregs.es, layout.GDT_USER_DATA)):
        segment.selector = selector | 3
        segment.dpl = 3
    sregs.idt.base = IDT_ADDR
    sregs.idt.limit = IDT_VECTORS * 16 - 1
    sregs.gdt.limit = GDT_LIMIT
    sregs.cr4 |= CR4_OSXSAVE  # VEX instructions (cases_vex.py) need it, with XCR0 = GUEST_XCR0


# XCR0 of both sides: x87, SSE and AVX state (VEX instructions #UD without SSE|AVX).
GUEST_XCR0 = 0x7
CR4_OSXSAVE = 1 << 18


def set_code_mode(cs, mode: int) -> None:
    """Make a kvm_segment-like CS the 64-bit, 32-bit or 16-bit ring-3 code segment."""
    cs.selector = {64: layout.GDT_USER_CODE64, 32: GDT_USER_CODE32, 16: GDT_USER_CODE16}[mode] | 3
    cs.l = int(mode == 64)
    cs.db = int(mode == 32)


SEGMENT_FIELDS = ("base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable")


def plain_sregs():
    """A stand-in for struct kvm_sregs (for the interpreter, which needs no /dev/kvm)."""
    def segment():
        return SimpleNamespace(**{name: 0 for name in SEGMENT_FIELDS})

    sregs = SimpleNamespace(**{name: segment() for name in ("cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt")})
    sregs.gdt = SimpleNamespace(base=0, limit=0)
    sregs.idt = SimpleNamespace(base=0, limit=0)
    sregs.cr0 = sregs.cr2 = sregs.cr3 = sregs.cr4 = sregs.cr8 = sregs.efer = 0
    sregs.ldt.unusable = 1
    sregs.ldt.type = 2
    return sregs


__all__ = ["GPRS64", "SCRATCH_SIZE", "Outcome", "prepare_memory", "user_sregs", "plain_sregs", "case_addr"]


def host_vendor() -> str:
    """The host CPU's vendor string (GenuineIntel, AuthenticAMD): what the hardware side is."""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("vendor_id"):
                return line.split(":", 1)[1].strip()
    return "unknown"
