/* data_shapes.c - `stride data shapes`: writes the synthetic shapes data set (see
 * st_shapes_generate) as .npy files for segmentation and keypoint training. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int save(const char *dir, const char *split, const char *what, st_dtype t, int ndim, const int64_t *shape, void *data) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%s.npy", dir, split, what);
    st_array a = {t, ndim, {0}, data};
    for (int i = 0; i < ndim; i++) a.shape[i] = shape[i];
    return st_npy_save(path, &a) ? cli_fail() : 0;
}

/* Images first..first+count-1 of s as DIR/SPLIT_{x,y,heatmaps,keypoints}.npy. */
static int save_split(const char *dir, const char *split, const st_shapes *s, int64_t first, int64_t count) {
    const int64_t S = s->size, C = s->channels, J = s->joints, H = s->hs, K = s->max_keypoints;
    int rc = save(dir, split, "x", ST_F32, 4, (int64_t[]){count, C, S, S}, s->images + first * C * S * S);
    if (!rc) rc = save(dir, split, "y", ST_I32, 3, (int64_t[]){count, S, S}, s->masks + first * S * S);
    if (!rc) rc = save(dir, split, "heatmaps", ST_F32, 4, (int64_t[]){count, J, H, H}, s->heatmaps + first * J * H * H);
    if (!rc) rc = save(dir, split, "keypoints", ST_F32, 3, (int64_t[]){count, K, 4}, s->keypoints + first * K * 4);
    return rc;
}

int cmd_data_shapes(int argc, char **argv) {
    cli_opt opts[] = {
        {"--out", "DIR", "folder for {train,test}_{x,y,heatmaps,keypoints}.npy", NULL},
        {"--n", "N", "total number of images (2000)", NULL},
        {"--train-split", "F", "fraction used for training (0.8)", NULL},
        {"--size", "N", "image side in pixels (64)", NULL},
        {"--channels", "N", "1 grey or 3 coloured (1)", NULL},
        {"--min-shapes", "N", "fewest shapes per image (1)", NULL},
        {"--max-shapes", "N", "most shapes per image (4)", NULL},
        {"--noise", "F", "standard deviation of the pixel noise (0.1)", NULL},
        {"--seed", "N", "random seed (1)", NULL},
        {"--sigma", "F", "heatmap Gaussian sigma in heatmap cells, one decimal (1.0)", NULL},
        {"--heatmap-stride", "N", "image pixels per heatmap cell (4)", NULL},
        {NULL, NULL, NULL, NULL}};
    const char *pos[1];
    int npos, rc = parse_options("data", "shapes --out DIR [generator options]", opts, argc, argv, 2, pos, 1, &npos);
    if (rc) return rc == 1 ? 0 : rc;
    const char *out = opt_get(opts, "--out");
    if (!out) return cli_error("data shapes: --out DIR is required");
    st_shapes_conf c;
    st_shapes_defaults(&c);
    long v;
    double f, split, sigma;
    if (opt_int(opts, "--n", 2000, 2, 100000000, &v)) return 2;
    c.n = (int)v;
    if (opt_double(opts, "--train-split", 0.8, &split)) return 2;
    if (!(split > 0 && split < 1)) return cli_error("--train-split: %g must be between 0 and 1", split);
    if (opt_int(opts, "--size", c.size, 8, 4096, &v)) return 2;
    c.size = (int)v;
    if (opt_int(opts, "--channels", c.channels, 1, 3, &v)) return 2;
    c.channels = (int)v;
    if (opt_int(opts, "--min-shapes", c.min_shapes, 0, 16, &v)) return 2;
    c.min_shapes = (int)v;
    if (opt_int(opts, "--max-shapes", c.max_shapes, 1, 16, &v)) return 2;
    c.max_shapes = (int)v;
    if (opt_double(opts, "--noise", c.noise, &f)) return 2;
    c.noise = f;
    if (opt_int(opts, "--seed", (long)c.seed, 0, 0x7fffffffL, &v)) return 2;
    c.seed = (uint64_t)v;
    if (opt_double(opts, "--sigma", c.sigma_x10 / 10.0, &sigma)) return 2;
    if (!(sigma >= 0.1 && sigma <= 1000)) return cli_error("--sigma: %g must be in 0.1..1000", sigma);
    c.sigma_x10 = (int)(sigma * 10 + 0.5);
    if (opt_int(opts, "--heatmap-stride", c.heatmap_stride, 1, 4096, &v)) return 2;
    c.heatmap_stride = (int)v;
    int64_t n_train = (int64_t)(c.n * split + 0.5);
    if (n_train < 1 || n_train >= c.n) return cli_error("data shapes: --n %d with --train-split %g leaves an empty split", c.n, split);
    st_shapes s;
    if (st_shapes_generate(&c, &s)) return cli_fail();
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        st_shapes_free(&s);
        return cli_error("data shapes: cannot create folder '%s': %s", out, strerror(errno));
    }
    rc = save_split(out, "train", &s, 0, n_train);
    if (!rc) rc = save_split(out, "test", &s, n_train, c.n - n_train);
    if (!rc)
        printf("wrote %s/{train,test}_{x,y,heatmaps,keypoints}.npy: %lld training and %lld test images of %dx%dx%d, "
               "%d heatmaps of %dx%d, %d keypoint rows\n",
               out, (long long)n_train, (long long)(c.n - n_train), s.channels, s.size, s.size, s.joints, s.hs, s.hs,
               s.max_keypoints);
    st_shapes_free(&s);
    return rc;
}
