/* pool.h - max, average and adaptive-average pooling (PyTorch's MaxPool1d/2d,
 * AvgPool1d/2d, AdaptiveAvgPool1d/2d), forward and backward. See pool.c for the formulas.
 *
 * Tensors are (N, C, H, W) for 2D and (N, C, L) for 1D; the kernels see them as
 * `planes` = N*C independent planes of ih x iw (1D: ih = 1, iw = L, oh = 1; kernel height,
 * stride height and dilation height 1, no vertical padding). Backward functions
 * ACCUMULATE into the input gradient (din += ...), like every backward in the library.
 */
#ifndef ST_POOL_H
#define ST_POOL_H

#include "internal.h"

typedef struct {
    int ih, iw, oh, ow;
    int kh, kw, sh, sw, ph, pw, dh, dw; /* kernel, stride, padding (both sides), dilation */
    int ceil_mode;
    int count_include_pad;              /* average pooling only */
    int divisor_override;               /* average pooling only; 0 = none */
} st_pool_geom;

/* Fills g from PyTorch's arguments (index 0 = height, 1 = width; for 1D pass ih = 1 and
 * k[0] = 1, s[0] = 1, p[0] = 0, d[0] = 1). s == NULL, or an entry of 0, means
 * stride = kernel (PyTorch's default); d == NULL means dilation 1. Checks, as PyTorch does:
 * positive kernel, stride and dilation, 0 <= padding <= effective kernel / 2 (effective
 * kernel = (k-1)*d + 1), divisor_override >= 0, and an output size >= 1. */
st_status st_pool_geom_init(st_pool_geom *g, int ih, int iw, const int k[2], const int s[2],
                            const int p[2], const int d[2], int ceil_mode,
                            int count_include_pad, int divisor_override);
/* Adaptive pooling: only ih, iw, oh, ow matter (all must be positive). */
st_status st_pool_geom_adaptive(st_pool_geom *g, int ih, int iw, int oh, int ow);

/* out (planes, oh, ow); indices (same shape, may be NULL): the argmax as a flat position
 * y*iw + x inside the unpadded input plane. */
void st_maxpool_forward(float *out, int32_t *indices, const float *in, int planes, const st_pool_geom *g);
/* The general loop, for every geometry (st_maxpool_forward takes a vectorised path for
 * non-overlapping k x 2 windows without padding); kept for tests. Same contract. */
void st_maxpool_forward_ref(float *out, int32_t *indices, const float *in, int planes, const st_pool_geom *g);
/* din[plane][indices[o]] += dout[o] */
void st_maxpool_backward(float *din, const float *dout, const int32_t *indices, int planes, const st_pool_geom *g);

void st_avgpool_forward(float *out, const float *in, int planes, const st_pool_geom *g);
void st_avgpool_backward(float *din, const float *dout, int planes, const st_pool_geom *g);

void st_adaptive_avgpool_forward(float *out, const float *in, int planes, const st_pool_geom *g);
void st_adaptive_avgpool_backward(float *din, const float *dout, int planes, const st_pool_geom *g);

/* The same in double, for finite-difference checks. */
void st_maxpool_forward_f64(double *out, int32_t *indices, const double *in, int planes, const st_pool_geom *g);
void st_maxpool_backward_f64(double *din, const double *dout, const int32_t *indices, int planes, const st_pool_geom *g);
void st_avgpool_forward_f64(double *out, const double *in, int planes, const st_pool_geom *g);
void st_avgpool_backward_f64(double *din, const double *dout, int planes, const st_pool_geom *g);
void st_adaptive_avgpool_forward_f64(double *out, const double *in, int planes, const st_pool_geom *g);
void st_adaptive_avgpool_backward_f64(double *din, const double *dout, int planes, const st_pool_geom *g);

#endif
