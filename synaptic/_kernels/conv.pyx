"""Convolution layer kernels: conv_forward, conv_weight_grad, conv_input_grad.

The compiled twin of the functions of the same names in ``reference_conv.py`` (the contract:
geometry, layouts, pool indices).  Arguments are checked with the GIL held; the work then runs
without it, parallel over the samples of the batch (OpenMP, dynamic schedule), each thread
with its own slice of the caller's ``work`` array (per-thread scratch, reused across calls).
Calls under PAR_MIN_MACS multiply-adds stay on the calling thread.

Design, and the measurements behind it (this machine: 2 cores of AMD EPYC Zen 4 with
AVX-512, f32; one core peaks at ~115 GFLOP/s of FMAs; W2/W3 as in benchmarks/bench_conv.py):

* Forward, per sample: z = W . patches, then one pass per map: bias + activation in place
  (vectorized) + pooling (2x2 windows with AVX-512 permutes: 2.8 us for W3's 32 maps of
  24x24, 18x faster than a scalar scan).  The product runs in a register-blocked
  micro-kernel (6 maps x 64 positions of accumulators, positions in vector lanes, C vector
  extensions), over either
  - im2col: the patches as P x Q rows (one copy per map row), or
  - direct: the sample itself shifted by each kernel tap (no copies; the w - wc columns
    between map rows are computed and dropped), chosen when K (T - Q) < 1.5 Q (_auto_mode).
  Measured per sample, 1 thread: W2's 3@9x9 direct 3.8 us, im2col 5.4 us, im2col + SciPy's
  sgemm 5.5 us; W3's conv2 (64@5x5x32 on 12x12) im2col 65 us (100 GFLOP/s), with sgemm 86
  us.  With 2 threads, a batch of W3's conv2: 2.1-2.3 ms for the whole fused kernel,
  2.8-3.2 ms with per-sample sgemm (BLAS at one thread inside the OpenMP loop: SciPy's BLAS
  is kept at one thread by synaptic.set_num_threads, so calling it there is safe), and
  2.2-2.6 ms for one big GEMM alone on two BLAS threads (NumPy's) without its 13 MB im2col,
  activation or pooling; W2's layer: 0.20 ms fused and direct, 0.30 ms with sgemm.  Hence the
  micro-kernel: as fast as BLAS's best case on the big layer, faster on the small ones, no
  BLAS/OpenMP thread interplay, and a sample's data never leaves L2.
* Max pooling keeps the indices, so the backward kernels take the pooled gradient and the
  indices directly: a sparse dz (one nonzero per window, fewer after relu), and only its
  nonzero entries are visited, a 4x saving with 2x2 pooling.  A dense dz (no pooling, average
  pooling) goes through the same code with every entry.
* Weight gradient: the patches of one sample as rows (``colT``, Q x P, only the rows some
  entry needs), then dW[k] += sum_e g_e colT[q_e] per map (a gathered axpy: its accumulators
  stay in registers; blocks of 128 columns keep colT's block in L1).  The batch is cut into
  WG_CHUNKS chunks by sample count only, each with its own partial sum, added in chunk order:
  the same bits for any thread count.  W3's conv2: 30 us per sample (1 thread).
* Input gradient: the entries bucketed by position, dcolT[q] = sum_e g_e W[k_e] (the same
  gathered axpy over a padded copy of W), col2im with vectors no wider than a kernel row
  (a wider store overlapping the next row's load stalls store forwarding: 98 -> 32 us for
  W3's conv2), then * f'(y) of the layer below.  Each sample is independent: deterministic.
* Strides and zero padding (the 11-int geom): every kernel already copies a sample to its
  thread's scratch; with padding the copy goes into a zeroed padded field (no padding: the
  same single memcpy as before).  Position (i, j) of the map reads the patch at (i*sh, j*sw)
  of that copy: the forward im2col gathers with the strides (syn_im2cols; the direct mode
  needs stride 1, so strided layers use im2col), the weight gradient's patches and the input
  gradient's col2im start there, and the input gradient, summed in the padded field, is
  copied out without its border.  Stride 1 without padding runs the code of before, bit for
  bit.  Strided pooling (``pool = (kind, ph, pw, sh, sw)``) is pool_map with window steps;
  the 2x2 SIMD pooling runs when the stride is 2x2.
"""
from cython.parallel cimport prange, threadid
from libc.stdlib cimport malloc, free
from libc.string cimport memset, memcpy
cimport numpy as cnp
import numpy as np

