"""What the NumPy twins and the compiled kernels share: argument checks, the PackedInput
container, and the two step sequences that a twin runs on its own kernels and a compiled
kernel runs, as its fallback, on the native ones.

Neutral ground, so that no compiled module imports a twin and no twin imports another
above it: this module imports NumPy only, and is imported by the twins (which re-export
these names: ``reference_conv.check_geom``, ``reference_packed.PackedInput`` ...) and by
dense.pyx, conv.pyx and pool.pyx.
"""
import math

import numpy as np

# Pooling kinds (conv_forward's ``pool``; the values of _convpool.pxd's enum).
POOL_NONE = 0
POOL_MAX = 1
POOL_AVG = 2
N_POOL = 3


# Convolution geometry and pooling windows (conv.pyx, pool.pyx, reference_conv.py).

def _ints(values, what, example):
    try:
        out = tuple(int(v) for v in values)
        bad = any(isinstance(v, bool) or int(v) != v for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be {example}, got {values!r}") from None
    if bad:
        raise ValueError(f"{what} must hold ints {example}, got {values!r}")
    return out


def check_geom(geom):
    """The convolution geometry, 5 or 11 ints: ``(c, h, w, fh, fw)`` (stride 1, no padding)
    or ``(c, h, w, fh, fw, sh, sw, pt, pb, pl, pr)``: the strides down and across, then the
    zero rows added above and below, the zero columns added left and right.  The kernel
    must fit the padded field; every padding at most the kernel size - 1.  Returns the 11
    ints."""
    example = "(c, h, w, fh, fw) or (c, h, w, fh, fw, sh, sw, pt, pb, pl, pr)"
    if not hasattr(geom, "__len__") or len(geom) not in (5, 11):
        raise ValueError(f"geom must be {example}, got {geom!r}")
    g = _ints(geom, "geom", example)
    c, h, w, fh, fw = g[:5]
    sh, sw, pt, pb, pl, pr = g[5:] if len(g) == 11 else (1, 1, 0, 0, 0, 0)
    if min(c, h, w, fh, fw) < 1:
        raise ValueError(f"geom must hold positive (c, h, w, fh, fw), got {geom!r}")
    if sh < 1 or sw < 1:
        raise ValueError(f"the strides must be positive, got {sh}x{sw} in {geom!r}")
    if min(pt, pb, pl, pr) < 0:
        raise ValueError(f"the paddings must be >= 0, got {(pt, pb, pl, pr)} in {geom!r}")
    if max(pt, pb) > fh - 1 or max(pl, pr) > fw - 1:
        raise ValueError(f"a padding is larger than the kernel size - 1: {(pt, pb, pl, pr)} "
                         f"(top, bottom, left, right) with a {fh}x{fw} kernel")
    if fh > h + pt + pb or fw > w + pl + pr:
        raise ValueError(f"a {fh}x{fw} kernel does not fit a {h}x{w} field"
                         + (f" padded to {h + pt + pb}x{w + pl + pr}" if pt + pb + pl + pr else ""))
    return c, h, w, fh, fw, sh, sw, pt, pb, pl, pr


def conv_map(geom):
    """(hc, wc): the conv map of a checked 11-int geometry."""
    c, h, w, fh, fw, sh, sw, pt, pb, pl, pr = geom
    return (h + pt + pb - fh) // sh + 1, (w + pl + pr - fw) // sw + 1


def _window(ph, pw, stride, hc, wc):
    """(sh, sw, ho, wo) of ph x pw windows over an hc x wc map: without ``stride`` the
    windows tile the map (they must divide it); with ``stride = (sh, sw)``, floor mode:
    ho = (hc - ph) // sh + 1, the window must fit the map."""
    if ph < 1 or pw < 1:
        raise ValueError(f"the pool window must be positive, got {ph}x{pw}")
    if stride is None:
        if hc % ph or wc % pw:
            raise ValueError(f"a {ph}x{pw} pool window must divide the {hc}x{wc} map")
        return ph, pw, hc // ph, wc // pw
    if not hasattr(stride, "__len__") or len(stride) != 2:
        raise ValueError(f"the pool stride must be (sh, sw), got {stride!r}")
    sh, sw = _ints(stride, "the pool stride", "(sh, sw)")
    if sh < 1 or sw < 1:
        raise ValueError(f"the pool stride must be positive, got {sh}x{sw}")
    if ph > hc or pw > wc:
        raise ValueError(f"a {ph}x{pw} pool window does not fit the {hc}x{wc} map")
    return sh, sw, (hc - ph) // sh + 1, (wc - pw) // sw + 1


def check_pool(pool, hc, wc):
    """``pool = (kind, ph, pw)`` (windows that tile the map: they must divide it) or
    ``(kind, ph, pw, sh, sw)`` (stride sh x sw, floor mode, windows may overlap); kind
    POOL_NONE/POOL_MAX/POOL_AVG.  Returns (kind, ph, pw, sh, sw, ho, wo)."""
    if not hasattr(pool, "__len__") or len(pool) not in (3, 5):
        raise ValueError(f"pool must be (kind, ph, pw) or (kind, ph, pw, sh, sw), got {pool!r}")
    p = _ints(pool, "pool", "(kind, ph, pw) or (kind, ph, pw, sh, sw)")
    kind, ph, pw = p[:3]
    if not 0 <= kind < N_POOL:
        raise ValueError(f"unknown pooling kind {kind}")
    if kind == POOL_NONE:
        return kind, 1, 1, 1, 1, hc, wc
    sh, sw, ho, wo = _window(ph, pw, p[3:] if len(p) == 5 else None, hc, wc)
    return kind, ph, pw, sh, sw, ho, wo


def check_map_shape(shape, ph, pw, stride=None):
    """``shape = (K, hc, wc)`` and ph x pw windows: without ``stride`` they must divide the
    map, with ``stride = (sh, sw)`` floor mode.  Returns (K, hc, wc, ho, wo, sh, sw)."""
    try:
        k, hc, wc = (int(v) for v in shape)
        ph, pw = int(ph), int(pw)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (K, hc, wc) and ph, pw ints, got {shape!r}, "
                         f"{ph!r}, {pw!r}") from None
    if min(k, hc, wc) < 1:
        raise ValueError(f"shape must hold 3 positive ints (K, hc, wc), got {shape!r}")
    sh, sw, ho, wo = _window(ph, pw, stride, hc, wc)
    return k, hc, wc, ho, wo, sh, sw


