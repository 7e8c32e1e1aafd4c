# packed_objective (included by dense.pyx): a whole evaluation of a two-layer dense net
# (input -> hidden -> narrow output) on a packed input, in one parallel region.
#
# The twin is the sequence packed_forward -> output_backprop -> packed_weight_grad.  Here the
# rows go in the pack's blocks (64 rows for 784 -> 100 f32), grouped in the fixed row parts of
# packed_weight_grad; a thread takes a part and, block after block, runs the block's forward
# (packed rows, its own transposed W1), the output layer (dense_top.pxi's narrow loops), the
# hidden delta and the block's share of the first layer's gradient (packed columns) while the
# block is in L1 -- the hidden activities and deltas never go to memory.  Each part sums into
# its own partials (first layer's gradient, output layer's gradient, bias sums and error in
# double), added in part order at the end: the same bits for any thread count.
# Declines (returns 1, nothing usable written) when W1 or the deltas are not finite (the
# skipped zero terms would hide inf * 0), when the output layer is wider than one vector or
# when memory runs out: the Python wrapper then runs the three kernels.
# Measured (L-BFGS on W1 784-100-10, 10,000 MNIST rows, f32, 2 threads): see the closing
# notes of issue 4.

cdef struct _ObjPart:
    char* mem               # this part's partials (one allocation)
    double err
    int ok


cdef inline Py_ssize_t _vround(Py_ssize_t m, Py_ssize_t vl) noexcept nogil:
    return (m + vl - 1) // vl * vl


cdef inline Py_ssize_t _block_scratch(Py_ssize_t bs, Py_ssize_t o1, Py_ssize_t o2,
                                      Py_ssize_t ldt, Py_ssize_t dp, Py_ssize_t vl,
                                      size_t item) noexcept nogil:
    """Bytes of _objective_block's scratch."""
    return ((_vround(32 * ldt, vl) + 2 * _vround(bs * o1, vl) + _vround(bs * o2, vl)
             + _vround(bs * ldt, vl) + _vround(dp, vl) + o1 * vl) * item
            + 32 * sizeof(void*) + (o1 + o2) * sizeof(double))


