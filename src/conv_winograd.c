/* conv_winograd.c - 3x3 convolutions of stride 1 by Winograd's minimal filtering, F(4x4, 3x3).
 *
 * The output plane is cut into 4x4 tiles. A tile reads a 6x6 patch d of the input, and
 * for one (output channel, input channel) pair its 16 outputs are (Lavin and Gray, 2015)
 *
 *   Y = A^T [ (G g G^T) (.) (B^T d B) ] A        ((.) = element-wise product)
 *
 * with g the 3x3 kernel and the constant matrices below, chosen for the points
 * 0, 1, -1, 2, -2 and infinity. Summed over input channels, the element-wise product
 * becomes 36 independent matrix products, one per "transform point" xi = (a, b):
 *
 *   M[xi] (K x tiles) = U[xi] (K x C) * V[xi] (C x tiles),  U = G g G^T,  V = B^T d B
 *
 * which cost 36 multiply-adds per (tile, k, c) against 9 * 16 = 144 for the plain sums:
 * four times fewer. The algorithm is exact in real arithmetic; in float its error is a
 * few times that of the direct sums (tests/test_winograd.c measures it).
 *
 * The passes:
 *  - forward: U from the weights and V from the input, the 36 products (a
 *    register-tiled kernel, product_tile, on U and V laid out for it), the output
 *    transform with the bias added, written to the output plane;
 *  - input gradient: the same routine on dL/dout, with the kernels turned by 180 degrees
 *    and the channels swapped (w'[c][k][i][j] = w[k][c][2-i][2-j]) and padding 2 - p,
 *    its output added to din;
 *  - weight gradient: the same algorithm run backwards (its adjoint). With S = A dY A^T
 *    the transformed 4x4 tile of dL/dout, dL/dU[xi] = sum over tiles of S[xi] V[xi]^T:
 *    36 products (K x tiles) (tiles x C), by the same kernel; then dL/dg = G^T dL/dU G.
 *
 * Layouts (tiles numbered (sample, tile row, tile column)): V[xi][c][t] and
 * M[xi][k][t], vectors of VL tiles, so that every transform works on whole vectors of
 * tiles (gathering a vector of 6x6 patches is a 16 x 8 transpose in registers with
 * AVX-512, plain copies otherwise); U[xi][k / MR][c][k % MR], panels of MR output
 * channels, zero-padded, the order the product kernel reads them in. The weight
 * gradient sums over tiles, so its transforms put channels in the vector lanes instead:
 * VT[xi][t][c] and ST[xi][t][k].
 *
 * The order of the work depends on the shape (see "plan"); threads (when not already
 * inside a parallel region) split units of it, each with its own scratch. Every output
 * value is computed by the same operations whatever the split, and every sum over
 * tiles in an order fixed by the shape, so the results do not depend on the thread
 * count.
 */
#include "kernels.h"
#include "winograd.h" /* vectors, the 1D transforms, the product kernel, threads */

#include <string.h>

/* ---------------------------------------------------------------- tiling */
#define NPT 36          /* transform points (6 x 6) */
#define MAX_SLOTS WINO_MAX_SLOTS
#define KR_MAX 128      /* blocked order: output channels per unit, at most */
#define KR_F 16         /* fused order: output channels per unit */
#define KR_PRE 128      /* fused order with U made beforehand: output channels per unit, at most */
#define M_PRE_FLOATS (NPT * 64 * 64) /* ... and M of a unit at most (576 KB) */
#define KR_W 16         /* fused weight gradient: output channels per unit */
#define FUSED_MAX_TILES (8 * NR)
#define FUSED_CG 32     /* fused order: input channels per unit of the input transform */
#define BLOCK_BYTES (384 << 10)        /* V + M of one forward block: about a third of an L2 */
#define DW_BLOCK_BYTES ((size_t)4 << 20) /* weight gradient, shared blocks: VT + ST of a block */
#define DW_SLOT_BYTES ((size_t)1 << 20)  /* weight gradient, parts: VT + ST of a thread's block */
#define DW_PARTS_FLOATS ((size_t)1 << 20) /* weight gradient, parts: all partial dL/dU together */
#define DW_MAX_TILES (32 * NR)

/* ---------------------------------------------------------------- the transforms
 * winograd.h's 1D ones (tr_input, tr_output, tr_grad, tr_kernel, tr_kernel_adj); the 2D
 * transforms apply them to the rows, then the columns. */

/* ---------------------------------------------------------------- plan
 * One correlation of a (n, C, ih, iw) input with 3x3 kernels into a (n, K, oh, ow)
 * output, output (y, x) reading input rows y - pt .. y - pt + 2 and columns x - pl ..
 * x - pl + 2 (zeros outside). The forward pass and the input gradient are both one.
 *
 * Two orders of work, chosen from the shape:
 *  - blocked (many tiles, as in the first layers of a network): U for all kernels first
 *    (36 K C floats, small there), then units of (block of tiles, range of output
 *    channels), each transforming its block, multiplying and transforming back while
 *    the block is in the L2 cache;
 *  - fused (few tiles and many channels, as in the last layers): U would be larger than
 *    the transformed input (36 K C floats written and read again from memory, 38 MB for
 *    512 channels), so the input of all tiles is transformed first, and then each range
 *    of KR_F output channels transforms its own kernels into a slot in the L2 cache and
 *    runs its products over all tiles.
 * The weight gradient has three:
 *  - fused (few tiles): all tiles transformed first, then units of KR_W output channels
 *    with their own dL/dU (36 KR_W C) and their kernels' gradient;
 *  - parts (many tiles, a small dL/dU): a fixed number of parts of the blocks, each
 *    summing its own dL/dU block by block in one thread, added in order at the end;
 *  - shared blocks (many tiles, a large dL/dU): the threads transform each block
 *    together, then split its 36 products by (xi, output channels) over the one dL/dU. */
