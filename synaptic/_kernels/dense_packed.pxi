# Packed sparse inputs (included by dense.pyx): pack_input, packed_forward, packed_weight_grad.
#
# The layout and the contract are in reference_packed.py (the twin).  The kernels are the
# sparse-input paths of dense_forward and weight_grad above, with the zeros' bit masks and the
# nonzero values read from the pack instead of being found in x at every call:
#
# * packed_forward: dense.pyx's _sparse_forward with the pack (each thread its own
#   transposed Wt, its range of rows in blocks of fb, the columns in chunks), the row masks
#   read from rmask and the values walked in rval (a pointer per row of the block).  Same terms, same order
#   (bias, then increasing j): the same bits as dense_forward's sparse path.
# * packed_weight_grad: as _sparse_grad (each thread a range of columns j, all the samples in
#   the pack's blocks, the block's dz rows copied padded into L1), the column masks read from
#   cmask and the values walked in cval.  The rows go in at most PK_GRAD_PARTS fixed parts
#   (each summed on its own by one thread, the dz rows it reads mostly written by the same
#   core), the parts added in order: the same bits for any thread count.
#
# Measured (MNIST t10k, 784 -> 100, f32, 2 threads, this 2-core Zen 4): see BENCHMARKS.md and
# the closing notes; x (31 MB) no longer streams from memory twice per L-BFGS evaluation.
# The C of these kernels: c/packed.h.

cdef extern from "packed.h":
    void syn_pk_rows_f(const float* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       uint32_t* rmask, int64_t* cnt) noexcept nogil
    void syn_pk_rows_d(const double* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       uint32_t* rmask, int64_t* cnt) noexcept nogil
    void syn_pk_rval_f(const float* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const uint32_t* rmask, const int64_t* roff, float* rval) noexcept nogil
    void syn_pk_rval_d(const double* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1,
                       const uint32_t* rmask, const int64_t* roff, double* rval) noexcept nogil
    void syn_pk_block_f(const float* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t bs, Py_ssize_t k,
                        uint64_t* cm, const int64_t* roff, float* cval) noexcept nogil
    void syn_pk_block_d(const double* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t bs, Py_ssize_t k,
                        uint64_t* cm, const int64_t* roff, double* cval) noexcept nogil
    void syn_pk_fwd_block_f(const uint32_t* rmask, Py_ssize_t nw, const float* rval,
                            const int64_t* roff, Py_ssize_t r0, Py_ssize_t r1, const float* wt,
                            Py_ssize_t ldt, const float* bias, float* out, Py_ssize_t o,
                            Py_ssize_t cw, const float** vp, float* ob) noexcept nogil
    void syn_pk_fwd_block_d(const uint32_t* rmask, Py_ssize_t nw, const double* rval,
                            const int64_t* roff, Py_ssize_t r0, Py_ssize_t r1, const double* wt,
                            Py_ssize_t ldt, const double* bias, double* out, Py_ssize_t o,
                            Py_ssize_t cw, const double** vp, double* ob) noexcept nogil
    int syn_pk_grad_cols_f(const float* dz, const uint64_t* cmask, const float* cval,
                           const int64_t* coff, Py_ssize_t n, Py_ssize_t o, Py_ssize_t d,
                           Py_ssize_t bs, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t j0,
                           Py_ssize_t j1, float* s, Py_ssize_t ldt,
                           float* dzb, int zero) noexcept nogil
    int syn_pk_grad_cols_d(const double* dz, const uint64_t* cmask, const double* cval,
                           const int64_t* coff, Py_ssize_t n, Py_ssize_t o, Py_ssize_t d,
                           Py_ssize_t bs, Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t j0,
                           Py_ssize_t j1, double* s, Py_ssize_t ldt, double* dzb,
                           int zero) noexcept nogil


cdef enum:
    PK_PACK_ROWS = 256          # rows per task while packing
    PK_GRAD_PARTS = 8           # weight gradient: rows in at most this many parts


