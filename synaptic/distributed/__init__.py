"""Data-parallel training over MPI (mpi4py): one training run spread over processes and hosts.

Start the same program on every rank (``mpiexec -n 4 python train.py``, or ``mpiexec -n 4
python -m synaptic train --distributed ...``) and call :func:`init` (done for you by
``train`` when the program runs under ``mpiexec`` with more than one process)::

    import synaptic as syn
    from synaptic import distributed
    distributed.init()                              # threads per rank: 1 by default
    trset = distributed.shard(syn.load_training_set("digits"))   # this rank's rows
    syn.train(net, trset, 10).result()              # the same net on every rank
    if distributed.is_root():
        syn.save_neural_net(net, "digits")          # (rank 0 writes files anyway)

What happens in ``train``: rank 0's net (weights, optimiser state, stats) is broadcast, so
every rank starts from the same one; each step computes the gradient summed over this rank's
rows of the global batch, and one sum over the ranks of the contiguous gradient buffer (with
the error sum, the row count and any rank's stop request in the same message) gives every
rank the global batch's gradient: every rank takes the same step.  A global batch of B rows
is B/n rows on each rank (:func:`shard`), so the update is the one-process update on the same
global batch; full-batch algorithms (L-BFGS, R-prop, backprop or RMSprop on one batch) sum
cost and gradient over the shards, and L-BFGS runs the same line search on every rank.  Rank
0 holds the validation set: the stats (training errors over every shard, validation errors
from rank 0) are the same on every rank, and so are the schedule's and early stopping's
decisions.  ``stop_training`` on any rank stops every rank after the same step: the next
one, whose sum carries the request.
Only rank 0 writes files (``save_neural_net``, ``save_training_set``).

Sums: by default one ``MPI_Iallreduce`` (equal to one process to rounding); with
``init(deterministic=True)`` the buffers are gathered on rank 0, added there in rank order
and broadcast, so the weights are bitwise those of :func:`emulate` -- one process computing
each rank's part of every batch in turn and adding the parts in rank order.  (Plain one-process
``train`` sums all B rows inside one matrix product, in another order: equal to rounding.)

Every collective is non-blocking and waited for with a deadline (``timeout``, 30 s): a rank
that died or hangs makes the others raise :class:`DistributedError`, and the job is then
aborted when the process exits (a communicator with a dead peer cannot be finalised).

Not distributed: the whole-epoch kernel (``sgd_epoch``; each step goes through the per-batch
path instead), reshuffled sets (:func:`shard` refuses them), the perceptron rule.
"""
import atexit
import contextlib
import os

import numpy as np

from ._comm import Comm, DistributedError
from ._steps import EmulatedSums, MPISums, SummedGradients, split

__all__ = ["Context", "DistributedError", "emulate", "init", "is_root", "shard"]

LAUNCH_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE")  # Open MPI, MPICH and Intel MPI

_context = None  # the Context in force (init or emulate)
_auto_checked = False


class Context:
    """The distributed run in force: returned by :func:`init` and :func:`emulate`.

    Parameters
    ----------
    size : int
        The number of ranks.
    rank : int
        This process's rank (0 in an emulation).
    comm : synaptic.distributed._comm.Comm or None
        The communicator with deadlines; None in an emulation.

    Attributes
    ----------
    deterministic : bool
        Whether sums are added in rank order on rank 0 (always, in an emulation).
    emulated : bool
        True for :func:`emulate`'s one-process reference.

    Examples
    --------
    >>> from synaptic import distributed
    >>> with distributed.emulate(2) as ctx:
    ...     ctx.size, ctx.rank, ctx.emulated
    (2, 0, True)
    """

    def __init__(self, size, rank=0, comm=None):
        self.size, self.rank, self.comm = size, rank, comm
        self.emulated = comm is None
        self.deterministic = True if comm is None else comm.deterministic
        self.sums = EmulatedSums(size) if comm is None else MPISums(comm)

    def __repr__(self):
        kind = "emulated" if self.emulated else "deterministic" if self.deterministic else "fast"
        return f"Context(rank={self.rank}, size={self.size}, {kind})"

    @property
    def comm_seconds(self):
        """Seconds spent in the gradient sums so far (0 in an emulation)."""
        return 0.0 if self.comm is None else self.comm.seconds


