/* test_shapes.c - the synthetic shapes data set (src/shapes.c) and the metrics
 * (src/metrics.c).
 * Shapes: determinism (seed, thread count, n), noise drawn last, masks consistent with
 * pixel values, class balance, keypoints against masks, heatmaps recomputed here.
 * Metrics: hand-computed cases; NumPy references in tests/fixtures/metrics
 * (scripts/gen_metrics_fixtures.py); mIoU of a perfect prediction, PCK of the true
 * heatmaps and of shifted ones. Run from the repository root. */
#include "fixture.h"

#include <stdint.h>

#define FX "tests/fixtures/metrics/"

static st_shapes_conf conf(int n, uint64_t seed) {
    st_shapes_conf c;
    st_shapes_defaults(&c);
    c.n = n;
    c.seed = seed;
    return c;
}

static size_t img_bytes(const st_shapes *s) { return sizeof(float) * (size_t)s->n * s->channels * s->size * s->size; }
static size_t mask_bytes(const st_shapes *s) { return sizeof(int32_t) * (size_t)s->n * s->size * s->size; }
static size_t hm_bytes(const st_shapes *s) { return sizeof(float) * (size_t)s->n * s->joints * s->hs * s->hs; }
static size_t kp_bytes(const st_shapes *s) { return sizeof(float) * (size_t)s->n * s->max_keypoints * 4; }

static int same(const st_shapes *a, const st_shapes *b, int64_t n) { /* first n images equal, byte for byte */
    st_shapes x = *a, y = *b;
    x.n = y.n = (int)n;
    return !memcmp(a->images, b->images, img_bytes(&x)) && !memcmp(a->masks, b->masks, mask_bytes(&x)) &&
           !memcmp(a->heatmaps, b->heatmaps, hm_bytes(&x)) && !memcmp(a->keypoints, b->keypoints, kp_bytes(&x));
}

static void test_determinism(void) {
    st_shapes_conf c = conf(48, 7);
    st_shapes a, b, d, e;
    st_set_threads(1);
    CHECK(st_shapes_generate(&c, &a) == ST_OK, "generate: %s", st_errmsg());
    st_set_threads(2);
    CHECK(st_shapes_generate(&c, &b) == ST_OK, "generate: %s", st_errmsg());
    CHECK(same(&a, &b, c.n), "1 and 2 threads give the same bytes");
    c.n = 13; /* image i does not depend on n */
    CHECK(st_shapes_generate(&c, &e) == ST_OK, "generate: %s", st_errmsg());
    CHECK(same(&a, &e, 13), "the first 13 of 48 images are the 13 images of n=13");
    c.n = 48;
    c.seed = 8;
    CHECK(st_shapes_generate(&c, &d) == ST_OK, "generate: %s", st_errmsg());
    CHECK(memcmp(a.images, d.images, img_bytes(&a)) && memcmp(a.masks, d.masks, mask_bytes(&a)), "another seed gives other images");
    st_shapes_free(&a);
    st_shapes_free(&b);
    st_shapes_free(&d);
    st_shapes_free(&e);
    CHECK(a.images == NULL && a.n == 0, "st_shapes_free zeroes");
    st_set_threads(0);
    /* bad arguments name the option */
    st_shapes_conf bad = conf(4, 1);
    bad.heatmap_stride = 5;
    CHECK(st_shapes_generate(&bad, &a) == ST_ERR_ARG && strstr(st_errmsg(), "heatmap_stride"), "stride 5 with size 64: %s", st_errmsg());
    bad = conf(4, 1);
    bad.channels = 2;
    CHECK(st_shapes_generate(&bad, &a) == ST_ERR_ARG && strstr(st_errmsg(), "channels"), "channels 2: %s", st_errmsg());
}

/* With no noise every pixel holds its owner's level exactly: the background level of
 * its image, or one level per shape, and a shape level belongs to one class only. */