def check_adam(lr, beta1, beta2, eps, step, decay):
    """adam_update's scalars checked; returns ``step`` as an int."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise TypeError(f"step must be an integer, got {step!r}")
    if not 1 <= step < 2**62:
        raise ValueError(f"step must be in [1, 2^62), got {step}")
    for name, value in (("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps),
                        ("decay", decay)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
    if lr < 0 or eps < 0 or not 0 <= decay <= 1:
        raise ValueError(f"need lr >= 0, eps >= 0 and decay in [0, 1], got {lr}, {eps}, {decay}")
    return int(step)


# R-prop variants (rprop_update).
RPROP_ORIGINAL = 0   # Synaptic's Rprop-: compares -g with the previous update, a zero product halves
RPROP_PLUS = 1       # Riedmiller & Braun 1993: weight backtracking on a sign change
IRPROP_MINUS = 2     # Igel & Husken 2000: no backtracking, the gradient zeroed on a sign change
IRPROP_PLUS = 3      # Igel & Husken 2000: backtracking only if the error went up
N_RPROP = 4


def momentum_on(alpha, has_prev):
    """Whether an update adds alpha * deltaw: ``has_prev`` and ``alpha`` not None or 0."""
    return bool(has_prev) and alpha is not None and alpha != 0


def check_rprop(mode, gprev, alpha, has_prev):
    """rprop_update's variant code and what it needs checked; returns momentum_on."""
    if not 0 <= mode < N_RPROP:
        raise ValueError(f"unknown R-prop variant code {mode}")
    if mode != RPROP_ORIGINAL and gprev is None:
        raise ValueError("the R-prop variants of the papers need gprev")
    momentum = momentum_on(alpha, has_prev)
    if momentum and mode in (RPROP_PLUS, IRPROP_PLUS):
        raise ValueError("momentum cannot be combined with weight backtracking "
                         "(RPROP_PLUS, IRPROP_PLUS)")
    return momentum


