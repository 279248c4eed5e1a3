/* test_dataset.c - data sets, augmentation and the batch loader.
 *   - the real Fashion-MNIST files of Debian's dataset-fashion-mnist (CI installs it: a
 *     missing package is a failure): sizes, first labels, class counts, mean and std;
 *   - IDX, CIFAR-10, .npy and PNG/JPEG folders written here, and corrupt copies of them:
 *     each error must name the file and the problem;
 *   - augmentation: hand-checked shifts, flip twice = identity, crop with pad 0 = identity,
 *     masks and heatmaps move with their image, seeds repeat and differ;
 *   - the loader: every sample once per epoch, seek replays a run bit for bit, threaded
 *     batches equal batches built on the caller's thread; all of it with the prefetch
 *     thread and with small-batch building in st_loader_next.
 * It prints the loader's throughput on Fashion-MNIST (batch 64, crop + flip). */
#include "stride.h"
#include "internal.h"
#include "test.h"
#include "../tools/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef ST_HAVE_ZLIB
#include <zlib.h>
#endif
#ifdef ST_HAVE_PNG
#include <png.h>
#endif
#ifdef ST_HAVE_JPEG
#include <jpeglib.h>
#endif

static char tmp[256];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int has(const char *s, const char *part) { return strstr(s, part) != NULL; }

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) { CHECK(0, "cannot write %s", path); return; }
    fwrite(b, 1, n, f);
    fclose(f);
}

static void put32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

/* An IDX u8 image file of n (h, w) images (pixel = (i*7 + k) % 256) and its labels (i % 10). */
static size_t idx_images(unsigned char *b, int n, int h, int w) {
    put32(b, 0x803); put32(b + 4, n); put32(b + 8, h); put32(b + 12, w);
    for (int i = 0; i < n * h * w; i++) b[16 + i] = (unsigned char)((i / (h * w)) * 7 + i % (h * w));
    return 16 + (size_t)n * h * w;
}
static size_t idx_labels(unsigned char *b, int n) {
    put32(b, 0x801); put32(b + 4, n);
    for (int i = 0; i < n; i++) b[8 + i] = (unsigned char)(i % 10);
    return 8 + (size_t)n;
}

