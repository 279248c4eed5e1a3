/* npy.c - reading and writing NumPy .npy files (format 1.0, 2.0, 3.0; little-endian,
 * C order, no pickles). Writing produces exactly the bytes numpy.save writes. */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER (1 << 20)   /* NumPy itself refuses headers over 10000 bytes */
#define NPY_ALIGN 64
#define NPY_GROWTH_DIGITS 21       /* NumPy leaves room for the first axis to grow */

/* ---------------------------------------------------------------- dtypes */
static const struct { const char *code; st_dtype t; } npy_codes[] = {
    {"f4", ST_F32}, {"f8", ST_F64}, {"i4", ST_I32}, {"i8", ST_I64},
    {"u1", ST_U8}, {"i1", ST_I8}, {"f2", ST_F16},
};

static const char *npy_descr(st_dtype t) {
    switch (t) {
    case ST_F32: return "<f4";
    case ST_F64: return "<f8";
    case ST_I32: return "<i4";
    case ST_I64: return "<i8";
    case ST_U8: return "|u1";
    case ST_I8: return "|i1";
    case ST_F16: return "<f2";
    case ST_BF16: break;
    }
    return NULL;
}

/* '<f4', '=f4', 'f4'; one-byte types also with '|' or '>'. */
static st_status parse_descr(const char *path, const char *d, st_dtype *t) {
    char order = 0;
    const char *code = d;
    if (*d == '<' || *d == '>' || *d == '=' || *d == '|') order = *code++;
    for (size_t i = 0; i < sizeof npy_codes / sizeof npy_codes[0]; i++) {
        if (strcmp(code, npy_codes[i].code) != 0) continue;
        size_t size = st_dtype_size(npy_codes[i].t);
        if (size > 1 && order == '>')
            return st_fail(ST_ERR_FORMAT, "%s: big-endian dtype '%s' is not supported (save it little-endian, "
                           "e.g. a.astype('<%s'))", path, d, code);
        if (size > 1 && order == '|') break;
        *t = npy_codes[i].t;
        return ST_OK;
    }
    return st_fail(ST_ERR_FORMAT, "%s: unsupported dtype '%s' (supported: <f4 <f8 <i4 <i8 |u1 |i1 <f2)", path, d);
}

/* ---------------------------------------------------------------- header parsing
 * The header is the text of a Python dict literal:
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (4000, 40), }
 * Keys may come in any order, with any whitespace, in single or double quotes. */
typedef struct {
    const char *s;
    size_t n, i;
    const char *path;
} npy_lex;

static void lex_ws(npy_lex *L) {
    while (L->i < L->n && (L->s[L->i] == ' ' || L->s[L->i] == '\t' || L->s[L->i] == '\n' || L->s[L->i] == '\r'))
        L->i++;
}

static int lex_peek(npy_lex *L) { return L->i < L->n ? (unsigned char)L->s[L->i] : -1; }

static st_status lex_error(npy_lex *L, const char *what) {
    return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: %s at byte %zu of the header", L->path, what, L->i);
}

/* A quoted string without escapes, into buf (at most cap-1 characters). */
static st_status lex_string(npy_lex *L, char *buf, size_t cap) {
    int q = lex_peek(L);
    if (q != '\'' && q != '"') return lex_error(L, "expected a quoted string");
    L->i++;
    size_t len = 0;
    while (L->i < L->n && L->s[L->i] != q) {
        char c = L->s[L->i];
        if (c == '\\' || c == '\n' || c == '\0') return lex_error(L, "unexpected character in a string");
        if (len + 1 >= cap) return lex_error(L, "string too long");
        buf[len++] = c;
        L->i++;
    }
    if (L->i >= L->n) return lex_error(L, "unterminated string");
    L->i++;
    buf[len] = '\0';
    return ST_OK;
}

static int lex_word(npy_lex *L, const char *w) {
    size_t k = strlen(w);
    if (L->n - L->i < k || memcmp(L->s + L->i, w, k) != 0) return 0;
    if (L->i + k < L->n) {
        char c = L->s[L->i + k];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return 0;
    }
    L->i += k;
    return 1;
}

