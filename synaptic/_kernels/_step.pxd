# Pieces of a training step shared by loss.pyx (output_delta), update.pyx (add_scaled,
# decay_weights, regularize, sgd_update) and the fused training epoch of dense.pyx (dense_epoch.pxi): ``cdef inline``,
# each module compiles its own copy, with the same operations in the same order.
from cython cimport floating
from libc.math cimport floor, log, sqrt, sqrtf

from ._common cimport *


# add_scaled, decay_weights

cdef inline void _axpy(floating* w, const floating* v, Py_ssize_t i0, Py_ssize_t i1,
                       floating a) noexcept nogil:
    """w[i0:i1] += a * v[i0:i1] (add_scaled, the Nesterov jump)."""
    cdef Py_ssize_t i
    for i in range(i0, i1):
        w[i] = w[i] + a * v[i]


cdef inline void _scale(floating* w, Py_ssize_t i0, Py_ssize_t i1, floating a) noexcept nogil:
    """w[i0:i1] *= a (decay_weights)."""
    cdef Py_ssize_t i
    for i in range(i0, i1):
        w[i] = w[i] * a


# output_delta

cdef inline void _delta_row(const floating* y, const floating* t, floating* out, Py_ssize_t m,
                            int act, int kind, double slope) noexcept nogil:
    """y - t, or (y - t) * f'(y) rounded like the twin (out may be y or t)."""
    cdef Py_ssize_t j
    cdef floating v, one = 1, s_ = <floating>slope
    if kind == DELTA_DIFF or act == ACT_LINEAR:
        for j in range(m):
            out[j] = y[j] - t[j]
    elif act == ACT_SIGMOID or act == ACT_SOFTMAX:
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (v * (one - v))
    elif act == ACT_TANH:
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (one - v * v)
    elif act == ACT_RELU:
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (1 if v > 0 else 0)
    elif act == ACT_LEAKY_RELU:
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (one if v > 0 else s_)
    elif act == ACT_ELU:
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (one if v > 0 else v + one)
    else:  # ACT_SOFTPLUS
        for j in range(m):
            v = y[j]
            out[j] = (v - t[j]) * (-f_expm1(-v))

# regularize

cdef inline void _reg_part(floating* g, const floating* w, Py_ssize_t j0, Py_ssize_t m,
                           int kind, floating lam) noexcept nogil:
    """g[j0:m] += lam * sign(w[j0:m]) (L1) or lam * w[j0:m] (L2)."""
    cdef Py_ssize_t j
    cdef floating v, s
    if kind == REG_L1:
        for j in range(j0, m):
            v = w[j]
            if v > 0:
                s = 1
            elif v < 0:
                s = -1
            elif v == 0:
                s = 0
            else:
                s = v            # np.sign(nan) is nan
            g[j] = g[j] + lam * s
    else:
        for j in range(j0, m):
            g[j] = g[j] + lam * w[j]


cdef inline void _reg_row(floating* g, const floating* w, Py_ssize_t m, int kind,
                          floating lam) noexcept nogil:
    """A row of regularize: column 0 (the bias) is exempt."""
    _reg_part(g, w, 1, m, kind, lam)


# sgd_update

ctypedef struct _Sgd:
    double neg_inv_m, lr, alpha, ming, maxg
    bint use_gain, has_gain, momentum, nesterov
    # adam: the step is Adam's (adam_update's, without AMSGrad) on deltaw = m, gain = v, the
    # weights decayed before (decay_weights); b2, omb1, omb2, and per step inv_bc2, eps,
    # neg_step as adam_update computes them
    bint adam
    double omb1, b2, omb2, inv_bc2, eps, neg_step


cdef inline void _sgd_loop(floating* w, const floating* g, floating* dwp, floating* gain,
                           Py_ssize_t i0, Py_ssize_t i1, const _Sgd* p, int gmode,
                           int mmode) noexcept nogil:
    """The twin's operations for elements i0..i1-1, in its order and rounding, in one pass.

    gmode: 0 no gain, 1 gain reset to 1, 2 adapted gain; mmode: 0 no momentum (deltaw = dw),
    1 momentum, 2 Nesterov with momentum.  _sgd_block calls this with constant modes, so
    the compiler specializes (and vectorizes) one loop per case.
    """
    cdef floating neg_inv_m = <floating>p.neg_inv_m
    cdef floating lr = <floating>p.lr
    cdef floating alpha = <floating>p.alpha
    cdef floating ming = <floating>p.ming
    cdef floating maxg = <floating>p.maxg
    cdef floating up = <floating>0.05
    cdef floating down = <floating>0.95
    cdef floating d, gn, dw
    cdef Py_ssize_t i
    for i in range(i0, i1):
        d = g[i] * neg_inv_m
        if gmode == 2:
            # gain + 0.05 where d * deltaw > 0 (the previous deltaw), else gain * 0.95;
            # then np.clip: the lower bound first, then the upper one
            gn = gain[i]
            gn = gn + up if d * dwp[i] > 0 else gn * down
            gn = ming if gn < ming else gn
            gn = maxg if gn > maxg else gn
            gain[i] = gn
            d = d * gn
        elif gmode == 1:
            gain[i] = 1          # d * 1 == d: nothing to multiply
        dw = d * lr
        if mmode == 2:
            w[i] = w[i] + dw
            dwp[i] = dwp[i] * alpha + dw
        elif mmode == 1:
            dw = dw + alpha * dwp[i]
            dwp[i] = dw
            w[i] = w[i] + dw
        else:
            dwp[i] = dw
            w[i] = w[i] + dw


cdef inline void _adam_loop(floating* w, const floating* g, floating* m, floating* v,
                            Py_ssize_t i0, Py_ssize_t i1, const _Sgd* p) noexcept nogil:
    """adam_update's operations (update_adam.pxi, decay 1) for elements i0..i1-1."""
    cdef floating scale = <floating>(-p.neg_inv_m), omb1 = <floating>p.omb1
    cdef floating b2 = <floating>p.b2, omb2 = <floating>p.omb2, inv_bc2 = <floating>p.inv_bc2
    cdef floating eps = <floating>p.eps, neg_step = <floating>p.neg_step
    cdef floating gi, mi, vi, one = 1
    cdef Py_ssize_t i
    for i in range(i0, i1):
        gi = g[i] * scale
        mi = m[i] + omb1 * (gi - m[i])
        vi = v[i] * b2 + omb2 * (gi * gi)
        m[i] = mi
        v[i] = vi
        if floating is float:
            w[i] = w[i] * one + neg_step * (mi / (sqrtf(vi) * inv_bc2 + eps))
        else:
            w[i] = w[i] * one + neg_step * (mi / (sqrt(vi) * inv_bc2 + eps))


cdef inline void _sgd_block(floating* w, const floating* g, floating* dwp, floating* gain,
                            Py_ssize_t i0, Py_ssize_t i1, const _Sgd* p) noexcept nogil:
    cdef int gmode = (2 if p.has_gain else 1) if p.use_gain else 0
    cdef int mmode = (2 if p.nesterov else 1) if p.momentum else 0
    if p.adam:
        _adam_loop(w, g, dwp, gain, i0, i1, p)
        return
    if gmode == 0:
        if mmode == 0:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 0, 0)
        elif mmode == 1:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 0, 1)
        else:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 0, 2)
    elif gmode == 1:
        if mmode == 0:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 1, 0)
        elif mmode == 1:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 1, 1)
        else:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 1, 2)
    else:
        if mmode == 0:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 2, 0)
        elif mmode == 1:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 2, 1)
        else:
            _sgd_loop(w, g, dwp, gain, i0, i1, p, 2, 2)


# argmax_rows, error_sum (loss.pyx) and output_backprop (dense.pyx)

cdef inline Py_ssize_t _argmax_last(const floating* r, Py_ssize_t m) noexcept nogil:
    """Index of the largest value, the last one on ties; m >= 1.

    Scans from the end like np.argmax(r[::-1]): a NaN counts as the maximum (the last NaN).
    """
    cdef Py_ssize_t j, best = m - 1
    cdef floating b = r[m - 1], v
    if b != b:
        return best
    for j in range(m - 2, -1, -1):
        v = r[j]
        if v > b:
            b = v
            best = j
        elif v != v:
            return j
    return best


cdef inline double _row_error(const floating* y, const floating* t, Py_ssize_t m,
                              int kind) noexcept nogil:
    """The error of one row, in double (the twin converts to float64 first)."""
    cdef Py_ssize_t j
    cdef double s = 0, yv, tv, diff
    if kind == ERR_MISCLASSIFICATION:
        for j in range(m):
            if floor(<double>y[j] + 0.5) != <double>t[j]:   # Java Math.round: half up
                return 1
        return 0
    elif kind == ERR_ARGMAX_MISCLASSIFICATION:
        return 1 if _argmax_last(y, m) != _argmax_last(t, m) else 0
    elif kind == ERR_SUM_OF_SQUARES:
        for j in range(m):
            diff = <double>y[j] - <double>t[j]
            s += diff * diff
    elif kind == ERR_CROSS_ENTROPY_BINARY:
        for j in range(m):
            yv = y[j]
            if <double>t[j] == 1.0:
                s += log(yv + 1e-30)
            else:
                s += log((1.0 - yv) + 1e-30)
    else:  # ERR_CROSS_ENTROPY_MULTIVARIATE
        for j in range(m):
            if <double>t[j] == 1.0:
                s += log(<double>y[j] + 1e-30)
    return s


cdef inline double _chunk_error(const floating* y, const floating* t, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t m, int kind) noexcept nogil:
    cdef Py_ssize_t i
    cdef double s = 0
    for i in range(r0, r1):
        s += _row_error(y + i * m, t + i * m, m, kind)
    return s
