/* Guest memory: physical RAM lookup, page-table walks (32-bit, PAE and 4-level), the software
 * TLB, and linear-address reads/writes that end in RAM or in the MMIO callbacks.
 *
 * Every host access is bounds-checked against the region array.  A page-table entry that
 * lies outside RAM reads as 0 (not present), so a corrupt page table gives the guest a #PF. */
#include "interp.h"

#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_U (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR64 0x000ffffffffff000ULL
#define PTE_ADDR32 0xfffff000ULL
#define PAGE_SIZE 4096
#define PAGE_MASK 0xfffULL
#define TP_ALL 0xff

void tlb_flush(struct interp_cpu *cpu)
{
    struct interp_priv_storage *p = P(cpu);
    for (int i = 0; i < TLB_ENTRIES; i++)
        p->tlb[i].vpn = TLB_INVALID;
    p->fetch_vpn = TLB_INVALID;
    p->tlb_has_large = 0;
}

void interp_flush_tlb(struct interp_cpu *cpu)
{
    tlb_flush(cpu);
}

void tlb_flush_page(struct interp_cpu *cpu, uint64_t la)
{
    struct interp_priv_storage *p = P(cpu);
    uint64_t vpn = la >> 12;
    /* A large page is cached as many 4K entries: invalidating one of them is not enough. */
    if (p->tlb_has_large) {
        tlb_flush(cpu);
        return;
    }
    if (p->tlb[vpn % TLB_ENTRIES].vpn == vpn)
        p->tlb[vpn % TLB_ENTRIES].vpn = TLB_INVALID;
    if (p->fetch_vpn == vpn)
        p->fetch_vpn = TLB_INVALID;
}

uint8_t *phys_host(struct interp_cpu *cpu, uint64_t pa, uint64_t len)
{
    for (uint32_t i = 0; i < cpu->nregions; i++) {
        struct interp_region *r = &cpu->regions[i];
        if (pa >= r->gpa && pa - r->gpa < r->size && len <= r->size - (pa - r->gpa))
            return r->host + (pa - r->gpa);
    }
    return NULL;
}

static uint64_t pte_read(struct interp_cpu *cpu, uint64_t pa, int esize)
{
    uint8_t *h = phys_host(cpu, pa, esize);
    uint64_t v = 0;
    if (h)
        memcpy(&v, h, esize);
    return v;
}

static void pte_set_bits(struct interp_cpu *cpu, uint64_t pa, int esize, uint64_t bits)
{
    uint8_t *h = phys_host(cpu, pa, esize);
    if (!h)
        return;
    if (esize == 8)
        __atomic_fetch_or((uint64_t *)h, bits, __ATOMIC_RELAXED);
    else
        __atomic_fetch_or((uint32_t *)h, (uint32_t)bits, __ATOMIC_RELAXED);
}

static int smap_enforced(struct interp_cpu *cpu, int acc)
{
    return (cpu->cr4 & CR4_SMAP) && ((acc & ACC_SYS) || !(cpu->rflags & FL_AC));
}

static int user_access(struct interp_cpu *cpu, int acc)
{
    return P(cpu)->cpl == 3 && !(acc & ACC_SYS);
}

/* The TLB permission bit an access needs. */
static inline uint32_t need_bit(struct interp_cpu *cpu, int acc)
{
    int user = user_access(cpu, acc);
    if (acc & ACC_X)
        return user ? TP_USR_X : TP_SUP_X;
    if (acc & ACC_W)
        return user ? TP_USR_W : smap_enforced(cpu, acc) ? TP_SUP_W_SMAP : TP_SUP_W;
    return user ? TP_USR_R : smap_enforced(cpu, acc) ? TP_SUP_R_SMAP : TP_SUP_R;
}

/* Walk the page tables for `la`.  On success returns 0 and fills *pa and *perm; on a fault
 * returns 1 with the page-fault error code in *err.  Sets accessed/dirty bits. */
