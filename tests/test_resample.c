/* test_resample.c - upsampling, max unpooling and local response normalisation against
 * PyTorch and by hand.
 *
 * 1. Every case of tests/fixtures/resample.safetensors (scripts/gen_resample_fixtures.py; run
 *    from the repository root): output size, forward, backward (into zeros and accumulating
 *    onto ones), and the double versions. Tolerance: max |ours - torch| <= 1e-5 (1 + max |torch|).
 * 2. models.md B5's nearest spot values and scale rule; B6's window check.
 * 3. Max unpooling: the invalid-index error, last write wins, output_size rule.
 * 4. Finite differences in double: bilinear (both align_corners), nearest, LRN (with and
 *    without a saved scale).
 * 5. The adjoint identity <up(x), g> = <x, up^T(g)> for nearest and bilinear.
 * 6. Results independent of the thread count on large cases (OpenMP path).
 */
#include "resample.h"
#include "fixture.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define TOL 1e-5
#define RS_FIXTURE "tests/fixtures/resample.safetensors"

/* ---------------------------------------------------------------- helpers */
/* Integers read as numbers (strtod, then truncated), unlike fixture.h's jint and jpair. */
static int jint_num(const char *js, const char *key, int *out) {
    double v;
    if (!jnum(js, key, &v)) return 0;
    *out = (int)v;
    return 1;
}
static int jpair_num(const char *js, const char *key, int out[2]) {
    double d[2];
    if (!jdpair(js, key, d)) return 0;
    out[0] = (int)d[0]; out[1] = (int)d[1];
    return 1;
}
static const float *get_f32(const st_tensors *ts, const char *name, size_t want) {
    const st_array *a = st_tensors_get(ts, name);
    if (!a || a->dtype != ST_F32 || (size_t)st_array_numel(a) != want) return NULL;
    return a->data;
}

/* ---------------------------------------------------------------- 1. fixtures */
typedef struct { int nearest, linear, unpool, lrn, gxt; } counts;

