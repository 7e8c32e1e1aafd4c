/* The body of small.h for one element type: included once with SM_T float, SM_S f,
 * SM_VL its lanes, once for double.  No include guard: that is the point. */
#define SM_CAT_(a, b) a##b
#define SM_CAT(a, b) SM_CAT_(a, b)
#define SM_FN(name) SM_CAT(name, SM_S)
#define SM_VU SM_FN(syn_sm_vu_)

/* a vector of SM_VL elements at any element-aligned address */
typedef SM_T SM_VU __attribute__((vector_size(SYN_SP_VB), aligned(sizeof(SM_T)), may_alias));

/* the lanes of a, added in a fixed tree: halves, then quarters, ... (lane l + lane l + h,
   h = SM_VL / 2, SM_VL / 4, ..., 1), in vector registers */
typedef SM_T SM_FN(syn_sm_v32_) __attribute__((vector_size(32)));
typedef SM_T SM_FN(syn_sm_v16_) __attribute__((vector_size(16)));
typedef SM_T SM_FN(syn_sm_v8_) __attribute__((vector_size(8)));
#define SM_HALVE(TO, from, to) do { TO lo_, hi_; memcpy(&lo_, &(from), sizeof lo_); \
    memcpy(&hi_, (const char*)&(from) + sizeof lo_, sizeof hi_); to = lo_ + hi_; } while (0)
SYN_SM_INLINE SM_T SM_FN(syn_sm_hsum_)(SM_VU a) {
    SM_FN(syn_sm_v16_) a16;
    SM_FN(syn_sm_v8_) a8;
#if SYN_SP_VB >= 64
    SM_FN(syn_sm_v32_) a32;
    SM_HALVE(SM_FN(syn_sm_v32_), a, a32);
    SM_HALVE(SM_FN(syn_sm_v16_), a32, a16);
#elif SYN_SP_VB >= 32
    SM_HALVE(SM_FN(syn_sm_v16_), a, a16);
#else
    memcpy(&a16, &a, sizeof a16);
#endif
    SM_HALVE(SM_FN(syn_sm_v8_), a16, a8);
    if (sizeof(SM_T) == 8)
        return a8[0];               /* 8 bytes: one double */
    /* two floats (the index is written so that the double copy never names a8[1]) */
    return a8[0] + a8[sizeof(SM_T) == 8 ? 0 : 1];
}
#undef SM_HALVE

/* the first ``m`` (< SM_VL) elements at p, zero padded / stored back: masked loads and
   stores (AVX-512, AVX2), a short loop below (a memcpy of a variable size is a call) */
SYN_SM_INLINE SM_VU SM_FN(syn_sm_loadpart_)(const SM_T* p, Py_ssize_t m) {
    SM_VU v;
#if defined(__AVX512F__)
    if (sizeof(SM_T) == 4) {
        __m512 r = _mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), (const float*)p);
        memcpy(&v, &r, sizeof v);
    } else {
        __m512d r = _mm512_maskz_loadu_pd((__mmask8)((1u << m) - 1), (const double*)p);
        memcpy(&v, &r, sizeof v);
    }
#elif defined(__AVX2__)
    if (sizeof(SM_T) == 4) {
        __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 r = _mm256_maskload_ps((const float*)p, k);
        memcpy(&v, &r, sizeof v);
    } else {
        __m256i k = _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), _mm256_setr_epi64x(0, 1, 2, 3));
        __m256d r = _mm256_maskload_pd((const double*)p, k);
        memcpy(&v, &r, sizeof v);
    }
#else
    SM_T t[SM_VL] = {0};
    int j;
    for (j = 0; j < SM_VL - 1; j++)
        if (j < m) t[j] = p[j];
    memcpy(&v, t, sizeof v);
#endif
    return v;
}
SYN_SM_INLINE void SM_FN(syn_sm_storepart_)(SM_T* p, SM_VU v, Py_ssize_t m) {
#if defined(__AVX512F__)
    if (sizeof(SM_T) == 4) {
        __m512 r;
        memcpy(&r, &v, sizeof r);
        _mm512_mask_storeu_ps((float*)p, (__mmask16)((1u << m) - 1), r);
    } else {
        __m512d r;
        memcpy(&r, &v, sizeof r);
        _mm512_mask_storeu_pd((double*)p, (__mmask8)((1u << m) - 1), r);
    }
#elif defined(__AVX2__)
    if (sizeof(SM_T) == 4) {
        __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 r;
        memcpy(&r, &v, sizeof r);
        _mm256_maskstore_ps((float*)p, k, r);
    } else {
        __m256i k = _mm256_cmpgt_epi64(_mm256_set1_epi64x(m), _mm256_setr_epi64x(0, 1, 2, 3));
        __m256d r;
        memcpy(&r, &v, sizeof r);
        _mm256_maskstore_pd((double*)p, k, r);
    }
#else
    SM_T t[SM_VL];
    int j;
    memcpy(t, &v, sizeof t);
    for (j = 0; j < SM_VL - 1; j++)
        if (j < m) p[j] = t[j];
#endif
}

