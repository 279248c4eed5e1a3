/* test_parity.c - the kernels against PyTorch, number for number.
 *
 * Reads tests/fixtures/conv.safetensors and tests/fixtures/dense.safetensors (written by
 * scripts/gen_fixtures.py with PyTorch; run from the repository root) and, for every
 * case, compares the library's results with PyTorch's:
 *   conv:  geometry and output shape, fast and plain forward, fast and plain backward
 *          (dx, dw, db), that the fast backward accumulates and accepts din = NULL,
 *          and the double-precision plain versions;
 *   dense: linear forward/backward, relu, leaky_relu, sigmoid, tanh, cross-entropy
 *          (incl. logits of +-50 and +-1000) and MSE, float and double versions.
 * Tolerance (models.md B11): max |ours - torch| <= 1e-5 * (1 + max |torch|).
 * Also: the lecture's worked 1D example computed by hand, and st_conv_geom_init's
 * rejection of invalid arguments.
 */
#include "internal.h"
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-5
#define CONV_FIXTURE "tests/fixtures/conv.safetensors"
#define DENSE_FIXTURE "tests/fixtures/dense.safetensors"

/* ---------------------------------------------------------------- small helpers */
/* The float32 tensor "<case>.<name>", or NULL (and a failed CHECK) if absent or not F32. */
static const float *getf(const st_tensors *ts, int c, const char *name, size_t *numel,
                         const char *desc) {
    char key[64];
    snprintf(key, sizeof key, "%d.%s", c, name);
    const st_array *a = st_tensors_get(ts, key);
    if (!a || a->dtype != ST_F32) {
        CHECK(0, "%s: fixture tensor %s missing or not float32", desc, key);
        return NULL;
    }
    if (numel) *numel = (size_t)st_array_numel(a);
    return a->data;
}

static const st_array *geta(const st_tensors *ts, int c, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "%d.%s", c, name);
    return st_tensors_get(ts, key);
}

/* ---------------------------------------------------------------- convolution */
static int conv_cases_run;

