/* layers.c - the op table: how each node kind reads its model-file arguments, checks
 * and infers shapes, and calls its forward/backward kernels (conv.c, dense.c).
 * Adding an op = one configure/print/forward/backward group here and one table row. */
#include "net.h"
#include "kernels.h"
#include "lenet_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *shape_of(const st_node *n, char *buf, size_t len) { return st_shape_str(n->ndim, n->shape, buf, len); }

/* Copies the first input's receptive field (for shape-preserving nodes). */
static void rf_copy(st_net *net, st_node *n) {
    st_node *in = st_net_input_node(net, n, 0);
    memcpy(n->rf, in->rf, sizeof n->rf);
    memcpy(n->jump, in->jump, sizeof n->jump);
    n->rf_valid = in->rf_valid;
}

/* A node that combines several inputs sees the union of their receptive fields. */
static void rf_merge(st_net *net, st_node *n) {
    rf_copy(net, n);
    for (int i = 1; i < n->ninputs; i++) {
        st_node *o = st_net_input_node(net, n, i);
        for (int ax = 0; ax < 2; ax++) {
            if (o->rf[ax] > n->rf[ax]) n->rf[ax] = o->rf[ax];
            if (o->jump[ax] > n->jump[ax]) n->jump[ax] = o->jump[ax];
        }
        n->rf_valid = n->rf_valid && o->rf_valid;
    }
}

static void copy_shape(st_node *n, const st_node *from) {
    n->ndim = from->ndim;
    memcpy(n->shape, from->shape, sizeof n->shape);
}

/* ---------------------------------------------------------------- input */
static st_status input_configure(st_net *net, st_node *n, st_args *a) {
    (void)net;
    int i = -1;
    for (int k = 0; k < a->nkw; k++)
        if (!strcmp(a->key[k], "shape")) i = k;
    if (i < 0) return st_fail(ST_ERR_PARSE, "input needs shape=(C, L) or shape=(C, H, W) (without the batch dimension)");
    a->used[i] = 1;
    st_val *v = &a->val[i];
    if (v->kind == ST_V_INT) { v->kind = ST_V_TUPLE; v->n = 1; v->tup[0] = (int)v->num; }
    if (v->kind != ST_V_TUPLE || v->n < 1 || v->n > ST_MAX_DIMS - 1)
        return st_fail(ST_ERR_PARSE, "input shape must be a tuple of 1 to %d positive integers", ST_MAX_DIMS - 1);
    n->ndim = v->n;
    for (int k = 0; k < v->n; k++) {
        if (v->tup[k] <= 0 || v->tup[k] > (1 << 24)) return st_fail(ST_ERR_PARSE, "input shape entries must be positive (got %d)", v->tup[k]);
        n->shape[k] = v->tup[k];
    }
    n->rf[0] = n->rf[1] = 1;
    n->jump[0] = n->jump[1] = 1;
    n->rf_valid = n->ndim >= 2;
    return ST_OK;
}

static void input_print(const st_node *n, char *buf, size_t len) {
    char s[128];
    st_shape_str(n->ndim, n->shape, s, sizeof s);
    if (n->ndim == 1) snprintf(s, sizeof s, "(%d,)", n->shape[0]);
    snprintf(buf, len, "shape=%s", s);
}

static void nop_forward(const st_exec *e, st_node *n) { (void)e; (void)n; }
static void nop_backward(const st_exec *e, st_node *n) { (void)e; (void)n; }

/* ---------------------------------------------------------------- conv1d / conv2d */
/* The arguments convolutions and transposed convolutions share, with PyTorch's
 * defaults; index 0 of k/s/d is the height (1 for 1D). */
static st_status read_conv_args(st_args *a, const st_node *in, const char *op, int dims, int *in_channels,
                                int *out_channels, int k[2], int s[2], int d[2], int *groups, int *bias) {
    char sb[128];
    if (in->ndim != dims + 1)
        return st_fail(ST_ERR_SHAPE, "%s expects input of shape %s per sample, but '%s' gives %s", op,
                       dims == 1 ? "(C, L)" : "(C, H, W)", in->name, shape_of(in, sb, sizeof sb));
    *in_channels = in->shape[0];
    *out_channels = -1;
    *groups = *bias = 1;
    k[0] = 1;
    k[1] = -1;
    s[0] = s[1] = d[0] = d[1] = 1;
    int o = dims == 1 ? 1 : 0, given_in = -1;
    st_status rc;
    if ((rc = st_arg_int(a, "in_channels", &given_in))) return rc;
    if (given_in != -1 && given_in != *in_channels)
        return st_fail(ST_ERR_SHAPE, "in_channels=%d but '%s' has %d channels", given_in, in->name, *in_channels);
    if ((rc = st_arg_int(a, "out_channels", out_channels))) return rc;
    if (*out_channels == -1) return st_fail(ST_ERR_PARSE, "%s needs out_channels", op);
    if ((rc = st_arg_ints(a, "kernel_size", dims, k + o))) return rc;
    if (k[1] == -1) return st_fail(ST_ERR_PARSE, "%s needs kernel_size", op);
    if ((rc = st_arg_ints(a, "stride", dims, s + o)) || (rc = st_arg_ints(a, "dilation", dims, d + o)) ||
        (rc = st_arg_int(a, "groups", groups)) || (rc = st_arg_bool(a, "bias", bias)))
        return rc;
    return ST_OK;
}

static st_status conv_configure(st_net *net, st_node *n, st_args *a, int dims) {
    st_conv_conf *c = &n->u.conv;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128];
    memset(c, 0, sizeof *c);
    c->dims = dims;
    st_status rc = read_conv_args(a, in, dims == 1 ? "conv1d" : "conv2d", dims, &c->in_channels, &c->out_channels,
                                  c->k, c->s, c->d, &c->groups, &c->bias);
    if (rc) return rc;
    c->pad_mode = ST_PAD_EXPLICIT;
    if (st_arg_has(a, "padding")) {
        char mode[32] = "";
        int *p = dims == 1 ? &c->pad[1] : c->pad;
        for (int i = 0; i < a->nkw; i++)
            if (!strcmp(a->key[i], "padding") && a->val[i].kind == ST_V_STR) {
                if ((rc = st_arg_str(a, "padding", mode, sizeof mode))) return rc;
            }
        if (!strcmp(mode, "same")) c->pad_mode = ST_PAD_SAME;
        else if (!strcmp(mode, "valid")) c->pad_mode = ST_PAD_VALID;
        else if (mode[0]) return st_fail(ST_ERR_PARSE, "padding='%s' is not one of 'same', 'valid' or an integer", mode);
        else if ((rc = st_arg_ints(a, "padding", dims, p))) return rc;
    }
    int ih = dims == 1 ? 1 : in->shape[1], iw = dims == 1 ? in->shape[1] : in->shape[2];
    rc = st_conv_geom_init(&c->geom, c->in_channels, c->out_channels, c->groups, c->k, c->s, c->d,
                           c->pad_mode, c->pad, ih, iw);
    if (rc) {
        if (rc == ST_ERR_SHAPE) return st_fail_prefix(rc, "input '%s' %s: ", in->name, shape_of(in, sb, sizeof sb));
        return rc;
    }
    n->ndim = dims + 1;
    n->shape[0] = c->out_channels;
    if (dims == 1) n->shape[1] = c->geom.ow;
    else { n->shape[1] = c->geom.oh; n->shape[2] = c->geom.ow; }
    int cpg = c->in_channels / c->groups;
    int fan_in = cpg * c->k[0] * c->k[1];
    int wshape[4] = {c->out_channels, cpg, c->k[0], c->k[1]};
    if (dims == 1) wshape[2] = c->k[1];
    if (st_net_add_param(net, n, "weight", dims + 2, wshape, fan_in, 0) < 0) return ST_ERR_NOMEM;
    if (c->bias && st_net_add_param(net, n, "bias", 1, &c->out_channels, fan_in, 1) < 0) return ST_ERR_NOMEM;
    /* receptive field: rf += (k - 1) * d * jump; jump *= s */
    rf_copy(net, n);
    for (int ax = 0; ax < 2; ax++) {
        n->rf[ax] += (c->k[ax] - 1) * c->d[ax] * n->jump[ax];
        n->jump[ax] *= c->s[ax];
    }
    return ST_OK;
}

static st_status conv1d_configure(st_net *net, st_node *n, st_args *a) { return conv_configure(net, n, a, 1); }
static st_status conv2d_configure(st_net *net, st_node *n, st_args *a) { return conv_configure(net, n, a, 2); }

static void print_ints(char *buf, size_t len, const char *key, const int *v, int dims) {
    size_t at = strlen(buf);
    if (dims == 1 || v[0] == v[1]) snprintf(buf + at, len - at, ", %s=%d", key, v[dims == 1 ? 1 : 0]);
    else snprintf(buf + at, len - at, ", %s=(%d, %d)", key, v[0], v[1]);
}

static void conv_print(const st_node *n, char *buf, size_t len) {
    const st_conv_conf *c = &n->u.conv;
    int one[2] = {1, 1}, zero[2] = {0, 0};
    snprintf(buf, len, "out_channels=%d", c->out_channels);
    print_ints(buf, len, "kernel_size", c->k, c->dims);
    if (memcmp(c->s, one, sizeof one)) print_ints(buf, len, "stride", c->s, c->dims);
    size_t at = strlen(buf);
    if (c->pad_mode == ST_PAD_SAME) snprintf(buf + at, len - at, ", padding='same'");
    else if (c->pad_mode == ST_PAD_VALID) snprintf(buf + at, len - at, ", padding='valid'");
    else if (memcmp(c->pad, zero, sizeof zero)) print_ints(buf, len, "padding", c->pad, c->dims);
    if (memcmp(c->d, one, sizeof one)) print_ints(buf, len, "dilation", c->d, c->dims);
    at = strlen(buf);
    if (c->groups != 1) snprintf(buf + at, len - at, ", groups=%d", c->groups);
    at = strlen(buf);
    if (!c->bias) snprintf(buf + at, len - at, ", bias=False");
}

static void fuse_epilogue(const st_exec *e, const st_node *n, int outer, int C, size_t S);
static st_epilogue epilogue_of(const st_exec *e, const st_node *n);

/* st_net_step's conv + ReLU fusion is on for this pass (st_train_fuse_plan) */
static int step_fusion(const st_exec *e) { return e->train && !e->run && e->net->step_fused; }

/* ---- st_net_step's direct convolutions (n->train_direct): operands in columns.
 * Such a convolution keeps, per shard, in n->cols: its input in the direct kernel's
 * columns (forward writes them, or the previous convolution does, and backward reads
 * them), with a ReLU after it its output in columns (the output and the ReLU's are
 * written in samples only when something reads them there: st_train_outputs), and when
 * the ReLU's only reader is a direct convolution too (linked_next) dL/dout in columns,
 * which that convolution's backward writes. */

/* the convolution that reads n's ReLU in columns in this pass, or NULL */
static st_node *linked_next(const st_net *net, const st_node *n) {
    st_node *b = n->train_next ? &net->nodes[n->train_next] : NULL;
    return b && n->train_direct && b->train_direct ? b : NULL;
}

/* the convolution that writes n's input columns in this pass, or NULL */
static st_node *linked_prev(const st_net *net, const st_node *n) {
    st_node *a = n->train_prev ? &net->nodes[n->train_prev] : NULL;
    return a && linked_next(net, a) == n ? a : NULL;
}

/* n's columns in a shard of `batch` samples: input, output and dL/dout (NULL: none, with
 * base NULL) at their offsets from base; returns the floats they take */
