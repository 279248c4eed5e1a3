/* test_batchnorm.c - batch normalisation and dropout against PyTorch and by hand.
 *
 * 1. Every case of tests/fixtures/batchnorm.safetensors (scripts/gen_bn_fixtures.py; run
 *    from the repository root): train mode (y, running statistics after one and two
 *    batches, num_batches_tracked, gx, ggamma, gbeta; gradients into zeros and
 *    accumulating onto ones) and eval mode (y, gx, ggamma, gbeta), float and double.
 *    Tolerance: max |ours - torch| <= 1e-5 * (1 + max |torch|); the double kernels are
 *    held to 1e-9 against a float64 copy of the module (a float32 reference is itself
 *    off by ~1e-4 where N*S = 2 and var ~ eps).
 * 2. Finite differences in double for the training backward (x, gamma, beta), and for
 *    the eval backward.
 * 3. The N*S == 1 error and argument checks.
 * 4. Results independent of the thread count on a large case (OpenMP path).
 * 5. Dropout and dropout2d: mask statistics, scaling, backward, determinism, whole planes,
 *    p = 0 and p = 1.
 */
#include "batchnorm.h"
#include "fixture.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TOL 1e-5
#define BN_FIXTURE "tests/fixtures/batchnorm.safetensors"

/* ---------------------------------------------------------------- helpers */
/* Like fixture.h's xmalloc, but the memory is zeroed. */
static void *xzalloc(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
/* Against PyTorch's float64 module: max |ours - torch| <= 1e-9 * (1 + max |torch|). */
static void cmp64(const double *got, const double *ref, size_t n, const char *desc, const char *what) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - ref[i]);
        if (d > err || d != d) err = d != d ? INFINITY : d;
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
    }
    double tol = 1e-9 * (1 + mx);
    CHECK(err <= tol, "%s: %s: max abs error %.3g > tolerance %.3g", desc, what, err, tol);
}
static float *fill(size_t n, float v) {
    float *a = xzalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = v;
    return a;
}
static double *fill_f64(size_t n, double v) {
    double *a = xzalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = v;
    return a;
}
static float *dup(const float *a, size_t n) {
    float *d = xzalloc(n * sizeof(float));
    memcpy(d, a, n * sizeof(float));
    return d;
}
static void sub_one(float *a, size_t n) { for (size_t i = 0; i < n; i++) a[i] -= 1.0f; }

static const float *get_f32(const st_tensors *ts, int i, const char *name, size_t want) {
    char key[48];
    snprintf(key, sizeof key, "%d.%s", i, name);
    const st_array *a = st_tensors_get(ts, key);
    if (!a || a->dtype != ST_F32 || (size_t)st_array_numel(a) != want) return NULL;
    return a->data;
}

static const double *get_f64(const st_tensors *ts, int i, const char *name, size_t want) {
    char key[48];
    snprintf(key, sizeof key, "%d.%s", i, name);
    const st_array *a = st_tensors_get(ts, key);
    if (!a || a->dtype != ST_F64 || (size_t)st_array_numel(a) != want) return NULL;
    return a->data;
}

