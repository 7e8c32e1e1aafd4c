/* exp, expm1 and tanh without branches, float and double: syn_expf, syn_exp, syn_expm1f,
 * syn_expm1, syn_tanhf, syn_tanh.
 *
 * Without branches so that the loops calling them vectorize (glibc's exp/expf do not
 * without -ffast-math): Cody-Waite reduction x = n ln2 + r with n rounded by the
 * 1.5 * 2^23 (2^52) trick, the Cephes polynomial (float) / Pade form (double) for e^r, and
 * 2^n built in the exponent bits.  Within 2 ulp (float) / 3 ulp (double) of the exact value
 * (checked against libm over [-87, 0] / [-708, 0]).  Meant for x <= 0: results below the
 * smallest normal number are flushed to 0 (e^-1e4 is exactly 0); NaN stays NaN.
 * The rounding trick needs IEEE arithmetic: never build this with -ffast-math.
 *
 * Declared for Cython in _common.pxd (f_exp, f_expm1, f_tanh, f_sigmoid: every kernel module).
 * Plain C, the same code at every CPU level.
 */
#ifndef SYNAPTIC_EXPF_H
#define SYNAPTIC_EXPF_H

#include <stdint.h>
static inline float syn_expf(float x) {
    union { int32_t i; float f; } u;
    float xc = x < -87.33654f ? -87.33654f : x;
    xc = xc > 88.0f ? 88.0f : xc;
    float fn = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    u.i = ((int32_t)fn + 127) << 23;
    p = p * u.f;
    return x < -87.33654f ? 0.0f : p;
}
static inline double syn_exp(double x) {
    union { int64_t i; double f; } u;
    double xc = x < -708.39 ? -708.39 : x;
    xc = xc > 709.0 ? 709.0 : xc;
    double fn = (xc * 1.4426950408889634073599 + 6755399441055744.0) - 6755399441055744.0;
    double r = xc - fn * 6.93145751953125e-1;
    r = r - fn * 1.42860682030941723212e-6;
    double rr = r * r;
    double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                     + 9.99999999999999999910e-1);
    double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                 + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
    double e = 1.0 + 2.0 * (px / (qx - px));
    u.i = ((int64_t)fn + 1023) << 52;
    e = e * u.f;
    return x < -708.39 ? 0.0 : e;
}
/* tanh, branch-free (Cephes tanhf / tanh): an odd polynomial (float) or rational
   (double) in x^2 for |x| <= 0.625, else (1 - e)/(1 + e) with e = e^-2|x|, signed.
   Both are computed and one is selected, so loops over it vectorize.  Within 2 ulp
   of np.tanh over [-20, 20] and tiny |x| (the sigmoid built on syn_exp: 3-4 ulp). */
static inline float syn_tanhf(float x) {
    float a = x < 0 ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = x + (x * z) * p;
    float e = syn_expf(-2.0f * a);
    float big = (1.0f - e) / (1.0f + e);
    big = x < 0 ? -big : big;
    return a <= 0.625f ? small : big;
}
static inline double syn_tanh(double x) {
    double a = x < 0 ? -x : x;
    double z = x * x;
    double p = (-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
               - 1.61468768441708447952e3;
    double q = ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
               + 4.84406305325125486048e3;
    double small = x + (x * z) * (p / q);
    double e = syn_exp(-2.0 * a);
    double big = (1.0 - e) / (1.0 + e);
    big = x < 0 ? -big : big;
    return a <= 0.625 ? small : big;
}

/* e^x - 1 without the cancellation of exp(x) - 1 near 0, branch-free (elu, the softplus
   derivative): the Taylor series (to x^9 / x^15: truncation below half an ulp) for
   |x| < 0.5, else syn_exp(x) - 1 (at most a few ulp there).  Meant for x <= 0, like
   syn_exp; -inf gives -1, NaN stays NaN. */
static inline float syn_expm1f(float x) {
    float q = 2.7557319223985893e-06f;
    q = q * x + 2.48015873015873e-05f;
    q = q * x + 0.0001984126984126984f;
    q = q * x + 0.001388888888888889f;
    q = q * x + 0.008333333333333333f;
    q = q * x + 0.041666666666666664f;
    q = q * x + 0.16666666666666666f;
    q = q * x + 0.5f;
    q = q * x + 1.0f;
    float small = x * q;
    float big = syn_expf(x) - 1.0f;
    return (x < 0.5f && x > -0.5f) ? small : big;
}
static inline double syn_expm1(double x) {
    double q = 7.647163731819816e-13;
    q = q * x + 1.1470745597729725e-11;
    q = q * x + 1.6059043836821613e-10;
    q = q * x + 2.08767569878681e-09;
    q = q * x + 2.505210838544172e-08;
    q = q * x + 2.755731922398589e-07;
    q = q * x + 2.7557319223985893e-06;
    q = q * x + 2.48015873015873e-05;
    q = q * x + 0.0001984126984126984;
    q = q * x + 0.001388888888888889;
    q = q * x + 0.008333333333333333;
    q = q * x + 0.041666666666666664;
    q = q * x + 0.16666666666666666;
    q = q * x + 0.5;
    q = q * x + 1.0;
    double small = x * q;
    double big = syn_exp(x) - 1.0;
    return (x < 0.5 && x > -0.5) ? small : big;
}

#endif /* SYNAPTIC_EXPF_H */
