"""Test helpers: assemble snippets with GNU as, and run them on a prepared machine.

`run_snippet` builds a small, fixed machine so a snippet's effect depends only on its code
and the registers given, which lets the same snippet run on the interpreter and (later)
natively under KVM for differential tests:

    long mode (mode="long"): 4 MiB of RAM at 0, identity-mapped with 4 KiB pages (P|W|U),
    GDT/IDT/TSS below, every IDT vector going to a stub that writes its vector number to
    MAILBOX and halts; code at CODE_ADDR, stack below STACK_TOP, data at DATA_ADDR.
    cpl=3 runs the snippet in user mode; the kernel stack (TSS.RSP0) is KSTACK_TOP.
    mode="prot32": flat 32-bit protected mode, paging off, same GDT, 32-bit IDT stubs.
    mode="real": real mode, CS=DS=ES=SS=0, code at REAL_CODE_ADDR.

A snippet ends with `hlt`.  At CPL 3 that raises #GP; run_snippet recognises it and reports
the user-mode state at the hlt as a normal end.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from dataclasses import dataclass, field

from ..memory import GuestMemory, MemoryRegion
from .cpu import GPR_NAMES, SoftCpu, StopReason

RAM_SIZE = 4 << 20
GDT_ADDR = 0x1000
IDT_ADDR = 0x2000
TSS_ADDR = 0x3000
MAILBOX = 0x7000                 # the IDT stubs store the vector number here
STUB_ADDR = 0x8000               # stub for vector v at STUB_ADDR + 16 * v
KSTACK_TOP = 0x9f000
IST1_TOP = 0x9e000
PML4_ADDR = 0x10000
CODE_ADDR = 0x100000
STACK_TOP = 0x1f0000
DATA_ADDR = 0x200000
REAL_CODE_ADDR = 0x7c00
NO_EXCEPTION = 0xFFFFFFFF

SEL_CODE64 = 0x08
SEL_DATA = 0x10
SEL_CODE32 = 0x18
SEL_UDATA = 0x23
SEL_UCODE64 = 0x2B
SEL_TSS = 0x30
SEL_CODE16 = 0x40
SEL_DATA16 = 0x48

GDT_ENTRIES = {
    SEL_CODE64: 0x00209A0000000000,
    SEL_DATA: 0x00CF92000000FFFF,
    SEL_CODE32: 0x00CF9A000000FFFF,
    SEL_UDATA & ~3: 0x00CFF2000000FFFF,
    SEL_UCODE64 & ~3: 0x0020FA0000000000,
    SEL_CODE16: 0x00009A000000FFFF,
    SEL_DATA16: 0x000092000000FFFF,
}
TSS_LIMIT = 0x67

CR0_PE, CR0_MP, CR0_ET, CR0_NE, CR0_WP, CR0_PG = 1, 2, 0x10, 0x20, 1 << 16, 1 << 31
CR4_PAE, CR4_OSFXSR, CR4_OSXMMEXCPT, CR4_OSXSAVE = 1 << 5, 1 << 9, 1 << 10, 1 << 18
EFER_SCE, EFER_LME, EFER_LMA, EFER_NXE = 1, 1 << 8, 1 << 10, 1 << 11
PTE_P, PTE_W, PTE_U = 1, 2, 4
VECTORS_WITH_ERROR_CODE = {8, 10, 11, 12, 13, 14, 17, 21, 29, 30}
USER_VECTORS = {3, 4}            # int3 / into may be used from CPL 3

_ASM_CACHE = os.path.join(tempfile.gettempdir(), "kvmpy-interp-asm")


def assemble(source: str, bits: int = 64, origin: int = CODE_ADDR) -> bytes:
    """Assemble Intel-syntax `source` for a 16/32/64-bit code segment located at `origin`."""
    text = f".intel_syntax noprefix\n.code{bits}\n{source}\n"
    key = hashlib.sha256(f"{bits}:{origin:#x}:{text}".encode()).hexdigest()[:24]
    os.makedirs(_ASM_CACHE, exist_ok=True)
    cached = os.path.join(_ASM_CACHE, key + ".bin")
    if os.path.exists(cached):
        with open(cached, "rb") as f:
            return f.read()
    with tempfile.TemporaryDirectory(dir=_ASM_CACHE) as tmp:
        src, obj, elf, raw = (os.path.join(tmp, n) for n in ("a.s", "a.o", "a.elf", "a.bin"))
        with open(src, "w") as f:
            f.write(text)
        done = subprocess.run(["as", "--64", "-o", obj, src], capture_output=True, text=True)
        if done.returncode:
            raise ValueError(f"assembler failed:\n{done.stderr}")
        subprocess.run(["ld", "-m", "elf_x86_64", "-Ttext", hex(origin), "-e", hex(origin), "-o", elf, obj],
                       check=True, capture_output=True, text=True)
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", elf, raw], check=True,
                       capture_output=True, text=True)
        with open(raw, "rb") as f:
            data = f.read()
    tmp_out = cached + f".{os.getpid()}"
    with open(tmp_out, "wb") as f:
        f.write(data)
    os.replace(tmp_out, cached)
    return data


def _gate64(handler: int, selector: int, dpl: int, gate_type: int = 0xE, ist: int = 0) -> bytes:
    lo = (handler & 0xFFFF) | (selector << 16) | (ist << 32) | (gate_type << 40) | (dpl << 45) | (1 << 47) \
        | (((handler >> 16) & 0xFFFF) << 48)
    hi = handler >> 32
    return lo.to_bytes(8, "little") + hi.to_bytes(8, "little")


def _gate32(handler: int, selector: int, dpl: int) -> bytes:
    lo = (handler & 0xFFFF) | (selector << 16) | (0xE << 40) | (dpl << 45) | (1 << 47) \
        | (((handler >> 16) & 0xFFFF) << 48)
    return lo.to_bytes(8, "little")


def _stub(vector: int, bits: int) -> bytes:
    """mov dword ptr [MAILBOX], vector; hlt -- padded to 16 bytes."""
    if bits == 64:
        code = bytes([0xC7, 0x04, 0x25]) + MAILBOX.to_bytes(4, "little")
    else:
        code = bytes([0xC7, 0x05]) + MAILBOX.to_bytes(4, "little")
    code += vector.to_bytes(4, "little") + b"\xf4"
    return code.ljust(16, b"\x90")


def _tss64_descriptor() -> tuple[int, int]:
    base, limit = TSS_ADDR, TSS_LIMIT
    lo = (limit & 0xFFFF) | ((base & 0xFFFFFF) << 16) | (0x9 << 40) | (1 << 47) | \
        (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56)
    return lo, base >> 32


def build_tables(mem: GuestMemory, bits: int = 64) -> None:
    """GDT, IDT with mailbox stubs, TSS, and (for 64-bit) identity page tables."""
    for sel, desc in GDT_ENTRIES.items():
        mem.write_int(GDT_ADDR + sel, 8, desc)
    lo, hi = _tss64_descriptor()
    mem.write_int(GDT_ADDR + SEL_TSS, 8, lo)
    mem.write_int(GDT_ADDR + SEL_TSS + 8, 8, hi)
    mem.write_int(MAILBOX, 4, NO_EXCEPTION)
    for v in range(256):
        mem.write(STUB_ADDR + 16 * v, _stub(v, bits))
        dpl = 3 if v in USER_VECTORS else 0
        if bits == 64:
            mem.write(IDT_ADDR + 16 * v, _gate64(STUB_ADDR + 16 * v, SEL_CODE64, dpl))
        else:
            mem.write(IDT_ADDR + 8 * v, _gate32(STUB_ADDR + 16 * v, SEL_CODE32, dpl))
    mem.write_int(TSS_ADDR + 4, 8, KSTACK_TOP)         # RSP0
    mem.write_int(TSS_ADDR + 36, 8, IST1_TOP)          # IST1
    mem.write_int(TSS_ADDR + 0x66, 2, TSS_LIMIT + 1)   # no I/O bitmap
    if bits == 64:
        flags = PTE_P | PTE_W | PTE_U
        mem.write_int(PML4_ADDR, 8, (PML4_ADDR + 0x1000) | flags)
        mem.write_int(PML4_ADDR + 0x1000, 8, (PML4_ADDR + 0x2000) | flags)
        for pd_index in range(RAM_SIZE >> 21):
            pt = PML4_ADDR + 0x3000 + 0x1000 * pd_index
            mem.write_int(PML4_ADDR + 0x2000 + 8 * pd_index, 8, pt | flags)
            mem.write(pt, b"".join(((((pd_index << 9) + i) << 12) | flags).to_bytes(8, "little")
                                   for i in range(512)))


def pte_address(linear: int) -> int:
    """Guest-physical address of the 4 KiB PTE mapping `linear` in the run_snippet tables."""
    return PML4_ADDR + 0x3000 + 0x1000 * (linear >> 21) + 8 * ((linear >> 12) & 511)


def _flat(cpu: SoftCpu, name: str, selector: int, code: bool, dpl: int, long: bool = False, db: bool = True) -> None:
    cpu.set_segment(name, base=0, limit=0xFFFFFFFF, selector=selector, type=0xB if code else 0x3,
                    present=1, dpl=dpl, db=0 if long else int(db), s=1, l=int(long), g=1, avl=0, unusable=0)


def setup_long_mode(cpu: SoftCpu, cpl: int = 0) -> None:
    cpu.set_regs(cr0=CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG,
                 cr3=PML4_ADDR, cr4=CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE,
                 efer=EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE, xcr0=3, rflags=0x2)
    cpu.set_dtable("gdt", GDT_ADDR, 0x4F)
    cpu.set_dtable("idt", IDT_ADDR, 256 * 16 - 1)
    user = cpl == 3
    _flat(cpu, "cs", SEL_UCODE64 if user else SEL_CODE64, True, cpl, long=True)
    for seg in ("ds", "es", "ss", "fs", "gs"):
        _flat(cpu, seg, SEL_UDATA if user else SEL_DATA, False, cpl)
    cpu.set_segment("tr", base=TSS_ADDR, limit=TSS_LIMIT, selector=SEL_TSS, type=0xB, present=1, dpl=0,
                    db=0, s=0, l=0, g=0, avl=0, unusable=0)
    cpu.set_segment("ldtr", base=0, limit=0, selector=0, type=2, present=0, dpl=0, db=0, s=0, l=0, g=0,
                    avl=0, unusable=1)


def setup_prot32(cpu: SoftCpu) -> None:
    cpu.set_regs(cr0=CR0_PE | CR0_ET | CR0_NE, cr3=0, cr4=CR4_OSFXSR, efer=0, rflags=0x2)
    cpu.set_dtable("gdt", GDT_ADDR, 0x4F)
    cpu.set_dtable("idt", IDT_ADDR, 256 * 8 - 1)
    _flat(cpu, "cs", SEL_CODE32, True, 0)
    for seg in ("ds", "es", "ss", "fs", "gs"):
        _flat(cpu, seg, SEL_DATA, False, 0)
    cpu.set_segment("tr", base=TSS_ADDR, limit=TSS_LIMIT, selector=SEL_TSS, type=0xB, present=1, dpl=0,
                    db=0, s=0, l=0, g=0, avl=0, unusable=0)


@dataclass
class SnippetResult:
    regs: dict[str, int]                 # GPRs and rip (user-mode values after a CPL-3 hlt)
    flags: int                           # RFLAGS
    memory: GuestMemory
    stop: StopReason
    exception: int | None = None         # vector that reached an IDT stub, if any
    frame: dict[str, int] = field(default_factory=dict)   # its exception frame
    cpu: SoftCpu | None = None


def _read_frame(mem: GuestMemory, rsp: int, vector: int) -> dict[str, int]:
    names = (["error_code"] if vector in VECTORS_WITH_ERROR_CODE else []) + ["rip", "cs", "rflags", "rsp", "ss"]
    return {name: mem.read_int(rsp + 8 * i, 8) for i, name in enumerate(names)}


class Machine:
    """A prepared machine (memory, tables, SoftCpu) that can run many snippets in turn."""

    def __init__(self, mode: str = "long", bus=None, cpuid=None):
        if mode not in ("long", "prot32", "real"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.memory = GuestMemory([MemoryRegion(0, RAM_SIZE)])
        self.cpu = SoftCpu(self.memory, bus)
        if cpuid is not None:
            self.cpu.set_cpuid(cpuid)
        if mode != "real":
            build_tables(self.memory, 64 if mode == "long" else 32)

    def prepare(self, code: bytes, regs: dict[str, int] | None = None, cpl: int = 0, memory_setup=None,
                xmm: dict[int, int] | None = None) -> None:
        """Reset the CPU and put `code` at its start, as `run` does, without running it (for
        tests that drive SoftCpu.run themselves)."""
        cpu, mem, mode = self.cpu, self.memory, self.mode
        cpu.reset()
        mem.write_int(MAILBOX, 4, NO_EXCEPTION)
        if mode == "long":
            setup_long_mode(cpu, cpl)
        elif mode == "prot32":
            setup_prot32(cpu)
        else:
            cpu.set_segment("cs", selector=0, base=0)
        code_addr = REAL_CODE_ADDR if mode == "real" else CODE_ADDR
        mem.write(code_addr, code)
        cpu.set_regs(rip=code_addr, rsp=REAL_CODE_ADDR if mode == "real" else STACK_TOP)
        if memory_setup is not None:
            memory_setup(mem)
        for index, value in (xmm or {}).items():
            cpu.set_xmm(index, value)
        if regs:
            cpu.set_regs(**regs)

    def run(self, code: bytes, regs: dict[str, int] | None = None, cpl: int = 0, memory_setup=None,
            max_insns: int = 1_000_000, xmm: dict[int, int] | None = None) -> SnippetResult:
        cpu, mem, mode = self.cpu, self.memory, self.mode
        self.prepare(code, regs, cpl, memory_setup, xmm)
        result = cpu.run(max_insns)
        out = {name: cpu.get(name) for name in GPR_NAMES}
        out["rip"] = cpu.get("rip")
        flags = cpu.get("rflags")
        vector = mem.read_int(MAILBOX, 4) if mode != "real" else NO_EXCEPTION
        frame: dict[str, int] = {}
        exception = None
        if vector != NO_EXCEPTION:
            exception = vector
            if mode == "long":
                frame = _read_frame(mem, out["rsp"], vector)
                if cpl == 3 and vector == 13 and frame.get("cs", 0) & 3 == 3 and \
                        mem.contains(frame["rip"]) and mem.read(frame["rip"], 1) == b"\xf4":
                    # The snippet's closing hlt at CPL 3: report the user state at that point.
                    exception = None
                    out["rip"], out["rsp"], flags = frame["rip"], frame["rsp"], frame["rflags"]
        return SnippetResult(out, flags, mem, result.reason, exception, frame, cpu)


def run_snippet(code: bytes, regs: dict[str, int] | None = None, mode: str = "long", cpl: int = 0,
                memory_setup=None, max_insns: int = 1_000_000, bus=None, cpuid=None,
                xmm: dict[int, int] | None = None) -> SnippetResult:
    """Run `code` (machine code) on a fresh machine; see the module docstring for the layout.

    memory_setup(mem) may change memory (data, page tables) before the run; regs are set last.
    """
    return Machine(mode, bus, cpuid).run(code, regs, cpl, memory_setup, max_insns, xmm)
