"""Training records and their parameters (SYNAPTIC.md §5).

Params are nested dicts as in the original; keys may be spelled ``learning-rate`` or
``learning_rate`` (``foo_bar`` is canonical).  Unlike the original's shallow merge, the user's
params are **deep-merged** over the algorithm's defaults, so
``{"learning_rate": {"adaptive": True, "ming": 0.01, "maxg": 10}}`` keeps the default epsilon.
An unknown key, a wrong type or a missing required value raises at :func:`training` time, and
so does a combination that cannot work (see :func:`validate`).

``DEFAULTS`` are the original's.  The port's extensions default in their own modules:
``rprop {eta_plus 1.2, eta_minus 0.5, step_init 0.01, variant "rprop-"}`` (the original's
hard-coded values; variants "rprop+", "irprop-", "irprop+"), ``rmsprop {eps 0}`` (inside the
square root), ``lbfgs {m 5, eps 0.1, maxls 20}`` (bozo's history size, the tolerance Synaptic
passes, RISO's line-search budget).  ``weight_decay`` (a number, default none) is decoupled
weight decay, ``W <- (1 - eta lambda) W`` per update with the bias column exempt (eta: the
learning rate epsilon; 1 for rprop, which has none): the original's To-Do.
``regularization {kind l1|l2, lambda}`` adds its derivative to the summed gradient of every
algorithm but the perceptron's, and its penalty to the L-BFGS objective (see regularization.py).
``on_nonfinite`` ("raise", "stop" or "ignore"; default "raise", every algorithm) says what a NaN
or infinite weight or training loss does (see divergence.py).
"""
import copy
import math
import textwrap
from dataclasses import dataclass, field
from numbers import Integral, Real

from .. import losses

ALGOS = ("perceptron", "backprop", "rprop", "rmsprop", "lbfgs")

DEFAULTS = {
    "perceptron": {"error_fn": "misclassification"},
    "backprop": {"error_fn": "cross-entropy", "learning_rate": {"epsilon": 0.01}},
    "rprop": {"error_fn": "cross-entropy", "rprop": {"mins": 1e-6, "maxs": 50.0}},
    "rmsprop": {"error_fn": "cross-entropy", "rmsprop": {"alpha": 0.9},
                "learning_rate": {"epsilon": 0.01}},
    "lbfgs": {"error_fn": "cross-entropy"},
}

NUMBER, INT, BOOL, STR, LIST = "number", "int", "bool", "string", "list"
SCHEMA = {
    "error_fn": STR,
    "learning_rate": {"epsilon": NUMBER, "adaptive": BOOL, "ming": NUMBER, "maxg": NUMBER},
    "momentum": {"alpha": NUMBER, "alpha_start": NUMBER, "alpha_step": NUMBER, "nesterov": BOOL},
    "regularization": {"lambda": NUMBER, "kind": STR},
    "stats": {"errorkinds": LIST},
    "rprop": {"mins": NUMBER, "maxs": NUMBER, "eta_plus": NUMBER, "eta_minus": NUMBER,
              "step_init": NUMBER, "variant": STR},
    "rmsprop": {"alpha": NUMBER, "eps": NUMBER},
    "lbfgs": {"m": INT, "eps": NUMBER, "maxls": INT},
    "weight_decay": NUMBER,
    "on_nonfinite": STR,
}
# The defaults the algorithms apply to keys left out (not merged into the params, so a saved
# net's params stay as the user gave them); the extensions' defaults live here, beside the
# original's DEFAULTS, and rprop.py, rmsprop.py and lbfgs.py read them.
IMPLIED = {
    "learning_rate": {"adaptive": False},
    "momentum": {"nesterov": False},
    "rprop": {"eta_plus": 1.2, "eta_minus": 0.5, "step_init": 0.01, "variant": "rprop-"},
    "rmsprop": {"eps": 0.0},
    "lbfgs": {"m": 5, "eps": 0.1, "maxls": 20},
    "regularization": {"lambda": 0.0},
    "on_nonfinite": "raise",
}
REGULARIZATION_KINDS = ("l1", "l2")
RPROP_VARIANTS = ("rprop-", "rprop+", "irprop-", "irprop+")
NONFINITE_POLICIES = ("raise", "stop", "ignore")  # on_nonfinite: see divergence.py
# The options each algorithm reads (besides error_fn, stats, regularization); any other section
# would be silently ignored, so it is refused.  Nesterov momentum replaces the algorithm by
# gradient descent (SYNAPTIC.md §5), which then reads learning_rate.
USES = {
    "perceptron": set(),
    "backprop": {"learning_rate", "momentum", "weight_decay"},
    "rprop": {"rprop", "momentum", "weight_decay"},
    "rmsprop": {"rmsprop", "learning_rate", "momentum", "weight_decay"},
    "lbfgs": {"lbfgs"},
}
SECTIONS = ("learning_rate", "momentum", "weight_decay", "rprop", "rmsprop", "lbfgs")


