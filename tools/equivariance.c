/* equivariance.c - `stride equivariance MODEL` (UDL section 6.1, 10.2): shift the input by k
 * positions along its last axis and measure, for every node with a spatial output,
 *   equivariance error  max |f(shift_k x) - shift_{k/J} f(x)|  (J = the node's total stride)
 *   invariance error    max |f(shift_k x) - f(x)|
 * relative to max |f(x)|, over positions whose receptive field stays inside the signal
 * (borders excluded). The input is random in its middle and zero near both ends, so a
 * shift moves the signal without cutting it. A stride-1 convolution stack is exactly
 * equivariant; with total stride J only for shifts that are multiples of J; a global
 * pooling makes the output invariant. */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double equi, inv;   /* relative errors; equi -1: k is not a multiple of the stride, -2: no interior */
    int jump, spatial;
} layer_err;

/* Runs the net on x and on x shifted right by k (zero fill), fills one entry per node. */
static int measure(st_net *net, const st_tensor *x, int k, layer_err *err) {
    int nn = st_net_num_nodes(net), W = x->shape[x->ndim - 1];
    size_t outer = st_tensor_numel(x) / (size_t)W;
    st_tensor *xs = st_tensor_new(x->ndim, x->shape);
    if (!xs) return cli_fail();
    for (size_t o = 0; o < outer; o++)
        for (int p = 0; p < W; p++) {
            int q = p - k;
            xs->data[o * W + p] = q >= 0 && q < W ? x->data[o * W + q] : 0.0f;
        }
    /* keep every node's output for x, then run the shifted input */
    float **base = calloc((size_t)nn, sizeof *base);
    if (!base || st_net_forward(net, x, 0, NULL)) { free(base); st_tensor_free(xs); return cli_fail(); }
    for (int i = 0; i < nn; i++) {
        const st_tensor *y = st_net_node_output(net, i);
        base[i] = malloc(sizeof(float) * st_tensor_numel(y));
        if (base[i]) memcpy(base[i], y->data, sizeof(float) * st_tensor_numel(y));
    }
    int rc = 0;
    if (st_net_forward(net, xs, 0, NULL)) rc = cli_fail();
    for (int i = 0; !rc && i < nn; i++) {
        const st_tensor *y = st_net_node_output(net, i);
        st_node_info info;
        st_net_node_info(net, i, &info);
        layer_err *e = &err[i];
        memset(e, 0, sizeof *e);
        if (!base[i]) { rc = cli_error("out of memory"); break; }
        int w = y->shape[y->ndim - 1];
        size_t rows = st_tensor_numel(y) / (size_t)w;
        double mag = 0;
        for (size_t j = 0; j < st_tensor_numel(y); j++) mag = fmax(mag, fabs(base[i][j]));
        if (mag == 0) mag = 1;
        e->spatial = info.rf_valid && y->ndim >= 3;
        e->jump = info.rf_valid ? info.jump[1] : 0;
        /* invariance: same positions, everywhere */
        for (size_t j = 0; j < st_tensor_numel(y); j++) e->inv = fmax(e->inv, fabs(y->data[j] - base[i][j]) / mag);
        e->equi = -1;
        if (!e->spatial || k % e->jump) continue;
        /* equivariance: output position q of the shifted input against q - k/J, away from
         * the borders (a receptive field's width on each side) */
        int d = k / e->jump, margin = (info.rf[1] + e->jump - 1) / e->jump + abs(d);
        double m = 0;
        for (size_t r = 0; r < rows; r++)
            for (int q = margin; q < w - margin; q++)
                m = fmax(m, fabs(y->data[r * w + q] - base[i][r * w + q - d]) / mag);
        e->equi = w > 2 * margin ? m : -2; /* -2: every position is within a border */
    }
    for (int i = 0; i < nn; i++) free(base[i]);
    free(base);
    st_tensor_free(xs);
    return rc;
}

int cmd_equivariance(int argc, char **argv) {
    cli_opt opts[] = {{"--shift", "K", "shift the input by K positions along its last axis (default 1)", NULL},
                      {"--weights", "W.safetensors", "weights (default: seeded He initialisation)", NULL},
                      {"--seed", "N", "seed of the weights and of the input (1)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("equivariance", "MODEL [--shift K] [--weights W]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 1) return cli_error("equivariance needs a MODEL (a built-in name or a model file)");
    long k, seed;
    if (opt_int(opts, "--shift", 1, -4096, 4096, &k) || opt_int(opts, "--seed", 1, 0, 0x7fffffffL, &seed)) return 2;
    st_net *net;
    if (st_net_open(pos[0], &net)) return cli_fail();
    const char *w = opt_get(opts, "--weights");
    if (w ? st_net_load_weights(net, w) : st_net_init(net, ST_INIT_HE, (uint64_t)seed)) { st_net_free(net); return cli_fail(); }
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    if (nd < 3) { st_net_free(net); return cli_error("equivariance needs an input with positions, (C, L) or (C, H, W)"); }
    st_tensor *x = st_tensor_new(nd, shape);
    int W = shape[nd - 1], border = (int)labs(k) + W / 8;
    st_rng r;
    st_rng_seed(&r, (uint64_t)seed + 17);
    size_t outer = st_tensor_numel(x) / (size_t)W;
    for (size_t o = 0; o < outer; o++)
        for (int p = border; p < W - border; p++) x->data[o * W + p] = (float)st_rng_normal(&r);
    layer_err *err = calloc((size_t)st_net_num_nodes(net), sizeof *err);
    if (!err || (rc = measure(net, x, (int)k, err))) goto done;
    printf("%s: input shifted by %ld position(s); errors relative to the largest output, borders excluded\n", pos[0], k);
    printf("%-16s %-20s %6s %14s %14s\n", "node", "op", "stride", "equivariance", "invariance");
    for (int i = 1; i < st_net_num_nodes(net); i++) {
        char s[32], e[32], v[32];
        snprintf(s, sizeof s, err[i].spatial ? "%d" : "-", err[i].jump);
        if (err[i].equi >= 0) snprintf(e, sizeof e, "%.3g", err[i].equi);
        else snprintf(e, sizeof e, !err[i].spatial ? "-" : err[i].equi < -1.5 ? "(all border)" : "(k %% stride)");
        snprintf(v, sizeof v, "%.3g", err[i].inv);
        printf("%-16s %-20s %6s %14s %14s\n", st_net_node_name(net, i), st_net_node_op(net, i), s, e, v);
    }
done:
    free(err);
    st_tensor_free(x);
    st_net_free(net);
    return rc;
}
