"""A KVM virtual machine: memory slots, the in-kernel irqchip and PIT, IRQ lines, eventfds."""

from __future__ import annotations

import os

from . import layout
from .errors import ConfigError
from .memory import GuestMemory
from .native import ffi, ioctl, ioctl_int, lib


class Vm:
    """A VM fd. Owns its memory-slot registrations; vCPUs are created from it."""

    def __init__(self, kvm):
        self.kvm = kvm
        self.fd = ioctl_int(kvm.fd, lib.KVM_CREATE_VM, 0, "KVM_CREATE_VM")
        self._next_slot = 0
        self._memory_keepalive = []  # cdata buffers KVM holds pointers into
        self.has_irqchip = False

    # --- memory -------------------------------------------------------------------------------
    def map_memory(self, memory: GuestMemory) -> None:
        """Register every region of `memory` as a KVM memory slot."""
        for region in memory.regions:
            host = ffi.from_buffer(region.backing)
            self._memory_keepalive.append(host)
            slot = ffi.new(
                "struct kvm_userspace_memory_region *",
                {
                    "slot": self._next_slot,
                    "flags": 0,
                    "guest_phys_addr": region.guest_addr,
                    "memory_size": region.size,
                    "userspace_addr": int(ffi.cast("uintptr_t", host)),
                },
            )
            ioctl(self.fd, lib.KVM_SET_USER_MEMORY_REGION, slot, f"KVM_SET_USER_MEMORY_REGION (slot {self._next_slot})")
            self._next_slot += 1

    # --- platform ----------------------------------------------------------------------------
    def setup_x86_platform(self) -> None:
        """The pieces an x86 guest expects of KVM: real-mode TSS, identity map, irqchip, PIT."""
        ioctl_int(self.fd, lib.KVM_SET_TSS_ADDR, layout.KVM_TSS_ADDR, "KVM_SET_TSS_ADDR")
        identity = ffi.new("uint64_t *", layout.KVM_IDENTITY_MAP_ADDR)
        ioctl(self.fd, lib.KVM_SET_IDENTITY_MAP_ADDR, identity, "KVM_SET_IDENTITY_MAP_ADDR")
        ioctl(self.fd, lib.KVM_CREATE_IRQCHIP, ffi.NULL, "KVM_CREATE_IRQCHIP")
        pit = ffi.new("struct kvm_pit_config *", {"flags": lib.KVM_PIT_SPEAKER_DUMMY})
        ioctl(self.fd, lib.KVM_CREATE_PIT2, pit, "KVM_CREATE_PIT2")
        self.has_irqchip = True

    def set_irq_line(self, irq: int, level: int) -> None:
        """Drive an input of the in-kernel PIC/IOAPIC."""
        line = ffi.new("struct kvm_irq_level *", {"irq": irq, "level": level})
        ioctl(self.fd, lib.KVM_IRQ_LINE, line, f"KVM_IRQ_LINE (irq {irq})")

    def register_irqfd(self, eventfd: int, gsi: int) -> None:
        """Writes to `eventfd` then inject an edge on `gsi` without leaving the kernel."""
        irqfd = ffi.new("struct kvm_irqfd *", {"fd": eventfd, "gsi": gsi, "flags": 0})
        ioctl(self.fd, lib.KVM_IRQFD, irqfd, f"KVM_IRQFD (gsi {gsi})")

    def register_ioeventfd(
        self, eventfd: int, address: int, length: int, datamatch: int | None = None, pio: bool = False
    ) -> None:
        """Guest writes to `address` signal `eventfd` in the kernel instead of exiting to us."""
        flags = (lib.KVM_IOEVENTFD_FLAG_PIO if pio else 0) | (
            lib.KVM_IOEVENTFD_FLAG_DATAMATCH if datamatch is not None else 0
        )
        request = ffi.new(
            "struct kvm_ioeventfd *",
            {"datamatch": datamatch or 0, "addr": address, "len": length, "fd": eventfd, "flags": flags},
        )
        ioctl(self.fd, lib.KVM_IOEVENTFD, request, f"KVM_IOEVENTFD ({address:#x})")

    # --- vCPUs -------------------------------------------------------------------------------
    def create_vcpu(self, index: int):
        from .vcpu.vcpu import Vcpu

        if index >= self.kvm.max_vcpus:
            raise ConfigError(f"vCPU {index} is beyond this host's limit of {self.kvm.max_vcpus}")
        return Vcpu(self, index)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self._memory_keepalive.clear()
