/* test_hourglass.c - the stacked hourglass zoo model (models.md A11) and the `supervise` op
 * (intermediate supervision): parameter counts of the spec, output shapes, option errors,
 * a small forward and backward; and for supervise, that the loss is the sum of the heads'
 * losses and the gradients the sum of the gradients of networks that end at each head,
 * through data-parallel shards, for 1 and 2 threads, checked again by finite differences.
 * (PyTorch parity of a whole 2-stack hourglass is in tests/cli.sh.) */
#include "net.h" /* (to check that the batch really runs as two shards) */
#include "stride.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

static st_net *build(const char *name) {
    char *text = NULL;
    st_status rc = st_zoo_model_text(name, &text);
    CHECK(rc == ST_OK && text, "%s: %s", name, st_errmsg());
    if (rc) return NULL;
    st_net *net = NULL;
    rc = st_net_parse(text, name, &net);
    CHECK(rc == ST_OK && net, "%s: parse failed: %s", name, st_errmsg());
    free(text);
    return rc == ST_OK ? net : NULL;
}

/* Learnable scalars of the nodes whose names start with prefix (no arenas allocated). */
static int64_t params_under(const st_net *net, const char *prefix) {
    int64_t total = 0;
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        st_node_info info;
        if (st_net_node_info(net, i, &info) == ST_OK && !strncmp(info.name, prefix, strlen(prefix))) total += info.params;
    }
    return total;
}

static void test_counts(void) {
    static const struct { int stacks; int64_t params; } want[] = {
        {1, 3426448}, {2, 6570400}, {4, 12858304}, {8, 25434112}};
    for (int k = 0; k < 4; k++) {
        char name[64];
        snprintf(name, sizeof name, "hourglass:stacks=%d", want[k].stacks);
        st_net *net = build(name);
        if (!net) continue;
        int64_t n = st_net_param_count(net);
        CHECK(n == want[k].params, "%s: %lld parameters, spec %lld", name, (long long)n, (long long)want[k].params);
        st_net_free(net);
    }
    st_net *net = build("hourglass");
    if (!net) return;
    CHECK(st_net_param_count(net) == 25434112, "hourglass default: %lld parameters", (long long)st_net_param_count(net));
    CHECK(params_under(net, "pre.") == 352640, "stem: %lld parameters, spec 352,640", (long long)params_under(net, "pre."));
    CHECK(params_under(net, "stack0.res.") == 214528, "Residual(256,256): %lld, spec 214,528",
          (long long)params_under(net, "stack0.res."));
    CHECK(params_under(net, "hg3.") == 2788864, "Hourglass(4,256): %lld, spec 2,788,864", (long long)params_under(net, "hg3."));
    /* 13 Residual modules per hourglass of depth 4: one skip-free add each, plus 4 level adds */
    int adds = 0, ups = 0;
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        const char *nm = st_net_node_name(net, i);
        if (!strncmp(nm, "hg0.", 4) && !strcmp(st_net_node_op(net, i), "add")) adds++;
        if (!strncmp(nm, "hg0.", 4) && !strcmp(st_net_node_op(net, i), "upsample")) ups++;
    }
    CHECK(adds == 13 + 4 && ups == 4, "hg0: %d adds and %d upsamplings, want 17 and 4", adds, ups);
    int nd, sh[ST_MAX_DIMS], last = st_net_num_nodes(net) - 1;
    st_net_node_shape(net, last, &nd, sh);
    CHECK(nd == 4 && sh[1] == 16 && sh[2] == 64 && sh[3] == 64, "default output is not (16, 64, 64)");
    CHECK(!strcmp(st_net_node_op(net, last), "supervise"), "the output node is %s, not supervise", st_net_node_op(net, last));
    st_net_free(net);

    net = build("hourglass:stacks=3,features=16,joints=5,depth=3,channels=2,size=96");
    if (!net) return;
    last = st_net_num_nodes(net) - 1;
    st_net_node_shape(net, last, &nd, sh);
    CHECK(nd == 4 && sh[1] == 5 && sh[2] == 24 && sh[3] == 24, "options: output (%d, %d, %d), want (5, 24, 24)", sh[1], sh[2], sh[3]);
    st_net_node_shape(net, 0, &nd, sh);
    CHECK(nd == 4 && sh[1] == 2 && sh[2] == 96, "options: input is not (2, 96, 96)");
    st_net_free(net);
}

