/* conv_stem.c - forward convolution for few input channels (a network's first layer,
 * the "stem": ResNet's 7x7 of stride 2 on 3 colour channels), vectorised over the output
 * columns.
 *
 * With 3 input channels a 7x7 convolution has 147 taps per output: enough work per
 * output, but the GEMM's depth (147) is short and its im2col copies 49 times the input;
 * the direct path (conv_direct.c) vectorises over the batch instead and has to transpose
 * its input and output to and from "columns" of samples. Here the input and output stay
 * in NCHW and a vector holds VL consecutive outputs of one row (VL = 16 with AVX-512):
 *
 *   out[co][y][x .. x+VL) = b[co] + sum_{ci, i, j} w[co][ci][i][j] * in[ci][y*sh - pt + i][(x .. x+VL)*sw - pl + j]
 *
 * For stride sw the input row is read every sw-th value. So that each tap is a plain
 * (unaligned) vector load, each input row is first split into its sw "phases" (for
 * stride 2, the even and the odd columns; polyphase decomposition), zero-padded at both
 * ends for the padding:
 *
 *   P[ph][k] = in[sw*k + ph - pl]   (0 outside the row)
 *
 * so that in[x*sw - pl + j] = P[j % sw][x + j / sw]: tap j of output column x reads
 * phase j % sw at a fixed offset j / sw. A register block holds R output channels times
 * NV vectors of columns (R*NV accumulators); every tap loads NV vectors and multiplies
 * each by R broadcast weights. Input rows outside the image are skipped (their taps
 * add nothing), so the sums have exactly the reference's terms, in the order (ci, i, j).
 *
 * Work is split into units (sample, block of output rows); a unit splits the input rows
 * its output rows read once, into a buffer of its own on the stack, and computes every
 * channel and column of its rows. Units run in parallel (outside any parallel region),
 * each output being computed by one unit: the result does not depend on the threads.
 * The weights are packed once per call into the workspace as [block][ci][i][j][R] (a
 * block's R weights of a tap side by side, zero past cout).
 *
 * The weight gradient (below) is vectorised the same way; the input gradient is not
 * (conv.c takes the stem's backward pass only where none is wanted).
 *
 * Kernel rows of 7 taps with stride 2 across (ResNet's stem) go to conv_stem_wino.c
 * instead (st_stem_forward and st_stem_backward hand them over): 1D Winograd along the
 * rows, about half the multiply-adds. The direct sums here stay for the other shapes and
 * as the tested reference (st_stem_wino_enable(0)).
 */
#include "kernels.h"
#include "simd.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- vectors (VL: simd.h) */
typedef float vec __attribute__((vector_size(VL * sizeof(float)), aligned(4)));

/* unaligned load and store (a vector of floats may alias floats in GCC) */
INLINE vec vload(const float *p) { return *(const vec *)p; }
INLINE void vstore(float *p, vec v) { *(vec *)p = v; }

/* ---------------------------------------------------------------- limits and plan */
#define STEM_MAX_CIN 4
#define STEM_BUF 16384 /* floats of a unit's phase rows (on the stack: 64 KB) */
#define STEM_MAX_ROWS 8 /* output rows per unit */

/* Register blocks: R channels x NV vectors of columns (with AVX-512, ResNet's stem at
 * batch 8, one thread: 16 x 1 103 GFLOP/s, 8 x 3 102, 8 x 2 99, 12 x 2 90 (64 channels
 * are 6 blocks of 12), 4 x 6 59). */
#if defined(STEM_R) /* experiments: -DSTEM_R=8 -DSTEM_NV=2 */
#elif VL == 16
#define STEM_R 16
#define STEM_NV 1
#else
#define STEM_R 6
#define STEM_NV 2
#endif

typedef struct {
    const st_conv_geom *g;
    int L;      /* floats per phase row: the vectors of a row plus (kw-1)/sw */
    int nvec;   /* vectors per output row */
    int rows;   /* output rows per unit */
    int nrb;    /* row blocks per sample */
    int nblk;   /* channel blocks of R */
} stem_plan;

/* input rows read by `rows` consecutive output rows */
static int rows_read(const st_conv_geom *g, int rows) { return (rows - 1) * g->sh + g->kh; }

static size_t unit_floats(const stem_plan *p, int rows) {
    const st_conv_geom *g = p->g;
    return (size_t)g->cin * rows_read(g, rows) * g->sw * p->L;
}

