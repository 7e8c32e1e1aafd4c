"""Saving and loading nets and training sets (SYNAPTIC.md §7), in a native format.

Files live in ``datasets.data_dir()`` ($SYNAPTIC_DATA, else ``./data``; created on the first
save) under the original's names:

``neuralnet.<name>``
    One ``.npz`` (zip) file.  Its ``__meta__`` entry is a JSON document stored as a uint8
    array of UTF-8 bytes; every other entry is a plain numeric array: ``weight_<i>`` for each
    weight matrix and ``state_<i>`` / ``state_<i>_<j>`` for the optimiser state.
``trainingset.<name>``
    One ``.npz`` file: ``__meta__`` (the header, the batch bounds, the array names) and the
    arrays ``x``, ``y``, ``w``, ``valid_x``, ``valid_y``, ``valid_w`` (``y``, ``w`` -- the
    per-row weights -- and ``valid_*`` only when present; a file without ``w`` is unweighted).  The
    batches come back as views of one contiguous ``x``/``y``.  Read it with
    ``datasets.load_training_set(name)``.
``trainingset-header.<name>``
    The header alone as a JSON text file, for quick access without reading the samples.

Why one ``.npz`` rather than a JSON file beside an ``.npz``: a single file is replaced by a
single atomic rename, so metadata and arrays can never come from two different saves.

Every JSON document carries ``"format"`` (what the file holds) and ``"version"``
(:data:`VERSION`).  The version changes when a file of the new layout would be misread by
this reader; a field added later without that risk keeps the version, and a file without it
is read with a rule stated where the field is read.  The training-set header's ``scaled``
(whether synaptic divided the samples by 255) is such a field: a file without it (synaptic
0.1) counts as scaled when all its samples lie in [0, 1].  So are the header's ``reshuffle``
and ``seed`` (a file without them does not reshuffle) and ``targets`` (continuous targets and
their scaling, on a training set and on a net trained on it; a file without it holds classes).  Arrays are read with ``allow_pickle=False``, so nothing in a file can
execute code.  JSON keeps strings, ints, floats (NaN included), bools and None apart, so
labels keep their type; a dict whose keys are not all strings (the per-batch label counts of
int labels) is written as ``{"__items__": [[key, value], ...]}``.

A saved net holds its layer specs, dtype, weights, header (name, labels), training (algo,
params, stats, optimiser state) and the state of the random generator of its stochastic units,
so training resumes exactly where it stopped.  The optimiser state (``net.training.state``) is
saved generically: JSON scalars go into the metadata, NumPy arrays, NumPy scalars and lists of
arrays into the npz; the transient ``"state"`` entry (training/stopping) is not saved, so a
loaded net is idle.  (An L-BFGS run, when there is one, resumes by restarting from the saved
weights: it keeps no state between calls.)

Writes go to a temporary file in the same folder (``.<kind>.<name>.<8 random>.tmp``), are
flushed and fsynced, then renamed over the target: a crash mid-save leaves the previous file
intact, and the next save into the folder removes such a temporary file once it has not been
written to for :data:`STALE_SECONDS`.  A damaged, truncated, hand-edited, hostile or
wrong-version file raises :class:`FileFormatError` (a ValueError) naming the file and the
problem: _archive.py checks the zip directory, each entry's ``.npy`` header and the JSON
document before anything is decompressed or allocated, and the loaders below check every
field (type and range; a bool is not an int) and compare the shapes the document declares
with the entries' own headers before reading an array.
"""
import json
import os
import pathlib
import re
import stat
import tempfile
import time
import warnings

import numpy as np

from . import distributed, layers as _layers
from ._archive import MAX_META_BYTES, Archive, FileFormatError, loads_json
from .datasets import RECIPES, DataSet, DataWarning, TrainingSet, check_target_scaling, data_dir
from .losses import ACCURACY, KINDS as ERROR_KINDS, REGRESSION_KINDS
from .net import Net, _check_dtype
from .training import optimizer as _optimizer
from .training.params import Stats, training as _training

