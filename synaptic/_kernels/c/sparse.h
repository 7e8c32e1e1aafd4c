/* The sparse-input kernels of dense_forward and weight_grad (dense.pyx), and what the
 * packed-input (packed.h) and narrow-output (top.h) kernels build on: the vector types of
 * the CPU level compiled for (syn_sp_vf / syn_sp_vd, SYN_SP_VLF / SYN_SP_VLD lanes),
 * SYN_FMA, the per-thread scratch block (syn_sp_scratch), the transposition of W (AVX-512
 * tiles), the forward tiles and gradient columns over the set bits of a mask.
 * The method, the thresholds and the measurements: "Sparse inputs" in dense.pyx.
 *
 * Declared for Cython in dense.pyx.  Compiled once per CPU level (setup.py): the vector
 * width follows the level's flags, the AVX-512 tiles only under __AVX512F__.
 */
#ifndef SYNAPTIC_SPARSE_H
#define SYNAPTIC_SPARSE_H

#include <Python.h>   /* Py_ssize_t; first, as Python asks */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* the sparse sums may contract a * b + c into an FMA, as a GEMM does (the module is
   compiled with -ffp-contract=off so that its elementwise passes round like NumPy) */
#if defined(__GNUC__) && !defined(__clang__)
#  define SYN_FMA __attribute__((optimize("fp-contract=fast")))
#else
#  define SYN_FMA
#endif
#if defined(__GNUC__)
#  if defined(__AVX512F__)
#    define SYN_SP_VB 64
#  elif defined(__AVX__)
#    define SYN_SP_VB 32
#  else
#    define SYN_SP_VB 16
#  endif
typedef float syn_sp_vf __attribute__((vector_size(SYN_SP_VB)));
typedef double syn_sp_vd __attribute__((vector_size(SYN_SP_VB)));
#  define SYN_SP_VLF (SYN_SP_VB / 4)
#  define SYN_SP_VLD (SYN_SP_VB / 8)
#  define SYN_SP_NOINLINE __attribute__((noinline))
#  define syn_sp_ctz32(m) __builtin_ctz(m)
#  define syn_sp_ctz64(m) __builtin_ctzll(m)
#  define syn_sp_prefetch(p) __builtin_prefetch((p), 0, 2)
#else
/* no vector extensions: one element a "vector" */
typedef float syn_sp_vf;
typedef double syn_sp_vd;
#  define SYN_SP_VLF 1
#  define SYN_SP_VLD 1
#  define SYN_SP_NOINLINE
static int syn_sp_ctz32(uint32_t m) { int c = 0; while (!(m & 1u)) { m >>= 1; c++; } return c; }
static int syn_sp_ctz64(uint64_t m) { int c = 0; while (!(m & 1u)) { m >>= 1; c++; } return c; }
#  define syn_sp_prefetch(p) ((void)(p))
#endif

/* The calling thread's scratch block of at least `bytes`, aligned to 64 bytes: kept and
   reused from call to call (a fresh block of a few hundred KB per batch would be mmap'ed
   and page-faulted every time), grown when a call needs more, freed when the thread
   exits.  One block per thread: a kernel call asks for it once, before its OpenMP loop. */
#include <pthread.h>
typedef struct { char* p; size_t cap; } syn_sp_block;
static pthread_key_t syn_sp_key;
static pthread_once_t syn_sp_once = PTHREAD_ONCE_INIT;
static void syn_sp_release(void* b) { free(((syn_sp_block*)b)->p); free(b); }
static void syn_sp_make_key(void) { pthread_key_create(&syn_sp_key, syn_sp_release); }
static void* syn_sp_scratch(size_t bytes) {
    syn_sp_block* k;
    pthread_once(&syn_sp_once, syn_sp_make_key);
    k = (syn_sp_block*)pthread_getspecific(syn_sp_key);
    if (k == NULL) {
        k = (syn_sp_block*)calloc(1, sizeof(syn_sp_block));
        if (k == NULL) return NULL;
        if (pthread_setspecific(syn_sp_key, k) != 0) { free(k); return NULL; }
    }
    if (bytes > k->cap) {
        free(k->p);
        k->p = (char*)malloc(bytes + 64);
        k->cap = k->p == NULL ? 0 : bytes;
        if (k->p == NULL) return NULL;
    }
    return (void*)(((uintptr_t)k->p + 63) & ~(uintptr_t)63);
}

