/* AVX/AVX2 on the VEX 0F map: the VEX.128 and VEX.256 forms of the SSE/SSE2/SSE3 moves,
 * floating point, compares, conversions, shuffles and integer operations.
 *
 * Why here and not in sse.c: the VEX forms have a third operand (dest = vvvv OP r/m), no
 * alignment rule for ordinary memory operands, zero bits 255:128 of a VEX.128 destination,
 * and their own #UD rules (vvvv must be 1111b without a vvvv operand, L=1 #UD for the
 * 128-bit-only forms).  The operations themselves are the SSE cores (sse_core_0f,
 * sse_shift_elems, sse_byte_shift) applied per 128-bit lane, and sse_fp_n for floating point
 * (both halves of a VEX.256 operation under one MXCSR decision).  The whole-register moves
 * vmovups/aps/upd/apd/dqu/dqa and vzeroupper/vzeroall are vexmov.c's. */
#include "avx.h"

static void fp_lanes(struct interp_cpu *cpu, struct insn *in, int fop, int imm, vec_t *a, const vec_t *b)
{
    sse_fp_n(cpu, fop, imm, a->x, b->x, vex_lanes(in));
    vec_put(cpu, in->reg, a, vex_len(in));
}

/* Scalar ss/sd (LIG): a = vvvv (its upper elements are kept), b = r/m low element. */
static void fp_scalar(struct interp_cpu *cpu, struct insn *in, int fop, int imm, int esize)
{
    vec_t a, b;
    vec_get(cpu, in->vex_v, &a);
    vec_rm(cpu, in, &b, esize, 0);
    sse_fp(cpu, fop, imm, &a.x[0], &b.x[0]);
    vec_put(cpu, in->reg, &a, 16);
}

/* 0F 51..5F arithmetic: FPOP of the ps form; ps pd ss sd follow in the order of sse_fp.h. */
static int arith_base(uint8_t op)
{
    switch (op) {
    case 0x51: return FPOP_SQRTPS;
    case 0x58: return FPOP_ADDPS;
    case 0x59: return FPOP_MULPS;
    case 0x5c: return FPOP_SUBPS;
    case 0x5d: return FPOP_MINPS;
    case 0x5e: return FPOP_DIVPS;
    case 0x5f: return FPOP_MAXPS;
    default: return -1;
    }
}

static void arith(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t a, b;
    if (op == 0x52 || op == 0x53) {                      /* vrsqrt / vrcp: ps and ss only */
        int base = op == 0x52 ? FPOP_RSQRTPS : FPOP_RCPPS;
        if (pp == PFX_F3) { fp_scalar(cpu, in, base + 1, 0, 4); return; }
        if (pp != PFX_NONE) RAISE_UD(cpu);
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, vex_len(in), 0);
        a = b;
        fp_lanes(cpu, in, base, 0, &a, &b);
        return;
    }
    int base = arith_base(op);
    if (pp == PFX_F3) { fp_scalar(cpu, in, base + 2, 0, 4); return; }
    if (pp == PFX_F2) { fp_scalar(cpu, in, base + 3, 0, 8); return; }
    if (op == 0x51) {                                    /* vsqrtps/pd: no vvvv */
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, vex_len(in), 0);
        a = b;
    } else {
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, vex_len(in), 0);
    }
    fp_lanes(cpu, in, base + (pp == PFX_66), 0, &a, &b);
}

/* 0F 5A, 5B, E6: conversions.  The 256-bit widening forms (ps2pd, dq2pd) take the high
 * half's source from the upper 64 bits of the 128-bit source; the narrowing ones (pd2ps,
 * pd2dq, tpd2dq) put each half's 64-bit result next to each other in an XMM destination. */
