"""The tiny guest images built from boot/guests/ at install time (`kvmpy run` embeds `hello`)."""

import pathlib

from ..errors import ConfigError

GUEST_DIR = pathlib.Path(__file__).resolve().parent
DEFAULT_GUEST = "hello"


def guest_path(name: str = DEFAULT_GUEST) -> pathlib.Path:
    path = GUEST_DIR / f"{name}.elf"
    if not path.exists():
        raise ConfigError(
            f"embedded guest '{name}' is not built; reinstall kvmpy (`pip install .`) "
            "or run `python boot/guests/build.py`"
        )
    return path


def available() -> list[str]:
    return sorted(path.stem for path in GUEST_DIR.glob("*.elf"))
