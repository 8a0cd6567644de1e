"""Regression tests for interpreter bugs found by the differential suite (tests/differential).

Every expected value here was read off the hardware (KVM ring 3 on the AMD Zen 4 host) with
the differential harness; see tests/differential/README.md.
"""

import pytest

from kvmpy.interp.testing import CODE_ADDR, DATA_ADDR, Machine, assemble, pte_address

RF = 0x10000
CF, ZF, OF = 0x1, 0x40, 0x800


@pytest.fixture(scope="module")
def machine():
    return Machine()


def run(machine, source, **regs):
    r = machine.run(assemble(source + "\nhlt"), regs)
    assert r.exception is None, f"unexpected exception {r.exception}"
    return r


# ---- xadd with the same register as source and destination: the sum is written last ----------

@pytest.mark.parametrize("source, reg, before, after", [
    ("xadd bl, bl", "rbx", 0x7F, 0xFE),
    ("xadd dx, dx", "rdx", 0x12348001, 0x12340002),
    ("xadd edi, edi", "rdi", 0xFFFFFFFF80000001, 0x2),
    ("xadd rbx, rbx", "rbx", 0x8000000000000001, 0x2),
])
def test_xadd_same_register_keeps_the_sum(machine, source, reg, before, after):
    r = run(machine, source, **{reg: before})
    assert r.regs[reg] == after


# ---- cmpxchg with a register destination writes only one of the two registers ---------------

def test_cmpxchg_r32_unequal_writes_only_eax_zero_extended(machine):
    r = run(machine, "cmpxchg ecx, esi", rcx=0x1111111122222222, rax=0x3333333344444444, rsi=0x55555555)
    assert r.regs["rcx"] == 0x1111111122222222        # destination untouched: upper half kept
    assert r.regs["rax"] == 0x22222222                # accumulator loaded, zero-extended
    assert not r.flags & ZF


def test_cmpxchg_r32_equal_writes_only_the_destination(machine):
    r = run(machine, "cmpxchg ecx, esi", rcx=0x1111111122222222, rax=0xAAAAAAAA22222222, rsi=0x6666666655555555)
    assert r.regs["rcx"] == 0x55555555                # destination written, zero-extended
    assert r.regs["rax"] == 0xAAAAAAAA22222222        # accumulator untouched: upper half kept
    assert r.flags & ZF


def test_cmpxchg_r16_unequal(machine):
    r = run(machine, "cmpxchg cx, si", rcx=0x1111111122222222, rax=0x3333333344444444, rsi=0x55555555)
    assert r.regs["rcx"] == 0x1111111122222222
    assert r.regs["rax"] == 0x3333333344442222


# ---- 16-bit shld/shrd by exactly 16: the result is the source ---------------------------------

@pytest.mark.parametrize("source, rbx, rsi, result, cf", [
    ("shld bx, si, 16", 0x11118001, 0x22227FFE, 0x11117FFE, 1),
    ("shrd bx, si, 16", 0x11118001, 0x22227FFE, 0x11117FFE, 1),
    ("mov cl, 16\nshrd bx, si, cl", 0x11114002, 0x22221234, 0x11111234, 0),
    ("mov cl, 16\nshld bx, si, cl", 0x11114002, 0x22221234, 0x11111234, 0),
])
def test_shld_shrd_16bit_count_16(machine, source, rbx, rsi, result, cf):
    r = run(machine, source, rbx=rbx, rsi=rsi)
    assert r.regs["rbx"] == result
    assert r.flags & CF == cf


# ---- rep movs with overlapping operands closer than one element -------------------------------

