"""Divergence detection (issue 13): a NaN or infinite weight or training loss ends training.

``params["on_nonfinite"]`` says what then happens:

``"raise"`` (the default)
    The Future raises :class:`TrainingDiverged`, naming the epoch and the batch; the net keeps
    the last finite weights, and the optimiser state that goes with them.
``"stop"``
    The same weights and state; the training ends as if stopped (the Future's result is the
    net) with a RuntimeWarning.
``"ignore"``
    No check at all (synaptic 0.1's behaviour: NaN weights and inf/NaN in the stats).

"raise" and "stop" record ``stats.diverged`` (``{"epoch", "batch", "what"}``), and do not
count the epoch that diverged in the stats (as a stopped epoch); they also refuse, when
``train`` is called, a net whose weights are already not finite (ValueError).

The epoch-based algorithms (perceptron, backprop, rprop, rmsprop) are checked once an epoch,
not after every batch (which the speed benchmarks would show): :class:`Guard` copies the
weights, the optimiser state (``net.training.state``), the batch count and the random state
of stochastic units when an epoch starts (for a tiny net, whose epochs take microseconds, at
the start of every few epochs: see Guard), and when an epoch ends (or stops) checks that every
weight is finite and then that each training error of the stats is.  If not, it restores the
copy and replays the epoch batch by batch with the kernels of the first pass -- a batch the
whole-epoch kernel trained is replayed by one call of that kernel on that batch, the same
arithmetic -- checking the weights after each batch, to find the first batch after which a
weight is not finite, and keeps the weights from before it.  If the training loss is not
finite there (or, when the weights stayed finite, at the epoch's end), a second replay
evaluates the training loss after each batch (one evaluation of the training set a batch, on
this rare path only) and stops before the first batch after which it is not finite.  Epochs and
batches are counted from 0: epoch ``e`` is the one after ``e`` recorded epochs, batch ``b`` is
``trset.batches[b]`` (of a set that reshuffles: ``trset.for_epoch(e).batches[b]``, the epoch's
order, which the replays train on too).

L-BFGS (lbfgs.py) checks every function evaluation instead: the point, the cost, the
gradient; its "epoch" is the iteration (counted from 0 in the run), its batch None.
"""
import copy
import math
import time
import warnings

import numpy as np

from .. import activations, distributed
from .optimizer import COMMON_IMPLIED, run_step
from .stats import training_errors

TRANSIENT = "state"  # net.training.state["state"]: training / stopping, never copied back
COPY_BUDGET = 0.01  # the share of an epoch's time the copy of its start may take, on average
MAX_EVERY = 64  # epochs a copy is kept at most (a divergence replays them)


class TrainingDiverged(ArithmeticError):
    """Training produced a NaN or infinite weight or loss (``on_nonfinite`` "raise").

    An ArithmeticError, as NumPy's FloatingPointError and Python's OverflowError: a numerical
    failure of the computation, not a bad argument (``train`` raises ValueError for those), so
    ``except ArithmeticError`` catches it together with ``np.errstate(all="raise")``'s errors.

    Parameters
    ----------
    epoch : int
        The epoch that diverged, counted from 0 (the number of epochs recorded before it);
        for L-BFGS, the iteration of the run.
    batch : int or None
        The batch, counted from 0 (``trset.batches[batch]``); None when the divergence is not
        a batch's (L-BFGS, or a loss already not finite when the epoch started).
    what : str
        What is not finite: ``"weights of layer 2"`` (layers counted as ``net.layers``, the
        input layer 0), ``"loss"``, ``"gradient of layer 1"`` (L-BFGS).
    message : str, optional
        The full message; by default one naming the three.

    Examples
    --------
    >>> import synaptic as syn
    >>> err = syn.TrainingDiverged(3, 5, "weights of layer 2")
    >>> err.epoch, err.batch, str(err)
    (3, 5, 'training diverged in epoch 3, batch 5: the weights of layer 2 became NaN or infinite')
    """

    def __init__(self, epoch, batch, what, message=None):
        self.epoch, self.batch, self.what = epoch, batch, what
        if message is None:
            where = f"epoch {epoch}" + ("" if batch is None else f", batch {batch}")
            message = f"training diverged in {where}: the {what} became NaN or infinite"
        super().__init__(message)

    def __reduce__(self):
        return type(self), (self.epoch, self.batch, self.what, str(self))

    def record(self):
        """The ``stats.diverged`` entry."""
        return {"epoch": self.epoch, "batch": self.batch, "what": self.what}


def policy(net):
    """The net's ``on_nonfinite``: "raise", "stop" or "ignore"."""
    return net.training.params.get("on_nonfinite", COMMON_IMPLIED["on_nonfinite"])


