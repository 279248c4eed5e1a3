/* zoo_unet.c - the segmentation networks as model-file text: U-Net (models.md A9) and the
 * deconvolution network of Noh, Hong and Han (A10).
 *
 *   unet       the original: valid 3x3 convolutions with bias and ReLU, 2x2 max pooling,
 *              2x2 up-convolutions, encoder maps centre-cropped and concatenated
 *              (skip first); 1 x 572 x 572 -> 2 x 388 x 388, 31,030,658 parameters.
 *   unet-same  the common re-implementation (milesial/Pytorch-UNet, transposed-conv up path),
 *              with its state_dict names: 3x3 convolutions with padding 1 and no bias, batch
 *              norm, ReLU; concat [skip, upsampled]; 3 -> 2 channels, 31,037,698 parameters.
 *              Output size = input size; the input side must be a multiple of 16.
 *              bilinear=1: milesial's UNet(bilinear=True), 17,263,042 parameters.
 *   deconvnet  VGG-16's convolutions with batch norm, pooling switches, fc6/fc7 as 7x7 and
 *              1x1 convolutions, fc6-deconv, then unpooling with the switches and 3x3
 *              transposed convolutions back to full size; 3 x 224 x 224 -> 21 x 224 x 224,
 *              251,805,653 parameters (Caffe layer names, batch norm as NAME_bn).
 * Options after a colon: channels=C, classes=K, size=S (e.g. "unet-same:channels=1,size=128"),
 * width=W (the first level's channels, 64; the others scale with it: a scaled-down net for
 * small data), and for deconvnet fc=K (fc6's kernel, 7; fc6 and fc7 have 64 W channels), so
 * that "deconvnet:size=64,width=16,fc=2" fits 64x64 images.
 */
#include "zoo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void unet_valid(FILE *f, const char *name, int channels, int classes, int size, int w0) {
    const int width[5] = {w0, 2 * w0, 4 * w0, 8 * w0, 16 * w0};
    fprintf(f, "# %s: U-Net (Ronneberger et al. 2015), valid convolutions, crop and concatenate\n", name);
    fprintf(f, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    const char *prev = "x";
    char buf[64], skip[4][64];
    for (int l = 0; l < 5; l++) {
        const char *stage = l < 4 ? "enc" : "bottom";
        char st[16];
        if (l < 4) snprintf(st, sizeof st, "%s%d", stage, l + 1);
        else snprintf(st, sizeof st, "%s", stage);
        if (l > 0) {
            fprintf(f, "pool%d = max_pool2d(%s, kernel_size=2)\n", l, prev);
            snprintf(buf, sizeof buf, "pool%d", l);
            prev = buf;
        }
        fprintf(f, "%s.conv1 = conv2d(%s, out_channels=%d, kernel_size=3)\n%s.relu1 = relu()\n", st, prev, width[l], st);
        fprintf(f, "%s.conv2 = conv2d(out_channels=%d, kernel_size=3)\n%s.relu2 = relu()\n", st, width[l], st);
        if (l < 4) snprintf(skip[l], sizeof skip[l], "%s.relu2", st);
        snprintf(buf, sizeof buf, "%s.relu2", st);
        prev = buf;
    }
    for (int l = 3; l >= 0; l--) {
        fprintf(f, "up%d = conv_transpose2d(%s, out_channels=%d, kernel_size=2, stride=2)\n", l + 1, prev, width[l]);
        fprintf(f, "crop%d = crop(%s, up%d)\n", l + 1, skip[l], l + 1);
        fprintf(f, "cat%d = concat(crop%d, up%d)\n", l + 1, l + 1, l + 1);
        fprintf(f, "dec%d.conv1 = conv2d(out_channels=%d, kernel_size=3)\ndec%d.relu1 = relu()\n", l + 1, width[l], l + 1);
        fprintf(f, "dec%d.conv2 = conv2d(out_channels=%d, kernel_size=3)\ndec%d.relu2 = relu()\n", l + 1, width[l], l + 1);
        snprintf(buf, sizeof buf, "dec%d.relu2", l + 1);
        prev = buf;
    }
    fprintf(f, "head = conv2d(out_channels=%d, kernel_size=1)\n", classes);
}

/* milesial's DoubleConv: (conv3x3 no bias, BN, ReLU) twice, under PREFIX.double_conv.{0..5};
 * the first conv has `mid` output channels */
