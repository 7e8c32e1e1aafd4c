"""The training loop (SYNAPTIC.md §6): a worker thread per ``train`` call (see _workers.py), a
Future for its result, a stop between batches, stats at each epoch end, watchers notified on every transition.

Differences from the original, on purpose: the state is set to ``training`` before ``train``
returns (so ``stop_training`` right after ``train`` always works); an exception reaches the
Future and the state is reset (the original left it at ``training``); the training set's
labels and name are stored on the net so ``estimate`` returns labels (continuous targets: their
scaling, so that it returns values in the user's units); ``stop_training`` also
stops L-BFGS (the original raised), which is not batch-based: see lbfgs.py.

As the original, ``momentum.nesterov`` selects Nesterov's method (gradient descent, in
backprop.py) whatever the algorithm; params.py refuses it where it cannot work.
"""
import concurrent.futures
import time
from numbers import Integral

import numpy as np

from .. import _kernels, _workers, distributed, losses
from ..datasets import TrainingSet, check_target_scaling
from ..sparse import is_sparse
from .backprop import Backprop
from .divergence import Guard, finish, policy
from .early_stopping import EarlyStopping
from .optimizer import algorithms, run_step
from .stats import check_targets, init_stats, update_stats, weighted_error_sum
from .threads import chooser as thread_chooser

FUSED_CALLS = 16  # a watched epoch through sgd_epoch: this many calls, a "weights" event each

ALGORITHMS = algorithms()  # {name: class}, see optimizer.py


def make_algorithm(net):
    algo = net.training.algo
    if algo not in ALGORITHMS:
        raise ValueError(f"training algorithm {algo!r} is not available in this version; "
                         f"available: {', '.join(ALGORITHMS)}")
    if (net.training.params.get("momentum") or {}).get("nesterov"):
        algorithm = Backprop(net)  # SYNAPTIC.md §5: Nesterov replaces the algorithm
    else:
        algorithm = ALGORITHMS[algo](net)
    return distributed.attach(algorithm)  # its sums over every rank's rows, when distributed


def check_training_data(net, trset):
    """``trset`` checked (:meth:`TrainingSet.validate`, once per set) and fit for ``net``;
    returns it in the net's dtype, checked too (float32 may overflow to infinity)."""
    if not isinstance(trset, TrainingSet):
        raise TypeError(f"train needs a TrainingSet (see training_set), got {type(trset).__name__}")
    trset.validate()
    if trset.y is None:
        raise ValueError("train needs a labelled training set; this one has no labels")
    if trset.x.shape[1] != net.n_inputs:
        raise ValueError(f"the training samples have {trset.x.shape[1]} values, "
                         f"the net has {net.n_inputs} inputs")
    if trset.y.shape[1] != net.n_outputs:
        what = "target columns" if trset.continuous else f"classes (labels {trset.labels})"
        raise ValueError(f"the training set has {trset.y.shape[1]} {what}, the net has "
                         f"{net.n_outputs} outputs")
    check_targets(net, trset)  # continuous targets: sum-of-squares, no class-only kinds
    data = trset.astype(net.dtype)
    try:
        return data.validate()
    except ValueError as err:
        raise ValueError(f"{err} once converted to the net's {net.dtype}") from None


def _set_state(value):
    def swap(net):
        net.training.state["state"] = value
    return swap


def train(net, trset, epochs, *, after_epoch=None):
    """Train ``net`` on ``trset`` for ``epochs`` more epochs in a background thread.

    ``after_epoch``: a function called with the net in the training thread after each
    epoch's stats are recorded (not for L-BFGS); a true result ends the training there.  It
    may change ``net.training.params["learning_rate"]["epsilon"]``, the base rate of the
    epochs after it (the scikit-learn estimators run their stopping and rate rules so).

    Returns a :class:`concurrent.futures.Future` whose result is the net; an exception
    raised by the training, or by a watch at any event of the training (the starting
    "state" event included), is re-raised by ``future.result()``, and the net's state is
    reset whatever happened.  (A watch's exception at the "stop" event reaches the caller of
    ``stop_training``; the training still stops.)
    """
    if net.training is None:
        raise ValueError("the net has no training; build it with training(...) or set net.training")
    if isinstance(epochs, bool) or not isinstance(epochs, Integral) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if after_epoch is not None and not callable(after_epoch):
        raise TypeError(f"after_epoch must be callable or None, got {type(after_epoch).__name__}")
    if after_epoch is not None and net.training.algo == "lbfgs":
        raise ValueError("after_epoch is for the epoch-based algorithms; L-BFGS has none "
                         "(its iterations end on its own tests: params['lbfgs'])")
    data = distributed.start(net, check_training_data(net, trset))  # this rank's shard
    if policy(net) != "ignore":
        net.check_weights()  # divergence detection needs finite weights to start from
    make_algorithm(net)  # configuration errors surface here, in the caller's thread
    if "early_stopping" in net.training.params:
        EarlyStopping(net, data)
    future = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    with net.lock:
        if net.state is not None:
            raise RuntimeError(f"the net is already training (state {net.state!r})")
        net._stop[0] = 0
        try:
            net.swap(_set_state("training"), "state")
        except BaseException as exc:  # noqa: BLE001 - a watch failed: no training, state reset
            error = _finish(net, exc)
            if not isinstance(error, Exception):
                raise error  # KeyboardInterrupt and the like belong to this thread
            future.set_exception(error)
            return future
    _workers.submit(lambda: _run(net, trset, data, int(epochs), after_epoch), future)
    return future


