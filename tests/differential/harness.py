"""Run cases on both sides in batches and collect the mismatches.

Random cases are generated per batch from the string seed f"{seed}/{batch}", so case `i` of
seed `s` can be regenerated alone (`case_at`), and a million cases never sit in memory at once.
"""

from __future__ import annotations

import random
import struct
import time
from dataclasses import dataclass, field

from kvmpy import layout

from .assemble import SLOT, assemble
from .cases import random_case
from .common import MAX_CODE
from .compare import compare

BATCH = 20_000
assert BATCH * SLOT <= MAX_CODE


def generate_batch(seed, batch: int, count: int = BATCH, mode: int = 64) -> list:
    rng = random.Random(f"{seed}/{batch}" if mode == 64 else f"{seed}/{batch}/{mode}")
    return [random_case(rng, mode=mode) for _ in range(count)]


def case_at(seed, index: int, mode: int = 64):
    """Random case number `index` of `seed` (as run_random numbers them)."""
    return generate_batch(seed, index // BATCH, index % BATCH + 1, mode)[-1]


@dataclass
class Stats:
    cases: int = 0
    mismatches: int = 0
    seconds: dict = field(default_factory=lambda: {"generate": 0.0, "assemble": 0.0, "kvm": 0.0, "interp": 0.0})

    def summary(self) -> str:
        parts = ", ".join(f"{name} {value:.1f} s" for name, value in self.seconds.items())
        return f"{self.cases} cases, {self.mismatches} mismatches ({parts})"


class Runners:
    """The two runners, created on the first batch and reloaded with the code of later ones."""

    def __init__(self):
        self.kvm = self.interp = None

    def load(self, blob: bytes) -> None:
        from .interp_side import InterpCaseRunner
        from .kvm_side import KvmCaseRunner

        if self.kvm is None:
            self.kvm, self.interp = KvmCaseRunner(blob), InterpCaseRunner(blob)
        else:
            self.kvm.load(blob)
            self.interp.load(blob)

    def close(self) -> None:
        if self.kvm is not None:
            self.kvm.close()
            self.interp.close()
            self.kvm = self.interp = None


def run_batch(runners: Runners, cases, stats: Stats, label, keep: int = 1000, cache: bool = True) -> list:
    """Run `cases` on both sides; returns (label(index), case, diffs, hw, sw) for each mismatch."""
    t0 = time.perf_counter()
    blob = assemble(cases, cache)
    t1 = time.perf_counter()
    stats.seconds["assemble"] += t1 - t0
    runners.load(blob)
    kvm, interp, clock = runners.kvm, runners.interp, time.perf_counter
    kvm_time = interp_time = 0.0
    found = []
    for i, case in enumerate(cases):  # case by case: no batch of outcomes is kept
        t0 = clock()
        hw = kvm.run(i, case)
        t1 = clock()
        sw = interp.run(i, case)
        t2 = clock()
        kvm_time += t1 - t0
        interp_time += t2 - t1
        diffs = compare(case, hw, sw)
        if diffs:
            stats.mismatches += 1
            if len(found) < keep:
                found.append((label(i), case, diffs, hw, sw))
    stats.seconds["kvm"] += kvm_time
    stats.seconds["interp"] += interp_time
    stats.cases += len(cases)
    diffs = compare_page_tables(runners.kvm.memory, runners.interp.memory)
    if diffs:  # Accessed/Dirty bits set by the page walks of the whole batch
        stats.mismatches += 1
        found.append((f"page tables after the batch of {label(0)}..{label(len(cases) - 1)}", None, diffs, None, None))
    return found


PAGE_TABLES = (("PML4", layout.PML4_ADDR, 512), ("PDPT", layout.PDPT_ADDR, 512), ("PD", layout.PD_ADDR, 4 * 512))


def compare_page_tables(hw_memory, sw_memory) -> list[str]:
    """The identity page tables (with the Accessed and Dirty bits the walks set) on both sides."""
    diffs = []
    for name, addr, count in PAGE_TABLES:
        a = struct.unpack(f"<{count}Q", hw_memory.read(addr, 8 * count))
        b = struct.unpack(f"<{count}Q", sw_memory.read(addr, 8 * count))
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y and len(diffs) < 8:
                diffs.append(f"{name}[{i}] at {addr + 8 * i:#x}: hardware {x:#x}, interpreter {y:#x}")
    return diffs


def run_cases(cases, batch: int = BATCH, label_prefix: str = "case") -> tuple[list, Stats]:
    stats, found, runners = Stats(), [], Runners()
    try:
        for start in range(0, len(cases), batch):
            chunk = cases[start:start + batch]
            found += run_batch(runners, chunk, stats, lambda i, s=start: f"{label_prefix} {s + i}")
    finally:
        runners.close()
    return found, stats


def run_random(seed, count: int, batch: int = BATCH, progress=None, keep: int = 1000,
               mode: int = 64) -> tuple[list, Stats]:
    """`count` random cases of `seed` in batches; progress(stats) after each batch.

    mode 32 / 16: compatibility-mode cases, checked against KVM's emulator (cases.CompatGenerator)."""
    stats, found, runners = Stats(), [], Runners()
    try:
        for number, start in enumerate(range(0, count, batch)):
            t0 = time.perf_counter()
            cases = generate_batch(seed, number, min(batch, count - start), mode)
            stats.seconds["generate"] += time.perf_counter() - t0
            label = f"seed {seed!r}" + ("" if mode == 64 else f" mode {mode}")
            found += run_batch(runners, cases, stats, lambda i, s=start: f"{label} case {s + i}",
                               keep - len(found), cache=count <= batch)  # only one-batch runs repeat
            if progress is not None:
                progress(stats)
    finally:
        runners.close()
    return found, stats
