/* test_stem.c - the forward kernel for few input channels (src/conv_stem.c) against the
 * plain loops (st_conv_forward_ref, double accumulation).
 *
 * 1. 300 random 2D geometries: batch 1-10, 1-4 input channels, 1-40 output channels,
 *    square and non-square kernels of 1-7, stride 1 or 2 on each axis, padding 0-3,
 *    input sizes 1-70 (many odd, some smaller than the kernel plus padding, so that
 *    whole kernel rows fall outside the input), bias on and off, through
 *    st_conv_forward with the stem path forced; the workspace and the output start as
 *    NaN, the workspace not 64-byte aligned.
 * 2. Chosen shapes: ResNet's stem (3 -> 64, 7x7/2, padding 3) on 224x224 at batch 2,
 *    rows exactly a multiple of the vectors and one more, a 1D-shaped input (height 1).
 * 3. The epilogue (st_conv_forward_prep with a batch norm's scale and shift, a residual
 *    add and a ReLU) against the reference followed by st_epilogue_apply.
 *    Each case of 1 and 2 also runs the weight and bias gradient with no input gradient
 *    (st_stem_backward through st_conv_backward) against st_conv_backward_ref_f64, dw
 *    and db starting at random values (it adds), the workspace as NaN.
 * 4. Thread-count independence: 1, 2 and 3 threads give bit-identical outputs and
 *    weight and bias gradients (one- and multi-part shapes).
 * 5. The path rule of conv.c: the stem for ResNet's first layer at batch 1 and 8; its
 *    backward pass with an input gradient keeps its old path (checked through the
 *    workspace size and the gradients against the reference), without one it takes
 *    st_stem_backward (bit for bit); not for conv1d (MNIST-1D), 5 input channels,
 *    stride 3, groups or dilation, nor where many lanes would idle (1 -> 6 on 28x28).
 *
 * Tolerance: |ours - reference| <= TOL * (1 + max |reference|), TOL = 1e-5.
 */
#include "internal.h"
#include "kernels.h"
#include "test.h"
#define TEST_SEED 0x6a09e667f3bcc908ULL
#include "rand.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

static double worst;

static void check(const char *desc, const char *what, const float *got, const float *ref, size_t n) {
    double e = test_maxdiff(got, ref, n) / (1 + test_maxabs(ref, n));
    if (e > worst) worst = e;
    CHECK(e <= TOL, "%s: %s: relative error %.3g > %.3g", desc, what, e, TOL);
}