static int walk(struct interp_cpu *cpu, uint64_t la, int acc, uint64_t *pa, uint32_t *perm, uint32_t *err)
{
    int lma = is_long_mode(cpu), pae = (cpu->cr4 & CR4_PAE) != 0;
    int nxe = (cpu->efer & EFER_NXE) != 0;
    int esize = (lma || pae) ? 8 : 4;
    int levels = lma ? 4 : pae ? 3 : 2;
    int bits_per_level = esize == 8 ? 9 : 10;
    uint64_t addr_mask = esize == 8 ? PTE_ADDR64 : PTE_ADDR32;
    uint64_t table = lma ? cpu->cr3 & PTE_ADDR64 : pae ? cpu->cr3 & 0xffffffe0ULL : cpu->cr3 & PTE_ADDR32;
    uint64_t entry_addr[4];
    int nent = 0;
    int w = 1, u = 1, nx = 0, user = user_access(cpu, acc);
    uint32_t code = (acc & ACC_W ? PFEC_W : 0) | (user ? PFEC_U : 0) |
                    ((acc & ACC_X) && (nxe || (cpu->cr4 & CR4_SMEP)) ? PFEC_I : 0);
    uint64_t e = 0;
    int shift = 0;

    for (int level = levels - 1; level >= 0; level--) {
        shift = 12 + bits_per_level * level;
        int pae_top = pae && !lma && level == 2;
        uint64_t idx = pae_top ? (la >> 30) & 3 : (la >> shift) & ((1u << bits_per_level) - 1);
        uint64_t ea = table + idx * esize;
        e = pte_read(cpu, ea, esize);
        if (!(e & PTE_P)) {
            *err = code;
            return 1;
        }
        if ((esize == 8 && (e & PTE_NX) && !nxe) || (lma && level == 3 && (e & PTE_PS))) {
            *err = code | PFEC_P | PFEC_RSVD;
            return 1;
        }
        if (!pae_top) {
            entry_addr[nent++] = ea;
            w &= (e & PTE_W) != 0;
            u &= (e & PTE_U) != 0;
            nx |= esize == 8 && nxe && (e & PTE_NX);
        }
        int large = level > 0 && !pae_top && (e & PTE_PS) && (esize == 8 || (cpu->cr4 & CR4_PSE)) &&
                    (level == 1 || (lma && level == 2));
        if (large || level == 0) {
            uint64_t page_mask = (1ULL << shift) - 1;
            uint64_t base = (esize == 8 ? e & PTE_ADDR64 : e & PTE_ADDR32) & ~page_mask;
            if (large && (e & (page_mask & ~0x1fffULL) & PTE_ADDR64)) {   /* reserved low address bits */
                *err = code | PFEC_P | PFEC_RSVD;
                return 1;
            }
            if (large)
                P(cpu)->tlb_has_large = 1;
            *pa = base | (la & page_mask & ~PAGE_MASK);
            break;
        }
        table = e & addr_mask;
    }

    /* Permission checks. */
    int smap = smap_enforced(cpu, acc);
    int wp = (cpu->cr0 & CR0_WP) != 0;
    int smep = (cpu->cr4 & CR4_SMEP) != 0;
    int bad;
    if (acc & ACC_X)
        bad = nx || (user && !u) || (!user && u && smep);
    else if (acc & ACC_W)
        bad = user ? !(u && w) : ((wp && !w) || (u && smap));
    else
        bad = user ? !u : (u && smap);
    if (bad) {
        *err = code | PFEC_P;
        return 1;
    }

    for (int i = 0; i < nent; i++)
        if (!(pte_read(cpu, entry_addr[i], esize) & PTE_A))
            pte_set_bits(cpu, entry_addr[i], esize, PTE_A);
    int dirty = (e & PTE_D) != 0;
    if ((acc & ACC_W) && !dirty) {
        pte_set_bits(cpu, entry_addr[nent - 1], esize, PTE_D);
        dirty = 1;
    }

    int smap_on = (cpu->cr4 & CR4_SMAP) != 0;
    uint32_t pm = TP_SUP_R;
    if ((w || !wp) && dirty) pm |= TP_SUP_W;
    if (!nx && !(u && smep)) pm |= TP_SUP_X;
    if (u) pm |= TP_USR_R;
    if (u && w && dirty) pm |= TP_USR_W;
    if (u && !nx) pm |= TP_USR_X;
    if (!(u && smap_on)) pm |= TP_SUP_R_SMAP | ((pm & TP_SUP_W) ? TP_SUP_W_SMAP : 0);
    *perm = pm;
    return 0;
}

int translate_try(struct interp_cpu *cpu, uint64_t la, int acc, uint8_t **host, uint64_t *pa_out,
                  uint32_t *err)
{
    struct interp_priv_storage *p = P(cpu);
    uint64_t vpn = la >> 12;
    struct tlb_entry *e = &p->tlb[vpn % TLB_ENTRIES];
    uint32_t need = need_bit(cpu, acc);

    if (likely(e->vpn == vpn && (e->perm & need))) {
        *host = e->host ? e->host + (la & PAGE_MASK) : NULL;
        *pa_out = e->pa | (la & PAGE_MASK);
        return 0;
    }
    uint64_t pa;
    uint32_t perm;
    if (cpu->cr0 & CR0_PG) {
        if (walk(cpu, la, acc, &pa, &perm, err))
            return 1;
    } else {
        pa = la & ~PAGE_MASK;
        perm = TP_ALL;
    }
    e->vpn = vpn;
    e->pa = pa;
    e->host = phys_host(cpu, pa, PAGE_SIZE);
    e->perm = perm;
    *host = e->host ? e->host + (la & PAGE_MASK) : NULL;
    *pa_out = pa | (la & PAGE_MASK);
    return 0;
}

