/* infer_ab.c - st_net_run with and without prepared weights (net.c), A/B in one process.
 *
 *   build/bench/infer_ab MODEL BATCH [ROUNDS [THREADS]]
 * Opens MODEL with random weights and, ROUNDS times (default 10), runs one st_net_run
 * without prepared weights and one with (each after a warm-up call in its mode, since
 * switching drops or remakes the prepared copies), timing each by the process's CPU
 * time (on a shared machine wall time is not reproducible; with 1 thread, the default,
 * that is the work done). Prints the best and median of each and their ratio, and the
 * process's peak memory. A developer's tool for the A/B measurements in conv.c.
 */
#include "internal.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL BATCH [ROUNDS [THREADS]]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), rounds = argc > 3 ? atoi(argv[3]) : 10, threads = argc > 4 ? atoi(argv[4]) : 1;
    if (batch < 1 || rounds < 1) return 2;
    st_set_threads(threads);
    st_net *net;
    if (st_net_open(argv[1], &net) || st_net_init(net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    shape[0] = batch;
    st_tensor *x = st_tensor_new(nd, shape);
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    double *t[2] = {malloc(sizeof(double) * rounds), malloc(sizeof(double) * rounds)};
    const st_tensor *y;
    for (int k = 0; k < rounds; k++)
        for (int mode = 0; mode < 2; mode++) {
            st_net_use_prepared(mode);
            if (st_net_run(net, x, &y)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
            double t0 = cpu_now();
            st_net_run(net, x, &y);
            t[mode][k] = cpu_now() - t0;
        }
    for (int mode = 0; mode < 2; mode++) qsort(t[mode], (size_t)rounds, sizeof(double), bench_cmp);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%s batch %d, %d threads: without %.2f ms (median %.2f), prepared %.2f ms (median %.2f): %.3fx; "
           "max RSS %.0f MB\n", argv[1], batch, st_get_threads(), t[0][0] * 1e3, t[0][rounds / 2] * 1e3, t[1][0] * 1e3,
           t[1][rounds / 2] * 1e3, t[0][0] / t[1][0], ru.ru_maxrss / 1024.0);
    st_tensor_free(x);
    st_net_free(net);
    return 0;
}
