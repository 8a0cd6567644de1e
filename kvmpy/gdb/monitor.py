"""`monitor` commands (qRcmd): what gdb cannot ask through the protocol itself."""

from __future__ import annotations

from ..errors import GuestMemoryError

HELP = """kvmpy monitor commands:
  help              this list
  xp ADDR [LEN]     dump LEN (default 64, at most 4096) bytes of guest-physical memory at ADDR
  cpus              each vCPU's rip, cs, cr0, cr3 and efer
"""
DEFAULT_DUMP_LENGTH = 64
MAX_DUMP_LENGTH = 4096
BYTES_PER_LINE = 16


def run_command(line: str, session) -> str:
    """The text a monitor command prints (an error message for a bad one: never raises)."""
    words = line.split()
    if not words or words[0] == "help":
        return HELP
    if words[0] == "xp":
        return _physical_dump(words[1:], session.backend.memory)
    if words[0] == "cpus":
        return _cpus(session)
    return f"unknown monitor command {words[0]!r}; 'monitor help' lists them\n"


def _physical_dump(arguments: list[str], memory) -> str:
    try:
        address = int(arguments[0], 0)
        length = int(arguments[1], 0) if len(arguments) > 1 else DEFAULT_DUMP_LENGTH
    except (IndexError, ValueError):
        return "usage: xp ADDR [LEN]  (numbers in C syntax: 0x1000, 4096)\n"
    if not 0 < length <= MAX_DUMP_LENGTH or address < 0:
        return f"xp: LEN must be 1..{MAX_DUMP_LENGTH}\n"
    try:
        data = memory.read(address, length)
    except GuestMemoryError as error:
        return f"xp: {error}\n"
    lines = []
    for start in range(0, length, BYTES_PER_LINE):
        chunk = data[start:start + BYTES_PER_LINE]
        lines.append(f"{address + start:016x}: {chunk.hex(' ')}\n")
    return "".join(lines)


def _cpus(session) -> str:
    lines = []
    for index in range(session.vcpu_count):
        state = session.backend.read_state(index)
        control = state.control
        lines.append(f"vCPU {index}: rip={state.gprs['rip']:#x} cs={state.segments['cs'][0]:#x} "
                     f"cr0={control['cr0']:#x} cr3={control['cr3']:#x} efer={control['efer']:#x}\n")
    return "".join(lines)
