/* train.c - `stride train` and `stride experiment`: the training loop with evaluation,
 * progress display, JSON-lines log and weight saving, on MNIST-1D (generated exactly
 * as the official data set) or on .npy files. */
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

/* ---------------------------------------------------------------- data */
void free_dataset(dataset *d) {
    free(d->train_x); free(d->test_x); free(d->train_y); free(d->test_y);
    memset(d, 0, sizeof *d);
}

static int load_xy(const char *dir, const char *split, float **x, int32_t **y, int *n, int *features) {
    char path[4096];
    st_array a;
    st_tensor *t;
    snprintf(path, sizeof path, "%s/%s_x.npy", dir, split);
    if (st_npy_load(path, &a)) return cli_fail();
    st_status rc = st_array_to_tensor(&a, &t);
    st_array_free(&a);
    if (rc) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    if (t->ndim < 2) { st_tensor_free(t); return cli_error("%s: expected (N, features...) samples, got %d dimension(s)", path, t->ndim); }
    *n = t->shape[0];
    *features = (int)(st_tensor_numel(t) / (size_t)t->shape[0]);
    *x = malloc(sizeof(float) * st_tensor_numel(t));
    if (!*x) { st_tensor_free(t); return cli_error("out of memory"); }
    memcpy(*x, t->data, sizeof(float) * st_tensor_numel(t));
    st_tensor_free(t);
    snprintf(path, sizeof path, "%s/%s_y.npy", dir, split);
    int64_t nl;
    if (st_npy_load(path, &a)) return cli_fail();
    rc = st_array_to_labels(&a, y, &nl);
    st_array_free(&a);
    if (rc) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    if (nl != *n) return cli_error("%s: %lld labels for %d samples in %s_x.npy", path, (long long)nl, *n, split);
    return 0;
}

