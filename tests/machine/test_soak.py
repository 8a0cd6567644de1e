"""Soak: 200 create / run / destroy cycles of a machine with every device attached (virtio
disk, network on a TAP, entropy and console) leave no fd, thread, TAP or memory behind."""

import os
import threading

import pytest

from kvmpy.machine import Machine

pytestmark = pytest.mark.hostile

CYCLES = 200
WARM_UP = 5  # the first cycles load modules and fill caches; the figures start after them
RSS_SLACK_KIB = 8192  # allocator noise (~1-2 MiB measured over 200 cycles)
VM_SLACK_KIB = 65536  # address space: one leaked guest RAM mapping per cycle would be 200 x 32 MiB
MiB = 1 << 20


def figures() -> dict[str, int]:
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {"fds": len(os.listdir("/proc/self/fd")), "threads": threading.active_count(),
            "tasks": len(os.listdir("/proc/self/task")), "links": len(os.listdir("/sys/class/net")),
            "rss_kib": int(fields["VmRSS"].split()[0]), "vm_kib": int(fields["VmSize"].split()[0])}


def cycle(guest_image: str, disk: str, accel: str) -> None:
    from kvmpy.virtio import BlockDevice, ConsoleDevice, NetDevice, RngDevice
    from kvmpy.virtio.tap import open_tap

    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel=accel) as machine:
        machine.add_virtio(BlockDevice(disk))
        machine.add_virtio(NetDevice(open_tap("auto")))
        machine.add_virtio(RngDevice())
        machine.add_virtio(ConsoleDevice(lambda data: None))
        machine.load(guest_image)
        reason = machine.run(timeout=30)
    assert (reason.kind, reason.exit_code) == ("verdict", 0), reason


def test_create_run_destroy_cycles_leave_nothing_behind(guest, tmp_path, accel):
    if os.geteuid() != 0:
        pytest.skip("the network device's TAP needs root")
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    for _ in range(WARM_UP):
        cycle(guest("hello"), str(disk), accel)
    before = figures()
    for _ in range(CYCLES):
        cycle(guest("hello"), str(disk), accel)
    after = figures()
    print(f"{accel}: {CYCLES} cycles, before {before}, after {after}")
    for name in ("fds", "threads", "tasks", "links"):
        assert after[name] == before[name], (name, before, after)
    assert after["rss_kib"] - before["rss_kib"] < RSS_SLACK_KIB, (before, after)
    assert after["vm_kib"] - before["vm_kib"] < VM_SLACK_KIB, (before, after)
