/* task_data.c - data specs for training and evaluation: which data set, which task.
 *
 * cli_data_load turns a spec into a train and a test st_dataset plus what the task needs
 * beyond them: keypoints for PCK, class names for reports and pictures, a line that
 * describes the data. Files are read by data_files.c (cli_data_read); the generated data
 * sets (MNIST-1D, synthetic shapes) are made here in memory. Errors are printed as
 * "stride: ..." without stride.c's helpers, so that tests can link this file alone. */
#include "cli.h"
#include "internal.h" /* st_fail, st_strdup */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const FASHION_NAMES[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot", NULL};
static const char *const CIFAR10_NAMES[] = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck", NULL};
static const char *const SHAPE_NAMES[] = {"background", "circle", "square", "triangle", NULL};
static const char *const JOINT_NAMES[] = {"circle centre", "square centre", "square corner",
                                          "triangle centre", "triangle corner", NULL};

const char *cli_task_name(cli_task t) {
    return t == TASK_CLASSIFY ? "classify" : t == TASK_SEGMENT ? "segment" : t == TASK_KEYPOINTS ? "keypoints" : "?";
}


static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }

/* A NULL-terminated, malloc'ed copy of names (n of them, or up to the NULL if n < 0). */
static char **copy_names(const char *const *names, int n) {
    if (n < 0) for (n = 0; names[n]; n++) {}
    char **v = calloc((size_t)n + 1, sizeof *v);
    for (int i = 0; v && i < n; i++)
        if (!(v[i] = st_strdup(names[i]))) {
            for (int k = 0; k < i; k++) free(v[k]);
            free(v);
            return NULL;
        }
    return v;
}

static void free_names(char **v) {
    for (int i = 0; v && v[i]; i++) free(v[i]);
    free(v);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The class names of an image folder: ROOT/train's sub-folders, sorted as data_files.c numbers them. */
static char **folder_names(const char *root) {
    char dir[4096], p[8192];
    snprintf(dir, sizeof dir, "%s/train", root);
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!is_dir(p)) continue;
        if (n + 1 >= cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, sizeof *v * cap);
            if (!nv) break;
            v = nv;
        }
        if (!(v[n] = st_strdup(e->d_name))) break;
        v[++n] = NULL;
    }
    closedir(d);
    if (v) qsort(v, n, sizeof *v, cmp_str);
    return v;
}

/* ---------------------------------------------------------------- keypoints from .npy */
/* DIR/SPLIT_keypoints.npy: (n, K, 4) floats, into a malloc'ed buffer. */
static int load_keypoints(const char *dir, const char *split, int n, float **kp, int *max_kp) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_keypoints.npy", dir, split);
    st_array a;
    if (st_npy_load(path, &a)) return cli_fail();
    st_tensor *t = NULL;
    int rc = 0;
    if (a.ndim != 3 || a.shape[0] != n || a.shape[2] != 4 || a.shape[1] < 1)
        rc = cli_error("%s: keypoints must be (%d, K, 4) rows x, y, joint, visible, got %s with %d dimension(s) and %lld rows",
                   path, n, st_dtype_name(a.dtype), a.ndim, a.ndim ? (long long)a.shape[0] : 0LL);
    else if (*max_kp && a.shape[1] != *max_kp)
        rc = cli_error("%s: %lld keypoint rows per sample, but the training split has %d", path, (long long)a.shape[1], *max_kp);
    else if (st_array_to_tensor(&a, &t))
        rc = cli_error("%s: %s", path, st_errmsg());
    if (!rc) {
        *max_kp = (int)a.shape[1];
        *kp = t->data; /* keep the data, drop the tensor */
        t->data = NULL;
    }
    st_tensor_free(t);
    st_array_free(&a);
    return rc;
}

/* For a DENSE data set whose targets are heatmaps: input pixels per heatmap cell. */
static int heatmap_stride(const st_dataset *d, const char *what, int *stride) {
    int w = d->shape[d->ndim - 1], hw = d->tshape[d->tndim - 1];
    if (d->tndim < 2 || hw < 1 || w % hw)
        return cli_error("%s: the targets (heatmaps) must be (joints, ..., W') with W' dividing the input width %d", what, w);
    *stride = w / hw;
    return 0;
}

