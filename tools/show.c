/* show.c - the picture commands: `stride plot` (training curves from --log files) and
 * `stride show` (first-layer filters, feature maps of every layer for one input, and a
 * model's predictions drawn over its inputs: masks, heatmaps, 1D signals, confusion
 * matrix). The drawing itself is in plot.c; this file reads files, runs the network
 * through the public API and arranges the numbers for it. */
#include "cli.h"
#include "plot.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ================================================================ stride plot */
/* The keys of a `stride train --log` line that are drawn; any may be missing or null. */
enum { K_STEP, K_EPOCH, K_LR, K_TRAIN_LOSS, K_TRAIN_ERR, K_TEST_LOSS, K_TEST_ERR, K_SECONDS,
       K_MIOU, K_PCK, K_TOP5, N_KEYS };
static const char *const log_keys[N_KEYS] = {"step", "epoch", "lr", "train_loss", "train_error", "test_loss",
                                             "test_error", "seconds", "test_miou", "test_pck", "test_top5"};

typedef struct {
    const char *path;
    int n, cap;
    double *v[N_KEYS]; /* v[key][record]; NaN where missing or null */
} log_data;

static void free_log(log_data *L) {
    for (int k = 0; k < N_KEYS; k++) free(L->v[k]);
}

/* A tiny reader for one flat JSON object per line: "key": number | null | true | false |
 * "string" (nested values are skipped). Fills vals[key] for the keys above. On a syntax
 * error returns the column (1-based) and sets *why; 0 when the line is good. */
static int skip_ws(const char *s, int i) {
    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') i++;
    return i;
}
static int skip_string(const char *s, int i) { /* s[i] == '"'; returns the index after the closing quote, or -1 */
    for (i++; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) i++;
        else if (s[i] == '"') return i + 1;
    }
    return -1;
}
static int skip_value(const char *s, int i, const char **why) { /* any JSON value; -1 on error */
    i = skip_ws(s, i);
    if (s[i] == '"') {
        int j = skip_string(s, i);
        if (j < 0) *why = "unterminated string";
        return j;
    }
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; s[i]; i++) {
            if (s[i] == '"') { i = skip_string(s, i); if (i < 0) { *why = "unterminated string"; return -1; } i--; }
            else if (s[i] == '{' || s[i] == '[') depth++;
            else if ((s[i] == '}' || s[i] == ']') && --depth == 0) return i + 1;
        }
        *why = "unterminated object or array";
        return -1;
    }
    int j = i;
    while (s[j] && (isalnum((unsigned char)s[j]) || s[j] == '-' || s[j] == '+' || s[j] == '.')) j++;
    if (j == i) { *why = "expected a value"; return -1; }
    return j;
}

static int parse_log_line(const char *s, double vals[N_KEYS], const char **why) {
    for (int k = 0; k < N_KEYS; k++) vals[k] = NAN;
    int i = skip_ws(s, 0);
    if (s[i] != '{') { *why = "expected '{' (one JSON object per line)"; return i + 1; }
    i = skip_ws(s, i + 1);
    if (s[i] == '}') goto end;
    for (;;) {
        if (s[i] != '"') { *why = "expected a quoted key"; return i + 1; }
        int kend = skip_string(s, i);
        if (kend < 0) { *why = "unterminated key"; return i + 1; }
        const char *key = s + i + 1;
        int klen = kend - i - 2, which = -1;
        for (int k = 0; k < N_KEYS; k++)
            if ((int)strlen(log_keys[k]) == klen && !strncmp(log_keys[k], key, klen)) which = k;
        i = skip_ws(s, kend);
        if (s[i] != ':') { *why = "expected ':' after a key"; return i + 1; }
        i = skip_ws(s, i + 1);
        int vstart = i;
        if ((i = skip_value(s, i, why)) < 0) return vstart + 1;
        if (which >= 0) {
            if (!strncmp(s + vstart, "null", 4) && i - vstart == 4) vals[which] = NAN;
            else {
                char *end;
                double x = strtod(s + vstart, &end);
                if (end != s + i) { *why = "expected a number or null"; return vstart + 1; }
                vals[which] = x;
            }
        }
        i = skip_ws(s, i);
        if (s[i] == ',') { i = skip_ws(s, i + 1); continue; }
        if (s[i] == '}') break;
        *why = "expected ',' or '}'";
        return i + 1;
    }
end:
    i = skip_ws(s, i + 1);
    if (s[i]) { *why = "text after the object"; return i + 1; }
    return 0;
}

