/* shapes.c - a synthetic data set for segmentation and keypoints: random circles,
 * rotated squares and triangles on a plain background, with Gaussian pixel noise.
 *
 * Per image (its own st_rng, seeded from (seed, index), so nothing depends on threads):
 *   1. background level (grey) or colour, each channel uniform in [0, 0.2];
 *   2. m shapes, m uniform in min_shapes..max_shapes, drawn in order, each:
 *        class uniform over circle / square / triangle;
 *        circumradius r = size * U[0.10, 0.22] times 1.0 / 1.25 / 1.3 (circle, square,
 *        triangle: the smaller-area shapes are drawn larger so the classes' pixel shares
 *        are closer), centre uniform in [0.6 r, size - 0.6 r]^2, angle uniform;
 *        a square's corners lie at angle + k 90 deg on the circle of radius r; a
 *        triangle's at angle + k 120 deg + U[-8.6, 8.6] deg, at radius r * U[0.9, 1];
 *        its "centre" keypoint is the centroid of the corners;
 *        intensity U[0.45, 1] (grey) or a colour at least 0.5 from the background and
 *        0.3 from the earlier shapes (Euclidean, RGB); grey levels at least 0.12 apart
 *        (drawn up to 64 times, else the most distant draw is kept);
 *      a placement is redrawn (up to 50 times, then the shape is dropped) if less than
 *      60 % of the shape's area would lie in the image, if it has fewer than 12 pixels,
 *      or if it would leave an earlier shape with less than 60 % of its pixels visible;
 *   3. keypoints: a centre is visible when it is in the image, no later shape covers it
 *      and its pixel shows the shape; a corner when it is in the image, uncovered, and
 *      the point a quarter of the way to the centre is uncovered and its pixel shows the
 *      shape. Same-channel keypoints of two shapes closer than 3 heatmap cells (3 sigma
 *      if sigma > 1) are both marked 2, "visible but ambiguous": they keep their bumps
 *      (the picture shows them) but PCK leaves them out, as their bumps may merge. The
 *      shape sizes keep one shape's own corners at least 2 cells apart on some axis at the
 *      default scale (size 64, stride 4), so each visible keypoint has its own peak;
 *   4. Gaussian noise N(0, noise^2) on every pixel and channel, drawn last, so the same
 *      seed with another noise level gives the same shapes.
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define MAX_SHAPES 16   /* per image: keeps the keypoint rows bounded */
#define PLACE_TRIES 50
#define COLOUR_TRIES 64
#define MIN_VISIBLE 0.6
#define MIN_PIXELS 12
#define AMBIGUOUS 3.0 /* heatmap cells (times sigma when sigma > 1) */

typedef struct {
    int cls, nv;          /* class; corners (0 circle, 4 square, 3 triangle) */
    double cx, cy, r;     /* centre (centroid for triangles), circumradius */
    double vx[4], vy[4];  /* corners in drawing order around the centre */
    float colour[3];
    int64_t total, visible; /* pixels in the image; of those, not covered by later shapes */
} shape;

