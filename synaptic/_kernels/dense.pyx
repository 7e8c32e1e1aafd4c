# distutils: extra_compile_args = -ffp-contract=off
"""Fully-connected layer kernels: activate, dense_forward, derivative, hidden_delta, weight_grad.

The compiled twin of the functions of the same names in ``reference.py`` (the contract).
All arrays are C-contiguous float32 or float64 (one dtype per call); arguments are checked
with the GIL held, then the work runs without it: GEMM through SciPy's BLAS (its threads),
then one fused elementwise pass (bias + activation, or * f'(y)) over blocks of rows.  The
passes vectorize (exp and tanh are branch-free, see _common.pxd) and run as OpenMP loops over
the blocks when the arrays are large and libgomp's idle threads sleep (see
_common.omp_workers_sleep).

Inputs with many exact zeros (the pixels of a first layer): dense_forward and weight_grad
skip them, from a few dozen rows, instead of calling the GEMM (see "Sparse inputs" below).

``-ffp-contract=off``: no a*b+c is fused into an FMA, so the elementwise arithmetic rounds
exactly like NumPy's; only the long sums of the sparse, packed and narrow-output loops (like a
GEMM's) may contract (SYN_FMA).

Also here: packed inputs (dense_packed.pxi: pack_input, packed_forward, packed_weight_grad),
the output layer in one pass (dense_top.pxi: output_backprop), a whole evaluation of an
input-hidden-output net on a packed input (dense_objective.pxi: packed_objective; what
L-BFGS calls 57 times in 50 iterations) and the whole-epoch SGD kernel (dense_epoch.pxi).
"""
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, malloc, free
from libc.math cimport INFINITY
from libc.string cimport memset
cimport numpy as cnp
cimport openmp
from cpython.pyport cimport PY_SSIZE_T_MAX

from ._common cimport *
from ._step cimport *

import numpy as np

from .reference_packed import PackedInput, _check_pack_args

cdef enum:
    GEMM_MIN_MACS = 4194304
    GEMM_MIN_PART = 8

cnp.import_array()

include "_threads.pxi"


cdef inline bint _parallel(Py_ssize_t elems, bint heavy) noexcept nogil:
    return _num_threads > 1 and elems >= (_par_heavy if heavy else _par_light)


# A GEMM of m*n*k multiply-adds splits over the threads (each calling SciPy's BLAS, kept at
# one thread by synaptic.set_num_threads) from GEMM_MIN_MACS multiply-adds, in parts of at
# least GEMM_MIN_PART rows or columns.  Measured on this 2-core machine (784 x 100 layer,
# f32): one GEMM on 2 BLAS threads 31 / 23 / 18 ms per epoch at batch 10 / 100 / 1000,
# split over 2 OpenMP threads 19 / 21 / 17.5 ms for the products alone.  In the training loop,
# though, the whole W1 epoch at batch 10 / 20 took 92-97 / 73-77 ms split from 262,144
# multiply-adds and 65 / 66-70 ms unsplit, so only products of 4M multiply-adds and more
# (784 x 100 from about 54 rows) split; fewer parallel regions also means fewer barriers
# to lose time at when the other core is busy.
cdef Py_ssize_t _gemm_min_macs = GEMM_MIN_MACS


def _set_gemm_threshold(macs):
    """Testing and tuning hook: the multiply-add count from which GEMMs split; returns the old."""
    global _gemm_min_macs
    old = _gemm_min_macs
    _gemm_min_macs = macs
    return old


cdef inline Py_ssize_t gemm_threads(Py_ssize_t macs, Py_ssize_t extent) noexcept nogil:
    """Threads for a GEMM of ``macs`` multiply-adds split along a dimension of ``extent``."""
    cdef Py_ssize_t nt = extent // GEMM_MIN_PART
    if _num_threads <= 1 or macs < _gemm_min_macs or nt < 2:
        return 1
    return nt if nt < _num_threads else _num_threads