/* A tuple of non-negative integers: (), (5,), (4000, 40); Python 2's 40L accepted. */
static st_status lex_shape(npy_lex *L, int *ndim, int64_t *shape) {
    if (lex_peek(L) != '(') {
        if (lex_peek(L) == '[') return lex_error(L, "shape must be a tuple, not a list");
        return lex_error(L, "expected '(' to start the shape");
    }
    L->i++;
    *ndim = 0;
    for (;;) {
        lex_ws(L);
        int c = lex_peek(L);
        if (c == ')') { L->i++; return ST_OK; }
        if (c == '-')
            return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: negative dimension in shape", L->path);
        if (c < '0' || c > '9') return lex_error(L, "expected a dimension or ')' in the shape");
        int64_t v = 0;
        while ((c = lex_peek(L)) >= '0' && c <= '9') {
            if (v > (INT64_MAX - (c - '0')) / 10)
                return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: dimension too large in shape", L->path);
            v = v * 10 + (c - '0');
            L->i++;
        }
        if (lex_peek(L) == 'L' || lex_peek(L) == 'l') L->i++;
        if (*ndim == ST_MAX_DIMS)
            return st_fail(ST_ERR_FORMAT, "%s: shape has more than %d dimensions", L->path, ST_MAX_DIMS);
        shape[(*ndim)++] = v;
        lex_ws(L);
        c = lex_peek(L);
        if (c == ',') L->i++;
        else if (c != ')') return lex_error(L, "expected ',' or ')' in the shape");
    }
}

typedef struct {
    char descr[64];
    int fortran;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
} npy_header;

static st_status parse_header(const char *path, const char *text, size_t n, npy_header *h) {
    npy_lex L = {text, n, 0, path};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    st_status s;
    lex_ws(&L);
    if (lex_peek(&L) != '{') return lex_error(&L, "expected '{'");
    L.i++;
    for (;;) {
        lex_ws(&L);
        if (lex_peek(&L) == '}') { L.i++; break; }
        char key[32];
        if ((s = lex_string(&L, key, sizeof key))) return s;
        lex_ws(&L);
        if (lex_peek(&L) != ':') return lex_error(&L, "expected ':'");
        L.i++;
        lex_ws(&L);
        int *seen;
        if (strcmp(key, "descr") == 0) {
            seen = &have_descr;
            if (lex_peek(&L) == '[')
                return st_fail(ST_ERR_FORMAT, "%s: structured dtypes are not supported", path);
            if ((s = lex_string(&L, h->descr, sizeof h->descr))) return s;
        } else if (strcmp(key, "fortran_order") == 0) {
            seen = &have_fortran;
            if (lex_word(&L, "True")) h->fortran = 1;
            else if (lex_word(&L, "False")) h->fortran = 0;
            else return lex_error(&L, "expected True or False for fortran_order");
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            if ((s = lex_shape(&L, &h->ndim, h->shape))) return s;
        } else {
            return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: unexpected key '%s'", path, key);
        }
        if (*seen) return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: key '%s' appears twice", path, key);
        *seen = 1;
        lex_ws(&L);
        if (lex_peek(&L) == ',') L.i++;
        else if (lex_peek(&L) != '}') return lex_error(&L, "expected ',' or '}'");
    }
    lex_ws(&L);
    if (L.i != L.n) return lex_error(&L, "unexpected text after the dict");
    if (!have_descr) return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: no 'descr'", path);
    if (!have_fortran) return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: no 'fortran_order'", path);
    if (!have_shape) return st_fail(ST_ERR_FORMAT, "%s: malformed .npy header: no 'shape'", path);
    return ST_OK;
}

