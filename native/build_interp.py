"""cffi (API mode) build of kvmpy._interp, the software x86 interpreter in native/interp/.

`python native/build_interp.py` compiles the extension in place (kvmpy/_interp.*.so), so
the tree works without pip; setup.py can list "native/build_interp.py:ffibuilder" in
cffi_modules.
"""

import glob
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SRC_DIR = os.path.join(HERE, "interp")


def _cdef_text() -> str:
    """interp_api.h with the private tail replaced by cffi's "layout from the compiler"."""
    with open(os.path.join(SRC_DIR, "interp_api.h")) as f:
        text = f.read()
    return text.replace("INTERP_PRIVATE", "...;")


CALLBACKS = """
extern "Python+C" uint64_t interp_mmio_read(void *ctx, uint64_t gpa, int size);
extern "Python+C" void interp_mmio_write(void *ctx, uint64_t gpa, int size, uint64_t val);
extern "Python+C" uint32_t interp_pio_in(void *ctx, uint16_t port, int size);
extern "Python+C" void interp_pio_out(void *ctx, uint16_t port, int size, uint32_t val);
extern "Python+C" int interp_ack_irq(void *ctx);
extern "Python+C" int interp_rdmsr(void *ctx, uint32_t msr, uint64_t *val);
extern "Python+C" int interp_wrmsr(void *ctx, uint32_t msr, uint64_t val);
"""

def _path(path: str) -> str:
    """setuptools wants paths relative to the project root (where it runs); a direct run
    compiles inside cffi's temporary directory and needs absolute ones."""
    return path if __name__ == "__main__" else os.path.relpath(path)


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text() + CALLBACKS)
ffibuilder.set_source(
    "kvmpy._interp",
    '#include "interp.h"\n',
    sources=sorted(_path(path) for path in glob.glob(os.path.join(SRC_DIR, "*.c"))),
    include_dirs=[_path(SRC_DIR)],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-fno-strict-aliasing", "-fvisibility=hidden",
                        "-fno-semantic-interposition"],
    libraries=["m"],
)


if __name__ == "__main__":
    from _inplace import compile_in_place

    compile_in_place(ffibuilder)
