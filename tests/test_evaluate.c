/* test_evaluate.c - the CLI's shared evaluation (tools/evaluate.c) and data specs
 * (tools/task_data.c):
 *   - classification and segmentation metrics, computed batch by batch, against a direct
 *     computation here (one forward of everything, argmax, counts, log-softmax in double);
 *   - perfect predictions (a 1x1 convolution that copies one-hot masks or the true
 *     heatmaps through) score pixel accuracy 1, mean IoU 1, MSE 0 and PCK 1;
 *   - the keypoint loss of a stacked hourglass is the summed MSE that st_net_loss gives;
 *   - evaluating between training steps leaves the run bit-identical;
 *   - data specs (mnist1d, shapes, shapes-keypoints), their errors, and the normalisation
 *     stored in a weights file's metadata. */
#include "stride.h"
#include "test.h"
#include "../tools/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static st_net *parse(const char *text) {
    st_net *net = NULL;
    if (st_net_parse(text, "test", &net)) fprintf(stderr, "parse: %s\n", st_errmsg());
    return net;
}

static void fill_uniform(float *x, size_t n, st_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(2 * st_rng_uniform(r) - 1);
}

/* ---------------------------------------------------------------- classification */
static void test_classify(void) {
    enum { N = 53, K = 7 };
    st_net *net = parse("x = input(shape=(1, 6, 6))\nf = flatten()\nfc = linear(out_features=7)\n");
    st_net_init(net, ST_INIT_HE, 3);
    st_rng r;
    st_rng_seed(&r, 11);
    st_dataset ds = {0};
    ds.n = N;
    ds.ndim = 3;
    ds.shape[0] = 1; ds.shape[1] = 6; ds.shape[2] = 6;
    ds.x = malloc(sizeof(float) * N * 36);
    ds.labels = malloc(sizeof(int32_t) * N);
    ds.kind = ST_TARGET_CLASS;
    ds.classes = K;
    fill_uniform(ds.x, N * 36, &r);
    for (int i = 0; i < N; i++) ds.labels[i] = (int32_t)st_rng_below(&r, K);

    /* the reference: one forward over everything */
    st_tensor *x = st_tensor_new(4, (int[]){N, 1, 6, 6});
    memcpy(x->data, ds.x, sizeof(float) * N * 36);
    const st_tensor *out;
    CHECK(st_net_forward(net, x, 0, &out) == ST_OK, "forward: %s", st_errmsg());
    st_tensor *y = st_tensor_new(2, (int[]){N, K}); /* (the net's output is overwritten by the next forward) */
    memcpy(y->data, out->data, sizeof(float) * N * K);
    for (int limit = 0; limit <= 20; limit += 20) {
        int n = limit ? limit : N;
        int64_t counts[K * K] = {0}, wrong = 0, in5 = 0;
        double ce = 0;
        for (int i = 0; i < n; i++) {
            const float *z = y->data + i * K;
            int best = 0, above = 0, l = ds.labels[i];
            double mx = z[0], se = 0;
            for (int c = 1; c < K; c++) {
                if (z[c] > z[best]) best = c;
                if (z[c] > mx) mx = z[c];
            }
            for (int c = 0; c < K; c++) {
                se += exp((double)z[c] - mx);
                if (z[c] > z[l] || (z[c] == z[l] && c < l)) above++;
            }
            ce += mx + log(se) - z[l];
            wrong += best != l;
            in5 += above < 5;
            counts[l * K + best]++;
        }
        cli_metrics m;
        int rc = cli_evaluate(net, &ds, NULL, 0, 0, TASK_CLASSIFY, 8, limit, 1, &m);
        CHECK(rc == 0, "cli_evaluate classify");
        if (rc) continue;
        CHECK(m.n == n, "n %lld, want %d", (long long)m.n, n);
        CHECK(fabs(m.error - (double)wrong / n) < 1e-12, "error %g, want %g", m.error, (double)wrong / n);
        CHECK(fabs(m.top5 - (double)in5 / n) < 1e-12, "top-5 %g, want %g", m.top5, (double)in5 / n);
        CHECK(fabs(m.loss - ce / n) < 1e-6, "loss %.8f, want %.8f", m.loss, ce / n);
        CHECK(isnan(m.miou) && isnan(m.pixel_acc) && isnan(m.pck), "other metrics are NaN");
        CHECK(m.confusion && !memcmp(st_confusion_counts(m.confusion), counts, sizeof counts), "confusion matrix");
        st_confusion_free(m.confusion);
    }
    /* without the confusion matrix: none is handed out; the loss agrees with st_net_loss */
    cli_metrics m;
    CHECK(cli_evaluate(net, &ds, NULL, 0, 0, TASK_CLASSIFY, N, 0, 0, &m) == 0 && !m.confusion, "no confusion unless asked");
    float L;
    st_net_forward(net, x, 0, NULL);
    st_net_loss(net, ST_LOSS_CE, ds.labels, NULL, &L);
    CHECK(fabs(m.loss - L) < 1e-5, "loss %.7f, st_net_loss %.7f", m.loss, L);
    /* fewer than 5 classes: top-5 is NaN */
    st_net *small = parse("x = input(shape=(1, 6, 6))\nf = flatten()\nfc = linear(out_features=4)\n");
    st_net_init(small, ST_INIT_HE, 1);
    for (int i = 0; i < N; i++) ds.labels[i] %= 4;
    ds.classes = 4;
    CHECK(cli_evaluate(small, &ds, NULL, 0, 0, TASK_CLASSIFY, 10, 0, 0, &m) == 0 && isnan(m.top5), "top-5 NaN with 4 classes");
    /* more classes in the data than outputs: an error */
    ds.labels[0] = 6;
    ds.classes = 7;
    fprintf(stderr, "(an error message is expected next)\n");
    CHECK(cli_evaluate(small, &ds, NULL, 0, 0, TASK_CLASSIFY, 10, 0, 0, &m) != 0, "7 classes on a 4-output model fail");
    st_net_free(small);
    st_tensor_free(y);
    st_tensor_free(x);
    st_dataset_free(&ds);
    st_net_free(net);
}

