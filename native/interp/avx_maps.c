/* AVX/AVX2 on the VEX 0F 38 and 0F 3A maps (66 prefix): the VEX forms of SSSE3, SSE4.1 and
 * SSE4.2 (per-lane integer ops through sse_core_0f38 / sse_core_0f3a, vround*, vdpps/vdppd
 * through sse_fp_n, vptest/vtestps/vtestpd, vpmovsx/zx, extracts and inserts, the 4-operand
 * vblendv*, vpcmp*str*), and the dispatch to avx2_perm.c, avx_mask.c and gather.c.
 *
 * Why one file for both maps: they are the same kind of thing (SSE4 with a VEX encoding) and
 * their #UD rules are shared; the AVX-only data movement lives in avx2_perm.c/avx_mask.c. */
#include "avx.h"

/* The per-lane NDS integer ops of 0F 38: dest = vvvv OP r/m.  (0x1c-0x1e are unary.) */
static int lane_op_0f38(uint8_t op)
{
    return op <= 0x0b || (op >= 0x1c && op <= 0x1e) || op == 0x28 || op == 0x29 || op == 0x2b ||
           (op >= 0x37 && op <= 0x40);
}

/* vpmovsx / vpmovzx: the low len/to*from bytes of the source, each element extended. */
static void pmov(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    static const uint8_t from[6] = {1, 1, 1, 2, 2, 4}, to[6] = {2, 4, 8, 4, 8, 8};
    int k = op & 0xf, len = vex_len(in), n = len / to[k];
    vec_t s, r;
    vex_need_no_v(cpu, in);
    vec_rm(cpu, in, &s, n * from[k], 0);
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        memcpy(&v, s.y.b + from[k] * i, from[k]);
        if (op < 0x30)
            v = (uint64_t)sext(v, from[k]);
        memcpy(r.y.b + to[k] * i, &v, to[k]);
    }
    vec_put(cpu, in->reg, &r, len);
}

void avx_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int len = vex_len(in);
    vec_t a, b, r;
    if (vex_pp(in) != PFX_66)
        RAISE_UD(cpu);
    if (op >= 0x90 && op <= 0x93) {
        avx_gather(cpu, in, op);
        return;
    }
    if (op >= 0xdb && op <= 0xdf)
        raise_unimplemented(cpu);                        /* VEX AES-NI */
    decode_modrm(cpu, in);
    if (avx_perm_0f38(cpu, in, op) || avx_mask_0f38(cpu, in, op))
        return;
    if (op >= 0x20 && op <= 0x35 && (op & 0xf) <= 5) {
        pmov(cpu, in, op);
        return;
    }
    switch (op) {
    case 0x0e: case 0x0f: case 0x17:                     /* vtestps, vtestpd, vptest */
        if (op != 0x17) vex_need_w0(cpu, in);
        vex_need_no_v(cpu, in);
        vec_get(cpu, in->reg, &a);
        vec_rm(cpu, in, &b, len, 0);
        flags_set(cpu, FL_ARITH, sse_ptest(&a, &b, len / 8, op == 0x0e ? 4 : op == 0x0f ? 8 : 0));
        return;
    case 0x2a:                                           /* vmovntdqa */
        vex_need_no_v(cpu, in);
        vex_need_mem(cpu, in);
        vec_rm(cpu, in, &a, len, 1);
        vec_put(cpu, in->reg, &a, len);
        return;
    case 0x41:                                           /* vphminposuw: 128-bit only */
        vex_need_l0(cpu, in);
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, 16, 0);
        sse_core_0f38(op, &r.x[0], &b.x[0], &b.x[0], &b.x[0]);
        vec_put(cpu, in->reg, &r, 16);
        return;
    default:
        break;
    }
    if (!lane_op_0f38(op))
        RAISE_UD(cpu);
    int unary = op >= 0x1c && op <= 0x1e;
    if (unary)
        vex_need_no_v(cpu, in);
    vec_get(cpu, unary ? in->reg : in->vex_v, &a);
    vec_rm(cpu, in, &b, len, 0);
    for (int h = 0; h < vex_lanes(in); h++)
        sse_core_0f38(op, &r.x[h], &a.x[h], &b.x[h], &b.x[h]);
    vec_put(cpu, in->reg, &r, len);
}

/* vpextrb/w/d/q, vextractps: to r32/r64 (zero-extended) or memory. */
static void extract(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm)
{
    vec_t x;
    int size = op == 0x14 ? 1 : op == 0x15 ? 2 : op == 0x16 ? vex_gpr_size(cpu, in) : 4;
    vex_need_l0(cpu, in);
    vex_need_no_v(cpu, in);
    vec_get(cpu, in->reg, &x);
    uint64_t v = 0;
    memcpy(&v, x.y.b + size * (imm & (16 / size - 1)), size);
    if (in->mod == 3)
        reg_set(cpu, in->rm, size == 8 ? 8 : 4, 0, v);
    else
        mem_write(cpu, in->easeg, vex_ea(in), size, v);
}

