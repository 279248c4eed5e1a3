/* test_memory.c - the memory plans and inference fusion (net.c, plan.c, layers.c):
 *   - plan.c places buffers so that no two buffers live at a common step overlap;
 *   - a training step with shared memory (outputs, gradients and workspaces by liveness,
 *     ReLU in place, recomputed batch-norm activations) gives bit-identical losses,
 *     gradients and weights to one without sharing, with 1 and 2 threads;
 *   - st_net_run (batch norm folded into the convolution, bias + BN + ReLU in one pass,
 *     shared activations) equals the unfused eval forward to float rounding (relative
 *     error < 1e-5) on the zoo's CNNs and on hand-made corner cases, is the same with 1
 *     and 2 threads, follows weight changes, and needs a fraction of the memory. */
#include "stride.h"
#include "test.h"
#include "net.h" /* the plans' switches and arena sizes */

#include <stdlib.h>
#include <string.h>

static void fill(float *p, size_t n, st_rng *r, double lo, double hi) {
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * st_rng_uniform(r));
}

static st_net *open_net(const char *name, uint64_t seed) {
    st_net *net = NULL;
    if (st_net_open(name, &net) || st_net_init(net, ST_INIT_PYTORCH, seed)) {
        fprintf(stderr, "%s: %s\n", name, st_errmsg());
        st_net_free(net);
        return NULL;
    }
    return net;
}

static st_tensor *input_for(st_net *net, int batch, st_rng *r) {
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    shape[0] = batch;
    st_tensor *x = st_tensor_new(nd, shape);
    fill(x->data, st_tensor_numel(x), r, -1.5, 1.5);
    return x;
}

/* Batch norms with statistics and affine maps far from the identity, so that folding
 * them is really tested. */
static void perturb_batch_norms(st_net *net, st_rng *r) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (strncmp(n->op->name, "batch_norm", 10)) continue;
        const st_bn_conf *c = &n->u.bn;
        int C = c->num_features;
        if (c->affine) {
            fill(net->params[n->params[0]].value.data, C, r, 0.5, 1.5);
            fill(net->params[n->params[1]].value.data, C, r, -0.5, 0.5);
        }
        if (c->track) {
            fill(net->buffers[c->running_mean].value.data, C, r, -0.5, 0.5);
            fill(net->buffers[c->running_var].value.data, C, r, 0.3, 2.0);
        }
    }
}

static double rel_err(const float *a, const float *b, size_t n) {
    return test_maxdiff(a, b, n) / (test_maxabs(b, n) > 0 ? test_maxabs(b, n) : 1);
}

/* ---------------------------------------------------------------- plan.c */
static void check_placement(void) {
    st_rng r;
    st_rng_seed(&r, 11);
    int bad = 0;
    for (int trial = 0; trial < 50; trial++) {
        int n = 1 + (int)st_rng_below(&r, 60);
        st_live b[60];
        for (int i = 0; i < n; i++) {
            int a = (int)st_rng_below(&r, 40), len = (int)st_rng_below(&r, 10);
            b[i] = (st_live){st_rng_below(&r, 5) ? 1 + st_rng_below(&r, 1000) : 0, a, a + len, 0};
        }
        size_t total = st_plan_place(b, n), busiest = 0;
        for (int t = 0; t < 50; t++) {
            size_t sum = 0;
            for (int i = 0; i < n; i++) sum += b[i].first <= t && t <= b[i].last ? b[i].size : 0;
            if (sum > busiest) busiest = sum;
        }
        for (int i = 0; i < n; i++) {
            if (b[i].offset % 16 || b[i].offset + b[i].size > total) bad++;
            for (int j = 0; j < i; j++) {
                int live = !(b[i].last < b[j].first || b[j].last < b[i].first) && b[i].size && b[j].size;
                int apart = b[i].offset + b[i].size <= b[j].offset || b[j].offset + b[j].size <= b[i].offset;
                if (live && !apart) bad++;
            }
        }
        if (total < busiest) bad++;
    }
    CHECK(bad == 0, "plan: %d overlapping, misaligned or impossible placements in 50 random plans", bad);
}