def _finish(net, error=None):
    """Reset the net's state (a "state" event for the watches).  Returns the exception to
    settle the Future with: a watch's (chained to ``error`` when called while handling it),
    else ``error``."""
    try:
        net.swap(_set_state(None), "state")
    except BaseException as exc:  # noqa: BLE001 - the Future carries it to the caller
        with net.lock:
            if net.training is not None:
                net.training.state["state"] = None
        return exc
    return error


def _run(net, trset, data, epochs, after_epoch=None):
    """The training job: returns a function that settles the Future (see _workers.submit)."""
    try:
        if net.training.algo == "lbfgs":
            _train_lbfgs(net, trset, data, epochs)
        else:
            _train_epochs(net, trset, data, epochs, after_epoch)
    except BaseException as exc:  # noqa: BLE001 - the Future carries it to the caller
        return _workers.failed(_finish(net, exc))
    error = _finish(net)
    return _workers.failed(error) if error is not None else lambda future: future.set_result(net)


def _start(net, trset):
    """Labels (or the continuous targets' scaling) and name of the training set noted on the
    net; stats ready."""
    if trset.labels is not None:
        net.header.setdefault("labels", list(trset.labels))
    if trset.continuous:  # estimate undoes the scaling with it
        net.header.setdefault("targets", check_target_scaling(trset.target_scaling))
    net.header.setdefault("name", trset.header.get("name"))
    net.swap(init_stats, "init-stats")


def _train_lbfgs(net, trset, data, epochs):
    algo = make_algorithm(net)
    _start(net, trset)
    algo.run(data, epochs)


def _epoch_sets(data, kern):
    """(``epoch -> the data that epoch trains on``, ``net -> a new algorithm for it``).

    Without reshuffle the data is ``data`` itself every epoch.  With it, the rows of the epoch's
    order (TrainingSet.for_epoch) gathered into one buffer reused from epoch to epoch -- every
    path (the per-batch steps, the whole-epoch kernel, the divergence Guard's replays) reads
    the same permuted rows with the same batch bounds -- and the algorithms made sample their
    sparse-path choice (Backprop's ``zeros``) on the stored order, not on the epoch's, so
    every epoch takes the kernel path an uninterrupted run takes, whichever epoch a training
    resumes at."""
    if not data.reshuffle:
        return (lambda epoch: data), make_algorithm
    if is_sparse(data.x):  # no whole-epoch kernel, so no sparse-path choice to fix
        last = [None, None]

        def of_sparse(epoch):
            if last[0] != epoch:
                last[1], last[0] = data.for_epoch(epoch, last[1]), epoch
            return last[1]
        return of_sparse, make_algorithm
    last = [None, None]  # the epoch gathered last, its set (the buffer)

    def of(epoch):
        if last[0] != epoch:
            last[1], last[0] = data.for_epoch(epoch, last[1]), epoch
        return last[1]

    zeros = kern.x_zeros(data.x)  # on the stored order, once

    def make(net):
        algo = make_algorithm(net)
        if hasattr(algo, "zeros"):
            algo.zeros = zeros
        return algo
    return of, make


def _train_epochs(net, trset, data, epochs, after_epoch=None):
    threads = thread_chooser(net)
    try:
        return _run_epochs(net, trset, data, epochs, threads, after_epoch)
    finally:
        threads.restore(_kernels.get_backend())


class _BatchLoss:
    """stats.batch_loss: the error_fn's loss summed over the epoch's batches, each from the
    outputs its step computed (before its update); off, it costs nothing."""

    def __init__(self, net, algo, kern):
        self.on = bool(net.training.params.get("stats", {}).get("batch_loss"))
        self.kern, self.total, self.rows, self.errors = kern, 0.0, 0, None
        if self.on:
            if getattr(algo, "gradients", None) is None:
                raise ValueError(f"stats.batch_loss needs a gradient-based algorithm; "
                                 f"{net.training.algo} computes no loss")
            self.code = losses.KINDS[losses.specific_kind(net.training.params["error_fn"],
                                                          net.layers[-1].act)]

    def begin(self, nb):
        self.total, self.rows = 0.0, 0
        if self.on and (self.errors is None or len(self.errors) < nb):
            self.errors = np.zeros(nb, dtype=np.float64)

    def step(self, algo, t, w=None):
        """After a step on targets ``t`` (per-row weights ``w``: the batch's weighted mean
        loss counted for its rows, as scikit-learn's epoch loss; a batch of weight 0: none)."""
        if self.on:
            out = algo.gradients.workspace(t.shape[0]).acts[-1]
            if w is None:
                self.total += self.kern.error_sum(out, t, self.code)
            else:
                total = float(np.sum(w, dtype=np.float64))
                if total > 0:
                    self.total += t.shape[0] * weighted_error_sum(out, t, self.code, w) / total
            self.rows += t.shape[0]

    def fused(self, done, starts):
        """After the whole-epoch kernel trained ``done`` batches, its errors[:done]."""
        if self.on and done:
            for value in self.errors[:done]:  # in order, as the per-step path adds them
                self.total += float(value)
            self.rows += int(starts[done] - starts[0])

    def mean(self):
        if not self.on:
            return None
        return distributed.training_means({"loss": self.total / max(self.rows, 1)},
                                          self.rows)["loss"]