static void fixture_case(const st_tensors *ts, int i, counts *cnt) {
    char key[32], desc[96], op[16], name[48];
    snprintf(key, sizeof key, "%d", i);
    const char *js = st_tensors_meta(ts, key);
    CHECK(js != NULL, "case %d: no metadata", i);
    if (!js) return;
    int dim = 0, n = 0, c = 0, ih = 0, iw = 0, oh = 0, ow = 0, ac = 0, k[2] = {0, 0}, s[2] = {0, 0};
    int p[2] = {0, 0}, osz = 0, size = 0, gxt = 0;
    double sf[2] = {0, 0}, alpha = 0, beta = 0, kk = 0;
    int ok = jstr(js, "op", op, sizeof op) && jint_num(js, "dim", &dim) && jint_num(js, "n", &n) &&
             jint_num(js, "c", &c) && jint_num(js, "ih", &ih) && jint_num(js, "iw", &iw) && jint_num(js, "oh", &oh) &&
             jint_num(js, "ow", &ow) && jint_num(js, "ac", &ac) && jdpair(js, "sf", sf) && jpair_num(js, "k", k) &&
             jpair_num(js, "s", s) && jpair_num(js, "p", p) && jint_num(js, "osz", &osz) && jint_num(js, "size", &size) &&
             jnum(js, "alpha", &alpha) && jnum(js, "beta", &beta) && jnum(js, "kk", &kk) &&
             jint_num(js, "gxt", &gxt);
    CHECK(ok, "case %d: bad metadata %s", i, js);
    if (!ok) return;
    snprintf(desc, sizeof desc, "case %d (%s%dd %dx%d->%dx%d)", i, op, dim, ih, iw, oh, ow);
    int planes = n * c;
    size_t nx = (size_t)planes * ih * iw, ny = (size_t)planes * oh * ow;
    snprintf(name, sizeof name, "%d.x", i);  const float *x = get_f32(ts, name, nx);
    snprintf(name, sizeof name, "%d.y", i);  const float *y = get_f32(ts, name, ny);
    snprintf(name, sizeof name, "%d.gy", i); const float *gy = get_f32(ts, name, ny);
    snprintf(name, sizeof name, "%d.gx", i); const float *gx = get_f32(ts, name, nx);
    CHECK(x && y && gy && gx, "%s: missing or mis-shaped tensors", desc);
    if (!(x && y && gy && gx)) return;

    float *out = xmalloc(ny * sizeof(float)), *din = xcalloc(nx, sizeof(float));
    float *din1 = xmalloc(nx * sizeof(float)), *ref1 = xmalloc(nx * sizeof(float));
    if (gxt) {
        /* PyTorch's own backward is not the gradient of its forward here (see resample.c):
         * the reference is the true gradient, which must differ from PyTorch's */
        snprintf(name, sizeof name, "%d.gxt", i);
        const float *t = get_f32(ts, name, nx);
        CHECK(t != NULL, "%s: missing gxt", desc);
        if (!t) { free(din1); free(ref1); return; }
        CHECK(test_maxdiff(t, gx, nx) > 1e-3, "%s: PyTorch's backward agrees with its forward after all", desc);
        gx = t;
    }
    for (size_t j = 0; j < nx; j++) { din1[j] = 1.0f; ref1[j] = gx[j] + 1.0f; }
    double *xd = to_f64(x, nx), *gyd = to_f64(gy, ny);
    double *outd = xmalloc(ny * sizeof(double)), *dind = xcalloc(nx, sizeof(double));

    if (!strcmp(op, "nearest") || !strcmp(op, "linear")) {
        int lin = !strcmp(op, "linear");
        lin ? cnt->linear++ : cnt->nearest++;
        /* the output size the caller would compute from a scale factor */
        for (int a = 0; a < 2; a++) {
            if (sf[a] > 0) {
                int in = a ? iw : ih, want = a ? ow : oh, got = -1;
                st_status st = st_upsample_out_size(in, sf[a], &got);
                CHECK(st == ST_OK && got == want, "%s: output size from scale %g: %d, torch %d", desc, sf[a], got, want);
            }
        }
        int acu = lin ? ac : 0;
        float sh = st_upsample_scale(ih, oh, sf[0], acu), sw = st_upsample_scale(iw, ow, sf[1], acu);
        double shd = st_upsample_scale_f64(ih, oh, sf[0], acu), swd = st_upsample_scale_f64(iw, ow, sf[1], acu);
        if (lin && dim == 1) {
            st_upsample_linear_forward(out, x, planes, iw, ow, sw, ac);
            st_upsample_linear_backward(din, gy, planes, iw, ow, sw, ac);
            st_upsample_linear_backward(din1, gy, planes, iw, ow, sw, ac);
        } else if (lin) {
            st_upsample_bilinear_forward(out, x, planes, ih, iw, oh, ow, sh, sw, ac);
            st_upsample_bilinear_backward(din, gy, planes, ih, iw, oh, ow, sh, sw, ac);
            st_upsample_bilinear_backward(din1, gy, planes, ih, iw, oh, ow, sh, sw, ac);
        }
        if (lin) {
            st_upsample_bilinear_forward_f64(outd, xd, planes, ih, iw, oh, ow, shd, swd, ac);
            st_upsample_bilinear_backward_f64(dind, gyd, planes, ih, iw, oh, ow, shd, swd, ac);
        } else {
            st_upsample_nearest_forward(out, x, planes, ih, iw, oh, ow, sh, sw);
            st_upsample_nearest_backward(din, gy, planes, ih, iw, oh, ow, sh, sw);
            st_upsample_nearest_backward(din1, gy, planes, ih, iw, oh, ow, sh, sw);
            st_upsample_nearest_forward_f64(outd, xd, planes, ih, iw, oh, ow, shd, swd);
            st_upsample_nearest_backward_f64(dind, gyd, planes, ih, iw, oh, ow, shd, swd);
        }
        cmp(out, y, ny, desc, "forward");
        cmp(din, gx, nx, desc, "backward");
        cmp(din1, ref1, nx, desc, "backward accumulating");
        cmp_f64(outd, y, ny, desc, "forward f64");
        cmp_f64(dind, gx, nx, desc, "backward f64");
    } else if (!strcmp(op, "unpool")) {
        cnt->unpool++;
        snprintf(name, sizeof name, "%d.idx", i);
        const st_array *ia = st_tensors_get(ts, name);
        CHECK(ia && ia->dtype == ST_I64 && (size_t)st_array_numel(ia) == nx, "%s: bad indices", desc);
        if (ia && ia->dtype == ST_I64 && (size_t)st_array_numel(ia) == nx) {
            int32_t *idx = xmalloc(nx * sizeof(int32_t));
            for (size_t j = 0; j < nx; j++) idx[j] = (int32_t)((const int64_t *)ia->data)[j];
            /* output size from the pooling geometry */
            int goh = -1, gow = -1;
            st_status st = st_max_unpool_out_size(ih, k[0], s[0], p[0], osz ? oh : 0, &goh);
            if (st == ST_OK) st = st_max_unpool_out_size(iw, k[1], s[1], p[1], osz ? ow : 0, &gow);
            CHECK(st == ST_OK && goh == oh && gow == ow, "%s: unpool output size %dx%d, torch %dx%d",
                  desc, goh, gow, oh, ow);
            for (size_t j = 0; j < ny; j++) out[j] = 123.0f; /* must be zeroed by the kernel */
            st = st_max_unpool_forward(out, x, idx, planes, ih, iw, oh, ow);
            CHECK(st == ST_OK, "%s: unpool failed: %s", desc, st_errmsg());
            cmp(out, y, ny, desc, "forward");
            st_max_unpool_backward(din, gy, idx, planes, ih, iw, oh, ow);
            st_max_unpool_backward(din1, gy, idx, planes, ih, iw, oh, ow);
            cmp(din, gx, nx, desc, "backward");
            cmp(din1, ref1, nx, desc, "backward accumulating");
            free(idx);
        }
    } else if (!strcmp(op, "lrn")) {
        cnt->lrn++;
        int sp = ih * iw;
        float *scale = xmalloc(nx * sizeof(float));
        st_lrn_forward(out, scale, x, n, c, sp, size, (float)alpha, (float)beta, (float)kk);
        cmp(out, y, ny, desc, "forward");
        st_lrn_forward(out, NULL, x, n, c, sp, size, (float)alpha, (float)beta, (float)kk);
        cmp(out, y, ny, desc, "forward without scale");
        st_lrn_backward(din, gy, x, scale, n, c, sp, size, (float)alpha, (float)beta, (float)kk);
        cmp(din, gx, nx, desc, "backward");
        st_lrn_backward(din1, gy, x, NULL, n, c, sp, size, (float)alpha, (float)beta, (float)kk);
        cmp(din1, ref1, nx, desc, "backward accumulating, recomputed scale");
        st_lrn_forward_f64(outd, NULL, xd, n, c, sp, size, alpha, beta, kk);
        st_lrn_backward_f64(dind, gyd, xd, NULL, n, c, sp, size, alpha, beta, kk);
        cmp_f64(outd, y, ny, desc, "forward f64");
        cmp_f64(dind, gx, nx, desc, "backward f64");
        free(scale);
    } else {
        CHECK(0, "%s: unknown op", desc);
    }
    free(out); free(din); free(din1); free(ref1); free(xd); free(gyd); free(outd); free(dind);
    cnt->gxt += gxt;
}

