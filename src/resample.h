/* resample.h - upsampling (PyTorch's nn.Upsample / F.interpolate: nearest, linear and
 * bilinear with align_corners true or false), max unpooling (MaxUnpool1d/2d) and local
 * response normalisation across channels (nn.LocalResponseNorm), forward and backward.
 * See resample.c for the formulas (models.md B4, B5, B6).
 *
 * Tensors are (N, C, H, W) for 2D and (N, C, L) for 1D; the upsampling and unpooling
 * kernels see them as `planes` = N*C independent planes of ih x iw (1D: ih = oh = 1, so
 * `linear` is the bilinear kernel with H = 1). Backward functions ACCUMULATE into the input
 * gradient (din += ...), like every backward in the library.
 */
#ifndef ST_RESAMPLE_H
#define ST_RESAMPLE_H

#include "internal.h"

/* ---------------------------------------------------------------- upsampling */
/* The source-per-destination scale PyTorch uses along one axis (models.md B5):
 *   align_corners:        (in - 1) / (out - 1), 0 when out == 1 (scale_factor ignored);
 *   else, scale_factor>0: 1 / scale_factor;
 *   else:                 in / out.
 * Nearest mode ignores align_corners (pass 0). Computed in float, as PyTorch does. */
float st_upsample_scale(int in, int out, double scale_factor /* 0 = none */, int align_corners);
/* The same in double (for the _f64 kernels). */
double st_upsample_scale_f64(int in, int out, double scale_factor, int align_corners);
/* Output size from a scale factor: floor(in * scale_factor) (PyTorch's rule), >= 1 checked. */
st_status st_upsample_out_size(int in, double scale_factor, int *out);

/* Nearest: out[y][x] = in[sy][sx] with s = min(floor(dst * scale), in - 1) (models.md B5;
 * PyTorch's forward). Backward: din[sy][sx] += dout, the exact adjoint (PyTorch 1.13's
 * backward disagrees with its own forward for scale factors whose output is in or 2 in
 * without being out/in; see resample.c). */
void st_upsample_nearest_forward(float *out, const float *in, int planes, int ih, int iw,
                                 int oh, int ow, float scale_h, float scale_w);
void st_upsample_nearest_backward(float *din, const float *dout, int planes, int ih, int iw,
                                  int oh, int ow, float scale_h, float scale_w);

/* Bilinear (2D) / linear (1D: ih = oh = 1), align_corners 0 or 1; scale_* from
 * st_upsample_scale with the same align_corners. Backward spreads each output gradient over
 * its (up to) four sources with the forward's weights. */
void st_upsample_bilinear_forward(float *out, const float *in, int planes, int ih, int iw,
                                  int oh, int ow, float scale_h, float scale_w, int align_corners);
void st_upsample_bilinear_backward(float *din, const float *dout, int planes, int ih, int iw,
                                   int oh, int ow, float scale_h, float scale_w, int align_corners);

/* 1D linear (N, C, L): the bilinear kernels with ih = oh = 1. */
void st_upsample_linear_forward(float *out, const float *in, int planes, int iw, int ow, float scale,
                                int align_corners);
void st_upsample_linear_backward(float *din, const float *dout, int planes, int iw, int ow, float scale,
                                 int align_corners);

void st_upsample_nearest_forward_f64(double *out, const double *in, int planes, int ih, int iw,
                                     int oh, int ow, double scale_h, double scale_w);
void st_upsample_nearest_backward_f64(double *din, const double *dout, int planes, int ih, int iw,
                                      int oh, int ow, double scale_h, double scale_w);
void st_upsample_bilinear_forward_f64(double *out, const double *in, int planes, int ih, int iw,
                                      int oh, int ow, double scale_h, double scale_w, int align_corners);
void st_upsample_bilinear_backward_f64(double *din, const double *dout, int planes, int ih, int iw,
                                       int oh, int ow, double scale_h, double scale_w, int align_corners);

/* ---------------------------------------------------------------- max unpooling */
/* Output size along one axis: requested == 0 gives the default (in - 1) s - 2 p + k;
 * otherwise PyTorch's rule: default - s < requested < default + s. */
st_status st_max_unpool_out_size(int in, int k, int s, int p, int requested, int *out);

/* out (planes, oh, ow) is zeroed, then out[plane][indices[i]] = in[plane][i] for every
 * input element (indices as produced by st_maxpool_forward: flat y*ow + x positions in the
 * output plane). Duplicate indices: LAST WRITE WINS (elements are written in increasing
 * order of i within a plane). All indices are checked before anything is written: one
 * outside [0, oh*ow) gives ST_ERR_ARG "max_unpool: Found an invalid max index: I (output
 * volumes are of size OHxOW)" and leaves out untouched. */
st_status st_max_unpool_forward(float *out, const float *in, const int32_t *indices, int planes,
                                int ih, int iw, int oh, int ow);
/* din[plane][i] += dout[plane][indices[i]] (a gather; out-of-range indices are skipped).
 * With duplicate indices every element sharing the position receives its gradient, as in
 * PyTorch (which gathers). */
void st_max_unpool_backward(float *din, const float *dout, const int32_t *indices, int planes,
                            int ih, int iw, int oh, int ow);

/* ---------------------------------------------------------------- local response norm */
/* x, y (n, c, s) (s = product of the trailing dims). PyTorch's convention:
 *   s_c = k + (alpha/size) * sum_{c' = c - size/2}^{c + (size-1)/2} x_{c'}^2   (outside: 0)
 *   y_c = x_c * s_c^(-beta)
 * The AlexNet paper's constants (k 2, n 5, alpha 1e-4 not divided by n, beta 0.75) are
 * size 5, alpha 5e-4, beta 0.75, k 2 here. scale (n, c, s) may be NULL; if given it
 * receives s_c for the backward. */
void st_lrn_forward(float *y, float *scale, const float *x, int n, int c, int s,
                    int size, float alpha, float beta, float k);
/* dx_j += dy_j s_j^-beta - (2 alpha beta / size) x_j sum_{c: j in window(c)} dy_c x_c s_c^(-beta-1).
 * scale: from st_lrn_forward, or NULL to recompute it. */
void st_lrn_backward(float *dx, const float *dy, const float *x, const float *scale, int n, int c,
                     int s, int size, float alpha, float beta, float k);

void st_lrn_forward_f64(double *y, double *scale, const double *x, int n, int c, int s,
                        int size, double alpha, double beta, double k);
void st_lrn_backward_f64(double *dx, const double *dy, const double *x, const double *scale, int n,
                         int c, int s, int size, double alpha, double beta, double k);

#endif
