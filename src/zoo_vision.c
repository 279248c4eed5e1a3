/* zoo_vision.c - torchvision's AlexNet, VGG and ResNet written as model-file text. Node
 * names are torchvision's module paths (features.0, layer1.0.conv1, classifier.6, fc), so
 * the parameter names equal its state_dict keys; nodes without parameters that torchvision
 * has no module for (residual additions, the second ReLU of a block) get names that no
 * parameter uses (layer1.0.add, layer1.0.relu2).
 * alexnet2012 (the paper's grouped net, Caffe's names) and preact-resnetN (fb.resnet.torch's
 * layout, torchvision-style names) are here too, written the same way.
 * Options: classes (1000), size = input height and width (224; alexnet2012: 227), channels
 * (3), and for the ResNets cifar=1 (a 3x3 stride-1 stem without max-pool, for small images). */
#include "zoo.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- options */
typedef struct {
    int classes, size, channels, cifar;
} vopts;

/* ---------------------------------------------------------------- layer writers */
typedef struct {
    st_sbuf b;
    int64_t params;
    int c; /* channels of the current node */
} gen;

static void conv(gen *g, const char *name, const char *in, int out, int k, int s, int p, int bias) {
    st_sb_printf(&g->b, "%s = conv2d(%s%sout_channels=%d, kernel_size=%d", name, in ? in : "", in ? ", " : "", out, k);
    if (s != 1) st_sb_printf(&g->b, ", stride=%d", s);
    if (p) st_sb_printf(&g->b, ", padding=%d", p);
    st_sb_printf(&g->b, "%s)\n", bias ? "" : ", bias=False");
    g->params += (int64_t)g->c * out * k * k + (bias ? out : 0);
    g->c = out;
}

static void bn(gen *g, const char *name) {
    st_sb_printf(&g->b, "%s = batch_norm2d()\n", name);
    g->params += 2 * (int64_t)g->c;
}

static void linear(gen *g, const char *name, int in, int out) {
    st_sb_printf(&g->b, "%s = linear(out_features=%d)\n", name, out);
    g->params += (int64_t)in * out + out;
    g->c = out;
}

static void simple(gen *g, const char *name, const char *op) { st_sb_printf(&g->b, "%s = %s()\n", name, op); }

static void input(gen *g, const vopts *o) {
    st_sb_printf(&g->b, "x = input(shape=(%d, %d, %d))\n", o->channels, o->size, o->size);
    g->c = o->channels;
}

/* ---------------------------------------------------------------- AlexNet */
static void alexnet(gen *g, const vopts *o) {
    input(g, o);
    conv(g, "features.0", "x", 64, 11, 4, 2, 1);
    simple(g, "features.1", "relu");
    st_sb_printf(&g->b, "features.2 = max_pool2d(kernel_size=3, stride=2)\n");
    conv(g, "features.3", NULL, 192, 5, 1, 2, 1);
    simple(g, "features.4", "relu");
    st_sb_printf(&g->b, "features.5 = max_pool2d(kernel_size=3, stride=2)\n");
    conv(g, "features.6", NULL, 384, 3, 1, 1, 1);
    simple(g, "features.7", "relu");
    conv(g, "features.8", NULL, 256, 3, 1, 1, 1);
    simple(g, "features.9", "relu");
    conv(g, "features.10", NULL, 256, 3, 1, 1, 1);
    simple(g, "features.11", "relu");
    st_sb_printf(&g->b, "features.12 = max_pool2d(kernel_size=3, stride=2)\n");
    st_sb_printf(&g->b, "avgpool = adaptive_avg_pool2d(output_size=6)\n");
    simple(g, "flatten", "flatten");
    st_sb_printf(&g->b, "classifier.0 = dropout(p=0.5)\n");
    linear(g, "classifier.1", 256 * 6 * 6, 4096);
    simple(g, "classifier.2", "relu");
    st_sb_printf(&g->b, "classifier.3 = dropout(p=0.5)\n");
    linear(g, "classifier.4", 4096, 4096);
    simple(g, "classifier.5", "relu");
    linear(g, "classifier.6", 4096, o->classes);
}

