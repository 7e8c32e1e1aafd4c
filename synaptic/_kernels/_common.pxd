# Shared declarations of the compiled kernels (dense.pyx, loss.pyx, update.pyx).
#
# Everything here is ``cdef inline``: each module gets its own copy, no extra module is built.
# The activation codes come from c/acts.h (the Python table, acts.py, has the same numbers);
# the other codes below have the integer values of reference.py (ERR_*, DELTA_*, REG_*).
from cython cimport floating
from libc.math cimport fabs, fabsf, log1p, log1pf, isfinite
from libc.string cimport memset
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv
cimport numpy as cnp

cdef extern from "acts.h":
    enum:
        ACT_LINEAR
        ACT_SIGMOID
        ACT_TANH
        ACT_SOFTMAX
        ACT_RELU
        ACT_BINARY_THRESHOLD
        ACT_BIPOLAR_THRESHOLD
        ACT_BINARY_PROB
        ACT_LEAKY_RELU
        ACT_ELU
        ACT_SOFTPLUS
        N_ACT
    double SYN_LEAKY_SLOPE

cdef enum:
    ERR_MISCLASSIFICATION = 0
    ERR_ARGMAX_MISCLASSIFICATION = 1
    ERR_SUM_OF_SQUARES = 2
    ERR_CROSS_ENTROPY_BINARY = 3
    ERR_CROSS_ENTROPY_MULTIVARIATE = 4
    N_ERR = 5

    DELTA_DIFF = 0
    DELTA_SSE = 1

    REG_NONE = 0
    REG_L1 = 1
    REG_L2 = 2

# An elementwise pass runs under OpenMP only when it touches at least this many elements
# (and only when libgomp's idle threads sleep, see omp_workers_sleep): waking a sleeping
# thread team costs tens of microseconds.  "Heavy" passes evaluate exp/tanh/log per element
# (~1-10 ns); the light ones are a few vectorized flops (well under 1 ns per element).
cdef enum:
    PAR_MIN_LIGHT = 1 << 20
    PAR_MIN_HEAVY = 1 << 17
    # Deterministic reductions split the rows into at most MAX_CHUNKS chunks whose size depends
    # only on the shape (never on the thread count), combined in chunk order.
    MAX_CHUNKS = 32
    CHUNK_MIN_ELEMS = 8192
    # Elementwise passes walk the rows in blocks of about this many elements (L1/L2-sized):
    # the unit of work of the OpenMP loops, and of the serial loop so that a bias add and
    # the activation that follows find the block still in cache.
    BLOCK_ELEMS = 8192


# ---------------------------------------------------------------------------------------
# exp and tanh without branches, so that the loops calling them vectorize (c/expf.h: the
# method and its accuracy; never build it with -ffast-math).
cdef extern from "expf.h":
    float syn_expf(float x) noexcept nogil
    double syn_exp(double x) noexcept nogil
    float syn_expm1f(float x) noexcept nogil
    double syn_expm1(double x) noexcept nogil
    float syn_tanhf(float x) noexcept nogil
    double syn_tanh(double x) noexcept nogil


# ---------------------------------------------------------------------------------------
# Math on the fused type: the float variants for float32, double otherwise.

cdef inline floating f_exp(floating x) noexcept nogil:
    """e^x for x <= 0 (see syn_exp)."""
    if floating is float:
        return syn_expf(x)
    else:
        return syn_exp(x)


cdef inline floating f_expm1(floating x) noexcept nogil:
    """e^x - 1 for x <= 0, accurate near 0 (see syn_expm1)."""
    if floating is float:
        return syn_expm1f(x)
    else:
        return syn_expm1(x)


