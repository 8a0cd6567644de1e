"""Build the tiny test guests in this folder into ELF images kvmpy can boot.

Each `*.S` is assembled with the system's GNU `as`, each bare-metal `*.c` (all but
exec_init.c) compiled freestanding with gcc, and linked with `ld`; `layout.inc` and
`layout.h` are generated from `kvmpy.layout` first, so guests and VMM share one set of
addresses. A note in each image (see `guest.inc`) tells kvmpy's ELF loader which CPU mode to
start the guest in.

    python boot/guests/build.py [--out DIR]      # default: kvmpy/guests/ in this checkout
"""

from __future__ import annotations

import argparse
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
NATIVE = REPO / "native"  # compute_blocks.inc: the benchmark's blocks, shared with the host
DEFAULT_OUT = REPO / "kvmpy" / "guests"
if str(REPO) not in sys.path:  # the layout module is the single source of addresses
    sys.path.insert(0, str(REPO))

# Guests that start in real mode are linked at offset 0 of their segment (CS = 0x1000) and
# loaded at the segment base; everything else is linked where it runs.
REAL_MODE_GUESTS = {"realmode"}


def layout_include() -> str:
    """Every integer constant of kvmpy.layout as a gas `.set` line."""
    from kvmpy import layout
    lines = [
        f".set {name}, {value:#x}"
        for name, value in vars(layout).items()
        if name.isupper() and isinstance(value, int)
    ]
    return "\n".join(lines) + "\n"


def layout_header() -> str:
    """The same constants as C macros, for the guests written in C."""
    from kvmpy import layout
    lines = [f"#define {name} {value:#x}ull" for name, value in vars(layout).items()
             if name.isupper() and isinstance(value, int)]
    return "\n".join(lines) + "\n"


def sources() -> list[pathlib.Path]:
    return sorted(HERE.glob("*.S")) + sorted(path for path in HERE.glob("*.c") if path != EXEC_INIT)


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"guest build failed: {' '.join(command)}\n{result.stderr.strip()}")


LINKER_SCRIPT = """\
ENTRY(_start)
PHDRS {{ image PT_LOAD; note PT_NOTE; }}
SECTIONS {{
    . = {link:#x};
    .text : AT({load:#x}) {{ *(.text*) *(.rodata*) *(.data*) *(.bss*) }} :image
    .note.kvmpy : {{ KEEP(*(.note.kvmpy)) }} :image :note
    /DISCARD/ : {{ *(.note.gnu*) *(.comment) }}
}}
"""


def linker_script(real_mode: bool) -> str:
    from kvmpy import layout

    if real_mode:  # linked at offset 0 of the CS segment, loaded at the segment base
        return LINKER_SCRIPT.format(link=0, load=layout.REAL_MODE_LOAD_ADDR)
    return LINKER_SCRIPT.format(link=layout.HIGH_MEMORY, load=layout.HIGH_MEMORY)


EXEC_INIT = HERE / "exec_init.c"  # kvmpy exec's init: a Linux user program, not a bare-metal guest
# Guests in C run in long mode on kvmpy's identity map with no runtime at all.
BARE_METAL_C_FLAGS = ["-m64", "-ffreestanding", "-nostdlib", "-fno-pic", "-fno-pie", "-mno-red-zone",
                      "-mgeneral-regs-only", "-fno-stack-protector", "-fno-asynchronous-unwind-tables",
                      "-O2", "-Wall", "-Werror"]


def build_guest(source: pathlib.Path, work_dir: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    name = source.stem
    obj = work_dir / f"{name}.o"
    script = work_dir / f"{name}.ld"
    target = out_dir / f"{name}.elf"
    script.write_text(linker_script(real_mode=name in REAL_MODE_GUESTS))
    if source.suffix == ".c":
        _run(["gcc", *BARE_METAL_C_FLAGS, "-I", str(work_dir), "-c", "-o", str(obj), str(source)])
    else:
        _run(["as", "--64", "-I", str(work_dir), "-I", str(HERE), "-I", str(NATIVE), "-o", str(obj), str(source)])
    _run(["ld", "-m", "elf_x86_64", "-nostdlib", "-static", "-z", "max-page-size=4096",
          "-z", "noexecstack", "-T", str(script), "-o", str(target), str(obj)])
    return target


EXEC_INIT_FLAGS = ["-static", "-nostdlib", "-ffreestanding", "-fno-stack-protector", "-fno-pie", "-no-pie",
                   "-fno-asynchronous-unwind-tables", "-O2", "-Wall", "-Werror", "-Wl,--build-id=none"]


def build_exec_init(work_dir: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
    from kvmpy.exec.contract import c_header

    (work_dir / "exec_init.h").write_text(c_header())
    target = out_dir / "exec_init"
    _run(["gcc", *EXEC_INIT_FLAGS, "-I", str(work_dir), "-o", str(target), str(EXEC_INIT)])
    return target


def build_all(out_dir: pathlib.Path = DEFAULT_OUT) -> list[pathlib.Path]:
    for tool in ("as", "ld", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"guest build needs GNU binutils and gcc ('{tool}' not found): "
                             "apt-get install binutils gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kvmpy-guests-") as tmp:
        work_dir = pathlib.Path(tmp)
        (work_dir / "layout.inc").write_text(layout_include())
        (work_dir / "layout.h").write_text(layout_header())
        return [build_guest(source, work_dir, out_dir) for source in sources()] + [build_exec_init(work_dir, out_dir)]


def fingerprint() -> str:
    """A hash of every input, so callers can cache builds."""
    digest = hashlib.sha256(layout_include().encode())
    digest.update(__import__("kvmpy.exec.contract", fromlist=["c_header"]).c_header().encode())
    for path in sorted(HERE.glob("*.S")) + sorted(HERE.glob("*.c")) + sorted(HERE.glob("*.inc")) + [NATIVE / "compute_blocks.inc",
                                                                          pathlib.Path(__file__)]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    for path in build_all(args.out):
        print(path)


if __name__ == "__main__":
    main()
