# fused_objective (included by dense.pyx): a whole evaluation of a dense net of any depth --
# forward, error, output delta, every layer's gradient and delta -- over all the rows of a
# dense x, in one parallel region.  What L-BFGS calls at each function evaluation.
#
# The twin is the per-layer sequence (checks.fused_objective_steps): dense_forward per layer,
# output_backprop, then weight_grad and hidden_delta from the top.  Here the rows go in blocks
# of FUSED_BLOCK; a block runs through every layer and back with the small-batch loops of
# c/small.h (the forward in their axpy form, on each W[:, 1:] transposed once a call) while
# its activities and deltas are in L1/L2 -- only y and the gradients go to
# memory, so a net of narrow layers (20 -> 100 -> 1 on 16,000 rows: five passes over 6 MB
# before) is no longer bound by memory.  The blocks are grouped in at most FUSED_PARTS fixed
# parts of consecutive blocks (fewer when the partials would exceed FUSED_MAX_PARTIAL_BYTES);
# each part sums into its own partials (the gradients; bias sums and the error in double),
# added in part order at the end: the same bits for any thread count.
# Declines (returns 1, nothing written) when a layer has no units, there are no rows or one
# part's partials would exceed the budget: the Python wrapper then runs the steps.

cdef enum:
    FUSED_BLOCK = 32
    FUSED_PARTS = 4
    FUSED_MAX_PARTIAL_BYTES = 67108864


cdef void _fused_block(const floating* x, const floating** w, const floating** wt,
                       const floating** bias, const Py_ssize_t* o, Py_ssize_t L,
                       const int* act, const double* slope, const floating* t, floating* y,
                       floating* G, double* B, const Py_ssize_t* goff, const Py_ssize_t* boff,
                       Py_ssize_t wide, double* e, Py_ssize_t r0, Py_ssize_t r1, int kind,
                       int err, floating* scr) noexcept nogil:
    """Rows r0..r1-1 through the net and back (wt[l]: layer l's W[:, 1:] transposed, o[l] x
    o[l + 1]): y's rows, e += their error, the gradient sums added to G (layer l at
    goff[l]: o[l + 1] x o[l], without the bias column) and B (its bias sums at boff[l]).
    scr: the block's activities (hidden layers), two delta buffers of FUSED_BLOCK x ``wide``
    (the widest layer) and ``wide`` doubles."""
    cdef Py_ssize_t rows = r1 - r0, l, j, aoff = 0
    cdef floating* A[64]
    cdef floating* cur
    cdef floating* nxt
    cdef floating* tmp
    cdef const floating* below
    cdef const floating* a = x + r0 * o[0]
    cdef floating* out
    cdef double* acc
    # forward: each hidden layer's block in scr, the output layer's into y
    for l in range(1, L + 1):
        if l < L:
            out = scr + aoff
            A[l] = out
            aoff += rows * o[l]
        else:
            out = y + r0 * o[L]
        # out = a . W[:, 1:]^T in the axpy form, on W[:, 1:] transposed (wt: no lane sums)
        _small_axpy(a, o[l - 1], 1, wt[l - 1], o[l], out, o[l], rows, o[l - 1], 0, o[l], 0)
        _bias_act_rows(out, bias[l - 1], 0, rows, o[l], act[l - 1], slope[l - 1])
        a = out
    cur = scr + aoff
    nxt = cur + FUSED_BLOCK * wide
    acc = <double*>(nxt + FUSED_BLOCK * wide)
    e[0] += _chunk_error(y, t, r0, r1, o[L], err)
    _delta_row(y + r0 * o[L], t + r0 * o[L], cur, rows * o[L], act[L - 1], kind, slope[L - 1])
    # backward: from the top, each layer's sums, then the delta below
    for l in range(L, 0, -1):
        below = A[l - 1] if l > 1 else x + r0 * o[0]
        _colsum_chunk(cur, 0, rows, o[l], o[l], acc)
        for j in range(o[l]):
            B[boff[l - 1] + j] += acc[j]
        _small_axpy(cur, 1, o[l], below, o[l - 1], G + goff[l - 1], o[l - 1], o[l], rows, 0,
                    o[l - 1], 1)
        if l > 1:
            _small_axpy(cur, o[l], 1, w[l - 1] + 1, 1 + o[l - 1], nxt, o[l - 1], rows, o[l], 0,
                        o[l - 1], 0)
            mul_deriv_row(nxt, A[l - 1], rows * o[l - 1], act[l - 2], slope[l - 2])
            tmp = cur
            cur = nxt
            nxt = tmp