/* ---------------------------------------------------------------- 1. fixtures */
static void fixture_case(const st_tensors *ts, int i, int *ntrain, int *neval) {
    char key[32], desc[128], mode[16];
    snprintf(key, sizeof key, "%d", i);
    const char *js = st_tensors_meta(ts, key);
    CHECK(js != NULL, "case %d: no metadata", i);
    if (!js) return;
    int dim, n, c, s, affine, track, nbt1, nbt2;
    double momd, epsd;
    int ok = jstr(js, "mode", mode, sizeof mode) && jint(js, "dim", &dim) && jint(js, "n", &n) &&
             jint(js, "c", &c) && jint(js, "s", &s) && jint(js, "affine", &affine) &&
             jint(js, "track", &track) && jnum(js, "momentum", &momd) && jnum(js, "eps", &epsd) &&
             jint(js, "nbt1", &nbt1) && jint(js, "nbt2", &nbt2);
    CHECK(ok, "case %d: bad metadata %s", i, js);
    if (!ok) return;
    int train = !strcmp(mode, "train");
    snprintf(desc, sizeof desc, "case %d (%s bn%dd N=%d C=%d S=%d affine=%d track=%d mom=%g eps=%g)",
             i, mode, dim, n, c, s, affine, track, momd, epsd);
    *ntrain += train; *neval += !train;
    const size_t sz = (size_t)n * c * s;
    const float *x = get_f32(ts, i, "x", sz), *gy = get_f32(ts, i, "gy", sz);
    const float *yref = get_f32(ts, i, "y", sz), *gxref = get_f32(ts, i, "gx", sz);
    const float *gamma = affine ? get_f32(ts, i, "gamma", c) : NULL;
    const float *beta = affine ? get_f32(ts, i, "beta", c) : NULL;
    const float *ggref = affine ? get_f32(ts, i, "ggamma", c) : NULL;
    const float *gbref = affine ? get_f32(ts, i, "gbeta", c) : NULL;
    const float *rm0 = track ? get_f32(ts, i, "rm0", c) : NULL, *rv0 = track ? get_f32(ts, i, "rv0", c) : NULL;
    const double *y64 = get_f64(ts, i, "y64", sz), *gx64 = get_f64(ts, i, "gx64", sz);
    const double *gg64 = affine ? get_f64(ts, i, "ggamma64", c) : NULL;
    const double *gb64 = affine ? get_f64(ts, i, "gbeta64", c) : NULL;
    ok = x && gy && yref && gxref && (!affine || (gamma && beta && ggref && gbref)) && (!track || (rm0 && rv0)) &&
         y64 && gx64 && (!affine || (gg64 && gb64));
    const float *x2 = NULL, *rm1 = NULL, *rv1 = NULL, *rm2 = NULL, *rv2 = NULL;
    if (ok && train) {
        x2 = get_f32(ts, i, "x2", sz);
        ok = x2 != NULL;
        if (track) {
            rm1 = get_f32(ts, i, "rm1", c); rv1 = get_f32(ts, i, "rv1", c);
            rm2 = get_f32(ts, i, "rm2", c); rv2 = get_f32(ts, i, "rv2", c);
            ok = rm1 && rv1 && rm2 && rv2;
        }
    }
    CHECK(ok, "%s: missing or misshapen tensors", desc);
    if (!ok) return;

    const float eps = (float)epsd, mom = (float)momd;
    float *y = fill(sz, 0), *dx = fill(sz, 0), *dg = fill(c, 0), *db = fill(c, 0);
    float *mean = fill(c, 0), *invstd = fill(c, 0);
    float *rm = track ? dup(rm0, c) : NULL, *rv = track ? dup(rv0, c) : NULL;
    int64_t nbt = 0;

    if (train || !track) {
        /* training statistics (also an eval-mode module without running statistics) */
        st_status st = st_bn_forward_train(y, mean, invstd, x, gamma, beta, rm, rv, n, c, s, eps,
                                           train ? mom : 0.1f, train ? &nbt : NULL);
        CHECK(st == ST_OK, "%s: forward_train failed: %s", desc, st_errmsg());
        cmp(y, yref, sz, desc, "y");
        if (train && track) {
            cmp(rm, rm1, c, desc, "running_mean after 1");
            cmp(rv, rv1, c, desc, "running_var after 1");
        }
        if (train) CHECK(nbt == nbt1, "%s: num_batches_tracked %lld, want %d", desc, (long long)nbt, nbt1);
        st_bn_backward(dx, affine ? dg : NULL, affine ? db : NULL, gy, x, mean, invstd, gamma, n, c, s);
        cmp(dx, gxref, sz, desc, "gx");
        if (affine) { cmp(dg, ggref, c, desc, "ggamma"); cmp(db, gbref, c, desc, "gbeta"); }
        /* accumulation onto ones; dx = NULL still gives the parameter gradients */
        float *dx1 = fill(sz, 1), *dg1 = fill(c, 1), *db1 = fill(c, 1);
        st_bn_backward(dx1, dg1, db1, gy, x, mean, invstd, gamma, n, c, s);
        sub_one(dx1, sz); cmp(dx1, gxref, sz, desc, "gx (accumulated)");
        float *dg2 = fill(c, 0), *db2 = fill(c, 0);
        st_bn_backward(NULL, dg2, db2, gy, x, mean, invstd, gamma, n, c, s);
        if (affine) {
            sub_one(dg1, c); cmp(dg1, ggref, c, desc, "ggamma (accumulated)");
            sub_one(db1, c); cmp(db1, gbref, c, desc, "gbeta (accumulated)");
            cmp(dg2, ggref, c, desc, "ggamma (dx NULL)");
            cmp(db2, gbref, c, desc, "gbeta (dx NULL)");
        }
        free(dx1); free(dg1); free(db1); free(dg2); free(db2);
        if (train) {
            st = st_bn_forward_train(y, NULL, NULL, x2, gamma, beta, rm, rv, n, c, s, eps, mom, &nbt);
            CHECK(st == ST_OK, "%s: second forward_train failed: %s", desc, st_errmsg());
            if (track) {
                cmp(rm, rm2, c, desc, "running_mean after 2");
                cmp(rv, rv2, c, desc, "running_var after 2");
            }
            CHECK(nbt == nbt2, "%s: num_batches_tracked %lld after 2, want %d", desc, (long long)nbt, nbt2);
        }
        /* double */
        double *xd = to_f64(x, sz), *gyd = to_f64(gy, sz), *gd = to_f64(gamma, c), *bd = to_f64(beta, c);
        double *rmd = to_f64(rm0, c), *rvd = to_f64(rv0, c);
        double *yd = fill_f64(sz, 0), *dxd = fill_f64(sz, 0), *dgd = fill_f64(c, 0), *dbd = fill_f64(c, 0);
        double *md = fill_f64(c, 0), *isd = fill_f64(c, 0);
        int64_t nbtd = 0;
        st = st_bn_forward_train_f64(yd, md, isd, xd, gd, bd, train ? rmd : NULL, train ? rvd : NULL,
                                     n, c, s, epsd, train ? momd : 0.1, &nbtd);
        CHECK(st == ST_OK, "%s: forward_train_f64 failed", desc);
        cmp64(yd, y64, sz, desc, "y (f64)");
        if (train && track) {
            cmp_f64(rmd, rm1, c, desc, "running_mean (f64)");
            cmp_f64(rvd, rv1, c, desc, "running_var (f64)");
            CHECK(nbtd == nbt1, "%s: num_batches_tracked (f64)", desc);
        }
        st_bn_backward_f64(dxd, dgd, dbd, gyd, xd, md, isd, gd, n, c, s);
        cmp64(dxd, gx64, sz, desc, "gx (f64)");
        if (affine) { cmp64(dgd, gg64, c, desc, "ggamma (f64)"); cmp64(dbd, gb64, c, desc, "gbeta (f64)"); }
        free(xd); free(gyd); free(gd); free(bd); free(rmd); free(rvd); free(yd); free(dxd); free(dgd);
        free(dbd); free(md); free(isd);
    } else {
        st_bn_forward_eval(y, x, gamma, beta, rm0, rv0, n, c, s, eps);
        cmp(y, yref, sz, desc, "y");
        st_bn_backward_eval(dx, affine ? dg : NULL, affine ? db : NULL, gy, x, gamma, rm0, rv0, n, c, s, eps);
        cmp(dx, gxref, sz, desc, "gx");
        if (affine) { cmp(dg, ggref, c, desc, "ggamma"); cmp(db, gbref, c, desc, "gbeta"); }
        double *xd = to_f64(x, sz), *gyd = to_f64(gy, sz), *gd = to_f64(gamma, c), *bd = to_f64(beta, c);
        double *rmd = to_f64(rm0, c), *rvd = to_f64(rv0, c);
        double *yd = fill_f64(sz, 0), *dxd = fill_f64(sz, 0), *dgd = fill_f64(c, 0), *dbd = fill_f64(c, 0);
        st_bn_forward_eval_f64(yd, xd, gd, bd, rmd, rvd, n, c, s, epsd);
        cmp64(yd, y64, sz, desc, "y (f64)");
        st_bn_backward_eval_f64(dxd, dgd, dbd, gyd, xd, gd, rmd, rvd, n, c, s, epsd);
        cmp64(dxd, gx64, sz, desc, "gx (f64)");
        if (affine) { cmp64(dgd, gg64, c, desc, "ggamma (f64)"); cmp64(dbd, gb64, c, desc, "gbeta (f64)"); }
        free(xd); free(gyd); free(gd); free(bd); free(rmd); free(rvd); free(yd); free(dxd); free(dgd); free(dbd);
    }
    free(y); free(dx); free(dg); free(db); free(mean); free(invstd); free(rm); free(rv);
}

