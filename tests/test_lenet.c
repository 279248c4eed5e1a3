/* test_lenet.c - LeNet-5 in the zoo (models.md A2, A3) and the ops the 1998 network needs.
 *
 * 1. lenet5: parameter counts from the layer formulas for every option combination (61,706
 *    at 28 with padding and at 32; 44,426 at 28 without), node names, output shapes, the
 *    activation and pooling options, and bad options with messages naming them.
 * 2. lenet5-classic: 60,000 trainable parameters, per layer 156 / 12 / 1,516 / 32 / 48,120 /
 *    10,164 (the paper's table I), C3's connection table as written in the model text, the
 *    fixed RBF centres (a buffer: +1/-1 as drawn, untouched by st_net_init, not a parameter)
 *    and the output shape; a forward pass whose best score is the nearest digit bitmap.
 * 3. Finite differences in double for scaled_tanh, select (with a repeated channel) and rbf:
 *    loss = sum(y * r) for a fixed random r, central differences with h = 2^-20, relative
 *    error |a - n| / max(|a|, |n|, 1e-3) <= 1e-6 on every input element. The float kernels
 *    against the double ones (1e-5 relative).
 * 4. Model-file errors of the new ops name the problem.
 * PyTorch parity of the whole classic network is in tests/cli.sh (scripts/gen_lenet_fixtures.py).
 */
#include "lenet_ops.h"
#include "stride.h"
#include "test.h"
#define TEST_SEED 0x1e4e75ULL
#include "rand.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define H 0x1p-20
#define RTOL 1e-6
#define FLOOR 1e-3

static double relerr(double a, double num) { return fabs(a - num) / fmax(fmax(fabs(a), fabs(num)), FLOOR); }

static st_net *zoo(const char *name) {
    st_net *net = NULL;
    st_status rc = st_net_from_zoo(name, &net);
    CHECK(rc == ST_OK && net, "%s: %s", name, st_errmsg());
    return rc == ST_OK ? net : NULL;
}

static int has_op(st_net *net, const char *op) {
    for (int i = 0; i < st_net_num_nodes(net); i++)
        if (!strcmp(st_net_node_op(net, i), op)) return 1;
    return 0;
}

static int64_t param_numel(st_net *net, const char *name) {
    for (int i = 0; i < st_net_num_params(net); i++)
        if (!strcmp(st_net_param_name(net, i), name)) return (int64_t)st_tensor_numel(st_net_param(net, i));
    return -1;
}

/* Parameters whose name starts with `prefix` followed by '.' */
static int64_t layer_params(st_net *net, const char *prefix) {
    int64_t total = 0;
    size_t len = strlen(prefix);
    for (int i = 0; i < st_net_num_params(net); i++) {
        const char *n = st_net_param_name(net, i);
        if (!strncmp(n, prefix, len) && n[len] == '.') total += (int64_t)st_tensor_numel(st_net_param(net, i));
    }
    return total;
}

static void check_output(st_net *net, const char *name, int classes) {
    int nd = 0, sh[ST_MAX_DIMS];
    st_net_node_shape(net, st_net_num_nodes(net) - 1, &nd, sh);
    CHECK(nd == 2 && sh[0] == 1 && sh[1] == classes, "%s: output is not (1, %d)", name, classes);
}

