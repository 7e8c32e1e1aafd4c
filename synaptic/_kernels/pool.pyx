# distutils: extra_compile_args = -ffp-contract=off
"""Pooling kernels: max_pool, avg_pool, max_pool_backward, avg_pool_backward.

The compiled twin of the functions of the same names in ``reference_conv.py`` (the contract:
windows that tile the map, or ``stride=(sh, sw)`` in floor mode, overlapping or not; the first
maximum; int32 indices absolute in the pre-pool row).
Arguments are checked with the GIL held, then the work runs without it, parallel over the
samples (OpenMP) when the batch holds at least PAR_MIN_ELEMS pre-pool values and libgomp's idle
threads sleep (the policy of the other elementwise passes, see _common.omp_workers_sleep): the
passes are a few operations per element, so otherwise they stay on the calling thread.

In training these run only for average pooling and for sampled (binary-stochastic) layers:
``conv_forward`` pools max and average itself (the same inline code, _convpool.pxd), and the
convolution backward kernels take the max-pool indices directly.

``-ffp-contract=off``: the average and the f'(y) product round exactly like NumPy's.
"""
from cython.parallel cimport prange
from cpython.pyport cimport PY_SSIZE_T_MAX
from libc.string cimport memset
cimport numpy as cnp

from ._common cimport *
from ._convpool cimport *
from .checks import check_map_shape

cnp.import_array()

cdef enum:
    PAR_MIN_ELEMS = 1 << 16

include "_set_threads.pxi"
cdef bint _omp_sleeps = omp_workers_sleep()
cdef Py_ssize_t _par_min = PAR_MIN_ELEMS if _omp_sleeps else PY_SSIZE_T_MAX


def _set_parallel_threshold(elems):
    """Testing and tuning hook: the pre-pool element count from which the loops run on the
    OpenMP threads; returns the previous value."""
    global _par_min
    old = _par_min
    _par_min = elems
    return old


def _parallel_config():
    """(libgomp threads sleep when idle, element threshold, element threshold, threads)."""
    return bool(_omp_sleeps), _par_min, _par_min, _num_threads


cdef inline int _threads(Py_ssize_t n, Py_ssize_t elems) noexcept nogil:
    if _num_threads > 1 and n > 1 and elems >= _par_min:
        return _num_threads if _num_threads < n else <int>n
    return 1


cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef object _shape(object y, str name, object shape, object ph, object pw, object stride):
    """(K, hc, wc, ho, wo, sh, sw) after checking ``y`` (n x K*hc*wc)."""
    k, hc, wc, ho, wo, sh, sw = check_map_shape(shape, ph, pw, stride)
    if dim(y, 1) != k * hc * wc:
        raise ValueError(f"{name} has {dim(y, 1)} columns, shape {tuple(shape)} needs "
                         f"{k * hc * wc}")
    if k * hc * wc > 2147483647:
        raise ValueError("the map is too large for int32 indices")
    return k, hc, wc, ho, wo, sh, sw


# ---------------------------------------------------------------------------------------
# forward

