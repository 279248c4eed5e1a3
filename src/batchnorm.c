/* batchnorm.c - batch normalisation and dropout, forward and backward, following PyTorch
 * (models.md B7, B8).
 *
 * Batch norm, per channel ch over its m = N*S values (layout (N, C, S)):
 *   mu = sum x / m,  var_b = sum (x - mu)^2 / m   (two passes, biased),
 *   invstd = 1 / sqrt(var_b + eps),  y = (x - mu) * invstd * gamma + beta.
 *   Running update (when tracked): nbt += 1; m' = momentum or 1/nbt (momentum < 0);
 *   rm = (1 - m') rm + m' mu;  rv = (1 - m') rv + m' var_b * m / (m - 1).
 *   Backward (training): xhat = (x - mu) invstd, dbeta += sum g, dgamma += sum g xhat,
 *   dx += gamma invstd (g - sum g / m - xhat * sum(g xhat) / m).
 *   Backward (eval): the affine map y = (x - rm) r gamma + beta with r = 1/sqrt(rv + eps).
 *
 * Precision and speed: the per-channel sums are accumulated in double, and the per-element
 * arithmetic is done in double too, then rounded once. Channels are split across OpenMP
 * threads when N*C*S > 100000; each channel is reduced by one thread in a fixed order, so
 * results do not depend on the thread count. The double versions are the same code (one
 * macro instantiated twice). The normalisation y = (x - mu) * sc + sh is one noinline
 * function per type, so that st_bn_recompute (the memory planner's rematerialisation of a
 * training forward's output, net.c) rounds exactly as the forward did.
 *
 * Dropout: one st_rng_uniform draw per element (per plane for dropout2d); keep iff
 * draw >= p; kept values are scaled by 1/(1 - p), computed in double and rounded once.
 */
#include "batchnorm.h"

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#else
#define omp_in_parallel() 0
#endif

#define BN_PAR_MIN 100000LL

static st_status bn_check(int n, int c, int s) {
    if (n <= 0 || c <= 0 || s <= 0)
        return st_fail(ST_ERR_SHAPE, "batch norm: sizes must be positive (got N=%d, C=%d, S=%d)", n, c, s);
    if ((long long)n * s == 1)
        return st_fail(ST_ERR_SHAPE, "batch norm: Expected more than 1 value per channel when training, "
                       "got input size (%d, %d%s)", n, c, s == 1 ? "" : ", ...");
    return ST_OK;
}

/* y = (x - mu) * sc + sh over one channel's n planes of s values (channel stride cs): the
 * one place the normalisation is computed, so that st_bn_recompute reproduces the training
 * forward's outputs bit for bit (noinline: one compiled copy, one rounding). */
#define BN_NORM(SFX, T)                                                                         \
__attribute__((noinline)) static void bn_norm_channel##SFX(T *y, const T *x, size_t cs, int n, int s, \
                                                           double mu, double sc, double sh) {   \
    for (int i = 0; i < n; i++) {                                                               \
        const T *xp = x + i * cs;                                                               \
        T *yp = y + i * cs;                                                                     \
        for (int k = 0; k < s; k++) yp[k] = (T)((xp[k] - mu) * sc + sh);                       \
    }                                                                                           \
}
BN_NORM(, float)
BN_NORM(_f64, double)

#define BN_KERNELS(SFX, T)                                                                      \
static st_status bn_train##SFX(T *y, T *mean_out, T *invstd_out, double *stats, const T *x,     \
                               const T *gamma, const T *beta,                                   \
                               T *running_mean, T *running_var, int n, int c, int s,            \
                               T eps, T momentum, int64_t *num_batches_tracked);                \
