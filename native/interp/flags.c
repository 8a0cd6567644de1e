/* Lazy arithmetic flags.
 *
 * Flag-setting ALU operations record (op, result, operands, width) instead of computing
 * RFLAGS; each flag is derived only when something reads it (jcc, setcc, pushf, ...).
 * LF_NONE means RFLAGS itself holds the arithmetic flags. */
#include "interp.h"

uint64_t flags_get_af(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    switch (p->lf_op) {
    case LF_NONE: return (cpu->rflags >> 4) & 1;
    case LF_LOGIC: return 0;
    default: return ((p->lf_a ^ p->lf_b ^ p->lf_res) >> 4) & 1;
    }
}

/* Write the lazily held flags into RFLAGS and forget the recorded operation. */
void flags_materialize(struct interp_cpu *cpu)
{
    if (P(cpu)->lf_op == LF_NONE)
        return;
    uint64_t f = 0;
    if (flags_get_cf(cpu)) f |= FL_CF;
    if (flags_get_pf(cpu)) f |= FL_PF;
    if (flags_get_af(cpu)) f |= FL_AF;
    if (flags_get_zf(cpu)) f |= FL_ZF;
    if (flags_get_sf(cpu)) f |= FL_SF;
    if (flags_get_of(cpu)) f |= FL_OF;
    cpu->rflags = (cpu->rflags & ~FL_ARITH) | f;
    P(cpu)->lf_op = LF_NONE;
}

uint64_t read_rflags(struct interp_cpu *cpu)
{
    flags_materialize(cpu);
    return cpu->rflags | FL_FIXED1;
}

/* Condition code cc (the low nibble of jcc/setcc/cmovcc). */
int cond_true(struct interp_cpu *cpu, int cc)
{
    int r;
    switch (cc >> 1) {
    case 0: r = flags_get_of(cpu); break;                                   /* O */
    case 1: r = flags_get_cf(cpu); break;                                   /* B */
    case 2: r = flags_get_zf(cpu); break;                                   /* Z */
    case 3: r = flags_get_cf(cpu) || flags_get_zf(cpu); break;              /* BE */
    case 4: r = flags_get_sf(cpu); break;                                   /* S */
    case 5: r = flags_get_pf(cpu); break;                                   /* P */
    case 6: r = flags_get_sf(cpu) != flags_get_of(cpu); break;              /* L */
    default: r = flags_get_zf(cpu) || flags_get_sf(cpu) != flags_get_of(cpu); break; /* LE */
    }
    return r ^ (cc & 1);
}
