/* pool.c - max, average and adaptive-average pooling, 1D and 2D, forward and backward,
 * following PyTorch (models.md B3) number for number.
 *
 * Every (n, c) plane is pooled on its own; a 1D pool is the 2D one with H = 1. Along one
 * axis (the other is the same), with kernel k, stride s, padding p, dilation d:
 *
 *   output size  o = floor((in + 2p - d(k-1) - 1 + (ceil_mode ? s-1 : 0)) / s) + 1,
 *                and in ceil mode o -= 1 if (o-1)s >= in + p (the last window must start
 *                inside the input or the left padding).
 *   window of output i: positions i*s - p + j*d, j = 0..k-1.
 *
 * Max pooling: padding acts as -infinity. out = the largest value of the window's real
 *   cells, scanned row by row; the value replaces the current maximum only if strictly
 *   greater, or if it is a NaN (so ties keep the first maximum and a NaN propagates; with
 *   several NaNs the last one is kept, as in PyTorch's CPU kernel). index = y*iw + x of
 *   that cell in the unpadded plane (a window of -inf values gives its first real cell).
 *   A window without real cells (possible only with dilation, e.g. input 1, kernel 2,
 *   dilation 2, padding 1) gives -inf and index -1; PyTorch returns a position outside
 *   the window there, which its backward would then use. Backward skips index -1.
 *   Backward: din[index] += dout (windows that pick the same cell add up).
 *
 * Average pooling (no dilation): start = i*s - p, end = min(start + k, in + p),
 *   pool_size = (hend - hstart)(wend - wstart) counted on the padded extent, then start and
 *   end are clipped to [0, in). out = sum of the clipped window / divisor with
 *     divisor = divisor_override                       if given (non-zero),
 *             = pool_size                              if count_include_pad,
 *             = (clipped height) * (clipped width)      otherwise.
 *   (So padding zeros count when count_include_pad, but a ceil-mode window running past
 *   the padded border does not.) An empty clipped window gives 0.
 *   Backward: every cell of the clipped window gets dout / divisor.
 *
 * Adaptive average pooling: start = floor(i*in/out), end = ceil((i+1)*in/out),
 *   out = mean over [start, end) in both axes. Backward spreads dout / count likewise.
 *   Both average poolings run the same loops (mean_fwd, mean_bwd); only the window differs.
 *
 * Speed: max pooling over non-overlapping k x 2 windows without padding (the usual 2 x 2)
 * takes a vectorised path (end of the file) with the same results bit for bit; elsewhere
 * the inner loops walk one input row contiguously; planes are split across OpenMP
 * threads when planes*oh*ow > 100000. Each plane is computed by one thread in a fixed
 * order, so results do not depend on the thread count. The double versions are the same
 * code (one macro instantiated twice).
 */
#include "pool.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#include <math.h>
#include <string.h>

#define POOL_PAR_MIN 100000LL

/* ---------------------------------------------------------------- geometry */
static int floor_div(int a, int b) { /* b > 0 */
    int q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int pool_out_size(int in, int k, int s, int p, int d, int ceil_mode) {
    int o = floor_div(in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0), s) + 1;
    if (ceil_mode && (long long)(o - 1) * s >= (long long)in + p) o--;
    return o;
}

