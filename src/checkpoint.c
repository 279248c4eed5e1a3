/* checkpoint.c - everything a run needs to continue exactly, in one .safetensors file:
 *
 *   "conv1.weight", ..., "bn1.running_mean", ...   weights and buffers by state_dict name
 *   "optim.momentum_buffer" or "optim.exp_avg", "optim.exp_avg_sq"
 *                                                  optimiser state over the flat arena
 *   "rng.state"                                    the net's dropout RNG: int64 (6,) =
 *                                                  xoshiro words s0..s3, has_gauss, the
 *                                                  cached normal's bits
 *   metadata "stride.checkpoint" = "1", "optim.kind", "optim.step", plus the caller's
 *   (step, epoch, settings).
 *
 * Saving is atomic (st_safetensors_save: temporary file, fsync, rename), so a run killed
 * while saving leaves the previous checkpoint. Loading checks the whole file against the
 * net and the optimiser before changing either. */
#include "net.h"

#include <stdlib.h>
#include <string.h>

#define CKPT_VERSION "1"
#define RNG_NAME "rng.state"

static int is_reserved(const char *name) {
    return !strncmp(name, "optim.", 6) || !strncmp(name, "rng.", 4) || !strncmp(name, "stride.", 7);
}

st_status st_checkpoint_save(const char *path, const st_net *net, const st_optim *opt, const st_tensors *extra_meta) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status rc = st_net_get_weights(net, &ts);
    if (!rc) rc = st_tensors_set_meta(&ts, "stride.checkpoint", CKPT_VERSION);
    if (!rc && opt) rc = st_optim_get_state(opt, &ts);
    if (!rc) {
        st_rng r;
        st_net_get_rng(net, &r);
        int64_t words[6];
        for (int i = 0; i < 4; i++) memcpy(&words[i], &r.s[i], 8);
        words[4] = r.has_gauss;
        memcpy(&words[5], &r.gauss, 8);
        st_array a = {ST_I64, 1, {6}, words};
        rc = st_tensors_add(&ts, RNG_NAME, &a);
    }
    for (int i = 0; !rc && extra_meta && i < extra_meta->n_meta; i++) {
        if (is_reserved(extra_meta->meta_keys[i]))
            rc = st_fail(ST_ERR_ARG, "checkpoint metadata key '%s' is reserved (optim.*, rng.*, stride.*)", extra_meta->meta_keys[i]);
        else
            rc = st_tensors_set_meta(&ts, extra_meta->meta_keys[i], extra_meta->meta_vals[i]);
    }
    if (!rc) rc = st_safetensors_save(path, &ts);
    st_tensors_free(&ts);
    if (rc) st_fail_prefix(rc, "checkpoint %s: ", path);
    return rc;
}

/* Checks the RNG entry and decodes it into *r. */
static st_status read_rng(const st_tensors *ts, st_rng *r) {
    const st_array *a = st_tensors_get(ts, RNG_NAME);
    if (!a) return st_fail(ST_ERR_FORMAT, "'" RNG_NAME "' missing");
    if (a->dtype != ST_I64 || a->ndim != 1 || a->shape[0] != 6)
        return st_fail(ST_ERR_FORMAT, "'" RNG_NAME "' must be int64 with 6 values, got %s with %lld",
                       st_dtype_name(a->dtype), (long long)st_array_numel(a));
    const int64_t *w = a->data;
    memset(r, 0, sizeof *r);
    for (int i = 0; i < 4; i++) memcpy(&r->s[i], &w[i], 8);
    if (!r->s[0] && !r->s[1] && !r->s[2] && !r->s[3]) return st_fail(ST_ERR_FORMAT, "'" RNG_NAME "' is all zero (not a valid state)");
    if (w[4] != 0 && w[4] != 1) return st_fail(ST_ERR_FORMAT, "'" RNG_NAME "' has_gauss is %lld (0 or 1 expected)", (long long)w[4]);
    r->has_gauss = (int)w[4];
    memcpy(&r->gauss, &w[5], 8);
    return ST_OK;
}

static st_status load_checked(const st_tensors *ts, st_net *net, st_optim *opt, st_tensors *meta_out) {
    const char *v = st_tensors_meta(ts, "stride.checkpoint");
    if (!v) return st_fail(ST_ERR_FORMAT, "not a stride checkpoint (no 'stride.checkpoint' metadata; a weights file loads with st_net_load_weights)");
    if (strcmp(v, CKPT_VERSION)) return st_fail(ST_ERR_FORMAT, "checkpoint version '%s' is not supported (this build reads " CKPT_VERSION ")", v);
    st_rng r;
    st_status rc = read_rng(ts, &r);
    if (rc) return rc;
    /* the weights are the entries that are not ours */
    st_tensors view = {0};
    view.names = malloc(sizeof *view.names * (ts->n ? ts->n : 1));
    view.arrays = malloc(sizeof *view.arrays * (ts->n ? ts->n : 1));
    if (!view.names || !view.arrays) { free(view.names); free(view.arrays); return st_fail(ST_ERR_NOMEM, "out of memory"); }
    for (int i = 0; i < ts->n; i++)
        if (!is_reserved(ts->names[i])) {
            view.names[view.n] = ts->names[i];
            view.arrays[view.n++] = ts->arrays[i];
        }
    view.cap = view.n;
    /* check everything, then change: weights first (their errors name the tensors), then
     * the optimiser state */
    rc = st_net_check_weights(net, &view);
    if (!rc && opt && (rc = st_optim_check_state(opt, ts))) st_fail_prefix(rc, "optimiser state: ");
    if (!rc) rc = st_net_set_weights(net, &view);
    free(view.names);
    free(view.arrays);
    if (rc) return rc;
    /* nothing below can fail on this file: it was all checked above */
    if (opt) st_optim_set_state(opt, ts);
    st_net_set_rng(net, &r);
    for (int i = 0; meta_out && i < ts->n_meta; i++)
        if ((rc = st_tensors_set_meta(meta_out, ts->meta_keys[i], ts->meta_vals[i]))) return rc;
    return ST_OK;
}

st_status st_checkpoint_load(const char *path, st_net *net, st_optim *opt, st_tensors *meta_out) {
    st_tensors ts;
    st_tensors_init(&ts);
    st_status rc = st_safetensors_load(path, &ts);
    if (!rc && (rc = load_checked(&ts, net, opt, meta_out))) st_fail_prefix(rc, "checkpoint %s: ", path);
    st_tensors_free(&ts);
    return rc;
}
