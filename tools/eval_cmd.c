/* eval_cmd.c - `stride eval MODEL --weights W --data SPEC`: a trained network's metrics on
 * a data set (accuracy, top-5, per-class precision and recall and the confusion matrix for
 * classification; pixel accuracy and IoU for segmentation; PCK for keypoints), as text, as
 * JSON (--json) and as pictures (--confusion, --masks, --heatmaps). The numbers come from
 * cli_evaluate (evaluate.c), the same code `stride train` evaluates with. */
#include "cli.h"
#include "plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Loads W into net: a weights file, or a checkpoint (whose optimiser and RNG entries are skipped). */
static int load_weights(st_net *net, const char *path) {
    st_tensors ts, view;
    st_tensors_init(&ts);
    if (st_safetensors_load(path, &ts)) return cli_fail();
    st_tensors_init(&view);
    view.names = malloc(sizeof *view.names * (ts.n ? ts.n : 1));
    view.arrays = malloc(sizeof *view.arrays * (ts.n ? ts.n : 1));
    int rc = 0;
    if (!view.names || !view.arrays) rc = cli_error("out of memory");
    for (int i = 0; !rc && i < ts.n; i++)
        if (strncmp(ts.names[i], "optim.", 6) && strncmp(ts.names[i], "rng.", 4)) {
            view.names[view.n] = ts.names[i];
            view.arrays[view.n++] = ts.arrays[i];
        }
    if (!rc && st_net_set_weights(net, &view)) rc = cli_error("%s: %s", path, st_errmsg());
    free(view.names); /* (the entries belong to ts) */
    free(view.arrays);
    st_tensors_free(&ts);
    return rc;
}

static int count_names(char **names) {
    int n = 0;
    while (names && names[n]) n++;
    return n;
}

/* Class c's name, or its number. */
static const char *class_name(const cli_data *d, int c, char *buf, size_t len) {
    if (c < count_names(d->class_names)) return d->class_names[c];
    snprintf(buf, len, "%d", c);
    return buf;
}

static void pct_or_dash(double v, char *buf, size_t len) {
    if (isnan(v)) snprintf(buf, len, "-");
    else snprintf(buf, len, "%.2f %%", 100 * v);
}

static void print_confusion(const cli_data *d, const st_confusion *cf) {
    int K = st_confusion_classes(cf);
    const int64_t *c = st_confusion_counts(cf);
    if (K > 30) {
        printf("confusion matrix: %d classes, too many to print (--confusion PNG draws it, --json writes it)\n", K);
        return;
    }
    int64_t mx = 1;
    for (int i = 0; i < K * K; i++) if (c[i] > mx) mx = c[i];
    int w = snprintf(NULL, 0, "%lld", (long long)mx);
    if (w < 3) w = 3;
    printf("confusion matrix (rows: true class, columns: predicted class)\n%4s", "");
    for (int p = 0; p < K; p++) printf(" %*d", w, p);
    printf("\n");
    for (int t = 0; t < K; t++) {
        char nb[16];
        printf("%4d", t);
        for (int p = 0; p < K; p++) printf(" %*lld", w, (long long)c[t * K + p]);
        printf("   %s\n", class_name(d, t, nb, sizeof nb));
    }
}

/* ---------------------------------------------------------------- JSON */
static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.10g", v);
    else fprintf(f, "null");
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(f, "\\u%04x", *s);
        else fputc(*s, f);
    }
    fputc('"', f);
}

static void json_array(FILE *f, const char *key, const double *v, int n) {
    fprintf(f, ",\n  \"%s\": [", key);
    for (int i = 0; i < n; i++) {
        if (i) fprintf(f, ", ");
        json_num(f, v[i]);
    }
    fprintf(f, "]");
}

