/* stride.h - convolutional neural networks in C: the one public header.
 *
 * Conventions
 *   - Every name starts with st_ (types st_*, constants ST_*).
 *   - Functions that can fail return st_status; ST_OK (0) is success. The text of the
 *     last error on the calling thread is st_errmsg(); it names the file, line, node or
 *     shape involved. Library code never prints, exits or aborts on user input.
 *   - Tensors are float32, contiguous, row-major, in PyTorch's layouts: (N,C,L) for 1D
 *     signals, (N,C,H,W) for images, (N,F) for features.
 *   - A network (st_net) is an opaque graph of named nodes built from a model file text
 *     (see README.md, "Model files"), from C with st_net_add, or from the zoo.
 *
 * A minimal program:
 *   st_net *net;
 *   if (st_net_from_zoo("mnist1d-cnn", &net)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
 *   st_net_init(net, ST_INIT_HE, 42);
 *   st_tensor *x = st_tensor_new(3, (int[]){100, 1, 40});
 *   const st_tensor *y;                       // (100, 10) logits, owned by the net
 *   st_net_forward(net, x, 0, &y);
 *   st_net_free(net); st_tensor_free(x);
 */
#ifndef STRIDE_H
#define STRIDE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ST_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */
typedef enum {
    ST_OK = 0,
    ST_ERR_ARG,      /* an argument is invalid (unknown option, bad value) */
    ST_ERR_SHAPE,    /* shapes do not fit together */
    ST_ERR_NOMEM,    /* out of memory */
    ST_ERR_IO,       /* a file cannot be opened, read or written */
    ST_ERR_FORMAT,   /* a file is malformed (bad magic, truncated, wrong dtype) */
    ST_ERR_PARSE,    /* a model file has a syntax error or an unknown name */
    ST_ERR_NOTFOUND, /* a named thing (model, node, tensor) does not exist */
    ST_ERR_NUMERIC,  /* a NaN or Inf appeared */
    ST_ERR_STATE     /* a call in the wrong state (e.g. backward before forward) */
} st_status;

const char *st_status_str(st_status s); /* "shape error", ... */
const char *st_errmsg(void);            /* last error text on this thread ("" if none) */

/* ---------------------------------------------------------------- tensors */
#define ST_MAX_DIMS 6

typedef struct {
    int ndim;
    int shape[ST_MAX_DIMS];
    float *data; /* contiguous, row-major */
} st_tensor;

st_tensor *st_tensor_new(int ndim, const int *shape); /* zero-filled; NULL on failure */
void st_tensor_free(st_tensor *t);
size_t st_tensor_numel(const st_tensor *t);
/* "(100, 1, 40)" into buf; returns buf */
char *st_shape_str(int ndim, const int *shape, char *buf, size_t len);

/* ---------------------------------------------------------------- random numbers */
/* A small counter-free generator (xoshiro256**): the same seed gives the same stream on
 * every machine and thread count. */
typedef struct { uint64_t s[4]; int has_gauss; double gauss; } st_rng;
void st_rng_seed(st_rng *r, uint64_t seed);
uint64_t st_rng_u64(st_rng *r);
double st_rng_uniform(st_rng *r);        /* [0, 1) */
double st_rng_normal(st_rng *r);         /* N(0, 1) */
uint32_t st_rng_below(st_rng *r, uint32_t n); /* uniform in 0..n-1, unbiased */
void st_rng_shuffle(st_rng *r, int *a, int n);

/* ---------------------------------------------------------------- arrays and files */
/* An array of any of the dtypes that .npy and .safetensors files hold. */
typedef enum { ST_F32, ST_F64, ST_I32, ST_I64, ST_U8, ST_I8, ST_F16, ST_BF16 } st_dtype;
size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t); /* "float32", ... */

typedef struct {
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    void *data; /* malloc'ed, contiguous, little-endian, C order */
} st_array;

int64_t st_array_numel(const st_array *a);
void st_array_free(st_array *a); /* frees data, leaves a zeroed */
/* Converts a real-valued array (f32, f64, f16, bf16, integers) to a new float tensor. */
st_status st_array_to_tensor(const st_array *a, st_tensor **out);
/* Converts an integer array (i32, i64, u8, i8) to a new int32 buffer (labels). */
st_status st_array_to_labels(const st_array *a, int32_t **out, int64_t *n);