/* dot block: out[r * ldo + u] = sum_k x[r * ldx + k] * w[u * ldw + k], r < nr, u < nu: lane
   l of an element's vector sums k = l, l + SM_VL, ... (the last, partial vector zero padded),
   then the lanes in syn_sm_hsum_'s tree */
SYN_SM_INLINE void SM_FN(syn_sm_dotblk_)(const SM_T* x, Py_ssize_t ldx, const SM_T* w,
        Py_ssize_t ldw, SM_T* out, Py_ssize_t ldo, Py_ssize_t d, const int nr, const int nu) {
    SM_VU acc[SYN_SM_DR][SYN_SM_DU], xv[SYN_SM_DR], wv[SYN_SM_DU];
    Py_ssize_t k, kv = d - d % SM_VL;
    int r, u;
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (u = 0; u < nu; u++) acc[r][u] = (SM_VU){0};
    for (k = 0; k < kv; k += SM_VL) {
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) xv[r] = *(const SM_VU*)(x + r * ldx + k);
#pragma GCC unroll 8
        for (u = 0; u < nu; u++) wv[u] = *(const SM_VU*)(w + u * ldw + k);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
#pragma GCC unroll 8
            for (u = 0; u < nu; u++) acc[r][u] += xv[r] * wv[u];
    }
    if (kv < d) {   /* the last d % SM_VL of k: zero-padded vectors, into the same lanes */
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) xv[r] = SM_FN(syn_sm_loadpart_)(x + r * ldx + kv, d - kv);
#pragma GCC unroll 8
        for (u = 0; u < nu; u++) wv[u] = SM_FN(syn_sm_loadpart_)(w + u * ldw + kv, d - kv);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++)
#pragma GCC unroll 8
            for (u = 0; u < nu; u++) acc[r][u] += xv[r] * wv[u];
    }
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (u = 0; u < nu; u++) out[r * ldo + u] = SM_FN(syn_sm_hsum_)(acc[r][u]);
}

/* (the rows clamped to the block: cases past SYN_SM_DR - 1 are never reached) */
#define SM_DOT_CALL(R, U) SM_FN(syn_sm_dotblk_)(x + r * ldx, ldx, w + u * ldw, ldw, \
        out + r * ldo + u, ldo, d, (R) < SYN_SM_DR ? (R) : SYN_SM_DR, U)
#define SM_DOT_ROWS(U) \
    for (r = 0; r + SYN_SM_DR <= n; r += SYN_SM_DR) SM_DOT_CALL(SYN_SM_DR, U); \
    switch (n - r) { \
    case 1: SM_DOT_CALL(1, U); break; \
    case 2: SM_DOT_CALL(2, U); break; \
    case 3: SM_DOT_CALL(3, U); break; \
    case 4: SM_DOT_CALL(4, U); break; \
    default: break; \
    }

/* out[r * ldo + u] = sum_k x[r * ldx + k] * w[u * ldw + k] for rows r < n (n <= any) and
   units u < o: SYN_SM_DR rows by SYN_SM_DU units a block (SYN_SM_DR <= 5) */
static SYN_FMA void SM_FN(syn_small_dot_)(const SM_T* x, Py_ssize_t ldx, const SM_T* w,
        Py_ssize_t ldw, SM_T* out, Py_ssize_t ldo, Py_ssize_t n, Py_ssize_t o, Py_ssize_t d) {
    Py_ssize_t r, u;
    for (u = 0; u + SYN_SM_DU <= o; u += SYN_SM_DU) { SM_DOT_ROWS(SYN_SM_DU) }
    for (; u < o; u++) { SM_DOT_ROWS(1) }
}

/* axpy block: out[r * ldo + l] (+)= sum_i a[r * ars + i * ais] * b[i * ldb + l] over
   i0 <= i < i1, in increasing i, r < nr, l < nc * SM_VL; added to out if ``add`` (a partial
   sum stored and reloaded is exact: panels of i give the bits of one pass over all i) */
SYN_SM_INLINE void SM_FN(syn_sm_axpyblk_)(const SM_T* a, Py_ssize_t ars, Py_ssize_t ais,
        const SM_T* b, Py_ssize_t ldb, SM_T* out, Py_ssize_t ldo, Py_ssize_t i0,
        Py_ssize_t i1, int add, const int nr, const int nc) {
    SM_VU acc[SYN_SM_AR][SYN_SM_AC], bv[SYN_SM_AC];
    Py_ssize_t i;
    int r, c;
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++)
            acc[r][c] = add ? *(const SM_VU*)(out + r * ldo + c * SM_VL) : (SM_VU){0};
    for (i = i0; i < i1; i++) {
#pragma GCC unroll 8
        for (c = 0; c < nc; c++) bv[c] = *(const SM_VU*)(b + i * ldb + c * SM_VL);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) {
            SM_T s = a[r * ars + i * ais];
#pragma GCC unroll 8
            for (c = 0; c < nc; c++) acc[r][c] += s * bv[c];
        }
    }
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
#pragma GCC unroll 8
        for (c = 0; c < nc; c++) *(SM_VU*)(out + r * ldo + c * SM_VL) = acc[r][c];
}

