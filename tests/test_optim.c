/* test_optim.c - training pieces against PyTorch (fixtures from scripts/gen_optim_fixtures.py):
 * SGD/Adam/AdamW parameters after each of three steps, Adam's state, the learning rates of
 * PyTorch's schedulers over 200 steps, clip_grad_norm_, label-smoothed cross-entropy
 * (batch split into shards, ignore_index, per pixel) and its finite differences; then
 * checkpoints (exact resume, round trip, corrupt and mismatched files) and the NaN locator. */
#include "stride.h"
#include "fixture.h"
#include "net.h" /* nshards: the smoothing test must run split into shards */

#include <unistd.h>

#define FXO "tests/fixtures/optim/"
#define FXM "tests/fixtures/models/"

static st_tensor *load_npy(const char *path) {
    st_array a;
    st_tensor *t = NULL;
    if (st_npy_load(path, &a) == ST_OK) { st_array_to_tensor(&a, &t); st_array_free(&a); }
    return t;
}

static int32_t *load_labels(const char *path) {
    st_array a;
    int32_t *l = NULL;
    int64_t n;
    if (st_npy_load(path, &a) == ST_OK) { st_array_to_labels(&a, &l, &n); st_array_free(&a); }
    return l;
}

static st_net *open_model(const char *model) {
    char path[256];
    st_net *net = NULL;
    snprintf(path, sizeof path, FXM "%s.net", model);
    if (access(path, R_OK) != 0) snprintf(path, sizeof path, "%s", model); /* the zoo */
    if (st_net_open(path, &net)) { CHECK(0, "open %s: %s", model, st_errmsg()); return NULL; }
    snprintf(path, sizeof path, FXM "%s.weights.safetensors", model);
    if (st_net_load_weights(net, path)) { CHECK(0, "%s", st_errmsg()); st_net_free(net); return NULL; }
    return net;
}

/* Compares a float tensor with the fixture entry `name` (converted to float). */
static void cmp_entry(const st_tensors *ref, const char *name, const float *got, size_t n, const char *desc) {
    const st_array *a = st_tensors_get(ref, name);
    st_tensor *t = NULL;
    if (a) st_array_to_tensor(a, &t);
    if (!t || st_tensor_numel(t) != n) {
        CHECK(0, "%s: fixture entry '%s' missing or of another size", desc, name);
        st_tensor_free(t);
        return;
    }
    cmp(got, t->data, n, desc, name);
    st_tensor_free(t);
}

/* ---------------------------------------------------------------- optimisers */
/* Settings from the fixture's JSON metadata, e.g.
 * {"kind":"adamw","lr":0.01,"weight_decay":0.5,"betas":[0.8,0.99],"eps":1e-06,"lrs":[...]} */
static int read_conf(const char *js, st_optim_conf *c, double lrs[3], int *has_lrs) {
    char kind[16];
    if (!jstr(js, "kind", kind, sizeof kind)) return 0;
    st_optim_kind k = !strcmp(kind, "sgd") ? ST_OPT_SGD : !strcmp(kind, "adam") ? ST_OPT_ADAM : ST_OPT_ADAMW;
    st_optim_defaults(k, c);
    double v, b[2];
    if (jnum(js, "lr", &v)) c->lr = (float)v;
    if (jnum(js, "weight_decay", &v)) c->weight_decay = (float)v;
    if (jnum(js, "momentum", &v)) c->momentum = (float)v;
    if (jnum(js, "eps", &v)) c->eps = (float)v;
    if (jdpair(js, "betas", b)) { c->beta1 = (float)b[0]; c->beta2 = (float)b[1]; }
    const char *p = jfind(js, "nesterov");
    c->nesterov = p && !strncmp(p, "true", 4);
    p = jfind(js, "lrs");
    *has_lrs = p && sscanf(p, "[%lf,%lf,%lf]", &lrs[0], &lrs[1], &lrs[2]) == 3;
    return 1;
}

