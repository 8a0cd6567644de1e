/* Exceptions and interrupts: raising them from inside an instruction (unwinding to
 * interp_run with longjmp), the double/triple fault rules, delivery through the real-mode
 * IVT, 32-bit protected-mode gates and 64-bit long-mode gates (with TSS stack switch and IST),
 * and IRET. */
#include <setjmp.h>
#include "interp.h"

/* Long-mode TSS field offsets. */
#define TSS64_RSP0 4
#define TSS64_IST1 36
/* 32-bit TSS field offsets. */
#define TSS32_ESP0 4
#define TSS32_SS0 8

void raise_exc(struct interp_cpu *cpu, int vector, int has_err, uint32_t err)
{
    struct interp_priv_storage *p = P(cpu);
    p->exc_vector = vector;
    p->exc_has_err = has_err;
    p->exc_err = err;
    longjmp(p->jb, 1);
}

void raise_stop(struct interp_cpu *cpu, int reason)
{
    P(cpu)->exc_vector = -1 - reason;
    longjmp(P(cpu)->jb, 1);
}

void raise_unimplemented(struct interp_cpu *cpu)
{
    if (P(cpu)->run_flags & INTERP_RUN_STOP_ON_UNIMPL)
        raise_stop(cpu, INTERP_STOP_UNIMPLEMENTED);
    RAISE_UD(cpu);
}

static int is_contributory(int v)
{
    return v == EXC_DE || v == EXC_TS || v == EXC_NP || v == EXC_SS || v == EXC_GP;
}

/* Does `second`, raised while delivering `first`, become a double fault? */
static int becomes_double_fault(int first, int second)
{
    if (is_contributory(first))
        return is_contributory(second);
    if (first == EXC_PF)
        return second == EXC_PF || is_contributory(second);
    return 0;
}

/* Called in interp_run after a longjmp: the instruction is abandoned and the raised
 * exception is delivered (or the run stops). */
void handle_raised(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    int vector = p->exc_vector, has_err = p->exc_has_err;
    uint32_t err = p->exc_err;

    cpu->rip = p->insn_rip;
    if (vector < 0) {
        p->stop = -1 - vector;
        p->delivering = 0;
        return;
    }
    /* A delivered fault costs the run one unit of its budget, as an instruction does: a
     * handler whose first instruction faults again (with an IST stack, forever) would
     * otherwise keep interp_run from ever returning, and the VMM from ever seeing time pass. */
    if (p->insn_limit > cpu->insn_count)
        p->insn_limit--;
    p->attention = 1;
    if (p->delivering) {
        int first = p->delivering - 1;
        p->delivering = 0;
        if (first == EXC_DF) {
            cpu->shutdown_vector = vector;
            p->stop = INTERP_STOP_SHUTDOWN;
            return;
        }
        if (becomes_double_fault(first, vector)) {
            vector = EXC_DF;
            has_err = 1;
            err = 0;
        }
    }
    deliver_event(cpu, vector, EV_FAULT, has_err, err);
}

static void deliver_real(struct interp_cpu *cpu, int vector)
{
    if ((uint64_t)vector * 4 + 3 > cpu->idt.limit)
        RAISE_GP0(cpu);
    uint64_t ent = lin_read(cpu, cpu->idt.base + vector * 4, 4, ACC_SYS);
    uint64_t fl = read_rflags(cpu);
    uint64_t sp = cpu->gpr[INTERP_RSP];
    mem_write(cpu, INTERP_SS, (sp - 2) & stack_mask(cpu), 2, fl);
    mem_write(cpu, INTERP_SS, (sp - 4) & stack_mask(cpu), 2, cpu->seg[INTERP_CS].selector);
    mem_write(cpu, INTERP_SS, (sp - 6) & stack_mask(cpu), 2, cpu->rip);
    reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, (sp - 6) & stack_mask(cpu));
    cpu->rflags &= ~(FL_IF | FL_TF | FL_AC | FL_RF);
    seg_load_real(cpu, INTERP_CS, ent >> 16);
    cpu->rip = ent & 0xffff;
}

/* Read a TSS field (the TSS is addressed through TR, with its limit checked). */
static uint64_t tss_read(struct interp_cpu *cpu, uint32_t off, int size, uint32_t err)
{
    struct interp_segment *tr = &cpu->seg[INTERP_TR];
    if (tr->unusable || !tr->present || off + size - 1 > tr->limit)
        raise_exc(cpu, EXC_TS, 1, err);
    return lin_read(cpu, tr->base + off, size, ACC_SYS);
}

