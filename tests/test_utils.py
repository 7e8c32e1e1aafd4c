"""synaptic.utils: the SYNAPTIC.md §9.9 vectors plus round-trip properties and bad inputs."""
import base64

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from synaptic import utils as U


def bits(text):
    return [int(c) for c in text.replace(" ", "")]


# pack / unpack ------------------------------------------------------------------------

@pytest.mark.parametrize("text, ints", [
    ("11000000 11000000", [192, 192]),
    ("10101010 01010101", [170, 85]),
    ("11111111 0101", [255, 80]),
    ("0", [0]),
    ("1", [128]),
    ("", []),
    ("11100110 00010111 00011011 00101110", [230, 23, 27, 46]),
    ("00011001 11101000 11100100 11010001", [25, 232, 228, 209]),
])
def test_pack(text, ints):
    packed = U.pack(bits(text))
    assert packed.tolist() == ints
    assert packed.dtype == np.uint8


@pytest.mark.parametrize("ints, text", [
    ([192, 192], "11000000 11000000"),
    ([170, 85], "10101010 01010101"),
    ([255, 80], "11111111 01010000"),
    ([0], "00000000"),
    ([128], "10000000"),
    ([], ""),
])
def test_unpack(ints, text):
    assert U.unpack(ints).tolist() == bits(text)


@given(st.lists(st.integers(0, 1), max_size=80))
def test_pack_unpack_roundtrip(b):
    assert U.unpack(U.pack(b)).tolist()[:len(b)] == b
    assert len(U.pack(b)) == (len(b) + 7) // 8


def test_pack_unpack_bad_input():
    with pytest.raises(ValueError, match="0 or 1"):
        U.pack([0, 2, 1])
    with pytest.raises(ValueError, match="0..255"):
        U.unpack([256])
    with pytest.raises(ValueError, match="0..255"):
        U.unpack([-1])
    with pytest.raises(TypeError, match="integers"):
        U.unpack([0.5])


# binary images ------------------------------------------------------------------------

IMG_INTS = [204, 170, 170, 51, 204, 85, 85, 51]
ROWS6 = ["110011", "101010", "101010", "001100", "110011", "010101", "010101", "001100"]
ROWS8 = ["11001100", "10101010", "10101010", "00110011",
         "11001100", "01010101", "01010101", "00110011"]


def test_imgint2bits():
    assert U.imgint2bits(IMG_INTS, 6, 8).tolist() == bits("".join(ROWS6))
    assert U.imgint2bits(IMG_INTS, 8, 8).tolist() == bits("".join(ROWS8))


def test_imgbits2int_pads_rows_with_ones():
    assert U.imgbits2int(bits("".join(ROWS6)), 6, 8).tolist() == [207, 171, 171, 51,
                                                                   207, 87, 87, 51]
    assert U.imgbits2int(bits("".join(ROWS8)), 8, 8).tolist() == IMG_INTS


