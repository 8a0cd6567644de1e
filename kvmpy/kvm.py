"""The /dev/kvm system handle: API version, capabilities, and what the host can offer a guest."""

from __future__ import annotations

import errno
import os

from .errors import ConfigError, KvmError
from .native import ffi, ioctl, ioctl_int, lib

KVM_DEVICE = "/dev/kvm"
MAX_CPUID_ENTRIES = 256  # room for every leaf any current CPU reports
MAX_MSR_INDICES = 1024

#: Capabilities `kvmpy info` reports, by the name users know them under.
NAMED_CAPABILITIES = {
    "irqchip": lib.KVM_CAP_IRQCHIP,
    "pit2": lib.KVM_CAP_PIT2,
    "irqfd": lib.KVM_CAP_IRQFD,
    "ioeventfd": lib.KVM_CAP_IOEVENTFD,
    "immediate_exit": lib.KVM_CAP_IMMEDIATE_EXIT,
    "xsave": lib.KVM_CAP_XSAVE,
    "xcrs": lib.KVM_CAP_XCRS,
    "set_identity_map_addr": lib.KVM_CAP_SET_IDENTITY_MAP_ADDR,
    "internal_error_data": lib.KVM_CAP_INTERNAL_ERROR_DATA,
    "set_guest_debug": lib.KVM_CAP_SET_GUEST_DEBUG,
    "vcpu_events": lib.KVM_CAP_VCPU_EVENTS,
    "mp_state": lib.KVM_CAP_MP_STATE,
    "tsc_deadline_timer": lib.KVM_CAP_TSC_DEADLINE_TIMER,
}


class Kvm:
    """An open /dev/kvm; creates VMs and answers questions about the host's KVM."""

    def __init__(self, path: str = KVM_DEVICE):
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ConfigError(f"{path} does not exist: this host has no KVM (try --accel interp)") from None
        except PermissionError:
            raise ConfigError(f"no permission to open {path} (add yourself to the kvm group)") from None
        version = ioctl_int(self.fd, lib.KVM_GET_API_VERSION, 0, "KVM_GET_API_VERSION")
        if version != lib.KVM_API_VERSION:
            os.close(self.fd)
            raise KvmError(f"KVM API version {version} (expected {lib.KVM_API_VERSION})", errno.ENOTSUP)
        self.api_version = version
        self._vcpu_mmap_size = None

    def check_extension(self, capability: int) -> int:
        """KVM_CHECK_EXTENSION: 0 when absent, else a capability-specific positive value."""
        return ioctl_int(self.fd, lib.KVM_CHECK_EXTENSION, capability, "KVM_CHECK_EXTENSION")

    def capabilities(self) -> dict[str, int]:
        return {name: self.check_extension(cap) for name, cap in NAMED_CAPABILITIES.items()}

    @property
    def recommended_vcpus(self) -> int:
        return self.check_extension(lib.KVM_CAP_NR_VCPUS) or 4

    @property
    def max_vcpus(self) -> int:
        return self.check_extension(lib.KVM_CAP_MAX_VCPUS) or self.recommended_vcpus

    @property
    def max_memslots(self) -> int:
        return self.check_extension(lib.KVM_CAP_NR_MEMSLOTS) or 32

    @property
    def vcpu_mmap_size(self) -> int:
        if self._vcpu_mmap_size is None:
            self._vcpu_mmap_size = ioctl_int(
                self.fd, lib.KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE"
            )
        return self._vcpu_mmap_size

    def supported_cpuid(self) -> list[dict]:
        """KVM_GET_SUPPORTED_CPUID as a list of entry dicts (function, index, flags, eax..edx)."""
        cpuid = ffi.new("struct kvm_cpuid2 *", {"nent": MAX_CPUID_ENTRIES, "entries": MAX_CPUID_ENTRIES})
        ioctl(self.fd, lib.KVM_GET_SUPPORTED_CPUID, cpuid, "KVM_GET_SUPPORTED_CPUID")
        fields = ("function", "index", "flags", "eax", "ebx", "ecx", "edx")
        return [{f: getattr(cpuid.entries[i], f) for f in fields} for i in range(cpuid.nent)]

    def msr_index_list(self) -> list[int]:
        msr_list = ffi.new("struct kvm_msr_list *", {"nmsrs": MAX_MSR_INDICES, "indices": MAX_MSR_INDICES})
        ioctl(self.fd, lib.KVM_GET_MSR_INDEX_LIST, msr_list, "KVM_GET_MSR_INDEX_LIST")
        return [msr_list.indices[i] for i in range(msr_list.nmsrs)]

    def create_vm(self):
        from .vm import Vm

        return Vm(self)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def kvm_usable(path: str = KVM_DEVICE) -> tuple[bool, str]:
    """Whether a VM can be created here, and if not, a one-line reason (for skips and --accel auto)."""
    try:
        with Kvm(path) as kvm:
            vm_fd = ioctl_int(kvm.fd, lib.KVM_CREATE_VM, 0, "KVM_CREATE_VM")
            os.close(vm_fd)
    except Exception as error:  # any failure means "not usable", with its reason
        return False, str(error)
    return True, ""
