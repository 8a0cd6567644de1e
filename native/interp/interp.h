/* Internal header of the software x86 interpreter: private CPU state, constants and the
 * small inline helpers every part of the interpreter uses. */
#ifndef KVMPY_INTERP_H
#define KVMPY_INTERP_H

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#define INTERP_PRIVATE struct interp_priv_storage priv;

/* Software TLB: direct mapped, one entry per 4 KiB linear page. */
#define TLB_ENTRIES 256
#define TLB_INVALID (~0ULL)

/* Permission bits of a TLB entry: which kinds of access may use it without a page walk. */
enum tlb_perm {
    TP_SUP_R = 1 << 0, TP_SUP_W = 1 << 1, TP_SUP_X = 1 << 2,
    TP_USR_R = 1 << 3, TP_USR_W = 1 << 4, TP_USR_X = 1 << 5,
    TP_SUP_R_SMAP = 1 << 6, TP_SUP_W_SMAP = 1 << 7   /* supervisor data access with SMAP enforced */
};

struct tlb_entry {
    uint64_t vpn;       /* linear page number, TLB_INVALID if empty */
    uint8_t *host;      /* host address of the page, NULL for MMIO */
    uint64_t pa;        /* guest-physical page address */
    uint32_t perm;      /* enum tlb_perm bits */
    uint32_t pad;
};

/* Lazy arithmetic flags: the last flag-setting operation, evaluated on demand. */
enum lazy_op { LF_NONE, LF_ADD, LF_ADC, LF_SUB, LF_SBB, LF_LOGIC, LF_INC, LF_DEC };

struct interp_priv_storage {
    jmp_buf jb;                 /* exception / stop unwinding target inside interp_run */
    uint64_t lf_res, lf_a, lf_b;
    uint32_t lf_op, lf_bits, lf_cin, pad0;
    /* mode, recomputed on CS/CR0/EFER changes */
    int cpl;
    int code64;                 /* 64-bit code segment in long mode */
    int def_size;               /* default operand/address size: 2 or 4 (8 never: 64-bit uses 4/8) */
    int stack_size;             /* 2, 4 or 8 */
    /* run control */
    int run_flags;
    int stop;                   /* -1 while running, else enum interp_stop */
    int attention;              /* check interrupts/stop/CPL before the next instruction */
    uint64_t insn_limit;
    uint64_t insn_rip;          /* RIP of the instruction being executed */
    /* exception being raised / delivered */
    int exc_vector;             /* < 0: not an exception but a stop (-1 - stop reason) */
    int exc_has_err;
    uint32_t exc_err;
    int delivering;             /* vector + 1 of the event being delivered, 0 if none */
    /* instruction fetch */
    uint64_t fetch_vpn;         /* linear page of fetch_host, TLB_INVALID if none */
    uint8_t *fetch_host;
    uint8_t fetch_buf[16];      /* bytes of an instruction fetched the slow way */
    int fetch_fault_pending;    /* a later byte of fetch_buf could not be fetched: */
    int fetch_fault_vector;     /* ... this fault is raised if the decoder needs it */
    uint32_t fetch_fault_err;
    uint64_t fetch_fault_cr2;
    int tlb_has_large;          /* some entry came from a 2M/4M/1G page (invlpg then flushes all) */
    struct tlb_entry tlb[TLB_ENTRIES];
};

#define P(cpu) (&(cpu)->priv)

/* RFLAGS bits */
#define FL_CF 0x1ULL
#define FL_FIXED1 0x2ULL
#define FL_PF 0x4ULL
#define FL_AF 0x10ULL
#define FL_ZF 0x40ULL
#define FL_SF 0x80ULL
#define FL_TF 0x100ULL
#define FL_IF 0x200ULL
#define FL_DF 0x400ULL
#define FL_OF 0x800ULL
#define FL_IOPL 0x3000ULL
#define FL_NT 0x4000ULL
#define FL_RF 0x10000ULL
#define FL_VM 0x20000ULL
#define FL_AC 0x40000ULL
#define FL_VIF 0x80000ULL
#define FL_VIP 0x100000ULL
#define FL_ID 0x200000ULL
#define FL_ARITH (FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF | FL_OF)
#define FL_IOPL_SHIFT 12

