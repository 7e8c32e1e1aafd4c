# The whole set-up on a fresh machine with Python 3.11 and gcc: `make demo`, `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
BUILD_DEPS := "setuptools>=64" wheel "Cython>=3.0" "numpy>=1.25" "scipy>=1.11"
MNIST ?= $(abspath ../shared/data/mnist)

.PHONY: venv install demo test bench bench-torch clean

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

clean:
	rm -rf build *.egg-info synaptic/_kernels/*.so