def init(comm=None, *, deterministic=False, timeout=30.0, threads=1):
    """Make this process one rank of a distributed training (an MPI program).

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The ranks that train together (duplicated); default ``MPI.COMM_WORLD``.
    deterministic : bool, default False
        Sum in rank order on rank 0 (bitwise reproducible, see :func:`emulate`) instead of
        one ``Allreduce``.
    timeout : float, default 30
        Seconds a collective may wait for the other ranks before :class:`DistributedError`.
    threads : int or None, default 1
        ``synaptic.set_num_threads`` on this rank (one rank per core is the usual layout);
        None leaves the thread count alone.

    Returns
    -------
    Context
        Also what later calls of :func:`init` return (they set ``deterministic`` and
        ``timeout`` anew, and the threads).

    Raises
    ------
    ImportError
        mpi4py is not installed (``pip install synaptic[mpi]``).
    ValueError
        A timeout that is not positive, a thread count below 1.

    Examples
    --------
    >>> from synaptic import distributed
    >>> ctx = distributed.init()          # doctest: +SKIP
    >>> ctx.rank, ctx.size                # doctest: +SKIP
    (0, 1)
    """
    global _context
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if threads is not None:
        from .. import set_num_threads
        set_num_threads(threads)
    if _context is not None and not _context.emulated:  # again (or after the auto-detection)
        _context.comm.deterministic = _context.deterministic = bool(deterministic)
        _context.comm.timeout = float(timeout)
        return _context
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError("synaptic.distributed needs mpi4py: pip install 'synaptic[mpi]' "
                          "(it brings an MPI runtime too)") from err
    c = Comm(MPI.COMM_WORLD if comm is None else comm, deterministic, timeout)
    _context = Context(c.size, c.rank, c)
    atexit.register(_abort_if_broken, c)
    return _context


def _abort_if_broken(comm):
    """At exit, after a failed collective: abort the job (MPI_Finalize would wait for the
    dead rank forever)."""
    if comm.broken is not None:
        comm.abort(1)


def _launched():
    """The process count the MPI launcher announced (1 when not under mpiexec)."""
    for var in LAUNCH_SIZE_VARS:
        try:
            return int(os.environ[var])
        except (KeyError, ValueError):
            continue
    return 1


def current():
    """The Context in force, or None.  Under ``mpiexec -n N`` (N > 1), the first call runs
    :func:`init` (unless ``SYNAPTIC_DISTRIBUTED=0``): every rank trains the same net."""
    global _auto_checked
    if _context is None and not _auto_checked:
        _auto_checked = True
        size = _launched()
        if size > 1 and os.environ.get("SYNAPTIC_DISTRIBUTED", "1") != "0":
            try:
                init()
            except ImportError as err:
                raise ImportError(f"this process is one of {size} started by mpiexec, but "
                                  f"{err}; or set SYNAPTIC_DISTRIBUTED=0 to train "
                                  f"independently on each") from None
    return _context


def is_root():
    """Whether this process is rank 0 (also outside a distributed run).

    Returns
    -------
    bool

    Examples
    --------
    >>> from synaptic import distributed
    >>> distributed.is_root()
    True
    """
    ctx = current()
    return ctx is None or ctx.rank == 0


@contextlib.contextmanager
def emulate(size):
    """Train in this process as ``size`` ranks in deterministic mode would: the reference of
    the bitwise promise.

    Inside the ``with`` block every step cuts its batch as :func:`shard` does, computes the
    parts one after the other and adds their sums in rank order, exactly as rank 0 of a
    deterministic run adds the ranks' sums; the whole-epoch kernel is not used.

    Parameters
    ----------
    size : int
        The number of ranks emulated (>= 1).

    Yields
    ------
    Context

    Raises
    ------
    ValueError
        ``size`` < 1, or a distributed run (:func:`init`) is in force.

    Examples
    --------
    >>> import synaptic as syn
    >>> from synaptic import distributed
    >>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 4, [0, 1, 1, 0] * 4,
    ...                          rand=False)
    >>> net = syn.mlp([2, 3, 2], ["tanh", "softmax"], syn.training("rprop"), seed=1)
    >>> with distributed.emulate(2):
    ...     syn.train(net, trset, 5).result().stats.epochs
    5
    """
    global _context
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be an int >= 1, got {size!r}")
    if _context is not None and not _context.emulated:
        raise ValueError("emulate is the one-process reference; a distributed run is in force")
    previous, _context = _context, Context(int(size))
    try:
        yield _context
    finally:
        _context = previous


