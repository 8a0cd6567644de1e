/* SSE/SSE2 (and a little SSSE3): XMM moves, integer SIMD, bitwise, and scalar/packed
 * single/double arithmetic, compares and conversions.
 *
 * Floating point uses the host's IEEE arithmetic in round-to-nearest; MXCSR rounding
 * control, exception flags and DAZ/FTZ are not modelled, SIMD FP exceptions never raise.
 * MMX forms (no mandatory prefix on the integer opcodes) are not implemented. */
#include <math.h>
#include <stdlib.h>
#include "interp.h"

typedef union {
    uint8_t b[16]; int8_t sb[16];
    uint16_t w[8]; int16_t sw[8];
    uint32_t d[4]; int32_t sd[4];
    uint64_t q[2]; int64_t sq[2];
    float f[4]; double df[2];
} xmm_t;

enum { PFX_NONE = 0, PFX_66 = 1, PFX_F2 = 2, PFX_F3 = 3 };

static void xmm_get(struct interp_cpu *cpu, int r, xmm_t *x) { memcpy(x, FX_XMM(cpu, r), 16); }
static void xmm_put(struct interp_cpu *cpu, int r, const xmm_t *x) { memcpy(FX_XMM(cpu, r), x, 16); }

/* xmm/m128 source; legacy SSE memory operands must be 16-byte aligned unless `unaligned`. */
static void src128(struct interp_cpu *cpu, struct insn *in, xmm_t *x, int unaligned)
{
    if (in->mod == 3) {
        xmm_get(cpu, in->rm, x);
        return;
    }
    if (!unaligned && (in->ea & 15))
        RAISE_GP0(cpu);
    mem_read_buf(cpu, in->easeg, in->ea, x, 16);
}

/* xmm/m32 or xmm/m64 source (only the low `bytes` matter). */
static void src_low(struct interp_cpu *cpu, struct insn *in, xmm_t *x, int bytes)
{
    if (in->mod == 3) {
        xmm_get(cpu, in->rm, x);
        return;
    }
    memset(x, 0, 16);
    mem_read_buf(cpu, in->easeg, in->ea, x, bytes);
}

static void dst128(struct interp_cpu *cpu, struct insn *in, const xmm_t *x, int unaligned)
{
    if (in->mod == 3) {
        xmm_put(cpu, in->rm, x);
        return;
    }
    if (!unaligned && (in->ea & 15))
        RAISE_GP0(cpu);
    mem_write_buf(cpu, in->easeg, in->ea, x, 16);
}

