/* scale_profile.c - how st_net_run's work splits over threads, layer by layer, measured
 * without wall time (the machine may be loaded: only each thread's CPU time is read).
 *
 *   build/bench/scale_profile MODEL BATCH [REPS [THREADS]]      (THREADS default 2)
 *   OMP_WAIT_POLICY=passive is recommended: an idle thread then sleeps instead of
 *   spinning, so its CPU time counts its work only.
 *
 * How: the program is linked with -Wl,--wrap=GOMP_parallel (every `#pragma omp parallel`
 * of GCC calls GOMP_parallel), so each outermost parallel region runs through a wrapper
 * that reads every team member's CPU time (CLOCK_THREAD_CPUTIME_ID) around its share.
 * st_run_probe (net.h) marks where each node of the net starts and ends. Per node:
 *   t1      the main thread's CPU time with 1 thread;
 *   serial  with THREADS threads, the main thread's CPU time outside parallel regions
 *           (its own serial code plus the cost of starting the regions);
 *   crit    serial + the sum over the node's regions of the busiest member's time: what
 *           the node would take on idle cores (the critical path, join latency aside);
 *   sum     all threads' CPU time (sum / THREADS is the ideal);
 *   imbal   the regions' busiest member against their mean: sum of max / sum of mean;
 *   regions the number of outermost parallel regions (and those with a team of one).
 * The members of a team start their shares together (a barrier first, not timed: on a
 * loaded machine a worker woken late would otherwise see the others take its share of a
 * dynamic schedule); SCALE_PROFILE_NO_BARRIER=1 leaves it out.
 * 1 and THREADS threads alternate in the same process, REPS times each; every figure is
 * the minimum over the repetitions. Nodes are grouped into kinds (op, and for
 * convolutions the kernel size and stride) for a summary; -v prints every node.
 * A developer's tool: it reads the internal node table (src/net.h).
 */
