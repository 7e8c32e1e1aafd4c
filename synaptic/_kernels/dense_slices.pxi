# Included by dense_epoch.pxi: the first layer of sgd_epoch, split between the threads in
# slices of whole vectors of units, each kept transposed in its thread's cache all epoch
# (see dense_epoch.pxi).

# A thread's share of the first layer: the units k0..k0+o-1, their weights transposed (Wt:
# d x vw, vw = o padded to whole vectors), deltaw, gain, gradient, the bias part, scratch.
ctypedef struct _Slice:
    Py_ssize_t k0, o, vw
    void* wt
    void* dwt
    void* gnt
    void* s
    void* bias
    void* dwb
    void* gnb
    void* gb
    double* acc
    void* fscr
    uint32_t* mw
    void* gscr
    uint64_t* cm
    int bad


cdef Py_ssize_t _slice_bytes(Py_ssize_t d, Py_ssize_t vw, Py_ssize_t fb, Py_ssize_t bs,
                             bint gain, size_t item) noexcept nogil:
    cdef Py_ssize_t row = (vw * item + 63) // 64 * 64
    return (d * row * (4 if gain else 3) + 4 * row + (vw * 8 + 63) // 64 * 64
            + fb * row + (fb * ((d + 31) // 32) * 4 + 63) // 64 * 64 + bs * row
            + (d * 8 + 63) // 64 * 64 + 64)


cdef void _slice_carve(_Slice* sl, char** cur, Py_ssize_t d, Py_ssize_t fb, Py_ssize_t bs,
                       bint gain, size_t item) noexcept nogil:
    cdef Py_ssize_t row = sl.vw * item
    sl.wt = _carve(cur, d * row)
    sl.dwt = _carve(cur, d * row)
    sl.s = _carve(cur, d * row)
    sl.gnt = _carve(cur, d * row) if gain else NULL
    sl.bias = _carve(cur, row)
    sl.dwb = _carve(cur, row)
    sl.gnb = _carve(cur, row)
    sl.gb = _carve(cur, row)
    sl.acc = <double*>_carve(cur, sl.vw * 8)
    sl.fscr = _carve(cur, fb * row)
    sl.mw = <uint32_t*>_carve(cur, fb * ((d + 31) // 32) * 4)
    sl.gscr = _carve(cur, bs * row)
    sl.cm = <uint64_t*>_carve(cur, d * 8)


cdef void _slice_in(_Slice* sl, floating* w, floating* dw, floating* gn, Py_ssize_t d,
                    bint out) noexcept nogil:
    """Copy the slice's part of the first layer in (transposed), or back ``out``."""
    cdef Py_ssize_t j, ldw = 1 + d
    cdef floating* src[3]
    cdef floating* dst[3]
    cdef floating* bs[3]
    cdef int q
    src[0], src[1], src[2] = w + sl.k0 * ldw, dw + sl.k0 * ldw, (gn + sl.k0 * ldw) if gn else NULL
    dst[0], dst[1], dst[2] = <floating*>sl.wt, <floating*>sl.dwt, <floating*>sl.gnt
    bs[0], bs[1], bs[2] = <floating*>sl.bias, <floating*>sl.dwb, <floating*>sl.gnb
    sl.bad = 0
    for q in range(3):
        if src[q] == NULL:
            continue
        if out:
            _transpose_out(dst[q], src[q], sl.o, d, sl.vw)
            for j in range(sl.o):
                src[q][j * ldw] = bs[q][j]
        else:
            if not _transpose_in(src[q], dst[q], sl.o, d, sl.vw) and q == 0:
                sl.bad = 1
            for j in range(sl.o):
                bs[q][j] = src[q][j * ldw]


cdef inline bint _transpose_in(const floating* w, floating* wt, Py_ssize_t o, Py_ssize_t d,
                               Py_ssize_t ldt) noexcept nogil:
    """wt (d x ldt) = w[:o, 1:]^T, zero columns o..ldt-1; 0 if w holds an inf or NaN."""
    if floating is float:
        return syn_sp_transpose_in_f(w, 1 + d, o, 0, d, wt, ldt)
    else:
        return syn_sp_transpose_in_d(w, 1 + d, o, 0, d, wt, ldt)


cdef inline void _transpose_out(const floating* wt, floating* w, Py_ssize_t o, Py_ssize_t d,
                                Py_ssize_t ldt) noexcept nogil:
    if floating is float:
        syn_sp_transpose_out_f(wt, ldt, 0, d, o, w, 1 + d)
    else:
        syn_sp_transpose_out_d(wt, ldt, 0, d, o, w, 1 + d)


cdef void _first_forward(_Slice* sl, const floating* xb, Py_ssize_t m, Py_ssize_t d,
                         floating* out, Py_ssize_t o1, int act, double slope, bint sparse,
                         Py_ssize_t fb,
                         Py_ssize_t cw, bint jump, floating alpha) noexcept nogil:
    """The slice's units of the batch: out[:, k0:k0+o] = f(bias + x . Wt) (softmax: later),
    after the Nesterov jump of its weights when ``jump``."""
    cdef floating* wt = <floating*>sl.wt
    cdef floating* bias = <floating*>sl.bias
    cdef floating* o_ = out + sl.k0
    cdef Py_ssize_t b, e, i
    if jump:
        _axpy(wt, <floating*>sl.dwt, 0, d * sl.vw, alpha)
        _axpy(bias, <floating*>sl.dwb, 0, sl.o, alpha)
        sl.bad = _any_bad(wt, 0, d * sl.vw)   # an inf in deltaw: no sparse path from here
        sparse = sparse and not sl.bad
    if sparse:
        b = 0
        while b < m:
            e = min(m, b + fb)
            if floating is float:
                syn_sp_fwd_block_f(xb, d, b, e, wt, sl.vw, bias, o_, o1, sl.o, cw, sl.mw,
                                   <floating*>sl.fscr)
            else:
                syn_sp_fwd_block_d(xb, d, b, e, wt, sl.vw, bias, o_, o1, sl.o, cw, sl.mw,
                                   <floating*>sl.fscr)
            b = e
    else:
        # column-major: out^T (o x m, ld o1) = Wt^T (Wt seen as vw x d, its first o rows) . x^T
        gemm(c'N', c'N', sl.o, m, d, wt, sl.vw, xb, d, o_, o1)
        for i in range(m):
            for b in range(sl.o):
                o_[i * o1 + b] = o_[i * o1 + b] + bias[b]
    if act != ACT_SOFTMAX:
        for i in range(m):
            act_row(o_ + i * o1, o_ + i * o1, sl.o, act, slope)


cdef void _first_update(_Slice* sl, const floating* xb, Py_ssize_t m, Py_ssize_t d,
                        const floating* dz, Py_ssize_t o1, bint sparse, Py_ssize_t bs,
                        int reg_kind, floating lam, floating decay,
                        const _Sgd* p) noexcept nogil:
    """The slice's units: S = x^T dz (its columns of dz), then regularize, decay and
    sgd_update of Wt and of the bias part; sl.bad = 1 if an updated weight is not finite."""
    cdef floating* wt = <floating*>sl.wt
    cdef floating* s = <floating*>sl.s
    cdef Py_ssize_t n = d * sl.vw
    cdef bint ok = 0
    sparse = sparse and not sl.bad
    _col_sums(dz + sl.k0, m, sl.o, o1, sl.acc, <floating*>sl.gb, 1)
    _sgd_block(<floating*>sl.bias, <floating*>sl.gb, <floating*>sl.dwb, <floating*>sl.gnb, 0,
               sl.o, p)
    if sparse:
        if floating is float:
            ok = syn_sp_grad_cols_f(dz + sl.k0, o1, xb, m, sl.o, d, 0, d, s, sl.vw, bs, sl.cm,
                                    <floating*>sl.gscr)
        else:
            ok = syn_sp_grad_cols_d(dz + sl.k0, o1, xb, m, sl.o, d, 0, d, s, sl.vw, bs, sl.cm,
                                    <floating*>sl.gscr)
    if not ok:
        # column-major: S (vw x d, its first o rows) = dz^T (o x m, ld o1) . x (m x d)
        gemm(c'N', c'T', sl.o, d, m, dz + sl.k0, o1, xb, d, s,
             sl.vw)
    if reg_kind != REG_NONE:
        _reg_part(s, wt, 0, n, reg_kind, lam)
    if decay != 1:
        _scale(wt, 0, n, decay)
    _sgd_block(wt, s, <floating*>sl.dwt, <floating*>sl.gnt, 0, n, p)
    sl.bad = _any_bad(wt, 0, n)
