"""NumPy twin of the convolution and pooling kernels (``conv.pyx``, ``pool.pyx``).

Same names, same signatures, same results (within a stated tolerance) as the compiled
kernels; ``reference.py`` re-exports everything here, so both backends expose one API.
The argument checks ``check_geom``, ``check_pool``, ``check_map_shape`` and the POOL_* codes
are those of ``checks.py`` (shared with the compiled kernels), re-exported here.

Geometry (SYNAPTIC.md §2.2, §3):
* ``geom = (c, h, w, fh, fw)``: ``c`` input channels of ``h`` rows by ``w`` columns and an
  ``fh x fw`` kernel.  A sample is one row of ``c*h*w`` values, channel-major, then row-major
  with the width fastest (NumPy: ``x.reshape(n, c, h, w)``).  The long form
  ``(c, h, w, fh, fw, sh, sw, pt, pb, pl, pr)`` adds the strides (down, across) and the
  zero padding (rows above, below, columns left, right; each at most the kernel size - 1);
  the 5 ints mean stride 1, no padding.
* The weights are ``K x (1 + c*fh*fw)``: the bias in column 0, then ``W[:, 1:]`` reshaped
  ``(K, c, fh, fw)``.  Cross-correlation, no flip, over the zero-padded field ``xp``:
  ``z[n, k, i, j] = b[k] + sum W[k, c, r, s] xp[n, c, i*sh + r, j*sw + s]``; the conv map is
  ``hc x wc = ((h + pt + pb - fh) // sh + 1) x ((w + pl + pr - fw) // sw + 1)`` (stride 1, no
  padding: ``(h - fh + 1) x (w - fw + 1)``), and a conv row holds ``K*hc*wc`` values in the
  same layout (``(n, K, hc, wc)``).
* Pooling: ``pool = (kind, ph, pw)``: non-overlapping ``ph x pw`` windows that tile the map
  (``shape = (K, hc, wc)``; ``ph`` divides ``hc`` and ``pw`` divides ``wc``) give
  ``ho x wo = (hc/ph) x (wc/pw)`` per map.  ``(kind, ph, pw, sh, sw)`` (the pool kernels'
  ``stride=(sh, sw)``): window (io, jo) starts at row ``io*sh``, column ``jo*sw``; floor mode,
  ``ho = (hc - ph) // sh + 1``, ``wo = (wc - pw) // sw + 1`` (the window must fit the map;
  windows overlap when the stride is below the size, trailing rows/columns no window covers
  are ignored).  Max pooling scans each window row-major and keeps the **first** maximum
  (strict ``>`` from -inf, so NaN is never chosen); ``idx`` (int32) holds, for each pooled
  unit, its column in the pre-pool row: ``k*hc*wc + ii*wc + jj``.  Average pooling takes the
  window sum (row-major) / ``(ph*pw)``; its gradient is added over overlapping windows.
* Gradients to a conv layer come either dense (``dz`` is ``n x K*hc*wc``, ``idx`` None) or
  through max pooling (``dz`` is the pooled ``n x K*ho*wo`` gradient and ``idx`` the pool
  indices: the dense gradient is ``dz`` scattered (added) at ``idx``, zero elsewhere; each
  index must lie in the map of its pooled unit; with overlapping windows an index may repeat).

``work`` is the scratch the compiled kernels use (a 1-D array of the data's dtype holding at
least ``conv_work_size(geom, k, pool, threads)`` elements, owned by the caller and reused;
None lets the kernel allocate it).  The twin checks it and does not use it.
"""
import numpy as np

from .checks import (N_POOL, POOL_AVG, POOL_MAX, POOL_NONE, check_geom,  # noqa: F401
                     check_map_shape, check_pool, conv_map)
from .reference_dense import (ACT_LINEAR, LEAKY_SLOPE, _check_2d, _check_act, _check_shape,
                              activate, derivative)

