/* test_kernels.c - the fast kernels against the plain definitions, on random shapes.
 *
 * 1. Convolution: 300 random geometries (1D and 2D; kernel 1-5, stride 1-3, dilation
 *    1-3, padding 0-2, 'same' and 'valid'; groups 1, 2, 3, depthwise and depthwise x2;
 *    batch 1-130; bias on and off), each run through every path there is: the direct
 *    batch-vectorised one (forced), im2col + GEMM (forced) and the default choice.
 *    Forward, backward with and without din and db, accumulation into non-zero
 *    gradients, a workspace that starts as NaN and is not 64-byte aligned.
 *    Tolerance 1e-5 * (1 + max |reference|), the reference being st_conv_*_ref.
 * 2. The MNIST-1D CNN's three layers at batch 100 and a few other sizes (the shapes the
 *    direct path is tuned for), the same checks.
 * 2b. Depthwise convolutions with stride 1 (their own kernel, conv_depthwise.c) on planes
 *    up to 70 wide and 24 high, kernels up to 7 x 7 with dilation, padding wider than
 *    the kernel, batches 1-12, infinities and NaNs in the input, the same checks.
 *    Through the direct path also its training forms: forward with the ReLU's output
 *    written too, backward with a ReLU mask on dL/dout and din written instead of
 *    added; equal, value for value, to the plain calls with the ReLU done apart.
 * 2c. Chains of two direct convolutions with the ReLU between them kept in columns
 *    (random geometries, padding, groups, batches, 1-3 threads), equal value for value
 *    to the same passes through samples.
 * 3. Thread-count independence: forward and backward with 1, 2 and 3 threads give
 *    bit-identical results, for both paths.
 * 4. GEMM: random small and medium shapes, all four transpose combinations, beta 0 and
 *    1, row strides larger than the matrix, against st_sgemm_ref; also bit-identical
 *    results for 1 and 2 threads. Linear forward/backward against the double versions.
 * 5. Cross-entropy (float, whose classifier case has its own vectorised exponential)
 *    against the double version: losses and gradients for 1 to 80 classes, logits from
 *    -100 to 100, a -inf logit, a NaN logit.
 * Everything is seeded: the same run on every machine.
 */
#include "internal.h"
#include "kernels.h"
#include "conv_depthwise.h"
#include "test.h"
#define TEST_SEED 0x243f6a8885a308d3ULL
#include "rand.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

/* ---------------------------------------------------------------- helpers */
static void fill_nan(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}
static int close_enough(const float *got, const float *ref, size_t n, double *err, double *tol) {
    *err = test_maxdiff(got, ref, n);
    *tol = TOL * (1 + test_maxabs(ref, n));
    return *err <= *tol;
}

/* ---------------------------------------------------------------- convolution */
typedef struct {
    st_conv_geom g;
    int n, bias;
    char desc[200];
} conv_case;

/* Paths the tests force: -1 the default, 0 im2col + GEMM (col written), 1 direct,
 * IMPLICIT im2col + GEMM with the GEMM gathering col itself (conv.c's col_rows). */
#define IMPLICIT 2
static const char *path_name(int path) {
    return path == IMPLICIT ? "implicit im2col" : path == 1 ? "direct" : path == 0 ? "im2col" : "default";
}
static void force_path(int path) {
    st_conv_force_path(path == IMPLICIT ? 0 : path);
    st_conv_force_implicit(path == IMPLICIT ? 1 : path == 0 ? 0 : -1);
}