static void conv_case(const st_tensors *ts, int c) {
    char key[16], desc[256], padtxt[32];
    snprintf(key, sizeof key, "%d", c);
    const char *js = st_tensors_meta(ts, key);
    CHECK(js != NULL, "conv case %d: no metadata", c);
    if (!js) return;
    int dim = 0, cin = 0, cout = 0, groups = 1, bias = 0, n = 0, ih = 0, iw = 0;
    int k[2] = {0, 0}, s[2] = {0, 0}, d[2] = {0, 0}, pad[2] = {0, 0};
    int pad_mode = ST_PAD_EXPLICIT;
    int ok = jint(js, "dim", &dim) && jint(js, "cin", &cin) && jint(js, "cout", &cout) &&
             jint(js, "groups", &groups) && jint(js, "bias", &bias) && jint(js, "n", &n) &&
             jint(js, "ih", &ih) && jint(js, "iw", &iw) && jpair(js, "k", k) &&
             jpair(js, "s", s) && jpair(js, "d", d);
    if (jstr(js, "pad", padtxt, sizeof padtxt)) {
        if (!strcmp(padtxt, "same")) pad_mode = ST_PAD_SAME;
        else if (!strcmp(padtxt, "valid")) pad_mode = ST_PAD_VALID;
        else ok = 0;
    } else if (jpair(js, "pad", pad)) {
        snprintf(padtxt, sizeof padtxt, "%dx%d", pad[0], pad[1]);
    } else ok = 0;
    CHECK(ok, "conv case %d: cannot parse metadata %s", c, js);
    if (!ok) return;
    snprintf(desc, sizeof desc,
             "conv case %d (%dD n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%s bias=%d)",
             c, dim, n, cin, cout, groups, ih, iw, k[0], k[1], s[0], s[1], d[0], d[1], padtxt, bias);

    size_t nx = 0, nw = 0, nb = 0, ny = 0, n_;
    const float *x = getf(ts, c, "x", &nx, desc), *w = getf(ts, c, "w", &nw, desc);
    const float *y = getf(ts, c, "y", &ny, desc), *gy = getf(ts, c, "gy", &n_, desc);
    const float *gx = getf(ts, c, "gx", &n_, desc), *gw = getf(ts, c, "gw", &n_, desc);
    const float *b = NULL, *gb = NULL;
    if (bias) { b = getf(ts, c, "b", &nb, desc); gb = getf(ts, c, "gb", &n_, desc); }
    if (!x || !w || !y || !gy || !gx || !gw || (bias && (!b || !gb))) return;
    const st_array *ya = geta(ts, c, "y");
    int sizes_ok = nx == (size_t)n * cin * ih * iw && nw == (size_t)cout * (cin / groups) * k[0] * k[1] &&
                   (!bias || nb == (size_t)cout) && ya->ndim == dim + 2;
    CHECK(sizes_ok, "%s: fixture tensor sizes do not match the metadata", desc);
    if (!sizes_ok) return;

    st_conv_geom g;
    st_status st = st_conv_geom_init(&g, cin, cout, groups, k, s, d, pad_mode, pad, ih, iw);
    CHECK(st == ST_OK, "%s: st_conv_geom_init failed: %s", desc, st_errmsg());
    if (st != ST_OK) return;
    int eoh = dim == 1 ? 1 : (int)ya->shape[2], eow = (int)ya->shape[dim + 1];
    CHECK(g.oh == eoh && g.ow == eow && ya->shape[0] == n && ya->shape[1] == cout,
          "%s: output shape %dx%d, PyTorch %dx%d", desc, g.oh, g.ow, eoh, eow);
    if (g.oh != eoh || g.ow != eow) return;
    conv_cases_run++;

    size_t wsz = st_conv_work_size(&g, n);
    float *work = xmalloc(wsz * sizeof(float));
    float *out = xmalloc(ny * sizeof(float));
    float *dx = xmalloc(nx * sizeof(float)), *dw = xmalloc(nw * sizeof(float));
    float *db = xmalloc((size_t)cout * sizeof(float));

    /* forward: outputs and scratch start as NaN, so every element must be written
     * and nothing may be read from the scratch before it is written */
    fill_nan(out, ny); fill_nan(work, wsz);
    st_conv_forward(out, x, w, b, n, &g, work);
    cmp(out, y, ny, desc, "fast forward");
    fill_nan(out, ny);
    st_conv_forward_ref(out, x, w, b, n, &g);
    cmp(out, y, ny, desc, "ref forward");

    /* fast backward (accumulates: start from zero) */
    memset(dx, 0, nx * sizeof(float)); memset(dw, 0, nw * sizeof(float));
    memset(db, 0, (size_t)cout * sizeof(float));
    fill_nan(work, wsz);
    st_conv_backward(dx, dw, bias ? db : NULL, gy, x, w, n, &g, work);
    cmp(dx, gx, nx, desc, "fast backward dx");
    cmp(dw, gw, nw, desc, "fast backward dw");
    if (bias) cmp(db, gb, (size_t)cout, desc, "fast backward db");
    /* a second call adds the same gradients again */
    fill_nan(work, wsz);
    st_conv_backward(dx, dw, bias ? db : NULL, gy, x, w, n, &g, work);
    {
        float *t2 = xmalloc((nx + nw + cout) * sizeof(float));
        float *g2 = xmalloc((nx + nw + cout) * sizeof(float));
        memcpy(t2, dx, nx * sizeof(float)); memcpy(t2 + nx, dw, nw * sizeof(float));
        for (size_t i = 0; i < nx; i++) g2[i] = 2 * gx[i];
        for (size_t i = 0; i < nw; i++) g2[nx + i] = 2 * gw[i];
        size_t tot = nx + nw;
        if (bias) {
            memcpy(t2 + tot, db, (size_t)cout * sizeof(float));
            for (int i = 0; i < cout; i++) g2[tot + i] = 2 * gb[i];
            tot += (size_t)cout;
        }
        cmp(t2, g2, tot, desc, "fast backward accumulates (2 calls = 2x gradients)");
        free(t2); free(g2);
    }
    /* din = NULL, db = NULL: the weight gradient alone */
    memset(dw, 0, nw * sizeof(float));
    fill_nan(work, wsz);
    st_conv_backward(NULL, dw, NULL, gy, x, w, n, &g, work);
    cmp(dw, gw, nw, desc, "fast backward dw with din = db = NULL");

    /* plain backward */
    memset(dx, 0, nx * sizeof(float)); memset(dw, 0, nw * sizeof(float));
    memset(db, 0, (size_t)cout * sizeof(float));
    st_conv_backward_ref(dx, dw, bias ? db : NULL, gy, x, w, n, &g);
    cmp(dx, gx, nx, desc, "ref backward dx");
    cmp(dw, gw, nw, desc, "ref backward dw");
    if (bias) cmp(db, gb, (size_t)cout, desc, "ref backward db");

    /* double-precision plain versions */
    CHECK_LAYER_F64(st_conv_forward_ref_f64, st_conv_backward_ref_f64, &g, n, bias, x, w, b, gy, y, gx, gw, gb,
                    nx, nw, ny, cout, desc);
    free(work); free(out); free(dx); free(dw); free(db);
}

