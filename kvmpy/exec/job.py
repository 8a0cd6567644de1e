"""What one `kvmpy exec` asks of the guest, as the files its init reads (contract.py).

The job directory is a fresh host temporary directory; the guest sees it at the same path
through the shared root, so nothing travels on the kernel command line but its path.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ..errors import ConfigError

# The caller's variables the command gets (everything else is left behind, as vng does: the
# host session's variables mean nothing in the guest).
PASSED_VARIABLES = ("PATH", "HOME", "TERM", "LANG")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RW_TAG_PREFIX = "kvmpy-rw"


class RwShare(NamedTuple):
    tag: str
    path: str  # absolute, the same on the host and in the guest


class Job(NamedTuple):
    argv: tuple[str, ...]
    cwd: str
    env: dict[str, str]
    rw: tuple[RwShare, ...]
    terminals: tuple[bool, bool] = (False, False)  # is the caller's stdout, stderr a terminal?


def make_job(argv: Sequence[str], cwd: str | None = None, environ: Mapping[str, str] | None = None,
             rw: Sequence[str] = (), terminals: tuple[bool, bool] = (False, False)) -> Job:
    """The job for `argv` run in `cwd` (default: ours) with PASSED_VARIABLES from `environ`
    (default: ours); `rw` directories become read-write shares mounted over themselves;
    `terminals` says whether the command's stdout and stderr are to be terminals (else pipes)."""
    if not argv:
        raise ConfigError("kvmpy exec: no command given (kvmpy exec KERNEL -- COMMAND...)")
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in PASSED_VARIABLES if name in environ}
    env.setdefault("PATH", DEFAULT_PATH)
    shares = []
    for index, path in enumerate(rw):
        absolute = os.path.abspath(path)
        if not os.path.isdir(absolute):
            raise ConfigError(f"--rw {path}: {'not a directory' if os.path.exists(absolute) else 'no such directory'}")
        shares.append(RwShare(f"{RW_TAG_PREFIX}{index}", absolute))
    job = Job(tuple(argv), os.path.abspath(cwd or os.getcwd()), env, tuple(shares), terminals)
    strings = [*job.argv, job.cwd, *(f"{k}={v}" for k, v in env.items()), *(s.path for s in shares)]
    if any("\0" in string for string in strings):
        raise ConfigError("kvmpy exec: a NUL byte in the command, its directory or environment")
    return job


def write_job(job: Job, directory: pathlib.Path) -> None:
    """The job's files in `directory`, each a sequence of NUL-terminated strings."""
    def strings(*values: str) -> bytes:
        return b"".join(os.fsencode(value) + b"\0" for value in values)

    (directory / "argv").write_bytes(strings(*job.argv))
    (directory / "env").write_bytes(strings(*(f"{name}={value}" for name, value in job.env.items())))
    (directory / "cwd").write_bytes(strings(job.cwd))
    (directory / "rw").write_bytes(strings(*(part for share in job.rw for part in share)))
    (directory / "tty").write_bytes(strings(*("1" if terminal else "0" for terminal in job.terminals)))
