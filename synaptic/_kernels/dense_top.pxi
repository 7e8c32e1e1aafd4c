# output_backprop (included by dense.pyx): the output layer of a dense net, forward and
# backward, over all the rows at once, in one parallel region.
#
# The same operations as the twin's sequence (dense_forward, error_sum, output_delta,
# weight_grad, hidden_delta), done row chunk by row chunk while the chunk is in cache: the
# GEMM of the chunk, bias + activation, the chunk's error (in double), its delta, its share of
# the weight gradient (a GEMM into the chunk's own partial, and the bias column's sums in
# double), and the delta of the layer below.  The chunks are chunk_rows(n, o) rows, as
# error_sum's and weight_grad's bias column: those come out with the same bits; the partial
# gradients are added in chunk order (in double), so nothing depends on the thread count.
# Measured (W1's 100 -> 10 softmax layer over 10,000 rows, f32, 2 threads, in an L-BFGS
# evaluation): the five kernels ~1.4 ms, output_backprop ~0.5 ms (see the closing notes).
# The narrow layers' C loops (o <= VL): c/top.h.

cdef extern from "top.h":
    void* syn_top_alloc(size_t n) noexcept nogil
    void syn_top_fwd_f(const float* h, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const float* wt, const float* bv, float* y, Py_ssize_t o) noexcept nogil
    void syn_top_fwd_d(const double* h, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const double* wt, const double* bv, double* y, Py_ssize_t o) noexcept nogil
    void syn_top_hid_f(const float* dz, Py_ssize_t o, const float* wr, Py_ssize_t dp,
                       Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, float* dh,
                       float* tmp) noexcept nogil
    void syn_top_hid_d(const double* dz, Py_ssize_t o, const double* wr, Py_ssize_t dp,
                       Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, double* dh,
                       double* tmp) noexcept nogil
    void syn_top_grad_f(const float* h, Py_ssize_t d, const float* dz, Py_ssize_t o,
                        Py_ssize_t r0, Py_ssize_t r1, float* gt, float* dzb) noexcept nogil
    void syn_top_grad_d(const double* h, Py_ssize_t d, const double* dz, Py_ssize_t o,
                        Py_ssize_t r0, Py_ssize_t r1, double* gt, double* dzb) noexcept nogil


cdef enum:
    TOP_MAX_PARTIAL_BYTES = 33554432    # more partials than this: the separate kernels


cdef void _top_chunk(const floating* hp, const floating* wp, const floating* bias,
                     const floating* tp, floating* yp, floating* dzp, floating* part,
                     double* bsum, double* epart, floating* dhp, Py_ssize_t r0, Py_ssize_t r1,
                     Py_ssize_t d, Py_ssize_t o, int act, int kind, int err,
                     int hact, double slope, double hslope) noexcept nogil:
    cdef Py_ssize_t ldw = 1 + d
    _forward_part(hp, wp, bias, yp, r0, r1, d, o, ldw, act, slope)
    epart[0] = _chunk_error(yp, tp, r0, r1, o, err)
    _delta_row(yp + r0 * o, tp + r0 * o, dzp + r0 * o, (r1 - r0) * o, act, kind, slope)
    _colsum_chunk(dzp, r0, r1, o, o, bsum)
    # part (o x d, row-major) = dz[r0:r1]^T . h[r0:r1]; column-major: part^T = h^T . dz
    gemm(c'N', c'T', d, o, (r1 - r0), hp + r0 * d, d, dzp + r0 * o, o,
         part, d)
    if dhp != NULL:
        _hidden_part(dzp, wp, hp, dhp, r0, r1, 0, d, o, d, ldw, hact, hslope)


