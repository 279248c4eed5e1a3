/* util.c - errors, strings, aligned memory, tensors and the random number generator. */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (Linux), beside POSIX */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- errors */
static _Thread_local char errbuf[1024];

const char *st_status_str(st_status s) {
    switch (s) {
    case ST_OK: return "ok";
    case ST_ERR_ARG: return "invalid argument";
    case ST_ERR_SHAPE: return "shape error";
    case ST_ERR_NOMEM: return "out of memory";
    case ST_ERR_IO: return "i/o error";
    case ST_ERR_FORMAT: return "malformed file";
    case ST_ERR_PARSE: return "model file error";
    case ST_ERR_NOTFOUND: return "not found";
    case ST_ERR_NUMERIC: return "numeric error";
    case ST_ERR_STATE: return "invalid state";
    }
    return "unknown error";
}

const char *st_errmsg(void) { return errbuf; }

st_status st_fail(st_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return code;
}

st_status st_fail_prefix(st_status code, const char *fmt, ...) {
    char old[sizeof errbuf], pre[512];
    memcpy(old, errbuf, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    snprintf(errbuf, sizeof errbuf, "%s%s", pre, old);
    return code;
}

char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Large blocks (the activation arena, weights, prepared copies, packing buffers) are
 * aligned to 2 MB and asked for transparent huge pages, where the kernel offers them on
 * request (Linux's default THP mode is "madvise"): with 4 KB pages, which physical pages
 * back a buffer changes from run to run, and so do cache-set conflicts and TLB misses;
 * resnet50 at batch 1 on 2 threads took 38-39 ms in most processes and 50-54 ms in some. */
#define HUGE_MIN ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

void *st_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
#if defined(MADV_HUGEPAGE)
    if (bytes >= HUGE_MIN) {
        size_t whole = (bytes + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1);
        if (posix_memalign(&p, HUGE_ALIGN, whole) != 0) return NULL;
        madvise(p, whole, MADV_HUGEPAGE); /* a hint: without it, plain pages */
        memset(p, 0, bytes);
        return p;
    }
#endif
    if (posix_memalign(&p, 64, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

void st_aligned_free(void *p) { free(p); }

/* ---------------------------------------------------------------- threads */
void st_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int st_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---------------------------------------------------------------- tensors */
st_tensor *st_tensor_new(int ndim, const int *shape) {
    if (ndim < 0 || ndim > ST_MAX_DIMS) {
        st_fail(ST_ERR_ARG, "tensor: %d dimensions (at most %d)", ndim, ST_MAX_DIMS);
        return NULL;
    }
    st_tensor *t = calloc(1, sizeof *t);
    if (!t) { st_fail(ST_ERR_NOMEM, "tensor: out of memory"); return NULL; }
    t->ndim = ndim;
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) { free(t); st_fail(ST_ERR_ARG, "tensor: negative dimension"); return NULL; }
        t->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    t->data = st_aligned_alloc(n * sizeof(float));
    if (!t->data) { free(t); st_fail(ST_ERR_NOMEM, "tensor: out of memory for %zu floats", n); return NULL; }
    return t;
}

void st_tensor_free(st_tensor *t) {
    if (!t) return;
    st_aligned_free(t->data);
    free(t);
}

size_t st_tensor_numel(const st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

char *st_shape_str(int ndim, const int *shape, char *buf, size_t len) {
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "(");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %d" : "%d", shape[i]);
    if (at < len) snprintf(buf + at, len - at, ")");
    return buf;
}

/* ---------------------------------------------------------------- random numbers
 * xoshiro256** (Blackman & Vigna), seeded through splitmix64. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void st_rng_seed(st_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->has_gauss = 0;
    r->gauss = 0;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t st_rng_u64(st_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double st_rng_uniform(st_rng *r) { return (double)(st_rng_u64(r) >> 11) * 0x1.0p-53; }

double st_rng_normal(st_rng *r) {
    /* Marsaglia's polar method with one cached value. */
    if (r->has_gauss) { r->has_gauss = 0; return r->gauss; }
    double x1, x2, r2;
    do {
        x1 = 2.0 * st_rng_uniform(r) - 1.0;
        x2 = 2.0 * st_rng_uniform(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = 1;
    return f * x2;
}

uint32_t st_rng_below(st_rng *r, uint32_t n) {
    if (n <= 1) return 0;
    /* rejection on the top bits: unbiased */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = st_rng_u64(r); while (v >= lim);
    return (uint32_t)(v % n);
}

void st_rng_shuffle(st_rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)st_rng_below(r, (uint32_t)i + 1);
        int t = a[i]; a[i] = a[j]; a[j] = t;
    }
}