static void poison(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

static int geom(st_conv_geom *g, int cin, int cout, int kh, int kw, int sh, int sw, int ph, int pw, int ih, int iw) {
    int k[2] = {kh, kw}, s[2] = {sh, sw}, d[2] = {1, 1}, p[2] = {ph, pw};
    return st_conv_geom_init(g, cin, cout, 1, k, s, d, ST_PAD_EXPLICIT, p, ih, iw) == ST_OK;
}

static size_t in_size(const st_conv_geom *g, int n) { return (size_t)n * g->cin * g->ih * g->iw; }
static size_t out_size(const st_conv_geom *g, int n) { return (size_t)n * g->cout * g->oh * g->ow; }
static size_t w_size(const st_conv_geom *g) { return (size_t)g->cout * g->cin * g->kh * g->kw; }

/* ---------------------------------------------------------------- against the reference */
/* The weight and bias gradient with no input gradient (st_stem_backward through
 * st_conv_backward, the stem forced) against the double reference; dw and db start at
 * random values (the kernel adds), the workspace as NaN. */
static void backward_case(const st_conv_geom *g, int n, int bias) {
    char desc[160];
    snprintf(desc, sizeof desc, "backward n=%d %d->%d %dx%d k=%dx%d s=%dx%d p=%dx%d bias=%d", n, g->cin, g->cout, g->ih,
             g->iw, g->kh, g->kw, g->sh, g->sw, g->pt, g->pl, bias);
    if (!st_stem_backward_possible(g, n)) return;
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *w = rand_f(nw), *gy = rand_f(ny), *dw = rand_f(nw), *db = rand_f(g->cout);
    double *xd = malloc(nx * sizeof(double)), *gyd = malloc(ny * sizeof(double));
    double *dwd = malloc(nw * sizeof(double)), *dbd = malloc(g->cout * sizeof(double));
    float *dwr = alloc_f(nw), *dbr = alloc_f(g->cout);
    for (size_t i = 0; i < nx; i++) xd[i] = x[i];
    for (size_t i = 0; i < ny; i++) gyd[i] = gy[i];
    for (size_t i = 0; i < nw; i++) dwd[i] = dw[i];
    for (int i = 0; i < g->cout; i++) dbd[i] = db[i];
    st_conv_backward_ref_f64(NULL, dwd, dbd, gyd, xd, NULL, n, g);
    for (size_t i = 0; i < nw; i++) dwr[i] = (float)dwd[i];
    for (int i = 0; i < g->cout; i++) dbr[i] = (float)dbd[i];
    st_conv_force_path(4);
    size_t wsz = st_conv_work_size(g, n);
    CHECK(wsz >= st_stem_backward_work_size(g, n), "%s: work size %zu < %zu", desc, wsz, st_stem_backward_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1;
    poison(work, wsz);
    st_conv_backward(NULL, dw, bias ? db : NULL, gy, x, w, n, g, work);
    st_conv_force_path(-1);
    check(desc, "weight gradient", dw, dwr, nw);
    if (bias) check(desc, "bias gradient", db, dbr, g->cout);
    free(work_block); free(x); free(w); free(gy); free(dw); free(db); free(xd); free(gyd); free(dwd); free(dbd);
    free(dwr); free(dbr);
}

static void run_case(const st_conv_geom *g, int n, int bias) {
    char desc[160];
    snprintf(desc, sizeof desc, "n=%d %d->%d %dx%d k=%dx%d s=%dx%d p=%dx%d bias=%d", n, g->cin, g->cout, g->ih, g->iw,
             g->kh, g->kw, g->sh, g->sw, g->pt, g->pl, bias);
    CHECK(st_stem_possible(g), "%s: not possible", desc);
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g->cout), *yr = alloc_f(ny), *y = alloc_f(ny);
    st_conv_forward_ref(yr, x, w, bias ? b : NULL, n, g);
    st_conv_force_path(4);
    size_t wsz = st_conv_work_size(g, n);
    CHECK(wsz >= st_stem_work_size(g, n), "%s: work size %zu < the stem's %zu", desc, wsz, st_stem_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1;
    poison(work, wsz);
    poison(y, ny);
    st_conv_forward(y, x, w, bias ? b : NULL, n, g, work);
    check(desc, "forward", y, yr, ny);
    st_conv_force_path(-1);
    free(work_block); free(x); free(w); free(b); free(yr); free(y);
    backward_case(g, n, bias);
}

static void random_cases(int count) {
    int done = 0;
    while (done < count) {
        int n = rint_in(1, 10), cin = rint_in(1, 4), cout = rint_in(1, 40);
        int kh = rint_in(1, 7), kw = rnd64() % 2 ? kh : rint_in(1, 7);
        int sh = rint_in(1, 2), sw = rint_in(1, 2), ph = rint_in(0, 3), pw = rnd64() % 2 ? ph : rint_in(0, 3);
        int ih = rint_in(1, 70), iw = rint_in(1, 70);
        if (rnd64() % 4 == 0) ih = rint_in(1, 8), iw = rint_in(1, 8); /* smaller than kernel + padding */
        if ((double)n * cin * cout * ih * iw * kh * kw > 2e7) continue;
        st_conv_geom g;
        if (!geom(&g, cin, cout, kh, kw, sh, sw, ph, pw, ih, iw)) continue;
        run_case(&g, n, rint_in(0, 1));
        done++;
    }
    printf("stem: %d random geometries\n", done);
}

static void chosen_cases(void) {
    static const int shapes[][8] = {
        /* n, cin, cout, k, s, p, h, w */
        {2, 3, 64, 7, 2, 3, 224, 224}, {1, 3, 32, 3, 2, 1, 64, 64}, {3, 3, 16, 3, 1, 1, 32, 33},
        {1, 4, 17, 5, 1, 2, 16, 47},   {2, 1, 8, 3, 1, 0, 1, 90},   {1, 2, 33, 7, 2, 3, 7, 7},
        {1, 3, 64, 7, 2, 3, 1, 200},   {4, 3, 48, 5, 2, 0, 30, 37},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        int kh = s[6] == 1 ? 1 : s[3], sh = s[6] == 1 ? 1 : s[4], ph = s[6] == 1 ? 0 : s[5];
        st_conv_geom g;
        if (geom(&g, s[1], s[2], kh, s[3], sh, s[4], ph, s[5], s[6], s[7])) run_case(&g, s[0], (int)(i & 1));
        else CHECK(0, "chosen shape %zu: no geometry", i);
    }
}

/* ---------------------------------------------------------------- the epilogue */
static void epilogue_cases(void) {
    st_conv_geom g;
    int n = 2;
    if (!geom(&g, 3, 32, 7, 7, 2, 2, 3, 3, 40, 38)) { CHECK(0, "epilogue geometry"); return; }
    size_t nx = in_size(&g, n), ny = out_size(&g, n), nw = w_size(&g);
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *scale = rand_f(g.cout), *shift = rand_f(g.cout);
    float *add = rand_f(ny), *yr = alloc_f(ny), *y = alloc_f(ny);
    for (int act = 0; act <= 2; act++)
        for (int with_add = 0; with_add <= 1; with_add++) {
            st_epilogue e = {scale, shift, with_add ? add : NULL, act, 0.1f};
            st_conv_forward_ref(yr, x, w, b, n, &g);
            st_epilogue_apply(&e, yr, n, g.cout, (size_t)g.oh * g.ow);
            st_conv_force_path(4);
            float *work = alloc_f(st_conv_work_size(&g, n));
            poison(y, ny);
            st_conv_forward_prep(y, x, w, b, n, &g, work, NULL, &e);
            st_conv_force_path(-1);
            char desc[64];
            snprintf(desc, sizeof desc, "epilogue act=%d add=%d", act, with_add);
            check(desc, "forward", y, yr, ny);
            free(work);
        }
    free(x); free(w); free(b); free(scale); free(shift); free(add); free(yr); free(y);
}

/* ---------------------------------------------------------------- threads */
static void thread_cases(void) {
    static const int shapes[][8] = {{1, 3, 64, 7, 2, 3, 224, 224}, {5, 3, 32, 3, 1, 1, 33, 47}, {2, 1, 16, 5, 2, 2, 61, 60},
                                     {8, 3, 64, 7, 2, 3, 64, 60}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        st_conv_geom g;
        if (!geom(&g, s[1], s[2], s[3], s[3], s[4], s[4], s[5], s[5], s[6], s[7])) continue;
        int n = s[0];
        size_t nx = in_size(&g, n), ny = out_size(&g, n), nw = w_size(&g);
        float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *y[3];
        st_conv_force_path(4);
        float *work = alloc_f(st_conv_work_size(&g, n));
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            y[t] = alloc_f(ny);
            st_conv_forward(y[t], x, w, b, n, &g, work);
        }
        st_set_threads(1);
        for (int t = 1; t < 3; t++)
            CHECK(!memcmp(y[0], y[t], ny * sizeof(float)), "shape %zu: %d threads differ from 1 thread", i, t + 1);
        /* the weight gradient (no input gradient) */
        float *dw[3], *db[3];
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            dw[t] = calloc(nw, sizeof(float));
            db[t] = calloc(g.cout, sizeof(float));
            st_conv_backward(NULL, dw[t], db[t], y[0], x, w, n, &g, work);
        }
        st_set_threads(1);
        for (int t = 1; t < 3; t++)
            CHECK(!memcmp(dw[0], dw[t], nw * sizeof(float)) && !memcmp(db[0], db[t], g.cout * sizeof(float)),
                  "shape %zu: backward: %d threads differ from 1 thread", i, t + 1);
        for (int t = 0; t < 3; t++) free(y[t]), free(dw[t]), free(db[t]);
        st_conv_force_path(-1);
        free(work); free(x); free(w); free(b);
    }
}