/* ---------------------------------------------------------------- segmentation */
static void test_segment(void) {
    enum { N = 9, K = 4, H = 5, W = 7, P = H * W };
    st_net *net = parse("x = input(shape=(3, 5, 7))\nc = conv2d(x, out_channels=4, kernel_size=3, padding=1)\n");
    st_net_init(net, ST_INIT_HE, 5);
    st_rng r;
    st_rng_seed(&r, 12);
    st_dataset ds = {0};
    ds.n = N;
    ds.ndim = 3;
    ds.shape[0] = 3; ds.shape[1] = H; ds.shape[2] = W;
    ds.x = malloc(sizeof(float) * N * 3 * P);
    ds.labels = malloc(sizeof(int32_t) * N * P);
    ds.kind = ST_TARGET_MASK;
    ds.classes = K;
    fill_uniform(ds.x, (size_t)N * 3 * P, &r);
    for (int i = 0; i < N * P; i++) ds.labels[i] = (int32_t)st_rng_below(&r, K + 1) - 1; /* -1: ignored */
    st_tensor *x = st_tensor_new(4, (int[]){N, 3, H, W});
    memcpy(x->data, ds.x, sizeof(float) * N * 3 * P);
    const st_tensor *y;
    st_net_forward(net, x, 0, &y);
    int64_t tp[K] = {0}, fp[K] = {0}, fn[K] = {0}, right = 0, counted = 0;
    double ce = 0;
    for (int i = 0; i < N; i++)
        for (int p = 0; p < P; p++) {
            int l = ds.labels[i * P + p];
            if (l < 0) continue;
            const float *z = y->data + (size_t)i * K * P + p;
            int best = 0;
            double mx = -INFINITY, se = 0;
            for (int c = 0; c < K; c++) {
                if (z[c * P] > z[best * P]) best = c;
                if (z[c * P] > mx) mx = z[c * P];
            }
            for (int c = 0; c < K; c++) se += exp((double)z[c * P] - mx);
            ce += mx + log(se) - z[l * P];
            counted++;
            if (best == l) { right++; tp[l]++; }
            else { fp[best]++; fn[l]++; }
        }
    double iou_sum = 0;
    int present = 0;
    for (int c = 0; c < K; c++)
        if (tp[c] + fp[c] + fn[c]) { iou_sum += (double)tp[c] / (tp[c] + fp[c] + fn[c]); present++; }
    cli_metrics m;
    int rc = cli_evaluate(net, &ds, NULL, 0, 0, TASK_SEGMENT, 4, 0, 0, &m);
    CHECK(rc == 0, "cli_evaluate segment");
    CHECK(fabs(m.pixel_acc - (double)right / counted) < 1e-12, "pixel accuracy %g, want %g", m.pixel_acc, (double)right / counted);
    CHECK(fabs(m.miou - iou_sum / present) < 1e-12, "mean IoU %g, want %g", m.miou, iou_sum / present);
    CHECK(fabs(m.loss - ce / counted) < 1e-6, "loss %.8f, want %.8f", m.loss, ce / counted);
    CHECK(isnan(m.error) && isnan(m.top5), "classification metrics are NaN");
    /* the same loss as st_net_loss with ignore_index -1 */
    float L;
    st_net_set_ignore_index(net, -1);
    st_net_forward(net, x, 0, NULL);
    st_net_loss(net, ST_LOSS_CE, ds.labels, NULL, &L);
    CHECK(fabs(m.loss - L) < 1e-5, "loss %.7f, st_net_loss %.7f", m.loss, L);

    /* a classifier, a wrong mask size and the wrong task: errors */
    st_net *cls = parse("x = input(shape=(3, 5, 7))\nf = flatten()\nfc = linear(out_features=4)\n");
    st_net *big = parse("x = input(shape=(3, 5, 7))\nc = conv2d(x, out_channels=4, kernel_size=1)\nu = upsample(scale_factor=2)\n");
    st_net_init(cls, ST_INIT_HE, 1);
    st_net_init(big, ST_INIT_HE, 1);
    fprintf(stderr, "(three error messages are expected next)\n");
    CHECK(cli_evaluate(cls, &ds, NULL, 0, 0, TASK_SEGMENT, 4, 0, 0, &m) != 0, "a classifier on masks fails");
    CHECK(cli_evaluate(big, &ds, NULL, 0, 0, TASK_SEGMENT, 4, 0, 0, &m) != 0, "10x14 logits on 5x7 masks fail");
    CHECK(cli_evaluate(net, &ds, NULL, 0, 0, TASK_CLASSIFY, 4, 0, 0, &m) != 0, "classify on masks fails");
    st_net_free(cls);
    st_net_free(big);
    st_tensor_free(x);
    st_dataset_free(&ds);
    st_net_free(net);
}