/* Runs forward and backward on one path and compares with the reference results. */
static void check_conv_path(const conv_case *c, int path, const float *x, const float *w, const float *b,
                            const float *gy, const float *y_ref, const float *dx_ref, const float *dw_ref,
                            const float *db_ref, const float *dx0, const float *dw0, const float *db0) {
    const st_conv_geom *g = &c->g;
    int n = c->n;
    size_t nx = (size_t)n * g->cin * g->ih * g->iw, ny = (size_t)n * g->cout * g->oh * g->ow;
    size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw;
    force_path(path);
    size_t wsz = st_conv_work_size(g, n);
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1; /* not 64-byte aligned */
    float *y = alloc_f(ny), *dx = copy_f(dx0, nx), *dw = copy_f(dw0, nw), *db = copy_f(db0, g->cout);
    double err, tol;

    fill_nan(work, wsz); fill_nan(y, ny);
    st_conv_forward(y, x, w, c->bias ? b : NULL, n, g, work);
    CHECK(close_enough(y, y_ref, ny, &err, &tol), "%s [%s]: forward: error %.3g > %.3g", c->desc, path_name(path), err, tol);

    /* accumulates into non-zero gradients */
    fill_nan(work, wsz);
    st_conv_backward(dx, dw, c->bias ? db : NULL, gy, x, w, n, g, work);
    CHECK(close_enough(dx, dx_ref, nx, &err, &tol), "%s [%s]: backward dx: error %.3g > %.3g", c->desc, path_name(path), err, tol);
    CHECK(close_enough(dw, dw_ref, nw, &err, &tol), "%s [%s]: backward dw: error %.3g > %.3g", c->desc, path_name(path), err, tol);
    if (c->bias)
        CHECK(close_enough(db, db_ref, g->cout, &err, &tol), "%s [%s]: backward db: error %.3g > %.3g", c->desc, path_name(path), err, tol);

    /* din = NULL and db = NULL: the weight gradient alone, and nothing else touched */
    memcpy(dw, dw0, nw * sizeof(float));
    fill_nan(work, wsz);
    st_conv_backward(NULL, dw, NULL, gy, x, w, n, g, work);
    CHECK(close_enough(dw, dw_ref, nw, &err, &tol), "%s [%s]: dw with din = db = NULL: error %.3g > %.3g", c->desc, path_name(path), err, tol);

    force_path(-1);
    free(work_block); free(y); free(dx); free(dw); free(db);
}

/* equal values (-0 == 0), NaN where the other has NaN */
static int same_values(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (a[i] != a[i] && b[i] != b[i]))) return 0;
    return 1;
}

/* The direct path's training forms (st_direct_train_forward / _backward on samples) give
 * what st_direct_forward, a ReLU pass, a masked dL/dout and st_direct_backward give. */
static void check_direct_fused(const conv_case *c, const float *x, const float *w, const float *b, const float *gy) {
    const st_conv_geom *g = &c->g;
    int n = c->n;
    size_t nx = (size_t)n * g->cin * g->ih * g->iw, ny = (size_t)n * g->cout * g->oh * g->ow;
    size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw;
    size_t wsz = st_direct_work_size(g, n);
    float *work = alloc_f(wsz), *y = alloc_f(ny), *z = alloc_f(ny), *r = alloc_f(ny), *relu = alloc_f(ny);
    const float *bias = c->bias ? b : NULL;
    st_direct_forward(y, x, w, bias, n, g, work);
    st_act_forward(ST_ACT_RELU, 0, relu, y, ny);
    fill_nan(z, ny); fill_nan(r, ny);
    st_direct_train tf = {0};
    tf.in = x;
    tf.out = z;
    tf.relu = r;
    st_direct_train_forward(&tf, w, bias, n, g, work);
    CHECK(!memcmp(z, y, ny * sizeof(float)) && !memcmp(r, relu, ny * sizeof(float)),
          "%s: forward with the ReLU equals forward, then ReLU", c->desc);
    /* a mask of both signs (some NaN: not > 0) */
    float *mask = rand_f(ny), *gm = alloc_f(ny);
    for (size_t i = 0; i < ny; i += 7) mask[i] = NAN;
    for (size_t i = 0; i < ny; i++) gm[i] = mask[i] > 0 ? gy[i] : 0.0f;
    float *dx = calloc(nx, sizeof(float)), *dw = calloc(nw, sizeof(float)), *db = calloc(g->cout, sizeof(float));
    float *dx2 = alloc_f(nx), *dw2 = calloc(nw, sizeof(float)), *db2 = calloc(g->cout, sizeof(float));
    st_direct_backward(dx, dw, bias ? db : NULL, gm, x, w, n, g, work);
    fill_nan(dx2, nx);
    st_direct_train tb = {0};
    tb.in = x;
    tb.dout = gy;
    tb.mask = mask;
    tb.din = dx2;
    tb.dw = dw2;
    tb.db = bias ? db2 : NULL;
    st_direct_train_backward(&tb, w, n, g, work);
    CHECK(same_values(dx, dx2, nx) && same_values(dw, dw2, nw) && same_values(db, db2, g->cout),
          "%s: masked backward writing din equals the plain one", c->desc);
    free(work); free(y); free(z); free(r); free(relu); free(mask); free(gm);
    free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2);
}

/* Two direct convolutions A -> ReLU -> B in training with the ReLU's output and gradient
 * kept in columns between them (st_direct_train's next_cols, gcols, prev_gcols, and the
 * outputs written later from ycols) give, value for value, what the same calls give
 * through samples. */
