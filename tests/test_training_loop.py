"""train / stop_training / watches / stats (SYNAPTIC.md §6, §9.6 counts) and error propagation."""
import threading
import time

import numpy as np
import pytest

import synaptic

SAMPLES = [[1, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0], [0, 0, 1]]
LABELS = ["1", "0", "0", "1", "1", "1", "0", "0"]


def small():
    trset = synaptic.training_set(SAMPLES, LABELS, online=True, rand=False, nvalid=2)
    net = synaptic.mlp([3, 2], "sigmoid", synaptic.training("backprop", {"learning_rate": {"epsilon": 0.5}}),
                       seed=3)
    return net, trset


def test_train_returns_a_future_of_the_net_and_stats_accumulate():
    net, trset = small()
    for epochs, total in ((1, 1), (2, 3), (10, 13)):
        assert synaptic.train(net, trset, epochs).result(timeout=30) is net
        stats = net.stats
        assert stats.epochs == total
        assert len(stats.tr_err["cross-entropy-binary"]) == total
        assert len(stats.val_err["cross-entropy-binary"]) == total
        assert len(stats.seconds) == total
    assert net.state is None
    # the training error went down over 13 epochs
    tr = net.stats.tr_err["cross-entropy-binary"]
    assert tr[-1] < tr[0]


def test_zero_epochs_trains_nothing():
    net, trset = small()
    before = [w.copy() for w in net.weights]
    synaptic.train(net, trset, 0).result(timeout=30)
    assert net.stats.epochs == 0
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)


def test_stats_values_are_the_mean_errors_with_end_of_epoch_weights():
    net, trset = small()
    synaptic.train(net, trset, 2).result(timeout=30)
    data = trset.astype(net.dtype)
    y = net.activities(data.x)[-1]
    t = data.y
    ce = -np.mean(np.sum(np.where(t == 1, np.log(y + 1e-30), np.log(1 + 1e-30 - y)), axis=1))
    assert net.stats.tr_err["cross-entropy-binary"][-1] == pytest.approx(ce, rel=1e-12)
    assert synaptic.training_error("cross-entropy", net, trset) == pytest.approx(ce, rel=1e-12)


def test_configured_error_kinds_and_no_kinds():
    net, trset = small()
    net.training.params["stats"] = {"errorkinds": ["misclassification", "cross-entropy", "accuracy"]}
    synaptic.train(net, trset, 1).result(timeout=30)
    assert list(net.stats.tr_err) == ["misclassification", "cross-entropy-binary", "accuracy"]
    net2, _ = small()
    net2.training = synaptic.training("backprop", {"stats": {"errorkinds": []}})
    synaptic.train(net2, trset, 3).result(timeout=30)
    assert net2.stats.epochs == 3 and net2.stats.tr_err == {}


def test_stop_training_stops_before_the_next_batch():
    rng = np.random.default_rng(0)
    x = rng.random((400, 20))
    labels = list(rng.integers(0, 3, 400))
    trset = synaptic.training_set(x, labels, online=True, rand=False)
    net = synaptic.mlp([20, 30, 3], ["sigmoid", "softmax"], synaptic.training("backprop"), seed=1)
    assert synaptic.stop_training(net) is None  # idle: nothing to stop
    future = synaptic.train(net, trset, 1000)
    time.sleep(0.05)
    assert synaptic.stop_training(net) is net
    assert net.state in ("stopping", None)
    future.result(timeout=30)
    assert net.state is None
    assert net.stats.epochs < 1000


def test_train_while_training_raises():
    net, trset = small()
    future = synaptic.train(net, trset, 100000)
    try:
        with pytest.raises(RuntimeError, match="already training"):
            synaptic.train(net, trset, 1)
    finally:
        synaptic.stop_training(net)
        future.result(timeout=30)


