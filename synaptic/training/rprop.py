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
from .gradients import Gradients
from .optimizer import NUMBER, STR, Optimizer, register
from .stats import weighted_error_sum

VARIANTS = {"rprop-": _codes.RPROP_ORIGINAL, "rprop+": _codes.RPROP_PLUS,
            "irprop-": _codes.IRPROP_MINUS, "irprop+": _codes.IRPROP_PLUS}


@register
class Rprop(Optimizer):
    name = "rprop"
    doc = ("R-prop: per-weight steps driven by the sign of the gradient; variants rprop- "
           "(the original's), rprop+ (weight backtracking), irprop-, irprop+.")
    defaults = {"error_fn": "cross-entropy", "rprop": {"mins": 1e-6, "maxs": 50.0}}
    schema = {"rprop": {"mins": NUMBER, "maxs": NUMBER, "eta_plus": NUMBER, "eta_minus": NUMBER,
                        "step_init": NUMBER, "variant": STR}}
    implied = {"rprop": {"eta_plus": 1.2, "eta_minus": 0.5, "step_init": 0.01,
                         "variant": "rprop-"}}
    uses = frozenset({"momentum", "weight_decay"})
    key_docs = {"rprop": ("the R-prop section", None),
                "rprop.mins": ("the smallest step", None),
                "rprop.maxs": ("the largest step", None),
                "rprop.eta_plus": ("the step growth (> 1)", None),
                "rprop.eta_minus": ("the step shrink, in (0, 1)", None),
                "rprop.step_init": ("the first batch's step (> 0)", None),
                "rprop.variant": (f"one of {', '.join(VARIANTS)}", None)}
    weight_state = ("deltaw", "rp_step", "rp_grad")
    scalar_state = ("alpha", "rp_err")

    @classmethod
    def validate(cls, params):
        rp = cls.options(params)
        variant = rp["variant"]
        _require(variant in VARIANTS,
                 f"rprop.variant must be one of {tuple(VARIANTS)}, got {variant!r}")
        mins, maxs = rp["mins"], rp["maxs"]
        _require(0 < mins <= maxs, f"rprop needs 0 < mins <= maxs, got {mins}, {maxs}")
        _require(rp["eta_plus"] > 1, f"rprop.eta_plus must be > 1, got {rp['eta_plus']}")
        _require(0 < rp["eta_minus"] < 1,
                 f"rprop.eta_minus must be in (0, 1), got {rp['eta_minus']}")
        _require(rp["step_init"] > 0, f"rprop.step_init must be > 0, got {rp['step_init']}")
        nesterov = bool(params.get("momentum", {}).get("nesterov"))
        _require(nesterov or "momentum" not in params or variant not in ("rprop+", "irprop+"),
                 f"momentum cannot be combined with R-prop variant {variant!r}: its weight "
                 f"backtracking undoes the last update (use 'rprop-' or 'irprop-')")

    def __init__(self, net):
        super().__init__(net)
        rp = self.options(self.params)
        self.mode = VARIANTS[rp["variant"]]
        self.args = tuple(float(rp[k]) for k in ("eta_plus", "eta_minus", "mins", "maxs", "step_init"))
        self.gradients = Gradients(net, self.error_fn)
        self.error_code = losses.KINDS[losses.specific_kind(self.error_fn, net.layers[-1].act)]
        self._deltaw = self.per_weight("deltaw")
        self._step = self.per_weight("rp_step", np.empty_like)
        self._grad = (self.per_weight("rp_grad") if self.mode != _codes.RPROP_ORIGINAL
                      else [None] * len(net.weights))

    def batch_error(self, nrows, t, kern, w=None):
        """The error (+ penalty) at the weights the last gradient was computed at (``w``:
        the rows' weights, the weighted sum of the errors)."""
        out = self.gradients.workspace(nrows).acts[-1]
        if w is None:
            error = self.gradients.total(kern.error_sum(out, t, self.error_code))
        else:
            error = self.gradients.total(weighted_error_sum(out, t, self.error_code, w))
        return error + self.reg.penalty(self.net.weights)

    def step(self, x, t, kern=None, w=None):
        """Train on one batch (``w``: its per-row weights, each row's gradient scaled by its
        weight, or None): compute the update and apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        has_prev = "deltaw" in state
        has_step = "rp_step" in state
        alpha = self.next_alpha()
        grads = self.gradients.compute(x, t, kern, w=w)
        worse = False
        if self.mode == _codes.IRPROP_PLUS:
            error = self.batch_error(x.shape[0], t, kern, w)
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


def _require(condition, message):
    if not condition:
        raise ValueError(message)
