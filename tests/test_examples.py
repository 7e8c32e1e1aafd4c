"""The example scripts of examples/ run: the MNIST conv net (padding, dropout, Adam, a cosine
schedule, early stopping) on a slice of the digits, for a few epochs."""
import importlib.util
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
if not (REPO / "examples").is_dir():  # e.g. the suite run against an installed wheel
    pytest.skip("the examples are tested from the checkout", allow_module_level=True)


def load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mnist_conv_example_learns_and_reports(mnist_path, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SYNAPTIC_MNIST_DIR", str(mnist_path))
    monkeypatch.setenv("SYNAPTIC_DATA", str(tmp_path))
    net = load("mnist_conv").main(["--epochs", "3", "--rows", "1500"])
    out = capsys.readouterr().out
    assert out.count("validation accuracy") == 4  # three epochs and the summary
    assert net.stats.epochs == 3 and len(net.stats.learning_rate) == 3
    assert net.stats.learning_rate[0] > net.stats.learning_rate[-1]  # the cosine schedule
    assert max(net.stats.val_err["accuracy"]) > 0.7  # chance is 0.1
    assert [d.p for d in net.dropouts] == [0.5, 0.5]
    assert net.layers[1].fieldsize == [32, 14, 14]  # "same" padding, then the 2x2 pool
