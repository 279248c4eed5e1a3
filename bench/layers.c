/* layers.c - speed of single convolution layers, forward and forward+backward, through the
 * library's internal kernels (src/internal.h, src/conv_transpose.h): the stride side of the
 * suite's layer benchmarks, whose PyTorch side is bench/torch_bench.py's `layer`.
 *
 *   build/bench/layers SPEC fwd|fwdbwd [THREADS [WARMUP MIN_REPS MAX_REPS SECONDS]]
 * SPEC is OP:key=value,... with OP conv1d, conv2d or convt2d (transposed 2D convolution) and
 * the keys n (batch), cin, cout, h, w (input size; conv1d: h=1), k (square kernel; conv1d
 * 1 x k), s (stride), p (zero padding), g (groups), bias (0/1, default 1) and first=1 for
 * a network's first layer, whose input needs no gradient; for A/B runs of the 2D/1D
 * convolution's paths, path (-1 the library's choice, 0 im2col + GEMM, 1 direct, 2
 * Winograd, 3 1D Winograd, 4 the stem kernel for the forward pass with im2col + GEMM for
 * the backward, where possible) and implicit (im2col + GEMM: -1 by size, 0 col written, 1
 * col gathered by the GEMM). For example
 *   build/bench/layers conv2d:n=8,cin=64,h=56,w=56,cout=64,k=3,p=1 fwd
 * One call of fwd is the forward pass into a preallocated output. One call of fwdbwd is the
 * forward pass, then zeroing the gradient buffers and the backward pass for a fixed random
 * output gradient: input gradient (unless first=1), weight and bias gradients. Prints one
 * JSON line: {"spec": ..., "mode": ..., "threads": T, "reps": R, "best_s": ..., "median_s": ...}
 * (the suite counts the FLOPs).
 */
#include "conv_transpose.h"
#include "internal.h"
#include "kernels.h"
#include "stride.h"
#include "timing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int transposed, backward, first, n;
    st_conv_geom g;
    st_convt_geom tg;
    float *in, *w, *b, *out, *dout, *din, *dw, *db, *work;
    size_t nin, nw, nout;
} job;

static int run(void *p) {
    job *j = p;
    if (j->transposed) st_convt_forward(j->out, j->in, j->w, j->b, j->n, &j->tg, j->work);
    else st_conv_forward(j->out, j->in, j->w, j->b, j->n, &j->g, j->work);
    if (!j->backward) return 0;
    float *din = j->first ? NULL : j->din;
    if (din) memset(din, 0, j->nin * sizeof(float));
    memset(j->dw, 0, j->nw * sizeof(float));
    if (j->db) memset(j->db, 0, (size_t)(j->transposed ? j->tg.cout : j->g.cout) * sizeof(float));
    if (j->transposed) st_convt_backward(din, j->dw, j->db, j->dout, j->in, j->w, j->n, &j->tg, j->work);
    else st_conv_backward(din, j->dw, j->db, j->dout, j->in, j->w, j->n, &j->g, j->work);
    return 0;
}

