/* conv_depthwise.c - depthwise convolution (groups = in = out channels) with stride 1,
 * planes in place (N, C, H, W), vectorised along the rows.
 *
 * Each channel has its own kh x kw kernel, so there is no sum over channels to feed a
 * matrix product, and the batch-vectorised direct path spends most of its time in
 * transposes. Here every plane is convolved on its own:
 *
 *   forward  out[y][x] = b + sum_{i,j} w[i][j] * E[y + i*dh][x + j*dw]
 *
 * where E is the plane copied into a zero border (top pt, left pl, wide enough that
 * whole vectors can be read past the row's end): VL outputs of a row take kh*kw vector
 * loads and multiply-adds, and a block of 4 rows x 2 vectors keeps eight independent
 * sums in flight. With stride 1 the two gradients are of the same form:
 *
 *   dX       din[p][q] += sum_{i,j} w[kh-1-i][kw-1-j] * E'[p + i*dh][q + j*dw]
 *            (E': dL/dout in a border of (kh-1)*dh - pt rows on top, (kw-1)*dw - pl
 *            columns on the left: a correlation with the kernel turned round)
 *   dW       dw[i][j] += sum over samples and positions of dout[y][x] * E[y + i*dh][x + j*dw]
 *   db       db += sum of dout
 *
 * The weight and bias sums of a channel are vectors (one per tap) added over all its
 * samples, in sample order, then summed across lanes once, in a fixed tree.
 *
 * Threads: the forward pass splits the planes, the backward pass the channels (a
 * channel's sums are one thread's), into a number of parts fixed by the shape, each with
 * its own scratch; results do not depend on the thread count.
 */
#include "conv_depthwise.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "simd.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#define MAX_PARTS 8
#define TG 9        /* taps whose weight-gradient sums are kept in registers at once */
#define PAR_MIN_MACS 200000.0

/* Keeps a loaded vector in a register: GCC would fold the load into each multiply-add
 * that uses it, loading it up to three times. */
#if defined(__GNUC__) && (defined(__AVX__) || defined(__SSE__))
#define IN_REGISTER(v) __asm__("" : "+v"(v))
#else
#define IN_REGISTER(v) (void)0
#endif

typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
typedef int vi __attribute__((vector_size(VL * sizeof(int))));
static inline vf vload(const float *p) { return *(const vf *)p; }
static inline void vstore(float *p, vf v) { *(vf *)p = v; }

/* the first m < VL lanes of v to p (added to p when add) */
static inline void store_part(float *p, vf v, int m, int add) {
#if VL == 16
    __mmask16 k = (__mmask16)((1u << m) - 1);
    if (add) v += (vf)_mm512_maskz_loadu_ps(k, p);
    _mm512_mask_storeu_ps(p, k, (__m512)v);
#else
    for (int l = 0; l < m; l++) p[l] = add ? p[l] + v[l] : v[l];
#endif
}

static float hsum(vf v) { /* a fixed tree */
    float t[VL];
    memcpy(t, &v, sizeof t);
    for (int w = VL / 2; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) t[l] += t[l + w];
    return t[0];
}

static int round_vl(int v) { return (v + VL - 1) / VL * VL; }

#define MAX_TAPS 64

int st_depthwise_ok(const st_conv_geom *g) {
    return g->groups == g->cin && g->cin == g->cout && g->sh == 1 && g->sw == 1 && g->kh * g->kw <= MAX_TAPS;
}

/* ---------------------------------------------------------------- sizes */
static int parts_of(int units) { return units < MAX_PARTS ? units : MAX_PARTS; }

typedef struct {
    int kk;            /* taps */
    int erows, ew;     /* E: the input plane in its border */
    int grows, gw;     /* E': dL/dout in its border (input gradient) */
    int owp;           /* dL/dout rows rounded to whole vectors (weight gradient) */
    size_t sums;       /* floats of weight and bias sums (kk + 1 vectors) per channel of a part */
    size_t scratch;    /* floats of scratch per part */
} dw_plan;

static dw_plan plan_of(const st_conv_geom *g) {
    dw_plan p;
    p.kk = g->kh * g->kw;
    p.erows = g->oh + (g->kh - 1) * g->dh;
    p.ew = round_vl(g->ow) + (g->kw - 1) * g->dw;
    p.grows = g->ih + (g->kh - 1) * g->dh;
    p.gw = round_vl(g->iw) + (g->kw - 1) * g->dw;
    p.owp = round_vl(g->ow);
    p.sums = (size_t)(p.kk + 1) * VL;
    int chans = (g->cin + parts_of(g->cin) - 1) / parts_of(g->cin); /* most channels in a backward part */
    p.scratch = (size_t)p.erows * p.ew + (size_t)p.grows * p.gw + (size_t)g->oh * p.owp + (size_t)chans * p.sums + 16;
    return p;
}

