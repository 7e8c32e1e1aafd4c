"""Benchmark hygiene: a pause before each benchmark, so that the idle threads of the previous
one (OpenMP's, either OpenBLAS's, PyTorch's) have stopped spinning on the cores before the
next one is timed.  Rows run native first, then the NumPy twin, then PyTorch."""
import time

import pytest


@pytest.fixture(autouse=True)
def quiet_cores(request):
    if not request.config.getoption("benchmark_disable", False):
        time.sleep(0.3)
    yield
