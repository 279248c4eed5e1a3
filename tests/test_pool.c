/* test_pool.c - max, average and adaptive-average pooling against PyTorch and by hand.
 *
 * 1. Every case of tests/fixtures/pool.safetensors (scripts/gen_pool_fixtures.py; run from
 *    the repository root): geometry and output shape, forward (NaN-aware), indices,
 *    backward (into zeros and accumulating onto ones), and the double versions.
 *    Tolerance: max |ours - torch| <= 1e-5 * (1 + max |torch|).
 * 2. PyTorch's examples from models.md B3, written out by hand.
 * 3. Finite differences in double: avg, adaptive, and max on well-separated values.
 * 4. An independent brute-force max/avg pool (explicitly padded plane) over random
 *    geometries, including padding up to half the effective (dilated) kernel.
 * 5. Results independent of the thread count on a large case (OpenMP path).
 * 6. Geometry validation and error messages.
 * 7. The vectorised max pooling (non-overlapping k x 2 windows) against the general loop
 *    on random shapes, with ties, NaNs and infinities: values and indices bit for bit.
 */
#include "pool.h"
#include "fixture.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TOL 1e-5
#define POOL_FIXTURE "tests/fixtures/pool.safetensors"

/* ---------------------------------------------------------------- helpers */
/* NaN-aware max error: a NaN on one side only, or different infinities, count as INFINITY. */
static double nan_maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        int na = isnan(a[i]), nb = isnan(b[i]);
        if (na || nb) { if (na != nb) return INFINITY; continue; }
        if (isinf(a[i]) || isinf(b[i])) { if (a[i] != b[i]) return INFINITY; continue; }
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m) m = d;
    }
    return m;
}
static double finite_maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(a[i]) && fabs((double)a[i]) > m) m = fabs((double)a[i]);
    return m;
}
/* NaN-aware variants of fixture.h's cmp and cmp_f64. */
static void cmp_nan(const float *got, const float *ref, size_t n, const char *desc, const char *what) {
    double err = nan_maxdiff(got, ref, n), tol = TOL * (1 + finite_maxabs(ref, n));
    CHECK(err <= tol, "%s: %s: max abs error %.3g > tolerance %.3g", desc, what, err, tol);
}
static void cmp_f64_nan(const double *got, const float *ref, size_t n, const char *desc, const char *what) {
    float *g = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = (float)got[i];
    cmp_nan(g, ref, n, desc, what);
    free(g);
}

/* "key":[a,b] with exactly two integers (fixture.h's jpair ignores what follows b). */
static int jpair_strict(const char *js, const char *key, int out[2]) {
    const char *p = jfind(js, key);
    if (!p || *p != '[') return 0;
    char *end;
    out[0] = (int)strtol(p + 1, &end, 10);
    if (*end != ',') return 0;
    out[1] = (int)strtol(end + 1, &end, 10);
    return *end == ']';
}

static const float *get_f32(const st_tensors *ts, const char *name, size_t want) {
    const st_array *a = st_tensors_get(ts, name);
    if (!a || a->dtype != ST_F32 || (size_t)st_array_numel(a) != want) return NULL;
    return a->data;
}

