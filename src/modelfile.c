/* modelfile.c - the text model format: one node per line,
 *
 *     # comment
 *     x     = input(shape=(1, 40))
 *     conv1 = conv1d(x, out_channels=15, kernel_size=3, stride=2, padding='valid')
 *     relu1 = relu()                  # no input named: the previous node
 *     sum   = add(relu1, skip)        # several inputs: residual connections
 *
 * A line is `name = op(arguments)`: positional arguments name input nodes, keyword
 * arguments use PyTorch's names. Values are integers, floats, 'strings' (or bare
 * words), tuples (3, 5), True/False and None. This file parses lines into st_args,
 * builds networks from text and writes networks back as text.
 */
#include "net.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- lexing helpers */
static const char *skip_ws(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    return p;
}

static int is_name_start(int c) { return isalpha(c) || c == '_'; }
static int is_name_char(int c) { return isalnum(c) || c == '_' || c == '.' || c == '-'; }

/* Reads an identifier (node names may contain dots and dashes: "layer1.0.conv1"). */
static const char *read_name(const char *p, char *out, size_t len, int allow_digit_start) {
    size_t n = 0;
    if (!(is_name_start((unsigned char)*p) || (allow_digit_start && isdigit((unsigned char)*p)))) return NULL;
    while (is_name_char((unsigned char)*p)) {
        if (n + 1 >= len) return NULL;
        out[n++] = *p++;
    }
    out[n] = 0;
    return p;
}

static const char *parse_value(const char *p, st_val *v) {
    memset(v, 0, sizeof *v);
    p = skip_ws(p);
    if (*p == '(') { /* tuple of integers */
        p++;
        v->kind = ST_V_TUPLE;
        for (;;) {
            p = skip_ws(p);
            if (*p == ')') { p++; break; }
            char *end;
            errno = 0;
            long x = strtol(p, &end, 10);
            if (end == p || errno || x < -1000000000L || x > 1000000000L) return NULL;
            if (v->n >= ST_MAX_DIMS) return NULL;
            v->tup[v->n++] = (int)x;
            p = skip_ws(end);
            if (*p == ',') { p++; continue; }
            if (*p == ')') { p++; break; }
            return NULL;
        }
        return v->n ? p : NULL;
    }
    if (*p == '\'' || *p == '"') {
        char q = *p++;
        size_t n = 0;
        while (*p && *p != q) {
            if (n + 1 >= sizeof v->str) return NULL;
            v->str[n++] = *p++;
        }
        if (*p != q) return NULL;
        v->str[n] = 0;
        v->kind = ST_V_STR;
        return p + 1;
    }
    if (isdigit((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.') {
        char *end;
        errno = 0;
        double x = strtod(p, &end);
        if (end == p || errno) return NULL;
        int is_float = 0;
        for (const char *c = p; c < end; c++)
            if (*c == '.' || *c == 'e' || *c == 'E') is_float = 1;
        v->kind = is_float ? ST_V_FLOAT : ST_V_INT;
        v->num = x;
        return end;
    }
    if (is_name_start((unsigned char)*p)) {
        const char *e = read_name(p, v->str, sizeof v->str, 0);
        if (!e) return NULL;
        if (!strcmp(v->str, "True") || !strcmp(v->str, "true")) { v->kind = ST_V_BOOL; v->num = 1; }
        else if (!strcmp(v->str, "False") || !strcmp(v->str, "false")) { v->kind = ST_V_BOOL; v->num = 0; }
        else if (!strcmp(v->str, "None")) v->kind = ST_V_NONE;
        else v->kind = ST_V_STR;
        return e;
    }
    return NULL;
}

st_status st_parse_line(const char *line, char *name, size_t name_len, char *op, size_t op_len,
                        st_args *args, int *is_empty) {
    memset(args, 0, sizeof *args);
    *is_empty = 0;
    const char *p = skip_ws(line);
    if (*p == 0 || *p == '\n' || *p == '#') { *is_empty = 1; return ST_OK; }
    const char *e = read_name(p, name, name_len, 0);
    if (!e) return st_fail(ST_ERR_PARSE, "expected a node name at column %d", (int)(p - line) + 1);
    p = skip_ws(e);
    if (*p != '=') return st_fail(ST_ERR_PARSE, "expected '=' after node name '%s'", name);
    p = skip_ws(p + 1);
    e = read_name(p, op, op_len, 0);
    if (!e) return st_fail(ST_ERR_PARSE, "expected an op name after '%s ='", name);
    p = skip_ws(e);
    if (*p != '(') return st_fail(ST_ERR_PARSE, "expected '(' after '%s'", op);
    p = skip_ws(p + 1);
    if (*p != ')') {
        for (;;) {
            p = skip_ws(p);
            char key[32];
            const char *k = read_name(p, key, sizeof key, 0);
            const char *after = k ? skip_ws(k) : NULL;
            if (k && *after == '=') {
                if (args->nkw >= ST_MAX_ARGS) return st_fail(ST_ERR_PARSE, "too many arguments");
                for (int i = 0; i < args->nkw; i++)
                    if (!strcmp(args->key[i], key)) return st_fail(ST_ERR_PARSE, "argument '%s' given twice", key);
                strcpy(args->key[args->nkw], key);
                p = parse_value(after + 1, &args->val[args->nkw]);
                if (!p) return st_fail(ST_ERR_PARSE, "bad value for '%s'", key);
                args->nkw++;
            } else {
                if (args->nkw) return st_fail(ST_ERR_PARSE, "positional argument after keyword arguments");
                if (args->npos >= ST_MAX_INPUTS) return st_fail(ST_ERR_PARSE, "too many inputs (at most %d)", ST_MAX_INPUTS);
                st_val *v = &args->pos[args->npos];
                memset(v, 0, sizeof *v);
                const char *q = read_name(p, v->str, sizeof v->str, 0);
                if (!q) return st_fail(ST_ERR_PARSE, "expected an input node name or key=value at column %d", (int)(p - line) + 1);
                v->kind = ST_V_STR;
                args->npos++;
                p = q;
            }
            p = skip_ws(p);
            if (*p == ',') { p++; continue; }
            if (*p == ')') break;
            return st_fail(ST_ERR_PARSE, "expected ',' or ')' at column %d", (int)(p - line) + 1);
        }
    }
    p = skip_ws(p + 1);
    if (*p && *p != '#' && *p != '\n') return st_fail(ST_ERR_PARSE, "unexpected text after ')': '%.20s'", p);
    return ST_OK;
}

/* ---------------------------------------------------------------- argument getters */
static int find_key(st_args *a, const char *key) {
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->key[i], key)) { a->used[i] = 1; return i; }
    return -1;
}