static void expect_error(const char *name, const char *pattern) {
    char *text = NULL;
    st_status rc = st_zoo_model_text(name, &text);
    CHECK(rc == ST_ERR_ARG && !text, "%s: accepted", name);
    CHECK(strstr(st_errmsg(), pattern) != NULL, "%s: message '%s' lacks '%s'", name, st_errmsg(), pattern);
    free(text);
}

static void test_options(void) {
    expect_error("hourglass:size=100", "size=100 must be a multiple of 2^(depth+2) = 64");
    expect_error("hourglass:depth=2,size=40", "multiple of 2^(depth+2) = 16");
    expect_error("hourglass:stacks=0", "stacks=0 is out of range 1..8");
    expect_error("hourglass:stacks=9", "stacks=9 is out of range 1..8");
    expect_error("hourglass:features=7", "features=7 must be even");
    expect_error("hourglass:joint=3", "unknown option 'joint'");
    expect_error("hourglass:joints=x", "joints needs an integer");
}

static void fill(st_tensor *t, uint64_t seed, double lo, double hi) {
    st_rng r;
    st_rng_seed(&r, seed);
    for (size_t i = 0; i < st_tensor_numel(t); i++) t->data[i] = (float)(lo + (hi - lo) * st_rng_uniform(&r));
}

static int all_finite(const float *a, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i])) return 0;
    return 1;
}

static void test_small_hourglass(void) {
    st_net *net = build("hourglass:stacks=2,features=8,joints=3,depth=2,channels=1,size=32");
    if (!net) return;
    CHECK(st_net_init(net, ST_INIT_PYTORCH, 3) == ST_OK, "init: %s", st_errmsg());
    st_tensor *x = st_tensor_new(4, (int[]){2, 1, 32, 32}), *t = st_tensor_new(4, (int[]){2, 3, 8, 8});
    fill(x, 1, -1, 1);
    fill(t, 2, 0, 1);
    const st_tensor *y = NULL;
    CHECK(st_net_forward(net, x, 0, &y) == ST_OK && y, "forward: %s", st_errmsg());
    if (y) {
        CHECK(y->ndim == 4 && y->shape[0] == 2 && y->shape[1] == 3 && y->shape[2] == 8 && y->shape[3] == 8,
              "output is not (2, 3, 8, 8)");
        CHECK(all_finite(y->data, st_tensor_numel(y)) && test_maxabs(y->data, st_tensor_numel(y)) > 0,
              "output not finite or all zero");
        int heat = -1;
        for (int i = 0; i < st_net_num_nodes(net); i++)
            if (!strcmp(st_net_node_name(net, i), "stack1.heat")) heat = i;
        const st_tensor *h = heat >= 0 ? st_net_node_output(net, heat) : NULL;
        CHECK(h && !memcmp(h->data, y->data, sizeof(float) * st_tensor_numel(y)), "output is not the last stack's heatmaps");
    }
    float L = 0;
    st_status rc = st_net_step(net, x, ST_LOSS_MSE, NULL, t, &L, 0);
    CHECK(rc == ST_OK && L > 0, "training step: %s", st_errmsg());
    float *g;
    float *v;
    size_t n = 0;
    if (st_net_arenas(net, &v, &g, &n) == ST_OK)
        CHECK(all_finite(g, n) && test_maxabs(g, n) > 0, "gradients not finite or all zero");
    st_tensor_free(x);
    st_tensor_free(t);
    st_net_free(net);
}

