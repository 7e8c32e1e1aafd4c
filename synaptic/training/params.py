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
"""
import copy
import math
from dataclasses import dataclass, field
from numbers import Integral, Real

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
}
REGULARIZATION_KINDS = ("l1", "l2")
RPROP_VARIANTS = ("rprop-", "rprop+", "irprop-", "irprop+")
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
    """Per-epoch records; they persist across train calls (epochs accumulate)."""
    epochs: int = 0
    tr_err: dict = field(default_factory=dict)   # kind -> [value per epoch]
    val_err: dict = field(default_factory=dict)  # kind -> [value per epoch] (empty without a validation set)
    seconds: list = field(default_factory=list)  # wall time of each epoch's training


@dataclass
class Training:
    """``algo``, ``params`` (defaults deep-merged with the user's), the optimiser ``state`` and ``stats``."""
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
    variant = rp.get("variant", "rprop-")
    _require(variant in RPROP_VARIANTS,
             f"rprop.variant must be one of {RPROP_VARIANTS}, got {variant!r}")
    mins, maxs = rp.get("mins", 1e-6), rp.get("maxs", 50.0)
    _require(0 < mins <= maxs, f"rprop needs 0 < mins <= maxs, got {mins}, {maxs}")
    _require(rp.get("eta_plus", 1.2) > 1, f"rprop.eta_plus must be > 1, got {rp.get('eta_plus')}")
    _require(0 < rp.get("eta_minus", 0.5) < 1,
             f"rprop.eta_minus must be in (0, 1), got {rp.get('eta_minus')}")
    _require(rp.get("step_init", 0.01) > 0, f"rprop.step_init must be > 0, got {rp.get('step_init')}")


def _validate_rmsprop(rms):
    _require(0 <= rms.get("alpha", 0.9) < 1,
             f"rmsprop.alpha must be in [0, 1), got {rms.get('alpha')}")
    _require(rms.get("eps", 0.0) >= 0, f"rmsprop.eps must be >= 0, got {rms.get('eps')}")


def _validate_lbfgs(lb):
    _require(lb.get("m", 5) >= 1, f"lbfgs.m (the history size) must be >= 1, got {lb.get('m')}")
    _require(lb.get("eps", 0.1) >= 0, f"lbfgs.eps must be >= 0, got {lb.get('eps')}")
    _require(lb.get("maxls", 20) >= 1, f"lbfgs.maxls must be >= 1, got {lb.get('maxls')}")


def training(algo, params=None):
    """A :class:`Training` for ``algo`` with ``params`` deep-merged over its defaults."""
    if not isinstance(algo, str) or algo.lstrip(":") not in ALGOS:
        raise ValueError(f"unknown training algorithm {algo!r}; known: {', '.join(ALGOS)}")
    algo = algo.lstrip(":")
    merged = deep_merge(DEFAULTS[algo], normalize(params or {}))
    validate(algo, merged)
    return Training(algo, merged)
