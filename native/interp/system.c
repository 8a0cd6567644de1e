/* System instructions: control and debug registers, descriptor-table registers, LDT/TR,
 * MSRs, CPUID, the TSC, SYSCALL/SYSRET, SWAPGS, CLAC/STAC, XGETBV/XSETBV, INVLPG and
 * RFLAGS writes with their privilege rules. */
#include <x86intrin.h>
#include "interp.h"

#define MSR_TSC 0x10
#define MSR_APIC_BASE 0x1b
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_MISC_ENABLE 0x1a0
#define MSR_PAT 0x277
#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MSR_TSC_AUX 0xc0000103

#define CPUID_FLAG_SIGNIFICANT_INDEX 1
#define CPUID1_ECX_OSXSAVE (1u << 27)
#define XCR0_X87 1ULL
#define XCR0_SSE 2ULL
#define XCR0_AVX 4ULL
#define XSAVE_LEGACY_AND_HEADER 576
#define XSAVE_AVX_SIZE 256

#define CR0_RESERVED_HIGH 0xffffffff00000000ULL
#define CR4_KNOWN (CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | \
                   CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_UMIP | CR4_FSGSBASE | CR4_PCIDE | \
                   CR4_OSXSAVE | CR4_SMEP | CR4_SMAP | CR4_PKE)
#define EFER_KNOWN (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)