# conv_work_size layout (elements of the data's dtype): the compiled kernels split a batch
# into at most WG_CHUNKS fixed chunks whose partial weight gradients are added in chunk
# order (the bits do not depend on the thread count); rows are padded to PAD elements.
WG_CHUNKS = 8
PAD = 16
_MAX_INDEX = 2**31 - 1


def _round(v, m=PAD):
    return (v + m - 1) // m * m


def conv_work_size(geom, k, threads=1):
    """Elements of scratch the compiled conv kernels need with ``threads`` threads."""
    g = check_geom(geom)
    c, h0, w0, fh, fw, sh, sw, pt, pb, pl, pr = g
    k, threads = int(k), int(threads)
    if k < 1 or threads < 1:
        raise ValueError(f"k and threads must be positive, got {k}, {threads}")
    h, w = h0 + pt + pb, w0 + pl + pr     # the padded field the kernels copy a sample to
    hc, wc = conv_map(g)
    p, q = c * fh * fw, hc * wc
    pp, qp = _round(p), _round(q)
    # per thread: a padded copy of the sample, then im2col (p x qp), the conv maps (k x qp)
    # and a softmax row (k*q); or the patches/their gradients (q x pp) and the lists of
    # nonzero gradients (ints and values)
    sample = _round(c * h * w) + PAD
    forward = _round(p * qp) + PAD + _round(k * qp) + _round(k * q)
    t = (hc - 1) * w + wc              # the direct forward's span of one map: rows w apart
    forward = max(forward, _round(k * _round(t)) + _round(k * q))
    backward = _round(q * pp) + PAD + 2 * _round(k * q + q) + _round(max(q, k) + 1) + _round(q + 1)
    # shared: the chunks' partial weight gradients, a padded copy of W, the chunks' bias sums
    shared = _round(WG_CHUNKS * k * pp) + _round(k * pp) + _round(2 * WG_CHUNKS * k)
    return shared + threads * (sample + max(forward, backward)) + PAD


def _check_work(work, dtype, geom, k, *others):
    if work is None:
        return
    if not isinstance(work, np.ndarray) or work.ndim != 1 or work.dtype != dtype:
        raise TypeError(f"work must be a 1-D {np.dtype(dtype).name} array")
    _check_disjoint(work, "work", *others)
    if work.size < conv_work_size(geom, k, 1):
        raise ValueError(f"work holds {work.size} elements, at least "
                         f"{conv_work_size(geom, k, 1)} needed")


def _check_float(name, a, dtype=None):
    if not isinstance(a, np.ndarray) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(f"{name} has dtype {a.dtype} but the data has dtype {dtype}")


def _check_float_2d(name, a, dtype=None):
    """``a`` a 2-D float32 or float64 array (of ``dtype`` if given)."""
    _check_float(name, a, dtype)
    _check_2d(name, a)


def _check_deriv_args(y, act, slope, out):
    """The factor f'(y) of a backward pass into ``out``: ``y`` (needed unless act is
    ACT_LINEAR) of out's dtype and shape, ``act`` and ``slope`` valid."""
    if act != ACT_LINEAR:
        if y is None:
            raise ValueError("y is needed unless act is ACT_LINEAR")
        _check_float("y", y, out.dtype)
        _check_shape("y", y, out.shape)
    derivative(np.empty((0, 1), out.dtype), act, np.empty((0, 1), out.dtype), slope)   # act check


def _check_disjoint(out, name, *others):
    """``out`` is written while ``others`` (name, array) pairs are still read."""
    for other_name, other in zip(others[::2], others[1::2]):
        if other is not None and np.may_share_memory(out, other):
            raise ValueError(f"{name} must not share memory with {other_name}")


def _check_idx(idx, shape):
    if not isinstance(idx, np.ndarray) or idx.dtype != np.int32:
        raise TypeError("idx must be an int32 array")
    _check_shape("idx", idx, shape)


