/* Instruction decode front end (prefixes, REX, operand/address size) and the one-byte
 * opcode map. */
#include "interp.h"

/* Legacy prefix bytes (REX is handled separately: it is a prefix only in 64-bit mode). */
static const uint8_t is_legacy_prefix[256] = {
    [0x26] = 1, [0x2e] = 1, [0x36] = 1, [0x3e] = 1, [0x64] = 1, [0x65] = 1,
    [0x66] = 1, [0x67] = 1, [0xf0] = 1, [0xf2] = 1, [0xf3] = 1,
};

/* Operand size of stack operations: 64-bit mode pushes 8 bytes unless 66 asks for 2. */
static inline int stack_opsize(struct interp_cpu *cpu, struct insn *in)
{
    if (P(cpu)->code64)
        return in->opsize == 2 ? 2 : 8;
    return in->opsize;
}

static void invalid_in_64(struct interp_cpu *cpu)
{
    if (P(cpu)->code64)
        RAISE_UD(cpu);
}

/* Classic ALU op in one of the six encodings selected by the low 3 opcode bits. */
static void exec_alu(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int aluop = op >> 3, form = op & 7;
    int size = (form & 1) ? in->opsize : 1;
    uint64_t a, b, r;
    switch (form) {
    case 0: case 1:                                     /* Ex, Gx */
        decode_modrm(cpu, in);
        b = reg_get(cpu, in->reg, size, in->rex);
        if (aluop == 7) {
            alu_binop(cpu, aluop, rm_read(cpu, in, size), b, size);
            return;
        }
        a = rm_read_rmw(cpu, in, size, in->lock);
        r = alu_binop(cpu, aluop, a, b, size);
        rm_write(cpu, in, size, r);
        return;
    case 2: case 3:                                     /* Gx, Ex */
        decode_modrm(cpu, in);
        b = rm_read(cpu, in, size);
        a = reg_get(cpu, in->reg, size, in->rex);
        r = alu_binop(cpu, aluop, a, b, size);
        if (aluop != 7)
            reg_set(cpu, in->reg, size, in->rex, r);
        return;
    default:                                            /* AL/rAX, imm */
        b = fetch_simm(cpu, in, size == 8 ? 4 : size);
        a = reg_get(cpu, INTERP_RAX, size, 0);
        r = alu_binop(cpu, aluop, a, b, size);
        if (aluop != 7)
            reg_set(cpu, INTERP_RAX, size, 0, r);
        return;
    }
}

static void exec_group1(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    decode_modrm(cpu, in);
    int immsize = op == 0x81 ? (size == 8 ? 4 : size) : 1;
    uint64_t b = fetch_simm(cpu, in, immsize);
    int aluop = in->reg & 7;
    if (aluop == 7) {
        alu_binop(cpu, 7, rm_read(cpu, in, size), b, size);
        return;
    }
    uint64_t a = rm_read_rmw(cpu, in, size, in->lock);
    rm_write(cpu, in, size, alu_binop(cpu, aluop, a, b, size));
}

static void exec_shift_group(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    decode_modrm(cpu, in);
    unsigned count;
    if (op == 0xc0 || op == 0xc1)
        count = fetch_imm(cpu, in, 1);
    else if (op == 0xd0 || op == 0xd1)
        count = 1;
    else
        count = cpu->gpr[INTERP_RCX] & 0xff;
    uint64_t a = rm_read_rmw(cpu, in, size, 0);
    rm_write(cpu, in, size, alu_shift(cpu, in->reg & 7, a, count, size));
}

/* inc/dec keep CF: fold a CF still held lazily by another operation into RFLAGS (with
 * LF_NONE, LF_INC and LF_DEC, RFLAGS.CF is already the live value). */
static inline void keep_cf(struct interp_cpu *cpu)
{
    uint32_t op = P(cpu)->lf_op;
    if (op != LF_NONE && op != LF_INC && op != LF_DEC) {
        uint64_t cf = flags_get_cf(cpu);
        cpu->rflags = (cpu->rflags & ~FL_CF) | cf;
    }
}

static inline void inc_dec(struct interp_cpu *cpu, int dec, uint64_t a, int size, uint64_t *res)
{
    struct interp_priv_storage *p = P(cpu);
    uint64_t mask = size_mask(size);
    keep_cf(cpu);
    a &= mask;
    uint64_t r = (dec ? a - 1 : a + 1) & mask;
    p->lf_op = dec ? LF_DEC : LF_INC;
    p->lf_res = r;
    p->lf_a = a;
    p->lf_b = 1;
    p->lf_bits = 8 * size;
    *res = r;
}

