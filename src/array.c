/* array.c - dtypes, st_array helpers (size checks, conversion to tensors and labels)
 * and the file plumbing that npy.c and safetensors.c share: opening a regular file
 * for reading, positioned reads, and atomic writes (temporary file, fsync, rename).
 *
 * The shared helpers below are not static; npy.c and safetensors.c declare them.
 * Data in st_array is little-endian; like the rest of the library this file assumes
 * a little-endian host. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------- dtypes */
size_t st_dtype_size(st_dtype t) {
    switch (t) {
    case ST_F32: case ST_I32: return 4;
    case ST_F64: case ST_I64: return 8;
    case ST_U8: case ST_I8: return 1;
    case ST_F16: case ST_BF16: return 2;
    }
    return 0;
}

const char *st_dtype_name(st_dtype t) {
    switch (t) {
    case ST_F32: return "float32";
    case ST_F64: return "float64";
    case ST_I32: return "int32";
    case ST_I64: return "int64";
    case ST_U8: return "uint8";
    case ST_I8: return "int8";
    case ST_F16: return "float16";
    case ST_BF16: return "bfloat16";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- shapes and sizes */
/* "(4000, 40)", "(5,)" or "()" into buf (Python's tuple notation). */
char *st_shape64_str(int ndim, const int64_t *shape, char *buf, size_t len) {
    size_t at = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    at += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (at < len) snprintf(buf + at, len - at, ndim == 1 ? ",)" : ")");
    return buf;
}

/* Number of elements and bytes of a shape; 0 on success, -1 if a dimension is
 * negative, -2 if the size does not fit in int64 / size_t. */
int st_shape_nbytes(int ndim, const int64_t *shape, st_dtype t, int64_t *numel, size_t *bytes) {
    int64_t n = 1;
    int zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) zero = 1;
    }
    if (!zero) {
        for (int i = 0; i < ndim; i++) {
            if (n > INT64_MAX / shape[i]) return -2;
            n *= shape[i];
        }
    } else {
        n = 0;
    }
    int64_t es = (int64_t)st_dtype_size(t);
    if (es == 0 || n > INT64_MAX / es) return -2;
    if ((uint64_t)(n * es) > (uint64_t)SIZE_MAX) return -2;
    if (numel) *numel = n;
    if (bytes) *bytes = (size_t)(n * es);
    return 0;
}

/* Checks that an array is well formed (dtype, ndim, dimensions, size, data) and
 * gives its size in bytes. `what` starts the error message ("x.npy"). */
st_status st_array_check(const st_array *a, const char *what, size_t *bytes) {
    char sh[160];
    if (!a) return st_fail(ST_ERR_ARG, "%s: no array given", what);
    if (st_dtype_size(a->dtype) == 0) return st_fail(ST_ERR_ARG, "%s: invalid dtype %d", what, (int)a->dtype);
    if (a->ndim < 0 || a->ndim > ST_MAX_DIMS)
        return st_fail(ST_ERR_ARG, "%s: array has %d dimensions (0 to %d allowed)", what, a->ndim, ST_MAX_DIMS);
    int r = st_shape_nbytes(a->ndim, a->shape, a->dtype, NULL, bytes);
    if (r == -1)
        return st_fail(ST_ERR_ARG, "%s: negative dimension in shape %s", what,
                       st_shape64_str(a->ndim, a->shape, sh, sizeof sh));
    if (r != 0)
        return st_fail(ST_ERR_ARG, "%s: shape %s of %s is too large", what,
                       st_shape64_str(a->ndim, a->shape, sh, sizeof sh), st_dtype_name(a->dtype));
    if (*bytes > 0 && !a->data) return st_fail(ST_ERR_ARG, "%s: array has no data", what);
    return ST_OK;
}

int64_t st_array_numel(const st_array *a) {
    int64_t n = 0;
    if (!a || a->ndim < 0 || a->ndim > ST_MAX_DIMS) return 0;
    if (st_shape_nbytes(a->ndim, a->shape, ST_U8, &n, NULL) != 0) return 0;
    return n;
}

void st_array_free(st_array *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------- conversions */
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        float f = (float)man * 0x1p-24f; /* zero or subnormal */
        return sign ? -f : f;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (man << 13); /* inf, nan */
    else bits = sign | ((exp + 112) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static float bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

st_status st_array_to_tensor(const st_array *a, st_tensor **out) {
    char sh[160];
    size_t bytes;
    if (!out) return st_fail(ST_ERR_ARG, "array to tensor: no output given");
    *out = NULL;
    st_status s = st_array_check(a, "array to tensor", &bytes);
    if (s) return s;
    int shape[ST_MAX_DIMS];
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] > INT_MAX)
            return st_fail(ST_ERR_SHAPE, "array to tensor: dimension %lld of shape %s does not fit in an int",
                           (long long)a->shape[i], st_shape64_str(a->ndim, a->shape, sh, sizeof sh));
        shape[i] = (int)a->shape[i];
    }
    size_t n = bytes / st_dtype_size(a->dtype);
    if (n > SIZE_MAX / sizeof(float))
        return st_fail(ST_ERR_SHAPE, "array to tensor: shape %s is too large",
                       st_shape64_str(a->ndim, a->shape, sh, sizeof sh));
    st_tensor *t = st_tensor_new(a->ndim, shape);
    if (!t) return ST_ERR_NOMEM; /* st_tensor_new set the message */
    const unsigned char *p = a->data;
    float *y = t->data;
    switch (a->dtype) {
    case ST_F32: if (n) memcpy(y, p, n * sizeof(float)); break;
    case ST_F64: for (size_t i = 0; i < n; i++) { double v; memcpy(&v, p + 8 * i, 8); y[i] = (float)v; } break;
    case ST_I32: for (size_t i = 0; i < n; i++) { int32_t v; memcpy(&v, p + 4 * i, 4); y[i] = (float)v; } break;
    case ST_I64: for (size_t i = 0; i < n; i++) { int64_t v; memcpy(&v, p + 8 * i, 8); y[i] = (float)v; } break;
    case ST_U8: for (size_t i = 0; i < n; i++) y[i] = (float)p[i]; break;
    case ST_I8: for (size_t i = 0; i < n; i++) y[i] = (float)(int8_t)p[i]; break;
    case ST_F16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); y[i] = half_to_float(v); } break;
    case ST_BF16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, p + 2 * i, 2); y[i] = bf16_to_float(v); } break;
    }
    *out = t;
    return ST_OK;
}