static int check_direct_chain(int n, const st_conv_geom *ga, const st_conv_geom *gb, int bias) {
    size_t nx = (size_t)n * ga->cin * ga->ih * ga->iw, ny = (size_t)n * ga->cout * ga->oh * ga->ow;
    size_t nz = (size_t)n * gb->cout * gb->oh * gb->ow;
    size_t nwa = (size_t)ga->cout * (ga->cin / ga->groups) * ga->kh * ga->kw;
    size_t nwb = (size_t)gb->cout * (gb->cin / gb->groups) * gb->kh * gb->kw;
    size_t wsz = st_direct_work_size(ga, n) > st_direct_work_size(gb, n) ? st_direct_work_size(ga, n) : st_direct_work_size(gb, n);
    float *x = rand_f(nx), *wa = rand_f(nwa), *ba = rand_f(ga->cout), *wb = rand_f(nwb), *bb = rand_f(gb->cout);
    float *gz = rand_f(nz), *work = alloc_f(wsz);
    float *ya = alloc_f(ny), *ra = alloc_f(ny), *z = alloc_f(nz), *dra = alloc_f(ny), *dx = alloc_f(nx);
    float *dwa = calloc(nwa, 4), *dba = calloc(ga->cout, 4), *dwb = calloc(nwb, 4), *dbb = calloc(gb->cout, 4);
    float *ya2 = alloc_f(ny), *ra2 = alloc_f(ny), *z2 = alloc_f(nz), *dx2 = alloc_f(nx);
    float *dwa2 = calloc(nwa, 4), *dba2 = calloc(ga->cout, 4), *dwb2 = calloc(nwb, 4), *dbb2 = calloc(gb->cout, 4);
    float *xa = alloc_f(st_direct_cols_size(ga, n)), *ycols = alloc_f(st_direct_out_cols_size(ga, n));
    float *gcols = alloc_f(st_direct_out_cols_size(ga, n)), *xb = alloc_f(st_direct_cols_size(gb, n));
    const float *bia = bias ? ba : NULL, *bib = bias ? bb : NULL;
    /* through samples */
    st_direct_train t = {.in = x, .out = ya, .relu = ra};
    st_direct_train_forward(&t, wa, bia, n, ga, work);
    t = (st_direct_train){.in = ra, .out = z};
    st_direct_train_forward(&t, wb, bib, n, gb, work);
    t = (st_direct_train){.in = ra, .dout = gz, .din = dra, .dw = dwb, .db = bias ? dbb : NULL};
    st_direct_train_backward(&t, wb, n, gb, work);
    t = (st_direct_train){.in = x, .dout = dra, .mask = ra, .din = dx, .dw = dwa, .db = bias ? dba : NULL};
    st_direct_train_backward(&t, wa, n, ga, work);
    /* through columns (buffers and workspace start as NaN) */
    fill_nan(xa, st_direct_cols_size(ga, n)); fill_nan(xb, st_direct_cols_size(gb, n));
    fill_nan(ycols, st_direct_out_cols_size(ga, n)); fill_nan(gcols, st_direct_out_cols_size(ga, n));
    fill_nan(work, wsz); fill_nan(z2, nz); fill_nan(dx2, nx); fill_nan(ya2, ny); fill_nan(ra2, ny);
    t = (st_direct_train){.in = x, .xcols = xa, .ycols = ycols, .next = gb, .next_cols = xb};
    st_direct_train_forward(&t, wa, bia, n, ga, work);
    t = (st_direct_train){.xcols = xb, .out = z2};
    st_direct_train_forward(&t, wb, bib, n, gb, work);
    fill_nan(work, wsz);
    t = (st_direct_train){.xcols = xb, .dout = gz, .prev_gcols = gcols, .dw = dwb2, .db = bias ? dbb2 : NULL};
    st_direct_train_backward(&t, wb, n, gb, work);
    t = (st_direct_train){.xcols = xa, .gcols = gcols, .din = dx2, .dw = dwa2, .db = bias ? dba2 : NULL};
    st_direct_train_backward(&t, wa, n, ga, work);
    st_direct_train_outputs(ya2, ra2, ycols, n, ga);
    int ok = same_values(z, z2, nz) && same_values(dx, dx2, nx) && same_values(dwa, dwa2, nwa) &&
             same_values(dwb, dwb2, nwb) && same_values(dba, dba2, ga->cout) && same_values(dbb, dbb2, gb->cout) &&
             !memcmp(ya, ya2, ny * 4) && !memcmp(ra, ra2, ny * 4);
    float *bufs[] = {x, wa, ba, wb, bb, gz, work, ya, ra, z, dra, dx, dwa, dba, dwb, dbb, ya2, ra2, z2, dx2,
                     dwa2, dba2, dwb2, dbb2, xa, ycols, gcols, xb};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    return ok;
}

