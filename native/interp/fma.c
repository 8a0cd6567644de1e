/* FMA3: vfmadd / vfmsub / vfnmadd / vfnmsub 132/213/231 ps/pd/ss/sd and vfmaddsub /
 * vfmsubadd 132/213/231 ps/pd (VEX.66.0F38 96-9F, A6-AF, B6-BF), VEX.128 and VEX.256.
 *
 * Why this way: a fused multiply-add rounds once, so it cannot be built from the host's
 * multiply and add; C fma()/fmaf() are correctly rounded in the current rounding mode (glibc
 * uses the host's FMA instruction where there is one, so results and exception flags are the
 * hardware's).  They run under the guest MXCSR through mxcsr_run (mxcsr.c), and the flags go
 * to the guest (or become #XM, destination untouched) through mxcsr_signal.
 *
 * Operands: src1 = the ModRM reg (also the destination), src2 = VEX.vvvv, src3 = r/m.  The
 * digits name the multiply-add order: 132 is src1*src3 + src2, 213 src2*src1 + src3, 231
 * src2*src3 + src1.  NaN results are chosen here, not by fma(): as on hardware, the first NaN
 * among (multiplicand, multiplier, addend) in that order, quieted, without the negation of
 * the vfnm / vfmsub forms (the negation applies to numbers only). */
#include <math.h>
#include "interp.h"

struct fma_job {
    ymm_t a, b, c, r;
    int n;                   /* elements */
    int dbl;
    int neg_product;         /* vfnmadd / vfnmsub */
    uint32_t sub_c;          /* bit i: subtract c in element i */
};

static void fma_job_run(void *arg)
{
    struct fma_job *j = arg;
    for (int i = 0; i < j->n; i++) {
        int sub = (j->sub_c >> i) & 1;
        if (j->dbl) {
            double a = j->a.df[i], c = j->c.df[i];
            j->r.df[i] = fma(j->neg_product ? -a : a, j->b.df[i], sub ? -c : c);
        } else {
            float a = j->a.f[i], c = j->c.f[i];
            j->r.f[i] = fmaf(j->neg_product ? -a : a, j->b.f[i], sub ? -c : c);
        }
    }
}

static int nan32(uint32_t v) { return (v & 0x7fffffff) > 0x7f800000; }
static int nan64(uint64_t v) { return (v & 0x7fffffffffffffffULL) > 0x7ff0000000000000ULL; }

static void fix_nans(struct fma_job *j)
{
    for (int i = 0; i < j->n; i++) {
        if (j->dbl) {
            uint64_t v[3] = {j->a.q[i], j->b.q[i], j->c.q[i]};
            for (int k = 0; k < 3; k++)
                if (nan64(v[k])) {
                    j->r.q[i] = v[k] | 0x0008000000000000ULL;
                    break;
                }
        } else {
            uint32_t v[3] = {j->a.d[i], j->b.d[i], j->c.d[i]};
            for (int k = 0; k < 3; k++)
                if (nan32(v[k])) {
                    j->r.d[i] = v[k] | 0x00400000u;
                    break;
                }
        }
    }
}

void fma_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    int kind = op & 0xf, form = op >> 4;          /* form 9: 132, A: 213, B: 231 */
    int scalar = kind >= 8 && (kind & 1);
    int dbl = in->vex_w, esize = dbl ? 8 : 4;
    int len = scalar ? 16 : vex_len(in);
    ymm_t s1, s2, s3;
    ymm_get(cpu, in->reg, &s1);
    ymm_get(cpu, in->vex_v, &s2);
    vex_read_rm(cpu, in, &s3, scalar ? esize : len);

    struct fma_job job;
    const ymm_t *a = form == 9 ? &s1 : &s2;
    const ymm_t *b = form == 10 ? &s1 : &s3;
    const ymm_t *c = form == 9 ? &s2 : form == 10 ? &s3 : &s1;
    job.a = *a;
    job.b = *b;
    job.c = *c;
    job.n = scalar ? 1 : len / esize;
    job.dbl = dbl;
    switch (kind) {
    case 6: job.neg_product = 0; job.sub_c = 0x55; break;              /* fmaddsub: even elements subtract */
    case 7: job.neg_product = 0; job.sub_c = 0xaa; break;              /* fmsubadd: odd elements subtract */
    case 8: case 9: job.neg_product = 0; job.sub_c = 0; break;         /* fmadd */
    case 10: case 11: job.neg_product = 0; job.sub_c = 0xff; break;    /* fmsub */
    case 12: case 13: job.neg_product = 1; job.sub_c = 0; break;       /* fnmadd */
    default: job.neg_product = 1; job.sub_c = 0xff; break;             /* fnmsub */
    }
    uint32_t flags = mxcsr_run(cpu, fma_job_run, &job);
    fix_nans(&job);
    mxcsr_signal(cpu, flags);
    if (scalar) {
        ymm_t r = s1;
        memcpy(r.b, job.r.b, esize);
        ymm_put(cpu, in->reg, &r, 16);
    } else {
        ymm_put(cpu, in->reg, &job.r, len);
    }
}
