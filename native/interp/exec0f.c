/* The two-byte (0F xx) opcode map: integer and system instructions; SSE and x87 state
 * instructions are handed to sse.c / fpu.c. */
#include "interp.h"

static void exec_cmov(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    uint64_t v = rm_read(cpu, in, in->opsize);
    if (cond_true(cpu, op & 0xf))
        reg_set(cpu, in->reg, in->opsize, in->rex, v);
    else if (in->opsize == 4)
        reg_set(cpu, in->reg, 4, in->rex, cpu->gpr[in->reg]);   /* 32-bit dest is zero-extended anyway */
}

/* bt/bts/btr/btc: op 0 test, 1 set, 2 reset, 3 complement. */
static void exec_bt(struct interp_cpu *cpu, struct insn *in, int op, int imm_form)
{
    int size = in->opsize, bits = 8 * size;
    uint64_t off;
    if (imm_form) {
        off = fetch_imm(cpu, in, 1) & (bits - 1);
    } else {
        off = reg_get(cpu, in->reg, size, in->rex);
        if (in->mod != 3) {
            /* A register bit offset addresses memory beyond the operand (signed). */
            int64_t so = sext(off, size);
            int64_t unit = so >= 0 ? so / bits : -((-so + bits - 1) / bits);
            in->ea = (in->ea + unit * size) & size_mask(in->addrsize);
            off = (uint64_t)(so - unit * bits);
        } else {
            off &= bits - 1;
        }
    }
    uint64_t v = op == 0 ? rm_read(cpu, in, size) : rm_read_rmw(cpu, in, size, in->lock);
    uint64_t bit = 1ULL << off;
    flags_set(cpu, FL_CF, (v & bit) ? FL_CF : 0);
    switch (op) {
    case 1: rm_write(cpu, in, size, v | bit); break;
    case 2: rm_write(cpu, in, size, v & ~bit); break;
    case 3: rm_write(cpu, in, size, v ^ bit); break;
    default: break;
    }
}

static void exec_bitscan(struct interp_cpu *cpu, struct insn *in, int reverse)
{
    int size = in->opsize, bits = 8 * size;
    decode_modrm(cpu, in);
    uint64_t v = rm_read(cpu, in, size);
    if (in->rep == 0xf3) {                           /* tzcnt / lzcnt */
        uint64_t r = v == 0 ? (uint64_t)bits : reverse ? (uint64_t)(__builtin_clzll(v) - (64 - bits)) : (uint64_t)__builtin_ctzll(v);
        reg_set(cpu, in->reg, size, in->rex, r);
        flags_set(cpu, FL_CF | FL_ZF, (v == 0 ? FL_CF : 0) | (r == 0 ? FL_ZF : 0));
        return;
    }
    if (v == 0) {                                    /* destination unchanged (as hardware does) */
        flags_set(cpu, FL_ZF, FL_ZF);
        return;
    }
    reg_set(cpu, in->reg, size, in->rex, reverse ? 63 - __builtin_clzll(v) : __builtin_ctzll(v));
    flags_set(cpu, FL_ZF, 0);
}

static void exec_cmpxchg(struct interp_cpu *cpu, struct insn *in, int size)
{
    decode_modrm(cpu, in);
    uint64_t acc = reg_get(cpu, INTERP_RAX, size, 0);
    uint64_t dst = rm_read_rmw(cpu, in, size, 1);
    alu_binop(cpu, 7, acc, dst, size);
    if (in->mod == 3) {
        /* A register destination is written only when equal, the accumulator only when not:
         * with 32-bit operands the other register keeps its upper half (not zero-extended). */
        if (acc == dst)
            reg_set(cpu, in->rm, size, in->rex, reg_get(cpu, in->reg, size, in->rex));
        else
            reg_set(cpu, INTERP_RAX, size, 0, dst);
        return;
    }
    if (acc == dst) {
        rm_write(cpu, in, size, reg_get(cpu, in->reg, size, in->rex));
    } else {
        rm_write(cpu, in, size, dst);
        if (!in->retry)
            reg_set(cpu, INTERP_RAX, size, 0, dst);
    }
}

