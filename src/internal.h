/* internal.h - what the library's own files share and users do not see. */
#ifndef ST_INTERNAL_H
#define ST_INTERNAL_H

#include "stride.h"
#include <stdarg.h>

/* Sets this thread's error text (printf-style) and returns `code`, so a failing
 * function can end with `return st_fail(ST_ERR_SHAPE, "conv1: ...", ...)`. */
st_status st_fail(st_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Adds context in front of the current error text: "model.net line 3: " + old text. */
st_status st_fail_prefix(st_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

char *st_strdup(const char *s);
void *st_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free with st_aligned_free */
void st_aligned_free(void *p);

/* ---------------------------------------------------------------- files (array.c)
 * Shape arithmetic with overflow checks, whole-range reads with clear messages, and
 * atomic writes (temporary file in the same folder, fsync, rename). */
char *st_shape64_str(int ndim, const int64_t *shape, char *buf, size_t len);
int st_shape_nbytes(int ndim, const int64_t *shape, st_dtype t, int64_t *numel, size_t *bytes);
st_status st_array_check(const st_array *a, const char *what, size_t *bytes);
st_status st_io_open_read(const char *path, int *fd, int64_t *size);
st_status st_io_read_at(const char *path, int fd, void *buf, size_t n, int64_t off);
st_status st_io_write_atomic(const char *path, int nparts, const void *const *parts, const size_t *lens);

/* ---------------------------------------------------------------- epilogues (epilogue.c)
 * What st_net_run does to a layer's output as it is made: y = act(y * scale[c] +
 * shift[c] + add), c the output channel; add (NULL: none) is laid out like y; act 0:
 * none, 1: ReLU, 2: leaky ReLU with `slope`. st_epilogue_span: n values of channel c
 * (add: NULL or n values); st_epilogue_rows: rows [r0, r1) of y seen as (rows, S), row r
 * of channel r % C, with e->add; st_epilogue_apply: all (outer * C) rows, split over the
 * threads when large. */
typedef struct {
    const float *scale, *shift, *add;
    int act;
    float slope;
} st_epilogue;
void st_epilogue_span(const st_epilogue *e, float *y, const float *add, size_t n, int c);
void st_epilogue_rows(const st_epilogue *e, float *y, size_t r0, size_t r1, int C, size_t S);
void st_epilogue_apply(const st_epilogue *e, float *y, int outer, int C, size_t S);
/* How many equal shares an element-wise pass over `floats` values splits into: one per
 * thread when large and outside a parallel region, else 1. */
int st_elementwise_parts(size_t floats);
/* The bias's gradient, the backward of "+ b[c]": db[c] += the sum of dy's values of
 * channel c, dy laid out (outer, C, S). Each channel's sum runs in 16 running sums added
 * in a fixed order, so the result does not depend on the thread count. */
void st_bias_grad(float *db, const float *dy, int outer, int C, size_t S);

/* ---------------------------------------------------------------- GEMM
 * C (M x N) = alpha-free accumulate form:  C = beta*C + op(A) * op(B), row-major,
 * lda/ldb/ldc are row strides. transA: A is stored K x M; transB: B is stored N x K.
 * Each C element is summed over k in increasing order by one thread, so the result
 * does not depend on the thread count. */
void st_sgemm(int transA, int transB, int M, int N, int K,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
void st_sgemm_ref(int transA, int transB, int M, int N, int K,
                  const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc);
/* Operands packed once for many products (a layer's weights in inference):
 * st_sgemm_pack packs op(A) (which = 0, rows = M) or op(B) (which = 1, rows = N) of K
 * into `packed` (st_sgemm_pack_size floats, 64-byte aligned) for the current ISA;
 * st_sgemm_packed is st_sgemm reading Ap / Bp instead of packing A / B where they fit
 * the product (NULL, or packed for another shape or ISA: A / B are packed as usual), so
 * A and B must still be given, then the epilogue epi (NULL: none). Results are those of
 * st_sgemm followed by the epilogue. */
/* An epilogue for a product's C (NULL: none), applied to each element once its sum is
 * complete: row i of C is channel c0 + i, and add (NULL: none) is laid out like C (ldc). */
typedef struct {
    const st_epilogue *e;
    int c0;
    const float *add;
} st_gemm_epi;
size_t st_sgemm_pack_size(int which, int rows, int K);
void st_sgemm_pack(int which, int trans, int rows, int K, const float *X, int ld, float *packed);
void st_sgemm_packed(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *Ap,
                     const float *B, int ldb, const float *Bp, float beta, float *C, int ldc, const st_gemm_epi *epi);
/* st_sgemm_packed with a B that is never stored (implicit im2col): rows(ctx, r, x0, n,
 * dst) writes B[r][x0 .. x0+n) of the B that st_sgemm would read (N x K when transB);
 * it may run on several threads at once. Always the packed path (no small-product one). */
typedef void (*st_gemm_rows_fn)(const void *ctx, int r, int x0, int n, float *dst);
void st_sgemm_implicit(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *Ap,
                       st_gemm_rows_fn rows, const void *ctx, float beta, float *C, int ldc, const st_gemm_epi *epi);
/* dst[c*ds + r] = src[r*ss + c] for a rows x cols block (8 x 8 blocks in registers). */
void st_transpose(const float *src, size_t ss, int rows, int cols, float *dst, size_t ds);
/* The micro-kernels st_sgemm uses, chosen once from what the CPU supports (or the
 * environment variable ST_GEMM_ISA=avx512|avx2|portable). For tests and benchmarks,
 * process-wide and not thread-safe: st_gemm_force_isa picks one (-1: back to the best;
 * returns -1 if the CPU lacks it), st_gemm_force_small sends every product the small
 * path can take there (1), none (0) or decides by size (-1, the default).
 * st_gemm_isa_name: "avx512", "avx2" or "portable"; st_gemm_blocking: its register
 * tile (mr x nr) and K block. */
enum { ST_GEMM_PORTABLE = 0, ST_GEMM_AVX2 = 1, ST_GEMM_AVX512 = 2 };
int st_gemm_force_isa(int isa);
void st_gemm_force_small(int small);
const char *st_gemm_isa_name(void);
void st_gemm_blocking(int *mr, int *nr, int *kc);

/* ---------------------------------------------------------------- convolution
 * One geometry for conv1d and conv2d: a 1D convolution is a 2D one with H = 1,
 * kernel height 1, stride 1, dilation 1 and no vertical padding. */
typedef struct {
    int cin, cout, groups;
    int ih, iw, oh, ow;
    int kh, kw, sh, sw, dh, dw;
    int pt, pb, pl, pr; /* zero padding: top, bottom, left, right */
} st_conv_geom;

enum { ST_PAD_EXPLICIT = 0, ST_PAD_VALID = 1, ST_PAD_SAME = 2 };

/* Fills g from PyTorch's arguments: for 1D pass ih = 1, k[0] = s[0] = d[0] = 1,
 * pad[0] = 0. pad_mode 'same' follows PyTorch: total d*(k-1), left total/2, right the
 * rest, stride must be 1. Checks divisibility by groups and a positive output size. */
st_status st_conv_geom_init(st_conv_geom *g, int cin, int cout, int groups,
                            const int k[2], const int s[2], const int d[2],
                            int pad_mode, const int pad[2], int ih, int iw);

/* out (N, cout, oh, ow) = conv(in (N, cin, ih, iw), w (cout, cin/groups, kh, kw)) + b.
 * b may be NULL. work must hold st_conv_work_size(g, n) floats (may be NULL if 0). */
size_t st_conv_work_size(const st_conv_geom *g, int n);
void st_conv_forward(float *out, const float *in, const float *w, const float *b, int n,
                     const st_conv_geom *g, float *work);
/* Accumulates: din += dL/din (skipped if din NULL), dw += dL/dw, db += dL/db (if db). */
void st_conv_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                      const float *w, int n, const st_conv_geom *g, float *work);
/* Prepared weights for inference (conv.c): what the forward path of (g, n) derives from
 * the weights alone (Winograd's transformed kernels, or the GEMM's packed panels), made
 * once by st_conv_prepare into st_conv_prep_size floats (0: nothing to prepare; 64-byte
 * aligned) and passed to st_conv_forward_prep until the weights change. The results are
 * those of st_conv_forward's path for (g, n) in that order (see conv.c); a prepared copy
 * made for another path is ignored. epi (NULL: none) is applied to the output (after
 * the bias b, which st_net_run folds into it instead): on the GEMM path to each register
 * tile or chunk of samples as it is made, else in a pass at the end; the same values
 * either way. st_conv_force_gemm_order (tests): 0 = the GEMM path with prepared weights
 * always in the usual order, 1 = always transposed, -1 = by size. */
size_t st_conv_prep_size(const st_conv_geom *g, int n);
void st_conv_prepare(float *prep, const float *w, const st_conv_geom *g, int n);
void st_conv_forward_prep(float *out, const float *in, const float *w, const float *b, int n,
                          const st_conv_geom *g, float *work, const float *prep, const st_epilogue *epi);
void st_conv_force_gemm_order(int order);
/* Tests: implicit im2col in the GEMM path, 0 = never, 1 = always, -1 = by size (conv.c). */
void st_conv_force_implicit(int mode);
/* The plain seven-loop definitions, kept for tests. */
void st_conv_forward_ref(float *out, const float *in, const float *w, const float *b, int n,
                         const st_conv_geom *g);
void st_conv_backward_ref(float *din, float *dw, float *db, const float *dout, const float *in,
                          const float *w, int n, const st_conv_geom *g);

/* Double-precision versions of the plain definitions, for finite-difference checks. */
void st_conv_forward_ref_f64(double *out, const double *in, const double *w, const double *b, int n,
                             const st_conv_geom *g);
void st_conv_backward_ref_f64(double *din, double *dw, double *db, const double *dout,
                              const double *in, const double *w, int n, const st_conv_geom *g);

/* ---------------------------------------------------------------- dense and pointwise */
/* y (n, out) = x (n, in) W^T (W is (out, in)) + b */
void st_linear_forward(float *y, const float *x, const float *w, const float *b, int n, int in, int out);
void st_linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                        const float *w, int n, int in, int out);

void st_linear_forward_f64(double *y, const double *x, const double *w, const double *b, int n, int in, int out);
void st_linear_backward_f64(double *dx, double *dw, double *db, const double *dy, const double *x,
                            const double *w, int n, int in, int out);

typedef enum { ST_ACT_RELU, ST_ACT_LEAKY_RELU, ST_ACT_SIGMOID, ST_ACT_TANH } st_act;
void st_act_forward(st_act a, float slope, float *y, const float *x, size_t n);
/* dx += dy * f'(x) (given x and y = f(x)) */
void st_act_backward(st_act a, float slope, float *dx, const float *dy, const float *x,
                     const float *y, size_t n);

void st_act_forward_f64(st_act a, double slope, double *y, const double *x, size_t n);
void st_act_backward_f64(st_act a, double slope, double *dx, const double *dy, const double *x,
                         const double *y, size_t n);

/* Softmax cross-entropy, mean over the batch: logits (n, c), labels in 0..c-1.
 * Writes dlogits = (softmax - onehot)/n if dlogits != NULL. Returns the loss. */
double st_cross_entropy(const float *logits, const int32_t *labels, int n, int c, float *dlogits);
double st_cross_entropy_f64(const double *logits, const int32_t *labels, int n, int c, double *dlogits);
/* Per position of (n, c, s) logits with (n, s) labels; labels equal to `ignore` count for
 * nothing (zero gradient). Returns the sum of the counted losses, gradients times scale. */
double st_cross_entropy_nd_sum(const float *logits, const int32_t *labels, int n, int c, int s, float *dlogits,
                               double scale, int32_t ignore);
double st_cross_entropy_nd_sum_f64(const double *logits, const int32_t *labels, int n, int c, int s,
                                   double *dlogits, double scale, int32_t ignore);
/* The same with label smoothing eps (PyTorch's label_smoothing): targets (1 - eps) onehot + eps / c. */
double st_cross_entropy_ls_sum(const float *logits, const int32_t *labels, int n, int c, int s, float *dlogits,
                               double scale, int32_t ignore, double eps);
double st_cross_entropy_ls_sum_f64(const double *logits, const int32_t *labels, int n, int c, int s,
                                   double *dlogits, double scale, int32_t ignore, double eps);
/* The same over a slice of a batch: returns the sum of the losses, gradients times scale. */
double st_cross_entropy_sum(const float *logits, const int32_t *labels, int n, int c, float *dlogits, double scale);
double st_cross_entropy_sum_f64(const double *logits, const int32_t *labels, int n, int c, double *dlogits, double scale);
/* Mean squared error over all `size` elements; dy = 2 (y - t) / size. */
double st_mse(const float *y, const float *t, size_t size, float *dy);
double st_mse_f64(const double *y, const double *t, size_t size, double *dy);
double st_mse_sum(const float *y, const float *t, size_t size, float *dy, double scale);
double st_mse_sum_f64(const double *y, const double *t, size_t size, double *dy, double scale);

/* Binary cross-entropy on logits over `size` elements: returns the sum, dx = (sigmoid - t) * scale. */
double st_bce_logits_sum(const float *x, const float *t, size_t size, float *dx, double scale);
double st_bce_logits_sum_f64(const double *x, const double *t, size_t size, double *dx, double scale);

/* Softmax over the channels of (n, c, s) and its backward (dx += ...). */
void st_softmax_forward(float *y, const float *x, int n, int c, int s);
void st_softmax_backward(float *dx, const float *dy, const float *y, int n, int c, int s);
void st_softmax_forward_f64(double *y, const double *x, int n, int c, int s);
void st_softmax_backward_f64(double *dx, const double *dy, const double *y, int n, int c, int s);

/* For tests: 1 = every loader made after this builds its batches in st_loader_next, 0 =
 * every one uses its prefetch thread, -1 = by the batch's size (the default). Process-wide,
 * not thread-safe. */
void st_loader_force_inline(int mode);

/* What st_net_set_weights checks (names, shapes, dtypes), without changing anything. */
st_status st_net_check_weights(st_net *net, const st_tensors *ts);
/* Tests and benchmarks (process-wide, not thread-safe): st_net_run with prepared weights
 * (1, the default) or without (0: each kernel works from the weights every time). */
void st_net_use_prepared(int on);
/* The optimiser's view of a network: its flat value and gradient arenas. */
st_status st_net_arenas(st_net *net, float **values, float **grads, size_t *n);

#endif
