/* resample.c - upsampling (nearest, linear/bilinear), max unpooling and local response
 * normalisation, forward and backward, following PyTorch 1.13's CPU kernels
 * (models.md B4, B5, B6).
 *
 * Upsampling, along one axis with `scale` from st_upsample_scale (float, as PyTorch):
 *   nearest:  src = min(floor(dst * scale), in - 1)  (dst * scale in float), as PyTorch
 *             1.13's forward (with more than one channel; with C = 1 its 2D forward takes the
 *             shortcuts below). Its backward takes shortcuts, src = dst when out == in and
 *             dst/2 when out == 2 in, which disagree with its forward when a scale factor other
 *             than out/in was given (1.1 on 3: forward copies 0,0,1, backward routes 0,1,2).
 *             Our backward is the exact adjoint of our forward (the true gradient), so it
 *             differs from PyTorch's backward there only.
 *   linear:   if out == in: i0 = i1 = dst, l0 = 1, l1 = 0 (a copy, whatever the scale);
 *             else real = align_corners ? scale * dst : max(scale * (dst + 0.5) - 0.5, 0),
 *             i0 = (int)real, i1 = i0 + (i0 < in - 1), l1 = clamp(real - i0, 0, 1),
 *             l0 = 1 - l1.
 *   bilinear out = l0h (l0w x[i0h][i0w] + l1w x[i0h][i1w]) + l1h (l0w x[i1h][i0w] + l1w x[i1h][i1w]).
 *   Backward: each source receives dout times its weight (nearest: weight 1).
 *
 * Max unpooling: out = 0 except out[idx[i]] = in[i]; last write wins; backward gathers.
 *
 * LRN: window of channel c = [c - size/2, c + (size-1)/2] (one channel longer in front
 *   for even sizes), channels outside [0, C) count as 0, divisor always `size`:
 *   s_c = k + alpha/size * sum x^2, y_c = x_c s_c^-beta,
 *   dx_j = dy_j s_j^-beta - (2 alpha beta/size) x_j sum_{c: j in window(c)} dy_c x_c s_c^(-beta-1),
 *   where j in window(c) <=> c in [j - (size-1)/2, j + size/2].
 *
 * Planes (upsampling, unpooling) and batch items (LRN) are split across OpenMP threads
 * when the work is large; each output element is computed by one thread in a fixed order,
 * so results do not depend on the thread count. The double versions are the same code
 * (one macro instantiated twice).
 */
#include "resample.h"

#include <math.h>
#include <string.h>

#define RS_PAR_MIN 100000LL

/* ---------------------------------------------------------------- scales and sizes */
float st_upsample_scale(int in, int out, double scale_factor, int align_corners) {
    if (align_corners) return out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    if (scale_factor > 0) return (float)(1.0 / scale_factor);
    return (float)in / (float)out;
}

double st_upsample_scale_f64(int in, int out, double scale_factor, int align_corners) {
    if (align_corners) return out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0;
    if (scale_factor > 0) return 1.0 / scale_factor;
    return (double)in / (double)out;
}

st_status st_upsample_out_size(int in, double scale_factor, int *out) {
    if (!(scale_factor > 0) || !isfinite(scale_factor))
        return st_fail(ST_ERR_ARG, "upsample: scale factor must be positive (got %g)", scale_factor);
    double o = floor((double)in * scale_factor);
    if (o < 1 || o > 2147483647.0)
        return st_fail(ST_ERR_SHAPE, "upsample: input size %d times scale factor %g gives output size %.0f",
                       in, scale_factor, o);
    *out = (int)o;
    return ST_OK;
}

st_status st_max_unpool_out_size(int in, int k, int s, int p, int requested, int *out) {
    if (in <= 0 || k <= 0 || s <= 0 || p < 0)
        return st_fail(ST_ERR_ARG, "max_unpool: bad geometry (input %d, kernel %d, stride %d, padding %d)",
                       in, k, s, p);
    long long def = (long long)(in - 1) * s - 2LL * p + k;
    if (requested == 0) {
        if (def < 1 || def > 2147483647LL)
            return st_fail(ST_ERR_SHAPE, "max_unpool: default output size %lld is invalid", def);
        *out = (int)def;
        return ST_OK;
    }
    if (!(def - s < requested && requested < def + s) || requested < 1)
        return st_fail(ST_ERR_SHAPE, "max_unpool: invalid output_size %d (must be between %lld and %lld)",
                       requested, def - s, def + s);
    *out = requested;
    return ST_OK;
}