VERSION = 1
NET, TRSET, HEADER = "synaptic.neuralnet", "synaptic.trainingset", "synaptic.trainingset-header"
KINDS = {"neuralnet": NET, "trainingset": TRSET, "trainingset-header": HEADER}
META = "__meta__"
ITEMS = "__items__"
RNG_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64")
TRSET_ARRAYS = {"x", "y", "w", "valid_x", "valid_y", "valid_w"}
TRANSIENT_STATE = "state"  # training / stopping: never saved
# the optimiser state scalars the algorithms compute with, and the state each algorithm reads
# as one weight-shaped array per layer (Nesterov momentum: backprop's, whatever the
# algorithm; see training/loop.make_algorithm), as the algorithms declare them
NUMERIC_STATE = _optimizer.SCALAR_STATE
WEIGHT_STATE = _optimizer.WEIGHT_STATE
STAT_KINDS = (*ERROR_KINDS, ACCURACY, *REGRESSION_KINDS)  # the kinds stats record (stats.stat_kinds)
# the temporary files of _atomic_write (mkstemp: 8 random characters)
TEMPORARY = re.compile(r"\.(?:neuralnet|trainingset|trainingset-header)\..+\.[a-z0-9_]{8}\.tmp")
STALE_SECONDS = 300  # a temporary file untouched this long is a killed save's: removed

__all__ = ["FileFormatError", "file_list", "load_neural_net", "load_neural_net_file",
           "load_training_set_file", "load_training_set_header", "save_neural_net",
           "save_neural_net_file",
           "save_training_set"]


# Names and paths ----------------------------------------------------------------------

def _path(kind, name):
    if not isinstance(name, str) or not name or "/" in name or os.sep in name \
            or (os.altsep and os.altsep in name) or "\0" in name:
        raise ValueError(f"name must be a non-empty str without path separators, got {name!r}")
    return data_dir() / f"{kind}.{name}"


def file_list(kind):
    """The names saved for ``kind`` ("neuralnet", "trainingset", "trainingset-header"), sorted."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(KINDS)}")
    folder = data_dir()
    prefix = kind + "."
    return sorted(p.name[len(prefix):] for p in folder.glob(prefix + "*")
                  if p.is_file() and not p.name.endswith(".tmp")) if folder.is_dir() else []


def _timestamp_name():
    return str(int(time.time() * 1000))


# JSON ---------------------------------------------------------------------------------

def _to_json(value, where):
    """``value`` as JSON data (NumPy scalars unwrapped, non-string-keyed dicts as pairs)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(v, where) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufU":  # e.g. labels: saved as a list
        return _to_json(value.tolist(), where)
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and ITEMS not in value:
            return {k: _to_json(v, f"{where}.{k}") for k, v in value.items()}
        return {ITEMS: [[_to_json(k, where), _to_json(v, f"{where}[{k!r}]")] for k, v in value.items()]}
    raise TypeError(f"cannot save {where}: a {type(value).__name__} is not JSON data")


def _from_json_object(obj):
    if set(obj) == {ITEMS}:
        pairs = obj[ITEMS]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ValueError(f"{ITEMS} must be a list of [key, value] pairs")
        return {k: v for k, v in pairs}
    return obj


def _dumps(document):
    return json.dumps(document, ensure_ascii=False, allow_nan=True).encode("utf-8")


def _loads(data, path):
    return loads_json(data, path, _from_json_object)


def _check_document(doc, path, kind):
    if not isinstance(doc, dict):
        raise FileFormatError(path, f"the metadata must be a JSON object, got {type(doc).__name__}")
    found = doc.get("format")
    if found != kind:
        raise FileFormatError(path, f"not a {kind} file (format {found!r})")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:  # true == 1 in Python, not here
        raise FileFormatError(path, f"format version {version!r} is not supported "
                                    f"(this synaptic reads version {VERSION})")
    return doc


_TYPES = {dict: "an object", list: "a list", str: "a string", int: "an integer", bool: "true or false",
          (int, float): "a number"}


def _field(doc, key, kind, path, where="", optional=False, minimum=None):
    """``doc[key]`` checked to be of ``kind`` (None allowed when ``optional``; an int at least
    ``minimum``).  A bool is not an int here."""
    name = where + key
    if key not in doc:
        raise FileFormatError(path, f"the metadata lacks {name!r}")
    value = doc[key]
    if value is None and optional:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise FileFormatError(path, f"{name!r} must be {_TYPES[kind]}, "
                                    f"got {json.dumps(value)[:60]}")
    if minimum is not None and value < minimum:
        raise FileFormatError(path, f"{name!r} must be at least {minimum}, got {value}")
    return value


