/* The x87 FPU: the escape opcodes D8-DF and FWAIT.
 *
 * The arithmetic runs on the host's own x87 unit.  For each computing instruction the guest's
 * x87 state (its part of the FXSAVE image in cpu->fxsave) is loaded into the host FPU with
 * FXRSTOR, the guest's own encoding executes once -- a memory operand redirected to a host
 * buffer -- and FXSAVE reads the state back.  Results, rounding under the guest's precision
 * and rounding control, exception flags, C0-C3, tags and stack movement are then the CPU's
 * own, bit for bit, the transcendental instructions included (the SDM only bounds their
 * error, so no soft-float could match the hardware exactly).  The price is that the
 * interpreter needs an x86-64 host, which kvmpy has wherever it runs.
 *
 * The interpreter itself owns everything around the arithmetic: which encodings exist
 * (reserved ones raise #UD and never reach the host), #NM and #MF, memory operands (read
 * before, written after, faults raised before any state changes, no store when an unmasked
 * exception suppresses it), FIP/FDP/FOP, and the control and environment instructions
 * (FLDCW, FNSTCW, FNSTSW, FNCLEX, FNINIT, FNSTENV, FLDENV, FNSAVE, FRSTOR), which move the
 * state's layout around rather than compute.  FCS and FDS read as 0 (CPUID.7:EBX[13]).
 *
 * A pending unmasked exception raises #MF at the next waiting instruction whatever CR0.NE
 * says: the legacy FERR#/IRQ 13 reporting of CR0.NE = 0 is not modelled. */
#include "interp.h"

#if !defined(__x86_64__)
#error "the interpreter's x87 runs on the host's x87 unit: build it on an x86-64 host"
#endif

#define FX_FCW 0
#define FX_FSW 2
#define FX_FTW 4
#define FX_FOP 6
#define FX_FIP 8
#define FX_FDP 16
#define FX_ST0 32
#define FX_X87_END 160          /* the x87 part of the image ends where XMM0 begins */

#define FSW_EXCEPTIONS 0x3f     /* IE DE ZE OE UE PE */
#define FSW_SF 0x40
#define FSW_ES 0x80
#define FSW_B 0x8000
#define FSW_TOP_SHIFT 11
#define FSW_SUPPRESSES_STORE 0x1f   /* unmasked IE DE ZE OE UE leave a memory destination alone */
#define FCW_INIT 0x37f
#define FCW_RESERVED_ONE 0x40
#define TAG_VALID 0
#define TAG_ZERO 1
#define TAG_SPECIAL 2
#define TAG_EMPTY 3

/* ---- the host x87 unit ------------------------------------------------------------------
 * One stub per encoding, 32 bytes apart: stubs 0-511 are the register forms D8 C0 .. DF FF,
 * stubs 512-575 the memory forms D8 /0 .. DF /7 addressing [rsi].  Each loads the state at
 * [rdi] (FXRSTOR), the arithmetic flags from rdx (FCMOVcc reads them), runs the instruction,
 * returns the flags (FCOMI writes them), stores the state back (FXSAVE, which like FNSAVE
 * does not wait for a pending exception) and leaves the host FPU initialised, as the ABI
 * expects it (FNINIT, which also drops whatever exception the instruction left pending). */
#define STUB_STRIDE 32
#define STUB_MEMORY_BASE 512

__asm__(
    ".pushsection .text\n"
    ".globl kvmpy_x87_stubs\n"
    ".hidden kvmpy_x87_stubs\n"
    ".p2align 5\n"
    "kvmpy_x87_stubs:\n"
    ".set kvmpy_x87_i, 0\n"
    ".rept 576\n"
    ".p2align 5\n"
    "fxrstor64 (%rdi)\n"
    "push %rdx\n"
    "popfq\n"
    ".if kvmpy_x87_i < 512\n"
    ".byte 0xd8 + (kvmpy_x87_i >> 6), 0xc0 + (kvmpy_x87_i & 63)\n"
    ".else\n"
    ".byte 0xd8 + ((kvmpy_x87_i - 512) >> 3), (((kvmpy_x87_i - 512) & 7) << 3) | 6\n"
    ".endif\n"
    "pushfq\n"
    "pop %rax\n"
    "fxsave64 (%rdi)\n"
    "fninit\n"
    "ret\n"
    ".set kvmpy_x87_i, kvmpy_x87_i + 1\n"
    ".endr\n"
    ".popsection\n");