/* ---------------------------------------------------------------- training steps */
typedef struct {
    float loss[3];
    float *grads, *input_grad, *weights;
    size_t n, nx;
} step_result;

/* Three steps: st_net_step, forward + loss + backward, st_net_step; SGD with momentum. */
static int train(const char *model, const char *text, int batch, st_loss loss, int reuse, int threads, step_result *out) {
    st_set_threads(threads);
    st_net *net = text ? NULL : open_net(model, 3);
    if (text && !st_net_parse(text, "test", &net)) st_net_init(net, ST_INIT_PYTORCH, 3);
    if (!net) return 0;
    net->reuse = reuse;
    st_rng r;
    st_rng_seed(&r, 5);
    st_tensor *x = input_for(net, batch, &r);
    int ond, oshape[ST_MAX_DIMS];
    st_net_node_shape(net, net->nnodes - 1, &ond, oshape);
    oshape[0] = batch;
    st_tensor *t = st_tensor_new(ond, oshape);
    fill(t->data, st_tensor_numel(t), &r, 0, 1);
    size_t pos = st_tensor_numel(t) / ((size_t)batch * oshape[1]);
    int32_t *labels = malloc(sizeof(int32_t) * batch * pos);
    for (size_t i = 0; i < batch * pos; i++) labels[i] = (int32_t)st_rng_below(&r, (uint32_t)oshape[1]);
    st_sgd_conf c = {0.01f, 0.9f, 0.0f, 0};
    st_sgd *opt;
    st_sgd_new(net, &c, &opt);
    float *values, *grads;
    size_t n;
    st_net_arenas(net, &values, &grads, &n);
    out->n = n;
    out->nx = st_tensor_numel(x);
    out->grads = malloc(sizeof(float) * n * 3);
    out->input_grad = malloc(sizeof(float) * out->nx * 3);
    out->weights = malloc(sizeof(float) * n);
    int ok = 1;
    for (int s = 0; s < 3 && ok; s++) {
        st_net_zero_grad(net);
        const int32_t *lab = loss == ST_LOSS_CE ? labels : NULL;
        if (s == 1) {
            ok = !st_net_forward(net, x, 1, NULL) && !st_net_loss(net, loss, lab, t, &out->loss[s]) && !st_net_backward(net, 1);
        } else {
            ok = !st_net_step(net, x, loss, lab, t, &out->loss[s], 1);
            /* what a step keeps: the output always; with reuse on a big graph not much else */
            CHECK(st_net_node_output(net, net->nnodes - 1) != NULL, "%s: the output is kept", model);
            if (reuse == 1 && net->partial) {
                int dropped = 0;
                for (int i = 1; i < net->nnodes - 1; i++) dropped += st_net_node_output(net, i) == NULL;
                CHECK(dropped > 0, "%s: a shared step reports dropped outputs", model);
                CHECK(st_net_backward(net, 0) == ST_ERR_STATE, "%s: backward after a shared step is refused", model);
            }
        }
        if (!ok) { fprintf(stderr, "%s step %d: %s\n", model, s, st_errmsg()); break; }
        memcpy(out->grads + s * n, grads, sizeof(float) * n);
        memcpy(out->input_grad + s * out->nx, st_net_input_grad(net)->data, sizeof(float) * out->nx);
        st_sgd_step(opt);
    }
    memcpy(out->weights, values, sizeof(float) * n);
    st_sgd_free(opt);
    free(labels);
    st_tensor_free(x);
    st_tensor_free(t);
    st_net_free(net);
    return ok;
}

static void free_result(step_result *a) {
    free(a->grads);
    free(a->input_grad);
    free(a->weights);
}