def _check_header(header, path, where, nlabels=None):
    """A header's labels (a list of strings or numbers, ``nlabels`` of them) and name."""
    labels = header.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(v, (str, int, float)) for v in labels):
            raise FileFormatError(path, f"'{where}.labels' must be a list of strings or numbers, "
                                        f"got {json.dumps(labels)[:60]}")
        if nlabels is not None and len(labels) != nlabels:
            raise FileFormatError(path, f"'{where}.labels' holds {len(labels)} labels for "
                                        f"{nlabels} classes")
    name = header.get("name")
    if name is not None and not isinstance(name, str):
        raise FileFormatError(path, f"'{where}.name' must be a string, got {json.dumps(name)[:60]}")
    return header


# Atomic writes and safe reads ----------------------------------------------------------

def _write_npz(f, arrays):
    np.savez(f, **arrays)


def _file_mode():
    """The mode a plain ``open(path, "w")`` would give (mkstemp makes files 0600)."""
    try:
        with open("/proc/self/status") as f:
            umask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        umask = 0o022
    return 0o666 & ~umask


def _remove_stale_temporaries(folder):
    """Remove the temporary files of saves that were killed (SIGKILL, power loss): files of
    _atomic_write's naming pattern untouched for STALE_SECONDS (a live save writes on)."""
    cutoff = time.time() - STALE_SECONDS
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if TEMPORARY.fullmatch(entry.name):
            try:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                    os.unlink(entry.path)
            except OSError:  # gone already (another save cleaned it), or not ours to remove
                pass


def _atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it over ``path``
    (removing the stale temporary files of killed saves from the folder first)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.chmod(tmp, _file_mode())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable (POSIX); harmless to skip elsewhere
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError:
        pass
    return path


def _save_npz(path, document, arrays):
    entries = {META: np.frombuffer(_dumps(document), dtype=np.uint8)}
    entries.update(arrays)
    return _atomic_write(path, lambda f: _write_npz(f, entries))


def _open(path, kind):
    """(the Archive of ``path``, its checked document of ``kind``); see _archive.py."""
    archive = Archive(pathlib.Path(path), META)
    try:
        return archive, _check_document(archive.document(_from_json_object), path, kind)
    except BaseException:
        archive.close()
        raise


# Training sets ------------------------------------------------------------------------

