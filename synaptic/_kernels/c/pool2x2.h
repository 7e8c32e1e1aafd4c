/* 2x2 max and average pooling of one map with AVX-512 (syn_pool2_f / syn_pool2_d), for
 * pool_map in _convpool.pxd (conv.pyx, pool.pyx); SYN_POOL2_SIMD says whether this CPU
 * level has them (AVX-512 F + VL), else the scalar loops of _convpool.pxd run.
 *
 * Declared for Cython in _convpool.pxd.  Compiled once per CPU level.
 */
#ifndef SYNAPTIC_POOL2X2_H
#define SYNAPTIC_POOL2X2_H

#include <math.h>
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define SYN_POOL2_SIMD 1
/* 2x2 pooling of one map (rows of wc values, ld apart) with AVX-512: 16 (f32) or 8 (f64)
   windows at a time, the even/odd columns split by permutes.  Max: the first maximum
   of the row-major scan from -inf (ordered > so NaN never wins), as max_pool_map. */
static void syn_pool2_f(int avg, const float* y, long ld, long ho, long wo, long wc,
                        float* out, int* idx, int base) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 ninf = _mm512_set1_ps(-INFINITY), quarter = _mm512_set1_ps(4.0f);
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi32(1);
    const __m512i down = _mm512_set1_epi32((int)wc), diag = _mm512_set1_epi32((int)wc + 1);
    for (long io = 0; io < ho; io++) {
        const float* r0 = y + 2 * io * ld;
        const float* r1 = r0 + ld;
        for (long jo = 0; jo < wo; jo += 16) {
            long cnt = wo - jo < 16 ? wo - jo : 16;
            __mmask16 m = (__mmask16)(cnt == 16 ? 0xFFFFu : (1u << cnt) - 1u);
            __mmask16 mlo = (__mmask16)(2 * cnt >= 16 ? 0xFFFFu : (1u << (2 * cnt)) - 1u);
            __mmask16 mhi = (__mmask16)(2 * cnt <= 16 ? 0u : (2 * cnt >= 32 ? 0xFFFFu : (1u << (2 * cnt - 16)) - 1u));
            __m512 a0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * jo), a1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * jo + 16);
            __m512 c0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * jo), c1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * jo + 16);
            __m512 a = _mm512_permutex2var_ps(a0, even, a1), b = _mm512_permutex2var_ps(a0, odd, a1);
            __m512 c = _mm512_permutex2var_ps(c0, even, c1), d = _mm512_permutex2var_ps(c0, odd, c1);
            if (avg) {
                __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), c), d);
                _mm512_mask_storeu_ps(out + io * wo + jo, m, _mm512_div_ps(s, quarter));
                continue;
            }
            __m512 best = _mm512_mask_mov_ps(ninf, _mm512_cmp_ps_mask(a, ninf, _CMP_GT_OQ), a);
            __m512i bi = zero;
            __mmask16 t = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_ps(best, t, b); bi = _mm512_mask_mov_epi32(bi, t, one);
            t = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_ps(best, t, c); bi = _mm512_mask_mov_epi32(bi, t, down);
            t = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_ps(best, t, d); bi = _mm512_mask_mov_epi32(bi, t, diag);
            best = _mm512_mask_mov_ps(best, _mm512_cmpeq_epi32_mask(bi, zero), a);
            _mm512_mask_storeu_ps(out + io * wo + jo, m, best);
            if (idx) {
                __m512i at = _mm512_add_epi32(even, _mm512_set1_epi32(base + (int)(2 * io * wc + 2 * jo)));
                _mm512_mask_storeu_epi32(idx + io * wo + jo, m, _mm512_add_epi32(at, bi));
            }
        }
    }
}
static void syn_pool2_d(int avg, const double* y, long ld, long ho, long wo, long wc,
                        double* out, int* idx, int base) {
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi64(even, _mm512_set1_epi64(1));
    const __m256i even32 = _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512d ninf = _mm512_set1_pd(-INFINITY), quarter = _mm512_set1_pd(4.0);
    const __m256i zero = _mm256_setzero_si256(), one = _mm256_set1_epi32(1);
    const __m256i down = _mm256_set1_epi32((int)wc), diag = _mm256_set1_epi32((int)wc + 1);
    for (long io = 0; io < ho; io++) {
        const double* r0 = y + 2 * io * ld;
        const double* r1 = r0 + ld;
        for (long jo = 0; jo < wo; jo += 8) {
            long cnt = wo - jo < 8 ? wo - jo : 8;
            __mmask8 m = (__mmask8)(cnt == 8 ? 0xFFu : (1u << cnt) - 1u);
            __mmask8 mlo = (__mmask8)(2 * cnt >= 8 ? 0xFFu : (1u << (2 * cnt)) - 1u);
            __mmask8 mhi = (__mmask8)(2 * cnt <= 8 ? 0u : (2 * cnt >= 16 ? 0xFFu : (1u << (2 * cnt - 8)) - 1u));
            __m512d a0 = _mm512_maskz_loadu_pd(mlo, r0 + 2 * jo), a1 = _mm512_maskz_loadu_pd(mhi, r0 + 2 * jo + 8);
            __m512d c0 = _mm512_maskz_loadu_pd(mlo, r1 + 2 * jo), c1 = _mm512_maskz_loadu_pd(mhi, r1 + 2 * jo + 8);
            __m512d a = _mm512_permutex2var_pd(a0, even, a1), b = _mm512_permutex2var_pd(a0, odd, a1);
            __m512d c = _mm512_permutex2var_pd(c0, even, c1), d = _mm512_permutex2var_pd(c0, odd, c1);
            if (avg) {
                __m512d s = _mm512_add_pd(_mm512_add_pd(_mm512_add_pd(a, b), c), d);
                _mm512_mask_storeu_pd(out + io * wo + jo, m, _mm512_div_pd(s, quarter));
                continue;
            }
            __m512d best = _mm512_mask_mov_pd(ninf, _mm512_cmp_pd_mask(a, ninf, _CMP_GT_OQ), a);
            __m256i bi = zero;
            __mmask8 t = _mm512_cmp_pd_mask(b, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_pd(best, t, b); bi = _mm256_mask_mov_epi32(bi, t, one);
            t = _mm512_cmp_pd_mask(c, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_pd(best, t, c); bi = _mm256_mask_mov_epi32(bi, t, down);
            t = _mm512_cmp_pd_mask(d, best, _CMP_GT_OQ);
            best = _mm512_mask_mov_pd(best, t, d); bi = _mm256_mask_mov_epi32(bi, t, diag);
            best = _mm512_mask_mov_pd(best, _mm256_cmpeq_epi32_mask(bi, zero), a);
            _mm512_mask_storeu_pd(out + io * wo + jo, m, best);
            if (idx) {
                __m256i at = _mm256_add_epi32(even32, _mm256_set1_epi32(base + (int)(2 * io * wc + 2 * jo)));
                _mm256_mask_storeu_epi32(idx + io * wo + jo, m, _mm256_add_epi32(at, bi));
            }
        }
    }
}
#else
#define SYN_POOL2_SIMD 0
static void syn_pool2_f(int avg, const float* y, long ld, long ho, long wo, long wc,
                        float* out, int* idx, int base) {}
static void syn_pool2_d(int avg, const double* y, long ld, long ho, long wo, long wc,
                        double* out, int* idx, int base) {}
#endif

#endif /* SYNAPTIC_POOL2X2_H */
