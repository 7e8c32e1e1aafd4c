"""The compiled kernels (``native``) against their NumPy twin (``reference``, the contract),
and both backends against the hand values of the spec (SYNAPTIC.md §9.1, §9.2, §9.7, §9.8).

Random shapes come from hypothesis: 1 row, 1 column and odd sizes, float32 and float64, with
1 and 2 threads.  With 2 threads every OpenMP loop is forced parallel whatever its size (the
kernels keep small arrays serial by default, which would leave the prange paths untested on
small shapes); the large-array tests cover the default thresholds.  Every output starts as
NaN, so an element a kernel forgets to write fails the comparison.
"""
import contextlib
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference

R = reference
needs_native = pytest.mark.skipif(
    native is None, reason=f"native backend not built: {_kernels.native_error()}")
BACKENDS = [pytest.param(reference, id="numpy"),
            pytest.param(native, id="native", marks=needs_native)]
DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]

# native vs twin: GEMM and libm differ in the last bits
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}
# the update kernels do the twin's operations in its order: a few ulps at most
ULP = {np.float32: dict(rtol=4e-7, atol=1e-30), np.float64: dict(rtol=1e-15, atol=1e-300)}

ALL_ACTS = list(range(R.N_ACT))
DERIV_ACTS = [R.ACT_LINEAR, R.ACT_SIGMOID, R.ACT_TANH, R.ACT_SOFTMAX, R.ACT_RELU,
              R.ACT_LEAKY_RELU, R.ACT_ELU, R.ACT_SOFTPLUS]
NO_DERIV_ACTS = [R.ACT_BINARY_THRESHOLD, R.ACT_BIPOLAR_THRESHOLD, R.ACT_BINARY_PROB]
STEP_ACTS = [R.ACT_BINARY_THRESHOLD, R.ACT_BIPOLAR_THRESHOLD, R.ACT_BINARY_PROB]

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
rows = st.one_of(st.just(1), st.integers(1, 37))
cols = st.one_of(st.just(1), st.integers(1, 23))
outs = st.one_of(st.just(1), st.integers(1, 13))
seeds = st.integers(0, 2**32 - 1)
# leaky-relu's slope (the other activations ignore it): the default, 0 and odd values
slopes = st.one_of(st.just(R.LEAKY_SLOPE), st.just(0.0), st.floats(0, 0.999))


def _native_modules():
    return (native.dense, native.loss, native.update) if native is not None else ()


@contextlib.contextmanager
def threads(n):
    """``n`` threads; with n > 1 the native OpenMP loops run in parallel at every size."""
    with synaptic.num_threads(n):
        forced = [(m, m._set_parallel_threshold(0, 0)) for m in _native_modules()] if n > 1 else []
        gemm_old = native.dense._set_gemm_threshold(0) if forced else None
        try:
            yield
        finally:
            for module, old in forced:
                module._set_parallel_threshold(*old)
            if gemm_old is not None:
                native.dense._set_gemm_threshold(gemm_old)


def nans(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def close(got, want, tol):
    np.testing.assert_allclose(got, want, equal_nan=False, **tol)


def skip_without_native():
    if native is None:
        pytest.skip(f"native backend not built: {_kernels.native_error()}")


# ---------------------------------------------------------------------------------------
# native == twin on random shapes

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=outs, act=st.sampled_from(ALL_ACTS), seed=seeds, inplace=st.booleans(),
       slope=slopes)
def test_activate(dtype, nthreads, n, m, act, seed, inplace, slope):
    skip_without_native()
    z = normal(np.random.default_rng(seed), (n, m), dtype, 3.0)
    want = nans(z.shape, dtype)
    R.activate(z.copy(), act, want, slope)
    with threads(nthreads):
        if inplace:
            got = z.copy()
            native.activate(got, act, got, slope)
        else:
            got = nans(z.shape, dtype)
            zc = z.copy()
            native.activate(zc, act, got, slope)
            np.testing.assert_array_equal(zc, z)   # the input is untouched
    if act in STEP_ACTS or act in (R.ACT_LINEAR, R.ACT_RELU, R.ACT_LEAKY_RELU):
        np.testing.assert_array_equal(got, want)
    else:
        close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, d=cols, o=outs, act=st.sampled_from(ALL_ACTS), seed=seeds, slope=slopes)
def test_dense_forward(dtype, nthreads, n, d, o, act, seed, slope):
    skip_without_native()
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, d), dtype)
    w = normal(rng, (o, 1 + d), dtype, 2.0 / math.sqrt(d))
    want = nans((n, o), dtype)
    R.dense_forward(x, w, act, want, slope)
    got = nans((n, o), dtype)
    with threads(nthreads):
        native.dense_forward(x, w, act, got, slope)
    if act in STEP_ACTS:
        # a step of a logit within rounding of 0 may legitimately flip: compare the others
        z = x.astype(np.float64) @ w[:, 1:].T.astype(np.float64) + w[:, 0].astype(np.float64)
        clear = np.abs(z) > 1e-3
        np.testing.assert_array_equal(got[clear], want[clear])
        assert np.isin(got, [-1, 0, 1]).all()
    else:
        close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=cols, act=st.sampled_from(DERIV_ACTS), seed=seeds, slope=slopes)
def test_derivative(dtype, nthreads, n, m, act, seed, slope):
    skip_without_native()
    y = np.random.default_rng(seed).uniform(-1.5, 1.5, (n, m)).astype(dtype)
    want = nans(y.shape, dtype)
    R.derivative(y, act, want, slope)
    got = nans(y.shape, dtype)
    with threads(nthreads):
        native.derivative(y, act, got, slope)
    close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, o=outs, h=cols, act=st.sampled_from(DERIV_ACTS), seed=seeds, slope=slopes)
def test_hidden_delta(dtype, nthreads, n, o, h, act, seed, slope):
    skip_without_native()
    rng = np.random.default_rng(seed)
    dz = normal(rng, (n, o), dtype)
    w = normal(rng, (o, 1 + h), dtype)
    y = rng.uniform(-1, 1, (n, h)).astype(dtype)
    want = nans((n, h), dtype)
    R.hidden_delta(dz, w, y, act, want, slope)
    got = nans((n, h), dtype)
    with threads(nthreads):
        native.hidden_delta(dz, w, y, act, got, slope)
    close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, o=outs, d=cols, seed=seeds)
def test_weight_grad(dtype, nthreads, n, o, d, seed):
    skip_without_native()
    rng = np.random.default_rng(seed)
    dz = normal(rng, (n, o), dtype)
    x = normal(rng, (n, d), dtype)
    want = nans((o, 1 + d), dtype)
    R.weight_grad(dz, x, want)
    got = nans((o, 1 + d), dtype)
    with threads(nthreads):
        native.weight_grad(dz, x, got)
    close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=outs, kind=st.sampled_from([R.DELTA_DIFF, R.DELTA_SSE]),
       act=st.sampled_from(DERIV_ACTS), seed=seeds, inplace=st.booleans(), slope=slopes)
def test_output_delta(dtype, nthreads, n, m, kind, act, seed, inplace, slope):
    skip_without_native()
    rng = np.random.default_rng(seed)
    # negative outputs too (leaky-relu, elu, linear)
    y = rng.uniform(-0.5, 1, (n, m)).astype(dtype)
    t = (rng.uniform(size=(n, m)) > 0.5).astype(dtype)
    want = nans(y.shape, dtype)
    R.output_delta(y, t, act, kind, want, slope)
    with threads(nthreads):
        if inplace:
            got = y.copy()
            native.output_delta(got, t, act, kind, got, slope)
        else:
            got = nans(y.shape, dtype)
            native.output_delta(y, t, act, kind, got, slope)
    close(got, want, TOL[dtype])


