/* Public interface of the kvmpy software x86 interpreter.
 *
 * This file is read both by the C compiler (through interp.h) and by cffi's cdef in
 * native/build_interp.py, so it holds only what cdef can parse: integer #defines, enums,
 * structs and prototypes.  INTERP_PRIVATE marks the interpreter's private state at the end
 * of struct interp_cpu; the build script turns it into cffi's "...;" (layout from the compiler).
 *
 * Segment, descriptor-table and CPUID records mirror KVM's struct kvm_segment, kvm_dtable
 * and kvm_cpuid_entry2 field for field, so state moves between KVM and the interpreter by
 * plain copies. */

#define INTERP_MAX_CPUID 96
#define INTERP_FXSAVE_SIZE 512
#define INTERP_YMMH_SIZE 256

/* Why interp_run returned. */
enum interp_stop {
    INTERP_STOP_BUDGET = 0,        /* max_insns instructions executed or faults delivered */
    INTERP_STOP_HLT = 1,           /* halted, and no interrupt can be delivered now */
    INTERP_STOP_SHUTDOWN = 2,      /* triple fault: the guest is dead */
    INTERP_STOP_CPL3 = 3,          /* next instruction runs at CPL 3 (INTERP_RUN_STOP_ON_CPL3) */
    INTERP_STOP_IO_ERROR = 4,      /* a Python callback raised; RIP is at the instruction */
    INTERP_STOP_REQUEST = 5,       /* cpu->stop_request was set */
    INTERP_STOP_UNIMPLEMENTED = 6, /* a valid but unimplemented instruction (INTERP_RUN_STOP_ON_UNIMPL) */
    INTERP_STOP_BREAKPOINT = 7,    /* the next instruction is at a breakpoint (INTERP_RUN_BREAKPOINTS) */
    INTERP_STOP_WATCHPOINT = 8     /* the last instruction accessed a watched range: see watch_hit */
};

/* interp_run flags. */
enum interp_run_flag {
    INTERP_RUN_STOP_ON_CPL3 = 1,   /* stop before executing anything at CPL 3 */
    INTERP_RUN_STOP_ON_UNIMPL = 2, /* stop at unimplemented instructions instead of raising #UD */
    INTERP_RUN_BREAKPOINTS = 4,    /* stop before an instruction whose linear address is in breakpoints[] */
    INTERP_RUN_NO_IRQ = 8          /* deliver no interrupt or NMI (a debugger's single step) */
};

/* What a watchpoint watches (bits of struct interp_watch.kind). */
enum interp_watch_kind {
    INTERP_WATCH_READ = 1,
    INTERP_WATCH_WRITE = 2
};

/* A debugger's watchpoint: data accesses to [addr, addr + len) of the given kind (linear
 * addresses) stop the run after the instruction, as an x86 data breakpoint traps. */
struct interp_watch {
    uint64_t addr;
    uint64_t len;
    uint32_t kind;                 /* enum interp_watch_kind bits */
    uint32_t pad;
};

/* General-purpose registers, in x86 encoding order. */
enum interp_gpr {
    INTERP_RAX = 0, INTERP_RCX = 1, INTERP_RDX = 2, INTERP_RBX = 3,
    INTERP_RSP = 4, INTERP_RBP = 5, INTERP_RSI = 6, INTERP_RDI = 7,
    INTERP_R8 = 8, INTERP_R9 = 9, INTERP_R10 = 10, INTERP_R11 = 11,
    INTERP_R12 = 12, INTERP_R13 = 13, INTERP_R14 = 14, INTERP_R15 = 15
};

/* Segment registers: the six in encoding order, then LDTR and TR. */
enum interp_seg {
    INTERP_ES = 0, INTERP_CS = 1, INTERP_SS = 2, INTERP_DS = 3,
    INTERP_FS = 4, INTERP_GS = 5, INTERP_LDTR = 6, INTERP_TR = 7
};

/* Same layout as struct kvm_segment. */
struct interp_segment {
    uint64_t base;
    uint32_t limit;                /* byte granular (already scaled by g) */
    uint16_t selector;
    uint8_t type;
    uint8_t present, dpl, db, s, l, g, avl;
    uint8_t unusable;
    uint8_t padding;
};

