/* train.c - `stride train` and `stride experiment`: the training loop.
 *
 * One loop for every task: batches come from the loader (shuffled and augmented in a
 * background thread, every random choice a function of seed, epoch and position), the
 * learning rate from the schedule (a closed form of the step), and the state that a
 * step changes -- weights, batch-norm buffers, optimiser moments, the dropout RNG -- is
 * what a checkpoint holds. So a run resumed from a checkpoint at step s sees the same
 * batches, rates and random numbers as one that went straight through, and ends with
 * the same bits. Evaluation runs in eval mode and changes none of that state. */
#include "cli.h"
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- curves */
static int curve_add(train_curve *c, long step, double trl, double tre, double tel, double tee, double sec) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 128;
        long *st = realloc(c->step, sizeof(long) * cap);
        if (st) c->step = st;
        double **cols[] = {&c->train_loss, &c->train_err, &c->test_loss, &c->test_err, &c->seconds};
        for (int i = 0; i < 5; i++) {
            double *p = realloc(*cols[i], sizeof(double) * cap);
            if (!p) return 1;
            *cols[i] = p;
        }
        if (!st) return 1;
        c->cap = cap;
    }
    c->step[c->n] = step;
    c->train_loss[c->n] = trl; c->train_err[c->n] = tre;
    c->test_loss[c->n] = tel; c->test_err[c->n] = tee;
    c->seconds[c->n] = sec;
    c->n++;
    return 0;
}