static void check_optim(const st_tensors *ref, const char *model) {
    static const char *const runs[] = {"adam", "adam_wd", "adamw", "adamw_wd", "sgd_nesterov"};
    char path[256], key[256];
    snprintf(path, sizeof path, FXM "%s.x.npy", model);
    st_tensor *x = load_npy(path);
    snprintf(path, sizeof path, FXM "%s.labels.npy", model);
    int32_t *labels = load_labels(path);
    CHECK(x && labels, "%s: batch loads", model);
    for (size_t r = 0; x && labels && r < sizeof runs / sizeof runs[0]; r++) {
        snprintf(key, sizeof key, "%s.%s", model, runs[r]);
        const char *js = st_tensors_meta(ref, key);
        st_optim_conf c;
        double lrs[3];
        int has_lrs;
        if (!js || !read_conf(js, &c, lrs, &has_lrs)) { CHECK(0, "%s: settings in the fixture", key); continue; }
        st_net *net = open_model(model);
        st_optim *opt = NULL;
        if (!net || st_optim_new(net, &c, &opt)) { CHECK(0, "%s: %s", key, st_errmsg()); st_net_free(net); continue; }
        for (int s = 0; s < 3; s++) {
            float L;
            if (has_lrs) st_optim_set_lr(opt, (float)lrs[s]);
            st_net_zero_grad(net);
            CHECK(st_net_step(net, x, ST_LOSS_CE, labels, NULL, &L, 0) == ST_OK, "%s: %s", key, st_errmsg());
            st_optim_step(opt);
            for (int i = 0; i < st_net_num_params(net); i++) {
                char name[400], desc[300];
                snprintf(name, sizeof name, "%s.step%d.%s", key, s + 1, st_net_param_name(net, i));
                snprintf(desc, sizeof desc, "%s after step %d", key, s + 1);
                st_tensor *v = st_net_param(net, i);
                cmp_entry(ref, name, v->data, st_tensor_numel(v), desc);
            }
        }
        CHECK(st_optim_steps(opt) == 3, "%s: step count %ld", key, st_optim_steps(opt));
        if (!strcmp(runs[r], "adam")) {
            /* the state: flat over the parameters in st_net_param order */
            st_tensors st;
            st_tensors_init(&st);
            CHECK(st_optim_get_state(opt, &st) == ST_OK, "%s", st_errmsg());
            const char *bufs[2] = {"exp_avg", "exp_avg_sq"};
            for (int k = 0; k < 2; k++) {
                char name[64];
                snprintf(name, sizeof name, "optim.%s", bufs[k]);
                const st_array *a = st_tensors_get(&st, name);
                CHECK(a && a->ndim == 1 && a->shape[0] == st_net_param_count(net), "%s: state '%s'", key, name);
                if (!a) continue;
                size_t at = 0;
                for (int i = 0; i < st_net_num_params(net); i++) {
                    char ename[256];
                    size_t n = st_tensor_numel(st_net_param(net, i));
                    snprintf(ename, sizeof ename, "%s.adam.%s.%s", model, bufs[k], st_net_param_name(net, i));
                    cmp_entry(ref, ename, (const float *)a->data + at, n, key);
                    at += n;
                }
            }
            const char *step = st_tensors_meta(&st, "optim.step"), *kind = st_tensors_meta(&st, "optim.kind");
            CHECK(step && !strcmp(step, "3") && kind && !strcmp(kind, "adam"), "%s: state metadata", key);
            st_tensors_free(&st);
        }
        st_optim_free(opt);
        st_net_free(net);
    }
    st_tensor_free(x);
    free(labels);
}

static void check_optim_errors(void) {
    st_net *net = open_model("mnist1d-cnn");
    if (!net) return;
    st_optim_conf c;
    st_optim *o = NULL;
    st_optim_defaults(ST_OPT_ADAM, &c);
    CHECK(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f && c.weight_decay == 0, "Adam defaults");
    st_optim_defaults(ST_OPT_ADAMW, &c);
    CHECK(c.weight_decay == 0.01f && c.lr == 0.001f, "AdamW defaults");
    c.beta2 = 1.0f;
    CHECK(st_optim_new(net, &c, &o) == ST_ERR_ARG && strstr(st_errmsg(), "beta2") && !o, "beta2 = 1 refused: %s", st_errmsg());
    st_optim_defaults(ST_OPT_SGD, &c);
    c.nesterov = 1;
    CHECK(st_optim_new(net, &c, &o) == ST_ERR_ARG && strstr(st_errmsg(), "Nesterov"), "Nesterov without momentum: %s", st_errmsg());
    c.nesterov = 0;
    c.lr = -1;
    CHECK(st_optim_new(net, &c, &o) == ST_ERR_ARG && strstr(st_errmsg(), "learning rate"), "negative lr: %s", st_errmsg());
    st_net_free(net);
}

