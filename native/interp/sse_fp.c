/* SIMD floating point (SSE..SSE4.1) under the guest's MXCSR.
 *
 * Every floating-point instruction is computed by the same instruction on the host's SSE
 * unit (the interpreter only runs on x86-64 hosts), inside one asm statement that saves the
 * host MXCSR, loads the guest's rounding control, DAZ and FTZ with every exception masked
 * and the flags clear, executes, reads the flags back and restores the host MXCSR: the
 * compiler cannot move floating-point work across the MXCSR switch, and results (NaN
 * propagation, denormals, rounding, rcpps' approximation) are the hardware's own.
 *
 * The host never faults, so unmasked exceptions are derived from the all-masked run as the
 * SDM describes (Vol. 1 11.5), checked against the CPU:
 *   - pre-computation exceptions (IE, DE, ZE): if one that occurred in any lane is unmasked,
 *     only the pre-computation flags are set and #XM is raised;
 *   - otherwise per lane: with UE unmasked a tiny result (even exact, which the masked run
 *     does not flag; found by a second run with FTZ set) reports UE, with OE unmasked an
 *     overflow reports OE, each with PE only if the result is inexact when rounded with an
 *     unbounded exponent (inexact_unbounded); other lanes report their masked flags.
 *     The lanes' flags are ORed; if an unmasked one is among them #XM is raised.
 * With an exception the destination is not written (#UD instead of #XM when CR4.OSXMMEXCPT
 * is clear).  The per-lane split re-runs one lane at a time with 1.0 in the other lanes.
 * VEX.256 operations run as two 128-bit halves through sse_fp_n, their flags combined as one
 * instruction's.  VEX compare predicates 8..31 are built from the legacy ones (cmp_extended).
 * Not exact: DPPS/DPPD with unmasked exceptions.  The CPU raises them step by step (the
 * multiplies, then the adds), which the single all-masked run cannot tell apart; whether #XM
 * is raised and its flags may differ there.  With exceptions masked they are exact. */
#include <math.h>
#include "sse.h"

#if !defined(__x86_64__)
#error "sse_fp.c computes with the host's SSE unit: x86-64 hosts only"
#endif

#define MX_PRE (MXCSR_IE | MXCSR_DE | MXCSR_ZE)   /* pre-computation exceptions */

typedef double v2df __attribute__((vector_size(16)));

/* One asm statement: host MXCSR saved, guest control loaded, the instruction, flags read,
 * host MXCSR restored. */
#define FP_ASM(body, outs, ins...)                                                             \
    asm volatile("stmxcsr %[host]\n\tldmxcsr %[ctl]\n\t" body "\n\tstmxcsr %[out]\n\tldmxcsr %[host]" \
                 : [host] "=m"(host), [out] "=m"(out), outs : [ctl] "m"(ctl), ins)

#define OP2(name, insn) case name: FP_ASM(insn " %[y], %[x]", [x] "+x"(x), [y] "x"(y)); break
#define OPI(insn, n) case n: FP_ASM(insn " %[i], %[y], %[x]", [x] "+x"(x), [y] "x"(y), [i] "i"(n)); break
#define OPI4(insn, n) OPI(insn, n); OPI(insn, n + 1); OPI(insn, n + 2); OPI(insn, n + 3)
#define OPI16(insn, n) OPI4(insn, n); OPI4(insn, n + 4); OPI4(insn, n + 8); OPI4(insn, n + 12)
#define OPI64(insn, n) OPI16(insn, n); OPI16(insn, n + 16); OPI16(insn, n + 32); OPI16(insn, n + 48)
#define IMM8(name, insn) case name: switch (imm & 255) { OPI64(insn, 0); OPI64(insn, 64); OPI64(insn, 128); OPI64(insn, 192); } break
#define IMM16(name, insn) case name: switch (imm & 15) { OPI16(insn, 0); } break
#define IMM8CMP(name, insn) case name: switch (imm & 7) { OPI4(insn, 0); OPI4(insn, 4); } break
#define FROM_GPR(name, insn, mod) case name: FP_ASM(insn " %" mod "[g], %[x]", [x] "+x"(x), [g] "r"(g)); break
#define TO_GPR(name, insn, mod) case name: FP_ASM(insn " %[y], %" mod "[r]", [r] "=r"(res), [y] "x"(y)); break
#define COMI(name, insn) case name:                                                               \
    asm volatile("stmxcsr %[host]\n\tldmxcsr %[ctl]\n\t" insn " %[y], %[x]\n\tstmxcsr %[out]\n\tldmxcsr %[host]" \
                 : [host] "=m"(host), [out] "=m"(out), [z] "=@ccz"(zf), [p] "=@ccp"(pf), [c] "=@ccc"(cf)   \
                 : [ctl] "m"(ctl), [x] "x"(x), [y] "x"(y));                                           \
    break

