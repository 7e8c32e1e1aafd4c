# distutils: extra_compile_args = -ffp-contract=off
"""Fully-connected layer kernels: activate, dense_forward, derivative, hidden_delta, weight_grad.

The compiled twin of the functions of the same names in ``reference.py`` (the contract).
All arrays are C-contiguous float32 or float64 (one dtype per call); arguments are checked
with the GIL held, then the work runs without it: GEMM through SciPy's BLAS (its threads),
then one fused elementwise pass (bias + activation, or * f'(y)) over blocks of rows.  The
passes vectorize (exp and tanh are branch-free, see c/expf.h) and run as OpenMP loops over
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

from .checks import PackedInput, is_frozen, x_zeros, check_pack_args, output_backprop_steps, packed_objective_steps

cdef enum:
    GEMM_MIN_MACS = 4194304
    GEMM_MIN_PART = 8

cnp.import_array()

include "_threads.pxi"


cdef inline bint _parallel(Py_ssize_t elems, bint heavy) noexcept nogil:
    return _num_threads > 1 and elems >= (_par_heavy if heavy else _par_light)


# A GEMM of m*n*k multiply-adds splits over the threads (gemm_parts; each calling SciPy's
# BLAS, kept at one thread by synaptic.set_num_threads) from GEMM_MIN_MACS multiply-adds, in
# parts of at least GEMM_MIN_PART rows or columns.  Measured on this 2-core machine (784 x 100 layer,
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


def _blas_pieces(str ta, str tb, a, b, Py_ssize_t chunk):
    """Testing hook: the column-major product op(A) . op(B) (A = a.T and B = b.T as BLAS sees
    the C-contiguous ``a`` and ``b``; ``b`` 1-D: gemv) done in pieces of at most ``chunk``,
    as a product whose sizes exceed BLAS's int is.  Returns C (m x n), or y."""
    cdef int kind = check_float(a, "a", 2, False)
    cdef char cta = ord(ta), ctb = ord(tb)
    cdef Py_ssize_t ra = dim(a, 1), ca = dim(a, 0), m, n, k
    cdef void* pa = cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef void* pb
    cdef void* pc
    m, k = (ra, ca) if ta == "N" else (ca, ra)
    check_same(kind, a, "a", check_float(b, "b", b.ndim, False), b, "b")
    if chunk < 1 or m < 1 or k < 1 or ta not in "NT" or tb not in "NT":
        raise ValueError("bad _blas_pieces arguments")
    pb = cnp.PyArray_DATA(<cnp.ndarray>b)
    if b.ndim == 1:
        if b.shape[0] != k:
            raise ValueError(f"b has {b.shape[0]} values, op(A) has {k} columns")
        y = np.empty(m, dtype=a.dtype)
        pc = cnp.PyArray_DATA(<cnp.ndarray>y)
        if kind == 0:
            gemv_pieces[float](cta, ra, ca, <float*>pa, ra, <float*>pb, <float*>pc, chunk)
        else:
            gemv_pieces[double](cta, ra, ca, <double*>pa, ra, <double*>pb, <double*>pc, chunk)
        return y
    if (dim(b, 1) if tb == "N" else dim(b, 0)) != k:
        raise ValueError(f"op(B) has not the {k} rows op(A) has columns")
    n = dim(b, 0) if tb == "N" else dim(b, 1)
    c = np.empty((n, m), dtype=a.dtype)         # C-contiguous n x m: column-major m x n
    pc = cnp.PyArray_DATA(<cnp.ndarray>c)
    if kind == 0:
        gemm_pieces[float](cta, ctb, m, n, k, <float*>pa, ra, <float*>pb, dim(b, 1),
                           <float*>pc, m, chunk)
    else:
        gemm_pieces[double](cta, ctb, m, n, k, <double*>pa, ra, <double*>pb, dim(b, 1),
                            <double*>pc, m, chunk)
    return c.T


