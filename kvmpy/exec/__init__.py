"""`kvmpy exec`: one command in a fresh kernel on the host's own file system.

job.py turns the command, the caller's directory and environment into files the guest's
init reads; contract.py is what that init (boot/guests/exec_init.c) and the VMM agree on;
session.py builds the machine, runs it and maps how it stopped to an exit status. The CLI
and the pytest plugin are its two users.

`exec_command` and `ExecResult` are loaded on first use, so that the guest build
(boot/guests/build.py, run by setup.py before the extensions exist) can import contract.py
without the native binding.
"""

__all__ = ["ExecResult", "exec_command"]


def __getattr__(name: str):
    if name in __all__:
        from . import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