# Dropout masks (dropout): a counter-based generator, SplitMix64 (Steele, Lea & Flood 2014),
# so a mask is a pure function of (key, element): the same for any thread count or order.
MASK64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
MIX1, MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix64(z):
    """SplitMix64's output function of the state ``z`` (a Python int)."""
    z &= MASK64
    z = ((z ^ (z >> 30)) * MIX1) & MASK64
    z = ((z ^ (z >> 27)) * MIX2) & MASK64
    return z ^ (z >> 31)


def dropout_key(seed, layer, counter):
    """The key of one dropout mask: a dropout layer's ``seed``, its position, the batch count."""
    return splitmix64(splitmix64(splitmix64(seed) + layer * GAMMA) + (counter + 1) * GAMMA)


def check_dropout(p, key):
    """dropout's scalars checked: (the keep threshold on 53-bit draws, 1 / (1 - p), key)."""
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or not 0 <= key <= MASK64:
        raise TypeError(f"key must be an integer in [0, 2^64), got {key!r}")
    if not (isinstance(p, (int, float, np.floating, np.integer)) and not isinstance(p, bool)
            and 0 <= p < 1):
        raise ValueError(f"p must be a number in [0, 1), got {p!r}")
    return int(float(p) * 2.0 ** 53), 1.0 / (1.0 - float(p)), int(key)


def check_errors(errors, kind, nb):
    """sgd_epoch's ``errors`` (None, or a writable C-contiguous float64 array of at least
    ``nb`` elements) and its ``error_kind`` (an error_sum kind code, 0..4)."""
    if errors is None:
        return
    if not isinstance(errors, np.ndarray) or errors.dtype != np.float64 or errors.ndim != 1 \
            or not errors.flags.c_contiguous or not errors.flags.writeable:
        raise TypeError("errors must be None or a writable contiguous 1-D float64 numpy array")
    if errors.shape[0] < nb:
        raise ValueError(f"errors must hold one value per batch ({nb}), got {errors.shape[0]}")
    if isinstance(kind, bool) or not isinstance(kind, (int, np.integer)) or not 0 <= kind < 5:
        raise ValueError(f"unknown error kind {kind!r}")


def adam_steps(lr, beta1, beta2, eps, first, nb, eps_before_correction=False):
    """sgd_epoch's Adam steps: for the nb updates numbered ``first``, first + 1, ... a row of
    (inv_bc2, eps, neg_step) computed as adam_update computes them from its arguments (lr,
    beta2, eps -- scaled by 1 / sqrt(1 - beta2^t) for scikit-learn's convention, as
    Adam.step does -- and the step t)."""
    check_adam(lr, beta1, beta2, eps, int(first), 1.0)
    out = np.empty((nb, 3), dtype=np.float64)
    for i in range(nb):
        t = int(first) + i
        e = eps / math.sqrt(1.0 - beta2 ** t) if eps_before_correction else eps
        out[i] = (1.0 / math.sqrt(1.0 - beta2 ** t), e, -(lr / (1.0 - beta1 ** t)))
    return out


def check_adam_epoch(adam, nb, gain, nesterov, alphas):
    """sgd_epoch's ``adam``: (beta1, beta2, steps) -> (steps as checked, 1 - beta1, beta2,
    1 - beta2); the state arrays (gain = v) given, no momentum."""
    if not isinstance(adam, tuple) or len(adam) != 3:
        raise TypeError("adam must be None or a tuple (beta1, beta2, steps)")
    beta1, beta2, steps = adam
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
        raise ValueError(f"beta1 and beta2 must be in [0, 1), got {beta1}, {beta2}")
    if not isinstance(steps, np.ndarray) or steps.dtype != np.float64 \
            or steps.shape != (nb, 3):
        raise ValueError(f"adam's steps must be a float64 array of shape ({nb}, 3)")
    if not np.isfinite(steps).all():
        raise ValueError("adam's steps must be finite")
    if gain is None:
        raise ValueError("Adam's epoch needs v in gain (and m in deltaw)")
    if nesterov or np.any(np.asarray(alphas) != 0):
        raise ValueError("Adam's epoch takes no momentum and no Nesterov jump")
    return np.ascontiguousarray(steps), 1.0 - beta1, float(beta2), 1.0 - beta2