cdef inline Py_ssize_t gemm_parts(Py_ssize_t macs, Py_ssize_t extent) noexcept nogil:
    """The parts (one per thread) a GEMM of ``macs`` multiply-adds is split into along a
    dimension of ``extent``: from GEMM_MIN_MACS multiply-adds, parts of at least
    GEMM_MIN_PART rows or columns and GEMM_PART_MACS multiply-adds.

    Determinism: each element of a product is one dot product that BLAS runs in the same
    order however the product is split along its rows or columns (OpenBLAS's GEMM kernels
    walk k in fixed blocks), so 1 and 2 threads give the same bits -- as long as no part is
    so small that OpenBLAS takes its small-matrix kernels (another order): hence parts of at
    least a quarter of the threshold (1M multiply-adds), far above their bound.  Splitting into more parts than threads
    instead costs each part a repacking of the weights (measured: 8 parts of a 1000 x 3072 x
    256 product on one thread, 30 % slower than one GEMM)."""
    cdef Py_ssize_t nt = extent // GEMM_MIN_PART, floor = _gemm_min_macs // 4, most
    if _num_threads <= 1 or macs < _gemm_min_macs:
        return 1
    most = macs // floor if floor > 0 else nt     # no floor when the tests force splits
    nt = nt if nt < most else most
    nt = nt if nt < _num_threads else _num_threads
    return nt if nt > 1 else 1


cdef inline int part_threads(Py_ssize_t parts) noexcept nogil:
    return <int>(parts if parts < _num_threads else _num_threads)


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
#
# The C of these kernels (and the vector types, tiles and scratch that dense_packed.pxi,
# dense_top.pxi and dense_epoch.pxi use too) is c/sparse.h.

cdef extern from "sparse.h":
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
        gemv(c'T', d, o, wp + 1, ldw, xp + r0 * d, op + r0 * o)
    else:
        # column-major: out^T (o x n) = (W[:, 1:])^T' . x^T, W[:, 1:] seen as d x o
        gemm(c'T', c'N', o, (r1 - r0), d, wp + 1, ldw, xp + r0 * d,
             d, op + r0 * o, o)
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
        elif n >= GEMM_MIN_PART * 2 and gemm_parts(n * o * d, n) > 1:
            # rows in parts shared by the threads, each with its GEMM and its epilogue
            nt = gemm_parts(n * o * d, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                r0 = t * chunk
                r1 = min(n, r0 + chunk)
                if r1 > r0:
                    _forward_part(xp, wp, bias, op, r0, r1, d, o, ldw, act)
        elif gemm_parts(n * o * d, o) > 1:
            # few rows: the output units in parts, then one epilogue
            nt = gemm_parts(n * o * d, o)
            chunk = (o + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                c0 = t * chunk
                c1 = min(o, c0 + chunk)
                if c1 > c0:
                    if n == 1:
                        gemv(c'T', d, (c1 - c0), wp + c0 * ldw + 1, ldw, xp,
                             op + c0)
                    else:
                        gemm(c'T', c'N', (c1 - c0), n, d, wp + c0 * ldw + 1,
                             ldw, xp, d, op + c0, o)
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
        gemv(c'N', (c1 - c0), o, wp + 1 + c0, ldw, dzp + r0 * o,
             op + r0 * h + c0)
    else:
        # column-major: out^T (h x n) = W[:, 1:] (seen as h x o) . dz^T (o x n)
        gemm(c'N', c'N', (c1 - c0), (r1 - r0), o, wp + 1 + c0, ldw,
             dzp + r0 * o, o, op + r0 * h + c0, h)
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
        elif n >= GEMM_MIN_PART * 2 and gemm_parts(n * o * h, n) > 1:
            nt = gemm_parts(n * o * h, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                a0 = t * chunk
                a1 = min(n, a0 + chunk)
                if a1 > a0:
                    _hidden_part(dzp, wp, yp, op, a0, a1, 0, h, o, h, ldw, act)
        elif gemm_parts(n * o * h, h) > 1:
            nt = gemm_parts(n * o * h, h)
            chunk = (h + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
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
        gemm(c'N', c'T', (c1 - c0), o, n, xp + c0, d, dzp, o,
             op + 1 + c0, ldo)


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
                nt = gemm_parts(n * o * d, d)
                chunk = (d + nt - 1) // nt
                if nt > 1:
                    for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
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
