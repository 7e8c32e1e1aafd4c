"""One validation door for data (issue 13, item 2): every DataSet / TrainingSet, however built
or loaded, is checked (finite, real, 2-D, matching lengths, one-hot targets) before training
or estimating, once per object; complex input is a TypeError; ``estimate`` refuses a net
whose weights are not finite."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import synaptic
from synaptic import datasets, persist
from synaptic.datasets import DataSet, TrainingSet


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def parts(n=8, d=3, c=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)), np.eye(c)[rng.integers(0, c, n)]


def direct(x, y, valid=None, header=None, batch=4):
    """A TrainingSet built from its parts, as a user (or a file) may."""
    batches = [DataSet(x[a:a + batch], y[a:a + batch]) for a in range(0, len(x), batch)]
    return TrainingSet({"labels": [0, 1]} if header is None else header, batches, valid)


def net_for(d=3, c=2, dtype=np.float64):
    return synaptic.mlp([d, c], "softmax", synaptic.training("backprop"), dtype=dtype, seed=1)


def refused(trset, error, match, dtype=np.float64):
    """train refuses ``trset`` in the caller's thread: nothing trained, the net idle."""
    net = net_for(trset.x.shape[1], dtype=dtype)
    before = [w.copy() for w in net.weights]
    with pytest.raises(error, match=match):
        synaptic.train(net, trset, 1)
    assert net.state is None and net.stats is None
    for a, b in zip(before, net.weights):
        np.testing.assert_array_equal(a, b)


def with_value(a, row, col, value):
    a = a.copy()
    a[row, col] = value
    return a


# the doors that build data ---------------------------------------------------------------

@pytest.mark.parametrize("x, y, error, match", [
    (np.ones((3, 2)) * 1j, None, TypeError, "complex"),
    (np.ones((3, 2)), np.eye(3, 2) * (1 + 1j), TypeError, "complex"),
    (np.ones(3), None, ValueError, "2-D"),
    (np.ones((2, 2, 2)), None, ValueError, "2-D"),
    (np.ones((3, 2)), np.ones(3), ValueError, "y must be 2-D with 3 rows"),
    (np.ones((3, 2)), np.eye(2), ValueError, "y must be 2-D with 3 rows"),
    (np.array([["a", "b"]]), None, TypeError, "numeric"),
    (np.ones((1, 2), dtype=object), None, TypeError, "numeric"),
])
def test_a_dataset_is_real_2d_and_of_matching_lengths(x, y, error, match):
    with pytest.raises(error, match=match):
        DataSet(x, y)


@pytest.mark.parametrize("samples, error, match", [
    (np.ones((3, 2)) * 1j, TypeError, "numeric"),
    ([[1.0, np.nan]], ValueError, "NaN"),
    ([[1.0, -np.inf]], ValueError, "NaN or infinite"),
    ([1.0, 2.0], ValueError, "2-D"),
])
def test_the_building_functions_refuse_bad_samples(samples, error, match):
    with pytest.raises(error, match=match):
        synaptic.dataset(samples)
    with pytest.raises(error, match=match):
        synaptic.test_set(samples)
    with pytest.raises(error, match=match):
        synaptic.training_set(samples, list(range(len(samples))))


# train: every TrainingSet is checked -----------------------------------------------------

X, Y = parts()


