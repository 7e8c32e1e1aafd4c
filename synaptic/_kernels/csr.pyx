# distutils: extra_compile_args = -ffp-contract=off
"""A first fully-connected layer on a CSR input: csr_forward and csr_weight_grad.

The compiled twin of the functions of the same names in ``reference_csr.py`` (the contract).
The input is SciPy's CSR layout given as its three arrays: ``data`` (float32 or float64, the
dtype of the weights), ``indices`` (int32 or int64, the column of each entry, in 0..d-1, not
necessarily sorted within a row; duplicates add) and ``indptr`` (the same integer type, m + 1
monotone offsets: row i is ``data[indptr[i]:indptr[i + 1]]``).  ``indptr[0]`` need not be 0:
``indptr[a:b + 1]`` with the whole ``data`` and ``indices`` is rows a..b-1, a view without a
copy (how the training batches of a sparse set are addressed).  A stored entry is a term even
when its value is 0; an entry not stored contributes nothing, as in SciPy's products (so an
inf or NaN weight meets only the inputs stored).

* ``csr_forward(data, indices, indptr, w, act, out, slope)``: out = f(X . w[:, 1:]^T + w[:, 0])
  as ``dense_forward(X.toarray(), w, act, out, slope)``.  W[:, 1:] is transposed into a
  d x o scratch (o padded to whole vectors; the threads split its columns), then the rows are
  split over the threads: each output is the bias plus its row's terms in storage order
  (c/csr.h), then the activation of the thread's rows.
* ``csr_weight_grad(dz, data, indices, indptr, out)``: out = dz^T . [1 | X], overwritten, as
  ``weight_grad(dz, X.toarray(), out)``: the bias column as weight_grad computes it (column
  sums of dz in double over fixed row chunks, the same bits).  The rest, for a mini-batch
  (dz under CSR_GRAD_ROWS_BYTES), from the entries regrouped by column (a counting sort), each
  column's sum in increasing row order in registers, the columns in blocks of 16 shared by
  the threads, each block transposed into out; for a larger batch (L-BFGS's full batch, whose
  dz rows would come from memory once per entry) row after row: dz streamed, g^T[j] +=
  v * dz[i] in a d x o scratch (the threads split the units), then transposed into out.

Measured (this 2-core Zen 4, shared with other jobs; 2000 -> 100 units, density 1.3 %, one
thread, min of 5 runs, us; SciPy twin in brackets): batch 200 f32 forward 70 (263), weight
gradient 74-82 (290-340); f64 115 (330-370), 117-121 (380-470); batch 16,000 f32 forward
2,600, weight gradient 4,700-5,100 (7,600-7,900; the column walk 7,100-7,500); f64 6,000-7,000,
8,200-8,800 (13,000-14,200; the column walk 15,500-21,900).  The fixed cost of the forward is
the transposition of W (45 us f32, 83 us f64 at 2000 x 100).

Every output element is one sum in a fixed order computed by one thread: the same bits for
any thread count.  The arguments are checked with the GIL (shapes, dtypes, then indptr and
the indices of the rows used, an O(m + nnz) pass), the work runs without it.
"""
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
cimport numpy as cnp

from ._common cimport *

cnp.import_array()

include "_threads.pxi"

