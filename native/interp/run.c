/* The run loop: instruction budget, periodic checks (stop requests, interrupt injection,
 * HLT, CPL 3), and the setjmp landing point that turns raised exceptions into deliveries. */
#include "interp.h"

/* Instructions executed between two polls of stop_request / pending interrupts. */
#define POLL_INTERVAL 1024

#define RESET_CR0 0x60000010ULL
#define RESET_DR6 0xffff0ff0ULL
#define RESET_DR7 0x400ULL
#define RESET_PAT 0x0007040600070406ULL
#define RESET_APIC_BASE 0xfee00900ULL       /* enabled, bootstrap processor */
#define RESET_FCW 0x37f
#define RESET_MXCSR 0x1f80
#define RESET_MXCSR_MASK 0xffff

void interp_reset(struct interp_cpu *cpu)
{
    memset(cpu->gpr, 0, sizeof(cpu->gpr));
    cpu->rip = 0xfff0;
    cpu->rflags = FL_FIXED1;
    for (int i = 0; i < 8; i++) {
        struct interp_segment *s = &cpu->seg[i];
        memset(s, 0, sizeof(*s));
        s->limit = 0xffff;
        s->present = 1;
        s->s = i < INTERP_LDTR;
        s->type = i == INTERP_CS ? 0xb : i == INTERP_LDTR ? 0x2 : i == INTERP_TR ? 0xb : 0x3;
    }
    cpu->seg[INTERP_CS].selector = 0xf000;
    cpu->seg[INTERP_CS].base = 0xffff0000ULL;
    memset(&cpu->gdt, 0, sizeof(cpu->gdt));
    memset(&cpu->idt, 0, sizeof(cpu->idt));
    cpu->gdt.limit = cpu->idt.limit = 0xffff;
    cpu->cr0 = RESET_CR0;
    cpu->cr2 = cpu->cr3 = cpu->cr4 = cpu->cr8 = 0;
    cpu->efer = 0;
    cpu->xcr0 = 1;
    memset(cpu->dr, 0, sizeof(cpu->dr));
    cpu->dr[6] = RESET_DR6;
    cpu->dr[7] = RESET_DR7;
    memset(&cpu->msr, 0, sizeof(cpu->msr));
    cpu->msr.pat = RESET_PAT;
    cpu->msr.apic_base = RESET_APIC_BASE;
    memset(cpu->fxsave, 0, sizeof(cpu->fxsave));
    memset(cpu->ymmh, 0, sizeof(cpu->ymmh));
    uint16_t fcw = RESET_FCW;
    uint32_t mxcsr = RESET_MXCSR, mask = RESET_MXCSR_MASK;
    memcpy(cpu->fxsave, &fcw, 2);
    memcpy(cpu->fxsave + FX_MXCSR, &mxcsr, 4);
    memcpy(cpu->fxsave + FX_MXCSR + 4, &mask, 4);
    cpu->halted = cpu->int_shadow = cpu->irq_pending = cpu->nmi_pending = 0;
    cpu->stop_request = 0;
    cpu->callback_error = 0;
    memset(&cpu->priv, 0, sizeof(cpu->priv));
    tlb_flush(cpu);
}

/* Re-derive the cached state from the architectural registers (they may have been changed
 * from Python since the last run).  CPL follows KVM's convention: SS.DPL. */
static void sync_state(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    p->cpl = !is_protected(cpu) ? 0 : (cpu->rflags & FL_VM) ? 3 : cpu->seg[INTERP_SS].dpl;
    p->lf_op = LF_NONE;
    tlb_flush(cpu);
    mode_update(cpu);
}

/* Events checked between instructions.  Returns 1 when the run must stop. */
static int check_attention(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    p->attention = 0;
    if (__atomic_load_n(&cpu->stop_request, __ATOMIC_RELAXED)) {
        cpu->stop_request = 0;
        p->stop = INTERP_STOP_REQUEST;
        return 1;
    }
    if (cpu->watch_hit >= 0) {
        p->stop = INTERP_STOP_WATCHPOINT;
        return 1;
    }
    int events_allowed = !(p->run_flags & INTERP_RUN_NO_IRQ);
    if (cpu->int_shadow) {
        cpu->int_shadow = 0;
        p->attention = 1;                        /* look again after one more instruction */
    } else if (!events_allowed) {
        /* a debugger's single step: pending events wait for the next ordinary run */
    } else if (cpu->nmi_pending) {
        cpu->nmi_pending = 0;
        p->insn_rip = cpu->rip;
        deliver_event(cpu, EXC_NMI, EV_NMI, 0, 0);
    } else if (cpu->irq_pending && (cpu->rflags & FL_IF)) {
        cpu->irq_pending = 0;                    /* ack_irq sets it again if more are waiting */
        int vector = interp_ack_irq(cpu->ctx);
        if (cpu->callback_error) {
            p->stop = INTERP_STOP_IO_ERROR;
            return 1;
        }
        if (vector >= 0 && vector < 256) {
            p->insn_rip = cpu->rip;
            deliver_event(cpu, vector, EV_EXTINT, 0, 0);
        }
    }
    if (cpu->halted) {
        p->stop = INTERP_STOP_HLT;
        return 1;
    }
    if ((p->run_flags & INTERP_RUN_STOP_ON_CPL3) && p->cpl == 3) {
        p->stop = INTERP_STOP_CPL3;
        return 1;
    }
    return 0;
}

static void run_loop(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    for (;;) {
        if (p->stop >= 0)
            return;
        if (p->attention && check_attention(cpu))
            return;
        if (cpu->insn_count >= p->insn_limit) {
            p->stop = INTERP_STOP_BUDGET;
            return;
        }
        uint64_t chunk_end = cpu->insn_count + POLL_INTERVAL;
        if (chunk_end > p->insn_limit)
            chunk_end = p->insn_limit;
        if (p->run_flags & INTERP_RUN_BREAKPOINTS)
            exec_chunk_breakpoints(cpu, chunk_end);
        else
            exec_chunk(cpu, chunk_end);
        if (cpu->insn_count >= chunk_end)
            p->attention = 1;
    }
}

int interp_run(struct interp_cpu *cpu, uint64_t max_insns, int flags)
{
    struct interp_priv_storage *p = P(cpu);
    p->run_flags = flags;
    p->stop = -1;
    p->delivering = 0;
    cpu->callback_error = 0;
    cpu->watch_hit = -1;
    sync_state(cpu);
    p->insn_limit = cpu->insn_count + max_insns;
    p->attention = 1;
    if (setjmp(p->jb))
        handle_raised(cpu);                      /* may longjmp here again (nested faults) */
    run_loop(cpu);
    flags_materialize(cpu);
    cpu->rflags |= FL_FIXED1;
    return p->stop;
}

/* Used by interp_mnemonic: the cached state must be valid outside interp_run too. */
void interp_sync(struct interp_cpu *cpu)
{
    sync_state(cpu);
}
