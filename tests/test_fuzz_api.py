"""Fuzzing the public API and the kernels with hostile arrays (hypothesis).

Random shapes (1 row, 1 column, odd sizes), dtypes (float32/64, ints, bool, complex, object,
strings), NaN and infinities, non-contiguous, Fortran-order, read-only and byte-swapped
arrays.  The promise kept: every call either works -- and then gives what the NumPy twin
gives, or a net whose weights are finite -- or raises ValueError / TypeError; never another
exception, never a crash.  (Files: test_file_hardening.py; watches: test_training_failures.py;
races on index arrays: test_kernel_races.py.)
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic as syn
from synaptic._kernels import native, reference as R

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CLEAN = (ValueError, TypeError)
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # overflow in the twins
DTYPES = [np.float32, np.float64, np.int64, np.int8, np.bool_, np.complex128, object, ">f8", "U3"]


@st.composite
def hostile_arrays(draw, rows=st.integers(1, 9), cols=st.integers(1, 7)):
    """A 2-D array with a random dtype, layout and some non-finite values."""
    n, d = draw(rows), draw(cols)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.standard_normal((n, d)) * draw(st.sampled_from([1.0, 1e3, 1e30]))
    bad = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
    if bad is not None:
        a.flat[draw(st.integers(0, a.size - 1))] = bad
    dtype = draw(st.sampled_from(DTYPES))
    try:
        a = a.astype(dtype)
    except (ValueError, OverflowError):
        a = a.astype(np.float64)
    layout = draw(st.sampled_from(["c", "f", "strided", "readonly", "1d", "3d"]))
    if layout == "f":
        a = np.asfortranarray(a)
    elif layout == "strided":
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif layout == "readonly":
        a.flags.writeable = False
    elif layout == "1d":
        a = a.ravel()
    elif layout == "3d":
        a = a[None]
    return a


def _finite_float(a):
    return (isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.ndim == 2
            and np.isfinite(a).all())


@FUZZ
@given(x=hostile_arrays(), seed=st.integers(0, 100))
def test_training_set_train_and_estimate(x, seed):
    labels = np.arange(x.shape[0] if x.ndim >= 1 else 1) % 2
    try:
        trset = syn.training_set(x, labels[: len(x)] if x.ndim == 2 else labels)
    except CLEAN:
        assert not _finite_float(np.asarray(x)) or x.ndim != 2 or x.dtype.kind not in "fiub"
        return
    assert np.isfinite(trset.x).all() and trset.x.ndim == 2
    net = syn.mlp([trset.x.shape[1], 3, trset.y.shape[1]], ["sigmoid", "softmax"],
                  syn.training("backprop", {"learning_rate": {"epsilon": 0.1}}), seed=seed)
    try:
        syn.train(net, trset, 2).result(timeout=60)
    except (ArithmeticError, ValueError):   # TrainingDiverged on a 1e30 input is a fair answer
        pass
    assert all(np.isfinite(w).all() for w in net.weights)
    assert net.state is None
    try:
        labels_out = syn.estimate(net, x)
    except CLEAN:
        return
    assert len(labels_out) == trset.x.shape[0]


def _kernel_calls(x, w):
    """(name, call of the native kernel, call of the twin) on the hostile ``x`` and ``w``."""
    n, d = (x.shape + (1, 1))[:2] if x.ndim >= 2 else (1, 1)
    o = w.shape[0] if w.ndim == 2 else 1
    def out(shape):
        return np.zeros(shape, dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    return [
        ("dense_forward", lambda K: K.dense_forward(x, w, R.ACT_SIGMOID, out((n, o)))),
        ("weight_grad", lambda K: K.weight_grad(out((n, o)), x, out(w.shape if w.ndim == 2
                                                                     else (o, 1 + d)))),
        ("activate", lambda K: K.activate(x, R.ACT_SOFTMAX, out(x.shape if x.ndim == 2
                                                                else (n, d)))),
        ("error_sum", lambda K: K.error_sum(x, out(x.shape if x.ndim == 2 else (n, d)),
                                            R.ERR_SUM_OF_SQUARES)),
    ]


@pytest.mark.skipif(native is None, reason="native backend not built")
@FUZZ
@given(x=hostile_arrays(), wshape=st.tuples(st.integers(0, 4), st.integers(1, 9)),
       wdtype=st.sampled_from([np.float32, np.float64, np.int64]))
def test_kernels_refuse_cleanly_or_agree_with_their_twins(x, wshape, wdtype):
    w = np.random.default_rng(0).standard_normal(wshape).astype(wdtype)
    for name, call in _kernel_calls(x, w):
        try:
            got = call(native)
        except CLEAN:
            # (the twin, the numeric contract, is laxer: it takes mixed float dtypes and
            # strided arrays the compiled kernels refuse)
            continue
        want = call(R)
        if isinstance(got, np.ndarray) or np.isscalar(got):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, equal_nan=True,
                                       err_msg=name)