/* Control register / EFER bits */
#define CR0_PE (1ULL << 0)
#define CR0_MP (1ULL << 1)
#define CR0_EM (1ULL << 2)
#define CR0_TS (1ULL << 3)
#define CR0_ET (1ULL << 4)
#define CR0_NE (1ULL << 5)
#define CR0_WP (1ULL << 16)
#define CR0_AM (1ULL << 18)
#define CR0_NW (1ULL << 29)
#define CR0_CD (1ULL << 30)
#define CR0_PG (1ULL << 31)
#define CR4_VME (1ULL << 0)
#define CR4_PVI (1ULL << 1)
#define CR4_TSD (1ULL << 2)
#define CR4_DE (1ULL << 3)
#define CR4_PSE (1ULL << 4)
#define CR4_PAE (1ULL << 5)
#define CR4_MCE (1ULL << 6)
#define CR4_PGE (1ULL << 7)
#define CR4_PCE (1ULL << 8)
#define CR4_OSFXSR (1ULL << 9)
#define CR4_OSXMMEXCPT (1ULL << 10)
#define CR4_UMIP (1ULL << 11)
#define CR4_LA57 (1ULL << 12)
#define CR4_FSGSBASE (1ULL << 16)
#define CR4_PCIDE (1ULL << 17)
#define CR4_OSXSAVE (1ULL << 18)
#define CR4_SMEP (1ULL << 20)
#define CR4_SMAP (1ULL << 21)
#define CR4_PKE (1ULL << 22)
#define EFER_SCE (1ULL << 0)
#define EFER_LME (1ULL << 8)
#define EFER_LMA (1ULL << 10)
#define EFER_NXE (1ULL << 11)

/* Exception vectors */
enum {
    EXC_DE = 0, EXC_DB = 1, EXC_NMI = 2, EXC_BP = 3, EXC_OF = 4, EXC_BR = 5, EXC_UD = 6,
    EXC_NM = 7, EXC_DF = 8, EXC_TS = 10, EXC_NP = 11, EXC_SS = 12, EXC_GP = 13,
    EXC_PF = 14, EXC_MF = 16, EXC_AC = 17, EXC_MC = 18, EXC_XM = 19
};

/* Page-fault error code bits */
#define PFEC_P (1u << 0)
#define PFEC_W (1u << 1)
#define PFEC_U (1u << 2)
#define PFEC_RSVD (1u << 3)
#define PFEC_I (1u << 4)

/* Kinds of memory access (bit set) */
enum access {
    ACC_R = 1, ACC_W = 2, ACC_X = 4,
    ACC_SYS = 8      /* implicit supervisor access (descriptor tables, TSS, IDT): ignores CPL and AC */
};

/* How an event reaches the CPU: decides error codes, IDT DPL checks and saved RIP. */
enum event_kind { EV_FAULT, EV_EXTINT, EV_SOFTINT, EV_NMI };

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NORETURN __attribute__((noreturn))

/* Callbacks into Python (declared extern "Python+C" in the cffi cdef). */
uint64_t interp_mmio_read(void *ctx, uint64_t gpa, int size);
void interp_mmio_write(void *ctx, uint64_t gpa, int size, uint64_t val);
uint32_t interp_pio_in(void *ctx, uint16_t port, int size);
void interp_pio_out(void *ctx, uint16_t port, int size, uint32_t val);
int interp_ack_irq(void *ctx);
int interp_rdmsr(void *ctx, uint32_t msr, uint64_t *val);
int interp_wrmsr(void *ctx, uint32_t msr, uint64_t val);

#include "interp_api.h"

