/* test_net.c - networks through the public API: receptive fields against brute force,
 * whole-graph gradients against finite differences, SGD against PyTorch, weights by
 * name, model-file round trips, initialisation statistics and thread-count determinism. */
#include "stride.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FX "tests/fixtures/models/"

static st_net *parse(const char *text) {
    st_net *net = NULL;
    if (st_net_parse(text, "test", &net)) fprintf(stderr, "parse: %s\n", st_errmsg());
    return net;
}

static void fill(st_tensor *t, st_rng *r, double lo, double hi) {
    for (size_t i = 0; i < st_tensor_numel(t); i++) t->data[i] = (float)(lo + (hi - lo) * st_rng_uniform(r));
}

/* ---------------------------------------------------------------- receptive fields
 * With positive weights and inputs every ReLU passes, so an output changes exactly
 * when an input inside its receptive field changes. For each node, perturb each input
 * position and record which input positions move output position o (channel 0). */
static void check_receptive_fields(const char *text, int dims) {
    st_net *net = parse(text);
    CHECK(net != NULL, "receptive field net parses");
    if (!net) return;
    st_rng r;
    st_rng_seed(&r, 7);
    for (int i = 0; i < st_net_num_params(net); i++) fill(st_net_param(net, i), &r, 0.1, 1.0);
    int ishape[ST_MAX_DIMS], indim;
    st_net_node_shape(net, 0, &indim, ishape);
    st_tensor *x = st_tensor_new(indim, ishape);
    fill(x, &r, 0.5, 1.0);
    int H = dims == 2 ? ishape[2] : 1, W = ishape[indim - 1];
    for (int k = 1; k < st_net_num_nodes(net); k++) {
        st_node_info info;
        st_net_node_info(net, k, &info);
        if (!info.rf_valid) continue;
        int OH = dims == 2 ? info.shape[2] : 1, OW = info.shape[info.ndim - 1];
        /* base output of node k: run the net up to the end, read node k through a cut copy */
        char *t = st_net_to_text(net);
        /* keep lines up to node k: the output of the cut net is node k */
        char *p = t;
        for (int line = 0; line <= k && p; line++) { p = strchr(p, '\n'); if (p) p++; }
        if (p) *p = 0;
        st_net *cut = parse(t);
        free(t);
        if (!cut) continue;
        for (int i = 0; i < st_net_num_params(cut); i++) {
            st_tensor *dst = st_net_param(cut, i);
            for (int j = 0; j < st_net_num_params(net); j++)
                if (!strcmp(st_net_param_name(cut, i), st_net_param_name(net, j)))
                    memcpy(dst->data, st_net_param(net, j)->data, sizeof(float) * st_tensor_numel(dst));
        }
        const st_tensor *y;
        st_net_forward(cut, x, 0, &y);
        size_t ny = st_tensor_numel(y);
        float *base = malloc(sizeof(float) * ny);
        memcpy(base, y->data, sizeof(float) * ny);
        /* influence bounding box of two neighbouring central outputs */
        int oy = OH / 2, ox = OW / 2 > 0 ? OW / 2 - (OW > 1) : 0;
        int lo[2][2] = {{1 << 30, 1 << 30}, {1 << 30, 1 << 30}}, hi[2][2] = {{-1, -1}, {-1, -1}};
        for (int py = 0; py < H; py++)
            for (int px = 0; px < W; px++) {
                float saved = x->data[py * W + px];
                x->data[py * W + px] += 1.0f;
                st_net_forward(cut, x, 0, &y);
                x->data[py * W + px] = saved;
                for (int o = 0; o < 2 && ox + o < OW; o++) {
                    size_t at = (size_t)oy * OW + ox + o; /* batch 0, channel 0 */
                    if (y->data[at] != base[at]) {
                        if (py < lo[o][0]) lo[o][0] = py;
                        if (py > hi[o][0]) hi[o][0] = py;
                        if (px < lo[o][1]) lo[o][1] = px;
                        if (px > hi[o][1]) hi[o][1] = px;
                    }
                }
            }
        int span = hi[0][1] - lo[0][1] + 1;
        /* an output whose field is clipped by the border sees fewer inputs */
        int clipped = lo[0][1] == 0 || hi[0][1] == W - 1;
        if (!clipped) CHECK(span == info.rf[1], "%s: receptive field width %g, brute force %d", info.name, info.rf[1], span);
        if (dims == 2 && lo[0][0] > 0 && hi[0][0] < H - 1)
            CHECK(hi[0][0] - lo[0][0] + 1 == info.rf[0], "%s: receptive field height %g, brute force %d", info.name,
                  info.rf[0], hi[0][0] - lo[0][0] + 1);
        if (ox + 1 < OW && !clipped && lo[1][1] > 0 && hi[1][1] < W - 1)
            CHECK(lo[1][1] - lo[0][1] == info.jump[1], "%s: jump %g, brute force %d", info.name, info.jump[1],
                  lo[1][1] - lo[0][1]);
        free(base);
        st_net_free(cut);
    }
    st_tensor_free(x);
    st_net_free(net);
}