#include "kernels.h"
#include "net.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_T 16

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---------------------------------------------------------------- dynamic loops
 * Who takes which chunk of a schedule(dynamic) loop depends on when the threads get there;
 * on a loaded machine a worker woken late finds the others have taken its share. So the
 * chunks are timed instead (GOMP_loop_nonmonotonic_dynamic_start/next are wrapped too:
 * a chunk lasts from the call that hands it out to the thread's next call), and the
 * loop's time on idle cores is simulated: the chunks in order, each to the thread free
 * first, all starting together. */
#define MAX_LOOPS 4
#define MAX_CHUNKS 8192
_Bool __real_GOMP_loop_nonmonotonic_dynamic_start(long start, long end, long incr, long chunk, long *istart,
                                                  long *iend);
_Bool __real_GOMP_loop_nonmonotonic_dynamic_next(long *istart, long *iend);

static double chunk_dur[MAX_LOOPS][MAX_CHUNKS]; /* by loop of the region, then first index */
static long loop_start[MAX_LOOPS], loop_incr[MAX_LOOPS], loop_chunk[MAX_LOOPS], loop_end[MAX_LOOPS];
static _Thread_local int tl_loop = -1, tl_nloops;
static _Thread_local long tl_first, tl_start[MAX_LOOPS], tl_step[MAX_LOOPS]; /* step: incr * chunk */
static _Thread_local double tl_t0, tl_dyn; /* the current chunk's start; this thread's chunks' time */

static void chunk_done(void) {
    if (tl_loop < 0) return;
    double d = cpu_now() - tl_t0;
    long c = (tl_first - tl_start[tl_loop]) / tl_step[tl_loop];
    if (c >= 0 && c < MAX_CHUNKS) chunk_dur[tl_loop][c] = d;
    tl_dyn += d;
    tl_loop = -1;
}

static _Bool chunk_taken(_Bool got, int loop, long *istart) {
    if (got && loop < MAX_LOOPS) {
        tl_loop = loop;
        tl_first = *istart;
        tl_t0 = cpu_now();
    }
    return got;
}

_Bool __wrap_GOMP_loop_nonmonotonic_dynamic_start(long start, long end, long incr, long chunk, long *istart,
                                                  long *iend) {
    chunk_done();
    int loop = tl_nloops++;
    if (loop < MAX_LOOPS) {
        tl_start[loop] = start, tl_step[loop] = (incr ? incr : 1) * (chunk > 0 ? chunk : 1);
        if (omp_get_thread_num() == 0) /* for simulate, after the region */
            loop_start[loop] = start, loop_end[loop] = end, loop_incr[loop] = incr ? incr : 1,
            loop_chunk[loop] = chunk > 0 ? chunk : 1;
    }
    return chunk_taken(__real_GOMP_loop_nonmonotonic_dynamic_start(start, end, incr, chunk, istart, iend), loop,
                       istart);
}

_Bool __wrap_GOMP_loop_nonmonotonic_dynamic_next(long *istart, long *iend) {
    int loop = tl_loop;
    chunk_done();
    return chunk_taken(__real_GOMP_loop_nonmonotonic_dynamic_next(istart, iend), loop, istart);
}

/* the simulated time of loop l's chunks on `team` threads */
static double simulate(int l, int team) {
    long n = (loop_end[l] - loop_start[l] + loop_incr[l] - 1) / loop_incr[l];
    long chunks = (n + loop_chunk[l] - 1) / loop_chunk[l];
    double f[16] = {0}, mx = 0;
    for (long c = 0; c < chunks && c < MAX_CHUNKS; c++) {
        int t = 0;
        for (int i = 1; i < team; i++)
            if (f[i] < f[t]) t = i;
        f[t] += chunk_dur[l][c];
        if (f[t] > mx) mx = f[t];
    }
    return mx;
}

/* ---------------------------------------------------------------- the region wrapper */
void __real_GOMP_parallel(void (*fn)(void *), void *data, unsigned nthreads, unsigned flags);

typedef struct {
    void (*fn)(void *);
    void *data;
    double t[MAX_T];   /* each member's CPU time in its share */
    double dyn[MAX_T]; /* of which in chunks of dynamic loops */
    int team, nloops;
} region;

static int start_together = 1;

static void timed_share(void *p) {
    region *r = p;
    /* On a loaded machine a worker can be woken late, and under dynamic schedules the
     * others then take its share; all start together here, as on idle cores. */
    if (start_together) {
#pragma omp barrier
    }
    tl_nloops = 0, tl_loop = -1, tl_dyn = 0;
    double t0 = cpu_now();
    r->fn(r->data);
    chunk_done(); /* (a loop with nowait ends without a last call) */
    int id = omp_get_thread_num();
    if (id < MAX_T) r->t[id] = cpu_now() - t0, r->dyn[id] = tl_dyn;
    if (id == 0) r->team = omp_get_num_threads(), r->nloops = tl_nloops < MAX_LOOPS ? tl_nloops : MAX_LOOPS;
}

/* what the current node's regions added up to */
static double acc_main, acc_max, acc_mean, acc_sum;
static int acc_regions, acc_single;

void __wrap_GOMP_parallel(void (*fn)(void *), void *data, unsigned nthreads, unsigned flags) {
    if (omp_in_parallel()) {
        __real_GOMP_parallel(fn, data, nthreads, flags);
        return;
    }
    region r = {fn, data, {0}, {0}, 1, 0};
    __real_GOMP_parallel(timed_share, &r, nthreads, flags);
    /* the busiest member outside dynamic loops, plus the loops as simulated */
    double mx = 0, sum = 0;
    int team = r.team < MAX_T ? r.team : MAX_T;
    for (int i = 0; i < team; i++) {
        sum += r.t[i];
        if (r.t[i] - r.dyn[i] > mx) mx = r.t[i] - r.dyn[i];
    }
    for (int l = 0; l < r.nloops; l++) mx += simulate(l, team);
    acc_main += r.t[0];
    acc_max += mx;
    acc_mean += sum / team;
    acc_sum += sum;
    acc_regions++;
    acc_single += team == 1;
}

/* ---------------------------------------------------------------- per node */
typedef struct {
    double t1, serial, crit, sum, max, mean; /* minima over the repetitions */
    int regions, single;
    char kind[48];
} node_stat;

static node_stat *stats;
static int threads_now;
static double node_t0;

static void keep_min(double *dst, double v) {
    if (*dst < 0 || v < *dst) *dst = v;
}

static void probe(const st_net *net, int node, int after) {
    (void)net;
    if (omp_in_parallel()) return;
    if (!after) {
        acc_main = acc_max = acc_mean = acc_sum = 0;
        acc_regions = acc_single = 0;
        node_t0 = cpu_now();
        return;
    }
    double t = cpu_now() - node_t0;
    node_stat *s = &stats[node];
    if (threads_now == 1) {
        keep_min(&s->t1, t);
        return;
    }
    double serial = t - acc_main;
    keep_min(&s->serial, serial);
    keep_min(&s->crit, serial + acc_max);
    keep_min(&s->sum, serial + acc_sum);
    keep_min(&s->max, acc_max);
    keep_min(&s->mean, acc_mean);
    s->regions = acc_regions;
    s->single = acc_single;
}

static void kind_of(const st_node *n, char *buf, size_t len) {
    const char *op = n->op->name;
    if (!strcmp(op, "conv2d") || !strcmp(op, "conv1d")) {
        const st_conv_geom *g = &n->u.conv.geom;
        snprintf(buf, len, "conv %dx%d s%d%s", g->kh, g->kw, g->sh, g->groups > 1 ? " grouped" : "");
    } else {
        snprintf(buf, len, "%s", op);
    }
}

int main(int argc, char **argv) {
    int verbose = argc > 1 && !strcmp(argv[1], "-v");
    if (verbose) argc--, argv++;
    if (argc < 3) {
        fprintf(stderr, "usage: %s [-v] MODEL BATCH [REPS [THREADS]]\n", argv[0]);
        return 2;
    }
    start_together = !getenv("SCALE_PROFILE_NO_BARRIER");
    int batch = atoi(argv[2]), reps = argc > 3 ? atoi(argv[3]) : 5, T = argc > 4 ? atoi(argv[4]) : 2;
    if (T < 2 || T > MAX_T) T = 2;
    st_net *net;
    if (st_net_open(argv[1], &net) || st_net_init(net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s\n", st_errmsg());
        return 1;
    }
    int shape[4] = {batch, 0, 0, 0};
    const st_node *in = &net->nodes[0];
    for (int d = 0; d < in->ndim; d++) shape[d + 1] = in->shape[d];
    st_tensor *x = st_tensor_new(in->ndim + 1, shape);
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    stats = calloc((size_t)net->nnodes, sizeof *stats);
    for (int i = 0; i < net->nnodes; i++) {
        stats[i].t1 = stats[i].serial = stats[i].crit = stats[i].sum = stats[i].max = stats[i].mean = -1;
        kind_of(&net->nodes[i], stats[i].kind, sizeof stats[i].kind);
    }
    const st_tensor *y;
    int regions_fwd = 0, single_fwd = 0;
    for (int rep = 0; rep <= reps; rep++)
        for (int k = 0; k < 2; k++) {
            threads_now = k ? T : 1;
            st_set_threads(threads_now);
            st_run_probe = rep ? probe : NULL; /* the first round warms up */
            if (st_net_run(net, x, &y)) {
                fprintf(stderr, "%s\n", st_errmsg());
                return 1;
            }
        }
    st_run_probe = NULL;
    /* totals and kinds */
    typedef struct {
        char kind[48];
        int count, regions, single;
        double t1, serial, crit, sum, max, mean;
    } kind_stat;
    kind_stat ks[64];
    int nk = 0;
    double tot1 = 0, totc = 0, tots = 0, totser = 0;
    if (verbose)
        printf("%-4s %-18s %-22s %8s %8s %8s %8s %6s %5s\n", "node", "name", "kind", "t1 ms", "serial", "crit",
               "sum/T", "imbal", "regs");
    for (int i = 1; i < net->nnodes; i++) {
        node_stat *s = &stats[i];
        if (s->t1 < 0 || s->crit < 0) continue; /* skipped (fused into another node) */
        regions_fwd += s->regions;
        single_fwd += s->single;
        tot1 += s->t1, totc += s->crit, tots += s->sum, totser += s->serial;
        if (verbose)
            printf("%-4d %-18.18s %-22s %8.3f %8.3f %8.3f %8.3f %6.2f %5d\n", i, net->nodes[i].name, s->kind,
                   s->t1 * 1e3, s->serial * 1e3, s->crit * 1e3, s->sum / T * 1e3, s->mean > 0 ? s->max / s->mean : 1,
                   s->regions);
        int k = 0;
        while (k < nk && strcmp(ks[k].kind, s->kind)) k++;
        if (k == nk) {
            if (nk == 64) continue;
            memset(&ks[nk], 0, sizeof ks[nk]);
            snprintf(ks[nk].kind, sizeof ks[nk].kind, "%s", s->kind);
            nk++;
        }
        ks[k].count++;
        ks[k].regions += s->regions, ks[k].single += s->single;
        ks[k].t1 += s->t1, ks[k].serial += s->serial, ks[k].crit += s->crit, ks[k].sum += s->sum;
        ks[k].max += s->max, ks[k].mean += s->mean;
    }
    printf("%s, batch %d, %d threads against 1 (CPU times, ms, minimum of %d)\n", argv[1], batch, T, reps);
    printf("%-22s %3s %8s %8s %8s %8s %6s %7s %8s\n", "kind", "n", "1 thread", "serial", "crit", "sum/T", "imbal",
           "speedup", "regions");
    for (int k = 0; k < nk; k++)
        printf("%-22s %3d %8.3f %8.3f %8.3f %8.3f %6.2f %6.2fx %4d/%d\n", ks[k].kind, ks[k].count, ks[k].t1 * 1e3,
               ks[k].serial * 1e3, ks[k].crit * 1e3, ks[k].sum / T * 1e3, ks[k].mean > 0 ? ks[k].max / ks[k].mean : 1,
               ks[k].t1 / ks[k].crit, ks[k].regions, ks[k].single);
    printf("%-22s %3s %8.3f %8.3f %8.3f %8.3f %6s %6.2fx %4d/%d\n", "total", "", tot1 * 1e3, totser * 1e3, totc * 1e3,
           tots / T * 1e3, "", tot1 / totc, regions_fwd, single_fwd);
    st_tensor_free(x);
    st_net_free(net);
    free(stats);
    return 0;
}