st_status st_array_to_labels(const st_array *a, int32_t **out, int64_t *n_out) {
    size_t bytes;
    if (!out || !n_out) return st_fail(ST_ERR_ARG, "labels: no output given");
    *out = NULL;
    *n_out = 0;
    st_status s = st_array_check(a, "labels", &bytes);
    if (s) return s;
    if (a->dtype != ST_I32 && a->dtype != ST_I64 && a->dtype != ST_U8 && a->dtype != ST_I8)
        return st_fail(ST_ERR_ARG, "labels: dtype %s is not an integer type (expected int32, int64, uint8 or int8)",
                       st_dtype_name(a->dtype));
    size_t n = bytes / st_dtype_size(a->dtype);
    if (n > SIZE_MAX / sizeof(int32_t)) return st_fail(ST_ERR_NOMEM, "labels: %zu labels are too many", n);
    int32_t *y = malloc(n ? n * sizeof(int32_t) : 1);
    if (!y) return st_fail(ST_ERR_NOMEM, "labels: out of memory for %zu labels", n);
    const unsigned char *p = a->data;
    for (size_t i = 0; i < n; i++) {
        switch (a->dtype) {
        case ST_I32: memcpy(&y[i], p + 4 * i, 4); break;
        case ST_U8: y[i] = p[i]; break;
        case ST_I8: y[i] = (int8_t)p[i]; break;
        default: {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            if (v < INT32_MIN || v > INT32_MAX) {
                free(y);
                return st_fail(ST_ERR_ARG, "labels: value %lld at index %zu does not fit in int32",
                               (long long)v, i);
            }
            y[i] = (int32_t)v;
        }
        }
    }
    *out = y;
    *n_out = (int64_t)n;
    return ST_OK;
}

/* ---------------------------------------------------------------- reading files */
/* Opens a regular file for reading and gives its size. */
st_status st_io_open_read(const char *path, int *fd_out, int64_t *size) {
    *fd_out = -1;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO must not hang; it is rejected below. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return st_fail(ST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return st_fail(ST_ERR_IO, "%s: cannot read file status: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return st_fail(ST_ERR_IO, "%s: %s", path, S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
    }
    *fd_out = fd;
    *size = (int64_t)st.st_size;
    return ST_OK;
}

/* Reads exactly n bytes at offset off. */
st_status st_io_read_at(const char *path, int fd, void *buf, size_t n, int64_t off) {
    unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t r = pread(fd, p, chunk, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return st_fail(ST_ERR_IO, "%s: read error at byte %lld: %s", path, (long long)off, strerror(errno));
        }
        if (r == 0)
            return st_fail(ST_ERR_FORMAT, "%s: unexpected end of file at byte %lld (did the file change while reading?)",
                           path, (long long)off);
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return ST_OK;
}

/* ---------------------------------------------------------------- atomic writes */
static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Makes a finished rename durable; failures here are not reported (the data is
 * already in place). */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = st_strdup(".");
    else if (slash == path) dir = st_strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Writes the concatenation of parts[0..nparts) to path atomically: into
 * "PATH.tmp.XXXXXX" beside it, fsync, rename over path. On failure the temporary
 * file is removed and an existing file at path is untouched. A replaced file keeps
 * its permission bits; a new file gets rw-r--r--. */
st_status st_io_write_atomic(const char *path, int nparts, const void *const *parts, const size_t *lens) {
    static const char suffix[] = ".tmp.XXXXXX";
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof suffix);
    if (!tmp) return st_fail(ST_ERR_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, suffix, sizeof suffix);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        return st_fail(ST_ERR_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(e));
    }
    struct stat st;
    mode_t mode = 0644;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 07777;
    (void)fchmod(fd, mode); /* a failure leaves mkstemp's rw------- */

    const char *what = NULL;
    int e = 0;
    for (int i = 0; i < nparts && !what; i++)
        if (lens[i] > 0 && write_all(fd, parts[i], lens[i]) != 0) { what = "write failed"; e = errno; }
    if (!what && fsync(fd) != 0) { what = "fsync failed"; e = errno; }
    if (close(fd) != 0 && !what) { what = "close failed"; e = errno; }
    if (!what && rename(tmp, path) != 0) { what = "cannot rename the temporary file over it"; e = errno; }
    if (what) {
        unlink(tmp);
        free(tmp);
        return st_fail(ST_ERR_IO, "%s: %s: %s", path, what, strerror(e));
    }
    free(tmp);
    sync_parent_dir(path);
    return ST_OK;
}
