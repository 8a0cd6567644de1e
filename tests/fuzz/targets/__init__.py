"""The fuzz targets: one module per parser or device, each with `one_input(data: bytes)`.

A target returns normally for every input the VMM handles as designed (including a clean
refusal: the ConfigError a user sees as one line, a device flagged DEVICE_NEEDS_RESET, an
Rlerror) and raises for anything else: an exception the design does not expect, an access
outside guest RAM, an invariant broken.  A target's seeds are the files in
tests/fuzz/corpus/TARGET/.  The interpreter's target is C (tests/fuzz/native/interp_fuzz.c);
it is listed here by name so every tool sees one list.
"""

PYTHON_TARGETS = (
    "bzimage", "elf", "multiboot", "initrd", "cmdline", "exits",
    "serial", "i8042", "rtc", "acpi_pm", "pci_config",
    "virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "virtio_rng", "virtio_console",
    "p9_messages", "gdb_packets",
)  # fmt: skip
NATIVE_TARGETS = ("interp",)
ALL_TARGETS = PYTHON_TARGETS + NATIVE_TARGETS
