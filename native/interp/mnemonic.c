/* interp_mnemonic: the name of the instruction at CS:RIP, for statistics about which
 * instructions the VMM had to emulate.  A side-effect-free partial decoder: it reads
 * prefixes, the opcode (1, 2 or 3 bytes) and the ModRM reg field where groups need it. */
#include <stdio.h>
#include "interp.h"

static const char *const one_byte[256] = {
    "add", "add", "add", "add", "add", "add", "push", "pop", "or", "or", "or", "or", "or", "or", "push", "0f",
    "adc", "adc", "adc", "adc", "adc", "adc", "push", "pop", "sbb", "sbb", "sbb", "sbb", "sbb", "sbb", "push", "pop",
    "and", "and", "and", "and", "and", "and", "es", "daa", "sub", "sub", "sub", "sub", "sub", "sub", "cs", "das",
    "xor", "xor", "xor", "xor", "xor", "xor", "ss", "aaa", "cmp", "cmp", "cmp", "cmp", "cmp", "cmp", "ds", "aas",
    "inc", "inc", "inc", "inc", "inc", "inc", "inc", "inc", "dec", "dec", "dec", "dec", "dec", "dec", "dec", "dec",
    "push", "push", "push", "push", "push", "push", "push", "push", "pop", "pop", "pop", "pop", "pop", "pop", "pop", "pop",
    "pusha", "popa", "bound", "movsxd", "fs", "gs", "opsize", "addrsize", "push", "imul", "push", "imul", "insb", "ins", "outsb", "outs",
    "jo", "jno", "jb", "jae", "je", "jne", "jbe", "ja", "js", "jns", "jp", "jnp", "jl", "jge", "jle", "jg",
    "grp1", "grp1", "grp1", "grp1", "test", "test", "xchg", "xchg", "mov", "mov", "mov", "mov", "mov", "lea", "mov", "pop",
    "nop", "xchg", "xchg", "xchg", "xchg", "xchg", "xchg", "xchg", "cbw", "cwd", "callf", "fwait", "pushf", "popf", "sahf", "lahf",
    "mov", "mov", "mov", "mov", "movsb", "movs", "cmpsb", "cmps", "test", "test", "stosb", "stos", "lodsb", "lods", "scasb", "scas",
    "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov", "mov",
    "grp2", "grp2", "ret", "ret", "les", "lds", "mov", "mov", "enter", "leave", "retf", "retf", "int3", "int", "into", "iret",
    "grp2", "grp2", "grp2", "grp2", "aam", "aad", "salc", "xlat", "x87", "x87", "x87", "x87", "x87", "x87", "x87", "x87",
    "loopne", "loope", "loop", "jrcxz", "in", "in", "out", "out", "call", "jmp", "jmpf", "jmp", "in", "in", "out", "out",
    "lock", "int1", "repne", "rep", "hlt", "cmc", "grp3", "grp3", "clc", "stc", "cli", "sti", "cld", "std", "grp4", "grp5",
};

static const char *const grp1[8] = {"add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"};
static const char *const grp2[8] = {"rol", "ror", "rcl", "rcr", "shl", "shr", "sal", "sar"};
static const char *const grp3[8] = {"test", "test", "not", "neg", "mul", "imul", "div", "idiv"};
static const char *const grp5[8] = {"inc", "dec", "call", "callf", "jmp", "jmpf", "push", "?"};
static const char *const grp6[8] = {"sldt", "str", "lldt", "ltr", "verr", "verw", "?", "?"};
static const char *const grp7_mem[8] = {"sgdt", "sidt", "lgdt", "lidt", "smsw", "?", "lmsw", "invlpg"};
static const char *const grp15_mem[8] = {"fxsave", "fxrstor", "ldmxcsr", "stmxcsr", "xsave", "xrstor", "xsaveopt", "clflush"};
static const char *const grp9_mem[8] = {"?", "cmpxchg8b", "?", "xrstors", "xsavec", "xsaves", "?", "?"};
static const char *const cc_names[16] = {"o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"};