/* ---------------------------------------------------------------- AlexNet 2012
 * The paper's two-GPU network (models.md A4) with the Caffe reference model's layer names:
 * 227x227 input, conv1 without padding, groups=2 on conv2, conv4 and conv5 (the kernels
 * that saw only their own GPU's half), LRN after the ReLUs of conv1 and conv2, overlapping
 * 3x3 stride-2 pooling, inverted dropout 0.5 in front of fc6 and fc7. There is no adaptive
 * pooling: at another size fc6 takes 256 x h x w inputs (pool5 is 6x6 at 227). */
static int alexnet2012_pool5(int size) { /* pool5's height and width for a size x size input */
    int h = (size - 11) / 4 + 1;  /* conv1 */
    for (int i = 0; i < 3; i++) h = (h - 3) / 2 + 1; /* pool1, pool2 (conv2 keeps it), pool5 */
    return h;
}

/* a stride-1 convolution with bias split into two groups (the two GPUs) */
static void conv2g(gen *g, const char *name, int out, int k, int p) {
    st_sb_printf(&g->b, "%s = conv2d(out_channels=%d, kernel_size=%d, padding=%d, groups=2)\n", name, out, k, p);
    g->params += (int64_t)(g->c / 2) * out * k * k + out;
    g->c = out;
}

static void alexnet2012(gen *g, const vopts *o) {
    int h = alexnet2012_pool5(o->size);
    /* The paper's LRN is b = a / (k + alpha * sum a^2)^beta with k=2, n=5, alpha=1e-4,
     * beta=0.75; PyTorch's LocalResponseNorm (our op) divides alpha by size, so the same
     * function is local_response_norm(size=5, alpha=5 * 1e-4, beta=0.75, k=2) (models.md B6). */
    const char *lrn = "local_response_norm(size=5, alpha=0.0005, beta=0.75, k=2)";
    input(g, o);
    conv(g, "conv1", "x", 96, 11, 4, 0, 1);
    simple(g, "relu1", "relu");
    st_sb_printf(&g->b, "norm1 = %s\n", lrn);
    st_sb_printf(&g->b, "pool1 = max_pool2d(kernel_size=3, stride=2)\n");
    conv2g(g, "conv2", 256, 5, 2);
    simple(g, "relu2", "relu");
    st_sb_printf(&g->b, "norm2 = %s\n", lrn);
    st_sb_printf(&g->b, "pool2 = max_pool2d(kernel_size=3, stride=2)\n");
    conv(g, "conv3", NULL, 384, 3, 1, 1, 1);
    simple(g, "relu3", "relu");
    conv2g(g, "conv4", 384, 3, 1);
    simple(g, "relu4", "relu");
    conv2g(g, "conv5", 256, 3, 1);
    simple(g, "relu5", "relu");
    st_sb_printf(&g->b, "pool5 = max_pool2d(kernel_size=3, stride=2)\n");
    simple(g, "flatten", "flatten");
    st_sb_printf(&g->b, "drop6 = dropout(p=0.5)\n");
    linear(g, "fc6", 256 * h * h, 4096);
    simple(g, "relu6", "relu");
    st_sb_printf(&g->b, "drop7 = dropout(p=0.5)\n");
    linear(g, "fc7", 4096, 4096);
    simple(g, "relu7", "relu");
    linear(g, "fc8", 4096, o->classes);
}

/* ---------------------------------------------------------------- VGG */
/* torchvision's configurations; 0 = max-pool, -1 = end */
static const int vgg_cfg[4][22] = {
    {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0, -1},
    {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0, -1},
};

static void vgg(gen *g, const vopts *o, int cfg, int with_bn) {
    char name[32];
    int idx = 0;
    input(g, o);
    for (const int *v = vgg_cfg[cfg]; *v >= 0; v++) {
        if (*v == 0) {
            st_sb_printf(&g->b, "features.%d = max_pool2d(kernel_size=2, stride=2)\n", idx++);
            continue;
        }
        snprintf(name, sizeof name, "features.%d", idx++);
        conv(g, name, idx == 1 ? "x" : NULL, *v, 3, 1, 1, 1);
        if (with_bn) {
            snprintf(name, sizeof name, "features.%d", idx++);
            bn(g, name);
        }
        snprintf(name, sizeof name, "features.%d", idx++);
        simple(g, name, "relu");
    }
    st_sb_printf(&g->b, "avgpool = adaptive_avg_pool2d(output_size=7)\n");
    simple(g, "flatten", "flatten");
    linear(g, "classifier.0", 512 * 7 * 7, 4096);
    simple(g, "classifier.1", "relu");
    st_sb_printf(&g->b, "classifier.2 = dropout(p=0.5)\n");
    linear(g, "classifier.3", 4096, 4096);
    simple(g, "classifier.4", "relu");
    st_sb_printf(&g->b, "classifier.5 = dropout(p=0.5)\n");
    linear(g, "classifier.6", 4096, o->classes);
}