def save_training_set(trset, name=None):
    """Write ``trainingset.<name>`` and ``trainingset-header.<name>`` in the data folder.

    The data folder is ``$SYNAPTIC_DATA``, else ``./data`` (created if needed).  The write is
    atomic: a failed save leaves the previous file intact.  The header records ``scaled``, so
    loading with ``scale=True`` never divides by 255 twice.

    Parameters
    ----------
    trset : TrainingSet
        The training set to save.
    name : str, optional
        Default: the header's name, else a millisecond timestamp.  The name of a built-in
        recipe ("mnist10k", "mnist5k") is refused: the saved set would never be loaded by
        that name (see :func:`load_training_set`).

    Returns
    -------
    str
        The name saved under.

    Raises
    ------
    ValueError
        A recipe's name, or a name with a path separator.
    TypeError
        Not a TrainingSet, or a header value that is not JSON data.

    Examples
    --------
    >>> import synaptic as syn
    >>> trset = syn.training_set([[0, 255], [255, 0]], ["a", "b"], name="tiny")
    >>> syn.save_training_set(trset)
    'tiny'
    >>> syn.load_training_set("tiny", scale=True).x.max().item()
    1.0
    """
    if not isinstance(trset, TrainingSet):
        raise TypeError(f"save_training_set needs a TrainingSet, got {type(trset).__name__}")
    header = dict(trset.header or {})
    name = header.get("name") or _timestamp_name() if name is None else name
    path = _path("trainingset", name)
    if name in RECIPES:
        raise ValueError(f"{name!r} is the name of a built-in recipe: load_training_set({name!r}) "
                         f"always builds the recipe, so save this set under another name, "
                         f"e.g. save_training_set(trset, {name + '-copy'!r})")
    if "shard" in header:
        raise ValueError("this training set is one rank's shard (synaptic.distributed.shard): "
                         "save the whole set")
    from .sparse import is_sparse
    if is_sparse(trset.x) or (trset.valid is not None and is_sparse(trset.valid.x)):
        raise TypeError("save_training_set stores dense arrays and this set's samples are "
                        "sparse (CSR): save them with scipy.sparse.save_npz(path, x.tocsr()) "
                        "instead")
    if not distributed.writes_files():  # distributed: rank 0 writes
        return name
    header["name"] = name
    header["scaled"] = bool(header.get("scaled", False))
    header_json = _to_json(header, "the header")
    arrays = {"x": trset.x}
    if trset.y is not None:
        arrays["y"] = trset.y
    if trset.w is not None:
        arrays["w"] = trset.w
    valid = trset.valid
    if valid is not None:
        arrays["valid_x"] = valid.x
        if valid.y is not None:
            arrays["valid_y"] = valid.y
        if valid.w is not None:
            arrays["valid_w"] = valid.w
    document = {"format": TRSET, "version": VERSION, "header": header_json,
                "bounds": [list(b) for b in trset.batch_bounds], "arrays": list(arrays)}
    _save_npz(path, document, arrays)
    header_doc = {"format": HEADER, "version": VERSION, "header": header_json}
    _atomic_write(_path("trainingset-header", name), lambda f: f.write(_dumps(header_doc)))
    return name


def load_training_set_file(path, *, scale=False, dtype=None):
    """The TrainingSet saved at ``path``; ``scale`` divides the samples by 255 unless they
    already are (the header's ``scaled``), ``dtype`` converts them (default: as saved)."""
    archive, doc = _open(path, TRSET)
    with archive:
        arrays = _read_training_arrays(archive, doc, path)
    header, bounds = doc["header"], doc["bounds"]
    if "scaled" in header and not isinstance(header["scaled"], bool):
        raise FileFormatError(path, f"'header.scaled' must be true or false, "
                                    f"got {json.dumps(header['scaled'])[:60]}")
    x, y, w = arrays["x"], arrays.get("y"), arrays.get("w")
    if "scaled" not in header:  # a file of synaptic 0.1: whether it was scaled is not recorded
        header["scaled"] = _looks_scaled(x, arrays.get("valid_x"))
        if scale and header["scaled"]:
            warnings.warn(f"{path} does not record whether its samples were scaled (an older "
                          f"synaptic saved it); they are all in [0, 1], so scale=True leaves "
                          f"them as they are", DataWarning, stacklevel=3)
    scale = scale and not header["scaled"]  # scaling twice would divide by 255 twice
    if scale:
        header["scaled"] = True
    if dtype is not None or scale:
        dtype = np.dtype(dtype or x.dtype)
        x, y = _converted(x, scale, dtype), None if y is None else y.astype(dtype)
        w = None if w is None else w.astype(dtype)
        if "valid_x" in arrays:
            arrays["valid_x"] = _converted(arrays["valid_x"], scale, dtype)
            for key in ("valid_y", "valid_w"):
                if key in arrays:
                    arrays[key] = arrays[key].astype(dtype)
    try:
        batches = [DataSet(x[a:b], None if y is None else y[a:b], None if w is None else w[a:b])
                   for a, b in bounds]
        valid = DataSet(arrays["valid_x"], arrays.get("valid_y"), arrays.get("valid_w")) \
            if "valid_x" in arrays else None
        return TrainingSet(header, batches, valid, source=f"the saved file {path}").validate()
    except (ValueError, TypeError) as err:
        raise FileFormatError(path, str(err)) from None


