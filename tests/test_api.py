"""Net construction, shapes (SYNAPTIC.md §9.2, §9.5), params, error resolution (§9.8), bad input."""
import numpy as np
import pytest

import synaptic
from synaptic.training.stats import init_stats, stat_kinds


def test_mlp_activity_shapes():
    net = synaptic.mlp([3, 2, 1], "binary-threshold")
    acts = synaptic.net_activities(net, np.random.default_rng(0).random((5, 3)))
    assert [a.shape for a in acts] == [(5, 2), (5, 1)]
    assert set(np.unique(acts[0])) <= {0.0, 1.0}


def test_weight_shapes_and_init():
    net = synaptic.neural_net([{"type": "input", "n": 5}, {"type": "fully-connected", "n": 3, "act-fn": "sigmoid"},
                               {"type": "fully-connected", "n": 2, "act_fn": "sigmoid"}], seed=0)
    assert [w.shape for w in net.weights] == [(3, 6), (2, 4)]
    for w, bound in zip(net.weights, (20, 30)):
        assert np.abs(w).max() <= bound and w.max() > 0 and w.min() < 0
    # N(0,1)/fan-in, bias included: the spread shrinks with the fan-in
    big = synaptic.mlp([400, 300], "sigmoid", seed=1)
    assert big.weights[0].std() == pytest.approx(1 / 400, rel=0.02)
    assert big.weights[0][:, 0].std() == pytest.approx(1 / 400, rel=0.2)


def test_layer_counts():
    net = synaptic.mlp([3, 10, 1], "sigmoid")
    assert len(net.weights) == 2 and len(net.layers) == 3
    assert net.layers[0].act is None and [l.act for l in net.layers[1:]] == ["sigmoid", "sigmoid"]
    assert len(synaptic.mlp([6, 4, 4, 2], "linear").weights) == 3
    assert net.n_params == 10 * 4 + 1 * 11


def test_seed_dtype_and_spec_round_trip():
    a = synaptic.mlp([4, 3, 2], ["tanh", "softmax"], seed=5)
    b = synaptic.mlp([4, 3, 2], ["hyperbolic_tangent", "softmax"], seed=5)
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_array_equal(wa, wb)
    c = synaptic.mlp([4, 3, 2], ["tanh", "softmax"], seed=6)
    assert not np.array_equal(a.weights[0], c.weights[0])
    f = synaptic.mlp([4, 3, 2], ["tanh", "softmax"], seed=5, dtype=np.float32)
    assert f.weights[0].dtype == np.float32 and f.activities(np.ones(4))[-1].dtype == np.float32
    assert synaptic.neural_net(a.spec(), seed=5).spec() == a.spec()


@pytest.mark.parametrize("layers,match", [
    ([], "at least one more layer"),
    ([{"type": "input", "n": 3}], "at least one more layer"),
    ([{"type": "fully-connected", "n": 3, "act_fn": "sigmoid"}, {"type": "input", "n": 2}], "layer 0"),
    ([{"type": "input", "n": 3}, {"type": "fully-connected", "n": 2, "act_fn": "sigmoidd"}], "unknown activation"),
    ([{"type": "input", "n": 3}, {"type": "fully-connected", "n": 2}], "needs 'n' and 'act_fn'"),
    ([{"type": "input", "n": 3}, {"type": "dense", "n": 2, "act_fn": "relu"}], "unknown layer type"),
    ([{"type": "input", "n": 3}, {"type": "fully-connected", "n": 2, "act_fn": "relu", "bias": 0}], "unknown key"),
    ([{"type": "input", "n": 0}, {"type": "fully-connected", "n": 2, "act_fn": "relu"}], "positive integer"),
])
def test_bad_layer_specs(layers, match):
    with pytest.raises(ValueError, match=match):
        synaptic.neural_net(layers)


def test_input_fieldsize():
    net = synaptic.neural_net([{"type": "input", "fieldsize": [4, 3]},
                               {"type": "fully-connected", "n": 2, "act_fn": "sigmoid"}])
    assert net.n_inputs == 12 and net.layers[0].fieldsize == [1, 4, 3]


def test_bad_dtype_and_mlp_arguments():
    with pytest.raises(TypeError, match="float32 or float64"):
        synaptic.mlp([3, 2], "sigmoid", dtype=np.int32)
    with pytest.raises(ValueError, match="activations needed"):
        synaptic.mlp([3, 2, 2], ["sigmoid"])


def test_params_deep_merge_and_spellings():
    t = synaptic.training("backprop", {"learning-rate": {"adaptive": True, "ming": 0.01, "maxg": 10.0}})
    assert t.params["learning_rate"] == {"epsilon": 0.01, "adaptive": True, "ming": 0.01, "maxg": 10.0}
    assert t.params["error_fn"] == "cross-entropy"
    assert synaptic.training("rmsprop").params["rmsprop"] == {"alpha": 0.9}