def x_zeros(x):
    """The fraction of zeros of ``x``, sampled on about 256 rows (sgd_epoch's ``zeros``)."""
    sample = x[:: max(1, x.shape[0] // 256)]
    return 1.0 - np.count_nonzero(sample) / max(1, sample.size)


# Packed inputs (dense_packed.pxi, reference_packed.py: the layout).

def frozen(a):
    """An immutable copy of ``a``: its memory is a ``bytes`` object, so not even
    ``a.flags.writeable = True`` can make it writable again."""
    return np.frombuffer(np.ascontiguousarray(a).tobytes(), dtype=a.dtype).reshape(a.shape)


def is_frozen(a):
    """True if ``a`` is (a view of) an array made by :func:`frozen`."""
    while isinstance(a, np.ndarray):
        if a.flags.writeable:
            return False
        a = a.base
    return isinstance(a, bytes)


PACK_BLOCK_MAX = 64


class PackedInput:
    """The packed nonzeros of ``x`` (the layout: reference_packed.py); built by ``pack_input``.

    The constructor checks that the arrays agree with each other (shapes, dtypes, offsets
    against the masks' bit counts) and keeps immutable copies of them (:func:`frozen`), so a
    kernel can trust them: the caller's arrays stay theirs."""

    FIELDS = ("rmask", "rval", "roff", "cmask", "cval", "coff")

    def __init__(self, x, block, rmask, rval, roff, cmask, cval, coff, *, _owned=False):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype not in (np.float32, np.float64):
            raise TypeError("x must be a 2-D float32 or float64 array")
        if not x.flags.c_contiguous:
            raise ValueError("x must be C-contiguous")
        block = int(block)
        if not 1 <= block <= PACK_BLOCK_MAX:
            raise ValueError(f"block must be in 1..{PACK_BLOCK_MAX}, got {block}")
        n, d = x.shape
        nw, nb = (d + 31) // 32, (n + block - 1) // block
        expected = {"rmask": (np.uint32, (n, nw)), "roff": (np.int64, (n + 1,)),
                    "cmask": (np.uint64, (nb, d)), "coff": (np.int64, (nb + 1,))}
        arrays = dict(rmask=rmask, rval=rval, roff=roff, cmask=cmask, cval=cval, coff=coff)
        for name, (dtype, shape) in expected.items():
            a = arrays[name]
            if not isinstance(a, np.ndarray) or a.dtype != dtype or a.shape != shape:
                raise ValueError(f"{name} must be a {np.dtype(dtype).name} array of shape {shape}")
        nnz = int(roff[-1])
        for name in ("rval", "cval"):
            a = arrays[name]
            if not isinstance(a, np.ndarray) or a.dtype != x.dtype or a.shape != (nnz,):
                raise ValueError(f"{name} must be a {x.dtype.name} array of shape ({nnz},)")
        if not _owned:  # pack_input's own arrays agree by construction (tested)
            self._check_counts(x, block, rmask, roff, cmask, coff, nnz)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "block", block)
        for name, a in arrays.items():
            object.__setattr__(self, name, frozen(a))

    @staticmethod
    def _check_counts(x, block, rmask, roff, cmask, coff, nnz):
        """The offsets and counts against the masks' bits (what the kernels' walks rely on)."""
        n, d = x.shape
        nb = (n + block - 1) // block
        if roff[0] != 0 or not np.array_equal(np.diff(roff),
                                              np.bitwise_count(rmask).sum(axis=1, dtype=np.int64)):
            raise ValueError("roff does not match the bit counts of rmask")
        if (coff[0] != 0 or coff[-1] != nnz
                or not np.array_equal(np.diff(coff),
                                      np.bitwise_count(cmask).sum(axis=1, dtype=np.int64))):
            raise ValueError("coff does not match the bit counts of cmask")
        if d % 32 and n and (rmask[:, -1] >> np.uint32(d % 32)).any():
            raise ValueError("rmask has bits beyond the last column")
        if n % block and nb and (cmask[-1] >> np.uint64(n % block)).any():
            raise ValueError("cmask has bits beyond the last row")

    def __setattr__(self, name, value):
        raise AttributeError("a PackedInput cannot be changed (pack x again)")

    @property
    def shape(self):
        return self.x.shape

    @property
    def dtype(self):
        return self.x.dtype

    @property
    def nnz(self):
        return self.rval.shape[0]

    def __repr__(self):
        n, d = self.x.shape
        return f"PackedInput({n} x {d} {self.x.dtype.name}, {self.nnz} nonzeros, block {self.block})"


def check_pack_args(x, block):
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise TypeError("x must be a 2-D numpy array")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)):
        raise TypeError(f"block must be an int, got {type(block).__name__}")
    if not 1 <= block <= PACK_BLOCK_MAX:
        raise ValueError(f"block must be in 1..{PACK_BLOCK_MAX}, got {block}")