static void check_training(const char *model, const char *text, int batch, st_loss loss) {
    step_result plain, shared, shared2;
    int ok = train(model, text, batch, loss, 0, 2, &plain) && train(model, text, batch, loss, 1, 1, &shared) &&
             train(model, text, batch, loss, 1, 2, &shared2);
    CHECK(ok, "%s: training steps ran", model);
    if (ok) {
        int same = !memcmp(plain.loss, shared.loss, sizeof plain.loss) &&
                   !memcmp(plain.grads, shared.grads, sizeof(float) * plain.n * 3) &&
                   !memcmp(plain.input_grad, shared.input_grad, sizeof(float) * plain.nx * 3) &&
                   !memcmp(plain.weights, shared.weights, sizeof(float) * plain.n);
        CHECK(same, "%s: shared memory changes the losses, gradients or weights (1 thread)", model);
        same = !memcmp(shared2.loss, shared.loss, sizeof plain.loss) &&
               !memcmp(shared2.grads, shared.grads, sizeof(float) * plain.n * 3) &&
               !memcmp(shared2.weights, shared.weights, sizeof(float) * plain.n);
        CHECK(same, "%s: shared memory with 2 threads differs from 1 thread", model);
    }
    free_result(&plain);
    free_result(&shared);
    free_result(&shared2);
    st_set_threads(0);
}

/* Reuse cuts the training arena well below every output plus every gradient. */
static void check_training_memory(void) {
    st_net *net = open_net("resnet18:classes=10,size=32,cifar=1", 1);
    if (!net) { CHECK(0, "resnet18"); return; }
    st_rng r;
    st_rng_seed(&r, 2);
    st_tensor *x = input_for(net, 4, &r);
    int32_t labels[4] = {1, 2, 3, 4};
    size_t all = 0;
    for (int i = 1; i < net->nnodes; i++) all += 2 * net->nodes[i].numel * 4;
    net->reuse = 1;
    CHECK(st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0) == ST_OK, "%s", st_errmsg());
    double ratio = (double)net->act_cap / all;
    CHECK(ratio < 0.5, "resnet18 training arena %.2f of all outputs and gradients", ratio);
    printf("resnet18 CIFAR batch 4 training step: arena %.1f MB for %.1f MB of outputs and gradients (%.2f)\n",
           net->act_cap * 4e-6, all * 4e-6, ratio);
    st_tensor_free(x);
    st_net_free(net);
}

/* ---------------------------------------------------------------- inference */
static void check_run(const char *model, const char *text, int batch) {
    st_net *net = text ? NULL : open_net(model, 7);
    if (text && !st_net_parse(text, "test", &net)) st_net_init(net, ST_INIT_PYTORCH, 7);
    if (!net) { CHECK(0, "%s: opens", model); return; }
    st_rng r;
    st_rng_seed(&r, 9);
    perturb_batch_norms(net, &r);
    st_tensor *x = input_for(net, batch, &r);
    const st_tensor *y;
    st_status rc = st_net_forward(net, x, 0, &y);
    CHECK(rc == ST_OK, "%s: forward: %s", model, st_errmsg());
    if (rc) goto done;
    size_t n = st_tensor_numel(y);
    float *ref = malloc(sizeof(float) * n), *one = malloc(sizeof(float) * n);
    memcpy(ref, y->data, sizeof(float) * n);
    for (int th = 1; th <= 2; th++) {
        st_set_threads(th);
        rc = st_net_run(net, x, &y);
        CHECK(rc == ST_OK && y && st_tensor_numel(y) == n, "%s: run: %s", model, st_errmsg());
        if (rc) break;
        double e = rel_err(y->data, ref, n);
        CHECK(e < 1e-5, "%s: st_net_run differs from the eval forward by %.3g (relative, %d threads)", model, e, th);
        if (th == 1) memcpy(one, y->data, sizeof(float) * n);
        else CHECK(!memcmp(one, y->data, sizeof(float) * n), "%s: st_net_run differs with 1 and 2 threads", model);
    }
    st_set_threads(0);
    if (!rc) {
        CHECK(st_net_node_output(net, net->nnodes - 1) != NULL, "%s: run keeps the output", model);
        /* weights change: the fold follows (no stale folded copy) */
        perturb_batch_norms(net, &r);
        float *w = st_net_param(net, 0)->data;
        w[0] += 0.25f;
        st_net_forward(net, x, 0, &y);
        memcpy(ref, y->data, sizeof(float) * n);
        for (int i = 1; i < net->nnodes; i++) CHECK(st_net_node_output(net, i) != NULL, "%s: forward keeps every output", model);
        rc = st_net_run(net, x, &y);
        double e = rc ? 1 : rel_err(y->data, ref, n);
        CHECK(e < 1e-5, "%s: after a weight change st_net_run differs by %.3g", model, e);
    }
    free(ref);
    free(one);
done:
    st_tensor_free(x);
    st_net_free(net);
}