cdef inline floating f_log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating f_abs(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef inline floating f_tanh(floating x) noexcept nogil:
    if floating is float:
        return syn_tanhf(x)
    else:
        return syn_tanh(x)


cdef inline floating f_sigmoid(floating z) noexcept nogil:
    """1/(1+e^-z) without overflow, branch-free: with e = e^-|z|, 1/(1+e) for z >= 0 and
    e/(1+e) for z < 0.  Exactly 0 and 1 far out, 1/2 at 0; NaN stays NaN."""
    # typed constants: a bare 1 would be the C double 1.0 and promote float32 math
    cdef floating one = 1
    cdef floating e = f_exp(-f_abs(z))
    cdef floating r = one / (one + e)
    cdef floating er = e * r            # computed before the select, so the loop if-converts
    return r if z >= 0 else er


cdef inline floating row_max(const floating* z, Py_ssize_t m) noexcept nogil:
    """max of z[0:m] (m >= 1; NaNs skipped unless z[0] is NaN), 8 lanes at a time."""
    cdef floating acc[8]
    cdef floating v, mx
    cdef Py_ssize_t j, k, m8 = m - m % 8
    mx = z[0]
    if m8 > 0:
        for k in range(8):
            acc[k] = z[k]
        for j in range(8, m8, 8):
            for k in range(8):
                v = z[j + k]
                acc[k] = v if v > acc[k] else acc[k]
        for k in range(8):
            mx = acc[k] if acc[k] > mx else mx
    for j in range(m8, m):
        mx = z[j] if z[j] > mx else mx
    return mx


cdef inline double row_sum(const floating* v, Py_ssize_t m) noexcept nogil:
    """sum of v[0:m] in double, 4 running sums (fixed order: deterministic)."""
    cdef double a0 = 0, a1 = 0, a2 = 0, a3 = 0
    cdef Py_ssize_t j, m4 = m - m % 4
    for j in range(0, m4, 4):
        a0 += v[j]
        a1 += v[j + 1]
        a2 += v[j + 2]
        a3 += v[j + 3]
    for j in range(m4, m):
        a0 += v[j]
    return (a0 + a1) + (a2 + a3)


cdef inline void act_row(const floating* z, floating* out, Py_ssize_t m, int act,
                         double slope) noexcept nogil:
    """out[0:m] = f(z[0:m]) for one row; ``out`` may be ``z``.  ``slope``: leaky-relu's."""
    cdef Py_ssize_t j
    cdef floating v, mx, e, s_ = <floating>slope
    cdef double s
    if act == ACT_LINEAR:
        if out != z:
            for j in range(m):
                out[j] = z[j]
    elif act == ACT_SIGMOID:
        for j in range(m):
            out[j] = f_sigmoid(z[j])
    elif act == ACT_TANH:
        for j in range(m):
            out[j] = f_tanh(z[j])
    elif act == ACT_SOFTMAX:
        if m == 0:
            return
        # A NaN anywhere makes the whole row NaN (through the sum), as in the twin, so the
        # max may skip NaNs.
        mx = row_max(z, m)
        for j in range(m):                 # vectorized; the sum is a separate loop
            out[j] = f_exp(z[j] - mx)
        v = <floating>row_sum(out, m)
        for j in range(m):
            out[j] = out[j] / v
    elif act == ACT_RELU:
        for j in range(m):
            v = z[j]
            out[j] = v if (v >= 0 or v != v) else 0   # np.maximum(z, 0): NaN propagates
    elif act == ACT_LEAKY_RELU:
        for j in range(m):
            v = z[j]
            out[j] = v if v > 0 else v * s_          # NaN * slope: NaN
    elif act == ACT_ELU:
        for j in range(m):
            v = z[j]
            e = f_expm1(0 if v > 0 else v)           # np.expm1(np.minimum(z, 0)): NaN stays
            out[j] = v if v > 0 else e
    elif act == ACT_SOFTPLUS:
        for j in range(m):                           # max(z, 0) + log1p(e^-|z|)
            v = z[j]
            e = f_log1p(f_exp(-f_abs(v)))
            out[j] = (v if (v >= 0 or v != v) else 0) + e
    elif act == ACT_BINARY_THRESHOLD:
        for j in range(m):
            out[j] = 1 if z[j] >= 0 else 0
    elif act == ACT_BIPOLAR_THRESHOLD:
        for j in range(m):
            out[j] = 1 if z[j] >= 0 else -1
    else:  # ACT_BINARY_PROB
        for j in range(m):
            out[j] = 1 if f_sigmoid(z[j]) >= <floating>0.5 else 0


cdef inline void act_rows(const floating* z, floating* out, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t m, int act, double slope) noexcept nogil:
    """f over rows r0..r1-1 of an n x m array: one flat loop, softmax row by row."""
    cdef Py_ssize_t i
    if act == ACT_SOFTMAX:
        for i in range(r0, r1):
            act_row(z + i * m, out + i * m, m, act, slope)
    else:
        act_row(z + r0 * m, out + r0 * m, (r1 - r0) * m, act, slope)


cdef inline Py_ssize_t block_rows(Py_ssize_t m) noexcept nogil:
    """Rows per block of an elementwise pass over rows of m elements."""
    return BLOCK_ELEMS // m if m > 0 and m < BLOCK_ELEMS else 1


cdef inline bint act_is_heavy(int act) noexcept nogil:
    """exp-based passes: a few ns per element; the others are a fraction of one."""
    return (act == ACT_TANH or act == ACT_SIGMOID or act == ACT_SOFTMAX or act == ACT_BINARY_PROB
            or act == ACT_ELU or act == ACT_SOFTPLUS)


cdef inline void deriv_row(const floating* y, floating* out, Py_ssize_t m,
                           int act, double slope) noexcept nogil:
    """out = f'(y) through the output y, rounded like reference.derivative."""
    cdef Py_ssize_t j
    cdef floating v, one = 1, s_ = <floating>slope
    if act == ACT_SIGMOID or act == ACT_SOFTMAX:
        for j in range(m):
            v = y[j]
            out[j] = v * (one - v)
    elif act == ACT_TANH:
        for j in range(m):
            v = y[j]
            out[j] = one - v * v
    elif act == ACT_RELU:
        for j in range(m):
            out[j] = 1 if y[j] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        for j in range(m):
            out[j] = one if y[j] > 0 else s_
    elif act == ACT_ELU:
        for j in range(m):
            v = y[j]
            out[j] = one if v > 0 else v + one
    elif act == ACT_SOFTPLUS:
        for j in range(m):
            out[j] = -f_expm1(-y[j])
    else:
        for j in range(m):
            out[j] = 1


cdef inline void mul_deriv_row(floating* r, const floating* y, Py_ssize_t m,
                               int act, double slope) noexcept nogil:
    """r *= f'(y), rounded like the twin: r * (y * (1 - y)) etc."""
    cdef Py_ssize_t j
    cdef floating v, one = 1, s_ = <floating>slope
    if act == ACT_SIGMOID or act == ACT_SOFTMAX:
        for j in range(m):
            v = y[j]
            r[j] = r[j] * (v * (one - v))
    elif act == ACT_TANH:
        for j in range(m):
            v = y[j]
            r[j] = r[j] * (one - v * v)
    elif act == ACT_RELU:
        for j in range(m):
            r[j] = r[j] * (1 if y[j] > 0 else 0)
    elif act == ACT_LEAKY_RELU:
        for j in range(m):
            r[j] = r[j] * (one if y[j] > 0 else s_)
    elif act == ACT_ELU:
        for j in range(m):
            v = y[j]
            r[j] = r[j] * (one if v > 0 else v + one)
    elif act == ACT_SOFTPLUS:
        for j in range(m):
            r[j] = r[j] * (-f_expm1(-y[j]))
    # ACT_LINEAR: f' = 1, r is unchanged


# ---------------------------------------------------------------------------------------
# BLAS on the fused type (column-major, as Fortran BLAS sees our row-major arrays).

# The sizes are 64-bit: a product whose m, n or k exceeds BLAS's 32-bit int is done in pieces
# of at most BLAS_CHUNK (the pieces of k added with beta = 1).  Leading dimensions are row
# lengths, which check_float holds to INT_MAX.

cdef enum:
    BLAS_CHUNK = 1 << 30
    # a row length (a BLAS leading dimension, 1 + d included) must fit an int
    BLAS_MAX_ROW = 2147483647


cdef inline void _gemm32(char ta, char tb, int m, int n, int k, const floating* a, int lda,
                         const floating* b, int ldb, floating beta, floating* c,
                         int ldc) noexcept nogil:
    cdef floating alpha = 1
    if floating is float:
        sgemm(&ta, &tb, &m, &n, &k, &alpha, <float*>a, &lda, <float*>b, &ldb, &beta, c, &ldc)
    else:
        dgemm(&ta, &tb, &m, &n, &k, &alpha, <double*>a, &lda, <double*>b, &ldb, &beta, c, &ldc)


cdef inline void gemm(char ta, char tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                      const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                      floating* c, Py_ssize_t ldc) noexcept nogil:
    """c = op(a) . op(b) (alpha 1, beta 0); every dimension must be > 0."""
    if m <= BLAS_CHUNK and n <= BLAS_CHUNK and k <= BLAS_CHUNK:
        _gemm32(ta, tb, <int>m, <int>n, <int>k, a, <int>lda, b, <int>ldb, 0, c, <int>ldc)
    else:
        gemm_pieces(ta, tb, m, n, k, a, lda, b, ldb, c, ldc, BLAS_CHUNK)


cdef inline void gemm_pieces(char ta, char tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                             const floating* a, Py_ssize_t lda, const floating* b,
                             Py_ssize_t ldb, floating* c, Py_ssize_t ldc,
                             Py_ssize_t chunk) noexcept nogil:
    """gemm in pieces of at most ``chunk`` in m, n and k (tested with small chunks)."""
    cdef Py_ssize_t i = 0, j, p, mi, nj, kp
    while i < m:
        mi = m - i if m - i < chunk else chunk
        j = 0
        while j < n:
            nj = n - j if n - j < chunk else chunk
            p = 0
            while p < k:
                kp = k - p if k - p < chunk else chunk
                _gemm32(ta, tb, <int>mi, <int>nj, <int>kp,
                        a + (i + p * lda if ta == c'N' else i * lda + p), <int>lda,
                        b + (p + j * ldb if tb == c'N' else p * ldb + j), <int>ldb,
                        0 if p == 0 else 1, c + i + j * ldc, <int>ldc)
                p += kp
            j += nj
        i += mi


cdef inline void gemv(char ta, Py_ssize_t m, Py_ssize_t n, const floating* a, Py_ssize_t lda,
                      const floating* x, floating* y) noexcept nogil:
    """y = op(a) . x with unit strides; y is zeroed first (beta = 0 must not see stale NaN)."""
    gemv_pieces(ta, m, n, a, lda, x, y, BLAS_CHUNK)


cdef inline void gemv_pieces(char ta, Py_ssize_t m, Py_ssize_t n, const floating* a,
                             Py_ssize_t lda, const floating* x, floating* y,
                             Py_ssize_t chunk) noexcept nogil:
    """gemv in pieces of at most ``chunk`` in m and n (the pieces of the sum with beta 1)."""
    cdef floating alpha = 1
    cdef floating beta
    cdef int inc = 1, mi, nj, ld = <int>lda
    cdef Py_ssize_t i = 0, j
    memset(y, 0, (n if ta == c'T' else m) * sizeof(floating))
    while i < m:
        mi = <int>(m - i if m - i < chunk else chunk)
        j = 0
        while j < n:
            nj = <int>(n - j if n - j < chunk else chunk)
            beta = 0 if (i if ta == c'T' else j) == 0 else 1   # the first piece of the sum
            if floating is float:
                sgemv(&ta, &mi, &nj, &alpha, <float*>a + i + j * lda, &ld,
                      <float*>x + (i if ta == c'T' else j), &inc, &beta,
                      y + (j if ta == c'T' else i), &inc)
            else:
                dgemv(&ta, &mi, &nj, &alpha, <double*>a + i + j * lda, &ld,
                      <double*>x + (i if ta == c'T' else j), &inc, &beta,
                      y + (j if ta == c'T' else i), &inc)
            j += nj
        i += mi


# ---------------------------------------------------------------------------------------
# Argument checks (with the GIL, before any nogil work).

cdef inline int check_float(object a, str name, int ndim, bint writable) except -1:
    """0 for a float32 array, 1 for float64; raise for anything else.

    ``a`` must be a C-contiguous numpy array of ``ndim`` dimensions in native byte order.
    """
    cdef cnp.ndarray arr
    cdef int t
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name} must be a numpy array, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    t = cnp.PyArray_TYPE(arr)
    if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name} has dtype {a.dtype}, expected float32 or float64")
    if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name} must be C-contiguous, got strides {a.strides} "
                         f"for shape {a.shape}")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name} is read-only")
    if ndim > 1 and cnp.PyArray_DIM(arr, ndim - 1) >= BLAS_MAX_ROW:
        raise ValueError(f"{name} has rows of {cnp.PyArray_DIM(arr, ndim - 1)} values; the "
                         f"kernels' BLAS takes rows of at most {BLAS_MAX_ROW - 1}")
    return 0 if t == cnp.NPY_FLOAT32 else 1