/* A 1x1 convolution from c to c channels that copies its input: weight = identity, bias 0. */
static st_net *identity_net(int c, int h, int w) {
    char text[256];
    snprintf(text, sizeof text, "x = input(shape=(%d, %d, %d))\nc = conv2d(x, out_channels=%d, kernel_size=1)\n", c, h, w, c);
    st_net *net = parse(text);
    st_net_init(net, ST_INIT_HE, 1);
    st_tensor *wt = st_net_param(net, 0), *b = st_net_param(net, 1);
    memset(wt->data, 0, sizeof(float) * st_tensor_numel(wt));
    memset(b->data, 0, sizeof(float) * st_tensor_numel(b));
    for (int i = 0; i < c; i++) wt->data[i * c + i] = 1;
    return net;
}

static void test_perfect(void) {
    /* segmentation: the input is the one-hot mask, so the argmax is the mask */
    cli_data d;
    CHECK(cli_data_load("shapes:n=20,size=32,seed=4", &d) == 0, "load shapes");
    if (d.train.n) {
        CHECK(d.task == TASK_SEGMENT && d.train.n == 16 && d.test.n == 4 && d.train.classes == 4, "shapes: 16/4, 4 classes");
        CHECK(d.class_names && !strcmp(d.class_names[3], "triangle") && !d.class_names[4], "shapes' class names");
        st_dataset *t = &d.test;
        int P = 32 * 32;
        float *onehot = calloc((size_t)t->n * 4 * P, sizeof(float));
        for (int i = 0; i < t->n; i++)
            for (int p = 0; p < P; p++) onehot[((size_t)i * 4 + t->labels[i * P + p]) * P + p] = 1;
        free(t->x);
        t->x = onehot;
        t->shape[0] = 4;
        st_net *net = identity_net(4, 32, 32);
        cli_metrics m;
        CHECK(cli_evaluate(net, t, NULL, 0, 0, TASK_SEGMENT, 3, 0, 1, &m) == 0, "evaluate perfect masks");
        CHECK(m.pixel_acc == 1 && m.miou == 1, "perfect masks: pixel accuracy %g, mean IoU %g", m.pixel_acc, m.miou);
        CHECK(m.confusion && st_confusion_total(m.confusion) == (int64_t)t->n * P, "every pixel counted");
        st_confusion_free(m.confusion);
        /* one wrong pixel is seen */
        t->x[0 * P + 5] = 0;
        t->x[1 * P + 5] = 0;
        t->x[2 * P + 5] = 0;
        t->x[3 * P + 5] = 0;
        t->x[(t->labels[5] == 1 ? 2 : 1) * P + 5] = 1;
        CHECK(cli_evaluate(net, t, NULL, 0, 0, TASK_SEGMENT, 3, 0, 0, &m) == 0 && m.pixel_acc < 1 && m.miou < 1,
              "one wrong pixel: pixel accuracy %g, mean IoU %g", m.pixel_acc, m.miou);
        st_net_free(net);
    }
    cli_data_free(&d);

    /* keypoints: the input is the true heatmaps */
    CHECK(cli_data_load("shapes-keypoints:n=40,size=64,seed=2", &d) == 0, "load shapes-keypoints");
    if (d.train.n) {
        CHECK(d.task == TASK_KEYPOINTS && d.kp_stride == 4 && d.max_kp == 4 * ST_SHAPE_KP_PER_SHAPE && d.train_kp && d.test_kp,
              "shapes-keypoints: stride %d, %d rows", d.kp_stride, d.max_kp);
        st_dataset *t = &d.train;
        CHECK(t->tndim == 3 && t->tshape[0] == ST_SHAPE_JOINTS && t->tshape[1] == 16, "heatmaps (5, 16, 16)");
        size_t tn = (size_t)t->n * ST_SHAPE_JOINTS * 256;
        float *heat = malloc(sizeof(float) * tn);
        memcpy(heat, t->targets, sizeof(float) * tn);
        free(t->x);
        t->x = heat;
        t->shape[0] = ST_SHAPE_JOINTS; t->shape[1] = 16; t->shape[2] = 16;
        st_net *net = identity_net(ST_SHAPE_JOINTS, 16, 16);
        cli_metrics m;
        CHECK(cli_evaluate(net, t, d.train_kp, d.max_kp, d.kp_stride, TASK_KEYPOINTS, 7, 0, 0, &m) == 0, "evaluate perfect heatmaps");
        CHECK(m.loss == 0 && m.pck_counts.keypoints > 20, "perfect heatmaps: MSE %g over %lld keypoints", m.loss,
              (long long)m.pck_counts.keypoints);
        CHECK(m.pck == 1, "perfect heatmaps: PCK %g", m.pck);
        /* the keypoints of another sample do not fit */
        CHECK(cli_evaluate(net, t, d.train_kp + d.max_kp * 4, d.max_kp, d.kp_stride, TASK_KEYPOINTS, 7, t->n - 1, 0, &m) == 0 &&
              m.pck < 0.5, "shifted keypoints: PCK %g", m.pck);
        st_net_free(net);
    }
    cli_data_free(&d);
}

