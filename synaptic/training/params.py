"""Training records and their parameters (SYNAPTIC.md §5).

Params are nested dicts as in the original; keys may be spelled ``learning-rate`` or
``learning_rate`` (``foo_bar`` is canonical).  Unlike the original's shallow merge, the user's
params are **deep-merged** over the algorithm's defaults, so
``{"learning_rate": {"adaptive": True, "ming": 0.01, "maxg": 10}}`` keeps the default epsilon.
An unknown key, a wrong type or a missing required value raises at :func:`training` time, and
so does a combination that cannot work (see :func:`validate`).

Each algorithm declares its defaults, the schema of its own section and the defaults of its
keys in its own module (optimizer.py: the base and the registry); this module gathers them into
``ALGOS``, ``DEFAULTS`` (the original's, merged into the params), ``SCHEMA``, ``IMPLIED`` (what
applies to a key left out), ``USES`` and the docstring of :func:`training`, and checks what
the algorithms share: ``learning_rate`` (with its ``schedule``, schedules.py), ``momentum``,
``regularization {kind l1|l2, lambda}`` (its derivative is added to the summed gradient of
every algorithm but the perceptron's; regularization.py), ``weight_decay`` (decoupled,
``W <- (1 - eta lambda) W`` per update with the bias column exempt; eta the learning rate, 1
without one), ``on_nonfinite`` (divergence.py) and ``early_stopping`` (loop.py).
"""
import copy
import math
import textwrap
from numbers import Integral, Real

from .. import losses
from . import schedules
from .optimizer import (BOOL, COMMON_IMPLIED, COMMON_SCHEMA, EVERYWHERE, INT, LIST, NUMBER,
                        OPTIONAL, STR, algorithms)
from .records import Stats, Training  # noqa: F401  (re-exported: the package's names)

# The tables, gathered from the algorithms' declarations (optimizer.py; one file each).
_CLASSES = algorithms()
ALGOS = tuple(_CLASSES)
DEFAULTS = {name: cls.defaults for name, cls in _CLASSES.items()}
SCHEMA = {**COMMON_SCHEMA, **{k: v for cls in _CLASSES.values() for k, v in cls.schema.items()}}
# The defaults the algorithms apply to keys left out (not merged into the params, so a saved
# net's params stay as the user gave them).
IMPLIED = {**COMMON_IMPLIED,
           "early_stopping": {"patience": 10, "min_delta": 0.0, "restore_best": True},
           **{k: v for cls in _CLASSES.values() for k, v in cls.implied.items()}}
IMPLIED["learning_rate"] = {**IMPLIED["learning_rate"],
                            "schedule": {k: v for k, v in schedules.DEFAULTS.items()}}
REGULARIZATION_KINDS = ("l1", "l2")
NONFINITE_POLICIES = ("raise", "stop", "ignore")  # on_nonfinite: see divergence.py
# The options each algorithm reads (besides error_fn, stats, regularization, on_nonfinite);
# any other section would be silently ignored, so it is refused.  Nesterov momentum replaces
# the algorithm by gradient descent (SYNAPTIC.md §5), which then reads learning_rate.
USES = {name: set(cls.uses) | set(cls.schema) | ({"early_stopping"} if cls.epoch_based else set())
        for name, cls in _CLASSES.items()}
SECTIONS = (*OPTIONAL, *(k for cls in _CLASSES.values() for k in cls.schema))


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
    if "schedule" in lr:
        _require("epsilon" in lr, "learning_rate.schedule needs learning_rate.epsilon")
        schedules.validate(lr["schedule"], lr["epsilon"])
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
    stopping = params.get("early_stopping")
    if stopping is not None:
        if "errorkind" in stopping:
            losses.specific_kind(stopping["errorkind"], None)
        _require(stopping.get("patience", 0) >= 0,
                 f"early_stopping.patience must be >= 0, got {stopping.get('patience')}")
        _require(stopping.get("min_delta", 0) >= 0,
                 f"early_stopping.min_delta must be >= 0, got {stopping.get('min_delta')}")
    _CLASSES[algo].validate(params)
    if "weight_decay" in params:
        decay = params["weight_decay"]
        uses_rate = "learning_rate" in USES[algo] or _nesterov(params)
        rate = lr.get("epsilon", 1.0) if uses_rate else 1.0
        _require(decay >= 0 and decay * rate < 1,
                 f"weight_decay must be >= 0 with weight_decay * learning rate < 1 (the weights "
                 f"are scaled by 1 - {rate} * {decay} each update), got {decay}")


def _nesterov(params):
    return bool(params.get("momentum", {}).get("nesterov"))


def _validate_combination(algo, params):
    """Refuse the options this algorithm would silently ignore."""
    nesterov = _nesterov(params)
    if nesterov and "momentum" not in USES[algo]:
        raise ValueError(f"Nesterov momentum is a gradient-descent method: it cannot replace "
                         f"{algo!r} training (use backprop)")
    used = USES[algo] | ({"learning_rate"} if nesterov else set())
    for section in SECTIONS:
        if section in params and section not in used:
            hint = (f" unless momentum.nesterov replaces {algo} by gradient descent"
                    if "momentum" in used and section == "learning_rate" else "")
            reads = (f"it reads {', '.join(sorted(used))}" if used
                     else "it takes no options besides error_fn and stats")
            raise ValueError(f"option {section!r} does not apply to {algo!r} training{hint}; {reads}")
    if params.get("learning_rate", {}).get("adaptive") and not _CLASSES[algo].adaptive_gains \
            and not nesterov:
        raise ValueError(f"learning_rate.adaptive (per-weight gains) does not apply to {algo!r} "
                         f"training (backprop and rmsprop have them)")