/* cmpxchg16b on RAM: one host `lock cmpxchg16b`, so other vCPUs see it atomic.  Returns
 * ZF; *lo / *hi receive the memory's old value. */
static int cmpxchg16b_host(uint8_t *h, uint64_t *lo, uint64_t *hi, uint64_t new_lo, uint64_t new_hi)
{
    uint8_t zf;
    __asm__ volatile("lock cmpxchg16b %0\n\tsetz %1"
                     : "+m"(*(volatile __int128 *)h), "=q"(zf), "+a"(*lo), "+d"(*hi)
                     : "b"(new_lo), "c"(new_hi) : "memory", "cc");
    return zf;
}

static void exec_cmpxchg8b16b(struct interp_cpu *cpu, struct insn *in)
{
    if (in->mod == 3)
        RAISE_UD(cpu);
    uint64_t ea = in->ea;
    if (in->opsize == 8) {                           /* cmpxchg16b: always a locked write cycle */
        if (ea & 15)
            RAISE_GP0(cpu);
        uint64_t la = seg_linear(cpu, in->easeg, ea, 16, ACC_R | ACC_W);
        uint8_t *h;
        translate(cpu, la, ACC_W, &h);               /* aligned: one page; faults as a write */
        uint64_t lo = cpu->gpr[INTERP_RAX], hi = cpu->gpr[INTERP_RDX];
        int equal;
        if (h) {
            equal = cmpxchg16b_host(h, &lo, &hi, cpu->gpr[INTERP_RBX], cpu->gpr[INTERP_RCX]);
        } else {                                     /* MMIO: no atomicity to offer */
            lo = mem_read(cpu, in->easeg, ea, 8);
            hi = mem_read(cpu, in->easeg, ea + 8, 8);
            equal = lo == cpu->gpr[INTERP_RAX] && hi == cpu->gpr[INTERP_RDX];
            mem_write(cpu, in->easeg, ea, 8, equal ? cpu->gpr[INTERP_RBX] : lo);
            mem_write(cpu, in->easeg, ea + 8, 8, equal ? cpu->gpr[INTERP_RCX] : hi);
        }
        if (!equal) {
            cpu->gpr[INTERP_RAX] = lo;
            cpu->gpr[INTERP_RDX] = hi;
        }
        flags_set(cpu, FL_ZF, equal ? FL_ZF : 0);
        return;
    }
    uint64_t expect = (cpu->gpr[INTERP_RAX] & 0xffffffffULL) | (cpu->gpr[INTERP_RDX] << 32);
    uint64_t cur = rm_read_rmw(cpu, in, 8, 1);
    if (cur == expect) {
        rm_write(cpu, in, 8, (cpu->gpr[INTERP_RBX] & 0xffffffffULL) | (cpu->gpr[INTERP_RCX] << 32));
        if (!in->retry)
            flags_set(cpu, FL_ZF, FL_ZF);
    } else {
        rm_write(cpu, in, 8, cur);
        if (!in->retry) {
            reg_set(cpu, INTERP_RAX, 4, 0, cur);
            reg_set(cpu, INTERP_RDX, 4, 0, cur >> 32);
            flags_set(cpu, FL_ZF, 0);
        }
    }
}

static void exec_group9(struct interp_cpu *cpu, struct insn *in)
{
    decode_modrm(cpu, in);
    int sub = in->reg & 7;
    if (sub == 1) {
        exec_cmpxchg8b16b(cpu, in);
        return;
    }
    if (in->mod == 3 && sub == 7 && in->rep == 0xf3) {   /* rdpid */
        reg_set(cpu, in->rm, P(cpu)->code64 ? 8 : 4, 0, cpu->msr.tsc_aux);
        return;
    }
    if (in->mod != 3 && sub >= 3 && sub <= 5) {        /* xrstors, xsavec, xsaves */
        fpu_group_c7(cpu, in);
        return;
    }
    if (in->mod == 3 && (sub == 6 || sub == 7)) {       /* rdrand / rdseed */
        rdrand_exec(cpu, in, sub == 7);
        return;
    }
    RAISE_UD(cpu);
}