static void test_fixtures(void) {
    st_tensors ts;
    st_status st = st_safetensors_load(RS_FIXTURE, &ts);
    CHECK(st == ST_OK, "cannot load %s: %s", RS_FIXTURE, st_errmsg());
    if (st != ST_OK) return;
    const char *cs = st_tensors_meta(&ts, "count");
    int count = cs ? atoi(cs) : 0;
    CHECK(count >= 80, "fixture has %d cases", count);
    counts cnt = {0, 0, 0, 0, 0};
    for (int i = 0; i < count; i++) fixture_case(&ts, i, &cnt);
    CHECK(cnt.nearest >= 15 && cnt.linear >= 30 && cnt.unpool >= 10 && cnt.lrn >= 12,
          "case mix: %d nearest, %d linear, %d unpool, %d lrn", cnt.nearest, cnt.linear, cnt.unpool, cnt.lrn);
    printf("fixtures: %d cases (%d nearest, %d linear/bilinear, %d unpool, %d lrn; %d nearest cases "
           "checked against the true gradient instead of PyTorch's backward)\n", count,
           cnt.nearest, cnt.linear, cnt.unpool, cnt.lrn, cnt.gxt);
    st_tensors_free(&ts);
}

/* ---------------------------------------------------------------- 2. spec values */
/* the source index nearest picks for each output, read back through a ramp input */
static void nearest_sources(int in, int out, double sf, int *src) {
    float x[64], y[64];
    for (int i = 0; i < in; i++) x[i] = (float)i;
    float sc = st_upsample_scale(in, out, sf, 0);
    st_upsample_nearest_forward(y, x, 1, 1, in, 1, out, 0.0f, sc);
    for (int i = 0; i < out; i++) src[i] = (int)y[i];
}

