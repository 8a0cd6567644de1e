"""LAR, LSL, VERR, VERW (Linux entry code and vDSO), and xsetbv as a KVM fallback meets it."""

import pytest

from kvmpy.interp.testing import SEL_CODE64, SEL_DATA, SEL_TSS, SEL_UDATA, assemble, run_snippet

ZF = 0x40


def run(source: str, cpl: int = 0, **regs):
    result = run_snippet(assemble(source + "\nhlt"), regs, cpl=cpl)
    return result.regs, result.flags


def test_lsl_loads_the_scaled_limit_of_a_flat_segment():
    regs, flags = run("lsl eax, ecx", rcx=SEL_DATA, rax=0x1234)
    assert flags & ZF and regs["rax"] == 0xFFFFFFFF


def test_lsl_of_the_tss_is_its_byte_limit():
    regs, flags = run("lsl eax, ecx", rcx=SEL_TSS, rax=0)
    assert flags & ZF and 0x67 <= regs["rax"] < 0x10000


@pytest.mark.parametrize("selector", [0, 3, 0xFFF8])  # null, null with RPL 3, beyond the GDT
def test_lsl_of_an_unusable_selector_clears_zf_and_leaves_the_destination(selector):
    regs, flags = run("lsl eax, ecx", rcx=selector, rax=0x1234)
    assert not flags & ZF and regs["rax"] == 0x1234


def test_lar_returns_the_access_rights_bytes():
    regs, flags = run("lar eax, ecx", rcx=SEL_CODE64, rax=0)
    assert flags & ZF and regs["rax"] & 0xFF00 == 0x9A00 and regs["rax"] & 0x00F000FF == 0x00200000


def test_verw_accepts_writable_data_and_refuses_code():
    _, data = run("verw cx", rcx=SEL_DATA)
    _, code = run("verw cx", rcx=SEL_CODE64)
    assert data & ZF and not code & ZF


def test_verr_accepts_readable_code():
    _, flags = run("verr cx", rcx=SEL_CODE64)
    assert flags & ZF


def test_ring_3_cannot_see_ring_0_descriptors():
    regs, flags = run("lsl eax, ecx", cpl=3, rcx=SEL_DATA, rax=7)
    assert not flags & ZF and regs["rax"] == 7
    _, user = run("verw cx", cpl=3, rcx=SEL_UDATA)
    assert user & ZF


def xsetbv_machine(xcr0_offered: int):
    from kvmpy.interp.testing import CODE_ADDR, STACK_TOP, Machine, setup_long_mode

    leaf_0d = (0xD, 0, 1, xcr0_offered, 0, 0, 0)
    machine = Machine(cpuid=[leaf_0d])
    code = assemble("mov rax, cr4\nor rax, 0x40000\nmov cr4, rax\nxor ecx, ecx\nxor edx, edx\n"
                    "mov eax, ebx\nxsetbv\nhlt")
    machine.memory.write(CODE_ADDR, code)
    setup_long_mode(machine.cpu, 0)
    return machine, CODE_ADDR, STACK_TOP


@pytest.mark.parametrize("xcr0,stops", [(0x3, False), (0x7, False), (0xE7, True)])
def test_xsetbv_of_components_the_interpreter_cannot_hold_is_unimplemented(xcr0, stops):
    """Behind KVM the CPUID offers the host's AVX-512 state: a fallback burst must stop there
    (and leave the instruction to KVM) rather than fault the guest."""
    from kvmpy.interp import StopReason

    machine, code, stack = xsetbv_machine(0xE7)
    machine.cpu.set_regs(rip=code, rsp=stack, rbx=xcr0)
    result = machine.cpu.run(100, stop_on_unimplemented=True)
    if stops:
        assert result.reason == StopReason.UNIMPLEMENTED and machine.cpu.mnemonic() == "xsetbv"
        assert machine.cpu.get("xcr0") != xcr0
    else:
        assert machine.cpu.get("xcr0") == xcr0
