/* test_winograd1d.c - the 1D Winograd F(4, 3) convolution (src/conv_winograd1d.c) against
 * the plain loops (st_conv_forward_ref / st_conv_backward_ref, double accumulation).
 *
 * 1. 250 random conv1d geometries with 3 taps: batch 1-40, 1-70 input and output
 *    channels, lengths 3-300 (most not a multiple of the 4-output tile nor of the
 *    16-tile vectors), padding 0, 1 or 2 on each side, 'same' and 'valid', bias on and
 *    off. Each goes through st_conv_forward and st_conv_backward with the 1D Winograd
 *    path forced: the output, the input gradient, the weight gradient and the bias
 *    gradient, accumulated into non-zero gradients, then the weight gradient alone with
 *    din = db = NULL; the workspace starts as NaN and is not 64-byte aligned.
 * 2. Chosen shapes: the suite's benchmark layer (64 -> 64, length 1024) at batch 4, many
 *    channels, several blocks and parts of the weight gradient, channel counts that are
 *    not multiples of the panels (8) or the vectors (16).
 * 3. Thread-count independence: 1, 2 and 3 threads give bit-identical results.
 * 4. The path rule of conv.c: 1D Winograd for the benchmark layer, not for few channels
 *    (MNIST-1D's) nor for kernels of 5 taps, stride 2 or dilation 2.
 *
 * Tolerance: |ours - reference| <= TOL * (1 + max |reference|), TOL = 2e-5; the worst
 * case seen is printed (F(4, 3) multiplies by up to 8 in its transforms, so its error
 * is a few times that of the plain sums).
 */
#include "internal.h"
#include "kernels.h"
#include "test.h"
#define TEST_SEED 0x510e527fade682d1ULL
#include "rand.h"

#include <stdlib.h>
#include <string.h>

#define TOL 2e-5

static double worst_y, worst_dx, worst_dw, worst_db;

/* checks max |got - ref| / (1 + max |ref|) <= TOL, noted in *worst */
static void check(const char *desc, const char *what, const float *got, const float *ref, size_t n, double *worst) {
    double e = test_maxdiff(got, ref, n) / (1 + test_maxabs(ref, n));
    if (e > *worst) *worst = e;
    CHECK(e <= TOL, "%s: %s: relative error %.3g > %.3g", desc, what, e, TOL);
}

/* fills the workspace with NaN: the path must not read what it did not write */
static void poison(float *work, size_t n) {
    for (size_t i = 0; i < n; i++) work[i] = NAN;
}

static int geom(st_conv_geom *g, int cin, int cout, int pad_mode, int pad, int len, int taps, int stride, int dil) {
    int k[2] = {1, taps}, s[2] = {1, stride}, d[2] = {1, dil}, p[2] = {0, pad};
    return st_conv_geom_init(g, cin, cout, 1, k, s, d, pad_mode, p, 1, len) == ST_OK;
}

/* ---------------------------------------------------------------- against the reference */
static void run_case(const st_conv_geom *g, int n, int bias) {
    char desc[128];
    snprintf(desc, sizeof desc, "n=%d %d->%d len=%d pad=(%d,%d) bias=%d", n, g->cin, g->cout, g->iw, g->pl, g->pr, bias);
    size_t nx = (size_t)n * g->cin * g->iw, ny = (size_t)n * g->cout * g->ow, nw = (size_t)g->cout * g->cin * 3;
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g->cout), *gy = rand_f(ny);
    float *dx0 = rand_f(nx), *dw0 = rand_f(nw), *db0 = rand_f(g->cout);
    float *yr = alloc_f(ny), *dxr = copy_f(dx0, nx), *dwr = copy_f(dw0, nw), *dbr = copy_f(db0, g->cout);
    float *dwr_only = copy_f(dw0, nw), *zx = calloc(nx, sizeof(float));
    st_conv_forward_ref(yr, x, w, bias ? b : NULL, n, g);
    st_conv_backward_ref(dxr, dwr, bias ? dbr : NULL, gy, x, w, n, g);
    st_conv_backward_ref(zx, dwr_only, NULL, gy, x, w, n, g);

    st_conv_force_path(3);
    size_t wsz = st_conv_work_size(g, n);
    CHECK(wsz >= st_winograd1d_work_size(g, n), "%s: work size %zu < the 1D Winograd's %zu", desc, wsz,
          st_winograd1d_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1; /* not 64-byte aligned */
    float *y = alloc_f(ny), *dx = copy_f(dx0, nx), *dw = copy_f(dw0, nw), *db = copy_f(db0, g->cout);

    poison(work, wsz);
    poison(y, ny);
    st_conv_forward(y, x, w, bias ? b : NULL, n, g, work);
    check(desc, "forward", y, yr, ny, &worst_y);
    poison(work, wsz);
    st_conv_backward(dx, dw, bias ? db : NULL, gy, x, w, n, g, work);
    check(desc, "input gradient", dx, dxr, nx, &worst_dx);
    check(desc, "weight gradient", dw, dwr, nw, &worst_dw);
    if (bias) check(desc, "bias gradient", db, dbr, g->cout, &worst_db);
    /* the weight gradient alone */
    memcpy(dw, dw0, nw * sizeof(float));
    poison(work, wsz);
    st_conv_backward(NULL, dw, NULL, gy, x, w, n, g, work);
    check(desc, "weight gradient with din = db = NULL", dw, dwr_only, nw, &worst_dw);

    st_conv_force_path(-1);
    free(work_block); free(y); free(dx); free(dw); free(db);
    free(x); free(w); free(b); free(gy); free(dx0); free(dw0); free(db0);
    free(yr); free(dxr); free(dwr); free(dbr); free(dwr_only); free(zx);
}