cdef int _fused_objective(const floating* x, Py_ssize_t n, const floating** w,
                          const Py_ssize_t* o, Py_ssize_t L, const int* act,
                          const double* slope, const floating* t, floating* y, floating** g,
                          int kind, int err, double* error) noexcept nogil:
    """0 when done, 1 when declined.  o[0] = x's columns, o[l] the units of layer l (1..L),
    w[l - 1] / g[l - 1] its weights / gradient (o[l] x (1 + o[l - 1])), act[l - 1] and
    slope[l - 1] its activation."""
    cdef Py_ssize_t l, psize = 0, bsize = 0, wide = 0, hid = 0, pbytes, sbytes
    cdef Py_ssize_t nb, parts, bpp, nt, p, kb, i, j, q, e0, e1
    cdef Py_ssize_t goff[64]
    cdef Py_ssize_t boff[64]
    cdef char* mem
    cdef char* pm
    cdef floating* scr
    cdef floating* G0
    cdef floating* Gq
    cdef const floating* bias[64]
    cdef const floating* wt[64]
    cdef floating* bcopy
    cdef floating* tw
    cdef double perr[FUSED_PARTS]
    cdef int status[FUSED_PARTS]
    cdef double s
    cdef int failed = 0
    if n <= 0 or L < 1 or L > 63:
        return 1
    for l in range(1, L + 1):
        if o[l] <= 0 or o[l - 1] <= 0:
            return 1
        goff[l - 1] = psize
        boff[l - 1] = bsize
        psize += o[l] * o[l - 1]
        bsize += o[l]
        wide = o[l] if o[l] > wide else wide
        if l < L:
            hid += o[l]
    pbytes = (psize * sizeof(floating) + bsize * sizeof(double) + 63) // 64 * 64
    nb = (n + FUSED_BLOCK - 1) // FUSED_BLOCK
    parts = FUSED_MAX_PARTIAL_BYTES // pbytes
    if parts < 1:
        return 1
    parts = min(parts, FUSED_PARTS, nb)
    bpp = (nb + parts - 1) // parts
    parts = (nb + bpp - 1) // bpp
    sbytes = ((FUSED_BLOCK * (hid + 2 * wide)) * sizeof(floating) + wide * sizeof(double)
              + 63) // 64 * 64
    mem = <char*>malloc(parts * pbytes + (bsize + psize) * sizeof(floating) + 64)
    if mem == NULL:
        return 1
    # each layer's bias and W[:, 1:] transposed (once a call: o[l] x o[l + 1])
    bcopy = <floating*>(mem + parts * pbytes)
    tw = bcopy + bsize
    for l in range(L):
        bias[l] = bcopy + boff[l]
        for j in range(o[l + 1]):
            bcopy[boff[l] + j] = w[l][j * (1 + o[l])]
        wt[l] = tw + goff[l]
        # (its verdict on finiteness is not needed: non-finite weights propagate here)
        if floating is float:
            syn_sp_transpose_in_f(w[l], 1 + o[l], o[l + 1], 0, o[l], tw + goff[l], o[l + 1])
        else:
            syn_sp_transpose_in_d(w[l], 1 + o[l], o[l + 1], 0, o[l], tw + goff[l], o[l + 1])
    nt = min(_num_threads, parts) if n * psize >= min(_gemm_min_macs, SMALL_PAR_MACS * 32) else 1
    for p in prange(parts, schedule='static', num_threads=nt):
        pm = mem + p * pbytes
        memset(pm, 0, pbytes)
        perr[p] = 0
        scr = <floating*>syn_sp_scratch(sbytes)
        status[p] = scr == NULL
        if scr != NULL:
            for kb in range(p * bpp, min(nb, p * bpp + bpp)):
                _fused_block(x, w, wt, bias, o, L, act, slope, t, y, <floating*>pm,
                             <double*>(pm + psize * sizeof(floating)), goff, boff, wide,
                             &perr[p], kb * FUSED_BLOCK,
                             min(n, kb * FUSED_BLOCK + FUSED_BLOCK), kind, err, scr)
    for p in range(parts):
        failed = failed or status[p]
    if failed:
        free(mem)
        return 1
    # the parts added in part order (into part 0), the elements split over the threads
    G0 = <floating*>mem
    for q in prange(nt, schedule='static', num_threads=nt):
        e0 = q * psize // nt
        e1 = (q + 1) * psize // nt
        for p in range(1, parts):
            Gq = <floating*>(mem + p * pbytes)
            for i in range(e0, e1):
                G0[i] = G0[i] + Gq[i]
    for l in range(1, L + 1):
        for j in range(o[l]):
            s = 0
            for p in range(parts):
                s += (<double*>(mem + p * pbytes + psize * sizeof(floating)))[boff[l - 1] + j]
            g[l - 1][j * (1 + o[l - 1])] = <floating>s
            memcpy(g[l - 1] + j * (1 + o[l - 1]) + 1, G0 + goff[l - 1] + j * o[l - 1],
                   o[l - 1] * sizeof(floating))
    s = 0
    for p in range(parts):
        s += perr[p]
    if err == ERR_CROSS_ENTROPY_BINARY or err == ERR_CROSS_ENTROPY_MULTIVARIATE:
        s = -s
    error[0] = s
    free(mem)
    return 0