static int8_t sat8(int v) { return v > 127 ? 127 : v < -128 ? -128 : v; }
static uint8_t satu8(int v) { return v > 255 ? 255 : v < 0 ? 0 : v; }
static int16_t sat16(int v) { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
static uint16_t satu16(int v) { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

/* Packed integer two-operand ops (66-prefixed, reg = reg op src).  Returns 0 if unknown. */
static int packed_int(uint8_t op, xmm_t *a, const xmm_t *b)
{
    xmm_t r = *a;
    int i;
    switch (op) {
    case 0x60: for (i = 0; i < 8; i++) { r.b[2 * i] = a->b[i]; r.b[2 * i + 1] = b->b[i]; } break;
    case 0x61: for (i = 0; i < 4; i++) { r.w[2 * i] = a->w[i]; r.w[2 * i + 1] = b->w[i]; } break;
    case 0x62: for (i = 0; i < 2; i++) { r.d[2 * i] = a->d[i]; r.d[2 * i + 1] = b->d[i]; } break;
    case 0x63: for (i = 0; i < 8; i++) { r.sb[i] = sat8(a->sw[i]); r.sb[i + 8] = sat8(b->sw[i]); } break;
    case 0x64: for (i = 0; i < 16; i++) r.b[i] = a->sb[i] > b->sb[i] ? 0xff : 0; break;
    case 0x65: for (i = 0; i < 8; i++) r.w[i] = a->sw[i] > b->sw[i] ? 0xffff : 0; break;
    case 0x66: for (i = 0; i < 4; i++) r.d[i] = a->sd[i] > b->sd[i] ? ~0u : 0; break;
    case 0x67: for (i = 0; i < 8; i++) { r.b[i] = satu8(a->sw[i]); r.b[i + 8] = satu8(b->sw[i]); } break;
    case 0x68: for (i = 0; i < 8; i++) { r.b[2 * i] = a->b[i + 8]; r.b[2 * i + 1] = b->b[i + 8]; } break;
    case 0x69: for (i = 0; i < 4; i++) { r.w[2 * i] = a->w[i + 4]; r.w[2 * i + 1] = b->w[i + 4]; } break;
    case 0x6a: for (i = 0; i < 2; i++) { r.d[2 * i] = a->d[i + 2]; r.d[2 * i + 1] = b->d[i + 2]; } break;
    case 0x6b: for (i = 0; i < 4; i++) { r.sw[i] = sat16(a->sd[i]); r.sw[i + 4] = sat16(b->sd[i]); } break;
    case 0x6c: r.q[0] = a->q[0]; r.q[1] = b->q[0]; break;
    case 0x6d: r.q[0] = a->q[1]; r.q[1] = b->q[1]; break;
    case 0x74: for (i = 0; i < 16; i++) r.b[i] = a->b[i] == b->b[i] ? 0xff : 0; break;
    case 0x75: for (i = 0; i < 8; i++) r.w[i] = a->w[i] == b->w[i] ? 0xffff : 0; break;
    case 0x76: for (i = 0; i < 4; i++) r.d[i] = a->d[i] == b->d[i] ? ~0u : 0; break;
    case 0xd4: for (i = 0; i < 2; i++) r.q[i] = a->q[i] + b->q[i]; break;
    case 0xd5: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(a->sw[i] * b->sw[i]); break;
    case 0xd8: for (i = 0; i < 16; i++) r.b[i] = satu8(a->b[i] - b->b[i]); break;
    case 0xd9: for (i = 0; i < 8; i++) r.w[i] = satu16(a->w[i] - b->w[i]); break;
    case 0xda: for (i = 0; i < 16; i++) r.b[i] = a->b[i] < b->b[i] ? a->b[i] : b->b[i]; break;
    case 0xdb: r.q[0] = a->q[0] & b->q[0]; r.q[1] = a->q[1] & b->q[1]; break;
    case 0xdc: for (i = 0; i < 16; i++) r.b[i] = satu8(a->b[i] + b->b[i]); break;
    case 0xdd: for (i = 0; i < 8; i++) r.w[i] = satu16(a->w[i] + b->w[i]); break;
    case 0xde: for (i = 0; i < 16; i++) r.b[i] = a->b[i] > b->b[i] ? a->b[i] : b->b[i]; break;
    case 0xdf: r.q[0] = ~a->q[0] & b->q[0]; r.q[1] = ~a->q[1] & b->q[1]; break;
    case 0xe0: for (i = 0; i < 16; i++) r.b[i] = (a->b[i] + b->b[i] + 1) >> 1; break;
    case 0xe3: for (i = 0; i < 8; i++) r.w[i] = (a->w[i] + b->w[i] + 1) >> 1; break;
    case 0xe4: for (i = 0; i < 8; i++) r.w[i] = ((uint32_t)a->w[i] * b->w[i]) >> 16; break;
    case 0xe5: for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(((int32_t)a->sw[i] * b->sw[i]) >> 16); break;
    case 0xe8: for (i = 0; i < 16; i++) r.sb[i] = sat8(a->sb[i] - b->sb[i]); break;
    case 0xe9: for (i = 0; i < 8; i++) r.sw[i] = sat16(a->sw[i] - b->sw[i]); break;
    case 0xea: for (i = 0; i < 8; i++) r.sw[i] = a->sw[i] < b->sw[i] ? a->sw[i] : b->sw[i]; break;
    case 0xeb: r.q[0] = a->q[0] | b->q[0]; r.q[1] = a->q[1] | b->q[1]; break;
    case 0xec: for (i = 0; i < 16; i++) r.sb[i] = sat8(a->sb[i] + b->sb[i]); break;
    case 0xed: for (i = 0; i < 8; i++) r.sw[i] = sat16(a->sw[i] + b->sw[i]); break;
    case 0xee: for (i = 0; i < 8; i++) r.sw[i] = a->sw[i] > b->sw[i] ? a->sw[i] : b->sw[i]; break;
    case 0xef: r.q[0] = a->q[0] ^ b->q[0]; r.q[1] = a->q[1] ^ b->q[1]; break;
    case 0xf4: for (i = 0; i < 2; i++) r.q[i] = (uint64_t)a->d[2 * i] * b->d[2 * i]; break;
    case 0xf5: for (i = 0; i < 4; i++) r.sd[i] = a->sw[2 * i] * b->sw[2 * i] + a->sw[2 * i + 1] * b->sw[2 * i + 1]; break;
    case 0xf6: {
        for (int h = 0; h < 2; h++) {
            unsigned sum = 0;
            for (i = 0; i < 8; i++)
                sum += abs(a->b[8 * h + i] - b->b[8 * h + i]);
            r.q[h] = sum;
        }
        break;
    }
    case 0xf8: for (i = 0; i < 16; i++) r.b[i] = a->b[i] - b->b[i]; break;
    case 0xf9: for (i = 0; i < 8; i++) r.w[i] = a->w[i] - b->w[i]; break;
    case 0xfa: for (i = 0; i < 4; i++) r.d[i] = a->d[i] - b->d[i]; break;
    case 0xfb: for (i = 0; i < 2; i++) r.q[i] = a->q[i] - b->q[i]; break;
    case 0xfc: for (i = 0; i < 16; i++) r.b[i] = a->b[i] + b->b[i]; break;
    case 0xfd: for (i = 0; i < 8; i++) r.w[i] = a->w[i] + b->w[i]; break;
    case 0xfe: for (i = 0; i < 4; i++) r.d[i] = a->d[i] + b->d[i]; break;
    default: return 0;
    }
    *a = r;
    return 1;
}

/* Element shifts: kind 0 logical right, 1 arithmetic right, 2 left; esize 2/4/8 bytes. */
static void shift_elems(xmm_t *x, int kind, int esize, uint64_t count)
{
    int bits = 8 * esize, n = 16 / esize;
    for (int i = 0; i < n; i++) {
        uint64_t v = esize == 2 ? x->w[i] : esize == 4 ? x->d[i] : x->q[i];
        if (kind == 1) {
            int64_t s = sext(v, esize);
            v = (uint64_t)(s >> (count >= (uint64_t)bits ? (uint64_t)bits - 1 : count));
        } else if (count >= (uint64_t)bits) {
            v = 0;
        } else {
            v = kind == 0 ? v >> count : v << count;
        }
        if (esize == 2) x->w[i] = v;
        else if (esize == 4) x->d[i] = v;
        else x->q[i] = v;
    }
}

static void byte_shift(xmm_t *x, int right, unsigned n)
{
    xmm_t r;
    memset(&r, 0, 16);
    if (n < 16)
        for (int i = 0; i < 16; i++) {
            int src = right ? i + (int)n : i - (int)n;
            if (src >= 0 && src < 16)
                r.b[i] = x->b[src];
        }
    *x = r;
}

static void shift_imm_group(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    unsigned imm = fetch_imm(cpu, in, 1);
    int sub = in->reg & 7;
    xmm_t x;
    if (in->mod != 3)
        RAISE_UD(cpu);
    xmm_get(cpu, in->rm, &x);
    int esize = op == 0x71 ? 2 : op == 0x72 ? 4 : 8;
    if (op == 0x73 && (sub == 3 || sub == 7))
        byte_shift(&x, sub == 3, imm);
    else if (sub == 2)
        shift_elems(&x, 0, esize, imm);
    else if (sub == 4 && op != 0x73)
        shift_elems(&x, 1, esize, imm);
    else if (sub == 6)
        shift_elems(&x, 2, esize, imm);
    else
        RAISE_UD(cpu);
    xmm_put(cpu, in->rm, &x);
}

static double fp_op(int op, double a, double b)
{
    switch (op) {
    case 0x58: return a + b;
    case 0x59: return a * b;
    case 0x5c: return a - b;
    case 0x5d: return a < b ? a : b;
    case 0x5e: return a / b;
    case 0x5f: return a > b ? a : b;
    default: return sqrt(b);
    }
}

static float fp_op_f(int op, float a, float b)
{
    switch (op) {
    case 0x58: return a + b;
    case 0x59: return a * b;
    case 0x5c: return a - b;
    case 0x5d: return a < b ? a : b;
    case 0x5e: return a / b;
    case 0x5f: return a > b ? a : b;
    default: return sqrtf(b);
    }
}

static int fp_cmp(int pred, double a, double b)
{
    int unord = isnan(a) || isnan(b);
    switch (pred & 7) {
    case 0: return !unord && a == b;
    case 1: return !unord && a < b;
    case 2: return !unord && a <= b;
    case 3: return unord;
    case 4: return unord || a != b;
    case 5: return unord || !(a < b);
    case 6: return unord || !(a <= b);
    default: return !unord;
    }
}

/* Float -> integer with the x86 "integer indefinite" result for NaN and overflow. */
static int64_t cvt_to_int(double v, int size, int truncate)
{
    double r = truncate ? trunc(v) : nearbyint(v);
    double lim = size == 8 ? 9223372036854775808.0 : 2147483648.0;
    if (isnan(r) || r >= lim || r < -lim)
        return size == 8 ? INT64_MIN : INT32_MIN;
    return (int64_t)r;
}

static void sse_arith(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t a, b;
    xmm_get(cpu, in->reg, &a);
    switch (pfx) {
    case PFX_NONE:
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 4; i++) a.f[i] = fp_op_f(op, a.f[i], b.f[i]);
        break;
    case PFX_66:
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 2; i++) a.df[i] = fp_op(op, a.df[i], b.df[i]);
        break;
    case PFX_F3:
        src_low(cpu, in, &b, 4);
        a.f[0] = fp_op_f(op, a.f[0], b.f[0]);
        break;
    default:
        src_low(cpu, in, &b, 8);
        a.df[0] = fp_op(op, a.df[0], b.df[0]);
        break;
    }
    xmm_put(cpu, in->reg, &a);
}

