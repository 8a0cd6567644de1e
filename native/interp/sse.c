/* SSE/SSE2/SSE3 on the 0F map: XMM moves, integer SIMD, bitwise, and scalar/packed
 * single/double arithmetic, compares and conversions; the dispatch into the three-byte maps
 * (0F 38 and 0F 3A: sse4.c, sse42_string.c, crc32_movbe.c).
 *
 * Floating point is computed by sse_fp.c on the host's SSE unit under the guest's MXCSR:
 * rounding control, DAZ/FTZ and the exception flags are modelled, and unmasked SIMD
 * floating-point exceptions raise #XM (#UD without CR4.OSXMMEXCPT).
 * The MMX forms (no mandatory prefix on the integer opcodes) are mmx.c's. */
#include <stdlib.h>
#include "sse.h"

/* Packed integer two-operand ops (66-prefixed): *out = a OP b.  Returns 0 if unknown. */
int packed_int(uint8_t op, xmm_t *out, const xmm_t *a, const xmm_t *b)
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
    *out = r;
    return 1;
}

/* The 0F-map shuffles and bitwise ops: unpck*ps/pd, and/andn/or/xor ps/pd, pshufd/hw/lw, shufps/pd. */
static int shuffle_op(uint8_t op, int pfx, xmm_t *out, const xmm_t *a, const xmm_t *b, unsigned imm)
{
    xmm_t r;
    int i;
    switch (op) {
    case 0x14: case 0x15:                                /* unpcklps/pd, unpckhps/pd */
        if (pfx == PFX_66) {
            r.q[0] = op == 0x14 ? a->q[0] : a->q[1];
            r.q[1] = op == 0x14 ? b->q[0] : b->q[1];
        } else {
            int h = op == 0x14 ? 0 : 2;
            r.d[0] = a->d[h]; r.d[1] = b->d[h]; r.d[2] = a->d[h + 1]; r.d[3] = b->d[h + 1];
        }
        break;
    case 0x54: case 0x55: case 0x56: case 0x57:          /* and/andn/or/xor ps/pd */
        for (i = 0; i < 2; i++) {
            if (op == 0x54) r.q[i] = a->q[i] & b->q[i];
            else if (op == 0x55) r.q[i] = ~a->q[i] & b->q[i];
            else if (op == 0x56) r.q[i] = a->q[i] | b->q[i];
            else r.q[i] = a->q[i] ^ b->q[i];
        }
        break;
    case 0x70:                                           /* pshufd / pshufhw / pshuflw (source b) */
        r = *b;
        if (pfx == PFX_66)
            for (i = 0; i < 4; i++) r.d[i] = b->d[(imm >> (2 * i)) & 3];
        else if (pfx == PFX_F3)
            for (i = 0; i < 4; i++) r.w[4 + i] = b->w[4 + ((imm >> (2 * i)) & 3)];
        else
            for (i = 0; i < 4; i++) r.w[i] = b->w[(imm >> (2 * i)) & 3];
        break;
    case 0xc6:                                           /* shufps / shufpd */
        if (pfx == PFX_66) {
            r.q[0] = a->q[imm & 1];
            r.q[1] = b->q[(imm >> 1) & 1];
        } else {
            r.d[0] = a->d[imm & 3]; r.d[1] = a->d[(imm >> 2) & 3];
            r.d[2] = b->d[(imm >> 4) & 3]; r.d[3] = b->d[(imm >> 6) & 3];
        }
        break;
    default:
        return 0;
    }
    *out = r;
    return 1;
}

int sse_core_0f(uint8_t op, int pfx, xmm_t *r, const xmm_t *a, const xmm_t *b, unsigned imm)
{
    if (shuffle_op(op, pfx, r, a, b, imm))
        return 1;
    return pfx == PFX_66 && packed_int(op, r, a, b);
}

/* Element shifts: kind 0 logical right, 1 arithmetic right, 2 left; esize 2/4/8 bytes. */
void sse_shift_elems(xmm_t *x, int kind, int esize, uint64_t count)
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

void sse_byte_shift(xmm_t *x, int right, unsigned n)
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
        sse_byte_shift(&x, sub == 3, imm);
    else if (sub == 2)
        sse_shift_elems(&x, 0, esize, imm);
    else if (sub == 4 && op != 0x73)
        sse_shift_elems(&x, 1, esize, imm);
    else if (sub == 6)
        sse_shift_elems(&x, 2, esize, imm);
    else
        RAISE_UD(cpu);
    xmm_put(cpu, in->rm, &x);
}