static void test_spec_values(void) {
    int src[16];
    static const int want8[8] = {0, 0, 1, 1, 2, 3, 3, 4}, want3[3] = {0, 1, 3}, want7[7] = {0, 0, 1, 2, 2, 3, 4};
    nearest_sources(5, 8, 0, src);
    CHECK(!memcmp(src, want8, sizeof want8), "nearest 5->8: %d %d %d %d %d %d %d %d", src[0], src[1], src[2],
          src[3], src[4], src[5], src[6], src[7]);
    nearest_sources(5, 3, 0, src);
    CHECK(!memcmp(src, want3, sizeof want3), "nearest 5->3: %d %d %d", src[0], src[1], src[2]);
    int o = 0;
    CHECK(st_upsample_out_size(5, 1.5, &o) == ST_OK && o == 7, "scale 1.5 on 5 gives %d outputs", o);
    nearest_sources(5, 7, 1.5, src);
    CHECK(!memcmp(src, want7, sizeof want7), "nearest scale 1.5: %d %d %d %d %d %d %d", src[0], src[1], src[2],
          src[3], src[4], src[5], src[6]);
    /* the scale rule */
    CHECK(st_upsample_scale(5, 12, 2.5, 0) == (float)(1.0 / 2.5), "scale with a scale factor is 1/sf");
    CHECK(st_upsample_scale(5, 12, 0, 0) == 5.0f / 12.0f, "scale by size is In/Out");
    CHECK(st_upsample_scale(5, 12, 2.5, 1) == 4.0f / 11.0f, "align_corners ignores the scale factor");
    CHECK(st_upsample_scale(5, 1, 0, 1) == 0.0f, "align_corners with one output gives 0");
    CHECK(st_upsample_out_size(5, 0, &o) != ST_OK && st_upsample_out_size(1, 0.5, &o) != ST_OK,
          "bad scale factors rejected");
    /* bilinear align_corners=True: corners coincide; 2 -> 3 puts the mean in the middle */
    float x2[4] = {1, 3, 5, 7}, y3[9];
    st_upsample_bilinear_forward(y3, x2, 1, 2, 2, 3, 3, st_upsample_scale(2, 3, 0, 1), st_upsample_scale(2, 3, 0, 1), 1);
    CHECK(y3[0] == 1 && y3[2] == 3 && y3[6] == 5 && y3[8] == 7 && fabsf(y3[4] - 4) < 1e-6f,
          "bilinear align_corners 2x2->3x3: %g %g %g %g %g", y3[0], y3[2], y3[6], y3[8], y3[4]);
    /* align_corners=False, 2 -> 4: 1, 1.5, 2.5, 3 along a row */
    float r[2] = {1, 3}, r4[4];
    st_upsample_bilinear_forward(r4, r, 1, 1, 2, 1, 4, 0.0f, st_upsample_scale(2, 4, 0, 0), 0);
    CHECK(r4[0] == 1 && r4[1] == 1.5f && r4[2] == 2.5f && r4[3] == 3, "linear 2->4: %g %g %g %g",
          r4[0], r4[1], r4[2], r4[3]);
    /* LRN window (B6): channel 3 depends on {2,3} for n=2, {1..4} for n=4, {1..5} for n=5 */
    static const int lo_w[3] = {2, 1, 1}, hi_w[3] = {3, 4, 5}, sizes[3] = {2, 4, 5};
    for (int t = 0; t < 3; t++) {
        double x[8], y[8], y2[8];
        for (int ch = 0; ch < 8; ch++) x[ch] = 0.3 + 0.1 * ch;
        st_lrn_forward_f64(y, NULL, x, 1, 8, 1, sizes[t], 1.0, 0.75, 1.0);
        int dep_ok = 1;
        for (int ch = 0; ch < 8; ch++) {
            double save = x[ch];
            x[ch] += 0.5;
            st_lrn_forward_f64(y2, NULL, x, 1, 8, 1, sizes[t], 1.0, 0.75, 1.0);
            x[ch] = save;
            int dep = y2[3] != y[3], want = ch >= lo_w[t] && ch <= hi_w[t];
            if (dep != want) dep_ok = 0;
        }
        CHECK(dep_ok, "LRN size %d: channel 3's window is not [%d, %d]", sizes[t], lo_w[t], hi_w[t]);
    }
}