/* jcc rel8 */
static inline void exec_jcc8(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    uint64_t a = fetch_simm(cpu, in, 1);
    if ((op & 0xe) == 4 ? (int)(flags_get_zf(cpu) ^ (op & 1)) : cond_true(cpu, op & 0xf))
        jump_to(cpu, in, next_rip(cpu, in) + a);
}

static void exec_group3(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    decode_modrm(cpu, in);
    int sub = in->reg & 7;
    uint64_t a, r;
    switch (sub) {
    case 0: case 1: {                                   /* test Ex, imm */
        uint64_t imm = fetch_simm(cpu, in, size == 8 ? 4 : size);
        a = rm_read(cpu, in, size);
        lazy_set(cpu, LF_LOGIC, a & imm, a, imm, size);
        return;
    }
    case 2:                                             /* not */
        a = rm_read_rmw(cpu, in, size, in->lock);
        rm_write(cpu, in, size, ~a);
        return;
    case 3:                                             /* neg */
        a = rm_read_rmw(cpu, in, size, in->lock);
        r = alu_binop(cpu, 5, 0, a, size);
        rm_write(cpu, in, size, r);
        return;
    case 4: alu_mul(cpu, 0, size, rm_read(cpu, in, size)); return;
    case 5: alu_mul(cpu, 1, size, rm_read(cpu, in, size)); return;
    case 6: alu_div(cpu, 0, size, rm_read(cpu, in, size)); return;
    default: alu_div(cpu, 1, size, rm_read(cpu, in, size)); return;
    }
}

/* Far pointer operand m16:16/32/64: offset then selector. */
static void read_far_pointer(struct interp_cpu *cpu, struct insn *in, uint16_t *sel, uint64_t *off)
{
    int size = in->opsize;
    if (in->mod == 3)
        RAISE_UD(cpu);
    *off = mem_read(cpu, in->easeg, in->ea, size);
    *sel = mem_read(cpu, in->easeg, (in->ea + size) & size_mask(in->addrsize), 2);
}

static void exec_group5(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    decode_modrm(cpu, in);
    int sub = in->reg & 7;
    uint64_t a, r;
    uint16_t sel;
    if (op == 0xfe && sub > 1)
        RAISE_UD(cpu);
    switch (sub) {
    case 0: case 1:
        a = rm_read_rmw(cpu, in, size, in->lock);
        inc_dec(cpu, sub, a, size, &r);
        rm_write(cpu, in, size, r);
        return;
    case 2: case 4: {                                   /* near call / jmp, absolute indirect */
        int os = stack_opsize(cpu, in);
        uint64_t target = rm_read(cpu, in, os);
        in->opsize = os;
        if (sub == 2) {
            uint64_t ret = next_rip(cpu, in), old_rip = cpu->rip;
            jump_to(cpu, in, target);
            uint64_t checked = cpu->rip;
            cpu->rip = old_rip;                         /* push may fault: jump only after it */
            push(cpu, ret, os);
            cpu->rip = checked;
        } else {
            jump_to(cpu, in, target);
        }
        return;
    }
    case 3: case 5:                                     /* far call / jmp through memory */
        read_far_pointer(cpu, in, &sel, &a);
        far_jump(cpu, sel, a, sub == 3, in->opsize, next_rip(cpu, in));
        in->jumped = 1;
        return;
    case 6:
        push(cpu, rm_read(cpu, in, stack_opsize(cpu, in)), stack_opsize(cpu, in));
        return;
    default:
        RAISE_UD(cpu);
    }
}

static void exec_int(struct interp_cpu *cpu, struct insn *in, int vector, int kind)
{
    cpu->rip = next_rip(cpu, in);
    in->jumped = 1;
    deliver_event(cpu, vector, kind, 0, 0);
}

static void exec_enter(struct interp_cpu *cpu, struct insn *in)
{
    uint16_t alloc = fetch_imm(cpu, in, 2);
    int level = fetch_imm(cpu, in, 1) & 31;
    int os = stack_opsize(cpu, in);
    int ss = P(cpu)->stack_size;
    uint64_t smask = stack_mask(cpu);
    uint64_t rbp = cpu->gpr[INTERP_RBP];
    push(cpu, rbp, os);
    uint64_t frame = cpu->gpr[INTERP_RSP] & smask;
    for (int i = 1; i < level; i++) {
        rbp = (rbp - os) & smask;
        push(cpu, mem_read(cpu, INTERP_SS, rbp, os), os);
    }
    if (level > 0)
        push(cpu, frame, os);
    reg_set(cpu, INTERP_RBP, os, 0, frame);
    reg_set(cpu, INTERP_RSP, ss, 0, (cpu->gpr[INTERP_RSP] - alloc) & smask);
}

