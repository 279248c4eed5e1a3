/* dataset.c - data sets in memory: IDX (MNIST, Fashion-MNIST) and CIFAR-10 binary parsing,
 * arrays (.npy) to samples and targets, per-channel statistics and normalisation, and a
 * seeded validation split. Files are read by the caller (the CLI decompresses gzip);
 * here every buffer is checked before it is trusted, and errors name the source. */
#include "internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_dataset_free(st_dataset *d) {
    if (!d) return;
    free(d->x);
    free(d->labels);
    free(d->targets);
    memset(d, 0, sizeof *d);
}

static int64_t prod(int ndim, const int *shape) {
    int64_t p = 1;
    for (int i = 0; i < ndim; i++) p *= shape[i];
    return p;
}

int64_t st_dataset_sample_size(const st_dataset *d) { return prod(d->ndim, d->shape); }

/* Per-sample number of labels: 1 for CLASS, H*W for MASK. */
static int64_t labels_per_sample(const st_dataset *d) {
    if (d->kind == ST_TARGET_CLASS) return 1;
    if (d->kind == ST_TARGET_MASK) return d->ndim == 3 ? (int64_t)d->shape[1] * d->shape[2] : d->shape[1];
    return 0;
}

/* ---------------------------------------------------------------- IDX */
static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

st_status st_idx_parse(const void *buf, size_t len, const char *what, st_array *out) {
    const unsigned char *p = buf;
    memset(out, 0, sizeof *out);
    if (len < 4) return st_fail(ST_ERR_FORMAT, "%s: not an IDX file: %zu bytes, shorter than the 4-byte magic", what, len);
    if (p[0] || p[1])
        return st_fail(ST_ERR_FORMAT, "%s: not an IDX file: bad magic 0x%08x (expected 0x000008XX: two zero bytes, "
                       "the element type, the number of dimensions)", what, (unsigned)be32(p));
    st_dtype t;
    int esize;
    switch (p[2]) {
    case 0x08: t = ST_U8; esize = 1; break;
    case 0x09: t = ST_I8; esize = 1; break;
    case 0x0B: t = ST_I32; esize = 2; break; /* int16, widened */
    case 0x0C: t = ST_I32; esize = 4; break;
    case 0x0D: t = ST_F32; esize = 4; break;
    case 0x0E: t = ST_F64; esize = 8; break;
    default:
        return st_fail(ST_ERR_FORMAT, "%s: bad IDX magic 0x%08x: unknown element type 0x%02x (expected 08, 09, 0B, "
                       "0C, 0D or 0E)", what, (unsigned)be32(p), p[2]);
    }
    int nd = p[3];
    if (nd < 1 || nd > ST_MAX_DIMS)
        return st_fail(ST_ERR_FORMAT, "%s: bad IDX magic 0x%08x: %d dimensions (1 to %d supported)", what,
                       (unsigned)be32(p), nd, ST_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)nd;
    if (len < header)
        return st_fail(ST_ERR_FORMAT, "%s: truncated IDX header: %zu bytes, the header of %d dimensions needs %zu", what,
                       len, nd, header);
    int64_t numel = 1;
    out->ndim = nd;
    for (int i = 0; i < nd; i++) {
        uint32_t v = be32(p + 4 + 4 * i);
        if (v > INT32_MAX) return st_fail(ST_ERR_FORMAT, "%s: IDX dimension %d is %u, too large", what, i, (unsigned)v);
        out->shape[i] = v;
        if (v && numel > INT64_MAX / 8 / (int64_t)v)
            return st_fail(ST_ERR_FORMAT, "%s: IDX dimensions are too large", what);
        numel *= v;
    }
    char sb[128];
    size_t want = header + (size_t)numel * esize;
    if (len < want)
        return st_fail(ST_ERR_FORMAT, "%s: truncated: %zu bytes, but the header's shape %s needs %zu (%zu header + %lld "
                       "elements of %d bytes)", what, len, st_shape64_str(nd, out->shape, sb, sizeof sb), want, header,
                       (long long)numel, esize);
    if (len > want)
        return st_fail(ST_ERR_FORMAT, "%s: %zu bytes after the data of shape %s (expected exactly %zu bytes: wrong "
                       "counts in the header?)", what, len - want, st_shape64_str(nd, out->shape, sb, sizeof sb), want);
    out->dtype = t;
    size_t osize = st_dtype_size(t);
    out->data = malloc(numel ? (size_t)numel * osize : 1);
    if (!out->data) { memset(out, 0, sizeof *out); return st_fail(ST_ERR_NOMEM, "%s: out of memory", what); }
    const unsigned char *src = p + header;
    if (esize == 1) memcpy(out->data, src, (size_t)numel);
    else if (p[2] == 0x0B) {
        int32_t *o = out->data;
        for (int64_t i = 0; i < numel; i++) o[i] = (int16_t)(uint16_t)(src[2 * i] << 8 | src[2 * i + 1]);
    } else {
        unsigned char *o = out->data;
        for (int64_t i = 0; i < numel; i++)
            for (int b = 0; b < esize; b++) o[i * esize + b] = src[i * esize + esize - 1 - b];
    }
    return ST_OK;
}

