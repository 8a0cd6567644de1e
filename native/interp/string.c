/* String instructions (movs, cmps, stos, lods, scas, ins, outs) with REP/REPE/REPNE and DF.
 *
 * A REP instruction runs at most REP_CHUNK iterations per step and then re-executes itself,
 * so long copies stay interruptible and count towards the instruction budget.  Forward
 * REP MOVS/STOS inside RAM pages take a block-copy fast path. */
#include "interp.h"

#define REP_CHUNK 4096

/* Copy/fill as many whole elements as fit in the current pages of source and destination.
 * Returns the number of elements done (0 if the fast path does not apply). */
static uint64_t rep_block(struct interp_cpu *cpu, struct insn *in, int is_movs, int size, uint64_t count)
{
    uint64_t amask = size_mask(in->addrsize);
    uint64_t di = cpu->gpr[INTERP_RDI] & amask, si = cpu->gpr[INTERP_RSI] & amask;
    int sseg = in->seg >= 0 ? in->seg : INTERP_DS;
    uint64_t dla = seg_linear(cpu, INTERP_ES, di, size, ACC_W);
    uint64_t n = (4096 - (dla & 0xfff)) / size;
    uint64_t sla = 0;
    uint8_t *dh, *sh = NULL;
    if (is_movs) {
        sla = seg_linear(cpu, sseg, si, size, ACC_R);
        uint64_t ns = (4096 - (sla & 0xfff)) / size;
        if (ns < n)
            n = ns;
    }
    if (n > count)
        n = count;
    /* Offsets must not wrap and must stay inside the segment limits (checked for the last element). */
    if (n < 2 || di + n * size - 1 > amask || (is_movs && si + n * size - 1 > amask))
        return 0;
    seg_linear(cpu, INTERP_ES, di + (n - 1) * size, size, ACC_W);
    if (is_movs) {
        seg_linear(cpu, sseg, si + (n - 1) * size, size, ACC_R);
        translate(cpu, sla, ACC_R, &sh);
        if (!sh)
            return 0;
    }
    translate(cpu, dla, ACC_W, &dh);
    if (!dh)
        return 0;
    if (is_movs) {
        /* Element-wise forward copy semantics even when the areas overlap: each element is
         * read whole before it is written (a byte loop differs when dst - src < size). */
        if (dh > sh && dh < sh + n * size) {
            for (uint64_t i = 0; i < n * size; i += size) {
                uint64_t v;
                memcpy(&v, sh + i, size);
                memcpy(dh + i, &v, size);
            }
        } else {
            memmove(dh, sh, n * size);
        }
        reg_set(cpu, INTERP_RSI, in->addrsize, 0, si + n * size);
    } else {
        uint64_t v = cpu->gpr[INTERP_RAX];
        if (size == 1) {
            memset(dh, (uint8_t)v, n);
        } else {
            for (uint64_t i = 0; i < n; i++)
                memcpy(dh + i * size, &v, size);
        }
    }
    reg_set(cpu, INTERP_RDI, in->addrsize, 0, di + n * size);
    return n;
}

void exec_string(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    if (op >= 0x6c && op <= 0x6f && size == 8)
        size = 4;
    int as = in->addrsize;
    uint64_t amask = size_mask(as);
    int64_t step = (cpu->rflags & FL_DF) ? -size : size;
    int sseg = in->seg >= 0 ? in->seg : INTERP_DS;
    int rep = in->rep != 0;
    int is_cmp = op == 0xa6 || op == 0xa7 || op == 0xae || op == 0xaf;
    uint64_t count = rep ? cpu->gpr[INTERP_RCX] & amask : 1;
    uint64_t done = 0;

    if (rep && count == 0)
        return;
    if (rep && !(cpu->rflags & FL_DF) && (op == 0xa4 || op == 0xa5 || op == 0xaa || op == 0xab)) {
        uint64_t n = rep_block(cpu, in, op <= 0xa5, size, count);
        if (n) {
            count -= n;
            reg_set(cpu, INTERP_RCX, as, 0, count);
            if (count)
                in->jumped = 1;
            return;
        }
    }
    while (done < REP_CHUNK) {
        uint64_t si = cpu->gpr[INTERP_RSI] & amask, di = cpu->gpr[INTERP_RDI] & amask;
        uint64_t v, w;
        switch (op) {
        case 0x6c: case 0x6d:                       /* ins */
            io_allowed(cpu, cpu->gpr[INTERP_RDX], size);
            seg_linear(cpu, INTERP_ES, di, size, ACC_W);   /* check before the port read */
            v = io_in(cpu, cpu->gpr[INTERP_RDX], size);
            mem_write(cpu, INTERP_ES, di, size, v);
            reg_set(cpu, INTERP_RDI, as, 0, di + step);
            break;
        case 0x6e: case 0x6f:                       /* outs */
            v = mem_read(cpu, sseg, si, size);
            io_out(cpu, cpu->gpr[INTERP_RDX], size, v);
            reg_set(cpu, INTERP_RSI, as, 0, si + step);
            break;
        case 0xa4: case 0xa5:                       /* movs */
            v = mem_read(cpu, sseg, si, size);
            mem_write(cpu, INTERP_ES, di, size, v);
            reg_set(cpu, INTERP_RSI, as, 0, si + step);
            reg_set(cpu, INTERP_RDI, as, 0, di + step);
            break;
        case 0xa6: case 0xa7:                       /* cmps: [rsi] - [rdi] */
            v = mem_read(cpu, sseg, si, size);
            w = mem_read(cpu, INTERP_ES, di, size);
            alu_binop(cpu, 7, v, w, size);
            reg_set(cpu, INTERP_RSI, as, 0, si + step);
            reg_set(cpu, INTERP_RDI, as, 0, di + step);
            break;
        case 0xaa: case 0xab:                       /* stos */
            mem_write(cpu, INTERP_ES, di, size, cpu->gpr[INTERP_RAX]);
            reg_set(cpu, INTERP_RDI, as, 0, di + step);
            break;
        case 0xac: case 0xad:                       /* lods */
            v = mem_read(cpu, sseg, si, size);
            reg_set(cpu, INTERP_RAX, size, 0, v);
            reg_set(cpu, INTERP_RSI, as, 0, si + step);
            break;
        default:                                    /* scas: rAX - [rdi] */
            w = mem_read(cpu, INTERP_ES, di, size);
            alu_binop(cpu, 7, cpu->gpr[INTERP_RAX], w, size);
            reg_set(cpu, INTERP_RDI, as, 0, di + step);
            break;
        }
        if (!rep)
            return;
        count--;
        reg_set(cpu, INTERP_RCX, as, 0, count);
        done++;
        if (count == 0)
            return;
        if (is_cmp && (in->rep == 0xf3 ? !flags_get_zf(cpu) : flags_get_zf(cpu)))
            return;
    }
    in->jumped = 1;                                 /* more iterations: run this instruction again */
}