static void check_clean(const st_shapes *s) {
    const int S = s->size, C = s->channels;
    int64_t bad_bg = 0, bad_level = 0, mixed = 0;
    for (int i = 0; i < s->n; i++) {
        const float *img = s->images + (size_t)i * C * S * S;
        const int32_t *m = s->masks + (size_t)i * S * S;
        float bg[3] = {NAN, NAN, NAN}, level[64][3];
        int lcls[64], nl = 0;
        for (int p = 0; p < S * S; p++) {
            if (m[p] == ST_SHAPE_BACKGROUND) {
                if (bg[0] != bg[0])
                    for (int ch = 0; ch < C; ch++) bg[ch] = img[ch * S * S + p];
                for (int ch = 0; ch < C; ch++) bad_bg += img[ch * S * S + p] != bg[ch];
                continue;
            }
            int k = 0;
            for (; k < nl; k++) {
                int eq = 1;
                for (int ch = 0; ch < C; ch++) eq &= level[k][ch] == img[ch * S * S + p];
                if (eq) break;
            }
            if (k == nl && nl < 64) {
                for (int ch = 0; ch < C; ch++) level[nl][ch] = img[ch * S * S + p];
                lcls[nl++] = m[p];
            }
            if (k < nl && lcls[k] != m[p]) mixed++;
        }
        for (int k = 0; k < nl; k++) {
            double d = 0;
            for (int ch = 0; ch < C; ch++) d += (level[k][ch] - (bg[0] == bg[0] ? bg[ch] : 0)) * (level[k][ch] - (bg[0] == bg[0] ? bg[ch] : 0));
            if (C == 1 ? !(level[k][0] >= 0.45f && level[k][0] <= 1 && sqrt(d) >= 0.25) : !(sqrt(d) >= 0.3)) bad_level++;
        }
        if (bg[0] == bg[0])
            for (int ch = 0; ch < C; ch++) bad_bg += !(bg[ch] >= 0 && bg[ch] <= 0.2f);
    }
    CHECK(bad_bg == 0, "%d channels: %lld background pixels differ from their image's background level", C, (long long)bad_bg);
    CHECK(mixed == 0, "%d channels: %lld shape pixels share a level with a shape of another class", C, (long long)mixed);
    CHECK(bad_level == 0, "%d channels: %lld shape levels too close to the background", C, (long long)bad_level);
}

static void test_images_and_masks(void) {
    for (int ch = 1; ch <= 3; ch += 2) {
        st_shapes_conf c = conf(64, 3);
        c.channels = ch;
        c.noise = 0;
        st_shapes clean, noisy;
        CHECK(st_shapes_generate(&c, &clean) == ST_OK, "generate: %s", st_errmsg());
        check_clean(&clean);
        c.noise = 0.1;
        CHECK(st_shapes_generate(&c, &noisy) == ST_OK, "generate: %s", st_errmsg());
        CHECK(!memcmp(clean.masks, noisy.masks, mask_bytes(&clean)), "noise changes no mask");
        double s1 = 0, s2 = 0;
        size_t n = img_bytes(&clean) / sizeof(float);
        for (size_t i = 0; i < n; i++) {
            double d = (double)noisy.images[i] - clean.images[i];
            s1 += d;
            s2 += d * d;
        }
        double mean = s1 / n, sd = sqrt(s2 / n - mean * mean);
        CHECK(fabs(mean) < 0.002 && fabs(sd - 0.1) < 0.002, "noise: mean %g, sd %g (want 0, 0.1)", mean, sd);
        st_shapes_free(&clean);
        st_shapes_free(&noisy);
    }
}

static void test_balance(void) {
    st_shapes_conf c = conf(500, 1);
    st_shapes s;
    CHECK(st_shapes_generate(&c, &s) == ST_OK, "generate: %s", st_errmsg());
    int64_t count[4] = {0}, images_with[4] = {0};
    const int64_t P = (int64_t)s.size * s.size;
    for (int i = 0; i < s.n; i++) {
        int seen[4] = {0};
        for (int64_t p = 0; p < P; p++) {
            int k = s.masks[i * P + p];
            if (k < 0 || k > 3) k = 0, count[0] = -1000000000; /* fails the background check */
            count[k]++;
            seen[k] = 1;
        }
        for (int k = 0; k < 4; k++) images_with[k] += seen[k];
    }
    double f[4];
    for (int k = 0; k < 4; k++) f[k] = (double)count[k] / (double)(P * s.n);
    printf("class pixel fractions (default config, 500 images): background %.4f circle %.4f square %.4f triangle %.4f\n", f[0], f[1],
           f[2], f[3]);
    CHECK(f[0] > 0.6 && f[0] < 0.95, "background fraction %g", f[0]);
    for (int k = 1; k < 4; k++) {
        CHECK(f[k] > 0.025 && f[k] < 0.15, "class %d fraction %g", k, f[k]);
        CHECK(images_with[k] > 0.4 * s.n, "class %d is in only %lld of %d images", k, (long long)images_with[k], s.n);
    }
    st_shapes_free(&s);
}

