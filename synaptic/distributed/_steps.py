"""The one hook of a distributed step: a Gradients whose sums cover the global batch.

Every gradient algorithm computes its step from ``Gradients.compute`` (or
``compute_with_error``, L-BFGS): the gradient summed over a batch's rows, then the
regularization derivative, the 1/m scaling (``Gradients.rows``) and the update.  Training
under MPI wraps the algorithm's Gradients in :class:`SummedGradients`: each rank computes
the sums over its rows of the batch, then one sum over the ranks of ``Gradients.flat`` (the
gradients of every layer in one contiguous buffer, followed by three spare slots: this
rank's error sum, its row count and its stop request) makes them the global batch's sums on
every rank.  The regularization, added after, is added once.

:class:`Emulation` is the one-process reference of the deterministic mode: the same parts
of each batch computed one after the other and added in rank order.
"""
import numpy as np

from ._comm import add_in_order

ERROR, ROWS, STOP = -3, -2, -1  # the spare slots after the gradients in Gradients.flat


def split(start, stop, rank, size):
    """The rows ``[a, b)`` of batch ``[start, stop)`` that rank ``rank`` of ``size`` holds."""
    n = stop - start
    return start + n * rank // size, start + n * (rank + 1) // size


class SummedGradients:
    """A training's :class:`~synaptic.training.gradients.Gradients` whose ``compute`` and
    ``compute_with_error`` return the sums over every rank's rows (``sums``: the
    distributed run or the emulation that adds them); every other attribute is the wrapped
    one's."""

    def __init__(self, inner, sums):
        self._inner, self._sums = inner, sums

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def compute(self, x, t, kern=None, packed=None, w=None):
        _no_weights(w)
        return self._sums.step(self._inner, x, t, kern, packed, None)[1]

    def compute_with_error(self, x, t, err, kern=None, packed=None, w=None):
        _no_weights(w)
        return self._sums.step(self._inner, x, t, kern, packed, err)

    def total(self, value):
        """A float computed from this rank's rows (an error sum), summed over the ranks."""
        return self._sums.total(value)


def _no_weights(w):
    if w is not None:
        raise ValueError("distributed training does not support per-row weights "
                         "(sample_weight) yet")


def _local(g, x, t, kern, packed, err):
    """This rank's part: the gradients in ``g.flat``, its error sum (0 without ``err``)."""
    if err is None:
        g.compute(x, t, kern, packed)
        return 0.0
    return g.compute_with_error(x, t, err, kern, packed)[0]


def _fill_slots(flat, error, rows, stop):
    exact = flat.dtype == np.float64  # float32 slots would round the error: summed apart
    flat[ERROR] = error if exact else 0.0
    flat[ROWS] = rows
    flat[STOP] = 1.0 if stop else 0.0
    return exact


class MPISums:
    """The sums of a distributed run (one :class:`~synaptic.distributed._comm.Comm`)."""

    def __init__(self, comm):
        self.comm = comm
        self.stop = False  # a rank asked to stop: every rank stops before its next step

    def step(self, g, x, t, kern, packed, err):
        error = _local(g, x, t, kern, packed, err)
        flat = g.flat
        exact = _fill_slots(flat, error, x.shape[0], g.net.state == "stopping")
        self.comm.sum(flat)
        g.rows = int(round(float(flat[ROWS])))
        self.stop = self.stop or flat[STOP] > 0
        if err is not None:
            error = float(flat[ERROR]) if exact else self.total(error)
        return error, g.grads

    def total(self, value):
        return float(self.comm.sum(np.array([value], dtype=np.float64), "an error sum")[0])


class EmulatedSums:
    """One process doing what ``size`` ranks do: each batch cut as :func:`split` cuts it, the
    parts computed in rank order, their sums added in rank order (as the deterministic
    mode's rank 0 adds them)."""

    def __init__(self, size):
        self.size = size
        self.stop = False
        self._parts = None
        self._packs = {}

    def step(self, g, x, t, kern, packed, err):
        n, size = x.shape[0], self.size
        if n < size:
            raise ValueError(f"a batch of {n} rows cannot be split over {size} ranks")
        flat = g.flat
        if self._parts is None or self._parts.shape != (size, flat.size) \
                or self._parts.dtype != flat.dtype:
            self._parts = np.empty((size, flat.size), dtype=flat.dtype)
        errors = np.zeros((size, 1))
        out = np.empty((n, g.net.n_outputs), dtype=g.net.dtype)
        for r in range(size):
            a, b = split(0, n, r, size)
            xs, p = self._part(g, x, a, b, packed, kern)
            errors[r] = _local(g, xs, t[a:b], kern, p, err)
            exact = _fill_slots(flat, errors[r, 0], b - a, False)
            self._parts[r] = flat
            out[a:b] = g.workspace(b - a).acts[-1]
        add_in_order(self._parts, flat)
        g.rows = n
        g.workspace(n).acts[-1][...] = out  # the outputs of the whole batch, as one process
        if err is None:
            return 0.0, g.grads
        return (float(flat[ERROR]) if exact else
                float(add_in_order(errors, np.empty(1))[0])), g.grads

    def _part(self, g, x, a, b, packed, kern):
        """(x[a:b], its pack when the caller packed x): a rank packs its own rows."""
        if packed is None:
            return x[a:b], None
        key = (id(x), a, b)
        hit = self._packs.get(key)
        if hit is None or hit[0] is not x:
            from ..training.lbfgs import pack
            part = x[a:b]
            hit = self._packs[key] = (x, part, pack(g, part, kern))
        return hit[1], hit[2]

    def total(self, value):
        return float(value)  # the emulation's errors are already the whole batch's