static float *randoms(size_t n, st_rng *r) {
    float *a = malloc((n ? n : 1) * sizeof(float));
    if (a)
        for (size_t i = 0; i < n; i++) a[i] = (float)st_rng_normal(r);
    return a;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[2], "fwd") && strcmp(argv[2], "fwdbwd"))) {
        fprintf(stderr, "usage: %s OP:n=N,cin=C,h=H,w=W,cout=K,k=3,s=1,p=1,g=1 fwd|fwdbwd "
                        "[THREADS [WARMUP MIN_REPS MAX_REPS SECONDS]]\n", argv[0]);
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    bench_plan plan = {2, 3, 200, 1.0};
    bench_plan_args(&plan, argc, argv, 4);

    /* parse the spec */
    char op[16] = "";
    int n = 1, cin = 1, cout = 1, h = 1, w = 1, k = 1, s = 1, pad = 0, groups = 1, bias = 1, first = 0;
    int path = -1, implicit = -1;
    const char *colon = strchr(argv[1], ':');
    if (!colon || colon - argv[1] >= (long)sizeof op) {
        fprintf(stderr, "layers: SPEC must start with conv1d:, conv2d: or convt2d:\n");
        return 2;
    }
    memcpy(op, argv[1], (size_t)(colon - argv[1]));
    for (const char *q = colon + 1; *q;) {
        char key[16];
        int val, used;
        if (sscanf(q, "%15[a-z]=%d%n", key, &val, &used) != 2) {
            fprintf(stderr, "layers: cannot read '%s' (expected key=integer)\n", q);
            return 2;
        }
        int *dst = !strcmp(key, "n") ? &n : !strcmp(key, "cin") ? &cin : !strcmp(key, "cout") ? &cout
                 : !strcmp(key, "h") ? &h : !strcmp(key, "w") ? &w : !strcmp(key, "k") ? &k
                 : !strcmp(key, "s") ? &s : !strcmp(key, "p") ? &pad : !strcmp(key, "g") ? &groups
                 : !strcmp(key, "bias") ? &bias : !strcmp(key, "first") ? &first
                 : !strcmp(key, "path") ? &path : !strcmp(key, "implicit") ? &implicit : NULL;
        if (!dst) {
            fprintf(stderr, "layers: unknown key '%s' (known: n cin cout h w k s p g bias first path implicit)\n", key);
            return 2;
        }
        *dst = val;
        q += used;
        if (*q == ',') q++;
    }
    int one_d = !strcmp(op, "conv1d");
    job j = {0};
    j.n = n;
    j.first = first;
    j.backward = !strcmp(argv[2], "fwdbwd");
    j.transposed = !strcmp(op, "convt2d");
    if (!one_d && strcmp(op, "conv2d") && !j.transposed) {
        fprintf(stderr, "layers: unknown op '%s' (conv1d, conv2d, convt2d)\n", op);
        return 2;
    }
    if (one_d) h = 1;
    const int kk[2] = {one_d ? 1 : k, k}, ss[2] = {one_d ? 1 : s, s}, dd[2] = {1, 1};
    const int pp[2] = {one_d ? 0 : pad, pad}, zero[2] = {0, 0};
    st_status st = j.transposed ? st_convt_geom_init(&j.tg, cin, cout, groups, kk, ss, dd, pp, zero, h, w)
                                : st_conv_geom_init(&j.g, cin, cout, groups, kk, ss, dd, ST_PAD_EXPLICIT, pp, h, w);
    if (st) {
        fprintf(stderr, "layers: %s\n", st_errmsg());
        return 2;
    }
    st_set_threads(threads);
    st_conv_force_path(path);
    st_conv_force_implicit(implicit);

    /* buffers: weights (cout, cin/g, kh, kw), transposed (cin, cout/g, kh, kw) */
    size_t nwork;
    if (j.transposed) {
        j.nin = (size_t)n * cin * j.tg.ih * j.tg.iw;
        j.nout = (size_t)n * cout * j.tg.oh * j.tg.ow;
        j.nw = (size_t)cin * (cout / groups) * j.tg.kh * j.tg.kw;
        nwork = st_convt_work_size(&j.tg, n);
    } else {
        j.nin = (size_t)n * cin * j.g.ih * j.g.iw;
        j.nout = (size_t)n * cout * j.g.oh * j.g.ow;
        j.nw = (size_t)cout * (cin / groups) * j.g.kh * j.g.kw;
        nwork = st_conv_work_size(&j.g, n);
    }
    st_rng r;
    st_rng_seed(&r, 1);
    j.in = randoms(j.nin, &r);
    j.w = randoms(j.nw, &r);
    j.b = bias ? randoms((size_t)cout, &r) : NULL;
    j.out = randoms(j.nout, &r);
    j.work = randoms(nwork, &r);
    int ok = j.in && j.w && (j.b || !bias) && j.out && j.work;
    if (j.backward) {
        j.dout = randoms(j.nout, &r);
        j.din = randoms(j.nin, &r);
        j.dw = randoms(j.nw, &r);
        j.db = bias ? randoms((size_t)cout, &r) : NULL;
        ok = ok && j.dout && j.din && j.dw && (j.db || !bias);
    }
    bench_result res;
    if (!ok || bench_run(run, &j, &plan, &res)) {
        fprintf(stderr, "layers: out of memory\n");
        return 1;
    }
    printf("{\"spec\": \"%s\", \"mode\": \"%s\", \"threads\": %d, \"reps\": %d, \"best_s\": %.6f, \"median_s\": %.6f}\n",
           argv[1], argv[2], st_get_threads(), res.reps, res.best, res.median);
    free(j.in), free(j.w), free(j.b), free(j.out), free(j.work);
    free(j.dout), free(j.din), free(j.dw), free(j.db);
    return 0;
}
