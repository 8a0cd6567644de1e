"""Assemble generated cases into one flat blob: case N at case_offset(N), each ending in an exit.

One `as` run for a whole batch keeps 10,000 cases to about a second, and gas checks every
encoding. Each case ends with `out 0xf6, al` (the benchmark port), which leaves registers
and flags alone and makes the CPU (or the interpreter) stop right there. Compatibility-mode
cases (Case.mode 32 or 16) are assembled as .code32 / .code16.
"""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import tempfile

SLOT = 256
# Case N starts at N * SLOT + SKEW (and may run into the next slot): with SKEW = SLOT - 40 the
# code of every 16th case crosses a 4 KiB page boundary 40 bytes in (instruction fetch across pages).
SKEW = SLOT - 40


def case_offset(index: int) -> int:
    return index * SLOT + SKEW
END_MARKER = "out 0xf6, al"
CACHE = pathlib.Path(tempfile.gettempdir()) / "kvmpy-differential"


def assemble(cases, cache: bool = True) -> bytes:
    """The blob of `cases`; with `cache`, kept in CACHE by content hash (for the fixed suites:
    big random runs pass cache=False, their batches never repeat)."""
    source = [".intel_syntax noprefix", ".code64", ".text", "base:"]
    for index, case in enumerate(cases):
        source.append(f".org base + {case_offset(index)}")
        source.append(f".code{getattr(case, 'mode', 64)}")
        source.extend(case.lines)
        source.append(END_MARKER)  # the same bytes (e6 f6) in 16-, 32- and 64-bit code
        source.append(".code64")
    source.append(f".org base + {(len(cases) + 1) * SLOT}")
    text = "\n".join(source) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    blob = CACHE / f"{digest}.bin"
    if cache and blob.exists():
        return blob.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        src, obj, tmp_blob = (pathlib.Path(tmp) / name for name in ("c.S", "c.o", "c.bin"))
        src.write_text(text)
        result = subprocess.run(["as", "--64", "-o", str(obj), str(src)], capture_output=True, text=True)
        if result.returncode:
            raise RuntimeError(f"assembling cases failed:\n{result.stderr[:2000]}")
        subprocess.run(["objcopy", "-O", "binary", "-j", ".text", str(obj), str(tmp_blob)], check=True)
        data = tmp_blob.read_bytes()
        if cache:
            CACHE.mkdir(exist_ok=True)
            tmp_blob.replace(blob)
    return data