static size_t step_parts(const st_net *net, const st_node *n, int batch, float *base, float **x, float **y,
                         float **g) {
    const st_conv_geom *geom = &n->u.conv.geom;
    size_t nx = n->train_direct ? st_direct_cols_size(geom, batch) : 0;
    size_t ny = nx && n->train_relu ? st_direct_out_cols_size(geom, batch) : 0;
    size_t ng = ny && linked_next(net, n) ? ny : 0;
    *x = base && nx ? base : NULL;
    *y = base && ny ? base + nx : NULL;
    *g = base && ng ? base + nx + ny : NULL;
    return nx + ny + ng;
}

size_t st_node_step_cols(const st_net *net, const st_node *n, int batch) {
    float *x, *y, *g;
    return step_parts(net, n, batch, NULL, &x, &y, &g);
}

/* n's columns in shard e */
static void step_cols(const st_exec *e, const st_node *n, float **x, float **y, float **g) {
    step_parts(e->net, n, e->batch, n->cols + (size_t)e->shard * n->cols_stride, x, y, g);
}

static void conv_train_forward(const st_exec *e, st_node *n) {
    const st_conv_conf *c = &n->u.conv;
    st_node *next = linked_next(e->net, n);
    float *xc, *yc, *gc;
    step_cols(e, n, &xc, &yc, &gc);
    st_direct_train t = {0};
    t.in = linked_prev(e->net, n) ? NULL : X(e, IN(e, n, 0));
    t.xcols = xc;
    t.ycols = yc;
    if (!n->train_relu) {
        t.out = X(e, n);
    } else if (next) {
        float *next_y, *next_g;
        t.next = &next->u.conv.geom;
        step_cols(e, next, &t.next_cols, &next_y, &next_g);
    } else {
        t.relu = X(e, &e->net->nodes[n->train_relu]);
    }
    st_direct_train_forward(&t, W(e, n, 0), c->bias ? W(e, n, 1) : NULL, e->batch, &c->geom, e->work);
}

static void conv_train_backward(const st_exec *e, st_node *n) {
    const st_conv_conf *c = &n->u.conv;
    st_node *in = IN(e, n, 0), *prev = linked_prev(e->net, n);
    float *yc, *gc;
    st_direct_train t = {0};
    step_cols(e, n, &t.xcols, &yc, &gc);
    if (gc) {
        t.gcols = gc;
    } else if (n->train_relu) {
        st_node *r = &e->net->nodes[n->train_relu];
        t.dout = G(e, r);
        t.mask = X(e, r);
    } else {
        t.dout = G(e, n);
    }
    if (prev) {
        float *prev_x, *prev_y;
        step_cols(e, prev, &prev_x, &prev_y, &t.prev_gcols);
    } else {
        t.din = in->needs_grad ? G(e, in) : NULL;
    }
    t.din_add = !n->bwd_fresh;
    t.dw = GW(e, n, 0);
    t.db = c->bias ? GW(e, n, 1) : NULL;
    st_direct_train_backward(&t, W(e, n, 0), e->batch, &c->geom, e->work);
}

void st_train_outputs(const st_exec *e, st_node *n) {
    if (!n->train_direct || !n->train_relu) return;
    float *xc, *yc, *gc;
    step_cols(e, n, &xc, &yc, &gc);
    st_direct_train_outputs(X(e, n), linked_next(e->net, n) ? X(e, &e->net->nodes[n->train_relu]) : NULL, yc,
                            e->batch, &n->u.conv.geom);
}

static void conv_forward(const st_exec *e, st_node *n) {
    const st_conv_conf *c = &n->u.conv;
    st_node *in = IN(e, n, 0);
    int fused = e->run && n->fuse.active; /* the bias goes into the fused epilogue */
    const float *b = c->bias && !fused ? W(e, n, 1) : NULL;
    if (n->train_direct && step_fusion(e)) {
        conv_train_forward(e, n);
        return;
    }
    st_epilogue epi = fused ? epilogue_of(e, n) : (st_epilogue){0};
    st_conv_forward_prep(X(e, n), X(e, in), W(e, n, 0), b, e->batch, &c->geom, e->work, PREP(e, n),
                         fused ? &epi : NULL);
    if (n->train_relu && step_fusion(e)) /* this output and the ReLU's after it */
        st_act_forward(ST_ACT_RELU, 0, X(e, &e->net->nodes[n->train_relu]), X(e, n), n->numel * e->batch);
}

/* With n->bwd_fresh the input's gradient is written, not added to (net.c did not zero it);
 * fused with its ReLU r, dL/dout is r's gradient where r's output is > 0, else 0. */
static void conv_backward(const st_exec *e, st_node *n) {
    const st_conv_conf *c = &n->u.conv;
    st_node *in = IN(e, n, 0);
    if (n->train_direct && step_fusion(e)) {
        conv_train_backward(e, n);
        return;
    }
    float *din = in->needs_grad ? G(e, in) : NULL, *db = c->bias ? GW(e, n, 1) : NULL;
    const float *dout = G(e, n);
    size_t outs = n->numel * e->batch;
    if (n->train_relu && step_fusion(e)) { /* the ReLU's backward, into this node's own gradient */
        st_node *r = &e->net->nodes[n->train_relu];
        memset(G(e, n), 0, sizeof(float) * outs);
        st_act_backward(ST_ACT_RELU, 0, G(e, n), G(e, r), X(e, r), X(e, r), outs);
    }
    if (din && n->bwd_fresh) memset(din, 0, sizeof(float) * in->numel * e->batch);
    st_conv_backward(din, GW(e, n, 0), db, dout, X(e, in), W(e, n, 0), e->batch, &c->geom, e->work);
}

static size_t conv_work(const st_node *n, int batch) { return st_conv_work_size(&n->u.conv.geom, batch); }

static int64_t conv_macs(const st_node *n) {
    const st_conv_conf *c = &n->u.conv;
    return (int64_t)c->out_channels * c->geom.oh * c->geom.ow * (c->in_channels / c->groups) * c->k[0] * c->k[1];
}

/* ---------------------------------------------------------------- conv_transpose1d / 2d
 * The adjoint of a convolution (conv_transpose.c): upsampling by the stride. */
static st_status convt_configure(st_net *net, st_node *n, st_args *a, int dims) {
    st_convt_conf *c = &n->u.convt;
    st_node *in = st_net_input_node(net, n, 0);
    memset(c, 0, sizeof *c);
    c->dims = dims;
    st_status rc = read_conv_args(a, in, dims == 1 ? "conv_transpose1d" : "conv_transpose2d", dims, &c->in_channels,
                                  &c->out_channels, c->k, c->s, c->d, &c->groups, &c->bias);
    int o = dims == 1 ? 1 : 0;
    if (rc || (rc = st_arg_ints(a, "padding", dims, c->pad + o)) ||
        (rc = st_arg_ints(a, "output_padding", dims, c->out_pad + o)))
        return rc;
    int ih = dims == 1 ? 1 : in->shape[1], iw = dims == 1 ? in->shape[1] : in->shape[2];
    /* output_size=(H, W), as in PyTorch's forward(x, output_size): picks the output_padding
     * that gives that size, which must lie in [min, min + stride - 1] */
    if (st_arg_has(a, "output_size")) {
        int want[2] = {1, 1}, insz[2] = {ih, iw};
        if (st_arg_has(a, "output_padding"))
            return st_fail(ST_ERR_PARSE, "give output_size or output_padding, not both");
        if ((rc = st_arg_ints(a, "output_size", dims, want + o))) return rc;
        for (int ax = o; ax < 2; ax++) {
            int lo = (insz[ax] - 1) * c->s[ax] - 2 * c->pad[ax] + c->d[ax] * (c->k[ax] - 1) + 1, hi = lo + c->s[ax] - 1;
            if (want[ax] < lo || want[ax] > hi)
                return st_fail(ST_ERR_SHAPE, "requested an output size of %d, but valid sizes range from %d to %d (for an input of %d)",
                               want[ax], lo, hi, insz[ax]);
            c->out_pad[ax] = want[ax] - lo;
        }
    }
    rc = st_convt_geom_init(&c->geom, c->in_channels, c->out_channels, c->groups, c->k, c->s, c->d, c->pad,
                            c->out_pad, ih, iw);
    if (rc) return rc;
    n->ndim = dims + 1;
    n->shape[0] = c->out_channels;
    if (dims == 1) n->shape[1] = c->geom.ow;
    else { n->shape[1] = c->geom.oh; n->shape[2] = c->geom.ow; }
    /* PyTorch's fan_in for a transposed weight (C_in, C_out/groups, k) is (C_out/groups)*k */
    int opg = c->out_channels / c->groups;
    int fan_in = opg * c->k[0] * c->k[1];
    int wshape[4] = {c->in_channels, opg, c->k[0], c->k[1]};
    if (dims == 1) wshape[2] = c->k[1];
    if (st_net_add_param(net, n, "weight", dims + 2, wshape, fan_in, 0) < 0) return ST_ERR_NOMEM;
    if (c->bias && st_net_add_param(net, n, "bias", 1, &c->out_channels, fan_in, 1) < 0) return ST_ERR_NOMEM;
    /* Receptive field: an output sees up to ceil(((k-1)d+1)/s) neighbouring inputs, and
     * neighbouring outputs are jump/s input positions apart (a fraction when s > jump). */
    rf_copy(net, n);
    for (int ax = 0; ax < 2; ax++) {
        int span = ((c->k[ax] - 1) * c->d[ax] + 1 + c->s[ax] - 1) / c->s[ax];
        n->rf[ax] += (span - 1) * n->jump[ax];
        n->jump[ax] /= c->s[ax];
    }
    return ST_OK;
}

static st_status convt1d_configure(st_net *net, st_node *n, st_args *a) { return convt_configure(net, n, a, 1); }
static st_status convt2d_configure(st_net *net, st_node *n, st_args *a) { return convt_configure(net, n, a, 2); }

static void convt_print(const st_node *n, char *buf, size_t len) {
    const st_convt_conf *c = &n->u.convt;
    int one[2] = {1, 1}, zero[2] = {0, 0};
    snprintf(buf, len, "out_channels=%d", c->out_channels);
    print_ints(buf, len, "kernel_size", c->k, c->dims);
    if (memcmp(c->s, one, sizeof one)) print_ints(buf, len, "stride", c->s, c->dims);
    if (memcmp(c->pad, zero, sizeof zero)) print_ints(buf, len, "padding", c->pad, c->dims);
    if (memcmp(c->out_pad, zero, sizeof zero)) print_ints(buf, len, "output_padding", c->out_pad, c->dims);
    if (memcmp(c->d, one, sizeof one)) print_ints(buf, len, "dilation", c->d, c->dims);
    size_t at = strlen(buf);
    if (c->groups != 1) snprintf(buf + at, len - at, ", groups=%d", c->groups);
    at = strlen(buf);
    if (!c->bias) snprintf(buf + at, len - at, ", bias=False");
}

static void convt_forward(const st_exec *e, st_node *n) {
    const st_convt_conf *c = &n->u.convt;
    int fused = e->run && n->fuse.active;
    st_convt_forward(X(e, n), X(e, IN(e, n, 0)), W(e, n, 0), c->bias && !fused ? W(e, n, 1) : NULL, e->batch, &c->geom,
                     e->work);
    if (fused) fuse_epilogue(e, n, e->batch, c->out_channels, (size_t)c->geom.oh * c->geom.ow);
}

