/* MMX: the 64-bit integer SIMD forms (0F map, no mandatory prefix) on MM0-MM7, SSE's additions
 * to them (pshufw, pinsrw, pextrw, pmovmskb, movntq, maskmovq, pavg, pmin/pmax, psadbw,
 * pmulhuw), the conversions between MMX and XMM registers (cvtpi2ps and friends, movq2dq,
 * movdq2q).
 *
 * The registers live in the x87 state (x87.c's x87_mm_* and x87_mmx_enter). The arithmetic is
 * sse.c's: an element-wise operation runs on the low half of an XMM value, and the ones whose
 * result depends on the register width are arranged so that the XMM form gives the 64-bit
 * answer (the unpack-high ops on the high halves, the packs on both operands side by side).
 * SSSE3's MMX forms (0F 38, 0F 3A 0F) are here too, reached from sse4.c's decoders. */
#include "sse.h"

/* The 0F opcodes with an MMX form (without a prefix). */
int mmx_opcode(uint8_t op)
{
    return (op >= 0x60 && op <= 0x76) || op == 0x7e || op == 0x7f ||
           op == 0xc4 || op == 0xc5 || (op >= 0xd1 && op != 0xd6 && op != 0xe6 && op != 0xf0 && op != 0xff);
}

static uint64_t packed(uint8_t op, uint64_t a, uint64_t b)
{
    xmm_t x = {.q = {a, 0}}, y = {.q = {b, 0}};
    if (op >= 0x68 && op <= 0x6a) {              /* unpack high: the low form on the high halves */
        x.q[0] = a >> 32;
        y.q[0] = b >> 32;
        op -= 8;
    } else if (op == 0x63 || op == 0x67 || op == 0x6b) {
        x.q[1] = b;                              /* packs: both operands saturated in one go */
    }
    packed_int(op, &x, &x, &y);
    return x.q[0];
}

static uint64_t shifted(uint64_t v, int kind, int esize, uint64_t count)
{
    xmm_t x = {.q = {v, 0}};
    sse_shift_elems(&x, kind, esize, count);
    return x.q[0];
}

/* The mm/m64 source operand. */
static uint64_t source(struct interp_cpu *cpu, struct insn *in)
{
    return in->mod == 3 ? x87_mm_get(cpu, in->rm & 7) : mem_read(cpu, in->easeg, in->ea, 8);
}

static void shift_immediate(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    static const int8_t kinds[8] = {-1, -1, 0, -1, 1, -1, 2, -1};   /* /2 srl, /4 sra, /6 sll */
    unsigned imm = fetch_imm(cpu, in, 1);
    int kind = kinds[in->reg & 7];
    if (in->mod != 3 || kind < 0 || (op == 0x73 && kind == 1))
        RAISE_UD(cpu);
    uint64_t v = x87_mm_get(cpu, in->rm & 7);
    x87_mmx_enter(cpu);
    x87_mm_put(cpu, in->rm & 7, shifted(v, kind, op == 0x71 ? 2 : op == 0x72 ? 4 : 8, imm));
}

/* maskmovq: the bytes of mm whose mask byte has its top bit set, to DS:rDI. */
static void maskmovq(struct interp_cpu *cpu, struct insn *in)
{
    if (in->mod != 3)
        RAISE_UD(cpu);
    uint64_t data = x87_mm_get(cpu, in->reg & 7), mask = x87_mm_get(cpu, in->rm & 7);
    sse_masked_store(cpu, in, (const uint8_t *)&data, (const uint8_t *)&mask, 8);
    x87_mmx_enter(cpu);
}

void mmx_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    x87_mmx_check(cpu);
    int dst = in->reg & 7;
    uint64_t a = x87_mm_get(cpu, dst), r;
    switch (op) {
    case 0x6e:                                   /* movd/movq mm, r/m32/64 */
        r = rm_read(cpu, in, (in->rex & 8) ? 8 : 4);
        break;
    case 0x6f:                                   /* movq mm, mm/m64 */
        r = source(cpu, in);
        break;
    case 0x70: {                                 /* pshufw */
        uint64_t b = source(cpu, in);
        unsigned imm = fetch_imm(cpu, in, 1);
        r = 0;
        for (int i = 0; i < 4; i++)
            r |= (b >> (16 * (imm >> (2 * i) & 3)) & 0xffff) << (16 * i);
        break;
    }
    case 0x71: case 0x72: case 0x73:
        shift_immediate(cpu, in, op);
        return;
    case 0x7e:                                   /* movd/movq r/m32/64, mm */
        rm_write(cpu, in, (in->rex & 8) ? 8 : 4, a);
        x87_mmx_enter(cpu);
        return;
    case 0x7f:                                   /* movq mm/m64, mm */
    case 0xe7:                                   /* movntq m64, mm */
        if (in->mod == 3 && op == 0xe7)
            RAISE_UD(cpu);
        if (in->mod != 3)
            mem_write(cpu, in->easeg, in->ea, 8, a);
        x87_mmx_enter(cpu);
        if (in->mod == 3)
            x87_mm_put(cpu, in->rm & 7, a);
        return;
    case 0xc4: {                                 /* pinsrw mm, r32/m16, imm8 */
        uint64_t v = rm_read(cpu, in, 2);
        unsigned shift = 16 * (fetch_imm(cpu, in, 1) & 3);
        r = (a & ~(0xffffULL << shift)) | v << shift;
        break;
    }
    case 0xc5: case 0xd7: {                      /* pextrw r32, mm, imm8; pmovmskb r32, mm */
        if (in->mod != 3)
            RAISE_UD(cpu);
        uint64_t b = x87_mm_get(cpu, in->rm & 7), v = 0;
        if (op == 0xc5) {
            v = b >> (16 * (fetch_imm(cpu, in, 1) & 3)) & 0xffff;
        } else {
            for (int i = 0; i < 8; i++)
                v |= (b >> (8 * i + 7) & 1) << i;
        }
        x87_mmx_enter(cpu);
        reg_set(cpu, in->reg, 4, 0, v);
        return;
    }
    case 0xd1: case 0xd2: case 0xd3: case 0xe1: case 0xe2: case 0xf1: case 0xf2: case 0xf3: {
        uint64_t count = source(cpu, in);
        int esize = (op & 3) == 1 ? 2 : (op & 3) == 2 ? 4 : 8;
        r = shifted(a, op >= 0xf1 ? 2 : op >= 0xe1 ? 1 : 0, esize, count);
        break;
    }
    case 0xf7:
        maskmovq(cpu, in);
        return;
    case 0x6c: case 0x6d: case 0xd6: case 0xe6: case 0xff:
        RAISE_UD(cpu);
    case 0x60: case 0x61: case 0x62:             /* punpckl*: an m32 source */
        r = packed(op, a, in->mod == 3 ? x87_mm_get(cpu, in->rm & 7) : mem_read(cpu, in->easeg, in->ea, 4));
        break;
    default:
        r = packed(op, a, source(cpu, in));
        break;
    }
    x87_mmx_enter(cpu);
    x87_mm_put(cpu, dst, r);
}