cdef int _pool(int kind, const floating* y, Py_ssize_t n, Py_ssize_t k, Py_ssize_t hc,
               Py_ssize_t wc, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
               floating* out, int* idx) except -1:
    cdef Py_ssize_t s, m, q = hc * wc, qo = ((hc - ph) // sh + 1) * ((wc - pw) // sw + 1)
    cdef int t = _threads(n, n * k * q)
    with nogil:
        for s in prange(n, num_threads=t, schedule='static'):
            for m in range(k):
                pool_map(kind, y + (s * k + m) * q, wc, hc, wc, ph, pw, sh, sw,
                         out + (s * k + m) * qo,
                         idx + (s * k + m) * qo if idx != NULL else NULL, m * q)
    return 0


def max_pool(y, shape, ph, pw, out, idx, stride=None):
    """out = the max of each ph x pw window of each map, idx = its column in ``y`` (first max).

    ``y`` n x K*hc*wc with ``shape = (K, hc, wc)``; ``out`` and ``idx`` (int32, or None)
    n x K*ho*wo.  ``stride`` None: the windows tile the map; ``(sh, sw)``: floor mode.
    """
    cdef int kind = check_float(y, "y", 2, False)
    k, hc, wc, ho, wo, sh, sw = _shape(y, "y", shape, ph, pw, stride)
    check_operand(kind, y, "y", out, "out", True, dim(y, 0), k * ho * wo)
    check_disjoint(out, "out", y, "y")
    if idx is not None:
        check_int32(idx, "idx", dim(y, 0), k * ho * wo, True)
        check_disjoint(idx, "idx", y, "y")
        check_disjoint(idx, "idx", out, "out")
    if kind == 0:
        _pool[float](POOL_MAX, <float*>_data(y), dim(y, 0), k, hc, wc, ph, pw, sh, sw,
                     <float*>_data(out), <int*>_data(idx))
    else:
        _pool[double](POOL_MAX, <double*>_data(y), dim(y, 0), k, hc, wc, ph, pw, sh, sw,
                      <double*>_data(out), <int*>_data(idx))


def avg_pool(y, shape, ph, pw, out, stride=None):
    """out = the mean of each ph x pw window of each map (sum row-major, / (ph*pw))."""
    cdef int kind = check_float(y, "y", 2, False)
    k, hc, wc, ho, wo, sh, sw = _shape(y, "y", shape, ph, pw, stride)
    check_operand(kind, y, "y", out, "out", True, dim(y, 0), k * ho * wo)
    check_disjoint(out, "out", y, "y")
    if kind == 0:
        _pool[float](POOL_AVG, <float*>_data(y), dim(y, 0), k, hc, wc, ph, pw, sh, sw,
                     <float*>_data(out), NULL)
    else:
        _pool[double](POOL_AVG, <double*>_data(y), dim(y, 0), k, hc, wc, ph, pw, sh, sw,
                      <double*>_data(out), NULL)


# ---------------------------------------------------------------------------------------
# backward

cdef int _max_backward(const floating* g, const int* idx, Py_ssize_t n, Py_ssize_t mg,
                       Py_ssize_t m, floating* out) except -1:
    cdef Py_ssize_t s, o, bad = -1
    cdef int t = _threads(n, n * m)
    with nogil:
        for s in range(n * mg):
            if idx[s] < 0 or idx[s] >= m:
                bad = s
                break
    if bad >= 0:
        raise ValueError(f"idx holds a column outside [0, {m}) (row {bad // mg}, column "
                         f"{bad % mg}: {idx[bad]})")
    with nogil:
        for s in prange(n, num_threads=t, schedule='static'):
            memset(out + s * m, 0, m * sizeof(floating))
            for o in range(mg):
                out[s * m + idx[s * mg + o]] += g[s * mg + o]
    return 0


def max_pool_backward(g, idx, out):
    """out = ``g`` scattered (added) at the columns ``idx`` of each row, zero elsewhere."""
    cdef int kind = check_float(g, "g", 2, False)
    check_int32(idx, "idx", dim(g, 0), dim(g, 1), False)
    check_same(kind, g, "g", check_float(out, "out", 2, True), out, "out")
    check_disjoint(out, "out", idx, "idx")
    idx = private_int32(idx, "idx", dim(g, 0), dim(g, 1))
    if dim(out, 0) != dim(g, 0):
        raise ValueError(f"out has {dim(out, 0)} rows, g has {dim(g, 0)}")
    check_disjoint(out, "out", g, "g")
    if kind == 0:
        _max_backward[float](<float*>_data(g), <int*>_data(idx), dim(g, 0), dim(g, 1),
                             dim(out, 1), <float*>_data(out))
    else:
        _max_backward[double](<double*>_data(g), <int*>_data(idx), dim(g, 0), dim(g, 1),
                              dim(out, 1), <double*>_data(out))


cdef void _avg_backward_map(const floating* g, Py_ssize_t hc, Py_ssize_t wc, Py_ssize_t ph,
                            Py_ssize_t pw, floating* out) noexcept nogil:
    cdef Py_ssize_t ho = hc // ph, wo = wc // pw, io, jo, r, s
    cdef floating share, size = <floating>(ph * pw)
    cdef floating* row
    for io in range(ho):
        for r in range(ph):
            row = out + (io * ph + r) * wc
            for jo in range(wo):
                share = g[io * wo + jo] / size
                for s in range(pw):
                    row[jo * pw + s] = share


cdef void _avg_backward_strided(const floating* g, Py_ssize_t hc, Py_ssize_t wc,
                                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                                floating* out) noexcept nogil:
    """Strided windows (floor mode, maybe overlapping): each share added to its window, in
    the order of the window's taps (r, s) then of the windows, as the twin adds."""
    cdef Py_ssize_t ho = (hc - ph) // sh + 1, wo = (wc - pw) // sw + 1, io, jo, r, s
    cdef floating size = <floating>(ph * pw)
    cdef floating* row
    memset(out, 0, hc * wc * sizeof(floating))
    for r in range(ph):
        for s in range(pw):
            for io in range(ho):
                row = out + (io * sh + r) * wc + s
                for jo in range(wo):
                    row[jo * sw] += g[io * wo + jo] / size


cdef int _avg_backward(const floating* g, Py_ssize_t n, Py_ssize_t k, Py_ssize_t hc,
                       Py_ssize_t wc, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh,
                       Py_ssize_t sw, const floating* y, int act, double slope,
                       floating* out) except -1:
    cdef Py_ssize_t s, m, q = hc * wc, qo = ((hc - ph) // sh + 1) * ((wc - pw) // sw + 1)
    cdef int t = _threads(n, n * k * q)
    cdef bint tiles = sh == ph and sw == pw and hc % ph == 0 and wc % pw == 0
    with nogil:
        for s in prange(n, num_threads=t, schedule='static'):
            for m in range(k):
                if tiles:
                    _avg_backward_map(g + (s * k + m) * qo, hc, wc, ph, pw,
                                      out + (s * k + m) * q)
                else:
                    _avg_backward_strided(g + (s * k + m) * qo, hc, wc, ph, pw, sh, sw,
                                          out + (s * k + m) * q)
            if act != ACT_LINEAR:
                mul_deriv_row(out + s * k * q, y + s * k * q, k * q, act, slope)
    return 0


def avg_pool_backward(g, shape, ph, pw, y, int act, out, stride=None,
                      double slope=SYN_LEAKY_SLOPE):
    """out = (g / (ph*pw) spread over each window) * f'(y): ``g`` n x K*ho*wo, ``y`` and
    ``out`` n x K*hc*wc (``y`` the activities before pooling; ACT_LINEAR: no factor).  With
    overlapping windows (``stride``) the shares are added; elements no window covers get 0."""
    cdef int kind = check_float(g, "g", 2, False)
    k, hc, wc, ho, wo, sh, sw = check_map_shape(shape, ph, pw, stride)
    check_shape(g, "g", dim(g, 0), k * ho * wo)
    check_operand(kind, g, "g", out, "out", True, dim(g, 0), k * hc * wc)
    check_deriv_slope(act, slope)
    if act != ACT_LINEAR:
        if y is None:
            raise ValueError("y is needed unless act is ACT_LINEAR")
        check_operand(kind, g, "g", y, "y", False, dim(g, 0), k * hc * wc)
        check_disjoint(out, "out", y, "y")
    else:
        y = None
    check_disjoint(out, "out", g, "g")
    if k * hc * wc > 2147483647:
        raise ValueError("the map is too large for int32 indices")
    if kind == 0:
        _avg_backward[float](<float*>_data(g), dim(g, 0), k, hc, wc, ph, pw, sh, sw,
                             <float*>_data(y), act, slope, <float*>_data(out))
    else:
        _avg_backward[double](<double*>_data(g), dim(g, 0), k, hc, wc, ph, pw, sh, sw,
                              <double*>_data(y), act, slope, <double*>_data(out))
