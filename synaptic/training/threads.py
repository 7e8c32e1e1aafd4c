"""The thread count of a training run's epochs, adapted to a busy machine.

With n > 1 threads the kernels' threads meet at barriers (a whole epoch's kernel twice a batch
and more).  When another process keeps a core busy, the operating system deschedules one of
them now and then and the others wait for it: on this 2-core machine, with a busy-loop process
beside it, a W1 epoch (784-100-10, MNIST, batch 100) took 25-34 ms on 2 threads against 18-21
ms on 1.  The results do not depend on the thread count (the kernels give the same bits for
any count: test_determinism.py), so the count of each epoch can follow the machine's load:

* The run starts on ``get_num_threads()`` threads and measures each epoch after the first
  (which warms up): its wall time and the process's CPU time.  Spinning threads that are not descheduled keep the CPU time near
  ``threads x wall``; well below that (less than CONTENDED of it) another process took cores.
* After a contended epoch the next one probes 1 thread; whichever count ran an epoch faster
  (seconds a row, the latest epoch of each) is used from then on.  On 1 thread the other
  count is probed again after PROBE_FIRST epochs, then at doubling intervals (up to
  PROBE_MAX epochs) while it keeps losing.
* On a quiet machine no epoch is contended and nothing changes; with n = 1, with the NumPy
  backend, or with ``synaptic.set_adaptive_threads(False)``, the chooser does nothing.

The count is set on the compiled kernels only (not on the BLAS libraries) for the epoch and
put back after it.  The chooser lives on the net, so successive ``train`` calls of one epoch
each keep what it learnt.
"""
import time

from .. import _config, _kernels

CONTENDED = 0.8      # CPU time / (threads x wall time) below which an epoch was contended
PROBE_FIRST = 8
PROBE_MAX = 64
MIN_SECONDS = 0.002  # shorter epochs are not measured


class ThreadChooser:
    """The thread count of the next epoch (:meth:`begin`), from the epochs measured
    (:meth:`end`)."""

    def __init__(self):
        self.n = None
        self.best = None
        self.rate = {}           # threads -> seconds a row, the latest epoch on that count
        self.wait = 0            # epochs before the next probe (on 1 thread)
        self.interval = PROBE_FIRST
        self.trial = None        # "one": the first epoch on 1 thread; "all": n probed from 1
        self.warm = False        # an epoch measured (the first one warms up: not judged)
        self._count = None
        self._started = None

    def _reset(self, n):
        self.n, self.best, self.rate, self.warm = n, n, {}, False
        self.wait, self.interval, self.trial = 0, PROBE_FIRST, None

    def begin(self, kern):
        """Set the kernels' thread count for the epoch about to run; returns it."""
        n = _config.get_num_threads()
        if kern is not _kernels.native or n <= 1 or not _config.adaptive_threads():
            self._count = None
            return n
        if n != self.n:
            self._reset(n)
        if self.best == 1 and self.wait <= 0 and self.trial is None:
            self.trial = "all"
        count = n if self.trial == "all" else self.best
        self._count = count
        if count != n:
            kern.set_threads(count)
        self._started = (time.perf_counter(), time.process_time())
        return count

    def restore(self, kern):
        """The kernels' count put back (after an epoch, or when one ended in an error)."""
        if self._count is not None and self._count != self.n:
            kern.set_threads(self.n)
        self._count = None

    def end(self, kern, rows):
        """After the epoch (``rows`` trained): the kernels' count put back, the epoch
        measured and the next count chosen."""
        count = self._count
        if count is None:
            return
        self.restore(kern)
        wall = time.perf_counter() - self._started[0]
        cpu = time.process_time() - self._started[1]
        if wall < MIN_SECONDS or rows <= 0:
            return
        if not self.warm:        # page faults, the threads' start: not the machine's load
            self.warm = True
            return
        self.rate[count] = wall / rows
        trial, self.trial = self.trial, None
        if trial == "all":                        # n threads probed from 1
            if self.rate[self.n] < self.rate.get(1, float("inf")):
                self.best, self.interval = self.n, PROBE_FIRST
            else:
                self.interval = min(PROBE_MAX, 2 * self.interval)
                self.wait = self.interval
        elif trial == "one":                      # the first epoch on 1 thread
            if self.rate[1] >= self.rate.get(self.n, float("inf")):
                self.best = self.n                # 1 thread was no faster
            else:
                self.wait = self.interval
        elif count == self.n:
            if cpu < CONTENDED * count * wall:    # contended: try 1 thread next
                self.best, self.trial = 1, "one"
        else:
            self.wait -= 1


def chooser(net):
    """The net's ThreadChooser (made on first use; not saved with the net)."""
    found = getattr(net, "_thread_chooser", None)
    if found is None:
        found = ThreadChooser()
        net._thread_chooser = found
    return found