/* ---------------------------------------------------------------- 3. max unpooling */
static void test_unpool(void) {
    float in[4] = {1, 2, 3, 4}, out[9];
    int32_t bad[4] = {0, 3, 9, 2};
    for (int i = 0; i < 9; i++) out[i] = -7;
    st_status st = st_max_unpool_forward(out, in, bad, 1, 2, 2, 3, 3);
    const char *msg = st_errmsg();
    CHECK(st == ST_ERR_ARG, "invalid index accepted (status %d)", (int)st);
    CHECK(msg && strstr(msg, "Found an invalid max index") && strstr(msg, "9") && strstr(msg, "3x3"),
          "invalid index message: %s", msg ? msg : "(null)");
    int untouched = 1;
    for (int i = 0; i < 9; i++) untouched &= out[i] == -7;
    CHECK(untouched, "output written before the index check");
    int32_t neg[4] = {0, -1, 2, 3};
    CHECK(st_max_unpool_forward(out, in, neg, 1, 2, 2, 3, 3) == ST_ERR_ARG, "negative index accepted");
    /* duplicates: the last write wins; backward gathers for every element */
    int32_t dup[4] = {4, 4, 0, 4};
    st = st_max_unpool_forward(out, in, dup, 1, 2, 2, 3, 3);
    CHECK(st == ST_OK && out[4] == 4 && out[0] == 3 && out[1] == 0 && out[8] == 0,
          "duplicate indices: out[4] = %g (want the last write, 4)", out[4]);
    float g[9] = {10, 11, 12, 13, 14, 15, 16, 17, 18}, din[4] = {1, 1, 1, 1};
    st_max_unpool_backward(din, g, dup, 1, 2, 2, 3, 3);
    CHECK(din[0] == 15 && din[1] == 15 && din[2] == 11 && din[3] == 15, "unpool backward gather: %g %g %g %g",
          din[0], din[1], din[2], din[3]);
    /* output_size rule: 7 -> 3 (k 2) unpools to 6 by default; 7 is allowed, 8 is not */
    int o = 0;
    CHECK(st_max_unpool_out_size(3, 2, 2, 0, 0, &o) == ST_OK && o == 6, "default unpool size %d", o);
    CHECK(st_max_unpool_out_size(3, 2, 2, 0, 7, &o) == ST_OK && o == 7, "output_size 7 rejected");
    CHECK(st_max_unpool_out_size(3, 2, 2, 0, 8, &o) != ST_OK, "output_size 8 accepted");
    CHECK(st_max_unpool_out_size(3, 2, 2, 0, 4, &o) != ST_OK, "output_size 4 accepted");
    CHECK(st_max_unpool_out_size(4, 3, 2, 1, 0, &o) == ST_OK && o == 7, "unpool size with padding %d", o);
}

/* ---------------------------------------------------------------- 4. finite differences */
static double lcg_uniform(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0;
}

typedef struct {
    int kind; /* 0 nearest, 1 bilinear, 2 lrn (scale saved), 3 lrn (recomputed) */
    int planes, ih, iw, oh, ow, ac;
    double sh, sw;
    int n, c, s, size;
    double alpha, beta, k;
} fd_op;

static void fd_forward(const fd_op *o, double *y, const double *x) {
    switch (o->kind) {
    case 0: st_upsample_nearest_forward_f64(y, x, o->planes, o->ih, o->iw, o->oh, o->ow, o->sh, o->sw); break;
    case 1: st_upsample_bilinear_forward_f64(y, x, o->planes, o->ih, o->iw, o->oh, o->ow, o->sh, o->sw, o->ac); break;
    default: st_lrn_forward_f64(y, NULL, x, o->n, o->c, o->s, o->size, o->alpha, o->beta, o->k); break;
    }
}

