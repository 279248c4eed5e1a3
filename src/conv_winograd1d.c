/* conv_winograd1d.c - 1D convolutions with 3 taps, stride 1, by Winograd's F(4, 3).
 *
 * The output row of each sample is cut into tiles of 4 outputs. A tile reads 6 inputs d,
 * and for one (output channel, input channel) pair its 4 outputs are (winograd.h's
 * matrices, the points 0, 1, -1, 2, -2 and infinity)
 *
 *   y = A^T [ (G g) (.) (B^T d) ]        ((.) = element-wise product)
 *
 * with g the 3 taps. Summed over input channels, the element-wise product becomes 6
 * independent matrix products, one per transform point xi:
 *
 *   M[xi] (K x tiles) = U[xi] (K x C) * V[xi] (C x tiles),  U = G g,  V = B^T d
 *
 * 6 multiply-adds per (tile, k, c) against 12 for the plain sums: half the arithmetic.
 * The transforms are those of conv_winograd.c's F(4x4, 3x3) along one axis only, so
 * the error is smaller than the 2D one's (tests/test_winograd1d.c measures it).
 *
 * The passes, as in conv_winograd.c:
 *  - forward: U from the weights, then blocks of tiles: V from the input, the 6
 *    products (winograd.h's product kernel), the output transform with the bias added;
 *  - input gradient: the same routine on dL/dout, with the taps reversed, the channels
 *    swapped (w'[c][k][j] = w[k][c][2-j]) and left padding 2 - p, added to din;
 *  - weight gradient: with S = A dY the transforms of dL/dout's tiles, dL/dU[xi] (K x C)
 *    = sum over tiles of S[xi] V[xi]^T, 6 products (K x tiles) (tiles x C) reduced over
 *    the tiles (st_sgemm with B transposed), then dL/dg = G^T dL/dU.
 *
 * Layout: the tiles of a sample are cut into vectors of VL consecutive tiles (the last
 * one padded: its lanes past the row read zeros and write nothing), numbered (sample,
 * vector); a block is a range of these vectors. V[xi][c][t] and M[xi][k][t], tiles in
 * the lanes; U[xi][k / MR][c][k % MR] in panels, as in the 2D path. A vector of 16 tiles
 * reads 66 consecutive inputs: with AVX-512, five masked loads (zeros outside the row)
 * and a few permutes put input j of every tile in one vector; the outputs go back the
 * same way.
 *
 * Threads split the blocks (and, with few blocks, ranges of output channels); the weight
 * gradient sums a number of parts fixed by the shape, each over its own blocks in order,
 * and adds the parts in order: the results do not depend on the thread count.
 */
#include "kernels.h"
#include "winograd.h"

#include <string.h>

#define NPT 6                         /* transform points */
#define BLOCK_BYTES (384 << 10)       /* V + M of one forward block: about a third of an L2 */
#define KR_MAX 128                    /* output channels per forward unit, at most */
#define DW_BLOCK_BYTES (512 << 10)    /* weight gradient: V + S of one block */
#define DW_PARTS 8                    /* weight gradient: parts with their own dL/dU, at most */
#define MAX_VB 64                     /* vectors of VL tiles per block, at most */

/* ---------------------------------------------------------------- plan
 * One correlation of a (n, C, iw) input with 3-tap kernels into a (n, K, ow) output,
 * output x reading inputs x - pl .. x - pl + 2 (zeros outside; pl may be negative, as in
 * the input gradient of a convolution padded by more than 2). */
typedef struct {
    int n, C, K, iw, ow, pl;
    int tw;           /* tiles of a sample: ceil(ow / 4) */
    int nvs, nvec;    /* vectors of VL tiles per sample, in the batch */
    int kp;           /* K rounded up to MR */
    int vb, nblocks;  /* vectors per forward block, blocks */
    int vbw, nblocksw, parts; /* the weight gradient's */
} plan1;

