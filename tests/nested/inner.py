#!/usr/bin/env python3
"""What tests/nested/test_lane.py runs inside the hardware-virtualization lane.

    inner.py OUT    writes OUT/info.txt and OUT/info.status (`kvmpy info`), OUT/guest.txt (a
                    2-vCPU Linux guest's user-space output under --accel kvm), runs pytest -v
                    over INNER_SELECTION (one "NODEID OUTCOME" line per test on the console,
                    so what finished counts even if the lane dies), and exits with its status.

Everything the lane's KVM is for is selected: the tiny guests and tests/kvm under --accel kvm,
and the Linux tests' `hwvirt` parameters (user space, 2 vCPUs, virtio-blk/-rng/-net over both
virtio paths). The differential suite stays outside: in the lane its "hardware" is QEMU's TCG.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's kvmpy, whichever one pip may have installed
INNER_SELECTION = ["tests/kvm", "tests/machine", "tests/linux", "-m", "(kvm or hwvirt) and not differential",
                   # Its [kvm-exit] run hung the lane once (no output for 10 min, cause not found yet):
                   # left out until it is understood; the same test runs on the outer host.
                   # Breakpoints under KVM (the gdb stub's tests, the debug session's breakpoint
                   # test) are left out too: in the lane, whose AMD-V is QEMU TCG's, neither a
                   # debug-register breakpoint nor a planted int3 stops the guest (its VMRUN does
                   # not arm the VMCB's DR7; int3 is checked against the SWINT intercept, not #BP's);
                   # single steps do work and stay in.
                   "-k", "not test_synced_data_survives_sigkill_of_the_vmm and not test_gdb_"
                         " and not test_software_and_hardware_breakpoints_stop_where_asked"]
GUEST_COMMAND = "echo user space on $(nproc) vCPUs says $((6 * 7)); uname -r"


def kvmpy_info(out: pathlib.Path) -> None:
    info = subprocess.run([sys.executable, "-m", "kvmpy", "info"], capture_output=True, text=True)
    (out / "info.txt").write_text(info.stdout + info.stderr)
    (out / "info.status").write_text(f"{info.returncode}\n")
    print(info.stdout + info.stderr, flush=True)


def user_space_guest(out: pathlib.Path) -> None:
    sys.path.insert(0, str(REPO / "boot" / "linux"))
    from build_kernel import ensure_kernel

    from kvmpy.initramfs import ensure_initramfs
    from kvmpy.linux import run_command

    result = run_command(str(ensure_kernel()), GUEST_COMMAND, str(ensure_initramfs()), cpus=2, accel="kvm",
                         timeout=600)
    report = f"status={result.status} accel={result.stats['accel']}\n{result.output}"
    (out / "guest.txt").write_text(report)
    print(report, flush=True)


def main() -> int:
    """Run what an earlier attempt in OUT has not: OUT/done.txt lists the test ids that finished."""
    out = pathlib.Path(sys.argv[1])
    if not (out / "info.status").is_file():
        kvmpy_info(out)
    if not (out / "guest.txt").is_file():
        user_space_guest(out)
    done = (out / "done.txt").read_text().splitlines() if (out / "done.txt").is_file() else []
    deselect = [argument for nodeid in done if nodeid for argument in ("--deselect", nodeid)]
    pytest = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--color=no", "-v", "-rfEs",
                             *INNER_SELECTION, *deselect], cwd=REPO)
    return pytest.returncode


if __name__ == "__main__":
    sys.exit(main())