def _read_training_arrays(archive, doc, path):
    """The arrays of a training-set file, their headers checked against the document first."""
    header = _field(doc, "header", dict, path)
    bounds = _field(doc, "bounds", list, path)
    expected = _field(doc, "arrays", list, path)
    if not all(isinstance(a, str) for a in expected) or len(set(expected)) != len(expected) \
            or "x" not in expected or not set(expected) <= TRSET_ARRAYS \
            or ("valid_y" in expected and "valid_x" not in expected) \
            or ("valid_w" in expected and "valid_x" not in expected):
        raise FileFormatError(path, f"'arrays' must list x and optionally y, w, valid_x, "
                                    f"valid_y, valid_w; "
                                    f"got {json.dumps(expected)[:80]}")
    archive.expect(expected)
    stops = [0]
    for b in bounds:
        if not (isinstance(b, list) and len(b) == 2 and b[0] == stops[-1]
                and all(isinstance(v, int) and not isinstance(v, bool) for v in b) and b[1] > b[0]):
            raise FileFormatError(path, f"'bounds' must be consecutive [start, stop] pairs "
                                        f"from 0, got {json.dumps(bounds)[:80]}")
        stops.append(b[1])
    (n, d), _ = archive.check("x", ndim=2)
    if stops[-1] != n or len(bounds) == 0:
        raise FileFormatError(path, f"'bounds' cover {stops[-1]} rows, x has {n}")
    classes = archive.check("y", ndim=2)[0][1] if "y" in expected else None
    if classes is not None:
        archive.check("y", shape=(n, classes))
    if "w" in expected:
        archive.check("w", shape=(n,))
    _check_header(header, path, "header", classes)
    if "valid_x" in expected:
        m = archive.check("valid_x", ndim=2)[0][0]
        archive.check("valid_x", shape=(m, d))
        if ("valid_y" in expected) != (classes is not None):
            raise FileFormatError(path, "'arrays' must list valid_y exactly when it lists y")
        if classes is not None:
            archive.check("valid_y", shape=(m, classes))
        if "valid_w" in expected:
            archive.check("valid_w", shape=(m,))
    return {name: archive.read(name) for name in expected}


def _looks_scaled(*samples):
    """Whether every value lies in [0, 1] (raw pixels go up to 255)."""
    parts = [a for a in samples if a is not None and a.size]
    return bool(parts) and all(a.min() >= 0 and a.max() <= 1 for a in parts)


def _converted(x, scale, dtype):
    x = np.array(x, dtype=dtype)
    if scale:
        x /= 255
    return x


def load_training_set_header(name):
    """The header of the saved training set ``name`` (read from ``trainingset-header.<name>``,
    without the samples).

    Parameters
    ----------
    name : str
        A name in the data folder.

    Returns
    -------
    dict
        ``name``, ``timestamp``, ``type``, ``fieldsize``, ``batches``, ``valid``, ``labels``,
        ``scaled``.

    Raises
    ------
    FileNotFoundError
        No such saved set.
    FileFormatError
        A damaged file.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.save_training_set(syn.training_set([[0], [1]], [0, 1]), "pair")
    'pair'
    >>> syn.load_training_set_header("pair")["labels"]
    [0, 1]
    """
    path = _path("trainingset-header", name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (no saved training set named {name!r})")
    size = path.stat().st_size
    if size > MAX_META_BYTES:
        raise FileFormatError(path, f"{size} bytes, more than the {MAX_META_BYTES} a header may take")
    doc = _check_document(_loads(path.read_bytes(), path), path, HEADER)
    return _check_header(_field(doc, "header", dict, path), path, "header")


# Nets ---------------------------------------------------------------------------------

def _optimiser_state(state):
    """(JSON scalars, [[key, kind, n]], arrays) of an optimiser state dict."""
    scalars, layout, arrays = {}, [], {}
    for key, value in state.items():
        if key == TRANSIENT_STATE:
            continue
        i = len(layout)
        if isinstance(value, np.ndarray) or isinstance(value, np.generic):
            layout.append([key, "array" if isinstance(value, np.ndarray) else "scalar", None])
            arrays[f"state_{i}"] = np.array(value)
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, np.ndarray) for v in value):
            layout.append([key, "list", len(value)])
            arrays.update({f"state_{i}_{j}": np.array(v) for j, v in enumerate(value)})
        else:
            scalars[key] = _to_json(value, f"training state {key!r}")
    return scalars, layout, arrays