/* ---------------------------------------------------------------- 1. fixtures */
static void fixture_case(const st_tensors *ts, int i, int *nmax, int *navg, int *nad) {
    char key[32], desc[96], op[16], name[48];
    snprintf(key, sizeof key, "%d", i);
    const char *js = st_tensors_meta(ts, key);
    CHECK(js != NULL, "case %d: no metadata", i);
    if (!js) return;
    int dim, n, c, ih, iw, oh, ow, k[2], s[2], p[2], d[2], sdef, ceil, cip, div;
    int ok = jstr(js, "op", op, sizeof op) && jint(js, "dim", &dim) && jint(js, "n", &n) &&
             jint(js, "c", &c) && jint(js, "ih", &ih) && jint(js, "iw", &iw) && jint(js, "oh", &oh) &&
             jint(js, "ow", &ow) && jpair_strict(js, "k", k) && jpair_strict(js, "s", s) && jpair_strict(js, "p", p) &&
             jpair_strict(js, "d", d) && jint(js, "sdef", &sdef) && jint(js, "ceil", &ceil) &&
             jint(js, "cip", &cip) && jint(js, "div", &div);
    CHECK(ok, "case %d: bad metadata %s", i, js);
    if (!ok) return;
    snprintf(desc, sizeof desc, "case %d (%s%dd)", i, op, dim);
    int is_max = !strcmp(op, "max"), is_avg = !strcmp(op, "avg"), is_ad = !strcmp(op, "adaptive");
    CHECK(is_max || is_avg || is_ad, "%s: unknown op", desc);
    *nmax += is_max; *navg += is_avg; *nad += is_ad;

    st_pool_geom g;
    st_status st = is_ad ? st_pool_geom_adaptive(&g, ih, iw, oh, ow)
                         : st_pool_geom_init(&g, ih, iw, k, sdef ? NULL : s, p, d, ceil, cip, div);
    CHECK(st == ST_OK, "%s: geometry rejected: %s", desc, st_errmsg());
    if (st != ST_OK) return;
    CHECK(g.oh == oh && g.ow == ow, "%s: output %dx%d, torch %dx%d", desc, g.oh, g.ow, oh, ow);
    if (g.oh != oh || g.ow != ow) return;
    int planes = n * c;
    size_t isz = (size_t)planes * ih * iw, osz = (size_t)planes * oh * ow;

    snprintf(name, sizeof name, "%d.y", i);
    const st_array *ya = st_tensors_get(ts, name);
    CHECK(ya && ya->ndim == dim + 2 && ya->shape[0] == n && ya->shape[1] == c &&
          ya->shape[ya->ndim - 1] == ow && (dim == 1 || ya->shape[2] == oh),
          "%s: y shape does not match the geometry", desc);
    const float *x, *y, *gy, *gx;
    snprintf(name, sizeof name, "%d.x", i);  x = get_f32(ts, name, isz);
    snprintf(name, sizeof name, "%d.y", i);  y = get_f32(ts, name, osz);
    snprintf(name, sizeof name, "%d.gy", i); gy = get_f32(ts, name, osz);
    snprintf(name, sizeof name, "%d.gx", i); gx = get_f32(ts, name, isz);
    CHECK(x && y && gy && gx, "%s: missing or mis-sized tensors", desc);
    if (!(x && y && gy && gx)) return;

    float *out = xmalloc(osz * sizeof(float)), *din = xmalloc(isz * sizeof(float));
    double *xd = xmalloc(isz * sizeof(double)), *gyd = xmalloc(osz * sizeof(double));
    double *outd = xmalloc(osz * sizeof(double)), *dind = xmalloc(isz * sizeof(double));
    int32_t *idx = xmalloc(osz * sizeof(int32_t)), *idxd = xmalloc(osz * sizeof(int32_t));
    for (size_t j = 0; j < isz; j++) xd[j] = x[j];
    for (size_t j = 0; j < osz; j++) gyd[j] = gy[j];
    for (size_t j = 0; j < osz; j++) { out[j] = 12345.f; outd[j] = 12345.; idx[j] = idxd[j] = -77; }

    if (is_max) {
        snprintf(name, sizeof name, "%d.idx", i);
        const st_array *ia = st_tensors_get(ts, name);
        CHECK(ia && ia->dtype == ST_I64 && (size_t)st_array_numel(ia) == osz, "%s: bad idx tensor", desc);
        st_maxpool_forward(out, idx, x, planes, &g);
        cmp_nan(out, y, osz, desc, "forward");
        st_maxpool_forward_f64(outd, idxd, xd, planes, &g);
        cmp_f64_nan(outd, y, osz, desc, "forward f64");
        if (ia && ia->dtype == ST_I64 && (size_t)st_array_numel(ia) == osz) {
            const int64_t *ref = ia->data;
            size_t bad = 0, bad64 = 0, first = 0;
            for (size_t j = 0; j < osz; j++) {
                if (idx[j] != ref[j]) { if (!bad) first = j; bad++; }
                if (idxd[j] != ref[j]) bad64++;
            }
            CHECK(bad == 0, "%s: %zu indices differ (first at %zu: %d vs torch %lld)", desc, bad, first,
                  (int)idx[first], (long long)ref[first]);
            CHECK(bad64 == 0, "%s: %zu f64 indices differ", desc, bad64);
        }
        /* indices may be NULL */
        float *out2 = xmalloc(osz * sizeof(float));
        st_maxpool_forward(out2, NULL, x, planes, &g);
        cmp_nan(out2, y, osz, desc, "forward without indices");
        free(out2);
        memset(din, 0, isz * sizeof(float));
        st_maxpool_backward(din, gy, idx, planes, &g);
        cmp_nan(din, gx, isz, desc, "backward");
        for (size_t j = 0; j < isz; j++) din[j] = 1.f;
        st_maxpool_backward(din, gy, idx, planes, &g);
        for (size_t j = 0; j < isz; j++) din[j] -= 1.f;
        cmp_nan(din, gx, isz, desc, "backward accumulates");
        memset(dind, 0, isz * sizeof(double));
        st_maxpool_backward_f64(dind, gyd, idxd, planes, &g);
        cmp_f64_nan(dind, gx, isz, desc, "backward f64");
    } else {
        void (*fwd)(float *, const float *, int, const st_pool_geom *) =
            is_avg ? st_avgpool_forward : st_adaptive_avgpool_forward;
        void (*bwd)(float *, const float *, int, const st_pool_geom *) =
            is_avg ? st_avgpool_backward : st_adaptive_avgpool_backward;
        void (*fwd64)(double *, const double *, int, const st_pool_geom *) =
            is_avg ? st_avgpool_forward_f64 : st_adaptive_avgpool_forward_f64;
        void (*bwd64)(double *, const double *, int, const st_pool_geom *) =
            is_avg ? st_avgpool_backward_f64 : st_adaptive_avgpool_backward_f64;
        fwd(out, x, planes, &g);
        cmp_nan(out, y, osz, desc, "forward");
        fwd64(outd, xd, planes, &g);
        cmp_f64_nan(outd, y, osz, desc, "forward f64");
        memset(din, 0, isz * sizeof(float));
        bwd(din, gy, planes, &g);
        cmp_nan(din, gx, isz, desc, "backward");
        for (size_t j = 0; j < isz; j++) din[j] = 1.f;
        bwd(din, gy, planes, &g);
        for (size_t j = 0; j < isz; j++) din[j] -= 1.f;
        cmp_nan(din, gx, isz, desc, "backward accumulates");
        memset(dind, 0, isz * sizeof(double));
        bwd64(dind, gyd, planes, &g);
        cmp_f64_nan(dind, gx, isz, desc, "backward f64");
    }
    free(out); free(din); free(xd); free(gyd); free(outd); free(dind); free(idx); free(idxd);
}