uint64_t translate(struct interp_cpu *cpu, uint64_t la, int acc, uint8_t **host)
{
    uint64_t pa;
    uint32_t err;
    if (unlikely(translate_try(cpu, la, acc, host, &pa, &err))) {
        cpu->cr2 = la;
        raise_exc(cpu, EXC_PF, 1, err);
    }
    return pa;
}

static uint64_t mmio_read(struct interp_cpu *cpu, uint64_t pa, int size)
{
    uint64_t v = interp_mmio_read(cpu->ctx, pa, size);
    check_callback(cpu);
    return v & size_mask(size);
}

static void mmio_write(struct interp_cpu *cpu, uint64_t pa, int size, uint64_t v)
{
    interp_mmio_write(cpu->ctx, pa, size, v & size_mask(size));
    check_callback(cpu);
}

/* A data access of [la, la + size) met the debugger's watchpoints: note the first one it
 * overlaps and end the chunk, so that the run stops once the instruction completes. */
static void watch_access(struct interp_cpu *cpu, uint64_t la, int size, uint32_t kind)
{
    for (uint32_t i = 0; i < cpu->nwatches; i++) {
        const struct interp_watch *w = &cpu->watches[i];
        if ((w->kind & kind) && la < w->addr + w->len && w->addr < la + (uint64_t)size) {
            if (cpu->watch_hit < 0)
                cpu->watch_hit = (int32_t)i;
            P(cpu)->attention = 1;
            return;
        }
    }
}

uint64_t lin_read(struct interp_cpu *cpu, uint64_t la, int size, int acc)
{
    uint8_t *h;
    uint64_t v = 0;
    if (unlikely(cpu->nwatches))
        watch_access(cpu, la, size, INTERP_WATCH_READ);
    if (likely((la & PAGE_MASK) + size <= PAGE_SIZE)) {
        uint64_t pa = translate(cpu, la, acc | ACC_R, &h);
        if (likely(h != NULL)) {
            memcpy(&v, h, size);
            return v;
        }
        return mmio_read(cpu, pa, size);
    }
    /* Crosses a page: both pages must translate before anything is read. */
    uint8_t *h2;
    int first = PAGE_SIZE - (la & PAGE_MASK);
    uint64_t pa1 = translate(cpu, la, acc | ACC_R, &h);
    uint64_t pa2 = translate(cpu, la + first, acc | ACC_R, &h2);
    for (int i = 0; i < size; i++) {
        uint64_t b;
        if (i < first)
            b = h ? h[i] : mmio_read(cpu, pa1 + i, 1);
        else
            b = h2 ? h2[i - first] : mmio_read(cpu, pa2 + i - first, 1);
        v |= b << (8 * i);
    }
    return v;
}

void lin_write(struct interp_cpu *cpu, uint64_t la, int size, uint64_t val, int acc)
{
    uint8_t *h;
    if (unlikely(cpu->nwatches))
        watch_access(cpu, la, size, INTERP_WATCH_WRITE);
    if (likely((la & PAGE_MASK) + size <= PAGE_SIZE)) {
        uint64_t pa = translate(cpu, la, acc | ACC_W, &h);
        if (likely(h != NULL))
            memcpy(h, &val, size);
        else
            mmio_write(cpu, pa, size, val);
        return;
    }
    uint8_t *h2;
    int first = PAGE_SIZE - (la & PAGE_MASK);
    uint64_t pa1 = translate(cpu, la, acc | ACC_W, &h);
    uint64_t pa2 = translate(cpu, la + first, acc | ACC_W, &h2);
    for (int i = 0; i < size; i++) {
        uint8_t b = (uint8_t)(val >> (8 * i));
        if (i < first) {
            if (h) h[i] = b; else mmio_write(cpu, pa1 + i, 1, b);
        } else {
            if (h2) h2[i - first] = b; else mmio_write(cpu, pa2 + i - first, 1, b);
        }
    }
}

void lin_read_buf(struct interp_cpu *cpu, uint64_t la, void *buf, int len, int acc)
{
    uint8_t *out = buf;
    for (int done = 0; done < len;) {
        int chunk = len - done < 8 ? len - done : 8;
        uint64_t v = lin_read(cpu, la + done, chunk, acc);
        memcpy(out + done, &v, chunk);
        done += chunk;
    }
}

void lin_write_buf(struct interp_cpu *cpu, uint64_t la, const void *buf, int len, int acc)
{
    const uint8_t *in = buf;
    uint8_t *h;
    /* Check every page first so a fault leaves memory untouched. */
    for (uint64_t page = la & ~PAGE_MASK; page < la + len; page += PAGE_SIZE)
        translate(cpu, page < la ? la : page, acc | ACC_W, &h);
    for (int done = 0; done < len;) {
        int chunk = len - done < 8 ? len - done : 8;
        uint64_t v = 0;
        memcpy(&v, in + done, chunk);
        lin_write(cpu, la + done, chunk, v, acc);
        done += chunk;
    }
}