cdef inline int check_same(int k, object a, str name_a, int k2, object b, str name_b) except -1:
    if k != k2:
        raise TypeError(f"{name_b} has dtype {b.dtype} but {name_a} has dtype {a.dtype}: "
                        f"all arrays must share one dtype (float32 or float64)")
    return 0


cdef inline int check_act(int act) except -1:
    if not 0 <= act < N_ACT:
        raise ValueError(f"unknown activation code {act}")
    return 0


cdef inline int check_deriv(int act) except -1:
    check_act(act)
    if (act == ACT_BINARY_THRESHOLD or act == ACT_BIPOLAR_THRESHOLD
            or act == ACT_BINARY_PROB):
        raise ValueError(f"activation code {act} has no derivative")
    return 0


cdef inline int check_slope(double slope) except -1:
    """leaky-relu's slope: finite, in [0, 1) (as acts.check_slope)."""
    if not (isfinite(slope) and 0 <= slope < 1):
        raise ValueError(f"the leaky-relu slope must be a finite number in [0, 1), got {slope!r}")
    return 0


cdef inline int check_deriv_slope(int act, double slope) except -1:
    """A backward pass's activation (check_deriv) and leaky-relu slope (check_slope)."""
    check_deriv(act)
    check_slope(slope)
    return 0


