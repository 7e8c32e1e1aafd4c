"""RMSprop (SYNAPTIC.md §5): the summed gradient divided by the root of its running mean square.

As the original: d = −g (the summed gradient, not divided by the batch size), ``ms = d²`` on
the first batch and ``α·ms + (1 − α)·d²`` after (``rmsprop.alpha``, 0.9), the step
``d / √ms`` (``d`` itself where ``√ms`` is 0), so the first step is ±ε per weight.  The port adds
``rmsprop.eps`` (default 0, the original) inside the square root.  Then the learning rate
(fixed, or adaptive gains as backprop's, compared against the previous update), then momentum.

The update is one fused kernel (``rmsprop_update``).  The state lives in
``net.training.state``: ``deltaw``, ``ms_grad``, ``lr_gain`` (adaptive) and ``alpha`` (the
momentum schedule), so training resumes exactly.
"""
import numpy as np

from .. import _kernels
from .gradients import Gradients
from .optimizer import NUMBER, Optimizer, register


@register
class RMSprop(Optimizer):
    name = "rmsprop"
    doc = ("RMSprop: the gradient divided by the root of its running mean square, then the "
           "learning rate (fixed or adaptive) and momentum.")
    defaults = {"error_fn": "cross-entropy", "rmsprop": {"alpha": 0.9},
                "learning_rate": {"epsilon": 0.01}}
    schema = {"rmsprop": {"alpha": NUMBER, "eps": NUMBER}}
    implied = {"rmsprop": {"eps": 0.0}}
    uses = frozenset({"learning_rate", "momentum", "weight_decay"})
    key_docs = {"rmsprop": ("the RMSprop section", None),
                "rmsprop.alpha": ("the decay of the running mean square, in [0, 1)", None),
                "rmsprop.eps": ("added inside the square root (0: the original's rule)", None)}
    weight_state = ("deltaw", "ms_grad", "lr_gain")
    scalar_state = ("alpha",)
    adaptive_gains = True

    @classmethod
    def validate(cls, params):
        rms = cls.options(params)
        if not 0 <= rms["alpha"] < 1:
            raise ValueError(f"rmsprop.alpha must be in [0, 1), got {rms['alpha']}")
        if rms["eps"] < 0:
            raise ValueError(f"rmsprop.eps must be >= 0, got {rms['eps']}")

    def __init__(self, net):
        super().__init__(net)
        rms = self.options(self.params)
        lr = self.params["learning_rate"]
        self.decay = float(rms["alpha"])
        self.eps = float(rms["eps"])
        self.adaptive = bool(lr.get("adaptive", False))
        self.ming = lr.get("ming")
        self.maxg = lr.get("maxg")
        self.gradients = Gradients(net, self.error_fn)
        self._deltaw = self.per_weight("deltaw")
        self._ms = self.per_weight("ms_grad")
        self._gain = (self.per_weight("lr_gain", np.ones_like) if self.adaptive
                      else [None] * len(net.weights))

    def step(self, x, t, kern=None, w=None):
        """Train on one batch (``w``: its per-row weights, each row's gradient scaled by its
        weight, or None): compute the update and apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        has_prev = "deltaw" in state
        has_ms = "ms_grad" in state
        has_gain = "lr_gain" in state
        alpha = self.next_alpha()
        grads = self.gradients.compute(x, t, kern, w=w)
        self.reg.add_derivative(grads, net.weights, kern)
        for w, g, dw, ms, gain in zip(net.weights, grads, self._deltaw, self._ms, self._gain):
            self.reg.decay(w, self.epsilon, kern)
            kern.rmsprop_update(w, g, dw, ms, gain, self.epsilon, self.decay, self.eps, has_ms,
                                alpha, has_prev, has_gain, self.ming, self.maxg)
        state["deltaw"] = self._deltaw
        state["ms_grad"] = self._ms
        if self.adaptive:
            state["lr_gain"] = self._gain
