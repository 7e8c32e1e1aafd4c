"""The activations: one table, one row each (SYNAPTIC.md §2.4).

A row holds everything the Python side knows of an activation: its name and aliases, its
kernel code (the numbers of ``c/acts.h``, the compiled kernels' only definition of them,
where its C cases live), the NumPy forward and the NumPy derivative through the output y
(the twins run these), whether backprop may differentiate it, the error functions it can
be trained with as an output layer, and its options with their defaults.
``synaptic.activations`` (names, options) and ``synaptic.losses`` (pairings) read it, and
so do the twins (``reference_dense.activate``/``derivative``).

Neutral ground like ``checks.py``: it imports NumPy and SciPy only, so any twin may import
it and it imports none.  Adding an activation = a row here + its code in ``c/acts.h`` + its
C cases in ``_common.pxd`` (and ``_delta_row`` in ``_step.pxd`` if it may be an output).
"""
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

# The codes (c/acts.h has the same numbers).
ACT_LINEAR = 0
ACT_SIGMOID = 1
ACT_TANH = 2
ACT_SOFTMAX = 3
ACT_RELU = 4
ACT_BINARY_THRESHOLD = 5
ACT_BIPOLAR_THRESHOLD = 6
ACT_BINARY_PROB = 7
ACT_LEAKY_RELU = 8
ACT_ELU = 9
ACT_SOFTPLUS = 10
N_ACT = 11

# leaky-relu's slope for z < 0 when none is given (torch.nn.LeakyReLU's default)
LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0

# The error functions an output layer may pair with: cross-entropy trains with the delta
# y - t (its f' cancels: softmax, sigmoid), sum-of-squares with f'(y) (y - t).
CE, SSE = "cross-entropy", "sum-of-squares"


def check_slope(slope):
    """leaky-relu's slope: a real number in [0, 1).  Below 0 the output would no longer tell
    the sign of z (the derivative is computed from the output); 1 is linear."""
    if isinstance(slope, bool) or not isinstance(slope, (int, float, np.integer, np.floating)):
        raise TypeError(f"the leaky-relu slope must be a number, got {type(slope).__name__}")
    slope = float(slope)
    if not (math.isfinite(slope) and 0.0 <= slope < 1.0):
        raise ValueError(f"the leaky-relu slope must be a finite number in [0, 1), got {slope!r}")
    return slope


def _sigmoid(z, out, slope):
    expit(z, out=out)


def _softmax(z, out, slope):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    out[...] = e / e.sum(axis=1, keepdims=True)


def _leaky_relu(z, out, slope):
    out[...] = np.where(z > 0, z, z * slope)


def _elu(z, out, slope):
    out[...] = np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def _softplus(z, out, slope):
    # log(1 + e^z) = max(z, 0) + log1p(e^-|z|): no overflow, NaN propagates
    out[...] = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _d_one(y, out, slope):
    out[...] = 1


def _d_sigmoid(y, out, slope):     # sigmoid; softmax as a hidden layer: the diagonal
    np.multiply(y, 1 - y, out=out)  # approximation of the original


def _d_tanh(y, out, slope):
    np.subtract(1, y * y, out=out)


def _d_relu(y, out, slope):
    out[...] = y > 0


def _d_leaky_relu(y, out, slope):
    out[...] = np.where(y > 0, y.dtype.type(1), y.dtype.type(slope))


def _d_elu(y, out, slope):          # y = e^z - 1 for z <= 0: f' = e^z = y + alpha
    out[...] = np.where(y > 0, y.dtype.type(1), y + 1)


def _d_softplus(y, out, slope):     # f' = sigmoid(z) = 1 - e^-y
    np.negative(np.expm1(-y), out=out)


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    forward: object                 # forward(z, out, slope): out = f(z); out may be z
    derivative: object = None       # derivative(y, out, slope): out = f'(z) from y = f(z)
    backprop: bool = False          # backprop may train through it (it has a derivative)
    losses: tuple = ()              # error functions it trains with as an output layer
    aliases: tuple = ()
    options: dict = field(default_factory=dict)   # option -> default (layer spec keys)
    sampled: bool = False           # the forward is followed by a random draw (net.py)
    doc: str = ""


TABLE = (
    Activation("linear", ACT_LINEAR, lambda z, out, s: np.copyto(out, z), _d_one,
               backprop=True, losses=(SSE,), doc="z"),
    Activation("sigmoid", ACT_SIGMOID, _sigmoid, _d_sigmoid, backprop=True,
               losses=(CE, SSE), aliases=("logistic",), doc="1 / (1 + e^-z)"),
    Activation("hyperbolic-tangent", ACT_TANH, lambda z, out, s: np.tanh(z, out=out), _d_tanh,
               backprop=True, losses=(SSE,), aliases=("tanh",), doc="tanh z"),
    Activation("softmax", ACT_SOFTMAX, _softmax, _d_sigmoid, backprop=True, losses=(CE,),
               doc="e^z / sum e^z per row"),
    Activation("relu", ACT_RELU, lambda z, out, s: np.maximum(z, 0, out=out), _d_relu,
               backprop=True, losses=(SSE,), doc="max(z, 0)"),
    Activation("binary-threshold", ACT_BINARY_THRESHOLD,
               lambda z, out, s: np.copyto(out, z >= 0, casting="unsafe"), doc="z >= 0"),
    Activation("bipolar-threshold", ACT_BIPOLAR_THRESHOLD,
               lambda z, out, s: np.copyto(out, np.where(z >= 0, 1, -1), casting="unsafe"),
               doc="1 if z >= 0 else -1"),
    Activation("binary-prob", ACT_BINARY_PROB,
               lambda z, out, s: np.copyto(out, expit(z) >= 0.5, casting="unsafe"),
               doc="sigmoid(z) >= 0.5"),
    Activation("binary-stochastic", ACT_SIGMOID, _sigmoid, _d_sigmoid, sampled=True,
               doc="1 with probability sigmoid(z)"),
    Activation("leaky-relu", ACT_LEAKY_RELU, _leaky_relu, _d_leaky_relu, backprop=True,
               losses=(SSE,), aliases=("leaky-rectifier",), options={"slope": LEAKY_SLOPE},
               doc="z if z > 0 else slope * z"),
    Activation("elu", ACT_ELU, _elu, _d_elu, backprop=True, losses=(SSE,),
               doc="z if z > 0 else e^z - 1"),
    Activation("softplus", ACT_SOFTPLUS, _softplus, _d_softplus, backprop=True, losses=(SSE,),
               doc="log(1 + e^z)"),
)

BY_NAME = {a.name: a for a in TABLE}
ALIASES = {alias: a.name for a in TABLE for alias in a.aliases}
# the kernels' view: one row per code (binary-stochastic runs the sigmoid's kernels)
BY_CODE = {a.code: a for a in TABLE if not a.sampled}
assert sorted(BY_CODE) == list(range(N_ACT))


def kernel_act(code):
    """The row of a kernel activation code, or a ValueError."""
    try:
        row = BY_CODE.get(code)
    except TypeError:                # unhashable
        row = None
    if row is None:
        raise ValueError(f"unknown activation code {code}")
    return row
