"""Run one Python fuzz target under atheris: libFuzzer's engine, guided by coverage of kvmpy's
code.  `python tests/fuzz/harness.py TARGET [libFuzzer options] [corpus directories or files]`
(run.py is the usual way in; this is what it starts, one process per target).

Given files instead of directories, libFuzzer runs each once: that is how a crash replays."""

import importlib
import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]  # the targets, and this checkout's kvmpy


def main() -> None:
    name = sys.argv[1]
    # Everything the target imports from kvmpy is instrumented for coverage; kvmpy must not
    # be imported before this point, or its modules would run uninstrumented.
    with atheris.instrument_imports(include=["kvmpy", "targets"]):
        target = importlib.import_module(f"targets.{name}")
    from targets._support import contained_bugs_raise

    with contained_bugs_raise():
        atheris.Setup([sys.argv[0]] + sys.argv[2:], target.one_input)
        atheris.Fuzz()


if __name__ == "__main__":
    main()