def _error_data(rng, kind, n, m, dtype):
    """y, t that exercise ``kind``: half-up rounding edges, ties, targets other than 0/1."""
    if kind == R.ERR_MISCLASSIFICATION:
        t = rng.integers(0, 2, (n, m)).astype(np.float64)
        offsets = np.array([0.0, 0.25, -0.49, -0.5, 0.49, 0.5, -0.51, 0.51])
        p = np.array([0.6, 0.1, 0.06, 0.06, 0.06, 0.04, 0.04, 0.04])
        y = t + rng.choice(offsets, size=(n, m), p=p)
    elif kind == R.ERR_ARGMAX_MISCLASSIFICATION:
        y = rng.integers(0, 3, (n, m)).astype(np.float64)       # many ties
        t = rng.integers(0, 2, (n, m)).astype(np.float64)
    elif kind == R.ERR_SUM_OF_SQUARES:
        y = rng.standard_normal((n, m))
        t = rng.standard_normal((n, m))
    elif kind == R.ERR_CROSS_ENTROPY_BINARY:
        y = rng.uniform(0, 1, (n, m))
        edge = rng.uniform(size=(n, m)) < 0.2                  # o exactly 0, 1 or 1/2
        y[edge] = rng.choice([0.0, 1.0, 0.5], size=int(edge.sum()))
        t = rng.choice([0.0, 1.0, 0.5], size=(n, m), p=[0.45, 0.45, 0.1])   # 0.5 counts as 0
    else:
        y = rng.uniform(0, 1, (n, m))
        t = np.eye(m)[rng.integers(0, m, n)]
    return y.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=outs, kind=st.sampled_from(list(range(R.N_ERR))), seed=seeds)
def test_error_sum(dtype, nthreads, n, m, kind, seed):
    skip_without_native()
    y, t = _error_data(np.random.default_rng(seed), kind, n, m, dtype)
    want = R.error_sum(y, t, kind)
    with threads(nthreads):
        got = native.error_sum(y, t, kind)
    assert type(got) is float
    if kind in (R.ERR_MISCLASSIFICATION, R.ERR_ARGMAX_MISCLASSIFICATION):
        assert got == want
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)   # both accumulate in double


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=outs, seed=seeds, ties=st.booleans())
def test_argmax_rows(dtype, nthreads, n, m, seed, ties):
    skip_without_native()
    rng = np.random.default_rng(seed)
    y = (rng.integers(0, 3, (n, m)) if ties else rng.standard_normal((n, m))).astype(dtype)
    want = np.full(n, -7, np.int64)
    R.argmax_rows(y, want)
    got = np.full(n, -7, np.int64)
    with threads(nthreads):
        native.argmax_rows(y, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=outs, m=cols, kind=st.sampled_from([R.REG_NONE, R.REG_L1, R.REG_L2]),
       lam=st.floats(1e-4, 2.0), seed=seeds)
def test_regularize(dtype, nthreads, n, m, kind, lam, seed):
    skip_without_native()
    rng = np.random.default_rng(seed)
    w = normal(rng, (n, 1 + m), dtype) * (rng.uniform(size=(n, 1 + m)) > 0.2)   # some zeros
    g = normal(rng, (n, 1 + m), dtype)
    want = g.copy()
    R.regularize(want, w, kind, lam)
    got = g.copy()
    with threads(nthreads):
        native.regularize(got, w, kind, lam)
    close(got, want, ULP[dtype])
    np.testing.assert_array_equal(got[:, 0], g[:, 0])   # the bias column is exempt


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=outs, m=cols, alpha=st.floats(-2.0, 2.0), seed=seeds)
def test_add_scaled(dtype, nthreads, n, m, alpha, seed):
    skip_without_native()
    rng = np.random.default_rng(seed)
    w = normal(rng, (n, m), dtype)
    v = normal(rng, (n, m), dtype)
    want = w.copy()
    R.add_scaled(want, v, alpha)
    got = w.copy()
    with threads(nthreads):
        native.add_scaled(got, v, alpha)
    close(got, want, ULP[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=outs, m=cols, seed=seeds, lr=st.floats(1e-3, 2.0), batch=st.integers(1, 100),
       alpha=st.sampled_from([0.0, 0.5, 0.9]), has_prev=st.booleans(),
       adaptive=st.booleans(), has_gain=st.booleans(), nesterov=st.booleans(),
       bounds=st.sampled_from([(0.1, 10.0), (0.5, 1.2), (None, 1.0), (0.9, None), (None, None)]))
def test_sgd_update(dtype, nthreads, n, m, seed, lr, batch, alpha, has_prev, adaptive,
                    has_gain, nesterov, bounds):
    skip_without_native()
    rng = np.random.default_rng(seed)
    w = normal(rng, (n, m), dtype)
    g = normal(rng, (n, m), dtype, 10.0)
    deltaw = normal(rng, (n, m), dtype, 0.1) * (rng.uniform(size=(n, m)) > 0.1)
    gain = rng.uniform(0.05, 12, (n, m)).astype(dtype) if adaptive else None
    ming, maxg = bounds
    arrays = [w, g, deltaw, gain]
    want = [None if a is None else a.copy() for a in arrays]
    got = [None if a is None else a.copy() for a in arrays]
    R.sgd_update(*want, lr, 1.0 / batch, alpha, has_prev, has_gain, ming, maxg, nesterov)
    with threads(nthreads):
        native.sgd_update(*got, lr, 1.0 / batch, alpha, has_prev, has_gain, ming, maxg, nesterov)
    for name, a, b in zip(("w", "g", "deltaw", "gain"), got, want):
        if b is not None:
            np.testing.assert_allclose(a, b, err_msg=name, equal_nan=False, **ULP[dtype])
    np.testing.assert_array_equal(got[1], g)   # g is read only


# ---------------------------------------------------------------------------------------
# zero-size dimensions: no BLAS call with a zero leading dimension, outputs still written

@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,o", [(0, 3, 2), (3, 0, 2), (3, 2, 0), (0, 0, 0), (1, 0, 1),
                                   (0, 1, 1)])
def test_zero_sizes_match_twin(dtype, n, d, o):
    rng = np.random.default_rng(0)
    x = normal(rng, (n, d), dtype)
    w = normal(rng, (o, 1 + d), dtype)
    dz = normal(rng, (n, o), dtype)
    y = rng.uniform(0, 1, (n, d)).astype(dtype)
    for act in (R.ACT_SIGMOID, R.ACT_SOFTMAX):
        a, b = nans((n, o), dtype), nans((n, o), dtype)
        if act == R.ACT_SOFTMAX and o == 0:   # no column to normalise: both refuse
            for backend, out in ((R, a), (native, b)):
                with pytest.raises(ValueError):
                    backend.dense_forward(x, w, act, out)
                with pytest.raises(ValueError):
                    backend.activate(out.copy(), act, out)
            continue
        R.dense_forward(x, w, act, a)
        native.dense_forward(x, w, act, b)
        close(b, a, TOL[dtype])
    a, b = nans((n, d), dtype), nans((n, d), dtype)
    R.hidden_delta(dz, w, y, R.ACT_SIGMOID, a)
    native.hidden_delta(dz, w, y, R.ACT_SIGMOID, b)
    close(b, a, TOL[dtype])
    a, b = nans((o, 1 + d), dtype), nans((o, 1 + d), dtype)
    R.weight_grad(dz, x, a)
    native.weight_grad(dz, x, b)
    close(b, a, TOL[dtype])
    assert native.error_sum(x, x, R.ERR_SUM_OF_SQUARES) == R.error_sum(x, x, R.ERR_SUM_OF_SQUARES)
    if n == 0:
        idx = np.empty(0, np.int64)
        native.argmax_rows(dz, idx)
        assert native.error_sum(dz, dz, R.ERR_MISCLASSIFICATION) == 0.0


