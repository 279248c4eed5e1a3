/* test_winograd.c - the Winograd F(4x4, 3x3) convolution (src/conv_winograd.c) against the
 * plain definitions in double precision (st_conv_*_ref_f64).
 *
 * 1. 300 random geometries: batch 1-5, 1-70 input and output channels, planes of 1-19
 *    (most not a multiple of the 4x4 tile) in each direction, padding 0, 1 or 2 on
 *    each axis, 'same' and 'valid', bias on and off. Each goes through st_conv_forward
 *    and st_conv_backward with the Winograd path forced: the output, the input
 *    gradient, the weight gradient and the bias gradient, accumulated into non-zero
 *    gradients, then again with din = db = NULL; the workspace starts as NaN and is not
 *    64-byte aligned.
 * 2. Shapes that take each order of work of conv_winograd.c (the convolutions: "fused"
 *    and "blocked"; the weight gradient: "fused", "parts" and, forced, shared blocks)
 *    with up to 256 channels, and ResNet's layer shapes at batch 2; all of them again
 *    with the blocked orders forced.
 * 3. Thread-count independence: 1, 2 and 3 threads give bit-identical results, in every
 *    order of work.
 * 4. The path rule of conv.c: Winograd for a ResNet layer, not for a 3-channel stem.
 * 5. conv.c's 1x1 shortcut (stride 1, no padding: no im2col, the GEMMs read and write
 *    the planes), on im2col + GEMM forced, groups 1 and 2, the same checks.
 * 6. Prepared weights (st_conv_prepare, st_conv_forward_prep: what st_net_run uses): in
 *    every case above, the Winograd forward pass from U made beforehand equals the plain
 *    one bit for bit; and on 200 random geometries of im2col + GEMM (kernels 1 to 7,
 *    strides 1 to 3, dilation 1 or 2, padding, groups 1 to 3, batch 1 to 4, odd
 *    sizes), the forward pass from packed weights in the usual and the transposed order
 *    against the reference, with 1 and 2 threads alike, and prepared copies that do not
 *    fit (made for another path) ignored.
 *
 * Tolerance: |ours - reference| <= TOL * (1 + max |reference|), TOL = 5e-5. The measured
 * worst case over the shapes below is printed: 1.2e-5 for the forward pass, 1.1e-5 for
 * the input and the weight gradients (256 channels), against about 2e-7 to 5e-7 for
 * im2col + GEMM on such shapes. F(4x4, 3x3) is that much less
 * accurate than the plain sums because its transforms multiply by up to 5 and 8 and the
 * products' rounding errors come back amplified; the error grows with the square root
 * of the channel count.
 */
#include "internal.h"
#include "kernels.h"
#include "test.h"
#define TEST_SEED 0x3c6ef372fe94f82bULL
#include "rand.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 5e-5

/* ---------------------------------------------------------------- helpers */
static double *alloc_d(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
static double *to_d(const float *a, size_t n) {
    double *p = alloc_d(n);
    for (size_t i = 0; i < n; i++) p[i] = a[i];
    return p;
}
/* max |got - ref| / (1 + max |ref|) */
static double rel_err(const float *got, const double *ref, size_t n) {
    double e = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > e || d != d) e = d != d ? INFINITY : d;
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return e / (1 + m);
}

/* the worst errors seen, printed at the end */
static double worst_y, worst_dx, worst_dw, worst_db;
static void note(double *worst, double e) { if (e > *worst) *worst = e; }

typedef struct {
    st_conv_geom g;
    int n, bias;
    int path; /* for st_conv_force_path: 2 (Winograd), or 0 (im2col + GEMM) */
    char desc[160];
} wcase;

static int make_case(wcase *c, int n, int cin, int cout, int pad_mode, const int pad[2], int ih, int iw, int bias) {
    int k[2] = {3, 3}, s[2] = {1, 1}, d[2] = {1, 1};
    if (st_conv_geom_init(&c->g, cin, cout, 1, k, s, d, pad_mode, pad, ih, iw) != ST_OK) return 0;
    c->n = n;
    c->bias = bias;
    c->path = 2;
    const char *pm = pad_mode == ST_PAD_SAME ? "same" : pad_mode == ST_PAD_VALID ? "valid" : "explicit";
    snprintf(c->desc, sizeof c->desc, "n=%d cin=%d cout=%d in=%dx%d pad=%s(%d,%d) bias=%d", n, cin, cout, ih, iw, pm,
             c->g.pt, c->g.pl, bias);
    return 1;
}