/* The three-byte maps (66-prefixed SSSE3/SSE4 names; crc32/movbe are told apart by F2). */
static const char *map_0f38(uint8_t op)
{
    static const char *const low[0x42] = {
        "pshufb", "phaddw", "phaddd", "phaddsw", "pmaddubsw", "phsubw", "phsubd", "phsubsw",
        "psignb", "psignw", "psignd", "pmulhrsw", 0, 0, 0, 0,
        "pblendvb", 0, 0, 0, "blendvps", "blendvpd", 0, "ptest", 0, 0, 0, 0, "pabsb", "pabsw", "pabsd", 0,
        "pmovsxbw", "pmovsxbd", "pmovsxbq", "pmovsxwd", "pmovsxwq", "pmovsxdq", 0, 0,
        "pmuldq", "pcmpeqq", "movntdqa", "packusdw", 0, 0, 0, 0,
        "pmovzxbw", "pmovzxbd", "pmovzxbq", "pmovzxwd", "pmovzxwq", "pmovzxdq", 0, "pcmpgtq",
        "pminsb", "pminsd", "pminuw", "pminud", "pmaxsb", "pmaxsd", "pmaxuw", "pmaxud",
        "pmulld", "phminposuw",
    };
    return op < 0x42 ? low[op] : 0;
}

static const char *map_0f3a(uint8_t op)
{
    switch (op) {
    case 0x08: return "roundps";
    case 0x09: return "roundpd";
    case 0x0a: return "roundss";
    case 0x0b: return "roundsd";
    case 0x0c: return "blendps";
    case 0x0d: return "blendpd";
    case 0x0e: return "pblendw";
    case 0x0f: return "palignr";
    case 0x14: return "pextrb";
    case 0x15: return "pextrw";
    case 0x16: return "pextrd";
    case 0x17: return "extractps";
    case 0x20: return "pinsrb";
    case 0x21: return "insertps";
    case 0x22: return "pinsrd";
    case 0x40: return "dpps";
    case 0x41: return "dppd";
    case 0x42: return "mpsadbw";
    case 0x44: return "pclmulqdq";
    case 0x60: return "pcmpestrm";
    case 0x61: return "pcmpestri";
    case 0x62: return "pcmpistrm";
    case 0x63: return "pcmpistri";
    default: return 0;
    }
}

static const char *grp7_reg(uint8_t modrm)
{
    switch (modrm) {
    case 0xc1: return "vmcall";
    case 0xc8: return "monitor";
    case 0xc9: return "mwait";
    case 0xca: return "clac";
    case 0xcb: return "stac";
    case 0xd0: return "xgetbv";
    case 0xd1: return "xsetbv";
    case 0xd9: return "vmmcall";
    case 0xee: return "rdpkru";
    case 0xef: return "wrpkru";
    case 0xf8: return "swapgs";
    case 0xf9: return "rdtscp";
    default: break;
    }
    if (((modrm >> 3) & 7) == 4) return "smsw";
    if (((modrm >> 3) & 7) == 6) return "lmsw";
    return "?";
}

