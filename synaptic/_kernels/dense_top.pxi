# output_backprop (included by dense.pyx): the output layer of a dense net, forward and
# backward, over all the rows at once, in one parallel region.
#
# The same operations as the twin's sequence (dense_forward, error_sum, output_delta,
# weight_grad, hidden_delta), done row chunk by row chunk while the chunk is in cache: the
# GEMM of the chunk, bias + activation, the chunk's error (in double), its delta, its share of
# the weight gradient (a GEMM into the chunk's own partial, and the bias column's sums in
# double), and the delta of the layer below.  The chunks are chunk_rows(n, o) rows, as
# error_sum's and weight_grad's bias column: those come out with the same bits; the partial
# gradients are added in chunk order (in double), so nothing depends on the thread count.
# Measured (W1's 100 -> 10 softmax layer over 10,000 rows, f32, 2 threads, in an L-BFGS
# evaluation): the five kernels ~1.4 ms, output_backprop ~0.5 ms (see the closing notes).

cdef extern from *:
    """
    /* Narrow output layers (o <= VL: the units fit one vector): hand-written loops instead of
       GEMMs with a dimension of 10, which OpenBLAS runs at a fraction of its speed. */
    /* Narrow output layers (o <= VL: the units fit one vector): hand-written loops instead of
       GEMMs with a dimension of 10, which OpenBLAS runs at a fraction of its speed.  These
       sums may contract a * b + c into an FMA, as a GEMM does (the module otherwise does
       not: its elementwise passes round like NumPy). */
    #define SYN_TOP_H_INIT(k, V, VL) V a##k = z0 * *(const V*)(w + (k) * (VL));
    #define SYN_TOP_H_STEP(k, V, VL) a##k += zj * *(const V*)(wj + (k) * (VL));
    #define SYN_TOP_H_STORE(k, V, VL) *(V*)(out + (k) * (VL)) = a##k;
    /* out[0:K*VL] = sum over j < o of z[j] * w[j * dp : ...], in increasing j */
    #define SYN_TOP_HTILE(S, T, V, VL, K) \
    static SYN_FMA SYN_SP_NOINLINE void syn_top_htile_##S##K(const T* z, Py_ssize_t o, \
            const T* w, Py_ssize_t dp, T* out) { \
        Py_ssize_t j; \
        T z0 = z[0]; \
        SYN_SP_R##K(SYN_TOP_H_INIT, V, VL) \
        for (j = 1; j < o; j++) { \
            T zj = z[j]; \
            const T* wj = w + j * dp; \
            SYN_SP_R##K(SYN_TOP_H_STEP, V, VL) \
        } \
        SYN_SP_R##K(SYN_TOP_H_STORE, V, VL) \
    }
    #define SYN_TOP_HCALL(S, K) syn_top_htile_##S##K(z, o, wr + off, dp, tmp + off)
    #define SYN_TOP_FUNCS(S, T, V, VL) \
    SYN_TOP_HTILE(S, T, V, VL, 1) SYN_TOP_HTILE(S, T, V, VL, 2) \
    SYN_TOP_HTILE(S, T, V, VL, 3) SYN_TOP_HTILE(S, T, V, VL, 4) \
    SYN_TOP_HTILE(S, T, V, VL, 5) SYN_TOP_HTILE(S, T, V, VL, 6) \
    SYN_TOP_HTILE(S, T, V, VL, 7) SYN_TOP_HTILE(S, T, V, VL, 8) \
    \
    /* y rows r0..r1-1 (row stride o) = bias + h[i] . Wt, the terms in increasing k, 8 rows \
       at a time (wt: d x VL, W[:, 1:] transposed and zero padded; bv: the bias, padded) */ \
    static SYN_FMA void syn_top_fwd_##S(const T* h, Py_ssize_t d, Py_ssize_t r0, \
            Py_ssize_t r1, const T* wt, const T* bv, T* y, Py_ssize_t o) { \
        Py_ssize_t i, k, j, m; \
        T tmp[8 * (VL)] __attribute__((aligned(64))); \
        const T* hr[8]; \
        for (i = r0; i < r1; i += 8) { \
            V a0 = *(const V*)bv, a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0; \
            m = r1 - i < 8 ? r1 - i : 8; \
            for (j = 0; j < 8; j++) hr[j] = h + (i + (j < m ? j : 0)) * d; \
            for (k = 0; k < d; k++) { \
                V w = *(const V*)(wt + k * (VL)); \
                a0 += hr[0][k] * w; a1 += hr[1][k] * w; a2 += hr[2][k] * w; a3 += hr[3][k] * w; \
                a4 += hr[4][k] * w; a5 += hr[5][k] * w; a6 += hr[6][k] * w; a7 += hr[7][k] * w; \
            } \
            *(V*)tmp = a0; *(V*)(tmp + (VL)) = a1; \
            *(V*)(tmp + 2 * (VL)) = a2; *(V*)(tmp + 3 * (VL)) = a3; \
            *(V*)(tmp + 4 * (VL)) = a4; *(V*)(tmp + 5 * (VL)) = a5; \
            *(V*)(tmp + 6 * (VL)) = a6; *(V*)(tmp + 7 * (VL)) = a7; \
            for (j = 0; j < m; j++) memcpy(y + (i + j) * o, tmp + j * (VL), o * sizeof(T)); \
        } \
    } \
    \
    /* dh rows r0..r1-1 (d wide) = dz[i] . W[:, 1:], the terms in increasing j (wr: o rows of \
       dp >= d, W[j, 1:] zero padded; tmp: dp scratch); f'(h) is applied by the caller */ \
    static void syn_top_hid_##S(const T* dz, Py_ssize_t o, const T* wr, Py_ssize_t dp, \
            Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, T* dh, T* tmp) { \
        Py_ssize_t i, cc, off, nv = dp / (VL); \
        for (i = r0; i < r1; i++) { \
            const T* z = dz + i * o; \
            for (cc = 0; cc < nv; cc += 8) { \
                off = cc * (VL); \
                switch (nv - cc < 8 ? nv - cc : 8) { \
                case 1: SYN_TOP_HCALL(S, 1); break; case 2: SYN_TOP_HCALL(S, 2); break; \
                case 3: SYN_TOP_HCALL(S, 3); break; case 4: SYN_TOP_HCALL(S, 4); break; \
                case 5: SYN_TOP_HCALL(S, 5); break; case 6: SYN_TOP_HCALL(S, 6); break; \
                case 7: SYN_TOP_HCALL(S, 7); break; default: SYN_TOP_HCALL(S, 8); \
                } \
            } \
            memcpy(dh + i * d, tmp, d * sizeof(T)); \
        } \
    } \
    \
    /* gt (d x VL; lane j of gt[k] is g[j, 1 + k]) = the sum over rows r0..r1-1 of \
       h[i, k] * dz[i]: sub-blocks of 64 rows summed in registers (rows in order), then \
       added to gt (dzb: 64 x VL scratch) */ \
    static SYN_FMA void syn_top_grad_##S(const T* h, Py_ssize_t d, const T* dz, \
            Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1, T* gt, T* dzb) { \
        Py_ssize_t b0, b1, i, k0, kb; \
        memset(gt, 0, d * (VL) * sizeof(T)); \
        for (b0 = r0; b0 < r1; b0 += 64) { \
            b1 = b0 + 64 < r1 ? b0 + 64 : r1; \
            for (i = b0; i < b1; i++) { \
                memset(dzb + (i - b0) * (VL), 0, (VL) * sizeof(T)); \
                memcpy(dzb + (i - b0) * (VL), dz + i * o, o * sizeof(T)); \
            } \
            for (k0 = 0; k0 + 8 <= d; k0 += 8) { \
                V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0}; \
                for (i = b0; i < b1; i++) { \
                    V z = *(const V*)(dzb + (i - b0) * (VL)); \
                    const T* hr = h + i * d + k0; \
                    a0 += hr[0] * z; a1 += hr[1] * z; a2 += hr[2] * z; a3 += hr[3] * z; \
                    a4 += hr[4] * z; a5 += hr[5] * z; a6 += hr[6] * z; a7 += hr[7] * z; \
                } \
                *(V*)(gt + (k0 + 0) * (VL)) += a0; *(V*)(gt + (k0 + 1) * (VL)) += a1; \
                *(V*)(gt + (k0 + 2) * (VL)) += a2; *(V*)(gt + (k0 + 3) * (VL)) += a3; \
                *(V*)(gt + (k0 + 4) * (VL)) += a4; *(V*)(gt + (k0 + 5) * (VL)) += a5; \
                *(V*)(gt + (k0 + 6) * (VL)) += a6; *(V*)(gt + (k0 + 7) * (VL)) += a7; \
            } \
            for (kb = k0; kb < d; kb++) { \
                V a = {0}; \
                for (i = b0; i < b1; i++) a += h[i * d + kb] * *(const V*)(dzb + (i - b0) * (VL)); \
                *(V*)(gt + kb * (VL)) += a; \
            } \
        } \
    }

    static void* syn_top_alloc(size_t n) {
        void* p = NULL;
        return posix_memalign(&p, 64, n ? n : 64) == 0 ? p : NULL;
    }

    SYN_TOP_FUNCS(f, float, syn_sp_vf, SYN_SP_VLF)
    SYN_TOP_FUNCS(d, double, syn_sp_vd, SYN_SP_VLD)
    """
    void* syn_top_alloc(size_t n) noexcept nogil
    void syn_top_fwd_f(const float* h, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const float* wt, const float* bv, float* y, Py_ssize_t o) noexcept nogil
    void syn_top_fwd_d(const double* h, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const double* wt, const double* bv, double* y, Py_ssize_t o) noexcept nogil
    void syn_top_hid_f(const float* dz, Py_ssize_t o, const float* wr, Py_ssize_t dp,
                       Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, float* dh,
                       float* tmp) noexcept nogil
    void syn_top_hid_d(const double* dz, Py_ssize_t o, const double* wr, Py_ssize_t dp,
                       Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, double* dh,
                       double* tmp) noexcept nogil
    void syn_top_grad_f(const float* h, Py_ssize_t d, const float* dz, Py_ssize_t o,
                        Py_ssize_t r0, Py_ssize_t r1, float* gt, float* dzb) noexcept nogil
    void syn_top_grad_d(const double* h, Py_ssize_t d, const double* dz, Py_ssize_t o,
                        Py_ssize_t r0, Py_ssize_t r1, double* gt, double* dzb) noexcept nogil