/* Keypoints against the masks, heatmaps recomputed from the keypoints. */
static void test_keypoints_heatmaps(void) {
    st_shapes_conf c = conf(200, 5);
    st_shapes s;
    CHECK(st_shapes_generate(&c, &s) == ST_OK, "generate: %s", st_errmsg());
    const int S = s.size, K = s.max_keypoints, J = s.joints, hs = s.hs;
    CHECK(J == ST_SHAPE_JOINTS && hs == 16 && s.stride == 4 && K == 20, "layout J=%d hs=%d stride=%d K=%d", J, hs, s.stride, K);
    static const int cls_of_joint[5] = {ST_SHAPE_CIRCLE, ST_SHAPE_SQUARE, ST_SHAPE_SQUARE, ST_SHAPE_TRIANGLE, ST_SHAPE_TRIANGLE};
    int64_t visible = 0, outside = 0, centre_bad = 0, corner_checked = 0, corner_bad = 0, layout_bad = 0;
    for (int i = 0; i < s.n; i++) {
        const float *kp = s.keypoints + (size_t)i * K * 4;
        const int32_t *m = s.masks + (size_t)i * S * S;
        for (int r = 0; r < K; r++) {
            const float *q = kp + 4 * r;
            if (q[2] < 0) {
                layout_bad += q[3] != 0;
                continue;
            }
            int j = (int)q[2], slot = r % ST_SHAPE_KP_PER_SHAPE;
            layout_bad += (slot == 0) != (j == 0 || j == 1 || j == 3);
            if (!q[3]) continue;
            visible += q[3] == 1;
            layout_bad += q[3] != 1 && q[3] != 2;
            if (!(q[0] >= 0 && q[0] < S && q[1] >= 0 && q[1] < S)) { outside++; continue; }
            if (slot == 0) {
                centre_bad += m[(int)q[1] * S + (int)q[0]] != cls_of_joint[j];
            } else { /* the point a quarter of the way to the centre is the shape's */
                const float *ctr = kp + 4 * (r - slot);
                double x = q[0] + 0.25 * (ctr[0] - q[0]), y = q[1] + 0.25 * (ctr[1] - q[1]);
                corner_checked++;
                corner_bad += m[(int)y * S + (int)x] != cls_of_joint[j];
            }
        }
    }
    CHECK(layout_bad == 0, "%lld keypoint rows break the documented layout", (long long)layout_bad);
    CHECK(visible > 5 * s.n, "only %lld visible keypoints in %d images", (long long)visible, s.n);
    CHECK(outside == 0, "%lld visible keypoints outside the image", (long long)outside);
    CHECK(centre_bad == 0, "%lld visible centres lie on pixels of another class", (long long)centre_bad);
    CHECK(corner_bad <= corner_checked / 50, "%lld of %lld visible corners lie on pixels of another class", (long long)corner_bad,
          (long long)corner_checked);
    /* heatmaps: max over the channel's visible keypoints of exp(-d^2 / 2 sigma^2) */
    double worst = 0, sigma = c.sigma_x10 / 10.0;
    int64_t peak_bad = 0;
    for (int i = 0; i < s.n; i++)
        for (int j = 0; j < J; j++) {
            const float *h = s.heatmaps + ((size_t)i * J + j) * hs * hs;
            for (int u = 0; u < hs; u++)
                for (int v = 0; v < hs; v++) {
                    double want = 0;
                    for (int r = 0; r < K; r++) {
                        const float *q = s.keypoints + ((size_t)i * K + r) * 4;
                        if (!q[3] || (int)q[2] != j) continue;
                        double dx = (v + 0.5) * s.stride - q[0], dy = (u + 0.5) * s.stride - q[1];
                        want = fmax(want, exp(-(dx * dx + dy * dy) / (s.stride * s.stride) / (2 * sigma * sigma)));
                    }
                    worst = fmax(worst, fabs(want - h[u * hs + v]));
                }
            for (int r = 0; r < K; r++) { /* the cell under a visible keypoint is near 1 */
                const float *q = s.keypoints + ((size_t)i * K + r) * 4;
                if (!q[3] || (int)q[2] != j) continue;
                int u = (int)(q[1] / s.stride), v = (int)(q[0] / s.stride);
                peak_bad += !(h[u * hs + v] >= exp(-0.25 / (sigma * sigma)) - 1e-6);
            }
        }
    CHECK(worst < 1e-6, "heatmaps differ from the recomputed Gaussians by %g", worst);
    CHECK(peak_bad == 0, "%lld visible keypoints without a high heatmap cell under them", (long long)peak_bad);

    /* PCK of the true heatmaps, then of heatmaps shifted right by 1, 2, 3 cells */
    st_pck_counts acc = {0};
    CHECK(st_pck_add(&acc, s.heatmaps, s.n, J, hs, s.stride, s.keypoints, K, 0.1, 0.5) == ST_OK, "pck: %s", st_errmsg());
    printf("PCK@0.1 of the true heatmaps: %.4f (%lld keypoints, %lld peaks)\n", st_pck(&acc), (long long)acc.keypoints,
           (long long)acc.peaks);
    CHECK(acc.keypoints == visible, "pck counted %lld keypoints, %lld are visible", (long long)acc.keypoints, (long long)visible);
    CHECK(st_pck(&acc) == 1 && acc.peaks >= acc.keypoints, "PCK@0.1 of the true heatmaps is %g", st_pck(&acc));
    size_t nh = hm_bytes(&s) / sizeof(float);
    float *shifted = xmalloc(sizeof(float) * nh);
    double prev = st_pck(&acc);
    for (int shift = 1; shift <= 3; shift++) {
        for (size_t p = 0; p < nh; p++) {
            int v = (int)(p % hs);
            shifted[p] = v >= shift ? s.heatmaps[p - shift] : 0;
        }
        st_pck_counts a2 = {0};
        st_pck_add(&a2, shifted, s.n, J, hs, s.stride, s.keypoints, K, 0.1, 0.5);
        printf("PCK@0.1 of the true heatmaps shifted by %d cells (%d px): %.4f\n", shift, shift * s.stride, st_pck(&a2));
        /* 4 px < 6.4 px: most stay correct (not those whose peak moved off the map);
         * 8 and 12 px are beyond the radius: only chance matches with other keypoints */
        if (shift == 1) CHECK(st_pck(&a2) < prev && st_pck(&a2) > 0.9, "shift of 4 px: PCK %g after %g", st_pck(&a2), prev);
        else CHECK(st_pck(&a2) < 0.2, "a shift of %d px > 6.4 px still gives PCK %g", shift * s.stride, st_pck(&a2));
        prev = st_pck(&a2);
    }
    free(shifted);
    st_shapes_free(&s);
}

