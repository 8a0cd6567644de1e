"""The real gdb driving `kvmpy run --gdb`: kvmpy processes whose stubs listen
(kvmpy/gdb/testing.py), killed if a test leaves them."""

from __future__ import annotations

import pytest

from kvmpy.gdb.testing import KvmpyUnderGdb


@pytest.fixture
def kvmpy_under_gdb():
    started = []

    def start(*args: str) -> KvmpyUnderGdb:
        run = KvmpyUnderGdb(list(args))
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()
