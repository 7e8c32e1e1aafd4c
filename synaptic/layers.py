"""Layers: shapes, weight initialisation and the kernel calls of one layer (SYNAPTIC.md §2, §3).

A layer spec is a dict as in the original: ``{"type": "input", "n": 784}`` or
``{"type": "input", "fieldsize": [28, 28]}``, ``{"type": "fully-connected", "n": 10,
"act_fn": "softmax"}``, ``{"type": "convolution", "act_fn": "hyperbolic-tangent",
"feature_map": {"size": [9, 9], "k": 3}, "pool": {"kind": "max", "size": [2, 2]}}``.
Keys may be spelled ``act-fn`` or ``act_fn``.  A convolution's ``feature_map`` may add
``"stride": [sw, sh]`` and ``"padding": "valid" | "same" | [pw, ph]``, its ``pool`` a
``"stride": [sw, sh]``; every pair lists the width first (see :class:`Convolution`).  An
activation's options are keys of the layer spec too: ``{"type": "fully-connected", "n": 10,
"act_fn": "leaky-relu", "slope": 0.2}``.

Each non-input layer runs its forward pass and its share of backprop as a few kernel calls:
``forward(kern, x, w, out, buf)``; ``weight_grad(kern, delta, x, g, buf)``; and
``input_grad(kern, delta, w, y, act, out, buf, slope)``, which turns the layer's delta into the
delta of the layer below (``y``, ``act`` and ``slope`` are that layer's output,
:attr:`fused_act` and :attr:`slope`).  A
layer's delta is dE/dz of its output units, except for a pooled convolution: with max
pooling it is dE/dz at the pooled units (the pool indices route it), with average pooling it
is dE/dy at the pooled units and :meth:`Convolution.finish_delta` spreads it over the
windows, times f'(y) before pooling.  ``buf`` holds the layer's per-batch buffers
(:meth:`buffers`): None for a fully-connected layer.
"""
import math
import os

import numpy as np

from . import activations
from ._kernels import reference as _codes
from .sparse import CsrRows


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


def _activation(layer, act_fn, options, where):
    """Set the layer's activation: its name, kernel code, options and leaky-relu slope."""
    layer.act = activations.canonical(act_fn)
    layer.act_code = activations.code(layer.act)
    layer.options = activations.options(layer.act, options or {}, where)
    layer.slope = layer.options.get("slope", _codes.LEAKY_SLOPE)


class Input:
    """The input layer: ``n`` units, optionally with a ``fieldsize`` [w h] or [k w h]."""

    kind = "input"
    dropout = None  # a Dropout on this layer's output (build sets it)
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


def forward(kern, x, w, act, out, slope=_codes.LEAKY_SLOPE):
    """A fully-connected layer's forward pass: ``dense_forward``, or ``csr_forward`` when the
    input ``x`` is sparse (CsrRows: a first layer on a sparse data set)."""
    if isinstance(x, CsrRows):
        kern.csr_forward(x.data, x.indices, x.indptr, w, act, out, slope)
    else:
        kern.dense_forward(x, w, act, out, slope)


def weight_grad(kern, dz, x, out):
    """A fully-connected layer's weight gradient: ``weight_grad`` or, on a sparse input,
    ``csr_weight_grad``."""
    if isinstance(x, CsrRows):
        kern.csr_weight_grad(dz, x.data, x.indices, x.indptr, out)
    else:
        kern.weight_grad(dz, x, out)