/* VEX.66 0F 38 / 0F 3A instructions without a legacy SSE form (AVX, AVX2, VEX AES/PCLMUL). */
static const char *avx_0f38_name(uint8_t op, int w)
{
    switch (op) {
    case 0x0c: return "vpermilps";
    case 0x0d: return "vpermilpd";
    case 0x0e: return "vtestps";
    case 0x0f: return "vtestpd";
    case 0x16: return "vpermps";
    case 0x18: return "vbroadcastss";
    case 0x19: return "vbroadcastsd";
    case 0x1a: return "vbroadcastf128";
    case 0x2c: case 0x2d: case 0x2e: case 0x2f: return op & 1 ? "vmaskmovpd" : "vmaskmovps";
    case 0x36: return "vpermd";
    case 0x45: return w ? "vpsrlvq" : "vpsrlvd";
    case 0x46: return "vpsravd";
    case 0x47: return w ? "vpsllvq" : "vpsllvd";
    case 0x58: return "vpbroadcastd";
    case 0x59: return "vpbroadcastq";
    case 0x5a: return "vbroadcasti128";
    case 0x78: return "vpbroadcastb";
    case 0x79: return "vpbroadcastw";
    case 0x8c: case 0x8e: return w ? "vpmaskmovq" : "vpmaskmovd";
    case 0x90: return w ? "vpgatherdq" : "vpgatherdd";
    case 0x91: return w ? "vpgatherqq" : "vpgatherqd";
    case 0x92: return w ? "vgatherdpd" : "vgatherdps";
    case 0x93: return w ? "vgatherqpd" : "vgatherqps";
    case 0xdb: return "vaesimc";
    case 0xdc: return "vaesenc";
    case 0xdd: return "vaesenclast";
    case 0xde: return "vaesdec";
    case 0xdf: return "vaesdeclast";
    default: return 0;
    }
}

static const char *avx_0f3a_name(uint8_t op)
{
    switch (op) {
    case 0x00: return "vpermq";
    case 0x01: return "vpermpd";
    case 0x02: return "vpblendd";
    case 0x04: return "vpermilps";
    case 0x05: return "vpermilpd";
    case 0x06: return "vperm2f128";
    case 0x18: return "vinsertf128";
    case 0x19: return "vextractf128";
    case 0x38: return "vinserti128";
    case 0x39: return "vextracti128";
    case 0x46: return "vperm2i128";
    case 0x4a: return "vblendvps";
    case 0x4b: return "vblendvpd";
    case 0x4c: return "vpblendvb";
    case 0xdf: return "vaeskeygenassist";
    default: return 0;
    }
}

/* A VEX-encoded instruction: b[i] is the C4/C5 byte. */
static const char *vex_name(const uint8_t *b, int n, int i)
{
    static __thread char buf[24];
    static const char *const fma_kind[10] = {"fmaddsub", "fmsubadd", "fmadd", "fmadd", "fmsub", "fmsub",
                                             "fnmadd", "fnmadd", "fnmsub", "fnmsub"};
    int c4 = b[i] == 0xc4;
    if (i + (c4 ? 3 : 2) >= n) return "?";
    int map = c4 ? b[i + 1] & 0x1f : 1;
    uint8_t last = b[i + (c4 ? 2 : 1)];
    int pp = last & 3, w = c4 && (last & 0x80);
    uint8_t op = b[i + (c4 ? 3 : 2)];
    int reg = i + (c4 ? 4 : 3) < n ? (b[i + (c4 ? 4 : 3)] >> 3) & 7 : 0;
    if (map == 2) {
        switch (op << 2 | pp) {
        case 0xf2 << 2: return "andn";
        case 0xf3 << 2: return reg == 1 ? "blsr" : reg == 2 ? "blsmsk" : reg == 3 ? "blsi" : "?";
        case 0xf5 << 2: return "bzhi";
        case 0xf5 << 2 | 2: return "pext";
        case 0xf5 << 2 | 3: return "pdep";
        case 0xf6 << 2 | 3: return "mulx";
        case 0xf7 << 2: return "bextr";
        case 0xf7 << 2 | 1: return "shlx";
        case 0xf7 << 2 | 2: return "sarx";
        case 0xf7 << 2 | 3: return "shrx";
        case 0x13 << 2 | 1: return "vcvtph2ps";
        default: break;
        }
        int k = op & 0xf, f = op >> 4;
        if (pp == 1 && f >= 9 && f <= 0xb && k >= 6) {
            const char *form = f == 9 ? "132" : f == 0xa ? "213" : "231";
            const char *type = (k >= 8 && (k & 1)) ? (w ? "sd" : "ss") : (w ? "pd" : "ps");
            snprintf(buf, sizeof(buf), "v%s%s%s", fma_kind[k - 6], form, type);
            return buf;
        }
    }
    if (map == 3 && op == 0xf0 && pp == 3) return "rorx";
    if (map == 3 && op == 0x1d && pp == 1) return "vcvtps2ph";
    if (pp == 1 && (map == 2 || map == 3)) {             /* AVX-only names, then the SSE4 ones with a v */
        const char *name = map == 2 ? avx_0f38_name(op, w) : avx_0f3a_name(op);
        if (name) return name;
        name = map == 2 ? map_0f38(op) : map_0f3a(op);
        if (name) {
            snprintf(buf, sizeof(buf), "v%s", name);
            return buf;
        }
    }
    if (map == 1 && op == 0xf7 && pp == 1) return "vmaskmovdqu";
    if (map == 1 && op == 0x77 && pp == 0) return last & 4 ? "vzeroall" : "vzeroupper";
    snprintf(buf, sizeof(buf), "vex_%s%02x", map == 1 ? "0f" : map == 2 ? "0f38" : map == 3 ? "0f3a" : "?", op);
    return buf;
}