static int read_log(const char *path, log_data *L) {
    memset(L, 0, sizeof *L);
    L->path = path;
    FILE *f = fopen(path, "r");
    if (!f) return cli_error("plot: cannot open '%s': %s", path, strerror(errno));
    char *line = NULL;
    size_t len = 0;
    long lineno = 0;
    int rc = 0;
    while (getline(&line, &len, f) != -1) {
        lineno++;
        if (line[skip_ws(line, 0)] == 0) continue; /* blank lines are fine */
        double vals[N_KEYS];
        const char *why = "";
        int col = parse_log_line(line, vals, &why);
        if (col) { rc = cli_error("plot: %s:%ld:%d: %s", path, lineno, col, why); break; }
        if (L->n == L->cap) {
            L->cap = L->cap ? 2 * L->cap : 64;
            for (int k = 0; k < N_KEYS; k++) {
                double *p = realloc(L->v[k], sizeof(double) * L->cap);
                if (!p) { rc = cli_error("out of memory"); goto done; }
                L->v[k] = p;
            }
        }
        if (isnan(vals[K_STEP])) vals[K_STEP] = L->n; /* no step: the record's number */
        for (int k = 0; k < N_KEYS; k++) L->v[k][L->n] = vals[k];
        L->n++;
    }
    if (!rc && L->n == 0) rc = cli_error("plot: %s holds no records (expected one JSON object per line, as 'stride train --log' writes)", path);
done:
    free(line);
    fclose(f);
    if (rc) free_log(L);
    return rc;
}

static int has_values(const log_data *L, int key) {
    for (int i = 0; i < L->n; i++)
        if (isfinite(L->v[key][i])) return 1;
    return 0;
}

/* "runs/a.jsonl" -> "a" */
static void short_name(const char *path, char *buf, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(buf, n, "%s", b);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = 0;
}

