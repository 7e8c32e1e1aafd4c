/* The small-batch kernels of dense_forward, hidden_delta and weight_grad (dense_small.pxi):
 * register-blocked loops for products with few rows (a batch of at most SMALL_ROWS), where
 * a BLAS GEMM spends its time packing and a split by rows makes every thread read all of W.
 *
 * Two forms, each computing every element as one sum in a fixed order, whatever block or
 * part of the output it falls in -- so splitting the output between threads (by units or
 * columns) never changes a bit:
 *
 *   dot:  out[r, u] = sum_k x[r, k] * w[u, k]             (dense_forward: x . W[:, 1:]^T)
 *         a vector accumulator per element over k in steps of VL, its lanes added in a fixed
 *         tree, then the k % VL tail in increasing k;
 *   axpy: out[r, c] = sum_i a[r, i] * b[i, c]              (hidden_delta: dz . W[:, 1:];
 *         in increasing i, VL columns to a vector;             weight_grad: dz^T . x)
 *         a is read through two strides, so dz serves as itself or as its transpose.
 *
 * The sums may contract a * b + c into an FMA, as a GEMM does (SYN_FMA).  Compiled once
 * per CPU level, as sparse.h (whose vector width it uses); the block sizes follow the
 * level's register count (32 vector registers with AVX-512, 16 below).
 */
#ifndef SYNAPTIC_SMALL_H
#define SYNAPTIC_SMALL_H

#include "sparse.h"
#if defined(__AVX2__) || defined(__AVX512F__)
#  include <immintrin.h>
#endif

#if defined(__AVX512F__)
#  define SYN_SM_DR 5     /* dot: rows x units a block */
#  define SYN_SM_DU 4
#  define SYN_SM_AR 8     /* axpy: rows x vectors of columns a block */
#  define SYN_SM_AC 3
#else
#  define SYN_SM_DR 4
#  define SYN_SM_DU 2
#  define SYN_SM_AR 6
#  define SYN_SM_AC 2
#endif
/* the bytes of out a group of axpy rows covers, and of b a panel of i (c/small_body.h) */
#define SYN_SM_PANEL (192 * 1024)
#define SYN_SM_INLINE static inline __attribute__((always_inline)) SYN_FMA

#define SM_T float
#define SM_S f
#define SM_VL SYN_SP_VLF
#include "small_body.h"
#undef SM_T
#undef SM_S
#undef SM_VL

#define SM_T double
#define SM_S d
#define SM_VL SYN_SP_VLD
#include "small_body.h"
#undef SM_T
#undef SM_S
#undef SM_VL

/* the unit / column granularity of the parts a caller may split the output into */
#define SYN_SM_DOT_UNITS SYN_SM_DU
#define SYN_SM_AXPY_ROWS SYN_SM_AR

#endif /* SYNAPTIC_SMALL_H */