/* Check the gate's target code segment; returns the new CPL and its descriptor. */
static int gate_target(struct interp_cpu *cpu, uint16_t sel, int ext, int need_64, uint64_t *lo, uint64_t *hi)
{
    struct interp_segment d;
    if ((sel & ~3) == 0)
        raise_exc(cpu, EXC_GP, 1, ext);
    if (desc_read(cpu, sel, lo, hi))
        raise_exc(cpu, EXC_GP, 1, (sel & ~3u) | ext);
    desc_to_seg(sel, *lo, *hi, &d);
    if (!d.s || !(d.type & 8) || d.dpl > P(cpu)->cpl || (need_64 && (!d.l || d.db)))
        raise_exc(cpu, EXC_GP, 1, (sel & ~3u) | ext);
    if (!d.present)
        raise_exc(cpu, EXC_NP, 1, (sel & ~3u) | ext);
    return (d.type & 4) ? P(cpu)->cpl : d.dpl;
}

/* RFLAGS as pushed in an exception frame: RF is set for every fault-class exception (not for
 * #DB, whose fault form is the instruction breakpoint, nor the aborts #DF and #MC), so that
 * IRET back to the faulting instruction does not hit an instruction breakpoint again (SDM
 * vol. 3, "Instruction-Breakpoint Exception Condition"). */
static uint64_t frame_rflags(struct interp_cpu *cpu, int vector, int kind)
{
    uint64_t fl = read_rflags(cpu);
    if (kind == EV_FAULT && vector != EXC_DB && vector != EXC_DF && vector != EXC_MC && vector != EXC_NMI)
        fl |= FL_RF;
    return fl;
}

/* Make sure the whole exception frame can be written before any of it is. */
static void check_frame_writable(struct interp_cpu *cpu, uint64_t first, uint64_t last, int acc)
{
    uint8_t *h;
    translate(cpu, first, acc | ACC_W, &h);
    translate(cpu, last, acc | ACC_W, &h);
}

static void clear_flags_on_entry(struct interp_cpu *cpu, int interrupt_gate)
{
    cpu->rflags &= ~(FL_TF | FL_NT | FL_RF | FL_VM);
    if (interrupt_gate)
        cpu->rflags &= ~FL_IF;
}

static void deliver_long(struct interp_cpu *cpu, int vector, int kind, int has_err, uint32_t err)
{
    int ext = kind == EV_EXTINT || kind == EV_NMI;
    uint32_t idt_err = vector * 8 + 2 + ext;
    if ((uint64_t)vector * 16 + 15 > cpu->idt.limit)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    uint64_t glo = lin_read(cpu, cpu->idt.base + vector * 16, 8, ACC_SYS);
    uint64_t ghi = lin_read(cpu, cpu->idt.base + vector * 16 + 8, 8, ACC_SYS);
    int type = (glo >> 40) & 0xf, gdpl = (glo >> 45) & 3;
    if (type != 0xe && type != 0xf)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    if (kind == EV_SOFTINT && gdpl < P(cpu)->cpl)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    if (!((glo >> 47) & 1))
        raise_exc(cpu, EXC_NP, 1, idt_err);
    uint16_t sel = (glo >> 16) & 0xffff;
    uint64_t target = (glo & 0xffff) | (((glo >> 48) & 0xffff) << 16) | ((ghi & 0xffffffffULL) << 32);
    int ist = (glo >> 32) & 7;

    uint64_t clo, chi;
    int cpl = P(cpu)->cpl;
    int new_cpl = gate_target(cpu, sel, ext, 1, &clo, &chi);
    uint64_t rsp = cpu->gpr[INTERP_RSP];
    if (ist)
        rsp = tss_read(cpu, TSS64_IST1 + (ist - 1) * 8, 8, cpu->seg[INTERP_TR].selector & ~3u);
    else if (new_cpl < cpl)
        rsp = tss_read(cpu, TSS64_RSP0 + new_cpl * 8, 8, cpu->seg[INTERP_TR].selector & ~3u);
    rsp &= ~0xfULL;

    uint64_t frame[6];
    int n = 0;
    if (has_err)
        frame[n++] = err;
    frame[n++] = cpu->rip;
    frame[n++] = cpu->seg[INTERP_CS].selector;
    frame[n++] = frame_rflags(cpu, vector, kind);
    frame[n++] = cpu->gpr[INTERP_RSP];
    frame[n++] = cpu->seg[INTERP_SS].selector;
    uint64_t new_rsp = rsp - 8 * n;
    if ((uint64_t)((int64_t)(new_rsp << 16) >> 16) != new_rsp)
        raise_exc(cpu, EXC_SS, 1, 0);
    /* Frame pushes are supervisor accesses when the handler runs at CPL < 3 (new CPL <= CPL,
     * so a CPL-3 handler means we already are at CPL 3). */
    int acc = new_cpl < 3 ? ACC_SYS : 0;
    check_frame_writable(cpu, new_rsp, new_rsp + 8 * n - 1, acc);
    for (int i = 0; i < n; i++)
        lin_write(cpu, new_rsp + 8 * i, 8, frame[i], acc);

    if (new_cpl != cpl) {
        struct interp_segment *ss = &cpu->seg[INTERP_SS];
        memset(ss, 0, sizeof(*ss));
        ss->selector = new_cpl;
        ss->dpl = new_cpl;
        ss->unusable = 1;
    }
    load_cs_checked(cpu, sel, new_cpl, clo, chi);
    cpu->gpr[INTERP_RSP] = new_rsp;
    cpu->rip = target;
    clear_flags_on_entry(cpu, type == 0xe);
}