int cmd_plot(int argc, char **argv) {
    cli_opt opts[] = {{"--out", "PNG", "the picture to write (default curves.png)", NULL},
                      {"--title", "TEXT", "figure title (default: training curves)", NULL},
                      {NULL, NULL, NULL, NULL}};
    enum { MAX_LOGS = 16 };
    const char *pos[MAX_LOGS];
    int npos, rc = parse_options("plot", "LOG.jsonl [LOG2.jsonl ...] [--out curves.png]", opts, argc, argv, 2, pos,
                                 MAX_LOGS, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos < 1) return cli_error("plot needs at least one log file (written by 'stride train --log FILE')");
    const char *out = opt_get(opts, "--out") ? opt_get(opts, "--out") : "curves.png";
    log_data logs[MAX_LOGS];
    int nlogs = 0;
    for (; nlogs < npos; nlogs++)
        if ((rc = read_log(pos[nlogs], &logs[nlogs]))) break;
    if (rc) goto done;

    /* panels: loss, error, metrics (mIoU, PCK, top-5) and learning rate, where any log has them */
    static const int metric_keys[3] = {K_MIOU, K_PCK, K_TOP5};
    static const char *const metric_names[3] = {"mIoU", "PCK", "top-5"};
    int want[4] = {0}, panel_of[4];
    for (int l = 0; l < nlogs; l++) {
        want[0] |= has_values(&logs[l], K_TRAIN_LOSS) || has_values(&logs[l], K_TEST_LOSS);
        want[1] |= has_values(&logs[l], K_TRAIN_ERR) || has_values(&logs[l], K_TEST_ERR);
        for (int m = 0; m < 3; m++) want[2] |= has_values(&logs[l], metric_keys[m]);
        want[3] |= has_values(&logs[l], K_LR);
    }
    static const char *const all_titles[4] = {"loss", "error", "test metric", "learning rate"};
    const char *titles[4];
    int np = 0;
    for (int p = 0; p < 4; p++) {
        panel_of[p] = want[p] ? np : -1;
        if (want[p]) titles[np++] = all_titles[p];
    }
    if (np == 0) {
        rc = cli_error("plot: no values to draw: none of the logs has train_loss, test_loss, train_error, test_error, "
                       "test_miou, test_pck, test_top5 or lr");
        goto done;
    }
    plot_series ser[MAX_LOGS * 8];
    char labels[MAX_LOGS * 8][96];
    int ns = 0;
    for (int l = 0; l < nlogs; l++) {
        char name[64];
        short_name(logs[l].path, name, sizeof name);
        const double *x = logs[l].v[K_STEP];
        struct { int key, panel, dashed; const char *what; } lines[8] = {
            {K_TRAIN_LOSS, 0, 0, "train"}, {K_TEST_LOSS, 0, 1, "test"},
            {K_TRAIN_ERR, 1, 0, "train"},  {K_TEST_ERR, 1, 1, "test"},
            {K_MIOU, 2, 1, metric_names[0]}, {K_PCK, 2, 1, metric_names[1]}, {K_TOP5, 2, 1, metric_names[2]},
            {K_LR, 3, 0, ""}};
        for (int k = 0; k < 8; k++) {
            if (!has_values(&logs[l], lines[k].key)) continue;
            if (nlogs == 1) snprintf(labels[ns], sizeof labels[ns], "%s", lines[k].what);
            else snprintf(labels[ns], sizeof labels[ns], "%s%s%s", name, lines[k].what[0] ? " " : "", lines[k].what);
            int color = nlogs == 1 ? (k >= 4 && k < 7 ? k - 4 : 0) : l + (k >= 4 && k < 7 ? k - 4 : 0);
            ser[ns] = (plot_series){labels[ns], logs[l].n, x, logs[l].v[lines[k].key], panel_of[lines[k].panel],
                                    lines[k].dashed, color};
            ns++;
        }
    }
    const char *title = opt_get(opts, "--title") ? opt_get(opts, "--title") : "training curves";
    plot_opts po = {title, np, titles, "step", NULL, 0, 0, 0, 0};
    po.width = np == 1 ? 700 : 480 * np;
    char err[512];
    if (plot_lines_own_y(out, &po, ser, ns, err, sizeof err)) rc = cli_error("plot: %s", err);
    else printf("wrote %s (%d log%s, %d panel%s)\n", out, nlogs, nlogs > 1 ? "s" : "", np, np > 1 ? "s" : "");
done:
    for (int l = 0; l < nlogs; l++) free_log(&logs[l]);
    return rc;
}

/* ================================================================ stride show */
#define MAX_FEATURE_CHANNELS 64
#define MAX_FILTERS 64
#define MAX_FILTER_INPUTS 16

/* The first conv1d/conv2d node and its weight: (out, in/groups, k) or (out, in/groups, kh, kw). */
static int first_conv(st_net *net, int *node, st_tensor **weight) {
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        const char *op = st_net_node_op(net, i);
        if (strcmp(op, "conv1d") && strcmp(op, "conv2d")) continue;
        char want[512];
        snprintf(want, sizeof want, "%s.weight", st_net_node_name(net, i));
        for (int p = 0; p < st_net_num_params(net); p++)
            if (!strcmp(st_net_param_name(net, p), want)) {
                *node = i;
                *weight = st_net_param(net, p);
                return 0;
            }
    }
    return -1;
}