static void test_fixtures(void) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status st = st_safetensors_load(POOL_FIXTURE, &ts);
    CHECK(st == ST_OK, "cannot load %s: %s", POOL_FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cs = st_tensors_meta(&ts, "count");
    int count = cs ? atoi(cs) : 0;
    CHECK(count >= 100, "%s: only %d cases", POOL_FIXTURE, count);
    int nmax = 0, navg = 0, nad = 0;
    for (int i = 0; i < count; i++) fixture_case(&ts, i, &nmax, &navg, &nad);
    CHECK(nmax >= 30 && navg >= 30 && nad >= 10, "fixture mix: %d max, %d avg, %d adaptive", nmax, navg, nad);
    printf("pool fixtures: %d cases (%d max, %d avg, %d adaptive)\n", count, nmax, navg, nad);
    st_tensors_free(&ts);
}

/* ---------------------------------------------------------------- 2. B3 examples */
static void test_spec_examples(void) {
    st_pool_geom g;
    /* 5x5 ramp, MaxPool2d(3, 2, 1) -> indices 6 8 9 / 16 18 19 / 21 23 24 */
    {
        float x[25], y[9];
        int32_t idx[9];
        for (int i = 0; i < 25; i++) x[i] = (float)i;
        st_status st = st_pool_geom_init(&g, 5, 5, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 0, 1, 0);
        CHECK(st == ST_OK && g.oh == 3 && g.ow == 3, "ramp: geometry %d (%dx%d)", st, g.oh, g.ow);
        if (st == ST_OK && g.oh == 3 && g.ow == 3) {
            st_maxpool_forward(y, idx, x, 1, &g);
            const int want[9] = {6, 8, 9, 16, 18, 19, 21, 23, 24};
            for (int i = 0; i < 9; i++) {
                CHECK(idx[i] == want[i], "ramp: index %d is %d, want %d", i, idx[i], want[i]);
                CHECK(y[i] == (float)want[i], "ramp: value %d is %g, want %d", i, y[i], want[i]);
            }
        }
    }
    /* 6x6 ones, AvgPool2d(3, 2, 1, ceil_mode) -> 3x3 output; corners 4/9, 2/6 (edges), 1/4 */
    {
        float x[36], y[9];
        for (int i = 0; i < 36; i++) x[i] = 1.f;
        st_status st = st_pool_geom_init(&g, 6, 6, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 1, 1, 0);
        CHECK(st == ST_OK && g.oh == 4 && g.ow == 4, "ones: geometry %d (%dx%d)", st, g.oh, g.ow);
        if (st == ST_OK && g.oh == 4 && g.ow == 4) {
            float y16[16];
            (void)y;
            st_avgpool_forward(y16, x, 1, &g);
            CHECK(fabsf(y16[0] - 4.f / 9) < 1e-6f, "ones: top-left %g, want 4/9", y16[0]);
            CHECK(fabsf(y16[1] - 6.f / 9) < 1e-6f, "ones: top edge %g, want 6/9", y16[1]);
            CHECK(fabsf(y16[5] - 1.f) < 1e-6f, "ones: inside %g, want 1", y16[5]);
            CHECK(fabsf(y16[3] - 2.f / 6) < 1e-6f, "ones: top-right %g, want 2/6", y16[3]);
            CHECK(fabsf(y16[12] - 2.f / 6) < 1e-6f, "ones: bottom-left %g, want 2/6", y16[12]);
            CHECK(fabsf(y16[15] - 1.f / 4) < 1e-6f, "ones: bottom-right %g, want 1/4", y16[15]);
            /* count_include_pad=False: every window averages only ones */
            st_pool_geom g2;
            st_pool_geom_init(&g2, 6, 6, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 1, 0, 0);
            st_avgpool_forward(y16, x, 1, &g2);
            double e = 0;
            for (int i = 0; i < 16; i++) e = fmax(e, fabs(y16[i] - 1.0));
            CHECK(e < 1e-6, "ones, count_include_pad=False: max |y - 1| = %g", e);
            /* divisor_override = 2: top-left sums 4 ones */
            st_pool_geom_init(&g2, 6, 6, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 1, 1, 2);
            st_avgpool_forward(y16, x, 1, &g2);
            CHECK(y16[0] == 2.f && y16[15] == 0.5f && y16[5] == 4.5f, "divisor_override: %g %g %g", y16[0], y16[15], y16[5]);
        }
    }
    /* AdaptiveAvgPool1d(4) of 0..9 -> 1, 3, 6, 8 */
    {
        float x[10], y[4];
        for (int i = 0; i < 10; i++) x[i] = (float)i;
        st_status st = st_pool_geom_adaptive(&g, 1, 10, 1, 4);
        CHECK(st == ST_OK, "adaptive geometry: %s", st_errmsg());
        st_adaptive_avgpool_forward(y, x, 1, &g);
        const float want[4] = {1, 3, 6, 8};
        for (int i = 0; i < 4; i++) CHECK(fabsf(y[i] - want[i]) < 1e-6f, "adaptive: y[%d] = %g, want %g", i, y[i], want[i]);
    }
    /* ties keep the first maximum; a NaN wins (the last NaN of the window) */
    {
        float x[6] = {1, 3, 3, 2, 3, 0}, y[2];
        int32_t idx[2];
        st_pool_geom_init(&g, 1, 6, (int[]){1, 3}, NULL, (int[]){0, 0}, NULL, 0, 1, 0);
        st_maxpool_forward(y, idx, x, 1, &g);
        CHECK(idx[0] == 1 && idx[1] == 4 && y[0] == 3 && y[1] == 3, "ties: %d %d (%g %g), want 1 4", idx[0], idx[1], y[0], y[1]);
        float xn[6] = {5, NAN, 1, NAN, 9, NAN};
        st_maxpool_forward(y, idx, xn, 1, &g);
        CHECK(isnan(y[0]) && idx[0] == 1 && isnan(y[1]) && idx[1] == 5, "NaN: %g@%d %g@%d, want nan@1 nan@5", y[0], idx[0], y[1], idx[1]);
    }
    /* two windows picking the same cell add their gradients */
    {
        float x[4] = {0, 5, 1, 2}, y[3], dx[4] = {0, 0, 0, 0}, dy[3] = {1, 10, 100};
        int32_t idx[3];
        st_pool_geom_init(&g, 1, 4, (int[]){1, 2}, (int[]){1, 1}, (int[]){0, 0}, NULL, 0, 1, 0);
        st_maxpool_forward(y, idx, x, 1, &g);
        st_maxpool_backward(dx, dy, idx, 1, &g);
        CHECK(dx[0] == 0 && dx[1] == 11 && dx[2] == 0 && dx[3] == 100, "max backward sum: %g %g %g %g", dx[0], dx[1], dx[2], dx[3]);
    }
}

