/* batchnorm.h - batch normalisation (PyTorch's BatchNorm1d / BatchNorm2d, models.md B7)
 * and dropout / dropout2d (B8), forward and backward. See batchnorm.c for the formulas.
 *
 * Batch norm sees its input as (N, C, S): S = 1 for BatchNorm1d on (N, C), S = L for
 * (N, C, L), S = H*W for BatchNorm2d on (N, C, H, W). Element (i, ch, k) sits at
 * (i*C + ch)*S + k. Statistics are per channel over the N*S values of that channel.
 * Backward functions ACCUMULATE into their gradient buffers (dx += ..., dgamma += ...),
 * like every backward in the library; any gradient pointer may be NULL (not wanted).
 */
#ifndef ST_BATCHNORM_H
#define ST_BATCHNORM_H

#include "internal.h"

/* Training forward. y (N, C, S) = gamma * (x - mu) * invstd + beta with the batch mean mu
 * and invstd = 1 / sqrt(var_b + eps), var_b the BIASED batch variance.
 * gamma == NULL (and beta == NULL): no affine map (gamma = 1, beta = 0); beta may also be
 * NULL alone (beta = 0). mean_out, invstd_out (C each; either may be NULL): the batch
 * statistics that st_bn_backward needs.
 * Running statistics are updated only when running_mean and running_var are both non-NULL
 * (track_running_stats): num_batches_tracked += 1 (if non-NULL), then with
 * m = momentum, or 1/num_batches_tracked when momentum < 0 (PyTorch's momentum=None,
 * which then needs num_batches_tracked):
 *   running_mean = (1 - m) running_mean + m mu
 *   running_var  = (1 - m) running_var  + m var_b * N*S / (N*S - 1)   (unbiased)
 * Errors: ST_ERR_SHAPE if N*S == 1 ("Expected more than 1 value per channel when
 * training"), or a non-positive size; ST_ERR_ARG for momentum < 0 without a counter.
 * On error nothing is written. */
st_status st_bn_forward_train(float *y, float *mean_out, float *invstd_out, const float *x,
                              const float *gamma, const float *beta,
                              float *running_mean, float *running_var, int n, int c, int s,
                              float eps, float momentum, int64_t *num_batches_tracked);

/* The same, also writing the batch statistics in double to stats (2c values: the means,
 * then the 1/std), for st_bn_recompute. */
st_status st_bn_forward_train_stats(float *y, float *mean_out, float *invstd_out, double *stats, const float *x,
                                    const float *gamma, const float *beta, float *running_mean, float *running_var,
                                    int n, int c, int s, float eps, float momentum, int64_t *num_batches_tracked);
/* Recomputes the output of st_bn_forward_train_stats from the same x, stats, gamma and beta,
 * bit for bit (the memory planner drops a batch norm's output after the forward pass and
 * recomputes it for backward instead of keeping it). Updates no running statistics. */
void st_bn_recompute(float *y, const float *x, const double *stats, const float *gamma, const float *beta,
                     int n, int c, int s);

/* Eval forward: y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.
 * (A module without running statistics normalises with the batch statistics in eval mode
 * too: call st_bn_forward_train with NULL running buffers instead.) */
void st_bn_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                        const float *running_mean, const float *running_var,
                        int n, int c, int s, float eps);

/* Training backward, with xhat = (x - mean) * invstd and g = dy, per channel over N*S:
 *   dbeta  += sum g
 *   dgamma += sum g * xhat
 *   dx     += gamma * invstd * (g - mean(g) - xhat * mean(g * xhat))
 * mean, invstd: as saved by st_bn_forward_train; gamma NULL = 1. */
void st_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                    const float *mean, const float *invstd, const float *gamma,
                    int n, int c, int s);

/* Eval backward (the fixed affine map), with r = 1 / sqrt(running_var + eps):
 *   dx += dy * gamma * r,  dgamma += sum dy * (x - running_mean) * r,  dbeta += sum dy. */
void st_bn_backward_eval(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                         const float *gamma, const float *running_mean, const float *running_var,
                         int n, int c, int s, float eps);

/* The same in double, for finite-difference checks. */
st_status st_bn_forward_train_f64(double *y, double *mean_out, double *invstd_out, const double *x,
                                  const double *gamma, const double *beta,
                                  double *running_mean, double *running_var, int n, int c, int s,
                                  double eps, double momentum, int64_t *num_batches_tracked);
void st_bn_forward_eval_f64(double *y, const double *x, const double *gamma, const double *beta,
                            const double *running_mean, const double *running_var,
                            int n, int c, int s, double eps);
void st_bn_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dy, const double *x,
                        const double *mean, const double *invstd, const double *gamma,
                        int n, int c, int s);
void st_bn_backward_eval_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                             const double *x, const double *gamma, const double *running_mean,
                             const double *running_var, int n, int c, int s, double eps);

/* ---------------------------------------------------------------- dropout
 * Inverted dropout: keep each element with probability 1 - p, scale kept ones by
 * 1/(1 - p). mask[i] = 1 (keep) or 0 (drop). Masks come from st_rng: one
 * st_rng_uniform draw per element, kept iff draw >= p, so the same rng state gives the
 * same mask. p <= 0: every element kept, no draws; p >= 1: every element dropped, no
 * draws (forward then gives zeros, as PyTorch does). */
void st_dropout_mask(uint8_t *mask, size_t size, float p, st_rng *rng);
/* y = x * mask / (1 - p)  (y = 0 for p >= 1). y may equal x. */
void st_dropout_forward(float *y, const float *x, const uint8_t *mask, size_t size, float p);
/* dx += dy * mask / (1 - p) */
void st_dropout_backward(float *dx, const float *dy, const uint8_t *mask, size_t size, float p);

/* Dropout2d (PyTorch's Dropout1d/2d/3d on (N, C, S)): one draw per (n, c) plane.
 * mask holds n*c entries (st_dropout_mask(mask, n*c, p, rng)); a plane is kept whole or
 * zeroed whole. */
void st_dropout2d_forward(float *y, const float *x, const uint8_t *mask, int n, int c, int s, float p);
void st_dropout2d_backward(float *dx, const float *dy, const uint8_t *mask, int n, int c, int s, float p);

#endif