cdef enum:
    TOP_MAX_PARTIAL_BYTES = 33554432    # more partials than this: the separate kernels


cdef void _top_chunk(const floating* hp, const floating* wp, const floating* bias,
                     const floating* tp, floating* yp, floating* dzp, floating* part,
                     double* bsum, double* epart, floating* dhp, Py_ssize_t r0, Py_ssize_t r1,
                     Py_ssize_t d, Py_ssize_t o, int act, int kind, int err,
                     int hact) noexcept nogil:
    cdef Py_ssize_t ldw = 1 + d
    _forward_part(hp, wp, bias, yp, r0, r1, d, o, ldw, act)
    epart[0] = _chunk_error(yp, tp, r0, r1, o, err)
    _delta_row(yp + r0 * o, tp + r0 * o, dzp + r0 * o, (r1 - r0) * o, act, kind)
    _colsum_chunk(dzp, r0, r1, o, o, bsum)
    # part (o x d, row-major) = dz[r0:r1]^T . h[r0:r1]; column-major: part^T = h^T . dz
    gemm(c'N', c'T', <int>d, <int>o, <int>(r1 - r0), hp + r0 * d, <int>d, dzp + r0 * o, <int>o,
         part, <int>d)
    if dhp != NULL:
        _hidden_part(dzp, wp, hp, dhp, r0, r1, 0, d, o, d, ldw, hact)