cdef inline const void* _pk_data(object a) noexcept:
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef object _packed_x(object p, _Packed* pk):
    """Check ``p`` (a PackedInput; its arrays were checked when it was built and are frozen)
    and fill ``pk`` with its pointers; returns p.x."""
    if not isinstance(p, PackedInput):
        raise TypeError(f"a PackedInput (from pack_input) is needed, got {type(p).__name__}")
    x = p.x
    n, d = x.shape
    nb = (n + p.block - 1) // p.block
    # cheap re-checks of what the pointers below rely on (the object is frozen, its arrays
    # immutable copies: these only fail for an object built around the constructor)
    if not all([is_frozen(getattr(p, f)) for f in PackedInput.FIELDS]) or (p.rmask.shape != (n, (d + 31) // 32) or p.roff.shape != (n + 1,)
            or p.cmask.shape != (nb, d) or p.coff.shape != (nb + 1,)
            or p.rval.shape != (p.roff[n],) or p.cval.shape != (p.roff[n],)
            or p.rval.dtype != x.dtype or p.cval.dtype != x.dtype):
        raise ValueError("inconsistent PackedInput")
    pk.rmask = <const uint32_t*>_pk_data(p.rmask)
    pk.rval = _pk_data(p.rval)
    pk.roff = <const int64_t*>_pk_data(p.roff)
    pk.cmask = <const uint64_t*>_pk_data(p.cmask)
    pk.cval = _pk_data(p.cval)
    pk.coff = <const int64_t*>_pk_data(p.coff)
    pk.block = p.block
    return x


cdef int _pack_fill(const floating[:, ::1] x, uint32_t[:, ::1] rmask, int64_t[::1] roff,
                    floating[::1] rval, uint64_t[:, ::1] cmask, floating[::1] cval,
                    Py_ssize_t bs, int stage) except -1:
    """Stage 0: rmask and the row counts (in roff[1:]); stage 1: rval, cmask and cval."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1], nb = (n + bs - 1) // bs
    cdef Py_ssize_t nt = (n + PK_PACK_ROWS - 1) // PK_PACK_ROWS, t, r0, r1, k
    if n == 0 or d == 0:
        return 0
    cdef const floating* xp = &x[0, 0]
    cdef uint32_t* rm = &rmask[0, 0]
    cdef int64_t* ro = &roff[0]
    cdef floating* rv = &rval[0] if rval.shape[0] > 0 else NULL
    cdef floating* cv = &cval[0] if cval.shape[0] > 0 else NULL
    cdef uint64_t* cmp = &cmask[0, 0]
    with nogil:
        if stage == 0:
            for t in prange(nt, schedule='static', num_threads=_num_threads):
                r0 = t * PK_PACK_ROWS
                r1 = min(n, r0 + PK_PACK_ROWS)
                if floating is float:
                    syn_pk_rows_f(xp, d, r0, r1, rm, ro + 1)
                else:
                    syn_pk_rows_d(xp, d, r0, r1, rm, ro + 1)
        else:
            for t in prange(nt, schedule='static', num_threads=_num_threads):
                r0 = t * PK_PACK_ROWS
                r1 = min(n, r0 + PK_PACK_ROWS)
                if floating is float:
                    syn_pk_rval_f(xp, d, r0, r1, rm, ro, rv)
                else:
                    syn_pk_rval_d(xp, d, r0, r1, rm, ro, rv)
            for k in prange(nb, schedule='static', num_threads=_num_threads):
                if floating is float:
                    syn_pk_block_f(xp, n, d, bs, k, cmp + k * d, ro, cv)
                else:
                    syn_pk_block_d(xp, n, d, bs, k, cmp + k * d, ro, cv)
    return 0


def pack_input(x, block):
    """The packed nonzeros of ``x`` (n x d), the column layout in blocks of ``block`` rows
    (1..64): a PackedInput for packed_forward / packed_weight_grad (see reference_packed)."""
    check_pack_args(x, block)
    n, d = x.shape
    nb = (n + block - 1) // block
    rmask = np.zeros((n, (d + 31) // 32), dtype=np.uint32)
    roff = np.zeros(n + 1, dtype=np.int64)
    empty = np.empty(0, dtype=x.dtype)
    cmask = np.zeros((nb, d), dtype=np.uint64)
    if x.dtype == np.float32:
        _pack_fill[float](x, rmask, roff, empty, cmask, empty, block, 0)
    else:
        _pack_fill[double](x, rmask, roff, empty, cmask, empty, block, 0)
    np.cumsum(roff, out=roff)
    nnz = int(roff[n])
    rval = np.empty(nnz, dtype=x.dtype)
    cval = np.empty(nnz, dtype=x.dtype)
    if x.dtype == np.float32:
        _pack_fill[float](x, rmask, roff, rval, cmask, cval, block, 1)
    else:
        _pack_fill[double](x, rmask, roff, rval, cmask, cval, block, 1)
    coff = roff[np.minimum(np.arange(nb + 1) * block, n)]
    return PackedInput(x, block, rmask, rval, roff, cmask, cval, coff, _owned=True)


cdef int _packed_grad(const floating* dzp, const _Packed* pk, floating* op, Py_ssize_t n,
                      Py_ssize_t o, Py_ssize_t d, Py_ssize_t ldo) noexcept nogil:
    """The packed g[:, 1:] (see the top of this file): 1 if done, 0 if declined (no memory:
    nothing written; non-finite dz: g[:, 1:] partly written, to be redone)."""
    cdef Py_ssize_t ldt = _sp_ldt(o, floating is double), bs = pk.block, sz = d * ldt
    cdef Py_ssize_t nb = (n + bs - 1) // bs, per, nt, t, p, q, j, j0, j1, parts, bpp, kb0
    cdef int* ok
    cdef floating* s
    cdef floating* sp
    cdef floating* dzb
    cdef const floating* cv = <const floating*>pk.cval
    cdef int good = 1
    if n <= 0 or d <= 0 or o <= 0 or <size_t>(d * ldt) * sizeof(floating) > SP_MAX_SCRATCH:
        return 0
    # row parts (a function of the block count only, so that the sums do not depend on the
    # thread count), each summed on its own, then added in part order
    parts = nb if nb < PK_GRAD_PARTS else PK_GRAD_PARTS
    bpp = (nb + parts - 1) // parts
    parts = (nb + bpp - 1) // bpp
    nt = _sp_threads(n, d, o, parts)
    per = (bs * ldt * sizeof(floating) + 63) // 64 * 64
    s = <floating*>syn_sp_scratch(parts * sz * sizeof(floating) + nt * per
                                  + parts * sizeof(int))
    if s == NULL:
        return 0
    ok = <int*>(<char*>(s + parts * sz) + nt * per)
    for p in prange(parts, schedule='static', num_threads=nt):
        dzb = <floating*>(<char*>(s + parts * sz) + threadid() * per)
        kb0 = p * bpp
        if floating is float:
            ok[p] = syn_pk_grad_cols_f(dzp, pk.cmask, cv, pk.coff, n, o, d, bs, kb0,
                                       min(nb, kb0 + bpp), 0, d, s + p * sz, ldt, dzb, 1)
        else:
            ok[p] = syn_pk_grad_cols_d(dzp, pk.cmask, cv, pk.coff, n, o, d, bs, kb0,
                                       min(nb, kb0 + bpp), 0, d, s + p * sz, ldt, dzb, 1)
    for p in range(parts):
        good = good and ok[p]
    if not good:
        return 0
    nt = _sp_threads(n, d, o, d)
    for t in prange(nt, schedule='static', num_threads=nt):
        j0 = t * d // nt
        j1 = (t + 1) * d // nt
        for q in range(1, parts):
            sp = s + q * sz
            for j in range(j0 * ldt, j1 * ldt):
                s[j] = s[j] + sp[j]
        if floating is float:
            syn_sp_transpose_out_f(s, ldt, j0, j1, o, op, ldo)
        else:
            syn_sp_transpose_out_d(s, ldt, j0, j1, o, op, ldo)
    return 1


def packed_forward(p, w, int act, out, double slope=SYN_LEAKY_SLOPE):
    """out = f([1 | x] . w^T) for the packed x: as ``dense_forward(p.x, w, act, out, slope)``."""
    cdef _Packed pk
    x = _packed_x(p, &pk)
    cdef int k = _check_forward(x, w, act, slope, out)
    if k == 0:
        _dense_forward[float](x, w, act, slope, out, &pk)
    else:
        _dense_forward[double](x, w, act, slope, out, &pk)


def packed_weight_grad(dz, p, out):
    """out = dz^T . [1 | x] for the packed x: as ``weight_grad(dz, p.x, out)``."""
    cdef _Packed pk
    x = _packed_x(p, &pk)
    cdef int k = _check_weight_grad(dz, x, out)
    if k == 0:
        _weight_grad[float](dz, x, out, &pk)
    else:
        _weight_grad[double](dz, x, out, &pk)
