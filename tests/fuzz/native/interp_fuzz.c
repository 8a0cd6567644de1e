/* libFuzzer target: kvmpy's x86 interpreter decoding and executing arbitrary bytes.
 *
 * The input's first byte picks a CPU mode (real, 16/32-bit protected, 32-bit PAE paging,
 * 64-bit and compatibility mode, CPL 0 or 3), whether an interrupt or NMI is pending, the
 * SSE/AVX enables and the run flags; the second picks where the registers point (ordinary
 * RAM, the last bytes of a region, the hole, far outside).  The rest is the code, placed
 * both at the entry point and at the handler every IDT gate leads to, so execution goes on
 * after exceptions.  System tables (GDT, IDT, TSS, page tables) sit in guest RAM, where the
 * guest may overwrite them.
 *
 * The guard: guest RAM is two heap blocks of exactly their regions' sizes, and the harness
 * is built with AddressSanitizer, so any host access outside guest RAM (or any other memory
 * error) aborts the run; UndefinedBehaviorSanitizer catches the rest.  Everything outside
 * RAM is MMIO: the callbacks below answer it without touching memory.  After each run the
 * harness checks that the interpreter left the region table alone.
 *
 * The callbacks are what cffi generates for Python in the extension; here they are plain C. */

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "interp.h"

/* Guest-physical layout: low RAM, a hole (MMIO) to 1 MiB, then one more MiB of RAM. */
#define LOW_RAM_SIZE  0xA0000ull
#define HIGH_RAM_BASE 0x100000ull
#define HIGH_RAM_SIZE 0x100000ull
#define GDT_ADDR      0x1000ull
#define IDT_ADDR      0x2000ull
#define TSS_ADDR      0x3000ull
#define PML4_ADDR     0x4000ull
#define PDPT_ADDR     0x5000ull
#define PD_ADDR       0x6000ull
#define PT_ADDR       0x7000ull
#define PAE_PDPT_ADDR 0x8000ull
#define CODE_ADDR     0x10000ull
#define HANDLER_ADDR  0x18000ull
#define CODE_MAX      0x8000ull
#define STACK_TOP     0x9F000ull
#define MAX_INSNS     1024
#define RUN_STACK_SIZE (64 * 1024)

/* Selectors of the harness's GDT. */
enum { SEL_CODE64 = 0x08, SEL_DATA = 0x10, SEL_CODE32 = 0x18, SEL_CODE16 = 0x20,
       SEL_CODE64_USER = 0x2B, SEL_DATA_USER = 0x33, SEL_CODE32_USER = 0x3B, SEL_TSS = 0x40 };

enum mode { REAL, PROT16, PROT32, PAE32, LONG64, COMPAT32, LONG64_USER, PROT32_USER };

/* Page-table entry bits (the interpreter's own names are private to mmu.c). */
#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

static uint8_t *low_ram, *high_ram;
static struct interp_region regions[2];
static uint64_t mmio_reads;

uint64_t interp_mmio_read(void *ctx, uint64_t gpa, int size)
{
    (void)ctx; (void)size;
    mmio_reads++;
    return 0xA5A5A5A5A5A5A5A5ull ^ gpa ^ mmio_reads;
}

void interp_mmio_write(void *ctx, uint64_t gpa, int size, uint64_t val)
{
    (void)ctx; (void)gpa; (void)size; (void)val;
}

uint32_t interp_pio_in(void *ctx, uint16_t port, int size)
{
    (void)ctx; (void)size;
    return 0xFFFF0000u | port;
}

void interp_pio_out(void *ctx, uint16_t port, int size, uint32_t val)
{
    (void)ctx; (void)port; (void)size; (void)val;
}

int interp_ack_irq(void *ctx)
{
    (void)ctx;
    return 0x30;
}

int interp_rdmsr(void *ctx, uint32_t msr, uint64_t *val)
{
    (void)ctx;
    *val = msr;
    return msr > 0x1000;                         /* unknown MSRs #GP, as on a real CPU */
}

int interp_wrmsr(void *ctx, uint32_t msr, uint64_t val)
{
    (void)ctx; (void)val;
    return msr > 0x1000;
}

static void put64(uint64_t gpa, uint64_t value)
{
    memcpy(low_ram + gpa, &value, 8);
}