/* ---------------------------------------------------------------- ResNet */
/* conv1 (7x7 stride 2, or the CIFAR 3x3 stride 1), bn1, relu, and the max-pool unless
 * CIFAR; `last` gets the name of the stem's last node */
static void resnet_stem(gen *g, const vopts *o, char *last, size_t len) {
    input(g, o);
    if (o->cifar) conv(g, "conv1", "x", 64, 3, 1, 1, 0);
    else conv(g, "conv1", "x", 64, 7, 2, 3, 0);
    bn(g, "bn1");
    simple(g, "relu", "relu");
    if (!o->cifar) st_sb_printf(&g->b, "maxpool = max_pool2d(kernel_size=3, stride=2, padding=1)\n");
    snprintf(last, len, "%s", o->cifar ? "relu" : "maxpool");
}

static void resnet(gen *g, const vopts *o, int bottleneck, const int blocks[4]) {
    char p[48], n[96], last[96], shortcut[96];
    int expansion = bottleneck ? 4 : 1;
    resnet_stem(g, o, last, sizeof last);
    for (int stage = 0; stage < 4; stage++) {
        int width = 64 << stage;
        for (int blk = 0; blk < blocks[stage]; blk++) {
            int stride = (stage > 0 && blk == 0) ? 2 : 1;
            int cin = g->c, cout = width * expansion;
            snprintf(p, sizeof p, "layer%d.%d", stage + 1, blk);
            if (bottleneck) {
                snprintf(n, sizeof n, "%s.conv1", p); conv(g, n, last, width, 1, 1, 0, 0);
                snprintf(n, sizeof n, "%s.bn1", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu1", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv2", p); conv(g, n, NULL, width, 3, stride, 1, 0);
                snprintf(n, sizeof n, "%s.bn2", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu2", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv3", p); conv(g, n, NULL, cout, 1, 1, 0, 0);
                snprintf(n, sizeof n, "%s.bn3", p); bn(g, n);
            } else {
                snprintf(n, sizeof n, "%s.conv1", p); conv(g, n, last, width, 3, stride, 1, 0);
                snprintf(n, sizeof n, "%s.bn1", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu1", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv2", p); conv(g, n, NULL, width, 3, 1, 1, 0);
                snprintf(n, sizeof n, "%s.bn2", p); bn(g, n);
            }
            if (stride != 1 || cin != cout) {
                g->c = cin;
                snprintf(n, sizeof n, "%s.downsample.0", p); conv(g, n, last, cout, 1, stride, 0, 0);
                snprintf(n, sizeof n, "%s.downsample.1", p); bn(g, n);
                snprintf(shortcut, sizeof shortcut, "%s.downsample.1", p);
            } else {
                snprintf(shortcut, sizeof shortcut, "%s", last);
            }
            st_sb_printf(&g->b, "%s.add = add(%s.bn%d, %s)\n", p, p, bottleneck ? 3 : 2, shortcut);
            snprintf(last, sizeof last, "%s.relu%d", p, bottleneck ? 3 : 2);
            simple(g, last, "relu");
        }
    }
    st_sb_printf(&g->b, "avgpool = adaptive_avg_pool2d(output_size=1)\n");
    simple(g, "flatten", "flatten");
    linear(g, "fc", g->c, o->classes);
}

