"""NumPy twin of the per-layer kernels: same names, same signatures, same results.

The Cython modules ``dense.pyx``, ``loss.pyx`` and ``update.pyx`` implement exactly these
functions; tests compare the two on random shapes.  The lowest of the twins (it imports
NumPy, SciPy and ``checks.py`` only); ``reference.py`` gathers them all (the contract).

Conventions (SYNAPTIC.md §2.2, §4):
* one sample per row; ``x`` is ``n x d``;
* a weight matrix is ``n_out x (1 + n_in)`` with the bias in column 0;
* gradients are sums over the rows of the batch;
* every kernel writes into arrays the caller owns (``out`` arguments) and returns nothing,
  except the reductions, which return a Python float.

All array arguments are C-contiguous and share one floating dtype (float32 or float64).
Integer codes (``act``, ``kind``) are the module constants below.  A kernel that takes an
activation code also takes ``slope`` (leaky-relu's slope for z < 0, in [0, 1), default
LEAKY_SLOPE; the other activations ignore it).
"""
import math
import sys

import numpy as np

# The activation codes (ACT_*, N_ACT) and their NumPy forward and derivative: acts.TABLE.
from .acts import (  # noqa: F401
    ACT_BINARY_PROB, ACT_BINARY_THRESHOLD, ACT_BIPOLAR_THRESHOLD, ACT_ELU, ACT_LEAKY_RELU,
    ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_SOFTMAX, ACT_SOFTPLUS, ACT_TANH, LEAKY_SLOPE, N_ACT,
    check_slope, kernel_act)
from .checks import GAMMA as _GAMMA, MIX1 as _MIX1, MIX2 as _MIX2
from .checks import check_adam as _check_adam, check_dropout as _check_dropout
from .checks import check_rprop as _check_rprop, momentum_on as _momentum_on
from .checks import RPROP_ORIGINAL, RPROP_PLUS, IRPROP_MINUS, IRPROP_PLUS, N_RPROP  # noqa: F401
from .checks import dropout_key  # noqa: F401  (re-exported: layers.Dropout.key)
from .checks import output_backprop_steps as _output_backprop_steps
from .checks import fused_objective_steps as _fused_objective_steps

# Error-sum kinds (error_sum).
ERR_MISCLASSIFICATION = 0          # the original: round each unit (half up), compare whole rows
ERR_ARGMAX_MISCLASSIFICATION = 1   # argmax (last index on ties) differs from the target's
ERR_SUM_OF_SQUARES = 2             # sum (o - t)^2, no 1/2
ERR_CROSS_ENTROPY_BINARY = 3       # -sum [t==1 ? log(o+1e-30) : log((1-o)+1e-30)]
ERR_CROSS_ENTROPY_MULTIVARIATE = 4  # -sum_{t==1} log(o+1e-30)
N_ERR = 5

# Output-delta kinds (output_delta).
DELTA_DIFF = 0   # y - t: softmax + cross-entropy, sigmoid + cross-entropy
DELTA_SSE = 1    # f'(y) (y - t): the gradient of 1/2 sum (o - t)^2

# Regularization kinds (regularize).
REG_NONE = 0
REG_L1 = 1
REG_L2 = 2

_TINY = 1e-30


def set_threads(n):
    """The twin is single-threaded; it accepts the knob so both backends share one API."""
    if int(n) < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")


def _check_2d(name, a):
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")


def _check_shape(name, a, shape):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")


def _check_act(act, slope=LEAKY_SLOPE):
    """The table row of the code ``act``; ``slope`` checked (a ValueError/TypeError)."""
    row = kernel_act(act)
    check_slope(slope)
    return row


def activate(z, act, out, slope=LEAKY_SLOPE):
    """out = f(z), elementwise (softmax: per row).  ``out`` may be ``z``."""
    row = _check_act(act, slope)
    _check_2d("z", z)
    _check_shape("out", out, z.shape)
    row.forward(z, out, slope)


def dense_forward(x, w, act, out, slope=LEAKY_SLOPE):
    """out = f([1 | x] . w^T): ``x`` n x d, ``w`` o x (1 + d), ``out`` n x o."""
    _check_2d("x", x)
    _check_2d("w", w)
    if w.shape[1] != 1 + x.shape[1]:
        raise ValueError(f"w has {w.shape[1]} columns, expected 1 + {x.shape[1]} (bias + inputs)")
    _check_shape("out", out, (x.shape[0], w.shape[0]))
    np.matmul(x, w[:, 1:].T, out=out)
    out += w[:, 0]
    activate(out, act, out, slope)