/* ---------------------------------------------------------------- real Fashion-MNIST */
static void test_fashion_mnist(st_dataset *train_out) {
    st_dataset tr, te;
    const char *fmt;
    if (cli_data_read("fashion-mnist", &tr, &te, &fmt)) {
        CHECK(0, "Fashion-MNIST is needed (apt-get install dataset-fashion-mnist): %s", st_errmsg());
        return;
    }
    CHECK(!strcmp(fmt, "IDX"), "format %s", fmt);
    CHECK(tr.n == 60000 && te.n == 10000, "sizes %d / %d", tr.n, te.n);
    CHECK(tr.ndim == 3 && tr.shape[0] == 1 && tr.shape[1] == 28 && tr.shape[2] == 28, "shape (%d, %d, %d)",
          tr.shape[0], tr.shape[1], tr.shape[2]);
    CHECK(tr.kind == ST_TARGET_CLASS && tr.classes == 10 && te.classes == 10, "kind %d classes %d", tr.kind, tr.classes);
    const int first_train[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, first_test[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    int same = 1;
    for (int i = 0; i < 10; i++) same &= tr.labels[i] == first_train[i] && te.labels[i] == first_test[i];
    CHECK(same, "first labels train %d %d %d ... test %d %d %d ...", tr.labels[0], tr.labels[1], tr.labels[2],
          te.labels[0], te.labels[1], te.labels[2]);
    int count[10] = {0}, tcount[10] = {0}, balanced = 1;
    for (int i = 0; i < tr.n; i++) count[tr.labels[i]]++;
    for (int i = 0; i < te.n; i++) tcount[te.labels[i]]++;
    for (int c = 0; c < 10; c++) balanced &= count[c] == 6000 && tcount[c] == 1000;
    CHECK(balanced, "per-class counts train %d.. test %d..", count[0], tcount[0]);
    double mean, std;
    st_dataset_channel_stats(&tr, &mean, &std);
    CHECK(fabs(mean - 0.28604) < 5e-6 && fabs(std - 0.35302) < 5e-6, "train mean %.6f std %.6f", mean, std);
    float lo = 1, hi = 0;
    for (size_t i = 0; i < (size_t)tr.n * 784; i++) { if (tr.x[i] < lo) lo = tr.x[i]; if (tr.x[i] > hi) hi = tr.x[i]; }
    CHECK(lo == 0 && hi == 1, "pixels in [%g, %g], expected [0, 1]", lo, hi);
    st_dataset_free(&te);
    *train_out = tr;
}

/* images/s of a loader on Fashion-MNIST, batch 64, crop 4 + flip, and its wait share when
 * the consumer works (a spin of about the time PyTorch needs for lenet5 on a batch) */
static void loader_throughput(const st_dataset *tr) {
    st_augment aug = {.crop_pad = 4, .hflip = 1};
    st_loader *l;
    if (st_loader_new(tr, 64, 1, 1, &aug, 7, &l)) { CHECK(0, "loader: %s", st_errmsg()); return; }
    int64_t nb = st_loader_batches_per_epoch(l);
    double t0 = now();
    const st_tensor *x;
    double sum = 0;
    for (int64_t b = 0; b < nb; b++) { st_loader_next(l, &x, NULL, NULL); sum += x->data[0]; }
    double dt = now() - t0, w = st_loader_wait_seconds(l);
    printf("loader: Fashion-MNIST batch 64 crop 4 + flip: %.0f images/s with a consumer that does nothing "
           "(%.2f s waiting of %.2f s)\n", nb * 64 / dt, w, dt);
    /* a consumer busy about 3.4 ms per batch (19,000 images/s, PyTorch's lenet5 speed) */
    double w0 = st_loader_wait_seconds(l);
    t0 = now();
    for (int b = 0; b < 100; b++) {
        st_loader_next(l, &x, NULL, NULL);
        double until = now() + 64.0 / 19000;
        while (now() < until) sum += x->data[1];
    }
    dt = now() - t0;
    w = st_loader_wait_seconds(l) - w0;
    printf("loader: with a 19,000 images/s consumer it waited %.4f s of %.2f s (%.2f%%)\n", w, dt, 100 * w / dt);
    CHECK(sum == sum, "sum");
    st_loader_free(l);
}

/* ---------------------------------------------------------------- IDX files */
static int expect_error(const char *spec, const char *a, const char *b, const char *what) {
    st_dataset tr, te;
    if (!cli_data_read(spec, &tr, &te, NULL)) {
        st_dataset_free(&tr); st_dataset_free(&te);
        CHECK(0, "%s: expected an error", what);
        return 0;
    }
    const char *m = st_errmsg();
    CHECK(has(m, a) && has(m, b), "%s: message lacks '%s' or '%s': %s", what, a, b, m);
    return 1;
}

static void write_idx_set(const char *dir, int n_train, int n_test, int gz) {
    static unsigned char b[16 + 64 * 16];
    char p[512];
    mkdir(dir, 0777);
    const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    for (int f = 0; f < 4; f++) {
        int n = f < 2 ? n_train : n_test;
        size_t len = f % 2 ? idx_labels(b, n) : idx_images(b, n, 4, 4);
        snprintf(p, sizeof p, "%s/%s%s", dir, names[f], gz ? ".gz" : "");
        unlink(p);
#ifdef ST_HAVE_ZLIB
        if (gz) {
            gzFile g = gzopen(p, "wb");
            gzwrite(g, b, (unsigned)len);
            gzclose(g);
            continue;
        }
#endif
        write_bytes(p, b, len);
    }
}

static void test_idx(void) {
    char d[512], p[600];
    unsigned char b[16 + 64 * 16];
    /* a good folder: plain and gzip read the same */
#ifdef ST_HAVE_ZLIB
    const int formats = 2;
#else
    const int formats = 1;
#endif
    for (int gz = 0; gz < formats; gz++) {
        snprintf(d, sizeof d, "%s/idx%d", tmp, gz);
        write_idx_set(d, 12, 5, gz);
        st_dataset tr, te;
        if (cli_data_read(d, &tr, &te, NULL)) { CHECK(0, "idx gz=%d: %s", gz, st_errmsg()); continue; }
        CHECK(tr.n == 12 && te.n == 5 && tr.shape[1] == 4 && tr.shape[2] == 4 && tr.classes == 10, "idx sizes");
        CHECK(tr.labels[11] == 1 && fabsf(tr.x[3 * 16 + 5] - (3 * 7 + 5) / 255.0f) < 1e-7f, "idx values %d %g",
              tr.labels[11], tr.x[3 * 16 + 5]);
        st_dataset_free(&tr); st_dataset_free(&te);
    }
    /* corrupt copies, each error naming the file and the problem */
    snprintf(d, sizeof d, "%s/bad", tmp);
    write_idx_set(d, 12, 5, 0);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte", d);
    size_t len = idx_images(b, 12, 4, 4);
    write_bytes(p, b, len - 1);
    expect_error(d, "train-images-idx3-ubyte", "truncated", "truncated images");
    b[2] = 0x07;
    write_bytes(p, b, len);
    expect_error(d, "train-images-idx3-ubyte", "magic", "wrong magic");
    idx_images(b, 12, 4, 4);
    b[0] = 0x1f;
    write_bytes(p, b, len);
    expect_error(d, "train-images-idx3-ubyte", "not an IDX file", "non-zero magic bytes");
    idx_images(b, 12, 4, 4);
    put32(b + 4, 11);   /* the header says 11 images, the file holds 12 */
    write_bytes(p, b, len);
    expect_error(d, "train-images-idx3-ubyte", "wrong counts", "wrong count");
    put32(b + 4, 13);
    write_bytes(p, b, len);
    expect_error(d, "train-images-idx3-ubyte", "truncated", "count larger than the data");
    write_bytes(p, b, idx_images(b, 11, 4, 4)); /* 11 images, 12 labels */
    expect_error(d, "train-images-idx3-ubyte has 11 samples", "train-labels-idx1-ubyte has 12", "count mismatch");
    write_bytes(p, b, idx_labels(b, 12));       /* a label file where the images should be */
    expect_error(d, "train-images-idx3-ubyte", "3 dimensions", "labels given as images");
    unlink(p);
    expect_error(d, "train-images-idx3-ubyte", "no ", "missing file");
#ifdef ST_HAVE_ZLIB
    snprintf(d, sizeof d, "%s/badgz", tmp);
    write_idx_set(d, 64, 5, 1);
    snprintf(p, sizeof p, "%s/train-images-idx3-ubyte.gz", d);
    FILE *f = fopen(p, "rb");
    unsigned char gzb[4096];
    size_t gl = f ? fread(gzb, 1, sizeof gzb, f) : 0;
    if (f) fclose(f);
    write_bytes(p, gzb, gl / 2);
    expect_error(d, "train-images-idx3-ubyte.gz", "gzip", "truncated gzip");
#endif
    expect_error(tmp, tmp, "no data set found", "empty folder");
    expect_error("/no/such/folder", "/no/such/folder", "no such folder", "missing folder");

    /* the other element types, big-endian: int16 and float32 */
    unsigned char e[8 + 3 * 4] = {0, 0, 0x0B, 1, 0, 0, 0, 3, 0xff, 0xfe, 0x01, 0x02, 0x00, 0x05};
    st_array a;
    CHECK(!st_idx_parse(e, 14, "i16", &a) && a.dtype == ST_I32 && ((int32_t *)a.data)[0] == -2 &&
          ((int32_t *)a.data)[1] == 258 && ((int32_t *)a.data)[2] == 5, "int16 IDX: %s", st_errmsg());
    st_array_free(&a);
    unsigned char g[12] = {0, 0, 0x0D, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0};
    CHECK(!st_idx_parse(g, 12, "f32", &a) && a.dtype == ST_F32 && ((float *)a.data)[0] == 1.5f, "float IDX");
    st_array_free(&a);
    CHECK(st_idx_parse(g, 3, "short.idx", &a) == ST_ERR_FORMAT && has(st_errmsg(), "short.idx"), "3 bytes");
    /* the library's own pair parser names images and labels */
    size_t il = idx_images(b, 3, 4, 4);
    unsigned char lb[16];
    size_t ll = idx_labels(lb, 2);
    st_dataset ds;
    CHECK(st_dataset_from_idx(b, il, lb, ll, "pair", &ds) == ST_ERR_SHAPE && has(st_errmsg(), "pair (images) has 3") &&
          has(st_errmsg(), "pair (labels) has 2"), "from_idx count mismatch: %s", st_errmsg());
    ll = idx_labels(lb, 3);
    CHECK(!st_dataset_from_idx(b, il, lb, ll, "pair", &ds) && ds.n == 3 && ds.ndim == 3 && ds.shape[0] == 1,
          "from_idx: %s", st_errmsg());
    st_dataset_free(&ds);
}

/* ---------------------------------------------------------------- CIFAR-10 */
static void test_cifar(void) {
    enum { R = 3073 };
    static unsigned char b[4 * R];
    for (int i = 0; i < 4; i++) {
        b[i * R] = (unsigned char)(i * 3);
        for (int k = 0; k < 3072; k++) b[i * R + 1 + k] = (unsigned char)(k / 1024 * 100 + i);
    }
    st_dataset d = {0};
    CHECK(!st_dataset_from_cifar10(b, 3 * R, "b1", &d) && d.n == 3, "cifar: %s", st_errmsg());
    CHECK(!st_dataset_from_cifar10(b + 3 * R, R, "b2", &d) && d.n == 4, "cifar append: %s", st_errmsg());
    CHECK(d.ndim == 3 && d.shape[0] == 3 && d.shape[1] == 32 && d.classes == 10 && d.labels[3] == 9 && d.labels[1] == 3,
          "cifar shape/labels");
    /* sample 3, green plane (channel 1), pixel (2, 5): 100 + 3 */
    CHECK(fabsf(d.x[3 * 3072 + 1024 + 2 * 32 + 5] - 103 / 255.0f) < 1e-7f, "cifar CHW pixel %g",
          d.x[3 * 3072 + 1024 + 2 * 32 + 5]);
    st_dataset_free(&d);
    CHECK(st_dataset_from_cifar10(b, 2 * R + 5, "b.bin", &d) == ST_ERR_FORMAT && has(st_errmsg(), "b.bin") &&
              has(st_errmsg(), "2 records and 5 bytes over"), "cifar length: %s", st_errmsg());
    b[R] = 11;
    CHECK(st_dataset_from_cifar10(b, 2 * R, "b.bin", &d) == ST_ERR_FORMAT && has(st_errmsg(), "record 1") &&
              has(st_errmsg(), "label 11"), "cifar label: %s", st_errmsg());
    b[R] = 3;
    /* a folder */
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/cifar", tmp);
    mkdir(dir, 0777);
    snprintf(p, sizeof p, "%s/data_batch_1.bin", dir); write_bytes(p, b, 2 * R);
    snprintf(p, sizeof p, "%s/data_batch_2.bin", dir); write_bytes(p, b + 2 * R, 2 * R);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir); write_bytes(p, b, R);
    st_dataset tr, te;
    const char *fmt = "";
    CHECK(!cli_data_read(dir, &tr, &te, &fmt) && !strcmp(fmt, "CIFAR-10") && tr.n == 4 && te.n == 1 && tr.labels[2] == 6,
          "cifar folder: %s", st_errmsg());
    st_dataset_free(&tr); st_dataset_free(&te);
    snprintf(p, sizeof p, "%s/test_batch.bin", dir); write_bytes(p, b, R - 1);
    expect_error(dir, "test_batch.bin", "whole number of CIFAR-10 records", "cifar truncated");
}

/* ---------------------------------------------------------------- .npy */
static void test_npy(void) {
    char dir[512], p[600];
    snprintf(dir, sizeof dir, "%s/npy", tmp);
    mkdir(dir, 0777);
    /* segmentation: x (3, 1, 2, 4) float, y (3, 2, 4) int32 -> MASK */
    float x[24];
    int32_t y[24];
    for (int i = 0; i < 24; i++) { x[i] = (float)i; y[i] = i % 3; }
    const char *split[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        st_array ax = {ST_F32, 4, {3, 1, 2, 4}, x}, ay = {ST_I32, 3, {3, 2, 4}, y};
        snprintf(p, sizeof p, "%s/%s_x.npy", dir, split[s]); st_npy_save(p, &ax);
        snprintf(p, sizeof p, "%s/%s_y.npy", dir, split[s]); st_npy_save(p, &ay);
    }
    st_dataset tr, te;
    CHECK(!cli_data_read(dir, &tr, &te, NULL) && tr.kind == ST_TARGET_MASK && tr.classes == 3 && tr.n == 3 &&
          tr.labels[23] == 2 && tr.x[23] == 23, "npy masks: %s", st_errmsg());
    st_dataset_free(&tr); st_dataset_free(&te);
    st_array ay = {ST_I32, 1, {2}, y};
    snprintf(p, sizeof p, "%s/test_y.npy", dir); st_npy_save(p, &ay);
    expect_error(dir, "test_x.npy has 3 samples", "test_y.npy has 2", "npy count mismatch");
    /* dense targets from floats */
    st_array ax = {ST_F32, 3, {3, 2, 4}, x}, at = {ST_F32, 3, {3, 2, 4}, x};
    st_dataset d;
    CHECK(!st_dataset_from_arrays(&ax, &at, "x", "t", &d) && d.kind == ST_TARGET_DENSE && d.ndim == 2 && d.tndim == 2,
          "dense: %s", st_errmsg());
    st_dataset_free(&d);
    int32_t neg[3] = {0, -1, 2};
    st_array an = {ST_I32, 1, {3}, neg};
    CHECK(st_dataset_from_arrays(&ax, &an, "x", "y.npy", &d) && has(st_errmsg(), "y.npy: label -1 of sample 1"),
          "negative label: %s", st_errmsg());
}

/* ---------------------------------------------------------------- image folders */
#ifdef ST_HAVE_PNG
static void write_png(const char *path, int w, int h, int color, int value) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = w; im.height = h;
    im.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
    unsigned char px[3 * 64 * 64];
    int c = color ? 3 : 1;
    for (int i = 0; i < w * h * c; i++) px[i] = (unsigned char)(value + (i / c) + 10 * (i % c));
    CHECK(png_image_write_to_file(&im, path, 0, px, 0, NULL), "writing %s", path);
}
#endif
#ifdef ST_HAVE_JPEG
static void write_jpeg(const char *path, int w, int h, int value) {
    FILE *f = fopen(path, "wb");
    struct jpeg_compress_struct j;
    struct jpeg_error_mgr e;
    j.err = jpeg_std_error(&e);
    jpeg_create_compress(&j);
    jpeg_stdio_dest(&j, f);
    j.image_width = w; j.image_height = h; j.input_components = 1; j.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&j);
    jpeg_set_quality(&j, 100, TRUE);
    jpeg_start_compress(&j, TRUE);
    unsigned char row[64];
    memset(row, value, sizeof row);
    while (j.next_scanline < j.image_height) { JSAMPROW r = row; jpeg_write_scanlines(&j, &r, 1); }
    jpeg_finish_compress(&j);
    jpeg_destroy_compress(&j);
    fclose(f);
}
#endif