cdef int _objective_block(const _Packed* pk, const floating* wt1, const floating* bp1,
                          const floating* wt2, const floating* wr2, const floating* bv2,
                          const floating* tp, floating* yp, Py_ssize_t n, Py_ssize_t d,
                          Py_ssize_t o1, Py_ssize_t o2, Py_ssize_t ldt, Py_ssize_t dp,
                          Py_ssize_t kb, int act1, int act2, int kind, int err,
                          double slope1, double slope2, floating* S, floating* gt2, double* bs1, double* bs2, double* e,
                          char* scr) noexcept nogil:
    """Block kb of the objective: 1 if its deltas were finite (else its gradient part is
    unusable)."""
    cdef Py_ssize_t vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    cdef Py_ssize_t bs = pk.block, nw = (d + 31) // 32, cw, fb, i0, i1, rows, s0, s1, j
    cdef Py_ssize_t row_bytes = ldt * sizeof(floating)
    # the block's scratch, each piece 64-byte aligned (see _block_scratch)
    cdef floating* ob = <floating*>scr                              # 32 x ldt
    cdef floating* hb = ob + _vround(32 * ldt, vl)                  # bs x o1
    cdef floating* dz2 = hb + _vround(bs * o1, vl)                  # bs x o2
    cdef floating* dhb = dz2 + _vround(bs * o2, vl)                 # bs x o1
    cdef floating* dzb = dhb + _vround(bs * o1, vl)                 # bs x ldt
    cdef floating* tmp = dzb + _vround(bs * ldt, vl)                # dp
    cdef floating* gtb = tmp + _vround(dp, vl)                      # o1 x vl
    cdef const floating** vp = <const floating**>(gtb + o1 * vl)    # 32 pointers
    cdef double* acc = <double*>(vp + 32)                           # o1 + o2 doubles
    cdef const floating* rv = <const floating*>pk.rval
    cdef const floating* cv = <const floating*>pk.cval
    cdef double eb
    cdef int ok
    fb = 32
    cw = PK_FWD_CHUNK_BYTES // (32 * row_bytes)
    cw = 1 if cw < 1 else cw
    i0 = kb * bs
    i1 = min(n, i0 + bs)
    rows = i1 - i0
    # hidden layer: the packed forward, 32 rows at a time, then f
    s0 = i0
    while s0 < i1:
        s1 = min(i1, s0 + fb)
        if floating is float:
            syn_pk_fwd_block_f(pk.rmask, nw, rv, pk.roff, s0, s1, wt1, ldt, bp1, hb - i0 * o1, o1,
                               cw, vp, ob)
        else:
            syn_pk_fwd_block_d(pk.rmask, nw, rv, pk.roff, s0, s1, wt1, ldt, bp1, hb - i0 * o1, o1,
                               cw, vp, ob)
        s0 = s1
    act_rows(hb, hb, 0, rows, o1, act1, slope1)
    # output layer: y rows, error, delta, its gradient, the hidden delta (as output_backprop)
    _top_rows_narrow(hb, wt2, wr2, bv2, tp + i0 * o2, yp + i0 * o2, dz2, gtb, acc, &eb, dhb,
                     rows, o1, dp, o2, act2, kind, err, act1, slope2, slope1, dzb, tmp)
    e[0] += eb
    for j in range(o2):
        bs2[j] += acc[j]
    for j in range(o1 * vl):
        gt2[j] = gt2[j] + gtb[j]
    # first layer: bias sums and the packed column sums of the block
    _colsum_chunk(dhb, 0, rows, o1, o1, acc)
    for j in range(o1):
        bs1[j] += acc[j]
    if floating is float:
        ok = syn_pk_grad_cols_f(dhb - i0 * o1, pk.cmask, cv, pk.coff, n, o1, d, bs, kb, kb + 1,
                                0, d, S, ldt, dzb, 0)
    else:
        ok = syn_pk_grad_cols_d(dhb - i0 * o1, pk.cmask, cv, pk.coff, n, o1, d, bs, kb, kb + 1,
                                0, d, S, ldt, dzb, 0)
    return ok