/* Random chains: A with groups 1 to 3, B reading A's output with its own kernel,
 * stride, dilation, padding and groups; batches 1 to 130; 1, 2 and 3 threads. */
static void direct_chains(int count) {
    int done = 0;
    while (done < count) {
        int dim = rint_in(1, 2), n = rint_in(1, 130), k[2], s[2], d[2], pad[2];
        int ga_groups = rint_in(1, 3), cin = ga_groups * rint_in(1, 4), cout = ga_groups * rint_in(1, 6);
        int ih = dim == 1 ? 1 : rint_in(3, 12), iw = dim == 1 ? rint_in(3, 48) : rint_in(3, 12);
        st_conv_geom ga, gb;
        for (int a = 0; a < 2; a++) {
            k[a] = rint_in(1, 3); s[a] = rint_in(1, 2); d[a] = 1; pad[a] = rint_in(0, 1);
        }
        if (dim == 1) { k[0] = s[0] = 1; pad[0] = 0; }
        if (st_conv_geom_init(&ga, cin, cout, ga_groups, k, s, d, ST_PAD_EXPLICIT, pad, ih, iw) != ST_OK) continue;
        int gb_groups = cout % 3 == 0 && rint_in(0, 1) ? 3 : cout % 2 == 0 && rint_in(0, 1) ? 2 : 1;
        for (int a = 0; a < 2; a++) {
            k[a] = rint_in(1, 3); s[a] = rint_in(1, 2); d[a] = rint_in(1, 2); pad[a] = rint_in(0, 2);
        }
        if (dim == 1) { k[0] = s[0] = d[0] = 1; pad[0] = 0; }
        if (st_conv_geom_init(&gb, cout, gb_groups * rint_in(1, 5), gb_groups, k, s, d, ST_PAD_EXPLICIT, pad, ga.oh,
                              ga.ow) != ST_OK)
            continue;
        if (!st_direct_possible(&ga, n) || !st_direct_possible(&gb, n) || st_depthwise_ok(&ga) || st_depthwise_ok(&gb))
            continue;
        int threads = done % 4 == 3 ? 2 + done % 2 : 1;
        st_set_threads(threads);
        CHECK(check_direct_chain(n, &ga, &gb, done % 2), "direct chain %d (n=%d, %d threads): %dx%d %d->%d g%d, then "
              "%d->%d g%d k %dx%d pad %d,%d: columns differ from samples", done, n, threads, ga.ih, ga.iw, ga.cin,
              ga.cout, ga.groups, gb.cin, gb.cout, gb.groups, gb.kh, gb.kw, gb.pt, gb.pl);
        st_set_threads(1);
        done++;
    }
    printf("direct chains: %d\n", done);
}

/* Forward and backward with 1, 2 and 3 threads must agree bit for bit. */
static void check_conv_threads(const conv_case *c, int path, const float *x, const float *w, const float *b,
                               const float *gy) {
    const st_conv_geom *g = &c->g;
    int n = c->n;
    size_t nx = (size_t)n * g->cin * g->ih * g->iw, ny = (size_t)n * g->cout * g->oh * g->ow;
    size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw;
    force_path(path);
    size_t wsz = st_conv_work_size(g, n);
    float *work = alloc_f(wsz);
    float *y[3], *dx[3], *dw[3], *db[3];
    for (int t = 0; t < 3; t++) {
        st_set_threads(t + 1);
        y[t] = alloc_f(ny);
        dx[t] = calloc(nx, sizeof(float)); dw[t] = calloc(nw, sizeof(float)); db[t] = calloc(g->cout, sizeof(float));
        st_conv_forward(y[t], x, w, c->bias ? b : NULL, n, g, work);
        st_conv_backward(dx[t], dw[t], c->bias ? db[t] : NULL, gy, x, w, n, g, work);
    }
    st_set_threads(1);
    for (int t = 1; t < 3; t++) {
        int same = !memcmp(y[0], y[t], ny * sizeof(float)) && !memcmp(dx[0], dx[t], nx * sizeof(float)) &&
                   !memcmp(dw[0], dw[t], nw * sizeof(float)) && !memcmp(db[0], db[t], g->cout * sizeof(float));
        CHECK(same, "%s [%s]: %d threads differ from 1 thread", c->desc, path_name(path), t + 1);
    }
    for (int t = 0; t < 3; t++) { free(y[t]); free(dx[t]); free(dw[t]); free(db[t]); }
    free(work);
    force_path(-1);
}

