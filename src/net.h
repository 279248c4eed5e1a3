/* net.h - the network graph: nodes, parameters and the op table (internal). */
#ifndef ST_NET_H
#define ST_NET_H

#include "internal.h"
#include "conv_transpose.h"
#include "pool.h"
#include "resample.h"
#include "batchnorm.h"

#define ST_MAX_INPUTS 8
#define ST_MAX_ARGS 24
#define ST_MAX_PARAMS_PER_NODE 4
#define ST_MAX_SHARDS 2

/* ---------------------------------------------------------------- model-file arguments */
typedef enum { ST_V_INT, ST_V_FLOAT, ST_V_STR, ST_V_TUPLE, ST_V_BOOL, ST_V_NONE } st_vkind;
typedef struct {
    st_vkind kind;
    double num;                 /* INT, FLOAT, BOOL */
    char str[64];               /* STR (quoted or bare word) */
    int n, tup[ST_MAX_DIMS];    /* TUPLE */
} st_val;

typedef struct {
    int npos;                   /* positional arguments: the input node names */
    st_val pos[ST_MAX_INPUTS];
    int nkw;
    char key[ST_MAX_ARGS][32];
    st_val val[ST_MAX_ARGS];
    int used[ST_MAX_ARGS];
} st_args;

/* Getters: return ST_OK and set *out, or leave the default when the key is absent.
 * A present key of the wrong type is an ST_ERR_PARSE error naming the key. */
st_status st_arg_int(st_args *a, const char *key, int *out);
st_status st_arg_float(st_args *a, const char *key, float *out);
st_status st_arg_bool(st_args *a, const char *key, int *out);
st_status st_arg_str(st_args *a, const char *key, char *out, size_t len);
/* An int or a tuple of `n` ints ("kernel_size=3" or "kernel_size=(3, 5)"). */
st_status st_arg_ints(st_args *a, const char *key, int n, int *out);
int st_arg_has(const st_args *a, const char *key);

/* ---------------------------------------------------------------- nodes */
typedef struct st_node st_node;
typedef struct st_op st_op;

typedef struct {
    int dims;                       /* 1 or 2 */
    int in_channels, out_channels, groups, bias, pad_mode;
    int k[2], s[2], d[2], pad[2];   /* (H, W); 1D uses index 1 */
    st_conv_geom geom;
} st_conv_conf;

typedef struct {
    int dims;                       /* 1 or 2 */
    int in_channels, out_channels, groups, bias;
    int k[2], s[2], d[2], pad[2], out_pad[2];
    st_convt_geom geom;
} st_convt_conf;

typedef enum { ST_POOL_MAX, ST_POOL_AVG, ST_POOL_ADAPTIVE_AVG } st_pool_kind;
typedef struct {
    int dims;                       /* 1 or 2 */
    st_pool_kind kind;
    int k[2], s[2], p[2], d[2], out[2];
    int ceil_mode, count_include_pad, divisor_override;
    st_pool_geom geom;
} st_pool_conf;

typedef struct {
    int dims, nearest, align_corners;
    double scale_factor[2];         /* 0 when the size was given */
    int out[2];
    float scale[2];                 /* source per destination, PyTorch's rule */
} st_upsample_conf;

typedef struct { int dims, k[2], s[2], p[2], out[2]; } st_unpool_conf;
typedef struct { int size; float alpha, beta, k; } st_lrn_conf;

typedef struct {
    int num_features, affine, track;
    float eps, momentum;            /* momentum < 0: None (cumulative average) */
    int64_t num_batches_tracked;
    int running_mean, running_var;  /* buffer indices (-1 when not tracked) */
} st_bn_conf;

typedef struct { float p; int planes; } st_dropout_conf; /* planes: dropout2d */