cdef void _top_rows_narrow(const floating* hp, const floating* wt, const floating* wr,
                           const floating* bv, const floating* tp, floating* yp, floating* dzp,
                           floating* gt, double* bsum, double* e, floating* dhp,
                           Py_ssize_t rows, Py_ssize_t d, Py_ssize_t dp, Py_ssize_t o, int act,
                           int kind, int err, int hact, double slope, double hslope,
                           floating* dzs, floating* tmp) noexcept nogil:
    """The narrow output layer (o <= VL) on ``rows`` rows, every row pointer at the first of
    them: y = f(bias + h . W[:, 1:]^T) (wt: W[:, 1:] transposed, d x VL; bv: the bias), its
    error e (double), the delta dz, bsum = dz's column sums (double), gt = the weight gradient
    transposed (d x VL: lane j of row k is g[j, 1 + k]) and, unless dhp is NULL,
    dh = (dz . W[:, 1:]) * f'(h) (wr: W[:, 1:]'s rows padded to dp).  Scratch: dzs, min(rows,
    64) x VL; tmp, dp.  ``slope``, ``hslope``: leaky-relu's of act and hact.  Also the output
    layer of packed_objective."""
    if floating is float:
        syn_top_fwd_f(hp, d, 0, rows, wt, bv, yp, o)
    else:
        syn_top_fwd_d(hp, d, 0, rows, wt, bv, yp, o)
    act_rows(yp, yp, 0, rows, o, act, slope)
    e[0] = _chunk_error(yp, tp, 0, rows, o, err)
    _delta_row(yp, tp, dzp, rows * o, act, kind, slope)
    _colsum_chunk(dzp, 0, rows, o, o, bsum)
    if floating is float:
        syn_top_grad_f(hp, d, dzp, o, 0, rows, gt, dzs)
    else:
        syn_top_grad_d(hp, d, dzp, o, 0, rows, gt, dzs)
    if dhp != NULL:
        if floating is float:
            syn_top_hid_f(dzp, o, wr, dp, d, 0, rows, dhp, tmp)
        else:
            syn_top_hid_d(dzp, o, wr, dp, d, 0, rows, dhp, tmp)
        mul_deriv_row(dhp, hp, rows * d, hact, hslope)


cdef int _output_backprop(const floating[:, ::1] h, const floating[:, ::1] w,
                          const floating[:, ::1] t, int act, int kind, int err, int hact,
                          double slope, double hslope, floating[:, ::1] y, floating[:, ::1] dz,
                          floating[:, ::1] g, floating* dhp, double* error) except -1:
    """0 when done (error set), 1 when the partials would be too big (nothing written)."""
    cdef Py_ssize_t n = h.shape[0], d = h.shape[1], o = w.shape[0], ldw = 1 + d
    cdef Py_ssize_t rows = chunk_rows(n, o), nch = (n + rows - 1) // rows, c, j, k, nt, r0
    cdef floating* scr
    cdef Py_ssize_t vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    cdef Py_ssize_t dp = (d + vl - 1) // vl * vl
    cdef bint narrow = o <= vl
    cdef Py_ssize_t psize = d * vl if narrow else o * d        # one chunk's partial
    cdef double s
    cdef double epart[MAX_CHUNKS]
    cdef int status[MAX_CHUNKS]
    cdef int failed = 0
    if n == 0 or d == 0 or o == 0 or nch * psize * <Py_ssize_t>sizeof(floating) > TOP_MAX_PARTIAL_BYTES:
        return 1
    cdef const floating* hp = &h[0, 0]
    cdef const floating* wp = &w[0, 0]
    cdef const floating* tp = &t[0, 0]
    cdef floating* yp = &y[0, 0]
    cdef floating* dzp = &dz[0, 0]
    cdef floating* gp = &g[0, 0]
    # partials, then (narrow) W[:, 1:] transposed (d x vl), its rows padded (o x dp), the bias
    cdef Py_ssize_t extra = (d * vl + o * dp + vl) if narrow else o
    cdef floating* part = <floating*>syn_top_alloc((nch * psize + extra) * sizeof(floating))
    cdef floating* wt = part + nch * psize
    cdef floating* wr = wt + d * vl
    cdef floating* bias = (wr + o * dp) if narrow else wt
    cdef double* bsum = <double*>malloc(nch * o * sizeof(double))
    if part == NULL or bsum == NULL:
        free(part)
        free(bsum)
        raise MemoryError()
    with nogil:
        if narrow:
            memset(wt, 0, (d * vl + o * dp + vl) * sizeof(floating))
        for j in range(o):
            bias[j] = wp[j * ldw]
            if narrow:
                for k in range(d):
                    wt[k * vl + j] = wp[j * ldw + 1 + k]
                    wr[j * dp + k] = wp[j * ldw + 1 + k]
        nt = _num_threads if nch > 1 and n * o * d >= _gemm_min_macs else 1
        for c in prange(nch, schedule='static', num_threads=nt):
            if narrow:
                # this thread's reusable block (per thread; the buffers of this call are
                # malloc'ed, so the calling thread may use its own here too)
                scr = <floating*>syn_sp_scratch((64 * vl + dp) * sizeof(floating))
                status[c] = scr == NULL
                r0 = c * rows
                if scr != NULL:
                    _top_rows_narrow(hp + r0 * d, wt, wr, bias, tp + r0 * o, yp + r0 * o,
                                     dzp + r0 * o, part + c * psize, bsum + c * o, epart + c,
                                     dhp + r0 * d if dhp != NULL else NULL,
                                     min(n, r0 + rows) - r0, d, dp, o, act, kind, err, hact,
                                     slope, hslope, scr, scr + 64 * vl)
            else:
                _top_chunk(hp, wp, bias, tp, yp, dzp, part + c * psize, bsum + c * o, epart + c,
                           dhp, c * rows, min(n, c * rows + rows), d, o, act, kind, err, hact,
                           slope, hslope)
                status[c] = 0
        for c in range(nch):
            failed = failed or status[c]
        if not failed:
            for j in range(o):
                s = bsum[j]
                for c in range(1, nch):
                    s += bsum[c * o + j]
                gp[j * ldw] = <floating>s
                for k in range(d):
                    if narrow:
                        s = part[k * vl + j]
                        for c in range(1, nch):
                            s += part[c * psize + k * vl + j]
                    else:
                        s = part[j * d + k]
                        for c in range(1, nch):
                            s += part[c * psize + j * d + k]
                    gp[j * ldw + 1 + k] = <floating>s
            s = 0
            for c in range(nch):
                s += epart[c]
            if err == ERR_CROSS_ENTROPY_BINARY or err == ERR_CROSS_ENTROPY_MULTIVARIATE:
                s = -s
            error[0] = s
        free(part)
        free(bsum)
    if failed:
        raise MemoryError()
    return 0