static void test_images(void) {
#if defined(ST_HAVE_PNG) && defined(ST_HAVE_JPEG)
    char root[512], p[700];
    snprintf(root, sizeof root, "%s/img", tmp);
    const char *dirs[] = {"", "/train", "/train/dog", "/train/cat", "/test", "/test/cat", "/test/dog"};
    for (int i = 0; i < 7; i++) { snprintf(p, sizeof p, "%s%s", root, dirs[i]); mkdir(p, 0777); }
    snprintf(p, sizeof p, "%s/train/cat/b.png", root); write_png(p, 6, 5, 0, 40);
    snprintf(p, sizeof p, "%s/train/cat/a.png", root); write_png(p, 6, 5, 0, 20);
    snprintf(p, sizeof p, "%s/train/dog/x.jpg", root); write_jpeg(p, 6, 5, 200);
    snprintf(p, sizeof p, "%s/train/dog/notes.txt", root); write_bytes(p, "x", 1);
    snprintf(p, sizeof p, "%s/test/cat/c.png", root); write_png(p, 6, 5, 0, 0);
    snprintf(p, sizeof p, "%s/test/dog/d.jpeg", root); write_jpeg(p, 6, 5, 100);
    st_dataset tr, te;
    const char *fmt = "";
    if (cli_data_read(root, &tr, &te, &fmt)) { CHECK(0, "image folder: %s", st_errmsg()); return; }
    CHECK(!strcmp(fmt, "images") && tr.n == 3 && te.n == 2 && tr.classes == 2 && tr.ndim == 3 && tr.shape[0] == 1 &&
          tr.shape[1] == 5 && tr.shape[2] == 6, "image folder: %s n %d/%d shape (%d, %d, %d)", fmt, tr.n, te.n,
          tr.shape[0], tr.shape[1], tr.shape[2]);
    /* sorted: cat (a.png, b.png) = 0, dog = 1 */
    CHECK(tr.labels[0] == 0 && tr.labels[1] == 0 && tr.labels[2] == 1 && te.labels[0] == 0 && te.labels[1] == 1,
          "image labels %d %d %d", tr.labels[0], tr.labels[1], tr.labels[2]);
    CHECK(fabsf(tr.x[7] - (20 + 7) / 255.0f) < 1e-7f && fabsf(tr.x[30 + 7] - (40 + 7) / 255.0f) < 1e-7f,
          "PNG pixels %g %g", tr.x[7], tr.x[37]);
    CHECK(fabsf(tr.x[60 + 13] - 200 / 255.0f) <= 1.5f / 255 && fabsf(te.x[30] - 100 / 255.0f) <= 1.5f / 255,
          "JPEG pixels %g %g", tr.x[73] * 255, te.x[30] * 255);
    st_dataset_free(&tr); st_dataset_free(&te);
    /* colour: all images become RGB when the first is */
    snprintf(p, sizeof p, "%s/train/cat/a.png", root); write_png(p, 6, 5, 1, 20);
    if (!cli_data_read(root, &tr, &te, NULL)) {
        CHECK(tr.shape[0] == 3 && fabsf(tr.x[30 + 4] - (20 + 4 + 10) / 255.0f) < 1e-7f, "RGB: %d channels, G %g",
              tr.shape[0], tr.x[34] * 255);
        st_dataset_free(&tr); st_dataset_free(&te);
    } else CHECK(0, "RGB folder: %s", st_errmsg());
    snprintf(p, sizeof p, "%s/train/cat/b.png", root); write_png(p, 7, 5, 0, 40);
    expect_error(root, "b.png: 7x5 pixels", "a.png is 6x5", "image size mismatch");
    write_bytes(p, "\x89PNG\r\n\x1a\n garbage", 17);
    expect_error(root, "b.png", "PNG", "corrupt PNG");
    snprintf(p, sizeof p, "%s/train/cat/b.png", root); write_png(p, 6, 5, 0, 40);
    snprintf(p, sizeof p, "%s/test/bird", root); mkdir(p, 0777);
    snprintf(p, sizeof p, "%s/test/bird/e.png", root); write_png(p, 6, 5, 0, 40);
    expect_error(root, "bird", "not among the training classes", "unknown test class");
#else
    printf("image folders: not tested (built without libpng or libjpeg)\n");
#endif
}

