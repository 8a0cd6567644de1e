"""Recognise a guest image by its contents and load it: a Linux bzImage, a multiboot kernel, an
ELF with a PVH entry (Linux's vmlinux), or another ELF (kvmpy's tiny guests). The order is
QEMU's `-kernel`'s: a multiboot header wins over the ELF notes."""

from __future__ import annotations

import os

from .. import layout
from ..errors import ConfigError
from ..memory import GuestMemory
from .bootimage import BootImage
from .bzimage import is_bzimage, load_bzimage
from .elf import is_elf, load_elf
from .multiboot import find_header, load_multiboot
from .pvh import load_pvh


def read_image(path: str, memory: GuestMemory) -> bytes:
    """The file's bytes, after the checks every image format shares."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise ConfigError(f"{path}: the image file is empty")
        if size > memory.size:
            raise ConfigError(
                f"{path}: the image ({size >> 20} MiB) is larger than guest RAM ({memory.size >> 20} MiB)"
            )
        with open(path, "rb") as image:
            return image.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not an image file") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None


def write_cmdline(memory: GuestMemory, cmdline: str) -> int:
    """Place the NUL-terminated command line at its fixed address; return that address.
    The guest gets the bytes the user typed: argv's undecodable bytes, which Python keeps as
    escapes in the str, are written back as they were (os.fsencode)."""
    encoded = os.fsencode(cmdline)
    if len(encoded) >= layout.CMDLINE_MAX:
        raise ConfigError(f"the command line is {len(encoded)} bytes; the limit is {layout.CMDLINE_MAX - 1}")
    memory.write(layout.CMDLINE_ADDR, encoded + b"\0")
    return layout.CMDLINE_ADDR


# Added to a Linux command line that does not choose what a panic does: reboot at once, which
# kvmpy reports as the panic it was (kvmpy/panic.py) instead of waiting for a kernel that spins.
LINUX_PANIC_OPTION = "panic=-1"


def linux_cmdline(cmdline: str) -> str:
    """The command line a Linux kernel gets: the user's, with LINUX_PANIC_OPTION unless it sets panic=."""
    if any(option.startswith("panic=") for option in cmdline.split()):
        return cmdline
    return f"{cmdline} {LINUX_PANIC_OPTION}".strip()


def load_image(path: str, memory: GuestMemory, cmdline: str = "", initrd: str | None = None) -> BootImage:
    data = read_image(path, memory)
    if is_bzimage(data):
        cmdline = linux_cmdline(cmdline)
        return load_bzimage(data, memory, write_cmdline(memory, cmdline), cmdline, initrd, path)
    multiboot = find_header(data)
    if multiboot is not None:
        return load_multiboot(data, multiboot, memory, write_cmdline(memory, cmdline), initrd, path)
    if is_elf(data):
        loaded = load_elf(data, memory, path)
        if loaded.pvh_entry is not None:
            cmdline_addr = write_cmdline(memory, linux_cmdline(cmdline))
            return load_pvh(loaded.pvh_entry, loaded.end, memory, cmdline_addr, initrd)
        if initrd is not None:
            raise ConfigError(f"{path}: --initrd needs a kernel with a boot protocol for it "
                              "(bzImage, multiboot, or an ELF with a PVH note)")
        write_cmdline(memory, cmdline)  # kvmpy's tiny guests find it at layout.CMDLINE_ADDR
        return BootImage(loaded.entry, loaded.mode)
    raise ConfigError(f"{path}: not a bootable image (expected a Linux bzImage, a multiboot kernel or an ELF file)")
