"""Activation functions by name (SYNAPTIC.md §2.4): an explicit registry, no name lookup magic.

Each name maps to a kernel code.  ``binary-stochastic`` is the sigmoid followed by a draw
from the net's random generator; it and the threshold units are forward-only.
"""
from ._kernels import reference as _codes

STOCHASTIC = "binary-stochastic"

CODES = {
    "linear": _codes.ACT_LINEAR,
    "sigmoid": _codes.ACT_SIGMOID,
    "hyperbolic-tangent": _codes.ACT_TANH,
    "softmax": _codes.ACT_SOFTMAX,
    "relu": _codes.ACT_RELU,
    "binary-threshold": _codes.ACT_BINARY_THRESHOLD,
    "bipolar-threshold": _codes.ACT_BIPOLAR_THRESHOLD,
    "binary-prob": _codes.ACT_BINARY_PROB,
    STOCHASTIC: _codes.ACT_SIGMOID,
}
ALIASES = {"tanh": "hyperbolic-tangent", "logistic": "sigmoid"}

# Activations backprop can differentiate (through the output y).  A softmax hidden layer
# uses the original's diagonal approximation y(1 - y), which is not its true Jacobian.
DIFFERENTIABLE = frozenset({"linear", "sigmoid", "hyperbolic-tangent", "softmax", "relu"})


def canonical(name):
    """The registry spelling of an activation name; accepts ``foo_bar`` and ``:foo-bar``."""
    if not isinstance(name, str):
        raise TypeError(f"an activation is named by a string, got {type(name).__name__}")
    key = name.lstrip(":").replace("_", "-").lower()
    key = ALIASES.get(key, key)
    if key not in CODES:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(sorted(CODES))}")
    return key


def code(name):
    return CODES[canonical(name)]


def apply_stochastic(out, rng):
    """Turn sigmoid outputs into binary samples in place: 1 where u < p (u ~ U[0,1))."""
    u = rng.random(out.shape)
    out[...] = u < out