/* Transposition: d[c * ld + r] = s[r * ls + c] on whole tiles of 16 x 16 floats or 8 x 8
   doubles in AVX-512 registers (the unpack / shuffle network); *acc collects s - s, NaN
   as soon as a value is inf or NaN.  The scalar loops below do the edges, and everything
   without AVX-512 (a plain strided copy was 27 us for the 784 x 100 f32 matrix, the tiles
   8.5 us). */
#if defined(__AVX512F__)
#  include <immintrin.h>
#  define SYN_SP_TB_f 16
#  define SYN_SP_TB_d 8
static inline void syn_sp_tile_f(const float* s, Py_ssize_t ls, float* d, Py_ssize_t ld,
                                 __m512* acc) {
    __m512 r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15;
    __m512 t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14, t15;
    __m512 a = *acc;
#  define SYN_SP_L(i) r##i = _mm512_loadu_ps(s + i * ls); \
                      a = _mm512_add_ps(a, _mm512_sub_ps(r##i, r##i));
    SYN_SP_L(0) SYN_SP_L(1) SYN_SP_L(2) SYN_SP_L(3) SYN_SP_L(4) SYN_SP_L(5) SYN_SP_L(6)
    SYN_SP_L(7) SYN_SP_L(8) SYN_SP_L(9) SYN_SP_L(10) SYN_SP_L(11) SYN_SP_L(12)
    SYN_SP_L(13) SYN_SP_L(14) SYN_SP_L(15)
#  undef SYN_SP_L
    *acc = a;
    t0 = _mm512_unpacklo_ps(r0, r1); t1 = _mm512_unpackhi_ps(r0, r1);
    t2 = _mm512_unpacklo_ps(r2, r3); t3 = _mm512_unpackhi_ps(r2, r3);
    t4 = _mm512_unpacklo_ps(r4, r5); t5 = _mm512_unpackhi_ps(r4, r5);
    t6 = _mm512_unpacklo_ps(r6, r7); t7 = _mm512_unpackhi_ps(r6, r7);
    t8 = _mm512_unpacklo_ps(r8, r9); t9 = _mm512_unpackhi_ps(r8, r9);
    t10 = _mm512_unpacklo_ps(r10, r11); t11 = _mm512_unpackhi_ps(r10, r11);
    t12 = _mm512_unpacklo_ps(r12, r13); t13 = _mm512_unpackhi_ps(r12, r13);
    t14 = _mm512_unpacklo_ps(r14, r15); t15 = _mm512_unpackhi_ps(r14, r15);
#  define SYN_SP_UL(x, y) _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), \
                                                              _mm512_castps_pd(y)))
#  define SYN_SP_UH(x, y) _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), \
                                                              _mm512_castps_pd(y)))
    r0 = SYN_SP_UL(t0, t2); r1 = SYN_SP_UH(t0, t2);
    r2 = SYN_SP_UL(t1, t3); r3 = SYN_SP_UH(t1, t3);
    r4 = SYN_SP_UL(t4, t6); r5 = SYN_SP_UH(t4, t6);
    r6 = SYN_SP_UL(t5, t7); r7 = SYN_SP_UH(t5, t7);
    r8 = SYN_SP_UL(t8, t10); r9 = SYN_SP_UH(t8, t10);
    r10 = SYN_SP_UL(t9, t11); r11 = SYN_SP_UH(t9, t11);
    r12 = SYN_SP_UL(t12, t14); r13 = SYN_SP_UH(t12, t14);
    r14 = SYN_SP_UL(t13, t15); r15 = SYN_SP_UH(t13, t15);
