"""Continuous targets (issue 14, item 7): ``training_set(x, targets=y)`` or
``training_set(x, y, continuous=True)`` keeps real-valued targets, optionally scaled
(``target_scaling``) on the training rows; the net trains on them with sum-of-squares, notes
the scaling, and ``estimate`` returns values in the user's units; stats kinds mse / mae are
in the user's units; class-only kinds are refused."""
import json
import zipfile

import numpy as np
import pytest

import synaptic
from synaptic import persist
from synaptic.datasets import check_target_scaling

from helpers import BACKENDS, using

TIMEOUT = 120
REG = {"error_fn": "sum-of-squares", "stats": {"errorkinds": ["mse", "mae", "sum-of-squares"]}}
FITS = {  # algorithm -> (params, batch, epochs)
    "backprop": ({"learning_rate": {"epsilon": 0.05}, "momentum": {"alpha": 0.9}}, 20, 300),
    "rprop": ({}, None, 300),
    "rmsprop": ({"learning_rate": {"epsilon": 0.003}}, 20, 300),
    "lbfgs": ({"lbfgs": {"eps": 1e-6}}, None, 300),
}


@pytest.fixture(autouse=True)
def data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path / "data"))


def sine(n=400, **kw):
    x = np.linspace(-3, 3, n).reshape(-1, 1)
    kw = {"target_scaling": "standard", "nvalid": 40, "seed": 0, **kw}
    return x, synaptic.training_set(x, targets=np.sin(x).ravel(), **kw)


def regressor(algo="backprop", params=None, units=(1, 20, 1), dtype=np.float64):
    p = {**REG, **(FITS[algo][0] if params is None else params)}
    return synaptic.mlp(list(units), ["tanh", "linear"], synaptic.training(algo, p),
                        dtype=dtype, seed=1)


def train(net, trset, epochs):
    return synaptic.train(net, trset, epochs).result(timeout=TIMEOUT)


# the set ----------------------------------------------------------------------------------

def test_one_dimensional_targets_are_one_column_of_values():
    y = np.array([3.5, -1.25, 7.0, 0.0])
    for trset in (synaptic.training_set(np.eye(4), targets=y, rand=False),
                  synaptic.training_set(np.eye(4), y, continuous=True, rand=False),
                  synaptic.training_set(np.eye(4), list(y), continuous=True, rand=False)):
        assert trset.continuous and trset.labels is None and "labels" not in trset.header
        np.testing.assert_array_equal(trset.y, y.reshape(-1, 1))
        assert trset.target_scaling == {"scaling": None, "ndim": 1, "offset": [0.0],
                                        "scale": [1.0]}
        assert trset.header["batches"] == [{"rows": 4}] and trset.header["valid"] == {}


def test_two_dimensional_targets_are_several_columns():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 3)) * [1, 10, 100]
    trset = synaptic.training_set(rng.normal(size=(30, 2)), targets=y, nvalid=5, batch=10,
                                  rand=False, dtype=np.float32)
    assert trset.y.shape == (25, 3) and trset.y.dtype == np.float32
    np.testing.assert_array_equal(trset.y, y[:25].astype(np.float32))
    np.testing.assert_array_equal(trset.valid.y, y[25:].astype(np.float32))
    assert trset.target_scaling["ndim"] == 2 and trset.header["valid"] == {"rows": 5}
    assert [b["rows"] for b in trset.header["batches"]] == [10, 10, 5]


def test_a_shuffled_set_keeps_samples_and_targets_together():
    x = np.arange(50.0).reshape(-1, 1)
    trset = synaptic.training_set(x, targets=2 * x.ravel() + 1, seed=3, nvalid=10)
    np.testing.assert_array_equal(trset.y, 2 * trset.x + 1)
    np.testing.assert_array_equal(trset.valid.y, 2 * trset.valid.x + 1)
    assert not np.array_equal(trset.x.ravel(), np.arange(40.0))


