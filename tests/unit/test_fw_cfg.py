"""fw_cfg's port interface: select an item, stream its bytes, the items QEMU's kernels read."""

import struct

import pytest

from kvmpy.devices import fw_cfg

pytestmark = pytest.mark.multiboot


def read_item(device, key, length):
    device.write(fw_cfg.SELECTOR, 2, key)
    return bytes(device.read(fw_cfg.DATA, 1) for _ in range(length))


def test_the_items_a_kernel_reads_from_qemu():
    device = fw_cfg.FwCfg(fw_cfg.machine_items(256 << 20, 2, "console=ttyS0"))
    assert read_item(device, fw_cfg.SIGNATURE, 4) == b"QEMU"
    assert struct.unpack("<I", read_item(device, fw_cfg.ID, 4))[0] == fw_cfg.FEATURE_TRADITIONAL
    assert struct.unpack("<Q", read_item(device, fw_cfg.RAM_SIZE, 8))[0] == 256 << 20
    assert struct.unpack("<H", read_item(device, fw_cfg.NB_CPUS, 2))[0] == 2
    size = struct.unpack("<I", read_item(device, fw_cfg.CMDLINE_SIZE, 4))[0]
    assert read_item(device, fw_cfg.CMDLINE_DATA, size) == b"console=ttyS0\0"
    assert read_item(device, fw_cfg.FILE_DIR, 4) == b"\0\0\0\0"  # no files


def test_reads_past_the_end_and_of_unknown_keys_give_zero_and_selecting_rewinds():
    device = fw_cfg.FwCfg({fw_cfg.SIGNATURE: b"QEMU"})
    assert read_item(device, fw_cfg.SIGNATURE, 6) == b"QEMU\0\0"
    assert read_item(device, 0x4242, 2) == b"\0\0"
    device.write(fw_cfg.SELECTOR, 2, fw_cfg.SIGNATURE)
    assert device.read(fw_cfg.DATA, 4) == int.from_bytes(b"QEMU", "little")  # a wide read streams bytes
    assert device.read(fw_cfg.SELECTOR, 2) == 0