static void test_fixtures(void) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status st = st_safetensors_load(BN_FIXTURE, &ts);
    CHECK(st == ST_OK, "load %s: %s", BN_FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cnt = st_tensors_meta(&ts, "count");
    int count = cnt ? atoi(cnt) : 0;
    CHECK(count >= 40, "fixture: %d cases", count);
    int ntrain = 0, neval = 0;
    for (int i = 0; i < count; i++) fixture_case(&ts, i, &ntrain, &neval);
    printf("fixtures: %d cases (%d train, %d eval)\n", count, ntrain, neval);
    st_tensors_free(&ts);
}

/* ---------------------------------------------------------------- 2. finite differences */
static double loss_train(const double *x, const double *g, const double *b, const double *gy,
                         int n, int c, int s, double eps, double *y) {
    st_bn_forward_train_f64(y, NULL, NULL, x, g, b, NULL, NULL, n, c, s, eps, 0.1, NULL);
    double l = 0;
    for (size_t i = 0; i < (size_t)n * c * s; i++) l += y[i] * gy[i];
    return l;
}
static double loss_eval(const double *x, const double *g, const double *b, const double *gy,
                        const double *rm, const double *rv, int n, int c, int s, double eps, double *y) {
    st_bn_forward_eval_f64(y, x, g, b, rm, rv, n, c, s, eps);
    double l = 0;
    for (size_t i = 0; i < (size_t)n * c * s; i++) l += y[i] * gy[i];
    return l;
}

