# ---------------------------------------------------------------------------------------
# Small batches (included by dense.pyx): dense_forward, hidden_delta and weight_grad of at
# most _small_rows rows run the register-blocked loops of c/small.h instead of a GEMM.
#
# Why: a GEMM of a few rows spends its time packing, and the GEMM path's split by rows makes
# each thread read all of W (3072 -> 512 at 16 rows: 1.3 ms against NumPy's 0.8 ms).  Here
# the output is split between the threads by units (forward, weight_grad) or columns
# (hidden_delta), so W is read once, and every element is one sum in a fixed order
# (c/small.h): 1 and 2 threads give the same bits.  The parts run in parallel from
# SMALL_PAR_MACS multiply-adds, like the GEMM splits whatever libgomp's idle threads do (and
# from any size when the tests lower the GEMM threshold).  The bias column of weight_grad
# keeps its double sums.  One row keeps its GEMV (hidden_delta) and outer product
# (weight_grad): streaming W or the gradient row by row is what they are bound by.

cdef extern from "small.h":
    enum:
        SYN_SM_DOT_UNITS
        SYN_SM_AXPY_ROWS
    void syn_small_dot_f(const float* x, Py_ssize_t ldx, const float* w, Py_ssize_t ldw,
                         float* out, Py_ssize_t ldo, Py_ssize_t n, Py_ssize_t o,
                         Py_ssize_t d) noexcept nogil
    void syn_small_dot_d(const double* x, Py_ssize_t ldx, const double* w, Py_ssize_t ldw,
                         double* out, Py_ssize_t ldo, Py_ssize_t n, Py_ssize_t o,
                         Py_ssize_t d) noexcept nogil
    void syn_small_axpy_f(const float* a, Py_ssize_t ars, Py_ssize_t ais, const float* b,
                          Py_ssize_t ldb, float* out, Py_ssize_t ldo, Py_ssize_t rows,
                          Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1, int add) noexcept nogil
    void syn_small_axpy_d(const double* a, Py_ssize_t ars, Py_ssize_t ais, const double* b,
                          Py_ssize_t ldb, double* out, Py_ssize_t ldo, Py_ssize_t rows,
                          Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1, int add) noexcept nogil

cdef enum:
    SMALL_ROWS = 32
    SMALL_PAR_MACS = 1 << 15

cdef Py_ssize_t _small_rows = SMALL_ROWS


def _set_small_rows(rows):
    """Testing and tuning hook: the most rows the small-batch loops take (0: never); returns
    the old value."""
    global _small_rows
    old = _small_rows
    _small_rows = max(0, int(rows))
    return old


cdef inline Py_ssize_t _small_parts(Py_ssize_t macs, Py_ssize_t extent,
                                    Py_ssize_t grain) noexcept nogil:
    """The parts (one per thread) of an output of ``extent`` units or columns, each a
    multiple of ``grain``."""
    cdef Py_ssize_t most = (extent + grain - 1) // grain
    cdef Py_ssize_t least = _gemm_min_macs if _gemm_min_macs < SMALL_PAR_MACS else SMALL_PAR_MACS
    if _num_threads <= 1 or macs < least:
        return 1
    return _num_threads if _num_threads < most else most


cdef inline Py_ssize_t _small_chunk(Py_ssize_t extent, Py_ssize_t parts,
                                    Py_ssize_t grain) noexcept nogil:
    cdef Py_ssize_t chunk = (extent + parts - 1) // parts
    return (chunk + grain - 1) // grain * grain


cdef inline void _small_dot(const floating* x, Py_ssize_t ldx, const floating* w,
                            Py_ssize_t ldw, floating* out, Py_ssize_t ldo, Py_ssize_t n,
                            Py_ssize_t o, Py_ssize_t d) noexcept nogil:
    if floating is float:
        syn_small_dot_f(x, ldx, w, ldw, out, ldo, n, o, d)
    else:
        syn_small_dot_d(x, ldx, w, ldw, out, ldo, n, o, d)


