/* zoo_lenet.c - LeNet-5 as model-file text (models.md A2, A3).
 *
 *   lenet5          the modern form of PyTorch's tutorial network (and d2l's): conv1 5x5 (6),
 *                   pool, conv2 5x5 (16), pool, fc1 120, fc2 84, fc3 classes. Options:
 *                   size=28|32 (28: conv1 pads by 2, so the shapes are the 32x32 ones),
 *                   pad=0|1 (default 1 at 28, 0 at 32), classes=10, channels=1,
 *                   sigmoid=0|1 (d2l's sigmoid instead of ReLU), avgpool=0|1 (average
 *                   instead of max pooling). 61,706 parameters; 44,426 at 28 without padding.
 *   lenet5-classic  the 1998 network (LeCun, Bottou, Bengio, Haffner) on 32x32, 60,000
 *                   trainable parameters: C1, S2 (2x2 average, then a trainable coefficient and
 *                   bias per map: a depthwise 1x1 convolution), C3 with the paper's partial
 *                   connection table (one select + conv per map), S4, C5, F6, all followed by
 *                   LeCun's scaled tanh 1.7159 tanh(2a/3), and the RBF output against fixed
 *                   7x12 digit bitmaps (a buffer, rbf.centers). No options.
 */
#include "zoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static st_status lenet5_modern(const char *base, const char *opts, st_sbuf *b) {
    int size = 28, pad = -1, classes = 10, channels = 1, sigmoid = 0, avgpool = 0;
    st_zoo_opt keys[] = {{"size", &size, 1, 100000}, {"classes", &classes, 1, 100000},
                         {"channels", &channels, 1, 100000}, {"sigmoid", &sigmoid, 0, 1},
                         {"avgpool", &avgpool, 0, 1}, {"pad", &pad, 0, 1}};
    st_status rc = st_zoo_options(base, opts, keys, (int)(sizeof keys / sizeof keys[0]));
    if (rc) return rc;
    if (size != 28 && size != 32)
        return st_fail(ST_ERR_ARG, "model '%s': size=%d is not 28 or 32 (MNIST's digits, or the paper's padded field)",
                       base, size);
    if (pad < 0) pad = size == 28;
    int s1 = size + 4 * pad - 4, s2 = s1 / 2 - 4, flat = 16 * (s2 / 2) * (s2 / 2);
    const char *act = sigmoid ? "sigmoid" : "relu", *pool = avgpool ? "avg_pool2d" : "max_pool2d";
    st_sb_printf(b, "# %s%s%s: LeNet-5, modern variant (%s, %s pooling, linear output) on %dx%d%s\n", base,
                 *opts ? ":" : "", opts, sigmoid ? "sigmoid" : "ReLU", avgpool ? "average" : "max", size, size,
                 pad ? " with padding 2" : "");
    st_sb_printf(b, "# conv1 -> %d x %d x %d, conv2 -> 16 x %d x %d, flatten %d\n", 6, s1, s1, s2, s2, flat);
    st_sb_printf(b, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    st_sb_printf(b, "conv1 = conv2d(x, out_channels=6, kernel_size=5%s)\n", pad ? ", padding=2" : "");
    st_sb_printf(b, "%s1 = %s()\npool1 = %s(kernel_size=2)\n", act, act, pool);
    st_sb_printf(b, "conv2 = conv2d(out_channels=16, kernel_size=5)\n");
    st_sb_printf(b, "%s2 = %s()\npool2 = %s(kernel_size=2)\n", act, act, pool);
    st_sb_printf(b, "flatten = flatten()\n");
    st_sb_printf(b, "fc1 = linear(out_features=120)\n%s3 = %s()\n", act, act);
    st_sb_printf(b, "fc2 = linear(out_features=84)\n%s4 = %s()\n", act, act);
    st_sb_printf(b, "fc3 = linear(out_features=%d)\n", classes);
    return ST_OK;
}

/* Which S2 maps feed C3 map m (models.md A2): 0-5 three contiguous maps (mod 6), 6-11
 * four contiguous, 12-14 four discontinuous, 15 all six. Returns the count. */
