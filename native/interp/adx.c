/* ADX: adcx (66 0F 38 F6) and adox (F3 0F 38 F6), add with carry through CF only or through
 * OF only, leaving every other flag alone (two independent carry chains for multi-precision
 * arithmetic).  Legacy encoded, not VEX; the 66 / F3 prefixes are mandatory, so they do not
 * select a 16-bit operand size: REX.W gives 64 bits, otherwise 32.
 *
 * Reached from exec_0f's own `case 0x38` (exec0f.c), ahead of sse.c's 0F 38 dispatch: these
 * are integer instructions, so they must not go through sse_check (CR0.EM / CR4.OSFXSR). */
#include "interp.h"

void adx_exec(struct interp_cpu *cpu, struct insn *in)
{
    fetch8(cpu, in);                             /* the F6 opcode byte */
    decode_modrm(cpu, in);
    int size = (in->rex & 8) ? 8 : 4;
    int use_of = in->rep == 0xf3;
    uint64_t mask = size_mask(size);
    uint64_t b = rm_read(cpu, in, size);
    uint64_t a = reg_get(cpu, in->reg, size, in->rex);
    uint64_t cin = use_of ? flags_get_of(cpu) : flags_get_cf(cpu);
    uint64_t r = (a + b + cin) & mask;
    uint64_t cout = cin ? r <= a : r < a;
    reg_set(cpu, in->reg, size, in->rex, r);
    flags_set(cpu, use_of ? FL_OF : FL_CF, cout ? (use_of ? FL_OF : FL_CF) : 0);
}
