"""L-BFGS (SYNAPTIC.md §5, §6) through ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``.

The objective is the original's ``C(w) = Σ_samples errfn(out, t) + penalty`` over the whole
training set (every batch; the validation set excluded; on a set with per-row weights, the
weighted sum ``Σ w_i errfn_i + penalty``, evaluated by the per-layer kernels), with its exact gradient, **evaluated
at every point** (the original froze both at w0).  For sum-of-squares, whose backprop delta is
the gradient of ½Σ(o − t)², the data gradient is doubled so that C and ∇C agree; the penalty is
regularization.py's.  The weights are one float64 vector: each matrix row-major, the layers
concatenated, rebuilt from the arrays' real shapes (so conv nets work; the original rebuilt
fully-connected shapes).  A float32 net is evaluated in float32 at the rounded point; the
optimiser's vector stays float64.

Options (``params["lbfgs"]``): ``m`` the history size (5, bozo's), ``eps`` the original's stop
test ``‖g‖ / max(1, ‖x‖) ≤ eps`` at each new iterate (0.1, as Synaptic passes; 0 turns it off),
``maxls`` the function evaluations per line search (20, as RISO).  SciPy's own tests are off
by default (``ftol = gtol = 0``: they stop only on no progress at all) and can be turned on:
``ftol`` (stop when the relative decrease of the objective is at most ftol), ``gtol`` (when
the largest gradient component is at most gtol), ``maxfun`` (at most this many function
evaluations in a run; default ``epochs * (maxls + 1) + 1``), all on the objective SciPy sees,
which is ``scale`` (default 1) times C -- scikit-learn's MLP, for one, stops on its mean
objective, ``C / n``.

An epoch is one L-BFGS iteration (a completed line search), so even one epoch lowers the error;
bozo's ``maxit`` counted function evaluations instead (§10.11), so one epoch could end on a
rejected trial point.  As the original, each function evaluation is recorded as one stats
"epoch" (a "weights" then a "stats" swap, so watches see both), and at the end the weights are
set to the result and the stats recorded once more: N epochs add about N + 2 entries (more when
line searches need several evaluations).  Unlike the original, ``stop_training`` works: it is
checked before each evaluation, and the run ends at once.  Whatever ends the run (the epochs,
the eps test, a stop, a failed line search -- which the original threw on), the net gets the
best point evaluated (the lowest C), ``state["lbfgs_status"]`` says why it ended and
``state["lbfgs_iterations"]`` how many iterations the last run made.  An
exception raised by the objective also leaves the best weights in place.  Unless
``on_nonfinite`` is "ignore", each evaluation's point (as the net holds it), C and ∇C are
checked: one not finite ends the run with TrainingDiverged (or, "stop", a RuntimeWarning),
naming the iteration as its epoch (divergence.py), the best weights kept; the stats get no
entry for that evaluation.

Speed: every evaluation reads the same training set, so on the native kernels a mostly-zero
input (MNIST pixels) is packed once per run (:func:`pack`: its nonzeros and their bit masks,
~7 MB a layout instead of x's 31 MB; strategy.py chooses), and a net of one hidden layer evaluates C and ∇C in one
kernel call (``packed_objective``: rows in blocks of 64, forward, output layer and backward
while the block is in L1).  Measured on W1 (784-100-10, 10,000 digits, f32, 2 threads): an
evaluation 9.0 -> 6.5 ms; SciPy's own L-BFGS-B work is ~2.3 ms an iteration at m = 5.
"""
import math
import time

import numpy as np
from scipy.optimize import minimize

from .. import _kernels, distributed, losses
from . import divergence
from .divergence import TrainingDiverged, bad_layer, policy
from .gradients import Gradients, labelled, row_weights
from .optimizer import INT, NUMBER, Optimizer, register
from .stats import training_errors, update_stats, validation_errors
from .strategy import pack  # noqa: F401 (lbfgs.pack: its old home)

M, EPS, MAXLS = 5, 0.1, 20


def flatten(weights):
    """One float64 vector of every weight matrix, each row-major, in layer order."""
    out = np.empty(sum(w.size for w in weights), dtype=np.float64)
    start = 0
    for w in weights:
        out[start:start + w.size] = w.ravel()
        start += w.size
    return out


def unflatten(flat, weights):
    """Write ``flat`` (as :func:`flatten` lays it out) into ``weights`` in place; returns them."""
    total = sum(w.size for w in weights)
    if flat.ndim != 1 or flat.size != total:
        raise ValueError(f"a flat vector of {total} weights is needed, got shape {flat.shape}")
    start = 0
    for w in weights:
        w[...] = flat[start:start + w.size].reshape(w.shape)
        start += w.size
    return weights


class _Done(Exception):
    """Ends the optimisation early; the message is the reason."""