/* ---------------------------------------------------------------- supervise
 * Two heads, the second computed from the first, so the first head's gradient is its own
 * seed plus what flows back from the second. */
static const char *sup_text = "x = input(shape=(2, 5))\n"
                              "a = conv1d(x, out_channels=3, kernel_size=3, padding=1)\n"
                              "b = conv1d(a, out_channels=3, kernel_size=3, padding=1)\n"
                              "c = tanh(b)\n"
                              "out = supervise(a, c)\n";
/* the same network ending at each head */
static const char *head_a = "x = input(shape=(2, 5))\na = conv1d(x, out_channels=3, kernel_size=3, padding=1)\n";
static const char *head_c = "x = input(shape=(2, 5))\n"
                            "a = conv1d(x, out_channels=3, kernel_size=3, padding=1)\n"
                            "b = conv1d(a, out_channels=3, kernel_size=3, padding=1)\n"
                            "c = tanh(b)\n";
enum { SUP_N = 64 }; /* 64 samples: the network is small enough to run as two shards */

static st_net *parse(const char *text) {
    st_net *net = NULL;
    CHECK(st_net_parse(text, "test", &net) == ST_OK, "parse: %s", st_errmsg());
    return net;
}

/* Copies parameter values by name from src into dst (dst's names must all be in src). */
static void copy_params(st_net *dst, st_net *src) {
    for (int i = 0; i < st_net_num_params(dst); i++)
        for (int j = 0; j < st_net_num_params(src); j++)
            if (!strcmp(st_net_param_name(dst, i), st_net_param_name(src, j)))
                memcpy(st_net_param(dst, i)->data, st_net_param(src, j)->data,
                       sizeof(float) * st_tensor_numel(st_net_param(src, j)));
}

/* Gradient of parameter `name` in net, or NULL when net has no such parameter. */
static const st_tensor *grad_of(st_net *net, const char *name) {
    for (int i = 0; i < st_net_num_params(net); i++)
        if (!strcmp(st_net_param_name(net, i), name)) return st_net_param_grad(net, i);
    return NULL;
}

typedef struct {
    st_tensor *x, *t;
    int32_t labels[SUP_N * 5];
} sup_data;

/* forward (training), loss, backward with the input gradient */
static float run_loss(st_net *net, const sup_data *d, st_loss loss, int backward) {
    float L = NAN;
    st_net_zero_grad(net);
    if (st_net_forward(net, d->x, 1, NULL) || st_net_loss(net, loss, d->labels, d->t, &L) ||
        (backward && st_net_backward(net, 1)))
        CHECK(0, "forward/loss/backward: %s", st_errmsg());
    return L;
}

