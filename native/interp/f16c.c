/* F16C: vcvtph2ps (VEX.66.0F38.W0 13) and vcvtps2ph (VEX.66.0F3A.W0 1D ib), half <-> single
 * precision conversions, VEX.128 (4 elements) and VEX.256 (8).
 *
 * Why in software: the host may lack F16C, and the conversions are small enough to do
 * exactly with integers.  The rules (checked bit for bit against the hardware over every
 * half value and millions of singles, all rounding modes, DAZ and FTZ):
 *   vcvtph2ps is exact; a signalling NaN gives IE (quieted); DAZ does not apply and no DE.
 *   vcvtps2ph rounds by imm8[1:0], or by MXCSR.RC when imm8[2] is set; DAZ applies to the
 *   input (then no DE; otherwise a denormal input sets DE), FTZ does not apply to the
 *   output; underflow is tininess after rounding (to 11 bits, exponent unbounded) and, with
 *   UM masked, reported only when inexact; overflow gives OE|PE and infinity or the largest
 *   half by the rounding mode; NaNs keep their top 10 payload bits and get quieted (IE for
 *   SNaN).  Exceptions go through mxcsr_signal (#XM before any write when unmasked). */
#include "interp.h"

/* Round-to-integer decision: does the kept part go up by one ulp?  rem / half: the dropped
 * bits and half an ulp in the same units. */
static int round_up(int rc, int sign, uint64_t kept, uint64_t rem, uint64_t half)
{
    switch (rc) {
    case 0: return rem > half || (rem == half && (kept & 1));   /* nearest, ties to even */
    case 1: return rem && sign;                                  /* toward -infinity */
    case 2: return rem && !sign;                                 /* toward +infinity */
    default: return 0;                                           /* toward zero */
    }
}

static uint32_t half_to_single(uint16_t h, uint32_t *flags)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    int e = (h >> 10) & 31;
    uint32_t m = h & 0x3ff;
    if (e == 31) {
        if (!m)
            return sign | 0x7f800000;
        if (!(m & 0x200))
            *flags |= MXCSR_IE;
        return sign | 0x7fc00000 | (m << 13);
    }
    if (e == 0) {
        if (!m)
            return sign;
        int shift = __builtin_clz(m) - 21;         /* bring the top bit to bit 10 */
        m <<= shift;
        return sign | ((uint32_t)(113 - shift) << 23) | ((m & 0x3ff) << 13);
    }
    return sign | ((uint32_t)(e + 112) << 23) | (m << 13);
}

static uint16_t single_to_half(uint32_t f, int rc, uint32_t *flags, int daz)
{
    uint16_t sign = (f >> 16) & 0x8000;
    int exp = (f >> 23) & 0xff;
    uint32_t man = f & 0x7fffff;
    if (exp == 0xff) {
        if (!man)
            return sign | 0x7c00;                /* infinity */
        if (!(man & 0x400000))
            *flags |= MXCSR_IE;                  /* SNaN: quieted, payload truncated */
        return sign | 0x7e00 | (man >> 13);
    }
    uint32_t sig;
    int e;                                    /* value = sig * 2^e, sig in [2^23, 2^24) */
    if (exp == 0) {
        if (!man || daz)
            return sign;                         /* zero, or a denormal under DAZ */
        *flags |= MXCSR_DE;
        int shift = __builtin_clz(man) - 8;
        sig = man << shift;
        e = -149 - shift;
    } else {
        sig = man | 0x800000;
        e = exp - 150;
    }
    int E = e + 23;                           /* floor(log2 value) */
    int q = E < -14 ? -24 : E - 10;           /* exponent of the result's last place */
    int drop = q - e;                         /* >= 13 */
    if (drop > 40)
        drop = 40;                            /* sig < 2^24: still all below half an ulp */
    uint64_t kept = (uint64_t)sig >> drop, rem = sig & ((1ULL << drop) - 1), half = 1ULL << (drop - 1);
    int inexact = rem != 0;
    int up = round_up(rc, sign, kept, rem, half);
    /* Tininess after rounding: the result rounded to 11 bits, exponent unbounded, below 2^-14? */
    int tiny = 0;
    if (E < -14) {
        tiny = 1;
        if (E == -15) {
            uint64_t k11 = sig >> 13;
            if (k11 + round_up(rc, sign, k11, sig & 0x1fff, 0x1000) == 0x800)
                tiny = 0;
        }
    }
    uint32_t bits;
    kept += up;
    if (q == -24)
        bits = kept;
    else
        bits = ((uint32_t)(E + 14) << 10) + kept;
    if (bits >= 0x7c00) {
        *flags |= MXCSR_OE | MXCSR_PE;
        int to_inf = rc == 0 || (rc == 1 && sign) || (rc == 2 && !sign);
        return sign | (to_inf ? 0x7c00 : 0x7bff);
    }
    if (inexact) {
        *flags |= MXCSR_PE;
        if (tiny)
            *flags |= MXCSR_UE;
    }
    return sign | bits;
}

void f16c_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    if (in->vex_w || in->vex_v != 0)
        RAISE_UD(cpu);                           /* W1, or vvvv other than 1111b */
    int n = in->vex_l ? 8 : 4;
    uint32_t mx = mxcsr_get(cpu), flags = 0;
    ymm_t src, r;
    memset(&r, 0, sizeof(r));
    if (op == 0x13) {                            /* vcvtph2ps ymm/xmm, xmm/m128/m64 */
        vex_read_rm(cpu, in, &src, 2 * n);
        for (int i = 0; i < n; i++)
            r.d[i] = half_to_single(src.w[i], &flags);
        mxcsr_signal(cpu, flags);
        ymm_put(cpu, in->reg, &r, 4 * n);
        return;
    }
    unsigned imm = fetch_imm(cpu, in, 1);        /* vcvtps2ph xmm/m128/m64, ymm/xmm, imm8 */
    int rc = (imm & 4) ? (mx & MXCSR_RC) >> MXCSR_RC_SHIFT : imm & 3;
    ymm_get(cpu, in->reg, &src);
    for (int i = 0; i < n; i++)
        r.w[i] = single_to_half(src.d[i], rc, &flags, (mx & MXCSR_DAZ) != 0);
    if (in->mod == 3) {
        mxcsr_signal(cpu, flags);
        ymm_put(cpu, in->rm, &r, 16);            /* bits 255:64 or 255:128 zeroed */
        return;
    }
    uint64_t ea = in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea;
    seg_linear(cpu, in->easeg, ea, 2 * n, ACC_W);   /* segment checks before #XM */
    mxcsr_signal(cpu, flags);
    mem_write_buf(cpu, in->easeg, ea, &r, 2 * n);
}