def output_backprop(h, w, t, int act, int kind, int err, int hact, y, dz, g, dh,
                    double slope=SYN_LEAKY_SLOPE, double hslope=SYN_LEAKY_SLOPE):
    """The output layer of a dense net over all the rows of ``h`` at once; returns the error.

    As the twin's sequence: ``dense_forward(h, w, act, y, slope)``, ``output_delta(y, t, act,
    kind, dz, slope)``, ``weight_grad(dz, h, g)``, ``hidden_delta(dz, w, h, hact, dh, hslope)``
    (skipped when ``dh`` is None: h is then the net's input) and ``return error_sum(y, t,
    err)``."""
    cdef int k = _check_forward(h, w, act, slope, y, "h", "y")
    cdef double error = 0
    check_operand(k, h, "h", t, "t", False, dim(h, 0), dim(w, 0))
    check_operand(k, h, "h", dz, "dz", True, dim(h, 0), dim(w, 0))
    check_operand(k, h, "h", g, "g", True, dim(w, 0), dim(w, 1))
    if kind == DELTA_SSE:
        check_deriv(act)
    elif kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {kind}")
    if not 0 <= err < N_ERR:
        raise ValueError(f"unknown error kind {err}")
    if err == ERR_ARGMAX_MISCLASSIFICATION and dim(w, 0) == 0 and dim(h, 0) > 0:
        raise ValueError("attempt to get argmax of an empty sequence (y has 0 columns)")
    outs = [(y, "y"), (dz, "dz"), (g, "g")]
    if dh is not None:
        check_operand(k, h, "h", dh, "dh", True, dim(h, 0), dim(h, 1))
        check_deriv_slope(hact, hslope)
        outs.append((dh, "dh"))
    for i, (a, name) in enumerate(outs):
        for b, other in [(h, "h"), (w, "w"), (t, "t")] + outs[i + 1:]:
            check_disjoint(a, name, b, other)
    if k == 0:
        done = _output_backprop[float](h, w, t, act, kind, err, hact, slope, hslope, y, dz, g,
                                       <float*>_data_or_null(dh), &error)
    else:
        done = _output_backprop[double](h, w, t, act, kind, err, hact, slope, hslope, y, dz, g,
                                        <double*>_data_or_null(dh), &error)
    if done == 0:
        return error
    # no rows, no inputs, or layers too wide for the partials: the twin's separate kernels,
    # native
    from . import native
    return output_backprop_steps(native, h, w, t, act, kind, err, hact, y, dz, g, dh, slope,
                                 hslope)


cdef inline void* _data_or_null(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)
