/* test_conv_transpose.c - the transposed convolution (src/conv_transpose.c).
 *
 *  - PyTorch fixtures (tests/fixtures/conv_transpose.safetensors, written by
 *    scripts/gen_convt_fixtures.py; run from the repository root): geometry and output
 *    shape, fast forward and backward (dx, dw, db) on both convolution paths and by the
 *    rule, that backward accumulates and accepts din = db = NULL, the plain float and
 *    double versions. Tolerance: max |ours - torch| <= 1e-5 * (1 + max |torch|).
 *  - finite differences (central, in double) of L = <gy, convT(x; w, b)> on the _f64
 *    versions for 30 random geometries;
 *  - the adjoint identity <convT(x), y> = <x, conv(y)>, conv being an independently
 *    built convolution (cropped to the transposed input size when output_padding >=
 *    stride), for random geometries, in double and with the fast float versions;
 *  - fast against plain versions for random geometries and batches up to 19;
 *  - the matrix-product path (kernel = stride, no padding) against the plain versions on
 *    random shapes with several chunks and parts, groups, 1D and 2D, accumulation onto
 *    ones, din = db = NULL, and bit-identical results for 1 and 2 threads;
 *  - st_convt_geom_init's rejection of invalid arguments (output_padding too large...).
 */
#include "conv_transpose.h"
#include "kernels.h"
#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#define TOL 1e-5
#define FIXTURE "tests/fixtures/conv_transpose.safetensors"

