/* conv_stem_wino.c - the stem's 7-tap, stride-2 rows by 1D Winograd: ResNet's first layer
 * (3 -> 64, 7x7, stride 2, padding 3) with about half the multiply-adds of conv_stem.c.
 *
 * Along a row, output x of a kernel row w[0..6] with stride 2 and left padding pl reads
 * in[2x + j - pl], j = 0..6. Split the row into its two phases (polyphase), as
 * conv_stem.c does,
 *
 *   P0[m] = in[2m - pl],   P1[m] = in[2m + 1 - pl]   (0 outside the row),
 *
 * and the even taps read P0, the odd ones P1, both with stride 1:
 *
 *   out[x] = sum_{k<4} w[2k] P0[x + k]  +  sum_{k<3} w[2k+1] P1[x + k]
 *
 * a 4-tap and a 3-tap correlation. Each is a 1D Winograd minimal filter on tiles of 4
 * outputs (y = A^T [(G g) (.) (B^T d)], (.) element-wise):
 *  - the 3 odd taps: F(4, 3), 6 inputs, 6 products (winograd.h's transforms);
 *  - the 4 even taps: F(4, 4), 7 inputs, 7 products, at the points 0, 1, -1, 2, -2, 1/2
 *    and infinity (the matrices below; tests/test_stem_wino.c checks them against the
 *    plain sums).
 * So 13 products per (output channel, input channel, kernel row, tile of 4 outputs)
 * instead of 28 multiply-adds. The 13 inputs of tile t are in[8t - pl + k], k = 0..12
 * (the even k for P0, the odd ones for P1). The vertical direction stays direct: kernel
 * rows i = 0..kh-1 with any stride sh. Summed over input channels c and kernel rows i,
 * the products become small matrix products, one per transform point. F(4, 3)'s points
 * are F(4, 4)'s but 1/2, with the same columns of A^T, so both correlations' products at
 * a shared point add into one sum, and 7 sums per tile remain:
 *
 *   M_P[co][tile] = sum over the planes p of point P, c, i of U_p[co][c][i] * V_p[c][row(y, i)][tile]
 *
 * (13 planes p: 6 of F(4, 3), 7 of F(4, 4)), with U = G g (13 values per (co, c, i),
 * made once per call) and V = B^T d (13 values per (input row, c, tile), shared by all
 * output channels and by the output rows that read that input row). Then out = A^T M,
 * F(4, 4)'s 7 -> 4, with the bias added to M at the point 1 (its column of A^T is all
 * ones).
 *
 * Layout: the work is split into units (sample, block of output rows), as in conv_stem.c.
 * The tiles of a unit's output rows are numbered q = (y - y0) * T + tile (T tiles per
 * row), and a vector holds VL consecutive q (so a vector may span two rows: no lanes
 * idle at the rows' ends). Output row y's kernel row i reads input row y*sh - pt + i;
 * the unit keeps V in sh "streams" (input rows of the same remainder mod sh, in order),
 * so that kernel row i of the tiles q is V at q + (i / sh) * T in stream i % sh: a plain
 * vector load, whatever the row. A register block holds R output channels x NV vectors
 * of tiles for one point P; it sums over (p, c, i), broadcasting U, and leaves M_P in a
 * small buffer; the output transform then reads the 7 M_P of each channel, interleaves
 * the 4 outputs of the VL tiles into 4*VL consecutive outputs and stores them (with ow a
 * multiple of 4, a unit's outputs are consecutive in memory).
 *
 * Costs and gains (Zen 4, one thread, CPU time, ResNet's stem 3 -> 64 7x7/2 on 224):
 * 13 against 28 multiply-adds per (co, c, i, 4 outputs); the input transform is made
 * once per (c, input row) for 64 channels and about 3.5 output rows; the output
 * transform (with the interleave) and M's store and load add about 15 %. Forward at
 * batch 8 10.5 ms against 18.1 for conv_stem.c's direct sums, batch 1 1.21 against 2.16;
 * the weight gradient (below) 12.2-12.8 against 19.5, 1.55-1.6 against 2.7. Units run in
 * parallel, each output computed by one unit with sums in a fixed order: the result
 * does not depend on the threads. Rows outside the input are zero rows of V (their
 * products add 0); the float error is that of F(4, 4) (larger than the plain sums',
 * smaller than F(4x4, 3x3)'s: about 1e-6 of the largest output in the tests).
 */
#include "kernels.h"
#include "simd.h"     /* INLINE, UNROLL */
#include "winograd.h" /* VL (after simd.h's: this file's vectors are winograd.h's), vf, F(4, 3) */

#include <string.h>

#define NP3 6           /* points of F(4, 3) */
#define NP4 7           /* points of F(4, 4) */
#define NPT (NP3 + NP4) /* 13 */
#define SW_MAX_ROWS 8   /* output rows per unit */
#define SW_SLOT_MAX 65536 /* floats of a unit's buffers (V, padded input rows, M): 256 KB */
#define SW_MAX_CIN 4

#if defined(SW_R) /* experiments: -DSW_R=8 -DSW_NV=2 */
#elif VL == 16
#define SW_R 16
#define SW_NV 1
#else
#define SW_R 6
#define SW_NV 2
#endif