static const char *two_byte(const uint8_t *b, int n, int i, uint8_t rep, int pfx66)
{
    if (i >= n) return "?";
    uint8_t op = b[i++];
    uint8_t modrm = i < n ? b[i] : 0;
    int reg = (modrm >> 3) & 7, mem = (modrm >> 6) != 3;
    static __thread char buf[16];       /* per thread: several vCPU threads may ask at once */
    switch (op) {
    case 0x00: return grp6[reg];
    case 0x01: return mem ? grp7_mem[reg] : grp7_reg(modrm);
    case 0x05: return "syscall";
    case 0x06: return "clts";
    case 0x07: return "sysret";
    case 0x08: return "invd";
    case 0x09: return "wbinvd";
    case 0x0b: return "ud2";
    case 0x0d: case 0x18: return "prefetch";
    case 0x1e: return rep == 0xf3 ? "endbr" : "nop";
    case 0x1f: return "nop";
    case 0x20: case 0x22: return "mov_cr";
    case 0x21: case 0x23: return "mov_dr";
    case 0x30: return "wrmsr";
    case 0x31: return "rdtsc";
    case 0x32: return "rdmsr";
    case 0x33: return "rdpmc";
    case 0x34: return "sysenter";
    case 0x35: return "sysexit";
    case 0x38: {
        const char *name = map_0f38(modrm);            /* "modrm" is the third opcode byte here */
        if (modrm == 0xf6 && (rep == 0xf3 || (pfx66 && !rep))) return rep ? "adox" : "adcx";
        if (modrm == 0xf0 || modrm == 0xf1) return rep == 0xf2 ? "crc32" : "movbe";
        if (name) return name;
        snprintf(buf, sizeof(buf), "sse_0f38%02x", modrm);
        return buf;
    }
    case 0x3a: {
        const char *name = map_0f3a(modrm);
        if (name) return name;
        snprintf(buf, sizeof(buf), "sse_0f3a%02x", modrm);
        return buf;
    }
    case 0x77: return "emms";
    case 0xa0: case 0xa8: return "push";
    case 0xa1: case 0xa9: return "pop";
    case 0xa2: return "cpuid";
    case 0xa3: return "bt";
    case 0xa4: case 0xa5: return "shld";
    case 0xab: return "bts";
    case 0xac: case 0xad: return "shrd";
    case 0xae:
        if (mem) return grp15_mem[reg];
        if (rep == 0xf3 && reg < 4) return reg & 2 ? "wrfsgsbase" : "rdfsgsbase";
        return reg == 5 ? "lfence" : reg == 6 ? "mfence" : reg == 7 ? "sfence" : "?";
    case 0xaf: return "imul";
    case 0xb0: case 0xb1: return "cmpxchg";
    case 0xb2: return "lss";
    case 0xb3: return "btr";
    case 0xb4: return "lfs";
    case 0xb5: return "lgs";
    case 0xb6: case 0xb7: return "movzx";
    case 0xb8: return rep == 0xf3 ? "popcnt" : "?";
    case 0xba: return reg == 4 ? "bt" : reg == 5 ? "bts" : reg == 6 ? "btr" : reg == 7 ? "btc" : "?";
    case 0xbb: return "btc";
    case 0xbc: return rep == 0xf3 ? "tzcnt" : "bsf";
    case 0xbd: return rep == 0xf3 ? "lzcnt" : "bsr";
    case 0xbe: case 0xbf: return "movsx";
    case 0xc0: case 0xc1: return "xadd";
    case 0xc7:
        if (mem) return grp9_mem[reg];
        return reg == 6 ? "rdrand" : reg == 7 ? (rep == 0xf3 ? "rdpid" : "rdseed") : "?";
    case 0xff: return "ud0";
    case 0xb9: return "ud1";
    default: break;
    }
    if (op >= 0x40 && op <= 0x4f) { snprintf(buf, sizeof(buf), "cmov%s", cc_names[op & 15]); return buf; }
    if (op >= 0x80 && op <= 0x8f) { snprintf(buf, sizeof(buf), "j%s", cc_names[op & 15]); return buf; }
    if (op >= 0x90 && op <= 0x9f) { snprintf(buf, sizeof(buf), "set%s", cc_names[op & 15]); return buf; }
    if (op >= 0xc8 && op <= 0xcf) return "bswap";
    snprintf(buf, sizeof(buf), "sse_0f%02x", op);
    return buf;
}