/* ---------------------------------------------------------------- against the reference */
static void run_case(const wcase *c) {
    const st_conv_geom *g = &c->g;
    int n = c->n;
    size_t nx = (size_t)n * g->cin * g->ih * g->iw, ny = (size_t)n * g->cout * g->oh * g->ow;
    size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw;
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g->cout), *gy = rand_f(ny);
    float *dx0 = rand_f(nx), *dw0 = rand_f(nw), *db0 = rand_f(g->cout);
    /* double references, the gradients accumulated onto the same starting values */
    double *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, g->cout), *gyd = to_d(gy, ny);
    double *yr = alloc_d(ny), *dxr = to_d(dx0, nx), *dwr = to_d(dw0, nw), *dbr = to_d(db0, g->cout);
    double *dwr_only = to_d(dw0, nw), *zx = alloc_d(nx);
    st_conv_forward_ref_f64(yr, xd, wd, c->bias ? bd : NULL, n, g);
    st_conv_backward_ref_f64(dxr, dwr, c->bias ? dbr : NULL, gyd, xd, wd, n, g);
    st_conv_backward_ref_f64(zx, dwr_only, NULL, gyd, xd, wd, n, g);

    st_conv_force_path(c->path);
    size_t wsz = st_conv_work_size(g, n);
    if (c->path == 2)
        CHECK(wsz >= st_winograd_work_size(g, n), "%s: work size %zu < Winograd's %zu", c->desc, wsz,
              st_winograd_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1; /* not 64-byte aligned */
    float *y = alloc_f(ny), *dx = copy_f(dx0, nx), *dw = copy_f(dw0, nw), *db = copy_f(db0, g->cout);
    double e;

    for (size_t i = 0; i < wsz; i++) work[i] = NAN;
    for (size_t i = 0; i < ny; i++) y[i] = NAN;
    st_conv_forward(y, x, w, c->bias ? b : NULL, n, g, work);
    e = rel_err(y, yr, ny);
    if (c->path == 2) note(&worst_y, e);
    CHECK(e <= TOL, "%s: forward: relative error %.3g > %.3g", c->desc, e, TOL);
    if (c->path == 2) { /* 6: from U made beforehand, the same numbers */
        float *prep = st_aligned_alloc(sizeof(float) * st_conv_prep_size(g, n)), *y2 = alloc_f(ny);
        st_conv_prepare(prep, w, g, n);
        for (size_t i = 0; i < wsz; i++) work[i] = NAN;
        st_conv_forward_prep(y2, x, w, c->bias ? b : NULL, n, g, work, prep, NULL);
        CHECK(!memcmp(y, y2, ny * sizeof(float)), "%s: forward with prepared kernels differs", c->desc);
        st_aligned_free(prep);
        free(y2);
    }

    for (size_t i = 0; i < wsz; i++) work[i] = NAN;
    st_conv_backward(dx, dw, c->bias ? db : NULL, gy, x, w, n, g, work);
    e = rel_err(dx, dxr, nx);
    if (c->path == 2) note(&worst_dx, e);
    CHECK(e <= TOL, "%s: input gradient: relative error %.3g > %.3g", c->desc, e, TOL);
    e = rel_err(dw, dwr, nw);
    if (c->path == 2) note(&worst_dw, e);
    CHECK(e <= TOL, "%s: weight gradient: relative error %.3g > %.3g", c->desc, e, TOL);
    if (c->bias) {
        e = rel_err(db, dbr, g->cout);
        if (c->path == 2) note(&worst_db, e);
        CHECK(e <= TOL, "%s: bias gradient: relative error %.3g > %.3g", c->desc, e, TOL);
    }

    /* the weight gradient alone; din and db stay untouched */
    memcpy(dw, dw0, nw * sizeof(float));
    for (size_t i = 0; i < wsz; i++) work[i] = NAN;
    st_conv_backward(NULL, dw, NULL, gy, x, w, n, g, work);
    e = rel_err(dw, dwr_only, nw);
    CHECK(e <= TOL, "%s: weight gradient with din = db = NULL: relative error %.3g > %.3g", c->desc, e, TOL);

    st_conv_force_path(-1);
    free(work_block); free(y); free(dx); free(dw); free(db);
    free(x); free(w); free(b); free(gy); free(dx0); free(dw0); free(db0);
    free(xd); free(wd); free(bd); free(gyd); free(yr); free(dxr); free(dwr); free(dbr); free(dwr_only); free(zx);
}

