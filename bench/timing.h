/* timing.h - the timed loop shared by the C benchmark programs in bench/ (header only).
 *
 * A measurement runs `warmup` untimed calls (first-touch page faults, caches, thread start-up),
 * then timed calls, each timed on its own, until at least `min_reps` calls and `seconds` of
 * timed work are done, or `max_reps` calls. It reports the best (minimum) and the median
 * time of one call: on a machine shared with other work the best is the least disturbed
 * call, the median what a typical call costs. The PyTorch and ONNX Runtime sides
 * (bench/torch_bench.py, bench/ort_bench.py) time their calls the same way.
 */
#ifndef ST_BENCH_TIMING_H
#define ST_BENCH_TIMING_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    int warmup, min_reps, max_reps;
    double seconds; /* timed work to do at least (unless max_reps comes first) */
} bench_plan;

typedef struct {
    int reps;
    double best, median, total; /* seconds: one call's minimum and median, all calls */
} bench_result;

static inline double bench_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs fn(ctx) as the plan says; fn returns 0 on success. Returns non-zero if fn failed or
 * memory ran out (then *r is not filled). */
static inline int bench_run(int (*fn)(void *), void *ctx, const bench_plan *p, bench_result *r) {
    int max_reps = p->max_reps > 0 ? p->max_reps : 1;
    double *t = malloc(sizeof(double) * (size_t)max_reps);
    if (!t) return 1;
    for (int i = 0; i < p->warmup; i++)
        if (fn(ctx)) { free(t); return 1; }
    int n = 0;
    double total = 0;
    while (n < max_reps && (n < p->min_reps || total < p->seconds)) {
        double t0 = bench_now();
        if (fn(ctx)) { free(t); return 1; }
        t[n] = bench_now() - t0;
        total += t[n++];
    }
    qsort(t, (size_t)n, sizeof(double), bench_cmp);
    r->reps = n;
    r->best = t[0];
    r->median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    r->total = total;
    free(t);
    return 0;
}

/* Reads the plan from argv[i..i+3] where present: WARMUP MIN_REPS MAX_REPS SECONDS. */
static inline void bench_plan_args(bench_plan *p, int argc, char **argv, int i) {
    if (argc > i) p->warmup = atoi(argv[i]);
    if (argc > i + 1) p->min_reps = atoi(argv[i + 1]);
    if (argc > i + 2) p->max_reps = atoi(argv[i + 2]);
    if (argc > i + 3) p->seconds = atof(argv[i + 3]);
    if (p->warmup < 0) p->warmup = 0;
    if (p->min_reps < 1) p->min_reps = 1;
    if (p->max_reps < p->min_reps) p->max_reps = p->min_reps;
}

#endif
