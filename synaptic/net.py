"""The net: layers + weights + training, an observable reference, and the forward pass.

``Net`` plays the part of the original's atom: every state transition goes through
:meth:`Net.swap`, which runs under the net's lock and then notifies every watcher with
``fn(key, net, old, new)``.  ``old``/``new`` are small :class:`NetState` snapshots; the
weights themselves are updated in place (read ``net.weights``, copy what you keep).
"""
import os
import threading
from typing import NamedTuple

import numpy as np

from . import _kernels, _workers, activations, layers as _layers
from .sparse import CsrRows, as_csr_rows, is_sparse

DTYPES = (np.float32, np.float64)
CHUNK_ROWS = 2048  # forward passes over big sets run in chunks of this many rows
WORKER_ROWS = 64   # forward passes of this many rows and more run on a worker thread
BLAS_MAX = 2**31 - 1  # the kernels' matrix products (cython_blas) take 32-bit dimensions


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 64 << 30


# a new net's weights may take at most this much (training needs a few times more)
MAX_WEIGHT_BYTES = _physical_memory() // 2


class NetState(NamedTuple):
    """What a watch sees of the net before and after a transition (``old``, ``new``).

    Parameters
    ----------
    event : str
        "state", "init-stats", "weights" (a batch, or a few, trained), "stats" (an epoch
        ended) or "stop".
    state : {None, "training", "stopping"}
    epochs : int
        The epochs recorded in the stats.
    batches : int
        The batches trained over the net's life.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.NetState("stats", "training", 3, 48).epochs
    3
    """
    event: str     # "state", "init-stats", "weights", "stats" (an epoch ended), "stop"
    state: object  # None, "training" or "stopping"
    epochs: int
    batches: int   # batches trained over the net's life


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.type not in DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