/* ---------------------------------------------------------------- F(4, 4)
 * Points 0, 1, -1, 2, -2, 1/2, infinity; 4 outputs y of 4 taps g over 7 inputs d,
 * y[i] = sum_j g[j] d[i + j] = A^T [(G g) (.) (B^T d)]:
 *
 *   B^T = | 4 -8 -5  10   1 -2  0 |   G = | 1/4     0      0     0   |
 *         | 0 -4  4   9  -1 -2  0 |       | 1/6    1/6    1/6   1/6  |
 *         | 0 -4 12  -7  -3  2  0 |       | 1/18  -1/18   1/18 -1/18 |
 *         | 0  2 -3  -4   3  2  0 |       | 1/72   1/36   1/18  1/9  |
 *         | 0  2 -5   0   5 -2  0 |       | 1/120 -1/60   1/30 -1/15 |
 *         | 0  4  0  -5   0  1  0 |       | 32/45  16/45  8/45  4/45 |
 *         | 0 -4  8   5 -10 -1  2 |       |   0      0      0    1/2  |
 *
 *   A^T = | 1  1  1  1  1   1   0 |
 *         | 0  1 -1  2 -2  1/2  0 |
 *         | 0  1  1  4  4  1/4  0 |
 *         | 0  1 -1  8 -8  1/8  1 |
 *
 * (Toom-Cook: A^T from the points' powers, B^T the transposed inverse of the 7-point
 * Vandermonde matrix, its rows scaled to integers and G divided by the same.) */
