/* net.c - networks as graphs of named nodes: building, parameters, forward, loss,
 * backward, initialisation, weights by state_dict name, and per-node summaries.
 *
 * Nodes are kept in the order they were added, which is a topological order (a node
 * may only read earlier nodes), so forward is one loop up and backward one loop down.
 * Parameter values and gradients live in two flat arenas, so the optimiser is one loop
 * and zero_grad one memset. Node outputs, node gradients and workspaces live in an
 * activation arena laid out by a memory plan (see "memory plans" below and plan.c), so
 * that buffers whose lifetimes do not overlap share memory.
 */
#include "net.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_status st_net_new(st_net **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return st_fail(ST_ERR_NOMEM, "out of memory");
    (*out)->output = -1;
    (*out)->ignore_index = -100;
    (*out)->plan_kind = -1;
    (*out)->reuse = -1;
    (*out)->weights_version = 1;
    return ST_OK;
}

static void free_activations(st_net *net) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        free(n->idx);
        free(n->mask);
        free(n->fuse.scale);
        st_aligned_free(n->cols);
        n->cols = NULL;
        n->cols_stride = n->cols_cap = 0;
        n->idx = NULL;
        n->mask = NULL;
        n->fuse.scale = n->fuse.shift = NULL;
        n->idx_cap = n->mask_cap = 0;
        n->out.data = n->grad.data = NULL;
    }
    st_aligned_free(net->act);
    st_aligned_free(net->gact);
    free(net->zero_order);
    free(net->remat_order);
    net->act = net->gact = NULL;
    net->zero_order = net->remat_order = NULL;
    net->act_cap = net->gact_cap = 0;
    net->plan_kind = -1;
    net->gplan_batch = 0;
}

void st_net_free(st_net *net) {
    if (!net) return;
    free_activations(net);
    for (int i = 0; i < net->nnodes; i++) {
        free(net->nodes[i].name);
        free(net->nodes[i].saved);
        free(net->nodes[i].stats);
        st_aligned_free(net->nodes[i].prep);
    }
    for (int i = 0; i < net->nparams; i++) free(net->params[i].name);
    for (int i = 0; i < net->nbuffers; i++) { free(net->buffers[i].name); free(net->buffers[i].value.data); }
    free(net->buffers);
    free(net->nodes);
    free(net->params);
    st_aligned_free(net->value_arena);
    free(net->grad_block);
    st_aligned_free(net->work);
    for (int s = 0; s < ST_MAX_SHARDS; s++) st_aligned_free(net->shard_grad[s]);
    free(net);
}

size_t st_node_numel(const st_node *n) {
    size_t s = 1;
    for (int i = 0; i < n->ndim; i++) s *= (size_t)n->shape[i];
    return s;
}

st_node *st_net_input_node(st_net *net, st_node *n, int i) { return &net->nodes[n->inputs[i]]; }

/* ---------------------------------------------------------------- parameters */
int st_net_add_param(st_net *net, st_node *n, const char *suffix, int ndim, const int *shape, int fan_in, int is_bias) {
    if (n->nparams >= ST_MAX_PARAMS_PER_NODE) { st_fail(ST_ERR_ARG, "too many parameters in node"); return -1; }
    if (net->nparams == net->cap_params) {
        int cap = net->cap_params ? 2 * net->cap_params : 16;
        st_param *p = realloc(net->params, sizeof *p * cap);
        if (!p) { st_fail(ST_ERR_NOMEM, "out of memory"); return -1; }
        net->params = p;
        net->cap_params = cap;
    }
    st_param *p = &net->params[net->nparams];
    memset(p, 0, sizeof *p);
    size_t len = strlen(n->name) + strlen(suffix) + 2;
    p->name = malloc(len);
    if (!p->name) { st_fail(ST_ERR_NOMEM, "out of memory"); return -1; }
    snprintf(p->name, len, "%s.%s", n->name, suffix);
    p->node = (int)(n - net->nodes);
    p->is_bias = is_bias;
    p->fan_in = fan_in;
    p->value.ndim = p->grad.ndim = ndim;
    for (int i = 0; i < ndim; i++) p->value.shape[i] = p->grad.shape[i] = shape[i];
    n->params[n->nparams++] = net->nparams;
    return net->nparams++;
}

int st_net_add_buffer(st_net *net, st_node *n, const char *suffix, int ndim, const int *shape, float init_value,
                      int is_count) {
    if (net->nbuffers == net->cap_buffers) {
        int cap = net->cap_buffers ? 2 * net->cap_buffers : 16;
        st_buffer *b = realloc(net->buffers, sizeof *b * cap);
        if (!b) { st_fail(ST_ERR_NOMEM, "out of memory"); return -1; }
        net->buffers = b;
        net->cap_buffers = cap;
    }
    st_buffer *b = &net->buffers[net->nbuffers];
    memset(b, 0, sizeof *b);
    size_t len = strlen(n->name) + strlen(suffix) + 2, count = 1;
    b->name = malloc(len);
    if (!b->name) { st_fail(ST_ERR_NOMEM, "out of memory"); return -1; }
    snprintf(b->name, len, "%s.%s", n->name, suffix);
    b->node = (int)(n - net->nodes);
    b->is_count = is_count;
    b->init_value = init_value;
    b->value.ndim = ndim;
    for (int i = 0; i < ndim; i++) { b->value.shape[i] = shape[i]; count *= (size_t)shape[i]; }
    if (!is_count) {
        b->value.data = malloc(sizeof(float) * count);
        if (!b->value.data) { free(b->name); st_fail(ST_ERR_NOMEM, "out of memory"); return -1; }
        for (size_t i = 0; i < count; i++) b->value.data[i] = init_value;
    }
    return net->nbuffers++;
}

/* Allocates the arenas when parameters were added since the last call; values that
 * were already there are kept. The gradient arena comes from calloc, whose large blocks
 * are fresh zero pages that take no memory until written: inference never touches it. */
static st_status ensure_arenas(st_net *net) {
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += st_tensor_numel(&net->params[i].value);
    if (total == net->arena_floats && net->value_arena) return ST_OK;
    float *v = st_aligned_alloc(sizeof(float) * (total ? total : 1));
    void *gblock = calloc(1, sizeof(float) * (total ? total : 1) + 64);
    float *g = gblock ? (float *)(((uintptr_t)gblock + 63) & ~(uintptr_t)63) : NULL; /* 64-byte aligned */
    if (!v || !g) {
        st_aligned_free(v);
        free(gblock);
        return st_fail(ST_ERR_NOMEM, "out of memory for %zu parameters", total);
    }
    size_t at = 0;
    for (int i = 0; i < net->nparams; i++) {
        st_param *p = &net->params[i];
        size_t k = st_tensor_numel(&p->value);
        if (p->value.data) memcpy(v + at, p->value.data, sizeof(float) * k);
        p->value.data = v + at;
        p->grad.data = g + at;
        at += k;
    }
    st_aligned_free(net->value_arena);
    free(net->grad_block);
    for (int s = 0; s < ST_MAX_SHARDS; s++) { st_aligned_free(net->shard_grad[s]); net->shard_grad[s] = NULL; }
    net->value_arena = v;
    net->grad_arena = g;
    net->grad_block = gblock;
    net->arena_floats = total;
    return ST_OK;
}

int st_net_num_params(const st_net *net) { return net->nparams; }
const char *st_net_param_name(const st_net *net, int i) { return i >= 0 && i < net->nparams ? net->params[i].name : NULL; }

int64_t st_net_param_count(const st_net *net) {
    int64_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += (int64_t)st_tensor_numel(&net->params[i].value);
    return total;
}

st_tensor *st_net_param(st_net *net, int i) {
    if (i < 0 || i >= net->nparams || ensure_arenas(net)) return NULL;
    net->weights_version++; /* the caller may write the values */
    return &net->params[i].value;
}

st_tensor *st_net_param_grad(st_net *net, int i) {
    if (i < 0 || i >= net->nparams || ensure_arenas(net)) return NULL;
    return &net->params[i].grad;
}

