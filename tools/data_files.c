/* data_files.c - finding and reading data sets for the CLI: Fashion-MNIST from Debian's
 * package, IDX folders (plain or gzip), CIFAR-10 binary folders, image folders with one
 * sub-folder per class (PNG through libpng, JPEG through libjpeg), and .npy pairs.
 * Parsing and checking is the library's (src/dataset.c); this file reads bytes from disk,
 * decompresses and decodes, and says what is missing or what to install. */
#include "cli.h"
#include "internal.h" /* st_fail: errors read by st_errmsg() like the library's own */

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#ifdef ST_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef ST_HAVE_PNG
#include <png.h>
#endif
#ifdef ST_HAVE_JPEG
#include <jpeglib.h>
#include <setjmp.h>
#endif

#define DEBIAN_DATASETS "/usr/share/datasets"

static int is_dir(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISDIR(st.st_mode); }
static int is_file(const char *p) { struct stat st; return stat(p, &st) == 0 && S_ISREG(st.st_mode); }
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcasecmp(s + a - b, suf);
}

/* dir + "/" + name into buf; 0 if it does not fit (the path then names nothing) */
static int join(char *buf, size_t cap, const char *dir, const char *name) {
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) { buf[0] = 0; return 0; }
    return 1;
}

/* ---------------------------------------------------------------- reading files */
static st_status read_plain(const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return st_fail(ST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b) { fclose(f); return st_fail(ST_ERR_NOMEM, "%s: out of memory", path); }
        n += fread(b + n, 1, cap - n, f);
        if (n < cap) break;
        unsigned char *nb = realloc(b, cap *= 2);
        if (!nb) free(b);
        b = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(b); return st_fail(ST_ERR_IO, "%s: read error", path); }
    *buf = b;
    *len = n;
    return ST_OK;
}