static void conv_fixtures(void) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status st = st_safetensors_load(CONV_FIXTURE, &ts);
    CHECK(st == ST_OK, "cannot load %s: %s", CONV_FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cnt = st_tensors_meta(&ts, "count"), *ver = st_tensors_meta(&ts, "torch");
    int count = cnt ? atoi(cnt) : 0;
    CHECK(count > 0, "%s: no case count in the metadata", CONV_FIXTURE);
    for (int c = 0; c < count; c++) conv_case(&ts, c);
    printf("conv: %d of %d PyTorch %s cases compared\n", conv_cases_run, count, ver ? ver : "?");
    st_tensors_free(&ts);
}

/* ---------------------------------------------------------------- the worked example
 * Lecture example: the full convolution of f = [3,4,5] with g = [1,2,3,4,5] is
 * [3,10,22,34,46,40,25] (by hand: 3*1; 3*2+4*1; 3*3+4*2+5*1; ...). A conv layer computes
 * a cross-correlation, so the full convolution is obtained with the flipped kernel
 * [5,4,3] and padding k-1 = 2. With the unflipped kernel the cross-correlation is
 * [5,14,26,38,50,32,15] (e.g. first = 5*1, last = 3*5, middle = 3*3+4*4+5*5 = 50). */
static void worked_example(void) {
    const float sig[5] = {1, 2, 3, 4, 5};
    const float flipped[3] = {5, 4, 3}, unflipped[3] = {3, 4, 5};
    const float full_conv[7] = {3, 10, 22, 34, 46, 40, 25};
    const float xcorr[7] = {5, 14, 26, 38, 50, 32, 15};
    st_conv_geom g;
    int k[2] = {1, 3}, s[2] = {1, 1}, d[2] = {1, 1}, pad[2] = {0, 2};
    st_status st = st_conv_geom_init(&g, 1, 1, 1, k, s, d, ST_PAD_EXPLICIT, pad, 1, 5);
    CHECK(st == ST_OK && g.oh == 1 && g.ow == 7, "worked example: geometry (status %d, out %dx%d)",
          (int)st, g.oh, g.ow);
    if (st != ST_OK || g.ow != 7 || g.oh != 1) return;
    size_t wsz = st_conv_work_size(&g, 1);
    float *work = xmalloc(wsz * sizeof(float)), out[7];
    fill_nan(out, 7);
    st_conv_forward(out, sig, flipped, NULL, 1, &g, work);
    CHECK(test_maxdiff(out, full_conv, 7) <= 1e-6,
          "worked example: f*g with flipped kernel = [%g %g %g %g %g %g %g], want [3 10 22 34 46 40 25]",
          out[0], out[1], out[2], out[3], out[4], out[5], out[6]);
    fill_nan(out, 7);
    st_conv_forward(out, sig, unflipped, NULL, 1, &g, work);
    CHECK(test_maxdiff(out, xcorr, 7) <= 1e-6,
          "worked example: cross-correlation = [%g %g %g %g %g %g %g], want [5 14 26 38 50 32 15]",
          out[0], out[1], out[2], out[3], out[4], out[5], out[6]);
    fill_nan(out, 7);
    st_conv_forward_ref(out, sig, flipped, NULL, 1, &g);
    CHECK(test_maxdiff(out, full_conv, 7) <= 1e-6, "worked example: ref forward with flipped kernel");
    /* the same with a bias of 1 and 'same' padding (the middle 5 outputs, plus 1) */
    st = st_conv_geom_init(&g, 1, 1, 1, k, s, d, ST_PAD_SAME, pad, 1, 5);
    CHECK(st == ST_OK && g.ow == 5 && g.pl == 1 && g.pr == 1, "worked example: 'same' geometry");
    if (st == ST_OK && g.ow == 5) {
        const float one = 1, want[5] = {11, 23, 35, 47, 41};
        float *work2 = xmalloc(st_conv_work_size(&g, 1) * sizeof(float));
        fill_nan(out, 5);
        st_conv_forward(out, sig, flipped, &one, 1, &g, work2);
        CHECK(test_maxdiff(out, want, 5) <= 1e-6,
              "worked example 'same' + bias: [%g %g %g %g %g], want [11 23 35 47 41]",
              out[0], out[1], out[2], out[3], out[4]);
        free(work2);
    }
    free(work);
}