/* A decoded instruction while it executes. */
struct insn {
    const uint8_t *start, *p, *end;   /* fetch window */
    uint8_t opsize;                   /* 1 never: 2, 4 or 8 (byte forms pass size 1 explicitly) */
    uint8_t addrsize;                 /* 2, 4 or 8 */
    uint8_t rex;                      /* REX byte or 0 */
    uint8_t rep;                      /* 0, 0xF2 or 0xF3 (last one wins) */
    uint8_t pfx66, lock;
    int8_t seg;                       /* segment override or -1 */
    uint8_t mod, reg, rm;             /* reg/rm include REX.R/REX.B; rm meaningful when mod == 3 */
    uint8_t modrm;
    uint8_t rip_rel;                  /* ea is RIP-relative: immediates fetched later move it */
    uint8_t base_is_rsp;              /* memory operand based on rSP (pop [rsp] fixup) */
    uint8_t jumped;                   /* the handler set RIP itself */
    uint8_t easeg;                    /* segment of the memory operand */
    uint8_t retry;                    /* a locked write-back lost a race: run it again */
    uint64_t ea;                      /* offset of the memory operand */
    uint8_t *atomic_host;             /* locked RMW target in RAM, or NULL */
    uint64_t atomic_old;              /* the value read from atomic_host */
    /* VEX prefix (vex.c), meaningful only when vex != 0.  vex_exec also folds VEX.R/X/B/W
     * into `rex` (so decode_modrm works unchanged), VEX.pp into pfx66/rep, and sets opsize
     * to 4 or 8 (VEX.W in 64-bit mode). */
    uint8_t vex;                      /* 0: no VEX prefix; 2: C5 (two-byte); 3: C4 (three-byte) */
    uint8_t vex_map;                  /* opcode map: 1 = 0F, 2 = 0F 38, 3 = 0F 3A */
    uint8_t vex_w;                    /* VEX.W */
    uint8_t vex_l;                    /* VEX.L: 0 = 128-bit, 1 = 256-bit */
    uint8_t vex_v;                    /* VEX.vvvv, un-inverted: the extra source register */
};

/* ---- fetch.c / decode.c ---- */
void fetch_slow(struct interp_cpu *cpu, struct insn *in, uint64_t la);
NORETURN void fetch_past_end(struct interp_cpu *cpu, struct insn *in);
void decode_modrm_mem(struct interp_cpu *cpu, struct insn *in, uint8_t m);

static inline uint8_t fetch8(struct interp_cpu *cpu, struct insn *in)
{
    if (unlikely(in->p >= in->end))
        fetch_past_end(cpu, in);
    return *in->p++;
}
static inline uint64_t fetch_n(struct interp_cpu *cpu, struct insn *in, int n)
{
    uint64_t v = 0;
    if (unlikely(in->p + n > in->end))
        fetch_past_end(cpu, in);
    memcpy(&v, in->p, n);
    in->p += n;
    return v;
}
/* Decode a ModRM byte (and SIB/displacement for memory operands). */
static inline void decode_modrm(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t m = fetch8(cpu, in);
    if (likely(m >= 0xc0)) {
        in->modrm = m;
        in->mod = 3;
        in->reg = ((m >> 3) & 7) | ((in->rex & 4) << 1);
        in->rm = (m & 7) | ((in->rex & 1) << 3);
        return;
    }
    decode_modrm_mem(cpu, in, m);
}

/* Immediate of n bytes; a RIP-relative operand is relative to the end of the instruction. */
static inline uint64_t fetch_imm(struct interp_cpu *cpu, struct insn *in, int n)
{
    if (in->rip_rel)
        in->ea += n;
    return fetch_n(cpu, in, n);
}
static inline int64_t sext(uint64_t v, int size)
{
    int shift = 64 - 8 * size;
    return (int64_t)(v << shift) >> shift;
}
/* Sign-extended immediate: imm8/16/32 sign-extended to 64 bits. */
static inline uint64_t fetch_simm(struct interp_cpu *cpu, struct insn *in, int n)
{
    return (uint64_t)sext(fetch_imm(cpu, in, n), n);
}
static inline uint64_t size_mask(int size)
{
    return size >= 8 ? ~0ULL : (1ULL << (8 * size)) - 1;
}

/* ---- registers ---- */
static inline uint64_t reg_get(struct interp_cpu *cpu, int r, int size, int rex)
{
    if (size == 1) {
        if (!rex && r >= 4 && r < 8)
            return (cpu->gpr[r - 4] >> 8) & 0xff;
        return cpu->gpr[r] & 0xff;
    }
    return cpu->gpr[r] & size_mask(size);
}
static inline void reg_set(struct interp_cpu *cpu, int r, int size, int rex, uint64_t v)
{
    switch (size) {
    case 1:
        if (!rex && r >= 4 && r < 8)
            cpu->gpr[r - 4] = (cpu->gpr[r - 4] & ~0xff00ULL) | ((v & 0xff) << 8);
        else
            cpu->gpr[r] = (cpu->gpr[r] & ~0xffULL) | (v & 0xff);
        break;
    case 2: cpu->gpr[r] = (cpu->gpr[r] & ~0xffffULL) | (v & 0xffff); break;
    case 4: cpu->gpr[r] = v & 0xffffffffULL; break;
    default: cpu->gpr[r] = v; break;
    }
}