static void plan_init(plan1 *p, int n, int C, int K, int iw, int ow, int pl) {
    p->n = n; p->C = C; p->K = K; p->iw = iw; p->ow = ow; p->pl = pl;
    p->tw = (ow + 3) / 4;
    p->nvs = (p->tw + VL - 1) / VL;
    p->nvec = n * p->nvs;
    p->kp = round_up(K, MR);
    /* enough tiles per block for the products to run at speed (two register blocks), few
     * enough for V and M to stay in the L2 cache */
    size_t per_vec = (size_t)NPT * VL * (C + imin(p->kp, KR_MAX)) * sizeof(float);
    p->vb = imin(imin(imax(NV, (int)(BLOCK_BYTES / per_vec)), MAX_VB), p->nvec);
    p->nblocks = (p->nvec + p->vb - 1) / p->vb;
    per_vec = (size_t)NPT * VL * (C + p->kp) * sizeof(float);
    p->vbw = imin(imin(imax(NV, (int)(DW_BLOCK_BYTES / per_vec)), MAX_VB), p->nvec);
    p->nblocksw = (p->nvec + p->vbw - 1) / p->vbw;
    p->parts = imin(DW_PARTS, p->nblocksw);
}

static size_t u_floats(int K, int C) { return up16((size_t)NPT * round_up(K, MR) * C); }
static size_t fwd_slot(const plan1 *p) { return up16((size_t)NPT * p->vb * VL * (p->C + imin(p->kp, KR_MAX))); }
static size_t conv_floats(const plan1 *p) { return u_floats(p->K, p->C) + WINO_MAX_SLOTS * fwd_slot(p); }
static int ldc_of(const plan1 *p) { return round_up(p->C, VL); }
/* a part's dL/dU and its VL running sums of dL/dout per output channel (the bias gradient) */
static size_t du_floats(const plan1 *p) { return up16((size_t)NPT * p->K * ldc_of(p)) + (size_t)p->K * VL; }
static size_t dw_slot(const plan1 *p) { return up16((size_t)NPT * p->vbw * VL * (p->C + p->K)); }
static size_t wgrad_floats(const plan1 *p) { return p->parts * du_floats(p) + WINO_MAX_SLOTS * dw_slot(p); }

/* ---------------------------------------------------------------- kernel transform
 * U[xi][k / MR][c][k % MR] = (G g)[xi] for g = w[k][c][0 .. 3), or with flip set
 * g = w[c][k][2 .. 0] (w then being (C, K, 3)); zeros for the rows k >= K. A vector holds
 * VL / MR input channels times the MR output channels of a panel. */
static void transform_kernels(float *U, const float *w, int K, int C, int flip, int pan) {
    enum { CPV = VL / MR }; /* input channels per vector */
    int npan = round_up(K, MR) / MR;
    for (int c0 = 0; c0 < C; c0 += CPV) {
        float gs[3][VL] __attribute__((aligned(64)));
        int nc = imin(CPV, C - c0), nk = imin(MR, K - pan * MR);
        memset(gs, 0, sizeof gs);
        for (int cl = 0; cl < nc; cl++)
            for (int kl = 0; kl < nk; kl++) {
                int c = c0 + cl, k = pan * MR + kl, l = cl * MR + kl;
                for (int j = 0; j < 3; j++)
                    gs[j][l] = flip ? w[((size_t)c * K + k) * 3 + 2 - j] : w[((size_t)k * C + c) * 3 + j];
            }
        vf g[3] = {vload(gs[0]), vload(gs[1]), vload(gs[2])}, u[NPT];
        tr_kernel(u, g);
        for (int xi = 0; xi < NPT; xi++) {
            float tmp[VL] __attribute__((aligned(64)));
            vstore(tmp, u[xi]);
            memcpy(U + (((size_t)xi * npan + pan) * C + c0) * MR, tmp, sizeof(float) * nc * MR);
        }
    }
}

/* ---------------------------------------------------------------- gathers and scatters
 * A vector of tiles of one row: tiles v*VL .. v*VL + VL - 1, whose outputs start at x0 =
 * 4 v VL and whose inputs start at x0 - pl. Input j of tile l is row[start + 4 l + j]. */
typedef struct {
    int start, len; /* the first input read, the row's length (reads outside it are zeros) */
#ifdef WINO_AVX512
    __mmask16 m[5]; /* the five loads' masks */
#endif
} window;

