# dropout: inverted dropout with a counter-based mask (included by loss.pyx).

import numpy as np

from libc.stdint cimport uint64_t

cdef enum:
    _DROP_BLOCK = 4096


cdef inline uint64_t _splitmix64(uint64_t z) noexcept nogil:
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline void _dropout_span(const floating* x, floating* out, Py_ssize_t i0, Py_ssize_t i1,
                               uint64_t key, uint64_t threshold, floating scale) noexcept nogil:
    cdef Py_ssize_t i
    cdef uint64_t h
    cdef floating zero = 0
    for i in range(i0, i1):
        h = _splitmix64(key + <uint64_t>(i + 1) * <uint64_t>0x9E3779B97F4A7C15ULL)
        out[i] = x[i] * scale if (h >> 11) >= threshold else zero


cdef int _dropout(const floating[:, ::1] x, floating[:, ::1] out, uint64_t key,
                  uint64_t threshold, double scale) except -1:
    cdef Py_ssize_t n = x.shape[0] * x.shape[1], b, nb = (n + _DROP_BLOCK - 1) // _DROP_BLOCK
    if n == 0:
        return 0
    cdef const floating* xp = &x[0, 0]
    cdef floating* op = &out[0, 0]
    cdef floating s = <floating>scale
    with nogil:
        if nb > 1 and _parallel(n, False):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _dropout_span(xp, op, b * _DROP_BLOCK, min(n, b * _DROP_BLOCK + _DROP_BLOCK),
                              key, threshold, s)
        else:
            _dropout_span(xp, op, 0, n, key, threshold, s)
    return 0


def dropout(x, out, p, key):
    """out = x * keep / (1 - p): inverted dropout with the mask of ``key`` (checks.dropout_key).

    Element i of the row-major array is kept where the 53-bit draw ``SplitMix64(key + (i + 1)
    * GAMMA) >> 11`` is at least ``p * 2^53`` (probability 1 - p); the dropped ones are 0.
    ``out`` may be ``x``.  Applied to a delta with the same key it is the mask's backward pass.
    """
    cdef int k = check_float(x, "x", 2, False)
    check_operand(k, x, "x", out, "out", True, dim(x, 0), dim(x, 1))
    check_same_or_disjoint(out, "out", x, "x")
    threshold, scale, ukey = check_dropout(p, key)
    if threshold == 0:
        if out is not x:
            np.copyto(out, x)
        return
    if k == 0:
        _dropout[float](x, out, ukey, threshold, scale)
    else:
        _dropout[double](x, out, ukey, threshold, scale)
