"""gdb's register layout for x86-64 and its mapping onto a vCPU's `CpuState`
(kvmpy/accel/debug.py): what `g`/`G`/`p`/`P` read and write, in target-description order.

The first 57 registers are amd64's fixed numbering (GPRs, rip, eflags, the six selectors,
st0-7 and the x87 control registers, xmm0-15, mxcsr), which gdb insists on for the core and
sse features; fs_base/gs_base and the control registers follow. x87 values come from the
FXSAVE image: ST(i) in stack order, and the full tag word rebuilt from FXSAVE's abridged one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..accel.debug import CpuState

CORE, SSE, SEGMENTS, CONTROL = "org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse", "org.gnu.gdb.i386.segments", \
    "org.kvmpy.x86.control"
GPRS_IN_GDB_ORDER = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
                     "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SELECTORS = ("cs", "ss", "ds", "es", "fs", "gs")
X87_CONTROL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")
CONTROL_REGISTERS = ("cr0", "cr2", "cr3", "cr4", "cr8", "efer")

# FXSAVE image offsets (the 32-bit view of FIP/FDP, as gdb's i387 code reads them)
FX_FCW, FX_FSW, FX_FTW, FX_FOP, FX_FIOFF, FX_FISEG, FX_FOOFF, FX_FOSEG, FX_MXCSR = 0, 2, 4, 6, 8, 12, 16, 20, 24
FX_ST, FX_XMM, FX_STRIDE = 32, 160, 16
X87_VALUE_BYTES = 10
FOP_MASK = 0x7FF
FSW_TOP_SHIFT, FSW_TOP_MASK = 11, 7
TAG_VALID, TAG_ZERO, TAG_SPECIAL, TAG_EMPTY = 0, 1, 2, 3
EXPONENT_MASK, INTEGER_BIT = 0x7FFF, 1 << 63
EFLAGS_MASK = 0xFFFFFFFF
FXSAVE_FIELDS = {"fctrl": (FX_FCW, 2), "fstat": (FX_FSW, 2), "fiseg": (FX_FISEG, 2), "fioff": (FX_FIOFF, 4),
                 "foseg": (FX_FOSEG, 2), "fooff": (FX_FOOFF, 4), "fop": (FX_FOP, 2),
                 "mxcsr": (FX_MXCSR, 4)}  # name -> (offset, size) in the FXSAVE image


@dataclass(frozen=True)
class Register:
    name: str
    bits: int
    type: str         # a target-description type
    feature: str
    group: str = ""   # target-description group ("" leaves it to gdb)

    @property
    def size(self) -> int:
        return self.bits // 8


def _layout() -> tuple[Register, ...]:
    registers = [Register(name, 64, "int64", CORE) for name in GPRS_IN_GDB_ORDER]
    registers[GPRS_IN_GDB_ORDER.index("rbp")] = Register("rbp", 64, "data_ptr", CORE)
    registers[GPRS_IN_GDB_ORDER.index("rsp")] = Register("rsp", 64, "data_ptr", CORE)
    registers += [Register("rip", 64, "code_ptr", CORE), Register("eflags", 32, "i386_eflags", CORE)]
    registers += [Register(name, 32, "int32", CORE) for name in SELECTORS]
    registers += [Register(f"st{index}", 80, "i387_ext", CORE) for index in range(8)]
    registers += [Register(name, 32, "int", CORE, "float") for name in X87_CONTROL]
    registers += [Register(f"xmm{index}", 128, "vec128", SSE) for index in range(16)]
    registers += [Register("mxcsr", 32, "i386_mxcsr", SSE, "vector")]
    registers += [Register(name, 64, "int64", SEGMENTS) for name in ("fs_base", "gs_base")]
    registers += [Register(name, 64, "int64", CONTROL, "system") for name in CONTROL_REGISTERS]
    return tuple(registers)


REGISTERS = _layout()
NUMBERS = {register.name: number for number, register in enumerate(REGISTERS)}
PC_REGISTER = NUMBERS["rip"]
G_PACKET_SIZE = sum(register.size for register in REGISTERS)


def read_register(state: CpuState, number: int) -> bytes:
    """Register `number`'s value as gdb wants it (little-endian, its size)."""
    register = REGISTERS[number]
    name, fx = register.name, state.fxsave
    if name in state.gprs:
        value = state.gprs[name]
    elif name == "eflags":
        value = state.gprs["rflags"] & EFLAGS_MASK
    elif name in SELECTORS:
        value = state.segments[name][0]
    elif name.startswith("st"):
        start = FX_ST + FX_STRIDE * int(name[2:])
        return fx[start:start + X87_VALUE_BYTES]
    elif name.startswith("xmm"):
        start = FX_XMM + FX_STRIDE * int(name[3:])
        return fx[start:start + FX_STRIDE]
    elif name == "ftag":
        value = full_tag_word(fx)
    elif name in FXSAVE_FIELDS:
        offset, size = FXSAVE_FIELDS[name]
        value = int.from_bytes(fx[offset:offset + size], "little")
        if name == "fop":
            value &= FOP_MASK
    elif name in ("fs_base", "gs_base"):
        value = state.segments[name[:2]][1]
    else:
        value = state.control[name]
    return value.to_bytes(register.size, "little")