@dataclass
class Stats:
    """Per-epoch records; they persist across train calls (epochs accumulate).

    Parameters
    ----------
    epochs : int, default 0
        The epochs trained.
    tr_err : dict, default {}
        ``{kind: [value per epoch]}`` on the training set.
    val_err : dict, default {}
        The same on the validation set (empty without one).
    seconds : list, default []
        The training time of each epoch.
    diverged : dict, optional
        Where the last training that diverged did (``on_nonfinite`` "raise" or "stop"):
        ``{"epoch": int, "batch": int or None, "what": str}``, as the attributes of
        :class:`TrainingDiverged`; None if none did.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.Stats(1, {"accuracy": [0.9]}, {}, [0.1]).tr_err["accuracy"][-1]
    0.9
    """
    epochs: int = 0
    tr_err: dict = field(default_factory=dict)   # kind -> [value per epoch]
    val_err: dict = field(default_factory=dict)  # kind -> [value per epoch] (empty without a validation set)
    seconds: list = field(default_factory=list)  # wall time of each epoch's training
    diverged: dict = None  # {"epoch", "batch", "what"} of the last divergence (divergence.py)


@dataclass
class Training:
    """``algo``, ``params`` (defaults deep-merged with the user's), the optimiser ``state`` and
    ``stats``.  Build one with :func:`training`, which validates the params.

    Parameters
    ----------
    algo : str
        One of perceptron, backprop, rprop, rmsprop, lbfgs.
    params : dict
        The merged params.
    state : dict, default {}
        The optimiser state (``deltaw``, ``lr_gain``, ...), saved with the net.
    stats : Stats, optional
        Created when training starts.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.training("rprop").params["rprop"]
    {'mins': 1e-06, 'maxs': 50.0}
    """
    algo: str
    params: dict
    state: dict = field(default_factory=dict)
    stats: Stats = None


def canonical_key(key):
    if not isinstance(key, str):
        raise TypeError(f"option keys are strings, got {key!r}")
    return key.lstrip(":").replace("-", "_")


def normalize(params, path=""):
    """Canonical key spelling at every level; a bare value stays as it is."""
    if not isinstance(params, dict):
        raise TypeError(f"params{' for ' + path if path else ''} must be a dict, "
                        f"got {type(params).__name__}")
    return {canonical_key(k): normalize(v, f"{path}{canonical_key(k)}.") if isinstance(v, dict) else v
            for k, v in params.items()}


def deep_merge(base, override):
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _check_types(params, schema, path=""):
    for key, value in params.items():
        where = path + key
        if key not in schema:
            raise ValueError(f"unknown option {where!r}; known here: {', '.join(sorted(schema))}")
        kind = schema[key]
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise TypeError(f"option {where!r} must be a dict, got {value!r}")
            _check_types(value, kind, where + ".")
        elif kind == NUMBER and (isinstance(value, bool) or not isinstance(value, Real)
                                 or not math.isfinite(value)):
            raise TypeError(f"option {where!r} must be a finite number, got {value!r}")
        elif kind == INT and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise TypeError(f"option {where!r} must be an integer, got {value!r}")
        elif kind == BOOL and not isinstance(value, bool):
            raise TypeError(f"option {where!r} must be True or False, got {value!r}")
        elif kind == STR and not isinstance(value, str):
            raise TypeError(f"option {where!r} must be a string, got {value!r}")
        elif kind == LIST and not isinstance(value, (list, tuple)):
            raise TypeError(f"option {where!r} must be a list, got {value!r}")


def _require(condition, message):
    if not condition:
        raise ValueError(message)


