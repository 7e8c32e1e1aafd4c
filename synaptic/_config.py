"""One knob for every thread pool: OpenMP in the kernels and the BLAS libraries.

NumPy and SciPy each ship their own OpenBLAS.  Left alone, their idle threads and the
kernels' OpenMP threads fight over the cores, so ``set_num_threads(n)`` sets all of them:
the kernels' OpenMP loops get ``n`` threads, NumPy's BLAS ``n`` threads (the NumPy twin and
the user's own NumPy code), and SciPy's BLAS, the one the compiled kernels call, **one**
thread: the kernels split each matrix product over their own OpenMP threads, each calling
the single-threaded BLAS on its part (measured here: 1.2-1.6x faster than one call on two
BLAS threads for the layer sizes of a 784-100-10 net, and no BLAS threads spinning against
the OpenMP ones).
"""
import contextlib
import os
import platform

import numpy as np
import scipy
import scipy.linalg  # loads SciPy's OpenBLAS so threadpoolctl sees it
from threadpoolctl import ThreadpoolController, threadpool_info

from . import _kernels

_num_threads = None
_adaptive = os.environ.get("SYNAPTIC_ADAPTIVE_THREADS", "1") != "0"


def _default_threads():
    env = os.environ.get("SYNAPTIC_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env.split(",")[0]))
        except ValueError:
            pass
    return os.cpu_count() or 1


def set_num_threads(n):
    """Use ``n`` threads in the kernels (OpenMP) and in every loaded BLAS library.

    NumPy's BLAS gets ``n`` threads, SciPy's (the one the kernels call on their share of a
    product) one.  The default at import is ``$SYNAPTIC_NUM_THREADS``, else
    ``$OMP_NUM_THREADS``, else the number of CPUs.

    Parameters
    ----------
    n : int
        The thread count, >= 1.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        ``n`` is not an int.
    ValueError
        ``n`` < 1.

    Examples
    --------
    >>> import synaptic
    >>> synaptic.set_num_threads(1)
    >>> synaptic.get_num_threads()
    1
    """
    global _num_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"thread count must be an int, got {type(n).__name__}")
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    for backend in _kernels.BACKENDS.values():
        backend.set_threads(n)
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas":
            lib.set_num_threads(1 if _is_kernel_blas(lib.filepath) else n)
    _num_threads = n


def _is_kernel_blas(path):
    """SciPy's own BLAS (the one scipy.linalg.cython_blas calls), e.g. .../scipy.libs/..."""
    return os.path.basename(os.path.dirname(path)).startswith("scipy")


def get_num_threads():
    """The thread count last set by :func:`set_num_threads` (or at import).

    Returns
    -------
    int

    Examples
    --------
    >>> import synaptic
    >>> synaptic.get_num_threads() >= 1
    True
    """
    return _num_threads


def set_adaptive_threads(on):
    """Let training adapt its thread count to a busy machine (on by default).

    With it on, an epoch during which another process took cores from the kernels' threads
    (their CPU time well below threads x wall time) is followed by one on a single thread,
    and the faster count is kept, probing the other now and then (training/threads.py).  The
    results do not depend on it: the kernels give the same bits for any thread count.  The
    default at import is on unless ``$SYNAPTIC_ADAPTIVE_THREADS`` is ``0``.

    Parameters
    ----------
    on : bool
        True to adapt, False to train every epoch on ``get_num_threads()`` threads.

    Returns
    -------
    None

    Raises
    ------
    TypeError
        ``on`` is not a bool.

    Examples
    --------
    >>> import synaptic
    >>> synaptic.set_adaptive_threads(False)
    >>> synaptic.adaptive_threads()
    False
    >>> synaptic.set_adaptive_threads(True)
    """
    global _adaptive
    if not isinstance(on, (bool, np.bool_)):
        raise TypeError(f"set_adaptive_threads takes a bool, got {type(on).__name__}")
    _adaptive = bool(on)


def adaptive_threads():
    """Whether training adapts its thread count to a busy machine (:func:`set_adaptive_threads`).

    Returns
    -------
    bool

    Examples
    --------
    >>> import synaptic
    >>> isinstance(synaptic.adaptive_threads(), bool)
    True
    """
    return _adaptive


