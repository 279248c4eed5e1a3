/* train_step.c - training speed of any model: forward + loss + backward + SGD step on
 * random data, as images per second; the stride side of the benchmarks in bench/run.sh.
 *   build/bench/train_step MODEL BATCH STEPS [WARMUP] [THREADS]
 * prints one JSON line: {"model": ..., "batch": B, "steps": S, "seconds": T, "images_per_s": R}
 * Labels are random classes of the model's output; segmentation-shaped outputs get one
 * label per pixel. */
#include "stride.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL BATCH STEPS [WARMUP] [THREADS]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), steps = atoi(argv[3]), warmup = argc > 4 ? atoi(argv[4]) : 3;
    if (argc > 5) st_set_threads(atoi(argv[5]));
    st_net *net;
    if (st_net_open(argv[1], &net) || st_net_init(net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    int nd, shape[ST_MAX_DIMS], ond, oshape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    st_net_node_shape(net, st_net_num_nodes(net) - 1, &ond, oshape);
    shape[0] = batch;
    st_tensor *x = st_tensor_new(nd, shape);
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    size_t positions = 1;
    for (int i = 2; i < ond; i++) positions *= (size_t)oshape[i];
    int32_t *labels = malloc(sizeof(int32_t) * batch * positions);
    for (size_t i = 0; i < batch * positions; i++) labels[i] = (int32_t)st_rng_below(&r, (uint32_t)oshape[1]);
    st_sgd_conf c = {0.01f, 0.9f, 0.0f, 0};
    st_sgd *opt;
    if (st_sgd_new(net, &c, &opt)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
    double t0 = 0;
    for (int s = 0; s < warmup + steps; s++) {
        if (s == warmup) t0 = now();
        float loss;
        st_net_zero_grad(net);
        if (st_net_step(net, x, ST_LOSS_CE, labels, NULL, &loss, 0)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
        st_sgd_step(opt);
    }
    double sec = now() - t0;
    printf("{\"model\": \"%s\", \"batch\": %d, \"steps\": %d, \"seconds\": %.4f, \"images_per_s\": %.1f}\n", argv[1], batch,
           steps, sec, (double)batch * steps / sec);
    st_sgd_free(opt);
    free(labels);
    st_tensor_free(x);
    st_net_free(net);
    return 0;
}
