/* The 0F 38 and 0F 3A maps with a 66 prefix: SSSE3 (XMM forms), SSE4.1 and pcmpgtq.
 *
 * Integer operations are computed here; the floating-point ones (round*, dpps, dppd) go to
 * sse_fp.c, the SSE4.2 string compares to sse42_string.c.  crc32 and movbe (0F 38 F0/F1)
 * never reach this file: they are integer instructions without the SSE #UD/#NM checks
 * (crc32_movbe.c).  SSSE3's MMX forms (no prefix) are handed to mmx.c. */
#include <stdlib.h>
#include "sse.h"

/* SSSE3 opcodes whose no-prefix form is an MMX instruction (not a #UD). */
static int ssse3_mmx_form(uint8_t op)
{
    return op <= 0x0b || (op >= 0x1c && op <= 0x1e);
}

/* Horizontal add/subtract of adjacent pairs: words (saturating or not) or dwords. */
static void horizontal(xmm_t *r, const xmm_t *a, const xmm_t *b, int dwords, int sub, int sat)
{
    xmm_t t;
    if (dwords) {
        for (int i = 0; i < 2; i++) {
            t.d[i] = sub ? a->d[2 * i] - a->d[2 * i + 1] : a->d[2 * i] + a->d[2 * i + 1];
            t.d[i + 2] = sub ? b->d[2 * i] - b->d[2 * i + 1] : b->d[2 * i] + b->d[2 * i + 1];
        }
    } else {
        for (int i = 0; i < 4; i++) {
            int x = sub ? a->sw[2 * i] - a->sw[2 * i + 1] : a->sw[2 * i] + a->sw[2 * i + 1];
            int y = sub ? b->sw[2 * i] - b->sw[2 * i + 1] : b->sw[2 * i] + b->sw[2 * i + 1];
            t.sw[i] = sat ? sat16(x) : (int16_t)x;
            t.sw[i + 4] = sat ? sat16(y) : (int16_t)y;
        }
    }
    *r = t;
}

/* pmovsx / pmovzx: source element size, destination element size. */
static void pmov_extend(xmm_t *r, const xmm_t *s, int from, int to, int sign)
{
    xmm_t t;
    int n = 16 / to;
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, s->b + from * i, from);
        if (sign)
            v = (uint64_t)sext(v, from);
        memcpy(t.b + to * i, &v, to);
    }
    *r = t;
}

static void phminposuw(xmm_t *r, const xmm_t *s)
{
    int best = 0;
    for (int i = 1; i < 8; i++)
        if (s->w[i] < s->w[best])
            best = i;
    uint16_t v = s->w[best];
    memset(r, 0, 16);
    r->w[0] = v;
    r->w[1] = best;
}

/* The 0F 38 two-operand integer ops: *out = a OP b; m is the blend mask of pblendvb /
 * blendvps / blendvpd (XMM0 for legacy SSE, the is4 register for VEX).  0 if not one of them. */
