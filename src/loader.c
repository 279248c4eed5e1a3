/* loader.c - augmentation and the batch loader.
 *
 * Every random choice is a pure function of (seed, epoch, position): the epoch's order
 * comes from a generator seeded with mix(seed, epoch), sample k of the epoch is augmented
 * with a generator seeded with mix(seed, epoch, k). A batch is therefore the same whether
 * the background thread made it, st_loader_batch made it on the caller's thread, or a
 * resumed run seeked straight to it.
 *
 * Threading: two batch slots. The consumer holds the one it was last given (valid until
 * its next call); the producer thread fills the other, so it stays one batch ahead.
 * A mutex and two condition variables, no spinning; seek and free stop and join the
 * thread before touching the slots.
 *
 * Small batches are built on the caller's thread instead, in st_loader_next: a batch of
 * at most INLINE_MAX_FLOATS values (MNIST-1D's 100 x 40) is a few microseconds of
 * copying, less than handing it over costs (a futex wake-up and a third runnable thread
 * beside the training threads: measured 10 % of an MNIST-1D step). The batches are the
 * same either way; the time spent building them counts as waiting for data. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- seeds */
static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
enum { TAG_ORDER = 1, TAG_AUGMENT = 2 };
static uint64_t derive(uint64_t seed, uint64_t tag, int64_t epoch, int64_t pos) {
    return mix64(mix64(mix64(seed ^ (tag << 56)) + (uint64_t)epoch) + (uint64_t)pos);
}

/* ---------------------------------------------------------------- augmentation */
void st_augment_draw(const st_augment *a, int spatial_dims, st_rng *r, st_augment_params *p) {
    memset(p, 0, sizeof *p);
    if (!a) return;
    int two = spatial_dims == 2;
    if (a->crop_pad > 0) {
        uint32_t k = 2 * (uint32_t)a->crop_pad + 1;
        if (two) p->crop_dy = a->crop_pad - (int)st_rng_below(r, k);
        p->crop_dx = a->crop_pad - (int)st_rng_below(r, k);
    }
    if (a->translate > 0) {
        uint32_t k = 2 * (uint32_t)a->translate + 1;
        if (two) p->shift_dy = (int)st_rng_below(r, k) - a->translate;
        p->shift_dx = (int)st_rng_below(r, k) - a->translate;
    }
    if (a->hflip) p->flip = (int)(st_rng_u64(r) >> 63);
    if (a->circular_shift > 0) p->roll = (int)st_rng_below(r, 2 * (uint32_t)a->circular_shift + 1) - a->circular_shift;
}

/* Where output index o along an axis of length n reads from, or -1 (zero fill):
 * out = roll(flip(shift_t(shift_c(in)))), each shift moving content by +d. */
static void axis_map(int n, int dc, int dt, int flip, int roll, int *src) {
    for (int o = 0; o < n; o++) {
        int i = o;
        if (roll) { i = (i - roll) % n; if (i < 0) i += n; }
        if (flip) i = n - 1 - i;
        i -= dt;
        if (i < 0 || i >= n) { src[o] = -1; continue; }
        i -= dc;
        src[o] = i < 0 || i >= n ? -1 : i;
    }
}

/* The index maps of one transform; rows (h) and columns (w). */
enum { MAX_SIDE = 4096 };
static int maps(const st_augment_params *p, int h, int w, int *ry, int *cx) {
    if (h > MAX_SIDE || w > MAX_SIDE) return -1;
    axis_map(h, p->crop_dy, p->shift_dy, 0, 0, ry);
    axis_map(w, p->crop_dx, p->shift_dx, p->flip, p->roll, cx);
    return 0;
}

static int is_identity(const st_augment_params *p) {
    return !p->crop_dy && !p->crop_dx && !p->shift_dy && !p->shift_dx && !p->flip && !p->roll;
}

