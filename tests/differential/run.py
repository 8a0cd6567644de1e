"""Command line for the differential suite: big random runs, single cases, the fixed suites.

    python tests/differential/run.py --cases 1000000 --seed 7        # a million random cases
    python tests/differential/run.py --seed 7 --case 123456          # one case, in detail
    python tests/differential/run.py --suite tables                  # table-driven cases
    python tests/differential/run.py --suite faults                  # fault cases
    python tests/differential/run.py --mode 32 --cases 100000        # 32-bit compatibility mode *

* Under PVM compatibility-mode (32/16-bit) user code is executed by KVM's instruction emulator,
  not the CPU: --mode 32/16 cross-checks the interpreter against that emulator.

Random cases go in batches of --batch (default 20,000) so memory stays small; progress is
printed after each batch. Exit status 1 if any case differs.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # tests/, for `differential`

from differential.compare import compare, format_case, format_report  # noqa: E402
from differential.conftest import DEFAULT_SEED  # noqa: E402
from differential.harness import BATCH, case_at, run_cases, run_random  # noqa: E402


def _show_one(seed, index: int, mode: int = 64) -> int:
    from differential.assemble import assemble
    from differential.interp_side import InterpCaseRunner
    from differential.kvm_side import KvmCaseRunner

    case = case_at(seed, index, mode)
    blob = assemble([case])
    hw, sw = KvmCaseRunner(blob).run(0, case), InterpCaseRunner(blob).run(0, case)
    print(f"seed {seed!r} case {index} ({', '.join(case.tags)}):")
    print(format_case(case))
    for name, out in (("hardware", hw), ("interpreter", sw)):
        regs = " ".join(f"{k}={v:#x}" for k, v in out.regs.items())
        print(f"  {name}: end {out.fault or 'normal'}, rflags {out.rflags:#x}\n    {regs}")
    diffs = compare(case, hw, sw)
    print("  differences:" if diffs else "  no differences")
    for diff in diffs:
        print(f"    - {diff}")
    return 1 if diffs else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("random", "tables", "faults"), default="random")
    parser.add_argument("--cases", type=int, default=10_000, help="random cases (default 10000)")
    parser.add_argument("--seed", default=str(DEFAULT_SEED), help=f"seed (default {DEFAULT_SEED})")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"cases per batch (default {BATCH})")
    parser.add_argument("--case", type=int, help="run only this random case of --seed and show it in detail")
    parser.add_argument("--show", type=int, default=10, help="mismatches to print (default 10)")
    parser.add_argument("--mode", type=int, choices=(64, 32, 16), default=64,
                        help="code size of the random cases (32/16: against KVM's emulator, see above)")
    args = parser.parse_args(argv)

    if args.case is not None:
        return _show_one(args.seed, args.case, args.mode)
    start = time.perf_counter()
    if args.suite == "random":
        if args.batch != BATCH:
            print(f"note: with --batch {args.batch} case numbers differ from pytest's ({BATCH} per batch)")

        def progress(stats):
            elapsed = time.perf_counter() - start
            print(f"  {stats.cases:>9} cases  {stats.mismatches} mismatches  {elapsed:7.1f} s", flush=True)

        found, stats = run_random(args.seed, args.cases, args.batch, progress, mode=args.mode)
        seed = args.seed
    else:
        from differential.tables import fault_cases, table_cases

        cases = table_cases() if args.suite == "tables" else [case for _, case in fault_cases()]
        found, stats = run_cases(cases, args.batch, f"{args.suite} case")
        seed = args.suite
    print(format_report([(label, case, diffs) for label, case, diffs, _, _ in found], stats.cases, seed, args.show))
    print(f"{stats.summary()}; wall {time.perf_counter() - start:.1f} s")
    return 1 if stats.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
