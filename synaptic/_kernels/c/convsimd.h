/* The C (vector extension and AVX-512) inner loops of conv.pyx: the forward micro-kernel,
 * the gathered axpy of the backward kernels, and the short row moves of im2col / col2im;
 * float and double variants (_f, _d).
 *
 * Declared for Cython in _convsimd.pxd.  Compiled once per CPU level: the vector width and
 * the tile shape follow the level's flags (__AVX512F__, __AVX__).
 */
#ifndef SYNAPTIC_CONVSIMD_H
#define SYNAPTIC_CONVSIMD_H

#include <string.h>
#if defined(__AVX512F__)
#  include <immintrin.h>
#  define SYN_VB 64
#  define SYN_FWD_MR 6
#  define SYN_FWD_NR 4
#elif defined(__AVX__)
#  define SYN_VB 32
#  define SYN_FWD_MR 4
#  define SYN_FWD_NR 2
#else
#  define SYN_VB 16
#  define SYN_FWD_MR 4
#  define SYN_FWD_NR 2
#endif
#define SYN_GA_NB 8
#define SYN_VLF (SYN_VB / 4)
#define SYN_VLD (SYN_VB / 8)
#define SYN_INLINE static inline __attribute__((always_inline))

typedef float syn_vf __attribute__((vector_size(SYN_VB)));
typedef float syn_vfu __attribute__((vector_size(SYN_VB), aligned(4)));
typedef double syn_vd __attribute__((vector_size(SYN_VB)));
typedef double syn_vdu __attribute__((vector_size(SYN_VB), aligned(8)));

/* z[0:mr, 0:nr*VL] = w[0:mr, 0:P] . col[off[p] + 0:nr*VL]: mr x nr vector accumulators;
   with constant mr and nr (always inlined from the switch below) they live in registers.
   Row p of the right-hand matrix starts at col + off[p]: the rows of im2col
   (off[p] = p*Qp), or the sample itself shifted by each kernel tap (direct). */
#define SYN_FWD_TILE(T, V, VU, VL, S) \
SYN_INLINE void syn_fwd_tile_##S(const int mr, const int nr, const T* w, long ldw, \
                                 const T* col, const long* off, long P, T* z, long ldz) { \
    V acc[6][4]; \
    for (int m = 0; m < mr; m++) for (int j = 0; j < nr; j++) acc[m][j] = (V){0}; \
    for (long p = 0; p < P; p++) { \
        V xv[4]; \
        const T* cp = col + off[p]; \
        for (int j = 0; j < nr; j++) xv[j] = *(const VU*)(cp + j * VL); \
        for (int m = 0; m < mr; m++) { \
            T b = w[m * ldw + p]; \
            for (int j = 0; j < nr; j++) acc[m][j] += xv[j] * b; \
        } \
    } \
    for (int m = 0; m < mr; m++) for (int j = 0; j < nr; j++) \
        *(VU*)(z + m * ldz + j * VL) = acc[m][j]; \
} \
static void syn_fwd_rows_##S(int mr, long nq, const T* w, long ldw, const T* col, \
                             const long* off, long P, T* z, long ldz) { \
    long jv = 0; \
    for (; jv + SYN_FWD_NR <= nq; jv += SYN_FWD_NR) { \
        const T* c = col + jv * VL; T* o = z + jv * VL; \
        switch (mr) { \
        case 1: syn_fwd_tile_##S(1, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        case 2: syn_fwd_tile_##S(2, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        case 3: syn_fwd_tile_##S(3, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        case 4: syn_fwd_tile_##S(4, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        case 5: syn_fwd_tile_##S(5, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        default: syn_fwd_tile_##S(6, SYN_FWD_NR, w, ldw, c, off, P, o, ldz); break; \
        } \
    } \
    for (; jv < nq; jv++) { \
        const T* c = col + jv * VL; T* o = z + jv * VL; \
        switch (mr) { \
        case 1: syn_fwd_tile_##S(1, 1, w, ldw, c, off, P, o, ldz); break; \
        case 2: syn_fwd_tile_##S(2, 1, w, ldw, c, off, P, o, ldz); break; \
        case 3: syn_fwd_tile_##S(3, 1, w, ldw, c, off, P, o, ldz); break; \
        case 4: syn_fwd_tile_##S(4, 1, w, ldw, c, off, P, o, ldz); break; \
        case 5: syn_fwd_tile_##S(5, 1, w, ldw, c, off, P, o, ldz); break; \
        default: syn_fwd_tile_##S(6, 1, w, ldw, c, off, P, o, ldz); break; \
        } \
    } \
} \
static void syn_fwd_##S(int K, long nq, long P, const T* w, long ldw, const T* col, \
                        const long* off, T* z, long ldz) { \
    for (int k0 = 0; k0 < K; k0 += SYN_FWD_MR) { \
        int mr = K - k0 < SYN_FWD_MR ? K - k0 : SYN_FWD_MR; \
        syn_fwd_rows_##S(mr, nq, w + k0 * ldw, ldw, col, off, P, z + k0 * ldz, ldz); \
    } \
}

