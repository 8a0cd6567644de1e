"""cffi build script (API mode) for `kvmpy._kvm`: the KVM ioctl surface kvmpy uses.

Struct layouts and ioctl numbers are resolved by the C compiler against <linux/kvm.h> at
build time (`...` in the declarations below), so nothing here copies a number or an offset.
`setup.py` builds this through `cffi_modules`; `python native/build_kvm.py` builds it in
place for development.
"""

import os
import pathlib

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent

IOCTLS = """
KVM_GET_API_VERSION KVM_CREATE_VM KVM_CHECK_EXTENSION KVM_GET_VCPU_MMAP_SIZE
KVM_GET_SUPPORTED_CPUID KVM_GET_MSR_INDEX_LIST
KVM_CREATE_VCPU KVM_SET_USER_MEMORY_REGION KVM_SET_TSS_ADDR KVM_SET_IDENTITY_MAP_ADDR
KVM_CREATE_IRQCHIP KVM_CREATE_PIT2 KVM_IRQ_LINE KVM_IRQFD KVM_IOEVENTFD
KVM_RUN KVM_GET_REGS KVM_SET_REGS KVM_GET_SREGS KVM_SET_SREGS KVM_GET_FPU KVM_SET_FPU
KVM_GET_MSRS KVM_SET_MSRS KVM_SET_CPUID2 KVM_GET_CPUID2 KVM_GET_MP_STATE KVM_SET_MP_STATE
KVM_GET_XSAVE KVM_SET_XSAVE KVM_GET_XCRS KVM_SET_XCRS KVM_GET_LAPIC KVM_SET_LAPIC
KVM_GET_VCPU_EVENTS KVM_SET_VCPU_EVENTS KVM_GET_DEBUGREGS KVM_SET_DEBUGREGS KVM_SET_GUEST_DEBUG KVM_SET_SIGNAL_MASK
""".split()

CONSTANTS = """
KVM_API_VERSION
KVM_EXIT_UNKNOWN KVM_EXIT_EXCEPTION KVM_EXIT_IO KVM_EXIT_HYPERCALL KVM_EXIT_DEBUG
KVM_EXIT_HLT KVM_EXIT_MMIO KVM_EXIT_IRQ_WINDOW_OPEN KVM_EXIT_SHUTDOWN KVM_EXIT_FAIL_ENTRY
KVM_EXIT_INTR KVM_EXIT_NMI KVM_EXIT_INTERNAL_ERROR KVM_EXIT_SYSTEM_EVENT
KVM_EXIT_IO_IN KVM_EXIT_IO_OUT
KVM_INTERNAL_ERROR_EMULATION KVM_INTERNAL_ERROR_SIMUL_EX KVM_INTERNAL_ERROR_DELIVERY_EV
KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
KVM_SYSTEM_EVENT_SHUTDOWN KVM_SYSTEM_EVENT_RESET KVM_SYSTEM_EVENT_CRASH
KVM_CAP_IRQCHIP KVM_CAP_HLT KVM_CAP_USER_MEMORY KVM_CAP_SET_TSS_ADDR KVM_CAP_EXT_CPUID
KVM_CAP_NR_VCPUS KVM_CAP_MAX_VCPUS KVM_CAP_NR_MEMSLOTS KVM_CAP_PIT2 KVM_CAP_IRQFD
KVM_CAP_IOEVENTFD KVM_CAP_IMMEDIATE_EXIT KVM_CAP_XSAVE KVM_CAP_XCRS KVM_CAP_SET_IDENTITY_MAP_ADDR
KVM_CAP_INTERNAL_ERROR_DATA KVM_CAP_ADJUST_CLOCK KVM_CAP_TSC_CONTROL KVM_CAP_SET_GUEST_DEBUG KVM_CAP_SET_GUEST_DEBUG2
KVM_CAP_MP_STATE KVM_CAP_VCPU_EVENTS KVM_CAP_X86_ROBUST_SINGLESTEP KVM_CAP_TSC_DEADLINE_TIMER
KVM_PIT_SPEAKER_DUMMY KVM_IOEVENTFD_FLAG_DATAMATCH KVM_IOEVENTFD_FLAG_PIO
KVM_IOEVENTFD_FLAG_DEASSIGN KVM_IRQFD_FLAG_DEASSIGN
KVM_MP_STATE_RUNNABLE KVM_MP_STATE_UNINITIALIZED KVM_MP_STATE_HALTED
KVM_GUESTDBG_ENABLE KVM_GUESTDBG_SINGLESTEP KVM_GUESTDBG_USE_HW_BP KVM_GUESTDBG_USE_SW_BP KVM_GUESTDBG_BLOCKIRQ

""".split()

