# Included by dense.pyx: the sparse-input paths of dense_forward and weight_grad.
#
# Sparse inputs
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
                         Py_ssize_t o, Py_ssize_t ldw, int act, double slope) noexcept nogil:
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
            act_rows(op, op, b, e, o, act, slope)
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