static void exec_cli_sti(struct interp_cpu *cpu, int set)
{
    if (is_protected(cpu) && P(cpu)->cpl > (int)((cpu->rflags & FL_IOPL) >> FL_IOPL_SHIFT))
        RAISE_GP0(cpu);
    if (set) {
        if (!(cpu->rflags & FL_IF))
            cpu->int_shadow = 1;
        cpu->rflags |= FL_IF;
    } else {
        cpu->rflags &= ~FL_IF;
    }
    P(cpu)->attention = 1;
}

static void exec_in_out(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? (in->opsize == 2 ? 2 : 4) : 1;
    uint16_t port = (op & 8) ? cpu->gpr[INTERP_RDX] & 0xffff : fetch_imm(cpu, in, 1);
    if (op & 2)
        io_out(cpu, port, size, reg_get(cpu, INTERP_RAX, size, 0));
    else
        reg_set(cpu, INTERP_RAX, size, 0, io_in(cpu, port, size));
}

static void exec_loop(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int64_t rel = sext(fetch_imm(cpu, in, 1), 1);
    int as = in->addrsize;
    uint64_t count = reg_get(cpu, INTERP_RCX, as, 0);
    int take;
    if (op == 0xe3) {
        take = count == 0;
    } else {
        count = (count - 1) & size_mask(as);
        reg_set(cpu, INTERP_RCX, as, 0, count);
        take = count != 0;
        if (op == 0xe0) take = take && !flags_get_zf(cpu);
        if (op == 0xe1) take = take && flags_get_zf(cpu);
    }
    if (take)
        jump_to(cpu, in, next_rip(cpu, in) + rel);
}

static void exec_moffs(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    uint64_t addr = fetch_n(cpu, in, in->addrsize);
    int seg = in->seg >= 0 ? in->seg : INTERP_DS;
    if (op & 2)
        mem_write(cpu, seg, addr, size, reg_get(cpu, INTERP_RAX, size, 0));
    else
        reg_set(cpu, INTERP_RAX, size, 0, mem_read(cpu, seg, addr, size));
}

static void exec_xchg_rm(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int size = (op & 1) ? in->opsize : 1;
    decode_modrm(cpu, in);
    uint64_t r = reg_get(cpu, in->reg, size, in->rex);
    uint64_t m = rm_read_rmw(cpu, in, size, 1);         /* xchg with memory is always locked */
    rm_write(cpu, in, size, r);
    if (!in->retry)
        reg_set(cpu, in->reg, size, in->rex, m);
}

static void exec_mov_sreg(struct interp_cpu *cpu, struct insn *in, int to_sreg)
{
    decode_modrm(cpu, in);
    int sreg = in->reg & 7;
    if (sreg > INTERP_GS)
        RAISE_UD(cpu);
    if (!to_sreg) {
        uint16_t v = cpu->seg[sreg].selector;
        if (in->mod == 3)
            reg_set(cpu, in->rm, in->opsize, in->rex, v);
        else
            rm_write(cpu, in, 2, v);
        return;
    }
    if (sreg == INTERP_CS)
        RAISE_UD(cpu);
    seg_load(cpu, sreg, rm_read(cpu, in, 2));
    if (sreg == INTERP_SS) {
        cpu->int_shadow = 1;
        P(cpu)->attention = 1;
    }
}

static void exec_pop_rm(struct interp_cpu *cpu, struct insn *in)
{
    int os = stack_opsize(cpu, in);
    decode_modrm(cpu, in);
    if ((in->reg & 7) != 0)
        RAISE_UD(cpu);
    uint64_t old_rsp = cpu->gpr[INTERP_RSP];
    uint64_t v = pop(cpu, os);
    if (in->mod != 3 && in->base_is_rsp)
        in->ea += os;                  /* the address uses RSP after the pop */
    if (in->mod == 3) {
        reg_set(cpu, in->rm, os, in->rex, v);
        return;
    }
    uint64_t new_rsp = cpu->gpr[INTERP_RSP];
    cpu->gpr[INTERP_RSP] = old_rsp;   /* a faulting store must leave RSP as it was */
    mem_write(cpu, in->easeg, in->ea & size_mask(in->addrsize), os, v);
    cpu->gpr[INTERP_RSP] = new_rsp;
}

static void exec_pusha_popa(struct interp_cpu *cpu, struct insn *in, int is_pop)
{
    int os = in->opsize;
    invalid_in_64(cpu);
    if (!is_pop) {
        uint64_t sp = cpu->gpr[INTERP_RSP];
        for (int r = INTERP_RAX; r <= INTERP_RDI; r++)
            push(cpu, r == INTERP_RSP ? sp : cpu->gpr[r], os);
        return;
    }
    for (int r = INTERP_RDI; r >= INTERP_RAX; r--) {
        uint64_t v = pop(cpu, os);
        if (r != INTERP_RSP)
            reg_set(cpu, r, os, 0, v);
    }
}

