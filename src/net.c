/* net.c - networks as graphs of named nodes: building, parameters, forward, loss,
 * backward, initialisation, weights by state_dict name, and per-node summaries.
 *
 * Nodes are kept in the order they were added, which is a topological order (a node
 * may only read earlier nodes), so forward is one loop up and backward one loop down.
 * Parameter values and gradients live in two flat arenas, so the optimiser is one loop
 * and zero_grad one memset.
 */
#include "net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

st_status st_net_new(st_net **out) {
    *out = calloc(1, sizeof **out);
    if (!*out) return st_fail(ST_ERR_NOMEM, "out of memory");
    (*out)->output = -1;
    (*out)->ignore_index = -100;
    return ST_OK;
}

static void free_activations(st_net *net) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        if (i > 0) st_aligned_free(n->out.data);
        st_aligned_free(n->grad.data);
        free(n->idx);
        free(n->mask);
        n->idx = NULL;
        n->mask = NULL;
        n->idx_cap = n->mask_cap = 0;
        n->out.data = n->grad.data = NULL;
        n->cap = n->grad_cap = 0;
    }
}

void st_net_free(st_net *net) {
    if (!net) return;
    free_activations(net);
    for (int i = 0; i < net->nnodes; i++) { free(net->nodes[i].name); free(net->nodes[i].saved); }
    for (int i = 0; i < net->nparams; i++) free(net->params[i].name);
    for (int i = 0; i < net->nbuffers; i++) { free(net->buffers[i].name); free(net->buffers[i].value.data); }
    free(net->buffers);
    free(net->nodes);
    free(net->params);
    st_aligned_free(net->value_arena);
    st_aligned_free(net->grad_arena);
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
 * were already there are kept. */
static st_status ensure_arenas(st_net *net) {
    size_t total = 0;
    for (int i = 0; i < net->nparams; i++) total += st_tensor_numel(&net->params[i].value);
    if (total == net->arena_floats && net->value_arena) return ST_OK;
    float *v = st_aligned_alloc(sizeof(float) * (total ? total : 1));
    float *g = st_aligned_alloc(sizeof(float) * (total ? total : 1));
    if (!v || !g) {
        st_aligned_free(v);
        st_aligned_free(g);
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
    st_aligned_free(net->grad_arena);
    for (int s = 0; s < ST_MAX_SHARDS; s++) { st_aligned_free(net->shard_grad[s]); net->shard_grad[s] = NULL; }
    net->value_arena = v;
    net->grad_arena = g;
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
        n->saved = NULL;
        free(n->name);
        return st_fail_prefix(rc, "node '%s' (%s): ", name, opname);
    }
    n->numel = st_node_numel(n);
    net->nnodes++;
    net->output = net->nnodes - 1;
    net->fwd_done = net->loss_done = 0;
    return ST_OK;
}

/* ---------------------------------------------------------------- initialisation */
st_status st_net_init(st_net *net, st_init how, uint64_t seed) {
    st_status rc = ensure_arenas(net);
    if (rc) return rc;
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
 * number of threads. Large networks use one shard and parallel kernels instead. */
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

static st_exec shard_exec(st_net *net, int s, int train) {
    st_exec e;
    e.net = net;
    e.offset = shard_begin(net->batch, net->nshards, s);
    e.batch = shard_begin(net->batch, net->nshards, s + 1) - e.offset;
    e.train = train;
    e.work = net->work + (size_t)s * net->work_stride;
    e.pgrad = s == 0 ? net->grad_arena : net->shard_grad[s];
    return e;
}

static st_status ensure_activations(st_net *net, int batch, int train) {
    int nshards = choose_shards(net, batch, train);
    int shard_max = (batch + nshards - 1) / nshards;
    size_t work = 0;
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
        if (need > n->cap) {
            st_aligned_free(n->out.data);
            n->out.data = st_aligned_alloc(sizeof(float) * need);
            n->cap = n->out.data ? need : 0;
            if (!n->out.data) return st_fail(ST_ERR_NOMEM, "node '%s': out of memory for activations", n->name);
        }
    }
    work = (work + 15) & ~(size_t)15; /* keep each shard's workspace 64-byte aligned */
    if (work * nshards > net->work_cap) {
        st_aligned_free(net->work);
        net->work = st_aligned_alloc(sizeof(float) * (work > 0 ? work * nshards : 16));
        net->work_cap = net->work ? work * nshards : 0;
        if (!net->work) return st_fail(ST_ERR_NOMEM, "out of memory for %zu floats of workspace", work * nshards);
    }
    net->work_stride = work;
    net->nshards = nshards;
    net->batch = batch;
    return ST_OK;
}

static int shards_in_parallel(const st_net *net) { return net->nshards > 1 && st_get_threads() > 1; }

static void forward_shard(st_net *net, int s, int train) {
    st_exec e = shard_exec(net, s, train);
    for (int i = 1; i < net->nnodes; i++) net->nodes[i].op->forward(&e, &net->nodes[i]);
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

/* Zeroes this shard's activation gradients (and its private parameter-gradient arena),
 * except those the loss has seeded, then runs the graph backwards; every backward
 * accumulates. */
static void backward_shard(st_net *net, int s) {
    st_exec e = shard_exec(net, s, 1);
    if (s > 0) memset(e.pgrad, 0, sizeof(float) * net->arena_floats);
    for (int i = 0; i < net->output; i++) {
        st_node *n = &net->nodes[i];
        if (n->needs_grad && !is_head(net, i)) memset(G(&e, n), 0, sizeof(float) * n->numel * e.batch);
    }
    for (int i = net->output; i >= 1; i--) {
        st_node *n = &net->nodes[i];
        if (n->needs_grad) n->op->backward(&e, n);
    }
}

/* Checks x against the input node, sizes everything for its batch, points the input
 * node at x's data. */
static st_status prepare_forward(st_net *net, const st_tensor *x, int train) {
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
    if ((rc = ensure_activations(net, x->shape[0], train))) return rc;
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
    net->fwd_done = net->loss_done = 0;
    return ST_OK;
}

st_status st_net_forward(st_net *net, const st_tensor *x, int train, const st_tensor **out) {
    if (out) *out = NULL;
    st_status rc = prepare_forward(net, x, train);
    if (rc) return rc;
    /* (a serial loop when serial: even an inactive OpenMP region costs a futex call) */
    if (shards_in_parallel(net)) {
#pragma omp parallel for schedule(static) num_threads(ST_MAX_SHARDS)
        for (int s = 0; s < net->nshards; s++) forward_shard(net, s, train);
    } else {
        for (int s = 0; s < net->nshards; s++) forward_shard(net, s, train);
    }
    net->fwd_done = 1;
    if (out) *out = &net->nodes[net->output].out;
    return ST_OK;
}

static st_status ensure_grads(st_net *net) {
    for (int i = 0; i < net->nnodes; i++) {
        st_node *n = &net->nodes[i];
        size_t need = n->numel * (size_t)net->batch;
        if (need > n->grad_cap) {
            st_aligned_free(n->grad.data);
            n->grad.data = st_aligned_alloc(sizeof(float) * need);
            n->grad_cap = n->grad.data ? need : 0;
            if (!n->grad.data) return st_fail(ST_ERR_NOMEM, "node '%s': out of memory for gradients", n->name);
        }
    }
    for (int s = 1; s < net->nshards; s++)
        if (!net->shard_grad[s]) {
            net->shard_grad[s] = st_aligned_alloc(sizeof(float) * (net->arena_floats ? net->arena_floats : 1));
            if (!net->shard_grad[s]) return st_fail(ST_ERR_NOMEM, "out of memory for gradients");
        }
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
    st_status rc = ensure_grads(net);
    if (rc || (rc = check_loss(net, loss, labels, target))) return rc;
    double L = loss_slice(net, loss, labels, target, 0, net->batch) / loss_divisor(net, loss);
    if (loss_out) *loss_out = (float)L;
    net->loss_done = 1;
    if (!isfinite(L)) return st_fail(ST_ERR_NUMERIC, "the loss is %g", L);
    return ST_OK;
}

/* Which nodes need a gradient: those with parameters and everything downstream. */
static void mark_needs_grad(st_net *net, int want_input_grad) {
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
    if (!net->loss_done) return st_fail(ST_ERR_STATE, "backward needs a forward and a loss first");
    mark_needs_grad(net, want_input_grad);
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

/* One training step's passes fused: each shard runs forward, its slice of the loss and
 * backward without waiting for the others, so the threads meet once per step. */
static double step_shard(st_net *net, int s, st_loss loss, const int32_t *labels, const st_tensor *target) {
    forward_shard(net, s, 1);
    int first = shard_begin(net->batch, net->nshards, s);
    double part = loss_slice(net, loss, labels, target, first, shard_begin(net->batch, net->nshards, s + 1) - first);
    backward_shard(net, s);
    return part;
}

st_status st_net_step(st_net *net, const st_tensor *x, st_loss loss, const int32_t *labels, const st_tensor *target,
                      float *loss_out, int want_input_grad) {
    st_status rc = prepare_forward(net, x, 1);
    if (rc || (rc = ensure_grads(net)) || (rc = check_loss(net, loss, labels, target))) return rc;
    mark_needs_grad(net, want_input_grad);
    double part[ST_MAX_SHARDS] = {0};
    if (shards_in_parallel(net)) {
#pragma omp parallel for schedule(static) num_threads(ST_MAX_SHARDS)
        for (int s = 0; s < net->nshards; s++) part[s] = step_shard(net, s, loss, labels, target);
    } else {
        for (int s = 0; s < net->nshards; s++) part[s] = step_shard(net, s, loss, labels, target);
    }
    reduce_shards(net);
    double total = 0;
    for (int s = 0; s < net->nshards; s++) total += part[s];
    double L = total / loss_divisor(net, loss);
    if (loss_out) *loss_out = (float)L;
    net->fwd_done = 1;
    net->loss_done = !supervised(net); /* (see st_net_backward) */
    if (!isfinite(L)) return st_fail(ST_ERR_NUMERIC, "the loss is %g", L);
    return ST_OK;
}

void st_net_set_ignore_index(st_net *net, int index) { net->ignore_index = index; }
void st_net_set_label_smoothing(st_net *net, float eps) { net->label_smoothing = eps; }

void st_net_get_rng(const st_net *net, st_rng *r) { *r = net->rng; }
void st_net_set_rng(st_net *net, const st_rng *r) { net->rng = *r; }

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
    if (net->fwd_done)
        for (int i = 0; i < net->nnodes && at < 0; i++) {
            const st_node *n = &net->nodes[i];
            if (!n->out.data) continue;
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
    if (i < 0 || i >= net->nnodes || !net->fwd_done) return NULL;
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