static void convert(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t a, b, s;
    int fop, len = vex_len(in), n = vex_lanes(in);
    if (op == 0x5a && pp >= PFX_F2) {                    /* vcvtss2sd / vcvtsd2ss */
        fp_scalar(cpu, in, pp == PFX_F3 ? FPOP_CVTSS2SD : FPOP_CVTSD2SS, 0, pp == PFX_F3 ? 4 : 8);
        return;
    }
    vex_need_no_v(cpu, in);
    int widen = (op == 0x5a && pp == PFX_NONE) || (op == 0xe6 && pp == PFX_F3);
    int narrow = (op == 0x5a && pp == PFX_66) || (op == 0xe6 && pp != PFX_F3);
    if (op == 0x5a) fop = pp == PFX_NONE ? FPOP_CVTPS2PD : FPOP_CVTPD2PS;
    else if (op == 0x5b) fop = pp == PFX_NONE ? FPOP_CVTDQ2PS : pp == PFX_66 ? FPOP_CVTPS2DQ : FPOP_CVTTPS2DQ;
    else fop = pp == PFX_F3 ? FPOP_CVTDQ2PD : pp == PFX_66 ? FPOP_CVTTPD2DQ : FPOP_CVTPD2DQ;
    if ((op == 0x5b && pp == PFX_F2) || (op == 0xe6 && pp == PFX_NONE))
        RAISE_UD(cpu);
    if (widen) {
        vec_rm(cpu, in, &s, len / 2, 0);
        memset(&b, 0, sizeof(b));
        b.x[0].q[0] = s.x[0].q[0];
        b.x[1].q[0] = s.x[0].q[1];
    } else {
        vec_rm(cpu, in, &b, len, 0);
    }
    a = b;
    sse_fp_n(cpu, fop, 0, a.x, b.x, n);
    if (narrow) {
        a.x[0].q[1] = n == 2 ? a.x[1].q[0] : 0;
        vec_put(cpu, in->reg, &a, 16);
        return;
    }
    vec_put(cpu, in->reg, &a, len);
}

/* 0F 10/11 F3/F2: vmovss / vmovsd. */
static void movs_scalar(struct interp_cpu *cpu, struct insn *in, uint8_t op, int esize)
{
    vec_t x, y;
    if (in->mod != 3) {
        vex_need_no_v(cpu, in);
        if (op == 0x10) {
            vec_rm(cpu, in, &x, esize, 0);
            vec_put(cpu, in->reg, &x, 16);
        } else {
            vec_get(cpu, in->reg, &x);
            mem_write_buf(cpu, in->easeg, vex_ea(in), &x, esize);
        }
        return;
    }
    vec_get(cpu, in->vex_v, &x);                         /* register form: three operands */
    vec_get(cpu, op == 0x10 ? in->rm : in->reg, &y);
    memcpy(x.y.b, y.y.b, esize);
    vec_put(cpu, op == 0x10 ? in->reg : in->rm, &x, 16);
}

/* 0F 12/13/16/17: vmovlps/hps/lpd/hpd (loads: NDS), vmovhlps/lhps, and the SSE3 duplicates. */
static void movs_half(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t a, b;
    int len = vex_len(in), hi = op >= 0x16;
    if (pp >= PFX_F2) {                                  /* vmovddup (F2 12), vmovsldup / vmovshdup (F3) */
        vex_need_no_v(cpu, in);
        if (pp == PFX_F2 && op != 0x12) RAISE_UD(cpu);
        if (pp == PFX_F2) {
            vec_rm(cpu, in, &b, len == 16 ? 8 : 32, 0);
            for (int h = 0; h < vex_lanes(in); h++)
                a.x[h].q[0] = a.x[h].q[1] = b.x[h].q[0];
        } else {
            vec_rm(cpu, in, &b, len, 0);
            for (int i = 0; i < 8; i += 2)
                a.y.d[i] = a.y.d[i + 1] = b.y.d[i + hi];
        }
        vec_put(cpu, in->reg, &a, len);
        return;
    }
    vex_need_l0(cpu, in);
    if (op == 0x13 || op == 0x17) {                      /* stores of one quadword */
        vex_need_no_v(cpu, in);
        vex_need_mem(cpu, in);
        vec_get(cpu, in->reg, &a);
        mem_write(cpu, in->easeg, vex_ea(in), 8, a.y.q[hi]);
        return;
    }
    vec_get(cpu, in->vex_v, &a);
    if (in->mod == 3) {
        if (pp == PFX_66) RAISE_UD(cpu);
        vec_get(cpu, in->rm, &b);
        if (hi) a.y.q[1] = b.y.q[0];                     /* vmovlhps */
        else a.y.q[0] = b.y.q[1];                        /* vmovhlps */
    } else {
        a.y.q[hi] = mem_read(cpu, in->easeg, vex_ea(in), 8);
    }
    vec_put(cpu, in->reg, &a, 16);
}