static void random_cases(int count) {
    int done = 0;
    while (done < count) {
        int n = rint_in(1, 5), cin = rint_in(1, 70), cout = rint_in(1, 70);
        if (rnd64() % 3 == 0) { cin = rint_in(1, 8); } /* few channels too */
        int mode = rint_in(0, 4), pad[2] = {rint_in(0, 2), rint_in(0, 2)};
        mode = mode == 3 ? ST_PAD_SAME : mode == 4 ? ST_PAD_VALID : ST_PAD_EXPLICIT;
        int ih = rint_in(1, 19), iw = rint_in(1, 19);
        /* keep the double-precision reference quick */
        if ((double)n * cin * cout * ih * iw > 4e6) continue;
        wcase c;
        if (!make_case(&c, n, cin, cout, mode, pad, ih, iw, rint_in(0, 1))) continue;
        run_case(&c);
        done++;
    }
    printf("winograd: %d random geometries\n", done);
}

/* Shapes for each order of work (few tiles and many channels: "fused"; many tiles:
 * "blocked"), the input gradient's plan being the transposed one, and ResNet layers. */
static void chosen_cases(void) {
    static const int shapes[][6] = {
        /* n, cin, cout, h, w, pad */
        {1, 256, 256, 4, 4, 1},  {2, 200, 20, 5, 5, 2},  {1, 20, 200, 6, 5, 0},   {3, 128, 96, 8, 8, 1},
        {2, 16, 16, 64, 64, 1},  {5, 64, 64, 19, 17, 1}, {1, 3, 130, 9, 9, 1},    {2, 130, 3, 9, 9, 1},
        {2, 64, 64, 32, 32, 1},  {2, 128, 128, 16, 16, 1}, {2, 256, 256, 8, 8, 1}, {1, 64, 64, 56, 56, 1},
    };
    for (int forced = 0; forced < 2; forced++) {
        st_winograd_force_blocked(forced);
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const int *s = shapes[i];
            int pad[2] = {s[5], s[5]};
            wcase c;
            if (forced && (double)s[0] * s[1] * s[2] * s[3] * s[4] > 5e6) continue; /* the largest once */
            if (!make_case(&c, s[0], s[1], s[2], ST_PAD_EXPLICIT, pad, s[3], s[4], (int)(i & 1))) continue;
            run_case(&c);
        }
    }
    st_winograd_force_blocked(0);
}

/* ---------------------------------------------------------------- threads */
static void thread_cases(void) {
    static const int shapes[][6] = {
        {3, 24, 40, 13, 15, 1}, {2, 64, 64, 32, 32, 1}, {2, 256, 256, 4, 4, 1}, {1, 40, 300, 7, 9, 2},
    };
    for (size_t i = 0; i < 2 * sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i % (sizeof shapes / sizeof shapes[0])];
        int pad[2] = {s[5], s[5]};
        wcase c;
        st_winograd_force_blocked(i >= sizeof shapes / sizeof shapes[0]);
        if (!make_case(&c, s[0], s[1], s[2], ST_PAD_EXPLICIT, pad, s[3], s[4], 1)) continue;
        const st_conv_geom *g = &c.g;
        size_t nx = (size_t)c.n * g->cin * g->ih * g->iw, ny = (size_t)c.n * g->cout * g->oh * g->ow;
        size_t nw = (size_t)g->cout * g->cin * 9;
        float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g->cout), *gy = rand_f(ny);
        st_conv_force_path(2);
        size_t wsz = st_conv_work_size(g, c.n);
        float *work = alloc_f(wsz), *y[3], *dx[3], *dw[3], *db[3];
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            y[t] = alloc_f(ny);
            dx[t] = calloc(nx, sizeof(float)); dw[t] = calloc(nw, sizeof(float)); db[t] = calloc(g->cout, sizeof(float));
            st_conv_forward(y[t], x, w, b, c.n, g, work);
            st_conv_backward(dx[t], dw[t], db[t], gy, x, w, c.n, g, work);
        }
        /* from U made beforehand (st_net_run's inference), whose units depend on the threads */
        float *prep = st_aligned_alloc(sizeof(float) * (st_conv_prep_size(g, c.n) + 1)), *yp = alloc_f(ny);
        st_conv_prepare(prep, w, g, c.n);
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            st_conv_forward_prep(yp, x, w, b, c.n, g, work, prep, NULL);
            CHECK(!memcmp(y[0], yp, ny * sizeof(float)), "%s: prepared kernels on %d threads differ", c.desc, t + 1);
        }
        st_aligned_free(prep);
        free(yp);
        st_set_threads(1);
        for (int t = 1; t < 3; t++) {
            int same = !memcmp(y[0], y[t], ny * sizeof(float)) && !memcmp(dx[0], dx[t], nx * sizeof(float)) &&
                       !memcmp(dw[0], dw[t], nw * sizeof(float)) && !memcmp(db[0], db[t], g->cout * sizeof(float));
            CHECK(same, "%s: %d threads differ from 1 thread", c.desc, t + 1);
        }
        for (int t = 0; t < 3; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
        st_conv_force_path(-1);
        st_winograd_force_blocked(0);
        free(work); free(x); free(w); free(b); free(gy);
    }
}