static void double_conv_mid(FILE *f, const char *prefix, const char *input, int mid, int out) {
    fprintf(f, "%s.double_conv.0 = conv2d(%s, out_channels=%d, kernel_size=3, padding=1, bias=False)\n", prefix, input, mid);
    fprintf(f, "%s.double_conv.1 = batch_norm2d()\n%s.double_conv.2 = relu()\n", prefix, prefix);
    fprintf(f, "%s.double_conv.3 = conv2d(out_channels=%d, kernel_size=3, padding=1, bias=False)\n", prefix, out);
    fprintf(f, "%s.double_conv.4 = batch_norm2d()\n%s.double_conv.5 = relu()\n", prefix, prefix);
}

static void double_conv(FILE *f, const char *prefix, const char *input, int out) {
    double_conv_mid(f, prefix, input, out, out);
}

/* bilinear = 1: milesial's UNet(bilinear=True): the up path upsamples (bilinear,
 * align_corners=True) instead of a transposed conv, so down4 and each Up's conv end at half
 * the width (factor 2), and each Up's DoubleConv has in_channels / 2 middle channels. */
static void unet_same(FILE *f, const char *name, int channels, int classes, int size, int bilinear, int w0) {
    const int width[5] = {w0, 2 * w0, 4 * w0, 8 * w0, 16 * w0};
    int factor = bilinear ? 2 : 1;
    fprintf(f, "# %s: U-Net with 'same' padding and batch norm (milesial/Pytorch-UNet names%s)\n", name,
            bilinear ? ", bilinear upsampling" : "");
    fprintf(f, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    double_conv(f, "inc", "x", width[0]);
    for (int l = 1; l <= 4; l++) {
        char pre[64], in[64];
        snprintf(in, sizeof in, l == 1 ? "inc.double_conv.5" : "down%d.maxpool_conv.1.double_conv.5", l - 1);
        fprintf(f, "down%d.maxpool_conv.0 = max_pool2d(%s, kernel_size=2)\n", l, in);
        snprintf(pre, sizeof pre, "down%d.maxpool_conv.1", l);
        snprintf(in, sizeof in, "down%d.maxpool_conv.0", l);
        double_conv(f, pre, in, l == 4 ? width[l] / factor : width[l]);
    }
    for (int u = 1; u <= 4; u++) {
        char pre[64], from[64], skip[64], cat[64];
        int in_ch = width[5 - u], out = u == 4 ? width[0] : width[4 - u] / factor;
        snprintf(from, sizeof from, u == 1 ? "down4.maxpool_conv.1.double_conv.5" : "up%d.conv.double_conv.5", u - 1);
        if (u == 4) snprintf(skip, sizeof skip, "inc.double_conv.5");
        else snprintf(skip, sizeof skip, "down%d.maxpool_conv.1.double_conv.5", 4 - u);
        if (bilinear)
            fprintf(f, "up%d.up = upsample(%s, scale_factor=2, mode='bilinear', align_corners=True)\n", u, from);
        else
            fprintf(f, "up%d.up = conv_transpose2d(%s, out_channels=%d, kernel_size=2, stride=2)\n", u, from, in_ch / 2);
        fprintf(f, "up%d.cat = concat(%s, up%d.up)\n", u, skip, u);
        snprintf(pre, sizeof pre, "up%d.conv", u);
        snprintf(cat, sizeof cat, "up%d.cat", u);
        double_conv_mid(f, pre, cat, bilinear ? in_ch / 2 : out, out);
    }
    fprintf(f, "outc.conv = conv2d(out_channels=%d, kernel_size=1)\n", classes);
}

/* conv or deconv NAME (3x3, padding 1, or kernel k), then NAME_bn and NAME_relu */
static void conv_bn_relu(FILE *f, const char *op, const char *name, const char *input, int out, int k, int pad) {
    fprintf(f, "%s = %s(%s, out_channels=%d, kernel_size=%d%s)\n", name, op, input, out, k, pad ? ", padding=1" : "");
    fprintf(f, "%s_bn = batch_norm2d()\n%s_relu = relu()\n", name, name);
}

static void deconvnet(FILE *f, const char *name, int channels, int classes, int size, int w0, int fc) {
    static const int blocks[5] = {2, 2, 3, 3, 3};
    const int width[5] = {w0, 2 * w0, 4 * w0, 8 * w0, 8 * w0};
    fprintf(f, "# %s: DeconvNet (Noh, Hong, Han 2015), batch norm after every conv and deconv\n", name);
    fprintf(f, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    char prev[80] = "x", cur[64];
    for (int b = 0; b < 5; b++) {
        for (int l = 0; l < blocks[b]; l++) {
            snprintf(cur, sizeof cur, "conv%d_%d", b + 1, l + 1);
            conv_bn_relu(f, "conv2d", cur, prev, width[b], 3, 1);
            snprintf(prev, sizeof prev, "%s_relu", cur);
        }
        fprintf(f, "pool%d = max_pool2d(%s, kernel_size=2)\n", b + 1, prev);
        snprintf(prev, sizeof prev, "pool%d", b + 1);
    }
    conv_bn_relu(f, "conv2d", "fc6", prev, 64 * w0, fc, 0);
    conv_bn_relu(f, "conv2d", "fc7", "fc6_relu", 64 * w0, 1, 0);
    conv_bn_relu(f, "conv_transpose2d", "fc6_deconv", "fc7_relu", width[4], fc, 0);
    snprintf(prev, sizeof prev, "fc6_deconv_relu");
    /* the decoder mirrors the encoder; the last deconv of blocks 4..2 halves the channels */
    for (int b = 4; b >= 0; b--) {
        fprintf(f, "unpool%d = max_unpool2d(%s, pool%d)\n", b + 1, prev, b + 1);
        snprintf(prev, sizeof prev, "unpool%d", b + 1);
        for (int l = 0; l < blocks[b]; l++) {
            int out = (l == blocks[b] - 1 && b > 0 && b < 4) ? width[b - 1] : width[b];
            if (b == 1 && l == blocks[b] - 1) out = width[0];
            snprintf(cur, sizeof cur, "deconv%d_%d", b + 1, l + 1);
            conv_bn_relu(f, "conv_transpose2d", cur, prev, out, 3, 1);
            snprintf(prev, sizeof prev, "%s_relu", cur);
        }
    }
    fprintf(f, "seg_score = conv2d(%s, out_channels=%d, kernel_size=1)\n", prev, classes);
}

st_status st_zoo_unet(const char *base, const char *opts, char **text) {
    int kind = !strcmp(base, "unet") ? 0 : !strcmp(base, "unet-same") ? 1 : !strcmp(base, "deconvnet") ? 2 : -1;
    if (kind < 0) return ST_ERR_NOTFOUND;
    static const int def_channels[3] = {1, 3, 3}, def_classes[3] = {2, 2, 21}, def_size[3] = {572, 256, 224};
    int channels = def_channels[kind], classes = def_classes[kind], size = def_size[kind], bilinear = 0, width = 64, fc = 7;
    st_zoo_opt keys[] = {{"channels", &channels, 1, 100000}, {"classes", &classes, 1, 100000}, {"size", &size, 1, 100000},
                         {"width", &width, 1, 4096}, {kind == 1 ? "bilinear" : "fc", kind == 1 ? &bilinear : &fc, kind == 1 ? 0 : 1,
                                                          kind == 1 ? 1 : 64}};
    st_status rc = st_zoo_options(base, opts, keys, kind == 0 ? 4 : 5);
    if (rc) return rc;
    if (kind == 0 && ((size - 60) % 16 || size < 188)) /* 572 = 16*32 + 60 */
        return st_fail(ST_ERR_ARG, "model 'unet': size=%d does not fit its valid convolutions: the input must be "
                       "16 m + 60 with m >= 8 (188, 204, ..., 572)", size);
    if (kind == 1 && size % 16)
        return st_fail(ST_ERR_ARG, "model 'unet-same': size=%d is not a multiple of 16 (four 2x2 poolings must halve "
                       "it exactly)", size);
    if (kind == 1 && bilinear && width % 2)
        return st_fail(ST_ERR_ARG, "model 'unet-same': bilinear=1 needs an even width, not %d", width);
    if (kind == 2 && (size % 32 || size / 32 < fc))
        return st_fail(ST_ERR_ARG, "model 'deconvnet': size=%d must be a multiple of 32 with size/32 >= fc=%d (fc6, a %dx%d "
                       "valid convolution, needs pool5 >= %d)", size, fc, fc, fc, fc);
    char *buf = NULL, name[160];
    size_t len = 0;
    snprintf(name, sizeof name, "%s%s%s", base, *opts ? ":" : "", opts);
    FILE *f = open_memstream(&buf, &len);
    if (!f) return st_fail(ST_ERR_NOMEM, "out of memory writing a model's text");
    if (kind == 2) deconvnet(f, name, channels, classes, size, width, fc);
    else if (kind == 1) unet_same(f, name, channels, classes, size, bilinear, width);
    else unet_valid(f, name, channels, classes, size, width);
    if (fclose(f) != 0) { free(buf); return st_fail(ST_ERR_NOMEM, "out of memory writing a model's text"); }
    *text = buf;
    return ST_OK;
}
