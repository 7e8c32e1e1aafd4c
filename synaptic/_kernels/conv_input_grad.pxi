# Included by conv.pyx: conv_input_grad, the gradient a convolution layer sends below.

cdef void _ig_sample(const floating* dzs, const int* idxs, const floating* wp, Geo* g,
                     const floating* ys, int act, double slope, floating* dx,
                     floating* scratch) noexcept nogil:
    cdef floating* dxp = scratch
    cdef floating* dcolT = dxp + round_up(g.c * g.HW) + PAD
    cdef int* ks = <int*>(dcolT + round_up(g.Q * g.Pp) + PAD)
    cdef floating* cs = <floating*>ks + round_up(g.K * g.Q + g.Q)
    cdef int* start = <int*>(cs + round_up(g.K * g.Q + g.Q))
    cdef int* nxt = <int*>(<floating*>start + round_up((g.Q if g.Q > g.K else g.K) + 1))
    cdef Py_ssize_t k, q, o, e, i, j, c, r, pb, nb, ne, Q = g.Q, Qo = g.Qo
    cdef Py_ssize_t VL = _vl(dcolT), nvec = g.Pp // VL
    cdef floating v
    cdef floating* src
    memset(dxp, 0, (g.c * g.HW + PAD) * sizeof(floating))
    # bucket the nonzero entries by position (a counting sort; by map within a position)
    memset(start, 0, (Q + 1) * sizeof(int))
    for k in range(g.K):
        if idxs == NULL:
            for q in range(Q):
                start[q + 1] += dzs[k * Q + q] != 0
        else:
            for o in range(k * Qo, (k + 1) * Qo):
                start[idxs[o] - k * Q + 1] += dzs[o] != 0
    for q in range(Q):
        start[q + 1] += start[q]
    if start[Q] == 0:
        memset(dx, 0, g.X * sizeof(floating))
        return
    for q in range(Q):                     # bucket q starts at start[q] + q: one spare slot
        nxt[q] = start[q] + <int>q
    for k in range(g.K):                   # branch-free: a zero entry lands in the spare slot
        if idxs == NULL:
            for q in range(Q):
                v = dzs[k * Q + q]
                e = nxt[q]
                ks[e] = <int>k
                cs[e] = v
                nxt[q] += v != 0
        else:
            for o in range(k * Qo, (k + 1) * Qo):
                v = dzs[o]
                q = idxs[o] - k * Q
                e = nxt[q]
                ks[e] = <int>k
                cs[e] = v
                nxt[q] += v != 0
    pb = 0
    while pb < nvec:                       # column blocks outside: W[:, block] stays in L1
        nb = nvec - pb if nvec - pb < SYN_GA_NB else SYN_GA_NB
        for q in range(Q):
            ne = start[q + 1] - start[q]
            if ne > 0:
                _gax(<int>nb, wp + pb * VL, g.Pp, ks + start[q] + q, cs + start[q] + q, ne,
                     dcolT + q * g.Pp + pb * VL, 0)
        pb += nb
    for q in range(Q):                     # col2im
        if start[q + 1] > start[q]:
            i = q // g.wc
            j = q - i * g.wc
            if floating is float:
                syn_unpatch_f(dxp + i * g.sh * g.w + j * g.sw, dcolT + q * g.Pp, g.c, g.fh,
                              g.fw, g.HW, g.w)
            else:
                syn_unpatch_d(dxp + i * g.sh * g.w + j * g.sw, dcolT + q * g.Pp, g.c, g.fh,
                              g.fw, g.HW, g.w)
    _unload(dxp, dx, g)
    if act != ACT_LINEAR:
        mul_deriv_row(dx, ys, g.X, act, slope)


cdef int _conv_input_grad(const floating* dz, const int* idx, const floating* w, Geo* g,
                          Py_ssize_t n, const floating* y, int act, double slope, floating* out,
                          floating* work, int nthreads) except -1:
    cdef Py_ssize_t s, k, drow = g.K * g.Qo, xrow = g.X
    cdef Py_ssize_t per = _per_thread(g)
    cdef floating* wp = work + round_up(WG_CHUNKS * g.K * g.Pp)
    cdef floating* scratch = work + _shared(g)
    with nogil:
        for k in range(g.K):               # W[:, 1:] with rows padded to Pp
            memcpy(wp + k * g.Pp, w + k * (1 + g.P) + 1, g.P * sizeof(floating))
            if g.Pp > g.P:
                memset(wp + k * g.Pp + g.P, 0, (g.Pp - g.P) * sizeof(floating))
        if nthreads > 1:
            for s in prange(n, num_threads=nthreads, schedule='dynamic'):
                _ig_sample(dz + s * drow, idx + s * drow if idx != NULL else NULL, wp, g,
                           y + s * xrow if y != NULL else NULL, act, slope, out + s * xrow,
                           scratch + threadid() * per)
        else:
            for s in range(n):
                _ig_sample(dz + s * drow, idx + s * drow if idx != NULL else NULL, wp, g,
                           y + s * xrow if y != NULL else NULL, act, slope, out + s * xrow,
                           scratch)
    return 0


def conv_input_grad(dz, idx, w, geom, y, int act, out, work=None, double slope=SYN_LEAKY_SLOPE):
    """out = (dE/dx) * f'(y): the gradient a convolution layer sends to the layer below.

    ``dz``/``idx`` as in :func:`conv_weight_grad`; ``w`` K x (1 + c*fh*fw); ``y`` (n x c*h*w)
    the activity of the layer below and ``act`` its activation code (ACT_LINEAR: no factor,
    ``y`` may be None).
    """
    cdef int kind = check_float(dz, "dz", 2, False)
    check_same(kind, dz, "dz", check_float(w, "w", 2, False), w, "w")
    check_same(kind, dz, "dz", check_float(out, "out", 2, True), out, "out")
    cdef Geo g = _geo(geom, dim(w, 0))
    cdef Py_ssize_t n = dim(dz, 0)
    if dim(w, 1) != 1 + g.P or g.K < 1:
        raise ValueError(f"w has shape {w.shape}, expected (K, {1 + g.P})")
    check_shape(out, "out", n, g.X)
    check_deriv_slope(act, slope)
    if act != ACT_LINEAR:
        if y is None:
            raise ValueError("y is needed unless act is ACT_LINEAR")
        check_operand(kind, dz, "dz", y, "y", False, n, g.X)
        check_disjoint(out, "out", y, "y")
    else:
        y = None
    idx = _check_grad_args(dz, idx, &g, n)
    check_disjoint(out, "out", dz, "dz")
    check_disjoint(out, "out", w, "w")
    cdef int nthreads = 1
    work = _work(work, kind, dz.dtype, &g, n, n, &nthreads, [dz, w, out, idx, y],
                 ["dz", "w", "out", "idx", "y"])
    if n == 0:
        return
    if kind == 0:
        _conv_input_grad[float](<float*>_data(dz), <int*>_data(idx), <float*>_data(w), &g, n,
                                <float*>_data(y), act, slope, <float*>_data(out),
                                <float*>_aligned(work), nthreads)
    else:
        _conv_input_grad[double](<double*>_data(dz), <int*>_data(idx), <double*>_data(w), &g,
                                 n, <double*>_data(y), act, slope, <double*>_data(out),
                                 <double*>_aligned(work), nthreads)