/* ---------------------------------------------------------------- augmentation */
static void test_augment(void) {
    /* hand-checked: a crop offset of +1 column moves content right, zero enters at the left */
    float in[2 * 3 * 4], out[24], back[24];
    for (int i = 0; i < 24; i++) in[i] = (float)(i + 1);
    int shape[3] = {2, 3, 4};
    st_augment_params p = {0};
    p.crop_dx = 1;
    st_augment_apply(&p, 3, shape, in, out);
    CHECK(out[0] == 0 && out[1] == in[0] && out[3] == in[2] && out[12 + 4] == 0 && out[12 + 5] == in[12 + 4],
          "crop dx=1: %g %g %g", out[0], out[1], out[3]);
    p = (st_augment_params){0};
    p.shift_dy = -1;
    st_augment_apply(&p, 3, shape, in, out);
    CHECK(out[0] == in[4] && out[8] == 0 && out[11] == 0, "translate dy=-1");
    p = (st_augment_params){0};
    p.flip = 1;
    st_augment_apply(&p, 3, shape, in, out);
    CHECK(out[0] == in[3] && out[3] == in[0] && out[12 + 5] == in[12 + 6], "flip");
    st_augment_apply(&p, 3, shape, out, back);
    CHECK(!memcmp(back, in, sizeof in), "flip twice is the identity");
    /* 1D: roll by 1 along L */
    int s1[2] = {2, 12};
    p = (st_augment_params){0};
    p.roll = 1;
    st_augment_apply(&p, 2, s1, in, out);
    CHECK(out[0] == in[11] && out[1] == in[0] && out[12] == in[23], "roll 1");
    p.roll = -1;
    st_augment_apply(&p, 2, s1, out, back);
    CHECK(!memcmp(back, in, sizeof in), "roll +1 then -1 is the identity");
    /* draws: pad 0 and no flip draw the identity; ranges hold; seeds repeat */
    st_augment a0 = {0}, a = {.crop_pad = 2, .hflip = 1, .translate = 3, .circular_shift = 0};
    st_rng r, r2;
    st_rng_seed(&r, 1);
    int ok = 1, seen_flip = 0, seen_lo = 0, seen_hi = 0;
    for (int i = 0; i < 2000; i++) {
        st_augment_draw(&a0, 2, &r, &p);
        ok &= !p.crop_dx && !p.crop_dy && !p.flip && !p.shift_dx && !p.roll;
        st_augment_draw(&a, 2, &r, &p);
        ok &= abs(p.crop_dx) <= 2 && abs(p.crop_dy) <= 2 && abs(p.shift_dx) <= 3 && abs(p.shift_dy) <= 3;
        seen_flip += p.flip; seen_lo |= p.crop_dx == -2; seen_hi |= p.shift_dy == 3;
    }
    CHECK(ok && seen_flip > 900 && seen_flip < 1100 && seen_lo && seen_hi, "draw ranges (flips %d of 2000)", seen_flip);
    st_rng_seed(&r, 5); st_rng_seed(&r2, 5);
    st_augment_params q;
    st_augment_draw(&a, 2, &r, &p); st_augment_draw(&a, 2, &r2, &q);
    CHECK(!memcmp(&p, &q, sizeof p), "same seed, same draw");
    /* labels follow the same maps */
    int32_t m[12], mo[12];
    for (int i = 0; i < 12; i++) m[i] = i + 1;
    p = (st_augment_params){.crop_dx = 1, .shift_dy = 1, .flip = 1};
    st_augment_apply_labels(&p, 3, 4, m, mo, -7);
    float fm[12], fo[12];
    for (int i = 0; i < 12; i++) fm[i] = (float)m[i];
    int s2[3] = {1, 3, 4};
    st_augment_apply(&p, 3, s2, fm, fo);
    ok = 1;
    for (int i = 0; i < 12; i++) ok &= fo[i] == 0 ? mo[i] == -7 : mo[i] == (int)fo[i];
    CHECK(ok && mo[0] == -7, "mask map equals image map");
}