def _run_epochs(net, trset, data, epochs, threads, after_epoch=None):
    _start(net, trset)
    stats = net.training.stats
    max_epochs = stats.epochs + epochs
    kern = _kernels.get_backend()
    epoch_data, make = _epoch_sets(data, kern)
    algo = make(net)
    bounds = data.batch_bounds
    fusable = getattr(algo, "fusable", None)
    # one step per call when distributed: each step's gradient is summed over the ranks; a
    # sparse x (CsrRows) trains step by step (the whole-epoch kernel takes dense x only)
    fused = (fusable is not None and fusable(bounds, data.w is not None)
             and distributed.current() is None and not is_sparse(data.x))
    starts = np.array([a for a, _ in bounds] + [bounds[-1][1]], dtype=np.int64)
    guard = None if policy(net) == "ignore" else Guard(net, data, starts, kern, make, epoch_data)
    stopping = EarlyStopping(net, data) if "early_stopping" in net.training.params else None
    loss = _BatchLoss(net, algo, kern)

    def step(x, y, w, algo):
        def apply(n):
            run_step(algo, x, y, kern, w)
            loss.step(algo, y, w)
            n._batches += 1
        return apply

    while stats.epochs < max_epochs:
        started = time.perf_counter()
        threads.begin(kern)
        algo.begin_epoch(stats.epochs)
        if guard is not None:
            guard.begin()
        done = through_kernel = 0
        edata = epoch_data(stats.epochs)
        loss.begin(len(starts) - 1)
        if fused:
            done = through_kernel = _fused_epoch(net, algo, edata, starts, kern, loss.errors,
                                                 loss.code if loss.on else 0)
            loss.fused(done, starts)
        stopped = False
        for batch in edata.batches[done:]:  # views of edata.x / edata.y: C-contiguous
            if distributed.stopping(net) or stats.epochs >= max_epochs:
                stopped = True
                break
            net.swap(step(batch.x, batch.y, batch.w, algo), "weights")
            done += 1
        seconds = time.perf_counter() - started
        threads.end(kern, bounds[done - 1][1] - bounds[0][0] if done else 0)
        errors = None
        if guard is not None:
            algo, errors, diverged = guard.end(algo, through_kernel, done, not stopped, seconds)
            if diverged is not None:
                return finish(net, diverged)
        if stopped:
            return
        rate = algo.epoch_record().get("learning_rate")
        mean_loss = loss.mean()
        net.swap(lambda n: update_stats(n, data, seconds, errors, rate, mean_loss), "stats")
        algo.end_epoch(stats)
        if stopping is not None and stopping.after_epoch():
            net.swap(lambda n: stopping.stop(), "weights")
            return
        if after_epoch is not None and after_epoch(net):
            return


def _fused_epoch(net, algo, data, starts, kern, errors=None, error_kind=0):
    """The epoch through the whole-epoch kernel: one call, or FUSED_CALLS calls with a
    "weights" event after each when a watch is content with that, or one call per batch
    under the lock (as the per-batch path) when a watch wants every batch -- the same
    arithmetic watched or not.  stop_training reaches the kernel through net._stop.
    ``errors`` (or None): each batch's loss (kind ``error_kind``) before its step.
    Returns the batches trained."""
    nb = len(starts) - 1
    every = net.watched_every_batch
    calls = nb if every else FUSED_CALLS if net._watches else 1
    done = 0
    for k in range(calls):
        stop = nb * (k + 1) // calls
        if stop == done:
            continue
        if net.state != "training":
            break

        def count(n, trained):
            n._batches += trained
            return trained
        if every:
            trained = net.swap(lambda n, a=done, b=stop: count(
                n, algo.epoch(data.x, data.y, starts[a:b + 1], n._stop, kern,
                              None if errors is None else errors[a:b], error_kind)), "weights")
        else:
            # the kernel runs outside the lock, so that stop_training is never held up
            trained = algo.epoch(data.x, data.y, starts[done:stop + 1], net._stop, kern,
                                 None if errors is None else errors[done:stop], error_kind)
            if net._watches:
                net.swap(lambda n, t=trained: count(n, t), "weights")
            else:
                count(net, trained)
        done += trained
        if done < stop:
            break
    return done


def stop_training(net):
    """Ask a training net to stop before its next batch (L-BFGS: before its next function
    evaluation, keeping the best weights evaluated); returns the net, or None if idle."""
    def stop(n):
        if n.state == "training":
            n.training.state["state"] = "stopping"
            n._stop[0] = 1
            return True
        return False
    return net if net.swap(stop, "stop") else None