static int write_json(const char *path, const char *model, const char *weights, const char *spec, const char *split,
                      const cli_data *d, const cli_metrics *m, int normalized) {
    FILE *f = fopen(path, "w");
    if (!f) return cli_error("cannot write '%s'", path);
    fprintf(f, "{\n  \"model\": ");
    json_str(f, model);
    fprintf(f, ",\n  \"weights\": ");
    if (weights) json_str(f, weights); else fprintf(f, "null");
    fprintf(f, ",\n  \"data\": ");
    json_str(f, spec);
    fprintf(f, ",\n  \"split\": \"%s\",\n  \"task\": \"%s\",\n  \"normalized\": %s,\n  \"n\": %lld", split,
            cli_task_name(d->task), normalized ? "true" : "false", (long long)m->n);
    const char *keys[] = {"loss", "error", "accuracy", "top5", "pixel_acc", "miou", "pck"};
    double vals[] = {m->loss, m->error, 1 - m->error, m->top5, m->pixel_acc, m->miou, m->pck};
    for (int i = 0; i < 7; i++) {
        fprintf(f, ",\n  \"%s\": ", keys[i]);
        json_num(f, vals[i]);
    }
    if (d->task == TASK_KEYPOINTS)
        fprintf(f, ",\n  \"keypoints\": %lld, \"keypoints_correct\": %lld, \"peaks\": %lld", (long long)m->pck_counts.keypoints,
                (long long)m->pck_counts.correct, (long long)m->pck_counts.peaks);
    if (m->confusion) {
        int K = st_confusion_classes(m->confusion);
        double *a = malloc(sizeof(double) * 3 * K);
        if (a) {
            st_confusion_precision_recall(m->confusion, a, a + K);
            st_confusion_iou(m->confusion, a + 2 * K);
            json_array(f, "precision", a, K);
            json_array(f, "recall", a + K, K);
            if (d->task == TASK_SEGMENT) json_array(f, "iou", a + 2 * K, K);
            free(a);
        }
        if (count_names(d->class_names) >= K) {
            fprintf(f, ",\n  \"class_names\": [");
            for (int c = 0; c < K; c++) {
                if (c) fprintf(f, ", ");
                json_str(f, d->class_names[c]);
            }
            fprintf(f, "]");
        }
        const int64_t *c = st_confusion_counts(m->confusion);
        fprintf(f, ",\n  \"confusion\": [");
        for (int t = 0; t < K; t++) {
            fprintf(f, "%s[", t ? ", " : "");
            for (int p = 0; p < K; p++) fprintf(f, "%s%lld", p ? ", " : "", (long long)c[t * K + p]);
            fprintf(f, "]");
        }
        fprintf(f, "]");
    }
    fprintf(f, "\n}\n");
    if (fclose(f)) return cli_error("cannot write '%s'", path);
    return 0;
}

/* ---------------------------------------------------------------- pictures of predictions */
/* Masks or heatmaps of the first `count` samples with the model's predictions. */
static int draw_predictions(st_net *net, const st_dataset *ds, int count, const char *masks,
                            const char *heat, int classes) {
    if (ds->ndim != 3) return cli_error("eval: --masks and --heatmaps need images (C, H, W)");
    st_tensor x = {4, {count, ds->shape[0], ds->shape[1], ds->shape[2]}, ds->x};
    const st_tensor *y;
    if (st_net_forward(net, &x, 0, &y)) return cli_fail();
    int C = ds->shape[0], H = ds->shape[1], W = ds->shape[2], rc = 0;
    if (masks) {
        size_t plane = (size_t)H * W;
        int K = y->shape[1];
        int32_t *pred = malloc(sizeof(int32_t) * plane * count);
        if (!pred) return cli_error("out of memory");
        for (int i = 0; i < count; i++)
            for (size_t k = 0; k < plane; k++) {
                const float *z = y->data + (size_t)i * K * plane + k;
                int best = 0;
                for (int c = 1; c < K; c++) if (z[c * plane] > z[best * plane]) best = c;
                pred[i * plane + k] = best;
            }
        if (plot_masks(masks, ds->x, count, C, H, W, ds->labels, pred, classes)) rc = cli_error("eval: %s", plot_errmsg());
        else printf("wrote %s (image, true mask, predicted mask of the first %d samples)\n", masks, count);
        free(pred);
    }
    if (heat) {
        if (plot_heatmaps(heat, ds->x, count, C, H, W, y->data, y->shape[1], y->shape[2], y->shape[3], ds->targets))
            rc = cli_error("eval: %s", plot_errmsg());
        else printf("wrote %s (predicted and true heatmaps of the first %d samples)\n", heat, count);
    }
    return rc;
}

