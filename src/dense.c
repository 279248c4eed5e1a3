/* dense.c - the fully connected layer, pointwise activations and the two losses,
 * each as a forward/backward pair (float, plus double versions for gradient checks).
 *
 *   linear:   y = x W^T + b          dx = dy W,   dW = dy^T x,   db = sum_n dy
 *   relu:     y = max(x, 0)          dx = dy * [x > 0]
 *   leaky:    y = x > 0 ? x : a x    dx = dy * (x > 0 ? 1 : a)
 *   (relu is written x < 0 ? 0 : x so that a NaN passes through, as in PyTorch)
 *   sigmoid:  y = 1 / (1 + e^-x)     dx = dy * y (1 - y)
 *   tanh:     y = tanh x             dx = dy * (1 - y^2)
 *   cross-entropy (mean over n):  L = mean_n(logsumexp(z_n) - z_n[t_n]),
 *                                 dL/dz = (softmax(z) - onehot(t)) / n
 *   mse:      L = mean((y - t)^2),   dL/dy = 2 (y - t) / size
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- linear */
void st_linear_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out) {
    st_sgemm(0, 1, n, out, in, x, in, w, in, 0.0f, y, out);
    if (b)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) y[(size_t)i * out + o] += b[o];
}

void st_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int n, int in, int out) {
    if (dx) st_sgemm(0, 0, n, in, out, dy, out, w, in, 1.0f, dx, in);
    st_sgemm(1, 0, out, in, n, dy, out, x, in, 1.0f, dw, in);
    if (db)
        for (int i = 0; i < n; i++)
            for (int o = 0; o < out; o++) db[o] += dy[(size_t)i * out + o];
}

void st_linear_forward_f64(double *y, const double *x, const double *w, const double *b, int n, int in, int out) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b ? b[o] : 0;
            for (int k = 0; k < in; k++) acc += x[(size_t)i * in + k] * w[(size_t)o * in + k];
            y[(size_t)i * out + o] = acc;
        }
}

void st_linear_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                            const double *w, int n, int in, int out) {
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double g = dy[(size_t)i * out + o];
            if (db) db[o] += g;
            for (int k = 0; k < in; k++) {
                dw[(size_t)o * in + k] += g * x[(size_t)i * in + k];
                if (dx) dx[(size_t)i * in + k] += g * w[(size_t)o * in + k];
            }
        }
}

/* ---------------------------------------------------------------- activations */
#define ACT_PAIR(NAME_F, NAME_B, T, EXP, TANH)                                          \
void NAME_F(st_act a, T slope, T *y, const T *x, size_t n) {                            \
    switch (a) {                                                                        \
    case ST_ACT_RELU:                                                                   \
        for (size_t i = 0; i < n; i++) y[i] = x[i] < 0 ? 0 : x[i];                      \
        break;                                                                          \
    case ST_ACT_LEAKY_RELU:                                                             \
        for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : slope * x[i];           \
        break;                                                                          \
    case ST_ACT_SIGMOID: /* two branches keep exp() from overflowing */                 \
        for (size_t i = 0; i < n; i++) {                                                \
            if (x[i] >= 0) y[i] = 1 / (1 + EXP(-x[i]));                                 \
            else { T e = EXP(x[i]); y[i] = e / (1 + e); }                               \
        }                                                                               \
        break;                                                                          \
    case ST_ACT_TANH:                                                                   \
        for (size_t i = 0; i < n; i++) y[i] = TANH(x[i]);                               \
        break;                                                                          \
    }                                                                                   \
}                                                                                       \
void NAME_B(st_act a, T slope, T *dx, const T *dy, const T *x, const T *y, size_t n) {  \
    switch (a) {                                                                        \
    case ST_ACT_RELU:                                                                   \
        for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : 0;                   \
        break;                                                                          \
    case ST_ACT_LEAKY_RELU:                                                             \
        for (size_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : slope * dy[i];       \
        break;                                                                          \
    case ST_ACT_SIGMOID:                                                                \
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * y[i] * (1 - y[i]);              \
        break;                                                                          \
    case ST_ACT_TANH:                                                                   \
        for (size_t i = 0; i < n; i++) dx[i] += dy[i] * (1 - y[i] * y[i]);              \
        break;                                                                          \
    }                                                                                   \
}

ACT_PAIR(st_act_forward, st_act_backward, float, expf, tanhf)
ACT_PAIR(st_act_forward_f64, st_act_backward_f64, double, exp, tanh)

/* ---------------------------------------------------------------- losses */
/* Cross-entropy over a slice of the batch, for logits laid out (n, c, s): class j of
 * sample i at position p is logits[(i c + j) s + p] (s = 1 for a classifier; s = H W for
 * per-pixel classification); labels (n, s). Returns the SUM of the losses of the labels
 * that are not `ignore` and writes dlogits = (softmax - onehot) * scale (zero for ignored
 * positions; scale = 1/count for the mean), so that slices of one batch can be done
 * separately. One exp per logit, kept in dlogits; sums in double.
 *
 * With label smoothing eps (PyTorch's F.cross_entropy(label_smoothing=eps)) the target is
 * (1 - eps) onehot + eps / c, so for one position, with lse = logsumexp(z),
 *     l = (1 - eps) (lse - z_t) + eps/c sum_j (lse - z_j)
 *     dl/dz_j = softmax_j - (1 - eps) [j = t] - eps/c
 * PyTorch divides the smoothing term by the same count of non-ignored targets. */
/* The classifier's case in float (s = 1, no smoothing, up to CE_ROW_MAX classes): the
 * same arithmetic, with the exponentials of a sample's logits computed 16 at a time
 * (vexp16) instead of one libm call each. */
#define CE_ROW_MAX 64
typedef float v16f __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64)));