#  undef SYN_SP_UL
#  undef SYN_SP_UH
#  define SYN_SP_SH(x, y, m) _mm512_shuffle_f32x4(x, y, m)
    t0 = SYN_SP_SH(r0, r4, 0x88); t1 = SYN_SP_SH(r1, r5, 0x88);
    t2 = SYN_SP_SH(r2, r6, 0x88); t3 = SYN_SP_SH(r3, r7, 0x88);
    t4 = SYN_SP_SH(r0, r4, 0xdd); t5 = SYN_SP_SH(r1, r5, 0xdd);
    t6 = SYN_SP_SH(r2, r6, 0xdd); t7 = SYN_SP_SH(r3, r7, 0xdd);
    t8 = SYN_SP_SH(r8, r12, 0x88); t9 = SYN_SP_SH(r9, r13, 0x88);
    t10 = SYN_SP_SH(r10, r14, 0x88); t11 = SYN_SP_SH(r11, r15, 0x88);
    t12 = SYN_SP_SH(r8, r12, 0xdd); t13 = SYN_SP_SH(r9, r13, 0xdd);
    t14 = SYN_SP_SH(r10, r14, 0xdd); t15 = SYN_SP_SH(r11, r15, 0xdd);
    r0 = SYN_SP_SH(t0, t8, 0x88); r1 = SYN_SP_SH(t1, t9, 0x88);
    r2 = SYN_SP_SH(t2, t10, 0x88); r3 = SYN_SP_SH(t3, t11, 0x88);
    r4 = SYN_SP_SH(t4, t12, 0x88); r5 = SYN_SP_SH(t5, t13, 0x88);
    r6 = SYN_SP_SH(t6, t14, 0x88); r7 = SYN_SP_SH(t7, t15, 0x88);
    r8 = SYN_SP_SH(t0, t8, 0xdd); r9 = SYN_SP_SH(t1, t9, 0xdd);
    r10 = SYN_SP_SH(t2, t10, 0xdd); r11 = SYN_SP_SH(t3, t11, 0xdd);
    r12 = SYN_SP_SH(t4, t12, 0xdd); r13 = SYN_SP_SH(t5, t13, 0xdd);
    r14 = SYN_SP_SH(t6, t14, 0xdd); r15 = SYN_SP_SH(t7, t15, 0xdd);
#  undef SYN_SP_SH
#  define SYN_SP_S(i) _mm512_storeu_ps(d + i * ld, r##i);
    SYN_SP_S(0) SYN_SP_S(1) SYN_SP_S(2) SYN_SP_S(3) SYN_SP_S(4) SYN_SP_S(5) SYN_SP_S(6)
    SYN_SP_S(7) SYN_SP_S(8) SYN_SP_S(9) SYN_SP_S(10) SYN_SP_S(11) SYN_SP_S(12)
    SYN_SP_S(13) SYN_SP_S(14) SYN_SP_S(15)
