"""The update kernels of the training algorithms -- perceptron_error, rprop_update (every
variant), rmsprop_update, decay_weights -- native against their NumPy twin (the contract).

Random shapes from hypothesis (1 row, 1 column, odd sizes), float32 and float64, 1 and 2
threads; with 2 threads every OpenMP loop is forced parallel whatever its size.  These kernels
do the twin's operations in its order (products, selects, one correctly rounded sqrt and
division), so the results must be identical, bit for bit.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic import _kernels
from synaptic._kernels import native, reference as R

DTYPES = [pytest.param(np.float32, id="f32"), pytest.param(np.float64, id="f64")]
THREADS = [pytest.param(1, id="t1"), pytest.param(2, id="t2")]
BACKENDS = [pytest.param(R, id="numpy"),
            pytest.param(native, id="native", marks=pytest.mark.skipif(
                native is None, reason=f"native backend not built: {_kernels.native_error()}"))]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
rows = st.one_of(st.just(1), st.integers(1, 29))
cols = st.one_of(st.just(1), st.integers(1, 23))
seeds = st.integers(0, 2**32 - 1)
MODES = [R.RPROP_ORIGINAL, R.RPROP_PLUS, R.IRPROP_MINUS, R.IRPROP_PLUS]


def skip_without_native():
    if native is None:
        pytest.skip(f"native backend not built: {_kernels.native_error()}")


@contextlib.contextmanager
def threads(n):
    """``n`` threads; with n > 1 the OpenMP loops of update.pyx run in parallel at every size."""
    with synaptic.num_threads(n):
        old = native.update._set_parallel_threshold(0, 0) if n > 1 else None
        try:
            yield
        finally:
            if old is not None:
                native.update._set_parallel_threshold(*old)


def signed(rng, shape, dtype, zeros=0.15):
    """Normal values with some exact zeros (the sign rules' third case)."""
    a = rng.standard_normal(shape) * (rng.uniform(size=shape) > zeros)
    return a.astype(dtype)


def same(got, want, name):
    np.testing.assert_array_equal(got, want, err_msg=name)
    assert got.dtype == want.dtype


# ---------------------------------------------------------------------------------------
# native == twin

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=cols, seed=seeds, inplace=st.sampled_from([None, "y", "t"]))
def test_perceptron_error(dtype, nthreads, n, m, seed, inplace):
    skip_without_native()
    rng = np.random.default_rng(seed)
    y = rng.choice([0.0, 1.0, 0.5, -1.0], size=(n, m)).astype(dtype)
    t = rng.choice([0.0, 1.0], size=(n, m)).astype(dtype)
    want = np.full((n, m), np.nan, dtype)
    R.perceptron_error(y, t, want)
    yc, tc = y.copy(), t.copy()
    out = {"y": yc, "t": tc}.get(inplace, np.full((n, m), np.nan, dtype))
    with threads(nthreads):
        native.perceptron_error(yc, tc, out)
    same(out, want, "out")
    assert set(np.unique(want)) <= {-1.0, 0.0, 1.0}


def _rprop_case(rng, n, m, dtype, mode):
    g = signed(rng, (n, m), dtype)
    deltaw = signed(rng, (n, m), dtype) * dtype(0.1)
    step = rng.uniform(1e-3, 2.0, (n, m)).astype(dtype)
    gprev = None
    if mode != R.RPROP_ORIGINAL:
        # the previous gradient: the same sign, the other sign, or zero, everywhere mixed
        gprev = (g * rng.choice([1.0, -1.0, 0.0, 0.5], size=(n, m))).astype(dtype)
    return [rng.standard_normal((n, m)).astype(dtype), g, deltaw, step, gprev]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@pytest.mark.parametrize("mode", MODES, ids=["rprop-", "rprop+", "irprop-", "irprop+"])