/* 1D nets whose jump becomes a fraction (upsampling, transposed convolutions, adaptive
 * pooling of sizes that do not divide): every output position's field is found by brute
 * force; the widest unclipped one must equal rf, and the fields' starts must advance by
 * jump per output on average (to within the rounding of one position). */
static void check_fractional_fields(const char *text) {
    st_net *net = parse(text);
    CHECK(net != NULL, "fractional receptive field net parses");
    if (!net) return;
    st_rng r;
    st_rng_seed(&r, 11);
    for (int i = 0; i < st_net_num_params(net); i++) fill(st_net_param(net, i), &r, 0.1, 1.0);
    int ishape[ST_MAX_DIMS], indim;
    st_net_node_shape(net, 0, &indim, ishape);
    st_tensor *x = st_tensor_new(indim, ishape);
    fill(x, &r, 0.5, 1.0);
    int W = ishape[indim - 1], nn = st_net_num_nodes(net);
    st_node_info info;
    st_net_node_info(net, nn - 1, &info);
    int OW = info.shape[info.ndim - 1];
    const st_tensor *y;
    st_net_forward(net, x, 0, &y);
    float *base = malloc(sizeof(float) * OW);
    int *lo = malloc(sizeof(int) * OW), *hi = malloc(sizeof(int) * OW);
    memcpy(base, y->data, sizeof(float) * OW); /* sample 0, channel 0 */
    for (int q = 0; q < OW; q++) { lo[q] = 1 << 30; hi[q] = -1; }
    for (int px = 0; px < W; px++) {
        float saved = x->data[px];
        x->data[px] += 1.0f;
        st_net_forward(net, x, 0, &y);
        x->data[px] = saved;
        for (int q = 0; q < OW; q++)
            if (y->data[q] != base[q]) {
                if (px < lo[q]) lo[q] = px;
                if (px > hi[q]) hi[q] = px;
            }
    }
    int widest = 0, first = -1, last = -1;
    for (int q = 0; q < OW; q++) {
        if (hi[q] < 0 || lo[q] == 0 || hi[q] == W - 1) continue; /* clipped by a border */
        if (hi[q] - lo[q] + 1 > widest) widest = hi[q] - lo[q] + 1;
        if (first < 0) first = q;
        last = q;
    }
    CHECK(first >= 0 && last > first, "%s: no unclipped outputs", info.name);
    if (first >= 0 && last > first) {
        CHECK(widest == (int)info.rf[1], "%s: receptive field %g, brute force %d", info.name, info.rf[1], widest);
        double step = (double)(lo[last] - lo[first]) / (last - first);
        CHECK(fabs(step - info.jump[1]) <= 1.0 / (last - first) + 1e-9, "%s: jump %g, brute force %g", info.name,
              info.jump[1], step);
    }
    free(base); free(lo); free(hi);
    st_tensor_free(x);
    st_net_free(net);
}