/* The whole file; .gz files are decompressed. */
static st_status read_file(const char *path, unsigned char **buf, size_t *len) {
    if (!ends_with(path, ".gz")) return read_plain(path, buf, len);
#ifdef ST_HAVE_ZLIB
    gzFile g = gzopen(path, "rb");
    if (!g) return st_fail(ST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    gzbuffer(g, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = malloc(cap);
    for (;;) {
        if (!b) { gzclose(g); return st_fail(ST_ERR_NOMEM, "%s: out of memory", path); }
        unsigned want = cap - n > (1u << 30) ? 1u << 30 : (unsigned)(cap - n);
        int got = gzread(g, b + n, want);
        if (got < 0) {
            int code;
            const char *msg = gzerror(g, &code);
            st_status s = st_fail(ST_ERR_FORMAT, "%s: corrupt gzip data after %zu bytes: %s", path, n, msg);
            free(b); gzclose(g);
            return s;
        }
        n += (size_t)got;
        if (got == 0) break;
        if (n == cap) {
            unsigned char *nb = realloc(b, cap *= 2);
            if (!nb) free(b);
            b = nb;
        }
    }
    int code;
    const char *msg = gzerror(g, &code);
    if (code != Z_OK && code != Z_STREAM_END) { /* a truncated stream ends with Z_BUF_ERROR */
        st_status s = st_fail(ST_ERR_FORMAT, "%s: corrupt or truncated gzip file (after %zu bytes: %s)", path, n, msg);
        free(b); gzclose(g);
        return s;
    }
    gzclose(g);
    *buf = b;
    *len = n;
    return ST_OK;
#else
    (void)buf; (void)len;
    return st_fail(ST_ERR_IO, "%s: this stride was built without zlib, so it cannot read .gz files (apt-get install "
                   "zlib1g-dev and rebuild, or gunzip the file)", path);
#endif
}

/* dir/name or dir/name.gz, whichever exists, into path */
static int find_maybe_gz(const char *dir, const char *name, char *path, size_t cap) {
    char gz[256];
    if (join(path, cap, dir, name) && is_file(path)) return 1;
    snprintf(gz, sizeof gz, "%s.gz", name);
    return join(path, cap, dir, gz) && is_file(path);
}

/* ---------------------------------------------------------------- IDX */
static st_status load_idx_pair(const char *dir, const char *prefix, st_dataset *out) {
    char ip[4096], lp[4096], iname[64], lname[64];
    snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", prefix);
    snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", prefix);
    if (!find_maybe_gz(dir, iname, ip, sizeof ip))
        return st_fail(ST_ERR_IO, "%s: no %s or %s.gz", dir, iname, iname);
    if (!find_maybe_gz(dir, lname, lp, sizeof lp))
        return st_fail(ST_ERR_IO, "%s: no %s or %s.gz", dir, lname, lname);
    unsigned char *b;
    size_t n;
    st_array x = {0}, y = {0};
    st_status s = read_file(ip, &b, &n);
    if (s) return s;
    s = st_idx_parse(b, n, ip, &x);
    free(b);
    if (!s && x.ndim != 3)
        s = st_fail(ST_ERR_FORMAT, "%s: an image file has 3 dimensions (N, rows, cols), this one %d", ip, x.ndim);
    if (!s && !(s = read_file(lp, &b, &n))) {
        s = st_idx_parse(b, n, lp, &y);
        free(b);
        if (!s && y.ndim != 1)
            s = st_fail(ST_ERR_FORMAT, "%s: a label file has 1 dimension (N), this one %d", lp, y.ndim);
    }
    if (!s) {
        x.ndim = 4; /* (N, H, W) -> (N, 1, H, W) */
        x.shape[3] = x.shape[2]; x.shape[2] = x.shape[1]; x.shape[1] = 1;
        s = st_dataset_from_arrays(&x, &y, ip, lp, out);
    }
    st_array_free(&x);
    st_array_free(&y);
    return s;
}

static st_status load_idx(const char *dir, st_dataset *train, st_dataset *test) {
    st_status s = load_idx_pair(dir, "train", train);
    if (!s) s = load_idx_pair(dir, "t10k", test);
    return s;
}

/* ---------------------------------------------------------------- CIFAR-10 */
static st_status load_cifar_file(const char *path, st_dataset *d) {
    unsigned char *b;
    size_t n;
    st_status s = read_file(path, &b, &n);
    if (s) return s;
    s = st_dataset_from_cifar10(b, n, path, d);
    free(b);
    return s;
}

static st_status load_cifar(const char *dir, st_dataset *train, st_dataset *test) {
    char p[4096];
    int found = 0;
    st_status s = ST_OK;
    for (int i = 1; i <= 5 && !s; i++) {
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i);
        if (!join(p, sizeof p, dir, name) || !is_file(p)) continue;
        found++;
        s = load_cifar_file(p, train);
    }
    if (!s && !found) s = st_fail(ST_ERR_IO, "%s: no data_batch_1.bin .. data_batch_5.bin", dir);
    if (!s) {
        s = join(p, sizeof p, dir, "test_batch.bin") && is_file(p) ? load_cifar_file(p, test) : st_fail(ST_ERR_IO, "%s: no test_batch.bin", dir);
    }
    return s;
}

/* ---------------------------------------------------------------- .npy */
static st_status load_npy_pair(const char *dir, const char *split, st_dataset *out) {
    char xp[4096], yp[4096];
    snprintf(xp, sizeof xp, "%s/%s_x.npy", dir, split);
    snprintf(yp, sizeof yp, "%s/%s_y.npy", dir, split);
    st_array x = {0}, y = {0};
    st_status s = st_npy_load(xp, &x);
    if (!s) s = st_npy_load(yp, &y);
    if (!s) s = st_dataset_from_arrays(&x, &y, xp, yp, out);
    st_array_free(&x);
    st_array_free(&y);
    return s;
}

/* ---------------------------------------------------------------- images */
typedef struct { unsigned char *px; int h, w, c; } image;

#ifdef ST_HAVE_PNG
/* channels: 0 = as stored (gray -> 1, colour -> 3), else 1 or 3 */
static st_status decode_png(const char *path, int channels, image *im) {
    png_image p;
    memset(&p, 0, sizeof p);
    p.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&p, path))
        return st_fail(ST_ERR_FORMAT, "%s: not a readable PNG: %s", path, p.message);
    if (!channels) channels = p.format & PNG_FORMAT_FLAG_COLOR ? 3 : 1;
    p.format = channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    im->h = (int)p.height; im->w = (int)p.width; im->c = channels;
    im->px = malloc(PNG_IMAGE_SIZE(p));
    if (!im->px) { png_image_free(&p); return st_fail(ST_ERR_NOMEM, "%s: out of memory", path); }
    if (!png_image_finish_read(&p, NULL, im->px, 0, NULL)) {
        free(im->px); im->px = NULL;
        return st_fail(ST_ERR_FORMAT, "%s: corrupt PNG: %s", path, p.message);
    }
    return ST_OK;
}
#endif