/* ---------------------------------------------------------------- pre-activation ResNet
 * He et al. 2016, "Identity Mappings in Deep Residual Networks" (models.md A8), laid out as
 * fb.resnet.torch's preresnet.lua: the stem as ResNet's (conv1, bn1, relu, maxpool); in a
 * block, bnK and reluK normalise the input of convK, the shortcut is an identity or a 1x1
 * projection without batch norm (downsample.0), and nothing follows the addition; the net
 * ends with bn_final and relu_final before the average pool and fc.
 * - layer1.0 has no bn1/relu1: its input is the stem's BN-ReLU (then max-pool) already;
 * - the first block of layers 2-4 applies bn1/relu1 to the block input and feeds the
 *   result to both its conv1 and its projection;
 * - the other blocks pre-activate the residual branch only; the shortcut is x itself.
 * With 3, 24, 36, 3 bottlenecks this gives 64,666,152 parameters: models.md's inferred
 * 64,666,280 also puts a batch norm (64 channels, 128 parameters) on layer1.0's input. */
static void preact_resnet(gen *g, const vopts *o, int bottleneck, const int blocks[4]) {
    char p[48], n[96], last[96], in[96], shortcut[96];
    int expansion = bottleneck ? 4 : 1;
    resnet_stem(g, o, last, sizeof last);
    for (int stage = 0; stage < 4; stage++) {
        int width = 64 << stage;
        for (int blk = 0; blk < blocks[stage]; blk++) {
            int stride = (stage > 0 && blk == 0) ? 2 : 1;
            int cin = g->c, cout = width * expansion;
            int first = stage == 0 && blk == 0;
            snprintf(p, sizeof p, "layer%d.%d", stage + 1, blk);
            snprintf(in, sizeof in, "%s", last); /* the residual branch's input */
            snprintf(shortcut, sizeof shortcut, "%s", last);
            if (!first) {
                st_sb_printf(&g->b, "%s.bn1 = batch_norm2d(%s)\n", p, last);
                g->params += 2 * (int64_t)cin;
                snprintf(in, sizeof in, "%s.relu1", p);
                simple(g, in, "relu");
                if (blk == 0) snprintf(shortcut, sizeof shortcut, "%s", in); /* shared pre-activation */
            }
            if (bottleneck) {
                snprintf(n, sizeof n, "%s.conv1", p); conv(g, n, in, width, 1, 1, 0, 0);
                snprintf(n, sizeof n, "%s.bn2", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu2", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv2", p); conv(g, n, NULL, width, 3, stride, 1, 0);
                snprintf(n, sizeof n, "%s.bn3", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu3", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv3", p); conv(g, n, NULL, cout, 1, 1, 0, 0);
            } else {
                snprintf(n, sizeof n, "%s.conv1", p); conv(g, n, in, width, 3, stride, 1, 0);
                snprintf(n, sizeof n, "%s.bn2", p); bn(g, n);
                snprintf(n, sizeof n, "%s.relu2", p); simple(g, n, "relu");
                snprintf(n, sizeof n, "%s.conv2", p); conv(g, n, NULL, width, 3, 1, 1, 0);
            }
            if (stride != 1 || cin != cout) {
                g->c = cin;
                snprintf(n, sizeof n, "%s.downsample.0", p); conv(g, n, shortcut, cout, 1, stride, 0, 0);
                snprintf(shortcut, sizeof shortcut, "%s", n);
            }
            snprintf(last, sizeof last, "%s.add", p);
            st_sb_printf(&g->b, "%s = add(%s.conv%d, %s)\n", last, p, bottleneck ? 3 : 2, shortcut);
        }
    }
    st_sb_printf(&g->b, "bn_final = batch_norm2d(%s)\n", last);
    g->params += 2 * (int64_t)g->c;
    simple(g, "relu_final", "relu");
    st_sb_printf(&g->b, "avgpool = adaptive_avg_pool2d(output_size=1)\n");
    simple(g, "flatten", "flatten");
    linear(g, "fc", g->c, o->classes);
}

/* ---------------------------------------------------------------- the table */
typedef enum { ALEXNET, VGG, RESNET, ALEXNET2012, PREACT } family;
typedef struct {
    const char *name;
    family fam;
    int arg;       /* VGG: configuration 0..3; ResNet, PREACT: 1 = bottleneck */
    int bn;        /* VGG with batch norm */
    int blocks[4]; /* ResNet */
} vmodel;