/* ---- flags.c ---- */
uint64_t flags_get_af(struct interp_cpu *cpu);
void flags_materialize(struct interp_cpu *cpu);
int cond_true(struct interp_cpu *cpu, int cc);
uint64_t read_rflags(struct interp_cpu *cpu);

static inline uint64_t flags_get_zf(struct interp_cpu *cpu)
{
    if (P(cpu)->lf_op == LF_NONE)
        return (cpu->rflags >> 6) & 1;
    return P(cpu)->lf_res == 0;
}
static inline uint64_t flags_get_sf(struct interp_cpu *cpu)
{
    if (P(cpu)->lf_op == LF_NONE)
        return (cpu->rflags >> 7) & 1;
    return (P(cpu)->lf_res >> (P(cpu)->lf_bits - 1)) & 1;
}
static inline uint64_t flags_get_pf(struct interp_cpu *cpu)
{
    if (P(cpu)->lf_op == LF_NONE)
        return (cpu->rflags >> 2) & 1;
    return !__builtin_parity(P(cpu)->lf_res & 0xff);
}
static inline uint64_t flags_get_cf(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    switch (p->lf_op) {
    case LF_ADD: return p->lf_res < p->lf_a;
    case LF_ADC: return p->lf_cin ? p->lf_res <= p->lf_a : p->lf_res < p->lf_a;
    case LF_SUB: return p->lf_a < p->lf_b;
    case LF_SBB: return p->lf_cin ? p->lf_a <= p->lf_b : p->lf_a < p->lf_b;
    case LF_LOGIC: return 0;
    default: return cpu->rflags & FL_CF;   /* LF_NONE, and INC/DEC which keep CF */
    }
}

static inline uint64_t flags_get_of(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    uint64_t a = p->lf_a, b = p->lf_b, r = p->lf_res;
    switch (p->lf_op) {
    case LF_ADD: case LF_ADC: case LF_INC:
        return (((a ^ r) & (b ^ r)) >> (p->lf_bits - 1)) & 1;
    case LF_SUB: case LF_SBB: case LF_DEC:
        return (((a ^ b) & (a ^ r)) >> (p->lf_bits - 1)) & 1;
    case LF_LOGIC: return 0;
    default: return (cpu->rflags >> 11) & 1;
    }
}

static inline void lazy_set(struct interp_cpu *cpu, int op, uint64_t res, uint64_t a, uint64_t b, int size)
{
    struct interp_priv_storage *p = P(cpu);
    p->lf_op = op;
    p->lf_res = res & size_mask(size);
    p->lf_a = a & size_mask(size);
    p->lf_b = b & size_mask(size);
    p->lf_bits = 8 * size;
}
/* Replace the arithmetic flags in `mask` with `val` (eager flag setting). */
static inline void flags_set(struct interp_cpu *cpu, uint64_t mask, uint64_t val)
{
    flags_materialize(cpu);
    cpu->rflags = (cpu->rflags & ~mask) | (val & mask);
}
/* SF, ZF and PF of a result, as RFLAGS bits. */
static inline uint64_t flags_szp(uint64_t res, int size)
{
    res &= size_mask(size);
    uint64_t f = 0;
    if (res == 0) f |= FL_ZF;
    if ((res >> (8 * size - 1)) & 1) f |= FL_SF;
    if (!__builtin_parity(res & 0xff)) f |= FL_PF;
    return f;
}

/* ---- alu.c ---- */
uint64_t alu_binop(struct interp_cpu *cpu, int op, uint64_t a, uint64_t b, int size);
uint64_t alu_shift(struct interp_cpu *cpu, int op, uint64_t a, unsigned count, int size);
uint64_t alu_shld(struct interp_cpu *cpu, uint64_t dst, uint64_t src, unsigned count, int size, int right);
void alu_mul(struct interp_cpu *cpu, int sign, int size, uint64_t src);
void alu_div(struct interp_cpu *cpu, int sign, int size, uint64_t src);
uint64_t alu_imul2(struct interp_cpu *cpu, uint64_t a, uint64_t b, int size);

/* ---- mmu.c ---- */
void tlb_flush(struct interp_cpu *cpu);
void tlb_flush_page(struct interp_cpu *cpu, uint64_t la);
uint8_t *phys_host(struct interp_cpu *cpu, uint64_t pa, uint64_t len);
/* Translate a linear address; fills *host (NULL for MMIO) and returns the physical address.
 * Raises #PF on failure. */