/* dst[0:nb*VL] = (acc_in ? dst : 0) + sum_e coef[e] * base[rows[e]*ld + 0:nb*VL]: a
   gathered axpy whose nb vector accumulators stay in registers. */
#define SYN_GAX(T, V, VU, VL, S) \
SYN_INLINE void syn_gax_tile_##S(const int nb, const T* base, long ld, const int* rows, \
                                 const T* coef, long ne, T* dst, int acc_in) { \
    V acc[SYN_GA_NB]; \
    for (int j = 0; j < nb; j++) acc[j] = acc_in ? *(const VU*)(dst + j * VL) : (V){0}; \
    for (long e = 0; e < ne; e++) { \
        const T* r = base + (long)rows[e] * ld; \
        T c = coef[e]; \
        for (int j = 0; j < nb; j++) acc[j] += *(const VU*)(r + j * VL) * c; \
    } \
    for (int j = 0; j < nb; j++) *(VU*)(dst + j * VL) = acc[j]; \
} \
static void syn_gax_##S(int nb, const T* base, long ld, const int* rows, const T* coef, \
                        long ne, T* dst, int acc_in) { \
    switch (nb) { \
    case 1: syn_gax_tile_##S(1, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 2: syn_gax_tile_##S(2, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 3: syn_gax_tile_##S(3, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 4: syn_gax_tile_##S(4, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 5: syn_gax_tile_##S(5, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 6: syn_gax_tile_##S(6, base, ld, rows, coef, ne, dst, acc_in); break; \
    case 7: syn_gax_tile_##S(7, base, ld, rows, coef, ne, dst, acc_in); break; \
    default: syn_gax_tile_##S(8, base, ld, rows, coef, ne, dst, acc_in); break; \
    } \
}

SYN_FWD_TILE(float, syn_vf, syn_vfu, SYN_VLF, f)
SYN_FWD_TILE(double, syn_vd, syn_vdu, SYN_VLD, d)
SYN_GAX(float, syn_vf, syn_vfu, SYN_VLF, f)
SYN_GAX(double, syn_vd, syn_vdu, SYN_VLD, d)

/* Short row moves inside the per-thread scratch, whole vectors at a time: they read and
   write up to VL - 1 elements past len (the scratch regions have PAD elements of slack, and
   the callers write rows in an order where the overrun is overwritten later). */
static inline void syn_copy_over_f(float* dst, const float* src, long len) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (len <= 4) { _mm_storeu_ps(dst, _mm_loadu_ps(src)); return; }
    if (len <= 8) { _mm256_storeu_ps(dst, _mm256_loadu_ps(src)); return; }
#endif
    for (long i = 0; i < len; i += SYN_VLF) *(syn_vfu*)(dst + i) = *(const syn_vfu*)(src + i);
}
static inline void syn_copy_over_d(double* dst, const double* src, long len) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (len <= 2) { _mm_storeu_pd(dst, _mm_loadu_pd(src)); return; }
    if (len <= 4) { _mm256_storeu_pd(dst, _mm256_loadu_pd(src)); return; }
#endif
    for (long i = 0; i < len; i += SYN_VLD) *(syn_vdu*)(dst + i) = *(const syn_vdu*)(src + i);
}
/* dst[0:len] += src[0:len], dst with slack: the elements of src past len are masked to 0.
   The vector is the narrowest holding len (4, 8 or 16 lanes) so that the next row's
   load does not overlap this store (a failed store-to-load forwarding costs ~20 cycles:
   col2im adds kernel rows of fw values to image rows w apart). */