static void convt_backward(const st_exec *e, st_node *n) {
    const st_convt_conf *c = &n->u.convt;
    st_node *in = IN(e, n, 0);
    st_convt_backward(in->needs_grad ? G(e, in) : NULL, GW(e, n, 0), c->bias ? GW(e, n, 1) : NULL, G(e, n), X(e, in),
                      W(e, n, 0), e->batch, &c->geom, e->work);
}

static size_t convt_work(const st_node *n, int batch) { return st_convt_work_size(&n->u.convt.geom, batch); }

static int64_t convt_macs(const st_node *n) {
    const st_convt_conf *c = &n->u.convt;
    return (int64_t)c->in_channels * c->geom.ih * c->geom.iw * (c->out_channels / c->groups) * c->k[0] * c->k[1];
}

/* ---------------------------------------------------------------- pooling
 * max_pool, avg_pool and adaptive_avg_pool, 1D and 2D (kernels in pool.c). Channels and
 * batch are folded into planes: pooling never mixes channels. */
static st_status pool_configure(st_net *net, st_node *n, st_args *a, int dims, st_pool_kind kind) {
    st_pool_conf *c = &n->u.pool;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128];
    static const char *names[] = {"max_pool", "avg_pool", "adaptive_avg_pool"};
    if (in->ndim != dims + 1)
        return st_fail(ST_ERR_SHAPE, "%s%dd expects input of shape %s per sample, but '%s' gives %s", names[kind], dims,
                       dims == 1 ? "(C, L)" : "(C, H, W)", in->name, shape_of(in, sb, sizeof sb));
    memset(c, 0, sizeof *c);
    c->dims = dims;
    c->kind = kind;
    c->k[0] = c->k[1] = c->d[0] = c->d[1] = c->s[0] = 1;
    c->count_include_pad = 1;
    int o = dims == 1 ? 1 : 0;
    int ih = dims == 1 ? 1 : in->shape[1], iw = dims == 1 ? in->shape[1] : in->shape[2];
    st_status rc;
    if (kind == ST_POOL_ADAPTIVE_AVG) {
        c->out[0] = 1;
        c->out[1] = -1;
        if ((rc = st_arg_ints(a, "output_size", dims, c->out + o))) return rc;
        if (c->out[1] == -1) return st_fail(ST_ERR_PARSE, "adaptive_avg_pool%dd needs output_size", dims);
        if ((rc = st_pool_geom_adaptive(&c->geom, ih, iw, c->out[0], c->out[1]))) return rc;
    } else {
        c->k[1] = -1;
        c->s[o] = c->s[1] = 0; /* 0: stride = kernel_size */
        if ((rc = st_arg_ints(a, "kernel_size", dims, c->k + o))) return rc;
        if (c->k[1] == -1) return st_fail(ST_ERR_PARSE, "%s%dd needs kernel_size", names[kind], dims);
        if ((rc = st_arg_ints(a, "stride", dims, c->s + o)) || (rc = st_arg_ints(a, "padding", dims, c->p + o)) ||
            (rc = st_arg_bool(a, "ceil_mode", &c->ceil_mode)))
            return rc;
        if (kind == ST_POOL_MAX && (rc = st_arg_ints(a, "dilation", dims, c->d + o))) return rc;
        if (kind == ST_POOL_AVG && ((rc = st_arg_bool(a, "count_include_pad", &c->count_include_pad)) ||
                                    (rc = st_arg_int(a, "divisor_override", &c->divisor_override))))
            return rc;
        if (dims == 1) c->s[0] = 1;
        if ((rc = st_pool_geom_init(&c->geom, ih, iw, c->k, c->s, c->p, c->d, c->ceil_mode, c->count_include_pad,
                                    c->divisor_override)))
            return rc;
        for (int ax = 0; ax < 2; ax++) if (c->s[ax] == 0) c->s[ax] = c->k[ax];
    }
    n->ndim = dims + 1;
    n->shape[0] = in->shape[0];
    if (dims == 1) n->shape[1] = c->geom.ow;
    else { n->shape[1] = c->geom.oh; n->shape[2] = c->geom.ow; }
    /* receptive field as for a convolution; an adaptive pool's windows
     * [floor(i in/out), ceil((i+1) in/out)) step by in/out and the widest one counts */
    rf_copy(net, n);
    int in_sz[2] = {ih, iw};
    for (int ax = 0; ax < 2; ax++) {
        int k = c->k[ax], d = c->d[ax];
        double s = c->s[ax];
        if (kind == ST_POOL_ADAPTIVE_AVG) {
            int out = ax == 0 ? c->geom.oh : c->geom.ow;
            k = 0;
            for (int i = 0; i < out; i++) {
                int a = (int)((long)i * in_sz[ax] / out), b = (int)(((long)(i + 1) * in_sz[ax] + out - 1) / out);
                if (b - a > k) k = b - a;
            }
            s = (double)in_sz[ax] / out;
            d = 1;
        }
        n->rf[ax] += (k - 1) * d * n->jump[ax];
        n->jump[ax] *= s;
    }
    return ST_OK;
}

static st_status maxpool1d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 1, ST_POOL_MAX); }
static st_status maxpool2d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 2, ST_POOL_MAX); }
static st_status avgpool1d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 1, ST_POOL_AVG); }
static st_status avgpool2d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 2, ST_POOL_AVG); }
static st_status adaptive1d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 1, ST_POOL_ADAPTIVE_AVG); }
static st_status adaptive2d_configure(st_net *net, st_node *n, st_args *a) { return pool_configure(net, n, a, 2, ST_POOL_ADAPTIVE_AVG); }

static void pool_print(const st_node *n, char *buf, size_t len) {
    const st_pool_conf *c = &n->u.pool;
    int one[2] = {1, 1}, zero[2] = {0, 0};
    buf[0] = 0;
    if (c->kind == ST_POOL_ADAPTIVE_AVG) {
        print_ints(buf, len, "output_size", c->out, c->dims);
    } else {
        print_ints(buf, len, "kernel_size", c->k, c->dims);
        if (memcmp(c->s, c->k, sizeof c->s) && !(c->dims == 1 && c->s[1] == c->k[1]))
            print_ints(buf, len, "stride", c->s, c->dims);
        if (memcmp(c->p, zero, sizeof zero)) print_ints(buf, len, "padding", c->p, c->dims);
        if (memcmp(c->d, one, sizeof one)) print_ints(buf, len, "dilation", c->d, c->dims);
        size_t at = strlen(buf);
        if (c->ceil_mode) snprintf(buf + at, len - at, ", ceil_mode=True");
        at = strlen(buf);
        if (c->kind == ST_POOL_AVG && !c->count_include_pad) snprintf(buf + at, len - at, ", count_include_pad=False");
        at = strlen(buf);
        if (c->divisor_override) snprintf(buf + at, len - at, ", divisor_override=%d", c->divisor_override);
    }
    if (buf[0] == ',') memmove(buf, buf + 2, strlen(buf + 2) + 1); /* print_ints starts with ", " */
}

static void pool_forward(const st_exec *e, st_node *n) {
    const st_pool_conf *c = &n->u.pool;
    int planes = e->batch * n->shape[0];
    const float *x = X(e, IN(e, n, 0));
    /* (in st_net_run only an unpooling node reads the indices) */
    if (c->kind == ST_POOL_MAX) st_maxpool_forward(X(e, n), e->run && !n->idx_read ? NULL : IDX(e, n), x, planes, &c->geom);
    else if (c->kind == ST_POOL_AVG) st_avgpool_forward(X(e, n), x, planes, &c->geom);
    else st_adaptive_avgpool_forward(X(e, n), x, planes, &c->geom);
}

static void pool_backward(const st_exec *e, st_node *n) {
    const st_pool_conf *c = &n->u.pool;
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad) return;
    int planes = e->batch * n->shape[0];
    if (c->kind == ST_POOL_MAX) st_maxpool_backward(G(e, in), G(e, n), IDX(e, n), planes, &c->geom);
    else if (c->kind == ST_POOL_AVG) st_avgpool_backward(G(e, in), G(e, n), planes, &c->geom);
    else st_adaptive_avgpool_backward(G(e, in), G(e, n), planes, &c->geom);
}

/* ---------------------------------------------------------------- upsample
 * nn.Upsample: by `size` or `scale_factor`, mode 'nearest', 'linear' (1D) or 'bilinear'
 * (2D), align_corners for the interpolating modes (resample.c). */
static st_status upsample_configure(st_net *net, st_node *n, st_args *a) {
    st_upsample_conf *c = &n->u.up;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128], mode[32] = "nearest";
    if (in->ndim != 2 && in->ndim != 3)
        return st_fail(ST_ERR_SHAPE, "upsample expects (C, L) or (C, H, W) per sample, but '%s' gives %s", in->name,
                       shape_of(in, sb, sizeof sb));
    memset(c, 0, sizeof *c);
    c->dims = in->ndim - 1;
    int o = c->dims == 1 ? 1 : 0, ih = c->dims == 1 ? 1 : in->shape[1], iw = in->shape[in->ndim - 1];
    int insz[2] = {ih, iw};
    st_status rc;
    if ((rc = st_arg_str(a, "mode", mode, sizeof mode)) || (rc = st_arg_bool(a, "align_corners", &c->align_corners)))
        return rc;
    c->nearest = !strcmp(mode, "nearest");
    if (!c->nearest && strcmp(mode, c->dims == 1 ? "linear" : "bilinear"))
        return st_fail(ST_ERR_ARG, "upsample: mode '%s' is not 'nearest' or '%s' for %dD input", mode,
                       c->dims == 1 ? "linear" : "bilinear", c->dims);
    if (c->nearest && st_arg_has(a, "align_corners"))
        return st_fail(ST_ERR_ARG, "upsample: align_corners only goes with the interpolating modes");
    c->out[0] = ih;
    c->out[1] = -1;
    int has_size = st_arg_has(a, "size"), has_scale = st_arg_has(a, "scale_factor");
    if (has_size == has_scale) return st_fail(ST_ERR_ARG, "upsample needs either size or scale_factor");
    if (has_size && (rc = st_arg_ints(a, "size", c->dims, c->out + o))) return rc;
    if (has_scale) {
        float f = 0;
        if ((rc = st_arg_float(a, "scale_factor", &f))) return rc;
        if (!(f > 0)) return st_fail(ST_ERR_ARG, "upsample: scale_factor must be positive");
        for (int ax = o; ax < 2; ax++) {
            c->scale_factor[ax] = f;
            if ((rc = st_upsample_out_size(insz[ax], f, &c->out[ax]))) return rc;
        }
    }
    for (int ax = 0; ax < 2; ax++) {
        if (c->out[ax] <= 0) return st_fail(ST_ERR_ARG, "upsample: the output size must be positive");
        c->scale[ax] = st_upsample_scale(insz[ax], c->out[ax], c->scale_factor[ax], c->nearest ? 0 : c->align_corners);
    }
    n->ndim = in->ndim;
    n->shape[0] = in->shape[0];
    if (c->dims == 1) n->shape[1] = c->out[1];
    else { n->shape[1] = c->out[0]; n->shape[2] = c->out[1]; }
    /* upsampling divides the jump by the size ratio; interpolation reads one more input */
    rf_copy(net, n);
    for (int ax = o; ax < 2; ax++) {
        if (!c->nearest) n->rf[ax] += n->jump[ax];
        n->jump[ax] *= (double)insz[ax] / c->out[ax];
    }
    return ST_OK;
}