@pytest.mark.parametrize("make, error, match", [
    (lambda: direct(with_value(X, 5, 1, np.nan), Y), ValueError, "x row 5 holds NaN"),
    (lambda: direct(with_value(X, 0, 0, np.inf), Y), ValueError, "x row 0 holds NaN or infinity"),
    (lambda: direct(X, with_value(Y, 2, 0, np.nan), Y), ValueError, "y row 2"),
    (lambda: direct(X, np.ones_like(Y)), ValueError, "y row 0 is not one-hot"),
    (lambda: direct(X, with_value(with_value(Y, 3, 0, 0.5), 3, 1, 0.5)), ValueError,
     r"y row 3 is not one-hot.*0\.5"),
    (lambda: direct(X, with_value(with_value(Y, 7, 0, 2), 7, 1, 0)), ValueError, "y row 7"),
    (lambda: direct(X, with_value(with_value(Y, 1, 0, -1), 1, 1, 1)), ValueError, "y row 1"),
    (lambda: direct(X, np.zeros_like(Y)), ValueError, "y row 0 is not one-hot"),
    (lambda: direct(X, Y, valid=DataSet(with_value(X[:2], 1, 2, np.nan), Y[:2])), ValueError,
     "valid.x row 1 holds NaN"),
    (lambda: direct(X, Y, valid=DataSet(X[:2], np.ones((2, 2)))), ValueError,
     "valid.y row 0 is not one-hot"),
    (lambda: direct(X, Y, valid=DataSet(X[:2, :2], Y[:2])), ValueError,
     "valid.x has 2 columns, x has 3"),
    (lambda: direct(X, Y, valid=DataSet(X[:2], np.eye(2, 3))), ValueError,
     "valid.y has 3 columns, y has 2"),
    (lambda: direct(X, Y, valid=DataSet(X[:2])), ValueError, "labelled exactly when"),
    (lambda: direct(X, Y, valid=X[:2]), TypeError, "valid must be a DataSet"),
    (lambda: direct(X, Y, header={"labels": "01"}), TypeError, "labels must be a list"),
    (lambda: direct(X, Y, header={"labels": [0, 1, 2]}), ValueError, "3 labels but y has 2"),
    (lambda: TrainingSet(None, [DataSet(X, Y)]),
     TypeError, "header must be a dict"),
    (lambda: TrainingSet({}, [DataSet(X, Y), DataSet(X[:0], Y[:0])]), ValueError,
     "batch 1 is empty"),
])
def test_train_refuses_a_bad_training_set_however_built(make, error, match):
    refused(make(), error, match)


def test_a_replaced_validation_set_or_array_is_checked_again():
    trset = direct(X, Y, valid=DataSet(X[:2], Y[:2]))
    synaptic.train(net_for(), trset, 1).result(timeout=30)
    trset.valid = DataSet(with_value(X[:2], 0, 0, np.nan), Y[:2])
    refused(trset, ValueError, "valid.x row 0")
    trset.valid = DataSet(X[:2], Y[:2])
    trset.valid.x = with_value(X[:2], 1, 0, np.inf)
    refused(trset, ValueError, "valid.x row 1")
    trset.valid.x = np.ones((2, 3)) * 1j
    refused(trset, TypeError, "valid.x is complex")


def test_samples_that_overflow_the_nets_float32_are_refused():
    trset = direct(with_value(X, 4, 2, 1e300), Y)
    refused(trset, ValueError, "x row 4 holds NaN or infinity once converted to the net's "
                               "float32", dtype=np.float32)


def test_a_single_zero_one_column_and_a_header_without_labels_train():
    """The original's one-unit perceptron vectors: targets [[1], [0], ...] built from parts."""
    x = np.array([[2, 0], [1, 1], [0, 1], [4, 1], [1, 2]], float)
    trset = TrainingSet({}, [DataSet(x, np.array([[1], [1], [0], [0], [0]], float))])
    net = synaptic.mlp([2, 1], "binary-threshold", synaptic.training("perceptron"))
    synaptic.train(net, trset, 1).result(timeout=30)
    assert net.labels is None and synaptic.estimate(net, x).tolist() == [0] * 5
    bad = TrainingSet({}, [DataSet(x, np.array([[1], [0.5], [0], [0], [0]]))])
    with pytest.raises(ValueError, match="y row 1 is not one-hot"):
        synaptic.train(net, bad, 1)


def test_the_check_runs_once_per_set(monkeypatch):
    calls = []
    check = datasets._check_values
    monkeypatch.setattr(datasets, "_check_values", lambda *a, **k: calls.append(a) or check(*a, **k))
    trset = direct(X, Y, valid=DataSet(X[:2], Y[:2]))
    net = net_for()
    for _ in range(5):
        synaptic.train(net, trset, 1).result(timeout=30)
        synaptic.estimate(net, trset)
        synaptic.estimate(net, trset.valid)
        synaptic.training_error("cross-entropy", net, trset)
    assert len(calls) == 2  # the set's block once, its validation set once
    t32 = trset.astype(np.float32)
    synaptic.train(net_for(dtype=np.float32), trset, 1).result(timeout=30)
    synaptic.train(net_for(dtype=np.float32), t32, 1).result(timeout=30)
    assert len(calls) == 4  # the float32 copy is checked once too (an overflow shows there)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 30), d=st.integers(1, 6), batch=st.integers(1, 8),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), where=st.floats(0, 0.999),
       in_valid=st.booleans())