int sse_core_0f38(uint8_t op, xmm_t *out, const xmm_t *a, const xmm_t *b, const xmm_t *m)
{
    xmm_t r = *a;
    int i;
    switch (op) {
    case 0x00:                                           /* pshufb */
        for (i = 0; i < 16; i++) r.b[i] = (b->b[i] & 0x80) ? 0 : a->b[b->b[i] & 15];
        break;
    case 0x01: horizontal(&r, a, b, 0, 0, 0); break;   /* phaddw */
    case 0x02: horizontal(&r, a, b, 1, 0, 0); break;   /* phaddd */
    case 0x03: horizontal(&r, a, b, 0, 0, 1); break;   /* phaddsw */
    case 0x04:                                           /* pmaddubsw: unsigned dest x signed src */
        for (i = 0; i < 8; i++)
            r.sw[i] = sat16(a->b[2 * i] * b->sb[2 * i] + a->b[2 * i + 1] * b->sb[2 * i + 1]);
        break;
    case 0x05: horizontal(&r, a, b, 0, 1, 0); break;   /* phsubw */
    case 0x06: horizontal(&r, a, b, 1, 1, 0); break;   /* phsubd */
    case 0x07: horizontal(&r, a, b, 0, 1, 1); break;   /* phsubsw */
    case 0x08: for (i = 0; i < 16; i++) r.sb[i] = b->sb[i] < 0 ? (int8_t)-a->sb[i] : b->sb[i] ? a->sb[i] : 0; break;
    case 0x09: for (i = 0; i < 8; i++) r.sw[i] = b->sw[i] < 0 ? (int16_t)-a->sw[i] : b->sw[i] ? a->sw[i] : 0; break;
    case 0x0a: for (i = 0; i < 4; i++) r.d[i] = b->sd[i] < 0 ? -a->d[i] : b->sd[i] ? a->d[i] : 0; break;
    case 0x0b:                                           /* pmulhrsw */
        for (i = 0; i < 8; i++) r.w[i] = (uint16_t)(((((int32_t)a->sw[i] * b->sw[i]) >> 14) + 1) >> 1);
        break;
    case 0x10:                                           /* pblendvb (mask: xmm0) */
        for (i = 0; i < 16; i++) if (m->b[i] & 0x80) r.b[i] = b->b[i];
        break;
    case 0x14:                                           /* blendvps */
        for (i = 0; i < 4; i++) if (m->d[i] >> 31) r.d[i] = b->d[i];
        break;
    case 0x15:                                           /* blendvpd */
        for (i = 0; i < 2; i++) if (m->q[i] >> 63) r.q[i] = b->q[i];
        break;
    case 0x1c: for (i = 0; i < 16; i++) r.b[i] = abs(b->sb[i]); break;
    case 0x1d: for (i = 0; i < 8; i++) r.w[i] = abs(b->sw[i]); break;
    case 0x1e: for (i = 0; i < 4; i++) r.d[i] = b->sd[i] < 0 ? -b->d[i] : b->d[i]; break;
    case 0x28: for (i = 0; i < 2; i++) r.sq[i] = (int64_t)a->sd[2 * i] * b->sd[2 * i]; break;  /* pmuldq */
    case 0x29: for (i = 0; i < 2; i++) r.q[i] = a->q[i] == b->q[i] ? ~0ULL : 0; break;         /* pcmpeqq */
    case 0x2b:                                           /* packusdw */
        for (i = 0; i < 4; i++) { r.w[i] = satu16(a->sd[i]); r.w[i + 4] = satu16(b->sd[i]); }
        break;
    case 0x37: for (i = 0; i < 2; i++) r.q[i] = a->sq[i] > b->sq[i] ? ~0ULL : 0; break;        /* pcmpgtq */
    case 0x38: for (i = 0; i < 16; i++) r.sb[i] = a->sb[i] < b->sb[i] ? a->sb[i] : b->sb[i]; break;
    case 0x39: for (i = 0; i < 4; i++) r.sd[i] = a->sd[i] < b->sd[i] ? a->sd[i] : b->sd[i]; break;
    case 0x3a: for (i = 0; i < 8; i++) r.w[i] = a->w[i] < b->w[i] ? a->w[i] : b->w[i]; break;
    case 0x3b: for (i = 0; i < 4; i++) r.d[i] = a->d[i] < b->d[i] ? a->d[i] : b->d[i]; break;
    case 0x3c: for (i = 0; i < 16; i++) r.sb[i] = a->sb[i] > b->sb[i] ? a->sb[i] : b->sb[i]; break;
    case 0x3d: for (i = 0; i < 4; i++) r.sd[i] = a->sd[i] > b->sd[i] ? a->sd[i] : b->sd[i]; break;
    case 0x3e: for (i = 0; i < 8; i++) r.w[i] = a->w[i] > b->w[i] ? a->w[i] : b->w[i]; break;
    case 0x3f: for (i = 0; i < 4; i++) r.d[i] = a->d[i] > b->d[i] ? a->d[i] : b->d[i]; break;
    case 0x40: for (i = 0; i < 4; i++) r.d[i] = a->d[i] * b->d[i]; break;                       /* pmulld */
    case 0x41: phminposuw(&r, b); break;
    default: return 0;
    }
    *out = r;
    return 1;
}

/* ptest / vptest / vtestps / vtestpd over `n` quadwords: ZF = (a AND b) == 0, CF = (NOT a AND b)
 * == 0, the other arithmetic flags 0.  `signs`: only the sign bits of dwords (4) or qwords (8). */
