/* epilogue.c - what st_net_run does to a layer's output as the layer makes it.
 *
 * A convolution (or linear layer) followed by an eval-mode batch norm, a residual add
 * and a ReLU needs, after its sums, only
 *
 *   y = act(y * scale[c] + shift[c] + add)        (c: the output channel)
 *
 * with the batch norm folded into scale and shift (layers.c). Done as a separate pass it
 * reads and writes the whole output once more, from memory when the output is large
 * (25 MB for resnet50's first layers at batch 8). The GEMM (gemm.c) applies it to each
 * register tile of its output as soon as the tile's sums are complete, while the tile is
 * in the L1 cache; the other paths call st_epilogue_apply on what they wrote. One
 * function, st_epilogue_span, does the arithmetic for all of them, so every path gives
 * the same bits.
 */
#include "internal.h"

#ifdef _OPENMP
#include <omp.h>
#endif

void st_epilogue_span(const st_epilogue *e, float *y, const float *add, size_t n, int c) {
    float a = e->scale[c], b = e->shift[c], slope = e->slope;
    if (add) {
        if (e->act == 1)
            for (size_t k = 0; k < n; k++) { float v = y[k] * a + b; v = v + add[k]; y[k] = v < 0 ? 0 : v; }
        else if (e->act == 2)
            for (size_t k = 0; k < n; k++) { float v = y[k] * a + b; v = v + add[k]; y[k] = v > 0 ? v : slope * v; }
        else
            for (size_t k = 0; k < n; k++) { float v = y[k] * a + b; y[k] = v + add[k]; }
        return;
    }
    if (e->act == 1)
        for (size_t k = 0; k < n; k++) { float v = y[k] * a + b; y[k] = v < 0 ? 0 : v; }
    else if (e->act == 2)
        for (size_t k = 0; k < n; k++) { float v = y[k] * a + b; y[k] = v > 0 ? v : slope * v; }
    else
        for (size_t k = 0; k < n; k++) y[k] = y[k] * a + b;
}

void st_epilogue_rows(const st_epilogue *e, float *y, size_t r0, size_t r1, int C, size_t S) {
    for (size_t r = r0; r < r1; r++) st_epilogue_span(e, y + r * S, e->add ? e->add + r * S : NULL, S, (int)(r % C));
}

/* st_net_run's element-wise passes (epilogues, adds) are split over the threads from this
 * many values up, outside parallel regions: at batch 1 they ran on one thread, about a
 * twentieth of resnet50's time on 2 threads (bench/scale_profile.c). Element-wise: the
 * split changes no result. */
#define ELEMENTWISE_PAR_MIN ((size_t)32 << 10)

int st_elementwise_parts(size_t floats) {
#ifdef _OPENMP
    if (floats >= ELEMENTWISE_PAR_MIN && !omp_in_parallel()) return st_get_threads();
#else
    (void)floats;
#endif
    return 1;
}

void st_epilogue_apply(const st_epilogue *e, float *y, int outer, int C, size_t S) {
    size_t rows = (size_t)outer * C;
    int parts = st_elementwise_parts(rows * S);
    if (parts == 1) { /* (not even an inactive region: it costs a futex call) */
        st_epilogue_rows(e, y, 0, rows, C, S);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int q = 0; q < parts; q++) st_epilogue_rows(e, y, rows * q / parts, rows * (q + 1) / parts, C, S);
}

/* ---------------------------------------------------------------- the bias, backward
 * Summed one value after another, a channel's sum is a chain of dependent additions, one
 * every 4 cycles: for a 1x1 layer's 8 x 256 x 28 x 28 output gradient that was 1.7 ms on
 * one thread while the other waited (the layer's GEMMs take 14 ms on two). 16 running
 * sums go a vector at a time, and the channels are split over the threads. */
#define BIAS_LANES 16

static void bias_grad_rows(float *db, const float *dy, int outer, int C, size_t S, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
        float part[BIAS_LANES] = {0};
        for (int s = 0; s < outer; s++) {
            const float *row = dy + ((size_t)s * C + c) * S;
            size_t q = 0;
            for (; q + BIAS_LANES <= S; q += BIAS_LANES)
                for (int l = 0; l < BIAS_LANES; l++) part[l] += row[q + l];
            for (int l = 0; q < S; q++, l++) part[l] += row[q];
        }
        float acc = 0;
        for (int l = 0; l < BIAS_LANES; l++) acc += part[l];
        db[c] += acc;
    }
}

void st_bias_grad(float *db, const float *dy, int outer, int C, size_t S) {
    int parts = st_elementwise_parts((size_t)outer * C * S);
    if (parts > C) parts = C;
    if (parts <= 1) {
        bias_grad_rows(db, dy, outer, C, S, 0, C);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int q = 0; q < parts; q++) bias_grad_rows(db, dy, outer, C, S, C * q / parts, C * (q + 1) / parts);
}
