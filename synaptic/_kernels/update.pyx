# distutils: extra_compile_args = -ffp-contract=off -fno-math-errno
"""Weight-update kernels: regularize, add_scaled, sgd_update, decay_weights, perceptron_error,
rprop_update, rmsprop_update, adam_update (update_adam.pxi).

The compiled twin of the functions of the same names in ``reference.py`` (the contract).
Each is one fused elementwise pass that performs the twin's operations in the twin's order,
in the array dtype, with the scalars rounded to that dtype first (as NumPy does with
Python-float scalars).  ``-ffp-contract=off`` keeps a*b+c from being fused into an FMA, so
the results match the twin's bit for bit.  ``-fno-math-errno`` only drops the errno
bookkeeping of sqrt (never negative here), so RMSprop's loop vectorizes; results are unchanged.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY, sqrt, sqrtf
from libc.string cimport memset
cimport numpy as cnp

from ._common cimport *
from ._step cimport *
from .checks import check_adam, check_rprop, momentum_on

cnp.import_array()

include "_threads.pxi"


cdef inline bint _parallel(Py_ssize_t elems) noexcept nogil:
    return _num_threads > 1 and elems >= _par_light


# ---------------------------------------------------------------------------------------
# regularize

cdef int _regularize(floating[:, ::1] g, const floating[:, ::1] w, int kind,
                     double lam) except -1:
    cdef Py_ssize_t n = w.shape[0], m = w.shape[1], i
    cdef floating flam = <floating>lam
    if n == 0 or m <= 1:
        return 0
    cdef floating* gp = &g[0, 0]
    cdef const floating* wp = &w[0, 0]
    with nogil:
        if _parallel(n * m):
            for i in prange(n, schedule='static', num_threads=_num_threads):
                _reg_row(gp + i * m, wp + i * m, m, kind, flam)
        else:
            for i in range(n):
                _reg_row(gp + i * m, wp + i * m, m, kind, flam)
    return 0


def regularize(g, w, int kind, double lam):
    """Add the regularization derivative to the summed gradient ``g``; the bias column is exempt.

    L1 adds lam * sign(w) (sign(0) = 0); L2 adds lam * w (SYNAPTIC.md §4).
    """
    cdef int k = check_float(w, "w", 2, False)
    check_operand(k, w, "w", g, "g", True, dim(w, 0), dim(w, 1))
    if kind == REG_NONE:
        return
    if kind != REG_L1 and kind != REG_L2:
        raise ValueError(f"unknown regularization kind {kind}")
    check_same_or_disjoint(g, "g", w, "w")
    if k == 0:
        _regularize[float](g, w, kind, lam)
    else:
        _regularize[double](g, w, kind, lam)


# ---------------------------------------------------------------------------------------
# add_scaled

cdef int _add_scaled(floating[:, ::1] w, const floating[:, ::1] v, double alpha) except -1:
    cdef Py_ssize_t n = w.shape[0] * w.shape[1], b, nb = (n + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    cdef floating a = <floating>alpha
    if n == 0:
        return 0
    cdef floating* wp = &w[0, 0]
    cdef const floating* vp = &v[0, 0]
    with nogil:
        if nb > 1 and _parallel(n):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _axpy(wp, vp, b * BLOCK_ELEMS, min(n, b * BLOCK_ELEMS + BLOCK_ELEMS), a)
        else:
            _axpy(wp, vp, 0, n, a)
    return 0


def add_scaled(w, v, double alpha):
    """w += alpha * v (the Nesterov jump)."""
    cdef int k = check_float(w, "w", 2, True)
    check_operand(k, w, "w", v, "v", False, dim(w, 0), dim(w, 1))
    check_same_or_disjoint(w, "w", v, "v")
    if k == 0:
        _add_scaled[float](w, v, alpha)
    else:
        _add_scaled[double](w, v, alpha)


# ---------------------------------------------------------------------------------------
# the argument checks and scalars of the update rules below

cdef int _check_like(int k, object w, object a, str name, bint writable) except -1:
    """``a``: a C-contiguous 2-D array of ``w``'s shape and dtype, not overlapping ``w``."""
    check_same(k, w, "w", check_float(a, name, 2, writable), a, name)
    check_shape(a, name, dim(w, 0), dim(w, 1))
    check_disjoint(w, "w", a, name)
    return 0


cdef int _check_all_disjoint(list arrays, list names) except -1:
    cdef Py_ssize_t i, j
    for i in range(len(arrays)):
        for j in range(i + 1, len(arrays)):
            check_disjoint(arrays[i], names[i], arrays[j], names[j])
    return 0


