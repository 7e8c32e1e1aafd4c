"""Divergence detection of L-BFGS (issue 13, item 3): every function evaluation's point, cost
and gradient is checked; a NaN or infinite one ends the run with TrainingDiverged naming the
iteration (as the epoch, batch None), the net keeping the best weights evaluated."""
import numpy as np
import pytest

import synaptic
from synaptic import TrainingDiverged
from synaptic.training import lbfgs
from synaptic.training.lbfgs import LBFGS

TIMEOUT = 60
# inputs of max ** POWER: the first trial point of the line search overflows the float64
# weights; in float32 the first gradient overflows
POWER = {np.float32: 0.5, np.float64: 0.3}
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])


def huge(dtype, power=None):
    x = np.random.default_rng(0).normal(size=(40, 5))
    x *= np.finfo(dtype).max ** (POWER[dtype] if power is None else power)
    return synaptic.training_set(x, (x[:, 0] > 0).astype(int), rand=False, dtype=dtype)


def build(dtype, policy=None, acts=("relu", "linear"), error_fn="sum-of-squares"):
    params = {"error_fn": error_fn, **({} if policy is None else {"on_nonfinite": policy})}
    return synaptic.mlp([5, 6, 2], list(acts), synaptic.training("lbfgs", params), dtype=dtype,
                        seed=1)


def finite_stats(net):
    return all(np.isfinite(v).all() for v in net.stats.tr_err.values())


@DTYPES
def test_an_overflowing_run_raises_and_keeps_the_best_weights(dtype):
    net = build(dtype)
    start = [w.copy() for w in net.weights]
    with pytest.raises(TrainingDiverged) as info:
        synaptic.train(net, huge(dtype), 20).result(timeout=TIMEOUT)
    err = info.value
    assert (err.epoch, err.batch) == (0, None)
    assert err.what in ("weights of layer 1", "gradient of layer 1", "loss")
    assert str(err).startswith("training diverged in L-BFGS iteration 0 (counted from 0), at "
                               "function evaluation ")
    for a, b in zip(net.weights, start):  # the first point was the best finite one
        np.testing.assert_array_equal(a, b)
    assert net.state is None and finite_stats(net)
    assert net.stats.diverged == {"epoch": 0, "batch": None, "what": err.what}
    assert net.training.state["lbfgs_status"].startswith("diverged: ")


@DTYPES
def test_stop_ends_normally_with_a_warning(dtype):
    net = build(dtype, "stop")
    start = [w.copy() for w in net.weights]
    with pytest.warns(RuntimeWarning, match="L-BFGS iteration 0 .*on_nonfinite 'stop'"):
        assert synaptic.train(net, huge(dtype), 20).result(timeout=TIMEOUT) is net
    for a, b in zip(net.weights, start):
        np.testing.assert_array_equal(a, b)
    assert finite_stats(net) and net.stats.diverged["epoch"] == 0
    assert net.training.state["lbfgs_status"].startswith("diverged: ")


def test_ignore_leaves_scipys_behaviour():
    net = build(np.float64, "ignore")
    assert synaptic.train(net, huge(np.float64), 20).result(timeout=TIMEOUT) is net
    assert not finite_stats(net) and net.stats.diverged is None
    assert not net.training.state["lbfgs_status"].startswith("diverged")


@pytest.mark.parametrize("what", ["loss", "gradient of layer 2"])
@pytest.mark.parametrize("policy", ["raise", "stop"])
def test_a_later_evaluation_that_is_not_finite(monkeypatch, what, policy):
    """The cost (or layer 2's gradient) of the 7th evaluation made NaN: the iteration named is
    the one running, the weights are the lowest-cost point of the six before."""
    points, costs, calls = [], [], []
    cost = LBFGS.cost

    def poisoned(self, x, t, kern=None, packed=None):
        c, grads = cost(self, x, t, kern, packed)
        calls.append(1)
        if len(calls) == 7:
            if what == "loss":
                c = float("nan")
            else:
                grads[1][0, 1] = np.inf
        else:
            points.append(lbfgs.flatten(self.net.weights))
            costs.append(c)
        return c, grads
    monkeypatch.setattr(LBFGS, "cost", poisoned)
    iterations = []
    callback = lbfgs._Search.callback

    def counted(self, result):
        iterations.append(1)
        return callback(self, result)
    monkeypatch.setattr(lbfgs._Search, "callback", counted)
    x = np.random.default_rng(0).normal(size=(40, 5))
    trset = synaptic.training_set(x, (x[:, 0] > 0).astype(int), rand=False)
    net = build(np.float64, policy, ("sigmoid", "softmax"), "cross-entropy")
    net.training.params["lbfgs"] = {"eps": 0.0}
    if policy == "raise":
        with pytest.raises(TrainingDiverged) as info:
            synaptic.train(net, trset, 50).result(timeout=TIMEOUT)
        err = info.value
        assert (err.epoch, err.batch, err.what) == (len(iterations), None, what)
        assert "function evaluation 6 of this run" in str(err)
    else:
        with pytest.warns(RuntimeWarning, match=f"the {what} became NaN"):
            synaptic.train(net, trset, 50).result(timeout=TIMEOUT)
        assert net.stats.diverged == {"epoch": len(iterations), "batch": None, "what": what}
    assert len(iterations) >= 1 and len(points) == 6
    np.testing.assert_array_equal(lbfgs.flatten(net.weights), points[int(np.argmin(costs))])
    assert finite_stats(net)
