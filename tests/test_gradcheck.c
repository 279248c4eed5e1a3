/* test_gradcheck.c - analytic gradients against finite differences, and the fast float
 * kernels against the plain ones.
 *
 * 1. Gradient checks in double precision on the _f64 reference kernels: for a sweep of
 *    random small conv geometries (1D and 2D; stride 1-3, dilation 1-3, padding 0/1/2,
 *    'same', 'valid'; groups 1, 2, depthwise and depthwise x2; kernel 1-5; bias on/off),
 *    for linear, every activation, cross-entropy and MSE: loss = sum(y * r) for a fixed
 *    random r (the losses themselves for CE and MSE), central differences with
 *    h = 2^-20 (~1e-6) on every input, weight and bias element (a random subset of 50
 *    where there are more), relative error |a - n| / max(|a|, |n|, 1e-3) <= 1e-6.
 *    The conv and linear data are multiples of 2^-10, so every product and sum in the
 *    (bilinear) forward pass is exact in double and the central difference has neither
 *    rounding nor truncation error: a correct kernel gives the exact gradient, and any
 *    mistake shows up far above the tolerance.
 * 2. Fast path vs reference: st_conv_forward/backward (im2col + GEMM, threads) against
 *    st_conv_forward_ref/backward_ref on 50 random shapes, larger than the fixtures;
 *    st_sgemm against st_sgemm_ref; tolerance 1e-5 * (1 + max |reference|).
 * Everything is seeded: the same run on every machine.
 */
#include "internal.h"
#include "test.h"
#define TEST_SEED 0x5eed1234abcdULL
#include "rand.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define H 0x1p-20     /* finite-difference step, about 1e-6 */
#ifndef RTOL
#define RTOL 1e-6 /* -DRTOL=... to see the margins */
#endif
#define FLOOR 1e-3
#define SUBSET 50

/* ---------------------------------------------------------------- random numbers
 * A private generator (splitmix64), so that the test does not depend on the library's. */
/* uniform on the grid k / 1024 in [-1, 1], never 0 */
static double rgrid(void) {
    int k = rint_in(-1024, 1023);
    return (k >= 0 ? k + 1 : k) / 1024.0;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Indices to check: all of 0..n-1, or a random subset of SUBSET of them. */
static int pick(size_t n, size_t *idx) {
    if (n <= SUBSET) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        return (int)n;
    }
    for (int i = 0; i < SUBSET; i++) idx[i] = (size_t)(rnd64() % n);
    return SUBSET;
}

/* Relative error of one analytic/numeric pair. */
static double relerr(double a, double num) {
    double den = fmax(fmax(fabs(a), fabs(num)), FLOOR);
    return fabs(a - num) / den;
}

/* ---------------------------------------------------------------- conv gradient check */
typedef struct {
    int dim, n, cin, cout, groups, bias, k[2], s[2], d[2], mode, pad[2], ih, iw;
} conv_case;

static const char *mode_name(int m) { return m == ST_PAD_SAME ? "same" : m == ST_PAD_VALID ? "valid" : "explicit"; }

static void conv_desc(char *buf, size_t len, int i, const conv_case *c) {
    snprintf(buf, len, "conv %d (%dD n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%s %dx%d bias=%d)",
             i, c->dim, c->n, c->cin, c->cout, c->groups, c->ih, c->iw, c->k[0], c->k[1], c->s[0], c->s[1],
             c->d[0], c->d[1], mode_name(c->mode), c->pad[0], c->pad[1], c->bias);
}

/* PyTorch's validity rule, written independently of st_conv_geom_init. */
static int conv_valid(const conv_case *c) {
    if (c->mode == ST_PAD_SAME) return c->s[0] == 1 && c->s[1] == 1;
    int in[2] = {c->ih, c->iw};
    for (int a = 0; a < 2; a++) {
        int p = c->mode == ST_PAD_EXPLICIT ? c->pad[a] : 0;
        if (in[a] + 2 * p - c->d[a] * (c->k[a] - 1) - 1 < 0) return 0;
    }
    return 1;
}

/* A random geometry; case i cycles stride, dilation, padding mode and groups mode so
 * that every value meets every other in the sweep. */