/* ---------------------------------------------------------------- whole-graph gradients */
static void check_graph_gradients(void) {
    const char *text =
        "x = input(shape=(2, 12))\n"
        "a = conv1d(x, out_channels=3, kernel_size=3, padding='same')\n"
        "t = tanh()\n"
        "b = conv1d(x, out_channels=3, kernel_size=4, padding='same', dilation=2)\n"
        "s = add(t, b)\n"
        "c = concat(s, x)\n"
        "g = sigmoid()\n"
        "d = conv1d(out_channels=4, kernel_size=2, stride=2, groups=1)\n"
        "l = tanh()\n"
        "f = flatten()\n"
        "fc = linear(out_features=5)\n";
    st_net *net = parse(text);
    CHECK(net != NULL, "graph with add and concat parses");
    if (!net) return;
    st_net_init(net, ST_INIT_PYTORCH, 3);
    st_rng r;
    st_rng_seed(&r, 11);
    st_tensor *x = st_tensor_new(3, (int[]){3, 2, 12});
    fill(x, &r, -1, 1);
    int32_t labels[3] = {1, 4, 0};
    float L;
    st_net_zero_grad(net);
    st_net_forward(net, x, 1, NULL);
    st_net_loss(net, ST_LOSS_CE, labels, NULL, &L);
    CHECK(st_net_backward(net, 1) == ST_OK, "backward: %s", st_errmsg());
    const st_tensor *gx = st_net_input_grad(net);
    CHECK(gx != NULL, "input gradient kept");
    /* finite differences in float with a wide step; loss in double is not available
     * through the API, so the tolerance is set for float rounding */
    const float h = 1e-2f;
    double worst = 0;
    int checked = 0;
    for (int i = -1; i < st_net_num_params(net); i++) {
        st_tensor *v = i < 0 ? x : st_net_param(net, i);
        const float *g = i < 0 ? gx->data : st_net_param_grad(net, i)->data;
        float *gcopy = malloc(sizeof(float) * st_tensor_numel(v));
        memcpy(gcopy, g, sizeof(float) * st_tensor_numel(v));
        for (size_t j = 0; j < st_tensor_numel(v); j += 3) {
            float keep = v->data[j], Lp, Lm;
            v->data[j] = keep + h;
            st_net_forward(net, x, 1, NULL);
            st_net_loss(net, ST_LOSS_CE, labels, NULL, &Lp);
            v->data[j] = keep - h;
            st_net_forward(net, x, 1, NULL);
            st_net_loss(net, ST_LOSS_CE, labels, NULL, &Lm);
            v->data[j] = keep;
            double num = ((double)Lp - Lm) / (2 * h), err = fabs(num - gcopy[j]);
            if (err > worst) worst = err;
            checked++;
        }
        free(gcopy);
    }
    CHECK(worst < 2e-4, "graph gradients vs finite differences: worst error %.3g over %d values", worst, checked);
    st_tensor_free(x);
    st_net_free(net);
}

/* ---------------------------------------------------------------- SGD against PyTorch */
static st_tensor *load_npy(const char *path) {
    st_array a;
    st_tensor *t = NULL;
    if (st_npy_load(path, &a) == ST_OK) { st_array_to_tensor(&a, &t); st_array_free(&a); }
    return t;
}

static void check_sgd(const char *model) {
    struct { const char *tag; st_sgd_conf c; } runs[] = {
        {"sgd", {0.1f, 0, 0, 0}}, {"momentum", {0.1f, 0.9f, 0.01f, 0}}, {"nesterov", {0.1f, 0.9f, 0.01f, 1}}};
    char path[256];
    snprintf(path, sizeof path, FX "%s.x.npy", model);
    st_tensor *x = load_npy(path);
    snprintf(path, sizeof path, FX "%s.labels.npy", model);
    st_array la;
    int32_t *labels = NULL;
    int64_t nl = 0;
    if (st_npy_load(path, &la) == ST_OK) { st_array_to_labels(&la, &labels, &nl); st_array_free(&la); }
    CHECK(x && labels, "%s: fixtures load", model);
    if (!x || !labels) return;
    for (int k = 0; k < 3; k++) {
        st_net *net;
        snprintf(path, sizeof path, FX "%s.net", model); /* a model file next to its fixtures, or the zoo */
        FILE *local = fopen(path, "r");
        if (local) fclose(local);
        if (st_net_open(local ? path : model, &net)) { CHECK(0, "open %s: %s", model, st_errmsg()); continue; }
        snprintf(path, sizeof path, FX "%s.weights.safetensors", model);
        CHECK(st_net_load_weights(net, path) == ST_OK, "load %s: %s", path, st_errmsg());
        st_sgd *opt;
        st_sgd_new(net, &runs[k].c, &opt);
        for (int s = 0; s < 3; s++) {
            float L;
            st_net_zero_grad(net);
            st_net_forward(net, x, 1, NULL);
            st_net_loss(net, ST_LOSS_CE, labels, NULL, &L);
            st_net_backward(net, 0);
            st_sgd_step(opt);
        }
        st_tensors ref;
        st_tensors_init(&ref);
        snprintf(path, sizeof path, FX "%s.%s.safetensors", model, runs[k].tag);
        st_safetensors_load(path, &ref);
        for (int i = 0; i < st_net_num_params(net); i++) {
            const st_array *a = st_tensors_get(&ref, st_net_param_name(net, i));
            st_tensor *t = NULL;
            if (a) st_array_to_tensor(a, &t);
            st_tensor *v = st_net_param(net, i);
            double err = t ? test_maxdiff(v->data, t->data, st_tensor_numel(v)) : INFINITY;
            double mag = t ? test_maxabs(t->data, st_tensor_numel(t)) : 0;
            CHECK(err <= 1e-5 * (1 + mag), "%s %s after 3 steps: %s error %.3g", model, runs[k].tag,
                  st_net_param_name(net, i), err);
            st_tensor_free(t);
        }
        /* buffers (batch norm's running statistics) after the same three training passes */
        st_tensors mine;
        st_tensors_init(&mine);
        st_net_get_weights(net, &mine);
        for (int i = 0; i < mine.n; i++) {
            if (!strstr(mine.names[i], "running_") && !strstr(mine.names[i], "num_batches")) continue;
            const st_array *r = st_tensors_get(&ref, mine.names[i]);
            st_tensor *a = NULL, *b = NULL;
            if (r) { st_array_to_tensor(r, &b); st_array_to_tensor(&mine.arrays[i], &a); }
            double err = a && b ? test_maxdiff(a->data, b->data, st_tensor_numel(b)) : INFINITY;
            double mag = b ? test_maxabs(b->data, st_tensor_numel(b)) : 0;
            CHECK(err <= 1e-5 * (1 + mag), "%s %s after 3 steps: buffer %s error %.3g", model, runs[k].tag, mine.names[i], err);
            st_tensor_free(a);
            st_tensor_free(b);
        }
        st_tensors_free(&mine);
        st_tensors_free(&ref);
        st_sgd_free(opt);
        st_net_free(net);
    }
    st_tensor_free(x);
    free(labels);
}

