/* stride.c - the command-line tool: subcommands and the commands that inspect and run
 * networks (summary, model, data, run, grad). Option parsing is in cli.c, training and
 * the MNIST-1D experiment in train.c. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int apply_threads(const cli_opt *opts) {
    long t;
    if (opt_int(opts, "--threads", 0, 0, 1024, &t)) return 2;
    st_set_threads((int)t);
    return 0;
}

/* ---------------------------------------------------------------- summary */
static int cmd_summary(int argc, char **argv) {
    cli_opt opts[] = {{"--batch", "N", "batch size for the activation and MAC totals (default 1)", NULL}, {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("summary", "MODEL [--batch N]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("summary needs a MODEL (a built-in name or a model file)");
    long batch;
    if (opt_int(opts, "--batch", 1, 1, 1 << 20, &batch)) return 2;
    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    printf("%s\n", pos[0]);
    int nw = 12; /* the node column fits the longest name */
    for (int i = 0; i < st_net_num_nodes(net); i++)
        if ((int)strlen(st_net_node_name(net, i)) > nw) nw = (int)strlen(st_net_node_name(net, i));
    printf("%-*s %-20s %-18s %10s %22s %14s\n", nw, "node", "op", "output", "params", "receptive field", "MACs");
    int64_t total_p = 0, total_m = 0, total_act = 0;
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        st_node_info in;
        st_net_node_info(net, i, &in);
        char shape[64], p[32], m[32], rf[96] = "-";
        in.shape[0] = (int)batch;
        st_shape_str(in.ndim, in.shape, shape, sizeof shape);
        fmt_thousands(in.params, p, sizeof p);
        fmt_thousands(in.macs * batch, m, sizeof m);
        if (in.rf_valid) {
            if (in.ndim == 3) snprintf(rf, sizeof rf, "%.4g (jump %.4g)", in.rf[1], in.jump[1]);
            else snprintf(rf, sizeof rf, "%.4gx%.4g (jump %.4g,%.4g)", in.rf[0], in.rf[1], in.jump[0], in.jump[1]);
        }
        printf("%-*s %-20s %-18s %10s %22s %14s\n", nw, in.name, in.op, shape, p, rf, m);
        total_p += in.params;
        total_m += in.macs * batch;
        int64_t act = 1;
        for (int k = 0; k < in.ndim; k++) act *= in.shape[k];
        total_act += act;
    }
    char p[32], m[32], a[32];
    fmt_thousands(total_p, p, sizeof p);
    fmt_thousands(total_m, m, sizeof m);
    fmt_thousands(total_act * 4, a, sizeof a);
    printf("total parameters: %s\n", p);
    printf("total MACs (batch %ld): %s\n", batch, m);
    printf("activation memory (batch %ld, forward): %s bytes\n", batch, a);
    st_net_free(net);
    return 0;
}

/* ---------------------------------------------------------------- model */
static int cmd_model(int argc, char **argv) {
    cli_opt opts[] = {{NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("model", "NAME|FILE   (prints the model file)", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) {
        printf("built-in models:\n");
        for (const char *const *z = st_zoo_names(); *z; z++) printf("  %s\n", *z);
        return npos ? 2 : 0;
    }
    char *text;
    st_status zrc = st_zoo_model_text(pos[0], &text);
    if (zrc == ST_OK) { fputs(text, stdout); free(text); return 0; }
    if (zrc != ST_ERR_NOTFOUND) return cli_fail();
    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    char *t = st_net_to_text(net);
    if (t) fputs(t, stdout);
    free(t);
    st_net_free(net);
    return 0;
}

/* ---------------------------------------------------------------- data */
static int write_f32(const char *dir, const char *name, const float *x, int64_t rows, int64_t cols) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    st_array a = {ST_F32, cols ? 2 : 1, {rows, cols}, (void *)x};
    if (st_npy_save(path, &a)) return cli_fail();
    return 0;
}

static int write_i32(const char *dir, const char *name, const int32_t *y, int64_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    st_array a = {ST_I32, 1, {n}, (void *)y};
    if (st_npy_save(path, &a)) return cli_fail();
    return 0;
}

static int cmd_data(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[2], "shapes")) return cmd_data_shapes(argc, argv);
    cli_opt opts[] = {
        {"--out", "DIR", "folder to write train_x.npy, train_y.npy, test_x.npy, test_y.npy, t.npy", NULL},
        {"--seed", "N", "random seed (42 = the official data set)", NULL},
        {"--samples", "N", "total number of examples (5000)", NULL},
        {"--train-split", "F", "fraction used for training (0.8)", NULL},
        {"--padding-min", "N", "fewest zeros appended to a template (36)", NULL},
        {"--padding-max", "N", "most zeros appended to a template (60)", NULL},
        {"--scale-coeff", "F", "amplitude scale range (0.4)", NULL},
        {"--max-translation", "N", "circular shifts 0..N-1 (48)", NULL},
        {"--corr-noise-scale", "F", "correlated background noise (0.25)", NULL},
        {"--iid-noise-scale", "F", "white noise (0.02)", NULL},
        {"--shear-scale", "F", "linear ramp slope range (0.75)", NULL},
        {"--shuffle-seq", NULL, "permute the positions of every signal (one fixed permutation)", NULL},
        {"--length", "N", "final signal length (40)", NULL},
        {"--info", NULL, "with SPEC instead of mnist1d: read a data set (fashion-mnist, mnist, a folder) and describe it", NULL},
        {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("data", "mnist1d --out DIR [generator options]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos == 1 && opt_get(opts, "--info")) return cli_data_info(pos[0]);
    if (npos != 1 || strcmp(pos[0], "mnist1d")) return cli_error("data: the data sets are 'mnist1d' and 'shapes' (stride data mnist1d|shapes --out DIR)");
    const char *out = opt_get(opts, "--out");
    if (!out) return cli_error("data: --out DIR is required");
    st_mnist1d_args a;
    st_mnist1d_default_args(&a);
    long v;
    double f;
    if (opt_int(opts, "--seed", a.seed, 0, 4294967295L, &v)) return 2;
    a.seed = (uint32_t)v;
    if (opt_int(opts, "--samples", a.num_samples, 10, 10000000, &v)) return 2;
    a.num_samples = (int)v;
    if (opt_double(opts, "--train-split", a.train_split, &f)) return 2;
    a.train_split = f;
    if (opt_int(opts, "--padding-min", a.padding_min, 0, 100000, &v)) return 2;
    a.padding_min = (int)v;
    if (opt_int(opts, "--padding-max", a.padding_max, 0, 100000, &v)) return 2;
    a.padding_max = (int)v;
    if (opt_double(opts, "--scale-coeff", a.scale_coeff, &f)) return 2;
    a.scale_coeff = f;
    if (opt_int(opts, "--max-translation", a.max_translation, 1, 100000, &v)) return 2;
    a.max_translation = (int)v;
    if (opt_double(opts, "--corr-noise-scale", a.corr_noise_scale, &f)) return 2;
    a.corr_noise_scale = f;
    if (opt_double(opts, "--iid-noise-scale", a.iid_noise_scale, &f)) return 2;
    a.iid_noise_scale = f;
    if (opt_double(opts, "--shear-scale", a.shear_scale, &f)) return 2;
    a.shear_scale = f;
    a.shuffle_seq = opt_get(opts, "--shuffle-seq") != NULL;
    if (opt_int(opts, "--length", a.final_seq_length, 2, 100000, &v)) return 2;
    a.final_seq_length = (int)v;
    st_mnist1d d;
    if (st_mnist1d_generate(&a, &d)) return cli_fail();
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        st_mnist1d_free(&d);
        return cli_error("data: cannot create folder '%s': %s", out, strerror(errno));
    }
    rc = write_f32(out, "train_x.npy", d.train_x, d.n_train, d.length);
    if (!rc) rc = write_i32(out, "train_y.npy", d.train_y, d.n_train);
    if (!rc) rc = write_f32(out, "test_x.npy", d.test_x, d.n_test, d.length);
    if (!rc) rc = write_i32(out, "test_y.npy", d.test_y, d.n_test);
    if (!rc) rc = write_f32(out, "t.npy", d.t, d.length, 0);
    if (!rc) printf("wrote %s/{train,test}_{x,y}.npy and t.npy: %d training and %d test examples of length %d\n", out,
                    d.n_train, d.n_test, d.length);
    st_mnist1d_free(&d);
    return rc;
}

/* ---------------------------------------------------------------- run and grad */
/* Opens MODEL and loads --weights, or initialises from --seed. */
static int open_model(const char *model, const cli_opt *opts, st_net **net) {
    long seed;
    if (opt_int(opts, "--seed", 1, 0, 0x7fffffffL, &seed)) return 2;
    if (st_net_open(model, net)) return cli_fail();
    const char *w = opt_get(opts, "--weights");
    st_status rc = w ? st_net_load_weights(*net, w) : st_net_init(*net, ST_INIT_HE, (uint64_t)seed);
    if (rc) { st_net_free(*net); *net = NULL; return cli_fail(); }
    return 0;
}

static int load_tensor(const char *path, st_tensor **t) {
    st_array a;
    if (st_npy_load(path, &a)) return cli_fail();
    st_status rc = st_array_to_tensor(&a, t);
    st_array_free(&a);
    if (rc) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    return 0;
}

static int cmd_run(int argc, char **argv) {
    cli_opt opts[] = {{"--weights", "W.safetensors", "weights by state_dict name (default: seeded He initialisation)", NULL},
                      {"--input", "X.npy", "input batch, e.g. (N, 1, 40)", NULL},
                      {"--output", "Y.npy", "where to write the output (float32)", NULL},
                      {"--seed", "N", "initialisation seed when no weights are given (1)", NULL},
                      {"--threads", "N", "threads (default: all cores)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("run", "MODEL [--weights W.safetensors] --input X.npy --output Y.npy", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("run needs a MODEL (a built-in name or a model file)");
    if (!opt_get(opts, "--input") || !opt_get(opts, "--output")) return cli_error("run needs --input X.npy and --output Y.npy");
    if (apply_threads(opts)) return 2;
    st_net *net;
    st_tensor *x = NULL;
    if ((rc = open_model(pos[0], opts, &net))) return rc;
    if ((rc = load_tensor(opt_get(opts, "--input"), &x))) { st_net_free(net); return rc; }
    const st_tensor *y;
    if (st_net_run(net, x, &y)) rc = cli_fail(); /* inference: folded batch norm, shared memory */
    else {
        st_array a = {ST_F32, y->ndim, {0}, y->data};
        for (int i = 0; i < y->ndim; i++) a.shape[i] = y->shape[i];
        if (st_npy_save(opt_get(opts, "--output"), &a)) rc = cli_fail();
    }
    st_tensor_free(x);
    st_net_free(net);
    return rc;
}

static int cmd_grad(int argc, char **argv) {
    cli_opt opts[] = {{"--weights", "W.safetensors", "weights by state_dict name (default: seeded He initialisation)", NULL},
                      {"--input", "X.npy", "input batch", NULL},
                      {"--target", "T.npy", "class indices (int32/int64) for ce, or a tensor shaped like the output for mse", NULL},
                      {"--loss", "ce|mse|bce", "loss (default ce; bce = binary cross-entropy on logits)", NULL},
                      {"--output", "G.safetensors", "writes 'loss', every parameter's gradient by name, and 'input'", NULL},
                      {"--ignore-index", "N", "ce targets equal to N count for nothing (-100, as PyTorch)", NULL},
                      {"--seed", "N", "initialisation seed when no weights are given (1)", NULL},
                      {"--threads", "N", "threads (default: all cores)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("grad", "MODEL [--weights W] --input X.npy --target T.npy [--loss ce|mse|bce] --output G.safetensors",
                                 opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("grad needs a MODEL (a built-in name or a model file)");
    const char *loss = opt_get(opts, "--loss") ? opt_get(opts, "--loss") : "ce";
    if (strcmp(loss, "ce") && strcmp(loss, "mse") && strcmp(loss, "bce"))
        return cli_error("--loss must be 'ce', 'mse' or 'bce', not '%s'", loss);
    if (!opt_get(opts, "--input") || !opt_get(opts, "--target") || !opt_get(opts, "--output"))
        return cli_error("grad needs --input X.npy, --target T.npy and --output G.safetensors");
    if (apply_threads(opts)) return 2;
    st_net *net;
    st_tensor *x = NULL, *t = NULL;
    int32_t *labels = NULL;
    if ((rc = open_model(pos[0], opts, &net))) return rc;
    if ((rc = load_tensor(opt_get(opts, "--input"), &x))) goto done;
    st_array ta;
    const char *tpath = opt_get(opts, "--target");
    if (st_npy_load(tpath, &ta)) { rc = cli_fail(); goto done; }
    int64_t nl = 0;
    st_status s = !strcmp(loss, "ce") ? st_array_to_labels(&ta, &labels, &nl) : st_array_to_tensor(&ta, &t);
    st_array_free(&ta);
    if (s) { fprintf(stderr, "stride: %s: %s\n", tpath, st_errmsg()); rc = 1; goto done; }
    if (labels) {
        /* one label per sample, or per position for (N, C, H, W) logits */
        int nd, sh[ST_MAX_DIMS];
        st_net_node_shape(net, st_net_num_nodes(net) - 1, &nd, sh);
        int64_t per = 1;
        for (int k = 2; k < nd; k++) per *= sh[k];
        if (nl != (int64_t)x->shape[0] * per) {
            fprintf(stderr, "stride: %s: %lld labels, but a batch of %d with %lld output position(s) each needs %lld\n",
                    tpath, (long long)nl, x->shape[0], (long long)per, (long long)x->shape[0] * per);
            rc = 1;
            goto done;
        }
        long ig;
        if (opt_int(opts, "--ignore-index", -100, -2147483647L, 2147483647L, &ig)) { rc = 2; goto done; }
        st_net_set_ignore_index(net, (int)ig);
    }
    float L;
    st_net_zero_grad(net);
    if (st_net_forward(net, x, 1, NULL) || st_net_loss(net, labels ? ST_LOSS_CE : !strcmp(loss, "bce") ? ST_LOSS_BCE : ST_LOSS_MSE, labels, t, &L) ||
        st_net_backward(net, 1)) {
        rc = cli_fail();
        goto done;
    }
    st_tensors out;
    st_tensors_init(&out);
    s = st_tensors_add_f32(&out, "loss", 0, NULL, &L);
    for (int i = 0; !s && i < st_net_num_params(net); i++) {
        st_tensor *g = st_net_param_grad(net, i);
        s = st_tensors_add_f32(&out, st_net_param_name(net, i), g->ndim, g->shape, g->data);
    }
    const st_tensor *gx = st_net_input_grad(net);
    if (!s) s = st_tensors_add_f32(&out, "input", x->ndim, x->shape, gx->data);
    if (!s) s = st_safetensors_save(opt_get(opts, "--output"), &out);
    if (s) rc = cli_fail();
    st_tensors_free(&out);
done:
    free(labels);
    st_tensor_free(x);
    st_tensor_free(t);
    st_net_free(net);
    return rc;
}

/* ---------------------------------------------------------------- main */
static void usage(FILE *f) {
    fprintf(f,
            "stride %s - convolutional neural networks in C\n\n"
            "usage: stride COMMAND [options]   (stride COMMAND --help for its options)\n\n"
            "commands:\n"
            "  summary MODEL          per node: output shape, parameters, receptive field, MACs\n"
            "  model NAME|FILE        print a model as a model file (built-ins: stride model)\n"
            "  train MODEL            train (defaults: the book's protocol on MNIST-1D)\n"
            "  experiment mnist1d     the CNN-versus-MLP experiment of UDL figure 10.8\n"
            "  data mnist1d --out DIR write the MNIST-1D data set as .npy files\n"
            "  run MODEL              eval-mode forward of an .npy batch\n"
            "  grad MODEL             loss and gradients of an .npy batch as safetensors\n"
            "  equivariance MODEL     how far each layer is from shift equivariance and invariance\n"
            "  plot LOG.jsonl ...     training curves from 'train --log' files, as PNG\n"
            "  show MODEL             filters, feature maps and predictions as PNG\n"
            "  eval MODEL             metrics of trained weights on a data set (--weights W --data SPEC)\n"
            "  version                print the version\n\n"
            "MODEL is a built-in name (stride model lists them) or a model file.\n",
            ST_VERSION);
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *c = argv[1];
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) { usage(stdout); return 0; }
    if (!strcmp(c, "version") || !strcmp(c, "--version")) { printf("stride %s\n", ST_VERSION); return 0; }
    if (!strcmp(c, "summary")) return cmd_summary(argc, argv);
    if (!strcmp(c, "model")) return cmd_model(argc, argv);
    if (!strcmp(c, "train")) return cmd_train(argc, argv);
    if (!strcmp(c, "experiment")) return cmd_experiment(argc, argv);
    if (!strcmp(c, "data")) return cmd_data(argc, argv);
    if (!strcmp(c, "run")) return cmd_run(argc, argv);
    if (!strcmp(c, "grad")) return cmd_grad(argc, argv);
    if (!strcmp(c, "equivariance")) return cmd_equivariance(argc, argv);
    if (!strcmp(c, "plot")) return cmd_plot(argc, argv);
    if (!strcmp(c, "show")) return cmd_show(argc, argv);
    if (!strcmp(c, "eval")) return cmd_eval(argc, argv);
    fprintf(stderr, "stride: unknown command '%s'\n\n", c);
    usage(stderr);
    return 2;
}
