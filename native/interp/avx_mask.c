/* Per-element masked and per-element-count operations: vmaskmovps/pd (AVX), vpmaskmovd/q,
 * vpsllvd/q, vpsrlvd/q, vpsravd (AVX2).
 *
 * Why apart: the masked moves have their own memory rule: only the elements whose mask
 * sign bit is set are accessed, so a masked-off element never faults (on an absent page,
 * past a segment limit...).  A masked load reads the enabled elements in order (the first
 * that faults raises, nothing written); a masked store checks every enabled element's pages
 * for write first, from the highest element down (CR2 as on the CPU), so a fault leaves
 * memory untouched, then writes them. */
#include "avx.h"

static int mask_on(const vec_t *m, int esize, int i)
{
    return m->y.b[esize * i + esize - 1] >> 7;
}

/* load: dest = enabled elements of m256/m128, zeros elsewhere; store: m = enabled elements
 * of the ModRM reg.  The mask is vvvv. */
static void masked_move(struct interp_cpu *cpu, struct insn *in, int esize, int store)
{
    int len = vex_len(in), n = len / esize;
    vec_t m, v;
    vex_need_mem(cpu, in);
    vec_get(cpu, in->vex_v, &m);
    uint64_t ea = vex_ea(in), amask = in->addrsize == 4 ? 0xffffffffULL : ~0ULL;
    if (!store) {
        memset(&v, 0, sizeof(v));
        for (int i = 0; i < n; i++)
            if (mask_on(&m, esize, i))
                mem_read_buf(cpu, in->easeg, (ea + esize * i) & amask, v.y.b + esize * i, esize);
        vec_put(cpu, in->reg, &v, len);
        return;
    }
    vec_get(cpu, in->reg, &v);
    /* The CPU checks from the top: a fault reports the last byte of the highest enabled
     * element on the failing page (CR2), so the check goes down from there. */
    uint8_t *h;
    for (int i = n - 1; i >= 0; i--) {
        if (!mask_on(&m, esize, i))
            continue;
        uint64_t la = seg_linear(cpu, in->easeg, (ea + esize * i) & amask, esize, ACC_W);
        uint64_t last = la + esize - 1;
        translate(cpu, last, ACC_W, &h);
        if ((last ^ la) >> 12)
            translate(cpu, la | 0xfff, ACC_W, &h);
    }
    for (int i = 0; i < n; i++)
        if (mask_on(&m, esize, i))
            mem_write_buf(cpu, in->easeg, (ea + esize * i) & amask, v.y.b + esize * i, esize);
}

/* vpsllvd/q, vpsrlvd/q, vpsravd: element i of vvvv shifted by element i of r/m. */
static void shift_var(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int len = vex_len(in), esize = in->vex_w ? 8 : 4, bits = 8 * esize;
    vec_t a, c;
    if (op == 0x46)
        vex_need_w0(cpu, in);
    vec_get(cpu, in->vex_v, &a);
    vec_rm(cpu, in, &c, len, 0);
    for (int i = 0; i < len / esize; i++) {
        uint64_t v = esize == 4 ? a.y.d[i] : a.y.q[i], n = esize == 4 ? c.y.d[i] : c.y.q[i];
        if (op == 0x46)
            v = (uint32_t)((int32_t)v >> (n > 31 ? 31 : n));
        else if (n >= (uint64_t)bits)
            v = 0;
        else
            v = op == 0x45 ? v >> n : v << n;
        if (esize == 4) a.y.d[i] = v;
        else a.y.q[i] = v;
    }
    vec_put(cpu, in->reg, &a, len);
}

int avx_mask_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    switch (op) {
    case 0x2c: case 0x2d: case 0x2e: case 0x2f:          /* vmaskmovps/pd: load, store */
        vex_need_w0(cpu, in);
        masked_move(cpu, in, op & 1 ? 8 : 4, op >= 0x2e);
        return 1;
    case 0x8c: case 0x8e:                                /* vpmaskmovd/q */
        masked_move(cpu, in, in->vex_w ? 8 : 4, op == 0x8e);
        return 1;
    case 0x45: case 0x46: case 0x47:
        shift_var(cpu, in, op);
        return 1;
    default:
        return 0;
    }
}
