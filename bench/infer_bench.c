/* infer_bench.c - inference speed of any model through the public API: st_net_open,
 * st_net_init (random weights: the speed does not depend on the values), then
 * st_net_run (inference: batch norm folded, epilogues fused, activation memory reused) on a
 * random batch, timed as bench/timing.h describes.
 *
 *   build/bench/infer_bench MODEL BATCH [THREADS [WARMUP MIN_REPS MAX_REPS SECONDS]]
 * prints one JSON line:
 *   {"model": "resnet18", "batch": 8, "threads": 2, "reps": 12, "best_s": 0.21,
 *    "median_s": 0.22, "images_per_s": 38.1, "macs_per_image": 1814073344, "params": 11689512}
 * images_per_s is BATCH / best_s; macs_per_image the sum of `stride summary`'s MACs (the
 * suite turns it into FLOPs for every implementation of the model).
 * With MIN_REPS 0 the model is only built and its size printed (no timing).
 */
#include "stride.h"
#include "timing.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    st_net *net;
    st_tensor *x;
} job;

static int forward(void *p) {
    job *j = p;
    const st_tensor *y;
    if (st_net_run(j->net, j->x, &y)) return 1;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL BATCH [THREADS [WARMUP MIN_REPS MAX_REPS SECONDS]]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), threads = argc > 3 ? atoi(argv[3]) : 2;
    bench_plan plan = {2, 3, 100, 2.0};
    bench_plan_args(&plan, argc, argv, 4);
    int only_size = argc > 5 && atoi(argv[5]) == 0;
    if (batch < 1) {
        fprintf(stderr, "infer_bench: BATCH must be >= 1\n");
        return 2;
    }
    st_set_threads(threads);
    job j = {0};
    if (st_net_open(argv[1], &j.net) || st_net_init(j.net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "infer_bench: %s\n", st_errmsg());
        return 1;
    }
    int64_t macs = 0;
    for (int i = 0; i < st_net_num_nodes(j.net); i++) {
        st_node_info info;
        if (st_net_node_info(j.net, i, &info) == ST_OK) macs += info.macs;
    }
    if (only_size) {
        printf("{\"model\": \"%s\", \"macs_per_image\": %lld, \"params\": %lld}\n", argv[1], (long long)macs,
               (long long)st_net_param_count(j.net));
        st_net_free(j.net);
        return 0;
    }
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(j.net, 0, &nd, shape);
    shape[0] = batch;
    j.x = st_tensor_new(nd, shape);
    if (!j.x) {
        fprintf(stderr, "infer_bench: out of memory\n");
        return 1;
    }
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(j.x); i++) j.x->data[i] = (float)st_rng_normal(&r);
    bench_result res;
    if (bench_run(forward, &j, &plan, &res)) {
        fprintf(stderr, "infer_bench: %s\n", st_errmsg());
        return 1;
    }
    printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"reps\": %d, \"best_s\": %.6f, \"median_s\": %.6f, "
           "\"images_per_s\": %.2f, \"macs_per_image\": %lld, \"params\": %lld}\n",
           argv[1], batch, st_get_threads(), res.reps, res.best, res.median, batch / res.best, (long long)macs,
           (long long)st_net_param_count(j.net));
    st_tensor_free(j.x);
    st_net_free(j.net);
    return 0;
}