cdef extern from "csr.h":
    enum:
        SYN_SP_VLF
        SYN_SP_VLD
        SYN_CSR_JB
    void* syn_sp_scratch(size_t bytes) noexcept nogil
    int syn_sp_transpose_in_f(const float* w, Py_ssize_t ldw, Py_ssize_t o, Py_ssize_t j0,
                              Py_ssize_t j1, float* wt, Py_ssize_t ldt) noexcept nogil
    int syn_sp_transpose_in_d(const double* w, Py_ssize_t ldw, Py_ssize_t o, Py_ssize_t j0,
                              Py_ssize_t j1, double* wt, Py_ssize_t ldt) noexcept nogil
    void syn_csr_fwd_rows_fi(const float*, const int32_t*, const int32_t*, Py_ssize_t,
                             Py_ssize_t, const float*, Py_ssize_t, const float*, float*,
                             Py_ssize_t, float*) noexcept nogil
    void syn_csr_fwd_rows_fl(const float*, const int64_t*, const int64_t*, Py_ssize_t,
                             Py_ssize_t, const float*, Py_ssize_t, const float*, float*,
                             Py_ssize_t, float*) noexcept nogil
    void syn_csr_fwd_rows_di(const double*, const int32_t*, const int32_t*, Py_ssize_t,
                             Py_ssize_t, const double*, Py_ssize_t, const double*, double*,
                             Py_ssize_t, double*) noexcept nogil
    void syn_csr_fwd_rows_dl(const double*, const int64_t*, const int64_t*, Py_ssize_t,
                             Py_ssize_t, const double*, Py_ssize_t, const double*, double*,
                             Py_ssize_t, double*) noexcept nogil
    void syn_csr_grad_rows_fi(const float*, const int32_t*, const int32_t*, Py_ssize_t,
                              const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t, float*,
                              Py_ssize_t) noexcept nogil
    void syn_csr_grad_rows_fl(const float*, const int64_t*, const int64_t*, Py_ssize_t,
                              const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t, float*,
                              Py_ssize_t) noexcept nogil
    void syn_csr_grad_rows_di(const double*, const int32_t*, const int32_t*, Py_ssize_t,
                              const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, double*,
                              Py_ssize_t) noexcept nogil
    void syn_csr_grad_rows_dl(const double*, const int64_t*, const int64_t*, Py_ssize_t,
                              const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, double*,
                              Py_ssize_t) noexcept nogil
    void syn_sp_transpose_out_f(const float* s, Py_ssize_t ldt, Py_ssize_t j0, Py_ssize_t j1,
                                Py_ssize_t o, float* g, Py_ssize_t ldg) noexcept nogil
    void syn_sp_transpose_out_d(const double* s, Py_ssize_t ldt, Py_ssize_t j0, Py_ssize_t j1,
                                Py_ssize_t o, double* g, Py_ssize_t ldg) noexcept nogil
    void syn_csr_to_csc_fi(const float*, const int32_t*, const int32_t*, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t*, Py_ssize_t*, float*) noexcept nogil
    void syn_csr_to_csc_fl(const float*, const int64_t*, const int64_t*, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t*, Py_ssize_t*, float*) noexcept nogil
    void syn_csr_to_csc_di(const double*, const int32_t*, const int32_t*, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t*, Py_ssize_t*, double*) noexcept nogil
    void syn_csr_to_csc_dl(const double*, const int64_t*, const int64_t*, Py_ssize_t,
                           Py_ssize_t, Py_ssize_t*, Py_ssize_t*, double*) noexcept nogil
    Py_ssize_t syn_csr_check_i(const int32_t*, const int32_t*, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, int*) noexcept nogil
    Py_ssize_t syn_csr_check_l(const int64_t*, const int64_t*, Py_ssize_t, Py_ssize_t,
                                Py_ssize_t, int*) noexcept nogil
    void syn_csr_pad_rows_f(const float*, Py_ssize_t, Py_ssize_t, Py_ssize_t, float*,
                            Py_ssize_t) noexcept nogil
    void syn_csr_pad_rows_d(const double*, Py_ssize_t, Py_ssize_t, Py_ssize_t, double*,
                            Py_ssize_t) noexcept nogil
    void syn_csr_grad_block_f(const Py_ssize_t*, const Py_ssize_t*, const float*, Py_ssize_t,
                              Py_ssize_t, const float*, Py_ssize_t, Py_ssize_t, float*, float*,
                              Py_ssize_t) noexcept nogil
    void syn_csr_grad_block_d(const Py_ssize_t*, const Py_ssize_t*, const double*, Py_ssize_t,
                              Py_ssize_t, const double*, Py_ssize_t, Py_ssize_t, double*,
                              double*, Py_ssize_t) noexcept nogil

ctypedef fused index_t:
    int32_t
    int64_t

# The threads share a call from this many multiply-adds (nnz * o + d * o) on: below it,
# waking the team costs more than it saves.  Measured (2-core Zen 4, f32, a 200 x 2000 batch
# at 1.3 % into 100 units: 720k multiply-adds): forward 71 / 91 us, weight gradient 74 / 89
# us with 1 / 2 threads, so a mini-batch stays on one thread; a full batch (L-BFGS, 16,000
# rows: 21M) splits.  _set_csr_threshold sets it (tests: 0).
cdef enum:
    CSR_MIN_MACS = 1 << 22