static int show_filters(st_net *net, const char *model, const char *png) {
    int node;
    st_tensor *wt;
    if (first_conv(net, &node, &wt))
        return cli_error("show: %s has no convolution layer (conv1d or conv2d), so no filters to show", model);
    int out = wt->shape[0], in = wt->shape[1], dims = wt->ndim - 2;
    int kh = dims == 2 ? wt->shape[2] : 1, kw = wt->shape[wt->ndim - 1];
    size_t per = (size_t)in * kh * kw;
    int nf = out < MAX_FILTERS ? out : MAX_FILTERS;
    int rgb = dims == 2 && in == 3;
    int nin = rgb || dims == 1 ? in : (in < MAX_FILTER_INPUTS ? in : MAX_FILTER_INPUTS);
    char title[256], shape[64];
    st_shape_str(wt->ndim, wt->shape, shape, sizeof shape);
    int len = snprintf(title, sizeof title, "%s: filters of %s, weight %s", model, st_net_node_name(net, node), shape);
    if (nf < out || nin < in)
        snprintf(title + len, sizeof title - len, " (first %d filters%s shown)", nf,
                 nin < in ? ", first input channels" : "");
    int rc = 0;
    if (dims == 1) { /* line plots: one cell per filter, one line per input channel */
        char (*cap)[16] = malloc(sizeof *cap * nf);
        const char **caps = malloc(sizeof *caps * nf);
        if (!cap || !caps) { free(cap); free(caps); return cli_error("out of memory"); }
        for (int f = 0; f < nf; f++) { snprintf(cap[f], sizeof cap[f], "filter %d", f); caps[f] = cap[f]; }
        if (plot_signal_grid(png, title, wt->data, nf, in, kw, 0, 1, caps)) rc = cli_error("show: %s", plot_errmsg());
        free(cap);
        free(caps);
        if (!rc) printf("wrote %s: %d filters of %s\n", png, nf, st_net_node_name(net, node));
        return rc;
    }
    /* images: each filter scaled by its largest magnitude into [-1, 1] (0 stays white) */
    int cells = rgb ? nf : nf * nin, cols = rgb || nin == 1 ? 0 : nin;
    float *x = malloc(sizeof(float) * (size_t)cells * (rgb ? 3 : 1) * kh * kw);
    char (*cap)[32] = malloc(sizeof *cap * cells);
    const char **caps = malloc(sizeof *caps * cells);
    if (!x || !cap || !caps) { rc = cli_error("out of memory"); goto done; }
    size_t plane = (size_t)kh * kw;
    for (int f = 0; f < nf; f++) {
        const float *w = wt->data + f * per;
        double m = 0;
        for (size_t k = 0; k < per; k++) m = fmax(m, fabs(w[k]));
        if (!(m > 0)) m = 1;
        if (rgb) { /* 0.5 + w / 2m per colour channel: grey is zero */
            for (size_t k = 0; k < 3 * plane; k++) x[f * 3 * plane + k] = (float)(0.5 + 0.5 * w[k] / m);
            snprintf(cap[f], sizeof cap[f], "%d", f);
            caps[f] = cap[f];
        } else {
            for (int c = 0; c < nin; c++) {
                int cell = f * nin + c;
                for (size_t k = 0; k < plane; k++) x[cell * plane + k] = (float)(w[c * plane + k] / m);
                if (nin == 1) snprintf(cap[cell], sizeof cap[cell], "%d", f);
                else snprintf(cap[cell], sizeof cap[cell], "%d / in %d", f, c);
                caps[cell] = cap[cell];
            }
        }
    }
    rc = plot_image_grid(png, title, x, cells, rgb ? 3 : 1, kh, kw, cols, rgb ? PLOT_UNIT : PLOT_DIVERGING, rgb, caps);
    if (rc) rc = cli_error("show: %s", plot_errmsg());
    else printf("wrote %s: %d filters of %s\n", png, nf, st_net_node_name(net, node));
done:
    free(x);
    free(cap);
    free(caps);
    return rc;
}