st_status st_dataset_from_idx(const void *images, size_t ilen, const void *labels, size_t llen, const char *what,
                              st_dataset *out) {
    char iname[512], lname[512];
    snprintf(iname, sizeof iname, "%s (images)", what);
    snprintf(lname, sizeof lname, "%s (labels)", what);
    st_array x, y;
    st_status s = st_idx_parse(images, ilen, iname, &x);
    if (s) return s;
    if ((s = st_idx_parse(labels, llen, lname, &y))) { st_array_free(&x); return s; }
    if (x.ndim == 3) { /* (N, H, W) -> (N, 1, H, W) */
        x.ndim = 4;
        x.shape[3] = x.shape[2]; x.shape[2] = x.shape[1]; x.shape[1] = 1;
    } else {
        s = st_fail(ST_ERR_FORMAT, "%s: an image file has 3 dimensions (N, rows, cols), this one %d", iname, x.ndim);
    }
    if (!s && y.ndim != 1)
        s = st_fail(ST_ERR_FORMAT, "%s: a label file has 1 dimension (N), this one %d", lname, y.ndim);
    if (!s) s = st_dataset_from_arrays(&x, &y, iname, lname, out);
    st_array_free(&x);
    st_array_free(&y);
    return s;
}

/* ---------------------------------------------------------------- CIFAR-10 */
enum { CIFAR_PIXELS = 3 * 32 * 32, CIFAR_RECORD = 1 + CIFAR_PIXELS };

st_status st_dataset_from_cifar10(const void *buf, size_t len, const char *what, st_dataset *out) {
    const unsigned char *p = buf;
    if (len == 0 || len % CIFAR_RECORD)
        return st_fail(ST_ERR_FORMAT, "%s: %zu bytes is not a whole number of CIFAR-10 records of %d bytes (%zu records "
                       "and %zu bytes over)", what, len, CIFAR_RECORD, len / CIFAR_RECORD, len % CIFAR_RECORD);
    size_t m = len / CIFAR_RECORD;
    if (out->n) {
        if (out->kind != ST_TARGET_CLASS || out->ndim != 3 || out->shape[0] != 3 || out->shape[1] != 32 ||
            out->shape[2] != 32)
            return st_fail(ST_ERR_ARG, "%s: can only be appended to a CIFAR-10 data set (3, 32, 32) of classes", what);
    }
    if (m > (size_t)(INT_MAX - out->n)) return st_fail(ST_ERR_FORMAT, "%s: too many records", what);
    for (size_t i = 0; i < m; i++)
        if (p[i * CIFAR_RECORD] > 9)
            return st_fail(ST_ERR_FORMAT, "%s: record %zu (byte offset %zu) has label %d, not 0..9: not a CIFAR-10 "
                           "binary file (CIFAR-100 records have two label bytes)", what, i, i * CIFAR_RECORD,
                           p[i * CIFAR_RECORD]);
    size_t n = (size_t)out->n + m;
    float *x = realloc(out->x, n * CIFAR_PIXELS * sizeof(float));
    if (!x) return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu images", what, n);
    out->x = x;
    int32_t *y = realloc(out->labels, n * sizeof(int32_t));
    if (!y) return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu labels", what, n);
    out->labels = y;
    for (size_t i = 0; i < m; i++) {
        const unsigned char *r = p + i * CIFAR_RECORD;
        y[out->n + i] = r[0];
        float *xi = x + (out->n + i) * (size_t)CIFAR_PIXELS;
        for (int k = 0; k < CIFAR_PIXELS; k++) xi[k] = r[1 + k] * (1.0f / 255.0f);
    }
    out->n = (int)n;
    out->ndim = 3;
    out->shape[0] = 3; out->shape[1] = 32; out->shape[2] = 32;
    out->kind = ST_TARGET_CLASS;
    out->classes = 10;
    return ST_OK;
}

/* ---------------------------------------------------------------- arrays */
static float to_float(const st_array *a, int64_t i) {
    switch (a->dtype) {
    case ST_U8: return ((const uint8_t *)a->data)[i] * (1.0f / 255.0f);
    case ST_I8: return ((const int8_t *)a->data)[i];
    case ST_I32: return (float)((const int32_t *)a->data)[i];
    case ST_I64: return (float)((const int64_t *)a->data)[i];
    case ST_F32: return ((const float *)a->data)[i];
    case ST_F64: return (float)((const double *)a->data)[i];
    default: return 0; /* f16, bf16: converted through st_array_to_tensor */
    }
}

