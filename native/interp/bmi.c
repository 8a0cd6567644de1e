/* BMI1 (andn, bextr, blsi, blsmsk, blsr) and BMI2 (bzhi, mulx, pdep, pext, rorx, sarx, shlx,
 * shrx): the VEX-encoded general-purpose-register instructions of maps 0F38 (F2-F7) and 0F3A
 * (F0).  tzcnt (BMI1 too) is the legacy F3 0F BC in exec0f.c.
 *
 * Why here: they use VEX only for its third operand (vvvv) and W (operand size), not vector
 * state, so they skip the XSAVE/XCR0/TS checks (vex.c).  VEX.L = 1 is #UD.  Outside 64-bit
 * mode VEX.W is ignored (32-bit operands).  Flags follow the SDM exactly where it defines
 * them; where it says "undefined" (AF and PF, SF for bextr) we clear them, and the
 * differential tests skip them. */
#include "interp.h"

static uint64_t pdep(uint64_t src, uint64_t mask)
{
    uint64_t r = 0;
    for (uint64_t bit = 1; mask; bit <<= 1) {
        uint64_t low = mask & -mask;             /* lowest remaining mask bit */
        if (src & bit)
            r |= low;
        mask &= mask - 1;
    }
    return r;
}

static uint64_t pext(uint64_t src, uint64_t mask)
{
    uint64_t r = 0;
    for (uint64_t bit = 1; mask; bit <<= 1) {
        uint64_t low = mask & -mask;
        if (src & low)
            r |= bit;
        mask &= mask - 1;
    }
    return r;
}

/* Flags of the logic-like BMI results: those of `defined` among SF and ZF from the result,
 * CF as given; the other status flags (OF, and the undefined AF and PF) cleared. */
static void bmi_flags(struct interp_cpu *cpu, uint64_t res, int size, int cf, uint64_t defined)
{
    uint64_t f = flags_szp(res, size) & (FL_SF | FL_ZF);
    if (cf)
        f |= FL_CF;
    flags_set(cpu, FL_ARITH, f & defined);
}

void bmi_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = in->opsize, bits = 8 * size;
    uint64_t mask = size_mask(size);
    decode_modrm(cpu, in);
    if (in->vex_l)
        RAISE_UD(cpu);
    int pp = in->pfx66 ? 1 : in->rep == 0xf3 ? 2 : in->rep == 0xf2 ? 3 : 0;
    uint64_t v = cpu->gpr[in->vex_v] & mask;    /* the vvvv operand */
    uint64_t src, r;

    if (in->vex_map == 3) {                      /* F0: rorx (F2) */
        if (pp != 3 || in->vex_v != 0)
            RAISE_UD(cpu);                       /* vvvv must be 1111b */
        unsigned n = fetch_imm(cpu, in, 1) & (bits - 1);
        src = rm_read(cpu, in, size);
        r = n ? (src >> n) | (src << (bits - n)) : src;
        reg_set(cpu, in->reg, size, 0, r);
        return;
    }
    switch (op << 2 | pp) {
    case 0xf2 << 2 | 0:                          /* andn: reg = ~vvvv & r/m */
        r = ~v & rm_read(cpu, in, size) & mask;
        reg_set(cpu, in->reg, size, 0, r);
        bmi_flags(cpu, r, size, 0, FL_SF | FL_ZF);
        return;
    case 0xf3 << 2 | 0: {                        /* group 17: vvvv = f(r/m) */
        int sub = in->reg & 7;
        if (sub < 1 || sub > 3)
            RAISE_UD(cpu);
        src = rm_read(cpu, in, size);
        if (sub == 1) {                          /* blsr: CF = (src == 0) */
            r = (src - 1) & src;
            bmi_flags(cpu, r, size, src == 0, FL_SF | FL_ZF | FL_CF);
        } else if (sub == 2) {                   /* blsmsk: ZF cleared, CF = (src == 0) */
            r = ((src - 1) ^ src) & mask;
            bmi_flags(cpu, r, size, src == 0, FL_SF | FL_CF);
        } else {                                 /* blsi: CF = (src != 0) */
            r = -src & src & mask;
            bmi_flags(cpu, r, size, src != 0, FL_SF | FL_ZF | FL_CF);
        }
        reg_set(cpu, in->vex_v, size, 0, r);
        return;
    }
    case 0xf5 << 2 | 0: {                        /* bzhi: zero bits n and up; CF = (n > bits - 1) */
        unsigned n = v & 0xff;
        src = rm_read(cpu, in, size);
        r = n < (unsigned)bits ? src & ((1ULL << n) - 1) : src;
        reg_set(cpu, in->reg, size, 0, r);
        bmi_flags(cpu, r, size, n > (unsigned)bits - 1, FL_SF | FL_ZF | FL_CF);
        return;
    }
    case 0xf5 << 2 | 2:                          /* pext: reg = bits of vvvv selected by r/m */
        r = pext(v, rm_read(cpu, in, size));
        reg_set(cpu, in->reg, size, 0, r);
        return;
    case 0xf5 << 2 | 3:                          /* pdep: reg = low bits of vvvv spread over r/m */
        r = pdep(v, rm_read(cpu, in, size));
        reg_set(cpu, in->reg, size, 0, r);
        return;
    case 0xf6 << 2 | 3: {                        /* mulx: reg:vvvv = rDX * r/m, flags untouched */
        src = rm_read(cpu, in, size);
        uint64_t d = cpu->gpr[INTERP_RDX] & mask, hi, lo;
        if (size == 8) {
            unsigned __int128 p = (unsigned __int128)d * src;
            lo = (uint64_t)p;
            hi = (uint64_t)(p >> 64);
        } else {
            uint64_t p = d * src;
            lo = p & mask;
            hi = p >> 32;
        }
        reg_set(cpu, in->vex_v, size, 0, lo);    /* same register for both: the high half wins */
        reg_set(cpu, in->reg, size, 0, hi);
        return;
    }
    case 0xf7 << 2 | 0: {                        /* bextr: start = vvvv[7:0], length = vvvv[15:8] */
        unsigned start = v & 0xff, len = (v >> 8) & 0xff;
        src = rm_read(cpu, in, size);
        r = start < (unsigned)bits ? src >> start : 0;
        if (len < 64)
            r &= (1ULL << len) - 1;
        reg_set(cpu, in->reg, size, 0, r);
        bmi_flags(cpu, r, size, 0, FL_ZF);       /* ZF defined, CF/OF cleared, AF/SF/PF undefined */
        return;
    }
    case 0xf7 << 2 | 1: case 0xf7 << 2 | 2: case 0xf7 << 2 | 3: {   /* shlx (66), sarx (F3), shrx (F2) */
        unsigned n = v & (bits - 1);
        src = rm_read(cpu, in, size);
        if (pp == 1)
            r = src << n;
        else if (pp == 2)
            r = (uint64_t)(sext(src, size) >> n);
        else
            r = src >> n;
        reg_set(cpu, in->reg, size, 0, r);
        return;
    }
    default:
        RAISE_UD(cpu);                           /* F0/F1 (movbe, crc32: no VEX forms), F4, ... */
    }
}
