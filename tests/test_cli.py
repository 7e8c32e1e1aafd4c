"""The command line end to end (subprocesses on mnist10k) and in-process, and the plots."""
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import synaptic
from synaptic import cli, persist, plots
from synaptic.training import loop

TRAIN = ["train", "--arch", "784-100-10", "--act", "sigmoid,softmax", "--algo", "backprop",
         "--lr", "0.1", "--momentum", "0.9", "--batch", "100", "--data", "mnist10k", "--scale",
         "--seed", "1", "--dtype", "float32"]


def run(args, env, cwd, timeout=120):
    return subprocess.run([sys.executable, "-m", "synaptic", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def shell(tmp_path_factory, mnist_path):
    """(env, data folder) for subprocesses: data in a temporary folder, MNIST from the fixture."""
    data = tmp_path_factory.mktemp("data")
    env = dict(os.environ, SYNAPTIC_DATA=str(data), SYNAPTIC_MNIST_DIR=str(mnist_path))
    return env, data


@pytest.fixture(scope="module")
def trained(shell):
    """One epoch of training on mnist10k, saved as "cli"."""
    env, data = shell
    result = run([*TRAIN, "--epochs", "1", "--save", "cli"], env, data)
    return result


@pytest.fixture
def here(shell, monkeypatch):
    """In-process: the same data folder."""
    env, data = shell
    monkeypatch.setenv("SYNAPTIC_DATA", env["SYNAPTIC_DATA"])
    monkeypatch.setenv("SYNAPTIC_MNIST_DIR", env["SYNAPTIC_MNIST_DIR"])
    return data


def test_train_one_epoch_and_save(trained, here):
    assert trained.returncode == 0, trained.stderr
    out = trained.stdout
    epoch = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch) == 1 and epoch[0].startswith("epoch 1/1  train cross-entropy-multivariate ")
    assert "8000 training samples in 80 batches, 2000 validation samples" in out
    accuracy = float(re.search(r"validation accuracy: ([0-9.]+)", out).group(1))
    assert 0.75 < accuracy <= 1.0
    assert "saved the net as 'cli'" in out and "Traceback" not in trained.stderr
    net = synaptic.load_neural_net("cli")
    assert net.dtype == np.float32 and net.n_params == 79510 and net.stats.epochs == 1
    assert net.labels == list(range(10))
    assert net.header["data"] == {"name": "mnist10k", "scale": True}
    assert net.training.params["momentum"] == {"alpha": 0.9}
    assert net.training.params["stats"]["errorkinds"] == ["cross-entropy", "accuracy"]
    assert net.stats.val_err["accuracy"] == [pytest.approx(accuracy, abs=5e-5)]


def test_evaluate_prints_accuracy_confusion_matrix_and_per_class_figures(trained, shell):
    env, data = shell
    result = run(["evaluate", "cli"], env, data)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "cli on mnist10k (valid, 2000 samples, scaled)"
    accuracy = float(lines[1].split()[1])
    trained_accuracy = float(re.search(r"validation accuracy: ([0-9.]+)", trained.stdout).group(1))
    assert accuracy == pytest.approx(trained_accuracy, abs=1e-4)
    start = lines.index("confusion matrix (rows: true label, columns: predicted label)")
    assert lines[start + 1].split() == [str(d) for d in range(10)]
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[start + 2:start + 12]])
    assert matrix.shape == (10, 10) and matrix.sum() == 2000
    assert np.trace(matrix) / 2000 == pytest.approx(accuracy, abs=1e-4)
    per_class = lines[start + 13:start + 23]
    assert lines[start + 12].split() == ["label", "precision", "recall", "f1", "support"]
    assert [int(line.split()[-1]) for line in per_class] == matrix.sum(axis=1).tolist()
    recall = [float(line.split()[2]) for line in per_class]
    np.testing.assert_allclose(recall, np.diag(matrix) / matrix.sum(axis=1), atol=1e-4)


