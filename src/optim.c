/* optim.c - stochastic gradient descent with momentum, Nesterov and weight decay,
 * exactly as torch.optim.SGD:
 *     g = grad + weight_decay * w
 *     v = momentum * v + g            (v = g on the first step)
 *     step = nesterov ? g + momentum * v : v
 *     w -= lr * step
 * It runs over the network's flat parameter arena, so it is one loop. */
#include "internal.h"

#include <stdlib.h>

struct st_sgd {
    st_net *net;
    st_sgd_conf conf;
    float *velocity;
    size_t n;
    int steps;
};

st_status st_sgd_new(st_net *net, const st_sgd_conf *conf, st_sgd **out) {
    *out = NULL;
    if (!(conf->lr >= 0) || !(conf->momentum >= 0) || !(conf->weight_decay >= 0))
        return st_fail(ST_ERR_ARG, "sgd: lr, momentum and weight_decay must be >= 0");
    if (conf->nesterov && conf->momentum <= 0) return st_fail(ST_ERR_ARG, "sgd: Nesterov momentum requires a momentum > 0");
    float *v, *g;
    size_t n;
    st_status rc = st_net_arenas(net, &v, &g, &n);
    if (rc) return rc;
    st_sgd *o = calloc(1, sizeof *o);
    if (!o) return st_fail(ST_ERR_NOMEM, "out of memory");
    o->net = net;
    o->conf = *conf;
    o->n = n;
    if (conf->momentum > 0) {
        o->velocity = st_aligned_alloc(sizeof(float) * (n ? n : 1));
        if (!o->velocity) { free(o); return st_fail(ST_ERR_NOMEM, "out of memory"); }
    }
    *out = o;
    return ST_OK;
}

void st_sgd_step(st_sgd *o) {
    float *w, *g;
    size_t n;
    if (st_net_arenas(o->net, &w, &g, &n) || n != o->n) return;
    const float lr = o->conf.lr, mu = o->conf.momentum, wd = o->conf.weight_decay;
    float *v = o->velocity;
    int first = o->steps == 0;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] + wd * w[i];
        if (v) {
            v[i] = first ? gi : mu * v[i] + gi;
            gi = o->conf.nesterov ? gi + mu * v[i] : v[i];
        }
        w[i] -= lr * gi;
    }
    o->steps++;
}

void st_sgd_free(st_sgd *o) {
    if (!o) return;
    st_aligned_free(o->velocity);
    free(o);
}
