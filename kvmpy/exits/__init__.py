"""VM exits: `decode_exit` turns the kvm_run page into an exit value, `handle_exit` decides what to do."""

from .decode import decode_exit
from .dispatch import Buses, handle_exit

__all__ = ["Buses", "decode_exit", "handle_exit"]
