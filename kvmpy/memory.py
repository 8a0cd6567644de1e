"""Guest RAM: mmap-backed regions at guest-physical addresses, with checked access.

Every read and write the VMM makes on the guest's behalf goes through this module, so an
address or length chosen by a (possibly hostile) guest can never reach host memory outside
the guest's own RAM.  Nothing here knows about KVM, which keeps it unit-testable.
"""

from __future__ import annotations

import mmap
import struct

from .errors import ConfigError, GuestMemoryError


class MemoryRegion:
    """One contiguous run of guest-physical RAM backed by an anonymous host mapping."""

    def __init__(self, guest_addr: int, size: int):
        if size <= 0 or size % mmap.PAGESIZE or guest_addr % mmap.PAGESIZE:
            raise ConfigError(f"memory region {guest_addr:#x}+{size:#x} must be page aligned and non-empty")
        self.guest_addr = guest_addr
        self.size = size
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
        self.backing = mmap.mmap(-1, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)

    def __repr__(self) -> str:
        return f"MemoryRegion({self.guest_addr:#x}, {self.size:#x})"

    @property
    def end(self) -> int:
        return self.guest_addr + self.size


class GuestMemory:
    """The guest's RAM as a sorted list of non-overlapping regions."""

    def __init__(self, regions: list[MemoryRegion]):
        ordered = sorted(regions, key=lambda r: r.guest_addr)
        for before, after in zip(ordered, ordered[1:]):
            if before.end > after.guest_addr:
                raise ConfigError(f"memory regions overlap at {after.guest_addr:#x}")
        self.regions = ordered
        self.size = sum(r.size for r in ordered)

    @classmethod
    def with_hole(cls, size: int, hole_start: int, hole_end: int) -> "GuestMemory":
        """RAM of `size` bytes from address 0, skipping the MMIO hole [hole_start, hole_end)."""
        if size <= 0:
            raise ConfigError("guest memory size must be positive")
        below = min(size, hole_start)
        regions = []
        try:
            regions.append(MemoryRegion(0, below))
            if size > below:
                regions.append(MemoryRegion(hole_end, size - below))
        except OSError as error:  # more than the host will map (overcommit policy, address-space limit)
            for region in regions:
                region.backing.close()
            raise ConfigError(f"the host cannot give {size >> 20} MiB of guest RAM ({error.strerror}); "
                              "ask for less --mem") from None
        return cls(regions)

    def _locate(self, gpa: int, length: int) -> tuple[MemoryRegion, int]:
        """The region holding [gpa, gpa+length) entirely, and the offset of gpa in it."""
        if length < 0 or gpa < 0:
            raise GuestMemoryError(f"invalid guest access {gpa:#x}+{length:#x}")
        for region in self.regions:
            if region.guest_addr <= gpa and gpa + length <= region.end:
                return region, gpa - region.guest_addr
        raise GuestMemoryError(f"guest access {gpa:#x}+{length:#x} is outside guest RAM")

    def contains(self, gpa: int, length: int = 1) -> bool:
        try:
            self._locate(gpa, length)
        except GuestMemoryError:
            return False
        return True

    def view(self, gpa: int, length: int) -> memoryview:
        """A writable window onto guest RAM; it never spans two regions."""
        region, offset = self._locate(gpa, length)
        return memoryview(region.backing)[offset : offset + length]

    def read(self, gpa: int, length: int) -> bytes:
        region, offset = self._locate(gpa, length)
        return region.backing[offset : offset + length]

    def write(self, gpa: int, data: bytes) -> None:
        region, offset = self._locate(gpa, len(data))
        region.backing[offset : offset + len(data)] = data

    def fill(self, gpa: int, length: int, value: int = 0) -> None:
        self.write(gpa, bytes([value]) * length)

    def read_int(self, gpa: int, size: int) -> int:
        return int.from_bytes(self.read(gpa, size), "little")

    def write_int(self, gpa: int, size: int, value: int) -> None:
        self.write(gpa, (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little"))

    def read_struct(self, gpa: int, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.read(gpa, fmt.size))

    def write_struct(self, gpa: int, fmt: struct.Struct, *values) -> None:
        self.write(gpa, fmt.pack(*values))

    def close(self) -> None:
        for region in self.regions:
            region.backing.close()