/* ---------------------------------------------------------------- schedules */
static void check_schedules(void) {
    st_tensors ref;
    st_tensors_init(&ref);
    if (st_safetensors_load(FXO "schedules.safetensors", &ref)) { CHECK(0, "%s", st_errmsg()); return; }
    CHECK(ref.n >= 7, "schedules in the fixture: %d", ref.n);
    for (int i = 0; i < ref.n; i++) {
        const char *name = ref.names[i], *text = st_tensors_meta(&ref, name);
        char key[128];
        snprintf(key, sizeof key, "%s.base_lr", name);
        const char *base = st_tensors_meta(&ref, key);
        snprintf(key, sizeof key, "%s.total", name);
        const char *total = st_tensors_meta(&ref, key);
        const st_array *a = &ref.arrays[i];
        if (!text || !base || !total || a->dtype != ST_F64) { CHECK(0, "schedule %s: fixture metadata", name); continue; }
        st_schedule s;
        if (st_schedule_parse(text, atof(base), atol(total), &s)) { CHECK(0, "parse '%s': %s", text, st_errmsg()); continue; }
        /* relative error (measured: at most 2e-14; the chainable and closed forms differ only
         * by rounding), with an absolute floor of 1e-9 base_lr for rates near zero
         * (cosine's last steps: PyTorch's recursive form leaves rounding residue there) */
        const double *lr = a->data;
        double worst = 0;
        long at = -1;
        for (long t = 0; t < a->shape[0]; t++) {
            double got = st_schedule_lr(&s, t), err = fabs(got - lr[t]) / (fabs(lr[t]) + 1e-9 * s.base_lr);
            if (!(err <= worst)) { worst = err; at = t; }
        }
        CHECK(worst <= 1e-10, "schedule '%s': relative error %.3g at step %ld (%.10g vs PyTorch %.10g)", text, worst, at,
              at >= 0 ? st_schedule_lr(&s, at) : 0, at >= 0 ? lr[at] : 0);
    }
    st_tensors_free(&ref);

    /* errors name the bad part */
    static const struct { const char *text; long total; const char *needle; } bad[] = {
        {"step:x", 100, "'x'"},           {"bogus", 100, "'bogus'"},        {"multistep:30,20", 100, "20"},
        {"cosine", 0, "t_max"},           {"cosine,warmup=abc", 100, "'abc'"}, {"cosine,foo=1", 100, "'foo'"},
        {"step:10:-1", 100, "'-1'"},      {"multistep", 100, "milestones"},  {"cosine,warmup_start=2", 100, "'2'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_schedule s;
        st_status rc = st_schedule_parse(bad[i].text, 0.1, bad[i].total, &s);
        CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), bad[i].needle), "'%s' gives an error naming %s: %s", bad[i].text,
              bad[i].needle, st_errmsg());
    }
    st_schedule s;
    CHECK(st_schedule_parse("constant", 0.5, 0, &s) == ST_OK && st_schedule_lr(&s, 1000) == 0.5, "constant");
    CHECK(st_schedule_parse("cosine,warmup=500", 0.1, 1500, &s) == ST_OK && s.warmup == 500 && s.t_max == 1000 &&
              st_schedule_lr(&s, 500) == 0.1 && fabs(st_schedule_lr(&s, 1500) - 0) < 1e-12,
          "cosine,warmup=500 over 1500 steps: t_max %ld", s.t_max);
}

/* ---------------------------------------------------------------- clipping */
static void check_clip(void) {
    st_tensors ref;
    st_tensors_init(&ref);
    if (st_safetensors_load(FXO "clip.safetensors", &ref)) { CHECK(0, "%s", st_errmsg()); return; }
    st_tensor *x = load_npy(FXM "mnist1d-cnn.x.npy");
    int32_t *labels = load_labels(FXM "mnist1d-cnn.labels.npy");
    st_net *net = open_model("mnist1d-cnn");
    const char *tags[2] = {"max0.05", "max1000"};
    double maxes[2] = {0.05, 1000};
    for (int k = 0; net && x && labels && k < 2; k++) {
        st_net_zero_grad(net);
        st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
        for (int i = 0; k == 0 && i < st_net_num_params(net); i++) {
            char name[128];
            snprintf(name, sizeof name, "grad.%s", st_net_param_name(net, i));
            st_tensor *g = st_net_param_grad(net, i);
            cmp_entry(&ref, name, g->data, st_tensor_numel(g), "gradients before clipping");
        }
        double norm = st_net_clip_grad_norm(net, maxes[k]);
        char name[128];
        snprintf(name, sizeof name, "%s.norm", tags[k]);
        const st_array *n = st_tensors_get(&ref, name);
        double want = n ? *(const float *)n->data : NAN;
        CHECK(fabs(norm - want) <= 1e-6 * want, "clip %s: norm %.9g, PyTorch %.9g", tags[k], norm, want);
        CHECK(k == 0 ? norm > maxes[k] : norm < maxes[k], "clip %s: the case %s clipping", tags[k], k ? "without" : "with");
        for (int i = 0; i < st_net_num_params(net); i++) {
            snprintf(name, sizeof name, "%s.%s", tags[k], st_net_param_name(net, i));
            st_tensor *g = st_net_param_grad(net, i);
            cmp_entry(&ref, name, g->data, st_tensor_numel(g), "gradients after clip_grad_norm_");
        }
    }
    st_net_free(net);
    st_tensor_free(x);
    free(labels);
    st_tensors_free(&ref);
}