/* A MASK data set whose mask is (pixel > 0.5) and a DENSE one whose target is the image
 * itself times 2: after any augmentation both must still hold pixel by pixel. */
static void test_targets_move(void) {
    enum { N = 20, H = 9, W = 11 };
    float x[N * H * W], t[N * H * W];
    int32_t y[N * H * W];
    st_rng r;
    st_rng_seed(&r, 3);
    for (int i = 0; i < N * H * W; i++) {
        x[i] = (float)st_rng_uniform(&r) + 0.01f;
        y[i] = x[i] > 0.5f ? 2 : 1;
        t[i] = 2 * x[i];
    }
    st_array ax = {ST_F32, 4, {N, 1, H, W}, x}, ay = {ST_I32, 3, {N, H, W}, y}, at = {ST_F32, 4, {N, 1, H, W}, t};
    st_dataset dm, dd;
    if (st_dataset_from_arrays(&ax, &ay, "x", "y", &dm) || st_dataset_from_arrays(&ax, &at, "x", "t", &dd)) {
        CHECK(0, "arrays: %s", st_errmsg());
        return;
    }
    st_augment aug = {.crop_pad = 3, .hflip = 1, .translate = 2};
    st_loader *lm, *ld;
    if (st_loader_new(&dm, 6, 1, 0, &aug, 11, &lm) || st_loader_new(&dd, 6, 1, 0, &aug, 11, &ld)) {
        CHECK(0, "loader: %s", st_errmsg());
        return;
    }
    int ok = 1, changed = 0, zeros = 0;
    for (int b = 0; b < 8; b++) {
        const st_tensor *xm, *xd, *td;
        const int32_t *lab, *nolab;
        st_loader_next(lm, &xm, &lab, NULL);
        st_loader_next(ld, &xd, &nolab, &td);
        ok &= nolab == NULL && xm->shape[0] == xd->shape[0] && td->shape[0] == xd->shape[0];
        for (int i = 0; i < xm->shape[0] * H * W; i++) {
            float v = xm->data[i];
            ok &= v == 0 ? lab[i] == 0 : lab[i] == (v > 0.5f ? 2 : 1);
            ok &= xd->data[i] == v && td->data[i] == 2 * v;
            zeros += v == 0;
        }
        changed |= memcmp(xm->data, x, sizeof(float) * H * W) != 0;
    }
    CHECK(ok && zeros > 0 && changed, "masks and targets move with their images (zero-filled pixels %d)", zeros);
    st_loader_free(lm);
    st_loader_free(ld);
    /* targets of another spatial size cannot follow the image */
    st_array as = {ST_F32, 4, {N, 1, 3, 3}, t};
    st_dataset ds;
    st_loader *l;
    if (!st_dataset_from_arrays(&ax, &as, "x", "t", &ds)) {
        CHECK(st_loader_new(&ds, 4, 1, 0, &aug, 1, &l) == ST_ERR_SHAPE && has(st_errmsg(), "(1, 3, 3)"),
              "mismatched heatmaps: %s", st_errmsg());
        CHECK(!st_loader_new(&ds, 4, 1, 0, NULL, 1, &l), "no augmentation, any target: %s", st_errmsg());
        st_loader_free(l);
        st_dataset_free(&ds);
    }
    st_dataset_free(&dm);
    st_dataset_free(&dd);
}

