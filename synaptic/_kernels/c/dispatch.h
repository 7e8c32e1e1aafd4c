/* The entry point of a kernel module compiled once per CPU level (see cpu.h).
 *
 * setup.py compiles the module's Cython C file once per level, with the level's flags and
 * its PyInit_<module> renamed to syn_init_<level>_<module>, and one small stub per module:
 *
 *     #define SYN_MODULE dense
 *     #define SYN_HAVE_AVX2 1      (the levels above baseline that were compiled)
 *     #define SYN_HAVE_AVX512 1
 *     #include "dispatch.h"
 *
 * The stub (compiled at the baseline level) defines PyInit_<module>: it asks
 * synaptic._kernels._cpu for the level in use, chosen once per process from the CPU and
 * SYNAPTIC_CPU, and hands over to that copy.  No instruction of a higher level runs before
 * that choice.
 */
#include <Python.h>

#define SYN_CAT_(a, b) a##b
#define SYN_CAT(a, b) SYN_CAT_(a, b)
#define SYN_STR_(a) #a
#define SYN_STR(a) SYN_STR_(a)

PyMODINIT_FUNC SYN_CAT(syn_init_baseline_, SYN_MODULE)(void);
#if SYN_HAVE_AVX2
PyMODINIT_FUNC SYN_CAT(syn_init_avx2_, SYN_MODULE)(void);
#endif
#if SYN_HAVE_AVX512
PyMODINIT_FUNC SYN_CAT(syn_init_avx512_, SYN_MODULE)(void);
#endif

PyMODINIT_FUNC SYN_CAT(PyInit_, SYN_MODULE)(void)
{
    PyObject *cpu = PyImport_ImportModule("synaptic._kernels._cpu");
    if (cpu == NULL)
        return NULL;
    PyObject *index = PyObject_CallMethod(cpu, "level_index", NULL);
    Py_DECREF(cpu);
    if (index == NULL)
        return NULL;
    long level = PyLong_AsLong(index);
    Py_DECREF(index);
    if (level == -1 && PyErr_Occurred())
        return NULL;
    switch (level) {
    case 0: return SYN_CAT(syn_init_baseline_, SYN_MODULE)();
#if SYN_HAVE_AVX2
    case 1: return SYN_CAT(syn_init_avx2_, SYN_MODULE)();
#endif
#if SYN_HAVE_AVX512
    case 2: return SYN_CAT(syn_init_avx512_, SYN_MODULE)();
#endif
    default:
        PyErr_Format(PyExc_ImportError, "synaptic._kernels.%s: no copy for CPU level %ld",
                     SYN_STR(SYN_MODULE), level);
        return NULL;
    }
}
