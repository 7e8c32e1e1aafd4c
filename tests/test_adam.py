"""Adam, AdamW and AMSGrad: the adam_update kernel against its NumPy twin (bit for bit) and
against torch.optim (to 1e-6 in float32 after 100 steps), the optimizer in training (it
learns, resumes exactly after save/load, 1 and 2 threads agree), and its option errors."""
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import synaptic
from synaptic._kernels import native, reference as R
from test_update_kernels import (BACKENDS, DTYPES, THREADS, same, signed, skip_without_native,
                                 threads)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# small shapes (1 row, 1 column, odd sizes) and a few above the kernel's block of 8192
# elements, so the blocks split rows and the bias column falls inside a block
shapes = st.one_of(st.tuples(st.integers(1, 29), st.integers(1, 23)),
                   st.tuples(st.integers(60, 130), st.integers(100, 211)))


def arrays(rng, shape, dtype, amsgrad):
    w = rng.standard_normal(shape).astype(dtype)
    g = signed(rng, shape, dtype, zeros=0.1)
    m = (rng.standard_normal(shape) * 0.1).astype(dtype)
    v = np.abs(rng.standard_normal(shape) * 0.01).astype(dtype)
    vmax = (v + np.abs(rng.standard_normal(shape)) * 0.01 * (rng.uniform(size=shape) > 0.5)
            ).astype(dtype) if amsgrad else None
    return w, g, m, v, vmax


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_threads", THREADS)
@SETTINGS
@given(shape=shapes, seed=st.integers(0, 2**32 - 1), amsgrad=st.booleans(),
       decay=st.sampled_from([1.0, 0.999, 0.5]), step=st.sampled_from([1, 2, 7, 1000]),
       scale=st.sampled_from([1.0, 0.01, 1 / 3]), eps=st.sampled_from([1e-8, 0.0, 0.1]))
def test_adam_update_native_matches_twin(dtype, n_threads, shape, seed, amsgrad, decay, step,
                                         scale, eps):
    skip_without_native()
    rng = np.random.default_rng(seed)
    want = arrays(rng, shape, dtype, amsgrad)
    got = tuple(None if a is None else a.copy() for a in want)
    args = (0.003, 0.9, 0.999, eps, step, scale, decay)
    R.adam_update(*want, *args)
    with threads(n_threads):
        native.adam_update(*got, *args)
    for name, a, b in zip(("w", "g", "m", "v", "vmax"), got, want):
        if a is not None:
            same(a, b, name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_update_follows_the_formula_and_exempts_the_bias(backend):
    """One step from m = v = 0: the step is lr * sign(g) (bias corrections), the bias column
    keeps its value before the step, the other weights are decayed first."""
    if backend is None:
        pytest.skip("native backend not built")
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 4))
    m, v = np.zeros_like(w), np.zeros_like(w)
    w0 = w.copy()
    backend.adam_update(w, g, m, v, None, 0.01, 0.9, 0.999, 0.0, 1, 0.5, 0.9)
    expect = w0.copy()
    expect[:, 1:] *= 0.9
    expect -= 0.01 * np.sign(g)
    np.testing.assert_allclose(w, expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(m, 0.1 * 0.5 * g)
    np.testing.assert_allclose(v, 0.001 * (0.5 * g) ** 2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bad, error", [
    ({"step": 0}, ValueError), ({"step": 1.5}, TypeError), ({"step": True}, TypeError),
    ({"beta1": 1.0}, ValueError), ({"beta2": -0.1}, ValueError), ({"eps": -1.0}, ValueError),
    ({"lr": math.nan}, ValueError), ({"decay": 1.5}, ValueError)])
