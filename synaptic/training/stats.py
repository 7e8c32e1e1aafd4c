"""Per-epoch statistics (SYNAPTIC.md §6): the error of each configured kind on the training
and validation sets, computed with the end-of-epoch weights."""
import numpy as np

from .. import _kernels, losses
from .records import Stats


def stat_kinds(net):
    """The configured error kinds, each resolved to its specific form, in order, no repeats."""
    params = net.training.params
    kinds = params.get("stats", {}).get("errorkinds", [params["error_fn"]])
    out_act = net.layers[-1].act
    resolved = []
    for kind in kinds:
        specific = losses.specific_kind(kind, out_act)
        if specific not in resolved:
            resolved.append(specific)
    return resolved


def init_stats(net):
    if net.training.stats is None:
        kinds = stat_kinds(net)
        net.training.stats = Stats(0, {k: [] for k in kinds}, {k: [] for k in kinds}, [])


def evaluate(net, x, y, kinds, kern=None):
    """{kind: mean per-sample error of ``kind``} over the samples ``x`` with targets ``y``."""
    kern = kern or _kernels.get_backend()
    n = x.shape[0]
    sums = dict.fromkeys(kinds, 0.0)
    codes = {k: losses.KINDS["argmax-misclassification" if k == losses.ACCURACY else k] for k in kinds}
    for start, stop, acts in net.chunked_forward(x):
        t = y[start:stop]
        for kind in kinds:
            sums[kind] += kern.error_sum(acts[-1], t, codes[kind])
    means = {k: (s / n if n else float("nan")) for k, s in sums.items()}
    if losses.ACCURACY in means:
        means[losses.ACCURACY] = 1.0 - means[losses.ACCURACY]
    return means


def update_stats(net, trset, seconds, errors=None, rate=None):
    """One epoch ends: count it, and append each kind's error on the training and validation
    sets (``errors``: the training errors when already computed, {kind: value}) and the
    learning rate in force (``rate``, if the algorithm has one)."""
    stats = net.training.stats
    kinds = list(stats.tr_err)
    stats.epochs += 1
    stats.seconds.append(seconds)
    if rate is not None:
        stats.learning_rate.append(float(rate))
    if kinds:
        if errors is None:
            errors = evaluate(net, trset.x, trset.y, kinds)
        for kind, value in errors.items():
            stats.tr_err[kind].append(value)
        if trset.valid is not None and len(trset.valid) > 0:
            for kind, value in evaluate(net, trset.valid.x, trset.valid.y, kinds).items():
                # setdefault: a Stats built (or loaded) without a validation set's tables
                stats.val_err.setdefault(kind, []).append(value)


def training_error(kind, net, trset):
    """The mean per-sample error of ``kind`` on the training part of ``trset`` with the
    current weights.

    Parameters
    ----------
    kind : str
        misclassification (the original's per-unit rounding), argmax-misclassification,
        accuracy, sum-of-squares or cross-entropy (resolved to -binary or -multivariate by the
        output activation).
    net : Net
        The net.
    trset : TrainingSet
        Labeled.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        An unknown kind.

    Examples
    --------
    >>> import synaptic as syn
    >>> trset = syn.training_set([[0, 0], [1, 1]], [0, 1], rand=False)
    >>> net = syn.mlp([2, 2], "softmax", seed=1)
    >>> 0 <= syn.training_error("argmax-misclassification", net, trset) <= 1
    True
    """
    kind = losses.specific_kind(kind, net.layers[-1].act)
    data = trset.validate().astype(net.dtype).validate()
    return evaluate(net, data.x, data.y, [kind])[kind]


def accuracy(net, dset):
    """The argmax accuracy of ``net`` on a labeled DataSet.

    Parameters
    ----------
    net : Net
        The net.
    dset : DataSet
        Labeled samples, e.g. ``trset.valid``.

    Returns
    -------
    float
        The fraction of samples whose largest output is their one-hot target's.

    Examples
    --------
    >>> import synaptic as syn
    >>> net = syn.mlp([2, 2], "softmax", seed=1)
    >>> 0 <= syn.accuracy(net, syn.dataset([[0, 1], [1, 0]], [[1, 0], [0, 1]])) <= 1
    True
    """
    dset.validate()
    if dset.y is None:
        raise ValueError("accuracy needs a labelled data set")
    x = net.as_input(dset.x)
    y = np.ascontiguousarray(dset.y, dtype=net.dtype)
    if y.shape != (x.shape[0], net.n_outputs):
        raise ValueError(f"targets of shape {y.shape}, expected {(x.shape[0], net.n_outputs)}")
    return evaluate(net, x, y, [losses.ACCURACY])[losses.ACCURACY]