/* ---------------------------------------------------------------- label smoothing */
static void check_smoothing_case(const st_tensors *ref, const char *prefix, const char *model) {
    char key[128];
    snprintf(key, sizeof key, "%seps", prefix);
    const char *eps = st_tensors_meta(ref, key);
    snprintf(key, sizeof key, "%signore_index", prefix);
    const char *ign = st_tensors_meta(ref, key);
    snprintf(key, sizeof key, "%sx", prefix);
    const st_array *xa = st_tensors_get(ref, key);
    snprintf(key, sizeof key, "%slabels", prefix);
    const st_array *la = st_tensors_get(ref, key);
    st_net *net = open_model(model);
    st_tensor *x = NULL;
    int32_t *labels = NULL;
    int64_t nl;
    if (xa) st_array_to_tensor(xa, &x);
    if (la) st_array_to_labels(la, &labels, &nl);
    if (!net || !x || !labels || !eps || !ign) {
        CHECK(0, "%s: smoothing fixtures", model);
    } else {
        st_net_set_label_smoothing(net, (float)atof(eps));
        st_net_set_ignore_index(net, atoi(ign));
        for (int fused = 0; fused < 2; fused++) {
            float L = NAN;
            st_net_zero_grad(net);
            if (fused) {
                CHECK(st_net_step(net, x, ST_LOSS_CE, labels, NULL, &L, 1) == ST_OK, "%s", st_errmsg());
            } else {
                st_net_forward(net, x, 1, NULL);
                CHECK(st_net_loss(net, ST_LOSS_CE, labels, NULL, &L) == ST_OK, "%s", st_errmsg());
                st_net_backward(net, 1);
            }
            char desc[128];
            snprintf(desc, sizeof desc, "%s label smoothing %s (%d shard%s, %s)", model, eps, net->nshards,
                     net->nshards > 1 ? "s" : "", fused ? "st_net_step" : "forward, loss, backward");
            snprintf(key, sizeof key, "%sloss", prefix);
            cmp_entry(ref, key, &L, 1, desc);
            for (int i = 0; i < st_net_num_params(net); i++) {
                snprintf(key, sizeof key, "%sgrad.%s", prefix, st_net_param_name(net, i));
                st_tensor *g = st_net_param_grad(net, i);
                cmp_entry(ref, key, g->data, st_tensor_numel(g), desc);
            }
            snprintf(key, sizeof key, "%sinput", prefix);
            cmp_entry(ref, key, st_net_input_grad(net)->data, st_tensor_numel(x), desc);
        }
        if (!strcmp(model, "mnist1d-cnn")) CHECK(net->nshards == 2, "the batch of %d runs as 2 shards (got %d)", x->shape[0], net->nshards);
        /* smoothing off again: the loss changes (so the setting is really used) */
        float L0, L1;
        st_net_forward(net, x, 1, NULL);
        st_net_loss(net, ST_LOSS_CE, labels, NULL, &L1);
        st_net_set_label_smoothing(net, 0);
        st_net_loss(net, ST_LOSS_CE, labels, NULL, &L0);
        CHECK(L0 != L1, "%s: label smoothing changes the loss (%g vs %g)", model, L0, L1);
    }
    st_net_free(net);
    st_tensor_free(x);
    free(labels);
}