@SETTINGS
@given(n=rows, m=cols, seed=seeds, has_step=st.booleans(), has_prev=st.booleans(),
       alpha=st.sampled_from([None, 0.0, 0.5, 0.9]), worse=st.booleans(),
       bounds=st.sampled_from([(1e-6, 50.0), (0.1, 1.0), (0.5, 0.5)]),
       etas=st.sampled_from([(1.2, 0.5), (1.5, 0.3)]), step_init=st.sampled_from([0.01, 0.1, 1.0]))
def test_rprop_update(dtype, nthreads, mode, n, m, seed, has_step, has_prev, alpha, worse,
                      bounds, etas, step_init):
    skip_without_native()
    if mode in (R.RPROP_PLUS, R.IRPROP_PLUS) and has_prev and alpha:
        alpha = None   # refused (tested below)
    rng = np.random.default_rng(seed)
    arrays = _rprop_case(rng, n, m, dtype, mode)
    want = [None if a is None else a.copy() for a in arrays]
    got = [None if a is None else a.copy() for a in arrays]
    args = (mode, *etas, *bounds, step_init, has_step, alpha, has_prev, worse)
    R.rprop_update(*want, *args)
    with threads(nthreads):
        native.rprop_update(*got, *args)
    for name, a, b in zip(("w", "g", "deltaw", "step", "gprev"), got, want):
        if b is not None:
            same(a, b, name)
    same(got[1], arrays[1], "g is read only")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nthreads", THREADS)
@SETTINGS
@given(n=rows, m=cols, seed=seeds, has_ms=st.booleans(), eps=st.sampled_from([0.0, 1e-8, 0.1]),
       lr=st.floats(1e-3, 2.0), decay=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
       alpha=st.sampled_from([None, 0.0, 0.9]), has_prev=st.booleans(), adaptive=st.booleans(),
       has_gain=st.booleans(),
       bounds=st.sampled_from([(0.1, 10.0), (0.5, 1.2), (None, 1.0), (0.9, None), (None, None)]))