cdef inline void _small_axpy(const floating* a, Py_ssize_t ars, Py_ssize_t ais,
                             const floating* b, Py_ssize_t ldb, floating* out, Py_ssize_t ldo,
                             Py_ssize_t rows, Py_ssize_t m, Py_ssize_t c0,
                             Py_ssize_t c1, int add=0) noexcept nogil:
    if floating is float:
        syn_small_axpy_f(a, ars, ais, b, ldb, out, ldo, rows, m, c0, c1, add)
    else:
        syn_small_axpy_d(a, ars, ais, b, ldb, out, ldo, rows, m, c0, c1, add)


cdef void _small_forward(const floating* xp, const floating* wp, const floating* bias,
                         floating* op, Py_ssize_t n, Py_ssize_t d, Py_ssize_t o,
                         Py_ssize_t ldw, int act, double slope) noexcept nogil:
    """out = f(x . W[:, 1:]^T + bias), the units in parts (n x d x, o x ldw W)."""
    cdef Py_ssize_t nt = _small_parts(n * o * d, o, SYN_SM_DOT_UNITS), t, j0, j1, b
    cdef Py_ssize_t chunk = _small_chunk(o, nt, SYN_SM_DOT_UNITS), rb = block_rows(o)
    if nt > 1:
        for t in prange(nt, schedule='static', num_threads=nt):
            j0 = t * chunk
            j1 = min(o, j0 + chunk)
            if j1 > j0:
                _small_dot(xp, d, wp + j0 * ldw + 1, ldw, op + j0, o, n, j1 - j0, d)
    else:
        _small_dot(xp, d, wp + 1, ldw, op, o, n, o, d)
    b = 0
    while b < n:
        _bias_act_rows(op, bias, b, min(n, b + rb), o, act, slope)
        b += rb


cdef void _small_hidden(const floating* dzp, const floating* wp, const floating* yp,
                        floating* op, Py_ssize_t n, Py_ssize_t o, Py_ssize_t h,
                        Py_ssize_t ldw, int act, double slope) noexcept nogil:
    """out = (dz . W[:, 1:]) * f'(y), the columns in parts of whole vectors."""
    cdef Py_ssize_t grain = SYN_SP_VLF if floating is float else SYN_SP_VLD
    cdef Py_ssize_t nt = _small_parts(n * o * h, h, grain), t, c0, c1, i
    cdef Py_ssize_t chunk = _small_chunk(h, nt, grain)
    if nt > 1:
        for t in prange(nt, schedule='static', num_threads=nt):
            c0 = t * chunk
            c1 = min(h, c0 + chunk)
            if c1 > c0:
                _small_axpy(dzp, o, 1, wp + 1, ldw, op, h, n, o, c0, c1)
                for i in range(n):
                    mul_deriv_row(op + i * h + c0, yp + i * h + c0, c1 - c0, act, slope)
    else:
        _small_axpy(dzp, o, 1, wp + 1, ldw, op, h, n, o, 0, h)
        mul_deriv_row(op, yp, n * h, act, slope)


cdef void _small_grad(const floating* dzp, const floating* xp, floating* op, Py_ssize_t n,
                      Py_ssize_t o, Py_ssize_t d, Py_ssize_t ldo) noexcept nogil:
    """out[:, 1:] = dz^T . x, the units (rows of out) in parts."""
    cdef Py_ssize_t nt = _small_parts(n * o * d, o, SYN_SM_AXPY_ROWS), t, j0, j1
    cdef Py_ssize_t chunk = _small_chunk(o, nt, SYN_SM_AXPY_ROWS)
    if nt > 1:
        for t in prange(nt, schedule='static', num_threads=nt):
            j0 = t * chunk
            j1 = min(o, j0 + chunk)
            if j1 > j0:
                _small_axpy(dzp + j0, 1, o, xp, d, op + j0 * ldo + 1, ldo, j1 - j0, n, 0, d)
    else:
        _small_axpy(dzp, 1, o, xp, d, op + 1, ldo, o, n, 0, d)