static void fd_check(const fd_op *o, size_t nx, size_t ny, const char *desc) {
    unsigned long long seed = 12345 + nx * 7 + ny;
    double *x = xmalloc(nx * sizeof(double)), *g = xmalloc(ny * sizeof(double));
    double *y = xmalloc(ny * sizeof(double)), *dx = xmalloc(nx * sizeof(double));
    for (size_t i = 0; i < nx; i++) x[i] = lcg_uniform(&seed) * 4 - 2;
    for (size_t i = 0; i < ny; i++) g[i] = lcg_uniform(&seed) * 2 - 1;
    for (size_t i = 0; i < nx; i++) dx[i] = 0.25; /* backward accumulates onto this */
    if (o->kind == 0) st_upsample_nearest_backward_f64(dx, g, o->planes, o->ih, o->iw, o->oh, o->ow, o->sh, o->sw);
    else if (o->kind == 1)
        st_upsample_bilinear_backward_f64(dx, g, o->planes, o->ih, o->iw, o->oh, o->ow, o->sh, o->sw, o->ac);
    else {
        double *sc = NULL;
        if (o->kind == 2) {
            sc = xmalloc(nx * sizeof(double));
            st_lrn_forward_f64(y, sc, x, o->n, o->c, o->s, o->size, o->alpha, o->beta, o->k);
        }
        st_lrn_backward_f64(dx, g, x, sc, o->n, o->c, o->s, o->size, o->alpha, o->beta, o->k);
        free(sc);
    }
    double worst = 0;
    const double h = 1e-6;
    for (size_t i = 0; i < nx; i++) {
        double save = x[i], lp = 0, lm = 0;
        x[i] = save + h; fd_forward(o, y, x);
        for (size_t j = 0; j < ny; j++) lp += y[j] * g[j];
        x[i] = save - h; fd_forward(o, y, x);
        for (size_t j = 0; j < ny; j++) lm += y[j] * g[j];
        x[i] = save;
        double num = (lp - lm) / (2 * h), err = fabs(num - (dx[i] - 0.25)) / (1 + fabs(num));
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-6, "%s: finite-difference relative error %.3g", desc, worst);
    free(x); free(g); free(y); free(dx);
}

static void test_finite_differences(void) {
    char desc[96];
    static const int geo[][4] = {{5, 5, 8, 3}, {4, 6, 10, 15}, {6, 6, 3, 4}, {1, 7, 1, 13}, {3, 2, 1, 5}};
    static const double sfs[] = {0, 0, 0, 0, 0};
    for (int kind = 0; kind < 2; kind++)
        for (int ac = 0; ac < 1 + kind; ac++)
            for (size_t t = 0; t < sizeof geo / sizeof geo[0]; t++) {
                fd_op o = {0};
                o.kind = kind; o.planes = 3; o.ac = ac;
                o.ih = geo[t][0]; o.iw = geo[t][1]; o.oh = geo[t][2]; o.ow = geo[t][3];
                o.sh = st_upsample_scale_f64(o.ih, o.oh, sfs[t], ac);
                o.sw = st_upsample_scale_f64(o.iw, o.ow, sfs[t], ac);
                snprintf(desc, sizeof desc, "%s ac=%d %dx%d->%dx%d", kind ? "bilinear" : "nearest", ac,
                         o.ih, o.iw, o.oh, o.ow);
                fd_check(&o, (size_t)3 * o.ih * o.iw, (size_t)3 * o.oh * o.ow, desc);
            }
    /* by scale factor 2.5 (bilinear both modes, nearest) */
    for (int kind = 0; kind < 2; kind++)
        for (int ac = 0; ac < 1 + kind; ac++) {
            fd_op o = {0};
            o.kind = kind; o.planes = 2; o.ac = ac; o.ih = 4; o.iw = 5;
            st_upsample_out_size(4, 2.5, &o.oh);
            st_upsample_out_size(5, 2.5, &o.ow);
            o.sh = st_upsample_scale_f64(o.ih, o.oh, 2.5, ac);
            o.sw = st_upsample_scale_f64(o.iw, o.ow, 2.5, ac);
            snprintf(desc, sizeof desc, "%s ac=%d scale 2.5", kind ? "bilinear" : "nearest", ac);
            fd_check(&o, (size_t)2 * o.ih * o.iw, (size_t)2 * o.oh * o.ow, desc);
        }
    /* LRN: sizes 1..6 and 7 (> C), both backward paths */
    static const double prm[][3] = {{1.0, 0.75, 1.0}, {5e-4, 0.75, 2.0}, {0.5, 0.5, 2.0}, {2.0, 1.5, 0.5}};
    for (int size = 1; size <= 7; size++)
        for (int v = 0; v < 4; v++)
            for (int kind = 2; kind <= 3; kind++) {
                fd_op o = {0};
                o.kind = kind; o.n = 2; o.c = 6; o.s = 3; o.size = size;
                o.alpha = prm[v][0]; o.beta = prm[v][1]; o.k = prm[v][2];
                snprintf(desc, sizeof desc, "lrn size %d alpha %g beta %g k %g%s", size, o.alpha, o.beta, o.k,
                         kind == 3 ? " (recomputed scale)" : "");
                fd_check(&o, 36, 36, desc);
            }
}