/* ---------------------------------------------------------------- the path rule */
static void rule_cases(void) {
    wcase c;
    int pad[2] = {1, 1};
    if (make_case(&c, 32, 64, 64, ST_PAD_EXPLICIT, pad, 32, 32, 0))
        CHECK(st_conv_work_size(&c.g, c.n) == st_winograd_work_size(&c.g, c.n), "%s: not Winograd by default", c.desc);
    if (make_case(&c, 32, 3, 64, ST_PAD_EXPLICIT, pad, 32, 32, 0))
        CHECK(st_conv_work_size(&c.g, c.n) != st_winograd_work_size(&c.g, c.n), "%s: Winograd by default", c.desc);
    /* not possible at all: stride 2, dilation 2, groups 2, padding 3 */
    int k[2] = {3, 3}, s1[2] = {1, 1}, s2[2] = {2, 2}, p3[2] = {3, 3};
    st_conv_geom g;
    CHECK(st_conv_geom_init(&g, 8, 8, 1, k, s2, s1, ST_PAD_EXPLICIT, pad, 9, 9) == ST_OK && !st_winograd_possible(&g),
          "stride 2 is not for Winograd");
    CHECK(st_conv_geom_init(&g, 8, 8, 1, k, s1, s2, ST_PAD_EXPLICIT, pad, 9, 9) == ST_OK && !st_winograd_possible(&g),
          "dilation 2 is not for Winograd");
    CHECK(st_conv_geom_init(&g, 8, 8, 2, k, s1, s1, ST_PAD_EXPLICIT, pad, 9, 9) == ST_OK && !st_winograd_possible(&g),
          "groups 2 is not for Winograd");
    CHECK(st_conv_geom_init(&g, 8, 8, 1, k, s1, s1, ST_PAD_EXPLICIT, p3, 9, 9) == ST_OK && !st_winograd_possible(&g),
          "padding 3 is not for Winograd");
}

/* ---------------------------------------------------------------- conv.c's 1x1 shortcut */
static void pointwise_cases(void) {
    static const int shapes[][5] = {
        /* n, cin, cout, groups, h*w */
        {1, 16, 24, 1, 16 * 16}, {3, 7, 5, 1, 17 * 19}, {2, 12, 18, 2, 16 * 20}, {1, 40, 8, 1, 300}, {3, 6, 6, 2, 8 * 8},
    };
    int k[2] = {1, 1}, s[2] = {1, 1}, d[2] = {1, 1}, pad[2] = {0, 0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *q = shapes[i];
        int h = q[4] % 16 == 0 ? 16 : 1, w = q[4] / h;
        wcase c;
        if (st_conv_geom_init(&c.g, q[1], q[2], q[3], k, s, d, ST_PAD_EXPLICIT, pad, h, w) != ST_OK) continue;
        c.n = q[0];
        c.bias = (int)(i & 1);
        c.path = 0;
        snprintf(c.desc, sizeof c.desc, "1x1 n=%d cin=%d cout=%d groups=%d in=%dx%d", q[0], q[1], q[2], q[3], h, w);
        run_case(&c);
    }
}

