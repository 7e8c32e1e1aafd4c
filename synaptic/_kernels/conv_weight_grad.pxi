# Included by conv.pyx: conv_weight_grad, the gradient of a convolution layer's weights.


cdef void _wg_sample(const floating* dzs, const int* idxs, const floating* xs, Geo* g,
                     floating* part, double* bpart, floating* scratch) noexcept nogil:
    cdef floating* xp = scratch
    cdef floating* colT = xp + round_up(g.c * g.HW) + PAD
    cdef int* qs = <int*>(colT + round_up(g.Q * g.Pp) + PAD)
    cdef floating* cs = <floating*>qs + round_up(g.K * g.Q)
    cdef int* off = <int*>(cs + round_up(g.K * g.Q))
    cdef int* need = <int*>(<floating*>off + round_up((g.Q if g.Q > g.K else g.K) + 1))
    cdef Py_ssize_t k, q, o, e = 0, i, j, c, r, pb, nb, ne, Q = g.Q, Qo = g.Qo
    cdef Py_ssize_t VL = _vl(colT), nvec = g.Pp // VL
    cdef floating v
    cdef floating* row
    cdef int nz
    memset(need, 0, Q * sizeof(int))
    for k in range(g.K):                   # the nonzero entries of each map (branch-free)
        off[k] = <int>e
        if idxs == NULL:
            bpart[k] += row_sum(dzs + k * Q, Q)
            for q in range(Q):
                v = dzs[k * Q + q]
                nz = v != 0
                qs[e] = <int>q
                cs[e] = v
                e += nz
                need[q] |= nz
        else:
            bpart[k] += row_sum(dzs + k * Qo, Qo)
            for o in range(k * Qo, (k + 1) * Qo):
                v = dzs[o]
                nz = v != 0
                q = idxs[o] - k * Q
                qs[e] = <int>q
                cs[e] = v
                e += nz
                need[q] |= nz
    off[g.K] = <int>e
    if e == 0:
        return
    _load(xs, xp, g)
    for q in range(Q):                     # the patches some entry needs, rows in order
        if need[q]:
            i = q // g.wc
            j = q - i * g.wc
            if floating is float:
                syn_patch_f(colT + q * g.Pp, xp + i * g.sh * g.w + j * g.sw, g.c, g.fh, g.fw,
                            g.HW, g.w)
            else:
                syn_patch_d(colT + q * g.Pp, xp + i * g.sh * g.w + j * g.sw, g.c, g.fh, g.fw,
                            g.HW, g.w)
            # columns P..Pp-1 hold leftovers: their partial sums are never read
    pb = 0
    while pb < nvec:                       # column blocks outside: colT[:, block] stays in L1
        nb = nvec - pb if nvec - pb < SYN_GA_NB else SYN_GA_NB
        for k in range(g.K):
            ne = off[k + 1] - off[k]
            if ne > 0:
                _gax(<int>nb, colT + pb * VL, g.Pp, qs + off[k], cs + off[k], ne,
                     part + k * g.Pp + pb * VL, 1)
        pb += nb


cdef void _wg_chunk(Py_ssize_t ch, Py_ssize_t nch, Py_ssize_t n, const floating* dz,
                    const int* idx, const floating* x, Geo* g, floating* parts, double* bparts,
                    floating* scratch) noexcept nogil:
    cdef Py_ssize_t s, s0 = ch * n // nch, s1 = (ch + 1) * n // nch
    cdef Py_ssize_t drow = g.K * g.Qo, xrow = g.X
    cdef floating* part = parts + ch * g.K * g.Pp
    cdef double* bpart = bparts + ch * g.K
    memset(part, 0, g.K * g.Pp * sizeof(floating))
    memset(bpart, 0, g.K * sizeof(double))
    for s in range(s0, s1):
        _wg_sample(dz + s * drow, idx + s * drow if idx != NULL else NULL, x + s * xrow, g,
                   part, bpart, scratch)


cdef void _wg_combine(Py_ssize_t k, Py_ssize_t nch, Geo* g, const floating* parts,
                      const double* bparts, floating* out) noexcept nogil:
    """Row k of the gradient: the chunks' partial sums added in chunk order."""
    cdef Py_ssize_t ch, p, ldo = 1 + g.P
    cdef double s
    cdef floating* o = out + k * ldo + 1
    cdef const floating* part
    s = bparts[k]
    for ch in range(1, nch):
        s += bparts[ch * g.K + k]
    out[k * ldo] = <floating>s
    memcpy(o, parts + k * g.Pp, g.P * sizeof(floating))
    for ch in range(1, nch):
        part = parts + (ch * g.K + k) * g.Pp
        for p in range(g.P):
            o[p] = o[p] + part[p]


