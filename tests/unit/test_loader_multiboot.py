"""The multiboot loader on hand-built images: the header search, the a.out-kludge load, the
information structure field by field, and a clear refusal of what kvmpy cannot give."""

import struct

import pytest

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader import multiboot as mb
from kvmpy.loader.bootparams import e820_map
from kvmpy.loader.image import load_image
from kvmpy.memory import GuestMemory
from kvmpy.vcpu.modes import StartMode

pytestmark = pytest.mark.multiboot

MiB = 1 << 20
LOAD = 0x100000


def header(flags, addresses=None, magic=mb.HEADER_MAGIC):
    fields = struct.pack("<III", magic, flags, -(magic + flags) & 0xFFFFFFFF)
    return fields + (struct.pack("<5I", *addresses) if addresses else b"")


def kludge_image(code=b"\x90" * 16, bss_end=LOAD + 0x2000, flags=mb.HAS_ADDRESS_FIELDS | mb.REQUIRE_MEMORY_INFO):
    """A raw kernel loaded at LOAD whose header (at offset 0) names its addresses."""
    return header(flags, (LOAD, LOAD, 0, bss_end, LOAD + 32)) + code


@pytest.fixture
def memory():
    mem = GuestMemory.with_hole(16 * MiB, 3 << 30, 4 << 30)
    yield mem
    mem.close()


def test_the_header_is_found_4_byte_aligned_in_the_first_8_kib():
    assert mb.find_header(b"\0" * 4092 + header(0)).offset == 4092
    assert mb.find_header(b"\0" * 8192 + header(0)) is None
    assert mb.find_header(b"\0" * 2 + header(0)) is None  # not aligned
    bad = bytearray(header(0))
    bad[8] ^= 1
    assert mb.find_header(bytes(bad)) is None  # checksum


def test_an_a_out_kludge_kernel_is_loaded_where_its_header_says(memory, tmp_path):
    image = kludge_image()
    memory.write(LOAD + len(image), b"dirty")
    boot = load_multiboot(memory, tmp_path, image)
    assert memory.read(LOAD, len(image)) == image
    assert memory.read(LOAD + len(image), 0x2000 - len(image)) == bytes(0x2000 - len(image))  # bss
    assert (boot.entry, boot.mode, boot.boot_cpu_only) == (LOAD + 32, StartMode.PROTECTED, True)
    assert boot.registers == (("rax", 0x2BADB002), ("rbx", layout.BOOT_INFO_ADDR))


def load_multiboot(memory, tmp_path, image, cmdline="root=none quiet", module=b"module bytes\n"):
    kernel = tmp_path / "kernel.bin"
    kernel.write_bytes(image)
    initrd = None
    if module is not None:
        initrd = tmp_path / "mod.txt"
        initrd.write_bytes(module)
    return load_image(str(kernel), memory, cmdline, None if initrd is None else str(initrd))


def test_the_information_structure(memory, tmp_path):
    load_multiboot(memory, tmp_path, kludge_image())
    fields = mb.INFO.unpack(memory.read(layout.BOOT_INFO_ADDR, mb.INFO.size))
    flags, lower, upper, _device, cmdline, count, modules, _syms, map_length, map_addr = fields[:10]
    loader_name = fields[13]
    assert flags == mb.INFO_MEMORY | mb.INFO_CMDLINE | mb.INFO_MODULES | mb.INFO_MEMORY_MAP | mb.INFO_LOADER_NAME
    assert (lower, upper) == (639, 15 * 1024)
    assert memory.read(cmdline, 16) == b"root=none quiet\0"  # not a Linux kernel: no panic= added
    assert count == 1
    start, end, name, _ = mb.MODULE.unpack(memory.read(modules, mb.MODULE.size))
    assert start % 4096 == 0 and start >= LOAD + 0x2000 and memory.read(start, end - start) == b"module bytes\n"
    assert memory.read(name, 8) == b"mod.txt\0"
    entries = [mb.MEMORY_MAP_ENTRY.unpack(memory.read(map_addr + offset, 24))
               for offset in range(0, map_length, 24)]
    assert [(base, size, kind) for _size, base, size, kind in entries] == e820_map(memory)
    assert all(size_field == 20 for size_field, *_ in entries)
    assert memory.read(loader_name, 6) == b"kvmpy\0"


def test_without_a_module_the_flag_says_so(memory, tmp_path):
    load_multiboot(memory, tmp_path, kludge_image(), module=None)
    flags, *_ = mb.INFO.unpack(memory.read(layout.BOOT_INFO_ADDR, mb.INFO.size))
    assert not flags & mb.INFO_MODULES


@pytest.mark.parametrize("image, message", [
    (header(mb.REQUIRE_VIDEO_MODE), "video mode"),
    (header(1 << 5), "requires features kvmpy does not know"),
    (header(0) + b"\x90" * 64, "must be an ELF file"),
    (header(mb.HAS_ADDRESS_FIELDS, (LOAD, LOAD + 0x10, 0, 0, LOAD)), "do not match the file"),
    (header(mb.HAS_ADDRESS_FIELDS, (LOAD, LOAD, 0, 64 * MiB, LOAD)), "does not fit in guest RAM"),
])
def test_what_kvmpy_cannot_give_is_refused_clearly(memory, tmp_path, image, message):
    with pytest.raises(ConfigError, match=message):
        load_multiboot(memory, tmp_path, image, module=None)
