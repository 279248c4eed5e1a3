/* test_mnist1d.c - the MNIST-1D generator (src/mnist1d.c, spec/mnist1d.md section 1):
 * NumPy's legacy RNG test vectors, the first example's draws, bit-identity with the
 * official data set, a non-default run and argument checking.
 * The official arrays are read from $ST_MNIST1D_DIR, else tests/data/mnist1d, else
 * ../shared/data/mnist1d (paths relative to the repository root). */
#include "test.h"
#include "mnist1d.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- tiny .npy reader */
/* Reads `count` elements of `elem` bytes with dtype descr (e.g. "<f4") from dir/name.
 * Checks the magic, the dtype and that the data starts at byte 128. NULL on failure. */
static void *read_npy(const char *dir, const char *name, const char *descr, size_t count,
                      size_t elem) {
    char path[1024], head[129] = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    void *data = malloc(count * elem);
    int ok = data && fread(head, 1, 128, f) == 128 &&
             memcmp(head, "\x93NUMPY", 6) == 0 && head[8] + 10 == 128 && head[9] == 0 &&
             strstr(head + 10, descr) && fread(data, elem, count, f) == count;
    fclose(f);
    if (!ok) { free(data); return NULL; }
    return data;
}

static const char *data_dir(void) {
    static const char *dirs[] = {"tests/data/mnist1d", "../shared/data/mnist1d"};
    const char *env = getenv("ST_MNIST1D_DIR");
    if (env && *env) return env;
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/t.npy", dirs[i]);
        FILE *f = fopen(path, "rb");
        if (f) { fclose(f); return dirs[i]; }
    }
    return dirs[0];
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- random numbers */
static void test_rng(void) {
    st_mt19937 r;
    st_mt_seed(&r, 42);
    CHECK(st_mt_next32(&r) == 1608637542U, "MT19937 output 1");
    CHECK(st_mt_next32(&r) == 3421126067U, "MT19937 output 2");
    CHECK(st_mt_next32(&r) == 4083286876U, "MT19937 output 3");

    st_mt_seed(&r, 42);
    double u1 = st_mt_uniform(&r), u2 = st_mt_uniform(&r);
    CHECK(u1 == 0.3745401188473625, "uniform 1: %.17g", u1);
    CHECK(u2 == 0.9507143064099162, "uniform 2: %.17g", u2);

    st_mt_seed(&r, 42);
    double g1 = st_mt_gauss(&r), g2 = st_mt_gauss(&r);
    CHECK(g1 == 0.4967141530112327, "normal 1: %.17g", g1);
    CHECK(g2 == -0.13826430117118466, "normal 2: %.17g", g2);

    /* re-seeding discards the cached normal */
    st_mt_gauss(&r);
    st_mt_seed(&r, 42);
    CHECK(st_mt_gauss(&r) == 0.4967141530112327, "seeding clears the cache");

    int bad = 0, seen[48] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t v = st_mt_interval(&r, 47);
        if (v > 47) bad++; else seen[v] = 1;
    }
    int all = 1;
    for (int i = 0; i < 48; i++) all &= seen[i];
    CHECK(!bad && all, "interval(47): %d out of range, all values seen %d", bad, all);
    CHECK(st_mt_interval(&r, 0) == 0, "interval(0)");

    int perm[100], count[100] = {0}, ok = 1;
    st_mt_permutation(&r, perm, 100);
    for (int i = 0; i < 100; i++) ok &= perm[i] >= 0 && perm[i] < 100 && !count[perm[i]]++;
    CHECK(ok, "permutation of 0..99");
}

