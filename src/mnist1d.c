/* mnist1d.c - the MNIST-1D generator of Greydanus & Kobak, reproducing the official data
 * set (default arguments, seed 42) bit for bit in float32.
 *
 * Specification: spec/mnist1d.md section 1: 1.1 arguments, 1.2 templates, 1.3 the
 * per-example transform, 1.4 assembly, 1.6 NumPy's legacy MT19937 RandomState.
 * Exactness needs more than the same formulas: every floating-point operation is done in
 * the order NumPy / SciPy do it (linspace as i*step + start, np.interp's slope form,
 * scipy.ndimage's symmetric correlation loop, NumPy's pairwise summation). */
#include "mnist1d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Fused multiply-adds would change the last bits (the build may pass -ffp-contract=fast
 * for the other files), so this file asks for none: GCC ignores the standard pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define KERNEL_RADIUS 8 /* scipy: int(truncate 4 * sigma 2 + 0.5) */

/* ================================================================ MT19937 (spec 1.6) */
#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfU
#define MT_UPPER 0x80000000U
#define MT_LOWER 0x7fffffffU

void st_mt_seed(st_mt19937 *r, uint32_t seed) {
    r->key[0] = seed;
    for (uint32_t i = 1; i < ST_MT_N; i++) {
        uint32_t prev = r->key[i - 1];
        r->key[i] = 1812433253U * (prev ^ (prev >> 30)) + i;
    }
    r->pos = ST_MT_N;
    r->has_gauss = 0;
    r->gauss = 0.0;
}

static uint32_t mt_mix(uint32_t hi, uint32_t lo, uint32_t far) {
    uint32_t y = (hi & MT_UPPER) | (lo & MT_LOWER);
    return far ^ (y >> 1) ^ ((y & 1U) ? MT_MATRIX_A : 0U);
}

static void mt_twist(st_mt19937 *r) {
    uint32_t *k = r->key;
    int i;
    for (i = 0; i < ST_MT_N - MT_M; i++) k[i] = mt_mix(k[i], k[i + 1], k[i + MT_M]);
    for (; i < ST_MT_N - 1; i++) k[i] = mt_mix(k[i], k[i + 1], k[i + MT_M - ST_MT_N]);
    k[ST_MT_N - 1] = mt_mix(k[ST_MT_N - 1], k[0], k[MT_M - 1]);
    r->pos = 0;
}

