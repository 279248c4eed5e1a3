/* fixture.h - helpers shared by the PyTorch-fixture tests (test_parity, test_pool,
 * test_conv_transpose, test_batchnorm, test_resample): allocation that exits on
 * failure, float/double conversion, the tolerance comparison
 *   max |got - ref| <= TOL * (1 + max |ref|)   (one CHECK per call; TOL defaults to 1e-5)
 * and readers for the compact JSON metadata the fixture generators write.
 * Everything is static inline, so a test that leaves a helper unused gets no warning.
 */
#ifndef ST_TEST_FIXTURE_H
#define ST_TEST_FIXTURE_H
#include "stride.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TOL
#define TOL 1e-5
#endif

/* ---------------------------------------------------------------- allocation */
static inline void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
static inline void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* ---------------------------------------------------------------- arrays */
static inline void fill_nan(float *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = NAN;
}

/* A double copy of a (xmalloc'd; free it), or NULL when a is NULL. */
static inline double *to_f64(const float *a, size_t n) {
    if (!a) return NULL;
    double *d = xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) d[i] = a[i];
    return d;
}

/* ---------------------------------------------------------------- comparison */
/* One CHECK: max |got - ref| <= TOL * (1 + max |ref|); a NaN in got or ref fails. */
static inline void cmp(const float *got, const float *ref, size_t n, const char *desc, const char *what) {
    double err = test_maxdiff(got, ref, n), tol = TOL * (1 + test_maxabs(ref, n));
    CHECK(err <= tol, "%s: %s: max abs error %.3g > tolerance %.3g", desc, what, err, tol);
}
/* cmp on got rounded to float. */
static inline void cmp_f64(const double *got, const float *ref, size_t n, const char *desc, const char *what) {
    float *g = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = (float)got[i];
    cmp(g, ref, n, desc, what);
    free(g);
}

/* ---------------------------------------------------------------- double-precision layers */
/* Runs a layer's double-precision plain forward and backward (FWD, BWD: st_conv_*_ref_f64 or
 * st_convt_*_ref_f64, which share one argument order) on the float inputs and compares the
 * output and gradients, rounded to float, with the fixture's (y, gx, gw, gb; gb if bias). */
#define CHECK_LAYER_F64(FWD, BWD, geom, n, bias, x, w, b, gy, y, gx, gw, gb, nx, nw, ny, cout, desc) do { \
        double *x64_ = to_f64(x, nx), *w64_ = to_f64(w, nw), *gy64_ = to_f64(gy, ny);                   \
        double *b64_ = (bias) ? to_f64(b, (size_t)(cout)) : NULL;                                        \
        double *o64_ = xmalloc((ny) * sizeof(double));                                                   \
        double *dx64_ = xcalloc(nx, sizeof(double)), *dw64_ = xcalloc(nw, sizeof(double));               \
        double *db64_ = xcalloc((size_t)(cout), sizeof(double));                                         \
        FWD(o64_, x64_, w64_, b64_, n, geom);                                                            \
        cmp_f64(o64_, y, ny, desc, "f64 forward");                                                       \
        BWD(dx64_, dw64_, (bias) ? db64_ : NULL, gy64_, x64_, w64_, n, geom);                            \
        cmp_f64(dx64_, gx, nx, desc, "f64 backward dx");                                                 \
        cmp_f64(dw64_, gw, nw, desc, "f64 backward dw");                                                 \
        if (bias) cmp_f64(db64_, gb, (size_t)(cout), desc, "f64 backward db");                           \
        free(x64_); free(w64_); free(gy64_); free(b64_); free(o64_); free(dx64_); free(dw64_); free(db64_); \
    } while (0)

/* ---------------------------------------------------------------- compact JSON */
/* Finds "key": in a compact JSON object; returns the text after the colon or NULL. */
static inline const char *jfind(const char *js, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(js, pat);
    return p ? p + strlen(pat) : NULL;
}
/* "key":integer (read with strtol) */
static inline int jint(const char *js, const char *key, int *out) {
    const char *p = jfind(js, key);
    if (!p) return 0;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) return 0;
    *out = (int)v;
    return 1;
}
/* "key":number */
static inline int jnum(const char *js, const char *key, double *out) {
    const char *p = jfind(js, key);
    if (!p) return 0;
    char *end;
    *out = strtod(p, &end);
    return end != p;
}
/* "key":[a,b] with integers a and b */
static inline int jpair(const char *js, const char *key, int out[2]) {
    const char *p = jfind(js, key);
    return p && sscanf(p, "[%d,%d]", &out[0], &out[1]) == 2;
}
/* "key":[a,b] with numbers a and b, exactly two of them */
static inline int jdpair(const char *js, const char *key, double out[2]) {
    const char *p = jfind(js, key);
    if (!p || *p != '[') return 0;
    char *end;
    out[0] = strtod(p + 1, &end);
    if (*end != ',') return 0;
    out[1] = strtod(end + 1, &end);
    return *end == ']';
}
/* "key":"text" -> out (at most len - 1 characters and a NUL) */
static inline int jstr(const char *js, const char *key, char *out, size_t len) {
    const char *p = jfind(js, key);
    if (!p || *p != '"') return 0;
    const char *e = strchr(p + 1, '"');
    if (!e || (size_t)(e - p - 1) >= len) return 0;
    memcpy(out, p + 1, (size_t)(e - p - 1));
    out[e - p - 1] = 0;
    return 1;
}
#endif