/* ---------------------------------------------------------------- metrics */
static void test_confusion_hand(void) {
    /* truth 0 0 1 2 2 2, prediction 0 1 1 2 2 0 (as logits), 4 classes, class 3 never seen */
    const int32_t t[6] = {0, 0, 1, 2, 2, 2}, p[6] = {0, 1, 1, 2, 2, 0};
    float logits[6 * 4];
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 4; k++) logits[i * 4 + k] = k == p[i] ? 2.0f : (float)(-k);
    st_confusion *c;
    CHECK(st_confusion_new(4, &c) == ST_OK, "new");
    CHECK(st_confusion_add_logits(c, logits, t, 6, 4, 1, -100) == ST_OK, "add: %s", st_errmsg());
    const int64_t want[16] = {1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0};
    CHECK(!memcmp(st_confusion_counts(c), want, sizeof want), "confusion matrix");
    CHECK(fabs(st_confusion_accuracy(c) - 4.0 / 6) < 1e-15, "accuracy %g", st_confusion_accuracy(c));
    double pr[4], rc[4], iou[4];
    st_confusion_precision_recall(c, pr, rc);
    st_confusion_iou(c, iou);
    CHECK(pr[0] == 0.5 && pr[1] == 0.5 && pr[2] == 1 && isnan(pr[3]), "precision %g %g %g %g", pr[0], pr[1], pr[2], pr[3]);
    CHECK(rc[0] == 0.5 && rc[1] == 1 && fabs(rc[2] - 2.0 / 3) < 1e-15 && isnan(rc[3]), "recall %g %g %g", rc[0], rc[1], rc[2]);
    CHECK(fabs(iou[0] - 1.0 / 3) < 1e-15 && iou[1] == 0.5 && fabs(iou[2] - 2.0 / 3) < 1e-15 && isnan(iou[3]), "iou");
    CHECK(fabs(st_confusion_mean_iou(c) - 0.5) < 1e-15, "mean IoU %g (want 0.5: class 3 is absent)", st_confusion_mean_iou(c));
    /* a bad label adds nothing and names itself; the ignored label is skipped */
    const int32_t bad[2] = {1, 7};
    CHECK(st_confusion_add_logits(c, logits, bad, 2, 4, 1, -100) == ST_ERR_ARG && strstr(st_errmsg(), "label 7"), "bad label: %s",
          st_errmsg());
    const int32_t ign[2] = {1, 7};
    CHECK(st_confusion_add_logits(c, logits, ign, 2, 4, 1, 7) == ST_OK && st_confusion_total(c) == 7, "ignore_index 7");
    CHECK(st_confusion_add_logits(c, logits, t, 1, 3, 1, -100) == ST_ERR_SHAPE, "class count mismatch");
    /* top-k: ties go to the lower index */
    const float tl[6] = {1, 3, 2, 1, 1, 0};
    const int32_t tk[2] = {2, 1};
    int64_t n1, n2;
    st_topk_correct(tl, tk, 2, 3, 1, &n1);
    st_topk_correct(tl, tk, 2, 3, 2, &n2);
    CHECK(n1 == 0 && n2 == 2, "top-1 %lld (want 0), top-2 %lld (want 2)", (long long)n1, (long long)n2);
    st_confusion_free(c);
}

