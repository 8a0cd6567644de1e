/* The guest's MXCSR: reading it, raising #XM, and host SIMD floating point under it for the
 * operations computed by a C function (fma.c, f16c.c; sse_fp.c runs host instructions
 * directly and models the lanes' exceptions itself, then raises through mxcsr_exception).
 *
 * Why: the host's arithmetic is exact IEEE, but it rounds and flushes the way the host MXCSR
 * says and reports exceptions in the host MXCSR.  mxcsr_run runs a computation with the host
 * MXCSR set to the guest's rounding control, DAZ and FTZ, every exception masked and the flags
 * clear, reads the flags back (stmxcsr) and restores the host MXCSR; mxcsr_signal then
 * applies them to the guest: sticky flags, or #XM for an unmasked exception.
 *
 * The computation runs through a function pointer so the compiler cannot move its floating
 * point operations across the ldmxcsr/stmxcsr (GCC assumes the default FP environment).
 * Known approximation: with every exception masked the host reports underflow only when the
 * result is also inexact, and all of a packed operation's post-computation flags at once; for
 * an unmasked underflow or a mix of pre- and post-computation exceptions across elements the
 * #XM decision can differ from hardware in those corner cases. */
#include "interp.h"

uint32_t mxcsr_get(struct interp_cpu *cpu)
{
    uint32_t v;
    memcpy(&v, cpu->fxsave + FX_MXCSR, 4);
    return v;
}

static void mxcsr_put(struct interp_cpu *cpu, uint32_t v)
{
    memcpy(cpu->fxsave + FX_MXCSR, &v, 4);
}

static inline uint32_t host_stmxcsr(void)
{
    uint32_t v;
    __asm__ volatile("stmxcsr %0" : "=m"(v) : : "memory");
    return v;
}

static inline void host_ldmxcsr(uint32_t v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v) : "memory");
}

uint32_t mxcsr_run(struct interp_cpu *cpu, void (*fn)(void *), void *arg)
{
    uint32_t guest = mxcsr_get(cpu);
    uint32_t host = host_stmxcsr();
    host_ldmxcsr((guest & (MXCSR_RC | MXCSR_DAZ | MXCSR_FTZ)) | MXCSR_MASKS);
    fn(arg);
    uint32_t flags = host_stmxcsr() & MXCSR_FLAGS;
    host_ldmxcsr(host);
    return flags;
}

void mxcsr_exception(struct interp_cpu *cpu, uint32_t flags)
{
    mxcsr_put(cpu, mxcsr_get(cpu) | flags);
    raise_exc(cpu, (cpu->cr4 & CR4_OSXMMEXCPT) ? EXC_XM : EXC_UD, 0, 0);
}

void mxcsr_signal(struct interp_cpu *cpu, uint32_t flags)
{
    uint32_t mx = mxcsr_get(cpu);
    uint32_t unmasked = flags & ~(mx >> 7) & MXCSR_FLAGS;
    if (unmasked) {
        /* Pre-computation exceptions (invalid, denormal, divide by zero) are detected first:
         * an unmasked one is delivered before the result, so no post-computation flag. */
        if (unmasked & (MXCSR_IE | MXCSR_DE | MXCSR_ZE))
            flags &= MXCSR_IE | MXCSR_DE | MXCSR_ZE;
        mxcsr_exception(cpu, flags);
    }
    mxcsr_put(cpu, mx | flags);
}