/* A residual add folded into a convolution's epilogue (st_fuse_plan) changes no bit of the
 * output and takes the add's pass away: every add of the ResNets is skipped, and the
 * output equals that of a plan without the folded adds. */
static void check_add_fusion(const char *model, int batch) {
    st_net *a = open_net(model, 11), *b = open_net(model, 11);
    if (!a || !b) { CHECK(0, "%s: opens", model); st_net_free(a); st_net_free(b); return; }
    st_rng r;
    st_rng_seed(&r, 12);
    perturb_batch_norms(a, &r);
    st_rng_seed(&r, 12);
    perturb_batch_norms(b, &r);
    st_tensor *x = input_for(a, batch, &r);
    const st_tensor *ya, *yb;
    st_fuse_force_adds(0);
    st_status rc = st_net_run(b, x, &yb);
    st_fuse_force_adds(1);
    if (!rc) rc = st_net_run(a, x, &ya);
    CHECK(rc == ST_OK, "%s: run: %s", model, st_errmsg());
    if (!rc) {
        int adds = 0, folded = 0, kept = 0;
        for (int i = 1; i < a->nnodes; i++) {
            if (strcmp(a->nodes[i].op->name, "add")) continue;
            adds++;
            folded += a->nodes[i].skip != 0 && a->nodes[a->nodes[i].skip].fuse.add != 0;
            kept += b->nodes[i].skip == 0;
        }
        CHECK(adds > 0 && folded == adds && kept == adds, "%s: %d of %d adds folded (%d left alone without)", model,
              folded, adds, kept);
        size_t n = st_tensor_numel(ya);
        CHECK(n == st_tensor_numel(yb) && !memcmp(ya->data, yb->data, sizeof(float) * n),
              "%s: the folded adds change the output", model);
    }
    st_tensor_free(x);
    st_net_free(a);
    st_net_free(b);
}

/* How much an eval pass holds: st_net_run against st_net_forward. */
static void check_run_memory(const char *model, int batch, double at_most) {
    st_net *net = open_net(model, 1);
    if (!net) { CHECK(0, "%s", model); return; }
    st_rng r;
    st_rng_seed(&r, 2);
    st_tensor *x = input_for(net, batch, &r);
    const st_tensor *y;
    /* activations and workspace (st_net_run places the workspaces in its arena) */
    st_net_forward(net, x, 0, &y);
    size_t all = net->act_cap + net->work_cap;
    st_net_free(net);
    net = open_net(model, 1);
    st_net_run(net, x, &y);
    size_t run = net->act_cap + net->work_cap;
    double ratio = (double)run / all;
    printf("%s batch %d inference: st_net_run needs %.1f MB of activations and workspace, st_net_forward %.1f MB (%.2f)\n",
           model, batch, run * 4e-6, all * 4e-6, ratio);
    CHECK(ratio <= at_most, "%s: st_net_run's activations are %.3f of the forward's (at most %.2f)", model, ratio, at_most);
    st_tensor_free(x);
    st_net_free(net);
}

static void check_hourglass_heads(void) {
    const char *m = "hourglass:stacks=2,features=16,joints=3,depth=1,size=16";
    st_net *net = open_net(m, 4);
    if (!net) { CHECK(0, "hourglass"); return; }
    st_rng r;
    st_rng_seed(&r, 3);
    st_tensor *x = input_for(net, 2, &r);
    const st_tensor *y;
    int nd, sh[ST_MAX_DIMS];
    st_net_node_shape(net, net->nnodes - 1, &nd, sh);
    sh[0] = 2;
    st_tensor *t = st_tensor_new(nd, sh);
    fill(t->data, st_tensor_numel(t), &r, 0, 1);
    float L1 = 0, L2 = 0;
    st_net_forward(net, x, 0, &y);
    st_net_loss(net, ST_LOSS_MSE, NULL, t, &L1);
    CHECK(st_net_run(net, x, &y) == ST_OK && st_net_loss(net, ST_LOSS_MSE, NULL, t, &L2) == ST_OK, "%s", st_errmsg());
    CHECK(fabsf(L1 - L2) <= 1e-5f * fabsf(L1), "hourglass: the loss over the heads after st_net_run %g, forward %g", L2, L1);
    CHECK(st_net_backward(net, 0) == ST_ERR_STATE, "hourglass: backward after st_net_run is refused");
    st_tensor_free(t);
    st_tensor_free(x);
    st_net_free(net);
}

