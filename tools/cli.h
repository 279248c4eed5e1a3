/* cli.h - what the stride command's files share: option parsing and training. */
#ifndef ST_CLI_H
#define ST_CLI_H

#include "stride.h"
#include <stdio.h>

/* ---------------------------------------------------------------- options
 * Each command declares its options in a table; parse_options fills values and
 * rejects unknown options with a message that names them. */
typedef struct {
    const char *name;   /* "--steps" */
    const char *arg;    /* "N" if the option takes a value, NULL for a flag */
    const char *help;
    const char *value;  /* set by parsing (flags: "1") */
} cli_opt;

/* Parses argv[first..] (options anywhere, positionals collected in order).
 * Returns 0, or 2 after printing an error; 1 after printing help (--help). */
int parse_options(const char *cmd, const char *usage, cli_opt *opts, int argc, char **argv, int first,
                  const char **pos, int max_pos, int *npos);
const char *opt_get(const cli_opt *opts, const char *name);
int opt_int(const cli_opt *opts, const char *name, long def, long lo, long hi, long *out);
int opt_double(const cli_opt *opts, const char *name, double def, double *out);
int cli_error(const char *fmt, ...);
int cli_fail(void); /* prints "stride: " + st_errmsg(), returns 1 */
void fmt_thousands(int64_t v, char *buf, size_t len);

/* ---------------------------------------------------------------- training (train.c) */
typedef struct {
    long steps, batch, eval_every;   /* eval_every: steps between evaluations (0: at the end only) */
    long epochs;                     /* > 0: steps come from epochs (set by read_train_opts) */
    st_optim_conf optim;
    const char *schedule;            /* st_schedule_parse text, NULL: constant */
    double clip;                     /* max gradient norm, 0: none */
    double label_smoothing;
    st_augment augment;
    int normalize;                   /* per-channel mean/std of the training set */
    long val;                        /* samples split off the training set for validation */
    long eval_train;                 /* training samples evaluated (<= 0: all) */
    st_init init;
    uint64_t seed;
    const char *log, *save, *label, *checkpoint, *resume;
    long checkpoint_every;           /* steps; 0: at each evaluation */
    int progress;                    /* 0 quiet, 1 plain lines, 2 live bar on a terminal */
} train_opts;

typedef struct {
    int n, cap;
    long *step;
    double *train_loss, *train_err, *test_loss, *test_err, *seconds;
} train_curve;


/* ---------------------------------------------------------------- data files (data_files.c)
 * spec: "fashion-mnist" (Debian's dataset-fashion-mnist), "mnist" (the same place), or a
 * folder holding IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-...), CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin), .npy pairs
 * ({train,test}_{x,y}.npy) or train/ and test/ with one sub-folder of PNG/JPEG images per
 * class (names sorted give the labels). Pixels are scaled to [0, 1]. */
st_status cli_data_read(const char *spec, st_dataset *train, st_dataset *test, const char **format);
int cli_load_data(const char *spec, st_dataset *train, st_dataset *test); /* prints the error, returns 1 */
int cli_data_info(const char *spec);  /* stride data SPEC --info */



/* ---------------------------------------------------------------- tasks and evaluation (task_data.c, evaluate.c, eval_cmd.c)
 * A data spec names a data set and, through its targets, a task. */
typedef enum { TASK_CLASSIFY = 0, TASK_SEGMENT = 1, TASK_KEYPOINTS = 2 } cli_task;
typedef struct {
    st_dataset train, test;      /* test.n == 0 when the source has no test split */
    cli_task task;               /* from the targets: CLASS -> classify, MASK -> segment, DENSE -> keypoints */
    float *train_kp, *test_kp;   /* TASK_KEYPOINTS: (n, max_kp, 4) rows x, y, joint, visible as st_shapes writes them; else NULL */
    int max_kp, kp_stride;       /* keypoint rows per sample; input pixels per heatmap cell */
    char **class_names;          /* NULL or classes names (Fashion-MNIST's 10 names, image-folder names, shapes' names), NULL-terminated */
    char desc[256];              /* one line for humans: "Fashion-MNIST (/usr/share/datasets/fashion-mnist), 60000 train / 10000 test" */
} cli_data;
/* Loads a data spec (prints "stride: ..." on error and returns non-zero):
 *   everything cli_data_read accepts (fashion-mnist, mnist, folders; a .npy folder with float
 *     targets and {train,test}_keypoints.npy beside them is a keypoint task),
 *   mnist1d (the official-default MNIST-1D generated in memory, 4000/1000, shape (1, 40)),
 *   shapes[:n=N,size=S,channels=C,seed=K,noise=F,min=A,max=B,sigma=F,stride=R,split=F]
 *                                   segmentation masks; the first split (0.8) of the images train
 *   shapes-keypoints[:...]          the same images with heatmap targets (DENSE) and keypoints
 *   DIR written by `stride data shapes`: segmentation; DIR:keypoints: its heatmaps and keypoints.
 * shapes:n=N,... holds the same images as `stride data shapes --n N ...`. */
int cli_data_load(const char *spec, cli_data *d);
void cli_data_free(cli_data *d);
const char *cli_task_name(cli_task t); /* "classify", "segment", "keypoints" */
typedef struct {
    int64_t n;                                        /* samples evaluated */
    double loss;                                      /* mean loss: ce (classify, segment: per pixel, ignore none) or mse (keypoints; summed over stacks for supervise outputs, as st_net_loss does) */
    double error, top5;                               /* classify: 1 - accuracy, top-5 accuracy (NaN if classes < 5) */
    double pixel_acc, miou;                           /* segment */
    double pck;                                       /* keypoints: PCK@0.1 (alpha 0.1, peak threshold 0.5) */
    st_confusion *confusion;                          /* classify/segment when want_confusion; caller frees with st_confusion_free */
    st_pck_counts pck_counts;                         /* keypoints: scored keypoints, correct, predicted peaks (else 0) */
} cli_metrics;   /* fields that do not apply are NaN */
/* Evaluates net in eval mode (st_net_forward(..., 0, ...)) on the first max_samples (<= 0: all) samples of ds, batch by batch (no augmentation, no loader thread needed), with kp = keypoints of ds for TASK_KEYPOINTS. Returns 0 or prints an error and returns non-zero. Must not change the net's parameters, buffers or RNG (a training run evaluates between steps and must stay bit-identical). */
int cli_evaluate(st_net *net, const st_dataset *ds, const float *kp, int max_kp, int kp_stride, cli_task task, int batch, int64_t max_samples, int want_confusion, cli_metrics *m);
/* The input normalisation a trainer stores in a weights file's safetensors metadata: keys
 * "data.mean" and "data.std", comma-separated per-channel floats ("0.2860,0.3530"). Returns 1
 * and fills mean and std (channels values each) if both are there, 0 if neither is, -1 after
 * printing an error (unreadable file, only one key, a count other than channels, std <= 0). */
#define CLI_META_MEAN "data.mean"
#define CLI_META_STD "data.std"
int cli_weights_normalization(const char *weights_path, float *mean, float *std, int channels);
int cmd_eval(int argc, char **argv); /* eval_cmd.c: stride eval */

/* Trains net on d (its test split, or a validation split, evaluated every eval_every
 * steps) and fills curve (may be NULL) with each evaluation. */
int train_run(st_net *net, cli_data *d, const train_opts *o, train_curve *curve);
void free_curve(train_curve *c);

int cmd_train(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_equivariance(int argc, char **argv);
int cmd_plot(int argc, char **argv); /* show.c */
int cmd_show(int argc, char **argv);
int cmd_data_shapes(int argc, char **argv); /* data_shapes.c */

#endif