static void sse_convert(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t a, b, r;
    xmm_get(cpu, in->reg, &a);
    r = a;
    switch (op) {
    case 0x5a:
        if (pfx == PFX_F3) { src_low(cpu, in, &b, 4); r.df[0] = b.f[0]; }
        else if (pfx == PFX_F2) { src_low(cpu, in, &b, 8); r.f[0] = (float)b.df[0]; }
        else if (pfx == PFX_NONE) { src_low(cpu, in, &b, 8); r.df[0] = b.f[0]; r.df[1] = b.f[1]; }
        else { src128(cpu, in, &b, 0); r.f[0] = (float)b.df[0]; r.f[1] = (float)b.df[1]; r.q[1] = 0; }
        break;
    case 0x5b:
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 4; i++) {
            if (pfx == PFX_NONE) r.f[i] = (float)b.sd[i];
            else r.sd[i] = (int32_t)cvt_to_int(b.f[i], 4, pfx == PFX_F3);
        }
        break;
    default:                                             /* 0xe6 */
        if (pfx == PFX_F3) {
            src_low(cpu, in, &b, 8);
            r.df[0] = b.sd[0];
            r.df[1] = b.sd[1];
        } else {
            src128(cpu, in, &b, 0);
            r.sd[0] = (int32_t)cvt_to_int(b.df[0], 4, pfx == PFX_66);
            r.sd[1] = (int32_t)cvt_to_int(b.df[1], 4, pfx == PFX_66);
            r.q[1] = 0;
        }
        break;
    }
    xmm_put(cpu, in->reg, &r);
}

