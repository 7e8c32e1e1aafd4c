"""The strided/padded convolution and the strided pools of both backends against PyTorch
(torch.nn.functional.conv2d / max_pool2d / avg_pool2d and autograd), float64.  Skipped when
torch is not installed; synaptic itself never imports torch."""
import numpy as np
import pytest

import synaptic
from synaptic._kernels import native, reference as R

from helpers import using

torch = pytest.importorskip("torch")
F = torch.nn.functional

BACKENDS = [pytest.param(R, id="numpy"),
            pytest.param(native, id="native",
                         marks=pytest.mark.skipif(native is None, reason="not built"))]


def _geometries(count, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        c, h, w = (int(v) for v in rng.integers(1, [4, 12, 12]))
        fh, fw = int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        pt, pb = (int(v) for v in rng.integers(0, fh, 2))
        pl, pr = (int(v) for v in rng.integers(0, fw, 2))
        out.append(((c, h, w, fh, fw, sh, sw, pt, pb, pl, pr), int(rng.integers(1, 5)),
                    int(rng.integers(1, 4))))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(24))
def test_conv_forward_and_gradients_match_torch(backend, case):
    geom, k, n = _geometries(24)[case]
    c, h, w, fh, fw, sh, sw, pt, pb, pl, pr = geom
    rng = np.random.default_rng(case)
    x, wts = rng.standard_normal((n, c * h * w)), rng.standard_normal((k, 1 + c * fh * fw))
    xt = torch.tensor(x.reshape(n, c, h, w), requires_grad=True)
    wt = torch.tensor(wts[:, 1:].reshape(k, c, fh, fw), requires_grad=True)
    bt = torch.tensor(wts[:, 0], requires_grad=True)
    zt = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=(sh, sw))   # pad: left, right, top, bottom
    _, _, hc, wc = zt.shape
    out = np.full((n, k * hc * wc), np.nan)
    backend.conv_forward(x, wts, geom, R.ACT_LINEAR, (R.POOL_NONE, 1, 1), out)
    np.testing.assert_allclose(out, zt.detach().numpy().reshape(n, -1), rtol=1e-10, atol=1e-10)
    dz = rng.standard_normal(out.shape)
    zt.backward(torch.tensor(dz.reshape(zt.shape)))
    gw, dx = np.full(wts.shape, np.nan), np.full(x.shape, np.nan)
    backend.conv_weight_grad(dz, None, x, geom, gw)
    backend.conv_input_grad(dz, None, wts, geom, None, R.ACT_LINEAR, dx)
    np.testing.assert_allclose(gw[:, 0], bt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw[:, 1:], wt.grad.numpy().reshape(k, -1), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy().reshape(n, -1), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", range(24))
def test_strided_pools_match_torch(backend, case):
    rng = np.random.default_rng(100 + case)
    n, k, hc, wc = (int(v) for v in rng.integers(1, [4, 4, 10, 10]))
    ph, pw = int(rng.integers(1, hc + 1)), int(rng.integers(1, wc + 1))
    stride = tuple(int(v) for v in rng.integers(1, 4, 2))
    y = rng.standard_normal((n, k * hc * wc))
    for kind in ("max", "avg"):
        yt = torch.tensor(y.reshape(n, k, hc, wc), requires_grad=True)
        pt = (F.max_pool2d if kind == "max" else F.avg_pool2d)(yt, (ph, pw), stride)
        out = np.full((n, pt[0].numel()), np.nan)
        g = rng.standard_normal(out.shape)
        pt.backward(torch.tensor(g.reshape(pt.shape)))
        back = np.full(y.shape, np.nan)
        if kind == "max":
            idx = np.full(out.shape, -1, np.int32)
            backend.max_pool(y, (k, hc, wc), ph, pw, out, idx, stride)
            backend.max_pool_backward(g, idx, back)
        else:
            backend.avg_pool(y, (k, hc, wc), ph, pw, out, stride)
            backend.avg_pool_backward(g, (k, hc, wc), ph, pw, None, R.ACT_LINEAR, back, stride)
        np.testing.assert_allclose(out, pt.detach().numpy().reshape(n, -1), rtol=1e-12)
        np.testing.assert_allclose(back, yt.grad.numpy().reshape(n, -1), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "native"])
def test_a_same_padded_layer_matches_torchs_same(backend):
    """The layer's "same" (TensorFlow's rule) with stride 1 is PyTorch's ``padding="same"``,
    the odd extra zero after (right/bottom), with even and odd kernels."""
    if backend == "native" and native is None:
        pytest.skip("not built")
    rng = np.random.default_rng(7)
    for fw, fh in [(4, 3), (2, 5), (3, 3)]:
        net = synaptic.neural_net(
            [{"type": "input", "fieldsize": [2, 9, 7]},
             {"type": "convolution", "act_fn": "linear",
              "feature_map": {"size": [fw, fh], "k": 3, "padding": "same"}},
             {"type": "fully-connected", "n": 1, "act_fn": "sigmoid"}], seed=1)
        x = rng.standard_normal((4, 2 * 9 * 7))
        with using(backend):
            got = net.activities(x)[0]
        w = net.weights[0]
        want = F.conv2d(torch.tensor(x.reshape(4, 2, 7, 9)),
                        torch.tensor(w[:, 1:].reshape(3, 2, fh, fw)), torch.tensor(w[:, 0]),
                        padding="same")
        np.testing.assert_allclose(got, want.numpy().reshape(4, -1), rtol=1e-10, atol=1e-10)