/* ---------------------------------------------------------------- 1. lenet5 */
static void modern(void) {
    static const struct { int size, pad, classes, channels; } cases[] = {
        {28, -1, 10, 1}, {32, -1, 10, 1}, {28, 0, 10, 1}, {28, 1, 10, 1}, {32, 1, 10, 1}, {28, -1, 5, 3}, {32, 0, 100, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[128];
        int pad = cases[i].pad < 0 ? cases[i].size == 28 : cases[i].pad;
        snprintf(name, sizeof name, "lenet5:size=%d,classes=%d,channels=%d", cases[i].size, cases[i].classes,
                 cases[i].channels);
        if (cases[i].pad >= 0) snprintf(name + strlen(name), sizeof name - strlen(name), ",pad=%d", cases[i].pad);
        st_net *net = zoo(name);
        if (!net) continue;
        /* the shapes of models.md A3: conv 5, pool 2, conv 5, pool 2 */
        int s = ((cases[i].size + 4 * pad - 4) / 2 - 4) / 2, flat = 16 * s * s;
        int64_t want = 6 * (cases[i].channels * 25 + 1) + 16 * (6 * 25 + 1) + 120 * (flat + 1) + 84 * 121 +
                       (int64_t)cases[i].classes * 85;
        CHECK(st_net_param_count(net) == want, "%s: %lld parameters, want %lld", name,
              (long long)st_net_param_count(net), (long long)want);
        CHECK(param_numel(net, "fc1.weight") == 120 * flat, "%s: fc1 takes %d inputs", name, flat);
        CHECK(param_numel(net, "conv1.weight") == 6 * cases[i].channels * 25 && param_numel(net, "conv2.bias") == 16 &&
                  param_numel(net, "fc2.weight") == 84 * 120 && param_numel(net, "fc3.bias") == cases[i].classes,
              "%s: PyTorch's tutorial names conv1, conv2, fc1, fc2, fc3", name);
        check_output(net, name, cases[i].classes);
        st_net_free(net);
    }
    /* the counts of models.md A3, as numbers */
    static const struct { const char *name; int64_t params; } counts[] = {
        {"lenet5", 61706}, {"lenet5:size=32", 61706}, {"lenet5:pad=0", 44426}, {"lenet5:sigmoid=1,avgpool=1", 61706}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        st_net *net = zoo(counts[i].name);
        if (!net) continue;
        CHECK(st_net_param_count(net) == counts[i].params, "%s: %lld parameters, want %lld", counts[i].name,
              (long long)st_net_param_count(net), (long long)counts[i].params);
        st_net_free(net);
    }
    /* the options choose the activation and the pooling */
    static const struct { const char *name, *act, *pool, *not_act, *not_pool; } kinds[] = {
        {"lenet5", "relu", "max_pool2d", "sigmoid", "avg_pool2d"},
        {"lenet5:sigmoid=1", "sigmoid", "max_pool2d", "relu", "avg_pool2d"},
        {"lenet5:avgpool=1", "relu", "avg_pool2d", "sigmoid", "max_pool2d"},
        {"lenet5:sigmoid=1,avgpool=1", "sigmoid", "avg_pool2d", "relu", "max_pool2d"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        st_net *net = zoo(kinds[i].name);
        if (!net) continue;
        CHECK(has_op(net, kinds[i].act) && has_op(net, kinds[i].pool) && !has_op(net, kinds[i].not_act) &&
                  !has_op(net, kinds[i].not_pool),
              "%s: wants %s and %s only", kinds[i].name, kinds[i].act, kinds[i].pool);
        st_net_free(net);
    }
    /* the default lenet5 is the model file of the PyTorch fixtures, node for node */
    st_net *a = zoo("lenet5"), *b = NULL;
    CHECK(st_net_load_file("tests/fixtures/models/lenet5.net", &b) == ST_OK, "lenet5.net: %s", st_errmsg());
    if (a && b) {
        int same = st_net_num_nodes(a) == st_net_num_nodes(b);
        for (int i = 0; same && i < st_net_num_nodes(a); i++) {
            int n1, n2, s1[ST_MAX_DIMS], s2[ST_MAX_DIMS];
            st_net_node_shape(a, i, &n1, s1);
            st_net_node_shape(b, i, &n2, s2);
            same = !strcmp(st_net_node_name(a, i), st_net_node_name(b, i)) &&
                   !strcmp(st_net_node_op(a, i), st_net_node_op(b, i)) && n1 == n2 && !memcmp(s1, s2, sizeof(int) * n1);
        }
        CHECK(same, "zoo lenet5 differs from tests/fixtures/models/lenet5.net");
    }
    st_net_free(a);
    st_net_free(b);

    static const struct { const char *name, *msg; } bad[] = {
        {"lenet5:size=30", "size=30 is not 28 or 32"},
        {"lenet5:sigmoid=2", "sigmoid=2 is out of range 0..1"},
        {"lenet5:avgpool=-1", "avgpool=-1 is out of range 0..1"},
        {"lenet5:pad=3", "pad=3 is out of range 0..1"},
        {"lenet5:classes=0", "classes=0 is out of range"},
        {"lenet5:depth=5", "unknown option 'depth' (options: size, classes, channels, sigmoid, avgpool, pad)"},
        {"lenet5:size=x", "needs an integer, got 'x'"},
        {"lenet5-classic:size=28", "'lenet5-classic' takes no options"},
        {"lenet6", "no built-in model named 'lenet6'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_net *net = NULL;
        st_status rc = st_net_from_zoo(bad[i].name, &net);
        CHECK(rc != ST_OK && !net && strstr(st_errmsg(), bad[i].msg), "%s: '%s' lacks '%s'", bad[i].name, st_errmsg(),
              bad[i].msg);
        st_net_free(net);
    }
}

/* ---------------------------------------------------------------- 2. lenet5-classic */
static void classic(void) {
    st_net *net = zoo("lenet5-classic");
    if (!net) return;
    CHECK(st_net_param_count(net) == 60000, "lenet5-classic: %lld parameters, want 60,000",
          (long long)st_net_param_count(net));
    /* the paper's per-layer counts, from the layer formulas */
    static const struct { const char *layer; int64_t params; } layers[] = {
        {"c1", 6 * (25 + 1)},
        {"s2", 6 * 2},
        {"c3", 6 * (3 * 25 + 1) + 6 * (4 * 25 + 1) + 3 * (4 * 25 + 1) + (6 * 25 + 1)},
        {"s4", 16 * 2},
        {"c5", 120 * (16 * 25 + 1)},
        {"f6", 84 * (120 + 1)},
        {"rbf", 0},
    };
    static const int64_t paper[] = {156, 12, 1516, 32, 48120, 10164, 0};
    int64_t sum = 0;
    for (int i = 0; i < 7; i++) {
        int64_t got = layer_params(net, layers[i].layer);
        CHECK(layers[i].params == paper[i], "formula for %s gives %lld, the paper %lld", layers[i].layer,
              (long long)layers[i].params, (long long)paper[i]);
        CHECK(got == paper[i], "lenet5-classic %s: %lld parameters, want %lld", layers[i].layer, (long long)got,
              (long long)paper[i]);
        sum += got;
    }
    CHECK(sum == st_net_param_count(net), "the layers do not add up to the total");
    check_output(net, "lenet5-classic", 10);
    /* C3 map m: a 5x5 kernel over exactly its table's S2 maps */
    char *text = NULL;
    CHECK(st_zoo_model_text("lenet5-classic", &text) == ST_OK && text, "lenet5-classic text");
    for (int m = 0; text && m < 16; m++) {
        int in[6], k = 0;
        if (m < 12) {
            k = m < 6 ? 3 : 4;
            for (int i = 0; i < k; i++) in[i] = ((m < 6 ? m : m - 6) + i) % 6;
        } else if (m < 15) {
            static const int t[3][4] = {{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}};
            k = 4;
            memcpy(in, t[m - 12], sizeof t[0]);
        } else {
            k = 6;
            for (int i = 0; i < 6; i++) in[i] = i;
        }
        char want[128], pname[32];
        int at = snprintf(want, sizeof want, "c3.in%d = select(s2.act, channels=(", m);
        for (int i = 0; i < k; i++) at += snprintf(want + at, sizeof want - at, "%s%d", i ? ", " : "", in[i]);
        snprintf(want + at, sizeof want - at, "))\nc3.%d = conv2d(out_channels=1, kernel_size=5)\n", m);
        CHECK(strstr(text, want) != NULL, "lenet5-classic lacks the lines '%s'", want);
        snprintf(pname, sizeof pname, "c3.%d.weight", m);
        CHECK(param_numel(net, pname) == k * 25, "%s has %lld weights, want %d", pname,
              (long long)param_numel(net, pname), k * 25);
    }
    free(text);

    /* the RBF centres: a (10, 84) buffer of +-1 as drawn, kept by st_net_init */
    CHECK(st_net_init(net, ST_INIT_PYTORCH, 3) == ST_OK, "init");
    st_tensors ts;
    st_tensors_init(&ts);
    CHECK(st_net_get_weights(net, &ts) == ST_OK, "get_weights");
    const st_array *c = st_tensors_get(&ts, "rbf.centers");
    CHECK(c && c->dtype == ST_F32 && c->ndim == 2 && c->shape[0] == 10 && c->shape[1] == 84,
          "rbf.centers is not a (10, 84) float32 buffer");
    CHECK(param_numel(net, "rbf.centers") < 0, "rbf.centers is a parameter");
    if (c && c->dtype == ST_F32 && c->ndim == 2 && c->shape[0] == 10 && c->shape[1] == 84) {
        const float *w = c->data;
        int mismatches = 0, art_ok = 1;
        for (int r = 0; r < ST_DIGIT_H; r++) {
            const char *row = st_lenet_digit_art(r);
            art_ok &= row && strlen(row) == 79;
            for (int d = 0; art_ok && d < 10; d++) {
                if (d < 9) art_ok &= row[8 * d + 7] == ' ';
                for (int k = 0; k < 7; k++) {
                    char ch = row[8 * d + k];
                    art_ok &= ch == '#' || ch == '.';
                    mismatches += w[d * 84 + r * 7 + k] != (ch == '#' ? 1.0f : -1.0f);
                }
            }
        }
        CHECK(art_ok, "the digit art is not 12 rows of ten 7-wide '#'/'.' digits");
        CHECK(mismatches == 0, "%d centre values differ from the drawing", mismatches);
        /* ten different bitmaps, each with ink and paper; at least 8 pixels apart */
        for (int a = 0; a < 10; a++) {
            int ink = 0;
            for (int j = 0; j < 84; j++) ink += w[a * 84 + j] > 0;
            CHECK(ink >= 12 && ink <= 42, "digit %d has %d ink pixels", a, ink);
            for (int b = a + 1; b < 10; b++) {
                int diff = 0;
                for (int j = 0; j < 84; j++) diff += w[a * 84 + j] != w[b * 84 + j];
                CHECK(diff >= 8, "digits %d and %d differ in only %d pixels", a, b, diff);
            }
        }
    }
    st_tensors_free(&ts);
    st_net_free(net);

    /* the RBF layer alone: each centre given as input scores 0 for its own class, which wins */
    st_net *r = NULL;
    CHECK(st_net_parse("x = input(shape=(84,))\nout = rbf(out_features=10)\n", "rbf", &r) == ST_OK, "%s", st_errmsg());
    if (r) {
        float centers[840];
        st_lenet_digit_centers(centers, 10);
        st_tensor *x = st_tensor_new(2, (int[]){10, 84});
        memcpy(x->data, centers, sizeof centers);
        const st_tensor *y = NULL;
        CHECK(st_net_forward(r, x, 0, &y) == ST_OK && y, "rbf forward");
        for (int d = 0; y && d < 10; d++) {
            int best = 0;
            for (int k = 1; k < 10; k++) if (y->data[d * 10 + k] > y->data[d * 10 + best]) best = k;
            CHECK(best == d && y->data[d * 10 + d] == 0.0f, "bitmap %d scores best for %d (own score %g)", d, best,
                  y->data[d * 10 + d]);
            CHECK(y->data[d * 10 + (d + 1) % 10] < -4, "bitmap %d is near %d", d, (d + 1) % 10);
        }
        st_tensor_free(x);
        st_net_free(r);
    }
}

/* ---------------------------------------------------------------- 3. finite differences */
static void gradcheck(const char *what, int nx, int ny, void (*fwd)(double *, const double *, const void *),
                      void (*bwd)(double *, const double *, const double *, const void *), const void *ctx,
                      double xlo, double xhi) {
    double *x = malloc(sizeof(double) * nx), *y = malloc(sizeof(double) * ny), *r = malloc(sizeof(double) * ny);
    double *dx = calloc((size_t)nx, sizeof(double));
    if (!x || !y || !r || !dx) { CHECK(0, "out of memory"); goto done; }
    for (int i = 0; i < nx; i++) x[i] = runif_in(xlo, xhi);
    for (int i = 0; i < ny; i++) r[i] = runif_in(-1, 1);
    fwd(y, x, ctx);
    bwd(dx, r, x, ctx);
    double worst = 0, norm = 0;
    for (int i = 0; i < nx; i++) {
        double keep = x[i], lp = 0, lm = 0;
        x[i] = keep + H;
        fwd(y, x, ctx);
        for (int j = 0; j < ny; j++) lp += y[j] * r[j];
        x[i] = keep - H;
        fwd(y, x, ctx);
        for (int j = 0; j < ny; j++) lm += y[j] * r[j];
        x[i] = keep;
        double e = relerr(dx[i], (lp - lm) / (2 * H));
        if (e > worst) worst = e;
        norm += fabs(dx[i]);
    }
    CHECK(worst <= RTOL, "%s: gradient relative error %.3g > %g", what, worst, RTOL);
    CHECK(norm > 0, "%s: gradient is all zero", what);
done:
    free(x); free(y); free(r); free(dx);
}

typedef struct { int n; double A, S; } stanh_ctx;
static void stanh_f(double *y, const double *x, const void *c) {
    const stanh_ctx *s = c;
    st_scaled_tanh_forward_f64(y, x, (size_t)s->n, s->A, s->S);
}
static void stanh_b(double *dx, const double *dy, const double *x, const void *c) {
    const stanh_ctx *s = c;
    st_scaled_tanh_backward_f64(dx, dy, x, (size_t)s->n, s->A, s->S);
}

typedef struct { int n, c, k, ch[6]; size_t s; } select_ctx;
static void select_f(double *y, const double *x, const void *c) {
    const select_ctx *s = c;
    st_select_forward_f64(y, x, s->ch, s->k, s->n, s->c, s->s);
}
static void select_b(double *dx, const double *dy, const double *x, const void *c) {
    const select_ctx *s = c;
    (void)x;
    st_select_backward_f64(dx, dy, s->ch, s->k, s->n, s->c, s->s);
}

typedef struct { int n, in, out; const double *w; } rbf_ctx;
static void rbf_f(double *y, const double *x, const void *c) {
    const rbf_ctx *s = c;
    st_rbf_forward_f64(y, x, s->w, s->n, s->in, s->out);
}
static void rbf_b(double *dx, const double *dy, const double *x, const void *c) {
    const rbf_ctx *s = c;
    st_rbf_backward_f64(dx, dy, x, s->w, s->n, s->in, s->out);
}

static void gradchecks(void) {
    stanh_ctx st = {40, 1.7159, 2.0 / 3.0};
    gradcheck("scaled_tanh", st.n, st.n, stanh_f, stanh_b, &st, -3, 3);
    stanh_ctx st2 = {40, 0.5, 3.0};
    gradcheck("scaled_tanh A=0.5 S=3", st2.n, st2.n, stanh_f, stanh_b, &st2, -1, 1);
    /* a repeated channel: its gradient is the sum of both uses */
    select_ctx se = {2, 6, 5, {4, 0, 2, 4, 5, 0}, 6};
    gradcheck("select", se.n * se.c * (int)se.s, se.n * se.k * (int)se.s, select_f, select_b, &se, -1, 1);
    double w[5 * 7];
    for (int i = 0; i < 35; i++) w[i] = rnd64() & 1 ? 1 : -1;
    rbf_ctx rb = {3, 7, 5, w};
    gradcheck("rbf", rb.n * rb.in, rb.n * rb.out, rbf_f, rbf_b, &rb, -1.7, 1.7);

    /* values by hand: f(0) = 0, f(1) = 1.7159 tanh(2/3) (about 1), select order, rbf */
    float x3[3] = {0, 1, -1}, y3[3];
    st_scaled_tanh_forward(y3, x3, 3, ST_LECUN_A, ST_LECUN_S);
    CHECK(y3[0] == 0 && fabs(y3[1] - 1.7159 * tanh(2.0 / 3.0)) < 1e-6 && fabs(y3[1] - 1) < 2e-3 && y3[2] == -y3[1],
          "scaled_tanh(0, 1, -1) = (%g, %g, %g)", y3[0], y3[1], y3[2]);
    CHECK(ST_LECUN_S == (float)(2.0 / 3.0), "S is not 2/3 in float");
    float xs[2 * 3 * 2] = {0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121}, ys[2 * 2 * 2];
    st_select_forward(ys, xs, (int[]){2, 0}, 2, 2, 3, 2);
    static const float want_s[8] = {20, 21, 0, 1, 120, 121, 100, 101};
    CHECK(!memcmp(ys, want_s, sizeof ys), "select picks the wrong channels");
    float xr[2] = {1, 2}, wr[4] = {0, 0, 1, -1}, yr[2];
    st_rbf_forward(yr, xr, wr, 1, 2, 2);
    CHECK(yr[0] == -5 && yr[1] == -9, "rbf([1, 2]) = (%g, %g), want (-5, -9)", yr[0], yr[1]);

    /* float kernels against double ones */
    enum { N = 2, C = 6, S = 9, K = 4, IN = 84, OUT = 10 };
    float xf[N * C * S], yf[N * C * S], dyf[N * C * S], dxf[N * C * S];
    double xd[N * C * S], yd[N * C * S], dyd[N * C * S], dxd[N * C * S];
    for (int i = 0; i < N * C * S; i++) {
        xf[i] = (float)runif_in(-2, 2); xd[i] = xf[i];
        dyf[i] = (float)runif_in(-1, 1); dyd[i] = dyf[i];
        dxf[i] = 0.5f; dxd[i] = 0.5;
    }
    double err = 0;
    st_scaled_tanh_forward(yf, xf, N * C * S, ST_LECUN_A, ST_LECUN_S);
    st_scaled_tanh_forward_f64(yd, xd, N * C * S, ST_LECUN_A, ST_LECUN_S);
    st_scaled_tanh_backward(dxf, dyf, xf, N * C * S, ST_LECUN_A, ST_LECUN_S);
    st_scaled_tanh_backward_f64(dxd, dyd, xd, N * C * S, ST_LECUN_A, ST_LECUN_S);
    for (int i = 0; i < N * C * S; i++) err = fmax(err, fmax(fabs(yf[i] - yd[i]), fabs(dxf[i] - dxd[i])));
    CHECK(err <= 1e-5 * 2, "scaled_tanh float vs double: %g", err);
    int ch[K] = {5, 1, 1, 3};
    st_select_forward(yf, xf, ch, K, N, C, S);
    st_select_forward_f64(yd, xd, ch, K, N, C, S);
    st_select_backward(dxf, dyf, ch, K, N, C, S);
    st_select_backward_f64(dxd, dyd, ch, K, N, C, S);
    err = 0;
    for (int i = 0; i < N * K * S; i++) err = fmax(err, fabs(yf[i] - yd[i]));
    for (int i = 0; i < N * C * S; i++) err = fmax(err, fabs(dxf[i] - dxd[i]));
    CHECK(err <= 1e-5 * 2, "select float vs double: %g", err);
    float xr2[N * IN], wf[OUT * IN], yr2[N * OUT], dyr[N * OUT], dxr[N * IN] = {0};
    double xrd[N * IN], wd[OUT * IN], yrd[N * OUT], dyrd[N * OUT], dxrd[N * IN] = {0};
    st_lenet_digit_centers(wf, OUT);
    for (int i = 0; i < OUT * IN; i++) wd[i] = wf[i];
    for (int i = 0; i < N * IN; i++) { xr2[i] = (float)runif_in(-1.7, 1.7); xrd[i] = xr2[i]; }
    for (int i = 0; i < N * OUT; i++) { dyr[i] = (float)runif_in(-1, 1); dyrd[i] = dyr[i]; }
    st_rbf_forward(yr2, xr2, wf, N, IN, OUT);
    st_rbf_forward_f64(yrd, xrd, wd, N, IN, OUT);
    st_rbf_backward(dxr, dyr, xr2, wf, N, IN, OUT);
    st_rbf_backward_f64(dxrd, dyrd, xrd, wd, N, IN, OUT);
    double ey = 0, ed = 0, my = 0, md = 0;
    for (int i = 0; i < N * OUT; i++) { ey = fmax(ey, fabs(yr2[i] - yrd[i])); my = fmax(my, fabs(yrd[i])); }
    for (int i = 0; i < N * IN; i++) { ed = fmax(ed, fabs(dxr[i] - dxrd[i])); md = fmax(md, fabs(dxrd[i])); }
    CHECK(ey <= 1e-5 * (1 + my) && ed <= 1e-5 * (1 + md), "rbf float vs double: %g, %g", ey, ed);
}

/* ---------------------------------------------------------------- 4. model-file errors */
static void bad_files(void) {
    static const struct { const char *text, *msg; } bad[] = {
        {"x = input(shape=(3, 4, 4))\ns = select(channels=(0, 3))\n", "channel 3 is out of range for 'x' (3, 4, 4)"},
        {"x = input(shape=(3, 4, 4))\ns = select()\n", "select needs channels"},
        {"x = input(shape=(3, 4, 4))\ns = select(channels='a')\n", "channels must be an integer or a tuple"},
        {"x = input(shape=(3, 4, 4))\nr = rbf(out_features=2)\n", "rbf expects flat features (F,) per sample, but 'x' gives (3, 4, 4)"},
        {"x = input(shape=(8,))\nr = rbf()\n", "rbf needs out_features"},
        {"x = input(shape=(8,))\nt = scaled_tanh(B=2)\n", "B"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_net *net = NULL;
        st_status rc = st_net_parse(bad[i].text, "bad.net", &net);
        CHECK(rc != ST_OK && !net && strstr(st_errmsg(), bad[i].msg), "'%s': '%s' lacks '%s'", bad[i].text,
              st_errmsg(), bad[i].msg);
        st_net_free(net);
    }
    /* written back, the new ops keep their arguments */
    st_net *net = NULL;
    const char *text = "x = input(shape=(3, 4, 4))\ns = select(x, channels=(2,))\nt = scaled_tanh(A=2, S=0.25)\n"
                       "f = flatten()\nr = rbf(out_features=3)\n";
    CHECK(st_net_parse(text, "ok.net", &net) == ST_OK, "%s", st_errmsg());
    if (net) {
        char *back = st_net_to_text(net);
        CHECK(back && strstr(back, "select(channels=(2,))") && strstr(back, "scaled_tanh(A=2, S=0.25)") &&
                  strstr(back, "rbf(out_features=3)"),
              "written back as:\n%s", back ? back : "(null)");
        free(back);
        st_net_free(net);
    }
}

int main(void) {
    modern();
    classic();
    gradchecks();
    bad_files();
    return test_done("test_lenet");
}
