/* zoo_unet.c - U-Net as model-file text (models.md A9).
 *
 *   unet       the original: valid 3x3 convolutions with bias and ReLU, 2x2 max pooling,
 *              2x2 up-convolutions, encoder maps centre-cropped and concatenated
 *              (skip first); 1 x 572 x 572 -> 2 x 388 x 388, 31,030,658 parameters.
 *   unet-same  the common re-implementation (milesial/Pytorch-UNet, transposed-conv up path),
 *              with its state_dict names: 3x3 convolutions with padding 1 and no bias, batch
 *              norm, ReLU; concat [skip, upsampled]; 3 -> 2 channels, 31,037,698 parameters.
 *              Output size = input size; the input side must be a multiple of 16.
 * Options after a colon: channels=C, classes=K, size=S (e.g. "unet-same:channels=1,size=128").
 */
#include "zoo_unet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses "name[:k=v,...]" into the option values; returns 0 if the name or an option is unknown. */
static int parse_opts(const char *name, const char *base, int *channels, int *classes, int *size) {
    size_t n = strlen(base);
    if (strncmp(name, base, n) || (name[n] && name[n] != ':')) return 0;
    const char *p = name[n] ? name + n + 1 : name + n;
    while (*p) {
        char key[16];
        int v, used;
        if (sscanf(p, "%15[a-z]=%d%n", key, &v, &used) != 2 || v <= 0) return 0;
        if (!strcmp(key, "channels")) *channels = v;
        else if (!strcmp(key, "classes")) *classes = v;
        else if (!strcmp(key, "size")) *size = v;
        else return 0;
        p += used;
        if (*p == ',') p++;
        else if (*p) return 0;
    }
    return 1;
}

static void unet_valid(FILE *f, const char *name, int channels, int classes, int size) {
    static const int width[5] = {64, 128, 256, 512, 1024};
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

/* milesial's DoubleConv: (conv3x3 no bias, BN, ReLU) twice, under PREFIX.double_conv.{0..5} */
static void double_conv(FILE *f, const char *prefix, const char *input, int out) {
    fprintf(f, "%s.double_conv.0 = conv2d(%s, out_channels=%d, kernel_size=3, padding=1, bias=False)\n", prefix, input, out);
    fprintf(f, "%s.double_conv.1 = batch_norm2d()\n%s.double_conv.2 = relu()\n", prefix, prefix);
    fprintf(f, "%s.double_conv.3 = conv2d(out_channels=%d, kernel_size=3, padding=1, bias=False)\n", prefix, out);
    fprintf(f, "%s.double_conv.4 = batch_norm2d()\n%s.double_conv.5 = relu()\n", prefix, prefix);
}

static void unet_same(FILE *f, const char *name, int channels, int classes, int size) {
    static const int width[5] = {64, 128, 256, 512, 1024};
    fprintf(f, "# %s: U-Net with 'same' padding and batch norm (milesial/Pytorch-UNet names)\n", name);
    fprintf(f, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    double_conv(f, "inc", "x", width[0]);
    for (int l = 1; l <= 4; l++) {
        char pre[64], in[64];
        snprintf(in, sizeof in, l == 1 ? "inc.double_conv.5" : "down%d.maxpool_conv.1.double_conv.5", l - 1);
        fprintf(f, "down%d.maxpool_conv.0 = max_pool2d(%s, kernel_size=2)\n", l, in);
        snprintf(pre, sizeof pre, "down%d.maxpool_conv.1", l);
        snprintf(in, sizeof in, "down%d.maxpool_conv.0", l);
        double_conv(f, pre, in, width[l]);
    }
    for (int u = 1; u <= 4; u++) {
        char pre[64], from[64], skip[64], cat[64];
        snprintf(from, sizeof from, u == 1 ? "down4.maxpool_conv.1.double_conv.5" : "up%d.conv.double_conv.5", u - 1);
        if (u == 4) snprintf(skip, sizeof skip, "inc.double_conv.5");
        else snprintf(skip, sizeof skip, "down%d.maxpool_conv.1.double_conv.5", 4 - u);
        fprintf(f, "up%d.up = conv_transpose2d(%s, out_channels=%d, kernel_size=2, stride=2)\n", u, from, width[4 - u]);
        fprintf(f, "up%d.cat = concat(%s, up%d.up)\n", u, skip, u);
        snprintf(pre, sizeof pre, "up%d.conv", u);
        snprintf(cat, sizeof cat, "up%d.cat", u);
        double_conv(f, pre, cat, width[4 - u]);
    }
    fprintf(f, "outc.conv = conv2d(out_channels=%d, kernel_size=1)\n", classes);
}

char *st_zoo_unet_text(const char *name) {
    int channels = 1, classes = 2, size = 572, same = 0;
    if (parse_opts(name, "unet-same", &channels, &classes, &size)) {
        same = 1;
        channels = 3;
        size = 256;
        parse_opts(name, "unet-same", &channels, &classes, &size);
        if (size % 16) return NULL; /* the pooled sizes must halve exactly */
    } else if (!parse_opts(name, "unet", &channels, &classes, &size)) {
        return NULL;
    } else if ((size - 60) % 16 || size < 188) {
        return NULL; /* valid inputs are 16 m + 60, m >= 8 (572 = 16*32 + 60) */
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    if (same) unet_same(f, name, channels, classes, size);
    else unet_valid(f, name, channels, classes, size);
    if (fclose(f) != 0) { free(buf); return NULL; }
    return buf;
}
