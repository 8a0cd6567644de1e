/* Shared by the AVX/AVX2 files (avx.c: map 0F, avx_maps.c: maps 0F38/0F3A, avx2_perm.c:
 * permutes/broadcasts/128-bit inserts, avx_mask.c: masked moves and per-element shifts,
 * gather.c: VSIB gathers): operand access and the VEX #UD rules.
 *
 * A VEX.256 operation is two 128-bit lanes; vec_t views a YMM value both ways, so the SSE
 * cores (sse.h) compute each lane. */
#ifndef KVMPY_INTERP_AVX_H
#define KVMPY_INTERP_AVX_H

#include "sse.h"

typedef union { ymm_t y; xmm_t x[2]; } vec_t;

/* VEX.pp as the PFX_* of sse.h. */
static inline int vex_pp(const struct insn *in)
{
    return in->pfx66 ? PFX_66 : in->rep == 0xf3 ? PFX_F3 : in->rep == 0xf2 ? PFX_F2 : PFX_NONE;
}
static inline int vex_lanes(const struct insn *in) { return in->vex_l ? 2 : 1; }
/* The memory operand's offset as the instruction sees it (32-bit address size wraps). */
static inline uint64_t vex_ea(const struct insn *in)
{
    return in->addrsize == 4 ? in->ea & 0xffffffffULL : in->ea;
}
/* #UD rules: VEX.vvvv must be 1111b (no vvvv operand), VEX.L must be 0 (128-bit only),
 * VEX.L must be 1 (256-bit only), VEX.W must be 0, a register-only / memory-only operand. */
static inline void vex_need_no_v(struct interp_cpu *cpu, const struct insn *in) { if (in->vex_v) RAISE_UD(cpu); }
static inline void vex_need_l0(struct interp_cpu *cpu, const struct insn *in) { if (in->vex_l) RAISE_UD(cpu); }
static inline void vex_need_l1(struct interp_cpu *cpu, const struct insn *in) { if (!in->vex_l) RAISE_UD(cpu); }
static inline void vex_need_w0(struct interp_cpu *cpu, const struct insn *in) { if (in->vex_w) RAISE_UD(cpu); }
static inline void vex_need_reg(struct interp_cpu *cpu, const struct insn *in) { if (in->mod != 3) RAISE_UD(cpu); }
static inline void vex_need_mem(struct interp_cpu *cpu, const struct insn *in) { if (in->mod == 3) RAISE_UD(cpu); }

static inline void vec_get(struct interp_cpu *cpu, int r, vec_t *v) { ymm_get(cpu, r, &v->y); }
static inline void vec_put(struct interp_cpu *cpu, int r, const vec_t *v, int len) { ymm_put(cpu, r, &v->y, len); }
/* r/m source of `len` bytes (memory: the rest zero); `aligned`: #GP unless len-aligned. */
static inline void vec_rm(struct interp_cpu *cpu, struct insn *in, vec_t *v, int len, int aligned)
{
    if (in->mod != 3 && aligned && (vex_ea(in) & (len - 1)))
        RAISE_GP0(cpu);
    vex_read_rm(cpu, in, &v->y, len);
}
/* r/m destination: a register gets `len` bytes (VEX.128 zeroes 255:128), memory `len` bytes. */
static inline void vec_put_rm(struct interp_cpu *cpu, struct insn *in, const vec_t *v, int len, int aligned)
{
    if (in->mod == 3) {
        vec_put(cpu, in->rm, v, len);
        return;
    }
    if (aligned && (vex_ea(in) & (len - 1)))
        RAISE_GP0(cpu);
    mem_write_buf(cpu, in->easeg, vex_ea(in), v, len);
}
/* A GPR operand of 4 or 8 bytes: VEX.W selects 8 in 64-bit mode. */
static inline int vex_gpr_size(struct interp_cpu *cpu, const struct insn *in)
{
    return P(cpu)->code64 && in->vex_w ? 8 : 4;
}

void avx_0f(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void avx_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op);
void avx_0f3a(struct interp_cpu *cpu, struct insn *in, uint8_t op);
/* avx2_perm.c: return 0 if op is not theirs (decode_modrm done; imm not fetched for 0F38). */
int avx_perm_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op);
int avx_perm_0f3a(struct interp_cpu *cpu, struct insn *in, uint8_t op, unsigned imm);
/* avx_mask.c */
int avx_mask_0f38(struct interp_cpu *cpu, struct insn *in, uint8_t op);
/* gather.c: entered before decode_modrm (VSIB has its own SIB decoding). */
void avx_gather(struct interp_cpu *cpu, struct insn *in, uint8_t op);

#endif