# ---------------------------------------------------------------------------------------
# determinism and the default (size-based) parallel thresholds on large arrays

BIG = 10007


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", list(range(R.N_ERR)))
def test_error_sum_same_bits_for_1_and_2_threads(dtype, kind):
    y, t = _error_data(np.random.default_rng(kind), kind, BIG, 13, dtype)
    results = []
    for n in (1, 2, 1, 2):
        with threads(n):
            results.append(native.error_sum(y, t, kind))
    assert len({r.hex() for r in results}) == 1, results
    assert results[0] == pytest.approx(R.error_sum(y, t, kind), rel=1e-11)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, o, d", [(4096, 1024, 5), (8191, 100, 20), (20000, 257, 1),
                                     (6000, 800, 63), (50000, 90, 3)])
def test_weight_grad_row_parts_match_twin_with_the_same_bits(dtype, n, o, d):
    """A narrow x with many rows: weight_grad sums row parts (_grad_row_parts, chosen by the
    shape alone) -- the twin's sums to rounding, the same bits for 1 and 2 threads."""
    assert n * o * d >= 4194304 and d < 64 and n >= 4096  # the shapes that take the row split
    rng = np.random.default_rng(n + d)
    dz = normal(rng, (n, o), dtype)
    x = normal(rng, (n, d), dtype)
    want = nans((o, 1 + d), dtype)
    R.weight_grad(dz, x, want)
    outs = []
    for nthreads in (1, 2, 1):
        got = nans((o, 1 + d), dtype)
        with threads(nthreads):
            native.weight_grad(dz, x, got)
        outs.append(got)
    close(outs[0], want, {np.float32: dict(rtol=1e-3, atol=1e-3),
                          np.float64: dict(rtol=1e-10, atol=1e-10)}[dtype])
    assert outs[0].tobytes() == outs[1].tobytes() == outs[2].tobytes()


@contextlib.contextmanager
def small_rows(rows):
    """The small-batch loops (c/small.h) up to ``rows`` rows (0: never, the GEMM path)."""
    old = native.dense._set_small_rows(rows)
    try:
        yield
    finally:
        native.dense._set_small_rows(old)


# widths around the vector lengths (4/8/16 lanes, blocks of 2-3 vectors) and beyond
wide = st.one_of(st.sampled_from([1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 97]),
                 st.integers(1, 160))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("path", ["small", "gemm"])
@SETTINGS
@given(n=st.one_of(st.just(1), st.integers(1, 40)), d=wide, o=st.one_of(outs, wide),
       act=st.sampled_from(DERIV_ACTS), seed=seeds)
def test_small_batch_loops_and_gemm_path_match_twin(dtype, nthreads, path, n, d, o, act, seed):
    """dense_forward, hidden_delta and weight_grad with the small-batch loops forced on
    (any row count) or off: the twin's values, on shapes across the blocks' edges."""
    skip_without_native()
    rng = np.random.default_rng(seed)
    x = normal(rng, (n, d), dtype)
    y = rng.uniform(-1, 1, (n, d)).astype(dtype)
    w = normal(rng, (o, 1 + d), dtype, 2.0 / math.sqrt(d))
    dz = normal(rng, (n, o), dtype)
    want = [nans((n, o), dtype), nans((n, d), dtype), nans((o, 1 + d), dtype)]
    R.dense_forward(x, w, act, want[0])
    R.hidden_delta(dz, w, y, act, want[1])
    R.weight_grad(dz, x, want[2])
    got = [nans(a.shape, dtype) for a in want]
    with small_rows(10 ** 6 if path == "small" else 0), threads(nthreads):
        native.dense_forward(x, w, act, got[0])
        native.hidden_delta(dz, w, y, act, got[1])
        native.weight_grad(dz, x, got[2])
    for g, e in zip(got, want):
        close(g, e, TOL[dtype])


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, d, o", [(32, 784, 100), (10, 3072, 512), (2, 300, 77),
                                     (17, 61, 129)])
def test_small_batch_loops_same_bits_for_1_and_2_threads(dtype, n, d, o):
    """The small-batch loops split units / columns between the threads, every element one
    sum in a fixed order: 1 thread, 2 threads at the default thresholds and 2 threads split
    at every size give the same bits (and the twin's values)."""
    assert n <= native.dense._set_small_rows(32) == 32    # the default takes these rows
    rng = np.random.default_rng(n * d)
    x = normal(rng, (n, d), dtype)
    w = normal(rng, (o, 1 + d), dtype, 2.0 / math.sqrt(d))
    dz = normal(rng, (n, o), dtype)
    runs = []
    for nthreads, forced in ((1, False), (2, False), (2, True), (1, False)):
        out = [nans((n, o), dtype), nans((n, d), dtype), nans((o, 1 + d), dtype)]
        with (threads(nthreads) if forced else synaptic.num_threads(nthreads)):
            native.dense_forward(x, w, R.ACT_TANH, out[0])
            native.hidden_delta(dz, w, x, R.ACT_LINEAR, out[1])
            native.weight_grad(dz, x, out[2])
        runs.append(out)
    for run in runs[1:]:
        for a, b in zip(run, runs[0]):
            assert a.tobytes() == b.tobytes()
    want = [nans(a.shape, dtype) for a in runs[0]]
    R.dense_forward(x, w, R.ACT_TANH, want[0])
    R.hidden_delta(dz, w, x, R.ACT_LINEAR, want[1])
    R.weight_grad(dz, x, want[2])
    tol = {np.float32: dict(rtol=1e-3, atol=1e-4), np.float64: dict(rtol=1e-10, atol=1e-11)}
    for a, b in zip(runs[0], want):
        close(a, b, tol[dtype])


def test_small_rows_hook_returns_the_previous_value():
    skip_without_native()
    old = native.dense._set_small_rows(7)
    try:
        assert native.dense._set_small_rows(0) == 7
        assert native.dense._set_small_rows(old) == 0
    finally:
        native.dense._set_small_rows(old)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("o", [1, 10, 100])