static void run_conv_case(conv_case *c, int threads_too) {
    const st_conv_geom *g = &c->g;
    int n = c->n;
    size_t nx = (size_t)n * g->cin * g->ih * g->iw, ny = (size_t)n * g->cout * g->oh * g->ow;
    size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw;
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g->cout), *gy = rand_f(ny);
    float *dx0 = rand_f(nx), *dw0 = rand_f(nw), *db0 = rand_f(g->cout);
    float *y_ref = alloc_f(ny), *dx_ref = copy_f(dx0, nx), *dw_ref = copy_f(dw0, nw), *db_ref = copy_f(db0, g->cout);
    st_conv_forward_ref(y_ref, x, w, c->bias ? b : NULL, n, g);
    st_conv_backward_ref(dx_ref, dw_ref, c->bias ? db_ref : NULL, gy, x, w, n, g);
    for (int path = -1; path <= IMPLICIT; path++) {
        if (path == 1 && !st_direct_possible(g, n)) continue;
        check_conv_path(c, path, x, w, b, gy, y_ref, dx_ref, dw_ref, db_ref, dx0, dw0, db0);
        if (threads_too && path >= 0) check_conv_threads(c, path, x, w, b, gy);
    }
    st_conv_force_path(1);
    if (st_conv_direct_fused(g, n)) {
        check_direct_fused(c, x, w, b, gy);
        for (int t = 2; threads_too && t <= 3; t++) { /* (the threaded orders of work) */
            st_set_threads(t);
            check_direct_fused(c, x, w, b, gy);
        }
        st_set_threads(1);
    }
    st_conv_force_path(-1);
    free(x); free(w); free(b); free(gy); free(dx0); free(dw0); free(db0);
    free(y_ref); free(dx_ref); free(dw_ref); free(db_ref);
}

static int make_case(conv_case *c, int dim, int n, int cin, int cout, int groups, const int k[2], const int s[2],
                     const int d[2], int pad_mode, const int pad[2], int ih, int iw, int bias) {
    if (st_conv_geom_init(&c->g, cin, cout, groups, k, s, d, pad_mode, pad, ih, iw) != ST_OK) return 0;
    c->n = n;
    c->bias = bias;
    const char *pm = pad_mode == ST_PAD_SAME ? "same" : pad_mode == ST_PAD_VALID ? "valid" : "explicit";
    snprintf(c->desc, sizeof c->desc, "%dD n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%s(%d,%d) bias=%d",
             dim, n, cin, cout, groups, ih, iw, k[0], k[1], s[0], s[1], d[0], d[1], pm, pad[0], pad[1], bias);
    return 1;
}

static void random_convs(int count) {
    int done = 0, direct = 0;
    while (done < count) {
        int dim = rint_in(1, 2);
        int n = rnd64() % 3 ? rint_in(1, 130) : rint_in(1, 20);
        int gsel = rint_in(0, 5), groups, cin, cout;
        int base = rint_in(1, 6);
        switch (gsel) {
        case 0: groups = 2; cin = 2 * base; cout = 2 * rint_in(1, 6); break;
        case 1: groups = 3; cin = 3 * rint_in(1, 3); cout = 3 * rint_in(1, 4); break;
        case 2: groups = base; cin = base; cout = base; break;          /* depthwise */
        case 3: groups = base; cin = base; cout = 2 * base; break;      /* depthwise x2 */
        default: groups = 1; cin = rint_in(1, 20); cout = rint_in(1, 20); break;
        }
        int k[2], s[2], d[2], pad[2];
        int pad_mode = rint_in(0, 4); /* explicit more often */
        pad_mode = pad_mode == 3 ? ST_PAD_SAME : pad_mode == 4 ? ST_PAD_VALID : ST_PAD_EXPLICIT;
        for (int a = 0; a < 2; a++) {
            k[a] = rint_in(1, 5);
            s[a] = pad_mode == ST_PAD_SAME ? 1 : rint_in(1, 3);
            d[a] = rint_in(1, 3);
            pad[a] = rint_in(0, 2);
        }
        int ih = rint_in(1, 12), iw = dim == 1 ? rint_in(1, 48) : rint_in(1, 12);
        if (dim == 1) { k[0] = s[0] = d[0] = 1; pad[0] = 0; ih = 1; }
        conv_case c;
        if (!make_case(&c, dim, n, cin, cout, groups, k, s, d, pad_mode, pad, ih, iw, rint_in(0, 1))) continue;
        direct += st_direct_possible(&c.g, n);
        run_conv_case(&c, done % 10 == 0);
        done++;
    }
    printf("conv: %d random geometries (%d through the direct path too)\n", done, direct);
}

