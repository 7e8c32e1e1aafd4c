/* The packed-input kernels (dense_packed.pxi: pack_input, packed_forward,
 * packed_weight_grad): the sparse kernels of sparse.h with the zeros' bit masks and the
 * nonzero values read from a pack (layout: reference_packed.py) instead of found in x.
 *
 * Declared for Cython in dense_packed.pxi.  Compiled once per CPU level, as sparse.h.
 */
#ifndef SYNAPTIC_PACKED_H
#define SYNAPTIC_PACKED_H

#include "sparse.h"
#if defined(__GNUC__)
#  define syn_pk_popcount64(m) __builtin_popcountll(m)
#else
static int syn_pk_popcount64(uint64_t m) { int c = 0; while (m) { m &= m - 1; c++; } return c; }
#endif

#define SYN_PK_FT_INIT(k, V, VL) V a##k = *(const V*)(out + (k) * (VL));
#define SYN_PK_FT_STEP(k, V, VL) a##k += xv * *(const V*)(w + (k) * (VL));
#define SYN_PK_GC_STEP(k, V, VL) a##k += xv * *(const V*)(r + (k) * (VL));

/* out[0:K*VL] += the values v[0], v[1], ... times the rows of wt at the set bits of mw
   (nw words), in increasing bit order; returns v past the values used */
#define SYN_PK_FTILE(S, T, V, VL, K) \
static SYN_FMA SYN_SP_NOINLINE const T* syn_pk_ftile_##S##K(const uint32_t* mw, Py_ssize_t nw, \
        const T* v, const T* wt, Py_ssize_t ldt, T* out) { \
    Py_ssize_t q; \
    SYN_SP_R##K(SYN_PK_FT_INIT, V, VL) \
    for (q = 0; q < nw; q++) { \
        uint32_t m = mw[q]; \
        const T* wq = wt + q * 32 * ldt; \
        while (m) { \
            int c = syn_sp_ctz32(m); \
            const T* w = wq + (Py_ssize_t)c * ldt; \
            T xv = *v++; \
            m &= m - 1; \
            SYN_SP_R##K(SYN_PK_FT_STEP, V, VL) \
        } \
    } \
    SYN_SP_R##K(SYN_SP_FT_STORE, V, VL) \
    return v; \
}

/* s[0:K*VL] += the block's sum of v[0], v[1], ... times the dzb rows at the set bits of
   mk (in increasing bit order, from 0); returns v past the values used */
#define SYN_PK_GCOL(S, T, V, VL, K) \
static SYN_FMA SYN_SP_NOINLINE const T* syn_pk_gcol_##S##K(uint64_t mk, const T* v, \
        const T* dzb, Py_ssize_t ldt, T* s) { \
    SYN_SP_R##K(SYN_SP_GC_INIT, V, VL) \
    while (mk) { \
        int b = syn_sp_ctz64(mk); \
        const T* r = dzb + (Py_ssize_t)b * ldt; \
        T xv = *v++; \
        mk &= mk - 1; \
        SYN_SP_R##K(SYN_PK_GC_STEP, V, VL) \
    } \
    SYN_SP_R##K(SYN_SP_GC_STORE, V, VL) \
    return v; \
}

#define SYN_PK_FUNCS(S, T, V, VL) \
SYN_SP_EACH_K(SYN_PK_FTILE, S, T, V, VL) \
SYN_SP_EACH_K(SYN_PK_GCOL, S, T, V, VL) \
\
/* pack: the row masks of rows r0..r1-1 and their nonzero counts cnt[i] */ \
static void syn_pk_rows_##S(const T* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, \
                            uint32_t* rmask, int64_t* cnt) { \
    Py_ssize_t i, q, nw = (d + 31) / 32; \
    for (i = r0; i < r1; i++) { \
        int64_t c = 0; \
        syn_sp_rowmask_##S(x + i * d, d, rmask + i * nw); \
        for (q = 0; q < nw; q++) c += syn_pk_popcount64(rmask[i * nw + q]); \
        cnt[i] = c; \
    } \
} \
\
/* pack: the values of rows r0..r1-1 in row order */ \
static void syn_pk_rval_##S(const T* x, Py_ssize_t d, Py_ssize_t r0, Py_ssize_t r1, \
                            const uint32_t* rmask, const int64_t* roff, T* rval) { \
    Py_ssize_t i, q, nw = (d + 31) / 32; \
    for (i = r0; i < r1; i++) { \
        T* v = rval + roff[i]; \
        const T* xr = x + i * d; \
        for (q = 0; q < nw; q++) { \
            uint32_t m = rmask[i * nw + q]; \
            while (m) { *v++ = xr[q * 32 + syn_sp_ctz32(m)]; m &= m - 1; } \
        } \
    } \
} \
\
/* pack: block k (rows k*bs ..): its column masks cm[0:d] and values, column-major */ \
static void syn_pk_block_##S(const T* x, Py_ssize_t n, Py_ssize_t d, Py_ssize_t bs, \
        Py_ssize_t k, uint64_t* cm, const int64_t* roff, T* cval) { \
    Py_ssize_t i, c, i0 = k * bs, i1 = i0 + bs < n ? i0 + bs : n; \
    T* v = cval + roff[i0]; \
    memset(cm, 0, d * sizeof(uint64_t)); \
    for (i = i0; i < i1; i++) { \
        const T* xr = x + i * d; \
        int sh = (int)(i - i0); \
        for (c = 0; c < d; c++) cm[c] |= (uint64_t)(xr[c] != 0) << sh; \
    } \
    for (c = 0; c < d; c++) { \
        uint64_t mk = cm[c]; \
        while (mk) { *v++ = x[(i0 + syn_sp_ctz64(mk)) * d + c]; mk &= mk - 1; } \
    } \
} \
\
/* out[i, :o] = bias + x[i] . W[:, 1:]^T for r0 <= i < r1, as syn_sp_fwd_block (the same \
   chunks and order), the masks and values from the pack (vp: rows x pointers) */ \
