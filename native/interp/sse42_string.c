/* SSE4.2 string compares: pcmpestri, pcmpestrm, pcmpistri, pcmpistrm (66 0F 3A 60..63).
 *
 * Follows the SDM's description (Vol. 2, 4.1 "Imm8 Control Byte Operation for PCMPESTRI /
 * PCMPESTRM / PCMPISTRI / PCMPISTRM"): imm8[1:0] element format (unsigned/signed bytes or
 * words), imm8[3:2] aggregation (equal any, ranges, equal each, equal ordered) over the
 * comparison matrix BoolRes[j][i] of src2 (xmm2/m128) element j with src1 (xmm1) element i,
 * with the forced results for invalid (past the length) elements; imm8[5:4] polarity;
 * imm8[6] output selection (least/most significant index; bit mask or element mask).
 * Lengths are explicit (|EAX|, |EDX|, or RAX/RDX with REX.W, saturated) or implicit (the
 * first null element).  Flags: CF = IntRes2 != 0, ZF/SF = src2/src1 shorter than the
 * register, OF = IntRes2[0], AF = PF = 0.  Memory operands need no alignment. */
#include "sse.h"

static int elem(const xmm_t *x, int i, int words, int sign)
{
    if (words)
        return sign ? x->sw[i] : x->w[i];
    return sign ? x->sb[i] : x->b[i];
}

static int implicit_len(const xmm_t *x, int n, int words)
{
    for (int i = 0; i < n; i++)
        if (elem(x, i, words, 0) == 0)
            return i;
    return n;
}

static int explicit_len(struct interp_cpu *cpu, int r, int wide, int n)
{
    int64_t v = wide ? (int64_t)cpu->gpr[r] : (int64_t)(int32_t)cpu->gpr[r];
    if (v < 0)
        v = v == INT64_MIN ? n : -v;                     /* |INT64_MIN| saturates as well */
    return v > n ? n : (int)v;
}

/* The comparison of src2[j] with src1[i], with the SDM's forced results for invalid elements. */
static int boolres(int agg, const xmm_t *s1, const xmm_t *s2, int i, int j, int l1, int l2, int words, int sign)
{
    int v1 = i < l1, v2 = j < l2;
    if (!v1 || !v2) {
        if (agg == 2) return !v1 && !v2;                 /* equal each: both invalid -> true */
        if (agg == 3) return !v1;                        /* equal ordered: src1 invalid -> true */
        return 0;
    }
    int x1 = elem(s1, i, words, sign), x2 = elem(s2, j, words, sign);
    if (agg == 1)                                        /* ranges: even i lower, odd i upper bound */
        return (i & 1) ? x2 <= x1 : x2 >= x1;
    return x1 == x2;
}

void sse42_string(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm)
{
    xmm_t s1, s2;
    int words = imm & 1, sign = (imm >> 1) & 1, agg = (imm >> 2) & 3, pol = (imm >> 4) & 3;
    int n = words ? 8 : 16, explicit = op <= 0x61, index = op & 1;
    xmm_get(cpu, in->reg, &s1);
    src128(cpu, in, &s2, 1);
    int l1, l2;
    if (explicit) {
        int wide = (in->rex & 8) != 0;
        l1 = explicit_len(cpu, INTERP_RAX, wide, n);
        l2 = explicit_len(cpu, INTERP_RDX, wide, n);
    } else {
        l1 = implicit_len(&s1, n, words);
        l2 = implicit_len(&s2, n, words);
    }

    unsigned res1 = 0;
    for (int j = 0; j < n; j++) {
        int bit;
        switch (agg) {
        case 0:                                          /* equal any */
            bit = 0;
            for (int i = 0; i < n; i++) bit |= boolres(0, &s1, &s2, i, j, l1, l2, words, sign);
            break;
        case 1:                                          /* ranges */
            bit = 0;
            for (int i = 0; i < n; i += 2)
                bit |= boolres(1, &s1, &s2, i, j, l1, l2, words, sign) &
                       boolres(1, &s1, &s2, i + 1, j, l1, l2, words, sign);
            break;
        case 2:                                          /* equal each */
            bit = boolres(2, &s1, &s2, j, j, l1, l2, words, sign);
            break;
        default:                                         /* equal ordered: src1 starts at src2[j] */
            bit = 1;
            for (int i = 0, k = j; k < n; i++, k++) bit &= boolres(3, &s1, &s2, i, k, l1, l2, words, sign);
            break;
        }
        res1 |= (unsigned)bit << j;
    }
    unsigned full = (1u << n) - 1, res2 = res1;
    if (pol == 1)
        res2 = ~res1 & full;
    else if (pol == 3)
        res2 = res1 ^ ((1u << l2) - 1);                  /* negate only the valid src2 elements */

    if (index) {
        unsigned idx = n;
        if (res2)
            idx = (imm & 0x40) ? 31 - __builtin_clz(res2) : __builtin_ctz(res2);
        reg_set(cpu, INTERP_RCX, 4, 0, idx);
    } else {
        xmm_t m;
        memset(&m, 0, 16);
        if (imm & 0x40) {
            for (int j = 0; j < n; j++)
                if ((res2 >> j) & 1) memset(m.b + (words ? 2 : 1) * j, 0xff, words ? 2 : 1);
        } else {
            m.w[0] = res2;
        }
        xmm_put(cpu, 0, &m);
    }
    uint64_t f = 0;
    if (res2) f |= FL_CF;
    if (l2 < n) f |= FL_ZF;
    if (l1 < n) f |= FL_SF;
    if (res2 & 1) f |= FL_OF;
    flags_set(cpu, FL_ARITH, f);
}