# (as the other modules' thresholds: no OpenMP loop unless libgomp's idle threads sleep)
cdef Py_ssize_t _csr_min_macs = CSR_MIN_MACS if _omp_sleeps else PY_SSIZE_T_MAX

# csr_weight_grad walks the rows (dz streamed, g^T in a d x o scratch) instead of the columns
# (dz rows fetched per entry) from this many bytes of dz on (beyond the core's L2 share).
# _set_grad_rows_bytes sets it (tests: 0 and the maximum, to take each path).
cdef enum:
    CSR_GRAD_ROWS_BYTES = 1 << 19

cdef Py_ssize_t _grad_rows_bytes = CSR_GRAD_ROWS_BYTES


def _set_grad_rows_bytes(nbytes):
    """Testing and tuning hook: the dz size from which csr_weight_grad walks the rows;
    returns the old value."""
    global _grad_rows_bytes
    old = _grad_rows_bytes
    _grad_rows_bytes = nbytes
    return old


def _set_csr_threshold(macs):
    """Testing and tuning hook: the multiply-adds from which a call uses the threads;
    returns the old value."""
    global _csr_min_macs
    old = _csr_min_macs
    _csr_min_macs = macs
    return old


cdef inline int _threads_for(Py_ssize_t macs, Py_ssize_t extent) noexcept nogil:
    if _num_threads <= 1 or macs < _csr_min_macs or extent < 2:
        return 1
    return <int>(extent if extent < _num_threads else _num_threads)


cdef inline Py_ssize_t _ldt(Py_ssize_t o, bint dbl) noexcept nogil:
    cdef Py_ssize_t vl = SYN_SP_VLD if dbl else SYN_SP_VLF
    return (o + vl - 1) // vl * vl


cdef inline size_t _up64(size_t b) noexcept nogil:
    return (b + 63) // 64 * 64


# ---------------------------------------------------------------------------------------
# argument checks

