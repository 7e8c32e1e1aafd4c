"""Adam, AdamW and AMSGrad (Kingma & Ba 2015; Loshchilov & Hutter 2019; Reddi et al. 2018).

``training("adam", {"learning_rate": {"epsilon": 0.001}, "adam": {"beta1": 0.9, "beta2":
0.999, "eps": 1e-8, "amsgrad": False}})``.  The gradient is the batch's mean (the summed
gradient divided by the batch size, as backprop's), so a mean-reduced PyTorch loss sees the
same one; with per-row weights, the weighted sum divided by the batch's weight sum.  With ``"weight_decay": λ`` it is AdamW: ``W[:, 1:] *= 1 − ε·λ`` before each update
(decoupled, PyTorch's AdamW with the bias exempt); with ``"regularization"`` it is Adam + L2
(coupled: the derivative goes into the summed gradient, so its strength per update is λ / m,
as for every algorithm here -- PyTorch's ``Adam(weight_decay=λ / m)``).  The learning rate may
follow a schedule (schedules.py).

The update is one fused kernel (``adam_update``).  The state lives in ``net.training.state``:
``adam_m``, ``adam_v`` (and ``adam_vmax`` with AMSGrad) per layer, and ``adam_t`` (the updates
done, for the bias corrections), so training resumes exactly.

``"eps_before_correction": True`` adds ``eps`` to ``sqrt(v)`` before the bias correction
(scikit-learn's ``AdamOptimizer``, Kingma & Ba's efficient form) instead of to the corrected
root (PyTorch's): the same kernel with ``eps / sqrt(1 - beta2^t)``.
"""
import math
import numpy as np

from .. import _kernels
from .._kernels.checks import adam_steps
from . import strategy
from .backprop import Backprop
from .gradients import Gradients, inverse_rows
from .optimizer import BOOL, NUMBER, Optimizer, register


@register
class Adam(Optimizer):
    name = "adam"
    doc = ("Adam: per-weight steps from running means of the gradient and of its square, "
           "bias-corrected; with weight_decay it is AdamW (decoupled), with regularization "
           "Adam + L2 (coupled); adam.amsgrad for AMSGrad.")
    defaults = {"error_fn": "cross-entropy", "learning_rate": {"epsilon": 0.001}}
    schema = {"adam": {"beta1": NUMBER, "beta2": NUMBER, "eps": NUMBER, "amsgrad": BOOL,
                       "eps_before_correction": BOOL}}
    implied = {"adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "amsgrad": False,
                        "eps_before_correction": False}}
    uses = frozenset({"learning_rate", "weight_decay"})
    key_docs = {"adam": ("the Adam section", None),
                "adam.beta1": ("the decay of the running mean of the gradient, in [0, 1)", None),
                "adam.beta2": ("the decay of the running mean of its square, in [0, 1)", None),
                "adam.eps": ("added to the root of the second moment (>= 0)", None),
                "adam.amsgrad": ("AMSGrad: the largest second moment so far in the "
                                 "denominator", None),
                "adam.eps_before_correction": ("eps added to sqrt(v) before the bias "
                                               "correction, as scikit-learn and Kingma & "
                                               "Ba's efficient form: the step is lr * sqrt(1 - "
                                               "beta2^t) / (1 - beta1^t) * m / (sqrt(v) + eps)",
                                               None)}
    weight_state = ("adam_m", "adam_v", "adam_vmax")
    scalar_state = ("adam_t",)

    @classmethod
    def validate(cls, params):
        opts = cls.options(params)
        for key in ("beta1", "beta2"):
            if not 0 <= opts[key] < 1:
                raise ValueError(f"adam.{key} must be in [0, 1), got {opts[key]}")
        if opts["eps"] < 0:
            raise ValueError(f"adam.eps must be >= 0, got {opts['eps']}")

    def __init__(self, net):
        super().__init__(net)
        opts = self.options(self.params)
        self.beta1, self.beta2 = float(opts["beta1"]), float(opts["beta2"])
        self.eps = float(opts["eps"])
        self.amsgrad = bool(opts["amsgrad"])
        self.eps_before_correction = bool(opts["eps_before_correction"])
        self.gradients = Gradients(net, self.error_fn)
        self._m = self.per_weight("adam_m")
        self._v = self.per_weight("adam_v")
        self._vmax = self.per_weight("adam_vmax") if self.amsgrad else [None] * len(net.weights)
        self.zeros = None  # the training set's fraction of zeros, when the loop knows it
        self._zeros_of = self._zeros_value = None

    _zeros = Backprop._zeros  # the sparse-path choice, sampled once per set (as backprop's)

    def fusable(self, bounds, weighted=False):
        """True if an epoch runs in one ``sgd_epoch`` call in its Adam mode (strategy's
        rule, as backprop's: no per-row weights; AMSGrad's vmax has no place in that
        kernel)."""
        return not self.amsgrad and strategy.whole_epoch(self.net, bounds, weighted)

    def epoch(self, x, t, starts, stop, kern=None, errors=None, error_kind=0):
        """The batches ``x[starts[i]:starts[i + 1]]`` in one kernel call, each step as
        :meth:`step` computes it (to rounding); stops early when ``stop[0]`` becomes
        nonzero.  Returns the number of batches trained."""
        kern = kern or _kernels.get_backend()
        net, state = self.net, self.state
        nb = len(starts) - 1
        if nb <= 0:
            return 0
        first = int(state.get("adam_t", 0)) + 1
        steps = adam_steps(self.epsilon, self.beta1, self.beta2, self.eps, first, nb,
                           self.eps_before_correction)
        decay = 1.0 - self.epsilon * self.reg.weight_decay
        done = kern.sgd_epoch(x, t, starts, net.weights, self._m, self._v,
                              [layer.act_code for layer in net.layers[1:]],
                              self.gradients.delta_kind, self.epsilon, np.zeros(nb), False,
                              False, None, None, False, self.reg.code, self.reg.lam, decay,
                              stop, self._zeros(x, kern),
                              slopes=[layer.slope for layer in net.layers[1:]],
                              errors=errors, error_kind=error_kind,
                              adam=(self.beta1, self.beta2, steps))
        if done:
            state["adam_m"], state["adam_v"], state["adam_t"] = self._m, self._v, first + done - 1
        return done

    def step(self, x, t, kern=None, w=None):
        """Train on one batch (``w``: its per-row weights, or None): compute the update and
        apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net, state = self.net, self.state
        grads = self.gradients.compute(x, t, kern, w=w)
        self.reg.add_derivative(grads, net.weights, kern)
        step = int(state.get("adam_t", 0)) + 1
        decay = 1.0 - self.epsilon * self.reg.weight_decay
        eps = self.eps
        if self.eps_before_correction:
            # the kernel adds eps to sqrt(v / (1 - beta2^t)); sqrt(v) + eps is the same
            # denominator times 1 / sqrt(1 - beta2^t) with eps scaled by that factor
            eps = self.eps / math.sqrt(1.0 - self.beta2 ** step)
        for w, g, m, v, vmax in zip(net.weights, grads, self._m, self._v, self._vmax):
            kern.adam_update(w, g, m, v, vmax, self.epsilon, self.beta1, self.beta2, eps,
                             step, inverse_rows(self.gradients.rows), decay)
        state["adam_m"], state["adam_v"], state["adam_t"] = self._m, self._v, step
        if self.amsgrad:
            state["adam_vmax"] = self._vmax