# The step sequences: ``kern`` is the backend whose kernels run them (the twin's module;
# ``native`` for the compiled kernels' fallbacks).

def output_backprop_steps(kern, h, w, t, act, kind, err, hact, y, dz, g, dh, slope, hslope):
    """output_backprop as the separate kernels of the backend ``kern`` (the twin; the native
    kernel's fallback)."""
    kern.dense_forward(h, w, act, y, slope)
    kern.output_delta(y, t, act, kind, dz, slope)
    kern.weight_grad(dz, h, g)
    if dh is not None:
        kern.hidden_delta(dz, w, h, hact, dh, hslope)
    return kern.error_sum(y, t, err)


def packed_objective_steps(kern, p, w1, w2, t, act1, act2, kind, err, y, g1, g2, slope1,
                           slope2):
    """packed_objective as three calls into the backend ``kern`` (the twin; the native
    kernel's fallback)."""
    h = np.empty((p.x.shape[0], w1.shape[0]), dtype=p.x.dtype)
    dh = np.empty_like(h)
    dz = np.empty((p.x.shape[0], w2.shape[0]), dtype=p.x.dtype)
    kern.packed_forward(p, w1, act1, h, slope1)
    error = kern.output_backprop(h, w2, t, act2, kind, err, act1, y, dz, g2, dh, slope2, slope1)
    kern.packed_weight_grad(dh, p, g1)
    return error


def fused_objective_steps(kern, x, ws, t, acts, slopes, kind, err, y, gs):
    """fused_objective as the per-layer kernels of the backend ``kern`` (the twin; the native
    kernel's fallback): dense_forward per hidden layer, output_backprop, then weight_grad and
    hidden_delta from the top."""
    hs = []
    a = x
    for w, act, slope in zip(ws[:-1], acts[:-1], slopes[:-1]):
        h = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
        kern.dense_forward(a, w, act, h, slope)
        hs.append(h)
        a = h
    dz = np.empty_like(y)
    if not hs:
        return kern.output_backprop(x, ws[0], t, acts[0], kind, err, acts[0], y, dz, gs[0], None,
                                    slopes[0], slopes[0])
    dh = np.empty_like(hs[-1])
    error = kern.output_backprop(hs[-1], ws[-1], t, acts[-1], kind, err, acts[-2], y, dz, gs[-1],
                                 dh, slopes[-1], slopes[-2])
    for i in range(len(hs) - 1, -1, -1):
        kern.weight_grad(dh, x if i == 0 else hs[i - 1], gs[i])
        if i > 0:
            below = np.empty_like(hs[i - 1])
            kern.hidden_delta(dh, ws[i], hs[i - 1], acts[i - 1], below, slopes[i - 1])
            dh = below
    return error
