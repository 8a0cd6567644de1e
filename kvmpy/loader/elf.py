"""ELF images: kvmpy's tiny guests and uncompressed kernels (`vmlinux`, PVH entry).

The start mode comes from a note: kvmpy's own (owner "kvmpy", type 1: 0 real, 1 protected,
2 long) or Xen's PVH entry note (owner "Xen", type 18), which means 32-bit protected mode at
the note's address. Without a note an ELF64 starts in long mode and an ELF32 in protected mode.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from ..errors import ConfigError
from ..memory import GuestMemory
from ..vcpu.modes import StartMode

ELF_MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
EM_386 = 3
EM_X86_64 = 62
PT_LOAD = 1
PT_NOTE = 4

KVMPY_NOTE_OWNER = b"kvmpy"
KVMPY_NOTE_START_MODE = 1
XEN_NOTE_OWNER = b"Xen"
XEN_ELFNOTE_PHYS32_ENTRY = 18
XEN_ELFNOTE_GUEST_OS = 6
LINUX_NOTE_OWNER = b"Linux"
_NOTE_MODES = {0: StartMode.REAL, 1: StartMode.PROTECTED, 2: StartMode.LONG}

# (header format, program header format) by ELF class; fields named in _parse_header.
_FORMATS = {
    ELFCLASS32: (struct.Struct("<16sHHIIIIIHHHHHH"), struct.Struct("<IIIIIIII")),
    ELFCLASS64: (struct.Struct("<16sHHIQQQIHHHHHH"), struct.Struct("<IIQQQQQQ")),
}


class Segment(NamedTuple):
    kind: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int


class LoadedElf(NamedTuple):
    entry: int  # the ELF header's entry, guest-physical
    mode: StartMode  # from kvmpy's note, or the ELF class
    end: int  # first guest-physical address after the image
    pvh_entry: int | None  # the Xen PVH note's 32-bit entry, if the image has one


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def _segments(data: bytes, name: str) -> tuple[int, int, list[Segment]]:
    if len(data) < 20:
        raise ConfigError(f"{name}: truncated ELF header")
    elf_class, byte_order = data[4], data[5]
    if elf_class not in _FORMATS or byte_order != ELFDATA2LSB:
        raise ConfigError(f"{name}: not a little-endian 32/64-bit ELF image")
    header_format, phdr_format = _FORMATS[elf_class]
    if len(data) < header_format.size:
        raise ConfigError(f"{name}: truncated ELF header")
    fields = header_format.unpack_from(data)
    machine, entry, phoff, phentsize, phnum = fields[2], fields[4], fields[5], fields[9], fields[10]
    if machine not in (EM_386, EM_X86_64):
        raise ConfigError(f"{name}: ELF machine {machine} is not x86")
    if phnum == 0 or phentsize < phdr_format.size or phoff + phnum * phentsize > len(data):
        raise ConfigError(f"{name}: ELF program headers are missing or truncated")
    segments = []
    for index in range(phnum):
        raw = phdr_format.unpack_from(data, phoff + index * phentsize)
        if elf_class == ELFCLASS64:
            kind, _flags, offset, vaddr, paddr, filesz, memsz, _align = raw
        else:
            kind, offset, vaddr, paddr, filesz, memsz, _flags, _align = raw
        if kind in (PT_LOAD, PT_NOTE) and offset + filesz > len(data):
            raise ConfigError(f"{name}: ELF segment {index} runs past the end of the file")
        if kind == PT_LOAD and memsz < filesz:
            raise ConfigError(f"{name}: ELF segment {index} is smaller in memory than in the file")
        segments.append(Segment(kind, offset, vaddr, paddr, filesz, memsz))
    return elf_class, entry, segments


def _notes(data: bytes, segment: Segment):
    """(owner, type, descriptor) for each note in a PT_NOTE segment."""
    position, end = segment.offset, segment.offset + segment.filesz
    while position + 12 <= end:
        namesz, descsz, kind = struct.unpack_from("<III", data, position)
        name_start = position + 12
        desc_start = name_start + (namesz + 3) // 4 * 4
        desc_end = desc_start + descsz
        if desc_end > end:
            return
        yield data[name_start : name_start + namesz].rstrip(b"\0"), kind, data[desc_start:desc_end]
        position = desc_start + (descsz + 3) // 4 * 4


def _start(data: bytes, elf_class: int, segments: list[Segment]) -> tuple[StartMode, int | None]:
    """The start mode (kvmpy's note, else by ELF class) and the PVH entry (Xen's note), if any."""
    mode = StartMode.LONG if elf_class == ELFCLASS64 else StartMode.PROTECTED
    pvh_entry = None
    for segment in segments:
        if segment.kind != PT_NOTE:
            continue
        for owner, kind, desc in _notes(data, segment):
            if owner == KVMPY_NOTE_OWNER and kind == KVMPY_NOTE_START_MODE and len(desc) >= 4:
                mode = _NOTE_MODES.get(struct.unpack_from("<I", desc)[0], mode)
            if owner == XEN_NOTE_OWNER and kind == XEN_ELFNOTE_PHYS32_ENTRY and len(desc) >= 4:
                pvh_entry = struct.unpack_from("<I", desc)[0]
    return mode, pvh_entry


def is_linux_elf(data: bytes) -> bool:
    """A Linux `vmlinux`: it carries notes owned by "Linux" (or a Xen GUEST_OS note saying so)."""
    try:
        _class, _entry, segments = _segments(data, "image")
    except ConfigError:
        return False
    return any(owner == LINUX_NOTE_OWNER or (owner == XEN_NOTE_OWNER and kind == XEN_ELFNOTE_GUEST_OS
                                             and desc.rstrip(b"\0") == b"linux")
               for segment in segments if segment.kind == PT_NOTE for owner, kind, desc in _notes(data, segment))


def load_elf(data: bytes, memory: GuestMemory, name: str) -> LoadedElf:
    """Copy every PT_LOAD segment to its physical address; zero its tail (.bss)."""
    elf_class, entry, segments = _segments(data, name)
    loads = [s for s in segments if s.kind == PT_LOAD and s.memsz]
    if not loads:
        raise ConfigError(f"{name}: ELF image has nothing to load")
    for segment in loads:
        if not memory.contains(segment.paddr, segment.memsz):
            raise ConfigError(
                f"{name}: segment at {segment.paddr:#x}+{segment.memsz:#x} does not fit in guest RAM "
                f"({memory.size >> 20} MiB)"
            )
    for segment in loads:
        memory.write(segment.paddr, data[segment.offset : segment.offset + segment.filesz])
        memory.fill(segment.paddr + segment.filesz, segment.memsz - segment.filesz)
    mode, pvh_entry = _start(data, elf_class, segments)
    if pvh_entry is not None:
        pvh_entry = _physical(pvh_entry, loads, name)
    return LoadedElf(_physical(entry, loads, name), mode, max(s.paddr + s.memsz for s in loads), pvh_entry)


def _physical(entry: int, loads: list[Segment], name: str) -> int:
    """The guest-physical address of a (virtual) entry point, through the segment holding it."""
    for segment in loads:
        if segment.vaddr <= entry < segment.vaddr + segment.memsz:
            return entry - segment.vaddr + segment.paddr
        if segment.paddr <= entry < segment.paddr + segment.memsz:
            return entry  # PVH entries are already physical
    raise ConfigError(f"{name}: the entry point {entry:#x} is outside every loaded segment")