static void sse_comis(struct interp_cpu *cpu, struct insn *in, int dbl)
{
    xmm_t a, b;
    xmm_get(cpu, in->reg, &a);
    src_low(cpu, in, &b, dbl ? 8 : 4);
    double x = dbl ? a.df[0] : a.f[0], y = dbl ? b.df[0] : b.f[0];
    uint64_t f;
    if (isnan(x) || isnan(y)) f = FL_ZF | FL_PF | FL_CF;
    else if (x < y) f = FL_CF;
    else if (x == y) f = FL_ZF;
    else f = 0;
    flags_set(cpu, FL_ARITH, f);
}

static void sse_moves(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t x, y;
    switch (op) {
    case 0x10: case 0x11:                                /* movups/movupd/movss/movsd */
        if (pfx == PFX_NONE || pfx == PFX_66) {
            if (op == 0x10) { src128(cpu, in, &x, 1); xmm_put(cpu, in->reg, &x); }
            else { xmm_get(cpu, in->reg, &x); dst128(cpu, in, &x, 1); }
            return;
        }
        {
            int bytes = pfx == PFX_F3 ? 4 : 8;
            if (op == 0x10) {
                xmm_get(cpu, in->reg, &x);
                if (in->mod == 3) { xmm_get(cpu, in->rm, &y); memcpy(&x, &y, bytes); }
                else { src_low(cpu, in, &x, bytes); }
                xmm_put(cpu, in->reg, &x);
            } else {
                xmm_get(cpu, in->reg, &x);
                if (in->mod == 3) { xmm_get(cpu, in->rm, &y); memcpy(&y, &x, bytes); xmm_put(cpu, in->rm, &y); }
                else mem_write_buf(cpu, in->easeg, in->ea, &x, bytes);
            }
        }
        return;
    case 0x12: case 0x16:                                /* movlps/movlpd/movhlps, movhps/movhpd/movlhps */
        if (pfx >= PFX_F2)
            raise_unimplemented(cpu);                    /* SSE3 movddup/movsldup/movshdup */
        xmm_get(cpu, in->reg, &x);
        if (in->mod == 3) {
            if (pfx == PFX_66) RAISE_UD(cpu);
            xmm_get(cpu, in->rm, &y);
            if (op == 0x12) x.q[0] = y.q[1]; else x.q[1] = y.q[0];
        } else {
            uint64_t v = mem_read(cpu, in->easeg, in->ea, 8);
            x.q[op == 0x12 ? 0 : 1] = v;
        }
        xmm_put(cpu, in->reg, &x);
        return;
    case 0x13: case 0x17:
        if (in->mod == 3 || pfx >= PFX_F2) RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &x);
        mem_write(cpu, in->easeg, in->ea, 8, x.q[op == 0x13 ? 0 : 1]);
        return;
    case 0x28: case 0x29:                                /* movaps/movapd */
        if (pfx >= PFX_F2) raise_unimplemented(cpu);
        if (op == 0x28) { src128(cpu, in, &x, 0); xmm_put(cpu, in->reg, &x); }
        else { xmm_get(cpu, in->reg, &x); dst128(cpu, in, &x, 0); }
        return;
    case 0x2b: case 0xe7:                                /* movntps/pd, movntdq */
        if (in->mod == 3) RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &x);
        dst128(cpu, in, &x, 0);
        return;
    case 0x6f: case 0x7f:                                /* movdqa / movdqu */
        if (op == 0x6f) { src128(cpu, in, &x, pfx == PFX_F3); xmm_put(cpu, in->reg, &x); }
        else { xmm_get(cpu, in->reg, &x); dst128(cpu, in, &x, pfx == PFX_F3); }
        return;
    case 0x6e: {                                         /* movd/movq xmm, r/m */
        int size = (in->rex & 8) ? 8 : 4;
        memset(&x, 0, 16);
        x.q[0] = rm_read(cpu, in, size);
        xmm_put(cpu, in->reg, &x);
        return;
    }
    case 0x7e:
        if (pfx == PFX_F3) {                             /* movq xmm, xmm/m64 */
            src_low(cpu, in, &y, 8);
            memset(&x, 0, 16);
            x.q[0] = y.q[0];
            xmm_put(cpu, in->reg, &x);
        } else {                                         /* movd/movq r/m, xmm */
            xmm_get(cpu, in->reg, &x);
            rm_write(cpu, in, (in->rex & 8) ? 8 : 4, x.q[0]);
        }
        return;
    default:                                             /* 0xd6: movq xmm/m64, xmm */
        xmm_get(cpu, in->reg, &x);
        if (in->mod == 3) {
            memset(&y, 0, 16);
            y.q[0] = x.q[0];
            xmm_put(cpu, in->rm, &y);
        } else {
            mem_write(cpu, in->easeg, in->ea, 8, x.q[0]);
        }
        return;
    }
}