@pytest.mark.parametrize("suffix, distance, expect", [
    ("q", 2, "1011101112131415161716171a1b1c1d1e1f1e1f22232425262726272a2b2c2d2e2f323334353637"),
    ("d", 3, "10111210111213111213171213171b13171b1f232425262728292a2b2c2d2e2f3031323334353637"),
])
def test_rep_movs_overlap_copies_element_by_element(machine, suffix, distance, expect):
    code = assemble(f"lea rsi, [rbx + 16]\nlea rdi, [rbx + {16 + distance}]\nmov ecx, 4\ncld\n"
                    f"rep movs{suffix}\nhlt")
    r = machine.run(code, {"rbx": DATA_ADDR}, memory_setup=lambda mem: mem.write(DATA_ADDR, bytes(range(256))))
    assert r.exception is None
    assert r.memory.read(DATA_ADDR + 16, 40).hex() == expect


# ---- LOCK on an instruction that cannot be locked, or on a register destination: #UD ----------

@pytest.mark.parametrize("encoding", [
    bytes([0xF0, 0x01, 0xD8]),              # lock add eax, ebx (register destination)
    bytes([0xF0, 0x89, 0x03]),              # lock mov [rbx], eax
    bytes([0xF0, 0x39, 0x03]),              # lock cmp [rbx], eax
    bytes([0xF0, 0x0F, 0xA3, 0x03]),        # lock bt [rbx], eax
    bytes([0xF0, 0x0F, 0xBA, 0x23, 0x01]),  # lock bt [rbx], 1
    bytes([0xF0, 0xFF, 0xC0]),              # lock inc eax
    bytes([0xF0, 0x87, 0xD8]),              # lock xchg eax, ebx
    bytes([0xF0, 0x90]),                    # lock nop
    bytes([0xF0, 0x8B, 0x03]),              # lock mov eax, [rbx]
])
def test_lock_prefix_misuse_is_ud_before_any_effect(machine, encoding):
    r = machine.run(encoding + b"\xf4", {"rbx": DATA_ADDR, "rax": 5},
                    memory_setup=lambda mem: mem.write_int(DATA_ADDR, 8, 0x1234))
    assert r.exception == 6
    assert r.frame["rip"] == CODE_ADDR
    assert r.memory.read_int(DATA_ADDR, 8) == 0x1234
    assert r.regs["rax"] == 5


@pytest.mark.parametrize("source", [
    "lock add dword ptr [rbx], eax", "lock xchg qword ptr [rbx], rax", "lock btc word ptr [rbx], 9",
    "lock bts dword ptr [rbx], eax", "lock cmpxchg qword ptr [rbx], rcx", "lock xadd byte ptr [rbx], al",
    "lock neg dword ptr [rbx]", "lock dec word ptr [rbx]", "lock cmpxchg16b xmmword ptr [rbx]",
    "lock sbb qword ptr [rbx], 7",
])
def test_lock_prefix_on_lockable_memory_forms_is_fine(machine, source):
    r = machine.run(assemble(source + "\nhlt"), {"rbx": DATA_ADDR})
    assert r.exception is None


# ---- RF in the RFLAGS image of a fault's exception frame --------------------------------------

def test_fault_frames_have_rf_set(machine):
    assert machine.run(assemble("ud2")).frame["rflags"] & RF                     # #UD
    assert machine.run(assemble("div rbx"), {"rbx": 0}).frame["rflags"] & RF     # #DE
    r = machine.run(assemble("mov rax, [rbx]"), {"rbx": 1 << 63})                 # #GP
    assert r.exception == 13 and r.frame["rflags"] & RF


def test_page_fault_frame_has_rf_set():
    from kvmpy.interp.testing import run_snippet

    def unmap(mem):
        mem.write_int(pte_address(DATA_ADDR), 8, 0)
    r = run_snippet(assemble("mov rax, [rbx]\nhlt"), {"rbx": DATA_ADDR}, memory_setup=unmap)
    assert r.exception == 14 and r.frame["rflags"] & RF


def test_software_interrupt_frames_do_not_have_rf(machine):
    r = machine.run(assemble("int 0x80"))
    assert r.exception == 0x80 and not r.frame["rflags"] & RF
    r = machine.run(assemble("int3"))
    assert r.exception == 3 and not r.frame["rflags"] & RF