static uint32_t host_run(int op, int imm, xmm_t *a, const xmm_t *b, uint32_t ctl);

/* VEX compare predicates 8..31 (vcmpps...), from the legacy ones the host has: the relation
 * (equal, less, unordered) from predicates 0, 1 and 3, the exception flags from predicate 1
 * (signalling: QNaN operands raise IE) or 0 (quiet: only SNaNs do).  Predicate p >= 16 is
 * p - 16 with the signalling behaviour swapped. */
static uint32_t cmp_extended(int op, int p, xmm_t *a, const xmm_t *b, uint32_t ctl)
{
    static const uint16_t signalling = 0x6666;           /* bit p: predicate p (0..15) signals */
    xmm_t eq = *a, lt = *a, un = *a;
    uint32_t fq = host_run(op, 0, &eq, b, ctl), fs = host_run(op, 1, &lt, b, ctl);
    host_run(op, 3, &un, b, ctl);
    int sig = ((signalling >> (p & 15)) & 1) ^ (p >= 16);
    int esize = op == FPOP_CMPPS || op == FPOP_CMPSS ? 4 : 8;
    int count = op == FPOP_CMPPS ? 4 : op == FPOP_CMPPD ? 2 : 1;
    for (int i = 0; i < count; i++) {
        uint64_t e, l, u, res;
        if (esize == 4) { e = eq.d[i] & 1; l = lt.d[i] & 1; u = un.d[i] & 1; }
        else { e = eq.q[i] & 1; l = lt.q[i] & 1; u = un.q[i] & 1; }
        uint64_t g = !u && !e && !l;
        switch (p & 15) {
        case 0: res = e; break;
        case 1: res = l; break;
        case 2: res = l | e; break;
        case 3: res = u; break;
        case 4: res = !e; break;
        case 5: res = !l; break;
        case 6: res = !(l | e); break;
        case 7: res = !u; break;
        case 8: res = e | u; break;
        case 9: res = l | u; break;
        case 10: res = !g; break;
        case 11: res = 0; break;
        case 12: res = !e && !u; break;
        case 13: res = g | e; break;
        case 14: res = g; break;
        default: res = 1; break;
        }
        if (esize == 4) a->d[i] = res ? ~0u : 0;
        else a->q[i] = res ? ~0ULL : 0;
    }
    return sig ? fs : fq;
}

