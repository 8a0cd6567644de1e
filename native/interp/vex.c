/* The VEX prefix (C4 three-byte, C5 two-byte): decoding, the #UD rules every VEX instruction
 * shares, and dispatch to the instruction groups (bmi.c, fma.c, f16c.c).
 *
 * Why a separate decoder: VEX replaces the legacy prefixes (66/F2/F3 become VEX.pp, REX
 * becomes the inverted VEX.R/X/B and VEX.W, 0F/0F38/0F3A become VEX.mmmmm) and adds a third
 * register operand (VEX.vvvv) and the vector length (VEX.L).  vex_exec folds R/X/B/W into
 * in->rex and pp into in->pfx66 / in->rep, so the ModRM decoder and the prefix conventions of
 * the rest of the interpreter apply unchanged; vvvv, L, W and the map are in in->vex_*.
 * The vector instructions go, after the shared checks (vex_vector_check), to fma.c, f16c.c,
 * vexmov.c (whole-register moves, vzeroupper/vzeroall) and the AVX/AVX2 files by map
 * (avx.c: 0F, avx_maps.c: 0F 38 and 0F 3A). */
#include "avx.h"

void vex_vector_check(struct interp_cpu *cpu)
{
    /* SDM 2.8 (VEX exception classes): #UD unless the OS enabled XSAVE and both SSE and AVX
     * state in XCR0; CR0.EM and CR4.OSFXSR do not apply to VEX.  #NM when CR0.TS is set. */
    if (!(cpu->cr4 & CR4_OSXSAVE) || (cpu->xcr0 & 6) != 6)
        RAISE_UD(cpu);
    if (cpu->cr0 & CR0_TS)
        raise_exc(cpu, EXC_NM, 0, 0);
}

void vex_read_rm(struct interp_cpu *cpu, struct insn *in, ymm_t *v, int len)
{
    if (in->mod == 3) {
        ymm_get(cpu, in->rm, v);
        return;
    }
    memset(v, 0, sizeof(*v));
    mem_read_buf(cpu, in->easeg, in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea, v, len);
}

/* GPR instructions of map 0F38 / 0F3A (BMI1, BMI2): no vector-state checks. */
static int is_gpr_op(int map, uint8_t op)
{
    return (map == 2 && op >= 0xf0 && op <= 0xf7) || (map == 3 && op == 0xf0);
}

/* Entered at a C4 / C5 byte `op`.  Outside 64-bit mode these are LES / LDS unless the next
 * byte has mod = 11 (a register operand, invalid for LES/LDS): the caller checked that. */
void vex_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int code64 = P(cpu)->code64;
    /* Real and virtual-8086 mode have no VEX (and LES/LDS with a register operand is #UD). */
    if (!is_protected(cpu) || (cpu->rflags & FL_VM))
        RAISE_UD(cpu);
    /* LOCK was rejected by decode_prefixes (lock_allowed knows no C4/C5); 66/F2/F3/REX: */
    if (in->pfx66 || in->rep || in->rex)
        RAISE_UD(cpu);
    uint8_t b1 = fetch8(cpu, in);
    int r = !(b1 & 0x80), x = 0, b = 0, w = 0, map, pp, l, vvvv;
    if (op == 0xc5) {
        map = 1;
        vvvv = (~b1 >> 3) & 15;
        l = (b1 >> 2) & 1;
        pp = b1 & 3;
    } else {
        uint8_t b2 = fetch8(cpu, in);
        x = !(b1 & 0x40);
        b = !(b1 & 0x20);
        map = b1 & 0x1f;
        w = b2 >> 7;
        vvvv = (~b2 >> 3) & 15;
        l = (b2 >> 2) & 1;
        pp = b2 & 3;
        if (map < 1 || map > 3)
            RAISE_UD(cpu);                       /* reserved maps (4-31: later extensions) */
    }
    if (!code64) {
        r = x = b = 0;                           /* R and X are 1 by the mod = 11 rule; B is ignored */
        vvvv &= 7;                               /* vvvv[3] is ignored outside 64-bit mode */
    }
    in->vex = op == 0xc5 ? 2 : 3;
    in->vex_map = map;
    in->vex_w = w;
    in->vex_l = l;
    in->vex_v = vvvv;
    in->rex = code64 ? 0x40 | (w << 3) | (r << 2) | (x << 1) | b : 0;
    in->pfx66 = pp == 1;
    in->rep = pp == 2 ? 0xf3 : pp == 3 ? 0xf2 : 0;
    in->opsize = code64 && w ? 8 : 4;

    uint8_t opc = fetch8(cpu, in);
    if (is_gpr_op(map, opc)) {
        bmi_exec(cpu, in, opc);
        return;
    }
    vex_vector_check(cpu);
    if (map == 2 && pp == 1 && ((opc >= 0x96 && opc <= 0x9f) || (opc >= 0xa6 && opc <= 0xaf) ||
                                (opc >= 0xb6 && opc <= 0xbf))) {
        fma_exec(cpu, in, opc);
        return;
    }
    if (pp == 1 && ((map == 2 && opc == 0x13) || (map == 3 && opc == 0x1d))) {
        f16c_exec(cpu, in, opc);
        return;
    }
    if (map == 1 && vexmov_exec(cpu, in, opc))
        return;
    if (map == 1)
        avx_0f(cpu, in, opc);
    else if (map == 2)
        avx_0f38(cpu, in, opc);
    else
        avx_0f3a(cpu, in, opc);
}