static conv_case draw_conv(int i) {
    conv_case c;
    for (;;) {
        memset(&c, 0, sizeof c);
        c.dim = 1 + i % 2;
        int sv = 1 + i % 3, dv = 1 + (i / 3) % 3, pm = (i / 2) % 5, gm = (i / 5) % 4;
        c.n = rint_in(1, 2);
        switch (gm) {
        case 0: c.groups = 1; c.cin = rint_in(1, 3); c.cout = rint_in(1, 3); break;
        case 1: c.groups = 2; c.cin = 2 * rint_in(1, 2); c.cout = 2 * rint_in(1, 2); break;
        case 2: c.cin = c.cout = c.groups = rint_in(2, 3); break;       /* depthwise */
        default: c.cin = c.groups = rint_in(1, 3); c.cout = 2 * c.cin;   /* depthwise x2 */
        }
        c.bias = rint_in(0, 1);
        int a0 = c.dim == 1 ? 1 : 0;
        for (int a = 0; a < 2; a++) {
            c.k[a] = c.s[a] = c.d[a] = 1;
            if (a < a0) continue;
            c.k[a] = rint_in(1, 5);
            c.s[a] = a == 1 ? sv : rint_in(1, 3);
            c.d[a] = a == 1 ? dv : rint_in(1, 3);
        }
        c.mode = pm < 3 ? ST_PAD_EXPLICIT : pm == 3 ? ST_PAD_SAME : ST_PAD_VALID;
        if (c.mode == ST_PAD_EXPLICIT) {
            c.pad[1] = pm;
            c.pad[0] = c.dim == 2 ? rint_in(0, 2) : 0;
        }
        if (c.mode == ST_PAD_SAME) c.s[0] = c.s[1] = 1;
        c.ih = c.dim == 2 ? rint_in(3, 7) : 1;
        c.iw = c.dim == 2 ? rint_in(3, 8) : rint_in(4, 13);
        if (conv_valid(&c)) return c;
    }
}

/* sum_j r_j (y+_j - y-_j) / 2h, perturbing p[i] */
static double conv_numeric(double *p, size_t i, double *yp, double *ym, const double *r, size_t ny,
                           const double *x, const double *w, const double *b, int n, const st_conv_geom *g) {
    double save = p[i];
    p[i] = save + H;
    st_conv_forward_ref_f64(yp, x, w, b, n, g);
    p[i] = save - H;
    st_conv_forward_ref_f64(ym, x, w, b, n, g);
    p[i] = save;
    double acc = 0;
    for (size_t j = 0; j < ny; j++) acc += r[j] * (yp[j] - ym[j]);
    return acc / (2 * H);
}