static void make_plan(stem_plan *p, const st_conv_geom *g) {
    p->g = g;
    p->nvec = (g->ow + VL - 1) / VL;
    p->L = p->nvec * VL + (g->kw - 1) / g->sw;
    p->rows = STEM_MAX_ROWS < g->oh ? STEM_MAX_ROWS : g->oh;
    while (p->rows > 1 && unit_floats(p, p->rows) > STEM_BUF) p->rows--;
    p->nrb = (g->oh + p->rows - 1) / p->rows;
    p->nblk = (g->cout + STEM_R - 1) / STEM_R;
}

int st_stem_possible(const st_conv_geom *g) {
    if (g->groups != 1 || g->dh != 1 || g->dw != 1 || g->cin > STEM_MAX_CIN) return 0;
    if (g->sh > 2 || g->sw > 2) return 0;
    stem_plan p;
    make_plan(&p, g);
    return unit_floats(&p, 1) <= STEM_BUF;
}

/* Where it is the faster path (measured on Zen 4, one thread, CPU time, GFLOP/s against
 * the faster of im2col + GEMM and the direct path): ResNet's stem 3 -> 64 7x7/2 on 224
 * at batch 1 106 against 91, at batch 8 105 against 86; 3 -> 32 3x3/2 on 224 at batch
 * 1 78 against 70, at batch 8 63 against 59; 3 -> 64 3x3 on 32x32 at batch 1, 8 and 32
 * 87-91 against 72-75; 1 -> 64 3x3 on 572 (U-Net) 62 against 23. It loses where many
 * of its lanes compute nothing: channels not a multiple of its register block (4 -> 8
 * on 32x32: 45 against 64 direct; 1 -> 6 5x5 on 28x28: 25 against 36 and 84) and rows
 * not a multiple of its vectors (3 -> 32 on 28x28 at batch 64: 57 against 82 direct;
 * 3 -> 16 on 12x12: 37 against 82); 3 -> 24 and 3 -> 40 on 64x64 (75 and 83 % of the
 * channel lanes used) are even with im2col + GEMM. Hence: at least 90 % of the lanes
 * (channels times columns) used (conv.c adds a rule on the taps against the direct
 * path). An AVX2 build (8 lanes, blocks of 6 x 2 vectors) measured alike: the stem at
 * batch 8 98 against 77. */
#define STEM_MIN_USED 0.9

int st_stem_preferred(const st_conv_geom *g) {
    if (!st_stem_possible(g)) return 0;
    stem_plan p;
    make_plan(&p, g);
    return (double)g->cout * g->ow >= STEM_MIN_USED * p.nblk * STEM_R * p.nvec * VL;
}

size_t st_stem_work_size(const st_conv_geom *g, int n) {
    (void)n;
    stem_plan p;
    make_plan(&p, g);
    size_t size = (size_t)p.nblk * STEM_R * (g->cin * g->kh * g->kw + 1);
    if (st_stem_wino_work_size(g, n) > size) size = st_stem_wino_work_size(g, n);
    return size;
}

/* wk[blk] = the block's R biases, then its weights [ci][i][j][R] (0 past cout). */
static void pack(float *wk, const float *w, const float *b, const stem_plan *p) {
    const st_conv_geom *g = p->g;
    int K = g->cin * g->kh * g->kw;
    for (int blk = 0; blk < p->nblk; blk++, wk += (size_t)STEM_R * (K + 1))
        for (int c = 0; c < STEM_R; c++) {
            int co = blk * STEM_R + c;
            wk[c] = co < g->cout && b ? b[co] : 0.0f;
            for (int r = 0; r < K; r++) wk[STEM_R + (size_t)r * STEM_R + c] = co < g->cout ? w[(size_t)co * K + r] : 0.0f;
        }
}

/* ---------------------------------------------------------------- the kernel
 * One register block: channels [co0, co0 + nc) (nc <= R), NV vectors of columns from x0
 * (the last ones possibly partial: `cols` real columns), output row y. ph: the unit's
 * phase rows of input row `first`; (i0, i1): the kernel rows that read inside the input. */
typedef struct {
    const stem_plan *p;
    const float *ph;  /* phase rows [ci][row - first][phase][L] */
    int first, nrows; /* input rows held */
} unit_rows;

