/* metrics.c - evaluation metrics: the confusion matrix (accuracy, per-class precision,
 * recall and IoU, mean IoU), top-k accuracy, and PCK for multi-instance keypoint heatmaps.
 * Everything counts in integers, so sums over batches are exact and order-free. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct st_confusion {
    int classes;
    int64_t *counts; /* classes x classes, rows = true class, columns = predicted */
};

st_status st_confusion_new(int classes, st_confusion **out) {
    *out = NULL;
    if (classes < 1 || classes > 65536) return st_fail(ST_ERR_ARG, "confusion: classes=%d must be in 1..65536", classes);
    st_confusion *c = malloc(sizeof *c);
    int64_t *counts = calloc((size_t)classes * classes, sizeof(int64_t));
    if (!c || !counts) {
        free(c);
        free(counts);
        return st_fail(ST_ERR_NOMEM, "confusion: out of memory for %d classes", classes);
    }
    c->classes = classes;
    c->counts = counts;
    *out = c;
    return ST_OK;
}

void st_confusion_free(st_confusion *c) {
    if (!c) return;
    free(c->counts);
    free(c);
}

void st_confusion_reset(st_confusion *c) { memset(c->counts, 0, sizeof(int64_t) * (size_t)c->classes * c->classes); }
int st_confusion_classes(const st_confusion *c) { return c->classes; }
const int64_t *st_confusion_counts(const st_confusion *c) { return c->counts; }

static st_status check_labels(const st_confusion *c, const int32_t *labels, int64_t n, int ignore_index) {
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != ignore_index && (labels[i] < 0 || labels[i] >= c->classes))
            return st_fail(ST_ERR_ARG, "confusion: label %d at index %lld is outside 0..%d (ignore_index %d)", labels[i],
                           (long long)i, c->classes - 1, ignore_index);
    return ST_OK;
}

st_status st_confusion_add_logits(st_confusion *c, const float *logits, const int32_t *labels, int n, int classes,
                                  int positions, int ignore_index) {
    if (classes != c->classes)
        return st_fail(ST_ERR_SHAPE, "confusion: logits have %d classes, the matrix %d", classes, c->classes);
    if (n < 0 || positions < 1) return st_fail(ST_ERR_ARG, "confusion: n=%d, positions=%d", n, positions);
    st_status rc = check_labels(c, labels, (int64_t)n * positions, ignore_index);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++)
        for (int64_t p = 0; p < positions; p++) {
            int32_t t = labels[i * positions + p];
            if (t == ignore_index) continue;
            const float *x = logits + i * classes * positions + p;
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (x[k * positions] > x[best * positions] || (x[best * positions] != x[best * positions] && x[k * positions] == x[k * positions])) best = k;
            c->counts[(int64_t)t * classes + best]++;
        }
    return ST_OK;
}

st_status st_confusion_add_labels(st_confusion *c, const int32_t *pred, const int32_t *labels, int64_t n, int ignore_index) {
    st_status rc = check_labels(c, labels, n, ignore_index);
    if (rc) return rc;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != ignore_index && (pred[i] < 0 || pred[i] >= c->classes))
            return st_fail(ST_ERR_ARG, "confusion: prediction %d at index %lld is outside 0..%d", pred[i], (long long)i, c->classes - 1);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] != ignore_index) c->counts[(int64_t)labels[i] * c->classes + pred[i]]++;
    return ST_OK;
}

int64_t st_confusion_total(const st_confusion *c) {
    int64_t s = 0;
    for (int64_t i = 0; i < (int64_t)c->classes * c->classes; i++) s += c->counts[i];
    return s;
}

double st_confusion_accuracy(const st_confusion *c) {
    int64_t tp = 0;
    for (int k = 0; k < c->classes; k++) tp += c->counts[(int64_t)k * c->classes + k];
    int64_t total = st_confusion_total(c);
    return total ? (double)tp / (double)total : NAN;
}