static inline void syn_addto_over_f(float* dst, const float* src, long len) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (len <= 4) {
        __mmask8 m = (__mmask8)((1u << len) - 1u);
        _mm_storeu_ps(dst, _mm_add_ps(_mm_loadu_ps(dst), _mm_maskz_loadu_ps(m, src)));
        return;
    }
    if (len <= 8) {
        __mmask8 m = (__mmask8)((1u << len) - 1u);
        _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), _mm256_maskz_loadu_ps(m, src)));
        return;
    }
    for (; len >= 16; len -= 16, dst += 16, src += 16)
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_loadu_ps(src)));
    if (len > 0) {
        __mmask16 m = (__mmask16)((1u << len) - 1u);
        _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), _mm512_maskz_loadu_ps(m, src)));
    }
#else
    for (long i = 0; i < len; i++) dst[i] += src[i];
#endif
}
static inline void syn_addto_over_d(double* dst, const double* src, long len) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (len <= 2) {
        __mmask8 m = (__mmask8)((1u << len) - 1u);
        _mm_storeu_pd(dst, _mm_add_pd(_mm_loadu_pd(dst), _mm_maskz_loadu_pd(m, src)));
        return;
    }
    if (len <= 4) {
        __mmask8 m = (__mmask8)((1u << len) - 1u);
        _mm256_storeu_pd(dst, _mm256_add_pd(_mm256_loadu_pd(dst), _mm256_maskz_loadu_pd(m, src)));
        return;
    }
    for (; len >= 8; len -= 8, dst += 8, src += 8)
        _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), _mm512_loadu_pd(src)));
    if (len > 0) {
        __mmask8 m = (__mmask8)((1u << len) - 1u);
        _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), _mm512_maskz_loadu_pd(m, src)));
    }
#else
    for (long i = 0; i < len; i++) dst[i] += src[i];
#endif
}
/* The patch under one output position (c channels of fh rows of fw values, rows w
   apart, channels hw apart) as one contiguous row: c*fh overrun copies (written in
   order, each overrun overwritten by the next). */
#define SYN_PATCH(T, S) \
static void syn_patch_##S(T* dst, const T* x, long c, long fh, long fw, long hw, long w) { \
    for (long ci = 0; ci < c; ci++, x += hw) { \
        const T* xr = x; \
        for (long r = 0; r < fh; r++, xr += w, dst += fw) syn_copy_over_##S(dst, xr, fw); \
    } \
} \
/* im2col of one sample: row p = (c, r, s) holds the hc map rows of wc values. */ \
static void syn_im2col_##S(T* col, long ldc, const T* x, long c, long fh, long fw, \
                           long hc, long wc, long hw, long w) { \
    for (long ci = 0; ci < c; ci++) \
        for (long r = 0; r < fh; r++) \
            for (long s = 0; s < fw; s++, col += ldc) { \
                const T* xr = x + ci * hw + r * w + s; \
                T* d = col; \
                for (long i = 0; i < hc; i++, xr += w, d += wc) syn_copy_over_##S(d, xr, wc); \
            } \
} \
/* im2col with strides (sh down, sw across): row p = (c, r, s) holds x[c, i*sh + r, \
   j*sw + s] for the hc x wc positions; rows of the padded field w apart.  sw == 1 copies \
   whole map rows (with overrun, as syn_im2col), else a gather per element. */ \
static void syn_im2cols_##S(T* col, long ldc, const T* x, long c, long fh, long fw, \
                            long hc, long wc, long hw, long w, long sh, long sw) { \
    for (long ci = 0; ci < c; ci++) \
        for (long r = 0; r < fh; r++) \
            for (long s = 0; s < fw; s++, col += ldc) { \
                const T* xr = x + ci * hw + r * w + s; \
                T* d = col; \
                if (sw == 1) { \
                    for (long i = 0; i < hc; i++, xr += sh * w, d += wc) \
                        syn_copy_over_##S(d, xr, wc); \
                } else { \
                    for (long i = 0; i < hc; i++, xr += sh * w, d += wc) \
                        for (long j = 0; j < wc; j++) d[j] = xr[j * sw]; \
                } \
            } \
}
#define SYN_UNPATCH(T, S) \
/* col2im of one position: dx[c, i + r, j : j + fw] += row[(c, r), :] */ \
static void syn_unpatch_##S(T* dx, const T* row, long c, long fh, long fw, long hw, long w) { \
    for (long ci = 0; ci < c; ci++, dx += hw) { \
        T* dr = dx; \
        for (long r = 0; r < fh; r++, dr += w, row += fw) syn_addto_over_##S(dr, row, fw); \
    } \
}
SYN_PATCH(float, f)
SYN_PATCH(double, d)
SYN_UNPATCH(float, f)
SYN_UNPATCH(double, d)

#endif /* SYNAPTIC_CONVSIMD_H */
