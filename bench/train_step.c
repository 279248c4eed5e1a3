/* train_step.c - training speed of any model: forward + loss + backward + SGD step (momentum
 * 0.9) on random data, timed step by step as bench/timing.h describes.
 *   build/bench/train_step MODEL BATCH STEPS [WARMUP [THREADS [SECONDS]]]
 * runs WARMUP untimed steps (default 3), then STEPS timed ones, or, with SECONDS, timed steps
 * until SECONDS have passed (at least 3, at most STEPS). Prints one JSON line:
 *   {"model": ..., "batch": B, "threads": T, "steps": S, "seconds": T, "images_per_s": R,
 *    "best_s": ..., "median_s": ..., "macs_per_image": M}
 * seconds is the sum of the timed steps and images_per_s B * S / seconds (the mean);
 * best_s and median_s are one step's minimum and median; macs_per_image is the forward
 * pass's multiply-accumulates for one sample (`stride summary`'s total).
 * Labels are random classes of the model's output; segmentation-shaped outputs get one
 * label per pixel. */
#include "stride.h"
#include "timing.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    st_net *net;
    st_sgd *opt;
    st_tensor *x;
    int32_t *labels;
} job;

static int step(void *p) {
    job *j = p;
    float loss;
    st_net_zero_grad(j->net);
    if (st_net_step(j->net, j->x, ST_LOSS_CE, j->labels, NULL, &loss, 0)) return 1;
    st_sgd_step(j->opt);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL BATCH STEPS [WARMUP [THREADS [SECONDS]]]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), steps = atoi(argv[3]);
    bench_plan plan = {argc > 4 ? atoi(argv[4]) : 3, 3, steps, argc > 6 ? atof(argv[6]) : 1e30};
    if (plan.min_reps > steps) plan.min_reps = steps;
    if (batch < 1 || steps < 1 || plan.warmup < 0) {
        fprintf(stderr, "train_step: BATCH and STEPS must be >= 1, WARMUP >= 0\n");
        return 2;
    }
    if (argc > 5) st_set_threads(atoi(argv[5]));
    job j = {0};
    if (st_net_open(argv[1], &j.net) || st_net_init(j.net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    int64_t macs = 0;
    for (int i = 0; i < st_net_num_nodes(j.net); i++) {
        st_node_info info;
        if (st_net_node_info(j.net, i, &info) == ST_OK) macs += info.macs;
    }
    int nd, shape[ST_MAX_DIMS], ond, oshape[ST_MAX_DIMS];
    st_net_node_shape(j.net, 0, &nd, shape);
    st_net_node_shape(j.net, st_net_num_nodes(j.net) - 1, &ond, oshape);
    shape[0] = batch;
    j.x = st_tensor_new(nd, shape);
    size_t positions = 1;
    for (int i = 2; i < ond; i++) positions *= (size_t)oshape[i];
    j.labels = malloc(sizeof(int32_t) * batch * positions);
    if (!j.x || !j.labels) {
        fprintf(stderr, "train_step: out of memory\n");
        return 1;
    }
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(j.x); i++) j.x->data[i] = (float)st_rng_normal(&r);
    for (size_t i = 0; i < batch * positions; i++) j.labels[i] = (int32_t)st_rng_below(&r, (uint32_t)oshape[1]);
    st_sgd_conf c = {0.01f, 0.9f, 0.0f, 0};
    if (st_sgd_new(j.net, &c, &j.opt)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
    bench_result res;
    if (bench_run(step, &j, &plan, &res)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
    printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"steps\": %d, \"seconds\": %.4f, \"images_per_s\": %.1f, "
           "\"best_s\": %.6f, \"median_s\": %.6f, \"macs_per_image\": %lld}\n",
           argv[1], batch, st_get_threads(), res.reps, res.total, (double)batch * res.reps / res.total, res.best,
           res.median, (long long)macs);
    st_sgd_free(j.opt);
    free(j.labels);
    st_tensor_free(j.x);
    st_net_free(j.net);
    return 0;
}