/* vpinsrb / vinsertps / vpinsrd / vpinsrq: dest = vvvv with one element replaced. */
static void insert(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm)
{
    vec_t a, b;
    vex_need_l0(cpu, in);
    vec_get(cpu, in->vex_v, &a);
    if (op == 0x20) {
        a.y.b[imm & 15] = in->mod == 3 ? cpu->gpr[in->rm] & 0xff : mem_read(cpu, in->easeg, vex_ea(in), 1);
    } else if (op == 0x21) {
        uint32_t v;
        if (in->mod == 3) {
            vec_get(cpu, in->rm, &b);
            v = b.y.d[(imm >> 6) & 3];
        } else {
            v = mem_read(cpu, in->easeg, vex_ea(in), 4);
        }
        a.y.d[(imm >> 4) & 3] = v;
        for (int i = 0; i < 4; i++)
            if ((imm >> i) & 1) a.y.d[i] = 0;
    } else if (vex_gpr_size(cpu, in) == 8) {
        a.y.q[imm & 1] = rm_read(cpu, in, 8);
    } else {
        a.y.d[imm & 3] = rm_read(cpu, in, 4);
    }
    vec_put(cpu, in->reg, &a, 16);
}

void avx_0f3a(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int len = vex_len(in), n = vex_lanes(in);
    vec_t a, b, r, m;
    if (vex_pp(in) != PFX_66)
        RAISE_UD(cpu);
    if (op == 0x44 || op == 0xdf)
        raise_unimplemented(cpu);                        /* vpclmulqdq, vaeskeygenassist */
    decode_modrm(cpu, in);
    unsigned imm = fetch_imm(cpu, in, 1);
    if (avx_perm_0f3a(cpu, in, op, imm))
        return;
    switch (op) {
    case 0x08: case 0x09:                                /* vroundps / vroundpd */
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, len, 0);
        a = b;
        sse_fp_n(cpu, op == 0x08 ? FPOP_ROUNDPS : FPOP_ROUNDPD, imm & 15, a.x, b.x, n);
        vec_put(cpu, in->reg, &a, len);
        return;
    case 0x0a: case 0x0b:                                /* vroundss / vroundsd */
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, op == 0x0a ? 4 : 8, 0);
        sse_fp(cpu, op == 0x0a ? FPOP_ROUNDSS : FPOP_ROUNDSD, imm & 15, &a.x[0], &b.x[0]);
        vec_put(cpu, in->reg, &a, 16);
        return;
    case 0x0c: case 0x0d: case 0x0e: case 0x0f: case 0x42: {
        /* vblendps (4 imm bits a lane), vblendpd (2), vpblendw, vpalignr (the same imm8 in
         * each lane), vmpsadbw (imm8[2:0] for the low lane, imm8[5:3] for the high one) */
        static const uint8_t shift[5] = {4, 2, 0, 0};
        int s = op == 0x42 ? 3 : shift[op - 0x0c];
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        for (int h = 0; h < n; h++)
            sse_core_0f3a(op, &r.x[h], &a.x[h], &b.x[h], imm >> (s * h));
        vec_put(cpu, in->reg, &r, len);
        return;
    }
    case 0x14: case 0x15: case 0x16: case 0x17:
        extract(cpu, in, op, imm);
        return;
    case 0x20: case 0x21: case 0x22:
        insert(cpu, in, op, imm);
        return;
    case 0x40: case 0x41:                                /* vdpps (per lane), vdppd (128 only) */
        if (op == 0x41) vex_need_l0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        sse_fp_n(cpu, op == 0x40 ? FPOP_DPPS : FPOP_DPPD, imm, a.x, b.x, n);
        vec_put(cpu, in->reg, &a, len);
        return;
    case 0x4a: case 0x4b: case 0x4c: {                   /* vblendvps/pd, vpblendvb: mask in imm8[7:4] */
        static const uint8_t core[3] = {0x14, 0x15, 0x10};
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        vec_get(cpu, (imm >> 4) & (P(cpu)->code64 ? 15 : 7), &m);
        for (int h = 0; h < n; h++)
            sse_core_0f38(core[op - 0x4a], &r.x[h], &a.x[h], &b.x[h], &m.x[h]);
        vec_put(cpu, in->reg, &r, len);
        return;
    }
    case 0x60: case 0x61: case 0x62: case 0x63:          /* vpcmpestrm/i, vpcmpistrm/i */
        vex_need_l0(cpu, in);
        vex_need_no_v(cpu, in);
        sse42_string(cpu, in, op, imm);
        if (!(op & 1))
            memset(YMM_HI(cpu, 0), 0, 16);               /* the mask went to XMM0: VEX zeroes 255:128 */
        return;
    default:
        RAISE_UD(cpu);
    }
}