cdef int _packed_objective(const _Packed* pk, const floating* w1, const floating* w2,
                           const floating* tp, floating* yp, floating* g1, floating* g2,
                           Py_ssize_t n, Py_ssize_t d, Py_ssize_t o1, Py_ssize_t o2, int act1,
                           int act2, int kind, int err, double slope1, double slope2,
                           double* error) noexcept nogil:
    """0 when done, 1 when declined (see the top of this file)."""
    cdef Py_ssize_t vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    cdef Py_ssize_t ldt = _sp_ldt(o1, floating is double), dp = (o1 + vl - 1) // vl * vl
    cdef Py_ssize_t ldw1 = 1 + d, ldw2 = 1 + o1, bs = pk.block, nb = (n + bs - 1) // bs
    cdef Py_ssize_t parts, bpp, nt, p, kb, j, k, q, tid, t, j0, j1
    cdef Py_ssize_t sz = d * ldt, pbytes, sbytes, shared
    cdef _ObjPart part[PK_GRAD_PARTS]
    cdef char* mem
    cdef char* scr
    cdef floating* wt1
    cdef floating* S
    cdef floating* gt2
    cdef floating* sp
    cdef double* bs1
    cdef double* bs2
    cdef int bad_w, good = 1
    cdef double s
    if (n <= 0 or d <= 0 or o1 <= 0 or o2 <= 0 or o2 > vl or bs > 64
            or <size_t>sz * sizeof(floating) > SP_MAX_SCRATCH):
        return 1
    parts = nb if nb < PK_GRAD_PARTS else PK_GRAD_PARTS
    bpp = (nb + parts - 1) // parts
    parts = (nb + bpp - 1) // bpp
    nt = _sp_threads(n, d, o1, parts)
    # shared: W2 transposed (o1 x vl), W2's rows padded (o2 x dp), the biases (vl, ldt)
    shared = (o1 * vl + o2 * dp + vl + ldt) * sizeof(floating)
    # a part: S (sz), gt2 (o1 x vl), bias sums (o1 + o2 doubles)
    pbytes = (sz + o1 * vl) * sizeof(floating) + (o1 + o2) * sizeof(double)
    pbytes = (pbytes + 63) // 64 * 64
    # a thread: its Wt1 (sz), then the block scratch of _objective_block
    sbytes = sz * sizeof(floating) + _block_scratch(bs, o1, o2, ldt, dp, vl, sizeof(floating))
    sbytes = (sbytes + 63) // 64 * 64
    mem = <char*>syn_sp_scratch(shared + parts * pbytes + nt * sbytes)   # reused, 64-aligned
    if mem == NULL:
        return 1
    cdef floating* wt2 = <floating*>mem
    cdef floating* wr2 = wt2 + o1 * vl
    cdef floating* bv2 = wr2 + o2 * dp
    cdef floating* bp1 = bv2 + vl
    memset(mem, 0, shared)
    for j in range(o2):
        bv2[j] = w2[j * ldw2]
        for k in range(o1):
            wt2[k * vl + j] = w2[j * ldw2 + 1 + k]
            wr2[j * dp + k] = w2[j * ldw2 + 1 + k]
    for j in range(o1):
        bp1[j] = w1[j * ldw1]
    for p in range(parts):
        part[p].mem = mem + shared + p * pbytes
        part[p].err = 0
        part[p].ok = 1
    with parallel(num_threads=nt):
        tid = threadid()
        scr = mem + shared + parts * pbytes + tid * sbytes
        wt1 = <floating*>scr
        # each thread its own W1 transposed (in its L2), and its own verdict on W1's finiteness
        if floating is float:
            bad_w = not syn_sp_transpose_in_f(w1, ldw1, o1, 0, d, wt1, ldt)
        else:
            bad_w = not syn_sp_transpose_in_d(w1, ldw1, o1, 0, d, wt1, ldt)
        for p in prange(parts, schedule='static'):
            S = <floating*>part[p].mem
            gt2 = S + sz
            bs1 = <double*>(gt2 + o1 * vl)
            bs2 = bs1 + o1
            memset(part[p].mem, 0, pbytes)
            if bad_w:
                part[p].ok = 0
            kb = p * bpp
            while kb < min(nb, p * bpp + bpp) and part[p].ok:
                part[p].ok = _objective_block(pk, wt1, bp1, wt2, wr2, bv2, tp, yp, n, d, o1, o2,
                                              ldt, dp, kb, act1, act2, kind, err, slope1,
                                              slope2, S, gt2, bs1,
                                              bs2, &part[p].err, scr + sz * sizeof(floating))
                kb = kb + 1
    for p in range(parts):
        good = good and part[p].ok
    if good:
        # the parts added in order; the first layer's columns split over the threads
        S = <floating*>part[0].mem
        for t in prange(nt, schedule='static', num_threads=nt):
            j0 = t * d // nt
            j1 = (t + 1) * d // nt
            for q in range(1, parts):
                sp = <floating*>part[q].mem
                for k in range(j0 * ldt, j1 * ldt):
                    S[k] = S[k] + sp[k]
            if floating is float:
                syn_sp_transpose_out_f(S, ldt, j0, j1, o1, g1, ldw1)
            else:
                syn_sp_transpose_out_d(S, ldt, j0, j1, o1, g1, ldw1)
        for j in range(o1):
            s = 0
            for p in range(parts):
                s += (<double*>(<floating*>part[p].mem + sz + o1 * vl))[j]
            g1[j * ldw1] = <floating>s
        for j in range(o2):
            s = 0
            for p in range(parts):
                s += (<double*>(<floating*>part[p].mem + sz + o1 * vl))[o1 + j]
            g2[j * ldw2] = <floating>s
            for k in range(o1):
                s = 0
                for p in range(parts):
                    s += (<floating*>part[p].mem + sz)[k * vl + j]
                g2[j * ldw2 + 1 + k] = <floating>s
        s = 0
        for p in range(parts):
            s += part[p].err
        if err == ERR_CROSS_ENTROPY_BINARY or err == ERR_CROSS_ENTROPY_MULTIVARIATE:
            s = -s
        error[0] = s
    return 0 if good else 1


