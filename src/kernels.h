/* kernels.h - the fast convolution paths behind st_conv_forward/backward (conv.c):
 * which path a geometry takes, and the direct, batch-vectorised one (conv_direct.c).
 * The signatures and contracts are those of internal.h: forward writes `out`,
 * backward accumulates into din (if not NULL), dw and db (if not NULL). */
#ifndef ST_KERNELS_H
#define ST_KERNELS_H

#include "internal.h"

/* 1 if the direct path can run (g, n) at all (its limit on taps per output; conv.c
 * decides whether it should). */
int st_direct_possible(const st_conv_geom *g, int n);
/* 1 where the direct path is the faster one at every batch size (depthwise with stride 1,
 * conv_depthwise.c: 5 to 7 times im2col + GEMM at batch 1), so that the path choice can
 * take it below its batch threshold. */
int st_direct_preferred(const st_conv_geom *g, int n);
/* Floats of workspace the direct path needs for (g, n). */
size_t st_direct_work_size(const st_conv_geom *g, int n);
void st_direct_forward(float *out, const float *in, const float *w, const float *b, int n,
                       const st_conv_geom *g, float *work);
void st_direct_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int n, const st_conv_geom *g, float *work);
/* The training passes of st_net_step (layers.c), only where st_conv_direct_fused(g, n):
 * a ReLU after the convolution folded in, and operands kept in the kernel's column layout
 * between the passes and between neighbouring convolutions. Forward reads `in` (samples),
 * or with in NULL xcols (which the previous convolution's forward wrote); leaves the input
 * columns in xcols (st_direct_cols_size floats; NULL: the workspace) and the output
 * columns in ycols (st_direct_out_cols_size floats; NULL: the workspace); writes out and
 * relu = max(out, 0) in samples (each NULL: not written), or, with next_cols, max(out, 0)
 * into next_cols as the input columns of the convolution `next` that reads this one's
 * ReLU (same batch). Backward reads dL/dout from dout (samples; only where mask, a ReLU's
 * output, is > 0, unless mask is NULL) or from gcols (columns, masked already: the next
 * convolution's prev_gcols); the input from xcols (if not NULL: forward's) or `in`; adds
 * the input gradient to din (din_add 1) or writes it (0), or with prev_gcols writes it,
 * masked where the input is not > 0, as the previous convolution's gcols; adds dw and db
 * (NULL: no bias). st_direct_train_outputs: out and relu (each NULL: not written) in
 * samples from a forward's ycols, later. */
typedef struct {
    const float *in;
    float *xcols, *ycols;
    float *out, *relu;
    float *next_cols;
    const st_conv_geom *next;
    const float *dout, *mask, *gcols;
    float *din;
    int din_add;
    float *prev_gcols;
    float *dw, *db;
} st_direct_train;
size_t st_direct_cols_size(const st_conv_geom *g, int n);
size_t st_direct_out_cols_size(const st_conv_geom *g, int n);
void st_direct_train_forward(const st_direct_train *t, const float *w, const float *b, int n, const st_conv_geom *g,
                             float *work);
void st_direct_train_backward(const st_direct_train *t, const float *w, int n, const st_conv_geom *g, float *work);
void st_direct_train_outputs(float *out, float *relu, const float *ycols, int n, const st_conv_geom *g);
/* 1 if st_conv_forward/backward take the direct path for (g, n) (conv.c's rule) */
int st_conv_path_is_direct(const st_conv_geom *g, int n);
/* 1 if they take it and it is not the depthwise one: then st_direct_train_forward and
 * st_direct_train_backward can stand in for them, masks included. */
int st_conv_direct_fused(const st_conv_geom *g, int n);

/* Winograd F(4x4, 3x3) (conv_winograd.c): 3x3 kernels, stride 1, dilation 1, groups 1,
 * padding 0 to 2 on each side. */
int st_winograd_possible(const st_conv_geom *g);
size_t st_winograd_work_size(const st_conv_geom *g, int n);
void st_winograd_forward(float *out, const float *in, const float *w, const float *b, int n,
                         const st_conv_geom *g, float *work);
void st_winograd_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, int n, const st_conv_geom *g, float *work);
/* For tests: 1 = the blocked orders of work only (conv_winograd.c's plan), whatever the
 * shape; 0 = by the rule (the default). Process-wide, not thread-safe. */
void st_winograd_force_blocked(int on);