def test_weight_grad_bias_same_bits_for_1_and_2_threads(dtype, o):
    rng = np.random.default_rng(o)
    dz = normal(rng, (BIG, o), dtype)
    x = normal(rng, (BIG, 7), dtype)
    bias = []
    for n in (1, 2, 1, 2):
        out = nans((o, 8), dtype)
        with threads(n):
            native.weight_grad(dz, x, out)
        bias.append(out[:, 0].copy())
    for b in bias[1:]:
        assert b.tobytes() == bias[0].tobytes()
    exact = np.array([math.fsum(col) for col in dz.astype(np.float64).T]).astype(dtype)
    close(bias[0], exact, TOL[dtype])


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_large_arrays_match_twin_with_2_threads(dtype):
    """Large arrays with 2 threads and the default thresholds (several blocks per pass)."""
    rng = np.random.default_rng(5)
    n, d, o = BIG, 31, 13
    x = normal(rng, (n, d), dtype)
    w = normal(rng, (o, 1 + d), dtype, 0.3)
    t = np.eye(o, dtype=dtype)[rng.integers(0, o, n)]
    with synaptic.num_threads(2):
        for act in (R.ACT_SIGMOID, R.ACT_SOFTMAX, R.ACT_TANH, R.ACT_RELU, R.ACT_LEAKY_RELU,
                    R.ACT_ELU, R.ACT_SOFTPLUS):
            a, b = nans((n, o), dtype), nans((n, o), dtype)
            R.dense_forward(x, w, act, a, 0.3)
            native.dense_forward(x, w, act, b, 0.3)
            close(b, a, TOL[dtype])
        y = b
        a, b = nans((n, o), dtype), nans((n, o), dtype)
        R.output_delta(y, t, R.ACT_RELU, R.DELTA_SSE, a)
        native.output_delta(y, t, R.ACT_RELU, R.DELTA_SSE, b)
        close(b, a, TOL[dtype])
        dz = b
        xs = rng.uniform(0, 1, (n, d)).astype(dtype)
        a, b = nans((n, d), dtype), nans((n, d), dtype)
        R.hidden_delta(dz, w, xs, R.ACT_SIGMOID, a)
        native.hidden_delta(dz, w, xs, R.ACT_SIGMOID, b)
        close(b, a, TOL[dtype])
        a, b = nans((n, d), dtype), nans((n, d), dtype)
        R.derivative(xs, R.ACT_TANH, a)
        native.derivative(xs, R.ACT_TANH, b)
        close(b, a, TOL[dtype])
        a, b = np.zeros(n, np.int64), np.zeros(n, np.int64)
        R.argmax_rows(y, a)
        native.argmax_rows(y, b)
        np.testing.assert_array_equal(b, a)
        big_w = normal(rng, (300, 301), dtype)
        g = normal(rng, (300, 301), dtype)
        dw = normal(rng, (300, 301), dtype, 0.1)
        gain = rng.uniform(0.05, 12, (300, 301)).astype(dtype)
        want = [big_w.copy(), g, dw.copy(), gain.copy()]
        got = [big_w.copy(), g, dw.copy(), gain.copy()]
        R.sgd_update(*want, 0.1, 1e-3, 0.9, True, True, 0.1, 10.0, False)
        native.sgd_update(*got, 0.1, 1e-3, 0.9, True, True, 0.1, 10.0, False)
        for a, b in zip(got, want):
            close(a, b, ULP[dtype])
        a, b = g.copy(), g.copy()
        R.regularize(a, big_w, R.REG_L1, 0.01)
        native.regularize(b, big_w, R.REG_L1, 0.01)
        close(b, a, ULP[dtype])
        a, b = big_w.copy(), big_w.copy()
        R.add_scaled(a, dw, 0.9)
        native.add_scaled(b, dw, 0.9)
        close(b, a, ULP[dtype])


@needs_native
def test_elementwise_passes_same_bits_for_1_and_2_threads():
    rng = np.random.default_rng(9)
    z = normal(rng, (BIG, 13), np.float64, 4.0)
    outs = []
    for n in (1, 2):
        with threads(n):
            a = nans(z.shape, np.float64)
            native.activate(z, R.ACT_SOFTMAX, a)
            b = nans(z.shape, np.float64)
            native.derivative(a, R.ACT_SIGMOID, b)
            outs.append(np.concatenate([a, b]))
    assert outs[0].tobytes() == outs[1].tobytes()


_POLICY_PROBE = ("import json; from synaptic._kernels import native; "
                 "print(json.dumps([m._parallel_config()[:3] for m in native._MODULES]))")


@needs_native
@pytest.mark.parametrize("env,sleeps", [({}, False), ({"OMP_WAIT_POLICY": "passive"}, True),
                                        ({"OMP_WAIT_POLICY": "ACTIVE"}, False),
                                        ({"GOMP_SPINCOUNT": "0"}, True),
                                        ({"GOMP_SPINCOUNT": "300000"}, False)])