/* Inference fusion (st_net_run): a convolution, transposed convolution or linear node
 * (or an add) that also does the work of the nodes after it, in one pass over its output
 * viewed as (outer, C, S): y = y * scale[c] + shift[c] (a folded eval batch norm, or the
 * bias), plus the other input of a two-input add (a residual connection whose other
 * branch is computed already), then max(y, 0) or the leaky ReLU. The folded nodes are
 * skipped and share the node's buffer. */
typedef struct {
    int active;                     /* this node runs an epilogue in st_net_run */
    int bn;                         /* a batch norm node is folded in (scale and shift) */
    int add;                        /* an add is folded in: the node of its other input (0: none) */
    int act;                        /* 0: none; 1: ReLU; 2: leaky ReLU with `slope` */
    float slope;
    int last;                       /* the last node of the chain (whose output this is) */
    float *scale, *shift;           /* C each (malloc'ed; shift without bn: the bias) */
} st_fusion;

typedef struct { int in_features, out_features, bias; } st_linear_conf;
typedef struct { st_act act; float slope; } st_act_conf;
typedef struct { int dim; } st_concat_conf;
typedef struct { float A, S; } st_scaled_tanh_conf;
typedef struct { int n, ch[ST_MAX_DIMS]; } st_select_conf;      /* channel indices */
typedef struct { int in_features, out_features, centers; } st_rbf_conf; /* centers: buffer index */

struct st_node {
    char *name;
    const st_op *op;
    int ninputs, inputs[ST_MAX_INPUTS]; /* node indices */
    int ndim, shape[ST_MAX_DIMS];       /* per-sample output shape (no batch dim) */
    size_t numel;                       /* floats per sample */
    int nparams, params[ST_MAX_PARAMS_PER_NODE];
    union {
        st_conv_conf conv;
        st_convt_conf convt;
        st_pool_conf pool;
        st_upsample_conf up;
        st_unpool_conf unpool;
        st_lrn_conf lrn;
        st_bn_conf bn;
        st_dropout_conf drop;
        st_linear_conf linear;
        st_act_conf act;
        st_concat_conf concat;
        st_scaled_tanh_conf stanh;
        st_select_conf select;
        st_rbf_conf rbf;
    } u;
    st_tensor out, grad;                /* with the batch dimension in front; data points into
                                         * the net's activation arenas (see net.c, plan.c) */
    int kept;                           /* out holds this node's values after the pass */
    int skip;                           /* st_net_run: computed by the fusion of node `skip` (0: not) */
    int idx_read;                       /* st_net_run: an unpooling node reads its indices */
    int zero_at;                        /* backward: zero the gradient before this node's backward */
    size_t out_off, grad_off, bgrad_off; /* offsets in net->act (output, gradient) and net->gact */
    size_t fwork_off, bwork_off;        /* its workspace in net->act for forward, backward (or -1) */
    st_fusion fuse;
    float *prep;                        /* st_net_run: the weights prepared for the kernel (conv.c) */
    size_t prep_cap;                    /* floats allocated */
    unsigned prep_version;              /* net->weights_version when made (0: not made) */
    int prep_batch;                     /* the batch it was made for */
    int32_t *idx;                       /* max pooling: argmax per output element */
    size_t idx_cap;
    uint8_t *mask;                      /* dropout: which elements (or planes) were kept */
    size_t mask_cap;
    float *saved;                       /* batch norm: per-channel batch mean and 1/std */
    double *stats;                      /* batch norm: the same in double, for st_node_recompute */
    int remat_at;                       /* recomputed before this node's backward (0: never) */
    size_t remat_off;                   /* where in net->act */
    double rf[2], jump[2];              /* receptive field and jump in input positions (H, W), set by configure */
    int rf_valid;
    int needs_grad;                     /* the gradient of this node's output is used */
    int train_relu;                     /* st_net_step's fusion: the ReLU this convolution computes too (0: none) */
    int train_fused;                    /* st_net_step's fusion: a ReLU computed by its convolution */
    int train_next;                     /* st_net_step's fusion: the convolution that reads train_relu's output (0: none) */
    int train_prev;                     /* st_net_step's fusion: the convolution whose train_relu this one reads (0: none) */
    int train_direct;                   /* st_net_step's fusion: the direct kernels run this convolution in every shard */
    int bwd_fresh;                      /* backward writes its input's gradient (not zeroed first) instead of adding */
    float *cols;                        /* st_net_step's fusion: per shard, operands in the direct kernel's layout */
    size_t cols_stride, cols_cap;       /* floats per shard (0: none), allocated */
};

