/* conv_direct.c - direct convolution with the batch as the vector dimension.
 *
 * For small planes (MNIST-1D's 40 -> 19 -> 9 -> 4 positions) im2col + GEMM spends more
 * time copying than multiplying: its matrices are a few dozen wide. Here the samples
 * take the role of the long dimension instead. The batch is cut into "columns" of VL
 * samples (one vector; the last column, if partial, of 4 or 8 lanes), and each column
 * of the input is transposed from (N, C, H, W) into a block (C, Hp, Wp, lanes) of the
 * zero-padded plane, one vector per position, the lanes past the batch zero. A
 * convolution then becomes scalar-times-vector multiply-adds, a column at a time:
 *
 *   forward  out[co][y][x][:] = b[co] + sum_r w[co][r] * in[tap r of (y, x)][:]
 *   dW       dw[co][r]       += sum_{y,x} hsum(dout[co][y][x][:] * in[tap r of (y, x)][:])
 *   dX       din[ci][p][q][:] = sum over the (i, j, co) that read (p, q) of
 *                               w[co][ci][i][j] * dout[co][y][x][:]
 *
 * where r = (ci, i, j) runs over the cpg*kh*kw taps and "tap r of (y, x)" is the input
 * at (ci, y*sh + i*dh, x*sw + j*dw) of the padded plane. Each output vector stays in a
 * register while all its taps are added (register blocks of up to 16 channels, so one
 * loaded input vector feeds up to 16 multiply-adds); the input gradient is gathered per
 * input position rather than scattered, so it is written once. A column's blocks are
 * small and contiguous: they stay in the L1 cache between the transposes and the sums.
 * The forward, input-gradient and bias kernels are in conv_direct_kernels.h, compiled
 * once per vector width; the weight-gradient tiles, which run over every column, here.
 *
 * In training (st_direct_train_*, called by layers.c for st_net_step) the columns can
 * outlive a call: a convolution keeps its input's columns for its backward pass, and two
 * convolutions with a ReLU between them pass the ReLU's output and its gradient to each
 * other in columns, so that only the ends of such a chain go back to samples.
 *
 * Depthwise convolutions with stride 1 do not come here: the entry points hand them to
 * conv_depthwise.c, which works on the planes in place.
 *
 * Threads (when the call is big enough and not already inside a parallel region): the
 * forward pass splits the columns, each being independent, or, when they cannot be shared
 * evenly (a batch of 8 is one column), the (column, channel block) pairs;
 * a backward pass of one part splits its steps likewise (columns, channel blocks, weight
 * tiles, bias channels: each output is one piece's). The backward pass cuts the
 * batch into a number of parts fixed by the batch size (one up to 80 samples, two for
 * 100); each part transposes its columns, computes their input gradient and its own
 * weight and bias sums, and the parts' sums are added in part order; the parts run in
 * parallel, each on the data it transposed itself (splitting the weight-gradient sums
 * any other way makes each thread read the other's data, measured slower than one
 * thread). No sum is split between threads in a way that depends on their number, so
 * the result is the same for every thread count. The pieces are handed out dynamically:
 * on a shared machine a thread that loses its core does not hold up the others' share.
 */
#include "kernels.h"
#include "conv_depthwise.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE__)
#include <xmmintrin.h>
#endif

/* ---------------------------------------------------------------- vectors
 * VL lanes in a full column: 16 with AVX-512, 8 with AVX, else 4 (portable code; simd.h).
 * UNROLL unrolls the loops over a register block; GCC unrolls the weight-gradient tile by
 * itself and spills when forced. */
#include "simd.h"
#if defined(__clang__)
#define UNROLL_TILE _Pragma("unroll")
#else
#define UNROLL_TILE
#endif

/* Vectors of 4, 8 and 16 floats, and halving them for horizontal sums. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
INLINE float hsum4(v4f v) { return (v[0] + v[2]) + (v[1] + v[3]); }
#if VL >= 8
typedef float v8f __attribute__((vector_size(32)));
INLINE v4f fold8(v8f v) {
    v4f lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (char *)&v + sizeof lo, sizeof hi);
    return lo + hi;
}
#endif
#if VL >= 16
typedef float v16f __attribute__((vector_size(64)));
INLINE v8f fold16(v16f v) {
    v8f lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (char *)&v + sizeof lo, sizeof hi);
    return lo + hi;
}
#endif

/* the lanes' sum of a full-width vector, as a fixed tree */
#if VL == 16
#define hsum_full(v) hsum4(fold8(fold16((v16f)(v))))
#elif VL == 8
#define hsum_full(v) hsum4(fold8((v8f)(v)))
#else
#define hsum_full(v) hsum4((v4f)(v))
#endif

/* ---------------------------------------------------------------- register blocks
 * Sized to the vector registers there are: 32 with AVX-512, else 16 (a block's
 * accumulators plus the loaded and broadcast operands must fit). MAXB: channels per
 * forward / input-gradient block. DW_TILES: the weight-gradient tile shapes (channels x
 * taps) compiled; plan() picks the one with least work, counting padding to whole tiles
 * and a load as half a multiply-add. */
#define MAXK 1024  /* taps per output (cpg*kh*kw) the direct path takes */
#define MAXT 8     /* channels or taps per side of a weight-gradient tile */
#if defined(__AVX512F__)
#define MAXB 16
#define BLOCK_SIZES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16)
#define DW_TILES(X) X(5, 5) X(4, 6) X(6, 4) X(3, 8) X(5, 3) X(3, 5) X(4, 4) X(2, 8) X(8, 2) X(2, 4) X(4, 2) X(1, 8) X(8, 1) X(1, 1)
#else
#define MAXB 12
#define BLOCK_SIZES(X) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12)
#define DW_TILES(X) X(3, 4) X(4, 3) X(2, 6) X(6, 2) X(3, 3) X(2, 4) X(4, 2) X(2, 2) X(1, 6) X(6, 1) X(1, 1)
#endif

static const int dw_shapes[][2] = {
#define X(C, R) {C, R},
    DW_TILES(X)
#undef X
};
#define N_DW_SHAPES ((int)(sizeof dw_shapes / sizeof dw_shapes[0]))

/* ---------------------------------------------------------------- the plan */
typedef struct {
    const st_conv_geom *g;
    int n, nfull, tw;    /* batch, full columns (VL lanes), lanes of the last partial column (0: none) */
    int ncol, nparts;    /* columns (nfull, plus one if tw > 0), parts of the batch in the backward pass */
    int cpg, opg, K, T;  /* channels per group in and out, taps cpg*kh*kw, kh*kw */
    int hp, wp, P;       /* padded input plane, output positions oh*ow */
    size_t xrows, yrows, dxrows; /* rows (channel x position) of a column block of the input
                                    (cin, hp, wp), output (cout, oh, ow), input grad (cin, ih, iw) */
    int cob, nob;        /* forward: output channels per block, blocks per group */
    int cib, nib;        /* input gradient: input channels per block, blocks per group */
    int dcb, drb, dvar;  /* weight gradient: tile of dcb channels x drb taps (variant) */
    size_t lanes;        /* nfull * VL + tw: a buffer holds rows x lanes floats */
    size_t wks, parts;   /* floats of packed weights; of partial gradients per part */
} dplan;

static size_t round16(size_t v) { return (v + 15) & ~(size_t)15; }