/* 0F 71-73: shifts by imm8, VEX.NDD: dest = vvvv, source = r/m (register only). */
static void shift_imm(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    unsigned imm = fetch_imm(cpu, in, 1);
    int sub = in->reg & 7, esize = op == 0x71 ? 2 : op == 0x72 ? 4 : 8;
    vec_t x;
    vex_need_reg(cpu, in);
    vec_get(cpu, in->rm, &x);
    for (int h = 0; h < vex_lanes(in); h++) {
        if (op == 0x73 && (sub == 3 || sub == 7)) sse_byte_shift(&x.x[h], sub == 3, imm);
        else if (sub == 2) sse_shift_elems(&x.x[h], 0, esize, imm);
        else if (sub == 4 && op != 0x73) sse_shift_elems(&x.x[h], 1, esize, imm);
        else if (sub == 6) sse_shift_elems(&x.x[h], 2, esize, imm);
        else RAISE_UD(cpu);
    }
    vec_put(cpu, in->vex_v, &x, vex_len(in));
}

/* vmovd / vmovq between XMM and GPR or memory (0F 6E, 7E, D6). */
static void movd_q(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t x, y;
    vex_need_l0(cpu, in);
    vex_need_no_v(cpu, in);
    memset(&x, 0, sizeof(x));
    if (op == 0x6e) {
        if (pp != PFX_66) RAISE_UD(cpu);
        x.y.q[0] = rm_read(cpu, in, vex_gpr_size(cpu, in));
        vec_put(cpu, in->reg, &x, 16);
    } else if (op == 0x7e && pp == PFX_F3) {             /* vmovq xmm, xmm/m64 */
        vec_rm(cpu, in, &y, 8, 0);
        x.y.q[0] = y.y.q[0];
        vec_put(cpu, in->reg, &x, 16);
    } else if (op == 0x7e) {
        if (pp != PFX_66) RAISE_UD(cpu);
        vec_get(cpu, in->reg, &y);
        rm_write(cpu, in, vex_gpr_size(cpu, in), y.y.q[0]);
    } else {                                             /* D6: vmovq xmm/m64, xmm */
        if (pp != PFX_66) RAISE_UD(cpu);
        vec_get(cpu, in->reg, &y);
        if (in->mod == 3) {
            x.y.q[0] = y.y.q[0];
            vec_put(cpu, in->rm, &x, 16);
        } else {
            mem_write(cpu, in->easeg, vex_ea(in), 8, y.y.q[0]);
        }
    }
}

/* vmovmskps / vmovmskpd / vpmovmskb: sign bits to a GPR (zero-extended). */
static void movmsk(struct interp_cpu *cpu, struct insn *in, int esize)
{
    vec_t b;
    uint32_t m = 0;
    vex_need_no_v(cpu, in);
    vex_need_reg(cpu, in);
    vec_get(cpu, in->rm, &b);
    int n = vex_len(in) / esize;
    for (int i = 0; i < n; i++)
        m |= (uint32_t)(b.y.b[esize * i + esize - 1] >> 7) << i;
    reg_set(cpu, in->reg, 8, 0, m);
}

static void fp_compare_flags(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t a, b;
    vex_need_no_v(cpu, in);
    vec_get(cpu, in->reg, &a);
    vec_rm(cpu, in, &b, pp == PFX_66 ? 8 : 4, 0);
    int fop = pp == PFX_66 ? (op == 0x2e ? FPOP_UCOMISD : FPOP_COMISD) : (op == 0x2e ? FPOP_UCOMISS : FPOP_COMISS);
    sse_fp(cpu, fop, 0, &a.x[0], &b.x[0]);
    flags_set(cpu, FL_ARITH, a.x[0].q[0]);
}

static void cvt_gpr(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp)
{
    vec_t a, b;
    int size = vex_gpr_size(cpu, in);
    if (op == 0x2a) {                                    /* vcvtsi2ss / vcvtsi2sd xmm, vvvv, r/m */
        memset(&b, 0, sizeof(b));
        b.y.q[0] = rm_read(cpu, in, size);
        vec_get(cpu, in->vex_v, &a);
        sse_fp(cpu, pp == PFX_F3 ? (size == 8 ? FPOP_CVTSI2SS64 : FPOP_CVTSI2SS32)
                                 : (size == 8 ? FPOP_CVTSI2SD64 : FPOP_CVTSI2SD32), 0, &a.x[0], &b.x[0]);
        vec_put(cpu, in->reg, &a, 16);
        return;
    }
    static const int fops[2][2][2] = {                   /* [sd][truncate][64-bit] */
        {{FPOP_CVTSS2SI32, FPOP_CVTSS2SI64}, {FPOP_CVTTSS2SI32, FPOP_CVTTSS2SI64}},
        {{FPOP_CVTSD2SI32, FPOP_CVTSD2SI64}, {FPOP_CVTTSD2SI32, FPOP_CVTTSD2SI64}},
    };
    vex_need_no_v(cpu, in);
    vec_rm(cpu, in, &b, pp == PFX_F3 ? 4 : 8, 0);
    a = b;
    sse_fp(cpu, fops[pp == PFX_F2][op == 0x2c][size == 8], 0, &a.x[0], &b.x[0]);
    reg_set(cpu, in->reg, size, 0, a.x[0].q[0]);
}