cdef void _top_rows_narrow(const floating* hp, const floating* wt, const floating* wr,
                           const floating* bv, const floating* tp, floating* yp, floating* dzp,
                           floating* gt, double* bsum, double* e, floating* dhp,
                           Py_ssize_t rows, Py_ssize_t d, Py_ssize_t dp, Py_ssize_t o, int act,
                           int kind, int err, int hact, floating* dzs,
                           floating* tmp) noexcept nogil:
    """The narrow output layer (o <= VL) on ``rows`` rows, every row pointer at the first of
    them: y = f(bias + h . W[:, 1:]^T) (wt: W[:, 1:] transposed, d x VL; bv: the bias), its
    error e (double), the delta dz, bsum = dz's column sums (double), gt = the weight gradient
    transposed (d x VL: lane j of row k is g[j, 1 + k]) and, unless dhp is NULL,
    dh = (dz . W[:, 1:]) * f'(h) (wr: W[:, 1:]'s rows padded to dp).  Scratch: dzs, min(rows,
    64) x VL; tmp, dp.  Also the output layer of packed_objective."""
    if floating is float:
        syn_top_fwd_f(hp, d, 0, rows, wt, bv, yp, o)
    else:
        syn_top_fwd_d(hp, d, 0, rows, wt, bv, yp, o)
    act_rows(yp, yp, 0, rows, o, act)
    e[0] = _chunk_error(yp, tp, 0, rows, o, err)
    _delta_row(yp, tp, dzp, rows * o, act, kind)
    _colsum_chunk(dzp, 0, rows, o, o, bsum)
    if floating is float:
        syn_top_grad_f(hp, d, dzp, o, 0, rows, gt, dzs)
    else:
        syn_top_grad_d(hp, d, dzp, o, 0, rows, gt, dzs)
    if dhp != NULL:
        if floating is float:
            syn_top_hid_f(dzp, o, wr, dp, d, 0, rows, dhp, tmp)
        else:
            syn_top_hid_d(dzp, o, wr, dp, d, 0, rows, dhp, tmp)
        mul_deriv_row(dhp, hp, rows * d, hact)


