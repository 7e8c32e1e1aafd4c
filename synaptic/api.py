"""The original's public functions, Pythonic spelling (SYNAPTIC.md §1)."""
import numpy as np

from . import _kernels
from .datasets import DataSet, TrainingSet, check_target_scaling
from .net import Net, build_net


def neural_net(layers, training=None, *, dtype=np.float64, seed=None):
    """A feed-forward net from a list of layer dicts (the first one an input layer).

    Parameters
    ----------
    layers : list of dict
        At least two layers.  Keys may be spelled ``act-fn`` or ``act_fn``:

        * ``{"type": "input", "n": 784}`` or ``{"type": "input", "fieldsize": [28, 28]}``;
          ``fieldsize`` is ``[w, h]`` or ``[k, w, h]`` for ``k`` channels (e.g. ``[3, 32, 32]``
          for colour images: 3072 inputs, stored channel-major -- all of channel 0, then
          channel 1, ... -- each channel row by row, the width fastest).  ``n`` wins when
          both are given.
        * ``{"type": "fully-connected", "n": 10, "act_fn": "softmax"}``.
        * ``{"type": "convolution", "act_fn": "hyperbolic-tangent", "feature_map": {"size":
          [9, 9], "k": 3}, "pool": {"kind": "max" | "avg", "size": [2, 2]}}`` (``pool``
          optional): a valid cross-correlation, stride 1, every map connected to every input
          channel, the activation before the pooling.  ``feature_map`` may add ``"stride":
          [sw, sh]`` and ``"padding": "valid" | "same" | [pw, ph]`` (TensorFlow's "same";
          [pw, ph] zeros on both sides, as PyTorch), ``pool`` a ``"stride": [sw, sh]``
          (floor mode, windows may overlap); every pair lists the width first (see
          ``synaptic.layers.Convolution``).  Convolution layers follow the input
          layer or another convolution layer, and fully-connected layers end the net.

        Activations: linear, sigmoid, hyperbolic-tangent (tanh), softmax, relu, leaky-relu
        (``z`` if z > 0 else ``slope * z``; the layer key ``"slope"``, in [0, 1), default
        0.01), elu (alpha 1), softplus, and the forward-only binary-threshold,
        bipolar-threshold, binary-prob, binary-stochastic.
    training : Training, optional
        From :func:`training`; needed by :func:`train` (it can be set later as
        ``net.training``).
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
        The dtype of the weights and of every computation (L-BFGS runs in float64).
    seed : int, optional
        Seeds the initial weights (N(0, 1) / fan-in, the bias included, as the original) and
        the stochastic units.

    Returns
    -------
    Net

    Raises
    ------
    ValueError
        A layer list that cannot form a net (an unknown type or activation, a missing size,
        a pool size that does not divide the map, a convolution after a fully-connected layer).
    TypeError
        A wrong dtype or a layer that is not a dict.

    Examples
    --------
    >>> import synaptic as syn
    >>> net = syn.neural_net([{"type": "input", "fieldsize": [3, 8, 8]},
    ...                       {"type": "convolution", "act_fn": "tanh",
    ...                        "feature_map": {"size": [3, 3], "k": 4},
    ...                        "pool": {"kind": "max", "size": [2, 2]}},
    ...                       {"type": "fully-connected", "n": 2, "act_fn": "softmax"}], seed=1)
    >>> [w.shape for w in net.weights]
    [(4, 28), (2, 37)]
    """
    return build_net(layers, training, dtype=dtype, seed=seed)


