# distutils: extra_compile_args = -ffp-contract=off
"""Output-layer kernels: output_delta, error_sum, argmax_rows; and dropout (dropout.pxi).

The compiled twin of the functions of the same names in ``reference.py`` (the contract).
``error_sum`` accumulates in double over fixed row chunks combined in chunk order, so its
result has the same bits whatever the thread count.
"""
from cython.parallel cimport prange
from libc.math cimport floor, log
from libc.stdint cimport int64_t
cimport numpy as cnp

from ._common cimport *
from ._step cimport *
from .checks import check_dropout

cnp.import_array()

include "_threads.pxi"


cdef inline bint _parallel(Py_ssize_t elems, bint heavy) noexcept nogil:
    return _num_threads > 1 and elems >= (_par_heavy if heavy else _par_light)


# ---------------------------------------------------------------------------------------
# output_delta

cdef int _output_delta(const floating[:, ::1] y, const floating[:, ::1] t, int act, int kind,
                       floating[:, ::1] out, double slope) except -1:
    cdef Py_ssize_t size = y.shape[0] * y.shape[1], b, nb = (size + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    cdef Py_ssize_t o
    if size == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef const floating* tp = &t[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        if nb > 1 and _parallel(size, False):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                o = b * BLOCK_ELEMS
                _delta_row(yp + o, tp + o, op + o, min(size - o, <Py_ssize_t>BLOCK_ELEMS),
                           act, kind, slope)
        else:
            _delta_row(yp, tp, op, size, act, kind, slope)
    return 0


def output_delta(y, t, int act, int kind, out, double slope=SYN_LEAKY_SLOPE):
    """dE/dz of the output layer: DELTA_DIFF -> y - t; DELTA_SSE -> f'(y) (y - t)
    (``slope``: leaky-relu's)."""
    cdef int k = check_float(y, "y", 2, False)
    check_operand(k, y, "y", t, "t", False, dim(y, 0), dim(y, 1))
    check_operand(k, y, "y", out, "out", True, dim(y, 0), dim(y, 1))
    if kind == DELTA_SSE:
        check_deriv_slope(act, slope)
    elif kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {kind}")
    check_same_or_disjoint(out, "out", y, "y")
    check_same_or_disjoint(out, "out", t, "t")
    if k == 0:
        _output_delta[float](y, t, act, kind, out, slope)
    else:
        _output_delta[double](y, t, act, kind, out, slope)


# ---------------------------------------------------------------------------------------
# argmax_rows

cdef int _argmax_rows(const floating[:, ::1] y, int64_t[::1] out) except -1:
    cdef Py_ssize_t n = y.shape[0], m = y.shape[1], i
    if n == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef int64_t* op = &out[0]
    with nogil:
        if _parallel(n * m, False):
            for i in prange(n, schedule='static', num_threads=_num_threads):
                op[i] = _argmax_last(yp + i * m, m)
        else:
            for i in range(n):
                op[i] = _argmax_last(yp + i * m, m)
    return 0


def argmax_rows(y, out):
    """out[i] = index of the largest value of row i, the last one on ties (int64 ``out``)."""
    cdef int k = check_float(y, "y", 2, False)
    if not cnp.PyArray_Check(out):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if cnp.PyArray_NDIM(<cnp.ndarray>out) != 1 or dim(out, 0) != dim(y, 0):
        raise ValueError(f"out has shape {out.shape}, expected {(dim(y, 0),)}")
    if (cnp.PyArray_TYPE(<cnp.ndarray>out) != cnp.NPY_INT64
            or not cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>out)):
        raise TypeError(f"out has dtype {out.dtype}, expected int64")
    if not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out):
        raise ValueError(f"out must be contiguous, got strides {out.strides}")
    if not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out):
        raise ValueError("out is read-only")
    if dim(y, 1) == 0 and dim(y, 0) > 0:
        raise ValueError("attempt to get argmax of an empty sequence (y has 0 columns)")
    if k == 0:
        _argmax_rows[float](y, out)
    else:
        _argmax_rows[double](y, out)


# ---------------------------------------------------------------------------------------
# error_sum

cdef double _error_sum(const floating[:, ::1] y, const floating[:, ::1] t, int kind) except? -1:
    cdef Py_ssize_t n = y.shape[0], m = y.shape[1], rows, nch, c
    cdef double partial[MAX_CHUNKS]
    cdef double s = 0
    if n == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef const floating* tp = &t[0, 0]
    rows = chunk_rows(n, m)
    nch = (n + rows - 1) // rows      # <= MAX_CHUNKS
    with nogil:
        if nch > 1 and _parallel(n * m, kind >= ERR_CROSS_ENTROPY_BINARY):
            for c in prange(nch, schedule='static', num_threads=_num_threads):
                partial[c] = _chunk_error(yp, tp, c * rows, min(n, c * rows + rows), m, kind)
        else:
            for c in range(nch):
                partial[c] = _chunk_error(yp, tp, c * rows, min(n, c * rows + rows), m, kind)
        for c in range(nch):
            s += partial[c]
    if kind == ERR_CROSS_ENTROPY_BINARY or kind == ERR_CROSS_ENTROPY_MULTIVARIATE:
        s = -s
    return s


def error_sum(y, t, int kind):
    """The sum over all rows of the per-sample error of ``kind`` (a Python float)."""
    cdef int k = check_float(y, "y", 2, False)
    check_operand(k, y, "y", t, "t", False, dim(y, 0), dim(y, 1))
    if not 0 <= kind < N_ERR:
        raise ValueError(f"unknown error kind {kind}")
    if kind == ERR_ARGMAX_MISCLASSIFICATION and dim(y, 1) == 0:
        raise ValueError("attempt to get argmax of an empty sequence (y has 0 columns)")
    if k == 0:
        return _error_sum[float](y, t, kind)
    return _error_sum[double](y, t, kind)


include "dropout.pxi"
