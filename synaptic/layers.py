"""Layers: shapes, weight initialisation and the kernel calls of one layer (SYNAPTIC.md §2, §3).

A layer spec is a dict as in the original: ``{"type": "input", "n": 784}`` or
``{"type": "input", "fieldsize": [28, 28]}``, ``{"type": "fully-connected", "n": 10,
"act_fn": "softmax"}``.  Keys may be spelled ``act-fn`` or ``act_fn``.
"""
import math

import numpy as np

from . import activations


def _key(name):
    return str(name).lstrip(":").replace("-", "_")


def _spec(layer, allowed, index):
    if not isinstance(layer, dict):
        raise TypeError(f"layer {index} must be a dict, got {type(layer).__name__}")
    spec = {_key(k): v for k, v in layer.items()}
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise ValueError(f"layer {index} ({spec.get('type')}): unknown key(s) {unknown}; "
                         f"allowed: {sorted(allowed)}")
    return spec


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class Input:
    """The input layer: ``n`` units, optionally with a ``fieldsize`` [w h] or [k w h]."""

    kind = "input"
    act = None

    def __init__(self, n=None, fieldsize=None):
        if fieldsize is not None:
            fs = [_positive_int(v, "fieldsize entry") for v in fieldsize]
            if len(fs) not in (2, 3):
                raise ValueError(f"fieldsize must be [w, h] or [k, w, h], got {fieldsize!r}")
            fieldsize = fs if len(fs) == 3 else [1] + fs
        if n is None:
            if fieldsize is None:
                raise ValueError("the input layer needs n or fieldsize")
            n = math.prod(fieldsize)
        self.n = _positive_int(n, "input n")
        self.fieldsize = fieldsize

    def spec(self):
        spec = {"type": "input", "n": self.n}
        if self.fieldsize is not None:
            spec["fieldsize"] = list(self.fieldsize)
        return spec


class FullyConnected:
    """``n`` units, each seeing every unit of the layer below plus a bias (column 0)."""

    kind = "fully-connected"

    def __init__(self, n, act_fn, n_in):
        self.n = _positive_int(n, "fully-connected n")
        self.act = activations.canonical(act_fn)
        self.act_code = activations.code(self.act)
        self.n_in = n_in
        self.fieldsize = None

    @property
    def weight_shape(self):
        return (self.n, 1 + self.n_in)

    @property
    def fan_in(self):
        return self.n_in

    def spec(self):
        return {"type": "fully-connected", "n": self.n, "act_fn": self.act}

    def forward(self, kern, x, w, out):
        kern.dense_forward(x, w, self.act_code, out)

    def weight_grad(self, kern, dz, x, out):
        kern.weight_grad(dz, x, out)


def build(layer_specs):
    """Instrument a list of layer dicts into layer objects (input first)."""
    if not isinstance(layer_specs, (list, tuple)):
        raise TypeError(f"layers must be a list of dicts, got {type(layer_specs).__name__}")
    if len(layer_specs) < 2:
        raise ValueError(f"a net needs an input layer and at least one more layer, "
                         f"got {len(layer_specs)} layer(s)")
    built = []
    for index, layer in enumerate(layer_specs):
        kind = _key(layer.get("type", "")) if isinstance(layer, dict) else None
        if index == 0:
            if kind != "input":
                raise ValueError(f"layer 0 must be of type 'input', got {layer!r}")
            spec = _spec(layer, {"type", "n", "fieldsize"}, index)
            built.append(Input(spec.get("n"), spec.get("fieldsize")))
        elif kind == "fully_connected":
            spec = _spec(layer, {"type", "n", "act_fn"}, index)
            if "n" not in spec or "act_fn" not in spec:
                raise ValueError(f"layer {index} (fully-connected) needs 'n' and 'act_fn'")
            built.append(FullyConnected(spec["n"], spec["act_fn"], built[-1].n))
        elif kind == "convolution":
            raise ValueError(f"layer {index}: convolution layers are not available yet")
        elif kind == "input":
            raise ValueError(f"layer {index}: only layer 0 may be an input layer")
        else:
            raise ValueError(f"layer {index}: unknown layer type {layer.get('type')!r}; "
                             "known: input, fully-connected, convolution")
    return built


def init_weights(layers, rng, dtype):
    """N(0, 1) / fan_in for every element, the bias included (SYNAPTIC.md §2.3)."""
    return [np.ascontiguousarray(rng.standard_normal(l.weight_shape) / l.fan_in, dtype=dtype)
            for l in layers[1:]]