def test_openmp_loops_only_when_idle_threads_sleep(env, sleeps):
    """With libgomp's default spinning idle threads the OpenMP loops stay off (they would
    keep the cores from the BLAS threads of the next GEMM); they turn on with a passive
    wait policy, above size thresholds."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", _POLICY_PROBE], env={**clean, **env},
                            capture_output=True, text=True, check=True)
    configs = json.loads(result.stdout)
    assert len(configs) == len(native._MODULES) >= 3
    for module, (omp_sleeps, light, heavy) in zip(native._MODULES, configs):
        assert omp_sleeps is sleeps
        if module is native.conv:  # compute loops over samples: on whatever the policy
            assert 0 < light == heavy < 2**40
        elif sleeps:
            assert 0 < heavy <= light < 2**40
        else:
            assert light == heavy == sys.maxsize


# ---------------------------------------------------------------------------------------
# bad input: checked before any work, never a crash

N, D, O = 5, 4, 3


def _valid_args(name, dt):
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.uniform(0.1, 0.9, shape).astype(dt)

    return {
        "activate": [a(N, O), R.ACT_SIGMOID, a(N, O)],
        "dense_forward": [a(N, D), a(O, D + 1), R.ACT_SIGMOID, a(N, O)],
        "derivative": [a(N, O), R.ACT_SIGMOID, a(N, O)],
        "hidden_delta": [a(N, O), a(O, D + 1), a(N, D), R.ACT_SIGMOID, a(N, D)],
        "weight_grad": [a(N, O), a(N, D), a(O, D + 1)],
        "output_delta": [a(N, O), a(N, O), R.ACT_SIGMOID, R.DELTA_SSE, a(N, O)],
        "error_sum": [a(N, O), a(N, O), R.ERR_SUM_OF_SQUARES],
        "argmax_rows": [a(N, O), np.zeros(N, np.int64)],
        "regularize": [a(O, D + 1), a(O, D + 1), R.REG_L2, 0.1],
        "add_scaled": [a(O, D + 1), a(O, D + 1), 0.5],
        "sgd_update": [a(O, D + 1), a(O, D + 1), a(O, D + 1), a(O, D + 1), 0.1, 0.2, 0.9,
                       True, True, 0.1, 10.0, False],
    }[name]


KERNELS = ["activate", "dense_forward", "derivative", "hidden_delta", "weight_grad",
           "output_delta", "error_sum", "argmax_rows", "regularize", "add_scaled", "sgd_update"]
ARRAY_ARGS = [(name, i) for name in KERNELS
              for i, arg in enumerate(_valid_args(name, np.float64)) if isinstance(arg, np.ndarray)]
FLOAT_ARGS = [(name, i) for name, i in ARRAY_ARGS
              if _valid_args(name, np.float64)[i].dtype.kind == "f"]


def _call(backend, name, args):
    return getattr(backend, name)(*args)


def _replaced(name, dt, pos, make):
    args = _valid_args(name, dt)
    args[pos] = make(args[pos])
    return args


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", KERNELS)
def test_valid_arguments_are_accepted(backend, dtype, name):
    _call(backend, name, _valid_args(name, dtype))


def _one_more_row(a):
    return np.zeros((a.shape[0] + 1,) + a.shape[1:], a.dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,pos", ARRAY_ARGS)
def test_wrong_shape_raises(backend, name, pos):
    args = _replaced(name, np.float64, pos, _one_more_row)
    with pytest.raises(ValueError, match="shape|rows|columns"):
        _call(backend, name, args)


@needs_native
@pytest.mark.parametrize("name,pos", ARRAY_ARGS)
def test_wrong_ndim_raises(name, pos):
    for make in (lambda a: a.reshape(a.shape + (1,)), lambda a: a.reshape(-1)):
        args = _replaced(name, np.float64, pos, make)
        if args[pos].ndim == _valid_args(name, np.float64)[pos].ndim:
            continue
        with pytest.raises(ValueError, match="-D|shape"):
            _call(native, name, args)


@needs_native
@pytest.mark.parametrize("name,pos", FLOAT_ARGS)
@pytest.mark.parametrize("bad", [np.int64, np.int32, np.float16, np.complex128])
def test_wrong_dtype_raises(name, pos, bad):
    args = _replaced(name, np.float64, pos, lambda a: (a * 10).astype(bad))
    with pytest.raises((TypeError, ValueError), match="dtype"):
        _call(native, name, args)


@needs_native
def test_argmax_rows_needs_int64_out():
    y = np.zeros((3, 2))
    for bad in (np.int32, np.float64, np.uint64):
        with pytest.raises(TypeError, match="int64"):
            native.argmax_rows(y, np.zeros(3, bad))


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_output_of_a_float_kernel_raises(backend):
    """The twin too refuses to write floats into an integer output."""
    z = np.full((2, 3), 0.5)
    for call in (lambda out: backend.activate(z, R.ACT_SIGMOID, out),
                 lambda out: backend.derivative(z, R.ACT_SIGMOID, out)):
        with pytest.raises(TypeError):
            call(np.zeros((2, 3), np.int64))


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,pos", [(name, pos) for name, pos in FLOAT_ARGS
                                      if sum(n == name for n, _ in FLOAT_ARGS) > 1])
def test_mixed_float_dtypes_raise(dtype, name, pos):
    other = np.float64 if dtype is np.float32 else np.float32
    args = _replaced(name, dtype, pos, lambda a: a.astype(other))
    with pytest.raises(TypeError, match="dtype"):
        _call(native, name, args)


def _strided(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    view = big[..., ::2]
    view[...] = a
    assert not view.flags.c_contiguous
    return view


NON_CONTIGUOUS = [pytest.param(name, pos, make, id=f"{name}-{pos}-{make.__name__}")
                  for name, pos in ARRAY_ARGS for make in (_strided, np.asfortranarray)
                  if make is _strided or _valid_args(name, np.float64)[pos].ndim == 2]


@needs_native
@pytest.mark.parametrize("name,pos,make", NON_CONTIGUOUS)
def test_non_contiguous_raises(name, pos, make):
    args = _replaced(name, np.float64, pos, make)
    assert not args[pos].flags.c_contiguous
    with pytest.raises(ValueError, match="contiguous"):
        _call(native, name, args)


@needs_native
@pytest.mark.parametrize("name,pos", ARRAY_ARGS)
def test_non_array_raises(name, pos):
    args = _replaced(name, np.float64, pos, lambda a: a.tolist())
    with pytest.raises(TypeError, match="numpy array"):
        _call(native, name, args)


@needs_native
@pytest.mark.parametrize("name,pos", [("activate", 2), ("dense_forward", 3), ("weight_grad", 2),
                                      ("sgd_update", 0), ("sgd_update", 2), ("regularize", 0),
                                      ("add_scaled", 0), ("argmax_rows", 1)])
def test_read_only_output_raises(name, pos):
    def freeze(a):
        a.flags.writeable = False
        return a
    with pytest.raises(ValueError, match="read-only"):
        _call(native, name, _replaced(name, np.float64, pos, freeze))


@needs_native
def test_overlapping_output_raises():
    """GEMM kernels and sgd_update refuse an output that shares memory with an input (the
    twin would copy); the elementwise kernels accept the very same array (in place) only."""
    x = np.ones((4, 3))
    w = np.ones((3, 4))
    with pytest.raises(ValueError, match="share memory"):
        native.dense_forward(x, w, R.ACT_LINEAR, x)
    y = np.full((4, 3), 0.5)
    with pytest.raises(ValueError, match="share memory"):
        native.hidden_delta(np.ones((4, 3)), w, y, R.ACT_SIGMOID, y)
    g = np.zeros((3, 4))
    with pytest.raises(ValueError, match="share memory"):
        native.weight_grad(g.reshape(4, 3), np.ones((4, 3)), g)
    with pytest.raises(ValueError, match="share memory"):
        native.sgd_update(g, g, np.zeros_like(g), None, 0.1, 1.0, 0.0, False, False,
                          None, None, False)
    with pytest.raises(ValueError, match="share memory"):
        native.sgd_update(g, np.ones_like(g), np.zeros_like(g), g, 0.1, 1.0, 0.0, False, True,
                          None, None, False)
    buf = np.zeros(15)
    with pytest.raises(ValueError, match="overlap"):
        native.activate(buf[:12].reshape(4, 3), R.ACT_SIGMOID, buf[3:].reshape(4, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unknown_codes_raise(backend):
    z = np.full((2, 3), 0.5)
    out = np.zeros((2, 3))
    w = np.ones((3, 4))
    for act in (-1, R.N_ACT):
        with pytest.raises(ValueError, match="activation code"):
            backend.activate(z, act, out)
        with pytest.raises(ValueError, match="activation code"):
            backend.dense_forward(z, w, act, out)
        with pytest.raises(ValueError, match="activation code"):
            backend.derivative(z, act, out)
        with pytest.raises(ValueError, match="activation code"):
            backend.output_delta(z, z, act, R.DELTA_SSE, out)
    with pytest.raises(ValueError, match="output-delta kind"):
        backend.output_delta(z, z, R.ACT_SIGMOID, 2, out)
    with pytest.raises(ValueError, match="error kind"):
        backend.error_sum(z, z, R.N_ERR)
    with pytest.raises(ValueError, match="regularization kind"):
        backend.regularize(out, z, 3, 0.1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", NO_DERIV_ACTS)
def test_no_derivative_raises(backend, act):
    z = np.full((2, 3), 0.5)
    out = np.zeros((2, 3))
    with pytest.raises(ValueError, match="no derivative"):
        backend.derivative(z, act, out)
    with pytest.raises(ValueError, match="no derivative"):
        backend.hidden_delta(np.ones((2, 2)), np.ones((2, 4)), z, act, out)
    with pytest.raises(ValueError, match="no derivative"):
        backend.output_delta(z, z, act, R.DELTA_SSE, out)
    backend.output_delta(z, z, act, R.DELTA_DIFF, out)   # y - t needs no derivative
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_argmax_of_no_columns_raises(backend):
    with pytest.raises(ValueError, match="empty"):
        backend.argmax_rows(np.zeros((2, 0)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="empty"):
        backend.error_sum(np.zeros((2, 0)), np.zeros((2, 0)), R.ERR_ARGMAX_MISCLASSIFICATION)


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_knob_rejects_zero(backend):
    with pytest.raises(ValueError):
        backend.set_threads(0)


# ---------------------------------------------------------------------------------------
# softmax and sigmoid edge cases, both backends

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (1, 2), (2, 1)])
def test_softmax_single_row_and_column(backend, dtype, shape):
    z = normal(np.random.default_rng(1), shape, dtype, 5.0)
    z64 = z.astype(np.float64)
    e = np.exp(z64 - z64.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True)
    out = nans(shape, dtype)
    backend.activate(z, R.ACT_SOFTMAX, out)
    close(out, expected, TOL[dtype])
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    if shape[1] == 1:
        np.testing.assert_array_equal(out, 1)
    # through a layer: n x d input, `shape[1]` softmax outputs
    x = normal(np.random.default_rng(2), (shape[0], 3), dtype)
    w = normal(np.random.default_rng(3), (shape[1], 4), dtype)
    out = nans(shape, dtype)
    backend.dense_forward(x, w, R.ACT_SOFTMAX, out)
    zz = x.astype(np.float64) @ w[:, 1:].T.astype(np.float64) + w[:, 0].astype(np.float64)
    e = np.exp(zz - zz.max(axis=1, keepdims=True))
    close(out, e / e.sum(axis=1, keepdims=True), TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_of_huge_logits_is_finite(backend):
    z = np.array([[1e4, -1e4, 1e4 - 1.0], [-1e30, -1e30, -1e30]])
    out = nans(z.shape, np.float64)
    backend.activate(z, R.ACT_SOFTMAX, out)
    e = 1 / (1 + math.exp(-1.0))
    np.testing.assert_allclose(out, [[e, 0, 1 - e], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_large_logits_without_warnings(backend, dtype):
    z = np.array([[-1e4, -1000, -800, -100, -40, 0, 40, 100, 800, 1000, 1e4]], dtype)
    expected = np.array([1 / (1 + math.exp(-v)) if v > -700 else 0.0 for v in z[0].astype(float)])
    out = nans(z.shape, dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        backend.activate(z, R.ACT_SIGMOID, out)
        y = nans((3, 1), dtype)
        backend.dense_forward(np.array([[-1e4], [0], [1e4]], dtype), np.array([[0, 1]], dtype),
                              R.ACT_SIGMOID, y)
    assert np.isfinite(out).all() and (out >= 0).all() and (out <= 1).all()
    assert out[0, 0] == 0 and out[0, -1] == 1 and out[0, 5] == 0.5
    assert (np.diff(out[0]) >= 0).all()
    np.testing.assert_allclose(out[0], expected, rtol=1e-12 if dtype is np.float64 else 1e-6,
                               atol=1e-30 if dtype is np.float64 else 1e-30)
    np.testing.assert_array_equal(y[:, 0], [0, 0.5, 1])


# ---------------------------------------------------------------------------------------
# the spec's hand values (SYNAPTIC.md §9), on both backends

QUASI = 1e-6   # the spec's quasi-equal tolerance


def _act(backend, act, z, dtype):
    z = np.asarray(z, dtype=dtype)
    z = z.reshape(1, -1) if z.ndim == 1 else z
    out = nans(z.shape, dtype)
    backend.activate(np.ascontiguousarray(z), act, out)
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_1_activations(backend, dtype):
    step_in = [0, -0.001, 0.001, -1000]
    np.testing.assert_array_equal(_act(backend, R.ACT_BINARY_THRESHOLD, step_in, dtype),
                                  [[1, 0, 1, 0]])
    np.testing.assert_array_equal(_act(backend, R.ACT_BIPOLAR_THRESHOLD, step_in, dtype),
                                  [[1, -1, 1, -1]])
    np.testing.assert_allclose(
        _act(backend, R.ACT_SIGMOID, [math.log(1 / 3), math.log(1 / 4)], dtype),
        [[0.25, 0.2]], atol=QUASI)
    np.testing.assert_allclose(_act(backend, R.ACT_TANH, [1, 2, 3], dtype),
                               [[0.7615942, 0.9640276, 0.9950548]], atol=QUASI)
    np.testing.assert_array_equal(_act(backend, R.ACT_BINARY_PROB, [0.5, -2.0, -0.5], dtype),
                                  [[1, 0, 0]])
    np.testing.assert_allclose(_act(backend, R.ACT_SOFTMAX, [[1, 2, 3], [2, 1, 0]], dtype),
                               [[0.0900306, 0.2447285, 0.6652410],
                                [0.6652410, 0.2447285, 0.0900306]], atol=QUASI)


SPEC_W = [[1, 2, 3], [4, 5, 6]]
SPEC_X = [[0, 1], [1, 1], [1, 0], [0, 0]]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_2_forward(backend, dtype):
    w = np.array(SPEC_W, dtype)
    x = np.array(SPEC_X, dtype)
    out = nans((4, 2), dtype)
    backend.dense_forward(x, w, R.ACT_LINEAR, out)
    np.testing.assert_array_equal(out, [[4, 10], [6, 15], [3, 9], [1, 4]])
    backend.dense_forward(x, w, R.ACT_SIGMOID, out)
    np.testing.assert_allclose(
        out, [[0.9820137900379085, 0.9999546021312976], [0.9975273768433653, 0.999999694097773],
              [0.9525741268224334, 0.9998766054240137], [0.7310585786300049, 0.9820137900379085]],
        rtol=0, atol=1e-12 if dtype is np.float64 else QUASI)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,y,t,expected", [
    (R.ERR_MISCLASSIFICATION, [1, 0, 1, 0, 1], [1, 0, 0, 0, 1], 1.0),
    (R.ERR_MISCLASSIFICATION, [0, 1, 0, 1, 0], [0, 1, 0, 1, 0], 0.0),
    (R.ERR_SUM_OF_SQUARES, [.5, .5, .5, .5], [1, 0, 1, 0], 1.0),
    (R.ERR_SUM_OF_SQUARES, [.9, .1, .9, .1], [1, 0, 1, 0], 0.04),
    (R.ERR_CROSS_ENTROPY_MULTIVARIATE, [.5, .5, .5, .5], [1, 0, 1, 0], 1.38629436),
    (R.ERR_CROSS_ENTROPY_MULTIVARIATE, [.9, .1, .9, .1], [1, 0, 1, 0], 0.21072103),
    (R.ERR_CROSS_ENTROPY_BINARY, [.9], [1], 0.10536052),
    (R.ERR_CROSS_ENTROPY_BINARY, [.9], [0], 2.30258509),
])
def test_spec_9_8_error_functions(backend, dtype, kind, y, t, expected):
    got = backend.error_sum(np.array([y], dtype), np.array([t], dtype), kind)
    assert type(got) is float
    assert got == pytest.approx(expected, abs=1e-8 if dtype is np.float64 else QUASI)
    # summed over rows: the same sample twice counts twice
    got2 = backend.error_sum(np.array([y, y], dtype), np.array([t, t], dtype), kind)
    assert got2 == pytest.approx(2 * expected, abs=2e-8 if dtype is np.float64 else 2 * QUASI)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_8_regularization_derivatives(backend, dtype):
    w1 = np.array([[1, -2, 3], [-4, 5, -6]], dtype)
    w2 = np.array([[7, 8, -9]], dtype)
    for kind, lam, e1, e2 in [(R.REG_L1, 0.05, [[0, -.05, .05], [0, .05, -.05]], [[0, .05, -.05]]),
                              (R.REG_L2, 0.01, [[0, -.02, .03], [0, .05, -.06]], [[0, .08, -.09]]),
                              (R.REG_NONE, 0.3, np.zeros((2, 3)), np.zeros((1, 3)))]:
        for w, expected in ((w1, e1), (w2, e2)):
            g = np.zeros_like(w)
            backend.regularize(g, w, kind, lam)
            np.testing.assert_allclose(g, expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_7_adaptive_gain(backend, dtype):
    """d = -g * inv_m = dw of the spec, previous deltaw = pdw; ming 0.1, maxg 10, eps 0.01."""
    dw = np.array([[1, -1, 1], [-1, -1, 1]], dtype)
    w = np.zeros((2, 3), dtype)
    deltaw = np.array([[1, 1, -1], [-1, -1, 1]], dtype)
    gain = np.array([[1, 0.5, 0.1], [9.99, 0.95, 0.5]], dtype)
    backend.sgd_update(w, -dw, deltaw, gain, 0.01, 1.0, 0.0, True, True, 0.1, 10.0, False)
    np.testing.assert_allclose(gain, [[1.05, 0.475, 0.1], [10.0, 1.0, 0.55]], rtol=1e-6)
    expected = [[0.0105, -0.00475, 0.001], [-0.1, -0.01, 0.0055]]
    np.testing.assert_allclose(deltaw, expected, rtol=1e-6)
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    fresh = np.full((2, 3), 7.0, dtype)   # no previous gain: all 1.0
    backend.sgd_update(w, -dw, deltaw, fresh, 0.01, 1.0, 0.0, False, False, 0.1, 10.0, False)
    np.testing.assert_array_equal(fresh, 1.0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_spec_9_7_backprop_step(backend, dtype):
    """mlp [3 2 2] sigmoid, eps 1, cross-entropy: the whole chain of kernels."""
    w1 = np.array([[0.1, 0.11, 0.09, 0.095], [-0.1, -0.11, -0.09, -0.095]], dtype)
    w2 = np.array([[1.05, 0.098, 1.03], [-1.05, -0.098, -1.03]], dtype)
    x = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0], [1, 0, 1], [0, 1, 0]], dtype)
    t = np.array([[1, 0], [0, 1], [0, 1], [1, 0], [0, 1]], dtype)
    a1, a2, d2, d1 = (nans((5, 2), dtype) for _ in range(4))
    backend.dense_forward(x, w1, R.ACT_SIGMOID, a1)
    backend.dense_forward(a1, w2, R.ACT_SIGMOID, a2)
    backend.output_delta(a2, t, R.ACT_SIGMOID, R.DELTA_DIFF, d2)
    g2, g1 = nans((2, 3), dtype), nans((2, 4), dtype)
    backend.weight_grad(d2, a1, g2)
    backend.hidden_delta(d2, w2, a1, R.ACT_SIGMOID, d1)
    backend.weight_grad(d1, x, g1)
    tol = dict(rtol=0, atol=1e-8 if dtype is np.float64 else QUASI)
    for w, g, expected in (
            (w1, g1, [[-0.02070832, 0.00337117, -0.01595879, -0.00454830],
                      [-0.21764871, 0.03543173, -0.16773012, -0.04780355]]),
            (w2, g2, [[-0.42621045, -0.231439954, -0.19477050],
                      [0.42621045, 0.231439954, 0.19477050]])):
        w0 = w.copy()
        deltaw = nans(w.shape, dtype)
        backend.sgd_update(w, g, deltaw, None, 1.0, 1 / 5, 0.0, False, False, None, None, False)
        np.testing.assert_allclose(deltaw, expected, **tol)
        np.testing.assert_allclose(w - w0, expected, **tol)


# ---------------------------------------------------------------------------------------
# the sparse-input path of dense_forward and weight_grad (inputs with many exact zeros)

SPARSE_ON = (1, 0.0, 1, 0.0)                 # forced whenever it applies, whatever the zeros
SPARSE_OFF = (2**62, 2.0, 2**62, 2.0)


@contextlib.contextmanager
def sparse_path(on=True):
    """Force (or forbid) the sparse-input path of dense_forward / weight_grad."""
    old = native.dense._set_sparse_threshold(*(SPARSE_ON if on else SPARSE_OFF))
    try:
        yield
    finally:
        native.dense._set_sparse_threshold(*old)


def sparse_input(rng, shape, dtype, zeros):
    """Positive values (pixel-like) with a fraction ``zeros`` of exact zeros, some of them
    in whole zero columns (the border of an image)."""
    x = rng.uniform(0.05, 1.0, shape) * (rng.uniform(size=shape) >= zeros)
    if shape[1] > 4 and zeros > 0:
        x[:, :shape[1] // 5] = 0
    return x.astype(dtype)


ZERO_FRACTIONS = st.sampled_from([0.0, 0.5, 0.81, 0.95, 1.0])
sp_rows = st.one_of(st.just(1), st.integers(1, 150))
sp_cols = st.one_of(st.just(1), st.integers(1, 100))
sp_outs = st.one_of(st.just(1), st.integers(1, 40), st.integers(120, 140))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=sp_rows, d=sp_cols, o=sp_outs, act=st.sampled_from(ALL_ACTS), seed=seeds,
       zeros=ZERO_FRACTIONS)
def test_dense_forward_sparse_path(dtype, nthreads, n, d, o, act, seed, zeros):
    skip_without_native()
    rng = np.random.default_rng(seed)
    x = sparse_input(rng, (n, d), dtype, zeros)
    w = normal(rng, (o, 1 + d), dtype, 2.0 / math.sqrt(d))
    want = nans((n, o), dtype)
    R.dense_forward(x, w, act, want)
    got = nans((n, o), dtype)
    xc = x.copy()
    with threads(nthreads), sparse_path():
        native.dense_forward(xc, w, act, got)
    np.testing.assert_array_equal(xc, x)
    if act in STEP_ACTS:
        z = x.astype(np.float64) @ w[:, 1:].T.astype(np.float64) + w[:, 0].astype(np.float64)
        clear = np.abs(z) > 1e-3
        np.testing.assert_array_equal(got[clear], want[clear])
        assert np.isin(got, [-1, 0, 1]).all()
    else:
        close(got, want, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=sp_rows, o=sp_outs, d=sp_cols, seed=seeds, zeros=ZERO_FRACTIONS)
def test_weight_grad_sparse_path(dtype, nthreads, n, o, d, seed, zeros):
    skip_without_native()
    rng = np.random.default_rng(seed)
    dz = normal(rng, (n, o), dtype)
    x = sparse_input(rng, (n, d), dtype, zeros)
    want = nans((o, 1 + d), dtype)
    R.weight_grad(dz, x, want)
    got = nans((o, 1 + d), dtype)
    with threads(nthreads), sparse_path():
        native.weight_grad(dz, x, got)
    close(got, want, TOL[dtype])


MNIST_LIKE = [(1, 784, 100), (7, 784, 100), (100, 784, 100), (257, 784, 100), (130, 33, 17),
              (65, 100, 130), (3, 47, 129), (70, 16, 16), (64, 32, 64), (129, 31, 9)]


def _mnist_like(rng, n, d, dtype):
    """Digit-like rows: a blob of nonzero pixels (0..1, some exactly 1) in a zero border."""
    x = np.zeros((n, d))
    side = max(1, int(math.sqrt(d)))
    for i in range(n):
        r0, c0 = rng.integers(0, max(1, side // 3), 2)
        img = np.zeros(d)
        for r in range(r0, min(side, r0 + side // 2 + 1)):
            a = c0 + rng.integers(0, max(1, side // 3))
            img[r * side + a: r * side + a + max(1, side // 4)] = rng.uniform(0, 1)
        x[i] = np.minimum(img * rng.uniform(0.5, 2.5, d), 1.0)
    return x.astype(dtype)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n,d,o", MNIST_LIKE)
def test_sparse_path_shapes_match_twin_and_threads(dtype, n, d, o):
    """Shapes around the vector widths (16 f32 / 8 f64 lanes, 16 x 16 transposition tiles,
    8-vector accumulator groups, 64-sample gradient blocks, 32-column masks): the sparse
    path against the twin, and the same bits for 1 and 2 threads (forward and gradient)."""
    rng = np.random.default_rng(n * 1000 + d + o)
    x = _mnist_like(rng, n, d, dtype)
    w = normal(rng, (o, 1 + d), dtype, 0.1)
    dz = normal(rng, (n, o), dtype)
    want_y, want_g = nans((n, o), dtype), nans((o, 1 + d), dtype)
    R.dense_forward(x, w, R.ACT_SIGMOID, want_y)
    R.weight_grad(dz, x, want_g)
    ys, gs = [], []
    for t in (1, 2, 1, 2):
        y, g = nans((n, o), dtype), nans((o, 1 + d), dtype)
        with threads(t), sparse_path():
            native.dense_forward(x, w, R.ACT_SIGMOID, y)
            native.weight_grad(dz, x, g)
        close(y, want_y, TOL[dtype])
        close(g, want_g, TOL[dtype])
        ys.append(y.tobytes())
        gs.append(g.tobytes())
    assert len(set(ys)) == 1
    assert len(set(gs)) == 1


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_grad_sparse_same_bits_for_1_and_2_threads_large(dtype):
    """A batch of 2000 digit-like rows (several 64-sample blocks, columns split unevenly by
    their nonzero counts): g identical for 1 and 2 threads, and at least as accurate as the
    twin's GEMM (sums of 2000 terms that cancel: in f32 both are off the exact value by more
    than the usual atol, so the yardstick is the twin's own error)."""
    rng = np.random.default_rng(11)
    n, d, o = 2000, 784, 100
    x = _mnist_like(rng, n, d, dtype)
    dz = normal(rng, (n, o), dtype)
    want = nans((o, 1 + d), dtype)
    R.weight_grad(dz, x, want)
    outs = []
    for t in (1, 2):
        g = nans((o, 1 + d), dtype)
        with threads(t), sparse_path():
            native.weight_grad(dz, x, g)
        outs.append(g)
    assert outs[0].tobytes() == outs[1].tobytes()
    if dtype is np.float64:
        close(outs[0], want, TOL[dtype])
        return
    exact = dz.astype(np.float64).T @ x.astype(np.float64)
    twin_err = np.abs(want[:, 1:] - exact).max()
    assert np.abs(outs[0][:, 1:] - exact).max() <= 1.5 * twin_err + 1e-300
    close(outs[0], want, dict(TOL[dtype], atol=max(TOL[dtype]["atol"], 2 * twin_err)))


