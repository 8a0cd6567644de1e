#!/usr/bin/env python3
"""Run a command in the hardware-virtualization lane: the runner itself is kvmpy/nested/lane.py.

    python boot/nested/run.py -- pytest -m kvm
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from kvmpy.nested.lane import main  # noqa: E402

sys.exit(main())