static void check_smoothing(void) {
    st_tensors ref;
    st_tensors_init(&ref);
    if (st_safetensors_load(FXO "smooth.safetensors", &ref)) { CHECK(0, "%s", st_errmsg()); return; }
    check_smoothing_case(&ref, "cnn.", "mnist1d-cnn");
    check_smoothing_case(&ref, "seg.", "seg");
    st_tensors_free(&ref);

    /* finite differences of the smoothed loss, in double, per position with ignored targets */
    enum { N = 3, C = 5, S = 4 };
    double z[N * C * S], d[N * C * S];
    int32_t lab[N * S];
    st_rng r;
    st_rng_seed(&r, 11);
    for (int i = 0; i < N * C * S; i++) z[i] = 2 * st_rng_normal(&r);
    for (int i = 0; i < N * S; i++) lab[i] = i % 5 == 3 ? -1 : (int32_t)st_rng_below(&r, C);
    const double eps = 0.15, scale = 1.0 / 10, h = 1e-6;
    st_cross_entropy_ls_sum_f64(z, lab, N, C, S, d, scale, -1, eps);
    double worst = 0;
    for (int i = 0; i < N * C * S; i++) {
        double keep = z[i];
        z[i] = keep + h;
        double lp = st_cross_entropy_ls_sum_f64(z, lab, N, C, S, NULL, scale, -1, eps) * scale;
        z[i] = keep - h;
        double lm = st_cross_entropy_ls_sum_f64(z, lab, N, C, S, NULL, scale, -1, eps) * scale;
        z[i] = keep;
        double err = fabs((lp - lm) / (2 * h) - d[i]);
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-8, "smoothed cross-entropy vs central differences: worst error %.3g", worst);
    /* float agrees with double */
    float zf[N * C * S], df[N * C * S], dd[N * C * S];
    for (int i = 0; i < N * C * S; i++) { zf[i] = (float)z[i]; dd[i] = (float)d[i]; }
    double Lf = st_cross_entropy_ls_sum(zf, lab, N, C, S, df, scale, -1, eps);
    double Ld = st_cross_entropy_ls_sum_f64(z, lab, N, C, S, NULL, scale, -1, eps);
    CHECK(fabs(Lf - Ld) < 1e-5 * (1 + fabs(Ld)), "float smoothed loss %.9g vs double %.9g", Lf, Ld);
    cmp(df, dd, N * C * S, "float smoothed gradient", "vs double");
}

/* ---------------------------------------------------------------- checkpoints */
static const char *NET_TEXT =
    "x = input(shape=(1, 12))\n"
    "fc1 = linear(out_features=16)\n"
    "bn = batch_norm1d()\n"
    "r = relu()\n"
    "drop = dropout(p=0.3)\n"
    "fc2 = linear(out_features=4)\n";

static st_net *ckpt_net(const char *text, uint64_t seed) {
    st_net *net = NULL;
    if (st_net_parse(text, "ckpt.net", &net)) { CHECK(0, "%s", st_errmsg()); return NULL; }
    st_net_init(net, ST_INIT_PYTORCH, seed);
    return net;
}

/* A training batch for step t (a function of t, so two runs see the same data). */
static void batch(int t, st_tensor *x, int32_t *labels) {
    st_rng r;
    st_rng_seed(&r, 1000 + (uint64_t)t);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    for (int i = 0; i < x->shape[0]; i++) labels[i] = (int32_t)st_rng_below(&r, 4);
}

static void train(st_net *net, st_optim *opt, const st_schedule *s, int from, int to) {
    st_tensor *x = st_tensor_new(2, (int[]){8, 12});
    int32_t labels[8];
    for (int t = from; t < to; t++) {
        batch(t, x, labels);
        st_optim_set_lr(opt, (float)st_schedule_lr(s, t));
        st_net_zero_grad(net);
        st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
        st_net_clip_grad_norm(net, 1.0);
        st_optim_step(opt);
    }
    st_tensor_free(x);
}

/* Are the weights, buffers (st_net_get_weights), optimiser state and RNG of a and b
 * bit for bit the same? */
static int same_state(const st_net *a, const st_optim *oa, const st_net *b, const st_optim *ob) {
    st_tensors ta, tb;
    st_tensors_init(&ta);
    st_tensors_init(&tb);
    st_net_get_weights(a, &ta);
    st_net_get_weights(b, &tb);
    if (oa) st_optim_get_state(oa, &ta);
    if (ob) st_optim_get_state(ob, &tb);
    int same = ta.n == tb.n && ta.n_meta == tb.n_meta;
    for (int i = 0; same && i < ta.n; i++) {
        const st_array *y = st_tensors_get(&tb, ta.names[i]);
        size_t bytes = (size_t)st_array_numel(&ta.arrays[i]) * st_dtype_size(ta.arrays[i].dtype);
        same = y && y->dtype == ta.arrays[i].dtype && st_array_numel(y) == st_array_numel(&ta.arrays[i]) &&
               !memcmp(y->data, ta.arrays[i].data, bytes);
    }
    for (int i = 0; same && i < ta.n_meta; i++) {
        const char *v = st_tensors_meta(&tb, ta.meta_keys[i]);
        same = v && !strcmp(v, ta.meta_vals[i]);
    }
    st_rng ra, rb;
    st_net_get_rng(a, &ra);
    st_net_get_rng(b, &rb);
    same = same && !memcmp(ra.s, rb.s, sizeof ra.s) && ra.has_gauss == rb.has_gauss && ra.gauss == rb.gauss;
    st_tensors_free(&ta);
    st_tensors_free(&tb);
    return same;
}