def save_neural_net(net, name=None):
    """Write ``neuralnet.<name>`` in the data folder: weights, dtype, layers, params,
    optimiser state, stats, labels and the random state, so training resumes exactly.

    Safe while the net trains: the snapshot is taken between two batches.

    Parameters
    ----------
    net : Net
        The net.
    name : str, optional
        Default: the header's name (set from the training set's), else a timestamp.

    Returns
    -------
    str
        The name saved under.

    Raises
    ------
    ValueError
        A name with a path separator.
    TypeError
        Not a Net.

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.save_neural_net(syn.mlp([2, 1], "sigmoid", seed=1), "small")
    'small'
    >>> syn.load_neural_net("small").n_params
    3
    """
    if not isinstance(net, Net):
        raise TypeError(f"save_neural_net needs a Net, got {type(net).__name__}")
    with net.lock:
        name = net.header.get("name") or _timestamp_name() if name is None else name
    save_neural_net_file(net, _path("neuralnet", name))
    return name


def save_neural_net_file(net, path):
    """Write ``net`` to ``path`` (any folder) as :func:`save_neural_net` does; read it back
    with :func:`load_neural_net_file`.  Distributed, only rank 0 writes (every rank's net is
    the same)."""
    if not isinstance(net, Net):
        raise TypeError(f"save_neural_net_file needs a Net, got {type(net).__name__}")
    if not distributed.writes_files():
        return
    with net.lock:
        arrays = {f"weight_{i}": w.copy() for i, w in enumerate(net.weights)}
        training = None
        if net.training is not None:
            t = net.training
            scalars, layout, state_arrays = _optimiser_state(t.state)
            arrays.update(state_arrays)
            stats = None if t.stats is None else {
                "epochs": t.stats.epochs, "tr_err": t.stats.tr_err, "val_err": t.stats.val_err,
                "seconds": t.stats.seconds, "diverged": t.stats.diverged,
                "learning_rate": t.stats.learning_rate, "early_stopping": t.stats.early_stopping,
                "batch_loss": t.stats.batch_loss}
            training = {"algo": t.algo, "params": t.params, "stats": stats,
                        "state": scalars, "state_arrays": layout}
        document = _to_json({"format": NET, "version": VERSION, "dtype": net.dtype.name,
                             "layers": net.spec(), "header": net.header, "training": training,
                             "rng": net.rng.bit_generator.state, "batches": net._batches},
                            "the net")
    _save_npz(path, document, arrays)