def test_adam_update_refuses_bad_scalars(backend, bad, error):
    args = {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "step": 1, "scale": 1.0,
            "decay": 1.0, **bad}
    w = np.zeros((2, 3))
    with pytest.raises(error):
        backend.adam_update(w, np.zeros_like(w), np.zeros_like(w), np.zeros_like(w), None,
                            args["lr"], args["beta1"], args["beta2"], args["eps"], args["step"],
                            args["scale"], args["decay"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adam_update_refuses_bad_arrays(backend):
    w = np.zeros((2, 3))
    ok = dict(g=np.zeros_like(w), m=np.zeros_like(w), v=np.zeros_like(w))
    scalars = (0.01, 0.9, 0.999, 1e-8, 1, 1.0, 1.0)
    with pytest.raises(ValueError, match="m"):
        backend.adam_update(w, ok["g"], np.zeros((3, 2)), ok["v"], None, *scalars)
    with pytest.raises(TypeError):
        backend.adam_update(w, ok["g"], ok["m"], np.zeros((2, 3), np.float32), None, *scalars)
    if backend is native:  # the twin does not see aliasing
        with pytest.raises(ValueError):
            backend.adam_update(w, ok["g"], ok["m"], ok["m"], None, *scalars)


# ---------------------------------------------------------------------------------------
# against PyTorch

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["adam", "adamw", "amsgrad", "adamw-amsgrad"])
def test_100_steps_match_torch_optim(backend, kind):
    """Same weights, same gradients, 100 steps: torch.optim.Adam / AdamW (the bias column in
    a group without weight decay, as synaptic exempts it), float32, to 1e-6."""
    torch = pytest.importorskip("torch")
    if backend is None:
        pytest.skip("native backend not built")
    rng = np.random.default_rng(7)
    shape, lr, wd = (17, 33), 0.01, 0.05 if "adamw" in kind else 0.0
    amsgrad = "amsgrad" in kind
    w = rng.standard_normal(shape).astype(np.float32)
    grads = [(rng.standard_normal(shape) * rng.uniform(0.1, 3)).astype(np.float32)
             for _ in range(100)]
    bias = torch.tensor(w[:, :1].copy(), requires_grad=True)
    rest = torch.tensor(w[:, 1:].copy(), requires_grad=True)
    cls = torch.optim.AdamW if "adamw" in kind else torch.optim.Adam
    opt = cls([{"params": [rest], "weight_decay": wd}, {"params": [bias], "weight_decay": 0.0}],
              lr=lr, betas=(0.9, 0.999), eps=1e-8, amsgrad=amsgrad)
    m, v = np.zeros_like(w), np.zeros_like(w)
    vmax = np.zeros_like(w) if amsgrad else None
    for step, g in enumerate(grads, start=1):
        bias.grad = torch.tensor(g[:, :1].copy())
        rest.grad = torch.tensor(g[:, 1:].copy())
        opt.step()
        backend.adam_update(w, g, m, v, vmax, lr, 0.9, 0.999, 1e-8, step, 1.0, 1.0 - lr * wd)
    want = np.hstack([bias.detach().numpy(), rest.detach().numpy()])
    np.testing.assert_allclose(w, want, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------
# the optimizer in training

def xor_set():
    return synaptic.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 25, [0, 1, 1, 0] * 25,
                                 batch=10, seed=0)


def adam_net(params=None, dtype=np.float64):
    params = {"learning_rate": {"epsilon": 0.05}, **(params or {})}
    return synaptic.mlp([2, 6, 2], ["tanh", "softmax"], synaptic.training("adam", params),
                        seed=3, dtype=dtype)


@pytest.mark.parametrize("params", [{}, {"adam": {"amsgrad": True}}, {"weight_decay": 0.01},
                                    {"regularization": {"kind": "l2", "lambda": 0.01}}],
                         ids=["adam", "amsgrad", "adamw", "adam-l2"])
def test_adam_learns_xor(params):
    net = adam_net(params)
    synaptic.train(net, xor_set(), 60).result()
    assert net.stats.tr_err["cross-entropy-multivariate"][-1] < 0.1
    assert net.training.state["adam_t"] == 600
    assert ("adam_vmax" in net.training.state) == ("adam" in params)


def test_the_numpy_backend_trains_the_same_weights():
    nets = []
    for backend in ("numpy", "native"):
        if backend == "native" and native is None:
            pytest.skip("native backend not built")
        net = adam_net({"weight_decay": 0.01, "adam": {"amsgrad": True}})
        with synaptic.backend(backend):
            synaptic.train(net, xor_set(), 5).result()
        nets.append(net)
    for a, b in zip(nets[0].weights, nets[1].weights):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_resumes_exactly_after_save_and_load(tmp_path, monkeypatch, dtype):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    trset = xor_set()
    whole = adam_net({"adam": {"amsgrad": True}, "weight_decay": 0.01}, dtype)
    synaptic.train(whole, trset, 6).result()
    half = adam_net({"adam": {"amsgrad": True}, "weight_decay": 0.01}, dtype)
    synaptic.train(half, trset, 3).result()
    synaptic.save_neural_net(half, "half")
    loaded = synaptic.load_neural_net("half")
    assert loaded.training.state["adam_t"] == 30
    synaptic.train(loaded, trset, 3).result()
    for a, b in zip(whole.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)


def test_one_and_two_threads_train_the_same_bits():
    results = []
    for n in (1, 2):
        net = synaptic.mlp([30, 40, 3], ["relu", "softmax"],
                           synaptic.training("adam", {"weight_decay": 0.001}), seed=1,
                           dtype=np.float32)
        rng = np.random.default_rng(0)
        trset = synaptic.training_set(rng.standard_normal((300, 30)), rng.integers(0, 3, 300),
                                      batch=50, seed=0)
        with threads(n):
            synaptic.train(net, trset, 3).result()
        results.append(net.weights)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("params, match", [
    ({"adam": {"beta1": 1.0}}, "adam.beta1"),
    ({"adam": {"beta2": -0.5}}, "adam.beta2"),
    ({"adam": {"eps": -1e-8}}, "adam.eps"),
    ({"adam": {"beta3": 0.5}}, "unknown option 'adam.beta3'"),
    ({"momentum": {"alpha": 0.9}}, "'momentum' does not apply to 'adam'"),
    ({"learning_rate": {"adaptive": True, "ming": 0.1, "maxg": 10}}, "adaptive"),
    ({"rprop": {"mins": 1e-6}}, "'rprop' does not apply to 'adam'"),
    ({"learning_rate": {"epsilon": 0}}, "epsilon must be > 0"),
])
def test_bad_adam_options_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        synaptic.training("adam", params)


def test_adam_options_have_types():
    with pytest.raises(TypeError, match="adam.amsgrad"):
        synaptic.training("adam", {"adam": {"amsgrad": 1}})


def test_adam_defaults_are_documented():
    doc = synaptic.training.__doc__
    assert "``'adam'``" in doc
    assert "``adam.beta2`` : number, default 0.999 (adam)" in doc
    assert "0.01 (backprop, rmsprop), 0.001 for adam" in doc
    assert "``adam.amsgrad`` : bool, default False (adam)" in doc


def test_adam_on_a_reshuffled_set_resumes_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    rng = np.random.default_rng(2)
    trset = synaptic.training_set(rng.standard_normal((90, 5)), rng.integers(0, 2, 90),
                                  batch=9, reshuffle=True, seed=11)
    make = lambda: synaptic.mlp([5, 7, 2], ["relu", "softmax"],  # noqa: E731
                                synaptic.training("adam", {"learning_rate": {
                                    "epsilon": 0.01, "schedule": {"kind": "cosine", "epochs": 6}}}),
                                seed=3)
    whole, half = make(), make()
    synaptic.train(whole, trset, 6).result()
    synaptic.train(half, trset, 3).result()
    synaptic.save_neural_net(half, "half")
    synaptic.save_training_set(trset, "shuffled")
    loaded = synaptic.load_neural_net("half")
    synaptic.train(loaded, synaptic.load_training_set("shuffled"), 3).result()
    for a, b in zip(whole.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
