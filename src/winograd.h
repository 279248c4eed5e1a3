/* winograd.h - what the two Winograd paths share (header only): conv_winograd.c's
 * F(4x4, 3x3) for 2D convolutions and conv_winograd1d.c's F(4, 3) for 1D ones.
 *
 *  - the vectors: VL floats (GCC vector extensions, as wide as the target), MR output
 *    channels per panel of the transformed kernels, NV vectors of tiles per register block;
 *  - the 1D transforms of F(4, 3) (the 2D ones apply them to the rows, then the columns);
 *  - the product kernel, one register block of M[xi] = U[xi] (K x C) * V[xi] (C x tiles)
 *    for a transform point xi, with U in panels of MR output channels and V with the
 *    tiles in the lanes;
 *  - the threads (at most WINO_MAX_SLOTS, each with its own scratch slot).
 */
#ifndef ST_WINOGRAD_H
#define ST_WINOGRAD_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define WINO_AVX512 1 /* the gathers and scatters transpose in registers */
#endif

/* ---------------------------------------------------------------- vectors and tiling */
#if defined(__AVX512F__)
#define VL 16
#define MR 8
#elif defined(__AVX__)
#define VL 8
#define MR 4
#else
#define VL 4
#define MR 4
#endif
#define NV 2             /* tile vectors per register block of the product kernel */
#define NR (NV * VL)     /* tiles per register block */
#define WINO_MAX_SLOTS 8 /* scratch slots, so at most 8 threads */

typedef float vf __attribute__((vector_size(VL * sizeof(float)), aligned(4)));
static inline vf vload(const float *p) { return *(const vf *)p; }
static inline void vstore(float *p, vf v) { *(vf *)p = v; }
static inline vf vsplat(float x) { return (vf){0} + x; }

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }
static inline int round_up(int a, int m) { return (a + m - 1) / m * m; }
static inline size_t up16(size_t x) { return (x + 15) & ~(size_t)15; } /* whole 64-byte lines */
/* the 64-byte aligned start of a workspace */
static inline float *wino_aligned(float *work) { return (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63); }

/* ---------------------------------------------------------------- the transforms of F(4, 3)
 * For the points 0, 1, -1, 2, -2 and infinity:
 *
 *   B^T = | 4  0 -5  0  1  0 |    G = |  1/4    0     0  |    A^T = | 1  1  1  1  1  0 |
 *         | 0 -4 -4  1  1  0 |        | -1/6  -1/6  -1/6 |          | 0  1 -1  2 -2  0 |
 *         | 0  4 -4 -1  1  0 |        | -1/6   1/6  -1/6 |          | 0  1  1  4  4  0 |
 *         | 0 -2 -1  2  1  0 |        | 1/24  1/12  1/6  |          | 0  1 -1  8 -8  1 |
 *         | 0  2 -1 -2  1  0 |        | 1/24 -1/12  1/6  |
 *         | 0  4  0 -5  0  1 |        |   0     0     1  |
 *
 * so that the 4 outputs y of 3 taps g over 6 inputs d are y = A^T [(G g) (.) (B^T d)]. */
/* v = B^T d (6 -> 6) */
static inline void tr_input(vf v[6], const vf d[6]) {
    vf t1 = d[4] - 4.0f * d[2], t2 = d[3] - 4.0f * d[1];
    vf t3 = d[4] - d[2], t4 = 2.0f * (d[3] - d[1]);
    v[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    v[1] = t1 + t2;
    v[2] = t1 - t2;
    v[3] = t3 + t4;
    v[4] = t3 - t4;
    v[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}
/* y = A^T m (6 -> 4) */
static inline void tr_output(vf y[4], const vf m[6]) {
    vf a = m[1] + m[2], b = m[1] - m[2], c = m[3] + m[4], d = m[3] - m[4];
    y[0] = m[0] + a + c;
    y[1] = b + 2.0f * d;
    y[2] = a + 4.0f * c;
    y[3] = b + 8.0f * d + m[5];
}
/* s = A y (4 -> 6): the transform of a tile of dL/dout, the adjoint of tr_output */
static inline void tr_grad(vf s[6], const vf y[4]) {
    vf e = y[0] + y[2], o = y[1] + y[3];
    vf e2 = y[0] + 4.0f * y[2], o2 = 2.0f * y[1] + 8.0f * y[3];
    s[0] = y[0];
    s[1] = e + o;
    s[2] = e - o;
    s[3] = e2 + o2;
    s[4] = e2 - o2;
    s[5] = y[3];
}
/* u = G g (3 -> 6) */
static inline void tr_kernel(vf u[6], const vf g[3]) {
    vf e = g[0] + g[2];
    u[0] = g[0] * (1.0f / 4);
    u[1] = (e + g[1]) * (-1.0f / 6);
    u[2] = (e - g[1]) * (-1.0f / 6);
    vf e2 = g[0] * (1.0f / 24) + g[2] * (1.0f / 6), o2 = g[1] * (1.0f / 12);
    u[3] = e2 + o2;
    u[4] = e2 - o2;
    u[5] = g[2];
}
/* g = G^T u (6 -> 3): the adjoint of tr_kernel, for the weight gradient */
static inline void tr_kernel_adj(vf g[3], const vf u[6]) {
    vf p = u[1] + u[2], q = u[1] - u[2], r = u[3] + u[4], s = u[3] - u[4];
    g[0] = u[0] * (1.0f / 4) - p * (1.0f / 6) + r * (1.0f / 24);
    g[1] = q * (-1.0f / 6) + s * (1.0f / 12);
    g[2] = p * (-1.0f / 6) + r * (1.0f / 6) + u[5];
}

/* ---------------------------------------------------------------- the products
 * M (MR x nv*VL, row stride ldm) (+)= sum over c < C of Up[c*ldu + 0 .. MR) (x)
 * Vp[c*ldv + 0 .. nv*VL): MR x nv vectors of sums in registers, each summed over c in
 * order. The forward products read U's packed panels (ldu = MR); the 2D weight
 * gradient's read dL/dout's transform, ldu floats per tile. */
static inline __attribute__((always_inline)) void product_tile(int nv, int C, const float *restrict Up, int ldu,
                                                               const float *restrict Vp, int ldv,
                                                               float *restrict M, int ldm, int accumulate) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < nv; v++) acc[i][v] = (vf){0};
    for (int c = 0; c < C; c++) {
        vf b[NV];
        for (int v = 0; v < nv; v++) b[v] = vload(Vp + (size_t)c * ldv + v * VL);
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < nv; v++) acc[i][v] += Up[(size_t)c * ldu + i] * b[v];
    }
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < nv; v++) {
            float *m = M + (size_t)i * ldm + v * VL;
            vstore(m, accumulate ? vload(m) + acc[i][v] : acc[i][v]);
        }
}

/* ---------------------------------------------------------------- threads
 * Threads for `units` units of work: 1 inside a parallel region, else the library's
 * setting, at most WINO_MAX_SLOTS and units. */
static inline int threads_for(int units) {
#ifdef _OPENMP
    if (omp_in_parallel()) return 1;
    int t = st_get_threads();
    return imax(1, imin(imin(t, WINO_MAX_SLOTS), units));
#else
    (void)units;
    return 1;
#endif
}
static inline int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif
