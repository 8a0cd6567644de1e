"""The one door to the compiled KVM binding: imports `ffi`/`lib` and turns -errno into errors."""

from __future__ import annotations

from .errors import KvmError, KvmpyError

try:
    from ._kvm import ffi, lib
except ImportError as error:  # pragma: no cover - only without a build
    raise KvmpyError(
        "kvmpy's native extension is not built; run `pip install .` (or `python native/build_kvm.py`)"
    ) from error


__all__ = ["ffi", "lib", "check", "ioctl", "ioctl_int"]


def check(result: int, operation: str) -> int:
    """Return a non-negative ioctl result, or raise KvmError naming the operation and errno."""
    if result < 0:
        raise KvmError(operation, -result)
    return result


def ioctl(fd: int, request: int, arg, operation: str) -> int:
    """ioctl with a cdata pointer argument (or NULL)."""
    return check(lib.kvmpy_ioctl_ptr(fd, request, arg), operation)


def ioctl_int(fd: int, request: int, arg: int, operation: str) -> int:
    """ioctl with an integer argument."""
    return check(lib.kvmpy_ioctl_int(fd, request, arg), operation)
