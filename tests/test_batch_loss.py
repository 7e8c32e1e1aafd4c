"""stats.batch_loss (the loss each batch saw before its step, scikit-learn's and Keras's epoch
loss, summed during the epoch) and train(after_epoch=...)."""
import numpy as np
import pytest

import synaptic
from synaptic.training import strategy


def _set(n=90, batch=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    labels = (x[:, 0] + x[:, 1] > 0).astype(int)
    return synaptic.training_set(x, labels, batch=batch, rand=False, dtype=np.float64)


def _net(algo="backprop", **params):
    params.setdefault("stats", {"errorkinds": [], "batch_loss": True})
    return synaptic.mlp([4, 6, 2], ["tanh", "softmax"], synaptic.training(algo, params),
                        seed=3, dtype=np.float64)


@pytest.mark.parametrize("fused", [True, False], ids=["whole-epoch", "per-batch"])
@pytest.mark.parametrize("algo", ["backprop", "adam", "rmsprop"])
def test_batch_loss_is_the_mean_of_the_losses_each_batch_saw(algo, fused, monkeypatch):
    """Replay the training batch by batch: each batch's loss with the weights before its
    step, averaged over the rows, is what stats.batch_loss recorded."""
    monkeypatch.setattr(strategy, "FORCE_WHOLE_EPOCH", fused)
    trset = _set()
    net = _net(algo)
    replay = _net(algo, stats={"errorkinds": []})
    synaptic.train(net, trset, 2).result()
    want = []
    for _ in range(2):
        total = 0.0
        for batch in trset.batches:
            out = replay.predict_proba(batch.x)
            total -= float(np.sum(np.log(out[batch.y == 1] + 1e-30)))
            one = synaptic.training_set(batch.x, batch.y.argmax(axis=1), batch=None,
                                        rand=False, dtype=np.float64)
            synaptic.train(replay, one, 1).result()
        want.append(total / len(trset.x))
    np.testing.assert_allclose(net.training.stats.batch_loss, want, rtol=1e-10)


def test_batch_loss_off_records_nothing_and_perceptron_refuses():
    net = _net(stats={"errorkinds": ["cross-entropy"]})
    synaptic.train(net, _set(), 1).result()
    assert net.training.stats.batch_loss == []
    perceptron = synaptic.mlp([4, 2], "sigmoid", synaptic.training(
        "perceptron", {"stats": {"batch_loss": True}}))
    with pytest.raises(ValueError, match="batch_loss"):
        synaptic.train(perceptron, _set(), 1).result()


def test_batch_loss_survives_save_and_load(tmp_path):
    net = _net()
    synaptic.train(net, _set(), 2).result()
    from synaptic.persist import load_neural_net_file, save_neural_net_file
    path = str(tmp_path / "net.json")
    save_neural_net_file(net, path)
    loaded = load_neural_net_file(path)
    assert loaded.training.stats.batch_loss == net.training.stats.batch_loss


def test_after_epoch_stops_and_changes_the_rate():
    seen = []

    def hook(net):
        seen.append(net.training.stats.epochs)
        net.training.params["learning_rate"]["epsilon"] = 0.5 * seen[-1]
        return len(seen) == 3

    net = _net(learning_rate={"epsilon": 0.1})
    synaptic.train(net, _set(), 10, after_epoch=hook).result()
    assert seen == [1, 2, 3] and net.training.stats.epochs == 3
    assert net.training.stats.learning_rate == [0.1, 0.5, 1.0]  # from the epoch after


def test_after_epoch_errors():
    with pytest.raises(TypeError, match="after_epoch"):
        synaptic.train(_net(), _set(), 1, after_epoch=3)
    lbfgs = synaptic.mlp([4, 2], "softmax", synaptic.training("lbfgs"))
    with pytest.raises(ValueError, match="after_epoch"):
        synaptic.train(lbfgs, _set(), 1, after_epoch=lambda net: False)

    def boom(net):
        raise RuntimeError("boom")
    net = _net()
    with pytest.raises(RuntimeError, match="boom"):
        synaptic.train(net, _set(), 3, after_epoch=boom).result()
    assert net.state is None and net.training.stats.epochs == 1