/* Same layout as struct kvm_dtable. */
struct interp_dtable {
    uint64_t base;
    uint16_t limit;
    uint16_t padding[3];
};

/* Same layout as struct kvm_cpuid_entry2. */
struct interp_cpuid_entry {
    uint32_t function;
    uint32_t index;
    uint32_t flags;                /* bit 0: index is significant (KVM_CPUID_FLAG_SIGNIFCANT_INDEX) */
    uint32_t eax, ebx, ecx, edx;
    uint32_t padding[3];
};

/* One run of guest RAM.  Guest-physical accesses outside every region are MMIO. */
struct interp_region {
    uint64_t gpa;
    uint64_t size;
    uint8_t *host;
};

/* Model-specific registers the interpreter keeps itself; others go to interp_rdmsr/wrmsr. */
struct interp_msrs {
    uint64_t star, lstar, cstar, sfmask, kernel_gs_base;
    uint64_t sysenter_cs, sysenter_esp, sysenter_eip;
    uint64_t tsc_offset;           /* guest TSC = host TSC + tsc_offset */
    uint64_t tsc_aux, apic_base, pat, misc_enable;
};

struct interp_cpu {
    uint64_t gpr[16];
    uint64_t rip;
    uint64_t rflags;
    struct interp_segment seg[8];  /* indexed by enum interp_seg */
    struct interp_dtable gdt, idt;
    uint64_t cr0, cr2, cr3, cr4, cr8;
    uint64_t efer;
    uint64_t xcr0;
    uint64_t dr[8];
    struct interp_msrs msr;
    /* x87/SSE state as the 512-byte FXSAVE image (64-bit layout: FIP/FDP are 64-bit) and
     * the upper halves of YMM0-15 (XSAVE component 2, standard layout). */
    uint8_t fxsave[512];
    uint8_t ymmh[256];
    struct interp_cpuid_entry cpuid[96];
    uint32_t ncpuid;
    uint32_t nregions;
    struct interp_region *regions;
    void *ctx;                     /* handed to every callback */
    uint64_t insn_count;           /* instructions retired, ever */
    uint32_t stop_request;         /* set (from any thread) to stop at the next check */
    uint8_t halted;
    uint8_t int_shadow;            /* interrupts blocked for one instruction (sti, mov ss) */
    uint8_t irq_pending;           /* an external interrupt waits: interp_ack_irq gives its vector */
    uint8_t nmi_pending;           /* an NMI waits; cleared when delivered */
    uint8_t callback_error;        /* set by the Python callback wrappers when they fail */
    uint8_t pad0[3];
    uint32_t shutdown_vector;      /* the exception that turned into the triple fault */
    uint32_t pad1;
    /* Debugger support (kvmpy/gdb): arrays owned by the caller, which changes them only
     * between runs.  Breakpoints are checked with INTERP_RUN_BREAKPOINTS, watchpoints on
     * every data access while nwatches > 0.  interp_reset leaves them alone (a debugger's
     * breakpoints outlive an INIT). */
    const uint64_t *breakpoints;   /* linear addresses */
    const struct interp_watch *watches;
    uint32_t nbreakpoints;
    uint32_t nwatches;
    int32_t watch_hit;             /* watches[] index behind INTERP_STOP_WATCHPOINT, else -1 */
    uint32_t pad2;
    INTERP_PRIVATE
};

/* Put the CPU into the architectural reset state (real mode, CS:IP = F000:FFF0). */
void interp_reset(struct interp_cpu *cpu);
/* Execute up to max_insns instructions (each fault delivered counts as one); returns an enum interp_stop. */
int interp_run(struct interp_cpu *cpu, uint64_t max_insns, int flags);
/* Mnemonic of the instruction at CS:RIP ("?" if it cannot be fetched or is unknown). */
const char *interp_mnemonic(struct interp_cpu *cpu);
/* Drop every cached translation (call after changing CR3/CR0/CR4/EFER/page tables from outside). */
void interp_flush_tlb(struct interp_cpu *cpu);