/* The MNIST-1D CNN's layers (conv1d k3 s2 valid: 1 -> 15 -> 15 -> 15 channels,
 * 40 -> 19 -> 9 -> 4 positions) at the batch sizes training and evaluation use. */
static void mnist1d_convs(void) {
    int batches[] = {100, 1, 16, 17, 64, 127, 200};
    int cins[3] = {1, 15, 15}, iws[3] = {40, 19, 9};
    int k[2] = {1, 3}, s[2] = {1, 2}, d[2] = {1, 1}, pad[2] = {0, 0};
    for (size_t bi = 0; bi < sizeof batches / sizeof batches[0]; bi++)
        for (int l = 0; l < 3; l++) {
            conv_case c;
            if (!make_case(&c, 1, batches[bi], cins[l], 15, 1, k, s, d, ST_PAD_VALID, pad, 1, iws[l], 1)) continue;
            run_conv_case(&c, 1);
        }
}

/* Depthwise, stride 1: the plane-wise kernel of conv_depthwise.c, on larger planes than
 * random_convs makes (several vectors per row, several row blocks and parts). */
static void depthwise_convs(void) {
    int done = 0;
    for (int t = 0; t < 40; t++) {
        int dim = t % 5 == 0 ? 1 : 2, ch = rint_in(1, t % 4 ? 12 : 40), n = rint_in(1, 12);
        int k[2], s[2] = {1, 1}, d[2], pad[2];
        for (int a = 0; a < 2; a++) {
            k[a] = t % 3 == 0 ? 3 : rint_in(1, 7);
            d[a] = t % 4 == 3 ? rint_in(1, 3) : 1;
            pad[a] = rint_in(0, t % 6 == 5 ? 9 : 3); /* wider than the kernel too */
        }
        int ih = rint_in(1, 24), iw = rint_in(1, 70), pm = t % 7 == 6 ? ST_PAD_SAME : ST_PAD_EXPLICIT;
        if (dim == 1) { k[0] = d[0] = 1; pad[0] = 0; ih = 1; }
        conv_case c;
        if (!make_case(&c, dim, n, ch, ch, ch, k, s, d, pm, pad, ih, iw, t % 2)) continue;
        run_conv_case(&c, t % 4 == 0);
        done++;
    }
    /* an infinity and a NaN in the input reach only their own outputs and gradients:
     * compare against the reference where it is finite, and where it is not, alike */
    {
        int k[2] = {3, 3}, s[2] = {1, 1}, d[2] = {1, 1}, pad[2] = {0, 0}, n = 3, ch = 4, ih = 9, iw = 30;
        st_conv_geom g;
        st_conv_geom_init(&g, ch, ch, ch, k, s, d, ST_PAD_EXPLICIT, pad, ih, iw);
        size_t nx = (size_t)n * ch * ih * iw, ny = (size_t)n * ch * g.oh * g.ow, nw = (size_t)ch * 9;
        float *x = rand_f(nx), *w = rand_f(nw), *gy = rand_f(ny);
        x[iw - 1] = INFINITY; /* the last column: read by no phantom lane's product with dL/dout */
        x[(size_t)ch * ih * iw + 2 * iw - 2] = NAN;
        float *y = alloc_f(ny), *yr = alloc_f(ny), *dw = calloc(nw, 4), *dwr = calloc(nw, 4);
        float *work = alloc_f(st_conv_work_size(&g, n));
        st_conv_force_path(1);
        st_conv_forward(y, x, w, NULL, n, &g, work);
        st_conv_backward(NULL, dw, NULL, gy, x, w, n, &g, work);
        st_conv_force_path(-1);
        st_conv_forward_ref(yr, x, w, NULL, n, &g);
        st_conv_backward_ref(NULL, dwr, NULL, gy, x, w, n, &g);
        int same_class = 1;
        for (size_t i = 0; i < ny; i++) same_class &= isfinite(y[i]) == isfinite(yr[i]);
        for (size_t i = 0; i < nw; i++) same_class &= isfinite(dw[i]) == isfinite(dwr[i]);
        CHECK(same_class, "depthwise with inf and NaN inputs: non-finite outputs differ from the reference");
        free(x); free(w); free(gy); free(y); free(yr); free(dw); free(dwr); free(work);
    }
    printf("depthwise: %d geometries\n", done);
}

