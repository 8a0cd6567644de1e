"""What only the KVM accelerator does: the emulation-failure fallback, unhandled-exit reports,
the syscall probe. (Every guest's result under both accelerators: tests/machine.)"""

from kvmpy.errors import GuestError
from kvmpy.machine import Machine

MiB = 1 << 20


def run_guest(path, cmdline="", cpus=1, timeout=60):
    output = bytearray()
    with Machine(mem_size=32 * MiB, cpus=cpus, serial_output=output.extend) as machine:
        machine.load(path, cmdline)
        reason = machine.run(timeout=timeout)
    return reason, output.decode()


def test_unhandled_exit_reports_registers(guest):
    from kvmpy.exits.kinds import FailEntry, Unhandled
    from kvmpy.vcpu.runner import describe_unhandled

    with Machine(mem_size=32 * MiB, serial_output=lambda data: None) as machine:
        machine.load(guest("hello"))
        text = describe_unhandled(machine.vcpus[0], Unhandled(FailEntry(0x21, 0), "VM entry failed"))
    assert text.startswith("VM entry failed: rip=0x100000") and "cr0=" in text
    assert issubclass(GuestError, Exception)


def test_instructions_kvm_cannot_emulate_are_run_by_the_fallback(guest):
    """Here (PVM) KVM fails on int3/popcnt/stac/clac/xsave/xrstor at ring 0; with VT-x it does not."""
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="kvm", fallback_burst=0) as machine:
        machine.load(guest("fallback"))
        bare = machine.run(timeout=60)
    with Machine(mem_size=32 * MiB, serial_output=lambda data: None, accel="kvm") as machine:
        machine.load(guest("fallback"))
        helped = machine.run(timeout=60)
        fallbacks = machine.stats()["fallbacks"]
    assert (helped.kind, helped.exit_code) == ("verdict", 0), helped.message
    if bare.kind == "verdict":  # hardware virtualization: KVM ran everything itself
        assert bare.exit_code == 0 and not fallbacks
    else:
        assert bare.kind == "error" and "could not emulate" in bare.message and "instruction bytes" in bare.message
        assert set(fallbacks) <= {"int3", "popcnt", "stac", "clac", "xsave", "xrstor", "xsetbv", "movdqu"}
        assert fallbacks and all(count >= 1 for count in fallbacks.values())


def test_syscall_probe_reports_a_ring(guest):
    reason, _ = run_guest(guest("syscall"))
    assert reason.kind == "verdict" and reason.exit_code in (0, 3)