/* blocks of at most MAXB, as even as possible: returns the block size, *nblocks */
static int split_blocks(int total, int *nblocks) {
    *nblocks = (total + MAXB - 1) / MAXB;
    return (total + *nblocks - 1) / *nblocks;
}

/* (the weight-gradient tile is chosen only for a backward pass: the sizes do not need it,
 * and small layers call for sizes several times a step) */
static void plan(dplan *d, const st_conv_geom *g, int n, int backward) {
    memset(d, 0, sizeof *d);
    d->g = g;
    d->n = n;
    d->nfull = n / VL;
    int rest = n % VL;
    d->tw = rest == 0 ? 0 : rest <= 4 ? 4 : rest <= 8 ? 8 : VL;
    d->ncol = d->nfull + (rest > 0);
    d->lanes = (size_t)d->nfull * VL + d->tw;
    /* parts: a power of two, one per 3 to 8 columns from 6 columns up (a batch of 100:
     * two); one part costs a pass of the weight-gradient epilogues and its sums */
    d->nparts = d->ncol < 6 ? 1 : d->ncol < 16 ? 2 : d->ncol < 32 ? 4 : 8;
    d->cpg = g->cin / g->groups;
    d->opg = g->cout / g->groups;
    d->T = g->kh * g->kw;
    d->K = d->cpg * d->T;
    d->hp = g->ih + g->pt + g->pb;
    d->wp = g->iw + g->pl + g->pr;
    d->P = g->oh * g->ow;
    d->xrows = (size_t)g->cin * d->hp * d->wp;
    d->yrows = (size_t)g->cout * d->P;
    d->dxrows = (size_t)g->cin * g->ih * g->iw;
    d->cob = split_blocks(d->opg, &d->nob);
    d->cib = split_blocks(d->cpg, &d->nib);
    double best = 0;
    for (int v = 0; v < (backward ? N_DW_SHAPES : 0); v++) {
        int c = dw_shapes[v][0], r = dw_shapes[v][1];
        double padded = (double)((d->opg + c - 1) / c * c) * ((d->K + r - 1) / r * r);
        double cost = padded * (1.0 + 0.5 * (c + r) / (c * r));
        if (v == 0 || cost < best) { best = cost; d->dcb = c; d->drb = r; d->dvar = v; }
    }
    size_t wf = (size_t)g->groups * d->nob * (d->K + 1) * d->cob;     /* forward packing */
    size_t wb = (size_t)g->groups * d->nib * d->T * d->opg * d->cib;  /* input-gradient packing */
    d->wks = round16(wf > wb ? wf : wb);
    d->parts = d->nparts > 1 ? round16((size_t)g->cout * (d->K + 1)) : 0;
}

/* column col: first sample, lanes */
static int col_start(int col) { return col * VL; }
static int col_width(const dplan *d, int col) { return col < d->nfull ? VL : d->tw; }
/* first column of part p */
static int part_begin(const dplan *d, int p) { return (int)((long)d->ncol * p / d->nparts); }

int st_direct_possible(const st_conv_geom *g, int n) {
    if (n <= 0) return 0;
    if (st_depthwise_ok(g)) return 1;
    size_t rows = (size_t)g->cin * (g->ih + g->pt + g->pb) * (g->iw + g->pl + g->pr);
    return (size_t)(g->cin / g->groups) * g->kh * g->kw <= MAXK && rows < INT_MAX / 16;
}

int st_direct_preferred(const st_conv_geom *g, int n) { return n > 0 && st_depthwise_ok(g); }

int st_conv_direct_fused(const st_conv_geom *g, int n) { return st_conv_path_is_direct(g, n) && !st_depthwise_ok(g); }

size_t st_direct_work_size(const st_conv_geom *g, int n) {
    if (st_depthwise_ok(g)) return st_depthwise_work_size(g, n);
    dplan d;
    plan(&d, g, n, 0);
    /* input, output and input-gradient columns, packed weights, the parts' sums, and
     * room to align the start to 64 bytes */
    return (d.xrows + d.yrows + d.dxrows) * d.lanes + d.wks + (size_t)d.nparts * d.parts + 16;
}

