"""The optimizer base and the registry: one class per training algorithm, one file each.

An algorithm is a subclass of :class:`Optimizer` decorated with :func:`register`.  The class
declares everything the params layer needs -- its defaults, the schema of its own section, the
defaults applied to left-out keys, the shared sections it reads, the docs of its keys, the
optimiser state it saves -- and implements ``step(x, t, kern)`` (one batch).  params.py builds
its tables, validation and the docstring of ``training()`` from the registry, persist.py
reads ``weight_state`` / ``scalar_state``, and loop.py builds the algorithm by name.  Adding an
optimizer is its file, its name in ``MODULES`` below, its update kernel and twin, and tests.

The base keeps what the first-order algorithms share: the net and its optimiser state (one
weight-shaped array per layer, from the state or fresh), the gradients, the learning rate in
force (with its schedule, see schedules.py), momentum's alpha schedule, regularization and
decoupled weight decay, and the stats hook (``epoch_record``: what the per-epoch stats record
about the optimizer).
"""
import importlib

import numpy as np

from .. import losses
from .regularization import Regularizer
from .schedules import Schedule

NUMBER, INT, BOOL, STR, LIST = "number", "int", "bool", "string", "list"

# The modules that define the algorithms, in the order the docs list them.
MODULES = ("perceptron", "backprop", "rprop", "rmsprop", "adam", "lbfgs")
REGISTRY = {}

# The sections every algorithm shares; the opt-in ones (OPTIONAL) are read only by the
# algorithms whose ``uses`` name them, and refused elsewhere.
COMMON_SCHEMA = {
    "error_fn": STR,
    "learning_rate": {"epsilon": NUMBER, "adaptive": BOOL, "ming": NUMBER, "maxg": NUMBER,
                      "schedule": {"kind": STR, "step_size": INT, "gamma": NUMBER,
                                   "epochs": INT, "min_epsilon": NUMBER, "factor": NUMBER,
                                   "patience": INT, "threshold": NUMBER, "errorkind": STR,
                                   "warmup": INT, "warmup_start": NUMBER}},
    "momentum": {"alpha": NUMBER, "alpha_start": NUMBER, "alpha_step": NUMBER, "nesterov": BOOL},
    "regularization": {"lambda": NUMBER, "kind": STR},
    "stats": {"errorkinds": LIST, "batch_loss": BOOL},
    "weight_decay": NUMBER,
    "on_nonfinite": STR,
    "early_stopping": {"errorkind": STR, "patience": INT, "min_delta": NUMBER,
                       "restore_best": BOOL},
}
COMMON_IMPLIED = {
    "learning_rate": {"adaptive": False},
    "momentum": {"nesterov": False},
    "regularization": {"lambda": 0.0},
    "on_nonfinite": "raise",
}
# The state every algorithm may hold besides its own: the plateau schedule's position and
# early stopping's (loop.py; its best weights are one array per weight matrix).
COMMON_SCALAR_STATE = ("plateau_reductions", "plateau_best", "plateau_wait",
                       "es_best", "es_best_epoch", "es_wait")
COMMON_WEIGHT_STATE = ("es_weights",)
WEIGHT_STATE = {}  # name -> the state keys kept as one weight-shaped array per layer
SCALAR_STATE = []  # every numeric state key of any algorithm
OPTIONAL = ("learning_rate", "momentum", "weight_decay", "early_stopping")
EVERYWHERE = ("error_fn", "stats", "regularization", "on_nonfinite")


