/* small_kernels.c - timings of the small and special workloads of issue 5, stride side:
 * single layers (forward, forward + backward) and whole networks (a training step, an
 * inference pass). bench/torch_small.py times the same in PyTorch.
 *
 *   build/bench/small_kernels THREADS conv N CIN COUT H W KH KW SH SW PH PW GROUPS [FIRST [PATH]]
 *       conv2d (H = 1, KH = 1 for conv1d); FIRST 1: no input gradient (a network's first
 *       layer); PATH: -1 the rule, 0 im2col+GEMM, 1 direct
 *   build/bench/small_kernels THREADS convt N CIN COUT H W K S
 *   build/bench/small_kernels THREADS train MODEL BATCH
 *   build/bench/small_kernels THREADS infer MODEL BATCH
 *
 * Each prints one JSON line. Times are the best of many repetitions (the machine is shared:
 * the minimum is the least disturbed run); with one thread they are the thread's CPU time,
 * which other processes disturb less than the wall clock, with more the wall clock. */
#include "stride.h"
#include "internal.h"
#include "kernels.h"
#include "conv_transpose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int threads = 1;

static double now(void) {
    struct timespec t;
    clock_gettime(threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float *rnd(size_t n, st_rng *r) {
    float *p = st_aligned_alloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (float)st_rng_normal(r);
    return p;
}

/* best time of `reps` batches of calls, each batch long enough to time (about 20 ms) */
#define TIME_BEST(result, budget, CODE)                                                    \
    do {                                                                                   \
        double t0_ = now();                                                                \
        CODE;                                                                              \
        double one_ = now() - t0_;                                                         \
        int inner_ = one_ > 0.02 ? 1 : (int)(0.02 / (one_ > 1e-7 ? one_ : 1e-7)) + 1;      \
        int reps_ = (int)((budget) / (one_ * inner_ + 1e-9)) + 1;                          \
        if (reps_ > 50) reps_ = 50;                                                        \
        if (reps_ < 3) reps_ = 3;                                                          \
        double best_ = 1e30;                                                               \
        for (int r_ = 0; r_ < reps_; r_++) {                                               \
            double t_ = now();                                                             \
            for (int i_ = 0; i_ < inner_; i_++) { CODE; }                                  \
            t_ = (now() - t_) / inner_;                                                    \
            if (t_ < best_) best_ = t_;                                                    \
        }                                                                                  \
        result = best_;                                                                    \
    } while (0)

static int conv_mode(int argc, char **argv) {
    if (argc < 12) return 2;
    int n = atoi(argv[0]), cin = atoi(argv[1]), cout = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    int k[2] = {atoi(argv[5]), atoi(argv[6])}, s[2] = {atoi(argv[7]), atoi(argv[8])};
    int pad[2] = {atoi(argv[9]), atoi(argv[10])}, d[2] = {1, 1}, groups = atoi(argv[11]);
    int first = argc > 12 ? atoi(argv[12]) : 0, path = argc > 13 ? atoi(argv[13]) : -1;
    st_conv_geom g;
    if (st_conv_geom_init(&g, cin, cout, groups, k, s, d, ST_PAD_EXPLICIT, pad, h, w)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    st_conv_force_path(path);
    st_rng r;
    st_rng_seed(&r, 1);
    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * g.oh * g.ow, nw = (size_t)cout * (cin / groups) * k[0] * k[1];
    float *x = rnd(nx, &r), *y = rnd(ny, &r), *wt = rnd(nw, &r), *b = rnd(cout, &r), *dy = rnd(ny, &r);
    float *dx = rnd(nx, &r), *dw = rnd(nw, &r), *db = rnd(cout, &r);
    float *work = st_aligned_alloc(sizeof(float) * (st_conv_work_size(&g, n) + 16));
    double macs = (double)ny * (cin / groups) * k[0] * k[1];
    double tf, tb;
    TIME_BEST(tf, 1.0, st_conv_forward(y, x, wt, b, n, &g, work));
    TIME_BEST(tb, 1.0, st_conv_backward(first ? NULL : dx, dw, db, dy, x, wt, n, &g, work));
    printf("{\"layer\": \"conv\", \"n\": %d, \"cin\": %d, \"cout\": %d, \"h\": %d, \"w\": %d, \"k\": [%d, %d], "
           "\"s\": [%d, %d], \"groups\": %d, \"first\": %d, \"path\": %d, \"threads\": %d, \"fwd_ms\": %.4f, "
           "\"bwd_ms\": %.4f, \"fwd_gflops\": %.1f, \"fwdbwd_gflops\": %.1f}\n",
           n, cin, cout, h, w, k[0], k[1], s[0], s[1], groups, first, path, threads, tf * 1e3, tb * 1e3,
           2 * macs / tf * 1e-9, (first ? 4 : 6) * macs / (tf + tb) * 1e-9);
    return 0;
}

static int convt_mode(int argc, char **argv) {
    if (argc < 7) return 2;
    int n = atoi(argv[0]), cin = atoi(argv[1]), cout = atoi(argv[2]), h = atoi(argv[3]), w = atoi(argv[4]);
    int k[2] = {atoi(argv[5]), atoi(argv[5])}, s[2] = {atoi(argv[6]), atoi(argv[6])}, d[2] = {1, 1};
    int pad[2] = {0, 0}, op[2] = {0, 0};
    st_convt_geom g;
    if (st_convt_geom_init(&g, cin, cout, 1, k, s, d, pad, op, h, w)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    st_rng r;
    st_rng_seed(&r, 1);
    size_t nx = (size_t)n * cin * h * w, ny = (size_t)n * cout * g.oh * g.ow, nw = (size_t)cin * cout * k[0] * k[1];
    float *x = rnd(nx, &r), *y = rnd(ny, &r), *wt = rnd(nw, &r), *b = rnd(cout, &r), *dy = rnd(ny, &r);
    float *dx = rnd(nx, &r), *dw = rnd(nw, &r), *db = rnd(cout, &r);
    float *work = st_aligned_alloc(sizeof(float) * (st_convt_work_size(&g, n) + 16));
    double macs = (double)nx * cout * k[0] * k[1];
    double tf, tb;
    TIME_BEST(tf, 1.0, st_convt_forward(y, x, wt, b, n, &g, work));
    TIME_BEST(tb, 1.0, st_convt_backward(dx, dw, db, dy, x, wt, n, &g, work));
    printf("{\"layer\": \"conv_transpose\", \"n\": %d, \"cin\": %d, \"cout\": %d, \"h\": %d, \"w\": %d, \"k\": %d, "
           "\"s\": %d, \"threads\": %d, \"fwd_ms\": %.4f, \"bwd_ms\": %.4f, \"fwd_gflops\": %.1f, "
           "\"fwdbwd_gflops\": %.1f}\n",
           n, cin, cout, h, w, k[0], s[0], threads, tf * 1e3, tb * 1e3, 2 * macs / tf * 1e-9,
           6 * macs / (tf + tb) * 1e-9);
    return 0;
}

static int net_mode(int train, int argc, char **argv) {
    if (argc < 2) return 2;
    int batch = atoi(argv[1]);
    st_net *net;
    if (st_net_open(argv[0], &net) || st_net_init(net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    int nd, shape[ST_MAX_DIMS], ond, oshape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    st_net_node_shape(net, st_net_num_nodes(net) - 1, &ond, oshape);
    shape[0] = batch;
    st_tensor *x = st_tensor_new(nd, shape);
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    int32_t *labels = malloc(sizeof(int32_t) * batch);
    for (int i = 0; i < batch; i++) labels[i] = (int32_t)st_rng_below(&r, (uint32_t)oshape[1]);
    st_sgd_conf c = {0.01f, 0.0f, 0.0f, 0};
    st_sgd *opt;
    if (st_sgd_new(net, &c, &opt)) { fprintf(stderr, "%s\n", st_errmsg()); return 1; }
    double t;
    if (train) {
        TIME_BEST(t, 2.0, {
            float loss;
            st_net_zero_grad(net);
            st_net_step(net, x, ST_LOSS_CE, labels, NULL, &loss, 0);
            st_sgd_step(opt);
        });
    } else {
        TIME_BEST(t, 2.0, {
            const st_tensor *y;
            st_net_forward(net, x, 0, &y);
        });
    }
    printf("{\"model\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"threads\": %d, \"ms\": %.4f, \"per_s\": %.1f, "
           "\"images_per_s\": %.1f}\n",
           argv[0], train ? "train" : "infer", batch, threads, t * 1e3, 1 / t, batch / t);
    st_sgd_free(opt);
    free(labels);
    st_tensor_free(x);
    st_net_free(net);
    return 0;
}

int main(int argc, char **argv) {
    int rc = 2;
    if (argc >= 3) {
        threads = atoi(argv[1]);
        st_set_threads(threads);
        if (!strcmp(argv[2], "conv")) rc = conv_mode(argc - 3, argv + 3);
        else if (!strcmp(argv[2], "convt")) rc = convt_mode(argc - 3, argv + 3);
        else if (!strcmp(argv[2], "train")) rc = net_mode(1, argc - 3, argv + 3);
        else if (!strcmp(argv[2], "infer")) rc = net_mode(0, argc - 3, argv + 3);
    }
    if (rc == 2)
        fprintf(stderr, "usage: %s THREADS conv N CIN COUT H W KH KW SH SW PH PW GROUPS [FIRST [PATH]]\n"
                        "       %s THREADS convt N CIN COUT H W K S\n"
                        "       %s THREADS train|infer MODEL BATCH\n", argv[0], argv[0], argv[0]);
    return rc;
}
