/* evaluate.c - the metrics of a network on a data set, shared by `stride train` (between
 * steps) and `stride eval`.
 *
 * One pass in eval mode over the first samples, batch by batch, in order, straight from the
 * data set's memory (no copies, no loader thread, no augmentation). Per task:
 *   classify   (N, K) logits against labels: cross-entropy, error, top-5, confusion
 *   segment    (N, K, H, W) logits against (N, H, W) masks: per-pixel cross-entropy, pixel
 *              accuracy, mean IoU (negative labels, the data sets' "ignore", are skipped)
 *   keypoints  heatmaps against DENSE targets: MSE through st_net_loss (so a `supervise`
 *              output sums the stacks' losses, as in training) and PCK@0.1 from keypoints
 * The parameters, buffers (batch-norm statistics) and the dropout RNG are left alone: an
 * eval-mode forward reads them only. The only state written is activations and, for the
 * MSE, the output's loss gradient, both rewritten by the next training step. */
#include "cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* Checks the first batch's output against the task and the data set. */
static int check_output(const st_tensor *y, const st_dataset *ds, cli_task task) {
    char ys[96], s[96];
    st_shape_str(y->ndim, y->shape, ys, sizeof ys);
    if (task == TASK_CLASSIFY) {
        if (y->ndim != 2)
            return cli_error("evaluation: the model's output %s has positions (a segmentation or heatmap model), but the data set has one "
                         "class label per sample: a classifier must output (N, classes)", ys);
        if (y->shape[1] < ds->classes)
            return cli_error("evaluation: the model has %d outputs (%s), but the data set has %d classes", y->shape[1], ys, ds->classes);
    } else if (task == TASK_SEGMENT) {
        int H = ds->shape[ds->ndim - 2], W = ds->shape[ds->ndim - 1];
        if (y->ndim == 2)
            return cli_error("evaluation: the model's output %s is one class per sample (a classifier), but the data set has per-pixel "
                         "class masks of %dx%d: a segmentation model must output (N, classes, %d, %d)", ys, H, W, H, W);
        if (y->ndim != 4 || y->shape[2] != H || y->shape[3] != W)
            return cli_error("evaluation: the model's output %s does not fit the data set's masks of %dx%d: a segmentation model must "
                         "output (N, classes, %d, %d)", ys, H, W, H, W);
        if (y->shape[1] < ds->classes)
            return cli_error("evaluation: the model has %d output channels (%s), but the masks have %d classes", y->shape[1], ys, ds->classes);
    } else {
        int same = y->ndim == ds->tndim + 1 && !memcmp(y->shape + 1, ds->tshape, sizeof(int) * ds->tndim);
        if (!same) {
            int full[ST_MAX_DIMS];
            full[0] = y->shape[0];
            memcpy(full + 1, ds->tshape, sizeof(int) * ds->tndim);
            return cli_error("evaluation: the model's output %s does not match the data set's heatmap targets %s", ys,
                         st_shape_str(ds->tndim + 1, full, s, sizeof s));
        }
    }
    return 0;
}

/* Cross-entropy of logits (classes, with `stride` between classes) against label; the
 * log-sum-exp in double. */
static double cross_entropy(const float *z, int classes, size_t stride, int label) {
    double mx = -INFINITY;
    for (int c = 0; c < classes; c++) if (z[c * stride] > mx) mx = z[c * stride];
    if (!isfinite(mx)) return NAN;
    double sum = 0;
    for (int c = 0; c < classes; c++) sum += exp(z[c * stride] - mx);
    return mx + log(sum) - z[(size_t)label * stride];
}