/* planes of (h, w) floats; large sides fall back to per-element index arithmetic */
static void apply_planes(const st_augment_params *p, int planes, int h, int w, const float *in, float *out) {
    size_t hw = (size_t)h * w;
    if (is_identity(p)) { memcpy(out, in, sizeof(float) * hw * planes); return; }
    int ry[MAX_SIDE], cx[MAX_SIDE];
    if (maps(p, h, w, ry, cx)) { /* sides over MAX_SIDE: unsupported sizes copy unchanged */
        memcpy(out, in, sizeof(float) * hw * planes);
        return;
    }
    for (int c = 0; c < planes; c++) {
        const float *pi = in + c * hw;
        float *po = out + c * hw;
        for (int y = 0; y < h; y++) {
            float *row = po + (size_t)y * w;
            if (ry[y] < 0) { memset(row, 0, sizeof(float) * w); continue; }
            const float *srow = pi + (size_t)ry[y] * w;
            for (int x = 0; x < w; x++) row[x] = cx[x] < 0 ? 0.0f : srow[cx[x]];
        }
    }
}

void st_augment_apply(const st_augment_params *p, int ndim, const int *shape, const float *in, float *out) {
    /* (C, L) is one row per channel; (C, H, W) planes; extra leading dims fold into C */
    int h = ndim >= 3 ? shape[ndim - 2] : 1, w = shape[ndim - 1], planes = 1;
    for (int i = 0; i < ndim - (ndim >= 3 ? 2 : 1); i++) planes *= shape[i];
    apply_planes(p, planes, h, w, in, out);
}

void st_augment_apply_labels(const st_augment_params *p, int h, int w, const int32_t *in, int32_t *out, int32_t fill) {
    size_t hw = (size_t)h * w;
    int ry[MAX_SIDE], cx[MAX_SIDE];
    if (is_identity(p) || maps(p, h, w, ry, cx)) { memcpy(out, in, sizeof(int32_t) * hw); return; }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            out[(size_t)y * w + x] = ry[y] < 0 || cx[x] < 0 ? fill : in[(size_t)ry[y] * w + cx[x]];
}

/* ---------------------------------------------------------------- the loader */
typedef struct {
    st_tensor *x, *targets;
    int32_t *labels;
    int64_t epoch, batch;
    int ready;
} slot;

struct st_loader {
    const st_dataset *d;
    int batch, shuffle, drop_last, augment;
    st_augment aug;
    uint64_t seed;
    int64_t per_epoch, sample, lps, tps; /* batches per epoch; floats, labels, targets per sample */
    slot slots[2];
    int held;                 /* slot the consumer holds, -1 none */
    int64_t next_epoch, next_batch;    /* what st_loader_next returns next */
    int64_t prod_epoch, prod_batch;    /* what the producer makes next */
    int *perm;                /* producer's order, for perm_epoch */
    int64_t perm_epoch;
    pthread_t thread;
    int inline_build;         /* 1: no thread, st_loader_next builds the batch itself */
    int running, stop;
    pthread_mutex_t mu;
    pthread_cond_t can_fill, filled;
    double wait;
};

int64_t st_loader_batches_per_epoch(const st_loader *l) { return l->per_epoch; }
double st_loader_wait_seconds(const st_loader *l) { return l->wait; }
void st_loader_tell(const st_loader *l, int64_t *epoch, int64_t *batch) {
    *epoch = l->next_epoch;
    *batch = l->next_batch;
}

static void order(const st_loader *l, int64_t epoch, int *perm) {
    for (int i = 0; i < l->d->n; i++) perm[i] = i;
    if (!l->shuffle) return;
    st_rng r;
    st_rng_seed(&r, derive(l->seed, TAG_ORDER, epoch, 0));
    st_rng_shuffle(&r, perm, l->d->n);
}

/* Builds (epoch, batch) with the epoch's order `perm`. */
/* Samples are copied in the epoch's shuffled order, from all over the data set; the
 * copy of sample i first asks for the cache lines of sample i + PREFETCH_AHEAD (the
 * first PREFETCH_MAX_BYTES of it), so that small samples do not wait for memory one
 * after the other. */