/* ---------------------------------------------------------------- one example */
static void test_first_example(void) {
    double x[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN], t[ST_MNIST1D_TEMPLATE_LEN];
    st_mnist1d_templates(x, t);
    double m = 0;
    int ends = 1;
    for (int c = 0; c < ST_MNIST1D_CLASSES; c++) {
        for (int i = 0; i < ST_MNIST1D_TEMPLATE_LEN; i++) m = fmax(m, fabs(x[c][i]));
        ends &= x[c][0] == 0.0 && fabs(x[c][ST_MNIST1D_TEMPLATE_LEN - 1]) < 1e-15;
    }
    CHECK(fabs(m - 0.4739) < 1e-4, "templates: max |x| %g, expected 0.4739", m);
    CHECK(ends, "templates start and end at 0");
    CHECK(t[0] == -5.0 / 6.0 && t[11] == 5.0 / 6.0, "template time axis");

    st_mnist1d_args a;
    st_mnist1d_default_args(&a);
    st_mnist1d_ctx ctx;
    CHECK(st_mnist1d_ctx_init(&ctx, &a) == ST_OK, "context: %s", st_errmsg());
    st_mt19937 r;
    st_mt_seed(&r, 42);
    double out[40];
    st_mnist1d_draws d;
    st_mnist1d_example(&ctx, 0, &r, out, &d);
    CHECK(d.pad == 45, "first example: padding %d, expected 45", d.pad);
    CHECK(fabs(d.scale - 1.180286) < 5e-7, "first example: scale %.7f", d.scale);
    CHECK(d.shift == 42, "first example: shift %d, expected 42", d.shift);
    CHECK(fabs(d.shear + 0.209819) < 5e-7, "first example: shear %.7f", d.shear);
    int finite = 1;
    for (int i = 0; i < 40; i++) finite &= isfinite(out[i]);
    CHECK(finite, "first example: finite values");
    st_mnist1d_ctx_free(&ctx);
}

/* ---------------------------------------------------------------- official data */
static void test_official(void) {
    const char *dir = data_dir();
    float *tx = read_npy(dir, "train_x.npy", "'<f4'", 4000 * 40, 4);
    float *vx = read_npy(dir, "test_x.npy", "'<f4'", 1000 * 40, 4);
    int32_t *ty = read_npy(dir, "train_y.npy", "'<i4'", 4000, 4);
    int32_t *vy = read_npy(dir, "test_y.npy", "'<i4'", 1000, 4);
    float *t = read_npy(dir, "t.npy", "'<f4'", 40, 4);
    CHECK(tx && vx && ty && vy && t, "official MNIST-1D arrays not readable in %s", dir);

    st_mnist1d_args a;
    st_mnist1d_default_args(&a);
    st_mnist1d d;
    double t0 = now_s();
    st_status s = st_mnist1d_generate(&a, &d);
    double ms = 1e3 * (now_s() - t0);
    CHECK(s == ST_OK, "generate: %s", st_errmsg());
    printf("ok mnist1d: default set (5000 x 40) generated in %.1f ms\n", ms);
    CHECK(d.n_train == 4000 && d.n_test == 1000 && d.length == 40, "shapes %d %d %d",
          d.n_train, d.n_test, d.length);
    if (s == ST_OK && tx && vx && ty && vy && t) {
        CHECK(!memcmp(d.train_y, ty, 4000 * 4), "train labels differ");
        CHECK(!memcmp(d.test_y, vy, 1000 * 4), "test labels differ");
        CHECK(!memcmp(d.train_x, tx, 4000 * 40 * 4), "train_x not bit-identical (max diff %g)",
              test_maxdiff(d.train_x, tx, 4000 * 40));
        CHECK(!memcmp(d.test_x, vx, 1000 * 40 * 4), "test_x not bit-identical (max diff %g)",
              test_maxdiff(d.test_x, vx, 1000 * 40));
        CHECK(!memcmp(d.t, t, 40 * 4), "t not bit-identical (max diff %g)",
              test_maxdiff(d.t, t, 40));
    }
    st_mnist1d_free(&d);
    CHECK(d.train_x == NULL && d.t == NULL, "free zeroes the struct");
    free(tx); free(vx); free(ty); free(vy); free(t);
}

