"""Per-epoch statistics (SYNAPTIC.md §6): the error of each configured kind on the training
and validation sets, computed with the end-of-epoch weights.

``mse`` and ``mae`` (regression) are the mean squared / absolute error over the samples and
the outputs, in the user's units: the difference of output and target times the scale of
the training set's ``target_scaling`` (the net's, noted when training starts), so they do not
depend on the scaling chosen.  The other kinds are sums over the outputs averaged over the
samples, in the units the net computes in (sum-of-squares included: a loss, not a report).
On a set with per-row weights (``trset.w``, ``valid.w``) the means are weighted: the sum of
each row's error times its weight, divided by the weights' sum.
"""
import numpy as np

from .. import _kernels, distributed, losses
from .._kernels import reference as _ref
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


def target_scale(net, scale=None):
    """The factor per output that takes an output (or target) difference to the user's
    units: ``scale``, else the net's ``header["targets"]["scale"]``, else None (1)."""
    if scale is None:
        targets = net.header.get("targets")
        scale = None if not isinstance(targets, dict) else targets.get("scale")
    return None if scale is None else np.asarray(scale, dtype=np.float64)


def _codes(kinds):
    return {k: losses.KINDS["argmax-misclassification" if k == losses.ACCURACY else k]
            for k in kinds if k not in losses.REGRESSION_KINDS}


def row_errors(y, t, kind):
    """The per-row error of kind code ``kind`` (the kernels' ERR_* codes) of the outputs
    ``y`` for the targets ``t``, a float64 vector: the terms whose sum is the kernels'
    ``error_sum`` (the formulas of its NumPy twin)."""
    y64 = np.asarray(y, dtype=np.float64)
    t64 = np.asarray(t, dtype=np.float64)
    if kind == _ref.ERR_MISCLASSIFICATION:
        return np.any(np.floor(y64 + 0.5) != t64, axis=1).astype(np.float64)
    if kind == _ref.ERR_ARGMAX_MISCLASSIFICATION:
        last = y64.shape[1] - 1  # argmax, the last index on ties (as the kernels)
        return (last - np.argmax(y64[:, ::-1], axis=1)
                != last - np.argmax(t64[:, ::-1], axis=1)).astype(np.float64)
    if kind == _ref.ERR_SUM_OF_SQUARES:
        return np.sum((y64 - t64) ** 2, axis=1)
    if kind == _ref.ERR_CROSS_ENTROPY_BINARY:
        one = t64 == 1.0
        return -np.sum(np.log(np.where(one, y64, 1.0 - y64) + 1e-30), axis=1)
    if kind == _ref.ERR_CROSS_ENTROPY_MULTIVARIATE:
        return -np.sum(np.where(t64 == 1.0, np.log(y64 + 1e-30), 0.0), axis=1)
    raise ValueError(f"unknown error kind {kind}")


def weighted_error_sum(y, t, kind, w):
    """Σ_i w_i error_i over the rows of ``y`` (targets ``t``, error kind code ``kind``)."""
    return float(np.dot(np.asarray(w, dtype=np.float64), row_errors(y, t, kind)))


def _add_sums(sums, out, t, codes, kern, scale, w=None):
    """Add each kind's error sum over the rows ``out`` (targets ``t``; ``w``: the rows'
    weights, a weighted sum) to ``sums``."""
    diff = None
    for kind in sums:
        if kind in codes:
            sums[kind] += (kern.error_sum(out, t, codes[kind]) if w is None
                           else weighted_error_sum(out, t, codes[kind], w))
            continue
        if diff is None:
            diff = out.astype(np.float64) - t
            if scale is not None:
                diff *= scale
        terms = diff * diff if kind == "mse" else np.abs(diff)
        sums[kind] += float(np.sum(terms) if w is None
                            else np.dot(np.asarray(w, dtype=np.float64), terms.sum(axis=1)))


def _means(sums, shape, w=None):
    n, c = shape
    if w is not None:  # weighted means: over the weights' sum instead of the row count
        n = float(np.sum(w, dtype=np.float64))
    means = {k: (s / (n * c if k in losses.REGRESSION_KINDS else n) if n else float("nan"))
             for k, s in sums.items()}
    if losses.ACCURACY in means:
        means[losses.ACCURACY] = 1.0 - means[losses.ACCURACY]
    return means


def evaluate(net, x, y, kinds, kern=None, scale=None, w=None):
    """{kind: mean error of ``kind``} over the samples ``x`` with targets ``y`` (per sample;
    mse and mae per sample and output, times ``scale``: see target_scale; ``w``: per-row
    weights, weighted means)."""
    kern = kern or _kernels.get_backend()
    sums = dict.fromkeys(kinds, 0.0)
    codes, scale = _codes(kinds), target_scale(net, scale)
    for start, stop, acts in net.chunked_forward(x):
        _add_sums(sums, acts[-1], y[start:stop], codes, kern, scale,
                  None if w is None else w[start:stop])
    return _means(sums, y.shape, w)


def output_errors(net, out, t, kinds, kern, w=None):
    """{kind: mean error of ``kind``} of the outputs ``out`` for the targets ``t`` (as
    :func:`evaluate`, from outputs already computed)."""
    sums = dict.fromkeys(kinds, 0.0)
    _add_sums(sums, out, t, _codes(kinds), kern, target_scale(net), w)
    return _means(sums, t.shape, w)


