/* Segmentation: logical-to-linear translation with the checks each mode makes, segment
 * descriptor loads, the stack, and far control transfers (jmp/call/ret) through code
 * descriptors, which is also how real -> protected -> long mode switches take effect. */
#include "interp.h"

static int is_canonical(uint64_t la)
{
    return (uint64_t)((int64_t)(la << 16) >> 16) == la;
}

static NORETURN void seg_fault(struct interp_cpu *cpu, int seg, uint32_t err)
{
    raise_exc(cpu, seg == INTERP_SS ? EXC_SS : EXC_GP, 1, err);
}

/* Recompute the cached execution mode after CS, SS, CR0 or EFER changed. */
void mode_update(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    p->code64 = is_long_mode(cpu) && cpu->seg[INTERP_CS].l;
    p->def_size = p->code64 ? 4 : cpu->seg[INTERP_CS].db ? 4 : 2;
    p->stack_size = p->code64 ? 8 : cpu->seg[INTERP_SS].db ? 4 : 2;
    p->fetch_vpn = TLB_INVALID;      /* the fetch fast path depends on CPL and CS */
    p->attention = 1;
}

uint64_t seg_linear(struct interp_cpu *cpu, int seg, uint64_t off, int size, int acc)
{
    if (likely(P(cpu)->code64)) {
        uint64_t la = off + ((seg == INTERP_FS || seg == INTERP_GS) ? cpu->seg[seg].base : 0);
        if (unlikely(!is_canonical(la)))
            seg_fault(cpu, seg, 0);
        return la;
    }
    struct interp_segment *s = &cpu->seg[seg];
    if (is_protected(cpu) && !(cpu->rflags & FL_VM)) {
        if (s->unusable || !s->present)
            seg_fault(cpu, seg, 0);
        int code = s->type & 8;
        if ((acc & ACC_W) && (code || !(s->type & 2)))
            seg_fault(cpu, seg, 0);
        if ((acc & ACC_R) && code && !(s->type & 2))
            seg_fault(cpu, seg, 0);
        if (!code && (s->type & 4)) {            /* expand-down data segment */
            uint64_t top = s->db ? 0xffffffffULL : 0xffffULL;
            if (off <= s->limit || off + size - 1 > top)
                seg_fault(cpu, seg, 0);
            return (s->base + off) & 0xffffffffULL;
        }
    }
    if (off + size - 1 > s->limit)
        seg_fault(cpu, seg, 0);
    return (s->base + off) & 0xffffffffULL;
}

uint64_t mem_read(struct interp_cpu *cpu, int seg, uint64_t off, int size)
{
    return lin_read(cpu, seg_linear(cpu, seg, off, size, ACC_R), size, 0);
}

void mem_write(struct interp_cpu *cpu, int seg, uint64_t off, int size, uint64_t val)
{
    lin_write(cpu, seg_linear(cpu, seg, off, size, ACC_W), size, val, 0);
}

void mem_read_buf(struct interp_cpu *cpu, int seg, uint64_t off, void *buf, int len)
{
    lin_read_buf(cpu, seg_linear(cpu, seg, off, len, ACC_R), buf, len, 0);
}

void mem_write_buf(struct interp_cpu *cpu, int seg, uint64_t off, const void *buf, int len)
{
    lin_write_buf(cpu, seg_linear(cpu, seg, off, len, ACC_W), buf, len, 0);
}

/* ---- the stack ---- */

void push(struct interp_cpu *cpu, uint64_t val, int size)
{
    uint64_t sp = (cpu->gpr[INTERP_RSP] - size) & stack_mask(cpu);
    mem_write(cpu, INTERP_SS, sp, size, val);
    reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, sp);
}

uint64_t pop(struct interp_cpu *cpu, int size)
{
    uint64_t sp = cpu->gpr[INTERP_RSP] & stack_mask(cpu);
    uint64_t v = mem_read(cpu, INTERP_SS, sp, size);
    reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, sp + size);
    return v;
}

