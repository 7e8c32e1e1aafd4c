# Included by dense.pyx: sgd_epoch, a whole epoch of backprop on a dense net in one call.
#
# The twin (reference_epoch.sgd_epoch) is the contract: for each batch, exactly what
# training/backprop.py does with the per-layer kernels (the Nesterov jump, the forward
# pass, the output delta, the weight gradients and hidden deltas, then per layer regularize,
# decay_weights and sgd_update).  Here the batches run back to back without the GIL and
# without Python in between, on buffers allocated once per call, and the first layer, the
# big one (784 x 100 for MNIST), is kept transposed for the whole epoch:
#
# * Its units are split between the threads in whole vectors (_Slice: 48 + 52 of 100 units
#   with 2 threads, f32).  Each thread keeps its slice transposed, Wt (d x vw) = W[k0:k0+o,
#   1:]^T padded with zero columns to vw, with its deltaw, gain and gradient rows, so they
#   stay in its own core's cache all epoch; transposed in at the start and out at the end
#   (tens of microseconds an epoch instead of transpositions of W and of the gradient each
#   batch, as the per-layer sparse kernels need).
# * Forward: each thread its units for all the rows of the batch: with mostly-zero inputs
#   (sampled as in the per-layer kernels) the sparse block kernel of dense.pyx straight from
#   Wt, else one GEMM.  The layers above (100 -> 10) and the deltas: thread 0, GEMMs with the
#   helpers of the per-layer kernels.  Then each thread the gradient of its units (sparse
#   column kernel, or a GEMM) fused with regularization, decay and the sgd rule on its slice,
#   while the gradient is in cache: no gradient array written back and read again.
# * One parallel region for the whole epoch; the threads meet at a spin barrier (syn_bar)
#   twice a batch, after the forward pass and after thread 0's part.
#
# A skipped x == 0 term of the sparse forward is 0 * w, NaN if w is not finite: a slice whose
# Wt holds an inf or NaN (checked when it is transposed in, after each update and after each
# Nesterov jump) goes on with the GEMMs, which propagate them as the twin does.  A non-finite
# delta makes the sparse gradient decline and a GEMM redo it.  ``stop[0]`` is read between
# two batches (set by stop_training from another thread): the call returns the number of
# batches trained.

from libc.stdint cimport int64_t


cdef inline char* _carve(char** p, Py_ssize_t nbytes) noexcept nogil:
    """The next 64-byte aligned piece of ``nbytes`` of a block (see _sgd_epoch)."""
    cdef char* r = p[0]
    p[0] = r + (nbytes + 63) // 64 * 64
    return r


