"""virtio-blk's request parsing: whole rings a hostile driver writes (plausible chains, then
corrupted descriptors, jumps of the avail index, indirect tables), kicked through the mmio
or the pci transport (kvmpy/virtio/hostile.py holds the driver and its properties)."""

from ._virtio import play_hostile_rings


def one_input(data: bytes) -> None:
    play_hostile_rings("blk", data)