/* corner cases of fusion and of in-place nodes */
static const char *mlp_bn =
    "x = input(shape=(12,))\nfc1 = linear(out_features=16)\nbn = batch_norm1d()\nact = leaky_relu(negative_slope=0.2)\n"
    "d = dropout(p=0.3)\nfc2 = linear(out_features=5)\n";
static const char *convs =
    "x = input(shape=(3, 9, 9))\n"
    "c1 = conv2d(x, out_channels=6, kernel_size=3, padding=1)\nb1 = batch_norm2d(affine=False)\nr1 = relu()\n"
    "c2 = conv2d(out_channels=6, kernel_size=3, padding=1, bias=False)\nb2 = batch_norm2d()\ns2 = sigmoid()\n"
    "c3 = conv2d(r1, out_channels=6, kernel_size=1)\nr3 = leaky_relu(negative_slope=-0.1)\n"
    "a = add(s2, r3)\nra = relu()\nc4 = conv2d(ra, out_channels=6, kernel_size=3, padding=1)\nr4 = relu()\n"
    "cat = concat(r4, b1)\nc5 = conv_transpose2d(out_channels=4, kernel_size=2, stride=2)\nb5 = batch_norm2d()\n"
    "t5 = tanh()\nf = flatten()\nfc = linear(out_features=3)\n";

int main(void) {
    check_placement();

    check_training("convs", convs, 3, ST_LOSS_CE);
    check_training("mlp_bn", mlp_bn, 7, ST_LOSS_MSE);
    check_training("resnet18:classes=10,size=16,cifar=1", NULL, 3, ST_LOSS_CE);
    check_training("deconvnet:size=32,width=8,fc=1", NULL, 2, ST_LOSS_CE);
    check_training("unet-same:size=32,width=8", NULL, 2, ST_LOSS_BCE);
    check_training("hourglass:stacks=2,features=16,joints=3,depth=1,size=16", NULL, 2, ST_LOSS_MSE);
    check_training("preact-resnet18:classes=10,size=16", NULL, 2, ST_LOSS_CE);
    check_training("mnist1d-cnn", NULL, 8, ST_LOSS_CE);
    check_training("lenet5", NULL, 4, ST_LOSS_CE);
    check_training_memory();

    check_run("resnet18:classes=10,size=32", NULL, 2);
    check_run("resnet50:classes=10,size=32", NULL, 2);
    check_add_fusion("resnet18:classes=10,size=32", 2);
    check_add_fusion("resnet50:classes=10,size=32", 2);
    check_run("resnet18:classes=10,size=32,cifar=1", NULL, 3);
    check_run("vgg11_bn:classes=10,size=32", NULL, 2);
    check_run("deconvnet:size=32,width=8,fc=1", NULL, 2);
    check_run("unet-same:size=32,width=8", NULL, 2);
    check_run("hourglass:stacks=2,features=16,joints=3,depth=1,size=16", NULL, 2);
    check_run("preact-resnet18:classes=10,size=32", NULL, 2);
    check_run("mnist1d-cnn", NULL, 100); /* two data-parallel shards: fused, not shared */
    check_run("mnist1d-mlp", NULL, 5);
    check_run("lenet5", NULL, 4);
    check_run("convs", convs, 3);
    check_run("mlp_bn", mlp_bn, 6);
    check_hourglass_heads();
    check_run_memory("resnet18:classes=10,size=64", 2, 0.7);
    check_run_memory("resnet50:classes=10,size=64", 2, 0.3);
    check_run_memory("vgg11_bn:classes=10,size=32", 2, 0.8);
    return test_done("test_memory");
}
