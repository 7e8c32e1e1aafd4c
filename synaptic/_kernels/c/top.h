/* The narrow output layer of output_backprop (dense_top.pxi), o <= VL units (one vector):
 * hand-written loops instead of GEMMs with a dimension of 10, which OpenBLAS runs at a
 * fraction of its speed.  These sums may contract a * b + c into an FMA, as a GEMM does
 * (the module otherwise does not: its elementwise passes round like NumPy).
 *
 * Declared for Cython in dense_top.pxi.  Compiled once per CPU level, as sparse.h (whose
 * vector types and macros it uses).
 */
#ifndef SYNAPTIC_TOP_H
#define SYNAPTIC_TOP_H

#include "sparse.h"

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

#endif /* SYNAPTIC_TOP_H */
