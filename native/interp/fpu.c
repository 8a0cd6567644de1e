/* x87/SSE state management: FXSAVE/FXRSTOR, XSAVE/XSAVEOPT/XSAVEC/XRSTOR (components x87,
 * SSE and AVX upper halves), LDMXCSR/STMXCSR, fences and CLFLUSH, and FS/GS base access.
 * The x87 instructions themselves are x87.c's.
 *
 * The state lives in cpu->fxsave as an FXSAVE image (64-bit layout) plus cpu->ymmh. */
#include "interp.h"

#define FX_MXCSR_MASK 28
#define FX_ST0 32
#define FX_XMM0 160
#define FX_SAVED_BYTES 464          /* 464..511 are left to software: never written */
#define XSAVE_HEADER 512
#define XSAVE_YMMH 576
#define XCOMP_COMPACTED (1ULL << 63)
#define XFEATURE_X87 1ULL
#define XFEATURE_SSE 2ULL
#define XFEATURE_AVX 4ULL
#define XFEATURES_KNOWN (XFEATURE_X87 | XFEATURE_SSE | XFEATURE_AVX)
#define MXCSR_INIT 0x1f80

static uint32_t fx_get32(struct interp_cpu *cpu, int off)
{
    uint32_t v;
    memcpy(&v, cpu->fxsave + off, 4);
    return v;
}

/* #UD / #NM checks for SSE instructions and FXSAVE-style state access. */
void sse_check(struct interp_cpu *cpu)
{
    if ((cpu->cr0 & CR0_EM) || !(cpu->cr4 & CR4_OSFXSR))
        RAISE_UD(cpu);
    if (cpu->cr0 & CR0_TS)
        raise_exc(cpu, EXC_NM, 0, 0);
}

static uint32_t mxcsr_mask(struct interp_cpu *cpu)
{
    uint32_t m = fx_get32(cpu, FX_MXCSR_MASK);
    return m ? m : 0xffbf;
}

void fpu_set_mxcsr(struct interp_cpu *cpu, uint32_t v)
{
    if (v & ~mxcsr_mask(cpu))
        RAISE_GP0(cpu);
    memcpy(cpu->fxsave + FX_MXCSR, &v, 4);
}

static uint64_t mem_operand_la(struct interp_cpu *cpu, struct insn *in, int len, int acc, int align)
{
    if (in->mod == 3)
        RAISE_UD(cpu);
    if (align && (in->ea & (align - 1)))
        RAISE_GP0(cpu);
    return seg_linear(cpu, in->easeg, in->ea, len, acc);
}

static void fxsave(struct interp_cpu *cpu, struct insn *in)
{
    sse_check(cpu);
    uint64_t la = mem_operand_la(cpu, in, FX_SAVED_BYTES, ACC_W, 16);
    if (fx_get32(cpu, FX_MXCSR_MASK) == 0) {
        uint32_t m = 0xffbf;
        memcpy(cpu->fxsave + FX_MXCSR_MASK, &m, 4);
    }
    lin_write_buf(cpu, la, cpu->fxsave, FX_SAVED_BYTES, 0);
}

static void fxrstor(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t img[FX_SAVED_BYTES];
    sse_check(cpu);
    uint64_t la = mem_operand_la(cpu, in, FX_SAVED_BYTES, ACC_R, 16);
    lin_read_buf(cpu, la, img, FX_SAVED_BYTES, 0);
    uint32_t mx;
    memcpy(&mx, img + FX_MXCSR, 4);
    if (mx & ~mxcsr_mask(cpu))
        RAISE_GP0(cpu);
    memcpy(cpu->fxsave, img, FX_MXCSR_MASK);                 /* keep our MXCSR_MASK */
    memcpy(cpu->fxsave + FX_ST0, img + FX_ST0, FX_SAVED_BYTES - FX_ST0);
}

/* Requested-feature bitmap of the XSAVE and XRSTOR families: XCR0 & EDX:EAX. */
static uint64_t xsave_rfbm(struct interp_cpu *cpu)
{
    uint64_t req = (cpu->gpr[INTERP_RAX] & 0xffffffffULL) | (cpu->gpr[INTERP_RDX] << 32);
    return req & cpu->xcr0;
}