# ---------------------------------------------------------------------------------------
# Sparse inputs (dense_forward and weight_grad)
#
# The input of a first layer is often mostly exact zeros (MNIST pixels: 81 % zeros, 151
# nonzeros of 784 per digit on average).  From SP_*_MIN_ROWS rows with at least a fraction
# SP_*_MIN_ZEROS of zeros, the two kernels skip them instead of calling the dense GEMM (same
# function, same results within float rounding: the twin is the contract):
#
# * dense_forward: each thread transposes W[:, 1:] into its own scratch Wt (d x ldt: o padded
#   to a whole number of vectors with zeros; 784 x 112 f32 = 351 KB, in the core's L2; 16 x 16
#   AVX-512 tiles, 9 us).  Then each thread takes a range of samples, in
#   blocks of ~36 rows (SP_FWD_BLOCK_BYTES of accumulators): a bit mask of the nonzero inputs
#   of each row (32 columns a word, a vectorized compare), then, chunk of 64 columns after
#   chunk (SP_FWD_CHUNK_BYTES of Wt, which stays in L1 from row to row),
#   out[i] += x[i, j] * Wt[j] over the set bits j of each row, the accumulators of up to 8
#   vectors in registers (C vector extensions: AVX-512 here), from out[i] = bias; then the
#   activation of the block.  Every output is bias + its terms in increasing j whatever the
#   blocking and the threads: the same bits for any thread count.
# * weight_grad: g[:, 1:]^T (d x o) = sum over the samples i and the nonzero x[i, j] of
#   x[i, j] * dz[i].  Each thread owns a range of input columns j (ranges balanced on the
#   nonzero counts of the sampled rows) and walks all samples in blocks of up to 64 (their dz
#   rows copied, padded, in L1; the next block's rows prefetched): for each column a 64-bit
#   mask of the block's samples with a nonzero there (a vectorized OR over the block's rows),
#   then, column by column, the block's sum of x[i, j] * dz[i] over the set bits (in
#   registers, in increasing i), added to S[j].  Every S[j] is summed in the same order, by
#   one thread, whatever the thread count and the split: the same bits for 1 and 2 threads,
#   without a reduction.  (The per-block sums make it a two-level sum: f32 errors like a
#   blocked GEMM's, not a 10,000-term running sum's.)  Then each thread transposes its
#   columns of S into g[:, 1:].  The bias column is the code below, unchanged.
#
# The zero fraction is estimated on SP_SAMPLE_ROWS evenly spaced rows (all rows if fewer): a
# wrong guess only costs time.  Scratch is allocated per call (kernels may run in several
# Python threads at once).  Wt / S larger than SP_MAX_SCRATCH: the GEMM (untuned beyond the
# MNIST shapes).  Non-finite values: a skipped x[i, j] == 0 term is 0 * w, which is NaN when
# w is inf or NaN.  So the forward declines (dense GEMM) when W[:, 1:] holds an inf or NaN
# (checked during the transposition), and weight_grad when dz does (checked while its rows
# are copied; the GEMM then overwrites g[:, 1:]).  NaN and inf in x are nonzero: they enter
# the sums and propagate exactly as in the GEMM.
#
# Thresholds, measured on this 2-core Zen 4 (f32, 784 -> 100, MNIST t10k rows, min of 5-7
# interleaved runs; the machine was shared, the 1-thread numbers are the steadier ones):
#   rows (dense GEMM / sparse, us per call)
#     forward      1 thread:  8: 13.3 / 25.7   12: 18.9 / 24.8   16: 53.5 / 28.1   24: 61.7 / 32.3
#                  2 threads: 24: 20.0 / 35.6   32: 60.5 / 35.0   48: 67.5 / 43.4  100: 113 / 61
#     weight_grad  1 thread:  8: 15.5 / 21.7   12: 20.6 / 22.7   16: 37.1 / 26.3   24: 49.8 / 28.5
#                  2 threads: 16: 16.4 / 22.5   24: 21.8 / 24.6   32: 46.4 / 23.7  100: 104 / 42
#     The fixed cost of the sparse path is the transposition of W (9 us for 784 x 100 f32) or
#     of S (8.5 us, + 3 us zeroing), the sampling and the scratch; the crossover is ~14 rows
#     with 1 thread, 24-32 with 2 (the default): SP_*_MIN_ROWS = 32.
#   zeros (uniform random zeros, 1000 rows, 1 thread; dense / sparse, us per call)
#     forward      0.2: 1734 / 1917   0.3: 1991 / 2012   0.4: 1915 / 1882   0.5: 1941 / 1596
#                  0.7: 1782 / 882    0.8: 1775 / 678
#     weight_grad  0.2: 1869 / 1952   0.3: 2147 / 1972   0.4: 2390 / 1870   0.5: 2271 / 1384
#                  0.7: 1995 / 832    0.8: 1816 / 645
#     so SP_FWD_MIN_ZEROS = 0.5 and SP_GRAD_MIN_ZEROS = 0.4 (a margin above the crossovers,
#     ~0.35 and ~0.25).
#   MNIST, 2 threads, quiet machine (dense / sparse): forward 32 rows 53 / 30 us, 100 rows
#     110 / 49 us, 1000 rows 857 / 312 us, 10000 rows 10.1 / 3.8 ms; weight_grad 32 rows
#     44 / 23 us, 100 rows 102 / 40 us, 1000 rows 936 / 311 us, 10000 rows 12.4 / 4.1 ms
#     (f64: 2.1-2.9x and 2.5-3.1x from 100 rows).

