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

/* ---------------------------------------------------------------- data and training */
typedef struct {
    int n_train, n_test, features;   /* features per sample */
    float *train_x, *test_x;
    int32_t *train_y, *test_y;
    int classes;
} dataset;

int load_dataset(const char *dir, dataset *d);    /* DIR/{train,test}_{x,y}.npy, or NULL: MNIST-1D */
void free_dataset(dataset *d);

typedef struct {
    long steps, batch, eval_every;
    double lr, momentum, weight_decay;
    int nesterov;
    st_init init;
    uint64_t seed;
    const char *log, *save, *label;
    int progress;                    /* 0 quiet, 1 plain lines, 2 live bar on a terminal */
} train_opts;

typedef struct {
    int n, cap;
    long *step;
    double *train_loss, *train_err, *test_loss, *test_err, *seconds;
} train_curve;

int train_run(st_net *net, const dataset *d, const train_opts *o, train_curve *curve);
void free_curve(train_curve *c);

/* ---------------------------------------------------------------- data files (data_files.c)
 * spec: "fashion-mnist" (Debian's dataset-fashion-mnist), "mnist" (the same place), or a
 * folder holding IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
 * t10k-...), CIFAR-10 binary batches (data_batch_1..5.bin, test_batch.bin), .npy pairs
 * ({train,test}_{x,y}.npy) or train/ and test/ with one sub-folder of PNG/JPEG images per
 * class (names sorted give the labels). Pixels are scaled to [0, 1]. */
st_status cli_data_read(const char *spec, st_dataset *train, st_dataset *test, const char **format);
int cli_load_data(const char *spec, st_dataset *train, st_dataset *test); /* prints the error, returns 1 */
int cli_data_info(const char *spec);  /* stride data SPEC --info */

int cmd_train(int argc, char **argv);
int cmd_experiment(int argc, char **argv);
int cmd_equivariance(int argc, char **argv);
int cmd_plot(int argc, char **argv); /* show.c */
int cmd_show(int argc, char **argv);
int cmd_data_shapes(int argc, char **argv); /* data_shapes.c */

#endif