cdef inline bint _any_bad(const floating* w, Py_ssize_t i0, Py_ssize_t i1) noexcept nogil:
    """True if w[i0:i1] holds an inf or NaN (an integer OR: vectorizes)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(i0, i1):
        bad |= (w[i] - w[i]) != 0
    return bad != 0


cdef inline void _col_sums(const floating* dz, Py_ssize_t n, Py_ssize_t o, Py_ssize_t ldz,
                           double* acc, floating* out, Py_ssize_t ldo) noexcept nogil:
    """out[j * ldo] = sum of column j < o of dz (n rows, stride ldz), in double row after row."""
    cdef Py_ssize_t j
    _colsum_chunk(dz, 0, n, o, ldz, acc)
    for j in range(o):
        out[j * ldo] = <floating>acc[j]


cdef inline void _update_dense(floating* w, floating* g, floating* dw, floating* gain,
                               Py_ssize_t rows, Py_ssize_t cols, int reg_kind, floating lam,
                               floating decay, const _Sgd* p) noexcept nogil:
    """regularize, decay_weights and sgd_update of one rows x cols weight matrix (bias col 0)."""
    cdef Py_ssize_t i
    if reg_kind != REG_NONE:
        for i in range(rows):
            _reg_row(g + i * cols, w + i * cols, cols, reg_kind, lam)
    if decay != 1:
        for i in range(rows):
            _scale(w + i * cols, 1, cols, decay)
    _sgd_block(w, g, dw, gain, 0, rows * cols, p)


# the threads' spin barrier (c/barrier.h)
cdef extern from "barrier.h":
    ctypedef struct syn_bar:
        pass
    void syn_bar_init(syn_bar* b) noexcept nogil
    void syn_bar_wait(syn_bar* b, int team, int* local) noexcept nogil


# What the threads of the epoch share: the barrier, the next-batch decision and the step's
# update parameters (both written by thread 0 before a barrier), the batches done.
ctypedef struct _Shared:
    syn_bar bar
    int go
    Py_ssize_t done
    _Sgd p
    double* errs            # sgd_epoch's errors (NULL: none), of kind err_kind
    int err_kind
    const double* adam      # Adam's per-step inv_bc2, eps, neg_step (3 a batch), or NULL


include "dense_slices.pxi"


cdef Py_ssize_t _sgd_epoch(const floating* x, const floating* t, Py_ssize_t d,
                           const int64_t* bounds, Py_ssize_t nb, Py_ssize_t L,
                           const Py_ssize_t* units, floating** W, floating** DW, floating** GN,
                           const int* acts, const double* slopes, int delta_kind, _Sgd base,
                           const double* alphas,
                           bint has_prev, bint has_gain, int reg_kind, double reg_lambda,
                           double decay, const int* stop, bint sparse, double* errs,
                           int err_kind, const double* adam) noexcept nogil:
    """The epoch (see above); the number of batches trained, -1 if out of memory."""
    cdef Py_ssize_t o1 = units[1], vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    cdef Py_ssize_t nv = (o1 + vl - 1) // vl, nt, maxrows = 0, maxo = 0, nbytes, row_bytes
    cdef Py_ssize_t fb, cw, bs, i, l, j, c
    cdef floating lam = <floating>reg_lambda, fdecay = <floating>decay
    cdef bint gain = GN[0] != NULL
    cdef _Shared sh
    cdef _Slice sl[64]
    cdef char* block
    cdef char* cur
    cdef floating** A
    cdef floating** D
    cdef floating** G
    cdef floating** B
    cdef double* dacc
    # the units split over the threads in whole vectors (each thread keeps its slice of the
    # first layer in its own cache: forward, gradient and update of those units)
    nt = _num_threads if _num_threads < nv else nv
    nt = 64 if nt > 64 else (1 if nt < 1 else nt)
    row_bytes = (nv + nt - 1) // nt * vl * sizeof(floating)
    fb = SP_FWD_BLOCK_BYTES // row_bytes
    fb = SP_FWD_BLOCK_MAX if fb > SP_FWD_BLOCK_MAX else (SP_FWD_BLOCK_MIN if fb < SP_FWD_BLOCK_MIN
                                                          else fb)
    cw = SP_FWD_CHUNK_BYTES // (32 * row_bytes)
    cw = 1 if cw < 1 else cw
    bs = SP_L1_BYTES // row_bytes
    bs = SP_BLOCK_MAX if bs > SP_BLOCK_MAX else (1 if bs < 1 else bs)
    for i in range(nb):
        if bounds[i + 1] - bounds[i] > maxrows:
            maxrows = bounds[i + 1] - bounds[i]
    for l in range(1, L + 1):
        maxo = units[l] if units[l] > maxo else maxo
    nbytes = 4 * (L + 1) * sizeof(void*) + 64 * (8 + 4 * L) + maxo * sizeof(double)
    for l in range(1, L + 1):
        nbytes += 2 * maxrows * units[l] * sizeof(floating) + units[l] * sizeof(floating)
        nbytes += units[l] * (1 + units[l - 1]) * sizeof(floating)
    j = 0
    for c in range(nt):
        sl[c].k0 = j * vl
        j += nv // nt + (1 if c < nv % nt else 0)
        sl[c].o = min(o1, j * vl) - sl[c].k0
        sl[c].vw = j * vl - sl[c].k0
        nbytes += _slice_bytes(d, sl[c].vw, fb, bs, gain, sizeof(floating))
    block = <char*>calloc(nbytes + 64, 1)
    if block == NULL:
        return -1
    cur = <char*>(((<size_t>block) + 63) // 64 * 64)
    A = <floating**>_carve(&cur, (L + 1) * sizeof(void*))
    D = <floating**>_carve(&cur, (L + 1) * sizeof(void*))
    G = <floating**>_carve(&cur, (L + 1) * sizeof(void*))
    B = <floating**>_carve(&cur, (L + 1) * sizeof(void*))
    for l in range(1, L + 1):
        A[l] = <floating*>_carve(&cur, maxrows * units[l] * sizeof(floating))
        D[l] = <floating*>_carve(&cur, maxrows * units[l] * sizeof(floating))
        G[l] = <floating*>_carve(&cur, units[l] * (1 + units[l - 1]) * sizeof(floating))
        B[l] = <floating*>_carve(&cur, units[l] * sizeof(floating))
    dacc = <double*>_carve(&cur, maxo * sizeof(double))
    for c in range(nt):
        _slice_carve(&sl[c], &cur, d, fb, bs, gain, sizeof(floating))
    sh.done = 0
    sh.go = 0
    sh.p = base
    sh.errs = errs
    sh.err_kind = err_kind
    sh.adam = adam
    syn_bar_init(&sh.bar)
    if nt > 1:
        with parallel(num_threads=nt):
            _epoch_run(x, t, d, bounds, nb, L, units, W, DW, GN, acts, slopes, delta_kind, alphas,
                       has_prev, has_gain, reg_kind, lam, fdecay, stop, sparse, A, D, G, B,
                       dacc, sl, nt, fb, cw, bs, &sh, threadid(), openmp.omp_get_num_threads())
    else:
        _epoch_run(x, t, d, bounds, nb, L, units, W, DW, GN, acts, slopes, delta_kind, alphas,
                   has_prev, has_gain, reg_kind, lam, fdecay, stop, sparse, A, D, G, B, dacc,
                   sl, nt, fb, cw, bs, &sh, 0, 1)
    free(block)
    return sh.done


cdef double _batch_error(const floating* y, const floating* t, Py_ssize_t n, Py_ssize_t m,
                         int kind) noexcept nogil:
    """error_sum (loss.pyx) of a batch's outputs: its chunks, added in order, the same bits."""
    cdef Py_ssize_t rows = chunk_rows(n, m), c = 0
    cdef double s = 0
    while c * rows < n:
        s += _chunk_error(y, t, c * rows, min(n, c * rows + rows), m, kind)
        c += 1
    if kind == ERR_CROSS_ENTROPY_BINARY or kind == ERR_CROSS_ENTROPY_MULTIVARIATE:
        s = -s
    return s


