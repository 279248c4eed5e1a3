/* conv_depthwise.h - the depthwise convolution with stride 1 (conv_depthwise.c), which
 * conv_direct.c's entry points take when the geometry fits. Contracts as in kernels.h. */
#ifndef ST_CONV_DEPTHWISE_H
#define ST_CONV_DEPTHWISE_H

#include "internal.h"

/* 1 for one input and one output channel per group (groups = cin = cout) and stride 1
 * (any kernel, dilation and padding). */
int st_depthwise_ok(const st_conv_geom *g);
size_t st_depthwise_work_size(const st_conv_geom *g, int n);
void st_depthwise_forward(float *out, const float *in, const float *w, const float *b, int n,
                          const st_conv_geom *g, float *work);
void st_depthwise_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, int n, const st_conv_geom *g, float *work);

#endif