static void exec_les(struct interp_cpu *cpu, struct insn *in, int seg)
{
    uint16_t sel;
    uint64_t off;
    decode_modrm(cpu, in);
    read_far_pointer(cpu, in, &sel, &off);
    seg_load(cpu, seg, sel);
    reg_set(cpu, in->reg, in->opsize, in->rex, off);
}

static void exec_onebyte(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    uint64_t a, b;
    int size;

    switch (op) {
    case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05:
    case 0x08: case 0x09: case 0x0a: case 0x0b: case 0x0c: case 0x0d:
    case 0x10: case 0x11: case 0x12: case 0x13: case 0x14: case 0x15:
    case 0x18: case 0x19: case 0x1a: case 0x1b: case 0x1c: case 0x1d:
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25:
    case 0x28: case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d:
    case 0x30: case 0x31: case 0x32: case 0x33: case 0x34: case 0x35:
    case 0x38: case 0x39: case 0x3a: case 0x3b: case 0x3c: case 0x3d:
        exec_alu(cpu, in, op);
        return;
    case 0x06: case 0x0e: case 0x16: case 0x1e:          /* push es/cs/ss/ds */
        invalid_in_64(cpu);
        push(cpu, cpu->seg[op >> 3].selector, in->opsize);
        return;
    case 0x07: case 0x17: case 0x1f:                      /* pop es/ss/ds */
        invalid_in_64(cpu);
        a = mem_read(cpu, INTERP_SS, cpu->gpr[INTERP_RSP] & stack_mask(cpu), in->opsize);
        seg_load(cpu, op >> 3, a);
        reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, cpu->gpr[INTERP_RSP] + in->opsize);
        if (op == 0x17) {
            cpu->int_shadow = 1;
            P(cpu)->attention = 1;
        }
        return;
    case 0x0f:
        exec_0f(cpu, in);
        return;
    case 0x40: case 0x41: case 0x42: case 0x43: case 0x44: case 0x45: case 0x46: case 0x47:
    case 0x48: case 0x49: case 0x4a: case 0x4b: case 0x4c: case 0x4d: case 0x4e: case 0x4f:
        inc_dec(cpu, op >= 0x48, reg_get(cpu, op & 7, in->opsize, 0), in->opsize, &a);
        reg_set(cpu, op & 7, in->opsize, 0, a);
        return;
    case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
        size = stack_opsize(cpu, in);
        push(cpu, reg_get(cpu, (op & 7) | ((in->rex & 1) << 3), size, 0), size);
        return;
    case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
        size = stack_opsize(cpu, in);
        a = pop(cpu, size);
        reg_set(cpu, (op & 7) | ((in->rex & 1) << 3), size, 0, a);
        return;
    case 0x60: exec_pusha_popa(cpu, in, 0); return;
    case 0x61: exec_pusha_popa(cpu, in, 1); return;
    case 0x63:
        if (!P(cpu)->code64)
            raise_unimplemented(cpu);                    /* arpl */
        decode_modrm(cpu, in);                           /* movsxd */
        a = (uint64_t)sext(rm_read(cpu, in, 4), 4);
        reg_set(cpu, in->reg, in->opsize, in->rex, a);
        return;
    case 0x68: case 0x6a:
        size = stack_opsize(cpu, in);
        a = fetch_simm(cpu, in, op == 0x6a ? 1 : (in->opsize == 2 ? 2 : 4));
        push(cpu, a, size);
        return;
    case 0x69: case 0x6b:
        decode_modrm(cpu, in);
        b = fetch_simm(cpu, in, op == 0x6b ? 1 : (in->opsize == 8 ? 4 : in->opsize));
        a = rm_read(cpu, in, in->opsize);
        reg_set(cpu, in->reg, in->opsize, in->rex, alu_imul2(cpu, a, b, in->opsize));
        return;
    case 0x6c: case 0x6d: case 0x6e: case 0x6f:
    case 0xa4: case 0xa5: case 0xa6: case 0xa7:
    case 0xaa: case 0xab: case 0xac: case 0xad: case 0xae: case 0xaf:
        exec_string(cpu, in, op);
        return;
    case 0x70: case 0x71: case 0x72: case 0x73: case 0x74: case 0x75: case 0x76: case 0x77:
    case 0x78: case 0x79: case 0x7a: case 0x7b: case 0x7c: case 0x7d: case 0x7e: case 0x7f:
        exec_jcc8(cpu, in, op);
        return;
    case 0x82:
        invalid_in_64(cpu);
        exec_group1(cpu, in, 0x80);
        return;
    case 0x80: case 0x81: case 0x83:
        exec_group1(cpu, in, op);
        return;
    case 0x84: case 0x85:
        size = (op & 1) ? in->opsize : 1;
        decode_modrm(cpu, in);
        a = rm_read(cpu, in, size);
        b = reg_get(cpu, in->reg, size, in->rex);
        lazy_set(cpu, LF_LOGIC, a & b, a, b, size);
        return;
    case 0x86: case 0x87:
        exec_xchg_rm(cpu, in, op);
        return;
    case 0x88: case 0x89:
        size = (op & 1) ? in->opsize : 1;
        decode_modrm(cpu, in);
        rm_write(cpu, in, size, reg_get(cpu, in->reg, size, in->rex));
        return;
    case 0x8a: case 0x8b:
        size = (op & 1) ? in->opsize : 1;
        decode_modrm(cpu, in);
        reg_set(cpu, in->reg, size, in->rex, rm_read(cpu, in, size));
        return;
    case 0x8c: exec_mov_sreg(cpu, in, 0); return;
    case 0x8e: exec_mov_sreg(cpu, in, 1); return;
    case 0x8d:
        decode_modrm(cpu, in);
        if (in->mod == 3)
            RAISE_UD(cpu);
        reg_set(cpu, in->reg, in->opsize, in->rex, in->ea);
        return;
    case 0x8f:
        exec_pop_rm(cpu, in);
        return;
    case 0x90:
        if (in->rex & 1)
            goto xchg_rax;
        return;                                          /* nop, pause */
    case 0x91: case 0x92: case 0x93: case 0x94: case 0x95: case 0x96: case 0x97:
    xchg_rax: {
        int r = (op & 7) | ((in->rex & 1) << 3);
        a = reg_get(cpu, r, in->opsize, 0);
        reg_set(cpu, r, in->opsize, 0, reg_get(cpu, INTERP_RAX, in->opsize, 0));
        reg_set(cpu, INTERP_RAX, in->opsize, 0, a);
        return;
    }
    case 0x98:
        size = in->opsize;
        reg_set(cpu, INTERP_RAX, size, 0, (uint64_t)sext(cpu->gpr[INTERP_RAX], size / 2));
        return;
    case 0x99:
        size = in->opsize;
        a = sext(cpu->gpr[INTERP_RAX], size) < 0 ? ~0ULL : 0;
        reg_set(cpu, INTERP_RDX, size, 0, a);
        return;
    case 0x9a: {
        invalid_in_64(cpu);
        uint64_t off = fetch_imm(cpu, in, in->opsize);
        uint16_t sel = fetch_imm(cpu, in, 2);
        far_jump(cpu, sel, off, 1, in->opsize, next_rip(cpu, in));
        in->jumped = 1;
        return;
    }
    case 0x9b:
        x87_fwait(cpu);
        return;
    case 0x9c:
        if ((cpu->rflags & FL_VM) && ((cpu->rflags & FL_IOPL) >> FL_IOPL_SHIFT) < 3)
            RAISE_GP0(cpu);
        size = stack_opsize(cpu, in);
        push(cpu, read_rflags(cpu) & ~(FL_VM | FL_RF), size);
        return;
    case 0x9d:
        if ((cpu->rflags & FL_VM) && ((cpu->rflags & FL_IOPL) >> FL_IOPL_SHIFT) < 3)
            RAISE_GP0(cpu);
        size = stack_opsize(cpu, in);
        a = pop(cpu, size);
        sys_write_rflags(cpu, a & ~FL_RF, size_mask(size));
        return;
    case 0x9e:                                           /* sahf */
        flags_set(cpu, FL_CF | FL_PF | FL_AF | FL_ZF | FL_SF, cpu->gpr[INTERP_RAX] >> 8);
        return;
    case 0x9f:                                           /* lahf */
        reg_set(cpu, INTERP_RSP, 1, 0, read_rflags(cpu) & 0xd7);   /* AH: reg 4 without REX */
        return;
    case 0xa0: case 0xa1: case 0xa2: case 0xa3:
        exec_moffs(cpu, in, op);
        return;
    case 0xa8: case 0xa9:
        size = (op & 1) ? in->opsize : 1;
        b = fetch_simm(cpu, in, size == 8 ? 4 : size);
        a = reg_get(cpu, INTERP_RAX, size, 0);
        lazy_set(cpu, LF_LOGIC, a & b, a, b, size);
        return;
    case 0xb0: case 0xb1: case 0xb2: case 0xb3: case 0xb4: case 0xb5: case 0xb6: case 0xb7:
        reg_set(cpu, (op & 7) | ((in->rex & 1) << 3), 1, in->rex, fetch_imm(cpu, in, 1));
        return;
    case 0xb8: case 0xb9: case 0xba: case 0xbb: case 0xbc: case 0xbd: case 0xbe: case 0xbf:
        reg_set(cpu, (op & 7) | ((in->rex & 1) << 3), in->opsize, 0, fetch_imm(cpu, in, in->opsize));
        return;
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        exec_shift_group(cpu, in, op);
        return;
    case 0xc2: case 0xc3: {
        size = stack_opsize(cpu, in);
        uint64_t extra = op == 0xc2 ? fetch_imm(cpu, in, 2) : 0;
        uint64_t target = mem_read(cpu, INTERP_SS, cpu->gpr[INTERP_RSP] & stack_mask(cpu), size);
        in->opsize = size;
        jump_to(cpu, in, target);
        reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, cpu->gpr[INTERP_RSP] + size + extra);
        return;
    }
    case 0xc4: case 0xc5:
        /* VEX prefixes in 64-bit mode; elsewhere LES/LDS unless the next byte has mod = 11
         * (a register operand, which LES/LDS cannot have). */
        if (!P(cpu)->code64) {
            if (unlikely(in->p >= in->end))
                fetch_past_end(cpu, in);
            if (in->p[0] < 0xc0) {
                exec_les(cpu, in, op == 0xc4 ? INTERP_ES : INTERP_DS);
                return;
            }
        }
        vex_exec(cpu, in, op);
        return;
    case 0xc6: case 0xc7:
        size = (op & 1) ? in->opsize : 1;
        decode_modrm(cpu, in);
        if ((in->reg & 7) != 0)
            RAISE_UD(cpu);
        rm_write(cpu, in, size, fetch_simm(cpu, in, size == 8 ? 4 : size));
        return;
    case 0xc8: exec_enter(cpu, in); return;
    case 0xc9:
        size = stack_opsize(cpu, in);
        a = mem_read(cpu, INTERP_SS, cpu->gpr[INTERP_RBP] & stack_mask(cpu), size);
        reg_set(cpu, INTERP_RSP, P(cpu)->stack_size, 0, cpu->gpr[INTERP_RBP] + size);
        reg_set(cpu, INTERP_RBP, size, 0, a);
        return;
    case 0xca: case 0xcb:
        b = op == 0xca ? fetch_imm(cpu, in, 2) : 0;
        far_return(cpu, in->opsize, b);
        in->jumped = 1;
        return;
    case 0xcc: exec_int(cpu, in, EXC_BP, EV_SOFTINT); return;
    case 0xcd: exec_int(cpu, in, fetch_imm(cpu, in, 1), EV_SOFTINT); return;
    case 0xce:
        invalid_in_64(cpu);
        if (flags_get_of(cpu))
            exec_int(cpu, in, EXC_OF, EV_SOFTINT);
        return;
    case 0xcf:
        do_iret(cpu, in->opsize);
        in->jumped = 1;
        return;
    case 0xd7:                                           /* xlat */
        a = (cpu->gpr[INTERP_RBX] + (cpu->gpr[INTERP_RAX] & 0xff)) & size_mask(in->addrsize);
        reg_set(cpu, INTERP_RAX, 1, 0, mem_read(cpu, in->seg >= 0 ? in->seg : INTERP_DS, a, 1));
        return;
    case 0xd8: case 0xd9: case 0xda: case 0xdb: case 0xdc: case 0xdd: case 0xde: case 0xdf:
        x87_exec(cpu, in, op);
        return;
    case 0xe0: case 0xe1: case 0xe2: case 0xe3:
        exec_loop(cpu, in, op);
        return;
    case 0xe4: case 0xe5: case 0xe6: case 0xe7: case 0xec: case 0xed: case 0xee: case 0xef:
        exec_in_out(cpu, in, op);
        return;
    case 0xe8: {
        int64_t rel = sext(fetch_imm(cpu, in, in->opsize == 2 ? 2 : 4), in->opsize == 2 ? 2 : 4);
        uint64_t ret = next_rip(cpu, in);
        size = stack_opsize(cpu, in);
        uint64_t old_rip = cpu->rip;
        jump_to(cpu, in, ret + rel);
        uint64_t target = cpu->rip;
        cpu->rip = old_rip;                              /* push may fault */
        push(cpu, ret, size);
        cpu->rip = target;
        return;
    }
    case 0xe9:
        a = fetch_simm(cpu, in, in->opsize == 2 ? 2 : 4);
        jump_to(cpu, in, next_rip(cpu, in) + a);
        return;
    case 0xea: {
        invalid_in_64(cpu);
        uint64_t off = fetch_imm(cpu, in, in->opsize);
        uint16_t sel = fetch_imm(cpu, in, 2);
        far_jump(cpu, sel, off, 0, in->opsize, 0);
        in->jumped = 1;
        return;
    }
    case 0xeb:
        a = fetch_simm(cpu, in, 1);
        jump_to(cpu, in, next_rip(cpu, in) + a);
        return;
    case 0xf1: exec_int(cpu, in, EXC_DB, EV_NMI); return;   /* icebp: no gate DPL check */
    case 0xf4:
        require_cpl0(cpu);
        cpu->halted = 1;
        P(cpu)->attention = 1;
        return;
    case 0xf5: flags_set(cpu, FL_CF, flags_get_cf(cpu) ? 0 : FL_CF); return;
    case 0xf6: case 0xf7: exec_group3(cpu, in, op); return;
    case 0xf8: flags_set(cpu, FL_CF, 0); return;
    case 0xf9: flags_set(cpu, FL_CF, FL_CF); return;
    case 0xfa: exec_cli_sti(cpu, 0); return;
    case 0xfb: exec_cli_sti(cpu, 1); return;
    case 0xfc: cpu->rflags &= ~FL_DF; return;
    case 0xfd: cpu->rflags |= FL_DF; return;
    case 0xfe: case 0xff: exec_group5(cpu, in, op); return;
    case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x62: case 0xd4: case 0xd5:
        invalid_in_64(cpu);
        raise_unimplemented(cpu);                        /* BCD adjust, bound */
    default:
        RAISE_UD(cpu);                                   /* d6 and the rest */
    }
}