static void upsample_print(const st_node *n, char *buf, size_t len) {
    const st_upsample_conf *c = &n->u.up;
    buf[0] = 0;
    int o = c->dims == 1 ? 1 : 0;
    if (c->scale_factor[o] > 0) snprintf(buf, len, "scale_factor=%g", c->scale_factor[o]);
    else { print_ints(buf, len, "size", c->out, c->dims); memmove(buf, buf + 2, strlen(buf + 2) + 1); }
    size_t at = strlen(buf);
    snprintf(buf + at, len - at, ", mode='%s'%s", c->nearest ? "nearest" : c->dims == 1 ? "linear" : "bilinear",
             !c->nearest && c->align_corners ? ", align_corners=True" : "");
}

static void upsample_geometry(const st_node *n, const st_node *in, int *ih, int *iw) {
    *ih = n->u.up.dims == 1 ? 1 : in->shape[1];
    *iw = in->shape[in->ndim - 1];
}

static void upsample_forward(const st_exec *e, st_node *n) {
    const st_upsample_conf *c = &n->u.up;
    st_node *in = IN(e, n, 0);
    int ih, iw, planes = e->batch * n->shape[0];
    upsample_geometry(n, in, &ih, &iw);
    if (c->nearest) st_upsample_nearest_forward(X(e, n), X(e, in), planes, ih, iw, c->out[0], c->out[1], c->scale[0], c->scale[1]);
    else st_upsample_bilinear_forward(X(e, n), X(e, in), planes, ih, iw, c->out[0], c->out[1], c->scale[0], c->scale[1], c->align_corners);
}

static void upsample_backward(const st_exec *e, st_node *n) {
    const st_upsample_conf *c = &n->u.up;
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad) return;
    int ih, iw, planes = e->batch * n->shape[0];
    upsample_geometry(n, in, &ih, &iw);
    if (c->nearest) st_upsample_nearest_backward(G(e, in), G(e, n), planes, ih, iw, c->out[0], c->out[1], c->scale[0], c->scale[1]);
    else st_upsample_bilinear_backward(G(e, in), G(e, n), planes, ih, iw, c->out[0], c->out[1], c->scale[0], c->scale[1], c->align_corners);
}

/* ---------------------------------------------------------------- max_unpool
 * `u = max_unpool2d(x, pool)`: x's values go back to where max pooling node `pool` found
 * its maxima (the DeconvNet "switches"). kernel_size, stride and padding default to the
 * pooling node's; output_size defaults to the pooling node's input size. */
static st_status unpool_configure(st_net *net, st_node *n, st_args *a, int dims) {
    st_unpool_conf *c = &n->u.unpool;
    st_node *x = st_net_input_node(net, n, 0), *pool = st_net_input_node(net, n, 1);
    char s1[128], s2[128];
    if (pool->op->name[0] != 'm' || strncmp(pool->op->name, "max_pool", 8) || pool->u.pool.dims != dims)
        return st_fail(ST_ERR_ARG, "max_unpool%dd: '%s' is a %s node, not a max_pool%dd node whose indices it could use",
                       dims, pool->name, pool->op->name, dims);
    if (x->ndim != pool->ndim || memcmp(x->shape, pool->shape, sizeof(int) * x->ndim))
        return st_fail(ST_ERR_SHAPE, "max_unpool%dd: '%s' %s does not have the shape of pooling node '%s' %s", dims,
                       x->name, shape_of(x, s1, sizeof s1), pool->name, shape_of(pool, s2, sizeof s2));
    const st_pool_conf *pc = &pool->u.pool;
    memset(c, 0, sizeof *c);
    c->dims = dims;
    memcpy(c->k, pc->k, sizeof c->k);
    memcpy(c->s, pc->s, sizeof c->s);
    memcpy(c->p, pc->p, sizeof c->p);
    st_node *pin = st_net_input_node(net, pool, 0);
    c->out[0] = dims == 1 ? 1 : pin->shape[1];
    c->out[1] = pin->shape[pin->ndim - 1];
    int o = dims == 1 ? 1 : 0, req[2] = {0, 0};
    st_status rc;
    if ((rc = st_arg_ints(a, "kernel_size", dims, c->k + o)) || (rc = st_arg_ints(a, "stride", dims, c->s + o)) ||
        (rc = st_arg_ints(a, "padding", dims, c->p + o)) || (rc = st_arg_ints(a, "output_size", dims, req + o)))
        return rc;
    int given = st_arg_has(a, "kernel_size") || st_arg_has(a, "stride") || st_arg_has(a, "padding") || req[o];
    int insz[2] = {dims == 1 ? 1 : x->shape[1], x->shape[x->ndim - 1]};
    for (int ax = o; given && ax < 2; ax++)
        if ((rc = st_max_unpool_out_size(insz[ax], c->k[ax], c->s[ax], c->p[ax], req[ax], &c->out[ax]))) return rc;
    n->ndim = x->ndim;
    n->shape[0] = x->shape[0];
    if (dims == 1) n->shape[1] = c->out[1];
    else { n->shape[1] = c->out[0]; n->shape[2] = c->out[1]; }
    /* each output comes from one input (or none): the jump divides by the stride */
    rf_copy(net, n);
    for (int ax = o; ax < 2; ax++) n->jump[ax] /= c->s[ax];
    return ST_OK;
}
static st_status unpool1d_configure(st_net *net, st_node *n, st_args *a) { return unpool_configure(net, n, a, 1); }
static st_status unpool2d_configure(st_net *net, st_node *n, st_args *a) { return unpool_configure(net, n, a, 2); }

static void unpool_print(const st_node *n, char *buf, size_t len) {
    const st_unpool_conf *c = &n->u.unpool;
    buf[0] = 0;
    print_ints(buf, len, "output_size", c->out, c->dims);
    memmove(buf, buf + 2, strlen(buf + 2) + 1);
}

static void unpool_forward(const st_exec *e, st_node *n) {
    const st_unpool_conf *c = &n->u.unpool;
    st_node *x = IN(e, n, 0), *pool = IN(e, n, 1);
    int ih = c->dims == 1 ? 1 : x->shape[1], iw = x->shape[x->ndim - 1];
    /* the indices come from our own pooling node, so they are always in range */
    st_max_unpool_forward(X(e, n), X(e, x), IDX(e, pool), e->batch * x->shape[0], ih, iw, c->out[0], c->out[1]);
}

static void unpool_backward(const st_exec *e, st_node *n) {
    const st_unpool_conf *c = &n->u.unpool;
    st_node *x = IN(e, n, 0), *pool = IN(e, n, 1);
    if (!x->needs_grad) return;
    int ih = c->dims == 1 ? 1 : x->shape[1], iw = x->shape[x->ndim - 1];
    st_max_unpool_backward(G(e, x), G(e, n), IDX(e, pool), e->batch * x->shape[0], ih, iw, c->out[0], c->out[1]);
}

/* ---------------------------------------------------------------- local_response_norm
 * nn.LocalResponseNorm across channels (PyTorch's alpha/size convention). */
static st_status lrn_configure(st_net *net, st_node *n, st_args *a) {
    st_lrn_conf *c = &n->u.lrn;
    st_node *in = st_net_input_node(net, n, 0);
    c->size = -1;
    c->alpha = 1e-4f;
    c->beta = 0.75f;
    c->k = 1.0f;
    st_status rc;
    if ((rc = st_arg_int(a, "size", &c->size)) || (rc = st_arg_float(a, "alpha", &c->alpha)) ||
        (rc = st_arg_float(a, "beta", &c->beta)) || (rc = st_arg_float(a, "k", &c->k)))
        return rc;
    if (c->size <= 0) return st_fail(ST_ERR_PARSE, "local_response_norm needs size > 0");
    if (in->ndim < 2) return st_fail(ST_ERR_SHAPE, "local_response_norm needs channels and positions, but '%s' is flat", in->name);
    copy_shape(n, in);
    rf_copy(net, n);
    return ST_OK;
}

static void lrn_print(const st_node *n, char *buf, size_t len) {
    const st_lrn_conf *c = &n->u.lrn;
    snprintf(buf, len, "size=%d, alpha=%g, beta=%g, k=%g", c->size, c->alpha, c->beta, c->k);
}

static void lrn_forward(const st_exec *e, st_node *n) {
    const st_lrn_conf *c = &n->u.lrn;
    st_lrn_forward(X(e, n), NULL, X(e, IN(e, n, 0)), e->batch, n->shape[0], (int)(n->numel / n->shape[0]), c->size,
                   c->alpha, c->beta, c->k);
}

static void lrn_backward(const st_exec *e, st_node *n) {
    const st_lrn_conf *c = &n->u.lrn;
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad) return;
    st_lrn_backward(G(e, in), G(e, n), X(e, in), NULL, e->batch, n->shape[0], (int)(n->numel / n->shape[0]), c->size,
                    c->alpha, c->beta, c->k);
}

/* ---------------------------------------------------------------- batch_norm1d / 2d
 * Training mode normalises with the batch's statistics (and updates the running ones,
 * PyTorch's momentum rule); eval mode with the running statistics (batchnorm.c). The
 * running statistics are buffers: saved with the weights under running_mean, running_var
 * and num_batches_tracked, never optimised. */
static st_status bn_configure(st_net *net, st_node *n, st_args *a, int dims) {
    st_bn_conf *c = &n->u.bn;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128];
    int ok = dims == 1 ? (in->ndim == 1 || in->ndim == 2) : in->ndim == 3;
    if (!ok)
        return st_fail(ST_ERR_SHAPE, "batch_norm%dd expects %s per sample, but '%s' gives %s", dims,
                       dims == 1 ? "(C,) or (C, L)" : "(C, H, W)", in->name, shape_of(in, sb, sizeof sb));
    memset(c, 0, sizeof *c);
    c->num_features = in->shape[0];
    c->eps = 1e-5f;
    c->momentum = 0.1f;
    c->affine = c->track = 1;
    c->running_mean = c->running_var = -1;
    int given = -1;
    st_status rc;
    if ((rc = st_arg_int(a, "num_features", &given)) || (rc = st_arg_float(a, "eps", &c->eps)) ||
        (rc = st_arg_bool(a, "affine", &c->affine)) || (rc = st_arg_bool(a, "track_running_stats", &c->track)))
        return rc;
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->key[i], "momentum") && a->val[i].kind == ST_V_NONE) { a->used[i] = 1; c->momentum = -1; }
    if (c->momentum >= 0 && (rc = st_arg_float(a, "momentum", &c->momentum))) return rc;
    if (given != -1 && given != c->num_features)
        return st_fail(ST_ERR_SHAPE, "num_features=%d but '%s' has %d channels", given, in->name, c->num_features);
    copy_shape(n, in);
    rf_copy(net, n);
    int C = c->num_features;
    n->saved = malloc(sizeof(float) * 2 * (size_t)C);
    n->stats = malloc(sizeof(double) * 2 * (size_t)C);
    if (!n->saved || !n->stats) return st_fail(ST_ERR_NOMEM, "out of memory");
    if (c->affine) {
        int w = st_net_add_param(net, n, "weight", 1, &C, 1, 0), b = st_net_add_param(net, n, "bias", 1, &C, 1, 1);
        if (w < 0 || b < 0) return ST_ERR_NOMEM;
        net->params[w].init_const = net->params[b].init_const = 1; /* gamma 1, beta 0 */
        net->params[w].init_value = 1.0f;
    }
    if (c->track) {
        c->running_mean = st_net_add_buffer(net, n, "running_mean", 1, &C, 0.0f, 0);
        c->running_var = st_net_add_buffer(net, n, "running_var", 1, &C, 1.0f, 0);
        if (c->running_mean < 0 || c->running_var < 0 || st_net_add_buffer(net, n, "num_batches_tracked", 0, NULL, 0, 1) < 0)
            return ST_ERR_NOMEM;
    }
    return ST_OK;
}
static st_status bn1d_configure(st_net *net, st_node *n, st_args *a) { return bn_configure(net, n, a, 1); }
static st_status bn2d_configure(st_net *net, st_node *n, st_args *a) { return bn_configure(net, n, a, 2); }