def check_targets(net, trset):
    """Refuse what cannot train on ``trset``'s targets: on continuous targets, an error_fn or
    an error kind that needs classes (cross-entropy, misclassification, accuracy), the
    perceptron, a net trained on labels or on targets scaled otherwise; on classes, a net
    trained on continuous targets.  ValueError naming the problem."""
    record = net.header.get("targets")
    if not trset.continuous:
        if record is not None:
            raise ValueError("the net was trained on continuous targets (its header's "
                             "'targets'); this training set holds classes")
        return
    params = net.training.params
    error_fn = losses.check_error_fn(params["error_fn"])
    if net.training.algo == "perceptron":
        raise ValueError("the perceptron learns classes: continuous targets need backprop, "
                         "rprop, rmsprop or lbfgs with error_fn 'sum-of-squares'")
    if error_fn != "sum-of-squares":
        raise ValueError(f"error_fn {error_fn!r} needs class targets; continuous targets train "
                         f"with error_fn 'sum-of-squares' (and a linear output layer)")
    bad = [k for k in stat_kinds(net) if k in losses.CLASS_KINDS]
    if bad:
        raise ValueError(f"stats.errorkinds {bad[0]!r} needs class targets; on continuous "
                         f"targets record {', '.join(losses.REGRESSION_KINDS)} or "
                         f"sum-of-squares")
    if net.labels is not None:
        raise ValueError(f"the net was trained on classes (labels {net.labels}); this training "
                         f"set holds continuous targets")
    if record is not None and record != trset.target_scaling:
        raise ValueError(f"the net was trained on targets scaled by {record}, this training set's "
                         f"are scaled by {trset.target_scaling}: build it with "
                         f"target_scaling=net.header['targets'] to train on")


def update_stats(net, trset, seconds, errors=None, rate=None, batch_loss=None):
    """One epoch ends: count it, and append each kind's error on the training and validation
    sets (``errors``: the training errors when already computed, {kind: value}), the
    learning rate in force (``rate``, if the algorithm has one) and the loss the batches saw
    (``batch_loss``, with stats.batch_loss)."""
    stats = net.training.stats
    kinds = list(stats.tr_err)
    stats.epochs += 1
    stats.seconds.append(seconds)
    if batch_loss is not None:
        stats.batch_loss.append(float(batch_loss))
    if rate is not None:
        stats.learning_rate.append(float(rate))
    if kinds:
        if errors is None:
            errors = training_errors(net, trset, kinds)  # the stored order
        for kind, value in errors.items():
            stats.tr_err[kind].append(value)
        valid = validation_errors(net, trset, kinds)
        if valid is not None:
            for kind, value in valid.items():
                # setdefault: a Stats built (or loaded) without a validation set's tables
                stats.val_err.setdefault(kind, []).append(value)


def training_errors(net, trset, kinds, kern=None, out=None):
    """{kind: mean error} over the training rows of ``trset`` (``out``: the outputs for
    them, when already computed); a distributed training's: over every rank's rows."""
    if out is None:
        errors = evaluate(net, trset.x, trset.y, kinds, kern, w=trset.w)
    else:
        errors = output_errors(net, out, trset.y, kinds, kern, trset.w)
    return distributed.training_means(errors, len(trset.x))


def validation_errors(net, trset, kinds, kern=None):
    """{kind: mean error} on the validation set, None without one (distributed: rank 0's,
    on every rank)."""
    valid = trset.valid
    errors = None
    if valid is not None and len(valid) > 0:
        errors = evaluate(net, valid.x, valid.y, kinds, kern, w=valid.w)
    return distributed.from_root(errors)


def training_error(kind, net, trset):
    """The mean per-sample error of ``kind`` on the training part of ``trset`` with the
    current weights (weighted by the rows' weights, when the set has them).

    Parameters
    ----------
    kind : str
        misclassification (the original's per-unit rounding), argmax-misclassification,
        accuracy, sum-of-squares, cross-entropy (resolved to -binary or -multivariate by the
        output activation), or, for regression, mse and mae (mean over samples and outputs,
        in the user's units: the set's ``target_scaling`` undone).
    net : Net
        The net.
    trset : TrainingSet
        Labeled, or with continuous targets.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        An unknown kind, or a kind that needs classes on a set of continuous targets.

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
    if data.y is None:
        raise ValueError("training_error needs a labelled training set")
    if data.y.shape[1] != net.n_outputs:
        raise ValueError(f"the training set has {data.y.shape[1]} target columns, the net has "
                         f"{net.n_outputs} outputs")
    scale = None
    if trset.continuous:
        if kind in losses.CLASS_KINDS:
            raise ValueError(f"error kind {kind!r} needs class targets; this training set holds "
                             f"continuous targets (use {', '.join(losses.REGRESSION_KINDS)} or "
                             f"sum-of-squares)")
        scale = trset.target_scaling["scale"]
    return evaluate(net, data.x, data.y, [kind], scale=scale if scale is not None else [1.0],
                    w=data.w)[kind]


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