/* LOCK is allowed only on the read-modify-write instructions below, with a memory
 * destination; with anything else the instruction raises #UD before touching an operand. */
static int lock_allowed(const struct insn *in, uint8_t op)
{
    const uint8_t *p = in->p;
    uint8_t modrm;
    int sub;
    if (op == 0x0f) {
        if (p + 1 >= in->end)
            return 1;                      /* ModRM not in the window: the decoder will fault */
        modrm = p[1];
        sub = (modrm >> 3) & 7;
        switch (p[0]) {
        case 0xab: case 0xb3: case 0xbb:                    /* bts, btr, btc */
        case 0xb0: case 0xb1: case 0xc0: case 0xc1:         /* cmpxchg, xadd */
            break;
        case 0xba: if (sub < 5) return 0; break;            /* bts/btr/btc imm8, not bt */
        case 0xc7: if (sub != 1) return 0; break;           /* cmpxchg8b/16b */
        default: return 0;
        }
    } else {
        if (p >= in->end)
            return 1;
        modrm = p[0];
        sub = (modrm >> 3) & 7;
        switch (op) {
        case 0x00: case 0x01: case 0x08: case 0x09: case 0x10: case 0x11: case 0x18: case 0x19:
        case 0x20: case 0x21: case 0x28: case 0x29: case 0x30: case 0x31:   /* op Ex, Gx (not cmp) */
        case 0x86: case 0x87:                                               /* xchg */
            break;
        case 0x80: case 0x81: case 0x82: case 0x83: if (sub == 7) return 0; break;   /* not cmp */
        case 0xf6: case 0xf7: if (sub != 2 && sub != 3) return 0; break;            /* not, neg */
        case 0xfe: case 0xff: if (sub > 1) return 0; break;                         /* inc, dec */
        default: return 0;
        }
    }
    return (modrm >> 6) != 3;
}