def validate(algo, params):
    """Raise a clear error for anything the training would trip over later."""
    _check_types(params, SCHEMA)
    _validate_combination(algo, params)
    losses.check_error_fn(params["error_fn"])
    for kind in params.get("stats", {}).get("errorkinds", []):
        losses.specific_kind(kind, None)  # a known name (cross-entropy resolves per output)
    lr = params.get("learning_rate", {})
    if "epsilon" in lr:
        _require(lr["epsilon"] > 0, f"learning_rate.epsilon must be > 0, got {lr['epsilon']}")
    if lr.get("adaptive"):
        _require("ming" in lr and "maxg" in lr,
                 "learning_rate.adaptive needs ming and maxg (the original suggests 0.01 and 10.0)")
        _require(0 < lr["ming"] <= lr["maxg"],
                 f"learning_rate needs 0 < ming <= maxg, got {lr['ming']}, {lr['maxg']}")
    mom = params.get("momentum")
    if mom is not None:
        _require("alpha" in mom, "momentum needs alpha")
        _require("alpha_start" not in mom or "alpha_step" in mom,
                 "momentum.alpha_start needs momentum.alpha_step")
        for key in ("alpha", "alpha_start"):
            if key in mom:
                _require(0 <= mom[key] < 1, f"momentum.{key} must be in [0, 1), got {mom[key]}")
        if mom.get("nesterov"):
            _require("epsilon" in lr, f"Nesterov momentum needs learning_rate.epsilon "
                                      f"(algo {algo!r} has none by default)")
    reg = params.get("regularization")
    if reg is not None:
        _require(reg.get("kind") in REGULARIZATION_KINDS,
                 f"regularization.kind must be one of {REGULARIZATION_KINDS}, got {reg.get('kind')!r}")
        _require(reg.get("lambda", 0) >= 0, f"regularization.lambda must be >= 0, got {reg.get('lambda')}")
    if "on_nonfinite" in params:
        _require(params["on_nonfinite"] in NONFINITE_POLICIES,
                 f"on_nonfinite must be one of {', '.join(map(repr, NONFINITE_POLICIES))}, "
                 f"got {params['on_nonfinite']!r}")
    _validate_rprop(params.get("rprop", {}))
    _validate_rmsprop(params.get("rmsprop", {}))
    _validate_lbfgs(params.get("lbfgs", {}))
    if "weight_decay" in params:
        decay = params["weight_decay"]
        rate = lr.get("epsilon", 1.0) if algo != "rprop" or _nesterov(params) else 1.0
        _require(decay >= 0 and decay * rate < 1,
                 f"weight_decay must be >= 0 with weight_decay * learning rate < 1 (the weights "
                 f"are scaled by 1 - {rate} * {decay} each update), got {decay}")


def _nesterov(params):
    return bool(params.get("momentum", {}).get("nesterov"))


def _validate_combination(algo, params):
    """Refuse the options this algorithm would silently ignore, and combinations that cannot work."""
    nesterov = _nesterov(params)
    if nesterov and algo in ("perceptron", "lbfgs"):
        raise ValueError(f"Nesterov momentum is a gradient-descent method: it cannot replace "
                         f"{algo!r} training (use backprop)")
    used = USES[algo] | ({"learning_rate"} if nesterov else set())
    for section in SECTIONS:
        if section in params and section not in used:
            hint = (" unless momentum.nesterov replaces R-prop by gradient descent"
                    if algo == "rprop" and section == "learning_rate" else "")
            reads = (f"it reads {', '.join(sorted(used))}" if used
                     else "it takes no options besides error_fn and stats")
            raise ValueError(f"option {section!r} does not apply to {algo!r} training{hint}; {reads}")
    if algo == "perceptron" and params.get("regularization"):
        raise ValueError("regularization does not apply to 'perceptron' training: "
                         "the perceptron rule has no gradient to add its derivative to")
    variant = params.get("rprop", {}).get("variant", "rprop-")
    if algo == "rprop" and not nesterov and "momentum" in params and variant in ("rprop+", "irprop+"):
        raise ValueError(f"momentum cannot be combined with R-prop variant {variant!r}: its weight "
                         f"backtracking undoes the last update (use 'rprop-' or 'irprop-')")


def _validate_rprop(rp):
    rp = {**DEFAULTS["rprop"]["rprop"], **IMPLIED["rprop"], **rp}
    variant = rp["variant"]
    _require(variant in RPROP_VARIANTS,
             f"rprop.variant must be one of {RPROP_VARIANTS}, got {variant!r}")
    mins, maxs = rp["mins"], rp["maxs"]
    _require(0 < mins <= maxs, f"rprop needs 0 < mins <= maxs, got {mins}, {maxs}")
    _require(rp["eta_plus"] > 1, f"rprop.eta_plus must be > 1, got {rp['eta_plus']}")
    _require(0 < rp["eta_minus"] < 1, f"rprop.eta_minus must be in (0, 1), got {rp['eta_minus']}")
    _require(rp["step_init"] > 0, f"rprop.step_init must be > 0, got {rp['step_init']}")


def _validate_rmsprop(rms):
    rms = {**DEFAULTS["rmsprop"]["rmsprop"], **IMPLIED["rmsprop"], **rms}
    _require(0 <= rms["alpha"] < 1, f"rmsprop.alpha must be in [0, 1), got {rms['alpha']}")
    _require(rms["eps"] >= 0, f"rmsprop.eps must be >= 0, got {rms['eps']}")


