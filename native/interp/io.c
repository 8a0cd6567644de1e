/* Port I/O: the IOPL / TSS I/O-permission-bitmap check and the Python callbacks. */
#include "interp.h"

#define TSS_IOMAP_BASE 0x66

/* May the current CPL touch ports [port, port+size)?  Raises #GP(0) if not. */
int io_allowed(struct interp_cpu *cpu, uint16_t port, int size)
{
    if (!is_protected(cpu))
        return 1;
    int iopl = (cpu->rflags & FL_IOPL) >> FL_IOPL_SHIFT;
    if (P(cpu)->cpl <= iopl && !(cpu->rflags & FL_VM))
        return 1;
    struct interp_segment *tr = &cpu->seg[INTERP_TR];
    if (tr->unusable || !tr->present || tr->limit < TSS_IOMAP_BASE + 1)
        RAISE_GP0(cpu);
    uint32_t map = lin_read(cpu, tr->base + TSS_IOMAP_BASE, 2, ACC_SYS);
    uint32_t byte = map + port / 8;
    if (byte + 1 > tr->limit)
        RAISE_GP0(cpu);
    uint32_t bits = lin_read(cpu, tr->base + byte, 2, ACC_SYS);
    if ((bits >> (port & 7)) & ((1u << size) - 1))
        RAISE_GP0(cpu);
    return 1;
}

uint32_t io_in(struct interp_cpu *cpu, uint16_t port, int size)
{
    io_allowed(cpu, port, size);
    uint32_t v = interp_pio_in(cpu->ctx, port, size);
    check_callback(cpu);
    return v & (uint32_t)size_mask(size);
}

void io_out(struct interp_cpu *cpu, uint16_t port, int size, uint32_t val)
{
    io_allowed(cpu, port, size);
    interp_pio_out(cpu->ctx, port, size, val & (uint32_t)size_mask(size));
    check_callback(cpu);
}