/* ---------------------------------------------------------------- weights, text, init, threads */
static void check_weights_and_text(void) {
    st_net *a, *b;
    st_net_from_zoo("mnist1d-cnn", &a);
    st_net_init(a, ST_INIT_HE, 5);
    char path[] = "/tmp/stride-test-net-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    CHECK(st_net_save_weights(a, path) == ST_OK, "save weights: %s", st_errmsg());
    char *text = st_net_to_text(a);
    b = parse(text);
    free(text);
    CHECK(b != NULL, "model text round trip parses");
    CHECK(st_net_param_count(b) == 2050, "round trip keeps 2,050 parameters");
    CHECK(st_net_load_weights(b, path) == ST_OK, "load weights into the round-tripped net: %s", st_errmsg());
    st_tensor *x = st_tensor_new(3, (int[]){4, 1, 40});
    st_rng r;
    st_rng_seed(&r, 1);
    fill(x, &r, -2, 2);
    const st_tensor *ya, *yb;
    st_net_forward(a, x, 0, &ya);
    float first = ya->data[0];
    st_net_forward(b, x, 0, &yb);
    CHECK(!memcmp(ya->data, yb->data, sizeof(float) * 40) && first == ya->data[0], "same weights, same outputs");
    /* loading weights of another model fails, names the problems, and changes nothing */
    st_net *mlp;
    st_net_from_zoo("mnist1d-mlp", &mlp);
    float before = st_net_param(mlp, 0)->data[0];
    st_status rc = st_net_load_weights(mlp, path);
    CHECK(rc == ST_ERR_SHAPE, "loading CNN weights into the MLP fails (%d)", rc);
    CHECK(strstr(st_errmsg(), "missing 'fc1.weight'") && strstr(st_errmsg(), "unexpected 'conv1.weight'"),
          "message names missing and unexpected tensors: %s", st_errmsg());
    CHECK(st_net_param(mlp, 0)->data[0] == before, "a failed load leaves the weights unchanged");
    remove(path);
    st_net_free(mlp);
    st_net_free(a);
    st_net_free(b);
    st_tensor_free(x);

    /* initialisation statistics on a wide layer */
    st_net *big = parse("x = input(shape=(400,))\nfc = linear(out_features=500)\n");
    st_net_init(big, ST_INIT_HE, 9);
    st_tensor *w = st_net_param(big, 0);
    double m = 0, q = 0;
    size_t n = st_tensor_numel(w);
    for (size_t i = 0; i < n; i++) { m += w->data[i]; q += (double)w->data[i] * w->data[i]; }
    m /= n;
    double sd = sqrt(q / n - m * m);
    CHECK(fabs(sd - sqrt(2.0 / 400)) < 0.02 * sqrt(2.0 / 400) && fabs(m) < 0.002, "He init: std %.5f (want %.5f)", sd, sqrt(2.0 / 400));
    CHECK(test_maxabs(st_net_param(big, 1)->data, 500) == 0, "He init: zero biases");
    st_net_init(big, ST_INIT_PYTORCH, 9);
    double bound = 1 / sqrt(400.0);
    CHECK(test_maxabs(w->data, n) <= bound, "PyTorch init within 1/sqrt(fan_in)");
    q = 0;
    for (size_t i = 0; i < n; i++) q += (double)w->data[i] * w->data[i];
    CHECK(fabs(q / n - bound * bound / 3) < 0.03 * bound * bound / 3, "PyTorch init: uniform variance");
    CHECK(test_maxabs(st_net_param(big, 1)->data, 500) > 0.9 * bound, "PyTorch init: uniform biases");
    st_net_free(big);
}