@register
class LBFGS(Optimizer):
    name = "lbfgs"
    doc = ("SciPy's L-BFGS-B on the whole training set in float64; one epoch is one "
           "iteration, one stats entry per function evaluation.")
    schema = {"lbfgs": {"m": INT, "eps": NUMBER, "maxls": INT, "ftol": NUMBER, "gtol": NUMBER,
                        "maxfun": INT, "scale": NUMBER}}
    implied = {"lbfgs": {"m": M, "eps": EPS, "maxls": MAXLS, "ftol": 0.0, "gtol": 0.0,
                         "scale": 1.0}}
    key_docs = {"lbfgs": ("the L-BFGS section", None),
                "lbfgs.m": ("the history size (>= 1)", None),
                "lbfgs.eps": ("the stop test: ||g|| / max(1, ||w||) <= eps", None),
                "lbfgs.maxls": ("the line-search budget per iteration (>= 1)", None),
                "lbfgs.ftol": ("SciPy's relative-decrease stop test (0: off)", None),
                "lbfgs.gtol": ("SciPy's largest-gradient-component stop test (0: off)", None),
                "lbfgs.maxfun": ("at most this many function evaluations a run",
                                 "epochs * (maxls + 1) + 1"),
                "lbfgs.scale": ("the objective SciPy sees (and its tests) is scale * C",
                                None)}
    scalar_state = ("lbfgs_iterations",)
    epoch_based = False

    @classmethod
    def validate(cls, params):
        lb = cls.options(params)
        if lb["m"] < 1:
            raise ValueError(f"lbfgs.m (the history size) must be >= 1, got {lb['m']}")
        if lb["eps"] < 0:
            raise ValueError(f"lbfgs.eps must be >= 0, got {lb['eps']}")
        if lb["maxls"] < 1:
            raise ValueError(f"lbfgs.maxls must be >= 1, got {lb['maxls']}")
        for key in ("ftol", "gtol"):
            if not lb[key] >= 0 or not math.isfinite(lb[key]):
                raise ValueError(f"lbfgs.{key} must be a finite number >= 0, got {lb[key]}")
        if "maxfun" in lb and lb["maxfun"] < 1:
            raise ValueError(f"lbfgs.maxfun must be >= 1, got {lb['maxfun']}")
        if not lb["scale"] > 0 or not math.isfinite(lb["scale"]):
            raise ValueError(f"lbfgs.scale must be a finite number > 0, got {lb['scale']}")

    def __init__(self, net):
        if net.dropouts:
            raise ValueError("L-BFGS cannot train a net with dropout: its line search needs "
                             "the same objective at every evaluation (use adam, backprop, "
                             "rmsprop or rprop, or drop the dropout layers)")
        super().__init__(net)
        lb = self.params.get("lbfgs", {})
        self.m = int(lb.get("m", M))
        self.eps = float(lb.get("eps", EPS))
        self.maxls = int(lb.get("maxls", MAXLS))
        self.ftol, self.gtol = float(lb.get("ftol", 0.0)), float(lb.get("gtol", 0.0))
        self.maxfun = lb.get("maxfun")
        self.scale = float(lb.get("scale", 1.0))
        self.gradients = Gradients(net, self.error_fn)
        self.error_code = losses.KINDS[losses.specific_kind(self.error_fn, net.layers[-1].act)]
        self.data_scale = 2.0 if self.error_fn == "sum-of-squares" else 1.0

    def cost(self, x, t, kern=None, packed=None, w=None):
        """C and [∂C/∂W] at the net's current weights for samples ``x``, targets ``t``
        (``packed``: x packed by :func:`pack`, or None; ``w``: per-row weights, C the
        weighted sum of the errors plus the penalty)."""
        kern = kern or _kernels.get_backend()
        weights = self.net.weights
        c, grads = self.gradients.compute_with_error(x, t, self.error_code, kern, packed, w)
        if self.data_scale != 1.0:
            for g in grads:
                g *= self.data_scale
        self.reg.add_derivative(grads, weights, kern)
        return c + self.reg.penalty(weights), grads

    def run(self, data, epochs, kern=None):
        """Optimise on the training part of ``data`` for ``epochs`` L-BFGS iterations."""
        if epochs == 0:
            return
        search = _Search(self, data, kern or _kernels.get_backend())
        maxfun = epochs * (self.maxls + 1) + 1 if self.maxfun is None else int(self.maxfun)
        try:
            result = minimize(search.scaled, search.best.copy(), jac=True, method="L-BFGS-B",
                              callback=search.callback,
                              options={"maxcor": self.m, "maxls": self.maxls, "ftol": self.ftol,
                                       "gtol": self.gtol, "maxiter": epochs, "maxfun": maxfun})
            status = str(result.message)
        except _Done as done:
            status = str(done)
        except TrainingDiverged as diverged:
            self.net.swap(lambda net: search.keep_best(net, diverged), "weights")
            divergence.finish(self.net, diverged)  # raises unless on_nonfinite is "stop"
            status = f"diverged: {diverged}"
        except BaseException:
            self.net.swap(search.keep_best, "weights")
            raise

        def finish(net):
            search.keep_best(net)
            net.training.state["lbfgs_status"] = status
            net.training.state["lbfgs_iterations"] = search.iterations  # of the last run

        self.net.swap(finish, "weights")
        self.net.swap(lambda net: update_stats(net, data, 0.0), "stats")


