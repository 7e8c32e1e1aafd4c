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
/* 2x2 pooling of one map (rows of wc values, ld apart) with AVX-512: N = 16 (f32) or 8 (f64)
   windows at a time, the even/odd columns split by permutes.  Max: the first maximum
   of the row-major scan from -inf (ordered > so NaN never wins), as max_pool_map.
   SYN_POOL2(S, T, V, P, N, M, FULL, I, IP, BITS) writes syn_pool2_S for the element type T
   (vector V, intrinsic suffix P, N lanes, lane mask M with all N bits FULL); the window
   indices are N int32 lanes of type I (intrinsic prefix IP, BITS wide).  SYN_POOL2_PERM_S
   declares the permute indices even / odd and lanes0, the even columns as int32 lanes. */
#define SYN_POOL2_PERM_f \
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0); \
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1)); \
    const __m512i lanes0 = even;
#define SYN_POOL2_PERM_d \
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0); \
    const __m512i odd = _mm512_add_epi64(even, _mm512_set1_epi64(1)); \
    const __m256i lanes0 = _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0);
#define SYN_POOL2(S, T, V, P, N, M, FULL, I, IP, BITS) \
static void syn_pool2_##S(int avg, const T* y, long ld, long ho, long wo, long wc, \
                          T* out, int* idx, int base) { \
    SYN_POOL2_PERM_##S \
    const V ninf = _mm512_set1_##P(-INFINITY), quarter = _mm512_set1_##P((T)4); \
    const I zero = IP##_setzero_si##BITS(), one = IP##_set1_epi32(1); \
    const I down = IP##_set1_epi32((int)wc), diag = IP##_set1_epi32((int)wc + 1); \
    for (long io = 0; io < ho; io++) { \
        const T* r0 = y + 2 * io * ld; \
        const T* r1 = r0 + ld; \
        for (long jo = 0; jo < wo; jo += N) { \
            long cnt = wo - jo < N ? wo - jo : N; \
            M m = (M)(cnt == N ? FULL : (1u << cnt) - 1u); \
            M mlo = (M)(2 * cnt >= N ? FULL : (1u << (2 * cnt)) - 1u); \
            M mhi = (M)(2 * cnt <= N ? 0u : (2 * cnt >= 2 * N ? FULL : (1u << (2 * cnt - N)) - 1u)); \
            V a0 = _mm512_maskz_loadu_##P(mlo, r0 + 2 * jo), a1 = _mm512_maskz_loadu_##P(mhi, r0 + 2 * jo + N); \
            V c0 = _mm512_maskz_loadu_##P(mlo, r1 + 2 * jo), c1 = _mm512_maskz_loadu_##P(mhi, r1 + 2 * jo + N); \
            V a = _mm512_permutex2var_##P(a0, even, a1), b = _mm512_permutex2var_##P(a0, odd, a1); \
            V c = _mm512_permutex2var_##P(c0, even, c1), d = _mm512_permutex2var_##P(c0, odd, c1); \
            if (avg) { \
                V s = _mm512_add_##P(_mm512_add_##P(_mm512_add_##P(a, b), c), d); \
                _mm512_mask_storeu_##P(out + io * wo + jo, m, _mm512_div_##P(s, quarter)); \
                continue; \
            } \
            V best = _mm512_mask_mov_##P(ninf, _mm512_cmp_##P##_mask(a, ninf, _CMP_GT_OQ), a); \
            I bi = zero; \
            M t = _mm512_cmp_##P##_mask(b, best, _CMP_GT_OQ); \
            best = _mm512_mask_mov_##P(best, t, b); bi = IP##_mask_mov_epi32(bi, t, one); \
            t = _mm512_cmp_##P##_mask(c, best, _CMP_GT_OQ); \
            best = _mm512_mask_mov_##P(best, t, c); bi = IP##_mask_mov_epi32(bi, t, down); \
            t = _mm512_cmp_##P##_mask(d, best, _CMP_GT_OQ); \
            best = _mm512_mask_mov_##P(best, t, d); bi = IP##_mask_mov_epi32(bi, t, diag); \
            best = _mm512_mask_mov_##P(best, IP##_cmpeq_epi32_mask(bi, zero), a); \
            _mm512_mask_storeu_##P(out + io * wo + jo, m, best); \
            if (idx) { \
                I at = IP##_add_epi32(lanes0, IP##_set1_epi32(base + (int)(2 * io * wc + 2 * jo))); \
                IP##_mask_storeu_epi32(idx + io * wo + jo, m, IP##_add_epi32(at, bi)); \
            } \
        } \
    } \
}
SYN_POOL2(f, float, __m512, ps, 16, __mmask16, 0xFFFFu, __m512i, _mm512, 512)
SYN_POOL2(d, double, __m512d, pd, 8, __mmask8, 0xFFu, __m256i, _mm256, 256)
#else
#define SYN_POOL2_SIMD 0
static void syn_pool2_f(int avg, const float* y, long ld, long ho, long wo, long wc,
                        float* out, int* idx, int base) {}
static void syn_pool2_d(int avg, const double* y, long ld, long ho, long wo, long wc,
                        double* out, int* idx, int base) {}
#endif

#endif /* SYNAPTIC_POOL2X2_H */