class Net:
    """A feed-forward net.  Build one with :func:`mlp` or :func:`neural_net`.

    The net is also the original's atom: every state transition goes through one swap under
    ``net.lock`` and notifies the watches (:meth:`add_watch`); the weights are updated in
    place in ``net.weights``.

    Parameters
    ----------
    layers : list of Layer
        Built layers (``synaptic.layers.build``), the input layer first.
    weights : list of numpy.ndarray
        One ``n_out x (1 + n_in)`` matrix per non-input layer, the bias in column 0
        (``K x (1 + k_in*fw*fh)`` for a convolution layer).
    training : Training, optional
        From :func:`training`.
    dtype : {numpy.float64, numpy.float32}, default numpy.float64
    seed : int, optional
        Seeds the stochastic units.
    header : dict, optional
        ``name`` and ``labels`` (set from the training set when training starts).

    Attributes
    ----------
    weights, training, header, dtype, layers
    stats : Stats or None
        The per-epoch records (``epochs``, ``tr_err``, ``val_err``, ``seconds``).
    labels : list or None
        The labels :func:`estimate` maps the outputs to.
    state : {None, "training", "stopping"}

    Raises
    ------
    ValueError
        The wrong number or shape of weight matrices.
    TypeError
        A dtype other than float32 or float64.

    Examples
    --------
    >>> import synaptic as syn
    >>> net = syn.mlp([2, 3, 1], "sigmoid", seed=1)
    >>> net
    Net(2-3-1 [sigmoid,sigmoid], float64, 13 params, training=None, state=None)
    >>> net.n_inputs, net.n_outputs, [w.shape for w in net.weights]
    (2, 1, [(3, 3), (1, 4)])
    """

    def __init__(self, layers, weights, training=None, *, dtype=np.float64, seed=None, header=None):
        self.layers = layers
        self.dtype = _check_dtype(dtype)
        if len(weights) != len(layers) - 1:
            raise ValueError(f"{len(layers) - 1} weight matrices needed, got {len(weights)}")
        self.weights = []
        for i, (layer, w) in enumerate(zip(layers[1:], weights), start=1):
            w = np.ascontiguousarray(w, dtype=self.dtype)
            if w.shape != layer.weight_shape:
                raise ValueError(f"layer {i}: weights of shape {w.shape}, expected {layer.weight_shape}")
            self.weights.append(w)
        self.training = training
        self.header = dict(header or {})
        self.rng = np.random.default_rng(seed)
        self.lock = threading.RLock()
        self._watches = {}
        self._every_batch = set()  # the keys of the watches that want every batch
        self._batches = 0
        self._stop = np.zeros(1, dtype=np.int32)  # set by stop_training, read by the kernels

    # -- pickling (scikit-learn and joblib copy estimators that way) -----------------------
    def __getstate__(self):
        """The net without its lock and watches (they belong to this process); refused while
        it trains.  synaptic's own files (persist.py) never pickle."""
        with self.lock:
            if self.state is not None:
                raise RuntimeError(f"cannot pickle a net while it trains (state {self.state!r})")
            state = dict(self.__dict__)
        for key in ("lock", "_watches", "_every_batch"):
            del state[key]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()
        self._watches = {}
        self._every_batch = set()

    # -- the observable reference ---------------------------------------------------------
    def add_watch(self, key, fn, *, every_batch=True):
        """Call ``fn(key, net, old, new)`` after every state transition (SYNAPTIC.md §6).

        ``every_batch=False``: the watch is content with a "weights" event every few batches
        (``new.batches - old.batches`` of them), which lets a dense net train its epochs
        through the whole-epoch kernel in a few calls instead of batch by batch.
        """
        if not callable(fn):
            raise TypeError("a watch must be callable as fn(key, net, old, new)")
        with self.lock:
            self._watches[key] = fn
            if every_batch:
                self._every_batch.add(key)
            else:
                self._every_batch.discard(key)

    def remove_watch(self, key):
        with self.lock:
            self._watches.pop(key, None)
            self._every_batch.discard(key)

    @property
    def watched_every_batch(self):
        """True if a watch wants a "weights" event after every batch."""
        return bool(self._every_batch)

    def snapshot(self, event):
        stats = self.stats
        return NetState(event, self.state, stats.epochs if stats else 0, self._batches)

    def swap(self, fn, event):
        """Apply ``fn(net)`` under the lock, then notify every watcher (even if nothing changed)."""
        with self.lock:
            watches = list(self._watches.items())
            old = self.snapshot(event) if watches else None
            result = fn(self)
            new = self.snapshot(event) if watches else None
        for key, watch in watches:
            watch(key, self, old, new)
        return result

    # -- views ----------------------------------------------------------------------------
    @property
    def state(self):
        return None if self.training is None else self.training.state.get("state")

    @property
    def stats(self):
        return None if self.training is None else self.training.stats

    @property
    def labels(self):
        return self.header.get("labels")

    @property
    def n_inputs(self):
        return self.layers[0].n

    @property
    def n_outputs(self):
        return self.layers[-1].n

    @property
    def n_params(self):
        return sum(w.size for w in self.weights)

    def spec(self):
        """The layer dicts this net was built from (canonical spelling; dropout included)."""
        specs = []
        for layer in self.layers:
            specs.append(layer.spec())
            if layer.dropout is not None:
                specs.append(layer.dropout.spec())
        return specs

    @property
    def dropouts(self):
        """The Dropout of each layer's output that has one (input first)."""
        return [layer.dropout for layer in self.layers if layer.dropout is not None]

    def __repr__(self):
        units = "-".join(str(l.n) for l in self.layers)
        acts = ",".join(l.act for l in self.layers[1:])
        algo = self.training.algo if self.training else None
        return (f"Net({units} [{acts}], {self.dtype.name}, {self.n_params} params, "
                f"training={algo}, state={self.state})")

    # -- forward pass ---------------------------------------------------------------------
    def as_input(self, x, what="x"):
        """``x`` checked (2-D, numeric, finite, the right width) and in the net's dtype.  A
        sparse ``x`` (a SciPy sparse matrix, or CsrRows) stays sparse: CsrRows, which a
        fully-connected first layer reads through the CSR kernels."""
        if is_sparse(x):
            return self._as_sparse_input(x, what)
        arr = np.asarray(x)
        if arr.dtype.kind == "c":
            raise TypeError(f"{what} is complex ({arr.dtype}): the net takes real samples "
                            "(take .real or abs() explicitly)")
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{what} must be numeric, got dtype {arr.dtype}")
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"{what} must be 2-D (samples x inputs), got shape {arr.shape}")
        if arr.shape[1] != self.n_inputs:
            raise ValueError(f"{what} has {arr.shape[1]} columns, the net has {self.n_inputs} inputs")
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
            raise ValueError(f"{what} holds NaN or infinity (first in row {bad})")
        return arr

    def _as_sparse_input(self, x, what):
        first = self.layers[1] if len(self.layers) > 1 else None
        if not isinstance(first, _layers.FullyConnected):
            kind = first.kind if first is not None else "none"
            raise ValueError(f"a sparse {what} needs a net whose first layer is fully connected "
                             f"(this one's: {kind}); densify it (x.toarray())")
        rows = as_csr_rows(x, self.dtype, what)
        if rows.shape[1] != self.n_inputs:
            raise ValueError(f"{what} has {rows.shape[1]} columns, the net has {self.n_inputs} inputs")
        bad = rows.first_bad_row()
        if bad is not None:
            raise ValueError(f"{what} holds NaN or infinity (first in row {bad})")
        return rows

    def check_weights(self):
        """Raise ValueError naming the first weight matrix that holds NaN or infinity."""
        for i, w in enumerate(self.weights, start=1):
            if not np.isfinite(w).all():
                bad = w.size - int(np.count_nonzero(np.isfinite(w)))
                raise ValueError(f"layer {i}'s weights hold NaN or infinity ({bad} of {w.size} "
                                 "values): the net diverged or its weights were damaged")

    def forward_into(self, x, acts, kern=None, bufs=None, dropped=None, inputs=None):
        """Run the forward pass of ``x`` into the preallocated activity buffers ``acts``.

        ``bufs``: the layers' own per-batch buffers (:meth:`layer_buffers`, e.g. the pool
        indices of a convolution layer), allocated here when not given.  Training with
        dropout: ``dropped`` holds, for each layer but the last (input first), a buffer for its
        output after its dropout (None where it has none), filled with the masks of batch
        ``self._batches``; ``inputs`` (a list) receives what each layer read.
        """
        kern = kern or _kernels.get_backend()
        if bufs is None:
            bufs = self.layer_buffers(x.shape[0])
        a = x
        for i, (layer, w, out, buf) in enumerate(zip(self.layers[1:], self.weights, acts, bufs)):
            if dropped is not None and dropped[i] is not None:
                if isinstance(a, CsrRows):  # a dropout on a sparse input: the batch dense
                    a = a.toarray()
                drop = self.layers[i].dropout
                kern.dropout(a, dropped[i], drop.p, drop.key(self._batches))
                a = dropped[i]
            if inputs is not None:
                inputs.append(a)
            if layer.act == activations.STOCHASTIC:
                layer.forward_sampled(kern, a, w, out, buf, self.rng)
            else:
                layer.forward(kern, a, w, out, buf)
            a = out
        return a

    def activity_buffers(self, nrows):
        return [np.empty((nrows, layer.n), dtype=self.dtype) for layer in self.layers[1:]]

    def layer_buffers(self, nrows, backward=False):
        """Each layer's per-batch buffers for ``nrows`` rows (None for a dense layer).

        ``backward``: also what backprop needs (e.g. the activities before average pooling).
        """
        return [layer.buffers(nrows, self.dtype, backward) for layer in self.layers[1:]]

    def activities(self, x):
        """The activities of every non-input layer for the samples ``x`` (output last)."""
        x = self.as_input(x)
        acts = self.activity_buffers(x.shape[0])
        self._forward(x, acts, None)
        return acts

    def _forward(self, x, acts, bufs):
        """forward_into, on a worker thread for big batches (one OpenMP team: see _workers)."""
        if x.shape[0] >= WORKER_ROWS:
            return _workers.call(self.forward_into, x, acts, None, bufs)
        return self.forward_into(x, acts, None, bufs)

    def predict_proba(self, x):
        """The output layer's activity for ``x``."""
        x = self.as_input(x)
        out = np.empty((x.shape[0], self.n_outputs), dtype=self.dtype)
        for start, stop, acts in self.chunked_forward(x):
            out[start:stop] = acts[-1]
        return out

    def chunked_forward(self, x, chunk=CHUNK_ROWS):
        """Yield ``(start, stop, acts)`` over ``x`` in chunks, reusing one set of buffers."""
        n = x.shape[0]
        if n == 0:
            return
        rows = min(chunk, n)
        buffers, bufs = self.activity_buffers(rows), self.layer_buffers(rows)
        for start in range(0, n, chunk):
            stop = min(start + chunk, n)
            if stop - start != rows:
                rows = stop - start
                buffers, bufs = self.activity_buffers(rows), self.layer_buffers(rows)
            self._forward(x[start:stop], buffers, bufs)
            yield start, stop, buffers