cdef extern from *:
    """
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

    #define SYN_SP_FUNCS(S, T, V, VL) \
    SYN_SP_FTILE(S, T, V, VL, 1) SYN_SP_FTILE(S, T, V, VL, 2) \
    SYN_SP_FTILE(S, T, V, VL, 3) SYN_SP_FTILE(S, T, V, VL, 4) \
    SYN_SP_FTILE(S, T, V, VL, 5) SYN_SP_FTILE(S, T, V, VL, 6) \
    SYN_SP_FTILE(S, T, V, VL, 7) SYN_SP_FTILE(S, T, V, VL, 8) \
    SYN_SP_GCOL(S, T, V, VL, 1) SYN_SP_GCOL(S, T, V, VL, 2) \
    SYN_SP_GCOL(S, T, V, VL, 3) SYN_SP_GCOL(S, T, V, VL, 4) \
    SYN_SP_GCOL(S, T, V, VL, 5) SYN_SP_GCOL(S, T, V, VL, 6) \
    SYN_SP_GCOL(S, T, V, VL, 7) SYN_SP_GCOL(S, T, V, VL, 8) \
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
        SYN_SP_TILED_##S( \
            Py_ssize_t jb; \
            for (jb = j0; jb + SYN_SP_TB_##S <= j1; jb += SYN_SP_TB_##S) \
                for (k = 0; k + SYN_SP_TB_##S <= o; k += SYN_SP_TB_##S) \
                    syn_sp_tile_##S(w + k * ldw + 1 + jb, ldw, wt + jb * ldt + k, ldt, &acc); \
            jfull = jb; \
            kfull = o / SYN_SP_TB_##S * SYN_SP_TB_##S; \
        ) \
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
        SYN_SP_TILED_##S( \
            Py_ssize_t jb; \
            for (jb = j0; jb + SYN_SP_TB_##S <= j1; jb += SYN_SP_TB_##S) \
                for (k = 0; k + SYN_SP_TB_##S <= o; k += SYN_SP_TB_##S) \
                    syn_sp_tile_##S(s + jb * ldt + k, ldt, g + k * ldg + 1 + jb, ldg, &acc); \
            jfull = jb; \
            kfull = o / SYN_SP_TB_##S * SYN_SP_TB_##S; \
        ) \
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
                uint32_t any = 0; \
                for (q = 0; q < q1 - q0; q++) any |= m[q]; \
                if (!any) continue; \
                for (cc = 0; cc < nv; cc += 8) { \
                    off = cc * (VL); \
                    switch (nv - cc < 8 ? nv - cc : 8) { \
                    case 1: syn_sp_ftile_##S##1(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 2: syn_sp_ftile_##S##2(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 3: syn_sp_ftile_##S##3(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 4: syn_sp_ftile_##S##4(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 5: syn_sp_ftile_##S##5(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 6: syn_sp_ftile_##S##6(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    case 7: syn_sp_ftile_##S##7(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); break; \
                    default: syn_sp_ftile_##S##8(m, q1 - q0, xr, wq + off, ldt, r + off, r + off); \
                    } \
                } \
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
                for (k = 0; k < o; k++) { \
                    T v = dr[k]; \
                    db[k] = v; \
                    bad |= !(v - v == 0); \
                } \
                for (k = o; k < ldt; k++) db[k] = 0; \
            } \
            for (c = 0; c < m; c++) { \
                uint64_t mk = cm[c]; \
                const T* xc = x + i0 * d + j0 + c; \
                T* sc = s + (j0 + c) * ldt; \
                if (!mk) continue; \
                for (cc = 0; cc < nv; cc += 8) { \
                    off = cc * (VL); \
                    switch (nv - cc < 8 ? nv - cc : 8) { \
                    case 1: syn_sp_gcol_##S##1(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 2: syn_sp_gcol_##S##2(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 3: syn_sp_gcol_##S##3(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 4: syn_sp_gcol_##S##4(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 5: syn_sp_gcol_##S##5(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 6: syn_sp_gcol_##S##6(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    case 7: syn_sp_gcol_##S##7(mk, xc, d, dzb + off, ldt, sc + off); break; \
                    default: syn_sp_gcol_##S##8(mk, xc, d, dzb + off, ldt, sc + off); \
                    } \
                } \
            } \
        } \
        return !bad; \
    }

    SYN_SP_FUNCS(f, float, syn_sp_vf, SYN_SP_VLF)
    SYN_SP_FUNCS(d, double, syn_sp_vd, SYN_SP_VLD)
    """
    enum:
        SYN_SP_VLF
        SYN_SP_VLD
    void* syn_sp_scratch(size_t bytes) noexcept nogil
    void syn_sp_sample_f(const float* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t rows,
                         int32_t* colnz) noexcept nogil
    void syn_sp_sample_d(const double* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t rows,
                         int32_t* colnz) noexcept nogil
    int syn_sp_transpose_in_f(const float* w, Py_ssize_t ldw, Py_ssize_t o, Py_ssize_t j0,
                              Py_ssize_t j1, float* wt, Py_ssize_t ldt) noexcept nogil
    int syn_sp_transpose_in_d(const double* w, Py_ssize_t ldw, Py_ssize_t o, Py_ssize_t j0,
                              Py_ssize_t j1, double* wt, Py_ssize_t ldt) noexcept nogil
    void syn_sp_transpose_out_f(const float* s, Py_ssize_t ldt, Py_ssize_t j0, Py_ssize_t j1,
                                Py_ssize_t o, float* g, Py_ssize_t ldg) noexcept nogil
    void syn_sp_transpose_out_d(const double* s, Py_ssize_t ldt, Py_ssize_t j0, Py_ssize_t j1,
                                Py_ssize_t o, double* g, Py_ssize_t ldg) noexcept nogil
    void syn_sp_fwd_block_f(const float* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                            const float* wt, Py_ssize_t ldt, const float* bias, float* out,
                            Py_ssize_t ldo, Py_ssize_t o, Py_ssize_t cw, uint32_t* mw,
                            float* ob) noexcept nogil
    void syn_sp_fwd_block_d(const double* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                            const double* wt, Py_ssize_t ldt, const double* bias, double* out,
                            Py_ssize_t ldo, Py_ssize_t o, Py_ssize_t cw, uint32_t* mw,
                            double* ob) noexcept nogil
    int syn_sp_grad_cols_f(const float* dz, Py_ssize_t ldz, const float* x, Py_ssize_t n,
                           Py_ssize_t o, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1, float* s,
                           Py_ssize_t ldt, Py_ssize_t bs, uint64_t* cm, float* dzb) noexcept nogil
    int syn_sp_grad_cols_d(const double* dz, Py_ssize_t ldz, const double* x, Py_ssize_t n,
                           Py_ssize_t o, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1, double* s,
                           Py_ssize_t ldt, Py_ssize_t bs, uint64_t* cm, double* dzb) noexcept nogil


cdef enum:
    SP_FWD_MIN_ROWS = 32
    SP_GRAD_MIN_ROWS = 32
    SP_SAMPLE_ROWS = 32
    SP_FWD_BLOCK_BYTES = 16384          # forward: a block's accumulator rows (in L1)
    SP_FWD_BLOCK_MIN = 8
    SP_FWD_BLOCK_MAX = 64
    SP_FWD_CHUNK_BYTES = 32768          # forward: the chunk of Wt walked by all rows of a block
    # ... when the zeros come from a pack (dense_packed.pxi).  Measured (MNIST, 784 -> 100,
    # f32, 1 thread, ms): chunks of 32 / 64 / 128 / all columns 7.2-8.4 / 6.6-8.3 / 6.5-7.1 /
    # 7.7-7.9 over blocks of 9-64 rows: 128 columns (57 KB, beyond L1), where x read from
    # memory preferred 64.
    PK_FWD_CHUNK_BYTES = 57344
    SP_BLOCK_MAX = 64                   # samples per block of weight_grad (bits of a mask)
    SP_L1_BYTES = 24576                 # the block's dz rows: at most this (L1 is 32 KB)
    SP_MAX_SCRATCH = 8 << 20            # Wt / S larger than this: the dense GEMM
    SP_COL_WEIGHT = 16                  # a nonzero costs about 16 mask-building elements

cdef double SP_FWD_MIN_ZEROS = 0.5
cdef double SP_GRAD_MIN_ZEROS = 0.4