class FullyConnected:
    """``n`` units, each seeing every unit of the layer below plus a bias (column 0)."""

    kind = "fully-connected"
    dropout = None  # a Dropout on this layer's output (build sets it)

    def __init__(self, n, act_fn, n_in, options=None, index=None):
        self.n = _positive_int(n, "fully-connected n")
        where = f"layer {index} (fully-connected)" if index is not None else "fully-connected layer"
        _activation(self, act_fn, options, where)
        self.n_in = n_in
        self.fieldsize = None

    @property
    def weight_shape(self):
        return (self.n, 1 + self.n_in)

    @property
    def fan_in(self):
        return self.n_in

    @property
    def fused_act(self):
        """The activation whose derivative the layer above applies to this layer's delta."""
        return self.act_code

    def spec(self):
        return {"type": "fully-connected", "n": self.n, "act_fn": self.act, **self.options}

    def buffers(self, nrows, dtype, backward=False, threads=None):
        return None

    def forward(self, kern, x, w, out, buf=None):
        forward(kern, x, w, self.act_code, out, self.slope)

    def forward_sampled(self, kern, x, w, out, buf, rng):
        """The binary-stochastic forward pass: sigmoid, then a draw per unit."""
        forward(kern, x, w, self.act_code, out)
        activations.apply_stochastic(out, rng)

    def finish_delta(self, kern, delta, buf=None):
        pass

    def weight_grad(self, kern, dz, x, out, buf=None):
        weight_grad(kern, dz, x, out)

    def input_grad(self, kern, dz, w, y, act, out, buf=None, slope=_codes.LEAKY_SLOPE):
        kern.hidden_delta(dz, w, y, act, out, slope)


POOL_KINDS = {"max": _codes.POOL_MAX, "avg": _codes.POOL_AVG}
POOL_NAMES = {v: k for k, v in POOL_KINDS.items()}


class ConvBuffers:
    """A convolution layer's per-batch buffers, allocated once per batch size and reused.

    ``idx`` the max-pool indices (int32); ``pre`` the activities before pooling (average
    pooling when training, and a sampled pooled layer); ``dz_pre`` dE/dz before average
    pooling; ``work`` the kernels' scratch (im2col, per-thread, partial gradients).
    """

    def __init__(self, idx, pre, dz_pre, work):
        self.idx, self.pre, self.dz_pre, self.work = idx, pre, dz_pre, work


def _pair(value, what):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{what} must be a pair [w, h], got {value!r}")
    return [_positive_int(v, f"{what} entry") for v in value]


PADDINGS = ("valid", "same")