/* ---------------------------------------------------------------- geometry */
static void geometry(void) {
    st_conv_geom g;
    int s1[2] = {1, 1}, d1[2] = {1, 1}, p0[2] = {0, 0};
    struct {
        const char *what;
        int cin, cout, groups, k[2], s[2], d[2], mode, pad[2], ih, iw;
    } bad[] = {
        {"'same' with stride 2 (1D)", 2, 2, 1, {1, 3}, {1, 2}, {1, 1}, ST_PAD_SAME, {0, 0}, 1, 10},
        {"'same' with stride 2 (2D, H only)", 2, 2, 1, {3, 3}, {2, 1}, {1, 1}, ST_PAD_SAME, {0, 0}, 8, 8},
        {"'same' with stride 3 (2D, W only)", 2, 2, 1, {3, 3}, {1, 3}, {1, 1}, ST_PAD_SAME, {0, 0}, 8, 8},
        {"groups=2 does not divide in_channels=3", 3, 4, 2, {1, 3}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 10},
        {"groups=2 does not divide out_channels=3", 4, 3, 2, {1, 3}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 10},
        {"groups=4 > in_channels=2", 2, 4, 4, {3, 3}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 5, 5},
        {"groups=0", 2, 2, 0, {1, 3}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 10},
        {"kernel 5 > input 3, no padding", 1, 1, 1, {1, 5}, {1, 1}, {1, 1}, ST_PAD_EXPLICIT, {0, 0}, 1, 3},
        {"kernel 5 > input 3 + 2*0 ('valid')", 1, 1, 1, {1, 5}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 3},
        {"kernel 6 > input 3 + 2*1", 1, 1, 1, {1, 6}, {1, 1}, {1, 1}, ST_PAD_EXPLICIT, {0, 1}, 1, 3},
        {"dilated kernel 3 (span 7) > input 5", 1, 1, 1, {1, 3}, {1, 1}, {1, 3}, ST_PAD_VALID, {0, 0}, 1, 5},
        {"2D kernel height 4 > input height 3", 2, 2, 1, {4, 1}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 3, 9},
        {"stride 0", 1, 1, 1, {1, 3}, {1, 0}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 9},
        {"dilation 0", 1, 1, 1, {1, 3}, {1, 1}, {1, 0}, ST_PAD_VALID, {0, 0}, 1, 9},
        {"kernel 0", 1, 1, 1, {1, 0}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 9},
        {"negative padding", 1, 1, 1, {1, 3}, {1, 1}, {1, 1}, ST_PAD_EXPLICIT, {0, -1}, 1, 9},
        {"0 input channels", 0, 1, 1, {1, 3}, {1, 1}, {1, 1}, ST_PAD_VALID, {0, 0}, 1, 9},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_status st = st_conv_geom_init(&g, bad[i].cin, bad[i].cout, bad[i].groups, bad[i].k, bad[i].s,
                                         bad[i].d, bad[i].mode, bad[i].pad, bad[i].ih, bad[i].iw);
        CHECK(st != ST_OK, "st_conv_geom_init accepted %s", bad[i].what);
        CHECK(st == ST_OK || st_errmsg()[0] != 0, "st_conv_geom_init: no error text for %s", bad[i].what);
    }
    /* boundary cases that are valid: output size exactly 1 */
    int k5[2] = {1, 5}, k3[2] = {1, 3}, d3[2] = {1, 3}, p1[2] = {0, 1};
    CHECK(st_conv_geom_init(&g, 1, 1, 1, k5, s1, d1, ST_PAD_VALID, p0, 1, 5) == ST_OK && g.ow == 1,
          "kernel 5 on input 5: want output length 1");
    CHECK(st_conv_geom_init(&g, 1, 1, 1, k5, s1, d1, ST_PAD_EXPLICIT, p1, 1, 3) == ST_OK && g.ow == 1,
          "kernel 5 on input 3 padded by 1: want output length 1");
    CHECK(st_conv_geom_init(&g, 1, 1, 1, k3, s1, d3, ST_PAD_VALID, p0, 1, 7) == ST_OK && g.ow == 1,
          "kernel 3 dilation 3 on input 7: want output length 1");
    /* PyTorch's 'same' split (models.md B1): k=4 d=1 -> 1 left, 2 right; k=4 d=3 -> 4, 5 */
    int k4[2] = {4, 4}, d13[2] = {1, 3};
    st_status st = st_conv_geom_init(&g, 2, 2, 1, k4, s1, d13, ST_PAD_SAME, p0, 7, 9);
    CHECK(st == ST_OK && g.pt == 1 && g.pb == 2 && g.pl == 4 && g.pr == 5 && g.oh == 7 && g.ow == 9,
          "'same' k=4x4 d=1x3: padding t%d b%d l%d r%d out %dx%d, want t1 b2 l4 r5 out 7x9",
          g.pt, g.pb, g.pl, g.pr, g.oh, g.ow);
    /* explicit padding and stride: floor((10 + 2*2 - 2*(3-1) - 1)/3) + 1 = 4 */
    int k33[2] = {1, 3}, s3[2] = {1, 3}, d2[2] = {1, 2}, p2[2] = {0, 2};
    st = st_conv_geom_init(&g, 1, 1, 1, k33, s3, d2, ST_PAD_EXPLICIT, p2, 1, 10);
    CHECK(st == ST_OK && g.oh == 1 && g.ow == 4 && g.pl == 2 && g.pr == 2,
          "1D k=3 s=3 d=2 p=2 on 10: out %d, want 4", g.ow);
}