/* Loads an .npy batch and checks it against the net's input shape. */
static int load_input(const char *path, st_net *net, st_tensor **x) {
    st_array a;
    if (st_npy_load(path, &a)) return cli_fail();
    st_status s = st_array_to_tensor(&a, x);
    st_array_free(&a);
    if (s) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    int nd, sh[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, sh);
    int okshape = (*x)->ndim == nd;
    for (int k = 1; okshape && k < nd; k++) okshape = (*x)->shape[k] == sh[k];
    if (!okshape) {
        char want[64], got[64];
        sh[0] = (*x)->ndim > 0 ? (*x)->shape[0] : 1;
        st_shape_str(nd, sh, want, sizeof want);
        st_shape_str((*x)->ndim, (*x)->shape, got, sizeof got);
        st_tensor_free(*x);
        *x = NULL;
        return cli_error("show: %s holds %s, but the model's input is %s", path, got, want);
    }
    return 0;
}

static int load_input_plain(const char *path, st_tensor **t) {
    st_array a;
    if (st_npy_load(path, &a)) return cli_fail();
    st_status s = st_array_to_tensor(&a, t);
    st_array_free(&a);
    if (s) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    return 0;
}

/* Samples first..first+count-1 of x as a new batch. */
static st_tensor *slice(const st_tensor *x, int first, int count) {
    int sh[ST_MAX_DIMS];
    memcpy(sh, x->shape, sizeof sh);
    sh[0] = count;
    st_tensor *t = st_tensor_new(x->ndim, sh);
    if (!t) return NULL;
    size_t per = st_tensor_numel(x) / x->shape[0];
    memcpy(t->data, x->data + (size_t)first * per, sizeof(float) * per * count);
    return t;
}

static void safe_name(const char *name, char *buf, size_t n) {
    size_t i = 0;
    for (; name[i] && i + 1 < n; i++) buf[i] = isalnum((unsigned char)name[i]) || name[i] == '.' || name[i] == '-' ? name[i] : '_';
    buf[i] = 0;
}

static int show_features(st_net *net, const st_tensor *x1, const char *dir, int index) {
    const st_tensor *y;
    if (st_net_forward(net, x1, 0, &y)) return cli_fail();
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) return cli_error("show: cannot create folder '%s': %s", dir, strerror(errno));
    int written = 0, rc = 0;
    for (int i = 0; i < st_net_num_nodes(net) && !rc; i++) {
        const st_tensor *o = st_net_node_output(net, i);
        if (!o || (o->ndim != 3 && o->ndim != 4)) continue; /* no spatial layout */
        st_node_info in;
        st_net_node_info(net, i, &in);
        int C = o->shape[1], show = C < MAX_FEATURE_CHANNELS ? C : MAX_FEATURE_CHANNELS;
        char shape[64], title[384], safe[200], path[4096];
        st_shape_str(o->ndim, o->shape, shape, sizeof shape);
        int len = snprintf(title, sizeof title, "%s (%s) %s, sample %d", in.name, in.op, shape, index);
        if (show < C) snprintf(title + len, sizeof title - len, ": first %d of %d channels", show, C);
        safe_name(in.name, safe, sizeof safe);
        snprintf(path, sizeof path, "%s/%03d_%s.png", dir, i, safe);
        char (*cap)[16] = malloc(sizeof *cap * show);
        const char **caps = malloc(sizeof *caps * show);
        if (!cap || !caps) { free(cap); free(caps); return cli_error("out of memory"); }
        for (int c = 0; c < show; c++) { snprintf(cap[c], sizeof cap[c], "%d", c); caps[c] = cap[c]; }
        int r = o->ndim == 4 ? plot_image_grid(path, title, o->data, show, 1, o->shape[2], o->shape[3], 0, PLOT_VIRIDIS, 0, caps)
                             : plot_signal_grid(path, title, o->data, show, 1, o->shape[2], 0, 0, caps);
        if (r) rc = cli_error("show: %s: %s", in.name, plot_errmsg());
        else written++;
        free(cap);
        free(caps);
    }
    if (!rc) printf("wrote %d feature-map pictures to %s/ (at most %d channels each)\n", written, dir, MAX_FEATURE_CHANNELS);
    return rc;
}