def _same_padding(size, f, stride):
    """TensorFlow's "same": out = ceil(size / stride), the total padding
    max((out - 1) * stride + f - size, 0), the smaller half before, the larger after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + f - size, 0)
    return total // 2, total - total // 2


def _padding(value, fw, fh, w_in, h_in, sw, sh, where):
    """(top, bottom, left, right) zero rows/columns of a feature_map ``padding``."""
    if isinstance(value, str):
        name = value.lstrip(":").lower()
        if name not in PADDINGS:
            raise ValueError(f"{where}: unknown padding {value!r}; known: 'valid', 'same' or "
                             "a pair [pw, ph]")
        if name == "valid":
            return 0, 0, 0, 0
        return _same_padding(h_in, fh, sh) + _same_padding(w_in, fw, sw)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{where}: padding must be 'valid', 'same' or a pair [pw, ph], got "
                        f"{type(value).__name__} {value!r}")
    if len(value) != 2:
        raise ValueError(f"{where}: padding must be a pair [pw, ph], got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{where}: padding entries must be integers >= 0, got {value!r}")
    pw, ph = int(value[0]), int(value[1])
    if pw > fw - 1 or ph > fh - 1:
        raise ValueError(f"{where}: padding {[pw, ph]} is larger than the kernel size - 1 "
                         f"({[fw - 1, fh - 1]} for a {fw}x{fh} kernel)")
    return ph, ph, pw, pw


class Convolution:
    """``k`` feature maps, each an fw x fh kernel over all the channels of the layer below
    (cross-correlation, one bias per map), then the activation, then an optional max or
    average pooling (SYNAPTIC.md §2.1, §3).

    ``below`` is the instrumented layer below (its ``fieldsize`` [k w h]).  The spec's
    conventions (every pair is [width, height], as ``size`` and ``fieldsize``):

    * ``feature_map = {"size": [fw, fh], "k": K, "stride": [sw, sh], "padding": p}``;
      ``stride`` (default [1, 1]) is the step of the kernel across and down; ``padding``
      (default ``"valid"``: none) adds zeros around the field: ``[pw, ph]`` adds pw zero
      columns left and right and ph zero rows above and below (PyTorch's ``padding=``;
      each at most the kernel size - 1); ``"same"`` is TensorFlow's rule: the map is
      ``ceil(w / sw) x ceil(h / sh)``, the total padding along an axis
      ``max((out - 1) * s + f - size, 0)``, the smaller half before (left/top), the
      larger after.  The conv map is ``wc = (w + pl + pr - fw) // sw + 1`` by
      ``hc = (h + pt + pb - fh) // sh + 1`` (valid, stride 1: ``w - fw + 1`` by
      ``h - fh + 1``); the kernel must fit the padded field.
    * ``pool = {"kind": "max" | "avg", "size": [pw, ph], "stride": [sw, sh]}``: without
      ``stride`` the windows tile the map and must divide it (the original's rule, wc/pw
      by hc/ph); with ``stride`` window (i, j) starts at row i*sh, column j*sw, windows
      may overlap, and the pooled map is ``(wc - pw) // sw + 1`` by ``(hc - ph) // sh + 1``
      (PyTorch's floor mode, no padding; the window must fit the map).  Max pooling keeps
      the first maximum of each window; through overlapping windows the gradients add.

    The layer's own fieldsize is ``[k, wo, ho]``, the pooled (or conv) map.  Defaults (stride
    1, valid, no pool stride) give the original layer, bit for bit; the kernels then get the
    short ``geom = (k_in, h, w, fh, fw)`` and ``pool = (kind, ph, pw)``, otherwise the long
    forms ``(k_in, h, w, fh, fw, sh, sw, pt, pb, pl, pr)`` and ``(kind, ph, pw, sh, sw)``
    (reference_conv.py; the kernels list the height first).
    """

    kind = "convolution"
    dropout = None  # a Dropout on this layer's output (build sets it)

    def __init__(self, act_fn, feature_map, below, pool=None, index=None, options=None):
        where = f"layer {index} (convolution)" if index is not None else "convolution layer"
        _activation(self, act_fn, options, where)
        if below.fieldsize is None:
            raise ValueError(f"{where} must follow the input layer (given a fieldsize) or another "
                             f"convolution layer: a {below.kind} layer has no fieldsize")
        k_in, w_in, h_in = below.fieldsize
        if below.n != k_in * w_in * h_in:
            raise ValueError(f"{where}: the layer below has n = {below.n} but fieldsize "
                             f"{below.fieldsize} ({k_in * w_in * h_in} units)")
        fmap = {_key(k): v for k, v in _dict(feature_map, f"{where}: feature_map").items()}
        unknown = sorted(set(fmap) - {"size", "k", "stride", "padding"})
        if unknown or "size" not in fmap or "k" not in fmap:
            raise ValueError(f"{where}: feature_map must be {{size: [fw, fh], k: K}} (optional "
                             f"stride: [sw, sh], padding: valid|same|[pw, ph]), got "
                             f"{feature_map!r}")
        fw, fh = _pair(fmap["size"], f"{where}: feature_map size")
        self.maps = _positive_int(fmap["k"], f"{where}: feature_map k")
        # the spec's optional keys as given (spec() writes them back), normalised
        self._fmap_extra = {}
        sw = sh = 1
        if "stride" in fmap:
            sw, sh = _pair(fmap["stride"], f"{where}: feature_map stride")
            self._fmap_extra["stride"] = [sw, sh]
        pt = pb = pl = pr = 0
        if "padding" in fmap:
            padding = fmap["padding"]
            pt, pb, pl, pr = _padding(padding, fw, fh, w_in, h_in, sw, sh, where)
            self._fmap_extra["padding"] = (padding.lstrip(":").lower() if isinstance(padding, str)
                                           else [int(v) for v in padding])
        if fw > w_in + pl + pr or fh > h_in + pt + pb:
            raise ValueError(f"{where}: a {fw}x{fh} kernel does not fit the {w_in}x{h_in} "
                             "field below" + (f" padded to {w_in + pl + pr}x{h_in + pt + pb}"
                                              if pt + pb + pl + pr else ""))
        self.stride, self.padding = (sh, sw), (pt, pb, pl, pr)
        if (sh, sw) == (1, 1) and not any(self.padding):
            self.geom = (k_in, h_in, w_in, fh, fw)
        else:
            self.geom = (k_in, h_in, w_in, fh, fw, sh, sw, pt, pb, pl, pr)
        self.hc = (h_in + pt + pb - fh) // sh + 1
        self.wc = (w_in + pl + pr - fw) // sw + 1
        self.pool_kind, self.ph, self.pw = _codes.POOL_NONE, 1, 1
        self.pool_stride = None
        ho, wo = self.hc, self.wc
        if pool is not None:
            spec = {_key(k): v for k, v in _dict(pool, f"{where}: pool").items()}
            unknown = sorted(set(spec) - {"kind", "size", "stride"})
            if unknown or "size" not in spec:
                raise ValueError(f"{where}: pool must be {{kind: max|avg, size: [pw, ph]}} "
                                 f"(optional stride: [sw, sh]), got {pool!r}")
            name = str(spec.get("kind", "max")).lstrip(":").lower()
            if name not in POOL_KINDS:
                raise ValueError(f"{where}: unknown pool kind {spec.get('kind')!r}; "
                                 "known: max, avg")
            self.pool_kind = POOL_KINDS[name]
            self.pw, self.ph = _pair(spec["size"], f"{where}: pool size")
            if "stride" in spec:
                psw, psh = _pair(spec["stride"], f"{where}: pool stride")
                self.pool_stride = (psh, psw)
                if self.pw > self.wc or self.ph > self.hc:
                    raise ValueError(f"{where}: the {self.pw}x{self.ph} pool does not fit the "
                                     f"{self.wc}x{self.hc} conv map")
                ho, wo = (self.hc - self.ph) // psh + 1, (self.wc - self.pw) // psw + 1
            else:
                if self.wc % self.pw or self.hc % self.ph:
                    raise ValueError(f"{where}: the {self.pw}x{self.ph} pool does not divide "
                                     f"the {self.wc}x{self.hc} conv map ({w_in}x{h_in} field, "
                                     f"{fw}x{fh} kernel); give the pool a stride for "
                                     "windows that need not tile the map")
                ho, wo = self.hc // self.ph, self.wc // self.pw
        self.fieldsize = [self.maps, wo, ho]
        self.n = math.prod(self.fieldsize)
        self.n_in = below.n
        if self.maps * self.hc * self.wc > 2**31 - 1:
            raise ValueError(f"{where}: the conv map is too large (more than 2^31 units)")

    @property
    def weight_shape(self):
        k_in, _, _, fh, fw = self.geom[:5]
        return (self.maps, 1 + k_in * fh * fw)

    @property
    def fan_in(self):
        k_in, _, _, fh, fw = self.geom[:5]
        return k_in * fh * fw

    @property
    def pool(self):
        if self.pool_stride is None:
            return (self.pool_kind, self.ph, self.pw)
        return (self.pool_kind, self.ph, self.pw) + self.pool_stride

    @property
    def map_shape(self):
        """(K, hc, wc): the maps before pooling."""
        return (self.maps, self.hc, self.wc)

    @property
    def fused_act(self):
        # with max pooling f'(pooled y) is f' at the maximum; an average needs f' of every
        # element of the window, applied by finish_delta
        return _codes.ACT_LINEAR if self.pool_kind == _codes.POOL_AVG else self.act_code

    def spec(self):
        k_in, _, _, fh, fw = self.geom[:5]
        spec = {"type": "convolution", "act_fn": self.act, **self.options,
                "feature_map": {"size": [fw, fh], "k": self.maps}}
        for key, value in self._fmap_extra.items():
            spec["feature_map"][key] = list(value) if isinstance(value, list) else value
        if self.pool_kind != _codes.POOL_NONE:
            spec["pool"] = {"kind": POOL_NAMES[self.pool_kind], "size": [self.pw, self.ph]}
            if self.pool_stride is not None:
                spec["pool"]["stride"] = [self.pool_stride[1], self.pool_stride[0]]
        return spec

    def buffers(self, nrows, dtype, backward=False, threads=None):
        pre_units = self.maps * self.hc * self.wc
        pooled = self.pool_kind != _codes.POOL_NONE
        avg = self.pool_kind == _codes.POOL_AVG
        sampled = self.act == activations.STOCHASTIC and pooled
        idx = (np.empty((nrows, self.n), np.int32) if self.pool_kind == _codes.POOL_MAX
               else None)
        pre = np.empty((nrows, pre_units), dtype) if (avg and backward) or sampled else None
        dz_pre = np.empty((nrows, pre_units), dtype) if avg and backward else None
        threads = threads or os.cpu_count() or 1
        work = np.empty(_codes.conv_work_size(self.geom, self.maps, threads), dtype)
        return ConvBuffers(idx, pre, dz_pre, work)

    def forward(self, kern, x, w, out, buf):
        kern.conv_forward(x, w, self.geom, self.act_code, self.pool, out, buf.idx, buf.pre,
                          buf.work, self.slope)

    def forward_sampled(self, kern, x, w, out, buf, rng):
        """Binary-stochastic units: the draw happens before pooling, as in the original."""
        if self.pool_kind == _codes.POOL_NONE:
            kern.conv_forward(x, w, self.geom, self.act_code, self.pool, out, None, None, buf.work)
            activations.apply_stochastic(out, rng)
            return
        pre = buf.pre
        kern.conv_forward(x, w, self.geom, self.act_code, (_codes.POOL_NONE, 1, 1), pre, None,
                          None, buf.work)
        activations.apply_stochastic(pre, rng)
        if self.pool_kind == _codes.POOL_MAX:
            kern.max_pool(pre, self.map_shape, self.ph, self.pw, out, buf.idx, self.pool_stride)
        else:
            kern.avg_pool(pre, self.map_shape, self.ph, self.pw, out, self.pool_stride)

    def finish_delta(self, kern, delta, buf):
        """Average pooling: dE/dz before pooling = spread(delta) / window * f'(y)."""
        if self.pool_kind == _codes.POOL_AVG:
            kern.avg_pool_backward(delta, self.map_shape, self.ph, self.pw, buf.pre,
                                   self.act_code, buf.dz_pre, self.pool_stride, self.slope)

    def _dz(self, delta, buf):
        if self.pool_kind == _codes.POOL_MAX:
            return delta, buf.idx
        if self.pool_kind == _codes.POOL_AVG:
            return buf.dz_pre, None
        return delta, None

    def weight_grad(self, kern, delta, x, out, buf):
        dz, idx = self._dz(delta, buf)
        kern.conv_weight_grad(dz, idx, x, self.geom, out, buf.work)

    def input_grad(self, kern, delta, w, y, act, out, buf, slope=_codes.LEAKY_SLOPE):
        dz, idx = self._dz(delta, buf)
        kern.conv_input_grad(dz, idx, w, self.geom, y, act, out, buf.work, slope)