/* .npy (format 1.0/2.0/3.0, little-endian, C order; no pickles). */
st_status st_npy_load(const char *path, st_array *out);
st_status st_npy_save(const char *path, const st_array *a);

/* .safetensors: a list of named arrays plus an optional string->string metadata map. */
typedef struct {
    int n, cap;
    char **names;
    st_array *arrays;
    int n_meta;
    char **meta_keys, **meta_vals;
} st_tensors;

void st_tensors_init(st_tensors *ts);
void st_tensors_free(st_tensors *ts);
/* Adds a copy of a (data copied) under name; replaces an existing entry of that name. */
st_status st_tensors_add(st_tensors *ts, const char *name, const st_array *a);
st_status st_tensors_add_f32(st_tensors *ts, const char *name, int ndim, const int *shape, const float *data);
st_status st_tensors_set_meta(st_tensors *ts, const char *key, const char *val);
const st_array *st_tensors_get(const st_tensors *ts, const char *name); /* NULL if absent */
const char *st_tensors_meta(const st_tensors *ts, const char *key);      /* NULL if absent */
st_status st_safetensors_load(const char *path, st_tensors *out);
/* Writes atomically: a temporary file in the same folder, fsync, rename. */
st_status st_safetensors_save(const char *path, const st_tensors *ts);

/* ---------------------------------------------------------------- MNIST-1D */
/* The generator of Greydanus & Kobak's MNIST-1D, reproducing the official data set
 * exactly with the default arguments (seed 42). */
typedef struct {
    int num_samples;        /* 5000 */
    double train_split;     /* 0.8 */
    int template_len;       /* 12 */
    int padding_min;        /* 36 */
    int padding_max;        /* 60 (inclusive) */
    double scale_coeff;     /* 0.4 */
    int max_translation;    /* 48 */
    double corr_noise_scale;/* 0.25 */
    double iid_noise_scale; /* 0.02 */
    double shear_scale;     /* 0.75 */
    int shuffle_seq;        /* 0 */
    int final_seq_length;   /* 40 */
    uint32_t seed;          /* 42 */
} st_mnist1d_args;

typedef struct {
    int n_train, n_test, length;
    float *train_x, *test_x;   /* (n_train, length), (n_test, length) */
    int32_t *train_y, *test_y; /* labels 0..9 */
    float *t;                  /* (length,) time axis, for plots */
} st_mnist1d;

void st_mnist1d_default_args(st_mnist1d_args *a);
st_status st_mnist1d_generate(const st_mnist1d_args *a, st_mnist1d *out);
void st_mnist1d_free(st_mnist1d *d);

/* ---------------------------------------------------------------- data sets and loading
 * A data set holds float samples (pixels scaled to [0, 1] when read from bytes) and one
 * kind of target. Everything random (a validation split, the epoch's order, each sample's
 * augmentation) is a pure function of (seed, epoch, position), so results depend neither
 * on threads nor on prefetching, and a loader seeked to (epoch, batch) replays a run. */
typedef enum { ST_TARGET_CLASS = 0, ST_TARGET_MASK = 1, ST_TARGET_DENSE = 2 } st_target_kind;
typedef struct {
    int n;                          /* samples */
    int ndim, shape[ST_MAX_DIMS];   /* per-sample shape: (C, L) or (C, H, W) */
    float *x;                       /* n * prod(shape), owned */
    st_target_kind kind;
    int32_t *labels;                /* CLASS: n labels; MASK: n * H * W per-pixel classes */
    float *targets;                 /* DENSE: n * prod(tshape), e.g. keypoint heatmaps */
    int tndim, tshape[ST_MAX_DIMS]; /* DENSE per-sample target shape */
    int classes;                    /* number of classes (CLASS, MASK): largest label + 1 */
} st_dataset;
void st_dataset_free(st_dataset *d); /* frees the buffers, leaves d zeroed */
int64_t st_dataset_sample_size(const st_dataset *d); /* prod(shape) */

/* IDX files (MNIST, Fashion-MNIST), from memory already decompressed: any element type
 * (u8, i8, i16 -> i32, i32, f32, f64), big-endian as stored, into a little-endian array.
 * Checks the magic, the dimensions and the exact length; `what` (a file name) starts
 * every error message. */