#define PREFETCH_AHEAD 8
#define PREFETCH_MAX_BYTES 4096
static void build(const st_loader *l, int64_t epoch, int64_t b, const int *perm, st_tensor *x, int32_t *labels,
                  st_tensor *targets) {
    const st_dataset *d = l->d;
    int64_t start = b * l->batch, end = start + l->batch;
    if (end > d->n) end = d->n;
    int bs = (int)(end - start);
    x->shape[0] = bs;
    if (targets) targets->shape[0] = bs;
    int spatial = d->ndim == 3 ? 2 : 1;
    int h = spatial == 2 ? d->shape[1] : 1, w = d->shape[d->ndim - 1];
    size_t bytes = sizeof(float) * l->sample;
    for (int i = 0; i < bs; i++) {
        int64_t pos = start + i;
        int s = perm[pos];
        if (i + PREFETCH_AHEAD < bs) { /* the samples are scattered: ask for a later one's lines now */
            const char *ahead = (const char *)(d->x + (size_t)perm[pos + PREFETCH_AHEAD] * l->sample);
            for (size_t at = 0; at < bytes && at < PREFETCH_MAX_BYTES; at += 64) __builtin_prefetch(ahead + at);
        }
        const float *xs = d->x + (size_t)s * l->sample;
        float *xo = x->data + (size_t)i * l->sample;
        st_augment_params p = {0};
        if (l->augment) {
            st_rng r;
            st_rng_seed(&r, derive(l->seed, TAG_AUGMENT, epoch, pos));
            st_augment_draw(&l->aug, spatial, &r, &p);
        }
        if (l->augment) st_augment_apply(&p, d->ndim, d->shape, xs, xo);
        else memcpy(xo, xs, bytes);
        if (d->kind == ST_TARGET_CLASS) labels[i] = d->labels[s];
        else if (d->kind == ST_TARGET_MASK)
            st_augment_apply_labels(&p, h, w, d->labels + (size_t)s * l->lps, labels + (size_t)i * l->lps, 0);
        else
            st_augment_apply(&p, d->tndim, d->tshape, d->targets + (size_t)s * l->tps,
                             targets->data + (size_t)i * l->tps);
    }
}

static void *producer(void *arg) {
    st_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int k = -1;
        while (!l->stop) {
            for (int i = 0; i < 2; i++)
                if (i != l->held && !l->slots[i].ready) { k = i; break; }
            if (k >= 0) break;
            pthread_cond_wait(&l->can_fill, &l->mu);
        }
        if (l->stop) break;
        int64_t e = l->prod_epoch, b = l->prod_batch;
        pthread_mutex_unlock(&l->mu);
        /* the slot is ours alone until ready is set */
        if (l->perm_epoch != e) { order(l, e, l->perm); l->perm_epoch = e; }
        slot *s = &l->slots[k];
        build(l, e, b, l->perm, s->x, s->labels, s->targets);
        s->epoch = e;
        s->batch = b;
        pthread_mutex_lock(&l->mu);
        s->ready = 1;
        if (++l->prod_batch == l->per_epoch) { l->prod_batch = 0; l->prod_epoch++; }
        pthread_cond_signal(&l->filled);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* The choice between the prefetch thread and building on the caller's thread: -1 by
 * size (the default), 0 always the thread, 1 always the caller's thread. */
#define INLINE_MAX_FLOATS 16384
static int force_inline = -1;
void st_loader_force_inline(int mode) { force_inline = mode; }

static void stop_thread(st_loader *l) {
    if (!l->running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->can_fill);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = 0;
    l->stop = 0;
}

static st_status start_thread(st_loader *l) {
    l->slots[0].ready = l->slots[1].ready = 0;
    l->held = -1;
    if (l->inline_build) return ST_OK;
    l->prod_epoch = l->next_epoch;
    l->prod_batch = l->next_batch;
    l->stop = 0;
    int rc = pthread_create(&l->thread, NULL, producer, l);
    if (rc) return st_fail(ST_ERR_STATE, "loader: cannot start the prefetch thread (error %d)", rc);
    l->running = 1;
    return ST_OK;
}

static void free_slots(st_loader *l) {
    for (int i = 0; i < 2; i++) {
        st_tensor_free(l->slots[i].x);
        st_tensor_free(l->slots[i].targets);
        free(l->slots[i].labels);
    }
}

void st_loader_free(st_loader *l) {
    if (!l) return;
    stop_thread(l);
    free_slots(l);
    free(l->perm);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->can_fill);
    pthread_cond_destroy(&l->filled);
    free(l);
}