/* 0F 51..5F arithmetic (and rsqrt/rcp): the FPOP_* of each opcode, in ps/pd/ss/sd order. */
static int arith_fpop(uint8_t op, int pfx)
{
    static const int base[16] = {
        -1, FPOP_SQRTPS, FPOP_RSQRTPS, FPOP_RCPPS, -1, -1, -1, -1,
        FPOP_ADDPS, FPOP_MULPS, -1, -1, FPOP_SUBPS, FPOP_MINPS, FPOP_DIVPS, FPOP_MAXPS,
    };
    static const int order[4] = {0, 1, 3, 2};           /* PFX_NONE, 66, F2, F3 -> ps pd ss sd */
    int b = base[op & 15];
    if (b < 0)
        return -1;
    if (b == FPOP_RSQRTPS || b == FPOP_RCPPS) {          /* ps and ss forms only */
        if (pfx == PFX_NONE) return b;
        if (pfx == PFX_F3) return b + 1;
        return -1;
    }
    return b + order[pfx];
}

static void sse_arith(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    int fop = arith_fpop(op, pfx);
    xmm_t a, b;
    if (fop < 0)
        RAISE_UD(cpu);
    xmm_get(cpu, in->reg, &a);
    if (pfx == PFX_F3) src_low(cpu, in, &b, 4);
    else if (pfx == PFX_F2) src_low(cpu, in, &b, 8);
    else src128(cpu, in, &b, 0);
    sse_fp(cpu, fop, 0, &a, &b);
    xmm_put(cpu, in->reg, &a);
}

static void sse_convert(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t a, b;
    int fop;
    xmm_get(cpu, in->reg, &a);
    switch (op) {
    case 0x5a:
        if (pfx == PFX_F3) { src_low(cpu, in, &b, 4); fop = FPOP_CVTSS2SD; }
        else if (pfx == PFX_F2) { src_low(cpu, in, &b, 8); fop = FPOP_CVTSD2SS; }
        else if (pfx == PFX_NONE) { src_low(cpu, in, &b, 8); fop = FPOP_CVTPS2PD; }
        else { src128(cpu, in, &b, 0); fop = FPOP_CVTPD2PS; }
        break;
    case 0x5b:
        if (pfx == PFX_F2) RAISE_UD(cpu);
        src128(cpu, in, &b, 0);
        fop = pfx == PFX_NONE ? FPOP_CVTDQ2PS : pfx == PFX_66 ? FPOP_CVTPS2DQ : FPOP_CVTTPS2DQ;
        break;
    default:                                             /* 0xe6 */
        if (pfx == PFX_NONE) RAISE_UD(cpu);
        if (pfx == PFX_F3) { src_low(cpu, in, &b, 8); fop = FPOP_CVTDQ2PD; }
        else { src128(cpu, in, &b, 0); fop = pfx == PFX_66 ? FPOP_CVTTPD2DQ : FPOP_CVTPD2DQ; }
        break;
    }
    sse_fp(cpu, fop, 0, &a, &b);
    xmm_put(cpu, in->reg, &a);
}

static void sse_comis(struct interp_cpu *cpu, struct insn *in, uint8_t op, int dbl)
{
    xmm_t a, b;
    xmm_get(cpu, in->reg, &a);
    src_low(cpu, in, &b, dbl ? 8 : 4);
    int fop = dbl ? (op == 0x2e ? FPOP_UCOMISD : FPOP_COMISD) : (op == 0x2e ? FPOP_UCOMISS : FPOP_COMISS);
    sse_fp(cpu, fop, 0, &a, &b);
    flags_set(cpu, FL_ARITH, a.q[0]);
}