static void bn_print(const st_node *n, char *buf, size_t len) {
    const st_bn_conf *c = &n->u.bn;
    buf[0] = 0;
    size_t at = 0;
    if (c->eps != 1e-5f) at += (size_t)snprintf(buf + at, len - at, ", eps=%g", c->eps);
    if (c->momentum < 0) at += (size_t)snprintf(buf + at, len - at, ", momentum=None");
    else if (c->momentum != 0.1f) at += (size_t)snprintf(buf + at, len - at, ", momentum=%g", c->momentum);
    if (!c->affine) at += (size_t)snprintf(buf + at, len - at, ", affine=False");
    if (!c->track) at += (size_t)snprintf(buf + at, len - at, ", track_running_stats=False");
    if (buf[0]) memmove(buf, buf + 2, strlen(buf + 2) + 1);
}

static float *bn_buffer(const st_exec *e, int i) { return i < 0 ? NULL : e->net->buffers[i].value.data; }

static void bn_forward(const st_exec *e, st_node *n) {
    st_bn_conf *c = &n->u.bn;
    int C = c->num_features, S = (int)(n->numel / C);
    const float *g = c->affine ? W(e, n, 0) : NULL, *b = c->affine ? W(e, n, 1) : NULL;
    float *x = X(e, IN(e, n, 0));
    if (e->train || !c->track) /* untracked statistics: always the batch's, as PyTorch */
        st_bn_forward_train_stats(X(e, n), n->saved, n->saved + C, n->stats, x, g, b, e->train ? bn_buffer(e, c->running_mean) : NULL,
                            e->train ? bn_buffer(e, c->running_var) : NULL, e->batch, C, S, c->eps, c->momentum,
                            &c->num_batches_tracked);
    else
        st_bn_forward_eval(X(e, n), x, g, b, bn_buffer(e, c->running_mean), bn_buffer(e, c->running_var), e->batch, C, S, c->eps);
}

static void bn_backward(const st_exec *e, st_node *n) {
    st_bn_conf *c = &n->u.bn;
    st_node *in = IN(e, n, 0);
    int C = c->num_features, S = (int)(n->numel / C);
    float *dx = in->needs_grad ? G(e, in) : NULL;
    /* without affine parameters the gamma/beta gradients go to scratch and are dropped */
    float scratch[2 * 64], *dg = c->affine ? GW(e, n, 0) : NULL, *db = c->affine ? GW(e, n, 1) : NULL;
    float *heap = NULL;
    if (!c->affine) {
        heap = C > 64 ? calloc(2 * (size_t)C, sizeof(float)) : NULL;
        dg = heap ? heap : scratch;
        db = dg + C;
    }
    const float *g = c->affine ? W(e, n, 0) : NULL;
    if (e->train || !c->track)
        st_bn_backward(dx, dg, db, G(e, n), X(e, in), n->saved, n->saved + C, g, e->batch, C, S);
    else
        st_bn_backward_eval(dx, dg, db, G(e, n), X(e, in), g, bn_buffer(e, c->running_mean), bn_buffer(e, c->running_var),
                            e->batch, C, S, c->eps);
    free(heap);
}

/* ---------------------------------------------------------------- dropout / dropout2d
 * Training mode keeps each element (dropout2d: each channel plane) with probability 1-p
 * and scales it by 1/(1-p); the masks are drawn for the whole batch before the pass
 * (net.c). Eval mode is the identity. */
static st_status dropout_configure_common(st_net *net, st_node *n, st_args *a, int planes) {
    st_node *in = st_net_input_node(net, n, 0);
    n->u.drop.p = 0.5f;
    n->u.drop.planes = planes;
    st_status rc = st_arg_float(a, "p", &n->u.drop.p);
    if (rc) return rc;
    if (!(n->u.drop.p >= 0 && n->u.drop.p <= 1)) return st_fail(ST_ERR_ARG, "dropout probability has to be between 0 and 1, but got %g", n->u.drop.p);
    if (planes && in->ndim < 2) return st_fail(ST_ERR_SHAPE, "dropout2d needs channels and positions, but '%s' is flat", in->name);
    copy_shape(n, in);
    rf_copy(net, n);
    return ST_OK;
}
static st_status dropout_configure(st_net *net, st_node *n, st_args *a) { return dropout_configure_common(net, n, a, 0); }
static st_status dropout2d_configure(st_net *net, st_node *n, st_args *a) { return dropout_configure_common(net, n, a, 1); }

static void dropout_print(const st_node *n, char *buf, size_t len) {
    if (n->u.drop.p != 0.5f) snprintf(buf, len, "p=%g", n->u.drop.p);
    else buf[0] = 0;
}

static void dropout_forward(const st_exec *e, st_node *n) {
    const st_dropout_conf *c = &n->u.drop;
    const float *x = X(e, IN(e, n, 0));
    if (!e->train) { /* the identity (the output may be the input's memory: net.c) */
        if (X(e, n) != x) memcpy(X(e, n), x, sizeof(float) * n->numel * e->batch);
        return;
    }
    if (c->planes)
        st_dropout2d_forward(X(e, n), x, n->mask + (size_t)e->offset * n->shape[0], e->batch, n->shape[0],
                             (int)(n->numel / n->shape[0]), c->p);
    else
        st_dropout_forward(X(e, n), x, n->mask + (size_t)e->offset * n->numel, n->numel * e->batch, c->p);
}

static void dropout_backward(const st_exec *e, st_node *n) {
    const st_dropout_conf *c = &n->u.drop;
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad) return;
    if (!e->train) {
        for (size_t i = 0; i < n->numel * e->batch; i++) G(e, in)[i] += G(e, n)[i];
        return;
    }
    if (c->planes)
        st_dropout2d_backward(G(e, in), G(e, n), n->mask + (size_t)e->offset * n->shape[0], e->batch, n->shape[0],
                              (int)(n->numel / n->shape[0]), c->p);
    else
        st_dropout_backward(G(e, in), G(e, n), n->mask + (size_t)e->offset * n->numel, n->numel * e->batch, c->p);
}

/* ---------------------------------------------------------------- linear */
static st_status linear_configure(st_net *net, st_node *n, st_args *a) {
    st_linear_conf *c = &n->u.linear;
    st_node *in = st_net_input_node(net, n, 0);
    st_status rc;
    c->in_features = in->shape[in->ndim - 1];
    c->out_features = -1;
    c->bias = 1;
    int given_in = -1;
    if ((rc = st_arg_int(a, "in_features", &given_in))) return rc;
    char sb[128];
    if (given_in != -1 && given_in != c->in_features)
        return st_fail(ST_ERR_SHAPE, "in_features=%d but '%s' gives %s (last dimension %d)", given_in, in->name,
                       shape_of(in, sb, sizeof sb), c->in_features);
    if ((rc = st_arg_int(a, "out_features", &c->out_features))) return rc;
    if (c->out_features <= 0) return st_fail(ST_ERR_PARSE, "linear needs out_features > 0");
    if ((rc = st_arg_bool(a, "bias", &c->bias))) return rc;
    copy_shape(n, in);
    n->shape[n->ndim - 1] = c->out_features;
    int w[2] = {c->out_features, c->in_features};
    if (st_net_add_param(net, n, "weight", 2, w, c->in_features, 0) < 0) return ST_ERR_NOMEM;
    if (c->bias && st_net_add_param(net, n, "bias", 1, &c->out_features, c->in_features, 1) < 0) return ST_ERR_NOMEM;
    n->rf_valid = 0;
    return ST_OK;
}

static void linear_print(const st_node *n, char *buf, size_t len) {
    snprintf(buf, len, "out_features=%d%s", n->u.linear.out_features, n->u.linear.bias ? "" : ", bias=False");
}

static int linear_rows(int batch, const st_node *n) {
    size_t rows = (size_t)batch;
    for (int i = 0; i < n->ndim - 1; i++) rows *= (size_t)n->shape[i];
    return (int)rows;
}

static void linear_forward(const st_exec *e, st_node *n) {
    const st_linear_conf *c = &n->u.linear;
    st_node *in = IN(e, n, 0);
    int fused = e->run && n->fuse.active;
    st_linear_forward(X(e, n), X(e, in), W(e, n, 0), c->bias && !fused ? W(e, n, 1) : NULL,
                      linear_rows(e->batch, n), c->in_features, c->out_features);
    if (fused) fuse_epilogue(e, n, linear_rows(e->batch, n), c->out_features, 1);
}

static void linear_backward(const st_exec *e, st_node *n) {
    const st_linear_conf *c = &n->u.linear;
    st_node *in = IN(e, n, 0);
    st_linear_backward(in->needs_grad ? G(e, in) : NULL, GW(e, n, 0),
                       c->bias ? GW(e, n, 1) : NULL, G(e, n), X(e, in),
                       W(e, n, 0), linear_rows(e->batch, n), c->in_features, c->out_features);
}

static int64_t linear_macs(const st_node *n) {
    int64_t rows = 1;
    for (int i = 0; i < n->ndim - 1; i++) rows *= n->shape[i];
    return rows * n->u.linear.in_features * n->u.linear.out_features;
}

/* ---------------------------------------------------------------- flatten */
static st_status flatten_configure(st_net *net, st_node *n, st_args *a) {
    st_node *in = st_net_input_node(net, n, 0);
    int start = 1;
    st_status rc = st_arg_int(a, "start_dim", &start);
    if (rc) return rc;
    if (start != 1) return st_fail(ST_ERR_ARG, "flatten supports start_dim=1 only (got %d)", start);
    n->ndim = 1;
    n->shape[0] = (int)in->numel;
    n->rf_valid = 0;
    return ST_OK;
}

static void flatten_print(const st_node *n, char *buf, size_t len) { (void)n; buf[0] = 0; (void)len; }

static void flatten_forward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (X(e, n) != X(e, in)) memcpy(X(e, n), X(e, in), sizeof(float) * n->numel * e->batch);
}

static void flatten_backward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad) return;
    size_t total = n->numel * e->batch;
    for (size_t i = 0; i < total; i++) G(e, in)[i] += G(e, n)[i];
}

/* ---------------------------------------------------------------- activations */
static st_status act_configure(st_net *net, st_node *n, st_args *a, st_act act) {
    copy_shape(n, st_net_input_node(net, n, 0));
    rf_copy(net, n);
    n->u.act.act = act;
    n->u.act.slope = 0.01f;
    if (act == ST_ACT_LEAKY_RELU) return st_arg_float(a, "negative_slope", &n->u.act.slope);
    return ST_OK;
}
static st_status relu_configure(st_net *net, st_node *n, st_args *a) { return act_configure(net, n, a, ST_ACT_RELU); }
static st_status leaky_configure(st_net *net, st_node *n, st_args *a) { return act_configure(net, n, a, ST_ACT_LEAKY_RELU); }
static st_status sigmoid_configure(st_net *net, st_node *n, st_args *a) { return act_configure(net, n, a, ST_ACT_SIGMOID); }
static st_status tanh_configure(st_net *net, st_node *n, st_args *a) { return act_configure(net, n, a, ST_ACT_TANH); }