cdef inline Py_ssize_t dim(object a, int i) noexcept:
    return cnp.PyArray_DIM(<cnp.ndarray>a, i)


cdef inline int check_shape(object a, str name, Py_ssize_t n0, Py_ssize_t n1) except -1:
    """``a`` (already checked 2-D) must be n0 x n1."""
    if dim(a, 0) != n0 or dim(a, 1) != n1:
        raise ValueError(f"{name} has shape {a.shape}, expected {(n0, n1)}")
    return 0


cdef inline int check_operand(int k, object ref, str name_ref, object a, str name,
                              bint writable, Py_ssize_t n0, Py_ssize_t n1) except -1:
    """``a``: a C-contiguous 2-D array of ``ref``'s dtype (code ``k``), n0 x n1."""
    check_same(k, ref, name_ref, check_float(a, name, 2, writable), a, name)
    check_shape(a, name, n0, n1)
    return 0


cdef inline bint overlaps(object a, object b) noexcept:
    """True if the data of the two arrays share at least one byte."""
    cdef char* pa = <char*>cnp.PyArray_DATA(<cnp.ndarray>a)
    cdef char* pb = <char*>cnp.PyArray_DATA(<cnp.ndarray>b)
    cdef Py_ssize_t na = cnp.PyArray_NBYTES(<cnp.ndarray>a)
    cdef Py_ssize_t nb = cnp.PyArray_NBYTES(<cnp.ndarray>b)
    return na > 0 and nb > 0 and pa < pb + nb and pb < pa + na