cdef int _conv_weight_grad(const floating* dz, const int* idx, const floating* x, Geo* g,
                           Py_ssize_t n, floating* out, floating* work,
                           int nthreads) except -1:
    cdef Py_ssize_t ch, k, nch = n if n < WG_CHUNKS else WG_CHUNKS
    cdef Py_ssize_t per = _per_thread(g)
    cdef floating* parts = work
    cdef double* bparts = <double*>(work + round_up(WG_CHUNKS * g.K * g.Pp) + round_up(g.K * g.Pp))
    cdef floating* scratch = work + _shared(g)
    if nthreads > nch:
        nthreads = <int>nch
    with nogil:
        if n == 0:
            memset(out, 0, g.K * (1 + g.P) * sizeof(floating))
            return 0
        if nthreads > 1:
            for ch in prange(nch, num_threads=nthreads, schedule='dynamic'):
                _wg_chunk(ch, nch, n, dz, idx, x, g, parts, bparts,
                          scratch + threadid() * per)
        else:
            for ch in range(nch):
                _wg_chunk(ch, nch, n, dz, idx, x, g, parts, bparts, scratch)
        # on the calling thread: a few hundred KB of adds, not worth a second barrier
        for k in range(g.K):
            _wg_combine(k, nch, g, parts, bparts, out)
    return 0


cdef object _check_grad_args(object dz, object idx, Geo* g, Py_ssize_t n):
    """Check ``dz``/``idx`` against the geometry; sets g.Qo (the columns per map of dz).
    Returns the private copy of ``idx`` the kernel uses (None without pooling)."""
    if idx is None:
        check_shape(dz, "dz", n, g.K * g.Q)
        g.Qo = g.Q
        return None
    if dim(dz, 1) % g.K:
        raise ValueError(f"dz has {dim(dz, 1)} columns, not a multiple of K = {g.K}")
    check_shape(dz, "dz", n, dim(dz, 1))
    g.Qo = dim(dz, 1) // g.K
    idx = private_int32(idx, "idx", n, dim(dz, 1))
    _check_idx(<int*>_data(idx), n, g)
    return idx


def conv_weight_grad(dz, idx, x, geom, out, work=None):
    """out = dE/dW of a convolution layer, summed over the rows (``out[:, 0]`` the bias).

    ``dz`` is dE/dz before pooling (n x K*hc*wc, ``idx`` None) or the pooled gradient with
    the max-pool indices ``idx``; ``x`` n x c*h*w, ``out`` K x (1 + c*fh*fw).
    """
    cdef int kind = check_float(dz, "dz", 2, False)
    check_same(kind, dz, "dz", check_float(x, "x", 2, False), x, "x")
    check_same(kind, dz, "dz", check_float(out, "out", 2, True), out, "out")
    cdef Geo g = _geo(geom, dim(out, 0))
    cdef Py_ssize_t n = dim(x, 0)
    if dim(x, 1) != g.X:
        raise ValueError(f"x has {dim(x, 1)} columns, geom {tuple(geom)} needs {g.X}")
    if dim(out, 1) != 1 + g.P or g.K < 1:
        raise ValueError(f"out has shape {out.shape}, expected (K, {1 + g.P})")
    if dim(dz, 0) != n:
        raise ValueError(f"dz has {dim(dz, 0)} rows, x has {n}")
    idx = _check_grad_args(dz, idx, &g, n)
    check_disjoint(out, "out", dz, "dz")
    check_disjoint(out, "out", x, "x")
    cdef int nthreads = 1
    work = _work(work, kind, dz.dtype, &g, n if n < WG_CHUNKS else WG_CHUNKS, n, &nthreads,
                 [dz, x, out, idx], ["dz", "x", "out", "idx"])
    if kind == 0:
        _conv_weight_grad[float](<float*>_data(dz), <int*>_data(idx), <float*>_data(x), &g, n,
                                 <float*>_data(out), <float*>_aligned(work), nthreads)
    else:
        _conv_weight_grad[double](<double*>_data(dz), <int*>_data(idx), <double*>_data(x), &g,
                                  n, <double*>_data(out), <double*>_aligned(work), nthreads)
