"""The target description gdb reads with `qXfer:features:read:target.xml`: x86-64, with the
registers of registers.py in their order, in the features gdb knows (i386.core, i386.sse,
i386.segments for fs_base/gs_base) and one of kvmpy's own for the control registers.

No `org.gnu.gdb.i386.linux` feature: that one describes a Linux process (orig_rax), and a
whole machine has none.
"""

from __future__ import annotations

from functools import cache

from .registers import CORE, REGISTERS, SSE

ANNEX = "target.xml"

# The types the core and sse features use, as gdb's own x86-64 descriptions define them.
EFLAGS_BITS = {"CF": 0, "": 1, "PF": 2, "AF": 4, "ZF": 6, "SF": 7, "TF": 8, "IF": 9, "DF": 10, "OF": 11,
                    "NT": 14, "RF": 16, "VM": 17, "AC": 18, "VIF": 19, "VIP": 20, "ID": 21}
MXCSR_BITS = {"IE": 0, "DE": 1, "ZE": 2, "OE": 3, "UE": 4, "PE": 5, "DAZ": 6, "IM": 7, "DM": 8, "ZM": 9,
              "OM": 10, "UM": 11, "PM": 12, "FZ": 15}


def _flags(type_id: str, bits: dict[str, int]) -> list[str]:
    return ([f'    <flags id="{type_id}" size="4">']
            + [f'      <field name="{name}" start="{bit}" end="{bit}"/>' for name, bit in bits.items()]
            + ["    </flags>"])


CORE_TYPES = "\n".join(_flags("i386_eflags", EFLAGS_BITS))
SSE_TYPES = "\n".join(
    ['    <vector id="v8bf16" type="bfloat16" count="8"/>',
     '    <vector id="v4f" type="ieee_single" count="4"/>',
     '    <vector id="v2d" type="ieee_double" count="2"/>',
     '    <vector id="v16i8" type="int8" count="16"/>',
     '    <vector id="v8i16" type="int16" count="8"/>',
     '    <vector id="v4i32" type="int32" count="4"/>',
     '    <vector id="v2i64" type="int64" count="2"/>',
     '    <union id="vec128">',
     '      <field name="v8_bfloat16" type="v8bf16"/>',
     '      <field name="v4_float" type="v4f"/>',
     '      <field name="v2_double" type="v2d"/>',
     '      <field name="v16_int8" type="v16i8"/>',
     '      <field name="v8_int16" type="v8i16"/>',
     '      <field name="v4_int32" type="v4i32"/>',
     '      <field name="v2_int64" type="v2i64"/>',
     '      <field name="uint128" type="uint128"/>',
     '    </union>']
    + _flags("i386_mxcsr", MXCSR_BITS)
)
FEATURE_TYPES = {CORE: CORE_TYPES, SSE: SSE_TYPES}


@cache
def target_xml() -> bytes:
    """The whole description, features in register order (gdb numbers registers that way)."""
    lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', "<target>",
             "  <architecture>i386:x86-64</architecture>"]
    feature = None
    for number, register in enumerate(REGISTERS):
        if register.feature != feature:
            if feature is not None:
                lines.append("  </feature>")
            feature = register.feature
            lines.append(f'  <feature name="{feature}">')
            if feature in FEATURE_TYPES:
                lines.append(FEATURE_TYPES[feature])
        group = f' group="{register.group}"' if register.group else ""
        lines.append(f'    <reg name="{register.name}" bitsize="{register.bits}" type="{register.type}"'
                     f' regnum="{number}"{group}/>')
    lines += ["  </feature>", "</target>", ""]
    return "\n".join(lines).encode()


def read_annex(annex: str, offset: int, length: int) -> bytes | None:
    """qXfer's reply body for `annex` ('m' + data: more follows, 'l' + data: the last part),
    or None for an annex there is none of."""
    if annex != ANNEX:
        return None
    document = target_xml()
    part = document[offset:offset + length]
    return (b"l" if offset + length >= len(document) else b"m") + part