cdef void _upper_jump(floating** W, floating** DW, Py_ssize_t L, const Py_ssize_t* units,
                      floating alpha) noexcept nogil:
    """The Nesterov jump w += alpha * deltaw (add_scaled) of the layers above the first."""
    cdef Py_ssize_t l
    for l in range(2, L + 1):
        _axpy(W[l], DW[l], 0, units[l] * (1 + units[l - 1]), alpha)


cdef inline Py_ssize_t _split(Py_ssize_t macs, Py_ssize_t extent, int team) noexcept nogil:
    """The parts a phase of the layers above the first is split into (one per thread, the
    per-layer kernels' rule, gemm_parts: 1 below GEMM_MIN_MACS, parts of >= a quarter of it,
    so that 1 and 2 threads give the same bits)."""
    cdef Py_ssize_t p = gemm_parts(macs, extent)
    return p if p < team else team


cdef inline void _part(Py_ssize_t n, Py_ssize_t parts, Py_ssize_t c, Py_ssize_t* a,
                       Py_ssize_t* b) noexcept nogil:
    a[0] = n * c // parts
    b[0] = n * (c + 1) // parts


cdef void _forward_units(const floating* a, const floating* w, floating* bias, floating* out,
                         Py_ssize_t m, Py_ssize_t d, Py_ssize_t o, Py_ssize_t j0, Py_ssize_t j1,
                         int act, double slope) noexcept nogil:
    """Units j0..j1-1 of a layer for the m rows: out[:, j0:j1] = f(a . W[j0:j1, 1:]^T + b)
    (softmax: the caller, over whole rows, later); bias[j0:j1] = W[j0:j1, 0] first."""
    cdef Py_ssize_t ldw = 1 + d, n = j1 - j0, i, j
    cdef floating* r
    for j in range(j0, j1):
        bias[j] = w[j * ldw]
    if m == 1:
        gemv(c'T', d, n, w + j0 * ldw + 1, ldw, a, out + j0)
    else:
        # column-major: out^T (n x m, ld o) = (W[j0:j1, 1:] seen as d x n)^T . a^T (d x m)
        gemm(c'T', c'N', n, m, d, w + j0 * ldw + 1, ldw, a, d, out + j0, o)
    for i in range(m):
        r = out + i * o
        for j in range(j0, j1):
            r[j] = r[j] + bias[j]
        if act != ACT_SOFTMAX:
            act_row(r + j0, r + j0, n, act, slope)