#  undef SYN_SP_S
}
static inline void syn_sp_tile_d(const double* s, Py_ssize_t ls, double* d, Py_ssize_t ld,
                                 __m512d* acc) {
    __m512d r0, r1, r2, r3, r4, r5, r6, r7, t0, t1, t2, t3, t4, t5, t6, t7;
    __m512d a = *acc;
#  define SYN_SP_L(i) r##i = _mm512_loadu_pd(s + i * ls); \
                      a = _mm512_add_pd(a, _mm512_sub_pd(r##i, r##i));
    SYN_SP_L(0) SYN_SP_L(1) SYN_SP_L(2) SYN_SP_L(3) SYN_SP_L(4) SYN_SP_L(5) SYN_SP_L(6)
    SYN_SP_L(7)
#  undef SYN_SP_L
    *acc = a;
    t0 = _mm512_unpacklo_pd(r0, r1); t1 = _mm512_unpackhi_pd(r0, r1);
    t2 = _mm512_unpacklo_pd(r2, r3); t3 = _mm512_unpackhi_pd(r2, r3);
    t4 = _mm512_unpacklo_pd(r4, r5); t5 = _mm512_unpackhi_pd(r4, r5);
    t6 = _mm512_unpacklo_pd(r6, r7); t7 = _mm512_unpackhi_pd(r6, r7);
#  define SYN_SP_SH(x, y, m) _mm512_shuffle_f64x2(x, y, m)
    r0 = SYN_SP_SH(t0, t2, 0x88); r1 = SYN_SP_SH(t1, t3, 0x88);
    r2 = SYN_SP_SH(t0, t2, 0xdd); r3 = SYN_SP_SH(t1, t3, 0xdd);
    r4 = SYN_SP_SH(t4, t6, 0x88); r5 = SYN_SP_SH(t5, t7, 0x88);
    r6 = SYN_SP_SH(t4, t6, 0xdd); r7 = SYN_SP_SH(t5, t7, 0xdd);
    t0 = SYN_SP_SH(r0, r4, 0x88); t1 = SYN_SP_SH(r1, r5, 0x88);
    t2 = SYN_SP_SH(r2, r6, 0x88); t3 = SYN_SP_SH(r3, r7, 0x88);
    t4 = SYN_SP_SH(r0, r4, 0xdd); t5 = SYN_SP_SH(r1, r5, 0xdd);
    t6 = SYN_SP_SH(r2, r6, 0xdd); t7 = SYN_SP_SH(r3, r7, 0xdd);
#  undef SYN_SP_SH
#  define SYN_SP_S(i) _mm512_storeu_pd(d + i * ld, t##i);
    SYN_SP_S(0) SYN_SP_S(1) SYN_SP_S(2) SYN_SP_S(3) SYN_SP_S(4) SYN_SP_S(5) SYN_SP_S(6)
    SYN_SP_S(7)
#  undef SYN_SP_S
}
static inline int syn_sp_acc_bad_f(__m512 a) {
    return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q) != 0;
}
static inline int syn_sp_acc_bad_d(__m512d a) {
    return _mm512_cmp_pd_mask(a, a, _CMP_UNORD_Q) != 0;
}
#endif

/* SYN_SP_TILED_S(code): the AVX-512 tile loops (with `acc`, folded into `bad`), or nothing */
#if defined(__AVX512F__)
#  define SYN_SP_TILED_f(...) \
    { __m512 acc = _mm512_setzero_ps(); __VA_ARGS__ bad |= syn_sp_acc_bad_f(acc); }
#  define SYN_SP_TILED_d(...) \
    { __m512d acc = _mm512_setzero_pd(); __VA_ARGS__ bad |= syn_sp_acc_bad_d(acc); }
#else
#  define SYN_SP_TILED_f(...)
#  define SYN_SP_TILED_d(...)
#endif

#define SYN_SP_R1(M, V, VL) M(0, V, VL)
#define SYN_SP_R2(M, V, VL) SYN_SP_R1(M, V, VL) M(1, V, VL)
#define SYN_SP_R3(M, V, VL) SYN_SP_R2(M, V, VL) M(2, V, VL)
#define SYN_SP_R4(M, V, VL) SYN_SP_R3(M, V, VL) M(3, V, VL)
#define SYN_SP_R5(M, V, VL) SYN_SP_R4(M, V, VL) M(4, V, VL)
#define SYN_SP_R6(M, V, VL) SYN_SP_R5(M, V, VL) M(5, V, VL)
#define SYN_SP_R7(M, V, VL) SYN_SP_R6(M, V, VL) M(6, V, VL)
#define SYN_SP_R8(M, V, VL) SYN_SP_R7(M, V, VL) M(7, V, VL)

/* SYN_SP_EACH_K(M, S, T, V, VL): M(S, T, V, VL, K) for K = 1..8 (the tile functions of K
   vectors); SYN_SP_CASES(CALL, S): CALL(S, K) for the K = min(nv - cc, 8) vectors left */
#define SYN_SP_EACH_K(M, S, T, V, VL) \
    M(S, T, V, VL, 1) M(S, T, V, VL, 2) M(S, T, V, VL, 3) M(S, T, V, VL, 4) \
    M(S, T, V, VL, 5) M(S, T, V, VL, 6) M(S, T, V, VL, 7) M(S, T, V, VL, 8)
#define SYN_SP_CASES(CALL, S) \
    switch (nv - cc < 8 ? nv - cc : 8) { \
    case 1: CALL(S, 1); break; case 2: CALL(S, 2); break; case 3: CALL(S, 3); break; \
    case 4: CALL(S, 4); break; case 5: CALL(S, 5); break; case 6: CALL(S, 6); break; \
    case 7: CALL(S, 7); break; default: CALL(S, 8); \
    }

/* Forward tile of K vectors (K accumulators in registers, each function on its own so
   that nothing spills): out[0:K*VL] = b + sum over the set bits j of the row mask mw of
   xr[j] * wt[j * ldt : ...], in increasing j. */
#define SYN_SP_FT_INIT(k, V, VL) V a##k = *(const V*)(b + (k) * (VL));
#define SYN_SP_FT_STEP(k, V, VL) a##k += v * *(const V*)(w + (k) * (VL));
#define SYN_SP_FT_STORE(k, V, VL) *(V*)(out + (k) * (VL)) = a##k;
#define SYN_SP_FTILE(S, T, V, VL, K) \
static SYN_FMA SYN_SP_NOINLINE void syn_sp_ftile_##S##K(const uint32_t* mw, Py_ssize_t nw, \
        const T* xr, const T* wt, Py_ssize_t ldt, const T* b, T* out) { \
    Py_ssize_t q; \
    SYN_SP_R##K(SYN_SP_FT_INIT, V, VL) \
    for (q = 0; q < nw; q++) { \
        uint32_t m = mw[q]; \
        const T* xq = xr + q * 32; \
        const T* wq = wt + q * 32 * ldt; \
        while (m) { \
            int c = syn_sp_ctz32(m); \
            T v = xq[c]; \
            const T* w = wq + (Py_ssize_t)c * ldt; \
            m &= m - 1; \
            SYN_SP_R##K(SYN_SP_FT_STEP, V, VL) \
        } \
    } \
    SYN_SP_R##K(SYN_SP_FT_STORE, V, VL) \
}