/* SSE3 moves: movsldup/movshdup (F3 0F 12/16), movddup (F2 0F 12), lddqu (F2 0F F0). */
static void sse3_moves(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t a, b;
    if (op == 0xf0) {
        if (in->mod == 3) RAISE_UD(cpu);
        src128(cpu, in, &a, 1);
    } else if (pfx == PFX_F2) {                          /* movddup */
        if (op != 0x12) RAISE_UD(cpu);
        src_low(cpu, in, &b, 8);
        a.q[0] = a.q[1] = b.q[0];
    } else {
        int odd = op == 0x16;
        src128(cpu, in, &b, 0);
        for (int i = 0; i < 4; i += 2)
            a.d[i] = a.d[i + 1] = b.d[i + odd];
    }
    xmm_put(cpu, in->reg, &a);
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
        if (pfx >= PFX_F2) {
            sse3_moves(cpu, in, op, pfx);
            return;
        }
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

void sse_masked_store(struct interp_cpu *cpu, struct insn *in, const uint8_t *data, const uint8_t *mask, int n)
{
    uint64_t base = cpu->gpr[INTERP_RDI] & size_mask(in->addrsize);
    int seg = in->seg >= 0 ? in->seg : INTERP_DS;
    for (int i = 0; i < n; i++)                          /* every selected byte writable first */
        if (mask[i] & 0x80)
            seg_linear(cpu, seg, (base + i) & size_mask(in->addrsize), 1, ACC_W);
    for (int i = 0; i < n; i++)
        if (mask[i] & 0x80)
            mem_write(cpu, seg, (base + i) & size_mask(in->addrsize), 1, data[i]);
}

void sse_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int pfx = in->rep == 0xf3 ? PFX_F3 : in->rep == 0xf2 ? PFX_F2 : in->pfx66 ? PFX_66 : PFX_NONE;
    xmm_t a, b;

    if (op == 0x77) {
        x87_emms(cpu);
        return;
    }
    if (pfx == PFX_NONE && mmx_opcode(op)) {             /* MMX: no OSFXSR needed */
        mmx_exec(cpu, in, op);
        return;
    }
    if (op == 0xc3) {                                    /* movnti m, r */
        decode_modrm(cpu, in);
        if (in->mod == 3) RAISE_UD(cpu);
        rm_write(cpu, in, in->opsize == 8 ? 8 : 4, reg_get(cpu, in->reg, in->opsize == 8 ? 8 : 4, in->rex));
        return;
    }
    if (op == 0x38) {
        uint8_t op3 = fetch8(cpu, in);
        if (op3 == 0xf0 || op3 == 0xf1) {                /* crc32 / movbe: integer instructions */
            crc32_movbe(cpu, in, op3);
            return;
        }
        sse_check(cpu);
        sse_0f38(cpu, in, op3);
        return;
    }
    int known = (op >= 0x10 && op <= 0x17) || (op >= 0x28 && op <= 0x2f) || op == 0x38 || op == 0x3a ||
                (op >= 0x50 && op <= 0x7f) || (op >= 0xc2 && op <= 0xc6) || op >= 0xd0;
    if (!known)
        RAISE_UD(cpu);
    sse_check(cpu);
    if (op == 0x3a) { sse_0f3a(cpu, in); return; }
    decode_modrm(cpu, in);

    /* SSE3 floating point and lddqu, before the MMX check of the integer opcode range. */
    if (op == 0x7c || op == 0x7d || op == 0xd0) {
        static const int fops[3][2] = {{FPOP_HADDPD, FPOP_HADDPS}, {FPOP_HSUBPD, FPOP_HSUBPS},
                                       {FPOP_ADDSUBPD, FPOP_ADDSUBPS}};
        if (pfx != PFX_66 && pfx != PFX_F2)
            RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        sse_fp(cpu, fops[op == 0xd0 ? 2 : op - 0x7c][pfx == PFX_F2], 0, &a, &b);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    if (op == 0xf0) {
        if (pfx != PFX_F2)
            RAISE_UD(cpu);
        sse3_moves(cpu, in, op, pfx);
        return;
    }

    if (op == 0xd6 && pfx != PFX_66) {                   /* movq2dq, movdq2q */
        if (pfx == PFX_NONE)
            RAISE_UD(cpu);
        mmx_sse_convert(cpu, in, op, pfx);
        return;
    }

    switch (op) {
    case 0x10: case 0x11: case 0x12: case 0x13: case 0x16: case 0x17:
    case 0x28: case 0x29: case 0x2b: case 0x6e: case 0x6f: case 0x7e: case 0x7f: case 0xd6: case 0xe7:
        sse_moves(cpu, in, op, pfx);
        return;
    case 0x14: case 0x15:                                /* unpcklps/pd, unpckhps/pd */
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        sse_core_0f(op, pfx == PFX_66 ? PFX_66 : PFX_NONE, &a, &a, &b, 0);
        xmm_put(cpu, in->reg, &a);
        return;
    case 0x2a: {                                         /* cvtsi2ss/sd */
        if (pfx < PFX_F2) {                              /* cvtpi2ps/pd */
            mmx_sse_convert(cpu, in, op, pfx);
            return;
        }
        int size = (in->rex & 8) ? 8 : 4;
        memset(&b, 0, 16);
        b.q[0] = rm_read(cpu, in, size);
        xmm_get(cpu, in->reg, &a);
        sse_fp(cpu, pfx == PFX_F3 ? (size == 8 ? FPOP_CVTSI2SS64 : FPOP_CVTSI2SS32)
                                  : (size == 8 ? FPOP_CVTSI2SD64 : FPOP_CVTSI2SD32), 0, &a, &b);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0x2c: case 0x2d: {                              /* cvt(t)ss2si / cvt(t)sd2si */
        if (pfx < PFX_F2) {                              /* cvt(t)ps2pi, cvt(t)pd2pi */
            mmx_sse_convert(cpu, in, op, pfx);
            return;
        }
        int size = (in->rex & 8) ? 8 : 4;
        src_low(cpu, in, &b, pfx == PFX_F3 ? 4 : 8);
        static const int fops[2][2][2] = {               /* [sd][truncate][64-bit] */
            {{FPOP_CVTSS2SI32, FPOP_CVTSS2SI64}, {FPOP_CVTTSS2SI32, FPOP_CVTTSS2SI64}},
            {{FPOP_CVTSD2SI32, FPOP_CVTSD2SI64}, {FPOP_CVTTSD2SI32, FPOP_CVTTSD2SI64}},
        };
        a = b;
        sse_fp(cpu, fops[pfx == PFX_F2][op == 0x2c][size == 8], 0, &a, &b);
        reg_set(cpu, in->reg, size, 0, a.q[0]);
        return;
    }
    case 0x2e: case 0x2f:
        if (pfx >= PFX_F2) RAISE_UD(cpu);
        sse_comis(cpu, in, op, pfx == PFX_66);
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
    case 0x51: case 0x52: case 0x53: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        sse_arith(cpu, in, op, pfx);
        return;
    case 0x54: case 0x55: case 0x56: case 0x57:          /* and/andn/or/xor ps/pd */
        if (pfx >= PFX_F2) RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        sse_core_0f(op, pfx, &a, &a, &b, 0);
        xmm_put(cpu, in->reg, &a);
        return;
    case 0x5a: case 0x5b: case 0xe6:
        sse_convert(cpu, in, op, pfx);
        return;
    case 0x70: {                                         /* pshufd / pshufhw / pshuflw */
        unsigned imm = fetch_imm(cpu, in, 1);
        src128(cpu, in, &b, 0);
        sse_core_0f(op, pfx, &a, &b, &b, imm);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0x71: case 0x72: case 0x73:
        shift_imm_group(cpu, in, op);
        return;
    case 0xc2: {                                         /* cmpps/pd/ss/sd */
        unsigned imm = fetch_imm(cpu, in, 1);
        xmm_get(cpu, in->reg, &a);
        if (pfx == PFX_F3) src_low(cpu, in, &b, 4);
        else if (pfx == PFX_F2) src_low(cpu, in, &b, 8);
        else src128(cpu, in, &b, 0);
        static const int fops[4] = {FPOP_CMPPS, FPOP_CMPPD, FPOP_CMPSD, FPOP_CMPSS};
        sse_fp(cpu, fops[pfx], imm & 7, &a, &b);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0xc4: {                                         /* pinsrw */
        if (pfx != PFX_66) RAISE_UD(cpu);
        unsigned imm = fetch_imm(cpu, in, 1);
        uint16_t v = rm_read(cpu, in, 2);
        xmm_get(cpu, in->reg, &a);
        a.w[imm & 7] = v;
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0xc5: {                                         /* pextrw */
        if (pfx != PFX_66) RAISE_UD(cpu);
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
        sse_core_0f(op, pfx == PFX_66 ? PFX_66 : PFX_NONE, &a, &a, &b, imm);
        xmm_put(cpu, in->reg, &a);
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
        sse_shift_elems(&a, kind, esize, b.q[0]);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    case 0xf7:                                           /* maskmovdqu */
        if (pfx != PFX_66 || in->mod != 3) RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        xmm_get(cpu, in->rm, &b);
        sse_masked_store(cpu, in, a.b, b.b, 16);
        return;
    default:
        if (pfx != PFX_66)
            RAISE_UD(cpu);
        xmm_get(cpu, in->reg, &a);
        src128(cpu, in, &b, 0);
        if (!packed_int(op, &a, &a, &b))
            raise_unimplemented(cpu);
        xmm_put(cpu, in->reg, &a);
        return;
    }
}
