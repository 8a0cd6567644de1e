"""Software x86 interpreter (C, via cffi) for what KVM here cannot or should not execute."""

from .cpu import GPR_NAMES, SEGMENT_NAMES, NullBus, RunResult, SoftCpu, StopReason

__all__ = ["GPR_NAMES", "SEGMENT_NAMES", "NullBus", "RunResult", "SoftCpu", "StopReason"]