/* Integer and shuffle ops computed per lane by sse_core_0f: dest = vvvv OP r/m. */
static void int_lanes(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pp, int unary)
{
    vec_t a, b, r;
    unsigned imm = 0;
    if (unary)
        vex_need_no_v(cpu, in);
    if (op == 0x70 || op == 0xc6)
        imm = fetch_imm(cpu, in, 1);
    vec_get(cpu, unary ? 0 : in->vex_v, &a);
    vec_rm(cpu, in, &b, vex_len(in), 0);
    for (int h = 0; h < vex_lanes(in); h++) {
        unsigned li = op == 0xc6 && pp == PFX_66 ? imm >> (2 * h) : imm;    /* vshufpd: 2 bits a lane */
        if (!sse_core_0f(op, pp, &r.x[h], &a.x[h], &b.x[h], li))
            RAISE_UD(cpu);
    }
    vec_put(cpu, in->reg, &r, vex_len(in));
}

/* Shifts by a count in xmm/m128 (one count for both lanes). */
static void shift_reg(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    vec_t a, c;
    vec_get(cpu, in->vex_v, &a);
    vec_rm(cpu, in, &c, 16, 0);
    int esize = (op & 3) == 1 ? 2 : (op & 3) == 2 ? 4 : 8;
    int kind = op >= 0xf1 ? 2 : op >= 0xe1 ? 1 : 0;
    for (int h = 0; h < vex_lanes(in); h++)
        sse_shift_elems(&a.x[h], kind, esize, c.y.q[0]);
    vec_put(cpu, in->reg, &a, vex_len(in));
}