cdef void _grad_units(const floating* dz, const floating* a, floating* g, Py_ssize_t m,
                      Py_ssize_t o, Py_ssize_t d, Py_ssize_t j0, Py_ssize_t j1,
                      double* acc) noexcept nogil:
    """Rows j0..j1-1 of the layer's gradient g = [sum of dz | dz^T . a] (acc: scratch of
    the units, acc[j0:j1] used)."""
    cdef Py_ssize_t ldw = 1 + d, n = j1 - j0
    _col_sums(dz + j0, m, n, o, acc + j0, g + j0 * ldw, ldw)
    if m == 1:
        _outer(dz + j0, a, n, d, g + j0 * ldw, ldw)
    else:
        # column-major: g[j0:j1, 1:]^T (d x n, ld ldw) = a^T (d x m) . dz[:, j0:j1] (m x n)
        gemm(c'N', c'T', d, n, m, a, d, dz + j0, o, g + j0 * ldw + 1, ldw)


cdef void _epoch_run(const floating* x, const floating* t, Py_ssize_t d, const int64_t* bounds,
                     Py_ssize_t nb, Py_ssize_t L, const Py_ssize_t* units, floating** W,
                     floating** DW, floating** GN, const int* acts, const double* slopes,
                     int delta_kind, const double* alphas, bint has_prev, bint has_gain,
                     int reg_kind, floating lam, floating decay, const int* stop, bint sparse, floating** A,
                     floating** D, floating** G, floating** B, double* dacc, _Slice* sl,
                     Py_ssize_t nt, Py_ssize_t fb, Py_ssize_t cw, Py_ssize_t bs, _Shared* sh,
                     int tid, int team) noexcept nogil:
    """One thread's part of the epoch.  Per batch: the first layer's forward (each thread its
    slices c = tid, tid + team, ...), a barrier, then the layers above in phases -- each
    layer's forward, the softmax, the output delta, then per layer from the top its gradient
    and the delta below, fused with the update of the layer above (whose weights that delta
    read) -- each phase split over the threads by units (_split) or run on thread 0, with a
    barrier (syn_bar: spinning, then yielding) only where a phase and the one before do not
    both run on thread 0 alone; a barrier; the first layer's gradient + update (slices)."""
    cdef Py_ssize_t o1 = units[1], oL = units[L], i = 0, r0, m, l, j0, j1, c
    cdef Py_ssize_t fp, gp, hp, owner = 0
    cdef bint gain = GN[0] != NULL, nesterov = sh.p.nesterov, prev = has_prev, hg = has_gain
    cdef bint jump, split
    cdef int sense = 0
    c = tid
    while c < nt:
        _slice_in(&sl[c], W[1], DW[1], GN[1] if gain else NULL, d, 0)
        c += team
    if tid == 0:
        sh.go = nb > 0 and stop[0] == 0
        if sh.go and nesterov and prev and alphas[0] != 0:
            _upper_jump(W, DW, L, units, <floating>alphas[0])
    syn_bar_wait(&sh.bar, team, &sense)
    while sh.go:
        r0 = bounds[i]
        m = bounds[i + 1] - r0
        jump = nesterov and prev and alphas[i] != 0
        # forward, first layer: each thread its units, all the rows (sparse while finite)
        c = tid
        while c < nt:
            _first_forward(&sl[c], x + r0 * d, m, d, A[1], o1, acts[0], slopes[0],
                           sparse and not sl[c].bad, fb, cw, jump, <floating>alphas[i])
            c += team
        syn_bar_wait(&sh.bar, team, &sense)
        # thread 0: the step's update parameters, the next-batch decision (stop_training is
        # read here); read by the other threads after the next barrier
        if tid == 0:
            if acts[0] == ACT_SOFTMAX:
                act_rows(A[1], A[1], 0, m, o1, ACT_SOFTMAX, slopes[0])
            sh.p.neg_inv_m = -1.0 / <double>m
            if sh.p.adam:
                sh.p.inv_bc2 = sh.adam[3 * i]
                sh.p.eps = sh.adam[3 * i + 1]
                sh.p.neg_step = sh.adam[3 * i + 2]
            sh.p.momentum = prev and alphas[i] != 0
            sh.p.alpha = alphas[i] if sh.p.momentum else 0.0
            sh.p.has_gain = hg
            sh.done = i + 1
            sh.go = i + 1 < nb and stop[0] == 0
        split = False   # the phase before ran on more threads than thread 0
        # forward, the layers above
        for l in range(2, L + 1):
            fp = _split(m * units[l] * units[l - 1], units[l], team)
            if fp > 1 or split:
                syn_bar_wait(&sh.bar, team, &sense)
            split = fp > 1
            if tid < fp:
                _part(units[l], fp, tid, &j0, &j1)
                _forward_units(A[l - 1], W[l], B[l], A[l], m, units[l - 1], units[l], j0, j1,
                               acts[l - 1], slopes[l - 1])
            if acts[l - 1] == ACT_SOFTMAX:
                if split:
                    syn_bar_wait(&sh.bar, team, &sense)
                    split = False
                if tid == 0:
                    act_rows(A[l], A[l], 0, m, units[l], ACT_SOFTMAX, slopes[l - 1])
        # the output delta (thread 0)
        if split:
            syn_bar_wait(&sh.bar, team, &sense)
            split = False
        if tid == 0:
            if sh.errs != NULL:
                sh.errs[i] = _batch_error(A[L], t + r0 * oL, m, oL, sh.err_kind)
            _delta_row(A[L], t + r0 * oL, D[L], m * oL, acts[L - 1], delta_kind, slopes[L - 1])
        # down: per layer its gradient (rows: units) and the delta below (columns), and the
        # update of the layer above, by the threads that computed its gradient
        for l in range(L, 1, -1):
            gp = _split(m * units[l] * units[l - 1], units[l], team)
            hp = _split(m * units[l] * units[l - 1], units[l - 1], team)
            if gp > 1 or hp > 1 or split:
                syn_bar_wait(&sh.bar, team, &sense)
            split = gp > 1 or hp > 1
            if l < L:
                _upper_update(l + 1, owner, tid, i, nb, W, DW, GN, G, units, alphas, reg_kind,
                              lam, decay, sh)
            if tid < gp:
                _part(units[l], gp, tid, &j0, &j1)
                _grad_units(D[l], A[l - 1], G[l], m, units[l], units[l - 1], j0, j1, dacc)
            if tid < hp:
                _part(units[l - 1], hp, tid, &j0, &j1)
                _hidden_part(D[l], W[l], A[l - 1], D[l - 1], 0, m, j0, j1, units[l],
                             units[l - 1], 1 + units[l - 1], acts[l - 2], slopes[l - 2])
            owner = gp
        syn_bar_wait(&sh.bar, team, &sense)
        if L > 1:
            _upper_update(2, owner, tid, i, nb, W, DW, GN, G, units, alphas, reg_kind, lam,
                          decay, sh)
        # the first layer's slices: gradient fused with the update
        c = tid
        while c < nt:
            _first_update(&sl[c], x + r0 * d, m, d, D[1], o1, sparse, bs, reg_kind, lam, decay,
                          &sh.p)
            c += team
        prev = 1
        hg = gain
        i += 1
    c = tid
    while c < nt:
        _slice_in(&sl[c], W[1], DW[1], GN[1] if gain else NULL, d, 1)
        c += team


