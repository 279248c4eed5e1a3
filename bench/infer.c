/* infer.c - inference speed and memory of any model: eval-mode passes over one random
 * batch; the stride side of the inference benchmarks.
 *   build/bench/infer MODEL BATCH ITERS [THREADS] [MODE]
 * MODE: run (st_net_run: folded batch norm, fused bias + ReLU, shared activations; the
 * default) or forward (st_net_forward in eval mode: every node's output kept).
 * After one untimed warm-up pass, times ITERS passes and prints one JSON line:
 *   {"model": ..., "batch": B, "iters": I, "threads": T, "mode": ..., "seconds_per_batch":
 *    mean, "min_seconds_per_batch": fastest, "images_per_s": B / mean, "max_rss_mb": peak}
 * max_rss_mb is the process's peak resident memory (getrusage), weights included. */
#include "stride.h"
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL BATCH ITERS [THREADS] [run|forward]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), iters = atoi(argv[3]), threads = argc > 4 ? atoi(argv[4]) : 0;
    const char *mode = argc > 5 ? argv[5] : "run";
    int use_run = !strcmp(mode, "run");
    if (batch < 1 || iters < 1 || (!use_run && strcmp(mode, "forward"))) {
        fprintf(stderr, "usage: %s MODEL BATCH ITERS [THREADS] [run|forward]\n", argv[0]);
        return 2;
    }
    st_set_threads(threads);
    st_net *net = bench_open_model(argv[1]);
    if (!net) return 1;
    st_tensor *x = bench_input(net, batch);
    double total = 0, best = 1e30;
    for (int it = 0; it <= iters; it++) {
        const st_tensor *y;
        double t0 = now();
        st_status rc = use_run ? st_net_run(net, x, &y) : st_net_forward(net, x, 0, &y);
        double dt = now() - t0;
        if (rc) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
        if (it == 0) continue; /* warm-up: plans, allocations, first touches */
        total += dt;
        if (dt < best) best = dt;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"model\": \"%s\", \"batch\": %d, \"iters\": %d, \"threads\": %d, \"mode\": \"%s\", \"seconds_per_batch\": %.5f, "
           "\"min_seconds_per_batch\": %.5f, \"images_per_s\": %.2f, \"max_rss_mb\": %.1f}\n",
           argv[1], batch, iters, st_get_threads(), mode, total / iters, best, batch * iters / total, ru.ru_maxrss / 1024.0);
    st_tensor_free(x);
    st_net_free(net);
    return 0;
}
