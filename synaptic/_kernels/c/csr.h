/* The C of csr.pyx: a first fully-connected layer on a CSR input (SciPy's layout: data,
 * indices, indptr; indices int32 or int64, not necessarily sorted within a row).
 *
 * * forward: out[i, :o] = bias + sum over the stored entries k of row i, in storage order,
 *   of data[k] * Wt[indices[k], :] -- Wt the transposed W[:, 1:] (d x ldt, o padded to a
 *   whole number of vectors with zeros), the accumulators of up to 8 vectors in registers
 *   (syn_csr_ftile_*), in chunks of 8 vectors for wider layers.
 * * weight gradient: the entries regrouped by column (syn_csr_to_csc_*: a counting sort, so
 *   each column's entries are in increasing row order), then for each column j
 *   s[j, :] = sum of v * dz[i, :] over its entries (syn_csr_gcol_*, dz rows copied padded to
 *   ldt), a block of SYN_CSR_JB columns at a time, transposed into g[:, 1 + j] -- for a
 *   mini-batch; a large batch walks the rows instead (syn_csr_grad_rows_*: dz streamed, the
 *   entries added into a d x o transposed scratch kept in cache; csr.pyx chooses).
 *
 * Every output element is one sum in a fixed order computed by one thread: the same bits for
 * any thread count and split.  The vector types, SYN_FMA and the transpositions are those
 * of sparse.h (its static functions: this module has its own copy).
 */
#ifndef SYNAPTIC_CSR_H
#define SYNAPTIC_CSR_H

/* sparse.h's kernels this module does not use: no warning for them */
#if defined(__GNUC__)
#  pragma GCC diagnostic push
#  pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include "sparse.h"
#if defined(__GNUC__)
#  pragma GCC diagnostic pop
#endif

#define SYN_CSR_JB 16   /* gradient columns a block (a tile of the transposition out) */

#define SYN_CSR_FT_INIT(k, V, VL) V a##k = *(const V*)(b + (k) * (VL));
#define SYN_CSR_FT_STEP(k, V, VL) a##k += v * *(const V*)(w + (k) * (VL));
#define SYN_CSR_ST(k, V, VL) *(V*)(out + (k) * (VL)) = a##k;
#define SYN_CSR_GC_INIT(k, V, VL) V a##k = (V){0};
#define SYN_CSR_GC_STEP(k, V, VL) a##k += v * *(const V*)(r + (k) * (VL));

/* forward tile of K vectors: out[0:K*VL] = b + sum_q val[q] * wt[idx[q] * ldt : ...] */
#define SYN_CSR_FTILE(S, T, V, VL, IS, I, K) \
static SYN_FMA SYN_SP_NOINLINE void syn_csr_ftile_##S##IS##K(const T* val, const I* idx, \
        Py_ssize_t n, const T* wt, Py_ssize_t ldt, const T* b, T* out) { \
    Py_ssize_t q; \
    SYN_SP_R##K(SYN_CSR_FT_INIT, V, VL) \
    for (q = 0; q < n; q++) { \
        T v = val[q]; \
        const T* w = wt + (Py_ssize_t)idx[q] * ldt; \
        SYN_SP_R##K(SYN_CSR_FT_STEP, V, VL) \
    } \
    SYN_SP_R##K(SYN_CSR_ST, V, VL) \
}

/* gradient tile of K vectors: out[0:K*VL] = sum_q val[q] * dzp[rows[q] * ldt : ...] */
#define SYN_CSR_GTILE(S, T, V, VL, K) \
static SYN_FMA SYN_SP_NOINLINE void syn_csr_gcol_##S##K(const T* val, const Py_ssize_t* rows, \
        Py_ssize_t n, const T* dzp, Py_ssize_t ldt, T* out) { \
    Py_ssize_t q; \
    SYN_SP_R##K(SYN_CSR_GC_INIT, V, VL) \
    for (q = 0; q < n; q++) { \
        T v = val[q]; \
        const T* r = dzp + rows[q] * ldt; \
        SYN_SP_R##K(SYN_CSR_GC_STEP, V, VL) \
    } \
    SYN_SP_R##K(SYN_CSR_ST, V, VL) \
}

#define SYN_CSR_SWITCH(CALL) \
    switch (nv - cc < 8 ? nv - cc : 8) { \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; \
    case 4: CALL(4); break; case 5: CALL(5); break; case 6: CALL(6); break; \
    case 7: CALL(7); break; default: CALL(8); \
    }

