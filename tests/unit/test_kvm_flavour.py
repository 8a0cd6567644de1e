"""Which KVM serves /dev/kvm, read off /sys/module and /proc/cpuinfo (no VM created)."""

import pytest

from kvmpy.probe import detect_kvm_flavour


@pytest.fixture
def host(tmp_path):
    """host(modules, flags) -> (sys_module dir, cpuinfo file) describing a made-up host."""

    def make(modules, flags):
        sys_module = tmp_path / "module"
        for name in modules:
            (sys_module / name).mkdir(parents=True)
        sys_module.mkdir(exist_ok=True)
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: fpu {' '.join(flags)} sse2\n\nprocessor\t: 1\n")
        return sys_module, cpuinfo

    return make


def test_amd_v_nested_in_a_vm(host):
    flavour = detect_kvm_flavour(*host(["kvm", "kvm_amd"], ["svm", "hypervisor"]))
    assert (flavour.module, flavour.hardware, flavour.pvm, flavour.nested) == ("kvm_amd", True, False, True)
    assert flavour.describe() == ("hardware virtualization (AMD-V, kvm_amd); "
                                  "nested: this host is itself a virtual machine")
    assert "every privilege level" in flavour.meaning() and "outer hypervisor" in flavour.meaning()


def test_vt_x_on_bare_metal(host):
    flavour = detect_kvm_flavour(*host(["kvm", "kvm_intel"], ["vmx"]))
    assert flavour.describe() == "hardware virtualization (Intel VT-x, kvm_intel)"
    assert "outer hypervisor" not in flavour.meaning()


def test_pvm(host):
    flavour = detect_kvm_flavour(*host(["kvm", "kvm_pvm"], ["hypervisor"]))
    assert flavour.pvm and not flavour.hardware
    assert flavour.describe().startswith("PVM (kvm_pvm")
    assert "interpreter" in flavour.meaning()


def test_unknown_when_no_vendor_module_is_visible(host, tmp_path):
    sys_module, _ = host(["kvm"], [])
    flavour = detect_kvm_flavour(sys_module, tmp_path / "no-cpuinfo")
    assert (flavour.module, flavour.nested) == (None, False)
    assert flavour.describe().startswith("unknown")
