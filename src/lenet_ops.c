/* lenet_ops.c - scaled tanh, channel selection and the RBF output layer of LeCun et al.
 * 1998 (formulas in lenet_ops.h), and the digit bitmaps that are the RBF centres. */
#include "lenet_ops.h"

#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- scaled tanh
 * Backward recomputes t = tanh(S x) from x and multiplies in PyTorch's order for
 * A * tanh(S * x): dy * A, times (1 - t^2), times S. */
#define SCALED_TANH(NAME_F, NAME_B, T, TANH)                                            \
void NAME_F(T *y, const T *x, size_t n, T A, T S) {                                     \
    for (size_t i = 0; i < n; i++) y[i] = A * TANH(S * x[i]);                           \
}                                                                                       \
void NAME_B(T *dx, const T *dy, const T *x, size_t n, T A, T S) {                       \
    for (size_t i = 0; i < n; i++) {                                                    \
        T t = TANH(S * x[i]);                                                           \
        dx[i] += dy[i] * A * (1 - t * t) * S;                                           \
    }                                                                                   \
}
SCALED_TANH(st_scaled_tanh_forward, st_scaled_tanh_backward, float, tanhf)
SCALED_TANH(st_scaled_tanh_forward_f64, st_scaled_tanh_backward_f64, double, tanh)

/* ---------------------------------------------------------------- select (index_select, dim 1) */
#define SELECT(NAME_F, NAME_B, T)                                                       \
void NAME_F(T *y, const T *x, const int *ch, int k, int n, int c, size_t s) {           \
    for (int i = 0; i < n; i++)                                                         \
        for (int j = 0; j < k; j++)                                                     \
            memcpy(y + ((size_t)i * k + j) * s, x + ((size_t)i * c + ch[j]) * s, sizeof(T) * s); \
}                                                                                       \
void NAME_B(T *dx, const T *dy, const int *ch, int k, int n, int c, size_t s) {         \
    for (int i = 0; i < n; i++)                                                         \
        for (int j = 0; j < k; j++) {                                                   \
            T *d = dx + ((size_t)i * c + ch[j]) * s;                                    \
            const T *g = dy + ((size_t)i * k + j) * s;                                  \
            for (size_t p = 0; p < s; p++) d[p] += g[p];                                \
        }                                                                               \
}
SELECT(st_select_forward, st_select_backward, float)
SELECT(st_select_forward_f64, st_select_backward_f64, double)

/* ---------------------------------------------------------------- rbf
 * Sums of squares in double, whatever T is. */
#define RBF(NAME_F, NAME_B, T)                                                          \
void NAME_F(T *y, const T *x, const T *w, int n, int in, int out) {                     \
    for (int i = 0; i < n; i++)                                                         \
        for (int o = 0; o < out; o++) {                                                 \
            const T *xi = x + (size_t)i * in, *wo = w + (size_t)o * in;                 \
            double acc = 0;                                                             \
            for (int j = 0; j < in; j++) {                                              \
                double d = (double)xi[j] - wo[j];                                       \
                acc += d * d;                                                           \
            }                                                                           \
            y[(size_t)i * out + o] = (T)-acc;                                           \
        }                                                                               \
}                                                                                       \
void NAME_B(T *dx, const T *dy, const T *x, const T *w, int n, int in, int out) {       \
    for (int i = 0; i < n; i++)                                                         \
        for (int j = 0; j < in; j++) {                                                  \
            double xj = x[(size_t)i * in + j], acc = 0;                                 \
            for (int o = 0; o < out; o++) acc += (double)dy[(size_t)i * out + o] * (xj - w[(size_t)o * in + j]); \
            dx[(size_t)i * in + j] += (T)(-2 * acc);                                    \
        }                                                                               \
}
RBF(st_rbf_forward, st_rbf_backward, float)
RBF(st_rbf_forward_f64, st_rbf_backward_f64, double)

/* ---------------------------------------------------------------- the digit bitmaps
 * The RBF centres of the paper's output layer (its figure 3): each digit drawn on a 7x12
 * grid, '#' = +1 (ink), '.' = -1. One string per grid row, the ten digits side by side. */
static const char *const digit_art[ST_DIGIT_H] = {
 /*  0       1       2       3       4       5       6       7       8       9     */
    "....... ....... ....... ....... ....... ....... ....... ....... ....... .......",
    "..###.. ...##.. .#####. ####### .....## ####### ...###. ####### .#####. .#####.",
    ".##.##. ..###.. ##...## .....## ....### ##..... ..##... ##...## ##...## ##...##",
    "##...## .####.. .....## ....##. ...#### ##..... .##.... .....## ##...## ##...##",
    "##...## ...##.. ....##. ...##.. ..##.## ######. ##..... ....##. .##.##. ##...##",
    "##...## ...##.. ...##.. ..####. .##..## .....## ######. ...##.. ..###.. .######",
    "##...## ...##.. ..##... .....## ####### .....## ##...## ...##.. .##.##. .....##",
    "##...## ...##.. .##.... .....## .....## .....## ##...## ..##... ##...## ....##.",
    "##...## ...##.. ##..... ##...## .....## ##...## ##...## ..##... ##...## ...##..",
    ".##.##. ...##.. ##..... ##...## .....## ##...## ##...## ..##... ##...## ..##...",
    "..###.. .###### ####### .#####. .....## .#####. .#####. ..##... .#####. .##....",
    "....... ....... ....... ....... ....... ....... ....... ....... ....... .......",
};

const char *st_lenet_digit_art(int row) { return row >= 0 && row < ST_DIGIT_H ? digit_art[row] : NULL; }

void st_lenet_digit_centers(float *w, int out) {
    for (int d = 0; d < out && d < 10; d++)
        for (int r = 0; r < ST_DIGIT_H; r++)
            for (int c = 0; c < ST_DIGIT_W; c++)
                w[(size_t)d * ST_DIGIT_W * ST_DIGIT_H + r * ST_DIGIT_W + c] =
                    digit_art[r][d * (ST_DIGIT_W + 1) + c] == '#' ? 1.0f : -1.0f;
}