st_status st_idx_parse(const void *buf, size_t len, const char *what, st_array *out);
/* An image file (N, H, W) and a label file (N): samples (1, H, W) scaled to [0, 1]. */
st_status st_dataset_from_idx(const void *images, size_t ilen, const void *labels, size_t llen,
                              const char *what, st_dataset *out);
/* CIFAR-10 binary batches: records of 1 label byte + 3072 pixel bytes (3, 32, 32).
 * Appends: *out must be zeroed or hold earlier CIFAR-10 batches. */
st_status st_dataset_from_cifar10(const void *buf, size_t len, const char *what, st_dataset *out);
/* From arrays (e.g. .npy files): x is (N, L), (N, C, L) or (N, C, H, W), u8 scaled by
 * 1/255, other types converted to float. y decides the kind: integers (N) -> CLASS,
 * integers (N, H, W) -> MASK (H, W those of x; negative values are kept as "ignore"),
 * floats (N, ...) -> DENSE. xname and yname start the error messages. */
st_status st_dataset_from_arrays(const st_array *x, const st_array *y, const char *xname,
                                 const char *yname, st_dataset *out);
/* Mean and (population) standard deviation of each channel: shape[0] values each. */
void st_dataset_channel_stats(const st_dataset *d, double *mean, double *std);
/* x = (x - mean[c]) / std[c] per channel. */
void st_dataset_normalize(st_dataset *d, const float *mean, const float *std);
/* Moves n_val samples, chosen at random from `seed`, into *val (both keep their original
 * order). */
st_status st_dataset_split(st_dataset *d, int n_val, uint64_t seed, st_dataset *val);

/* Augmentation, drawn per sample. Zero-filled shifts use 0 for masks and targets too. */
typedef struct {
    int crop_pad;       /* random crop of the image zero-padded by crop_pad on every side */
    int hflip;          /* horizontal flip (last axis) with p = 0.5 */
    int translate;      /* random translation up to +-translate pixels per axis, zero fill */
    int circular_shift; /* 1D signals: roll along L by up to +-circular_shift */
} st_augment;
/* One sample's drawn transform, applied in this order: crop (a shift by crop_pad - offset),
 * translation, flip, roll. For 1D samples the dy fields are 0. */
typedef struct { int crop_dy, crop_dx, shift_dy, shift_dx, flip, roll; } st_augment_params;
void st_augment_draw(const st_augment *a, int spatial_dims, st_rng *r, st_augment_params *p);
/* Applies p to one sample of shape (C, L) or (C, H, W): out and in must not overlap. */
void st_augment_apply(const st_augment_params *p, int ndim, const int *shape, const float *in, float *out);
/* The same to an (H, W) integer mask (1D: h = 1); shifted-in pixels get `fill`. */
void st_augment_apply_labels(const st_augment_params *p, int h, int w, const int32_t *in, int32_t *out,
                             int32_t fill);

/* Batches, prepared one ahead by a background thread (pthreads); small batches (up to
 * 16,384 values, such as MNIST-1D's) are built by st_loader_next itself, which costs less
 * than the hand-over. The data set must outlive the loader and stay unchanged. */
typedef struct st_loader st_loader;
/* aug may be NULL. DENSE targets are augmented with the image: their last one (1D) or
 * two (2D) dimensions must equal the image's. */
st_status st_loader_new(const st_dataset *d, int batch, int shuffle, int drop_last, const st_augment *aug,
                        uint64_t seed, st_loader **out);
/* The next batch: x (B, ...), labels (B, or B*H*W for masks; NULL for DENSE) or targets
 * (B, ...; NULL otherwise); valid until the next call, seek or free. The last batch of an
 * epoch is smaller unless drop_last. Epochs follow one another without end. */
st_status st_loader_next(st_loader *l, const st_tensor **x, const int32_t **labels, const st_tensor **targets);
int64_t st_loader_batches_per_epoch(const st_loader *l);
/* The next st_loader_next returns batch `batch` of epoch `epoch` (for exact resume). */
void st_loader_seek(st_loader *l, int64_t epoch, int64_t batch);
void st_loader_tell(const st_loader *l, int64_t *epoch, int64_t *batch); /* the next batch's place */
/* Builds batch (epoch, batch) directly on the calling thread: what the thread does,
 * without it. x (and targets) must have been made with room for the loader's batch size,
 * labels too; x->shape[0] is set to this batch's size. */
st_status st_loader_batch(const st_loader *l, int64_t epoch, int64_t batch, st_tensor *x, int32_t *labels,
                          st_tensor *targets);
