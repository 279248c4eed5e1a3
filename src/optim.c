/* optim.c - the optimisers SGD, Adam and AdamW, exactly as torch.optim (PyTorch 1.13,
 * single-tensor path, one parameter group), and gradient-norm clipping.
 *
 *   SGD:   g = grad + wd w;  v = mu v + g (v = g on the first step)
 *          d = nesterov ? g + mu v : v;   w -= lr d
 *   Adam:  t += 1;  g = grad + wd w
 *          m = b1 m + (1 - b1) g;   s = b2 s + (1 - b2) g^2
 *          w -= lr / (1 - b1^t) * m / (sqrt(s) / sqrt(1 - b2^t) + eps)
 *   AdamW: w *= 1 - lr wd  (decoupled decay), then Adam with g = grad
 *
 * Everything runs over the network's flat parameter arena (st_net_arenas), so each
 * optimiser is one loop and its state is one or two arena-sized buffers. The scalars
 * (bias corrections, step size) are computed in double as PyTorch computes them in
 * Python, then used in float as PyTorch's float32 kernels use them. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct st_optim {
    st_net *net;
    st_optim_conf conf;
    size_t n;
    long steps;          /* completed steps (PyTorch's state['step'] for Adam) */
    float *buf1;         /* SGD: momentum_buffer; Adam: exp_avg */
    float *buf2;         /* Adam: exp_avg_sq */
};

static const char *const kind_names[] = {"sgd", "adam", "adamw"};

static const char *kind_name(st_optim_kind k) {
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

void st_optim_defaults(st_optim_kind kind, st_optim_conf *c) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->lr = kind == ST_OPT_SGD ? 0.1f : 0.001f; /* (SGD has no default lr in PyTorch) */
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = kind == ST_OPT_ADAMW ? 0.01f : 0.0f;
}

static st_status check_conf(const st_optim_conf *c) {
    const char *k = kind_name(c->kind);
    if (c->kind != ST_OPT_SGD && c->kind != ST_OPT_ADAM && c->kind != ST_OPT_ADAMW)
        return st_fail(ST_ERR_ARG, "optimiser: unknown kind %d", (int)c->kind);
    if (!(c->lr >= 0) || !isfinite(c->lr)) return st_fail(ST_ERR_ARG, "%s: invalid learning rate %g", k, c->lr);
    if (!(c->weight_decay >= 0)) return st_fail(ST_ERR_ARG, "%s: invalid weight_decay %g", k, c->weight_decay);
    if (c->kind == ST_OPT_SGD) {
        if (!(c->momentum >= 0)) return st_fail(ST_ERR_ARG, "sgd: invalid momentum %g", c->momentum);
        if (c->nesterov && c->momentum <= 0) return st_fail(ST_ERR_ARG, "sgd: Nesterov momentum requires a momentum > 0");
    } else {
        if (!(c->beta1 >= 0 && c->beta1 < 1)) return st_fail(ST_ERR_ARG, "%s: invalid beta1 %g (need 0 <= beta1 < 1)", k, c->beta1);
        if (!(c->beta2 >= 0 && c->beta2 < 1)) return st_fail(ST_ERR_ARG, "%s: invalid beta2 %g (need 0 <= beta2 < 1)", k, c->beta2);
        if (!(c->eps >= 0)) return st_fail(ST_ERR_ARG, "%s: invalid eps %g", k, c->eps);
    }
    return ST_OK;
}

static int nbufs(const st_optim_conf *c) {
    if (c->kind == ST_OPT_SGD) return c->momentum > 0 ? 1 : 0;
    return 2;
}

st_status st_optim_new(st_net *net, const st_optim_conf *c, st_optim **out) {
    *out = NULL;
    st_status rc = check_conf(c);
    if (rc) return rc;
    float *v, *g;
    size_t n;
    if ((rc = st_net_arenas(net, &v, &g, &n))) return rc;
    st_optim *o = calloc(1, sizeof *o);
    if (!o) return st_fail(ST_ERR_NOMEM, "out of memory");
    o->net = net;
    o->conf = *c;
    o->n = n;
    int k = nbufs(c);
    if (k >= 1) o->buf1 = st_aligned_alloc(sizeof(float) * (n ? n : 1));
    if (k >= 2) o->buf2 = st_aligned_alloc(sizeof(float) * (n ? n : 1));
    if ((k >= 1 && !o->buf1) || (k >= 2 && !o->buf2)) {
        st_optim_free(o);
        return st_fail(ST_ERR_NOMEM, "%s: out of memory for %zu parameters of state", kind_name(c->kind), n);
    }
    *out = o;
    return ST_OK;
}