static void train_steps(int threads, float *out, size_t n) {
    st_set_threads(threads);
    st_net *net;
    st_net_from_zoo("mnist1d-cnn", &net);
    st_net_init(net, ST_INIT_HE, 3);
    st_sgd_conf c = {0.05f, 0.9f, 0, 0};
    st_sgd *opt;
    st_sgd_new(net, &c, &opt);
    st_tensor *x = st_tensor_new(3, (int[]){100, 1, 40});
    int32_t y[100];
    st_rng r;
    st_rng_seed(&r, 4);
    for (int s = 0; s < 20; s++) {
        fill(x, &r, -2, 2);
        for (int i = 0; i < 100; i++) y[i] = (int32_t)st_rng_below(&r, 10);
        float L;
        st_net_zero_grad(net);
        st_net_forward(net, x, 1, NULL);
        st_net_loss(net, ST_LOSS_CE, y, NULL, &L);
        st_net_backward(net, 0);
        st_sgd_step(opt);
    }
    memcpy(out, st_net_param(net, 2)->data, sizeof(float) * n);
    st_sgd_free(opt);
    st_tensor_free(x);
    st_net_free(net);
}

static void check_determinism(void) {
    float a[675], b[675];
    train_steps(1, a, 675);
    train_steps(2, b, 675);
    CHECK(!memcmp(a, b, sizeof a), "20 training steps give bit-identical weights with 1 and 2 threads");
    st_set_threads(0);
}

/* st_net_step (fused) gives the gradients of forward + loss + backward, and the node
 * outputs of forward (those its convolutions keep in columns are written when read):
 * mnist1d-cnn, and chains of convolutions with padding, groups and a last one without a
 * ReLU, at batches that split into equal and unequal shards or make one shard, on 1 and
 * 2 threads. */
static void check_fused_step_on(const char *model, int batch, int c, int h, int w) {
    st_net *a = NULL, *b = NULL;
    if (strchr(model, '=')) {
        a = parse(model);
        b = parse(model);
    } else {
        st_net_from_zoo(model, &a);
        st_net_from_zoo(model, &b);
    }
    if (!a || !b) { CHECK(0, "fused step: cannot make %s", model); return; }
    st_net_init(a, ST_INIT_HE, 8);
    st_net_init(b, ST_INIT_HE, 8);
    st_tensor *x = h ? st_tensor_new(4, (int[]){batch, c, h, w}) : st_tensor_new(3, (int[]){batch, c, w});
    st_rng r;
    st_rng_seed(&r, 2);
    fill(x, &r, -2, 2);
    int32_t *y = malloc(sizeof(int32_t) * batch);
    for (int i = 0; i < batch; i++) y[i] = (int32_t)st_rng_below(&r, 10);
    float La, Lb;
    st_net_zero_grad(a);
    st_net_forward(a, x, 1, NULL);
    st_net_loss(a, ST_LOSS_CE, y, NULL, &La);
    st_net_backward(a, 1);
    st_net_zero_grad(b);
    CHECK(st_net_step(b, x, ST_LOSS_CE, y, NULL, &Lb, 1) == ST_OK, "st_net_step: %s", st_errmsg());
    CHECK(fabsf(La - Lb) <= 1e-6f * fabsf(La), "fused loss %.9g vs %.9g", Lb, La);
    int same = 1;
    for (int i = 0; i < st_net_num_params(a); i++)
        same &= !memcmp(st_net_param_grad(a, i)->data, st_net_param_grad(b, i)->data,
                        sizeof(float) * st_tensor_numel(st_net_param_grad(a, i)));
    CHECK(same, "fused step (%.12s, batch %d): parameter gradients identical to the three calls", model, batch);
    CHECK(!memcmp(st_net_input_grad(a)->data, st_net_input_grad(b)->data, sizeof(float) * st_tensor_numel(x)),
          "fused step (%.12s, batch %d): same input gradient", model, batch);
    for (int i = 1; i < st_net_num_nodes(a); i++) {
        const st_tensor *oa = st_net_node_output(a, i), *ob = st_net_node_output(b, i);
        CHECK(oa && ob && !memcmp(oa->data, ob->data, sizeof(float) * st_tensor_numel(oa)),
              "fused step (%.12s, batch %d): node %s's output as forward's", model, batch, st_net_node_name(a, i));
    }
    st_tensor_free(x);
    free(y);
    st_net_free(a);
    st_net_free(b);
}

