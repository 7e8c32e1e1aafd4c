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
from libc.string cimport memcpy, memset
cimport numpy as cnp
cimport openmp

from ._common cimport *
from ._step cimport *

import numpy as np

from .checks import PackedInput, check_adam_epoch, check_errors, is_frozen, x_zeros, check_pack_args, output_backprop_steps, packed_objective_steps, fused_objective_steps

cdef enum:
    GEMM_MIN_MACS = 4194304
    GEMM_MIN_PART = 8
    GRAD_ROWS_MAX_COLS = 64     # weight_grad's row split (_grad_row_parts)
    GRAD_ROWS_MIN_ROWS = 2048
    GRAD_ROWS_MAX_PARTS = 4

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

include "dense_sparse.pxi"


# ---------------------------------------------------------------------------------------
# activate

cdef int _activate(const floating[:, ::1] z, int act, double slope,
                   floating[:, ::1] out) except -1:
    cdef Py_ssize_t n = z.shape[0], m = z.shape[1], b
    if n == 0 or m == 0:
        return 0
    cdef const floating* zp = &z[0, 0]
    cdef floating* op = &out[0, 0]
    cdef Py_ssize_t rb = block_rows(m), nb = (n + rb - 1) // rb
    with nogil:
        if nb > 1 and _parallel(n * m, act_is_heavy(act)):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                act_rows(zp, op, b * rb, min(n, b * rb + rb), m, act, slope)
        else:
            act_rows(zp, op, 0, n, m, act, slope)
    return 0