static void xsave_common_checks(struct interp_cpu *cpu, struct insn *in)
{
    if (!(cpu->cr4 & CR4_OSXSAVE))
        RAISE_UD(cpu);
    if (cpu->cr0 & CR0_TS)
        raise_exc(cpu, EXC_NM, 0, 0);
    if (in->mod == 3)
        RAISE_UD(cpu);
    if (in->ea & 63)
        RAISE_GP0(cpu);
}

/* XSAVE / XSAVEOPT (compacted = 0) and XSAVEC / XSAVES (compacted = 1).  With only the
 * components 0-2 the compacted layout equals the standard one. */
static void xsave(struct interp_cpu *cpu, struct insn *in, int compacted)
{
    xsave_common_checks(cpu, in);
    uint64_t rfbm = xsave_rfbm(cpu) & XFEATURES_KNOWN;
    int len = XSAVE_YMMH + ((rfbm & XFEATURE_AVX) ? 256 : 0);
    uint64_t la = seg_linear(cpu, in->easeg, in->ea, len, ACC_W);
    uint8_t *h;
    /* Check every page of the area before writing any of it. */
    for (int off = 0; off < len; off += 4096 - (int)((la + off) & 0xfff))
        translate(cpu, la + off, ACC_W, &h);

    if (rfbm & XFEATURE_X87) {
        lin_write_buf(cpu, la, cpu->fxsave, FX_MXCSR, 0);
        lin_write_buf(cpu, la + FX_ST0, cpu->fxsave + FX_ST0, FX_XMM0 - FX_ST0, 0);
    }
    if (rfbm & (XFEATURE_SSE | XFEATURE_AVX))
        lin_write_buf(cpu, la + FX_MXCSR, cpu->fxsave + FX_MXCSR, 8, 0);
    if (rfbm & XFEATURE_SSE)
        lin_write_buf(cpu, la + FX_XMM0, cpu->fxsave + FX_XMM0, 256, 0);
    if (rfbm & XFEATURE_AVX)
        lin_write_buf(cpu, la + XSAVE_YMMH, cpu->ymmh, 256, 0);
    /* Every component counts as in use, so XSTATE_BV[i] = 1 for each saved component. */
    uint64_t bv = lin_read(cpu, la + XSAVE_HEADER, 8, 0);
    if (compacted) {
        bv = rfbm;
        lin_write(cpu, la + XSAVE_HEADER + 8, 8, XCOMP_COMPACTED | rfbm, 0);
    } else {
        bv = (bv & ~rfbm) | rfbm;
    }
    lin_write(cpu, la + XSAVE_HEADER, 8, bv, 0);
}