uint64_t translate(struct interp_cpu *cpu, uint64_t la, int acc, uint8_t **host);
/* Like translate, but reports failure instead of raising: returns 0 on success. */
int translate_try(struct interp_cpu *cpu, uint64_t la, int acc, uint8_t **host, uint64_t *pa,
                  uint32_t *err);
uint64_t lin_read(struct interp_cpu *cpu, uint64_t la, int size, int acc);
void lin_write(struct interp_cpu *cpu, uint64_t la, int size, uint64_t val, int acc);
void lin_read_buf(struct interp_cpu *cpu, uint64_t la, void *buf, int len, int acc);
void lin_write_buf(struct interp_cpu *cpu, uint64_t la, const void *buf, int len, int acc);

/* ---- seg.c ---- */
uint64_t seg_linear(struct interp_cpu *cpu, int seg, uint64_t off, int size, int acc);
uint64_t mem_read(struct interp_cpu *cpu, int seg, uint64_t off, int size);
void mem_write(struct interp_cpu *cpu, int seg, uint64_t off, int size, uint64_t val);
void mem_read_buf(struct interp_cpu *cpu, int seg, uint64_t off, void *buf, int len);
void mem_write_buf(struct interp_cpu *cpu, int seg, uint64_t off, const void *buf, int len);
void mode_update(struct interp_cpu *cpu);
void seg_load(struct interp_cpu *cpu, int seg, uint16_t sel);
void seg_load_real(struct interp_cpu *cpu, int seg, uint16_t sel);
int desc_read(struct interp_cpu *cpu, uint16_t sel, uint64_t *lo, uint64_t *hi);
void return_code_descriptor(struct interp_cpu *cpu, uint16_t sel, int cpl, uint64_t *lo, uint64_t *hi,
                            struct interp_segment *d);
void desc_to_seg(uint16_t sel, uint64_t lo, uint64_t hi, struct interp_segment *s);
void seg_set_accessed(struct interp_cpu *cpu, uint16_t sel, uint64_t lo);
void far_jump(struct interp_cpu *cpu, uint16_t sel, uint64_t off, int is_call, int opsize,
              uint64_t ret_rip);
void far_return(struct interp_cpu *cpu, int opsize, uint16_t pop_extra);
void load_cs_checked(struct interp_cpu *cpu, uint16_t sel, int target_cpl, uint64_t lo, uint64_t hi);
void null_inaccessible_segments(struct interp_cpu *cpu);
void push(struct interp_cpu *cpu, uint64_t val, int size);
uint64_t pop(struct interp_cpu *cpu, int size);
static inline int is_long_mode(struct interp_cpu *cpu) { return (cpu->efer & EFER_LMA) != 0; }
static inline int is_protected(struct interp_cpu *cpu) { return (cpu->cr0 & CR0_PE) != 0; }
static inline uint64_t stack_mask(struct interp_cpu *cpu) { return size_mask(P(cpu)->stack_size); }

/* ---- except.c ---- */
NORETURN void raise_exc(struct interp_cpu *cpu, int vector, int has_err, uint32_t err);
NORETURN void raise_stop(struct interp_cpu *cpu, int reason);
NORETURN void raise_unimplemented(struct interp_cpu *cpu);
#define RAISE_UD(cpu) raise_exc((cpu), EXC_UD, 0, 0)
#define RAISE_GP0(cpu) raise_exc((cpu), EXC_GP, 1, 0)
void deliver_event(struct interp_cpu *cpu, int vector, int kind, int has_err, uint32_t err);
void handle_raised(struct interp_cpu *cpu);
void do_iret(struct interp_cpu *cpu, int opsize);
static inline void check_callback(struct interp_cpu *cpu)
{
    if (unlikely(cpu->callback_error))
        raise_stop(cpu, INTERP_STOP_IO_ERROR);
}

/* ---- exec.c / exec0f.c ---- */
void exec_one(struct interp_cpu *cpu);
void exec_chunk(struct interp_cpu *cpu, uint64_t chunk_end);
void exec_chunk_breakpoints(struct interp_cpu *cpu, uint64_t chunk_end);
void exec_0f(struct interp_cpu *cpu, struct insn *in);
uint64_t rm_read_mem(struct interp_cpu *cpu, struct insn *in, int size);
void rm_write_mem(struct interp_cpu *cpu, struct insn *in, int size, uint64_t v);
uint64_t rm_read_rmw_mem(struct interp_cpu *cpu, struct insn *in, int size, int atomic);

