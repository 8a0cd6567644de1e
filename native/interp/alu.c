/* Integer ALU: the eight classic binary operations, shifts and rotates, double shifts,
 * multiply and divide, with the flags each one defines.
 *
 * Undefined flags (documented choice, not compared by the tests):
 *  - shifts/rotates: AF is cleared by SHL/SHR/SAR with a non-zero count; OF is computed with
 *    the count-1 formula for every non-zero count;
 *  - MUL/IMUL: SF, ZF, PF follow the low half of the result, AF is cleared;
 *  - DIV/IDIV: all arithmetic flags are left unchanged. */
#include "interp.h"

/* op: 0 add, 1 or, 2 adc, 3 sbb, 4 and, 5 sub, 6 xor, 7 cmp (the ModRM /reg numbering). */
uint64_t alu_binop(struct interp_cpu *cpu, int op, uint64_t a, uint64_t b, int size)
{
    uint64_t r, cin;
    switch (op) {
    case 0: r = a + b; lazy_set(cpu, LF_ADD, r, a, b, size); break;
    case 1: r = a | b; lazy_set(cpu, LF_LOGIC, r, a, b, size); break;
    case 2:
        cin = flags_get_cf(cpu);
        r = a + b + cin;
        lazy_set(cpu, LF_ADC, r, a, b, size);
        P(cpu)->lf_cin = cin;
        break;
    case 3:
        cin = flags_get_cf(cpu);
        r = a - b - cin;
        lazy_set(cpu, LF_SBB, r, a, b, size);
        P(cpu)->lf_cin = cin;
        break;
    case 4: r = a & b; lazy_set(cpu, LF_LOGIC, r, a, b, size); break;
    case 6: r = a ^ b; lazy_set(cpu, LF_LOGIC, r, a, b, size); break;
    default: r = a - b; lazy_set(cpu, LF_SUB, r, a, b, size); break;   /* sub, cmp */
    }
    return r & size_mask(size);
}

/* op: 0 rol, 1 ror, 2 rcl, 3 rcr, 4 shl, 5 shr, 6 sal (= shl), 7 sar. */
uint64_t alu_shift(struct interp_cpu *cpu, int op, uint64_t a, unsigned count, int size)
{
    int bits = 8 * size;
    uint64_t mask = size_mask(size);
    uint64_t msb = 1ULL << (bits - 1);
    uint64_t r, cf, of;

    a &= mask;
    count &= size == 8 ? 63 : 31;
    if (count == 0)
        return a;
    switch (op) {
    case 0: {                                              /* ROL */
        unsigned c = count % bits;
        r = c ? ((a << c) | (a >> (bits - c))) & mask : a;
        cf = r & 1;
        of = ((r & msb) != 0) ^ cf;
        flags_set(cpu, FL_CF | FL_OF, (cf ? FL_CF : 0) | (of ? FL_OF : 0));
        return r;
    }
    case 1: {                                              /* ROR */
        unsigned c = count % bits;
        r = c ? ((a >> c) | (a << (bits - c))) & mask : a;
        cf = (r & msb) != 0;
        of = cf ^ ((r & (msb >> 1)) != 0);
        flags_set(cpu, FL_CF | FL_OF, (cf ? FL_CF : 0) | (of ? FL_OF : 0));
        return r;
    }
    case 2: case 3: {                                      /* RCL, RCR: rotate through CF */
        unsigned c = count % (bits + 1);
        cf = flags_get_cf(cpu);
        r = a;
        of = ((a & msb) != 0) ^ cf;                       /* RCR: from the operand before */
        for (unsigned i = 0; i < c; i++) {
            uint64_t out;
            if (op == 2) {
                out = (r & msb) != 0;
                r = ((r << 1) | cf) & mask;
            } else {
                out = r & 1;
                r = (r >> 1) | (cf ? msb : 0);
            }
            cf = out;
        }
        if (op == 2)
            of = ((r & msb) != 0) ^ cf;
        flags_set(cpu, FL_CF | FL_OF, (cf ? FL_CF : 0) | (of ? FL_OF : 0));
        return r;
    }
    case 4: case 6:                                        /* SHL */
        r = count >= 64 ? 0 : (a << count) & mask;
        cf = count <= (unsigned)bits ? (a >> (bits - count)) & 1 : 0;
        of = ((r & msb) != 0) ^ cf;
        break;
    case 5:                                                /* SHR */
        r = count >= 64 ? 0 : a >> count;
        cf = (a >> (count - 1)) & 1;
        of = (a & msb) != 0;
        if (count != 1) of = 0;
        break;
    default: {                                             /* SAR */
        int64_t s = sext(a, size);
        unsigned c = count >= (unsigned)bits ? (unsigned)bits - 1 : count;
        r = (uint64_t)(s >> c) & mask;
        cf = (count >= (unsigned)bits) ? (uint64_t)(s < 0) : (uint64_t)((s >> (count - 1)) & 1);
        of = 0;
        break;
    }
    }
    flags_set(cpu, FL_ARITH, flags_szp(r, size) | (cf ? FL_CF : 0) | (of ? FL_OF : 0));
    return r;
}