int cli_evaluate(st_net *net, const st_dataset *ds, const float *kp, int max_kp, int kp_stride, cli_task task, int batch,
                 int64_t max_samples, int want_confusion, cli_metrics *m) {
    memset(m, 0, sizeof *m);
    m->loss = m->error = m->top5 = m->pixel_acc = m->miou = m->pck = NAN;
    static const st_target_kind want_kind[] = {ST_TARGET_CLASS, ST_TARGET_MASK, ST_TARGET_DENSE};
    static const char *const kind_names[] = {"class labels", "per-pixel class masks", "dense targets (heatmaps)"};
    if (task < TASK_CLASSIFY || task > TASK_KEYPOINTS) return cli_error("evaluation: unknown task %d", (int)task);
    if (!ds || ds->n < 1) return cli_error("evaluation: the data set is empty");
    if (ds->kind != want_kind[task])
        return cli_error("evaluation: the task is %s, but the data set holds %s", cli_task_name(task), kind_names[ds->kind]);
    if (batch < 1) return cli_error("evaluation: batch size %d must be at least 1", batch);
    if (task == TASK_KEYPOINTS && kp && (max_kp < 1 || kp_stride < 1))
        return cli_error("evaluation: keypoints need max_kp >= 1 and kp_stride >= 1 (got %d and %d)", max_kp, kp_stride);
    if (task == TASK_SEGMENT && ds->ndim != 3) return cli_error("evaluation: masks need (C, H, W) samples");
    int64_t n = max_samples > 0 && max_samples < ds->n ? max_samples : ds->n;
    const int64_t per = st_dataset_sample_size(ds);
    int64_t tper = 1;
    for (int k = 0; k < ds->tndim; k++) tper *= ds->tshape[k];
    const int64_t plane = task == TASK_SEGMENT ? (int64_t)ds->shape[1] * ds->shape[2] : 1;

    st_confusion *conf = NULL;
    int32_t *lab = NULL; /* segmentation labels with every negative one mapped to INT32_MIN (ignored) */
    int classes = 0, rc = 0;
    double loss_sum = 0;
    int64_t counted = 0, top5 = 0;
    st_pck_counts pck = {0, 0, 0};
    for (int64_t s = 0; s < n && !rc; s += batch) {
        int b = (int)(n - s < batch ? n - s : batch);
        st_tensor x = {ds->ndim + 1, {b}, ds->x + s * per};
        memcpy(x.shape + 1, ds->shape, sizeof(int) * ds->ndim);
        const st_tensor *y;
        if (st_net_run(net, &x, &y)) { /* inference: only the output (and the heads) are kept */
            char sh[96];
            rc = cli_error("evaluation: %s (the data set's samples are %s)", st_errmsg(), st_shape_str(ds->ndim, ds->shape, sh, sizeof sh));
            break;
        }
        if (s == 0) {
            if ((rc = check_output(y, ds, task))) break;
            if (task != TASK_KEYPOINTS) {
                classes = y->shape[1];
                if (st_confusion_new(classes, &conf)) { rc = cli_error("evaluation: %s", st_errmsg()); break; }
            }
            if (task == TASK_SEGMENT && !(lab = malloc(sizeof(int32_t) * (size_t)batch * plane))) {
                rc = cli_error("evaluation: out of memory");
                break;
            }
        }
        if (task == TASK_CLASSIFY) {
            const int32_t *labels = ds->labels + s;
            for (int i = 0; i < b; i++) {
                if (labels[i] < 0 || labels[i] >= classes) {
                    rc = cli_error("evaluation: label %d of sample %lld is out of range for the model's %d outputs", labels[i],
                               (long long)(s + i), classes);
                    break;
                }
                loss_sum += cross_entropy(y->data + (size_t)i * classes, classes, 1, labels[i]);
            }
            counted += b;
            int64_t c5 = 0;
            if (!rc && st_confusion_add_logits(conf, y->data, labels, b, classes, 1, INT32_MIN)) rc = cli_error("evaluation: %s", st_errmsg());
            if (!rc && classes >= 5 && st_topk_correct(y->data, labels, b, classes, 5, &c5)) rc = cli_error("evaluation: %s", st_errmsg());
            top5 += c5;
        } else if (task == TASK_SEGMENT) {
            const int32_t *labels = ds->labels + s * plane;
            for (int64_t i = 0; i < b * plane && !rc; i++) {
                int32_t l = labels[i];
                lab[i] = l < 0 ? INT32_MIN : l;
                if (l < 0) continue;
                if (l >= classes) {
                    rc = cli_error("evaluation: label %d of sample %lld at pixel %lld is out of range for the model's %d output channels", l,
                               (long long)(s + i / plane), (long long)(i % plane), classes);
                    break;
                }
                const float *z = y->data + (size_t)(i / plane) * classes * plane + i % plane;
                loss_sum += cross_entropy(z, classes, (size_t)plane, l);
                counted++;
            }
            if (!rc && st_confusion_add_logits(conf, y->data, lab, b, classes, (int)plane, INT32_MIN)) rc = cli_error("evaluation: %s", st_errmsg());
        } else {
            st_tensor t = {ds->tndim + 1, {b}, ds->targets + s * tper};
            memcpy(t.shape + 1, ds->tshape, sizeof(int) * ds->tndim);
            float L = NAN;
            st_status ls = st_net_loss(net, ST_LOSS_MSE, NULL, &t, &L);
            if (ls && ls != ST_ERR_NUMERIC) { rc = cli_error("evaluation: %s", st_errmsg()); break; }
            loss_sum += (double)L * b; /* st_net_loss is the batch's mean */
            counted += b;
            if (kp) {
                if (y->ndim != 4 || y->shape[2] != y->shape[3]) {
                    char sh[96];
                    rc = cli_error("evaluation: PCK needs square heatmaps (N, joints, S, S), not %s", st_shape_str(y->ndim, y->shape, sh, sizeof sh));
                    break;
                }
                if (st_pck_add(&pck, y->data, b, y->shape[1], y->shape[2], kp_stride, kp + s * max_kp * 4, max_kp, 0.1, 0.5))
                    rc = cli_error("evaluation: %s", st_errmsg());
            }
        }
    }
    free(lab);
    if (rc) { st_confusion_free(conf); return rc; }
    m->n = n;
    m->loss = counted ? loss_sum / (double)counted : NAN;
    if (task == TASK_CLASSIFY) {
        m->error = 1 - st_confusion_accuracy(conf);
        if (classes >= 5) m->top5 = (double)top5 / (double)n;
    } else if (task == TASK_SEGMENT) {
        m->pixel_acc = st_confusion_accuracy(conf);
        m->miou = st_confusion_mean_iou(conf);
    } else {
        m->pck_counts = pck;
        if (kp) m->pck = st_pck(&pck);
    }
    if (want_confusion && conf) m->confusion = conf;
    else st_confusion_free(conf);
    return 0;
}