st_status st_pool_geom_init(st_pool_geom *g, int ih, int iw, const int k[2], const int s[2],
                            const int p[2], const int d[2], int ceil_mode,
                            int count_include_pad, int divisor_override) {
    memset(g, 0, sizeof *g);
    int kk[2], ss[2], pp[2], dd[2];
    for (int a = 0; a < 2; a++) {
        kk[a] = k[a];
        ss[a] = (s && s[a]) ? s[a] : k[a];
        pp[a] = p ? p[a] : 0;
        dd[a] = d ? d[a] : 1;
        if (kk[a] <= 0) return st_fail(ST_ERR_ARG, "pooling: kernel size should be greater than zero (got %d)", kk[a]);
        if (ss[a] <= 0) return st_fail(ST_ERR_ARG, "pooling: stride should be greater than zero (got %d)", ss[a]);
        if (dd[a] <= 0) return st_fail(ST_ERR_ARG, "pooling: dilation should be greater than zero (got %d)", dd[a]);
        if (pp[a] < 0) return st_fail(ST_ERR_ARG, "pooling: pad must be non-negative (got %d)", pp[a]);
        int eff = (kk[a] - 1) * dd[a] + 1;
        if (pp[a] > eff / 2)
            return st_fail(ST_ERR_ARG, "pooling: pad should be at most half of effective kernel size, "
                           "but got pad=%d, kernel_size=%d and dilation=%d", pp[a], kk[a], dd[a]);
    }
    if (divisor_override < 0) return st_fail(ST_ERR_ARG, "pooling: divisor must be positive (got %d)", divisor_override);
    if (ih <= 0 || iw <= 0) return st_fail(ST_ERR_SHAPE, "pooling: input size must be positive (got %dx%d)", ih, iw);
    g->ih = ih; g->iw = iw;
    g->kh = kk[0]; g->kw = kk[1]; g->sh = ss[0]; g->sw = ss[1];
    g->ph = pp[0]; g->pw = pp[1]; g->dh = dd[0]; g->dw = dd[1];
    g->ceil_mode = ceil_mode ? 1 : 0;
    g->count_include_pad = count_include_pad ? 1 : 0;
    g->divisor_override = divisor_override;
    g->oh = pool_out_size(ih, g->kh, g->sh, g->ph, g->dh, g->ceil_mode);
    g->ow = pool_out_size(iw, g->kw, g->sw, g->pw, g->dw, g->ceil_mode);
    if (g->oh < 1 || g->ow < 1)
        return st_fail(ST_ERR_SHAPE, "pooling: given input size %dx%d, calculated output size %dx%d: output size is too small",
                       ih, iw, g->oh, g->ow);
    return ST_OK;
}

st_status st_pool_geom_adaptive(st_pool_geom *g, int ih, int iw, int oh, int ow) {
    memset(g, 0, sizeof *g);
    if (ih <= 0 || iw <= 0) return st_fail(ST_ERR_SHAPE, "adaptive pooling: input size must be positive (got %dx%d)", ih, iw);
    if (oh <= 0 || ow <= 0) return st_fail(ST_ERR_ARG, "adaptive pooling: output size must be positive (got %dx%d)", oh, ow);
    g->ih = ih; g->iw = iw; g->oh = oh; g->ow = ow;
    g->kh = g->kw = g->sh = g->sw = g->dh = g->dw = 1;
    return ST_OK;
}

/* ---------------------------------------------------------------- window helpers */
/* Max pooling along one axis: first real position, end (exclusive) of the window. */
static inline void max_range(int o, int s, int p, int k, int d, int in, int *start, int *end) {
    int a = o * s - p;
    int b = a + (k - 1) * d + 1;
    if (b > in) b = in;
    while (a < 0) a += d;
    *start = a; *end = b;
}

/* Average pooling along one axis: clipped [start, end) and the padded extent. */
static inline void avg_range(int o, int s, int p, int k, int in, int *start, int *end, int *ext) {
    int a = o * s - p;
    int b = a + k;
    if (b > in + p) b = in + p;
    *ext = b - a;
    if (a < 0) a = 0;
    if (b > in) b = in;
    *start = a; *end = b;
}

static inline int avg_divisor(const st_pool_geom *g, int y0, int y1, int x0, int x1, int exth, int extw) {
    if (g->divisor_override) return g->divisor_override;
    if (g->count_include_pad) return exth * extw;
    return (y1 - y0) * (x1 - x0);
}

/* Adaptive pooling: [floor(i*in/out), ceil((i+1)*in/out)). */
static inline void adaptive_range(int i, int in, int out, int *start, int *end) {
    *start = (int)(((long long)i * in) / out);
    *end = (int)(((long long)(i + 1) * in + out - 1) / out);
}

/* The window of average (adaptive = 0) or adaptive-average (1) pooling along one axis. An
 * adaptive geometry has count_include_pad = divisor_override = 0, so avg_divisor gives
 * it the window's cell count. */
