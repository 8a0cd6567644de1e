"""The exceptions kvmpy raises, so callers can tell a user mistake from a host failure."""


class KvmpyError(Exception):
    """Base class: every error kvmpy raises on purpose derives from it."""


class ConfigError(KvmpyError):
    """The user asked for something that cannot work (bad size, missing file, bad image).

    The CLI reports these as one line and exits with status 2.
    """


class KvmError(KvmpyError):
    """A KVM ioctl (or other host system call) failed.

    Carries the name of the operation and the errno so the message says what failed and why.
    """

    def __init__(self, operation: str, errno: int):
        import os

        self.operation = operation
        self.errno = errno
        super().__init__(f"{operation} failed: {os.strerror(errno)} (errno {errno})")


class GuestMemoryError(KvmpyError):
    """A guest-physical access fell outside guest RAM."""


class GuestError(KvmpyError):
    """The guest did something the VMM cannot continue from (unhandled exit, emulation failure)."""