/* Numerical derivative of the loss with respect to v[j] (central, h = 1e-6). */
#define FD(LOSSCALL, v, j, out)                                 \
    do {                                                        \
        double keep_ = (v)[j], h_ = 1e-6;                       \
        (v)[j] = keep_ + h_; double lp_ = LOSSCALL;             \
        (v)[j] = keep_ - h_; double lm_ = LOSSCALL;             \
        (v)[j] = keep_; (out) = (lp_ - lm_) / (2 * h_);         \
    } while (0)

static void check_grad(const double *an, const double *num, size_t n, const char *desc, const char *what) {
    double err = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(an[i] - num[i]);
        if (d > err) err = d;
        if (fabs(num[i]) > mx) mx = fabs(num[i]);
    }
    CHECK(err <= 1e-6 * (1 + mx), "%s: %s: analytic vs numeric max error %.3g (max %.3g)", desc, what, err, mx);
}

static void test_finite_differences(void) {
    static const int shapes[][3] = {{2, 1, 1}, {3, 2, 1}, {8, 3, 1}, {1, 2, 5}, {2, 3, 4}, {4, 2, 3},
                                    {1, 1, 2}, {3, 4, 6}, {2, 2, 9}, {5, 1, 7}, {2, 5, 16}};
    st_rng rng;
    st_rng_seed(&rng, 1234);
    int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int t = 0; t < nshapes; t++) {
        const int n = shapes[t][0], c = shapes[t][1], s = shapes[t][2];
        const size_t sz = (size_t)n * c * s;
        const double eps = t % 2 ? 1e-3 : 1e-5;
        char desc[64];
        snprintf(desc, sizeof desc, "fd N=%d C=%d S=%d", n, c, s);
        double *x = fill_f64(sz, 0), *gy = fill_f64(sz, 0), *y = fill_f64(sz, 0);
        double *g = fill_f64(c, 0), *b = fill_f64(c, 0), *rm = fill_f64(c, 0), *rv = fill_f64(c, 0);
        for (size_t i = 0; i < sz; i++) { x[i] = st_rng_normal(&rng) * 1.5 + 0.5; gy[i] = st_rng_normal(&rng); }
        for (int i = 0; i < c; i++) {
            g[i] = 0.5 + st_rng_uniform(&rng); b[i] = st_rng_normal(&rng);
            rm[i] = st_rng_normal(&rng); rv[i] = 0.2 + st_rng_uniform(&rng);
        }
        double *mean = fill_f64(c, 0), *invstd = fill_f64(c, 0);
        st_bn_forward_train_f64(y, mean, invstd, x, g, b, NULL, NULL, n, c, s, eps, 0.1, NULL);
        for (int affine = 0; affine < 2; affine++) {
            const double *gg = affine ? g : NULL, *bb = affine ? b : NULL;
            double *dx = fill_f64(sz, 0), *dg = fill_f64(c, 0), *db = fill_f64(c, 0);
            double *nx = fill_f64(sz, 0), *ng = fill_f64(c, 0), *nb = fill_f64(c, 0);
            st_bn_backward_f64(dx, dg, db, gy, x, mean, invstd, gg, n, c, s);
            for (size_t j = 0; j < sz; j++) FD(loss_train(x, gg, bb, gy, n, c, s, eps, y), x, j, nx[j]);
            check_grad(dx, nx, sz, desc, affine ? "train dx (affine)" : "train dx");
            if (affine) {
                for (int j = 0; j < c; j++) FD(loss_train(x, g, b, gy, n, c, s, eps, y), g, j, ng[j]);
                for (int j = 0; j < c; j++) FD(loss_train(x, g, b, gy, n, c, s, eps, y), b, j, nb[j]);
                check_grad(dg, ng, c, desc, "train dgamma");
                check_grad(db, nb, c, desc, "train dbeta");
            }
            /* eval */
            memset(dx, 0, sz * sizeof *dx); memset(dg, 0, c * sizeof *dg); memset(db, 0, c * sizeof *db);
            st_bn_backward_eval_f64(dx, dg, db, gy, x, gg, rm, rv, n, c, s, eps);
            for (size_t j = 0; j < sz; j++) FD(loss_eval(x, gg, bb, gy, rm, rv, n, c, s, eps, y), x, j, nx[j]);
            check_grad(dx, nx, sz, desc, "eval dx");
            if (affine) {
                for (int j = 0; j < c; j++) FD(loss_eval(x, g, b, gy, rm, rv, n, c, s, eps, y), g, j, ng[j]);
                for (int j = 0; j < c; j++) FD(loss_eval(x, g, b, gy, rm, rv, n, c, s, eps, y), b, j, nb[j]);
                check_grad(dg, ng, c, desc, "eval dgamma");
                check_grad(db, nb, c, desc, "eval dbeta");
            }
            free(dx); free(dg); free(db); free(nx); free(ng); free(nb);
        }
        /* the float kernel agrees with the double one */
        float *xf = fill(sz, 0), *gyf = fill(sz, 0), *gf = fill(c, 0), *bf = fill(c, 0);
        for (size_t i = 0; i < sz; i++) { xf[i] = (float)x[i]; gyf[i] = (float)gy[i]; }
        for (int i = 0; i < c; i++) { gf[i] = (float)g[i]; bf[i] = (float)b[i]; }
        double *xd = fill_f64(sz, 0), *gyd = fill_f64(sz, 0), *gd = fill_f64(c, 0), *bd = fill_f64(c, 0);
        for (size_t i = 0; i < sz; i++) { xd[i] = xf[i]; gyd[i] = gyf[i]; }
        for (int i = 0; i < c; i++) { gd[i] = gf[i]; bd[i] = bf[i]; }
        float *yf = fill(sz, 0), *mf = fill(c, 0), *isf = fill(c, 0), *dxf = fill(sz, 0), *dgf = fill(c, 0), *dbf = fill(c, 0);
        double *dxd = fill_f64(sz, 0), *dgd = fill_f64(c, 0), *dbd = fill_f64(c, 0);
        st_bn_forward_train(yf, mf, isf, xf, gf, bf, NULL, NULL, n, c, s, (float)eps, 0.1f, NULL);
        st_bn_forward_train_f64(y, mean, invstd, xd, gd, bd, NULL, NULL, n, c, s, eps, 0.1, NULL);
        st_bn_backward(dxf, dgf, dbf, gyf, xf, mf, isf, gf, n, c, s);
        st_bn_backward_f64(dxd, dgd, dbd, gyd, xd, mean, invstd, gd, n, c, s);
        float *yr = fill(sz, 0), *dxr = fill(sz, 0), *dgr = fill(c, 0), *dbr = fill(c, 0);
        for (size_t i = 0; i < sz; i++) { yr[i] = (float)y[i]; dxr[i] = (float)dxd[i]; }
        for (int i = 0; i < c; i++) { dgr[i] = (float)dgd[i]; dbr[i] = (float)dbd[i]; }
        cmp(yf, yr, sz, desc, "float vs double y");
        cmp(dxf, dxr, sz, desc, "float vs double dx");
        cmp(dgf, dgr, c, desc, "float vs double dgamma");
        cmp(dbf, dbr, c, desc, "float vs double dbeta");
        free(xf); free(gyf); free(gf); free(bf); free(xd); free(gyd); free(gd); free(bd);
        free(yf); free(mf); free(isf); free(dxf); free(dgf); free(dbf); free(dxd); free(dgd); free(dbd);
        free(yr); free(dxr); free(dgr); free(dbr);
        free(x); free(gy); free(y); free(g); free(b); free(rm); free(rv); free(mean); free(invstd);
    }
}