/* Push two values (first `a`, then `b`) committing RSP only when both writes succeeded. */
static void push2(struct interp_cpu *cpu, uint64_t a, uint64_t b, int size)
{
    uint64_t sp = cpu->gpr[INTERP_RSP];
    mem_write(cpu, INTERP_SS, (sp - size) & stack_mask(cpu), size, a);
    mem_write(cpu, INTERP_SS, (sp - 2 * size) & stack_mask(cpu), size, b);
    reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, (sp - 2 * size) & stack_mask(cpu));
}

/* ---- descriptors ---- */

/* Read the 8-byte descriptor for `sel` (and the next 8 bytes, for 16-byte system descriptors).
 * Returns -1 if the selector is outside its table's limit. */
int desc_read(struct interp_cpu *cpu, uint16_t sel, uint64_t *lo, uint64_t *hi)
{
    uint64_t base, limit;
    if (sel & 4) {
        if (cpu->seg[INTERP_LDTR].unusable || !cpu->seg[INTERP_LDTR].present)
            return -1;
        base = cpu->seg[INTERP_LDTR].base;
        limit = cpu->seg[INTERP_LDTR].limit;
    } else {
        base = cpu->gdt.base;
        limit = cpu->gdt.limit;
    }
    uint64_t idx = sel & ~7u;
    if (idx + 7 > limit)
        return -1;
    *lo = lin_read(cpu, base + idx, 8, ACC_SYS);
    if (hi)
        *hi = (idx + 15 <= limit) ? lin_read(cpu, base + idx + 8, 8, ACC_SYS) : 0;
    return 0;
}

void desc_to_seg(uint16_t sel, uint64_t lo, uint64_t hi, struct interp_segment *s)
{
    s->selector = sel;
    s->base = ((lo >> 16) & 0xffffff) | (((lo >> 56) & 0xff) << 24);
    uint32_t limit = (lo & 0xffff) | (((lo >> 48) & 0xf) << 16);
    s->type = (lo >> 40) & 0xf;
    s->s = (lo >> 44) & 1;
    s->dpl = (lo >> 45) & 3;
    s->present = (lo >> 47) & 1;
    s->avl = (lo >> 52) & 1;
    s->l = (lo >> 53) & 1;
    s->db = (lo >> 54) & 1;
    s->g = (lo >> 55) & 1;
    s->limit = s->g ? (limit << 12) | 0xfff : limit;
    s->unusable = 0;
    s->padding = 0;
    if (!s->s)                                   /* 16-byte system descriptor in long mode */
        s->base |= (hi & 0xffffffffULL) << 32;
}

/* The code descriptor an iret or far ret returns to, after the checks both make: a non-null
 * selector whose RPL is not below the CPL, a present code segment whose DPL fits the RPL
 * (equal for non-conforming code, not above it for conforming). Faults as the SDM says. */
void return_code_descriptor(struct interp_cpu *cpu, uint16_t sel, int cpl, uint64_t *lo, uint64_t *hi,
                            struct interp_segment *d)
{
    int rpl = sel & 3;
    if ((sel & ~3) == 0)
        RAISE_GP0(cpu);
    if (rpl < cpl || desc_read(cpu, sel, lo, hi))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    desc_to_seg(sel, *lo, *hi, d);
    if (!d->s || !(d->type & 8) || ((d->type & 4) ? d->dpl > rpl : d->dpl != rpl))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    if (!d->present)
        raise_exc(cpu, EXC_NP, 1, sel & ~3u);
}

/* Set the accessed bit of a code/data descriptor in the table. */
void seg_set_accessed(struct interp_cpu *cpu, uint16_t sel, uint64_t lo)
{
    if (lo & (1ULL << 40))
        return;
    uint64_t base = (sel & 4) ? cpu->seg[INTERP_LDTR].base : cpu->gdt.base;
    lin_write(cpu, base + (sel & ~7u) + 5, 1, ((lo >> 40) & 0xff) | 1, ACC_SYS);
}