/* Prefix bytes that end the fast path of exec_one: bit 0 legacy prefixes, bit 1 REX (a
 * prefix only in 64-bit mode). */
static const uint8_t prefix_class[256] = {
    [0x26] = 1, [0x2e] = 1, [0x36] = 1, [0x3e] = 1, [0x64] = 1, [0x65] = 1,
    [0x66] = 1, [0x67] = 1, [0xf0] = 1, [0xf2] = 1, [0xf3] = 1,
    [0x40] = 2, [0x41] = 2, [0x42] = 2, [0x43] = 2, [0x44] = 2, [0x45] = 2, [0x46] = 2, [0x47] = 2,
    [0x48] = 2, [0x49] = 2, [0x4a] = 2, [0x4b] = 2, [0x4c] = 2, [0x4d] = 2, [0x4e] = 2, [0x4f] = 2,
};

/* General prefix decoding, entered with the first byte `op` that is not a plain opcode
 * (in->rex already holds a REX byte that directly preceded it, if any).  Sets the operand
 * and address sizes and returns the opcode byte. */
static __attribute__((noinline)) uint8_t decode_prefixes(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    struct interp_priv_storage *p = P(cpu);
    int pfx67 = 0;
    for (;;) {
        if (likely(!is_legacy_prefix[op])) {
            if (p->code64 && (op & 0xf0) == 0x40) {
                in->rex = op;              /* REX counts only directly before the opcode */
                op = fetch8(cpu, in);
                continue;
            }
            break;
        }
        in->rex = 0;
        switch (op) {
        case 0x26: in->seg = INTERP_ES; break;
        case 0x2e: in->seg = INTERP_CS; break;
        case 0x36: in->seg = INTERP_SS; break;
        case 0x3e: in->seg = INTERP_DS; break;
        case 0x64: in->seg = INTERP_FS; break;
        case 0x65: in->seg = INTERP_GS; break;
        case 0x66: in->pfx66 = 1; break;
        case 0x67: pfx67 = 1; break;
        case 0xf0: in->lock = 1; break;
        default: in->rep = op; break;
        }
        op = fetch8(cpu, in);
    }
    if (p->code64) {
        in->opsize = (in->rex & 8) ? 8 : in->pfx66 ? 2 : 4;
        in->addrsize = pfx67 ? 4 : 8;
    } else {
        in->opsize = p->def_size ^ (in->pfx66 ? 6 : 0);
        in->addrsize = p->def_size ^ (pfx67 ? 6 : 0);
    }
    if (unlikely(in->lock) && !lock_allowed(in, op))
        RAISE_UD(cpu);
    return op;
}