typedef struct {
    char *name;                         /* "conv1.weight" */
    int node;                           /* owning node */
    int is_bias;
    int fan_in;                         /* for initialisation */
    int init_const;                     /* 1: always initialised to init_value (batch norm) */
    float init_value;
    st_tensor value, grad;              /* data points into the net's arenas */
} st_param;

/* A buffer: state that is saved with the weights but not learned (batch norm's running
 * statistics). num_batches_tracked lives in its node and is saved as an int64 scalar. */
typedef struct {
    char *name;
    int node;
    int is_count;
    int fixed;                          /* set by its op (RBF centres); st_net_init keeps it */
    float init_value;
    st_tensor value;                    /* malloc'ed data (none for the count) */
} st_buffer;

struct st_net {
    int nnodes, cap_nodes;
    st_node *nodes;
    int nparams, cap_params;
    st_param *params;
    int nbuffers, cap_buffers;
    st_buffer *buffers;
    st_rng rng;                         /* dropout masks; seeded by st_net_init */
    float *value_arena, *grad_arena;
    void *grad_block;                   /* what grad_arena was allocated as (64-byte aligned in it) */
    size_t arena_floats;                /* 0 while not yet allocated */
    int batch;                          /* batch size of the last forward */
    int output;                         /* index of the output node (the last one) */
    int nshards;                        /* batch slices run side by side (see net.c) */
    float *shard_grad[ST_MAX_SHARDS];   /* parameter-gradient arenas of shards 1.. */
    float *work;                        /* nshards workspaces of work_stride floats */
    size_t work_cap, work_stride;
    /* Activation memory (net.c "memory plans"): node outputs, and in st_net_step node
     * gradients too, live at planned offsets in `act`; the node gradients of
     * st_net_backward after st_net_forward live in `gact`. */
    float *act, *gact;
    size_t act_cap, gact_cap;           /* floats allocated */
    int plan_kind, plan_batch, plan_flags; /* what act is laid out for (plan_kind -1: nothing) */
    int gplan_batch;                    /* what gact is laid out for (0: nothing) */
    int reuse;                          /* -1: automatic; 0: never share; 1: always (tests) */
    int work_in_act;                    /* the plan gives each node's workspace a place in act */
    int partial;                        /* the last pass kept only some node outputs */
    int *zero_order, nzero;             /* gradients to zero, by zero_at from the last node down */
    int zero_key;                       /* want_input_grad + 1 when zero_order was made (0: never) */
    int *remat_order, nremat;           /* outputs to recompute, by remat_at from the last node down */
    int gplan_shards;
    int fwd_done, loss_done;
    int ignore_index;                   /* cross-entropy targets to skip (PyTorch: -100) */
    double ce_count;                    /* targets counted in the last cross-entropy */
    float label_smoothing;              /* cross-entropy label smoothing (PyTorch: 0) */
    int want_input_grad;
    unsigned weights_version;           /* counts the calls that may change the weights (st_net_run's prepared copies) */
    int step_fused;                     /* the last forward was st_net_step's with its fusions (st_train_fuse) */
    int outputs_lazy;                   /* some outputs of the last st_net_step are still in columns (st_train_outputs) */
    int fuse_known;                     /* train_relu / train_fused are set (st_train_fuse_plan) */
};

/* What one forward or backward pass over a slice of the batch sees: a shard of the
 * batch (samples [offset, offset + batch)), its own workspace and its own parameter-
 * gradient arena, so that shards can run on different threads without sharing writes. */