/* The conversions between MMX and XMM registers: cvtpi2ps/pd (0F/66 0F 2A), cvt(t)ps2pi and
 * cvt(t)pd2pi (0F/66 0F 2D/2C), movq2dq (F3 0F D6), movdq2q (F2 0F D6).  Each makes the MMX
 * transition, except cvtpi2pd from memory (which reads no MMX register). */
void mmx_sse_convert(struct interp_cpu *cpu, struct insn *in, uint8_t op, int pfx)
{
    xmm_t a, b, r;
    int from_mm = op == 0x2a || (op == 0xd6 && pfx == PFX_F3);
    if (op == 0xd6 && in->mod != 3)
        RAISE_UD(cpu);
    if (!(op == 0x2a && pfx == PFX_66 && in->mod != 3))
        x87_mmx_check(cpu);
    if (from_mm) {
        memset(&b, 0, 16);
        b.q[0] = source(cpu, in);
        xmm_get(cpu, in->reg, &a);
        if (op == 0xd6) {                        /* movq2dq */
            a = b;
        } else {
            r = b;
            sse_fp(cpu, pfx == PFX_66 ? FPOP_CVTDQ2PD : FPOP_CVTDQ2PS, 0, &r, &b);
            if (pfx == PFX_66)
                a = r;
            else
                a.q[0] = r.q[0];
        }
        if (!(op == 0x2a && pfx == PFX_66 && in->mod != 3))
            x87_mmx_enter(cpu);
        xmm_put(cpu, in->reg, &a);
        return;
    }
    if (op == 0xd6) {                            /* movdq2q */
        xmm_get(cpu, in->rm, &b);
        r = b;
    } else {
        if (pfx == PFX_66)
            src128(cpu, in, &b, 0);
        else
            src_low(cpu, in, &b, 8);
        if (pfx != PFX_66)
            b.q[1] = 0;                          /* only two singles: the other lanes convert 0 */
        r = b;
        static const int fops[2][2] = {{FPOP_CVTPS2DQ, FPOP_CVTTPS2DQ}, {FPOP_CVTPD2DQ, FPOP_CVTTPD2DQ}};
        sse_fp(cpu, fops[pfx == PFX_66][op == 0x2c], 0, &r, &b);
    }
    x87_mmx_enter(cpu);
    x87_mm_put(cpu, in->reg & 7, r.q[0]);
}

/* SSSE3's MMX forms (0F 38 00-0B, 1C-1E; ModRM decoded): sse4.c's cores on the low halves,
 * the horizontal ones with both operands side by side in one XMM value (so the four results
 * are the 64-bit answer), pshufb with the 3-bit indices of an 8-byte table. */
void mmx_ssse3(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    x87_mmx_check(cpu);
    int dst = in->reg & 7;
    uint64_t a = x87_mm_get(cpu, dst), b = source(cpu, in), r = 0;
    if (op == 0x00) {                            /* pshufb */
        for (int i = 0; i < 8; i++) {
            unsigned index = b >> (8 * i) & 0xff;
            if (!(index & 0x80))
                r |= (a >> (8 * (index & 7)) & 0xff) << (8 * i);
        }
    } else {
        xmm_t x = {.q = {a, 0}}, y = {.q = {b, 0}}, out;
        if (op <= 0x07 && op != 0x04)            /* phadd / phsub: a's pairs, then b's */
            x.q[1] = b;
        sse_core_0f38(op, &out, &x, &y, &y);
        r = out.q[0];
    }
    x87_mmx_enter(cpu);
    x87_mm_put(cpu, dst, r);
}

/* palignr mm, mm/m64, imm8 (0F 3A 0F; ModRM and imm8 decoded): dst:src shifted right by imm8
 * bytes, the low 8 of them. */
void mmx_palignr(struct interp_cpu *cpu, struct insn *in, unsigned imm)
{
    x87_mmx_check(cpu);
    int dst = in->reg & 7;
    uint64_t a = x87_mm_get(cpu, dst), b = source(cpu, in), r;
    if (imm >= 16)
        r = 0;
    else if (imm >= 8)
        r = imm == 8 ? a : a >> (8 * (imm - 8));
    else
        r = imm == 0 ? b : b >> (8 * imm) | a << (64 - 8 * imm);
    x87_mmx_enter(cpu);
    x87_mm_put(cpu, dst, r);
}