static void exec_push_pop_fsgs(struct interp_cpu *cpu, struct insn *in, int seg, int is_pop)
{
    int size = P(cpu)->code64 ? (in->opsize == 2 ? 2 : 8) : in->opsize;
    if (!is_pop) {
        push(cpu, cpu->seg[seg].selector, size);
        return;
    }
    uint64_t v = mem_read(cpu, INTERP_SS, cpu->gpr[INTERP_RSP] & stack_mask(cpu), size);
    seg_load(cpu, seg, v);
    reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, cpu->gpr[INTERP_RSP] + size);
}

static void exec_load_far(struct interp_cpu *cpu, struct insn *in, int seg)
{
    decode_modrm(cpu, in);
    if (in->mod == 3)
        RAISE_UD(cpu);
    uint64_t off = mem_read(cpu, in->easeg, in->ea, in->opsize);
    uint16_t sel = mem_read(cpu, in->easeg, (in->ea + in->opsize) & size_mask(in->addrsize), 2);
    seg_load(cpu, seg, sel);
    reg_set(cpu, in->reg, in->opsize, in->rex, off);
}

void exec_0f(struct interp_cpu *cpu, struct insn *in)
{
    uint8_t op = fetch8(cpu, in);
    uint64_t a, b;
    int size;

    switch (op) {
    case 0x00: sys_group6(cpu, in); return;
    case 0x01: sys_group7(cpu, in); return;
    case 0x02: case 0x03: sys_lar_lsl(cpu, in, op == 0x03); return;
    case 0x05: sys_syscall(cpu, in); return;
    case 0x06: require_cpl0(cpu); cpu->cr0 &= ~CR0_TS; return;
    case 0x07: sys_sysret(cpu, in); return;
    case 0x08: case 0x09: require_cpl0(cpu); return;       /* invd / wbinvd: no caches to manage */
    case 0x0b: case 0xb9: case 0xff: RAISE_UD(cpu);          /* ud2, ud1, ud0 */
    case 0x0d: case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d: case 0x1e: case 0x1f:
        decode_modrm(cpu, in);                               /* prefetch, hint nops, endbr */
        return;
    case 0x20: case 0x22: sys_mov_cr(cpu, in, op == 0x22); return;
    case 0x21: case 0x23: sys_mov_dr(cpu, in, op == 0x23); return;
    case 0x30: sys_wrmsr(cpu); return;
    case 0x31: sys_rdtsc(cpu, 0); return;
    case 0x32: sys_rdmsr(cpu); return;
    case 0x33: RAISE_GP0(cpu);                               /* rdpmc: no counters */
    case 0x34: case 0x35: raise_unimplemented(cpu);          /* sysenter / sysexit */
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
        exec_cmov(cpu, in, op);
        return;
    case 0x80: case 0x81: case 0x82: case 0x83: case 0x84: case 0x85: case 0x86: case 0x87:
    case 0x88: case 0x89: case 0x8a: case 0x8b: case 0x8c: case 0x8d: case 0x8e: case 0x8f:
        a = fetch_simm(cpu, in, in->opsize == 2 ? 2 : 4);
        if (cond_true(cpu, op & 0xf))
            jump_to(cpu, in, next_rip(cpu, in) + a);
        return;
    case 0x90: case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    case 0x98: case 0x99: case 0x9a: case 0x9b: case 0x9c: case 0x9d: case 0x9e: case 0x9f:
        decode_modrm(cpu, in);
        rm_write(cpu, in, 1, cond_true(cpu, op & 0xf));
        return;
    case 0xa0: exec_push_pop_fsgs(cpu, in, INTERP_FS, 0); return;
    case 0xa1: exec_push_pop_fsgs(cpu, in, INTERP_FS, 1); return;
    case 0xa8: exec_push_pop_fsgs(cpu, in, INTERP_GS, 0); return;
    case 0xa9: exec_push_pop_fsgs(cpu, in, INTERP_GS, 1); return;
    case 0xa2: sys_cpuid(cpu); return;
    case 0xa3: case 0xab: case 0xb3: case 0xbb:
        decode_modrm(cpu, in);
        exec_bt(cpu, in, op == 0xa3 ? 0 : op == 0xab ? 1 : op == 0xb3 ? 2 : 3, 0);
        return;
    case 0xba:
        decode_modrm(cpu, in);
        if ((in->reg & 7) < 4)
            RAISE_UD(cpu);
        exec_bt(cpu, in, (in->reg & 7) - 4, 1);
        return;
    case 0xa4: case 0xa5: case 0xac: case 0xad: {
        decode_modrm(cpu, in);
        unsigned count = (op & 1) ? cpu->gpr[INTERP_RCX] & 0xff : fetch_imm(cpu, in, 1);
        size = in->opsize;
        a = rm_read_rmw(cpu, in, size, 0);
        b = reg_get(cpu, in->reg, size, in->rex);
        rm_write(cpu, in, size, alu_shld(cpu, a, b, count, size, op >= 0xac));
        return;
    }
    case 0xae: fpu_group_ae(cpu, in); return;
    case 0xaf:
        decode_modrm(cpu, in);
        a = reg_get(cpu, in->reg, in->opsize, in->rex);
        b = rm_read(cpu, in, in->opsize);
        reg_set(cpu, in->reg, in->opsize, in->rex, alu_imul2(cpu, a, b, in->opsize));
        return;
    case 0xb0: exec_cmpxchg(cpu, in, 1); return;
    case 0xb1: exec_cmpxchg(cpu, in, in->opsize); return;
    case 0xb2: exec_load_far(cpu, in, INTERP_SS); return;
    case 0xb4: exec_load_far(cpu, in, INTERP_FS); return;
    case 0xb5: exec_load_far(cpu, in, INTERP_GS); return;
    case 0xb6: case 0xb7: case 0xbe: case 0xbf:
        decode_modrm(cpu, in);
        size = (op & 1) ? 2 : 1;
        a = rm_read(cpu, in, size);
        if (op & 8)
            a = (uint64_t)sext(a, size);
        reg_set(cpu, in->reg, in->opsize, in->rex, a);
        return;
    case 0xb8:
        if (in->rep != 0xf3)
            RAISE_UD(cpu);                                   /* jmpe */
        decode_modrm(cpu, in);
        a = rm_read(cpu, in, in->opsize);
        reg_set(cpu, in->reg, in->opsize, in->rex, __builtin_popcountll(a));
        flags_set(cpu, FL_ARITH, a == 0 ? FL_ZF : 0);
        return;
    case 0xbc: exec_bitscan(cpu, in, 0); return;
    case 0xbd: exec_bitscan(cpu, in, 1); return;
    case 0xc0: case 0xc1: {
        size = op == 0xc0 ? 1 : in->opsize;
        decode_modrm(cpu, in);
        a = rm_read_rmw(cpu, in, size, in->lock);
        b = reg_get(cpu, in->reg, size, in->rex);
        uint64_t sum = alu_binop(cpu, 0, a, b, size);
        if (in->mod == 3) {                          /* SRC <- DEST, then DEST <- sum: with */
            reg_set(cpu, in->reg, size, in->rex, a); /* one register for both, the sum wins */
            reg_set(cpu, in->rm, size, in->rex, sum);
            return;
        }
        rm_write(cpu, in, size, sum);
        if (!in->retry)
            reg_set(cpu, in->reg, size, in->rex, a);
        return;
    }
    case 0xc7: exec_group9(cpu, in); return;
    case 0x38:                                               /* adcx (66) / adox (F3): adx.c */
        if (in->p < in->end && in->p[0] == 0xf6 && (in->rep == 0xf3 || (in->pfx66 && !in->rep))) {
            adx_exec(cpu, in);
            return;
        }
        sse_exec(cpu, in, op);
        return;
    case 0xc8: case 0xc9: case 0xca: case 0xcb: case 0xcc: case 0xcd: case 0xce: case 0xcf: {
        int r = (op & 7) | ((in->rex & 1) << 3);
        if (in->opsize == 8)
            cpu->gpr[r] = __builtin_bswap64(cpu->gpr[r]);
        else if (in->opsize == 4)
            reg_set(cpu, r, 4, 0, __builtin_bswap32(cpu->gpr[r]));
        else
            reg_set(cpu, r, 2, 0, 0);                        /* undefined; hardware gives 0 */
        return;
    }
    default:
        sse_exec(cpu, in, op);
        return;
    }
}