static void load(const char *name, st_array *a) {
    char path[256];
    snprintf(path, sizeof path, FX "%s.npy", name);
    if (st_npy_load(path, a)) {
        fprintf(stderr, "%s\n", st_errmsg());
        exit(2);
    }
}

static void test_against_numpy(void) {
    st_array lg, lb, cf, sc, pr, rc, io;
    load("seg_logits", &lg);
    load("seg_labels", &lb);
    load("seg_confusion", &cf);
    load("seg_scalars", &sc);
    load("seg_precision", &pr);
    load("seg_recall", &rc);
    load("seg_iou", &io);
    const int C = (int)lg.shape[1], N = (int)lg.shape[0], P = (int)(lg.shape[2] * lg.shape[3]);
    const double *s = sc.data;
    st_confusion *c;
    st_confusion_new(C, &c);
    CHECK(st_confusion_add_logits(c, lg.data, lb.data, N, C, P, (int)s[2]) == ST_OK, "add: %s", st_errmsg());
    CHECK(!memcmp(st_confusion_counts(c), cf.data, sizeof(int64_t) * C * C), "confusion matrix = NumPy's");
    CHECK(fabs(st_confusion_accuracy(c) - s[0]) < 1e-12, "pixel accuracy %g, NumPy %g", st_confusion_accuracy(c), s[0]);
    CHECK(fabs(st_confusion_mean_iou(c) - s[1]) < 1e-12, "mean IoU %g, NumPy %g", st_confusion_mean_iou(c), s[1]);
    double p[16], r[16], u[16];
    st_confusion_precision_recall(c, p, r);
    st_confusion_iou(c, u);
    int ok = 1;
    for (int k = 0; k < C; k++) {
        const double *wp = pr.data, *wr = rc.data, *wu = io.data;
        ok &= (isnan(wp[k]) ? isnan(p[k]) : fabs(p[k] - wp[k]) < 1e-12) && (isnan(wr[k]) ? isnan(r[k]) : fabs(r[k] - wr[k]) < 1e-12) &&
              (isnan(wu[k]) ? isnan(u[k]) : fabs(u[k] - wu[k]) < 1e-12);
    }
    CHECK(ok, "per-class precision, recall and IoU = NumPy's");
    st_confusion_free(c);
    st_array tl, tb, tc;
    load("topk_logits", &tl);
    load("topk_labels", &tb);
    load("topk_correct", &tc);
    const int ks[5] = {1, 2, 3, 5, 10};
    for (int i = 0; i < 5; i++) {
        int64_t got;
        st_topk_correct(tl.data, tb.data, (int)tl.shape[0], (int)tl.shape[1], ks[i], &got);
        CHECK(got == ((int64_t *)tc.data)[i], "top-%d: %lld, NumPy %lld", ks[i], (long long)got, (long long)((int64_t *)tc.data)[i]);
    }
    st_array hm, kp, cases;
    load("pck_heatmaps", &hm);
    load("pck_keypoints", &kp);
    load("pck_cases", &cases);
    for (int i = 0; i < cases.shape[0]; i++) {
        const double *q = (double *)cases.data + 5 * i;
        st_pck_counts acc = {0};
        st_pck_add(&acc, hm.data, (int)hm.shape[0], (int)hm.shape[1], (int)hm.shape[2], 4, kp.data, (int)kp.shape[1], q[0], q[1]);
        CHECK(acc.keypoints == (int64_t)q[2] && acc.correct == (int64_t)q[3] && acc.peaks == (int64_t)q[4],
              "PCK alpha %g threshold %g: %lld/%lld correct, %lld peaks; NumPy %g/%g, %g", q[0], q[1], (long long)acc.correct,
              (long long)acc.keypoints, (long long)acc.peaks, q[3], q[2], q[4]);
    }
    st_array *all[] = {&lg, &lb, &cf, &sc, &pr, &rc, &io, &tl, &tb, &tc, &hm, &kp, &cases};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) st_array_free(all[i]);
}