def _validate_lbfgs(lb):
    lb = {**IMPLIED["lbfgs"], **lb}
    _require(lb["m"] >= 1, f"lbfgs.m (the history size) must be >= 1, got {lb['m']}")
    _require(lb["eps"] >= 0, f"lbfgs.eps must be >= 0, got {lb['eps']}")
    _require(lb["maxls"] >= 1, f"lbfgs.maxls must be >= 1, got {lb['maxls']}")


def training(algo, params=None):
    if not isinstance(algo, str) or algo.lstrip(":") not in ALGOS:
        raise ValueError(f"unknown training algorithm {algo!r}; known: {', '.join(ALGOS)}")
    algo = algo.lstrip(":")
    merged = deep_merge(DEFAULTS[algo], normalize(params or {}))
    validate(algo, merged)
    return Training(algo, merged)


# The docstring of training(), generated from ALGOS, SCHEMA, DEFAULTS, IMPLIED and USES -------

ALGO_DOCS = {
    "perceptron": "A single layer of binary-threshold units trained by the perceptron rule "
                  "(the raw sum of the misclassified samples).",
    "backprop": "Gradient descent on the summed gradient divided by the batch size, with "
                "optional adaptive per-weight gains (+0.05 / x0.95), momentum and Nesterov.",
    "rprop": "R-prop: per-weight steps driven by the sign of the gradient; variants rprop- "
             "(the original's), rprop+ (weight backtracking), irprop-, irprop+.",
    "rmsprop": "RMSprop: the gradient divided by the root of its running mean square, then "
               "the learning rate (fixed or adaptive) and momentum.",
    "lbfgs": "SciPy's L-BFGS-B on the whole training set in float64; one epoch is one "
             "iteration, one stats entry per function evaluation.",
}
KEY_DOCS = {  # key -> (what it is, what happens when it is left out and has no default value)
    "error_fn": ("the error function: cross-entropy, sum-of-squares or misclassification", None),
    "learning_rate": ("the learning rate section", None),
    "learning_rate.epsilon": ("the learning rate (> 0)", "required by Nesterov momentum"),
    "learning_rate.adaptive": ("per-weight adaptive gains", None),
    "learning_rate.ming": ("the smallest gain (the original suggests 0.01)",
                           "required with adaptive"),
    "learning_rate.maxg": ("the largest gain (the original suggests 10.0)",
                           "required with adaptive"),
    "momentum": ("momentum; allowed with backprop, rprop (- variants) and rmsprop", "no momentum"),
    "momentum.alpha": ("the momentum coefficient, in [0, 1)", "required with momentum"),
    "momentum.alpha_start": ("a schedule's first alpha (needs alpha_step)", "alpha from the start"),
    "momentum.alpha_step": ("the schedule's increase per step, capped at alpha", "no schedule"),
    "momentum.nesterov": ("Nesterov's method (gradient descent, whatever the algorithm)", None),
    "regularization": ("a penalty whose derivative is added to the summed gradient "
                       "(the bias column exempt); not for the perceptron", "none"),
    "regularization.kind": ("l1 (derivative lambda*sign(w)) or l2 (lambda*w)",
                            "required with regularization"),
    "regularization.lambda": ("the strength (>= 0)", None),
    "stats": ("what is recorded at each epoch's end", None),
    "stats.errorkinds": ("the error kinds recorded on the training and validation sets: "
                         "misclassification, argmax-misclassification, accuracy, "
                         "sum-of-squares, cross-entropy, and mse, mae (mean squared / "
                         "absolute error over samples and outputs, in the targets' own "
                         "units); continuous targets refuse the kinds that need classes; "
                         "[] records none", "[error_fn]"),
    "rprop": ("the R-prop section", None),
    "rprop.mins": ("the smallest step", None),
    "rprop.maxs": ("the largest step", None),
    "rprop.eta_plus": ("the step growth (> 1)", None),
    "rprop.eta_minus": ("the step shrink, in (0, 1)", None),
    "rprop.step_init": ("the first batch's step (> 0)", None),
    "rprop.variant": (f"one of {', '.join(RPROP_VARIANTS)}", None),
    "rmsprop": ("the RMSprop section", None),
    "rmsprop.alpha": ("the decay of the running mean square, in [0, 1)", None),
    "rmsprop.eps": ("added inside the square root (0: the original's rule)", None),
    "lbfgs": ("the L-BFGS section", None),
    "lbfgs.m": ("the history size (>= 1)", None),
    "lbfgs.eps": ("the stop test: ||g|| / max(1, ||w||) <= eps", None),
    "lbfgs.maxls": ("the line-search budget per iteration (>= 1)", None),
    "weight_decay": ("decoupled weight decay: W <- (1 - epsilon * weight_decay) W before each "
                     "update (epsilon 1 for rprop), the bias column exempt", "none"),
    "on_nonfinite": ("what a NaN or infinite weight or training loss does: 'raise' (the Future "
                     "raises TrainingDiverged naming the epoch and batch; the net keeps the "
                     "last finite weights), 'stop' (the same weights, training ends with a "
                     "RuntimeWarning and stats.diverged), 'ignore' (no check)", None),
}