@pytest.mark.parametrize("kind", ["minmax", "standard"])
def test_the_scaling_is_fitted_on_the_training_rows(kind):
    rng = np.random.default_rng(1)
    y = np.column_stack([rng.normal(5, 3, 60), rng.uniform(-100, 10, 60), np.full(60, 7.0)])
    trset = synaptic.training_set(rng.normal(size=(60, 4)), targets=y, target_scaling=kind,
                                  nvalid=15, rand=False)
    train_y = y[:45]
    rec = trset.target_scaling
    if kind == "minmax":
        np.testing.assert_allclose(rec["offset"], train_y.min(axis=0))
        np.testing.assert_allclose(rec["scale"][:2], np.ptp(train_y, axis=0)[:2])
        assert trset.y[:, :2].min() == 0 and trset.y[:, :2].max() == 1
    else:
        np.testing.assert_allclose(rec["offset"], train_y.mean(axis=0))
        np.testing.assert_allclose(rec["scale"][:2], train_y.std(axis=0)[:2])
        np.testing.assert_allclose(trset.y[:, :2].mean(axis=0), 0, atol=1e-12)
        np.testing.assert_allclose(trset.y[:, :2].std(axis=0), 1)
    assert rec["scale"][2] == 1.0 and rec["offset"][2] == 7.0  # a constant column: offset only
    np.testing.assert_allclose(trset.y * rec["scale"] + rec["offset"], train_y)
    # the validation rows are scaled with the training rows' fit (not their own)
    np.testing.assert_allclose(trset.valid.y * rec["scale"] + rec["offset"], y[45:])
    assert trset.valid.y[:, :2].min() != 0 or kind == "standard"


def test_a_record_scales_another_set_the_same_way():
    _, first = sine()
    x = np.linspace(0, 1, 30).reshape(-1, 1)
    other = synaptic.training_set(x, targets=5 + x.ravel(), target_scaling=first.target_scaling)
    assert other.target_scaling == first.target_scaling
    rec = first.target_scaling
    np.testing.assert_allclose(other.y * rec["scale"] + rec["offset"], 5 + other.x)
    with pytest.raises(ValueError, match="a record of 1-D targets, these are 2-D"):
        synaptic.training_set(x, targets=np.c_[x], target_scaling=rec)
    with pytest.raises(ValueError, match="1 offsets and 1 scales .* for 2 target columns"):
        synaptic.training_set(x, targets=np.c_[x, x], target_scaling=dict(rec, ndim=2))


def test_rebatch_astype_and_save_keep_the_targets():
    _, trset = sine(name="sine")
    again = trset.rebatch(7)
    assert again.continuous and again.header["batches"][0] == {"rows": 7}
    np.testing.assert_array_equal(again.y, trset.y)
    assert trset.astype(np.float32).target_scaling == trset.target_scaling
    synaptic.save_training_set(trset)
    loaded = synaptic.load_training_set("sine")
    assert loaded.target_scaling == trset.target_scaling and loaded.continuous
    np.testing.assert_array_equal(loaded.y, trset.y)
    np.testing.assert_array_equal(loaded.valid.y, trset.valid.y)
    assert synaptic.load_training_set_header("sine")["targets"] == trset.target_scaling


@pytest.mark.parametrize("kwargs, error, match", [
    ({"targets": [1.0, np.nan, 2.0]}, ValueError, "targets row 1 holds NaN or infinity"),
    ({"targets": [1.0, 2.0, np.inf]}, ValueError, "targets row 2 holds NaN or infinity"),
    ({"targets": [1.0, 2.0]}, ValueError, "3 samples and 2 targets"),
    ({"targets": np.zeros((3, 2, 1))}, ValueError, r"1-D .* or 2-D .* got shape \(3, 2, 1\)"),
    ({"targets": np.zeros((3, 0))}, ValueError, "targets have no columns"),
    ({"targets": 3.0}, TypeError, "targets must be a sequence of numbers, got float"),
    ({"targets": ["a", "b", "c"]}, TypeError, "targets must be numbers, got dtype <U1"),
    ({"targets": [1j, 2, 3]}, TypeError, "targets must be real numbers"),
    ({"targets": [[1, 2], [3], [4, 5]]}, ValueError, "rows have different lengths"),
    ({"targets": [1, 2, 3], "target_scaling": "zscore"}, ValueError,
     "unknown target_scaling 'zscore'; known: 'minmax', 'standard', None"),
    ({"targets": [1, 2, 3], "target_scaling": 1}, TypeError, "target_scaling must be"),
    ({"targets": [1, 2, 3], "target_scaling": {"scaling": "minmax"}}, ValueError,
     "must hold exactly scaling, ndim, offset, scale"),
    ({"targets": [1, 2, 3], "target_scaling": {"scaling": None, "ndim": 1, "offset": [0],
                                               "scale": [0]}}, ValueError, "scales must be > 0"),
    ({"labels": [0, 1, 0], "target_scaling": "minmax"}, ValueError,
     "target_scaling 'minmax' needs continuous targets"),
    ({"labels": [0, 1, 0], "targets": [1, 2, 3]}, TypeError, "labels .* or targets .*not both"),
    ({}, TypeError, "needs labels .* or continuous targets"),
    ({"labels": [1, 2, 3], "continuous": "yes"}, TypeError, "continuous must be True or False"),
    ({"targets": [1e308, -1e308, 0], "target_scaling": "minmax"}, ValueError,
     "span too wide a range"),
])
def test_bad_targets_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        synaptic.training_set(np.eye(3), **kwargs)