uint64_t sse_ptest(const void *va, const void *vb, int n, int signs)
{
    const uint64_t *a = va, *b = vb;
    uint64_t and = 0, andn = 0, m = signs == 4 ? 0x8000000080000000ULL : signs == 8 ? 1ULL << 63 : ~0ULL;
    for (int i = 0; i < n; i++) {
        and |= a[i] & b[i] & m;
        andn |= ~a[i] & b[i] & m;
    }
    return (and ? 0 : FL_ZF) | (andn ? 0 : FL_CF);
}

void sse_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    if (!in->pfx66 || in->rep) {
        if (!in->pfx66 && !in->rep && ssse3_mmx_form(op)) {
            mmx_ssse3(cpu, in, op);                      /* mmx.c */
            return;
        }
        if (op >= 0xc8 && op <= 0xcd)
            raise_unimplemented(cpu);                    /* SHA */
        RAISE_UD(cpu);
    }
    xmm_t a, b, r, m;
    xmm_get(cpu, in->reg, &a);
    if (op >= 0x20 && op <= 0x35 && (op & 0xf) <= 5) {  /* pmovsx / pmovzx: narrow memory */
        static const uint8_t from[6] = {1, 1, 1, 2, 2, 4}, to[6] = {2, 4, 8, 4, 8, 8};
        int k = op & 0xf;
        src_low(cpu, in, &b, 16 / to[k] * from[k]);
        pmov_extend(&r, &b, from[k], to[k], op < 0x30);
        xmm_put(cpu, in->reg, &r);
        return;
    }
    if (op == 0x2a) {                                    /* movntdqa */
        if (in->mod == 3)
            RAISE_UD(cpu);
        src128(cpu, in, &r, 0);
        xmm_put(cpu, in->reg, &r);
        return;
    }
    switch (op) {
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06: case 0x07:
    case 0x08: case 0x09: case 0x0a: case 0x0b: case 0x10: case 0x14: case 0x15: case 0x17:
    case 0x1c: case 0x1d: case 0x1e: case 0x28: case 0x29: case 0x2b: case 0x37:
    case 0x38: case 0x39: case 0x3a: case 0x3b: case 0x3c: case 0x3d: case 0x3e: case 0x3f:
    case 0x40: case 0x41:
        break;
    case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
        raise_unimplemented(cpu);                        /* AES-NI */
    default:
        RAISE_UD(cpu);
    }
    src128(cpu, in, &b, 0);
    if (op == 0x17) {                                    /* ptest */
        flags_set(cpu, FL_ARITH, sse_ptest(&a, &b, 2, 0));
        return;
    }
    xmm_get(cpu, 0, &m);
    sse_core_0f38(op, &r, &a, &b, &m);
    xmm_put(cpu, in->reg, &r);
}

/* pextrb/w/d/q, extractps: element `idx` of `size` bytes to r32/r64 (zero-extended) or memory. */
static void extract(struct interp_cpu *cpu, struct insn *in, const xmm_t *x, int size, unsigned idx)
{
    uint64_t v = 0;
    memcpy(&v, x->b + size * idx, size);
    if (in->mod == 3)
        reg_set(cpu, in->rm, size == 8 ? 8 : 4, 0, v);
    else
        mem_write(cpu, in->easeg, in->ea, size, v);
}

static void mpsadbw(xmm_t *r, const xmm_t *a, const xmm_t *b, unsigned imm)
{
    int o1 = (imm & 4) ? 4 : 0, o2 = (imm & 3) * 4;
    for (int i = 0; i < 8; i++) {
        unsigned sum = 0;
        for (int j = 0; j < 4; j++)
            sum += abs(a->b[o1 + i + j] - b->b[o2 + j]);
        r->w[i] = sum;
    }
}

/* The 0F 3A integer ops with an imm8 on two 128-bit values: *out = a OP b (blendps, blendpd,
 * pblendw, palignr, mpsadbw).  Returns 0 if op is not one of them. */