/* ---------------------------------------------------------------- prepared weights, im2col + GEMM */
static void prepared_cases(int count) {
    int done = 0;
    while (done < count) {
        int n = rint_in(1, 4), groups = rint_in(1, 3), cin = groups * rint_in(1, 24), cout = groups * rint_in(1, 40);
        int k[2] = {rint_in(1, 7), rint_in(1, 7)}, st[2] = {rint_in(1, 3), rint_in(1, 3)};
        int d[2] = {rint_in(1, 2), 1}, pad[2] = {rint_in(0, 3), rint_in(0, 3)};
        int ih = rint_in(1, 23), iw = rint_in(1, 23);
        if (done % 4 == 0) k[0] = k[1] = 1, st[0] = st[1] = 1 + done % 8 / 4, pad[0] = pad[1] = 0; /* 1x1 */
        if (done < 2) { /* ResNet's last stage at batch 1: 7x7 planes, many weights (transposed by default) */
            n = 1, groups = 1, cin = 256, cout = done ? 512 : 256, ih = iw = 7, d[0] = 1;
            k[0] = k[1] = done ? 1 : 3, st[0] = st[1] = 1, pad[0] = pad[1] = done ? 0 : 1;
        }
        st_conv_geom g;
        if (st_conv_geom_init(&g, cin, cout, groups, k, st, d, ST_PAD_EXPLICIT, pad, ih, iw) != ST_OK) continue;
        size_t nx = (size_t)n * cin * ih * iw, ny = (size_t)n * cout * g.oh * g.ow, nw = (size_t)cout * (cin / groups) * k[0] * k[1];
        if ((double)ny * nw / cout > 3e6 && done >= 2) continue; /* a quick reference */
        float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(cout), *y = alloc_f(ny), *y2 = alloc_f(ny);
        double *yr = alloc_d(ny), *xd = to_d(x, nx), *wd = to_d(w, nw), *bd = to_d(b, cout);
        int bias = rint_in(0, 1);
        st_conv_forward_ref_f64(yr, xd, wd, bias ? bd : NULL, n, &g);
        st_conv_force_path(0);
        size_t wsz = st_conv_work_size(&g, n);
        float *work = alloc_f(wsz + 1);
        for (int order = -1; order <= 1; order++) {
            st_conv_force_gemm_order(order);
            size_t psz = st_conv_prep_size(&g, n);
            float *prep = psz ? st_aligned_alloc(sizeof(float) * psz) : NULL;
            if (prep) st_conv_prepare(prep, w, &g, n);
            for (int threads = 1; threads <= 2; threads++) {
                st_set_threads(threads);
                for (size_t i = 0; i < ny; i++) y2[i] = NAN;
                st_conv_forward_prep(y2, x, w, bias ? b : NULL, n, &g, work, prep, NULL);
                if (threads == 1) memcpy(y, y2, ny * sizeof(float));
                else CHECK(!memcmp(y, y2, ny * sizeof(float)), "prepared GEMM order %d, %d threads differ from 1", order, threads);
            }
            st_set_threads(1);
            double e = rel_err(y, yr, ny);
            CHECK(e <= 1e-5, "prepared GEMM (order %d) n=%d %d->%d g%d k%dx%d s%dx%d d%d p%dx%d in %dx%d: relative error %.3g",
                  order, n, cin, cout, groups, k[0], k[1], st[0], st[1], d[0], pad[0], pad[1], ih, iw, e);
            /* a prepared copy for the GEMM path is ignored by the direct path (when it can run) */
            if (prep && order == 1) {
                st_conv_force_path(1);
                float *wk = alloc_f(st_conv_work_size(&g, n) + 1);
                st_conv_forward_prep(y2, x, w, bias ? b : NULL, n, &g, wk, prep, NULL);
                e = rel_err(y2, yr, ny);
                CHECK(e <= 1e-5, "a prepared copy for another path: relative error %.3g", e);
                free(wk);
                st_conv_force_path(0);
            }
            st_aligned_free(prep);
        }
        st_conv_force_gemm_order(-1);
        st_conv_force_path(-1);
        free(x); free(w); free(b); free(y); free(y2); free(yr); free(xd); free(wd); free(bd); free(work);
        done++;
    }
    printf("winograd: %d random geometries with prepared GEMM weights\n", done);
}

int main(void) {
    st_set_threads(1);
    prepared_cases(200);
    random_cases(300);
    chosen_cases();
    thread_cases();
    rule_cases();
    pointwise_cases();
    printf("winograd: worst relative errors: forward %.2g, input gradient %.2g, weight gradient %.2g, bias %.2g\n",
           worst_y, worst_dx, worst_dw, worst_db);
    st_set_threads(0);
    return test_done("test_winograd");
}