def derivative(y, act, out, slope=LEAKY_SLOPE):
    """out = f'(y) expressed through the output y (SYNAPTIC.md §2.4)."""
    row = _check_act(act, slope)
    _check_shape("out", out, y.shape)
    if row.derivative is None:
        raise ValueError(f"activation code {act} has no derivative")
    row.derivative(y, out, slope)


def hidden_delta(dz, w, y, act, out, slope=LEAKY_SLOPE):
    """out = (dz . w[:, 1:]) * f'(y): the delta of the layer below ``w``.

    ``dz`` n x o (the delta of the layer above), ``w`` o x (1 + h), ``y`` n x h (the
    activity of the layer below), ``out`` n x h.
    """
    _check_2d("dz", dz)
    _check_2d("w", w)
    if dz.shape[1] != w.shape[0]:
        raise ValueError(f"dz has {dz.shape[1]} columns, w has {w.shape[0]} rows")
    _check_shape("y", y, (dz.shape[0], w.shape[1] - 1))
    _check_shape("out", out, y.shape)
    fprime = np.empty_like(y)
    derivative(y, act, fprime, slope)
    np.matmul(dz, w[:, 1:], out=out)
    out *= fprime


def output_delta(y, t, act, kind, out, slope=LEAKY_SLOPE):
    """dE/dz of the output layer: DELTA_DIFF -> y - t; DELTA_SSE -> f'(y) (y - t)."""
    _check_2d("y", y)
    _check_shape("t", t, y.shape)
    _check_shape("out", out, y.shape)
    if kind == DELTA_DIFF:
        np.subtract(y, t, out=out)
    elif kind == DELTA_SSE:
        fprime = np.empty_like(y)
        derivative(y, act, fprime, slope)
        np.subtract(y, t, out=out)
        out *= fprime
    else:
        raise ValueError(f"unknown output-delta kind {kind}")


def weight_grad(dz, x, out):
    """out = dz^T . [1 | x], summed over the rows: ``out[:, 0]`` the bias gradient."""
    _check_2d("dz", dz)
    _check_2d("x", x)
    if dz.shape[0] != x.shape[0]:
        raise ValueError(f"dz has {dz.shape[0]} rows, x has {x.shape[0]}")
    _check_shape("out", out, (dz.shape[1], 1 + x.shape[1]))
    out[:, 0] = dz.sum(axis=0, dtype=np.float64)
    np.matmul(dz.T, x, out=out[:, 1:])


def output_backprop(h, w, t, act, kind, err, hact, y, dz, g, dh, slope=LEAKY_SLOPE,
                    hslope=LEAKY_SLOPE):
    """The output layer of a dense net over all the rows of ``h`` at once; returns the error:
    y = f([1 | h] . w^T), dz its delta, g = dz^T . [1 | h], dh = the delta of the layer
    below (its activation ``hact``, with ``hslope``; None: not computed), and
    error_sum(y, t, err)."""
    if err not in range(N_ERR):
        raise ValueError(f"unknown error kind {err}")
    return _output_backprop_steps(sys.modules[__name__], h, w, t, act, kind, err, hact, y, dz,
                                  g, dh, slope, hslope)



def fused_objective(x, ws, t, acts, slopes, kind, err, y, gs):
    """A dense net of any depth over all the rows of ``x`` (layer l: weights ``ws[l]``,
    activation ``acts[l]``, leaky-relu slope ``slopes[l]``); returns the error of kind
    ``err``: y its outputs, gs[l] = Σ dE/dW of layer l (output-delta ``kind``), as
    dense_forward per hidden layer, output_backprop, then weight_grad and hidden_delta from
    the top."""
    if not 1 <= len(ws) <= 63 or not len(ws) == len(gs) == len(acts) == len(slopes):
        raise ValueError(f"fused_objective: 1 to 63 layers, as many weights ({len(ws)}), "
                         f"gradients ({len(gs)}), activations ({len(acts)}) and slopes "
                         f"({len(slopes)})")
    if err not in range(N_ERR):
        raise ValueError(f"unknown error kind {err}")
    return _fused_objective_steps(sys.modules[__name__], x, ws, t, acts, slopes, kind, err, y, gs)