cdef int _output_backprop(const floating[:, ::1] h, const floating[:, ::1] w,
                          const floating[:, ::1] t, int act, int kind, int err, int hact,
                          floating[:, ::1] y, floating[:, ::1] dz, floating[:, ::1] g,
                          floating* dhp, double* error) except -1:
    """0 when done (error set), 1 when the partials would be too big (nothing written)."""
    cdef Py_ssize_t n = h.shape[0], d = h.shape[1], o = w.shape[0], ldw = 1 + d
    cdef Py_ssize_t rows = chunk_rows(n, o), nch = (n + rows - 1) // rows, c, j, k, nt, r0
    cdef floating* scr
    cdef Py_ssize_t vl = SYN_SP_VLD if floating is double else SYN_SP_VLF
    cdef Py_ssize_t dp = (d + vl - 1) // vl * vl
    cdef bint narrow = o <= vl
    cdef Py_ssize_t psize = d * vl if narrow else o * d        # one chunk's partial
    cdef double s
    cdef double epart[MAX_CHUNKS]
    cdef int status[MAX_CHUNKS]
    cdef int failed = 0
    if n == 0 or d == 0 or o == 0 or nch * psize * <Py_ssize_t>sizeof(floating) > TOP_MAX_PARTIAL_BYTES:
        return 1
    cdef const floating* hp = &h[0, 0]
    cdef const floating* wp = &w[0, 0]
    cdef const floating* tp = &t[0, 0]
    cdef floating* yp = &y[0, 0]
    cdef floating* dzp = &dz[0, 0]
    cdef floating* gp = &g[0, 0]
    # partials, then (narrow) W[:, 1:] transposed (d x vl), its rows padded (o x dp), the bias
    cdef Py_ssize_t extra = (d * vl + o * dp + vl) if narrow else o
    cdef floating* part = <floating*>syn_top_alloc((nch * psize + extra) * sizeof(floating))
    cdef floating* wt = part + nch * psize
    cdef floating* wr = wt + d * vl
    cdef floating* bias = (wr + o * dp) if narrow else wt
    cdef double* bsum = <double*>malloc(nch * o * sizeof(double))
    if part == NULL or bsum == NULL:
        free(part)
        free(bsum)
        raise MemoryError()
    with nogil:
        if narrow:
            memset(wt, 0, (d * vl + o * dp + vl) * sizeof(floating))
        for j in range(o):
            bias[j] = wp[j * ldw]
            if narrow:
                for k in range(d):
                    wt[k * vl + j] = wp[j * ldw + 1 + k]
                    wr[j * dp + k] = wp[j * ldw + 1 + k]
        nt = _num_threads if nch > 1 and n * o * d >= _gemm_min_macs else 1
        for c in prange(nch, schedule='static', num_threads=nt):
            if narrow:
                # this thread's reusable block (per thread; the buffers of this call are
                # malloc'ed, so the calling thread may use its own here too)
                scr = <floating*>syn_sp_scratch((64 * vl + dp) * sizeof(floating))
                status[c] = scr == NULL
                r0 = c * rows
                if scr != NULL:
                    _top_rows_narrow(hp + r0 * d, wt, wr, bias, tp + r0 * o, yp + r0 * o,
                                     dzp + r0 * o, part + c * psize, bsum + c * o, epart + c,
                                     dhp + r0 * d if dhp != NULL else NULL,
                                     min(n, r0 + rows) - r0, d, dp, o, act, kind, err, hact,
                                     scr, scr + 64 * vl)
            else:
                _top_chunk(hp, wp, bias, tp, yp, dzp, part + c * psize, bsum + c * o, epart + c,
                           dhp, c * rows, min(n, c * rows + rows), d, o, act, kind, err, hact)
                status[c] = 0
        for c in range(nch):
            failed = failed or status[c]
        if not failed:
            for j in range(o):
                s = bsum[j]
                for c in range(1, nch):
                    s += bsum[c * o + j]
                gp[j * ldw] = <floating>s
                for k in range(d):
                    if narrow:
                        s = part[k * vl + j]
                        for c in range(1, nch):
                            s += part[c * psize + k * vl + j]
                    else:
                        s = part[j * d + k]
                        for c in range(1, nch):
                            s += part[c * psize + j * d + k]
                    gp[j * ldw + 1 + k] = <floating>s
            s = 0
            for c in range(nch):
                s += epart[c]
            if err == ERR_CROSS_ENTROPY_BINARY or err == ERR_CROSS_ENTROPY_MULTIVARIATE:
                s = -s
            error[0] = s
        free(part)
        free(bsum)
    if failed:
        raise MemoryError()
    return 0