void st_optim_free(st_optim *o) {
    if (!o) return;
    st_aligned_free(o->buf1);
    st_aligned_free(o->buf2);
    free(o);
}

void st_optim_set_lr(st_optim *o, float lr) { o->conf.lr = lr; }
float st_optim_get_lr(const st_optim *o) { return o->conf.lr; }
long st_optim_steps(const st_optim *o) { return o->steps; }

static void sgd_step(st_optim *o, float *w, const float *g) {
    const float lr = o->conf.lr, mu = o->conf.momentum, wd = o->conf.weight_decay;
    float *v = o->buf1;
    const int first = o->steps == 0, nesterov = o->conf.nesterov;
    for (size_t i = 0; i < o->n; i++) {
        float gi = wd != 0 ? g[i] + wd * w[i] : g[i];
        if (v) {
            v[i] = first ? gi : mu * v[i] + gi;
            gi = nesterov ? gi + mu * v[i] : v[i];
        }
        w[i] -= lr * gi;
    }
}

static void adam_step(st_optim *o, float *w, const float *g) {
    const st_optim_conf *c = &o->conf;
    const double t = (double)(o->steps + 1);
    const double bc1 = 1 - pow((double)c->beta1, t), bc2 = 1 - pow((double)c->beta2, t);
    const float step_size = (float)((double)c->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    const float b1 = c->beta1, b2 = c->beta2, a1 = (float)(1 - (double)c->beta1), a2 = (float)(1 - (double)c->beta2);
    const float eps = c->eps, wd = c->weight_decay;
    const int adamw = c->kind == ST_OPT_ADAMW;
    const float decay = (float)(1 - (double)c->lr * c->weight_decay); /* AdamW: param.mul_(1 - lr * wd) */
    float *m = o->buf1, *s = o->buf2;
    for (size_t i = 0; i < o->n; i++) {
        float gi = g[i];
        if (adamw) {
            if (wd != 0) w[i] *= decay;
        } else if (wd != 0) {
            gi += wd * w[i];
        }
        m[i] = m[i] * b1 + a1 * gi;
        s[i] = s[i] * b2 + a2 * (gi * gi);
        float denom = sqrtf(s[i]) / bc2_sqrt + eps;
        w[i] += -step_size * (m[i] / denom);
    }
}

void st_optim_step(st_optim *o) {
    float *w, *g;
    size_t n;
    if (st_net_arenas(o->net, &w, &g, &n) || n != o->n) return;
    if (o->conf.kind == ST_OPT_SGD) sgd_step(o, w, g);
    else adam_step(o, w, g);
    o->steps++;
}

/* ---------------------------------------------------------------- state for checkpoints
 * Tensors "optim.momentum_buffer" (SGD with momentum, after the first step) or
 * "optim.exp_avg" and "optim.exp_avg_sq" (Adam, AdamW), each 1-D over the flat arena,
 * plus metadata "optim.kind" and "optim.step". The settings (lr, betas, ...) are the
 * caller's: they are not restored, so a resumed run may change them. */
static const char *buf_name(const st_optim *o, int k) {
    if (o->conf.kind == ST_OPT_SGD) return "optim.momentum_buffer";
    return k == 0 ? "optim.exp_avg" : "optim.exp_avg_sq";
}

/* The number of state buffers that hold something: SGD's momentum buffer is created by
 * the first step (as in PyTorch, where the state is empty before it). */
static int live_bufs(const st_optim *o) {
    int k = nbufs(&o->conf);
    return o->conf.kind == ST_OPT_SGD && o->steps == 0 ? 0 : k;
}

st_status st_optim_get_state(const st_optim *o, st_tensors *out) {
    char num[32];
    st_status rc = st_tensors_set_meta(out, "optim.kind", kind_name(o->conf.kind));
    snprintf(num, sizeof num, "%ld", o->steps);
    if (!rc) rc = st_tensors_set_meta(out, "optim.step", num);
    if (!rc && o->conf.kind == ST_OPT_SGD) rc = st_tensors_set_meta(out, "optim.momentum", o->conf.momentum > 0 ? "1" : "0");
    int len = (int)o->n;
    if (!rc && (size_t)len != o->n) return st_fail(ST_ERR_ARG, "optimiser state of %zu values is too large", o->n);
    for (int k = 0; !rc && k < live_bufs(o); k++)
        rc = st_tensors_add_f32(out, buf_name(o, k), 1, &len, k == 0 ? o->buf1 : o->buf2);
    return rc;
}

/* Checks ts against o without changing anything; *steps gets the step count. */
static st_status check_state(const st_optim *o, const st_tensors *ts, long *steps) {
    const char *kind = st_tensors_meta(ts, "optim.kind"), *step = st_tensors_meta(ts, "optim.step");
    if (!kind || !step) return st_fail(ST_ERR_FORMAT, "no optimiser state (metadata optim.kind and optim.step missing)");
    if (strcmp(kind, kind_name(o->conf.kind)))
        return st_fail(ST_ERR_ARG, "the optimiser state is for %s, not %s", kind, kind_name(o->conf.kind));
    char *end;
    long s = strtol(step, &end, 10);
    if (end == step || *end || s < 0) return st_fail(ST_ERR_FORMAT, "optim.step '%s' is not a step count", step);
    *steps = s;
    int want = nbufs(&o->conf);
    if (o->conf.kind == ST_OPT_SGD && s == 0) want = 0;
    for (int k = 0; k < nbufs(&o->conf); k++) {
        const char *name = buf_name(o, k);
        const st_array *a = st_tensors_get(ts, name);
        if (k >= want) {
            if (a) return st_fail(ST_ERR_FORMAT, "unexpected '%s' at step 0", name);
            continue;
        }
        if (!a) {
            if (o->conf.kind == ST_OPT_SGD)
                return st_fail(ST_ERR_ARG, "'%s' missing: the state is of SGD without momentum, this optimiser has momentum %g",
                               name, o->conf.momentum);
            return st_fail(ST_ERR_FORMAT, "'%s' missing", name);
        }
        if (a->dtype != ST_F32 || a->ndim != 1 || a->shape[0] != (int64_t)o->n)
            return st_fail(ST_ERR_SHAPE, "'%s' is %s with %lld values, the network has %zu parameters (float32 expected)",
                           name, st_dtype_name(a->dtype), (long long)st_array_numel(a), o->n);
    }
    /* SGD without momentum: a state with a momentum buffer does not fit either */
    if (o->conf.kind == ST_OPT_SGD && !want && s > 0 && st_tensors_get(ts, "optim.momentum_buffer"))
        return st_fail(ST_ERR_ARG, "the state has a momentum buffer, this SGD has no momentum");
    return ST_OK;
}

st_status st_optim_check_state(const st_optim *o, const st_tensors *ts) {
    long s;
    return check_state(o, ts, &s);
}

st_status st_optim_set_state(st_optim *o, const st_tensors *ts) {
    long steps = 0;
    st_status rc = check_state(o, ts, &steps);
    if (rc) return st_fail_prefix(rc, "optimiser state: ");
    for (int k = 0; k < nbufs(&o->conf); k++) {
        float *dst = k == 0 ? o->buf1 : o->buf2;
        const st_array *a = st_tensors_get(ts, buf_name(o, k));
        if (a) memcpy(dst, a->data, sizeof(float) * o->n);
        else memset(dst, 0, sizeof(float) * o->n);
    }
    o->steps = steps;
    return ST_OK;
}

/* ---------------------------------------------------------------- SGD, the older API */
struct st_sgd {
    st_optim *o;
};

st_status st_sgd_new(st_net *net, const st_sgd_conf *conf, st_sgd **out) {
    *out = NULL;
    st_optim_conf c;
    st_optim_defaults(ST_OPT_SGD, &c);
    c.lr = conf->lr;
    c.momentum = conf->momentum;
    c.weight_decay = conf->weight_decay;
    c.nesterov = conf->nesterov;
    st_sgd *s = calloc(1, sizeof *s);
    if (!s) return st_fail(ST_ERR_NOMEM, "out of memory");
    st_status rc = st_optim_new(net, &c, &s->o);
    if (rc) { free(s); return rc; }
    *out = s;
    return ST_OK;
}

void st_sgd_step(st_sgd *opt) { st_optim_step(opt->o); }

void st_sgd_free(st_sgd *opt) {
    if (!opt) return;
    st_optim_free(opt->o);
    free(opt);
}

/* ---------------------------------------------------------------- gradient clipping
 * torch.nn.utils.clip_grad_norm_(parameters, max_norm) with the L2 norm: the norm of
 * all gradients together; when it exceeds max_norm every gradient is multiplied by
 * max_norm / (norm + 1e-6). PyTorch multiplies by min(that, 1) always; multiplying by
 * 1 changes nothing, so we skip it. Sums in double. */
double st_net_clip_grad_norm(st_net *net, double max_norm) {
    float *w, *g;
    size_t n;
    if (st_net_arenas(net, &w, &g, &n)) return NAN;
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    /* PyTorch's norm is a float32 tensor: round as it does */
    float norm = (float)sqrt(ss);
    float coef = (float)max_norm / (norm + 1e-6f);
    if (coef < 1.0f || !isfinite(norm))
        for (size_t i = 0; i < n; i++) g[i] *= coef;
    return norm;
}