/* ---------------------------------------------------------------- dense */
static int dense_cases_run;

static int act_of(const char *name, st_act *a) {
    if (!strcmp(name, "relu")) *a = ST_ACT_RELU;
    else if (!strcmp(name, "leaky_relu")) *a = ST_ACT_LEAKY_RELU;
    else if (!strcmp(name, "sigmoid")) *a = ST_ACT_SIGMOID;
    else if (!strcmp(name, "tanh")) *a = ST_ACT_TANH;
    else return 0;
    return 1;
}

static void dense_linear(const st_tensors *ts, int c, const char *js, char *desc, size_t dlen) {
    int n, in, out, bias;
    if (!(jint(js, "n", &n) && jint(js, "in", &in) && jint(js, "out", &out) && jint(js, "bias", &bias))) {
        CHECK(0, "dense case %d: cannot parse %s", c, js);
        return;
    }
    snprintf(desc, dlen, "dense case %d (linear n=%d in=%d out=%d bias=%d)", c, n, in, out, bias);
    size_t nx, nw, ny, t;
    const float *x = getf(ts, c, "x", &nx, desc), *w = getf(ts, c, "w", &nw, desc);
    const float *y = getf(ts, c, "y", &ny, desc), *gy = getf(ts, c, "gy", &t, desc);
    const float *gx = getf(ts, c, "gx", &t, desc), *gw = getf(ts, c, "gw", &t, desc);
    const float *b = bias ? getf(ts, c, "b", &t, desc) : NULL, *gb = bias ? getf(ts, c, "gb", &t, desc) : NULL;
    if (!x || !w || !y || !gy || !gx || !gw || (bias && (!b || !gb))) return;
    int sizes_ok = nx == (size_t)n * in && nw == (size_t)out * in && ny == (size_t)n * out;
    CHECK(sizes_ok, "%s: fixture sizes do not match the metadata", desc);
    if (!sizes_ok) return;
    dense_cases_run++;
    float *yy = xmalloc(ny * sizeof(float)), *dx = calloc(nx, sizeof(float));
    float *dw = calloc(nw, sizeof(float)), *db = calloc((size_t)out, sizeof(float));
    fill_nan(yy, ny);
    st_linear_forward(yy, x, w, b, n, in, out);
    cmp(yy, y, ny, desc, "forward");
    st_linear_backward(dx, dw, bias ? db : NULL, gy, x, w, n, in, out);
    cmp(dx, gx, nx, desc, "backward dx");
    cmp(dw, gw, nw, desc, "backward dw");
    if (bias) cmp(db, gb, (size_t)out, desc, "backward db");

    double *x64 = to_f64(x, nx), *w64 = to_f64(w, nw), *gy64 = to_f64(gy, ny);
    double *b64 = bias ? to_f64(b, (size_t)out) : NULL, *y64 = xmalloc(ny * sizeof(double));
    double *dx64 = calloc(nx, sizeof(double)), *dw64 = calloc(nw, sizeof(double));
    double *db64 = calloc((size_t)out, sizeof(double));
    st_linear_forward_f64(y64, x64, w64, b64, n, in, out);
    cmp_f64(y64, y, ny, desc, "f64 forward");
    st_linear_backward_f64(dx64, dw64, bias ? db64 : NULL, gy64, x64, w64, n, in, out);
    cmp_f64(dx64, gx, nx, desc, "f64 backward dx");
    cmp_f64(dw64, gw, nw, desc, "f64 backward dw");
    if (bias) cmp_f64(db64, gb, (size_t)out, desc, "f64 backward db");
    free(yy); free(dx); free(dw); free(db);
    free(x64); free(w64); free(gy64); free(b64); free(y64); free(dx64); free(dw64); free(db64);
}

