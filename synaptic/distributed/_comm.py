"""The MPI side of synaptic.distributed: every collective the training needs, each one
non-blocking and waited for with a deadline, so a rank that died ends the run on the others
with a :class:`DistributedError` instead of a hang.

Arrays travel through mpi4py's buffer methods (``Iallreduce``, ``Igather``, ``Ibcast``: no
pickle); the few small control messages (the net's description at the start, the stats of
an epoch) are JSON text sent as bytes through the same buffer methods.
"""
import json
import time

import numpy as np

POLL_SPIN = 2e-4  # seconds of Test() in a tight loop before the waits sleep between tests
POLL_MAX_SLEEP = 1e-3


class DistributedError(RuntimeError):
    """A collective operation of a distributed training failed or timed out: another rank
    died, hangs or called a different operation.

    Parameters
    ----------
    message : str
        What failed, on which rank, after how long.

    Examples
    --------
    >>> from synaptic.distributed import DistributedError
    >>> str(DistributedError("rank 1: the gradient sum did not complete in 30 s"))
    'rank 1: the gradient sum did not complete in 30 s'
    """


class Comm:
    """One MPI communicator with deadlines on its collectives.

    ``deterministic``: sums are gathered on rank 0, added there in rank order and broadcast
    (the same bits whatever the MPI library's reduction algorithm), else one ``Iallreduce``.
    ``timeout``: seconds a collective may take before :class:`DistributedError`.
    """

    def __init__(self, comm, deterministic, timeout):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = comm.Dup()
        self.comm.Set_errhandler(MPI.ERRORS_RETURN)  # MPI errors become Python exceptions
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.deterministic, self.timeout = bool(deterministic), float(timeout)
        self.broken = None  # the message of the failure that broke the communicator
        self.seconds = 0.0  # time spent in the gradient sums (the benchmark reads it)
        self.calls = 0
        self._gather = None  # rank 0's receive buffer of the deterministic sum

    def _wait(self, request, what):
        """Wait for ``request`` until the deadline; DistributedError after it (or at once when
        an earlier collective already failed)."""
        if self.broken is not None:
            raise DistributedError(self.broken)
        start = time.monotonic()
        pause = 0.0
        try:
            while not request.Test():
                now = time.monotonic()
                if now - start > self.timeout:
                    self.broken = (f"rank {self.rank} of {self.size}: {what} did not complete in "
                                   f"{self.timeout:g} s; another rank has probably died or "
                                   f"stopped responding (the run cannot go on)")
                    raise DistributedError(self.broken)
                if now - start > POLL_SPIN:
                    time.sleep(pause)
                    pause = min(POLL_MAX_SLEEP, pause * 2 or 2e-5)
        except self.MPI.Exception as err:
            self.broken = f"rank {self.rank} of {self.size}: {what} failed: {err}"
            raise DistributedError(self.broken) from None

    def sum(self, buf, what="the gradient sum"):
        """Replace the 1-D array ``buf`` by its sum over the ranks, in place."""
        started = time.perf_counter()
        if not self.deterministic:
            self._wait(self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM), what)
        else:
            recv = None
            if self.rank == 0:
                if (self._gather is None or self._gather.shape != (self.size, buf.size)
                        or self._gather.dtype != buf.dtype):
                    self._gather = np.empty((self.size, buf.size), dtype=buf.dtype)
                recv = self._gather
            self._wait(self.comm.Igather(buf, recv, root=0), what)
            if self.rank == 0:
                add_in_order(recv, buf)
            self._wait(self.comm.Ibcast(buf, root=0), what)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return buf

    def bcast(self, buf, what="a broadcast from rank 0"):
        """Rank 0's ``buf`` into every rank's ``buf`` (in place)."""
        self._wait(self.comm.Ibcast(buf, root=0), what)
        return buf

    def bcast_json(self, value, what="a message from rank 0"):
        """Rank 0's ``value`` (JSON-serialisable) on every rank."""
        data = json.dumps(value).encode() if self.rank == 0 else b""
        n = self.bcast(np.array([len(data)], dtype=np.int64), what)
        buf = np.frombuffer(data, dtype=np.uint8).copy() if self.rank == 0 else \
            np.empty(int(n[0]), dtype=np.uint8)
        self.bcast(buf, what)
        return json.loads(buf.tobytes().decode())

    def allgather_json(self, value, what="an exchange between the ranks"):
        """[each rank's ``value``] on every rank, in rank order."""
        data = np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)
        sizes = np.empty(self.size, dtype=np.int64)
        self._wait(self.comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), what)
        out = np.empty(int(sizes.sum()), dtype=np.uint8)
        self._wait(self.comm.Iallgatherv(data, [out, sizes]), what)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return [json.loads(out[a:b].tobytes().decode()) for a, b in zip(offsets, offsets[1:])]

    def abort(self, code=1):
        """End every process of the job (after a failure the survivors cannot finalise)."""
        self.MPI.COMM_WORLD.Abort(code)


def add_in_order(parts, out):
    """``out = parts[0] + parts[1] + ...``, added one row at a time in row (rank) order: the
    deterministic sum, the same in a distributed run and in its one-process emulation."""
    np.copyto(out, parts[0])
    for part in parts[1:]:
        out += part
    return out
