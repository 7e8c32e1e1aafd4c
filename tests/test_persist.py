"""Saving and loading nets and training sets (SYNAPTIC.md §7): round trips, exact resume,
damaged files, atomic writes."""
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import synaptic
from synaptic import persist
from synaptic.activations import CODES
from synaptic.training import loop


@pytest.fixture(autouse=True)
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    monkeypatch.setenv("SYNAPTIC_DATA", str(folder))
    return folder


def toy_set(n=60, labels="int", nvalid=12, batch=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((n, 5))
    classes = (x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0.5).astype(int)
    lab = classes if labels == "int" else np.array(["a", "b", "c"])[classes]
    return synaptic.training_set(x, lab, batch=batch, nvalid=nvalid, seed=seed, name="toy")


def params(**extra):
    base = {"learning_rate": {"epsilon": 0.5}, "stats": {"errorkinds": ["cross-entropy", "accuracy"]}}
    base.update(extra)
    return base


def assert_same_net(a, b):
    assert a.spec() == b.spec()
    assert a.dtype == b.dtype
    assert a.header == b.header
    for wa, wb in zip(a.weights, b.weights, strict=True):
        assert wa.dtype == wb.dtype
        np.testing.assert_array_equal(wa, wb)


# nets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("act", sorted(CODES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_untrained_net_round_trip_for_every_activation(act, dtype):
    net = synaptic.mlp([5, 4, 3], [act, "softmax"], dtype=dtype, seed=7)
    assert persist.save_neural_net(net, "plain") == "plain"
    loaded = synaptic.load_neural_net("plain")
    assert_same_net(net, loaded)
    assert loaded.training is None and loaded.state is None
    assert loaded.rng.bit_generator.state == net.rng.bit_generator.state
    x = np.random.default_rng(1).random((6, 5))
    np.testing.assert_array_equal(net.predict_proba(x), loaded.predict_proba(x))


def test_stochastic_units_continue_the_same_random_stream():
    net = synaptic.mlp([5, 8, 3], ["binary-stochastic", "softmax"], seed=3)
    x = np.random.default_rng(1).random((20, 5))
    net.activities(x)  # move the generator away from its seeded start
    synaptic.save_neural_net(net, "stoch")
    loaded = synaptic.load_neural_net("stoch")
    first = net.activities(x)[0]
    assert set(np.unique(first)) == {0.0, 1.0}
    np.testing.assert_array_equal(first, loaded.activities(x)[0])
    np.testing.assert_array_equal(net.activities(x)[0], loaded.activities(x)[0])


@pytest.mark.parametrize("labels", ["int", "str"])
def test_trained_net_round_trip_keeps_training_stats_state_and_labels(labels):
    trset = toy_set(labels=labels)
    p = params(momentum={"alpha": 0.9, "alpha_start": 0.5, "alpha_step": 0.01},
               learning_rate={"epsilon": 0.5, "adaptive": True, "ming": 0.01, "maxg": 10.0})
    net = synaptic.mlp([5, 4, 3], ["sigmoid", "softmax"], synaptic.training("backprop", p), seed=2)
    synaptic.train(net, trset, 3).result(timeout=30)
    synaptic.save_neural_net(net, "trained")
    loaded = synaptic.load_neural_net("trained")
    assert_same_net(net, loaded)
    assert loaded.labels == ([0, 1, 2] if labels == "int" else ["a", "b", "c"])
    assert all(type(v) is type(net.labels[0]) for v in loaded.labels)
    assert list(synaptic.estimate(loaded, trset.valid)) == list(synaptic.estimate(net, trset.valid))
    t, u = net.training, loaded.training
    assert (u.algo, u.params) == (t.algo, t.params)
    assert u.stats == t.stats and u.stats.epochs == 3 and len(u.stats.seconds) == 3
    assert sorted(u.state) == ["alpha", "deltaw", "lr_gain"]
    assert u.state["alpha"] == t.state["alpha"] == pytest.approx(0.5 + 14 * 0.01)  # 15 steps
    for key in ("deltaw", "lr_gain"):
        for a, b in zip(t.state[key], u.state[key], strict=True):
            np.testing.assert_array_equal(a, b)
            assert b.flags.writeable and b.flags.c_contiguous
    assert loaded._batches == net._batches == 3 * trset.nbatches


def test_any_optimiser_state_round_trips_with_its_types_and_the_net_is_idle():
    net = synaptic.mlp([3, 2], "sigmoid", synaptic.training("backprop"), seed=1)
    state = net.training.state
    state.update({"state": "training", "rp_step": [np.full((2, 4), 0.1), np.arange(3.0)],
                  "ms_grad": np.ones((2, 2, 2), dtype=np.float32), "count": 3, "rate": 0.25,
                  "mode": "x", "flag": True, "nothing": None, "f32": np.float32(1.5),
                  "epochs_done": np.int64(4), "ints": [1, 2]})
    synaptic.save_neural_net(net, "state")
    got = synaptic.load_neural_net("state").training.state
    assert "state" not in got and synaptic.load_neural_net("state").state is None
    assert set(got) == set(state) - {"state"}
    for key in ("count", "rate", "mode", "flag", "nothing", "ints"):
        assert got[key] == state[key] and type(got[key]) is type(state[key])
    assert got["f32"] == np.float32(1.5) and got["f32"].dtype == np.float32
    assert got["epochs_done"] == 4 and got["epochs_done"].dtype == np.int64
    assert got["ms_grad"].dtype == np.float32 and got["ms_grad"].shape == (2, 2, 2)
    for a, b in zip(state["rp_step"], got["rp_step"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_default_name_is_the_header_name_else_a_timestamp():
    net = synaptic.mlp([3, 2], "sigmoid", seed=1)
    name = synaptic.save_neural_net(net)
    assert name.isdigit() and persist.file_list("neuralnet") == [name]
    net.header["name"] = "named"
    assert synaptic.save_neural_net(net) == "named"
    assert persist.file_list("neuralnet") == sorted([name, "named"])


# resume -------------------------------------------------------------------------------

RESUME_CASES = {
    "momentum": ("backprop", {"learning_rate": {"epsilon": 0.3}, "momentum": {"alpha": 0.9}}),
    "adaptive+schedule": ("backprop", {
        "learning_rate": {"epsilon": 0.3, "adaptive": True, "ming": 0.01, "maxg": 10.0},
        "momentum": {"alpha": 0.9, "alpha_start": 0.5, "alpha_step": 0.01}}),
    "nesterov+l2": ("backprop", {"learning_rate": {"epsilon": 0.3},
                                 "momentum": {"alpha": 0.8, "nesterov": True},
                                 "regularization": {"kind": "l2", "lambda": 0.01}}),
    "rprop": ("rprop", {}),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_train_save_load_train_equals_training_straight_through(case):
    algo, p = RESUME_CASES[case]
    if algo not in loop.ALGORITHMS:
        pytest.skip(f"{algo} is not available in this version")
    trset = toy_set(batch=7)
    assert trset.nbatches > 5

    def fresh():
        return synaptic.mlp([5, 6, 3], ["sigmoid", "softmax"], synaptic.training(algo, p), seed=11)

    straight = fresh()
    synaptic.train(straight, trset, 10).result(timeout=60)
    first = fresh()
    synaptic.train(first, trset, 5).result(timeout=60)
    synaptic.save_neural_net(first, "half")
    resumed = synaptic.load_neural_net("half")
    synaptic.train(resumed, trset, 5).result(timeout=60)
    for a, b in zip(straight.weights, resumed.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert resumed.stats.epochs == 10
    assert resumed.stats.tr_err == straight.stats.tr_err
    assert resumed.stats.val_err == straight.stats.val_err
    for key, value in straight.training.state.items():
        if isinstance(value, list):
            for a, b in zip(value, resumed.training.state[key], strict=True):
                np.testing.assert_array_equal(a, b)
        else:
            assert resumed.training.state[key] == value
    # the resumed weights really moved: 5 more epochs changed them
    assert not np.array_equal(first.weights[0], resumed.weights[0])


# training sets ------------------------------------------------------------------------

@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("nvalid", [None, 12])
def test_training_set_round_trip(labels, nvalid):
    trset = toy_set(labels=labels, nvalid=nvalid)
    assert synaptic.save_training_set(trset) == "toy"
    loaded = synaptic.load_training_set("toy")
    assert loaded.header == trset.header
    assert loaded.labels == trset.labels and type(loaded.labels[0]) is type(trset.labels[0])
    assert loaded.header["batches"] == trset.header["batches"]  # {label: count}, keys keep their type
    assert loaded.batch_bounds == trset.batch_bounds
    np.testing.assert_array_equal(loaded.x, trset.x)
    np.testing.assert_array_equal(loaded.y, trset.y)
    for b in loaded.batches:  # the batches are views of one contiguous block
        assert np.shares_memory(b.x, loaded.x) and np.shares_memory(b.y, loaded.y)
    assert loaded.x.flags.c_contiguous
    if nvalid is None:
        assert loaded.valid is None
    else:
        np.testing.assert_array_equal(loaded.valid.x, trset.valid.x)
        np.testing.assert_array_equal(loaded.valid.y, trset.valid.y)
    assert synaptic.load_training_set_header("toy") == trset.header


def test_unlabeled_set_scale_and_dtype():
    samples = np.arange(24.0).reshape(6, 4) * 10
    tset = synaptic.test_set(samples, name="unlabeled")
    synaptic.save_training_set(tset)
    loaded = synaptic.load_training_set("unlabeled", scale=True, dtype=np.float32)
    assert loaded.y is None and loaded.valid is None
    assert loaded.x.dtype == np.float32
    np.testing.assert_allclose(loaded.x, samples / 255, rtol=1e-6)
    assert synaptic.load_training_set_header("unlabeled")["batches"] == [{"?": 6}]


def test_save_under_another_name_and_the_data_folder_is_created(data):
    assert not data.exists()
    assert synaptic.save_training_set(toy_set(), name="other") == "other"
    assert sorted(p.name for p in data.iterdir()) == ["trainingset-header.other", "trainingset.other"]
    assert synaptic.load_training_set("other").header["name"] == "other"
    (data / "plain").write_text("")  # saved files get the mode of an ordinary new file
    assert os.stat(data / "trainingset.other").st_mode == os.stat(data / "plain").st_mode


@pytest.mark.parametrize("name", ["a/b", "", "../x", 3])
def test_names_with_path_separators_are_refused(name):
    with pytest.raises(ValueError, match="name"):
        synaptic.save_neural_net(synaptic.mlp([2, 1], "sigmoid"), name)
    with pytest.raises(ValueError, match="name"):
        synaptic.load_neural_net(name)


def test_missing_files():
    with pytest.raises(FileNotFoundError, match="neuralnet.nope"):
        synaptic.load_neural_net("nope")
    with pytest.raises(FileNotFoundError, match="trainingset-header.nope"):
        synaptic.load_training_set_header("nope")


# damaged files ------------------------------------------------------------------------

def saved_net(data):
    net = synaptic.mlp([3, 4, 2], ["sigmoid", "softmax"], synaptic.training("backprop"), seed=1)
    net.training.state["deltaw"] = [np.zeros_like(w) for w in net.weights]
    synaptic.save_neural_net(net, "n")
    return data / "neuralnet.n"


def entries(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def rewrite(path, meta=None, raw_meta=None, **changes):
    """Rewrite the npz at ``path`` with edited metadata and entries (None removes one)."""
    arrays = entries(path)
    if meta is not None:
        doc = json.loads(arrays["__meta__"].tobytes())
        meta(doc)
        raw_meta = json.dumps(doc).encode()
    if raw_meta is not None:
        arrays["__meta__"] = np.frombuffer(raw_meta, dtype=np.uint8)
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def expect_error(path, pattern):
    with pytest.raises(persist.FileFormatError, match=pattern) as info:
        persist.load_neural_net_file(path)
    assert str(path) in str(info.value)
    return info.value


def test_truncated_file(data):
    path = saved_net(data)
    content = path.read_bytes()
    for size in (len(content) // 2, len(content) - 30, 10):
        path.write_bytes(content[:size])
        expect_error(path, "damaged or truncated|not an npz")


def test_not_an_npz(data):
    data.mkdir()
    path = data / "neuralnet.text"
    path.write_text('{"format": "synaptic.neuralnet"}')
    expect_error(path, "not an npz")
    path.write_bytes(pickle.dumps({"weights": [1, 2]}))
    expect_error(path, "not an npz")
    path.write_bytes(b"")
    expect_error(path, "not an npz")


def test_invalid_json(data):
    path = saved_net(data)
    rewrite(path, raw_meta=b'{"format": "synaptic.neuralnet", "version": 1,')
    expect_error(path, "not valid JSON")
    rewrite(path, raw_meta=b"\xff\xfe")
    expect_error(path, "not valid JSON")
    rewrite(path, raw_meta=b"[1, 2]")
    expect_error(path, "must be a JSON object")


@pytest.mark.parametrize("edit, pattern", [
    (lambda d: d.update(dtype=64), "'dtype' must be a string"),
    (lambda d: d.update(dtype="int8"), "float32 or float64"),
    (lambda d: d.update(layers="784-10"), "'layers' must be a list"),
    (lambda d: d["layers"][1].update(n=5), r"layer 1: weights of shape \(4, 4\), expected \(5, 4\)"),
    (lambda d: d.update(header=[1]), "'header' must be an object"),
    (lambda d: d["training"].update(algo=3), "'training.algo' must be a string"),
    (lambda d: d["training"].update(algo="sgd"), "unknown training algorithm"),
    (lambda d: d["training"]["params"].update(learning_rate={"epsilon": "fast"}), "finite number"),
    (lambda d: d["training"].update(state_arrays=[["deltaw", "list", "two"]]), r"\[key, kind, n\]"),
    (lambda d: d["rng"].update(bit_generator="os.system"), "'rng.bit_generator' must be one of"),
    (lambda d: d["rng"]["state"].update(state="x"), "bad 'rng' state"),
    (lambda d: d.update(batches=1.5), "'batches' must be an integer"),
])
def test_hand_edited_metadata_with_wrong_values(data, edit, pattern):
    path = saved_net(data)
    rewrite(path, meta=edit)
    expect_error(path, pattern)


@pytest.mark.parametrize("key", ["dtype", "layers", "header", "training", "rng", "batches"])
def test_missing_metadata_keys(data, key):
    path = saved_net(data)
    rewrite(path, meta=lambda d: d.pop(key))
    expect_error(path, f"lacks '{key}'")


def test_missing_and_extra_array_entries(data):
    path = saved_net(data)
    rewrite(path, weight_1=None)
    expect_error(path, r"missing array entries \['weight_1'\]")
    path = saved_net(data)
    rewrite(path, state_0_1=None)
    expect_error(path, "missing array entries")
    path = saved_net(data)
    rewrite(path, extra=np.zeros(3))
    expect_error(path, r"unexpected array entries \['extra'\]")
    path = saved_net(data)
    rewrite(path, __meta__=None)
    expect_error(path, "no __meta__ entry")


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_wrong_format_version(data, version):
    path = saved_net(data)
    rewrite(path, meta=lambda d: d.update(version=version))
    expect_error(path, f"format version {version!r} is not supported")


def test_wrong_kind_of_file(data):
    synaptic.save_training_set(toy_set())
    expect_error(data / "trainingset.toy", "not a synaptic.neuralnet file")
    path = saved_net(data)
    with pytest.raises(persist.FileFormatError, match="not a synaptic.trainingset file"):
        persist.load_training_set_file(path)


class Trap:
    """Unpickling this object would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_smuggled_into_the_npz_is_refused_and_never_runs(data, tmp_path):
    marker = tmp_path / "pwned"
    path = saved_net(data)
    trap = np.empty(1, dtype=object)
    trap[0] = Trap(marker)
    rewrite(path, weight_0=trap)
    expect_error(path, r"entry 'weight_0' is not numeric \(dtype object")
    assert not marker.exists()
    # the pickled payload is really there: a pickle-enabled load would run it
    assert b"pwned" in zipfile.ZipFile(path).read("weight_0.npy")


def test_damaged_training_set_files(data):
    trset = toy_set()
    synaptic.save_training_set(trset)
    path = data / "trainingset.toy"
    rewrite(path, meta=lambda d: d.update(bounds=[[0, 10], [12, 48]]))
    with pytest.raises(persist.FileFormatError, match="consecutive"):
        synaptic.load_training_set("toy")
    synaptic.save_training_set(trset)
    rewrite(path, y=np.zeros((5, 3)))
    with pytest.raises(persist.FileFormatError, match=r"entry 'y' of shape \(5, 3\), expected \(48, 3\)"):
        synaptic.load_training_set("toy")
    synaptic.save_training_set(trset)
    rewrite(path, valid_y=None)
    with pytest.raises(persist.FileFormatError, match=r"missing array entries \['valid_y'\]"):
        synaptic.load_training_set("toy")
    header = data / "trainingset-header.toy"
    header.write_text('{"format": "synaptic.trainingset-header", "version": 1, "header": ')
    with pytest.raises(persist.FileFormatError, match="header.toy: the metadata is not valid JSON"):
        synaptic.load_training_set_header("toy")
    header.write_text('{"format": "synaptic.trainingset-header", "version": 1}')
    with pytest.raises(persist.FileFormatError, match="lacks 'header'"):
        synaptic.load_training_set_header("toy")


# atomic writes ------------------------------------------------------------------------

@pytest.mark.parametrize("failure", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_save_leaves_the_previous_file_intact_and_no_temporary_file(data, monkeypatch, failure):
    net = synaptic.mlp([3, 2], "sigmoid", seed=1)
    synaptic.save_neural_net(net, "keep")
    before, w0 = (data / "neuralnet.keep").read_bytes(), net.weights[0].copy()

    def broken(f, arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise failure

    net.weights[0] += 1
    with monkeypatch.context() as patch, pytest.raises(type(failure)):
        patch.setattr(persist, "_write_npz", broken)
        synaptic.save_neural_net(net, "keep")
    assert os.listdir(data) == ["neuralnet.keep"]
    assert (data / "neuralnet.keep").read_bytes() == before
    np.testing.assert_array_equal(synaptic.load_neural_net("keep").weights[0], w0)


def test_json_of_unsupported_header_values_is_refused_before_writing(data):
    net = synaptic.mlp([3, 2], "sigmoid", seed=1)
    net.header["note"] = object()
    with pytest.raises(TypeError, match="not JSON data"):
        synaptic.save_neural_net(net, "bad")
    assert not (data / "neuralnet.bad").exists()


def test_non_string_dict_keys_survive_in_headers():
    header = {"counts": {1: 2, "1": 3, 2.5: None}, "nested": [{True: "yes"}]}
    doc = persist._to_json(header, "h")
    back = json.loads(json.dumps(doc), object_hook=persist._from_json_object)
    assert back == header and list(back["counts"]) == [1, "1", 2.5]


# a saved set never shadows a recipe, and scaling is recorded (issue 15) -----------------

def raw_set(name="raw", nvalid=4):
    x = np.tile(np.arange(0.0, 256.0, 17.0), (20, 1))  # 0 ... 255, like raw pixels
    return synaptic.training_set(x, [i % 2 for i in range(20)], nvalid=nvalid, name=name, seed=0)


@pytest.mark.parametrize("name", ["mnist10k", "mnist5k"])
def test_a_recipe_name_is_refused_at_save_time(data, name):
    with pytest.raises(ValueError, match=f"'{name}' is the name of a built-in recipe"):
        synaptic.save_training_set(raw_set(name))  # the header's name
    with pytest.raises(ValueError, match="save this set under another name"):
        synaptic.save_training_set(raw_set(), name)
    assert not data.exists()


def test_scale_true_is_idempotent_through_a_save(data):
    synaptic.save_training_set(raw_set())
    assert synaptic.load_training_set_header("raw")["scaled"] is False
    scaled = synaptic.load_training_set("raw", scale=True)
    assert scaled.header["scaled"] is True and scaled.x.max() == 1.0 and scaled.valid.x.max() == 1.0
    assert scaled.source == f"the saved file {data / 'trainingset.raw'}"
    synaptic.save_training_set(scaled, "raw-scaled")
    assert synaptic.load_training_set_header("raw-scaled")["scaled"] is True
    again = synaptic.load_training_set("raw-scaled", scale=True, dtype=np.float32)
    np.testing.assert_allclose(again.x, scaled.x, rtol=1e-7)  # not divided by 255 twice
    np.testing.assert_allclose(again.valid.x, scaled.valid.x, rtol=1e-7)
    assert again.x.dtype == np.float32 and again.header["scaled"] is True
    np.testing.assert_array_equal(synaptic.load_training_set("raw-scaled").x, scaled.x)


def legacy(data, name, trset):
    """``trset`` saved as synaptic 0.1 did: no 'scaled' in the header, any name."""
    synaptic.save_training_set(trset, "tmp")
    rewrite(data / "trainingset.tmp", meta=lambda d: [d["header"].pop("scaled"),
                                                       d["header"].update(name=name)])
    os.replace(data / "trainingset.tmp", data / f"trainingset.{name}")
    os.replace(data / "trainingset-header.tmp", data / f"trainingset-header.{name}")


def test_files_without_the_scaled_field_still_load(data):
    legacy(data, "old-raw", raw_set())
    loaded = synaptic.load_training_set("old-raw", scale=True)
    assert loaded.x.max() == 1.0 and loaded.header["scaled"] is True  # raw pixels: divided
    assert synaptic.load_training_set("old-raw").header["scaled"] is False
    scaled = synaptic.load_training_set("old-raw", scale=True)
    legacy(data, "old-scaled", scaled)
    with pytest.warns(synaptic.datasets.DataWarning, match=r"all in \[0, 1\], so scale=True leaves"):
        again = synaptic.load_training_set("old-scaled", scale=True)
    np.testing.assert_array_equal(again.x, scaled.x)
    assert again.header["scaled"] is True


def test_a_saved_set_under_a_recipe_name_is_ignored_with_a_warning(data, tmp_path, monkeypatch):
    from test_datasets import fake_mnist
    monkeypatch.setenv("SYNAPTIC_MNIST_DIR", str(fake_mnist(tmp_path / "mnist")))
    poison = synaptic.load_training_set("mnist10k", scale=True)
    legacy(data, "mnist10k", poison)  # what the README's save_training_set(trset) used to write
    with pytest.warns(synaptic.datasets.DataWarning, match="trainingset.mnist10k is ignored"):
        trset = synaptic.load_training_set("mnist10k", scale=True)
    assert trset.source == f"the mnist10k recipe, from {tmp_path / 'mnist'}"
    assert trset.x.max() == 1.0 and trset.header["scaled"] is True  # once, not twice
    path = data / "trainingset.mnist10k"
    np.testing.assert_array_equal(persist.load_training_set_file(path).x, poison.x)


def test_a_bad_scaled_field_is_a_format_error(data):
    synaptic.save_training_set(raw_set())
    rewrite(data / "trainingset.raw", meta=lambda d: d["header"].update(scaled="yes"))
    with pytest.raises(persist.FileFormatError, match="'header.scaled' must be true or false"):
        synaptic.load_training_set("raw")