/* total time st_loader_next waited for data (or built it, for small batches) */
double st_loader_wait_seconds(const st_loader *l);
void st_loader_free(st_loader *l);

/* ---------------------------------------------------------------- networks */
typedef struct st_net st_net;

typedef enum { ST_INIT_PYTORCH = 0, ST_INIT_HE = 1 } st_init;
/* ce: softmax cross-entropy on logits; mse: mean squared error; bce: binary cross-entropy
 * on logits (PyTorch's BCEWithLogitsLoss), targets in [0, 1] shaped like the output. */
typedef enum { ST_LOSS_CE = 0, ST_LOSS_MSE = 1, ST_LOSS_BCE = 2 } st_loss;

/* An empty network; nodes are added with st_net_add. */
st_status st_net_new(st_net **out);
void st_net_free(st_net *net);
/* Adds one node from one model-file line, e.g.
 *   "x = input(shape=(1, 40))"
 *   "conv1 = conv1d(x, out_channels=15, kernel_size=3, stride=2, padding='valid')"
 *   "relu1 = relu()"          (no input named: the previous node)
 * Errors name the node and the problem. */
st_status st_net_add(st_net *net, const char *line);
/* Builds a network from model-file text; `source` names it in error messages. */
st_status st_net_parse(const char *text, const char *source, st_net **out);
st_status st_net_load_file(const char *path, st_net **out);
/* Built-in models: "mnist1d-cnn", "mnist1d-mlp", ... */
st_status st_net_from_zoo(const char *name, st_net **out);
/* A built-in name or a model file path. */
st_status st_net_open(const char *name_or_path, st_net **out);
/* A zoo model's model-file text, options included ("resnet18:classes=10"), malloc'ed in
 * *text (free it). ST_ERR_NOTFOUND for an unknown name; ST_ERR_ARG names a bad option. */
st_status st_zoo_model_text(const char *name, char **text);
const char *const *st_zoo_names(void);     /* the base names, NULL-terminated */
/* Writes the network as model-file text (malloc'ed; free it). */
char *st_net_to_text(const st_net *net);

/* Parameters, by PyTorch state_dict name ("conv1.weight"). */
int st_net_num_params(const st_net *net);          /* number of parameter tensors */
int64_t st_net_param_count(const st_net *net);     /* number of learnable scalars */
const char *st_net_param_name(const st_net *net, int i);
st_tensor *st_net_param(st_net *net, int i);       /* values */
st_tensor *st_net_param_grad(st_net *net, int i);  /* gradients */
st_status st_net_init(st_net *net, st_init how, uint64_t seed);
/* Loads parameters by name; shapes are checked and every missing or unexpected name is
 * reported. The net is unchanged when loading fails. */
st_status st_net_load_weights(st_net *net, const char *path);
st_status st_net_save_weights(const st_net *net, const char *path);
st_status st_net_set_weights(st_net *net, const st_tensors *ts);
st_status st_net_get_weights(const st_net *net, st_tensors *out);

/* Running. The input's first dimension is the batch; the rest must match the input
 * node's shape. `train` selects training mode (dropout, batch statistics). The output
 * tensor belongs to the net and is valid until the next forward. */
st_status st_net_forward(st_net *net, const st_tensor *x, int train, const st_tensor **out);
/* Inference: the eval-mode forward pass when no loss or backward follows. Batch norm is
 * folded into the convolution (or linear node) before it, bias, batch norm and ReLU are
 * applied in one pass over the convolution's output, and node outputs share memory once
 * no later node reads them, so a deep network needs a few activations' worth of memory.
 * Only the output is kept (valid until the next pass; st_net_node_output gives NULL for
 * the other nodes). Equals st_net_forward(net, x, 0, out) up to float rounding.
 * It keeps each convolution's weights transformed for its kernel between calls, and
 * remakes them after st_net_param, st_net_init, st_net_set_weights, st_net_load_weights
 * or an optimiser step: a program that writes weights through a pointer kept from an
 * earlier st_net_param call must call st_net_param again before the next st_net_run. */
st_status st_net_run(st_net *net, const st_tensor *x, const st_tensor **out);
/* Loss of the last forward's output against targets: class indices (ce; one per sample for
 * (N, C) logits, one per position for (N, C, ...) logits, mean over the counted ones) or a
 * tensor of the output's shape (mse). Also stores the loss gradient for st_net_backward. */
