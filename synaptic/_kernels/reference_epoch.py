"""The twin of ``sgd_epoch`` (dense.pyx, dense_epoch.pxi): a whole epoch of backprop on a dense
net, batch after batch, with the per-layer twins in the order of training/backprop.py."""
import numpy as np

from . import reference_dense as _r
from .checks import adam_steps, check_adam_epoch, check_errors  # noqa: F401 (adam_steps)
from .checks import x_zeros  # noqa: F401  (sgd_epoch's zeros, the same for both backends)


def sgd_epoch(x, t, bounds, weights, deltaw, gain, acts, delta_kind, lr, alphas, has_prev,
              has_gain, ming, maxg, nesterov, reg_kind, reg_lambda, decay, stop, zeros=None,
              slopes=None, errors=None, error_kind=0, adam=None):
    """One epoch of backprop over the batches ``x[bounds[i]:bounds[i + 1]]`` (targets ``t``),
    weights, deltaw and gain (a list, or None) updated in place; returns the batches trained.

    Each batch exactly as training/backprop.py: the Nesterov jump (``nesterov``, from the
    second step or with ``has_prev``), the forward pass (activation codes ``acts``), the
    output delta (``delta_kind``), dE/dW, then per layer regularize (``reg_kind``,
    ``reg_lambda``), decay_weights (``decay`` != 1) and sgd_update with ``lr``, 1 / rows,
    momentum ``alphas[i]`` (float64, one per batch; 0: none), ``ming`` / ``maxg``.
    ``has_prev`` / ``has_gain``: deltaw / gain hold a previous step's values (then always).
    ``stop`` (int32, one element) is read before every batch: nonzero stops the epoch.
    ``zeros`` (the compiled kernel's choice of its sparse path) changes nothing here.
    ``slopes``: the leaky-relu slope of each layer (None: LEAKY_SLOPE for all).
    ``errors`` (float64, one element per batch, or None): ``errors[i]`` is set to the
    ``error_sum`` of kind ``error_kind`` of batch i's outputs before its update (the loss
    each batch saw); the batches not trained are left as they were.
    ``adam`` (or None): Adam steps instead of SGD's -- ``(beta1, beta2, steps)``, ``steps``
    from :func:`adam_steps` (one row per batch); deltaw holds m, gain v.
    """
    _r._check_2d("x", x)
    _r._check_2d("t", t)
    weights, deltaw = list(weights), list(deltaw)
    acts = [int(a) for a in acts]
    n_layers = len(weights)
    if n_layers < 1 or len(deltaw) != n_layers or len(acts) != n_layers or (
            gain is not None and len(gain) != n_layers):
        raise ValueError(f"sgd_epoch needs as many weights, deltaw, gain and acts: got "
                         f"{n_layers}, {len(deltaw)}, {None if gain is None else len(gain)}, "
                         f"{len(acts)}")
    slopes = [_r.LEAKY_SLOPE] * n_layers if slopes is None else list(slopes)
    if len(slopes) != n_layers:
        raise ValueError(f"sgd_epoch needs one slope per layer ({n_layers}), got {len(slopes)}")
    for act, slope in zip(acts, slopes):
        _r._check_act(act, slope)
    gains = [None] * n_layers if gain is None else list(gain)
    units = x.shape[1]
    for i, (w, dw, gn) in enumerate(zip(weights, deltaw, gains)):  # all checked up front
        _r._check_2d(f"weights[{i}]", w)
        if w.shape[1] != 1 + units:
            raise ValueError(f"weights[{i}] has {w.shape[1]} columns, expected 1 + {units}")
        _r._check_shape(f"deltaw[{i}]", dw, w.shape)
        if gn is not None:
            _r._check_shape(f"gain[{i}]", gn, w.shape)
        units = w.shape[0]
    _r._check_shape("t", t, (x.shape[0], units))
    bounds = np.asarray(bounds, dtype=np.int64)
    alphas = np.asarray(alphas, dtype=np.float64)
    nb = len(bounds) - 1
    if nb < 0 or np.any(np.diff(bounds) <= 0) or bounds[0] < 0 or bounds[-1] > len(x):
        raise ValueError(f"bounds must increase strictly within [0, {len(x)}]")
    if alphas.shape != (nb,):
        raise ValueError(f"alphas must hold one value per batch ({nb}), got shape {alphas.shape}")
    if not isinstance(stop, np.ndarray) or stop.dtype != np.int32 or stop.size < 1:
        raise TypeError("stop must be a contiguous int32 numpy array of at least one element")
    check_errors(errors, error_kind, nb)
    if adam is not None:
        steps, omb1, b2, omb2 = check_adam_epoch(adam, nb, gain, nesterov, alphas)
    grads = [np.empty_like(w) for w in weights]
    rows = int(np.diff(bounds).max()) if nb > 0 else 0   # buffers once, views per batch
    acts_buf = [np.empty((rows, w.shape[0]), dtype=w.dtype) for w in weights]
    deltas_buf = [np.empty_like(a) for a in acts_buf]
    prev, hg, done = bool(has_prev), bool(has_gain), 0
    for i in range(nb):
        if stop.flat[0]:
            break
        xb, tb = x[bounds[i]:bounds[i + 1]], t[bounds[i]:bounds[i + 1]]
        alpha = float(alphas[i])
        if nesterov and prev and alpha:
            for w, dw in zip(weights, deltaw):
                _r.add_scaled(w, dw, alpha)
        m = len(xb)
        outs, deltas, a = [o[:m] for o in acts_buf], [dl[:m] for dl in deltas_buf], xb
        for w, act, slope, out in zip(weights, acts, slopes, outs):
            _r.dense_forward(a, w, act, out, slope)
            a = out
        if errors is not None:
            errors[i] = _r.error_sum(outs[-1], tb, error_kind)
        _r.output_delta(outs[-1], tb, acts[-1], delta_kind, deltas[-1], slopes[-1])
        for k in range(n_layers - 1, -1, -1):
            below = xb if k == 0 else outs[k - 1]
            _r.weight_grad(deltas[k], below, grads[k])
            if k > 0:
                _r.hidden_delta(deltas[k], weights[k], below, acts[k - 1], deltas[k - 1],
                                slopes[k - 1])
        for w, g, dw, gn in zip(weights, grads, deltaw, gains):
            if reg_kind != _r.REG_NONE:
                _r.regularize(g, w, reg_kind, reg_lambda)
            if decay != 1.0:
                _r.decay_weights(w, decay)
            if adam is not None:
                _adam_step(w, g, dw, gn, 1.0 / len(xb), omb1, b2, omb2, steps[i])
                continue
            _r.sgd_update(w, g, dw, gn, lr, 1.0 / len(xb), alpha, prev, hg, ming, maxg, nesterov)
        prev, hg, done = True, gain is not None, done + 1
    return done


def _adam_step(w, g, m, v, scale, omb1, b2, omb2, step):
    """adam_update's operations (AMSGrad off, the decay already applied) with this step's
    (inv_bc2, eps, neg_step), in the arrays' dtype."""
    f = w.dtype.type
    inv_bc2, eps, neg_step = (f(s) for s in step)
    gi = g * f(scale)
    m += f(omb1) * (gi - m)
    v *= f(b2)
    v += f(omb2) * (gi * gi)
    w += neg_step * (m / (np.sqrt(v) * inv_bc2 + eps))
