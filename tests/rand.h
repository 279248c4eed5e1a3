/* rand.h - the tests' seeded random numbers: splitmix64 on a per-file state, so every run
 * on every machine draws the same shapes and values. A test sets its own starting state
 * with `#define TEST_SEED 0x...ULL` before including this file. Everything is static
 * inline, so a test that leaves a helper unused gets no warning.
 */
#ifndef ST_TEST_RAND_H
#define ST_TEST_RAND_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_SEED
#define TEST_SEED 0x9e3779b97f4a7c15ULL
#endif

static uint64_t rng_state = TEST_SEED;
static inline uint64_t rnd64(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
/* An integer in [lo, hi]. */
static inline int rint_in(int lo, int hi) { return lo + (int)(rnd64() % (uint64_t)(hi - lo + 1)); }
/* A double in [lo, hi). */
static inline double runif_in(double lo, double hi) { return lo + (hi - lo) * (double)(rnd64() >> 11) * 0x1p-53; }
/* A float in [-1, 1). */
static inline float runif_pm1(void) { return (float)((double)(rnd64() >> 11) * 0x1p-53 * 2 - 1); }

/* Float arrays (exit on allocation failure: tests only): uninitialised, uniform in
 * [-1, 1), a copy. */
static inline float *alloc_f(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}
static inline float *rand_f(size_t n) {
    float *p = alloc_f(n);
    for (size_t i = 0; i < n; i++) p[i] = runif_pm1();
    return p;
}
static inline float *copy_f(const float *a, size_t n) {
    float *p = alloc_f(n);
    memcpy(p, a, n * sizeof(float));
    return p;
}
#endif