static void conv_gradcheck(void) {
    const int ncases = 120;
    int seen_k[6] = {0}, seen_s[4] = {0}, seen_d[4] = {0}, seen_mode[3] = {0};
    for (int ci = 0; ci < ncases; ci++) {
        conv_case c = draw_conv(ci);
        char desc[256];
        conv_desc(desc, sizeof desc, ci, &c);
        st_conv_geom g;
        st_status st = st_conv_geom_init(&g, c.cin, c.cout, c.groups, c.k, c.s, c.d, c.mode, c.pad, c.ih, c.iw);
        CHECK(st == ST_OK, "%s: st_conv_geom_init: %s", desc, st_errmsg());
        if (st != ST_OK) continue;
        seen_k[c.k[1]]++; seen_s[c.s[1]]++; seen_d[c.d[1]]++; seen_mode[c.mode]++;
        size_t nx = (size_t)c.n * c.cin * c.ih * c.iw, nw = (size_t)c.cout * (c.cin / c.groups) * c.k[0] * c.k[1];
        size_t ny = (size_t)c.n * c.cout * g.oh * g.ow;
        double *x = xmalloc(nx * sizeof(double)), *w = xmalloc(nw * sizeof(double));
        double *b = c.bias ? xmalloc((size_t)c.cout * sizeof(double)) : NULL;
        double *r = xmalloc(ny * sizeof(double)), *yp = xmalloc(ny * sizeof(double)), *ym = xmalloc(ny * sizeof(double));
        for (size_t i = 0; i < nx; i++) x[i] = rgrid();
        for (size_t i = 0; i < nw; i++) w[i] = rgrid();
        for (int i = 0; c.bias && i < c.cout; i++) b[i] = rgrid();
        for (size_t i = 0; i < ny; i++) r[i] = rgrid();
        double *dx = xcalloc(nx, sizeof(double)), *dw = xcalloc(nw, sizeof(double));
        double *db = xcalloc((size_t)c.cout, sizeof(double));
        st_conv_backward_ref_f64(dx, dw, c.bias ? db : NULL, r, x, w, c.n, &g);

        struct { const char *name; double *p, *grad; size_t n; } T[3] = {
            {"input", x, dx, nx}, {"weight", w, dw, nw}, {"bias", b, db, (size_t)c.cout}};
        size_t *idx = xmalloc((nx > nw ? nx : nw) * sizeof(size_t) + SUBSET * sizeof(size_t));
        for (int t = 0; t < (c.bias ? 3 : 2); t++) {
            int m = pick(T[t].n, idx);
            double worst = 0, wa = 0, wn = 0;
            size_t wi = 0;
            for (int q = 0; q < m; q++) {
                double num = conv_numeric(T[t].p, idx[q], yp, ym, r, ny, x, w, b, c.n, &g);
                double e = relerr(T[t].grad[idx[q]], num);
                if (e > worst || e != e) { worst = e != e ? INFINITY : e; wa = T[t].grad[idx[q]]; wn = num; wi = idx[q]; }
            }
            CHECK(worst <= RTOL, "%s: d/d%s[%zu]: analytic %.12g, numeric %.12g (rel. error %.3g)",
                  desc, T[t].name, wi, wa, wn, worst);
        }
        free(idx); free(x); free(w); free(b); free(r); free(yp); free(ym); free(dx); free(dw); free(db);
    }
    /* the sweep must really cover what it claims */
    int covered = 1;
    for (int v = 1; v <= 5; v++) covered &= seen_k[v] >= 3;
    for (int v = 1; v <= 3; v++) covered &= seen_s[v] >= 3 && seen_d[v] >= 3;
    for (int v = 0; v < 3; v++) covered &= seen_mode[v] >= 3;
    CHECK(covered, "conv gradient-check sweep misses a kernel/stride/dilation/padding value");
    printf("conv gradient checks: %d geometries\n", ncases);
}

/* ---------------------------------------------------------------- linear */
static void linear_gradcheck(void) {
    const int sizes[][4] = {{1, 1, 1, 1}, {3, 5, 4, 1}, {2, 7, 3, 0}, {4, 16, 9, 1}, {1, 30, 2, 0}};
    for (size_t ci = 0; ci < sizeof sizes / sizeof sizes[0]; ci++) {
        int n = sizes[ci][0], in = sizes[ci][1], out = sizes[ci][2], bias = sizes[ci][3];
        char desc[128];
        snprintf(desc, sizeof desc, "linear (n=%d in=%d out=%d bias=%d)", n, in, out, bias);
        size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
        double *x = xmalloc(nx * sizeof(double)), *w = xmalloc(nw * sizeof(double));
        double *b = bias ? xmalloc((size_t)out * sizeof(double)) : NULL;
        double *r = xmalloc(ny * sizeof(double)), *yp = xmalloc(ny * sizeof(double)), *ym = xmalloc(ny * sizeof(double));
        for (size_t i = 0; i < nx; i++) x[i] = rgrid();
        for (size_t i = 0; i < nw; i++) w[i] = rgrid();
        for (int i = 0; bias && i < out; i++) b[i] = rgrid();
        for (size_t i = 0; i < ny; i++) r[i] = rgrid();
        double *dx = xcalloc(nx, sizeof(double)), *dw = xcalloc(nw, sizeof(double)), *db = xcalloc((size_t)out, sizeof(double));
        st_linear_backward_f64(dx, dw, bias ? db : NULL, r, x, w, n, in, out);
        struct { const char *name; double *p, *grad; size_t n; } T[3] = {
            {"input", x, dx, nx}, {"weight", w, dw, nw}, {"bias", b, db, (size_t)out}};
        size_t idx[SUBSET > 512 ? SUBSET : 512];
        for (int t = 0; t < (bias ? 3 : 2); t++) {
            int m = pick(T[t].n, idx);
            double worst = 0, wa = 0, wn = 0;
            for (int q = 0; q < m; q++) {
                double *p = T[t].p, save = p[idx[q]];
                p[idx[q]] = save + H;
                st_linear_forward_f64(yp, x, w, b, n, in, out);
                p[idx[q]] = save - H;
                st_linear_forward_f64(ym, x, w, b, n, in, out);
                p[idx[q]] = save;
                double acc = 0;
                for (size_t j = 0; j < ny; j++) acc += r[j] * (yp[j] - ym[j]);
                double num = acc / (2 * H), e = relerr(T[t].grad[idx[q]], num);
                if (e > worst || e != e) { worst = e != e ? INFINITY : e; wa = T[t].grad[idx[q]]; wn = num; }
            }
            CHECK(worst <= RTOL, "%s: d/d%s: analytic %.12g, numeric %.12g (rel. error %.3g)",
                  desc, T[t].name, wa, wn, worst);
        }
        free(x); free(w); free(b); free(r); free(yp); free(ym); free(dx); free(dw); free(db);
    }
}