/* Run `op` on the host with MXCSR = ctl; returns the MXCSR the host ended with. */
static uint32_t host_run(int op, int imm, xmm_t *a, const xmm_t *b, uint32_t ctl)
{
    if (op >= FPOP_CMPPS && op <= FPOP_CMPSD && (imm & 31) >= 8)
        return cmp_extended(op, imm & 31, a, b, ctl);
    uint32_t host, out = 0;
    v2df x, y;
    uint64_t g = b->q[0], res = 0;
    int zf = 0, pf = 0, cf = 0;
    memcpy(&x, a, 16);
    memcpy(&y, b, 16);
    switch (op) {
    OP2(FPOP_ADDPS, "addps"); OP2(FPOP_ADDPD, "addpd"); OP2(FPOP_ADDSS, "addss"); OP2(FPOP_ADDSD, "addsd");
    OP2(FPOP_SUBPS, "subps"); OP2(FPOP_SUBPD, "subpd"); OP2(FPOP_SUBSS, "subss"); OP2(FPOP_SUBSD, "subsd");
    OP2(FPOP_MULPS, "mulps"); OP2(FPOP_MULPD, "mulpd"); OP2(FPOP_MULSS, "mulss"); OP2(FPOP_MULSD, "mulsd");
    OP2(FPOP_DIVPS, "divps"); OP2(FPOP_DIVPD, "divpd"); OP2(FPOP_DIVSS, "divss"); OP2(FPOP_DIVSD, "divsd");
    OP2(FPOP_MINPS, "minps"); OP2(FPOP_MINPD, "minpd"); OP2(FPOP_MINSS, "minss"); OP2(FPOP_MINSD, "minsd");
    OP2(FPOP_MAXPS, "maxps"); OP2(FPOP_MAXPD, "maxpd"); OP2(FPOP_MAXSS, "maxss"); OP2(FPOP_MAXSD, "maxsd");
    OP2(FPOP_SQRTPS, "sqrtps"); OP2(FPOP_SQRTPD, "sqrtpd"); OP2(FPOP_SQRTSS, "sqrtss"); OP2(FPOP_SQRTSD, "sqrtsd");
    OP2(FPOP_RSQRTPS, "rsqrtps"); OP2(FPOP_RSQRTSS, "rsqrtss"); OP2(FPOP_RCPPS, "rcpps"); OP2(FPOP_RCPSS, "rcpss");
    IMM8CMP(FPOP_CMPPS, "cmpps"); IMM8CMP(FPOP_CMPPD, "cmppd"); IMM8CMP(FPOP_CMPSS, "cmpss"); IMM8CMP(FPOP_CMPSD, "cmpsd");
    COMI(FPOP_COMISS, "comiss"); COMI(FPOP_UCOMISS, "ucomiss"); COMI(FPOP_COMISD, "comisd"); COMI(FPOP_UCOMISD, "ucomisd");
    OP2(FPOP_CVTPS2PD, "cvtps2pd"); OP2(FPOP_CVTPD2PS, "cvtpd2ps"); OP2(FPOP_CVTSS2SD, "cvtss2sd");
    OP2(FPOP_CVTSD2SS, "cvtsd2ss"); OP2(FPOP_CVTDQ2PS, "cvtdq2ps"); OP2(FPOP_CVTPS2DQ, "cvtps2dq");
    OP2(FPOP_CVTTPS2DQ, "cvttps2dq"); OP2(FPOP_CVTDQ2PD, "cvtdq2pd"); OP2(FPOP_CVTPD2DQ, "cvtpd2dq");
    OP2(FPOP_CVTTPD2DQ, "cvttpd2dq");
    FROM_GPR(FPOP_CVTSI2SS32, "cvtsi2ssl", "k"); FROM_GPR(FPOP_CVTSI2SS64, "cvtsi2ssq", "q");
    FROM_GPR(FPOP_CVTSI2SD32, "cvtsi2sdl", "k"); FROM_GPR(FPOP_CVTSI2SD64, "cvtsi2sdq", "q");
    TO_GPR(FPOP_CVTSS2SI32, "cvtss2si", "k"); TO_GPR(FPOP_CVTSS2SI64, "cvtss2si", "q");
    TO_GPR(FPOP_CVTSD2SI32, "cvtsd2si", "k"); TO_GPR(FPOP_CVTSD2SI64, "cvtsd2si", "q");
    TO_GPR(FPOP_CVTTSS2SI32, "cvttss2si", "k"); TO_GPR(FPOP_CVTTSS2SI64, "cvttss2si", "q");
    TO_GPR(FPOP_CVTTSD2SI32, "cvttsd2si", "k"); TO_GPR(FPOP_CVTTSD2SI64, "cvttsd2si", "q");
    OP2(FPOP_ADDSUBPS, "addsubps"); OP2(FPOP_ADDSUBPD, "addsubpd"); OP2(FPOP_HADDPS, "haddps");
    OP2(FPOP_HADDPD, "haddpd"); OP2(FPOP_HSUBPS, "hsubps"); OP2(FPOP_HSUBPD, "hsubpd");
    IMM16(FPOP_ROUNDPS, "roundps"); IMM16(FPOP_ROUNDPD, "roundpd"); IMM16(FPOP_ROUNDSS, "roundss");
    IMM16(FPOP_ROUNDSD, "roundsd");
    IMM8(FPOP_DPPS, "dpps"); IMM8(FPOP_DPPD, "dppd");
    default: return 0;
    }
    memcpy(a, &x, 16);
    switch (op) {
    case FPOP_COMISS: case FPOP_UCOMISS: case FPOP_COMISD: case FPOP_UCOMISD:
        a->q[0] = (zf ? FL_ZF : 0) | (pf ? FL_PF : 0) | (cf ? FL_CF : 0);
        break;
    case FPOP_CVTSS2SI32: case FPOP_CVTSS2SI64: case FPOP_CVTSD2SI32: case FPOP_CVTSD2SI64:
    case FPOP_CVTTSS2SI32: case FPOP_CVTTSS2SI64: case FPOP_CVTTSD2SI32: case FPOP_CVTTSD2SI64:
        a->q[0] = res;
        break;
    default:
        break;
    }
    return out;
}

