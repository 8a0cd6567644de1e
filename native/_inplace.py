"""Development helper: compile a cffi extension straight into the kvmpy package directory."""

import pathlib
import shutil
import tempfile

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / "kvmpy"


def compile_in_place(ffibuilder) -> pathlib.Path:
    with tempfile.TemporaryDirectory(prefix="kvmpy-build-") as tmp:
        built = pathlib.Path(ffibuilder.compile(tmpdir=tmp))
        target = PACKAGE_DIR / built.name
        shutil.copy2(built, target)
    print(target)
    return target
