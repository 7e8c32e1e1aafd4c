"""The on_nonfinite option (issue 13, item 3): validated, documented, saved and loaded with the
net, as stats.diverged is."""
import io
import json
import zipfile

import numpy as np
import pytest

import synaptic
from synaptic import DataSet, TrainingSet
from synaptic.persist import FileFormatError

ALGOS = ["perceptron", "backprop", "rprop", "rmsprop", "lbfgs"]


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("SYNAPTIC_DATA", str(folder))
    return folder


@pytest.mark.parametrize("algo", ALGOS)
@pytest.mark.parametrize("policy", ["raise", "stop", "ignore"])
def test_every_algorithm_takes_each_policy(algo, policy):
    assert synaptic.training(algo, {"on-nonfinite": policy}).params["on_nonfinite"] == policy


def test_the_default_is_raise_and_is_not_merged_into_the_params():
    assert "on_nonfinite" not in synaptic.training("backprop").params
    doc = synaptic.training.__doc__
    assert "``on_nonfinite`` : str, default 'raise'" in doc and "TrainingDiverged" in doc


def test_an_unknown_policy_is_refused_naming_the_allowed_ones():
    with pytest.raises(ValueError, match="on_nonfinite must be one of 'raise', 'stop', 'ignore', "
                                         "got 'warn'"):
        synaptic.training("backprop", {"on_nonfinite": "warn"})
    with pytest.raises(TypeError, match="'on_nonfinite' must be a string"):
        synaptic.training("rprop", {"on_nonfinite": False})


def diverged_net():
    """A net trained with on_nonfinite "stop" on a set whose batch 2 overflows."""
    x = np.random.default_rng(0).normal(size=(40, 5))
    x[16:24] *= 1e200
    y = np.eye(2)[(x[:, 0] > 0).astype(int)]
    trset = TrainingSet({"labels": [0, 1]}, [DataSet(x[i:i + 8], y[i:i + 8]) for i in range(0, 40, 8)])
    params = {"error_fn": "sum-of-squares", "on_nonfinite": "stop",
              "stats": {"errorkinds": []}, "momentum": {"alpha": 0.9}}
    net = synaptic.mlp([5, 6, 2], ["relu", "linear"], synaptic.training("backprop", params),
                       seed=1)
    with pytest.warns(RuntimeWarning, match="epoch 0, batch 2 "):
        synaptic.train(net, trset, 2).result(timeout=60)
    return net


def test_the_option_and_the_divergence_are_saved_and_loaded():
    net = diverged_net()
    assert net.stats.diverged == {"epoch": 0, "batch": 2, "what": "weights of layer 1"}
    synaptic.save_neural_net(net, "d")
    back = synaptic.load_neural_net("d")
    assert back.training.params["on_nonfinite"] == "stop"
    assert back.stats.diverged == net.stats.diverged
    for a, b in zip(back.weights, net.weights):
        np.testing.assert_array_equal(a, b)
    back.stats.diverged = None
    synaptic.save_neural_net(back, "d")
    assert synaptic.load_neural_net("d").stats.diverged is None


def edit_meta(path, edit):
    with zipfile.ZipFile(path) as z:
        content = {i.filename: z.read(i) for i in z.infolist()}
    doc = json.loads(np.load(io.BytesIO(content["__meta__.npy"])).tobytes())
    edit(doc)
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8))
    content["__meta__.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, value in content.items():
            z.writestr(name, value)


def test_a_file_without_the_record_loads_and_a_bad_record_or_option_is_refused(data):
    synaptic.save_neural_net(diverged_net(), "d")
    path = data / "neuralnet.d"
    edit_meta(path, lambda doc: doc["training"]["stats"].pop("diverged"))  # synaptic 0.1
    assert synaptic.load_neural_net("d").stats.diverged is None
    edit_meta(path, lambda doc: doc["training"]["stats"].update(diverged={"epoch": -1}))
    with pytest.raises(FileFormatError, match="'training.stats.diverged' must be null or"):
        synaptic.load_neural_net("d")
    edit_meta(path, lambda doc: doc["training"]["stats"].update(
        diverged={"epoch": 1, "batch": "2", "what": "loss"}))
    with pytest.raises(FileFormatError, match="'training.stats.diverged.batch' must be"):
        synaptic.load_neural_net("d")
    edit_meta(path, lambda doc: doc["training"]["params"].update(on_nonfinite="warn"))
    with pytest.raises(FileFormatError, match="on_nonfinite must be one of"):
        synaptic.load_neural_net("d")