static const double G44[NP4][4] = {
    {1.0 / 4, 0, 0, 0},
    {1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6},
    {1.0 / 18, -1.0 / 18, 1.0 / 18, -1.0 / 18},
    {1.0 / 72, 1.0 / 36, 1.0 / 18, 1.0 / 9},
    {1.0 / 120, -1.0 / 60, 1.0 / 30, -1.0 / 15},
    {32.0 / 45, 16.0 / 45, 8.0 / 45, 4.0 / 45},
    {0, 0, 0, 1.0 / 2},
};
/* v = B^T d (7 -> 7) */
static inline void tr_input44(vf v[7], const vf d[7]) {
    v[0] = 4.0f * d[0] - 8.0f * d[1] - 5.0f * d[2] + 10.0f * d[3] + d[4] - 2.0f * d[5];
    v[1] = -4.0f * d[1] + 4.0f * d[2] + 9.0f * d[3] - d[4] - 2.0f * d[5];
    v[2] = -4.0f * d[1] + 12.0f * d[2] - 7.0f * d[3] - 3.0f * d[4] + 2.0f * d[5];
    v[3] = 2.0f * d[1] - 3.0f * d[2] - 4.0f * d[3] + 3.0f * d[4] + 2.0f * d[5];
    v[4] = 2.0f * d[1] - 5.0f * d[2] + 5.0f * d[4] - 2.0f * d[5];
    v[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
    v[6] = -4.0f * d[1] + 8.0f * d[2] + 5.0f * d[3] - 10.0f * d[4] - d[5] + 2.0f * d[6];
}
/* y = A^T m (7 -> 4) */
static inline void tr_output44(vf y[4], const vf m[7]) {
    vf a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c + m[5];
    y[1] = b + 2.0f * d + 0.5f * m[5];
    y[2] = a + 4.0f * c + 0.25f * m[5];
    y[3] = b + 8.0f * d + 0.125f * m[5] + m[6];
}

/* ---------------------------------------------------------------- plan */
typedef struct {
    const st_conv_geom *g;
    int T;        /* tiles per output row: ceil(ow / 4) */
    int rows;     /* output rows per unit */
    int nrb;      /* row blocks per sample */
    int npos;     /* input rows per stream: rows + (kh - 1) / sh */
    int Ls;       /* floats per stream of V (per point and channel) */
    int Wp;       /* floats per padded input row */
    int nblk;     /* channel blocks of R */
    size_t vfl, pfl, mfl, slot; /* a unit's V, two padded input rows, M; their sum (rounded) */
} sw_plan;

static void plan_rows(sw_plan *p, int rows) {
    const st_conv_geom *g = p->g;
    p->rows = rows;
    p->npos = rows + (g->kh - 1) / g->sh;
    int nq = round_up(rows * p->T, VL); /* tiles the unit's vectors cover */
    /* the products read up to nq + (kh - 1) / sh * T; the last row's stores spill VL - 1 */
    p->Ls = round_up(imax(nq + (g->kh - 1) / g->sh * p->T, p->npos * p->T + VL), VL);
    p->vfl = (size_t)NPT * g->cin * g->sh * p->Ls;
    p->pfl = 2 * (size_t)p->Wp;
    p->mfl = (size_t)NP4 * SW_R * SW_NV * VL;
    p->slot = up16(p->vfl) + up16(p->pfl) + up16(p->mfl);
}

static void make_plan(sw_plan *p, const st_conv_geom *g) {
    p->g = g;
    p->T = (g->ow + 3) / 4;
    p->Wp = 8 * round_up(p->T, VL) + 16; /* tile_inputs reads 8 * VL + 13 floats a vector */
    int rows = imin(SW_MAX_ROWS, g->oh);
    plan_rows(p, rows);
    while (rows > 1 && p->slot > SW_SLOT_MAX) plan_rows(p, --rows);
    p->nrb = (g->oh + p->rows - 1) / p->rows;
    p->nblk = (g->cout + SW_R - 1) / SW_R;
}

static int wino_off = 0;
void st_stem_wino_enable(int on) { wino_off = !on; }

/* the geometry alone (the workspace is sized by it, whatever the switch) */
static int fits(const st_conv_geom *g) {
    if (g->groups != 1 || g->dh != 1 || g->dw != 1 || g->cin > SW_MAX_CIN) return 0;
    if (g->kw != 7 || g->sw != 2 || g->kh < 1) return 0;
    sw_plan p;
    make_plan(&p, g);
    return p.slot <= SW_SLOT_MAX;
}

int st_stem_wino_possible(const st_conv_geom *g) { return !wino_off && fits(g); }

static size_t u_floats(const sw_plan *p) { /* per channel block: bias, then U */
    return up16((size_t)SW_R * (1 + NPT * p->g->cin * p->g->kh));
}

size_t st_stem_wino_work_size(const st_conv_geom *g, int n) {
    (void)n;
    if (!fits(g)) return 0;
    sw_plan p;
    make_plan(&p, g);
    return 16 + p.nblk * u_floats(&p) + (size_t)WINO_MAX_SLOTS * p.slot;
}

/* ---------------------------------------------------------------- the kernel transform
 * wk[blk] = the block's R biases, then U[p][c][i][R] (0 past cout): points 0..5 of
 * F(4, 3) on the odd taps w[1], w[3], w[5], points 6..12 of F(4, 4) on the even ones. */
static void pack(float *wk, const float *w, const float *b, const sw_plan *p) {
    const st_conv_geom *g = p->g;
    int CK = g->cin * g->kh;
    for (int blk = 0; blk < p->nblk; blk++, wk += u_floats(p))
        for (int r = 0; r < SW_R; r++) {
            int co = blk * SW_R + r;
            wk[r] = co < g->cout && b ? b[co] : 0.0f;
            for (int ck = 0; ck < CK; ck++) {
                const float *t = w + ((size_t)co * CK + ck) * 7;
                vf go[3], u3[NP3];
                for (int k = 0; k < 3; k++) go[k] = vsplat(co < g->cout ? t[2 * k + 1] : 0.0f);
                tr_kernel(u3, go);
                for (int q = 0; q < NP3; q++) wk[SW_R + ((size_t)q * CK + ck) * SW_R + r] = u3[q][0];
                for (int q = 0; q < NP4; q++) {
                    double s = 0;
                    for (int k = 0; k < 4 && co < g->cout; k++) s += G44[q][k] * t[2 * k];
                    wk[SW_R + ((size_t)(NP3 + q) * CK + ck) * SW_R + r] = (float)s;
                }
            }
        }
}

/* ---------------------------------------------------------------- the input transform
 * D[k] lane l = x[8l + k], k = 0..12: the 13 inputs of VL consecutive tiles, from
 * 8*VL + 13 consecutive floats. With GCC's vector shuffles, three rounds of splitting
 * pairs of vectors into their even and odd lanes (x[2j], then x[4j + r], then x[8j + r]:
 * 24 shuffles), and for k >= 8 the lanes of D[k - 8] moved down by one tile. */
#if defined(__GNUC__) && !defined(__clang__)
typedef int iv __attribute__((vector_size(VL * sizeof(int))));
#if VL == 16
static const iv EVEN = {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30};
static const iv ODD = {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
static const iv NEXT = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
#elif VL == 8
static const iv EVEN = {0, 2, 4, 6, 8, 10, 12, 14}, ODD = {1, 3, 5, 7, 9, 11, 13, 15};
static const iv NEXT = {1, 2, 3, 4, 5, 6, 7, 8};
#else
static const iv EVEN = {0, 2, 4, 6}, ODD = {1, 3, 5, 7}, NEXT = {1, 2, 3, 4};
#endif
/* the even lanes of (a0, a1) to e, the odd ones to o */
INLINE void split(vf *e, vf *o, vf a0, vf a1) {
    *e = __builtin_shuffle(a0, a1, EVEN);
    *o = __builtin_shuffle(a0, a1, ODD);
}
INLINE void tile_inputs(vf D[13], const float *x) {
    vf a[8], b[8], c[8];
    for (int m = 0; m < 8; m++) a[m] = vload(x + m * VL);
    for (int m = 0; m < 4; m++) split(&b[m], &b[4 + m], a[2 * m], a[2 * m + 1]); /* x[2j], x[2j+1] */
    for (int h = 0; h < 8; h += 4)                                                /* x[4j+r]: r = 0, 2, 1, 3 */
        for (int m = 0; m < 2; m++) split(&c[h + m], &c[h + 2 + m], b[h + 2 * m], b[h + 2 * m + 1]);
    static const int r[4] = {0, 2, 1, 3};
    for (int k = 0; k < 4; k++) split(&D[r[k]], &D[r[k] + 4], c[2 * k], c[2 * k + 1]); /* x[8j+r], x[8j+r+4] */
    for (int k = 0; k < 5; k++) D[8 + k] = __builtin_shuffle(D[k], vsplat(x[8 * VL + k]), NEXT);
}
#else
INLINE void tile_inputs(vf D[13], const float *x) {
    for (int k = 0; k < 13; k++)
        for (int l = 0; l < VL; l++) D[k][l] = x[8 * l + k];
}
#endif

/* dst[m] = in[c][r][m - pl] for m < Wp (0 outside the input) */
static void pad_row(float *dst, const float *in, const sw_plan *p, int c, int r) {
    const st_conv_geom *g = p->g;
    int Wp = p->Wp, a = imin(Wp, imax(0, g->pl)), e = imax(a, imin(Wp, g->iw + g->pl));
    if (r < 0 || r >= g->ih) a = e = 0;
    memset(dst, 0, sizeof(float) * a);
    if (e > a) memcpy(dst + a, in + ((size_t)c * g->ih + r) * g->iw + a - g->pl, sizeof(float) * (e - a));
    memset(dst + e, 0, sizeof(float) * (Wp - e));
}

/* V[p][c][s][f] for stream s, f = pos * T + tile: input row first + pos * sh + s, a row
 * at a time (its last vector's lanes past T spill into the next row's, which overwrites
 * them; past the last row, zeros). Each row is first copied zero-padded into P (two rows
 * of Wp floats, the next row copied before this one is read: reading a row just copied
 * stalls on the copy's stores, ResNet's stem 10.5 -> 10.9 ms at batch 8). */
static void input_transform(float *V, float *P, const float *in, const sw_plan *p, int first) {
    const st_conv_geom *g = p->g;
    int Wp = p->Wp, T = p->T;
    size_t pstride = (size_t)g->cin * g->sh * p->Ls;
    for (int c = 0; c < g->cin; c++)
        for (int s = 0; s < g->sh; s++) {
            float *vs = V + ((size_t)c * g->sh + s) * p->Ls;
            pad_row(P, in, p, c, first + s);
            for (int pos = 0; pos < p->npos; pos++) {
                const float *row = P + (size_t)(pos & 1) * Wp;
                if (pos + 1 < p->npos) pad_row(P + (size_t)((pos + 1) & 1) * Wp, in, p, c, first + (pos + 1) * g->sh + s);
                for (int t0 = 0; t0 < T; t0 += VL) {
                    vf D[13], d3[6], d4[7], v3[NP3], v4[NP4];
                    tile_inputs(D, row + 8 * t0);
                    for (int k = 0; k < 6; k++) d3[k] = D[2 * k + 1];
                    for (int k = 0; k < 7; k++) d4[k] = D[2 * k];
                    tr_input(v3, d3);
                    tr_input44(v4, d4);
                    float *v = vs + pos * T + t0;
                    for (int q = 0; q < NP3; q++) vstore(v + q * pstride, v3[q]);
                    for (int q = 0; q < NP4; q++) vstore(v + (NP3 + q) * pstride, v4[q]);
                }
            }
            for (int q = 0; q < NPT; q++)
                memset(vs + q * pstride + p->npos * T, 0, sizeof(float) * (p->Ls - p->npos * T));
        }
}

/* ---------------------------------------------------------------- products and output
 * F(4, 3)'s points (0, 1, -1, 2, -2, infinity) are F(4, 4)'s but 1/2, with the same
 * columns of A^T: the two correlations' products at a shared point are summed into one
 * M, and one output transform (F(4, 4)'s, 7 -> 4) gives the sum of both. Output point P
 * sums V planes src[P][0] (of F(4, 3), -1: none) and src[P][1] (of F(4, 4)). The bias
 * goes into M at the point 1, whose column of A^T is all ones. */
static const int src_planes[NP4][2] = {{0, 6}, {1, 7}, {2, 8}, {3, 9}, {4, 10}, {-1, 11}, {5, 12}};
#define MSTRIDE (SW_R * SW_NV * VL) /* floats of M per output point */

/* one register block of output point P: M[P][r][v] = bias (P = 1) + sum over the
 * planes, channels c and kernel rows i of U[plane][c][i][r] * V[plane][c][i % sh][q0 + v*VL + (i / sh) * T] */
INLINE void products(const int NVV, const float *restrict V, const float *restrict wk, float *restrict M,
                     const sw_plan *p, int P, int q0) {
    const st_conv_geom *g = p->g;
    int sh = g->sh, kh = g->kh, T = p->T;
    size_t pstride = (size_t)g->cin * sh * p->Ls, ustride = (size_t)g->cin * kh * SW_R;
    vf acc[SW_R * SW_NV];
    UNROLL
    for (int r = 0; r < SW_R; r++)
        UNROLL
        for (int v = 0; v < NVV; v++) acc[r * NVV + v] = vsplat(P == 1 ? wk[r] : 0.0f);
    for (int h = 0; h < 2; h++) {
        int plane = src_planes[P][h];
        if (plane < 0) continue;
        const float *Vp = V + plane * pstride, *Up = wk + SW_R + plane * ustride;
        for (int c = 0; c < g->cin; c++)
            for (int i = 0; i < kh; i++) {
                const float *x = Vp + ((size_t)c * sh + i % sh) * p->Ls + q0 + (i / sh) * T;
                const float *u = Up + (size_t)(c * kh + i) * SW_R;
                vf xv[SW_NV];
                UNROLL
                for (int v = 0; v < NVV; v++) xv[v] = vload(x + v * VL);
                UNROLL
                for (int r = 0; r < SW_R; r++)
                    UNROLL
                    for (int v = 0; v < NVV; v++) acc[r * NVV + v] += u[r] * xv[v];
            }
    }
    UNROLL
    for (int r = 0; r < SW_R; r++)
        UNROLL
        for (int v = 0; v < NVV; v++) vstore(M + P * MSTRIDE + (r * SW_NV + v) * VL, acc[r * NVV + v]);
}

/* the 4 outputs of each of VL tiles (y[i] lane l: output i of tile l) as 4*VL consecutive outputs */
INLINE void interleave(float *o, const vf y[4]) {
#if defined(__GNUC__) && !defined(__clang__)
    typedef int iv __attribute__((vector_size(VL * sizeof(int))));
#if VL == 16
    const iv lo = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23};
    const iv hi = {8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
#elif VL == 8
    const iv lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
#else
    const iv lo = {0, 4, 1, 5}, hi = {2, 6, 3, 7};
#endif
    vf a0 = __builtin_shuffle(y[0], y[2], lo), a1 = __builtin_shuffle(y[0], y[2], hi);
    vf b0 = __builtin_shuffle(y[1], y[3], lo), b1 = __builtin_shuffle(y[1], y[3], hi);
    vstore(o, __builtin_shuffle(a0, b0, lo));
    vstore(o + VL, __builtin_shuffle(a0, b0, hi));
    vstore(o + 2 * VL, __builtin_shuffle(a1, b1, lo));
    vstore(o + 3 * VL, __builtin_shuffle(a1, b1, hi));
#else
    for (int l = 0; l < VL; l++)
        for (int i = 0; i < 4; i++) o[4 * l + i] = y[i][l];
#endif
}

/* channel r's outputs of the NVV vectors of tiles from q0: out = A^T M */
INLINE void outputs(const int NVV, const float *M, float *out, const sw_plan *p, int r, int q0, int nq, int direct) {
    const st_conv_geom *g = p->g;
    UNROLL
    for (int v = 0; v < NVV; v++) {
        vf m[NP4], y[4];
        for (int k = 0; k < NP4; k++) m[k] = vload(M + k * MSTRIDE + (r * SW_NV + v) * VL);
        tr_output44(y, m);
        int qv = q0 + v * VL;
        if (direct && qv + VL <= nq) {
            interleave(out + 4 * (size_t)qv, y);
            continue;
        }
        /* tile by tile: tile q is (row yy, columns x .. x+4); a row's last tile, where
         * partial, writes all its 4 values, into the next rows' first columns, which their
         * own tiles (later) overwrite, unless that would pass the unit's last row */
        float t[4 * VL];
        interleave(t, y);
        int yy = qv / p->T, x = qv % p->T * 4;
        size_t end = (size_t)(nq / p->T) * g->ow;
        for (int l = 0; l < VL && qv + l < nq; l++) {
            size_t at = (size_t)yy * g->ow + x;
            if (at + 4 <= end) memcpy(out + at, t + 4 * l, 4 * sizeof(float));
            else memcpy(out + at, t + 4 * l, sizeof(float) * imin(4, g->ow - x));
            if ((x += 4) >= g->ow) x = 0, yy++;
        }
    }
}

/* ---------------------------------------------------------------- units */
typedef struct {
    sw_plan p;
    const float *in, *wk;
    float *out, *slots;
    const st_epilogue *epi;
} sw_ctx;

static void run_unit(const sw_ctx *cx, float *slot, int unit) {
    const sw_plan *p = &cx->p;
    const st_conv_geom *g = p->g;
    int s = unit / p->nrb, y0 = unit % p->nrb * p->rows, y1 = imin(y0 + p->rows, g->oh);
    float *V = slot, *P = V + up16(p->vfl), *M = P + up16(p->pfl);
    input_transform(V, P, cx->in + (size_t)s * g->cin * g->ih * g->iw, p, y0 * g->sh - g->pt);
    size_t plane = (size_t)g->oh * g->ow;
    int nq = (y1 - y0) * p->T, direct = g->ow % 4 == 0;
    float *os = cx->out + (size_t)s * g->cout * plane + (size_t)y0 * g->ow;
    for (int blk = 0; blk < p->nblk; blk++) {
        const float *wk = cx->wk + blk * u_floats(p);
        int co = blk * SW_R, nc = imin(SW_R, g->cout - co);
        int q0 = 0;
        for (; q0 + SW_NV * VL <= nq || (SW_NV > 1 && nq - q0 > (SW_NV - 1) * VL); q0 += SW_NV * VL) {
            if (direct) /* the outputs' lines, fetched while the products run (batch 8 11.5 -> 10.5 ms) */
                for (int r = 0; r < nc; r++)
                    for (int k = 0; k < 4 * SW_NV * VL && 4 * q0 + k < nq * 4; k += 16)
                        __builtin_prefetch(os + (co + r) * plane + 4 * (size_t)q0 + k, 1, 3);
            for (int P = 0; P < NP4; P++) products(SW_NV, V, wk, M, p, P, q0);
            for (int r = 0; r < nc; r++) outputs(SW_NV, M, os + (co + r) * plane, p, r, q0, nq, direct);
        }
        for (; q0 < nq; q0 += VL) {
            for (int P = 0; P < NP4; P++) products(1, V, wk, M, p, P, q0);
            for (int r = 0; r < nc; r++) outputs(1, M, os + (co + r) * plane, p, r, q0, nq, direct);
        }
    }
    if (cx->epi)
        for (int co = 0; co < g->cout; co++)
            for (int y = y0; y < y1; y++) {
                size_t at = ((size_t)s * g->cout + co) * plane + (size_t)y * g->ow;
                st_epilogue_span(cx->epi, cx->out + at, cx->epi->add ? cx->epi->add + at : NULL, (size_t)g->ow, co);
            }
}

void st_stem_wino_forward(float *out, const float *in, const float *w, const float *b, int n, const st_conv_geom *g,
                          float *work, const st_epilogue *epi) {
    if (n <= 0) return;
    sw_ctx cx = {{0}, in, NULL, out, NULL, epi};
    make_plan(&cx.p, g);
    float *wk = wino_aligned(work);
    cx.wk = wk;
    cx.slots = wk + cx.p.nblk * u_floats(&cx.p);
    pack(wk, w, b, &cx.p);
    int units = n * cx.p.nrb, nt = threads_for(units);
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(nt)
        for (int u = 0; u < units; u++) run_unit(&cx, cx.slots + (size_t)thread_id() * cx.p.slot, u);
        return;
    }
#endif
    (void)nt;
    for (int u = 0; u < units; u++) run_unit(&cx, cx.slots, u);
}

/* ---------------------------------------------------------------- weight gradient
 * The adjoint of the forward pass. With dY the 4 values of dL/dout of a tile, the
 * gradient of its 7 M is dM = A dY (F(4, 4)'s A: 4 -> 7; point 1, all ones, is also
 * the bias's), and, as M_P = sum over (plane, c, i) of U * V,
 *
 *   dL/dU_plane[co][c][i] = sum over (sample, output row, tile) of dM_P[co][q] * V_plane[c][i % sh][q + (i / sh) * T]
 *   dL/db[co]             = sum over the same of dM_1[co][q]
 *
 * then dL/dw = G^T dL/dU for each correlation (F(4, 3)'s on the odd taps, F(4, 4)'s on
 * the even ones). The sums over q are vectorised over the tiles (lanes), as conv_stem.c's
 * weight gradient over columns: a register block holds WR channels x WT "taps" (a tap:
 * a (plane, c, i), listed point by point, so that a block's taps share one dM_P), and runs
 * over all the tiles of a unit (a sample's block of output rows): per vector of tiles, WR
 * dM loads, WT V loads, WR*WT multiply-adds. A unit first makes V (the forward's input
 * transform) and, per block of WR channels, dM of its tiles (dL/dout's 4*VL values
 * split into 4 vectors of VL tiles, zero past the row's end and past the unit's tiles).
 * Tiles past the row's end and lanes past the unit's tiles thus add 0.
 *
 * Parts: as in conv_stem.c, the units are split into a fixed number of parts (from the
 * work, not the threads), each with its own vector sums; the parts' lane sums are added
 * in part order: the result does not depend on the threads. */
#define WR 4           /* channels per register block */
#define WT 6           /* taps per register block */
#ifndef BW_ROWS
#define BW_ROWS 112
#endif
#define BW_ROWS_     /* output rows per unit, at most */
#define BW_SLOT_MAX (1 << 19) /* floats of V and dM a thread, at most (ResNet's stem: 341k) */
#define BW_PARTS 8     /* parts, at most */
#define BW_PART_MIN_MACS 25.0e6 /* (plain) multiply-adds per part, at least */
#define BW_MAX_CK 28   /* input channels x kernel rows: 4 x 7 */
#define BW_MAX_TAPS (NP4 * (2 * BW_MAX_CK + WT))

typedef struct {
    sw_plan p;        /* rows: the unit's */
    int ncb;          /* channel blocks of WR */
    int ntb;          /* tap blocks of WT */
    int nqv;          /* vectors of tiles of a unit */
    int units, nparts;
    size_t vsums;     /* a part's vector sums: ncb * ntb * WR * WT + cout (the bias) vectors */
    size_t dmfl;      /* dM of a channel block: WR * NP4 * nqv * VL */
    size_t stride;    /* a part's floats: vector sums, lane sums */
    size_t slot;      /* a thread's: V, two padded rows, dM */
    int tb_point[BW_MAX_TAPS / WT]; /* tap block -> output point */
    int tap[BW_MAX_TAPS];          /* tap slot -> plane * CK + c * kh + i (-1: none) */
} bw_plan;

static int bw_plan_make(bw_plan *w, const st_conv_geom *g, int n) {
    int CK = g->cin * g->kh;
    if (!fits(g) || CK > BW_MAX_CK || n <= 0) return 0;
    sw_plan *p = &w->p;
    make_plan(p, g);
    double macs = (double)n * g->cout * g->oh * g->ow * CK * 7, parts = macs / BW_PART_MIN_MACS;
    w->nparts = parts >= BW_PARTS ? BW_PARTS : parts < 1 ? 1 : (int)parts;
    int rows = imin(BW_ROWS, g->oh), blocks = (g->oh + rows - 1) / rows;
    if (blocks * n < w->nparts) rows = imax(1, g->oh * n / w->nparts); /* a unit per part at least */
    plan_rows(p, imin(rows, g->oh));
    while (p->rows > 1 && p->vfl + (size_t)WR * NP4 * round_up(p->rows * p->T, VL) > BW_SLOT_MAX)
        plan_rows(p, p->rows - 1);
    p->nrb = (g->oh + p->rows - 1) / p->rows;
    w->units = n * p->nrb;
    if (w->nparts > w->units) w->nparts = w->units;
    w->ncb = (g->cout + WR - 1) / WR;
    w->nqv = (p->rows * p->T + VL - 1) / VL;
    w->ntb = 0;
    int slot = 0;
    for (int P = 0; P < NP4; P++) {
        int first = slot;
        for (int h = 0; h < 2; h++)
            if (src_planes[P][h] >= 0)
                for (int j = 0; j < CK; j++) w->tap[slot++] = src_planes[P][h] * CK + j;
        while ((slot - first) % WT) w->tap[slot++] = -1;
        for (int b = first / WT; b < slot / WT; b++) w->tb_point[b] = P;
    }
    w->ntb = slot / WT;
    w->vsums = ((size_t)w->ncb * w->ntb * WR * WT + g->cout) * VL;
    w->dmfl = (size_t)WR * NP4 * w->nqv * VL;
    w->stride = up16(w->vsums) + up16(w->vsums / VL);
    w->slot = up16(p->vfl) + up16(p->pfl) + up16(w->dmfl);
    return 1;
}

int st_stem_wino_backward_possible(const st_conv_geom *g, int n) {
    bw_plan w;
    return !wino_off && bw_plan_make(&w, g, n);
}

size_t st_stem_wino_backward_work_size(const st_conv_geom *g, int n) {
    bw_plan w;
    if (!bw_plan_make(&w, g, n)) return 0;
    return 16 + (size_t)w.nparts * w.stride + (size_t)imin(w.nparts, WINO_MAX_SLOTS) * w.slot;
}

/* s = A y (4 -> 7): the adjoint of tr_output44 */
static inline void tr_grad44(vf s[7], const vf y[4]) {
    vf e = y[0] + y[2], o = y[1] + y[3], e2 = y[0] + 4.0f * y[2], o2 = 2.0f * y[1] + 8.0f * y[3];
    s[0] = y[0];
    s[1] = e + o;
    s[2] = e - o;
    s[3] = e2 + o2;
    s[4] = e2 - o2;
    s[5] = y[0] + 0.5f * y[1] + 0.25f * y[2] + 0.125f * y[3];
    s[6] = y[3];
}

/* the adjoint of interleave: 4*VL consecutive outputs (4 of each of VL tiles) to y[i]
 * lane l = o[4l + i] */
INLINE void deinterleave(vf y[4], const float *o) {
#if defined(__GNUC__) && !defined(__clang__)
    vf e0, o0, e1, o1;
    split(&e0, &o0, vload(o), vload(o + VL));          /* o[2j], o[2j+1] */
    split(&e1, &o1, vload(o + 2 * VL), vload(o + 3 * VL));
    split(&y[0], &y[2], e0, e1);                        /* o[4j], o[4j+2] */
    split(&y[1], &y[3], o0, o1);                        /* o[4j+1], o[4j+3] */
#else
    for (int l = 0; l < VL; l++)
        for (int i = 0; i < 4; i++) y[i][l] = o[4 * l + i];
#endif
}

typedef struct {
    bw_plan w;
    const float *in, *dout;
    float *work;
    size_t off[BW_MAX_TAPS]; /* tap slot -> its V row at tile 0 */
} bw_ctx;

/* dM[r][P][q] of channel co0 + r (0 past cout) for the unit's tiles; adds dM_1 to the
 * channels' bias sums bs[co] (vectors) */
static void grad_transform(float *dM, float *bs, const float *dr, const bw_plan *w, int co0, int rows) {
    const sw_plan *p = &w->p;
    const st_conv_geom *g = p->g;
    size_t plane = (size_t)g->oh * g->ow, qs = (size_t)w->nqv * VL;
    int nq = rows * p->T, direct = g->ow % 4 == 0;
    for (int r = 0; r < WR; r++) {
        int co = co0 + r;
        float *d = dM + (size_t)r * NP4 * qs;
        if (co >= g->cout) {
            memset(d, 0, sizeof(float) * NP4 * qs);
            continue;
        }
        const float *o = dr + co * plane;
        vf bsum = vload(bs + co * VL);
        for (int qv = 0; qv < w->nqv * VL; qv += VL) {
            vf y[4], s[NP4];
            if (direct && qv + VL <= nq) deinterleave(y, o + 4 * (size_t)qv);
            else {
                float t[4 * VL] = {0};
                int yy = qv / p->T, x = qv % p->T * 4;
                for (int l = 0; l < VL && qv + l < nq; l++) {
                    const float *src = o + (size_t)yy * g->ow + x;
                    if (x + 4 <= g->ow) memcpy(t + 4 * l, src, 4 * sizeof(float));
                    else memcpy(t + 4 * l, src, sizeof(float) * (g->ow - x));
                    if ((x += 4) >= g->ow) x = 0, yy++;
                }
                deinterleave(y, t);
            }
            tr_grad44(s, y);
            for (int P = 0; P < NP4; P++) vstore(d + P * qs + qv, s[P]);
            bsum += s[1];
        }
        vstore(bs + co * VL, bsum);
    }
}

/* one register block: WR channels' dM_P (dm, channel stride qs) x the WT taps at V + off[t],
 * over nqv >= 1 vectors of tiles; adds to the block's vector sums vs (first: writes them) */
static void grad_block(float *vs, const float *dm, size_t qs, const float *V, const size_t *off, int nqv, int first) {
    vf acc[WR * WT], d[WR];
    /* (the first vector of tiles sets the sums: no zeros to start from, which GCC would
     * rather memset on the stack) */
    UNROLL
    for (int r = 0; r < WR; r++) d[r] = vload(dm + r * qs);
    UNROLL
    for (int t = 0; t < WT; t++) {
        vf xv = vload(V + off[t]);
        UNROLL
        for (int r = 0; r < WR; r++) acc[r * WT + t] = d[r] * xv;
    }
    for (int qv = VL; qv < nqv * VL; qv += VL) {
        UNROLL
        for (int r = 0; r < WR; r++) d[r] = vload(dm + r * qs + qv);
        UNROLL
        for (int t = 0; t < WT; t++) {
            vf xv = vload(V + off[t] + qv);
            __asm__("" : "+v"(xv)); /* one load per tap, kept in a register */
            UNROLL
            for (int r = 0; r < WR; r++) acc[r * WT + t] += d[r] * xv;
        }
    }
    UNROLL
    for (int a = 0; a < WR * WT; a++) vstore(vs + a * VL, first ? acc[a] : vload(vs + a * VL) + acc[a]);
}

static void bw_unit(const bw_ctx *c, float *vs, float *slot, int unit, int first) {
    const bw_plan *w = &c->w;
    const sw_plan *p = &w->p;
    const st_conv_geom *g = p->g;
    int s = unit / p->nrb, y0 = unit % p->nrb * p->rows, y1 = imin(y0 + p->rows, g->oh);
    float *V = slot, *P = V + up16(p->vfl), *dM = P + up16(p->pfl);
    input_transform(V, P, c->in + (size_t)s * g->cin * g->ih * g->iw, p, y0 * g->sh - g->pt);
    size_t plane = (size_t)g->oh * g->ow, qs = (size_t)w->nqv * VL;
    const float *dr = c->dout + (size_t)s * g->cout * plane + (size_t)y0 * g->ow;
    float *bs = vs + (size_t)w->ncb * w->ntb * WR * WT * VL;
    int nqv = ((y1 - y0) * p->T + VL - 1) / VL;
    size_t span = (size_t)(y1 - y0) * g->ow; /* a channel's dL/dout in the unit */
    for (int cb = 0; cb < w->ncb; cb++) {
        grad_transform(dM, bs, dr, w, cb * WR, y1 - y0);
        int next = (cb + 1) * WR, nn = imax(0, imin(WR, g->cout - next)); /* the next block's channels */
        size_t lines = (span + 15) / 16, per_tb = (lines + w->ntb - 1) / w->ntb;
        for (int tb = 0; tb < w->ntb; tb++) {
            /* the next block's dL/dout, fetched (to L2) a slice per pass (batch 8 12.4 -> 12.0 ms) */
            size_t l0 = tb * per_tb, l1 = l0 + per_tb < lines ? l0 + per_tb : lines;
            for (int r = 0; r < nn; r++)
                for (size_t l = l0; l < l1; l++)
                    __builtin_prefetch(dr + (next + r) * plane + l * 16, 0, 2);
            grad_block(vs + ((size_t)cb * w->ntb + tb) * WR * WT * VL, dM + (size_t)w->tb_point[tb] * qs, NP4 * qs, V,
                       c->off + tb * WT, nqv, first);
        }
    }
}

static void bw_part(const bw_ctx *c, float *slot, int part) {
    const bw_plan *w = &c->w;
    float *vs = c->work + (size_t)part * w->stride, *sums = vs + up16(w->vsums);
    size_t bias = (size_t)w->ncb * w->ntb * WR * WT * VL; /* the bias sums, after the blocks' */
    memset(vs + bias, 0, sizeof(float) * (w->vsums - bias));
    int u0 = (int)((long)w->units * part / w->nparts), u1 = (int)((long)w->units * (part + 1) / w->nparts);
    for (int u = u0; u < u1; u++) bw_unit(c, vs, slot, u, u == u0); /* the first unit writes the blocks' sums */
    for (size_t i = 0; i < w->vsums / VL; i++) {
        float a = 0;
        for (int l = 0; l < VL; l++) a += vs[i * VL + l];
        sums[i] = a;
    }
}

void st_stem_wino_backward(float *dw, float *db, const float *dout, const float *in, int n, const st_conv_geom *g,
                           float *work) {
    bw_ctx c;
    if (!bw_plan_make(&c.w, g, n)) return;
    const bw_plan *w = &c.w;
    const sw_plan *p = &w->p;
    c.in = in;
    c.dout = dout;
    c.work = wino_aligned(work);
    int CK = g->cin * g->kh;
    size_t pstride = (size_t)g->cin * g->sh * p->Ls;
    for (int k = 0; k < w->ntb * WT; k++) {
        int t = w->tap[k] < 0 ? 0 : w->tap[k], plane = t / CK, ci = t % CK / g->kh, i = t % g->kh;
        c.off[k] = plane * pstride + (size_t)(ci * g->sh + i % g->sh) * p->Ls + (size_t)(i / g->sh) * p->T;
    }
    int nt = threads_for(w->nparts);
    float *slots = c.work + (size_t)w->nparts * w->stride;
#ifdef _OPENMP
    if (nt > 1) {
#pragma omp parallel for schedule(dynamic) num_threads(nt)
        for (int part = 0; part < w->nparts; part++) bw_part(&c, slots + (size_t)thread_id() * w->slot, part);
    } else
#endif
        for (int part = 0; part < w->nparts; part++) bw_part(&c, slots, part);
    (void)nt;
    /* dL/dU (the parts' sums in part order), then dL/dw = G^T dL/dU, per channel */
    for (int co = 0; co < g->cout; co++) {
        int cb = co / WR, r = co % WR;
        double dU[NPT][BW_MAX_CK] = {{0}};
        for (int k = 0; k < w->ntb * WT; k++) {
            if (w->tap[k] < 0) continue;
            size_t at = (((size_t)cb * w->ntb + k / WT) * WR + r) * WT + k % WT;
            float a = 0;
            for (int part = 0; part < w->nparts; part++) a += c.work[(size_t)part * w->stride + up16(w->vsums) + at];
            dU[w->tap[k] / CK][w->tap[k] % CK] = a;
        }
        for (int j = 0; j < CK; j++) {
            float *dwj = dw + ((size_t)co * CK + j) * 7;
            vf u3[NP3], g3[3];
            for (int q = 0; q < NP3; q++) u3[q] = vsplat((float)dU[q][j]);
            tr_kernel_adj(g3, u3);
            for (int k = 0; k < 3; k++) dwj[2 * k + 1] += g3[k][0];
            for (int k = 0; k < 4; k++) {
                double a = 0;
                for (int q = 0; q < NP4; q++) a += G44[q][k] * dU[NP3 + q][j];
                dwj[2 * k] += (float)a;
            }
        }
        if (db) {
            size_t at = (size_t)w->ncb * w->ntb * WR * WT + co;
            float a = 0;
            for (int part = 0; part < w->nparts; part++) a += c.work[(size_t)part * w->stride + up16(w->vsums) + at];
            db[co] += a;
        }
    }
}
