"""The fuzz targets in the default suite: every seed and regression input replays clean, and
each target fuzzes for a few seconds (FUZZ_SECONDS) without a crash, hang or escape.
`python tests/fuzz/run.py --minutes N` is the long run."""

from __future__ import annotations

import importlib
import os

import pytest
import run as fuzz_run
from targets import NATIVE_TARGETS, PYTHON_TARGETS
from targets._support import contained_bugs_raise

pytestmark = pytest.mark.fuzz

FUZZ_SECONDS = float(os.environ.get("KVMPY_FUZZ_SECONDS", "3"))


def saved_inputs(target: str) -> list:
    return sorted(path for directory in (fuzz_run.SEEDS / target, fuzz_run.REGRESSIONS / target)
                  if directory.is_dir() for path in directory.iterdir() if path.is_file())


@pytest.mark.parametrize("target", PYTHON_TARGETS)
def test_seeds_and_regressions_replay_clean(target):
    module = importlib.import_module(f"targets.{target}")
    for path in saved_inputs(target):
        try:
            with contained_bugs_raise():
                module.one_input(path.read_bytes())
        except Exception as failure:
            raise AssertionError(f"{path} fails again: {failure!r}") from failure


@pytest.mark.parametrize("target", NATIVE_TARGETS)
def test_native_seeds_and_regressions_replay_clean(target):
    inputs = saved_inputs(target)
    if not inputs:
        pytest.skip(f"{target} has no saved inputs yet")
    try:
        replayed = fuzz_run.replay(target, inputs)
    except fuzz_run.Unavailable as why:
        pytest.skip(f"{target} cannot be built here: {why}")
    assert replayed.returncode == 0, replayed.stderr[-4000:]


@pytest.mark.parametrize("target", PYTHON_TARGETS + NATIVE_TARGETS)
def test_a_short_fuzz_run_is_clean(target):
    if target in PYTHON_TARGETS:
        pytest.importorskip("atheris", reason="atheris is not installed (pip install -e '.[test]')")
    result = fuzz_run.run_target(target, FUZZ_SECONDS)
    if result.status == "unavailable":
        pytest.skip(f"{target}: {result.detail}")
    assert result.clean, f"{target}: {result.status} {result.artifact or ''}\n{result.detail}"
    assert result.executions > 0 and result.coverage > 0, fuzz_run.table([result])