void avx_0f(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int pp = vex_pp(in), len = vex_len(in);
    vec_t a, b;
    decode_modrm(cpu, in);
    if (op == 0xf7) {                                    /* vmaskmovdqu */
        if (pp != PFX_66) RAISE_UD(cpu);
        vex_need_no_v(cpu, in);
        vex_need_l0(cpu, in);
        vex_need_reg(cpu, in);
        xmm_t data, mask;
        xmm_get(cpu, in->reg, &data);
        xmm_get(cpu, in->rm, &mask);
        sse_masked_store(cpu, in, data.b, mask.b, 16);
        return;
    }
    switch (op) {
    case 0x10: case 0x11:                                /* vmovss / vmovsd (vmovups/upd: vexmov.c) */
        movs_scalar(cpu, in, op, pp == PFX_F3 ? 4 : 8);
        return;
    case 0x12: case 0x13: case 0x16: case 0x17:
        movs_half(cpu, in, op, pp);
        return;
    case 0x14: case 0x15: case 0x54: case 0x55: case 0x56: case 0x57: case 0xc6:
        if (pp >= PFX_F2) RAISE_UD(cpu);
        int_lanes(cpu, in, op, pp, 0);
        return;
    case 0x2a: case 0x2c: case 0x2d:
        if (pp < PFX_F2) RAISE_UD(cpu);
        cvt_gpr(cpu, in, op, pp);
        return;
    case 0x2b: case 0xe7:                                /* vmovntps/pd, vmovntdq */
        if ((op == 0x2b && pp >= PFX_F2) || (op == 0xe7 && pp != PFX_66)) RAISE_UD(cpu);
        vex_need_no_v(cpu, in);
        vex_need_mem(cpu, in);
        vec_get(cpu, in->reg, &a);
        vec_put_rm(cpu, in, &a, len, 1);
        return;
    case 0x2e: case 0x2f:
        if (pp >= PFX_F2) RAISE_UD(cpu);
        fp_compare_flags(cpu, in, op, pp);
        return;
    case 0x50:
        if (pp >= PFX_F2) RAISE_UD(cpu);
        movmsk(cpu, in, pp == PFX_66 ? 8 : 4);
        return;
    case 0x51: case 0x52: case 0x53: case 0x58: case 0x59: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        arith(cpu, in, op, pp);
        return;
    case 0x5a: case 0x5b: case 0xe6:
        convert(cpu, in, op, pp);
        return;
    case 0x6e: case 0x7e: case 0xd6:
        movd_q(cpu, in, op, pp);
        return;
    case 0x70:                                           /* vpshufd / vpshufhw / vpshuflw */
        if (pp == PFX_NONE) RAISE_UD(cpu);
        int_lanes(cpu, in, op, pp, 1);
        return;
    case 0x71: case 0x72: case 0x73:
        if (pp != PFX_66) RAISE_UD(cpu);
        shift_imm(cpu, in, op);
        return;
    case 0x7c: case 0x7d: case 0xd0: {                   /* vhaddp*, vhsubp*, vaddsubp* */
        static const int fops[3][2] = {{FPOP_HADDPD, FPOP_HADDPS}, {FPOP_HSUBPD, FPOP_HSUBPS},
                                       {FPOP_ADDSUBPD, FPOP_ADDSUBPS}};
        if (pp != PFX_66 && pp != PFX_F2) RAISE_UD(cpu);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        fp_lanes(cpu, in, fops[op == 0xd0 ? 2 : op - 0x7c][pp == PFX_F2], 0, &a, &b);
        return;
    }
    case 0xae: {                                         /* vldmxcsr / vstmxcsr */
        int sub = in->reg & 7;
        if (pp != PFX_NONE || in->mod == 3 || (sub != 2 && sub != 3)) RAISE_UD(cpu);
        vex_need_l0(cpu, in);
        vex_need_no_v(cpu, in);
        if (sub == 2) fpu_set_mxcsr(cpu, mem_read(cpu, in->easeg, vex_ea(in), 4));
        else mem_write(cpu, in->easeg, vex_ea(in), 4, mxcsr_get(cpu));
        return;
    }
    case 0xc2: {                                         /* vcmpps/pd/ss/sd, predicates 0..31 */
        unsigned imm = fetch_imm(cpu, in, 1) & 31;
        static const int fops[4] = {FPOP_CMPPS, FPOP_CMPPD, FPOP_CMPSD, FPOP_CMPSS};
        if (pp >= PFX_F2) {
            fp_scalar(cpu, in, fops[pp], imm, pp == PFX_F3 ? 4 : 8);
            return;
        }
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        fp_lanes(cpu, in, fops[pp], imm, &a, &b);
        return;
    }
    case 0xc4: {                                         /* vpinsrw xmm, vvvv, r32/m16, imm8 */
        if (pp != PFX_66) RAISE_UD(cpu);
        vex_need_l0(cpu, in);
        unsigned imm = fetch_imm(cpu, in, 1);
        uint16_t v = rm_read(cpu, in, 2);
        vec_get(cpu, in->vex_v, &a);
        a.y.w[imm & 7] = v;
        vec_put(cpu, in->reg, &a, 16);
        return;
    }
    case 0xc5: {                                         /* vpextrw r32, xmm, imm8 */
        if (pp != PFX_66) RAISE_UD(cpu);
        vex_need_l0(cpu, in);
        vex_need_no_v(cpu, in);
        unsigned imm = fetch_imm(cpu, in, 1);
        vex_need_reg(cpu, in);
        vec_get(cpu, in->rm, &b);
        reg_set(cpu, in->reg, 8, 0, b.y.w[imm & 7]);
        return;
    }
    case 0xd7:
        if (pp != PFX_66) RAISE_UD(cpu);
        movmsk(cpu, in, 1);
        return;
    case 0xd1: case 0xd2: case 0xd3: case 0xe1: case 0xe2: case 0xf1: case 0xf2: case 0xf3:
        if (pp != PFX_66) RAISE_UD(cpu);
        shift_reg(cpu, in, op);
        return;
    case 0xf0:                                           /* vlddqu */
        if (pp != PFX_F2) RAISE_UD(cpu);
        vex_need_no_v(cpu, in);
        vex_need_mem(cpu, in);
        vec_rm(cpu, in, &a, len, 0);
        vec_put(cpu, in->reg, &a, len);
        return;
    default:
        if (((op >= 0x60 && op <= 0x6d) || (op >= 0x74 && op <= 0x76) || op >= 0xd4) && pp == PFX_66) {
            int_lanes(cpu, in, op, pp, 0);
            return;
        }
        RAISE_UD(cpu);
    }
}
