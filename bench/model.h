/* model.h - opening a model and making its input, shared by the C benchmark programs in
 * bench/ (header only): the model from the zoo or a model file with PyTorch's default
 * initialisation, and a batch of standard-normal inputs drawn from a fixed seed, so every
 * program times the same network on the same data. */
#ifndef ST_BENCH_MODEL_H
#define ST_BENCH_MODEL_H

#include "stride.h"

#include <stdio.h>

/* The net, or NULL after printing why. */
static inline st_net *bench_open_model(const char *name) {
    st_net *net = NULL;
    if (st_net_open(name, &net) || st_net_init(net, ST_INIT_PYTORCH, 1)) {
        fprintf(stderr, "%s: %s\n", name, st_errmsg());
        st_net_free(net);
        return NULL;
    }
    return net;
}

/* A batch of inputs of the net's input shape, values N(0, 1) from seed 1. */
static inline st_tensor *bench_input(st_net *net, int batch) {
    int nd, shape[ST_MAX_DIMS];
    st_net_node_shape(net, 0, &nd, shape);
    shape[0] = batch;
    st_tensor *x = st_tensor_new(nd, shape);
    if (!x) return NULL;
    st_rng r;
    st_rng_seed(&r, 1);
    for (size_t i = 0; i < st_tensor_numel(x); i++) x->data[i] = (float)st_rng_normal(&r);
    return x;
}
#endif