/* ---------------------------------------------------------------- kernels (float, double) */
#define RS_DEFINE(T, SFX, FLOOR, POW)                                                               \
    static inline int nearest_src##SFX(T scale, int dst, int in, int out) {                         \
        (void)out;                                                                                  \
        int i = (int)FLOOR((T)dst * scale);                                                         \
        return i < in - 1 ? i : in - 1;                                                             \
    }                                                                                               \
    static inline void linear_src##SFX(T scale, int dst, int in, int out, int ac, int *i0, int *i1, \
                                       T *l0, T *l1) {                                              \
        if (out == in) { *i0 = *i1 = dst; *l0 = (T)1; *l1 = (T)0; return; }                         \
        T real = ac ? scale * (T)dst : scale * ((T)dst + (T)0.5) - (T)0.5;                          \
        if (real < 0) real = 0;                                                                     \
        int a = (int)real;                                                                          \
        if (a > in - 1) a = in - 1;                                                                 \
        T lam = real - (T)a;                                                                        \
        if (lam < 0) lam = 0;                                                                       \
        if (lam > 1) lam = 1;                                                                       \
        *i0 = a; *i1 = a + (a < in - 1 ? 1 : 0); *l1 = lam; *l0 = (T)1 - lam;                       \
    }                                                                                               \
    void st_upsample_nearest_forward##SFX(T *out, const T *in, int planes, int ih, int iw, int oh,  \
                                          int ow, T scale_h, T scale_w) {                           \
        _Pragma("omp parallel for schedule(static) if((long long)planes * oh * ow > RS_PAR_MIN)")  \
        for (int pl = 0; pl < planes; pl++) {                                                       \
            const T *ip = in + (size_t)pl * ih * iw;                                                \
            T *op = out + (size_t)pl * oh * ow;                                                     \
            for (int y = 0; y < oh; y++) {                                                          \
                const T *row = ip + (size_t)nearest_src##SFX(scale_h, y, ih, oh) * iw;              \
                for (int x = 0; x < ow; x++)                                                        \
                    op[(size_t)y * ow + x] = row[nearest_src##SFX(scale_w, x, iw, ow)];             \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    void st_upsample_nearest_backward##SFX(T *din, const T *dout, int planes, int ih, int iw, int oh, \
                                           int ow, T scale_h, T scale_w) {                          \
        _Pragma("omp parallel for schedule(static) if((long long)planes * oh * ow > RS_PAR_MIN)")  \
        for (int pl = 0; pl < planes; pl++) {                                                       \
            T *ip = din + (size_t)pl * ih * iw;                                                     \
            const T *op = dout + (size_t)pl * oh * ow;                                              \
            for (int y = 0; y < oh; y++) {                                                          \
                T *row = ip + (size_t)nearest_src##SFX(scale_h, y, ih, oh) * iw;                    \
                for (int x = 0; x < ow; x++)                                                        \
                    row[nearest_src##SFX(scale_w, x, iw, ow)] += op[(size_t)y * ow + x];            \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    void st_upsample_bilinear_forward##SFX(T *out, const T *in, int planes, int ih, int iw, int oh, \
                                           int ow, T scale_h, T scale_w, int ac) {                  \
        _Pragma("omp parallel for schedule(static) if((long long)planes * oh * ow > RS_PAR_MIN)")  \
        for (int pl = 0; pl < planes; pl++) {                                                       \
            const T *ip = in + (size_t)pl * ih * iw;                                                \
            T *op = out + (size_t)pl * oh * ow;                                                     \
            for (int y = 0; y < oh; y++) {                                                          \
                int h0, h1; T a0, a1;                                                               \
                linear_src##SFX(scale_h, y, ih, oh, ac, &h0, &h1, &a0, &a1);                        \
                const T *r0 = ip + (size_t)h0 * iw, *r1 = ip + (size_t)h1 * iw;                     \
                for (int x = 0; x < ow; x++) {                                                      \
                    int w0, w1; T b0, b1;                                                           \
                    linear_src##SFX(scale_w, x, iw, ow, ac, &w0, &w1, &b0, &b1);                    \
                    op[(size_t)y * ow + x] = a0 * (b0 * r0[w0] + b1 * r0[w1]) +                     \
                                             a1 * (b0 * r1[w0] + b1 * r1[w1]);                      \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    void st_upsample_bilinear_backward##SFX(T *din, const T *dout, int planes, int ih, int iw,      \
                                            int oh, int ow, T scale_h, T scale_w, int ac) {         \
        _Pragma("omp parallel for schedule(static) if((long long)planes * oh * ow > RS_PAR_MIN)")  \
        for (int pl = 0; pl < planes; pl++) {                                                       \
            T *ip = din + (size_t)pl * ih * iw;                                                     \
            const T *op = dout + (size_t)pl * oh * ow;                                              \
            for (int y = 0; y < oh; y++) {                                                          \
                int h0, h1; T a0, a1;                                                               \
                linear_src##SFX(scale_h, y, ih, oh, ac, &h0, &h1, &a0, &a1);                        \
                T *r0 = ip + (size_t)h0 * iw, *r1 = ip + (size_t)h1 * iw;                           \
                for (int x = 0; x < ow; x++) {                                                      \
                    int w0, w1; T b0, b1;                                                           \
                    linear_src##SFX(scale_w, x, iw, ow, ac, &w0, &w1, &b0, &b1);                    \
                    T g = op[(size_t)y * ow + x];                                                   \
                    r0[w0] += a0 * b0 * g;                                                          \
                    r0[w1] += a0 * b1 * g;                                                          \
                    r1[w0] += a1 * b0 * g;                                                          \
                    r1[w1] += a1 * b1 * g;                                                          \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    /* s_c at one position, straight from the definition (backward without a saved scale) */     \
    static T lrn_scale_at##SFX(const T *xb, int c, int s, int ch, int si, int size, T alpha, T k) { \
        int lo = ch - size / 2, hi = ch + (size - 1) / 2;                                           \
        if (lo < 0) lo = 0;                                                                         \
        if (hi > c - 1) hi = c - 1;                                                                 \
        T acc = 0;                                                                                  \
        for (int q = lo; q <= hi; q++) { T v = xb[(size_t)q * s + si]; acc += v * v; }              \
        return k + alpha / (T)size * acc;                                                           \
    }                                                                                               \
    void st_lrn_forward##SFX(T *y, T *scale, const T *x, int n, int c, int s, int size, T alpha,    \
                             T beta, T k) {                                                         \
        _Pragma("omp parallel for schedule(static) if((long long)n * c * s * size > RS_PAR_MIN)")  \
        for (int b = 0; b < n; b++) {                                                               \
            const T *xb = x + (size_t)b * c * s;                                                    \
            T *yb = y + (size_t)b * c * s;                                                          \
            T *sb = scale ? scale + (size_t)b * c * s : NULL;                                       \
            for (int ch = 0; ch < c; ch++) {                                                        \
                T *yr = yb + (size_t)ch * s;                                                        \
                const T *xr = xb + (size_t)ch * s;                                                  \
                for (int i = 0; i < s; i++) yr[i] = 0;                                              \
                int lo = ch - size / 2, hi = ch + (size - 1) / 2;                                   \
                if (lo < 0) lo = 0;                                                                 \
                if (hi > c - 1) hi = c - 1;                                                         \
                for (int q = lo; q <= hi; q++) {                                                    \
                    const T *xq = xb + (size_t)q * s;                                               \
                    for (int i = 0; i < s; i++) yr[i] += xq[i] * xq[i];                             \
                }                                                                                   \
                for (int i = 0; i < s; i++) {                                                       \
                    T sc = k + alpha / (T)size * yr[i];                                             \
                    if (sb) sb[(size_t)ch * s + i] = sc;                                            \
                    yr[i] = xr[i] * POW(sc, -beta);                                                 \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    void st_lrn_backward##SFX(T *dx, const T *dy, const T *x, const T *scale, int n, int c, int s,  \
                              int size, T alpha, T beta, T k) {                                     \
        T coef = (T)2 * alpha * beta / (T)size;                                                     \
        _Pragma("omp parallel for schedule(static) if((long long)n * c * s * size > RS_PAR_MIN)")  \
        for (int b = 0; b < n; b++) {                                                               \
            const T *xb = x + (size_t)b * c * s, *gb = dy + (size_t)b * c * s;                      \
            const T *sb = scale ? scale + (size_t)b * c * s : NULL;                                 \
            T *db = dx + (size_t)b * c * s;                                                         \
            for (int j = 0; j < c; j++) {                                                           \
                int lo = j - (size - 1) / 2, hi = j + size / 2;                                     \
                if (lo < 0) lo = 0;                                                                 \
                if (hi > c - 1) hi = c - 1;                                                         \
                for (int i = 0; i < s; i++) {                                                       \
                    size_t o = (size_t)j * s + i;                                                   \
                    T sj = sb ? sb[o] : lrn_scale_at##SFX(xb, c, s, j, i, size, alpha, k);          \
                    T acc = 0;                                                                      \
                    for (int q = lo; q <= hi; q++) {                                                \
                        size_t oq = (size_t)q * s + i;                                              \
                        T sq = sb ? sb[oq] : lrn_scale_at##SFX(xb, c, s, q, i, size, alpha, k);     \
                        acc += gb[oq] * xb[oq] * POW(sq, -beta - (T)1);                             \
                    }                                                                               \
                    db[o] += gb[o] * POW(sj, -beta) - coef * xb[o] * acc;                           \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }

RS_DEFINE(float, , floorf, powf)
RS_DEFINE(double, _f64, floor, pow)

void st_upsample_linear_forward(float *out, const float *in, int planes, int iw, int ow, float scale,
                                int align_corners) {
    st_upsample_bilinear_forward(out, in, planes, 1, iw, 1, ow, 0.0f, scale, align_corners);
}
void st_upsample_linear_backward(float *din, const float *dout, int planes, int iw, int ow, float scale,
                                 int align_corners) {
    st_upsample_bilinear_backward(din, dout, planes, 1, iw, 1, ow, 0.0f, scale, align_corners);
}

/* ---------------------------------------------------------------- max unpooling */
st_status st_max_unpool_forward(float *out, const float *in, const int32_t *indices, int planes,
                                int ih, int iw, int oh, int ow) {
    size_t isz = (size_t)ih * iw, osz = (size_t)oh * ow;
    for (size_t i = 0; i < (size_t)planes * isz; i++) {
        int32_t id = indices[i];
        if (id < 0 || (size_t)id >= osz)
            return st_fail(ST_ERR_ARG, "max_unpool: Found an invalid max index: %d (output volumes are of size %dx%d)",
                           (int)id, oh, ow);
    }
    memset(out, 0, (size_t)planes * osz * sizeof(float));
#pragma omp parallel for schedule(static) if ((long long)planes * isz > RS_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        const float *ip = in + (size_t)pl * isz;
        const int32_t *xp = indices + (size_t)pl * isz;
        float *op = out + (size_t)pl * osz;
        for (size_t i = 0; i < isz; i++) op[xp[i]] = ip[i]; /* in order: the last write wins */
    }
    return ST_OK;
}

void st_max_unpool_backward(float *din, const float *dout, const int32_t *indices, int planes,
                            int ih, int iw, int oh, int ow) {
    size_t isz = (size_t)ih * iw, osz = (size_t)oh * ow;
#pragma omp parallel for schedule(static) if ((long long)planes * isz > RS_PAR_MIN)
    for (int pl = 0; pl < planes; pl++) {
        float *ip = din + (size_t)pl * isz;
        const int32_t *xp = indices + (size_t)pl * isz;
        const float *op = dout + (size_t)pl * osz;
        for (size_t i = 0; i < isz; i++)
            if (xp[i] >= 0 && (size_t)xp[i] < osz) ip[i] += op[xp[i]];
    }
}
