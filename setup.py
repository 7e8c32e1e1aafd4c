"""Build the Cython/OpenMP kernels.

Every ``synaptic/_kernels/*.pyx`` becomes one extension module, compiled with -O3 and
OpenMP.  ``-march=native`` is added unless ``SYNAPTIC_PORTABLE=1`` is set: the package is
built from source on the machine that runs it, and the elementwise passes gain from AVX2/FMA.
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3", "-fopenmp"]
if os.environ.get("SYNAPTIC_PORTABLE", "") != "1":
    COMPILE_ARGS.append("-march=native")

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
}

extensions = [
    Extension(
        "synaptic._kernels." + os.path.splitext(os.path.basename(path))[0],
        [path],
        include_dirs=[numpy.get_include()],
        extra_compile_args=COMPILE_ARGS,
        extra_link_args=["-fopenmp"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for path in sorted(glob.glob("synaptic/_kernels/*.pyx"))
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES))