/* How an op's lanes can be run one at a time: element size and count of the inputs, and
 * whether output lane k reads input lane k (LANEWISE) or a pair (HORIZ, haddps/hsubps...). */
enum { SCALAR, LANEWISE, HORIZ, MIXED };
struct lanes { uint8_t kind, esize, count; };

static struct lanes lanes_of(int op)
{
    switch (op) {
    case FPOP_ADDPS: case FPOP_SUBPS: case FPOP_MULPS: case FPOP_DIVPS: case FPOP_MINPS: case FPOP_MAXPS:
    case FPOP_SQRTPS: case FPOP_RSQRTPS: case FPOP_RCPPS: case FPOP_CMPPS: case FPOP_CVTDQ2PS:
    case FPOP_CVTPS2DQ: case FPOP_CVTTPS2DQ: case FPOP_ADDSUBPS: case FPOP_ROUNDPS:
        return (struct lanes){LANEWISE, 4, 4};
    case FPOP_ADDPD: case FPOP_SUBPD: case FPOP_MULPD: case FPOP_DIVPD: case FPOP_MINPD: case FPOP_MAXPD:
    case FPOP_SQRTPD: case FPOP_CMPPD: case FPOP_CVTPD2PS: case FPOP_CVTPD2DQ: case FPOP_CVTTPD2DQ:
    case FPOP_ADDSUBPD: case FPOP_ROUNDPD:
        return (struct lanes){LANEWISE, 8, 2};
    case FPOP_CVTPS2PD: case FPOP_CVTDQ2PD:
        return (struct lanes){LANEWISE, 4, 2};
    case FPOP_HADDPS: case FPOP_HSUBPS:
        return (struct lanes){HORIZ, 4, 4};
    case FPOP_HADDPD: case FPOP_HSUBPD:
        return (struct lanes){HORIZ, 8, 2};
    case FPOP_DPPS: case FPOP_DPPD:
        return (struct lanes){MIXED, 4, 4};
    default:
        return (struct lanes){SCALAR, 4, 1};
    }
}

/* Is x OP y inexact when rounded with an unbounded exponent range?  That is what PE reports
 * next to an unmasked overflow or underflow (the masked run saw the rounding to infinity or
 * to a denormal instead).  Computed on mantissas or halves, which cannot overflow:
 * mul/div on frexp() mantissas (the remainder by fma), add/sub by TwoSum on halves (a tiny
 * sum is always exact), conversions to single by the bits a float cannot hold. */
enum { K_OTHER, K_ADD, K_SUB, K_MUL, K_DIV, K_NARROW };