static void make_window(window *W, int start, int len) {
    W->start = start;
    W->len = len;
#ifdef WINO_AVX512
    for (int q = 0; q < 5; q++) {
        int lo = imax(0, -(start + 16 * q)), hi = imin(16, len - (start + 16 * q)); /* lanes inside */
        W->m[q] = hi > lo ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
    }
    W->m[4] &= 3; /* the last two inputs */
#endif
}

/* The hardware prefetchers see a few hundred consecutive floats per row, then a jump
 * to the next channel's row: the transforms prefetch the lines of the row PREFETCH_ROWS
 * channels ahead themselves. */
#define PREFETCH_ROWS 2
static inline void prefetch_window(const float *row, const window *W, int write) {
    for (int q = 0; q < 4 * VL; q += 16) {
        if (write) __builtin_prefetch(row + W->start + q, 1);
        else __builtin_prefetch(row + W->start + q, 0);
    }
}

/* d[j] = input j of the VL tiles (nd = 6 for inputs, 4 for a tile of dL/dout) */
static inline void gather(vf d[6], const float *row, const window *W, int nd) {
#ifdef WINO_AVX512
    /* a[q] = row[start + 16 q ..]: input j of tile l is a[l / 4][4 (l % 4) + j]. Lanes 0-7
     * of p come from a[0], a[1] and lanes 8-15 from a[2], a[3] (two-source permutes),
     * then inputs 4 and 5 are inputs 0 and 1 of the next tile, a[4][0] and a[4][1] for the
     * last one. */
    const float *src = row + W->start;
    __m512 a[5];
    for (int q = 0; q < 4; q++) a[q] = _mm512_maskz_loadu_ps(W->m[q], src + 16 * q);
    for (int j = 0; j < 4; j++) {
        __m512i idx = _mm512_add_epi32(_mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28),
                                       _mm512_set1_epi32(j));
        __m512 lo = _mm512_permutex2var_ps(a[0], idx, a[1]), hi = _mm512_permutex2var_ps(a[2], idx, a[3]);
        d[j] = (vf)_mm512_shuffle_f32x4(lo, hi, 0x44);
    }
    if (nd > 4) {
        a[4] = _mm512_maskz_loadu_ps(W->m[4], src + 64);
        const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
        d[4] = (vf)_mm512_permutex2var_ps((__m512)d[0], next, a[4]);
        d[5] = (vf)_mm512_permutex2var_ps((__m512)d[1], _mm512_add_epi32(next, _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1)), a[4]);
    }
#else
    float t[6][VL] __attribute__((aligned(64)));
    for (int j = 0; j < nd; j++)
        for (int l = 0; l < VL; l++) {
            int x = W->start + 4 * l + j;
            t[j][l] = x >= 0 && x < W->len ? row[x] : 0.0f;
        }
    for (int j = 0; j < nd; j++) d[j] = vload(t[j]);
#endif
}

/* row[x0 + 4 l + i] (+)= y[i][l] for the outputs inside the row (W: start x0, len ow) */
static inline void scatter(float *row, const vf y[4], const window *W, int accumulate) {
#ifdef WINO_AVX512
    /* interleave y[0], y[1] and y[2], y[3] by tiles, then the pairs: o[q] holds tiles
     * 4q .. 4q + 3, outputs in order */
    const __m512i ilo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ihi = _mm512_add_epi32(ilo, _mm512_set1_epi32(8));
    const __m512i plo = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i phi = _mm512_add_epi32(plo, _mm512_set1_epi32(8));
    __m512 t01l = _mm512_permutex2var_ps((__m512)y[0], ilo, (__m512)y[1]);
    __m512 t01h = _mm512_permutex2var_ps((__m512)y[0], ihi, (__m512)y[1]);
    __m512 t23l = _mm512_permutex2var_ps((__m512)y[2], ilo, (__m512)y[3]);
    __m512 t23h = _mm512_permutex2var_ps((__m512)y[2], ihi, (__m512)y[3]);
    __m512 o[4] = {_mm512_permutex2var_ps(t01l, plo, t23l), _mm512_permutex2var_ps(t01l, phi, t23l),
                   _mm512_permutex2var_ps(t01h, plo, t23h), _mm512_permutex2var_ps(t01h, phi, t23h)};
    float *dst = row + W->start;
    for (int q = 0; q < 4; q++) {
        __mmask16 m = W->m[q];
        if (!m) continue;
        __m512 v = o[q];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, dst + 16 * q));
        _mm512_mask_storeu_ps(dst + 16 * q, m, v);
    }