int st_arg_has(const st_args *a, const char *key) {
    for (int i = 0; i < a->nkw; i++)
        if (!strcmp(a->key[i], key)) return 1;
    return 0;
}

st_status st_arg_int(st_args *a, const char *key, int *out) {
    int i = find_key(a, key);
    if (i < 0) return ST_OK;
    st_val *v = &a->val[i];
    if (v->kind == ST_V_BOOL) { *out = (int)v->num; return ST_OK; }
    if (v->kind != ST_V_INT) return st_fail(ST_ERR_PARSE, "'%s' must be an integer", key);
    *out = (int)v->num;
    return ST_OK;
}

st_status st_arg_float(st_args *a, const char *key, float *out) {
    int i = find_key(a, key);
    if (i < 0) return ST_OK;
    st_val *v = &a->val[i];
    if (v->kind != ST_V_INT && v->kind != ST_V_FLOAT) return st_fail(ST_ERR_PARSE, "'%s' must be a number", key);
    *out = (float)v->num;
    return ST_OK;
}

st_status st_arg_bool(st_args *a, const char *key, int *out) {
    int i = find_key(a, key);
    if (i < 0) return ST_OK;
    st_val *v = &a->val[i];
    if (v->kind == ST_V_BOOL || (v->kind == ST_V_INT && (v->num == 0 || v->num == 1))) { *out = (int)v->num; return ST_OK; }
    return st_fail(ST_ERR_PARSE, "'%s' must be True or False", key);
}

st_status st_arg_str(st_args *a, const char *key, char *out, size_t len) {
    int i = find_key(a, key);
    if (i < 0) return ST_OK;
    st_val *v = &a->val[i];
    if (v->kind != ST_V_STR) return st_fail(ST_ERR_PARSE, "'%s' must be a string", key);
    snprintf(out, len, "%s", v->str);
    return ST_OK;
}