/* ---------------------------------------------------------------- loader */
/* n samples (1, 2, 3); sample i holds i in every value and label i */
static st_dataset counting(int n) {
    float *x = malloc(sizeof(float) * n * 6);
    int32_t *y = malloc(sizeof(int32_t) * n);
    for (int i = 0; i < n; i++) { y[i] = i; for (int k = 0; k < 6; k++) x[i * 6 + k] = (float)i + 0.125f * k; }
    st_array ax = {ST_F32, 4, {n, 1, 2, 3}, x}, ay = {ST_I32, 1, {n}, y};
    st_dataset d;
    CHECK(!st_dataset_from_arrays(&ax, &ay, "x", "y", &d), "counting: %s", st_errmsg());
    free(x);
    free(y);
    return d;
}

/* Records `count` batches (x and labels) of a fresh loader seeked to (e, b). */
static float *record(const st_dataset *d, int batch, int drop, const st_augment *aug, uint64_t seed, int64_t e,
                     int64_t b, int count, int32_t **labels, int slow) {
    st_loader *l;
    if (st_loader_new(d, batch, 1, drop, aug, seed, &l)) { CHECK(0, "loader: %s", st_errmsg()); return NULL; }
    if (e || b) st_loader_seek(l, e, b);
    size_t per = (size_t)batch * 6;
    float *xs = calloc(per * count, sizeof(float));
    *labels = calloc((size_t)batch * count, sizeof(int32_t));
    for (int i = 0; i < count; i++) {
        const st_tensor *x;
        const int32_t *y;
        if (slow) nanosleep(&(struct timespec){0, 500000}, NULL);
        st_loader_next(l, &x, &y, NULL);
        memcpy(xs + i * per, x->data, sizeof(float) * x->shape[0] * 6);
        memcpy(*labels + i * batch, y, sizeof(int32_t) * x->shape[0]);
    }
    st_loader_free(l);
    return xs;
}

