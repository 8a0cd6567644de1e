/* A hostile guest: it attacks the virtio-blk devices kvmpy gives it, one over virtio-mmio and
 * one over virtio-pci, through the real transports, and prints what each device did.
 *
 * Each attack starts from a freshly initialised device and ends with a reset and one honest
 * read of sector 0, which must return the disk's first sector ("recovered"): the VMM kept
 * running, the device can be used again, and the other device (attacked before or after)
 * was never disturbed.  One line per attack and transport on COM1:
 *
 *     attack NAME TRANSPORT: status=0xSS used=N blk=S capacity=C recovered=R
 *
 * status is the device status after the attack (0x40 DEVICE_NEEDS_RESET when the device
 * refused what it was given), used how many requests completed, blk the request's status
 * byte (0 ok, 1 IOERR, 0xff untouched), capacity what the config space says (in sectors:
 * the guest's writes must not change it), recovered 1 or 0.  The last line is "hostile: done",
 * and the verdict is the number of attacks that did not recover (0: all did).
 *
 * The machine: 2 vCPUs in long mode with kvmpy's 4 GiB identity map, RAM size in MiB as the
 * command line's number, the test's disk image filled with the byte pattern sector_byte(n). */

#include <stdint.h>

#include "layout.h"

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

/* The start-mode note kvmpy's ELF loader reads (boot/guests/guest.inc's START_MODE). */
__attribute__((section(".note.kvmpy"), aligned(4), used))
static const struct { u32 namesz, descsz, type; char name[8]; u32 mode; } start_mode = {6, 4, 1, "kvmpy", 2};

/* --- Port I/O, the console, the verdict ----------------------------------------------- */