def fused_objective(x, ws, t, acts, slopes, int kind, int err, y, gs):
    """A dense net over all the rows of ``x`` (layer l: weights ``ws[l]``, activation
    ``acts[l]`` with leaky-relu slope ``slopes[l]``): fills ``y`` (the outputs) and ``gs``
    (Σ dE/dW of each layer) and returns the error of kind ``err`` over the rows, as the
    twin's dense_forward per layer -> output_backprop (output-delta ``kind``) ->
    weight_grad / hidden_delta from the top."""
    cdef Py_ssize_t L = len(ws), l
    cdef int k = check_float(x, "x", 2, False), declined
    cdef double error = 0
    cdef Py_ssize_t o[64]
    cdef int ac[64]
    cdef double sl[64]
    cdef void* wp[64]
    cdef void* gp[64]
    if not 1 <= L <= 63 or len(gs) != L or len(acts) != L or len(slopes) != L:
        raise ValueError(f"fused_objective: 1 to 63 layers, as many weights ({L}), gradients "
                         f"({len(gs)}), activations ({len(acts)}) and slopes ({len(slopes)})")
    o[0] = dim(x, 1)
    for l in range(L):
        check_same(k, x, "x", check_float(ws[l], f"ws[{l}]", 2, False), ws[l], f"ws[{l}]")
        if dim(ws[l], 1) != 1 + o[l]:
            raise ValueError(f"ws[{l}] has {dim(ws[l], 1)} columns, expected 1 + {o[l]}")
        o[l + 1] = dim(ws[l], 0)
        check_same(k, x, "x", check_float(gs[l], f"gs[{l}]", 2, True), gs[l], f"gs[{l}]")
        check_shape(gs[l], f"gs[{l}]", o[l + 1], 1 + o[l])
        ac[l] = int(acts[l])
        sl[l] = float(slopes[l])
        if l < L - 1:
            check_deriv(ac[l])
        else:
            check_act(ac[l])
        check_slope(sl[l])
    check_operand(k, x, "x", t, "t", False, dim(x, 0), o[L])
    check_operand(k, x, "x", y, "y", True, dim(x, 0), o[L])
    if kind == DELTA_SSE:
        check_deriv(ac[L - 1])
    elif kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {kind}")
    if not 0 <= err < N_ERR:
        raise ValueError(f"unknown error kind {err}")
    outs = [(y, "y")] + [(gs[l], f"gs[{l}]") for l in range(L)]
    ins = [(x, "x"), (t, "t")] + [(ws[l], f"ws[{l}]") for l in range(L)]
    for i, (a, name) in enumerate(outs):
        for b, other in ins + outs[i + 1:]:
            check_disjoint(a, name, b, other)
    for l in range(L):
        wp[l] = cnp.PyArray_DATA(<cnp.ndarray>ws[l])
        gp[l] = cnp.PyArray_DATA(<cnp.ndarray>gs[l])
    cdef void* xp = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void* tp = cnp.PyArray_DATA(<cnp.ndarray>t)
    cdef void* yp = cnp.PyArray_DATA(<cnp.ndarray>y)
    cdef Py_ssize_t n = dim(x, 0)
    with nogil:
        if k == 0:
            declined = _fused_objective[float](<float*>xp, n, <const float**>wp, o, L, ac, sl,
                                               <float*>tp, <float*>yp, <float**>gp, kind, err,
                                               &error)
        else:
            declined = _fused_objective[double](<double*>xp, n, <const double**>wp, o, L, ac,
                                                sl, <double*>tp, <double*>yp, <double**>gp,
                                                kind, err, &error)
    if not declined:
        return error
    from . import native
    return fused_objective_steps(native, x, ws, t, acts, slopes, kind, err, y, gs)
