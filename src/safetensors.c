/* safetensors.c - st_tensors (named arrays plus string metadata) and the .safetensors
 * format: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * and the data section the offsets point into. The JSON parser here covers what
 * these headers hold (objects, strings, integer arrays) and skips other values. */
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAFE_MAX_HEADER 100000000u /* the reference implementation's limit */
#define JSON_MAX_DEPTH 64

static const struct { const char *name; st_dtype t; } safe_dtypes[] = {
    {"F32", ST_F32}, {"F64", ST_F64}, {"I32", ST_I32}, {"I64", ST_I64},
    {"U8", ST_U8}, {"I8", ST_I8}, {"F16", ST_F16}, {"BF16", ST_BF16},
};

static const char *safe_dtype_name(st_dtype t) {
    for (size_t i = 0; i < sizeof safe_dtypes / sizeof safe_dtypes[0]; i++)
        if (safe_dtypes[i].t == t) return safe_dtypes[i].name;
    return "?";
}

/* ---------------------------------------------------------------- st_tensors */
void st_tensors_init(st_tensors *ts) {
    if (ts) memset(ts, 0, sizeof *ts);
}

void st_tensors_free(st_tensors *ts) {
    if (!ts) return;
    for (int i = 0; i < ts->n; i++) {
        free(ts->names[i]);
        free(ts->arrays[i].data);
    }
    for (int i = 0; i < ts->n_meta; i++) {
        free(ts->meta_keys[i]);
        free(ts->meta_vals[i]);
    }
    free(ts->names);
    free(ts->arrays);
    free(ts->meta_keys);
    free(ts->meta_vals);
    memset(ts, 0, sizeof *ts);
}

static int find_tensor(const st_tensors *ts, const char *name) {
    for (int i = 0; i < ts->n; i++)
        if (strcmp(ts->names[i], name) == 0) return i;
    return -1;
}

static int find_meta(const st_tensors *ts, const char *key) {
    for (int i = 0; i < ts->n_meta; i++)
        if (strcmp(ts->meta_keys[i], key) == 0) return i;
    return -1;
}

static st_status tensors_reserve(st_tensors *ts, int need) {
    if (need <= ts->cap) return ST_OK;
    int cap = ts->cap ? ts->cap : 8;
    while (cap < need) {
        if (cap > INT_MAX / 2) return st_fail(ST_ERR_NOMEM, "tensors: too many tensors");
        cap *= 2;
    }
    char **names = realloc(ts->names, (size_t)cap * sizeof *names);
    if (!names) return st_fail(ST_ERR_NOMEM, "tensors: out of memory");
    ts->names = names;
    st_array *arrays = realloc(ts->arrays, (size_t)cap * sizeof *arrays);
    if (!arrays) return st_fail(ST_ERR_NOMEM, "tensors: out of memory");
    ts->arrays = arrays;
    ts->cap = cap;
    return ST_OK;
}

static st_status check_name(const char *name, const char *where) {
    if (!name || !*name) return st_fail(ST_ERR_ARG, "%s: empty tensor name", where);
    if (strcmp(name, "__metadata__") == 0)
        return st_fail(ST_ERR_ARG, "%s: '__metadata__' is reserved and cannot name a tensor", where);
    return ST_OK;
}

st_status st_tensors_add(st_tensors *ts, const char *name, const st_array *a) {
    if (!ts) return st_fail(ST_ERR_ARG, "tensors: no tensor list given");
    st_status s = check_name(name, "tensors");
    if (s) return s;
    char what[300];
    snprintf(what, sizeof what, "tensor '%.200s'", name);
    size_t bytes;
    if ((s = st_array_check(a, what, &bytes))) return s;
    st_array c;
    memset(&c, 0, sizeof c);
    c.dtype = a->dtype;
    c.ndim = a->ndim;
    for (int i = 0; i < a->ndim; i++) c.shape[i] = a->shape[i];
    c.data = malloc(bytes ? bytes : 1);
    if (!c.data) return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu bytes", what, bytes);
    if (bytes) memcpy(c.data, a->data, bytes);
    int i = find_tensor(ts, name);
    if (i >= 0) { /* replace; a may have pointed at the old entry, so copy first */
        free(ts->arrays[i].data);
        ts->arrays[i] = c;
        return ST_OK;
    }
    char *nm = st_strdup(name);
    if (!nm || (s = tensors_reserve(ts, ts->n + 1))) {
        free(nm);
        free(c.data);
        return s ? s : st_fail(ST_ERR_NOMEM, "%s: out of memory", what);
    }
    ts->names[ts->n] = nm;
    ts->arrays[ts->n] = c;
    ts->n++;
    return ST_OK;
}