/* Decode prefixes and execute one instruction at CS:RIP. */
static inline __attribute__((always_inline)) void exec_one_inline(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    struct insn in;
    uint64_t rip = cpu->rip;
    int code64 = p->code64;
    p->insn_rip = rip;
    uint64_t la = code64 ? rip : (cpu->seg[INTERP_CS].base + rip) & 0xffffffffULL;

    if (likely((la >> 12) == p->fetch_vpn && (la & 0xfff) <= 4096 - 15 &&
               (code64 || rip + 14 <= cpu->seg[INTERP_CS].limit))) {
        in.start = in.p = p->fetch_host + (la & 0xfff);
        in.end = in.p + 15;
    } else {
        fetch_slow(cpu, &in, la);
    }
    in.rex = 0;
    in.rep = 0;
    in.pfx66 = 0;
    in.lock = 0;
    in.seg = -1;
    in.jumped = 0;
    in.retry = 0;
    in.atomic_host = NULL;
    in.vex = 0;
    uint8_t op = fetch8(cpu, &in);
    unsigned pmask = code64 ? 3 : 1;
    if (code64 && prefix_class[op] == 2) {
        in.rex = op;                       /* the common single REX prefix */
        op = fetch8(cpu, &in);
    }
    if (likely(!(prefix_class[op] & pmask))) {
        if (code64) {
            in.opsize = (in.rex & 8) ? 8 : 4;
            in.addrsize = 8;
        } else {
            in.opsize = in.addrsize = p->def_size;
        }
    } else {
        op = decode_prefixes(cpu, &in, op);
    }
    /* The most frequent instructions skip the big opcode switch. */
    if ((op & 0xf0) == 0x70) {
        exec_jcc8(cpu, &in, op);
    } else if (op == 0xff && in.p < in.end && in.p[0] >= 0xc0 && (in.p[0] & 0x30) == 0) {
        uint8_t m = *in.p++;                 /* inc/dec r16/32/64 */
        int r = (m & 7) | ((in.rex & 1) << 3);
        uint64_t res;
        inc_dec(cpu, (m >> 3) & 1, cpu->gpr[r], in.opsize, &res);
        reg_set(cpu, r, in.opsize, 0, res);
    } else {
        exec_onebyte(cpu, &in, op);
    }
    if (unlikely(in.retry))
        return;                            /* lost a locked race: execute it again */
    if (!in.jumped)
        cpu->rip = next_rip(cpu, &in);
    cpu->insn_count++;
}

