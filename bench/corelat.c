/* corelat.c - the time for a cache line to go from one core to the other and back.
 *
 *   build/bench/corelat [ROUNDS]
 * Two OpenMP threads hand a counter back and forth ROUNDS times (default 100000) and the
 * program prints {"round_trip_ns": ...}, the best of 5 repetitions. On this project's
 * 2-vCPU machine the value is about 55 ns most of the time and about 330 ns in phases that
 * last seconds to minutes; in those phases reads beyond each core's L2 cache are also
 * about 3 times slower, and stride's 2-thread runs slow down by up to 1.3x (ONNX Runtime's
 * by about 1.1x). The suite (bench/suite.py) runs this before every timed process and
 * records the value, so that a result taken in such a phase can be told apart
 * (docs/bench.md, "Slow phases").
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static _Atomic long counter __attribute__((aligned(64)));

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 100000;
    if (rounds <= 0) {
        fprintf(stderr, "usage: %s [ROUNDS > 0]\n", argv[0]);
        return 2;
    }
    double best = -1;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = 0, t1 = 0;
        atomic_store(&counter, 0);
        int team = 1;
#pragma omp parallel num_threads(2)
        {
#ifdef _OPENMP
            int me = omp_get_thread_num();
#pragma omp single
            team = omp_get_num_threads();
#else
            int me = 0;
#endif
            if (team == 2) {
#pragma omp barrier
                if (me == 0) t0 = now();
                /* thread 0 turns even values odd, thread 1 odd values even */
                for (long r = 0; r < rounds; r++) {
                    long mine = 2 * r + me;
                    while (atomic_load_explicit(&counter, memory_order_acquire) != mine) {
                    }
                    atomic_store_explicit(&counter, mine + 1, memory_order_release);
                }
#pragma omp barrier
                if (me == 0) t1 = now();
            }
        }
        if (team != 2) {
            fprintf(stderr, "corelat: needs 2 threads (OpenMP gave %d)\n", team);
            return 1;
        }
        double ns = (t1 - t0) / (double)rounds * 1e9;
        if (best < 0 || ns < best) best = ns;
    }
    printf("{\"round_trip_ns\": %.1f}\n", best);
    return 0;
}
