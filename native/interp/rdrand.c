/* RDRAND / RDSEED (0F C7 /6, /7, register forms; 16/32/64-bit by 66 / REX.W).
 *
 * Why the host kernel's getrandom(2): it is the host's entropy (seeded by the host CPU's own
 * RDRAND/RDSEED where there is one) and works on any host.  Success: the value and CF = 1;
 * the pool not ready (GRND_NONBLOCK) or a failure: 0 and CF = 0, which the architecture
 * allows and software must retry on.  OF, SF, ZF, AF and PF are cleared either way.  RDSEED
 * is served from the same source: getrandom's output is fully seeded, which is what RDSEED
 * promises over RDRAND. */
#include <sys/random.h>
#include "interp.h"

void rdrand_exec(struct interp_cpu *cpu, struct insn *in, int seed)
{
    (void)seed;
    int size = in->opsize;
    uint64_t v = 0;
    int ok = getrandom(&v, size, GRND_NONBLOCK) == size;
    if (!ok)
        v = 0;
    reg_set(cpu, in->rm, size, in->rex, v);
    flags_set(cpu, FL_ARITH, ok ? FL_CF : 0);
}
