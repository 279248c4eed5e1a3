/* peak.c - the machine's measured FP32 peak: how many floating-point operations per second
 * its FMA units can do when nothing else limits them.
 *
 *   build/bench/peak [SECONDS] [THREADS]
 * prints one JSON line, e.g.
 *   {"isa": "avx512", "gflops": {"1": 114.2, "2": 227.9}, "per_isa": {...}, ...}
 * "gflops" holds the best instruction set's result for 1 thread and for THREADS threads
 * (default 2); "per_isa" every instruction set this CPU runs (avx512, avx2, scalar).
 *
 * Method: each thread runs ACC independent chains acc[j] = acc[j] * m + a of fused
 * multiply-adds on whole vector registers. One FMA has a latency of about 4 cycles and a
 * core issues up to 2 per cycle, so at least 8 chains must be in flight to keep both units
 * busy; ACC = 16 leaves a margin and still fits in the 16 (AVX2) or 32 (AVX-512) vector
 * registers. Counting 2 FLOPs per lane per FMA, a run of ITER rounds does
 * 2 * lanes * ACC * ITER FLOPs per thread. m is just below 1 and a tiny, so the values stay
 * bounded and normal (no overflow, no denormals that would slow the units down). The
 * accumulators are summed and printed so the compiler cannot drop the work. Each
 * measurement is repeated and the best time kept: other processes on the machine can only
 * make a run slower, never faster.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ST_X86 1
#endif

enum { ACC = 16 };

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#ifdef ST_X86
/* ACC chains of 16-float FMAs, iter rounds; returns a sum of the results. */
__attribute__((target("avx512f"))) static float chains_avx512(long iter) {
    __m512 acc[ACC];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
    for (int j = 0; j < ACC; j++) acc[j] = _mm512_set1_ps((float)j);
    for (long i = 0; i < iter; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm512_fmadd_ps(acc[j], m, a);
    __m512 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm512_add_ps(s, acc[j]);
    return _mm512_reduce_add_ps(s);
}

/* The same with 8-float AVX2 registers. */
__attribute__((target("avx2,fma"))) static float chains_avx2(long iter) {
    __m256 acc[ACC];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
    for (int j = 0; j < ACC; j++) acc[j] = _mm256_set1_ps((float)j);
    for (long i = 0; i < iter; i++)
        for (int j = 0; j < ACC; j++) acc[j] = _mm256_fmadd_ps(acc[j], m, a);
    __m256 s = acc[0];
    for (int j = 1; j < ACC; j++) s = _mm256_add_ps(s, acc[j]);
    float out[8], r = 0;
    _mm256_storeu_ps(out, s);
    for (int j = 0; j < 8; j++) r += out[j];
    return r;
}
#endif

/* Scalar chains: what a CPU without the vector extensions above can do (or the compiler
 * makes of plain C). */
static float chains_scalar(long iter) {
    float acc[ACC];
    for (int j = 0; j < ACC; j++) acc[j] = (float)j;
    for (long i = 0; i < iter; i++)
        for (int j = 0; j < ACC; j++) acc[j] = acc[j] * 0.999999f + 1e-6f;
    float s = 0;
    for (int j = 0; j < ACC; j++) s += acc[j];
    return s;
}

typedef struct {
    const char *name;
    int lanes;
    float (*fn)(long);
} isa;

static volatile float sink; /* keeps the results alive */

/* Best GFLOP/s of `reps` runs of `iter` rounds on `threads` threads (each thread its own
 * chains; the time is the wall clock from the common start to the last thread's end). */
static double measure(const isa *k, int threads, long iter, int reps) {
    double best = 0;
    for (int r = 0; r < reps; r++) {
        float total = 0;
        double t0 = now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(+ : total)
        total += k->fn(iter);
#else
        total = k->fn(iter);
        threads = 1;
#endif
        double sec = now() - t0;
        sink = total;
        double gflops = 2.0 * k->lanes * ACC * (double)iter * threads / sec * 1e-9;
        if (gflops > best) best = gflops;
    }
    return best;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 2.0; /* total budget, split over the runs */
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (seconds <= 0 || threads < 1) {
        fprintf(stderr, "usage: %s [SECONDS > 0] [THREADS >= 1]\n", argv[0]);
        return 2;
    }
    isa isas[3];
    int n = 0;
#ifdef ST_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) isas[n++] = (isa){"avx512", 16, chains_avx512};
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) isas[n++] = (isa){"avx2", 8, chains_avx2};
#endif
    isas[n++] = (isa){"scalar", 1, chains_scalar};

    const int reps = 5;
    double res[3][2];
    int best = 0;
    for (int i = 0; i < n; i++) {
        /* calibrate: rounds for about 1/(reps * 2 * n) of the budget per run on one thread */
        long iter = 1000;
        for (;;) {
            double t0 = now();
            sink = isas[i].fn(iter);
            double t = now() - t0;
            if (t > 0.01 || iter > (1L << 40)) {
                iter = (long)((double)iter * (seconds / (reps * 2.0 * n)) / t) + 1;
                break;
            }
            iter *= 4;
        }
        res[i][0] = measure(&isas[i], 1, iter, reps);
        res[i][1] = measure(&isas[i], threads, iter, reps);
        if (res[i][1] > res[best][1]) best = i;
    }
    printf("{\"isa\": \"%s\", \"threads\": %d, \"gflops\": {\"1\": %.1f, \"%d\": %.1f}, \"per_isa\": {", isas[best].name,
           threads, res[best][0], threads, res[best][1]);
    for (int i = 0; i < n; i++)
        printf("%s\"%s\": {\"1\": %.1f, \"%d\": %.1f}", i ? ", " : "", isas[i].name, res[i][0], threads, res[i][1]);
    printf("}, \"accumulators\": %d}\n", ACC);
    return 0;
}