typedef struct {
    st_net *net;
    int batch, offset;
    int train;
    int run;      /* st_net_run: skip folded nodes, run the fused epilogues */
    int shard;    /* which slice (0 .. nshards - 1) */
    float *work;
    float *pgrad; /* parameter gradients of this shard (the net's arena for shard 0) */
} st_exec;

/* A node's output / gradient for the shard, its inputs, its parameters. */
static inline float *X(const st_exec *e, const st_node *n) { return n->out.data + (size_t)e->offset * n->numel; }
static inline float *G(const st_exec *e, const st_node *n) { return n->grad.data + (size_t)e->offset * n->numel; }
static inline int32_t *IDX(const st_exec *e, const st_node *n) { return n->idx + (size_t)e->offset * n->numel; }
static inline st_node *IN(const st_exec *e, const st_node *n, int i) { return &e->net->nodes[n->inputs[i]]; }
static inline float *W(const st_exec *e, const st_node *n, int i) { return e->net->params[n->params[i]].value.data; }
/* st_net_run: the node's weights prepared for its kernel, or NULL */
static inline const float *PREP(const st_exec *e, const st_node *n) { return e->run ? n->prep : NULL; }
static inline float *GW(const st_exec *e, const st_node *n, int i) {
    const st_param *p = &e->net->params[n->params[i]];
    return e->pgrad + (p->grad.data - e->net->grad_arena);
}

struct st_op {
    const char *name;
    int min_inputs, max_inputs;
    const char *args;                   /* the keyword arguments it knows, space-separated */
    /* Reads the arguments, checks input shapes, sets n->ndim/shape, adds parameters. */
    st_status (*configure)(st_net *net, st_node *n, st_args *a);
    /* Writes the arguments back as model-file text (without inputs). */
    void (*print)(const st_node *n, char *buf, size_t len);
    void (*forward)(const st_exec *e, st_node *n);
    /* Accumulates into the gradients of inputs that need one and into parameter grads. */
    void (*backward)(const st_exec *e, st_node *n);
    /* Work floats needed for batch size `batch` (NULL: none). */
    size_t (*work_size)(const st_node *n, int batch);
    /* Multiply-accumulates per sample. */
    int64_t (*macs)(const st_node *n);
    int keeps_indices;                  /* forward records an int32 index per output element */
    int couples_batch;                  /* in training mode, outputs depend on the whole batch */
    int bwd_reads;                      /* what backward reads of the forward pass (ST_READS_*) */
    int inplace;                        /* ST_INPLACE_*: may its output share its first input's memory */
};

/* What a node's backward reads besides gradients: its inputs' outputs, its own output. */
enum { ST_READS_INPUTS = 1, ST_READS_OUTPUT = 2 };
/* ST_INPLACE_ELEMENTWISE: output element k depends on input element k only, so the output
 * may overwrite the input (ReLU, dropout, add onto its first input); ST_INPLACE_COPY: the
 * output is a copy of the input (flatten; dropout in eval mode), so it may simply be the
 * input's memory. */
enum { ST_INPLACE_NONE = 0, ST_INPLACE_ELEMENTWISE = 1, ST_INPLACE_COPY = 2 };
int st_node_bwd_reads(const st_node *n);   /* the op's flags, refined per node (layers.c) */
int st_node_inplace(const st_node *n, int train);
/* Rematerialisation (layers.c): 1 if node n's training output can be recomputed exactly
 * from memory that backward keeps anyway (an activation of a batch norm whose input the
 * batch norm's backward reads); st_node_recompute writes it into X(e, n). */
int st_node_can_recompute(const st_net *net, const st_node *n);
void st_node_recompute(const st_exec *e, st_node *n);

/* st_net_run's fusion (layers.c). st_fuse_plan marks the chains conv/linear -> batch norm
 * (eval, tracked) -> add (of two inputs, the other computed before the conv) -> ReLU and
 * add -> ReLU: the first node gets `fuse`, the others `skip` (the first node's index).
 * pinned[i]: node i's output must be kept (the output, a head), so no chain runs through
 * it. Returns ST_ERR_NOMEM on failure. st_fuse_update computes the folded scale and shift
 * from the current parameters and running statistics (each run: C values per chain). */