static int is_int(st_dtype t) { return t == ST_U8 || t == ST_I8 || t == ST_I32 || t == ST_I64; }

static st_status array_floats(const st_array *a, const char *name, float *out) {
    int64_t n = st_array_numel(a);
    if (a->dtype == ST_F16 || a->dtype == ST_BF16) {
        st_tensor *t;
        if (st_array_to_tensor(a, &t)) return st_fail_prefix(ST_ERR_FORMAT, "%s: ", name);
        memcpy(out, t->data, (size_t)n * sizeof(float));
        st_tensor_free(t);
        return ST_OK;
    }
    for (int64_t i = 0; i < n; i++) out[i] = to_float(a, i);
    return ST_OK;
}

st_status st_dataset_from_arrays(const st_array *x, const st_array *y, const char *xname, const char *yname,
                                 st_dataset *out) {
    char sx[128], sy[128];
    memset(out, 0, sizeof *out);
    if (x->ndim < 2 || x->ndim > 4)
        return st_fail(ST_ERR_SHAPE, "%s: samples of shape %s: expected (N, L), (N, C, L) or (N, C, H, W)", xname,
                       st_shape64_str(x->ndim, x->shape, sx, sizeof sx));
    if (y->ndim < 1 || y->shape[0] != x->shape[0])
        return st_fail(ST_ERR_SHAPE, "%s has %lld samples but %s has %lld (shapes %s and %s)", xname,
                       (long long)x->shape[0], yname, y->ndim ? (long long)y->shape[0] : 0LL,
                       st_shape64_str(x->ndim, x->shape, sx, sizeof sx),
                       st_shape64_str(y->ndim, y->shape, sy, sizeof sy));
    for (int i = 0; i < x->ndim; i++)
        if (x->shape[i] > INT_MAX || (i > 0 && x->shape[i] < 1))
            return st_fail(ST_ERR_SHAPE, "%s: shape %s is not supported", xname,
                           st_shape64_str(x->ndim, x->shape, sx, sizeof sx));
    st_dataset d = {0};
    d.n = (int)x->shape[0];
    if (x->ndim == 2) { d.ndim = 2; d.shape[0] = 1; d.shape[1] = (int)x->shape[1]; }
    else { d.ndim = x->ndim - 1; for (int i = 1; i < x->ndim; i++) d.shape[i - 1] = (int)x->shape[i]; }
    int64_t ss = prod(d.ndim, d.shape);
    int h = d.ndim == 3 ? d.shape[1] : 1, w = d.shape[d.ndim - 1];
    if (is_int(y->dtype)) {
        if (y->ndim == 1) d.kind = ST_TARGET_CLASS;
        else if ((y->ndim == 3 && y->shape[1] == h && y->shape[2] == w && d.ndim == 3) ||
                 (y->ndim == 2 && y->shape[1] == w && d.ndim == 2))
            d.kind = ST_TARGET_MASK;
        else
            return st_fail(ST_ERR_SHAPE, "%s: integer targets of shape %s fit neither class labels (N) nor masks "
                           "(N, H, W) of samples %s", yname, st_shape64_str(y->ndim, y->shape, sy, sizeof sy),
                           st_shape64_str(x->ndim, x->shape, sx, sizeof sx));
    } else {
        d.kind = ST_TARGET_DENSE;
        if (y->ndim < 2 || y->ndim > ST_MAX_DIMS)
            return st_fail(ST_ERR_SHAPE, "%s: float targets of shape %s: expected (N, ...) with at least 2 dimensions",
                           yname, st_shape64_str(y->ndim, y->shape, sy, sizeof sy));
        d.tndim = y->ndim - 1;
        for (int i = 1; i < y->ndim; i++) d.tshape[i - 1] = (int)y->shape[i];
    }
    size_t nx = (size_t)d.n * (size_t)ss;
    d.x = malloc((nx ? nx : 1) * sizeof(float));
    if (!d.x) return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu values", xname, nx);
    st_status s = array_floats(x, xname, d.x);
    if (s) { st_dataset_free(&d); return s; }
    if (d.kind == ST_TARGET_DENSE) {
        size_t nt = (size_t)st_array_numel(y);
        d.targets = malloc((nt ? nt : 1) * sizeof(float));
        if (!d.targets) { st_dataset_free(&d); return st_fail(ST_ERR_NOMEM, "%s: out of memory", yname); }
        if ((s = array_floats(y, yname, d.targets))) { st_dataset_free(&d); return s; }
    } else {
        int64_t nl;
        if ((s = st_array_to_labels(y, &d.labels, &nl))) { st_dataset_free(&d); return st_fail_prefix(s, "%s: ", yname); }
        int32_t mx = -1;
        for (int64_t i = 0; i < nl; i++) {
            int32_t v = d.labels[i];
            if (v < 0 && d.kind == ST_TARGET_CLASS) {
                st_dataset_free(&d);
                return st_fail(ST_ERR_FORMAT, "%s: label %d of sample %lld is negative", yname, v, (long long)i);
            }
            if (v > mx) mx = v;
        }
        d.classes = mx + 1;
    }
    *out = d;
    return ST_OK;
}