def _close_sum(got, want, a, b, dtype):
    """got ~ want = a . b (the twin), a sum over many terms: in f32 the twin's own rounding
    error can exceed the usual atol where the terms cancel, so it widens atol (got must be
    within the tolerance of want, counting twice the twin's error from the exact product)."""
    tol = dict(TOL[dtype])
    if dtype is np.float32:
        exact = a.astype(np.float64) @ b.astype(np.float64)
        want_err = np.abs(want[..., -exact.shape[-1]:] - exact).max()
        tol["atol"] = max(tol["atol"], 2 * want_err)
    close(got, want, tol)


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
def test_sparse_default_thresholds_on_mnist_like_batches(dtype, nthreads):
    """The default thresholds (no forcing): batches of 10 to 1000 digit-like rows, and
    dense rows, all against the twin."""
    rng = np.random.default_rng(3)
    d, o = 784, 100
    w = normal(rng, (o, 1 + d), dtype, 0.05)
    with synaptic.num_threads(nthreads):
        for n in (10, 33, 100, 1000):
            for x in (_mnist_like(rng, n, d, dtype), rng.uniform(0, 1, (n, d)).astype(dtype)):
                dz = normal(rng, (n, o), dtype)
                a, b = nans((n, o), dtype), nans((n, o), dtype)
                R.dense_forward(x, w, R.ACT_SIGMOID, a)
                native.dense_forward(x, w, R.ACT_SIGMOID, b)
                close(b, a, TOL[dtype])
                a, b = nans((o, 1 + d), dtype), nans((o, 1 + d), dtype)
                R.weight_grad(dz, x, a)
                native.weight_grad(dz, x, b)
                _close_sum(b, a, dz.T, x, dtype)


