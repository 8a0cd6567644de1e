/* A program that exercises each instruction-set class a distribution's user space meets, and
 * prints results that depend on every bit of them.  Built static for an x86-64 level
 * (-march=x86-64, -march=x86-64-v2, -march=x86-64-v3), it runs on the host and as a command
 * in a guest under `--accel interp`; the outputs must be identical.
 *
 *   x87:      long double arithmetic, rounding modes, conversions and the libm functions
 *             glibc implements with the x87 (sinl, expl, powl, fmodl...), printf of long doubles
 *   v2:       SSE4.2 string compares and CRC32, SSE4.1 blends/rounding/dot products, SSSE3
 *             shuffles, POPCNT, and glibc's CPUID-dispatched string functions
 *   v3:       AVX2 integer, FMA, BMI1/BMI2 (pdep, pext, bzhi, mulx), LZCNT/TZCNT, MOVBE, F16C,
 *             and loops the compiler vectorises to AVX2 */
#include <fenv.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t digest = 14695981039346656037ULL;

/* FNV-1a over the bytes of every result, so one line summarises many values. */
static void mix(const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        digest = (digest ^ p[i]) * 1099511628211ULL;
}

static void mix_ld(long double v)
{
    mix(&v, 10);
}

static void x87(void)
{
    volatile long double third = 1.0L / 3.0L, big = 1e4000L, tiny = 1e-4000L;
    printf("x87: %.21Lg %La %.5Lg %.5Lg\n", third, third * 3 - 1, big * big, tiny * tiny);
    printf("x87 libm: %.20Lg %.20Lg %.20Lg %.20Lg\n", sinl(1e6L), expl(11.5L), powl(2.5L, 37.25L), atan2l(1, -3));
    printf("x87 libm: %.20Lg %.20Lg %.20Lg %.20Lg\n", logl(7.0L), fmodl(1e30L, 7.25L), sqrtl(2.0L), cbrtl(-27.5L));
    static const int modes[] = {FE_TONEAREST, FE_DOWNWARD, FE_UPWARD, FE_TOWARDZERO};
    for (int m = 0; m < 4; m++) {
        fesetround(modes[m]);
        volatile long double x = 2.5L, y = -2.5L, z = 1.0L;
        long double q = z / 7.0L;
        printf("x87 round %d: %.0Lf %.0Lf %ld %La\n", m, rintl(x), rintl(y), lrintl(y * 3), q);
        mix_ld(q);
    }
    fesetround(FE_TONEAREST);
    for (int i = 1; i < 2000; i++) {
        long double v = (long double)i / 17.0L;
        mix_ld(sinl(v) + cosl(v) * tanl(v / 4) + expl(-v) + logl(v) + atanl(v) + hypotl(v, 3) + log2l(v));
        mix_ld(remainderl(v * 1e10L, 3.1L) + ldexpl(v, i % 50 - 25) + exp2l(v / 100) + log1pl(v));
    }
    long double parsed = strtold("3.14159265358979323846264338327950288", NULL);
    printf("x87 strtold: %.21Lg; digest %016llx\n", parsed, (unsigned long long)digest);
}

static void sse(void)
{
    digest = 14695981039346656037ULL;
    double sums[4] = {0};
    for (int i = 0; i < 1000; i++) {
        double v = i * 0.37;
        sums[i & 3] += sqrt(v) * 1.5 - v / 3.0;
    }
    char text[256];
    for (int i = 0; i < 255; i++)
        text[i] = (char)(' ' + (i * 7) % 90);
    text[255] = 0;
    printf("sse2: %.17g %.17g strlen %zu strchr %td memcmp %d\n", sums[0], sums[3], strlen(text),
           strchr(text, 'Q') - text, memcmp(text, text + 90, 40) > 0);
}

