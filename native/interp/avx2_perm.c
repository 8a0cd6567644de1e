/* AVX/AVX2 data movement that has no SSE ancestor: broadcasts (vbroadcastss/sd/f128,
 * vpbroadcastb/w/d/q, vbroadcasti128), 128-bit inserts/extracts (vinsertf128/i128,
 * vextractf128/i128), cross-lane permutes (vperm2f128/i128, vpermd/ps, vpermq/pd), the
 * in-lane vpermilps/pd (imm8 and variable) and vpblendd.
 *
 * Why separate: these are pure element selection on YMM values (no flags, no MXCSR, no
 * per-lane SSE core), each with its own fixed VEX.L / VEX.W encoding rules. */
#include "avx.h"

/* vpbroadcast*, vbroadcastss/sd: element of `esize` bytes from xmm/m, repeated. */
static void broadcast(struct interp_cpu *cpu, struct insn *in, int esize)
{
    vec_t s, r;
    int len = vex_len(in);
    vex_need_no_v(cpu, in);
    vex_need_w0(cpu, in);
    vec_rm(cpu, in, &s, esize, 0);
    for (int i = 0; i < len; i += esize)
        memcpy(r.y.b + i, s.y.b, esize);
    vec_put(cpu, in->reg, &r, len);
}

int avx_perm_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int len = vex_len(in);
    vec_t a, b, r;
    switch (op) {
    case 0x0c: case 0x0d:                                /* vpermilps / vpermilpd, variable */
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        for (int h = 0; h < vex_lanes(in); h++) {
            if (op == 0x0c)
                for (int i = 0; i < 4; i++) r.x[h].d[i] = a.x[h].d[b.x[h].d[i] & 3];
            else
                for (int i = 0; i < 2; i++) r.x[h].q[i] = a.x[h].q[(b.x[h].q[i] >> 1) & 1];
        }
        vec_put(cpu, in->reg, &r, len);
        return 1;
    case 0x16: case 0x36:                                /* vpermps / vpermd: indices in vvvv */
        vex_need_l1(cpu, in);
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, 32, 0);
        for (int i = 0; i < 8; i++)
            r.y.d[i] = b.y.d[a.y.d[i] & 7];
        vec_put(cpu, in->reg, &r, 32);
        return 1;
    case 0x18: broadcast(cpu, in, 4); return 1;          /* vbroadcastss */
    case 0x19:                                           /* vbroadcastsd: 256 only */
        vex_need_l1(cpu, in);
        broadcast(cpu, in, 8);
        return 1;
    case 0x1a: case 0x5a:                                /* vbroadcastf128 / vbroadcasti128 */
        vex_need_l1(cpu, in);
        vex_need_mem(cpu, in);
        broadcast(cpu, in, 16);
        return 1;
    case 0x58: broadcast(cpu, in, 4); return 1;          /* vpbroadcastd */
    case 0x59: broadcast(cpu, in, 8); return 1;          /* vpbroadcastq */
    case 0x78: broadcast(cpu, in, 1); return 1;          /* vpbroadcastb */
    case 0x79: broadcast(cpu, in, 2); return 1;          /* vpbroadcastw */
    default:
        return 0;
    }
}

int avx_perm_0f3a(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm)
{
    int len = vex_len(in);
    vec_t a, b, r;
    switch (op) {
    case 0x00: case 0x01:                                /* vpermq / vpermpd: W1, 256 only */
        vex_need_l1(cpu, in);
        if (!in->vex_w) RAISE_UD(cpu);
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, 32, 0);
        for (int i = 0; i < 4; i++)
            r.y.q[i] = b.y.q[(imm >> (2 * i)) & 3];
        vec_put(cpu, in->reg, &r, 32);
        return 1;
    case 0x02:                                           /* vpblendd */
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, len, 0);
        for (int i = 0; i < len / 4; i++)
            r.y.d[i] = (imm >> i) & 1 ? b.y.d[i] : a.y.d[i];
        vec_put(cpu, in->reg, &r, len);
        return 1;
    case 0x04: case 0x05:                                /* vpermilps / vpermilpd, imm8 */
        vex_need_w0(cpu, in);
        vex_need_no_v(cpu, in);
        vec_rm(cpu, in, &b, len, 0);
        for (int h = 0; h < vex_lanes(in); h++) {
            if (op == 0x04)
                for (int i = 0; i < 4; i++) r.x[h].d[i] = b.x[h].d[(imm >> (2 * i)) & 3];
            else
                for (int i = 0; i < 2; i++) r.x[h].q[i] = b.x[h].q[(imm >> (2 * h + i)) & 1];
        }
        vec_put(cpu, in->reg, &r, len);
        return 1;
    case 0x06: case 0x46:                                /* vperm2f128 / vperm2i128 */
        vex_need_l1(cpu, in);
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, 32, 0);
        for (int h = 0; h < 2; h++) {
            unsigned sel = imm >> (4 * h);
            if (sel & 8) memset(&r.x[h], 0, 16);
            else r.x[h] = (sel & 2 ? b : a).x[sel & 1];
        }
        vec_put(cpu, in->reg, &r, 32);
        return 1;
    case 0x18: case 0x38:                                /* vinsertf128 / vinserti128 */
        vex_need_l1(cpu, in);
        vex_need_w0(cpu, in);
        vec_get(cpu, in->vex_v, &a);
        vec_rm(cpu, in, &b, 16, 0);
        a.x[imm & 1] = b.x[0];
        vec_put(cpu, in->reg, &a, 32);
        return 1;
    case 0x19: case 0x39:                                /* vextractf128 / vextracti128 */
        vex_need_l1(cpu, in);
        vex_need_w0(cpu, in);
        vex_need_no_v(cpu, in);
        vec_get(cpu, in->reg, &a);
        r.x[0] = a.x[imm & 1];
        vec_put_rm(cpu, in, &r, 16, 0);
        return 1;
    default:
        return 0;
    }
}