def test_a_non_finite_sample_anywhere_is_found(n, d, batch, value, where, in_valid):
    x, y = parts(n, d, 2, seed=n * d)
    vx, vy = x[: max(1, n // 3)].copy(), y[: max(1, n // 3)]
    target = vx if in_valid else x
    row = int(where * len(target))
    target[row, int(where * d)] = value
    trset = direct(x, y, valid=DataSet(vx, vy), batch=batch)
    name = "valid.x" if in_valid else "x"
    net = synaptic.mlp([d, 2], "softmax", synaptic.training("backprop"), seed=1)
    with pytest.raises(ValueError, match=rf"^{name} row {row} holds NaN or infinity"):
        synaptic.train(net, trset, 1)
    assert net.state is None
    with pytest.raises(ValueError, match="NaN or infinity"):
        synaptic.estimate(net, trset.valid if in_valid else trset)


# a set loaded from a file ------------------------------------------------------------------

@pytest.mark.parametrize("x, y, match", [
    (with_value(X, 6, 0, np.nan), Y, "x row 6 holds NaN"),
    (X, np.ones_like(Y), "y row 0 is not one-hot"),
    (X, with_value(Y, 0, 0, 7), "y row 0 is not one-hot"),
])
def test_a_loaded_set_is_checked(data, x, y, match):
    synaptic.save_training_set(direct(x, y, header={"labels": [0, 1], "name": "bad"}))
    with pytest.raises(persist.FileFormatError, match=match):
        synaptic.load_training_set("bad")


# estimating ----------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    synaptic.estimate, synaptic.net_activities, lambda net, x: net.predict_proba(x),
    lambda net, x: synaptic.accuracy(net, DataSet(x, np.eye(2)[[0, 1, 0, 1]])),
])
def test_complex_input_is_a_type_error_not_a_warning(call):
    net = net_for()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the old ComplexWarning would fail here instead
        with pytest.raises(TypeError, match="complex"):
            call(net, np.ones((4, 3)) * (1 + 2j))


@pytest.mark.parametrize("call", [
    synaptic.estimate, synaptic.net_activities, synaptic.accuracy, synaptic.error_derivatives,
])
def test_the_estimating_functions_check_a_data_set(call):
    bad = DataSet(with_value(X[:4], 2, 1, np.nan), Y[:4])
    with pytest.raises(ValueError, match="x row 2 holds NaN"):
        call(net_for(), bad)
    bad = DataSet(X[:4], with_value(Y[:4], 1, 1, np.inf))
    with pytest.raises(ValueError, match="y row 1 holds NaN"):
        call(net_for(), bad)


def test_training_error_checks_its_set():
    with pytest.raises(ValueError, match="x row 3 holds NaN"):
        synaptic.training_error("cross-entropy", net_for(), direct(with_value(X, 3, 0, np.nan), Y))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("layer", [0, 1])
def test_estimate_refuses_a_net_whose_weights_are_not_finite(value, layer):
    net = synaptic.mlp([3, 4, 2], ["sigmoid", "softmax"], seed=1)
    net.weights[layer][1, 2] = value
    with pytest.raises(ValueError, match=f"layer {layer + 1}'s weights hold NaN or infinity "
                                         r"\(1 of \d+ values\)"):
        synaptic.estimate(net, X)
    net.weights[layer][1, 2] = 0.0
    assert synaptic.estimate(net, X).shape == (len(X),)


def test_a_net_trained_to_nan_weights_cannot_estimate():
    """The hostile case end to end: before, a NaN set trained to NaN weights and estimate
    still returned labels."""
    trset = direct(X, Y)
    net = net_for()
    synaptic.train(net, trset, 1).result(timeout=30)
    net.weights[0][...] = np.nan  # as divergence would leave them
    with pytest.raises(ValueError, match="layer 1's weights"):
        synaptic.estimate(net, trset)
