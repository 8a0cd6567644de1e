"""gdb's x86-64 register layout against CpuState (kvmpy/gdb/registers.py), and the target
description written from it (kvmpy/gdb/target_xml.py)."""

import xml.etree.ElementTree as ElementTree

import pytest

from kvmpy.accel.debug import CONTROL_NAMES, GPR_NAMES, SEGMENT_NAMES, CpuState
from kvmpy.gdb import registers
from kvmpy.gdb.registers import NUMBERS, REGISTERS, abridged_tag_byte, full_tag_word, read_register
from kvmpy.gdb.target_xml import read_annex, target_xml

pytestmark = pytest.mark.gdb

ONE = (1 << 63).to_bytes(8, "little") + (0x3FFF).to_bytes(2, "little")   # 1.0 as an 80-bit value
ZERO = bytes(10)
INFINITY = (1 << 63).to_bytes(8, "little") + (0x7FFF).to_bytes(2, "little")


def made_up_state() -> CpuState:
    gprs = {name: 0x1111 * (index + 1) for index, name in enumerate(GPR_NAMES)}
    gprs.update(rip=0xFFFFFFFF81000000, rflags=0x1_0000_0246)
    segments = {name: (0x10 + 8 * index, 0x1000 * index) for index, name in enumerate(SEGMENT_NAMES)}
    control = {name: 0x100 + index for index, name in enumerate(CONTROL_NAMES)}
    fx = bytearray(512)
    fx[0:2] = (0x37F).to_bytes(2, "little")                     # FCW
    fx[2:4] = (6 << 11).to_bytes(2, "little")                   # FSW: TOP = 6
    fx[4] = 0b1100_0000                                         # physical 6 and 7 in use
    fx[24:28] = (0x1F80).to_bytes(4, "little")
    fx[32:42] = ONE                                             # ST(0) = physical 6
    fx[48:58] = ZERO                                            # ST(1) = physical 7
    fx[160 + 16 * 3:160 + 16 * 4] = bytes(range(16))            # xmm3
    return CpuState(gprs, segments, control, bytes(fx))


def test_the_fixed_amd64_numbering_gdb_insists_on():
    names = [register.name for register in REGISTERS]
    assert names[:16] == ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp"] + [f"r{n}" for n in range(8, 16)]
    assert names[16:24] == ["rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs"]
    assert names[24:32] == [f"st{n}" for n in range(8)]
    assert names[40:57] == [f"xmm{n}" for n in range(16)] + ["mxcsr"]
    assert {"fs_base", "gs_base", "cr0", "cr2", "cr3", "cr4", "cr8", "efer"} <= set(names[57:])


def test_reads_come_from_the_right_fields():
    state = made_up_state()

    def value(name):
        return int.from_bytes(read_register(state, NUMBERS[name]), "little")

    assert value("rbx") == state.gprs["rbx"] and value("r15") == state.gprs["r15"]
    assert value("rip") == 0xFFFFFFFF81000000
    assert value("eflags") == 0x246                             # 32 bits of RFLAGS
    assert value("ss") == state.segments["ss"][0] and value("gs_base") == state.segments["gs"][1]
    assert value("cr3") == state.control["cr3"] and value("efer") == state.control["efer"]
    assert read_register(state, NUMBERS["st0"]) == ONE and read_register(state, NUMBERS["st1"]) == ZERO
    assert read_register(state, NUMBERS["xmm3"]) == bytes(range(16))
    assert value("mxcsr") == 0x1F80 and value("fctrl") == 0x37F
    # physical 6 holds 1.0 (valid), 7 holds zero, the rest are empty
    assert value("ftag") == 0b0100_1111_1111_1111


def test_tag_word_classes_and_the_abridged_byte():
    fx = bytearray(made_up_state().fxsave)
    fx[32:42] = INFINITY
    assert (full_tag_word(bytes(fx)) >> 12) & 3 == 2                # special
    assert abridged_tag_byte(0b0100_1111_1111_1111) == 0b1100_0000


def test_every_register_writes_back_what_it_reads():
    state = made_up_state()
    for number, register in enumerate(REGISTERS):
        raw = bytes((number + offset) & 0xFF for offset in range(register.size))
        if register.name in registers.FXSAVE_FIELDS:                 # as wide as FXSAVE keeps them
            width = registers.FXSAVE_FIELDS[register.name][1]
            raw = raw[:width] + bytes(register.size - width)
        if register.name == "ftag":                                    # tags follow the contents: all empty
            raw = (0xFFFF).to_bytes(4, "little")
        if register.name == "fop":
            raw = (0x5A5).to_bytes(4, "little")                        # 11 bits
        changed = registers.write_register(state, number, raw)
        assert read_register(changed, number) == raw, register.name
    assert state == made_up_state(), "write_register must not change its argument"


def test_eflags_writes_keep_the_upper_half_and_g_round_trips():
    state = made_up_state()
    changed = registers.write_register(state, NUMBERS["eflags"], (0x202).to_bytes(4, "little"))
    assert changed.gprs["rflags"] == 0x1_0000_0202
    assert registers.write_all(state, registers.read_all(state)) == state
    with pytest.raises(ValueError):
        registers.write_all(state, b"\0" * 10)


def test_the_target_description_lists_the_layout_in_order():
    root = ElementTree.fromstring(target_xml())
    assert root.find("architecture").text == "i386:x86-64"
    features = [feature.get("name") for feature in root.findall("feature")]
    assert features[:2] == ["org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse"]
    regs = [(reg.get("name"), int(reg.get("bitsize")), int(reg.get("regnum"))) for reg in root.iter("reg")]
    assert regs == [(register.name, register.bits, number) for number, register in enumerate(REGISTERS)]


def test_the_description_is_read_in_parts():
    document = target_xml()
    first = read_annex("target.xml", 0, 100)
    assert first == b"m" + document[:100]
    last = read_annex("target.xml", 100, len(document))
    assert last == b"l" + document[100:]
    assert read_annex("other.xml", 0, 10) is None