st_status st_net_loss(st_net *net, st_loss loss, const int32_t *labels, const st_tensor *target,
                      float *loss_out);
/* Cross-entropy targets equal to this index are skipped (PyTorch's ignore_index, default
 * -100). For outputs with positions, (N, C, H, W) logits, the labels are (N, H, W). */
void st_net_set_ignore_index(st_net *net, int index);
/* Backpropagates the gradient stored by st_net_loss; parameter gradients accumulate.
 * If want_input_grad, the input's gradient is kept and st_net_input_grad returns it. */
st_status st_net_backward(st_net *net, int want_input_grad);
const st_tensor *st_net_input_grad(const st_net *net);
/* forward (training mode) + loss + backward in one call: the same gradients as the three
 * calls, with the threads meeting once instead of three times (faster for small nets). */
st_status st_net_step(st_net *net, const st_tensor *x, st_loss loss, const int32_t *labels,
                      const st_tensor *target, float *loss_out, int want_input_grad);
void st_net_zero_grad(st_net *net);
/* Number of threads for all kernels (OpenMP); 0 means all cores. */
void st_set_threads(int n);
int st_get_threads(void);

/* Node inspection, in graph order. */
int st_net_num_nodes(const st_net *net);
const char *st_net_node_name(const st_net *net, int i);
const char *st_net_node_op(const st_net *net, int i);
/* Output shape for batch size 1 (the batch dimension included). */
void st_net_node_shape(const st_net *net, int i, int *ndim, int *shape);
/* Node i's output of the last forward (batch dimension first); NULL before any forward,
 * and for nodes whose memory the last pass reused: after st_net_run every node but the
 * output, after st_net_step on a network with more than 64 MB of activations every node
 * but the output and the heads of intermediate supervision. st_net_forward keeps all. */
const st_tensor *st_net_node_output(const st_net *net, int i);

/* Per-node summary: shapes, parameters, receptive field, MACs (for batch 1). */
typedef struct {
    const char *name, *op;
    int ndim, shape[ST_MAX_DIMS]; /* output shape, batch 1 */
    int64_t params;
    int64_t macs;                 /* multiply-accumulates, batch 1 */
    /* receptive field size and jump per spatial axis (H, W; 1D uses [1]), in input
     * positions: after upsampling or a transposed convolution the jump is a fraction
     * (neighbouring outputs are less than one input apart) */
    double rf[2], jump[2];
    int rf_valid;                 /* 0 where the node has no spatial layout (after flatten) */
} st_node_info;
st_status st_net_node_info(const st_net *net, int i, st_node_info *out);

/* ---------------------------------------------------------------- optimisers */
typedef struct {
    float lr, momentum, weight_decay;
    int nesterov;
} st_sgd_conf;
typedef struct st_sgd st_sgd;
st_status st_sgd_new(st_net *net, const st_sgd_conf *conf, st_sgd **out);
void st_sgd_step(st_sgd *opt);
void st_sgd_free(st_sgd *opt);

/* ---------------------------------------------------------------- training: optimisers, schedules, checkpoints
 * Optimisers that match torch.optim.SGD / Adam / AdamW (PyTorch 1.13, one parameter
 * group, every parameter included in weight decay) step for step. A typical step:
 *   st_optim_set_lr(opt, (float)st_schedule_lr(&sched, step));
 *   st_net_zero_grad(net);
 *   if (st_net_step(net, x, ST_LOSS_CE, labels, NULL, &loss, 0) == ST_ERR_NUMERIC) {
 *       char where[256]; st_net_find_nonfinite(net, where, sizeof where); ... stop }
 *   st_net_clip_grad_norm(net, 1.0);   (optional)
 *   st_optim_step(opt);
 * (st_sgd_* above is SGD through this same code.) */