def mlp(nunits, act_fn, training=None, *, dtype=np.float64, seed=None):
    """A fully-connected net (a multi-layer perceptron).

    Parameters
    ----------
    nunits : list of int
        The number of units of each layer, the input layer first (at least 2 sizes).
    act_fn : str or list of str
        One activation for every non-input layer, or a list of ``len(nunits) - 1`` (see
        :func:`neural_net` for the names).
    training : Training, optional
        From :func:`training`.
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
        The dtype of the weights and of every computation.
    seed : int, optional
        Seeds the initial weights and the stochastic units.

    Returns
    -------
    Net
        Weights ``n_out x (1 + n_in)`` per layer, the bias in column 0.

    Raises
    ------
    ValueError
        Fewer than 2 sizes, the wrong number of activations, an unknown activation.

    Examples
    --------
    >>> import numpy as np, synaptic as syn
    >>> net = syn.mlp([784, 100, 10], ["sigmoid", "softmax"],
    ...               syn.training("backprop", {"learning_rate": {"epsilon": 0.5}}),
    ...               dtype=np.float32, seed=1)
    >>> [w.shape for w in net.weights], net.n_params
    ([(100, 785), (10, 101)], 79510)
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
    """The activity of every non-input layer (the output last) for the samples of ``data``.

    Parameters
    ----------
    net : Net
        The net.
    data : array_like, DataSet or TrainingSet
        ``n x n_inputs`` samples, one per row (a TrainingSet's training part).

    Returns
    -------
    list of numpy.ndarray
        One ``n x units`` array per non-input layer (a convolution layer's after its pooling,
        channel-major).

    Raises
    ------
    ValueError
        Samples with the wrong number of values.

    Examples
    --------
    >>> import numpy as np, synaptic as syn
    >>> net = syn.mlp([2, 3, 1], "sigmoid", seed=1)
    >>> [a.shape for a in syn.net_activities(net, np.zeros((4, 2)))]
    [(4, 3), (4, 1)]
    """
    return net.activities(_samples(net, data))


def estimate(net, data):
    """The predicted label of each sample: the argmax of the output (the last index on ties,
    as the original), mapped through the labels the net was trained with, if any.  A net
    trained on continuous targets (``training_set(..., targets=y)``) returns its outputs
    instead, the training set's ``target_scaling`` undone: values in the units of ``y``.

    Parameters
    ----------
    net : Net
        The net.
    data : array_like, DataSet or TrainingSet
        ``n x n_inputs`` samples, one per row (a TrainingSet's training part).

    Returns
    -------
    numpy.ndarray
        ``n`` labels (of the training set's label type), or output indices for a net that
        was never trained; for continuous targets float64 values, ``n`` of them (1-D
        targets) or ``n x c`` (2-D).

    Raises
    ------
    TypeError
        ``net`` is not a Net.
    ValueError
        Samples with the wrong number of values, or a weight that is NaN or infinite
        (no label can be trusted then).

    Examples
    --------
    >>> import numpy as np, synaptic as syn
    >>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, ["no", "yes", "yes", "yes"] * 10,
    ...                          seed=0)
    >>> net = syn.mlp([2, 2], "softmax", syn.training("backprop", {"learning_rate": {"epsilon": 1.0}}),
    ...               seed=1)
    >>> syn.train(net, trset, 300).result() is net
    True
    >>> syn.estimate(net, np.array([[0, 0], [1, 1]])).tolist()
    ['no', 'yes']
    >>> x = np.linspace(0, 1, 20).reshape(-1, 1)
    >>> reg = syn.training_set(x, targets=100 + 50 * x.ravel(), target_scaling="standard")
    >>> line = syn.mlp([1, 1], "linear", syn.training("lbfgs", {"error_fn": "sum-of-squares"}),
    ...                seed=1)
    >>> syn.train(line, reg, 50).result() is line
    True
    >>> np.round(syn.estimate(line, np.array([[0.0], [1.0]])), 1).tolist()
    [100.0, 150.0]
    """
    if not isinstance(net, Net):
        raise TypeError(f"estimate needs a Net, got {type(net).__name__}")
    net.check_weights()
    x = net.as_input(_samples(net, data))
    targets = net.header.get("targets")
    if targets is not None:
        return _values(net, x, check_target_scaling(targets, net.n_outputs, "the net's targets"))
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


def _values(net, x, targets):
    """The outputs for ``x`` in the units of the targets the net was trained on."""
    out = np.empty((x.shape[0], net.n_outputs), dtype=np.float64)
    for start, stop, acts in net.chunked_forward(x):
        out[start:stop] = acts[-1]
    out *= targets["scale"]
    out += targets["offset"]
    return out[:, 0] if targets["ndim"] == 1 else out