static void act_print(const st_node *n, char *buf, size_t len) {
    if (n->u.act.act == ST_ACT_LEAKY_RELU && n->u.act.slope != 0.01f) snprintf(buf, len, "negative_slope=%g", n->u.act.slope);
    else buf[0] = 0;
}

/* (the output may be the input's memory: every element is read before it is written) */
static void act_forward(const st_exec *e, st_node *n) {
    if (n->train_fused && step_fusion(e)) return; /* its convolution wrote the output */
    st_act_forward(n->u.act.act, n->u.act.slope, X(e, n), X(e, IN(e, n, 0)), n->numel * e->batch);
}

/* ReLU's derivative is known from its output alone (y > 0 exactly where x > 0; also for
 * the leaky ReLU with a slope >= 0), and sigmoid's and tanh's are functions of y, so
 * backward reads the output: the input, which may be a batch norm's output, need not be
 * kept for backward (net.c's memory plans). */
static void act_backward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (!in->needs_grad || (n->train_fused && step_fusion(e))) return; /* (fused: in its convolution's) */
    const float *y = X(e, n), *x = st_node_bwd_reads(n) & ST_READS_INPUTS ? X(e, in) : y;
    st_act_backward(n->u.act.act, n->u.act.slope, G(e, in), G(e, n), x, y, n->numel * e->batch);
}

/* ---------------------------------------------------------------- softmax (over channels) */
static st_status softmax_configure(st_net *net, st_node *n, st_args *a) {
    int dim = 1;
    st_status rc = st_arg_int(a, "dim", &dim);
    if (rc) return rc;
    if (dim != 1) return st_fail(ST_ERR_ARG, "softmax supports dim=1 (the channels) only, got %d", dim);
    copy_shape(n, st_net_input_node(net, n, 0));
    rf_copy(net, n);
    return ST_OK;
}

static void softmax_forward(const st_exec *e, st_node *n) {
    st_softmax_forward(X(e, n), X(e, IN(e, n, 0)), e->batch, n->shape[0], (int)(n->numel / n->shape[0]));
}

static void softmax_backward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (in->needs_grad) st_softmax_backward(G(e, in), G(e, n), X(e, n), e->batch, n->shape[0], (int)(n->numel / n->shape[0]));
}

/* ---------------------------------------------------------------- crop
 * `c = crop(x, like)`: the centre of x with like's spatial size (channels kept), as the
 * original U-Net crops an encoder map to the decoder's size before concatenating. */
static st_status crop_configure(st_net *net, st_node *n, st_args *a) {
    (void)a;
    st_node *x = st_net_input_node(net, n, 0), *like = st_net_input_node(net, n, 1);
    char s1[128], s2[128];
    int ok = (x->ndim == 2 || x->ndim == 3) && x->ndim == like->ndim;
    for (int k = 1; ok && k < x->ndim; k++) ok = like->shape[k] <= x->shape[k];
    if (!ok)
        return st_fail(ST_ERR_SHAPE, "crop: '%s' %s cannot be cropped to the size of '%s' %s", x->name,
                       shape_of(x, s1, sizeof s1), like->name, shape_of(like, s2, sizeof s2));
    copy_shape(n, x);
    for (int k = 1; k < x->ndim; k++) n->shape[k] = like->shape[k];
    rf_copy(net, n);
    return ST_OK;
}

/* Copies the centre window (forward) or adds the gradient back into it (backward). */
static void crop_copy(const st_exec *e, st_node *n, int backward) {
    st_node *x = IN(e, n, 0);
    int twod = n->ndim == 3;
    int H = twod ? x->shape[1] : 1, Wd = x->shape[x->ndim - 1];
    int h = twod ? n->shape[1] : 1, w = n->shape[n->ndim - 1];
    int y0 = (H - h) / 2, x0 = (Wd - w) / 2;
    size_t planes = (size_t)e->batch * n->shape[0];
    for (size_t p = 0; p < planes; p++)
        for (int i = 0; i < h; i++) {
            size_t src = (p * H + y0 + i) * (size_t)Wd + x0, dst = (p * h + i) * (size_t)w;
            if (backward) {
                float *gx = G(e, x) + src;
                const float *gy = G(e, n) + dst;
                for (int j = 0; j < w; j++) gx[j] += gy[j];
            } else {
                memcpy(X(e, n) + dst, X(e, x) + src, sizeof(float) * w);
            }
        }
}
static void crop_forward(const st_exec *e, st_node *n) { crop_copy(e, n, 0); }
static void crop_backward(const st_exec *e, st_node *n) {
    if (IN(e, n, 0)->needs_grad) crop_copy(e, n, 1);
}

/* ---------------------------------------------------------------- add (residual) */
static st_status add_configure(st_net *net, st_node *n, st_args *a) {
    (void)a;
    st_node *first = st_net_input_node(net, n, 0);
    char s1[128], s2[128];
    for (int i = 1; i < n->ninputs; i++) {
        st_node *o = st_net_input_node(net, n, i);
        if (o->ndim != first->ndim || memcmp(o->shape, first->shape, sizeof(int) * first->ndim))
            return st_fail(ST_ERR_SHAPE, "add: '%s' %s and '%s' %s have different shapes", first->name,
                           shape_of(first, s1, sizeof s1), o->name, shape_of(o, s2, sizeof s2));
    }
    copy_shape(n, first);
    rf_merge(net, n);
    return ST_OK;
}

/* y = x0 + x1 + ... in input order; in st_net_run a following ReLU is applied in the last
 * sum's loop (fuse.act). The output may be x0's memory (then the copy is skipped). */
/* elements [j0, j1) of the sum */
static void add_range(const st_exec *e, st_node *n, size_t j0, size_t j1) {
    float *y = X(e, n);
    const float *x0 = X(e, IN(e, n, 0));
    int act = e->run && n->fuse.active ? n->fuse.act : 0;
    float slope = act == 2 ? n->fuse.slope : 0.0f;
    if (y != x0) memcpy(y + j0, x0 + j0, sizeof(float) * (j1 - j0));
    for (int i = 1; i < n->ninputs; i++) {
        const float *x = X(e, IN(e, n, i));
        if (i < n->ninputs - 1 || !act) {
            for (size_t j = j0; j < j1; j++) y[j] += x[j];
        } else if (act == 1) {
            for (size_t j = j0; j < j1; j++) { float v = y[j] + x[j]; y[j] = v < 0 ? 0 : v; }
        } else {
            for (size_t j = j0; j < j1; j++) { float v = y[j] + x[j]; y[j] = v > 0 ? v : slope * v; }
        }
    }
}

static void add_forward(const st_exec *e, st_node *n) {
    size_t total = n->numel * e->batch;
    int parts = e->run ? st_elementwise_parts(total) : 1;
    if (parts == 1) {
        add_range(e, n, 0, total);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int q = 0; q < parts; q++) add_range(e, n, total * q / parts, total * (q + 1) / parts);
}

static void add_backward(const st_exec *e, st_node *n) {
    size_t total = n->numel * e->batch;
    for (int i = 0; i < n->ninputs; i++) {
        st_node *in = IN(e, n, i);
        if (!in->needs_grad) continue;
        for (size_t j = 0; j < total; j++) G(e, in)[j] += G(e, n)[j];
    }
}

/* ---------------------------------------------------------------- concat (along channels) */
static st_status concat_configure(st_net *net, st_node *n, st_args *a) {
    int dim = 1;
    st_status rc = st_arg_int(a, "dim", &dim);
    if (rc) return rc;
    st_node *first = st_net_input_node(net, n, 0);
    if (dim < 1 || dim > first->ndim)
        return st_fail(ST_ERR_ARG, "concat: dim=%d is out of range 1..%d (dim 0 is the batch)", dim, first->ndim);
    copy_shape(n, first);
    n->u.concat.dim = dim;
    char s1[128], s2[128];
    for (int i = 1; i < n->ninputs; i++) {
        st_node *o = st_net_input_node(net, n, i);
        int ok = o->ndim == first->ndim;
        for (int k = 0; ok && k < first->ndim; k++)
            if (k != dim - 1 && o->shape[k] != first->shape[k]) ok = 0;
        if (!ok)
            return st_fail(ST_ERR_SHAPE, "concat: '%s' %s and '%s' %s differ outside dim %d", first->name,
                           shape_of(first, s1, sizeof s1), o->name, shape_of(o, s2, sizeof s2), dim);
        n->shape[dim - 1] += o->shape[dim - 1];
    }
    rf_merge(net, n);
    return ST_OK;
}

static void concat_print(const st_node *n, char *buf, size_t len) {
    if (n->u.concat.dim != 1) snprintf(buf, len, "dim=%d", n->u.concat.dim);
    else buf[0] = 0;
}

/* Walks the blocks: for each sample and each "outer" index before dim, the inputs'
 * slices follow each other in the output. */
static void concat_copy(const st_exec *e, st_node *n, int backward) {
    int d = n->u.concat.dim - 1;
    size_t inner = 1, outer = (size_t)e->batch;
    for (int k = d + 1; k < n->ndim; k++) inner *= (size_t)n->shape[k];
    for (int k = 0; k < d; k++) outer *= (size_t)n->shape[k];
    size_t out_block = (size_t)n->shape[d] * inner, off = 0;
    for (int i = 0; i < n->ninputs; i++) {
        st_node *in = IN(e, n, i);
        size_t blk = (size_t)in->shape[d] * inner;
        if (!backward || in->needs_grad)
            for (size_t o = 0; o < outer; o++) {
                if (backward) {
                    float *dst = G(e, in) + o * blk;
                    const float *src = G(e, n) + o * out_block + off;
                    for (size_t j = 0; j < blk; j++) dst[j] += src[j];
                } else {
                    memcpy(X(e, n) + o * out_block + off, X(e, in) + o * blk, sizeof(float) * blk);
                }
            }
        off += blk;
    }
}
static void concat_forward(const st_exec *e, st_node *n) { concat_copy(e, n, 0); }
static void concat_backward(const st_exec *e, st_node *n) { concat_copy(e, n, 1); }

/* ---------------------------------------------------------------- supervise (intermediate supervision)
 * out = supervise(heat1, ..., heatS): the output is a copy of the LAST input (the
 * prediction). When a supervise node is the network's output, the loss is applied to each
 * input against the same target and summed, and each input's gradient is seeded by the
 * loss itself (net.c: loss_slice, backward_shard), so this node's backward does nothing.
 * Anywhere else in a graph it is the identity on its last input, forward and backward. */
static st_status supervise_configure(st_net *net, st_node *n, st_args *a) {
    (void)a;
    st_node *last = st_net_input_node(net, n, n->ninputs - 1);
    char s1[128], s2[128];
    for (int i = 0; i < n->ninputs; i++) {
        st_node *o = st_net_input_node(net, n, i);
        if (o->ndim != last->ndim || memcmp(o->shape, last->shape, sizeof(int) * last->ndim))
            return st_fail(ST_ERR_SHAPE, "supervise: '%s' %s and '%s' %s have different shapes (every head is compared with one target)",
                           o->name, shape_of(o, s1, sizeof s1), last->name, shape_of(last, s2, sizeof s2));
        for (int j = 0; j < i; j++)
            if (n->inputs[j] == n->inputs[i])
                return st_fail(ST_ERR_ARG, "supervise: '%s' is listed twice (each head is supervised once)", o->name);
    }
    copy_shape(n, last);
    memcpy(n->rf, last->rf, sizeof n->rf);
    memcpy(n->jump, last->jump, sizeof n->jump);
    n->rf_valid = last->rf_valid;
    return ST_OK;
}