cdef inline int check_disjoint(object out, str name_out, object a, str name_a) except -1:
    """``out`` is written while ``a`` is still read: they must not share memory."""
    if overlaps(out, a):
        raise ValueError(f"{name_out} must not share memory with {name_a}")
    return 0


cdef inline int check_same_or_disjoint(object out, str name_out, object a, str name_a) except -1:
    """Elementwise kernels: ``out`` may be ``a`` itself, but not a shifted view of it."""
    if overlaps(out, a) and cnp.PyArray_DATA(<cnp.ndarray>out) != cnp.PyArray_DATA(<cnp.ndarray>a):
        raise ValueError(f"{name_out} partially overlaps {name_a}: pass the same array "
                         f"or a separate one")
    return 0


# weight_grad's bias column (dense.pyx, csr.pyx) and the fused kernels' (dense_*.pxi)
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


cdef inline Py_ssize_t chunk_rows(Py_ssize_t n, Py_ssize_t cols) noexcept nogil:
    """Rows per chunk of a deterministic reduction: a function of the shape only."""
    cdef Py_ssize_t min_rows = CHUNK_MIN_ELEMS // (cols if cols > 0 else 1)
    cdef Py_ssize_t rows = (n + MAX_CHUNKS - 1) // MAX_CHUNKS
    if min_rows < 1:
        min_rows = 1
    return rows if rows > min_rows else min_rows


cdef inline bint omp_workers_sleep() noexcept:
    """True when libgomp's idle threads go to sleep at once: OMP_WAIT_POLICY=passive, or
    GOMP_SPINCOUNT <= 1000, in the environment (libgomp reads it when it is loaded).

    By default they spin for GOMP_SPINCOUNT = 300000 pauses (several ms) after every
    parallel loop, on the very cores the multi-threaded BLAS call that follows (the next
    GEMM) needs: measured here, a 100 x 784 x 100 layer went from 0.2 ms to 9 ms.  So the
    kernels use their OpenMP loops only when the threads sleep; otherwise the (vectorized)
    elementwise passes run on the calling thread and the BLAS threads keep the cores.
    """
    import os
    try:
        if os.environ.get("OMP_WAIT_POLICY", "").strip().lower() == "passive":
            return True
        return int(os.environ.get("GOMP_SPINCOUNT", "").strip()) <= 1000
    except Exception:
        return False