static void dense_act(const st_tensors *ts, int c, const char *js, char *desc, size_t dlen) {
    char name[32];
    double slope = 0;
    st_act a;
    if (!(jstr(js, "act", name, sizeof name) && jnum(js, "slope", &slope) && act_of(name, &a))) {
        CHECK(0, "dense case %d: cannot parse %s", c, js);
        return;
    }
    size_t n, t;
    const float *x = getf(ts, c, "x", &n, desc), *y = getf(ts, c, "y", &t, desc);
    const float *gy = getf(ts, c, "gy", &t, desc), *gx = getf(ts, c, "gx", &t, desc);
    if (!x || !y || !gy || !gx) return;
    snprintf(desc, dlen, "dense case %d (%s slope=%g, %zu elements)", c, name, slope, n);
    dense_cases_run++;
    float *yy = xmalloc(n * sizeof(float)), *dx = xmalloc(n * sizeof(float));
    fill_nan(yy, n);
    st_act_forward(a, (float)slope, yy, x, n);
    cmp(yy, y, n, desc, "forward");
    /* backward from PyTorch's y, accumulating into zeros, then into ones */
    memset(dx, 0, n * sizeof(float));
    st_act_backward(a, (float)slope, dx, gy, x, y, n);
    cmp(dx, gx, n, desc, "backward");
    for (size_t i = 0; i < n; i++) dx[i] = 1;
    st_act_backward(a, (float)slope, dx, gy, x, y, n);
    for (size_t i = 0; i < n; i++) dx[i] -= 1;
    cmp(dx, gx, n, desc, "backward accumulates (dx += ...)");

    double *x64 = to_f64(x, n), *y64 = xmalloc(n * sizeof(double));
    double *gy64 = to_f64(gy, n), *dx64 = calloc(n, sizeof(double));
    st_act_forward_f64(a, slope, y64, x64, n);
    cmp_f64(y64, y, n, desc, "f64 forward");
    st_act_backward_f64(a, slope, dx64, gy64, x64, y64, n);
    cmp_f64(dx64, gx, n, desc, "f64 backward");
    free(yy); free(dx); free(x64); free(y64); free(gy64); free(dx64);
}

static int32_t *labels_of(const st_array *a) {
    if (!a || (a->dtype != ST_I64 && a->dtype != ST_I32)) return NULL;
    int64_t n = st_array_numel(a);
    int32_t *l = xmalloc((size_t)n * sizeof(int32_t));
    for (int64_t i = 0; i < n; i++)
        l[i] = a->dtype == ST_I64 ? (int32_t)((const int64_t *)a->data)[i] : ((const int32_t *)a->data)[i];
    return l;
}

