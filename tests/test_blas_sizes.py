"""64-bit sizes in the kernels: a product whose m, n or k exceeds BLAS's 32-bit int is done in
pieces (here: pieces of a few rows, through the testing hook, against NumPy), and an array
whose rows are too long for a BLAS leading dimension is refused up front."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from synaptic._kernels import native, reference as R

pytestmark = pytest.mark.skipif(native is None, reason="native backend not built")


def _hook():
    return native.dense._blas_pieces


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), k=st.integers(1, 9), chunk=st.integers(1, 4),
       ta=st.sampled_from("NT"), tb=st.sampled_from("NT"),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_gemm_in_pieces(m, n, k, chunk, ta, tb, dtype, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k) if ta == "N" else (k, m)).astype(dtype)   # column-major view
    B = rng.standard_normal((k, n) if tb == "N" else (n, k)).astype(dtype)
    got = _hook()(ta, tb, np.ascontiguousarray(A.T), np.ascontiguousarray(B.T), chunk)
    want = (A if ta == "N" else A.T) @ (B if tb == "N" else B.T)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), chunk=st.integers(1, 4),
       ta=st.sampled_from("NT"), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_gemv_in_pieces(m, n, chunk, ta, dtype, seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)).astype(dtype)
    x = rng.standard_normal(m if ta == "T" else n).astype(dtype)
    y = _hook()(ta, "N", np.ascontiguousarray(A.T), x, chunk)
    want = (A if ta == "N" else A.T) @ x
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)


def test_rows_longer_than_a_blas_int_are_refused():
    """A layer of 2**31 - 1 inputs: its weight rows (1 + d values) overflow BLAS's int.
    Zero-row arrays of that width cost no memory; the check comes before any use."""
    x = np.empty((0, 2**31 - 1), np.float32)
    w = np.empty((0, 2**31), np.float32)
    out = np.empty((0, 0), np.float32)
    with pytest.raises(ValueError, match="rows of 2147483647 values"):
        native.dense_forward(x, w, R.ACT_SIGMOID, out)
    with pytest.raises(ValueError, match="rows of 2147483648 values"):
        native.weight_grad(np.empty((0, 0), np.float32), np.empty((0, 3), np.float32), w)
