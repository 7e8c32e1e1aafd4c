"""The original's public functions, Pythonic spelling (SYNAPTIC.md §1)."""
import numpy as np

from . import _kernels
from .datasets import DataSet, TrainingSet
from .net import Net, build_net


def neural_net(layers, training=None, *, dtype=np.float64, seed=None):
    """A net from layer dicts, e.g. ``[{"type": "input", "n": 784},
    {"type": "fully-connected", "n": 10, "act_fn": "softmax"}]``."""
    return build_net(layers, training, dtype=dtype, seed=seed)


def mlp(nunits, act_fn, training=None, *, dtype=np.float64, seed=None):
    """A fully-connected net: ``mlp([784, 100, 10], ["sigmoid", "softmax"], training(...))``.

    ``act_fn`` is one activation for every non-input layer or a list of ``len(nunits) - 1``.
    """
    if not isinstance(nunits, (list, tuple)) or len(nunits) < 2:
        raise ValueError(f"nunits must list at least 2 layer sizes, got {nunits!r}")
    acts = [act_fn] * (len(nunits) - 1) if isinstance(act_fn, str) else list(act_fn)
    if len(acts) != len(nunits) - 1:
        raise ValueError(f"{len(nunits) - 1} activations needed for {len(nunits)} layers, got {len(acts)}")
    layers = [{"type": "input", "n": nunits[0]}]
    layers += [{"type": "fully-connected", "n": n, "act_fn": a} for n, a in zip(nunits[1:], acts)]
    return build_net(layers, training, dtype=dtype, seed=seed)


def _samples(net, data):
    """The samples of ``data``: a DataSet or TrainingSet (checked: validate), or an array."""
    if isinstance(data, (TrainingSet, DataSet)):
        return data.validate().x
    return data


def net_activities(net, data):
    """The activity of every non-input layer (output last) for the samples in ``data``."""
    return net.activities(_samples(net, data))


def estimate(net, data):
    """The predicted label of each sample: the argmax of the output (the last index on ties,
    as the original), mapped through the labels the net was trained with, if any.

    Raises ValueError when a weight is NaN or infinite (no label can be trusted then).
    """
    if not isinstance(net, Net):
        raise TypeError(f"estimate needs a Net, got {type(net).__name__}")
    net.check_weights()
    x = net.as_input(_samples(net, data))
    kern = _kernels.get_backend()
    idx = np.empty(x.shape[0], dtype=np.int64)
    for start, stop, acts in net.chunked_forward(x):
        kern.argmax_rows(acts[-1], idx[start:stop])
    labels = net.labels
    if labels is None:
        return idx
    if len(labels) != net.n_outputs:
        raise ValueError(f"the net has {net.n_outputs} outputs but {len(labels)} labels")
    return np.asarray(labels)[idx]