cdef Py_ssize_t _sp_fwd_rows = SP_FWD_MIN_ROWS
cdef double _sp_fwd_zeros = SP_FWD_MIN_ZEROS
cdef Py_ssize_t _sp_grad_rows = SP_GRAD_MIN_ROWS
cdef double _sp_grad_zeros = SP_GRAD_MIN_ZEROS


def _set_sparse_threshold(fwd_rows, fwd_zeros, grad_rows, grad_zeros):
    """Testing and tuning hook: dense_forward / weight_grad take their sparse-input path from
    ``*_rows`` rows with at least a fraction ``*_zeros`` of exact zeros in x (0 forces it
    whenever it applies, above 1 turns it off); returns the previous 4-tuple."""
    global _sp_fwd_rows, _sp_fwd_zeros, _sp_grad_rows, _sp_grad_zeros
    old = (_sp_fwd_rows, _sp_fwd_zeros, _sp_grad_rows, _sp_grad_zeros)
    _sp_fwd_rows = max(1, int(fwd_rows))
    _sp_fwd_zeros = float(fwd_zeros)
    _sp_grad_rows = max(1, int(grad_rows))
    _sp_grad_zeros = float(grad_zeros)
    return old


cdef inline Py_ssize_t _sp_ldt(Py_ssize_t o, bint dbl) noexcept nogil:
    """Row length of the scratch matrices: o padded to a whole number of vectors."""
    cdef Py_ssize_t vl = SYN_SP_VLD if dbl else SYN_SP_VLF
    return (o + vl - 1) // vl * vl


cdef inline Py_ssize_t _sp_threads(Py_ssize_t n, Py_ssize_t d, Py_ssize_t o,
                                   Py_ssize_t extent) noexcept nogil:
    """Threads of a sparse kernel split along a dimension of ``extent`` (as for the GEMMs)."""
    if _num_threads <= 1 or n * d * o < _gemm_min_macs or extent < 2:
        return 1
    return extent if extent < _num_threads else _num_threads


cdef bint _sp_applies(Py_ssize_t n, Py_ssize_t d, Py_ssize_t o, Py_ssize_t ldt,
                      size_t item, Py_ssize_t min_rows, double min_zeros) noexcept nogil:
    return (n >= min_rows and n > 0 and d > 0 and o > 0 and min_zeros <= 1.0
            and d < (<Py_ssize_t>1 << 30) and <size_t>(d * ldt) * item <= SP_MAX_SCRATCH)


cdef double _sp_zeros(const floating* xp, Py_ssize_t n, Py_ssize_t d, int32_t* colnz,
                      Py_ssize_t* rows) noexcept nogil:
    """Fraction of exact zeros in the sampled rows of x (n x d); colnz: per column counts."""
    cdef Py_ssize_t r = n if n < SP_SAMPLE_ROWS else SP_SAMPLE_ROWS, c, nz = 0
    if floating is float:
        syn_sp_sample_f(xp, n, d, r, colnz)
    else:
        syn_sp_sample_d(xp, n, d, r, colnz)
    for c in range(d):
        nz += colnz[c]
    rows[0] = r
    return 1.0 - <double>nz / <double>(r * d)


# a PackedInput's arrays (dense_packed.pxi), for the packed paths of dense_forward / weight_grad
cdef struct _Packed:
    const uint32_t* rmask
    const void* rval
    const int64_t* roff
    const uint64_t* cmask
    const void* cval
    const int64_t* coff
    Py_ssize_t block