typedef struct {
    int n, C, K;
    int ih, iw, oh, ow, pt, pl;
    int th, tw, tiles; /* tile rows and columns of a sample; tiles of the batch */
    int kp;            /* K rounded up to MR */
    int fused;         /* fused order (else blocked) */
    int tpad;          /* fused: tiles rounded up to VL, the row length of V and M */
    int tb, nblocks;   /* blocked: tiles per block (a multiple of NR), blocks */
    int wfused;        /* weight gradient in the fused order */
    int wparts;        /* weight gradient, blocked: parts with their own dL/dU (0: blocks shared) */
    int tbw, nblocksw; /* weight gradient: tiles per block (a multiple of VL; all if wfused), blocks */
} wplan;

static int force_blocked = 0;
void st_winograd_force_blocked(int on) { force_blocked = on; }

static void plan_init(wplan *p, int n, int C, int K, int ih, int iw, int oh, int ow, int pt, int pl) {
    p->n = n; p->C = C; p->K = K;
    p->ih = ih; p->iw = iw; p->oh = oh; p->ow = ow; p->pt = pt; p->pl = pl;
    p->th = (oh + 3) / 4;
    p->tw = (ow + 3) / 4;
    p->tiles = n * p->th * p->tw;
    p->kp = round_up(K, MR);
    p->tpad = round_up(p->tiles, VL);
    p->fused = !force_blocked && p->tiles <= FUSED_MAX_TILES && K > p->tpad;
    /* blocked: enough tiles per block for the products to run at speed, few enough for
     * the block's V and M to stay in the L2 cache */
    size_t per_tile = (size_t)NPT * (C + imin(p->kp, KR_MAX)) * sizeof(float);
    int tb = (int)(BLOCK_BYTES / per_tile) / NR * NR;
    tb = imax(NR, imin(tb, 8 * NR));
    p->tb = imin(tb, round_up(p->tiles, NR));
    p->nblocks = (p->tiles + p->tb - 1) / p->tb;
    p->wfused = !force_blocked && p->tiles <= FUSED_MAX_TILES && (double)K * C >= (double)(C + K) * p->tpad;
    p->wparts = 0;
    size_t ldc = (size_t)round_up(C, VL), ldk = (size_t)round_up(p->kp, VL);
    if (p->wfused) {
        p->tbw = p->tpad;
    } else {
        /* parts, if at least two partial dL/dU fit in DW_PARTS_FLOATS and there are at
         * least two blocks of a slot's size */
        size_t du = (size_t)NPT * p->kp * ldc;
        int parts = (int)(DW_PARTS_FLOATS / du);
        int tbw = (int)(DW_SLOT_BYTES / ((size_t)NPT * (ldc + ldk) * sizeof(float))) / VL * VL;
        tbw = imin(imax(4 * VL, imin(tbw, DW_MAX_TILES)), p->tpad); /* sums of 64 tiles at least */
        int nblocks = (p->tiles + tbw - 1) / tbw;
        parts = imin(imin(parts, MAX_SLOTS), nblocks);
        if (parts >= 2 && !force_blocked) {
            p->wparts = parts;
            p->tbw = tbw;
        } else {
            per_tile = (size_t)NPT * (ldc + ldk) * sizeof(float);
            tbw = (int)(DW_BLOCK_BYTES / per_tile) / VL * VL;
            tbw = imax(NR, imin(tbw, DW_MAX_TILES));
            p->tbw = imin(tbw, p->tpad);
        }
    }
    p->nblocksw = (p->tiles + p->tbw - 1) / p->tbw;
}

/* The fused order with U made beforehand reads all of V for each unit's products (V is
 * 36 C tiles floats, 1.2 MB for resnet50's 128 channels on 28x28 at batch 1: more than an
 * L2 cache), so its units are as large as an M of M_PRE_FLOATS allows, one per thread when
 * they can be: resnet50 at batch 1, 2 threads, its 3x3 convolutions 8.83 -> 8.46 ms (one
 * thread 16.1 -> 15.5) against units of KR_F. Any split gives the same results. */
static int kr_pre_max(const wplan *p) { return imax(KR_F, imin(KR_PRE, M_PRE_FLOATS / (NPT * p->tpad) / KR_F * KR_F)); }

/* Floats of workspace: the shared part and one slot per thread. */
static size_t u_floats(const wplan *p) { return up16((size_t)NPT * p->kp * p->C); }
static size_t vall_floats(const wplan *p) { return up16((size_t)NPT * p->C * p->tpad); }
static size_t slot_floats(const wplan *p) {
    if (p->fused) return up16((size_t)NPT * imax(KR_F * (p->C + p->tpad), kr_pre_max(p) * p->tpad));
    return up16((size_t)NPT * p->tb * (p->C + imin(p->kp, KR_MAX)));
}
static size_t conv_floats(const wplan *p) {
    return (p->fused ? vall_floats(p) : u_floats(p)) + MAX_SLOTS * slot_floats(p);
}
static size_t wgrad_floats(const wplan *p) {
    size_t ldc = (size_t)round_up(p->C, VL), ldk = (size_t)round_up(p->kp, VL);
    size_t blocks = up16((size_t)NPT * p->tbw * ldc) + up16((size_t)NPT * p->tbw * ldk);
    if (p->wfused) return blocks + MAX_SLOTS * up16((size_t)NPT * KR_W * ldc);
    if (p->wparts) return p->wparts * up16((size_t)NPT * p->kp * ldc) + MAX_SLOTS * blocks;
    return blocks + up16((size_t)NPT * p->kp * ldc);
}

/* ---------------------------------------------------------------- kernel transform
 * U[xi][k / MR][c][k % MR] = (G g G^T)[xi] for g = w[k][c], or with flip set for the
 * input gradient g = w[c][k] turned by 180 degrees (w then being (C, K, 3, 3)); zeros
 * for the padding rows k >= K. A vector holds VL / MR input channels times the MR
 * output channels of a panel: exactly VL consecutive floats of U. Panels pan0 .. pan1 - 1
 * of the kernels, stored as panels pan - pan_base of a U with npan panels. */