/* ---------------------------------------------------------------- 3. finite differences */
typedef enum { OP_MAX, OP_AVG, OP_AD } pool_op;

static void fwd64(pool_op op, double *y, const double *x, int planes, const st_pool_geom *g) {
    if (op == OP_MAX) st_maxpool_forward_f64(y, NULL, x, planes, g);
    else if (op == OP_AVG) st_avgpool_forward_f64(y, x, planes, g);
    else st_adaptive_avgpool_forward_f64(y, x, planes, g);
}

static double loss64(pool_op op, const double *x, const double *gy, double *y, int planes, const st_pool_geom *g) {
    fwd64(op, y, x, planes, g);
    double L = 0;
    for (size_t j = 0; j < (size_t)planes * g->oh * g->ow; j++) L += y[j] * gy[j];
    return L;
}

static void fd_check(pool_op op, const st_pool_geom *g, int planes, const char *desc, st_rng *r) {
    size_t isz = (size_t)planes * g->ih * g->iw, osz = (size_t)planes * g->oh * g->ow;
    double *x = xmalloc(isz * sizeof(double)), *gy = xmalloc(osz * sizeof(double));
    double *y = xmalloc(osz * sizeof(double)), *dx = xmalloc(isz * sizeof(double));
    /* a shuffled ramp with gaps of 0.01: no ties, and +-eps cannot change an argmax */
    int *perm = xmalloc(isz * sizeof(int));
    for (size_t j = 0; j < isz; j++) perm[j] = (int)j;
    st_rng_shuffle(r, perm, (int)isz);
    for (size_t j = 0; j < isz; j++) x[j] = 0.01 * perm[j] - 0.005 * (double)isz;
    for (size_t j = 0; j < osz; j++) gy[j] = 2 * st_rng_uniform(r) - 1;
    memset(dx, 0, isz * sizeof(double));
    if (op == OP_MAX) {
        int32_t *idx = xmalloc(osz * sizeof(int32_t));
        st_maxpool_forward_f64(y, idx, x, planes, g);
        st_maxpool_backward_f64(dx, gy, idx, planes, g);
        free(idx);
    } else if (op == OP_AVG) {
        st_avgpool_backward_f64(dx, gy, planes, g);
    } else {
        st_adaptive_avgpool_backward_f64(dx, gy, planes, g);
    }
    const double eps = 1e-6;
    double err = 0, mx = 0, nz = 0;
    for (size_t j = 0; j < isz; j++) {
        double keep = x[j];
        x[j] = keep + eps; double lp = loss64(op, x, gy, y, planes, g);
        x[j] = keep - eps; double lm = loss64(op, x, gy, y, planes, g);
        x[j] = keep;
        double num = (lp - lm) / (2 * eps);
        err = fmax(err, fabs(num - dx[j]));
        mx = fmax(mx, fabs(num));
        nz += fabs(dx[j]);
    }
    CHECK(err <= 1e-6 * (1 + mx), "%s: finite differences differ by %.3g (max |grad| %.3g)", desc, err, mx);
    CHECK(nz > 0, "%s: gradient is all zero", desc);
    free(x); free(gy); free(y); free(dx); free(perm);
}