def bad_layer(weights):
    """The first layer (counted as net.layers: weights[i] is layer i + 1) whose weights are not
    all finite, or None."""
    for i, w in enumerate(weights, start=1):
        if not np.isfinite(w).all():  # measured: faster than a sum, and exact
            return i
    return None


def bad_kinds(values):
    """The error kinds of ``{kind: value}`` whose value is NaN or infinite."""
    return [k for k, v in values.items() if not math.isfinite(v)]


def finish(net, error):
    """End a diverged training: raise ``error`` ("raise") or warn ("stop")."""
    if policy(net) == "raise":
        raise error
    warnings.warn(f"{error} (on_nonfinite 'stop': the training ended)", RuntimeWarning,
                  stacklevel=2)


_IMMUTABLE = (float, int, bool, str, type(None))


def _copy_into(buf, value):
    """A copy of ``value`` (an array, a list of arrays, a scalar), in ``buf`` when it fits.
    (Exact type tests: this runs at every epoch's start, and tiny nets feel it.)"""
    kind = type(value)
    if kind is np.ndarray:
        if type(buf) is np.ndarray and buf.shape == value.shape and buf.dtype == value.dtype:
            np.copyto(buf, value)
            return buf
        return value.copy()
    if kind is list:
        if type(buf) is not list or len(buf) != len(value):
            buf = [None] * len(value)
        return [_copy_into(b, v) for b, v in zip(buf, value)]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


def _fresh(value):
    return _copy_into(None, value)


class _Copy:
    """What training changes, copied: the weights, the optimiser state, the batch count and the
    random state of stochastic units.  The buffers are reused from one take to the next."""

    def __init__(self, net):
        self.net = net
        self.weights = [np.empty_like(w) for w in net.weights]
        self.state, self.batches, self.rng = {}, 0, None
        self.stochastic = any(layer.act == activations.STOCHASTIC for layer in net.layers[1:])

    def take(self):
        net, old = self.net, self.state
        for buf, w in zip(self.weights, net.weights):
            np.copyto(buf, w)
        self.state = {k: _copy_into(old.get(k), v) for k, v in net.training.state.items()
                      if k != TRANSIENT}
        self.batches = net._batches
        if self.stochastic:
            self.rng = net.rng.bit_generator.state

    def restore(self):
        """Put the copy back: the weights in place, the state as fresh arrays (an algorithm
        made after this starts where the copy was taken)."""
        net, state = self.net, self.net.training.state
        for w, buf in zip(net.weights, self.weights):
            np.copyto(w, buf)
        for key in [k for k in state if k != TRANSIENT and k not in self.state]:
            del state[key]
        for key, value in self.state.items():
            state[key] = _fresh(value)
        net._batches = self.batches
        if self.rng is not None:
            net.rng.bit_generator.state = self.rng


