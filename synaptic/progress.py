"""Watching training: a progress display and the per-epoch statistics as a table.

The display is a watch (``net.add_watch``), so it works with any ``train`` call::

    with watch_progress(net, trset, 10):
        train(net, trset, 10).result()

It uses tqdm (the ``cli`` extra; ``tqdm.auto``, so bars render in notebooks too) when it is
installed: a bar over epochs and one over the batches of the current epoch, showing the last
training error.  Without tqdm it prints plain lines.  Either way one summary line is written
per epoch.  :class:`TrainingStats` gives the per-epoch records as plain rows (and as a pandas
DataFrame when pandas is installed).
"""
import itertools
import sys

__all__ = ["Progress", "TrainingStats", "epoch_line", "watch_progress"]

_keys = itertools.count()


def _tqdm():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


class TrainingStats:
    """The per-epoch table of a net's stats: one dict per epoch.

    Each row holds ``epoch``, ``seconds`` and, for every recorded error kind, ``tr_<kind>``
    (training) and ``val_<kind>`` (validation, when there is a validation set).

    Parameters
    ----------
    net_or_stats : Net or Stats
        A net (read under its lock) or its ``stats``.

    Examples
    --------
    >>> import synaptic as syn
    >>> table = syn.TrainingStats(syn.Stats(2, {"accuracy": [0.5, 0.75]}, {}, [0.1, 0.1]))
    >>> table.columns, table.column("tr_accuracy")
    (['epoch', 'seconds', 'tr_accuracy'], [0.5, 0.75])
    """

    def __init__(self, net_or_stats):
        stats = getattr(net_or_stats, "stats", net_or_stats)
        lock = getattr(net_or_stats, "lock", None)
        if lock is not None:
            with lock:
                self.rows = _rows(stats)
        else:
            self.rows = _rows(stats)

    @property
    def columns(self):
        return list(self.rows[0]) if self.rows else ["epoch", "seconds"]

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, index):
        return self.rows[index]

    def column(self, name):
        """The values of one column, e.g. ``column("val_accuracy")``."""
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; columns: {', '.join(self.columns)}")
        return [row[name] for row in self.rows]

    def to_dataframe(self):
        """The table as a pandas DataFrame indexed by epoch (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("TrainingStats.to_dataframe needs pandas (pip install pandas); "
                              "the rows are available as plain dicts in .rows") from None
        return pd.DataFrame(self.rows, columns=self.columns).set_index("epoch")

    def __str__(self):
        cols = self.columns
        widths = [max(len(c), 10) for c in cols]
        lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths))]
        for row in self.rows:
            lines.append("  ".join(_fmt(row[c]).rjust(w) for c, w in zip(cols, widths)))
        return "\n".join(lines)

    def __repr__(self):
        return f"TrainingStats({len(self.rows)} epochs, columns={self.columns})"


def _rows(stats):
    if stats is None:
        return []
    rows = []
    for i in range(stats.epochs):
        row = {"epoch": i + 1, "seconds": _at(stats.seconds, i)}
        row.update({f"tr_{k}": _at(v, i) for k, v in stats.tr_err.items()})
        row.update({f"val_{k}": _at(v, i) for k, v in stats.val_err.items() if v})
        rows.append(row)
    return rows


def _at(values, i):
    return values[i] if i < len(values) else None


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4f}"
    return "-" if value is None else str(value)


def epoch_line(stats, total=None):
    """One line summarising the last epoch of ``stats``: its errors and seconds."""
    epoch = f"epoch {stats.epochs}" + (f"/{total}" if total else "")
    parts = [epoch]
    for kind, values in stats.tr_err.items():
        if values:
            parts.append(f"train {kind} {values[-1]:.4f}")
    for kind, values in stats.val_err.items():
        if values:
            parts.append(f"valid {kind} {values[-1]:.4f}")
    if stats.seconds:
        parts.append(f"{stats.seconds[-1]:.2f} s")
    return "  ".join(parts)


class Progress:
    """A watch that shows training progress; close it (or use ``with``) when done."""

    def __init__(self, net, nbatches=None, epochs=None, *, file=None, use_tqdm=None,
                 quiet=False):
        self.net = net
        self.file = file
        self.nbatches = nbatches
        self.quiet = quiet
        stats = net.stats
        self.start_epoch = stats.epochs if stats else 0
        self.total = None if epochs is None else self.start_epoch + epochs
        self.lines = []  # the summary lines written, for whoever wants them afterwards
        tqdm = _tqdm() if use_tqdm in (None, True) else None
        if use_tqdm and tqdm is None:
            raise ImportError("use_tqdm=True needs tqdm (pip install tqdm, or synaptic[cli])")
        self._epoch_bar = self._batch_bar = None
        if tqdm is not None and not quiet:
            self._epoch_bar = tqdm(total=epochs, desc="epochs", unit="epoch", file=file,
                                   position=0, leave=True)
            self._batch_bar = tqdm(total=nbatches, desc="batches", unit="batch", file=file,
                                   position=1, leave=False)
            self._write = lambda line: tqdm.write(line, file=file or sys.stdout)
        else:
            self._write = self._print
        self._tty = (self._epoch_bar is None and not quiet
                     and getattr(self._stream(), "isatty", bool)())
        self.batch = 0  # batches trained in the current epoch
        self.batches = 0  # batches trained while watched
        self.key = f"synaptic.progress.{next(_keys)}"
        net.add_watch(self.key, self, every_batch=False)

    def __call__(self, key, net, old, new):
        if new.event == "weights":
            done = new.batches - old.batches  # a few at once from the whole-epoch kernel
            self.batch += done
            self.batches += done
            if self._batch_bar is not None:
                self._batch_bar.update(done)
            elif self._tty:  # plain text: a batch counter rewritten in place on a terminal
                self._stream().write(f"\r  batch {self.batch}/{self.nbatches or '?'}")
                self._stream().flush()
        elif new.event == "stats":
            self.batch = 0
            line = epoch_line(net.stats, self.total)
            self.lines.append(line)
            if self._epoch_bar is not None:
                self._epoch_bar.update(1)
                self._epoch_bar.set_postfix_str(_postfix(net.stats), refresh=True)
                self._batch_bar.reset(total=self.nbatches)
            if not self.quiet:
                self._write(line)

    def _stream(self):
        return self.file or sys.stdout

    def _print(self, line):
        prefix = "\r\033[K" if self._tty else ""
        print(prefix + line, file=self._stream(), flush=True)

    def close(self):
        """Stop watching and close the bars."""
        self.net.remove_watch(self.key)
        for bar in (self._batch_bar, self._epoch_bar):
            if bar is not None:
                bar.close()
        self._epoch_bar = self._batch_bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _postfix(stats):
    kind = next(iter(stats.tr_err), None)
    if kind is None or not stats.tr_err[kind]:
        return ""
    return f"train {kind} {stats.tr_err[kind][-1]:.4f}"


def watch_progress(net, trset=None, epochs=None, *, file=None, use_tqdm=None, quiet=False):
    """Show the progress of ``net``'s training on ``trset`` over ``epochs`` epochs.

    A watch (added with ``every_batch=False``, so a dense net keeps its whole-epoch kernel):
    tqdm bars over the epochs and the batches when tqdm is installed (the ``cli`` extra),
    plain lines otherwise, and one summary line per epoch.

    Parameters
    ----------
    net : Net
        The net to watch.
    trset : TrainingSet, optional
        Gives the number of batches per epoch (the inner bar).
    epochs : int, optional
        The epochs of this training (the outer bar's total).
    file : file-like, optional
        Where the lines go (default: standard error).
    use_tqdm : bool, optional
        None: tqdm when installed; False: plain lines.
    quiet : bool, default False
        Show nothing (the lines are still recorded).

    Returns
    -------
    Progress
        A context manager that removes the watch on exit.

    Examples
    --------
    >>> import io, synaptic as syn
    >>> trset = syn.training_set([[0, 0], [0, 1], [1, 0], [1, 1]] * 5, [0, 1, 1, 1] * 5, seed=0)
    >>> net = syn.mlp([2, 2], "softmax", syn.training("backprop"), seed=1)
    >>> out = io.StringIO()
    >>> with syn.watch_progress(net, trset, 2, file=out, use_tqdm=False):
    ...     _ = syn.train(net, trset, 2).result()
    >>> out.getvalue().count("epoch 2/2")
    1
    """
    nbatches = None if trset is None else trset.nbatches
    return Progress(net, nbatches, epochs, file=file, use_tqdm=use_tqdm, quiet=quiet)