/* ---------------------------------------------------------------- the path rule */
static int takes_stem(const st_conv_geom *g, int n) { return st_conv_forward_is_stem(g, n); }

/* the backward pass of a layer whose forward takes the stem, against the reference */
static void input_grad_case(const st_conv_geom *g, int n) {
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *w = rand_f(nw), *gy = rand_f(ny);
    float *dx = calloc(nx, sizeof(float)), *dw = calloc(nw, sizeof(float)), *db = calloc(g->cout, sizeof(float));
    float *dxr = calloc(nx, sizeof(float)), *dwr = calloc(nw, sizeof(float)), *dbr = calloc(g->cout, sizeof(float));
    float *work = alloc_f(st_conv_work_size(g, n));
    st_conv_backward_ref(dxr, dwr, dbr, gy, x, w, n, g);
    st_conv_backward(dx, dw, db, gy, x, w, n, g, work);
    check("backward after the stem", "input gradient", dx, dxr, nx);
    check("backward after the stem", "weight gradient", dw, dwr, nw);
    check("backward after the stem", "bias gradient", db, dbr, g->cout);
    free(x); free(w); free(gy); free(dx); free(dw); free(db); free(dxr); free(dwr); free(dbr); free(work);
}

/* without an input gradient, st_conv_backward takes st_stem_backward (bit for bit) */
static void dispatch_case(const st_conv_geom *g, int n) {
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *w = rand_f(nw), *gy = rand_f(ny);
    float *dw = calloc(nw, sizeof(float)), *db = calloc(g->cout, sizeof(float));
    float *dws = calloc(nw, sizeof(float)), *dbs = calloc(g->cout, sizeof(float));
    float *work = alloc_f(st_conv_work_size(g, n));
    CHECK(st_stem_backward_possible(g, n), "resnet's stem: no stem backward");
    CHECK(st_conv_work_size(g, n) >= st_stem_backward_work_size(g, n), "resnet's stem: work size < the backward's");
    st_conv_backward(NULL, dw, db, gy, x, w, n, g, work);
    st_stem_backward(dws, dbs, gy, x, n, g, work);
    CHECK(!memcmp(dw, dws, nw * sizeof(float)) && !memcmp(db, dbs, g->cout * sizeof(float)),
          "resnet's stem, no input gradient: not the stem's backward");
    free(x); free(w); free(gy); free(dw); free(db); free(dws); free(dbs); free(work);
}