/* DIR/SPLIT_x.npy with DIR/SPLIT_heatmaps.npy as DENSE targets. */
static int load_heatmap_split(const char *dir, const char *split, st_dataset *out) {
    char xp[4096], yp[4096];
    snprintf(xp, sizeof xp, "%s/%s_x.npy", dir, split);
    snprintf(yp, sizeof yp, "%s/%s_heatmaps.npy", dir, split);
    st_array x = {0}, y = {0};
    st_status s = st_npy_load(xp, &x);
    if (!s) s = st_npy_load(yp, &y);
    if (!s && !(y.dtype == ST_F32 || y.dtype == ST_F64))
        s = st_fail(ST_ERR_FORMAT, "%s: heatmaps must be floats, not %s", yp, st_dtype_name(y.dtype));
    if (!s) s = st_dataset_from_arrays(&x, &y, xp, yp, out);
    st_array_free(&x);
    st_array_free(&y);
    return s ? cli_fail() : 0;
}

/* ---------------------------------------------------------------- generated data */
static int load_mnist1d(cli_data *d) {
    st_mnist1d_args a;
    st_mnist1d m;
    st_mnist1d_default_args(&a);
    if (st_mnist1d_generate(&a, &m)) return cli_fail();
    st_dataset *sets[2] = {&d->train, &d->test};
    float *xs[2] = {m.train_x, m.test_x};
    int32_t *ys[2] = {m.train_y, m.test_y};
    int ns[2] = {m.n_train, m.n_test}, classes = 0;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ns[k]; i++)
            if (ys[k][i] + 1 > classes) classes = ys[k][i] + 1;
    for (int k = 0; k < 2; k++) {
        st_dataset *s = sets[k];
        s->n = ns[k];
        s->ndim = 2;
        s->shape[0] = 1;
        s->shape[1] = m.length;
        s->x = xs[k];      /* the data set takes the generator's buffers */
        s->labels = ys[k];
        s->kind = ST_TARGET_CLASS;
        s->classes = classes;
    }
    free(m.t);
    snprintf(d->desc, sizeof d->desc, "MNIST-1D (generated, official defaults: seed %u), %d train / %d test", (unsigned)a.seed,
             m.n_train, m.n_test);
    d->task = TASK_CLASSIFY;
    return 0;
}