static void xrstor(struct interp_cpu *cpu, struct insn *in)
{
    xsave_common_checks(cpu, in);
    uint64_t rfbm = xsave_rfbm(cpu);
    uint64_t la = seg_linear(cpu, in->easeg, in->ea, XSAVE_YMMH, ACC_R);
    uint8_t header[64];
    lin_read_buf(cpu, la + XSAVE_HEADER, header, 64, 0);
    uint64_t bv, comp;
    memcpy(&bv, header, 8);
    memcpy(&comp, header + 8, 8);
    if (comp & XCOMP_COMPACTED) {
        if ((comp & ~XCOMP_COMPACTED) & ~cpu->xcr0 || (bv & ~comp & ~XCOMP_COMPACTED))
            RAISE_GP0(cpu);
    } else {
        for (int i = 8; i < 64; i++)
            if (header[i])
                RAISE_GP0(cpu);
    }
    if (bv & ~cpu->xcr0)
        RAISE_GP0(cpu);

    /* Read everything needed first so a fault leaves the registers untouched. */
    uint8_t legacy[FX_XMM0 + 256];
    uint8_t ymmh[256];
    lin_read_buf(cpu, la, legacy, sizeof(legacy), 0);
    if ((rfbm & XFEATURE_AVX) && (bv & XFEATURE_AVX))
        lin_read_buf(cpu, la + XSAVE_YMMH, ymmh, 256, 0);
    uint32_t mx;
    memcpy(&mx, legacy + FX_MXCSR, 4);
    if ((rfbm & (XFEATURE_SSE | XFEATURE_AVX)) && (mx & ~mxcsr_mask(cpu)))
        RAISE_GP0(cpu);

    if (rfbm & XFEATURE_X87) {
        if (bv & XFEATURE_X87) {
            memcpy(cpu->fxsave, legacy, FX_MXCSR);
            memcpy(cpu->fxsave + FX_ST0, legacy + FX_ST0, FX_XMM0 - FX_ST0);
        } else {                                 /* the initial configuration */
            x87_init(cpu);
            memset(cpu->fxsave + FX_ST0, 0, FX_XMM0 - FX_ST0);
        }
    }
    if (rfbm & (XFEATURE_SSE | XFEATURE_AVX))
        memcpy(cpu->fxsave + FX_MXCSR, &mx, 4);
    if (rfbm & XFEATURE_SSE) {
        if (bv & XFEATURE_SSE)
            memcpy(cpu->fxsave + FX_XMM0, legacy + FX_XMM0, 256);
        else
            memset(cpu->fxsave + FX_XMM0, 0, 256);
    }
    if (rfbm & XFEATURE_AVX) {
        if (bv & XFEATURE_AVX)
            memcpy(cpu->ymmh, ymmh, 256);
        else
            memset(cpu->ymmh, 0, 256);
    }
}

/* 0F C7 /3 xrstors, /4 xsavec, /5 xsaves (memory forms). */
void fpu_group_c7(struct interp_cpu *cpu, struct insn *in)
{
    int sub = in->reg & 7;
    if (sub == 3 || sub == 5)
        require_cpl0(cpu);
    if (sub == 3)
        xrstor(cpu, in);
    else
        xsave(cpu, in, 1);
}

static void fsgsbase(struct interp_cpu *cpu, struct insn *in)
{
    int sub = in->reg & 7;
    if (!P(cpu)->code64 || !(cpu->cr4 & CR4_FSGSBASE))
        RAISE_UD(cpu);
    int seg = (sub & 1) ? INTERP_GS : INTERP_FS;
    int size = in->opsize == 8 ? 8 : 4;
    if (sub < 2) {
        reg_set(cpu, in->rm, size, 0, cpu->seg[seg].base);
        return;
    }
    uint64_t v = reg_get(cpu, in->rm, size, 0);
    if ((uint64_t)((int64_t)(v << 16) >> 16) != v)
        RAISE_GP0(cpu);
    cpu->seg[seg].base = v;
}

void fpu_group_ae(struct interp_cpu *cpu, struct insn *in)
{
    decode_modrm(cpu, in);
    int sub = in->reg & 7;
    if (in->mod == 3) {
        if (in->rep == 0xf3 && sub < 4) {
            fsgsbase(cpu, in);
            return;
        }
        if (sub >= 5) {                          /* lfence, mfence, sfence */
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            return;
        }
        RAISE_UD(cpu);
    }
    switch (sub) {
    case 0: fxsave(cpu, in); return;
    case 1: fxrstor(cpu, in); return;
    case 2: {
        sse_check(cpu);
        fpu_set_mxcsr(cpu, mem_read(cpu, in->easeg, in->ea, 4));
        return;
    }
    case 3:
        sse_check(cpu);
        mem_write(cpu, in->easeg, in->ea, 4, fx_get32(cpu, FX_MXCSR));
        return;
    case 4: xsave(cpu, in, 0); return;
    case 5: xrstor(cpu, in); return;
    case 6: xsave(cpu, in, 0); return;           /* xsaveopt (66: clwb, a no-op here) */
    default:                                     /* clflush / clflushopt: no caches to flush */
        mem_operand_la(cpu, in, 1, ACC_R, 0);
        return;
    }
}