from ._common cimport *
from ._convpool cimport *
from ._convsimd cimport *
from .checks import check_geom, check_pool, conv_map

cnp.import_array()

cdef enum:
    # A call runs on the OpenMP threads from this many multiply-adds (~20 us on one core):
    # below, waking the team and meeting at its barrier is not worth it, and on a busy
    # machine a barrier can wait for a descheduled thread for a whole time slice.
    PAR_MIN_MACS = 1 << 21

cdef enum:
    MODE_IM2COL = 0
    MODE_BLAS = 1
    MODE_DIRECT = 2

include "_set_threads.pxi"
cdef Py_ssize_t _par_min = PAR_MIN_MACS
cdef int _gemm_mode = -1    # -1: chosen per shape (_auto_mode); else a MODE_* for measurement


cdef inline int _auto_mode(Geo* g) noexcept nogil:
    """Direct when its extra multiply-adds (K for each of the T - Q positions between map
    rows) cost less than the im2col copies (Q per kernel tap): K (T - Q) < 1.5 Q, the
    crossover measured on 28x28 and 32x32 inputs (direct 30% faster at K (T - Q) / Q = 0.8-1.1,
    even at 1, 5-15% slower at 2.5-3).  W2's 3 maps of 9x9 go direct, W3's layers im2col."""
    if g.sh != 1 or g.sw != 1:
        return MODE_IM2COL
    return MODE_DIRECT if 2 * g.K * (g.T - g.Q) < 3 * g.Q else MODE_IM2COL


def _set_parallel_threshold(macs):
    """Testing and tuning hook: the multiply-add count from which a call runs on the OpenMP
    threads; returns the previous value."""
    global _par_min
    old = _par_min
    _par_min = macs
    return old


def _parallel_config():
    """(libgomp threads sleep when idle, multiply-add threshold, the same, threads).  The
    convolution loops run on the OpenMP threads whatever libgomp's wait policy: each call is
    milliseconds of work, and SciPy's BLAS runs on one thread (synaptic.set_num_threads)."""
    return bool(omp_workers_sleep()), _par_min, _par_min, _num_threads


def _set_gemm_mode(mode):
    """Measurement hook: -1 = chosen per shape, 0 = im2col + the micro-kernel, 1 = im2col +
    SciPy's sgemm/dgemm per sample (single-threaded BLAS inside the OpenMP loop), 2 = direct.
    Returns the previous mode."""
    global _gemm_mode
    old = _gemm_mode
    _gemm_mode = int(mode)
    return old


# ---------------------------------------------------------------------------------------
# geometry and the layout of ``work``

cdef struct Geo:
    # h, w, HW: the field as the kernels see it, zero-padded (pt rows above, pl columns
    # left, ...); h0, w0 and X = c*h0*w0: a sample as the caller stores it.  sh, sw: the
    # strides; psh, psw: the pool's (conv_forward).
    Py_ssize_t c, h, w, fh, fw, hc, wc, HW, P, Q, Pp, Qp, K, Qo, T
    Py_ssize_t h0, w0, X, sh, sw, pt, pl, psh, psw
    bint padded


cdef Geo _geo(object geom, Py_ssize_t k) except *:
    cdef Geo g
    cdef Py_ssize_t pb, pr
    full = check_geom(geom)
    g.c, g.h0, g.w0, g.fh, g.fw, g.sh, g.sw, g.pt, pb, g.pl, pr = full
    g.hc, g.wc = conv_map(full)
    g.h = g.h0 + g.pt + pb
    g.w = g.w0 + g.pl + pr
    g.padded = g.h != g.h0 or g.w != g.w0
    g.X = g.c * g.h0 * g.w0
    g.psh = g.psw = 1
    g.HW = g.h * g.w
    g.P = g.c * g.fh * g.fw
    g.Q = g.hc * g.wc
    g.Pp = round_up(g.P)
    g.Qp = round_up(g.Q)
    g.K = k
    g.Qo = g.Q
    g.T = (g.hc - 1) * g.w + g.wc
    if k * g.Q > 2147483647:
        raise ValueError("the conv map is too large for int32 indices")
    return g