/* For the optimiser: the flat arenas. */
st_status st_net_arenas(st_net *net, float **values, float **grads, size_t *n) {
    st_status rc = ensure_arenas(net);
    if (rc) return rc;
    net->weights_version++; /* an optimiser step writes the values */
    *values = net->value_arena;
    *grads = net->grad_arena;
    *n = net->arena_floats;
    return ST_OK;
}

void st_net_zero_grad(st_net *net) {
    if (net->grad_arena) memset(net->grad_arena, 0, sizeof(float) * net->arena_floats);
}

/* ---------------------------------------------------------------- building */
static int find_node(const st_net *net, const char *name) {
    for (int i = 0; i < net->nnodes; i++)
        if (!strcmp(net->nodes[i].name, name)) return i;
    return -1;
}

/* Is key one of the op's space-separated argument names? */
static int known_arg(const st_op *op, const char *key) {
    size_t k = strlen(key);
    for (const char *p = op->args; *p;) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == k && !strncmp(p, key, k)) return 1;
        p += len + (e ? 1 : 0);
    }
    return 0;
}

st_status st_net_add(st_net *net, const char *line) {
    char name[128], opname[64];
    st_args args;
    int empty;
    st_status rc = st_parse_line(line, name, sizeof name, opname, sizeof opname, &args, &empty);
    if (rc || empty) return rc;
    const st_op *op = st_find_op(opname);
    if (!op) return st_fail(ST_ERR_PARSE, "node '%s': unknown op '%s' (known: %s)", name, opname, st_op_names());
    if (find_node(net, name) >= 0) return st_fail(ST_ERR_PARSE, "node '%s' is defined twice", name);
    for (int i = 0; i < args.nkw; i++)
        if (!known_arg(op, args.key[i])) {
            if (op->args[0])
                return st_fail(ST_ERR_PARSE, "node '%s': unknown argument '%s' for %s (known: %s)", name, args.key[i], opname, op->args);
            return st_fail(ST_ERR_PARSE, "node '%s': unknown argument '%s' (%s takes no arguments)", name, args.key[i], opname);
        }
    if (op->min_inputs == 0 && net->nnodes > 0)
        return st_fail(ST_ERR_PARSE, "node '%s': only the first node can be an input (one input per network)", name);
    if (op->min_inputs == 0 && args.npos > 0) return st_fail(ST_ERR_PARSE, "node '%s': %s takes no inputs", name, opname);
    if (op->min_inputs > 0 && net->nnodes == 0)
        return st_fail(ST_ERR_PARSE, "node '%s': the first node must be an input, e.g. \"x = input(shape=(1, 40))\"", name);
    if (args.npos > op->max_inputs || (args.npos > 0 && args.npos < op->min_inputs) || (args.npos == 0 && op->min_inputs > 1))
        return st_fail(ST_ERR_PARSE, "node '%s': %s takes %d to %d inputs, got %d", name, opname, op->min_inputs,
                       op->max_inputs, args.npos);
    if (net->nnodes == net->cap_nodes) {
        int cap = net->cap_nodes ? 2 * net->cap_nodes : 16;
        st_node *nodes = realloc(net->nodes, sizeof *nodes * cap);
        if (!nodes) return st_fail(ST_ERR_NOMEM, "out of memory");
        net->nodes = nodes;
        net->cap_nodes = cap;
    }
    st_node *n = &net->nodes[net->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    if (op->min_inputs > 0) {
        if (args.npos == 0) { n->ninputs = 1; n->inputs[0] = net->nnodes - 1; }
        for (int i = 0; i < args.npos; i++) {
            int j = find_node(net, args.pos[i].str);
            if (j < 0) return st_fail(ST_ERR_PARSE, "node '%s': input '%s' is not defined above", name, args.pos[i].str);
            n->inputs[n->ninputs++] = j;
        }
    }
    n->name = st_strdup(name);
    if (!n->name) return st_fail(ST_ERR_NOMEM, "out of memory");
    int params_before = net->nparams, buffers_before = net->nbuffers;
    rc = op->configure(net, n, &args);
    for (int i = 0; !rc && i < args.nkw; i++)
        if (!args.used[i]) rc = st_fail(ST_ERR_PARSE, "unknown argument '%s' for %s", args.key[i], opname);
    if (rc) {
        for (int i = params_before; i < net->nparams; i++) free(net->params[i].name);
        net->nparams = params_before;
        for (int i = buffers_before; i < net->nbuffers; i++) { free(net->buffers[i].name); free(net->buffers[i].value.data); }
        net->nbuffers = buffers_before;
        free(n->saved);
        free(n->stats);
        n->saved = NULL;
        n->stats = NULL;
        free(n->name);
        return st_fail_prefix(rc, "node '%s' (%s): ", name, opname);
    }
    n->numel = st_node_numel(n);
    net->nnodes++;
    net->output = net->nnodes - 1;
    net->fwd_done = net->loss_done = 0;
    net->plan_kind = -1; /* the memory plans are for the old graph */
    net->gplan_batch = 0;
    net->zero_key = 0;
    return ST_OK;
}

/* ---------------------------------------------------------------- initialisation */
st_status st_net_init(st_net *net, st_init how, uint64_t seed) {
    st_status rc = ensure_arenas(net);
    if (rc) return rc;
    net->weights_version++;
    st_rng rng;
    st_rng_seed(&rng, seed);
    for (int i = 0; i < net->nparams; i++) {
        st_param *p = &net->params[i];
        size_t k = st_tensor_numel(&p->value);
        double fan = p->fan_in > 0 ? p->fan_in : 1;
        if (p->init_const) {
            for (size_t j = 0; j < k; j++) p->value.data[j] = p->init_value;
        } else if (how == ST_INIT_HE) {
            /* Kaiming normal (fan_in, ReLU gain): N(0, 2/fan_in); biases zero */
            double std = sqrt(2.0 / fan);
            for (size_t j = 0; j < k; j++) p->value.data[j] = p->is_bias ? 0.0f : (float)(std * st_rng_normal(&rng));
        } else {
            /* PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases */
            double bound = 1.0 / sqrt(fan);
            for (size_t j = 0; j < k; j++) p->value.data[j] = (float)((2 * st_rng_uniform(&rng) - 1) * bound);
        }
    }
    for (int i = 0; i < net->nbuffers; i++) {
        st_buffer *b = &net->buffers[i];
        if (b->is_count) net->nodes[b->node].u.bn.num_batches_tracked = 0;
        else if (!b->fixed) for (size_t j = 0; j < st_tensor_numel(&b->value); j++) b->value.data[j] = b->init_value;
    }
    st_rng_seed(&net->rng, seed ^ 0x5DEECE66DULL); /* dropout masks: their own stream */
    return ST_OK;
}

/* ---------------------------------------------------------------- running
 * Small networks are run data-parallel: the batch is cut into shards that go through
 * the whole graph side by side, one per thread, each with its own workspace and its own
 * parameter-gradient arena; the arenas are then added in shard order. That costs one
 * fork/join per pass instead of one per op, which is what makes two cores pay off on
 * networks whose layers take microseconds. The number of shards depends only on the
 * batch and the network, never on the thread count, so results are identical for any
 * number of threads. Large networks use one shard and parallel kernels instead. The
 * shards' team has ST_MAX_SHARDS threads and the kernels inside a shard run serially
 * (they do not open parallel regions inside one), so shards times kernel threads never
 * exceeds the cores asked for. */
static int choose_shards(const st_net *net, int batch, int train) {
    int64_t macs = 0;
    for (int i = 0; i < net->nnodes; i++) {
        if (train && net->nodes[i].op->couples_batch) return 1; /* batch norm needs the whole batch */
        if (net->nodes[i].op->macs) macs += net->nodes[i].op->macs(&net->nodes[i]);
    }
    if (batch < 64 || macs > 1000000) return 1;
    return ST_MAX_SHARDS;
}

static int shard_begin(int batch, int nshards, int s) { return (int)((long)batch * s / nshards); }

static st_exec shard_exec(st_net *net, int s, int train, int run) {
    st_exec e;
    e.net = net;
    e.offset = shard_begin(net->batch, net->nshards, s);
    e.batch = shard_begin(net->batch, net->nshards, s + 1) - e.offset;
    e.train = train;
    e.run = run;
    e.shard = s;
    e.work = net->work + (size_t)s * net->work_stride;
    e.pgrad = s == 0 ? net->grad_arena : net->shard_grad[s];
    return e;
}

/* Intermediate supervision. When the output node is a `supervise` node, its inputs are
 * the heads: the loss is applied to each head against the same target and the losses
 * are summed (PyTorch: sum(F.mse_loss(h, t) for h in heads)). The loss writes each head's
 * own loss gradient into that head's gradient buffer (as it writes the output's gradient
 * for an ordinary network), backward_shard leaves those buffers alone instead of zeroing
 * them, and the gradients flowing back from later nodes (a head feeds the next stack)
 * accumulate on top of the seed. The supervise node's own backward does nothing. Each
 * shard seeds and runs its own batch slice, so data-parallel shards work unchanged. */
static int supervised(const st_net *net) {
    return net->output >= 0 && !strcmp(net->nodes[net->output].op->name, "supervise");
}

static int is_head(const st_net *net, int i) {
    if (!supervised(net)) return 0;
    const st_node *o = &net->nodes[net->output];
    for (int k = 0; k < o->ninputs; k++)
        if (o->inputs[k] == i) return 1;
    return 0;
}

/* ---------------------------------------------------------------- memory plans
 * Where node outputs and node gradients live. A pass is a sequence of steps: the forward
 * of node i is step i, the loss step o + 1 (o: the output node), the backward of node i
 * step 2o + 2 - i, and END (2o + 3) stands for "after the pass". A buffer is live from
 * the step that writes it to the last step that reads it:
 *   - an output is read by the forward of the nodes that take it as input; in a training
 *     step also by the backward of those that read their inputs (a convolution needs its
 *     input for the weight gradient, an add nothing: st_op.bwd_reads), and by its own
 *     backward if that reads its output (ReLU: y > 0 exactly where x > 0, so ReLU's
 *     backward reads y and a batch norm's output before a ReLU dies at the ReLU);
 *   - the network's output and the heads of intermediate supervision are kept (to END);
 *   - a node's gradient is zeroed just before the backward of its last consumer (the
 *     first to add into it) and read for the last time by its own backward; the input's
 *     gradient (st_net_input_grad) is kept.
 * plan.c then places the buffers in one arena so that buffers live at a common step do
 * not overlap: the activations of late layers and the gradients of early ones share
 * memory. An elementwise node whose input nobody reads after it writes over its input
 * (ReLU after a batch norm), and a copy (flatten; dropout in eval mode) simply is its
 * input. In st_net_run the fused nodes (st_fuse_plan) share their chain's first buffer.
 *
 * One plan per entry point:
 *   PLAN_FORWARD (st_net_forward): every output kept and none shared, so st_net_node_output
 *     shows every node and st_net_loss / st_net_backward may follow; their node gradients
 *     get a plan of their own in net->gact (plan_grads).
 *   PLAN_STEP (st_net_step): outputs and gradients in one arena, shared over the pass, so
 *     that afterwards only the output, the heads and the input gradient are kept. Networks
 *     with less than REUSE_MIN_BYTES of outputs keep them all, which keeps
 *     st_net_node_output and st_net_find_nonfinite complete where memory is no concern.
 *   PLAN_RUN (st_net_run): eval mode, outputs only, fused and shared.
 * Data-parallel shards (slices of one batch at different nodes at the same time) never
 * share: their buffers are live for the whole pass. Only where numbers are stored
 * changes, never the numbers: zeroing a gradient just before its first use instead of
 * at the start of backward adds the same values in the same order. */
enum { PLAN_FORWARD = 0, PLAN_STEP = 1, PLAN_RUN = 2 };
#define REUSE_MIN_BYTES ((size_t)64 << 20)

static int bwd_step(const st_net *net, int i) { return 2 * net->output + 2 - i; }
static int end_step(const st_net *net) { return 2 * net->output + 3; }
static int max_int(int a, int b) { return a > b ? a : b; }

/* The last forward step that reads node m's output (m itself when none does), and in a
 * training step the first and last backward steps that read it (*bfirst > *blast: none). */
static int output_reads(const st_net *net, int m, int kind, int *bfirst, int *blast) {
    const st_node *n = &net->nodes[m];
    int last = m;
    *bfirst = end_step(net);
    *blast = 0;
    for (int c = m + 1; c < net->nnodes; c++) {
        const st_node *cn = &net->nodes[c];
        for (int k = 0; k < cn->ninputs; k++) {
            if (cn->inputs[k] != m) continue;
            last = max_int(last, c);
            if (kind == PLAN_STEP && cn->needs_grad && (st_node_bwd_reads(cn) & ST_READS_INPUTS)) {
                if (bwd_step(net, c) < *bfirst) *bfirst = bwd_step(net, c);
                *blast = max_int(*blast, bwd_step(net, c));
            }
        }
    }
    if (kind == PLAN_STEP && n->needs_grad && (st_node_bwd_reads(n) & ST_READS_OUTPUT)) {
        if (bwd_step(net, m) < *bfirst) *bfirst = bwd_step(net, m);
        *blast = max_int(*blast, bwd_step(net, m));
    }
    return last;
}

/* The last step of the pass that reads node m's output. */
static int output_needed_until(const st_net *net, int m, int kind, int reuse) {
    if (!reuse || m == net->output || is_head(net, m)) return end_step(net);
    int bfirst, blast, last = output_reads(net, m, kind, &bfirst, &blast);
    return max_int(last, blast);
}

/* The node before whose backward node j's gradient is zeroed: its last consumer that
 * runs a backward (needs[c]), the first to add into it; j itself when there is none. */
static int zero_node(const st_net *net, int j, const int *needs) {
    for (int c = net->nnodes - 1; c > j; c--) {
        if (!needs[c]) continue;
        for (int k = 0; k < net->nodes[c].ninputs; k++)
            if (net->nodes[c].inputs[k] == j) return c;
    }
    return j;
}

/* The live interval of node j's gradient (j needs one). */
static st_live grad_live(const st_net *net, int j, const int *needs, int reuse) {
    st_live b = {net->nodes[j].numel * (size_t)net->batch, 0, end_step(net), 0};
    if (!reuse) return b;
    b.first = j == net->output || is_head(net, j) ? net->output + 1 : bwd_step(net, zero_node(net, j, needs));
    if (j > 0) b.last = bwd_step(net, j);
    return b;
}

/* Grows an arena to `floats` (contents are not kept). */
static st_status ensure_arena(float **arena, size_t *cap, size_t floats, const char *what) {
    if (floats <= *cap && *arena) return ST_OK;
    st_aligned_free(*arena);
    *arena = st_aligned_alloc(sizeof(float) * (floats ? floats : 16));
    *cap = *arena ? floats : 0;
    if (!*arena) return st_fail(ST_ERR_NOMEM, "out of memory for %.1f MB of %s", floats * 4e-6, what);
    return ST_OK;
}

/* Works out the plan of `kind` for net->batch and net->nshards (offsets in the nodes). */
static st_status make_plan(st_net *net, int kind, int reuse) {
    int N = net->nnodes, E = end_step(net);
    int *root = calloc((size_t)N, sizeof(int)), *until = calloc((size_t)N, sizeof(int)), *need = calloc((size_t)N, sizeof(int));
    int *pinned = calloc((size_t)N, sizeof(int)), *writer = calloc((size_t)N, sizeof(int)), *holds = calloc((size_t)N, sizeof(int));
    st_live *bufs = malloc(sizeof(st_live) * 5 * (size_t)N);
    /* which buffer: outputs, gradients, forward and backward workspaces, recomputed outputs */
    int *buf_of = malloc(sizeof(int) * 5 * (size_t)N);
    st_status rc = ST_OK;
    if (!root || !until || !need || !pinned || !writer || !holds || !bufs || !buf_of) { rc = st_fail(ST_ERR_NOMEM, "out of memory for the memory plan"); goto done; }
    for (int m = 0; m < N; m++) pinned[m] = m == net->output || is_head(net, m);
    if (kind == PLAN_RUN && (rc = st_fuse_plan(net, pinned))) goto done;
    /* outputs: which buffer each node writes, and until when that buffer is read */
    /* writer[r]: the last node that wrote buffer r so far; holds[m]: the writer whose
     * values node m's output is (itself, unless it is a copy) */
    int nb = 0;
    for (int m = 1; m < N; m++) {
        st_node *n = &net->nodes[m];
        int p = n->ninputs ? n->inputs[0] : 0, r = m, copy = 0, bfirst, blast;
        need[m] = output_needed_until(net, m, kind, reuse);
        /* recomputed for backward (st_node_can_recompute): kept only for the forward pass,
         * and a second buffer from the first to the last backward that reads it */
        n->remat_at = 0;
        if (kind == PLAN_STEP && reuse && need[m] != E && st_node_can_recompute(net, n)) {
            int fwd_last = output_reads(net, m, kind, &bfirst, &blast);
            if (bfirst <= blast) {
                need[m] = fwd_last;
                n->remat_at = 2 * net->output + 2 - bfirst;
                buf_of[4 * N + m] = nb;
                bufs[nb++] = (st_live){n->numel * (size_t)net->batch, bfirst, blast, 0};
            }
        }
        if (kind == PLAN_RUN && n->skip) {
            r = root[n->skip]; /* computed by the chain's first node, in its buffer */
        } else if (reuse && p > 0 && net->nodes[p].numel == n->numel) {
            int how = st_node_inplace(n, kind == PLAN_STEP);
            if (how == ST_INPLACE_COPY) r = root[p], copy = 1;
            else if (how == ST_INPLACE_ELEMENTWISE && until[root[p]] <= m) r = root[p];
        }
        root[m] = r;
        until[r] = max_int(r == m ? m : until[r], need[m]);
        if (!copy) writer[r] = m;
        holds[m] = writer[r];
        if (r == m) {
            buf_of[m] = nb;
            bufs[nb++] = (st_live){n->numel * (size_t)net->batch, reuse ? m : 0, E, 0};
        }
    }
    for (int m = 1; m < N; m++)
        if (root[m] == m) bufs[buf_of[m]].last = reuse ? until[m] : E;
    /* gradients (a training step) */
    if (kind == PLAN_STEP) {
        int *needs = pinned; /* reuse the array: needs[j] = nodes[j].needs_grad */
        for (int j = 0; j < N; j++) needs[j] = net->nodes[j].needs_grad;
        for (int j = 0; j < N; j++) {
            if (!needs[j]) continue;
            buf_of[N + j] = nb;
            bufs[nb++] = grad_live(net, j, needs, reuse);
        }
    }
    /* workspaces (reuse only: shards each need their own, at every step): live during
     * the node's forward and backward step only, so they fit between dead activations */
    for (int m = 1; reuse && m < N; m++) {
        st_node *n = &net->nodes[m];
        size_t w = n->op->work_size ? n->op->work_size(n, net->batch) : 0;
        if (!w) continue;
        buf_of[2 * N + m] = nb;
        bufs[nb++] = (st_live){w, m, m, 0};
        if (kind == PLAN_STEP && n->needs_grad) {
            buf_of[3 * N + m] = nb;
            bufs[nb++] = (st_live){w, bwd_step(net, m), bwd_step(net, m), 0};
        }
    }
    size_t floats = st_plan_place(bufs, nb);
    if (floats == (size_t)-1) { rc = ST_ERR_NOMEM; goto done; }
    if ((rc = ensure_arena(&net->act, &net->act_cap, floats, "activations"))) goto done;
    for (int m = 0; m < N; m++) {
        st_node *n = &net->nodes[m];
        n->out_off = m > 0 ? bufs[buf_of[root[m]]].offset : 0;
        n->kept = m == 0 || (need[m] == E && holds[m] == writer[root[m]]);
        n->grad_off = kind == PLAN_STEP && n->needs_grad ? bufs[buf_of[N + m]].offset : (size_t)-1;
        int has_work = reuse && m > 0 && n->op->work_size && n->op->work_size(n, net->batch);
        n->fwork_off = has_work ? bufs[buf_of[2 * N + m]].offset : (size_t)-1;
        n->bwork_off = has_work && kind == PLAN_STEP && n->needs_grad ? bufs[buf_of[3 * N + m]].offset : (size_t)-1;
        n->remat_off = n->remat_at ? bufs[buf_of[4 * N + m]].offset : 0;
    }
    /* the recomputations in backward order */
    free(net->remat_order);
    if (!(net->remat_order = malloc(sizeof(int) * (size_t)N))) {
        rc = st_fail(ST_ERR_NOMEM, "out of memory");
        goto done;
    }
    net->nremat = 0;
    for (int i = N - 1; i >= 1; i--)
        for (int m = 1; m < N; m++)
            if (net->nodes[m].remat_at == i) net->remat_order[net->nremat++] = m;
    net->work_in_act = reuse;
    net->plan_kind = kind;
done:
    free(root);
    free(until);
    free(need);
    free(pinned);
    free(writer);
    free(holds);
    free(bufs);
    free(buf_of);
    return rc;
}

/* Sizes and plans everything a pass of `kind` over `batch` samples needs: shards, node
 * outputs (and gradients), pooling indices, dropout masks, workspaces; then points the
 * nodes at their memory. Node 0's output is the caller's tensor (prepare_forward). */
static st_status plan_pass(st_net *net, int batch, int kind, int train, int want_input_grad) {
    int nshards = choose_shards(net, batch, train);
    int shard_max = (batch + nshards - 1) / nshards;
    size_t work = 0, outs = 0;
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        size_t need = n->numel * (size_t)batch;
        n->out.ndim = n->grad.ndim = n->ndim + 1;
        n->out.shape[0] = n->grad.shape[0] = batch;
        for (int k = 0; k < n->ndim; k++) n->out.shape[k + 1] = n->grad.shape[k + 1] = n->shape[k];
        if (n->op->work_size) {
            size_t w = n->op->work_size(n, shard_max);
            if (w > work) work = w;
        }
        if (i == 0) continue; /* the input node aliases the caller's data */
        outs += need * sizeof(float);
        if (n->op->keeps_indices && need > n->idx_cap) {
            free(n->idx);
            n->idx = malloc(sizeof(int32_t) * need);
            n->idx_cap = n->idx ? need : 0;
            if (!n->idx) return st_fail(ST_ERR_NOMEM, "node '%s': out of memory for pooling indices", n->name);
        }
        if (!strncmp(n->op->name, "dropout", 7) && need > n->mask_cap) {
            free(n->mask);
            n->mask = malloc(need);
            n->mask_cap = n->mask ? need : 0;
            if (!n->mask) return st_fail(ST_ERR_NOMEM, "node '%s': out of memory for the dropout mask", n->name);
        }
    }
    int reuse = nshards == 1 && kind != PLAN_FORWARD && net->reuse != 0 &&
                (kind == PLAN_RUN || net->reuse == 1 || outs >= REUSE_MIN_BYTES);
    /* one workspace per shard, shared by all nodes (with reuse the plan places them) */
    work = (work + 15) & ~(size_t)15; /* keep each shard's workspace 64-byte aligned */
    if (reuse) {
        st_aligned_free(net->work);
        net->work = NULL;
        net->work_cap = work = 0;
    } else if (work * nshards > net->work_cap || !net->work) {
        st_aligned_free(net->work);
        net->work = st_aligned_alloc(sizeof(float) * (work > 0 ? work * nshards : 16));
        net->work_cap = net->work ? work * nshards : 0;
        if (!net->work) return st_fail(ST_ERR_NOMEM, "out of memory for %zu floats of workspace", work * nshards);
    }
    net->work_stride = work;
    net->nshards = nshards;
    net->batch = batch;
    int flags = reuse | want_input_grad << 1 | train << 2 | nshards << 3;
    if (net->plan_kind != kind || net->plan_batch != batch || net->plan_flags != flags) {
        net->plan_kind = -1;
        st_status rc = make_plan(net, kind, reuse);
        if (rc) return rc;
        net->plan_kind = kind;
        net->plan_batch = batch;
        net->plan_flags = flags;
    }
    net->partial = 0;
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (i > 0) n->out.data = net->act + n->out_off;
        if (n->grad_off != (size_t)-1 && kind == PLAN_STEP) n->grad.data = net->act + n->grad_off;
        if (!n->kept) net->partial = 1;
    }
    return ST_OK;
}

