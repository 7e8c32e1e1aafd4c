# Shared declarations of the convolution and pooling kernels (conv.pyx, pool.pyx): the pooling
# of one map, and the checks of their arguments.  Everything is ``cdef inline``; the codes
# have the values of checks.py (POOL_*, re-exported by reference_conv.py).
from cython cimport floating
from libc.math cimport INFINITY
cimport numpy as cnp

cdef enum:
    POOL_NONE = 0
    POOL_MAX = 1
    POOL_AVG = 2
    # conv_work_size: WG_CHUNKS fixed chunks of a batch, rows padded to PAD elements
    WG_CHUNKS = 8
    PAD = 16


cdef inline Py_ssize_t round_up(Py_ssize_t v) noexcept nogil:
    return (v + PAD - 1) // PAD * PAD


# 2x2 windows with AVX-512 (c/pool2x2.h; SYN_POOL2_SIMD 0 below that level)
cdef extern from "pool2x2.h":
    int SYN_POOL2_SIMD
    void syn_pool2_f(int avg, const float* y, long ld, long ho, long wo, long wc, float* out,
                     int* idx, int base) noexcept nogil
    void syn_pool2_d(int avg, const double* y, long ld, long ho, long wo, long wc, double* out,
                     int* idx, int base) noexcept nogil


cdef inline void max_pool_map(const floating* y, Py_ssize_t ld, Py_ssize_t hc, Py_ssize_t wc,
                              Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                              floating* out, int* idx, Py_ssize_t base) noexcept nogil:
    """Max over the ph x pw windows (strides sh, sw; floor mode) of one hc x wc map ``y``
    (rows ``ld`` apart): the first maximum of the row-major scan (strict > from -inf, NaN
    never chosen); ``idx`` (or NULL) gets base + its offset in the map (rows wc apart)."""
    cdef Py_ssize_t ho = (hc - ph) // sh + 1, wo = (wc - pw) // sw + 1, io, jo, r, s, o, br, bs
    cdef floating best, v
    cdef const floating* win
    for io in range(ho):
        for jo in range(wo):
            win = y + io * sh * ld + jo * sw
            br = 0
            bs = 0
            best = -INFINITY
            for r in range(ph):
                for s in range(pw):
                    v = win[r * ld + s]
                    if v > best:
                        best = v
                        br = r
                        bs = s
            o = io * wo + jo
            out[o] = win[br * ld + bs]
            if idx != NULL:
                idx[o] = <int>(base + (io * sh + br) * wc + jo * sw + bs)


cdef inline void avg_pool_map(const floating* y, Py_ssize_t ld, Py_ssize_t hc, Py_ssize_t wc,
                              Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh, Py_ssize_t sw,
                              floating* out) noexcept nogil:
    """Mean over the ph x pw windows: the window sum in row-major order / (ph*pw)."""
    cdef Py_ssize_t ho = (hc - ph) // sh + 1, wo = (wc - pw) // sw + 1, io, jo, r, s
    cdef floating total, size = <floating>(ph * pw)
    cdef const floating* win
    for io in range(ho):
        for jo in range(wo):
            win = y + io * sh * ld + jo * sw
            total = win[0]
            for s in range(1, pw):
                total = total + win[s]
            for r in range(1, ph):
                for s in range(pw):
                    total = total + win[r * ld + s]
            out[io * wo + jo] = total / size


cdef inline void pool_map(int kind, const floating* y, Py_ssize_t ld, Py_ssize_t hc,
                          Py_ssize_t wc, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t sh,
                          Py_ssize_t sw, floating* out, int* idx, Py_ssize_t base) noexcept nogil:
    """Pool one map (POOL_MAX or POOL_AVG) of rows ``ld`` apart, windows sh x sw apart
    (floor mode); 2x2 windows with stride 2 use SIMD."""
    if ph == 2 and pw == 2 and sh == 2 and sw == 2 and SYN_POOL2_SIMD:
        if floating is float:
            syn_pool2_f(kind == POOL_AVG, y, ld, hc // 2, wc // 2, wc, out, idx, <int>base)
        else:
            syn_pool2_d(kind == POOL_AVG, y, ld, hc // 2, wc // 2, wc, out, idx, <int>base)
    elif kind == POOL_AVG:
        avg_pool_map(y, ld, hc, wc, ph, pw, sh, sw, out)
    else:
        max_pool_map(y, ld, hc, wc, ph, pw, sh, sw, out, idx, base)


cdef inline int check_int32(object a, str name, Py_ssize_t n0, Py_ssize_t n1,
                            bint writable) except -1:
    """``a`` must be a C-contiguous 2-D int32 array of shape (n0, n1)."""
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != cnp.NPY_INT32 or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name} has dtype {a.dtype}, expected int32")
    if cnp.PyArray_NDIM(arr) != 2 or cnp.PyArray_DIM(arr, 0) != n0 or cnp.PyArray_DIM(arr, 1) != n1:
        raise ValueError(f"{name} has shape {a.shape}, expected {(n0, n1)}")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name} must be C-contiguous")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    return 0


cdef inline cnp.ndarray private_int32(object a, str name, Py_ssize_t n0, Py_ssize_t n1):
    """A private copy of the index array ``a`` (checked as by check_int32): the kernel
    validates and uses the copy, which no other thread can change in between."""
    check_int32(a, name, n0, n1, False)
    return cnp.PyArray_NewCopy(<cnp.ndarray>a, cnp.NPY_CORDER)