static void test_finite_differences(void) {
    st_rng r;
    st_rng_seed(&r, 7);
    st_pool_geom g;
    struct { int ih, iw, k[2], s[2], p[2], d[2], ceil, cip, div; } mx[] = {
        {7, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 0, 1, 0},
        {7, 7, {3, 2}, {2, 1}, {1, 1}, {2, 3}, 1, 1, 0},
        {6, 6, {2, 2}, {2, 2}, {1, 1}, {1, 1}, 1, 1, 0},
        {1, 13, {1, 4}, {1, 3}, {0, 2}, {1, 2}, 1, 1, 0},
        {9, 9, {3, 3}, {1, 1}, {2, 2}, {2, 2}, 0, 1, 0}, /* pad 2 > k/2: allowed by the effective kernel */
    }, av[] = {
        {7, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, 1, 0},
        {7, 6, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 1, 0, 0},
        {8, 5, {4, 2}, {3, 2}, {2, 1}, {1, 1}, 1, 1, 5},
        {5, 5, {2, 2}, {2, 2}, {1, 1}, {1, 1}, 1, 0, 0},
        {1, 11, {1, 3}, {1, 2}, {0, 1}, {1, 1}, 1, 1, 0},
    };
    char desc[64];
    for (size_t i = 0; i < sizeof mx / sizeof mx[0]; i++) {
        st_status st = st_pool_geom_init(&g, mx[i].ih, mx[i].iw, mx[i].k, mx[i].s, mx[i].p, mx[i].d, mx[i].ceil, mx[i].cip, mx[i].div);
        CHECK(st == ST_OK, "fd max %zu: %s", i, st_errmsg());
        snprintf(desc, sizeof desc, "fd max %zu", i);
        if (st == ST_OK) fd_check(OP_MAX, &g, 3, desc, &r);
    }
    for (size_t i = 0; i < sizeof av / sizeof av[0]; i++) {
        st_status st = st_pool_geom_init(&g, av[i].ih, av[i].iw, av[i].k, av[i].s, av[i].p, av[i].d, av[i].ceil, av[i].cip, av[i].div);
        CHECK(st == ST_OK, "fd avg %zu: %s", i, st_errmsg());
        snprintf(desc, sizeof desc, "fd avg %zu", i);
        if (st == ST_OK) fd_check(OP_AVG, &g, 3, desc, &r);
    }
    int ad[][4] = {{10, 10, 4, 4}, {7, 7, 3, 3}, {5, 5, 8, 8}, {1, 10, 1, 4}, {1, 5, 1, 8}, {9, 4, 2, 3}};
    for (size_t i = 0; i < sizeof ad / sizeof ad[0]; i++) {
        st_status st = st_pool_geom_adaptive(&g, ad[i][0], ad[i][1], ad[i][2], ad[i][3]);
        CHECK(st == ST_OK, "fd adaptive %zu: %s", i, st_errmsg());
        snprintf(desc, sizeof desc, "fd adaptive %zu", i);
        if (st == ST_OK) fd_check(OP_AD, &g, 2, desc, &r);
    }
}

/* ---------------------------------------------------------------- 4. brute force */
/* Pads the plane explicitly (-inf for max, 0 for avg) and scans windows in padded
 * coordinates; a different route to the same definitions. */
static void brute_max(float *y, int32_t *idx, const float *x, const st_pool_geom *g) {
    int PH = g->ih + 2 * g->ph + g->sh * 2 + g->dh * g->kh, PW = g->iw + 2 * g->pw + g->sw * 2 + g->dw * g->kw;
    float *pad = xmalloc((size_t)PH * PW * sizeof(float));
    for (int i = 0; i < PH * PW; i++) pad[i] = -INFINITY;
    for (int a = 0; a < g->ih; a++)
        for (int b = 0; b < g->iw; b++) pad[(a + g->ph) * PW + b + g->pw] = x[a * g->iw + b];
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            float best = -INFINITY;
            int bi = -1;
            for (int i = 0; i < g->kh; i++)
                for (int j = 0; j < g->kw; j++) {
                    int py = oy * g->sh + i * g->dh, px = ox * g->sw + j * g->dw;
                    int ry = py - g->ph, rx = px - g->pw;
                    if (ry < 0 || rx < 0 || ry >= g->ih || rx >= g->iw) continue;
                    float v = pad[py * PW + px];
                    if (bi < 0 || v > best) { best = v; bi = ry * g->iw + rx; }
                }
            y[oy * g->ow + ox] = best;
            idx[oy * g->ow + ox] = bi;
        }
    free(pad);
}

static void brute_avg(float *y, const float *x, const st_pool_geom *g) {
    for (int oy = 0; oy < g->oh; oy++)
        for (int ox = 0; ox < g->ow; ox++) {
            double sum = 0;
            int real = 0, padded = 0;
            for (int i = 0; i < g->kh; i++)
                for (int j = 0; j < g->kw; j++) {
                    int ry = oy * g->sh - g->ph + i, rx = ox * g->sw - g->pw + j;
                    if (ry >= g->ih + g->ph || rx >= g->iw + g->pw) continue; /* past the padded border */
                    padded++;
                    if (ry < 0 || rx < 0 || ry >= g->ih || rx >= g->iw) continue;
                    real++;
                    sum += x[ry * g->iw + rx];
                }
            int div = g->divisor_override ? g->divisor_override : g->count_include_pad ? padded : real;
            y[oy * g->ow + ox] = real ? (float)(sum / div) : 0.f;
        }
}

