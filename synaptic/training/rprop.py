"""R-prop (SYNAPTIC.md §5): per-weight step sizes driven by the sign of the summed gradient.

``params["rprop"]``: ``mins`` / ``maxs`` (the step bounds, 1e-6 / 50), ``eta_plus`` /
``eta_minus`` (1.2 / 0.5), ``step_init`` (0.01, the first batch's step) and ``variant``:

``"rprop-"`` (default)
    The original's rule: the steps grow where −g has the sign of the previous update and
    shrink everywhere else (a zero product too), ``ΔW = step · sign(−g)``, then momentum.
``"rprop+"``
    Riedmiller & Braun (1993): compares g with the previous gradient (a zero product keeps
    the step); where the sign changed, the last update is undone (weight backtracking) and the
    gradient is forgotten for the next step.
``"irprop-"``
    Igel & Hüsken (2000): as Rprop+ without backtracking: where the sign changed, no step.
``"irprop+"``
    Igel & Hüsken (2000): as Rprop+, but backtracks only when the batch error went up
    (the error at the current weights, with the regularization penalty, against the
    previous step's; with mini-batches the two come from different batches).

Momentum (the original's, applied after the rule) combines with "rprop-" and "irprop-".
The update is one fused kernel (``rprop_update``).  The state lives in
``net.training.state``: ``deltaw``, ``rp_step``, and for the paper variants ``rp_grad`` (the
previous gradient) and ``rp_err`` (irprop+: the previous error), so training resumes exactly.
"""
import math

import numpy as np

from .. import _kernels, losses
from .._kernels import reference as _codes
from .backprop import momentum_alpha
from . import params
from .gradients import Gradients
from .regularization import Regularizer

VARIANTS = {"rprop-": _codes.RPROP_ORIGINAL, "rprop+": _codes.RPROP_PLUS,
            "irprop-": _codes.IRPROP_MINUS, "irprop+": _codes.IRPROP_PLUS}
DEFAULTS = {**params.DEFAULTS["rprop"]["rprop"], **params.IMPLIED["rprop"]}


class Rprop:
    def __init__(self, net):
        params = net.training.params
        rp = {**DEFAULTS, **params.get("rprop", {})}
        self.net = net
        self.mode = VARIANTS[rp["variant"]]
        self.args = tuple(float(rp[k]) for k in ("eta_plus", "eta_minus", "mins", "maxs", "step_init"))
        error_fn = losses.check_error_fn(params["error_fn"])
        self.gradients = Gradients(net, error_fn)
        self.error_code = losses.KINDS[losses.specific_kind(error_fn, net.layers[-1].act)]
        self.momentum = params.get("momentum")
        self.reg = Regularizer(params)
        state = net.training.state
        self._deltaw = state.get("deltaw") or [np.zeros_like(w) for w in net.weights]
        self._step = state.get("rp_step") or [np.empty_like(w) for w in net.weights]
        self._grad = (state.get("rp_grad") or [np.zeros_like(w) for w in net.weights]
                      if self.mode != _codes.RPROP_ORIGINAL else [None] * len(net.weights))

    def batch_error(self, nrows, t, kern):
        """The error (+ penalty) at the weights the last gradient was computed at."""
        out = self.gradients.workspace(nrows).acts[-1]
        return kern.error_sum(out, t, self.error_code) + self.reg.penalty(self.net.weights)

    def step(self, x, t, kern=None):
        """Train on one batch: compute the update and apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        has_prev = "deltaw" in state
        has_step = "rp_step" in state
        alpha = momentum_alpha(self.momentum, state)
        grads = self.gradients.compute(x, t, kern)
        worse = False
        if self.mode == _codes.IRPROP_PLUS:
            error = self.batch_error(x.shape[0], t, kern)
            worse = error > state.get("rp_err", math.inf)
            state["rp_err"] = error
        self.reg.add_derivative(grads, net.weights, kern)
        for w, g, dw, st, gp in zip(net.weights, grads, self._deltaw, self._step, self._grad):
            self.reg.decay(w, 1.0, kern)
            kern.rprop_update(w, g, dw, st, gp, self.mode, *self.args, has_step, alpha, has_prev,
                              worse)
        state["deltaw"] = self._deltaw
        state["rp_step"] = self._step
        if self.mode != _codes.RPROP_ORIGINAL:
            state["rp_grad"] = self._grad