/* ---------------------------------------------------------------- statistics */
void st_dataset_channel_stats(const st_dataset *d, double *mean, double *std) {
    int c = d->shape[0];
    int64_t plane = prod(d->ndim - 1, d->shape + 1), ss = plane * c;
    for (int k = 0; k < c; k++) {
        /* per-sample partial sums in double, then the shifted second moment */
        double s = 0;
        for (int i = 0; i < d->n; i++) {
            const float *p = d->x + i * ss + k * plane;
            for (int64_t j = 0; j < plane; j++) s += p[j];
        }
        double cnt = (double)d->n * (double)plane, m = cnt > 0 ? s / cnt : 0, q = 0;
        for (int i = 0; i < d->n; i++) {
            const float *p = d->x + i * ss + k * plane;
            for (int64_t j = 0; j < plane; j++) q += (p[j] - m) * (p[j] - m);
        }
        mean[k] = m;
        std[k] = cnt > 0 ? sqrt(q / cnt) : 0;
    }
}

void st_dataset_normalize(st_dataset *d, const float *mean, const float *std) {
    int c = d->shape[0];
    int64_t plane = prod(d->ndim - 1, d->shape + 1), ss = plane * c;
    for (int i = 0; i < d->n; i++)
        for (int k = 0; k < c; k++) {
            float *p = d->x + i * ss + k * plane, m = mean[k], r = 1.0f / std[k];
            for (int64_t j = 0; j < plane; j++) p[j] = (p[j] - m) * r;
        }
}

/* ---------------------------------------------------------------- split */
st_status st_dataset_split(st_dataset *d, int n_val, uint64_t seed, st_dataset *val) {
    memset(val, 0, sizeof *val);
    if (n_val < 0 || n_val > d->n)
        return st_fail(ST_ERR_ARG, "validation split of %d samples from a data set of %d", n_val, d->n);
    int64_t ss = st_dataset_sample_size(d), ls = labels_per_sample(d), ts = prod(d->tndim, d->tshape);
    int *perm = malloc(sizeof(int) * (size_t)(d->n ? d->n : 1));
    char *in_val = calloc((size_t)(d->n ? d->n : 1), 1);
    st_dataset v = *d;
    v.n = n_val;
    size_t nv = n_val ? (size_t)n_val : 1; /* malloc(0) may return NULL */
    v.x = malloc(sizeof(float) * nv * (size_t)ss);
    v.labels = ls ? malloc(sizeof(int32_t) * nv * (size_t)ls) : NULL;
    v.targets = d->kind == ST_TARGET_DENSE ? malloc(sizeof(float) * nv * (size_t)ts) : NULL;
    if (!perm || !in_val || !v.x || (ls && !v.labels) || (d->kind == ST_TARGET_DENSE && !v.targets)) {
        free(perm); free(in_val); free(v.x); free(v.labels); free(v.targets);
        return st_fail(ST_ERR_NOMEM, "out of memory for a validation split of %d samples", n_val);
    }
    for (int i = 0; i < d->n; i++) perm[i] = i;
    st_rng r;
    st_rng_seed(&r, seed ^ 0x5eed5b1175ULL);
    st_rng_shuffle(&r, perm, d->n);
    for (int i = 0; i < n_val; i++) in_val[perm[i]] = 1;
    int kv = 0, kt = 0;
    for (int i = 0; i < d->n; i++) {
        st_dataset *dst = in_val[i] ? &v : d;
        int k = in_val[i] ? kv++ : kt++; /* kt <= i: compacting d in place is safe */
        memmove(dst->x + k * ss, d->x + i * ss, sizeof(float) * (size_t)ss);
        if (ls) memmove(dst->labels + k * ls, d->labels + i * ls, sizeof(int32_t) * (size_t)ls);
        if (v.targets) memmove(dst->targets + k * ts, d->targets + i * ts, sizeof(float) * (size_t)ts);
    }
    d->n = kt;
    free(perm);
    free(in_val);
    *val = v;
    return ST_OK;
}