size_t st_depthwise_work_size(const st_conv_geom *g, int n) {
    /* forward: parts of the n*C planes; backward: parts of the C channels */
    return (size_t)parts_of(n > 1 ? n * g->cin : g->cin) * plan_of(g).scratch;
}

static int use_threads(const st_conv_geom *g, int n, int parts) {
#ifdef _OPENMP
    double macs = (double)n * g->cout * g->oh * g->ow * g->kh * g->kw;
    return parts > 1 && macs >= PAR_MIN_MACS && st_get_threads() > 1 && !omp_in_parallel();
#else
    (void)g, (void)n, (void)parts;
    return 0;
#endif
}

/* ---------------------------------------------------------------- plane kernels */

/* E (rows x ew) = the plane src (h x w) moved down by top rows and right by left
 * columns (either may be negative: the plane is then cut), zeros elsewhere. The zeros
 * are the same for every plane of a pass: fill == 0 writes the whole of E, fill == 1
 * only the plane's cells (E holding a previous plane of the same geometry). Rows are
 * copied a vector at a time, the last vector ending at the row's end (overlapping the
 * one before): a libc call per short row costs more than the copy. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("no-tree-loop-distribute-patterns"))) /* GCC would call memmove per row */
#endif
static void extend(float *E, int rows, int ew, const float *src, int h, int w, int top, int left, int fill) {
    int c0 = left > 0 ? left : 0, c1 = w + left < ew ? w + left : ew; /* columns [c0, c1) from src */
    if (c1 < c0) c1 = c0;
    if (!fill) memset(E, 0, sizeof(float) * rows * ew);
    int r0 = top > 0 ? top : 0, r1 = h + top < rows ? h + top : rows;
    for (int r = r0; r < r1; r++) {
        float *e = E + (size_t)r * ew;
        const float *s = src + (size_t)(r - top) * w - left;
        if (c1 - c0 < VL) {
            for (int c = c0; c < c1; c++) e[c] = s[c];
            continue;
        }
        for (int c = c0; c < c1 - VL; c += VL) vstore(e + c, vload(s + c));
        vstore(e + c1 - VL, vload(s + c1 - VL));
    }
}

/* One block of the correlation below: NR rows from y0, NV vectors from x0 (compile-time
 * sizes, so that the NR x NV sums stay in registers). */
static inline __attribute__((always_inline)) void corr_block(const int NR, const int NV, float *out, int add,
                                                            const float *E, int ew, const float *k, float bias,
                                                            int y0, int x0, int ow, int kh, int kw, int dh, int dw) {
    vf acc[4][2];
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = (vf){0} + bias;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            float wv = k[i * kw + j];
            const float *e = E + (size_t)(y0 + i * dh) * ew + x0 + j * dw;
            UNROLL for (int r = 0; r < NR; r++)
                UNROLL for (int v = 0; v < NV; v++) acc[r][v] += wv * vload(e + (size_t)r * ew + v * VL);
        }
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *o = out + (size_t)(y0 + r) * ow + x0 + v * VL;
            int m = ow - x0 - v * VL;
            if (m >= VL) vstore(o, add ? vload(o) + acc[r][v] : acc[r][v]);
            else store_part(o, acc[r][v], m, add);
        }
}

/* The same for a 3 x 3 kernel without dilation, each loaded vector used for every output
 * row it reaches (up to three): a block of NR rows reads NR + 2 input rows, half the loads. */
static inline __attribute__((always_inline)) void corr_block33(const int NR, const int NV, float *out, int add,
                                                              const float *E, int ew, const float *k, float bias,
                                                              int y0, int x0, int ow) {
    vf acc[4][2], wv[9];
    UNROLL for (int t = 0; t < 9; t++) wv[t] = (vf){0} + k[t];
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NV; v++) acc[r][v] = (vf){0} + bias;
    UNROLL for (int t = 0; t < NR + 2; t++) { /* input row y0 + t feeds output rows y0 + t - i */
        const float *e = E + (size_t)(y0 + t) * ew + x0;
        UNROLL for (int j = 0; j < 3; j++)
            UNROLL for (int v = 0; v < NV; v++) {
                vf x = vload(e + j + v * VL);
                IN_REGISTER(x);
                UNROLL for (int i = 0; i < 3; i++)
                    if (t - i >= 0 && t - i < NR) acc[t - i][v] += wv[i * 3 + j] * x;
            }
    }
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *o = out + (size_t)(y0 + r) * ow + x0 + v * VL;
            int m = ow - x0 - v * VL;
            if (m >= VL) vstore(o, add ? vload(o) + acc[r][v] : acc[r][v]);
            else store_part(o, acc[r][v], m, add);
        }
}

