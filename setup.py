"""Build the Cython/OpenMP kernels, each compiled once per CPU level, chosen at import.

Every ``synaptic/_kernels/*.pyx`` but ``_cpu.pyx`` becomes one extension module that holds
one copy of its code per level of LEVELS, each compiled from the same Cython C file with
that level's flags (its ``PyInit_<module>`` renamed), plus a stub compiled for the baseline
(``c/dispatch.h``) whose ``PyInit_<module>`` hands the import over to the copy of the level
in use (``_cpu.pyx``: the best this CPU offers, or a lower one forced by ``SYNAPTIC_CPU``).
No ``-march=native``: a build made here runs on any x86-64-v2 CPU, at the best level it has;
other machines (aarch64) build the portable level only.

``SYNAPTIC_BUILD_LEVELS=baseline,avx2`` builds fewer levels (a quicker development build).
The generated C files go to ``build/cython``, never into the package.
"""
import glob
import os
import platform
import re
from concurrent.futures import ThreadPoolExecutor

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from setuptools.modified import newer_group
except ImportError:  # setuptools < 69
    from setuptools.dep_util import newer_group

KERNELS = "synaptic/_kernels"
C_DIR = os.path.join(KERNELS, "c")
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
ALL_LEVELS = ([("baseline", ["-march=x86-64-v2", "-mtune=generic"]),
               ("avx2", ["-march=x86-64-v3", "-mtune=generic"]),
               ("avx512", ["-march=x86-64-v4", "-mtune=generic"])]
              if X86 else [("baseline", [])])
COMPILE_ARGS = ["-O3", "-fopenmp", "-g0"]
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": False,
    "wraparound": False,
    "cdivision": True,
    "initializedcheck": False,
    "nonecheck": False,
}
MACROS = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]


def build_levels():
    names = [name for name, _ in ALL_LEVELS]
    wanted = [w.strip() for w in os.environ.get("SYNAPTIC_BUILD_LEVELS", "").split(",") if w.strip()]
    if not wanted:
        return ALL_LEVELS
    if wanted != names[:len(wanted)]:
        raise SystemExit(f"SYNAPTIC_BUILD_LEVELS={','.join(wanted)}: must be the first levels "
                         f"of {','.join(names)}")
    return ALL_LEVELS[:len(wanted)]


LEVELS = build_levels()
BASELINE_FLAGS = LEVELS[0][1]


class BuildDispatched(build_ext):
    """build_ext for the kernel modules: each level's copy, the stub, one link."""

    def build_extension(self, ext):
        if not getattr(ext, "dispatched", False):
            return super().build_extension(ext)
        target = self.get_ext_fullpath(ext.name)
        # the C of the kernels is in c/*.h (any module may include any of them): a change to
        # one, or a new one, rebuilds every kernel module
        headers = sorted(glob.glob(os.path.join(C_DIR, "*.h")))
        if not (self.force or newer_group(ext.sources + ext.depends + headers, target, "newer")):
            return
        module = ext.name.rsplit(".", 1)[1]
        (source,) = ext.sources
        with open(source) as f:
            # Cython's only other global symbol: one per copy, or the link sees duplicates
            globals_ = re.findall(r"^int (__pyx_module_is_main_\w+) = 0;", f.read(), re.M)

        def compile_level(level):
            name, flags = level
            renames = [(f"PyInit_{module}", f"syn_init_{name}_{module}")]
            renames += [(g, f"{g}_{name}") for g in globals_]
            return self.compiler.compile(
                [source], output_dir=os.path.join(self.build_temp, name),
                macros=ext.define_macros + renames, include_dirs=ext.include_dirs,
                extra_postargs=COMPILE_ARGS + flags + ext.extra_compile_args,
                depends=ext.depends)

        stub = os.path.join(self.build_temp, "dispatch", f"{module}_dispatch.c")
        os.makedirs(os.path.dirname(stub), exist_ok=True)
        with open(stub, "w") as f:
            f.write(f"#define SYN_MODULE {module}\n")
            for name, _ in LEVELS[1:]:
                f.write(f"#define SYN_HAVE_{name.upper()} 1\n")
            f.write('#include "dispatch.h"\n')
        with ThreadPoolExecutor(len(LEVELS)) as pool:
            objects = [o for objs in pool.map(compile_level, LEVELS) for o in objs]
        objects += self.compiler.compile([stub], output_dir=None,
                                         include_dirs=ext.include_dirs,
                                         extra_postargs=["-O2"] + BASELINE_FLAGS)
        self.compiler.link_shared_object(
            objects, target, libraries=self.get_libraries(ext),
            library_dirs=ext.library_dirs, runtime_library_dirs=ext.runtime_library_dirs,
            extra_postargs=ext.extra_link_args, export_symbols=self.get_export_symbols(ext),
            debug=self.debug, build_temp=self.build_temp)


def kernel_extension(path):
    ext = Extension(
        f"synaptic._kernels.{os.path.splitext(os.path.basename(path))[0]}", [path],
        include_dirs=[numpy.get_include(), KERNELS, C_DIR],
        extra_link_args=["-fopenmp"], define_macros=MACROS)
    return ext


pyx = sorted(p for p in os.listdir(KERNELS) if p.endswith(".pyx") and p != "_cpu.pyx")
extensions = cythonize(
    [kernel_extension(os.path.join(KERNELS, p)) for p in pyx], build_dir="build/cython",
    compiler_directives=DIRECTIVES, nthreads=os.cpu_count() or 1)
for ext in extensions:
    ext.dispatched = True
cpu = Extension("synaptic._kernels._cpu", [os.path.join(KERNELS, "_cpu.pyx")],
                include_dirs=[KERNELS], depends=[os.path.join(C_DIR, "cpu.h")], extra_compile_args=["-O2", "-g0"] + BASELINE_FLAGS,
                define_macros=[("SYN_COMPILED_LEVELS", str(len(LEVELS)))])
extensions += cythonize([cpu], build_dir="build/cython", compiler_directives={"language_level": 3})

setup(ext_modules=extensions, cmdclass={"build_ext": BuildDispatched})
