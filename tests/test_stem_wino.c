/* test_stem_wino.c - the stem's Winograd rows (src/conv_stem_wino.c: F(4, 3) on the odd
 * taps, F(4, 4) on the even ones of a 7-tap, stride-2 row) against the plain loops
 * (st_conv_forward_ref_f64, double accumulation).
 *
 * 1. Single taps: one input channel, one kernel row, weights 0 but for one tap (each of
 *    the 7, then all 7 ones), so that each transform point's part of F(4, 3) and F(4, 4)
 *    is checked on its own, on widths 1..40.
 * 2. 200 random geometries: batch 1-9, 1-4 input channels, 1-70 output channels, kernel
 *    rows 1-7 (kw 7, stride 2 across), vertical stride 1 or 2, padding 0-3 on each side,
 *    heights 1-40, widths 1-90 (odd and even, not a multiple of 4 tiles or of the vectors),
 *    bias on and off, through st_stem_forward; the workspace (not 64-byte aligned) and the
 *    output start as NaN.
 * 3. ResNet's stem (3 -> 64, 7x7/2, padding 3) on 224x224, batch 2; through
 *    st_conv_forward (the path rule takes the stem, which takes the Winograd rows); and
 *    4 -> 20 on 230x300 (the weight gradient's units then shorter than a sample).
 * 4. The epilogue (a batch norm's scale and shift, a residual add, a ReLU).
 * 5. Threads: 1, 2 and 3 threads give bit-identical outputs and weight and bias gradients.
 * Each case of 1, 2 and 3 also runs the weight and bias gradient (st_stem_backward, which
 * takes the Winograd rows) against st_conv_backward_ref_f64, dw and db starting at random
 * values (it adds), the workspace as NaN.
 *
 * Tolerance: |ours - reference| <= TOL * (1 + max |reference|), TOL = 2e-5 (as
 * test_winograd1d's); the worst error is printed.
 */
#include "internal.h"
#include "kernels.h"
#include "test.h"
#define TEST_SEED 0x3c6ef372fe94f82bULL
#include "rand.h"

#include <stdlib.h>
#include <string.h>

#define TOL 2e-5

static double worst;

static void check(const char *desc, const float *got, const float *ref, size_t n) {
    double e = test_maxdiff(got, ref, n) / (1 + test_maxabs(ref, n));
    if (e > worst) worst = e;
    CHECK(e <= TOL, "%s: relative error %.3g > %.3g", desc, e, TOL);
}

static void poison(float *a, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = NAN;
}

static int geom(st_conv_geom *g, int cin, int cout, int kh, int sh, int pt, int pl, int ih, int iw) {
    int k[2] = {kh, 7}, s[2] = {sh, 2}, d[2] = {1, 1}, p[2] = {pt, pl};
    return st_conv_geom_init(g, cin, cout, 1, k, s, d, ST_PAD_EXPLICIT, p, ih, iw) == ST_OK;
}

static size_t in_size(const st_conv_geom *g, int n) { return (size_t)n * g->cin * g->ih * g->iw; }
static size_t out_size(const st_conv_geom *g, int n) { return (size_t)n * g->cout * g->oh * g->ow; }
static size_t w_size(const st_conv_geom *g) { return (size_t)g->cout * g->cin * g->kh * g->kw; }

/* a float array in double (malloc'd), and back */
static double *to_double(const float *a, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof(double));
    if (!d) { fprintf(stderr, "out of memory\n"); exit(2); }
    for (size_t i = 0; i < n; i++) d[i] = a ? a[i] : 0;
    return d;
}
static void to_float(float *a, const double *d, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = (float)d[i];
}

/* the reference in double, rounded to float */
static void reference(float *y, const float *x, const float *w, const float *b, int n, const st_conv_geom *g) {
    size_t ny = out_size(g, n);
    double *xd = to_double(x, in_size(g, n)), *wd = to_double(w, w_size(g)), *bd = to_double(b, g->cout);
    double *yd = to_double(NULL, ny);
    st_conv_forward_ref_f64(yd, xd, wd, bd, n, g);
    to_float(y, yd, ny);
    free(xd); free(wd); free(bd); free(yd);
}