cdef inline void _upper_update(Py_ssize_t l, Py_ssize_t parts, int tid, Py_ssize_t i,
                               Py_ssize_t nb, floating** W, floating** DW, floating** GN,
                               floating** G, const Py_ssize_t* units, const double* alphas,
                               int reg_kind, floating lam, floating decay,
                               _Shared* sh) noexcept nogil:
    """This thread's rows of layer l (of ``parts``, as its gradient was split): regularize,
    decay and sgd_update, then the next batch's Nesterov jump."""
    cdef Py_ssize_t j0, j1, ldw = 1 + units[l - 1]
    if tid >= parts:
        return
    _part(units[l], parts, tid, &j0, &j1)
    _update_dense(W[l] + j0 * ldw, G[l] + j0 * ldw, DW[l] + j0 * ldw,
                  (GN[l] + j0 * ldw) if GN[0] != NULL else NULL, j1 - j0, ldw, reg_kind, lam,
                  decay, &sh.p)
    if sh.go and sh.p.nesterov and alphas[i + 1] != 0:
        _axpy(W[l], DW[l], j0 * ldw, j1 * ldw, <floating>alphas[i + 1])


def sgd_epoch(x, t, bounds, weights, deltaw, gain, acts, int delta_kind, double lr, alphas,
              has_prev, has_gain, ming, maxg, nesterov, int reg_kind, double reg_lambda,
              double decay, stop, zeros=None, slopes=None, errors=None, int error_kind=0,
              adam=None):
    """One epoch of backprop over the batches ``x[bounds[i]:bounds[i + 1]]`` (targets ``t``),
    weights, deltaw and gain (a list, or None) updated in place; returns the batches trained.

    Each batch exactly as training/backprop.py: the Nesterov jump (``nesterov``, from the
    second step or with ``has_prev``), the forward pass (activation codes ``acts``), the
    output delta (``delta_kind``), dE/dW, then per layer regularize (``reg_kind``,
    ``reg_lambda``), decay_weights (``decay`` != 1) and sgd_update with ``lr``, 1 / rows,
    momentum ``alphas[i]`` (float64, one per batch; 0: none), ``ming`` / ``maxg``.
    ``has_prev`` / ``has_gain``: deltaw / gain hold a previous step's values (then always).
    ``stop`` (int32, one element) is read before every batch: nonzero stops the epoch.
    ``zeros``: the fraction of zeros of ``x`` (None: sampled here), which picks the sparse
    kernels; a caller that trains one epoch in several calls passes the same value to each,
    so that the calls compute as one call does.  ``slopes``: the leaky-relu slope of each
    layer (None: SYN_LEAKY_SLOPE for all).  ``errors`` (float64, one element per batch, or
    None): ``errors[i]`` gets error_sum(outputs, targets, ``error_kind``) of batch i before
    its update -- the loss each batch saw -- with error_sum's bits.
    ``adam`` (or None): Adam steps instead of SGD's -- ``(beta1, beta2, steps)`` with
    ``steps`` a float64 array of nb x 3: each batch's inv_bc2, eps and neg_step as
    adam_update computes them (reference_epoch.adam_steps); deltaw holds m, gain v (both
    required), the decay (AdamW's) applies as SGD's; no momentum, no Nesterov.
    """
    cdef int k = check_float(x, "x", 2, False)
    cdef Py_ssize_t n = dim(x, 0), d = dim(x, 1), L, l, nb, i
    cdef _Sgd p
    cdef bint sp = False
    cdef Py_ssize_t done
    check_same(k, x, "x", check_float(t, "t", 2, False), t, "t")
    if dim(t, 0) != n:
        raise ValueError(f"t has {dim(t, 0)} rows, x has {n}")
    weights, deltaw = list(weights), list(deltaw)
    acts = [int(a) for a in acts]
    L = len(weights)
    if L < 1 or len(deltaw) != L or len(acts) != L or (gain is not None and len(gain) != L):
        raise ValueError(f"sgd_epoch needs as many weights, deltaw, gain and acts: got "
                         f"{L}, {len(deltaw)}, {None if gain is None else len(gain)}, {len(acts)}")
    slopes = [SYN_LEAKY_SLOPE] * L if slopes is None else list(slopes)
    if len(slopes) != L:
        raise ValueError(f"sgd_epoch needs one slope per layer ({L}), got {len(slopes)}")
    for l in range(L):
        check_act(acts[l])
        check_slope(slopes[l])
    gain = None if gain is None else list(gain)
    units = [d]
    for l in range(L):
        w = weights[l]
        check_same(k, x, "x", check_float(w, f"weights[{l}]", 2, True), w, f"weights[{l}]")
        if dim(w, 1) != 1 + units[l]:
            raise ValueError(f"weights[{l}] has {dim(w, 1)} columns, expected 1 + {units[l]}")
        if dim(w, 0) < 1:
            raise ValueError(f"weights[{l}] has no rows")
        units.append(dim(w, 0))
        others = [(deltaw[l], "deltaw")] + ([] if gain is None else [(gain[l], "gain")])
        for a, name in others:
            check_same(k, x, "x", check_float(a, f"{name}[{l}]", 2, True), a, f"{name}[{l}]")
            check_shape(a, f"{name}[{l}]", dim(w, 0), dim(w, 1))
        arrays = [(w, f"weights[{l}]")] + [(a, f"{name}[{l}]") for a, name in others]
        for i in range(len(arrays)):
            for j in range(i + 1, len(arrays)):
                check_disjoint(arrays[i][0], arrays[i][1], arrays[j][0], arrays[j][1])
        check_disjoint(w, f"weights[{l}]", x, "x")
        if l < L - 1:
            check_deriv(acts[l])
        else:
            check_act(acts[l])
    if d < 1:
        raise ValueError("x must have at least one column")
    check_shape(t, "t", n, units[L])
    if delta_kind == DELTA_SSE:
        check_deriv(acts[L - 1])
    elif delta_kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {delta_kind}")
    if reg_kind not in (REG_NONE, REG_L1, REG_L2):
        raise ValueError(f"unknown regularization kind {reg_kind}")
    bnd = np.array(bounds, dtype=np.int64, copy=True)  # private: checked, then trusted
    if bnd.ndim != 1 or bnd.shape[0] < 1:
        raise ValueError("bounds must be a 1-D array of batch starts and the end")
    nb = bnd.shape[0] - 1
    if bnd[0] < 0 or bnd[nb] > n or (nb > 0 and (np.diff(bnd) <= 0).any()):
        raise ValueError(f"bounds must increase strictly within [0, {n}], got {bnd[:8]}...")
    alp = np.array(alphas, dtype=np.float64, copy=True)
    if alp.ndim != 1 or alp.shape[0] != nb:
        raise ValueError(f"alphas must hold one value per batch ({nb}), got shape {alp.shape}")
    if not isinstance(stop, np.ndarray) or stop.dtype != np.int32 or stop.size < 1 \
            or not stop.flags.c_contiguous:
        raise TypeError("stop must be a contiguous int32 numpy array of at least one element")
    check_errors(errors, error_kind, nb)
    cdef cnp.ndarray adam_arr = None
    p.adam = adam is not None
    if p.adam:
        adam_arr, p.omb1, p.b2, p.omb2 = check_adam_epoch(adam, nb, gain, nesterov, alphas)
    if nb == 0:
        return 0
    p.lr = lr
    p.use_gain = gain is not None
    p.has_gain = has_gain
    p.nesterov = bool(nesterov)
    p.momentum = False
    p.alpha = 0.0
    p.neg_inv_m = 0.0
    p.ming = -INFINITY
    p.maxg = INFINITY
    if p.use_gain:
        if ming is not None:
            p.ming = ming
        if maxg is not None:
            p.maxg = maxg
    # mostly-zero inputs: the sparse kernels (the per-layer kernels' rule, on sampled rows)
    if zeros is None:
        zeros = x_zeros(x)
    sp = zeros >= _sp_fwd_zeros and _sp_applies(max(n, 1), d, units[1],
                                                 _sp_ldt(units[1], k == 1),
                                                 8 if k == 1 else 4, 1, _sp_fwd_zeros)
    cdef Py_ssize_t unit_arr[64]
    cdef int act_arr[64]
    cdef double slope_arr[64]
    if L > 63:
        raise ValueError(f"sgd_epoch handles at most 63 layers, got {L}")
    for l in range(L + 1):
        unit_arr[l] = units[l]
    for l in range(L):
        act_arr[l] = acts[l]
        slope_arr[l] = slopes[l]
    if k == 0:
        done = _epoch_typed[float](x, t, bnd, nb, L, unit_arr, act_arr, slope_arr, weights,
                                   deltaw, gain,
                                   delta_kind, p, alp, has_prev, has_gain, reg_kind, reg_lambda,
                                   decay, stop, sp, errors, error_kind, adam_arr)
    else:
        done = _epoch_typed[double](x, t, bnd, nb, L, unit_arr, act_arr, slope_arr, weights,
                                    deltaw, gain,
                                    delta_kind, p, alp, has_prev, has_gain, reg_kind,
                                    reg_lambda, decay, stop, sp, errors, error_kind, adam_arr)
    if done < 0:
        raise MemoryError("sgd_epoch: out of memory")
    return done


