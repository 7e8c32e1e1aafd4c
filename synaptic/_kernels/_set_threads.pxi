# Included by every kernel module (conv.pyx, pool.pyx; dense.pyx, loss.pyx and update.pyx
# through _threads.pxi): the module's thread count and its knob.

cimport openmp

cdef int _num_threads = openmp.omp_get_max_threads()


def set_threads(n):
    """Set the number of OpenMP threads of every parallel loop of this module."""
    global _num_threads
    n = int(n)
    if n < 1:
        raise ValueError(f"thread count must be >= 1, got {n}")
    _num_threads = n