/* The workspace of node n for its forward or backward in shard e. */
static float *node_work(const st_exec *e, const st_node *n, int backward) {
    size_t off = backward ? n->bwork_off : n->fwork_off;
    if (e->net->work_in_act && off != (size_t)-1) return e->net->act + off;
    return e->work;
}

/* The node gradients of st_net_loss and st_net_backward after st_net_forward, in
 * net->gact. Planned for every node that could need one (as if the input gradient were
 * wanted), since st_net_loss writes the output's gradient before st_net_backward says. */
static st_status plan_grads(st_net *net) {
    int N = net->nnodes;
    if (net->gplan_batch != net->batch || net->gplan_shards != net->nshards) {
        int *needs = calloc((size_t)N, sizeof(int)), *buf_of = calloc((size_t)N, sizeof(int));
        st_live *bufs = malloc(sizeof(st_live) * (size_t)N);
        st_status rc = ST_OK;
        if (!needs || !buf_of || !bufs) rc = st_fail(ST_ERR_NOMEM, "out of memory for the memory plan");
        int nb = 0, reuse = net->nshards == 1 && net->reuse != 0;
        for (int j = 0; !rc && j < N; j++) {
            const st_node *n = &net->nodes[j];
            needs[j] = j == 0 || n->nparams > 0 || j == net->output;
            for (int k = 0; k < n->ninputs; k++) needs[j] |= needs[n->inputs[k]];
        }
        for (int j = 0; !rc && j < N; j++)
            if (needs[j]) {
                buf_of[j] = nb;
                bufs[nb++] = grad_live(net, j, needs, reuse);
            }
        size_t floats = rc ? 0 : st_plan_place(bufs, nb);
        if (!rc && floats == (size_t)-1) rc = ST_ERR_NOMEM;
        if (!rc) rc = ensure_arena(&net->gact, &net->gact_cap, floats, "gradients");
        for (int j = 0; !rc && j < N; j++) net->nodes[j].bgrad_off = needs[j] ? bufs[buf_of[j]].offset : (size_t)-1;
        free(needs);
        free(buf_of);
        free(bufs);
        if (rc) { net->gplan_batch = 0; return rc; }
        net->gplan_batch = net->batch;
        net->gplan_shards = net->nshards;
    }
    for (int j = 0; j < N; j++) {
        st_node *n = &net->nodes[j];
        n->grad.data = n->bgrad_off != (size_t)-1 ? net->gact + n->bgrad_off : NULL;
    }
    return ST_OK;
}

