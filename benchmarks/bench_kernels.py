"""Kernel benchmarks: the compiled kernels against their NumPy twin, 2 threads.

For the layer shapes of the MNIST net (784->100 and 100->10) at batch 1, 10, 32, 100, 1000 and
10000, float32 and float64:
* forward:  dense_forward with a sigmoid;
* backward: hidden_delta (sigmoid) + weight_grad, the two kernels of one layer's backprop.
Each group ("forward 784->100 batch 100 float32", ...) holds the native and the numpy row
side by side.  Outputs are preallocated outside the timed function.  All native cases run
before all numpy ones, so that each backend's BLAS threads run alone: NumPy (the twin) and
SciPy (the native kernels' GEMM) load separate OpenBLAS libraries, whose idle threads spin for
a while after each call and slow the other library's threads down.

    .venv/bin/python -m pytest benchmarks/bench_kernels.py -q
"""
import numpy as np
import pytest

import synaptic
from synaptic._kernels import native, reference

SIGMOID = reference.ACT_SIGMOID
SHAPES = [(784, 100), (100, 10)]
BATCHES = [1, 10, 32, 100, 1000, 10000]
DTYPES = [np.float32, np.float64]
BACKENDS = [pytest.param("native", marks=pytest.mark.skipif(native is None,
                                                             reason="native backend not built")),
            "numpy"]


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    previous = synaptic.get_num_threads()
    synaptic.set_num_threads(2)
    yield
    synaptic.set_num_threads(previous)


def _arrays(d, o, n, dtype):
    rng = np.random.default_rng(0)
    return {
        "x": rng.uniform(0, 1, (n, d)).astype(dtype),               # the layer's input
        "w": (rng.standard_normal((o, 1 + d)) / d).astype(dtype),
        "out": np.empty((n, o), dtype),
        "dz": rng.standard_normal((n, o)).astype(dtype),             # the delta from above
        "dx": np.empty((n, d), dtype),
        "g": np.empty((o, 1 + d), dtype),
    }


def _timed(benchmark, fn, batch):
    if batch >= 10000:
        benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    elif batch >= 1000:
        benchmark.pedantic(fn, rounds=15, iterations=1, warmup_rounds=1)
    else:
        benchmark(fn)


