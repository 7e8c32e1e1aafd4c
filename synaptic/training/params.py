"""Training records and their parameters (SYNAPTIC.md §5).

Params are nested dicts as in the original; keys may be spelled ``learning-rate`` or
``learning_rate`` (``foo_bar`` is canonical).  Unlike the original's shallow merge, the user's
params are **deep-merged** over the algorithm's defaults, so
``{"learning_rate": {"adaptive": True, "ming": 0.01, "maxg": 10}}`` keeps the default epsilon.
An unknown key, a wrong type or a missing required value raises at :func:`training` time.
"""
import copy
import math
from dataclasses import dataclass, field
from numbers import Real

ALGOS = ("perceptron", "backprop", "rprop", "rmsprop", "lbfgs")

DEFAULTS = {
    "perceptron": {"error_fn": "misclassification"},
    "backprop": {"error_fn": "cross-entropy", "learning_rate": {"epsilon": 0.01}},
    "rprop": {"error_fn": "cross-entropy", "rprop": {"mins": 1e-6, "maxs": 50.0}},
    "rmsprop": {"error_fn": "cross-entropy", "rmsprop": {"alpha": 0.9},
                "learning_rate": {"epsilon": 0.01}},
    "lbfgs": {"error_fn": "cross-entropy"},
}

NUMBER, BOOL, STR, LIST = "number", "bool", "string", "list"
SCHEMA = {
    "error_fn": STR,
    "learning_rate": {"epsilon": NUMBER, "adaptive": BOOL, "ming": NUMBER, "maxg": NUMBER},
    "momentum": {"alpha": NUMBER, "alpha_start": NUMBER, "alpha_step": NUMBER, "nesterov": BOOL},
    "regularization": {"lambda": NUMBER, "kind": STR},
    "stats": {"errorkinds": LIST},
    "rprop": {"mins": NUMBER, "maxs": NUMBER, "eta_plus": NUMBER, "eta_minus": NUMBER,
              "step_init": NUMBER},
    "rmsprop": {"alpha": NUMBER, "eps": NUMBER},
}
REGULARIZATION_KINDS = ("l1", "l2")


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


def training(algo, params=None):
    """A :class:`Training` for ``algo`` with ``params`` deep-merged over its defaults."""
    if not isinstance(algo, str) or algo.lstrip(":") not in ALGOS:
        raise ValueError(f"unknown training algorithm {algo!r}; known: {', '.join(ALGOS)}")
    algo = algo.lstrip(":")
    merged = deep_merge(DEFAULTS[algo], normalize(params or {}))
    validate(algo, merged)
    return Training(algo, merged)