/* "shapes[:k=v,...]" or "shapes-keypoints[:k=v,...]" */
static int load_shapes(const char *spec, int keypoints, cli_data *d) {
    st_shapes_conf c;
    st_shapes_defaults(&c);
    double split = 0.8;
    const char *opts = strchr(spec, ':');
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", opts ? opts + 1 : "");
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) return cli_error("%s: option '%s' needs a value (name=value)", spec, kv);
        *eq = 0;
        const char *k = kv, *v = eq + 1;
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || errno || x != x) return cli_error("%s: %s=%s is not a number", spec, k, v);
        int is_int = x == (double)(long)x;
        struct { const char *name; int *dst; double lo, hi; } ints[] = {
            {"n", &c.n, 2, 1e8}, {"size", &c.size, 8, 4096}, {"channels", &c.channels, 1, 3},
            {"min", &c.min_shapes, 0, 16}, {"max", &c.max_shapes, 1, 16}, {"stride", &c.heatmap_stride, 1, 4096}};
        int done = 0;
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
            if (!strcmp(k, ints[i].name)) {
                if (!is_int || x < ints[i].lo || x > ints[i].hi)
                    return cli_error("%s: %s=%s must be an integer in %g..%g", spec, k, v, ints[i].lo, ints[i].hi);
                *ints[i].dst = (int)x;
                done = 1;
            }
        if (done) continue;
        if (!strcmp(k, "seed")) {
            if (!is_int || x < 0 || x > 0x7fffffff) return cli_error("%s: seed=%s must be an integer in 0..2147483647", spec, v);
            c.seed = (uint64_t)x;
        } else if (!strcmp(k, "noise")) {
            if (x < 0) return cli_error("%s: noise=%s must be >= 0", spec, v);
            c.noise = x;
        } else if (!strcmp(k, "sigma")) {
            if (!(x >= 0.1 && x <= 1000)) return cli_error("%s: sigma=%s must be in 0.1..1000", spec, v);
            c.sigma_x10 = (int)(x * 10 + 0.5);
        } else if (!strcmp(k, "split")) {
            if (!(x > 0 && x < 1)) return cli_error("%s: split=%s must be between 0 and 1", spec, v);
            split = x;
        } else {
            return cli_error("%s: unknown option '%s' (shapes options: n, size, channels, seed, noise, min, max, sigma, stride, split)",
                         spec, k);
        }
    }
    int n_train = (int)(c.n * split + 0.5);
    if (n_train < 1 || n_train >= c.n) return cli_error("%s: n=%d with split=%g leaves an empty split", spec, c.n, split);
    st_shapes s;
    if (st_shapes_generate(&c, &s)) return cli_error("%s: %s", spec, st_errmsg());
    const int64_t S = s.size, C = s.channels, J = s.joints, H = s.hs, K = s.max_keypoints;
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++) {
        int64_t first = k ? n_train : 0, count = k ? c.n - n_train : n_train;
        st_dataset *ds = k ? &d->test : &d->train;
        st_array x = {ST_F32, 4, {count, C, S, S}, s.images + first * C * S * S};
        st_array y = keypoints ? (st_array){ST_F32, 4, {count, J, H, H}, s.heatmaps + first * J * H * H}
                               : (st_array){ST_I32, 3, {count, S, S}, s.masks + first * S * S};
        if (st_dataset_from_arrays(&x, &y, "shapes images", keypoints ? "shapes heatmaps" : "shapes masks", ds)) {
            rc = cli_fail();
            break;
        }
        if (!keypoints) ds->classes = ST_SHAPE_CLASSES; /* even where a small split lacks a shape */
        if (keypoints) {
            float **kp = k ? &d->test_kp : &d->train_kp;
            if (!(*kp = malloc(sizeof(float) * count * K * 4))) { rc = cli_error("%s: out of memory", spec); break; }
            memcpy(*kp, s.keypoints + first * K * 4, sizeof(float) * count * K * 4);
        }
    }
    if (!rc) {
        d->task = keypoints ? TASK_KEYPOINTS : TASK_SEGMENT;
        d->max_kp = keypoints ? (int)K : 0;
        d->kp_stride = keypoints ? s.stride : 0;
        d->class_names = copy_names(keypoints ? JOINT_NAMES : SHAPE_NAMES, -1);
        char extra[64] = "";
        if (keypoints) snprintf(extra, sizeof extra, ", %d heatmaps of %dx%d", s.joints, s.hs, s.hs);
        snprintf(d->desc, sizeof d->desc, "shapes%s (generated: %dx%dx%d, %d-%d shapes, noise %g, seed %llu%s), %d train / %d test",
                 keypoints ? "-keypoints" : "", s.channels, s.size, s.size, c.min_shapes, c.max_shapes, c.noise,
                 (unsigned long long)c.seed, extra, d->train.n, d->test.n);
    }
    st_shapes_free(&s);
    return rc;
}

/* ---------------------------------------------------------------- files */
/* DIR:keypoints, DIR written by `stride data shapes` */
static int load_dir_keypoints(const char *dir, const char *spec, cli_data *d) {
    char p[4200];
    snprintf(p, sizeof p, "%s/train_heatmaps.npy", dir);
    if (!is_file(p)) return cli_error("%s: no %s: ':keypoints' needs a folder written by `stride data shapes`", spec, p);
    if (load_heatmap_split(dir, "train", &d->train) || load_heatmap_split(dir, "test", &d->test)) return 1;
    if (d->train.ndim != d->test.ndim || memcmp(d->train.shape, d->test.shape, sizeof d->train.shape) ||
        memcmp(d->train.tshape, d->test.tshape, sizeof d->train.tshape))
        return cli_error("%s: the training and test splits have different shapes", spec);
    if (heatmap_stride(&d->train, spec, &d->kp_stride)) return 1;
    if (load_keypoints(dir, "train", d->train.n, &d->train_kp, &d->max_kp) ||
        load_keypoints(dir, "test", d->test.n, &d->test_kp, &d->max_kp))
        return 1;
    d->task = TASK_KEYPOINTS;
    if (d->train.tshape[0] == ST_SHAPE_JOINTS) d->class_names = copy_names(JOINT_NAMES, -1);
    snprintf(d->desc, sizeof d->desc, "%.160s (shapes .npy: heatmaps and keypoints), %d train / %d test", dir, d->train.n, d->test.n);
    return 0;
}