def write_register(state: CpuState, number: int, raw: bytes) -> CpuState:
    """A copy of `state` with register `number` set from gdb's bytes (exactly its size)."""
    register = REGISTERS[number]
    if len(raw) != register.size:
        raise ValueError(f"{register.name} takes {register.size} bytes, not {len(raw)}")
    state = copy.deepcopy(state)
    name, value = register.name, int.from_bytes(raw, "little")
    fx = bytearray(state.fxsave)
    if name in state.gprs:
        state.gprs[name] = value
    elif name == "eflags":
        state.gprs["rflags"] = (state.gprs["rflags"] & ~EFLAGS_MASK) | value
    elif name in SELECTORS:
        state.segments[name] = (value, state.segments[name][1])
    elif name.startswith("st"):
        start = FX_ST + FX_STRIDE * int(name[2:])
        fx[start:start + X87_VALUE_BYTES] = raw
    elif name.startswith("xmm"):
        start = FX_XMM + FX_STRIDE * int(name[3:])
        fx[start:start + FX_STRIDE] = raw
    elif name == "ftag":
        fx[FX_FTW] = abridged_tag_byte(value)
    elif name in FXSAVE_FIELDS:
        offset, size = FXSAVE_FIELDS[name]
        fx[offset:offset + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    elif name in ("fs_base", "gs_base"):
        segment = name[:2]
        state.segments[segment] = (state.segments[segment][0], value)
    else:
        state.control[name] = value
    state.fxsave = bytes(fx)
    return state


def read_all(state: CpuState) -> bytes:
    """The `g` packet's registers, concatenated."""
    return b"".join(read_register(state, number) for number in range(len(REGISTERS)))


def write_all(state: CpuState, raw: bytes) -> CpuState:
    """`state` with every register of a `G` packet's bytes (all of them, in order)."""
    if len(raw) != G_PACKET_SIZE:
        raise ValueError(f"a G packet carries {G_PACKET_SIZE} bytes of registers, not {len(raw)}")
    offset = 0
    for number, register in enumerate(REGISTERS):
        state = write_register(state, number, raw[offset:offset + register.size])
        offset += register.size
    return state


def full_tag_word(fx: bytes) -> int:
    """The x87 tag word (2 bits per physical register) from FXSAVE's abridged tag byte (1 bit:
    not empty) and the registers' contents, as FSTENV would store it."""
    top = (int.from_bytes(fx[FX_FSW:FX_FSW + 2], "little") >> FSW_TOP_SHIFT) & FSW_TOP_MASK
    abridged = fx[FX_FTW]
    word = 0
    for physical in range(8):
        if not abridged & (1 << physical):
            tag = TAG_EMPTY
        else:
            start = FX_ST + FX_STRIDE * ((physical - top) & 7)  # FXSAVE keeps ST(i), i = physical - TOP
            mantissa = int.from_bytes(fx[start:start + 8], "little")
            exponent = int.from_bytes(fx[start + 8:start + 10], "little") & EXPONENT_MASK
            if exponent == EXPONENT_MASK:
                tag = TAG_SPECIAL
            elif exponent == 0:
                tag = TAG_ZERO if mantissa == 0 else TAG_SPECIAL
            else:
                tag = TAG_VALID if mantissa & INTEGER_BIT else TAG_SPECIAL
        word |= tag << (2 * physical)
    return word


def abridged_tag_byte(word: int) -> int:
    """FXSAVE's tag byte from a full tag word: a register is in use unless tagged empty."""
    return sum(1 << physical for physical in range(8) if (word >> (2 * physical)) & 3 != TAG_EMPTY)