static st_status alloc_batch(const st_loader *l, st_tensor **x, int32_t **labels, st_tensor **targets) {
    const st_dataset *d = l->d;
    int shape[ST_MAX_DIMS + 1];
    shape[0] = l->batch;
    for (int i = 0; i < d->ndim; i++) shape[i + 1] = d->shape[i];
    *x = st_tensor_new(d->ndim + 1, shape);
    *labels = NULL;
    *targets = NULL;
    if (!*x) return ST_ERR_NOMEM;
    if (d->kind == ST_TARGET_DENSE) {
        for (int i = 0; i < d->tndim; i++) shape[i + 1] = d->tshape[i];
        if (!(*targets = st_tensor_new(d->tndim + 1, shape))) return ST_ERR_NOMEM;
    } else {
        size_t n = (size_t)l->batch * (size_t)l->lps;
        if (!(*labels = malloc(sizeof(int32_t) * n)))
            return st_fail(ST_ERR_NOMEM, "loader: out of memory for %zu labels", n);
    }
    return ST_OK;
}

st_status st_loader_new(const st_dataset *d, int batch, int shuffle, int drop_last, const st_augment *aug,
                        uint64_t seed, st_loader **out) {
    *out = NULL;
    if (!d || d->n < 1 || !d->x) return st_fail(ST_ERR_ARG, "loader: the data set is empty");
    if (d->ndim < 2 || d->ndim > 3)
        return st_fail(ST_ERR_SHAPE, "loader: samples must be (C, L) or (C, H, W), not %d-dimensional", d->ndim);
    if (batch < 1) return st_fail(ST_ERR_ARG, "loader: batch size %d (must be at least 1)", batch);
    if (drop_last && batch > d->n)
        return st_fail(ST_ERR_ARG, "loader: batch %d with drop_last leaves no batch of %d samples", batch, d->n);
    int h = d->ndim == 3 ? d->shape[1] : 1, w = d->shape[d->ndim - 1];
    int augment = aug && (aug->crop_pad || aug->hflip || aug->translate || aug->circular_shift);
    if (aug && (aug->crop_pad < 0 || aug->translate < 0 || aug->circular_shift < 0))
        return st_fail(ST_ERR_ARG, "loader: negative augmentation (crop_pad %d, translate %d, circular_shift %d)",
                       aug->crop_pad, aug->translate, aug->circular_shift);
    if (augment && (h > MAX_SIDE || w > MAX_SIDE))
        return st_fail(ST_ERR_SHAPE, "loader: augmentation supports sides up to %d, samples are %dx%d", MAX_SIDE, h, w);
    if (augment && d->kind == ST_TARGET_DENSE) {
        int sp = d->ndim - 1;
        if (d->tndim < sp || d->tshape[d->tndim - 1] != w || (sp == 2 && d->tshape[d->tndim - 2] != h)) {
            char a[96], b[96];
            return st_fail(ST_ERR_SHAPE, "loader: augmentation moves targets with the image, so targets %s must end "
                           "with the sample's spatial size (sample %s)", st_shape_str(d->tndim, d->tshape, a, sizeof a),
                           st_shape_str(d->ndim, d->shape, b, sizeof b));
        }
    }
    st_loader *l = calloc(1, sizeof *l);
    if (!l) return st_fail(ST_ERR_NOMEM, "loader: out of memory");
    l->d = d;
    l->batch = batch;
    l->shuffle = shuffle;
    l->drop_last = drop_last;
    l->augment = augment;
    if (aug) l->aug = *aug;
    l->seed = seed;
    l->per_epoch = drop_last ? d->n / batch : (d->n + batch - 1) / batch;
    l->sample = st_dataset_sample_size(d);
    l->lps = d->kind == ST_TARGET_CLASS ? 1 : d->kind == ST_TARGET_MASK ? (int64_t)h * w : 0;
    l->tps = 1;
    for (int i = 0; i < d->tndim; i++) l->tps *= d->tshape[i];
    l->perm_epoch = -1;
    l->held = -1;
    int64_t floats = (int64_t)batch * (l->sample + l->lps + l->tps * (d->kind == ST_TARGET_DENSE));
    l->inline_build = force_inline >= 0 ? force_inline : floats <= INLINE_MAX_FLOATS;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->can_fill, NULL);
    pthread_cond_init(&l->filled, NULL);
    st_status s = ST_OK;
    l->perm = malloc(sizeof(int) * (size_t)d->n);
    if (!l->perm) s = st_fail(ST_ERR_NOMEM, "loader: out of memory");
    for (int i = 0; i < 2 && !s; i++) s = alloc_batch(l, &l->slots[i].x, &l->slots[i].labels, &l->slots[i].targets);
    if (!s) s = start_thread(l);
    if (s) { st_loader_free(l); return s; }
    *out = l;
    return ST_OK;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* st_loader_next without the thread: the next batch into slot 0. */
