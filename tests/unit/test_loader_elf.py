"""The ELF loader on hand-built images: modes from notes, and clear errors for bad files."""

import struct

import pytest

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader import pvh
from kvmpy.loader.bootparams import e820_map
from kvmpy.loader.elf import load_elf
from kvmpy.loader.image import load_image
from kvmpy.memory import GuestMemory
from kvmpy.vcpu.modes import StartMode

MiB = 1 << 20
PT_LOAD, PT_NOTE = 1, 4


def note(owner: bytes, kind: int, desc: bytes) -> bytes:
    name = owner + b"\0"
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), kind) + pad(name) + pad(desc)


def elf64(segments, entry=0x100000, machine=62, notes=b""):
    """An ELF64 with PT_LOAD segments given as (vaddr, paddr, data, memsz) and an optional note."""
    header_size, phdr_size = 64, 56
    phnum = len(segments) + (1 if notes else 0)
    offset = header_size + phnum * phdr_size
    phdrs, body = b"", b""
    for vaddr, paddr, data, memsz in segments:
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, 5, offset + len(body), vaddr, paddr, len(data), memsz, 0x1000)
        body += data
    if notes:
        phdrs += struct.pack("<IIQQQQQQ", PT_NOTE, 4, offset + len(body), 0, 0, len(notes), len(notes), 4)
        body += notes
    ident = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header = struct.pack("<16sHHIQQQIHHHHHH", ident, 2, machine, 1, entry, header_size, 0, 0,
                         header_size, phdr_size, phnum, 64, 0, 0)
    return header + phdrs + body


@pytest.fixture
def memory():
    mem = GuestMemory.with_hole(4 * MiB, 3 << 30, 4 << 30)
    yield mem
    mem.close()


def test_segments_are_copied_and_bss_zeroed(memory):
    memory.write(0x100000 + 4, b"dirty!")
    loaded = load_elf(elf64([(0x100000, 0x100000, b"code", 10)]), memory, "t")
    assert memory.read(0x100000, 10) == b"code" + b"\0" * 6
    assert (loaded.entry, loaded.mode, loaded.end) == (0x100000, StartMode.LONG, 0x10000A)


def test_virtual_entry_is_translated_to_physical(memory):
    image = elf64([(0xFFFFFFFF81000000, 0x100000, b"x" * 32, 32)], entry=0xFFFFFFFF81000010)
    assert load_elf(image, memory, "vmlinux").entry == 0x100010


@pytest.mark.parametrize("mode_value,mode", [(0, StartMode.REAL), (1, StartMode.PROTECTED), (2, StartMode.LONG)])
def test_kvmpy_note_chooses_the_mode(memory, mode_value, mode):
    image = elf64([(0x100000, 0x100000, b"x", 1)], notes=note(b"kvmpy", 1, struct.pack("<I", mode_value)))
    assert load_elf(image, memory, "t").mode is mode


def test_pvh_note_gives_a_32_bit_entry_at_its_address(memory):
    image = elf64([(0xFFFFFFFF81000000, 0x100000, b"x" * 64, 64)], notes=note(b"Xen", 18, struct.pack("<I", 0x100020)))
    loaded = load_elf(image, memory, "vmlinux")
    assert loaded.pvh_entry == 0x100020


def test_a_pvh_kernel_gets_its_start_info_initrd_and_boot_cpu_only(memory, tmp_path):
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(b"R" * 5000)
    image = tmp_path / "vmlinux"
    image.write_bytes(elf64([(0xFFFFFFFF81000000, 0x100000, b"x" * 64, 64)],
                            notes=note(b"Xen", 18, struct.pack("<I", 0x100020))))
    boot = load_image(str(image), memory, "console=ttyS0", str(initrd))
    assert (boot.entry, boot.mode, boot.boot_cpu_only) == (0x100020, StartMode.PROTECTED, True)
    assert boot.registers == (("rbx", layout.BOOT_INFO_ADDR),)
    magic, version, flags, modules, modlist, cmdline, rsdp, memmap, entries, _ = \
        pvh.START_INFO.unpack(memory.read(layout.BOOT_INFO_ADDR, pvh.START_INFO.size))
    assert (magic, version, flags, modules, modlist, rsdp) == (0x336EC578, 1, 0, 1, layout.BOOT_INFO_MODULES_ADDR, 0)
    assert memory.read(cmdline, 30).split(b"\0")[0] == b"console=ttyS0 panic=-1"  # a Linux command line
    address, size, _, _ = pvh.MODULE.unpack(memory.read(modlist, pvh.MODULE.size))
    assert size == 5000 and address % 4096 == 0 and memory.read(address, size) == b"R" * 5000
    table = [pvh.MEMORY_MAP_ENTRY.unpack(memory.read(memmap + i * 24, 24))[:3] for i in range(entries)]
    assert table == list(e820_map(memory))


@pytest.mark.parametrize(
    "image,message",
    [
        (b"\x7fELF", "truncated"),
        (b"\x7fELF" + bytes([3, 1]) + b"\0" * 60, "32/64-bit"),
        (elf64([(0x100000, 0x100000, b"x", 1)], machine=183), "not x86"),
        (elf64([])[:64], "program headers"),
        (elf64([(0x100000, 0x100000, b"x", 1)])[:-1], "past the end"),
        (elf64([(0x100000, 0x100000, b"xy", 1)]), "smaller in memory"),
        (elf64([(0x100000, 0x3FFF00, b"x", 0x1000)]), "does not fit"),
        (elf64([(0x100000, 0x100000, b"x", 1)], entry=0x500000), "outside every loaded segment"),
    ],
)
def test_malformed_images_are_one_clear_error(memory, image, message):
    with pytest.raises(ConfigError, match=message):
        load_elf(image, memory, "bad.elf")