@given(st.integers(1, 20), st.integers(1, 6), st.data())
def test_image_roundtrip(w, h, data):
    b = data.draw(st.lists(st.integers(0, 1), min_size=w * h, max_size=w * h))
    ints = U.imgbits2int(b, w, h)
    assert len(ints) == ((w + 7) // 8) * h
    assert U.imgint2bits(ints, w, h).tolist() == b


def test_image_size_mismatch():
    with pytest.raises(ValueError, match="needs 8 bytes, got 7"):
        U.imgint2bits(IMG_INTS[:7], 6, 8)
    with pytest.raises(ValueError, match="needs 48 bits, got 47"):
        U.imgbits2int([0] * 47, 6, 8)
    with pytest.raises(ValueError, match="width"):
        U.imgbits2int([], 0, 8)


# base64 -------------------------------------------------------------------------------

@pytest.mark.parametrize("ints, text", [
    ([0, 16, 131, 16, 81, 135], "ABCDEFGH"),
    ([0, 16, 131, 16, 81], "ABCDEFE="),
    ([0, 16, 131, 16], "ABCDEA=="),
    ([], ""),
])
def test_base64(ints, text):
    assert U.tobase64(ints) == text
    assert U.frombase64(text).tolist() == ints


@given(st.binary(max_size=50))
def test_base64_matches_stdlib(raw):
    ints = list(raw)
    assert U.tobase64(ints) == base64.b64encode(raw).decode()
    assert U.frombase64(U.tobase64(ints)).tolist() == ints


def test_base64_bad_input():
    with pytest.raises(ValueError, match="invalid base64"):
        U.frombase64("AB*D")
    with pytest.raises(TypeError, match="str"):
        U.frombase64(b"ABCD")
    with pytest.raises(ValueError, match="0..255"):
        U.tobase64([300])


def test_encode_decode_sample():
    b = bits("".join(ROWS6))
    encoded = U.encode_sample([6, 8], b)
    assert encoded == U.tobase64([207, 171, 171, 51, 207, 87, 87, 51])
    assert U.decode_sample([6, 8], encoded).tolist() == b


# labels -------------------------------------------------------------------------------

def test_unique():
    assert U.unique(list("ccxazbacyzd")) == list("abcdxyz")
    assert U.unique([10, 9, 2, 9]) == [2, 9, 10]  # natural, not lexicographic, order
    values = U.unique(np.array([3, 1, 3], dtype=np.uint8))
    assert values == [1, 3] and all(type(v) is int for v in values)


def test_tobinary_frombinary():
    labels = ["8", "1", "2", "8", "3", "1", "3"]
    codes, uniq = U.tobinary(labels)
    assert uniq == ["1", "2", "3", "8"]
    assert codes.tolist() == [[0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1],
                              [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0]]
    assert U.frombinary(uniq, codes) == labels
    assert U.frombinary(uniq, codes.tolist()) == labels


def test_label_errors():
    with pytest.raises(TypeError, match="cannot be sorted together.*int, str"):
        U.tobinary([1, "a"])
    with pytest.raises(TypeError, match="not hashable"):
        U.tobinary([[1], [2]])
    with pytest.raises(ValueError, match="NaN"):
        U.unique([1.0, float("nan")])
    with pytest.raises(ValueError, match="code 1 is not a one-hot"):
        U.frombinary(["a", "b"], [[1, 0], [1, 1]])
    with pytest.raises(ValueError, match="n x 2"):
        U.frombinary(["a", "b"], [[1, 0, 0]])


def test_bincodes():
    assert U.bincodes(3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert U.bincodes(0).shape == (0, 0)


# data manipulation --------------------------------------------------------------------

@pytest.mark.parametrize("n, expected", [(784, [28, 28]), (12, [4, 3]), (7, [7, 1]),
                                         (0, [0, 1]), (1, [1, 1]), (3072, [64, 48])])
def test_divisors(n, expected):
    assert U.divisors(n) == expected


def test_partition():
    bounds = U.partition(11, 3)
    assert bounds == [(0, 3), (3, 6), (6, 9), (9, 11)]
    assert [b - a for a, b in bounds] == [3, 3, 3, 2]
    assert U.partition(11, None) == [(0, 11)]
    assert U.partition(11) == [(0, 11)]
    assert U.partition(11, 11) == [(0, 11)]
    assert U.partition(11, 50) == [(0, 11)]
    assert U.partition(4, 1) == [(0, 1), (1, 2), (2, 3), (3, 4)]


def test_partition_bad_input():
    with pytest.raises(ValueError, match="batchsize must be >= 1"):
        U.partition(11, 0)
    with pytest.raises(TypeError, match="batchsize must be an int"):
        U.partition(11, 2.5)
    with pytest.raises(ValueError, match="n must be >= 0"):
        U.partition(-1, 2)


def test_shuffle_vecs_keeps_pairs_aligned():
    v1 = ["1", "2", "3", "4", "5", "6"]
    v2 = np.array([1, 2, 3, 4, 5, 6])
    s1, s2 = U.shuffle_vecs(v1, v2, seed=7)
    assert isinstance(s1, list) and isinstance(s2, np.ndarray)
    assert [int(a) for a in s1] == s2.tolist()
    assert sorted(s2.tolist()) == [1, 2, 3, 4, 5, 6]
    assert s1 != v1  # seed 7 moves something
    again = U.shuffle_vecs(v1, v2, seed=7)
    assert again[0] == s1
    assert U.shuffle_vecs(v1, seed=np.random.default_rng(7))[0] == s1


def test_shuffle_vecs_length_mismatch():
    with pytest.raises(ValueError, match=r"same length.*\[3, 2\]"):
        U.shuffle_vecs([1, 2, 3], [1, 2])


# matrices -----------------------------------------------------------------------------

def test_bias_columns():
    x = np.array([[2.0, 3.0], [4.0, 5.0]])
    xb = U.with_bias(x)
    assert xb.tolist() == [[1, 2, 3], [1, 4, 5]]
    assert U.with_bias(np.ones((2, 2), np.float32)).dtype == np.float32
    w = np.array([[0.5, 1.0, 2.0], [0.25, 3.0, 4.0]])
    assert U.without_bias(w).tolist() == [[1, 2], [3, 4]]
    assert np.shares_memory(U.without_bias(w), w)
    with pytest.raises(ValueError, match="2-D"):
        U.with_bias([1.0, 2.0])


def test_safe_div():
    out = U.safe_div([[1.0, 2.0], [3.0, 4.0]], [[2.0, 0.0], [0.0, 8.0]])
    assert out.tolist() == [[0.5, 2.0], [3.0, 0.5]]
    with pytest.raises(ValueError, match="same shape"):
        U.safe_div([1.0, 2.0], [1.0])


def test_quasi_equal():
    assert U.quasi_equal(1.0, 1.0000009)
    assert U.quasi_equal(1.0, 0.9999991)
    assert not U.quasi_equal(1.0, 1.0000011)
    assert not U.quasi_equal(1.0, 0.999999)
    mat = np.array([[1.0, 2.0, 3.1], [4.0, 5.0, 6.0]])
    assert not U.m_quasi_equal([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], mat)
    assert U.m_quasi_equal([[1.0, 2.0, 3.0999991], [4.0, 5.0, 6.0]], mat)
    assert not U.m_quasi_equal([[1.0, 2.0, 3.1]], mat)


# histograms ---------------------------------------------------------------------------

def test_histogram_vectors():
    assert U.histogram([1], 1).data == [1]
    assert U.histogram([1, 2, 2, 3], 3).data == [1, 2, 1]
    samples = [-1.6, 3.0, 1.91, 0.9, 1.1, 1.9, 2.1, 2.95, 3.1, 2.9, 4.1]
    assert U.histogram(samples, 6).data == [1, 0, 2, 3, 4, 1]
    assert U.histogram([1, 2]).data == [1] + [0] * 18 + [1]


def test_histogram_labels_are_bin_centres():
    h = U.histogram([0.0, 1.0, 4.0], 4)
    assert h.labels == [0.5, 1.5, 2.5, 3.5]
    assert h.data == [1, 1, 0, 1]
    assert U.histogram([5, 5], 2) == U.Histogram(labels=[5.5, 6.5], data=[2, 0])


def test_histogram_bad_input():
    with pytest.raises(ValueError, match="empty"):
        U.histogram([])
    with pytest.raises(ValueError, match="NaN"):
        U.histogram([1.0, np.nan])
    with pytest.raises(ValueError, match="nbins must be >= 1"):
        U.histogram([1.0], 0)


def test_weight_histograms_exclude_bias():
    w1 = np.array([[100.0, 0.0, 1.0], [-100.0, 2.0, 3.0]])  # biases far outside the range
    w2 = np.array([[7.0, 1.0], [7.0, 1.0]])
    h1, h2 = U.weight_histograms([w1, w2], nbins=4)
    assert h1.data == [1, 1, 1, 1]
    assert h1.labels == [0.375, 1.125, 1.875, 2.625]
    assert h2.data == [2, 0, 0, 0]
    assert len(U.weight_histograms([w1])[0].data) == 20