/* st_stem_forward (the Winograd rows) on (g, n) against the reference; w NULL: random */
static void run_case(const char *desc, const st_conv_geom *g, int n, const float *wgiven, int bias) {
    CHECK(st_stem_wino_possible(g), "%s: not possible", desc);
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *w = wgiven ? copy_f(wgiven, nw) : rand_f(nw), *b = rand_f(g->cout);
    float *yr = alloc_f(ny), *y = alloc_f(ny);
    reference(yr, x, w, bias ? b : NULL, n, g);
    size_t wsz = st_stem_work_size(g, n);
    CHECK(wsz >= st_stem_wino_work_size(g, n), "%s: work size %zu < %zu", desc, wsz, st_stem_wino_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1;
    poison(work, wsz);
    poison(y, ny);
    st_stem_forward(y, x, w, bias ? b : NULL, n, g, work, NULL);
    check(desc, y, yr, ny);
    free(work_block); free(x); free(w); free(b); free(yr); free(y);
}

/* The weight and bias gradient (st_stem_backward, which takes the Winograd rows) against
 * the double reference; dw and db start at random values (it adds), the workspace as NaN. */
static void backward_case(const char *desc, const st_conv_geom *g, int n, int bias) {
    char d2[200];
    snprintf(d2, sizeof d2, "%s backward", desc);
    CHECK(st_stem_wino_backward_possible(g, n), "%s: not possible", d2);
    size_t nx = in_size(g, n), ny = out_size(g, n), nw = w_size(g);
    float *x = rand_f(nx), *gy = rand_f(ny), *dw = rand_f(nw), *db = rand_f(g->cout);
    double *xd = to_double(x, nx), *gyd = to_double(gy, ny), *dwd = to_double(dw, nw), *dbd = to_double(db, g->cout);
    float *dwr = alloc_f(nw), *dbr = alloc_f(g->cout);
    st_conv_backward_ref_f64(NULL, dwd, dbd, gyd, xd, NULL, n, g);
    to_float(dwr, dwd, nw);
    to_float(dbr, dbd, g->cout);
    size_t wsz = st_stem_backward_work_size(g, n);
    CHECK(wsz >= st_stem_wino_backward_work_size(g, n), "%s: work size %zu < %zu", d2, wsz,
          st_stem_wino_backward_work_size(g, n));
    float *work_block = alloc_f(wsz + 1), *work = work_block + 1;
    poison(work, wsz);
    st_stem_backward(dw, bias ? db : NULL, gy, x, n, g, work);
    snprintf(d2, sizeof d2, "%s: weight gradient", desc);
    check(d2, dw, dwr, nw);
    snprintf(d2, sizeof d2, "%s: bias gradient", desc);
    if (bias) check(d2, db, dbr, g->cout);
    free(work_block); free(x); free(gy); free(dw); free(db); free(xd); free(gyd); free(dwd); free(dbd);
    free(dwr); free(dbr);
}

/* ---------------------------------------------------------------- 1. single taps */
static void tap_cases(void) {
    float w[7];
    int done = 0;
    for (int tap = 0; tap <= 7; tap++)
        for (int iw = 1; iw <= 40; iw += 3) {
            for (int j = 0; j < 7; j++) w[j] = tap == 7 || j == tap ? 1.0f : 0.0f;
            st_conv_geom g;
            char desc[96];
            snprintf(desc, sizeof desc, "tap %d, width %d", tap, iw);
            if (!geom(&g, 1, 1, 1, 1, 0, 3, 1, iw)) { CHECK(0, "%s: no geometry", desc); continue; }
            run_case(desc, &g, 1, w, 0);
            backward_case(desc, &g, 1, 1);
            done++;
        }
    printf("stem_wino: %d single-tap cases\n", done);
}

/* ---------------------------------------------------------------- 2. random shapes */
static void random_cases(int count) {
    int done = 0;
    while (done < count) {
        int n = rint_in(1, 9), cin = rint_in(1, 4), cout = rint_in(1, 70), kh = rint_in(1, 7);
        int sh = rint_in(1, 2), pt = rint_in(0, 3), pl = rint_in(0, 3), ih = rint_in(1, 40), iw = rint_in(1, 90);
        if ((double)n * cin * cout * ih * iw * kh * 7 > 3e7) continue;
        st_conv_geom g;
        if (!geom(&g, cin, cout, kh, sh, pt, pl, ih, iw)) continue;
        char desc[160];
        snprintf(desc, sizeof desc, "n=%d %d->%d %dx%d kh=%d sh=%d p=%dx%d", n, cin, cout, ih, iw, kh, sh, pt, pl);
        int bias = rint_in(0, 1);
        run_case(desc, &g, n, NULL, bias);
        backward_case(desc, &g, n, bias);
        done++;
    }
    printf("stem_wino: %d random geometries\n", done);
}

/* ---------------------------------------------------------------- 3. ResNet's stem */
static void resnet_case(void) {
    st_conv_geom g;
    int n = 2;
    if (!geom(&g, 3, 64, 7, 2, 3, 3, 224, 224)) { CHECK(0, "resnet geometry"); return; }
    CHECK(st_conv_forward_is_stem(&g, n) && st_stem_wino_possible(&g), "resnet's stem: not the Winograd rows");
    size_t nx = in_size(&g, n), ny = out_size(&g, n), nw = w_size(&g);
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *yr = alloc_f(ny), *y = alloc_f(ny);
    reference(yr, x, w, b, n, &g);
    float *work = alloc_f(st_conv_work_size(&g, n));
    poison(y, ny);
    st_conv_forward(y, x, w, b, n, &g, work);
    check("resnet's stem 224x224", y, yr, ny);
    backward_case("resnet's stem 224x224", &g, n, 1);
    /* wide and tall: the weight gradient's units fewer rows than a sample's (its buffers' cap) */
    if (geom(&g, 4, 20, 7, 2, 3, 3, 230, 300)) {
        run_case("4 -> 20 on 230x300", &g, 1, NULL, 1);
        backward_case("4 -> 20 on 230x300", &g, 1, 1);
    } else CHECK(0, "wide geometry");
    free(work); free(x); free(w); free(b); free(yr); free(y);
}

/* ---------------------------------------------------------------- 4. the epilogue */
static void epilogue_cases(void) {
    st_conv_geom g;
    int n = 2;
    if (!geom(&g, 3, 32, 7, 2, 3, 3, 40, 38)) { CHECK(0, "epilogue geometry"); return; }
    size_t nx = in_size(&g, n), ny = out_size(&g, n), nw = w_size(&g);
    float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *scale = rand_f(g.cout), *shift = rand_f(g.cout);
    float *add = rand_f(ny), *yr = alloc_f(ny), *y = alloc_f(ny);
    float *work = alloc_f(st_stem_work_size(&g, n));
    for (int act = 0; act <= 2; act++)
        for (int with_add = 0; with_add <= 1; with_add++) {
            st_epilogue e = {scale, shift, with_add ? add : NULL, act, 0.1f};
            reference(yr, x, w, b, n, &g);
            st_epilogue_apply(&e, yr, n, g.cout, (size_t)g.oh * g.ow);
            poison(y, ny);
            st_stem_forward(y, x, w, b, n, &g, work, &e);
            char desc[64];
            snprintf(desc, sizeof desc, "epilogue act=%d add=%d", act, with_add);
            check(desc, y, yr, ny);
        }
    free(work); free(x); free(w); free(b); free(scale); free(shift); free(add); free(yr); free(y);
}

/* ---------------------------------------------------------------- 5. threads */
static void thread_cases(void) {
    static const int shapes[][6] = {/* n, cin, cout, kh, h, w */
                                    {1, 3, 64, 7, 224, 224}, {5, 3, 40, 5, 33, 47}, {3, 1, 16, 7, 61, 60},
                                    {9, 3, 64, 7, 64, 62}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        st_conv_geom g;
        if (!geom(&g, s[1], s[2], s[3], 2, s[3] / 2, 3, s[4], s[5])) { CHECK(0, "thread shape %zu", i); continue; }
        int n = s[0];
        size_t nx = in_size(&g, n), ny = out_size(&g, n), nw = w_size(&g);
        float *x = rand_f(nx), *w = rand_f(nw), *b = rand_f(g.cout), *y[3];
        float *work = alloc_f(st_stem_work_size(&g, n));
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            y[t] = alloc_f(ny);
            st_stem_forward(y[t], x, w, b, n, &g, work, NULL);
        }
        st_set_threads(1);
        for (int t = 1; t < 3; t++)
            CHECK(!memcmp(y[0], y[t], ny * sizeof(float)), "shape %zu: %d threads differ from 1 thread", i, t + 1);
        float *dw[3], *db[3], *bwork = alloc_f(st_stem_backward_work_size(&g, n));
        for (int t = 0; t < 3; t++) {
            st_set_threads(t + 1);
            dw[t] = calloc(nw, sizeof(float));
            db[t] = calloc(g.cout, sizeof(float));
            st_stem_backward(dw[t], db[t], y[0], x, n, &g, bwork);
        }
        st_set_threads(1);
        for (int t = 1; t < 3; t++)
            CHECK(!memcmp(dw[0], dw[t], nw * sizeof(float)) && !memcmp(db[0], db[t], g.cout * sizeof(float)),
                  "shape %zu: backward: %d threads differ from 1 thread", i, t + 1);
        for (int t = 0; t < 3; t++) free(y[t]), free(dw[t]), free(db[t]);
        free(bwork); free(work); free(x); free(w); free(b);
    }
}

int main(void) {
    st_set_threads(1);
    tap_cases();
    random_cases(200);
    resnet_case();
    epilogue_cases();
    thread_cases();
    printf("stem_wino: worst relative error %.2g\n", worst);
    st_set_threads(0);
    return test_done("test_stem_wino");
}