cdef int _gain_bounds(bint adapted, ming, maxg, double* lo, double* hi) except -1:
    """[ming, maxg] for an adapted gain (None: no bound, as np.clip), else [-inf, inf]."""
    lo[0] = -INFINITY
    hi[0] = INFINITY
    if adapted:
        if ming is not None:
            lo[0] = ming
        if maxg is not None:
            hi[0] = maxg
    return 0


# ---------------------------------------------------------------------------------------
# sgd_update

cdef int _sgd_update(floating[:, ::1] w, const floating[:, ::1] g, floating[:, ::1] deltaw,
                     floating[:, ::1] gain, const _Sgd* p) except -1:
    cdef Py_ssize_t n = w.shape[0] * w.shape[1], b, nb = (n + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if n == 0:
        return 0
    cdef floating* wp = &w[0, 0]
    cdef const floating* gp = &g[0, 0]
    cdef floating* dp = &deltaw[0, 0]
    cdef floating* gainp = &gain[0, 0] if p.use_gain else NULL
    with nogil:
        if nb > 1 and _parallel(n):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _sgd_block(wp, gp, dp, gainp, b * BLOCK_ELEMS,
                           min(n, b * BLOCK_ELEMS + BLOCK_ELEMS), p)
        else:
            _sgd_block(wp, gp, dp, gainp, 0, n, p)
    return 0


def sgd_update(w, g, deltaw, gain, double lr, double inv_m, alpha, has_prev, has_gain,
               ming, maxg, nesterov):
    """One backprop update, in place (SYNAPTIC.md §5): the rule, plain or Nesterov, with or
    without the adaptive gain, as the twin's docstring (reference_dense.sgd_update) states it.

    ``alpha`` None means no momentum; ``ming`` / ``maxg`` None mean no bound (as np.clip).
    """
    cdef _Sgd p
    cdef int k = check_float(w, "w", 2, True)
    _check_like(k, w, g, "g", False)
    _check_like(k, w, deltaw, "deltaw", True)
    arrays, names = [g, deltaw], ["g", "deltaw"]
    p.use_gain = gain is not None
    if p.use_gain:
        _check_like(k, w, gain, "gain", True)
        arrays.append(gain)
        names.append("gain")
    _check_all_disjoint(arrays, names)
    p.neg_inv_m = -inv_m
    p.lr = lr
    p.adam = False
    p.has_gain = has_gain
    p.nesterov = nesterov
    p.momentum = momentum_on(alpha, has_prev)
    p.alpha = alpha if p.momentum else 0.0
    _gain_bounds(p.use_gain and p.has_gain, ming, maxg, &p.ming, &p.maxg)
    if k == 0:
        _sgd_update[float](w, g, deltaw, gain, &p)
    else:
        _sgd_update[double](w, g, deltaw, gain, &p)


# ---------------------------------------------------------------------------------------
# shared helpers of the update rules below

cdef enum:
    RPROP_ORIGINAL = 0
    RPROP_PLUS = 1
    IRPROP_MINUS = 2
    IRPROP_PLUS = 3


cdef inline floating _sign(floating v) noexcept nogil:
    """np.sign: 1, -1, 0 (for +0 and -0), NaN for NaN; two selects, so loops vectorize."""
    cdef floating one = 1
    cdef floating zero = 0
    cdef floating r = -one if v < 0 else (zero if v == 0 else v)
    return one if v > 0 else r


cdef inline floating _clip(floating v, floating lo, floating hi) noexcept nogil:
    """np.clip: the lower bound first, then the upper one (NaN stays NaN)."""
    v = lo if v < lo else v
    return hi if v > hi else v


# ---------------------------------------------------------------------------------------
# decay_weights

cdef int _decay(floating[:, ::1] w, double factor) except -1:
    cdef Py_ssize_t n = w.shape[0], m = w.shape[1], i, j
    cdef floating f = <floating>factor
    if n == 0 or m <= 1:
        return 0
    cdef floating* wp = &w[0, 0]
    with nogil:
        for i in range(n):
            _scale(wp + i * m, 1, m, f)
    return 0


def decay_weights(w, double factor):
    """w[:, 1:] *= factor: decoupled weight decay, W <- (1 - eta lambda) W; the bias is exempt."""
    cdef int k = check_float(w, "w", 2, True)
    if k == 0:
        _decay[float](w, factor)
    else:
        _decay[double](w, factor)


# ---------------------------------------------------------------------------------------
# perceptron_error

cdef int _perceptron_error(const floating[:, ::1] y, const floating[:, ::1] t,
                           floating[:, ::1] out) except -1:
    cdef Py_ssize_t n = y.shape[0] * y.shape[1], i
    if n == 0:
        return 0
    cdef const floating* yp = &y[0, 0]
    cdef const floating* tp = &t[0, 0]
    cdef floating* op = &out[0, 0]
    with nogil:
        for i in range(n):
            op[i] = _sign(tp[i] - yp[i])
    return 0


def perceptron_error(y, t, out):
    """out = sign(t - y): 1 where y < t, -1 where y > t, 0 where equal (SYNAPTIC.md §5).

    The perceptron rule's update is then ``weight_grad(out, x, dw)``: errᵀ · [1 | x], the raw sum.
    """
    cdef int k = check_float(y, "y", 2, False)
    check_operand(k, y, "y", t, "t", False, dim(y, 0), dim(y, 1))
    check_operand(k, y, "y", out, "out", True, dim(y, 0), dim(y, 1))
    check_same_or_disjoint(out, "out", y, "y")
    check_same_or_disjoint(out, "out", t, "t")
    if k == 0:
        _perceptron_error[float](y, t, out)
    else:
        _perceptron_error[double](y, t, out)


# ---------------------------------------------------------------------------------------
# rprop_update

ctypedef struct _Rprop:
    double eta_plus, eta_minus, mins, maxs, step_init, alpha
    int mode
    bint has_step, momentum, backtrack


cdef inline void _rprop_first(floating* w, const floating* g, floating* dwp, floating* step,
                              floating* gp, Py_ssize_t i0, Py_ssize_t i1,
                              const _Rprop* p) noexcept nogil:
    """The first batch: every step is step_init, nothing is adapted (p == 0 everywhere)."""
    cdef floating s = <floating>p.step_init
    cdef floating alpha = <floating>p.alpha
    cdef floating dw
    cdef Py_ssize_t i
    for i in range(i0, i1):
        step[i] = s
        dw = s * _sign(-g[i])
        if p.momentum:
            dw = dw + alpha * dwp[i]
        if p.mode != RPROP_ORIGINAL:
            gp[i] = g[i]
        dwp[i] = dw
        w[i] = w[i] + dw


cdef inline void _rprop_loop(floating* w, const floating* g, floating* dwp, floating* step,
                             floating* gp, Py_ssize_t i0, Py_ssize_t i1, const _Rprop* p,
                             int mode, bint momentum, bint backtrack) noexcept nogil:
    """The twin's operations for elements i0..i1-1 (steps adapted), in its order and rounding.

    ``mode`` is RPROP_ORIGINAL, IRPROP_MINUS or RPROP_PLUS (which also runs IRPROP_PLUS, with
    ``backtrack`` telling whether to undo the last update where the gradient changed sign).
    _rprop_block calls this with constant flags, so one loop is compiled (and vectorized) per case.
    """
    cdef floating up = <floating>p.eta_plus
    cdef floating down = <floating>p.eta_minus
    cdef floating lo = <floating>p.mins
    cdef floating hi = <floating>p.maxs
    cdef floating alpha = <floating>p.alpha
    cdef floating zero = 0
    cdef floating gi, d, s, q, dw
    cdef Py_ssize_t i
    for i in range(i0, i1):
        gi = g[i]
        s = step[i]
        if mode == RPROP_ORIGINAL:
            d = -gi
            s = _clip(s * up if d * dwp[i] > 0 else s * down, lo, hi)
            dw = s * _sign(d)
        else:
            q = gp[i] * gi
            s = _clip(s * up, lo, hi) if q > 0 else (_clip(s * down, lo, hi) if q < 0 else s)
            gi = zero if q < 0 else gi
            dw = s * _sign(-gi)
            if mode == RPROP_PLUS:
                dw = (-dwp[i] if backtrack else zero) if q < 0 else dw
            gp[i] = gi
        if momentum:
            dw = dw + alpha * dwp[i]
        step[i] = s
        dwp[i] = dw
        w[i] = w[i] + dw


cdef inline void _rprop_block(floating* w, const floating* g, floating* dwp, floating* step,
                              floating* gp, Py_ssize_t i0, Py_ssize_t i1,
                              const _Rprop* p) noexcept nogil:
    if not p.has_step:
        _rprop_first(w, g, dwp, step, gp, i0, i1, p)
    elif p.mode == RPROP_ORIGINAL:
        if p.momentum:
            _rprop_loop(w, g, dwp, step, gp, i0, i1, p, RPROP_ORIGINAL, True, False)
        else:
            _rprop_loop(w, g, dwp, step, gp, i0, i1, p, RPROP_ORIGINAL, False, False)
    elif p.mode == IRPROP_MINUS:
        if p.momentum:
            _rprop_loop(w, g, dwp, step, gp, i0, i1, p, IRPROP_MINUS, True, False)
        else:
            _rprop_loop(w, g, dwp, step, gp, i0, i1, p, IRPROP_MINUS, False, False)
    elif p.backtrack:
        _rprop_loop(w, g, dwp, step, gp, i0, i1, p, RPROP_PLUS, False, True)
    else:
        _rprop_loop(w, g, dwp, step, gp, i0, i1, p, RPROP_PLUS, False, False)


cdef int _rprop_update(floating[:, ::1] w, const floating[:, ::1] g, floating[:, ::1] deltaw,
                       floating[:, ::1] step, floating[:, ::1] gprev,
                       const _Rprop* p) except -1:
    cdef Py_ssize_t n = w.shape[0] * w.shape[1], b, nb = (n + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if n == 0:
        return 0
    cdef floating* wp = &w[0, 0]
    cdef const floating* gp = &g[0, 0]
    cdef floating* dp = &deltaw[0, 0]
    cdef floating* sp = &step[0, 0]
    cdef floating* pp = &gprev[0, 0] if p.mode != RPROP_ORIGINAL else NULL
    with nogil:
        if nb > 1 and _parallel(n):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _rprop_block(wp, gp, dp, sp, pp, b * BLOCK_ELEMS,
                             min(n, b * BLOCK_ELEMS + BLOCK_ELEMS), p)
        else:
            _rprop_block(wp, gp, dp, sp, pp, 0, n, p)
    return 0


def rprop_update(w, g, deltaw, step, gprev, int mode, double eta_plus, double eta_minus,
                 double mins, double maxs, double step_init, has_step, alpha, has_prev, worse):
    """One R-prop update, in place (SYNAPTIC.md §5): the rule of each variant ``mode`` as
    the twin's docstring (reference_dense.rprop_update) states it, bit for bit."""
    cdef _Rprop p
    p.momentum = check_rprop(mode, gprev, alpha, has_prev)
    cdef int k = check_float(w, "w", 2, True)
    _check_like(k, w, g, "g", False)
    _check_like(k, w, deltaw, "deltaw", True)
    _check_like(k, w, step, "step", True)
    arrays, names = [g, deltaw, step], ["g", "deltaw", "step"]
    if mode != RPROP_ORIGINAL:
        _check_like(k, w, gprev, "gprev", True)
        arrays.append(gprev)
        names.append("gprev")
    _check_all_disjoint(arrays, names)
    p.mode = mode
    p.eta_plus = eta_plus
    p.eta_minus = eta_minus
    p.mins = mins
    p.maxs = maxs
    p.step_init = step_init
    p.has_step = bool(has_step)
    p.alpha = alpha if p.momentum else 0.0
    p.backtrack = mode == RPROP_PLUS or (mode == IRPROP_PLUS and bool(worse))
    if mode == IRPROP_PLUS:
        p.mode = RPROP_PLUS       # the same loop, backtracking decided above
    if k == 0:
        _rprop_update[float](w, g, deltaw, step, gprev if gprev is not None else step, &p)
    else:
        _rprop_update[double](w, g, deltaw, step, gprev if gprev is not None else step, &p)


# ---------------------------------------------------------------------------------------
# rmsprop_update

ctypedef struct _Rms:
    double lr, decay, eps, alpha, ming, maxg
    bint has_ms, use_gain, has_gain, momentum


cdef inline void _rms_loop(floating* w, const floating* g, floating* dwp, floating* ms,
                           floating* gain, Py_ssize_t i0, Py_ssize_t i1, const _Rms* p,
                           int gmode, bint momentum) noexcept nogil:
    """The twin's operations for elements i0..i1-1, in its order and rounding, in one pass.

    gmode: 0 no gain, 1 gain reset to 1, 2 adapted gain.  Without ``has_ms`` the caller
    passes decay 0 and a zeroed ``ms``: 0 * 0 + 1 * d² is exactly d².
    """
    cdef floating decay = <floating>p.decay
    cdef floating keep = <floating>(1.0 - p.decay)
    cdef floating eps = <floating>p.eps
    cdef floating lr = <floating>p.lr
    cdef floating alpha = <floating>p.alpha
    cdef floating ming = <floating>p.ming
    cdef floating maxg = <floating>p.maxg
    cdef floating up = <floating>0.05
    cdef floating down = <floating>0.95
    cdef floating zero = 0
    cdef floating d, m, root, nd, gn, dw
    cdef Py_ssize_t i
    for i in range(i0, i1):
        d = -g[i]
        m = decay * ms[i] + keep * (d * d)
        ms[i] = m
        if floating is float:
            root = sqrtf(m + eps)
        else:
            root = sqrt(m + eps)
        nd = d / root if root != zero else d
        if gmode == 2:
            gn = gain[i]
            gn = gn + up if nd * dwp[i] > 0 else gn * down
            gn = _clip(gn, ming, maxg)
            gain[i] = gn
            nd = nd * gn
        elif gmode == 1:
            gain[i] = 1
        dw = nd * lr
        if momentum:
            dw = dw + alpha * dwp[i]
        dwp[i] = dw
        w[i] = w[i] + dw


cdef inline void _rms_block(floating* w, const floating* g, floating* dwp, floating* ms,
                            floating* gain, Py_ssize_t i0, Py_ssize_t i1,
                            const _Rms* p) noexcept nogil:
    cdef int gmode = (2 if p.has_gain else 1) if p.use_gain else 0
    if gmode == 0:
        if p.momentum:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 0, True)
        else:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 0, False)
    elif gmode == 1:
        if p.momentum:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 1, True)
        else:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 1, False)
    else:
        if p.momentum:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 2, True)
        else:
            _rms_loop(w, g, dwp, ms, gain, i0, i1, p, 2, False)


