# Included by dense.pyx, loss.pyx and update.pyx (after ``from ._common cimport *``): each
# module's thread count and the thresholds of its OpenMP loops, with the knob and the hooks.

from cpython.pyport cimport PY_SSIZE_T_MAX

include "_set_threads.pxi"

# the OpenMP loops run only if libgomp's idle threads sleep (see _common.omp_workers_sleep)
cdef bint _omp_sleeps = omp_workers_sleep()
cdef Py_ssize_t _par_light = PAR_MIN_LIGHT if _omp_sleeps else PY_SSIZE_T_MAX
cdef Py_ssize_t _par_heavy = PAR_MIN_HEAVY if _omp_sleeps else PY_SSIZE_T_MAX


def _set_parallel_threshold(light, heavy):
    """Testing and tuning hook: the element counts from which the light / heavy passes run
    their OpenMP loops (with more than one thread); returns the previous pair."""
    global _par_light, _par_heavy
    old = (_par_light, _par_heavy)
    _par_light = light
    _par_heavy = heavy
    return old


def _parallel_config():
    """(libgomp threads sleep when idle, light threshold, heavy threshold, threads)."""
    return bool(_omp_sleeps), _par_light, _par_heavy, _num_threads