#ifdef __SSE4_2__
static void v2(void)
{
    digest = 14695981039346656037ULL;
    const char *hay = "The quick brown fox jumps over the lazy dog; 0123456789";
    __m128i needle = _mm_setr_epi8('x', 'y', 'z', 'o', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128i ranges = _mm_setr_epi8('0', '9', 'A', 'Z', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    int any = _mm_cmpistri(needle, _mm_loadu_si128((const __m128i *)hay), _SIDD_CMP_EQUAL_ANY);
    int range = _mm_cmpistri(ranges, _mm_loadu_si128((const __m128i *)(hay + 40)), _SIDD_CMP_RANGES);
    __m128i ordered = _mm_cmpestrm(_mm_loadu_si128((const __m128i *)"fox"), 3,
                                   _mm_loadu_si128((const __m128i *)(hay + 10)), 16,
                                   _SIDD_CMP_EQUAL_ORDERED | _SIDD_UNIT_MASK);
    mix(&ordered, 16);
    uint32_t crc = 0xFFFFFFFF;
    for (const char *p = hay; *p; p++)
        crc = _mm_crc32_u8(crc, (unsigned char)*p);
    uint64_t crc64 = _mm_crc32_u64(0, 0x0123456789ABCDEFULL);
    __m128i a = _mm_setr_epi32(1, -2, 3, -4), b = _mm_setr_epi32(100000, 3, -7, 9);
    __m128i prod = _mm_mullo_epi32(a, b), blend = _mm_blendv_epi8(a, b, _mm_setr_epi32(0, -1, 0, -1));
    __m128i shuffled = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)hay), _mm_setr_epi8(15, 14, 13, 12, 11,
                                        10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    __m128d rounded = _mm_round_pd(_mm_setr_pd(2.5, -1.75), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m128 dot = _mm_dp_ps(_mm_setr_ps(1, 2, 3, 4), _mm_setr_ps(5, 6, 7, 8), 0xF1);
    mix(&prod, 16); mix(&blend, 16); mix(&shuffled, 16); mix(&rounded, 16); mix(&dot, 16);
    uint64_t bits = 0;
    for (uint64_t i = 1; i < 5000; i++)
        bits += __builtin_popcountll(i * 0x9E3779B97F4A7C15ULL);
    printf("sse4.2: any %d range %d crc %08x crc64 %016llx popcnt %llu; digest %016llx\n", any, range, crc,
           (unsigned long long)crc64, (unsigned long long)bits, (unsigned long long)digest);
}
#endif

#ifdef __AVX2__
static int32_t ints[1024];
static float floats[1024];

static void v3(void)
{
    digest = 14695981039346656037ULL;
    for (int i = 0; i < 1024; i++) {
        ints[i] = i * 2654435761u;
        floats[i] = (float)i / 3.0f;
    }
    int64_t isum = 0;
    float fsum = 0;
    for (int i = 0; i < 1024; i++) {      /* vectorised by the compiler (-O2 -march=x86-64-v3) */
        isum += (int64_t)(ints[i] >> 3) * (i & 7);
        fsum += floats[i] * floats[i] + 1.0f;
    }
    __m256i x = _mm256_loadu_si256((const __m256i *)ints), y = _mm256_loadu_si256((const __m256i *)(ints + 8));
    __m256i mixed = _mm256_add_epi32(_mm256_mullo_epi32(x, y), _mm256_permutevar8x32_epi32(x, _mm256_set_epi32(0, 1,
                                     2, 3, 4, 5, 6, 7)));
    __m256i shuffled = _mm256_shuffle_epi8(mixed, _mm256_set1_epi32(0x00010203));
    __m256d fused = _mm256_fmadd_pd(_mm256_set1_pd(0.1), _mm256_set_pd(3, 1e16, -7, 1.0 / 3), _mm256_set1_pd(-0.3));
    __m256 half = _mm256_cvtph_ps(_mm_set1_epi16(0x3C01));
    __m128i packed = _mm256_cvtps_ph(_mm256_set1_ps(1.0f / 3.0f), _MM_FROUND_TO_NEAREST_INT);
    mix(&mixed, 32); mix(&shuffled, 32); mix(&fused, 32); mix(&half, 32); mix(&packed, 16);
    unsigned long long high, low = _mulx_u64(0xFEDCBA9876543210ULL, 0x0123456789ABCDEFULL, &high);
    uint32_t be;
    memcpy(&be, "\x01\x02\x03\x04", 4);
    printf("avx2: isum %lld fsum %.9g fma %.17g\n", (long long)isum, fsum, fused[2]);
    printf("bmi: pdep %016llx pext %016llx bzhi %llx mulx %016llx:%016llx lzcnt %u tzcnt %u movbe %08x\n",
           (unsigned long long)_pdep_u64(0x1234, 0xF0F0F0F0F0F0F0F0ULL),
           (unsigned long long)_pext_u64(0xFEDCBA9876543210ULL, 0xFF00FF00FF00FF00ULL),
           (unsigned long long)_bzhi_u64(~0ULL, 37), high, low, (unsigned)_lzcnt_u64(0x00F0000000000000ULL),
           (unsigned)_tzcnt_u64(0x0000000000100000ULL), __builtin_bswap32(be));
    printf("avx2 digest %016llx\n", (unsigned long long)digest);
}
#endif

int main(void)
{
    x87();
    sse();
#ifdef __SSE4_2__
    v2();
#endif
#ifdef __AVX2__
    v3();
#endif
    return 0;
}
