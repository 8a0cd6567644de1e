"""Build kvmpy: the cffi extensions from native/ and the tiny guests from boot/guests/.

Metadata lives in pyproject.toml; this file only adds what needs code: `cffi_modules` and
a build_py step that assembles the embedded guest images (the default of `kvmpy run`).
"""

import importlib.util
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent


class BuildPyWithGuests(build_py):
    """Also assemble boot/guests/*.S into kvmpy/guests/*.elf (needs GNU binutils)."""

    def run(self):
        super().run()
        spec = importlib.util.spec_from_file_location("kvmpy_guest_build", HERE / "boot" / "guests" / "build.py")
        guest_build = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(guest_build)
        if getattr(self, "editable_mode", False):
            out = HERE / "kvmpy" / "guests"
        else:
            out = pathlib.Path(self.build_lib) / "kvmpy" / "guests"
        guest_build.build_all(out)


setup(
    cffi_modules=["native/build_kvm.py:ffibuilder", "native/build_interp.py:ffibuilder"],
    cmdclass={"build_py": BuildPyWithGuests},
)