static void test_brute_force(void) {
    st_rng r;
    st_rng_seed(&r, 99);
    int ncase = 0, nempty = 0, bad_max = 0, bad_idx = 0, bad_avg = 0;
    float x[16 * 16], y[16 * 16], yb[16 * 16];
    int32_t idx[16 * 16], idxb[16 * 16];
    for (int t = 0; t < 8000; t++) {
        int k[2] = {1 + (int)st_rng_below(&r, 5), 1 + (int)st_rng_below(&r, 5)};
        int s[2] = {1 + (int)st_rng_below(&r, 3), 1 + (int)st_rng_below(&r, 3)};
        int d[2] = {1 + (int)st_rng_below(&r, 3), 1 + (int)st_rng_below(&r, 3)};
        int p[2] = {(int)st_rng_below(&r, 4), (int)st_rng_below(&r, 4)};
        int ih = 1 + (int)st_rng_below(&r, 12), iw = 1 + (int)st_rng_below(&r, 12);
        int ceil = (int)st_rng_below(&r, 2), cip = (int)st_rng_below(&r, 2);
        int div = st_rng_below(&r, 5) == 0 ? 1 + (int)st_rng_below(&r, 6) : 0;
        int is_avg = t % 2;
        if (is_avg) d[0] = d[1] = 1;
        st_pool_geom g;
        if (st_pool_geom_init(&g, ih, iw, k, s, p, d, ceil, cip, div) != ST_OK) continue;
        for (int i = 0; i < ih * iw; i++) x[i] = (float)((int)st_rng_below(&r, 7) - 3); /* ties */
        int no = g.oh * g.ow;
        ncase++;
        if (is_avg) {
            st_avgpool_forward(y, x, 1, &g);
            brute_avg(yb, x, &g);
            if (nan_maxdiff(y, yb, no) > 1e-5) bad_avg++;
        } else {
            st_maxpool_forward(y, idx, x, 1, &g);
            brute_max(yb, idxb, x, &g);
            for (int i = 0; i < no; i++) {
                if (idxb[i] < 0) { /* no real cell: -inf and index -1 */
                    nempty++;
                    if (!(isinf(y[i]) && y[i] < 0)) bad_max++;
                    if (idx[i] != -1) bad_idx++;
                    continue;
                }
                if (y[i] != yb[i]) bad_max++;
                if (idx[i] != idxb[i]) bad_idx++;
            }
        }
    }
    CHECK(ncase > 1000, "brute force: only %d valid geometries", ncase);
    CHECK(nempty > 0, "brute force: no window without real cells was tried");
    CHECK(bad_max == 0 && bad_idx == 0, "brute force max: %d values, %d indices differ", bad_max, bad_idx);
    CHECK(bad_avg == 0, "brute force avg: %d cases differ", bad_avg);
}

/* ---------------------------------------------------------------- 5. threads */
static void test_threads(void) {
    st_pool_geom g, ga;
    int planes = 64, H = 48, W = 48;
    st_status st = st_pool_geom_init(&g, H, W, (int[]){3, 3}, (int[]){1, 1}, (int[]){1, 1}, NULL, 0, 0, 0);
    CHECK(st == ST_OK && (long long)planes * g.oh * g.ow > 100000, "threads: geometry");
    st_pool_geom_adaptive(&ga, H, W, 47, 45);
    size_t isz = (size_t)planes * H * W, osz = (size_t)planes * g.oh * g.ow, asz = (size_t)planes * ga.oh * ga.ow;
    float *x = xmalloc(isz * 4), *gy = xmalloc(osz * 4);
    st_rng r;
    st_rng_seed(&r, 5);
    for (size_t i = 0; i < isz; i++) x[i] = (float)st_rng_normal(&r);
    for (size_t i = 0; i < osz; i++) gy[i] = (float)st_rng_normal(&r);
    float *res[2][6];
    int32_t *ix[2];
    size_t sizes[6] = {osz, isz, osz, isz, asz, isz};
    int nthreads[2] = {1, 4};
    for (int t = 0; t < 2; t++) {
#ifdef _OPENMP
        omp_set_num_threads(nthreads[t]);
#else
        (void)nthreads;
#endif
        for (int f = 0; f < 6; f++) { res[t][f] = xmalloc(sizes[f] * 4); memset(res[t][f], 0, sizes[f] * 4); }
        ix[t] = xmalloc(osz * sizeof(int32_t));
        st_maxpool_forward(res[t][0], ix[t], x, planes, &g);
        st_maxpool_backward(res[t][1], gy, ix[t], planes, &g);
        st_avgpool_forward(res[t][2], x, planes, &g);
        st_avgpool_backward(res[t][3], gy, planes, &g);
        st_adaptive_avgpool_forward(res[t][4], x, planes, &ga);
        st_adaptive_avgpool_backward(res[t][5], gy, planes, &ga); /* gy is large enough */
    }
#ifdef _OPENMP
    omp_set_num_threads(omp_get_num_procs());
#endif
    for (int f = 0; f < 6; f++)
        CHECK(memcmp(res[0][f], res[1][f], sizes[f] * 4) == 0, "threads: result %d depends on the thread count", f);
    CHECK(memcmp(ix[0], ix[1], osz * sizeof(int32_t)) == 0, "threads: indices depend on the thread count");
    /* and the parallel path agrees with the double version */
    double *xd = xmalloc(isz * 8), *yd = xmalloc(osz * 8);
    for (size_t i = 0; i < isz; i++) xd[i] = x[i];
    st_avgpool_forward_f64(yd, xd, planes, &g);
    cmp_f64_nan(yd, res[1][2], osz, "threads", "avg vs f64");
    st_maxpool_forward_f64(yd, NULL, xd, planes, &g);
    cmp_f64_nan(yd, res[1][0], osz, "threads", "max vs f64");
    free(xd); free(yd);
    for (int t = 0; t < 2; t++) { for (int f = 0; f < 6; f++) free(res[t][f]); free(ix[t]); }
    free(x); free(gy);
}