static void test_loader(void) {
    enum { N = 103, B = 10 };
    st_dataset d = counting(N);
    st_loader *l;
    if (st_loader_new(&d, B, 1, 0, NULL, 42, &l)) { CHECK(0, "loader: %s", st_errmsg()); return; }
    CHECK(st_loader_batches_per_epoch(l) == 11, "batches per epoch %lld", (long long)st_loader_batches_per_epoch(l));
    int first_order[N], ok = 1, differs = 0;
    for (int e = 0; e < 3; e++) {
        int seen[N] = {0}, k = 0, in_order = 1;
        for (int b = 0; b < 11; b++) {
            const st_tensor *x;
            const int32_t *y;
            const st_tensor *t = (const st_tensor *)1;
            st_loader_next(l, &x, &y, &t);
            ok &= x->shape[0] == (b < 10 ? B : 3) && t == NULL && x->ndim == 4 && x->shape[3] == 3;
            for (int i = 0; i < x->shape[0]; i++, k++) {
                ok &= y[i] >= 0 && y[i] < N && x->data[i * 6 + 5] == y[i] + 0.625f;
                if (y[i] >= 0 && y[i] < N) seen[y[i]]++;
                if (e == 0) first_order[k] = y[i];
                else differs |= first_order[k] != y[i];
                in_order &= y[i] == k;
            }
        }
        for (int i = 0; i < N; i++) ok &= seen[i] == 1;
        CHECK(!in_order, "epoch %d is shuffled", e);
    }
    CHECK(ok, "every sample exactly once per epoch, last batch of 3, x matches its label");
    CHECK(differs, "epochs have different orders");
    st_loader_free(l);
    /* drop_last and no shuffle */
    if (!st_loader_new(&d, B, 0, 1, NULL, 42, &l)) {
        const st_tensor *x;
        const int32_t *y;
        CHECK(st_loader_batches_per_epoch(l) == 10, "drop_last: 10 batches");
        ok = 1;
        for (int b = 0; b < 21; b++) {
            st_loader_next(l, &x, &y, NULL);
            for (int i = 0; i < x->shape[0]; i++) ok &= y[i] == (b % 10) * B + i && x->shape[0] == B;
        }
        CHECK(ok, "no shuffle: the data set's order, epoch after epoch");
        st_loader_free(l);
    }
    /* seek: a run straight through vs fresh loaders seeked into it, with augmentation */
    st_augment aug = {.crop_pad = 1, .hflip = 1, .translate = 1};
    int32_t *ly = NULL, *ly2 = NULL, *ly3 = NULL;
    float *all = record(&d, B, 0, &aug, 9, 0, 0, 30, &ly, 0);
    float *from = record(&d, B, 0, &aug, 9, 1, 4, 15, &ly2, 1); /* batch 15 of the run, a slow consumer */
    float *late = record(&d, B, 0, &aug, 9, 0, 26, 4, &ly3, 0);  /* (0, 26) is (2, 4): batch 26 */
    if (all && from && late) {
        CHECK(!memcmp(all + 15 * B * 6, from, sizeof(float) * 15 * B * 6) && !memcmp(ly + 15 * B, ly2, sizeof(int32_t) * 15 * B),
              "seek to (1, 4) replays batches 15..29 bit for bit");
        CHECK(!memcmp(all + 26 * B * 6, late, sizeof(float) * 4 * B * 6), "seek past an epoch's end");
    }
    /* the same loader seeked backwards mid-run, and batches built without the thread */
    if (all && !st_loader_new(&d, B, 1, 0, &aug, 9, &l)) {
        const st_tensor *x;
        const int32_t *y;
        for (int i = 0; i < 5; i++) st_loader_next(l, &x, &y, NULL);
        st_loader_seek(l, 0, 2);
        int64_t te, tb;
        st_loader_tell(l, &te, &tb);
        st_loader_next(l, &x, &y, NULL);
        CHECK(te == 0 && tb == 2 && !memcmp(x->data, all + 2 * B * 6, sizeof(float) * B * 6), "seek back on a live loader");
        st_tensor *bx = st_tensor_new(4, (int[]){B, 1, 2, 3});
        int32_t by[B];
        ok = 1;
        for (int i = 0; i < 30; i++) {
            CHECK(!st_loader_batch(l, i / 11, i % 11, bx, by, NULL), "st_loader_batch: %s", st_errmsg());
            ok &= !memcmp(bx->data, all + i * B * 6, sizeof(float) * bx->shape[0] * 6) && !memcmp(by, ly + i * B, sizeof(int32_t) * bx->shape[0]);
        }
        CHECK(ok, "batches built on the caller's thread equal the prefetched ones");
        CHECK(st_loader_batch(l, 0, 11, bx, by, NULL) == ST_ERR_ARG && has(st_errmsg(), "no batch 11"), "batch range");
        st_tensor_free(bx);
        st_loader_free(l);
    }
    /* another seed: another order and other augmentations */
    int32_t *oy = NULL;
    float *other = record(&d, B, 0, &aug, 10, 0, 0, 11, &oy, 0);
    if (all && other) CHECK(memcmp(ly, oy, sizeof(int32_t) * 11 * B) != 0, "different seeds differ");
    /* augmentation changes samples, pad 0 and no flip change nothing */
    st_augment none = {0};
    int32_t *ny = NULL;
    float *plain = record(&d, B, 0, &none, 9, 0, 0, 11, &ny, 0);
    if (plain) {
        ok = 1;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 6; k++) ok &= plain[i * 6 + k] == ny[i] + 0.125f * k;
        CHECK(ok, "crop pad 0, no flip: samples unchanged");
    }
    CHECK(all && memcmp(all, plain, sizeof(float) * 11 * B * 6) != 0 && !memcmp(ly, ny, sizeof(int32_t) * 11 * B),
          "augmentation changes pixels, not the order");
    free(all); free(from); free(late); free(other); free(plain);
    free(ly); free(ly2); free(ly3); free(oy); free(ny);
    /* argument errors */
    CHECK(st_loader_new(&d, 0, 1, 0, NULL, 1, &l) == ST_ERR_ARG && has(st_errmsg(), "batch size 0"), "batch 0");
    CHECK(st_loader_new(&d, 200, 1, 1, NULL, 1, &l) == ST_ERR_ARG, "drop_last with a batch over n");
    st_dataset_free(&d);
}