st_status st_fuse_plan(st_net *net, const int *pinned);
/* For tests: st_fuse_force_adds(0) leaves adds out of the convolutions' chains in the
 * plans made from then on (1: back to the default). Not thread-safe. */
void st_fuse_force_adds(int on);
void st_fuse_update(st_net *net);
/* A developer's probe (bench/scale_profile.c), NULL by default: when set, st_net_run calls
 * it before (after = 0) and after (after = 1) every node it runs. */
extern void (*st_run_probe)(const st_net *net, int node, int after);

/* st_net_step's fusion (layers.c), on plans where every buffer lives through the whole
 * pass (net->work_in_act == 0): a convolution whose only consumer is a ReLU computes the
 * ReLU's output in the same pass (so writes both outputs), and its backward reads the
 * ReLU's gradient masked by the ReLU's output, so the ReLU's passes and the convolution's
 * own gradient are skipped. st_train_fuse_plan marks the pairs (train_relu, train_fused;
 * pinned as for st_fuse_plan); they act only while net->step_fused. st_node_bwd_can_write: 1 if node n's backward can
 * write its single input's gradient instead of adding to it (n->bwd_fresh), so that
 * gradient need not be zeroed first. */
void st_train_fuse_plan(st_net *net, const int *pinned);
int st_node_bwd_can_write(const st_node *n);
/* Where the direct convolution kernels run both (st_conv_direct_fused) at every shard size
 * of the pass (lo, hi samples), a fused convolution (and one that reads such a ReLU:
 * train_prev) keeps its operands in their column layout (n->train_direct, set here):
 * its input from forward to backward, its output, and between two such convolutions
 * linked by a ReLU (train_next) the ReLU's output and gradient, so that no transpose to
 * samples and back is made between them. A fused convolution's output, and its ReLU's
 * when the next convolution reads that in columns, are then written in samples only by
 * st_train_outputs (net.c calls it when a node output is read). st_node_step_cols: the
 * floats per shard of `batch` samples that n keeps (n->cols; 0: none). */
void st_train_direct_plan(st_net *net, int lo, int hi);
size_t st_node_step_cols(const st_net *net, const st_node *n, int batch);
void st_train_outputs(const st_exec *e, st_node *n);

/* ---------------------------------------------------------------- memory plans (plan.c)
 * A buffer of `size` floats that is live over the steps [first, last] (inclusive).
 * st_plan_place gives each buffer an offset in one arena such that buffers live at a
 * common step never overlap, and returns the arena size in floats ((size_t)-1 when out
 * of memory; error set). Offsets are multiples of 16 floats (64 bytes). */
typedef struct {
    size_t size;
    int first, last;
    size_t offset;
} st_live;
size_t st_plan_place(st_live *bufs, int n);

const st_op *st_find_op(const char *name);
const char *st_op_names(void); /* comma-separated list for error messages */

/* Adds a parameter owned by node n; returns its index or -1 (error set). */
int st_net_add_param(st_net *net, st_node *n, const char *suffix, int ndim, const int *shape,
                     int fan_in, int is_bias);
/* Adds a buffer owned by node n (filled with init_value; is_count: the node's int64
 * counter); returns its index or -1 (error set). */
int st_net_add_buffer(st_net *net, st_node *n, const char *suffix, int ndim, const int *shape, float init_value,
                      int is_count);
st_node *st_net_input_node(st_net *net, st_node *n, int i);
size_t st_node_numel(const st_node *n); /* per sample */

/* Model-file line parser: "name = op(args)". Empty/comment lines give *is_empty = 1. */
st_status st_parse_line(const char *line, char *name, size_t name_len, char *op, size_t op_len,
                        st_args *args, int *is_empty);

#endif