static void transform_kernels(float *U, int npan, int pan_base, const float *w, int K, int C, int flip, int pan0,
                              int pan1) {
    enum { CPV = VL / MR }; /* input channels per vector */
    for (int pan = pan0; pan < pan1; pan++)
        for (int c0 = 0; c0 < C; c0 += CPV) {
            /* gs[r][l] = tap r of lane l = (c0 + l / MR, pan * MR + l % MR): nine contiguous
             * floats per lane, zeros past C and K */
            float gs[9][VL] __attribute__((aligned(64)));
            int nc = imin(CPV, C - c0), nk = imin(MR, K - pan * MR);
            if (nc < CPV || nk < MR) memset(gs, 0, sizeof gs);
            for (int cl = 0; cl < nc; cl++)
                for (int kl = 0; kl < nk; kl++) {
                    int c = c0 + cl, k = pan * MR + kl, l = cl * MR + kl;
                    if (flip) {
                        const float *src = w + ((size_t)c * K + k) * 9;
                        for (int r = 0; r < 9; r++) gs[r][l] = src[8 - r];
                    } else {
                        const float *src = w + ((size_t)k * C + c) * 9;
                        for (int r = 0; r < 9; r++) gs[r][l] = src[r];
                    }
                }
            vf g[9];
            for (int r = 0; r < 9; r++) g[r] = vload(gs[r]);
            vf rows[3][6], u[6];
            for (int j = 0; j < 3; j++) { /* columns of g: G g */
                vf col[3] = {g[j], g[3 + j], g[6 + j]};
                tr_kernel(u, col);
                for (int a = 0; a < 6; a++) rows[j][a] = u[a];
            }
            for (int a = 0; a < 6; a++) { /* rows of G g: (G g) G^T */
                vf row[3] = {rows[0][a], rows[1][a], rows[2][a]};
                tr_kernel(u, row);
                for (int b = 0; b < 6; b++) {
                    float *dst = U + (((size_t)(a * 6 + b) * npan + pan - pan_base) * C + c0) * MR;
                    if (nc == CPV) vstore(dst, u[b]);
                    else {
                        float tmp[VL] __attribute__((aligned(64)));
                        vstore(tmp, u[b]);
                        memcpy(dst, tmp, sizeof(float) * nc * MR);
                    }
                }
            }
        }
}

/* ---------------------------------------------------------------- input transform
 * V[xi][c][0 .. ntv*VL) for the tiles t0 .. t0 + nt - 1 (the lanes past nt are zeros)
 * and the channels c0 .. c1 - 1, ld = tiles per row of V. */
typedef struct {
    ptrdiff_t off;      /* offset of the patch's (0, 0) from the sample's first plane (may be < 0) */
    int ia, ib, ja, jb; /* its rows ia .. ib - 1 and columns ja .. jb - 1 lie inside the plane */
} patch;

static void tile_patches(const wplan *p, int t0, int nt, patch *pt, int side, int h, int w, int oy, int ox,
                         size_t sample_stride) {
    for (int l = 0; l < nt; l++) {
        int t = t0 + l, s = t / (p->th * p->tw), r = t % (p->th * p->tw);
        int y0 = (r / p->tw) * 4 - oy, x0 = (r % p->tw) * 4 - ox;
        pt[l].off = (ptrdiff_t)s * (ptrdiff_t)sample_stride + (ptrdiff_t)y0 * w + x0;
        pt[l].ia = imax(0, -y0); pt[l].ib = imin(side, h - y0);
        pt[l].ja = imax(0, -x0); pt[l].jb = imin(side, w - x0);
    }
}

/* Where the VL patches of one gather lie: each lane's offset from the plane pointer and,
 * per patch row, the mask of the columns inside the plane (0 for a row outside, and for
 * the lanes past the last patch). Made once per vector of tiles, used for every channel. */
typedef struct {
    ptrdiff_t off[VL];
    unsigned char mask[6][VL];
} lanes;

/* lanes l < nt: patch pt[l]; with stride != 0, every lane has patch pt[0] and lane l
 * reads the plane l * stride further on (a lane per channel). */
static void make_lanes(lanes *L, const patch *pt, int nt, int side, ptrdiff_t stride) {
    for (int l = 0; l < VL; l++) {
        L->off[l] = 0;
        for (int i = 0; i < side; i++) L->mask[i][l] = 0;
        if (l >= nt) continue;
        const patch *q = stride ? pt : pt + l;
        unsigned cols = ((1u << q->jb) - 1) & ~((1u << q->ja) - 1);
        L->off[l] = q->off + l * stride;
        for (int i = q->ia; i < q->ib; i++) L->mask[i][l] = (unsigned char)cols;
    }
}

/* Gathers the side x side patches of L into d[i*side + j][lane] (zeros where the masks
 * say so). With ahead != 0, every row read is also prefetched ahead floats further on:
 * the same row of the next channel, a different plane that the hardware prefetchers
 * would only find after some misses. */
