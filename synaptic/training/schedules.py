"""Learning-rate schedules: ``params["learning_rate"]["schedule"]``, one rate per epoch.

``{"kind": ..., ...}`` scales ``learning_rate.epsilon`` (ε) at epoch ``e`` (0-based, counted
over every train call, so a resumed training continues where it was):

``"step"``
    ε·gamma^⌊e / step_size⌋ (``step_size`` required, ``gamma`` 0.1): PyTorch's StepLR.
``"exponential"``
    ε·gamma^e (``gamma`` required, in (0, 1]): ExponentialLR.
``"cosine"``
    min_epsilon + (ε − min_epsilon)·(1 + cos(π·min(e, epochs) / epochs)) / 2 (``epochs``
    required, ``min_epsilon`` 0): CosineAnnealingLR without restarts, flat after ``epochs``.
``"plateau"``
    ε·factor^k, k the number of times the monitored error (``errorkind``, default the
    error_fn, on the validation set when there is one, else the training set) went
    ``patience`` epochs (10) without improving on its best by more than ``threshold`` (0,
    absolute), never below ``min_epsilon`` (0); ``factor`` 0.1: ReduceLROnPlateau.  After
    each reduction the count restarts.  Its position (k, the best value, the epochs waited)
    is optimiser state (``plateau_reductions``, ``plateau_best``, ``plateau_wait``), saved with the
    net.

``warmup`` (epochs, default 0) adds a linear warmup: the rate times warmup_start + (1 −
warmup_start)·e / warmup for e < warmup (``warmup_start`` 0.1; PyTorch's LinearLR), then the
schedule runs on ``e − warmup``.  The rate in force is recorded in ``stats.learning_rate``.
"""
import math

from .. import losses

KINDS = ("step", "exponential", "cosine", "plateau")
KEYS = {"step": {"step_size", "gamma"}, "exponential": {"gamma"},
        "cosine": {"epochs", "min_epsilon"},
        "plateau": {"factor", "patience", "threshold", "errorkind", "min_epsilon"}}
REQUIRED = {"step": ("step_size",), "exponential": ("gamma",), "cosine": ("epochs",)}
DEFAULTS = {"gamma": 0.1, "min_epsilon": 0.0, "factor": 0.1, "patience": 10, "threshold": 0.0,
            "warmup": 0, "warmup_start": 0.1}
# The plateau kind's position: reductions so far, the best value, the epochs waited since.
STATE = ("plateau_reductions", "plateau_best", "plateau_wait")
HIGHER_IS_BETTER = {losses.ACCURACY}


def _require(condition, message):
    if not condition:
        raise ValueError(message)


def validate(schedule, epsilon):
    """Raise ValueError for a schedule that cannot work (types are checked by the schema)."""
    kind = schedule.get("kind")
    _require(kind in KINDS, f"learning_rate.schedule.kind must be one of "
                            f"{', '.join(map(repr, KINDS))}, got {kind!r}")
    allowed = KEYS[kind] | {"kind", "warmup", "warmup_start"}
    extra = sorted(set(schedule) - allowed)
    _require(not extra, f"learning_rate.schedule of kind {kind!r} takes no {extra}; "
                        f"it takes {sorted(allowed - {'kind'})}")
    for key in REQUIRED.get(kind, ()):
        _require(key in schedule, f"learning_rate.schedule of kind {kind!r} needs {key!r}")
    s = {**DEFAULTS, **schedule}
    for key in ("step_size", "epochs"):
        if key in schedule:
            _require(s[key] >= 1, f"learning_rate.schedule.{key} must be >= 1, got {s[key]}")
    if kind in ("step", "exponential"):
        _require(0 < s["gamma"] <= 1, f"learning_rate.schedule.gamma must be in (0, 1], "
                                      f"got {s['gamma']}")
    if kind == "plateau":
        _require(0 < s["factor"] < 1, f"learning_rate.schedule.factor must be in (0, 1), "
                                      f"got {s['factor']}")
        _require(s["patience"] >= 0, f"learning_rate.schedule.patience must be >= 0, "
                                     f"got {s['patience']}")
        _require(s["threshold"] >= 0, f"learning_rate.schedule.threshold must be >= 0, "
                                      f"got {s['threshold']}")
        if "errorkind" in schedule:
            losses.specific_kind(schedule["errorkind"], None)
    _require(0 <= s["min_epsilon"] <= epsilon, f"learning_rate.schedule.min_epsilon must be in "
                                               f"[0, epsilon = {epsilon}], got {s['min_epsilon']}")
    _require(s["warmup"] >= 0, f"learning_rate.schedule.warmup must be >= 0, got {s['warmup']}")
    _require(0 < s["warmup_start"] <= 1, f"learning_rate.schedule.warmup_start must be in "
                                         f"(0, 1], got {s['warmup_start']}")


def better(kind, value, best, threshold):
    """Whether ``value`` improves on ``best`` by more than ``threshold`` for error ``kind``."""
    if kind in HIGHER_IS_BETTER:
        return value > best + threshold
    return value < best - threshold


def monitored(stats, kind):
    """The last value of ``kind`` on the validation set when recorded there, else training."""
    series = stats.val_err.get(kind) or stats.tr_err.get(kind)
    return series[-1] if series else None


class Schedule:
    """The rate of each epoch from ``learning_rate`` (its epsilon and schedule); the plateau
    kind keeps its position in ``state[STATE]``."""

    def __init__(self, lr, state, errorkind=None):
        self.lr = lr  # read at each rate(): a change of lr["epsilon"] applies from the next epoch
        self.spec = {**DEFAULTS, **lr.get("schedule", {})} if "schedule" in lr else None
        self.state = state
        self.kind = self.spec["kind"] if self.spec else None
        self.errorkind = errorkind  # the plateau kind's monitored error, resolved

    def rate(self, epoch):
        """The rate in force during epoch ``epoch`` (0-based)."""
        s, eps = self.spec, float(self.lr["epsilon"])
        if s is None:
            return eps
        warm = s["warmup"]
        factor = 1.0
        if epoch < warm:
            factor = s["warmup_start"] + (1.0 - s["warmup_start"]) * epoch / warm
        e = max(epoch - warm, 0)
        if self.kind == "step":
            return factor * eps * s["gamma"] ** (e // s["step_size"])
        if self.kind == "exponential":
            return factor * eps * s["gamma"] ** e
        if self.kind == "cosine":
            t = min(e, s["epochs"]) / s["epochs"]
            low = s["min_epsilon"]
            return factor * (low + (eps - low) * (1.0 + math.cos(math.pi * t)) / 2.0)
        reductions = self.state.get(STATE[0], 0)
        return factor * max(eps * s["factor"] ** reductions, s["min_epsilon"])

    def observe(self, stats):
        """After an epoch's stats: the plateau kind counts the epochs without improvement of
        its error and reduces the rate after more than ``patience`` of them."""
        if self.kind != "plateau" or stats.epochs <= self.spec["warmup"]:
            return
        value = monitored(stats, self.errorkind)
        if value is None or not math.isfinite(value):
            return
        state = self.state
        best = state.get(STATE[1])
        if best is None or better(self.errorkind, value, best, self.spec["threshold"]):
            state[STATE[1]], state[STATE[2]] = float(value), 0
        else:
            state[STATE[2]] = state.get(STATE[2], 0) + 1
            if state[STATE[2]] > self.spec["patience"]:
                state[STATE[0]], state[STATE[2]] = state.get(STATE[0], 0) + 1, 0