const char *interp_mnemonic(struct interp_cpu *cpu)
{
    uint8_t b[15];
    int n = 0;
    interp_sync(cpu);
    uint64_t la = P(cpu)->code64 ? cpu->rip : (cpu->seg[INTERP_CS].base + cpu->rip) & 0xffffffffULL;
    while (n < 15) {
        uint8_t *h;
        uint64_t pa;
        uint32_t err;
        if (translate_try(cpu, la + n, ACC_X, &h, &pa, &err) || !h)
            break;
        b[n++] = *h;
    }
    int i = 0;
    uint8_t rep = 0;
    int pfx66 = 0;
    while (i < n) {
        uint8_t op = b[i];
        if (op == 0xf2 || op == 0xf3)
            rep = op;
        else if (op == 0x66)
            pfx66 = 1;
        else if (!(op == 0x66 || op == 0x26 || op == 0x2e || op == 0x36 || op == 0x3e || op == 0x64 || op == 0x65 ||
                   op == 0x67 || op == 0xf0 || (P(cpu)->code64 && (op & 0xf0) == 0x40)))
            break;
        i++;
    }
    if (i >= n)
        return "?";
    uint8_t op = b[i];
    int reg = i + 1 < n ? (b[i + 1] >> 3) & 7 : 0;
    switch (op) {
    case 0x0f: return two_byte(b, n, i + 1, rep, pfx66);
    case 0xc4: case 0xc5:
        if (P(cpu)->code64 || (i + 1 < n && b[i + 1] >= 0xc0)) return vex_name(b, n, i);
        return one_byte[op];
    case 0x80: case 0x81: case 0x82: case 0x83: return grp1[reg];
    case 0xc0: case 0xc1: case 0xd0: case 0xd1: case 0xd2: case 0xd3: return grp2[reg];
    case 0xf6: case 0xf7: return grp3[reg];
    case 0xfe: return reg == 0 ? "inc" : reg == 1 ? "dec" : "?";
    case 0xff: return grp5[reg];
    case 0x90: return rep == 0xf3 ? "pause" : "nop";
    default: return one_byte[op];
    }
}