/* A code or data segment descriptor (legacy format; limit in 4 KiB units when g is set). */
static uint64_t descriptor(uint32_t base, uint32_t limit, unsigned type, unsigned dpl, unsigned l,
                           unsigned db, unsigned g)
{
    return (uint64_t)(limit & 0xFFFF) | (uint64_t)(base & 0xFFFFFF) << 16 | (uint64_t)type << 40
         | 1ull << 44 | (uint64_t)dpl << 45 | 1ull << 47 | (uint64_t)((limit >> 16) & 0xF) << 48
         | (uint64_t)l << 53 | (uint64_t)db << 54 | (uint64_t)g << 55 | (uint64_t)(base >> 24) << 56;
}

static void write_tables(int long_gates)
{
    put64(GDT_ADDR + SEL_CODE64, descriptor(0, 0xFFFFF, 0xB, 0, 1, 0, 1));
    put64(GDT_ADDR + SEL_DATA, descriptor(0, 0xFFFFF, 0x3, 0, 0, 1, 1));
    put64(GDT_ADDR + SEL_CODE32, descriptor(0, 0xFFFFF, 0xB, 0, 0, 1, 1));
    put64(GDT_ADDR + SEL_CODE16, descriptor(0, 0xFFFF, 0xB, 0, 0, 0, 0));
    put64(GDT_ADDR + (SEL_CODE64_USER & ~3), descriptor(0, 0xFFFFF, 0xB, 3, 1, 0, 1));
    put64(GDT_ADDR + (SEL_DATA_USER & ~3), descriptor(0, 0xFFFFF, 0x3, 3, 0, 1, 1));
    put64(GDT_ADDR + (SEL_CODE32_USER & ~3), descriptor(0, 0xFFFFF, 0xB, 3, 0, 1, 1));
    put64(GDT_ADDR + SEL_TSS, descriptor(TSS_ADDR, 0x67, 0x9, 0, 0, 0, 0));
    /* Every gate: an interrupt gate (DPL 3, so int n works from ring 3) to HANDLER_ADDR. */
    for (int vector = 0; vector < 256; vector++) {
        if (long_gates) {
            uint64_t low = (HANDLER_ADDR & 0xFFFF) | (uint64_t)SEL_CODE64 << 16 | 0xEEull << 40
                         | ((HANDLER_ADDR >> 16) & 0xFFFF) << 48;
            put64(IDT_ADDR + 16 * vector, low);
            put64(IDT_ADDR + 16 * vector + 8, HANDLER_ADDR >> 32);
        } else {
            uint64_t gate = (HANDLER_ADDR & 0xFFFF) | (uint64_t)SEL_CODE32 << 16 | 0xEEull << 40
                          | ((HANDLER_ADDR >> 16) & 0xFFFF) << 48;
            put64(IDT_ADDR + 8 * vector, gate);
        }
    }
    /* TSS: the ring-0 stack for both layouts (64-bit RSP0 at +4; 32-bit ESP0 at +4, SS0 at +8). */
    put64(TSS_ADDR + 4, STACK_TOP);
    if (!long_gates)
        put64(TSS_ADDR + 8, SEL_DATA);
}

static void write_page_tables(void)
{
    uint64_t user_rw = PTE_P | PTE_RW | PTE_US;
    put64(PML4_ADDR, PDPT_ADDR | user_rw);
    put64(PDPT_ADDR, PD_ADDR | user_rw);
    put64(PDPT_ADDR + 8, 0x40000000ull | user_rw | PTE_PS);   /* 1 GiB page: nothing but MMIO */
    put64(PDPT_ADDR + 3 * 8, 0xC0000000ull | user_rw | PTE_PS);
    put64(PD_ADDR, PT_ADDR | user_rw);
    put64(PD_ADDR + 8, 0x200000ull | user_rw | PTE_PS);        /* 2 MiB page past RAM's end */
    for (uint64_t page = 0; page < 512; page++)                /* the first 2 MiB, identity */
        put64(PT_ADDR + 8 * page, page << 12 | user_rw | (page == 0x9F ? PTE_PS : 0));
    put64(PML4_ADDR + 511 * 8, PDPT_ADDR | user_rw);           /* the top of the address space too */
    put64(PAE_PDPT_ADDR, PD_ADDR | PTE_P);
    put64(PAE_PDPT_ADDR + 8, PD_ADDR | PTE_P);
}

static void set_segment(struct interp_cpu *cpu, int index, uint16_t selector, uint64_t base, uint32_t limit,
                        uint8_t type, uint8_t dpl, uint8_t l, uint8_t db, uint8_t g)
{
    struct interp_segment *s = &cpu->seg[index];
    memset(s, 0, sizeof(*s));
    s->selector = selector;
    s->base = base;
    s->limit = limit;
    s->type = type;
    s->present = 1;
    s->s = index < INTERP_LDTR;
    s->dpl = dpl;
    s->l = l;
    s->db = db;
    s->g = g;
}