void free_curve(train_curve *c) {
    free(c->step); free(c->train_loss); free(c->train_err); free(c->test_loss); free(c->test_err); free(c->seconds);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- helpers */
/* 1 if every parameter gradient is finite (x - x is 0 for finite x, else NaN) */
static int grads_finite(st_net *net) {
    for (int i = 0; i < st_net_num_params(net); i++) {
        const st_tensor *g = st_net_param_grad(net, i);
        size_t n = st_tensor_numel(g);
        int bad = 0;
        for (size_t k = 0; k < n; k++) bad |= !(g->data[k] - g->data[k] == 0);
        if (bad) return 0;
    }
    return 1;
}

static void fmt_time(double s, char *buf, size_t len) {
    if (!(s >= 0) || s > 1e7) snprintf(buf, len, "?");
    else if (s < 60) snprintf(buf, len, "%.0fs", s);
    else if (s < 3600) snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* "a,b,c" of n floats */
static void fmt_floats(const float *v, int n, char *buf, size_t len) {
    buf[0] = 0;
    for (int i = 0; i < n; i++) snprintf(buf + strlen(buf), len - strlen(buf), "%s%.9g", i ? "," : "", v[i]);
}

/* The main metric of a task, as an error to print: classification error, 1 - mIoU, 1 - PCK. */
static double main_error(cli_task t, const cli_metrics *m) {
    return t == TASK_CLASSIFY ? m->error : t == TASK_SEGMENT ? 1 - m->miou : 1 - m->pck;
}

static const char *metric_name(cli_task t) { return t == TASK_CLASSIFY ? "err" : t == TASK_SEGMENT ? "mIoU" : "PCK"; }
static double metric_value(cli_task t, const cli_metrics *m) {
    return t == TASK_CLASSIFY ? 100 * m->error : t == TASK_SEGMENT ? m->miou : m->pck;
}

/* JSON: a number or null */
static void jnum(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.6g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

/* The run's settings that must agree for a resume to continue the same run. */
static void settings_text(const train_opts *o, const char *data, char *buf, size_t len) {
    const st_optim_conf *c = &o->optim;
    snprintf(buf, len,
             "data=%s batch=%ld optim=%d lr=%.9g momentum=%.9g wd=%.9g nesterov=%d betas=%.9g,%.9g eps=%.9g "
             "schedule=%s clip=%.9g smoothing=%.9g augment=%d,%d,%d,%d normalize=%d val=%ld init=%d seed=%llu",
             data ? data : "mnist1d", o->batch, (int)c->kind, c->lr, c->momentum, c->weight_decay, c->nesterov, c->beta1,
             c->beta2, c->eps, o->schedule ? o->schedule : "constant", o->clip, o->label_smoothing, o->augment.crop_pad,
             o->augment.hflip, o->augment.translate, o->augment.circular_shift, o->normalize, o->val, (int)o->init,
             (unsigned long long)o->seed);
}

/* ---------------------------------------------------------------- one training run */
typedef struct {
    cli_metrics train, val, test;
    int has_val, has_test;
} eval_point;

static void metrics_nan(cli_metrics *m) {
    memset(m, 0, sizeof *m);
    m->loss = m->error = m->top5 = m->pixel_acc = m->miou = m->pck = NAN;
}

static int evaluate_all(st_net *net, const cli_data *d, const st_dataset *val, const train_opts *o, eval_point *e) {
    int B = o->batch > 256 ? (int)o->batch : 256;
    metrics_nan(&e->train);
    metrics_nan(&e->val);
    metrics_nan(&e->test);
    e->has_val = val && val->n > 0;
    e->has_test = d->test.n > 0;
    long ntrain = o->eval_train > 0 ? o->eval_train : d->train.n;
    if (cli_evaluate(net, &d->train, d->train_kp, d->max_kp, d->kp_stride, d->task, B, ntrain, 0, &e->train)) return 1;
    /* the validation samples' keypoints are not split off with them: PCK needs the test split */
    if (e->has_val && d->task != TASK_KEYPOINTS &&
        cli_evaluate(net, val, NULL, 0, d->kp_stride, d->task, B, 0, 0, &e->val))
        return 1;
    if (e->has_test && cli_evaluate(net, &d->test, d->test_kp, d->max_kp, d->kp_stride, d->task, B, 0, 0, &e->test))
        return 1;
    return 0;
}

static void log_point(FILE *log, cli_task task, long step, double epoch, double lr, const eval_point *e, double sec,
                      double ips, double wait) {
    fprintf(log, "{\"step\": %ld, \"epoch\": %.4g", step, epoch);
    jnum(log, "lr", lr);
    jnum(log, "train_loss", e->train.loss);
    jnum(log, "train_error", main_error(task, &e->train));
    jnum(log, "test_loss", e->test.loss);
    jnum(log, "test_error", main_error(task, &e->test));
    if (task == TASK_CLASSIFY) jnum(log, "test_top5", e->test.top5);
    if (task == TASK_SEGMENT) {
        jnum(log, "test_miou", e->test.miou);
        jnum(log, "test_pixel_acc", e->test.pixel_acc);
        jnum(log, "train_miou", e->train.miou);
    }
    if (task == TASK_KEYPOINTS) {
        jnum(log, "test_pck", e->test.pck);
        jnum(log, "train_pck", e->train.pck);
    }
    if (e->has_val) {
        jnum(log, "val_loss", e->val.loss);
        jnum(log, "val_error", main_error(task, &e->val));
    }
    fprintf(log, ", \"seconds\": %.3f", sec);
    jnum(log, "images_per_s", ips);
    jnum(log, "data_wait", wait);
    fprintf(log, "}\n");
    fflush(log);
}

static void progress_line(const train_opts *o, cli_task task, long step, long total, long bpe, double loss,
                          const eval_point *e, double ips, double eta) {
    int width = 20, filled = total ? (int)(width * (double)step / total) : width;
    char bar[32], t[32], rate[32], metric[64] = "";
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fmt_time(eta, t, sizeof t);
    fmt_thousands((int64_t)(ips + 0.5), rate, sizeof rate);
    if (e && e->has_test) snprintf(metric, sizeof metric, "  test %s %.4g", metric_name(task), metric_value(task, &e->test));
    fprintf(stderr, "\r%s%sepoch %ld/%ld step %ld/%ld [%s] loss %.4f%s  %s img/s  ETA %s\033[K", o->label ? o->label : "",
            o->label ? " " : "", bpe ? (step + bpe - 1) / bpe : 0, bpe ? (total + bpe - 1) / bpe : 0, step, total, bar, loss,
            metric, rate, t);
    fflush(stderr);
}

/* The weights with the data normalisation in the metadata ("data.mean", "data.std"), so
 * that `stride eval` and `stride run` users can normalise their inputs the same way. */
static int save_weights(st_net *net, const char *path, const train_opts *o, const float *mean, const float *std, int C) {
    st_tensors ts;
    st_tensors_init(&ts);
    char buf[1024];
    st_status rc = st_net_get_weights(net, &ts);
    if (!rc && o->normalize) {
        fmt_floats(mean, C, buf, sizeof buf);
        rc = st_tensors_set_meta(&ts, "data.mean", buf);
        fmt_floats(std, C, buf, sizeof buf);
        if (!rc) rc = st_tensors_set_meta(&ts, "data.std", buf);
    }
    if (!rc) rc = st_safetensors_save(path, &ts);
    st_tensors_free(&ts);
    return rc ? cli_fail() : 0;
}

static int save_checkpoint(st_net *net, st_optim *opt, const char *path, long step, double seconds, const char *settings,
                           const train_opts *o, const float *mean, const float *std, int C) {
    st_tensors meta;
    st_tensors_init(&meta);
    char buf[1024];
    snprintf(buf, sizeof buf, "%ld", step);
    st_status rc = st_tensors_set_meta(&meta, "train.step", buf);
    snprintf(buf, sizeof buf, "%.3f", seconds);
    if (!rc) rc = st_tensors_set_meta(&meta, "train.seconds", buf);
    if (!rc) rc = st_tensors_set_meta(&meta, "train.settings", settings);
    if (!rc && o->normalize) {
        fmt_floats(mean, C, buf, sizeof buf);
        rc = st_tensors_set_meta(&meta, "data.mean", buf);
        fmt_floats(std, C, buf, sizeof buf);
        if (!rc) rc = st_tensors_set_meta(&meta, "data.std", buf);
    }
    if (!rc) rc = st_checkpoint_save(path, net, opt, &meta);
    st_tensors_free(&meta);
    return rc ? cli_fail() : 0;
}

/* Normalisation and the validation split, done once before training. */
typedef struct {
    float mean[16], std[16];
    int channels;
    st_dataset val;
} prepared;

static int prepare(cli_data *d, const train_opts *o, prepared *p) {
    memset(p, 0, sizeof *p);
    p->channels = d->train.shape[0];
    if (o->normalize) {
        if (p->channels > 16) return cli_error("--normalize handles up to 16 channels, the data has %d", p->channels);
        double m[16], s[16];
        st_dataset_channel_stats(&d->train, m, s);
        for (int c = 0; c < p->channels; c++) {
            p->mean[c] = (float)m[c];
            p->std[c] = s[c] > 0 ? (float)s[c] : 1.0f;
        }
        st_dataset_normalize(&d->train, p->mean, p->std);
        if (d->test.n) st_dataset_normalize(&d->test, p->mean, p->std);
    }
    if (o->val > 0) {
        if (o->val >= d->train.n) return cli_error("--val %ld leaves no training samples (%d in all)", o->val, d->train.n);
        if (d->task == TASK_KEYPOINTS) return cli_error("--val is not available for keypoints (PCK is measured on the test split)");
        if (st_dataset_split(&d->train, (int)o->val, o->seed ^ 0x5A17ULL, &p->val)) return cli_fail();
    }
    return 0;
}

int train_run(st_net *net, cli_data *d, const train_opts *o, train_curve *curve) {
    int rc = 0;
    prepared prep;
    FILE *log = NULL;
    st_optim *opt = NULL;
    st_loader *loader = NULL;
    st_tensors meta;
    st_tensors_init(&meta);
    if ((rc = prepare(d, o, &prep))) return rc;
    st_loss loss_kind = d->task == TASK_KEYPOINTS ? ST_LOSS_MSE : ST_LOSS_CE;
    char settings[1024];
    settings_text(o, d->desc, settings, sizeof settings);

    if (st_net_init(net, o->init, o->seed) || st_optim_new(net, &o->optim, &opt)) { rc = cli_fail(); goto done; }
    st_net_set_label_smoothing(net, (float)o->label_smoothing);
    if (st_loader_new(&d->train, (int)o->batch, 1, 0, &o->augment, o->seed, &loader)) { rc = cli_fail(); goto done; }
    long bpe = (long)st_loader_batches_per_epoch(loader);
    long total = o->epochs > 0 ? o->epochs * bpe : o->steps;
    long eval_every = o->eval_every < 0 ? bpe : o->eval_every;
    long ckpt_every = o->checkpoint_every > 0 ? o->checkpoint_every : eval_every;
    st_schedule sched;
    if (o->schedule) {
        if (st_schedule_parse(o->schedule, o->optim.lr, total, &sched)) { rc = cli_fail(); goto done; }
    } else {
        st_schedule_constant(&sched, o->optim.lr);
    }

    /* resume: weights, buffers, optimiser state, RNG and the step, from one checkpoint */
    long start = 0;
    double seconds0 = 0;
    if (o->resume) {
        /* the settings first: another run's checkpoint fits the net but would not continue this run */
        if (st_safetensors_load(o->resume, &meta)) { rc = cli_fail(); goto done; }
        const char *s = st_tensors_meta(&meta, "train.step"), *set = st_tensors_meta(&meta, "train.settings");
        if (!s || !set) { rc = cli_error("%s: not a checkpoint of stride train (no train.step)", o->resume); goto done; }
        if (strcmp(set, settings)) {
            rc = cli_error("%s was written by a run with other settings, so resuming would not continue it:\n"
                           "  checkpoint: %s\n  this run:   %s", o->resume, set, settings);
            goto done;
        }
        st_tensors_free(&meta);
        st_tensors_init(&meta);
        if (st_checkpoint_load(o->resume, net, opt, &meta)) { rc = cli_fail(); goto done; }
        s = st_tensors_meta(&meta, "train.step");
        start = atol(s);
        if (st_tensors_meta(&meta, "train.seconds")) seconds0 = atof(st_tensors_meta(&meta, "train.seconds"));
        if (start > total) { rc = cli_error("%s is at step %ld, beyond this run's %ld steps", o->resume, start, total); goto done; }
        st_loader_seek(loader, start / bpe, start % bpe);
        if (o->progress) printf("resumed from %s at step %ld (epoch %ld)\n", o->resume, start, start / bpe);
    }
    if (o->log && !(log = fopen(o->log, o->resume ? "a" : "w"))) {
        rc = cli_error("cannot write log '%s': %s", o->log, strerror(errno));
        goto done;
    }

    double t0 = now() - seconds0, train_time = 0, last_show = 0, run_loss = NAN, wait0 = st_loader_wait_seconds(loader);
    long images = 0, last_ckpt = start;
    eval_point e, *shown = NULL;
    for (long step = start;; step++) {
        int do_eval = step == total || (eval_every > 0 && step % eval_every == 0 && (step > start || !o->resume));
        if (do_eval) {
            if (evaluate_all(net, d, &prep.val, o, &e)) { rc = 1; goto done; }
            shown = &e;
            double sec = now() - t0, ips = train_time > 0 ? images / train_time : NAN;
            double wait = train_time > 0 ? (st_loader_wait_seconds(loader) - wait0) / train_time : NAN;
            if (curve && curve_add(curve, step, e.train.loss, main_error(d->task, &e.train), e.test.loss,
                                   main_error(d->task, &e.test), sec)) {
                rc = cli_error("out of memory");
                goto done;
            }
            if (log) log_point(log, d->task, step, bpe ? (double)step / bpe : 0, st_schedule_lr(&sched, step), &e, sec, ips, wait);
            if (o->progress == 1) {
                printf("%s%sepoch %.2f step %ld/%ld  train loss %.4f %s %.4g", o->label ? o->label : "", o->label ? " " : "",
                       bpe ? (double)step / bpe : 0, step, total, e.train.loss, metric_name(d->task),
                       metric_value(d->task, &e.train));
                if (e.has_val) printf("  val loss %.4f %s %.4g", e.val.loss, metric_name(d->task), metric_value(d->task, &e.val));
                if (e.has_test) printf("  test loss %.4f %s %.4g", e.test.loss, metric_name(d->task), metric_value(d->task, &e.test));
                printf("  %.1fs\n", sec);
                fflush(stdout);
            }
        }
        if (o->checkpoint && step > last_ckpt && ((ckpt_every > 0 && step % ckpt_every == 0) || step == total)) {
            /* a checkpoint is only written over the last one when it is good */
            char where[512];
            if (st_net_find_nonfinite(net, where, sizeof where)) {
                rc = cli_error("step %ld: %s; stopping, the last good checkpoint (step %ld) stays in %s", step, where,
                               last_ckpt, o->checkpoint);
                goto done;
            }
            if ((rc = save_checkpoint(net, opt, o->checkpoint, step, now() - t0, settings, o, prep.mean, prep.std, prep.channels)))
                goto done;
            last_ckpt = step;
        }
        if (step == total) break;

        /* one step */
        double ts = now();
        const st_tensor *x, *target;
        const int32_t *labels;
        if (st_loader_next(loader, &x, &labels, &target)) { rc = cli_fail(); goto done; }
        double lr = st_schedule_lr(&sched, step);
        st_optim_set_lr(opt, (float)lr);
        st_net_zero_grad(net);
        float L = NAN;
        st_status s = st_net_step(net, x, loss_kind, labels, target, &L, 0);
        /* without clipping only whether the gradient is finite matters (its norm is a
         * serial sum: a few percent of a small network's step) */
        double norm = s ? NAN : o->clip > 0 || !grads_finite(net) ? st_net_clip_grad_norm(net, o->clip > 0 ? o->clip : INFINITY) : 0;
        if (s == ST_ERR_NUMERIC || (!s && !isfinite(norm))) {
            char where[512];
            st_net_find_nonfinite(net, where, sizeof where);
            rc = cli_error("step %ld (epoch %ld): the %s became non-finite (loss %g, gradient norm %g): first at %s; "
                           "stopping%s%s", step + 1, step / bpe + 1, isfinite(L) ? "gradient" : "loss", L, norm,
                           where[0] ? where : "(no node holds one)", o->checkpoint ? ", the last good checkpoint stays in " : "",
                           o->checkpoint ? o->checkpoint : "");
            goto done;
        }
        if (s) { rc = cli_fail(); goto done; }
        st_optim_step(opt);
        train_time += now() - ts;
        images += x->shape[0];
        run_loss = isfinite(run_loss) ? 0.98 * run_loss + 0.02 * L : L;
        if (o->progress == 2) {
            double t = now();
            if (t - last_show > 0.2 || step + 1 == total) {
                double ips = images / (train_time + 1e-9);
                progress_line(o, d->task, step + 1, total, bpe, run_loss, shown, ips,
                              (double)(total - step - 1) * o->batch / (ips + 1e-9));
                last_show = t;
            }
        }
    }
    if (o->progress == 2) fprintf(stderr, "\n");
    if (o->progress && train_time > 0)
        printf("%ld images in %.1f s of training: %.0f images/s; waited for data %.2f%% of it\n", images, train_time,
               images / train_time, 100 * (st_loader_wait_seconds(loader) - wait0) / train_time);
    if (o->save) rc = save_weights(net, o->save, o, prep.mean, prep.std, prep.channels);
done:
    if (log) fclose(log);
    st_loader_free(loader);
    st_optim_free(opt);
    st_dataset_free(&prep.val);
    st_tensors_free(&meta);
    return rc;
}

/* ---------------------------------------------------------------- options */
#define TRAIN_OPTS                                                                                              \
    {"--data", "SPEC", "fashion-mnist, mnist, mnist1d (default), shapes, shapes-keypoints or a folder (see README)", NULL}, \
    {"--steps", "N", "training steps (mnist1d: 100000, the book's protocol)", NULL},                          \
    {"--epochs", "E", "passes over the training set (other data: 10)", NULL},                                  \
    {"--batch", "N", "batch size (mnist1d 100, else 64)", NULL},                                               \
    {"--optim", "sgd|adam|adamw", "optimiser (sgd)", NULL},                                                    \
    {"--lr", "F", "learning rate (sgd 0.01, adam/adamw 0.001)", NULL},                                         \
    {"--momentum", "F", "SGD momentum (0)", NULL},                                                             \
    {"--nesterov", NULL, "Nesterov momentum", NULL},                                                           \
    {"--weight-decay", "F", "weight decay (sgd, adam: L2; adamw: decoupled, 0.01)", NULL},                     \
    {"--schedule", "S", "learning rate: constant, step:N[:G], multistep:A,B[:G], cosine; ,warmup=N", NULL},    \
    {"--clip", "F", "clip the gradient's global norm to F", NULL},                                             \
    {"--label-smoothing", "F", "cross-entropy label smoothing (0)", NULL},                                     \
    {"--augment", "LIST", "crop=P (random crop, zero padding P), flip, translate=T, shift=S (1D circular)", NULL}, \
    {"--no-normalize", NULL, "keep the inputs as they are (default: per-channel mean/std; mnist1d: off)", NULL}, \
    {"--val", "N", "split N training samples off for validation (val_* in the log)", NULL},                    \
    {"--eval-train", "N", "training samples evaluated for train_loss (all, at most 10000)", NULL},             \
    {"--init", "he|pytorch", "initialisation: He normal with zero biases (default) or PyTorch's", NULL},        \
    {"--eval-every", "N", "evaluate every N steps (mnist1d: 1000; else once per epoch; 0: at the end)", NULL}, \
    {"--threads", "N", "threads (default: all cores)", NULL}

static int parse_augment(const char *text, st_augment *a) {
    memset(a, 0, sizeof *a);
    if (!text) return 0;
    const char *p = text;
    while (*p) {
        char item[64];
        size_t n = strcspn(p, ",");
        if (n >= sizeof item) return cli_error("--augment: '%.*s' is too long", (int)n, p);
        memcpy(item, p, n);
        item[n] = 0;
        int v = 0;
        if (!strcmp(item, "flip")) a->hflip = 1;
        else if (sscanf(item, "crop=%d", &v) == 1 && v >= 0 && v <= 1024) a->crop_pad = v;
        else if (sscanf(item, "translate=%d", &v) == 1 && v >= 0 && v <= 1024) a->translate = v;
        else if (sscanf(item, "shift=%d", &v) == 1 && v >= 0 && v <= 1 << 20) a->circular_shift = v;
        else return cli_error("--augment: unknown or bad item '%s' (crop=P, flip, translate=T, shift=S)", item);
        p += n;
        if (*p == ',') p++;
    }
    return 0;
}

/* Reads the training options; mnist1d (the book's experiment) keeps the book's protocol. */
static int read_train_opts(const cli_opt *opts, int mnist1d, train_opts *o) {
    long v;
    memset(o, 0, sizeof *o);
    if (opt_int(opts, "--batch", mnist1d ? 100 : 64, 1, 1 << 20, &o->batch)) return 2;
    if (opt_get(opts, "--epochs") && opt_get(opts, "--steps")) return cli_error("give either --steps or --epochs, not both");
    if (opt_get(opts, "--steps") || (mnist1d && !opt_get(opts, "--epochs"))) {
        if (opt_int(opts, "--steps", 100000, 0, 1L << 40, &o->steps)) return 2;
    } else if (opt_int(opts, "--epochs", 10, 0, 1L << 30, &o->epochs)) {
        return 2;
    }
    if (opt_int(opts, "--eval-every", mnist1d ? 1000 : -1, 0, 1L << 40, &o->eval_every)) return 2;
    if (!opt_get(opts, "--eval-every") && !mnist1d) o->eval_every = -1; /* once per epoch */
    const char *kind = opt_get(opts, "--optim");
    st_optim_kind k = ST_OPT_SGD;
    if (!kind || !strcmp(kind, "sgd")) k = ST_OPT_SGD;
    else if (!strcmp(kind, "adam")) k = ST_OPT_ADAM;
    else if (!strcmp(kind, "adamw")) k = ST_OPT_ADAMW;
    else return cli_error("--optim must be sgd, adam or adamw, not '%s'", kind);
    st_optim_defaults(k, &o->optim);
    double lr, mom, wd, clip, ls;
    if (opt_double(opts, "--lr", k == ST_OPT_SGD ? 0.01 : 0.001, &lr) || opt_double(opts, "--momentum", 0, &mom) ||
        opt_double(opts, "--weight-decay", o->optim.weight_decay, &wd) || opt_double(opts, "--clip", 0, &clip) ||
        opt_double(opts, "--label-smoothing", 0, &ls))
        return 2;
    if (!(lr >= 0) || !(mom >= 0) || !(wd >= 0) || !(clip >= 0) || !(ls >= 0 && ls <= 1))
        return cli_error("--lr, --momentum, --weight-decay and --clip must be >= 0, --label-smoothing in [0, 1]");
    if (k != ST_OPT_SGD && (opt_get(opts, "--momentum") || opt_get(opts, "--nesterov")))
        return cli_error("--momentum and --nesterov are SGD's; %s has betas", kind);
    o->optim.lr = (float)lr;
    o->optim.momentum = (float)mom;
    o->optim.weight_decay = (float)wd;
    o->optim.nesterov = opt_get(opts, "--nesterov") != NULL;
    o->clip = clip;
    o->label_smoothing = ls;
    o->schedule = opt_get(opts, "--schedule");
    if (parse_augment(opt_get(opts, "--augment"), &o->augment)) return 2;
    o->normalize = !mnist1d && !opt_get(opts, "--no-normalize");
    if (opt_int(opts, "--val", 0, 0, 1L << 30, &o->val)) return 2;
    if (opt_int(opts, "--eval-train", mnist1d ? 0 : 10000, 0, 1L << 40, &o->eval_train)) return 2;
    const char *init = opt_get(opts, "--init");
    if (!init || !strcmp(init, "he")) o->init = ST_INIT_HE;
    else if (!strcmp(init, "pytorch")) o->init = ST_INIT_PYTORCH;
    else return cli_error("--init must be 'he' or 'pytorch', not '%s'", init);
    if (opt_int(opts, "--threads", 0, 0, 1024, &v)) return 2;
    st_set_threads((int)v);
    return 0;
}

/* The model's input must take the data's samples (MNIST-1D rows fit a (1, 40) input). */
static int check_fit(st_net *net, const char *model, const cli_data *d) {
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    int64_t want = 1, got = st_dataset_sample_size(&d->train);
    for (int i = 1; i < nd; i++) want *= shape[i];
    if (want != got) {
        char a[64], b[64];
        int full[ST_MAX_DIMS + 1];
        full[0] = d->train.n;
        for (int i = 0; i < d->train.ndim; i++) full[i + 1] = d->train.shape[i];
        shape[0] = -1;
        return cli_error("%s takes inputs %s but the data's samples are %s; pick the model's options to fit "
                         "(e.g. lenet5:size=28, resnet18:size=28,channels=1,classes=10,cifar=1)",
                         model, st_shape_str(nd, shape, a, sizeof a), st_shape_str(d->train.ndim + 1, full, b, sizeof b));
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    cli_opt opts[] = {TRAIN_OPTS,
                      {"--seed", "N", "seed of initialisation, batch order and augmentation (1)", NULL},
                      {"--log", "FILE", "write one JSON line per evaluation (appended to when resuming)", NULL},
                      {"--save", "FILE", "write the trained weights (.safetensors, state_dict names)", NULL},
                      {"--checkpoint", "FILE", "write a checkpoint (weights, optimiser, RNG, step) atomically", NULL},
                      {"--checkpoint-every", "N", "steps between checkpoints (default: at each evaluation)", NULL},
                      {"--resume", "FILE", "continue the run of this checkpoint exactly", NULL},
                      {"--quiet", NULL, "no progress output", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("train", "MODEL [options]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("train needs a MODEL (a built-in name or a model file)");
    const char *spec = opt_get(opts, "--data") ? opt_get(opts, "--data") : "mnist1d";
    train_opts o;
    long seed;
    int mnist1d = !strcmp(spec, "mnist1d");
    if ((rc = read_train_opts(opts, mnist1d, &o)) || (rc = opt_int(opts, "--seed", 1, 0, 0x7fffffffL, &seed)) ||
        (rc = opt_int(opts, "--checkpoint-every", 0, 0, 1L << 40, &o.checkpoint_every)))
        return rc;
    o.seed = (uint64_t)seed;
    o.log = opt_get(opts, "--log");
    o.save = opt_get(opts, "--save");
    o.checkpoint = opt_get(opts, "--checkpoint");
    o.resume = opt_get(opts, "--resume");
    o.progress = opt_get(opts, "--quiet") ? 0 : isatty(2) ? 2 : 1;
    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    cli_data d;
    if ((rc = cli_data_load(spec, &d))) { st_net_free(net); return rc; }
    if ((rc = check_fit(net, pos[0], &d))) goto done;
    if (o.progress) {
        char p[32];
        fmt_thousands(st_net_param_count(net), p, sizeof p);
        printf("training %s (%s parameters) on %s\n", pos[0], p, d.desc);
        if (o.epochs) printf("%ld epochs of batch %ld, ", o.epochs, o.batch);
        else printf("%ld steps of batch %ld, ", o.steps, o.batch);
        printf("%s lr %g%s%s\n", o.optim.kind == ST_OPT_SGD ? "sgd" : o.optim.kind == ST_OPT_ADAM ? "adam" : "adamw", o.optim.lr,
               o.schedule ? ", schedule " : "", o.schedule ? o.schedule : "");
    }
    train_curve c = {0};
    rc = train_run(net, &d, &o, &c);
    if (!rc && c.n && o.progress) {
        int k = c.n - 1;
        printf("final: train loss %.4f, %s %.4g; test loss %.4f, %s %.4g (%.1f s)\n", c.train_loss[k],
               d.task == TASK_CLASSIFY ? "error %" : d.task == TASK_SEGMENT ? "1 - mIoU" : "1 - PCK",
               (d.task == TASK_CLASSIFY ? 100 : 1) * c.train_err[k], c.test_loss[k],
               d.task == TASK_CLASSIFY ? "error %" : d.task == TASK_SEGMENT ? "1 - mIoU" : "1 - PCK",
               (d.task == TASK_CLASSIFY ? 100 : 1) * c.test_err[k], c.seconds[k]);
        if (o.save) printf("weights written to %s\n", o.save);
    }
    free_curve(&c);
done:
    cli_data_free(&d);
    st_net_free(net);
    return rc;
}

/* ---------------------------------------------------------------- stride experiment mnist1d */
static void mean_std(const double *v, int n, double *m, double *s) {
    double a = 0, q = 0;
    for (int i = 0; i < n; i++) a += v[i];
    a /= n;
    for (int i = 0; i < n; i++) q += (v[i] - a) * (v[i] - a);
    *m = a;
    *s = n > 1 ? sqrt(q / (n - 1)) : 0;
}

int cmd_experiment(int argc, char **argv) {
    cli_opt opts[] = {TRAIN_OPTS,
                      {"--seeds", "N", "runs per network, seeds 1..N (3)", NULL},
                      {"--out", "DIR", "folder for curves.csv, figure.png and results.md (experiment-mnist1d)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("experiment", "mnist1d [options]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1 || strcmp(pos[0], "mnist1d")) return cli_error("the experiment is 'mnist1d' (stride experiment mnist1d)");
    const char *out = opt_get(opts, "--out") ? opt_get(opts, "--out") : "experiment-mnist1d";
    const char *spec = opt_get(opts, "--data") ? opt_get(opts, "--data") : "mnist1d";
    long nseeds;
    if (opt_int(opts, "--seeds", 3, 1, 100, &nseeds)) return 2;
    train_opts base;
    if ((rc = read_train_opts(opts, 1, &base))) return rc;
    base.normalize = 0;
    if (mkdir(out, 0777) != 0 && errno != EEXIST) return cli_error("cannot create folder '%s': %s", out, strerror(errno));
    const char *models[2] = {"mnist1d-cnn", "mnist1d-mlp"};
    int nruns = 2 * (int)nseeds;
    train_curve *curves = calloc(nruns, sizeof *curves);
    int *status = calloc(nruns, sizeof *status);
    cli_data *data = calloc(nruns, sizeof *data);
    int64_t params[2] = {0, 0};
    if (!curves || !status || !data) { free(curves); free(status); free(data); return cli_error("out of memory"); }
    /* each run gets its own copy of the data: training may reorder it (validation split) */
    for (int r = 0; r < nruns && !rc; r++) rc = cli_data_load(spec, &data[r]);
    if (rc) goto done;
    printf("MNIST-1D experiment (UDL figure 10.8): %ld run(s) of each network, %ld steps, batch %ld, lr %g, %s init\n",
           nseeds, base.steps, base.batch, base.optim.lr, base.init == ST_INIT_HE ? "He" : "PyTorch");
    fflush(stdout);
    double t0 = now();
    /* independent runs go to the cores side by side; each run's kernels then stay on
     * one thread, which suits these small networks better than splitting every op */
#pragma omp parallel for schedule(dynamic, 1)
    for (int r = 0; r < nruns; r++) {
        int m = r % 2;
        st_net *net;
        if (st_net_open(models[m], &net)) { status[r] = cli_fail(); continue; }
        params[m] = st_net_param_count(net);
        train_opts o = base;
        o.seed = (uint64_t)(r / 2 + 1);
        o.progress = 0;
        status[r] = train_run(net, &data[r], &o, &curves[r]);
        st_net_free(net);
        if (!status[r]) {
            train_curve *c = &curves[r];
            int k = c->n - 1;
#pragma omp critical
            {
                printf("  %s seed %d: train error %.2f%%, test error %.2f%% (%.1f s)\n", models[m], r / 2 + 1,
                       100 * c->train_err[k], 100 * c->test_err[k], c->seconds[k]);
                fflush(stdout);
            }
        }
    }
    for (int r = 0; r < nruns; r++)
        if (status[r]) rc = status[r];
    if (rc) goto done;
    /* CSV of every evaluation of every run */
    char path[4096];
    snprintf(path, sizeof path, "%s/curves.csv", out);
    FILE *f = fopen(path, "w");
    if (!f) { rc = cli_error("cannot write '%s': %s", path, strerror(errno)); goto done; }
    fprintf(f, "model,seed,step,train_loss,train_error,test_loss,test_error,seconds\n");
    for (int r = 0; r < nruns; r++)
        for (int i = 0; i < curves[r].n; i++)
            fprintf(f, "%s,%d,%ld,%.6g,%.6g,%.6g,%.6g,%.3f\n", models[r % 2], r / 2 + 1, curves[r].step[i],
                    curves[r].train_loss[i], curves[r].train_err[i], curves[r].test_loss[i], curves[r].test_err[i],
                    curves[r].seconds[i]);
    fclose(f);
    /* table: final errors, mean and spread over seeds */
    snprintf(path, sizeof path, "%s/results.md", out);
    FILE *md = fopen(path, "w");
    char line[512];
    snprintf(line, sizeof line, "| network | parameters | train error %% | test error %% | seconds per run |\n|---|---|---|---|---|\n");
    printf("\n%s", line);
    if (md) fputs(line, md);
    for (int m = 0; m < 2; m++) {
        double tr[100], te[100], sec[100], a, b, c2, e, s, u;
        for (int k = 0; k < nseeds; k++) {
            train_curve *c = &curves[2 * k + m];
            tr[k] = 100 * c->train_err[c->n - 1];
            te[k] = 100 * c->test_err[c->n - 1];
            sec[k] = c->seconds[c->n - 1];
        }
        mean_std(tr, (int)nseeds, &a, &b);
        mean_std(te, (int)nseeds, &c2, &e);
        mean_std(sec, (int)nseeds, &s, &u);
        char p[32];
        fmt_thousands(params[m], p, sizeof p);
        snprintf(line, sizeof line, "| %s | %s | %.2f ± %.2f | %.2f ± %.2f | %.1f |\n", models[m], p, a, b, c2, e, s);
        printf("%s", line);
        if (md) fputs(line, md);
    }
    if (md) {
        fprintf(md, "\nMean ± standard deviation over %ld seed(s); %ld steps, batch %ld, lr %g, plain SGD, %s init.\n",
                nseeds, base.steps, base.batch, base.optim.lr, base.init == ST_INIT_HE ? "He" : "PyTorch");
        fclose(md);
    }
    printf("(mean ± standard deviation over %ld seed(s); wall time %.1f s)\n", nseeds, now() - t0);
    /* the figure: mean curves over seeds, one panel per network */
    {
        int n = curves[0].n;
        double *xs = malloc(sizeof(double) * n), *ys = malloc(sizeof(double) * n * 4);
        plot_series ser[4];
        if (!xs || !ys) { free(xs); free(ys); rc = cli_error("out of memory"); goto done; }
        for (int i = 0; i < n; i++) xs[i] = (double)curves[0].step[i];
        for (int m = 0; m < 2; m++)
            for (int which = 0; which < 2; which++) {
                double *y = ys + (size_t)(2 * m + which) * n;
                for (int i = 0; i < n; i++) {
                    y[i] = 0;
                    for (int k = 0; k < nseeds; k++) {
                        train_curve *c = &curves[2 * k + m];
                        y[i] += 100 * (which ? c->test_err[i] : c->train_err[i]) / nseeds;
                    }
                }
                ser[2 * m + which] = (plot_series){which ? "test" : "train", n, xs, y, m, 0, which ? 1 : 0};
            }
        char t1[128], t2[128];
        char pc[32], pm[32];
        fmt_thousands(params[0], pc, sizeof pc);
        fmt_thousands(params[1], pm, sizeof pm);
        snprintf(t1, sizeof t1, "a) convolutional network (%s parameters)", pc);
        snprintf(t2, sizeof t2, "b) fully connected network (%s parameters)", pm);
        const char *titles[2] = {t1, t2};
        plot_opts po = {"MNIST-1D: convolutional versus fully connected", 2, titles, "training step", "error (%)", 0, 100, 0, 0};
        char err[256];
        snprintf(path, sizeof path, "%s/figure.png", out);
        if (plot_lines(path, &po, ser, 4, err, sizeof err)) fprintf(stderr, "stride: no figure: %s\n", err);
        else printf("wrote %s/figure.png, %s/curves.csv and %s/results.md\n", out, out, out);
        free(xs);
        free(ys);
    }
done:
    for (int r = 0; r < nruns; r++) {
        free_curve(&curves[r]);
        cli_data_free(&data[r]);
    }
    free(curves);
    free(status);
    free(data);
    return rc;
}