/* A perfect prediction of the shapes masks has mean IoU 1; the hand-placed PCK peak. */
static void test_perfect_and_pck_hand(void) {
    st_shapes_conf c = conf(16, 2);
    st_shapes s;
    st_shapes_generate(&c, &s);
    const int P = s.size * s.size;
    float *logits = xcalloc((size_t)s.n * 4 * P, sizeof(float));
    for (int i = 0; i < s.n; i++)
        for (int p = 0; p < P; p++) logits[((size_t)i * 4 + s.masks[(size_t)i * P + p]) * P + p] = 1;
    st_confusion *cm;
    st_confusion_new(4, &cm);
    st_confusion_add_logits(cm, logits, s.masks, s.n, 4, P, -100);
    CHECK(st_confusion_mean_iou(cm) == 1 && st_confusion_accuracy(cm) == 1, "perfect prediction: mIoU %g", st_confusion_mean_iou(cm));
    /* one wrong pixel of a circle predicted as background lowers both */
    for (int p = 0; p < P; p++)
        if (s.masks[p] == ST_SHAPE_CIRCLE || s.masks[p] == ST_SHAPE_SQUARE || s.masks[p] == ST_SHAPE_TRIANGLE) {
            logits[(size_t)s.masks[p] * P + p] = 0;
            logits[p] = 1;
            break;
        }
    st_confusion_reset(cm);
    st_confusion_add_logits(cm, logits, s.masks, s.n, 4, P, -100);
    CHECK(st_confusion_mean_iou(cm) < 1 && st_confusion_mean_iou(cm) > 0.99, "one wrong pixel: mIoU %g", st_confusion_mean_iou(cm));
    st_confusion_free(cm);
    free(logits);
    st_shapes_free(&s);

    /* 8x8 heatmap, stride 2 (a 16-pixel image): peak at cell (u 3, v 4), its right
     * neighbour higher than its left, so the refined peak is x = (4.25 + 0.5) * 2 = 9.5,
     * y = (3 + 0.5) * 2 = 7. alpha 0.05: radius 0.8 pixels. */
    float h[64] = {0};
    h[3 * 8 + 4] = 1;
    h[3 * 8 + 5] = 0.6f;
    h[3 * 8 + 3] = 0.4f;
    h[2 * 8 + 4] = h[4 * 8 + 4] = 0.5f;
    float kp[3 * 4] = {10.0f, 7.0f, 0, 1, /* 0.5 away: correct */
                       9.5f, 7.9f, 0, 1,  /* 0.9 away: wrong */
                       9.5f, 7.0f, 0, 0}; /* invisible: not counted */
    st_pck_counts acc = {0};
    CHECK(st_pck_add(&acc, h, 1, 1, 8, 2, kp, 3, 0.05, 0.5) == ST_OK, "pck: %s", st_errmsg());
    CHECK(acc.keypoints == 2 && acc.correct == 1 && acc.peaks == 1, "hand PCK: %lld of %lld, %lld peaks", (long long)acc.correct,
          (long long)acc.keypoints, (long long)acc.peaks);
    kp[7] = 7.7f; /* 0.7 away: but the one peak is already taken by the first keypoint */
    st_pck_counts acc2 = {0};
    st_pck_add(&acc2, h, 1, 1, 8, 2, kp, 3, 0.05, 0.5);
    CHECK(acc2.correct == 1, "one peak matches one keypoint only: %lld", (long long)acc2.correct);
    kp[2] = 3; /* a visible keypoint with joint 3 of 1 */
    CHECK(st_pck_add(&acc2, h, 1, 1, 8, 2, kp, 3, 0.05, 0.5) == ST_ERR_ARG && strstr(st_errmsg(), "joint 3"), "bad joint: %s", st_errmsg());
}

int main(void) {
    test_determinism();
    test_images_and_masks();
    test_balance();
    test_keypoints_heatmaps();
    test_confusion_hand();
    test_against_numpy();
    test_perfect_and_pck_hand();
    return test_done("test_shapes");
}