static void check_fused_step(void) {
    const char *conv1d = "x = input(shape=(2, 30))\n"
                         "c1 = conv1d(x, out_channels=8, kernel_size=3, padding=1)\nr1 = relu()\n"
                         "c2 = conv1d(out_channels=8, kernel_size=5, padding=2, groups=2)\nr2 = relu()\n"
                         "c3 = conv1d(out_channels=6, kernel_size=3, stride=2)\n"
                         "f = flatten()\nfc = linear(out_features=10)\n";
    const char *conv2d = "x = input(shape=(3, 9, 9))\n"
                         "c1 = conv2d(x, out_channels=6, kernel_size=3, padding=1)\nr1 = relu()\n"
                         "c2 = conv2d(out_channels=6, kernel_size=3, stride=2, padding=1, groups=3)\nr2 = relu()\n"
                         "c3 = conv2d(out_channels=5, kernel_size=2)\nr3 = relu()\n"
                         "f = flatten()\nfc = linear(out_features=10)\n";
    int batches[] = {100, 101, 67, 40}; /* (40: one shard, the convolutions' own threads) */
    for (int i = 0; i < 4; i++) {
        st_set_threads(i % 2 + 1);
        check_fused_step_on("mnist1d-cnn", batches[i], 1, 0, 40);
        check_fused_step_on(conv1d, batches[i], 2, 0, 30);
        check_fused_step_on(conv2d, batches[i], 3, 9, 9);
    }
    st_set_threads(0);
}

/* dropout nodes: identity in eval mode; in training, a seeded mask that scales the kept
 * elements (or planes) by 1/(1-p) and routes the gradient through the same mask */
static void check_dropout(void) {
    const char *text = "x = input(shape=(8, 64))\nd = dropout(p=0.3)\nd2 = dropout2d(p=0.5)\n";
    st_tensor *x = st_tensor_new(3, (int[]){100, 8, 64});
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = 1.0f + (float)(i % 7);
    float outs[2][3];
    for (int threads = 1; threads <= 2; threads++) {
        st_set_threads(threads);
        st_net *net = parse(text);
        st_net_init(net, ST_INIT_HE, 5);
        const st_tensor *y;
        st_net_forward(net, x, 0, &y);
        CHECK(!memcmp(y->data, x->data, sizeof(float) * st_tensor_numel(x)), "dropout: identity in eval mode");
        st_net_forward(net, x, 1, &y);
        size_t n = st_tensor_numel(x), zero = 0, bad = 0, planes_mixed = 0;
        const float keep = 1.0f / ((1 - 0.3f) * (1 - 0.5f));
        for (size_t i = 0; i < n; i++) {
            if (y->data[i] == 0) zero++;
            else if (fabsf(y->data[i] - x->data[i] * keep) > 1e-5f * y->data[i]) bad++;
        }
        for (size_t p = 0; p < n / 64; p++) {
            int zeros = 0;
            for (int j = 0; j < 64; j++) zeros += y->data[p * 64 + j] == 0;
            planes_mixed += zeros == 64; /* dropout2d removed the whole plane */
        }
        double frac = (double)zero / n, want = 1 - 0.7 * 0.5;
        CHECK(fabs(frac - want) < 0.02, "dropout: %.3f of the values dropped, expected about %.3f", frac, want);
        CHECK(bad == 0, "dropout: kept values are scaled by 1/(1-p) (%zu wrong)", bad);
        CHECK(fabs((double)planes_mixed / (n / 64) - 0.5) < 0.06, "dropout2d drops whole planes (%zu of %zu)", planes_mixed, n / 64);
        outs[threads - 1][0] = y->data[0];
        outs[threads - 1][1] = y->data[777];
        outs[threads - 1][2] = y->data[n - 1];
        /* backward through the same masks: mse against zero gives dL/dy = 2y/size, so
         * dL/dx = (2y/size) * mask/(1-p) per dropout = 2y*keep/size where kept, else 0 */
        st_tensor *t = st_tensor_new(3, (int[]){100, 8, 64});
        float L;
        st_net_loss(net, ST_LOSS_MSE, NULL, t, &L);
        st_net_backward(net, 1);
        const st_tensor *gx = st_net_input_grad(net);
        size_t wrong = 0;
        for (size_t i = 0; i < n; i++) {
            float want_g = y->data[i] == 0 ? 0 : 2 * y->data[i] * keep / n;
            if (fabsf(gx->data[i] - want_g) > 1e-6f * (fabsf(want_g) + 1e-6f)) wrong++;
        }
        CHECK(wrong == 0, "dropout backward uses the forward's masks (%zu wrong)", wrong);
        st_tensor_free(t);
        st_net_free(net);
    }
    CHECK(!memcmp(outs[0], outs[1], sizeof outs[0]), "dropout masks are the same with 1 and 2 threads");
    st_set_threads(0);
    st_tensor_free(x);
}

