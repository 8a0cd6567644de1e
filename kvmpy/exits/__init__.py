"""VM exits: `decode` turns the kvm_run page into an exit value, `handle_exit` decides what to do."""

from .decode import decode_exit
from .dispatch import Buses, handle_exit
from .kinds import *  # noqa: F401,F403  (the exit and action types are this package's vocabulary)
