"""Error functions and the output-delta pairing rules (SYNAPTIC.md §4, §6).

The user names an ``error_fn`` (misclassification, sum-of-squares, cross-entropy); the
"specific kind" resolves cross-entropy to -multivariate for a softmax output and to -binary
otherwise.  Stats can also report ``argmax-misclassification`` and ``accuracy`` (argmax),
which the original lacked, and, for regression, ``mse`` and ``mae``: the mean squared and
absolute error over samples and outputs, in the user's units (a training set's
``target_scaling`` undone), computed in Python (stats.py), not by an error kernel.
"""
from ._kernels import acts as _acts
from ._kernels import reference as _codes

ERROR_FNS = ("misclassification", "sum-of-squares", "cross-entropy")
KINDS = {
    "misclassification": _codes.ERR_MISCLASSIFICATION,
    "argmax-misclassification": _codes.ERR_ARGMAX_MISCLASSIFICATION,
    "sum-of-squares": _codes.ERR_SUM_OF_SQUARES,
    "cross-entropy-binary": _codes.ERR_CROSS_ENTROPY_BINARY,
    "cross-entropy-multivariate": _codes.ERR_CROSS_ENTROPY_MULTIVARIATE,
}
ACCURACY = "accuracy"  # 1 - argmax-misclassification rate; higher is better
REGRESSION_KINDS = ("mse", "mae")  # mean over samples and outputs, in the user's units
STAT_KINDS = tuple(KINDS) + ("cross-entropy", ACCURACY) + REGRESSION_KINDS
# the kinds that need class targets (a continuous training set refuses them)
CLASS_KINDS = ("misclassification", "argmax-misclassification", ACCURACY,
               "cross-entropy-binary", "cross-entropy-multivariate")

# The pairings of the activation table (acts.TABLE, a row's ``losses``): the output
# activations each error function trains, and the output-delta kernel kind of the pair.
# Cross-entropy: y - t (the f' of softmax and sigmoid cancels); sum-of-squares: f'(y) (y - t).
DELTA_KINDS = {_acts.CE: _codes.DELTA_DIFF, _acts.SSE: _codes.DELTA_SSE}
OUTPUTS = {fn: tuple(row.name for row in _acts.TABLE if fn in row.losses) for fn in DELTA_KINDS}
SSE_OUTPUTS = OUTPUTS[_acts.SSE]


def _spell(name):
    if not isinstance(name, str):
        raise TypeError(f"an error kind is named by a string, got {type(name).__name__}")
    return name.lstrip(":").replace("_", "-").lower()


def specific_kind(kind, output_act):
    """Map ``cross-entropy`` to its -binary or -multivariate form for this output activation."""
    kind = _spell(kind)
    if kind == "cross-entropy":
        return "cross-entropy-multivariate" if output_act == "softmax" else "cross-entropy-binary"
    if kind not in KINDS and kind != ACCURACY and kind not in REGRESSION_KINDS:
        raise ValueError(f"unknown error kind {kind!r}; known: {', '.join(STAT_KINDS)}")
    return kind


def check_error_fn(error_fn):
    error_fn = _spell(error_fn)
    if error_fn not in ERROR_FNS:
        raise ValueError(f"unknown error_fn {error_fn!r}; known: {', '.join(ERROR_FNS)}")
    return error_fn


def delta_kind(output_act, error_fn):
    """The output-delta kernel kind for this pairing, or a ValueError naming the pair."""
    row = _acts.BY_NAME.get(output_act)
    if row is not None and error_fn in row.losses:
        return DELTA_KINDS[error_fn]
    supported = "; ".join(f"{'/'.join(names)} with {fn}" for fn, names in OUTPUTS.items())
    raise ValueError(f"backprop cannot train a {output_act!r} output with error_fn "
                     f"{error_fn!r}; supported: {supported}")