static void check_errors(void) {
    st_net *net;
    st_status rc = st_net_parse("x = input(shape=(1, 40))\nc = conv1d(out_channels=4, kernel_size=3, padding='same', stride=2)\n", "m.net", &net);
    CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), "m.net line 2") && strstr(st_errmsg(), "strided"),
          "'same' with stride 2 is rejected with PyTorch's reason: %s", st_errmsg());
    rc = st_net_parse("x = input(shape=(4, 40))\nc = conv1d(out_channels=6, kernel_size=3, groups=3)\n", "m.net", &net);
    CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), "divisible by groups"), "groups must divide channels: %s", st_errmsg());
    rc = st_net_parse("x = input(shape=(1, 40))\nx = relu()\n", "m.net", &net);
    CHECK(rc == ST_ERR_PARSE && strstr(st_errmsg(), "defined twice"), "duplicate names: %s", st_errmsg());
    rc = st_net_parse("r = relu()\n", "m.net", &net);
    CHECK(rc == ST_ERR_PARSE && strstr(st_errmsg(), "first node must be an input"), "input first: %s", st_errmsg());
    rc = st_net_parse("# only a comment\n\n", "m.net", &net);
    CHECK(rc == ST_ERR_PARSE && strstr(st_errmsg(), "no nodes"), "empty model: %s", st_errmsg());
    rc = st_net_parse("x = input(shape=(1, 40))\nc = conv1d(out_channels=4, kernel_size=(3, 3))\n", "m.net", &net);
    CHECK(rc == ST_ERR_PARSE && strstr(st_errmsg(), "kernel_size"), "a 2D kernel for conv1d: %s", st_errmsg());
    /* PyTorch's 'same' for an even kernel and dilation: left 4, right 5 -> same length */
    CHECK(st_net_parse("x = input(shape=(2, 9, 11))\nc = conv2d(out_channels=3, kernel_size=(4, 2), dilation=3, padding='same')\n", "m", &net) == ST_OK,
          "'same' with an even kernel parses");
    if (net) {
        int nd, sh[ST_MAX_DIMS];
        st_net_node_shape(net, 1, &nd, sh);
        CHECK(sh[2] == 9 && sh[3] == 11, "'same' keeps 9x11, got %dx%d", sh[2], sh[3]);
        st_net_free(net);
    }
    /* batch norm cannot train on one value per channel (PyTorch's rule) */
    CHECK(st_net_parse("x = input(shape=(4,))\nb = batch_norm1d()\n", "m", &net) == ST_OK, "batch_norm1d parses");
    if (net) {
        st_tensor *one = st_tensor_new(2, (int[]){1, 4});
        CHECK(st_net_forward(net, one, 1, NULL) == ST_ERR_SHAPE && strstr(st_errmsg(), "more than 1 value per channel"),
              "batch norm with one sample in training: %s", st_errmsg());
        CHECK(st_net_forward(net, one, 0, NULL) == ST_OK, "batch norm with one sample in eval mode is fine");
        st_tensor_free(one);
        st_net_free(net);
    }
    /* a wrong input shape through the API */
    st_net_from_zoo("mnist1d-cnn", &net);
    st_tensor *x = st_tensor_new(3, (int[]){2, 3, 40});
    CHECK(st_net_forward(net, x, 0, NULL) == ST_ERR_SHAPE && strstr(st_errmsg(), "(-1, 1, 40)"), "wrong input shape: %s", st_errmsg());
    CHECK(st_net_backward(net, 0) == ST_ERR_STATE, "backward before loss is refused");
    st_tensor_free(x);
    st_net_free(net);
}

