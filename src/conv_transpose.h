/* conv_transpose.h - transposed convolution (PyTorch's ConvTranspose1d/2d), forward and
 * backward, built on the convolution of conv.c (models.md B2).
 *
 * A transposed convolution with weight w (cin, cout/groups, kh, kw) is the adjoint of
 * the "mirror" convolution that has cin' = cout, cout' = cin, the same kernel, stride,
 * dilation, padding and groups, and the same weight array (its layout
 * (cout', cin'/groups, kh, kw) is exactly w's). The mirror's input has the transposed
 * convolution's output size, its output the transposed convolution's input size:
 *   forward     out = mirror input-gradient of `in` (+ bias per output channel)
 *   backward    din += mirror forward of dout; dw += mirror weight gradient with
 *               input dout and output gradient in; db += sums of dout.
 * A 1D transposed convolution is the 2D one with H = 1.
 */
#ifndef ST_CONV_TRANSPOSE_H
#define ST_CONV_TRANSPOSE_H

#include "internal.h"

typedef struct {
    int cin, cout, groups;     /* in_channels, out_channels, groups */
    int ih, iw, oh, ow;        /* input and output planes */
    int kh, kw, sh, sw, dh, dw;
    int ph, pw;                /* padding (removed from both ends of the full output) */
    int oph, opw;              /* output_padding (extra rows/cols at the bottom/right) */
    st_conv_geom mirror;       /* the convolution whose input gradient this is */
} st_convt_geom;

/* Fills g from PyTorch's arguments (1D: ih = 1, k[0] = s[0] = d[0] = 1, pad[0] =
 * output_padding[0] = 0). Output size per dimension:
 *   (in - 1)*s - 2*pad + d*(k - 1) + output_padding + 1.
 * Fails (st_fail) on non-positive channels/groups/kernel/stride/dilation, negative
 * padding or output_padding, channels not divisible by groups, output_padding not
 * smaller than either stride or dilation, and a non-positive output size. */
st_status st_convt_geom_init(st_convt_geom *g, int cin, int cout, int groups,
                             const int k[2], const int s[2], const int d[2],
                             const int pad[2], const int output_padding[2], int ih, int iw);

/* Floats of workspace st_convt_forward/backward need for a batch of n. */
size_t st_convt_work_size(const st_convt_geom *g, int n);
/* out (n, cout, oh, ow) = convT(in (n, cin, ih, iw), w (cin, cout/groups, kh, kw)) + b;
 * b may be NULL. Writes every element of out. */
void st_convt_forward(float *out, const float *in, const float *w, const float *b, int n,
                      const st_convt_geom *g, float *work);
/* Accumulates: din += dL/din (skipped if din NULL), dw += dL/dw, db += dL/db (if db). */
void st_convt_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                       const float *w, int n, const st_convt_geom *g, float *work);

/* The plain scatter loops of the definition (float with double accumulation), and the
 * same in double for finite-difference checks. Same contracts as above. */
void st_convt_forward_ref(float *out, const float *in, const float *w, const float *b, int n,
                          const st_convt_geom *g);
void st_convt_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, int n, const st_convt_geom *g);
void st_convt_forward_ref_f64(double *out, const double *in, const double *w, const double *b,
                              int n, const st_convt_geom *g);
void st_convt_backward_ref_f64(double *din, double *dw, double *db, const double *dout,
                               const double *in, const double *w, int n, const st_convt_geom *g);

#endif