static void test_supervise_loss(st_loss loss, const char *lname) {
    sup_data d;
    d.x = st_tensor_new(3, (int[]){SUP_N, 2, 5});
    d.t = st_tensor_new(3, (int[]){SUP_N, 3, 5});
    fill(d.x, 5, -1, 1);
    fill(d.t, 6, loss == ST_LOSS_BCE ? 0 : -1, 1);
    st_rng r;
    st_rng_seed(&r, 9);
    for (int i = 0; i < SUP_N * 5; i++) d.labels[i] = (int32_t)(st_rng_uniform(&r) * 3);
    st_net *sup = parse(sup_text), *na = parse(head_a), *nc = parse(head_c);
    if (!sup || !na || !nc) goto done;
    st_net_init(sup, ST_INIT_PYTORCH, 4);
    copy_params(na, sup);
    copy_params(nc, sup);

    float La = run_loss(na, &d, loss, 1), Lc = run_loss(nc, &d, loss, 1);
    st_set_threads(1);
    float L1 = run_loss(sup, &d, loss, 1);
    CHECK(sup->nshards == 2, "%s: the batch runs as %d shard(s), the test wants 2", lname, sup->nshards);
    CHECK(fabsf(L1 - (La + Lc)) <= 1e-6f * (1 + fabsf(La + Lc)), "%s: loss %.8g, heads %.8g + %.8g", lname, L1, La, Lc);
    /* gradients: the sum over the heads, for every parameter and the input */
    for (int i = 0; i < st_net_num_params(sup); i++) {
        const char *name = st_net_param_name(sup, i);
        const st_tensor *gs = st_net_param_grad(sup, i), *ga = grad_of(na, name), *gc = grad_of(nc, name);
        size_t n = st_tensor_numel(gs);
        float *want = calloc(n, sizeof(float));
        for (size_t j = 0; j < n; j++) want[j] = (ga ? ga->data[j] : 0) + gc->data[j];
        double err = test_maxdiff(gs->data, want, n), mag = test_maxabs(want, n);
        CHECK(err <= 1e-6 * (1 + mag) && mag > 0, "%s: %s gradient differs from the heads' sum by %g", lname, name, err);
        free(want);
    }
    const st_tensor *gx = st_net_input_grad(sup), *gxa = st_net_input_grad(na), *gxc = st_net_input_grad(nc);
    if (gx && gxa && gxc) {
        size_t n = st_tensor_numel(gx);
        float *want = malloc(n * sizeof(float));
        for (size_t j = 0; j < n; j++) want[j] = gxa->data[j] + gxc->data[j];
        CHECK(test_maxdiff(gx->data, want, n) <= 1e-6 * (1 + test_maxabs(want, n)), "%s: input gradient is not the heads' sum", lname);
        free(want);
    } else {
        CHECK(0, "%s: no input gradient", lname);
    }
    CHECK(st_net_backward(sup, 0) == ST_ERR_STATE, "%s: a second backward without a new loss was accepted", lname);

    /* the same through st_net_step, with 1 and 2 threads: identical numbers */
    float *v, *g1, *g2;
    size_t n;
    st_net_arenas(sup, &v, &g1, &n);
    float *keep = malloc(n * sizeof(float));
    memcpy(keep, g1, n * sizeof(float));
    float Ls[2];
    float *step[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
    for (int th = 1; th <= 2; th++) {
        st_set_threads(th);
        st_net_zero_grad(sup);
        CHECK(st_net_step(sup, d.x, loss, d.labels, d.t, &Ls[th - 1], 0) == ST_OK, "%s: step: %s", lname, st_errmsg());
        st_net_arenas(sup, &v, &g2, &n);
        memcpy(step[th - 1], g2, n * sizeof(float));
    }
    CHECK(Ls[0] == Ls[1] && !memcmp(step[0], step[1], n * sizeof(float)), "%s: 1 and 2 threads differ", lname);
    CHECK(fabsf(Ls[0] - L1) <= 1e-6f * (1 + fabsf(L1)) && test_maxdiff(step[0], keep, n) <= 1e-7 * (1 + test_maxabs(keep, n)),
          "%s: step differs from forward + loss + backward", lname);
    free(step[0]);
    free(step[1]);
    free(keep);

    /* finite differences of the summed loss for a few weights of each conv */
    st_set_threads(1);
    run_loss(sup, &d, loss, 1);
    float *grads = malloc(n * sizeof(float)); /* (the loss evaluations below zero the gradients) */
    st_net_arenas(sup, &v, &g1, &n);
    memcpy(grads, g1, n * sizeof(float));
    int checked = 0, bad = 0;
    for (int i = 0; i < st_net_num_params(sup); i++) {
        st_tensor *p = st_net_param(sup, i);
        const float *gcopy = grads + (st_net_param_grad(sup, i)->data - g1);
        for (size_t j = 0; j < st_tensor_numel(p); j += 5) {
            float w = p->data[j], eps = 1e-2f;
            p->data[j] = w + eps;
            float Lp = run_loss(sup, &d, loss, 0);
            p->data[j] = w - eps;
            float Lm = run_loss(sup, &d, loss, 0);
            p->data[j] = w;
            double fd = ((double)Lp - Lm) / (2.0 * eps);
            if (fabs(fd - gcopy[j]) > 2e-3 * (1 + fabs(fd))) {
                if (!bad++) fprintf(stderr, "%s: %s[%zu]: finite difference %g, gradient %g\n", lname, st_net_param_name(sup, i), j, fd, gcopy[j]);
            }
            checked++;
        }
    }
    free(grads);
    CHECK(checked > 10 && !bad, "%s: %d of %d gradients disagree with finite differences", lname, bad, checked);
done:
    st_set_threads(0);
    st_net_free(sup);
    st_net_free(na);
    st_net_free(nc);
    st_tensor_free(d.x);
    st_tensor_free(d.t);
}

/* Not the output: supervise is the identity on its last input, forward and backward. */
static void test_supervise_inside(void) {
    st_net *in = parse("x = input(shape=(2, 5))\na = conv1d(x, out_channels=3, kernel_size=3, padding=1)\n"
                       "b = conv1d(a, out_channels=3, kernel_size=3, padding=1)\ns = supervise(a, b)\nd = tanh(s)\n");
    st_net *ref = parse("x = input(shape=(2, 5))\na = conv1d(x, out_channels=3, kernel_size=3, padding=1)\n"
                        "b = conv1d(a, out_channels=3, kernel_size=3, padding=1)\nd = tanh(b)\n");
    sup_data d;
    d.x = st_tensor_new(3, (int[]){4, 2, 5});
    d.t = st_tensor_new(3, (int[]){4, 3, 5});
    fill(d.x, 11, -1, 1);
    fill(d.t, 12, -1, 1);
    if (in && ref) {
        st_net_init(in, ST_INIT_PYTORCH, 8);
        copy_params(ref, in);
        float L1 = run_loss(in, &d, ST_LOSS_MSE, 1), L2 = run_loss(ref, &d, ST_LOSS_MSE, 1);
        CHECK(L1 == L2, "supervise inside a graph: loss %g, without it %g", L1, L2);
        for (int i = 0; i < st_net_num_params(in); i++) {
            const st_tensor *g1 = st_net_param_grad(in, i), *g2 = grad_of(ref, st_net_param_name(in, i));
            CHECK(g2 && !memcmp(g1->data, g2->data, sizeof(float) * st_tensor_numel(g1)),
                  "supervise inside a graph: %s gradient differs", st_net_param_name(in, i));
        }
    }
    st_net_free(in);
    st_net_free(ref);
    st_tensor_free(d.x);
    st_tensor_free(d.t);
}

static void test_supervise_errors(void) {
    st_net *net = NULL;
    st_status rc = st_net_parse("x = input(shape=(2, 5))\na = conv1d(x, out_channels=3, kernel_size=3)\n"
                                "b = conv1d(x, out_channels=3, kernel_size=1)\ns = supervise(a, b)\n", "bad", &net);
    CHECK(rc != ST_OK && strstr(st_errmsg(), "'a' (3, 3) and 'b' (3, 5) have different shapes"), "shapes: %s", st_errmsg());
    st_net_free(net);
    net = NULL;
    rc = st_net_parse("x = input(shape=(2, 5))\na = conv1d(x, out_channels=3, kernel_size=3)\ns = supervise(a, a)\n", "bad", &net);
    CHECK(rc != ST_OK && strstr(st_errmsg(), "'a' is listed twice"), "duplicate: %s", st_errmsg());
    st_net_free(net);
}

int main(void) {
    test_counts();
    test_options();
    test_small_hourglass();
    test_supervise_loss(ST_LOSS_MSE, "mse");
    test_supervise_loss(ST_LOSS_BCE, "bce");
    test_supervise_loss(ST_LOSS_CE, "ce");
    test_supervise_inside();
    test_supervise_errors();
    return test_done("test_hourglass");
}