static void gather(float (*d)[VL], const float *plane, const lanes *L, int side, int w, ptrdiff_t ahead) {
#ifdef WINO_AVX512
    /* Row i of the 16 patches: 16 masked loads of 8 floats (a masked load never touches
     * what its mask leaves out), then a 16 x 8 transpose to one vector per column.
     * Pairs of rows go into the halves of a 16-float vector ([tile m | tile m + 4] for
     * m < 4, [tile m + 4 | tile m + 8] after) so that the in-lane 8 x 8 transpose below
     * leaves the tiles in order. */
    for (int i = 0; i < side; i++) {
        __m256 r[16];
        for (int l = 0; l < 16; l++) {
            const float *src = plane + L->off[l] + (ptrdiff_t)i * w;
            r[l] = _mm256_maskz_loadu_ps(L->mask[i][l], src);
            if (ahead) __builtin_prefetch(src + ahead);
        }
        static const int order[8][2] = {{0, 4}, {1, 5}, {2, 6}, {3, 7}, {8, 12}, {9, 13}, {10, 14}, {11, 15}};
        __m512 z[8], t[8], u[8];
        for (int m = 0; m < 8; m++)
            z[m] = _mm512_insertf32x8(_mm512_castps256_ps512(r[order[m][0]]), r[order[m][1]], 1);
        for (int m = 0; m < 8; m += 2) {
            t[m] = _mm512_unpacklo_ps(z[m], z[m + 1]);
            t[m + 1] = _mm512_unpackhi_ps(z[m], z[m + 1]);
        }
        for (int h = 0; h < 8; h += 4) {
            u[h + 0] = _mm512_shuffle_ps(t[h + 0], t[h + 2], 0x44);
            u[h + 1] = _mm512_shuffle_ps(t[h + 0], t[h + 2], 0xEE);
            u[h + 2] = _mm512_shuffle_ps(t[h + 1], t[h + 3], 0x44);
            u[h + 3] = _mm512_shuffle_ps(t[h + 1], t[h + 3], 0xEE);
        }
        /* u[c] (c < 4) holds, per 128-bit lane, column c (lanes 0, 2) and c + 4 (lanes 1, 3) */
        for (int j = 0; j < side; j++) {
            int c = j & 3;
            __m512 v = j < 4 ? _mm512_shuffle_f32x4(u[c], u[c + 4], 0x88) : _mm512_shuffle_f32x4(u[c], u[c + 4], 0xDD);
            _mm512_store_ps(d[i * side + j], v);
        }
    }
#else
    for (int i = 0; i < side; i++)
        for (int l = 0; l < VL; l++) {
            const float *src = plane + L->off[l] + (ptrdiff_t)i * w;
            unsigned m = L->mask[i][l];
            if (ahead && m) __builtin_prefetch(src + ahead);
            for (int j = 0; j < side; j++) d[i * side + j][l] = (m >> j) & 1 ? src[j] : 0.0f;
        }
#endif
}

/* The 2D transforms of the VL patches in d (6x6: B^T d B; 4x4 of dL/dout: A d A^T),
 * written as 36 vectors at dst + xi * stride. */
static void tile_input(float *dst, size_t stride, float (*d)[VL]) {
    vf rows[6][6], col[6], out[6];
    for (int j = 0; j < 6; j++) { /* B^T d, column by column */
        for (int i = 0; i < 6; i++) col[i] = vload(d[i * 6 + j]);
        tr_input(out, col);
        for (int a = 0; a < 6; a++) rows[a][j] = out[a];
    }
    for (int a = 0; a < 6; a++) { /* (B^T d) B, row by row */
        tr_input(out, rows[a]);
        for (int b = 0; b < 6; b++) vstore(dst + (size_t)(a * 6 + b) * stride, out[b]);
    }
}
static void tile_grad(float *dst, size_t stride, float (*d)[VL]) {
    vf rows[6][4], col[4], s[6];
    for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) col[i] = vload(d[i * 4 + j]);
        tr_grad(s, col);
        for (int a = 0; a < 6; a++) rows[a][j] = s[a];
    }
    for (int a = 0; a < 6; a++) {
        tr_grad(s, rows[a]);
        for (int b = 0; b < 6; b++) vstore(dst + (size_t)(a * 6 + b) * stride, s[b]);
    }
}

/* V[xi][c][t] (ld floats per row) for the channels c0 .. c1 - 1 and the nt tiles with
 * patches pt, vectors of tiles v0 .. v1 - 1 (zeros past nt). */
static void input_transform(const wplan *p, float *V, int ld, const float *in, const patch *pt, int nt, int v0,
                            int v1, int c0, int c1) {
    size_t plane = (size_t)p->ih * p->iw;
    for (int v = v0; v < v1; v++) {
        lanes L;
        make_lanes(&L, pt + v * VL, imin(VL, nt - v * VL), 6, 0);
        for (int c = c0; c < c1; c++) {
            float d[36][VL] __attribute__((aligned(64)));
            gather(d, in + c * plane, &L, 6, p->iw, (ptrdiff_t)plane);
            tile_input(V + (size_t)c * ld + v * VL, (size_t)p->C * ld, d);
        }
    }
}

/* ---------------------------------------------------------------- the 36 products
 * M[xi][r][t] for the rows r < npan * MR and the tile vectors t < ntv:
 * M[xi] = U[xi] (panels pan0 .. pan0 + npan - 1 of npan_u) * V[xi] (C x ld), by
 * winograd.h's product_tile. */
static void products(float *M, const float *U, int npan_u, int pan0, int npan, const float *V, int C, int ld,
                     int ntv) {
    for (int xi = 0; xi < NPT; xi++) {
        const float *Vx = V + (size_t)xi * C * ld;
        for (int kp = 0; kp < npan; kp++) {
            const float *Up = U + ((size_t)xi * npan_u + pan0 + kp) * C * MR;
            float *Mx = M + ((size_t)xi * npan + kp) * MR * ld;
            int t = 0;
            for (; t + NV <= ntv; t += NV) product_tile(NV, C, Up, MR, Vx + t * VL, ld, Mx + t * VL, ld, 0);
            for (; t < ntv; t++) product_tile(1, C, Up, MR, Vx + t * VL, ld, Mx + t * VL, ld, 0);
        }
    }
}

/* ---------------------------------------------------------------- output transform
 * plane (+)= the 4x4 outputs r[i*4 + j][lane] of the patches of L, those inside. */