cdef Py_ssize_t _epoch_typed(const floating[:, ::1] x, object t, cnp.ndarray bnd, Py_ssize_t nb,
                             Py_ssize_t L, Py_ssize_t* units, int* acts, double* slopes,
                             list weights,
                             list deltaw, object gain, int delta_kind, _Sgd p, cnp.ndarray alp,
                             bint has_prev, bint has_gain, int reg_kind, double reg_lambda,
                             double decay, cnp.ndarray stp, bint sp, object errors,
                             int error_kind, cnp.ndarray adam_arr) except -2:
    cdef floating* W[64]
    cdef floating* DW[64]
    cdef floating* GN[64]
    cdef Py_ssize_t l, done
    cdef const floating* tp = <const floating*>cnp.PyArray_DATA(<cnp.ndarray>t)
    cdef const int64_t* bp = <const int64_t*>cnp.PyArray_DATA(bnd)
    cdef const double* ap = <const double*>cnp.PyArray_DATA(alp)
    cdef const int* sp_ = <const int*>cnp.PyArray_DATA(stp)
    cdef double* ep = NULL if errors is None else <double*>cnp.PyArray_DATA(<cnp.ndarray>errors)
    cdef const double* adp = NULL if adam_arr is None else <const double*>cnp.PyArray_DATA(adam_arr)
    W[0] = DW[0] = GN[0] = NULL
    for l in range(L):
        W[l + 1] = <floating*>cnp.PyArray_DATA(<cnp.ndarray>weights[l])
        DW[l + 1] = <floating*>cnp.PyArray_DATA(<cnp.ndarray>deltaw[l])
        GN[l + 1] = NULL if gain is None else <floating*>cnp.PyArray_DATA(<cnp.ndarray>gain[l])
    GN[0] = GN[1]
    with nogil:
        done = _sgd_epoch(&x[0, 0], tp, x.shape[1], bp, nb, L, units, W, DW, GN, acts, slopes,
                          delta_kind, p, ap, has_prev, has_gain, reg_kind, reg_lambda, decay,
                          sp_, sp, ep, error_kind, adp)
    return done