static void deliver_protected(struct interp_cpu *cpu, int vector, int kind, int has_err, uint32_t err)
{
    int ext = kind == EV_EXTINT || kind == EV_NMI;
    uint32_t idt_err = vector * 8 + 2 + ext;
    if ((uint64_t)vector * 8 + 7 > cpu->idt.limit)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    uint64_t glo = lin_read(cpu, cpu->idt.base + vector * 8, 8, ACC_SYS);
    int type = (glo >> 40) & 0xf, gdpl = (glo >> 45) & 3;
    if (type == 0x5)
        raise_unimplemented(cpu);                /* task gates */
    if (type != 0x6 && type != 0x7 && type != 0xe && type != 0xf)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    if (kind == EV_SOFTINT && gdpl < P(cpu)->cpl)
        raise_exc(cpu, EXC_GP, 1, idt_err);
    if (!((glo >> 47) & 1))
        raise_exc(cpu, EXC_NP, 1, idt_err);
    if (cpu->rflags & FL_VM)
        raise_unimplemented(cpu);                /* virtual-8086 mode */
    int gsize = (type & 8) ? 4 : 2;
    uint16_t sel = (glo >> 16) & 0xffff;
    uint64_t target = (glo & 0xffff) | (gsize == 4 ? ((glo >> 48) & 0xffff) << 16 : 0);

    uint64_t clo, chi;
    int cpl = P(cpu)->cpl;
    int new_cpl = gate_target(cpu, sel, ext, 0, &clo, &chi);
    struct interp_segment new_ss = cpu->seg[INTERP_SS];
    uint64_t sp = cpu->gpr[INTERP_RSP];
    uint64_t frame[6];
    int n = 0;
    if (has_err)
        frame[n++] = err;
    frame[n++] = cpu->rip;
    frame[n++] = cpu->seg[INTERP_CS].selector;
    frame[n++] = frame_rflags(cpu, vector, kind);
    if (new_cpl < cpl) {
        uint32_t tss_err = cpu->seg[INTERP_TR].selector & ~3u;
        sp = tss_read(cpu, TSS32_ESP0 + new_cpl * 8, 4, tss_err);
        uint16_t ss_sel = tss_read(cpu, TSS32_SS0 + new_cpl * 8, 2, tss_err);
        uint64_t slo, shi;
        if ((ss_sel & ~3) == 0 || desc_read(cpu, ss_sel, &slo, &shi))
            raise_exc(cpu, EXC_TS, 1, ss_sel & ~3u);
        desc_to_seg(ss_sel, slo, shi, &new_ss);
        if ((ss_sel & 3) != new_cpl || new_ss.dpl != new_cpl || !new_ss.s || (new_ss.type & 8) ||
            !(new_ss.type & 2))
            raise_exc(cpu, EXC_TS, 1, ss_sel & ~3u);
        if (!new_ss.present)
            raise_exc(cpu, EXC_SS, 1, ss_sel & ~3u);
        frame[n++] = cpu->gpr[INTERP_RSP] & 0xffffffffULL;
        frame[n++] = cpu->seg[INTERP_SS].selector;
    }
    uint64_t mask = new_ss.db ? 0xffffffffULL : 0xffffULL;
    uint64_t new_sp = (sp - gsize * n) & mask;
    int acc = new_cpl < 3 ? ACC_SYS : 0;
    check_frame_writable(cpu, (new_ss.base + new_sp) & 0xffffffffULL,
                         (new_ss.base + new_sp + gsize * n - 1) & 0xffffffffULL, acc);
    for (int i = 0; i < n; i++)
        lin_write(cpu, (new_ss.base + ((new_sp + gsize * i) & mask)) & 0xffffffffULL, gsize, frame[i], acc);

    if (new_cpl != cpl) {
        uint64_t slo, shi;
        desc_read(cpu, new_ss.selector, &slo, &shi);
        seg_set_accessed(cpu, new_ss.selector, slo);
        new_ss.type |= 1;
        cpu->seg[INTERP_SS] = new_ss;
    }
    load_cs_checked(cpu, sel, new_cpl, clo, chi);
    reg_set(cpu, INTERP_RSP, new_ss.db ? 4 : 2, 0, new_sp);
    cpu->rip = target;
    clear_flags_on_entry(cpu, !(type & 1));
}