void seg_load_real(struct interp_cpu *cpu, int seg, uint16_t sel)
{
    struct interp_segment *s = &cpu->seg[seg];
    s->selector = sel;
    s->base = (uint64_t)sel << 4;
    s->present = 1;
    s->unusable = 0;
    s->s = 1;
    if (seg == INTERP_CS) {
        s->type = 0xb;
        s->l = 0;
        s->dpl = 0;
        mode_update(cpu);
    } else {
        s->type = 3;
        if (seg == INTERP_SS)
            mode_update(cpu);
    }
}

/* mov/pop to a data segment register or SS. */
void seg_load(struct interp_cpu *cpu, int seg, uint16_t sel)
{
    if (!is_protected(cpu) || (cpu->rflags & FL_VM)) {
        seg_load_real(cpu, seg, sel);
        return;
    }
    int cpl = P(cpu)->cpl, rpl = sel & 3;
    struct interp_segment *s = &cpu->seg[seg];
    if ((sel & ~3) == 0) {
        if (seg == INTERP_SS && !(P(cpu)->code64 && cpl != 3 && rpl == cpl))
            RAISE_GP0(cpu);
        memset(s, 0, sizeof(*s));
        s->selector = sel;
        s->unusable = 1;
        if (seg == INTERP_SS) {
            s->dpl = cpl;
            mode_update(cpu);
        }
        return;
    }
    uint64_t lo, hi;
    if (desc_read(cpu, sel, &lo, &hi))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    struct interp_segment d;
    desc_to_seg(sel, lo, hi, &d);
    if (seg == INTERP_SS) {
        if (rpl != cpl || !d.s || (d.type & 8) || !(d.type & 2) || d.dpl != cpl)
            raise_exc(cpu, EXC_GP, 1, sel & ~3u);
        if (!d.present)
            raise_exc(cpu, EXC_SS, 1, sel & ~3u);
    } else {
        int code = d.type & 8, conforming = code && (d.type & 4);
        if (!d.s || (code && !(d.type & 2)))
            raise_exc(cpu, EXC_GP, 1, sel & ~3u);
        if (!conforming && d.dpl < (cpl > rpl ? cpl : rpl))
            raise_exc(cpu, EXC_GP, 1, sel & ~3u);
        if (!d.present)
            raise_exc(cpu, EXC_NP, 1, sel & ~3u);
    }
    seg_set_accessed(cpu, sel, lo);
    d.type |= 1;
    if (P(cpu)->code64 && (seg == INTERP_FS || seg == INTERP_GS))
        d.base &= 0xffffffffULL;
    *s = d;
    if (seg == INTERP_SS)
        mode_update(cpu);
}

/* Load CS from a checked code descriptor and make `target_cpl` the CPL. */
void load_cs_checked(struct interp_cpu *cpu, uint16_t sel, int target_cpl, uint64_t lo, uint64_t hi)
{
    struct interp_segment d;
    desc_to_seg((sel & ~3) | target_cpl, lo, hi, &d);
    seg_set_accessed(cpu, sel, lo);
    d.type |= 1;
    cpu->seg[INTERP_CS] = d;
    P(cpu)->cpl = target_cpl;
    mode_update(cpu);
}

/* Validate a code-segment selector for a same-privilege far jmp/call; returns its descriptor. */
static void check_code_target(struct interp_cpu *cpu, uint16_t sel, uint64_t *lo, uint64_t *hi)
{
    int cpl = P(cpu)->cpl;
    if ((sel & ~3) == 0)
        RAISE_GP0(cpu);
    if (desc_read(cpu, sel, lo, hi))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    struct interp_segment d;
    desc_to_seg(sel, *lo, *hi, &d);
    if (!d.s)
        raise_unimplemented(cpu);                /* call gates and task switches */
    if (!(d.type & 8))
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    if (d.type & 4) {
        if (d.dpl > cpl)
            raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    } else if ((sel & 3) > cpl || d.dpl != cpl) {
        raise_exc(cpu, EXC_GP, 1, sel & ~3u);
    }
    if (!d.present)
        raise_exc(cpu, EXC_NP, 1, sel & ~3u);
}