/* True positives, false positives (column minus diagonal), false negatives (row minus diagonal). */
static void tp_fp_fn(const st_confusion *c, int k, int64_t *tp, int64_t *fp, int64_t *fn) {
    const int C = c->classes;
    int64_t row = 0, col = 0;
    for (int j = 0; j < C; j++) {
        row += c->counts[(int64_t)k * C + j];
        col += c->counts[(int64_t)j * C + k];
    }
    *tp = c->counts[(int64_t)k * C + k];
    *fp = col - *tp;
    *fn = row - *tp;
}

void st_confusion_precision_recall(const st_confusion *c, double *precision, double *recall) {
    for (int k = 0; k < c->classes; k++) {
        int64_t tp, fp, fn;
        tp_fp_fn(c, k, &tp, &fp, &fn);
        if (precision) precision[k] = tp + fp ? (double)tp / (double)(tp + fp) : NAN;
        if (recall) recall[k] = tp + fn ? (double)tp / (double)(tp + fn) : NAN;
    }
}

void st_confusion_iou(const st_confusion *c, double *iou) {
    for (int k = 0; k < c->classes; k++) {
        int64_t tp, fp, fn;
        tp_fp_fn(c, k, &tp, &fp, &fn);
        iou[k] = tp + fp + fn ? (double)tp / (double)(tp + fp + fn) : NAN;
    }
}

double st_confusion_mean_iou(const st_confusion *c) {
    double sum = 0;
    int present = 0;
    for (int k = 0; k < c->classes; k++) {
        int64_t tp, fp, fn;
        tp_fp_fn(c, k, &tp, &fp, &fn);
        if (tp + fp + fn == 0) continue;
        sum += (double)tp / (double)(tp + fp + fn);
        present++;
    }
    return present ? sum / present : NAN;
}

