/* conv.c - 1D and 2D convolution (PyTorch's Conv1d/Conv2d), forward and backward.
 *
 * A convolution layer computes a cross-correlation (no kernel flip):
 *
 *   out[n, co, y, x] = b[co] + sum_{ci in group(co)} sum_{i,j}
 *                      w[co, ci, i, j] * in[n, ci, y*sh - pt + i*dh, x*sw - pl + j*dw]
 *
 * with zeros outside the input. A 1D convolution is the 2D one with H = 1.
 *
 * Backward is two more convolutions of the same sums, read the other way round:
 *   dL/dw[co, ci, i, j] = sum_{n,y,x} dL/dout[n, co, y, x] * in[n, ci, y*sh - pt + i*dh, ...]
 *   dL/din[n, ci, p, q] = sum over every (co, y, x, i, j) that read in[n, ci, p, q]
 *                         of dL/dout[n, co, y, x] * w[co, ci, i, j]
 * (the input gradient is a transposed convolution of dL/dout with the same weights).
 *
 * Four implementations: the plain loops (_ref, in float with double accumulation and
 * in double for finite-difference checks) and three fast ones, chosen per geometry and
 * batch size (see "path choice" below):
 *  - im2col + packed GEMM (this file): im2col lays out, for a chunk of samples, every
 *    input value each output position reads as a matrix col[(ci, i, j)][(n, y, x)], so
 *    that the layer becomes W (cout x K) * col (a 1x1 convolution of stride 1 without
 *    padding skips it: its input planes already are col); in large products the GEMM
 *    gathers col's rows from the input itself as it packs them ("implicit im2col",
 *    col_rows below), so col is never written to memory and read back;
 *  - the direct convolution with the batch as the vector dimension (conv_direct.c),
 *    for batches of 8 and more;
 *  - Winograd's F(4x4, 3x3) (conv_winograd.c) for 3x3 kernels of stride 1, and F(4, 3)
 *    (conv_winograd1d.c) for 1D kernels of 3 taps and stride 1;
 *  - for the forward pass only, the kernel for few input channels vectorised over the
 *    output columns (conv_stem.c: a network's first layer; 7-tap rows of stride 2 by 1D
 *    Winograd, conv_stem_wino.c), where it measured faster (see take_stem); the backward pass of such a layer takes its weight gradient
 *    where no input gradient is wanted (a first layer), else keeps its path.
 */
#include "kernels.h"
#include "simd.h" /* even_lanes */

#include <string.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- geometry */
st_status st_conv_geom_init(st_conv_geom *g, int cin, int cout, int groups,
                            const int k[2], const int s[2], const int d[2],
                            int pad_mode, const int pad[2], int ih, int iw) {
    memset(g, 0, sizeof *g);
    if (cin <= 0 || cout <= 0) return st_fail(ST_ERR_ARG, "channels must be positive (in_channels=%d, out_channels=%d)", cin, cout);
    if (groups <= 0) return st_fail(ST_ERR_ARG, "groups must be positive (got %d)", groups);
    if (cin % groups) return st_fail(ST_ERR_ARG, "in_channels=%d is not divisible by groups=%d", cin, groups);
    if (cout % groups) return st_fail(ST_ERR_ARG, "out_channels=%d is not divisible by groups=%d", cout, groups);
    for (int a = 0; a < 2; a++) {
        if (k[a] <= 0) return st_fail(ST_ERR_ARG, "kernel_size must be positive (got %d)", k[a]);
        if (s[a] <= 0) return st_fail(ST_ERR_ARG, "stride must be positive (got %d)", s[a]);
        if (d[a] <= 0) return st_fail(ST_ERR_ARG, "dilation must be positive (got %d)", d[a]);
        if (pad_mode == ST_PAD_EXPLICIT && pad[a] < 0) return st_fail(ST_ERR_ARG, "padding must be >= 0 (got %d)", pad[a]);
    }
    if (ih <= 0 || iw <= 0) return st_fail(ST_ERR_SHAPE, "input size must be positive (got %dx%d)", ih, iw);
    g->cin = cin; g->cout = cout; g->groups = groups;
    g->kh = k[0]; g->kw = k[1]; g->sh = s[0]; g->sw = s[1]; g->dh = d[0]; g->dw = d[1];
    g->ih = ih; g->iw = iw;
    if (pad_mode == ST_PAD_SAME) {
        if (s[0] != 1 || s[1] != 1)
            return st_fail(ST_ERR_ARG, "padding='same' is not supported for strided convolutions (stride %d)", s[0] != 1 ? s[0] : s[1]);
        int th = d[0] * (k[0] - 1), tw = d[1] * (k[1] - 1);
        g->pt = th / 2; g->pb = th - th / 2; g->pl = tw / 2; g->pr = tw - tw / 2;
    } else if (pad_mode == ST_PAD_EXPLICIT) {
        g->pt = g->pb = pad[0]; g->pl = g->pr = pad[1];
    }
    int eh = ih + g->pt + g->pb - g->dh * (g->kh - 1) - 1;
    int ew = iw + g->pl + g->pr - g->dw * (g->kw - 1) - 1;
    if (eh < 0 || ew < 0)
        return st_fail(ST_ERR_SHAPE, "kernel (%d, %d) with dilation (%d, %d) is larger than the padded input (%d, %d)",
                       g->kh, g->kw, g->dh, g->dw, ih + g->pt + g->pb, iw + g->pl + g->pr);
    g->oh = eh / g->sh + 1;
    g->ow = ew / g->sw + 1;
    return ST_OK;
}