def _nan_pattern_equal(got, want):
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))


@needs_native
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", [1, 2])
@pytest.mark.parametrize("case", ["x_nan", "x_inf", "w_inf", "w_nan", "dz_inf", "dz_nan",
                                  "w_inf_all_zero_x"])
def test_sparse_path_non_finite_like_the_dense_path(dtype, nthreads, case):
    """NaN / inf propagate as with the dense GEMM (the twin): NaN or inf in x is a nonzero and
    enters the sums; inf or NaN in W (forward) or dz (gradient) times a skipped zero would be
    NaN in the GEMM, so the sparse path declines and the dense path runs."""
    rng = np.random.default_rng(7)
    n, d, o = 90, 70, 37
    x = _mnist_like(rng, n, d, dtype)
    w = normal(rng, (o, 1 + d), dtype, 0.2)
    dz = normal(rng, (n, o), dtype)
    if case == "x_nan":
        x[3, 5] = np.nan                   # in the zero border: a NaN where x was 0
        x[40, d // 2] = np.nan
    elif case == "x_inf":
        x[3, 5] = np.inf
        x[41, d - 1] = -np.inf
        dz[41, 2] = 0.0                    # inf * 0 in the gradient: NaN
    elif case == "w_inf":
        w[4, 1 + 3] = np.inf               # column 3 is in the zero border of every row
        w[9, 1 + d // 2] = -np.inf
    elif case == "w_nan":
        w[2, 1 + 1] = np.nan
    elif case == "dz_inf":
        dz[5, 3] = np.inf
    elif case == "dz_nan":
        dz[60, 0] = np.nan
    elif case == "w_inf_all_zero_x":
        x[:] = 0
        w[1, 1 + d - 1] = np.inf
    want_y, want_g = nans((n, o), dtype), nans((o, 1 + d), dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        R.dense_forward(x, w, R.ACT_LINEAR, want_y)
        R.weight_grad(dz, x, want_g)
    assert not np.isfinite(want_y).all() or not np.isfinite(want_g).all()
    got_y, got_g = nans((n, o), dtype), nans((o, 1 + d), dtype)
    with threads(nthreads), sparse_path():
        native.dense_forward(x, w, R.ACT_LINEAR, got_y)
        native.weight_grad(dz, x, got_g)
    for got, want in ((got_y, want_y), (got_g, want_g)):
        _nan_pattern_equal(got, want)
        fin = np.isfinite(want)
        close(got[fin], want[fin], TOL[dtype])


@needs_native
def test_sparse_path_from_several_python_threads():
    """The kernels release the GIL and allocate their scratch per call: concurrent calls
    from Python threads, each with its own shapes, all match the twin."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(5)
    jobs = []
    for k in range(12):
        dtype = (np.float32, np.float64)[k % 2]
        n, d, o = 50 + 13 * k, 784 if k % 3 == 0 else 97 + k, 100 if k % 3 == 0 else 20 + k
        x = _mnist_like(rng, n, d, dtype)
        w = normal(rng, (o, 1 + d), dtype, 0.1)
        dz = normal(rng, (n, o), dtype)
        y, g = nans((n, o), dtype), nans((o, 1 + d), dtype)
        R.dense_forward(x, w, R.ACT_TANH, y)
        R.weight_grad(dz, x, g)
        jobs.append((x, w, dz, y, g))

    def run(job):
        x, w, dz, _, _ = job
        y, g = nans(job[3].shape, x.dtype), nans(job[4].shape, x.dtype)
        for _ in range(5):
            native.dense_forward(x, w, R.ACT_TANH, y)
            native.weight_grad(dz, x, g)
        return y, g

    with threads(2), sparse_path():
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(run, jobs))
    for (x, _, _, want_y, want_g), (y, g) in zip(jobs, results):
        close(y, want_y, TOL[x.dtype.type])
        close(g, want_g, TOL[x.dtype.type])


@needs_native
def test_sparse_threshold_hook_returns_the_previous_values():
    old = native.dense._set_sparse_threshold(*SPARSE_ON)
    try:
        assert native.dense._set_sparse_threshold(*SPARSE_OFF) == SPARSE_ON
        assert native.dense._set_sparse_threshold(*old) == SPARSE_OFF
        assert old[0] >= 1 and old[2] >= 1 and 0 < old[1] < 1 and 0 < old[3] < 1
    finally:
        native.dense._set_sparse_threshold(*old)
