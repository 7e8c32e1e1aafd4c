# distutils: extra_compile_args = -ffp-contract=off
"""Weight-update kernels: regularize, add_scaled, sgd_update.

The compiled twin of the functions of the same names in ``reference.py`` (the contract).
Each is one fused elementwise pass that performs the twin's operations in the twin's order,
in the array dtype, with the scalars rounded to that dtype first (as NumPy does with
Python-float scalars).  ``-ffp-contract=off`` keeps a*b+c from being fused into an FMA, so
the results match the twin's bit for bit.
"""
from cython.parallel cimport prange
from libc.math cimport INFINITY
cimport numpy as cnp
cimport openmp
from cpython.pyport cimport PY_SSIZE_T_MAX

from ._common cimport *

cnp.import_array()

cdef int _num_threads = openmp.omp_get_max_threads()
# the OpenMP loops run only if libgomp's idle threads sleep (see _common.omp_workers_sleep)
cdef bint _omp_sleeps = omp_workers_sleep()
cdef Py_ssize_t _par_light = PAR_MIN_LIGHT if _omp_sleeps else PY_SSIZE_T_MAX
cdef Py_ssize_t _par_heavy = PAR_MIN_HEAVY if _omp_sleeps else PY_SSIZE_T_MAX


def set_threads(n):
    """Set the number of OpenMP threads of every parallel loop of this module."""
    global _num_threads
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _num_threads = n


def _set_parallel_threshold(light, heavy):
    """Testing and tuning hook: the element counts from which the light / heavy passes run
    their OpenMP loops (with more than one thread); returns the previous pair."""
    global _par_light, _par_heavy
    old = (_par_light, _par_heavy)
    _par_light = light
    _par_heavy = heavy
    return old


def _parallel_config():
    """(libgomp threads sleep when idle, light threshold, heavy threshold, threads)."""
    return bool(_omp_sleeps), _par_light, _par_heavy, _num_threads


cdef inline bint _parallel(Py_ssize_t elems) noexcept nogil:
    return _num_threads > 1 and elems >= _par_light


# ---------------------------------------------------------------------------------------
# regularize

cdef inline void _reg_row(floating* g, const floating* w, Py_ssize_t m, int kind,
                          floating lam) noexcept nogil:
    """g[1:] += lam * sign(w[1:]) (L1) or lam * w[1:] (L2); column 0 (the bias) is exempt."""
    cdef Py_ssize_t j
    cdef floating v, s
    if kind == REG_L1:
        for j in range(1, m):
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
        for j in range(1, m):
            g[j] = g[j] + lam * w[j]


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
    check_same(k, w, "w", check_float(g, "g", 2, True), g, "g")
    check_shape(g, "g", dim(w, 0), dim(w, 1))
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

cdef inline void _axpy(floating* w, const floating* v, Py_ssize_t i0, Py_ssize_t i1,
                       floating a) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(i0, i1):
        w[i] = w[i] + a * v[i]


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
    check_same(k, w, "w", check_float(v, "v", 2, False), v, "v")
    check_shape(v, "v", dim(w, 0), dim(w, 1))
    check_same_or_disjoint(w, "w", v, "v")
    if k == 0:
        _add_scaled[float](w, v, alpha)
    else:
        _add_scaled[double](w, v, alpha)


# ---------------------------------------------------------------------------------------
# sgd_update

ctypedef struct _Sgd:
    double neg_inv_m, lr, alpha, ming, maxg
    bint use_gain, has_gain, momentum, nesterov


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


cdef inline void _sgd_block(floating* w, const floating* g, floating* dwp, floating* gain,
                            Py_ssize_t i0, Py_ssize_t i1, const _Sgd* p) noexcept nogil:
    cdef int gmode = (2 if p.has_gain else 1) if p.use_gain else 0
    cdef int mmode = (2 if p.nesterov else 1) if p.momentum else 0
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
    """One backprop update, in place (SYNAPTIC.md §5).

    d = -g * inv_m.  With ``gain`` (adaptive learning rate, else None): if ``has_gain`` the
    gain becomes gain + 0.05 where d * deltaw > 0, else gain * 0.95, clamped to [ming, maxg];
    otherwise it is set to 1.  dw = lr * gain * d (or lr * d).
    Plain: if ``has_prev`` and alpha != 0, dw += alpha * deltaw; then deltaw = dw, w += dw.
    Nesterov (the jump alpha * deltaw was already added to w): w += dw and
    deltaw = alpha * deltaw + dw (just dw without ``has_prev``).

    ``alpha`` None means no momentum; ``ming`` / ``maxg`` None mean no bound (as np.clip).
    """
    cdef _Sgd p
    cdef int k = check_float(w, "w", 2, True)
    check_same(k, w, "w", check_float(g, "g", 2, False), g, "g")
    check_shape(g, "g", dim(w, 0), dim(w, 1))
    check_same(k, w, "w", check_float(deltaw, "deltaw", 2, True), deltaw, "deltaw")
    check_shape(deltaw, "deltaw", dim(w, 0), dim(w, 1))
    check_disjoint(w, "w", g, "g")
    check_disjoint(w, "w", deltaw, "deltaw")
    check_disjoint(deltaw, "deltaw", g, "g")
    p.use_gain = gain is not None
    if p.use_gain:
        check_same(k, w, "w", check_float(gain, "gain", 2, True), gain, "gain")
        check_shape(gain, "gain", dim(w, 0), dim(w, 1))
        check_disjoint(gain, "gain", w, "w")
        check_disjoint(gain, "gain", g, "g")
        check_disjoint(gain, "gain", deltaw, "deltaw")
    p.neg_inv_m = -inv_m
    p.lr = lr
    p.has_gain = has_gain
    p.nesterov = nesterov
    p.momentum = bool(has_prev) and alpha is not None and alpha != 0
    p.alpha = alpha if p.momentum else 0.0
    p.ming = -INFINITY
    p.maxg = INFINITY
    if p.use_gain and p.has_gain:
        if ming is not None:
            p.ming = ming
        if maxg is not None:
            p.maxg = maxg
    if k == 0:
        _sgd_update[float](w, g, deltaw, gain, &p)
    else:
        _sgd_update[double](w, g, deltaw, gain, &p)