/* Labels from an .npy file: exactly `need` of them. */
static int load_labels(const char *path, int64_t need, int32_t **out) {
    st_array a;
    int64_t n;
    if (st_npy_load(path, &a)) return cli_fail();
    st_status s = st_array_to_labels(&a, out, &n);
    st_array_free(&a);
    if (s) { fprintf(stderr, "stride: %s: %s\n", path, st_errmsg()); return 1; }
    if (n < need) {
        free(*out);
        *out = NULL;
        return cli_error("show: %s holds %lld labels, but %lld are needed", path, (long long)n, (long long)need);
    }
    return 0;
}

static int argmax_channel(const float *y, int C, size_t plane, size_t k) {
    int best = 0;
    for (int c = 1; c < C; c++)
        if (y[c * plane + k] > y[best * plane + k]) best = c;
    return best;
}

/* Predictions of samples first..first+count-1 drawn over their inputs. */
static int show_predictions(st_net *net, const st_tensor *x, int first, int count, const char *truth_path,
                            const char *masks, const char *heat, const char *signals) {
    st_tensor *b = slice(x, first, count);
    const st_tensor *y;
    int rc = 0;
    int32_t *truth = NULL, *pred = NULL;
    st_tensor *th = NULL;
    if (!b) return cli_error("out of memory");
    if (st_net_forward(net, b, 0, &y)) { rc = cli_fail(); goto done; }
    if (masks || heat) {
        if (b->ndim != 4 || y->ndim != 4) { rc = cli_error("show: --masks and --heatmaps need images in and (N, C, H, W) maps out"); goto done; }
        size_t plane = (size_t)y->shape[2] * y->shape[3];
        if (masks) {
            if (y->shape[2] != b->shape[2] || y->shape[3] != b->shape[3]) {
                rc = cli_error("show: --masks needs an output the size of the input (%dx%d), not %dx%d", b->shape[2], b->shape[3], y->shape[2], y->shape[3]);
                goto done;
            }
            pred = malloc(sizeof(int32_t) * plane * count);
            if (!pred) { rc = cli_error("out of memory"); goto done; }
            for (int i = 0; i < count; i++)
                for (size_t k = 0; k < plane; k++) pred[i * plane + k] = argmax_channel(y->data + i * y->shape[1] * plane, y->shape[1], plane, k);
            if (truth_path) {
                int32_t *all;
                if ((rc = load_labels(truth_path, (int64_t)(first + count) * plane, &all))) goto done;
                truth = all;
            }
            if (plot_masks(masks, b->data, count, b->shape[1], b->shape[2], b->shape[3], truth ? truth + first * plane : NULL, pred, y->shape[1]))
                rc = cli_error("show: %s", plot_errmsg());
            else printf("wrote %s\n", masks);
        } else {
            if (truth_path && (rc = load_input_plain(truth_path, &th))) goto done;
            if (th && (th->ndim != 4 || th->shape[0] < first + count || th->shape[1] != y->shape[1] || th->shape[2] != y->shape[2] || th->shape[3] != y->shape[3])) {
                char want[64], got[64];
                int sh[4] = {first + count, y->shape[1], y->shape[2], y->shape[3]};
                st_shape_str(4, sh, want, sizeof want);
                st_shape_str(th->ndim, th->shape, got, sizeof got);
                rc = cli_error("show: %s holds %s, but heatmaps of at least %s are needed", truth_path, got, want);
                goto done;
            }
            if (plot_heatmaps(heat, b->data, count, b->shape[1], b->shape[2], b->shape[3], y->data, y->shape[1], y->shape[2], y->shape[3],
                              th ? th->data + (size_t)first * y->shape[1] * plane : NULL))
                rc = cli_error("show: %s", plot_errmsg());
            else printf("wrote %s\n", heat);
        }
    }
    if (signals && !rc) {
        if (b->ndim != 3) { rc = cli_error("show: --signals needs 1D inputs (N, C, L), not %dD", b->ndim - 2); goto done; }
        if (y->ndim == 2) {
            free(pred);
            pred = malloc(sizeof(int32_t) * count);
            if (!pred) { rc = cli_error("out of memory"); goto done; }
            for (int i = 0; i < count; i++) pred[i] = argmax_channel(y->data + (size_t)i * y->shape[1], y->shape[1], 1, 0);
        }
        if (truth_path && !truth) {
            int32_t *all;
            if ((rc = load_labels(truth_path, first + count, &all))) goto done;
            truth = all;
        }
        if (plot_signals(signals, b->data, count, b->shape[1], b->shape[2], truth ? truth + first : NULL, y->ndim == 2 ? pred : NULL))
            rc = cli_error("show: %s", plot_errmsg());
        else printf("wrote %s\n", signals);
    }
done:
    free(truth);
    free(pred);
    st_tensor_free(th);
    st_tensor_free(b);
    return rc;
}