def training(algo, params=None):
    if not isinstance(algo, str) or algo.lstrip(":") not in ALGOS:
        raise ValueError(f"unknown training algorithm {algo!r}; known: {', '.join(ALGOS)}")
    algo = algo.lstrip(":")
    merged = deep_merge(DEFAULTS[algo], normalize(params or {}))
    validate(algo, merged)
    return Training(algo, merged)


# The docstring of training(), generated from the algorithms' declarations -------------------

ALGO_DOCS = {name: cls.doc for name, cls in _CLASSES.items()}
KEY_DOCS = {  # key -> (what it is, what happens when it is left out and has no default value)
    "error_fn": ("the error function: cross-entropy, sum-of-squares or misclassification", None),
    "learning_rate": ("the learning rate section", None),
    "learning_rate.epsilon": ("the learning rate (> 0)", "required by Nesterov momentum"),
    "learning_rate.adaptive": ("per-weight adaptive gains (backprop, rmsprop)", None),
    "learning_rate.ming": ("the smallest gain (the original suggests 0.01)",
                           "required with adaptive"),
    "learning_rate.maxg": ("the largest gain (the original suggests 10.0)",
                           "required with adaptive"),
    "learning_rate.schedule": ("a learning-rate schedule, one rate per epoch (see "
                               "synaptic/training/schedules.py); the rate in force is recorded "
                               "in stats.learning_rate", "a constant rate"),
    "learning_rate.schedule.kind": ("step (epsilon * gamma^(e // step_size)), exponential "
                                    "(epsilon * gamma^e), cosine (from epsilon to min_epsilon "
                                    "over epochs) or plateau (times factor after patience "
                                    "epochs without improvement of errorkind)",
                                    "required with schedule"),
    "learning_rate.schedule.step_size": ("step: the epochs between two reductions",
                                         "required by step"),
    "learning_rate.schedule.gamma": ("step, exponential: the factor, in (0, 1]", None),
    "learning_rate.schedule.epochs": ("cosine: the epochs of the half cosine",
                                      "required by cosine"),
    "learning_rate.schedule.min_epsilon": ("cosine, plateau: the lowest rate", None),
    "learning_rate.schedule.factor": ("plateau: the reduction factor, in (0, 1)", None),
    "learning_rate.schedule.patience": ("plateau: the epochs without improvement tolerated",
                                        None),
    "learning_rate.schedule.threshold": ("plateau: the smallest improvement that counts "
                                         "(absolute)", None),
    "learning_rate.schedule.errorkind": ("plateau: the error watched, on the validation set "
                                         "when there is one (it must be recorded: "
                                         "stats.errorkinds)", "the error_fn"),
    "learning_rate.schedule.warmup": ("epochs of linear warmup before the schedule", None),
    "learning_rate.schedule.warmup_start": ("the warmup's first factor, in (0, 1]", None),
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
    "stats.batch_loss": ("also record stats.batch_loss: each epoch's mean over its rows of "
                         "the error_fn's loss as each batch saw it, before its step (what "
                         "scikit-learn and Keras report; no extra pass over the data)",
                         "false"),
    "weight_decay": ("decoupled weight decay: W <- (1 - epsilon * weight_decay) W before each "
                     "update (epsilon 1 for rprop; with adam it is AdamW), the bias column "
                     "exempt", "none"),
    "on_nonfinite": ("what a NaN or infinite weight or training loss does: 'raise' (the Future "
                     "raises TrainingDiverged naming the epoch and batch; the net keeps the "
                     "last finite weights), 'stop' (the same weights, training ends with a "
                     "RuntimeWarning and stats.diverged), 'ignore' (no check)", None),
    "early_stopping": ("stop when the validation error has not improved for patience epochs "
                       "(see loop.py; stats.early_stopping says when it stopped and which "
                       "epoch was best)", "train every epoch asked for"),
    "early_stopping.errorkind": ("the error watched on the validation set (it must be "
                                 "recorded: stats.errorkinds)", "the error_fn"),
    "early_stopping.patience": ("the epochs without improvement tolerated (>= 0)", None),
    "early_stopping.min_delta": ("the smallest improvement that counts (>= 0, absolute)", None),
    "early_stopping.restore_best": ("put back the weights of the best epoch when it stops",
                                    None),
    **{k: v for cls in _CLASSES.values() for k, v in cls.key_docs.items()},
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
    if path in ("learning_rate.adaptive", "learning_rate.ming", "learning_rate.maxg"):
        return [a for a in ALGOS if _CLASSES[a].adaptive_gains]
    return [a for a in ALGOS
            if section in USES[a] or section in EVERYWHERE]


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
    usual_readers = [a for a, v in values.items() if repr(v) == usual]
    where = "" if len(readers) == len(ALGOS) else f" ({', '.join(usual_readers)})"
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