extern const unsigned char kvmpy_x87_stubs[] __attribute__((visibility("hidden")));
typedef uint64_t (*x87_stub)(void *image, void *operand, uint64_t rflags);

/* Run stub `index` on the guest's x87 state; returns the arithmetic flags it left.  The host
 * keeps its own MXCSR: the image handed to FXRSTOR carries the host's, not the guest's. */
static uint64_t host_execute(struct interp_cpu *cpu, int index, void *operand)
{
    uint8_t image[512] __attribute__((aligned(16)));
    uint32_t host_mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(host_mxcsr));
    memcpy(image, cpu->fxsave, FX_X87_END);
    memcpy(image + FX_MXCSR, &host_mxcsr, 4);
    flags_materialize(cpu);
    uint64_t rflags_in = FL_FIXED1 | FL_IF | (cpu->rflags & FL_ARITH);
    x87_stub stub = (x87_stub)(uintptr_t)(kvmpy_x87_stubs + STUB_STRIDE * index);
    uint64_t rflags_out = stub(image, operand, rflags_in);
    memcpy(cpu->fxsave, image, FX_MXCSR);
    memcpy(cpu->fxsave + FX_ST0, image + FX_ST0, FX_X87_END - FX_ST0);
    return rflags_out & FL_ARITH;
}

/* ---- state helpers --------------------------------------------------------------------- */
static uint16_t fx_get16(struct interp_cpu *cpu, int off)
{
    uint16_t v;
    memcpy(&v, cpu->fxsave + off, 2);
    return v;
}

static void fx_put16(struct interp_cpu *cpu, int off, uint16_t v)
{
    memcpy(cpu->fxsave + off, &v, 2);
}

static uint64_t fx_get64(struct interp_cpu *cpu, int off)
{
    uint64_t v;
    memcpy(&v, cpu->fxsave + off, 8);
    return v;
}

static void fx_put64(struct interp_cpu *cpu, int off, uint64_t v)
{
    memcpy(cpu->fxsave + off, &v, 8);
}

/* The exceptions flagged in the status word that the control word does not mask. */
static unsigned unmasked_exceptions(struct interp_cpu *cpu)
{
    return fx_get16(cpu, FX_FSW) & ~fx_get16(cpu, FX_FCW) & FSW_EXCEPTIONS;
}

/* ES and B follow the flags and masks (after FLDCW, FLDENV, FRSTOR). */
static void update_summary_bits(struct interp_cpu *cpu)
{
    uint16_t fsw = fx_get16(cpu, FX_FSW) & ~(FSW_ES | FSW_B);
    if (unmasked_exceptions(cpu))
        fsw |= FSW_ES | FSW_B;
    fx_put16(cpu, FX_FSW, fsw);
}

/* FNINIT: control, status and tags to their initial values; the data registers keep their
 * contents (only empty now), as on the CPU. */
void x87_init(struct interp_cpu *cpu)
{
    fx_put16(cpu, FX_FCW, FCW_INIT);
    fx_put16(cpu, FX_FSW, 0);
    cpu->fxsave[FX_FTW] = 0;                    /* abridged tag: all registers empty */
    fx_put16(cpu, FX_FOP, 0);
    memset(cpu->fxsave + FX_FIP, 0, 16);
}

/* #NM for every x87 instruction; #MF too for the waiting ones. */
static void check_available(struct interp_cpu *cpu, int waiting)
{
    if (cpu->cr0 & (CR0_EM | CR0_TS))
        raise_exc(cpu, EXC_NM, 0, 0);
    if (waiting && unmasked_exceptions(cpu))
        raise_exc(cpu, EXC_MF, 0, 0);
}