/* exp(x) for x <= 0 (and NaN), 16 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 in two
 * parts, Cody and Waite), e^r by the Cephes expf polynomial, 2^n put into the exponent
 * bits; within 1 ulp of glibc's expf (every float in [-87.3, 0] checked). Below -87.3
 * (where 2^n would leave the normal range) 0. */
static void vexp16(float v[16]) { /* (in memory: a 64-byte vector argument changes the ABI without AVX-512) */
    v16f x;
    memcpy(&x, v, sizeof x);
    const v16f magic = (v16f){0} + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    v16i under = x < -87.33654f;                /* all ones where the result is 0 */
    x = (v16f)((v16i)x & ~under);               /* (0 there: keeps the arithmetic finite) */
    v16f t = x * 1.44269504088896341f + magic;
    v16f n = t - magic;
    v16f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v16f p = (v16f){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    v16i e = ((v16i)t - (v16i)magic + 127) << 23; /* 2^n */
    x = (v16f)((v16i)(p * (v16f)e) & ~under);
    memcpy(v, &x, sizeof x);
}

/* Blocks of 16 samples, one lane each: the block's logits minus each sample's maximum,
 * class-major (e[j] holds class j of the 16 samples), then one vexp16 per class and the
 * sums over the classes in double, lane by lane in class order, as one sample at a time
 * would add them. */
typedef double v8d __attribute__((vector_size(64), aligned(8)));
static double ce_rows(const float *logits, const int32_t *labels, int n, int c, float *dlogits, double scale,
                      int32_t ignore) {
    double total = 0;
    float e[CE_ROW_MAX][16], m[16];
    double sum[16];
    for (int i0 = 0; i0 < n; i0 += 16) {
        int nr = n - i0 < 16 ? n - i0 : 16;
        const float *zb = logits + (size_t)i0 * c;
        for (int l = 0; l < 16; l++) {
            m[l] = 0;
            if (l >= nr) continue;
            m[l] = zb[(size_t)l * c];
            for (int j = 1; j < c; j++) if (zb[(size_t)l * c + j] > m[l]) m[l] = zb[(size_t)l * c + j];
        }
        for (int j = 0; j < c; j++)
            for (int l = 0; l < 16; l++) e[j][l] = l < nr ? zb[(size_t)l * c + j] - m[l] : 0.0f;
        v8d s0 = {0}, s1 = {0};
        for (int j = 0; j < c; j++) {
            vexp16(e[j]);
            for (int l = 0; l < 8; l++) { s0[l] += e[j][l]; s1[l] += e[j][8 + l]; }
        }
        memcpy(sum, &s0, sizeof s0);
        memcpy(sum + 8, &s1, sizeof s1);
        for (int l = 0; l < nr; l++) {
            int i = i0 + l;
            const float *z = logits + (size_t)i * c;
            float *d = dlogits ? dlogits + (size_t)i * c : NULL;
            int32_t t = labels[i];
            if (t == ignore) {
                if (d) for (int j = 0; j < c; j++) d[j] = 0;
                continue;
            }
            total += (double)m[l] + log(sum[l]) - z[t];
            if (d) {
                double k = scale / sum[l];
                for (int j = 0; j < c; j++) d[j] = (float)(e[j][l] * k);
                d[t] -= (float)scale;
            }
        }
    }
    return total;
}

#define CE(NAME_LS, NAME_ND, NAME_SUM, NAME, T, EXP, ROWS)                               \
double NAME_LS(const T *logits, const int32_t *labels, int n, int c, int s, T *dlogits,  \
               double scale, int32_t ignore, double eps) {                               \
    if (ROWS && s == 1 && eps == 0 && c <= CE_ROW_MAX)                                   \
        return ce_rows((const float *)logits, labels, n, c, (float *)dlogits, scale, ignore); \
    double total = 0;                                                                    \
    for (int i = 0; i < n; i++)                                                          \
        for (int p = 0; p < s; p++) {                                                    \
            const T *z = logits + (size_t)i * c * s + p;                                 \
            T *d = dlogits ? dlogits + (size_t)i * c * s + p : NULL;                     \
            int32_t t = labels[(size_t)i * s + p];                                       \
            if (t == ignore) {                                                           \
                if (d) for (int j = 0; j < c; j++) d[(size_t)j * s] = 0;                 \
                continue;                                                                \
            }                                                                            \
            T m = z[0];                                                                  \
            for (int j = 1; j < c; j++) if (z[(size_t)j * s] > m) m = z[(size_t)j * s];  \
            double sum = 0;                                                              \
            for (int j = 0; j < c; j++) {                                                \
                T e = EXP(z[(size_t)j * s] - m);                                         \
                if (d) d[(size_t)j * s] = e;                                             \
                sum += e;                                                                \
            }                                                                            \
            double lse = (double)m + log(sum);                                           \
            if (eps == 0) total += lse - z[(size_t)t * s];                               \
            else {                                                                       \
                double zsum = 0;                                                         \
                for (int j = 0; j < c; j++) zsum += z[(size_t)j * s];                    \
                total += (1 - eps) * (lse - z[(size_t)t * s]) + eps * (lse - zsum / c);  \
            }                                                                            \
            if (d) {                                                                     \
                double k = scale / sum;                                                  \
                if (eps == 0) {                                                          \
                    for (int j = 0; j < c; j++) d[(size_t)j * s] = (T)(d[(size_t)j * s] * k); \
                    d[(size_t)t * s] -= (T)scale;                                        \
                } else {                                                                 \
                    double u = scale * eps / c;                                          \
                    for (int j = 0; j < c; j++)                                          \
                        d[(size_t)j * s] = (T)(d[(size_t)j * s] * k - u - (j == t ? scale * (1 - eps) : 0)); \
                }                                                                        \
            }                                                                            \
        }                                                                                \
    return total;                                                                        \
}                                                                                        \
double NAME_ND(const T *logits, const int32_t *labels, int n, int c, int s, T *dlogits,  \
               double scale, int32_t ignore) {                                           \
    return NAME_LS(logits, labels, n, c, s, dlogits, scale, ignore, 0.0);                \
}                                                                                        \
double NAME_SUM(const T *logits, const int32_t *labels, int n, int c, T *dlogits,        \
                double scale) {                                                          \
    return NAME_ND(logits, labels, n, c, 1, dlogits, scale, INT32_MIN);                  \
}                                                                                        \
double NAME(const T *logits, const int32_t *labels, int n, int c, T *dlogits) {          \
    return n > 0 ? NAME_SUM(logits, labels, n, c, dlogits, 1.0 / n) / n : 0;             \
}
CE(st_cross_entropy_ls_sum, st_cross_entropy_nd_sum, st_cross_entropy_sum, st_cross_entropy, float, expf, 1)
CE(st_cross_entropy_ls_sum_f64, st_cross_entropy_nd_sum_f64, st_cross_entropy_sum_f64, st_cross_entropy_f64, double, exp, 0)

/* Squared error over a slice: returns the sum of (y - t)^2, dy = 2 (y - t) * scale. */
#define MSE(NAME_SUM, NAME, T)                                                          \
double NAME_SUM(const T *y, const T *t, size_t size, T *dy, double scale) {             \
    double total = 0;                                                                   \
    for (size_t i = 0; i < size; i++) {                                                 \
        double d = (double)y[i] - t[i];                                                 \
        total += d * d;                                                                 \
        if (dy) dy[i] = (T)(2 * d * scale);                                             \
    }                                                                                   \
    return total;                                                                       \
}                                                                                       \
double NAME(const T *y, const T *t, size_t size, T *dy) {                               \
    return size ? NAME_SUM(y, t, size, dy, 1.0 / size) / size : 0;                      \
}
MSE(st_mse_sum, st_mse, float)
MSE(st_mse_sum_f64, st_mse_f64, double)

/* ---------------------------------------------------------------- softmax over channels
 * x, y (n, c, s): for every sample and position, y_j = exp(x_j - max) / sum_k exp(x_k - max)
 * over the c channels. Backward: dx_j += y_j (dy_j - sum_k dy_k y_k). */
#define SOFTMAX(NAME_F, NAME_B, T, EXP)                                                 \
void NAME_F(T *y, const T *x, int n, int c, int s) {                                    \
    for (int i = 0; i < n; i++)                                                         \
        for (int p = 0; p < s; p++) {                                                   \
            const T *xi = x + (size_t)i * c * s + p;                                    \
            T *yi = y + (size_t)i * c * s + p;                                          \
            T m = xi[0];                                                                \
            for (int j = 1; j < c; j++) if (xi[(size_t)j * s] > m) m = xi[(size_t)j * s]; \
            double sum = 0;                                                             \
            for (int j = 0; j < c; j++) {                                               \
                yi[(size_t)j * s] = EXP(xi[(size_t)j * s] - m);                         \
                sum += yi[(size_t)j * s];                                               \
            }                                                                           \
            for (int j = 0; j < c; j++) yi[(size_t)j * s] = (T)(yi[(size_t)j * s] / sum); \
        }                                                                               \
}                                                                                       \
void NAME_B(T *dx, const T *dy, const T *y, int n, int c, int s) {                      \
    for (int i = 0; i < n; i++)                                                         \
        for (int p = 0; p < s; p++) {                                                   \
            size_t at = (size_t)i * c * s + p;                                          \
            double dot = 0;                                                             \
            for (int j = 0; j < c; j++) dot += (double)dy[at + (size_t)j * s] * y[at + (size_t)j * s]; \
            for (int j = 0; j < c; j++)                                                 \
                dx[at + (size_t)j * s] += (T)(y[at + (size_t)j * s] * (dy[at + (size_t)j * s] - dot)); \
        }                                                                               \
}
SOFTMAX(st_softmax_forward, st_softmax_backward, float, expf)
SOFTMAX(st_softmax_forward_f64, st_softmax_backward_f64, double, exp)

/* Binary cross-entropy on logits over a slice (PyTorch's BCEWithLogitsLoss), in its stable
 * form: l = max(x, 0) - x t + log(1 + exp(-|x|)); dl/dx = sigmoid(x) - t, times scale.
 * Returns the sum of the losses. */
#define BCE(NAME, T, EXP, LOG1P)                                                        \
double NAME(const T *x, const T *t, size_t size, T *dx, double scale) {                 \
    double total = 0;                                                                   \
    for (size_t i = 0; i < size; i++) {                                                 \
        double v = x[i], e = exp(-fabs(v));                                             \
        total += (v > 0 ? v : 0) - v * t[i] + log1p(e);                                 \
        if (dx) {                                                                       \
            double sig = v >= 0 ? 1 / (1 + e) : e / (1 + e);                            \
            dx[i] = (T)((sig - t[i]) * scale);                                          \
        }                                                                               \
    }                                                                                   \
    return total;                                                                       \
}
BCE(st_bce_logits_sum, float, expf, log1pf)
BCE(st_bce_logits_sum_f64, double, exp, log1p)
