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

from .. import _kernels, losses
from .backprop import momentum_alpha
from .gradients import Gradients
from .params import DEFAULTS, IMPLIED
from .regularization import Regularizer


class RMSprop:
    def __init__(self, net):
        params = net.training.params
        rms = params.get("rmsprop", {})
        lr = params["learning_rate"]
        self.net = net
        rms = {**DEFAULTS["rmsprop"]["rmsprop"], **IMPLIED["rmsprop"], **rms}
        self.decay = float(rms["alpha"])
        self.eps = float(rms["eps"])
        self.epsilon = float(lr["epsilon"])
        self.adaptive = bool(lr.get("adaptive", False))
        self.ming = lr.get("ming")
        self.maxg = lr.get("maxg")
        self.gradients = Gradients(net, losses.check_error_fn(params["error_fn"]))
        self.momentum = params.get("momentum")
        self.reg = Regularizer(params)
        state = net.training.state
        self._deltaw = state.get("deltaw") or [np.zeros_like(w) for w in net.weights]
        self._ms = state.get("ms_grad") or [np.zeros_like(w) for w in net.weights]
        self._gain = (state.get("lr_gain") or [np.ones_like(w) for w in net.weights]
                      if self.adaptive else [None] * len(net.weights))

    def step(self, x, t, kern=None):
        """Train on one batch: compute the update and apply it to the net's weights in place."""
        kern = kern or _kernels.get_backend()
        net = self.net
        state = net.training.state
        has_prev = "deltaw" in state
        has_ms = "ms_grad" in state
        has_gain = "lr_gain" in state
        alpha = momentum_alpha(self.momentum, state)
        grads = self.gradients.compute(x, t, kern)
        self.reg.add_derivative(grads, net.weights, kern)
        for w, g, dw, ms, gain in zip(net.weights, grads, self._deltaw, self._ms, self._gain):
            self.reg.decay(w, self.epsilon, kern)
            kern.rmsprop_update(w, g, dw, ms, gain, self.epsilon, self.decay, self.eps, has_ms,
                                alpha, has_prev, has_gain, self.ming, self.maxg)
        state["deltaw"] = self._deltaw
        state["ms_grad"] = self._ms
        if self.adaptive:
            state["lr_gain"] = self._gain