static const float *getf(const st_tensors *ts, int c, const char *name, size_t *numel, const char *desc) {
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

/* ---------------------------------------------------------------- fixtures */
static int cases_run;

/* The fast versions on the current path choice. */
static void fast_checks(const st_convt_geom *g, int n, int bias, const float *x, const float *w,
                        const float *b, const float *y, const float *gy, const float *gx,
                        const float *gw, const float *gb, size_t nx, size_t nw, size_t ny,
                        const char *desc, const char *path) {
    char what[96];
    int cout = g->cout;
    size_t wsz = st_convt_work_size(g, n);
    float *work = xmalloc(wsz * sizeof(float)), *out = xmalloc(ny * sizeof(float));
    float *dx = xmalloc(nx * sizeof(float)), *dw = xmalloc(nw * sizeof(float));
    float *db = xmalloc((size_t)cout * sizeof(float));

    fill_nan(out, ny); fill_nan(work, wsz);
    st_convt_forward(out, x, w, b, n, g, work);
    snprintf(what, sizeof what, "fast forward (%s)", path);
    cmp(out, y, ny, desc, what);

    memset(dx, 0, nx * sizeof(float)); memset(dw, 0, nw * sizeof(float));
    memset(db, 0, (size_t)cout * sizeof(float));
    fill_nan(work, wsz);
    st_convt_backward(dx, dw, bias ? db : NULL, gy, x, w, n, g, work);
    snprintf(what, sizeof what, "fast backward dx (%s)", path); cmp(dx, gx, nx, desc, what);
    snprintf(what, sizeof what, "fast backward dw (%s)", path); cmp(dw, gw, nw, desc, what);
    if (bias) { snprintf(what, sizeof what, "fast backward db (%s)", path); cmp(db, gb, (size_t)cout, desc, what); }

    /* a second call adds the same gradients again */
    fill_nan(work, wsz);
    st_convt_backward(dx, dw, bias ? db : NULL, gy, x, w, n, g, work);
    {
        size_t tot = nx + nw + (size_t)cout;
        float *t2 = xmalloc(tot * sizeof(float)), *g2 = xmalloc(tot * sizeof(float));
        memcpy(t2, dx, nx * sizeof(float)); memcpy(t2 + nx, dw, nw * sizeof(float));
        for (size_t i = 0; i < nx; i++) g2[i] = 2 * gx[i];
        for (size_t i = 0; i < nw; i++) g2[nx + i] = 2 * gw[i];
        tot = nx + nw;
        if (bias) {
            memcpy(t2 + tot, db, (size_t)cout * sizeof(float));
            for (int i = 0; i < cout; i++) g2[tot + i] = 2 * gb[i];
            tot += (size_t)cout;
        }
        snprintf(what, sizeof what, "fast backward accumulates (%s)", path);
        cmp(t2, g2, tot, desc, what);
        free(t2); free(g2);
    }
    /* din = NULL, db = NULL: the weight gradient alone */
    memset(dw, 0, nw * sizeof(float));
    fill_nan(work, wsz);
    st_convt_backward(NULL, dw, NULL, gy, x, w, n, g, work);
    snprintf(what, sizeof what, "fast backward dw with din = db = NULL (%s)", path);
    cmp(dw, gw, nw, desc, what);
    free(work); free(out); free(dx); free(dw); free(db);
}

static void fixture_case(const st_tensors *ts, int c) {
    char key[16], desc[320];
    snprintf(key, sizeof key, "%d", c);
    const char *js = st_tensors_meta(ts, key);
    CHECK(js != NULL, "case %d: no metadata", c);
    if (!js) return;
    int dim = 0, cin = 0, cout = 0, groups = 1, bias = 0, n = 0, ih = 0, iw = 0, eoh = 0, eow = 0;
    int k[2], s[2], d[2], pad[2], op[2];
    int ok = jint(js, "dim", &dim) && jint(js, "cin", &cin) && jint(js, "cout", &cout) &&
             jint(js, "groups", &groups) && jint(js, "bias", &bias) && jint(js, "n", &n) &&
             jint(js, "ih", &ih) && jint(js, "iw", &iw) && jint(js, "oh", &eoh) && jint(js, "ow", &eow) &&
             jpair(js, "k", k) && jpair(js, "s", s) && jpair(js, "d", d) && jpair(js, "pad", pad) &&
             jpair(js, "op", op);
    CHECK(ok, "case %d: cannot parse metadata %s", c, js);
    if (!ok) return;
    snprintf(desc, sizeof desc,
             "convT case %d (%dD n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%dx%d op=%dx%d bias=%d)",
             c, dim, n, cin, cout, groups, ih, iw, k[0], k[1], s[0], s[1], d[0], d[1], pad[0], pad[1],
             op[0], op[1], bias);

    size_t nx = 0, nw = 0, nb = 0, ny = 0, ngy = 0, ngx = 0, ngw = 0, ngb = 0;
    const float *x = getf(ts, c, "x", &nx, desc), *w = getf(ts, c, "w", &nw, desc);
    const float *y = getf(ts, c, "y", &ny, desc), *gy = getf(ts, c, "gy", &ngy, desc);
    const float *gx = getf(ts, c, "gx", &ngx, desc), *gw = getf(ts, c, "gw", &ngw, desc);
    const float *b = NULL, *gb = NULL;
    if (bias) { b = getf(ts, c, "b", &nb, desc); gb = getf(ts, c, "gb", &ngb, desc); }
    if (!x || !w || !y || !gy || !gx || !gw || (bias && (!b || !gb))) return;
    const st_array *ya = st_tensors_get(ts, (snprintf(key, sizeof key, "%d.y", c), key));
    int sizes_ok = nx == (size_t)n * cin * ih * iw && nw == (size_t)cin * (cout / groups) * k[0] * k[1] &&
                   ny == (size_t)n * cout * eoh * eow && ngy == ny && ngx == nx && ngw == nw &&
                   (!bias || (nb == (size_t)cout && ngb == nb)) && ya && ya->ndim == dim + 2;
    CHECK(sizes_ok, "%s: fixture tensor sizes do not match the metadata", desc);
    if (!sizes_ok) return;

    st_convt_geom g;
    st_status st = st_convt_geom_init(&g, cin, cout, groups, k, s, d, pad, op, ih, iw);
    CHECK(st == ST_OK, "%s: st_convt_geom_init failed: %s", desc, st_errmsg());
    if (st != ST_OK) return;
    int toh = dim == 1 ? 1 : (int)ya->shape[2], tow = (int)ya->shape[dim + 1];
    CHECK(g.oh == toh && g.ow == tow && ya->shape[0] == n && ya->shape[1] == cout,
          "%s: output shape %dx%d, PyTorch %dx%d", desc, g.oh, g.ow, toh, tow);
    if (g.oh != toh || g.ow != tow) return;
    cases_run++;

    fast_checks(&g, n, bias, x, w, b, y, gy, gx, gw, gb, nx, nw, ny, desc, "by the rule");
    st_conv_force_path(0);
    fast_checks(&g, n, bias, x, w, b, y, gy, gx, gw, gb, nx, nw, ny, desc, "im2col");
    st_conv_force_path(1);
    fast_checks(&g, n, bias, x, w, b, y, gy, gx, gw, gb, nx, nw, ny, desc, "direct if possible");
    st_conv_force_path(-1);

    float *out = xmalloc(ny * sizeof(float));
    float *dx = calloc(nx, sizeof(float)), *dw = calloc(nw, sizeof(float));
    float *db = calloc((size_t)cout, sizeof(float));
    fill_nan(out, ny);
    st_convt_forward_ref(out, x, w, b, n, &g);
    cmp(out, y, ny, desc, "ref forward");
    st_convt_backward_ref(dx, dw, bias ? db : NULL, gy, x, w, n, &g);
    cmp(dx, gx, nx, desc, "ref backward dx");
    cmp(dw, gw, nw, desc, "ref backward dw");
    if (bias) cmp(db, gb, (size_t)cout, desc, "ref backward db");

    CHECK_LAYER_F64(st_convt_forward_ref_f64, st_convt_backward_ref_f64, &g, n, bias, x, w, b, gy, y, gx, gw, gb,
                    nx, nw, ny, cout, desc);
    free(out); free(dx); free(dw); free(db);
}

static void fixtures(void) {
    st_tensors ts;
    st_status st = st_safetensors_load(FIXTURE, &ts);
    CHECK(st == ST_OK, "cannot load %s: %s", FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cnt = st_tensors_meta(&ts, "count"), *ver = st_tensors_meta(&ts, "torch");
    int count = cnt ? atoi(cnt) : 0;
    CHECK(count >= 100, "%s: only %d cases", FIXTURE, count);
    for (int c = 0; c < count; c++) fixture_case(&ts, c);
    CHECK(cases_run == count, "only %d of %d fixture cases ran", cases_run, count);
    printf("conv_transpose: %d of %d PyTorch %s cases compared\n", cases_run, count, ver ? ver : "?");
    st_tensors_free(&ts);
}

/* ---------------------------------------------------------------- random geometries */
typedef struct { int dim, cin, cout, groups, n, ih, iw, k[2], s[2], d[2], pad[2], op[2]; } rgeom;

static int rint_(st_rng *r, int lo, int hi) { return lo + (int)st_rng_below(r, (uint32_t)(hi - lo + 1)); }

/* A random valid geometry (max_n: largest batch). */
static rgeom random_geom(st_rng *r, int max_n, st_convt_geom *g) {
    for (;;) {
        rgeom q;
        memset(&q, 0, sizeof q);
        q.dim = rint_(r, 1, 2);
        int mode = rint_(r, 0, 3);
        q.groups = mode == 0 ? 1 : mode == 1 ? 2 : rint_(r, 2, 4);
        int cpg = rint_(r, 1, 3), opg = mode >= 2 ? (mode == 2 ? 1 : 2) : rint_(r, 1, 3);
        if (mode >= 2) cpg = 1;
        q.cin = cpg * q.groups; q.cout = opg * q.groups;
        q.n = rint_(r, 1, max_n);
        for (int a = 0; a < 2; a++) {
            if (a == 0 && q.dim == 1) { q.k[a] = q.s[a] = q.d[a] = 1; q.pad[a] = q.op[a] = 0; continue; }
            q.k[a] = rint_(r, 1, 5); q.s[a] = rint_(r, 1, 3); q.d[a] = rint_(r, 1, 3);
            q.pad[a] = rint_(r, 0, 2);
            int lim = q.s[a] > q.d[a] ? q.s[a] : q.d[a];
            q.op[a] = rint_(r, 0, lim - 1 < 2 ? lim - 1 : 2);
        }
        q.ih = q.dim == 1 ? 1 : rint_(r, 1, 6);
        q.iw = rint_(r, 1, q.dim == 1 ? 10 : 6);
        if (st_convt_geom_init(g, q.cin, q.cout, q.groups, q.k, q.s, q.d, q.pad, q.op, q.ih, q.iw) == ST_OK)
            return q;
    }
}

static void rgeom_desc(const rgeom *q, char *buf, size_t len) {
    snprintf(buf, len, "%dD n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d s=%dx%d d=%dx%d pad=%dx%d op=%dx%d",
             q->dim, q->n, q->cin, q->cout, q->groups, q->ih, q->iw, q->k[0], q->k[1], q->s[0], q->s[1],
             q->d[0], q->d[1], q->pad[0], q->pad[1], q->op[0], q->op[1]);
}

static void fill_rand(double *p, size_t n, st_rng *r) { for (size_t i = 0; i < n; i++) p[i] = 2 * st_rng_uniform(r) - 1; }

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* L(x, w, b) = <gy, convT(x; w, b)> in double */
static double loss64(const double *x, const double *w, const double *b, const double *gy, double *y,
                     int n, const st_convt_geom *g, size_t ny) {
    st_convt_forward_ref_f64(y, x, w, b, n, g);
    return dot(y, gy, ny);
}

/* Central differences of L against the analytic gradients, for every element (the sizes
 * are small). L is linear in each of x, w, b, so the difference quotient is exact up to
 * rounding: a tight tolerance. */
static void fd_check(const double *ana, double *param, size_t np, double h, const double *x, const double *w,
                     const double *b, const double *gy, double *y, int n, const st_convt_geom *g, size_t ny,
                     const char *desc, const char *what) {
    double maxerr = 0, maxref = 0;
    for (size_t i = 0; i < np; i++) {
        double v = param[i];
        param[i] = v + h;
        double lp = loss64(x, w, b, gy, y, n, g, ny);
        param[i] = v - h;
        double lm = loss64(x, w, b, gy, y, n, g, ny);
        param[i] = v;
        double num = (lp - lm) / (2 * h), e = fabs(num - ana[i]);
        if (e > maxerr || e != e) maxerr = e != e ? INFINITY : e;
        if (fabs(num) > maxref) maxref = fabs(num);
    }
    CHECK(maxerr <= 1e-8 * (1 + maxref), "%s: finite differences of %s: max error %.3g (max |grad| %.3g)",
          desc, what, maxerr, maxref);
}

static void finite_differences(void) {
    st_rng r;
    st_rng_seed(&r, 1234);
    int cases = 0;
    for (int t = 0; t < 30; t++) {
        st_convt_geom g;
        rgeom q = random_geom(&r, 2, &g);
        char desc[256];
        rgeom_desc(&q, desc, sizeof desc);
        size_t nx = (size_t)q.n * g.cin * g.ih * g.iw, nw = (size_t)g.cin * (g.cout / g.groups) * g.kh * g.kw;
        size_t ny = (size_t)q.n * g.cout * g.oh * g.ow;
        double *x = xmalloc(nx * sizeof(double)), *w = xmalloc(nw * sizeof(double));
        double *b = xmalloc((size_t)g.cout * sizeof(double)), *gy = xmalloc(ny * sizeof(double));
        double *y = xmalloc(ny * sizeof(double));
        double *dx = calloc(nx, sizeof(double)), *dw = calloc(nw, sizeof(double));
        double *db = calloc((size_t)g.cout, sizeof(double));
        fill_rand(x, nx, &r); fill_rand(w, nw, &r); fill_rand(b, (size_t)g.cout, &r); fill_rand(gy, ny, &r);
        st_convt_backward_ref_f64(dx, dw, db, gy, x, w, q.n, &g);
        fd_check(dx, x, nx, 1e-3, x, w, b, gy, y, q.n, &g, ny, desc, "x");
        fd_check(dw, w, nw, 1e-3, x, w, b, gy, y, q.n, &g, ny, desc, "w");
        fd_check(db, b, (size_t)g.cout, 1e-3, x, w, b, gy, y, q.n, &g, ny, desc, "b");
        free(x); free(w); free(b); free(gy); free(y); free(dx); free(dw); free(db);
        cases++;
    }
    printf("conv_transpose: finite differences on %d random geometries\n", cases);
}

/* <convT(x), y> = <x, C(y)> where C is the convolution with cin = cout_T, cout = cin_T, the
 * same k, s, d, padding and groups and the same weights, built with st_conv_geom_init on
 * an input of the transposed output's size; its output is cropped to the transposed
 * input's size (it has floor(op/s) extra rows/cols when output_padding >= stride). */
static void adjoint(void) {
    st_rng r;
    st_rng_seed(&r, 99);
    int cases = 0, cropped = 0;
    for (int t = 0; t < 60; t++) {
        st_convt_geom g;
        rgeom q = random_geom(&r, 3, &g);
        char desc[256];
        rgeom_desc(&q, desc, sizeof desc);
        st_conv_geom cg;
        st_status st = st_conv_geom_init(&cg, q.cout, q.cin, q.groups, q.k, q.s, q.d, ST_PAD_EXPLICIT, q.pad, g.oh, g.ow);
        CHECK(st == ST_OK && cg.oh >= g.ih && cg.ow >= g.iw, "%s: mirror convolution geometry: %s", desc, st_errmsg());
        if (st != ST_OK || cg.oh < g.ih || cg.ow < g.iw) continue;
        if (cg.oh > g.ih || cg.ow > g.iw) cropped++;
        size_t nx = (size_t)q.n * g.cin * g.ih * g.iw, nw = (size_t)g.cin * (g.cout / g.groups) * g.kh * g.kw;
        size_t ny = (size_t)q.n * g.cout * g.oh * g.ow, nc = (size_t)q.n * g.cin * cg.oh * cg.ow;
        double *x = xmalloc(nx * sizeof(double)), *w = xmalloc(nw * sizeof(double));
        double *y = xmalloc(ny * sizeof(double)), *ty = xmalloc(ny * sizeof(double));
        double *cy = xmalloc(nc * sizeof(double)), *cyc = xmalloc(nx * sizeof(double));
        fill_rand(x, nx, &r); fill_rand(w, nw, &r); fill_rand(y, ny, &r);
        st_convt_forward_ref_f64(ty, x, w, NULL, q.n, &g);
        st_conv_forward_ref_f64(cy, y, w, NULL, q.n, &cg);
        for (int s = 0; s < q.n; s++)
            for (int c = 0; c < g.cin; c++)
                for (int i = 0; i < g.ih; i++)
                    for (int j = 0; j < g.iw; j++)
                        cyc[(((size_t)s * g.cin + c) * g.ih + i) * g.iw + j] =
                            cy[(((size_t)s * g.cin + c) * cg.oh + i) * cg.ow + j];
        double lhs = dot(ty, y, ny), rhs = dot(x, cyc, nx);
        double scale = 1 + sqrt(dot(ty, ty, ny) * dot(y, y, ny));
        CHECK(fabs(lhs - rhs) <= 1e-12 * scale, "%s: adjoint (f64): <convT(x), y> = %.17g, <x, conv(y)> = %.17g",
              desc, lhs, rhs);
        /* the fast float versions: forward against the left side, backward's input
         * gradient (= conv(y) with dout = y) against the right side */
        {
            float *xf = xmalloc(nx * sizeof(float)), *wf = xmalloc(nw * sizeof(float));
            float *yf = xmalloc(ny * sizeof(float)), *tyf = xmalloc(ny * sizeof(float));
            float *dxf = calloc(nx, sizeof(float)), *dwf = calloc(nw, sizeof(float));
            for (size_t i = 0; i < nx; i++) xf[i] = (float)x[i];
            for (size_t i = 0; i < nw; i++) wf[i] = (float)w[i];
            for (size_t i = 0; i < ny; i++) yf[i] = (float)y[i];
            size_t wsz = st_convt_work_size(&g, q.n);
            float *work = xmalloc(wsz * sizeof(float));
            fill_nan(work, wsz);
            st_convt_forward(tyf, xf, wf, NULL, q.n, &g, work);
            st_convt_backward(dxf, dwf, NULL, yf, xf, wf, q.n, &g, work);
            double l2 = 0, r2 = 0;
            for (size_t i = 0; i < ny; i++) l2 += (double)tyf[i] * yf[i];
            for (size_t i = 0; i < nx; i++) r2 += (double)xf[i] * dxf[i];
            CHECK(fabs(l2 - lhs) <= 1e-5 * scale && fabs(r2 - rhs) <= 1e-5 * scale,
                  "%s: adjoint (fast float): %.9g, %.9g against %.9g", desc, l2, r2, lhs);
            free(xf); free(wf); free(yf); free(tyf); free(dxf); free(dwf); free(work);
        }
        free(x); free(w); free(y); free(ty); free(cy); free(cyc);
        cases++;
    }
    CHECK(cropped > 0, "adjoint: no geometry with output_padding >= stride was drawn");
    printf("conv_transpose: adjoint identity on %d random geometries (%d with output_padding >= stride)\n",
           cases, cropped);
}

/* Fast against plain for random geometries and batches of 1 to 19 (both convolution
 * paths by the rule: the direct one from 8 samples up). */
static void fast_vs_ref(void) {
    st_rng r;
    st_rng_seed(&r, 4242);
    for (int t = 0; t < 40; t++) {
        st_convt_geom g;
        rgeom q = random_geom(&r, 19, &g);
        char desc[256];
        rgeom_desc(&q, desc, sizeof desc);
        size_t nx = (size_t)q.n * g.cin * g.ih * g.iw, nw = (size_t)g.cin * (g.cout / g.groups) * g.kh * g.kw;
        size_t ny = (size_t)q.n * g.cout * g.oh * g.ow;
        float *x = xmalloc(nx * 4), *w = xmalloc(nw * 4), *b = xmalloc((size_t)g.cout * 4), *gy = xmalloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (size_t i = 0; i < nw; i++) w[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (int i = 0; i < g.cout; i++) b[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (size_t i = 0; i < ny; i++) gy[i] = (float)(2 * st_rng_uniform(&r) - 1);
        float *y1 = xmalloc(ny * 4), *y2 = xmalloc(ny * 4);
        float *dx1 = calloc(nx, 4), *dw1 = calloc(nw, 4), *db1 = calloc((size_t)g.cout, 4);
        float *dx2 = calloc(nx, 4), *dw2 = calloc(nw, 4), *db2 = calloc((size_t)g.cout, 4);
        size_t wsz = st_convt_work_size(&g, q.n);
        float *work = xmalloc(wsz * 4);
        fill_nan(work, wsz); fill_nan(y1, ny);
        st_convt_forward(y1, x, w, b, q.n, &g, work);
        st_convt_forward_ref(y2, x, w, b, q.n, &g);
        cmp(y1, y2, ny, desc, "fast vs ref forward");
        fill_nan(work, wsz);
        st_convt_backward(dx1, dw1, db1, gy, x, w, q.n, &g, work);
        st_convt_backward_ref(dx2, dw2, db2, gy, x, w, q.n, &g);
        cmp(dx1, dx2, nx, desc, "fast vs ref dx");
        cmp(dw1, dw2, nw, desc, "fast vs ref dw");
        cmp(db1, db2, (size_t)g.cout, desc, "fast vs ref db");
        free(x); free(w); free(b); free(gy); free(y1); free(y2); free(dx1); free(dw1); free(db1);
        free(dx2); free(dw2); free(db2); free(work);
    }
}

/* ---------------------------------------------------------------- kernel = stride */
static void kernel_stride_vs_ref(void) {
    st_rng r;
    st_rng_seed(&r, 777);
    for (int t = 0; t < 30; t++) {
        int dim = t % 3 == 0 ? 1 : 2, groups = t % 4 == 1 ? rint_(&r, 2, 3) : 1;
        int cin = groups * rint_(&r, 1, t % 5 == 0 ? 40 : 9), cout = groups * rint_(&r, 1, t % 7 == 0 ? 70 : 9);
        int k[2], s[2], d[2] = {1, 1}, pad[2] = {0, 0}, op[2] = {0, 0}, n = rint_(&r, 1, 5);
        k[0] = dim == 1 ? 1 : rint_(&r, 1, 3);
        k[1] = rint_(&r, 1, 3);
        if (t % 2) k[0] = k[1] = 2 - (dim == 1);
        if (dim == 1) k[0] = 1;
        s[0] = k[0]; s[1] = k[1];
        if (k[1] == 1) d[1] = rint_(&r, 1, 3); /* dilation is irrelevant to a kernel of 1 */
        int ih = dim == 1 ? 1 : rint_(&r, 1, t % 3 ? 20 : 45), iw = rint_(&r, 1, dim == 1 ? 3000 : 45);
        st_convt_geom g;
        if (st_convt_geom_init(&g, cin, cout, groups, k, s, d, pad, op, ih, iw) != ST_OK) {
            CHECK(0, "kernel = stride %d: geometry rejected: %s", t, st_errmsg());
            continue;
        }
        char desc[160];
        snprintf(desc, sizeof desc, "kernel = stride: n=%d cin=%d cout=%d groups=%d in=%dx%d k=%dx%d", n, cin, cout,
                 groups, ih, iw, k[0], k[1]);
        size_t nx = (size_t)n * cin * ih * iw, nw = (size_t)cin * (cout / groups) * k[0] * k[1];
        size_t ny = (size_t)n * cout * g.oh * g.ow;
        float *x = xmalloc(nx * 4), *w = xmalloc(nw * 4), *b = xmalloc((size_t)cout * 4), *gy = xmalloc(ny * 4);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (size_t i = 0; i < nw; i++) w[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (int i = 0; i < cout; i++) b[i] = (float)(2 * st_rng_uniform(&r) - 1);
        for (size_t i = 0; i < ny; i++) gy[i] = (float)(2 * st_rng_uniform(&r) - 1);
        float *y[2], *dx[2], *dw[2], *db[2];
        float *yr = xmalloc(ny * 4), *dxr = xmalloc(nx * 4), *dwr = xmalloc(nw * 4), *dbr = xmalloc((size_t)cout * 4);
        size_t wsz = st_convt_work_size(&g, n);
        float *work = xmalloc((wsz + 1) * 4);
        for (int th = 0; th < 2; th++) { /* 1 thread, then 2: the same bits */
            st_set_threads(th + 1);
            y[th] = xmalloc(ny * 4); dx[th] = xmalloc(nx * 4); dw[th] = xmalloc(nw * 4); db[th] = xmalloc((size_t)cout * 4);
            for (size_t i = 0; i < nx; i++) dx[th][i] = 1;
            for (size_t i = 0; i < nw; i++) dw[th][i] = 1;
            for (int i = 0; i < cout; i++) db[th][i] = 1;
            fill_nan(work, wsz); fill_nan(y[th], ny);
            st_convt_forward(y[th], x, w, t % 3 == 2 ? NULL : b, n, &g, work);
            fill_nan(work, wsz);
            st_convt_backward(dx[th], dw[th], db[th], gy, x, w, n, &g, work);
        }
        st_set_threads(0);
        for (size_t i = 0; i < nx; i++) dxr[i] = 1;
        for (size_t i = 0; i < nw; i++) dwr[i] = 1;
        for (int i = 0; i < cout; i++) dbr[i] = 1;
        st_convt_forward_ref(yr, x, w, t % 3 == 2 ? NULL : b, n, &g);
        st_convt_backward_ref(dxr, dwr, dbr, gy, x, w, n, &g);
        cmp(y[0], yr, ny, desc, "forward");
        cmp(dx[0], dxr, nx, desc, "dx");
        cmp(dw[0], dwr, nw, desc, "dw");
        cmp(db[0], dbr, (size_t)cout, desc, "db");
        CHECK(!memcmp(y[0], y[1], ny * 4) && !memcmp(dx[0], dx[1], nx * 4) && !memcmp(dw[0], dw[1], nw * 4) &&
                  !memcmp(db[0], db[1], (size_t)cout * 4),
              "%s: 1 and 2 threads differ", desc);
        /* din and db may be NULL */
        for (size_t i = 0; i < nw; i++) dw[1][i] = 1;
        fill_nan(work, wsz);
        st_convt_backward(NULL, dw[1], NULL, gy, x, w, n, &g, work);
        CHECK(!memcmp(dw[0], dw[1], nw * 4), "%s: dw with din = db = NULL differs", desc);
        for (int th = 0; th < 2; th++) { free(y[th]); free(dx[th]); free(dw[th]); free(db[th]); }
        free(x); free(w); free(b); free(gy); free(yr); free(dxr); free(dwr); free(dbr); free(work);
    }
}

/* ---------------------------------------------------------------- geometry errors */
static void expect_err(st_status want, const char *needle, int cin, int cout, int groups, int kh, int kw,
                       int sh, int sw, int dh, int dw, int ph, int pw, int oph, int opw, int ih, int iw) {
    st_convt_geom g;
    int k[2] = {kh, kw}, s[2] = {sh, sw}, d[2] = {dh, dw}, p[2] = {ph, pw}, op[2] = {oph, opw};
    st_status st = st_convt_geom_init(&g, cin, cout, groups, k, s, d, p, op, ih, iw);
    CHECK(st == want && (!needle || strstr(st_errmsg(), needle)),
          "geometry cin=%d cout=%d groups=%d k=%dx%d s=%dx%d d=%dx%d p=%dx%d op=%dx%d in=%dx%d: status %d (%s), "
          "want %d with \"%s\"", cin, cout, groups, kh, kw, sh, sw, dh, dw, ph, pw, oph, opw, ih, iw,
          (int)st, st_errmsg(), (int)want, needle ? needle : "");
}

static void geometry(void) {
    const char *op_msg = "output padding must be smaller than either stride or dilation";
    /* output_padding too large: not below stride nor dilation, in either dimension */
    expect_err(ST_ERR_ARG, op_msg, 1, 1, 1, 1, 3, 1, 1, 1, 1, 0, 0, 0, 1, 1, 5);
    expect_err(ST_ERR_ARG, op_msg, 1, 1, 1, 3, 3, 2, 2, 1, 1, 0, 0, 0, 2, 4, 4);
    expect_err(ST_ERR_ARG, op_msg, 1, 1, 1, 3, 3, 2, 2, 2, 1, 0, 0, 2, 0, 4, 4);
    expect_err(ST_ERR_ARG, op_msg, 2, 2, 1, 3, 3, 3, 3, 3, 3, 1, 1, 3, 0, 4, 4);
    /* ... but below either is fine */
    expect_err(ST_OK, NULL, 1, 1, 1, 1, 3, 1, 1, 1, 2, 0, 0, 0, 1, 1, 5);   /* op 1 < dilation 2 */
    expect_err(ST_OK, NULL, 1, 1, 1, 3, 3, 3, 1, 1, 3, 0, 0, 2, 2, 4, 4);   /* op 2 < s 3; op 2 < d 3 */
    /* other invalid arguments */
    expect_err(ST_ERR_ARG, "in_channels must be divisible by groups", 3, 4, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "out_channels must be divisible by groups", 4, 3, 2, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "groups", 4, 4, 0, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "channels", 0, 4, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "kernel_size", 1, 1, 1, 0, 3, 1, 1, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "stride", 1, 1, 1, 3, 3, 1, 0, 1, 1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "dilation", 1, 1, 1, 3, 3, 1, 1, 1, -1, 0, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "padding", 1, 1, 1, 3, 3, 1, 1, 1, 1, -1, 0, 0, 0, 4, 4);
    expect_err(ST_ERR_ARG, "output_padding", 1, 1, 1, 3, 3, 2, 2, 1, 1, 0, 0, -1, 0, 4, 4);
    expect_err(ST_ERR_SHAPE, "input size", 1, 1, 1, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 4);
    /* output size (1-1)*1 - 2*1 + 1*(1-1) + 0 + 1 = -1 */
    expect_err(ST_ERR_SHAPE, "Output size is too small", 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1);
    /* and exactly 1 is fine: (2-1)*1 - 2 + 2 + 0 + 1 = 2... (1-1)*2 - 2*1 + 1*2 + 0 + 1 = 1 */
    expect_err(ST_OK, NULL, 1, 1, 1, 1, 3, 1, 2, 1, 1, 0, 1, 0, 0, 1, 1);

    /* the output size formula and the stored fields */
    st_convt_geom g;
    int k[2] = {3, 4}, s[2] = {2, 3}, d[2] = {1, 2}, p[2] = {1, 2}, op[2] = {1, 1};
    st_status st = st_convt_geom_init(&g, 4, 6, 2, k, s, d, p, op, 5, 7);
    CHECK(st == ST_OK && g.oh == (5 - 1) * 2 - 2 + 2 + 1 + 1 && g.ow == (7 - 1) * 3 - 4 + 6 + 1 + 1 &&
          g.cin == 4 && g.cout == 6 && g.groups == 2 && g.ih == 5 && g.iw == 7,
          "geometry: oh %d ow %d (want 10, 22)", g.oh, g.ow);
    CHECK(st == ST_OK && g.mirror.cin == 6 && g.mirror.cout == 4 && g.mirror.ih == g.oh &&
          g.mirror.iw == g.ow && g.mirror.oh == 5 && g.mirror.ow == 7,
          "geometry: mirror convolution %dx%d -> %dx%d, channels %d -> %d", g.mirror.ih, g.mirror.iw,
          g.mirror.oh, g.mirror.ow, g.mirror.cin, g.mirror.cout);
}

/* The worked example: a 1D transposed convolution of [1, 2] with kernel [1, 1, 1],
 * stride 2, by hand: 1*[1,1,1] at 0 and 2*[1,1,1] at 2 -> [1, 1, 3, 2, 2]; with
 * padding 1 (one value off each end) -> [1, 3, 2]; with padding 1 and output_padding 1
 * the last value comes back -> [1, 3, 2, 2], here plus a bias of 0.5 (values checked
 * with PyTorch's conv_transpose1d). */
static void worked_example(void) {
    const float x[2] = {1, 2}, w[3] = {1, 1, 1}, bias = 0.5f;
    int k[2] = {1, 3}, s[2] = {1, 2}, d[2] = {1, 1};
    struct { int p, op; int len; float want[5]; const float *b; } ex[3] = {
        {0, 0, 5, {1, 1, 3, 2, 2}, NULL},
        {1, 0, 3, {1, 3, 2}, NULL},
        {1, 1, 4, {1.5f, 3.5f, 2.5f, 2.5f}, &bias},
    };
    for (int e = 0; e < 3; e++) {
        st_convt_geom g;
        int p[2] = {0, ex[e].p}, op[2] = {0, ex[e].op};
        st_status st = st_convt_geom_init(&g, 1, 1, 1, k, s, d, p, op, 1, 2);
        CHECK(st == ST_OK && g.ow == ex[e].len, "worked example %d: length %d, want %d", e, g.ow, ex[e].len);
        if (st != ST_OK || g.ow != ex[e].len) continue;
        float out[5], out2[5];
        size_t wsz = st_convt_work_size(&g, 1);
        float *work = xmalloc(wsz * sizeof(float));
        fill_nan(work, wsz); fill_nan(out, 5); fill_nan(out2, 5);
        st_convt_forward(out, x, w, ex[e].b, 1, &g, work);
        st_convt_forward_ref(out2, x, w, ex[e].b, 1, &g);
        CHECK(test_maxdiff(out, ex[e].want, (size_t)g.ow) <= 1e-6, "worked example %d: fast forward", e);
        CHECK(test_maxdiff(out2, ex[e].want, (size_t)g.ow) <= 1e-6, "worked example %d: ref forward", e);
        free(work);
    }
}

int main(void) {
    fixtures();
    finite_differences();
    adjoint();
    fast_vs_ref();
    kernel_stride_vs_ref();
    geometry();
    worked_example();
    return test_done("test_conv_transpose");
}