class Dropout:
    """Inverted dropout on the output of the layer before it in the spec list:
    ``{"type": "dropout", "p": 0.5}`` (``seed`` optional: drawn from the net's seed).

    While training, each unit of that output is zeroed with probability ``p`` and the others
    are scaled by 1 / (1 - p); ``estimate`` and the stats see the layer unchanged.  The masks
    come from a counter-based generator (the kernel ``dropout``: SplitMix64 of the layer's
    seed, its position and the net's batch count), so they are the same for any thread count
    and a net saved and loaded resumes with the same masks.  It is not a layer of the net:
    ``net.layers`` holds the layers with units, the dropout is the ``dropout`` attribute of the
    layer whose output it masks (``position``, 0 for the input), and ``net.spec()`` lists it
    where it was given.
    """

    kind = "dropout"

    def __init__(self, p=0.5, seed=None, position=None, index=None):
        where = f"layer {index} (dropout)" if index is not None else "dropout layer"
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) \
                or not 0 <= p < 1:
            raise ValueError(f"{where}: p (the probability of dropping a unit) must be a "
                             f"number in [0, 1), got {p!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or not 0 <= seed < 2**63):
            raise ValueError(f"{where}: seed must be an integer in [0, 2^63), got {seed!r}")
        self.p = float(p)
        self.seed = None if seed is None else int(seed)
        self.position = position

    def key(self, counter):
        """The mask's key for batch number ``counter``."""
        return _codes.dropout_key(self.seed, self.position, counter)

    def spec(self):
        return {"type": "dropout", "p": self.p, "seed": self.seed}


def _dict(value, what):
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, got {value!r}")
    return value


def _options(spec):
    """The activation options of a layer spec (``slope``)."""
    return {k: v for k, v in spec.items() if k in activations.OPTION_KEYS}


def _input_from_spec(cls, spec, built, index, last):
    if index != 0:
        raise ValueError(f"layer {index}: only layer 0 may be an input layer")
    built.append(cls(spec.get("n"), spec.get("fieldsize")))


def _fc_from_spec(cls, spec, built, index, last):
    built.append(cls(spec["n"], spec["act_fn"], built[-1].n, _options(spec), index))


def _conv_from_spec(cls, spec, built, index, last):
    if last:
        raise ValueError(f"layer {index} (convolution) cannot be the last layer: end the "
                         "net with a fully-connected layer")
    built.append(cls(spec["act_fn"], spec["feature_map"], built[-1], spec.get("pool"), index,
                     _options(spec)))


def _dropout_from_spec(cls, spec, built, index, last):
    if last:
        raise ValueError(f"layer {index} (dropout) cannot be the last layer: it drops "
                         "units of the layer before it, which the next layer reads")
    if built[-1].dropout is not None:
        raise ValueError(f"layer {index} (dropout) follows another dropout layer: give "
                         "one, with the combined p")
    built[-1].dropout = cls(spec.get("p", 0.5), spec.get("seed"), len(built) - 1, index)


# The layer kinds of a spec list: each kind is one class, the keys its spec takes, the keys it
# needs, and how it joins the layers built so far (``built``; ``last``: the spec list's last).
# Adding a kind is its class and its row here.
KINDS = {
    "input": (Input, {"n", "fieldsize"}, (), _input_from_spec),
    "fully_connected": (FullyConnected, {"n", "act_fn"} | activations.OPTION_KEYS,
                        ("n", "act_fn"), _fc_from_spec),
    "convolution": (Convolution, {"act_fn", "feature_map", "pool"} | activations.OPTION_KEYS,
                    ("act_fn", "feature_map"), _conv_from_spec),
    "dropout": (Dropout, {"p", "seed"}, (), _dropout_from_spec),
}


def build(layer_specs):
    """Instrument a list of layer dicts into layer objects (input first; see KINDS)."""
    if not isinstance(layer_specs, (list, tuple)):
        raise TypeError(f"layers must be a list of dicts, got {type(layer_specs).__name__}")
    if len(layer_specs) < 2:
        raise ValueError(f"a net needs an input layer and at least one more layer, "
                         f"got {len(layer_specs)} layer(s)")
    built = []
    for index, layer in enumerate(layer_specs):
        if not isinstance(layer, dict):
            raise TypeError(f"layer {index} must be a dict, got {type(layer).__name__} "
                            f"{layer!r:.60}")
        kind = _key(layer.get("type", ""))
        if index == 0 and kind != "input":
            raise ValueError(f"layer 0 must be of type 'input', got {layer!r}")
        if kind not in KINDS:
            raise ValueError(f"layer {index}: unknown layer type {layer.get('type')!r}; "
                             f"known: {', '.join(k.replace('_', '-') for k in KINDS)}")
        cls, keys, required, join = KINDS[kind]
        spec = _spec(layer, {"type"} | keys, index)
        missing = [k for k in required if k not in spec]
        if missing:
            raise ValueError(f"layer {index} ({cls.kind}) needs "
                             f"{' and '.join(repr(k) for k in required)}")
        join(cls, spec, built, index, index == len(layer_specs) - 1)
    return built


def init_weights(layers, rng, dtype):
    """N(0, 1) / fan_in for every element, the bias included (SYNAPTIC.md §2.3)."""
    return [np.ascontiguousarray(rng.standard_normal(l.weight_shape) / l.fan_in, dtype=dtype)
            for l in layers[1:]]
