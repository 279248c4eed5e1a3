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
    double jump;        /* input positions between neighbouring outputs along the shifted axis */
    int spatial;
} layer_err;

/* A tensor seen as (outer, len, inner) around one axis. */
typedef struct { size_t outer, inner; int len; } axis_view;
static axis_view view_of(const st_tensor *t, int dim) {
    axis_view v = {1, 1, t->shape[dim]};
    for (int i = 0; i < dim; i++) v.outer *= (size_t)t->shape[i];
    for (int i = dim + 1; i < t->ndim; i++) v.inner *= (size_t)t->shape[i];
    return v;
}

/* Runs the net on x and on x shifted by k along axis `ax` (0 = H, 1 = the last axis; zero
 * fill), fills one entry per node. */
static int measure(st_net *net, const st_tensor *x, int k, int ax, layer_err *err) {
    int nn = st_net_num_nodes(net);
    axis_view xv = view_of(x, ax == 0 ? x->ndim - 2 : x->ndim - 1);
    st_tensor *xs = st_tensor_new(x->ndim, x->shape);
    if (!xs) return cli_fail();
    for (size_t o = 0; o < xv.outer; o++)
        for (int p = 0; p < xv.len; p++)
            for (size_t i = 0; i < xv.inner; i++) {
                int q = p - k;
                size_t at = (o * xv.len + p) * xv.inner + i;
                xs->data[at] = q >= 0 && q < xv.len ? x->data[(o * xv.len + q) * xv.inner + i] : 0.0f;
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
        size_t n = st_tensor_numel(y);
        double mag = 0;
        for (size_t j = 0; j < n; j++) mag = fmax(mag, fabs(base[i][j]));
        if (mag == 0) mag = 1;
        e->spatial = info.rf_valid && y->ndim >= (ax == 0 ? 4 : 3);
        e->jump = e->spatial ? info.jump[ax] : 0;
        /* invariance: same positions, everywhere */
        for (size_t j = 0; j < n; j++) e->inv = fmax(e->inv, fabs(y->data[j] - base[i][j]) / mag);
        e->equi = -1;
        if (!e->spatial) continue;
        /* equivariance: output position q of the shifted input against q - k/J, away from
         * the borders (a receptive field's width on each side) */
        double dd = k / e->jump;
        if (fabs(dd - floor(dd + 0.5)) > 1e-9) continue;
        int d = (int)floor(dd + 0.5), margin = (int)ceil(info.rf[ax] / e->jump - 1e-9) + abs(d);
        axis_view yv = view_of(y, ax == 0 ? y->ndim - 2 : y->ndim - 1);
        double m = 0;
        for (size_t o = 0; o < yv.outer; o++)
            for (int q = margin; q < yv.len - margin; q++)
                for (size_t j = 0; j < yv.inner; j++)
                    m = fmax(m, fabs(y->data[(o * yv.len + q) * yv.inner + j] -
                                     base[i][(o * yv.len + q - d) * yv.inner + j]) / mag);
        e->equi = yv.len > 2 * margin ? m : -2; /* -2: every position is within a border */
    }
    for (int i = 0; i < nn; i++) free(base[i]);
    free(base);
    st_tensor_free(xs);
    return rc;
}

int cmd_equivariance(int argc, char **argv) {
    cli_opt opts[] = {{"--shift", "K", "shift the input by K positions (default 1)", NULL},
                      {"--axis", "W|H", "the axis to shift along: W, the last (default), or H for 2D inputs", NULL},
                      {"--weights", "W.safetensors", "weights (default: seeded He initialisation)", NULL},
                      {"--seed", "N", "seed of the weights and of the input (1)", NULL},
                      {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("equivariance", "MODEL [--shift K] [--axis W|H] [--weights W]", opts, argc, argv, 2, pos, 1, &npos);
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
    const char *axis = opt_get(opts, "--axis");
    int ax = 1;
    if (axis && (!strcmp(axis, "H") || !strcmp(axis, "h"))) ax = 0;
    else if (axis && strcmp(axis, "W") && strcmp(axis, "w")) {
        st_net_free(net);
        return cli_error("--axis must be W or H, not '%s'", axis);
    }
    if (ax == 0 && nd < 4) { st_net_free(net); return cli_error("--axis H needs a 2D input (C, H, W); this one is (C, L)"); }
    st_tensor *x = st_tensor_new(nd, shape);
    /* random values inside, zeros in a border, so that the shift moves no value off the edge */
    axis_view xv = view_of(x, ax == 0 ? nd - 2 : nd - 1);
    int border = (int)labs(k) + xv.len / 8;
    st_rng r;
    st_rng_seed(&r, (uint64_t)seed + 17);
    for (size_t o = 0; o < xv.outer; o++)
        for (int p = border; p < xv.len - border; p++)
            for (size_t i = 0; i < xv.inner; i++) x->data[(o * xv.len + p) * xv.inner + i] = (float)st_rng_normal(&r);
    layer_err *err = calloc((size_t)st_net_num_nodes(net), sizeof *err);
    if (!err || (rc = measure(net, x, (int)k, ax, err))) goto done;
    printf("%s: input shifted by %ld position(s) along %s; errors relative to the largest output, borders excluded\n",
           pos[0], k, ax == 0 ? "H" : "W");
    printf("%-16s %-20s %6s %14s %14s\n", "node", "op", "stride", "equivariance", "invariance");
    for (int i = 1; i < st_net_num_nodes(net); i++) {
        char s[32], e[32], v[32];
        if (err[i].spatial) snprintf(s, sizeof s, "%g", err[i].jump);
        else snprintf(s, sizeof s, "-");
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