static inline void outb(u16 port, u8 value) { __asm__ volatile("outb %0, %1" :: "a"(value), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(u16 port, u32 value) { __asm__ volatile("outl %0, %1" :: "a"(value), "Nd"(port)); }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
#define barrier() __asm__ volatile("" ::: "memory")

static void putc_serial(char c) {
    while (!(inb(COM1_PORT + 5) & 0x20)) {}
    outb(COM1_PORT, (u8)c);
}

static void puts_serial(const char *s) { while (*s) putc_serial(*s++); }

static void put_hex(u64 v) {
    puts_serial("0x");
    for (int shift = 60; shift >= 0; shift -= 4) {
        if (v >> shift || shift < 8) putc_serial("0123456789abcdef"[(v >> shift) & 0xF]);
    }
}

static void put_dec(u64 v) {
    char digits[24];
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) putc_serial(digits[--n]);
}

static __attribute__((noreturn)) void verdict(u8 code) {
    outb(DEBUG_EXIT_PORT, code);
    for (;;) __asm__ volatile("cli; hlt");
}

static u64 cmdline_number(void) {
    const volatile char *s = (const volatile char *)CMDLINE_ADDR;
    u64 n = 0;
    while (*s >= '0' && *s <= '9') n = n * 10 + (u64)(*s++ - '0');
    return n;
}

/* --- The two transports behind one set of operations ---------------------------------- */

enum { MMIO, PCI };
static const char *const transport_names[] = {"mmio", "pci"};

struct device {
    int transport;
    volatile u8 *regs;    /* mmio: the register window; pci: the common configuration */
    volatile u8 *notify;  /* pci: queue 0's notification address */
    volatile u8 *isr;     /* pci: the ISR status byte */
    volatile u8 *config;  /* the device-specific configuration */
};

#define R8(p, o) (*(volatile u8 *)((p) + (o)))
#define R16(p, o) (*(volatile u16 *)((p) + (o)))
#define R32(p, o) (*(volatile u32 *)((p) + (o)))

/* virtio-mmio (virtio 1.x, 4.2.2) and virtio-pci common configuration (4.1.4.3) offsets */
enum {
    MMIO_MAGIC = 0x000, MMIO_DEVICE_ID = 0x008, MMIO_DEVICE_FEATURES = 0x010, MMIO_DEVICE_FEATURES_SEL = 0x014,
    MMIO_DRIVER_FEATURES = 0x020, MMIO_DRIVER_FEATURES_SEL = 0x024, MMIO_QUEUE_SEL = 0x030,
    MMIO_QUEUE_NUM = 0x038, MMIO_QUEUE_READY = 0x044, MMIO_QUEUE_NOTIFY = 0x050, MMIO_INTERRUPT_ACK = 0x064,
    MMIO_STATUS = 0x070, MMIO_QUEUE_DESC = 0x080, MMIO_QUEUE_DRIVER = 0x090, MMIO_QUEUE_DEVICE = 0x0A0,
    MMIO_CONFIG = 0x100,
    PCI_DRIVER_FEATURE_SELECT = 0x08, PCI_DRIVER_FEATURE = 0x0C, PCI_DEVICE_STATUS = 0x14, PCI_QUEUE_SELECT = 0x16,
    PCI_QUEUE_SIZE = 0x18, PCI_QUEUE_ENABLE = 0x1C, PCI_QUEUE_NOTIFY_OFF = 0x1E, PCI_QUEUE_DESC = 0x20,
    PCI_QUEUE_DRIVER = 0x28, PCI_QUEUE_DEVICE = 0x30,
};
enum { ACKNOWLEDGE = 1, DRIVER = 2, DRIVER_OK = 4, FEATURES_OK = 8, NEEDS_RESET = 0x40 };
enum { VIRTIO_VENDOR = 0x1AF4, VIRTIO_BLK_PCI = 0x1042, VIRTIO_BLK_ID = 2, MMIO_MAGIC_VALUE = 0x74726976 };

static u8 get_status(struct device *d) {
    return d->transport == MMIO ? (u8)R32(d->regs, MMIO_STATUS) : R8(d->regs, PCI_DEVICE_STATUS);
}

static void set_status(struct device *d, u8 status) {
    if (d->transport == MMIO) R32(d->regs, MMIO_STATUS) = status;
    else R8(d->regs, PCI_DEVICE_STATUS) = status;
}

static void write_features(struct device *d, u32 select, u32 value) {
    if (d->transport == MMIO) {
        R32(d->regs, MMIO_DRIVER_FEATURES_SEL) = select;
        R32(d->regs, MMIO_DRIVER_FEATURES) = value;
    } else {
        R32(d->regs, PCI_DRIVER_FEATURE_SELECT) = select;
        R32(d->regs, PCI_DRIVER_FEATURE) = value;
    }
}

static void write64(volatile u8 *regs, u32 offset, u64 value) {
    R32(regs, offset) = (u32)value;
    R32(regs, offset + 4) = (u32)(value >> 32);
}

/* Where each transport keeps queue 0's configuration, and how wide its small registers are. */
static const struct { u32 select, size, desc, driver, device, ready, width; } queue_regs[] = {
    [MMIO] = {MMIO_QUEUE_SEL, MMIO_QUEUE_NUM, MMIO_QUEUE_DESC, MMIO_QUEUE_DRIVER, MMIO_QUEUE_DEVICE, MMIO_QUEUE_READY, 4},
    [PCI] = {PCI_QUEUE_SELECT, PCI_QUEUE_SIZE, PCI_QUEUE_DESC, PCI_QUEUE_DRIVER, PCI_QUEUE_DEVICE, PCI_QUEUE_ENABLE, 2},
};

static void write_small(volatile u8 *regs, u32 offset, u32 width, u32 value) {
    if (width == 4) R32(regs, offset) = value;
    else R16(regs, offset) = (u16)value;
}

static void set_queue(struct device *d, u16 size, u64 desc, u64 avail, u64 used, int ready) {
    u32 width = queue_regs[d->transport].width;
    write_small(d->regs, queue_regs[d->transport].select, width, 0);
    write_small(d->regs, queue_regs[d->transport].size, width, size);
    write64(d->regs, queue_regs[d->transport].desc, desc);
    write64(d->regs, queue_regs[d->transport].driver, avail);
    write64(d->regs, queue_regs[d->transport].device, used);
    write_small(d->regs, queue_regs[d->transport].ready, width, (u32)ready);
}

static void kick(struct device *d) {
    barrier();
    if (d->transport == MMIO) R32(d->regs, MMIO_QUEUE_NOTIFY) = 0;
    else R16(d->notify, 0) = 0;
}

/* --- The split ring and virtio-blk requests ------------------------------------------- */

enum { QUEUE_SIZE = 16, DESC_NEXT = 1, DESC_WRITE = 2, BLK_T_IN = 0, SECTOR = 512 };
struct desc { u64 addr; u32 len; u16 flags, next; };
struct blk_header { u32 type, reserved; u64 sector; };

/* Guest RAM the attacks use, above the image (1 MiB) and below 8 MiB. */
#define RING_BASE 0x200000ull
#define DESC_TABLE ((volatile struct desc *)RING_BASE)
#define AVAIL ((volatile u16 *)(RING_BASE + 0x1000))  /* flags, idx, ring[] */
#define USED ((volatile u16 *)(RING_BASE + 0x2000))   /* flags, idx, then {id, len} pairs */
#define HEADER ((volatile struct blk_header *)0x300000ull)
#define DATA ((volatile u8 *)0x301000ull)
#define BLK_STATUS ((volatile u8 *)0x302000ull)
#define WAIT_CYCLES 3000000000ull  /* about a second: a device thread (the eventfd path) answers in microseconds */

static u16 avail_idx;

/* Reset the device and bring it to DRIVER_OK with a clean ring; 0 when it refused. */
static int init_device(struct device *d) {
    set_status(d, 0);
    set_status(d, ACKNOWLEDGE);
    set_status(d, ACKNOWLEDGE | DRIVER);
    write_features(d, 0, 0);
    write_features(d, 1, 1);  /* VIRTIO_F_VERSION_1 only */
    set_status(d, ACKNOWLEDGE | DRIVER | FEATURES_OK);
    if (!(get_status(d) & FEATURES_OK)) return 0;
    for (u32 i = 0; i < 0x3000; i++) ((volatile u8 *)RING_BASE)[i] = 0;
    avail_idx = 0;
    set_queue(d, QUEUE_SIZE, RING_BASE, (u64)AVAIL, (u64)USED, 1);
    set_status(d, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    return (get_status(d) & NEEDS_RESET) == 0;
}

/* A read of `sector` into DATA as descriptors 0-2 (header, data, status byte), published. */
static void post_read(u64 sector, u64 data_addr, u32 data_len) {
    HEADER->type = BLK_T_IN;
    HEADER->reserved = 0;
    HEADER->sector = sector;
    *BLK_STATUS = 0xFF;
    DESC_TABLE[0] = (struct desc){(u64)HEADER, sizeof(struct blk_header), DESC_NEXT, 1};
    DESC_TABLE[1] = (struct desc){data_addr, data_len, DESC_NEXT | DESC_WRITE, 2};
    DESC_TABLE[2] = (struct desc){(u64)BLK_STATUS, 1, DESC_WRITE, 0};
    AVAIL[2 + avail_idx % QUEUE_SIZE] = 0;
    barrier();
    AVAIL[1] = ++avail_idx;
}

static inline u64 rdtsc(void) {
    u32 lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (u64)hi << 32 | lo;
}

/* Wait until the device used `count` requests or flagged itself for a reset (at most
 * WAIT_CYCLES: some attacks leave nothing to complete); the number used. */
static u16 wait_used(struct device *d, u16 count) {
    u64 deadline = rdtsc() + WAIT_CYCLES;
    while (USED[1] < count && !(get_status(d) & NEEDS_RESET) && rdtsc() < deadline) __asm__ volatile("pause");
    return USED[1];
}

static u64 capacity(struct device *d) {
    u64 value = 0;
    for (int i = 7; i >= 0; i--) value = value << 8 | d->config[i];
    return value;
}

static u8 sector_byte(u64 sector) { return (u8)(0x5A ^ sector); }

static int honest_read_works(struct device *d) {
    if (!init_device(d)) return 0;
    for (u32 i = 0; i < SECTOR; i++) DATA[i] = 0;
    post_read(0, (u64)DATA, SECTOR);
    kick(d);
    if (wait_used(d, 1) != 1 || *BLK_STATUS != 0) return 0;
    for (u32 i = 0; i < SECTOR; i++) if (DATA[i] != sector_byte(0)) return 0;
    return 1;
}

/* --- The attacks ---------------------------------------------------------------------- */

static u64 ram_end;

static void attack_hole(struct device *d) {  /* the data buffer in the MMIO hole */
    post_read(0, MMIO_HOLE_START + 0x1000, SECTOR);
    kick(d);
}

static void attack_ram_end(struct device *d) {  /* a buffer running off the end of RAM */
    post_read(0, ram_end - 16, SECTOR);
    kick(d);
}

static void attack_ring_itself(struct device *d) {  /* the device writes over the descriptor table */
    post_read(1, RING_BASE, SECTOR);
    kick(d);
}

static void attack_avail_jump(struct device *d) {  /* the avail index 2^15 ahead */
    post_read(0, (u64)DATA, SECTOR);
    AVAIL[1] = (u16)(avail_idx + 0x8000);
    kick(d);
}

static void attack_loop(struct device *d) {  /* a chain whose last descriptor leads back to the one before */
    post_read(0, (u64)DATA, SECTOR);
    DESC_TABLE[2].flags = DESC_WRITE | DESC_NEXT;
    DESC_TABLE[2].next = 1;
    kick(d);
}

static void attack_reconfigure_in_flight(struct device *d) {  /* the queue moved and disabled under a request */
    post_read(0, (u64)DATA, SECTOR);
    kick(d);
    set_queue(d, QUEUE_SIZE, ram_end - 0x1000, ram_end - 0x800, MMIO_HOLE_START, 0);
    kick(d);
}

static void attack_reset_mid_chain(struct device *d) {  /* a reset right after the kick */
    post_read(0, (u64)DATA, SECTOR);
    kick(d);
    set_status(d, 0);
    kick(d);
}

static void attack_config_during_negotiation(struct device *d) {  /* capacity written before FEATURES_OK */
    set_status(d, 0);
    set_status(d, ACKNOWLEDGE | DRIVER);
    for (u32 i = 0; i < 8; i++) d->config[i] = 0xEE;
    write_features(d, 1, 0xFFFFFFFF);
    set_status(d, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
}

static void attack_spurious_acks(struct device *d) {  /* acknowledge interrupts that were never raised */
    for (int i = 0; i < 64; i++) {
        if (d->transport == MMIO) R32(d->regs, MMIO_INTERRUPT_ACK) = 0xFFFFFFFF;
        else (void)*d->isr;
    }
    post_read(0, (u64)DATA, SECTOR);
    kick(d);
}

/* Two vCPUs publishing and kicking the same queue at once, with no lock between them. */
enum { RACE_ROUNDS = 200 };
static struct { volatile u32 go, done, ap_ready; struct device *volatile device; } race;

static void race_rounds(struct device *d) {
    for (int i = 0; i < RACE_ROUNDS; i++) {
        u16 slot = AVAIL[1];
        AVAIL[2 + slot % QUEUE_SIZE] = 0;
        barrier();
        AVAIL[1] = (u16)(slot + 1);
        kick(d);
    }
}

static void attack_two_vcpus_race(struct device *d) {
    post_read(0, (u64)DATA, SECTOR);
    race.device = d;
    u32 round = race.go + 1;
    race.go = round;
    race_rounds(d);
    u64 deadline = rdtsc() + 4 * WAIT_CYCLES;
    while (race.done != round && rdtsc() < deadline) __asm__ volatile("pause");
}

/* The second vCPU: it takes part in each race the first one starts. */
static __attribute__((noreturn)) void second_vcpu(void) {
    u32 seen = 0;
    __atomic_add_fetch(&race.ap_ready, 1, __ATOMIC_SEQ_CST);
    for (;;) {
        while (race.go == seen) __asm__ volatile("pause");
        seen = race.go;
        race_rounds(race.device);
        race.done = seen;
    }
}

static void attack_notify_storm(struct device *d) {  /* notifications of queues that do not exist */
    for (u16 q = 0; q < 64; q++) {
        if (d->transport == MMIO) R32(d->regs, MMIO_QUEUE_NOTIFY) = q * 977u;
        else R16(d->notify, q & 3) = (u16)(q * 977u);
    }
}

static const struct { const char *name; void (*run)(struct device *); } attacks[] = {
    {"hole", attack_hole},
    {"ram_end", attack_ram_end},
    {"ring_itself", attack_ring_itself},
    {"avail_jump", attack_avail_jump},
    {"loop", attack_loop},
    {"reconfigure_in_flight", attack_reconfigure_in_flight},
    {"reset_mid_chain", attack_reset_mid_chain},
    {"config_during_negotiation", attack_config_during_negotiation},
    {"spurious_acks", attack_spurious_acks},
    {"notify_storm", attack_notify_storm},
    {"two_vcpus_race", attack_two_vcpus_race},
};

/* --- Finding the devices -------------------------------------------------------------- */

static int find_mmio(struct device *d) {
    for (u32 i = 0; i < VIRTIO_MMIO_MAX_DEVICES; i++) {
        volatile u8 *regs = (volatile u8 *)(VIRTIO_MMIO_BASE + (u64)i * VIRTIO_MMIO_SIZE);
        if (R32(regs, MMIO_MAGIC) == MMIO_MAGIC_VALUE && R32(regs, MMIO_DEVICE_ID) == VIRTIO_BLK_ID) {
            *d = (struct device){MMIO, regs, 0, 0, regs + MMIO_CONFIG};
            return 1;
        }
    }
    return 0;
}

static u32 pci_read(u32 slot, u32 reg) {
    outl(PCI_CONFIG_PORT, 0x80000000u | slot << 11 | reg);
    return inl(PCI_CONFIG_PORT + 4);
}

static void pci_write(u32 slot, u32 reg, u32 value) {
    outl(PCI_CONFIG_PORT, 0x80000000u | slot << 11 | reg);
    outl(PCI_CONFIG_PORT + 4, value);
}

/* The virtio-pci capabilities (4.1.4) say where each region of BAR 0 is. */
static int find_pci(struct device *d) {
    for (u32 slot = 0; slot < 32; slot++) {
        if (pci_read(slot, 0) != (VIRTIO_BLK_PCI << 16 | VIRTIO_VENDOR)) continue;
        u64 bar = (pci_read(slot, 0x10) & ~0xFull) | (u64)pci_read(slot, 0x14) << 32;
        pci_write(slot, 0x04, pci_read(slot, 0x04) | 0x2);  /* memory space on */
        u32 multiplier = 0;
        u16 notify_off;
        *d = (struct device){PCI, 0, 0, 0, 0};
        for (u32 cap = pci_read(slot, 0x34) & 0xFC; cap; cap = pci_read(slot, cap) >> 8 & 0xFC) {
            u32 head = pci_read(slot, cap);
            if ((head & 0xFF) != 0x09) continue;  /* vendor-specific: a virtio structure */
            volatile u8 *where = (volatile u8 *)(bar + pci_read(slot, cap + 8));
            switch (head >> 24) {
            case 1: d->regs = where; break;
            case 2: d->notify = where; multiplier = pci_read(slot, cap + 16); break;
            case 3: d->isr = where; break;
            case 4: d->config = where; break;
            }
        }
        if (!d->regs || !d->notify || !d->isr || !d->config) return 0;
        R16(d->regs, PCI_QUEUE_SELECT) = 0;
        notify_off = R16(d->regs, PCI_QUEUE_NOTIFY_OFF);
        d->notify += (u64)notify_off * multiplier;
        return 1;
    }
    return 0;
}

/* --- The run -------------------------------------------------------------------------- */

/* Every vCPU starts at _start in long mode: each gets a stack of its own by APIC ID. */
#define STACK_SIZE 16384
#define MAX_VCPUS 2
#define TEXT(x) #x
#define NUMBER(x) TEXT(x)
__attribute__((aligned(16), used)) u8 vcpu_stacks[MAX_VCPUS][STACK_SIZE];
void vcpu_main(u32 apic_id);
__asm__(".globl _start\n"
        "_start:\n"
        "    mov $1, %eax\n"
        "    cpuid\n"
        "    shr $24, %ebx\n"
        "    cmp $" NUMBER(MAX_VCPUS) " - 1, %ebx\n"
        "    ja 1f\n"  /* a vCPU this guest has no stack for stays out of it */
        "    mov %ebx, %edi\n"
        "    lea 1(%rbx), %eax\n"
        "    imul $" NUMBER(STACK_SIZE) ", %eax\n"
        "    lea vcpu_stacks(%rip), %rsp\n"
        "    add %rax, %rsp\n"
        "    call vcpu_main\n"
        "1:  cli\n"
        "    hlt\n"
        "    jmp 1b\n");

void vcpu_main(u32 apic_id) {
    struct device devices[2];
    u8 failures = 0;
    if (apic_id) second_vcpu();
    ram_end = cmdline_number() << 20;
    if (!ram_end || !find_mmio(&devices[0]) || !find_pci(&devices[1])) {
        puts_serial("hostile: no RAM size on the command line, or a virtio-blk device missing\n");
        verdict(0xFF);
    }
    u64 deadline = rdtsc() + 4 * WAIT_CYCLES;
    while (!race.ap_ready && rdtsc() < deadline) __asm__ volatile("pause");
    if (!race.ap_ready) {
        puts_serial("hostile: the second vCPU never started (run with 2 vCPUs)\n");
        verdict(0xFD);
    }
    for (u32 a = 0; a < sizeof(attacks) / sizeof(attacks[0]); a++) {
        for (int t = 0; t < 2; t++) {
            struct device *d = &devices[t];
            if (!init_device(d)) {
                puts_serial("hostile: a device refused a clean initialisation\n");
                verdict(0xFE);
            }
            *BLK_STATUS = 0xFF;
            attacks[a].run(d);
            u16 used = wait_used(d, 1);
            u8 status = get_status(d), blk = *BLK_STATUS;
            u64 sectors = capacity(d);
            int recovered = honest_read_works(d);
            failures += !recovered;
            puts_serial("attack ");
            puts_serial(attacks[a].name);
            puts_serial(" ");
            puts_serial(transport_names[t]);
            puts_serial(": status=");
            put_hex(status);
            puts_serial(" used=");
            put_dec(used);
            puts_serial(" blk=");
            put_hex(blk);
            puts_serial(" capacity=");
            put_dec(sectors);
            puts_serial(" recovered=");
            put_dec((u64)recovered);
            puts_serial("\n");
        }
    }
    puts_serial("hostile: done\n");
    verdict(failures);
}