def test_float32_overflow_of_a_target_is_refused():
    with pytest.raises(ValueError, match="targets row 1 is not finite once scaled"):
        synaptic.training_set(np.eye(2), targets=[1.0, 1e300], rand=False, dtype=np.float32)


def test_float_labels_that_look_continuous_point_at_continuous_true():
    y = np.linspace(0, 1, 40)
    with pytest.raises(ValueError, match=r"labels look continuous .*pass continuous=True"):
        synaptic.training_set(np.c_[y], y)
    with pytest.raises(ValueError, match="pass continuous=True or targets=y"):
        synaptic.training_set(np.c_[y], np.c_[y, y])
    assert synaptic.training_set(np.c_[y], y, continuous=True).continuous


def test_a_header_with_a_bad_record_is_refused():
    _, trset = sine()
    trset.header["targets"] = dict(trset.header["targets"], scale=[-1.0])
    with pytest.raises(ValueError, match="the header's targets: the scales must be > 0"):
        trset.validate()
    _, trset = sine()
    trset.header["labels"] = [0]
    with pytest.raises(ValueError, match="labels .* and targets .* one or the other"):
        trset.validate()


def test_a_continuous_set_is_not_checked_as_one_hot_but_a_class_set_still_is():
    _, trset = sine()
    trset.validate()  # values like -1.3 in y
    bad = synaptic.training_set(np.eye(3), [0, 1, 2])
    bad.header["labels"] = [0, 1, 2]
    bad._y[0, 0] = 0.5
    bad._check[0] = False
    with pytest.raises(ValueError, match="not one-hot"):
        bad.validate()


# training ---------------------------------------------------------------------------------

@pytest.mark.parametrize("algo", list(FITS))
def test_a_net_fits_the_sine(algo):
    x, trset = sine(batch=FITS[algo][1])
    net = train(regressor(algo), trset, FITS[algo][2])
    pred = synaptic.estimate(net, x)
    assert pred.shape == (len(x),) and pred.dtype == np.float64
    mse = float(np.mean((pred - np.sin(x).ravel()) ** 2))
    assert mse < 1e-3, mse  # the sine has variance 0.5: this is a fit, not a mean
    assert net.stats.tr_err["mse"][-1] < 1e-3 and net.stats.val_err["mse"][-1] < 1e-3
    assert net.stats.tr_err["mse"][-1] < net.stats.tr_err["mse"][0] / 10
    assert net.header["targets"] == trset.target_scaling and "labels" not in net.header


def test_estimate_undoes_the_scaling_and_returns_the_net_outputs_otherwise():
    x, trset = sine(target_scaling="minmax")
    net = train(regressor("rprop"), trset, 5)
    raw = synaptic.net_activities(net, x)[-1]
    rec = trset.target_scaling
    np.testing.assert_allclose(synaptic.estimate(net, x), raw[:, 0] * rec["scale"][0]
                               + rec["offset"][0], rtol=1e-12)
    _, plain = sine(target_scaling=None)
    net = train(regressor("rprop"), plain, 5)
    np.testing.assert_array_equal(synaptic.estimate(net, x), synaptic.net_activities(net, x)[-1][:, 0])


def test_several_outputs_in_their_own_units():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 2))
    y = np.column_stack([1000 + 300 * x[:, 0], -0.01 * x[:, 1], 5 * x[:, 0] * x[:, 1]])
    trset = synaptic.training_set(x, targets=y, target_scaling="standard", nvalid=30, seed=0)
    net = train(regressor("lbfgs", units=(2, 10, 3)), trset, 300)
    pred = synaptic.estimate(net, x)
    assert pred.shape == (300, 3)
    err = np.abs(pred - y).mean(axis=0) / y.std(axis=0)
    assert (err < 0.05).all(), err