def load_neural_net(name):
    """The net saved as ``neuralnet.<name>`` in the data folder (idle, ready to train on).

    Parameters
    ----------
    name : str
        A name in the data folder.

    Returns
    -------
    Net

    Raises
    ------
    FileNotFoundError
        No such saved net.
    FileFormatError
        A damaged, edited or wrong-version file (the message names the problem).

    Examples
    --------
    >>> import synaptic as syn
    >>> syn.save_neural_net(syn.mlp([3, 2], "softmax", seed=1), "other")
    'other'
    >>> syn.load_neural_net("other").spec()[1]
    {'type': 'fully-connected', 'n': 2, 'act_fn': 'softmax'}
    """
    path = _path("neuralnet", name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (no saved net named {name!r})")
    return load_neural_net_file(path)


def load_neural_net_file(path):
    """The net saved at ``path``."""
    archive, doc = _open(path, NET)
    with archive:
        layer_docs = _field(doc, "layers", list, path)
        if len(layer_docs) > len(archive.entries):  # each layer but the input has an entry
            raise FileFormatError(path, f"'layers' declares {len(layer_docs)} layers, the file "
                                        f"holds {len(archive.entries)} entries")
        try:
            dtype = _check_dtype(_field(doc, "dtype", str, path))
            layers = _layers.build(layer_docs)
        except (TypeError, ValueError) as err:
            raise FileFormatError(path, str(err)) from None
        header = _check_header(_field(doc, "header", dict, path), path, "header", layers[-1].n)
        if header.get("targets") is not None:  # a net trained on continuous targets
            if header.get("labels") is not None:
                raise FileFormatError(path, "'header' holds labels and targets: one or the other")
            try:
                check_target_scaling(header["targets"], layers[-1].n, "'header.targets'")
            except (TypeError, ValueError) as err:
                raise FileFormatError(path, str(err)) from None
        tdoc = _field(doc, "training", dict, path, optional=True)
        rng = _load_rng(_field(doc, "rng", dict, path), path)
        batches = _field(doc, "batches", int, path, minimum=0)
        weights = [f"weight_{i}" for i in range(len(layers) - 1)]
        training, layout, state_names = None, [], []
        if tdoc is not None:
            training, layout, state_names = _load_training(tdoc, path, len(archive.entries))
        archive.expect(weights + state_names)
        for i, (name, layer) in enumerate(zip(weights, layers[1:]), start=1):
            archive.check(name, shape=layer.weight_shape, what=f"layer {i}: weights")
        for i, (key, kind, n) in enumerate(layout):
            if kind == "scalar":
                archive.check(f"state_{i}", shape=())
            elif training is not None and key in _weight_state(training):  # updated with the weights
                if kind != "list" or n != len(weights):
                    raise FileFormatError(path, f"'training.state_arrays[{i}]' ({key}) must be a "
                                                f"list of {len(weights)} arrays, one per layer")
                for j, layer in enumerate(layers[1:]):
                    archive.check(f"state_{i}_{j}", shape=layer.weight_shape,
                                  what=f"training state {key}[{j}]")
        arrays = {name: archive.read(name) for name in weights + state_names}
    if training is not None:
        _fill_state(training, layout, arrays, dtype)
    try:
        net = Net(layers, [arrays[k] for k in weights], training, dtype=dtype, header=header)
    except (TypeError, ValueError) as err:
        raise FileFormatError(path, str(err)) from None
    net.rng = rng
    net._batches = batches
    return net


def _load_training(tdoc, path, max_arrays):
    """(Training without its state arrays, their layout, the npz entries those need: at most
    ``max_arrays``)."""
    where = "training."
    algo = _field(tdoc, "algo", str, path, where)
    params = _field(tdoc, "params", dict, path, where)
    try:
        training = _training(algo, params)
    except (TypeError, ValueError) as err:
        raise FileFormatError(path, f"bad training: {err}") from None
    training.state = dict(_field(tdoc, "state", dict, path, where))
    training.state.pop(TRANSIENT_STATE, None)
    for key in NUMERIC_STATE:
        if key in training.state:
            _field(training.state, key, (int, float), path, where + "state.")
    for key in _weight_state(training):
        if key in training.state:
            raise FileFormatError(path, f"'{where}state.{key}' must be saved as arrays "
                                        "(training.state_arrays), one per layer")
    sdoc = _field(tdoc, "stats", dict, path, where, optional=True)
    if sdoc is not None:
        training.stats = _load_stats(sdoc, path)
    layout, names = _field(tdoc, "state_arrays", list, path, where), []
    for i, entry in enumerate(layout):
        ok = isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) \
            and entry[0] not in training.state and entry[0] != TRANSIENT_STATE
        single = ok and entry[1] in ("array", "scalar") and entry[2] is None
        if not (single or ok and entry[1] == "list" and type(entry[2]) is int and entry[2] > 0):
            raise FileFormatError(path, f"training.state_arrays[{i}] must be [key, kind, n], "
                                        f"got {json.dumps(entry)[:60]}")
        count = 1 if single else entry[2]
        if len(names) + count > max_arrays:  # before a name is made: n may be 10^9
            raise FileFormatError(path, f"'training.state_arrays' declares more arrays than the "
                                        f"file's {max_arrays} entries")
        names += [f"state_{i}"] if single else [f"state_{i}_{j}" for j in range(count)]
    if len({entry[0] for entry in layout}) != len(layout):
        raise FileFormatError(path, "'training.state_arrays' names a key twice")
    return training, layout, names


def _weight_state(training):
    """The state keys ``training``'s algorithm reads as one weight-shaped array per layer."""
    if (training.params.get("momentum") or {}).get("nesterov"):
        return WEIGHT_STATE["backprop"]
    return WEIGHT_STATE[training.algo]