static float *align64(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* Threads pay off only with enough work per call: below this many multiply-adds
 * (forward, per call) the fork and join cost more than they save on two cores.
 * Inside a parallel region (the network's batch shards) the call runs serially. */
#ifndef PAR_MIN_MACS
#define PAR_MIN_MACS 200000.0
#endif

static int use_threads(const dplan *d) {
#ifdef _OPENMP
    const st_conv_geom *g = d->g;
    double macs = (double)d->lanes * g->cout * d->P * d->K;
    return macs >= PAR_MIN_MACS && st_get_threads() > 1 && !omp_in_parallel();
#else
    (void)d;
    return 0;
#endif
}

/* ---------------------------------------------------------------- layout changes
 * Both directions are transposes between sample rows (n, F) and a column block (F rows
 * of `w` lanes), done in 8 x 8 tiles with AVX (128-bit halves of four rows are loaded
 * into the two lanes of 256-bit registers and an in-lane 4 x 4 transpose finishes the
 * job: 16 shuffles per 64 values), else, and for 4-lane columns, in 4 x 4 tiles.
 *
 * Two ReLU steps of training ride along (st_direct_train_forward, _backward):
 * towards samples, a second destination receives max(v, 0) (as st_act_forward: v < 0 ?
 * 0 : v); towards columns, a mask with the source's layout (the ReLU's output y) lets
 * through only the values where y > 0 (as st_act_backward: y > 0 ? dy : 0). */

static const float zeros[8];

/* four values of a source row, where the mask row (if any) is > 0, else 0 */
#if defined(__SSE__)
INLINE __m128 load4m(const float *p, const float *m) {
    __m128 v = _mm_loadu_ps(p);
    return m ? _mm_and_ps(v, _mm_cmpgt_ps(_mm_loadu_ps(m), _mm_setzero_ps())) : v;
}
#endif

/* the t source rows of a tile and their mask rows (NULL without a mask); rows past ns
 * read zeros */
INLINE void source_rows(const float **row, const float **mrow, int t, const float *src, const float *mask, size_t ls,
                        int ns) {
    for (int s = 0; s < t; s++) {
        row[s] = s < ns ? src + s * ls : zeros;
        mrow[s] = !mask ? NULL : s < ns ? mask + s * ls : zeros;
    }
}

/* How a transpose stores a value v at dst: dst = v, dst += v, dst = max(v, 0). */
enum { PUT = 0, ADD = 1, RELU = 2 };

/* dst[k * ld + s] (op)= src[s * ls + k] for s, k < 8, where source rows s >= ns read as
 * zeros and only the destination rows k < nk are written; mask (or NULL) has src's
 * layout; relu (or NULL, only with PUT) receives max(value, 0) at dst's offsets. */
#if defined(__AVX__)
INLINE void tile8(float *dst, size_t ld, const float *src, size_t ls, int ns, int nk, int op, const float *mask,
                  float *relu) {
    const float *row[8], *mrow[8];
    source_rows(row, mrow, 8, src, mask, ls, ns);
    __m256 r[8], t[4], o[8];
    for (int i = 0; i < 4; i++)
        for (int h = 0; h < 2; h++) /* r[4h + i]: rows i and i + 4, values 4h..4h+3 */
            r[4 * h + i] = _mm256_insertf128_ps(
                _mm256_castps128_ps256(load4m(row[i] + 4 * h, mask ? mrow[i] + 4 * h : NULL)),
                load4m(row[i + 4] + 4 * h, mask ? mrow[i + 4] + 4 * h : NULL), 1);
    for (int h = 0; h < 2; h++) {
        t[0] = _mm256_unpacklo_ps(r[4 * h], r[4 * h + 1]);
        t[1] = _mm256_unpackhi_ps(r[4 * h], r[4 * h + 1]);
        t[2] = _mm256_unpacklo_ps(r[4 * h + 2], r[4 * h + 3]);
        t[3] = _mm256_unpackhi_ps(r[4 * h + 2], r[4 * h + 3]);
        o[4 * h + 0] = _mm256_shuffle_ps(t[0], t[2], 0x44);
        o[4 * h + 1] = _mm256_shuffle_ps(t[0], t[2], 0xee);
        o[4 * h + 2] = _mm256_shuffle_ps(t[1], t[3], 0x44);
        o[4 * h + 3] = _mm256_shuffle_ps(t[1], t[3], 0xee);
    }
    for (int k = 0; k < 8; k++)
        if (k < nk) {
            float *d = dst + k * ld;
            _mm256_storeu_ps(d, op == ADD    ? _mm256_add_ps(_mm256_loadu_ps(d), o[k])
                                : op == RELU ? _mm256_max_ps(_mm256_setzero_ps(), o[k])
                                             : o[k]);
            if (relu) _mm256_storeu_ps(relu + k * ld, _mm256_max_ps(_mm256_setzero_ps(), o[k]));
        }
}
#endif

/* The same for 4 x 4. */
INLINE void tile4(float *dst, size_t ld, const float *src, size_t ls, int ns, int nk, int op, const float *mask,
                  float *relu) {
    const float *row[4], *mrow[4];
    source_rows(row, mrow, 4, src, mask, ls, ns);
#if defined(__SSE__)
    __m128 r0 = load4m(row[0], mrow[0]), r1 = load4m(row[1], mrow[1]), r2 = load4m(row[2], mrow[2]),
           r3 = load4m(row[3], mrow[3]);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    __m128 o[4] = {r0, r1, r2, r3};
    for (int k = 0; k < 4; k++)
        if (k < nk) {
            float *d = dst + k * ld;
            _mm_storeu_ps(d, op == ADD    ? _mm_add_ps(_mm_loadu_ps(d), o[k])
                             : op == RELU ? _mm_max_ps(_mm_setzero_ps(), o[k])
                                          : o[k]);
            if (relu) _mm_storeu_ps(relu + k * ld, _mm_max_ps(_mm_setzero_ps(), o[k]));
        }
#else
    for (int k = 0; k < nk; k++)
        for (int s = 0; s < 4; s++) {
            float v = mask && !(mrow[s][k] > 0) ? 0.0f : row[s][k];
            dst[k * ld + s] = op == ADD ? dst[k * ld + s] + v : op == RELU && v < 0 ? 0.0f : v;
            if (relu) relu[k * ld + s] = v < 0 ? 0.0f : v;
        }
#endif
}

/* The general case, elementwise: source rows s < ns, values k < nk; destination lanes
 * s < nw (with nw >= ns: lanes past ns receive zeros). */
static void tile_edge(float *dst, size_t ld, const float *src, size_t ls, int ns, int nk, int nw, int op,
                      const float *mask, float *relu) {
    for (int k = 0; k < nk; k++)
        for (int s = 0; s < nw; s++) {
            float v = s < ns && (!mask || mask[s * ls + k] > 0) ? src[s * ls + k] : 0.0f;
            dst[k * ld + s] = op == ADD ? dst[k * ld + s] + v : op == RELU && v < 0 ? 0.0f : v;
            if (relu) relu[k * ld + s] = v < 0 ? 0.0f : v;
        }
}

/* tile size for a column of w lanes */
static int tile_size(int w) {
#if defined(__AVX__)
    return w >= 8 ? 8 : 4;
#else
    (void)w;
    return 4;
#endif
}

/* `len` rows of a column block of w lanes (row stride w) from the first ns rows of src
 * (stride ls), values 0..len-1; lanes past ns become zeros. mask: NULL or src's layout. */
static void segment_to_column(float *dst, int w, const float *src, size_t ls, int ns, int len, const float *mask) {
    int tsz = tile_size(w);
    for (int h = 0; h < w; h += tsz) {
        int nh = ns - h < 0 ? 0 : ns - h < tsz ? ns - h : tsz; /* samples in this part */
        const float *sp = src + (size_t)h * ls, *mp = mask ? mask + (size_t)h * ls : NULL;
        float *dp = dst + h;
        int k0 = 0;
#if defined(__AVX__)
        if (tsz == 8) {
            if (mp)
                for (; k0 + 8 <= len; k0 += 8) tile8(dp + (size_t)k0 * w, w, sp + k0, ls, nh, 8, PUT, mp + k0, NULL);
            else
                for (; k0 + 8 <= len; k0 += 8) tile8(dp + (size_t)k0 * w, w, sp + k0, ls, nh, 8, PUT, NULL, NULL);
        }
#endif
        if (tsz == 4)
            for (; k0 + 4 <= len; k0 += 4) tile4(dp + (size_t)k0 * w, w, sp + k0, ls, nh, 4, PUT, mp ? mp + k0 : NULL, NULL);
        if (k0 < len) tile_edge(dp + (size_t)k0 * w, w, sp + k0, ls, nh, len - k0, tsz, PUT, mp ? mp + k0 : NULL, NULL);
    }
}

/* The channels [c0, c1) of the column block dst (C, hp, wp, w lanes) of samples
 * s0..s0+w-1 of src (n, C, H, W), the plane placed at (pt, pl) in the zero-padded one;
 * samples >= n become zeros. mask: NULL, or (n, C, H, W) like src: where it is not > 0
 * the value becomes 0. */
static void to_columns(float *dst, int w, const float *src, int n, int s0, int C, int H, int W,
                       int hp, int wp, int pt, int pl, const float *mask, int c0, int c1) {
    int ns = n - s0 < w ? n - s0 : w;
    size_t F = (size_t)C * H * W, at0 = (size_t)c0 * H * W;
    src += (size_t)s0 * F;
    if (mask) mask += (size_t)s0 * F;
    if (hp == H && wp == W) { /* no padding: one segment of rows */
        segment_to_column(dst + at0 * w, w, src + at0, F, ns, (int)((size_t)(c1 - c0) * H * W), mask ? mask + at0 : NULL);
        return;
    }
    for (int c = c0; c < c1; c++)
        for (int y = 0; y < hp; y++) {
            float *row = dst + ((size_t)c * hp + y) * wp * w;
            if (y < pt || y >= pt + H) { /* a border row */
                memset(row, 0, sizeof(float) * wp * w);
                continue;
            }
            memset(row, 0, sizeof(float) * pl * w);
            memset(row + (size_t)(pl + W) * w, 0, sizeof(float) * (wp - pl - W) * w);
            size_t at = ((size_t)c * H + y - pt) * W;
            segment_to_column(row + (size_t)pl * w, w, src + at, F, ns, W, mask ? mask + at : NULL);
        }
}

/* The rows [r0, r1) of a column block src (F rows of w lanes) back to samples s0.. of
 * dst (n, F): dst (op)= it; relu (NULL, or like dst, only with PUT) = max(it, 0). */
static void from_columns(float *dst, const float *src, int w, int n, int s0, int F, int op, float *relu, int r0,
                         int r1) {
    int ns = n - s0 < w ? n - s0 : w;
    int tsz = tile_size(w);
    dst += (size_t)s0 * F;
    if (relu) relu += (size_t)s0 * F;
    for (int h = 0; h < ns; h += tsz) {
        int nh = ns - h < tsz ? ns - h : tsz; /* samples in this part */
        const float *sp = src + h;
        float *dp = dst + (size_t)h * F, *rp = relu ? relu + (size_t)h * F : NULL;
        int f0 = r0;
#if defined(__AVX__)
        if (tsz == 8) {
            if (rp)
                for (; f0 + 8 <= r1; f0 += 8) tile8(dp + f0, (size_t)F, sp + (size_t)f0 * w, w, 8, nh, PUT, NULL, rp + f0);
            else
                for (; f0 + 8 <= r1; f0 += 8) tile8(dp + f0, (size_t)F, sp + (size_t)f0 * w, w, 8, nh, op, NULL, NULL);
        }
#endif
        if (tsz == 4)
            for (; f0 + 4 <= r1; f0 += 4)
                tile4(dp + f0, (size_t)F, sp + (size_t)f0 * w, w, 4, nh, op, NULL, rp ? rp + f0 : NULL);
        if (f0 < r1)
            tile_edge(dp + f0, (size_t)F, sp + (size_t)f0 * w, w, r1 - f0, nh, r1 - f0, op, NULL, rp ? rp + f0 : NULL);
    }
}

/* ---------------------------------------------------------------- from one convolution to the next
 * In training (layers.c), where a convolution A feeds a ReLU whose only reader is a
 * convolution B that runs here too, A's output need not go back to samples: A's forward
 * writes max(out, 0) straight into B's input columns, and B's backward hands its input
 * gradient, masked where B's input (the ReLU's output) is not > 0, to A as A's dL/dout
 * columns. The rows of B's input gradient, (cin, ih, iw), are those of A's output
 * (cout, oh, ow); B's input block adds the zero border (hp, wp); the columns themselves
 * depend on the batch only, so both convolutions cut it alike. The values are those of
 * the transposes they replace (max and mask as in tile8 and to_columns). */

/* dst = max(src, 0) (as tile8: NaN and -0 pass) for `rows` rows of w lanes (a multiple
 * of 4), of which lanes ns.. become 0 (a partial column's unused lanes) */
typedef float v16u __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16iu __attribute__((vector_size(64), aligned(4)));
static void relu_copy(float *restrict dst, const float *restrict src, size_t rows, int w, int ns) {
    size_t len = rows * w, k = 0;
    if (ns == w) /* 16 at a time (vector types that GCC splits where registers are narrower) */
        for (; k + 16 <= len; k += 16) {
            v16u v = *(const v16u *)(src + k);
            *(v16u *)(dst + k) = (v16u)((v16iu)v & ~(v16iu)(v < 0)); /* (all ones where v < 0) */
        }
    v4i keep[VL / 4]; /* per group of 4 lanes: all ones for the lanes below ns */
    for (int q = 0; q < w / 4; q++)
        for (int l = 0; l < 4; l++) keep[q][l] = 4 * q + l < ns ? -1 : 0;
    for (; k < len; k += w) /* (k is a whole number of rows: w divides 16) */
        for (int q = 0; q < w / 4; q++) {
            v4f v;
            memcpy(&v, src + k + 4 * q, sizeof v);
            v = (v4f)((v4i)v & ~(v4i)(v < 0) & keep[q]);
            memcpy(dst + k + 4 * q, &v, sizeof v);
        }
}

/* dx = 0 where x is not > 0 (as to_columns' mask), for len values, len a multiple of 4 */
static void mask_copy(float *restrict dx, const float *restrict x, size_t len) {
    size_t k = 0;
    for (; k + 16 <= len; k += 16) {
        v16u v = *(const v16u *)(x + k), g = *(const v16u *)(dx + k);
        *(v16u *)(dx + k) = (v16u)((v16iu)g & (v16iu)(v > 0));
    }
    for (; k < len; k += 4) {
        v4f v, g;
        memcpy(&v, x + k, sizeof v);
        memcpy(&g, dx + k, sizeof g);
        g = (v4f)((v4i)g & (v4i)(v > 0));
        memcpy(dx + k, &g, sizeof g);
    }
}

/* A's output block yt (B's input rows without the border; w lanes, the first ns samples)
 * into B's input block xt: max(v, 0), zeros in the border and in the lanes past ns. */
static void relu_to_next(float *xt, const dplan *b, const float *yt, int w, int ns) {
    const st_conv_geom *g = b->g;
    if (b->hp == g->ih && b->wp == g->iw) { /* no border: one run of rows */
        relu_copy(xt, yt, b->xrows, w, ns);
        return;
    }
    for (int c = 0; c < g->cin; c++)
        for (int y = 0; y < b->hp; y++) {
            float *row = xt + ((size_t)c * b->hp + y) * b->wp * w;
            if (y < g->pt || y >= g->pt + g->ih) { /* a border row */
                memset(row, 0, sizeof(float) * b->wp * w);
                continue;
            }
            memset(row, 0, sizeof(float) * g->pl * w);
            memset(row + (size_t)(g->pl + g->iw) * w, 0, sizeof(float) * (b->wp - g->pl - g->iw) * w);
            const float *src = yt + ((size_t)c * g->ih + y - g->pt) * g->iw * w;
            float *dst = row + (size_t)g->pl * w;
            relu_copy(dst, src, g->iw, w, ns);
        }
}

/* B's input-gradient block dx (rows (cin, ih, iw), w lanes), in place: 0 where B's input
 * block xt (rows (cin, hp, wp)) is not > 0. */
static void mask_by_input(float *dx, const dplan *b, const float *xt, int w) {
    const st_conv_geom *g = b->g;
    if (b->hp == g->ih && b->wp == g->iw) { /* no border: one run of rows */
        mask_copy(dx, xt, b->xrows * w);
        return;
    }
    for (int c = 0; c < g->cin; c++)
        for (int y = 0; y < g->ih; y++) {
            float *dr = dx + ((size_t)c * g->ih + y) * g->iw * w;
            const float *xr = xt + (((size_t)c * b->hp + y + g->pt) * b->wp + g->pl) * w;
            mask_copy(dr, xr, (size_t)g->iw * w);
        }
}

/* ---------------------------------------------------------------- weight packing */

/* wk[grp][blk]: cob biases, then K rows of cob weights: [r][c] = w[co0 + c][r]
 * (zeros for channels past the group's end). */
static void pack_forward(float *wk, const float *w, const float *b, const dplan *d) {
    const st_conv_geom *g = d->g;
    for (int grp = 0; grp < g->groups; grp++)
        for (int blk = 0; blk < d->nob; blk++) {
            float *p = wk + ((size_t)grp * d->nob + blk) * (d->K + 1) * d->cob;
            int co0 = grp * d->opg + blk * d->cob;
            int nc = d->opg - blk * d->cob < d->cob ? d->opg - blk * d->cob : d->cob;
            for (int c = 0; c < d->cob; c++) p[c] = b && c < nc ? b[co0 + c] : 0.0f;
            for (int r = 0; r < d->K; r++)
                for (int c = 0; c < d->cob; c++)
                    p[d->cob * (1 + r) + c] = c < nc ? w[(size_t)(co0 + c) * d->K + r] : 0.0f;
        }
}

/* wk[grp][blk]: T x opg rows of cib weights: [t][co][c] = w[co][ci0 + c][t] (zeros for
 * channels past the group's end). */
static void pack_input_grad(float *wk, const float *w, const dplan *d) {
    const st_conv_geom *g = d->g;
    size_t ts = (size_t)d->opg * d->cib; /* one tap's rows */
    if (d->cpg % d->cib) /* a short last block: its padding must be zero */
        memset(wk, 0, sizeof(float) * g->groups * d->nib * d->T * ts);
    for (int grp = 0; grp < g->groups; grp++)
        for (int blk = 0; blk < d->nib; blk++) {
            int ci0 = blk * d->cib, nc = d->cpg - ci0 < d->cib ? d->cpg - ci0 : d->cib;
            float *p = wk + ((size_t)grp * d->nib + blk) * d->T * ts;
            const float *src = w + ((size_t)grp * d->opg * d->cpg + ci0) * d->T;
            for (int t = 0; t < d->T; t++)
                for (int co = 0; co < d->opg; co++)
                    for (int c = 0; c < nc; c++)
                        p[t * ts + (size_t)co * d->cib + c] = src[((size_t)co * d->cpg + c) * d->T + t];
        }
}

/* tap offsets: toff[r] for r = (ci, i, j) is the row of that tap relative to the input
 * position (0, y*sh, x*sw) in a column block (times the lanes, the offset in floats) */
static void tap_offsets(int *toff, const dplan *d) {
    const st_conv_geom *g = d->g;
    for (int ci = 0; ci < d->cpg; ci++)
        for (int i = 0; i < g->kh; i++)
            for (int j = 0; j < g->kw; j++)
                *toff++ = (int)(((size_t)ci * d->hp + i * g->dh) * d->wp + j * g->dw);
}

/* ---------------------------------------------------------------- kernels
 * One set per vector width: VL for the full columns, 8 and 4 for a last, partial one. */
typedef void (*fwd_fn)(const dplan *, const int *, float *, const float *, const float *, int);
typedef void (*dx_fn)(const dplan *, float *, const float *, const float *, int);
typedef void (*db_fn)(const dplan *, float *, const float *, int, int, size_t);
typedef struct {
    const fwd_fn *fwd; /* [block size] */
    const dx_fn *dx;   /* [block size] */
    db_fn db;
} kernel_set;

#define VW VL
#include "conv_direct_kernels.h"
#undef VW
#if VL > 8
#define VW 8
#include "conv_direct_kernels.h"
#undef VW
#endif
#if VL > 4
#define VW 4
#include "conv_direct_kernels.h"
#undef VW
#endif

static const kernel_set *kernels_for(int w) {
#if VL > 8
    if (w == 8) return &kernels_8;
#endif
#if VL > 4
    if (w == 4) return &kernels_4;
#endif
    (void)w;
#if VL == 16
    return &kernels_16;
#elif VL == 8
    return &kernels_8;
#else
    return &kernels_4;
#endif
}

/* Weight gradient, one tile of CB output channels x RB taps: out[co][r] += hsum(sum
 * over columns, y, x of dout * in). The sum runs first over the partial last column
 * (TWD lanes, 0 if none; its sums are added into the low lanes of the full-width
 * accumulators), then over `ncols` full columns (block strides xblk, yblk), so that
 * every output takes a single horizontal sum. Channels and taps past the tile's real
 * nco x nr repeat the last real one (their sums are dropped). gt, xt (gtail, xtail):
 * the group's first channels in the first full (the partial) column; out: the group's
 * (opg x K) block of sums. */
typedef float vfu __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
#if VL > 4
typedef float v4u __attribute__((vector_size(4 * sizeof(float)), aligned(4)));
#endif
#if VL > 8
typedef float v8u __attribute__((vector_size(8 * sizeof(float)), aligned(4)));
#endif

/* a 4- or 8-lane vector as the low lanes of a full one, the rest zero */
#if VL == 16
INLINE vfu widen4(v4u x) { return (vfu)_mm512_insertf32x4(_mm512_setzero_ps(), (__m128)x, 0); }
INLINE vfu widen8(v8u x) {
    return (vfu)_mm512_castpd_ps(_mm512_insertf64x4(_mm512_setzero_pd(), _mm256_castps_pd((__m256)x), 0));
}
#elif VL == 8
INLINE vfu widen4(v4u x) { return (vfu)_mm256_insertf128_ps(_mm256_setzero_ps(), (__m128)x, 0); }
#endif

/* Keeps a loaded vector in a register: without it GCC folds the load into each of the
 * tile's multiply-adds (one load per multiply-add instead of one per tap). */
#if defined(__GNUC__) && (defined(__AVX__) || defined(__SSE__))
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define IN_REGISTER(v) (void)0
#endif

#define DW_TAIL(TV, TW)                                                                        \
    do {                                                                                       \
        TV tacc[MAXT][MAXT];                                                                   \
        UNROLL_TILE for (int c = 0; c < CB; c++)                                                        \
            for (int r = 0; r < RB; r++) tacc[c][r] = (TV){0};                                 \
        for (int y = 0; y < g->oh; y++)                                                        \
            for (int x = 0; x < g->ow; x++) {                                                  \
                const float *xb = xtail + ((size_t)y * g->sh * d->wp + (size_t)x * g->sw) * TW; \
                size_t go = (size_t)(y * g->ow + x) * TW;                                      \
                TV gv[MAXT];                                                                   \
                for (int c = 0; c < CB; c++) gv[c] = *(const TV *)(gtail + gofs[c] * TW + go); \
                for (int r = 0; r < RB; r++) {                                                 \
                    TV xv = *(const TV *)(xb + xo[r] * TW);                                    \
                    IN_REGISTER(xv);                                                           \
                    for (int c = 0; c < CB; c++) tacc[c][r] += gv[c] * xv;                     \
                }                                                                              \
            }                                                                                  \
        UNROLL_TILE for (int c = 0; c < CB; c++)                                                        \
            for (int r = 0; r < RB; r++) acc[c][r] = widen##TW(tacc[c][r]);                    \
    } while (0)

INLINE void dw_tile(const int CB, const int RB, const int TWD, const dplan *d, const int *toff, float *out,
                    const float *gt, const float *xt, int ncols, size_t xblk, size_t yblk,
                    const float *gtail, const float *xtail, int co0, int nco, int r0, int nr) {
    const st_conv_geom *g = d->g;
    (void)TWD, (void)gtail, (void)xtail; /* (unused when VL is 4: no narrower columns) */
    size_t gofs[MAXT], xo[MAXT]; /* row offsets of the tile's channels in dout, taps in in */
    UNROLL_TILE
    for (int c = 0; c < CB; c++) gofs[c] = (size_t)(co0 + (c < nco ? c : nco - 1)) * d->P;
    UNROLL_TILE
    for (int r = 0; r < RB; r++) xo[r] = (size_t)toff[r0 + (r < nr ? r : nr - 1)];
    vfu acc[MAXT][MAXT];
#if VL > 4
    if (TWD == 4) DW_TAIL(v4u, 4);
    else
#endif
#if VL > 8
    if (TWD == 8) DW_TAIL(v8u, 8);
    else
#endif
        UNROLL_TILE
        for (int c = 0; c < CB; c++)
            UNROLL_TILE
            for (int r = 0; r < RB; r++) acc[c][r] = (vfu){0};
    for (int col = 0; col < ncols; col++) {
        const float *xc = xt + col * xblk, *gc = gt + col * yblk;
        for (int y = 0; y < g->oh; y++)
            for (int x = 0; x < g->ow; x++) {
                const float *xb = xc + ((size_t)y * g->sh * d->wp + (size_t)x * g->sw) * VL;
                size_t go = (size_t)(y * g->ow + x) * VL;
                vfu gv[MAXT];
                UNROLL_TILE
                for (int c = 0; c < CB; c++) gv[c] = *(const vfu *)(gc + gofs[c] * VL + go);
                UNROLL_TILE
                for (int r = 0; r < RB; r++) {
                    vfu xv = *(const vfu *)(xb + xo[r] * VL);
                    IN_REGISTER(xv);
                    UNROLL_TILE
                    for (int c = 0; c < CB; c++) acc[c][r] += gv[c] * xv;
                }
            }
    }
    UNROLL_TILE
    for (int c = 0; c < CB; c++)
        UNROLL_TILE
        for (int r = 0; r < RB; r++)
            if (c < nco && r < nr) out[(size_t)(co0 + c) * d->K + r0 + r] += hsum_full(acc[c][r]);
}

/* the table: dw_fns[tail][v] for the tile shapes of DW_TILES and a partial column of
 * none, 4 or 8 lanes (tail 0, 1, 2) */
typedef void (*dw_fn)(const dplan *, const int *, float *, const float *, const float *, int, size_t, size_t,
                      const float *, const float *, int, int, int, int);
#define DW_FN(C, R, T)                                                                                   \
    static void dw_##C##x##R##_##T(const dplan *d, const int *t, float *dw, const float *gy, const float *x, \
                                   int ncols, size_t xblk, size_t yblk, const float *gtail,               \
                                   const float *xtail, int co0, int nco, int r0, int nr) {                \
        dw_tile(C, R, T, d, t, dw, gy, x, ncols, xblk, yblk, gtail, xtail, co0, nco, r0, nr);             \
    }
#define X(C, R) DW_FN(C, R, 0) DW_FN(C, R, 4) DW_FN(C, R, 8)
DW_TILES(X)
#undef X
#define X(C, R) dw_##C##x##R##_0,
#define Y(C, R) dw_##C##x##R##_4,
#define Z(C, R) dw_##C##x##R##_8,
static const dw_fn dw_fns[3][N_DW_SHAPES] = {{DW_TILES(X)}, {DW_TILES(Y)}, {DW_TILES(Z)}};
#undef X
#undef Y
#undef Z

/* ---------------------------------------------------------------- one column, one part */

/* What a forward or backward call works on. */
typedef struct {
    const dplan *d;
    const int *toff;
    float *xt, *yt, *dxt;  /* column buffers: input, output or dL/dout, dL/din */
    const float *wk;       /* packed weights */
    float *dw, *db;        /* backward: gradients to add to */
    float *partial;        /* backward, several parts: per part, dw (cout x K) then db (cout) */
    const float *in, *dout;
    float *out, *din;
    float *relu;           /* forward: also max(out, 0) here (NULL: no) */
    const dplan *next;     /* forward: or max(out, 0) into the next convolution's input columns */
    float *next_xt;        /*   (its input block, the plan's lanes) */
    const float *mask;     /* backward: dout counts only where this ReLU output is > 0 (NULL: all) */
    int din_add;           /* backward: din += (1) or = (0) the input gradient */
    int dx_masked;         /* backward: or dxt (the previous convolution's) masked by the input > 0 */
    int xt_ready;          /* xt holds the input's columns already (forward's, or the previous convolution's) */
    int yt_ready;          /* backward: yt holds dL/dout in columns already (the next convolution's) */
} dctx;

/* Forward of column col, in three steps: its input into a column block, the kernel for
 * each block of output channels (u = grp * nob + blk), its output back to samples. */
/* Piece q of np of a range of count items: [piece_begin(q), piece_begin(q + 1)), in
 * multiples of `unit` (so that row pieces keep whole tiles). Pieces let the layout
 * changes of a batch with fewer columns than threads share the threads. */
static int piece_begin(int count, int q, int np, int unit) {
    if (q >= np) return count;
    int b = (int)((long)(count / unit) * q / np) * unit;
    return b < count ? b : count;
}

static void forward_in(const dctx *c, int col, int q, int np) {
    const dplan *d = c->d;
    const st_conv_geom *g = d->g;
    int s0 = col_start(col);
    if (!c->xt_ready)
        to_columns(c->xt + d->xrows * s0, col_width(d, col), c->in, d->n, s0, g->cin, g->ih, g->iw, d->hp, d->wp,
                   g->pt, g->pl, NULL, piece_begin(g->cin, q, np, 1), piece_begin(g->cin, q + 1, np, 1));
}

static void forward_block(const dctx *c, int col, int u) {
    const dplan *d = c->d;
    int s0 = col_start(col), w = col_width(d, col), grp = u / d->nob, blk = u % d->nob;
    int co0 = grp * d->opg + blk * d->cob;
    int nc = d->opg - blk * d->cob < d->cob ? d->opg - blk * d->cob : d->cob;
    kernels_for(w)->fwd[d->cob](d, c->toff, c->yt + d->yrows * s0 + (size_t)co0 * d->P * w,
                                c->xt + d->xrows * s0 + (size_t)grp * d->cpg * d->hp * d->wp * w,
                                c->wk + (size_t)u * (d->K + 1) * d->cob, nc);
}

/* rows [r0, r1) of column col of the output yt to samples: out = it, relu = max(it, 0)
 * (NULL: not written) */
static void output_to_samples(const dplan *d, int col, const float *yt, float *out, float *relu, int r0, int r1) {
    int s0 = col_start(col), w = col_width(d, col);
    if (out) from_columns(out, yt + d->yrows * s0, w, d->n, s0, (int)d->yrows, PUT, relu, r0, r1);
    else if (relu) from_columns(relu, yt + d->yrows * s0, w, d->n, s0, (int)d->yrows, RELU, NULL, r0, r1);
}

static void forward_out(const dctx *c, int col, int q, int np) {
    const dplan *d = c->d;
    int s0 = col_start(col), w = col_width(d, col), F = (int)d->yrows;
    if (c->next) { /* (st_net_step's linked convolutions: not split) */
        if (q == 0)
            relu_to_next(c->next_xt + c->next->xrows * s0, c->next, c->yt + d->yrows * s0, w,
                         d->n - s0 < w ? d->n - s0 : w);
    } else {
        output_to_samples(d, col, c->yt, c->out, c->relu, piece_begin(F, q, np, 8), piece_begin(F, q + 1, np, 8));
    }
}

static void forward_column(const dctx *c, int col) {
    forward_in(c, col, 0, 1);
    for (int u = 0; u < c->d->g->groups * c->d->nob; u++) forward_block(c, col, u);
    forward_out(c, col, 0, 1);
}

/* Backward, first half, for one column: both operands into column blocks, then the
 * input gradient, transposed back and added to din. */
static void backward_in(const dctx *c, int col, int q, int np) {
    const dplan *d = c->d;
    const st_conv_geom *g = d->g;
    int s0 = col_start(col), w = col_width(d, col);
    if (!c->xt_ready)
        to_columns(c->xt + d->xrows * s0, w, c->in, d->n, s0, g->cin, g->ih, g->iw, d->hp, d->wp, g->pt, g->pl, NULL,
                   piece_begin(g->cin, q, np, 1), piece_begin(g->cin, q + 1, np, 1));
    if (!c->yt_ready)
        to_columns(c->yt + d->yrows * s0, w, c->dout, d->n, s0, g->cout, g->oh, g->ow, g->oh, g->ow, 0, 0, c->mask,
                   piece_begin(g->cout, q, np, 1), piece_begin(g->cout, q + 1, np, 1));
}

/* input-gradient kernel of column col, input-channel block u = grp * nib + blk */
static void backward_block(const dctx *c, int col, int u) {
    const dplan *d = c->d;
    const st_conv_geom *g = d->g;
    int s0 = col_start(col), w = col_width(d, col), grp = u / d->nib, blk = u % d->nib;
    int ci0 = grp * d->cpg + blk * d->cib;
    int nc = d->cpg - blk * d->cib < d->cib ? d->cpg - blk * d->cib : d->cib;
    kernels_for(w)->dx[d->cib](d, c->dxt + d->dxrows * s0 + (size_t)ci0 * g->ih * g->iw * w,
                               c->yt + d->yrows * s0 + (size_t)grp * d->opg * d->P * w,
                               c->wk + (size_t)u * d->T * d->opg * d->cib, nc);
}

static void backward_out(const dctx *c, int col, int q, int np) {
    const dplan *d = c->d;
    int s0 = col_start(col), w = col_width(d, col), F = (int)d->dxrows;
    if (c->dx_masked) { /* (st_net_step's linked convolutions: not split) */
        if (q == 0) mask_by_input(c->dxt + d->dxrows * s0, d, c->xt + d->xrows * s0, w);
    } else {
        from_columns(c->din, c->dxt + d->dxrows * s0, w, d->n, s0, F, c->din_add ? ADD : PUT, NULL,
                     piece_begin(F, q, np, 8), piece_begin(F, q + 1, np, 8));
    }
}

/* the input gradient is wanted (in samples or in the previous convolution's columns) */
static int wants_dx(const dctx *c) { return c->din || c->dx_masked; }

static void backward_column(const dctx *c, int col) {
    backward_in(c, col, 0, 1);
    if (!wants_dx(c)) return;
    for (int u = 0; u < c->d->g->groups * c->d->nib; u++) backward_block(c, col, u);
    backward_out(c, col, 0, 1);
}

/* tiles of the weight gradient per group: channel blocks x tap blocks */
static int tiles_per_group(const dplan *d) {
    return (d->opg + d->dcb - 1) / d->dcb * ((d->K + d->drb - 1) / d->drb);
}

/* Backward, second half: weight-gradient tile t over part p's columns, added to the
 * part's sums (to dw itself when there is one part). */
static void backward_tile(const dctx *c, int p, int t) {
    const dplan *d = c->d;
    int tpg = tiles_per_group(d), rt = (d->K + d->drb - 1) / d->drb;
    int grp = t / tpg, co0 = t % tpg / rt * d->dcb, r0 = t % rt * d->drb;
    int nco = d->opg - co0 < d->dcb ? d->opg - co0 : d->dcb, nr = d->K - r0 < d->drb ? d->K - r0 : d->drb;
    /* the part's full-width columns [c0, cw) (evenly spaced blocks), then maybe a narrower one */
    int c0 = part_begin(d, p), c1 = part_begin(d, p + 1);
    int tail = c1 == d->ncol && d->tw > 0 && d->tw < VL ? d->tw : 0;
    int cw = tail ? c1 - 1 : c1, st = col_start(d->nfull);
    size_t gofs = (size_t)grp * d->opg * d->P, xofs = (size_t)grp * d->cpg * d->hp * d->wp;
    float *out = (d->nparts == 1 ? c->dw : c->partial + p * d->parts) + (size_t)grp * d->opg * d->K;
    dw_fns[tail == 0 ? 0 : tail == 4 ? 1 : 2][d->dvar](
        d, c->toff, out, c->yt + d->yrows * col_start(c0) + gofs * VL, c->xt + d->xrows * col_start(c0) + xofs * VL,
        cw - c0, d->xrows * VL, d->yrows * VL, c->yt + d->yrows * st + gofs * tail,
        c->xt + d->xrows * st + xofs * tail, co0, nco, r0, nr);
}

/* Bias gradient of part p's columns, channels [co0, co1), added to the part's sums. */
static void backward_bias(const dctx *c, int p, int co0, int co1) {
    const dplan *d = c->d;
    int c0 = part_begin(d, p), c1 = part_begin(d, p + 1);
    int tail = c1 == d->ncol && d->tw > 0 && d->tw < VL ? d->tw : 0;
    int cw = tail ? c1 - 1 : c1;
    float *out = d->nparts == 1 ? c->db : c->partial + p * d->parts + (size_t)d->g->cout * d->K;
    float sum[MAXB]; /* per channel: full columns, then the narrow one, then added */
    for (int co = co0; co < co1; co += MAXB) {
        int m = co1 - co < MAXB ? co1 - co : MAXB;
        memset(sum, 0, sizeof sum);
        kernels_for(VL)->db(d, sum, c->yt + d->yrows * col_start(c0) + (size_t)co * d->P * VL, m, cw - c0,
                            d->yrows * VL);
        if (tail) kernels_for(tail)->db(d, sum, c->yt + d->yrows * col_start(d->nfull) + (size_t)co * d->P * tail, m, 1, 0);
        for (int i = 0; i < m; i++) out[co + i] += sum[i];
    }
}

/* All of part p, serially: its columns, its weight-gradient tiles, its bias gradient. */
static void backward_part(const dctx *c, int p) {
    const dplan *d = c->d;
    if (d->nparts > 1) memset(c->partial + p * d->parts, 0, sizeof(float) * d->parts);
    for (int col = part_begin(d, p); col < part_begin(d, p + 1); col++) backward_column(c, col);
    for (int t = 0; t < d->g->groups * tiles_per_group(d); t++) backward_tile(c, p, t);
    if (c->db) backward_bias(c, p, 0, d->g->cout);
}

/* ---------------------------------------------------------------- entry points */

/* The forward pass of c (set up but for the packed weights): threads as the file's
 * header says. */
/* Pieces per column for the layout changes: several only with fewer columns than
 * threads; with a column per thread or more, whole columns keep each thread's data its
 * own (conv1d 64 -> 64 at batch 32, two columns: no difference measured either way). */
static int pieces(const dplan *d, int threads) { return d->ncol < threads ? 2 * threads : 1; }

static void forward_run(dctx *c, const float *w, const float *b, float *wk) {
    const dplan *d = c->d;
    pack_forward(wk, w, b, d);
    c->wk = wk;
    int blocks = d->g->groups * d->nob;
    int nt = st_get_threads();
    if (use_threads(d) && d->ncol < 2 * nt && d->ncol % nt && blocks > 1) {
        /* too few columns to share evenly: the transposes by (column, piece of its rows),
         * the kernels by (column, block); each output is still computed by one kernel call.
         * (The stem of resnet50 at batch 8, one column: its transposes, a third of its
         * time, ran on one thread.) */
        int np = pieces(d, nt);
#pragma omp parallel
        {
#pragma omp for schedule(dynamic)
            for (int u = 0; u < d->ncol * np; u++) forward_in(c, u / np, u % np, np);
#pragma omp for schedule(dynamic)
            for (int u = 0; u < d->ncol * blocks; u++) forward_block(c, u / blocks, u % blocks);
#pragma omp for schedule(dynamic)
            for (int u = 0; u < d->ncol * np; u++) forward_out(c, u / np, u % np, np);
        }
    } else if (use_threads(d)) {
#pragma omp parallel for schedule(dynamic)
        for (int col = 0; col < d->ncol; col++) forward_column(c, col);
    } else {
        for (int col = 0; col < d->ncol; col++) forward_column(c, col);
    }
}

/* The backward pass of c (set up but for the packed weights and the parts' sums). */
static void backward_run(dctx *c, const float *w, float *wk) {
    const dplan *d = c->d;
    const st_conv_geom *g = d->g;
    if (wants_dx(c)) pack_input_grad(wk, w, d);
    c->wk = wk;
    c->partial = wk + d->wks;
    if (d->nparts == 1 && use_threads(d)) {
        /* one part (up to 5 columns) on several threads: the steps of backward_part, each
         * split into pieces with outputs of their own (samples, channel blocks, weight
         * tiles, bias channels), so the arithmetic is that of one thread */
        int blocks = g->groups * d->nib, tiles = g->groups * tiles_per_group(d);
        int np = pieces(d, st_get_threads());
#pragma omp parallel
        {
#pragma omp for schedule(dynamic)
            for (int u = 0; u < d->ncol * np; u++) backward_in(c, u / np, u % np, np);
            if (wants_dx(c)) {
#pragma omp for schedule(dynamic)
                for (int u = 0; u < d->ncol * blocks; u++) backward_block(c, u / blocks, u % blocks);
#pragma omp for schedule(dynamic)
                for (int u = 0; u < d->ncol * np; u++) backward_out(c, u / np, u % np, np);
            }
#pragma omp for schedule(dynamic)
            for (int t = 0; t < tiles; t++) backward_tile(c, 0, t);
            if (c->db) {
#pragma omp for schedule(dynamic)
                for (int co = 0; co < g->cout; co += MAXB) backward_bias(c, 0, co, co + MAXB < g->cout ? co + MAXB : g->cout);
            }
        }
        return;
    }
    if (d->nparts == 1) {
        backward_part(c, 0);
        return;
    }
    /* parts in parallel, each on data it transposed itself; then their sums, added in
     * part order */
    if (use_threads(d)) {
#pragma omp parallel for schedule(dynamic)
        for (int p = 0; p < d->nparts; p++) backward_part(c, p);
    } else {
        for (int p = 0; p < d->nparts; p++) backward_part(c, p);
    }
    size_t nsum = (size_t)g->cout * d->K + (c->db ? g->cout : 0);
    for (int p = 1; p < d->nparts; p++)
        for (size_t i = 0; i < nsum; i++) c->partial[i] += c->partial[p * d->parts + i];
    for (size_t i = 0; i < (size_t)g->cout * d->K; i++) c->dw[i] += c->partial[i];
    if (c->db)
        for (int co = 0; co < g->cout; co++) c->db[co] += c->partial[(size_t)g->cout * d->K + co];
}

/* The workspace: input columns, output columns, input-gradient columns, packed weights,
 * the parts' sums (st_direct_work_size). */
static float *work_xt(float *work) { return align64(work); }
static float *work_yt(const dplan *d, float *work) { return work_xt(work) + d->xrows * d->lanes; }
static float *work_dxt(const dplan *d, float *work) { return work_yt(d, work) + d->yrows * d->lanes; }
static float *work_wk(const dplan *d, float *work) { return work_dxt(d, work) + d->dxrows * d->lanes; }

void st_direct_forward(float *out, const float *in, const float *w, const float *b, int n,
                       const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    if (st_depthwise_ok(g)) {
        st_depthwise_forward(out, in, w, b, n, g, work);
        return;
    }
    st_direct_train t = {0};
    t.in = in;
    t.out = out;
    st_direct_train_forward(&t, w, b, n, g, work);
}

void st_direct_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                        const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    if (st_depthwise_ok(g)) {
        st_depthwise_backward(din, dw, db, dout, in, w, n, g, work);
        return;
    }
    st_direct_train t = {0};
    t.in = in;
    t.dout = dout;
    t.din = din;
    t.din_add = 1;
    t.dw = dw;
    t.db = db;
    st_direct_train_backward(&t, w, n, g, work);
}