def test_mse_and_mae_are_in_the_users_units_whatever_the_scaling():
    """The same fit reported under three scalings: mse and mae from the stats, from
    training_error and computed here from estimate agree; sum-of-squares is in the scaled
    units (a loss)."""
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, size=(80, 3))
    y = 50 + 20 * x @ [1.0, -2.0, 0.5]
    for kind in (None, "minmax", "standard"):
        trset = synaptic.training_set(x, targets=y, target_scaling=kind, rand=False, nvalid=20)
        net = train(regressor("rprop", units=(3, 4, 1)), trset, 3)
        tr_x, tr_y = trset.x, y[:60]
        pred = synaptic.estimate(net, tr_x)
        assert net.stats.tr_err["mse"][-1] == pytest.approx(np.mean((pred - tr_y) ** 2), rel=1e-9)
        assert net.stats.tr_err["mae"][-1] == pytest.approx(np.mean(np.abs(pred - tr_y)), rel=1e-9)
        vpred = synaptic.estimate(net, trset.valid.x)
        assert net.stats.val_err["mae"][-1] == pytest.approx(np.mean(np.abs(vpred - y[60:])),
                                                             rel=1e-9)
        assert synaptic.training_error("mse", net, trset) == pytest.approx(
            net.stats.tr_err["mse"][-1], rel=1e-12)
        scale = trset.target_scaling["scale"][0]
        sse = np.sum(((pred - tr_y) / scale) ** 2) / 60  # in the scaled units, per sample
        assert net.stats.tr_err["sum-of-squares"][-1] == pytest.approx(sse, rel=1e-9)


def test_mse_averages_over_the_outputs():
    y = np.array([[1.0, 3.0], [2.0, 5.0]])
    trset = synaptic.training_set(np.eye(2), targets=y, rand=False)
    net = synaptic.mlp([2, 2], "linear", synaptic.training("rprop", REG), seed=0)
    out = synaptic.net_activities(net, trset)[-1]
    assert synaptic.training_error("mse", net, trset) == pytest.approx(np.mean((out - y) ** 2))
    assert synaptic.training_error("mae", net, trset) == pytest.approx(np.mean(np.abs(out - y)))
    assert synaptic.training_error("sum-of-squares", net, trset) == pytest.approx(
        np.sum((out - y) ** 2) / 2)