/* out (oh x ow, row stride ow) = (add ? out : 0) + bias + the correlation of E with
 * the kernel k (kh x kw, dilation dh, dw). Blocks of 4 rows x 2 vectors: eight
 * independent sums in flight, each loaded vector used once. */
static void correlate(float *out, int add, const float *E, int ew, const float *k, float bias, int oh, int ow,
                      int kh, int kw, int dh, int dw) {
    int k33 = kh == 3 && kw == 3 && dh == 1 && dw == 1;
    for (int y0 = 0; y0 < oh; y0 += 4) {
        int nr = oh - y0 < 4 ? oh - y0 : 4;
        for (int x0 = 0; x0 < ow; x0 += 2 * VL) {
            int nv = ow - x0 > VL ? 2 : 1;
#define CB(R, V)                                                                         \
    do {                                                                                 \
        if (k33) corr_block33(R, V, out, add, E, ew, k, bias, y0, x0, ow);               \
        else corr_block(R, V, out, add, E, ew, k, bias, y0, x0, ow, kh, kw, dh, dw);     \
    } while (0)
            switch ((nr - 1) * 2 + nv - 1) { /* nr 1..4, nv 1..2 */
            case 7: CB(4, 2); break;
            case 6: CB(4, 1); break;
            case 5: CB(3, 2); break;
            case 4: CB(3, 1); break;
            case 3: CB(2, 2); break;
            case 2: CB(2, 1); break;
            case 1: CB(1, 2); break;
            default: CB(1, 1); break;
            }
#undef CB
        }
    }
}

/* acc[t] += sum over (y, x) of G[y][x] * E[y + i*dh][x + j*dw] for the taps t = (i, j) in
 * [t0, t0 + NT) (NT a compile-time count, so the sums stay in registers), and accb += G
 * (when t0 == 0). G: oh rows of owp (zeros past ow); lanes past ow read E as zero, so
 * that an infinity there cannot turn 0 * inf into a NaN. */
static inline __attribute__((always_inline)) void weight_block(const int NT, vf *acc, vf *accb, int t0,
                                                              const float *G, int owp, const float *E, int ew,
                                                              const st_conv_geom *g) {
    vf a[TG], b = *accb;
    int off[TG];
    UNROLL for (int t = 0; t < NT; t++) {
        a[t] = acc[t0 + t];
        off[t] = (t0 + t) / g->kw * g->dh * ew + (t0 + t) % g->kw * g->dw;
    }
    vi lane;
    for (int l = 0; l < VL; l++) lane[l] = l;
    for (int y = 0; y < g->oh; y++)
        for (int x0 = 0; x0 < g->ow; x0 += VL) {
            vf gv = vload(G + (size_t)y * owp + x0);
            const float *e = E + (size_t)y * ew + x0;
            if (t0 == 0) b += gv;
            if (x0 + VL <= g->ow) {
                UNROLL for (int t = 0; t < NT; t++) a[t] += gv * vload(e + off[t]);
            } else {
                vi keep = lane < g->ow - x0; /* all ones where x0 + lane < ow */
                UNROLL for (int t = 0; t < NT; t++) a[t] += gv * (vf)((vi)vload(e + off[t]) & keep);
            }
        }
    UNROLL for (int t = 0; t < NT; t++) acc[t0 + t] = a[t];
    *accb = b;
}

static void weight_sums(vf *acc, vf *accb, int kk, const float *G, int owp, const float *E, int ew,
                        const st_conv_geom *g) {
    int t0 = 0;
    for (; t0 + TG <= kk; t0 += TG) weight_block(TG, acc, accb, t0, G, owp, E, ew, g);
    switch (kk - t0) {
#define WB(N) case N: weight_block(N, acc, accb, t0, G, owp, E, ew, g); break;
    WB(1) WB(2) WB(3) WB(4) WB(5) WB(6) WB(7) WB(8)
#undef WB
    default: break;
    }
}