INLINE void block(const int R, const int NV, const int KW, const int SW, const unit_rows *u, const float *wk,
                  float *out, size_t cstride, int y, int x0, int cols, int nc) {
    const st_conv_geom *g = u->p->g;
    int L = u->p->L, sw = SW ? SW : g->sw, kw = KW ? KW : g->kw;
    int top = y * g->sh - g->pt; /* input row of kernel row 0 */
    int i0 = top < 0 ? -top : 0, i1 = g->ih - top < g->kh ? g->ih - top : g->kh;
    vec acc[STEM_R * STEM_NV]; /* fixed size: R and NV are constants here, it lives in registers */
    UNROLL
    for (int c = 0; c < R; c++)
        UNROLL
        for (int v = 0; v < NV; v++) acc[c * NV + v] = (vec){0} + wk[c];
    for (int ci = 0; ci < g->cin; ci++)
        for (int i = i0; i < i1; i++) {
            const float *row = u->ph + ((size_t)(ci * u->nrows + top + i - u->first) * sw) * L + x0;
            const float *wr = wk + R + (size_t)((ci * g->kh + i) * kw) * R;
            UNROLL
            for (int ph = 0; ph < sw; ph++) {
                const float *xp = row + (size_t)ph * L;
                const float *wj = wr + ph * R;
                UNROLL
                for (int j = ph; j < kw; j += sw, xp++, wj += sw * R) {
                    vec xv[STEM_NV];
                    UNROLL
                    for (int v = 0; v < NV; v++) xv[v] = vload(xp + v * VL);
                    UNROLL
                    for (int c = 0; c < R; c++)
                        UNROLL
                        for (int v = 0; v < NV; v++) acc[c * NV + v] += wj[c] * xv[v];
                }
            }
        }
    UNROLL
    for (int c = 0; c < R; c++)
        UNROLL
        for (int v = 0; v < NV; v++) {
            int left = cols - v * VL;
            if (c >= nc || left <= 0) continue;
            float *o = out + c * cstride + x0 + v * VL;
            if (left >= VL) vstore(o, acc[c * NV + v]);
            else {
                float t[VL];
                vstore(t, acc[c * NV + v]);
                memcpy(o, t, sizeof(float) * left);
            }
        }
}

/* The blocks compiled: STEM_NV vectors, and 1 for a row's last vectors; each for any
 * kernel width and stride (KW = SW = 0) and, with the loop over a kernel row unrolled,
 * for the usual first layers' widths and strides (ResNet's 7 taps of stride 2: 83 ->
 * 103 GFLOP/s, one thread). */
typedef void (*block_fn)(const unit_rows *u, const float *wk, float *out, size_t cs, int y, int x0, int cols, int nc);
typedef struct {
    int kw, sw;
    block_fn full, one;
} block_fns;
#define BLOCK_FN(NAME, NV, KW, SW)                                                                            \
    static void NAME(const unit_rows *u, const float *wk, float *out, size_t cs, int y, int x0, int cols, int nc) { \
        block(STEM_R, NV, KW, SW, u, wk, out, cs, y, x0, cols, nc);                                            \
    }
#define BLOCKS(X) X(0, 0) X(7, 2) X(3, 1) X(3, 2) X(5, 1)
#define X(KW, SW) BLOCK_FN(full_##KW##_##SW, STEM_NV, KW, SW) BLOCK_FN(one_##KW##_##SW, 1, KW, SW)
BLOCKS(X)
#undef X
#define X(KW, SW) {KW, SW, full_##KW##_##SW, one_##KW##_##SW},
static const block_fns blocks[] = {BLOCKS(X)};
#undef X

static const block_fns *blocks_for(const st_conv_geom *g) {
    for (size_t k = 1; k < sizeof blocks / sizeof blocks[0]; k++)
        if (blocks[k].kw == g->kw && blocks[k].sw == g->sw) return &blocks[k];
    return &blocks[0];
}

