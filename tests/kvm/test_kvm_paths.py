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
    seen = f"without fallback: {bare}; with it: {helped}; fallbacks {fallbacks}"
    assert (helped.kind, helped.exit_code) == ("verdict", 0), seen
    if bare.kind == "verdict":  # hardware virtualization: KVM ran everything itself
        assert bare.exit_code == 0 and not fallbacks, seen
    else:
        assert bare.kind == "error" and "could not emulate" in bare.message and "instruction bytes" in bare.message, seen
        assert set(fallbacks) <= {"int3", "popcnt", "stac", "clac", "xsave", "xrstor", "xsetbv", "movdqu"}, seen
        assert fallbacks and all(count >= 1 for count in fallbacks.values()), seen


def test_syscall_probe_reports_a_ring(guest):
    reason, _ = run_guest(guest("syscall"))
    assert reason.kind == "verdict" and reason.exit_code in (0, 3)


def test_ring_speed_probe_completes():
    """`kvmpy info`'s loop probe: both loops finish with their marks. It triple-faulted under
    QEMU's emulated AMD-V (the nested lane) when ring 3 had port access through the TSS bitmap
    only; the loop guests now also run with IOPL 3."""
    from kvmpy.probe import measure_ring_speeds

    speeds = measure_ring_speeds()
    assert speeds.ring3.elapsed_ns > 0 and speeds.ring0.elapsed_ns > 0


def test_auto_runs_linux_under_kvm_exactly_where_syscall_reaches_ring_0(tmp_path):
    """On a PVM host (syscall stays in ring 3) `--accel auto` sends Linux to the interpreter; on a
    hardware-virtualization host, the nested lane included, to KVM. Other images go to KVM."""
    from kvmpy.accel import accelerator_for_image
    from kvmpy.loader import bootparams
    from kvmpy.probe import syscall_lands_in_ring0

    kernel = tmp_path / "bzImage"
    header = bytearray(1024)
    header[bootparams.HEADER_MAGIC:bootparams.HEADER_MAGIC + 4] = bootparams.HEADER_MAGIC_VALUE
    kernel.write_bytes(bytes(header))
    notices = []
    expected = "kvm" if syscall_lands_in_ring0() else "interp"
    assert accelerator_for_image("auto", str(kernel), notice=notices.append) == expected
    assert bool(notices) == (expected == "interp")
    assert accelerator_for_image("auto", str(tmp_path / "guest.elf"), notice=notices.append) == "kvm"