/* the axpy block of the last ``cols`` (< SM_VL) columns: one zero-padded vector a row,
   the same sums (lanes past ``cols`` are not stored) */
SYN_SM_INLINE void SM_FN(syn_sm_axpytail_)(const SM_T* a, Py_ssize_t ars, Py_ssize_t ais,
        const SM_T* b, Py_ssize_t ldb, SM_T* out, Py_ssize_t ldo, Py_ssize_t i0,
        Py_ssize_t i1, int add, Py_ssize_t cols, const int nr) {
    SM_VU acc[SYN_SM_AR], bv;
    Py_ssize_t i;
    int r;
#pragma GCC unroll 8
    for (r = 0; r < nr; r++)
        acc[r] = add ? SM_FN(syn_sm_loadpart_)(out + r * ldo, cols) : (SM_VU){0};
    for (i = i0; i < i1; i++) {
        bv = SM_FN(syn_sm_loadpart_)(b + i * ldb, cols);
#pragma GCC unroll 8
        for (r = 0; r < nr; r++) acc[r] += a[r * ars + i * ais] * bv;
    }
#pragma GCC unroll 8
    for (r = 0; r < nr; r++) SM_FN(syn_sm_storepart_)(out + r * ldo, acc[r], cols);
}

/* (the rows clamped to the block: cases past SYN_SM_AR - 1 are never reached) */
#define SM_AXPY_CALL(R, C) SM_FN(syn_sm_axpyblk_)(a + r * ars, ars, ais, b + c, ldb, \
        out + r * ldo + c, ldo, i0, i1, add || i0 > 0, (R) < SYN_SM_AR ? (R) : SYN_SM_AR, C)
#define SM_AXPY_TAIL(R, C) SM_FN(syn_sm_axpytail_)(a + r * ars, ars, ais, b + c, ldb, \
        out + r * ldo + c, ldo, i0, i1, add || i0 > 0, c1 - c, (R) < SYN_SM_AR ? (R) : SYN_SM_AR)
#define SM_AXPY_ROWS(CALL, C) \
    for (r = g0; r + SYN_SM_AR <= g1; r += SYN_SM_AR) CALL(SYN_SM_AR, C); \
    switch (g1 - r) { \
    case 1: CALL(1, C); break; \
    case 2: CALL(2, C); break; \
    case 3: CALL(3, C); break; \
    case 4: CALL(4, C); break; \
    case 5: CALL(5, C); break; \
    case 6: CALL(6, C); break; \
    case 7: CALL(7, C); break; \
    default: break; \
    }

/* out[r * ldo + c] (+)= sum_i a[r * ars + i * ais] * b[i * ldb + c], in increasing i < m,
   for rows r < rows and columns c0 <= c < c1 (SYN_SM_AR <= 8); added to out if ``add``.  The rows in groups and the i
   in panels whose part of out / of b is about SYN_SM_PANEL bytes (in L2: out is written
   row by row, b is streamed once a group; 8 rows of b when rows <= SYN_SM_AR); in each, SYN_SM_AR rows by SYN_SM_AC vectors a
   block, then single vectors, then the last columns in one zero-padded vector. */
static SYN_FMA void SM_FN(syn_small_axpy_)(const SM_T* a, Py_ssize_t ars, Py_ssize_t ais,
        const SM_T* b, Py_ssize_t ldb, SM_T* out, Py_ssize_t ldo, Py_ssize_t rows,
        Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1, int add) {
    Py_ssize_t r, c, g0, g1, i0, i1, width = (c1 > c0 ? c1 - c0 : 1) * sizeof(SM_T);
    Py_ssize_t group = SYN_SM_PANEL / width, panel = SYN_SM_PANEL / width;
    /* at least 32 rows a group: a small batch's rows are one group (b, often W, read once) */
    group = group < 32 ? 32 : group / SYN_SM_AR * SYN_SM_AR;
    /* one block of rows reuses no panel of b: 8 rows of b at a time, each streamed in order */
    panel = rows <= SYN_SM_AR ? 8 : (panel < 32 ? 32 : panel);
    for (g0 = 0; g0 < rows; g0 += group) {
        g1 = g0 + group < rows ? g0 + group : rows;
        for (i0 = 0; i0 < m; i0 += panel) {
            i1 = i0 + panel < m ? i0 + panel : m;
            c = c0;
            for (; c + SYN_SM_AC * SM_VL <= c1; c += SYN_SM_AC * SM_VL) {
                SM_AXPY_ROWS(SM_AXPY_CALL, SYN_SM_AC)
            }
            for (; c + SM_VL <= c1; c += SM_VL) { SM_AXPY_ROWS(SM_AXPY_CALL, 1) }
            if (c < c1) { SM_AXPY_ROWS(SM_AXPY_TAIL, 1) }
        }
    }
}

#undef SM_DOT_CALL
#undef SM_DOT_ROWS
#undef SM_AXPY_CALL
#undef SM_AXPY_ROWS
#undef SM_AXPY_TAIL
#undef SM_VU
#undef SM_FN
#undef SM_CAT
#undef SM_CAT_