/* The hourglass's keypoint loss is st_net_loss's sum over the stacks. */
static void test_hourglass_loss(void) {
    cli_data d;
    if (cli_data_load("shapes-keypoints:n=12,size=32", &d)) { CHECK(0, "load"); return; }
    st_net *net;
    CHECK(st_net_open("hourglass:stacks=2,features=8,joints=5,depth=1,channels=1,size=32", &net) == ST_OK, "%s", st_errmsg());
    st_net_init(net, ST_INIT_HE, 7);
    cli_metrics m;
    CHECK(cli_evaluate(net, &d.train, d.train_kp, d.max_kp, d.kp_stride, TASK_KEYPOINTS, 4, 0, 0, &m) == 0, "evaluate hourglass");
    st_tensor *x = st_tensor_new(4, (int[]){d.train.n, 1, 32, 32});
    st_tensor *t = st_tensor_new(4, (int[]){d.train.n, 5, 8, 8});
    memcpy(x->data, d.train.x, sizeof(float) * st_tensor_numel(x));
    memcpy(t->data, d.train.targets, sizeof(float) * st_tensor_numel(t));
    float L;
    st_net_forward(net, x, 0, NULL);
    st_net_loss(net, ST_LOSS_MSE, NULL, t, &L);
    /* by hand: the MSE of each stack's heatmaps (nodes stack0.heat, stack1.heat) summed */
    double sum = 0;
    int heads = 0;
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        const char *name = st_net_node_name(net, i);
        if (strlen(name) < 5 || strcmp(name + strlen(name) - 5, ".heat")) continue;
        const st_tensor *h = st_net_node_output(net, i);
        double se = 0;
        for (size_t k = 0; k < st_tensor_numel(t); k++) se += ((double)h->data[k] - t->data[k]) * (h->data[k] - t->data[k]);
        sum += se / st_tensor_numel(t);
        heads++;
    }
    CHECK(heads == 2, "two heads, found %d", heads);
    CHECK(fabs(m.loss - L) < 1e-5 * fabs(L), "hourglass loss %.7g, st_net_loss %.7g", m.loss, L);
    CHECK(fabs(m.loss - sum) < 1e-5 * sum, "hourglass loss %.7g, the heads' MSE summed by hand %.7g", m.loss, sum);
    CHECK(m.pck >= 0 && m.pck <= 1 && m.pck_counts.keypoints > 0, "PCK %g", m.pck);
    st_tensor_free(x);
    st_tensor_free(t);
    st_net_free(net);
    cli_data_free(&d);
}