cdef inline void _load(const floating* xs, floating* xp, Geo* g) noexcept nogil:
    """The sample ``xs`` into the per-thread copy ``xp`` (zero-padded), then PAD zeros."""
    cdef Py_ssize_t c, r
    if not g.padded:
        memcpy(xp, xs, g.X * sizeof(floating))
        memset(xp + g.X, 0, PAD * sizeof(floating))    # what the overrun reads
        return
    memset(xp, 0, (g.c * g.HW + PAD) * sizeof(floating))
    for c in range(g.c):
        for r in range(g.h0):
            memcpy(xp + c * g.HW + (r + g.pt) * g.w + g.pl, xs + (c * g.h0 + r) * g.w0,
                   g.w0 * sizeof(floating))


cdef inline void _unload(const floating* dxp, floating* dx, Geo* g) noexcept nogil:
    """The inside of the padded gradient ``dxp`` into the caller's row ``dx``."""
    cdef Py_ssize_t c, r
    if not g.padded:
        memcpy(dx, dxp, g.X * sizeof(floating))
        return
    for c in range(g.c):
        for r in range(g.h0):
            memcpy(dx + (c * g.h0 + r) * g.w0, dxp + c * g.HW + (r + g.pt) * g.w + g.pl,
                   g.w0 * sizeof(floating))


cdef inline Py_ssize_t _per_thread(Geo* g) noexcept nogil:
    """Per thread: a padded copy of the sample (or its gradient) then, forward, im2col
    (P x Qp), the conv maps (K x Qp) and a softmax row; backward, the patches or their
    gradients (Q x Pp) and the lists of nonzero entries.  Each region is padded."""
    cdef Py_ssize_t xp = round_up(g.c * g.HW) + PAD
    cdef Py_ssize_t fwd = round_up(g.P * g.Qp) + PAD + round_up(g.K * g.Qp) + round_up(g.K * g.Q)
    cdef Py_ssize_t direct = round_up(g.K * round_up(g.T)) + round_up(g.K * g.Q)
    cdef Py_ssize_t bwd = (round_up(g.Q * g.Pp) + PAD + 2 * round_up(g.K * g.Q + g.Q)
                           + round_up((g.Q if g.Q > g.K else g.K) + 1) + round_up(g.Q + 1))
    fwd = fwd if fwd > direct else direct
    return xp + (fwd if fwd > bwd else bwd)


cdef inline Py_ssize_t _shared(Geo* g) noexcept nogil:
    return round_up(WG_CHUNKS * g.K * g.Pp) + round_up(g.K * g.Pp) + round_up(2 * WG_CHUNKS * g.K)


def _layout(geom, k):
    """Testing hook: (shared, per-thread) element counts of ``work``."""
    cdef Geo g = _geo(geom, k)
    return _shared(&g), _per_thread(&g)


cdef object _work(object work, int kind, object dtype, Geo* g, Py_ssize_t tasks, Py_ssize_t n,
                  int* nthreads, list others, list names):
    """The scratch array (checked, or allocated when None) and the threads to use: up to
    one per task, one when the n samples are too little work, no more than ``work`` holds."""
    cdef Py_ssize_t shared = _shared(g), per = _per_thread(g), avail
    cdef int t = _num_threads if _num_threads < tasks else <int>tasks
    if t < 1 or n * g.K * g.P * g.Q < _par_min:
        t = 1
    if work is None:
        work = np.empty(shared + t * per + PAD, dtype=dtype)
    else:
        check_same(kind, others[0], names[0], check_float(work, "work", 1, True), work, "work")
        for a, name in zip(others, names):
            if a is not None:
                check_disjoint(work, "work", a, name)
    avail = (work.size - PAD - shared) // per
    if avail < 1:
        raise ValueError(f"work holds {work.size} elements, at least {shared + per + PAD} "
                         f"needed (conv_work_size)")
    nthreads[0] = t if t < avail else <int>avail
    return work