def output_backprop(h, w, t, int act, int kind, int err, int hact, y, dz, g, dh):
    """The output layer of a dense net over all the rows of ``h`` at once; returns the error.

    As the twin's sequence: ``dense_forward(h, w, act, y)``, ``output_delta(y, t, act, kind,
    dz)``, ``weight_grad(dz, h, g)``, ``hidden_delta(dz, w, h, hact, dh)`` (skipped when
    ``dh`` is None: h is then the net's input) and ``return error_sum(y, t, err)``."""
    cdef int k = _check_forward(h, w, act, y, "h", "y")
    cdef double error = 0
    check_same(k, h, "h", check_float(t, "t", 2, False), t, "t")
    check_shape(t, "t", dim(h, 0), dim(w, 0))
    check_same(k, h, "h", check_float(dz, "dz", 2, True), dz, "dz")
    check_shape(dz, "dz", dim(h, 0), dim(w, 0))
    check_same(k, h, "h", check_float(g, "g", 2, True), g, "g")
    check_shape(g, "g", dim(w, 0), dim(w, 1))
    if kind == DELTA_SSE:
        check_deriv(act)
    elif kind != DELTA_DIFF:
        raise ValueError(f"unknown output-delta kind {kind}")
    if not 0 <= err < N_ERR:
        raise ValueError(f"unknown error kind {err}")
    if err == ERR_ARGMAX_MISCLASSIFICATION and dim(w, 0) == 0 and dim(h, 0) > 0:
        raise ValueError("attempt to get argmax of an empty sequence (y has 0 columns)")
    outs = [(y, "y"), (dz, "dz"), (g, "g")]
    if dh is not None:
        check_same(k, h, "h", check_float(dh, "dh", 2, True), dh, "dh")
        check_shape(dh, "dh", dim(h, 0), dim(h, 1))
        check_deriv(hact)
        outs.append((dh, "dh"))
    for i, (a, name) in enumerate(outs):
        for b, other in [(h, "h"), (w, "w"), (t, "t")] + outs[i + 1:]:
            check_disjoint(a, name, b, other)
    if k == 0:
        done = _output_backprop[float](h, w, t, act, kind, err, hact, y, dz, g,
                                       <float*>_data_or_null(dh), &error)
    else:
        done = _output_backprop[double](h, w, t, act, kind, err, hact, y, dz, g,
                                        <double*>_data_or_null(dh), &error)
    if done == 0:
        return error
    # no rows, no inputs, or layers too wide for the partials: the twin's separate kernels,
    # native
    from . import native, reference
    return reference._output_backprop_steps(native, h, w, t, act, kind, err, hact, y, dz, g, dh)


cdef inline void* _data_or_null(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)