/* ---------------------------------------------------------------- loading */
static st_status npy_read(const char *path, int fd, int64_t fsize, st_array *out) {
    unsigned char pre[12];
    st_status s;
    if (fsize == 0) return st_fail(ST_ERR_FORMAT, "%s: empty file (not a .npy file)", path);
    size_t got = fsize < (int64_t)sizeof pre ? (size_t)fsize : sizeof pre;
    if ((s = st_io_read_at(path, fd, pre, got, 0))) return s;
    size_t cmp = got < NPY_MAGIC_LEN ? got : NPY_MAGIC_LEN;
    if (memcmp(pre, NPY_MAGIC, cmp) != 0) return st_fail(ST_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
    if (got < 10) return st_fail(ST_ERR_FORMAT, "%s: truncated header (the file has %zu bytes)", path, got);
    int major = pre[6], minor = pre[7];
    size_t hstart;
    uint64_t hlen;
    if (major == 1 && minor == 0) {
        hstart = 10;
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (got < 12) return st_fail(ST_ERR_FORMAT, "%s: truncated header (the file has %zu bytes)", path, got);
        hstart = 12;
        hlen = (uint64_t)pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
    } else {
        return st_fail(ST_ERR_FORMAT, "%s: unsupported .npy format version %d.%d (1.0, 2.0 and 3.0 are read)",
                       path, major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return st_fail(ST_ERR_FORMAT, "%s: header length %llu is absurd (at most %d)", path,
                       (unsigned long long)hlen, NPY_MAX_HEADER);
    if ((int64_t)(hstart + hlen) > fsize)
        return st_fail(ST_ERR_FORMAT, "%s: truncated header: header length %llu, but the file has only %lld bytes",
                       path, (unsigned long long)hlen, (long long)fsize);
    char *text = malloc(hlen + 1);
    if (!text) return st_fail(ST_ERR_NOMEM, "%s: out of memory for the header", path);
    if ((s = st_io_read_at(path, fd, text, hlen, (int64_t)hstart))) { free(text); return s; }
    text[hlen] = '\0';
    npy_header h;
    memset(&h, 0, sizeof h);
    s = parse_header(path, text, hlen, &h);
    free(text);
    if (s) return s;

    st_dtype t = ST_F32;
    if ((s = parse_descr(path, h.descr, &t))) return s;
    if (h.fortran)
        return st_fail(ST_ERR_FORMAT, "%s: fortran_order True is not supported (save a C-ordered array, "
                       "e.g. np.ascontiguousarray(a))", path);
    char sh[160];
    size_t bytes;
    if (st_shape_nbytes(h.ndim, h.shape, t, NULL, &bytes) != 0)
        return st_fail(ST_ERR_FORMAT, "%s: shape %s of %s is too large", path,
                       st_shape64_str(h.ndim, h.shape, sh, sizeof sh), st_dtype_name(t));
    int64_t have = fsize - (int64_t)(hstart + hlen);
    if ((uint64_t)have != (uint64_t)bytes) {
        st_shape64_str(h.ndim, h.shape, sh, sizeof sh);
        if ((uint64_t)have < (uint64_t)bytes)
            return st_fail(ST_ERR_FORMAT, "%s: truncated: header says %s %s = %zu bytes of data, file has %lld",
                           path, sh, st_dtype_name(t), bytes, (long long)have);
        return st_fail(ST_ERR_FORMAT, "%s: header says %s %s = %zu bytes of data, file has %lld (%lld bytes too many)",
                       path, sh, st_dtype_name(t), bytes, (long long)have, (long long)(have - (int64_t)bytes));
    }
    void *data = malloc(bytes ? bytes : 1);
    if (!data) return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu bytes of data", path, bytes);
    if ((s = st_io_read_at(path, fd, data, bytes, (int64_t)(hstart + hlen)))) { free(data); return s; }
    out->dtype = t;
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->data = data;
    return ST_OK;
}

st_status st_npy_load(const char *path, st_array *out) {
    if (!out) return st_fail(ST_ERR_ARG, "%s: no output array given", path ? path : "npy load");
    memset(out, 0, sizeof *out);
    if (!path) return st_fail(ST_ERR_ARG, "npy load: no file name given");
    int fd;
    int64_t fsize;
    st_status s = st_io_open_read(path, &fd, &fsize);
    if (s) return s;
    s = npy_read(path, fd, fsize, out);
    close(fd);
    return s;
}

/* ---------------------------------------------------------------- saving */
/* The header exactly as numpy.save writes it (format 1.0): the dict text, spaces
 * reserving room for the first axis to grow, padding spaces and '\n' so that the
 * data starts at a multiple of 64 bytes (never zero padding spaces). Returns the
 * total length including the 10-byte prefix. */
static size_t npy_header_bytes(const char *descr, int ndim, const int64_t *shape, char *buf, size_t cap) {
    char sh[160];
    char dict[256];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
                       st_shape64_str(ndim, shape, sh, sizeof sh));
    size_t hlen = (size_t)len;
    if (ndim > 0) {
        char first[24];
        int digits = snprintf(first, sizeof first, "%lld", (long long)shape[0]);
        hlen += (size_t)(NPY_GROWTH_DIGITS - digits);
    }
    hlen += 1; /* '\n' */
    hlen += NPY_ALIGN - (NPY_MAGIC_LEN + 4 + hlen) % NPY_ALIGN;
    size_t total = NPY_MAGIC_LEN + 4 + hlen;
    if (total > cap) return 0;
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (char)(hlen & 0xff);
    buf[9] = (char)(hlen >> 8);
    memset(buf + 10, ' ', hlen);
    memcpy(buf + 10, dict, (size_t)len);
    buf[total - 1] = '\n';
    return total;
}

st_status st_npy_save(const char *path, const st_array *a) {
    if (!path) return st_fail(ST_ERR_ARG, "npy save: no file name given");
    size_t bytes;
    st_status s = st_array_check(a, path, &bytes);
    if (s) return s;
    const char *descr = npy_descr(a->dtype);
    if (!descr)
        return st_fail(ST_ERR_ARG, "%s: %s cannot be stored in .npy (NumPy has no such dtype); "
                       "convert it to float32 or use .safetensors", path, st_dtype_name(a->dtype));
    char header[512];
    size_t hbytes = npy_header_bytes(descr, a->ndim, a->shape, header, sizeof header);
    if (hbytes == 0) return st_fail(ST_ERR_ARG, "%s: .npy header too long", path);
    const void *parts[2] = {header, a->data};
    size_t lens[2] = {hbytes, bytes};
    return st_io_write_atomic(path, 2, parts, lens);
}