cdef inline void* _aligned(object a) noexcept:
    """The data of ``a`` moved up to a 64-byte boundary (work holds PAD spare elements)."""
    cdef size_t p = <size_t>cnp.PyArray_DATA(<cnp.ndarray>a)
    return <void*>((p + 63) & ~(<size_t>63))


cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


# ---------------------------------------------------------------------------------------
# small fused helpers

cdef inline void _gax(int nb, const floating* base, Py_ssize_t ld, const int* rows,
                      const floating* coef, Py_ssize_t ne, floating* dst,
                      int acc_in) noexcept nogil:
    if floating is float:
        syn_gax_f(nb, base, ld, rows, coef, ne, dst, acc_in)
    else:
        syn_gax_d(nb, base, ld, rows, coef, ne, dst, acc_in)


cdef inline Py_ssize_t _vl(floating* dummy) noexcept nogil:
    if floating is float:
        return SYN_VLF
    else:
        return SYN_VLD


# ---------------------------------------------------------------------------------------
# conv_forward

cdef void _im2col(const floating* xs, floating* col, Geo* g) noexcept nogil:
    """col[(c, r, s), i*wc + j] = x[c, i + r, j + s]; columns Q..Qp-1 zero.  ``xs`` is the
    padded copy of the sample; the rows are written in order (see syn_copy_over)."""
    cdef Py_ssize_t p
    if g.sh != 1 or g.sw != 1:
        if floating is float:
            syn_im2cols_f(col, g.Qp, xs, g.c, g.fh, g.fw, g.hc, g.wc, g.HW, g.w, g.sh, g.sw)
        else:
            syn_im2cols_d(col, g.Qp, xs, g.c, g.fh, g.fw, g.hc, g.wc, g.HW, g.w, g.sh, g.sw)
    elif floating is float:
        syn_im2col_f(col, g.Qp, xs, g.c, g.fh, g.fw, g.hc, g.wc, g.HW, g.w)
    else:
        syn_im2col_d(col, g.Qp, xs, g.c, g.fh, g.fw, g.hc, g.wc, g.HW, g.w)
    if g.Qp > g.Q:
        for p in range(g.P):
            memset(col + p * g.Qp + g.Q, 0, (g.Qp - g.Q) * sizeof(floating))