/* Deliver an exception or interrupt.  For faults cpu->rip is the faulting instruction;
 * for software interrupts and external events it is where execution resumes. */
void deliver_event(struct interp_cpu *cpu, int vector, int kind, int has_err, uint32_t err)
{
    struct interp_priv_storage *p = P(cpu);
    p->delivering = vector + 1;
    flags_materialize(cpu);
    cpu->halted = 0;
    if (!is_protected(cpu))
        deliver_real(cpu, vector);
    else if (is_long_mode(cpu))
        deliver_long(cpu, vector, kind, has_err, err);
    else
        deliver_protected(cpu, vector, kind, has_err, err);
    p->delivering = 0;
    p->attention = 1;
}

/* IRET / IRETD / IRETQ. */
void do_iret(struct interp_cpu *cpu, int opsize)
{
    struct interp_priv_storage *p = P(cpu);
    uint64_t smask = stack_mask(cpu);
    uint64_t sp = cpu->gpr[INTERP_RSP] & smask;
    uint64_t new_ip = mem_read(cpu, INTERP_SS, sp, opsize);
    uint16_t sel = mem_read(cpu, INTERP_SS, (sp + opsize) & smask, opsize);
    uint64_t fl = mem_read(cpu, INTERP_SS, (sp + 2 * opsize) & smask, opsize);
    uint64_t fl_mask = size_mask(opsize);

    if (!is_protected(cpu)) {
        seg_load_real(cpu, INTERP_CS, sel);
        cpu->rip = new_ip & fl_mask;
        reg_set(cpu, INTERP_RSP, p->stack_size, 0, sp + 3 * opsize);
        sys_write_rflags(cpu, fl, fl_mask);
        return;
    }
    if (cpu->rflags & FL_NT) {
        if (is_long_mode(cpu))
            RAISE_GP0(cpu);
        raise_unimplemented(cpu);                /* task return */
    }
    if (cpu->rflags & FL_VM)
        raise_unimplemented(cpu);
    if (!is_long_mode(cpu) && (fl & FL_VM) && p->cpl == 0 && opsize == 4)
        raise_unimplemented(cpu);                /* return to virtual-8086 mode */

    int cpl = p->cpl, rpl = sel & 3;
    uint64_t lo, hi;
    struct interp_segment d;
    return_code_descriptor(cpu, sel, cpl, &lo, &hi, &d);
    int pop_stack = p->code64 || rpl != cpl;
    uint64_t new_sp = 0;
    uint16_t new_ss = 0;
    if (pop_stack) {
        new_sp = mem_read(cpu, INTERP_SS, (sp + 3 * opsize) & smask, opsize);
        new_ss = mem_read(cpu, INTERP_SS, (sp + 4 * opsize) & smask, opsize);
    }
    int old_code64 = p->code64;
    sys_write_rflags(cpu, fl, fl_mask);
    load_cs_checked(cpu, sel, rpl, lo, hi);
    if (pop_stack) {
        seg_load(cpu, INTERP_SS, new_ss);
        if (opsize == 8)
            cpu->gpr[INTERP_RSP] = new_sp;
        else
            reg_set(cpu, INTERP_RSP, cpu->seg[INTERP_SS].db || old_code64 ? 4 : 2, 0, new_sp);
    } else {
        reg_set(cpu, INTERP_RSP, p->stack_size, 0, sp + 3 * opsize);
    }
    cpu->rip = p->code64 ? new_ip : new_ip & (p->def_size == 4 ? 0xffffffffULL : 0xffffULL);
    if (rpl > cpl)
        null_inaccessible_segments(cpu);
}