/* r/m operand access: registers inline, memory out of line. */
static inline uint64_t rm_read(struct interp_cpu *cpu, struct insn *in, int size)
{
    if (in->mod == 3)
        return reg_get(cpu, in->rm, size, in->rex);
    return rm_read_mem(cpu, in, size);
}
static inline void rm_write(struct interp_cpu *cpu, struct insn *in, int size, uint64_t v)
{
    if (in->mod == 3)
        reg_set(cpu, in->rm, size, in->rex, v);
    else
        rm_write_mem(cpu, in, size, v);
}
/* Read an operand that will be written back (see decode.c). */
static inline uint64_t rm_read_rmw(struct interp_cpu *cpu, struct insn *in, int size, int atomic)
{
    if (in->mod == 3)
        return reg_get(cpu, in->rm, size, in->rex);
    return rm_read_rmw_mem(cpu, in, size, atomic);
}

static inline uint64_t next_rip(struct interp_cpu *cpu, struct insn *in)
{
    uint64_t r = cpu->rip + (uint64_t)(in->p - in->start);
    if (!P(cpu)->code64)
        r &= P(cpu)->def_size == 4 ? 0xffffffffULL : 0xffffULL;
    return r;
}

/* Near branch: truncate to the operand size, check the CS limit or canonical form. */
static inline void jump_to(struct interp_cpu *cpu, struct insn *in, uint64_t target)
{
    if (P(cpu)->code64) {
        if (in->opsize == 2)
            target &= 0xffff;
        if ((uint64_t)((int64_t)(target << 16) >> 16) != target)
            RAISE_GP0(cpu);
    } else {
        target &= size_mask(in->opsize);
        if (target > cpu->seg[INTERP_CS].limit)
            RAISE_GP0(cpu);
    }
    cpu->rip = target;
    in->jumped = 1;
}

/* ---- system.c ---- */
void sys_mov_cr(struct interp_cpu *cpu, struct insn *in, int to_cr);
void sys_mov_dr(struct interp_cpu *cpu, struct insn *in, int to_dr);
void sys_group7(struct interp_cpu *cpu, struct insn *in);
void sys_group6(struct interp_cpu *cpu, struct insn *in);
void sys_lar_lsl(struct interp_cpu *cpu, struct insn *in, int is_lsl);
void sys_rdmsr(struct interp_cpu *cpu);
void sys_wrmsr(struct interp_cpu *cpu);
void sys_cpuid(struct interp_cpu *cpu);
void sys_rdtsc(struct interp_cpu *cpu, int with_aux);
void sys_syscall(struct interp_cpu *cpu, struct insn *in);
void sys_sysret(struct interp_cpu *cpu, struct insn *in);
void sys_write_rflags(struct interp_cpu *cpu, uint64_t val, uint64_t size_mask_bits);
void set_cr0(struct interp_cpu *cpu, uint64_t val);
void set_cr4(struct interp_cpu *cpu, uint64_t val);
uint64_t xsave_size(uint64_t xcr0);
static inline void require_cpl0(struct interp_cpu *cpu)
{
    if (P(cpu)->cpl != 0)
        RAISE_GP0(cpu);
}

/* ---- run.c ---- */
void interp_sync(struct interp_cpu *cpu);

/* ---- string.c ---- */
void exec_string(struct interp_cpu *cpu, struct insn *in, uint8_t op);

/* ---- io.c ---- */
int io_allowed(struct interp_cpu *cpu, uint16_t port, int size);
uint32_t io_in(struct interp_cpu *cpu, uint16_t port, int size);
void io_out(struct interp_cpu *cpu, uint16_t port, int size, uint32_t val);

/* ---- vex.c (VEX prefix and vector register helpers) ----
 * YMM register i: bits 127:0 are XMM i in the FXSAVE image, bits 255:128 cpu->ymmh[16 * i]. */