static int copy_prefix(const char *from, const char *to, long bytes) {
    FILE *f = fopen(from, "rb"), *g = fopen(to, "wb");
    int ok = f && g;
    for (long i = 0; ok && i < bytes; i++) {
        int c = fgetc(f);
        if (c == EOF) break;
        fputc(c, g);
    }
    if (f) fclose(f);
    if (g) fclose(g);
    return ok;
}

static void check_checkpoints(void) {
    char dir[] = "/tmp/stride-test-ckpt-XXXXXX";
    if (!mkdtemp(dir)) { CHECK(0, "temp folder"); return; }
    char path[128], bad[128];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/bad.ckpt", dir);
    st_schedule s;
    st_schedule_parse("cosine,warmup=3", 0.01, 12, &s);
    st_optim_conf c;
    st_optim_defaults(ST_OPT_ADAMW, &c);

    /* straight through: 12 steps */
    st_net *a = ckpt_net(NET_TEXT, 7), *b = ckpt_net(NET_TEXT, 99);
    st_optim *oa = NULL, *ob = NULL;
    if (!a || !b || st_optim_new(a, &c, &oa) || st_optim_new(b, &c, &ob)) { CHECK(0, "%s", st_errmsg()); goto done; }
    train(a, oa, &s, 0, 12);
    /* interrupted: 6 steps, checkpoint, a fresh net (other seed) and optimiser resume */
    st_net *m = ckpt_net(NET_TEXT, 7);
    st_optim *om = NULL;
    st_optim_new(m, &c, &om);
    train(m, om, &s, 0, 6);
    st_tensors meta;
    st_tensors_init(&meta);
    st_tensors_set_meta(&meta, "step", "6");
    st_tensors_set_meta(&meta, "schedule", "cosine,warmup=3");
    CHECK(st_checkpoint_save(path, m, om, &meta) == ST_OK, "save: %s", st_errmsg());
    st_tensors_free(&meta);
    st_tensors_init(&meta);
    CHECK(st_checkpoint_load(path, b, ob, &meta) == ST_OK, "load: %s", st_errmsg());
    CHECK(same_state(m, om, b, ob), "loaded state is bit-identical to the saved one (weights, buffers, optimiser, RNG)");
    const char *step = st_tensors_meta(&meta, "step");
    CHECK(step && !strcmp(step, "6") && st_tensors_meta(&meta, "schedule"), "metadata comes back: step %s", step ? step : "(none)");
    CHECK(st_optim_steps(ob) == 6, "optimiser step count %ld after resume", st_optim_steps(ob));
    st_tensors_free(&meta);
    train(b, ob, &s, 6, 12);
    CHECK(same_state(a, oa, b, ob), "resumed run ends bit-identical to the one that ran straight through");
    /* the resume is exact only because the RNG and step count came back: without the
     * checkpoint's RNG the dropout masks differ */
    st_net_free(m);
    st_optim_free(om);

    /* round trip after perturbing: load restores exactly what was saved */
    st_net *p = ckpt_net(NET_TEXT, 7);
    st_optim *op = NULL;
    st_optim_new(p, &c, &op);
    CHECK(st_checkpoint_load(path, p, op, NULL) == ST_OK, "%s", st_errmsg());
    st_net *ref = ckpt_net(NET_TEXT, 7);
    st_optim *oref = NULL;
    st_optim_new(ref, &c, &oref);
    st_checkpoint_load(path, ref, oref, NULL);
    train(p, op, &s, 6, 8); /* weights, buffers, moments, step count and RNG all move */
    CHECK(!same_state(p, op, ref, oref), "two more steps change the state");
    CHECK(st_checkpoint_load(path, p, op, NULL) == ST_OK, "%s", st_errmsg());
    CHECK(same_state(p, op, ref, oref), "save, perturb, load: bit-identical");

    /* bad files: clear errors, net and optimiser unchanged */
    train(p, op, &s, 6, 7);
    st_net *snap = ckpt_net(NET_TEXT, 1);
    st_optim *osnap = NULL;
    st_optim_new(snap, &c, &osnap);
    st_tensors t;
    st_tensors_init(&t);
    {
        /* a copy of p's current state, to compare against after each failed load */
        char cur[128];
        snprintf(cur, sizeof cur, "%s/cur.ckpt", dir);
        st_checkpoint_save(cur, p, op, NULL);
        st_checkpoint_load(cur, snap, osnap, NULL);
        CHECK(same_state(p, op, snap, osnap), "snapshot");
    }
    FILE *f = fopen(path, "rb");
    long size = 0;
    if (f) { fseek(f, 0, SEEK_END); size = ftell(f); fclose(f); }
    copy_prefix(path, bad, size - 100);
    st_status rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc == ST_ERR_FORMAT && strstr(st_errmsg(), "bad.ckpt"), "truncated checkpoint: %s (%s)", st_status_str(rc), st_errmsg());
    CHECK(same_state(p, op, snap, osnap), "net and optimiser unchanged after a truncated file");
    copy_prefix(path, bad, 5);
    rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc != ST_OK && strstr(st_errmsg(), "bad.ckpt"), "5-byte checkpoint: %s", st_errmsg());
    /* a corrupt header: overwrite bytes in the JSON */
    copy_prefix(path, bad, size);
    f = fopen(bad, "r+b");
    if (f) { fseek(f, 20, SEEK_SET); fputs("}}}}", f); fclose(f); }
    rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc == ST_ERR_FORMAT, "corrupt header: %s", st_errmsg());
    CHECK(same_state(p, op, snap, osnap), "unchanged after a corrupt header");
    /* another model (fc1 with 17 outputs) */
    char other_text[512];
    snprintf(other_text, sizeof other_text, "%s", NET_TEXT);
    char *q = strstr(other_text, "out_features=16");
    if (q) q[14] = '7';
    st_net *other = ckpt_net(other_text, 3);
    st_optim *oo = NULL;
    st_optim_new(other, &c, &oo);
    st_checkpoint_save(bad, other, oo, NULL);
    rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc != ST_OK && strstr(st_errmsg(), "fc1.weight"), "another model's checkpoint names fc1.weight: %s", st_errmsg());
    CHECK(same_state(p, op, snap, osnap), "unchanged after another model's checkpoint");
    st_net_free(other);
    st_optim_free(oo);
    /* another optimiser: an SGD-with-momentum checkpoint into AdamW, and back */
    st_optim_conf sc;
    st_optim_defaults(ST_OPT_SGD, &sc);
    sc.momentum = 0.9f;
    st_optim *osgd = NULL;
    st_optim_new(ref, &sc, &osgd);
    train(ref, osgd, &s, 0, 1);
    st_checkpoint_save(bad, ref, osgd, NULL);
    rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), "sgd") && strstr(st_errmsg(), "adamw"), "SGD state into AdamW: %s", st_errmsg());
    CHECK(same_state(p, op, snap, osnap), "unchanged after another optimiser's checkpoint (weights fit, state does not)");
    rc = st_checkpoint_load(path, ref, osgd, NULL);
    CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), "adamw"), "AdamW state into SGD: %s", st_errmsg());
    CHECK(st_checkpoint_load(path, ref, NULL, NULL) == ST_OK, "weights and RNG without an optimiser: %s", st_errmsg());
    st_optim_free(osgd);
    /* a weights file is not a checkpoint */
    st_net_save_weights(p, bad);
    rc = st_checkpoint_load(bad, p, op, NULL);
    CHECK(rc == ST_ERR_FORMAT && strstr(st_errmsg(), "not a stride checkpoint"), "weights file: %s", st_errmsg());
    /* reserved metadata keys */
    st_tensors_set_meta(&t, "optim.step", "5");
    rc = st_checkpoint_save(bad, p, op, &t);
    CHECK(rc == ST_ERR_ARG && strstr(st_errmsg(), "optim.step"), "reserved key refused: %s", st_errmsg());
    CHECK(same_state(p, op, snap, osnap), "unchanged at the end");
    st_tensors_free(&t);
    st_net_free(snap);
    st_optim_free(osnap);
    st_net_free(p);
    st_optim_free(op);
    st_net_free(ref);
    st_optim_free(oref);