static void random_cases(int count) {
    int done = 0;
    while (done < count) {
        int n = rint_in(1, 40), cin = rint_in(1, 70), cout = rint_in(1, 70), len = rint_in(3, 300);
        if (rnd64() % 3 == 0) n = rint_in(1, 3);
        int mode = rint_in(0, 4), pad = rint_in(0, 2);
        mode = mode == 3 ? ST_PAD_SAME : mode == 4 ? ST_PAD_VALID : ST_PAD_EXPLICIT;
        if ((double)n * cin * cout * len > 3e6) continue; /* keep the reference quick */
        st_conv_geom g;
        if (!geom(&g, cin, cout, mode, pad, len, 3, 1, 1)) continue;
        run_case(&g, n, rint_in(0, 1));
        done++;
    }
    printf("winograd1d: %d random geometries\n", done);
}

static void chosen_cases(void) {
    static const int shapes[][5] = {
        /* n, cin, cout, len, pad */
        {4, 64, 64, 1024, 1}, {2, 200, 24, 130, 2}, {3, 24, 200, 97, 0}, {1, 130, 130, 64, 1},
        {40, 17, 33, 333, 1}, {9, 8, 8, 1000, 2},   {1, 1, 1, 3, 0},     {2, 5, 70, 4, 2},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        st_conv_geom g;
        if (geom(&g, s[1], s[2], ST_PAD_EXPLICIT, s[4], s[3], 3, 1, 1)) run_case(&g, s[0], (int)(i & 1));
    }
}

/* ---------------------------------------------------------------- threads */
static void thread_cases(void) {
    static const int shapes[][5] = {{3, 24, 40, 301, 1}, {8, 64, 64, 1024, 1}, {1, 100, 36, 70, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        st_conv_geom g;
        if (!geom(&g, s[1], s[2], ST_PAD_EXPLICIT, s[4], s[3], 3, 1, 1)) continue;
        int n = s[0];
        size_t nx = (size_t)n * g.cin * g.iw, ny = (size_t)n * g.cout * g.ow, nw = (size_t)g.cout * g.cin * 3;
        float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *gy = rand_f(ny);
        st_conv_force_path(3);
        float *work = alloc_f(st_conv_work_size(&g, n)), *y[3], *dx[3], *dw[3], *db[3];
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            y[t] = alloc_f(ny);
            dx[t] = calloc(nx, sizeof(float)); dw[t] = calloc(nw, sizeof(float)); db[t] = calloc(g.cout, sizeof(float));
            st_conv_forward(y[t], x, w, b, n, &g, work);
            st_conv_backward(dx[t], dw[t], db[t], gy, x, w, n, &g, work);
        }
        st_set_threads(1);
        for (int t = 1; t < 3; t++) {
            int same = !memcmp(y[0], y[t], ny * sizeof(float)) && !memcmp(dx[0], dx[t], nx * sizeof(float)) &&
                       !memcmp(dw[0], dw[t], nw * sizeof(float)) && !memcmp(db[0], db[t], g.cout * sizeof(float));
            CHECK(same, "n=%d %d->%d len=%d: %d threads differ from 1 thread", n, g.cin, g.cout, g.iw, t + 1);
        }
        for (int t = 0; t < 3; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
        st_conv_force_path(-1);
        free(work); free(x); free(w); free(b); free(gy);
    }
}

/* ---------------------------------------------------------------- the path rule */
static int takes_1d(const st_conv_geom *g, int n) {
    return st_conv_work_size(g, n) == st_winograd1d_work_size(g, n);
}

static void rule_cases(void) {
    st_conv_geom g;
    CHECK(geom(&g, 64, 64, ST_PAD_EXPLICIT, 1, 1024, 3, 1, 1) && takes_1d(&g, 32), "the benchmark layer: not 1D Winograd");
    /* MNIST-1D's convolutions (zoo.c: 15 channels, stride 2) and few channels at stride 1 */
    CHECK(geom(&g, 15, 15, ST_PAD_VALID, 0, 19, 3, 2, 1) && !takes_1d(&g, 100), "mnist1d-cnn's layer: 1D Winograd");
    CHECK(geom(&g, 15, 15, ST_PAD_EXPLICIT, 1, 40, 3, 1, 1) && !takes_1d(&g, 100), "15 channels: 1D Winograd");
    CHECK(geom(&g, 1, 32, ST_PAD_EXPLICIT, 1, 40, 3, 1, 1) && !takes_1d(&g, 100), "1 input channel: 1D Winograd");
    CHECK(geom(&g, 8, 8, ST_PAD_EXPLICIT, 1, 40, 5, 1, 1) && !st_winograd1d_possible(&g), "5 taps: possible");
    CHECK(geom(&g, 8, 8, ST_PAD_EXPLICIT, 1, 40, 3, 2, 1) && !st_winograd1d_possible(&g), "stride 2: possible");
    CHECK(geom(&g, 8, 8, ST_PAD_EXPLICIT, 1, 40, 3, 1, 2) && !st_winograd1d_possible(&g), "dilation 2: possible");
}

int main(void) {
    st_set_threads(1);
    random_cases(250);
    chosen_cases();
    thread_cases();
    rule_cases();
    printf("winograd1d: worst relative errors: forward %.2g, input gradient %.2g, weight gradient %.2g, bias %.2g\n",
           worst_y, worst_dx, worst_dw, worst_db);
    st_set_threads(0);
    return test_done("test_winograd1d");
}