void exec_one(struct interp_cpu *cpu)
{
    exec_one_inline(cpu);
}

/* Execute instructions until insn_count reaches chunk_end or something needs attention. */
void exec_chunk(struct interp_cpu *cpu, uint64_t chunk_end)
{
    struct interp_priv_storage *p = P(cpu);
    do {
        exec_one_inline(cpu);
    } while (cpu->insn_count < chunk_end && !p->attention);
}

/* The linear address of the next instruction, as a debugger's breakpoints name it. */
static uint64_t code_linear(struct interp_cpu *cpu)
{
    if (P(cpu)->code64)
        return cpu->rip;
    return (cpu->seg[INTERP_CS].base + cpu->rip) & 0xffffffffULL;
}

/* exec_chunk for a run with INTERP_RUN_BREAKPOINTS: before each instruction, stop if its
 * address is a breakpoint (a separate loop, so runs without a debugger pay nothing). */
void exec_chunk_breakpoints(struct interp_cpu *cpu, uint64_t chunk_end)
{
    struct interp_priv_storage *p = P(cpu);
    do {
        uint64_t la = code_linear(cpu);
        for (uint32_t i = 0; i < cpu->nbreakpoints; i++) {
            if (cpu->breakpoints[i] == la) {
                p->stop = INTERP_STOP_BREAKPOINT;
                return;
            }
        }
        exec_one_inline(cpu);
    } while (cpu->insn_count < chunk_end && !p->attention);
}