static void supervise_forward(const st_exec *e, st_node *n) {
    memcpy(X(e, n), X(e, IN(e, n, n->ninputs - 1)), sizeof(float) * n->numel * e->batch);
}

static void supervise_backward(const st_exec *e, st_node *n) {
    st_node *last = IN(e, n, n->ninputs - 1);
    if (n == &e->net->nodes[e->net->output] || !last->needs_grad) return; /* the loss seeded the heads */
    for (size_t j = 0; j < n->numel * e->batch; j++) G(e, last)[j] += G(e, n)[j];
}

static void empty_print(const st_node *n, char *buf, size_t len) { (void)n; (void)len; buf[0] = 0; }

/* ---------------------------------------------------------------- scaled_tanh
 * LeCun's activation f(a) = A tanh(S a), A = 1.7159, S = 2/3 (lenet_ops.c). */
static st_status stanh_configure(st_net *net, st_node *n, st_args *a) {
    st_scaled_tanh_conf *c = &n->u.stanh;
    c->A = ST_LECUN_A;
    c->S = ST_LECUN_S;
    st_status rc;
    if ((rc = st_arg_float(a, "A", &c->A)) || (rc = st_arg_float(a, "S", &c->S))) return rc;
    copy_shape(n, st_net_input_node(net, n, 0));
    rf_copy(net, n);
    return ST_OK;
}

static void stanh_print(const st_node *n, char *buf, size_t len) {
    const st_scaled_tanh_conf *c = &n->u.stanh;
    buf[0] = 0;
    size_t at = 0;
    if (c->A != ST_LECUN_A) at += (size_t)snprintf(buf + at, len - at, ", A=%.9g", c->A);
    if (c->S != ST_LECUN_S) at += (size_t)snprintf(buf + at, len - at, ", S=%.9g", c->S);
    if (buf[0]) memmove(buf, buf + 2, strlen(buf + 2) + 1);
}

static void stanh_forward(const st_exec *e, st_node *n) {
    st_scaled_tanh_forward(X(e, n), X(e, IN(e, n, 0)), n->numel * e->batch, n->u.stanh.A, n->u.stanh.S);
}

static void stanh_backward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (in->needs_grad)
        st_scaled_tanh_backward(G(e, in), G(e, n), X(e, in), n->numel * e->batch, n->u.stanh.A, n->u.stanh.S);
}

/* ---------------------------------------------------------------- select
 * `s = select(x, channels=(0, 1, 2))`: the listed channels (dim 1, in that order,
 * repeats allowed), as torch.index_select(x, 1, channels); LeNet-5's C3 connection table. */
static st_status select_configure(st_net *net, st_node *n, st_args *a) {
    st_select_conf *c = &n->u.select;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128];
    int k = -1;
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->key[i], "channels")) k = i;
    if (k < 0) return st_fail(ST_ERR_PARSE, "select needs channels=(i, j, ...) (up to %d channel indices)", ST_MAX_DIMS);
    a->used[k] = 1;
    st_val *v = &a->val[k];
    if (v->kind == ST_V_INT) { c->n = 1; c->ch[0] = (int)v->num; }
    else if (v->kind == ST_V_TUPLE && v->n >= 1) { c->n = v->n; memcpy(c->ch, v->tup, sizeof(int) * v->n); }
    else return st_fail(ST_ERR_PARSE, "select: channels must be an integer or a tuple of up to %d integers", ST_MAX_DIMS);
    for (int i = 0; i < c->n; i++)
        if (c->ch[i] < 0 || c->ch[i] >= in->shape[0])
            return st_fail(ST_ERR_SHAPE, "select: channel %d is out of range for '%s' %s (channels 0..%d)", c->ch[i],
                           in->name, shape_of(in, sb, sizeof sb), in->shape[0] - 1);
    copy_shape(n, in);
    n->shape[0] = c->n;
    rf_copy(net, n);
    return ST_OK;
}

static void select_print(const st_node *n, char *buf, size_t len) {
    const st_select_conf *c = &n->u.select;
    size_t at = (size_t)snprintf(buf, len, "channels=(");
    for (int i = 0; i < c->n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%d", i ? ", " : "", c->ch[i]);
    if (at < len) snprintf(buf + at, len - at, c->n == 1 ? ",)" : ")");
}

static void select_forward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    st_select_forward(X(e, n), X(e, in), n->u.select.ch, n->u.select.n, e->batch, in->shape[0], in->numel / in->shape[0]);
}

static void select_backward(const st_exec *e, st_node *n) {
    st_node *in = IN(e, n, 0);
    if (in->needs_grad)
        st_select_backward(G(e, in), G(e, n), n->u.select.ch, n->u.select.n, e->batch, in->shape[0],
                           in->numel / in->shape[0]);
}

/* ---------------------------------------------------------------- rbf
 * LeNet-5's output layer: y_i = -sum_j (x_j - w_ij)^2, the NEGATED squared distance from
 * the input to fixed centres, so the nearest centre gives the largest output and the
 * outputs are logits for cross-entropy. The centres are a buffer, NODE.centers
 * (out_features, in_features): saved and loaded with the weights, never trained. With 84
 * inputs and at most 10 outputs they start as the paper's 7x12 digit bitmaps (+1/-1);
 * otherwise at 0, to be loaded from a weights file. */
static st_status rbf_configure(st_net *net, st_node *n, st_args *a) {
    st_rbf_conf *c = &n->u.rbf;
    st_node *in = st_net_input_node(net, n, 0);
    char sb[128];
    if (in->ndim != 1)
        return st_fail(ST_ERR_SHAPE, "rbf expects flat features (F,) per sample, but '%s' gives %s", in->name,
                       shape_of(in, sb, sizeof sb));
    c->in_features = in->shape[0];
    c->out_features = -1;
    st_status rc = st_arg_int(a, "out_features", &c->out_features);
    if (rc) return rc;
    if (c->out_features <= 0) return st_fail(ST_ERR_PARSE, "rbf needs out_features > 0");
    n->ndim = 1;
    n->shape[0] = c->out_features;
    n->rf_valid = 0;
    int shape[2] = {c->out_features, c->in_features};
    c->centers = st_net_add_buffer(net, n, "centers", 2, shape, 0.0f, 0);
    if (c->centers < 0) return ST_ERR_NOMEM;
    st_buffer *b = &net->buffers[c->centers];
    b->fixed = 1;
    if (c->in_features == ST_DIGIT_W * ST_DIGIT_H && c->out_features <= 10)
        st_lenet_digit_centers(b->value.data, c->out_features);
    return ST_OK;
}

static void rbf_print(const st_node *n, char *buf, size_t len) { snprintf(buf, len, "out_features=%d", n->u.rbf.out_features); }

static void rbf_forward(const st_exec *e, st_node *n) {
    const st_rbf_conf *c = &n->u.rbf;
    st_rbf_forward(X(e, n), X(e, IN(e, n, 0)), e->net->buffers[c->centers].value.data, e->batch, c->in_features,
                   c->out_features);
}

static void rbf_backward(const st_exec *e, st_node *n) {
    const st_rbf_conf *c = &n->u.rbf;
    st_node *in = IN(e, n, 0);
    if (in->needs_grad)
        st_rbf_backward(G(e, in), G(e, n), X(e, in), e->net->buffers[c->centers].value.data, e->batch, c->in_features,
                        c->out_features);
}

static int64_t rbf_macs(const st_node *n) { return (int64_t)n->u.rbf.in_features * n->u.rbf.out_features; }


/* ---------------------------------------------------------------- what the memory planner and st_net_run need
 * (net.c). A node's backward reads its inputs' outputs, its own output, both or neither
 * (the op table's bwd_reads); the leaky ReLU with a negative slope needs its input. */
int st_node_bwd_reads(const st_node *n) {
    if (n->op->forward == act_forward && n->u.act.act == ST_ACT_LEAKY_RELU && !(n->u.act.slope >= 0))
        return ST_READS_INPUTS | ST_READS_OUTPUT;
    return n->op->bwd_reads;
}

/* Dropout is elementwise in training and the identity in eval mode. */
int st_node_inplace(const st_node *n, int train) {
    if (n->op->forward == dropout_forward && !train) return ST_INPLACE_COPY;
    return n->op->inplace;
}

/* Rematerialisation: in training, a ReLU (or other activation) after a batch norm is
 * f((z - mean) * gamma / std + beta) of the batch norm's input z, which the batch norm's
 * backward keeps anyway, and of the batch statistics saved in double. So its output need
 * not be kept from the forward pass to the backward pass (in a ResNet those are the block
 * inputs of every second convolution): net.c frees it after its last forward reader and
 * calls st_node_recompute before the first backward that reads it, which repeats the
 * forward's arithmetic exactly (st_bn_recompute, then the activation in place). */
int st_node_can_recompute(const st_net *net, const st_node *n) {
    if (n->op->forward != act_forward || n->ninputs != 1) return 0;
    const st_node *b = &net->nodes[n->inputs[0]];
    return b->op->forward == bn_forward && b->needs_grad && b->numel == n->numel;
}

void st_node_recompute(const st_exec *e, st_node *n) {
    st_node *b = IN(e, n, 0), *z = IN(e, b, 0);
    const st_bn_conf *c = &b->u.bn;
    int C = c->num_features;
    float *y = X(e, n);
    st_bn_recompute(y, X(e, z), b->stats, c->affine ? W(e, b, 0) : NULL, c->affine ? W(e, b, 1) : NULL, e->batch, C,
                    (int)(b->numel / C));
    st_act_forward(n->u.act.act, n->u.act.slope, y, y, n->numel * e->batch);
}

/* ---------------------------------------------------------------- fusion (st_net_run)
 * In eval mode a batch norm is a fixed affine map per channel,
 *     bn(z) = (z - mean) * gamma / sqrt(var + eps) + beta = z * scale + shift,
 * so after a convolution z = conv(x) + b it folds into one multiply-add per output:
 *     bn(z) = conv(x) * scale + (b - mean) * scale + beta,
 * which the convolution node applies in the same pass as its bias (the kernel then runs
 * without bias), together with a ReLU that follows. Scale and shift are recomputed from
 * the current weights and running statistics on every st_net_run (C values per chain, a
 * negligible cost), so no cached folded weights can go stale when the weights change.
 * The folded nodes are skipped and their outputs share the convolution's buffer. The
 * same for a linear node (batch_norm1d on (N, C) features) and for an add followed by a
 * ReLU (the residual connections of ResNets). The results differ from the unfused eval
 * pass only by float rounding (the batch norm is evaluated in float, not double). */
static int is_conv_like(const st_node *n) {
    return n->op->forward == conv_forward || n->op->forward == convt_forward ||
           (n->op->forward == linear_forward && n->ndim == 1);
}

static int is_foldable_bn(const st_node *n) { return n->op->forward == bn_forward && n->u.bn.track; }
static int is_relu(const st_node *n) {
    return n->op->forward == act_forward && (n->u.act.act == ST_ACT_RELU || n->u.act.act == ST_ACT_LEAKY_RELU);
}

/* The only node that reads node i, or -1 (none, several, or i's output must be kept). */
static int sole_consumer(const st_net *net, int i, const int *pinned) {
    if (pinned[i]) return -1;
    int found = -1;
    for (int c = i + 1; c < net->nnodes; c++)
        for (int k = 0; k < net->nodes[c].ninputs; k++)
            if (net->nodes[c].inputs[k] == i) {
                if (found >= 0) return -1;
                found = c;
            }
    return found;
}