def packed_objective(p, w1, w2, t, int act1, int act2, int kind, int err, y, g1, g2,
                     double slope1=SYN_LEAKY_SLOPE, double slope2=SYN_LEAKY_SLOPE):
    """A two-layer dense net (input -> hidden ``act1`` -> output ``act2``, leaky-relu slopes
    ``slope1``, ``slope2``) on the packed x:
    fills ``y`` (the outputs), ``g1``, ``g2`` (Σ dE/dW of each layer) and returns the error of
    kind ``err`` over the rows, as the twin's packed_forward -> output_backprop (with an
    output-delta ``kind``) -> packed_weight_grad."""
    cdef _Packed pk
    cdef double error = 0
    x = _packed_x(p, &pk)
    n, d = x.shape
    cdef int k = check_float(x, "x", 2, False)
    check_same(k, x, "x", check_float(w1, "w1", 2, False), w1, "w1")
    if dim(w1, 1) != 1 + d:
        raise ValueError(f"w1 has {dim(w1, 1)} columns, expected 1 + {d} (bias + inputs)")
    check_same(k, x, "x", check_float(w2, "w2", 2, False), w2, "w2")
    if dim(w2, 1) != 1 + dim(w1, 0):
        raise ValueError(f"w2 has {dim(w2, 1)} columns, expected 1 + {dim(w1, 0)}")
    check_deriv(act1)
    check_act(act2)
    check_slope(slope1)
    check_slope(slope2)
    for a, name, shape in ((t, "t", (n, dim(w2, 0))), (y, "y", (n, dim(w2, 0))),
                           (g1, "g1", (dim(w1, 0), dim(w1, 1))),
                           (g2, "g2", (dim(w2, 0), dim(w2, 1)))):
        check_same(k, x, "x", check_float(a, name, 2, name != "t"), a, name)
        check_shape(a, name, shape[0], shape[1])
    if kind == DELTA_SSE:
        check_deriv(act2)
    elif kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {kind}")
    if not 0 <= err < N_ERR:
        raise ValueError(f"unknown error kind {err}")
    if act2 == ACT_SOFTMAX and dim(w2, 0) == 0:
        raise ValueError(f"softmax needs at least one output, w2 has shape {w2.shape}")
    outs = [(y, "y"), (g1, "g1"), (g2, "g2")]
    for i, (a, name) in enumerate(outs):
        for b, other in [(x, "x"), (w1, "w1"), (w2, "w2"), (t, "t")] + outs[i + 1:]:
            check_disjoint(a, name, b, other)
    if k == 0:
        declined = _packed_objective[float](&pk, <float*>cnp.PyArray_DATA(w1),
                                            <float*>cnp.PyArray_DATA(w2),
                                            <float*>cnp.PyArray_DATA(t),
                                            <float*>cnp.PyArray_DATA(y),
                                            <float*>cnp.PyArray_DATA(g1),
                                            <float*>cnp.PyArray_DATA(g2), n, d, dim(w1, 0),
                                            dim(w2, 0), act1, act2, kind, err, slope1, slope2,
                                            &error)
    else:
        declined = _packed_objective[double](&pk, <double*>cnp.PyArray_DATA(w1),
                                             <double*>cnp.PyArray_DATA(w2),
                                             <double*>cnp.PyArray_DATA(t),
                                             <double*>cnp.PyArray_DATA(y),
                                             <double*>cnp.PyArray_DATA(g1),
                                             <double*>cnp.PyArray_DATA(g2), n, d, dim(w1, 0),
                                             dim(w2, 0), act1, act2, kind, err, slope1, slope2,
                                             &error)
    if not declined:
        return error
    # non-finite values, a wide output layer, no rows: the twin's three steps, on the native
    # kernels
    from . import native
    return packed_objective_steps(native, p, w1, w2, t, act1, act2, kind, err, y, g1, g2, slope1,
                                  slope2)
