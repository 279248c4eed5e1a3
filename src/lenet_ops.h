/* lenet_ops.h - the three ops that the 1998 LeNet-5 needs beyond the usual ones (models.md
 * A2), as forward/backward pairs over plain arrays (float, and double for gradient checks):
 *
 *   scaled_tanh  y = A tanh(S x)                      dx = dy A S (1 - tanh^2(S x))
 *   select       y[n, k, ...] = x[n, ch[k], ...]      dx[n, ch[k], ...] += dy[n, k, ...]
 *                (torch.index_select on dim 1: C3's connection table)
 *   rbf          y[n, i] = -sum_j (x[n, j] - w[i, j])^2   dx[n, j] += sum_i dy[n, i] (-2)(x[n, j] - w[i, j])
 *                (the negated squared Euclidean distance to fixed centres w, so that the
 *                nearest centre scores highest and the outputs are logits; w gets no gradient)
 *
 * and the RBF centres of the paper: 7x12 bitmaps of the digits 0-9, +1 for ink, -1 for paper. */
#ifndef ST_LENET_OPS_H
#define ST_LENET_OPS_H

#include <stddef.h>

#define ST_LECUN_A 1.7159f
#define ST_LECUN_S ((float)(2.0 / 3.0))

void st_scaled_tanh_forward(float *y, const float *x, size_t n, float A, float S);
void st_scaled_tanh_backward(float *dx, const float *dy, const float *x, size_t n, float A, float S);
void st_scaled_tanh_forward_f64(double *y, const double *x, size_t n, double A, double S);
void st_scaled_tanh_backward_f64(double *dx, const double *dy, const double *x, size_t n, double A, double S);

/* x (n, c, s) -> y (n, k, s) with channel ch[j] of x as channel j of y */
void st_select_forward(float *y, const float *x, const int *ch, int k, int n, int c, size_t s);
void st_select_backward(float *dx, const float *dy, const int *ch, int k, int n, int c, size_t s);
void st_select_forward_f64(double *y, const double *x, const int *ch, int k, int n, int c, size_t s);
void st_select_backward_f64(double *dx, const double *dy, const int *ch, int k, int n, int c, size_t s);

/* x (n, in), centres w (out, in) -> y (n, out) */
void st_rbf_forward(float *y, const float *x, const float *w, int n, int in, int out);
void st_rbf_backward(float *dx, const float *dy, const float *x, const float *w, int n, int in, int out);
void st_rbf_forward_f64(double *y, const double *x, const double *w, int n, int in, int out);
void st_rbf_backward_f64(double *dx, const double *dy, const double *x, const double *w, int n, int in, int out);

#define ST_DIGIT_W 7
#define ST_DIGIT_H 12
/* The first `out` (<= 10) digit bitmaps as RBF centres: w[d * 84 + r * 7 + c] = +1 ('#') or
 * -1 ('.') for digit d, row r, column c. */
void st_lenet_digit_centers(float *w, int out);
/* The character art itself: row r (0..11) of all ten digits, digit d at columns 8d..8d+6. */
const char *st_lenet_digit_art(int row);

#endif