/* Gradient column of K vectors: s[0:K*VL] += the sum over the set bits b of mk of
   xc[b * d] * dzb[b * ldt : ...], in increasing b (the sample order), from 0: a block's
   sum, then added to s (two-level summation: f32 errors like a blocked GEMM's, not
   those of one running sum over the whole batch). */
#define SYN_SP_GC_INIT(k, V, VL) V a##k = (V){0};
#define SYN_SP_GC_STEP(k, V, VL) a##k += v * *(const V*)(r + (k) * (VL));
#define SYN_SP_GC_STORE(k, V, VL) *(V*)(s + (k) * (VL)) += a##k;
#define SYN_SP_GCOL(S, T, V, VL, K) \
static SYN_FMA SYN_SP_NOINLINE void syn_sp_gcol_##S##K(uint64_t mk, const T* xc, Py_ssize_t d, \
        const T* dzb, Py_ssize_t ldt, T* s) { \
    SYN_SP_R##K(SYN_SP_GC_INIT, V, VL) \
    while (mk) { \
        int b = syn_sp_ctz64(mk); \
        T v = xc[(Py_ssize_t)b * d]; \
        const T* r = dzb + (Py_ssize_t)b * ldt; \
        mk &= mk - 1; \
        SYN_SP_R##K(SYN_SP_GC_STEP, V, VL) \
    } \
    SYN_SP_R##K(SYN_SP_GC_STORE, V, VL) \
}

/* a forward row's chunk of mask words m[0:q1-q0]: nothing if all zero, else its tiles
   (CALL: SYN_SP_FCALL or SYN_PK_FCALL) over the nv vectors of the output row, 8 at a time */
#define SYN_SP_ROW_TILES(CALL, S, VL) \
    uint32_t any = 0; \
    for (q = 0; q < q1 - q0; q++) any |= m[q]; \
    if (!any) continue; \
    for (cc = 0; cc < nv; cc += 8) { \
        off = cc * (VL); \
        SYN_SP_CASES(CALL, S) \
    }
/* a gradient row dr[0:o] copied to db[0:ldt], padded with zeros; bad set if not all finite */
#define SYN_SP_DZ_ROW(T) \
    for (k = 0; k < o; k++) { \
        T v = dr[k]; \
        db[k] = v; \
        bad |= !(v - v == 0); \
    } \
    for (k = o; k < ldt; k++) db[k] = 0;

#define SYN_SP_FCALL(S, K) syn_sp_ftile_##S##K(m, q1 - q0, xr, wq + off, ldt, r + off, r + off)
#define SYN_SP_GCALL(S, K) syn_sp_gcol_##S##K(mk, xc, d, dzb + off, ldt, sc + off)