static int kind_of(int op, int lane)
{
    switch (op) {
    case FPOP_ADDPS: case FPOP_ADDPD: case FPOP_ADDSS: case FPOP_ADDSD: case FPOP_HADDPS: case FPOP_HADDPD:
        return K_ADD;
    case FPOP_SUBPS: case FPOP_SUBPD: case FPOP_SUBSS: case FPOP_SUBSD: case FPOP_HSUBPS: case FPOP_HSUBPD:
        return K_SUB;
    case FPOP_ADDSUBPS: case FPOP_ADDSUBPD:
        return (lane & 1) ? K_ADD : K_SUB;
    case FPOP_MULPS: case FPOP_MULPD: case FPOP_MULSS: case FPOP_MULSD:
        return K_MUL;
    case FPOP_DIVPS: case FPOP_DIVPD: case FPOP_DIVSS: case FPOP_DIVSD:
        return K_DIV;
    case FPOP_CVTSD2SS: case FPOP_CVTPD2PS:
        return K_NARROW;
    default:
        return K_OTHER;
    }
}

static int inexact_unbounded(int kind, double x, double y, int single, int tiny)
{
    int ex, ey;
    switch (kind) {
    case K_MUL: case K_DIV: {
        double mx = frexp(x, &ex), my = frexp(y, &ey);
        if (mx == 0 || my == 0 || !isfinite(mx) || !isfinite(my))
            return 0;
        if (single) {
            float fx = (float)mx, fy = (float)my;
            if (kind == K_MUL) { double p = (double)fx * fy; return (double)(float)p != p; }
            float q = fx / fy;
            return fmaf(q, fy, -fx) != 0;
        }
        if (kind == K_MUL) { double p = mx * my; return fma(mx, my, -p) != 0; }
        double q = mx / my;
        return fma(q, my, -mx) != 0;
    }
    case K_ADD: case K_SUB: {
        if (tiny)
            return 0;                                    /* a sum in the denormal range is exact */
        if (kind == K_SUB)
            y = -y;
        if (single) {
            float a = (float)x * 0.5f, b = (float)y * 0.5f;
            if ((double)a * 2 != x || (double)b * 2 != y)
                return 1;                                /* a denormal next to an overflowing sum */
            float sum = a + b, bb = sum - a;
            return (a - (sum - bb)) + (b - bb) != 0;
        }
        double a = x * 0.5, b = y * 0.5;
        if (a * 2 != x || b * 2 != y)
            return 1;
        double sum = a + b, bb = sum - a;
        return (a - (sum - bb)) + (b - bb) != 0;
    }
    case K_NARROW: {
        double m = frexp(x, &ex);
        return (double)(float)m != m;
    }
    default:
        return 0;
    }
}

static double lane_value(const xmm_t *x, int esize, int i)
{
    return esize == 4 ? (double)x->f[i] : x->df[i];
}

/* The flags one lane reports, from its all-masked flags f and whether it is tiny; `inexact`
 * says whether the result is inexact with an unbounded exponent. */
static uint32_t lane_flags(uint32_t f, int tiny, uint32_t unmasked, int inexact)
{
    if ((unmasked & MXCSR_UE) && tiny)
        return (f & MX_PRE) | MXCSR_UE | (inexact ? MXCSR_PE : 0);
    if ((unmasked & MXCSR_OE) && (f & MXCSR_OE))
        return (f & MX_PRE) | MXCSR_OE | (inexact ? MXCSR_PE : 0);
    return f;
}

static void fill_one(xmm_t *x, int esize)
{
    for (int i = 0; i < 16 / esize; i++) {
        if (esize == 4) x->d[i] = 0x3f800000u;
        else x->q[i] = 0x3ff0000000000000ull;
    }
}

static void copy_elem(xmm_t *dst, const xmm_t *src, int esize, int i)
{
    memcpy(dst->b + esize * i, src->b + esize * i, esize);
}