st_status st_topk_correct(const float *logits, const int32_t *labels, int n, int classes, int k, int64_t *correct) {
    *correct = 0;
    if (n < 0 || classes < 1 || k < 1) return st_fail(ST_ERR_ARG, "top-k: n=%d, classes=%d, k=%d", n, classes, k);
    for (int i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return st_fail(ST_ERR_ARG, "top-k: label %d of sample %d is outside 0..%d", labels[i], i, classes - 1);
    int64_t hits = 0;
    for (int i = 0; i < n; i++) {
        const float *x = logits + (int64_t)i * classes;
        int t = labels[i], ahead = 0;
        float v = x[t];
        if (v != v) continue; /* a NaN logit is never among the top k */
        for (int j = 0; j < classes; j++)
            if (x[j] > v || (x[j] == v && j < t)) ahead++;
        if (ahead < k) hits++;
    }
    *correct = hits;
    return ST_OK;
}

/* ---------------------------------------------------------------- PCK */
typedef struct { double x, y; } point;
typedef struct { double d2; int t, p; } pair;

static int pair_cmp(const void *a, const void *b) {
    const pair *x = a, *y = b;
    if (x->d2 != y->d2) return x->d2 < y->d2 ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->p < y->p ? -1 : x->p > y->p;
}

/* Peaks of one hs x hs heatmap in image coordinates; returns their number (<= hs*hs). */
static int find_peaks(const float *h, int hs, int stride, double threshold, point *out) {
    int np = 0;
    for (int u = 0; u < hs; u++)
        for (int v = 0; v < hs; v++) {
            float a = h[u * hs + v];
            if (!(a >= threshold)) continue;
            int peak = 1;
            for (int du = -1; du <= 1 && peak; du++)
                for (int dv = -1; dv <= 1; dv++) {
                    int uu = u + du, vv = v + dv;
                    if ((!du && !dv) || uu < 0 || vv < 0 || uu >= hs || vv >= hs) continue;
                    float b = h[uu * hs + vv];
                    /* ties: the cell earlier in row-major order wins */
                    if (b > a || (b == a && uu * hs + vv < u * hs + v)) { peak = 0; break; }
                }
            if (!peak) continue;
            double x = v, y = u; /* quarter-cell refinement towards the higher neighbour */
            if (v > 0 && v < hs - 1) x += 0.25 * ((h[u * hs + v + 1] > h[u * hs + v - 1]) - (h[u * hs + v + 1] < h[u * hs + v - 1]));
            if (u > 0 && u < hs - 1) y += 0.25 * ((h[(u + 1) * hs + v] > h[(u - 1) * hs + v]) - (h[(u + 1) * hs + v] < h[(u - 1) * hs + v]));
            out[np].x = (x + 0.5) * stride;
            out[np].y = (y + 0.5) * stride;
            np++;
        }
    return np;
}

st_status st_pck_add(st_pck_counts *acc, const float *heatmaps, int n, int joints, int hs, int stride, const float *keypoints,
                     int max_keypoints, double alpha, double threshold) {
    if (n < 0 || joints < 1 || hs < 1 || stride < 1 || max_keypoints < 0 || !(alpha >= 0))
        return st_fail(ST_ERR_ARG, "pck: n=%d, joints=%d, hs=%d, stride=%d, max_keypoints=%d, alpha=%g", n, joints, hs, stride,
                       max_keypoints, alpha);
    for (int64_t r = 0; r < (int64_t)n * max_keypoints; r++) {
        const float *q = keypoints + 4 * r;
        if (q[3] == 1 && (q[2] < 0 || q[2] >= joints || q[2] != (int)q[2]))
            return st_fail(ST_ERR_ARG, "pck: keypoint %lld of image %lld is visible but its joint %g is not in 0..%d",
                           (long long)(r % max_keypoints), (long long)(r / max_keypoints), q[2], joints - 1);
    }
    point *peaks = malloc(sizeof(point) * (size_t)hs * hs);
    point *truth = malloc(sizeof(point) * (size_t)(max_keypoints ? max_keypoints : 1));
    pair *pairs = malloc(sizeof(pair) * (size_t)hs * hs * (max_keypoints ? max_keypoints : 1));
    char *used_t = malloc((size_t)(max_keypoints ? max_keypoints : 1)), *used_p = malloc((size_t)hs * hs);
    if (!peaks || !truth || !pairs || !used_t || !used_p) {
        free(peaks); free(truth); free(pairs); free(used_t); free(used_p);
        return st_fail(ST_ERR_NOMEM, "pck: out of memory for %dx%d heatmaps with %d keypoints", hs, hs, max_keypoints);
    }
    const double radius = alpha * hs * stride, r2 = radius * radius;
    for (int64_t i = 0; i < n; i++)
        for (int j = 0; j < joints; j++) {
            int np = find_peaks(heatmaps + (i * joints + j) * hs * hs, hs, stride, threshold, peaks), nt = 0;
            for (int r = 0; r < max_keypoints; r++) {
                const float *q = keypoints + 4 * (i * max_keypoints + r);
                if (q[3] == 1 && (int)q[2] == j) truth[nt++] = (point){q[0], q[1]};
            }
            acc->peaks += np;
            acc->keypoints += nt;
            int npairs = 0;
            for (int t = 0; t < nt; t++)
                for (int p = 0; p < np; p++) {
                    double dx = truth[t].x - peaks[p].x, dy = truth[t].y - peaks[p].y, d2 = dx * dx + dy * dy;
                    if (d2 <= r2) pairs[npairs++] = (pair){d2, t, p};
                }
            qsort(pairs, (size_t)npairs, sizeof(pair), pair_cmp);
            memset(used_t, 0, (size_t)(nt ? nt : 1));
            memset(used_p, 0, (size_t)(np ? np : 1));
            for (int k = 0; k < npairs; k++)
                if (!used_t[pairs[k].t] && !used_p[pairs[k].p]) {
                    used_t[pairs[k].t] = used_p[pairs[k].p] = 1;
                    acc->correct++;
                }
        }
    free(peaks); free(truth); free(pairs); free(used_t); free(used_p);
    return ST_OK;
}

double st_pck(const st_pck_counts *acc) { return acc->keypoints ? (double)acc->correct / (double)acc->keypoints : NAN; }