/* the transposition's whole AVX-512 tiles: SRC and DST are the tile corners at block
   (jb, k), LS and LD their row strides; jfull, kfull where the scalar edge loops start */
#define SYN_SP_TILES(S, SRC, LS, DST, LD) \
    SYN_SP_TILED_##S( \
        Py_ssize_t jb; \
        for (jb = j0; jb + SYN_SP_TB_##S <= j1; jb += SYN_SP_TB_##S) \
            for (k = 0; k + SYN_SP_TB_##S <= o; k += SYN_SP_TB_##S) \
                syn_sp_tile_##S(SRC, LS, DST, LD, &acc); \
        jfull = jb; \
        kfull = o / SYN_SP_TB_##S * SYN_SP_TB_##S; \
    )

#define SYN_SP_FUNCS(S, T, V, VL) \
SYN_SP_EACH_K(SYN_SP_FTILE, S, T, V, VL) \
SYN_SP_EACH_K(SYN_SP_GCOL, S, T, V, VL) \
\
/* nonzero counts per column over `rows` rows evenly spaced (colnz zeroed first) */ \
static void syn_sp_sample_##S(const T* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t rows, \
                              int32_t* colnz) { \
    Py_ssize_t r, c; \
    memset(colnz, 0, d * sizeof(int32_t)); \
    for (r = 0; r < rows; r++) { \
        const T* xr = x + (r * n / rows) * d; \
        for (c = 0; c < d; c++) colnz[c] += xr[c] != 0; \
    } \
} \
\
/* wt[j, k] = w[k, 1 + j] for j0 <= j < j1, k < o; wt[j, o:ldt] = 0.  1 if all finite. */ \
static int syn_sp_transpose_in_##S(const T* w, Py_ssize_t ldw, Py_ssize_t o, \
        Py_ssize_t j0, Py_ssize_t j1, T* wt, Py_ssize_t ldt) { \
    Py_ssize_t j, k, jfull = j0, kfull = 0; \
    int bad = 0; \
    SYN_SP_TILES(S, w + k * ldw + 1 + jb, ldw, wt + jb * ldt + k, ldt) \
    for (k = 0; k < o; k++) { \
        const T* src = w + k * ldw + 1; \
        for (j = k < kfull ? jfull : j0; j < j1; j++) { \
            T v = src[j]; \
            wt[j * ldt + k] = v; \
            bad |= !(v - v == 0); \
        } \
    } \
    for (j = j0; j < j1; j++) \
        for (k = o; k < ldt; k++) wt[j * ldt + k] = 0; \
    return !bad; \
} \
\
/* g[k, 1 + j] = s[j, k] for j0 <= j < j1, k < o */ \
static void syn_sp_transpose_out_##S(const T* s, Py_ssize_t ldt, Py_ssize_t j0, \
        Py_ssize_t j1, Py_ssize_t o, T* g, Py_ssize_t ldg) { \
    Py_ssize_t j, k, jfull = j0, kfull = 0; \
    int bad = 0; \
    SYN_SP_TILES(S, s + jb * ldt + k, ldt, g + k * ldg + 1 + jb, ldg) \
    (void)bad; \
    for (k = 0; k < o; k++) { \
        T* dst = g + k * ldg + 1; \
        for (j = k < kfull ? jfull : j0; j < j1; j++) dst[j] = s[j * ldt + k]; \
    } \
} \
\
/* bit q%32 of mw[q/32]: xr[q] != 0 (NaN counts as nonzero) */ \
static void syn_sp_rowmask_##S(const T* xr, Py_ssize_t d, uint32_t* mw) { \
    Py_ssize_t q, c, nw = d / 32; \
    for (q = 0; q < nw; q++) { \
        const T* xq = xr + q * 32; \
        uint32_t m = 0; \
        for (c = 0; c < 32; c++) m |= (uint32_t)(xq[c] != 0) << c; \
        mw[q] = m; \
    } \
    if (d % 32) { \
        uint32_t m = 0; \
        for (c = nw * 32; c < d; c++) m |= (uint32_t)(xr[c] != 0) << (c - nw * 32); \
        mw[nw] = m; \
    } \
} \
\
/* out[i, :o] (row stride ldo) = bias + x[i, :] . W[:, 1:]^T for r0 <= i < r1 (no \
   activation; Wt has o <= ldt columns): the block's \
   row masks first (mw: rows x nw words), then the columns in chunks of cw mask words, \
   each chunk over all the rows of the block (accumulating in ob: rows x ldt), so that \
   the chunk of Wt stays in L1 from row to row; every output is bias + the terms in \
   increasing column order, whatever the blocking. */ \