/* ---------------------------------------------------------------- a run stays bit-identical */
static void train_steps(st_net *net, st_optim *opt, st_tensor *x, const int32_t *labels, int steps) {
    for (int s = 0; s < steps; s++) {
        float L;
        st_net_zero_grad(net);
        st_net_step(net, x, ST_LOSS_CE, labels, NULL, &L, 0);
        st_optim_step(opt);
    }
}

static void test_bit_identical(void) {
    const char *text = "x = input(shape=(2, 6, 6))\nc = conv2d(x, out_channels=4, kernel_size=3, padding=1, bias=False)\n"
                       "bn = batch_norm2d()\nr = relu()\nd = dropout(p=0.3)\nf = flatten()\nfc = linear(out_features=3)\n";
    st_net *a = parse(text), *b = parse(text);
    st_net_init(a, ST_INIT_HE, 9);
    st_net_init(b, ST_INIT_HE, 9);
    st_optim_conf oc;
    st_optim_defaults(ST_OPT_SGD, &oc);
    oc.lr = 0.05f;
    oc.momentum = 0.9f;
    st_optim *oa, *ob;
    st_optim_new(a, &oc, &oa);
    st_optim_new(b, &oc, &ob);
    st_rng r;
    st_rng_seed(&r, 5);
    st_tensor *x = st_tensor_new(4, (int[]){8, 2, 6, 6});
    fill_uniform(x->data, st_tensor_numel(x), &r);
    int32_t labels[8];
    for (int i = 0; i < 8; i++) labels[i] = (int32_t)st_rng_below(&r, 3);
    st_dataset ds = {0};
    ds.n = 30;
    ds.ndim = 3;
    ds.shape[0] = 2; ds.shape[1] = 6; ds.shape[2] = 6;
    ds.x = malloc(sizeof(float) * 30 * 72);
    ds.labels = calloc(30, sizeof(int32_t));
    ds.kind = ST_TARGET_CLASS;
    ds.classes = 3;
    fill_uniform(ds.x, 30 * 72, &r);
    train_steps(a, oa, x, labels, 6);
    train_steps(b, ob, x, labels, 3);
    cli_metrics m;
    CHECK(cli_evaluate(b, &ds, NULL, 0, 0, TASK_CLASSIFY, 7, 0, 1, &m) == 0, "evaluate between steps");
    st_confusion_free(m.confusion);
    train_steps(b, ob, x, labels, 3);
    st_tensors wa, wb;
    st_tensors_init(&wa);
    st_tensors_init(&wb);
    st_net_get_weights(a, &wa); /* parameters and buffers (batch-norm statistics) */
    st_net_get_weights(b, &wb);
    int same = wa.n == wb.n && wa.n > 0;
    for (int i = 0; same && i < wa.n; i++)
        same = !strcmp(wa.names[i], wb.names[i]) && st_array_numel(&wa.arrays[i]) == st_array_numel(&wb.arrays[i]) &&
               !memcmp(wa.arrays[i].data, wb.arrays[i].data, st_array_numel(&wa.arrays[i]) * st_dtype_size(wa.arrays[i].dtype));
    CHECK(same, "weights and buffers after 6 steps are bit-identical with an evaluation after step 3");
    st_rng ra, rb;
    st_net_get_rng(a, &ra);
    st_net_get_rng(b, &rb);
    CHECK(!memcmp(ra.s, rb.s, sizeof ra.s), "the dropout RNG is untouched by evaluation");
    st_tensors_free(&wa);
    st_tensors_free(&wb);
    st_dataset_free(&ds);
    st_tensor_free(x);
    st_optim_free(oa);
    st_optim_free(ob);
    st_net_free(a);
    st_net_free(b);
}