cdef int _check_index(a, str name) except -1:
    """0 for int32, 1 for int64: a 1-D C-contiguous array in native byte order."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    if (t != cnp.NPY_INT32 and t != cnp.NPY_INT64) or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a):
        raise TypeError(f"{name} has dtype {a.dtype}, expected int32 or int64")
    if cnp.PyArray_NDIM(<cnp.ndarray>a) != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a):
        raise ValueError(f"{name} must be contiguous, got strides {a.strides}")
    return 0 if t == cnp.NPY_INT32 else 1


cdef int _check_csr(data, indices, indptr, Py_ssize_t m, Py_ssize_t d, int k) except -1:
    """The CSR arrays of m rows of d columns, data of dtype kind ``k``; returns the index
    kind (0 int32, 1 int64)."""
    cdef int ik = _check_index(indices, "indices")
    if _check_index(indptr, "indptr") != ik:
        raise TypeError(f"indptr has dtype {indptr.dtype} but indices has dtype "
                        f"{indices.dtype}: they must share one integer type")
    cdef Py_ssize_t nnz = cnp.PyArray_DIM(<cnp.ndarray>data, 0)
    if cnp.PyArray_DIM(<cnp.ndarray>indices, 0) != nnz:
        raise ValueError(f"indices has {indices.shape[0]} entries, data has {nnz}")
    if cnp.PyArray_DIM(<cnp.ndarray>indptr, 0) != m + 1:
        raise ValueError(f"indptr has {indptr.shape[0]} entries, expected {m + 1} "
                         f"(rows + 1)")
    cdef int what = 0
    cdef Py_ssize_t bad
    cdef void* ip = cnp.PyArray_DATA(<cnp.ndarray>indices)
    cdef void* pp = cnp.PyArray_DATA(<cnp.ndarray>indptr)
    with nogil:
        if ik == 0:
            bad = syn_csr_check_i(<const int32_t*>ip, <const int32_t*>pp, m, nnz, d, &what)
        else:
            bad = syn_csr_check_l(<const int64_t*>ip, <const int64_t*>pp, m, nnz, d, &what)
    if bad >= 0:
        if what == 0:
            raise ValueError(f"indptr[{bad}] = {indptr[bad]}: indptr must rise monotonically "
                             f"from indptr[0] >= 0 to indptr[{m}] <= {nnz} (the entries)")
        raise ValueError(f"indices[{bad}] = {indices[bad]} is not a column of 0..{d - 1}")
    return ik


# ---------------------------------------------------------------------------------------
# csr_forward

cdef int _forward(const floating* data, const index_t* indices, const index_t* indptr,
                  Py_ssize_t m, Py_ssize_t d, const floating* wp, Py_ssize_t o, int act,
                  double slope, floating* op) except -1:
    cdef Py_ssize_t ldw = 1 + d, ldt = _ldt(o, floating is double), t, r0, r1, chunk, c0, c1
    cdef Py_ssize_t nnz = <Py_ssize_t>(indptr[m] - indptr[0])
    cdef int nt = _threads_for(nnz * o + d * o, m if m > d else d)
    cdef size_t row = ldt * sizeof(floating)
    cdef char* scratch
    cdef floating* wt
    cdef floating* bias
    cdef floating* obs
    if m == 0 or o == 0:
        return 0
    with nogil:
        scratch = <char*>syn_sp_scratch(_up64(d * row) + _up64(row) + nt * _up64(row))
    if scratch == NULL:
        raise MemoryError()
    wt = <floating*>scratch
    bias = <floating*>(scratch + _up64(d * row))
    obs = <floating*>(scratch + _up64(d * row) + _up64(row))
    with nogil:
        for t in range(o):
            bias[t] = wp[t * ldw]
        for t in range(o, ldt):
            bias[t] = 0
        if d > 0:
            chunk = (d + nt - 1) // nt
            if nt > 1:
                for t in prange(nt, schedule='static', num_threads=nt):
                    c0 = t * chunk
                    c1 = min(d, c0 + chunk)
                    if c1 > c0:
                        _transpose_in(wp, ldw, o, c0, c1, wt, ldt)
            else:
                _transpose_in(wp, ldw, o, 0, d, wt, ldt)
        nt = _threads_for(nnz * o, m)
        chunk = (m + nt - 1) // nt
        if nt > 1:
            for t in prange(nt, schedule='static', num_threads=nt):
                r0 = t * chunk
                r1 = min(m, r0 + chunk)
                if r1 > r0:
                    _fwd_rows(data, indices, indptr, r0, r1, wt, ldt, bias, op, o,
                              <floating*>(<char*>obs + t * _up64(row)), act, slope)
        else:
            _fwd_rows(data, indices, indptr, 0, m, wt, ldt, bias, op, o, obs, act, slope)
    return 0


cdef inline void _transpose_in(const floating* w, Py_ssize_t ldw, Py_ssize_t o, Py_ssize_t j0,
                               Py_ssize_t j1, floating* wt, Py_ssize_t ldt) noexcept nogil:
    if floating is float:
        syn_sp_transpose_in_f(w, ldw, o, j0, j1, wt, ldt)
    else:
        syn_sp_transpose_in_d(w, ldw, o, j0, j1, wt, ldt)


cdef inline void _fwd_rows(const floating* data, const index_t* indices, const index_t* indptr,
                           Py_ssize_t r0, Py_ssize_t r1, const floating* wt, Py_ssize_t ldt,
                           const floating* bias, floating* op, Py_ssize_t o, floating* ob,
                           int act, double slope) noexcept nogil:
    cdef Py_ssize_t rb = block_rows(o), b = r0, e
    while b < r1:       # blocks of rows: the sums, then their activation while in cache
        e = min(r1, b + rb)
        if floating is float:
            if index_t is int32_t:
                syn_csr_fwd_rows_fi(data, indices, indptr, b, e, wt, ldt, bias, op, o, ob)
            else:
                syn_csr_fwd_rows_fl(data, indices, indptr, b, e, wt, ldt, bias, op, o, ob)
        else:
            if index_t is int32_t:
                syn_csr_fwd_rows_di(data, indices, indptr, b, e, wt, ldt, bias, op, o, ob)
            else:
                syn_csr_fwd_rows_dl(data, indices, indptr, b, e, wt, ldt, bias, op, o, ob)
        act_rows(op, op, b, e, o, act, slope)
        b = e


def csr_forward(data, indices, indptr, w, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = f(X . w[:, 1:]^T + w[:, 0]) for the CSR rows X (``data``, ``indices``,
    ``indptr``: m rows of d = w.shape[1] - 1 columns); ``w`` o x (1 + d), ``out`` m x o."""
    cdef int k = check_float(w, "w", 2, False)
    check_same(k, w, "w", check_float(data, "data", 1, False), data, "data")
    check_same(k, w, "w", check_float(out, "out", 2, True), out, "out")
    cdef Py_ssize_t m = dim(out, 0), o = dim(w, 0), d = dim(w, 1) - 1
    if d < 0:
        raise ValueError(f"w has shape {w.shape}: it needs a bias column")
    check_shape(out, "out", m, o)
    check_act(act)
    check_slope(slope)
    if act == ACT_SOFTMAX and o == 0:
        raise ValueError(f"softmax needs at least one output, w has shape {w.shape}")
    cdef int ik = _check_csr(data, indices, indptr, m, d, k)
    for a, name in ((w, "w"), (data, "data"), (indices, "indices"), (indptr, "indptr")):
        check_disjoint(out, "out", a, name)
    cdef void* dp = cnp.PyArray_DATA(<cnp.ndarray>data)
    cdef void* ip = cnp.PyArray_DATA(<cnp.ndarray>indices)
    cdef void* pp = cnp.PyArray_DATA(<cnp.ndarray>indptr)
    cdef void* wp = cnp.PyArray_DATA(<cnp.ndarray>w)
    cdef void* op = cnp.PyArray_DATA(<cnp.ndarray>out)
    if k == 0 and ik == 0:
        _forward[float, int32_t](<float*>dp, <int32_t*>ip, <int32_t*>pp, m, d, <float*>wp, o,
                                 act, slope, <float*>op)
    elif k == 0:
        _forward[float, int64_t](<float*>dp, <int64_t*>ip, <int64_t*>pp, m, d, <float*>wp, o,
                                 act, slope, <float*>op)
    elif ik == 0:
        _forward[double, int32_t](<double*>dp, <int32_t*>ip, <int32_t*>pp, m, d, <double*>wp,
                                  o, act, slope, <double*>op)
    else:
        _forward[double, int64_t](<double*>dp, <int64_t*>ip, <int64_t*>pp, m, d, <double*>wp,
                                  o, act, slope, <double*>op)