class Guard:
    """The once-an-epoch check of an epoch-based training (see the module docstring).

    ``make`` builds an algorithm from the net's training (loop.make_algorithm); ``starts`` are
    the batch starts and the end, as the whole-epoch kernel takes them; ``epoch_data(e)`` is
    the data epoch ``e`` trains on (``data`` in another order when the set reshuffles; default
    ``data``): a replay trains on it, the checks evaluate ``data``.

    The copy is taken at the start of an epoch, and kept for the next ``every`` epochs when
    taking it would cost more than COPY_BUDGET of an epoch's time (tiny nets, whose epochs
    take microseconds): a divergence then replays the whole epochs since the copy first (each
    one passed its check, so its replay does too), then the offending epoch batch by batch."""

    def __init__(self, net, data, starts, kern, make, epoch_data=None):
        self.net, self.data, self.starts, self.kern, self.make = net, data, starts, kern, make
        self.epoch_data = epoch_data or (lambda epoch: data)
        self.kinds = list(net.training.stats.tr_err)
        self.start, self.before = _Copy(net), _Copy(net)
        self.no_stop = np.zeros(1, dtype=np.int32)  # a replay runs to its end
        self.since = None  # the epochs trained since the copy: (batches through algo.epoch, epoch)
        self.every, self.cost = 1, 0.0

    def begin(self):
        """An epoch starts: copy what it will change, unless the copy is recent enough."""
        if self.since is None or len(self.since) >= self.every:
            started = time.perf_counter()
            self.start.take()
            self.cost = time.perf_counter() - started
            self.since = []

    def end(self, algo, fused, done, complete, seconds=0.0):
        """After ``done`` batches of the epoch (the first ``fused`` of them through
        ``algo.epoch``), all of them if ``complete``, trained in ``seconds``: returns
        ``(algo, errors, diverged)``, the algorithm to go on with, the training errors of the
        stats ({kind: value}; None when the epoch is not complete) and None, or, when something
        is not finite, the :class:`TrainingDiverged` to end with, the net then as before the
        offending batch."""
        net = self.net
        layer = bad_layer(net.weights)
        errors = None
        if layer is None:
            if not complete:
                return algo, None, None
            if self.kinds:
                with net.lock:
                    errors = training_errors(net, self.data, self.kinds, self.kern)
            if not self.kinds or not bad_kinds(errors):
                self.since.append((fused, net.training.stats.epochs))
                # distributed: a copy every epoch (timings differ between the ranks, and
                # every rank must replay the same steps)
                self.every = (1 if self.cost <= COPY_BUDGET * seconds or distributed.current()
                              else min(MAX_EVERY, math.ceil(self.cost / (COPY_BUDGET * seconds)))
                              if seconds > 0 else MAX_EVERY)
                return algo, errors, None
        epoch = net.training.stats.epochs
        algo, error = net.swap(lambda n: self._replay(epoch, fused, done), "weights")
        if error is None:  # not found again (cannot happen with deterministic kernels)
            self.since = None
        return algo, None, error

    def _replay(self, epoch, fused, done):
        """The epoch again from its start, the weights checked after each batch; then, if the
        training loss is not finite where that stopped, again with the loss checked after
        each batch.  Returns (the algorithm, the TrainingDiverged or None), the net as
        before the offending batch."""
        net = self.net
        algo = self._restart()
        data = self.epoch_data(epoch)
        error = None
        for i in range(done):
            self._batch(algo, i, fused, data)
            layer = bad_layer(net.weights)
            if layer is not None:
                self.before.restore()
                what = f"weights of layer {layer}"
                error = TrainingDiverged(epoch, i, what, _message(epoch, i, what))
                break
        if self.kinds and self._loss_error(epoch, None) is not None:  # at the weights kept
            upto = done if error is None else error.batch
            algo = self._restart()
            data = self.epoch_data(epoch)
            error = self._loss_error(epoch, None) or error
            for i in range(upto if error is None or error.batch is not None else 0):
                self._batch(algo, i, fused, data)
                loss = self._loss_error(epoch, i)
                if loss is not None:
                    self.before.restore()
                    error = loss
                    break
        if error is not None:
            net.training.stats.diverged = error.record()
        return algo, error

    def _restart(self):
        """The net as this epoch started: the copy put back, a new algorithm on its state, the
        whole epochs since the copy trained again as the first pass did.  Returns the
        algorithm."""
        self.start.restore()
        algo = self.make(self.net)
        nb = len(self.starts) - 1
        for fused, epoch in self.since:
            data = self.epoch_data(epoch)
            if fused:
                algo.epoch(data.x, data.y, self.starts[:fused + 1], self.no_stop, self.kern)
            for batch in data.batches[fused:]:
                run_step(algo, batch.x, batch.y, self.kern, batch.w)
            self.net._batches += nb
        return algo

    def _batch(self, algo, i, fused, data):
        """Train batch i of the epoch's ``data`` as the first pass did (through algo.epoch if
        ``i < fused``), after copying the net to ``self.before``."""
        self.before.take()
        if i < fused:
            algo.epoch(data.x, data.y, self.starts[i:i + 2], self.no_stop, self.kern)
        else:
            batch = data.batches[i]
            run_step(algo, batch.x, batch.y, self.kern, batch.w)
        self.net._batches += 1

    def _loss_error(self, epoch, batch):
        """A TrainingDiverged if a training error is not finite at the net's weights.  (The
        random state of stochastic units is left as it was: the replay draws as the first
        pass did.)"""
        rng = self.net.rng.bit_generator.state if self.start.stochastic else None
        errors = training_errors(self.net, self.data, self.kinds, self.kern)  # all ranks'
        if rng is not None:
            self.net.rng.bit_generator.state = rng
        bad = bad_kinds(errors)
        if not bad:
            return None
        values = ", ".join(f"{k}: {errors[k]}" for k in bad)
        if batch is None:
            return TrainingDiverged(epoch, None, "loss", (
                f"training diverged in epoch {epoch}: the training loss was already NaN or "
                f"infinite ({values}) at the weights the epoch started with, which the net "
                f"keeps"))
        return TrainingDiverged(epoch, batch, "loss", _message(epoch, batch, "training loss",
                                                               f" ({values})"))


def _message(epoch, batch, what, values=""):
    return (f"training diverged in epoch {epoch}, batch {batch} (counted from 0: "
            f"trset.batches[{batch}]): the {what} became NaN or infinite{values}; the net "
            f"keeps the weights from before that batch")