#else
    float t[4][VL] __attribute__((aligned(64)));
    for (int i = 0; i < 4; i++) vstore(t[i], y[i]);
    for (int l = 0; l < VL; l++)
        for (int i = 0; i < 4; i++) {
            int x = W->start + 4 * l + i;
            if (x >= 0 && x < W->len) row[x] = accumulate ? row[x] + t[i][l] : t[i][l];
        }
#endif
}

/* ---------------------------------------------------------------- transforms of a block
 * A block is the vectors gv0 .. gv0 + nv - 1 of the batch (nv <= MAX_VB). Channel by
 * channel, the vectors in order: consecutive inputs of a row, read once, in order. */
/* where each vector of the block reads (inputs, shift -pl) or writes (outputs, shift 0)
 * in rows of length len, and the offset of its sample's first row (stride floats per
 * sample) */
static void block_windows(const plan1 *p, int gv0, int nv, int shift, int len, size_t stride, window *W,
                          size_t *base) {
    for (int v = 0; v < nv; v++) {
        int gv = gv0 + v, s = gv / p->nvs, vs = gv % p->nvs;
        make_window(&W[v], 4 * VL * vs + shift, len);
        base[v] = (size_t)s * stride;
    }
}

/* The transforms of one block of rows (rows per sample, of length len): with bsum NULL,
 * V[xi][r][t] (ld floats per row) = B^T d of the input tiles (which start shift = -pl
 * inputs before their outputs); else S[xi][r][t] = A dY of the tiles of dL/dout (shift
 * 0), and bsum[r] (VL lanes) += their 4 outputs, for the bias gradient. */
static void block_transform(const plan1 *p, float *V, int ld, const float *src, int rows, int len, int shift,
                            float *bsum, int gv0, int nv) {
    window W[MAX_VB];
    size_t base[MAX_VB];
    block_windows(p, gv0, nv, shift, len, (size_t)rows * len, W, base);
    for (int r = 0; r < rows; r++) {
        vf sum = bsum ? vload(bsum + (size_t)r * VL) : (vf){0};
        for (int v = 0; v < nv; v++) {
            vf d[6], u[NPT];
            const float *row = src + base[v] + (size_t)r * len;
            if (r + PREFETCH_ROWS < rows) prefetch_window(row + PREFETCH_ROWS * len, &W[v], 0);
            gather(d, row, &W[v], bsum ? 4 : 6);
            if (bsum) {
                tr_grad(u, d);
                sum += (d[0] + d[1]) + (d[2] + d[3]);
            } else {
                tr_input(u, d);
            }
            for (int xi = 0; xi < NPT; xi++) vstore(V + ((size_t)xi * rows + r) * ld + v * VL, u[xi]);
        }
        if (bsum) vstore(bsum + (size_t)r * VL, sum);
    }
}

/* out (+)= A^T M + bias for the channels k0 .. k1 - 1; M[xi][r][t] holds channel k0 + r
 * (rows rows per xi, ld floats per row). */
static void output_transform(const plan1 *p, float *out, const float *M, int rows, int ld, int gv0, int nv, int k0,
                             int k1, const float *bias, int accumulate) {
    window W[MAX_VB];
    size_t base[MAX_VB];
    block_windows(p, gv0, nv, 0, p->ow, (size_t)p->K * p->ow, W, base);
    for (int k = k0; k < k1; k++)
        for (int v = 0; v < nv; v++) {
            vf m[NPT], y[4];
            for (int xi = 0; xi < NPT; xi++) m[xi] = vload(M + ((size_t)xi * rows + (k - k0)) * ld + v * VL);
            tr_output(y, m);
            float *row = out + base[v] + (size_t)k * p->ow;
            if (k + PREFETCH_ROWS < k1) prefetch_window(row + PREFETCH_ROWS * p->ow, &W[v], 1);
            if (bias)
                for (int i = 0; i < 4; i++) y[i] += bias[k];
            scatter(row, y, &W[v], accumulate);
        }
}

