"""Benchmark: MIPS of the interpreter on `dec rcx; jnz` at CPL 0 with paging on.

    PYTHONPATH=. python native/interp/bench_loop.py [iterations]
"""

import sys
import time

from kvmpy.interp.testing import CODE_ADDR, STACK_TOP, Machine, assemble, setup_long_mode


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000_000
    code = assemble("1: dec rcx\njnz 1b\nhlt")
    machine = Machine()                          # long mode, paging on, CPL 0
    cpu = machine.cpu
    machine.memory.write(CODE_ADDR, code)
    setup_long_mode(cpu)
    cpu.set_regs(rip=CODE_ADDR, rsp=STACK_TOP, rcx=iterations)
    start = time.perf_counter()
    result = cpu.run(4 * iterations)
    elapsed = time.perf_counter() - start
    executed = result.executed
    assert cpu.get("rcx") == 0, result
    print(f"{executed} instructions in {elapsed:.3f} s: {executed / elapsed / 1e6:.1f} MIPS")


if __name__ == "__main__":
    main()