def _windows(y, k, hc, wc, ph, pw, sh, sw):
    """(n, k, ho, wo, ph*pw) view-copy of the pooling windows of the rows of ``y``."""
    n = y.shape[0]
    if sh == ph and sw == pw and hc % ph == 0 and wc % pw == 0:    # tiling windows
        ho, wo = hc // ph, wc // pw
        return (y.reshape(n, k, ho, ph, wo, pw).transpose(0, 1, 2, 4, 3, 5)
                .reshape(n, k, ho, wo, ph * pw))
    win = np.lib.stride_tricks.sliding_window_view(y.reshape(n, k, hc, wc), (ph, pw),
                                                   axis=(2, 3))[:, :, ::sh, ::sw]
    return win.reshape(*win.shape[:4], ph * pw)


def _max_pool(y, k, hc, wc, ph, pw, out, idx, sh=None, sw=None):
    sh, sw = sh or ph, sw or pw
    win = _windows(y, k, hc, wc, ph, pw, sh, sw)
    a = np.argmax(np.where(np.isnan(win), -np.inf, win), axis=-1)   # first max, NaN skipped
    out[...] = np.take_along_axis(win, a[..., None], -1).reshape(out.shape)
    if idx is not None:
        ho, wo = win.shape[2:4]
        base = (np.arange(k)[:, None, None] * (hc * wc)
                + np.arange(ho)[None, :, None] * (sh * wc)
                + np.arange(wo)[None, None, :] * sw)
        idx[...] = (base + (a // pw) * wc + a % pw).reshape(idx.shape)


def _avg_pool(y, k, hc, wc, ph, pw, out, sh=None, sw=None):
    win = _windows(y, k, hc, wc, ph, pw, sh or ph, sw or pw)
    total = win[..., 0].copy()
    for e in range(1, ph * pw):        # row-major order, as the compiled kernel adds
        total += win[..., e]
    out[...] = (total / y.dtype.type(ph * pw)).reshape(out.shape)


def _patches(x, g):
    """The (n, c*fh*fw, hc*wc) im2col tensor of the 11-int geometry ``g``:
    [n, (c, r, s), i*wc + j] = xp[n, c, i*sh + r, j*sw + s], ``xp`` the zero-padded field
    (copied from the sliding windows with the map rows innermost, the fast order)."""
    c, h, w, fh, fw, sh, sw, pt, pb, pl, pr = g
    n = x.shape[0]
    x4 = x.reshape(n, c, h, w)
    if pt or pb or pl or pr:
        x4 = np.pad(x4, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(x4, (fh, fw), axis=(2, 3))
    if sh > 1 or sw > 1:
        win = win[:, :, ::sh, ::sw]
    hc, wc = conv_map(g)
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * fh * fw, hc * wc)


# ---------------------------------------------------------------------------------------
# convolution

def conv_forward(x, w, geom, act, pool, out, idx=None, pre=None, work=None, slope=LEAKY_SLOPE):
    """out = pool(f(conv(x, w) + bias)): a convolution layer's forward pass.

    ``x`` n x c*h*w, ``w`` K x (1 + c*fh*fw), ``pool = (kind, ph, pw)``.  ``out`` holds the
    pooled rows (n x K*ho*wo; without pooling n x K*hc*wc).  Max pooling writes the pool
    indices to ``idx`` (int32, the shape of ``out``) unless it is None.  With pooling, ``pre``
    (n x K*hc*wc, or None) receives the activities before pooling.  Softmax normalises each
    whole pre-pool row.
    """
    g = check_geom(geom)
    c, h, wd, fh, fw = g[:5]
    _check_float_2d("x", x)
    _check_float_2d("w", w, x.dtype)
    if x.shape[1] != c * h * wd:
        raise ValueError(f"x has {x.shape[1]} columns, geom {geom} needs {c * h * wd}")
    if w.shape[1] != 1 + c * fh * fw or w.shape[0] < 1:
        raise ValueError(f"w has shape {w.shape}, expected (K, {1 + c * fh * fw})")
    n, k = x.shape[0], w.shape[0]
    hc, wc = conv_map(g)
    kind, ph, pw, sh, sw, ho, wo = check_pool(pool, hc, wc)
    _check_act(act, slope)
    _check_float("out", out, x.dtype)
    _check_shape("out", out, (n, k * ho * wo))
    if kind == POOL_NONE and (idx is not None or pre is not None):
        raise ValueError("idx and pre are for pooled layers only")
    if idx is not None:
        if kind != POOL_MAX:
            raise ValueError("idx is for max pooling only")
        _check_idx(idx, out.shape)
    if pre is not None:
        _check_float("pre", pre, x.dtype)
        _check_shape("pre", pre, (n, k * hc * wc))
    _check_disjoint(out, "out", "x", x, "w", w, "idx", idx, "pre", pre)
    if pre is not None:
        _check_disjoint(pre, "pre", "x", x, "w", w, "idx", idx)
    _check_work(work, x.dtype, geom, k, "x", x, "w", w, "out", out, "idx", idx, "pre", pre)
    if k * hc * wc > _MAX_INDEX:
        raise ValueError("the conv map is too large for int32 indices")
    if kind == POOL_NONE:
        target = out
    else:
        target = pre if pre is not None else np.empty((n, k * hc * wc), x.dtype)
    z = target.reshape(n, k, hc * wc)
    np.matmul(w[:, 1:], _patches(x, g), out=z)    # (K, P) . (n, P, Q)
    z += w[:, 0][None, :, None]
    activate(target, act, target, slope)
    if kind == POOL_MAX:
        _max_pool(target, k, hc, wc, ph, pw, out, idx, sh, sw)
    elif kind == POOL_AVG:
        _avg_pool(target, k, hc, wc, ph, pw, out, sh, sw)


def _dense_dz(dz, idx, n, k, q, qo):
    """The n x K*hc*wc gradient: ``dz`` itself, or ``dz`` scattered (added) at ``idx``."""
    if idx is None:
        _check_shape("dz", dz, (n, k * q))
        return dz
    _check_shape("dz", dz, (n, k * qo))
    _check_idx(idx, dz.shape)
    lo = (np.arange(k * qo) // qo * q).astype(np.int64)
    if idx.size and (np.any(idx < lo) or np.any(idx >= lo + q)):
        raise ValueError("idx holds an index outside the map of its pooled unit")
    flat = (np.arange(n, dtype=np.int64)[:, None] * (k * q) + idx).ravel()
    dense = np.bincount(flat, weights=dz.ravel(), minlength=n * k * q)
    return dense.astype(dz.dtype).reshape(n, k * q)


def conv_weight_grad(dz, idx, x, geom, out, work=None):
    """out = dE/dW of a convolution layer, summed over the rows (``out[:, 0]`` the bias).

    ``dz`` is dE/dz before pooling (n x K*hc*wc, ``idx`` None) or the pooled gradient with
    the max-pool indices ``idx`` (see the module docstring); ``x`` n x c*h*w, ``out``
    K x (1 + c*fh*fw).  out[k, 0] = sum dz[n, k, :, :]; out[k, 1 + (c, r, s)] =
    sum_{n, i, j} x[n, c, i + r, j + s] dz[n, k, i, j].
    """
    g = check_geom(geom)
    c, h, wd, fh, fw = g[:5]
    _check_float_2d("dz", dz)
    _check_float_2d("x", x, dz.dtype)
    _check_float_2d("out", out, dz.dtype)
    n, k = x.shape[0], out.shape[0]
    if x.shape[1] != c * h * wd:
        raise ValueError(f"x has {x.shape[1]} columns, geom {geom} needs {c * h * wd}")
    if out.shape[1] != 1 + c * fh * fw or k < 1:
        raise ValueError(f"out has shape {out.shape}, expected (K, {1 + c * fh * fw})")
    hc, wc = conv_map(g)
    q = hc * wc
    qo = dz.shape[1] // k if idx is not None else q
    if idx is not None and dz.shape[1] % k:
        raise ValueError(f"dz has {dz.shape[1]} columns, not a multiple of K = {k}")
    if dz.shape[0] != n:
        raise ValueError(f"dz has {dz.shape[0]} rows, x has {n}")
    _check_disjoint(out, "out", "dz", dz, "x", x)
    _check_work(work, dz.dtype, geom, k, "dz", dz, "x", x, "out", out, "idx", idx)
    dense = _dense_dz(dz, idx, n, k, q, qo).reshape(n, k, q)
    out[:, 0] = dense.sum(axis=(0, 2), dtype=np.float64)
    # sum_n dz[n] (K x Q) . patches[n]^T (Q x P)
    np.sum(np.matmul(dense, _patches(x, g).transpose(0, 2, 1)), axis=0,
           out=out[:, 1:])


def conv_input_grad(dz, idx, w, geom, y, act, out, work=None, slope=LEAKY_SLOPE):
    """out = (dE/dx) * f'(y): the gradient a convolution layer sends to the layer below.

    ``dz``/``idx`` as in :func:`conv_weight_grad`; ``w`` K x (1 + c*fh*fw).  dE/dx[n, c, i, j]
    = sum_{k, r, s} dz[n, k, i - r, j - s] W[k, c, r, s] (a full correlation with the flipped
    kernel, the bias left out); then it is multiplied by f'(y), with ``y`` (n x c*h*w) the
    activity of the layer below and ``act`` its activation code (ACT_LINEAR: no factor, ``y``
    may be None).
    """
    g = check_geom(geom)
    c, h, wd, fh, fw, sh, sw, pt, pb, pl, pr = g
    _check_float_2d("dz", dz)
    _check_float_2d("w", w, dz.dtype)
    _check_float_2d("out", out, dz.dtype)
    k, n = w.shape[0], dz.shape[0]
    if w.shape[1] != 1 + c * fh * fw or k < 1:
        raise ValueError(f"w has shape {w.shape}, expected (K, {1 + c * fh * fw})")
    _check_shape("out", out, (n, c * h * wd))
    _check_deriv_args(y, act, slope, out)
    hc, wc = conv_map(g)
    q = hc * wc
    if idx is not None and dz.shape[1] % k:
        raise ValueError(f"dz has {dz.shape[1]} columns, not a multiple of K = {k}")
    qo = dz.shape[1] // k if idx is not None else q
    _check_disjoint(out, "out", "dz", dz, "w", w, "y", y if act != ACT_LINEAR else None)
    _check_work(work, dz.dtype, geom, k, "dz", dz, "w", w, "out", out, "idx", idx)
    dense = _dense_dz(dz, idx, n, k, q, qo).reshape(n, k, q)
    dcols = np.matmul(w[:, 1:].T, dense).reshape(n, c, fh, fw, hc, wc)   # (P, K) . (n, K, Q)
    dx = np.zeros((n, c, h + pt + pb, wd + pl + pr), dz.dtype)     # the padded field
    for r in range(fh):                     # col2im: each kernel tap adds its shifted map
        for s in range(fw):
            dx[:, :, r:r + (hc - 1) * sh + 1:sh, s:s + (wc - 1) * sw + 1:sw] += dcols[:, :, r, s]
    out[...] = dx[:, :, pt:pt + h, pl:pl + wd].reshape(n, -1)
    if act != ACT_LINEAR:
        fprime = np.empty_like(out)
        derivative(y, act, fprime, slope)
        out *= fprime


# ---------------------------------------------------------------------------------------
# pooling

def _check_pool_io(y, shape, ph, pw, out, stride):
    _check_float_2d("y", y)
    k, hc, wc, ho, wo, sh, sw = check_map_shape(shape, ph, pw, stride)
    if y.shape[1] != k * hc * wc:
        raise ValueError(f"y has {y.shape[1]} columns, shape {tuple(shape)} needs {k * hc * wc}")
    _check_float("out", out, y.dtype)
    _check_shape("out", out, (y.shape[0], k * ho * wo))
    _check_disjoint(out, "out", "y", y)
    if k * hc * wc > _MAX_INDEX:
        raise ValueError("the map is too large for int32 indices")
    return k, hc, wc, ho, wo, sh, sw


def max_pool(y, shape, ph, pw, out, idx, stride=None):
    """out = the max of each ph x pw window of each map, idx = its column in ``y`` (first max).

    ``y`` n x K*hc*wc with ``shape = (K, hc, wc)``; ``out`` and ``idx`` (int32, or None)
    n x K*ho*wo.  ``stride`` None: the windows tile the map; ``(sh, sw)``: floor mode.
    """
    k, hc, wc, ho, wo, sh, sw = _check_pool_io(y, shape, ph, pw, out, stride)
    if idx is not None:
        _check_idx(idx, out.shape)
        _check_disjoint(idx, "idx", "y", y, "out", out)
    _max_pool(y, k, hc, wc, int(ph), int(pw), out, idx, sh, sw)


def avg_pool(y, shape, ph, pw, out, stride=None):
    """out = the mean of each ph x pw window of each map (sum row-major, / (ph*pw))."""
    k, hc, wc, ho, wo, sh, sw = _check_pool_io(y, shape, ph, pw, out, stride)
    _avg_pool(y, k, hc, wc, int(ph), int(pw), out, sh, sw)


def max_pool_backward(g, idx, out):
    """out = ``g`` scattered (added) at the columns ``idx`` of each row, zero elsewhere."""
    _check_float_2d("g", g)
    _check_idx(idx, g.shape)
    _check_float_2d("out", out, g.dtype)
    if out.shape[0] != g.shape[0]:
        raise ValueError(f"out has {out.shape[0]} rows, g has {g.shape[0]}")
    _check_disjoint(out, "out", "g", g, "idx", idx)
    m = out.shape[1]
    if idx.size and (idx.min() < 0 or idx.max() >= m):
        raise ValueError(f"idx holds a column outside [0, {m})")
    flat = (np.arange(g.shape[0], dtype=np.int64)[:, None] * m + idx).ravel()
    out[...] = np.bincount(flat, weights=g.ravel(), minlength=out.size).reshape(out.shape)


def avg_pool_backward(g, shape, ph, pw, y, act, out, stride=None, slope=LEAKY_SLOPE):
    """out = (g / (ph*pw) spread over each window) * f'(y): ``g`` n x K*ho*wo, ``y`` and
    ``out`` n x K*hc*wc (``y`` the activities before pooling; ACT_LINEAR: no factor).  With
    overlapping windows (``stride``) the shares are added; elements no window covers get 0."""
    _check_float_2d("g", g)
    k, hc, wc, ho, wo, sh, sw = check_map_shape(shape, ph, pw, stride)
    ph, pw = int(ph), int(pw)
    _check_shape("g", g, (g.shape[0], k * ho * wo))
    _check_float("out", out, g.dtype)
    _check_shape("out", out, (g.shape[0], k * hc * wc))
    _check_deriv_args(y, act, slope, out)
    _check_disjoint(out, "out", "g", g, "y", y if act != ACT_LINEAR else None)
    n = g.shape[0]
    if sh == ph and sw == pw and hc % ph == 0 and wc % pw == 0:    # tiling windows
        share = (g / g.dtype.type(ph * pw)).reshape(n, k, ho, 1, wo, 1)
        out.reshape(n, k, ho, ph, wo, pw)[...] = share
    else:
        share = (g / g.dtype.type(ph * pw)).reshape(n, k, ho, wo)
        spread = np.zeros((n, k, hc, wc), g.dtype)
        for r in range(ph):
            for s in range(pw):
                spread[:, :, r:r + (ho - 1) * sh + 1:sh, s:s + (wo - 1) * sw + 1:sw] += share
        out[...] = spread.reshape(out.shape)
    if act != ACT_LINEAR:
        fprime = np.empty_like(out)
        derivative(y, act, fprime, slope)
        out *= fprime


__all__ = ["POOL_NONE", "POOL_MAX", "POOL_AVG", "N_POOL", "WG_CHUNKS", "check_geom",
           "check_pool", "check_map_shape", "conv_map", "conv_work_size", "conv_forward",
           "conv_weight_grad", "conv_input_grad", "max_pool", "avg_pool", "max_pool_backward",
           "avg_pool_backward"]
