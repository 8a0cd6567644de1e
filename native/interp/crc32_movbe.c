/* The integer instructions of the 0F 38 F0/F1 slots: CRC32 (F2 prefix, SSE4.2) and MOVBE
 * (no prefix or 66).  They are general-purpose instructions: no CR0/CR4 SSE checks apply.
 *
 * crc32 r32/r64, r/m8/16/32/64 accumulates the CRC-32C (Castagnoli, reflected polynomial
 * 0x82F63B78, no inversion) of the source's bytes, low byte first, into the low 32 bits of
 * the destination (the upper half of a 64-bit destination becomes zero); flags unchanged.
 * movbe moves 16/32/64 bits between a register and memory with the bytes reversed; the
 * register form and any other prefix are #UD. */
#include "interp.h"

static uint32_t crc32c(uint32_t crc, uint64_t v, int bytes)
{
    for (int i = 0; i < 8 * bytes; i++, v >>= 1)
        crc = (crc >> 1) ^ (0x82F63B78u & -((crc ^ v) & 1));
    return crc;
}

void crc32_movbe(struct interp_cpu *cpu, struct insn *in, uint8_t op)
{
    decode_modrm(cpu, in);
    if (in->rep == 0xf2) {                              /* crc32 */
        int size = op == 0xf0 ? 1 : in->opsize;
        uint64_t src = rm_read(cpu, in, size);
        uint32_t crc = crc32c((uint32_t)cpu->gpr[in->reg], src, size);
        reg_set(cpu, in->reg, 4, 0, crc);
        return;
    }
    if (in->rep || in->mod == 3)
        RAISE_UD(cpu);
    int size = in->opsize;
    if (op == 0xf0) {                                   /* movbe r, m */
        uint64_t v = mem_read(cpu, in->easeg, in->ea, size);
        v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32(v) : __builtin_bswap16(v);
        reg_set(cpu, in->reg, size, in->rex, v);
    } else {                                            /* movbe m, r */
        uint64_t v = reg_get(cpu, in->reg, size, in->rex);
        v = size == 8 ? __builtin_bswap64(v) : size == 4 ? __builtin_bswap32(v) : __builtin_bswap16(v);
        mem_write(cpu, in->easeg, in->ea, size, v);
    }
}