/* ---------------------------------------------------------------- activations */
static void act_gradcheck(void) {
    struct { st_act a; double slope; const char *name; } acts[] = {
        {ST_ACT_RELU, 0, "relu"}, {ST_ACT_LEAKY_RELU, 0.01, "leaky_relu(0.01)"},
        {ST_ACT_LEAKY_RELU, 0.2, "leaky_relu(0.2)"}, {ST_ACT_SIGMOID, 0, "sigmoid"}, {ST_ACT_TANH, 0, "tanh"}};
    enum { N = 64 };
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
        double x[N], r[N], y[N], dx[N] = {0}, yp[1], ym[1];
        for (int i = 0; i < N; i++) {
            if (acts[ai].a == ST_ACT_RELU || acts[ai].a == ST_ACT_LEAKY_RELU)
                x[i] = (rnd64() & 1 ? 1 : -1) * runif_in(0.1, 3.0); /* away from the kink */
            else
                x[i] = runif_in(-5, 5);
            r[i] = runif_in(-1, 1);
        }
        st_act_forward_f64(acts[ai].a, acts[ai].slope, y, x, N);
        st_act_backward_f64(acts[ai].a, acts[ai].slope, dx, r, x, y, N);
        double worst = 0, wa = 0, wn = 0, wx = 0;
        for (int i = 0; i < N; i++) {
            double xp = x[i] + H, xm = x[i] - H;
            st_act_forward_f64(acts[ai].a, acts[ai].slope, yp, &xp, 1);
            st_act_forward_f64(acts[ai].a, acts[ai].slope, ym, &xm, 1);
            double num = r[i] * (yp[0] - ym[0]) / (2 * H), e = relerr(dx[i], num);
            if (e > worst || e != e) { worst = e != e ? INFINITY : e; wa = dx[i]; wn = num; wx = x[i]; }
        }
        CHECK(worst <= RTOL, "%s: at x=%.6g analytic %.12g, numeric %.12g (rel. error %.3g)",
              acts[ai].name, wx, wa, wn, worst);
    }
}