typedef union {
    uint8_t b[32]; uint16_t w[16]; uint32_t d[8]; uint64_t q[4]; float f[8]; double df[4];
} ymm_t;
#define YMM_LO(cpu, i) ((cpu)->fxsave + 160 + 16 * (i))   /* = FX_XMM */
#define YMM_HI(cpu, i) ((cpu)->ymmh + 16 * (i))
void vex_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
/* #UD / #NM checks of every VEX-encoded vector instruction (not BMI): CR4.OSXSAVE, XCR0 SSE|AVX, CR0.TS. */
void vex_vector_check(struct interp_cpu *cpu);
/* The vector length of a VEX instruction in bytes: 16 (VEX.128) or 32 (VEX.256). */
static inline int vex_len(const struct insn *in) { return in->vex_l ? 32 : 16; }
static inline void ymm_get(struct interp_cpu *cpu, int r, ymm_t *v)
{
    memcpy(v->b, YMM_LO(cpu, r), 16);
    memcpy(v->b + 16, YMM_HI(cpu, r), 16);
}
/* Write a VEX destination register: `len` = 16 writes XMM r and zeroes bits 255:128 (VEX.128
 * semantics), 32 writes all of YMM r. */
static inline void ymm_put(struct interp_cpu *cpu, int r, const ymm_t *v, int len)
{
    memcpy(YMM_LO(cpu, r), v->b, 16);
    if (len == 32)
        memcpy(YMM_HI(cpu, r), v->b + 16, 16);
    else
        memset(YMM_HI(cpu, r), 0, 16);
}
/* The r/m source of a VEX instruction: `len` bytes of a register or memory (no alignment
 * rule); the rest of *v is zero for memory, the register's bits for a register. */
void vex_read_rm(struct interp_cpu *cpu, struct insn *in, ymm_t *v, int len);

/* ---- mxcsr.c: host SIMD floating point under the guest's MXCSR ---- */
#define MXCSR_IE 0x01
#define MXCSR_DE 0x02
#define MXCSR_ZE 0x04
#define MXCSR_OE 0x08
#define MXCSR_UE 0x10
#define MXCSR_PE 0x20
#define MXCSR_FLAGS 0x3f
#define MXCSR_DAZ 0x40
#define MXCSR_MASKS 0x1f80
#define MXCSR_RC 0x6000
#define MXCSR_RC_SHIFT 13
#define MXCSR_FTZ 0x8000
uint32_t mxcsr_get(struct interp_cpu *cpu);
/* Run fn(arg) on the host with the guest's rounding control, DAZ and FTZ, every exception
 * masked and the flags clear; returns the exception flags raised (MXCSR_IE..MXCSR_PE).  fn
 * must only compute (no guest memory access, nothing that can raise). */
uint32_t mxcsr_run(struct interp_cpu *cpu, void (*fn)(void *), void *arg);
/* Account the exception flags of one guest SIMD FP instruction: with an unmasked exception,
 * set its flags and raise #XM (#UD if CR4.OSXMMEXCPT = 0), so call it before writing the
 * destination; otherwise OR the flags into the guest MXCSR. */
void mxcsr_signal(struct interp_cpu *cpu, uint32_t flags);
/* OR `flags` into the guest MXCSR and raise #XM (#UD if CR4.OSXMMEXCPT = 0). */
NORETURN void mxcsr_exception(struct interp_cpu *cpu, uint32_t flags);

/* ---- bmi.c, adx.c, fma.c, f16c.c, rdrand.c, vexmov.c ---- */
void bmi_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void adx_exec(struct interp_cpu *cpu, struct insn *in);
void fma_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void f16c_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void rdrand_exec(struct interp_cpu *cpu, struct insn *in, int seed);
int vexmov_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);

/* ---- sse.c / fpu.c / x87.c ---- */
void sse_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void fpu_group_ae(struct interp_cpu *cpu, struct insn *in);
/* ldmxcsr's store into MXCSR: #GP(0) for reserved bits. */
void fpu_set_mxcsr(struct interp_cpu *cpu, uint32_t v);
void fpu_group_c7(struct interp_cpu *cpu, struct insn *in);
void x87_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void x87_fwait(struct interp_cpu *cpu);
void x87_init(struct interp_cpu *cpu);
void x87_mmx_check(struct interp_cpu *cpu);
void x87_mmx_enter(struct interp_cpu *cpu);
uint64_t x87_mm_get(struct interp_cpu *cpu, int mm);
void x87_mm_put(struct interp_cpu *cpu, int mm, uint64_t v);
void x87_emms(struct interp_cpu *cpu);
void mmx_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op);
int mmx_opcode(uint8_t op);
void sse_check(struct interp_cpu *cpu);
#define FX_XMM(cpu, i) ((cpu)->fxsave + 160 + 16 * (i))
#define FX_MXCSR 24

#endif
