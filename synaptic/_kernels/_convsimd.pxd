# The C (vector extension and AVX-512) inner loops of conv.pyx: the forward micro-kernel,
# the gathered axpy of the backward kernels, and the short row moves of im2col / col2im.
# The code is in c/convsimd.h, compiled into conv.pyx (cimported); float and double
# variants (_f, _d).

cdef extern from "convsimd.h":
    int SYN_VLF
    int SYN_VLD
    int SYN_GA_NB
    void syn_fwd_f(int K, long nq, long P, const float* w, long ldw, const float* col,
                   const long* off, float* z, long ldz) noexcept nogil
    void syn_fwd_d(int K, long nq, long P, const double* w, long ldw, const double* col,
                   const long* off, double* z, long ldz) noexcept nogil
    void syn_gax_f(int nb, const float* base, long ld, const int* rows, const float* coef,
                   long ne, float* dst, int acc_in) noexcept nogil
    void syn_gax_d(int nb, const double* base, long ld, const int* rows, const double* coef,
                   long ne, double* dst, int acc_in) noexcept nogil
    void syn_patch_f(float* dst, const float* x, long c, long fh, long fw, long hw,
                     long w) noexcept nogil
    void syn_patch_d(double* dst, const double* x, long c, long fh, long fw, long hw,
                     long w) noexcept nogil
    void syn_im2col_f(float* col, long ldc, const float* x, long c, long fh, long fw, long hc,
                      long wc, long hw, long w) noexcept nogil
    void syn_im2col_d(double* col, long ldc, const double* x, long c, long fh, long fw, long hc,
                      long wc, long hw, long w) noexcept nogil
    void syn_im2cols_f(float* col, long ldc, const float* x, long c, long fh, long fw, long hc,
                       long wc, long hw, long w, long sh, long sw) noexcept nogil
    void syn_im2cols_d(double* col, long ldc, const double* x, long c, long fh, long fw,
                       long hc, long wc, long hw, long w, long sh, long sw) noexcept nogil
    void syn_unpatch_f(float* dx, const float* row, long c, long fh, long fw, long hw,
                       long w) noexcept nogil
    void syn_unpatch_d(double* dx, const double* row, long c, long fh, long fw, long hw,
                       long w) noexcept nogil