/* Flags of an op that raised an unmasked post-computation exception, lane by lane. */
static uint32_t split_flags(int op, int imm, const xmm_t *a, const xmm_t *b, uint32_t ctl, uint32_t unmasked,
                            uint32_t f_all, int tiny_all)
{
    struct lanes l = lanes_of(op);
    if (l.kind == SCALAR || l.kind == MIXED) {
        int single = op == FPOP_ADDSS || op == FPOP_SUBSS || op == FPOP_MULSS || op == FPOP_DIVSS;
        int inexact = l.kind == SCALAR &&
                      inexact_unbounded(kind_of(op, 0), single ? a->f[0] : a->df[0], single ? b->f[0] : b->df[0],
                                        single, tiny_all);
        if (op == FPOP_CVTSD2SS)
            inexact = inexact_unbounded(K_NARROW, b->df[0], 0, 0, tiny_all);
        return lane_flags(f_all, tiny_all, unmasked, inexact);
    }
    uint32_t flags = 0;
    int per_half = l.count / 2;
    for (int k = 0; k < l.count; k++) {
        xmm_t la, lb, r;
        double x, y;
        fill_one(&la, l.esize);
        fill_one(&lb, l.esize);
        if (l.kind == LANEWISE) {
            copy_elem(&la, a, l.esize, k);
            copy_elem(&lb, b, l.esize, k);
            x = lane_value(a, l.esize, k);
            y = lane_value(b, l.esize, k);
            if (kind_of(op, k) == K_NARROW)
                x = y;                                   /* the source is b */
        } else {                                         /* output k: a pair of a (low half) or b */
            const xmm_t *s = k < per_half ? a : b;
            xmm_t *d = k < per_half ? &la : &lb;
            int j = 2 * (k % per_half);
            copy_elem(d, s, l.esize, j);
            copy_elem(d, s, l.esize, j + 1);
            x = lane_value(s, l.esize, j);
            y = lane_value(s, l.esize, j + 1);
        }
        r = la;
        uint32_t f = host_run(op, imm, &r, &lb, ctl) & 0x3f;
        int tiny = 0;
        if (unmasked & MXCSR_UE) {
            r = la;
            tiny = (host_run(op, imm, &r, &lb, ctl | MXCSR_FTZ) & MXCSR_UE) != 0;
        }
        flags |= lane_flags(f, tiny, unmasked, inexact_unbounded(kind_of(op, k), x, y, l.esize == 4, tiny));
    }
    return flags;
}

void sse_fp_n(struct interp_cpu *cpu, int op, int imm, xmm_t *a, const xmm_t *b, int n)
{
    uint32_t mx = mxcsr_get(cpu);
    uint32_t ctl = (mx & ~0x3fu) | 0x1f80;
    uint32_t unmasked = ~(mx >> 7) & 0x3f;
    xmm_t r[2];
    uint32_t fh[2] = {0, 0}, f = 0;
    for (int h = 0; h < n; h++) {
        r[h] = a[h];
        fh[h] = host_run(op, imm, &r[h], &b[h], ctl) & 0x3f;
        f |= fh[h];
    }
    if (unmasked) {
        /* A 256-bit operation is one instruction: pre-computation exceptions of either half
         * come first, then the post-computation ones of both halves together. */
        if (f & unmasked & MX_PRE)
            mxcsr_exception(cpu, f & MX_PRE);
        int tiny[2] = {0, 0}, any_tiny = 0;
        if (unmasked & MXCSR_UE)
            for (int h = 0; h < n; h++) {
                xmm_t t = a[h];
                tiny[h] = (host_run(op, imm, &t, &b[h], ctl | MXCSR_FTZ) & MXCSR_UE) != 0;
                any_tiny |= tiny[h];
            }
        if ((f & unmasked) || any_tiny) {
            uint32_t flags = 0;
            for (int h = 0; h < n; h++)
                flags |= split_flags(op, imm, &a[h], &b[h], ctl, unmasked, fh[h], tiny[h]);
            mxcsr_exception(cpu, flags);
        }
    }
    if (f & ~mx) {
        mx |= f;
        memcpy(cpu->fxsave + FX_MXCSR, &mx, 4);
    }
    for (int h = 0; h < n; h++)
        a[h] = r[h];
}

void sse_fp(struct interp_cpu *cpu, int op, int imm, xmm_t *a, const xmm_t *b)
{
    sse_fp_n(cpu, op, imm, a, b, 1);
}