static uint64_t mask_to_code_size(struct interp_cpu *cpu, uint64_t off)
{
    if (P(cpu)->code64)
        return off;
    return off & (P(cpu)->def_size == 4 ? 0xffffffffULL : 0xffffULL);
}

/* Far jmp or call to sel:off.  ret_rip is the return address pushed by a call. */
void far_jump(struct interp_cpu *cpu, uint16_t sel, uint64_t off, int is_call, int opsize, uint64_t ret_rip)
{
    if (!is_protected(cpu) || (cpu->rflags & FL_VM)) {
        if (is_call)
            push2(cpu, cpu->seg[INTERP_CS].selector, ret_rip, opsize);
        seg_load_real(cpu, INTERP_CS, sel);
        cpu->rip = off & size_mask(opsize);
        return;
    }
    uint64_t lo, hi;
    check_code_target(cpu, sel, &lo, &hi);
    if (is_call)
        push2(cpu, cpu->seg[INTERP_CS].selector, ret_rip, opsize);
    load_cs_checked(cpu, sel, P(cpu)->cpl, lo, hi);
    cpu->rip = mask_to_code_size(cpu, off);
    if (!P(cpu)->code64 && cpu->rip > cpu->seg[INTERP_CS].limit)
        RAISE_GP0(cpu);
}

/* After a return to an outer privilege level, data segments the new CPL may not use become null. */
void null_inaccessible_segments(struct interp_cpu *cpu)
{
    static const int segs[] = {INTERP_ES, INTERP_DS, INTERP_FS, INTERP_GS};
    for (int i = 0; i < 4; i++) {
        struct interp_segment *s = &cpu->seg[segs[i]];
        int conforming_code = (s->type & 0xc) == 0xc;
        if (!s->unusable && !conforming_code && s->dpl < P(cpu)->cpl) {
            s->selector = 0;
            s->unusable = 1;
            s->present = 0;
        }
    }
}

/* retf [imm16]. */
void far_return(struct interp_cpu *cpu, int opsize, uint16_t pop_extra)
{
    uint64_t sp = cpu->gpr[INTERP_RSP] & stack_mask(cpu);
    uint64_t off = mem_read(cpu, INTERP_SS, sp, opsize);
    uint16_t sel = mem_read(cpu, INTERP_SS, (sp + opsize) & stack_mask(cpu), opsize);
    if (!is_protected(cpu) || (cpu->rflags & FL_VM)) {
        seg_load_real(cpu, INTERP_CS, sel);
        cpu->rip = off & size_mask(opsize);
        reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, sp + 2 * opsize + pop_extra);
        return;
    }
    int cpl = P(cpu)->cpl, rpl = sel & 3;
    uint64_t lo, hi;
    struct interp_segment d;
    return_code_descriptor(cpu, sel, cpl, &lo, &hi, &d);
    if (rpl == cpl) {
        load_cs_checked(cpu, sel, cpl, lo, hi);
        reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, sp + 2 * opsize + pop_extra);
        cpu->rip = mask_to_code_size(cpu, off);
        return;
    }
    uint64_t new_sp = mem_read(cpu, INTERP_SS, (sp + 2 * opsize + pop_extra) & stack_mask(cpu), opsize);
    uint16_t new_ss = mem_read(cpu, INTERP_SS, (sp + 3 * opsize + pop_extra) & stack_mask(cpu), opsize);
    load_cs_checked(cpu, sel, rpl, lo, hi);
    seg_load(cpu, INTERP_SS, new_ss);
    reg_set(cpu, INTERP_RSP, opsize, 0, new_sp + pop_extra);
    cpu->rip = mask_to_code_size(cpu, off);
    null_inaccessible_segments(cpu);
}