/* ---------------------------------------------------------------- units */
/* The phase rows of input rows [first, first + nrows) of sample s (zero outside the input). */
static void split_rows(float *ph, const float *in, const stem_plan *p, int first, int nrows) {
    const st_conv_geom *g = p->g;
    int sw = g->sw, L = p->L;
    for (int ci = 0; ci < g->cin; ci++)
        for (int r = 0; r < nrows; r++) {
            if (first + r < 0 || first + r >= g->ih) { /* (the weight gradient's padding rows) */
                memset(ph + (size_t)(ci * nrows + r) * sw * L, 0, sizeof(float) * sw * L);
                continue;
            }
            const float *src = in + ((size_t)ci * g->ih + first + r) * g->iw;
            for (int k = 0; k < sw; k++) {
                float *dst = ph + ((size_t)(ci * nrows + r) * sw + k) * L;
                /* dst[m] = src[sw*m + k - pl] for m in [a, b), where that is inside the row */
                int off = k - g->pl, a = off >= 0 ? 0 : (-off + sw - 1) / sw, b = (g->iw - off + sw - 1) / sw;
                if (b > L) b = L;
                if (a > b) a = b;
                for (int m = 0; m < a; m++) dst[m] = 0.0f;
                if (sw == 2)
                    for (int m = a; m < b; m++) dst[m] = src[2 * m + off];
                else
                    for (int m = a; m < b; m++) dst[m] = src[m + off];
                for (int m = b; m < L; m++) dst[m] = 0.0f;
            }
        }
}

typedef struct {
    stem_plan p;
    const float *in, *wk;
    float *out;
    const st_epilogue *epi;
} stem_ctx;

static void run_unit(const stem_ctx *c, int unit) {
    const stem_plan *p = &c->p;
    const st_conv_geom *g = p->g;
    int s = unit / p->nrb, y0 = unit % p->nrb * p->rows, y1 = y0 + p->rows < g->oh ? y0 + p->rows : g->oh;
    int first = y0 * g->sh - g->pt, last = (y1 - 1) * g->sh - g->pt + g->kh; /* input rows read */
    if (first < 0) first = 0;
    if (last > g->ih) last = g->ih;
    float ph[STEM_BUF];
    unit_rows u = {p, ph, first, last > first ? last - first : 0};
    if (u.nrows > 0) split_rows(ph, c->in + (size_t)s * g->cin * g->ih * g->iw, p, first, u.nrows);
    size_t plane = (size_t)g->oh * g->ow, K = (size_t)g->cin * g->kh * g->kw;
    float *os = c->out + (size_t)s * g->cout * plane;
    block_fn full = blocks_for(g)->full, one = blocks_for(g)->one;
    for (int y = y0; y < y1; y++) {
        for (int blk = 0; blk < p->nblk; blk++) {
            const float *wk = c->wk + (size_t)blk * STEM_R * (K + 1);
            int co = blk * STEM_R, nc = g->cout - co < STEM_R ? g->cout - co : STEM_R;
            float *o = os + co * plane + (size_t)y * g->ow;
            int x0 = 0;
            for (; x0 + STEM_NV * VL <= g->ow || (STEM_NV > 1 && g->ow - x0 > (STEM_NV - 1) * VL); x0 += STEM_NV * VL)
                full(&u, wk, o, plane, y, x0, g->ow - x0, nc);
            for (; x0 < g->ow; x0 += VL) one(&u, wk, o, plane, y, x0, g->ow - x0, nc);
        }
        if (c->epi)
            for (int co = 0; co < g->cout; co++) {
                size_t at = ((size_t)s * g->cout + co) * plane + (size_t)y * g->ow;
                st_epilogue_span(c->epi, c->out + at, c->epi->add ? c->epi->add + at : NULL, (size_t)g->ow, co);
            }
    }
}

/* Threads pay off from this many multiply-adds per call (as the direct path's rule). */
#define STEM_PAR_MIN_MACS 200000.0

void st_stem_forward(float *out, const float *in, const float *w, const float *b, int n, const st_conv_geom *g,
                     float *work, const st_epilogue *epi) {
    if (n <= 0) return;
    if (st_stem_wino_possible(g)) {
        st_stem_wino_forward(out, in, w, b, n, g, work, epi);
        return;
    }
    stem_ctx c = {{0}, in, work, out, epi};
    make_plan(&c.p, g);
    pack(work, w, b, &c.p);
    int units = n * c.p.nrb;
#ifdef _OPENMP
    double macs = (double)n * g->cout * g->oh * g->ow * g->cin * g->kh * g->kw;
    if (units > 1 && macs >= STEM_PAR_MIN_MACS && st_get_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic)
        for (int u = 0; u < units; u++) run_unit(&c, u);
        return;
    }
#endif
    for (int u = 0; u < units; u++) run_unit(&c, u);
}

