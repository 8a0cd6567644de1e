/* The few VEX map-0F instructions that are not AVX arithmetic but plain data movement:
 * vmovups/vmovupd/vmovaps/vmovapd (0F 10/11/28/29), vmovdqu/vmovdqa (F3/66 0F 6F/7F) in
 * their full-register forms, and vzeroupper/vzeroall (0F 77).
 *
 * Why they are apart from the AVX files (avx.c and the rest): they came first (every VEX.256
 * instruction needs a way to get YMM values in and out, and code compiled for AVX brackets
 * its AVX regions with vzeroupper), and they are complete as they are: avx.c sends the other
 * forms of these opcodes (vmovss/vmovsd, F3/F2 0F 10/11) to its own code. */
#include "interp.h"

/* Returns 0 if `op` is not one of these (the caller reports it unimplemented). */
int vexmov_exec(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    int pp = in->pfx66 ? 1 : in->rep == 0xf3 ? 2 : in->rep == 0xf2 ? 3 : 0;
    int len = vex_len(in), aligned;
    ymm_t v;
    if (op == 0x77 && pp == 0) {
        if (in->vex_v != 0)
            RAISE_UD(cpu);
        for (int r = 0; r < (P(cpu)->code64 ? 16 : 8); r++) {
            memset(YMM_HI(cpu, r), 0, 16);
            if (in->vex_l)
                memset(YMM_LO(cpu, r), 0, 16);   /* vzeroall */
        }
        return 1;
    }
    if ((op == 0x10 || op == 0x11 || op == 0x28 || op == 0x29) && pp <= 1)
        aligned = op >= 0x28;
    else if ((op == 0x6f || op == 0x7f) && pp >= 1 && pp <= 2)
        aligned = pp == 1;
    else
        return 0;
    decode_modrm(cpu, in);
    if (in->vex_v != 0)
        RAISE_UD(cpu);                           /* vvvv must be 1111b */
    uint64_t ea = in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea;
    if (in->mod != 3 && aligned && (ea & (len - 1)))
        RAISE_GP0(cpu);
    if (op == 0x10 || op == 0x28 || op == 0x6f) {    /* load */
        vex_read_rm(cpu, in, &v, len);
        ymm_put(cpu, in->reg, &v, len);
    } else {                                         /* store */
        ymm_get(cpu, in->reg, &v);
        if (in->mod == 3)
            ymm_put(cpu, in->rm, &v, len);
        else
            mem_write_buf(cpu, in->easeg, ea, &v, len);
    }
    return 1;
}
