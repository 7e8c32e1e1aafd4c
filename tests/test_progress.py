"""The progress watch (tqdm and plain text) and the TrainingStats table."""
import io
import sys

import numpy as np
import pytest

import synaptic
from synaptic import progress

KINDS = ["cross-entropy", "accuracy"]


def setup(nvalid=10):
    rng = np.random.default_rng(0)
    x = rng.random((60, 4))
    trset = synaptic.training_set(x, (x[:, 0] > 0.5).astype(int), batch=10, nvalid=nvalid, seed=1)
    p = {"learning_rate": {"epsilon": 0.5}, "stats": {"errorkinds": KINDS}}
    net = synaptic.mlp([4, 3, 2], ["sigmoid", "softmax"], synaptic.training("backprop", p), seed=1)
    return net, trset


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(net, trset, epochs, **kw):
    with progress.watch_progress(net, trset, epochs, **kw) as shown:
        synaptic.train(net, trset, epochs).result(timeout=30)
    return shown


def test_plain_lines_one_per_epoch_and_the_watch_is_removed():
    net, trset = setup()
    out = io.StringIO()
    shown = run(net, trset, 3, file=out, use_tqdm=False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines == shown.lines
    s = net.stats
    assert lines[2].startswith("epoch 3/3  ")
    assert f"train cross-entropy-multivariate {s.tr_err['cross-entropy-multivariate'][2]:.4f}" in lines[2]
    assert f"valid accuracy {s.val_err['accuracy'][2]:.4f}" in lines[2]
    assert shown.key not in net._watches and not net._watches
    assert shown.batches == 15
    # a second run counts on from the epochs already done
    out = io.StringIO()
    run(net, trset, 2, file=out, use_tqdm=False)
    assert [line.split("  ")[0] for line in out.getvalue().splitlines()] == ["epoch 4/5", "epoch 5/5"]


def test_plain_batch_counter_on_a_terminal_and_quiet():
    net, trset = setup()
    out = Terminal()
    run(net, trset, 1, file=out, use_tqdm=False)
    text = out.getvalue()
    assert [f"\r  batch {i}/5" in text for i in range(1, 6)] == [True] * 5
    assert "\r\033[Kepoch 1/1" in text
    out = io.StringIO()
    shown = run(net, trset, 2, file=out, quiet=True)
    assert out.getvalue() == "" and len(shown.lines) == 2


def test_without_tqdm_it_falls_back_to_plain_lines(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    net, trset = setup()
    out = io.StringIO()
    run(net, trset, 2, file=out)
    assert [line[:9] for line in out.getvalue().splitlines()] == ["epoch 1/2", "epoch 2/2"]
    with pytest.raises(ImportError, match="tqdm"):
        progress.watch_progress(net, trset, 1, use_tqdm=True)
    assert not net._watches


def test_tqdm_bars_over_epochs_and_batches():
    pytest.importorskip("tqdm")
    net, trset = setup()
    out = io.StringIO()
    shown = run(net, trset, 2, file=out)
    text = out.getvalue()
    assert "epochs: 100%" in text and "2/2" in text
    assert "batches:" in text and "0/5" in text  # (tqdm rate-limits its refreshes)
    assert shown.batches == 10 and shown.batch == 0
    assert "train cross-entropy-multivariate" in text  # the postfix of the epoch bar
    assert sum(line in text for line in shown.lines) == 2


def test_training_stats_rows_are_the_stats():
    net, trset = setup()
    synaptic.train(net, trset, 3).result(timeout=30)
    table = progress.TrainingStats(net)
    s = net.stats
    assert len(table) == 3
    assert table.columns == ["epoch", "seconds", "tr_cross-entropy-multivariate", "tr_accuracy",
                             "val_cross-entropy-multivariate", "val_accuracy"]
    assert table[0]["epoch"] == 1 and table.column("epoch") == [1, 2, 3]
    assert table.column("seconds") == s.seconds
    assert table.column("val_accuracy") == s.val_err["accuracy"]
    assert table.column("tr_cross-entropy-multivariate") == s.tr_err["cross-entropy-multivariate"]
    assert str(table).splitlines()[0].split() == table.columns
    assert len(str(table).splitlines()) == 4
    with pytest.raises(KeyError, match="val_nope"):
        table.column("val_nope")


def test_training_stats_without_validation_or_epochs():
    net, trset = setup(nvalid=None)
    assert len(progress.TrainingStats(net)) == 0
    assert progress.TrainingStats(net).columns == ["epoch", "seconds"]
    synaptic.train(net, trset, 1).result(timeout=30)
    assert progress.TrainingStats(net.stats).columns == [
        "epoch", "seconds", "tr_cross-entropy-multivariate", "tr_accuracy"]


def test_to_dataframe_needs_pandas(monkeypatch):
    net, trset = setup()
    synaptic.train(net, trset, 2).result(timeout=30)
    table = progress.TrainingStats(net)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "pandas", None)
        with pytest.raises(ImportError, match="needs pandas"):
            table.to_dataframe()
    pd = pytest.importorskip("pandas")
    frame = table.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [1, 2] and frame["val_accuracy"].tolist() == net.stats.val_err["accuracy"]