static const vmodel models[] = {
    {"alexnet", ALEXNET, 0, 0, {0}},
    {"vgg11", VGG, 0, 0, {0}},    {"vgg13", VGG, 1, 0, {0}},
    {"vgg16", VGG, 2, 0, {0}},    {"vgg19", VGG, 3, 0, {0}},
    {"vgg11_bn", VGG, 0, 1, {0}}, {"vgg13_bn", VGG, 1, 1, {0}},
    {"vgg16_bn", VGG, 2, 1, {0}}, {"vgg19_bn", VGG, 3, 1, {0}},
    {"resnet18", RESNET, 0, 0, {2, 2, 2, 2}},
    {"resnet34", RESNET, 0, 0, {3, 4, 6, 3}},
    {"resnet50", RESNET, 1, 0, {3, 4, 6, 3}},
    {"resnet101", RESNET, 1, 0, {3, 4, 23, 3}},
    {"resnet152", RESNET, 1, 0, {3, 8, 36, 3}},
    {"alexnet2012", ALEXNET2012, 0, 0, {0}},
    {"preact-resnet18", PREACT, 0, 0, {2, 2, 2, 2}},
    {"preact-resnet34", PREACT, 0, 0, {3, 4, 6, 3}},
    {"preact-resnet50", PREACT, 1, 0, {3, 4, 6, 3}},
    {"preact-resnet101", PREACT, 1, 0, {3, 4, 23, 3}},
    {"preact-resnet152", PREACT, 1, 0, {3, 8, 36, 3}},
    {"preact-resnet200", PREACT, 1, 0, {3, 24, 36, 3}},
};

static const char *const names[] = {
    "alexnet",  "vgg11",    "vgg13",    "vgg16",    "vgg19",     "vgg11_bn",  "vgg13_bn",
    "vgg16_bn", "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "alexnet2012", "preact-resnet18", "preact-resnet34", "preact-resnet50", "preact-resnet101",
    "preact-resnet152", "preact-resnet200", NULL};

const char *const *st_zoo_vision_names(void) { return names; }

st_status st_zoo_vision(const char *base, const char *opts, char **text) {
    const vmodel *m = NULL;
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        if (!strcmp(models[i].name, base)) m = &models[i];
    if (!m) return ST_ERR_NOTFOUND;
    vopts o = {1000, m->fam == ALEXNET2012 ? 227 : 224, 3, 0};
    st_zoo_opt keys[] = {{"classes", &o.classes, 1, 1000000}, {"size", &o.size, 1, 100000},
                         {"channels", &o.channels, 1, 100000}, {"cifar", &o.cifar, 0, 1}};
    st_status rc = st_zoo_options(base, opts, keys, m->fam == RESNET || m->fam == PREACT ? 4 : 3);
    if (rc) return rc;
    /* the smallest input whose feature maps do not vanish before the classifier (alexnet2012:
     * pool5 needs 3x3 inputs, so 7 at pool2, 7 after pool1, 15 after conv1: 4 * 14 + 11) */
    int min = m->fam == ALEXNET ? 63 : m->fam == VGG ? 32 : m->fam == ALEXNET2012 ? 67 : 1;
    if (o.size < min) return st_fail(ST_ERR_ARG, "model '%s': size=%d is too small (at least %d)", base, o.size, min);

    gen g = {{NULL, 0, 0, 0}, 0, 0};
    switch (m->fam) {
    case ALEXNET: alexnet(&g, &o); break;
    case VGG: vgg(&g, &o, m->arg, m->bn); break;
    case RESNET: resnet(&g, &o, m->arg, m->blocks); break;
    case ALEXNET2012: alexnet2012(&g, &o); break;
    case PREACT: preact_resnet(&g, &o, m->arg, m->blocks); break;
    }
    /* the header: the model, its options and its parameter count */
    st_sbuf h = {NULL, 0, 0, 0};
    char cnt[32];
    const char *form = m->fam == ALEXNET2012 ? "the 2012 paper's grouped net, Caffe names"
                       : m->fam == PREACT    ? "fb.resnet.torch's preresnet, torchvision-style names"
                                             : "torchvision form";
    st_sb_printf(&h, "# %s%s%s (%s): %s parameters\n", base, *opts ? ":" : "", opts, form,
                 st_commas(g.params, cnt, sizeof cnt));
    st_sb_printf(&h, "%s", g.b.s ? g.b.s : "");
    if (g.b.failed) h.failed = 1;
    free(g.b.s);
    return st_sb_take(&h, text);
}