cdef int _rmsprop_update(floating[:, ::1] w, const floating[:, ::1] g, floating[:, ::1] deltaw,
                         floating[:, ::1] ms, floating[:, ::1] gain, const _Rms* p) except -1:
    cdef Py_ssize_t n = w.shape[0] * w.shape[1], b, nb = (n + BLOCK_ELEMS - 1) // BLOCK_ELEMS
    if n == 0:
        return 0
    cdef floating* wp = &w[0, 0]
    cdef const floating* gp = &g[0, 0]
    cdef floating* dp = &deltaw[0, 0]
    cdef floating* mp = &ms[0, 0]
    cdef floating* gainp = &gain[0, 0] if p.use_gain else NULL
    with nogil:
        if not p.has_ms:
            memset(mp, 0, n * sizeof(floating))
        if nb > 1 and _parallel(n):
            for b in prange(nb, schedule='static', num_threads=_num_threads):
                _rms_block(wp, gp, dp, mp, gainp, b * BLOCK_ELEMS,
                           min(n, b * BLOCK_ELEMS + BLOCK_ELEMS), p)
        else:
            _rms_block(wp, gp, dp, mp, gainp, 0, n, p)
    return 0


def rmsprop_update(w, g, deltaw, ms, gain, double lr, double decay, double eps, has_ms, alpha,
                   has_prev, has_gain, ming, maxg):
    """One RMSprop update, in place (SYNAPTIC.md §5): the rule (the mean square ``ms``, the
    normalised step, the gain, the momentum) as the twin's docstring
    (reference_dense.rmsprop_update) states it."""
    cdef _Rms p
    cdef int k = check_float(w, "w", 2, True)
    _check_like(k, w, g, "g", False)
    _check_like(k, w, deltaw, "deltaw", True)
    _check_like(k, w, ms, "ms", True)
    arrays, names = [g, deltaw, ms], ["g", "deltaw", "ms"]
    p.use_gain = gain is not None
    if p.use_gain:
        _check_like(k, w, gain, "gain", True)
        arrays.append(gain)
        names.append("gain")
    _check_all_disjoint(arrays, names)
    p.lr = lr
    p.has_ms = bool(has_ms)
    p.decay = decay if p.has_ms else 0.0
    p.eps = eps
    p.has_gain = bool(has_gain)
    p.momentum = momentum_on(alpha, has_prev)
    p.alpha = alpha if p.momentum else 0.0
    _gain_bounds(p.use_gain and p.has_gain, ming, maxg, &p.ming, &p.maxg)
    if k == 0:
        _rmsprop_update[float](w, g, deltaw, ms, gain, &p)
    else:
        _rmsprop_update[double](w, g, deltaw, ms, gain, &p)


include "update_adam.pxi"