st_status st_bn_forward_train##SFX(T *y, T *mean_out, T *invstd_out, const T *x,                \
                                   const T *gamma, const T *beta,                               \
                                   T *running_mean, T *running_var, int n, int c, int s,        \
                                   T eps, T momentum, int64_t *num_batches_tracked) {           \
    return bn_train##SFX(y, mean_out, invstd_out, NULL, x, gamma, beta, running_mean, running_var, \
                         n, c, s, eps, momentum, num_batches_tracked);                          \
}                                                                                               \
static st_status bn_train##SFX(T *y, T *mean_out, T *invstd_out, double *stats, const T *x,     \
                               const T *gamma, const T *beta,                                   \
                               T *running_mean, T *running_var, int n, int c, int s,            \
                               T eps, T momentum, int64_t *num_batches_tracked) {               \
    st_status st = bn_check(n, c, s);                                                           \
    if (st != ST_OK) return st;                                                                 \
    const int track = running_mean && running_var;                                              \
    if (track && momentum < 0 && !num_batches_tracked)                                          \
        return st_fail(ST_ERR_ARG, "batch norm: momentum=None (cumulative average) needs num_batches_tracked"); \
    double mom = (double)momentum;                                                              \
    if (track && num_batches_tracked) {                                                         \
        ++*num_batches_tracked;                                                                 \
        if (momentum < 0) mom = 1.0 / (double)*num_batches_tracked;                             \
    }                                                                                           \
    const size_t cs = (size_t)c * s;                                                            \
    const double m = (double)n * s;                                                             \
    _Pragma("omp parallel for schedule(static) if ((long long)n * c * s > BN_PAR_MIN && !omp_in_parallel())")         \
    for (int ch = 0; ch < c; ch++) {                                                            \
        double sum = 0;                                                                         \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            for (int k = 0; k < s; k++) sum += xp[k];                                           \
        }                                                                                       \
        const double mu = sum / m;                                                              \
        double ss = 0;                                                                          \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            for (int k = 0; k < s; k++) { double d = xp[k] - mu; ss += d * d; }                 \
        }                                                                                       \
        const double var = ss / m;                                                              \
        const double is = 1.0 / sqrt(var + (double)eps);                                        \
        const double sc = is * (gamma ? (double)gamma[ch] : 1.0);                               \
        const double sh = beta ? (double)beta[ch] : 0.0;                                        \
        bn_norm_channel##SFX(y + (size_t)ch * s, x + (size_t)ch * s, cs, n, s, mu, sc, sh);     \
        if (stats) { stats[ch] = mu; stats[c + ch] = is; }                                      \
        if (mean_out) mean_out[ch] = (T)mu;                                                     \
        if (invstd_out) invstd_out[ch] = (T)is;                                                 \
        if (track) {                                                                            \
            running_mean[ch] = (T)((1 - mom) * running_mean[ch] + mom * mu);                    \
            running_var[ch] = (T)((1 - mom) * running_var[ch] + mom * var * m / (m - 1));       \
        }                                                                                       \
    }                                                                                           \
    return ST_OK;                                                                               \
}                                                                                               \
void st_bn_forward_eval##SFX(T *y, const T *x, const T *gamma, const T *beta,                   \
                             const T *running_mean, const T *running_var,                      \
                             int n, int c, int s, T eps) {                                      \
    const size_t cs = (size_t)c * s;                                                            \
    _Pragma("omp parallel for schedule(static) if ((long long)n * c * s > BN_PAR_MIN && !omp_in_parallel())")         \
    for (int ch = 0; ch < c; ch++) {                                                            \
        const double mu = running_mean[ch];                                                     \
        const double sc = (gamma ? (double)gamma[ch] : 1.0) / sqrt((double)running_var[ch] + (double)eps); \
        const double sh = beta ? (double)beta[ch] : 0.0;                                        \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            T *yp = y + i * cs + (size_t)ch * s;                                                \
            for (int k = 0; k < s; k++) yp[k] = (T)((xp[k] - mu) * sc + sh);                   \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
void st_bn_backward##SFX(T *dx, T *dgamma, T *dbeta, const T *dy, const T *x,                   \
                         const T *mean, const T *invstd, const T *gamma,                        \
                         int n, int c, int s) {                                                 \
    const size_t cs = (size_t)c * s;                                                            \
    const double m = (double)n * s;                                                             \
    _Pragma("omp parallel for schedule(static) if ((long long)n * c * s > BN_PAR_MIN && !omp_in_parallel())")         \
    for (int ch = 0; ch < c; ch++) {                                                            \
        const double mu = mean[ch], is = invstd[ch];                                            \
        double sg = 0, sgx = 0;                                                                 \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            const T *gp = dy + i * cs + (size_t)ch * s;                                         \
            for (int k = 0; k < s; k++) { sg += gp[k]; sgx += gp[k] * ((xp[k] - mu) * is); }    \
        }                                                                                       \
        if (dbeta) dbeta[ch] = (T)(dbeta[ch] + sg);                                             \
        if (dgamma) dgamma[ch] = (T)(dgamma[ch] + sgx);                                         \
        if (!dx) continue;                                                                      \
        const double a = (gamma ? (double)gamma[ch] : 1.0) * is;                                \
        const double mg = sg / m, mgx = sgx / m;                                                \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            const T *gp = dy + i * cs + (size_t)ch * s;                                         \
            T *dp = dx + i * cs + (size_t)ch * s;                                               \
            for (int k = 0; k < s; k++)                                                         \
                dp[k] = (T)(dp[k] + a * (gp[k] - mg - (xp[k] - mu) * is * mgx));               \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
void st_bn_backward_eval##SFX(T *dx, T *dgamma, T *dbeta, const T *dy, const T *x,              \
                              const T *gamma, const T *running_mean, const T *running_var,      \
                              int n, int c, int s, T eps) {                                     \
    const size_t cs = (size_t)c * s;                                                            \
    _Pragma("omp parallel for schedule(static) if ((long long)n * c * s > BN_PAR_MIN && !omp_in_parallel())")         \
    for (int ch = 0; ch < c; ch++) {                                                            \
        const double mu = running_mean[ch];                                                     \
        const double r = 1.0 / sqrt((double)running_var[ch] + (double)eps);                     \
        const double a = (gamma ? (double)gamma[ch] : 1.0) * r;                                 \
        double sg = 0, sgx = 0;                                                                 \
        for (int i = 0; i < n; i++) {                                                           \
            const T *xp = x + i * cs + (size_t)ch * s;                                          \
            const T *gp = dy + i * cs + (size_t)ch * s;                                         \
            T *dp = dx ? dx + i * cs + (size_t)ch * s : NULL;                                   \
            for (int k = 0; k < s; k++) {                                                       \
                sg += gp[k];                                                                    \
                sgx += gp[k] * ((xp[k] - mu) * r);                                              \
                if (dp) dp[k] = (T)(dp[k] + a * gp[k]);                                         \
            }                                                                                   \
        }                                                                                       \
        if (dbeta) dbeta[ch] = (T)(dbeta[ch] + sg);                                             \
        if (dgamma) dgamma[ch] = (T)(dgamma[ch] + sgx);                                         \
    }                                                                                           \
}

BN_KERNELS(, float)
BN_KERNELS(_f64, double)

st_status st_bn_forward_train_stats(float *y, float *mean_out, float *invstd_out, double *stats, const float *x,
                                    const float *gamma, const float *beta, float *running_mean, float *running_var,
                                    int n, int c, int s, float eps, float momentum, int64_t *num_batches_tracked) {
    return bn_train(y, mean_out, invstd_out, stats, x, gamma, beta, running_mean, running_var, n, c, s, eps, momentum,
                    num_batches_tracked);
}

void st_bn_recompute(float *y, const float *x, const double *stats, const float *gamma, const float *beta,
                     int n, int c, int s) {
    const size_t cs = (size_t)c * s;
    _Pragma("omp parallel for schedule(static) if ((long long)n * c * s > BN_PAR_MIN && !omp_in_parallel())")
    for (int ch = 0; ch < c; ch++) {
        const double is = stats[c + ch];
        const double sc = is * (gamma ? (double)gamma[ch] : 1.0);
        const double sh = beta ? (double)beta[ch] : 0.0;
        bn_norm_channel(y + (size_t)ch * s, x + (size_t)ch * s, cs, n, s, stats[ch], sc, sh);
    }
}

/* ---------------------------------------------------------------- dropout */
void st_dropout_mask(uint8_t *mask, size_t size, float p, st_rng *rng) {
    if (p <= 0) { memset(mask, 1, size); return; }
    if (p >= 1) { memset(mask, 0, size); return; }
    for (size_t i = 0; i < size; i++) mask[i] = st_rng_uniform(rng) >= (double)p;
}

void st_dropout_forward(float *y, const float *x, const uint8_t *mask, size_t size, float p) {
    if (p >= 1) { memset(y, 0, size * sizeof *y); return; }
    const double sc = p <= 0 ? 1.0 : 1.0 / (1.0 - (double)p);
    for (size_t i = 0; i < size; i++) y[i] = mask[i] ? (float)(x[i] * sc) : 0.0f;
}

void st_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t size, float p) {
    if (p >= 1) return;
    const double sc = p <= 0 ? 1.0 : 1.0 / (1.0 - (double)p);
    for (size_t i = 0; i < size; i++)
        if (mask[i]) dx[i] += (float)(dy[i] * sc);
}

void st_dropout2d_forward(float *y, const float *x, const uint8_t *mask, int n, int c, int s, float p) {
    const size_t planes = (size_t)n * c;
    if (p >= 1) { memset(y, 0, planes * s * sizeof *y); return; }
    const double sc = p <= 0 ? 1.0 : 1.0 / (1.0 - (double)p);
    for (size_t q = 0; q < planes; q++) {
        const float *xp = x + q * s;
        float *yp = y + q * s;
        if (mask[q]) for (int k = 0; k < s; k++) yp[k] = (float)(xp[k] * sc);
        else for (int k = 0; k < s; k++) yp[k] = 0.0f;
    }
}

void st_dropout2d_backward(float *dx, const float *dy, const uint8_t *mask, int n, int c, int s, float p) {
    if (p >= 1) return;
    const size_t planes = (size_t)n * c;
    const double sc = p <= 0 ? 1.0 : 1.0 / (1.0 - (double)p);
    for (size_t q = 0; q < planes; q++) {
        if (!mask[q]) continue;
        const float *gp = dy + q * s;
        float *dp = dx + q * s;
        for (int k = 0; k < s; k++) dp[k] += (float)(gp[k] * sc);
    }
}