/* ---------------------------------------------------------------- losses */
static void loss_gradcheck(void) {
    const int ce_sizes[][2] = {{1, 1}, {1, 2}, {4, 10}, {3, 5}, {8, 3}};
    for (size_t ci = 0; ci < sizeof ce_sizes / sizeof ce_sizes[0]; ci++) {
        int n = ce_sizes[ci][0], c = ce_sizes[ci][1];
        size_t nz = (size_t)n * c;
        double *z = xmalloc(nz * sizeof(double)), *dz = xmalloc(nz * sizeof(double));
        int32_t *lab = xmalloc((size_t)n * sizeof(int32_t));
        for (size_t i = 0; i < nz; i++) z[i] = runif_in(-2, 2);
        for (int i = 0; i < n; i++) lab[i] = rint_in(0, c - 1);
        double L = st_cross_entropy_f64(z, lab, n, c, dz);
        /* The batch loss is the mean of the rows' losses (checked here); the numeric
         * derivative differentiates the perturbed row's loss alone and divides by n, so
         * the rounding of the other rows' terms does not swamp it. */
        double mean = 0;
        for (int i = 0; i < n; i++) mean += st_cross_entropy_f64(z + (size_t)i * c, lab + i, 1, c, NULL);
        mean /= n;
        CHECK(fabs(L - mean) <= 1e-12 * (1 + fabs(mean)),
              "cross-entropy (n=%d c=%d): loss %.15g is not the mean of the rows' losses %.15g", n, c, L, mean);
        double worst = 0, wa = 0, wn = 0;
        for (size_t i = 0; i < nz; i++) {
            double *row = z + (i / c) * c, save = z[i];
            const int32_t *lr = lab + i / c;
            z[i] = save + H;
            double lp = st_cross_entropy_f64(row, lr, 1, c, NULL);
            z[i] = save - H;
            double lm = st_cross_entropy_f64(row, lr, 1, c, NULL);
            z[i] = save;
            double num = (lp - lm) / (2 * H) / n, e = relerr(dz[i], num);
            if (e > worst || e != e) { worst = e != e ? INFINITY : e; wa = dz[i]; wn = num; }
        }
        CHECK(worst <= RTOL, "cross-entropy (n=%d c=%d): analytic %.12g, numeric %.12g (rel. error %.3g)",
              n, c, wa, wn, worst);
        free(z); free(dz); free(lab);
    }
    const size_t mse_sizes[] = {1, 7, 40, 64};
    for (size_t ci = 0; ci < sizeof mse_sizes / sizeof mse_sizes[0]; ci++) {
        size_t n = mse_sizes[ci];
        double *y = xmalloc(n * sizeof(double)), *t = xmalloc(n * sizeof(double)), *dy = xmalloc(n * sizeof(double));
        /* dyadic data, |y - t| <= 1/2: the loss is small and its rounding too */
        for (size_t i = 0; i < n; i++) { y[i] = rgrid() * 2; t[i] = y[i] + rgrid() / 2; }
        st_mse_f64(y, t, n, dy);
        double worst = 0, wa = 0, wn = 0;
        for (size_t i = 0; i < n; i++) {
            double save = y[i];
            y[i] = save + H;
            double lp = st_mse_f64(y, t, n, NULL);
            y[i] = save - H;
            double lm = st_mse_f64(y, t, n, NULL);
            y[i] = save;
            double num = (lp - lm) / (2 * H), e = relerr(dy[i], num);
            if (e > worst || e != e) { worst = e != e ? INFINITY : e; wa = dy[i]; wn = num; }
        }
        CHECK(worst <= RTOL, "mse (%zu elements): analytic %.12g, numeric %.12g (rel. error %.3g)",
              n, wa, wn, worst);
        free(y); free(t); free(dy);
    }
}

/* ---------------------------------------------------------------- fast vs reference */
static void cmpf(const float *got, const float *ref, size_t n, const char *desc, const char *what) {
    double err = test_maxdiff(got, ref, n), tol = 1e-5 * (1 + test_maxabs(ref, n));
    CHECK(err <= tol, "%s: %s: fast vs ref max abs error %.3g > %.3g", desc, what, err, tol);
}