st_status st_arg_ints(st_args *a, const char *key, int n, int *out) {
    int i = find_key(a, key);
    if (i < 0) return ST_OK;
    st_val *v = &a->val[i];
    if (v->kind == ST_V_INT) {
        for (int j = 0; j < n; j++) out[j] = (int)v->num;
        return ST_OK;
    }
    if (v->kind == ST_V_TUPLE && v->n == n) {
        for (int j = 0; j < n; j++) out[j] = v->tup[j];
        return ST_OK;
    }
    if (v->kind == ST_V_TUPLE) return st_fail(ST_ERR_PARSE, "'%s' must have %d values, got %d", key, n, v->n);
    return st_fail(ST_ERR_PARSE, "'%s' must be an integer or a tuple of %d integers", key, n);
}

/* ---------------------------------------------------------------- text in and out */
st_status st_net_parse(const char *text, const char *source, st_net **out) {
    *out = NULL;
    st_net *net;
    st_status rc = st_net_new(&net);
    if (rc) return rc;
    const char *p = text;
    int lineno = 0;
    char line[4096];
    while (*p) {
        lineno++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (len >= sizeof line) {
            st_net_free(net);
            return st_fail(ST_ERR_PARSE, "%s line %d: line too long", source, lineno);
        }
        memcpy(line, p, len);
        line[len] = 0;
        rc = st_net_add(net, line);
        if (rc) {
            st_net_free(net);
            return st_fail_prefix(rc, "%s line %d: ", source, lineno);
        }
        p = nl ? nl + 1 : p + len;
    }
    if (net->nnodes == 0) {
        st_net_free(net);
        return st_fail(ST_ERR_PARSE, "%s: no nodes (a model file needs at least an input line, e.g. \"x = input(shape=(1, 40))\")", source);
    }
    *out = net;
    return ST_OK;
}

st_status st_net_load_file(const char *path, st_net **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return st_fail(ST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return st_fail(ST_ERR_IO, "%s: cannot read", path); }
    long size = ftell(f);
    if (size < 0 || size > (64L << 20)) {
        fclose(f);
        return st_fail(ST_ERR_FORMAT, "%s: not a model file (size %ld bytes)", path, size);
    }
    rewind(f);
    char *text = malloc((size_t)size + 1);
    if (!text) { fclose(f); return st_fail(ST_ERR_NOMEM, "%s: out of memory", path); }
    size_t got = fread(text, 1, (size_t)size, f);
    fclose(f);
    if (got != (size_t)size) { free(text); return st_fail(ST_ERR_IO, "%s: read error", path); }
    text[size] = 0;
    if (memchr(text, 0, (size_t)size)) { free(text); return st_fail(ST_ERR_FORMAT, "%s: not a text model file (contains NUL bytes)", path); }
    st_status rc = st_net_parse(text, path, out);
    free(text);
    return rc;
}

st_status st_net_open(const char *name_or_path, st_net **out) {
    st_status rc = st_net_from_zoo(name_or_path, out);
    if (rc != ST_ERR_NOTFOUND) return rc;
    FILE *f = fopen(name_or_path, "rb");
    if (!f) {
        char names[1024] = "";
        for (const char *const *z = st_zoo_names(); *z; z++) {
            strncat(names, *z, sizeof names - strlen(names) - 3);
            if (z[1]) strncat(names, ", ", sizeof names - strlen(names) - 1);
        }
        return st_fail(ST_ERR_NOTFOUND, "'%s' is neither a built-in model (%s) nor a readable model file", name_or_path, names);
    }
    fclose(f);
    return st_net_load_file(name_or_path, out);
}

char *st_net_to_text(const st_net *net) {
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[0] = 0;
    for (int i = 0; i < net->nnodes; i++) {
        const st_node *n = &net->nodes[i];
        char args[512] = "", inputs[512] = "", line[1200];
        n->op->print(n, args, sizeof args);
        int implicit = n->ninputs == 1 && n->inputs[0] == i - 1;
        for (int j = 0; j < n->ninputs && !implicit; j++) {
            strncat(inputs, net->nodes[n->inputs[j]].name, sizeof inputs - strlen(inputs) - 3);
            if (j + 1 < n->ninputs) strcat(inputs, ", ");
        }
        snprintf(line, sizeof line, "%s = %s(%s%s%s)\n", n->name, n->op->name, inputs,
                 inputs[0] && args[0] ? ", " : "", args);
        size_t l = strlen(line);
        if (len + l + 1 > cap) {
            cap = (len + l + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); return NULL; }
            buf = nb;
        }
        memcpy(buf + len, line, l + 1);
        len += l;
    }
    return buf;
}