def _schema_keys(schema=SCHEMA, prefix=""):
    """Every key of the schema, sections first: ("learning_rate", "learning_rate.epsilon", ...)."""
    for key, kind in schema.items():
        yield prefix + key
        if isinstance(kind, dict):
            yield from _schema_keys(kind, f"{prefix}{key}.")


def _lookup(tree, path):
    for part in path.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _readers(path):
    section = path.split(".")[0]
    return [a for a in ALGOS
            if section in USES[a] or section in ("error_fn", "stats", "regularization",
                                                  "on_nonfinite")]


def _key_default(path):
    """What applies when ``path`` is left out, in words: the usual value, and the exceptions."""
    readers = _readers(path)
    values = {a: _lookup(deep_merge(IMPLIED, DEFAULTS[a]), path) for a in readers}
    values = {a: v for a, v in values.items() if v is not None}
    if not values:
        absent = KEY_DOCS[path][1]
        return absent if absent.startswith("required") else f"left out: {absent}"
    reprs = [repr(v) for v in values.values()]
    usual = max(reprs, key=reprs.count)
    others = [f"{v!r} for {a}" for a, v in values.items() if repr(v) != usual]
    where = "" if len(readers) == len(ALGOS) else f" ({', '.join(readers)})"
    return f"default {usual}{where}" + (f", {', '.join(others)}" if others else "")


def _wrapped(text):
    return textwrap.fill(text, 92, initial_indent="    ", subsequent_indent="    ")


def _training_doc():
    kinds = {NUMBER: "number", INT: "int", BOOL: "bool", STR: "str", LIST: "list"}
    algos = []
    for algo in ALGOS:
        reads = ", ".join(sorted(USES[algo])) or "no options besides error_fn and stats"
        algos += [f"``{algo!r}``", _wrapped(f"{ALGO_DOCS[algo]} Reads: {reads}; error_fn "
                                            f"default {DEFAULTS[algo]['error_fn']!r}.")]
    keys = []
    for path in _schema_keys():
        kind = _lookup(SCHEMA, path)
        what, absent = KEY_DOCS[path]
        if isinstance(kind, dict):
            keys += [f"``{path}`` : section",
                     _wrapped(what + (f"; left out: {absent}." if absent else "."))]
        else:
            keys += [f"``{path}`` : {kinds[kind]}, {_key_default(path)}", _wrapped(what + ".")]
    return _TRAINING_DOC.format(algos="\n".join(algos), keys="\n".join(keys),
                                names=", ".join(map(repr, ALGOS)))


_TRAINING_DOC = """A training record for ``algo``: ``params`` deep-merged over the algorithm's defaults.

Parameters
----------
algo : str
    The training algorithm, one of {names} (a leading ``:`` is allowed, as the
    original's keywords).
params : dict, optional
    Nested options (below), deep-merged over ``algo``'s defaults: ``{{"learning_rate":
    {{"adaptive": True, "ming": 0.01, "maxg": 10}}}}`` keeps the default epsilon.  Keys may be
    spelled ``learning-rate`` or ``learning_rate``.

Returns
-------
Training
    ``algo``, the merged ``params``, an empty optimiser ``state`` and no ``stats`` yet.

Raises
------
ValueError
    An unknown algorithm or key, a missing required value, a value out of range, or a
    combination that cannot work (an option the algorithm would ignore, Nesterov without a
    learning rate, momentum with R-prop's backtracking variants).
TypeError
    A value of the wrong type.

Notes
-----
Algorithms:

{algos}

Keys (``section.key``, with what applies when the key is left out):

{keys}

Examples
--------
>>> import synaptic as syn
>>> t = syn.training("backprop", {{"learning_rate": {{"epsilon": 0.5}}, "momentum": {{"alpha": 0.9}}}})
>>> t.params["learning_rate"], t.params["error_fn"]
({{'epsilon': 0.5}}, 'cross-entropy')
"""

training.__doc__ = _training_doc()