/* The parameter-gradient arenas of shards 1... */
static st_status ensure_shard_grads(st_net *net) {
    for (int s = 1; s < net->nshards; s++)
        if (!net->shard_grad[s]) {
            net->shard_grad[s] = st_aligned_alloc(sizeof(float) * (net->arena_floats ? net->arena_floats : 1));
            if (!net->shard_grad[s]) return st_fail(ST_ERR_NOMEM, "out of memory for gradients");
        }
    return ST_OK;
}

static int shards_in_parallel(const st_net *net) { return net->nshards > 1 && st_get_threads() > 1; }

void (*st_run_probe)(const st_net *net, int node, int after);

static void forward_shard(st_net *net, int s, int train, int run) {
    st_exec e = shard_exec(net, s, train, run), en = e;
    void (*probe)(const st_net *, int, int) = run ? st_run_probe : NULL;
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (run && n->skip) continue;
        en.work = node_work(&e, n, 0);
        if (probe) probe(net, i, 0);
        n->op->forward(&en, n);
        if (probe) probe(net, i, 1);
    }
}

/* Which gradients backward zeroes and when: every node that needs one except the
 * output and the heads (the loss wrote those), just before the backward of zero_node;
 * except where that backward writes the gradient instead of adding to it (bwd_fresh:
 * a convolution, the gradient's first and only writer there), and except, with
 * st_net_step's fusion, a fused convolution's own gradient (nothing reads it). The
 * fusion's pairs are marked here too, for the same graph. */