#define SYN_CSR_EACH_K(M, ...) \
    M(__VA_ARGS__, 1) M(__VA_ARGS__, 2) M(__VA_ARGS__, 3) M(__VA_ARGS__, 4) \
    M(__VA_ARGS__, 5) M(__VA_ARGS__, 6) M(__VA_ARGS__, 7) M(__VA_ARGS__, 8)

/* the functions of one data type S/T and one index type IS/I */
#define SYN_CSR_IFUNCS(S, T, V, VL, IS, I) \
SYN_CSR_EACH_K(SYN_CSR_FTILE, S, T, V, VL, IS, I) \
\
/* out[i, :o] = bias + row i . W[:, 1:]^T for r0 <= i < r1 (ob: one ldt row of scratch) */ \
static void syn_csr_fwd_rows_##S##IS(const T* data, const I* indices, const I* indptr, \
        Py_ssize_t r0, Py_ssize_t r1, const T* wt, Py_ssize_t ldt, const T* bias, T* out, \
        Py_ssize_t o, T* ob) { \
    Py_ssize_t i, cc, off, a, n, nv = ldt / (VL); \
    for (i = r0; i < r1; i++) { \
        a = (Py_ssize_t)indptr[i]; \
        n = (Py_ssize_t)indptr[i + 1] - a; \
        for (cc = 0; cc < nv; cc += 8) { \
            off = cc * (VL); \
            SYN_CSR_SWITCH(SYN_CSR_FCALL_##S##IS) \
        } \
        memcpy(out + i * o, ob, o * sizeof(T)); \
    } \
} \
\
/* gt[j, u0:u1] (row stride ldt) += v * dz[i, u0:u1] over the entries (i, j, v) of rows \
   0..m-1, row after row: the weight gradient of a batch too large for the column layout's \
   walk (its dz rows would come from memory, one per entry), dz streamed instead and gt \
   (d x ldt) kept in cache */ \
static SYN_FMA void syn_csr_grad_rows_##S##IS(const T* data, const I* indices, \
        const I* indptr, Py_ssize_t m, const T* dz, Py_ssize_t o, Py_ssize_t u0, \
        Py_ssize_t u1, T* gt, Py_ssize_t ldt) { \
    Py_ssize_t i, k, u, n = u1 - u0; \
    for (i = 0; i < m; i++) { \
        const T* __restrict dr = dz + i * o + u0; \
        for (k = (Py_ssize_t)indptr[i]; k < (Py_ssize_t)indptr[i + 1]; k++) { \
            T v = data[k]; \
            T* __restrict g = gt + (Py_ssize_t)indices[k] * ldt + u0; \
            for (u = 0; u < n; u++) g[u] += v * dr[u]; \
        } \
    } \
} \
\
/* the entries of rows 0..m-1 by column: column j's in crow/cval[cptr[j]:cptr[j + 1]], in \
   increasing row order (indices already checked to be in 0..d-1) */ \
static void syn_csr_to_csc_##S##IS(const T* data, const I* indices, const I* indptr, \
        Py_ssize_t m, Py_ssize_t d, Py_ssize_t* cptr, Py_ssize_t* crow, T* cval) { \
    Py_ssize_t i, j, k, p; \
    memset(cptr, 0, (d + 1) * sizeof(Py_ssize_t)); \
    for (k = (Py_ssize_t)indptr[0]; k < (Py_ssize_t)indptr[m]; k++) \
        cptr[(Py_ssize_t)indices[k] + 1]++; \
    for (j = 0; j < d; j++) cptr[j + 1] += cptr[j]; \
    for (i = 0; i < m; i++) \
        for (k = (Py_ssize_t)indptr[i]; k < (Py_ssize_t)indptr[i + 1]; k++) { \
            p = cptr[(Py_ssize_t)indices[k]]++; \
            crow[p] = i; \
            cval[p] = data[k]; \
        } \
    for (j = d; j > 0; j--) cptr[j] = cptr[j - 1]; \
    cptr[0] = 0; \
}

#define SYN_CSR_CHECK(IS, I) \
/* -1 if indptr is monotone from indptr[0] >= 0 to indptr[m] <= nnz and every index of the \
   rows is in 0..d-1; else the first bad position: an indptr entry (*what = 0) or an entry of \
   indices (*what = 1) */ \