int main(void) {
    /* mnist1d-cnn (valid, stride 2), then 2D with padding, dilation and a residual add */
    char *cnn_text = NULL;
    CHECK(st_zoo_model_text("mnist1d-cnn", &cnn_text) == ST_OK, "zoo text: %s", st_errmsg());
    if (cnn_text) check_receptive_fields(cnn_text, 1);
    free(cnn_text);
    check_receptive_fields("x = input(shape=(1, 23, 25))\n"
                           "c1 = conv2d(out_channels=2, kernel_size=3, padding=1)\n"
                           "r1 = relu()\n"
                           "c2 = conv2d(out_channels=2, kernel_size=(3, 2), stride=2, dilation=(1, 2))\n"
                           "c3 = conv2d(out_channels=2, kernel_size=3, dilation=2, padding='same')\n"
                           "s = add(c2, c3)\n"
                           "c4 = conv2d(out_channels=1, kernel_size=1)\n",
                           2);
    /* pooling changes the field like a convolution (average pooling: every input counts) */
    check_receptive_fields("x = input(shape=(1, 40, 41))\n"
                           "c1 = conv2d(out_channels=2, kernel_size=3)\n"
                           "p1 = avg_pool2d(kernel_size=2)\n"
                           "c2 = conv2d(out_channels=2, kernel_size=(3, 2), dilation=2)\n"
                           "p2 = avg_pool2d(kernel_size=3, stride=2, padding=1)\n"
                           "c3 = conv2d(out_channels=1, kernel_size=2)\n",
                           2);
    /* fields through upsampling, transposed convolutions and adaptive pooling (jumps < 1) */
    const char *frac[] = {
        "x = input(shape=(1, 61))\nc1 = conv1d(out_channels=1, kernel_size=3)\nu = upsample(scale_factor=2)\n",
        "x = input(shape=(1, 61))\nc1 = conv1d(out_channels=1, kernel_size=3)\nu = upsample(scale_factor=2)\n"
        "c2 = conv1d(out_channels=1, kernel_size=3)\n",
        "x = input(shape=(1, 61))\nu = upsample(scale_factor=3, mode='linear')\nc2 = conv1d(out_channels=1, kernel_size=5)\n",
        "x = input(shape=(1, 50))\nc1 = conv1d(out_channels=2, kernel_size=3)\n"
        "t = conv_transpose1d(out_channels=1, kernel_size=3, stride=2)\n",
        "x = input(shape=(1, 50))\nt = conv_transpose1d(out_channels=2, kernel_size=2, stride=2)\n"
        "c = conv1d(out_channels=1, kernel_size=5)\n",
        "x = input(shape=(1, 60))\np = avg_pool1d(kernel_size=2)\nc = conv1d(out_channels=2, kernel_size=3)\n"
        "t = conv_transpose1d(out_channels=2, kernel_size=4, stride=2, padding=1)\nc2 = conv1d(out_channels=1, kernel_size=3)\n",
        "x = input(shape=(1, 64))\na = adaptive_avg_pool1d(output_size=9)\n",
        "x = input(shape=(1, 64))\nc = conv1d(out_channels=1, kernel_size=3)\na = adaptive_avg_pool1d(output_size=20)\n",
    };
    for (size_t i = 0; i < sizeof frac / sizeof frac[0]; i++) check_fractional_fields(frac[i]);
    check_graph_gradients();
    check_sgd("mnist1d-cnn");
    check_sgd("mnist1d-mlp");
    check_sgd("convt1d");
    check_sgd("convt2d");
    check_sgd("lenet5");
    check_sgd("pool1d");
    check_sgd("deconv2d");
    check_sgd("deconv1d");
    check_sgd("bn");
    check_weights_and_text();
    check_determinism();
    check_fused_step();
    check_dropout();
    check_errors();
    return test_done("test_net");
}