typedef enum { ST_OPT_SGD = 0, ST_OPT_ADAM = 1, ST_OPT_ADAMW = 2 } st_optim_kind;
typedef struct {
    st_optim_kind kind;
    float lr;            /* learning rate (SGD default 0.1, Adam/AdamW 0.001) */
    float momentum;      /* SGD only */
    float weight_decay;  /* SGD, Adam: added to the gradient (L2); AdamW: decoupled (w *= 1 - lr wd) */
    int nesterov;        /* SGD only; needs momentum > 0 */
    float beta1, beta2, eps; /* Adam/AdamW: 0.9, 0.999, 1e-8 */
} st_optim_conf;
typedef struct st_optim st_optim;
/* PyTorch's defaults for the kind (AdamW: weight_decay 0.01, others 0). */
void st_optim_defaults(st_optim_kind kind, st_optim_conf *c);
/* An optimiser over all of the net's parameters; ST_ERR_ARG names a bad setting. */
st_status st_optim_new(st_net *net, const st_optim_conf *c, st_optim **out);
void st_optim_set_lr(st_optim *o, float lr);
float st_optim_get_lr(const st_optim *o);
long st_optim_steps(const st_optim *o);        /* steps taken (Adam's bias-correction count) */
void st_optim_step(st_optim *o);               /* updates the parameters from their gradients */
void st_optim_free(st_optim *o);
/* The state: tensors "optim.momentum_buffer" (SGD with momentum, after the first step) or
 * "optim.exp_avg", "optim.exp_avg_sq" (Adam, AdamW), 1-D over all parameters in
 * st_net_param order, and metadata "optim.kind" ("sgd", "adam", "adamw") and
 * "optim.step". Settings (lr, betas, ...) are not part of it. set_state checks kind
 * and sizes first and changes nothing on error; check_state only checks. */
st_status st_optim_get_state(const st_optim *o, st_tensors *out);
st_status st_optim_set_state(st_optim *o, const st_tensors *ts);
st_status st_optim_check_state(const st_optim *o, const st_tensors *ts);

/* Learning-rate schedules, closed-form functions of the step t (0-based: the rate of
 * the t-th optimiser step), so a resumed run needs no scheduler state. They reproduce
 * PyTorch's StepLR, MultiStepLR, CosineAnnealingLR stepped once per optimiser step, and
 * with warmup W > 0 SequentialLR([LinearLR(start_factor, total_iters=W), main],
 * milestones=[W]): base (f + (1 - f) t/W) for t < W, then main(t - W). */
typedef enum { ST_SCHED_CONSTANT, ST_SCHED_STEP, ST_SCHED_MULTISTEP, ST_SCHED_COSINE } st_sched_kind;
typedef struct {
    st_sched_kind kind;
    double base_lr;
    long step_size;          /* step: gamma every step_size steps */
    double gamma;            /* step, multistep: 0.1 */
    long milestones[16];     /* multistep: increasing steps where lr *= gamma */
    int n_milestones;
    long t_max;              /* cosine: steps from base_lr to eta_min */
    double eta_min;          /* cosine: 0 */
    long warmup;             /* linear warm-up steps in front (0: none) */
    double warmup_start_factor; /* warm-up starts at base_lr times this (LinearLR's 1/3) */
} st_schedule;
double st_schedule_lr(const st_schedule *s, long step);
void st_schedule_constant(st_schedule *s, double base_lr); /* constant base_lr, other fields at defaults */
/* From text: "constant", "step:SIZE[:GAMMA]", "multistep:M1,M2,...[:GAMMA]",
 * "cosine[:ETA_MIN]" (t_max = total_steps - warmup), then options ",warmup=STEPS",
 * ",warmup_start=FACTOR", ",gamma=G", ",eta_min=E", ",t_max=STEPS"; e.g.
 * "multistep:30,60,90:0.1", "cosine,warmup=500". ST_ERR_ARG names the bad part. */
st_status st_schedule_parse(const char *text, double base_lr, long total_steps, st_schedule *out);

/* torch.nn.utils.clip_grad_norm_: if the L2 norm of all parameter gradients together
 * exceeds max_norm, scales them all by max_norm / (norm + 1e-6). Returns the norm before
 * clipping (NaN or Inf when a gradient is; the gradients then become NaN as in PyTorch). */
double st_net_clip_grad_norm(st_net *net, double max_norm);
/* Cross-entropy label smoothing as F.cross_entropy(label_smoothing=eps): targets
 * (1 - eps) onehot + eps/C, with ignore_index and per-position (N, C, H, W) logits
 * alike; 0 (the default) turns it off. */
void st_net_set_label_smoothing(st_net *net, float eps);
/* The net's dropout random-number state (seeded by st_net_init), for checkpoints. */
void st_net_get_rng(const st_net *net, st_rng *r);
void st_net_set_rng(st_net *net, const st_rng *r);

