"""bzImage header checks, initrd placement, e820 and the MP table, on hand-built inputs."""

import struct

import pytest

from kvmpy import layout
from kvmpy.errors import ConfigError
from kvmpy.loader import bootparams as bp
from kvmpy.loader.bzimage import is_bzimage, load_bzimage
from kvmpy.loader.initrd import place_initrd
from kvmpy.loader.mptable import build_mptable
from kvmpy.memory import GuestMemory

MiB = 1 << 20


def fake_bzimage(version=0x020F, xloadflags=bp.XLF_KERNEL_64, loadflags=bp.LOADFLAGS_LOADED_HIGH,
                 setup_sects=1, payload=b"\x90" * 4096, init_size=4 * MiB, pref_address=layout.HIGH_MEMORY):
    image = bytearray(0x400)
    image[bp.SETUP_SECTS] = setup_sects
    struct.pack_into("<H", image, bp.BOOT_FLAG, bp.BOOT_FLAG_VALUE)
    image[bp.SETUP_HEADER_END_BYTE] = 0x6A  # header ends at 0x26c, like 2.15 kernels
    image[bp.HEADER_MAGIC : bp.HEADER_MAGIC + 4] = bp.HEADER_MAGIC_VALUE
    struct.pack_into("<H", image, bp.VERSION, version)
    image[bp.LOADFLAGS] = loadflags
    struct.pack_into("<I", image, bp.INITRD_ADDR_MAX, 0x7FFFFFFF)
    struct.pack_into("<H", image, bp.XLOADFLAGS, xloadflags)
    struct.pack_into("<I", image, bp.CMDLINE_SIZE, 2047)
    struct.pack_into("<Q", image, bp.PREF_ADDRESS, pref_address)
    struct.pack_into("<I", image, bp.INIT_SIZE, init_size)
    return bytes(image) + payload


@pytest.fixture
def memory():
    mem = GuestMemory.with_hole(32 * MiB, layout.MMIO_HOLE_START, layout.MMIO_HOLE_END)
    yield mem
    mem.close()


def test_a_good_image_is_loaded_with_a_filled_zero_page(memory, tmp_path):
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"I" * 5000)
    image = fake_bzimage()
    assert is_bzimage(image)
    boot = load_bzimage(image, memory, layout.CMDLINE_ADDR, "console=ttyS0", str(initrd), "bz")
    assert (boot.entry, boot.registers, boot.boot_cpu_only) == \
        (layout.HIGH_MEMORY + 0x200, (("rsi", layout.ZERO_PAGE_ADDR),), True)
    assert memory.read(layout.HIGH_MEMORY, 4096) == b"\x90" * 4096
    zero = memory.read(layout.ZERO_PAGE_ADDR, 4096)
    assert zero[bp.HEADER_MAGIC : bp.HEADER_MAGIC + 4] == b"HdrS" and zero[bp.TYPE_OF_LOADER] == 0xFF
    assert struct.unpack_from("<I", zero, bp.CMD_LINE_PTR)[0] == layout.CMDLINE_ADDR
    address, size = struct.unpack_from("<II", zero, bp.RAMDISK_IMAGE)
    assert size == 5000 and address % 4096 == 0 and address + size <= 32 * MiB
    assert memory.read(address, 5000) == b"I" * 5000
    entries = [bp.E820_ENTRY.unpack_from(zero, bp.E820_TABLE + i * 20) for i in range(zero[bp.E820_ENTRIES])]
    assert entries[0] == (0, layout.EBDA_START, bp.E820_RAM)
    assert entries[-1] == (layout.HIGH_MEMORY, 31 * MiB, bp.E820_RAM)


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"version": 0x0204}, "boot protocol 2.04 is too old"),
        ({"xloadflags": 0}, "no 64-bit entry point"),
        ({"loadflags": 0}, "zImage"),
        ({"setup_sects": 200}, "truncated"),
        ({"init_size": 64 * MiB}, "needs at least"),
        ({"pref_address": 16 * MiB, "init_size": 20 * MiB}, "needs at least 36 MiB"),
    ],
)
def test_bad_kernels_are_one_clear_error(memory, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_bzimage(fake_bzimage(**changes), memory, layout.CMDLINE_ADDR, "", None, "bz")


def test_missing_and_oversized_initrds(memory, tmp_path):
    with pytest.raises(ConfigError, match="no such initrd"):
        load_bzimage(fake_bzimage(), memory, layout.CMDLINE_ADDR, "", str(tmp_path / "nope"), "bz")
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(30 * MiB)
    with pytest.raises(ConfigError, match="does not fit"):
        load_bzimage(fake_bzimage(), memory, layout.CMDLINE_ADDR, "", str(big), "bz")


def test_initrd_goes_high_but_below_the_limit(memory):
    assert place_initrd(memory, 4096, limit=0x7FFFFFFF, kernel_end=2 * MiB, name="i") == 32 * MiB - 4096
    assert place_initrd(memory, 4096, limit=16 * MiB - 1, kernel_end=2 * MiB, name="i") == 16 * MiB - 4096


def test_mptable_checksums_and_counts():
    table = build_mptable(cpus=2)
    pointer, config = table[:16], table[16:]
    assert pointer[:4] == b"_MP_" and sum(pointer) & 0xFF == 0
    length = struct.unpack_from("<H", config, 4)[0]
    assert config[:4] == b"PCMP" and sum(config[:length]) & 0xFF == 0
    entry_count = struct.unpack_from("<H", config, 34)[0]
    assert entry_count == 2 + 2 + 1 + layout.IOAPIC_PINS + 2
    processors = [config[44 + 20 * i : 44 + 20 * (i + 1)] for i in range(2)]
    assert [p[1] for p in processors] == [0, 1] and processors[0][3] == 3 and processors[1][3] == 1
    buses = config[44 + 40 : 44 + 40 + 16]
    assert buses == b"\x01\x00ISA   \x01\x01PCI   "


def test_mptable_routes_each_pci_slot_s_inta_to_its_ioapic_input_edge_high():
    table = build_mptable(cpus=1, pci_routes=[(1, 5), (2, 6)])
    config = table[16:]
    length = struct.unpack_from("<H", config, 4)[0]
    assert sum(config[:length]) & 0xFF == 0
    assert struct.unpack_from("<H", config, 34)[0] == 1 + 2 + 1 + layout.IOAPIC_PINS + 2 + 2
    entries, offset = [], 44
    while offset < length:
        size = 20 if config[offset] == 0 else 8  # processor entries are 20 bytes, the rest 8
        entries.append(config[offset:offset + size])
        offset += size
    pci = [entry for entry in entries if entry[0] == 3 and entry[4] == 1]  # I/O interrupt, source bus 1: PCI
    # type, INT, flags (edge, active high), bus, source = slot << 2 | INTA, IOAPIC id, pin
    assert pci == [bytes([3, 0, 0b0101, 0, 1, 1 << 2, 1, 5]), bytes([3, 0, 0b0101, 0, 1, 2 << 2, 1, 6])]


def test_a_command_line_with_undecodable_bytes_reaches_the_guest_as_typed(memory):
    """argv's bytes that are not UTF-8 arrive as escapes in the str; the guest gets the
    original bytes (this was a traceback; found by the cmdline fuzz target)."""
    from kvmpy.loader.image import write_cmdline

    typed = b"console=ttyS0 label=\xff\xfe"
    address = write_cmdline(memory, typed.decode("utf-8", "surrogateescape"))
    assert memory.read(address, len(typed) + 1) == typed + b"\0"