static void fill_nan(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

static void conv_fast_vs_ref(void) {
    const int ncases = 50;
    for (int ci = 0; ci < ncases; ci++) {
        conv_case c;
        for (;;) {
            memset(&c, 0, sizeof c);
            c.dim = 1 + ci % 2;
            c.n = rint_in(1, 5);
            int gm = ci % 4;
            if (gm == 0) { c.groups = 1; c.cin = rint_in(1, 12); c.cout = rint_in(1, 16); }
            else if (gm == 1) { c.groups = rint_in(2, 4); c.cin = c.groups * rint_in(1, 4); c.cout = c.groups * rint_in(1, 4); }
            else if (gm == 2) { c.cin = c.cout = c.groups = rint_in(2, 16); }
            else { c.cin = c.groups = rint_in(1, 8); c.cout = 2 * c.cin; }
            c.bias = rint_in(0, 1);
            for (int a = 0; a < 2; a++) {
                c.k[a] = c.s[a] = c.d[a] = 1;
                if (c.dim == 1 && a == 0) continue;
                c.k[a] = rint_in(1, 7);
                c.s[a] = rint_in(1, 3);
                c.d[a] = rint_in(1, 3);
            }
            int pm = rint_in(0, 4);
            c.mode = pm < 3 ? ST_PAD_EXPLICIT : pm == 3 ? ST_PAD_SAME : ST_PAD_VALID;
            if (c.mode == ST_PAD_EXPLICIT) { c.pad[1] = rint_in(0, 3); c.pad[0] = c.dim == 2 ? rint_in(0, 3) : 0; }
            if (c.mode == ST_PAD_SAME) c.s[0] = c.s[1] = 1;
            c.ih = c.dim == 2 ? rint_in(1, 24) : 1;
            c.iw = c.dim == 2 ? rint_in(1, 28) : rint_in(1, 200);
            if (conv_valid(&c)) break;
        }
        char desc[256];
        conv_desc(desc, sizeof desc, ci, &c);
        st_conv_geom g;
        st_status st = st_conv_geom_init(&g, c.cin, c.cout, c.groups, c.k, c.s, c.d, c.mode, c.pad, c.ih, c.iw);
        CHECK(st == ST_OK, "%s: st_conv_geom_init: %s", desc, st_errmsg());
        if (st != ST_OK) continue;
        size_t nx = (size_t)c.n * c.cin * c.ih * c.iw, nw = (size_t)c.cout * (c.cin / c.groups) * c.k[0] * c.k[1];
        size_t ny = (size_t)c.n * c.cout * g.oh * g.ow, wsz = st_conv_work_size(&g, c.n);
        float *x = xmalloc(nx * sizeof(float)), *w = xmalloc(nw * sizeof(float)), *b = xmalloc((size_t)c.cout * sizeof(float));
        float *gy = xmalloc(ny * sizeof(float)), *y1 = xmalloc(ny * sizeof(float)), *y2 = xmalloc(ny * sizeof(float));
        float *work = xmalloc(wsz * sizeof(float));
        for (size_t i = 0; i < nx; i++) x[i] = (float)runif_in(-1, 1);
        for (size_t i = 0; i < nw; i++) w[i] = (float)runif_in(-1, 1);
        for (int i = 0; i < c.cout; i++) b[i] = (float)runif_in(-1, 1);
        for (size_t i = 0; i < ny; i++) gy[i] = (float)runif_in(-1, 1);
        const float *bb = c.bias ? b : NULL;
        fill_nan(y1, ny); fill_nan(y2, ny); fill_nan(work, wsz);
        st_conv_forward(y1, x, w, bb, c.n, &g, work);
        st_conv_forward_ref(y2, x, w, bb, c.n, &g);
        cmpf(y1, y2, ny, desc, "forward");
        float *dx1 = xcalloc(nx, sizeof(float)), *dx2 = xcalloc(nx, sizeof(float));
        float *dw1 = xcalloc(nw, sizeof(float)), *dw2 = xcalloc(nw, sizeof(float));
        float *db1 = xcalloc((size_t)c.cout, sizeof(float)), *db2 = xcalloc((size_t)c.cout, sizeof(float));
        /* start from non-zero gradients: both must add to them */
        for (size_t i = 0; i < nx; i++) dx1[i] = dx2[i] = 0.5f;
        for (size_t i = 0; i < nw; i++) dw1[i] = dw2[i] = -0.25f;
        for (int i = 0; i < c.cout; i++) db1[i] = db2[i] = 1.0f;
        fill_nan(work, wsz);
        st_conv_backward(dx1, dw1, bb ? db1 : NULL, gy, x, w, c.n, &g, work);
        st_conv_backward_ref(dx2, dw2, bb ? db2 : NULL, gy, x, w, c.n, &g);
        cmpf(dx1, dx2, nx, desc, "backward dx");
        cmpf(dw1, dw2, nw, desc, "backward dw");
        if (bb) cmpf(db1, db2, (size_t)c.cout, desc, "backward db");
        free(x); free(w); free(b); free(gy); free(y1); free(y2); free(work);
        free(dx1); free(dx2); free(dw1); free(dw2); free(db1); free(db2);
    }
    printf("conv fast vs reference: %d shapes\n", ncases);
}

static void gemm_fast_vs_ref(void) {
    const int ncases = 40;
    for (int ci = 0; ci < ncases; ci++) {
        int tA = ci & 1, tB = (ci >> 1) & 1;
        /* small (edge tiles), medium, and large enough to cross the blocking sizes
         * (K > 256, N > 1024, M > 96) */
        int big = ci >= 32;
        int M = rint_in(1, ci < 16 ? 17 : big ? 130 : 150), N = rint_in(ci < 16 ? 1 : 20, ci < 16 ? 19 : big ? 1100 : 300);
        int K = rint_in(1, ci < 16 ? 23 : big ? 600 : 200);
        float beta = (ci % 3 == 0) ? 0.0f : (ci % 3 == 1) ? 1.0f : 0.5f;
        /* padded leading dimensions */
        int lda = (tA ? M : K) + rint_in(0, 3), ldb = (tB ? K : N) + rint_in(0, 3), ldc = N + rint_in(0, 3);
        size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
        float *A = xmalloc(na * sizeof(float)), *B = xmalloc(nb * sizeof(float));
        float *C0 = xmalloc(nc * sizeof(float)), *C1 = xmalloc(nc * sizeof(float)), *C2 = xmalloc(nc * sizeof(float));
        for (size_t i = 0; i < na; i++) A[i] = (float)runif_in(-1, 1);
        for (size_t i = 0; i < nb; i++) B[i] = (float)runif_in(-1, 1);
        for (size_t i = 0; i < nc; i++) C0[i] = C1[i] = C2[i] = (float)runif_in(-1, 1);
        if (beta == 0.0f) /* beta = 0 must ignore C, even NaN */
            for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) C1[(size_t)i * ldc + j] = NAN;
        st_sgemm(tA, tB, M, N, K, A, lda, B, ldb, beta, C1, ldc);
        st_sgemm_ref(tA, tB, M, N, K, A, lda, B, ldb, beta, C2, ldc);
        /* both against an independent triple loop in double */
        double e1 = 0, e2 = 0, mx = 0;
        int pad_ok = 1;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < ldc; j++) {
                size_t q = (size_t)i * ldc + j;
                if (j >= N) { pad_ok &= C1[q] == C0[q] && C2[q] == C0[q]; continue; }
                double acc = 0;
                for (int k = 0; k < K; k++) {
                    double av = tA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                    double bv = tB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                    acc += av * bv;
                }
                if (beta != 0.0f) acc += (double)beta * C0[q];
                double d1 = fabs(C1[q] - acc), d2 = fabs(C2[q] - acc);
                e1 = d1 > e1 || d1 != d1 ? (d1 != d1 ? INFINITY : d1) : e1;
                e2 = d2 > e2 || d2 != d2 ? (d2 != d2 ? INFINITY : d2) : e2;
                mx = fmax(mx, fabs(acc));
            }
        char desc[128];
        snprintf(desc, sizeof desc, "sgemm %d (transA=%d transB=%d M=%d N=%d K=%d lda=%d ldb=%d ldc=%d beta=%g)",
                 ci, tA, tB, M, N, K, lda, ldb, ldc, beta);
        CHECK(e1 <= 1e-5 * (1 + mx), "%s: st_sgemm max abs error %.3g", desc, e1);
        CHECK(e2 <= 1e-5 * (1 + mx), "%s: st_sgemm_ref max abs error %.3g", desc, e2);
        CHECK(pad_ok, "%s: wrote outside the N columns of C", desc);
        free(C0);
        free(A); free(B); free(C1); free(C2);
    }
}