static int canonical(uint64_t v)
{
    return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

uint64_t xsave_size(uint64_t xcr0)
{
    return XSAVE_LEGACY_AND_HEADER + ((xcr0 & XCR0_AVX) ? XSAVE_AVX_SIZE : 0);
}

/* POPF/IRET rules: IOPL only at CPL 0, IF only when CPL <= IOPL; VM/VIF/VIP never here. */
void sys_write_rflags(struct interp_cpu *cpu, uint64_t val, uint64_t opmask)
{
    uint64_t changeable = FL_ARITH | FL_TF | FL_DF | FL_NT | FL_AC | FL_ID | FL_RF;
    int cpl = P(cpu)->cpl;
    if (cpl == 0)
        changeable |= FL_IOPL | FL_IF;
    else if (cpl <= (int)((cpu->rflags & FL_IOPL) >> FL_IOPL_SHIFT))
        changeable |= FL_IF;
    if (!is_protected(cpu))
        changeable |= FL_IOPL | FL_IF;
    changeable &= opmask;
    flags_materialize(cpu);
    cpu->rflags = ((cpu->rflags & ~changeable) | (val & changeable)) | FL_FIXED1;
    P(cpu)->attention = 1;
}

void set_cr0(struct interp_cpu *cpu, uint64_t val)
{
    if ((val & CR0_RESERVED_HIGH) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
        RAISE_GP0(cpu);
    uint64_t old = cpu->cr0;
    if ((val & CR0_PG) && !(old & CR0_PG) && (cpu->efer & EFER_LME)) {
        if (!(cpu->cr4 & CR4_PAE) || cpu->seg[INTERP_CS].l)
            RAISE_GP0(cpu);
        cpu->efer |= EFER_LMA;
    }
    if (!(val & CR0_PG) && (old & CR0_PG) && (cpu->efer & EFER_LMA)) {
        if (P(cpu)->code64)
            RAISE_GP0(cpu);
        cpu->efer &= ~EFER_LMA;
    }
    cpu->cr0 = val | CR0_ET;
    tlb_flush(cpu);
    mode_update(cpu);
}

void set_cr4(struct interp_cpu *cpu, uint64_t val)
{
    if ((val & ~CR4_KNOWN) || ((cpu->efer & EFER_LMA) && !(val & CR4_PAE)))
        RAISE_GP0(cpu);
    cpu->cr4 = val;
    tlb_flush(cpu);
}

static void set_efer(struct interp_cpu *cpu, uint64_t val)
{
    if (val & ~EFER_KNOWN)
        RAISE_GP0(cpu);
    if (((val ^ cpu->efer) & EFER_LME) && (cpu->cr0 & CR0_PG))
        RAISE_GP0(cpu);
    cpu->efer = (val & ~EFER_LMA) | (cpu->efer & EFER_LMA);
    tlb_flush(cpu);
    mode_update(cpu);
}

/* Register number of a ModRM byte whose mod field is ignored (mov cr/dr). */
static int modrm_reg_operand(struct interp_cpu *cpu, struct insn *in, int *reg)
{
    uint8_t m = fetch8(cpu, in);
    *reg = ((m >> 3) & 7) | ((in->rex & 4) << 1);
    return (m & 7) | ((in->rex & 1) << 3);
}

void sys_mov_cr(struct interp_cpu *cpu, struct insn *in, int to_cr)
{
    int cr;
    int r = modrm_reg_operand(cpu, in, &cr);
    int size = P(cpu)->code64 ? 8 : 4;
    require_cpl0(cpu);
    if (cr == 0 && in->lock)
        cr = 8;                                  /* AMD's alternative CR8 encoding */
    if (to_cr) {
        uint64_t v = cpu->gpr[r] & size_mask(size);
        switch (cr) {
        case 0: set_cr0(cpu, v); break;
        case 2: cpu->cr2 = v; break;
        case 3: cpu->cr3 = v; tlb_flush(cpu); break;
        case 4: set_cr4(cpu, v); break;
        case 8: if (v & ~0xfULL) RAISE_GP0(cpu); cpu->cr8 = v; break;
        default: RAISE_UD(cpu);
        }
        return;
    }
    uint64_t v;
    switch (cr) {
    case 0: v = cpu->cr0; break;
    case 2: v = cpu->cr2; break;
    case 3: v = cpu->cr3; break;
    case 4: v = cpu->cr4; break;
    case 8: v = cpu->cr8; break;
    default: RAISE_UD(cpu);
    }
    reg_set(cpu, r, size, 0, v);
}

void sys_mov_dr(struct interp_cpu *cpu, struct insn *in, int to_dr)
{
    int dr;
    int r = modrm_reg_operand(cpu, in, &dr);
    int size = P(cpu)->code64 ? 8 : 4;
    require_cpl0(cpu);
    if (dr > 7)
        RAISE_UD(cpu);
    if (dr == 4 || dr == 5) {
        if (cpu->cr4 & CR4_DE)
            RAISE_UD(cpu);
        dr += 2;
    }
    if (to_dr)
        cpu->dr[dr] = cpu->gpr[r] & size_mask(size);
    else
        reg_set(cpu, r, size, 0, cpu->dr[dr]);
}

/* Load a system segment (LDT or TSS) descriptor from the GDT. */
static void load_system_segment(struct interp_cpu *cpu, int seg, uint16_t sel, int want_type_mask, int want_type)
{
    uint64_t lo, hi;
    if (sel & 4)
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    if (desc_read(cpu, sel, &lo, &hi))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    struct interp_segment d;
    desc_to_seg(sel, lo, is_long_mode(cpu) ? hi : 0, &d);
    if (d.s || (d.type & want_type_mask) != want_type)
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    if (!d.present)
        raise_exc(cpu, EXC_NP, 1, sel & ~3u);
    if (seg == INTERP_TR) {
        d.type |= 2;                              /* mark the TSS busy */
        lin_write(cpu, cpu->gdt.base + (sel & ~7u) + 5, 1, ((lo >> 40) & 0xff) | 2, ACC_SYS);
    }
    cpu->seg[seg] = d;
}

/* The descriptor of `sel` if LAR/LSL/VERR/VERW may look at it from the current privilege level:
 * present in its table, not null, and (unless conforming code) DPL >= max(CPL, RPL). System
 * descriptors are accepted only if `system_types` has their type's bit. */
static int visible_descriptor(struct interp_cpu *cpu, uint16_t sel, uint32_t system_types, uint64_t *lo)
{
    if ((sel & ~3) == 0 || desc_read(cpu, sel, lo, NULL) < 0)
        return 0;
    int type = (*lo >> 40) & 0xf, is_segment = (*lo >> 44) & 1, dpl = (*lo >> 45) & 3;
    if (!is_segment && !(system_types & (1u << type)))
        return 0;
    int conforming_code = is_segment && (type & 0xc) == 0xc;
    int level = P(cpu)->cpl > (sel & 3) ? P(cpu)->cpl : (sel & 3);
    return conforming_code || dpl >= level;
}

/* LAR (access rights) and LSL (segment limit): ZF says whether the destination was loaded. */
void sys_lar_lsl(struct interp_cpu *cpu, struct insn *in, int is_lsl)
{
    /* Long mode: LDT (2), 64-bit TSS available/busy (9, 11); LAR also sees call gates (12). */
    uint32_t system_types = (1u << 2) | (1u << 9) | (1u << 11) | (is_lsl ? 0 : 1u << 12);
    decode_modrm(cpu, in);
    if (!is_protected(cpu))
        RAISE_UD(cpu);
    uint64_t lo;
    uint16_t sel = rm_read(cpu, in, 2);
    if (!visible_descriptor(cpu, sel, system_types, &lo)) {
        flags_set(cpu, FL_ZF, 0);
        return;
    }
    uint64_t value;
    if (is_lsl) {
        uint32_t limit = (lo & 0xffff) | (((lo >> 48) & 0xf) << 16);
        value = (lo >> 55) & 1 ? (uint64_t)limit << 12 | 0xfff : limit;
    } else {
        value = (lo >> 32) & 0x00f0ff00;
    }
    reg_set(cpu, in->reg, in->opsize == 2 ? 2 : 4, in->rex, in->opsize == 2 ? value & 0xffff : value);
    flags_set(cpu, FL_ZF, FL_ZF);
}

void sys_group6(struct interp_cpu *cpu, struct insn *in)
{
    decode_modrm(cpu, in);
    int sub = in->reg & 7;
    if (!is_protected(cpu))
        RAISE_UD(cpu);
    switch (sub) {
    case 0: case 1: {                            /* sldt, str */
        uint16_t v = cpu->seg[sub == 0 ? INTERP_LDTR : INTERP_TR].selector;
        if ((cpu->cr4 & CR4_UMIP) && P(cpu)->cpl > 0)
            RAISE_GP0(cpu);
        rm_write(cpu, in, in->mod == 3 ? in->opsize : 2, v);
        return;
    }
    case 2: {                                    /* lldt */
        require_cpl0(cpu);
        uint16_t sel = rm_read(cpu, in, 2);
        if ((sel & ~3) == 0) {
            memset(&cpu->seg[INTERP_LDTR], 0, sizeof(struct interp_segment));
            cpu->seg[INTERP_LDTR].selector = sel;
            cpu->seg[INTERP_LDTR].unusable = 1;
            return;
        }
        load_system_segment(cpu, INTERP_LDTR, sel, 0xf, 0x2);
        return;
    }
    case 3: {                                    /* ltr */
        require_cpl0(cpu);
        uint16_t sel = rm_read(cpu, in, 2);
        if ((sel & ~3) == 0)
            RAISE_GP0(cpu);
        load_system_segment(cpu, INTERP_TR, sel, 0xf, 0x9);   /* available 32/64-bit TSS */
        return;
    }
    case 4: case 5: {                            /* verr, verw */
        uint64_t lo;
        uint16_t sel = rm_read(cpu, in, 2);
        int ok = visible_descriptor(cpu, sel, 0, &lo);
        if (ok) {
            int code = (lo >> 43) & 1, rw = (lo >> 41) & 1;   /* type bit 3: code; bit 1: R or W */
            ok = sub == 4 ? (!code || rw) : (!code && rw);
        }
        flags_set(cpu, FL_ZF, ok ? FL_ZF : 0);
        return;
    }
    default:
        RAISE_UD(cpu);
    }
}

static void store_dtable(struct interp_cpu *cpu, struct insn *in, struct interp_dtable *t)
{
    if ((cpu->cr4 & CR4_UMIP) && P(cpu)->cpl > 0)
        RAISE_GP0(cpu);
    mem_write(cpu, in->easeg, in->ea, 2, t->limit);
    mem_write(cpu, in->easeg, (in->ea + 2) & size_mask(in->addrsize), P(cpu)->code64 ? 8 : 4,
              P(cpu)->code64 ? t->base : t->base & 0xffffffffULL);
}

static void load_dtable(struct interp_cpu *cpu, struct insn *in, struct interp_dtable *t)
{
    require_cpl0(cpu);
    uint16_t limit = mem_read(cpu, in->easeg, in->ea, 2);
    uint64_t base = mem_read(cpu, in->easeg, (in->ea + 2) & size_mask(in->addrsize), P(cpu)->code64 ? 8 : 4);
    if (!P(cpu)->code64 && in->opsize == 2)
        base &= 0xffffff;
    if (P(cpu)->code64 && !canonical(base))
        RAISE_GP0(cpu);
    t->limit = limit;
    t->base = base;
}

static void xsetbv(struct interp_cpu *cpu)
{
    require_cpl0(cpu);
    if (!(cpu->cr4 & CR4_OSXSAVE))
        RAISE_UD(cpu);
    uint64_t v = (cpu->gpr[INTERP_RAX] & 0xffffffffULL) | (cpu->gpr[INTERP_RDX] << 32);
    uint64_t advertised = XCR0_X87 | XCR0_SSE | XCR0_AVX;     /* without a leaf 0xD: what we hold */
    for (uint32_t i = 0; i < cpu->ncpuid; i++)
        if (cpu->cpuid[i].function == 0xd && cpu->cpuid[i].index == 0)
            advertised = cpu->cpuid[i].eax | ((uint64_t)cpu->cpuid[i].edx << 32);
    uint64_t supported = (XCR0_X87 | XCR0_SSE | XCR0_AVX) & advertised;
    if ((cpu->gpr[INTERP_RCX] & 0xffffffffULL) != 0 || !(v & XCR0_X87) || (v & ~advertised) ||
        ((v & XCR0_AVX) && !(v & XCR0_SSE)))
        RAISE_GP0(cpu);
    /* Components the CPUID offers (the host's, behind KVM) but this interpreter cannot hold:
     * a valid instruction it cannot execute, so a KVM fallback burst hands it back to KVM. */
    if (v & ~supported)
        raise_unimplemented(cpu);
    cpu->xcr0 = v;
}

static void exec_group7_reg(struct interp_cpu *cpu, struct insn *in)
{
    switch (in->modrm) {
    case 0xc8: case 0xc9:                        /* monitor / mwait: behave as nops */
        require_cpl0(cpu);
        return;
    case 0xca: case 0xcb:                        /* clac / stac */
        require_cpl0(cpu);
        if (in->modrm == 0xca)
            cpu->rflags &= ~FL_AC;
        else
            cpu->rflags |= FL_AC;
        return;
    case 0xd0: {                                 /* xgetbv */
        uint32_t idx = cpu->gpr[INTERP_RCX];
        if (!(cpu->cr4 & CR4_OSXSAVE))
            RAISE_UD(cpu);
        if (idx > 1)
            RAISE_GP0(cpu);
        reg_set(cpu, INTERP_RAX, 4, 0, cpu->xcr0);
        reg_set(cpu, INTERP_RDX, 4, 0, cpu->xcr0 >> 32);
        return;
    }
    case 0xd1: xsetbv(cpu); return;
    case 0xf8: {                                 /* swapgs */
        if (!P(cpu)->code64)
            RAISE_UD(cpu);
        require_cpl0(cpu);
        uint64_t t = cpu->seg[INTERP_GS].base;
        cpu->seg[INTERP_GS].base = cpu->msr.kernel_gs_base;
        cpu->msr.kernel_gs_base = t;
        return;
    }
    case 0xf9: sys_rdtsc(cpu, 1); return;        /* rdtscp */
    default:
        break;
    }
    switch (in->reg & 7) {
    case 4:                                      /* smsw r */
        reg_set(cpu, in->rm, in->opsize, in->rex, cpu->cr0);
        return;
    case 6:                                      /* lmsw r */
        require_cpl0(cpu);
        set_cr0(cpu, (cpu->cr0 & ~0xeULL) | (cpu->cr0 & CR0_PE) | (cpu->gpr[in->rm] & 0xf));
        return;
    default:
        raise_unimplemented(cpu);                /* vmcall and other hypervisor/SVM encodings */
    }
}

void sys_group7(struct interp_cpu *cpu, struct insn *in)
{
    decode_modrm(cpu, in);
    if (in->mod == 3) {
        exec_group7_reg(cpu, in);
        return;
    }
    switch (in->reg & 7) {
    case 0: store_dtable(cpu, in, &cpu->gdt); return;
    case 1: store_dtable(cpu, in, &cpu->idt); return;
    case 2: load_dtable(cpu, in, &cpu->gdt); return;
    case 3: load_dtable(cpu, in, &cpu->idt); return;
    case 4:
        if ((cpu->cr4 & CR4_UMIP) && P(cpu)->cpl > 0)
            RAISE_GP0(cpu);
        rm_write(cpu, in, 2, cpu->cr0);
        return;
    case 6: {
        require_cpl0(cpu);
        uint64_t v = rm_read(cpu, in, 2);
        set_cr0(cpu, (cpu->cr0 & ~0xeULL) | (cpu->cr0 & CR0_PE) | (v & 0xf));
        return;
    }
    case 7:
        require_cpl0(cpu);
        tlb_flush_page(cpu, seg_linear(cpu, in->easeg, in->ea, 1, 0));
        return;
    default:
        RAISE_UD(cpu);
    }
}

static uint64_t host_tsc(void)
{
    return __rdtsc();
}

void sys_rdmsr(struct interp_cpu *cpu)
{
    require_cpl0(cpu);
    uint32_t msr = cpu->gpr[INTERP_RCX];
    uint64_t v;
    switch (msr) {
    case MSR_TSC: v = host_tsc() + cpu->msr.tsc_offset; break;
    case MSR_APIC_BASE: v = cpu->msr.apic_base; break;
    case MSR_SYSENTER_CS: v = cpu->msr.sysenter_cs; break;
    case MSR_SYSENTER_ESP: v = cpu->msr.sysenter_esp; break;
    case MSR_SYSENTER_EIP: v = cpu->msr.sysenter_eip; break;
    case MSR_MISC_ENABLE: v = cpu->msr.misc_enable; break;
    case MSR_PAT: v = cpu->msr.pat; break;
    case MSR_EFER: v = cpu->efer; break;
    case MSR_STAR: v = cpu->msr.star; break;
    case MSR_LSTAR: v = cpu->msr.lstar; break;
    case MSR_CSTAR: v = cpu->msr.cstar; break;
    case MSR_SFMASK: v = cpu->msr.sfmask; break;
    case MSR_FS_BASE: v = cpu->seg[INTERP_FS].base; break;
    case MSR_GS_BASE: v = cpu->seg[INTERP_GS].base; break;
    case MSR_KERNEL_GS_BASE: v = cpu->msr.kernel_gs_base; break;
    case MSR_TSC_AUX: v = cpu->msr.tsc_aux; break;
    default: {
        int bad = interp_rdmsr(cpu->ctx, msr, &v);
        check_callback(cpu);
        if (bad)
            RAISE_GP0(cpu);
    }
    }
    reg_set(cpu, INTERP_RAX, 4, 0, v);
    reg_set(cpu, INTERP_RDX, 4, 0, v >> 32);
}

void sys_wrmsr(struct interp_cpu *cpu)
{
    require_cpl0(cpu);
    uint32_t msr = cpu->gpr[INTERP_RCX];
    uint64_t v = (cpu->gpr[INTERP_RAX] & 0xffffffffULL) | (cpu->gpr[INTERP_RDX] << 32);
    switch (msr) {
    case MSR_TSC: cpu->msr.tsc_offset = v - host_tsc(); break;
    case MSR_APIC_BASE: cpu->msr.apic_base = v; break;
    case MSR_SYSENTER_CS: cpu->msr.sysenter_cs = v; break;
    case MSR_SYSENTER_ESP: cpu->msr.sysenter_esp = v; break;
    case MSR_SYSENTER_EIP: cpu->msr.sysenter_eip = v; break;
    case MSR_MISC_ENABLE: cpu->msr.misc_enable = v; break;
    case MSR_PAT: cpu->msr.pat = v; break;
    case MSR_EFER: set_efer(cpu, v); break;
    case MSR_STAR: cpu->msr.star = v; break;
    case MSR_LSTAR: case MSR_CSTAR: case MSR_FS_BASE: case MSR_GS_BASE: case MSR_KERNEL_GS_BASE:
        if (!canonical(v))
            RAISE_GP0(cpu);
        if (msr == MSR_LSTAR) cpu->msr.lstar = v;
        else if (msr == MSR_CSTAR) cpu->msr.cstar = v;
        else if (msr == MSR_FS_BASE) cpu->seg[INTERP_FS].base = v;
        else if (msr == MSR_GS_BASE) cpu->seg[INTERP_GS].base = v;
        else cpu->msr.kernel_gs_base = v;
        break;
    case MSR_SFMASK: cpu->msr.sfmask = v & 0xffffffffULL; break;
    case MSR_TSC_AUX: cpu->msr.tsc_aux = v & 0xffffffffULL; break;
    default: {
        int bad = interp_wrmsr(cpu->ctx, msr, v);
        check_callback(cpu);
        if (bad)
            RAISE_GP0(cpu);
    }
    }
}

void sys_cpuid(struct interp_cpu *cpu)
{
    uint32_t fn = cpu->gpr[INTERP_RAX], idx = cpu->gpr[INTERP_RCX];
    uint32_t a = 0, b = 0, c = 0, d = 0;
    for (uint32_t i = 0; i < cpu->ncpuid && i < INTERP_MAX_CPUID; i++) {
        struct interp_cpuid_entry *e = &cpu->cpuid[i];
        if (e->function == fn && (!(e->flags & CPUID_FLAG_SIGNIFICANT_INDEX) || e->index == idx)) {
            a = e->eax; b = e->ebx; c = e->ecx; d = e->edx;
            break;
        }
    }
    /* Bits that follow the CPU's own state, as KVM keeps them up to date. */
    if (fn == 1)
        c = (c & ~CPUID1_ECX_OSXSAVE) | ((cpu->cr4 & CR4_OSXSAVE) ? CPUID1_ECX_OSXSAVE : 0);
    if (fn == 0xd && (idx == 0 || idx == 1))    /* the XSAVE / XSAVEC area for the XCR0 in force */
        b = xsave_size(cpu->xcr0);
    reg_set(cpu, INTERP_RAX, 4, 0, a);
    reg_set(cpu, INTERP_RBX, 4, 0, b);
    reg_set(cpu, INTERP_RCX, 4, 0, c);
    reg_set(cpu, INTERP_RDX, 4, 0, d);
}

void sys_rdtsc(struct interp_cpu *cpu, int with_aux)
{
    if ((cpu->cr4 & CR4_TSD) && P(cpu)->cpl > 0)
        RAISE_GP0(cpu);
    uint64_t t = host_tsc() + cpu->msr.tsc_offset;
    reg_set(cpu, INTERP_RAX, 4, 0, t);
    reg_set(cpu, INTERP_RDX, 4, 0, t >> 32);
    if (with_aux)
        reg_set(cpu, INTERP_RCX, 4, 0, cpu->msr.tsc_aux);
}

/* Flat segment SYSCALL/SYSRET load (the descriptors are not read from the GDT). */
static void flat_segment(struct interp_segment *s, uint16_t sel, int code, int dpl, int l)
{
    memset(s, 0, sizeof(*s));
    s->selector = sel;
    s->limit = 0xffffffff;
    s->type = code ? 0xb : 0x3;
    s->s = 1;
    s->dpl = dpl;
    s->present = 1;
    s->l = l;
    s->db = !l;
    s->g = 1;
}

void sys_syscall(struct interp_cpu *cpu, struct insn *in)
{
    if (!(cpu->efer & EFER_SCE))
        RAISE_UD(cpu);
    if (!P(cpu)->code64)
        raise_unimplemented(cpu);                /* legacy / compatibility-mode SYSCALL */
    uint16_t sel = (cpu->msr.star >> 32) & 0xffff;
    cpu->gpr[INTERP_RCX] = next_rip(cpu, in);
    cpu->gpr[INTERP_R11] = read_rflags(cpu) & ~FL_RF;
    flat_segment(&cpu->seg[INTERP_CS], sel & ~3, 1, 0, 1);
    flat_segment(&cpu->seg[INTERP_SS], (sel + 8) & ~3, 0, 0, 0);
    cpu->rflags &= ~(cpu->msr.sfmask | FL_RF);
    cpu->rip = cpu->msr.lstar;
    in->jumped = 1;
    P(cpu)->cpl = 0;
    mode_update(cpu);
}

void sys_sysret(struct interp_cpu *cpu, struct insn *in)
{
    if (!(cpu->efer & EFER_SCE))
        RAISE_UD(cpu);
    require_cpl0(cpu);
    if (!P(cpu)->code64)
        raise_unimplemented(cpu);
    uint16_t sel = (cpu->msr.star >> 48) & 0xffff;
    int to64 = (in->rex & 8) != 0;
    uint64_t target = to64 ? cpu->gpr[INTERP_RCX] : cpu->gpr[INTERP_RCX] & 0xffffffffULL;
    if (!canonical(target))
        RAISE_GP0(cpu);
    flat_segment(&cpu->seg[INTERP_CS], (to64 ? sel + 16 : sel) | 3, 1, 3, to64);
    flat_segment(&cpu->seg[INTERP_SS], (sel + 8) | 3, 0, 3, 0);
    P(cpu)->lf_op = LF_NONE;
    cpu->rflags = (cpu->gpr[INTERP_R11] & ~(FL_RF | FL_VM)) | FL_FIXED1;
    cpu->rip = target;
    in->jumped = 1;
    P(cpu)->cpl = 3;
    mode_update(cpu);
}