static void sse_0f38(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t op = fetch8(cpu, in);
    decode_modrm(cpu, in);
    xmm_t a, b, r;
    if (op == 0x00 && in->pfx66) {                       /* pshufb */
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 16; i++)
            r.b[i] = (b.b[i] & 0x80) ? 0 : a.b[b.b[i] & 15];
        xmm_put(cpu, in->reg, &r);
        return;
    }
    raise_unimplemented(cpu);
}

static void sse_0f3a(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t op = fetch8(cpu, in);
    decode_modrm(cpu, in);
    unsigned imm = fetch_imm(cpu, in, 1);
    xmm_t a, b, r;
    if (op == 0x0f && in->pfx66) {                       /* palignr */
        uint8_t cat[32];
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        memcpy(cat, &b, 16);
        memcpy(cat + 16, &a, 16);
        for (int i = 0; i < 16; i++)
            r.b[i] = i + imm < 32 ? cat[i + imm] : 0;
        xmm_put(cpu, in->reg, &r);
        return;
    }
    raise_unimplemented(cpu);
}

void sse_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int pfx = in->rep == 0xf3 ? PFX_F3 : in->rep == 0xf2 ? PFX_F2 : in->pfx66 ? PFX_66 : PFX_NONE;
    xmm_t a, b;

    if (op == 0x77) {                                    /* emms */
        if (cpu->cr0 & (CR0_EM | CR0_TS))
            raise_exc(cpu, EXC_NM, 0, 0);
        cpu->fxsave[4] = 0;
        return;
    }
    if (op == 0xc3) {                                    /* movnti m, r */
        decode_modrm(cpu, in);
        if (in->mod == 3) RAISE_UD(cpu);
        rm_write(cpu, in, in->opsize == 8 ? 8 : 4, reg_get(cpu, in->reg, in->opsize == 8 ? 8 : 4, in->rex));
        return;
    }
    int known = (op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2f) || op == 0x38 || op == 0x3a ||
                (op >= 0x50 && op <= 0x7f) || (op >= 0xc2 && op <= 0xc6) || op >= 0xd0;
    if (!known)
        RAISE_UD(cpu);
    sse_check(cpu);
    if (op == 0x38) { sse_0f38(cpu, in); return; }
    if (op == 0x3a) { sse_0f3a(cpu, in); return; }
    decode_modrm(cpu, in);

    /* Integer SIMD ops exist here only in their 66-prefixed (XMM) form. */
    int int_simd = (op >= 0x60 && op <= 0x76) || op >= 0xd0;
    if (int_simd && pfx == PFX_NONE && op != 0xe7)
        raise_unimplemented(cpu);                        /* MMX */

    switch (op) {
    case 0x10: case 0x11: case 0x12: case 0x13: case 0x16: case 0x17:
    case 0x28: case 0x29: case 0x2b: case 0x6e: case 0x6f: case 0x7e: case 0x7f: case 0xd6: case 0xe7:
        sse_moves(cpu, in, op, pfx);
        return;
    case 0x14: case 0x15:                                /* unpcklps/pd, unpckhps/pd */
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        if (pfx == PFX_66) {
            a.q[0] = op == 0x14 ? a.q[0] : a.q[1];
            a.q[1] = op == 0x14 ? b.q[0] : b.q[1];
        } else {
            int h = op == 0x14 ? 0 : 2;
            uint32_t a0 = a.d[h], a1 = a.d[h + 1];
            a.d[0] = a0; a.d[1] = b.d[h]; a.d[2] = a1; a.d[3] = b.d[h + 1];
        }
        xmm_put(cpu, in->reg, &a);
        return;
    case 0x2a: {                                         /* cvtsi2ss/sd */
        if (pfx < PFX_F2) raise_unimplemented(cpu);      /* MMX forms */
        int size = (in->rex & 8) ? 8 : 4;
        int64_t v = sext(rm_read(cpu, in, size), size);
        xmm_get(cpu, in->reg, &a);
        if (pfx == PFX_F3) a.f[0] = (float)v; else a.df[0] = (double)v;
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0x2c: case 0x2d: {                              /* cvt(t)ss2si / cvt(t)sd2si */
        if (pfx < PFX_F2) raise_unimplemented(cpu);
        int size = (in->rex & 8) ? 8 : 4;
        src_low(cpu, in, &b, pfx == PFX_F3 ? 4 : 8);
        double v = pfx == PFX_F3 ? b.f[0] : b.df[0];
        reg_set(cpu, in->reg, size, 0, (uint64_t)cvt_to_int(v, size, op == 0x2c));
        return;
    }
    case 0x2e: case 0x2f:
        if (pfx >= PFX_F2) RAISE_UD(cpu);
        sse_comis(cpu, in, pfx == PFX_66);
        return;
    case 0x50: {                                         /* movmskps/pd */
        if (in->mod != 3 || pfx >= PFX_F2) RAISE_UD(cpu);
        xmm_get(cpu, in->rm, &b);
        uint32_t m = 0;
        if (pfx == PFX_66) m = (b.q[0] >> 63) | ((b.q[1] >> 63) << 1);
        else for (int i = 0; i < 4; i++) m |= (b.d[i] >> 31) << i;
        reg_set(cpu, in->reg, 4, 0, m);
        return;
    }
    case 0x51: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        sse_arith(cpu, in, op, pfx);
        return;
    case 0x54: case 0x55: case 0x56: case 0x57:          /* and/andn/or/xor ps/pd */
        if (pfx >= PFX_F2) RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 2; i++) {
            if (op == 0x54) a.q[i] &= b.q[i];
            else if (op == 0x55) a.q[i] = ~a.q[i] & b.q[i];
            else if (op == 0x56) a.q[i] |= b.q[i];
            else a.q[i] ^= b.q[i];
        }
        xmm_put(cpu, in->reg, &a);
        return;
    case 0x5a: case 0x5b: case 0xe6:
        sse_convert(cpu, in, op, pfx);
        return;
    case 0x70: {                                         /* pshufd / pshufhw / pshuflw */
        unsigned imm = fetch_imm(cpu, in, 1);
        src128(cpu, in, &b, 0);
        a = b;
        if (pfx == PFX_66)
            for (int i = 0; i < 4; i++) a.d[i] = b.d[(imm >> (2 * i)) & 3];
        else if (pfx == PFX_F3)
            for (int i = 0; i < 4; i++) a.w[4 + i] = b.w[4 + ((imm >> (2 * i)) & 3)];
        else
            for (int i = 0; i < 4; i++) a.w[i] = b.w[(imm >> (2 * i)) & 3];
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0x71: case 0x72: case 0x73:
        shift_imm_group(cpu, in, op);
        return;
    case 0xc2: {                                         /* cmpps/pd/ss/sd */
        unsigned imm = fetch_imm(cpu, in, 1);
        xmm_get(cpu, in->reg, &a);
        if (pfx == PFX_NONE) { src128(cpu, in, &b, 0); for (int i = 0; i < 4; i++) a.d[i] = fp_cmp(imm, a.f[i], b.f[i]) ? ~0u : 0; }
        else if (pfx == PFX_66) { src128(cpu, in, &b, 0); for (int i = 0; i < 2; i++) a.q[i] = fp_cmp(imm, a.df[i], b.df[i]) ? ~0ULL : 0; }
        else if (pfx == PFX_F3) { src_low(cpu, in, &b, 4); a.d[0] = fp_cmp(imm, a.f[0], b.f[0]) ? ~0u : 0; }
        else { src_low(cpu, in, &b, 8); a.q[0] = fp_cmp(imm, a.df[0], b.df[0]) ? ~0ULL : 0; }
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0xc4: {                                         /* pinsrw */
        if (pfx != PFX_66) raise_unimplemented(cpu);
        unsigned imm = fetch_imm(cpu, in, 1);
        uint16_t v = rm_read(cpu, in, 2);
        xmm_get(cpu, in->reg, &a);
        a.w[imm & 7] = v;
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0xc5: {                                         /* pextrw */
        if (pfx != PFX_66) raise_unimplemented(cpu);
        unsigned imm = fetch_imm(cpu, in, 1);
        if (in->mod != 3) RAISE_UD(cpu);
        xmm_get(cpu, in->rm, &b);
        reg_set(cpu, in->reg, 4, 0, b.w[imm & 7]);
        return;
    }
    case 0xc6: {                                         /* shufps / shufpd */
        unsigned imm = fetch_imm(cpu, in, 1);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        xmm_t r;
        if (pfx == PFX_66) {
            r.q[0] = a.q[imm & 1];
            r.q[1] = b.q[(imm >> 1) & 1];
        } else {
            r.d[0] = a.d[imm & 3]; r.d[1] = a.d[(imm >> 2) & 3];
            r.d[2] = b.d[(imm >> 4) & 3]; r.d[3] = b.d[(imm >> 6) & 3];
        }
        xmm_put(cpu, in->reg, &r);
        return;
    }
    case 0xd7: {                                         /* pmovmskb */
        if (in->mod != 3) RAISE_UD(cpu);
        xmm_get(cpu, in->rm, &b);
        uint32_t m = 0;
        for (int i = 0; i < 16; i++) m |= (uint32_t)(b.b[i] >> 7) << i;
        reg_set(cpu, in->reg, 4, 0, m);
        return;
    }
    case 0xd1: case 0xd2: case 0xd3: case 0xe1: case 0xe2: case 0xf1: case 0xf2: case 0xf3: {
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        int esize = (op & 3) == 1 ? 2 : (op & 3) == 2 ? 4 : 8;
        int kind = op >= 0xf1 ? 2 : op >= 0xe1 ? 1 : 0;
        shift_elems(&a, kind, esize, b.q[0]);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    default:
        if (pfx != PFX_66)
            RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        if (!packed_int(op, &a, &b))
            raise_unimplemented(cpu);
        xmm_put(cpu, in->reg, &a);
        return;
    }
}