st_status st_tensors_add_f32(st_tensors *ts, const char *name, int ndim, const int *shape, const float *data) {
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return st_fail(ST_ERR_ARG, "tensor '%.200s': %d dimensions (0 to %d allowed)", name ? name : "", ndim,
                       ST_MAX_DIMS);
    if (ndim > 0 && !shape) return st_fail(ST_ERR_ARG, "tensor '%.200s': no shape given", name ? name : "");
    st_array a;
    memset(&a, 0, sizeof a);
    a.dtype = ST_F32;
    a.ndim = ndim;
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    a.data = (void *)data;
    return st_tensors_add(ts, name, &a);
}

st_status st_tensors_set_meta(st_tensors *ts, const char *key, const char *val) {
    if (!ts || !key || !val) return st_fail(ST_ERR_ARG, "tensors: metadata needs a key and a value");
    char *v = st_strdup(val);
    if (!v) return st_fail(ST_ERR_NOMEM, "tensors: out of memory");
    int i = find_meta(ts, key);
    if (i >= 0) {
        free(ts->meta_vals[i]);
        ts->meta_vals[i] = v;
        return ST_OK;
    }
    if (ts->n_meta == INT_MAX) { free(v); return st_fail(ST_ERR_NOMEM, "tensors: too many metadata entries"); }
    char *k = st_strdup(key);
    char **keys = k ? realloc(ts->meta_keys, (size_t)(ts->n_meta + 1) * sizeof *keys) : NULL;
    if (keys) ts->meta_keys = keys;
    char **vals = keys ? realloc(ts->meta_vals, (size_t)(ts->n_meta + 1) * sizeof *vals) : NULL;
    if (vals) ts->meta_vals = vals;
    if (!vals) {
        free(k);
        free(v);
        return st_fail(ST_ERR_NOMEM, "tensors: out of memory");
    }
    ts->meta_keys[ts->n_meta] = k;
    ts->meta_vals[ts->n_meta] = v;
    ts->n_meta++;
    return ST_OK;
}

const st_array *st_tensors_get(const st_tensors *ts, const char *name) {
    if (!ts || !name) return NULL;
    int i = find_tensor(ts, name);
    return i >= 0 ? &ts->arrays[i] : NULL;
}

const char *st_tensors_meta(const st_tensors *ts, const char *key) {
    if (!ts || !key) return NULL;
    int i = find_meta(ts, key);
    return i >= 0 ? ts->meta_vals[i] : NULL;
}

/* Sorting helpers for duplicate checks (O(n log n), so a hostile header with
 * millions of names cannot stall the loader). */
static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The first name that appears twice, or NULL; -1 in *oom if memory ran out. */
static const char *find_duplicate(char *const *names, int n, int *oom) {
    *oom = 0;
    if (n < 2) return NULL;
    char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) { *oom = 1; return NULL; }
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

/* ---------------------------------------------------------------- JSON reading */
typedef struct {
    const char *s;
    size_t n, i;
    const char *path;
} json;

static st_status json_error(const json *J, const char *what) {
    return st_fail(ST_ERR_FORMAT, "%s: malformed JSON header at byte %zu: %s", J->path, J->i, what);
}

static void json_ws(json *J) {
    while (J->i < J->n && (J->s[J->i] == ' ' || J->s[J->i] == '\t' || J->s[J->i] == '\n' || J->s[J->i] == '\r'))
        J->i++;
}

static int json_peek(const json *J) { return J->i < J->n ? (unsigned char)J->s[J->i] : -1; }