def _size(nbytes):
    unit, scale = next((u, f) for u, f in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("bytes", 1))
                       if nbytes >= f or f == 1)
    return f"{nbytes / scale:.3g} {unit}"


def check_weight_sizes(layers, dtype):
    """Refuse, before allocating, weights the kernels cannot multiply or memory cannot hold."""
    total = 0
    for i, layer in enumerate(layers[1:], start=1):
        rows, cols = layer.weight_shape
        nbytes = rows * cols * dtype.itemsize
        size = f"layer {i}: {rows} x {cols} weights ({_size(nbytes)} as {dtype.name})"
        if max(rows, cols) > BLAS_MAX:
            raise ValueError(f"{size}: a dimension over 2^31 - 1, more than the kernels' matrix "
                             "products take")
        total += nbytes
        if total > MAX_WEIGHT_BYTES:
            raise ValueError(f"{size} take the net's weights to {_size(total)}, over the bound of "
                             f"{_size(MAX_WEIGHT_BYTES)} (half this machine's memory: "
                             "synaptic.net.MAX_WEIGHT_BYTES)")


def build_net(layer_specs, training=None, *, dtype=np.float64, seed=None):
    """A net of the given layer dicts, weights drawn from ``seed`` (SYNAPTIC.md §2.3)."""
    layers = _layers.build(layer_specs)
    dtype = _check_dtype(dtype)
    check_weight_sizes(layers, dtype)
    init_seed, unit_seed, dropout_seed = np.random.SeedSequence(seed).spawn(3)
    weights = _layers.init_weights(layers, np.random.default_rng(init_seed), dtype)
    seeds = np.random.default_rng(dropout_seed)
    for layer in layers:  # a dropout without its own seed draws one (kept in net.spec())
        if layer.dropout is not None and layer.dropout.seed is None:
            layer.dropout.seed = int(seeds.integers(2**63))
    return Net(layers, weights, training, dtype=dtype, seed=unit_seed)
