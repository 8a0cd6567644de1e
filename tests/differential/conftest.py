"""Options of the differential suite: --diff-cases N, --diff-seed S (see README.md).

pytest honours pytest_addoption only in "initial" conftests: this one is initial when
tests/differential (or a file in it) is named on the command line. Run from the repository
root without that path (plain `pytest`), the options do not exist; the environment variables
KVMPY_DIFF_CASES / KVMPY_DIFF_SEED work in every case (the command-line options win).
"""

from __future__ import annotations

import os

import pytest

DEFAULT_CASES = 10_000
DEFAULT_SEED = 20240601


def pytest_addoption(parser):
    group = parser.getgroup("differential", "interpreter vs. hardware differential tests")
    group.addoption("--diff-cases", type=int, default=None,
                    help=f"random cases to run (default {DEFAULT_CASES}, or $KVMPY_DIFF_CASES)")
    group.addoption("--diff-seed", default=None,
                    help=f"seed of the random cases (default {DEFAULT_SEED}, or $KVMPY_DIFF_SEED)")


def _option(config, name):
    try:
        return config.getoption(name)
    except ValueError:  # not registered: this conftest was not an initial one
        return None


@pytest.fixture(scope="session")
def diff_cases(pytestconfig) -> int:
    value = _option(pytestconfig, "--diff-cases")
    if value is None:
        value = int(os.environ.get("KVMPY_DIFF_CASES", DEFAULT_CASES))
    return value


@pytest.fixture(scope="session")
def diff_seed(pytestconfig) -> str:
    value = _option(pytestconfig, "--diff-seed")
    if value is None:
        value = os.environ.get("KVMPY_DIFF_SEED", str(DEFAULT_SEED))
    return value