uint32_t st_mt_next32(st_mt19937 *r) {
    if (r->pos >= ST_MT_N) mt_twist(r);
    uint32_t y = r->key[r->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

double st_mt_uniform(st_mt19937 *r) {
    uint32_t a = st_mt_next32(r) >> 5, b = st_mt_next32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/* The same polar method as st_rng_normal in util.c, kept separate on purpose: this file
 * is compiled without fused multiply-adds so that it rounds exactly as NumPy does. */
double st_mt_gauss(st_mt19937 *r) {
    if (r->has_gauss) {
        r->has_gauss = 0;
        return r->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * st_mt_uniform(r) - 1.0;
        x2 = 2.0 * st_mt_uniform(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = 1;
    return f * x2;
}

uint32_t st_mt_interval(st_mt19937 *r, uint32_t max) {
    if (max == 0) return 0;
    uint32_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint32_t v;
    do v = st_mt_next32(r) & mask; while (v > max);
    return v;
}

void st_mt_permutation(st_mt19937 *r, int *a, int n) {
    for (int i = 0; i < n; i++) a[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)st_mt_interval(r, (uint32_t)i);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ================================================================ NumPy arithmetic */
/* numpy.linspace(start, stop, n)[i]: i * step + start, the last value exactly stop. */
static double np_linspace_at(double start, double stop, int n, int i) {
    if (i == n - 1) return stop;
    return (double)i * ((stop - start) / (double)(n - 1)) + start;
}

/* NumPy's pairwise summation (the inner loop of np.add.reduce on float64). */
static double pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) s += a[i];
        return s;
    }
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

/* np.sum of a contiguous float64 array: the reduction starts from 0 and the iterator
 * hands the pairwise loop blocks of at most its buffer size (8192 elements). */
#define NP_BUFSIZE 8192
static double np_sum(const double *a, size_t n) {
    double s = 0.0;
    for (size_t at = 0; at < n; at += NP_BUFSIZE)
        s += pairwise_sum(a + at, n - at < NP_BUFSIZE ? n - at : NP_BUFSIZE);
    return s;
}

/* x.mean() and x.std() (population) as NumPy computes them; tmp holds n doubles. */
static void np_mean_std(const double *x, size_t n, double *tmp, double *mean, double *std) {
    double mu = np_sum(x, n) / (double)n;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mu;
        tmp[i] = d * d;
    }
    *mean = mu;
    *std = sqrt(np_sum(tmp, n) / (double)n);
}

/* np.interp(linspace(0, 1, n), linspace(0, 1, m), y) - what scipy's interp1d(kind=
 * 'linear') delegates to for 1-D float64 data: out has n values, y has m >= 2. */
static void resample(const double *y, int m, double *out, int n) {
    int j = 0;
    for (int i = 0; i < n; i++) {
        double q = np_linspace_at(0.0, 1.0, n, i);
        while (j < m - 1 && np_linspace_at(0.0, 1.0, m, j + 1) <= q) j++;
        double xj = np_linspace_at(0.0, 1.0, m, j);
        if (j == m - 1 || xj == q) {
            out[i] = y[j];
        } else {
            double xk = np_linspace_at(0.0, 1.0, m, j + 1);
            double slope = (y[j + 1] - y[j]) / (xk - xj);
            out[i] = slope * (q - xj) + y[j];
        }
    }
}

/* ================================================================ templates (spec 1.2) */
static const double raw_templates[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN] = {
    {5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5},
    {5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5},
    {5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5},
    {5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5},
    {5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5},
    {5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5},
    {5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5},
    {5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5},
    {5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5},
    {5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5},
};

void st_mnist1d_templates(double x[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN],
                          double t[ST_MNIST1D_TEMPLATE_LEN]) {
    enum { L = ST_MNIST1D_TEMPLATE_LEN };
    for (int c = 0; c < ST_MNIST1D_CLASSES; c++) {
        double *r = x[c], tmp[L], mean, std;
        memcpy(r, raw_templates[c], sizeof raw_templates[c]);
        np_mean_std(r, L, tmp, &mean, &std);
        for (int i = 0; i < L; i++) r[i] -= mean;
        np_mean_std(r, L, tmp, &mean, &std); /* NumPy takes the std of the centred row */
        for (int i = 0; i < L; i++) r[i] /= std;
        double first = r[0];
        for (int i = 0; i < L; i++) r[i] -= first;
        for (int i = 0; i < L; i++) r[i] /= 6.0;
    }
    for (int i = 0; i < L; i++) t[i] = np_linspace_at(-5.0, 5.0, L, i) / 6.0;
}

/* ================================================================ transform (spec 1.3) */
/* scipy.ndimage.gaussian_filter1d's weights: exp(-0.5 / sigma^2 * j^2), divided by
 * their (pairwise) sum. */
static void gaussian_kernel(double w[2 * KERNEL_RADIUS + 1]) {
    for (int j = -KERNEL_RADIUS; j <= KERNEL_RADIUS; j++)
        w[j + KERNEL_RADIUS] = exp(-0.5 / 4.0 * (double)(j * j));
    double s = np_sum(w, 2 * KERNEL_RADIUS + 1);
    for (int j = 0; j < 2 * KERNEL_RADIUS + 1; j++) w[j] /= s;
}

/* scipy's 'reflect' border: ... c b a | a b c ... (edge sample repeated). */
static int reflect_index(int i, int n) {
    int period = 2 * n;
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - 1 - i;
}

/* scipy.ndimage.correlate1d with a symmetric kernel: the centre term first, then the
 * pairs (x[i-j] + x[i+j]) * w[j] from the outermost j inwards. */
static void gaussian_smooth(const double *x, double *out, int n, const double *w) {
    const double *wc = w + KERNEL_RADIUS;
    for (int i = 0; i < n; i++) {
        double s = x[i] * wc[0];
        for (int j = KERNEL_RADIUS; j >= 1; j--)
            s += (x[reflect_index(i - j, n)] + x[reflect_index(i + j, n)]) * wc[j];
        out[i] = s;
    }
}

void st_mnist1d_example(st_mnist1d_ctx *c, int label, st_mt19937 *rng, double *out,
                        st_mnist1d_draws *d) {
    const st_mnist1d_args *a = &c->args;
    const int tl = a->template_len, w = c->work_len;
    double *padded = c->buf, *x = c->buf + w, *y = c->buf + 2 * w, *noise = c->buf + 3 * w;
    st_mnist1d_draws dr;

    /* 0-1: offset by 1e-8, append p zeros */
    dr.pad = a->padding_min +
             (int)(st_mt_uniform(rng) * (double)(a->padding_max - a->padding_min + 1));
    for (int i = 0; i < tl; i++) padded[i] = c->templates[label][i] + 1e-8;
    for (int i = tl; i < tl + dr.pad; i++) padded[i] = 0.0;
    /* 2: dilate to the working length */
    resample(padded, tl + dr.pad, x, w);
    /* 3: scale */
    dr.scale = 1.0 + a->scale_coeff * (st_mt_uniform(rng) - 0.5);
    for (int i = 0; i < w; i++) x[i] *= dr.scale;
    /* 4: circular shift right by k (NumPy's x[-k:] ++ x[:-k] leaves x as is if k >= w) */
    dr.shift = (int)st_mt_interval(rng, (uint32_t)a->max_translation - 1);
    int k = dr.shift < w ? dr.shift : 0;
    for (int i = 0; i < w; i++) y[(i + k) % w] = x[i];
    /* 5: smoothed noise where the signal is exactly zero */
    for (int i = 0; i < w; i++) noise[i] = a->corr_noise_scale * st_mt_gauss(rng);
    gaussian_smooth(noise, x, w, c->kernel);
    for (int i = 0; i < w; i++)
        if (y[i] == 0.0) y[i] = x[i];
    /* 6: white noise */
    for (int i = 0; i < w; i++) noise[i] = a->iid_noise_scale * st_mt_gauss(rng);
    for (int i = 0; i < w; i++) y[i] = y[i] + noise[i];
    /* 7: shear */
    dr.shear = a->shear_scale * (st_mt_uniform(rng) - 0.5);
    for (int i = 0; i < w; i++) y[i] = y[i] - dr.shear * c->ramp[i];
    /* 8: down-sample to the final length */
    resample(y, w, out, a->final_seq_length);
    if (d) *d = dr;
}

/* ================================================================ arguments */
void st_mnist1d_default_args(st_mnist1d_args *a) {
    a->num_samples = 5000;
    a->train_split = 0.8;
    a->template_len = 12;
    a->padding_min = 36;
    a->padding_max = 60;
    a->scale_coeff = 0.4;
    a->max_translation = 48;
    a->corr_noise_scale = 0.25;
    a->iid_noise_scale = 0.02;
    a->shear_scale = 0.75;
    a->shuffle_seq = 0;
    a->final_seq_length = 40;
    a->seed = 42;
}

#define MAX_LEN (1 << 20) /* bound on lengths, so sizes cannot overflow */

static st_status check_args(const st_mnist1d_args *a) {
    const char *f = "mnist1d: ";
    if (a->num_samples < ST_MNIST1D_CLASSES)
        return st_fail(ST_ERR_ARG, "%snum_samples %d: need at least 10 (one per class)", f,
                       a->num_samples);
    if (!(a->train_split > 0.0 && a->train_split < 1.0))
        return st_fail(ST_ERR_ARG, "%strain_split %g: must lie strictly between 0 and 1", f,
                       a->train_split);
    if (a->template_len != ST_MNIST1D_TEMPLATE_LEN)
        return st_fail(ST_ERR_ARG, "%stemplate_len %d: the digit templates have 12 samples", f,
                       a->template_len);
    if (a->padding_min < 0 || a->padding_max < a->padding_min || a->padding_max > MAX_LEN)
        return st_fail(ST_ERR_ARG, "%spadding [%d, %d]: need 0 <= min <= max <= %d", f,
                       a->padding_min, a->padding_max, MAX_LEN);
    if (a->max_translation < 1)
        return st_fail(ST_ERR_ARG, "%smax_translation %d: must be at least 1", f,
                       a->max_translation);
    if (a->final_seq_length < 2 || a->final_seq_length > MAX_LEN)
        return st_fail(ST_ERR_ARG, "%sfinal_seq_length %d: must be in 2..%d", f,
                       a->final_seq_length, MAX_LEN);
    if (!isfinite(a->scale_coeff) || !isfinite(a->corr_noise_scale) ||
        !isfinite(a->iid_noise_scale) || !isfinite(a->shear_scale))
        return st_fail(ST_ERR_ARG, "%snoise, scale and shear coefficients must be finite", f);
    int n = a->num_samples / ST_MNIST1D_CLASSES * ST_MNIST1D_CLASSES;
    int n_train = (int)((double)n * a->train_split);
    if (n_train < 1 || n_train >= n)
        return st_fail(ST_ERR_ARG, "%strain_split %g of %d samples leaves an empty split", f,
                       a->train_split, n);
    if ((size_t)n > SIZE_MAX / sizeof(double) / (size_t)a->final_seq_length)
        return st_fail(ST_ERR_ARG, "%s%d x %d samples: too large", f, n, a->final_seq_length);
    return ST_OK;
}

st_status st_mnist1d_ctx_init(st_mnist1d_ctx *c, const st_mnist1d_args *a) {
    memset(c, 0, sizeof *c);
    if (!a) return st_fail(ST_ERR_ARG, "mnist1d: no arguments given");
    st_status s = check_args(a);
    if (s) return s;
    c->args = *a;
    c->work_len = a->template_len + a->padding_max;
    double t[ST_MNIST1D_TEMPLATE_LEN];
    st_mnist1d_templates(c->templates, t);
    gaussian_kernel(c->kernel);
    c->ramp = malloc((size_t)c->work_len * sizeof(double));
    c->buf = malloc(4 * (size_t)c->work_len * sizeof(double));
    if (!c->ramp || !c->buf) {
        st_mnist1d_ctx_free(c);
        return st_fail(ST_ERR_NOMEM, "mnist1d: out of memory");
    }
    for (int i = 0; i < c->work_len; i++)
        c->ramp[i] = np_linspace_at(-0.5, 0.5, c->work_len, i);
    return ST_OK;
}

void st_mnist1d_ctx_free(st_mnist1d_ctx *c) {
    free(c->ramp);
    free(c->buf);
    c->ramp = c->buf = NULL;
}

/* ================================================================ assembly (spec 1.4) */
/* The time axis: the template axis resampled 12 -> working length -> final length. */
static st_status time_axis(const st_mnist1d_ctx *c, double *t) {
    double t12[ST_MNIST1D_TEMPLATE_LEN], x[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN];
    double *mid = malloc((size_t)c->work_len * sizeof(double));
    if (!mid) return st_fail(ST_ERR_NOMEM, "mnist1d: out of memory");
    st_mnist1d_templates(x, t12);
    resample(t12, ST_MNIST1D_TEMPLATE_LEN, mid, c->work_len);
    resample(mid, c->work_len, t, c->args.final_seq_length);
    free(mid);
    return ST_OK;
}

/* Reorders rows (and, if cols, columns) of the n x len matrix x: new row i = old row
 * rows[i], new column j = old column cols[j]. tmp holds n * len doubles. */
static void permute(double *x, int32_t *y, int n, int len, const int *rows, const int *cols,
                    double *tmp, int32_t *ytmp) {
    for (int i = 0; i < n; i++) {
        const double *src = x + (size_t)rows[i] * len;
        double *dst = tmp + (size_t)i * len;
        for (int j = 0; j < len; j++) dst[j] = src[cols ? cols[j] : j];
        ytmp[i] = y[rows[i]];
    }
    memcpy(x, tmp, (size_t)n * len * sizeof(double));
    memcpy(y, ytmp, (size_t)n * sizeof(int32_t));
}

typedef struct {
    double *x, *tmp, *t;
    int32_t *y, *ytmp;
    int *rows, *cols;
} scratch;

static void scratch_free(scratch *s) {
    free(s->x); free(s->tmp); free(s->t);
    free(s->y); free(s->ytmp);
    free(s->rows); free(s->cols);
}

static int scratch_alloc(scratch *s, size_t n, size_t len) {
    memset(s, 0, sizeof *s);
    s->x = malloc(n * len * sizeof(double));
    s->tmp = malloc(n * len * sizeof(double));
    s->t = malloc(len * sizeof(double));
    s->y = malloc(n * sizeof(int32_t));
    s->ytmp = malloc(n * sizeof(int32_t));
    s->rows = malloc(n * sizeof(int));
    s->cols = malloc(len * sizeof(int));
    return s->x && s->tmp && s->t && s->y && s->ytmp && s->rows && s->cols;
}

static float *to_float(const double *x, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof(float));
    if (f)
        for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

static int32_t *copy_labels(const int32_t *y, size_t n) {
    int32_t *c = malloc((n ? n : 1) * sizeof(int32_t));
    if (c) memcpy(c, y, n * sizeof(int32_t));
    return c;
}

/* Normalises, splits and converts to float32 into out. */
static st_status finish(const st_mnist1d_args *a, scratch *s, int n, st_mnist1d *out) {
    const int len = a->final_seq_length;
    const size_t total = (size_t)n * len;
    double mean, std;
    np_mean_std(s->x, total, s->tmp, &mean, &std);
    for (int j = 0; j < len; j++) s->t[j] /= std;
    for (size_t i = 0; i < total; i++) s->x[i] = (s->x[i] - mean) / std;

    int n_train = (int)((double)n * a->train_split);
    out->n_train = n_train;
    out->n_test = n - n_train;
    out->length = len;
    out->train_x = to_float(s->x, (size_t)n_train * len);
    out->test_x = to_float(s->x + (size_t)n_train * len, (size_t)(n - n_train) * len);
    out->train_y = copy_labels(s->y, (size_t)n_train);
    out->test_y = copy_labels(s->y + n_train, (size_t)(n - n_train));
    out->t = to_float(s->t, (size_t)len);
    if (!out->train_x || !out->test_x || !out->train_y || !out->test_y || !out->t)
        return st_fail(ST_ERR_NOMEM, "mnist1d: out of memory");
    return ST_OK;
}

st_status st_mnist1d_generate(const st_mnist1d_args *a, st_mnist1d *out) {
    if (!out) return st_fail(ST_ERR_ARG, "mnist1d: no output given");
    memset(out, 0, sizeof *out);
    st_mnist1d_ctx ctx;
    st_status st = st_mnist1d_ctx_init(&ctx, a);
    if (st) return st;

    const int per_class = a->num_samples / ST_MNIST1D_CLASSES;
    const int n = per_class * ST_MNIST1D_CLASSES, len = a->final_seq_length;
    scratch s;
    if (!scratch_alloc(&s, (size_t)n, (size_t)len)) {
        st = st_fail(ST_ERR_NOMEM, "mnist1d: out of memory for %d x %d samples", n, len);
        goto done;
    }
    if ((st = time_axis(&ctx, s.t))) goto done;

    st_mt19937 rng;
    st_mt_seed(&rng, a->seed);
    for (int label = 0, i = 0; label < ST_MNIST1D_CLASSES; label++)
        for (int e = 0; e < per_class; e++, i++) {
            st_mnist1d_example(&ctx, label, &rng, s.x + (size_t)i * len, NULL);
            s.y[i] = label;
        }
    st_mt_permutation(&rng, s.rows, n);
    if (a->shuffle_seq) st_mt_permutation(&rng, s.cols, len);
    permute(s.x, s.y, n, len, s.rows, a->shuffle_seq ? s.cols : NULL, s.tmp, s.ytmp);
    st = finish(a, &s, n, out);

done:
    scratch_free(&s);
    st_mnist1d_ctx_free(&ctx);
    if (st) st_mnist1d_free(out);
    return st;
}

void st_mnist1d_free(st_mnist1d *d) {
    if (!d) return;
    free(d->train_x);
    free(d->test_x);
    free(d->train_y);
    free(d->test_y);
    free(d->t);
    memset(d, 0, sizeof *d);
}