/* Winograd F(4, 3) for 1D convolutions (conv_winograd1d.c): 3 taps, stride 1, dilation 1,
 * groups 1, any padding (kh == 1 and ih == 1, as st_conv_geom gives a conv1d). */
int st_winograd1d_possible(const st_conv_geom *g);
size_t st_winograd1d_work_size(const st_conv_geom *g, int n);
void st_winograd1d_forward(float *out, const float *in, const float *w, const float *b, int n,
                           const st_conv_geom *g, float *work);
void st_winograd1d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int n, const st_conv_geom *g, float *work);

/* Winograd's part of st_conv_prepare (internal.h): U for the forward pass
 * (st_winograd_prep_size floats). */
size_t st_winograd_prep_size(const st_conv_geom *g);
void st_winograd_prepare(float *U, const float *w, const st_conv_geom *g);
void st_winograd_forward_prep(float *out, const float *in, const float *w, const float *b, int n,
                              const st_conv_geom *g, float *work, const float *U);

/* The forward pass for few input channels (conv_stem.c: a network's first layer),
 * vectorised over output columns: groups 1, dilation 1, stride 1 or 2, at most 4 input
 * channels, rows not too wide (its per-thread buffer). st_stem_forward
 * applies epi (NULL: none) to each output row after the bias b. */
int st_stem_possible(const st_conv_geom *g);
/* 1 where it is possible and measured faster (few of its vector lanes idle) */
int st_stem_preferred(const st_conv_geom *g);
/* 1 if st_conv_forward takes it for (g, n) (conv.c's rule; the backward pass then takes
 * st_stem_backward where no input gradient is wanted, else the path
 * st_conv_path_is_direct and st_conv_work_size describe) */
int st_conv_forward_is_stem(const st_conv_geom *g, int n);
size_t st_stem_work_size(const st_conv_geom *g, int n);
void st_stem_forward(float *out, const float *in, const float *w, const float *b, int n, const st_conv_geom *g,
                     float *work, const st_epilogue *epi);
/* Its weight and bias gradient (no input gradient: a first layer's backward pass), for
 * geometries st_stem_possible takes with at most 4*7*7 taps (st_stem_backward_possible):
 * adds dL/dw to dw and dL/db to db (NULL: none) in st_stem_backward_work_size floats of work. */
int st_stem_backward_possible(const st_conv_geom *g, int n);
size_t st_stem_backward_work_size(const st_conv_geom *g, int n);
void st_stem_backward(float *dw, float *db, const float *dout, const float *in, int n, const st_conv_geom *g,
                      float *work);

/* The stem's 7-tap, stride-2 rows by 1D Winograd (conv_stem_wino.c: F(4, 3) on the odd
 * taps, F(4, 4) on the even ones, the kernel rows direct): kw 7, stride 2 across, any kh,
 * stride and padding down, at most 4 input channels. st_stem_forward takes it where
 * possible (st_stem_wino_enable(0) turns that off: tests and A/B runs; process-wide). */
int st_stem_wino_possible(const st_conv_geom *g);
size_t st_stem_wino_work_size(const st_conv_geom *g, int n);
void st_stem_wino_forward(float *out, const float *in, const float *w, const float *b, int n,
                          const st_conv_geom *g, float *work, const st_epilogue *epi);
void st_stem_wino_enable(int on);
/* Its weight and bias gradient (no input gradient; kernel rows x input channels at most
 * 28), taken by st_stem_backward where possible: adds dL/dw to dw and dL/db to db (NULL:
 * none) in st_stem_wino_backward_work_size floats of work. */
int st_stem_wino_backward_possible(const st_conv_geom *g, int n);
size_t st_stem_wino_backward_work_size(const st_conv_geom *g, int n);
void st_stem_wino_backward(float *dw, float *db, const float *dout, const float *in, int n, const st_conv_geom *g,
                           float *work);

/* Path choice for tests: 0 = im2col + GEMM, 1 = direct whenever possible (else im2col +
 * GEMM), 2 = Winograd whenever possible (else im2col + GEMM), 3 = 1D Winograd whenever
 * possible (else im2col + GEMM), 4 = the stem kernel for the forward pass whenever
 * possible (else im2col + GEMM; the backward pass then takes im2col + GEMM), -1 = by
 * the rule (the default). Process-wide, not thread-safe: tests and benchmarks only. */
void st_conv_force_path(int path);
/* 0: the backward pass of a layer whose forward takes the stem never takes st_stem_backward
 * (A/B measurements); 1 (the default): it does where no input gradient is wanted. */
void st_conv_stem_backward(int on);

#endif