/* A confusion matrix of a classifier's (N, C) outputs over the whole batch x against labels. */
static int show_confusion(st_net *net, const st_tensor *x, const char *truth_path, const char *png) {
    int N = x->shape[0], classes = 0, rc = 0;
    int32_t *labels = NULL;
    int64_t *counts = NULL;
    if (!truth_path) return cli_error("show: --confusion needs --truth LABELS.npy (one class per sample)");
    if ((rc = load_labels(truth_path, N, &labels))) return rc;
    enum { CHUNK = 64 };
    for (int first = 0; first < N && !rc; first += CHUNK) {
        int count = N - first < CHUNK ? N - first : CHUNK;
        st_tensor *b = slice(x, first, count);
        const st_tensor *y;
        if (!b) { rc = cli_error("out of memory"); break; }
        if (st_net_forward(net, b, 0, &y)) rc = cli_fail();
        else if (y->ndim != 2) rc = cli_error("show: --confusion needs a classifier, with (N, classes) outputs");
        else {
            if (!counts) {
                classes = y->shape[1];
                counts = calloc((size_t)classes * classes, sizeof *counts);
                if (!counts) rc = cli_error("out of memory");
            }
            for (int i = 0; i < count && !rc; i++) {
                int t = labels[first + i];
                if (t < 0 || t >= classes) {
                    rc = cli_error("show: %s: label %d of sample %d is not a class of 0..%d", truth_path, t, first + i, classes - 1);
                    break;
                }
                counts[(size_t)t * classes + argmax_channel(y->data + (size_t)i * classes, classes, 1, 0)]++;
            }
        }
        st_tensor_free(b);
    }
    if (!rc) {
        if (plot_confusion(png, counts, classes, NULL)) rc = cli_error("show: %s", plot_errmsg());
        else printf("wrote %s\n", png);
    }
    free(labels);
    free(counts);
    return rc;
}