def test_rmsprop_update(dtype, nthreads, n, m, seed, has_ms, eps, lr, decay, alpha, has_prev,
                        adaptive, has_gain, bounds):
    skip_without_native()
    rng = np.random.default_rng(seed)
    g = signed(rng, (n, m), dtype, zeros=0.2)
    ms = (rng.uniform(0, 2, (n, m)) * (rng.uniform(size=(n, m)) > 0.2)).astype(dtype)
    if not has_ms:
        ms[...] = np.nan   # must not be read
    arrays = [rng.standard_normal((n, m)).astype(dtype), g, signed(rng, (n, m), dtype) * dtype(0.1),
              ms, rng.uniform(0.05, 12, (n, m)).astype(dtype) if adaptive else None]
    want = [None if a is None else a.copy() for a in arrays]
    got = [None if a is None else a.copy() for a in arrays]
    args = (lr, decay, eps, has_ms, alpha, has_prev, has_gain, *bounds)
    R.rmsprop_update(*want, *args)
    with threads(nthreads):
        native.rmsprop_update(*got, *args)
    for name, a, b in zip(("w", "g", "deltaw", "ms", "gain"), got, want):
        if b is not None:
            same(a, b, name)
    assert np.isfinite(got[0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(n=rows, m=cols, seed=seeds, factor=st.floats(0.5, 1.0))
def test_decay_weights(dtype, n, m, seed, factor):
    skip_without_native()
    w = np.random.default_rng(seed).standard_normal((n, m)).astype(dtype)
    want, got = w.copy(), w.copy()
    R.decay_weights(want, factor)
    native.decay_weights(got, factor)
    same(got, want, "w")
    same(got[:, 0], w[:, 0], "the bias column is exempt")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", MODES, ids=["rprop-", "rprop+", "irprop-", "irprop+"])
def test_large_arrays_give_the_same_bits_serial_and_parallel(dtype, mode):
    """1M parameters (123 blocks): serial, 2 threads at the default threshold (parallel when
    libgomp's threads sleep), and 2 threads forced parallel all match the twin."""
    skip_without_native()
    rng = np.random.default_rng(mode)
    arrays = _rprop_case(rng, 1000, 1001, dtype, mode)
    results = []
    for n, forced in ((1, False), (2, False), (2, True)):
        got = [None if a is None else a.copy() for a in arrays]
        with threads(n) if forced else synaptic.num_threads(n):
            native.rprop_update(*got, mode, 1.2, 0.5, 1e-6, 50.0, 0.01, True, None, True, True)
            native.rmsprop_update(got[0], got[1], got[2], got[3], None, 0.01, 0.9, 0.0, True,
                                  0.5, True, False, None, None)
        results.append(got)
    want = [None if a is None else a.copy() for a in arrays]
    R.rprop_update(*want, mode, 1.2, 0.5, 1e-6, 50.0, 0.01, True, None, True, True)
    R.rmsprop_update(want[0], want[1], want[2], want[3], None, 0.01, 0.9, 0.0, True, 0.5, True,
                     False, None, None)
    for got in results:
        for a, b in zip(got, want):
            if b is not None:
                np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# the spec's vectors (SYNAPTIC.md §9.6, §9.7), on both backends

@pytest.mark.parametrize("kern", BACKENDS)
def test_perceptron_error_vector(kern):
    o = np.array([[0], [1], [1], [0], [1]], float)
    t = np.array([[1], [1], [0], [0], [0]], float)
    out = np.full_like(o, np.nan)
    kern.perceptron_error(o, t, out)
    np.testing.assert_array_equal(out, [[1], [0], [-1], [0], [-1]])


DW = np.array([[1, -1, 1], [-1, -1, 1]], float)
PDW = np.array([[1, 1, -1], [-1, -1, 1]], float)
STEP = [[1, 0.5, 0.1], [9.99, 0.95, 0.5]]


@pytest.mark.parametrize("kern", BACKENDS)
def test_rprop_step_vector(kern):
    step, deltaw, w = np.array(STEP), PDW.copy(), np.zeros((2, 3))
    kern.rprop_update(w, -DW, deltaw, step, None, R.RPROP_ORIGINAL, 1.2, 0.5, 0.1, 10.0, 0.01,
                      True, None, True, False)
    np.testing.assert_allclose(step, [[1.2, 0.25, 0.1], [10.0, 1.14, 0.6]], atol=1e-12)
    np.testing.assert_allclose(deltaw, [[1.2, -0.25, 0.1], [-10.0, -1.14, 0.6]], atol=1e-12)
    np.testing.assert_array_equal(w, deltaw)


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("step_init", [1.0, 0.01])
def test_rprop_without_a_step_starts_at_step_init_unadapted(kern, step_init):
    """The generic helper starts at 1.0, the training path at 0.01 (SYNAPTIC.md §9.7)."""
    step, deltaw, w = np.full((2, 3), np.nan), PDW.copy(), np.zeros((2, 3))
    kern.rprop_update(w, -DW, deltaw, step, None, R.RPROP_ORIGINAL, 1.2, 0.5, 1e-6, 50.0,
                      step_init, False, None, True, False)
    np.testing.assert_array_equal(step, step_init)
    np.testing.assert_array_equal(deltaw, step_init * DW)


PG = [[[1.0, 1.5, 0.8], [2.0, 1.2, 1.5]], [[1.2, 0.8, 0.5], [2.1, 0.5, 1.6]]]
G = [[[0.1, -0.2, 0.5], [-0.5, -0.1, 0.4]], [[0.2, 0.8, -0.2], [-0.8, -0.2, 0.5]]]
MS_FIRST = [[[0.01, 0.04, 0.25], [0.25, 0.01, 0.16]], [[0.04, 0.64, 0.04], [0.64, 0.04, 0.25]]]
MS_PREV = [[[0.901, 1.354, 0.745], [1.825, 1.081, 1.366]], [[1.084, 0.784, 0.454], [1.954, 0.454, 1.465]]]


@pytest.mark.parametrize("kern", BACKENDS)
@pytest.mark.parametrize("has_ms", [False, True])
def test_rmsprop_mean_square_vectors(kern, has_ms):
    for pg, g, expected in zip(PG, G, MS_PREV if has_ms else MS_FIRST):
        ms, w, deltaw = np.array(pg), np.zeros((2, 3)), np.zeros((2, 3))
        g = np.array(g)
        kern.rmsprop_update(w, g, deltaw, ms, None, 0.01, 0.9, 0.0, has_ms, None, False, False,
                            None, None)
        np.testing.assert_allclose(ms, expected, atol=1e-12)
        if not has_ms:  # the first step is a sign step of size epsilon
            np.testing.assert_allclose(deltaw, -0.01 * np.sign(g), atol=1e-15)


@pytest.mark.parametrize("kern", BACKENDS)
def test_rmsprop_zero_mean_square_returns_the_numerator(kern):
    g = np.array([[0.0, 2.0]])
    ms, w, deltaw = np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 2))
    kern.rmsprop_update(w, g, deltaw, ms, None, 0.5, 0.9, 0.0, False, None, False, False, None, None)
    np.testing.assert_array_equal(deltaw, [[0.0, -0.5]])   # no division by zero, no NaN
    ms[...] = 0
    kern.rmsprop_update(w, g, deltaw, ms, None, 0.5, 0.9, 4.0, True, None, False, False, None, None)
    np.testing.assert_allclose(deltaw, [[0.0, -0.5 * 2 / np.sqrt(0.1 * 4 + 4.0)]], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# bad input: clear errors from both backends

@pytest.mark.parametrize("kern", BACKENDS)
def test_bad_arguments(kern):
    w = np.zeros((2, 3))
    ok = [np.zeros((2, 3)) for _ in range(4)]
    with pytest.raises(ValueError, match="variant"):
        kern.rprop_update(w, *ok, 7, 1.2, 0.5, 1e-6, 50.0, 0.01, True, None, False, False)
    with pytest.raises(ValueError, match="gprev"):
        kern.rprop_update(w, ok[0], ok[1], ok[2], None, R.IRPROP_MINUS, 1.2, 0.5, 1e-6, 50.0,
                          0.01, True, None, False, False)
    with pytest.raises(ValueError, match="backtracking"):
        kern.rprop_update(w, *ok, R.RPROP_PLUS, 1.2, 0.5, 1e-6, 50.0, 0.01, True, 0.9, True, False)
    with pytest.raises(ValueError, match="shape"):
        kern.rprop_update(w, np.zeros((3, 2)), *ok[1:], R.RPROP_ORIGINAL, 1.2, 0.5, 1e-6, 50.0,
                          0.01, True, None, False, False)
    with pytest.raises(TypeError, match="dtype"):
        kern.rmsprop_update(w, ok[0].astype(np.float32), ok[1], ok[2], None, 0.01, 0.9, 0.0, True,
                            None, False, False, None, None)
    with pytest.raises(ValueError, match="shape"):
        kern.perceptron_error(w, np.zeros((2, 2)), np.zeros((2, 3)))


def test_native_refuses_non_contiguous_and_aliased_arrays():
    skip_without_native()
    w = np.zeros((4, 6))
    with pytest.raises(ValueError, match="C-contiguous"):
        native.rprop_update(w[:, ::2], *[np.zeros((4, 3))] * 4, R.RPROP_ORIGINAL, 1.2, 0.5, 1e-6,
                            50.0, 0.01, True, None, False, False)
    a = np.zeros((2, 3))
    with pytest.raises(ValueError, match="share memory"):
        native.rmsprop_update(w[:2, :3].copy(), a, a, np.zeros((2, 3)), None, 0.01, 0.9, 0.0,
                              True, None, False, False, None, None)
    with pytest.raises(TypeError, match="numpy array"):
        native.decay_weights([[1.0, 2.0]], 0.5)
