#!/usr/bin/env python3
"""Build the test initramfs: the builder itself is kvmpy/initramfs.py (the pytest plugin uses it too)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from kvmpy.initramfs import main  # noqa: E402

sys.exit(main())