def activate(z, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = f(z), elementwise (softmax: per row).  ``out`` may be ``z``."""
    check_act(act)
    check_slope(slope)
    cdef int k = check_float(z, "z", 2, False)
    check_operand(k, z, "z", out, "out", True, dim(z, 0), dim(z, 1))
    check_same_or_disjoint(out, "out", z, "z")
    if act == ACT_SOFTMAX and dim(z, 1) == 0:
        raise ValueError(f"softmax needs at least one column, z has shape {z.shape}")
    if k == 0:
        _activate[float](z, act, slope, out)
    else:
        _activate[double](z, act, slope, out)


# ---------------------------------------------------------------------------------------
# dense_forward

cdef inline void _bias_act_rows(floating* r, const floating* bias, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t o, int act,
                                double slope) noexcept nogil:
    """Rows r0..r1-1 of the n x o output: r[i, j] = f(r[i, j] + bias[j]), in place."""
    cdef Py_ssize_t i, j
    cdef floating* row
    for i in range(r0, r1):
        row = r + i * o
        for j in range(o):
            row[j] = row[j] + bias[j]
    act_rows(r, r, r0, r1, o, act, slope)


include "dense_small.pxi"


cdef void _forward_part(const floating* xp, const floating* wp, const floating* bias,
                        floating* op, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t d,
                        Py_ssize_t o, Py_ssize_t ldw, int act, double slope) noexcept nogil:
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
        _bias_act_rows(op, bias, b, min(r1, b + rb), o, act, slope)
        b += rb


cdef int _dense_forward(const floating[:, ::1] x, const floating[:, ::1] w, int act,
                        double slope, floating[:, ::1] out, const _Packed* pk) except -1:
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
        if d > 0 and (pk != NULL or n >= _sp_fwd_rows) and _sparse_forward(
                xp, pk, wp, bias, op, n, d, o, ldw, act, slope):
            pass
        elif d == 0:
            memset(op, 0, n * o * sizeof(floating))
            for b in range(nb):
                _bias_act_rows(op, bias, b * rb, min(n, b * rb + rb), o, act, slope)
        elif n <= _small_rows:
            _small_forward(xp, wp, bias, op, n, d, o, ldw, act, slope)
        elif n >= GEMM_MIN_PART * 2 and gemm_parts(n * o * d, n) > 1:
            # rows in parts shared by the threads, each with its GEMM and its epilogue
            nt = gemm_parts(n * o * d, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                r0 = t * chunk
                r1 = min(n, r0 + chunk)
                if r1 > r0:
                    _forward_part(xp, wp, bias, op, r0, r1, d, o, ldw, act, slope)
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
                _bias_act_rows(op, bias, b * rb, min(n, b * rb + rb), o, act, slope)
        else:
            _forward_part(xp, wp, bias, op, 0, n, d, o, ldw, act, slope)
        free(bias)
    return 0


def dense_forward(x, w, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = f([1 | x] . w^T): ``x`` n x d, ``w`` o x (1 + d), ``out`` n x o."""
    cdef int k = _check_forward(x, w, act, slope, out)
    if k == 0:
        _dense_forward[float](x, w, act, slope, out, NULL)
    else:
        _dense_forward[double](x, w, act, slope, out, NULL)


cdef int _check_forward(x, w, int act, double slope, out, str xn="x", str on="out") except -1:
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
    check_slope(slope)
    if act == ACT_SOFTMAX and dim(w, 0) == 0:
        raise ValueError(f"softmax needs at least one output, w has shape {w.shape}")
    check_disjoint(out, on, x, xn)
    check_disjoint(out, on, w, "w")
    return k


# ---------------------------------------------------------------------------------------
# derivative

cdef int _derivative(const floating[:, ::1] y, int act, double slope,
                     floating[:, ::1] out) except -1:
    cdef Py_ssize_t size = y.shape[0] * y.shape[1], b, nb = (size + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if size == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        if nb > 1 and _parallel(size, False):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                deriv_row(yp + b * BLOCK_ELEMS, op + b * BLOCK_ELEMS,
                          min(size - b * BLOCK_ELEMS, <Py_ssize_t>BLOCK_ELEMS), act, slope)
        else:
            deriv_row(yp, op, size, act, slope)
    return 0


def derivative(y, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = f'(y) expressed through the output y (SYNAPTIC.md §2.4)."""
    cdef int k = check_float(y, "y", 2, False)
    check_operand(k, y, "y", out, "out", True, dim(y, 0), dim(y, 1))
    check_deriv_slope(act, slope)
    check_same_or_disjoint(out, "out", y, "y")
    if k == 0:
        _derivative[float](y, act, slope, out)
    else:
        _derivative[double](y, act, slope, out)


# ---------------------------------------------------------------------------------------
# hidden_delta

cdef void _hidden_part(const floating* dzp, const floating* wp, const floating* yp,
                       floating* op, Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t c0,
                       Py_ssize_t c1, Py_ssize_t o, Py_ssize_t h, Py_ssize_t ldw,
                       int act, double slope) noexcept nogil:
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
        mul_deriv_row(op + r0 * h, yp + r0 * h, (r1 - r0) * h, act, slope)
    else:
        for i in range(r0, r1):
            mul_deriv_row(op + i * h + c0, yp + i * h + c0, c1 - c0, act, slope)


cdef int _hidden_delta(const floating[:, ::1] dz, const floating[:, ::1] w,
                       const floating[:, ::1] y, int act, double slope,
                       floating[:, ::1] out) except -1:
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
            mul_deriv_row(op, yp, n * h, act, slope)
        elif 1 < n <= _small_rows:
            _small_hidden(dzp, wp, yp, op, n, o, h, ldw, act, slope)
        elif n >= GEMM_MIN_PART * 2 and gemm_parts(n * o * h, n) > 1:
            nt = gemm_parts(n * o * h, n)
            chunk = (n + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                a0 = t * chunk
                a1 = min(n, a0 + chunk)
                if a1 > a0:
                    _hidden_part(dzp, wp, yp, op, a0, a1, 0, h, o, h, ldw, act, slope)
        elif gemm_parts(n * o * h, h) > 1:
            nt = gemm_parts(n * o * h, h)
            chunk = (h + nt - 1) // nt
            for t in prange(nt, schedule='static', num_threads=part_threads(nt)):
                a0 = t * chunk
                a1 = min(h, a0 + chunk)
                if a1 > a0:
                    _hidden_part(dzp, wp, yp, op, 0, n, a0, a1, o, h, ldw, act, slope)
        else:
            _hidden_part(dzp, wp, yp, op, 0, n, 0, h, o, h, ldw, act, slope)
    return 0


def hidden_delta(dz, w, y, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = (dz . w[:, 1:]) * f'(y): the delta of the layer below ``w``.

    ``dz`` n x o (the delta of the layer above), ``w`` o x (1 + h), ``y`` n x h (the
    activity of the layer below), ``out`` n x h.
    """
    cdef int k = check_float(dz, "dz", 2, False)
    check_same(k, dz, "dz", check_float(w, "w", 2, False), w, "w")
    if dim(dz, 1) != dim(w, 0):
        raise ValueError(f"dz has {dim(dz, 1)} columns, w has {dim(w, 0)} rows")
    check_operand(k, dz, "dz", y, "y", False, dim(dz, 0), dim(w, 1) - 1)
    check_operand(k, dz, "dz", out, "out", True, dim(y, 0), dim(y, 1))
    check_deriv_slope(act, slope)
    check_disjoint(out, "out", dz, "dz")
    check_disjoint(out, "out", w, "w")
    check_disjoint(out, "out", y, "y")
    if k == 0:
        _hidden_delta[float](dz, w, y, act, slope, out)
    else:
        _hidden_delta[double](dz, w, y, act, slope, out)


# ---------------------------------------------------------------------------------------
# weight_grad

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


cdef inline Py_ssize_t _grad_row_parts(Py_ssize_t n, Py_ssize_t o, Py_ssize_t d) noexcept nogil:
    """The row parts of weight_grad's product for a narrow x (d < GRAD_ROWS_MAX_COLS) and many
    rows: a function of the shape only (not of the thread count), so the bits do not depend
    on the threads.  Splitting the columns of such a product leaves each thread a GEMM a few
    columns wide that still reads all of dz (784 -> 100 layers keep the column split).
    Measured (f32, 2 threads, o = 100): 16000 x 20 2.9 -> 0.9 ms, 40000 x 50 12-15 -> 5 ms."""
    cdef Py_ssize_t parts
    if d >= GRAD_ROWS_MAX_COLS or n * o * d < _gemm_min_macs:
        return 1
    parts = n // GRAD_ROWS_MIN_ROWS
    return GRAD_ROWS_MAX_PARTS if parts > GRAD_ROWS_MAX_PARTS else (parts if parts > 1 else 1)


cdef bint _grad_by_rows(const floating* dzp, const floating* xp, floating* op, Py_ssize_t n,
                        Py_ssize_t o, Py_ssize_t d, Py_ssize_t ldo) noexcept nogil:
    """out[:, 1:] = dz^T . x as _grad_row_parts row parts, each its GEMM into its own partial
    (in parallel), the partials added in part order.  False (nothing written) if the
    partials cannot be allocated."""
    cdef Py_ssize_t parts = _grad_row_parts(n, o, d), chunk = (n + parts - 1) // parts
    cdef Py_ssize_t t, r0, r1, j, c, size = o * d
    cdef floating v
    cdef floating* part = <floating*>malloc(parts * size * sizeof(floating))
    if part == NULL:
        return False
    for t in prange(parts, schedule='static', num_threads=part_threads(parts)):
        r0 = t * chunk
        r1 = min(n, r0 + chunk)
        # column-major: part_t (d x o, ld d) = x[r0:r1]^T (d x rows) . dz[r0:r1] (rows x o)
        gemm(c'N', c'T', d, o, r1 - r0, xp + r0 * d, d, dzp + r0 * o, o, part + t * size, d)
    for j in range(o):
        for c in range(d):
            v = part[j * d + c]
            for t in range(1, parts):
                v = v + part[t * size + j * d + c]
            op[j * ldo + 1 + c] = v
    free(part)
    return True


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
            elif 1 < n <= _small_rows:
                _small_grad(dzp, xp, op, n, o, d, ldo)
            elif _grad_row_parts(n, o, d) > 1 and _grad_by_rows(dzp, xp, op, n, o, d, ldo):
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
    check_operand(k, dz, "dz", out, "out", True, dim(dz, 1), 1 + dim(x, 1))
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
# A whole evaluation of a dense net of any depth in one call

include "dense_fused.pxi"


# ---------------------------------------------------------------------------------------
# packed_objective

include "dense_objective.pxi"


# ---------------------------------------------------------------------------------------
# sgd_epoch

include "dense_epoch.pxi"