static void next_inline(st_loader *l, slot *s) {
    double t0 = now();
    int64_t e = l->next_epoch;
    if (l->perm_epoch != e) { order(l, e, l->perm); l->perm_epoch = e; }
    build(l, e, l->next_batch, l->perm, s->x, s->labels, s->targets);
    if (++l->next_batch == l->per_epoch) { l->next_batch = 0; l->next_epoch++; }
    l->wait += now() - t0;
}

static st_status give(const slot *s, const st_tensor **x, const int32_t **labels, const st_tensor **targets) {
    if (x) *x = s->x;
    if (labels) *labels = s->labels;
    if (targets) *targets = s->targets;
    return ST_OK;
}

st_status st_loader_next(st_loader *l, const st_tensor **x, const int32_t **labels, const st_tensor **targets) {
    if (l->inline_build) {
        next_inline(l, &l->slots[0]);
        return give(&l->slots[0], x, labels, targets);
    }
    if (!l->running) { /* a seek could not restart the thread: try again */
        st_status s = start_thread(l);
        if (s) return s;
    }
    pthread_mutex_lock(&l->mu);
    if (l->held >= 0) { /* the batch given last time is no longer needed */
        l->slots[l->held].ready = 0;
        l->held = -1;
        pthread_cond_signal(&l->can_fill);
    }
    int k = -1;
    double t0 = 0;
    for (;;) {
        for (int i = 0; i < 2; i++)
            if (l->slots[i].ready && l->slots[i].epoch == l->next_epoch && l->slots[i].batch == l->next_batch) k = i;
        if (k >= 0) break;
        if (!t0) t0 = now();
        pthread_cond_wait(&l->filled, &l->mu);
    }
    if (t0) l->wait += now() - t0;
    l->held = k;
    if (++l->next_batch == l->per_epoch) { l->next_batch = 0; l->next_epoch++; }
    pthread_mutex_unlock(&l->mu);
    return give(&l->slots[k], x, labels, targets);
}

void st_loader_seek(st_loader *l, int64_t epoch, int64_t batch) {
    stop_thread(l);
    if (epoch < 0) epoch = 0;
    if (batch < 0) batch = 0;
    epoch += batch / l->per_epoch;
    batch %= l->per_epoch;
    l->next_epoch = epoch;
    l->next_batch = batch;
    start_thread(l); /* on failure st_loader_next tries again and reports */
}

st_status st_loader_batch(const st_loader *l, int64_t epoch, int64_t batch, st_tensor *x, int32_t *labels,
                          st_tensor *targets) {
    const st_dataset *d = l->d;
    if (epoch < 0 || batch < 0 || batch >= l->per_epoch)
        return st_fail(ST_ERR_ARG, "loader: no batch %lld of epoch %lld (%lld batches per epoch)", (long long)batch,
                       (long long)epoch, (long long)l->per_epoch);
    if (!x || x->ndim != d->ndim + 1 || (d->kind == ST_TARGET_DENSE ? !targets : !labels))
        return st_fail(ST_ERR_ARG, "loader: st_loader_batch needs x (and labels or targets) for %d samples", l->batch);
    int *perm = malloc(sizeof(int) * (size_t)d->n);
    if (!perm) return st_fail(ST_ERR_NOMEM, "loader: out of memory");
    order(l, epoch, perm);
    build(l, epoch, batch, perm, x, labels, targets);
    free(perm);
    return ST_OK;
}