/* ---------------------------------------------------------------- 3. errors */
static void test_errors(void) {
    float x[4] = {1, 2, 3, 4}, y[4] = {-7, -7, -7, -7}, rm[4] = {0, 0, 0, 0}, rv[4] = {1, 1, 1, 1};
    float mean[4] = {-7, -7, -7, -7};
    int64_t nbt = 5;
    st_status st = st_bn_forward_train(y, mean, NULL, x, NULL, NULL, rm, rv, 1, 4, 1, 1e-5f, 0.1f, &nbt);
    CHECK(st == ST_ERR_SHAPE, "N*S == 1: status %d, want ST_ERR_SHAPE", (int)st);
    CHECK(strstr(st_errmsg(), "Expected more than 1 value per channel when training") != NULL,
          "N*S == 1: message '%s'", st_errmsg());
    CHECK(nbt == 5 && y[0] == -7 && mean[0] == -7 && rm[0] == 0 && rv[0] == 1, "N*S == 1: outputs were written");
    st_bn_forward_eval(y, x, NULL, NULL, rm, rv, 1, 4, 1, 1e-5f); /* eval with a single value is fine */
    CHECK(fabsf(y[3] - 4.0f / sqrtf(1 + 1e-5f)) < 1e-6f, "eval with N*S == 1: y[3] = %g", y[3]);
    st = st_bn_forward_train(y, NULL, NULL, x, NULL, NULL, NULL, NULL, 1, 2, 2, 1e-5f, 0.1f, NULL);
    CHECK(st == ST_OK, "N=1, S=2 is fine: %s", st_errmsg());
    CHECK(fabsf(y[0] + 1) < 1e-4f && fabsf(y[1] - 1) < 1e-4f, "N=1, S=2: y = %g %g", y[0], y[1]);
    st = st_bn_forward_train(y, NULL, NULL, x, NULL, NULL, NULL, NULL, 2, 2, 1, 1e-5f, 0.1f, NULL);
    CHECK(st == ST_OK, "N=2, S=1 is fine: %s", st_errmsg());
    st = st_bn_forward_train(y, NULL, NULL, x, NULL, NULL, NULL, NULL, 0, 2, 2, 1e-5f, 0.1f, NULL);
    CHECK(st == ST_ERR_SHAPE, "N=0: status %d", (int)st);
    st = st_bn_forward_train(y, NULL, NULL, x, NULL, NULL, rm, rv, 2, 2, 1, 1e-5f, -1.0f, NULL);
    CHECK(st == ST_ERR_ARG, "momentum None without a counter: status %d", (int)st);
    /* not tracked: the counter stays */
    nbt = 3;
    st = st_bn_forward_train(y, NULL, NULL, x, NULL, NULL, NULL, NULL, 2, 2, 1, 1e-5f, 0.1f, &nbt);
    CHECK(st == ST_OK && nbt == 3, "untracked: num_batches_tracked %lld", (long long)nbt);
    /* cumulative average by hand: batch means 2 and 3 -> running mean 2.5 after two */
    float a[2] = {1, 3}, b[2] = {2, 4}, m1 = 7, v1 = 7, yy[2];
    nbt = 0;
    st_bn_forward_train(yy, NULL, NULL, a, NULL, NULL, &m1, &v1, 2, 1, 1, 1e-5f, -1.0f, &nbt);
    CHECK(nbt == 1 && m1 == 2 && v1 == 2, "cumulative 1: nbt %lld mean %g var %g", (long long)nbt, m1, v1);
    st_bn_forward_train(yy, NULL, NULL, b, NULL, NULL, &m1, &v1, 2, 1, 1, 1e-5f, -1.0f, &nbt);
    CHECK(nbt == 2 && m1 == 2.5f && v1 == 2, "cumulative 2: nbt %lld mean %g var %g", (long long)nbt, m1, v1);
}