def _argmax_last(a):
    """Row argmax that returns the last maximal index (Clojure max-key)."""
    return a.shape[1] - 1 - np.argmax(a[:, ::-1], axis=1)


def argmax_rows(y, out):
    """out[i] = index of the largest value of row i, the last one on ties (int64 ``out``)."""
    _check_2d("y", y)
    _check_shape("out", out, (y.shape[0],))
    out[...] = _argmax_last(y)


def error_sum(y, t, kind):
    """The sum over all rows of the per-sample error of ``kind`` (a Python float)."""
    _check_2d("y", y)
    _check_shape("t", t, y.shape)
    y64 = y.astype(np.float64)
    t64 = t.astype(np.float64)
    if kind == ERR_MISCLASSIFICATION:
        rounded = np.floor(y64 + 0.5)  # Java Math.round: half up
        return float(np.count_nonzero(np.any(rounded != t64, axis=1)))
    if kind == ERR_ARGMAX_MISCLASSIFICATION:
        return float(np.count_nonzero(_argmax_last(y64) != _argmax_last(t64)))
    if kind == ERR_SUM_OF_SQUARES:
        return float(np.sum((y64 - t64) ** 2))
    if kind == ERR_CROSS_ENTROPY_BINARY:
        # (1 - o) + 1e-30 rather than the original's 1 + 1e-30 - o, whose guard vanishes in
        # float64: the same value wherever the original is finite, and no -inf at o == 1.
        one = t64 == 1.0
        terms = np.log(np.where(one, y64, 1.0 - y64) + _TINY)
        return float(-np.sum(terms))
    if kind == ERR_CROSS_ENTROPY_MULTIVARIATE:
        one = t64 == 1.0
        return float(-np.sum(np.log(y64[one] + _TINY)))
    raise ValueError(f"unknown error kind {kind}")


def regularize(g, w, kind, lam):
    """Add the regularization derivative to the summed gradient ``g``; the bias column is exempt.

    L1 adds lam * sign(w) (sign(0) = 0); L2 adds lam * w (SYNAPTIC.md §4).
    """
    _check_shape("g", g, w.shape)
    if kind == REG_NONE:
        return
    if kind == REG_L1:
        g[:, 1:] += lam * np.sign(w[:, 1:])
    elif kind == REG_L2:
        g[:, 1:] += lam * w[:, 1:]
    else:
        raise ValueError(f"unknown regularization kind {kind}")


def add_scaled(w, v, alpha):
    """w += alpha * v (the Nesterov jump)."""
    _check_shape("v", v, w.shape)
    w += w.dtype.type(alpha) * v


def _adapt_gain(gain, d, deltaw, has_gain, ming, maxg, dt):
    """The adaptive learning rate of sgd_update and rmsprop_update, in place: with
    ``has_gain`` gain + 0.05 where d * deltaw > 0, else gain * 0.95, clipped to [ming, maxg];
    otherwise 1 (dt: w's scalar type).  Returns ``gain``."""
    if has_gain:
        up = d * deltaw > 0
        gain[...] = np.clip(np.where(up, gain + dt(0.05), gain * dt(0.95)), ming, maxg)
    else:
        gain[...] = 1
    return gain


def sgd_update(w, g, deltaw, gain, lr, inv_m, alpha, has_prev, has_gain, ming, maxg, nesterov):
    """One backprop update, in place (SYNAPTIC.md §5).

    d = -g * inv_m.  With ``gain`` (adaptive learning rate, else None): if ``has_gain`` the
    gain becomes gain + 0.05 where d * deltaw > 0, else gain * 0.95, clamped to [ming, maxg];
    otherwise it is set to 1.  dw = lr * gain * d (or lr * d).
    Plain: if ``has_prev`` and alpha != 0, dw += alpha * deltaw; then deltaw = dw, w += dw.
    Nesterov (the jump alpha * deltaw was already added to w): w += dw and
    deltaw = alpha * deltaw + dw (just dw without ``has_prev``).
    """
    _check_shape("g", g, w.shape)
    _check_shape("deltaw", deltaw, w.shape)
    dt = w.dtype.type
    d = g * dt(-inv_m)
    if gain is not None:
        _check_shape("gain", gain, w.shape)
        d *= _adapt_gain(gain, d, deltaw, has_gain, ming, maxg, dt)
    dw = d * dt(lr)
    if nesterov:
        w += dw
        if has_prev and alpha != 0:
            deltaw *= dt(alpha)
            deltaw += dw
        else:
            deltaw[...] = dw
    else:
        if has_prev and alpha != 0:
            dw += dt(alpha) * deltaw
        deltaw[...] = dw
        w += dw