static st_status order_zeroing(st_net *net) {
    int key = net->want_input_grad + 1 + 2 * net->step_fused;
    if (net->zero_order && net->zero_key == key) return ST_OK; /* (depends on nothing else) */
    int N = net->nnodes, *needs = malloc(sizeof(int) * (size_t)N), *pinned = malloc(sizeof(int) * (size_t)N);
    free(net->zero_order);
    net->zero_order = malloc(sizeof(int) * (size_t)N);
    if (!needs || !pinned || !net->zero_order) {
        free(needs);
        free(pinned);
        return st_fail(ST_ERR_NOMEM, "out of memory");
    }
    for (int j = 0; j < N; j++) {
        needs[j] = net->nodes[j].needs_grad;
        pinned[j] = j == net->output || is_head(net, j);
        net->nodes[j].bwd_fresh = 0;
    }
    if (net->step_fused) st_train_fuse_plan(net, pinned);
    net->nzero = 0;
    for (int j = N - 1; j >= 0; j--) {
        st_node *n = &net->nodes[j];
        if (!n->needs_grad || pinned[j] || (net->step_fused && n->train_relu)) continue;
        n->zero_at = zero_node(net, j, needs);
        st_node *z = &net->nodes[n->zero_at];
        if (n->zero_at != j && st_node_bwd_can_write(z) && z->inputs[0] == j) {
            z->bwd_fresh = 1;
            continue;
        }
        /* insertion by zero_at, latest first (j runs down, so ties keep node order) */
        int at = net->nzero;
        while (at > 0 && net->nodes[net->zero_order[at - 1]].zero_at < n->zero_at) at--;
        memmove(net->zero_order + at + 1, net->zero_order + at, sizeof(int) * (size_t)(net->nzero - at));
        net->zero_order[at] = j;
        net->nzero++;
    }
    free(needs);
    free(pinned);
    net->zero_key = key;
    return ST_OK;
}

/* Runs the graph backwards over this shard's slice; every backward accumulates, into
 * gradients zeroed just before their first use (and a private parameter-gradient arena
 * for shards after the first). */
static void backward_shard(st_net *net, int s) {
    st_exec e = shard_exec(net, s, 1, 0), en = e;
    if (s > 0) memset(e.pgrad, 0, sizeof(float) * net->arena_floats);
    int z = 0, r = 0;
    for (int i = net->output; i >= 1; i--) {
        for (; z < net->nzero && net->nodes[net->zero_order[z]].zero_at >= i; z++) {
            st_node *j = &net->nodes[net->zero_order[z]];
            memset(G(&e, j), 0, sizeof(float) * j->numel * e.batch);
        }
        for (; r < net->nremat && net->nodes[net->remat_order[r]].remat_at == i; r++) {
            st_node *m = &net->nodes[net->remat_order[r]];
            m->out.data = net->act + m->remat_off;
            st_node_recompute(&e, m);
        }
        st_node *n = &net->nodes[i];
        if (!n->needs_grad) continue;
        en.work = node_work(&e, n, 1);
        n->op->backward(&en, n);
    }
    for (; z < net->nzero; z++) {
        st_node *j = &net->nodes[net->zero_order[z]];
        memset(G(&e, j), 0, sizeof(float) * j->numel * e.batch);
    }
}