/* ---------------------------------------------------------------- 4. threads */
static void test_threads(void) {
#ifdef _OPENMP
    const int n = 8, c = 16, s = 32 * 32;
    const size_t sz = (size_t)n * c * s;
    st_rng rng;
    st_rng_seed(&rng, 99);
    float *x = fill(sz, 0), *gy = fill(sz, 0), *g = fill(c, 0), *b = fill(c, 0);
    for (size_t i = 0; i < sz; i++) { x[i] = (float)st_rng_normal(&rng) + 3; gy[i] = (float)st_rng_normal(&rng); }
    for (int i = 0; i < c; i++) { g[i] = (float)st_rng_uniform(&rng) + 0.5f; b[i] = (float)st_rng_normal(&rng); }
    float *y[2], *dx[2], *dg[2], *db[2], *rm[2], *rv[2], *m[2], *is[2];
    int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r ? 4 : 1);
        y[r] = fill(sz, 0); dx[r] = fill(sz, 0); dg[r] = fill(c, 0); db[r] = fill(c, 0);
        rm[r] = fill(c, 0); rv[r] = fill(c, 1); m[r] = fill(c, 0); is[r] = fill(c, 0);
        st_bn_forward_train(y[r], m[r], is[r], x, g, b, rm[r], rv[r], n, c, s, 1e-5f, 0.1f, NULL);
        st_bn_backward(dx[r], dg[r], db[r], gy, x, m[r], is[r], g, n, c, s);
    }
    omp_set_num_threads(saved);
    CHECK(!memcmp(y[0], y[1], sz * 4) && !memcmp(dx[0], dx[1], sz * 4) && !memcmp(dg[0], dg[1], c * 4) &&
          !memcmp(db[0], db[1], c * 4) && !memcmp(rm[0], rm[1], c * 4) && !memcmp(rv[0], rv[1], c * 4),
          "threads: results depend on the thread count");
    /* sanity: each channel of y has mean beta and standard deviation ~gamma */
    double mu = 0, ss = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s; k++) mu += y[0][((size_t)i * c + 5) * s + k];
    mu /= (double)n * s;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < s; k++) { double d = y[0][((size_t)i * c + 5) * s + k] - mu; ss += d * d; }
    CHECK(fabs(mu - b[5]) < 1e-5 && fabs(sqrt(ss / ((double)n * s)) - g[5]) < 1e-4,
          "threads: channel statistics %g %g, want %g %g", mu, sqrt(ss / ((double)n * s)), b[5], g[5]);
    for (int r = 0; r < 2; r++) { free(y[r]); free(dx[r]); free(dg[r]); free(db[r]); free(rm[r]); free(rv[r]); free(m[r]); free(is[r]); }
    free(x); free(gy); free(g); free(b);
