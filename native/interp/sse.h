/* Shared by the SSE files (sse.c, sse_fp.c, sse4.c, sse42_string.c): the XMM register view,
 * operand access helpers, and the SIMD floating-point core (sse_fp.c) that computes on the
 * host's SSE unit under the guest's MXCSR. */
#ifndef KVMPY_INTERP_SSE_H
#define KVMPY_INTERP_SSE_H

#include "interp.h"

typedef union {
    uint8_t b[16]; int8_t sb[16];
    uint16_t w[8]; int16_t sw[8];
    uint32_t d[4]; int32_t sd[4];
    uint64_t q[2]; int64_t sq[2];
    float f[4]; double df[2];
} xmm_t;

enum { PFX_NONE = 0, PFX_66 = 1, PFX_F2 = 2, PFX_F3 = 3 };

static inline void xmm_get(struct interp_cpu *cpu, int r, xmm_t *x) { memcpy(x, FX_XMM(cpu, r), 16); }
static inline void xmm_put(struct interp_cpu *cpu, int r, const xmm_t *x) { memcpy(FX_XMM(cpu, r), x, 16); }

/* xmm/m128 source; legacy SSE memory operands must be 16-byte aligned unless `unaligned`. */
static inline void src128(struct interp_cpu *cpu, struct insn *in, xmm_t *x, int unaligned)
{
    if (in->mod == 3) {
        xmm_get(cpu, in->rm, x);
        return;
    }
    if (!unaligned && (in->ea & 15))
        RAISE_GP0(cpu);
    mem_read_buf(cpu, in->easeg, in->ea, x, 16);
}

/* xmm/m32 or xmm/m64 (or m8/m16) source: from memory only the low `bytes`, the rest zero. */
static inline void src_low(struct interp_cpu *cpu, struct insn *in, xmm_t *x, int bytes)
{
    if (in->mod == 3) {
        xmm_get(cpu, in->rm, x);
        return;
    }
    memset(x, 0, 16);
    mem_read_buf(cpu, in->easeg, in->ea, x, bytes);
}

static inline void dst128(struct interp_cpu *cpu, struct insn *in, const xmm_t *x, int unaligned)
{
    if (in->mod == 3) {
        xmm_put(cpu, in->rm, x);
        return;
    }
    if (!unaligned && (in->ea & 15))
        RAISE_GP0(cpu);
    mem_write_buf(cpu, in->easeg, in->ea, x, 16);
}

/* sse.c's integer cores, shared with the MMX forms (mmx.c): packed two-operand ops
 * (*out = a op b, by the 0F opcode; 0 if unknown), and element shifts (kind 0 logical right,
 * 1 arithmetic right, 2 left; esize 2, 4 or 8 bytes). */
int packed_int(uint8_t op, xmm_t *out, const xmm_t *a, const xmm_t *b);
/* mmx.c: cvtpi2ps/pd, cvt(t)ps2pi, cvt(t)pd2pi (0F 2A/2C/2D) and movq2dq/movdq2q (F3/F2 0F D6). */
void mmx_sse_convert(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx);
/* maskmovq / maskmovdqu / vmaskmovdqu: the `n` bytes of data whose mask byte has its top bit
 * set, to DS:rDI (segment override allowed), every one checked writable before any is written. */