static void syn_sp_fwd_block_##S(const T* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, \
        const T* wt, Py_ssize_t ldt, const T* bias, T* out, Py_ssize_t ldo, Py_ssize_t o, \
        Py_ssize_t cw, uint32_t* mw, T* ob) { \
    Py_ssize_t i, q, q0, q1, cc, off, nv = ldt / (VL), nw = (d + 31) / 32; \
    for (i = r0; i < r1; i++) { \
        syn_sp_rowmask_##S(x + i * d, d, mw + (i - r0) * nw); \
        memcpy(ob + (i - r0) * ldt, bias, ldt * sizeof(T)); \
    } \
    for (q0 = 0; q0 < nw; q0 += cw) { \
        q1 = q0 + cw < nw ? q0 + cw : nw; \
        for (i = r0; i < r1; i++) { \
            const uint32_t* m = mw + (i - r0) * nw + q0; \
            const T* xr = x + i * d + q0 * 32; \
            const T* wq = wt + q0 * 32 * ldt; \
            T* r = ob + (i - r0) * ldt; \
            SYN_SP_ROW_TILES(SYN_SP_FCALL, S, VL) \
        } \
    } \
    for (i = r0; i < r1; i++) memcpy(out + i * ldo, ob + (i - r0) * ldt, o * sizeof(T)); \
} \
\
/* s[j, :] = sum_i x[i, j] * dz[i, :o] (dz row stride ldz) for j0 <= j < j1 (s: d x ldt), \
   the samples in blocks \
   of bs <= 64 (cm: j1 - j0 masks, dzb: bs x ldt scratch).  1 if dz is all finite. */ \
static int syn_sp_grad_cols_##S(const T* dz, Py_ssize_t ldz, const T* x, Py_ssize_t n, \
        Py_ssize_t o, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1, T* s, Py_ssize_t ldt, \
        Py_ssize_t bs, uint64_t* cm, T* dzb) { \
    Py_ssize_t i0, i1, i, c, cc, k, off, m = j1 - j0, nv = ldt / (VL); \
    int bad = 0; \
    if (m <= 0) return 1; \
    memset(s + j0 * ldt, 0, m * ldt * sizeof(T)); \
    for (i0 = 0; i0 < n; i0 += bs) { \
        i1 = i0 + bs < n ? i0 + bs : n; \
        memset(cm, 0, m * sizeof(uint64_t)); \
        for (i = i0; i < i1; i++) { \
            const T* xr = x + i * d + j0; \
            const T* dr = dz + i * ldz; \
            T* db = dzb + (i - i0) * ldt; \
            int sh = (int)(i - i0); \
            for (c = 0; c < m; c++) cm[c] |= (uint64_t)(xr[c] != 0) << sh; \
            if (i + bs < n) /* the same row of the next block, towards L2 (measured: a */ \
                /* half-row column range of a 10000 x 784 batch 6.0 -> 3.7 ms) */ \
                for (c = 0; c < m * (Py_ssize_t)sizeof(T); c += 64) \
                    syn_sp_prefetch((const char*)(xr + bs * d) + c); \
            SYN_SP_DZ_ROW(T) \
        } \
        for (c = 0; c < m; c++) { \
            uint64_t mk = cm[c]; \
            const T* xc = x + i0 * d + j0 + c; \
            T* sc = s + (j0 + c) * ldt; \
            if (!mk) continue; \
            for (cc = 0; cc < nv; cc += 8) { \
                off = cc * (VL); \
                SYN_SP_CASES(SYN_SP_GCALL, S) \
            } \
        } \
    } \
    return !bad; \
}

SYN_SP_FUNCS(f, float, syn_sp_vf, SYN_SP_VLF)
SYN_SP_FUNCS(d, double, syn_sp_vd, SYN_SP_VLD)

#endif /* SYNAPTIC_SPARSE_H */