/* Softmax over channels: L = sum(softmax(x) * r), central differences in double. */
static void softmax_gradcheck(void) {
    const int n = 2, c = 5, sp = 3;
    const size_t total = (size_t)n * c * sp;
    double x[30], r[30], y[30], dx[30] = {0};
    for (size_t i = 0; i < total; i++) { x[i] = 4.0 * ((double)(rnd64() % 1000) / 1000.0 - 0.5); r[i] = (double)(rnd64() % 1000) / 500.0 - 1.0; }
    st_softmax_forward_f64(y, x, n, c, sp);
    st_softmax_backward_f64(dx, r, y, n, c, sp);
    double worst = 0, h = 1e-6;
    for (size_t i = 0; i < total; i++) {
        double keep = x[i], lp = 0, lm = 0;
        x[i] = keep + h;
        st_softmax_forward_f64(y, x, n, c, sp);
        for (size_t j = 0; j < total; j++) lp += y[j] * r[j];
        x[i] = keep - h;
        st_softmax_forward_f64(y, x, n, c, sp);
        for (size_t j = 0; j < total; j++) lm += y[j] * r[j];
        x[i] = keep;
        double e = relerr(dx[i], (lp - lm) / (2 * h));
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-6, "softmax gradient vs finite differences: relative error %.3g", worst);
    /* each position's probabilities sum to one */
    st_softmax_forward_f64(y, x, n, c, sp);
    double s0 = 0;
    for (int j = 0; j < c; j++) s0 += y[(size_t)j * sp + 1];
    CHECK(fabs(s0 - 1) < 1e-12, "softmax sums to one over channels (%.15g)", s0);
}