@pytest.mark.parametrize("algo,params,error,match", [
    ("sgd", None, ValueError, "unknown training algorithm"),
    ("backprop", {"learning_rate": {"epsilonn": 0.1}}, ValueError, "learning_rate.epsilonn"),
    ("backprop", {"momentom": {"alpha": 0.9}}, ValueError, "unknown option 'momentom'"),
    ("backprop", {"learning_rate": {"adaptive": True}}, ValueError, "needs ming and maxg"),
    ("backprop", {"momentum": {"alpha_start": 0.5}}, ValueError, "momentum needs alpha"),
    ("backprop", {"momentum": {"alpha": 0.9, "alpha_start": 0.5}}, ValueError, "alpha_step"),
    ("backprop", {"learning_rate": {"epsilon": "fast"}}, TypeError, "finite number"),
    ("backprop", {"learning_rate": {"epsilon": -1}}, ValueError, "> 0"),
    ("backprop", {"momentum": {"alpha": 0.9, "nesterov": "yes"}}, TypeError, "True or False"),
    ("rprop", {"momentum": {"alpha": 0.9, "nesterov": True}}, ValueError, "Nesterov momentum needs"),
    ("backprop", {"regularization": {"kind": "l3", "lambda": 0.1}}, ValueError, "regularization.kind"),
    ("backprop", [("learning_rate", 1)], TypeError, "must be a dict"),
])
def test_bad_params(algo, params, error, match):
    with pytest.raises(error, match=match):
        synaptic.training(algo, params)


def test_error_kind_resolution():
    def kinds(act, algo, params=None):
        return stat_kinds(synaptic.mlp([3, 2], act, synaptic.training(algo, params)))
    assert kinds("binary-threshold", "perceptron") == ["misclassification"]
    assert kinds("sigmoid", "backprop") == ["cross-entropy-binary"]
    assert kinds("softmax", "backprop") == ["cross-entropy-multivariate"]
    assert kinds("sigmoid", "backprop", {"error-fn": "sum-of-squares"}) == ["sum-of-squares"]
    net = synaptic.mlp([3, 2], "binary-threshold", synaptic.training("perceptron"))
    init_stats(net)
    assert net.stats.tr_err == {"misclassification": []} == net.stats.val_err
    sig = synaptic.mlp([3, 2], "sigmoid", synaptic.training(
        "backprop", {"stats": {"errorkinds": ["misclassification", "cross-entropy-binary"]}}))
    init_stats(sig)
    assert set(sig.stats.tr_err) == {"misclassification", "cross-entropy-binary"}


def test_bad_input_to_the_forward_pass():
    net = synaptic.mlp([3, 2], "sigmoid")
    with pytest.raises(ValueError, match="3 inputs"):
        synaptic.estimate(net, np.ones((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        synaptic.estimate(net, [[1.0, np.nan, 0.0]])
    with pytest.raises(TypeError, match="numeric"):
        synaptic.estimate(net, [["a", "b", "c"]])
    with pytest.raises(ValueError, match="2-D"):
        synaptic.estimate(net, np.ones((2, 3, 1)))


def test_train_rejects_mismatched_data_and_nets_without_training():
    trset = synaptic.training_set([[0, 1], [1, 0], [1, 1]], ["a", "b", "c"], rand=False)
    with pytest.raises(ValueError, match="has no training"):
        synaptic.train(synaptic.mlp([2, 3], "softmax"), trset, 1)
    with pytest.raises(ValueError, match="3 classes"):
        synaptic.train(synaptic.mlp([2, 2], "softmax", synaptic.training("backprop")), trset, 1)
    with pytest.raises(ValueError, match="2 values"):
        synaptic.train(synaptic.mlp([3, 3], "softmax", synaptic.training("backprop")), trset, 1)
    with pytest.raises(ValueError, match="epochs"):
        synaptic.train(synaptic.mlp([2, 3], "softmax", synaptic.training("backprop")), trset, -1)
    with pytest.raises(TypeError, match="TrainingSet"):
        synaptic.train(synaptic.mlp([2, 3], "softmax", synaptic.training("backprop")), [[0, 1]], 1)
    with pytest.raises(ValueError, match="backprop cannot train"):
        synaptic.train(synaptic.mlp([2, 3], "hyperbolic-tangent", synaptic.training("backprop")), trset, 1)


def test_threads_and_backend_knobs():
    with synaptic.num_threads(1):
        assert synaptic.get_num_threads() == 1
    with pytest.raises(ValueError):
        synaptic.set_num_threads(0)
    with pytest.raises(TypeError):
        synaptic.set_num_threads(1.5)
    with pytest.raises(ValueError, match="unknown backend"):
        synaptic.set_backend("cuda")
    with synaptic.backend("numpy"):
        assert synaptic.get_backend() == "numpy"
    config = synaptic.show_config()
    assert config["backend"] in ("native", "numpy") and config["blas"]
