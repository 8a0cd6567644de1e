/* Instruction fetch (slow path across pages, CS limits and MMIO) and ModRM/SIB decoding
 * into an effective address, plus operand access for r/m operands. */
#include "interp.h"

#define MAX_INSN_LEN 15

/* Fill the instruction window byte-wise when the fast path (whole window inside the cached
 * code page) does not apply.  A fault on a later page is deferred: it is raised only if the
 * decoder actually needs a byte from that page. */
void fetch_slow(struct interp_cpu *cpu, struct insn *in, uint64_t la)
{
    struct interp_priv_storage *p = P(cpu);
    int avail = MAX_INSN_LEN;
    p->fetch_fault_pending = 0;
    if (!p->code64) {
        uint64_t limit = cpu->seg[INTERP_CS].limit;
        if (cpu->rip > limit)
            RAISE_GP0(cpu);
        if (limit - cpu->rip + 1 < (uint64_t)avail)
            avail = (int)(limit - cpu->rip + 1);
    }
    uint8_t *h;
    uint64_t pa = translate(cpu, la, ACC_X, &h);
    int first = 4096 - (int)(la & 0xfff);
    if (first > avail)
        first = avail;
    if (h) {
        memcpy(p->fetch_buf, h, first);
        p->fetch_vpn = la >> 12;
        p->fetch_host = h - (la & 0xfff);
    } else {
        for (int i = 0; i < first; i++) {
            p->fetch_buf[i] = (uint8_t)interp_mmio_read(cpu->ctx, pa + i, 1);
            check_callback(cpu);
        }
    }
    if (first < avail) {
        uint64_t la2 = p->code64 ? la + first : (la + first) & 0xffffffffULL;
        uint32_t err;
        if (translate_try(cpu, la2, ACC_X, &h, &pa, &err)) {
            p->fetch_fault_pending = 1;
            p->fetch_fault_err = err;
            p->fetch_fault_cr2 = la2;
            avail = first;
        } else {
            for (int i = first; i < avail; i++) {
                if (h) {
                    p->fetch_buf[i] = h[i - first];
                } else {
                    p->fetch_buf[i] = (uint8_t)interp_mmio_read(cpu->ctx, pa + i - first, 1);
                    check_callback(cpu);
                }
            }
        }
    }
    in->start = in->p = p->fetch_buf;
    in->end = p->fetch_buf + avail;
}

/* The decoder needs a byte beyond the window: a deferred fetch fault, or #GP for an
 * instruction longer than 15 bytes or beyond the CS limit. */
void fetch_past_end(struct interp_cpu *cpu, struct insn *in)
{
    struct interp_priv_storage *p = P(cpu);
    if (in->start == p->fetch_buf && p->fetch_fault_pending) {
        cpu->cr2 = p->fetch_fault_cr2;
        raise_exc(cpu, EXC_PF, 1, p->fetch_fault_err);
    }
    RAISE_GP0(cpu);
}

static const uint8_t modrm16_base[8] = {INTERP_RBX, INTERP_RBX, INTERP_RBP, INTERP_RBP,
                                        INTERP_RSI, INTERP_RDI, INTERP_RBP, INTERP_RBX};
static const int8_t modrm16_index[8] = {INTERP_RSI, INTERP_RDI, INTERP_RSI, INTERP_RDI, -1, -1, -1, -1};

/* Memory (and the rare register) forms of a ModRM byte `m` already fetched; decode_modrm in
 * interp.h handles the register forms inline. */