static Py_ssize_t syn_csr_check_##IS(const I* indices, const I* indptr, Py_ssize_t m, \
        Py_ssize_t nnz, Py_ssize_t d, int* what) { \
    Py_ssize_t i, k; \
    *what = 0; \
    if (indptr[0] < 0 || (Py_ssize_t)indptr[0] > nnz) return 0; \
    for (i = 0; i < m; i++) \
        if (indptr[i + 1] < indptr[i] || (Py_ssize_t)indptr[i + 1] > nnz) return i + 1; \
    *what = 1; \
    for (k = (Py_ssize_t)indptr[0]; k < (Py_ssize_t)indptr[m]; k++) \
        if (indices[k] < 0 || (Py_ssize_t)indices[k] >= d) return k; \
    return -1; \
}

SYN_CSR_CHECK(i, int32_t)
SYN_CSR_CHECK(l, int64_t)

#define SYN_CSR_FUNCS(S, T, V, VL) \
SYN_CSR_EACH_K(SYN_CSR_GTILE, S, T, V, VL) \
SYN_CSR_IFUNCS(S, T, V, VL, i, int32_t) \
SYN_CSR_IFUNCS(S, T, V, VL, l, int64_t) \
\
/* dzp[i, :] = dz[i, :o] padded with zeros to ldt, rows r0..r1-1 */ \
static void syn_csr_pad_rows_##S(const T* dz, Py_ssize_t o, Py_ssize_t r0, Py_ssize_t r1, \
        T* dzp, Py_ssize_t ldt) { \
    Py_ssize_t i, k; \
    for (i = r0; i < r1; i++) { \
        memcpy(dzp + i * ldt, dz + i * o, o * sizeof(T)); \
        for (k = o; k < ldt; k++) dzp[i * ldt + k] = 0; \
    } \
} \
\
/* g[:, 1 + j] for j0 <= j < j1 (at most SYN_CSR_JB columns) from the column layout, through \
   the scratch sb (SYN_CSR_JB x ldt) */ \
static void syn_csr_grad_block_##S(const Py_ssize_t* cptr, const Py_ssize_t* crow, \
        const T* cval, Py_ssize_t j0, Py_ssize_t j1, const T* dzp, Py_ssize_t ldt, \
        Py_ssize_t o, T* sb, T* g, Py_ssize_t ldg) { \
    Py_ssize_t j, cc, off, a, n, nv = ldt / (VL); \
    for (j = j0; j < j1; j++) { \
        T* s = sb + (j - j0) * ldt; \
        a = cptr[j]; \
        n = cptr[j + 1] - a; \
        if (n == 0) { memset(s, 0, ldt * sizeof(T)); continue; } \
        for (cc = 0; cc < nv; cc += 8) { \
            off = cc * (VL); \
            SYN_CSR_SWITCH(SYN_CSR_GCALL_##S) \
        } \
    } \
    syn_sp_transpose_out_##S(sb, ldt, 0, j1 - j0, o, g + j0, ldg); \
}

#define SYN_CSR_FCALL_fi(K) syn_csr_ftile_fi##K(data + a, indices + a, n, wt + off, ldt, \
                                                 bias + off, ob + off)
#define SYN_CSR_FCALL_fl(K) syn_csr_ftile_fl##K(data + a, indices + a, n, wt + off, ldt, \
                                                 bias + off, ob + off)
#define SYN_CSR_FCALL_di(K) syn_csr_ftile_di##K(data + a, indices + a, n, wt + off, ldt, \
                                                 bias + off, ob + off)
#define SYN_CSR_FCALL_dl(K) syn_csr_ftile_dl##K(data + a, indices + a, n, wt + off, ldt, \
                                                 bias + off, ob + off)
#define SYN_CSR_GCALL_f(K) syn_csr_gcol_f##K(cval + a, crow + a, n, dzp + off, ldt, s + off)
#define SYN_CSR_GCALL_d(K) syn_csr_gcol_d##K(cval + a, crow + a, n, dzp + off, ldt, s + off)

SYN_CSR_FUNCS(f, float, syn_sp_vf, SYN_SP_VLF)
SYN_CSR_FUNCS(d, double, syn_sp_vd, SYN_SP_VLD)

#endif /* SYNAPTIC_CSR_H */
