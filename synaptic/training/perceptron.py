"""The perceptron rule (SYNAPTIC.md §5): one layer, ``ΔW = sign(t − y)ᵀ · [1 | x]``.

The raw sum over the batch: no learning rate, no 1/m, no momentum, no regularization, and no
optimiser state (the original keeps none either).  The error is the kernel
``perceptron_error``; the sum is the layer's own weight gradient kernel, so the rule runs on any
single layer the net can build.
"""
import numpy as np

from .. import _kernels
from .optimizer import Optimizer, register


@register
class Perceptron(Optimizer):
    name = "perceptron"
    doc = ("A single layer of binary-threshold units trained by the perceptron rule (the raw "
           "sum of the misclassified samples).")
    defaults = {"error_fn": "misclassification"}

    @classmethod
    def validate(cls, params):
        if params.get("regularization"):
            raise ValueError("regularization does not apply to 'perceptron' training: "
                             "the perceptron rule has no gradient to add its derivative to")

    def __init__(self, net):
        super().__init__(net)
        if net.dropouts:
            raise ValueError("the perceptron rule trains without dropout (it has no gradient "
                             "to mask); use adam, backprop, rmsprop or rprop")
        if len(net.weights) != 1:
            raise ValueError(f"the perceptron rule trains a single layer of weights; this net "
                             f"has {len(net.weights)} (use backprop, rprop, rmsprop or lbfgs)")
        self.layer = net.layers[1]
        self.deltaw = np.empty_like(net.weights[0])
        self._buffers = {}

    def _buffers_for(self, nrows):
        buf = self._buffers.get(nrows)
        if buf is None:
            if len(self._buffers) > 4:
                self._buffers.clear()
            buf = self._buffers[nrows] = (self.net.activity_buffers(nrows),
                                          np.empty((nrows, self.layer.n), dtype=self.net.dtype))
        return buf

    def step(self, x, t, kern=None, w=None):
        """Train on one batch: W += sign(t − y)ᵀ · [1 | x], in place (``w``: per-row
        weights, each row's term scaled by its weight)."""
        kern = kern or _kernels.get_backend()
        acts, err = self._buffers_for(x.shape[0])
        y = self.net.forward_into(x, acts, kern)
        kern.perceptron_error(y, t, err)
        if w is not None:
            err *= np.asarray(w, dtype=err.dtype)[:, None]
        self.layer.weight_grad(kern, err, x, self.deltaw)
        kern.add_scaled(self.net.weights[0], self.deltaw, 1.0)
        return self.deltaw