void decode_modrm_mem(struct interp_cpu *cpu, struct insn *in, uint8_t m)
{
    int rexr = (in->rex & 4) << 1, rexx = (in->rex & 2) << 2, rexb = (in->rex & 1) << 3;
    int rm = m & 7;
    int defseg = INTERP_DS;
    uint64_t ea = 0;

    in->modrm = m;
    in->mod = m >> 6;
    in->reg = ((m >> 3) & 7) | rexr;
    in->rip_rel = 0;
    in->base_is_rsp = 0;
    in->rm = rm;
    if (in->addrsize == 2) {
        if (in->mod == 0 && rm == 6) {
            ea = fetch_n(cpu, in, 2);
        } else {
            ea = cpu->gpr[modrm16_base[rm]];
            if (rm == 4 || rm == 5)
                ea = cpu->gpr[rm == 4 ? INTERP_RSI : INTERP_RDI];
            else if (modrm16_index[rm] >= 0)
                ea += cpu->gpr[modrm16_index[rm]];
            if (rm == 2 || rm == 3 || rm == 6)
                defseg = INTERP_SS;
        }
        if (in->mod == 1)
            ea += (uint64_t)sext(fetch_n(cpu, in, 1), 1);
        else if (in->mod == 2)
            ea += fetch_n(cpu, in, 2);
        ea &= 0xffff;
    } else {
        if (rm == 4) {
            uint8_t sib = fetch8(cpu, in);
            int idx = ((sib >> 3) & 7) | rexx, base = (sib & 7) | rexb;
            if (idx != 4)
                ea = cpu->gpr[idx] << (sib >> 6);
            if ((base & 7) == 5 && in->mod == 0) {
                ea += (uint64_t)sext(fetch_n(cpu, in, 4), 4);
            } else {
                ea += cpu->gpr[base];
                if (base == INTERP_RSP || base == INTERP_RBP)
                    defseg = INTERP_SS;
                in->base_is_rsp = base == INTERP_RSP;
            }
        } else if (rm == 5 && in->mod == 0) {
            ea = (uint64_t)sext(fetch_n(cpu, in, 4), 4);
            if (P(cpu)->code64) {
                in->rip_rel = 1;
                ea += cpu->rip + (in->p - in->start);
            }
        } else {
            int base = rm | rexb;
            ea = cpu->gpr[base];
            if (base == INTERP_RBP)
                defseg = INTERP_SS;
        }
        if (in->mod == 1)
            ea += (uint64_t)sext(fetch_n(cpu, in, 1), 1);
        else if (in->mod == 2)
            ea += (uint64_t)sext(fetch_n(cpu, in, 4), 4);
        if (in->addrsize == 4)
            ea &= 0xffffffffULL;
    }
    in->ea = ea;
    in->easeg = in->seg >= 0 ? in->seg : defseg;
}

/* Effective address as the instruction finally sees it (RIP-relative and 32-bit wrap applied). */
static inline uint64_t final_ea(struct insn *in)
{
    return in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea;
}

uint64_t rm_read_mem(struct interp_cpu *cpu, struct insn *in, int size)
{
    return mem_read(cpu, in->easeg, final_ea(in), size);
}

void rm_write_mem(struct interp_cpu *cpu, struct insn *in, int size, uint64_t v)
{
    if (in->atomic_host) {
        /* Locked read-modify-write on RAM: commit only if memory still holds what we read. */
        uint64_t expected = in->atomic_old;
        int ok;
        switch (size) {
        case 1: { uint8_t e = expected; ok = __atomic_compare_exchange_n(in->atomic_host, &e, (uint8_t)v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
        case 2: { uint16_t e = expected; ok = __atomic_compare_exchange_n((uint16_t *)in->atomic_host, &e, (uint16_t)v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
        case 4: { uint32_t e = expected; ok = __atomic_compare_exchange_n((uint32_t *)in->atomic_host, &e, (uint32_t)v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break; }
        default: ok = __atomic_compare_exchange_n((uint64_t *)in->atomic_host, &expected, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); break;
        }
        if (!ok)
            in->retry = 1;
        return;
    }
    mem_write(cpu, in->easeg, final_ea(in), size, v);
}

/* Read an r/m operand that will be written back: the write permission is checked now, so the
 * later write cannot fault after flags were changed.  With LOCK (or xchg) on naturally
 * contained RAM, the write-back becomes a compare-and-swap. */
uint64_t rm_read_rmw_mem(struct interp_cpu *cpu, struct insn *in, int size, int atomic)
{
    uint64_t la = seg_linear(cpu, in->easeg, final_ea(in), size, ACC_R | ACC_W);
    in->atomic_host = NULL;
    if (atomic && (la & 0xfff) + size <= 4096) {
        uint8_t *h;
        translate(cpu, la, ACC_W, &h);
        if (h) {
            uint64_t v = 0;
            switch (size) {
            case 1: v = __atomic_load_n(h, __ATOMIC_SEQ_CST); break;
            case 2: v = __atomic_load_n((uint16_t *)h, __ATOMIC_SEQ_CST); break;
            case 4: v = __atomic_load_n((uint32_t *)h, __ATOMIC_SEQ_CST); break;
            default: v = __atomic_load_n((uint64_t *)h, __ATOMIC_SEQ_CST); break;
            }
            in->atomic_host = h;
            in->atomic_old = v;
            return v;
        }
    }
    return lin_read(cpu, la, size, ACC_W);
}