CDEF = """
struct kvm_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
    uint64_t rip, rflags;
};
struct kvm_segment {
    uint64_t base; uint32_t limit; uint16_t selector;
    uint8_t type, present, dpl, db, s, l, g, avl, unusable;
    ...;
};
struct kvm_dtable { uint64_t base; uint16_t limit; ...; };
struct kvm_sregs {
    struct kvm_segment cs, ds, es, fs, gs, ss, tr, ldt;
    struct kvm_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
    unsigned long long interrupt_bitmap[...];
};
struct kvm_fpu {
    uint8_t fpr[8][16]; uint16_t fcw, fsw; uint8_t ftwx; uint16_t last_opcode;
    uint64_t last_ip, last_dp; uint8_t xmm[16][16]; uint32_t mxcsr;
    ...;
};
struct kvm_xsave { uint32_t region[1024]; ...; };
struct kvm_xcr { uint32_t xcr; uint64_t value; ...; };
struct kvm_xcrs { uint32_t nr_xcrs; uint32_t flags; struct kvm_xcr xcrs[...]; ...; };
struct kvm_msr_entry { uint32_t index; uint64_t data; ...; };
struct kvm_msrs { uint32_t nmsrs; struct kvm_msr_entry entries[]; ...; };
struct kvm_msr_list { uint32_t nmsrs; uint32_t indices[]; ...; };
struct kvm_cpuid_entry2 {
    uint32_t function, index, flags, eax, ebx, ecx, edx;
    ...;
};
struct kvm_cpuid2 { uint32_t nent; struct kvm_cpuid_entry2 entries[]; ...; };
struct kvm_mp_state { uint32_t mp_state; };
struct kvm_userspace_memory_region {
    uint32_t slot, flags; uint64_t guest_phys_addr, memory_size, userspace_addr;
};
struct kvm_irq_level { uint32_t irq; uint32_t level; ...; };
struct kvm_irqchip { ...; };
struct kvm_pit_config { uint32_t flags; ...; };
struct kvm_irqfd { uint32_t fd, gsi, flags, resamplefd; ...; };
struct kvm_ioeventfd { uint64_t datamatch, addr; uint32_t len; int32_t fd; uint32_t flags; ...; };
struct kvm_lapic_state { char regs[...]; };
struct kvm_vcpu_events { ...; };
struct kvm_debug_exit_arch { uint32_t exception, pad; uint64_t pc, dr6, dr7; };
struct kvm_guest_debug_arch { unsigned long long debugreg[8]; };  /* __u64, as the header spells it */
struct kvm_guest_debug { uint32_t control; uint32_t pad; struct kvm_guest_debug_arch arch; };

struct kvm_run {
    uint8_t request_interrupt_window;
    uint8_t immediate_exit;
    uint32_t exit_reason;
    uint8_t ready_for_interrupt_injection;
    uint8_t if_flag;
    uint16_t flags;
    uint64_t cr8;
    uint64_t apic_base;
    /* The exit union is spelled out exactly (cffi cannot check anonymous members), with
       the header's 256-byte padding so its size matches. */
    union {
        struct { uint64_t hardware_exit_reason; } hw;
        struct { uint64_t hardware_entry_failure_reason; uint32_t cpu; } fail_entry;
        struct { uint32_t exception; uint32_t error_code; } ex;
        struct { uint8_t direction; uint8_t size; uint16_t port; uint32_t count;
                 uint64_t data_offset; } io;
        struct { struct kvm_debug_exit_arch arch; } debug;
        struct { uint64_t phys_addr; uint8_t data[8]; uint32_t len; uint8_t is_write; } mmio;
        struct { uint32_t suberror; uint32_t ndata; uint64_t data[16]; } internal;
        struct { uint32_t suberror; uint32_t ndata; uint64_t flags;
                 uint8_t insn_size; uint8_t insn_bytes[15]; } emulation_failure;
        struct { uint32_t type; uint32_t ndata; uint64_t data[16]; } system_event;
        char padding[256];
    };
    ...;
};

int kvmpy_ioctl_ptr(int fd, unsigned long request, void *arg);
int kvmpy_ioctl_int(int fd, unsigned long request, unsigned long arg);
int kvmpy_kvm_run(int vcpu_fd);
int kvmpy_install_kick_handler(int signum);
int kvmpy_run_port_loop(int vcpu_fd, struct kvm_run *run, uint16_t port, uint64_t *count);
void kvmpy_host_countdown(uint64_t iterations);
void kvmpy_host_x87_loop(uint64_t iterations);
void kvmpy_host_avx2_loop(uint64_t iterations);
uint64_t kvmpy_rdtsc(void);
uint64_t kvmpy_monotonic_ns(void);
""" + "".join(f"#define {name} ...\n" for name in IOCTLS + CONSTANTS)

def _path(path) -> str:
    """setuptools wants paths relative to the project root (where it runs); a direct run
    compiles inside cffi's temporary directory and needs absolute ones."""
    return str(path) if __name__ == "__main__" else os.path.relpath(path)


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "kvmpy._kvm",
    '#include "kvm_shim.h"',
    sources=[_path(HERE / "kvm_shim.c")],
    include_dirs=[_path(HERE)],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", f"-Wa,-I{_path(HERE)}"],  # compute_blocks.inc
)

if __name__ == "__main__":
    from _inplace import compile_in_place

    compile_in_place(ffibuilder)