static int c3_inputs(int m, int *in) {
    static const int discontinuous[3][4] = {{0, 1, 3, 4}, {1, 2, 4, 5}, {0, 2, 3, 5}};
    if (m < 12) {
        int k = m < 6 ? 3 : 4, first = m < 6 ? m : m - 6;
        for (int i = 0; i < k; i++) in[i] = (first + i) % 6;
        return k;
    }
    if (m < 15) { memcpy(in, discontinuous[m - 12], sizeof discontinuous[0]); return 4; }
    for (int i = 0; i < 6; i++) in[i] = i;
    return 6;
}

static void lenet5_classic(st_sbuf *b) {
    st_sb_printf(b, "# lenet5-classic: LeNet-5 of LeCun, Bottou, Bengio, Haffner (1998), 60,000 trainable parameters.\n"
                    "# scaled_tanh is 1.7159 tanh(2a/3); S2 and S4 average 2x2 blocks, then scale and shift each map\n"
                    "# by its own trainable coefficient and bias (a depthwise 1x1 convolution). C3 map m sees only\n"
                    "# the S2 maps of the paper's connection table (select, then a 5x5 convolution per map).\n"
                    "# The output is the negated squared distance of F6 to fixed 7x12 digit bitmaps (rbf.centers,\n"
                    "# a buffer), so the largest output wins and the outputs are logits for cross-entropy.\n");
    st_sb_printf(b, "x = input(shape=(1, 32, 32))\n");
    st_sb_printf(b, "c1 = conv2d(x, out_channels=6, kernel_size=5)\nc1.act = scaled_tanh()\n");
    st_sb_printf(b, "s2.pool = avg_pool2d(kernel_size=2)\ns2 = conv2d(out_channels=6, kernel_size=1, groups=6)\n"
                    "s2.act = scaled_tanh()\n");
    for (int m = 0; m < 16; m++) {
        int in[6], k = c3_inputs(m, in);
        st_sb_printf(b, "c3.in%d = select(s2.act, channels=(", m);
        for (int i = 0; i < k; i++) st_sb_printf(b, "%s%d", i ? ", " : "", in[i]);
        st_sb_printf(b, "))\nc3.%d = conv2d(out_channels=1, kernel_size=5)\n", m);
    }
    /* concat takes up to 8 inputs: maps 0-7, 8-15, then the two halves */
    for (int h = 0; h < 2; h++) {
        st_sb_printf(b, "c3.maps%d = concat(", h);
        for (int m = 8 * h; m < 8 * h + 8; m++) st_sb_printf(b, "%sc3.%d", m > 8 * h ? ", " : "", m);
        st_sb_printf(b, ")\n");
    }
    st_sb_printf(b, "c3.cat = concat(c3.maps0, c3.maps1)\nc3.act = scaled_tanh()\n");
    st_sb_printf(b, "s4.pool = avg_pool2d(kernel_size=2)\ns4 = conv2d(out_channels=16, kernel_size=1, groups=16)\n"
                    "s4.act = scaled_tanh()\n");
    st_sb_printf(b, "c5 = conv2d(out_channels=120, kernel_size=5)\nc5.act = scaled_tanh()\n");
    st_sb_printf(b, "flatten = flatten()\nf6 = linear(out_features=84)\nf6.act = scaled_tanh()\n");
    st_sb_printf(b, "rbf = rbf(out_features=10)\n");
}

st_status st_zoo_lenet(const char *base, const char *opts, char **text) {
    int classic = !strcmp(base, "lenet5-classic");
    if (!classic && strcmp(base, "lenet5")) return ST_ERR_NOTFOUND;
    st_sbuf b = {0};
    if (classic) {
        if (*opts)
            return st_fail(ST_ERR_ARG, "model 'lenet5-classic' takes no options (it is the fixed 1998 network; "
                           "'%s' given)", opts);
        lenet5_classic(&b);
    } else {
        st_status rc = lenet5_modern(base, opts, &b);
        if (rc) { free(b.s); return rc; }
    }
    return st_sb_take(&b, text);
}