/* ---------------------------------------------------------------- weight gradient
 *
 *   dW[co][ci][i][j] = sum_{s, y, x} dout[s][co][y][x] * in[s][ci][y*sh - pt + i][x*sw - pl + j]
 *   db[co]           = sum_{s, y, x} dout[s][co][y][x]
 *
 * vectorised over the same VL output columns: with the phase rows above, tap (ci, i, j)
 * of the columns x .. x+VL of output row y is one vector load at a fixed offset from
 * the row's base, so each product dout[co][y][x .. x+VL) * in(tap) is one vector
 * multiply-add into a vector of VL partial sums of dW[co][tap]. A register block holds WR
 * channels times WT taps (the flat taps k = (ci*kh + i)*kw + j; 4 x 6 = 24 accumulators
 * with AVX-512): per vector of columns it loads WR dout vectors and WT input vectors for
 * WR*WT multiply-adds (the input vector kept in a register: GCC's choice, one load per
 * multiply-add, ran at 47 GFLOP/s against 79). The block runs over all rows and columns
 * of a unit (a sample, or a block of its rows where there are fewer samples than parts;
 * the input rows it reads split once into phase rows in the workspace, padding rows
 * zero), then adds its accumulators to the part's vector sums in memory, so that lanes
 * are summed only once, at the end of a part. Long units pay: ResNet's stem at batch 8,
 * units of 8 output rows 84 GFLOP/s, 32 rows 96, whole samples (112 rows) 98. Channels
 * past cout (their dout row: the last channel's) and taps past K (the first tap's
 * offset) fill the last block; their sums are dropped. Columns past ow in a row's last
 * vector read dout as 0 (those vectors apart, after the rows: their copies are calls).
 *
 * Parts: the units are split into a fixed number of parts (from the amount of work, not
 * the threads), each a run of consecutive units with its own sums in the workspace;
 * parts run in parallel, then dW and db add the parts' sums in part order, so the result
 * does not depend on the threads. Input gradient: not computed (conv.c takes this only
 * where none is wanted: a network's first layer).
 *
 * Measured (Zen 4, one thread, CPU time, against the path conv.c took before: direct from
 * batch 8, else im2col + GEMM): ResNet's stem 3 -> 64 7x7/2 on 224 at batch 1 88 against
 * 64 GFLOP/s, batch 8 97 against 80-83, batch 32 99 against 62; 3 -> 32 3x3/2 on 224 at
 * batch 1, 8, 32 62-79 against 23-41; 3 -> 64 3x3 on 32x32 at batch 1 and 8 69 and 77
 * against 36 and 59, level at batch 32 (70); 1 -> 64 3x3 on 572 (batch 1) 44 against 10.
 * Register blocks 6 x 4: 93-95, 5 x 4 88, 3 x 7 79. */
#if defined(STEM_WR) /* experiments: -DSTEM_WR=6 -DSTEM_WT=4 */
#elif VL == 16
#define STEM_WR 4
#define STEM_WT 6
#else
#define STEM_WR 3
#define STEM_WT 4
#endif
#define STEM_MAX_TAPS (STEM_MAX_CIN * 7 * 7 + STEM_WT) /* its table of tap offsets: 4 channels of 7x7 */
#define STEM_PARTS 8                   /* at most this many parts */
#define STEM_PART_MIN_MACS 4.0e6       /* and at least this many multiply-adds each */

typedef struct {
    stem_plan p;
    int nrows;     /* input rows of a unit's phase rows (for p.rows output rows) */
    int nt, Kp;    /* tap blocks of WT, taps rounded up to them */
    int ncb;       /* channel blocks of WR */
    int units, nparts;
    size_t vsums;  /* a part's vector sums: ncb * nt * WR * WT + cout vectors (the bias) */
    size_t phase;  /* floats of a unit's phase rows */
    size_t stride; /* a part's floats: vsums, vsums / VL lane sums (rounded up to 16), phase rows */
} wgrad_plan;