static void rule_cases(void) {
    st_conv_geom g;
    int k1[2] = {1, 3}, s2[2] = {1, 2}, d1[2] = {1, 1}, p0[2] = {0, 0};
    CHECK(geom(&g, 3, 64, 7, 7, 2, 2, 3, 3, 224, 224) && takes_stem(&g, 1), "resnet's stem at batch 1: not the stem");
    CHECK(takes_stem(&g, 8), "resnet's stem at batch 8: not the stem");
    CHECK(st_conv_path_is_direct(&g, 8), "resnet's stem at batch 8: the backward pass is no longer direct");
    CHECK(st_conv_work_size(&g, 8) == st_direct_work_size(&g, 8), "resnet's stem at batch 8: work size changed");
    if (geom(&g, 3, 64, 7, 7, 2, 2, 3, 3, 60, 64)) input_grad_case(&g, 8), dispatch_case(&g, 8);
    CHECK(geom(&g, 3, 64, 3, 3, 1, 1, 1, 1, 32, 32) && takes_stem(&g, 8), "3 -> 64 on 32x32: not the stem");
    /* MNIST-1D's first convolution (zoo.c: 1 -> 15 channels, 3 taps, stride 2) */
    CHECK(st_conv_geom_init(&g, 1, 15, 1, k1, s2, d1, ST_PAD_VALID, p0, 1, 40) == ST_OK && !takes_stem(&g, 100),
          "mnist1d-cnn's first layer: the stem");
    CHECK(st_conv_geom_init(&g, 1, 64, 1, k1, s2, d1, ST_PAD_VALID, p0, 1, 1024) == ST_OK && !takes_stem(&g, 1),
          "a conv1d: the stem");
    CHECK(geom(&g, 1, 6, 5, 5, 1, 1, 0, 0, 28, 28) && !takes_stem(&g, 64), "lenet's 1 -> 6: the stem");
    CHECK(geom(&g, 5, 64, 7, 7, 2, 2, 3, 3, 64, 64) && !st_stem_possible(&g), "5 input channels: possible");
    CHECK(geom(&g, 3, 64, 7, 7, 3, 3, 3, 3, 64, 64) && !st_stem_possible(&g), "stride 3: possible");
    int k3[2] = {3, 3}, s1[2] = {1, 1}, d2[2] = {2, 2}, p1[2] = {1, 1};
    CHECK(st_conv_geom_init(&g, 4, 64, 2, k3, s1, d1, ST_PAD_EXPLICIT, p1, 32, 32) == ST_OK && !st_stem_possible(&g),
          "groups 2: possible");
    CHECK(st_conv_geom_init(&g, 3, 64, 1, k3, s1, d2, ST_PAD_EXPLICIT, p1, 32, 32) == ST_OK && !st_stem_possible(&g),
          "dilation 2: possible");
    CHECK(geom(&g, 3, 64, 3, 3, 1, 1, 1, 1, 32, 20000) && !st_stem_possible(&g), "rows of 20000: possible");
}

int main(void) {
    st_set_threads(1);
    st_stem_wino_enable(0); /* the direct stem (its Winograd rows: test_stem_wino.c) */
    random_cases(300);
    chosen_cases();
    epilogue_cases();
    thread_cases();
    rule_cases();
    printf("stem: worst relative error %.2g\n", worst);
    st_set_threads(0);
    st_stem_wino_enable(1);
    return test_done("test_stem");
}
