"""The software interpreter against the hardware (KVM ring 3): random, table-driven and fault cases.

See README.md in this directory. `pytest tests/differential --diff-cases N --diff-seed S`
(or KVMPY_DIFF_CASES / KVMPY_DIFF_SEED); a million cases: `python tests/differential/run.py
--cases 1000000 --seed S`.
"""

from __future__ import annotations

import pytest

from kvmpy.kvm import kvm_usable

from .cases import RFLAGS_FIXED, Case
from .common import describe_vector
from .compare import compare, format_report
from .harness import run_cases, run_random
from .tables import fault_cases, table_cases

_usable, _reason = kvm_usable()
pytestmark = [
    pytest.mark.differential,
    pytest.mark.kvm,
    pytest.mark.skipif(not _usable, reason=f"/dev/kvm is not usable here: {_reason}"),
]

REPRO = "python tests/differential/run.py --seed {seed} --case N   (N: the case number above)"


def _report(found, stats, seed, suite: str) -> str:
    text = format_report([(label, case, diffs) for label, case, diffs, _, _ in found], stats.cases, seed)
    hint = REPRO.format(seed=seed) if suite == "random" else f"python tests/differential/run.py --suite {suite}"
    return f"{text}\n  ({stats.summary()})\n  rerun one case with: {hint}"


def test_both_sides_run_and_differences_are_caught():
    """The harness is not vacuous: a known case gives the known answer on both sides, and a
    difference (an interpreter outcome altered by hand) is reported."""
    regs = {name: 0 for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9", "r10", "r11",
                                 "r12", "r13", "r14")}
    regs.update(rax=0x7FFFFFFFFFFFFFFF, rbx=1)
    case = Case(["add rax, rbx", "mov qword ptr [r15 + 8], rax", "push rbx", "pop rcx", "ud2"], regs, RFLAGS_FIXED,
                bytes(256))
    ok = Case(["add rax, rbx", "mov qword ptr [r15 + 8], rax", "push rbx", "pop rcx"], regs, RFLAGS_FIXED,
              bytes(256))
    from .assemble import assemble
    from .interp_side import InterpCaseRunner
    from .kvm_side import KvmCaseRunner

    blob = assemble([ok, case])
    kvm, interp = KvmCaseRunner(blob), InterpCaseRunner(blob)
    try:
        for side in (kvm, interp):
            out = side.run(0, ok)
            assert out.fault is None
            assert out.regs["rax"] == 0x8000000000000000 and out.regs["rcx"] == 1
            assert out.rflags & 0x8C5 == 0x884  # OF SF PF set, CF ZF clear (0x8000... + flags)
            assert out.scratch[8:16] == (0x8000000000000000).to_bytes(8, "little")
            assert out.windows[0][-8:] == (1).to_bytes(8, "little")  # the push
            faulted = side.run(1, case)
            assert faulted.vector == 6 and faulted.fault == describe_vector(6)
        hw, sw = kvm.run(0, ok), interp.run(0, ok)
        assert compare(ok, hw, sw) == []
        sw.regs["rdx"] ^= 4
        sw.scratch = b"\xff" * 8 + sw.scratch[8:]
        diffs = compare(ok, hw, sw)
        assert any(d.startswith("rdx:") for d in diffs) and any(d.startswith("scratch") for d in diffs)
    finally:
        kvm.close()
        interp.close()


def test_random_cases(diff_cases, diff_seed):
    found, stats = run_random(diff_seed, diff_cases)
    assert stats.cases == diff_cases
    assert not found, _report(found, stats, diff_seed, "random")


@pytest.mark.parametrize("mode", [32, 16])
def test_compat_mode_against_kvm_emulator(mode, diff_seed):
    """32- and 16-bit compatibility-mode code. Not a hardware comparison: under PVM such user
    code is executed by KVM's instruction emulator (see cases.CompatGenerator)."""
    found, stats = run_random(diff_seed, 2_000, mode=mode)
    assert not found, _report(found, stats, diff_seed, "random") + f" --mode {mode}"


def test_table_cases():
    cases = table_cases()
    found, stats = run_cases(cases, label_prefix="table case")
    assert stats.cases > 20_000
    assert not found, _report(found, stats, "tables", "tables")


def test_fault_cases():
    """Faults at ring 3: the same vector, frame, CR2 and state on both sides, and the vector the
    table expects (so a change in what the hardware side does is noticed too)."""
    pairs = fault_cases()
    found, stats = run_cases([case for _, case in pairs], label_prefix="fault case")
    assert not found, _report(found, stats, "faults", "faults")
    from .assemble import assemble
    from .kvm_side import KvmCaseRunner

    kvm = KvmCaseRunner(assemble([case for _, case in pairs]))
    try:
        wrong = []
        for index, (vector, case) in enumerate(pairs):
            got = kvm.run(index, case)
            if got.vector != vector or (vector is None and got.fault is not None):
                wrong.append(f"fault case {index} ({' ; '.join(case.lines)}): expected "
                             f"{'no fault' if vector is None else describe_vector(vector)}, hardware: {got.fault}")
        assert not wrong, "\n".join(wrong)
    finally:
        kvm.close()