int load_dataset(const char *dir, dataset *d) {
    memset(d, 0, sizeof *d);
    if (!dir) {
        st_mnist1d_args a;
        st_mnist1d m;
        st_mnist1d_default_args(&a);
        if (st_mnist1d_generate(&a, &m)) return cli_fail();
        d->n_train = m.n_train; d->n_test = m.n_test; d->features = m.length;
        d->train_x = m.train_x; d->test_x = m.test_x; d->train_y = m.train_y; d->test_y = m.test_y;
        free(m.t);
    } else {
        int f2;
        if (load_xy(dir, "train", &d->train_x, &d->train_y, &d->n_train, &d->features) ||
            load_xy(dir, "test", &d->test_x, &d->test_y, &d->n_test, &f2)) {
            free_dataset(d);
            return 1;
        }
        if (f2 != d->features) {
            free_dataset(d);
            return cli_error("%s: train samples have %d values, test samples %d", dir, d->features, f2);
        }
    }
    d->classes = 0;
    for (int i = 0; i < d->n_train; i++) {
        if (d->train_y[i] < 0) { free_dataset(d); return cli_error("negative label %d at training sample %d", d->train_y[i], i); }
        if (d->train_y[i] + 1 > d->classes) d->classes = d->train_y[i] + 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- evaluation */
static int evaluate(st_net *net, const float *x, const int32_t *y, int n, int features, double *loss, double *err) {
    enum { CHUNK = 500 };
    st_tensor *t = st_tensor_new(2, (int[]){CHUNK, features});
    if (!t) return cli_fail();
    double total = 0;
    long wrong = 0;
    for (int s = 0; s < n; s += CHUNK) {
        int b = n - s < CHUNK ? n - s : CHUNK;
        t->shape[0] = b;
        memcpy(t->data, x + (size_t)s * features, sizeof(float) * (size_t)b * features);
        const st_tensor *out;
        float L;
        if (st_net_forward(net, t, 0, &out) || st_net_loss(net, ST_LOSS_CE, y + s, NULL, &L)) {
            st_tensor_free(t);
            return cli_fail();
        }
        total += (double)L * b;
        int c = out->shape[1];
        for (int i = 0; i < b; i++) {
            const float *z = out->data + (size_t)i * c;
            int best = 0;
            for (int j = 1; j < c; j++) if (z[j] > z[best]) best = j;
            wrong += best != y[s + i];
        }
    }
    st_tensor_free(t);
    *loss = total / n;
    *err = (double)wrong / n;
    return 0;
}

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

static void progress_line(const train_opts *o, long step, float loss, double tre, double tee, double rate, double eta) {
    int width = 24, filled = (int)(width * (double)step / o->steps);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    char errs[64] = "";
    if (tre >= 0) snprintf(errs, sizeof errs, "  train %5.1f%%  test %5.1f%%", 100 * tre, 100 * tee);
    fprintf(stderr, "\r%s%sstep %ld/%ld [%s] loss %.4f%s  %.0f steps/s  ETA %.0fs\033[K", o->label ? o->label : "",
            o->label ? " " : "", step, o->steps, bar, loss, errs, rate, eta);
    fflush(stderr);
}

/* ---------------------------------------------------------------- the loop */
int train_run(st_net *net, const dataset *d, const train_opts *o, train_curve *curve) {
    int rc = 0, F = d->features;
    FILE *log = NULL;
    if (o->log && !(log = fopen(o->log, "w"))) return cli_error("cannot write log '%s': %s", o->log, strerror(errno));
    st_sgd_conf sc = {(float)o->lr, (float)o->momentum, (float)o->weight_decay, o->nesterov};
    st_sgd *opt = NULL;
    st_tensor *xb = st_tensor_new(2, (int[]){(int)o->batch, F});
    int32_t *yb = malloc(sizeof(int32_t) * o->batch);
    int *perm = malloc(sizeof(int) * d->n_train);
    if (!xb || !yb || !perm) { rc = cli_error("out of memory"); goto done; }
    if (st_net_init(net, o->init, o->seed) || st_sgd_new(net, &sc, &opt)) { rc = cli_fail(); goto done; }
    st_rng rng;
    st_rng_seed(&rng, o->seed * 0x9E3779B97F4A7C15ULL + 1);
    for (int i = 0; i < d->n_train; i++) perm[i] = i;
    st_rng_shuffle(&rng, perm, d->n_train);
    int pos = 0;
    double t0 = now(), last_show = 0, tre = -1, tee = -1;
    float loss = NAN;
    for (long step = 0; step <= o->steps; step++) {
        if (step > 0) {
            int b = d->n_train - pos < o->batch ? d->n_train - pos : (int)o->batch;
            xb->shape[0] = b;
            for (int i = 0; i < b; i++) {
                int k = perm[pos + i];
                memcpy(xb->data + (size_t)i * F, d->train_x + (size_t)k * F, sizeof(float) * F);
                yb[i] = d->train_y[k];
            }
            pos += b;
            if (pos == d->n_train) { st_rng_shuffle(&rng, perm, d->n_train); pos = 0; }
            st_net_zero_grad(net);
            st_status s = st_net_step(net, xb, ST_LOSS_CE, yb, NULL, &loss, 0);
            if (s == ST_ERR_NUMERIC) { rc = cli_error("step %ld: the loss became %g; stopping", step, loss); goto done; }
            if (s) { rc = cli_fail(); goto done; }
            st_sgd_step(opt);
        }
        int do_eval = (o->eval_every > 0 && step % o->eval_every == 0) || step == o->steps;
        if (do_eval) {
            double trl, tel;
            if (evaluate(net, d->train_x, d->train_y, d->n_train, F, &trl, &tre) ||
                evaluate(net, d->test_x, d->test_y, d->n_test, F, &tel, &tee)) { rc = 1; goto done; }
            double sec = now() - t0;
            if (curve && curve_add(curve, step, trl, tre, tel, tee, sec)) { rc = cli_error("out of memory"); goto done; }
            if (log) {
                fprintf(log, "{\"step\": %ld, \"train_loss\": %.6g, \"train_error\": %.6g, \"test_loss\": %.6g, "
                             "\"test_error\": %.6g, \"seconds\": %.3f}\n", step, trl, tre, tel, tee, sec);
                fflush(log);
            }
            if (o->progress == 1)
                printf("%s%sstep %ld/%ld  train loss %.4f error %.2f%%  test loss %.4f error %.2f%%  %.1fs\n",
                       o->label ? o->label : "", o->label ? " " : "", step, o->steps, trl, 100 * tre, tel, 100 * tee, sec);
        }
        if (o->progress == 2) {
            double t = now();
            if (t - last_show > 0.1 || step == o->steps) {
                double rate = step / (t - t0 + 1e-9);
                progress_line(o, step, loss, tre, tee, rate, (o->steps - step) / (rate + 1e-9));
                last_show = t;
            }
        }
    }
    if (o->progress == 2) fprintf(stderr, "\n");
    if (o->save && st_net_save_weights(net, o->save)) rc = cli_fail();
done:
    if (log) fclose(log);
    st_sgd_free(opt);
    st_tensor_free(xb);
    free(yb);
    free(perm);
    return rc;
}

/* ---------------------------------------------------------------- stride train */
#define TRAIN_OPTS                                                                                      \
    {"--steps", "N", "training steps (default 100000, the book's protocol)", NULL},                   \
    {"--epochs", "E", "train for E passes over the training set instead of --steps", NULL},           \
    {"--batch", "N", "batch size (100)", NULL},                                                        \
    {"--lr", "F", "learning rate (0.01)", NULL},                                                       \
    {"--momentum", "F", "SGD momentum (0)", NULL},                                                     \
    {"--nesterov", NULL, "Nesterov momentum", NULL},                                                   \
    {"--weight-decay", "F", "L2 weight decay (0)", NULL},                                              \
    {"--init", "he|pytorch", "initialisation: He normal with zero biases (default) or PyTorch's", NULL},\
    {"--eval-every", "N", "evaluate train and test error every N steps (1000; 0 = at the end)", NULL}, \
    {"--data", "DIR", "train on DIR/{train,test}_{x,y}.npy instead of MNIST-1D", NULL},                \
    {"--threads", "N", "threads (default: all cores)", NULL}

static int read_train_opts(const cli_opt *opts, const dataset *d, train_opts *o) {
    long v;
    memset(o, 0, sizeof *o);
    if (opt_int(opts, "--batch", 100, 1, 1 << 20, &o->batch)) return 2;
    if (opt_int(opts, "--steps", 100000, 0, 1L << 40, &o->steps)) return 2;
    if (opt_get(opts, "--epochs")) {
        if (opt_get(opts, "--steps")) return cli_error("give either --steps or --epochs, not both");
        if (opt_int(opts, "--epochs", 1, 0, 1L << 30, &v)) return 2;
        o->steps = (v * d->n_train + o->batch - 1) / o->batch;
    }
    if (opt_int(opts, "--eval-every", 1000, 0, 1L << 40, &o->eval_every)) return 2;
    if (opt_double(opts, "--lr", 0.01, &o->lr) || opt_double(opts, "--momentum", 0, &o->momentum) ||
        opt_double(opts, "--weight-decay", 0, &o->weight_decay)) return 2;
    o->nesterov = opt_get(opts, "--nesterov") != NULL;
    const char *init = opt_get(opts, "--init");
    if (!init || !strcmp(init, "he")) o->init = ST_INIT_HE;
    else if (!strcmp(init, "pytorch")) o->init = ST_INIT_PYTORCH;
    else return cli_error("--init must be 'he' or 'pytorch', not '%s'", init);
    if (opt_int(opts, "--threads", 0, 0, 1024, &v)) return 2;
    st_set_threads((int)v);
    return 0;
}

int cmd_train(int argc, char **argv) {
    cli_opt opts[] = {TRAIN_OPTS,
                      {"--seed", "N", "seed of initialisation and batch order (1)", NULL},
                      {"--log", "FILE", "write one JSON line per evaluation", NULL},
                      {"--save", "FILE", "write the trained weights (.safetensors, state_dict names)", NULL},
                      {"--quiet", NULL, "no progress output", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("train", "MODEL [options]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("train needs a MODEL (a built-in name or a model file)");
    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    dataset d;
    if ((rc = load_dataset(opt_get(opts, "--data"), &d))) { st_net_free(net); return rc; }
    train_opts o;
    long seed;
    if ((rc = read_train_opts(opts, &d, &o)) || (rc = opt_int(opts, "--seed", 1, 0, 0x7fffffffL, &seed))) goto done;
    o.seed = (uint64_t)seed;
    o.log = opt_get(opts, "--log");
    o.save = opt_get(opts, "--save");
    o.progress = opt_get(opts, "--quiet") ? 0 : isatty(2) ? 2 : 1;
    char p[32];
    fmt_thousands(st_net_param_count(net), p, sizeof p);
    if (o.progress)
        printf("training %s (%s parameters) on %s: %d train / %d test samples, %ld steps of batch %ld, lr %g\n", pos[0], p,
               opt_get(opts, "--data") ? opt_get(opts, "--data") : "MNIST-1D", d.n_train, d.n_test, o.steps, o.batch, o.lr);
    train_curve c = {0};
    rc = train_run(net, &d, &o, &c);
    if (!rc && c.n) {
        int k = c.n - 1;
        printf("final: train loss %.4f, train error %.2f%%, test loss %.4f, test error %.2f%% (%.1f s, %.0f steps/s)\n",
               c.train_loss[k], 100 * c.train_err[k], c.test_loss[k], 100 * c.test_err[k], c.seconds[k],
               c.seconds[k] > 0 ? o.steps / c.seconds[k] : 0.0);
        if (o.save) printf("weights written to %s\n", o.save);
    }
    free_curve(&c);
done:
    free_dataset(&d);
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
    long nseeds;
    if (opt_int(opts, "--seeds", 3, 1, 100, &nseeds)) return 2;
    dataset d;
    if ((rc = load_dataset(opt_get(opts, "--data"), &d))) return rc;
    train_opts base;
    if ((rc = read_train_opts(opts, &d, &base))) { free_dataset(&d); return rc; }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        free_dataset(&d);
        return cli_error("cannot create folder '%s': %s", out, strerror(errno));
    }
    const char *models[2] = {"mnist1d-cnn", "mnist1d-mlp"};
    int nruns = 2 * (int)nseeds;
    train_curve *curves = calloc(nruns, sizeof *curves);
    int *status = calloc(nruns, sizeof *status);
    int64_t params[2] = {0, 0};
    if (!curves || !status) { free_dataset(&d); return cli_error("out of memory"); }
    printf("MNIST-1D experiment (UDL figure 10.8): %ld run(s) of each network, %ld steps, batch %ld, lr %g, %s init\n",
           nseeds, base.steps, base.batch, base.lr, base.init == ST_INIT_HE ? "He" : "PyTorch");
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
        status[r] = train_run(net, &d, &o, &curves[r]);
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
                nseeds, base.steps, base.batch, base.lr, base.init == ST_INIT_HE ? "He" : "PyTorch");
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
    for (int r = 0; r < nruns; r++) free_curve(&curves[r]);
    free(curves);
    free(status);
    free_dataset(&d);
    return rc;
}