/* Checks x against the input node, plans the pass, points the input node at x's data. */
static st_status prepare_forward(st_net *net, const st_tensor *x, int kind, int train, int want_input_grad) {
    if (net->nnodes == 0) return st_fail(ST_ERR_STATE, "the network has no nodes");
    st_node *in = &net->nodes[0];
    char want[128], got[128];
    int ok = x && x->ndim >= 1 && x->shape[0] > 0;
    size_t per = 1;
    for (int i = 1; ok && i < x->ndim; i++) per *= (size_t)x->shape[i];
    /* the input must match the input node's shape; a flat (N, F) input with the same
     * number of values per sample is accepted too (MNIST-1D rows for a (1, 40) input) */
    if (ok) {
        int same = x->ndim == in->ndim + 1 && !memcmp(x->shape + 1, in->shape, sizeof(int) * in->ndim);
        ok = same || per == in->numel;
    }
    if (!ok) {
        int full[ST_MAX_DIMS];
        full[0] = -1;
        for (int i = 0; i < in->ndim; i++) full[i + 1] = in->shape[i];
        st_shape_str(in->ndim + 1, full, want, sizeof want);
        if (x) st_shape_str(x->ndim, x->shape, got, sizeof got); else strcpy(got, "nothing");
        return st_fail(ST_ERR_SHAPE, "input '%s' expects shape %s (N = batch), got %s", in->name, want, got);
    }
    st_status rc = ensure_arenas(net);
    if (rc) return rc;
    net->fwd_done = net->loss_done = 0;
    net->step_fused = net->outputs_lazy = 0; /* (st_net_step turns them on after planning) */
    if (kind != PLAN_STEP) net->want_input_grad = 0; /* (its memory may be reused now) */
    if ((rc = plan_pass(net, x->shape[0], kind, train, want_input_grad))) return rc;
    in->out.data = x->data;
    if (train) {
        for (int i = 1; i < net->nnodes; i++) {
            st_node *n = &net->nodes[i];
            /* batch norm in training needs more than one value per channel (as PyTorch) */
            if (n->op->couples_batch && (size_t)net->batch * (n->numel / n->shape[0]) < 2)
                return st_fail(ST_ERR_SHAPE, "node '%s': Expected more than 1 value per channel when training, got input %s",
                               n->name, st_shape_str(n->out.ndim, n->out.shape, want, sizeof want));
            /* dropout masks for the whole batch, drawn before the shards run, so they do not
             * depend on how the batch is split */
            if (n->mask) {
                size_t count = n->u.drop.planes ? (size_t)net->batch * n->shape[0] : n->numel * (size_t)net->batch;
                st_dropout_mask(n->mask, count, n->u.drop.p, &net->rng);
            }
        }
    }
    return ST_OK;
}

/* Runs the forward pass of every shard (side by side when there are several). */
static void run_forward(st_net *net, int train, int run) {
    /* (a serial loop when serial: even an inactive OpenMP region costs a futex call) */
    if (shards_in_parallel(net)) {
#pragma omp parallel for schedule(static) num_threads(ST_MAX_SHARDS)
        for (int s = 0; s < net->nshards; s++) forward_shard(net, s, train, run);
    } else {
        for (int s = 0; s < net->nshards; s++) forward_shard(net, s, train, run);
    }
}

st_status st_net_forward(st_net *net, const st_tensor *x, int train, const st_tensor **out) {
    if (out) *out = NULL;
    st_status rc = prepare_forward(net, x, PLAN_FORWARD, train, 0);
    if (rc) return rc;
    run_forward(net, train, 0);
    net->fwd_done = 1;
    if (out) *out = &net->nodes[net->output].out;
    return ST_OK;
}

/* st_net_run's prepared weights: each convolution's weights transformed or packed once
 * for its kernel (st_conv_prepare: Winograd's transformed kernels, the GEMM's panels),
 * remade when the weights may have changed (weights_version counts st_net_param,
 * st_net_arenas, st_net_init and st_net_set_weights calls) or the batch size changes.
 * Without memory for them the kernels simply work from the weights. */
static int prepared_on = 1;
void st_net_use_prepared(int on) { prepared_on = on; }

static void prepare_weights(st_net *net) {
    int batch = shard_exec(net, 0, 0, 1).batch;
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (n->skip || (strcmp(n->op->name, "conv2d") && strcmp(n->op->name, "conv1d"))) continue;
        if (!prepared_on) { /* (tests and benchmarks) */
            st_aligned_free(n->prep);
            n->prep = NULL;
            n->prep_cap = 0;
            continue;
        }
        if (n->prep && n->prep_version == net->weights_version && n->prep_batch == batch) continue;
        size_t floats = st_conv_prep_size(&n->u.conv.geom, batch);
        if (floats > n->prep_cap || !floats) {
            st_aligned_free(n->prep);
            n->prep = floats ? st_aligned_alloc(sizeof(float) * floats) : NULL;
            n->prep_cap = n->prep ? floats : 0;
        }
        if (!n->prep) continue;
        st_conv_prepare(n->prep, net->params[n->params[0]].value.data, &n->u.conv.geom, batch);
        n->prep_version = net->weights_version;
        n->prep_batch = batch;
    }
}

/* Inference (see stride.h): eval mode, fused chains, outputs in shared memory. */
st_status st_net_run(st_net *net, const st_tensor *x, const st_tensor **out) {
    if (out) *out = NULL;
    st_status rc = prepare_forward(net, x, PLAN_RUN, 0, 0);
    if (rc) return rc;
    st_fuse_update(net);
    prepare_weights(net);
    run_forward(net, 0, 1);
    net->fwd_done = 1;
    if (out) *out = &net->nodes[net->output].out;
    return ST_OK;
}

/* Checks the targets against the output node. */
static st_status check_loss(st_net *net, st_loss loss, const int32_t *labels, const st_tensor *target) {
    st_node *o = &net->nodes[net->output];
    char s1[128], s2[128];
    if (loss != ST_LOSS_CE && loss != ST_LOSS_MSE && loss != ST_LOSS_BCE)
        return st_fail(ST_ERR_ARG, "unknown loss %d", (int)loss);
    if (loss == ST_LOSS_CE) {
        /* (N, C) logits with N labels, or (N, C, ...) with one label per position */
        if (!labels) return st_fail(ST_ERR_ARG, "cross-entropy needs class labels");
        int C = o->shape[0];
        size_t S = o->numel / (size_t)C, counted = 0;
        for (size_t i = 0; i < (size_t)net->batch * S; i++) {
            if (labels[i] == net->ignore_index) continue;
            if (labels[i] < 0 || labels[i] >= C) {
                if (S == 1) return st_fail(ST_ERR_ARG, "label %d of sample %zu is out of range 0..%d", labels[i], i, C - 1);
                return st_fail(ST_ERR_ARG, "label %d of sample %zu at position %zu is out of range 0..%d", labels[i],
                               i / S, i % S, C - 1);
            }
            counted++;
        }
        net->ce_count = (double)counted;
    } else if (!target || st_tensor_numel(target) != o->numel * (size_t)net->batch) {
        return st_fail(ST_ERR_SHAPE, "%s target %s does not match the output %s", loss == ST_LOSS_BCE ? "bce" : "mse",
                       target ? st_shape_str(target->ndim, target->shape, s1, sizeof s1) : "(none)",
                       st_shape_str(o->out.ndim, o->out.shape, s2, sizeof s2));
    }
    return ST_OK;
}

/* The loss of node o's samples [first, first + count) summed, and their gradients (written
 * into o's gradient buffer) scaled so that the whole batch gives the mean. */
static double loss_node(st_net *net, st_node *o, st_loss loss, const int32_t *labels, const st_tensor *target, int first,
                        int count) {
    size_t at = (size_t)first * o->numel;
    if (loss == ST_LOSS_CE) {
        int C = o->shape[0], S = (int)(o->numel / (size_t)C);
        return st_cross_entropy_ls_sum(o->out.data + at, labels + (size_t)first * S, count, C, S, o->grad.data + at,
                                       1.0 / net->ce_count, net->ignore_index, net->label_smoothing);
    }
    if (loss == ST_LOSS_BCE)
        return st_bce_logits_sum(o->out.data + at, target->data + at, (size_t)count * o->numel, o->grad.data + at,
                                 1.0 / ((double)net->batch * o->numel));
    return st_mse_sum(o->out.data + at, target->data + at, (size_t)count * o->numel, o->grad.data + at,
                      1.0 / ((double)net->batch * o->numel));
}

/* The loss of the output for samples [first, first + count); with intermediate supervision
 * the sum over the heads (all of one shape, so one divisor serves them all). */