void sse_masked_store(struct interp_cpu *cpu, struct insn *in, const uint8_t *data, const uint8_t *mask, int n);
/* mmx.c: SSSE3's MMX forms, 0F 38 00-0B/1C-1E and palignr (0F 3A 0F), ModRM (and imm8) decoded. */
void mmx_ssse3(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void mmx_palignr(struct interp_cpu *cpu, struct insn *in, unsigned imm);

static inline int8_t sat8(int v) { return v > 127 ? 127 : v < -128 ? -128 : v; }
static inline uint8_t satu8(int v) { return v > 255 ? 255 : v < 0 ? 0 : v; }
static inline int16_t sat16(int v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
static inline uint16_t satu16(int v) { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

/* ---- sse_fp.c: SIMD floating point under the guest's MXCSR ----
 * Each FPOP_* is one host instruction.  Two-operand ops compute a = a OP b (b may come from
 * memory, zero-extended); conversions from a GPR take the integer in b->q[0]; conversions
 * to a GPR and comis* leave their result (the integer, or the ZF/PF/CF bits) in a->q[0]. */
enum fpop {
    FPOP_ADDPS, FPOP_ADDPD, FPOP_ADDSS, FPOP_ADDSD, FPOP_SUBPS, FPOP_SUBPD, FPOP_SUBSS, FPOP_SUBSD,
    FPOP_MULPS, FPOP_MULPD, FPOP_MULSS, FPOP_MULSD, FPOP_DIVPS, FPOP_DIVPD, FPOP_DIVSS, FPOP_DIVSD,
    FPOP_MINPS, FPOP_MINPD, FPOP_MINSS, FPOP_MINSD, FPOP_MAXPS, FPOP_MAXPD, FPOP_MAXSS, FPOP_MAXSD,
    FPOP_SQRTPS, FPOP_SQRTPD, FPOP_SQRTSS, FPOP_SQRTSD,
    FPOP_RSQRTPS, FPOP_RSQRTSS, FPOP_RCPPS, FPOP_RCPSS,
    FPOP_CMPPS, FPOP_CMPPD, FPOP_CMPSS, FPOP_CMPSD,                    /* imm = predicate 0..31 */
    FPOP_COMISS, FPOP_UCOMISS, FPOP_COMISD, FPOP_UCOMISD,
    FPOP_CVTPS2PD, FPOP_CVTPD2PS, FPOP_CVTSS2SD, FPOP_CVTSD2SS, FPOP_CVTDQ2PS, FPOP_CVTPS2DQ,
    FPOP_CVTTPS2DQ, FPOP_CVTDQ2PD, FPOP_CVTPD2DQ, FPOP_CVTTPD2DQ,
    FPOP_CVTSI2SS32, FPOP_CVTSI2SS64, FPOP_CVTSI2SD32, FPOP_CVTSI2SD64,
    FPOP_CVTSS2SI32, FPOP_CVTSS2SI64, FPOP_CVTSD2SI32, FPOP_CVTSD2SI64,
    FPOP_CVTTSS2SI32, FPOP_CVTTSS2SI64, FPOP_CVTTSD2SI32, FPOP_CVTTSD2SI64,
    FPOP_ADDSUBPS, FPOP_ADDSUBPD, FPOP_HADDPS, FPOP_HADDPD, FPOP_HSUBPS, FPOP_HSUBPD,
    FPOP_ROUNDPS, FPOP_ROUNDPD, FPOP_ROUNDSS, FPOP_ROUNDSD,            /* imm = imm8[3:0] */
    FPOP_DPPS, FPOP_DPPD,                                              /* imm = imm8 */
    FPOP_COUNT
};

/* a = a OP b on the host under the guest's RC/DAZ/FTZ, then the SDM's SIMD floating-point
 * exception rules: with an unmasked exception the MXCSR flags are set, nothing is written
 * and #XM (or #UD without CR4.OSXMMEXCPT) is raised; otherwise the flags are ORed into MXCSR
 * and *a holds the result. */
void sse_fp(struct interp_cpu *cpu, int op, int imm, xmm_t *a, const xmm_t *b);
/* The same for n (1 or 2) 128-bit halves a[0..n-1] OP b[0..n-1] of one instruction (VEX.256):
 * the flags of both halves are combined, and with an unmasked exception neither is written.
 * The compare ops take every VEX predicate (imm 0..31). */
void sse_fp_n(struct interp_cpu *cpu, int op, int imm, xmm_t *a, const xmm_t *b, int n);

/* ---- operation cores on 128-bit values, shared by legacy SSE (dest = reg OP r/m) and the VEX
 * forms (avx*.c: dest = vvvv OP r/m, applied to each 128-bit lane of a VEX.256 operation).
 * Each computes *r from a and b (r may alias a) and returns 0 if op is not one of its own. */
/* 0F map: shuffles/bitwise (14, 15, 54-57, 70, C6; pfx as for the opcode) and, with PFX_66,
 * the packed integer ops (60-6D, 74-76, D4-FE except the shifts by register). */
int sse_core_0f(uint8_t op, int pfx, xmm_t *r, const xmm_t *a, const xmm_t *b, unsigned imm);
/* 0F 38 integer ops (not ptest / pmovsx / pmovzx / movntdqa); m: the blendv mask. */
int sse_core_0f38(uint8_t op, xmm_t *r, const xmm_t *a, const xmm_t *b, const xmm_t *m);
/* 0F 3A blendps, blendpd, pblendw, palignr, mpsadbw. */
int sse_core_0f3a(uint8_t op, xmm_t *r, const xmm_t *a, const xmm_t *b, unsigned imm);
/* Element shifts: kind 0 logical right, 1 arithmetic right, 2 left; esize 2/4/8 bytes. */
void sse_shift_elems(xmm_t *x, int kind, int esize, uint64_t count);
/* pslldq / psrldq: whole-register byte shift. */
void sse_byte_shift(xmm_t *x, int right, unsigned n);
/* ptest-style flags over n quadwords (signs: 0 all bits, 4 / 8 sign bits of dwords / qwords). */
uint64_t sse_ptest(const void *a, const void *b, int n, int signs);

/* ---- sse4.c / sse42_string.c / crc32_movbe.c ---- */
void sse_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void sse_0f3a(struct interp_cpu *cpu, struct insn *in);
void sse42_string(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm);
void crc32_movbe(struct interp_cpu *cpu, struct insn *in, uint8_t op);

#endif