class _Search:
    """What SciPy calls during one run, with the run's bookkeeping: the best point evaluated,
    the last one and its ‖g‖ / max(1, ‖x‖) for the eps test, the stop request."""

    def __init__(self, lbfgs, data, kern):
        self.lbfgs, self.net, self.data, self.kern = lbfgs, lbfgs.net, data, kern
        self.best_cost, self.best = math.inf, flatten(self.net.weights)
        self.last, self.last_g = None, None
        self.packed = pack(lbfgs.gradients, data.x, kern)
        self.check = policy(self.net) != "ignore"
        self.iterations = self.evaluations = 0

    def objective(self, w):
        """C(w) and ∇C(w): one function evaluation, one "weights" and one "stats" swap."""
        if distributed.stopping(self.net):  # any rank's request, when distributed
            raise _Done("stopped by stop_training")
        started = time.perf_counter()
        x, t, rw = self.data.x, self.data.y, self.data.w
        result = []

        def evaluate(net):
            unflatten(w, net.weights)
            cost, grads = (self.lbfgs.cost(x, t, self.kern, self.packed) if rw is None
                           else self.lbfgs.cost(x, t, self.kern, self.packed, rw))
            result.extend((cost, flatten(grads)))

        self.net.swap(evaluate, "weights")
        cost, g = result
        self.evaluations += 1
        if self.check:
            self._check(cost, g)
        self.last, self.last_g = w.copy(), g     # never changed after; last may become best
        if cost < self.best_cost:
            self.best_cost, self.best = cost, self.last
        out = self.lbfgs.gradients.workspace(x.shape[0]).acts[-1]
        seconds = time.perf_counter() - started
        self.net.swap(lambda net: _record(net, out, t, self.data, seconds, self.kern), "stats")
        return cost, g

    def scaled(self, w):
        """What SciPy minimises: ``lbfgs.scale`` times the objective."""
        cost, g = self.objective(w)
        scale = self.lbfgs.scale
        return (cost, g) if scale == 1.0 else (scale * cost, scale * g)

    def _check(self, cost, g):
        """Raise TrainingDiverged if the point (as the net holds it), the cost or the gradient
        of this evaluation is not finite."""
        weights = self.net.weights
        layer = bad_layer(weights)
        what = None if layer is None else f"weights of layer {layer}"
        if what is None and not math.isfinite(cost):
            what = "loss"
        if what is None and not np.isfinite(g).all():
            sizes = np.cumsum([w.size for w in weights])
            first = int(np.flatnonzero(~np.isfinite(g))[0])
            what = f"gradient of layer {int(np.searchsorted(sizes, first, side='right')) + 1}"
        if what is not None:
            raise TrainingDiverged(self.iterations, None, what, (
                f"training diverged in L-BFGS iteration {self.iterations} (counted from 0), at "
                f"function evaluation {self.evaluations - 1} of this run: the {what} became NaN "
                f"or infinite; the net keeps the best weights evaluated"))

    def callback(self, intermediate_result):
        """After each iteration: the original's stop test at the new point (the last evaluated)."""
        self.iterations += 1
        if self.last is not None and self._ratio_at_most(self.lbfgs.eps) \
                and np.array_equal(intermediate_result.x, self.last):
            raise _Done(f"converged: |g| / max(1, |x|) <= {self.lbfgs.eps}")

    def _ratio_at_most(self, eps):
        """‖g‖ / max(1, ‖x‖) <= eps at the last point evaluated (‖x‖ only when needed).
        einsum, not dot: no call into NumPy's BLAS, whose threads would then spin."""
        gnorm = math.sqrt(np.einsum("i,i->", self.last_g, self.last_g))
        if gnorm <= eps:
            return True
        return gnorm <= eps * math.sqrt(np.einsum("i,i->", self.last, self.last))

    def keep_best(self, net, diverged=None):
        unflatten(self.best, net.weights)
        if diverged is not None:
            net.training.stats.diverged = diverged.record()
            net.training.state["lbfgs_status"] = f"diverged: {diverged}"


def _record(net, out, t, data, seconds, kern):
    """update_stats for one function evaluation, the training errors taken from its outputs."""
    stats = net.training.stats
    kinds = list(stats.tr_err)
    stats.epochs += 1
    stats.seconds.append(seconds)
    if not kinds:
        return
    for kind, value in training_errors(net, data, kinds, kern, out).items():
        stats.tr_err[kind].append(value)
    valid = validation_errors(net, data, kinds, kern)
    if valid is not None:
        for kind, value in valid.items():
            stats.val_err.setdefault(kind, []).append(value)  # as update_stats


def cost_and_derivatives(net, dset):
    """The L-BFGS objective C (a float) and its gradient (one array per weight matrix) on the
    labelled DataSet ``dset``, with the net's training params (SYNAPTIC.md §9.8)."""
    if net.training is None:
        raise ValueError("the net has no training; its params define the cost")
    x, t = labelled(net, dset, "cost_and_derivatives")
    c, grads = LBFGS(net).cost(x, t, w=row_weights(net, dset))
    return c, [g.copy() for g in grads]