static int wgrad_plan_make(wgrad_plan *w, const st_conv_geom *g, int n) {
    make_plan(&w->p, g);
    int K = g->cin * g->kh * g->kw;
    double macs = (double)n * g->cout * g->oh * g->ow * K, parts = macs / STEM_PART_MIN_MACS;
    w->nparts = parts >= STEM_PARTS ? STEM_PARTS : parts < 1 ? 1 : (int)parts;
    int blocks = (w->nparts + n - 1) / n; /* row blocks per sample: a unit per part at least */
    if (blocks > g->oh) blocks = g->oh;
    w->p.rows = (g->oh + blocks - 1) / blocks;
    w->p.nrb = (g->oh + w->p.rows - 1) / w->p.rows;
    w->nrows = rows_read(g, w->p.rows);
    w->nt = (K + STEM_WT - 1) / STEM_WT;
    w->Kp = w->nt * STEM_WT;
    w->ncb = (g->cout + STEM_WR - 1) / STEM_WR;
    w->units = n * w->p.nrb;
    if (w->nparts > w->units) w->nparts = w->units;
    w->vsums = ((size_t)w->ncb * w->nt * STEM_WR * STEM_WT + g->cout) * VL;
    w->phase = (unit_floats(&w->p, w->p.rows) + 15) / 16 * 16;
    w->stride = (w->vsums + w->vsums / VL + 15) / 16 * 16 + w->phase;
    return w->Kp <= STEM_MAX_TAPS;
}

int st_stem_backward_possible(const st_conv_geom *g, int n) {
    wgrad_plan w;
    return n > 0 && st_stem_possible(g) && wgrad_plan_make(&w, g, n);
}

size_t st_stem_backward_work_size(const st_conv_geom *g, int n) {
    wgrad_plan w;
    if (n <= 0) return 0;
    wgrad_plan_make(&w, g, n);
    size_t size = (size_t)w.nparts * w.stride;
    if (st_stem_wino_backward_work_size(g, n) > size) size = st_stem_wino_backward_work_size(g, n);
    return size;
}

typedef struct {
    wgrad_plan w;
    const float *in, *dout;
    float *work;
    int off[STEM_MAX_TAPS]; /* tap k's input vector: phase buffer + row offset + off[k] + x */
} wgrad_ctx;

/* keeps v in a register (GCC would rather load it again for each multiply-add) */
#define REG(v) __asm__("" : "+v"(v))

/* dout[x0 .. x0+VL) of one row, 0 past `cols` columns */
INLINE vec dout_vec(const float *d, int cols) {
    if (cols >= VL) return vload(d);
    float t[VL] = {0};
    memcpy(t, d, sizeof(float) * cols);
    return vload(t);
}

/* acc += the products of WR dout vectors d and the WT input vectors at x + off[t] */
INLINE void wgrad_step(vec *acc, const vec *d, const float *x, const int *off) {
    UNROLL
    for (int t = 0; t < STEM_WT; t++) {
        vec xv = vload(x + off[t]);
        REG(xv);
        UNROLL
        for (int r = 0; r < STEM_WR; r++) acc[r * STEM_WT + t] += d[r] * xv;
    }
}

/* One register block over `rows` output rows: dr[r], channel r's first dout row; xb, the
 * phase buffer (output row y's taps at xb + y * xstride + off[t]); vs, the block's
 * WR x WT vector sums, which it adds to. */
static void wgrad_block(float *vs, const float *const *dr, const float *xb, const int *off, size_t xstride,
                        int rows, int ow) {
    vec acc[STEM_WR * STEM_WT], d[STEM_WR];
    UNROLL
    for (int a = 0; a < STEM_WR * STEM_WT; a++) acc[a] = (vec){0};
    int nfull = ow / VL, tail = ow - nfull * VL;
    for (int y = 0; y < rows; y++) {
        const float *x = xb + y * xstride;
        size_t drow = (size_t)y * ow;
        for (int x0 = 0; x0 < nfull * VL; x0 += VL) {
            UNROLL
            for (int r = 0; r < STEM_WR; r++) d[r] = vload(dr[r] + drow + x0);
            wgrad_step(acc, d, x + x0, off);
        }
    }
    for (int y = 0; y < rows && tail; y++) { /* the rows' last vectors, apart (their copies are calls) */
        for (int r = 0; r < STEM_WR; r++) d[r] = dout_vec(dr[r] + (size_t)y * ow + nfull * VL, tail);
        wgrad_step(acc, d, xb + y * xstride + nfull * VL, off);
    }
    UNROLL
    for (int a = 0; a < STEM_WR * STEM_WT; a++) vstore(vs + a * VL, vload(vs + a * VL) + acc[a]);
}