/* ---------------------------------------------------------------- reference loops */
#define CONV_REF(NAME_F, NAME_B, T, ACC)                                                       \
void NAME_F(T *out, const T *in, const T *w, const T *b, int n, const st_conv_geom *g) {       \
    int cpg = g->cin / g->groups, opg = g->cout / g->groups;                                   \
    for (int s = 0; s < n; s++)                                                                \
    for (int co = 0; co < g->cout; co++) {                                                     \
        int c0 = (co / opg) * cpg;                                                             \
        for (int y = 0; y < g->oh; y++)                                                        \
        for (int x = 0; x < g->ow; x++) {                                                      \
            ACC acc = b ? b[co] : 0;                                                           \
            for (int ci = 0; ci < cpg; ci++)                                                   \
            for (int i = 0; i < g->kh; i++) {                                                  \
                int iy = y * g->sh - g->pt + i * g->dh;                                        \
                if (iy < 0 || iy >= g->ih) continue;                                           \
                for (int j = 0; j < g->kw; j++) {                                              \
                    int ix = x * g->sw - g->pl + j * g->dw;                                    \
                    if (ix < 0 || ix >= g->iw) continue;                                       \
                    acc += (ACC)w[((size_t)(co * cpg + ci) * g->kh + i) * g->kw + j] *         \
                           in[(((size_t)s * g->cin + c0 + ci) * g->ih + iy) * g->iw + ix];     \
                }                                                                              \
            }                                                                                  \
            out[(((size_t)s * g->cout + co) * g->oh + y) * g->ow + x] = (T)acc;                \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
void NAME_B(T *din, T *dw, T *db, const T *dout, const T *in, const T *w, int n,               \
            const st_conv_geom *g) {                                                           \
    int cpg = g->cin / g->groups, opg = g->cout / g->groups;                                   \
    for (int s = 0; s < n; s++)                                                                \
    for (int co = 0; co < g->cout; co++) {                                                     \
        int c0 = (co / opg) * cpg;                                                             \
        for (int y = 0; y < g->oh; y++)                                                        \
        for (int x = 0; x < g->ow; x++) {                                                      \
            T go = dout[(((size_t)s * g->cout + co) * g->oh + y) * g->ow + x];                 \
            if (db) db[co] += go;                                                              \
            for (int ci = 0; ci < cpg; ci++)                                                   \
            for (int i = 0; i < g->kh; i++) {                                                  \
                int iy = y * g->sh - g->pt + i * g->dh;                                        \
                if (iy < 0 || iy >= g->ih) continue;                                           \
                for (int j = 0; j < g->kw; j++) {                                              \
                    int ix = x * g->sw - g->pl + j * g->dw;                                    \
                    if (ix < 0 || ix >= g->iw) continue;                                       \
                    size_t wi = ((size_t)(co * cpg + ci) * g->kh + i) * g->kw + j;             \
                    size_t xi = (((size_t)s * g->cin + c0 + ci) * g->ih + iy) * g->iw + ix;    \
                    dw[wi] += go * in[xi];                                                     \
                    if (din) din[xi] += go * w[wi];                                            \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}

CONV_REF(st_conv_forward_ref, st_conv_backward_ref, float, double)
CONV_REF(st_conv_forward_ref_f64, st_conv_backward_ref_f64, double, double)

/* ---------------------------------------------------------------- fast path: im2col + GEMM
 * The batch is cut into chunks of `nb` samples (chosen from the shape alone, so the
 * result never depends on the thread count) and the chunks into at most MAX_PARTS
 * parts; each part is one unit of parallel work with its own scratch. */
#define MAX_PARTS 8

typedef struct {
    int K, P;         /* rows of col (cpg*kh*kw), output positions per sample (oh*ow) */
    int nb, nchunks;  /* samples per chunk, number of chunks */
    int nparts;
    size_t col, tmp;  /* floats of scratch per part for col and for the gathered output */
} conv_plan;

/* A 1x1 convolution of stride 1 without padding reads each input value once, at its own
 * position: a sample's input planes already are the matrix col (cin x P) that im2col
 * would copy, and col2im would only add dcol to din, which the GEMM can do itself. */
static int pointwise(const st_conv_geom *g) {
    return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->pt == 0 && g->pb == 0 && g->pl == 0 &&
           g->pr == 0;
}

static conv_plan plan_conv(const st_conv_geom *g, int n) {
    conv_plan p;
    p.K = g->cin / g->groups * g->kh * g->kw;
    p.P = g->oh * g->ow;
    p.nb = (256 + p.P - 1) / p.P; /* enough columns for the GEMM to run at speed */
    if (p.nb > n) p.nb = n;
    if (p.nb < 1) p.nb = 1;
    p.nchunks = (n + p.nb - 1) / p.nb;
    p.nb = (n + p.nchunks - 1) / p.nchunks; /* chunks as even as they go (8 on 7x7: 4 + 4, not 6 + 2) */
    p.nparts = p.nchunks < MAX_PARTS ? p.nchunks : MAX_PARTS;
    p.col = (size_t)p.K * p.nb * p.P;
    p.tmp = (size_t)(g->cout / g->groups) * p.nb * p.P;
    if (p.nb == 1 && pointwise(g)) p.col = 0; /* the GEMMs read and write the planes themselves */
    return p;
}

static size_t gemm_work_size(const st_conv_geom *g, int n) {
    conv_plan p = plan_conv(g, n);
    /* per part: col + tmp + dcol, plus a partial weight gradient per part */
    size_t wsize = (size_t)g->cout * p.K;
    return (size_t)p.nparts * (2 * p.col + p.tmp + wsize) + 64;
}

/* ---------------------------------------------------------------- path choice
 * The rule, measured on Zen 4 (AVX-512), forward + backward, one thread:
 *
 * Winograd F(4x4, 3x3) (conv_winograd.c), for the 3x3 convolutions of stride 1 it can
 * run, is 2.8 to 4 times faster than both other paths on ResNet-sized layers: at batch
 * 32, 64 channels on 32x32 (249 GFLOP/s counted as direct-convolution FLOPs, against
 * 89 direct and 55 im2col), 128 on 16x16 (317 / 76 / 75), 256 on 8x8 (262 / 72 / 74),
 * 512 on 4x4 (244 / 74 / 74); at batch 1, 64 channels on 56x56 (229 against 63 for
 * im2col). It loses with few channels, where its transforms cost more than the
 * products they save: 3 -> 64 (43 against 53 for im2col, 46 direct, batch 32), 8 -> 8
 * (56 against 78 direct); 16 -> 16, 8 -> 32 and 32 -> 8 are 1.2 to 1.3 times faster.
 * It also loses with fewer than 8 tiles of 4x4 outputs (batch 1 on 8x8 or 7x7: 4 tiles)
 * when the channels are many: 512 on 7x7 (42 against 48), 128 on 8x8 (61 against 73);
 * with 64 channels it is even there (57 against 56). Hence: Winograd when both channel
 * counts are at least 8, their product at least 256, and there are 8 tiles or more or
 * at most 64 x 64 channel pairs.
 *
 * Otherwise, the direct path (conv_direct.c) is 1.2 to 6 times faster than im2col +
 * GEMM from 8 samples up, on MNIST-1D's layers as on 3x3 convolutions of 3 to 128
 * channels on planes up to 64 x 64 (a 7x7 stem with 3 input channels and 128 channels
 * on 28 x 28 are the exceptions seen, at 0.8 and 0.97); with 1 or 2 samples im2col +
 * GEMM is 1.5 to 7 times faster, 4 to 7 are mixed. The direct path's workspace grows
 * with the batch (the whole batch's input, output and input gradient transposed), so
 * it is taken only while that stays within 64 MB of what im2col + GEMM needs.
 * 1x1 convolutions of stride 1 without padding skip im2col (see pointwise() below);
 * with planes of 196 positions or more the GEMM then beats the direct path at every
 * batch size (batch 8, 64 -> 64 on 56x56: 70 GFLOP/s against 49; 16 -> 16 on 32x32 at
 * batch 32: 41 against 34; resnet50's 1024 -> 256 on 14x14 at batch 8: 9.0 against 10.3
 * ms forward, 27.5 against 30.2 forward + backward), while on 8x8 planes the direct path
 * stays ahead (batch 32: 128 -> 128 0.70 against 0.78 ms forward, 256 -> 256 2.6
 * against 2.8; 512 -> 512 on 4x4 2.6 against 2.9) unless the channel pairs are many
 * (resnet50's last 1x1 layers on 7x7 at batch 8: 512 -> 2048 8.9 against 9.8 ms on one
 * thread, 4.4 against 5.3 on two; 2048 -> 512 even). Strided 1x1 convolutions (ResNet's
 * downsampling shortcuts) take the GEMM at any plane size: the direct kernel reads a
 * strided input slowly (batch 8, 256 -> 512 from 56x56: 18 against 47 ms forward, 56
 * against 129 forward + backward; batch 32, 256 -> 512 from 8x8: 4.6 against 5.3).
 *
 * 1D convolutions of 3 taps, stride 1 (conv1d's usual layer) take Winograd F(4, 3)
 * (conv_winograd1d.c), which does half the multiply-adds of the direct sums, where it
 * measured faster. Batch 32, length 1024, padding 1, ms on one thread (CPU time),
 * forward + backward against the direct path: 64 -> 64 16.5 against 29.8, 32 -> 32 4.95
 * against 7.3, 16 -> 16 1.46 against 2.03, 8 -> 8 0.67 against 0.65; 128 -> 128 on 256
 * 14.5 against 24.8; batch 1, 64 -> 64 on 1024 0.46 against 0.89 for im2col + GEMM.
 * Its tiles go 16 to a vector within a sample, so a row of outputs that is not a
 * multiple of 64 pays for lanes that compute nothing: it loses when these are many and
 * the channels few (batch 32, 16 -> 16 on 100: 0.183 against 0.171; 32 -> 32 on 70: 0.54
 * against 0.44; batch 100, 16 -> 16 on 40: 0.28 against 0.22), and still wins with 64
 * channels (64 -> 64 on 40 at batch 100: 2.65 against 3.0; on 130 at batch 32: 2.8
 * against 3.2). Hence: both channel counts at least 16, and at most a tenth of the
 * output lanes idle, or at least 64 x 64 channel pairs and at most 40 % idle.
 * MNIST-1D's convolutions (15 channels, stride 2) stay on the direct path. */
#define WINO1D_MIN_CHANNELS 16
#define WINO1D_MANY_PAIRS (64 * 64)
#define WINO1D_VECTOR 64 /* outputs per vector of 16 tiles of 4 (AVX-512) */
#define DIRECT_MIN_BATCH 8
#define POINTWISE_GEMM_MIN_PLANE 128
#define POINTWISE_GEMM_MIN_PAIRS (1024 * 1024) /* or at least this many channel pairs */
#define DIRECT_EXTRA_WORK ((size_t)16 << 20) /* floats */
#define WINO_MIN_CHANNELS 8
#define WINO_MIN_PAIRS 256
#define WINO_MIN_TILES 8
#define WINO_FEW_TILES_MAX_PAIRS (64 * 64)

static int force_path = -1;
void st_conv_force_path(int path) { force_path = path; }

static int take_direct(const st_conv_geom *g, int n) {
    if (!st_direct_possible(g, n)) return 0;
    if (st_direct_preferred(g, n)) return 1; /* depthwise stride 1: conv_depthwise.c at any batch */
    if (g->kh == 1 && g->kw == 1 && g->pt + g->pb + g->pl + g->pr == 0 &&
        (g->sh > 1 || g->sw > 1 || g->oh * g->ow >= POINTWISE_GEMM_MIN_PLANE ||
         (long)g->cin * g->cout >= POINTWISE_GEMM_MIN_PAIRS))
        return 0;
    return n >= DIRECT_MIN_BATCH && st_direct_work_size(g, n) <= gemm_work_size(g, n) + DIRECT_EXTRA_WORK;
}

static int take_winograd(const st_conv_geom *g, int n) {
    if (!st_winograd_possible(g)) return 0;
    long pairs = (long)g->cin * g->cout, tiles = (long)n * ((g->oh + 3) / 4) * ((g->ow + 3) / 4);
    return g->cin >= WINO_MIN_CHANNELS && g->cout >= WINO_MIN_CHANNELS && pairs >= WINO_MIN_PAIRS &&
           (tiles >= WINO_MIN_TILES || pairs <= WINO_FEW_TILES_MAX_PAIRS);
}

static int take_winograd1d(const st_conv_geom *g) {
    if (!st_winograd1d_possible(g) || g->cin < WINO1D_MIN_CHANNELS || g->cout < WINO1D_MIN_CHANNELS) return 0;
    long lanes = (g->ow + WINO1D_VECTOR - 1) / WINO1D_VECTOR * WINO1D_VECTOR; /* outputs computed */
    if ((long)g->cin * g->cout >= WINO1D_MANY_PAIRS) return 10L * g->ow >= 6 * lanes;
    return 10L * g->ow >= 9 * lanes;
}

typedef enum { PATH_GEMM, PATH_DIRECT, PATH_WINOGRAD, PATH_WINOGRAD1D } conv_path;

static conv_path choose_path(const st_conv_geom *g, int n) {
    switch (force_path) {
    case 0: return PATH_GEMM;
    case 1: return st_direct_possible(g, n) ? PATH_DIRECT : PATH_GEMM;
    case 2: return st_winograd_possible(g) ? PATH_WINOGRAD : PATH_GEMM;
    case 3: return st_winograd1d_possible(g) ? PATH_WINOGRAD1D : PATH_GEMM;
    case 4: return PATH_GEMM; /* (the backward pass of a forced stem) */
    default: break;
    }
    if (take_winograd(g, n)) return PATH_WINOGRAD;
    if (take_winograd1d(g)) return PATH_WINOGRAD1D;
    return take_direct(g, n) ? PATH_DIRECT : PATH_GEMM;
}

/* The forward pass alone may take the stem kernel (conv_stem.c: at most 4 input channels,
 * stride 1 or 2; its rule, st_stem_preferred, and the measurements are there), for 2D
 * kernels only, at any batch size: ResNet's stem, 3 -> 64 7x7/2 on 224x224, forward,
 * one thread (CPU time), 18.1 ms at batch 8 against 22.1 on the direct path, 2.15 at
 * batch 1 against 2.52 for im2col + GEMM; its 7-tap rows of stride 2 now go to the 1D
 * Winograd of conv_stem_wino.c (10.3-10.5 and 1.18 ms). The backward pass keeps choose_path's path
 * (unless take_stem_backward), and so does st_net_step's fused direct training pass. */
#define STEM_MIN_TAPS_BATCHED 27 /* taps per output (cin*kh*kw) from DIRECT_MIN_BATCH samples up */

static int take_stem(const st_conv_geom *g, int n) {
    if (force_path == 4) return st_stem_possible(g);
    if (force_path >= 0 || g->kh == 1 || !st_stem_preferred(g)) return 0;
    /* against the direct path few taps lost (AVX2 build, where its lanes are all used:
     * 1 -> 6 5x5 on 28x28 at batch 64, 64 against 71 GFLOP/s; at batch 1, 53 against 32
     * for im2col + GEMM) */
    return n < DIRECT_MIN_BATCH || g->cin * g->kh * g->kw >= STEM_MIN_TAPS_BATCHED;
}

int st_conv_forward_is_stem(const st_conv_geom *g, int n) { return n > 0 && take_stem(g, n); }

/* The backward pass of such a layer where no input gradient is wanted (a network's first
 * layer) takes the stem's weight gradient (st_stem_backward), faster wherever the forward
 * takes the stem: ResNet's stem, one thread (CPU time), 19.3 ms at batch 8 against 23.7 on
 * the direct path, 2.70 at batch 1 against 3.72 for im2col + GEMM, 76 at batch 32 against
 * 126 (conv_stem.c has more); by conv_stem_wino.c's 1D Winograd now 11.7-12.1 and 1.43. st_conv_stem_backward(0) turns it off (A/B runs). */
static int stem_backward_on = 1;
void st_conv_stem_backward(int on) { stem_backward_on = on; }

static int take_stem_backward(const st_conv_geom *g, int n) {
    return stem_backward_on && take_stem(g, n) && st_stem_backward_possible(g, n);
}

int st_conv_path_is_direct(const st_conv_geom *g, int n) { return n > 0 && choose_path(g, n) == PATH_DIRECT; }

size_t st_conv_work_size(const st_conv_geom *g, int n) {
    if (n <= 0) return 0;
    size_t size, stem = take_stem(g, n) ? st_stem_work_size(g, n) : 0;
    if (take_stem_backward(g, n) && st_stem_backward_work_size(g, n) > stem) stem = st_stem_backward_work_size(g, n);
    switch (choose_path(g, n)) {
    case PATH_DIRECT: size = st_direct_work_size(g, n); break;
    case PATH_WINOGRAD: size = st_winograd_work_size(g, n); break;
    case PATH_WINOGRAD1D: size = st_winograd1d_work_size(g, n); break;
    default: size = gemm_work_size(g, n); break;
    }
    return size > stem ? size : stem;
}

/* The outputs x in [*xa, *xb) of a row read inside the input row: 0 <= x0 + x*s < iw. */
static void inside(int x0, int s, int iw, int ow, int *xa, int *xb) {
    int a = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    int b = x0 >= iw ? 0 : (iw - x0 + s - 1) / s;
    if (b > ow) b = ow;
    if (a > b) a = b;
    *xa = a;
    *xb = b;
}

/* Row r = (ci, i, j) of col, one sample: where it reads (the input plane of channel ci,
 * the first input column x0 = j*dw - pl, and the outputs [xa, xb) of a row that read
 * inside the input row). */
typedef struct {
    const float *plane;
    int i, x0, xa, xb;
} col_row;

static col_row col_row_at(const float *in, int s, int grp, const st_conv_geom *g, int r) {
    int cpg = g->cin / g->groups, taps = g->kh * g->kw, ci = r / taps;
    col_row c = {in + ((size_t)s * g->cin + grp * cpg + ci) * g->ih * g->iw, r % taps / g->kw, r % g->kw * g->dw - g->pl, 0, 0};
    inside(c.x0, g->sw, g->iw, g->ow, &c.xa, &c.xb);
    return c;
}

/* dst[k] = src[k*s], k < n. Stride 2 (the strided convolutions of CNNs) with AVX-512:
 * two vectors of 16 loaded, the even values of both picked by one permute; the last
 * (up to 16) with masked loads and stores, which read nothing past src[2n - 2]. */
static inline void gather(float *restrict dst, const float *restrict src, int n, int s) {
    int k = 0;
    if (s == 1) {
        memcpy(dst, src, sizeof(float) * n);
        return;
    }
#if defined(__AVX512F__)
    if (s == 2) {
        for (; k + 16 < n; k += 16)
            _mm512_storeu_ps(dst + k, even_lanes(_mm512_loadu_ps(src + 2 * k), _mm512_loadu_ps(src + 2 * k + 16)));
        if (k == n) return;
        int r = 2 * (n - k) - 1; /* source values left: 1 .. 31 */
        __mmask16 lo = (__mmask16)((1u << (r < 16 ? r : 16)) - 1), hi = (__mmask16)((1u << (r > 16 ? r - 16 : 0)) - 1);
        __m512 v = even_lanes(_mm512_maskz_loadu_ps(lo, src + 2 * k), _mm512_maskz_loadu_ps(hi, src + 2 * k + 16));
        _mm512_mask_storeu_ps(dst + k, (__mmask16)((1u << (n - k)) - 1), v);
        return;
    }
#endif
    for (; k < n; k++) dst[k] = src[(size_t)k * s];
}

/* dst[0 .. q1-q0) = the positions [q0, q1) of a sample's col row: for each output row y
 * it meets, zeros, then a copy of (every sw-th value of) input row y*sh - pt + i*dh, then
 * zeros. */
static void col_span(float *dst, const col_row *c, const st_conv_geom *g, int q0, int q1) {
    int y = q0 / g->ow, x = q0 % g->ow;
    for (int q = q0; q < q1; y++, x = 0) {
        int e = g->ow - x < q1 - q ? g->ow : x + (q1 - q); /* this row's outputs [x, e) */
        int iy = y * g->sh - g->pt + c->i * g->dh;
        if (iy < 0 || iy >= g->ih) memset(dst, 0, sizeof(float) * (e - x));
        else {
            const float *src = c->plane + (size_t)iy * g->iw + c->x0;
            int a = c->xa > x ? (c->xa < e ? c->xa : e) : x, b = c->xb < e ? c->xb : e;
            if (b < a) b = a;
            for (int k = x; k < a; k++) dst[k - x] = 0.0f; /* (a few: the padding) */
            gather(dst + (a - x), src + (size_t)a * g->sw, b - a, g->sw);
            for (int k = b; k < e; k++) dst[k - x] = 0.0f;
        }
        dst += e - x;
        q += e - x;
    }
}

/* Rows [r0, r1) of col[r][s*P + y*ow + x], r = (ci, i, j), for the samples [0, nb) of
 * `in` (already offset to the chunk) and the channels of group `grp`. */
static void im2col_rows(float *col, const float *in, int nb, int grp, const st_conv_geom *g, int P, int r0, int r1) {
    for (int r = r0; r < r1; r++)
        for (int s = 0; s < nb; s++) {
            col_row c = col_row_at(in, s, grp, g, r);
            col_span(col + (size_t)r * nb * P + (size_t)s * P, &c, g, 0, P);
        }
}

/* Implicit im2col: the GEMM asks for col's rows piece by piece as it packs them
 * (st_sgemm_implicit), so col is never written to memory and read back. */
typedef struct {
    const st_conv_geom *g;
    const float *in; /* the chunk's first sample */
    int grp, P;
} col_source;

/* dst[0 .. n) = col[r][x0 .. x0+n), across samples where the span crosses them. */
static void col_rows(const void *ctx, int r, int x0, int n, float *dst) {
    const col_source *cs = ctx;
    int s = x0 / cs->P, q = x0 % cs->P;
    for (; n > 0; s++, q = 0) {
        int len = cs->P - q < n ? cs->P - q : n;
        col_row c = col_row_at(cs->in, s, cs->grp, cs->g, r);
        col_span(dst, &c, cs->g, q, q + len);
        dst += len;
        n -= len;
    }
}

/* Copies and transposes of a part that runs alone (batch 1: one part) are split over the
 * threads too, from this many floats up: at batch 1 they were a serial tenth of
 * resnet18's time on 2 threads (bench/scale_profile.c). */
#define COPY_PAR_MIN ((size_t)32 << 10)

static int copies_in_parallel(size_t floats) {
#ifdef _OPENMP
    return floats >= COPY_PAR_MIN && st_get_threads() > 1 && !omp_in_parallel();
#else
    (void)floats;
    return 0;
#endif
}

static void im2col(float *col, const float *in, int nb, int grp, const st_conv_geom *g, int P) {
    int rows = g->cin / g->groups * g->kh * g->kw;
    if (copies_in_parallel((size_t)rows * nb * P)) {
#pragma omp parallel
        {
#ifdef _OPENMP
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            im2col_rows(col, in, nb, grp, g, P, (int)((long)rows * t / nt), (int)((long)rows * (t + 1) / nt));
#endif
        }
    } else {
        im2col_rows(col, in, nb, grp, g, P, 0, rows);
    }
}

/* dst (cols x P planes) = the transpose of src (P x cols, row stride ss), then the
 * epilogue e (NULL: none; plane c is e's channel c) on each block of planes while it is
 * in the cache; split over the threads by groups of 8 columns when large. */
#define TRANSPOSE_BLOCK 32 /* columns */
static void transpose_cols(const float *src, size_t ss, int P, int cols, float *dst, const st_epilogue *e, int c0, int c1) {
    for (int c = c0; c < c1; c += TRANSPOSE_BLOCK) {
        int ce = c + TRANSPOSE_BLOCK < c1 ? c + TRANSPOSE_BLOCK : c1;
        st_transpose(src + c, ss, P, ce - c, dst + (size_t)c * P, (size_t)P);
        if (e) st_epilogue_rows(e, dst, (size_t)c, (size_t)ce, cols, (size_t)P);
    }
}

static void transpose_out(const float *src, size_t ss, int P, int cols, float *dst, const st_epilogue *e) {
    if (copies_in_parallel((size_t)P * cols)) {
#pragma omp parallel
        {
#ifdef _OPENMP
            int t = omp_get_thread_num(), nt = omp_get_num_threads(), blocks = (cols + 7) / 8;
            int c0 = (int)((long)blocks * t / nt) * 8, c1 = (int)((long)blocks * (t + 1) / nt) * 8;
            if (c1 > cols) c1 = cols;
            if (c0 < c1) transpose_cols(src, ss, P, cols, dst, e, c0, c1);
#endif
        }
    } else {
        transpose_cols(src, ss, P, cols, dst, e, 0, cols);
    }
}

/* The adjoint of im2col: din += scatter(col). */
static void col2im(float *din, const float *col, int nb, int grp, const st_conv_geom *g, int P) {
    int cpg = g->cin / g->groups;
    int ld = nb * P;
    for (int ci = 0; ci < cpg; ci++)
    for (int i = 0; i < g->kh; i++)
    for (int j = 0; j < g->kw; j++) {
        const float *row = col + (size_t)((ci * g->kh + i) * g->kw + j) * ld;
        int x0 = j * g->dw - g->pl, xa, xb;
        inside(x0, g->sw, g->iw, g->ow, &xa, &xb);
        for (int s = 0; s < nb; s++) {
            float *plane = din + ((size_t)s * g->cin + grp * cpg + ci) * g->ih * g->iw;
            const float *src = row + (size_t)s * P;
            for (int y = 0; y < g->oh; y++, src += g->ow) {
                int iy = y * g->sh - g->pt + i * g->dh;
                if (iy < 0 || iy >= g->ih) continue;
                float *dst = plane + (size_t)iy * g->iw;
                for (int x = xa; x < xb; x++) dst[x0 + x * g->sw] += src[x];
            }
        }
    }
}

/* Parts run in parallel when there are several, more than one thread and no enclosing
 * parallel region; otherwise serially, and the GEMMs inside may use the threads. */
static int parts_in_parallel(const conv_plan *p) {
#ifdef _OPENMP
    return p->nparts > 1 && st_get_threads() > 1 && !omp_in_parallel();
#else
    (void)p;
    return 0;
#endif
}

static int chunk_begin(const conv_plan *p, int part) { return (int)((long)p->nchunks * part / p->nparts); }

/* What one call works on. */
typedef struct {
    const st_conv_geom *g;
    conv_plan p;
    int n;
    const float *in, *w, *b, *dout;
    float *out, *din, *work, *partials;
    const float *packed;  /* forward: the groups' weights packed beforehand, or NULL */
    size_t packed_stride; /* floats from one group's packed weights to the next */
    int transposed;       /* forward: out^T = col^T W^T (the weights packed as B) */
    const st_epilogue *epi; /* forward: applied to the output (NULL: none; b is NULL then) */
} gemm_ctx;

/* The epilogue on samples [s0, s0 + nb) of the output (split over the threads when
 * outside a parallel region). */
static void epilogue_samples(const gemm_ctx *c, int s0, int nb) {
    size_t at = (size_t)s0 * c->g->cout * c->p.P;
    st_epilogue e = *c->epi;
    if (e.add) e.add += at;
    st_epilogue_apply(&e, c->out + at, nb, c->g->cout, (size_t)c->p.P);
}

/* Implicit im2col (col_rows) for a product of opg x cols x depth multiply-adds with
 * col as B. It always takes st_sgemm's packed path, which needs two register tiles of
 * columns and enough work to beat the small-product path (that one reads col in place);
 * and col's rows are made output row by output row, so those must not be short: 7 x 7
 * planes (512 channels, batch 1) ran 5-15 % slower than im2col, 14 x 14 2-5 % faster.
 * Gains, 1 thread, CPU time: stem 7x7/2 3 -> 64 at batch 8 forward 58 -> 78-85 GFLOP/s,
 * forward + weight gradient 53 -> 66-70; conv1d 64 -> 64 k3 at batch 32 forward 66 -> 80-85,
 * with the input gradient 67 -> 74-78. Those two layers still take the direct path (batch
 * 8 and more): 81-85 and 71-81 there for the stem, 61-89 (noisy) for the conv1d.
 * st_conv_force_implicit: 0 never, 1 always, -1 by size. */
#define IMPLICIT_MIN_MACS 4.0e6
#define IMPLICIT_MIN_COLS 64
#define IMPLICIT_MIN_ROW 12
static int force_implicit = -1;
void st_conv_force_implicit(int mode) { force_implicit = mode; }

static int implicit_col(const st_conv_geom *g, int opg, int cols, int depth) {
    if (force_implicit >= 0) return force_implicit;
    return (double)opg * cols * depth > IMPLICIT_MIN_MACS && cols >= IMPLICIT_MIN_COLS && g->ow >= IMPLICIT_MIN_ROW;
}

/* tmp (opg x nb*P), group grp's outputs of nb samples, into the samples' (cout, P) planes. */
static void scatter_out(const float *tmp, float *y, int nb, int grp, int opg, int cout, int P) {
    size_t N = (size_t)nb * P;
    for (int s = 0; s < nb; s++)
        for (int co = 0; co < opg; co++)
            memcpy(y + ((size_t)s * cout + grp * opg + co) * P, tmp + (size_t)co * N + (size_t)s * P, sizeof(float) * P);
}

/* Forward of the chunks of one part: col (K x nb*P) = im2col, tmp (opg x nb*P) = W_g col,
 * then tmp scattered to the samples' (cout, P) planes. With weights packed beforehand
 * (prepared, below) in the transposed order, tmp (nb*P x opg) = col^T W_g^T instead,
 * transposed into the planes. */
static void forward_part(const gemm_ctx *c, int part) {
    const st_conv_geom *g = c->g;
    const conv_plan *p = &c->p;
    int opg = g->cout / g->groups;
    float *col = c->work + (size_t)part * (p->col + p->tmp);
    float *tmp = col + p->col;
    for (int ch = chunk_begin(p, part); ch < chunk_begin(p, part + 1); ch++) {
        int s0 = ch * p->nb, nb = c->n - s0 < p->nb ? c->n - s0 : p->nb, N = nb * p->P;
        const float *x = c->in + (size_t)s0 * g->cin * g->ih * g->iw;
        float *y = c->out + (size_t)s0 * g->cout * p->P;
        /* a product written straight into one sample's planes applies the epilogue to
         * each tile as it completes; the others, to the chunk once it is written */
        int tile_epi = c->epi && nb == 1 && !c->transposed;
        int epi_done = tile_epi || (c->epi && c->transposed); /* (transposed: with the transposes) */
        for (int grp = 0; grp < g->groups; grp++) {
            const float *wg = c->w + (size_t)grp * opg * p->K;
            const float *wp = c->packed ? c->packed + grp * c->packed_stride : NULL;
            const float *cg = col;
            col_source src = {g, x, grp, p->P};
            size_t yg = (size_t)grp * opg * p->P; /* the group's first plane in the sample */
            st_gemm_epi ge = {c->epi, grp * opg, c->epi && c->epi->add ? c->epi->add + (size_t)s0 * g->cout * p->P + yg : NULL};
            const st_gemm_epi *epi = tile_epi ? &ge : NULL;
            if (nb == 1 && pointwise(g)) cg = x + (size_t)grp * p->K * p->P;
            else if (!c->transposed && implicit_col(g, opg, N, p->K)) {
                float *dst = nb == 1 ? y + yg : tmp;
                st_sgemm_implicit(0, 0, opg, N, p->K, wg, p->K, wp, col_rows, &src, 0.0f, dst, N, epi);
                if (nb > 1) scatter_out(tmp, y, nb, grp, opg, g->cout, p->P);
                continue;
            } else im2col(col, x, nb, grp, g, p->P);
            if (c->transposed) {
                st_sgemm_packed(1, 1, N, opg, p->K, cg, N, NULL, wg, p->K, wp, 0.0f, tmp, opg, NULL);
                for (int s = 0; s < nb; s++) {
                    st_epilogue es, *ep = NULL;
                    if (c->epi) { /* the group's channels of sample s */
                        size_t at = ((size_t)(s0 + s) * g->cout + grp * opg) * p->P;
                        es = *c->epi;
                        es.scale += grp * opg;
                        es.shift += grp * opg;
                        if (es.add) es.add += at;
                        ep = &es;
                    }
                    transpose_out(tmp + (size_t)s * p->P * opg, opg, p->P, opg, y + ((size_t)s * g->cout + grp * opg) * p->P, ep);
                }
            } else if (nb == 1) {
                st_sgemm_packed(0, 0, opg, p->P, p->K, wg, p->K, wp, cg, p->P, NULL, 0.0f, y + yg, p->P, epi);
            } else {
                st_sgemm_packed(0, 0, opg, N, p->K, wg, p->K, wp, col, N, NULL, 0.0f, tmp, N, NULL);
                scatter_out(tmp, y, nb, grp, opg, g->cout, p->P);
            }
        }
        if (c->b)
            for (int s = 0; s < nb; s++)
                for (int co = 0; co < g->cout; co++) {
                    float *row = y + ((size_t)s * g->cout + co) * p->P, bv = c->b[co];
                    for (int q = 0; q < p->P; q++) row[q] += bv;
                }
        if (c->epi && !epi_done) epilogue_samples(c, s0, nb);
    }
}

/* Backward of the chunks of one part: the part's own weight gradient (partials) and
 * the input gradient of its samples. */
static void backward_part(const gemm_ctx *c, int part) {
    const st_conv_geom *g = c->g;
    const conv_plan *p = &c->p;
    int opg = g->cout / g->groups;
    size_t wsize = (size_t)g->cout * p->K;
    float *col = c->work + (size_t)part * (2 * p->col + p->tmp);
    float *dcol = col + p->col;
    float *tmp = dcol + p->col;
    float *dwp = c->partials + (size_t)part * wsize;
    memset(dwp, 0, sizeof(float) * wsize);
    for (int ch = chunk_begin(p, part); ch < chunk_begin(p, part + 1); ch++) {
        int s0 = ch * p->nb, nb = c->n - s0 < p->nb ? c->n - s0 : p->nb;
        const float *x = c->in + (size_t)s0 * g->cin * g->ih * g->iw;
        const float *gy = c->dout + (size_t)s0 * g->cout * p->P;
        for (int grp = 0; grp < g->groups; grp++) {
            /* gather dL/dout of this group as (opg) x (nb*P) */
            const float *gyg;
            if (nb == 1) gyg = gy + (size_t)grp * opg * p->P;
            else {
                for (int s = 0; s < nb; s++)
                    for (int co = 0; co < opg; co++)
                        memcpy(tmp + (size_t)co * nb * p->P + (size_t)s * p->P,
                               gy + ((size_t)s * g->cout + grp * opg + co) * p->P, sizeof(float) * p->P);
                gyg = tmp;
            }
            /* dW_g (opg x K) += dout_g (opg x nbP) * col^T */
            const float *cg = col;
            col_source src = {g, x, grp, p->P};
            if (nb == 1 && pointwise(g)) cg = x + (size_t)grp * p->K * p->P;
            else if (implicit_col(g, opg, p->K, nb * p->P)) cg = NULL;
            else im2col(col, x, nb, grp, g, p->P);
            if (cg) st_sgemm(0, 1, opg, p->K, nb * p->P, gyg, nb * p->P, cg, nb * p->P, 1.0f,
                             dwp + (size_t)grp * opg * p->K, p->K);
            else st_sgemm_implicit(0, 1, opg, p->K, nb * p->P, gyg, nb * p->P, NULL, col_rows, &src, 1.0f,
                                   dwp + (size_t)grp * opg * p->K, p->K, NULL);
            if (c->din && nb == 1 && pointwise(g)) {
                /* din_g (K x P) += W_g^T (K x opg) * dout_g */
                st_sgemm(1, 0, p->K, p->P, opg, c->w + (size_t)grp * opg * p->K, p->K, gyg, p->P, 1.0f,
                         c->din + ((size_t)s0 * g->cin + (size_t)grp * p->K) * p->P, p->P);
            } else if (c->din) {
                /* dcol (K x nbP) = W_g^T (K x opg) * dout_g */
                st_sgemm(1, 0, p->K, nb * p->P, opg, c->w + (size_t)grp * opg * p->K, p->K, gyg, nb * p->P,
                         0.0f, dcol, nb * p->P);
                col2im(c->din + (size_t)s0 * g->cin * g->ih * g->iw, dcol, nb, grp, g, p->P);
            }
        }
    }
}

/* ---------------------------------------------------------------- prepared weights
 * Inference runs the same weights many times, so what the fast paths derive from the
 * weights alone can be made once (st_net_run keeps it per node until the weights change):
 *  - Winograd: the transformed kernels U (36 K C floats, 4 times the weights), up to
 *    WINO_PREP_MAX;
 *  - im2col + GEMM: each group's weights packed into the GEMM's panels (products of
 *    fewer than two register tiles of columns take st_sgemm's small path, which reads
 *    the weights in place: nothing to prepare). When the product has few columns (nb * P
 *    up to 256: batch 1 on 14x14 planes), it runs transposed, out^T (N x cout) =
 *    col^T W^T with the weights as the B operand: the register tiles then cut the N
 *    positions into rows of 8 (196 -> 200) instead of vectors of 32 columns (196 ->
 *    224), and the output is transposed back (N cout floats, few against the N cout K
 *    multiply-adds). Measured on Zen 4, one thread, GFLOP/s of the GEMM alone, usual
 *    order / transposed with W packed beforehand: 256 x 196 x 2304 91 / 103, 1024 x 196
 *    x 256 97 / 111; 256 x 784 x 1152 106 / 103 (so not there). Packing the weights
 *    beforehand in the usual order gains 1-3 % on the GEMM alone and nothing measurable
 *    on whole networks, so by default only the transposed order is prepared (tests
 *    force the other, st_conv_force_gemm_order).
 * A header says which of these the floats hold; st_conv_forward_prep ignores a prepared
 * copy that does not fit the path (g, n) takes, so any batch size stays correct. */
enum { PREP_NONE = 0, PREP_WINOGRAD = 1, PREP_GEMM = 2, PREP_GEMM_T = 3, PREP_HEADER = 16 };
#define TRANSPOSED_MAX_N 256 /* columns (nb * P) up to which the product runs transposed */
/* ... and from which: 7x7 planes (49 positions) too, where the rows of 8 waste 7 of 56
 * against 15 of 64 lanes for the small path's vectors of 16 columns (resnet50 at batch 1,
 * one thread: 512 -> 2048 1.26 -> 1.14 ms, 512 -> 512 3x3 2.85 -> 2.69; two threads
 * 0.64 -> 0.58 and 1.47-1.50 -> 1.41-1.53) */
#define TRANSPOSED_MIN_N 48 /* where the weights are many (as measured there) */
#define TRANSPOSED_MIN_WEIGHTS (256 * 256)
/* The largest U kept (floats): 512 x 512 channels (38 MB, 4 times the weights) read back
 * from memory on every call cost as much as transforming the kernels again (resnet18 at
 * batch 8, one thread: 0.99x with them, and 262 MB of memory). */
#define WINO_PREP_MAX ((size_t)4 << 20)

static int force_order = -1;
void st_conv_force_gemm_order(int order) { force_order = order; }

static int prep_kind(const st_conv_geom *g, int n) {
    if (take_stem(g, n)) return PREP_NONE;
    conv_path path = choose_path(g, n);
    if (path == PATH_WINOGRAD) return st_winograd_prep_size(g) <= WINO_PREP_MAX ? PREP_WINOGRAD : PREP_NONE;
    if (path != PATH_GEMM) return PREP_NONE;
    conv_plan p = plan_conv(g, n);
    int mr, nr, kc, N = p.nb * p.P;
    st_gemm_blocking(&mr, &nr, &kc);
    if (force_order >= 0) return force_order ? PREP_GEMM_T : PREP_GEMM;
    /* the small path reads the weights in place; in the usual order packed weights
     * gained nothing measurable (resnet50, batch 1 and 8, one thread) for a copy of them */
    int opg = g->cout / g->groups;
    int wide = N >= 2 * nr || (N >= TRANSPOSED_MIN_N && (long)opg * p.K >= TRANSPOSED_MIN_WEIGHTS);
    return wide && N <= TRANSPOSED_MAX_N ? PREP_GEMM_T : PREP_NONE;
}

/* floats of one group's packed weights */
static size_t group_floats(const st_conv_geom *g, int kind) {
    size_t K = (size_t)g->cin / g->groups * g->kh * g->kw, f = st_sgemm_pack_size(kind == PREP_GEMM_T, g->cout / g->groups, (int)K);
    return (f + 15) & ~(size_t)15;
}

size_t st_conv_prep_size(const st_conv_geom *g, int n) {
    if (n <= 0) return 0;
    int kind = prep_kind(g, n);
    if (kind == PREP_WINOGRAD) return PREP_HEADER + st_winograd_prep_size(g);
    if (kind == PREP_GEMM || kind == PREP_GEMM_T) return PREP_HEADER + (size_t)g->groups * group_floats(g, kind);
    return 0;
}

void st_conv_prepare(float *prep, const float *w, const st_conv_geom *g, int n) {
    int kind = prep_kind(g, n), opg = g->cout / g->groups, K = g->cin / g->groups * g->kh * g->kw;
    memset(prep, 0, sizeof(float) * PREP_HEADER);
    memcpy(prep, &kind, sizeof kind);
    if (kind == PREP_WINOGRAD) st_winograd_prepare(prep + PREP_HEADER, w, g);
    if (kind == PREP_GEMM || kind == PREP_GEMM_T)
        for (int grp = 0; grp < g->groups; grp++)
            st_sgemm_pack(kind == PREP_GEMM_T, kind == PREP_GEMM_T, opg, K, w + (size_t)grp * opg * K, K,
                          prep + PREP_HEADER + grp * group_floats(g, kind));
}

void st_conv_forward(float *out, const float *in, const float *w, const float *b, int n,
                     const st_conv_geom *g, float *work) {
    st_conv_forward_prep(out, in, w, b, n, g, work, NULL, NULL);
}

void st_conv_forward_prep(float *out, const float *in, const float *w, const float *b, int n,
                          const st_conv_geom *g, float *work, const float *prep, const st_epilogue *epi) {
    if (n <= 0) return;
    if (take_stem(g, n)) {
        st_stem_forward(out, in, w, b, n, g, work, epi);
        return;
    }
    conv_path path = choose_path(g, n);
    int kind = PREP_NONE;
    if (prep) memcpy(&kind, prep, sizeof kind);
    if (kind != prep_kind(g, n)) kind = PREP_NONE; /* made for another path */
    if (path != PATH_GEMM || (epi && b)) { /* the epilogue after the bias, in a pass of its own */
        if (path == PATH_DIRECT) st_direct_forward(out, in, w, b, n, g, work);
        else if (path == PATH_WINOGRAD1D) st_winograd1d_forward(out, in, w, b, n, g, work);
        else if (path == PATH_WINOGRAD)
            st_winograd_forward_prep(out, in, w, b, n, g, work, kind == PREP_WINOGRAD ? prep + PREP_HEADER : NULL);
        else st_conv_forward_prep(out, in, w, b, n, g, work, prep, NULL);
        if (epi) st_epilogue_apply(epi, out, n, g->cout, (size_t)g->oh * g->ow);
        return;
    }
    gemm_ctx c = {g, plan_conv(g, n), n, in, w, b, NULL, out, NULL, work, NULL, NULL, 0, 0, epi};
    if (kind == PREP_GEMM || kind == PREP_GEMM_T) {
        c.packed = prep + PREP_HEADER;
        c.packed_stride = group_floats(g, kind);
        c.transposed = kind == PREP_GEMM_T;
    }
    if (parts_in_parallel(&c.p)) {
#pragma omp parallel for schedule(static)
        for (int part = 0; part < c.p.nparts; part++) forward_part(&c, part);
    } else {
        for (int part = 0; part < c.p.nparts; part++) forward_part(&c, part);
    }
}

/* dw[i] += each part's partial sum in part order, for i in [i0, i1) */
static void add_partials(float *dw, const float *partials, int nparts, size_t wsize, size_t i0, size_t i1) {
    for (int part = 0; part < nparts; part++) {
        const float *dwp = partials + (size_t)part * wsize;
        for (size_t i = i0; i < i1; i++) dw[i] += dwp[i];
    }
}

void st_conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                      const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    if (!din && take_stem_backward(g, n)) { st_stem_backward(dw, db, dout, in, n, g, work); return; }
    conv_path path = choose_path(g, n);
    if (path == PATH_DIRECT) { st_direct_backward(din, dw, db, dout, in, w, n, g, work); return; }
    if (path == PATH_WINOGRAD) { st_winograd_backward(din, dw, db, dout, in, w, n, g, work); return; }
    if (path == PATH_WINOGRAD1D) { st_winograd1d_backward(din, dw, db, dout, in, w, n, g, work); return; }
    conv_plan p = plan_conv(g, n);
    gemm_ctx c = {g, p, n, in, w, NULL, dout, NULL, din, work, work + (size_t)p.nparts * (2 * p.col + p.tmp), NULL, 0, 0, NULL};
    if (parts_in_parallel(&c.p)) {
#pragma omp parallel for schedule(static)
        for (int part = 0; part < p.nparts; part++) backward_part(&c, part);
    } else {
        for (int part = 0; part < p.nparts; part++) backward_part(&c, part);
    }
    /* reduce the parts in a fixed order (split over the threads by position) */
    size_t wsize = (size_t)g->cout * p.K;
    int rparts = st_elementwise_parts(wsize * p.nparts);
    if (rparts == 1) add_partials(dw, c.partials, p.nparts, wsize, 0, wsize);
    else {
#pragma omp parallel for schedule(static)
        for (int q = 0; q < rparts; q++) add_partials(dw, c.partials, p.nparts, wsize, wsize * q / rparts, wsize * (q + 1) / rparts);
    }
    if (db) st_bias_grad(db, dout, n, g->cout, (size_t)p.P);
}
