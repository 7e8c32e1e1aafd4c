"""The core features the scikit-learn estimators use: Adam's eps_before_correction,
multi-label training sets, picklable nets, save_neural_net_file, L-BFGS's iteration count."""
import math
import pickle

import numpy as np
import pytest

import synaptic as syn
from synaptic.datasets import DataSet, TrainingSet
from synaptic.persist import load_neural_net_file, save_neural_net_file


def _set(x, y, **header):
    return TrainingSet({"name": "t", **header}, [DataSet(x, y)])


def test_adam_eps_before_correction_is_sklearns_step():
    rng = np.random.default_rng(0)
    x, lab = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    y = np.eye(2)[lab]
    params = {"learning_rate": {"epsilon": 0.1},
              "adam": {"eps": 0.5, "beta2": 0.9, "eps_before_correction": True}}
    net = syn.mlp([3, 2], "softmax", syn.training("adam", params), seed=1)
    w0 = net.weights[0].copy()
    g = syn.error_derivatives(net, syn.dataset(x, y))[0] / 20
    syn.train(net, _set(x, y), 1).result()
    m, v = 0.1 * g, 0.1 * g * g  # one step: (1 - beta) * g
    step = 0.1 * math.sqrt(1 - 0.9) / (1 - 0.9) * m / (np.sqrt(v) + 0.5)
    np.testing.assert_allclose(net.weights[0], w0 - step, atol=1e-12)
    plain = syn.mlp([3, 2], "softmax", syn.training("adam", {**params, "adam": {
        "eps": 0.5, "beta2": 0.9}}), seed=1)
    syn.train(plain, _set(x, y), 1).result()
    assert np.abs(plain.weights[0] - net.weights[0]).max() > 1e-3  # eps placement matters


def test_multilabel_targets_train_with_cross_entropy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 2))
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1).astype(float)
    with pytest.raises(ValueError, match="not one-hot"):
        _set(x, y).validate()
    net = syn.mlp([2, 2], "sigmoid", syn.training("adam", {"learning_rate": {"epsilon": 0.1}}),
                  seed=1)
    syn.train(net, _set(x, y, multilabel=True), 100).result()
    assert ((net.predict_proba(x) > 0.5) == y).mean() > 0.9
    with pytest.raises(ValueError, match="other than 0 and 1"):
        _set(x, y * 0.5, multilabel=True).validate()


def test_a_net_pickles_without_its_lock_and_watches(tmp_path):
    net = syn.mlp([2, 3, 2], ["tanh", "softmax"], syn.training("backprop"), seed=1)
    net.add_watch("w", lambda *a: None)
    back = pickle.loads(pickle.dumps(net))
    assert back._watches == {} and back.lock is not net.lock
    np.testing.assert_array_equal(back.weights[0], net.weights[0])
    trset = syn.training_set([[0, 0], [1, 1]] * 4, [0, 1] * 4)
    syn.train(back, trset, 2).result()
    save_neural_net_file(back, tmp_path / "sub" / "net")
    loaded = load_neural_net_file(tmp_path / "sub" / "net")
    np.testing.assert_array_equal(loaded.weights[1], back.weights[1])
    assert loaded.stats.epochs == 2


def test_lbfgs_records_its_iterations():
    x = np.linspace(0, 1, 30).reshape(-1, 1)
    reg = syn.training_set(x, targets=np.sin(3 * x).ravel())
    net = syn.mlp([1, 5, 1], ["tanh", "linear"],
                  syn.training("lbfgs", {"error_fn": "sum-of-squares", "lbfgs": {"eps": 0}}),
                  seed=1)
    syn.train(net, reg, 7).result()
    assert net.training.state["lbfgs_iterations"] == 7


def _lbfgs_net(**lb):
    return syn.mlp([3, 4, 2], ["tanh", "softmax"], syn.training("lbfgs", {"lbfgs": lb}),
                   seed=2, dtype=np.float64)


def _lbfgs_data():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 3))
    return _set(x, np.eye(2)[(x[:, 0] > 0).astype(int)])


def test_lbfgs_scipy_stop_tests_and_scale():
    data = _lbfgs_data()
    net = _lbfgs_net(eps=0.0)
    syn.train(net, data, 30).result()
    assert net.training.state["lbfgs_iterations"] == 30  # SciPy's tests off: the epochs end it
    loose = _lbfgs_net(eps=0.0, gtol=1e3)  # any gradient is below it: converged at once
    syn.train(loose, data, 30).result()
    assert loose.training.state["lbfgs_status"].startswith("CONVERGENCE")
    assert loose.training.state["lbfgs_iterations"] <= 1
    few = _lbfgs_net(eps=0.0, maxfun=4)
    syn.train(few, data, 30).result()
    assert "EVALUATIONS" in few.training.state["lbfgs_status"]
    assert few.training.state["lbfgs_iterations"] < 4
    # a scale of the objective leaves SciPy's iterates (to rounding), with its tests off
    scaled = _lbfgs_net(eps=0.0, scale=1.0 / 40)
    syn.train(scaled, data, 30).result()
    np.testing.assert_allclose(scaled.weights[0], net.weights[0], rtol=1e-5, atol=1e-7)
    # and the relative-decrease test stops a scaled run sooner than the limit
    ftol = _lbfgs_net(eps=0.0, ftol=1e-3)
    syn.train(ftol, data, 300).result()
    assert ftol.training.state["lbfgs_iterations"] < 300


@pytest.mark.parametrize("key, value", [("ftol", -1.0), ("gtol", math.nan), ("maxfun", 0),
                                        ("scale", 0.0), ("scale", math.inf)])
def test_lbfgs_bad_stop_options_are_refused(key, value):
    with pytest.raises((ValueError, TypeError), match=f"lbfgs.{key}"):
        syn.train(_lbfgs_net(**{key: value}), _lbfgs_data(), 1)
