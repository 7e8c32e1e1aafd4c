# adam_update: Adam / AdamW / AMSGrad in one pass (included by update.pyx).

cdef struct _Adam:
    double scale, omb1, b2, omb2, bc2_sqrt, eps, neg_step, decay
    bint ams, decayed


cdef inline void _adam_span(floating* w, const floating* g, floating* m, floating* v,
                            floating* vmax, Py_ssize_t start, Py_ssize_t stop,
                            const _Adam* p) noexcept nogil:
    """The update of the elements [start, stop): the twin's operations in its order."""
    cdef floating scale = <floating>p.scale, omb1 = <floating>p.omb1, b2 = <floating>p.b2
    cdef floating omb2 = <floating>p.omb2, bc2 = <floating>p.bc2_sqrt, eps = <floating>p.eps
    cdef floating neg_step = <floating>p.neg_step
    cdef floating gi, mi, vi, vv, den
    cdef Py_ssize_t i
    for i in range(start, stop):
        gi = g[i] * scale
        mi = m[i] + omb1 * (gi - m[i])
        vi = v[i] * b2 + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        vv = vi
        if p.ams:  # np.maximum: NaN wins
            vv = vmax[i] if (vmax[i] > vi or vmax[i] != vmax[i]) else vi
            vmax[i] = vv
        if floating is float:
            den = sqrtf(vv) / bc2 + eps
        else:
            den = sqrt(vv) / bc2 + eps
        w[i] = w[i] + neg_step * (mi / den)


cdef inline void _adam_block(floating* w, const floating* g, floating* m, floating* v,
                             floating* vmax, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t cols,
                             const _Adam* p) noexcept nogil:
    """Elements [start, stop) of the flat arrays: the decoupled decay of every element but
    the first of each row (the bias), then the update."""
    cdef floating decay = <floating>p.decay
    cdef Py_ssize_t i = start, end
    if p.decayed:
        while i < stop:
            end = min(stop, i - i % cols + cols)  # the end of this row's part of the block
            _scale(w, i + 1 if i % cols == 0 else i, end, decay)
            i = end
    _adam_span(w, g, m, v, vmax, start, stop, p)


cdef int _adam_update(floating[:, ::1] w, const floating[:, ::1] g, floating[:, ::1] m,
                      floating[:, ::1] v, floating[:, ::1] vmax, const _Adam* p) except -1:
    cdef Py_ssize_t cols = w.shape[1], n = w.shape[0] * cols, b
    cdef Py_ssize_t nb = (n + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if n == 0:
        return 0
    cdef floating* wp = &w[0, 0]
    cdef const floating* gp = &g[0, 0]
    cdef floating* mp = &m[0, 0]
    cdef floating* vp = &v[0, 0]
    cdef floating* xp = &vmax[0, 0] if p.ams else NULL
    with nogil:
        if nb > 1 and _parallel(n):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _adam_block(wp, gp, mp, vp, xp, b * BLOCK_ELEMS,
                            min(n, b * BLOCK_ELEMS + BLOCK_ELEMS), cols, p)
        else:
            _adam_block(wp, gp, mp, vp, xp, 0, n, cols, p)
    return 0


def adam_update(w, g, m, v, vmax, double lr, double beta1, double beta2, double eps, step,
                double scale, double decay):
    """One Adam update, in place (Kingma & Ba 2015; PyTorch's order of operations).

    ``g`` times ``scale`` is the gradient (the summed gradient and 1 / batch size).  First
    ``w[:, 1:] *= decay`` (AdamW's decoupled decay, 1 - lr * weight_decay; 1 for none; the
    bias column exempt).  Then m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g²;
    with ``vmax`` (AMSGrad, else None) vmax = max(vmax, v) is used in place of v;
    w += -(lr / (1 - beta1^step)) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps).
    ``step`` is this update's number, from 1.
    """
    cdef _Adam p
    cdef int k = check_float(w, "w", 2, True)
    _check_like(k, w, g, "g", False)
    _check_like(k, w, m, "m", True)
    _check_like(k, w, v, "v", True)
    arrays, names = [g, m, v], ["g", "m", "v"]
    p.ams = vmax is not None
    if p.ams:
        _check_like(k, w, vmax, "vmax", True)
        arrays.append(vmax)
        names.append("vmax")
    _check_all_disjoint(arrays, names)
    cdef long long t = check_adam(lr, beta1, beta2, eps, step, decay)
    p.scale = scale
    p.omb1 = 1.0 - beta1
    p.b2 = beta2
    p.omb2 = 1.0 - beta2
    p.bc2_sqrt = sqrt(1.0 - beta2 ** t)
    p.eps = eps
    p.neg_step = -(lr / (1.0 - beta1 ** t))
    p.decay = decay
    p.decayed = decay != 1.0 and dim(w, 1) > 1
    if k == 0:
        _adam_update[float](w, g, m, v, vmax, &p)
    else:
        _adam_update[double](w, g, m, v, vmax, &p)