static st_status json_expect(json *J, char c, const char *what) {
    json_ws(J);
    if (json_peek(J) != (unsigned char)c) return json_error(J, what);
    J->i++;
    return ST_OK;
}

static int hex4(const char *p, uint32_t *v) {
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | (cp >> 6 & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A JSON string into a malloc'ed UTF-8 C string (escapes decoded). */
static st_status json_string(json *J, char **out) {
    *out = NULL;
    json_ws(J);
    if (json_peek(J) != '"') return json_error(J, "expected a string");
    size_t start = ++J->i, end = start;
    while (end < J->n && J->s[end] != '"') end += J->s[end] == '\\' ? 2 : 1;
    if (end >= J->n) return json_error(J, "unterminated string");
    /* decoding never makes a string longer */
    char *o = malloc(end - start + 1);
    if (!o) return st_fail(ST_ERR_NOMEM, "%s: out of memory reading the header", J->path);
    size_t len = 0;
    while (J->i < end) {
        unsigned char c = (unsigned char)J->s[J->i];
        if (c < 0x20) { free(o); return json_error(J, "control character in a string"); }
        if (c != '\\') { o[len++] = (char)c; J->i++; continue; }
        char e = J->s[J->i + 1];
        switch (e) {
        case '"': case '\\': case '/': o[len++] = e; J->i += 2; continue;
        case 'b': o[len++] = '\b'; J->i += 2; continue;
        case 'f': o[len++] = '\f'; J->i += 2; continue;
        case 'n': o[len++] = '\n'; J->i += 2; continue;
        case 'r': o[len++] = '\r'; J->i += 2; continue;
        case 't': o[len++] = '\t'; J->i += 2; continue;
        case 'u': break;
        default: free(o); return json_error(J, "invalid escape in a string");
        }
        uint32_t cp, lo;
        if (end - J->i < 6 || hex4(J->s + J->i + 2, &cp)) { free(o); return json_error(J, "invalid \\u escape"); }
        size_t used = 6;
        if (cp >= 0xdc00 && cp <= 0xdfff) { free(o); return json_error(J, "unpaired surrogate in a \\u escape"); }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (end - J->i < 12 || J->s[J->i + 6] != '\\' || J->s[J->i + 7] != 'u' || hex4(J->s + J->i + 8, &lo) ||
                lo < 0xdc00 || lo > 0xdfff) {
                free(o);
                return json_error(J, "unpaired surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            used = 12;
        }
        if (cp == 0) { free(o); return json_error(J, "\\u0000 in a string is not supported"); }
        len += put_utf8(o + len, cp);
        J->i += used;
    }
    J->i = end + 1;
    o[len] = '\0';
    *out = o;
    return ST_OK;
}

/* A non-negative integer (no sign, fraction or exponent) up to INT64_MAX. */
static st_status json_uint(json *J, uint64_t *v) {
    json_ws(J);
    int c = json_peek(J);
    if (c == '-') return json_error(J, "negative number where a size or offset is expected");
    if (c < '0' || c > '9') return json_error(J, "expected a non-negative integer");
    *v = 0;
    while ((c = json_peek(J)) >= '0' && c <= '9') {
        if (*v > ((uint64_t)INT64_MAX - (uint64_t)(c - '0')) / 10) return json_error(J, "integer too large");
        *v = *v * 10 + (uint64_t)(c - '0');
        J->i++;
    }
    if (c == '.' || c == 'e' || c == 'E') return json_error(J, "expected an integer, not a fraction");
    return ST_OK;
}

/* [a, b, ...] of non-negative integers; at most max of them (*count = max + 1 means more). */
static st_status json_uint_array(json *J, uint64_t *vals, int max, int *count) {
    st_status s;
    *count = 0;
    if ((s = json_expect(J, '[', "expected '['"))) return s;
    json_ws(J);
    if (json_peek(J) == ']') { J->i++; return ST_OK; }
    for (;;) {
        uint64_t v = 0;
        if ((s = json_uint(J, &v))) return s;
        if (*count < max) vals[*count] = v;
        if (*count <= max) (*count)++;
        json_ws(J);
        if (json_peek(J) == ',') { J->i++; continue; }
        if (json_peek(J) == ']') { J->i++; return ST_OK; }
        return json_error(J, "expected ',' or ']'");
    }
}

/* Skips any JSON value (for keys this reader does not use). */
static st_status json_skip(json *J, int depth) {
    st_status s;
    if (depth > JSON_MAX_DEPTH) return json_error(J, "nested too deeply");
    json_ws(J);
    int c = json_peek(J);
    if (c == '"') {
        char *str;
        if ((s = json_string(J, &str))) return s;
        free(str);
        return ST_OK;
    }
    if (c == '{' || c == '[') {
        int close = c == '{' ? '}' : ']';
        J->i++;
        json_ws(J);
        if (json_peek(J) == close) { J->i++; return ST_OK; }
        for (;;) {
            if (c == '{') {
                char *key;
                if ((s = json_string(J, &key))) return s;
                free(key);
                if ((s = json_expect(J, ':', "expected ':'"))) return s;
            }
            if ((s = json_skip(J, depth + 1))) return s;
            json_ws(J);
            if (json_peek(J) == ',') { J->i++; continue; }
            if (json_peek(J) == close) { J->i++; return ST_OK; }
            return json_error(J, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t len = strlen(words[k]);
        if (J->n - J->i >= len && memcmp(J->s + J->i, words[k], len) == 0) { J->i += len; return ST_OK; }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (c == '-') J->i++;
        size_t digits = J->i;
        while (json_peek(J) >= '0' && json_peek(J) <= '9') J->i++;
        if (J->i == digits) return json_error(J, "invalid number");
        if (json_peek(J) == '.') {
            J->i++;
            digits = J->i;
            while (json_peek(J) >= '0' && json_peek(J) <= '9') J->i++;
            if (J->i == digits) return json_error(J, "invalid number");
        }
        if (json_peek(J) == 'e' || json_peek(J) == 'E') {
            J->i++;
            if (json_peek(J) == '+' || json_peek(J) == '-') J->i++;
            digits = J->i;
            while (json_peek(J) >= '0' && json_peek(J) <= '9') J->i++;
            if (J->i == digits) return json_error(J, "invalid number");
        }
        return ST_OK;
    }
    return json_error(J, "expected a value");
}

/* ---------------------------------------------------------------- header entries */
typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;
} safe_entry;

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} for tensor e->name, checked
 * against the data section's size. */
static st_status parse_entry(json *J, safe_entry *e, uint64_t data_size) {
    const char *path = J->path, *nm = e->name;
    int have_dtype = 0, have_shape = 0, have_offsets = 0;
    st_status s;
    char sh[160];
    if ((s = json_expect(J, '{', "expected '{' to start a tensor entry"))) return s;
    json_ws(J);
    if (json_peek(J) == '}') J->i++;
    else for (;;) {
        char *key;
        if ((s = json_string(J, &key))) return s;
        if ((s = json_expect(J, ':', "expected ':'"))) { free(key); return s; }
        int *seen = NULL;
        if (strcmp(key, "dtype") == 0) {
            seen = &have_dtype;
            char *dt;
            if ((s = json_string(J, &dt))) { free(key); return s; }
            size_t k = 0, nd = sizeof safe_dtypes / sizeof safe_dtypes[0];
            while (k < nd && strcmp(dt, safe_dtypes[k].name) != 0) k++;
            if (k == nd) {
                s = st_fail(ST_ERR_FORMAT, "%s: tensor '%s': unsupported dtype '%.40s' "
                            "(supported: F32 F64 I32 I64 U8 I8 F16 BF16)", path, nm, dt);
                free(dt);
                free(key);
                return s;
            }
            free(dt);
            e->dtype = safe_dtypes[k].t;
        } else if (strcmp(key, "shape") == 0) {
            seen = &have_shape;
            uint64_t v[ST_MAX_DIMS];
            if ((s = json_uint_array(J, v, ST_MAX_DIMS, &e->ndim))) { free(key); return s; }
            if (e->ndim > ST_MAX_DIMS) {
                free(key);
                return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': shape has more than %d dimensions", path, nm,
                               ST_MAX_DIMS);
            }
            for (int k = 0; k < e->ndim; k++) e->shape[k] = (int64_t)v[k];
        } else if (strcmp(key, "data_offsets") == 0) {
            seen = &have_offsets;
            uint64_t v[2];
            int cnt;
            if ((s = json_uint_array(J, v, 2, &cnt))) { free(key); return s; }
            if (cnt != 2) {
                free(key);
                return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': data_offsets must hold two numbers [begin, end]",
                               path, nm);
            }
            e->begin = v[0];
            e->end = v[1];
        } else if ((s = json_skip(J, 1))) {
            free(key);
            return s;
        }
        if (seen && *seen) {
            s = st_fail(ST_ERR_FORMAT, "%s: tensor '%s': key \"%s\" appears twice", path, nm, key);
            free(key);
            return s;
        }
        if (seen) *seen = 1;
        free(key);
        json_ws(J);
        if (json_peek(J) == ',') { J->i++; continue; }
        if (json_peek(J) == '}') { J->i++; break; }
        return json_error(J, "expected ',' or '}'");
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': no \"%s\"", path, nm,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    if (e->begin > e->end)
        return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': data offsets [%llu, %llu) are reversed", path, nm,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_size)
        return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': data offsets [%llu, %llu) exceed the data section (%llu bytes)",
                       path, nm, (unsigned long long)e->begin, (unsigned long long)e->end,
                       (unsigned long long)data_size);
    size_t bytes;
    if (st_shape_nbytes(e->ndim, e->shape, e->dtype, NULL, &bytes) != 0)
        return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': shape %s is too large", path, nm,
                       st_shape64_str(e->ndim, e->shape, sh, sizeof sh));
    if ((uint64_t)bytes != e->end - e->begin)
        return st_fail(ST_ERR_FORMAT, "%s: tensor '%s': shape %s %s needs %zu bytes, but data offsets [%llu, %llu) "
                       "hold %llu", path, nm, st_shape64_str(e->ndim, e->shape, sh, sizeof sh),
                       safe_dtype_name(e->dtype), bytes, (unsigned long long)e->begin,
                       (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    return ST_OK;
}

/* "__metadata__": {"k": "v", ...} (or null) into ts, which has no metadata yet.
 * Keys are collected first and checked for duplicates by sorting, so a header with
 * millions of keys costs O(n log n). */
static st_status parse_meta(json *J, st_tensors *ts) {
    st_status s = ST_OK;
    char **keys = NULL, **vals = NULL;
    int n = 0, cap = 0;
    json_ws(J);
    if (J->n - J->i >= 4 && memcmp(J->s + J->i, "null", 4) == 0) { J->i += 4; return ST_OK; }
    if ((s = json_expect(J, '{', "expected '{' after \"__metadata__\""))) return s;
    json_ws(J);
    if (json_peek(J) == '}') { J->i++; return ST_OK; }
    for (;;) {
        char *key, *val;
        if ((s = json_string(J, &key))) goto fail;
        if ((s = json_expect(J, ':', "expected ':'"))) { free(key); goto fail; }
        json_ws(J);
        if (json_peek(J) != '"') {
            s = st_fail(ST_ERR_FORMAT, "%s: __metadata__ value of '%.200s' is not a string (at byte %zu)",
                        J->path, key, J->i);
            free(key);
            goto fail;
        }
        if ((s = json_string(J, &val))) { free(key); goto fail; }
        if (n == cap) {
            int nc = cap ? cap * 2 : 8;
            char **nk = cap > INT_MAX / 2 ? NULL : realloc(keys, (size_t)nc * sizeof *nk);
            if (nk) keys = nk;
            char **nv = nk ? realloc(vals, (size_t)nc * sizeof *nv) : NULL;
            if (nv) vals = nv;
            if (!nv) {
                free(key);
                free(val);
                s = st_fail(ST_ERR_NOMEM, "%s: out of memory reading the header", J->path);
                goto fail;
            }
            cap = nc;
        }
        keys[n] = key;
        vals[n] = val;
        n++;
        json_ws(J);
        if (json_peek(J) == ',') { J->i++; continue; }
        if (json_peek(J) == '}') { J->i++; break; }
        s = json_error(J, "expected ',' or '}'");
        goto fail;
    }
    int oom;
    const char *dup = find_duplicate(keys, n, &oom);
    if (oom) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory reading the header", J->path); goto fail; }
    if (dup) { s = st_fail(ST_ERR_FORMAT, "%s: __metadata__ key '%.200s' appears twice", J->path, dup); goto fail; }
    ts->meta_keys = keys;
    ts->meta_vals = vals;
    ts->n_meta = n;
    return ST_OK;
fail:
    for (int i = 0; i < n; i++) {
        free(keys[i]);
        free(vals[i]);
    }
    free(keys);
    free(vals);
    return s;
}

static int cmp_entry_offset(const void *a, const void *b) {
    const safe_entry *x = *(const safe_entry *const *)a, *y = *(const safe_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Duplicate names and overlapping data (which would let a small file demand huge
 * amounts of memory) are errors. */
static st_status check_entries(const char *path, safe_entry *es, int n) {
    if (n < 2) return ST_OK;
    char **names = malloc((size_t)n * sizeof *names);
    safe_entry **by_off = malloc((size_t)n * sizeof *by_off);
    st_status s = ST_OK;
    if (!names || !by_off) {
        s = st_fail(ST_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) { names[i] = es[i].name; by_off[i] = &es[i]; }
    int oom;
    const char *dup = find_duplicate(names, n, &oom);
    if (oom) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (dup) { s = st_fail(ST_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", path, dup); goto done; }
    qsort(by_off, (size_t)n, sizeof *by_off, cmp_entry_offset);
    const safe_entry *prev = NULL;
    for (int i = 0; i < n; i++) {
        const safe_entry *e = by_off[i];
        if (e->begin == e->end) continue;
        if (prev && prev->end > e->begin) {
            s = st_fail(ST_ERR_FORMAT, "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap in the data section",
                        path, prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end, e->name,
                        (unsigned long long)e->begin, (unsigned long long)e->end);
            goto done;
        }
        prev = e;
    }
done:
    free(names);
    free(by_off);
    return s;
}

static void free_entries(safe_entry *es, int n) {
    for (int i = 0; i < n; i++) free(es[i].name);
    free(es);
}

/* Parses the header text into entries (checked against data_size) and metadata. */
static st_status parse_header(json *J, uint64_t data_size, safe_entry **es_out, int *n_out, st_tensors *ts) {
    safe_entry *es = NULL;
    int n = 0, cap = 0, have_meta = 0;
    st_status s;
    *es_out = NULL;
    *n_out = 0;
    if ((s = json_expect(J, '{', "expected '{' at the start of the header"))) return s;
    json_ws(J);
    if (json_peek(J) == '}') J->i++;
    else for (;;) {
        char *key;
        if ((s = json_string(J, &key))) goto fail;
        if ((s = json_expect(J, ':', "expected ':'"))) { free(key); goto fail; }
        if (strcmp(key, "__metadata__") == 0) {
            free(key);
            if (have_meta) { s = json_error(J, "\"__metadata__\" appears twice"); goto fail; }
            have_meta = 1;
            if ((s = parse_meta(J, ts))) goto fail;
        } else {
            if (n == cap) {
                int nc = cap ? cap * 2 : 16;
                safe_entry *ne = cap > INT_MAX / 2 ? NULL : realloc(es, (size_t)nc * sizeof *ne);
                if (!ne) { free(key); s = st_fail(ST_ERR_NOMEM, "%s: out of memory", J->path); goto fail; }
                es = ne;
                cap = nc;
            }
            memset(&es[n], 0, sizeof es[n]);
            es[n].name = key;
            n++;
            if ((s = parse_entry(J, &es[n - 1], data_size))) goto fail;
        }
        json_ws(J);
        if (json_peek(J) == ',') { J->i++; continue; }
        if (json_peek(J) == '}') { J->i++; break; }
        s = json_error(J, "expected ',' or '}'");
        goto fail;
    }
    json_ws(J);
    if (J->i != J->n) { s = json_error(J, "unexpected text after the header object"); goto fail; }
    *es_out = es;
    *n_out = n;
    return ST_OK;
fail:
    free_entries(es, n);
    return s;
}

/* ---------------------------------------------------------------- loading */
static st_status safe_read(const char *path, int fd, int64_t fsize, st_tensors *ts) {
    unsigned char lenbuf[8];
    st_status s;
    if (fsize == 0) return st_fail(ST_ERR_FORMAT, "%s: empty file (not a .safetensors file)", path);
    if (fsize < 8)
        return st_fail(ST_ERR_FORMAT, "%s: truncated: %lld bytes, too short to hold the 8-byte header length", path,
                       (long long)fsize);
    if ((s = st_io_read_at(path, fd, lenbuf, 8, 0))) return s;
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | lenbuf[k];
    if (hlen >= SAFE_MAX_HEADER)
        return st_fail(ST_ERR_FORMAT, "%s: header length %llu is absurd (limit %u): not a .safetensors file?", path,
                       (unsigned long long)hlen, SAFE_MAX_HEADER);
    if (hlen > (uint64_t)(fsize - 8))
        return st_fail(ST_ERR_FORMAT, "%s: header length %llu is larger than the file (%lld bytes): truncated, "
                       "or not a .safetensors file", path, (unsigned long long)hlen, (long long)fsize);
    char *text = malloc(hlen + 1);
    if (!text) return st_fail(ST_ERR_NOMEM, "%s: out of memory for the header", path);
    if ((s = st_io_read_at(path, fd, text, hlen, 8))) { free(text); return s; }
    text[hlen] = '\0';
    int64_t data_start = 8 + (int64_t)hlen;
    uint64_t data_size = (uint64_t)(fsize - data_start);

    json J = {text, hlen, 0, path};
    safe_entry *es;
    int n;
    s = parse_header(&J, data_size, &es, &n, ts);
    free(text);
    if (s) return s;
    if ((s = check_entries(path, es, n)) || (s = tensors_reserve(ts, n))) { free_entries(es, n); return s; }
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)(es[i].end - es[i].begin);
        st_array a;
        memset(&a, 0, sizeof a);
        a.dtype = es[i].dtype;
        a.ndim = es[i].ndim;
        memcpy(a.shape, es[i].shape, sizeof a.shape);
        a.data = malloc(bytes ? bytes : 1);
        if (!a.data) {
            s = st_fail(ST_ERR_NOMEM, "%s: tensor '%s': out of memory for %zu bytes", path, es[i].name, bytes);
            break;
        }
        if ((s = st_io_read_at(path, fd, a.data, bytes, data_start + (int64_t)es[i].begin))) {
            free(a.data);
            break;
        }
        ts->names[ts->n] = es[i].name;
        ts->arrays[ts->n] = a;
        ts->n++;
        es[i].name = NULL; /* now owned by ts */
    }
    free_entries(es, n);
    return s;
}

st_status st_safetensors_load(const char *path, st_tensors *out) {
    if (!out) return st_fail(ST_ERR_ARG, "%s: no output given", path ? path : "safetensors load");
    st_tensors_init(out);
    if (!path) return st_fail(ST_ERR_ARG, "safetensors load: no file name given");
    int fd;
    int64_t fsize;
    st_status s = st_io_open_read(path, &fd, &fsize);
    if (s) return s;
    st_tensors ts;
    st_tensors_init(&ts);
    s = safe_read(path, fd, fsize, &ts);
    close(fd);
    if (s) st_tensors_free(&ts);
    else *out = ts;
    return s;
}

/* ---------------------------------------------------------------- saving */
typedef struct {
    char *p;
    size_t n, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (n > SIZE_MAX / 2 - b->n) { b->failed = 1; return; }
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_json_string(sbuf *b, const char *s) {
    sb_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        switch (c) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        case '\b': sb_add(b, "\\b", 2); break;
        case '\f': sb_add(b, "\\f", 2); break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                sb_add(b, esc, 6);
            } else {
                sb_add(b, p, 1);
            }
        }
    }
    sb_add(b, "\"", 1);
}

st_status st_safetensors_save(const char *path, const st_tensors *ts) {
    if (!path) return st_fail(ST_ERR_ARG, "safetensors save: no file name given");
    if (!ts || ts->n < 0 || ts->n_meta < 0) return st_fail(ST_ERR_ARG, "%s: no tensor list given", path);
    st_status s;
    int oom;
    char what[1300];
    size_t *sizes = malloc(((size_t)ts->n + 2) * sizeof *sizes);
    const void **parts = malloc(((size_t)ts->n + 2) * sizeof *parts);
    sbuf b = {NULL, 0, 0, 0};
    if (!sizes || !parts) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory", path); goto done; }

    for (int i = 0; i < ts->n; i++) {
        if ((s = check_name(ts->names[i], path))) goto done;
        snprintf(what, sizeof what, "%.1000s: tensor '%.200s'", path, ts->names[i]);
        if ((s = st_array_check(&ts->arrays[i], what, &sizes[i + 2]))) goto done;
        parts[i + 2] = ts->arrays[i].data;
    }
    const char *dup = find_duplicate(ts->names, ts->n, &oom);
    if (oom) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (dup) { s = st_fail(ST_ERR_ARG, "%s: tensor '%s' appears twice", path, dup); goto done; }
    for (int i = 0; i < ts->n_meta; i++)
        if (!ts->meta_keys[i] || !ts->meta_vals[i]) {
            s = st_fail(ST_ERR_ARG, "%s: metadata entry %d has no key or value", path, i);
            goto done;
        }
    dup = find_duplicate(ts->meta_keys, ts->n_meta, &oom);
    if (oom) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory", path); goto done; }
    if (dup) { s = st_fail(ST_ERR_ARG, "%s: metadata key '%s' appears twice", path, dup); goto done; }

    /* the header, compact like the reference writer, metadata first */
    sb_str(&b, "{");
    if (ts->n_meta > 0) {
        sb_str(&b, "\"__metadata__\":{");
        for (int i = 0; i < ts->n_meta; i++) {
            if (i) sb_str(&b, ",");
            sb_json_string(&b, ts->meta_keys[i]);
            sb_str(&b, ":");
            sb_json_string(&b, ts->meta_vals[i]);
        }
        sb_str(&b, "}");
    }
    uint64_t off = 0;
    for (int i = 0; i < ts->n; i++) {
        const st_array *a = &ts->arrays[i];
        char num[48];
        if (i || ts->n_meta > 0) sb_str(&b, ",");
        sb_json_string(&b, ts->names[i]);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, safe_dtype_name(a->dtype));
        sb_str(&b, "\",\"shape\":[");
        for (int k = 0; k < a->ndim; k++) {
            snprintf(num, sizeof num, k ? ",%lld" : "%lld", (long long)a->shape[k]);
            sb_str(&b, num);
        }
        if (sizes[i + 2] > (uint64_t)INT64_MAX - off) {
            s = st_fail(ST_ERR_ARG, "%s: the tensors are too large for one file", path);
            goto done;
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                 (unsigned long long)(off + sizes[i + 2]));
        sb_str(&b, num);
        off += sizes[i + 2];
    }
    sb_str(&b, "}");
    while (!b.failed && b.n % 8 != 0) sb_add(&b, " ", 1); /* the data section starts 8-aligned */
    if (b.failed) { s = st_fail(ST_ERR_NOMEM, "%s: out of memory for the header", path); goto done; }
    if (b.n >= SAFE_MAX_HEADER) { s = st_fail(ST_ERR_ARG, "%s: header of %zu bytes is too large", path, b.n); goto done; }

    unsigned char lenbuf[8];
    for (int k = 0; k < 8; k++) lenbuf[k] = (unsigned char)((uint64_t)b.n >> (8 * k));
    parts[0] = lenbuf;
    sizes[0] = 8;
    parts[1] = b.p;
    sizes[1] = b.n;
    s = st_io_write_atomic(path, ts->n + 2, parts, sizes);
done:
    free(sizes);
    free(parts);
    free(b.p);
    return s;
}