cdef int _sparse_forward(const floating* xp, const _Packed* pk, const floating* wp,
                         const floating* bias, floating* op, Py_ssize_t n, Py_ssize_t d,
                         Py_ssize_t o, Py_ssize_t ldw, int act) noexcept nogil:
    """The sparse-input forward (see above), the zeros found in x or (pk not NULL) read from
    a pack (dense_packed.pxi): 1 if done, 0 if declined (too few zeros in x, non-finite W,
    no memory) and nothing was written."""
    cdef Py_ssize_t ldt = _sp_ldt(o, floating is double), nw = (d + 31) // 32
    cdef Py_ssize_t row_bytes = ldt * sizeof(floating)
    cdef Py_ssize_t fb = SP_FWD_BLOCK_BYTES // row_bytes            # rows of a block
    cdef Py_ssize_t cw = ((PK_FWD_CHUNK_BYTES if pk != NULL else SP_FWD_CHUNK_BYTES)
                          // (32 * row_bytes))                      # mask words of a chunk
    cdef Py_ssize_t per, rows, nt, t, chunk, r0, r1, b, e
    cdef int32_t* colnz
    cdef int* ok
    cdef floating* wt
    cdef floating* bp
    cdef floating* ob
    cdef uint32_t* mw
    cdef const floating* rv = <const floating*>pk.rval if pk != NULL else NULL
    cdef int good = 1
    if not _sp_applies(n, d, o, ldt, sizeof(floating), 1 if pk != NULL else _sp_fwd_rows,
                       _sp_fwd_zeros):
        return 0
    if pk == NULL:
        colnz = <int32_t*>malloc(d * sizeof(int32_t))
        if colnz == NULL:
            return 0
        if _sp_zeros(xp, n, d, colnz, &rows) < _sp_fwd_zeros:
            free(colnz)
            return 0
        free(colnz)
    fb = SP_FWD_BLOCK_MAX if fb > SP_FWD_BLOCK_MAX else (SP_FWD_BLOCK_MIN if fb < SP_FWD_BLOCK_MIN
                                                          else fb)
    cw = 1 if cw < 1 else cw
    nt = _sp_threads(n, d, o, n)
    # per thread: its own Wt (each transposes all of W: one parallel region, no barrier, and
    # Wt in the core's own L2; measured 2 threads, MNIST: 29 / 49 / 321 us at 32 / 100 / 1000
    # rows against 35 / 57 / 385 us with one shared Wt transposed by halves in a first
    # region), the block's accumulators, and its row masks (from x) or its rows' value
    # pointers (a pack)
    per = d * row_bytes + fb * row_bytes + fb * max(nw * sizeof(uint32_t), sizeof(void*))
    per = (per + 63) // 64 * 64
    bp = <floating*>syn_sp_scratch(row_bytes + nt * per + nt * sizeof(int))
    if bp == NULL:
        return 0
    ok = <int*>(<char*>(bp + ldt) + nt * per)
    for t in range(o):
        bp[t] = bias[t]
    for t in range(o, ldt):
        bp[t] = 0
    # the samples split over the threads, in blocks of fb rows: the block, then its activation
    chunk = (n + nt - 1) // nt
    for t in prange(nt, schedule='static', num_threads=nt):
        wt = <floating*>(<char*>(bp + ldt) + t * per)
        ob = wt + d * ldt
        mw = <uint32_t*>(ob + fb * ldt)
        if floating is float:
            ok[t] = syn_sp_transpose_in_f(wp, ldw, o, 0, d, wt, ldt)
        else:
            ok[t] = syn_sp_transpose_in_d(wp, ldw, o, 0, d, wt, ldt)
        r0 = t * chunk
        r1 = min(n, r0 + chunk)
        b = r0
        while b < r1 and ok[t]:
            e = min(r1, b + fb)
            if pk != NULL:
                if floating is float:
                    syn_pk_fwd_block_f(pk.rmask, nw, rv, pk.roff, b, e, wt, ldt, bp, op, o, cw,
                                       <const float**>mw, ob)
                else:
                    syn_pk_fwd_block_d(pk.rmask, nw, rv, pk.roff, b, e, wt, ldt, bp, op, o, cw,
                                       <const double**>mw, ob)
            elif floating is float:
                syn_sp_fwd_block_f(xp, d, b, e, wt, ldt, bp, op, o, o, cw, mw, ob)
            else:
                syn_sp_fwd_block_d(xp, d, b, e, wt, ldt, bp, op, o, o, cw, mw, ob)
            act_rows(op, op, b, e, o, act)
            b = e
    for t in range(nt):
        good = good and ok[t]
    return good


cdef int _sparse_grad(const floating* dzp, const floating* xp, floating* op, Py_ssize_t n,
                      Py_ssize_t o, Py_ssize_t d, Py_ssize_t ldo) noexcept nogil:
    """The sparse-input g[:, 1:] (see above): 1 if done, 0 if declined (too few zeros, no
    memory: nothing written; non-finite dz: g[:, 1:] partly written, to be redone)."""
    cdef Py_ssize_t ldt = _sp_ldt(o, floating is double)
    cdef Py_ssize_t bs, per, rows, nt, t, c, total, acc
    cdef int32_t* colnz
    cdef Py_ssize_t* js
    cdef int* ok
    cdef floating* s
    cdef floating* dzb
    cdef uint64_t* cm
    cdef int good = 1
    if not _sp_applies(n, d, o, ldt, sizeof(floating), _sp_grad_rows, _sp_grad_zeros):
        return 0
    nt = _sp_threads(n, d, o, d)
    colnz = <int32_t*>malloc(d * sizeof(int32_t) + (nt + 1) * sizeof(Py_ssize_t))
    if colnz == NULL:
        return 0
    js = <Py_ssize_t*>(colnz + d)
    if _sp_zeros(xp, n, d, colnz, &rows) < _sp_grad_zeros:
        free(colnz)
        return 0
    # column ranges of about equal work: a nonzero ~ SP_COL_WEIGHT elements of mask building
    total = 0
    for c in range(d):
        total += colnz[c] * SP_COL_WEIGHT + rows
    js[0] = 0
    t = 1
    acc = 0
    for c in range(d):
        if t >= nt:
            break
        acc += colnz[c] * SP_COL_WEIGHT + rows
        if acc * nt >= t * total:
            js[t] = c + 1
            t += 1
    while t <= nt:
        js[t] = d
        t += 1
    bs = SP_L1_BYTES // (ldt * sizeof(floating))
    bs = SP_BLOCK_MAX if bs > SP_BLOCK_MAX else (1 if bs < 1 else bs)
    per = bs * ldt * sizeof(floating) + d * sizeof(uint64_t)     # per thread: dz block, masks
    per = (per + 63) // 64 * 64
    s = <floating*>syn_sp_scratch(d * ldt * sizeof(floating) + nt * per + nt * sizeof(int))
    if s == NULL:
        free(colnz)
        return 0
    ok = <int*>(<char*>(s + d * ldt) + nt * per)
    if nt > 1:
        for t in prange(nt, schedule='static', num_threads=nt):
            dzb = <floating*>(<char*>(s + d * ldt) + t * per)
            cm = <uint64_t*>(dzb + bs * ldt)
            if floating is float:
                ok[t] = syn_sp_grad_cols_f(dzp, o, xp, n, o, d, js[t], js[t + 1], s, ldt, bs, cm,
                                           dzb)
                syn_sp_transpose_out_f(s, ldt, js[t], js[t + 1], o, op, ldo)
            else:
                ok[t] = syn_sp_grad_cols_d(dzp, o, xp, n, o, d, js[t], js[t + 1], s, ldt, bs, cm,
                                           dzb)
                syn_sp_transpose_out_d(s, ldt, js[t], js[t + 1], o, op, ldo)
    else:
        dzb = <floating*>(s + d * ldt)
        cm = <uint64_t*>(dzb + bs * ldt)
        if floating is float:
            ok[0] = syn_sp_grad_cols_f(dzp, o, xp, n, o, d, 0, d, s, ldt, bs, cm, dzb)
            syn_sp_transpose_out_f(s, ldt, 0, d, o, op, ldo)
        else:
            ok[0] = syn_sp_grad_cols_d(dzp, o, xp, n, o, d, 0, d, s, ldt, bs, cm, dzb)
            syn_sp_transpose_out_d(s, ldt, 0, d, o, op, ldo)
    for t in range(nt):
        good = good and ok[t]
    free(colnz)
    return good


# ---------------------------------------------------------------------------------------
# activate

cdef int _activate(const floating[:, ::1] z, int act, floating[:, ::1] out) except -1:
    cdef Py_ssize_t n = z.shape[0], m = z.shape[1], b
    if n == 0 or m == 0:
        return 0
    cdef const floating* zp = &z[0, 0]
    cdef floating* op = &out[0, 0]
    cdef Py_ssize_t rb = block_rows(m), nb = (n + rb - 1) // rb
    with nogil:
        if nb > 1 and _parallel(n * m, act_is_heavy(act)):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                act_rows(zp, op, b * rb, min(n, b * rb + rb), m, act)
        else:
            act_rows(zp, op, 0, n, m, act)
    return 0


def activate(z, int act, out):
    """out = f(z), elementwise (softmax: per row).  ``out`` may be ``z``."""
    check_act(act)
    cdef int k = check_float(z, "z", 2, False)
    check_same(k, z, "z", check_float(out, "out", 2, True), out, "out")
    check_shape(out, "out", dim(z, 0), dim(z, 1))
    check_same_or_disjoint(out, "out", z, "z")
    if act == ACT_SOFTMAX and dim(z, 1) == 0:
        raise ValueError(f"softmax needs at least one column, z has shape {z.shape}")
    if k == 0:
        _activate[float](z, act, out)
    else:
        _activate[double](z, act, out)


# ---------------------------------------------------------------------------------------
# dense_forward

cdef inline void _bias_act_rows(floating* r, const floating* bias, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t o, int act) noexcept nogil:
    """Rows r0..r1-1 of the n x o output: r[i, j] = f(r[i, j] + bias[j]), in place."""
    cdef Py_ssize_t i, j
    cdef floating* row
    for i in range(r0, r1):
        row = r + i * o
        for j in range(o):
            row[j] = row[j] + bias[j]
    act_rows(r, r, r0, r1, o, act)


cdef void _forward_part(const floating* xp, const floating* wp, const floating* bias,
                        floating* op, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t d,
                        Py_ssize_t o, Py_ssize_t ldw, int act) noexcept nogil:
    """Rows r0..r1-1 of out: the GEMM (or GEMV for one row), then bias + activation."""
    cdef Py_ssize_t rb = block_rows(o), b
    if r1 - r0 == 1:
        # out(o) = W[:, 1:] (o x d) . x: column-major W[:, 1:] is d x o, lda 1 + d
        gemv(c'T', <int>d, <int>o, wp + 1, <int>ldw, xp + r0 * d, op + r0 * o)
    else:
        # column-major: out^T (o x n) = (W[:, 1:])^T' . x^T, W[:, 1:] seen as d x o
        gemm(c'T', c'N', <int>o, <int>(r1 - r0), <int>d, wp + 1, <int>ldw, xp + r0 * d,
             <int>d, op + r0 * o, <int>o)
    b = r0
    while b < r1:
        _bias_act_rows(op, bias, b, min(r1, b + rb), o, act)
        b += rb


cdef int _dense_forward(const floating[:, ::1] x, const floating[:, ::1] w, int act,
                        floating[:, ::1] out, const _Packed* pk) except -1:
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], o = w.shape[0], ldw = w.shape[1], i, b
    cdef Py_ssize_t t, nt, chunk, r0, r1, c0, c1
    if n == 0 or o == 0:
        return 0
    cdef Py_ssize_t rb = block_rows(o), nb = (n + rb - 1) // rb
    cdef const floating* wp = &w[0, 0]
    cdef const floating* xp = &x[0, 0] if d > 0 else NULL
    cdef floating* op = &out[0, 0]
    cdef floating* bias = <floating*>malloc(o * sizeof(floating))   # w[:, 0], contiguous
    if bias == NULL:
        raise MemoryError()
    with nogil:
        for i in range(o):
            bias[i] = wp[i * ldw]
        if d > 0 and (pk != NULL or n >= _sp_fwd_rows) and _sparse_forward(xp, pk, wp, bias, op,
                                                                          n, d, o, ldw, act):
            pass
        elif d == 0:
            memset(op, 0, n * o * sizeof(floating))
            for b in range(nb):
                _bias_act_rows(op, bias, b * rb, min(n, b * rb + rb), o, act)
        elif n >= GEMM_MIN_PART * 2 and gemm_threads(n * o * d, n) > 1:
            # rows split over the threads, each with its GEMM and its epilogue
            nt = gemm_threads(n * o * d, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                r0 = t * chunk
                r1 = min(n, r0 + chunk)
                if r1 > r0:
                    _forward_part(xp, wp, bias, op, r0, r1, d, o, ldw, act)
        elif gemm_threads(n * o * d, o) > 1:
            # few rows: the output units split over the threads, then one epilogue
            nt = gemm_threads(n * o * d, o)
            chunk = (o + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                c0 = t * chunk
                c1 = min(o, c0 + chunk)
                if c1 > c0:
                    if n == 1:
                        gemv(c'T', <int>d, <int>(c1 - c0), wp + c0 * ldw + 1, <int>ldw, xp,
                             op + c0)
                    else:
                        gemm(c'T', c'N', <int>(c1 - c0), <int>n, <int>d, wp + c0 * ldw + 1,
                             <int>ldw, xp, <int>d, op + c0, <int>o)
            for b in range(nb):
                _bias_act_rows(op, bias, b * rb, min(n, b * rb + rb), o, act)
        else:
            _forward_part(xp, wp, bias, op, 0, n, d, o, ldw, act)
        free(bias)
    return 0


def dense_forward(x, w, int act, out):
    """out = f([1 | x] . w^T): ``x`` n x d, ``w`` o x (1 + d), ``out`` n x o."""
    cdef int k = _check_forward(x, w, act, out)
    if k == 0:
        _dense_forward[float](x, w, act, out, NULL)
    else:
        _dense_forward[double](x, w, act, out, NULL)


cdef int _check_forward(x, w, int act, out, str xn="x", str on="out") except -1:
    """dense_forward's argument checks (x and out called ``xn`` and ``on`` in the messages);
    returns the dtype kind (0 float32, 1 float64)."""
    cdef int k = check_float(x, xn, 2, False)
    check_same(k, x, xn, check_float(w, "w", 2, False), w, "w")
    if dim(w, 1) != 1 + dim(x, 1):
        raise ValueError(f"w has {dim(w, 1)} columns, expected 1 + {dim(x, 1)} "
                         f"(bias + inputs)")
    check_same(k, x, xn, check_float(out, on, 2, True), out, on)
    check_shape(out, on, dim(x, 0), dim(w, 0))
    check_act(act)
    if act == ACT_SOFTMAX and dim(w, 0) == 0:
        raise ValueError(f"softmax needs at least one output, w has shape {w.shape}")
    check_disjoint(out, on, x, xn)
    check_disjoint(out, on, w, "w")
    return k


# ---------------------------------------------------------------------------------------
# derivative

cdef int _derivative(const floating[:, ::1] y, int act, floating[:, ::1] out) except -1:
    cdef Py_ssize_t size = y.shape[0] * y.shape[1], b, nb = (size + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if size == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        if nb > 1 and _parallel(size, False):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                deriv_row(yp + b * BLOCK_ELEMS, op + b * BLOCK_ELEMS,
                          min(size - b * BLOCK_ELEMS, <Py_ssize_t>BLOCK_ELEMS), act)
        else:
            deriv_row(yp, op, size, act)
    return 0


def derivative(y, int act, out):
    """out = f'(y) expressed through the output y (SYNAPTIC.md §2.4)."""
    cdef int k = check_float(y, "y", 2, False)
    check_same(k, y, "y", check_float(out, "out", 2, True), out, "out")
    check_shape(out, "out", dim(y, 0), dim(y, 1))
    check_deriv(act)
    check_same_or_disjoint(out, "out", y, "y")
    if k == 0:
        _derivative[float](y, act, out)
    else:
        _derivative[double](y, act, out)


# ---------------------------------------------------------------------------------------
# hidden_delta

cdef void _hidden_part(const floating* dzp, const floating* wp, const floating* yp,
                       floating* op, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                       Py_ssize_t c1, Py_ssize_t o, Py_ssize_t h, Py_ssize_t ldw,
                       int act) noexcept nogil:
    """Rows r0..r1-1, columns c0..c1-1 of out = (dz . W[:, 1:]) * f'(y)."""
    cdef Py_ssize_t i
    if r1 - r0 == 1:
        # out(h) = W[:, 1:]^T (h x o) . dz: column-major W[:, 1:] is h x o, lda 1 + h
        gemv(c'N', <int>(c1 - c0), <int>o, wp + 1 + c0, <int>ldw, dzp + r0 * o,
             op + r0 * h + c0)
    else:
        # column-major: out^T (h x n) = W[:, 1:] (seen as h x o) . dz^T (o x n)
        gemm(c'N', c'N', <int>(c1 - c0), <int>(r1 - r0), <int>o, wp + 1 + c0, <int>ldw,
             dzp + r0 * o, <int>o, op + r0 * h + c0, <int>h)
    if c0 == 0 and c1 == h:
        mul_deriv_row(op + r0 * h, yp + r0 * h, (r1 - r0) * h, act)
    else:
        for i in range(r0, r1):
            mul_deriv_row(op + i * h + c0, yp + i * h + c0, c1 - c0, act)


cdef int _hidden_delta(const floating[:, ::1] dz, const floating[:, ::1] w,
                       const floating[:, ::1] y, int act, floating[:, ::1] out) except -1:
    cdef Py_ssize_t n = dz.shape[0], o = dz.shape[1], h = y.shape[1], ldw = w.shape[1]
    cdef Py_ssize_t t, nt, chunk, a0, a1
    if n == 0 or h == 0:
        return 0
    cdef const floating* wp = &w[0, 0]
    cdef const floating* yp = &y[0, 0]
    cdef const floating* dzp = &dz[0, 0] if o > 0 else NULL
    cdef floating* op = &out[0, 0]
    with nogil:
        if o == 0:
            memset(op, 0, n * h * sizeof(floating))
            mul_deriv_row(op, yp, n * h, act)
        elif n >= GEMM_MIN_PART * 2 and gemm_threads(n * o * h, n) > 1:
            nt = gemm_threads(n * o * h, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                a0 = t * chunk
                a1 = min(n, a0 + chunk)
                if a1 > a0:
                    _hidden_part(dzp, wp, yp, op, a0, a1, 0, h, o, h, ldw, act)
        elif gemm_threads(n * o * h, h) > 1:
            nt = gemm_threads(n * o * h, h)
            chunk = (h + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                a0 = t * chunk
                a1 = min(h, a0 + chunk)
                if a1 > a0:
                    _hidden_part(dzp, wp, yp, op, 0, n, a0, a1, o, h, ldw, act)
        else:
            _hidden_part(dzp, wp, yp, op, 0, n, 0, h, o, h, ldw, act)
    return 0


def hidden_delta(dz, w, y, int act, out):
    """out = (dz . w[:, 1:]) * f'(y): the delta of the layer below ``w``.

    ``dz`` n x o (the delta of the layer above), ``w`` o x (1 + h), ``y`` n x h (the
    activity of the layer below), ``out`` n x h.
    """
    cdef int k = check_float(dz, "dz", 2, False)
    check_same(k, dz, "dz", check_float(w, "w", 2, False), w, "w")
    if dim(dz, 1) != dim(w, 0):
        raise ValueError(f"dz has {dim(dz, 1)} columns, w has {dim(w, 0)} rows")
    check_same(k, dz, "dz", check_float(y, "y", 2, False), y, "y")
    check_shape(y, "y", dim(dz, 0), dim(w, 1) - 1)
    check_same(k, dz, "dz", check_float(out, "out", 2, True), out, "out")
    check_shape(out, "out", dim(y, 0), dim(y, 1))
    check_deriv(act)
    check_disjoint(out, "out", dz, "dz")
    check_disjoint(out, "out", w, "w")
    check_disjoint(out, "out", y, "y")
    if k == 0:
        _hidden_delta[float](dz, w, y, act, out)
    else:
        _hidden_delta[double](dz, w, y, act, out)


# ---------------------------------------------------------------------------------------
# weight_grad

cdef inline void _colsum_chunk(const floating* dz, Py_ssize_t r0, Py_ssize_t r1,
                               Py_ssize_t o, Py_ssize_t ldz, double* acc) noexcept nogil:
    """acc[0:o] = sum of rows r0..r1-1 of dz (columns 0..o-1, row stride ldz), row after
    row, in double."""
    cdef Py_ssize_t i, j
    cdef const floating* r
    for j in range(o):
        acc[j] = 0
    for i in range(r0, r1):
        r = dz + i * ldz
        for j in range(o):
            acc[j] += r[j]


cdef inline void _outer(const floating* dz, const floating* x, Py_ssize_t o, Py_ssize_t d,
                        floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[j, 1 + k] = dz[j] * x[k]: the one-row weight gradient."""
    cdef Py_ssize_t j, k
    cdef floating a
    cdef floating* r
    for j in range(o):
        a = dz[j]
        r = out + j * ldo + 1
        for k in range(d):
            r[k] = a * x[k]


cdef void _grad_part(const floating* dzp, const floating* xp, floating* op, Py_ssize_t c0,
                     Py_ssize_t c1, Py_ssize_t n, Py_ssize_t o, Py_ssize_t d,
                     Py_ssize_t ldo) noexcept nogil:
    """Columns 1 + c0 .. 1 + c1 - 1 of out = dz^T . x."""
    if n == 1:
        _outer(dzp, xp + c0, o, c1 - c0, op + c0, ldo)
    else:
        # column-major: out[:, 1:]^T (d x o, ld 1 + d) = x^T (d x n) . dz (n x o)
        gemm(c'N', c'T', <int>(c1 - c0), <int>o, <int>n, xp + c0, <int>d, dzp, <int>o,
             op + 1 + c0, <int>ldo)


cdef int _weight_grad(const floating[:, ::1] dz, const floating[:, ::1] x,
                      floating[:, ::1] out, const _Packed* pk) except -1:
    cdef Py_ssize_t n = dz.shape[0], o = dz.shape[1], d = x.shape[1], ldo = 1 + d
    cdef Py_ssize_t rows, nch, c, j, r1, t, nt, chunk, c0, c1
    cdef const floating* xp = &x[0, 0] if (d > 0 and n > 0) else NULL
    cdef double s
    cdef double* acc
    if o == 0:
        return 0
    cdef const floating* dzp = &dz[0, 0]
    cdef floating* op = &out[0, 0]
    # Bias column: column sums of dz in double over fixed row chunks, added in chunk order,
    # so the bits do not depend on the thread count.
    rows = chunk_rows(n, o)
    nch = (n + rows - 1) // rows
    acc = <double*>malloc((nch if nch > 0 else 1) * o * sizeof(double))
    if acc == NULL:
        raise MemoryError()
    with nogil:
        if n == 0:
            for j in range(o):
                op[j * ldo] = 0
        else:
            if nch > 1 and _parallel(n * o, False):
                for c in prange(nch, schedule='static', num_threads=_num_threads):
                    _colsum_chunk(dzp, c * rows, min(n, c * rows + rows), o, o, acc + c * o)
            else:
                for c in range(nch):
                    _colsum_chunk(dzp, c * rows, min(n, c * rows + rows), o, o, acc + c * o)
            for j in range(o):
                s = acc[j]
                for c in range(1, nch):
                    s += acc[c * o + j]
                op[j * ldo] = <floating>s
        free(acc)
        if d > 0:
            if n == 0:
                for j in range(o):
                    memset(op + j * ldo + 1, 0, d * sizeof(floating))
            elif pk != NULL and _packed_grad(dzp, pk, op, n, o, d, ldo):
                pass
            elif pk == NULL and n >= _sp_grad_rows and _sparse_grad(dzp, xp, op, n, o, d, ldo):
                pass
            else:
                nt = gemm_threads(n * o * d, d)
                chunk = (d + nt - 1) // nt
                if nt > 1:
                    for t in prange(nt, schedule='static', num_threads=nt):
                        c0 = t * chunk
                        c1 = min(d, c0 + chunk)
                        if c1 > c0:
                            _grad_part(dzp, xp, op, c0, c1, n, o, d, ldo)
                else:
                    _grad_part(dzp, xp, op, 0, d, n, o, d, ldo)
    return 0


def weight_grad(dz, x, out):
    """out = dz^T . [1 | x], summed over the rows: ``out[:, 0]`` the bias gradient."""
    cdef int k = _check_weight_grad(dz, x, out)
    if k == 0:
        _weight_grad[float](dz, x, out, NULL)
    else:
        _weight_grad[double](dz, x, out, NULL)


cdef int _check_weight_grad(dz, x, out) except -1:
    """weight_grad's argument checks; returns the dtype kind (0 float32, 1 float64)."""
    cdef int k = check_float(dz, "dz", 2, False)
    check_same(k, dz, "dz", check_float(x, "x", 2, False), x, "x")
    if dim(dz, 0) != dim(x, 0):
        raise ValueError(f"dz has {dim(dz, 0)} rows, x has {dim(x, 0)}")
    check_same(k, dz, "dz", check_float(out, "out", 2, True), out, "out")
    check_shape(out, "out", dim(dz, 1), 1 + dim(x, 1))
    check_disjoint(out, "out", dz, "dz")
    check_disjoint(out, "out", x, "x")
    return k


# ---------------------------------------------------------------------------------------
# packed inputs

include "dense_packed.pxi"


# ---------------------------------------------------------------------------------------
# output_backprop

include "dense_top.pxi"


# ---------------------------------------------------------------------------------------
# packed_objective

include "dense_objective.pxi"


# ---------------------------------------------------------------------------------------
# sgd_epoch

include "dense_epoch.pxi"