int sse_core_0f3a(uint8_t op, xmm_t *out, const xmm_t *a, const xmm_t *b, unsigned imm)
{
    xmm_t r = *a;
    int i;
    switch (op) {
    case 0x0c: for (i = 0; i < 4; i++) if ((imm >> i) & 1) r.d[i] = b->d[i]; break;   /* blendps */
    case 0x0d: for (i = 0; i < 2; i++) if ((imm >> i) & 1) r.q[i] = b->q[i]; break;   /* blendpd */
    case 0x0e: for (i = 0; i < 8; i++) if ((imm >> i) & 1) r.w[i] = b->w[i]; break;   /* pblendw */
    case 0x0f: {                                         /* palignr */
        uint8_t cat[32];
        memcpy(cat, b, 16);
        memcpy(cat + 16, a, 16);
        for (i = 0; i < 16; i++)
            r.b[i] = i + imm < 32 ? cat[i + imm] : 0;
        break;
    }
    case 0x42: mpsadbw(&r, a, b, imm); break;
    default: return 0;
    }
    *out = r;
    return 1;
}

void sse_0f3a(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t op = fetch8(cpu, in);
    decode_modrm(cpu, in);
    unsigned imm = fetch_imm(cpu, in, 1);
    xmm_t a, b;
    int i, wide = (in->rex & 8) != 0;
    if (!in->pfx66 || in->rep) {
        if (!in->pfx66 && !in->rep && op == 0x0f) {
            mmx_palignr(cpu, in, imm);                   /* mmx.c */
            return;
        }
        if (!in->pfx66 && !in->rep && op == 0xcc)
            raise_unimplemented(cpu);                    /* SHA1RNDS4 */
        RAISE_UD(cpu);
    }
    xmm_get(cpu, in->reg, &a);
    switch (op) {
    case 0x08: case 0x09:                                /* roundps / roundpd */
        src128(cpu, in, &b, 0);
        sse_fp(cpu, op == 0x08 ? FPOP_ROUNDPS : FPOP_ROUNDPD, imm & 15, &a, &b);
        break;
    case 0x0a: case 0x0b:                                /* roundss / roundsd */
        src_low(cpu, in, &b, op == 0x0a ? 4 : 8);
        sse_fp(cpu, op == 0x0a ? FPOP_ROUNDSS : FPOP_ROUNDSD, imm & 15, &a, &b);
        break;
    case 0x0c: case 0x0d: case 0x0e: case 0x0f:          /* blendps, blendpd, pblendw, palignr */
        src128(cpu, in, &b, 0);
        sse_core_0f3a(op, &a, &a, &b, imm);
        break;
    case 0x14: extract(cpu, in, &a, 1, imm & 15); return;                    /* pextrb */
    case 0x15: extract(cpu, in, &a, 2, imm & 7); return;                     /* pextrw */
    case 0x16: extract(cpu, in, &a, wide ? 8 : 4, imm & (wide ? 1 : 3)); return;  /* pextrd/q */
    case 0x17: extract(cpu, in, &a, 4, imm & 3); return;                     /* extractps */
    case 0x20:                                           /* pinsrb */
        a.b[imm & 15] = in->mod == 3 ? cpu->gpr[in->rm] & 0xff : mem_read(cpu, in->easeg, in->ea, 1);
        break;
    case 0x21: {                                         /* insertps */
        uint32_t v;
        if (in->mod == 3) {
            xmm_get(cpu, in->rm, &b);
            v = b.d[(imm >> 6) & 3];
        } else {
            v = mem_read(cpu, in->easeg, in->ea, 4);
        }
        a.d[(imm >> 4) & 3] = v;
        for (i = 0; i < 4; i++) if ((imm >> i) & 1) a.d[i] = 0;
        break;
    }
    case 0x22:                                           /* pinsrd / pinsrq */
        if (wide) a.q[imm & 1] = rm_read(cpu, in, 8);
        else a.d[imm & 3] = rm_read(cpu, in, 4);
        break;
    case 0x40: case 0x41:                                /* dpps / dppd */
        src128(cpu, in, &b, 0);
        sse_fp(cpu, op == 0x40 ? FPOP_DPPS : FPOP_DPPD, imm, &a, &b);
        break;
    case 0x42:                                           /* mpsadbw */
        src128(cpu, in, &b, 0);
        sse_core_0f3a(op, &a, &a, &b, imm);
        break;
    case 0x60: case 0x61: case 0x62: case 0x63:
        sse42_string(cpu, in, op, imm);
        return;
    case 0x44: case 0xdf:
        raise_unimplemented(cpu);                        /* pclmulqdq, aeskeygenassist */
    default:
        RAISE_UD(cpu);
    }
    xmm_put(cpu, in->reg, &a);
}