static void syn_pk_fwd_block_##S(const uint32_t* rmask, Py_ssize_t nw, const T* rval, \
        const int64_t* roff, Py_ssize_t r0, Py_ssize_t r1, const T* wt, Py_ssize_t ldt, \
        const T* bias, T* out, Py_ssize_t o, Py_ssize_t cw, const T** vp, T* ob) { \
    Py_ssize_t i, q, q0, q1, cc, off, nv = ldt / (VL); \
    const char* pf; \
    /* the block's values, towards the cache in one sweep (the chunks then walk them \
       row after row: a stride the hardware prefetcher does not follow) */ \
    for (pf = (const char*)(rval + roff[r0]); pf < (const char*)(rval + roff[r1]); pf += 64) \
        syn_sp_prefetch(pf); \
    for (i = r0; i < r1; i++) { \
        vp[i - r0] = rval + roff[i]; \
        memcpy(ob + (i - r0) * ldt, bias, ldt * sizeof(T)); \
    } \
    for (q0 = 0; q0 < nw; q0 += cw) { \
        q1 = q0 + cw < nw ? q0 + cw : nw; \
        for (i = r0; i < r1; i++) { \
            const uint32_t* m = rmask + i * nw + q0; \
            const T* wq = wt + q0 * 32 * ldt; \
            const T* v0 = vp[i - r0]; \
            const T* v1 = v0; \
            T* r = ob + (i - r0) * ldt; \
            SYN_SP_ROW_TILES(SYN_PK_FCALL, S, VL) \
            vp[i - r0] = v1; \
        } \
    } \
    for (i = r0; i < r1; i++) memcpy(out + i * o, ob + (i - r0) * ldt, o * sizeof(T)); \
} \
\
/* s[j, :] = sum_i x[i, j] * dz[i, :o] for j0 <= j < j1 over the rows of blocks \
   kb0..kb1-1, as syn_sp_grad_cols (block sums added in block order), the masks and values \
   from the pack (blocks of bs rows); s[j0:j1] zeroed first if `zero`, else added to. \
   1 if dz is all finite. */ \
static int syn_pk_grad_cols_##S(const T* dz, const uint64_t* cmask, const T* cval, \
        const int64_t* coff, Py_ssize_t n, Py_ssize_t o, Py_ssize_t d, Py_ssize_t bs, \
        Py_ssize_t kb0, Py_ssize_t kb1, Py_ssize_t j0, Py_ssize_t j1, T* s, Py_ssize_t ldt, \
        T* dzb, int zero) { \
    Py_ssize_t kb, i0, i1, i, c, cc, k, off, nv = ldt / (VL); \
    int bad = 0; \
    if (j1 <= j0) return 1; \
    if (zero) memset(s + j0 * ldt, 0, (j1 - j0) * ldt * sizeof(T)); \
    for (kb = kb0; kb < kb1; kb++) { \
        const uint64_t* cm = cmask + kb * d; \
        const T* v = cval + coff[kb]; \
        i0 = kb * bs; \
        i1 = i0 + bs < n ? i0 + bs : n; \
        for (c = 0; c < j0; c++) v += syn_pk_popcount64(cm[c]); \
        for (i = i0; i < i1; i++) { \
            const T* dr = dz + i * o; \
            T* db = dzb + (i - i0) * ldt; \
            SYN_SP_DZ_ROW(T) \
        } \
        for (c = j0; c < j1; c++) { \
            uint64_t mk = cm[c]; \
            const T* v1 = v; \
            T* sc = s + c * ldt; \
            if (!mk) continue; \
            for (cc = 0; cc < nv; cc += 8) { \
                off = cc * (VL); \
                SYN_SP_CASES(SYN_PK_GCALL, S) \
            } \
            v = v1; \
        } \
    } \
    return !bad; \
}

#define SYN_PK_FCALL(S, K) v1 = syn_pk_ftile_##S##K(m, q1 - q0, v0, wq + off, ldt, r + off)
#define SYN_PK_GCALL(S, K) v1 = syn_pk_gcol_##S##K(mk, v, dzb + off, ldt, sc + off)

SYN_PK_FUNCS(f, float, syn_sp_vf, SYN_SP_VLF)
SYN_PK_FUNCS(d, double, syn_sp_vd, SYN_SP_VLD)

#endif /* SYNAPTIC_PACKED_H */