#endif
}

/* ---------------------------------------------------------------- 5. dropout */
static void test_dropout(void) {
    const size_t N = 100000;
    uint8_t *mask = xzalloc(N), *mask2 = xzalloc(N);
    float *x = fill(N, 0), *y = fill(N, 0), *gy = fill(N, 0), *dx = fill(N, 0);
    st_rng rng, rng2;
    st_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++) { x[i] = (float)st_rng_normal(&rng); gy[i] = (float)st_rng_normal(&rng); }
    static const float ps[] = {0.1f, 0.25f, 0.5f, 0.8f};
    for (int t = 0; t < 4; t++) {
        const float p = ps[t];
        st_rng_seed(&rng, 100 + t);
        st_dropout_mask(mask, N, p, &rng);
        size_t kept = 0;
        int binary = 1;
        for (size_t i = 0; i < N; i++) { kept += mask[i]; binary &= mask[i] <= 1; }
        double q = 1 - p, sigma = sqrt(N * p * q);
        CHECK(binary, "p=%g: mask not 0/1", p);
        CHECK(fabs((double)kept - N * q) <= 3 * sigma, "p=%g: kept %zu of %zu, want %g +- %g", p, kept, N, N * q, 3 * sigma);
        /* same seed, same mask; another seed, another mask */
        st_rng_seed(&rng2, 100 + t);
        st_dropout_mask(mask2, N, p, &rng2);
        CHECK(!memcmp(mask, mask2, N), "p=%g: same seed gave a different mask", p);
        st_rng_seed(&rng2, 200 + t);
        st_dropout_mask(mask2, N, p, &rng2);
        CHECK(memcmp(mask, mask2, N) != 0, "p=%g: another seed gave the same mask", p);
        /* forward and backward */
        st_dropout_forward(y, x, mask, N, p);
        for (size_t i = 0; i < N; i++) dx[i] = 1;
        st_dropout_backward(dx, gy, mask, N, p);
        int okf = 1, okb = 1;
        for (size_t i = 0; i < N; i++) {
            float wy = mask[i] ? x[i] / (1 - p) : 0, wd = 1 + (mask[i] ? gy[i] / (1 - p) : 0);
            okf &= fabsf(y[i] - wy) <= 1e-6f * (1 + fabsf(wy));
            okb &= fabsf(dx[i] - wd) <= 1e-6f * (1 + fabsf(wd));
        }
        CHECK(okf, "p=%g: forward is not x * mask / (1 - p)", p);
        CHECK(okb, "p=%g: backward is not dx += dy * mask / (1 - p)", p);
        /* in place */
        float *z = dup(x, N);
        st_dropout_forward(z, z, mask, N, p);
        CHECK(!memcmp(z, y, N * sizeof(float)), "p=%g: in-place forward differs", p);
        free(z);
    }
    /* p = 0: identity, no draws */
    st_rng_seed(&rng, 5); rng2 = rng;
    st_dropout_mask(mask, N, 0.0f, &rng);
    CHECK(!memcmp(&rng, &rng2, sizeof rng), "p=0: the rng advanced");
    st_dropout_forward(y, x, mask, N, 0.0f);
    CHECK(!memcmp(y, x, N * sizeof(float)), "p=0: forward is not the identity");
    memset(dx, 0, N * sizeof(float));
    st_dropout_backward(dx, gy, mask, N, 0.0f);
    CHECK(!memcmp(dx, gy, N * sizeof(float)), "p=0: backward is not the identity");
    /* p = 1: zeros (even with an all-ones mask), no gradient */
    st_dropout_mask(mask, N, 1.0f, &rng);
    size_t kept = 0;
    for (size_t i = 0; i < N; i++) kept += mask[i];
    CHECK(kept == 0, "p=1: %zu kept", kept);
    memset(mask2, 1, N);
    st_dropout_forward(y, x, mask2, N, 1.0f);
    int zeros = 1;
    for (size_t i = 0; i < N; i++) zeros &= y[i] == 0;
    CHECK(zeros, "p=1: forward is not all zeros");
    for (size_t i = 0; i < N; i++) dx[i] = 2;
    st_dropout_backward(dx, gy, mask2, N, 1.0f);
    int twos = 1;
    for (size_t i = 0; i < N; i++) twos &= dx[i] == 2;
    CHECK(twos, "p=1: backward changed dx");

    /* dropout2d: one draw per (n, c) plane, whole planes kept or zeroed */
    {
        const int n = 50, c = 40, s = 50; /* 2000 planes, 100k elements */
        const size_t planes = (size_t)n * c;
        const float p = 0.3f;
        st_rng_seed(&rng, 11);
        st_dropout_mask(mask, planes, p, &rng);
        size_t k2 = 0;
        for (size_t q = 0; q < planes; q++) k2 += mask[q];
        double sigma = sqrt(planes * p * (1 - p));
        CHECK(fabs((double)k2 - planes * (1 - p)) <= 3 * sigma, "dropout2d: kept %zu of %zu planes", k2, planes);
        for (size_t i = 0; i < N; i++) x[i] = (float)(i % 97) + 1; /* nowhere zero */
        st_dropout2d_forward(y, x, mask, n, c, s, p);
        for (size_t i = 0; i < N; i++) dx[i] = 1;
        st_dropout2d_backward(dx, gy, mask, n, c, s, p);
        int whole = 1, scaled = 1, back = 1;
        for (size_t q = 0; q < planes; q++) {
            size_t nz = 0;
            for (int k = 0; k < s; k++) {
                size_t i = q * s + k;
                nz += y[i] != 0;
                if (mask[q]) {
                    scaled &= fabsf(y[i] - x[i] / (1 - p)) <= 1e-6f * (1 + fabsf(y[i]));
                    back &= fabsf(dx[i] - (1 + gy[i] / (1 - p))) <= 1e-5f;
                } else {
                    back &= dx[i] == 1;
                }
            }
            whole &= nz == (mask[q] ? (size_t)s : 0);
        }
        CHECK(whole, "dropout2d: a plane is partly zeroed");
        CHECK(scaled, "dropout2d: kept planes are not scaled by 1/(1-p)");
        CHECK(back, "dropout2d: backward");
        st_dropout2d_forward(y, x, mask, n, c, s, 1.0f);
        zeros = 1;
        for (size_t i = 0; i < N; i++) zeros &= y[i] == 0;
        CHECK(zeros, "dropout2d p=1: not all zeros");
        memset(mask, 1, planes);
        st_dropout2d_forward(y, x, mask, n, c, s, 0.0f);
        CHECK(!memcmp(y, x, N * sizeof(float)), "dropout2d p=0: not the identity");
    }
    free(mask); free(mask2); free(x); free(y); free(gy); free(dx);
}

int main(void) {
    test_fixtures();
    test_finite_differences();
    test_errors();
    test_threads();
    test_dropout();
    return test_done("test_batchnorm");
}