static double loss_slice(st_net *net, st_loss loss, const int32_t *labels, const st_tensor *target, int first, int count) {
    st_node *o = &net->nodes[net->output];
    if (!supervised(net)) return loss_node(net, o, loss, labels, target, first, count);
    double total = 0;
    for (int k = 0; k < o->ninputs; k++)
        total += loss_node(net, &net->nodes[o->inputs[k]], loss, labels, target, first, count);
    return total;
}

static double loss_divisor(const st_net *net, st_loss loss) {
    return loss == ST_LOSS_CE ? net->ce_count : (double)net->batch * net->nodes[net->output].numel;
}

st_status st_net_loss(st_net *net, st_loss loss, const int32_t *labels, const st_tensor *target, float *loss_out) {
    if (!net->fwd_done) return st_fail(ST_ERR_STATE, "loss before forward");
    st_status rc = plan_grads(net);
    if (rc || (rc = ensure_shard_grads(net)) || (rc = check_loss(net, loss, labels, target))) return rc;
    double L = loss_slice(net, loss, labels, target, 0, net->batch) / loss_divisor(net, loss);
    if (loss_out) *loss_out = (float)L;
    net->loss_done = !net->partial; /* backward needs every output the pass would keep */
    if (!isfinite(L)) return st_fail(ST_ERR_NUMERIC, "the loss is %g", L);
    return ST_OK;
}

/* Which nodes need a gradient: those with parameters and everything downstream. */
static void mark_needs_grad(st_net *net, int want_input_grad) {
    want_input_grad = want_input_grad != 0;
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        n->needs_grad = i == 0 ? want_input_grad : n->nparams > 0;
        for (int j = 0; j < n->ninputs; j++)
            if (net->nodes[n->inputs[j]].needs_grad) n->needs_grad = 1;
    }
    net->nodes[net->output].needs_grad = 1;
    net->want_input_grad = want_input_grad;
}

/* Adds the shards' parameter gradients in a fixed order. */
static void reduce_shards(st_net *net) {
    for (int s = 1; s < net->nshards; s++) {
        const float *g = net->shard_grad[s];
        for (size_t i = 0; i < net->arena_floats; i++) net->grad_arena[i] += g[i];
    }
}

st_status st_net_backward(st_net *net, int want_input_grad) {
    if (!net->loss_done)
        return st_fail(ST_ERR_STATE, net->fwd_done && net->partial
                                         ? "backward needs st_net_forward and st_net_loss first (st_net_step and st_net_run "
                                           "keep only the output of a large network)"
                                         : "backward needs a forward and a loss first");
    mark_needs_grad(net, want_input_grad);
    st_status rc = order_zeroing(net);
    if (rc) return rc;
    if (shards_in_parallel(net)) {
#pragma omp parallel for schedule(static) num_threads(ST_MAX_SHARDS)
        for (int s = 0; s < net->nshards; s++) backward_shard(net, s);
    } else {
        for (int s = 0; s < net->nshards; s++) backward_shard(net, s);
    }
    reduce_shards(net);
    /* the heads' seeds now hold accumulated gradients: a second backward needs a new loss */
    if (supervised(net)) net->loss_done = 0;
    return ST_OK;
}

/* The fused convolutions' kept columns (st_node_step_cols), for every shard. */
static st_status ensure_step_cols(st_net *net) {
    int shard_max = (net->batch + net->nshards - 1) / net->nshards;
    st_train_direct_plan(net, net->batch / net->nshards, shard_max);
    for (int i = 1; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        n->cols_stride = (st_node_step_cols(net, n, shard_max) + 15) & ~(size_t)15;
        size_t need = n->cols_stride * net->nshards;
        if (need <= n->cols_cap) continue;
        st_aligned_free(n->cols);
        n->cols = st_aligned_alloc(sizeof(float) * need);
        n->cols_cap = n->cols ? need : 0;
        if (!n->cols) return st_fail(ST_ERR_NOMEM, "node '%s': out of memory for %zu floats", n->name, need);
    }
    return ST_OK;
}

/* One training step's passes fused: each shard runs forward, its slice of the loss and
 * backward without waiting for the others, so the threads meet once per step. */
static double step_shard(st_net *net, int s, st_loss loss, const int32_t *labels, const st_tensor *target) {
    forward_shard(net, s, 1, 0);
    int first = shard_begin(net->batch, net->nshards, s);
    double part = loss_slice(net, loss, labels, target, first, shard_begin(net->batch, net->nshards, s + 1) - first);
    backward_shard(net, s);
    return part;
}

st_status st_net_step(st_net *net, const st_tensor *x, st_loss loss, const int32_t *labels, const st_tensor *target,
                      float *loss_out, int want_input_grad) {
    if (net->nnodes == 0) return st_fail(ST_ERR_STATE, "the network has no nodes");
    mark_needs_grad(net, want_input_grad); /* (the plan depends on which nodes need gradients) */
    st_status rc = prepare_forward(net, x, PLAN_STEP, 1, net->want_input_grad);
    net->step_fused = !rc && !net->work_in_act; /* fusion needs every buffer live all pass */
    if (rc || (rc = ensure_shard_grads(net)) || (rc = check_loss(net, loss, labels, target)) || (rc = order_zeroing(net)) ||
        (net->step_fused && (rc = ensure_step_cols(net))))
        return rc;
    double part[ST_MAX_SHARDS] = {0};
    if (shards_in_parallel(net)) {
#pragma omp parallel for schedule(static) num_threads(ST_MAX_SHARDS)
        for (int s = 0; s < net->nshards; s++) part[s] = step_shard(net, s, loss, labels, target);
    } else {
        for (int s = 0; s < net->nshards; s++) part[s] = step_shard(net, s, loss, labels, target);
    }
    reduce_shards(net);
    net->outputs_lazy = net->step_fused;
    double total = 0;
    for (int s = 0; s < net->nshards; s++) total += part[s];
    double L = total / loss_divisor(net, loss);
    if (loss_out) *loss_out = (float)L;
    net->fwd_done = 1;
    net->loss_done = !supervised(net) && !net->partial; /* (see st_net_backward) */
    if (!isfinite(L)) return st_fail(ST_ERR_NUMERIC, "the loss is %g", L);
    return ST_OK;
}

void st_net_set_ignore_index(st_net *net, int index) { net->ignore_index = index; }
void st_net_set_label_smoothing(st_net *net, float eps) { net->label_smoothing = eps; }

void st_net_get_rng(const st_net *net, st_rng *r) { *r = net->rng; }
void st_net_set_rng(st_net *net, const st_rng *r) { net->rng = *r; }

/* Writes the node outputs that the last st_net_step left in columns (st_train_outputs).
 * The readers below take a const net: this fills in values the pass computed, as a
 * cache would, and changes nothing a later pass reads. */
static void materialise_outputs(const st_net *cnet) {
    st_net *net = (st_net *)cnet;
    if (!net->outputs_lazy) return;
    for (int s = 0; s < net->nshards; s++) {
        st_exec e = shard_exec(net, s, 1, 0);
        for (int i = 1; i < net->nnodes; i++) st_train_outputs(&e, &net->nodes[i]);
    }
    net->outputs_lazy = 0;
}

/* ---------------------------------------------------------------- finding a NaN or Inf
 * After a step that went non-finite: node outputs in graph order (the first one holding
 * a NaN or Inf is where it appeared, since every later node reads earlier ones), then
 * parameter gradients, then parameter values. */
static long first_nonfinite(const float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return (long)i;
    return -1;
}

st_status st_net_find_nonfinite(const st_net *net, char *where, size_t len) {
    if (len) where[0] = 0;
    char buf[512];
    long at = -1;
    const float *bad = NULL;
    materialise_outputs(net);
    if (net->fwd_done)
        for (int i = 0; i < net->nnodes && at < 0; i++) {
            const st_node *n = &net->nodes[i];
            if (!n->out.data || !n->kept) continue; /* (shared with later nodes) */
            if ((at = first_nonfinite(n->out.data, n->numel * (size_t)net->batch)) >= 0) {
                bad = n->out.data + at;
                snprintf(buf, sizeof buf, "node '%s' (%s) output", n->name, n->op->name);
            }
        }
    for (int pass = 0; pass < 2 && at < 0 && net->value_arena; pass++)
        for (int i = 0; i < net->nparams && at < 0; i++) {
            const st_tensor *t = pass == 0 ? &net->params[i].grad : &net->params[i].value;
            if ((at = first_nonfinite(t->data, st_tensor_numel(t))) >= 0) {
                bad = t->data + at;
                snprintf(buf, sizeof buf, "parameter '%s' %s", net->params[i].name, pass == 0 ? "gradient" : "value");
            }
        }
    if (at < 0) return ST_OK;
    size_t used = strlen(buf);
    snprintf(buf + used, sizeof buf - used, " (first non-finite value %s at index %ld)",
             isnan(*bad) ? "nan" : *bad > 0 ? "inf" : "-inf", at);
    if (len) snprintf(where, len, "%s", buf);
    return st_fail(ST_ERR_NUMERIC, "%s", buf);
}