# ---------------------------------------------------------------------------------------
# csr_weight_grad

cdef int _bias_grad(const floating* dz, Py_ssize_t n, Py_ssize_t o, floating* op,
                    Py_ssize_t ldo) except -1:
    """op[j * ldo] = column j's sum of dz: weight_grad's chunks, combined in chunk order."""
    cdef Py_ssize_t rows = chunk_rows(n, o), nch = (n + rows - 1) // rows, c, j
    cdef double s
    cdef double* acc = <double*>malloc((nch if nch > 0 else 1) * o * sizeof(double))
    if acc == NULL:
        raise MemoryError()
    with nogil:
        for c in range(nch):
            _colsum_chunk(dz, c * rows, min(n, c * rows + rows), o, o, acc + c * o)
        for j in range(o):
            s = acc[j] if nch > 0 else 0
            for c in range(1, nch):
                s += acc[c * o + j]
            op[j * ldo] = <floating>s
    free(acc)
    return 0


cdef int _weight_grad(const floating* dz, const floating* data, const index_t* indices,
                      const index_t* indptr, Py_ssize_t m, Py_ssize_t d, Py_ssize_t o,
                      floating* op) except -1:
    cdef Py_ssize_t ldo = 1 + d, ldt = _ldt(o, floating is double), nb, b, j0, j1, t, chunk
    cdef Py_ssize_t nnz = <Py_ssize_t>(indptr[m] - indptr[0]), r0, r1
    cdef int nt
    cdef size_t row = ldt * sizeof(floating), blk = _up64(SYN_CSR_JB * row)
    cdef size_t o_ptr = _up64((d + 1) * sizeof(Py_ssize_t))
    cdef size_t o_row = o_ptr + _up64(nnz * sizeof(Py_ssize_t))
    cdef size_t o_val = o_row + _up64(nnz * sizeof(floating))
    cdef size_t o_dz = o_val + _up64(m * row)
    cdef char* scratch
    cdef Py_ssize_t* cptr
    cdef Py_ssize_t* crow
    cdef floating* cval
    cdef floating* dzp
    cdef char* sbs
    if o == 0:
        return 0
    _bias_grad(dz, m, o, op, ldo)
    if d == 0:
        return 0
    if m == 0 or nnz == 0:
        with nogil:
            for t in range(o):
                memset(op + t * ldo + 1, 0, d * sizeof(floating))
        return 0
    if m * o * <Py_ssize_t>sizeof(floating) >= _grad_rows_bytes:
        return _weight_grad_rows(dz, data, indices, indptr, m, d, o, nnz, op)
    nt = _threads_for(nnz * o + d * o, (d + SYN_CSR_JB - 1) // SYN_CSR_JB)
    with nogil:
        scratch = <char*>syn_sp_scratch(o_dz + nt * blk)
    if scratch == NULL:
        raise MemoryError()
    cptr = <Py_ssize_t*>scratch
    crow = <Py_ssize_t*>(scratch + o_ptr)
    cval = <floating*>(scratch + o_row)
    dzp = <floating*>(scratch + o_val)
    sbs = scratch + o_dz
    nb = (d + SYN_CSR_JB - 1) // SYN_CSR_JB
    with nogil:
        if nt > 1:
            chunk = (m + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                r0 = t * chunk
                r1 = min(m, r0 + chunk)
                if r1 > r0:
                    _pad_rows(dz, o, r0, r1, dzp, ldt)
        else:
            _pad_rows(dz, o, 0, m, dzp, ldt)
        if floating is float:
            if index_t is int32_t:
                syn_csr_to_csc_fi(data, indices, indptr, m, d, cptr, crow, cval)
            else:
                syn_csr_to_csc_fl(data, indices, indptr, m, d, cptr, crow, cval)
        else:
            if index_t is int32_t:
                syn_csr_to_csc_di(data, indices, indptr, m, d, cptr, crow, cval)
            else:
                syn_csr_to_csc_dl(data, indices, indptr, m, d, cptr, crow, cval)
        if nt > 1:
            chunk = (nb + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                for b in range(t * chunk, min(nb, t * chunk + chunk)):
                    _grad_block(cptr, crow, cval, b * SYN_CSR_JB, min(d, b * SYN_CSR_JB + SYN_CSR_JB),
                                dzp, ldt, o, <floating*>(sbs + t * blk), op, ldo)
        else:
            for b in range(nb):
                _grad_block(cptr, crow, cval, b * SYN_CSR_JB, min(d, b * SYN_CSR_JB + SYN_CSR_JB),
                            dzp, ldt, o, <floating*>sbs, op, ldo)
    return 0


cdef int _weight_grad_rows(const floating* dz, const floating* data, const index_t* indices,
                           const index_t* indptr, Py_ssize_t m, Py_ssize_t d, Py_ssize_t o,
                           Py_ssize_t nnz, floating* op) except -1:
    """g[:, 1:] through gt = g[:, 1:]^T (d x ldt scratch): the units split over the threads
    (each gt[j, u] summed by one, in row order), then the columns of the transposition."""
    cdef Py_ssize_t ldo = 1 + d, ldt = _ldt(o, floating is double), vl, per, t, u0, u1, j
    cdef Py_ssize_t chunk
    cdef int nt = _threads_for(nnz * o + d * o, o)
    cdef floating* gt
    with nogil:
        gt = <floating*>syn_sp_scratch(d * ldt * sizeof(floating))
    if gt == NULL:
        raise MemoryError()
    vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    per = ((o + nt - 1) // nt + vl - 1) // vl * vl      # units a thread, whole vectors
    with nogil:
        if nt > 1:
            for t in prange(nt, schedule='static', num_threads=nt):
                u0 = t * per
                u1 = min(o, u0 + per)
                if u1 > u0:
                    _grad_rows(data, indices, indptr, m, dz, o, u0, u1, gt, ldt, d)
            chunk = (d + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=nt):
                u0 = t * chunk
                u1 = min(d, u0 + chunk)
                if u1 > u0:
                    _transpose_out(gt, ldt, u0, u1, o, op, ldo)
        else:
            _grad_rows(data, indices, indptr, m, dz, o, 0, o, gt, ldt, d)
            _transpose_out(gt, ldt, 0, d, o, op, ldo)
    return 0


cdef inline void _grad_rows(const floating* data, const index_t* indices,
                            const index_t* indptr, Py_ssize_t m, const floating* dz,
                            Py_ssize_t o, Py_ssize_t u0, Py_ssize_t u1, floating* gt,
                            Py_ssize_t ldt, Py_ssize_t d) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(d):
        memset(gt + j * ldt + u0, 0, (u1 - u0) * sizeof(floating))
    if floating is float:
        if index_t is int32_t:
            syn_csr_grad_rows_fi(data, indices, indptr, m, dz, o, u0, u1, gt, ldt)
        else:
            syn_csr_grad_rows_fl(data, indices, indptr, m, dz, o, u0, u1, gt, ldt)
    else:
        if index_t is int32_t:
            syn_csr_grad_rows_di(data, indices, indptr, m, dz, o, u0, u1, gt, ldt)
        else:
            syn_csr_grad_rows_dl(data, indices, indptr, m, dz, o, u0, u1, gt, ldt)


cdef inline void _transpose_out(const floating* gt, Py_ssize_t ldt, Py_ssize_t j0,
                                Py_ssize_t j1, Py_ssize_t o, floating* op,
                                Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        syn_sp_transpose_out_f(gt, ldt, j0, j1, o, op, ldo)
    else:
        syn_sp_transpose_out_d(gt, ldt, j0, j1, o, op, ldo)


cdef inline void _pad_rows(const floating* dz, Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1,
                           floating* dzp, Py_ssize_t ldt) noexcept nogil:
    if floating is float:
        syn_csr_pad_rows_f(dz, o, r0, r1, dzp, ldt)
    else:
        syn_csr_pad_rows_d(dz, o, r0, r1, dzp, ldt)


cdef inline void _grad_block(const Py_ssize_t* cptr, const Py_ssize_t* crow,
                             const floating* cval, Py_ssize_t j0, Py_ssize_t j1,
                             const floating* dzp, Py_ssize_t ldt, Py_ssize_t o, floating* sb,
                             floating* g, Py_ssize_t ldg) noexcept nogil:
    if floating is float:
        syn_csr_grad_block_f(cptr, crow, cval, j0, j1, dzp, ldt, o, sb, g, ldg)
    else:
        syn_csr_grad_block_d(cptr, crow, cval, j0, j1, dzp, ldt, o, sb, g, ldg)


def csr_weight_grad(dz, data, indices, indptr, out):
    """out = dz^T . [1 | X] for the CSR rows X (m rows of d = out.shape[1] - 1 columns),
    summed over the rows, overwritten: ``out[:, 0]`` the bias gradient; ``dz`` m x o."""
    cdef int k = check_float(dz, "dz", 2, False)
    check_same(k, dz, "dz", check_float(data, "data", 1, False), data, "data")
    check_same(k, dz, "dz", check_float(out, "out", 2, True), out, "out")
    cdef Py_ssize_t m = dim(dz, 0), o = dim(dz, 1), d = dim(out, 1) - 1
    if dim(out, 0) != o or d < 0:
        raise ValueError(f"out has shape {out.shape}, expected ({o}, 1 + d)")
    cdef int ik = _check_csr(data, indices, indptr, m, d, k)
    for a, name in ((dz, "dz"), (data, "data"), (indices, "indices"), (indptr, "indptr")):
        check_disjoint(out, "out", a, name)
    cdef void* zp = cnp.PyArray_DATA(<cnp.ndarray>dz)
    cdef void* dp = cnp.PyArray_DATA(<cnp.ndarray>data)
    cdef void* ip = cnp.PyArray_DATA(<cnp.ndarray>indices)
    cdef void* pp = cnp.PyArray_DATA(<cnp.ndarray>indptr)
    cdef void* op = cnp.PyArray_DATA(<cnp.ndarray>out)
    if k == 0 and ik == 0:
        _weight_grad[float, int32_t](<float*>zp, <float*>dp, <int32_t*>ip, <int32_t*>pp, m, d,
                                     o, <float*>op)
    elif k == 0:
        _weight_grad[float, int64_t](<float*>zp, <float*>dp, <int64_t*>ip, <int64_t*>pp, m, d,
                                     o, <float*>op)
    elif ik == 0:
        _weight_grad[double, int32_t](<double*>zp, <double*>dp, <int32_t*>ip, <int32_t*>pp, m,
                                      d, o, <double*>op)
    else:
        _weight_grad[double, int64_t](<double*>zp, <double*>dp, <int64_t*>ip, <int64_t*>pp, m,
                                      d, o, <double*>op)