cdef void _fwd_sample(const floating* xs, const floating* w, Geo* g, int act, double slope,
                      int kind, Py_ssize_t ph, Py_ssize_t pw, floating* outs, int* idxs,
                      floating* pres, floating* scratch, const long* off, int mode) noexcept nogil:
    """One sample: z = W . patches, then bias + activation + pooling.  Modes: MODE_IM2COL
    (z rows of Qp, map rows wc apart), MODE_BLAS (the same with SciPy's GEMM), MODE_DIRECT
    (the sample itself shifted by each tap: z rows of T = (hc - 1)*w + wc, map rows w apart,
    the w - wc columns between them computed and ignored)."""
    cdef floating* xp = scratch
    cdef floating* col = xp + round_up(g.c * g.HW) + PAD
    cdef floating* z
    cdef floating* zc
    cdef Py_ssize_t ldw = 1 + g.P, k, i, q, zld, mw, span, stride, ld, Qo = g.Qo, Q = g.Q
    cdef floating b
    cdef floating* row
    cdef floating* src
    _load(xs, xp, g)
    if mode == MODE_DIRECT:
        z = col
        zld = round_up(g.T)
        mw = g.w
        if floating is float:
            syn_fwd_f(<int>g.K, zld // SYN_VLF, g.P, w + 1, ldw, xp, off, z, zld)
        else:
            syn_fwd_d(<int>g.K, zld // SYN_VLD, g.P, w + 1, ldw, xp, off, z, zld)
    else:
        z = col + round_up(g.P * g.Qp) + PAD
        zld = g.Qp
        mw = g.wc
        _im2col(xp, col, g)
        if mode == MODE_BLAS:
            # column-major: z^T (Qp x K) = col^T (Qp x P) . W[:, 1:]^T (P x K)
            gemm(c'N', c'N', g.Qp, g.K, g.P, col, g.Qp, w + 1, ldw,
                 z, g.Qp)
        elif floating is float:
            syn_fwd_f(<int>g.K, g.Qp // SYN_VLF, g.P, w + 1, ldw, col, off, z, g.Qp)
        else:
            syn_fwd_d(<int>g.K, g.Qp // SYN_VLD, g.P, w + 1, ldw, col, off, z, g.Qp)
    zc = z + round_up(g.K * zld)
    span = (g.hc - 1) * mw + g.wc          # one map in z, from its first to its last value
    if act == ACT_SOFTMAX:                 # one softmax over the whole pre-pool row
        for k in range(g.K):
            b = w[k * ldw]
            for i in range(g.hc):
                row = z + k * zld + i * mw
                for q in range(g.wc):
                    zc[k * Q + i * g.wc + q] = row[q] + b
        act_row(zc, outs if kind == POOL_NONE else zc, g.K * Q, act, slope)
        if kind == POOL_NONE:
            return
        src = zc
        stride = Q
        ld = g.wc
    else:
        for k in range(g.K):
            b = w[k * ldw]
            row = z + k * zld
            for q in range(span):
                row[q] = row[q] + b
            if kind == POOL_NONE and mw == g.wc:
                act_row(row, outs + k * Q, Q, act, slope)
            else:
                act_row(row, row, span, act, slope)
        src = z
        stride = zld
        ld = mw
    for k in range(g.K):
        if kind == POOL_NONE or pres != NULL:
            row = (outs if kind == POOL_NONE else pres) + k * Q
            if ld == g.wc:
                if kind != POOL_NONE:
                    memcpy(row, src + k * stride, Q * sizeof(floating))
            else:
                for i in range(g.hc):
                    memcpy(row + i * g.wc, src + k * stride + i * ld, g.wc * sizeof(floating))
        if kind != POOL_NONE:
            pool_map(kind, src + k * stride, ld, g.hc, g.wc, ph, pw, g.psh, g.psw, outs + k * Qo,
                     idxs + k * Qo if idxs != NULL else NULL, k * Q)


cdef int _conv_forward(const floating* x, const floating* w, Geo* g, Py_ssize_t n, int act,
                       double slope, int kind, Py_ssize_t ph, Py_ssize_t pw, floating* out,
                       int* idx, floating* pre, floating* scratch, int nthreads, int mode) except -1:
    cdef Py_ssize_t s, c, r, t, xrow = g.X, orow = g.K * g.Qo, prow = g.K * g.Q
    cdef Py_ssize_t per = _per_thread(g)
    cdef long* off = <long*>malloc(g.P * sizeof(long))    # where row p of the patches starts
    if off == NULL:
        raise MemoryError()
    for c in range(g.c):
        for r in range(g.fh):
            for t in range(g.fw):
                off[(c * g.fh + r) * g.fw + t] = (c * g.HW + r * g.w + t if mode == MODE_DIRECT
                                                  else ((c * g.fh + r) * g.fw + t) * g.Qp)
    with nogil:
        if nthreads > 1:
            for s in prange(n, num_threads=nthreads, schedule='dynamic'):
                _fwd_sample(x + s * xrow, w, g, act, slope, kind, ph, pw, out + s * orow,
                            idx + s * orow if idx != NULL else NULL,
                            pre + s * prow if pre != NULL else NULL,
                            scratch + threadid() * per, off, mode)
        else:
            for s in range(n):
                _fwd_sample(x + s * xrow, w, g, act, slope, kind, ph, pw, out + s * orow,
                            idx + s * orow if idx != NULL else NULL,
                            pre + s * prow if pre != NULL else NULL, scratch, off, mode)
    free(off)
    return 0


def conv_forward(x, w, geom, int act, pool, out, idx=None, pre=None, work=None,
                 double slope=SYN_LEAKY_SLOPE):
    """out = pool(f(conv(x, w) + bias)): a convolution layer's forward pass.

    ``x`` n x c*h*w, ``w`` K x (1 + c*fh*fw), ``pool = (kind, ph, pw)`` or
    ``(kind, ph, pw, sh, sw)``; ``geom`` 5 or 11 ints (reference_conv.py: strides, padding).
    ``out`` holds the pooled rows (n x K*ho*wo; without pooling n x K*hc*wc).  Max pooling writes the pool
    indices to ``idx`` (int32, the shape of ``out``) unless it is None.  With pooling, ``pre``
    (n x K*hc*wc, or None) receives the activities before pooling.  Softmax normalises each
    whole pre-pool row.
    """
    cdef int kind_x = check_float(x, "x", 2, False)
    check_same(kind_x, x, "x", check_float(w, "w", 2, False), w, "w")
    cdef Geo g = _geo(geom, dim(w, 0))
    if dim(x, 1) != g.X:
        raise ValueError(f"x has {dim(x, 1)} columns, geom {tuple(geom)} needs {g.X}")
    if dim(w, 1) != 1 + g.P or g.K < 1:
        raise ValueError(f"w has shape {w.shape}, expected (K, {1 + g.P})")
    kind, ph, pw, g.psh, g.psw, ho, wo = check_pool(pool, g.hc, g.wc)
    check_act(act)
    check_slope(slope)
    cdef Py_ssize_t n = dim(x, 0)
    g.Qo = ho * wo
    check_operand(kind_x, x, "x", out, "out", True, n, g.K * g.Qo)
    if kind == POOL_NONE and (idx is not None or pre is not None):
        raise ValueError("idx and pre are for pooled layers only")
    if idx is not None:
        if kind != POOL_MAX:
            raise ValueError("idx is for max pooling only")
        check_int32(idx, "idx", n, g.K * g.Qo, True)
    if pre is not None:
        check_operand(kind_x, x, "x", pre, "pre", True, n, g.K * g.Q)
    for a, name in ((out, "out"), (idx, "idx"), (pre, "pre")):
        if a is not None:
            check_disjoint(a, name, x, "x")
            check_disjoint(a, name, w, "w")
    if idx is not None:
        check_disjoint(idx, "idx", out, "out")
    if pre is not None:
        check_disjoint(pre, "pre", out, "out")
        if idx is not None:
            check_disjoint(pre, "pre", idx, "idx")
    cdef int nthreads = 1
    work = _work(work, kind_x, x.dtype, &g, n, n, &nthreads, [x, w, out, idx, pre],
                 ["x", "w", "out", "idx", "pre"])
    if n == 0:
        return
    cdef int mode = _gemm_mode if _gemm_mode >= 0 else _auto_mode(&g)
    if mode == MODE_DIRECT and (g.sh != 1 or g.sw != 1):
        mode = MODE_IM2COL                 # the direct product needs stride 1
    if kind_x == 0:
        _conv_forward[float](<float*>_data(x), <float*>_data(w), &g, n, act, slope, kind, ph,
                             pw, <float*>_data(out), <int*>_data(idx), <float*>_data(pre),
                             <float*>_aligned(work), nthreads, mode)
    else:
        _conv_forward[double](<double*>_data(x), <double*>_data(w), &g, n, act, slope, kind, ph,
                              pw, <double*>_data(out), <int*>_data(idx), <double*>_data(pre),
                              <double*>_aligned(work), nthreads, mode)


# ---------------------------------------------------------------------------------------
# the nonzero entries of one sample's gradient

cdef int _check_idx(const int* idx, Py_ssize_t n, Geo* g) except -1:
    """Every pool index must lie in the map of its pooled unit."""
    cdef Py_ssize_t s, k, o, m = g.K * g.Qo
    cdef int lo, hi, bad = 0
    cdef const int* row
    with nogil:
        for s in range(n):
            for k in range(g.K):
                lo = <int>(k * g.Q)
                hi = <int>(lo + g.Q)
                row = idx + s * m + k * g.Qo
                for o in range(g.Qo):
                    bad |= (row[o] < lo) | (row[o] >= hi)
    if bad:
        for o in range(n * m):
            lo = <int>((o % m) // g.Qo * g.Q)
            if idx[o] < lo or idx[o] >= lo + g.Q:
                raise ValueError(f"idx holds an index outside the map of its pooled unit "
                                 f"(row {o // m}, column {o % m}: {idx[o]})")
    return 0


# ---------------------------------------------------------------------------------------
# conv_weight_grad (conv_weight_grad.pxi), conv_input_grad (conv_input_grad.pxi)

include "conv_weight_grad.pxi"
include "conv_input_grad.pxi"