/* ---------------------------------------------------------------- other arguments */
static void test_custom(void) {
    st_mnist1d_args a;
    st_mnist1d_default_args(&a);
    a.num_samples = 1000;
    a.shuffle_seq = 1;
    a.seed = 7;
    a.final_seq_length = 50;
    a.train_split = 0.75;
    st_mnist1d d;
    CHECK(st_mnist1d_generate(&a, &d) == ST_OK, "custom generate: %s", st_errmsg());
    CHECK(d.n_train == 750 && d.n_test == 250 && d.length == 50, "custom shapes %d %d %d",
          d.n_train, d.n_test, d.length);
    if (d.n_train != 750 || d.n_test != 250 || d.length != 50) { st_mnist1d_free(&d); return; }

    int count[10] = {0}, labels_ok = 1, finite = 1;
    double sum = 0, sq = 0;
    for (int i = 0; i < 1000; i++) {
        int32_t y = i < 750 ? d.train_y[i] : d.test_y[i - 750];
        if (y < 0 || y > 9) labels_ok = 0; else count[y]++;
        const float *x = i < 750 ? d.train_x + (size_t)i * 50 : d.test_x + (size_t)(i - 750) * 50;
        for (int j = 0; j < 50; j++) {
            finite &= isfinite(x[j]);
            sum += x[j];
            sq += (double)x[j] * x[j];
        }
    }
    for (int c = 0; c < 10; c++) labels_ok &= count[c] == 100;
    CHECK(labels_ok, "custom: each label 100 times");
    CHECK(finite, "custom: finite values");
    double mean = sum / 50000, std = sqrt(sq / 50000 - mean * mean);
    CHECK(fabs(mean) < 1e-5 && fabs(std - 1) < 1e-5, "custom: mean %g std %g", mean, std);
    int t_ok = 1;
    for (int j = 1; j < 50; j++) t_ok &= d.t[j] > d.t[j - 1];
    CHECK(t_ok, "custom: time axis increasing");
    st_mnist1d_free(&d);

    /* same arguments, same data; NumPy's num_samples // 10 per class */
    st_mnist1d d1, d2;
    a.num_samples = 105;
    a.train_split = 0.8;
    CHECK(st_mnist1d_generate(&a, &d1) == ST_OK && st_mnist1d_generate(&a, &d2) == ST_OK,
          "repeat generate: %s", st_errmsg());
    CHECK(d1.n_train == 80 && d1.n_test == 20, "105 samples -> 10 per class: %d + %d",
          d1.n_train, d1.n_test);
    CHECK(d1.train_x && d2.train_x && !memcmp(d1.train_x, d2.train_x, 80 * 50 * 4),
          "generation is deterministic");
    st_mnist1d_free(&d1);
    st_mnist1d_free(&d2);
}

/* ---------------------------------------------------------------- invalid arguments */
static void expect_arg_error(const st_mnist1d_args *a, const char *what) {
    st_mnist1d d;
    memset(&d, 0xff, sizeof d);
    st_status s = st_mnist1d_generate(a, &d);
    CHECK(s == ST_ERR_ARG, "%s: status %d, expected ST_ERR_ARG", what, (int)s);
    CHECK(strstr(st_errmsg(), "mnist1d") != NULL, "%s: message '%s'", what, st_errmsg());
    CHECK(d.train_x == NULL && d.test_y == NULL && d.t == NULL && d.n_train == 0,
          "%s: output not zeroed", what);
}

static void test_invalid(void) {
    st_mnist1d_args a, b;
    st_mnist1d_default_args(&a);
    b = a; b.num_samples = 9;          expect_arg_error(&b, "num_samples 9");
    b = a; b.num_samples = -10;        expect_arg_error(&b, "num_samples -10");
    b = a; b.padding_min = 61;         expect_arg_error(&b, "padding_min > padding_max");
    b = a; b.padding_min = -1;         expect_arg_error(&b, "padding_min -1");
    b = a; b.final_seq_length = 1;     expect_arg_error(&b, "final_seq_length 1");
    b = a; b.train_split = 0.0;        expect_arg_error(&b, "train_split 0");
    b = a; b.train_split = 1.0;        expect_arg_error(&b, "train_split 1");
    b = a; b.train_split = NAN;        expect_arg_error(&b, "train_split NaN");
    b = a; b.template_len = 10;        expect_arg_error(&b, "template_len 10");
    b = a; b.max_translation = 0;      expect_arg_error(&b, "max_translation 0");
    b = a; b.iid_noise_scale = INFINITY; expect_arg_error(&b, "iid_noise_scale inf");
    b = a; b.num_samples = 10; b.train_split = 0.05; expect_arg_error(&b, "empty train set");
    expect_arg_error(NULL, "NULL arguments");
    CHECK(st_mnist1d_generate(&a, NULL) == ST_ERR_ARG, "NULL output");
}

int main(void) {
    test_rng();
    test_first_example();
    test_official();
    test_custom();
    test_invalid();
    return test_done("test_mnist1d");
}