# R-prop variants (rprop_update): checks.RPROP_ORIGINAL .. IRPROP_PLUS, re-exported here


def _check_update(w, **arrays):
    """Every array shaped like ``w`` and of its dtype."""
    for name, a in arrays.items():
        _check_shape(name, a, w.shape)
        if a.dtype != w.dtype:
            raise TypeError(f"{name} has dtype {a.dtype} but w has dtype {w.dtype}")


def decay_weights(w, factor):
    """w[:, 1:] *= factor: decoupled weight decay, W <- (1 - eta lambda) W; the bias is exempt."""
    _check_2d("w", w)
    w[:, 1:] *= w.dtype.type(factor)


def adam_update(w, g, m, v, vmax, lr, beta1, beta2, eps, step, scale, decay):
    """One Adam update, in place (Kingma & Ba 2015; PyTorch's order of operations).

    ``g`` times ``scale`` is the gradient (the summed gradient and 1 / batch size).  First
    ``w[:, 1:] *= decay`` (AdamW's decoupled decay, 1 - lr * weight_decay; 1 for none; the
    bias column exempt).  Then m += (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g²;
    with ``vmax`` (AMSGrad, else None) vmax = max(vmax, v) is used in place of v;
    w += -(lr / (1 - beta1^step)) * m / (sqrt(v) * (1 / sqrt(1 - beta2^step)) + eps),
    all in one pass over the arrays.
    ``step`` is this update's number, from 1.
    """
    _check_2d("w", w)
    _check_update(w, g=g, m=m, v=v, **({} if vmax is None else {"vmax": vmax}))
    step = _check_adam(lr, beta1, beta2, eps, step, decay)
    dt = w.dtype.type
    if decay != 1.0:
        w[:, 1:] *= dt(decay)
    gt = g * dt(scale)
    m += dt(1.0 - beta1) * (gt - m)
    v *= dt(beta2)
    v += dt(1.0 - beta2) * (gt * gt)
    if vmax is not None:
        np.maximum(vmax, v, out=vmax)
    denom = np.sqrt(vmax if vmax is not None else v) * dt(1.0 / math.sqrt(1.0 - beta2 ** step))
    denom += dt(eps)
    w += dt(-(lr / (1.0 - beta1 ** step))) * (m / denom)


def dropout(x, out, p, key):
    """out = x * keep / (1 - p): inverted dropout with the mask of ``key`` (checks.dropout_key).

    Element i of the row-major array is kept where the 53-bit draw ``SplitMix64(key + (i + 1)
    * GAMMA) >> 11`` is at least ``p * 2^53`` (probability 1 - p); the dropped ones are 0.
    ``out`` may be ``x``.  Applied to a delta with the same key it is the mask's backward pass.
    """
    _check_2d("x", x)
    _check_update(x, out=out)
    threshold, scale, key = _check_dropout(p, key)
    dt = x.dtype.type
    if threshold == 0:
        out[...] = x
        return
    z = np.uint64(key) + (np.arange(1, x.size + 1, dtype=np.uint64) * np.uint64(_GAMMA))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    keep = ((z >> np.uint64(11)) >= np.uint64(threshold)).reshape(x.shape)
    out[...] = np.where(keep, x * dt(scale), dt(0))


def perceptron_error(y, t, out):
    """out = sign(t - y): 1 where y < t, -1 where y > t, 0 where equal (SYNAPTIC.md §5).

    The perceptron rule's update is then ``weight_grad(out, x, dw)``: errᵀ · [1 | x], the raw sum.
    """
    _check_2d("y", y)
    _check_shape("t", t, y.shape)
    _check_shape("out", out, y.shape)
    np.sign(np.subtract(t, y), out=out)


def _clip(a, lo, hi):
    dt = a.dtype.type
    return np.clip(a, dt(lo), dt(hi))