def register(cls):
    """Class decorator: add an algorithm to the registry under ``cls.name``."""
    if not cls.name or cls.name in REGISTRY:
        raise ValueError(f"an algorithm needs a new name, got {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def algorithms():
    """{name: class} of every algorithm, in MODULES order (imported on first use)."""
    if len(REGISTRY) < len(MODULES):
        for module in MODULES:
            importlib.import_module(f"{__package__}.{module}")
        REGISTRY.update({k: REGISTRY.pop(k) for k in sorted(REGISTRY, key=_order)})
        WEIGHT_STATE.update({name: cls.weight_state + COMMON_WEIGHT_STATE
                             for name, cls in REGISTRY.items()})
        SCALAR_STATE[:] = sorted({*COMMON_SCALAR_STATE,
                                  *(k for cls in REGISTRY.values() for k in cls.scalar_state)})
    return REGISTRY


def _order(name):
    return next((i for i, m in enumerate(MODULES) if REGISTRY[name].__module__.endswith(m)),
                len(MODULES))


class Optimizer:
    """The base of a training algorithm (the class attributes are its declaration).

    Attributes
    ----------
    name : str
        The algorithm's name in ``training(name, ...)``.
    doc : str
        One or two sentences for the docstring of ``training()``.
    defaults : dict
        Merged into the user's params (the original's defaults; ``error_fn`` included).
    schema : dict
        The algorithm's own section(s): ``{"adam": {"beta1": NUMBER, ...}}``.
    implied : dict
        The values that apply to keys left out (not merged into the params, so a saved net's
        params stay as the user gave them).
    uses : frozenset
        The opt-in shared sections it reads (of OPTIONAL) besides its own.
    key_docs : dict
        ``{"section.key": (what it is, what happens when left out or None)}`` for its own keys.
    weight_state, scalar_state : tuple
        The state keys it keeps as one weight-shaped array per layer, and as a number.
    adaptive_gains : bool
        Whether ``learning_rate.adaptive`` applies.
    epoch_based : bool
        Trained epoch by epoch of batches (``step``), so early stopping applies; L-BFGS is not.
    """

    name = None
    doc = ""
    defaults = {"error_fn": "cross-entropy"}
    schema = {}
    implied = {}
    uses = frozenset()
    key_docs = {}
    weight_state = ()
    scalar_state = ()
    adaptive_gains = False
    epoch_based = True

    @classmethod
    def options(cls, params):
        """The algorithm's own section (named as it): its defaults, then the implied values,
        then the user's."""
        return {**cls.defaults.get(cls.name, {}), **cls.implied.get(cls.name, {}),
                **params.get(cls.name, {})}

    @classmethod
    def validate(cls, params):
        """Raise ValueError for values of its own section(s) that cannot work."""

    def __init__(self, net):
        self.net = net
        self.params = params = net.training.params
        self.error_fn = losses.check_error_fn(params["error_fn"])
        self.momentum = params.get("momentum")
        self.reg = Regularizer(params)
        lr = params.get("learning_rate") or {}
        self.schedule = None
        if "epsilon" in lr:
            spec = lr.get("schedule") or {}
            kind = (recorded_kind(net, spec.get("errorkind", params["error_fn"]),
                                  "the plateau schedule") if spec.get("kind") == "plateau" else None)
            self.schedule = Schedule(lr, net.training.state, kind)
        stats = net.training.stats
        self.begin_epoch(stats.epochs if stats is not None else 0)

    @property
    def state(self):
        return self.net.training.state

    def per_weight(self, key, fill=np.zeros_like):
        """The state's ``key`` (one array per weight matrix), or fresh arrays ``fill(w)``."""
        return self.state.get(key) or [fill(w) for w in self.net.weights]

    def begin_epoch(self, epoch):
        """Called before each epoch (0-based count of the epochs trained): the rate in force."""
        self.epsilon = self.schedule.rate(epoch) if self.schedule is not None else None

    def end_epoch(self, stats):
        """Called after each epoch's stats are recorded (the plateau schedule reads them)."""
        if self.schedule is not None:
            self.schedule.observe(stats)

    def epoch_record(self):
        """What the stats record about this epoch's optimizer: ``{"learning_rate": rate}``."""
        return {} if self.epsilon is None else {"learning_rate": self.epsilon}

    def next_alpha(self):
        """Momentum's alpha for this step (None without momentum): alpha_start, then
        +alpha_step each step, capped at alpha; the running value is kept in
        ``state["alpha"]`` only when alpha_start is given."""
        return momentum_alpha(self.momentum, self.state)


def run_step(algo, x, t, kern, w=None):
    """``algo.step`` on one batch, its per-row weights ``w`` passed only when the set has
    them (so a ``step(x, t, kern)`` of before per-row weights still trains unweighted sets)."""
    if w is None:
        return algo.step(x, t, kern)
    return algo.step(x, t, kern, w)


def recorded_kind(net, kind, who):
    """``kind`` resolved for the net's output; ValueError unless the stats record it (the
    plateau schedule and early stopping read it from them)."""
    from .stats import stat_kinds
    resolved = losses.specific_kind(kind, net.layers[-1].act)
    if resolved not in stat_kinds(net):
        raise ValueError(f"{who} watches {kind!r}, which the stats do not record: add it to "
                         f"params['stats']['errorkinds'] (recorded: {stat_kinds(net)})")
    return resolved


def momentum_alpha(momentum, state):
    """α of this step (None without momentum), as :meth:`Optimizer.next_alpha`."""
    if momentum is None:
        return None
    if "alpha" in state:
        alpha = min(state["alpha"] + momentum["alpha_step"], momentum["alpha"])
    else:
        alpha = momentum.get("alpha_start", momentum["alpha"])
    if "alpha_start" in momentum:
        state["alpha"] = alpha
    return alpha
