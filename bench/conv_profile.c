/* conv_profile.c - where a network's inference time goes, convolution by convolution.
 *
 *   build/bench/conv_profile MODEL BATCH [REPS]
 * For every distinct convolution geometry of MODEL (a zoo name or model file) at BATCH,
 * times st_conv_forward on random data, alone, on one thread, by the thread's CPU time
 * (the best of REPS calls, default 5; wall time is useless on a shared machine), and the
 * same with prepared weights (st_conv_forward_prep, as st_net_run calls it), the two
 * interleaved. Prints one line per geometry: how many nodes have it, the time of one
 * call and its GFLOP/s, both ways, and the share of the convolutions' total (prepared).
 * A developer's tool: it reads the internal node table (src/net.h).
 */
#include "kernels.h"
#include "net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
    st_conv_geom g;
    int count;
    double best, best_prep;
} layer;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL BATCH [REPS]\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[2]), reps = argc > 3 ? atoi(argv[3]) : 5;
    st_set_threads(1);
    st_net *net;
    if (st_net_open(argv[1], &net)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    layer *ls = calloc((size_t)net->nnodes, sizeof *ls);
    int nl = 0;
    for (int i = 0; i < net->nnodes; i++) {
        const st_node *n = &net->nodes[i];
        if (strcmp(n->op->name, "conv2d") && strcmp(n->op->name, "conv1d")) continue;
        const st_conv_geom *g = &n->u.conv.geom;
        int k = 0;
        while (k < nl && memcmp(&ls[k].g, g, sizeof *g)) k++;
        if (k == nl) ls[nl++].g = *g;
        ls[k].count++;
    }
    st_rng r;
    st_rng_seed(&r, 1);
    double total = 0, total_prep = 0;
    for (int k = 0; k < nl; k++) {
        const st_conv_geom *g = &ls[k].g;
        size_t nin = (size_t)batch * g->cin * g->ih * g->iw, nout = (size_t)batch * g->cout * g->oh * g->ow;
        size_t nw = (size_t)g->cout * (g->cin / g->groups) * g->kh * g->kw, nwork = st_conv_work_size(g, batch);
        size_t nprep = st_conv_prep_size(g, batch);
        float *in = malloc(nin * 4), *out = malloc(nout * 4), *w = malloc(nw * 4), *work = malloc((nwork + 1) * 4);
        float *prep = nprep ? st_aligned_alloc(nprep * 4) : NULL;
        for (size_t i = 0; i < nin; i++) in[i] = (float)st_rng_normal(&r);
        for (size_t i = 0; i < nw; i++) w[i] = (float)st_rng_normal(&r);
        if (prep) st_conv_prepare(prep, w, g, batch);
        st_conv_forward(out, in, w, NULL, batch, g, work);
        ls[k].best = ls[k].best_prep = 1e30;
        for (int rep = 0; rep < reps; rep++) {
            double t0 = cpu_now();
            st_conv_forward(out, in, w, NULL, batch, g, work);
            double t1 = cpu_now();
            st_conv_forward_prep(out, in, w, NULL, batch, g, work, prep, NULL);
            double t2 = cpu_now();
            if (t1 - t0 < ls[k].best) ls[k].best = t1 - t0;
            if (t2 - t1 < ls[k].best_prep) ls[k].best_prep = t2 - t1;
        }
        total += ls[k].best * ls[k].count;
        total_prep += ls[k].best_prep * ls[k].count;
        free(in), free(out), free(w), free(work), st_aligned_free(prep);
    }
    printf("%-42s %3s %8s %7s %8s %7s %6s\n", "geometry (cin->cout k s, in -> out)", "n", "ms", "GFLOP/s", "prep ms",
           "GFLOP/s", "share");
    for (int k = 0; k < nl; k++) {
        const st_conv_geom *g = &ls[k].g;
        double flops = 2.0 * batch * g->cout * g->oh * g->ow * (g->cin / g->groups) * g->kh * g->kw;
        char name[64];
        snprintf(name, sizeof name, "%d->%d %dx%d s%d g%d, %dx%d -> %dx%d", g->cin, g->cout, g->kh, g->kw, g->sh,
                 g->groups, g->ih, g->iw, g->oh, g->ow);
        printf("%-42s %3d %8.3f %7.1f %8.3f %7.1f %5.1f%%\n", name, ls[k].count, ls[k].best * 1e3,
               flops / ls[k].best * 1e-9, ls[k].best_prep * 1e3, flops / ls[k].best_prep * 1e-9,
               100 * ls[k].best_prep * ls[k].count / total_prep);
    }
    printf("total %.3f ms, prepared %.3f ms (convolutions only, 1 thread, CPU time)\n", total * 1e3, total_prep * 1e3);
    free(ls);
    st_net_free(net);
    return 0;
}