/* A checkpoint is one .safetensors file: the weights and buffers by state_dict name (so
 * st_net_load_weights-style tools can read them), the optimiser state (opt may be NULL),
 * the net's RNG state ("rng.state") and the caller's metadata (step, epoch, settings: the
 * metadata of extra_meta, which may be NULL; keys optim.*, rng.*, stride.* are reserved).
 * It is written atomically (temporary file, fsync, rename). Loading checks the file
 * against the net and the optimiser (opt NULL: its state is skipped) before changing
 * either, so on error both are unchanged; meta_out (NULL or initialised) receives all
 * of the file's metadata. */
st_status st_checkpoint_save(const char *path, const st_net *net, const st_optim *opt, const st_tensors *extra_meta);
st_status st_checkpoint_load(const char *path, st_net *net, st_optim *opt, st_tensors *meta_out);

/* Where a NaN or Inf is, after a step that failed with ST_ERR_NUMERIC (call it before the
 * next forward, while that step's input still exists): the first node in graph order
 * whose output holds one, else the first parameter gradient, else the first parameter
 * value, e.g. "node 'conv3' (conv2d) output (first non-finite value nan at index 123)".
 * Returns ST_ERR_NUMERIC with that text in `where` and st_errmsg(), or ST_OK and ""
 * when everything is finite. */
st_status st_net_find_nonfinite(const st_net *net, char *where, size_t len);
/* ---------------------------------------------------------------- synthetic shapes and metrics */
/* Images of random circles, squares (rotated by a random angle) and triangles for
 * segmentation and keypoint heatmaps (src/shapes.c). Every image has its own generator
 * seeded from (seed, index): the data do not depend on the thread count, and image i is
 * the same whatever n is. Pixel (row i, column j) covers [j, j+1) x [i, i+1) in image
 * coordinates; a pixel belongs to a shape when its centre (j + 0.5, i + 0.5) lies inside.
 * Every shape keeps at least 60 % of its area visible (later shapes occlude earlier ones,
 * and placements that would hide more are redrawn), and shape intensities (colours)
 * differ from the background and from each other. */
enum { ST_SHAPE_BACKGROUND = 0, ST_SHAPE_CIRCLE = 1, ST_SHAPE_SQUARE = 2, ST_SHAPE_TRIANGLE = 3, ST_SHAPE_CLASSES = 4 };
/* Heatmap channels (joints): one per keypoint kind. */
enum { ST_JOINT_CIRCLE_CENTRE = 0, ST_JOINT_SQUARE_CENTRE = 1, ST_JOINT_SQUARE_CORNER = 2,
       ST_JOINT_TRIANGLE_CENTRE = 3, ST_JOINT_TRIANGLE_CORNER = 4, ST_SHAPE_JOINTS = 5 };
#define ST_SHAPE_KP_PER_SHAPE 5 /* keypoint rows per shape slot: the centre, then up to 4 corners */

typedef struct {
    int n;                     /* images (1000) */
    int size;                  /* side in pixels (64) */
    int channels;              /* 1 grey (default), 3 coloured */
    int min_shapes, max_shapes;/* shapes per image, uniform (1..4) */
    double noise;              /* standard deviation of the added Gaussian pixel noise (0.1) */
    uint64_t seed;             /* (1) */
    int sigma_x10;             /* heatmap Gaussian sigma in heatmap pixels, times 10 (10: sigma 1) */
    int heatmap_stride;        /* heatmap side = size / heatmap_stride (4: the hourglass's output) */
} st_shapes_conf;
void st_shapes_defaults(st_shapes_conf *c);

