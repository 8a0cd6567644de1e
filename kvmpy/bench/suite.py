"""The `kvmpy bench` suite: which workloads run, how many times, and where results go."""

from __future__ import annotations

import sys

from .core import run_core
from .report import Report

# (repeats, port-I/O exits per run, ring-3 loop iterations)
FULL = (5, 200_000, 1_000_000_000)
QUICK = (3, 50_000, 200_000_000)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run_suite(quick: bool, json_path: str) -> Report:
    repeats, exits, iterations = QUICK if quick else FULL
    report = Report()
    run_core(report, repeats, exits, iterations, progress=progress)
    print(report.table())
    report.write_json(json_path)
    progress(f"JSON written to {json_path}")
    return report
