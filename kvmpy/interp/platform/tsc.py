"""The host's TSC frequency, which is the interpreted guest's: the interpreter reads the host's
time-stamp counter (plus a per-CPU offset), so the guest must be told how fast it runs.
"""

from __future__ import annotations

import functools
import time

from ...native import lib

CALIBRATION_SECONDS = 0.02
HZ_PER_KHZ = 1000


def _sample() -> tuple[int, int]:
    """(monotonic ns, TSC) taken together: the TSC read sits between two clock reads."""
    before = time.monotonic_ns()
    tsc = lib.kvmpy_rdtsc()
    after = time.monotonic_ns()
    return (before + after) // 2, tsc


@functools.cache
def host_tsc_hz() -> int:
    """TSC ticks per second, measured once per process against CLOCK_MONOTONIC (to the kHz)."""
    start_ns, start_tsc = _sample()
    time.sleep(CALIBRATION_SECONDS)
    end_ns, end_tsc = _sample()
    khz = round((end_tsc - start_tsc) * 1_000_000 / (end_ns - start_ns))
    return khz * HZ_PER_KHZ


def rdtsc() -> int:
    return lib.kvmpy_rdtsc()