/* ---------------------------------------------------------------- 6. geometry */
static void test_geometry(void) {
    st_pool_geom g;
    st_status st;
    st = st_pool_geom_init(&g, 8, 8, (int[]){3, 3}, (int[]){1, 1}, (int[]){2, 2}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_ARG && strstr(st_errmsg(), "pad should be at most half of effective kernel size"),
          "pad 2 with kernel 3: %d %s", st, st_errmsg());
    st = st_pool_geom_init(&g, 8, 8, (int[]){3, 3}, (int[]){1, 1}, (int[]){2, 2}, (int[]){2, 2}, 0, 1, 0);
    CHECK(st == ST_OK, "pad 2 with kernel 3 dilation 2 (effective 5) should pass: %s", st_errmsg());
    st = st_pool_geom_init(&g, 8, 8, (int[]){2, 2}, NULL, (int[]){0, 2}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_ARG, "pad 2 with kernel 2 accepted");
    st = st_pool_geom_init(&g, 8, 8, (int[]){0, 2}, NULL, (int[]){0, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_ARG, "kernel 0 accepted");
    st = st_pool_geom_init(&g, 8, 8, (int[]){2, 2}, (int[]){-1, 1}, (int[]){0, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_ARG, "stride -1 accepted");
    st = st_pool_geom_init(&g, 8, 8, (int[]){2, 2}, NULL, (int[]){0, 0}, (int[]){1, 0}, 0, 1, 0);
    CHECK(st == ST_ERR_ARG, "dilation 0 accepted");
    st = st_pool_geom_init(&g, 8, 8, (int[]){2, 2}, NULL, (int[]){-1, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_ARG, "padding -1 accepted");
    st = st_pool_geom_init(&g, 8, 8, (int[]){2, 2}, NULL, (int[]){0, 0}, NULL, 0, 1, -3);
    CHECK(st == ST_ERR_ARG, "divisor_override -3 accepted");
    st = st_pool_geom_init(&g, 2, 8, (int[]){5, 2}, NULL, (int[]){0, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_SHAPE && strstr(st_errmsg(), "too small"), "kernel 5 on height 2: %d %s", st, st_errmsg());
    st = st_pool_geom_init(&g, 0, 8, (int[]){1, 2}, NULL, (int[]){0, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_ERR_SHAPE, "height 0 accepted");
    /* default stride = kernel, via NULL or 0 entries */
    st = st_pool_geom_init(&g, 9, 10, (int[]){3, 2}, (int[]){0, 0}, (int[]){0, 0}, NULL, 0, 1, 0);
    CHECK(st == ST_OK && g.sh == 3 && g.sw == 2 && g.oh == 3 && g.ow == 5, "default stride: %d %d %dx%d", g.sh, g.sw, g.oh, g.ow);
    /* ceil mode: 6 -> 4 (floor 3); the correction: 5, k2 s2 p1 -> 3, not 4 */
    st_pool_geom_init(&g, 6, 6, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 1, 1, 0);
    CHECK(g.oh == 4 && g.ow == 4, "ceil 6,k3,s2,p1: %dx%d, want 4x4", g.oh, g.ow);
    st_pool_geom_init(&g, 6, 6, (int[]){3, 3}, (int[]){2, 2}, (int[]){1, 1}, NULL, 0, 1, 0);
    CHECK(g.oh == 3 && g.ow == 3, "floor 6,k3,s2,p1: %dx%d, want 3x3", g.oh, g.ow);
    st_pool_geom_init(&g, 5, 5, (int[]){2, 2}, (int[]){2, 2}, (int[]){1, 1}, NULL, 1, 1, 0);
    CHECK(g.oh == 3 && g.ow == 3, "ceil 5,k2,s2,p1: %dx%d, want 3x3", g.oh, g.ow);
    st_pool_geom_init(&g, 1, 10, (int[]){1, 3}, (int[]){1, 3}, (int[]){0, 0}, NULL, 1, 1, 0);
    CHECK(g.oh == 1 && g.ow == 4, "1D ceil 10,k3,s3: %dx%d, want 1x4", g.oh, g.ow);
    st = st_pool_geom_adaptive(&g, 5, 5, 0, 3);
    CHECK(st == ST_ERR_ARG, "adaptive output 0 accepted");
    st = st_pool_geom_adaptive(&g, 5, -1, 2, 3);
    CHECK(st == ST_ERR_SHAPE, "adaptive input -1 accepted");
    st = st_pool_geom_adaptive(&g, 5, 7, 8, 3);
    CHECK(st == ST_OK && g.oh == 8 && g.ow == 3, "adaptive 5x7 -> 8x3: %s", st_errmsg());
}

/* ---------------------------------------------------------------- 7. fast max pooling */
static void test_fast_max(void) {
    st_rng r;
    st_rng_seed(&r, 11);
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, 1.0f};
    int cases = 0, bad = 0;
    for (int t = 0; t < 300; t++) {
        int kh = t % 3 == 0 ? 1 : 1 + (int)st_rng_below(&r, 3), planes = 1 + (int)st_rng_below(&r, 5);
        int ih = kh == 1 && t % 2 ? 1 : kh + (int)st_rng_below(&r, 12), iw = 2 + (int)st_rng_below(&r, t % 4 ? 70 : 8);
        int k[2] = {kh, 2}, zero[2] = {0, 0};
        st_pool_geom g;
        if (st_pool_geom_init(&g, ih, iw, k, NULL, zero, NULL, t % 5 == 0, 1, 0)) continue;
        size_t isz = (size_t)planes * ih * iw, osz = (size_t)planes * g.oh * g.ow;
        float *x = xmalloc(isz * sizeof(float)), *y = xmalloc(osz * sizeof(float)), *yr = xmalloc(osz * sizeof(float));
        int32_t *ix = xmalloc(osz * sizeof(int32_t)), *ir = xmalloc(osz * sizeof(int32_t));
        for (size_t i = 0; i < isz; i++) {
            uint32_t u = st_rng_below(&r, 20);
            x[i] = t % 3 == 1 ? (float)st_rng_below(&r, 3) /* many ties */
                 : u < 7 && t % 2 ? special[u] : (float)st_rng_normal(&r);
        }
        st_maxpool_forward(y, ix, x, planes, &g);
        st_maxpool_forward_ref(yr, ir, x, planes, &g);
        int differ = memcmp(y, yr, osz * sizeof(float)) != 0 || memcmp(ix, ir, osz * sizeof(int32_t)) != 0;
        memset(y, 0, osz * sizeof(float));
        st_maxpool_forward(y, NULL, x, planes, &g);
        differ |= memcmp(y, yr, osz * sizeof(float)) != 0;
        if (differ && bad++ < 3)
            CHECK(0, "fast max pool %dx%d kernel %dx2 (%d planes): differs from the general loop", ih, iw, kh, planes);
        cases++;
        free(x); free(y); free(yr); free(ix); free(ir);
    }
    CHECK(bad == 0 && cases > 250, "fast max pool: %d of %d cases differ", bad, cases);
}

/* The inference path (no indices, dilation 1, any window, stride and padding) against the
 * general loop: bit-identical values, NaN, infinities, signed zeros and ties included. */
static void test_values_only_max(void) {
    st_rng r;
    st_rng_seed(&r, 11);
    const float special[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, 1.0f};
    int bad = 0, cases = 0;
    for (int t = 0; t < 400; t++) {
        int k[2] = {1 + (int)st_rng_below(&r, 4), 1 + (int)st_rng_below(&r, 4)};
        int s[2] = {1 + (int)st_rng_below(&r, 3), 1 + (int)st_rng_below(&r, 3)};
        int p[2] = {(int)st_rng_below(&r, (uint32_t)(k[0] / 2 + 1)), (int)st_rng_below(&r, (uint32_t)(k[1] / 2 + 1))};
        int planes = 1 + (int)st_rng_below(&r, 4), ih = 1 + (int)st_rng_below(&r, 20);
        int iw = 1 + (int)st_rng_below(&r, t % 4 ? 40 : 90); /* (wide rows: several vectors of 16 outputs) */
        st_pool_geom g;
        if (st_pool_geom_init(&g, ih, iw, k, s, p, NULL, t % 3 == 0, 1, 0)) continue;
        size_t isz = (size_t)planes * ih * iw, osz = (size_t)planes * g.oh * g.ow;
        float *x = xmalloc(isz * sizeof(float)), *y = xmalloc(osz * sizeof(float)), *yr = xmalloc(osz * sizeof(float));
        int32_t *ir = xmalloc(osz * sizeof(int32_t));
        for (size_t i = 0; i < isz; i++) {
            uint32_t u = st_rng_below(&r, 20);
            x[i] = t % 3 == 1 ? (float)st_rng_below(&r, 3) : u < 7 && t % 2 ? special[u] : (float)st_rng_normal(&r);
        }
        st_maxpool_forward(y, NULL, x, planes, &g);
        st_maxpool_forward_ref(yr, ir, x, planes, &g);
        if (memcmp(y, yr, osz * sizeof(float)) != 0 && bad++ < 3)
            CHECK(0, "max pool without indices, %dx%d kernel %dx%d stride %dx%d pad %dx%d: differs from the general loop",
                  ih, iw, k[0], k[1], s[0], s[1], p[0], p[1]);
        cases++;
        free(x); free(y); free(yr); free(ir);
    }
    CHECK(bad == 0 && cases > 300, "max pool without indices: %d of %d cases differ", bad, cases);
}

int main(void) {
    test_fixtures();
    test_spec_examples();
    test_finite_differences();
    test_brute_force();
    test_threads();
    test_geometry();
    test_fast_max();
    test_values_only_max();
    return test_done("test_pool");
}