static void set_flat(struct interp_cpu *cpu, uint16_t code, uint8_t dpl, uint8_t l, uint8_t db, uint16_t data)
{
    set_segment(cpu, INTERP_CS, code, 0, 0xFFFFFFFF, 0xB, dpl, l, db, 1);
    for (int index = INTERP_ES; index <= INTERP_GS; index++)
        if (index != INTERP_CS)
            set_segment(cpu, index, data, 0, 0xFFFFFFFF, 0x3, dpl, 0, 1, 1);
}

/* Where the registers point, by the second input byte. */
static uint64_t register_value(unsigned pick, int reg)
{
    static const uint64_t places[] = {
        0x20000, 0x30000, 0x40000, HIGH_RAM_BASE + 0x1000,   /* ordinary RAM */
        LOW_RAM_SIZE - 8, HIGH_RAM_BASE + HIGH_RAM_SIZE - 4, /* the last bytes of a region */
        0xA0000, 0xFEE00000,                                  /* the hole, the LAPIC's page */
        0xFFFFFFFFFFFFF000ull, 0x00007FFFFFFFFFF8ull,        /* far outside, a canonical edge */
        PML4_ADDR, CODE_ADDR,                                 /* the page tables, the code */
        0, 1, 0x80000000, 0xFFFFFFFF,
    };
    return places[(pick + (unsigned)reg * 5) % (sizeof(places) / sizeof(places[0]))] + (pick >> 4) * (reg & 3);
}

