"""Backprop (gradient descent): learning rate, adaptive per-weight gains, momentum with its
alpha schedule, Nesterov, the regularization derivative and decoupled weight decay
(SYNAPTIC.md §4, §5; see regularization.py).

The update itself is one fused kernel (``sgd_update``); this class keeps the optimiser state
in ``net.training.state`` (``deltaw``, ``lr_gain``, ``alpha``) so it can be saved and resumed.

A dense net (fully-connected layers, no stochastic units) can also train a whole epoch in one
kernel call (``epoch``, the ``sgd_epoch`` kernel): the same steps in the same order, without
Python between the batches; the training loop takes it when nobody watches the net.
"""
import numpy as np

from .. import _kernels
from . import strategy
from .gradients import Gradients, inverse_rows
from .optimizer import Optimizer, momentum_alpha, register  # noqa: F401 (momentum_alpha: old home)

@register
class Backprop(Optimizer):
    name = "backprop"
    doc = ("Gradient descent on the summed gradient divided by the batch size (the batch's "
           "weight sum, with per-row weights), with optional "
           "adaptive per-weight gains (+0.05 / x0.95), momentum and Nesterov.")
    defaults = {"error_fn": "cross-entropy", "learning_rate": {"epsilon": 0.01}}
    uses = frozenset({"learning_rate", "momentum", "weight_decay"})
    weight_state = ("deltaw", "lr_gain")
    scalar_state = ("alpha",)
    adaptive_gains = True

    def __init__(self, net):
        self.gradients = None
        super().__init__(net)
        self.gradients = Gradients(net, self.error_fn)
        lr = self.params["learning_rate"]
        self.adaptive = bool(lr.get("adaptive", False))
        self.ming = float(lr.get("ming", 0.0))
        self.maxg = float(lr.get("maxg", 0.0))
        self.nesterov = bool(self.momentum and self.momentum.get("nesterov"))
        self.reg_kind, self.reg_lambda = self.reg.code, self.reg.lam
        self._deltaw = self.per_weight("deltaw")
        self._gain = self.per_weight("lr_gain", np.ones_like)
        self.zeros = None  # the training set's fraction of zeros, when the loop knows it
        self._zeros_of = self._zeros_value = None

    def begin_epoch(self, epoch):
        super().begin_epoch(epoch)
        self.decay = 1.0 - self.epsilon * self.reg.weight_decay

    def fusable(self, bounds, weighted=False):
        """True if an epoch over these batches runs in one ``sgd_epoch`` call
        (strategy.whole_epoch: a dense net without dropout, a set without per-row weights,
        and its rule)."""
        return strategy.whole_epoch(self.net, bounds, weighted)

    def _zeros(self, x, kern):
        """The fraction of zeros of ``x`` (sampled once per training set): every call of an
        epoch, and every epoch, takes the same kernel path (watched or not: same bits).
        ``self.zeros``, when set (the loop samples a reshuffled set once, in its stored
        order), is used for every x: each epoch's order is a permutation of the same rows."""
        if self.zeros is not None:
            return self.zeros
        if self._zeros_of is not x:
            self._zeros_of, self._zeros_value = x, kern.x_zeros(x)
        return self._zeros_value

    def _alphas(self, nb):
        """α of the next ``nb`` steps (0 without momentum), the schedule's state untouched."""
        mom = self.momentum
        if mom is None:
            return np.zeros(nb)
        if "alpha_start" not in mom:
            return np.full(nb, float(mom["alpha"]))
        state = {k: v for k, v in self.net.training.state.items() if k == "alpha"}
        return np.array([momentum_alpha(mom, state) for _ in range(nb)], dtype=np.float64)

    def epoch(self, x, t, starts, stop, kern=None, errors=None, error_kind=0):
        """Train on the batches ``x[starts[i]:starts[i + 1]]`` in one kernel call; stops
        early when ``stop[0]`` becomes nonzero.  Returns the number of batches trained.
        ``errors``: each batch's error sum of kind ``error_kind`` before its step."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        nb = len(starts) - 1
        if nb <= 0:
            return 0
        alphas = self._alphas(nb)
        done = kern.sgd_epoch(x, t, starts, net.weights, self._deltaw,
                              self._gain if self.adaptive else None,
                              [layer.act_code for layer in net.layers[1:]],
                              self.gradients.delta_kind, self.epsilon, alphas,
                              "deltaw" in state, "lr_gain" in state, self.ming, self.maxg,
                              self.nesterov, self.reg_kind, self.reg_lambda, self.decay, stop,
                              self._zeros(x, kern),
                              slopes=[layer.slope for layer in net.layers[1:]],
                              errors=errors, error_kind=error_kind)
        if done:
            if self.momentum is not None and "alpha_start" in self.momentum:
                state["alpha"] = float(alphas[done - 1])
            state["deltaw"] = self._deltaw
            if self.adaptive:
                state["lr_gain"] = self._gain
        return done

    def step(self, x, t, kern=None, w=None):
        """Train on one batch (``w``: its per-row weights, or None): compute the update and
        apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        has_prev = "deltaw" in state
        has_gain = "lr_gain" in state
        alpha = self.next_alpha() or 0.0
        if self.nesterov and has_prev and alpha:
            for weights, dw in zip(net.weights, self._deltaw):
                kern.add_scaled(weights, dw, alpha)
        grads = self.gradients.compute(x, t, kern, w=w)
        # the global batch's rows when distributed; with weights, the batch's weight sum
        inv_m = inverse_rows(self.gradients.rows)
        for w, g, dw, gain in zip(net.weights, grads, self._deltaw, self._gain):
            if self.reg_kind:
                kern.regularize(g, w, self.reg_kind, self.reg_lambda)
            if self.decay != 1.0:  # decoupled: (1 - ε λ_wd) W, then the update of g(W)
                kern.decay_weights(w, self.decay)
            kern.sgd_update(w, g, dw, gain if self.adaptive else None, self.epsilon, inv_m,
                            alpha, has_prev, has_gain, self.ming, self.maxg, self.nesterov)
        state["deltaw"] = self._deltaw
        if self.adaptive:
            state["lr_gain"] = self._gain
