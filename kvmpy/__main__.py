"""`python -m kvmpy` is `kvmpy`."""

import sys

from .cli import main

sys.exit(main())
