/* zoo_hourglass.c - the stacked hourglass network for human pose (Newell, Yang, Deng 2016;
 * models.md A11, pose-hg-train's hg.lua and Residual.lua) as model-file text.
 *
 *   hourglass  stem conv7x7/2 + BN + ReLU, Residual(64,128), max-pool 2x2, Residual(128,128),
 *              Residual(128,F); then S stacks of Hourglass(D,F), Residual(F,F), conv1x1 + BN +
 *              ReLU and a 1x1 heatmap conv (F -> J); between stacks the features are carried
 *              on as inter + conv1x1(ll) + conv1x1(heat). The output is supervise(heat of every
 *              stack): `run` gives the last stack's heatmaps, the losses sum over the stacks.
 *              Defaults 3 x 256 x 256 -> 16 x 64 x 64, 8 stacks: 25,434,112 parameters
 *              (4 stacks 12,858,304; 2 stacks 6,570,400; 1 stack 3,426,448).
 * Options after a colon: stacks=S (8), features=F (256), joints=J (16), depth=D (4),
 * channels=C (3), size=N (256; a multiple of 2^(D+2): the stem halves twice, each
 * hourglass level once more). Convolutions have biases (Torch's default).
 *
 * Node names (parameters are NODE.weight, NODE.bias as in a PyTorch state_dict):
 *   pre.conv, pre.bn, pre.relu, pre.res1, pre.pool, pre.res2, pre.res3   the stem
 *   R.bn1 R.relu1 R.conv1 R.bn2 R.relu2 R.conv2 R.bn3 R.relu3 R.conv3 [R.skip] R.add
 *                                      a Residual module R (skip: conv1x1 when in != out)
 *   H.up1, H.pool, H.low1, H.low2, H.low3, H.up2 (upsample), H.add    an Hourglass H;
 *                                      H.low2 is the next level's hourglass, or at the
 *                                      bottom a Residual; the stacks' hourglasses are hg0..
 *   stackI.res, stackI.lin.conv, stackI.lin.bn, stackI.lin.relu, stackI.heat
 *   stackI.merge_ll, stackI.merge_heat, stackI.next (the sum, input of stack I+1)
 *   out = supervise(stack0.heat, ...)
 */
#include "zoo.h"

#include <stdio.h>
#include <string.h>

/* Residual(in, out) named P on node `input`: the pre-activation bottleneck. */
static void residual(st_sbuf *b, const char *p, const char *input, int in, int out) {
    st_sb_printf(b, "%s.bn1 = batch_norm2d(%s)\n%s.relu1 = relu()\n", p, input, p);
    st_sb_printf(b, "%s.conv1 = conv2d(out_channels=%d, kernel_size=1)\n", p, out / 2);
    st_sb_printf(b, "%s.bn2 = batch_norm2d()\n%s.relu2 = relu()\n", p, p);
    st_sb_printf(b, "%s.conv2 = conv2d(out_channels=%d, kernel_size=3, padding=1)\n", p, out / 2);
    st_sb_printf(b, "%s.bn3 = batch_norm2d()\n%s.relu3 = relu()\n", p, p);
    st_sb_printf(b, "%s.conv3 = conv2d(out_channels=%d, kernel_size=1)\n", p, out);
    if (in != out) {
        st_sb_printf(b, "%s.skip = conv2d(%s, out_channels=%d, kernel_size=1)\n", p, input, out);
        st_sb_printf(b, "%s.add = add(%s.skip, %s.conv3)\n", p, p, p);
    } else {
        st_sb_printf(b, "%s.add = add(%s, %s.conv3)\n", p, input, p);
    }
}

/* Hourglass(n, f) named H on node `input`; its output node is H.add. */
static void hourglass(st_sbuf *b, const char *h, const char *input, int n, int f) {
    char p[160], q[160], in[200];
    snprintf(p, sizeof p, "%s.up1", h);
    residual(b, p, input, f, f);
    st_sb_printf(b, "%s.pool = max_pool2d(%s, kernel_size=2)\n", h, input);
    snprintf(p, sizeof p, "%s.low1", h);
    snprintf(in, sizeof in, "%s.pool", h);
    residual(b, p, in, f, f);
    snprintf(q, sizeof q, "%s.low2", h);
    snprintf(in, sizeof in, "%s.low1.add", h);
    if (n > 1) hourglass(b, q, in, n - 1, f);
    else residual(b, q, in, f, f);
    snprintf(p, sizeof p, "%s.low3", h);
    snprintf(in, sizeof in, "%s.add", q);
    residual(b, p, in, f, f);
    st_sb_printf(b, "%s.up2 = upsample(%s.low3.add, scale_factor=2, mode='nearest')\n", h, h);
    st_sb_printf(b, "%s.add = add(%s.up1.add, %s.up2)\n", h, h, h);
}

