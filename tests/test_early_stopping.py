"""Early stopping on the validation set: when it stops, what the stats and the Future's result
say, the best weights put back, exact resume after save/load, and its option errors."""
import numpy as np
import pytest

import synaptic
from synaptic.training import stats as _stats

KIND = "cross-entropy-multivariate"


def noisy_set(seed=0):
    """Few rows, noisy labels: a big net overfits, so the validation error turns up."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((120, 6))
    y = ((x[:, 0] + rng.standard_normal(120)) > 0).astype(int)
    return synaptic.training_set(x, y, batch=10, nvalid=60, seed=1)


def overfitting_net(stopping=None, dtype=np.float64, **extra):
    params = {"learning_rate": {"epsilon": 0.02}, **extra}
    if stopping is not None:
        params["early_stopping"] = stopping
    return synaptic.mlp([6, 60, 2], ["tanh", "softmax"], synaptic.training("adam", params),
                        seed=4, dtype=dtype)


def test_it_stops_after_patience_epochs_without_improvement_and_restores_the_best():
    trset = noisy_set()
    free = overfitting_net()
    synaptic.train(free, trset, 200).result()
    val = free.stats.val_err[KIND]
    best_epoch = None
    best, wait, patience = np.inf, 0, 5
    for epoch, value in enumerate(val, start=1):  # the rule, applied to the free run's curve
        if value < best:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                stopped = epoch
                break
    else:
        pytest.fail("the free run never stopped improving: the data does not overfit")
    net = overfitting_net({"patience": patience})
    result = synaptic.train(net, trset, 200).result()
    record = result.stats.early_stopping
    assert record == {"stopped_epoch": stopped, "best_epoch": best_epoch, "best": best,
                      "errorkind": KIND, "restored": True}
    assert net.stats.epochs == stopped
    assert net.stats.val_err[KIND] == val[:stopped]
    # the weights are the best epoch's: their validation error is the best recorded
    data = trset.astype(net.dtype)
    now = _stats.evaluate(net, data.valid.x, data.valid.y, [KIND])[KIND]
    assert now == pytest.approx(best, rel=1e-12)
    assert not any(k.startswith("es_") for k in net.training.state)


def test_without_restore_best_the_last_weights_stay():
    trset = noisy_set()
    net = overfitting_net({"patience": 3, "restore_best": False})
    synaptic.train(net, trset, 200).result()
    record = net.stats.early_stopping
    assert record["restored"] is False and record["stopped_epoch"] == record["best_epoch"] + 3
    data = trset.astype(net.dtype)
    now = _stats.evaluate(net, data.valid.x, data.valid.y, [KIND])[KIND]
    assert now == net.stats.val_err[KIND][-1] and now > record["best"]


def test_min_delta_makes_small_improvements_not_count():
    trset = noisy_set()
    loose = overfitting_net({"patience": 2})
    strict = overfitting_net({"patience": 2, "min_delta": 0.05})
    for net in (loose, strict):
        synaptic.train(net, trset, 200).result()
    assert strict.stats.early_stopping["stopped_epoch"] < loose.stats.early_stopping["stopped_epoch"]


def test_accuracy_is_watched_as_higher_is_better():
    trset = noisy_set()
    net = overfitting_net({"patience": 4, "errorkind": "accuracy"},
                          stats={"errorkinds": ["accuracy", "cross-entropy"]})
    synaptic.train(net, trset, 200).result()
    record = net.stats.early_stopping
    acc = net.stats.val_err["accuracy"]
    assert record["best"] == max(acc[:record["best_epoch"]])
    assert record["best_epoch"] == 1 + acc.index(record["best"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_it_resumes_exactly_after_save_and_load(tmp_path, monkeypatch, dtype):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    trset = noisy_set()
    whole = overfitting_net({"patience": 5}, dtype)
    synaptic.train(whole, trset, 200).result()
    stopped = whole.stats.early_stopping["stopped_epoch"]
    assert stopped > 4
    half = overfitting_net({"patience": 5}, dtype)
    synaptic.train(half, trset, stopped - 2).result()
    assert half.stats.early_stopping is None and "es_best" in half.training.state
    synaptic.save_neural_net(half, "half")
    loaded = synaptic.load_neural_net("half")
    synaptic.train(loaded, trset, 200).result()
    assert loaded.stats.early_stopping == whole.stats.early_stopping
    for a, b in zip(whole.weights, loaded.weights):
        np.testing.assert_array_equal(a, b)
    synaptic.save_neural_net(loaded, "done")
    assert synaptic.load_neural_net("done").stats.early_stopping == whole.stats.early_stopping


def test_a_new_training_after_an_early_stop_counts_afresh():
    trset = noisy_set()
    net = overfitting_net({"patience": 2})
    synaptic.train(net, trset, 200).result()
    first = net.stats.epochs
    synaptic.train(net, trset, 200).result()
    assert net.stats.epochs >= first + 3  # at least patience + 1 more epochs


@pytest.mark.parametrize("algo, params", [("backprop", {"learning_rate": {"epsilon": 0.1}}),
                                          ("rprop", {}), ("rmsprop", {}), ("perceptron", {})])
def test_every_epoch_algorithm_takes_it(algo, params):
    out = "binary-threshold" if algo == "perceptron" else "softmax"
    layers = [6, 2] if algo == "perceptron" else [6, 30, 2]
    acts = [out] if algo == "perceptron" else ["tanh", out]
    stopping = {"patience": 2}
    if algo == "perceptron":
        stopping["errorkind"] = "misclassification"
    net = synaptic.mlp(layers, acts, synaptic.training(algo, {**params,
                                                              "early_stopping": stopping}), seed=1)
    synaptic.train(net, noisy_set(), 300).result()
    assert net.stats.early_stopping is not None
    assert net.stats.epochs == net.stats.early_stopping["stopped_epoch"] < 300


def test_lbfgs_refuses_it():
    with pytest.raises(ValueError, match="'early_stopping' does not apply to 'lbfgs'"):
        synaptic.training("lbfgs", {"early_stopping": {"patience": 3}})


def test_it_needs_a_validation_set():
    trset = synaptic.training_set(np.eye(4), [0, 1, 0, 1], rand=False)
    net = synaptic.mlp([4, 2], "softmax", synaptic.training("rprop", {"early_stopping": {}}))
    with pytest.raises(ValueError, match="validation set"):
        synaptic.train(net, trset, 3)
    assert net.state is None


def test_it_needs_its_kind_recorded():
    net = overfitting_net({"errorkind": "accuracy"})
    with pytest.raises(ValueError, match="stats do not record"):
        synaptic.train(net, noisy_set(), 3)


@pytest.mark.parametrize("stopping, error, match", [
    ({"patience": -1}, ValueError, "patience must be >= 0"),
    ({"min_delta": -0.1}, ValueError, "min_delta"),
    ({"errorkind": "nope"}, ValueError, "nope"),
    ({"patience": 2.5}, TypeError, "patience"),
    ({"restore_best": "yes"}, TypeError, "restore_best"),
    ({"wait": 3}, ValueError, "unknown option 'early_stopping.wait'"),
])
def test_bad_options_are_refused(stopping, error, match):
    with pytest.raises(error, match=match):
        synaptic.training("adam", {"early_stopping": stopping})
