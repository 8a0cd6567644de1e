"""A multiboot kernel of kvmpy's own (boot/guests/multiboot.S) on the machine: it gets its
command line and module 0 from the multiboot information, finds QEMU's fw_cfg, and, given two
vCPUs, sees the second one start only when it sends INIT and STARTUP IPIs."""

import pytest

from kvmpy.kvm import kvm_usable
from kvmpy.machine import Machine

pytestmark = pytest.mark.multiboot

MiB = 1 << 20
MODULE = b"module 0 from --initrd\n"


@pytest.fixture(params=[
    pytest.param(("interp", 1), id="interp-1cpu"),
    pytest.param(("interp", 2), id="interp-2cpus"),
    pytest.param(("kvm", 1), id="kvm-1cpu", marks=pytest.mark.kvm),
    pytest.param(("kvm", 2), id="kvm-2cpus", marks=pytest.mark.kvm),
])
def accel_and_cpus(request):
    accel, cpus = request.param
    if accel == "kvm":
        usable, why = kvm_usable()
        if not usable:
            pytest.skip(f"/dev/kvm is not usable here: {why}")
    return request.param


def test_a_multiboot_kernel_gets_its_cmdline_module_fw_cfg_and_starts_its_second_cpu_by_sipi(
        guest, tmp_path, accel_and_cpus):
    accel, cpus = accel_and_cpus
    module = tmp_path / "module.txt"
    module.write_bytes(MODULE)
    output = bytearray()
    with Machine(mem_size=32 * MiB, cpus=cpus, serial_output=output.extend, accel=accel) as machine:
        machine.load(guest("multiboot"), "console=none hello", str(module))
        reason = machine.run(timeout=60)
    lines = output.decode().splitlines()
    assert (reason.kind, reason.exit_code) == ("verdict", 0), (reason, lines)
    assert lines[:2] == ["cmdline: console=none hello", "module: " + MODULE.decode().strip()]
    assert ("second CPU started on SIPI" in lines) == (cpus == 2)