st_status st_zoo_hourglass(const char *base, const char *opts, char **text) {
    *text = NULL;
    if (strcmp(base, "hourglass")) return ST_ERR_NOTFOUND;
    /* (at most 8 stacks: supervise takes up to ST_MAX_INPUTS = 8 heads) */
    int stacks = 8, features = 256, joints = 16, depth = 4, channels = 3, size = 256;
    st_zoo_opt o[] = {{"stacks", &stacks, 1, 8},      {"features", &features, 2, 4096}, {"joints", &joints, 1, 1024},
                      {"depth", &depth, 1, 8},        {"channels", &channels, 1, 64},   {"size", &size, 4, 4096}};
    st_status rc = st_zoo_options(base, opts, o, (int)(sizeof o / sizeof o[0]));
    if (rc) return rc;
    if (features % 2) return st_fail(ST_ERR_ARG, "model 'hourglass': features=%d must be even (the bottlenecks use features/2)", features);
    int mult = 1 << (depth + 2);
    if (size % mult)
        return st_fail(ST_ERR_ARG,
                       "model 'hourglass': size=%d must be a multiple of 2^(depth+2) = %d (the stem halves it twice and each "
                       "of the %d hourglass levels once more)", size, mult, depth);
    st_sbuf b = {0};
    st_sb_printf(&b, "# hourglass: stacked hourglass (Newell, Yang, Deng 2016), %d stack%s, %d features, depth %d, %d joints\n",
                 stacks, stacks > 1 ? "s" : "", features, depth, joints);
    st_sb_printf(&b, "# %d x %d x %d -> %d x %d x %d heatmaps; the default (8 stacks, 256 features) has 25,434,112 parameters\n",
                 channels, size, size, joints, size / 4, size / 4);
    st_sb_printf(&b, "x = input(shape=(%d, %d, %d))\n", channels, size, size);
    st_sb_printf(&b, "pre.conv = conv2d(x, out_channels=64, kernel_size=7, stride=2, padding=3)\n");
    st_sb_printf(&b, "pre.bn = batch_norm2d()\npre.relu = relu()\n");
    residual(&b, "pre.res1", "pre.relu", 64, 128);
    st_sb_printf(&b, "pre.pool = max_pool2d(pre.res1.add, kernel_size=2)\n");
    residual(&b, "pre.res2", "pre.pool", 128, 128);
    residual(&b, "pre.res3", "pre.res2.add", 128, features);
    char inter[64] = "pre.res3.add", h[32], p[64], in[64];
    for (int s = 0; s < stacks; s++) {
        snprintf(h, sizeof h, "hg%d", s);
        hourglass(&b, h, inter, depth, features);
        snprintf(p, sizeof p, "stack%d.res", s);
        snprintf(in, sizeof in, "hg%d.add", s);
        residual(&b, p, in, features, features);
        st_sb_printf(&b, "stack%d.lin.conv = conv2d(stack%d.res.add, out_channels=%d, kernel_size=1)\n", s, s, features);
        st_sb_printf(&b, "stack%d.lin.bn = batch_norm2d()\nstack%d.lin.relu = relu()\n", s, s);
        st_sb_printf(&b, "stack%d.heat = conv2d(out_channels=%d, kernel_size=1)\n", s, joints);
        if (s + 1 < stacks) {
            st_sb_printf(&b, "stack%d.merge_ll = conv2d(stack%d.lin.relu, out_channels=%d, kernel_size=1)\n", s, s, features);
            st_sb_printf(&b, "stack%d.merge_heat = conv2d(stack%d.heat, out_channels=%d, kernel_size=1)\n", s, s, features);
            st_sb_printf(&b, "stack%d.next = add(%s, stack%d.merge_ll, stack%d.merge_heat)\n", s, inter, s, s);
            snprintf(inter, sizeof inter, "stack%d.next", s);
        }
    }
    st_sb_printf(&b, "out = supervise(");
    for (int s = 0; s < stacks; s++) st_sb_printf(&b, "%sstack%d.heat", s ? ", " : "", s);
    st_sb_printf(&b, ")\n");
    return st_sb_take(&b, text);
}