def test_mse_and_mae_on_classes_too():
    trset = synaptic.training_set([[0, 0], [1, 1]], [0, 1], rand=False)
    net = synaptic.mlp([2, 2], "softmax", seed=1)
    out = synaptic.net_activities(net, trset)[-1]
    assert synaptic.training_error("mse", net, trset) == pytest.approx(
        np.mean((out - trset.y) ** 2))
    net = synaptic.mlp([2, 2], "softmax", synaptic.training(
        "backprop", {"stats": {"errorkinds": ["mae", "accuracy"]}}), seed=1)
    assert set(train(net, trset, 2).stats.tr_err) == {"mae", "accuracy"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_kernel_and_twin_agree_on_a_regression(backend):
    x, trset = sine(batch=20)
    with using(backend):
        net = train(regressor("backprop"), trset, 5)
    with using("numpy"):
        ref = train(regressor("backprop"), trset, 5)
    for a, b in zip(net.weights, ref.weights):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("params, match", [
    ({"error_fn": "cross-entropy"}, "error_fn 'cross-entropy' needs class targets"),
    ({"error_fn": "sum-of-squares", "stats": {"errorkinds": ["accuracy"]}},
     "stats.errorkinds 'accuracy' needs class targets"),
    ({"error_fn": "sum-of-squares", "stats": {"errorkinds": ["mse", "misclassification"]}},
     "'misclassification' needs class targets"),
    ({"error_fn": "sum-of-squares", "stats": {"errorkinds": ["argmax-misclassification"]}},
     "'argmax-misclassification' needs class targets"),
    ({"error_fn": "sum-of-squares", "stats": {"errorkinds": ["cross-entropy"]}},
     "'cross-entropy-binary' needs class targets"),
])
def test_class_only_options_on_continuous_targets_are_refused_at_train_time(params, match):
    _, trset = sine()
    net = synaptic.mlp([1, 3, 1], ["tanh", "sigmoid"], synaptic.training("backprop", params))
    with pytest.raises(ValueError, match=match):
        synaptic.train(net, trset, 1)
    assert net.state is None and net.stats is None


def test_the_perceptron_is_refused_on_continuous_targets():
    _, trset = sine()
    net = synaptic.mlp([1, 1], "binary-threshold", synaptic.training("perceptron"))
    with pytest.raises(ValueError, match="perceptron learns classes"):
        synaptic.train(net, trset, 1)


def test_training_error_refuses_class_kinds_on_continuous_targets():
    _, trset = sine()
    with pytest.raises(ValueError, match="'accuracy' needs class targets"):
        synaptic.training_error("accuracy", regressor(), trset)


def test_the_columns_message_talks_about_target_columns():
    _, trset = sine()
    with pytest.raises(ValueError, match="the training set has 1 target columns, the net has 2 "
                                         "outputs"):
        synaptic.train(regressor(units=(1, 3, 2)), trset, 1)
    classes = synaptic.training_set(np.eye(3), [0, 1, 2])
    with pytest.raises(ValueError, match=r"3 classes \(labels \[0, 1, 2\]\), the net has 1"):
        synaptic.train(regressor(units=(3, 2, 1)), classes, 1)


def test_a_net_keeps_to_one_kind_of_target_and_one_scaling():
    x, trset = sine()
    net = train(regressor("rprop"), trset, 1)
    classes = synaptic.training_set(x, (x[:, 0] > 0).astype(int))
    two = regressor("rprop", units=(1, 3, 2))
    two.header["targets"] = dict(trset.target_scaling)  # as if trained on continuous targets
    with pytest.raises(ValueError, match="trained on continuous targets .* holds classes"):
        synaptic.train(two, classes, 1)
    labelled = regressor("rprop")
    labelled.header["labels"] = [0]  # as if trained on classes
    with pytest.raises(ValueError, match=r"trained on classes \(labels \[0\]\); .* continuous"):
        synaptic.train(labelled, trset, 1)
    _, minmax = sine(target_scaling="minmax")
    with pytest.raises(ValueError, match="target_scaling=net.header\\['targets'\\]"):
        synaptic.train(net, minmax, 1)
    same = synaptic.training_set(x, targets=np.sin(x).ravel(),
                                 target_scaling=net.header["targets"])
    train(net, same, 1)  # the same scaling: fine
    assert net.stats.epochs == 2


# persistence ------------------------------------------------------------------------------

@pytest.mark.parametrize("algo", ["backprop", "lbfgs"])
def test_a_saved_regression_net_estimates_the_same_and_resumes_exactly(algo):
    x, trset = sine(batch=FITS[algo][1], reshuffle=algo == "backprop")
    straight = train(regressor(algo), trset, 6)
    net = train(regressor(algo), trset, 3)
    synaptic.save_neural_net(net, "reg")
    loaded = synaptic.load_neural_net("reg")
    assert loaded.header["targets"] == trset.target_scaling
    np.testing.assert_array_equal(synaptic.estimate(loaded, x), synaptic.estimate(net, x))
    assert loaded.stats.tr_err["mse"] == net.stats.tr_err["mse"]
    train(loaded, trset, 3)
    if algo == "backprop":  # (L-BFGS restarts from the saved weights: not the same run)
        for a, b in zip(loaded.weights, straight.weights):
            np.testing.assert_array_equal(a, b)
        assert loaded.stats.tr_err["mae"] == straight.stats.tr_err["mae"]


def _edit_net_header(path, edit):
    with zipfile.ZipFile(path) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    raw = entries["__meta__.npy"]
    arr = np.load(__import__("io").BytesIO(raw), allow_pickle=False)
    doc = json.loads(arr.tobytes().decode())
    edit(doc["header"])
    buf = __import__("io").BytesIO()
    np.save(buf, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8), allow_pickle=False)
    entries["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)


@pytest.mark.parametrize("edit, match", [
    (lambda h: h["targets"].update(scale=[0.0]), "'header.targets': the scales must be > 0"),
    (lambda h: h["targets"].update(offset=[1.0, 2.0]), "2 offsets and 1 scales"),
    (lambda h: h["targets"].update(scaling="log"), "unknown scaling 'log'"),
    (lambda h: h.update(labels=[0]), "holds labels and targets"),
    (lambda h: h.update(targets=[1]), "'header.targets' must be a dict"),
])
def test_a_damaged_targets_record_of_a_saved_net_is_refused(data_folder, tmp_path, edit, match):
    _, trset = sine()
    net = train(regressor("rprop"), trset, 1)
    synaptic.save_neural_net(net, "reg")
    _edit_net_header(tmp_path / "data" / "neuralnet.reg", edit)
    with pytest.raises(persist.FileFormatError, match=match):
        synaptic.load_neural_net("reg")


def test_check_target_scaling_normalises_numbers():
    rec = check_target_scaling({"scaling": None, "ndim": np.int64(2), "offset": [1, 2],
                                "scale": [np.float32(3), 4]}, 2)
    assert rec == {"scaling": None, "ndim": 2, "offset": [1.0, 2.0], "scale": [3.0, 4.0]}
    with pytest.raises(ValueError, match="ndim must be 1 or 2"):
        check_target_scaling({"scaling": None, "ndim": True, "offset": [1], "scale": [1]})
    with pytest.raises(ValueError, match="finite numbers"):
        check_target_scaling({"scaling": None, "ndim": 1, "offset": [np.nan], "scale": [1]})