/* ---------------------------------------------------------------- the products
 * M[xi][r][t] = U[xi] (panels pan0 .. pan0 + npan - 1 of npan_u) * V[xi] (C x ld) for
 * the rows r < npan * MR and the tile vectors t < ntv, by winograd.h's product_tile: for
 * each register block of NR tiles all the panels, so that the block's C x NR floats of
 * V stay in the L1 cache (3 % faster than panel by panel over the block's tiles). */
static void products(float *M, const float *U, int npan_u, int pan0, int npan, const float *V, int C, int ld,
                     int ntv) {
    for (int xi = 0; xi < NPT; xi++) {
        const float *Vx = V + (size_t)xi * C * ld;
        for (int t = 0; t < ntv; t += NV) {
            int nv = imin(NV, ntv - t);
            for (int kp = 0; kp < npan; kp++) {
                const float *Up = U + ((size_t)xi * npan_u + pan0 + kp) * C * MR;
                float *Mx = M + ((size_t)xi * npan + kp) * MR * ld;
                if (nv == NV) product_tile(NV, C, Up, MR, Vx + t * VL, ld, Mx + t * VL, ld, 0);
                else product_tile(1, C, Up, MR, Vx + t * VL, ld, Mx + t * VL, ld, 0);
            }
        }
    }
}

/* ---------------------------------------------------------------- one correlation
 * U for all kernels, then units of (block, range of output channels): each transforms
 * its block's input, runs the products of its channels and transforms them back. */
static void run_conv(const plan1 *p, float *out, const float *in, const float *w, int flip, const float *bias,
                     int accumulate, float *work) {
    float *U = work, *slots = work + u_floats(p->K, p->C);
    int npan = p->kp / MR;
    /* ranges of output channels: one, unless there are too few blocks for the threads
     * (any split gives the same result) */
    int T = threads_for(WINO_MAX_SLOTS);
    int parts = (p->kp + KR_MAX - 1) / KR_MAX;
    if (p->nblocks < 2 * T) parts = imax(parts, imin((2 * T + p->nblocks - 1) / p->nblocks, p->kp / (4 * MR)));
    int kr = round_up((p->kp + parts - 1) / parts, MR);
    parts = (p->kp + kr - 1) / kr;
    int units = p->nblocks * parts, ld = p->vb * VL;
    T = threads_for(imax(units, npan));
#pragma omp parallel num_threads(T) if (T > 1)
    {
#pragma omp for schedule(static)
        for (int pan = 0; pan < npan; pan++) transform_kernels(U, w, p->K, p->C, flip, pan);
        float *V = slots + (size_t)thread_id() * fwd_slot(p), *M = V + (size_t)NPT * p->C * ld;
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < units; u++) {
            int blk = u / parts, k0 = (u % parts) * kr, k1 = imin(k0 + kr, p->K);
            int gv0 = blk * p->vb, nv = imin(p->vb, p->nvec - gv0), rows = round_up(k1 - k0, MR);
            if (k0 >= k1) continue;
            block_transform(p, V, ld, in, p->C, p->iw, -p->pl, NULL, gv0, nv);
            products(M, U, npan, k0 / MR, rows / MR, V, p->C, ld, nv);
            output_transform(p, out, M, rows, ld, gv0, nv, k0, k1, bias, accumulate);
        }
    }
}

/* ---------------------------------------------------------------- weight gradient
 * Parts (their number fixed by the shape): part q sums its own dL/dU[xi] (K x ldc) over
 * its blocks, block by block: V and S of the block, then 6 products S[xi] V[xi]^T
 * (st_sgemm, one thread each), and its running sums of dL/dout for the bias gradient.
 * Then dw[k][c] += G^T (the parts' dL/dU added in order), and db (if not NULL) the
 * parts' sums, added in order. */