static int load_files(const char *spec, cli_data *d) {
    const char *fmt = "";
    if (strcmp(spec, "fashion-mnist") && strcmp(spec, "mnist") && !is_dir(spec))
        return cli_error("%s: no such folder, and not a data set name (fashion-mnist, mnist, mnist1d, shapes[:options], "
                     "shapes-keypoints[:options], DIR:keypoints)", spec);
    if (cli_data_read(spec, &d->train, &d->test, &fmt)) return cli_fail();
    d->task = d->train.kind == ST_TARGET_CLASS ? TASK_CLASSIFY : d->train.kind == ST_TARGET_MASK ? TASK_SEGMENT : TASK_KEYPOINTS;
    char p[4200];
    if (d->task == TASK_KEYPOINTS) { /* heatmaps as y: keypoints beside them make PCK possible */
        snprintf(p, sizeof p, "%s/train_keypoints.npy", spec);
        if (is_file(p)) {
            if (heatmap_stride(&d->train, spec, &d->kp_stride) ||
                load_keypoints(spec, "train", d->train.n, &d->train_kp, &d->max_kp) ||
                load_keypoints(spec, "test", d->test.n, &d->test_kp, &d->max_kp))
                return 1;
        }
    }
    int fashion = !strcmp(spec, "fashion-mnist");
    if (fashion && d->train.classes == 10) d->class_names = copy_names(FASHION_NAMES, -1);
    else if (!strcmp(fmt, "CIFAR-10") && d->train.classes <= 10) d->class_names = copy_names(CIFAR10_NAMES, d->train.classes);
    else if (!strcmp(fmt, "images")) d->class_names = folder_names(spec);
    else if (d->task == TASK_SEGMENT && d->train.classes <= ST_SHAPE_CLASSES) {
        snprintf(p, sizeof p, "%s/train_heatmaps.npy", spec); /* written by `stride data shapes` */
        if (is_file(p)) d->class_names = copy_names(SHAPE_NAMES, d->train.classes);
    }
    if (fashion || !strcmp(spec, "mnist"))
        snprintf(d->desc, sizeof d->desc, "%s (/usr/share/datasets/%s), %d train / %d test", fashion ? "Fashion-MNIST" : "MNIST",
                 spec, d->train.n, d->test.n);
    else
        snprintf(d->desc, sizeof d->desc, "%.160s (%s), %d train / %d test", spec, fmt, d->train.n, d->test.n);
    return 0;
}

static int starts_with_word(const char *s, const char *w) {
    size_t n = strlen(w);
    return !strncmp(s, w, n) && (s[n] == 0 || s[n] == ':');
}

int cli_data_load(const char *spec, cli_data *d) {
    memset(d, 0, sizeof *d);
    if (!spec || !*spec) return cli_error("no data spec given");
    int rc;
    const char *colon = strrchr(spec, ':');
    if (!strcmp(spec, "mnist1d")) rc = load_mnist1d(d);
    else if (starts_with_word(spec, "shapes")) rc = load_shapes(spec, 0, d);
    else if (starts_with_word(spec, "shapes-keypoints")) rc = load_shapes(spec, 1, d);
    else if (colon && !strcmp(colon, ":keypoints") && !is_dir(spec)) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%.*s", (int)(colon - spec), spec);
        rc = load_dir_keypoints(dir, spec, d);
    } else rc = load_files(spec, d);
    if (rc) cli_data_free(d);
    return rc;
}

void cli_data_free(cli_data *d) {
    if (!d) return;
    st_dataset_free(&d->train);
    st_dataset_free(&d->test);
    free(d->train_kp);
    free(d->test_kp);
    free_names(d->class_names);
    memset(d, 0, sizeof *d);
}
