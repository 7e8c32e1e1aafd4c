# adam_update: Adam / AdamW / AMSGrad in one pass (included by update.pyx).

cdef struct _Adam:
    double scale, omb1, b2, omb2, inv_bc2, eps, neg_step, decay
    bint ams, decayed


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline void _adam_span(floating* w, const floating* g, floating* m, floating* v,
                            floating* vmax, Py_ssize_t start, Py_ssize_t stop,
                            floating decay, const _Adam* p) noexcept nogil:
    """The update of the elements [start, stop), their weights decayed by ``decay`` first:
    the twin's operations in its order.  The scalars are copied to locals and the AMSGrad
    test is outside the loops, so that the stores (which might alias ``*p`` for the compiler)
    do not keep the loops from vectorizing; decay 1 leaves a weight as it is (w * 1 == w)."""
    cdef floating scale = <floating>p.scale, omb1 = <floating>p.omb1, b2 = <floating>p.b2
    cdef floating omb2 = <floating>p.omb2, inv_bc2 = <floating>p.inv_bc2
    cdef floating eps = <floating>p.eps, neg_step = <floating>p.neg_step
    cdef floating gi, mi, vi, vv, xi
    cdef Py_ssize_t i
    if p.ams:
        for i in range(start, stop):
            gi = g[i] * scale
            mi = m[i] + omb1 * (gi - m[i])
            vi = v[i] * b2 + omb2 * (gi * gi)
            m[i] = mi
            v[i] = vi
            xi = vmax[i]
            vv = xi if (xi > vi or xi != xi) else vi  # np.maximum: NaN wins
            vmax[i] = vv
            w[i] = w[i] * decay + neg_step * (mi / (_sqrt(vv) * inv_bc2 + eps))
    else:
        for i in range(start, stop):
            gi = g[i] * scale
            mi = m[i] + omb1 * (gi - m[i])
            vi = v[i] * b2 + omb2 * (gi * gi)
            m[i] = mi
            v[i] = vi
            w[i] = w[i] * decay + neg_step * (mi / (_sqrt(vi) * inv_bc2 + eps))


cdef inline void _adam_block(floating* w, const floating* g, floating* m, floating* v,
                             floating* vmax, Py_ssize_t start, Py_ssize_t stop, Py_ssize_t cols,
                             const _Adam* p) noexcept nogil:
    """Elements [start, stop) of the flat arrays, in one pass; with the decoupled decay, the
    first element of each row (the bias) is updated undecayed."""
    cdef floating decay = <floating>p.decay, one = 1
    cdef Py_ssize_t i = start, end
    if not p.decayed:
        _adam_span(w, g, m, v, vmax, start, stop, one, p)
        return
    while i < stop:
        end = min(stop, i - i % cols + cols)  # the end of this row's part of the block
        if i % cols == 0:
            _adam_span(w, g, m, v, vmax, i, i + 1, one, p)
            i += 1
        _adam_span(w, g, m, v, vmax, i, end, decay, p)
        i = end


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
        # a sqrt and a division an element: parallel from a quarter of the heavy threshold
        # (measured, 2 threads, the 79,510 weights of 784-100-10: f32 50 -> 37 us, f64 79 -> 48)
        if nb > 1 and _num_threads > 1 and n >= _par_heavy // 4:
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
    w += -(lr / (1 - beta1^step)) * m / (sqrt(v) * (1 / sqrt(1 - beta2^step)) + eps),
    all in one pass over the arrays.
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
    p.inv_bc2 = 1.0 / sqrt(1.0 - beta2 ** t)
    p.eps = eps
    p.neg_step = -(lr / (1.0 - beta1 ** t))
    p.decay = decay
    p.decayed = decay != 1.0 and dim(w, 1) > 1
    if k == 0:
        _adam_update[float](w, g, m, v, vmax, &p)
    else:
        _adam_update[double](w, g, m, v, vmax, &p)