typedef struct {
    int n, channels, size;
    float *images;     /* (n, channels, size, size): background and shapes in [0, 1], plus noise (not clipped) */
    int32_t *masks;    /* (n, size, size): ST_SHAPE_BACKGROUND .. ST_SHAPE_TRIANGLE */
    int joints;        /* ST_SHAPE_JOINTS heatmap channels, ST_JOINT_* */
    int hs, stride;    /* heatmap side and stride: heatmap cell (u, v) is centred on image point
                        * ((v + 0.5) * stride, (u + 0.5) * stride) */
    float *heatmaps;   /* (n, joints, hs, hs): per channel the maximum of Gaussians
                        * exp(-d^2 / (2 sigma^2)), d in heatmap cells, at its visible keypoints */
    int max_keypoints; /* K = max_shapes * ST_SHAPE_KP_PER_SHAPE */
    float *keypoints;  /* (n, K, 4): x, y (image coordinates, pixels), joint (ST_JOINT_*, -1 for an
                        * unused row), visible: 0 hidden, 1 visible, 2 visible but ambiguous.
                        * Rows 5s..5s+4 are shape s (drawing order): its centre, then its corners.
                        * A keypoint is visible when it lies inside the image and no later shape
                        * covers it (nor, for a corner, the point a quarter of the way to the
                        * centre); ambiguous when a same-channel keypoint of another shape is
                        * within 3 heatmap cells (their bumps may merge into one peak).
                        * Visible keypoints (1 and 2) have bumps; PCK scores only 1. */
} st_shapes;
st_status st_shapes_generate(const st_shapes_conf *c, st_shapes *out);
void st_shapes_free(st_shapes *s); /* frees the arrays, leaves s zeroed */

/* Metrics (src/metrics.c). A confusion matrix: counts[t * classes + p] is the number of
 * items of true class t predicted as p. Ratios that are 0/0 are NaN. */
typedef struct st_confusion st_confusion;
st_status st_confusion_new(int classes, st_confusion **out);
void st_confusion_free(st_confusion *c);
void st_confusion_reset(st_confusion *c);
int st_confusion_classes(const st_confusion *c);
/* Adds argmax predictions of logits (n, classes, positions) against labels (n, positions):
 * positions = 1 for classification, H*W for (N, C, H, W) segmentation logits. The argmax
 * is the first maximum (NaN never wins). Labels equal to ignore_index are skipped; any
 * other label outside 0..classes-1 is an error (nothing is added then). */
st_status st_confusion_add_logits(st_confusion *c, const float *logits, const int32_t *labels, int n,
                                  int classes, int positions, int ignore_index);
/* Adds predicted labels against true labels (both n); same label rules. */
st_status st_confusion_add_labels(st_confusion *c, const int32_t *pred, const int32_t *labels, int64_t n,
                                  int ignore_index);
const int64_t *st_confusion_counts(const st_confusion *c);
int64_t st_confusion_total(const st_confusion *c);
double st_confusion_accuracy(const st_confusion *c); /* trace / total: pixel accuracy for segmentation */
/* Per class (arrays of `classes`): precision TP/(TP+FP), recall TP/(TP+FN); either may be NULL. */
void st_confusion_precision_recall(const st_confusion *c, double *precision, double *recall);
void st_confusion_iou(const st_confusion *c, double *iou); /* per class TP/(TP+FP+FN) */
/* Mean IoU over the classes present in the truth or the prediction (TP+FP+FN > 0). */
double st_confusion_mean_iou(const st_confusion *c);
/* Number of samples whose label is among the k largest of its logits (n, classes); ties
 * go to the lower class index, so k = 1 agrees with the confusion's argmax. */
st_status st_topk_correct(const float *logits, const int32_t *labels, int n, int classes, int k, int64_t *correct);

/* PCK for heatmaps with several instances per channel (src/metrics.c).
 * keypoints: (n, max_keypoints, 4) rows x, y, joint, visible as st_shapes writes them;
 * only rows with visible == 1 are scored. Predicted peaks of a channel: cells with value >= threshold that beat their 8
 * neighbours (ties: the lower index wins), each refined by a quarter cell towards its
 * higher neighbour on each axis (Newell et al.), mapped to image coordinates
 * ((v + 0.5) * stride, ...). Each visible ground-truth keypoint of that image and channel
 * is matched one-to-one, greedily by increasing distance, to a peak within
 * alpha * (hs * stride): the normaliser is the image side, because with shapes a tenth of the
 * image wide a fraction of the shape's size would fall below one heatmap cell and measure
 * the grid, not the model. PCK = correct / keypoints; peaks - correct are false detections. */
typedef struct { int64_t keypoints, correct, peaks; } st_pck_counts; /* accumulated by st_pck_add */
st_status st_pck_add(st_pck_counts *acc, const float *heatmaps, int n, int joints, int hs, int stride,
                     const float *keypoints, int max_keypoints, double alpha, double threshold);
double st_pck(const st_pck_counts *acc); /* correct / keypoints (NaN if none) */

#ifdef __cplusplus
}
#endif
#endif /* STRIDE_H */