void x87_fwait(struct interp_cpu *cpu)
{
    if ((cpu->cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
        raise_exc(cpu, EXC_NM, 0, 0);
    if (unmasked_exceptions(cpu))
        raise_exc(cpu, EXC_MF, 0, 0);
}

/* ---- MMX: the registers MM0-MM7 are the mantissas of the physical x87 registers R0-R7 ----
 * An MMX instruction checks like a waiting x87 one (#UD with CR0.EM, #NM with CR0.TS, #MF for a
 * pending exception); executing it makes TOP 0 and every register valid, and writing MMi sets
 * bits 79:64 of Ri to all ones (SDM Vol. 1 9.5). The FXSAVE image keeps ST(i), so with TOP = 0
 * slot i is Ri. */
void x87_mmx_check(struct interp_cpu *cpu)
{
    if (cpu->cr0 & CR0_EM)
        RAISE_UD(cpu);
    check_available(cpu, 1);
}

static int stack_top(struct interp_cpu *cpu)
{
    return fx_get16(cpu, FX_FSW) >> FSW_TOP_SHIFT & 7;
}

uint64_t x87_mm_get(struct interp_cpu *cpu, int mm)
{
    uint64_t v;
    memcpy(&v, cpu->fxsave + FX_ST0 + 16 * ((mm - stack_top(cpu)) & 7), 8);
    return v;
}

void x87_mmx_enter(struct interp_cpu *cpu)
{
    int top = stack_top(cpu);
    if (top) {
        uint8_t slots[128];
        for (int phys = 0; phys < 8; phys++)
            memcpy(slots + 16 * phys, cpu->fxsave + FX_ST0 + 16 * ((phys - top) & 7), 16);
        memcpy(cpu->fxsave + FX_ST0, slots, 128);
        fx_put16(cpu, FX_FSW, fx_get16(cpu, FX_FSW) & ~(7 << FSW_TOP_SHIFT));
    }
    cpu->fxsave[FX_FTW] = 0xff;
}

void x87_mm_put(struct interp_cpu *cpu, int mm, uint64_t v)
{
    uint8_t *slot = cpu->fxsave + FX_ST0 + 16 * mm;   /* after x87_mmx_enter: TOP is 0 */
    memcpy(slot, &v, 8);
    slot[8] = slot[9] = 0xff;
}

void x87_emms(struct interp_cpu *cpu)
{
    x87_mmx_check(cpu);
    cpu->fxsave[FX_FTW] = 0;
}

/* The full two-bit tag of physical register `phys`, from its contents (FNSTENV, FNSAVE). */
static int full_tag(struct interp_cpu *cpu, int phys)
{
    if (!(cpu->fxsave[FX_FTW] >> phys & 1))
        return TAG_EMPTY;
    const uint8_t *r = cpu->fxsave + FX_ST0 + 16 * ((phys - stack_top(cpu)) & 7);
    uint64_t mantissa;
    uint16_t exponent;
    memcpy(&mantissa, r, 8);
    memcpy(&exponent, r + 8, 2);
    exponent &= 0x7fff;
    if (exponent == 0x7fff)
        return TAG_SPECIAL;
    if (exponent == 0)
        return mantissa ? TAG_SPECIAL : TAG_ZERO;
    return mantissa >> 63 ? TAG_VALID : TAG_SPECIAL;
}

static uint16_t full_tag_word(struct interp_cpu *cpu)
{
    uint16_t ftw = 0;
    for (int phys = 0; phys < 8; phys++)
        ftw |= full_tag(cpu, phys) << (2 * phys);
    return ftw;
}

static uint8_t abridged_tag_word(uint16_t ftw)
{
    uint8_t tags = 0;
    for (int phys = 0; phys < 8; phys++)
        if ((ftw >> (2 * phys) & 3) != TAG_EMPTY)
            tags |= 1 << phys;
    return tags;
}

/* ---- the environment: FNSTENV / FLDENV and the first part of FNSAVE / FRSTOR ----------
 * 28 bytes with a 32-bit operand size, 14 with a 16-bit one; real and virtual-8086 mode keep
 * 20-bit linear pointers split around the opcode, protected and long mode offsets and
 * selectors (the selectors always 0 here). */
static int env_size(struct insn *in)
{
    return in->opsize == 2 ? 14 : 28;
}

static int env_real_format(struct interp_cpu *cpu)
{
    return !is_protected(cpu) || (cpu->rflags & FL_VM);
}

static void env_store(struct interp_cpu *cpu, struct insn *in, uint8_t *env)
{
    uint32_t fip = fx_get64(cpu, FX_FIP), fdp = fx_get64(cpu, FX_FDP);
    uint32_t fop = fx_get16(cpu, FX_FOP) & 0x7ff;
    uint32_t w[7] = {0xffff0000u | fx_get16(cpu, FX_FCW), 0xffff0000u | fx_get16(cpu, FX_FSW),
                     0xffff0000u | full_tag_word(cpu), 0, 0, 0, 0xffff0000u};
    int real = env_real_format(cpu);
    if (real) {
        fip += cpu->seg[INTERP_CS].base;
        w[3] = 0xffff0000u | (fip & 0xffff);
        w[4] = (fip >> 16 & 0xffff) << 12 | fop;
        w[5] = 0xffff0000u | (fdp & 0xffff);
        w[6] = (fdp >> 16 & 0xffff) << 12;
    } else {
        w[3] = fip;
        w[4] = fop << 16;
        w[5] = fdp;
    }
    if (in->opsize != 2) {
        memcpy(env, w, 28);
        return;
    }
    uint16_t h[7] = {w[0], w[1], w[2], w[3], real ? (uint16_t)((fip >> 16 & 0xf) << 12 | fop) : 0,
                     w[5], real ? (uint16_t)((fdp >> 16 & 0xf) << 12) : 0};
    memcpy(env, h, 14);
}

static void env_load(struct interp_cpu *cpu, struct insn *in, const uint8_t *env)
{
    uint32_t w[7];
    if (in->opsize == 2) {
        uint16_t h[7];
        memcpy(h, env, 14);
        for (int i = 0; i < 7; i++)
            w[i] = h[i];
    } else {
        memcpy(w, env, 28);
    }
    uint64_t fip, fdp;
    uint16_t fop;
    if (env_real_format(cpu)) {                 /* bits 19:16 (31:16) of each pointer sit at bit 12 */
        fip = ((w[4] >> 12 & 0xffff) << 16 | (w[3] & 0xffff)) - cpu->seg[INTERP_CS].base;
        fop = w[4] & 0x7ff;
        fdp = (w[6] >> 12 & 0xffff) << 16 | (w[5] & 0xffff);
    } else {
        fip = in->opsize == 2 ? (w[3] & 0xffff) : w[3];
        fop = in->opsize == 2 ? 0 : w[4] >> 16 & 0x7ff;
        fdp = in->opsize == 2 ? (w[5] & 0xffff) : w[5];
    }
    fx_put16(cpu, FX_FCW, (uint16_t)w[0]);
    fx_put16(cpu, FX_FSW, (uint16_t)w[1]);
    cpu->fxsave[FX_FTW] = abridged_tag_word((uint16_t)w[2]);
    fx_put16(cpu, FX_FOP, fop);
    fx_put64(cpu, FX_FIP, fip);
    fx_put64(cpu, FX_FDP, fdp);
    update_summary_bits(cpu);
}

/* A memory destination of `len` bytes, checked writable before anything changes. */
static uint64_t writable_operand(struct interp_cpu *cpu, struct insn *in, int len)
{
    uint64_t la = seg_linear(cpu, in->easeg, in->ea, len, ACC_W);
    uint8_t *h;
    translate(cpu, la, ACC_W, &h);
    if ((la & 0xfff) + len > 4096)
        translate(cpu, (la | 0xfff) + 1, ACC_W, &h);
    return la;
}

/* The memory of FNSTENV, FLDENV, FNSAVE or FRSTOR.  The CPU checks the last byte of the area
 * first: a fault on a page the area runs into reports that byte in CR2, not the page's first. */
static uint64_t environment_area(struct interp_cpu *cpu, struct insn *in, int len, int acc)
{
    uint64_t la = seg_linear(cpu, in->easeg, in->ea, len, acc);
    uint8_t *h;
    translate(cpu, la + len - 1, acc, &h);
    translate(cpu, la, acc, &h);
    return la;
}

static void fnstenv(struct interp_cpu *cpu, struct insn *in, int with_registers)
{
    int len = env_size(in);
    uint8_t buf[28 + 80];
    uint64_t la = environment_area(cpu, in, len + (with_registers ? 80 : 0), ACC_W);
    env_store(cpu, in, buf);
    if (with_registers)
        for (int i = 0; i < 8; i++)
            memcpy(buf + len + 10 * i, cpu->fxsave + FX_ST0 + 16 * i, 10);
    lin_write_buf(cpu, la, buf, len + (with_registers ? 80 : 0), 0);
    if (with_registers)
        x87_init(cpu);
    else                                        /* FNSTENV masks every exception */
        fx_put16(cpu, FX_FCW, fx_get16(cpu, FX_FCW) | FSW_EXCEPTIONS);
}

static void fldenv(struct interp_cpu *cpu, struct insn *in, int with_registers)
{
    int len = env_size(in);
    uint8_t buf[28 + 80];
    uint64_t la = environment_area(cpu, in, len + (with_registers ? 80 : 0), ACC_R);
    lin_read_buf(cpu, la, buf, len + (with_registers ? 80 : 0), 0);
    if (with_registers)
        for (int i = 0; i < 8; i++) {
            memcpy(cpu->fxsave + FX_ST0 + 16 * i, buf + len + 10 * i, 10);
            memset(cpu->fxsave + FX_ST0 + 16 * i + 10, 0, 6);
        }
    env_load(cpu, in, buf);
}

/* ---- which encodings exist ------------------------------------------------------------- */
enum operand_use { OP_NONE, OP_LOAD, OP_STORE, OP_CONTROL };

struct memory_form {
    uint8_t use, len;
};

/* The memory forms, by opcode and ModRM.reg: what the operand is for and its size. */
static const struct memory_form MEMORY_FORMS[8][8] = {
    /* D8 m32fp arithmetic */ {{OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4},
                              {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}},
    /* D9 fld fst fstp m32, fldenv fldcw fnstenv fnstcw */
    {{OP_LOAD, 4}, {OP_NONE, 0}, {OP_STORE, 4}, {OP_STORE, 4},
     {OP_CONTROL, 0}, {OP_CONTROL, 0}, {OP_CONTROL, 0}, {OP_CONTROL, 0}},
    /* DA m32int arithmetic */ {{OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4},
                               {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}, {OP_LOAD, 4}},
    /* DB fild fisttp fist fistp m32, fld fstp m80 */
    {{OP_LOAD, 4}, {OP_STORE, 4}, {OP_STORE, 4}, {OP_STORE, 4},
     {OP_NONE, 0}, {OP_LOAD, 10}, {OP_NONE, 0}, {OP_STORE, 10}},
    /* DC m64fp arithmetic */ {{OP_LOAD, 8}, {OP_LOAD, 8}, {OP_LOAD, 8}, {OP_LOAD, 8},
                              {OP_LOAD, 8}, {OP_LOAD, 8}, {OP_LOAD, 8}, {OP_LOAD, 8}},
    /* DD fld fisttp fst fstp m64, frstor, fnsave, fnstsw */
    {{OP_LOAD, 8}, {OP_STORE, 8}, {OP_STORE, 8}, {OP_STORE, 8},
     {OP_CONTROL, 0}, {OP_NONE, 0}, {OP_CONTROL, 0}, {OP_CONTROL, 0}},
    /* DE m16int arithmetic */ {{OP_LOAD, 2}, {OP_LOAD, 2}, {OP_LOAD, 2}, {OP_LOAD, 2},
                               {OP_LOAD, 2}, {OP_LOAD, 2}, {OP_LOAD, 2}, {OP_LOAD, 2}},
    /* DF fild fisttp fist fistp m16, fbld m80, fild m64, fbstp m80, fistp m64 */
    {{OP_LOAD, 2}, {OP_STORE, 2}, {OP_STORE, 2}, {OP_STORE, 2},
     {OP_LOAD, 10}, {OP_LOAD, 8}, {OP_STORE, 10}, {OP_STORE, 8}},
};

/* Register forms the CPU executes (the SDM's opcode map, with the aliases Intel and AMD
 * processors run: FSTP1, FXCH4, FXCH7, FCOM2, FCOMP3, FCOMP5, FSTP8, FSTP9, FFREEP). */
static int register_form_exists(uint8_t op, uint8_t m)
{
    switch (op) {
    case 0xd9:
        return !((m >= 0xd1 && m <= 0xd7) || m == 0xe2 || m == 0xe3 || m == 0xe6 || m == 0xe7 || m == 0xef);
    case 0xda: return m < 0xe0 || m == 0xe9;
    case 0xdb: return m < 0xe5 || (m >= 0xe8 && m < 0xf8);
    case 0xdd: return m < 0xf0;
    case 0xde: return !(m >= 0xd8 && m <= 0xdf && m != 0xd9);
    case 0xdf: return m < 0xe1 || (m >= 0xe8 && m < 0xf8);
    default: return 1;                          /* D8, DC */
    }
}

static int writes_rflags(uint8_t op, uint8_t m)
{
    return (op == 0xdb || op == 0xdf) && m >= 0xe8 && m < 0xf8;   /* f(u)comi(p) */
}

/* FIP, FOP and (for memory forms) FDP describe the last non-control instruction. */
static void record_last_instruction(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    fx_put16(cpu, FX_FOP, (uint16_t)((op & 7) << 8 | in->modrm));
    fx_put64(cpu, FX_FIP, P(cpu)->insn_rip);
    if (in->mod != 3)
        fx_put64(cpu, FX_FDP, in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea);
}

/* FLDCW, FLDENV and FRSTOR wait for a pending exception; FNSTCW, FNSTSW, FNSTENV and
 * FNSAVE do not. */
static void control_memory_form(struct interp_cpu *cpu, struct insn *in, uint8_t op, int sub)
{
    check_available(cpu, sub == 4 || sub == 5);
    if (op == 0xd9 && sub == 5) {               /* fldcw */
        fx_put16(cpu, FX_FCW, mem_read(cpu, in->easeg, in->ea, 2) | FCW_RESERVED_ONE);
        update_summary_bits(cpu);
    } else if (op == 0xd9 && sub == 7) {        /* fnstcw */
        mem_write(cpu, in->easeg, in->ea, 2, fx_get16(cpu, FX_FCW));
    } else if (op == 0xdd && sub == 7) {        /* fnstsw */
        mem_write(cpu, in->easeg, in->ea, 2, fx_get16(cpu, FX_FSW));
    } else if (sub == 6) {                      /* fnstenv, fnsave */
        fnstenv(cpu, in, op == 0xdd);
    } else {                                    /* fldenv, frstor */
        fldenv(cpu, in, op == 0xdd);
    }
}

static void memory_form(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int sub = in->reg & 7;
    struct memory_form form = MEMORY_FORMS[op - 0xd8][sub];
    if (form.use == OP_NONE)
        RAISE_UD(cpu);
    if (form.use == OP_CONTROL) {
        control_memory_form(cpu, in, op, sub);
        return;
    }
    check_available(cpu, 1);
    uint8_t operand[16] __attribute__((aligned(16))) = {0};
    uint64_t la = 0;
    if (form.use == OP_LOAD)
        mem_read_buf(cpu, in->easeg, in->ea, operand, form.len);
    else
        la = writable_operand(cpu, in, form.len);
    host_execute(cpu, STUB_MEMORY_BASE + 8 * (op - 0xd8) + sub, operand);
    record_last_instruction(cpu, in, op);
    if (form.use == OP_STORE && !(unmasked_exceptions(cpu) & FSW_SUPPRESSES_STORE))
        lin_write_buf(cpu, la, operand, form.len, 0);
}

static void register_form(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    uint8_t m = in->modrm;
    if (!register_form_exists(op, m))
        RAISE_UD(cpu);
    if (op == 0xdb && m >= 0xe0 && m <= 0xe4 && m != 0xe2 && m != 0xe3) {
        check_available(cpu, 0);                /* fneni, fndisi, fnsetpm: no-ops since the 387 */
        return;
    }
    if (op == 0xdb && m == 0xe2) {              /* fnclex */
        check_available(cpu, 0);
        fx_put16(cpu, FX_FSW, fx_get16(cpu, FX_FSW) & ~(FSW_EXCEPTIONS | FSW_SF | FSW_ES | FSW_B));
        return;
    }
    if (op == 0xdb && m == 0xe3) {              /* fninit */
        check_available(cpu, 0);
        x87_init(cpu);
        return;
    }
    if (op == 0xdf && m == 0xe0) {              /* fnstsw ax */
        check_available(cpu, 0);
        reg_set(cpu, INTERP_RAX, 2, 0, fx_get16(cpu, FX_FSW));
        return;
    }
    check_available(cpu, 1);
    uint64_t flags = host_execute(cpu, 64 * (op - 0xd8) + (m - 0xc0), NULL);
    if (writes_rflags(op, m))
        flags_set(cpu, FL_ARITH, flags);
    record_last_instruction(cpu, in, op);
}

void x87_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    if (in->lock)
        RAISE_UD(cpu);
    if (in->mod == 3)
        register_form(cpu, in, op);
    else
        memory_form(cpu, in, op);
}