void st_train_fuse_plan(st_net *net, const int *pinned) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        n->train_relu = n->train_fused = n->train_next = n->train_prev = 0;
    }
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        int r = n->op->forward == conv_forward ? sole_consumer(net, i, pinned) : -1;
        if (r < 0 || !is_relu(&net->nodes[r]) || net->nodes[r].u.act.act != ST_ACT_RELU) continue;
        n->train_relu = r;
        net->nodes[r].train_fused = 1;
        int b = sole_consumer(net, r, pinned);
        if (b > 0 && net->nodes[b].op->forward == conv_forward && net->nodes[b].ninputs == 1) {
            n->train_next = b;
            net->nodes[b].train_prev = i;
        }
    }
}

void st_train_direct_plan(st_net *net, int lo, int hi) {
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        const st_conv_geom *g = &n->u.conv.geom;
        n->train_direct = (n->train_relu || n->train_prev) && st_conv_direct_fused(g, lo) && st_conv_direct_fused(g, hi);
    }
}

int st_node_bwd_can_write(const st_node *n) { return n->op->backward == conv_backward && n->ninputs == 1; }

static int fuse_adds = 1;
void st_fuse_force_adds(int on) { fuse_adds = on; }

st_status st_fuse_plan(st_net *net, const int *pinned) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        n->skip = n->idx_read = 0;
        free(n->fuse.scale);
        memset(&n->fuse, 0, sizeof n->fuse);
    }
    for (int i = 0; i < net->nnodes; i++)
        if (net->nodes[i].op->forward == unpool_forward) net->nodes[net->nodes[i].inputs[1]].idx_read = 1;
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        int conv = is_conv_like(n), add = n->op->forward == add_forward;
        if ((!conv && !add) || n->skip) continue;
        int at = i, c = sole_consumer(net, at, pinned), C = conv ? n->shape[0] : 0;
        if (conv && c >= 0 && is_foldable_bn(&net->nodes[c]) && net->nodes[c].u.bn.num_features == C) {
            n->fuse.bn = c;
            net->nodes[c].skip = i;
            at = c;
            c = sole_consumer(net, at, pinned);
        }
        /* a residual add whose other input is computed before this node (in a ResNet
         * block, the shortcut, for the last convolution of the main branch; in a block
         * with a downsampling shortcut, the main branch, for the shortcut's convolution) */
        if (conv && fuse_adds && c >= 0 && net->nodes[c].op->forward == add_forward && net->nodes[c].ninputs == 2) {
            const st_node *a = &net->nodes[c];
            int other = a->inputs[0] == at ? a->inputs[1] : a->inputs[0];
            if (other != at && other < i && a->numel == n->numel) {
                n->fuse.add = other;
                net->nodes[c].skip = i;
                at = c;
                c = sole_consumer(net, at, pinned);
            }
        }
        if (c >= 0 && is_relu(&net->nodes[c])) {
            const st_node *r = &net->nodes[c];
            n->fuse.act = r->u.act.act == ST_ACT_RELU ? 1 : 2;
            n->fuse.slope = r->u.act.slope;
            net->nodes[c].skip = i;
            at = c;
        }
        if (at == i) continue;
        n->fuse.active = 1;
        n->fuse.last = at;
        if (conv) {
            n->fuse.scale = malloc(sizeof(float) * 2 * (size_t)C);
            if (!n->fuse.scale) return st_fail(ST_ERR_NOMEM, "out of memory");
            n->fuse.shift = n->fuse.scale + C;
        }
    }
    return ST_OK;
}

/* The bias of a conv-like node, or NULL. */
static const float *conv_bias(const st_net *net, const st_node *n) {
    int has = n->op->forward == conv_forward ? n->u.conv.bias : n->op->forward == convt_forward ? n->u.convt.bias
                                                                                                 : n->u.linear.bias;
    return has ? net->params[n->params[1]].value.data : NULL;
}

void st_fuse_update(st_net *net) {
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (!n->fuse.active || !n->fuse.scale) continue;
        int C = n->shape[0];
        const float *b = conv_bias(net, n);
        if (!n->fuse.bn) {
            for (int c = 0; c < C; c++) { n->fuse.scale[c] = 1.0f; n->fuse.shift[c] = b ? b[c] : 0.0f; }
            continue;
        }
        const st_node *bn = &net->nodes[n->fuse.bn];
        const st_bn_conf *bc = &bn->u.bn;
        const float *gamma = bc->affine ? net->params[bn->params[0]].value.data : NULL;
        const float *beta = bc->affine ? net->params[bn->params[1]].value.data : NULL;
        const float *mean = net->buffers[bc->running_mean].value.data, *var = net->buffers[bc->running_var].value.data;
        for (int c = 0; c < C; c++) {
            double sc = (gamma ? gamma[c] : 1.0) / sqrt((double)var[c] + (double)bc->eps);
            n->fuse.scale[c] = (float)sc;
            n->fuse.shift[c] = (float)(((b ? b[c] : 0.0) - mean[c]) * sc + (beta ? beta[c] : 0.0));
        }
    }
}

/* The epilogue of a fused chain (epilogue.c): the folded scale and shift, the folded
 * add's other input (the same shape; its sum is the unfused add's, to the bit: a float
 * sum of two values is the same in either order) and the activation. */
static st_epilogue epilogue_of(const st_exec *e, const st_node *n) {
    st_epilogue epi = {n->fuse.scale, n->fuse.shift, n->fuse.add ? X(e, &e->net->nodes[n->fuse.add]) : NULL,
                       n->fuse.act, n->fuse.slope};
    return epi;
}

/* y (outer, C, S) = the epilogue of y, in one pass (the layers other than convolutions,
 * which apply it as they make their output) */
static void fuse_epilogue(const st_exec *e, const st_node *n, int outer, int C, size_t S) {
    st_epilogue epi = epilogue_of(e, n);
    st_epilogue_apply(&epi, X(e, n), outer, C, S);
}

/* ---------------------------------------------------------------- the table */
static const st_op ops[] = {
    {"input", 0, 0, "shape", input_configure, input_print, nop_forward, nop_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"conv1d", 1, 1, "in_channels out_channels kernel_size stride padding dilation groups bias", conv1d_configure, conv_print, conv_forward, conv_backward, conv_work, conv_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"conv2d", 1, 1, "in_channels out_channels kernel_size stride padding dilation groups bias", conv2d_configure, conv_print, conv_forward, conv_backward, conv_work, conv_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"conv_transpose1d", 1, 1, "in_channels out_channels kernel_size stride padding output_padding output_size dilation groups bias", convt1d_configure, convt_print, convt_forward, convt_backward, convt_work, convt_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"conv_transpose2d", 1, 1, "in_channels out_channels kernel_size stride padding output_padding output_size dilation groups bias", convt2d_configure, convt_print, convt_forward, convt_backward, convt_work, convt_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"max_pool1d", 1, 1, "kernel_size stride padding dilation ceil_mode", maxpool1d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 1, 0, 0, ST_INPLACE_NONE},
    {"max_pool2d", 1, 1, "kernel_size stride padding dilation ceil_mode", maxpool2d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 1, 0, 0, ST_INPLACE_NONE},
    {"avg_pool1d", 1, 1, "kernel_size stride padding ceil_mode count_include_pad divisor_override", avgpool1d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"avg_pool2d", 1, 1, "kernel_size stride padding ceil_mode count_include_pad divisor_override", avgpool2d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"adaptive_avg_pool1d", 1, 1, "output_size", adaptive1d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"adaptive_avg_pool2d", 1, 1, "output_size", adaptive2d_configure, pool_print, pool_forward, pool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"upsample", 1, 1, "size scale_factor mode align_corners", upsample_configure, upsample_print, upsample_forward, upsample_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"max_unpool1d", 2, 2, "kernel_size stride padding output_size", unpool1d_configure, unpool_print, unpool_forward, unpool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"max_unpool2d", 2, 2, "kernel_size stride padding output_size", unpool2d_configure, unpool_print, unpool_forward, unpool_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"local_response_norm", 1, 1, "size alpha beta k", lrn_configure, lrn_print, lrn_forward, lrn_backward, NULL, NULL, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"batch_norm1d", 1, 1, "num_features eps momentum affine track_running_stats", bn1d_configure, bn_print, bn_forward, bn_backward, NULL, NULL, 0, 1, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"batch_norm2d", 1, 1, "num_features eps momentum affine track_running_stats", bn2d_configure, bn_print, bn_forward, bn_backward, NULL, NULL, 0, 1, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"dropout", 1, 1, "p", dropout_configure, dropout_print, dropout_forward, dropout_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_ELEMENTWISE},
    {"dropout2d", 1, 1, "p", dropout2d_configure, dropout_print, dropout_forward, dropout_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_ELEMENTWISE},
    {"linear", 1, 1, "in_features out_features bias", linear_configure, linear_print, linear_forward, linear_backward, NULL, linear_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"flatten", 1, 1, "start_dim", flatten_configure, flatten_print, flatten_forward, flatten_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_COPY},
    {"relu", 1, 1, "", relu_configure, act_print, act_forward, act_backward, NULL, NULL, 0, 0, ST_READS_OUTPUT, ST_INPLACE_ELEMENTWISE},
    {"leaky_relu", 1, 1, "negative_slope", leaky_configure, act_print, act_forward, act_backward, NULL, NULL, 0, 0, ST_READS_OUTPUT, ST_INPLACE_ELEMENTWISE},
    {"sigmoid", 1, 1, "", sigmoid_configure, act_print, act_forward, act_backward, NULL, NULL, 0, 0, ST_READS_OUTPUT, ST_INPLACE_ELEMENTWISE},
    {"tanh", 1, 1, "", tanh_configure, act_print, act_forward, act_backward, NULL, NULL, 0, 0, ST_READS_OUTPUT, ST_INPLACE_ELEMENTWISE},
    {"softmax", 1, 1, "dim", softmax_configure, empty_print, softmax_forward, softmax_backward, NULL, NULL, 0, 0, ST_READS_OUTPUT, ST_INPLACE_NONE},
    {"crop", 2, 2, "", crop_configure, empty_print, crop_forward, crop_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"add", 2, ST_MAX_INPUTS, "", add_configure, empty_print, add_forward, add_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_ELEMENTWISE},
    {"concat", 2, ST_MAX_INPUTS, "dim", concat_configure, concat_print, concat_forward, concat_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"supervise", 1, ST_MAX_INPUTS, "", supervise_configure, empty_print, supervise_forward, supervise_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"scaled_tanh", 1, 1, "A S", stanh_configure, stanh_print, stanh_forward, stanh_backward, NULL, NULL, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
    {"select", 1, 1, "channels", select_configure, select_print, select_forward, select_backward, NULL, NULL, 0, 0, 0, ST_INPLACE_NONE},
    {"rbf", 1, 1, "out_features", rbf_configure, rbf_print, rbf_forward, rbf_backward, NULL, rbf_macs, 0, 0, ST_READS_INPUTS, ST_INPLACE_NONE},
};

const st_op *st_find_op(const char *name) {
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    return NULL;
}

const char *st_op_names(void) {
    return "input, conv1d, conv2d, conv_transpose1d, conv_transpose2d, max_pool1d, max_pool2d, avg_pool1d, avg_pool2d, adaptive_avg_pool1d, adaptive_avg_pool2d, upsample, max_unpool1d, max_unpool2d, local_response_norm, batch_norm1d, batch_norm2d, dropout, dropout2d, linear, flatten, relu, leaky_relu, sigmoid, tanh, softmax, crop, add, concat, supervise, scaled_tanh, select, rbf";
}