# the bottom-most parametrize varies slowest: every native case runs before the numpy ones
@pytest.mark.benchmark(max_time=0.15, min_rounds=10)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}-{s[1]}")
@pytest.mark.parametrize("op", ["forward", "backward"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer(benchmark, backend, op, shape, batch, dtype):
    kern = native if backend == "native" else reference
    d, o = shape
    a = _arrays(d, o, batch, dtype)
    x, w, out, dz, dx, g = a["x"], a["w"], a["out"], a["dz"], a["dx"], a["g"]
    benchmark.group = f"{op} {d}->{o} batch {batch} {np.dtype(dtype).name}"
    benchmark.extra_info.update(backend=backend, op=op, batch=batch, dtype=np.dtype(dtype).name)
    if op == "forward":
        def fn():
            kern.dense_forward(x, w, SIGMOID, out)
    else:
        def fn():
            kern.hidden_delta(dz, w, x, SIGMOID, dx)
            kern.weight_grad(dz, x, g)
    _timed(benchmark, fn, batch)
    # What was timed is the real computation.  Checked without BLAS: a NumPy matmul here
    # would wake NumPy's OpenBLAS threads, which then spin for a while next to SciPy's
    # (the native kernels') and disturb the next measurement.
    x64, w64, dz64 = (a.astype(np.float64) for a in (x, w, dz))
    if op == "forward":
        z = (x64[:3, None, :] * w64[None, :, 1:]).sum(axis=2) + w64[:, 0]
        np.testing.assert_allclose(out[:3], 1 / (1 + np.exp(-z)), rtol=1e-3, atol=1e-5)
    else:
        np.testing.assert_allclose(g[:, 0], dz64.sum(axis=0), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(g[:3, 1:4], (dz64[:, :3, None] * x64[:, None, :3]).sum(axis=0),
                                   rtol=1e-3, atol=1e-3)
        y = x64[:3]
        expected = (dz64[:3, :, None] * w64[None, :, 1:]).sum(axis=1) * y * (1 - y)
        np.testing.assert_allclose(dx[:3], expected, rtol=1e-3, atol=1e-5)


# ---------------------------------------------------------------------------------------
# The first layer on MNIST pixels (81 % exact zeros): dense_forward and weight_grad, where
# the native kernels take their sparse-input path from a few dozen rows.  The "[dense path]"
# groups time the native kernels with that path turned off (the GEMMs), for comparison.

MNIST_BATCHES = [10, 100, 1000, 10000]
MNIST_IMAGES = "t10k-images-idx3-ubyte.gz"


@pytest.fixture(scope="module")
def pixels():
    """The 10,000 MNIST t10k digits scaled to 0..1, or (files absent) a synthetic stand-in
    with the same fraction of exact zeros."""
    import os
    import pathlib
    repo = pathlib.Path(__file__).resolve().parent.parent
    path = pathlib.Path(os.environ.get("SYNAPTIC_MNIST_DIR", repo.parent / "shared" / "data" / "mnist"))
    path = path / MNIST_IMAGES
    if path.is_file():
        from synaptic import datasets
        return datasets.read_samples_idx(path).astype(np.float64) / 255
    rng = np.random.default_rng(0)
    return rng.uniform(0, 1, (10000, 784)) * (rng.uniform(size=(10000, 784)) > 0.81)


@pytest.mark.benchmark(max_time=0.15, min_rounds=10)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("batch", MNIST_BATCHES, ids=lambda b: f"batch{b}")
@pytest.mark.parametrize("op", ["forward", "weight_grad"])
@pytest.mark.parametrize("backend,path", [
    pytest.param("native", "auto", marks=pytest.mark.skipif(native is None,
                                                            reason="native backend not built")),
    pytest.param("native", "dense", marks=pytest.mark.skipif(native is None,
                                                             reason="native backend not built")),
    ("numpy", "auto")])
def test_first_layer_mnist(benchmark, pixels, backend, path, op, batch, dtype):
    kern = native if backend == "native" else reference
    d, o = 784, 100
    rng = np.random.default_rng(1)
    x = np.ascontiguousarray(pixels[:batch], dtype=dtype)
    w = (rng.standard_normal((o, 1 + d)) / 28).astype(dtype)
    dz = rng.standard_normal((batch, o)).astype(dtype)
    out = np.empty((batch, o), dtype)
    g = np.empty((o, 1 + d), dtype)
    benchmark.group = (f"mnist {op} 784->100 batch {batch} {np.dtype(dtype).name}"
                       + (" [dense path]" if path == "dense" else ""))
    benchmark.extra_info.update(backend=backend, op=op, batch=batch, path=path,
                                dtype=np.dtype(dtype).name, zeros=float((x == 0).mean()))
    if op == "forward":
        def fn():
            kern.dense_forward(x, w, SIGMOID, out)
    else:
        def fn():
            kern.weight_grad(dz, x, g)
    old = native.dense._set_sparse_threshold(2**62, 2.0, 2**62, 2.0) if path == "dense" else None
    try:
        _timed(benchmark, fn, batch)
    finally:
        if old is not None:
            native.dense._set_sparse_threshold(*old)
    # checked without BLAS (see test_layer)
    x64, w64, dz64 = (a.astype(np.float64) for a in (x, w, dz))
    if op == "forward":
        z = (x64[:3, None, :] * w64[None, :, 1:]).sum(axis=2) + w64[:, 0]
        np.testing.assert_allclose(out[:3], 1 / (1 + np.exp(-z)), rtol=1e-3, atol=1e-5)
    else:
        np.testing.assert_allclose(g[:, 0], dz64.sum(axis=0), rtol=1e-3, atol=1e-3)
        np.testing.assert_allclose(g[:3, 300:304],
                                   (dz64[:, :3, None] * x64[:, None, 299:303]).sum(axis=0),
                                   rtol=1e-3, atol=1e-3)
