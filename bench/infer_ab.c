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
#include "model.h"
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
    st_net *net = bench_open_model(argv[1]);
    if (!net) return 1;
    st_tensor *x = bench_input(net, batch);
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