#ifdef ST_HAVE_JPEG
typedef struct { struct jpeg_error_mgr mgr; jmp_buf jump; char msg[JMSG_LENGTH_MAX]; } jpeg_err;
static void jpeg_on_error(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jump, 1);
}
static st_status decode_jpeg(const char *path, int want, image *im) {
    FILE *f = fopen(path, "rb");
    if (!f) return st_fail(ST_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct jpeg_decompress_struct j;
    jpeg_err e;
    j.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_on_error;
    e.mgr.output_message = jpeg_on_error; /* warnings (corrupt data) are errors too */
    unsigned char *volatile px = NULL;
    if (setjmp(e.jump)) {
        jpeg_destroy_decompress(&j);
        fclose(f);
        free((void *)px);
        im->px = NULL;
        return st_fail(ST_ERR_FORMAT, "%s: not a readable JPEG: %s", path, e.msg);
    }
    jpeg_create_decompress(&j);
    jpeg_stdio_src(&j, f);
    jpeg_read_header(&j, TRUE);
    int channels = want ? want : j.num_components == 1 ? 1 : 3;
    j.out_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(&j);
    im->h = (int)j.output_height; im->w = (int)j.output_width; im->c = channels;
    size_t row = (size_t)im->w * channels;
    px = malloc(row * im->h);
    if (!px) { jpeg_destroy_decompress(&j); fclose(f); return st_fail(ST_ERR_NOMEM, "%s: out of memory", path); }
    while (j.output_scanline < j.output_height) {
        JSAMPROW r = px + row * j.output_scanline;
        jpeg_read_scanlines(&j, &r, 1);
    }
    jpeg_finish_decompress(&j);
    jpeg_destroy_decompress(&j);
    fclose(f);
    im->px = px;
    return ST_OK;
}
#endif

static int is_png(const char *n) { return ends_with(n, ".png"); }
static int is_jpeg(const char *n) { return ends_with(n, ".jpg") || ends_with(n, ".jpeg"); }

static st_status decode_image(const char *path, int channels, image *im) {
    if (is_png(path)) {
#ifdef ST_HAVE_PNG
        return decode_png(path, channels, im);
#else
        (void)channels; (void)im;
        return st_fail(ST_ERR_IO, "%s: this stride was built without libpng (apt-get install libpng-dev and rebuild)", path);
#endif
    }
#ifdef ST_HAVE_JPEG
    return decode_jpeg(path, channels, im);
#else
    (void)channels; (void)im;
    return st_fail(ST_ERR_IO, "%s: this stride was built without libjpeg (apt-get install libjpeg-dev and rebuild)", path);
#endif
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct { int n, cap; char **v; } strlist;
static void strlist_free(strlist *l) { for (int i = 0; i < l->n; i++) free(l->v[i]); free(l->v); memset(l, 0, sizeof *l); }

/* Sorted entries of dir: sub-folders (dirs = 1) or image files (dirs = 0). Hidden names skipped. */
static st_status list_dir(const char *dir, int dirs, strlist *out) {
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return st_fail(ST_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (!join(p, sizeof p, dir, e->d_name)) continue;
        if (dirs ? !is_dir(p) : !(is_file(p) && (is_png(e->d_name) || is_jpeg(e->d_name)))) continue;
        if (out->n == out->cap) {
            out->cap = out->cap ? 2 * out->cap : 16;
            char **v = realloc(out->v, sizeof(char *) * out->cap);
            if (!v) { closedir(d); strlist_free(out); return st_fail(ST_ERR_NOMEM, "%s: out of memory", dir); }
            out->v = v;
        }
        out->v[out->n++] = st_strdup(e->d_name);
    }
    closedir(d);
    qsort(out->v, out->n, sizeof(char *), cmp_str);
    return ST_OK;
}

/* split/<class>/<image>, classes numbered by their place in `classes` (train's, sorted);
 * channels 0: 1 or 3 as the first image has them, then every image converted to that. */
static st_status load_image_split(const char *root, const char *split, const strlist *classes, int channels,
                                  st_dataset *out) {
    char dir[4096], p[4096], first[8192] = "";
    if (!join(dir, sizeof dir, root, split)) return st_fail(ST_ERR_IO, "%s: path too long", root);
    strlist sub;
    st_status s = list_dir(dir, 1, &sub);
    if (s) return s;
    if (!sub.n) { strlist_free(&sub); return st_fail(ST_ERR_IO, "%s: no class sub-folders", dir); }
    unsigned char *px = NULL;
    int32_t *lab = NULL;
    size_t n = 0, cap = 0;
    image ref = {0};
    for (int c = 0; c < sub.n && !s; c++) {
        int label = -1;
        for (int k = 0; k < classes->n; k++) if (!strcmp(classes->v[k], sub.v[c])) label = k;
        join(p, sizeof p, dir, sub.v[c]);
        if (label < 0) { s = st_fail(ST_ERR_FORMAT, "%s: class '%s' is not among the training classes", p, sub.v[c]); break; }
        strlist files;
        if ((s = list_dir(p, 0, &files))) break;
        for (int f = 0; f < files.n && !s; f++) {
            char fp[8192];
            join(fp, sizeof fp, p, files.v[f]);
            image im = {0};
            if ((s = decode_image(fp, ref.c ? ref.c : channels, &im))) break;
            if (!ref.c) { ref = im; memcpy(first, fp, sizeof first); }
            else if (im.h != ref.h || im.w != ref.w) {
                s = st_fail(ST_ERR_SHAPE, "%s: %dx%d pixels, but %s is %dx%d: all images must have one size", fp, im.w,
                            im.h, first, ref.w, ref.h);
                free(im.px);
                break;
            }
            size_t sz = (size_t)ref.h * ref.w * ref.c;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                unsigned char *np = realloc(px, cap * sz);
                int32_t *nl = realloc(lab, cap * sizeof(int32_t));
                if (np) px = np;
                if (nl) lab = nl;
                if (!np || !nl) { free(im.px); s = st_fail(ST_ERR_NOMEM, "%s: out of memory", fp); break; }
            }
            /* HWC -> CHW */
            for (int ch = 0; ch < ref.c; ch++)
                for (size_t i = 0; i < (size_t)ref.h * ref.w; i++) px[n * sz + ch * (size_t)ref.h * ref.w + i] = im.px[i * ref.c + ch];
            lab[n++] = label;
            if (im.px != ref.px) free(im.px);
        }
        strlist_free(&files);
    }
    free(ref.px);
    strlist_free(&sub);
    if (!s && !n) s = st_fail(ST_ERR_IO, "%s: no PNG or JPEG images in its class folders", dir);
    if (!s) {
        st_array x = {ST_U8, 4, {(int64_t)n, ref.c, ref.h, ref.w}, px};
        st_array y = {ST_I32, 1, {(int64_t)n}, lab};
        s = st_dataset_from_arrays(&x, &y, dir, dir, out);
        if (!s) out->classes = classes->n;
    }
    free(px);
    free(lab);
    return s;
}

static st_status load_images(const char *root, st_dataset *train, st_dataset *test) {
    char p[4096];
    join(p, sizeof p, root, "train");
    strlist classes;
    st_status s = list_dir(p, 1, &classes);
    if (s) return s;
    s = load_image_split(root, "train", &classes, 0, train);
    if (!s) s = load_image_split(root, "test", &classes, train->shape[0], test); /* test converted like train */
    strlist_free(&classes);
    return s;
}

/* ---------------------------------------------------------------- spec */
st_status cli_data_read(const char *spec, st_dataset *train, st_dataset *test, const char **format) {
    char dir[4096], p[4096];
    const char *fmt = "";
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    st_status s;
    if (!strcmp(spec, "fashion-mnist") || !strcmp(spec, "mnist")) {
        snprintf(dir, sizeof dir, "%s/%s", DEBIAN_DATASETS, spec);
        if (!find_maybe_gz(dir, "train-images-idx3-ubyte", p, sizeof p)) {
            if (!strcmp(spec, "mnist"))
                return st_fail(ST_ERR_NOTFOUND, "mnist: no %s/train-images-idx3-ubyte[.gz]: Debian does not package "
                               "MNIST; put the four IDX files (train-images-idx3-ubyte.gz, ...) in a folder and pass "
                               "that folder", dir);
            return st_fail(ST_ERR_NOTFOUND, "fashion-mnist: no %s/train-images-idx3-ubyte.gz: install Debian's package "
                           "with `apt-get install dataset-fashion-mnist` (or pass a folder holding the IDX files)", dir);
        }
        fmt = "IDX";
    } else {
        snprintf(dir, sizeof dir, "%s", spec);
        if (!is_dir(dir))
            return st_fail(ST_ERR_NOTFOUND, "%s: no such folder (and not 'fashion-mnist' or 'mnist')", spec);
        if (join(p, sizeof p, spec, "cifar-10-batches-bin") && is_dir(p)) /* the archive's own folder */
            memcpy(dir, p, sizeof dir);
        if (find_maybe_gz(dir, "train-images-idx3-ubyte", p, sizeof p)) fmt = "IDX";
        else if (join(p, sizeof p, dir, "data_batch_1.bin") && is_file(p)) fmt = "CIFAR-10";
        else if (join(p, sizeof p, dir, "train_x.npy") && is_file(p)) fmt = "npy";
        else if (join(p, sizeof p, dir, "train") && is_dir(p)) fmt = "images";
        else
            return st_fail(ST_ERR_NOTFOUND, "%s: no data set found: expected train-images-idx3-ubyte[.gz] and friends "
                           "(IDX), data_batch_1.bin .. test_batch.bin (CIFAR-10), train_x.npy/train_y.npy/test_x.npy/"
                           "test_y.npy, or train/ and test/ folders with one sub-folder of PNG/JPEG images per class", spec);
    }
    if (!strcmp(fmt, "IDX")) s = load_idx(dir, train, test);
    else if (!strcmp(fmt, "CIFAR-10")) s = load_cifar(dir, train, test);
    else if (!strcmp(fmt, "npy")) {
        s = load_npy_pair(dir, "train", train);
        if (!s) s = load_npy_pair(dir, "test", test);
    } else s = load_images(dir, train, test);
    if (!s && (train->ndim != test->ndim || memcmp(train->shape, test->shape, sizeof train->shape) ||
               train->kind != test->kind || train->tndim != test->tndim ||
               memcmp(train->tshape, test->tshape, sizeof train->tshape))) {
        char a[96], b[96];
        s = st_fail(ST_ERR_SHAPE, "%s: training samples are %s but test samples %s (or their targets differ)", spec,
                    st_shape_str(train->ndim, train->shape, a, sizeof a), st_shape_str(test->ndim, test->shape, b, sizeof b));
    }
    if (!s && train->classes < test->classes) train->classes = test->classes;
    if (!s) test->classes = train->classes;
    if (s) { st_dataset_free(train); st_dataset_free(test); }
    if (format) *format = fmt;
    return s;
}

/* cli_fail's message, kept here so that tests can link this file without stride.c */
static int data_fail(void) {
    fprintf(stderr, "stride: %s\n", st_errmsg());
    return 1;
}

int cli_load_data(const char *spec, st_dataset *train, st_dataset *test) {
    if (cli_data_read(spec, train, test, NULL)) return data_fail();
    return 0;
}

int cli_data_info(const char *spec) {
    st_dataset tr, te;
    const char *fmt;
    if (cli_data_read(spec, &tr, &te, &fmt)) return data_fail();
    char sh[96];
    static const char *kinds[] = {"class labels", "per-pixel class masks", "dense targets"};
    printf("%s (%s): %d train / %d test samples of shape %s, %s", spec, fmt, tr.n, te.n,
           st_shape_str(tr.ndim, tr.shape, sh, sizeof sh), kinds[tr.kind]);
    if (tr.kind != ST_TARGET_DENSE) printf(", %d classes\n", tr.classes);
    else printf(" %s\n", st_shape_str(tr.tndim, tr.tshape, sh, sizeof sh));
    double mean[64], std[64];
    if (tr.shape[0] <= 64) {
        st_dataset_channel_stats(&tr, mean, std);
        printf("train mean");
        for (int c = 0; c < tr.shape[0]; c++) printf(" %.5f", mean[c]);
        printf(", std");
        for (int c = 0; c < tr.shape[0]; c++) printf(" %.5f", std[c]);
        printf("\n");
    }
    if (tr.kind == ST_TARGET_CLASS) {
        printf("first train labels");
        for (int i = 0; i < tr.n && i < 10; i++) printf(" %d", tr.labels[i]);
        printf("\n");
    }
    st_dataset_free(&tr);
    st_dataset_free(&te);
    return 0;
}