const st_tensor *st_net_input_grad(const st_net *net) {
    return net->want_input_grad && net->nnodes ? &net->nodes[0].grad : NULL;
}

/* ---------------------------------------------------------------- weights by name */
st_status st_net_get_weights(const st_net *net, st_tensors *out) {
    st_status rc = ensure_arenas((st_net *)net);
    if (rc) return rc;
    for (int i = 0; i < net->nparams; i++) {
        const st_param *p = &net->params[i];
        if ((rc = st_tensors_add_f32(out, p->name, p->value.ndim, p->value.shape, p->value.data))) return rc;
    }
    for (int i = 0; i < net->nbuffers; i++) {
        const st_buffer *b = &net->buffers[i];
        if (b->is_count) {
            /* PyTorch keeps num_batches_tracked as an int64 scalar */
            int64_t count = net->nodes[b->node].u.bn.num_batches_tracked;
            st_array a = {ST_I64, 0, {0}, &count};
            rc = st_tensors_add(out, b->name, &a);
        } else {
            rc = st_tensors_add_f32(out, b->name, b->value.ndim, b->value.shape, b->value.data);
        }
        if (rc) return rc;
    }
    return ST_OK;
}

/* Checks one named tensor of a weights file against what the model expects. */
static void check_entry(const st_tensors *ts, const char *name, const st_tensor *want, int is_count, char *msg,
                        size_t len, int *problems) {
    const st_array *a = st_tensors_get(ts, name);
    char s1[128], s2[128];
    if (!a) {
        snprintf(msg + strlen(msg), len - strlen(msg), "%smissing '%s'", (*problems)++ ? "; " : "", name);
        return;
    }
    int same = a->ndim == want->ndim || (is_count && st_array_numel(a) == 1);
    for (int k = 0; same && !is_count && k < a->ndim; k++) same = a->shape[k] == want->shape[k];
    if (!same) {
        int sh[ST_MAX_DIMS];
        for (int k = 0; k < a->ndim && k < ST_MAX_DIMS; k++) sh[k] = (int)a->shape[k];
        snprintf(msg + strlen(msg), len - strlen(msg), "%s'%s' has shape %s in the file but %s in the model",
                 (*problems)++ ? "; " : "", name, st_shape_str(a->ndim, sh, s1, sizeof s1),
                 st_shape_str(want->ndim, want->shape, s2, sizeof s2));
    } else if (!is_count && a->dtype != ST_F32 && a->dtype != ST_F64 && a->dtype != ST_F16 && a->dtype != ST_BF16) {
        snprintf(msg + strlen(msg), len - strlen(msg), "%s'%s' has dtype %s (expected a float type)",
                 (*problems)++ ? "; " : "", name, st_dtype_name(a->dtype));
    }
}

st_status st_net_check_weights(st_net *net, const st_tensors *ts) {
    st_status rc = ensure_arenas(net);
    if (rc) return rc;
    char msg[2048] = "";
    int problems = 0;
    /* check everything first, so that a failed load changes nothing */
    for (int i = 0; i < net->nparams; i++)
        check_entry(ts, net->params[i].name, &net->params[i].value, 0, msg, sizeof msg, &problems);
    for (int i = 0; i < net->nbuffers; i++)
        check_entry(ts, net->buffers[i].name, &net->buffers[i].value, net->buffers[i].is_count, msg, sizeof msg, &problems);
    for (int i = 0; i < ts->n; i++) {
        int known = 0;
        for (int j = 0; j < net->nparams && !known; j++) known = !strcmp(ts->names[i], net->params[j].name);
        for (int j = 0; j < net->nbuffers && !known; j++) known = !strcmp(ts->names[i], net->buffers[j].name);
        if (!known)
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "%sunexpected '%s'", problems++ ? "; " : "", ts->names[i]);
    }
    if (problems) return st_fail(ST_ERR_SHAPE, "weights do not fit the model (%d problem%s): %s", problems, problems > 1 ? "s" : "", msg);
    return ST_OK;
}

st_status st_net_set_weights(st_net *net, const st_tensors *ts) {
    st_status rc = st_net_check_weights(net, ts);
    if (rc) return rc;
    net->weights_version++;
    for (int i = 0; i < net->nparams + net->nbuffers; i++) {
        int is_param = i < net->nparams;
        st_buffer *b = is_param ? NULL : &net->buffers[i - net->nparams];
        const char *name = is_param ? net->params[i].name : b->name;
        st_tensor *dst = is_param ? &net->params[i].value : &b->value;
        const st_array *a = st_tensors_get(ts, name);
        if (b && b->is_count) {
            int64_t v = a->dtype == ST_I64 ? *(const int64_t *)a->data : a->dtype == ST_I32 ? *(const int32_t *)a->data : 0;
            net->nodes[b->node].u.bn.num_batches_tracked = v;
            continue;
        }
        st_tensor *t;
        if ((rc = st_array_to_tensor(a, &t))) return rc;
        memcpy(dst->data, t->data, sizeof(float) * st_tensor_numel(dst));
        st_tensor_free(t);
    }
    return ST_OK;
}

st_status st_net_load_weights(st_net *net, const char *path) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status rc = st_safetensors_load(path, &ts);
    if (!rc) {
        rc = st_net_set_weights(net, &ts);
        if (rc) st_fail_prefix(rc, "%s: ", path);
    }
    st_tensors_free(&ts);
    return rc;
}

st_status st_net_save_weights(const st_net *net, const char *path) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status rc = st_net_get_weights(net, &ts);
    if (!rc) rc = st_safetensors_save(path, &ts);
    st_tensors_free(&ts);
    return rc;
}

/* ---------------------------------------------------------------- inspection */
int st_net_num_nodes(const st_net *net) { return net->nnodes; }
const char *st_net_node_name(const st_net *net, int i) { return i >= 0 && i < net->nnodes ? net->nodes[i].name : NULL; }
const char *st_net_node_op(const st_net *net, int i) { return i >= 0 && i < net->nnodes ? net->nodes[i].op->name : NULL; }

const st_tensor *st_net_node_output(const st_net *net, int i) {
    if (i < 0 || i >= net->nnodes || !net->fwd_done || !net->nodes[i].kept) return NULL;
    materialise_outputs(net);
    return &net->nodes[i].out;
}

void st_net_node_shape(const st_net *net, int i, int *ndim, int *shape) {
    const st_node *n = &net->nodes[i];
    *ndim = n->ndim + 1;
    shape[0] = 1;
    for (int k = 0; k < n->ndim; k++) shape[k + 1] = n->shape[k];
}

st_status st_net_node_info(const st_net *net, int i, st_node_info *out) {
    if (i < 0 || i >= net->nnodes) return st_fail(ST_ERR_ARG, "node index %d out of range", i);
    const st_node *n = &net->nodes[i];
    memset(out, 0, sizeof *out);
    out->name = n->name;
    out->op = n->op->name;
    st_net_node_shape(net, i, &out->ndim, out->shape);
    for (int k = 0; k < n->nparams; k++) out->params += (int64_t)st_tensor_numel(&net->params[n->params[k]].value);
    out->macs = n->op->macs ? n->op->macs(n) : 0;
    out->rf_valid = n->rf_valid;
    for (int ax = 0; ax < 2; ax++) { out->rf[ax] = n->rf[ax]; out->jump[ax] = n->jump[ax]; }
    return ST_OK;
}
