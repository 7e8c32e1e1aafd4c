"""CSR kernels against their twin: a first layer 2000 -> 100 on TF-IDF-like CSR batches
(density 1.3 %, bench_sklearn.py's sparse set), batch 200 (a mini-batch) and 16,000 (L-BFGS's
full batch), float32 and float64, the library's default threads.

* forward: csr_forward (relu);
* weight_grad: csr_weight_grad;
each group ("csr forward batch 200 float32", ...) holds the native and the numpy (SciPy
sparse products) rows, and the dense kernel on the densified batch for scale.

    .venv/bin/python -m pytest benchmarks/bench_csr.py -q
"""
import numpy as np
import pytest
import scipy.sparse as sp

from synaptic._kernels import native, reference

D, O, DENSITY = 2000, 100, 0.013
BATCHES = [200, 16000]
DTYPES = [np.float32, np.float64]
KINDS = [pytest.param("native", marks=pytest.mark.skipif(native is None,
                                                          reason="native backend not built")),
         "numpy",
         pytest.param("dense", marks=pytest.mark.skipif(native is None,
                                                        reason="native backend not built"))]


def _arrays(n, dtype):
    rng = np.random.default_rng(0)
    x = sp.random(n, D, density=DENSITY, format="csr", random_state=0, dtype=dtype)
    return {"x": x, "dense": x.toarray(),
            "w": (rng.standard_normal((O, 1 + D)) * 0.05).astype(dtype),
            "out": np.empty((n, O), dtype), "dz": rng.standard_normal((n, O)).astype(dtype),
            "g": np.empty((O, 1 + D), dtype)}


def _timed(benchmark, fn, batch):
    if batch >= 10000:
        benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    else:
        benchmark(fn)


@pytest.mark.benchmark(max_time=0.15, min_rounds=10)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batch", BATCHES)
def test_csr_forward(benchmark, batch, dtype, kind):
    a = _arrays(batch, dtype)
    x, w, out = a["x"], a["w"], a["out"]
    benchmark.group = f"csr forward batch {batch} {np.dtype(dtype).name}"
    if kind == "dense":
        fn = lambda: native.dense_forward(a["dense"], w, reference.ACT_RELU, out)  # noqa: E731
        want = None
    else:
        kern = native if kind == "native" else reference
        fn = lambda: kern.csr_forward(x.data, x.indices, x.indptr, w,  # noqa: E731
                                      reference.ACT_RELU, out)
        want = np.maximum(x @ w[:, 1:].T.astype(np.float64) + w[:, 0], 0)
    _timed(benchmark, fn, batch)
    if want is not None:
        np.testing.assert_allclose(out, want, rtol=1e-3, atol=1e-4)


@pytest.mark.benchmark(max_time=0.15, min_rounds=10)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batch", BATCHES)
def test_csr_weight_grad(benchmark, batch, dtype, kind):
    a = _arrays(batch, dtype)
    x, dz, g = a["x"], a["dz"], a["g"]
    benchmark.group = f"csr weight_grad batch {batch} {np.dtype(dtype).name}"
    if kind == "dense":
        fn = lambda: native.weight_grad(dz, a["dense"], g)  # noqa: E731
        want = None
    else:
        kern = native if kind == "native" else reference
        fn = lambda: kern.csr_weight_grad(dz, x.data, x.indices, x.indptr, g)  # noqa: E731
        want = (x.T @ dz.astype(np.float64)).T
    _timed(benchmark, fn, batch)
    if want is not None:
        np.testing.assert_allclose(g[:, 1:], want, rtol=1e-3, atol=1e-3)