/* ---------------------------------------------------------------- 5. adjoint identity */
static void test_adjoint(void) {
    static const int geo[][4] = {{5, 5, 8, 3}, {4, 6, 10, 15}, {6, 6, 3, 4}, {1, 5, 1, 12}, {7, 7, 7, 7}, {3, 4, 6, 8}};
    static const double sfs[] = {0, 2.5, 0, 2.4, 0, 2.0};
    unsigned long long seed = 777;
    for (int mode = 0; mode < 3; mode++) /* nearest, bilinear ac=0, bilinear ac=1 */
        for (size_t t = 0; t < sizeof geo / sizeof geo[0]; t++) {
            int ih = geo[t][0], iw = geo[t][1], oh = geo[t][2], ow = geo[t][3], ac = mode == 2, planes = 2;
            double sf = sfs[t];
            if (sf > 0) {
                if (ih > 1) st_upsample_out_size(ih, sf, &oh);
                st_upsample_out_size(iw, sf, &ow);
            }
            size_t nx = (size_t)planes * ih * iw, ny = (size_t)planes * oh * ow;
            double *x = xmalloc(nx * sizeof(double)), *g = xmalloc(ny * sizeof(double));
            double *y = xmalloc(ny * sizeof(double)), *gx = xcalloc(nx, sizeof(double));
            for (size_t i = 0; i < nx; i++) x[i] = lcg_uniform(&seed) * 2 - 1;
            for (size_t i = 0; i < ny; i++) g[i] = lcg_uniform(&seed) * 2 - 1;
            double sh = st_upsample_scale_f64(ih, oh, ih > 1 ? sf : 0, ac), sw = st_upsample_scale_f64(iw, ow, sf, ac);
            if (mode == 0) {
                st_upsample_nearest_forward_f64(y, x, planes, ih, iw, oh, ow, sh, sw);
                st_upsample_nearest_backward_f64(gx, g, planes, ih, iw, oh, ow, sh, sw);
            } else {
                st_upsample_bilinear_forward_f64(y, x, planes, ih, iw, oh, ow, sh, sw, ac);
                st_upsample_bilinear_backward_f64(gx, g, planes, ih, iw, oh, ow, sh, sw, ac);
            }
            double a = 0, b = 0;
            for (size_t i = 0; i < ny; i++) a += y[i] * g[i];
            for (size_t i = 0; i < nx; i++) b += x[i] * gx[i];
            CHECK(fabs(a - b) <= 1e-12 * (1 + fabs(a)), "adjoint mode %d %dx%d->%dx%d: %.17g vs %.17g", mode, ih, iw,
                  oh, ow, a, b);
            /* the float kernels too, within float rounding */
            float *xf = xmalloc(nx * sizeof(float)), *gf = xmalloc(ny * sizeof(float));
            float *yf = xmalloc(ny * sizeof(float)), *gxf = xcalloc(nx, sizeof(float));
            for (size_t i = 0; i < nx; i++) xf[i] = (float)x[i];
            for (size_t i = 0; i < ny; i++) gf[i] = (float)g[i];
            float shf = st_upsample_scale(ih, oh, ih > 1 ? sf : 0, ac), swf = st_upsample_scale(iw, ow, sf, ac);
            if (mode == 0) {
                st_upsample_nearest_forward(yf, xf, planes, ih, iw, oh, ow, shf, swf);
                st_upsample_nearest_backward(gxf, gf, planes, ih, iw, oh, ow, shf, swf);
            } else {
                st_upsample_bilinear_forward(yf, xf, planes, ih, iw, oh, ow, shf, swf, ac);
                st_upsample_bilinear_backward(gxf, gf, planes, ih, iw, oh, ow, shf, swf, ac);
            }
            double af = 0, bf = 0;
            for (size_t i = 0; i < ny; i++) af += (double)yf[i] * gf[i];
            for (size_t i = 0; i < nx; i++) bf += (double)xf[i] * gxf[i];
            CHECK(fabs(af - bf) <= 1e-5 * (1 + fabs(af)), "adjoint (float) mode %d: %.9g vs %.9g", mode, af, bf);
            free(x); free(g); free(y); free(gx); free(xf); free(gf); free(yf); free(gxf);
        }
}

