"""A guest that attacks its devices (boot/guests/hostile.c): two virtio-blk devices, one on
virtio-mmio and one on virtio-pci, each given descriptors in the MMIO hole and across the
end of RAM, its own ring as a buffer, an avail index 2^15 ahead, a descriptor loop, its
queue moved under a request, a reset right after a kick, config writes and unoffered
features during negotiation, interrupt acks never raised, notifications of queues that do
not exist, and two vCPUs publishing and kicking the same queue at once.

After every attack the device is reset and must serve an honest read again; the VMM must
run to the guest's verdict with no contained device-model error, and each attack's outcome
(device status, requests used, request status) must be one the design allows.  The
outcomes are printed as a table."""

import logging
import re

import pytest

from kvmpy.machine import Machine
from kvmpy.virtio import BlockDevice

pytestmark = [pytest.mark.hostile, pytest.mark.virtio]

MiB = 1 << 20
RAM_MIB = 16
SECTORS = 64
NEEDS_RESET, FEATURES_OK, DRIVER_OK = 0x40, 0x08, 0x04
LINE = re.compile(r"attack (\w+) (mmio|pci): status=0x([0-9a-f]+) used=(\d+) blk=0x([0-9a-f]+) "
                  r"capacity=(\d+) recovered=(\d)")


def refused(status, used, blk):
    return status & NEEDS_RESET and used == 0 and blk == 0xFF


def completed(status, used, blk):
    return not status & NEEDS_RESET and used == 1 and blk == 0


# What each attack may end in: (description, check of status, used, request status).
ALLOWED = {
    "hole": ("needs reset, nothing used", refused),
    "ram_end": ("needs reset, nothing used", refused),
    "ring_itself": ("the read completes, over the guest's own ring", completed),
    "avail_jump": ("needs reset, nothing used", refused),
    "loop": ("needs reset, nothing used", refused),
    "reconfigure_in_flight": ("anything but a dead VMM", lambda status, used, blk: True),
    "reset_mid_chain": ("the reset holds; the request done or dropped",
                        lambda status, used, blk: status == 0 and (used, blk) in ((0, 0xFF), (1, 0))),
    "config_during_negotiation": ("FEATURES_OK and DRIVER_OK refused",
                                  lambda status, used, blk: not status & (FEATURES_OK | DRIVER_OK) and used == 0),
    "spurious_acks": ("the read after them completes", completed),
    "notify_storm": ("ignored", lambda status, used, blk: not status & NEEDS_RESET and used == 0),
    "two_vcpus_race": ("served, or needs reset when the racing writes broke the ring", lambda status, used, blk: True),
}


def sector_byte(sector: int) -> int:
    return 0x5A ^ sector  # what hostile.c expects on the disk


# KVM over both virtio paths; the interpreter has no ioeventfd, so only its exit path.
@pytest.fixture(params=[pytest.param(("kvm", "eventfd"), id="kvm-eventfd", marks=pytest.mark.kvm),
                        pytest.param(("kvm", "exit"), id="kvm-exit", marks=pytest.mark.kvm),
                        pytest.param(("interp", "exit"), id="interp")])
def accel_and_path(request):
    if request.param[0] == "kvm":
        from kvmpy.kvm import kvm_usable

        usable, why = kvm_usable()
        if not usable:
            pytest.skip(f"/dev/kvm is not usable here: {why}")
    return request.param


def test_the_hostile_guest_breaks_no_device_and_every_outcome_is_allowed(guest, accel_and_path, tmp_path, caplog):
    accel, virtio_path = accel_and_path
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"".join(bytes([sector_byte(n)]) * 512 for n in range(SECTORS)))
    output = bytearray()
    with caplog.at_level(logging.WARNING, logger="kvmpy"):
        with Machine(mem_size=RAM_MIB * MiB, cpus=2, serial_output=output.extend, accel=accel) as machine:
            for transport in ("mmio", "pci"):
                machine.add_virtio(BlockDevice(str(disk)), fast_path=virtio_path == "eventfd", transport=transport)
            machine.load(guest("hostile"), cmdline=str(RAM_MIB))
            reason = machine.run(timeout=300)
    console = output.decode(errors="replace")
    outcomes = [LINE.match(line) for line in console.splitlines() if line.startswith("attack ")]
    print(f"\n{'attack':<26} {'transport':<9} {'status':>6} {'used':>5} {'blk':>4}  recovered  allowed")
    for match in outcomes:
        name, transport, status, used, blk, _, recovered = match.groups()
        print(f"{name:<26} {transport:<9} {'0x' + status:>6} {used:>5} {'0x' + blk:>4}  {recovered:>9}  "
              f"{ALLOWED[name][0]}")
    assert (reason.kind, reason.exit_code) == ("verdict", 0), f"{reason}\n{console}"
    assert "hostile: done" in console, console
    assert sorted({(m.group(1), m.group(2)) for m in outcomes}) == sorted(
        (name, transport) for name in ALLOWED for transport in ("mmio", "pci")), console
    for match in outcomes:
        name, transport = match.group(1), match.group(2)
        status, used, blk = int(match.group(3), 16), int(match.group(4)), int(match.group(5), 16)
        description, allowed = ALLOWED[name]
        assert allowed(status, used, blk), f"{name} over {transport}: {match.group(0)}; allowed: {description}"
        assert int(match.group(6)) == SECTORS, f"{name} over {transport} changed the capacity: {match.group(0)}"
        assert match.group(7) == "1", f"{name} over {transport}: the device did not recover"
    contained = [record.getMessage() for record in caplog.records if record.exc_info]
    assert not contained, contained  # a device model raised: kvmpy contained it, but it is a bug
    reported = [record.getMessage() for record in caplog.records if "needs reset" in record.getMessage()]
    assert reported, "no device reported a needs-reset: the attacks did not reach the devices"