void st_shapes_defaults(st_shapes_conf *c) {
    c->n = 1000;
    c->size = 64;
    c->channels = 1;
    c->min_shapes = 1;
    c->max_shapes = 4;
    c->noise = 0.1;
    c->seed = 1;
    c->sigma_x10 = 10;
    c->heatmap_stride = 4;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static double uniform(st_rng *r, double lo, double hi) { return lo + (hi - lo) * st_rng_uniform(r); }

/* Whether point (x, y) lies inside shape s (edges included). */
static int inside(const shape *s, double x, double y) {
    if (s->cls == ST_SHAPE_CIRCLE) {
        double dx = x - s->cx, dy = y - s->cy;
        return dx * dx + dy * dy <= s->r * s->r;
    }
    int pos = 0, neg = 0;
    for (int k = 0; k < s->nv; k++) {
        int k1 = (k + 1) % s->nv;
        double c = (s->vx[k1] - s->vx[k]) * (y - s->vy[k]) - (s->vy[k1] - s->vy[k]) * (x - s->vx[k]);
        if (c > 0) pos = 1;
        if (c < 0) neg = 1;
    }
    return !(pos && neg);
}

static double area(const shape *s) {
    if (s->cls == ST_SHAPE_CIRCLE) return PI * s->r * s->r;
    double a = 0;
    for (int k = 0; k < s->nv; k++) {
        int k1 = (k + 1) % s->nv;
        a += s->vx[k] * s->vy[k1] - s->vx[k1] * s->vy[k];
    }
    return fabs(a) / 2;
}

/* The pixel box [*r0, *r1) x [*c0, *c1) that can hold pixel centres of s. */
static void bbox(const shape *s, int size, int *r0, int *r1, int *c0, int *c1) {
    double R = s->r + 1;
    *r0 = (int)floor(s->cy - R); *r1 = (int)ceil(s->cy + R) + 1;
    *c0 = (int)floor(s->cx - R); *c1 = (int)ceil(s->cx + R) + 1;
    if (*r0 < 0) *r0 = 0;
    if (*c0 < 0) *c0 = 0;
    if (*r1 > size) *r1 = size;
    if (*c1 > size) *c1 = size;
}

static void draw_geometry(st_rng *rng, int size, shape *s) {
    s->cls = 1 + (int)st_rng_below(rng, 3);
    static const double factor[4] = {0, 1.0, 1.25, 1.3};
    s->r = size * uniform(rng, 0.10, 0.22) * factor[s->cls];
    double cx = uniform(rng, 0.6 * s->r, size - 0.6 * s->r), cy = uniform(rng, 0.6 * s->r, size - 0.6 * s->r);
    double angle = uniform(rng, 0, 2 * PI);
    s->cx = cx;
    s->cy = cy;
    s->nv = 0;
    if (s->cls == ST_SHAPE_SQUARE) {
        s->nv = 4;
        for (int k = 0; k < 4; k++) {
            s->vx[k] = cx + s->r * cos(angle + k * PI / 2);
            s->vy[k] = cy + s->r * sin(angle + k * PI / 2);
        }
    } else if (s->cls == ST_SHAPE_TRIANGLE) {
        s->nv = 3;
        double mx = 0, my = 0;
        for (int k = 0; k < 3; k++) {
            double a = angle + k * 2 * PI / 3 + uniform(rng, -0.15, 0.15), rr = s->r * uniform(rng, 0.9, 1.0);
            s->vx[k] = cx + rr * cos(a);
            s->vy[k] = cy + rr * sin(a);
            mx += s->vx[k] / 3;
            my += s->vy[k] / 3;
        }
        s->cx = mx;
        s->cy = my;
    }
}

/* A colour distinct from the background and the earlier shapes. */
static void draw_colour(st_rng *rng, int channels, const float *bg, const shape *prev, int nprev, float *out) {
    double best = -1, need_bg = channels == 1 ? 0 : 0.5, need = channels == 1 ? 0.12 : 0.3;
    for (int t = 0; t < COLOUR_TRIES; t++) {
        float c[3];
        for (int ch = 0; ch < channels; ch++) c[ch] = (float)(channels == 1 ? uniform(rng, 0.45, 1.0) : st_rng_uniform(rng));
        double dbg = 0, dmin = INFINITY;
        for (int ch = 0; ch < channels; ch++) dbg += (double)(c[ch] - bg[ch]) * (c[ch] - bg[ch]);
        for (int j = 0; j < nprev; j++) {
            double d = 0;
            for (int ch = 0; ch < channels; ch++) d += (double)(c[ch] - prev[j].colour[ch]) * (c[ch] - prev[j].colour[ch]);
            if (d < dmin) dmin = d;
        }
        dbg = sqrt(dbg);
        dmin = sqrt(dmin);
        /* score: how far the draw is from failing its tighter constraint */
        double score = fmin(dbg - need_bg, dmin - need);
        if (score > best) {
            best = score;
            memcpy(out, c, sizeof c);
        }
        if (score >= 0) return;
    }
}

/* Counts the pixels of candidate s in the image and, per earlier shape, how many of its
 * visible pixels s would cover (cover[j]). */
static int64_t coverage(const shape *s, int size, const int *owner, int64_t *cover) {
    int r0, r1, c0, c1;
    bbox(s, size, &r0, &r1, &c0, &c1);
    int64_t n = 0;
    for (int i = r0; i < r1; i++)
        for (int j = c0; j < c1; j++)
            if (inside(s, j + 0.5, i + 0.5)) {
                n++;
                if (owner[i * size + j] >= 0) cover[owner[i * size + j]]++;
            }
    return n;
}

static void paint(const shape *s, int id, int size, int *owner) {
    int r0, r1, c0, c1;
    bbox(s, size, &r0, &r1, &c0, &c1);
    for (int i = r0; i < r1; i++)
        for (int j = c0; j < c1; j++)
            if (inside(s, j + 0.5, i + 0.5)) owner[i * size + j] = id;
}

/* Point (x, y) is visible for shape k when it is in the image, no later shape covers it,
 * and (if own_x >= 0) pixel (own_x, own_y) shows shape k. */
static int point_visible(const shape *sh, int m, int k, int size, double x, double y, const int *owner, double own_x,
                         double own_y) {
    if (!(x >= 0 && y >= 0 && x < size && y < size)) return 0;
    for (int t = k + 1; t < m; t++)
        if (inside(&sh[t], x, y)) return 0;
    if (own_x < 0) return 1;
    if (!(own_x >= 0 && own_y >= 0 && own_x < size && own_y < size)) return 0;
    return owner[(int)own_y * size + (int)own_x] == k;
}

static void generate_one(const st_shapes_conf *c, int64_t idx, const st_shapes *o, int *owner) {
    const int S = c->size, C = c->channels;
    st_rng rng;
    st_rng_seed(&rng, splitmix64(c->seed ^ splitmix64((uint64_t)idx)));
    float bg[3];
    for (int ch = 0; ch < C; ch++) bg[ch] = (float)uniform(&rng, 0, 0.2);
    int want = c->min_shapes + (int)st_rng_below(&rng, (uint32_t)(c->max_shapes - c->min_shapes + 1));
    shape sh[MAX_SHAPES];
    int64_t cover[MAX_SHAPES];
    int m = 0;
    for (int i = 0; i < S * S; i++) owner[i] = -1;
    for (int k = 0; k < want; k++) {
        for (int t = 0; t < PLACE_TRIES; t++) {
            shape s;
            draw_geometry(&rng, S, &s);
            memset(cover, 0, sizeof cover);
            s.total = coverage(&s, S, owner, cover);
            int ok = s.total >= MIN_PIXELS && s.total >= MIN_VISIBLE * area(&s);
            for (int j = 0; j < m && ok; j++)
                if (sh[j].visible - cover[j] < MIN_VISIBLE * sh[j].total) ok = 0;
            if (!ok) continue;
            for (int j = 0; j < m; j++) sh[j].visible -= cover[j];
            s.visible = s.total;
            draw_colour(&rng, C, bg, sh, m, s.colour);
            paint(&s, m, S, owner);
            sh[m++] = s;
            break;
        }
    }
    /* pixels and masks */
    float *img = o->images + idx * C * S * S;
    int32_t *mask = o->masks + idx * S * S;
    for (int i = 0; i < S * S; i++) {
        int w = owner[i];
        mask[i] = w < 0 ? ST_SHAPE_BACKGROUND : sh[w].cls;
        for (int ch = 0; ch < C; ch++) img[ch * S * S + i] = w < 0 ? bg[ch] : sh[w].colour[ch];
    }
    /* keypoints */
    const int K = o->max_keypoints;
    float *kp = o->keypoints + idx * K * 4;
    for (int r = 0; r < K; r++) {
        kp[4 * r] = kp[4 * r + 1] = 0;
        kp[4 * r + 2] = -1;
        kp[4 * r + 3] = 0;
    }
    static const int centre_joint[4] = {-1, ST_JOINT_CIRCLE_CENTRE, ST_JOINT_SQUARE_CENTRE, ST_JOINT_TRIANGLE_CENTRE};
    static const int corner_joint[4] = {-1, -1, ST_JOINT_SQUARE_CORNER, ST_JOINT_TRIANGLE_CORNER};
    for (int k = 0; k < m; k++) {
        float *row = kp + 4 * ST_SHAPE_KP_PER_SHAPE * k;
        row[0] = (float)sh[k].cx;
        row[1] = (float)sh[k].cy;
        row[2] = (float)centre_joint[sh[k].cls];
        row[3] = (float)point_visible(sh, m, k, S, sh[k].cx, sh[k].cy, owner, sh[k].cx, sh[k].cy);
        for (int v = 0; v < sh[k].nv; v++) {
            float *q = row + 4 * (1 + v);
            double x = sh[k].vx[v], y = sh[k].vy[v];
            q[0] = (float)x;
            q[1] = (float)y;
            q[2] = (float)corner_joint[sh[k].cls];
            double ix = x + 0.25 * (sh[k].cx - x), iy = y + 0.25 * (sh[k].cy - y); /* a quarter of the way in */
            q[3] = (float)(point_visible(sh, m, k, S, x, y, owner, -1, 0) && point_visible(sh, m, k, S, ix, iy, owner, ix, iy));
        }
    }
    /* keypoints of one channel from different shapes closer than AMBIGUOUS heatmap cells
     * would merge into one heatmap peak: both stay in the heatmap (they are visible) but
     * get visible = 2, which PCK does not score */
    const double amb = AMBIGUOUS * c->heatmap_stride * (c->sigma_x10 > 10 ? c->sigma_x10 / 10.0 : 1.0);
    char ambiguous[MAX_SHAPES * ST_SHAPE_KP_PER_SHAPE] = {0};
    for (int a = 0; a < K; a++)
        for (int b = a + 1; b < K; b++) {
            const float *p = kp + 4 * a, *q = kp + 4 * b;
            if (!p[3] || !q[3] || p[2] != q[2] || a / ST_SHAPE_KP_PER_SHAPE == b / ST_SHAPE_KP_PER_SHAPE) continue;
            if (hypot(p[0] - q[0], p[1] - q[1]) < amb) ambiguous[a] = ambiguous[b] = 1;
        }
    for (int a = 0; a < K; a++)
        if (ambiguous[a]) kp[4 * a + 3] = 2;
    /* heatmaps: per channel the maximum of the visible keypoints' Gaussians */
    const int hs = o->hs, J = o->joints;
    const double sigma = c->sigma_x10 / 10.0, st = c->heatmap_stride;
    float *hm = o->heatmaps + idx * J * hs * hs;
    memset(hm, 0, sizeof(float) * (size_t)J * hs * hs);
    for (int r = 0; r < K; r++) {
        const float *q = kp + 4 * r;
        if (q[3] == 0 || q[2] < 0) continue;
        double xh = q[0] / st - 0.5, yh = q[1] / st - 0.5;
        float *h = hm + (int)q[2] * hs * hs;
        for (int u = 0; u < hs; u++)
            for (int v = 0; v < hs; v++) {
                float g = (float)exp(-((v - xh) * (v - xh) + (u - yh) * (u - yh)) / (2 * sigma * sigma));
                if (g > h[u * hs + v]) h[u * hs + v] = g;
            }
    }
    /* noise last: the same seed with another noise level gives the same shapes */
    if (c->noise > 0)
        for (int i = 0; i < C * S * S; i++) img[i] += (float)(c->noise * st_rng_normal(&rng));
}

st_status st_shapes_generate(const st_shapes_conf *c, st_shapes *out) {
    memset(out, 0, sizeof *out);
    if (c->n < 1) return st_fail(ST_ERR_ARG, "shapes: n=%d must be at least 1", c->n);
    if (c->size < 8 || c->size > 4096) return st_fail(ST_ERR_ARG, "shapes: size=%d must be in 8..4096", c->size);
    if (c->channels != 1 && c->channels != 3)
        return st_fail(ST_ERR_ARG, "shapes: channels=%d must be 1 (grey) or 3 (colour)", c->channels);
    if (c->min_shapes < 0 || c->max_shapes < c->min_shapes || c->max_shapes > MAX_SHAPES || c->max_shapes < 1)
        return st_fail(ST_ERR_ARG, "shapes: need 0 <= min_shapes (%d) <= max_shapes (%d) <= %d, max_shapes >= 1", c->min_shapes,
                       c->max_shapes, MAX_SHAPES);
    if (!(c->noise >= 0 && c->noise <= 10)) return st_fail(ST_ERR_ARG, "shapes: noise=%g must be in 0..10", c->noise);
    if (c->sigma_x10 < 1) return st_fail(ST_ERR_ARG, "shapes: sigma_x10=%d must be at least 1", c->sigma_x10);
    if (c->heatmap_stride < 1 || c->size % c->heatmap_stride)
        return st_fail(ST_ERR_ARG, "shapes: heatmap_stride=%d must be positive and divide size=%d", c->heatmap_stride, c->size);
    const int64_t n = c->n, S = c->size;
    out->n = c->n;
    out->channels = c->channels;
    out->size = c->size;
    out->joints = ST_SHAPE_JOINTS;
    out->stride = c->heatmap_stride;
    out->hs = c->size / c->heatmap_stride;
    out->max_keypoints = c->max_shapes * ST_SHAPE_KP_PER_SHAPE;
    const int64_t hs = out->hs;
    out->images = malloc(sizeof(float) * (size_t)(n * c->channels * S * S));
    out->masks = malloc(sizeof(int32_t) * (size_t)(n * S * S));
    out->heatmaps = malloc(sizeof(float) * (size_t)(n * ST_SHAPE_JOINTS * hs * hs));
    out->keypoints = malloc(sizeof(float) * (size_t)(n * out->max_keypoints * 4));
    if (!out->images || !out->masks || !out->heatmaps || !out->keypoints) {
        st_shapes_free(out);
        return st_fail(ST_ERR_NOMEM, "shapes: out of memory for %d images of %dx%dx%d", c->n, c->channels, c->size, c->size);
    }
    int failed = 0;
#pragma omp parallel
    {
        int *owner = malloc(sizeof(int) * (size_t)(S * S));
        if (!owner) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (int64_t i = 0; i < n; i++)
            if (owner) generate_one(c, i, out, owner);
        free(owner);
    }
    if (failed) {
        st_shapes_free(out);
        return st_fail(ST_ERR_NOMEM, "shapes: out of memory for a %dx%d scratch image", c->size, c->size);
    }
    return ST_OK;
}

void st_shapes_free(st_shapes *s) {
    free(s->images);
    free(s->masks);
    free(s->heatmaps);
    free(s->keypoints);
    memset(s, 0, sizeof *s);
}
