/* AVX2 gathers: vgatherdps/dpd/qps/qpd, vpgatherdd/dq/qd/qq (VEX.66.0F38 90-93).
 *
 * Why its own file: the memory operand is VSIB (the SIB index names a vector register whose
 * dword or qword elements are the indices), which the ordinary ModRM decoder cannot express,
 * and a gather is interruptible: elements are loaded in order, each completed element is
 * written to the destination and its mask element cleared at once, so a fault (#PF, #GP)
 * part way leaves the mask showing the progress and the completed elements in place, and
 * the restarted instruction goes on from there.  At the end the whole mask register is zero
 * and the destination's bits past the gathered elements are zero (VEX rules).
 *
 * #UD: no SIB byte (ModRM.rm != 100b) or a register operand, and any two of destination,
 * index and mask the same register. */
#include "avx.h"

struct vsib {
    uint64_t base;               /* base register + displacement */
    int index, scale, seg;
};

static void decode_vsib(struct interp_cpu *cpu, struct insn *in, struct vsib *v)
{
    uint8_t m = fetch8(cpu, in);
    int mod = m >> 6, rexb = in->rex & 1, rexx = (in->rex >> 1) & 1;
    in->mod = mod;
    in->reg = ((m >> 3) & 7) | ((in->rex & 4) << 1);
    if (mod == 3 || (m & 7) != 4)
        RAISE_UD(cpu);
    uint8_t sib = fetch8(cpu, in);
    int base = (sib & 7) | (rexb << 3), defseg = INTERP_DS;
    v->index = ((sib >> 3) & 7) | (rexx << 3);
    v->scale = sib >> 6;
    v->base = 0;
    if ((base & 7) == 5 && mod == 0) {
        v->base = (uint64_t)sext(fetch_n(cpu, in, 4), 4);
    } else {
        v->base = cpu->gpr[base];
        if (base == INTERP_RSP || base == INTERP_RBP)
            defseg = INTERP_SS;
    }
    if (mod == 1)
        v->base += (uint64_t)sext(fetch_n(cpu, in, 1), 1);
    else if (mod == 2)
        v->base += (uint64_t)sext(fetch_n(cpu, in, 4), 4);
    v->seg = in->seg >= 0 ? in->seg : defseg;
}

void avx_gather(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    struct vsib v;
    decode_vsib(cpu, in, &v);
    int esize = in->vex_w ? 8 : 4, isize = (op & 1) ? 8 : 4;
    int n = vex_len(in) / (esize > isize ? esize : isize);
    int dst = in->reg, mask = in->vex_v;
    if (dst == mask || dst == v.index || mask == v.index)
        RAISE_UD(cpu);
    vec_t idx, d, m;
    vec_get(cpu, v.index, &idx);
    uint64_t amask = in->addrsize == 4 ? 0xffffffffULL : ~0ULL;
    int reg_len = vex_len(in);
    for (int i = 0; i < n; i++) {
        vec_get(cpu, mask, &m);
        if (!(m.y.b[esize * i + esize - 1] & 0x80))
            continue;
        int64_t ix = isize == 4 ? (int64_t)(int32_t)idx.y.d[i] : (int64_t)idx.y.q[i];
        uint64_t ea = (v.base + ((uint64_t)ix << v.scale)) & amask;
        uint64_t val = mem_read(cpu, v.seg, ea, esize);
        /* the element is done: into the destination, out of the mask, before the next one
         * (written with the instruction's VEX.L, as the CPU does: after a fault bits 255:128
         * of destination and mask are zero for VEX.128 and untouched for VEX.256, even
         * where the destination is an XMM register, vgatherqps / vpgatherqd) */
        vec_get(cpu, dst, &d);
        memcpy(d.y.b + esize * i, &val, esize);
        vec_put(cpu, dst, &d, reg_len);
        memset(m.y.b + esize * i, 0, esize);
        vec_put(cpu, mask, &m, reg_len);
    }
    vec_get(cpu, dst, &d);
    memset(d.y.b + n * esize, 0, 32 - n * esize);
    vec_put(cpu, dst, &d, 32);
    memset(&m, 0, sizeof(m));
    vec_put(cpu, mask, &m, 32);
}