done:
    st_net_free(a);
    st_net_free(b);
    st_optim_free(oa);
    st_optim_free(ob);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* ---------------------------------------------------------------- NaN and Inf */
/* The first node whose output is not finite, by the public API: the locator's answer. */
static int first_bad_node(const st_net *net) {
    for (int i = 0; i < st_net_num_nodes(net); i++) {
        const st_tensor *o = st_net_node_output(net, i);
        for (size_t k = 0; o && k < st_tensor_numel(o); k++)
            if (!isfinite(o->data[k])) return i;
    }
    return -1;
}

static void check_nonfinite(void) {
    st_tensor *x = load_npy(FXM "mnist1d-cnn.x.npy");
    int32_t *labels = load_labels(FXM "mnist1d-cnn.labels.npy");
    st_net *net = open_model("mnist1d-cnn");
    char where[256];
    if (!net || !x || !labels) { CHECK(0, "fixtures"); goto done; }
    CHECK(st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0) == ST_OK, "%s", st_errmsg());
    CHECK(st_net_find_nonfinite(net, where, sizeof where) == ST_OK && !where[0], "all finite: '%s'", where);
    /* a NaN weight in conv2: relu turns NaN into 0 here (PyTorch's relu keeps it), so the
     * loss may stay finite, but the locator still finds where it appeared */
    int w2 = -1;
    for (int i = 0; i < st_net_num_params(net); i++)
        if (!strcmp(st_net_param_name(net, i), "conv2.weight")) w2 = i;
    st_tensor *w = st_net_param(net, w2);
    float keep = w->data[5];
    w->data[5] = NAN;
    st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
    st_status rc = st_net_find_nonfinite(net, where, sizeof where);
    CHECK(rc == ST_ERR_NUMERIC && strstr(where, "node 'conv2'") && strstr(where, "nan at index") &&
              !strcmp(st_errmsg(), where), "NaN in conv2.weight found as: %s", where);
    w->data[5] = keep;
    /* a NaN in the last layer's weights: the loss is NaN and the step fails */
    int wl = st_net_num_params(net) - 2;
    w = st_net_param(net, wl);
    keep = w->data[0];
    w->data[0] = NAN;
    st_net_zero_grad(net);
    rc = st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
    CHECK(rc == ST_ERR_NUMERIC, "a NaN weight in fc makes the step fail: %s", st_status_str(rc));
    rc = st_net_find_nonfinite(net, where, sizeof where);
    CHECK(rc == ST_ERR_NUMERIC && strstr(where, "node 'fc' (linear) output") && strstr(where, "index 0)"),
          "NaN in %s found as: %s", st_net_param_name(net, wl), where);
    w->data[0] = keep;
    /* a NaN only in a gradient */
    st_net_zero_grad(net);
    st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
    st_net_param_grad(net, 7)->data[3] = INFINITY;
    rc = st_net_find_nonfinite(net, where, sizeof where);
    char want[128];
    snprintf(want, sizeof want, "parameter '%s' gradient", st_net_param_name(net, 7));
    CHECK(rc == ST_ERR_NUMERIC && strstr(where, want) && strstr(where, "inf at index 3"), "Inf gradient found as: %s", where);
    /* a huge learning rate: the weights blow up and a later step overflows */
    st_optim_conf c;
    st_optim_defaults(ST_OPT_SGD, &c);
    c.lr = 1e30f;
    st_optim *o = NULL;
    st_optim_new(net, &c, &o);
    rc = ST_OK;
    int steps = 0;
    while (rc == ST_OK && steps < 5) {
        st_net_zero_grad(net);
        rc = st_net_step(net, x, ST_LOSS_CE, labels, NULL, NULL, 0);
        if (rc == ST_OK) st_optim_step(o);
        steps++;
    }
    CHECK(rc == ST_ERR_NUMERIC, "lr 1e30 fails within 5 steps (%d)", steps);
    int bad = first_bad_node(net);
    rc = st_net_find_nonfinite(net, where, sizeof where);
    snprintf(want, sizeof want, "node '%s'", bad >= 0 ? st_net_node_name(net, bad) : "?");
    CHECK(rc == ST_ERR_NUMERIC && bad > 0 && strstr(where, want), "huge lr: %s (first bad output: %s)", where, want);
    st_optim_free(o);
done:
    st_net_free(net);
    st_tensor_free(x);
    free(labels);
}

int main(void) {
    st_tensors ref;
    st_tensors_init(&ref);
    if (st_safetensors_load(FXO "optim.safetensors", &ref) == ST_OK) {
        check_optim(&ref, "mnist1d-cnn");
        check_optim(&ref, "bn");
    } else {
        CHECK(0, "%s", st_errmsg());
    }
    st_tensors_free(&ref);
    check_optim_errors();
    check_schedules();
    check_clip();
    check_smoothing();
    check_checkpoints();
    check_nonfinite();
    return test_done("test_optim");
}