/* ---------------------------------------------------------------- the command */
int cmd_eval(int argc, char **argv) {
    cli_opt opts[] = {
        {"--weights", "W.safetensors", "trained weights (a weights file or a checkpoint)", NULL},
        {"--data", "SPEC", "fashion-mnist, mnist, mnist1d, shapes[:opts], shapes-keypoints[:opts], a folder, DIR:keypoints", NULL},
        {"--split", "test|train", "which split to evaluate (test)", NULL},
        {"--batch", "B", "samples per forward pass (100)", NULL},
        {"--n", "N", "evaluate only the first N samples (default: all)", NULL},
        {"--confusion", "PNG", "draw the confusion matrix (classification, segmentation)", NULL},
        {"--masks", "PNG", "draw images, true and predicted masks of the first --count samples (segmentation)", NULL},
        {"--heatmaps", "PNG", "draw predicted and true heatmaps of the first --count samples (keypoints)", NULL},
        {"--count", "K", "samples drawn by --masks and --heatmaps (4)", NULL},
        {"--json", "FILE", "write the numbers as JSON", NULL},
        {"--seed", "N", "without --weights: evaluate an untrained net with seeded He initialisation", NULL},
        {"--threads", "N", "threads (default: all cores)", NULL},
        {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("eval", "MODEL --weights W --data SPEC [--split test|train] [--n N] [--json FILE] [pictures]",
                                 opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("eval needs a MODEL (a built-in name or a model file)");
    const char *weights = opt_get(opts, "--weights"), *spec = opt_get(opts, "--data");
    const char *split = opt_get(opts, "--split") ? opt_get(opts, "--split") : "test";
    if (!spec) return cli_error("eval needs --data SPEC (fashion-mnist, mnist1d, shapes, a folder, ...)");
    if (!weights && !opt_get(opts, "--seed"))
        return cli_error("eval needs --weights W.safetensors (or --seed N to evaluate an untrained, seeded network)");
    if (strcmp(split, "test") && strcmp(split, "train")) return cli_error("--split must be 'test' or 'train', not '%s'", split);
    long batch, nmax, count, seed, threads;
    if (opt_int(opts, "--batch", 100, 1, 1 << 20, &batch) || opt_int(opts, "--n", 0, 1, 2147483647L, &nmax) ||
        opt_int(opts, "--count", 4, 1, 64, &count) || opt_int(opts, "--seed", 1, 0, 0x7fffffffL, &seed) ||
        opt_int(opts, "--threads", 0, 0, 1024, &threads))
        return 2;
    st_set_threads((int)threads);

    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    if (weights) rc = load_weights(net, weights);
    else if (st_net_init(net, ST_INIT_HE, (uint64_t)seed)) rc = cli_fail();
    if (rc) { st_net_free(net); return rc; }
    cli_data d;
    if (cli_data_load(spec, &d)) { st_net_free(net); return 1; }
    st_dataset *ds = strcmp(split, "test") ? &d.train : &d.test;
    const float *kp = strcmp(split, "test") ? d.train_kp : d.test_kp;
    cli_metrics m = {0};
    int normalized = 0;
    const char *masks = opt_get(opts, "--masks"), *heat = opt_get(opts, "--heatmaps"), *conf_png = opt_get(opts, "--confusion");
    if (ds->n == 0) { rc = cli_error("%s has no %s split (try --split train)", spec, split); goto done; }
    if (masks && d.task != TASK_SEGMENT) { rc = cli_error("eval: --masks needs segmentation data, but %s is a %s task", spec, cli_task_name(d.task)); goto done; }
    if (heat && d.task != TASK_KEYPOINTS) { rc = cli_error("eval: --heatmaps needs keypoint data, but %s is a %s task", spec, cli_task_name(d.task)); goto done; }
    if (conf_png && d.task == TASK_KEYPOINTS) { rc = cli_error("eval: --confusion needs classes, but %s is a keypoints task", spec); goto done; }

    /* the normalisation the model was trained with */
    if (weights) {
        int C = ds->shape[0];
        float *mean = malloc(sizeof(float) * C), *std = malloc(sizeof(float) * C);
        int found = mean && std ? cli_weights_normalization(weights, mean, std, C) : -1;
        if (found == 1) {
            st_dataset_normalize(ds, mean, std);
            normalized = 1;
            printf("inputs normalised as in training (%s metadata): mean", weights);
            for (int c = 0; c < C; c++) printf("%s%g", c ? "," : " ", mean[c]);
            printf(", std");
            for (int c = 0; c < C; c++) printf("%s%g", c ? "," : " ", std[c]);
            printf("\n");
        }
        free(mean);
        free(std);
        if (found < 0) { rc = 1; goto done; }
    }
    if (cli_evaluate(net, ds, kp, d.max_kp, d.kp_stride, d.task, (int)batch, nmax, 1, &m)) { rc = 1; goto done; }

    printf("%s%s%s on %s\n", pos[0], weights ? " with " : " (untrained)", weights ? weights : "", d.desc);
    printf("%s split: %lld of %d samples, task %s\n", split, (long long)m.n, ds->n, cli_task_name(d.task));
    char a[32], b[32], nb[16];
    if (d.task == TASK_CLASSIFY) {
        pct_or_dash(1 - m.error, a, sizeof a);
        pct_or_dash(m.top5, b, sizeof b);
        printf("loss %.4f (cross-entropy)\naccuracy %s (error %.2f %%), top-5 %s\n", m.loss, a, 100 * m.error, b);
    } else if (d.task == TASK_SEGMENT) {
        printf("loss %.4f (per-pixel cross-entropy)\npixel accuracy %.2f %%, mean IoU %.4f\n", m.loss, 100 * m.pixel_acc, m.miou);
    } else {
        int last = st_net_num_nodes(net) - 1;
        printf("loss %.6g (MSE%s)\n", m.loss, !strcmp(st_net_node_op(net, last), "supervise") ? ", summed over the supervised stacks" : "");
        if (kp)
            printf("PCK@0.1 %.4f: %lld of %lld visible keypoints found within %.1f pixels (%lld peaks predicted)\n", m.pck,
                   (long long)m.pck_counts.correct, (long long)m.pck_counts.keypoints, 0.1 * ds->shape[ds->ndim - 1],
                   (long long)m.pck_counts.peaks);
        else printf("PCK: no keypoints in this data set (only the loss)\n");
    }
    if (m.confusion) {
        int K = st_confusion_classes(m.confusion);
        const int64_t *c = st_confusion_counts(m.confusion);
        double *pr = malloc(sizeof(double) * 3 * K);
        if (!pr) { rc = cli_error("out of memory"); goto done; }
        st_confusion_precision_recall(m.confusion, pr, pr + K);
        st_confusion_iou(m.confusion, pr + 2 * K);
        int w = 5;
        for (int k = 0; k < K; k++) {
            int l = (int)strlen(class_name(&d, k, nb, sizeof nb));
            if (l > w) w = l;
        }
        printf("%4s %-*s %10s %10s%s %12s\n", "", w, "class", "precision", "recall", d.task == TASK_SEGMENT ? "        IoU" : "",
               d.task == TASK_SEGMENT ? "pixels" : "samples");
        for (int k = 0; k < K; k++) {
            int64_t support = 0;
            for (int p = 0; p < K; p++) support += c[k * K + p];
            pct_or_dash(pr[k], a, sizeof a);
            pct_or_dash(pr[K + k], b, sizeof b);
            printf("%4d %-*s %10s %10s", k, w, class_name(&d, k, nb, sizeof nb), a, b);
            if (d.task == TASK_SEGMENT) {
                if (isnan(pr[2 * K + k])) printf(" %10s", "-");
                else printf(" %10.4f", pr[2 * K + k]);
            }
            printf(" %12lld\n", (long long)support);
        }
        free(pr);
        print_confusion(&d, m.confusion);
        if (conf_png) {
            const char *const *names = count_names(d.class_names) >= K ? (const char *const *)d.class_names : NULL;
            if (plot_confusion(conf_png, c, K, names)) rc = cli_error("eval: %s", plot_errmsg());
            else printf("wrote %s\n", conf_png);
        }
    }
    if (!rc && (masks || heat))
        rc = draw_predictions(net, ds, (int)(count < ds->n ? count : ds->n), masks, heat, m.confusion ? st_confusion_classes(m.confusion) : 0);
    if (!rc && opt_get(opts, "--json")) {
        rc = write_json(opt_get(opts, "--json"), pos[0], weights, spec, split, &d, &m, normalized);
        if (!rc) printf("wrote %s\n", opt_get(opts, "--json"));
    }
done:
    st_confusion_free(m.confusion);
    cli_data_free(&d);
    st_net_free(net);
    return rc;
}