def test_info(trained, shell):
    env, data = shell
    result = run(["info", "cli"], env, data)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '1: fully-connected {"n": 100, "act_fn": "sigmoid"}  weights 100 x 785' in out
    assert "parameters: 79510 (float32)" in out
    assert "labels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in out
    assert "trained on: mnist10k (scaled)" in out
    assert "optimiser state: deltaw (2 arrays)" in out
    assert "epochs: 1," in out and "best validation accuracy:" in out


@pytest.mark.parametrize("args, message", [
    (["train", "--arch", "784x10"], "expected layer sizes like 784-100-10"),
    (["train", "--arch", "784-10", "--algo", "sgd"], "invalid choice: 'sgd'"),
    (["train", "--arch", "784-10", "--data", "nowhere"], "no saved training set named 'nowhere'"),
    (["evaluate", "missing"], "neuralnet.missing: no such file"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_arguments_give_one_line_and_exit_2(shell, args, message):
    env, data = shell
    result = run(args, env, data)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT")
def test_ctrl_c_stops_saves_and_exits_130(shell):
    env, data = shell
    proc = subprocess.Popen([sys.executable, "-m", "synaptic", *TRAIN, "--epochs", "1000",
                             "--save", "interrupted"], env=env, cwd=data, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for line in proc.stdout:
            if line.startswith("epoch 1/1000"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted: stopping after the current batch" in err and "Traceback" not in err
    assert "saved the net as 'interrupted'" in out
    net = persist.load_neural_net_file(data / "neuralnet.interrupted")
    assert 1 <= net.stats.epochs < 1000 and net.state is None


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_plot_writes_readable_pngs_of_the_expected_sizes(trained, shell, tmp_path):
    pytest.importorskip("matplotlib")
    env, data = shell
    result = run(["plot", "cli", "--out", str(tmp_path / "pics")], env, data)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert written == ["errors.png", "first-layer.png", "weight-histograms.png"]
    assert result.stdout.count("wrote ") == 3
    two_panels = (int(2 * plots.PANEL[0] * plots.DPI), int(plots.PANEL[1] * plots.DPI))
    assert png_size(tmp_path / "pics" / "errors.png") == two_panels  # cross-entropy, accuracy
    assert png_size(tmp_path / "pics" / "weight-histograms.png") == two_panels  # 2 layers
    assert png_size(tmp_path / "pics" / "first-layer.png") == tuple(
        int(v * plots.DPI) for v in plots.TILES_FIGSIZE)
    for p in (tmp_path / "pics").iterdir():
        assert p.stat().st_size > 10_000


# in-process ---------------------------------------------------------------------------

def toy(here):
    rng = np.random.default_rng(0)
    x = rng.random((40, 6))
    trset = synaptic.training_set(x, np.where(x[:, 0] > 0.5, "hi", "lo"), nvalid=10, batch=5,
                                  seed=0, name="toy", fieldsize=[3, 2])
    return synaptic.save_training_set(trset)


def test_layers_file_saved_data_resume_and_evaluate(here, tmp_path, capsys):
    toy(here)
    spec = tmp_path / "net.json"
    spec.write_text(json.dumps([{"type": "input", "fieldsize": [3, 2]},
                                {"type": "fully-connected", "n": 4, "act-fn": "tanh"},
                                {"type": "fully-connected", "n": 2, "act-fn": "softmax"}]))
    assert cli.main(["train", "--layers", str(spec), "--data", "toy", "--epochs", "2",
                     "--lr", "0.3", "--stats", "accuracy", "--save", "toynet", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "epoch" not in out and "saved the net as 'toynet'" in out
    assert cli.main(["train", "--resume", "toynet", "--epochs", "3", "--save", "toynet"]) == 0
    out = capsys.readouterr().out
    assert "data: toy: 30 training samples in 6 batches, 10 validation samples" in out
    assert "epoch 5/5  train accuracy" in out
    net = synaptic.load_neural_net("toynet")
    assert net.stats.epochs == 5 and net.labels == ["hi", "lo"]
    assert list(net.stats.tr_err) == ["accuracy"] and net.layers[0].fieldsize == [1, 3, 2]
    assert cli.main(["evaluate", "toynet", "--part", "all"]) == 0
    out = capsys.readouterr().out
    assert "toynet on toy (all, 40 samples)" in out and out.count("\n") == 2 + 1 + 3 + 1 + 2


@pytest.mark.parametrize("args, message", [
    (["train", "--layers", "{spec}", "--data", "toy"], "pool does not divide"),
    (["train", "--arch", "6-2", "--data", "toy", "--epochs", "-1"], "epochs must be a non-negative"),
    (["train", "--arch", "6-2", "--data", "toy", "--lr", "-1"], "learning_rate.epsilon must be > 0"),
    (["train", "--arch", "5-2", "--data", "toy"], "the net has 5 inputs"),
    (["train", "--arch", "6-2", "--act", "a,b,c", "--data", "toy"], "activations needed"),
    (["train", "--arch", "6-2", "--params", "[1]", "--data", "toy"], "expected a JSON object"),
    (["train", "--resume", "nonet", "--data", "toy"], "no saved net named 'nonet'"),
    (["train", "--resume", "x", "--lr", "0.1", "--data", "toy"], "cannot be changed"),
    (["train", "--resume", "x", "--dtype", "float32"], "cannot be changed"),
    (["info", "a/b"], "without path separators"),
    (["train", "--arch", "6-2", "--data", "toy", "--save", "../up"], "without path separators"),
])
def test_library_errors_are_one_line_with_exit_2(here, tmp_path, capsys, args, message):
    toy(here)
    spec = tmp_path / "conv.json"
    spec.write_text(json.dumps([{"type": "input", "fieldsize": [3, 2]},
                                {"type": "convolution", "feature-map": {"size": [2, 2], "k": 2},
                                 "act-fn": "tanh", "pool": {"kind": "max", "size": [2, 2]}},
                                {"type": "fully-connected", "n": 2, "act-fn": "softmax"}]))
    args = [a.replace("{spec}", str(spec)) for a in args]
    try:
        code = cli.main(args)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_train_a_conv_net_from_a_layers_file(here, tmp_path, capsys):
    toy(here)
    spec = tmp_path / "conv.json"
    spec.write_text(json.dumps([{"type": "input", "fieldsize": [3, 2]},
                                {"type": "convolution", "feature-map": {"size": [2, 2], "k": 2},
                                 "act-fn": "tanh"},
                                {"type": "fully-connected", "n": 2, "act-fn": "softmax"}]))
    assert cli.main(["train", "--layers", str(spec), "--data", "toy", "--epochs", "2",
                     "--save", "convy", "--quiet"]) == 0
    net = synaptic.load_neural_net("convy")
    assert net.layers[1].kind == "convolution" and net.stats.epochs == 2


def test_config_still_works(capsys):
    assert cli.main(["config"]) == 0
    assert "synaptic backend:" in capsys.readouterr().out


def test_first_layer_tiles_follow_the_input_fieldsize():
    net = synaptic.mlp([12, 3, 2], ["sigmoid", "softmax"], seed=1)
    tiles, what = plots.first_layer_tiles(net)  # divisors(12) = [4, 3]: 4 wide, 3 high
    assert tiles.shape == (3, 1, 3, 4) and "4x3" in what
    np.testing.assert_array_equal(tiles[1, 0, 2], net.weights[0][1, 1 + 8:1 + 12])
    net = synaptic.neural_net([{"type": "input", "fieldsize": [2, 3, 2]},
                               {"type": "fully-connected", "n": 5, "act-fn": "relu"}], seed=1)
    tiles, _ = plots.first_layer_tiles(net)
    assert tiles.shape == (5, 2, 2, 3)
    mosaic = plots._mosaic(tiles, 3)
    assert mosaic.shape == (2 * 3 - 1, 3 * (2 * 4 - 1) + 2)
    assert np.isnan(mosaic[2]).all() and not np.isnan(mosaic[0, :3]).any()


def test_plot_functions_without_stats_and_with_many_units(tmp_path):
    pytest.importorskip("matplotlib")
    net = synaptic.mlp([12, 150, 3, 2], ["sigmoid", "sigmoid", "softmax"], seed=1)
    paths = plots.plot_net(net, tmp_path)
    assert [p.name for p in paths] == ["weight-histograms.png", "first-layer.png"]
    assert png_size(paths[0]) == (int(3 * plots.PANEL[0] * plots.DPI), int(plots.PANEL[1] * plots.DPI))
    with pytest.raises(ValueError, match="no recorded epochs"):
        plots.plot_errors(net.stats, tmp_path / "e.png")


# defaults that learn, the shipped example, --stats none (issue 15) ----------------------

def test_the_defaults_learn_mnist(here, capsys):
    """``synaptic train --arch 784-100-10 --scale``: the demo's learning rate and momentum."""
    assert cli.main(["train", "--arch", "784-100-10", "--scale", "--epochs", "2",
                     "--dtype", "float32", "--quiet", "--save", "defaults"]) == 0
    out = capsys.readouterr().out
    assert "(the mnist10k recipe, from " in out
    assert float(re.search(r"validation accuracy: ([0-9.]+)", out).group(1)) > 0.7  # chance: 0.1
    params = synaptic.load_neural_net("defaults").training.params
    assert params["learning_rate"] == {"epsilon": 0.5} and params["momentum"] == {"alpha": 0.9}


def test_explicit_options_override_the_cli_defaults(here, capsys):
    toy(here)
    assert cli.main(["train", "--arch", "6-2", "--data", "toy", "--epochs", "1", "--lr", "0.1",
                     "--momentum", "0", "--quiet", "--save", "opts"]) == 0
    params = synaptic.load_neural_net("opts").training.params
    assert params["learning_rate"] == {"epsilon": 0.1} and params["momentum"] == {"alpha": 0.0}
    assert cli.main(["train", "--arch", "6-2", "--data", "toy", "--epochs", "1", "--algo",
                     "rprop", "--quiet", "--save", "opts"]) == 0
    assert "momentum" not in synaptic.load_neural_net("opts").training.params  # backprop's only


@pytest.mark.parametrize("value", ["none", ""])
def test_stats_none_turns_the_per_epoch_evaluation_off(here, capsys, value):
    toy(here)
    assert cli.main(["train", "--arch", "6-2", "--data", "toy", "--epochs", "2",
                     "--stats", value, "--save", "nostats"]) == 0
    out = capsys.readouterr().out
    assert "epoch 2/2  " in out and "accuracy 0" not in out.split("validation accuracy")[0]
    net = synaptic.load_neural_net("nostats")
    assert net.stats.epochs == 2 and net.stats.tr_err == {} and net.stats.val_err == {}
    assert net.training.params["stats"] == {"errorkinds": []}


def test_raw_pixels_get_a_hint_about_scale(here, capsys):
    rng = np.random.default_rng(0)
    synaptic.save_training_set(synaptic.training_set(rng.integers(0, 256, (20, 4)),
                                                     [i % 2 for i in range(20)], name="pixels"))
    assert cli.main(["train", "--arch", "4-2", "--data", "pixels", "--epochs", "1", "--quiet"]) == 0
    assert "--scale divides them by 255" in capsys.readouterr().err
    assert cli.main(["train", "--arch", "4-2", "--data", "pixels", "--epochs", "1", "--quiet",
                     "--scale"]) == 0
    assert "--scale" not in capsys.readouterr().err


def test_the_example_conv_net_is_shipped():
    path = cli_repo() / "examples" / "conv.json"
    if not (cli_repo() / "README.md").is_file():
        pytest.skip("examples/ is part of the checkout, not of the tests")
    spec = json.loads(path.read_text())
    net = synaptic.neural_net(spec)
    assert net.n_inputs == 784 and net.n_outputs == 10 and net.layers[1].kind == "convolution"


def cli_repo():
    import pathlib
    return pathlib.Path(__file__).resolve().parent.parent