size_t st_direct_cols_size(const st_conv_geom *g, int n) {
    if (st_depthwise_ok(g)) return 0;
    dplan d;
    plan(&d, g, n, 0);
    return round16(d.xrows * d.lanes + 16);
}

size_t st_direct_out_cols_size(const st_conv_geom *g, int n) {
    if (st_depthwise_ok(g)) return 0;
    dplan d;
    plan(&d, g, n, 0);
    return round16(d.yrows * d.lanes + 16);
}

/* c for a pass over (g, n), with its plan in d and its tap offsets in toff (MAXK ints);
 * nothing else set */
static void begin(dctx *c, dplan *d, int *toff, const st_conv_geom *g, int n, int backward) {
    plan(d, g, n, backward);
    tap_offsets(toff, d);
    memset(c, 0, sizeof *c);
    c->d = d;
    c->toff = toff;
}

void st_direct_train_forward(const st_direct_train *t, const float *w, const float *b, int n, const st_conv_geom *g,
                             float *work) {
    if (n <= 0) return;
    dplan d, dn;
    int toff[MAXK];
    dctx c;
    begin(&c, &d, toff, g, n, 0);
    c.xt = t->xcols ? align64(t->xcols) : work_xt(work);
    c.xt_ready = !t->in;
    c.yt = t->ycols ? align64(t->ycols) : work_yt(&d, work);
    c.in = t->in;
    c.out = t->out;
    c.relu = t->relu;
    if (t->next_cols) {
        plan(&dn, t->next, n, 0);
        c.next = &dn;
        c.next_xt = align64(t->next_cols);
    }
    forward_run(&c, w, b, work_wk(&d, work));
}

void st_direct_train_backward(const st_direct_train *t, const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    dplan d;
    int toff[MAXK];
    dctx c;
    begin(&c, &d, toff, g, n, 1);
    c.xt = t->xcols ? align64((float *)t->xcols) : work_xt(work);
    c.xt_ready = t->xcols != NULL;
    c.yt = t->gcols ? align64((float *)t->gcols) : work_yt(&d, work);
    c.yt_ready = t->gcols != NULL;
    c.dxt = t->prev_gcols ? align64(t->prev_gcols) : work_dxt(&d, work);
    c.dx_masked = t->prev_gcols != NULL;
    c.in = t->in;
    c.dout = t->dout;
    c.mask = t->mask;
    c.din = t->prev_gcols ? NULL : t->din;
    c.din_add = t->din_add;
    c.dw = t->dw;
    c.db = t->db;
    backward_run(&c, w, work_wk(&d, work));
}

void st_direct_train_outputs(float *out, float *relu, const float *ycols, int n, const st_conv_geom *g) {
    if (n <= 0) return;
    dplan d;
    plan(&d, g, n, 0);
    for (int col = 0; col < d.ncol; col++) output_to_samples(&d, col, align64((float *)ycols), out, relu, 0, (int)d.yrows);
}