@contextlib.contextmanager
def num_threads(n):
    """A context manager: the block runs with ``n`` threads, the previous count after it.

    Parameters
    ----------
    n : int
        The thread count inside the block (see :func:`set_num_threads`).

    Yields
    ------
    int
        ``n``.

    Examples
    --------
    >>> import synaptic
    >>> with synaptic.num_threads(1):
    ...     synaptic.get_num_threads()
    1
    """
    previous = _num_threads
    set_num_threads(n)
    try:
        yield n
    finally:
        set_num_threads(previous)


def set_backend(name):
    """Run every kernel on its compiled version or on its NumPy twin.

    Parameters
    ----------
    name : {"native", "numpy"}
        ``"native"``: the compiled kernels (the default when they are built); ``"numpy"``: their
        NumPy twins (same names, same results within a stated tolerance).

    Returns
    -------
    None

    Raises
    ------
    ValueError
        An unknown name.
    RuntimeError
        ``"native"`` when the compiled kernels are not built.

    Examples
    --------
    >>> import synaptic
    >>> synaptic.set_backend("numpy")
    >>> synaptic.get_backend()
    'numpy'
    >>> synaptic.set_backend("native")
    """
    _kernels.set_backend(name)


def get_backend():
    """The name of the active backend.

    Returns
    -------
    str
        ``"native"`` or ``"numpy"``.

    Examples
    --------
    >>> import synaptic
    >>> synaptic.get_backend() in ("native", "numpy")
    True
    """
    return _kernels.backend_name()


@contextlib.contextmanager
def backend(name):
    """A context manager: the block runs on backend ``name``, the previous one after it.

    Parameters
    ----------
    name : {"native", "numpy"}
        See :func:`set_backend`.

    Yields
    ------
    str
        ``name``.

    Examples
    --------
    >>> import synaptic
    >>> with synaptic.backend("numpy"):
    ...     synaptic.get_backend()
    'numpy'
    """
    previous = _kernels.backend_name()
    _kernels.set_backend(name)
    try:
        yield name
    finally:
        _kernels.set_backend(previous)


def show_config(file=None):
    """Print (and return as a dict) the active backend, the CPU level of the kernels (in use,
    offered by this CPU, compiled), thread counts and BLAS libraries.

    Parameters
    ----------
    file : file-like, optional
        Where to print (default: standard output).

    Returns
    -------
    dict
        ``backend``, ``cpu_level``, ``cpu_levels``, ``cpu_compiled``, ``native_built``,
        ``native_error``, ``num_threads``, ``blas`` (one dict per BLAS library), ``numpy``,
        ``scipy``, ``python``, ``machine``.

    Examples
    --------
    >>> import io, synaptic
    >>> synaptic.show_config(file=io.StringIO())["backend"] in ("native", "numpy")
    True
    """
    blas = [
        {k: info.get(k) for k in ("internal_api", "version", "num_threads", "filepath")}
        for info in threadpool_info() if info.get("user_api") == "blas"
    ]
    cpu = _kernels.cpu_info()
    config = {
        "backend": _kernels.backend_name(),
        "cpu_level": cpu["level"],
        "cpu_levels": cpu["supported"],
        "cpu_compiled": cpu["compiled"],
        "native_built": _kernels.native is not None,
        "native_error": None if _kernels.native_error() is None else str(_kernels.native_error()),
        "num_threads": _num_threads,
        "blas": blas,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    lines = [f"synaptic backend: {config['backend']}"
             + ("" if config["native_built"] else f" (native not built: {config['native_error']})"),
             f"CPU level: {cpu['level']} (this CPU offers {', '.join(cpu['supported']) or '-'}; "
             f"compiled: {', '.join(cpu['compiled']) or '-'}; SYNAPTIC_CPU forces a lower one)",
             f"threads (OpenMP and BLAS): {config['num_threads']}"]
    for lib in blas:
        lines.append(f"BLAS: {lib['internal_api']} {lib['version']} "
                     f"threads={lib['num_threads']} ({lib['filepath']})")
    lines.append(f"numpy {config['numpy']}, scipy {config['scipy']}, "
                 f"Python {config['python']} on {config['machine']}")
    print("\n".join(lines), file=file)
    return config


set_num_threads(_default_threads())