static inline void mean_range(int adaptive, int o, int s, int p, int k, int in, int out, int *start, int *end,
                              int *ext) {
    if (adaptive) {
        adaptive_range(o, in, out, start, end);
        *ext = *end - *start;
    } else {
        avg_range(o, s, p, k, in, start, end, ext);
    }
}

/* ---------------------------------------------------------------- kernels */
#define POOL_KERNELS(SFX, MAXF, T)                                                              \
void MAXF(T *out, int32_t *indices, const T *in, int planes, const st_pool_geom *g) {          \
    const int ih = g->ih, iw = g->iw, oh = g->oh, ow = g->ow;                                  \
    const size_t isz = (size_t)ih * iw, osz = (size_t)oh * ow;                                 \
    _Pragma("omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN)") \
    for (int c = 0; c < planes; c++) {                                                         \
        const T *ip = in + c * isz;                                                            \
        T *op = out + c * osz;                                                                 \
        int32_t *xp = indices ? indices + c * osz : NULL;                                      \
        for (int oy = 0; oy < oh; oy++) {                                                      \
            int y0, y1;                                                                        \
            max_range(oy, g->sh, g->ph, g->kh, g->dh, ih, &y0, &y1);                           \
            for (int ox = 0; ox < ow; ox++) {                                                  \
                int x0, x1;                                                                    \
                max_range(ox, g->sw, g->pw, g->kw, g->dw, iw, &x0, &x1);                       \
                T best = -(T)INFINITY;                                                         \
                int bi = (y0 < y1 && x0 < x1) ? y0 * iw + x0 : -1;                             \
                for (int y = y0; y < y1; y += g->dh) {                                         \
                    const T *row = ip + (size_t)y * iw;                                        \
                    for (int x = x0; x < x1; x += g->dw) {                                     \
                        T v = row[x];                                                          \
                        if (v > best || isnan(v)) { best = v; bi = y * iw + x; }              \
                    }                                                                          \
                }                                                                              \
                op[oy * ow + ox] = best;                                                       \
                if (xp) xp[oy * ow + ox] = bi;                                                 \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
void st_maxpool_backward##SFX(T *din, const T *dout, const int32_t *indices, int planes,      \
                              const st_pool_geom *g) {                                         \
    const size_t isz = (size_t)g->ih * g->iw, osz = (size_t)g->oh * g->ow;                     \
    _Pragma("omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN)") \
    for (int c = 0; c < planes; c++) {                                                         \
        T *dp = din + c * isz;                                                                 \
        const T *gp = dout + c * osz;                                                          \
        const int32_t *xp = indices + c * osz;                                                 \
        for (size_t o = 0; o < osz; o++) {                                                     \
            int32_t i = xp[o];                                                                 \
            if (i >= 0 && (size_t)i < isz) dp[i] += gp[o];                                     \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
static void mean_fwd##SFX(T *out, const T *in, int planes, const st_pool_geom *g, int adaptive) { \
    const int ih = g->ih, iw = g->iw, oh = g->oh, ow = g->ow;                                  \
    const size_t isz = (size_t)ih * iw, osz = (size_t)oh * ow;                                 \
    _Pragma("omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN)") \
    for (int c = 0; c < planes; c++) {                                                         \
        const T *ip = in + c * isz;                                                            \
        T *op = out + c * osz;                                                                 \
        for (int oy = 0; oy < oh; oy++) {                                                      \
            int y0, y1, eh;                                                                    \
            mean_range(adaptive, oy, g->sh, g->ph, g->kh, ih, oh, &y0, &y1, &eh);              \
            for (int ox = 0; ox < ow; ox++) {                                                  \
                int x0, x1, ew;                                                                \
                mean_range(adaptive, ox, g->sw, g->pw, g->kw, iw, ow, &x0, &x1, &ew);          \
                if (y0 >= y1 || x0 >= x1) { op[oy * ow + ox] = 0; continue; }                  \
                T sum = 0;                                                                     \
                for (int y = y0; y < y1; y++) {                                                \
                    const T *row = ip + (size_t)y * iw;                                        \
                    for (int x = x0; x < x1; x++) sum += row[x];                               \
                }                                                                              \
                op[oy * ow + ox] = sum / (T)avg_divisor(g, y0, y1, x0, x1, eh, ew);            \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
static void mean_bwd##SFX(T *din, const T *dout, int planes, const st_pool_geom *g, int adaptive) { \
    const int ih = g->ih, iw = g->iw, oh = g->oh, ow = g->ow;                                  \
    const size_t isz = (size_t)ih * iw, osz = (size_t)oh * ow;                                 \
    _Pragma("omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN)") \
    for (int c = 0; c < planes; c++) {                                                         \
        T *dp = din + c * isz;                                                                 \
        const T *gp = dout + c * osz;                                                          \
        for (int oy = 0; oy < oh; oy++) {                                                      \
            int y0, y1, eh;                                                                    \
            mean_range(adaptive, oy, g->sh, g->ph, g->kh, ih, oh, &y0, &y1, &eh);              \
            for (int ox = 0; ox < ow; ox++) {                                                  \
                int x0, x1, ew;                                                                \
                mean_range(adaptive, ox, g->sw, g->pw, g->kw, iw, ow, &x0, &x1, &ew);          \
                if (y0 >= y1 || x0 >= x1) continue;                                            \
                T v = gp[oy * ow + ox] / (T)avg_divisor(g, y0, y1, x0, x1, eh, ew);            \
                for (int y = y0; y < y1; y++) {                                                \
                    T *row = dp + (size_t)y * iw;                                              \
                    for (int x = x0; x < x1; x++) row[x] += v;                                 \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
void st_avgpool_forward##SFX(T *out, const T *in, int planes, const st_pool_geom *g) {         \
    mean_fwd##SFX(out, in, planes, g, 0);                                                      \
}                                                                                              \
void st_avgpool_backward##SFX(T *din, const T *dout, int planes, const st_pool_geom *g) {      \
    mean_bwd##SFX(din, dout, planes, g, 0);                                                    \
}                                                                                              \
void st_adaptive_avgpool_forward##SFX(T *out, const T *in, int planes, const st_pool_geom *g) { \
    mean_fwd##SFX(out, in, planes, g, 1);                                                      \
}                                                                                              \
void st_adaptive_avgpool_backward##SFX(T *din, const T *dout, int planes, const st_pool_geom *g) { \
    mean_bwd##SFX(din, dout, planes, g, 1);                                                    \
}

POOL_KERNELS(, st_maxpool_forward_ref, float)
POOL_KERNELS(_f64, st_maxpool_forward_f64, double)

/* ---------------------------------------------------------------- fast max pooling
 * The common case: windows of kh x 2 with stride (kh, 2), no padding, no dilation, all
 * inside the input (LeNet's and U-Net's 2 x 2 pooling, 1D pooling by 2). The windows do
 * not overlap, so 16 outputs of a row come from 32 consecutive values of each of the
 * window's input rows, split into even and odd columns (two permutes). The candidates
 * are scanned in the general loop's order (row by row, left to right) with its rule
 * (replace if greater, or if a NaN), so values and indices are the same bit for bit. */
#include "simd.h" /* even_lanes, and the AVX-512 intrinsics */

static int maxpool_fast_ok(const st_pool_geom *g) {
    return g->kw == 2 && g->sw == 2 && g->kh == g->sh && g->ph == 0 && g->pw == 0 && g->dh == 1 &&
           g->dw == 1 && (long long)g->oh * g->kh <= g->ih && (long long)g->ow * 2 <= g->iw;
}

static void maxpool_plane_k2(float *op, int32_t *xp, const float *ip, const st_pool_geom *g) {
    const int iw = g->iw, ow = g->ow, kh = g->kh;
#if defined(__AVX512F__)
    const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(lane2, _mm512_set1_epi32(1));
#endif
    for (int oy = 0; oy < g->oh; oy++) {
        int y0 = oy * kh, ox = 0;
#if defined(__AVX512F__)
        for (; ox < ow; ox += 16) {
            int m = ow - ox < 16 ? ow - ox : 16;
            __mmask16 om = (__mmask16)((1u << m) - 1);
            __mmask16 m0 = (__mmask16)(2 * m >= 16 ? 0xffffu : (1u << 2 * m) - 1);
            __mmask16 m1 = (__mmask16)(2 * m >= 32 ? 0xffffu : 2 * m > 16 ? (1u << (2 * m - 16)) - 1 : 0);
            __m512 best = _mm512_setzero_ps();
            __m512i bi = _mm512_setzero_si512();
            for (int i = 0; i < kh; i++) {
                const float *row = ip + (size_t)(y0 + i) * iw + 2 * ox;
                __m512 a = _mm512_maskz_loadu_ps(m0, row), b = _mm512_maskz_loadu_ps(m1, row + 16);
                __m512 v[2] = {_mm512_permutex2var_ps(a, lane2, b), _mm512_permutex2var_ps(a, odd, b)};
                __m512i at = _mm512_add_epi32(lane2, _mm512_set1_epi32((y0 + i) * iw + 2 * ox));
                for (int j = 0; j < 2; j++) {
                    __m512i vi = j ? _mm512_add_epi32(at, _mm512_set1_epi32(1)) : at;
                    if (i == 0 && j == 0) { best = v[0]; bi = vi; continue; }
                    __mmask16 k = _mm512_cmp_ps_mask(v[j], best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v[j], v[j], _CMP_UNORD_Q);
                    best = _mm512_mask_blend_ps(k, best, v[j]);
                    bi = _mm512_mask_blend_epi32(k, bi, vi);
                }
            }
            _mm512_mask_storeu_ps(op + (size_t)oy * ow + ox, om, best);
            if (xp) _mm512_mask_storeu_epi32(xp + (size_t)oy * ow + ox, om, bi);
        }
#endif
        for (; ox < ow; ox++) {
            float best = ip[(size_t)y0 * iw + 2 * ox];
            int bi = y0 * iw + 2 * ox;
            for (int i = 0; i < kh; i++)
                for (int j = i == 0; j < 2; j++) {
                    int at = (y0 + i) * iw + 2 * ox + j;
                    float v = ip[at];
                    if (v > best || isnan(v)) { best = v; bi = at; }
                }
            op[(size_t)oy * ow + ox] = best;
            if (xp) xp[(size_t)oy * ow + ox] = bi;
        }
    }
}

/* Inference (no indices wanted), any window, stride and padding, dilation 1: one plane,
 * output row by output row. For each window row y and column offset j, the outputs whose
 * column ox*sw - pw + j lies inside the input take max(out, in) in a loop without branches
 * (vectorised by the compiler). Each output still meets its window's values in the
 * reference's order (row by row, left to right), with the same rule (greater, or NaN), so
 * it is exactly the reference's value. (ResNet's 3x3 stride-2 stem pool: 16% of a batch-1
 * inference with the general loop.) */
#if defined(__AVX512F__)
static void maxpool_row_s2(float *orow, const float *ip, const st_pool_geom *g, int y0, int y1);
#endif

static void maxpool_plane_values(float *op, const float *ip, const st_pool_geom *g) {
    const int iw = g->iw, ow = g->ow;
    for (int oy = 0; oy < g->oh; oy++) {
        float *orow = op + (size_t)oy * ow;
        int y0, y1;
        max_range(oy, g->sh, g->ph, g->kh, 1, g->ih, &y0, &y1);
#if defined(__AVX512F__)
        if (g->sw == 2) {
            maxpool_row_s2(orow, ip, g, y0, y1);
            continue;
        }
#endif
        for (int ox = 0; ox < ow; ox++) orow[ox] = -INFINITY;
        for (int y = y0; y < y1; y++) {
            const float *row = ip + (size_t)y * iw;
            for (int j = 0; j < g->kw; j++) {
                /* outputs ox with 0 <= ox*sw - pw + j < iw */
                int off = j - g->pw;
                int xa = off >= 0 ? 0 : (-off + g->sw - 1) / g->sw;
                int xb = off >= iw ? 0 : (iw - off + g->sw - 1) / g->sw;
                if (xb > ow) xb = ow;
                const int sw = g->sw;
                for (int ox = xa; ox < xb; ox++) {
                    float v = row[ox * sw + off], b = orow[ox];
                    orow[ox] = (v > b || v != v) ? v : b;
                }
            }
        }
    }
}

/* The same for a stride of 2 with AVX-512 (ResNet's stem pool, 3x3 stride 2: the
 * compiler's loop above reads every other value one at a time). The outputs whose every
 * window column lies inside the input row, 16 at a time: for each window row and column
 * j, 32 consecutive values (masked at the end) and their even ones picked by a permute;
 * the outputs at the edges one by one. Each output meets its window's values in the same
 * order with the same rule as above, so the values are the same. */
#if defined(__AVX512F__)
static void maxpool_row_s2(float *orow, const float *ip, const st_pool_geom *g, int y0, int y1) {
    const int iw = g->iw, ow = g->ow, kw = g->kw, pw = g->pw;
    /* interior outputs [a, b): 0 <= 2 ox - pw and 2 ox - pw + kw - 1 < iw */
    int a = (pw + 1) / 2, b = iw - kw + pw >= 0 ? (iw - kw + pw) / 2 + 1 : 0;
    if (b > ow) b = ow;
    if (a > b) a = b;
    for (int ox = 0; ox < ow; ox++) {
        if (ox == a) ox = b; /* the interior below */
        if (ox >= ow) break;
        float best = -INFINITY;
        for (int y = y0; y < y1; y++)
            for (int j = 0; j < kw; j++) {
                int ix = 2 * ox - pw + j;
                if (ix < 0 || ix >= iw) continue;
                float v = ip[(size_t)y * iw + ix];
                best = (v > best || v != v) ? v : best;
            }
        orow[ox] = best;
    }
    for (int ox = a; ox < b; ox += 16) {
        int m = b - ox < 16 ? b - ox : 16, need = 2 * m - 1; /* values read per window column */
        __mmask16 lo = (__mmask16)(need >= 16 ? 0xffffu : (1u << need) - 1);
        __mmask16 hi = (__mmask16)(need > 16 ? (1u << (need - 16)) - 1 : 0);
        __m512 best = _mm512_set1_ps(-INFINITY);
        for (int y = y0; y < y1; y++) {
            const float *row = ip + (size_t)y * iw + 2 * ox - pw;
            for (int j = 0; j < kw; j++) {
                __m512 v = even_lanes(_mm512_maskz_loadu_ps(lo, row + j), _mm512_maskz_loadu_ps(hi, row + j + 16));
                __mmask16 k = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
                best = _mm512_mask_blend_ps(k, best, v);
            }
        }
        _mm512_mask_storeu_ps(orow + ox, (__mmask16)((1u << m) - 1), best);
    }
}
#endif

void st_maxpool_forward(float *out, int32_t *indices, const float *in, int planes, const st_pool_geom *g) {
    if (!indices && g->dh == 1 && g->dw == 1 && !maxpool_fast_ok(g)) {
        const size_t isz = (size_t)g->ih * g->iw, osz = (size_t)g->oh * g->ow;
#pragma omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN && !omp_in_parallel())
        for (int c = 0; c < planes; c++) maxpool_plane_values(out + c * osz, in + c * isz, g);
        return;
    }
    if (!maxpool_fast_ok(g)) {
        st_maxpool_forward_ref(out, indices, in, planes, g);
        return;
    }
    const size_t isz = (size_t)g->ih * g->iw, osz = (size_t)g->oh * g->ow;
#pragma omp parallel for schedule(static) if ((long long)planes * (long long)osz > POOL_PAR_MIN)
    for (int c = 0; c < planes; c++)
        maxpool_plane_k2(out + c * osz, indices ? indices + c * osz : NULL, in + c * isz, g);
}