int cmd_show(int argc, char **argv) {
    cli_opt opts[] = {{"--weights", "W.safetensors", "weights by state_dict name (default: He initialisation, seed 1)", NULL},
                      {"--filters", "PNG", "draw the first convolution layer's filters", NULL},
                      {"--input", "X.npy", "input batch for --features and the pictures of predictions", NULL},
                      {"--index", "I", "the sample of X.npy that --features runs, the first one the others draw (0)", NULL},
                      {"--count", "N", "how many samples --masks, --heatmaps and --signals draw (4)", NULL},
                      {"--features", "DIR", "one PNG per node with spatial output: its feature maps for one sample", NULL},
                      {"--masks", "PNG", "segmentation: predicted (argmax) masks over the images", NULL},
                      {"--heatmaps", "PNG", "keypoints: predicted heatmaps over the images", NULL},
                      {"--signals", "PNG", "1D inputs as line plots, with predicted classes", NULL},
                      {"--confusion", "PNG", "a classifier's confusion matrix over all of X.npy (needs --truth)", NULL},
                      {"--truth", "T.npy", "labels (per sample or pixel) or true heatmaps, drawn beside the predictions", NULL},
                      {"--threads", "N", "threads (default: all cores)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("show", "MODEL [--weights W] --filters PNG | --input X.npy [--index I] --features DIR | ...",
                                 opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("show needs a MODEL (a built-in name or a model file)");
    const char *filters = opt_get(opts, "--filters"), *input = opt_get(opts, "--input");
    const char *features = opt_get(opts, "--features"), *masks = opt_get(opts, "--masks");
    const char *heat = opt_get(opts, "--heatmaps"), *signals = opt_get(opts, "--signals");
    const char *confusion = opt_get(opts, "--confusion"), *truth = opt_get(opts, "--truth");
    int needs_input = features || masks || heat || signals || confusion;
    if (!filters && !needs_input)
        return cli_error("show: nothing to draw: give --filters PNG, or --input X.npy with --features DIR, --masks, --heatmaps, --signals or --confusion");
    if (needs_input && !input) return cli_error("show: --features, --masks, --heatmaps, --signals and --confusion need --input X.npy");
    if (masks && heat) return cli_error("show: --masks and --heatmaps read the output in two different ways: give one of them");
    long index, count, threads;
    if (opt_int(opts, "--index", 0, 0, 0x7fffffffL, &index) || opt_int(opts, "--count", 4, 1, 256, &count) ||
        opt_int(opts, "--threads", 0, 0, 1024, &threads))
        return 2;
    st_set_threads((int)threads);
    st_net *net;
    st_tensor *x = NULL;
    if (st_net_open(pos[0], &net)) return cli_fail();
    const char *w = opt_get(opts, "--weights");
    if (w ? st_net_load_weights(net, w) : st_net_init(net, ST_INIT_HE, 1)) { rc = cli_fail(); goto done; }
    if (filters && (rc = show_filters(net, pos[0], filters))) goto done;
    if (!needs_input) goto done;
    if ((rc = load_input(input, net, &x))) goto done;
    /* inputs normalised as the model was trained (stride train stores it in the weights) */
    if (w && x->ndim >= 3) {
        int C = x->shape[1];
        float *mean = malloc(sizeof(float) * C), *std = malloc(sizeof(float) * C);
        int found = mean && std ? cli_weights_normalization(w, mean, std, C) : -1;
        if (found == 1) {
            size_t plane = st_tensor_numel(x) / ((size_t)x->shape[0] * C);
            for (size_t i = 0; i < st_tensor_numel(x); i++) {
                int c = (int)(i / plane % (size_t)C);
                x->data[i] = (x->data[i] - mean[c]) / std[c];
            }
            printf("inputs normalised as in training (%s metadata)\n", w);
        }
        free(mean);
        free(std);
        if (found < 0) { rc = 1; goto done; }
    }
    if (index >= x->shape[0]) {
        rc = cli_error("show: --index %ld is out of range: %s holds %d sample%s (0..%d)", index, input, x->shape[0],
                       x->shape[0] == 1 ? "" : "s", x->shape[0] - 1);
        goto done;
    }
    if (features) {
        st_tensor *x1 = slice(x, (int)index, 1);
        if (!x1) { rc = cli_error("out of memory"); goto done; }
        rc = show_features(net, x1, features, (int)index);
        st_tensor_free(x1);
        if (rc) goto done;
    }
    if (masks || heat || signals) {
        int n = x->shape[0] - (int)index < count ? x->shape[0] - (int)index : (int)count;
        if ((rc = show_predictions(net, x, (int)index, n, truth, masks, heat, signals))) goto done;
    }
    if (confusion) rc = show_confusion(net, x, truth, confusion);
done:
    st_tensor_free(x);
    st_net_free(net);
    return rc;
}