/* ---------------------------------------------------------------- 6. threads */
/* A case large enough for the OpenMP path: identical bits with 1 thread and with several. */
static void test_threads(void) {
#ifdef _OPENMP
    int planes = 16, ih = 20, iw = 30, oh = 50, ow = 75, c = 16, s = 800;
    size_t nx = (size_t)planes * ih * iw, ny = (size_t)planes * oh * ow, nl = (size_t)2 * c * s;
    float *x = xmalloc(nx * sizeof(float)), *g = xmalloc(ny * sizeof(float));
    float *xl = xmalloc(nl * sizeof(float)), *gl = xmalloc(nl * sizeof(float));
    unsigned long long seed = 99;
    for (size_t i = 0; i < nx; i++) x[i] = (float)(lcg_uniform(&seed) * 2 - 1);
    for (size_t i = 0; i < ny; i++) g[i] = (float)(lcg_uniform(&seed) * 2 - 1);
    for (size_t i = 0; i < nl; i++) { xl[i] = (float)(lcg_uniform(&seed) * 4 - 2); gl[i] = (float)(lcg_uniform(&seed) - 0.5); }
    float *y[2], *dx[2], *yl[2], *dl[2];
    int saved = omp_get_max_threads();
    float sh = st_upsample_scale(ih, oh, 2.5, 0), sw = st_upsample_scale(iw, ow, 2.5, 0);
    for (int t = 0; t < 2; t++) {
        omp_set_num_threads(t ? 4 : 1);
        y[t] = xmalloc(ny * sizeof(float)); dx[t] = xcalloc(nx, sizeof(float));
        yl[t] = xmalloc(nl * sizeof(float)); dl[t] = xcalloc(nl, sizeof(float));
        st_upsample_bilinear_forward(y[t], x, planes, ih, iw, oh, ow, sh, sw, 0);
        st_upsample_bilinear_backward(dx[t], g, planes, ih, iw, oh, ow, sh, sw, 0);
        st_upsample_nearest_backward(dx[t], g, planes, ih, iw, oh, ow, sh, sw);
        st_lrn_forward(yl[t], NULL, xl, 2, c, s, 5, 1.0f, 0.75f, 1.0f);
        st_lrn_backward(dl[t], gl, xl, NULL, 2, c, s, 5, 1.0f, 0.75f, 1.0f);
    }
    omp_set_num_threads(saved);
    CHECK(!memcmp(y[0], y[1], ny * sizeof(float)) && !memcmp(dx[0], dx[1], nx * sizeof(float)),
          "upsampling depends on the thread count");
    CHECK(!memcmp(yl[0], yl[1], nl * sizeof(float)) && !memcmp(dl[0], dl[1], nl * sizeof(float)),
          "LRN depends on the thread count");
    for (int t = 0; t < 2; t++) { free(y[t]); free(dx[t]); free(yl[t]); free(dl[t]); }
    free(x); free(g); free(xl); free(gl);
#endif
}

int main(void) {
    test_fixtures();
    test_spec_values();
    test_unpool();
    test_finite_differences();
    test_adjoint();
    test_threads();
    return test_done("test_resample");
}
