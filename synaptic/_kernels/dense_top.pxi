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

cdef enum:
    TOP_MAX_PARTIAL_BYTES = 33554432    # more partials than this: the separate kernels


cdef void _top_chunk(const floating* hp, const floating* wp, const floating* bias,
                     const floating* tp, floating* yp, floating* dzp, floating* part,
                     double* bsum, double* epart, floating* dhp, Py_ssize_t r0, Py_ssize_t r1,
                     Py_ssize_t d, Py_ssize_t o, int act, int kind, int err,
                     int hact) noexcept nogil:
    cdef Py_ssize_t ldw = 1 + d
    _forward_part(hp, wp, bias, yp, r0, r1, d, o, ldw, act)
    epart[0] = _chunk_error(yp, tp, r0, r1, o, err)
    _delta_row(yp + r0 * o, tp + r0 * o, dzp + r0 * o, (r1 - r0) * o, act, kind)
    _colsum_chunk(dzp, r0, r1, o, o, bsum)
    # part (o x d, row-major) = dz[r0:r1]^T . h[r0:r1]; column-major: part^T = h^T . dz
    gemm(c'N', c'T', <int>d, <int>o, <int>(r1 - r0), hp + r0 * d, <int>d, dzp + r0 * o, <int>o,
         part, <int>d)
    if dhp != NULL:
        _hidden_part(dzp, wp, hp, dhp, r0, r1, 0, d, o, d, ldw, hact)


cdef int _output_backprop(const floating[:, ::1] h, const floating[:, ::1] w,
                          const floating[:, ::1] t, int act, int kind, int err, int hact,
                          floating[:, ::1] y, floating[:, ::1] dz, floating[:, ::1] g,
                          floating* dhp, double* error) except -1:
    """0 when done (error set), 1 when the partials would be too big (nothing written)."""
    cdef Py_ssize_t n = h.shape[0], d = h.shape[1], o = w.shape[0], ldw = 1 + d
    cdef Py_ssize_t rows = chunk_rows(n, o), nch = (n + rows - 1) // rows, c, j, k, nt
    cdef double s
    cdef double epart[MAX_CHUNKS]
    if n == 0 or d == 0 or o == 0 or nch * o * d * <Py_ssize_t>sizeof(floating) > TOP_MAX_PARTIAL_BYTES:
        return 1
    cdef const floating* hp = &h[0, 0]
    cdef const floating* wp = &w[0, 0]
    cdef const floating* tp = &t[0, 0]
    cdef floating* yp = &y[0, 0]
    cdef floating* dzp = &dz[0, 0]
    cdef floating* gp = &g[0, 0]
    cdef floating* part = <floating*>malloc(nch * o * d * sizeof(floating))
    cdef double* bsum = <double*>malloc(nch * o * sizeof(double))
    cdef floating* bias = <floating*>malloc(o * sizeof(floating))
    if part == NULL or bsum == NULL or bias == NULL:
        free(part)
        free(bsum)
        free(bias)
        raise MemoryError()
    with nogil:
        for j in range(o):
            bias[j] = wp[j * ldw]
        nt = _num_threads if nch > 1 and n * o * d >= _gemm_min_macs else 1
        if nt > 1:
            for c in prange(nch, schedule='static', num_threads=nt):
                _top_chunk(hp, wp, bias, tp, yp, dzp, part + c * o * d, bsum + c * o, epart + c,
                           dhp, c * rows, min(n, c * rows + rows), d, o, act, kind, err, hact)
        else:
            for c in range(nch):
                _top_chunk(hp, wp, bias, tp, yp, dzp, part + c * o * d, bsum + c * o, epart + c,
                           dhp, c * rows, min(n, c * rows + rows), d, o, act, kind, err, hact)
        for j in range(o):
            s = bsum[j]
            for c in range(1, nch):
                s += bsum[c * o + j]
            gp[j * ldw] = <floating>s
            for k in range(d):
                s = part[j * d + k]
                for c in range(1, nch):
                    s += part[c * o * d + j * d + k]
                gp[j * ldw + 1 + k] = <floating>s
        s = 0
        for c in range(nch):
            s += epart[c]
        if err == ERR_CROSS_ENTROPY_BINARY or err == ERR_CROSS_ENTROPY_MULTIVARIATE:
            s = -s
        error[0] = s
        free(part)
        free(bsum)
        free(bias)
    return 0


def output_backprop(h, w, t, int act, int kind, int err, int hact, y, dz, g, dh):
    """The output layer of a dense net over all the rows of ``h`` at once; returns the error.

    As the twin's sequence: ``dense_forward(h, w, act, y)``, ``output_delta(y, t, act, kind,
    dz)``, ``weight_grad(dz, h, g)``, ``hidden_delta(dz, w, h, hact, dh)`` (skipped when
    ``dh`` is None: h is then the net's input) and ``return error_sum(y, t, err)``."""
    cdef int k = _check_forward(h, w, act, y)
    cdef double error = 0
    check_same(k, h, "h", check_float(t, "t", 2, False), t, "t")
    check_shape(t, "t", dim(h, 0), dim(w, 0))
    check_same(k, h, "h", check_float(dz, "dz", 2, True), dz, "dz")
    check_shape(dz, "dz", dim(h, 0), dim(w, 0))
    check_same(k, h, "h", check_float(g, "g", 2, True), g, "g")
    check_shape(g, "g", dim(w, 0), dim(w, 1))
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
        check_same(k, h, "h", check_float(dh, "dh", 2, True), dh, "dh")
        check_shape(dh, "dh", dim(h, 0), dim(h, 1))
        check_deriv(hact)
        outs.append((dh, "dh"))
    for i, (a, name) in enumerate(outs):
        for b, other in [(h, "h"), (w, "w"), (t, "t")] + outs[i + 1:]:
            check_disjoint(a, name, b, other)
    if k == 0:
        done = _output_backprop[float](h, w, t, act, kind, err, hact, y, dz, g,
                                       <float*>_data_or_null(dh), &error)
    else:
        done = _output_backprop[double](h, w, t, act, kind, err, hact, y, dz, g,
                                        <double*>_data_or_null(dh), &error)
    if done == 0:
        return error
    # no rows, no inputs, or layers too wide for the partials: the separate kernels
    from .loss import error_sum, output_delta
    dense_forward(h, w, act, y)
    output_delta(y, t, act, kind, dz)
    weight_grad(dz, h, g)
    if dh is not None:
        hidden_delta(dz, w, h, hact, dh)
    return error_sum(y, t, err)


cdef inline void* _data_or_null(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)