/* ---------------------------------------------------------------- split and normalisation */
static void test_split_normalize(void) {
    st_dataset d = counting(50), v, d2 = counting(50), v2;
    CHECK(!st_dataset_split(&d, 12, 5, &v) && d.n == 38 && v.n == 12, "split sizes %d + %d", d.n, v.n);
    CHECK(!st_dataset_split(&d2, 12, 5, &v2) && !memcmp(v.labels, v2.labels, sizeof(int32_t) * 12), "split repeats");
    int seen[50] = {0}, ok = 1;
    for (int i = 0; i < d.n; i++) { seen[d.labels[i]]++; ok &= d.x[i * 6 + 2] == d.labels[i] + 0.25f; }
    for (int i = 0; i < v.n; i++) { seen[v.labels[i]]++; ok &= v.x[i * 6 + 2] == v.labels[i] + 0.25f; }
    for (int i = 0; i < 50; i++) ok &= seen[i] == 1;
    for (int i = 1; i < v.n; i++) ok &= v.labels[i] > v.labels[i - 1];
    CHECK(ok, "split: disjoint, complete, samples kept with labels, order kept");
    int contiguous = 1;
    for (int i = 1; i < v.n; i++) contiguous &= v.labels[i] == v.labels[0] + i;
    CHECK(!contiguous, "split is random");
    st_dataset e = counting(3), ve;
    CHECK(st_dataset_split(&e, 4, 1, &ve) == ST_ERR_ARG && has(st_errmsg(), "4 samples from a data set of 3"), "split too big");
    double mean, std;
    st_dataset_channel_stats(&d, &mean, &std);
    float fm = (float)mean, fs = (float)std;
    st_dataset_normalize(&d, &fm, &fs);
    double m2, s2;
    st_dataset_channel_stats(&d, &m2, &s2);
    CHECK(mean > 1 && fabs(m2) < 1e-5 && fabs(s2 - 1) < 1e-5, "normalised: mean %g std %g (from %g, %g)", m2, s2, mean, std);
    st_dataset_free(&d); st_dataset_free(&v); st_dataset_free(&d2); st_dataset_free(&v2); st_dataset_free(&e);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "/tmp/stride-dataset.XXXXXX");
    if (!mkdtemp(tmp)) { fprintf(stderr, "cannot make a temporary folder\n"); return 1; }
    test_idx();
    test_cifar();
    test_npy();
    test_images();
    test_augment();
    test_targets_move();
    for (int mode = 0; mode < 2; mode++) { /* the prefetch thread, then st_loader_next building */
        st_loader_force_inline(mode);
        test_loader();
    }
    st_loader_force_inline(-1);
    test_split_normalize();
    st_dataset fm = {0};
    test_fashion_mnist(&fm);
    if (fm.n) loader_throughput(&fm);
    st_dataset_free(&fm);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
    return test_done("test_dataset");
}