/* ---------------------------------------------------------------- specs and metadata */
static void test_specs(void) {
    cli_data d;
    CHECK(cli_data_load("mnist1d", &d) == 0, "mnist1d");
    CHECK(d.task == TASK_CLASSIFY && d.train.n == 4000 && d.test.n == 1000 && d.train.ndim == 2 && d.train.shape[0] == 1 &&
          d.train.shape[1] == 40 && d.train.classes == 10 && !d.train_kp, "mnist1d: 4000/1000 of (1, 40), 10 classes");
    CHECK(strstr(d.desc, "4000 train / 1000 test") != NULL, "desc: %s", d.desc);
    cli_data_free(&d);
    /* the same images as shapes-keypoints, split alike */
    cli_data s, k;
    CHECK(cli_data_load("shapes:n=10,size=16,split=0.6", &s) == 0 && cli_data_load("shapes-keypoints:n=10,size=16,split=0.6", &k) == 0,
          "shapes and shapes-keypoints");
    CHECK(s.train.n == 6 && k.train.n == 6 && !memcmp(s.test.x, k.test.x, sizeof(float) * 4 * 256), "same images, same split");
    cli_data_free(&s);
    cli_data_free(&k);
    fprintf(stderr, "(five error messages are expected next)\n");
    CHECK(cli_data_load("no-such-data", &d) != 0, "unknown spec");
    CHECK(cli_data_load("shapes:bogus=1", &d) != 0, "unknown shapes option");
    CHECK(cli_data_load("shapes:n=1", &d) != 0, "n out of range");
    CHECK(cli_data_load("shapes:size", &d) != 0, "option without a value");
    CHECK(cli_data_load("/nonexistent:keypoints", &d) != 0, "DIR:keypoints without a folder");

    /* normalisation in the weights' metadata */
    char path[] = "/tmp/stride-test-eval-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    st_tensors ts;
    st_tensors_init(&ts);
    float w = 1;
    st_tensors_add_f32(&ts, "w", 1, (int[]){1}, &w);
    st_safetensors_save(path, &ts);
    float mean[2] = {0}, std[2] = {0};
    CHECK(cli_weights_normalization(path, mean, std, 2) == 0, "no normalisation metadata: 0");
    st_tensors_set_meta(&ts, CLI_META_MEAN, "0.5,0.25");
    st_tensors_set_meta(&ts, CLI_META_STD, "2, 4");
    st_safetensors_save(path, &ts);
    CHECK(cli_weights_normalization(path, mean, std, 2) == 1 && mean[0] == 0.5f && mean[1] == 0.25f && std[0] == 2 && std[1] == 4,
          "data.mean and data.std read: %g %g / %g %g", mean[0], mean[1], std[0], std[1]);
    fprintf(stderr, "(two error messages are expected next)\n");
    CHECK(cli_weights_normalization(path, mean, std, 3) == -1, "3 channels against 2 numbers: -1");
    st_tensors_set_meta(&ts, CLI_META_STD, "2,0");
    st_safetensors_save(path, &ts);
    CHECK(cli_weights_normalization(path, mean, std, 2) == -1, "std 0: -1");
    st_tensors_free(&ts);
    unlink(path);
}

int main(void) {
    st_set_threads(2);
    test_classify();
    test_segment();
    test_perfect();
    test_hourglass_loss();
    test_bit_identical();
    test_specs();
    return test_done("test_evaluate");
}