static void wgrad(const plan1 *p, float *dw, float *db, const float *dout, const float *in, float *work) {
    int P = p->parts, ldc = ldc_of(p), ld = p->vbw * VL;
    size_t du = du_floats(p), bsums = up16((size_t)NPT * p->K * ldc); /* a part's sums for db */
    float *dU = work, *slots = work + P * du;
    int T = threads_for(P);
    (void)T; /* read by the pragma only: unused without OpenMP */
#pragma omp parallel num_threads(T) if (T > 1)
    {
        float *V = slots + (size_t)thread_id() * dw_slot(p), *S = V + (size_t)NPT * p->C * ld;
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < P; q++) {
            int b0 = (int)((long)p->nblocksw * q / P), b1 = (int)((long)p->nblocksw * (q + 1) / P);
            float *D = dU + q * du;
            memset(D + bsums, 0, sizeof(float) * p->K * VL);
            for (int blk = b0; blk < b1; blk++) {
                int gv0 = blk * p->vbw, nv = imin(p->vbw, p->nvec - gv0);
                block_transform(p, V, ld, in, p->C, p->iw, -p->pl, NULL, gv0, nv);
                block_transform(p, S, ld, dout, p->K, p->ow, 0, D + bsums, gv0, nv);
                for (int xi = 0; xi < NPT; xi++)
                    st_sgemm(0, 1, p->K, p->C, nv * VL, S + (size_t)xi * p->K * ld, ld, V + (size_t)xi * p->C * ld, ld,
                             blk > b0 ? 1.0f : 0.0f, D + (size_t)xi * p->K * ldc, ldc);
            }
        }
        /* dw[k][c][j] += (G^T dU[.][k][c])[j], VL input channels at a time */
#pragma omp for schedule(static)
        for (int k = 0; k < p->K; k++)
            for (int c0 = 0; c0 < p->C; c0 += VL) {
                vf u[NPT], g[3];
                for (int xi = 0; xi < NPT; xi++) {
                    const float *src = dU + ((size_t)xi * p->K + k) * ldc + c0;
                    u[xi] = vload(src);
                    for (int r = 1; r < P; r++) u[xi] += vload(src + r * du);
                }
                tr_kernel_adj(g, u);
                float t[3][VL] __attribute__((aligned(64)));
                for (int j = 0; j < 3; j++) vstore(t[j], g[j]);
                float *dst = dw + ((size_t)k * p->C + c0) * 3;
                for (int l = 0; l < imin(VL, p->C - c0); l++)
                    for (int j = 0; j < 3; j++) dst[l * 3 + j] += t[j][l];
            }
    }
    for (int k = 0; db && k < p->K; k++) {
        vf sum = vload(dU + bsums + (size_t)k * VL);
        for (int r = 1; r < P; r++) sum += vload(dU + r * du + bsums + (size_t)k * VL);
        float t[VL] __attribute__((aligned(64))), acc = 0;
        vstore(t, sum);
        for (int l = 0; l < VL; l++) acc += t[l];
        db[k] += acc;
    }
}

/* ---------------------------------------------------------------- entry points */
int st_winograd1d_possible(const st_conv_geom *g) {
    return g->groups == 1 && g->kh == 1 && g->ih == 1 && g->pt == 0 && g->pb == 0 && g->kw == 3 && g->sw == 1 &&
           g->dw == 1;
}

/* The forward correlation and the input gradient's (dL/dout with the taps reversed and
 * the channels swapped, left padding 2 - pl). */
static void plans(const st_conv_geom *g, int n, plan1 *fwd, plan1 *bwd) {
    plan_init(fwd, n, g->cin, g->cout, g->iw, g->ow, g->pl);
    plan_init(bwd, n, g->cout, g->cin, g->ow, g->iw, 2 - g->pl);
}

size_t st_winograd1d_work_size(const st_conv_geom *g, int n) {
    if (n <= 0) return 0;
    plan1 f, b;
    plans(g, n, &f, &b);
    size_t m = conv_floats(&f);
    if (conv_floats(&b) > m) m = conv_floats(&b);
    if (wgrad_floats(&f) > m) m = wgrad_floats(&f);
    return m + 16;
}

void st_winograd1d_forward(float *out, const float *in, const float *w, const float *b, int n,
                           const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    plan1 f, bk;
    plans(g, n, &f, &bk);
    run_conv(&f, out, in, w, 0, b, 0, wino_aligned(work));
}

void st_winograd1d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    plan1 f, bk;
    plans(g, n, &f, &bk);
    float *base = wino_aligned(work);
    if (din) run_conv(&bk, din, dout, w, 1, NULL, 1, base);
    wgrad(&f, dw, db, dout, in, base);
}