def test_watches_see_every_transition():
    net, trset = small()  # 6 training samples, online: 6 batches per epoch
    events = []
    net.add_watch("log", lambda key, ref, old, new: events.append((key, ref, old.event, new.state, new.epochs)))
    synaptic.train(net, trset, 2).result(timeout=30)
    kinds = [e[2] for e in events]
    assert kinds[0] == "state" and events[0][3] == "training"
    assert kinds[1] == "init-stats"
    assert kinds.count("weights") == 12
    assert kinds.count("stats") == 2  # one per epoch end
    assert kinds[-1] == "state" and events[-1][3] is None
    assert all(e[0] == "log" and e[1] is net for e in events)
    # stop_training fires too, even when nothing changes
    synaptic.stop_training(net)
    assert events[-1][2] == "stop"
    net.remove_watch("log")
    synaptic.train(net, trset, 1).result(timeout=30)
    assert events[-1][2] == "stop"


def test_an_exception_reaches_the_future_and_leaves_the_net_usable():
    net, trset = small()
    seen = []

    def explode(key, ref, old, new):
        if new.event == "weights":
            seen.append(1)
            if len(seen) == 3:
                raise RuntimeError("boom from a watch")

    net.add_watch("bomb", explode)
    future = synaptic.train(net, trset, 5)
    with pytest.raises(RuntimeError, match="boom"):
        future.result(timeout=30)
    assert net.state is None
    net.remove_watch("bomb")
    synaptic.train(net, trset, 1).result(timeout=30)
    assert net.state is None and all(np.isfinite(w).all() for w in net.weights)


def test_training_runs_in_another_thread():
    net, trset = small()
    threads = []
    net.add_watch("t", lambda *a: threads.append(threading.current_thread().name))
    synaptic.train(net, trset, 1).result(timeout=30)
    assert "synaptic-train" in threads


def test_estimate_returns_the_training_labels():
    net, trset = small()
    synaptic.train(net, trset, 1).result(timeout=30)
    out = synaptic.estimate(net, trset.valid)
    assert out.shape == (2,) and set(out) <= {"0", "1"}
    idx = np.argmax(net.activities(trset.valid.x)[-1], axis=1)
    np.testing.assert_array_equal(out, np.array(["0", "1"])[idx])


def test_estimate_breaks_ties_with_the_last_index():
    net = synaptic.mlp([2, 3], "linear")
    net.weights[0][...] = 0  # every output equal
    np.testing.assert_array_equal(synaptic.estimate(net, np.ones((4, 2))), [2, 2, 2, 2])
    assert synaptic.estimate(net, [1.0, 2.0]).shape == (1,)  # a single sample, softmax or not


def test_softmax_works_on_one_row_and_one_column():
    net = synaptic.mlp([3, 1], "softmax")
    np.testing.assert_allclose(net.activities(np.ones((4, 3)))[-1], 1.0)
    net = synaptic.mlp([3, 4], "softmax")
    np.testing.assert_allclose(net.activities([1.0, 2.0, 3.0])[-1].sum(), 1.0)


def test_big_forward_passes_run_on_a_synaptic_worker_thread(monkeypatch):
    """One OpenMP team per concurrent training: big forward passes asked for from another
    thread run on a (reused) training thread; small ones, and errors, stay the caller's."""
    net = synaptic.mlp([3, 4, 2], ["sigmoid", "softmax"], seed=1)
    seen = []
    forward = net.forward_into

    def spy(*args, **kwargs):
        seen.append(threading.current_thread().name)
        return forward(*args, **kwargs)
    monkeypatch.setattr(net, "forward_into", spy)
    rng = np.random.default_rng(0)
    big, small = rng.uniform(size=(100, 3)), rng.uniform(size=(5, 3))
    expected = [a.copy() for a in synaptic.Net.activities(net, big)]
    assert seen[-1] == "synaptic-train"
    synaptic.estimate(net, small)
    assert seen[-1] == threading.current_thread().name
    for a, b in zip(net.activities(big), expected):
        np.testing.assert_array_equal(a, b)

    def broken(*args, **kwargs):
        raise RuntimeError("kernel failed")
    monkeypatch.setattr(net, "forward_into", broken)
    with pytest.raises(RuntimeError, match="kernel failed"):
        synaptic.estimate(net, big)
