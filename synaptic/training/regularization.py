"""Regularization (SYNAPTIC.md §4) and decoupled weight decay; the bias column (0) is exempt.

``params["regularization"] = {"kind": "l1" | "l2", "lambda": λ}``:

* **L2**: penalty ½·λ·Σw², derivative λ·w (the original's; they agree).
* **L1**: penalty λ·Σ|w|, derivative λ·sign(w) with sign(0) = 0.  The original pairs the
  derivative λ·sign(w) with the penalty ½·λ·Σ|w|, whose derivative is only half of it (§10.4).
  The port keeps the original's derivative -- it is what every gradient algorithm adds, and the
  §9.8 vectors -- and makes the penalty the one it is the gradient of: twice the original's
  (1.65 where the original reports 0.825 for the §9.8 weights).  Only L-BFGS uses the penalty,
  so its objective and gradient agree.  At w = 0 the original counts sign(0) as +1; the port
  takes 0, the subgradient that leaves an exactly-zero weight where it is.

The derivative is added to the **summed** gradient, so backprop's ``-(1/m)·ε`` scaling makes the
effective strength λ/m per update, as in the original.

``params["weight_decay"] = λ_wd`` is decoupled weight decay, the original's To-Do:
``W[:, 1:] ← (1 − η·λ_wd)·W[:, 1:]`` before each update (η the learning rate ε; 1 for R-prop,
which has none).  It is not part of the gradient, so momentum, gains, R-prop's signs and
RMSprop's mean squares never see it.
"""
import numpy as np

from .._kernels import reference as _codes

CODES = {"l1": _codes.REG_L1, "l2": _codes.REG_L2}


def penalty(weights, kind, lam):
    """The penalty over all weight matrices, the bias column excluded (a Python float)."""
    if kind not in CODES:
        raise ValueError(f"unknown regularization kind {kind!r}; known: {', '.join(CODES)}")
    total = 0.0
    for w in weights:
        inner = w[:, 1:]
        if kind == "l1":
            total += float(np.abs(inner).sum(dtype=np.float64))
        else:
            total += 0.5 * float(np.square(inner, dtype=np.float64).sum())
    return lam * total


def derivatives(weights, kind, lam, kern=None):
    """The penalty's derivative, one array per weight matrix (zeros in the bias column)."""
    if kind not in CODES:
        raise ValueError(f"unknown regularization kind {kind!r}; known: {', '.join(CODES)}")
    kern = kern or _codes
    out = [np.zeros_like(w) for w in weights]
    for g, w in zip(out, weights):
        kern.regularize(g, np.ascontiguousarray(w), CODES[kind], lam)
    return out


class Regularizer:
    """The regularization and weight decay of a training's params, applied in place."""

    def __init__(self, params):
        reg = params.get("regularization") or {}
        self.lam = float(reg.get("lambda", 0.0))
        self.kind = reg.get("kind") if self.lam > 0 else None
        self.code = CODES[self.kind] if self.kind else _codes.REG_NONE
        self.weight_decay = float(params.get("weight_decay", 0.0))

    def add_derivative(self, grads, weights, kern):
        """grads += the penalty's derivative (nothing without regularization)."""
        if self.code != _codes.REG_NONE:
            for g, w in zip(grads, weights):
                kern.regularize(g, w, self.code, self.lam)

    def penalty(self, weights):
        return penalty(weights, self.kind, self.lam) if self.kind else 0.0

    def decay(self, w, rate, kern):
        """W[:, 1:] *= 1 - rate * weight_decay (nothing without weight decay)."""
        if self.weight_decay > 0:
            kern.decay_weights(w, 1.0 - rate * self.weight_decay)