/* ---------------------------------------------------------------- normalisation in weights files */
/* "a,b,c" into out (exactly `channels` numbers); 0 or -1 */
static int parse_floats(const char *s, float *out, int channels, int *count) {
    *count = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v)) return -1;
        if (*count < channels) out[*count] = (float)v;
        (*count)++;
        p = end;
        while (*p == ' ') p++;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return *count == channels ? 0 : -1;
}

int cli_weights_normalization(const char *weights_path, float *mean, float *std, int channels) {
    st_tensors ts;
    st_tensors_init(&ts);
    if (st_safetensors_load(weights_path, &ts)) {
        fprintf(stderr, "stride: %s\n", st_errmsg());
        return -1;
    }
    const char *ms = st_tensors_meta(&ts, CLI_META_MEAN), *ss = st_tensors_meta(&ts, CLI_META_STD);
    int rc = 0, nm = 0, ns = 0;
    if (!ms && !ss) rc = 0;
    else if (!ms || !ss) {
        fprintf(stderr, "stride: %s: metadata has '%s' but not '%s'\n", weights_path, ms ? CLI_META_MEAN : CLI_META_STD,
                ms ? CLI_META_STD : CLI_META_MEAN);
        rc = -1;
    } else if (parse_floats(ms, mean, channels, &nm) || parse_floats(ss, std, channels, &ns)) {
        fprintf(stderr, "stride: %s: metadata '%s' = \"%s\" and '%s' = \"%s\" must each be %d comma-separated number(s), "
                "one per input channel of the data\n", weights_path, CLI_META_MEAN, ms, CLI_META_STD, ss, channels);
        rc = -1;
    } else {
        rc = 1;
        for (int c = 0; c < channels; c++)
            if (!(std[c] > 0)) {
                fprintf(stderr, "stride: %s: metadata '%s' holds %g for channel %d: a standard deviation must be > 0\n",
                        weights_path, CLI_META_STD, std[c], c);
                rc = -1;
                break;
            }
    }
    st_tensors_free(&ts);
    return rc;
}