static void setup(struct interp_cpu *cpu, uint8_t control, uint8_t pick, const uint8_t *code, size_t size)
{
    enum mode mode = (enum mode)(control & 7);
    memset(low_ram, 0, LOW_RAM_SIZE);
    memset(high_ram, 0, HIGH_RAM_SIZE);
    int long_gates = mode == LONG64 || mode == COMPAT32 || mode == LONG64_USER;
    write_tables(long_gates);
    write_page_tables();
    if (size > CODE_MAX)
        size = CODE_MAX;
    memcpy(low_ram + CODE_ADDR, code, size);
    memcpy(low_ram + HANDLER_ADDR, code, size);

    interp_reset(cpu);
    cpu->regions = regions;
    cpu->nregions = 2;
    for (int reg = 0; reg < 16; reg++)
        cpu->gpr[reg] = register_value(pick, reg);
    cpu->gpr[INTERP_RSP] = STACK_TOP - 0x100;
    cpu->gdt.base = GDT_ADDR;
    cpu->gdt.limit = 0x7F;
    cpu->idt.base = IDT_ADDR;
    cpu->idt.limit = long_gates ? 0xFFF : 0x7FF;
    cpu->rflags = 0x2 | ((control & 0x10) ? FL_IF : 0);
    cpu->irq_pending = (control >> 4) & 1;
    cpu->nmi_pending = (control >> 5) & 1;
    if (control & 0x40) {
        cpu->cr4 |= CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_OSXSAVE;
        cpu->xcr0 = 7;
    }
    cpu->ncpuid = 1;
    cpu->cpuid[0].function = 0xD;
    cpu->cpuid[0].eax = 7;
    set_segment(cpu, INTERP_TR, SEL_TSS, TSS_ADDR, 0x67, 0xB, 0, 0, 0, 0);
    cpu->msr.lstar = cpu->msr.cstar = HANDLER_ADDR;
    cpu->msr.star = (uint64_t)SEL_CODE64 << 32 | (uint64_t)(SEL_CODE32_USER & ~3) << 48;
    cpu->msr.sysenter_cs = SEL_CODE64;
    cpu->msr.sysenter_eip = HANDLER_ADDR;
    cpu->msr.sysenter_esp = STACK_TOP;
    cpu->rip = CODE_ADDR;

    switch (mode) {
    case REAL:
        for (int vector = 0; vector < 256; vector++) { /* IVT: every vector to HANDLER_ADDR */
            uint32_t far = (uint32_t)(HANDLER_ADDR >> 4) << 16;
            memcpy(low_ram + 4 * vector, &far, 4);
        }
        cpu->idt.base = 0;
        cpu->idt.limit = 0x3FF;
        cpu->gpr[INTERP_RSP] &= 0xFFFF;
        for (int index = INTERP_ES; index <= INTERP_GS; index++)
            set_segment(cpu, index, 0, 0, 0xFFFF, index == INTERP_CS ? 0xB : 0x3, 0, 0, 0, 0);
        set_segment(cpu, INTERP_CS, CODE_ADDR >> 4, CODE_ADDR, 0xFFFF, 0xB, 0, 0, 0, 0);
        set_segment(cpu, INTERP_SS, 0x9000, 0x90000, 0xFFFF, 0x3, 0, 0, 0, 0);
        cpu->rip = 0;
        break;
    case PROT16:
        cpu->cr0 = CR0_PE | CR0_ET;
        set_flat(cpu, SEL_CODE32, 0, 0, 1, SEL_DATA);
        set_segment(cpu, INTERP_CS, SEL_CODE16, CODE_ADDR, 0xFFFF, 0xB, 0, 0, 0, 0);
        cpu->rip = 0;
        break;
    case PROT32:
        cpu->cr0 = CR0_PE | CR0_ET | CR0_NE;
        set_flat(cpu, SEL_CODE32, 0, 0, 1, SEL_DATA);
        break;
    case PROT32_USER:
        cpu->cr0 = CR0_PE | CR0_ET | CR0_NE;
        set_flat(cpu, SEL_CODE32_USER, 3, 0, 1, SEL_DATA_USER);
        break;
    case PAE32:
        cpu->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG | CR0_WP | CR0_MP;
        cpu->cr4 |= CR4_PAE;
        cpu->cr3 = PAE_PDPT_ADDR;
        set_flat(cpu, SEL_CODE32, 0, 0, 1, SEL_DATA);
        break;
    case LONG64:
    case COMPAT32:
    case LONG64_USER:
        cpu->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG | CR0_WP | CR0_MP;
        cpu->cr4 |= CR4_PAE | CR4_PGE;
        cpu->cr3 = PML4_ADDR;
        cpu->efer = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
        if (mode == LONG64)
            set_flat(cpu, SEL_CODE64, 0, 1, 0, SEL_DATA);
        else if (mode == COMPAT32)
            set_flat(cpu, SEL_CODE32, 0, 0, 1, SEL_DATA);
        else
            set_flat(cpu, SEL_CODE64_USER, 3, 1, 0, SEL_DATA_USER);
        break;
    }
    interp_flush_tlb(cpu);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    low_ram = malloc(LOW_RAM_SIZE);
    high_ram = malloc(HIGH_RAM_SIZE);
    if (!low_ram || !high_ram)
        abort();
    regions[0] = (struct interp_region){0, LOW_RAM_SIZE, low_ram};
    regions[1] = (struct interp_region){HIGH_RAM_BASE, HIGH_RAM_SIZE, high_ram};
    return 0;
}

struct input {
    const uint8_t *data;
    size_t size;
};

static void *run_input(void *arg)
{
    static struct interp_cpu cpu;
    const struct input *input = arg;
    const uint8_t *data = input->data;
    size_t size = input->size;
    uint8_t control = data[0], pick = data[1];
    setup(&cpu, control, pick, data + 2, size - 2);
    int flags = (control & 0x08) ? INTERP_RUN_STOP_ON_UNIMPL : 0;
    for (int round = 0; round < 2; round++) {    /* resume after what stops a run, as the VMM does */
        int stop = interp_run(&cpu, MAX_INSNS, flags);
        if (cpu.regions != regions || cpu.nregions != 2)
            abort();                             /* the interpreter must never touch its region table */
        if (stop == INTERP_STOP_SHUTDOWN || stop == INTERP_STOP_UNIMPLEMENTED || stop == INTERP_STOP_IO_ERROR)
            break;
        if (stop == INTERP_STOP_HLT) {
            cpu.irq_pending = 1;                 /* wake it the way a timer would */
            cpu.rflags |= FL_IF;
        }
    }
    return NULL;
}

/* Each input runs on a thread with a small stack: the interpreter raises guest exceptions
 * with longjmp, and AddressSanitizer unpoisons the stack down to its base on every one, so
 * the main thread's 8 MiB stack would cost more than the instructions themselves. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    struct input input = {data, size};
    pthread_attr_t attr;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, RUN_STACK_SIZE);
    if (pthread_create(&thread, &attr, run_input, &input) != 0)
        abort();
    pthread_join(thread, NULL);
    pthread_attr_destroy(&attr);
    return 0;
}