def shard(trset, rank=None, size=None):
    """This rank's rows of a training set: part ``rank`` of every batch, cut in ``size``.

    Batch ``[a, b)`` of ``trset`` gives rank ``r`` the rows ``a + (b - a)·r // size`` to
    ``a + (b - a)·(r + 1) // size``: the ranks' batches together are the global batch.  Rank 0
    keeps the validation set, the others get none.

    Parameters
    ----------
    trset : TrainingSet
        The whole set, the same on every rank (``train`` shards an unsharded set itself).
    rank, size : int, optional
        Default: this process's, from :func:`init` (or ``mpiexec``).

    Returns
    -------
    TrainingSet
        Its header has ``shard: {"rank", "size", "rows"}`` (rows: the whole set's).

    Raises
    ------
    TypeError
        Not a TrainingSet.
    ValueError
        A set that reshuffles, a batch with fewer rows than ranks, a bad rank or size, or
        no rank and size outside a distributed run.

    Examples
    --------
    >>> import synaptic as syn
    >>> from synaptic import distributed
    >>> trset = syn.training_set([[i] for i in range(10)], [i % 2 for i in range(10)],
    ...                          batch=5, rand=False)
    >>> part = distributed.shard(trset, rank=1, size=2)
    >>> part.batch_bounds, part.x.ravel().tolist(), part.valid
    ([(0, 3), (3, 6)], [2.0, 3.0, 4.0, 7.0, 8.0, 9.0], None)
    """
    from ..datasets import DataSet, TrainingSet
    if not isinstance(trset, TrainingSet):
        raise TypeError(f"shard needs a TrainingSet, got {type(trset).__name__}")
    if rank is None or size is None:
        ctx = current()
        if ctx is None:
            raise ValueError("shard needs rank and size outside a distributed run "
                             "(see synaptic.distributed.init)")
        rank = ctx.rank if rank is None else rank
        size = ctx.size if size is None else size
    for name, value in (("rank", rank), ("size", size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an int, got {value!r}")
    if not 0 <= rank < size:
        raise ValueError(f"rank must be in [0, size), got rank {rank}, size {size}")
    if "shard" in trset.header:
        raise ValueError("this training set is already a shard; shard the whole set")
    _refuse_weights(trset)
    if trset.reshuffle:
        raise ValueError("a set that reshuffles every epoch cannot be sharded: each epoch's "
                         "order would need every row on every rank (build it without "
                         "reshuffle, or shuffle once with rand=True)")
    y = trset.y
    batches = []
    for i, (a, b) in enumerate(trset.batch_bounds):
        if b - a < size:
            raise ValueError(f"batch {i} has {b - a} rows, fewer than the {size} ranks: "
                             f"every rank needs a row of every batch (rebatch the set)")
        lo, hi = split(a, b, rank, size)
        batches.append(DataSet(trset.x[lo:hi], None if y is None else y[lo:hi]))
    header = dict(trset.header, shard={"rank": int(rank), "size": int(size),
                                       "rows": int(len(trset.x))})
    return TrainingSet(header, batches, trset.valid if rank == 0 else None, trset.source)


def _refuse_weights(trset):
    """ValueError for a set with per-row weights: a distributed training sums row counts."""
    valid = trset.valid
    if trset.w is not None or (valid is not None and valid.w is not None):
        raise ValueError("distributed training does not support per-row weights "
                         "(sample_weight) yet: train this set in one process, or build it "
                         "without weights")


# The hooks the training code calls (each a no-op outside a distributed run) ---------------

def attach(algo):
    """Make ``algo``'s gradient sums cover every rank's rows (loop.make_algorithm)."""
    ctx = current()
    if ctx is None:
        return algo
    if not hasattr(algo, "gradients"):
        raise ValueError(f"{algo.name!r} training cannot be distributed: it has no gradient "
                         f"to sum over the ranks (use backprop, rprop, rmsprop, adam or lbfgs)")
    if not isinstance(algo.gradients, SummedGradients):
        algo.gradients = SummedGradients(algo.gradients, ctx.sums)
    return algo


def stopping(net):
    """Whether the training should stop before its next step: this net's request outside a
    distributed run, else any rank's request, as the last gradient sum carried it."""
    ctx = current()
    if ctx is None or ctx.emulated:
        return net.state == "stopping"
    return ctx.sums.stop


def training_means(means, rows):
    """{kind: mean over this rank's ``rows`` training rows} -> the means over every rank's."""
    ctx = current()
    if ctx is None or ctx.emulated or not means:
        return means
    kinds = sorted(means)
    buf = np.array([means[k] * rows for k in kinds] + [rows], dtype=np.float64)
    ctx.comm.sum(buf, "the training errors' sum")
    return {k: float(buf[i] / buf[-1]) for i, k in enumerate(kinds)}


def from_root(value):
    """Rank 0's ``value`` (JSON-serialisable: validation errors) on every rank."""
    ctx = current()
    if ctx is None or ctx.emulated:
        return value
    return ctx.comm.bcast_json(value, "the validation errors from rank 0")


def holds_validation(data):
    """Whether the training has a validation set (rank 0's)."""
    has = data.valid is not None and len(data.valid) > 0
    return from_root(has)


def writes_files():
    """Whether this process writes files (rank 0, or not distributed)."""
    ctx = current()
    return ctx is None or ctx.rank == 0


def start(net, data):
    """Before a distributed training: ``data`` sharded (unless it is already this rank's
    shard) and rank 0's net on every rank.  Returns the data to train on."""
    ctx = current()
    if ctx is None:
        return data
    _refuse_weights(data)
    from ._start import share_net, shard_for
    if ctx.emulated:
        if "shard" in data.header:
            raise ValueError("emulate trains on the whole set, not on a shard")
        small = [i for i, (a, b) in enumerate(data.batch_bounds) if b - a < ctx.size]
        if small:
            raise ValueError(f"batch {small[0]} has fewer rows than the {ctx.size} ranks "
                             f"emulated: every rank needs a row of every batch")
        return data
    data = shard_for(ctx, data)
    share_net(ctx, net)
    ctx.sums.stop = False
    return data
