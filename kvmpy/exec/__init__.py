"""`kvmpy exec`: one command in a fresh kernel on the host's own file system.

job.py turns the command, the caller's directory and environment into files the guest's
init reads; init_script.py is that init; session.py builds the machine, runs it and maps
how it stopped to an exit status. The CLI and the pytest plugin are its two users.
"""

from .session import ExecResult, exec_command

__all__ = ["ExecResult", "exec_command"]