/* Few batch columns on several threads (the direct path then splits channel blocks and
 * weight tiles instead of columns): a 7x7 stride-2 stem at batch 8, a conv1d at batch 32,
 * a 3x3 at batch 20, a stem on rows of 51 outputs (the stride-2 gather's whole vectors and
 * masked tail); each checked against the reference and for 1, 2 and 3 threads. */
static void few_column_convs(void) {
    struct { int dim, n, cin, cout, h, w, k, s, p; } cs[] = {
        {2, 8, 3, 40, 40, 40, 7, 2, 3}, {1, 32, 16, 24, 1, 200, 3, 1, 1}, {2, 20, 8, 36, 14, 14, 3, 1, 1},
        {2, 3, 5, 17, 9, 11, 3, 1, 0}, {2, 2, 3, 16, 30, 101, 7, 2, 3}};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int k[2] = {cs[i].dim == 1 ? 1 : cs[i].k, cs[i].k}, s[2] = {cs[i].dim == 1 ? 1 : cs[i].s, cs[i].s};
        int d[2] = {1, 1}, pad[2] = {cs[i].dim == 1 ? 0 : cs[i].p, cs[i].p};
        conv_case c;
        if (make_case(&c, cs[i].dim, cs[i].n, cs[i].cin, cs[i].cout, 1, k, s, d, ST_PAD_EXPLICIT, pad, cs[i].h, cs[i].w, 1))
            run_conv_case(&c, 1);
    }
}

/* ---------------------------------------------------------------- GEMM and linear */
static void check_gemm(int tA, int tB, int M, int N, int K, int extra, float beta, int threads_too) {
    int lda = (tA ? M : K) + extra, ldb = (tB ? K : N) + extra, ldc = N + extra;
    size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = rand_f(na), *B = rand_f(nb), *C0 = rand_f(nc);
    float *C = copy_f(C0, nc), *R = copy_f(C0, nc);
    st_sgemm(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc);
    st_sgemm_ref(tA, tB, M, N, K, A, lda, B, ldb, beta, R, ldc);
    double err, tol;
    CHECK(close_enough(C, R, nc, &err, &tol), "sgemm tA=%d tB=%d M=%d N=%d K=%d ld+%d beta=%g: error %.3g > %.3g",
          tA, tB, M, N, K, extra, beta, err, tol);
    if (threads_too) {
        float *C2 = copy_f(C0, nc);
        st_set_threads(2);
        st_sgemm(tA, tB, M, N, K, A, lda, B, ldb, beta, C2, ldc);
        st_set_threads(1);
        CHECK(!memcmp(C, C2, nc * sizeof(float)), "sgemm tA=%d tB=%d M=%d N=%d K=%d: 2 threads differ from 1", tA, tB, M, N, K);
        free(C2);
    }
    free(A); free(B); free(C0); free(C); free(R);
}

static void gemms(void) {
    /* the shapes the MNIST-1D models use (linear layers, batch 100), then random ones */
    int fixed[][3] = {{100, 10, 60}, {100, 60, 10}, {10, 60, 100}, {100, 285, 40}, {100, 135, 285},
                      {100, 40, 285}, {285, 40, 100}, {100, 10, 135}, {1, 1, 1}, {7, 33, 1}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int t = 0; t < 4; t++)
            check_gemm(t & 1, t >> 1, fixed[i][0], fixed[i][1], fixed[i][2], 0, 0.0f, 1);
    int count = 0;
    for (; count < 300; count++) {
        int big = count % 10 == 0;
        int M = rint_in(1, big ? 300 : 40), N = rint_in(1, big ? 300 : 70), K = rint_in(1, big ? 400 : 70);
        check_gemm(rint_in(0, 1), rint_in(0, 1), M, N, K, rint_in(0, 1) ? 0 : rint_in(1, 5),
                   rint_in(0, 1) ? 1.0f : 0.0f, count % 5 == 0);
    }
    printf("gemm: %d random shapes\n", count);
}