/* ---------------------------------------------------------------- passes */
typedef struct {
    const st_conv_geom *g;
    dw_plan p;
    int n, nparts, units;
    const float *in, *w, *b, *dout;
    float *out, *din, *dw, *db, *work;
} dctx;

static int part_begin(const dctx *c, int part) { return (int)((long)c->units * part / c->nparts); }

static void forward_part(const dctx *c, int part) {
    const st_conv_geom *g = c->g;
    float *E = c->work + (size_t)part * c->p.scratch;
    size_t ip = (size_t)g->ih * g->iw, op = (size_t)g->oh * g->ow;
    for (int u = part_begin(c, part); u < part_begin(c, part + 1); u++) { /* u = plane (sample, channel) */
        int ch = u % g->cin;
        extend(E, c->p.erows, c->p.ew, c->in + u * ip, g->ih, g->iw, g->pt, g->pl, u > part_begin(c, part));
        correlate(c->out + u * op, 0, E, c->p.ew, c->w + (size_t)ch * c->p.kk, c->b ? c->b[ch] : 0.0f, g->oh,
                  g->ow, g->kh, g->kw, g->dh, g->dw);
    }
}

static void backward_part(const dctx *c, int part) {
    const st_conv_geom *g = c->g;
    const dw_plan *p = &c->p;
    float *E = c->work + (size_t)part * p->scratch, *E2 = E + (size_t)p->erows * p->ew;
    float *G = E2 + (size_t)p->grows * p->gw, *sums = G + (size_t)g->oh * p->owp;
    size_t ip = (size_t)g->ih * g->iw, op = (size_t)g->oh * g->ow;
    int kk = p->kk, c0 = part_begin(c, part), c1 = part_begin(c, part + 1);
    float flip[MAX_TAPS];
    memset(sums, 0, sizeof(float) * (size_t)(c1 - c0) * p->sums);
    /* samples outside, channels inside: the part's planes of a sample are contiguous */
    for (int s = 0; s < c->n; s++)
        for (int ch = c0; ch < c1; ch++) {
            size_t plane = (size_t)s * g->cin + ch;
            const float *gp = c->dout + plane * op;
            int fill = s > 0 || ch > c0; /* E, E' and G's zeros are written once */
            if (c->din) {
                const float *wc = c->w + (size_t)ch * kk;
                for (int t = 0; t < kk; t++) flip[t] = wc[kk - 1 - t];
                extend(E2, p->grows, p->gw, gp, g->oh, g->ow, (g->kh - 1) * g->dh - g->pt,
                       (g->kw - 1) * g->dw - g->pl, fill);
                correlate(c->din + plane * ip, 1, E2, p->gw, flip, 0.0f, g->ih, g->iw, g->kh, g->kw, g->dh, g->dw);
            }
            extend(E, p->erows, p->ew, c->in + plane * ip, g->ih, g->iw, g->pt, g->pl, fill);
            extend(G, g->oh, p->owp, gp, g->oh, g->ow, 0, 0, fill);
            vf *acc = (vf *)(sums + (size_t)(ch - c0) * p->sums);
            weight_sums(acc, acc + kk, kk, G, p->owp, E, p->ew, g);
        }
    for (int ch = c0; ch < c1; ch++) {
        const vf *acc = (const vf *)(sums + (size_t)(ch - c0) * p->sums);
        for (int t = 0; t < kk; t++) c->dw[(size_t)ch * kk + t] += hsum(acc[t]);
        if (c->db) c->db[ch] += hsum(acc[kk]);
    }
}

void st_depthwise_forward(float *out, const float *in, const float *w, const float *b, int n,
                          const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    dctx c = {g, plan_of(g), n, 0, n * g->cin, in, w, b, NULL, out, NULL, NULL, NULL, work};
    c.nparts = parts_of(c.units);
    if (use_threads(g, n, c.nparts)) {
#pragma omp parallel for schedule(dynamic)
        for (int part = 0; part < c.nparts; part++) forward_part(&c, part);
    } else {
        for (int part = 0; part < c.nparts; part++) forward_part(&c, part);
    }
}

void st_depthwise_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                           const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    dctx c = {g, plan_of(g), n, 0, g->cin, in, w, NULL, dout, NULL, din, dw, db, work};
    c.nparts = parts_of(c.units);
    if (use_threads(g, n, c.nparts)) {
#pragma omp parallel for schedule(dynamic)
        for (int part = 0; part < c.nparts; part++) backward_part(&c, part);
    } else {
        for (int part = 0; part < c.nparts; part++) backward_part(&c, part);
    }
}