static void dense_ce(const st_tensors *ts, int c, const char *js, char *desc, size_t dlen) {
    int n, k;
    char kind[32] = "?";
    if (!(jint(js, "n", &n) && jint(js, "c", &k))) {
        CHECK(0, "dense case %d: cannot parse %s", c, js);
        return;
    }
    jstr(js, "kind", kind, sizeof kind);
    snprintf(desc, dlen, "dense case %d (cross-entropy n=%d c=%d %s)", c, n, k, kind);
    size_t nz, t;
    const float *z = getf(ts, c, "x", &nz, desc), *loss = getf(ts, c, "loss", &t, desc);
    const float *gz = getf(ts, c, "gx", &t, desc);
    const st_array *la = geta(ts, c, "labels");
    int32_t *lab = labels_of(la);
    CHECK(lab && st_array_numel(la) == n, "%s: labels missing or not integer", desc);
    if (!z || !loss || !gz || !lab) { free(lab); return; }
    dense_cases_run++;
    float *dz = xmalloc(nz * sizeof(float));
    fill_nan(dz, nz);
    double L = st_cross_entropy(z, lab, n, k, dz);
    CHECK(fabs(L - loss[0]) <= TOL * (1 + fabs(loss[0])), "%s: loss %.9g, PyTorch %.9g", desc, L, loss[0]);
    cmp(dz, gz, nz, desc, "dlogits");
    double L2 = st_cross_entropy(z, lab, n, k, NULL);
    CHECK(L2 == L, "%s: loss without dlogits %.9g differs from %.9g", desc, L2, L);

    double *z64 = to_f64(z, nz), *dz64 = xmalloc(nz * sizeof(double));
    double L64 = st_cross_entropy_f64(z64, lab, n, k, dz64);
    CHECK(fabs(L64 - loss[0]) <= TOL * (1 + fabs(loss[0])), "%s: f64 loss %.9g, PyTorch %.9g", desc, L64, loss[0]);
    cmp_f64(dz64, gz, nz, desc, "f64 dlogits");
    free(dz); free(lab); free(z64); free(dz64);
}

static void dense_mse(const st_tensors *ts, int c, char *desc, size_t dlen) {
    size_t n, t;
    snprintf(desc, dlen, "dense case %d (mse)", c);
    const float *y = getf(ts, c, "x", &n, desc), *tg = getf(ts, c, "t", &t, desc);
    const float *loss = getf(ts, c, "loss", &t, desc), *gy = getf(ts, c, "gx", &t, desc);
    if (!y || !tg || !loss || !gy) return;
    snprintf(desc, dlen, "dense case %d (mse, %zu elements)", c, n);
    dense_cases_run++;
    float *dy = xmalloc(n * sizeof(float));
    fill_nan(dy, n);
    double L = st_mse(y, tg, n, dy);
    CHECK(fabs(L - loss[0]) <= TOL * (1 + fabs(loss[0])), "%s: loss %.9g, PyTorch %.9g", desc, L, loss[0]);
    cmp(dy, gy, n, desc, "gradient");
    double *y64 = to_f64(y, n), *t64 = to_f64(tg, n), *dy64 = xmalloc(n * sizeof(double));
    double L64 = st_mse_f64(y64, t64, n, dy64);
    CHECK(fabs(L64 - loss[0]) <= TOL * (1 + fabs(loss[0])), "%s: f64 loss %.9g, PyTorch %.9g", desc, L64, loss[0]);
    cmp_f64(dy64, gy, n, desc, "f64 gradient");
    free(dy); free(y64); free(t64); free(dy64);
}

static void dense_fixtures(void) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status st = st_safetensors_load(DENSE_FIXTURE, &ts);
    CHECK(st == ST_OK, "cannot load %s: %s", DENSE_FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cnt = st_tensors_meta(&ts, "count");
    int count = cnt ? atoi(cnt) : 0;
    CHECK(count > 0, "%s: no case count in the metadata", DENSE_FIXTURE);
    for (int c = 0; c < count; c++) {
        char key[16], op[16], desc[256];
        snprintf(key, sizeof key, "%d", c);
        snprintf(desc, sizeof desc, "dense case %d", c);
        const char *js = st_tensors_meta(&ts, key);
        CHECK(js && jstr(js, "op", op, sizeof op), "dense case %d: no metadata", c);
        if (!js || !jstr(js, "op", op, sizeof op)) continue;
        if (!strcmp(op, "linear")) dense_linear(&ts, c, js, desc, sizeof desc);
        else if (!strcmp(op, "act")) dense_act(&ts, c, js, desc, sizeof desc);
        else if (!strcmp(op, "ce")) dense_ce(&ts, c, js, desc, sizeof desc);
        else if (!strcmp(op, "mse")) dense_mse(&ts, c, desc, sizeof desc);
        else CHECK(0, "dense case %d: unknown op %s", c, op);
    }
    printf("dense: %d of %d cases compared\n", dense_cases_run, count);
    st_tensors_free(&ts);
}

int main(void) {
    worked_example();
    geometry();
    conv_fixtures();
    dense_fixtures();
    return test_done("test_parity");
}