/* Per-position cross-entropy with ignored labels: (n, c, s) logits, finite differences of
 * the mean over counted positions. */
static void ce_nd_gradcheck(void) {
    const int n = 2, c = 4, sp = 5;
    const size_t total = (size_t)n * c * sp;
    double z[40], d[40];
    int32_t t[10];
    int counted = 0;
    for (size_t i = 0; i < total; i++) z[i] = 6.0 * ((double)(rnd64() % 1000) / 1000.0 - 0.5);
    for (int i = 0; i < n * sp; i++) {
        t[i] = i % 4 == 3 ? 255 : (int32_t)(rnd64() % (uint64_t)c);
        counted += t[i] != 255;
    }
    st_cross_entropy_nd_sum_f64(z, t, n, c, sp, d, 1.0 / counted, 255);
    double worst = 0, h = 1e-6;
    for (size_t i = 0; i < total; i++) {
        double keep = z[i];
        z[i] = keep + h;
        double lp = st_cross_entropy_nd_sum_f64(z, t, n, c, sp, NULL, 0, 255) / counted;
        z[i] = keep - h;
        double lm = st_cross_entropy_nd_sum_f64(z, t, n, c, sp, NULL, 0, 255) / counted;
        z[i] = keep;
        double e = relerr(d[i], (lp - lm) / (2 * h));
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-6, "per-position cross-entropy vs finite differences: relative error %.3g", worst);
}

/* Binary cross-entropy on logits, including large |x| (the stable form must not overflow). */
static void bce_gradcheck(void) {
    double x[12] = {-40, -3, -1, -0.2, 0, 0.1, 0.7, 1.5, 3, 9, 40, -9}, t[12], d[12];
    for (int i = 0; i < 12; i++) t[i] = (double)(rnd64() % 1000) / 999.0;
    double L = st_bce_logits_sum_f64(x, t, 12, d, 1.0 / 12) / 12, worst = 0, h = 1e-6;
    CHECK(isfinite(L), "bce on logits of +-40 stays finite (%g)", L);
    for (int i = 0; i < 12; i++) {
        double keep = x[i];
        x[i] = keep + h;
        double lp = st_bce_logits_sum_f64(x, t, 12, NULL, 0) / 12;
        x[i] = keep - h;
        double lm = st_bce_logits_sum_f64(x, t, 12, NULL, 0) / 12;
        x[i] = keep;
        double e = relerr(d[i], (lp - lm) / (2 * h));
        if (e > worst) worst = e;
    }
    CHECK(worst <= 1e-6, "bce on logits vs finite differences: relative error %.3g", worst);
}

int main(void) {
    conv_gradcheck();
    linear_gradcheck();
    act_gradcheck();
    loss_gradcheck();
    conv_fast_vs_ref();
    gemm_fast_vs_ref();
    softmax_gradcheck();
    ce_nd_gradcheck();
    bce_gradcheck();
    return test_done("test_gradcheck");
}
