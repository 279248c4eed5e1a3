/* test.h - a tiny test harness: CHECK counts, every failure prints file:line and a
 * message, and test_done() prints "N passed, N failed" and returns the exit status. */
#ifndef ST_TEST_H
#define ST_TEST_H
#include <stdio.h>
#include <math.h>

static int test_passed, test_failed;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (cond) test_passed++;                                                 \
        else {                                                                   \
            test_failed++;                                                       \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                 \
            fprintf(stderr, __VA_ARGS__);                                        \
            fprintf(stderr, "\n");                                               \
        }                                                                        \
    } while (0)

/* Max |a - b| over n floats. */
static inline double test_maxdiff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}
static inline double test_maxabs(const float *a, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) if (fabs((double)a[i]) > m) m = fabs((double)a[i]);
    return m;
}

static inline int test_done(const char *name) {
    printf("%s: %d passed, %d failed\n", name, test_passed, test_failed);
    return test_failed ? 1 : 0;
}
#endif