def rprop_update(w, g, deltaw, step, gprev, mode, eta_plus, eta_minus, mins, maxs, step_init,
                 has_step, alpha, has_prev, worse):
    """One R-prop update, in place (SYNAPTIC.md §5).

    ``g`` is the summed gradient, ``deltaw`` the previous update (overwritten with this one),
    ``step`` the per-weight step sizes.  Without ``has_step`` (the first batch) every step is
    set to ``step_init`` and nothing is adapted.  Otherwise:

    * RPROP_ORIGINAL (Synaptic's Rprop-): with d = -g, the step becomes step * eta_plus where
      d * deltaw > 0, else step * eta_minus (a zero product included), clipped to [mins, maxs].
      ``gprev`` is not used (None is fine).
    * The paper variants compare g with ``gprev`` (the previous gradient as the variant keeps
      it), p = gprev * g: step * eta_plus where p > 0, step * eta_minus where p < 0 (each
      clipped to [mins, maxs]), unchanged where p == 0.
      IRPROP_MINUS: g is taken as 0 where p < 0.  RPROP_PLUS, IRPROP_PLUS: where p < 0 the
      update is -deltaw (backtracking: always for RPROP_PLUS, only if ``worse`` -- the error
      went up -- for IRPROP_PLUS; else 0) and g is taken as 0.  ``gprev`` becomes that g.

    Elsewhere the update is dw = step * sign(-g).  Momentum (RPROP_ORIGINAL and IRPROP_MINUS
    only; ``alpha`` None or 0 means none): if ``has_prev``, dw += alpha * deltaw.  Then
    deltaw = dw and w += dw.
    """
    momentum = _check_rprop(mode, gprev, alpha, has_prev)
    _check_2d("w", w)
    _check_update(w, g=g, deltaw=deltaw, step=step)
    if mode != RPROP_ORIGINAL:
        _check_update(w, gprev=gprev)
    dt = w.dtype.type
    if not has_step:
        step[...] = dt(step_init)
    if mode == RPROP_ORIGINAL:
        d = -g
        if has_step:
            up = d * deltaw > 0
            step[...] = _clip(np.where(up, step * dt(eta_plus), step * dt(eta_minus)), mins, maxs)
        dw = step * np.sign(d)
    else:
        p = gprev * g if has_step else np.zeros_like(g)
        step[...] = np.where(p > 0, _clip(step * dt(eta_plus), mins, maxs),
                             np.where(p < 0, _clip(step * dt(eta_minus), mins, maxs), step))
        flip = p < 0
        geff = np.where(flip, dt(0), g)
        dw = step * np.sign(-geff)
        if mode != IRPROP_MINUS:
            back = mode == RPROP_PLUS or worse
            dw = np.where(flip, -deltaw if back else dt(0), dw)
        gprev[...] = geff
    if momentum:
        dw += dt(alpha) * deltaw
    deltaw[...] = dw
    w += dw


def rmsprop_update(w, g, deltaw, ms, gain, lr, decay, eps, has_ms, alpha, has_prev, has_gain,
                   ming, maxg):
    """One RMSprop update, in place (SYNAPTIC.md §5).

    d = -g (the summed gradient, not divided by the batch size).  ms = d² without ``has_ms``
    (the first batch), else decay * ms + (1 - decay) * d².  The normalised step is
    n = d / sqrt(ms + eps), or d itself where sqrt(ms + eps) == 0 (the original has eps = 0).
    With ``gain`` (adaptive learning rate, else None): as sgd_update, with n in place of d.
    dw = lr * n; with momentum (``alpha`` not None/0 and ``has_prev``) dw += alpha * deltaw;
    then deltaw = dw and w += dw.
    """
    _check_2d("w", w)
    _check_update(w, g=g, deltaw=deltaw, ms=ms)
    dt = w.dtype.type
    d = -g
    dd = d * d
    if has_ms:
        ms[...] = dt(decay) * ms + dt(1.0 - decay) * dd
    else:
        ms[...] = dd
    root = np.sqrt(ms + dt(eps))
    n = np.divide(d, root, out=d.copy(), where=root != 0)
    if gain is not None:
        _check_update(w, gain=gain)
        n *= _adapt_gain(gain, n, deltaw, has_gain, ming, maxg, dt)
    dw = n * dt(lr)
    if _momentum_on(alpha, has_prev):
        dw += dt(alpha) * deltaw
    deltaw[...] = dw
    w += dw