static void linears(void) {
    int shapes[][3] = {{100, 60, 10}, {100, 40, 285}, {100, 285, 135}, {1, 5, 3}, {33, 17, 9}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int n = shapes[i][0], in = shapes[i][1], out = shapes[i][2];
        float *x = rand_f((size_t)n * in), *w = rand_f((size_t)out * in), *b = rand_f(out), *gy = rand_f((size_t)n * out);
        float *y = alloc_f((size_t)n * out), *dx = calloc((size_t)n * in, sizeof(float));
        float *dw = calloc((size_t)out * in, sizeof(float)), *db = calloc(out, sizeof(float));
        double *xd = malloc(sizeof(double) * n * in), *wd = malloc(sizeof(double) * out * in), *bd = malloc(sizeof(double) * out);
        double *gyd = malloc(sizeof(double) * n * out), *yd = malloc(sizeof(double) * n * out);
        double *dxd = calloc((size_t)n * in, sizeof(double)), *dwd = calloc((size_t)out * in, sizeof(double));
        double *dbd = calloc(out, sizeof(double));
        for (int j = 0; j < n * in; j++) xd[j] = x[j];
        for (int j = 0; j < out * in; j++) wd[j] = w[j];
        for (int j = 0; j < out; j++) bd[j] = b[j];
        for (int j = 0; j < n * out; j++) gyd[j] = gy[j];
        st_linear_forward(y, x, w, b, n, in, out);
        st_linear_backward(dx, dw, db, gy, x, w, n, in, out);
        st_linear_forward_f64(yd, xd, wd, bd, n, in, out);
        st_linear_backward_f64(dxd, dwd, dbd, gyd, xd, wd, n, in, out);
        float *r = alloc_f((size_t)(n > out ? n : out) * (in > out ? in : out));
        double err, tol;
#define CMP(got, refd, cnt, what)                                                           \
        do {                                                                                \
            for (size_t q = 0; q < (size_t)(cnt); q++) r[q] = (float)(refd)[q];             \
            CHECK(close_enough(got, r, cnt, &err, &tol), "linear n=%d in=%d out=%d: %s: error %.3g > %.3g", \
                  n, in, out, what, err, tol);                                              \
        } while (0)
        CMP(y, yd, (size_t)n * out, "forward");
        CMP(dx, dxd, (size_t)n * in, "dx");
        CMP(dw, dwd, (size_t)out * in, "dw");
        CMP(db, dbd, (size_t)out, "db");
#undef CMP
        free(x); free(w); free(b); free(gy); free(y); free(dx); free(dw); free(db); free(r);
        free(xd); free(wd); free(bd); free(gyd); free(yd); free(dxd); free(dwd); free(dbd);
    }
}

static void cross_entropies(void) {
    for (int t = 0; t < 60; t++) {
        int n = rint_in(1, 9), c = t < 50 ? rint_in(1, 80) : 10;
        double spread = t % 3 == 0 ? 100 : t % 3 == 1 ? 10 : 1;
        size_t nz = (size_t)n * c;
        float *z = alloc_f(nz), *d = alloc_f(nz);
        double *zd = malloc(nz * sizeof(double)), *dd = malloc(nz * sizeof(double));
        int32_t *lab = malloc((size_t)n * sizeof(int32_t));
        for (size_t i = 0; i < nz; i++) z[i] = (float)(runif_pm1() * spread);
        for (int i = 0; i < n; i++) lab[i] = rint_in(0, c - 1);
        if (t == 50 && c > 1) { z[1] = -INFINITY; lab[0] = 0; }
        if (t == 51) z[3] = NAN;
        for (size_t i = 0; i < nz; i++) zd[i] = z[i];
        double L = st_cross_entropy(z, lab, n, c, d), Ld = st_cross_entropy_f64(zd, lab, n, c, dd);
        if (t == 51) {
            CHECK(isnan(L) && isnan(d[0]), "cross-entropy with a NaN logit: loss %g, gradient %g", L, d[0]);
        } else {
            double err = 0;
            for (size_t i = 0; i < nz; i++) err = fmax(err, fabs(d[i] - dd[i]));
            CHECK(fabs(L - Ld) <= 1e-5 * (1 + fabs(Ld)) && err <= 1e-6, "cross-entropy n=%d c=%d spread %g: loss %.9g vs %.9g, "
                  "gradient error %.3g", n, c, spread, L, Ld, err);
            if (t == 50 && c > 1) CHECK(d[1] == 0, "cross-entropy: a -inf logit's gradient is %g", d[1]);
        }
        free(z); free(d); free(zd); free(dd); free(lab);
    }
}

int main(void) {
    st_set_threads(1);
    mnist1d_convs();
    random_convs(300);
    depthwise_convs();
    few_column_convs();
    direct_chains(60);
    gemms();
    linears();
    cross_entropies();
    st_set_threads(0);
    return test_done("test_kernels");
}