def _fill_state(training, layout, arrays, dtype):
    state, weight_state = training.state, _weight_state(training)
    for i, (key, kind, n) in enumerate(layout):
        if key in weight_state:  # in the net's dtype (and byte order), as its weights
            state[key] = [np.require(arrays[f"state_{i}_{j}"], dtype=dtype,
                                     requirements=["C", "W"]) for j in range(n)]
        elif kind == "list":
            state[key] = [np.require(arrays[f"state_{i}_{j}"], requirements=["C", "W"])
                          for j in range(n)]
        elif kind == "array":
            state[key] = np.require(arrays[f"state_{i}"], requirements=["C", "W"])
        else:
            state[key] = arrays[f"state_{i}"][()]


def _number_list(value, path, where):
    if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise FileFormatError(path, f"{where!r} must be a list of numbers")
    return [float(v) for v in value]


def _load_stats(sdoc, path):
    where = "training.stats."
    errs = {}
    for part in ("tr_err", "val_err"):
        table = _field(sdoc, part, dict, path, where)
        unknown = sorted(str(k) for k in table if k not in STAT_KINDS)
        if unknown:  # the kinds the next epoch's stats are computed for (stats.update_stats)
            raise FileFormatError(path, f"'{where}{part}' holds unknown error kinds "
                                        f"{json.dumps(unknown)[:60]}; known: "
                                        f"{', '.join(STAT_KINDS)}")
        errs[part] = {k: _number_list(v, path, f"{where}{part}.{k}") for k, v in table.items()}
    epochs = _field(sdoc, "epochs", int, path, where, minimum=0)
    seconds = _number_list(_field(sdoc, "seconds", list, path, where), path, where + "seconds")
    rates = _number_list(sdoc.get("learning_rate", []), path, where + "learning_rate")
    batch_loss = _number_list(sdoc.get("batch_loss", []), path, where + "batch_loss")
    return Stats(epochs, errs["tr_err"], errs["val_err"], seconds, _load_diverged(sdoc, path),
                 rates, _load_early_stopping(sdoc, path), batch_loss)


def _load_early_stopping(sdoc, path):
    """``stats.early_stopping``: None or the record of early_stopping.py (files before it: None)."""
    where = "training.stats.early_stopping."
    doc = sdoc.get("early_stopping")
    if doc is None:
        return None
    keys = {"stopped_epoch", "best_epoch", "best", "errorkind", "restored"}
    if not isinstance(doc, dict) or set(doc) != keys:
        raise FileFormatError(path, "'training.stats.early_stopping' must be null or an object "
                                    f"of {', '.join(sorted(keys))}")
    best = doc["best"]
    if best is not None and (isinstance(best, bool) or not isinstance(best, (int, float))):
        raise FileFormatError(path, f"'{where}best' must be a number or null")
    return {"stopped_epoch": _field(doc, "stopped_epoch", int, path, where, minimum=0),
            "best_epoch": _field(doc, "best_epoch", int, path, where, optional=True, minimum=0),
            "best": None if best is None else float(best),
            "errorkind": _field(doc, "errorkind", str, path, where),
            "restored": _field(doc, "restored", bool, path, where)}


def _load_diverged(sdoc, path):
    """``stats.diverged``: None or {"epoch": int, "batch": int or None, "what": str}; a file
    without it (synaptic 0.1) has None."""
    where = "training.stats.diverged."
    doc = sdoc.get("diverged")
    if doc is None:
        return None
    if not isinstance(doc, dict) or set(doc) != {"epoch", "batch", "what"}:
        raise FileFormatError(path, "'training.stats.diverged' must be null or an object of "
                                    "epoch, batch and what")
    return {"epoch": _field(doc, "epoch", int, path, where, minimum=0),
            "batch": _field(doc, "batch", int, path, where, optional=True, minimum=0),
            "what": _field(doc, "what", str, path, where)}


def _load_rng(state, path):
    kind = state.get("bit_generator")
    if kind not in RNG_BIT_GENERATORS:
        raise FileFormatError(path, f"'rng.bit_generator' must be one of {RNG_BIT_GENERATORS}, "
                                    f"got {kind!r}")
    bitgen = getattr(np.random, kind)()
    try:
        bitgen.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as err:
        raise FileFormatError(path, f"bad 'rng' state ({type(err).__name__}: {err})") from None
    return np.random.Generator(bitgen)