static void scatter(float *plane, const vf r[16], const lanes *L, int w, int accumulate) {
#ifdef WINO_AVX512
    /* Two in-lane transpose steps leave, in 128-bit lane q of x[i][c], row i of tile
     * 4q + c: stored with masked 4-float moves. */
    __m512 t[16], x[4][4];
    for (int a = 0; a < 16; a += 2) {
        t[a] = _mm512_unpacklo_ps((__m512)r[a], (__m512)r[a + 1]);
        t[a + 1] = _mm512_unpackhi_ps((__m512)r[a], (__m512)r[a + 1]);
    }
    for (int i = 0; i < 4; i++) {
        x[i][0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
        x[i][1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
        x[i][2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        x[i][3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
#define SCATTER_QUARTER(q)                                                            \
    for (int c = 0; c < 4; c++)                                                       \
        for (int i = 0; i < 4; i++) {                                                 \
            unsigned m = L->mask[i][4 * (q) + c];                                     \
            if (!m) continue;                                                         \
            float *o = plane + L->off[4 * (q) + c] + (ptrdiff_t)i * w;                \
            __m128 v = _mm512_extractf32x4_ps(x[i][c], q);                            \
            if (accumulate) v = _mm_add_ps(v, _mm_maskz_loadu_ps((__mmask8)m, o));    \
            _mm_mask_storeu_ps(o, (__mmask8)m, v);                                    \
        }
    SCATTER_QUARTER(0)
    SCATTER_QUARTER(1)
    SCATTER_QUARTER(2)
    SCATTER_QUARTER(3)
#undef SCATTER_QUARTER
#else
    float tmp[16][VL] __attribute__((aligned(64)));
    for (int a = 0; a < 16; a++) vstore(tmp[a], r[a]);
    for (int l = 0; l < VL; l++)
        for (int i = 0; i < 4; i++) {
            unsigned m = L->mask[i][l];
            float *o = plane + L->off[l] + (ptrdiff_t)i * w;
            for (int j = 0; j < 4; j++)
                if ((m >> j) & 1) o[j] = accumulate ? o[j] + tmp[i * 4 + j][l] : tmp[i * 4 + j][l];
        }
#endif
}

/* out (+)= A^T M A + bias for the nt tiles with patches pt and the channels k0 .. k1 - 1;
 * M[xi][r][t] holds channel k0 + r in row r (rows rows per xi, ld floats per row). */
static void output_transform(const wplan *p, float *out, const float *M, int rows, int ld, const patch *pt, int nt,
                             int k0, int k1, const float *bias, int accumulate) {
    size_t plane = (size_t)p->oh * p->ow;
    int ntv = (nt + VL - 1) / VL;
    for (int v = 0; v < ntv; v++) {
        lanes L;
        make_lanes(&L, pt + v * VL, imin(VL, nt - v * VL), 4, 0);
        for (int k = k0; k < k1; k++) {
            float bk = bias ? bias[k] : 0.0f;
            vf m[6], cols[4][6], y[4];
            for (int a = 0; a < 6; a++) { /* A^T M, column by column of M */
                for (int b = 0; b < 6; b++) m[b] = vload(M + ((size_t)(a * 6 + b) * rows + (k - k0)) * ld + v * VL);
                tr_output(y, m);
                for (int j = 0; j < 4; j++) cols[j][a] = y[j];
            }
            vf r[16];
            for (int j = 0; j < 4; j++) {
                tr_output(y, cols[j]);
                for (int i = 0; i < 4; i++) r[i * 4 + j] = y[i] + bk;
            }
            scatter(out + (size_t)k * plane, r, &L, p->ow, accumulate);
        }
    }
}

/* ---------------------------------------------------------------- one correlation, blocked
 * U for all kernels, then units of (block, range of kr output channels): each
 * transforms its block's input (all channels), runs the products of its channels and
 * transforms them back. */
static void block_unit(const wplan *p, int blk, int k0, int k1, float *out, const float *in, const float *U,
                       const float *bias, int accumulate, float *slot) {
    int t0 = blk * p->tb, nt = imin(p->tb, p->tiles - t0), ntv = (nt + VL - 1) / VL;
    int rows = round_up(k1 - k0, MR);
    float *V = slot, *M = slot + (size_t)NPT * p->C * p->tb;
    patch pin[8 * NR], pout[8 * NR];
    tile_patches(p, t0, nt, pin, 6, p->ih, p->iw, p->pt, p->pl, (size_t)p->C * p->ih * p->iw);
    tile_patches(p, t0, nt, pout, 4, p->oh, p->ow, 0, 0, (size_t)p->K * p->oh * p->ow);
    input_transform(p, V, p->tb, in, pin, nt, 0, ntv, 0, p->C);
    products(M, U, p->kp / MR, k0 / MR, rows / MR, V, p->C, p->tb, ntv);
    output_transform(p, out, M, rows, p->tb, pout, nt, k0, k1, bias, accumulate);
}

static void run_blocked(const wplan *p, float *out, const float *in, const float *w, int flip, const float *bias,
                        int accumulate, float *work, const float *Upre) {
    float *U = work, *slots = work + u_floats(p);
    const float *Uk = Upre ? Upre : U;
    int npan = p->kp / MR;
    /* Ranges of output channels: one, unless there are too few blocks to keep the
     * threads busy (any split gives the same result). */
    int T = threads_for(MAX_SLOTS);
    int parts = (p->kp + KR_MAX - 1) / KR_MAX;
    if (p->nblocks < 2 * T) parts = imax(parts, imin((2 * T + p->nblocks - 1) / p->nblocks, p->kp / (4 * MR)));
    int kr = round_up((p->kp + parts - 1) / parts, MR);
    parts = (p->kp + kr - 1) / kr;
    int units = p->nblocks * parts;
    T = threads_for(imax(units, npan));
#pragma omp parallel num_threads(T) if (T > 1)
    {
#pragma omp for schedule(static)
        for (int pan = 0; pan < (Upre ? 0 : npan); pan++) transform_kernels(U, npan, 0, w, p->K, p->C, flip, pan, pan + 1);
        float *slot = slots + (size_t)thread_id() * slot_floats(p);
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < units; u++) {
            int blk = u / parts, k0 = (u % parts) * kr, k1 = imin(k0 + kr, p->K);
            if (k0 < k1) block_unit(p, blk, k0, k1, out, in, Uk, bias, accumulate, slot);
        }
    }
}

/* ---------------------------------------------------------------- one correlation, fused
 * The input of all tiles first (the threads splitting the channels), then units of
 * KR_F output channels: their kernels' U, the products over all tiles, the output.
 * (Both orders take a U made beforehand, Upre, instead of transforming the kernels.) */
static void run_fused(const wplan *p, float *out, const float *in, const float *w, int flip, const float *bias,
                      int accumulate, float *work, const float *Upre) {
    float *V = work, *slots = work + vall_floats(p);
    int ntv = p->tpad / VL, kr = KR_F, ncg = (p->C + FUSED_CG - 1) / FUSED_CG;
    patch pin[FUSED_MAX_TILES], pout[FUSED_MAX_TILES];
    tile_patches(p, 0, p->tiles, pin, 6, p->ih, p->iw, p->pt, p->pl, (size_t)p->C * p->ih * p->iw);
    tile_patches(p, 0, p->tiles, pout, 4, p->oh, p->ow, 0, 0, (size_t)p->K * p->oh * p->ow);
    if (Upre) {
        int t = threads_for(MAX_SLOTS);
        kr = imin(kr_pre_max(p), round_up((p->K + t - 1) / t, KR_F));
    }
    int units = (p->K + kr - 1) / kr;
    int T = threads_for(units);
    (void)T; /* read by the pragma only: unused without OpenMP */
#pragma omp parallel num_threads(T) if (T > 1)
    {
        /* by vectors of tiles and groups of channels: with few tiles (one vector of 16
         * at batch 1 on 14x14) the vectors alone left one thread doing it all */
#pragma omp for schedule(static)
        for (int q = 0; q < ntv * ncg; q++) {
            int v = q / ncg, c0 = q % ncg * FUSED_CG;
            input_transform(p, V, p->tpad, in, pin, p->tiles, v, v + 1, c0, imin(c0 + FUSED_CG, p->C));
        }
        float *slot = slots + (size_t)thread_id() * slot_floats(p);
        float *U = slot, *M = Upre ? slot : slot + (size_t)NPT * KR_F * p->C;
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < units; u++) {
            int k0 = u * kr, k1 = imin(k0 + kr, p->K), npan = round_up(k1 - k0, MR) / MR;
            if (Upre) {
                products(M, Upre, p->kp / MR, k0 / MR, npan, V, p->C, p->tpad, ntv);
            } else {
                transform_kernels(U, npan, k0 / MR, w, p->K, p->C, flip, k0 / MR, k0 / MR + npan);
                products(M, U, npan, 0, npan, V, p->C, p->tpad, ntv);
            }
            output_transform(p, out, M, npan * MR, p->tpad, pout, p->tiles, k0, k1, bias, accumulate);
        }
    }
}

static void run_conv(const wplan *p, float *out, const float *in, const float *w, int flip, const float *bias,
                     int accumulate, float *work, const float *Upre) {
    if (p->fused) run_fused(p, out, in, w, flip, bias, accumulate, work, Upre);
    else run_blocked(p, out, in, w, flip, bias, accumulate, work, Upre);
}

/* ---------------------------------------------------------------- weight gradient
 * dL/dU[xi] (K x C) = sum over tiles t of S[xi][.][t] V[xi][.][t]^T, S = A dY A^T the
 * transforms of dL/dout's tiles. Here the reduction runs over tiles, so the transforms
 * are made with the channels in the vector lanes instead: VT[xi][t][c] and ST[xi][t][k]
 * (the same gathers, a lane per channel), and the product kernel above computes
 * dL/dU[xi][k][c] with ST's MR consecutive k as the broadcast operand (ldu = ldk). */

/* VT and ST (ldc, ldk floats per tile, tstride tiles per xi) for tile t of the block. */
static void wgrad_transform_tile(const wplan *p, float *VT, int ldc, float *ST, int ldk, int tstride, const float *in,
                                 const float *dout, const patch *pin, const patch *pout, int t) {
    size_t iplane = (size_t)p->ih * p->iw, oplane = (size_t)p->oh * p->ow;
    float d[36][VL] __attribute__((aligned(64)));
    lanes L;
    for (int c0 = 0; c0 < ldc; c0 += VL) {
        if (c0 == 0 || c0 + VL > p->C) make_lanes(&L, pin + t, imin(VL, p->C - c0), 6, (ptrdiff_t)iplane);
        gather(d, in + c0 * iplane, &L, 6, p->iw, 0);
        tile_input(VT + (size_t)t * ldc + c0, (size_t)tstride * ldc, d);
    }
    for (int k0 = 0; k0 < ldk; k0 += VL) {
        if (k0 == 0 || k0 + VL > p->K) make_lanes(&L, pout + t, imin(VL, p->K - k0), 4, (ptrdiff_t)oplane);
        gather(d, dout + k0 * oplane, &L, 4, p->ow, 0);
        tile_grad(ST + (size_t)t * ldk + k0, (size_t)tstride * ldk, d);
    }
}

/* dU[xi][k][c] (ldc floats per row, kp rows per xi) (+)= the sums over the nt tiles, for
 * the panels of MR output channels pan0 .. pan1 - 1. */
static void wgrad_products(const wplan *p, float *dU, const float *VT, int ldc, const float *ST, int ldk, int tstride,
                           int nt, int xi, int pan0, int pan1, int accumulate) {
    int ncv = ldc / VL;
    const float *Vx = VT + (size_t)xi * tstride * ldc, *Sx = ST + (size_t)xi * tstride * ldk;
    float *Dx = dU + (size_t)xi * p->kp * ldc;
    for (int pan = pan0; pan < pan1; pan++) {
        const float *Up = Sx + pan * MR;
        float *M = Dx + (size_t)pan * MR * ldc;
        int cv = 0;
        for (; cv + NV <= ncv; cv += NV) product_tile(NV, nt, Up, ldk, Vx + cv * VL, ldc, M + cv * VL, ldc, accumulate);
        for (; cv < ncv; cv++) product_tile(1, nt, Up, ldk, Vx + cv * VL, ldc, M + cv * VL, ldc, accumulate);
    }
}

/* dw[k0 + k][c] += G^T dU[k][c] G for k < nk; dU[xi][k][c] has xi_stride floats per xi
 * and ld per row, and is the sum of nparts partials part_stride floats apart (added in
 * order). VL input channels at a time; their 9 sums are put in order in tmp and added
 * as a whole (dw[k][c0 .. c0 + VL) is 9 VL consecutive floats). */
static void kernel_grad(float *dw, const float *dU, size_t xi_stride, int ld, int C, int k0, int nk, int nparts,
                        size_t part_stride) {
    for (int k = 0; k < nk; k++)
        for (int c0 = 0; c0 < C; c0 += VL) {
            int m = imin(VL, C - c0);
            vf u[6][6], cols[3][6], g3[3];
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) {
                    const float *src = dU + (size_t)(a * 6 + b) * xi_stride + (size_t)k * ld + c0;
                    u[a][b] = vload(src);
                    for (int q = 1; q < nparts; q++) u[a][b] += vload(src + q * part_stride);
                }
            for (int a = 0; a < 6; a++) { /* u G, row by row */
                tr_kernel_adj(g3, u[a]);
                for (int j = 0; j < 3; j++) cols[j][a] = g3[j];
            }
            float lanes[9][VL] __attribute__((aligned(64))), tmp[9 * VL];
            for (int j = 0; j < 3; j++) { /* G^T (u G), column by column */
                tr_kernel_adj(g3, cols[j]);
                for (int i = 0; i < 3; i++) vstore(lanes[i * 3 + j], g3[i]);
            }
            for (int l = 0; l < m; l++)
                for (int r = 0; r < 9; r++) tmp[l * 9 + r] = lanes[r][l];
            float *dst = dw + ((size_t)(k0 + k) * C + c0) * 9;
            for (int q = 0; q < 9 * m; q++) dst[q] += tmp[q];
        }
}

static int ldc_of(const wplan *p) { return round_up(p->C, VL); }
static int ldk_of(const wplan *p) { return round_up(p->kp, VL); }
static size_t vt_floats(const wplan *p) { return up16((size_t)NPT * p->tbw * ldc_of(p)); }
static size_t st_floats(const wplan *p) { return up16((size_t)NPT * p->tbw * ldk_of(p)); }

/* Blocked: the full dL/dU (36 kp C) summed block by block, each element by one unit
 * (xi, group of panels) in block order, then transformed back. */
static void wgrad_blocked(const wplan *p, float *dw, const float *dout, const float *in, float *work) {
    int ldc = ldc_of(p), ldk = ldk_of(p), npan = p->kp / MR;
    float *VT = work, *ST = VT + vt_floats(p), *dU = ST + st_floats(p);
    int pg = imin(npan, 4); /* panels per product unit */
    int ngroups = (npan + pg - 1) / pg, units = NPT * ngroups;
    int T = threads_for(units);
    (void)T; /* read by the pragma only: unused without OpenMP */
    patch pin[DW_MAX_TILES], pout[DW_MAX_TILES];
#pragma omp parallel num_threads(T) if (T > 1)
    {
        for (int blk = 0; blk < p->nblocksw; blk++) {
            int t0 = blk * p->tbw, nt = imin(p->tbw, p->tiles - t0);
#pragma omp single
            {
                tile_patches(p, t0, nt, pin, 6, p->ih, p->iw, p->pt, p->pl, (size_t)p->C * p->ih * p->iw);
                tile_patches(p, t0, nt, pout, 4, p->oh, p->ow, 0, 0, (size_t)p->K * p->oh * p->ow);
            }
#pragma omp for schedule(static)
            for (int t = 0; t < nt; t++) wgrad_transform_tile(p, VT, ldc, ST, ldk, p->tbw, in, dout, pin, pout, t);
#pragma omp for schedule(dynamic, 1)
            for (int u = 0; u < units; u++) {
                int xi = u / ngroups, pan0 = (u % ngroups) * pg;
                wgrad_products(p, dU, VT, ldc, ST, ldk, p->tbw, nt, xi, pan0, imin(pan0 + pg, npan), blk > 0);
            }
        }
#pragma omp for schedule(static)
        for (int k = 0; k < p->K; k++) kernel_grad(dw, dU + (size_t)k * ldc, (size_t)p->kp * ldc, ldc, p->C, k, 1, 1, 0);
    }
}

/* Parts: the blocks split into wparts parts (a number fixed by the shape), each part
 * summing its own dL/dU over its blocks, block by block in one thread's slot; the
 * inverse transform adds the parts in order. No thread waits for another until the
 * end, and each block stays in the cache of the thread that transformed it. */
static void wgrad_parts(const wplan *p, float *dw, const float *dout, const float *in, float *work) {
    int ldc = ldc_of(p), ldk = ldk_of(p), npan = p->kp / MR, P = p->wparts;
    size_t du = up16((size_t)NPT * p->kp * ldc), slot = vt_floats(p) + st_floats(p);
    float *dU = work, *slots = work + P * du;
    int T = threads_for(P);
    (void)T; /* read by the pragma only: unused without OpenMP */
#pragma omp parallel num_threads(T) if (T > 1)
    {
        float *VT = slots + (size_t)thread_id() * slot, *ST = VT + vt_floats(p);
        patch pin[DW_MAX_TILES], pout[DW_MAX_TILES];
#pragma omp for schedule(dynamic, 1)
        for (int q = 0; q < P; q++) {
            int b0 = (int)((long)p->nblocksw * q / P), b1 = (int)((long)p->nblocksw * (q + 1) / P);
            for (int blk = b0; blk < b1; blk++) {
                int t0 = blk * p->tbw, nt = imin(p->tbw, p->tiles - t0);
                tile_patches(p, t0, nt, pin, 6, p->ih, p->iw, p->pt, p->pl, (size_t)p->C * p->ih * p->iw);
                tile_patches(p, t0, nt, pout, 4, p->oh, p->ow, 0, 0, (size_t)p->K * p->oh * p->ow);
                for (int t = 0; t < nt; t++) wgrad_transform_tile(p, VT, ldc, ST, ldk, p->tbw, in, dout, pin, pout, t);
                for (int xi = 0; xi < NPT; xi++)
                    wgrad_products(p, dU + q * du, VT, ldc, ST, ldk, p->tbw, nt, xi, 0, npan, blk > b0);
            }
        }
#pragma omp for schedule(static)
        for (int k = 0; k < p->K; k++)
            kernel_grad(dw, dU + (size_t)k * ldc, (size_t)p->kp * ldc, ldc, p->C, k, 1, P, du);
    }
}

/* Fused: all tiles transformed, then units of KR_W output channels, each with its own
 * dL/dU (36 KR_W C, in its slot) and its kernels' gradient. */
static void wgrad_fused(const wplan *p, float *dw, const float *dout, const float *in, float *work) {
    int ldc = ldc_of(p), ldk = ldk_of(p);
    float *VT = work, *ST = VT + vt_floats(p), *slots = ST + st_floats(p);
    size_t slot = up16((size_t)NPT * KR_W * ldc);
    int units = (p->K + KR_W - 1) / KR_W;
    int T = threads_for(imax(units, p->tiles));
    (void)T; /* read by the pragma only: unused without OpenMP */
    patch pin[FUSED_MAX_TILES], pout[FUSED_MAX_TILES];
    tile_patches(p, 0, p->tiles, pin, 6, p->ih, p->iw, p->pt, p->pl, (size_t)p->C * p->ih * p->iw);
    tile_patches(p, 0, p->tiles, pout, 4, p->oh, p->ow, 0, 0, (size_t)p->K * p->oh * p->ow);
#pragma omp parallel num_threads(T) if (T > 1)
    {
#pragma omp for schedule(static)
        for (int t = 0; t < p->tiles; t++) wgrad_transform_tile(p, VT, ldc, ST, ldk, p->tbw, in, dout, pin, pout, t);
        float *dU = slots + (size_t)thread_id() * slot;
#pragma omp for schedule(dynamic, 1)
        for (int u = 0; u < units; u++) {
            int k0 = u * KR_W, nk = imin(KR_W, p->K - k0), npan = round_up(nk, MR) / MR;
            /* dU[xi][r][c] for the rows r = k - k0 < npan * MR */
            for (int xi = 0; xi < NPT; xi++) {
                const float *Sx = ST + (size_t)xi * p->tbw * ldk + k0, *Vx = VT + (size_t)xi * p->tbw * ldc;
                float *Dx = dU + (size_t)xi * npan * MR * ldc;
                for (int pan = 0; pan < npan; pan++) {
                    int cv = 0, ncv = ldc / VL;
                    for (; cv + NV <= ncv; cv += NV)
                        product_tile(NV, p->tiles, Sx + pan * MR, ldk, Vx + cv * VL, ldc, Dx + (size_t)pan * MR * ldc + cv * VL, ldc, 0);
                    for (; cv < ncv; cv++)
                        product_tile(1, p->tiles, Sx + pan * MR, ldk, Vx + cv * VL, ldc, Dx + (size_t)pan * MR * ldc + cv * VL, ldc, 0);
                }
            }
            kernel_grad(dw, dU, (size_t)npan * MR * ldc, ldc, p->C, k0, nk, 1, 0);
        }
    }
}

/* ---------------------------------------------------------------- entry points */
int st_winograd_possible(const st_conv_geom *g) {
    return g->groups == 1 && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1 &&
           g->pt <= 2 && g->pb <= 2 && g->pl <= 2 && g->pr <= 2;
}

/* The forward correlation and the input gradient's (dL/dout with the kernels turned
 * and the channels swapped, padding 2 - p). */
static void plans(const st_conv_geom *g, int n, wplan *fwd, wplan *bwd) {
    plan_init(fwd, n, g->cin, g->cout, g->ih, g->iw, g->oh, g->ow, g->pt, g->pl);
    plan_init(bwd, n, g->cout, g->cin, g->oh, g->ow, g->ih, g->iw, 2 - g->pt, 2 - g->pl);
}

size_t st_winograd_work_size(const st_conv_geom *g, int n) {
    if (n <= 0) return 0;
    wplan f, b;
    plans(g, n, &f, &b);
    size_t m = conv_floats(&f);
    if (conv_floats(&b) > m) m = conv_floats(&b);
    if (wgrad_floats(&f) > m) m = wgrad_floats(&f);
    return m + 16;
}

void st_winograd_forward(float *out, const float *in, const float *w, const float *b, int n,
                         const st_conv_geom *g, float *work) {
    st_winograd_forward_prep(out, in, w, b, n, g, work, NULL);
}

/* U of all the forward kernels, for every batch size: the layout of run_blocked's. */
size_t st_winograd_prep_size(const st_conv_geom *g) { return (size_t)NPT * round_up(g->cout, MR) * g->cin; }

void st_winograd_prepare(float *U, const float *w, const st_conv_geom *g) {
    int npan = round_up(g->cout, MR) / MR, T = threads_for(npan);
    (void)T; /* read by the pragma only: unused without OpenMP */
#pragma omp parallel for schedule(static) num_threads(T) if (T > 1)
    for (int pan = 0; pan < npan; pan++) transform_kernels(U, npan, 0, w, g->cout, g->cin, 0, pan, pan + 1);
}

void st_winograd_forward_prep(float *out, const float *in, const float *w, const float *b, int n,
                              const st_conv_geom *g, float *work, const float *U) {
    if (n <= 0) return;
    wplan f, bk;
    plans(g, n, &f, &bk);
    run_conv(&f, out, in, w, 0, b, 0, wino_aligned(work), U);
}

void st_winograd_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, int n, const st_conv_geom *g, float *work) {
    if (n <= 0) return;
    wplan f, bk;
    plans(g, n, &f, &bk);
    float *base = wino_aligned(work);
    if (din) run_conv(&bk, din, dout, w, 1, NULL, 1, base, NULL);
    if (f.wfused) wgrad_fused(&f, dw, dout, in, base);
    else if (f.wparts) wgrad_parts(&f, dw, dout, in, base);
    else wgrad_blocked(&f, dw, dout, in, base);
    if (db) st_bias_grad(db, dout, n, g->cout, (size_t)g->oh * g->ow);
}