static void wgrad_unit(const wgrad_ctx *c, float *vs, int unit) {
    const wgrad_plan *w = &c->w;
    const st_conv_geom *g = w->p.g;
    int s = unit / w->p.nrb, y0 = unit % w->p.nrb * w->p.rows, y1 = y0 + w->p.rows < g->oh ? y0 + w->p.rows : g->oh;
    float *ph = vs + w->stride - w->phase;
    split_rows(ph, c->in + (size_t)s * g->cin * g->ih * g->iw, &w->p, y0 * g->sh - g->pt, w->nrows);
    size_t plane = (size_t)g->oh * g->ow, xstride = (size_t)g->sh * g->sw * w->p.L;
    const float *ds = c->dout + (size_t)s * g->cout * plane + (size_t)y0 * g->ow;
    for (int cb = 0; cb < w->ncb; cb++) {
        const float *dr[STEM_WR];
        for (int r = 0; r < STEM_WR; r++) {
            int co = cb * STEM_WR + r < g->cout ? cb * STEM_WR + r : g->cout - 1;
            dr[r] = ds + co * plane;
        }
        for (int tb = 0; tb < w->nt; tb++)
            wgrad_block(vs + ((size_t)cb * w->nt + tb) * STEM_WR * STEM_WT * VL, dr, ph, c->off + tb * STEM_WT, xstride,
                        y1 - y0, g->ow);
    }
    float *bs = vs + (size_t)w->ncb * w->nt * STEM_WR * STEM_WT * VL;
    for (int co = 0; co < g->cout; co++) {
        vec acc = vload(bs + co * VL);
        for (int y = y0; y < y1; y++) {
            const float *d = ds + co * plane + (size_t)(y - y0) * g->ow;
            for (int x0 = 0; x0 < g->ow; x0 += VL) acc += dout_vec(d + x0, g->ow - x0);
        }
        vstore(bs + co * VL, acc);
    }
}

/* part p: its units' vector sums, then their lanes summed (after them in its floats) */
static void wgrad_part(const wgrad_ctx *c, int part) {
    const wgrad_plan *w = &c->w;
    float *vs = c->work + (size_t)part * w->stride, *sums = vs + w->vsums;
    memset(vs, 0, sizeof(float) * w->vsums);
    int u0 = (int)((long)w->units * part / w->nparts), u1 = (int)((long)w->units * (part + 1) / w->nparts);
    for (int u = u0; u < u1; u++) wgrad_unit(c, vs, u);
    for (size_t i = 0; i < w->vsums / VL; i++) {
        float a = 0;
        for (int l = 0; l < VL; l++) a += vs[i * VL + l];
        sums[i] = a;
    }
}

void st_stem_backward(float *dw, float *db, const float *dout, const float *in, int n, const st_conv_geom *g,
                      float *work) {
    if (n <= 0) return;
    if (st_stem_wino_backward_possible(g, n)) {
        st_stem_wino_backward(dw, db, dout, in, n, g, work);
        return;
    }
    wgrad_ctx c;
    wgrad_plan_make(&c.w, g, n);
    c.in = in;
    c.dout = dout;
    c.work = work;
    const wgrad_plan *w = &c.w;
    int K = g->cin * g->kh * g->kw, sw = g->sw, L = w->p.L;
    for (int k = 0; k < w->Kp; k++) {
        int kk = k < K ? k : 0, ci = kk / (g->kh * g->kw), i = kk / g->kw % g->kh, j = kk % g->kw;
        c.off[k] = ((ci * w->nrows + i) * sw + j % sw) * L + j / sw;
    }
#ifdef _OPENMP
    if (w->nparts > 1 && st_get_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for schedule(dynamic)
        for (int part = 0; part < w->nparts; part++) wgrad_part(&c, part);
    } else
#endif
        for (int part = 0; part < w->nparts; part++) wgrad_part(&c, part);
    /* the parts' sums in part order */
    for (int co = 0; co < g->cout; co++) {
        int cb = co / STEM_WR, r = co % STEM_WR;
        for (int k = 0; k < K; k++) {
            size_t at = (((size_t)cb * w->nt + k / STEM_WT) * STEM_WR + r) * STEM_WT + k % STEM_WT;
            float a = 0;
            for (int part = 0; part < w->nparts; part++) a += work[(size_t)part * w->stride + w->vsums + at];
            dw[(size_t)co * K + k] += a;
        }
        if (db) {
            size_t at = (size_t)w->ncb * w->nt * STEM_WR * STEM_WT + co;
            float a = 0;
            for (int part = 0; part < w->nparts; part++) a += work[(size_t)part * w->stride + w->vsums + at];
            db[co] += a;
        }
    }
}
