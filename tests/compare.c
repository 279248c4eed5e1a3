/* compare.c - test helper: compares a result file with a reference file.
 *
 *   compare RESULT REFERENCE [TOL]
 *
 * Both .npy or both .safetensors. For safetensors every tensor of REFERENCE must be in
 * RESULT with the same shape. Pass: max |result - reference| <= TOL * (1 + max |reference|)
 * per tensor (TOL default 1e-5). Prints one line per tensor; exit status 0 only if all pass. */
#include "stride.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int compare_arrays(const char *name, const st_array *got, const st_array *ref, double tol) {
    st_tensor *g, *r;
    if (st_array_to_tensor(got, &g) || st_array_to_tensor(ref, &r)) {
        printf("FAIL %s: %s\n", name, st_errmsg());
        return 1;
    }
    int same = got->ndim == ref->ndim;
    for (int i = 0; same && i < ref->ndim; i++) same = got->shape[i] == ref->shape[i];
    int bad = 0;
    if (!same) {
        printf("FAIL %s: shapes differ\n", name);
        bad = 1;
    } else {
        double err = 0, mag = 0;
        size_t n = st_tensor_numel(r);
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)g->data[i] - r->data[i]);
            if (!(d <= err)) err = d;
            if (fabs(r->data[i]) > mag) mag = fabs(r->data[i]);
        }
        bad = !(err <= tol * (1 + mag));
        printf("%s %s: max error %.3g (allowed %.3g)\n", bad ? "FAIL" : "ok", name, err, tol * (1 + mag));
    }
    st_tensor_free(g);
    st_tensor_free(r);
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: compare RESULT REFERENCE [TOL]\n"); return 2; }
    double tol = argc > 3 ? atof(argv[3]) : 1e-5;
    int bad = 0;
    if (ends_with(argv[2], ".npy")) {
        st_array a, b;
        if (st_npy_load(argv[1], &a) || st_npy_load(argv[2], &b)) { printf("FAIL %s\n", st_errmsg()); return 1; }
        bad = compare_arrays(argv[2], &a, &b, tol);
        st_array_free(&a);
        st_array_free(&b);
    } else {
        st_tensors a, b;
        st_tensors_init(&a);
        st_tensors_init(&b);
        if (st_safetensors_load(argv[1], &a) || st_safetensors_load(argv[2], &b)) { printf("FAIL %s\n", st_errmsg()); return 1; }
        for (int i = 0; i < b.n; i++) {
            const st_array *x = st_tensors_get(&a, b.names[i]);
            if (!x) { printf("FAIL %s: missing from %s\n", b.names[i], argv[1]); bad = 1; continue; }
            bad |= compare_arrays(b.names[i], x, &b.arrays[i], tol);
        }
        st_tensors_free(&a);
        st_tensors_free(&b);
    }
    return bad;
}
