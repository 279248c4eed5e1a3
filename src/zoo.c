/* zoo.c - the built-in models, written in the model-file format itself, so that
 * `stride model NAME` prints exactly what the library builds. The MNIST-1D models are
 * fixed text; the others are generated (zoo_vision.c, zoo_unet.c, ...) with options after
 * a colon: "resnet18:classes=10,size=32,cifar=1". */
#include "net.h"
#include "zoo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *name, *text; } zoo_entry;

static const zoo_entry zoo[] = {
    {"mnist1d-cnn",
     "# mnist1d-cnn: the convolutional network of Understanding Deep Learning, figure 10.7.\n"
     "# Three 'valid' convolutions with kernel 3 and stride 2 (40 -> 19 -> 9 -> 4), 2,050 parameters.\n"
     "x = input(shape=(1, 40))\n"
     "conv1 = conv1d(x, out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu1 = relu()\n"
     "conv2 = conv1d(out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu2 = relu()\n"
     "conv3 = conv1d(out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu3 = relu()\n"
     "flatten = flatten()\n"
     "fc = linear(out_features=10)\n"},
    {"mnist1d-mlp",
     "# mnist1d-mlp: the fully connected network of Understanding Deep Learning, figure 10.8b.\n"
     "# Hidden widths equal the CNN's activation sizes (285, 135, 60): 59,065 parameters\n"
     "# (early printings of the book say 150,185; the errata correct it to 59,065).\n"
     "x = input(shape=(40,))\n"
     "fc1 = linear(x, out_features=285)\n"
     "relu1 = relu()\n"
     "fc2 = linear(out_features=135)\n"
     "relu2 = relu()\n"
     "fc3 = linear(out_features=60)\n"
     "relu3 = relu()\n"
     "fc4 = linear(out_features=10)\n"},
};

static const char *const names[] = {"mnist1d-cnn", "mnist1d-mlp", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19",
                                    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "resnet18", "resnet34",
                                    "resnet50", "resnet101", "resnet152", "alexnet2012", "preact-resnet18",
                                    "preact-resnet34", "preact-resnet50", "preact-resnet101", "preact-resnet152",
                                    "preact-resnet200", "unet", "unet-same", "deconvnet", "hourglass", "lenet5",
                                    "lenet5-classic", NULL};

static const st_zoo_generator generators[] = {st_zoo_vision, st_zoo_unet, st_zoo_hourglass, st_zoo_lenet};

const char *const *st_zoo_names(void) { return names; }

st_status st_zoo_model_text(const char *name, char **text) {
    *text = NULL;
    if (!name) return st_fail(ST_ERR_ARG, "no model name");
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++)
        if (!strcmp(zoo[i].name, name)) {
            *text = strdup(zoo[i].text);
            return *text ? ST_OK : st_fail(ST_ERR_NOMEM, "out of memory");
        }
    const char *colon = strchr(name, ':');
    size_t n = colon ? (size_t)(colon - name) : strlen(name);
    char base[64];
    if (n >= sizeof base) return st_fail(ST_ERR_NOTFOUND, "no built-in model named '%s'", name);
    memcpy(base, name, n);
    base[n] = 0;
    for (size_t i = 0; i < sizeof generators / sizeof generators[0]; i++) {
        st_status rc = generators[i](base, colon ? colon + 1 : "", text);
        if (rc != ST_ERR_NOTFOUND) return rc;
    }
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++)
        if (!strcmp(zoo[i].name, base)) return st_fail(ST_ERR_ARG, "model '%s' takes no options", base);
    return st_fail(ST_ERR_NOTFOUND, "no built-in model named '%s'", name);
}

st_status st_net_from_zoo(const char *name, st_net **out) {
    char *text;
    *out = NULL;
    st_status rc = st_zoo_model_text(name, &text);
    if (rc) return rc;
    rc = st_net_parse(text, name, out);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- generator helpers */
st_status st_zoo_options(const char *model, const char *text, st_zoo_opt *opts, int nopts) {
    char keys[256] = "";
    for (int i = 0; i < nopts; i++)
        snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s", i ? ", " : "", opts[i].key);
    const char *p = text;
    while (*p) {
        const char *eq = strchr(p, '='), *comma = strchr(p, ',');
        size_t klen = eq ? (size_t)(eq - p) : strlen(p);
        if (!eq || (comma && comma < eq))
            return st_fail(ST_ERR_ARG, "model '%s': option '%.*s' needs a value (key=value; keys: %s)", model,
                           (int)(comma ? comma - p : (long)strlen(p)), p, keys);
        int k = -1;
        for (int i = 0; i < nopts; i++)
            if (strlen(opts[i].key) == klen && !strncmp(opts[i].key, p, klen)) k = i;
        if (k < 0) return st_fail(ST_ERR_ARG, "model '%s': unknown option '%.*s' (options: %s)", model, (int)klen, p, keys);
        char *end;
        long v = strtol(eq + 1, &end, 10);
        if (end == eq + 1 || (*end && *end != ','))
            return st_fail(ST_ERR_ARG, "model '%s': option %s needs an integer, got '%.*s'", model, opts[k].key,
                           (int)strcspn(eq + 1, ","), eq + 1);
        if (v < opts[k].min || v > opts[k].max)
            return st_fail(ST_ERR_ARG, "model '%s': %s=%ld is out of range %d..%d", model, opts[k].key, v, opts[k].min,
                           opts[k].max);
        *opts[k].value = (int)v;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) return st_fail(ST_ERR_ARG, "model '%s': a comma ends the options", model);
        }
    }
    return ST_OK;
}

void st_sb_printf(st_sbuf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->failed = 1; return; }
        if (b->s && (size_t)n < room) { b->len += (size_t)n; return; }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) { b->failed = 1; return; }
        b->s = s;
        b->cap = cap;
    }
}

st_status st_sb_take(st_sbuf *b, char **text) {
    *text = NULL;
    if (b->failed || !b->s) {
        free(b->s);
        b->s = NULL;
        return st_fail(ST_ERR_NOMEM, "out of memory writing a model's text");
    }
    *text = b->s;
    b->s = NULL;
    return ST_OK;
}

const char *st_commas(int64_t v, char *buf, size_t len) {
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
        if (i && (n - i) % 3 == 0 && tmp[i - 1] != '-') buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = 0;
    return buf;
}