/* SHLD (right = 0) / SHRD (right = 1): shift dst, filling from src. */
uint64_t alu_shld(struct interp_cpu *cpu, uint64_t dst, uint64_t src, unsigned count, int size, int right)
{
    int bits = 8 * size;
    uint64_t mask = size_mask(size);
    uint64_t msb = 1ULL << (bits - 1);
    uint64_t r, cf;

    dst &= mask;
    src &= mask;
    count &= size == 8 ? 63 : 31;
    if (count == 0)
        return dst;
    if (size == 2 && count > 16) {
        /* Undefined; behave like a 32-bit double shift of dst:src and keep 16 bits. */
        uint64_t wide = right ? (src << 16) | dst : (dst << 16) | src;
        uint64_t full = right ? ((wide >> count) | (dst << (32 - count))) : (wide << count) >> 16;
        r = full & mask;
        cf = right ? (wide >> (count - 1)) & 1 : (wide >> (32 - count)) & 1;
    } else if (right) {
        /* count == bits (16-bit operands only) shifts all of dst out: the result is src */
        r = ((count < (unsigned)bits ? dst >> count : 0) | (src << (bits - count))) & mask;
        cf = (dst >> (count - 1)) & 1;
    } else {
        r = ((count < (unsigned)bits ? dst << count : 0) | (src >> (bits - count))) & mask;
        cf = (dst >> (bits - count)) & 1;
    }
    uint64_t of = ((r ^ dst) & msb) != 0;
    flags_set(cpu, FL_ARITH, flags_szp(r, size) | (cf ? FL_CF : 0) | (of ? FL_OF : 0));
    return r;
}

static void mul_flags(struct interp_cpu *cpu, int overflow, uint64_t low, int size)
{
    flags_set(cpu, FL_ARITH, flags_szp(low, size) | (overflow ? FL_CF | FL_OF : 0));
}

/* MUL / IMUL with one operand: rDX:rAX = rAX * src (AX = AL * src for bytes). */
void alu_mul(struct interp_cpu *cpu, int sign, int size, uint64_t src)
{
    uint64_t *rax = &cpu->gpr[INTERP_RAX];
    if (size == 8) {
        __int128 sp;
        unsigned __int128 up;
        uint64_t lo, hi;
        int ovf;
        if (sign) {
            sp = (__int128)(int64_t)*rax * (int64_t)src;
            lo = (uint64_t)sp;
            hi = (uint64_t)(sp >> 64);
            ovf = sp != (__int128)(int64_t)lo;
        } else {
            up = (unsigned __int128)*rax * src;
            lo = (uint64_t)up;
            hi = (uint64_t)(up >> 64);
            ovf = hi != 0;
        }
        *rax = lo;
        cpu->gpr[INTERP_RDX] = hi;
        mul_flags(cpu, ovf, lo, 8);
        return;
    }
    int bits = 8 * size;
    uint64_t a = *rax & size_mask(size);
    uint64_t prod;
    int ovf;
    if (sign) {
        int64_t p = sext(a, size) * sext(src, size);
        prod = (uint64_t)p;
        ovf = p != sext(prod & size_mask(size), size);
    } else {
        prod = a * (src & size_mask(size));
        ovf = (prod >> bits) != 0;
    }
    if (size == 1) {
        reg_set(cpu, INTERP_RAX, 2, 0, prod);
    } else {
        reg_set(cpu, INTERP_RAX, size, 0, prod);
        reg_set(cpu, INTERP_RDX, size, 0, prod >> bits);
    }
    mul_flags(cpu, ovf, prod, size);
}

/* Two- and three-operand IMUL: the truncated signed product. */
uint64_t alu_imul2(struct interp_cpu *cpu, uint64_t a, uint64_t b, int size)
{
    __int128 p = (__int128)sext(a, size) * sext(b, size);
    uint64_t r = (uint64_t)p & size_mask(size);
    int ovf = p != (__int128)sext(r, size);
    mul_flags(cpu, ovf, r, size);
    return r;
}

/* DIV / IDIV: rAX = rDX:rAX / src, rDX = remainder; #DE on zero or a quotient too wide. */
void alu_div(struct interp_cpu *cpu, int sign, int size, uint64_t src)
{
    int bits = 8 * size;
    uint64_t mask = size_mask(size);
    src &= mask;
    if (src == 0)
        raise_exc(cpu, EXC_DE, 0, 0);
    unsigned __int128 dividend;
    if (size == 1)
        dividend = cpu->gpr[INTERP_RAX] & 0xffff;
    else
        dividend = ((unsigned __int128)(cpu->gpr[INTERP_RDX] & mask) << bits) | (cpu->gpr[INTERP_RAX] & mask);
    uint64_t q, r;
    if (sign) {
        /* Sign-extend the 2*bits dividend to 128 bits. */
        int shift = 128 - 2 * bits;
        __int128 sd = (__int128)(dividend << shift) >> shift;
        __int128 sv = sext(src, size);
        __int128 sq, sr;
        if (sv == -1) {                 /* avoid the host's INT128_MIN / -1 overflow */
            if (sd == (__int128)((unsigned __int128)1 << 127))
                raise_exc(cpu, EXC_DE, 0, 0);
            sq = -sd;
            sr = 0;
        } else {
            sq = sd / sv;
            sr = sd % sv;
        }
        __int128 lim = (__int128)1 << (bits - 1);
        if (sq >= lim || sq < -lim)
            raise_exc(cpu, EXC_DE, 0, 0);
        q = (uint64_t)sq;
        r = (uint64_t)sr;
    } else {
        unsigned __int128 uq = dividend / src;
        if (uq >> bits)
            raise_exc(cpu, EXC_DE, 0, 0);
        q = (uint64_t)uq;
        r = (uint64_t)(dividend % src);
    }
    if (size == 1) {
        reg_set(cpu, INTERP_RAX, 2, 0, (q & 0xff) | ((r & 0xff) << 8));
    } else {
        reg_set(cpu, INTERP_RAX, size, 0, q);
        reg_set(cpu, INTERP_RDX, size, 0, r);
    }
}
