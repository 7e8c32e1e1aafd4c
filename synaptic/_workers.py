"""The threads that run synaptic's kernels: training threads, reused from call to call, which
also run the big forward passes asked for from other threads (``call``).

Why: libgomp gives every thread that starts a parallel region its own team of threads, and as
soon as the teams of a process hold more threads than there are cores, every OpenMP barrier
sleeps and wakes through the kernel instead of spinning (measured: a W2 epoch 57 -> 80 ms after
one ``estimate`` of 10,000 digits in the main thread).  Keeping the kernels on these threads
keeps one team per concurrent training.  A fresh thread per train call would also build a
fresh team and fresh kernel scratch each time (measured: 8-15 ms a call).  Daemon threads: a
training left running never holds up the interpreter's exit.
"""
import concurrent.futures
import queue
import threading

_idle = queue.SimpleQueue()
_local = threading.local()


def _worker(jobs):
    _local.worker = True
    while True:
        job, future = jobs.get()
        try:
            settle = job()
        except BaseException as exc:  # noqa: BLE001 - a job that failed to settle: settle it here
            settle = failed(exc)
        _idle.put(jobs)  # idle again before the caller hears of it: its next call reuses us
        try:
            settle(future)
        except BaseException as exc:  # noqa: BLE001 - the worker must live on, the Future settle
            if not future.done():
                future.set_exception(exc)


def failed(error):
    """A settle function that fails the Future with ``error``."""
    return lambda future: future.set_exception(error)


def submit(job, future):
    """Run ``job()`` on an idle worker (a new one if none is idle); ``job`` returns a function
    that settles ``future``, called once the worker is idle again.  Whatever ``job`` or its
    settle function raises settles ``future`` with that exception; the worker lives on."""
    try:
        jobs = _idle.get_nowait()
    except queue.Empty:
        jobs = queue.SimpleQueue()
        threading.Thread(target=_worker, args=(jobs,), name="synaptic-train", daemon=True).start()
    jobs.put((job, future))


def in_worker():
    return getattr(_local, "worker", False)


def call(fn, *args):
    """``fn(*args)`` on a worker thread (here if this is one), its result or exception."""
    if in_worker():
        return fn(*args)
    future = concurrent.futures.Future()

    def job():
        try:
            result = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            return failed(exc)
        return lambda f: f.set_result(result)
    submit(job, future)
    return future.result()
