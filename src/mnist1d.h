/* mnist1d.h - internals of the MNIST-1D generator (src/mnist1d.c), shared with its tests:
 * NumPy's legacy RandomState (MT19937) and the per-example transform.
 * Specification: spec/mnist1d.md, section 1 (1.3 transform, 1.6 random numbers). */
#ifndef ST_MNIST1D_H
#define ST_MNIST1D_H

#include "internal.h"

/* ---------------------------------------------------------------- MT19937
 * Bit-exact copy of NumPy's legacy global generator (np.random.seed / rand / randn /
 * randint / permutation). */
#define ST_MT_N 624

typedef struct {
    uint32_t key[ST_MT_N];
    int pos;
    int has_gauss; /* the polar method makes two normals; the second is cached */
    double gauss;
} st_mt19937;

void st_mt_seed(st_mt19937 *r, uint32_t seed);    /* init_genrand; clears the cache */
uint32_t st_mt_next32(st_mt19937 *r);
double st_mt_uniform(st_mt19937 *r);              /* [0, 1), 53 bits from two draws */
double st_mt_gauss(st_mt19937 *r);                /* N(0, 1), Marsaglia polar */
uint32_t st_mt_interval(st_mt19937 *r, uint32_t max); /* 0..max inclusive, masked rejection */
void st_mt_permutation(st_mt19937 *r, int *a, int n); /* a = a permutation of 0..n-1 */

/* ---------------------------------------------------------------- generator */
#define ST_MNIST1D_TEMPLATE_LEN 12
#define ST_MNIST1D_CLASSES 10

/* The four scalar draws of one example (spec 1.3): padding, scale factor, shift, shear. */
typedef struct {
    int pad;
    double scale;
    int shift;
    double shear;
} st_mnist1d_draws;

typedef struct {
    st_mnist1d_args args;
    int work_len;  /* template_len + padding_max */
    double templates[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN];
    double kernel[17]; /* Gaussian, sigma 2, radius 8 */
    double *ramp;      /* (work_len,) linspace(-0.5, 0.5): the shear direction */
    double *buf;       /* scratch, 4 * work_len */
} st_mnist1d_ctx;

/* The 10 normalised templates (spec 1.2), float64, and their time axis. */
void st_mnist1d_templates(double x[ST_MNIST1D_CLASSES][ST_MNIST1D_TEMPLATE_LEN],
                          double t[ST_MNIST1D_TEMPLATE_LEN]);

/* Checks the arguments (ST_ERR_ARG) and allocates the scratch space. */
st_status st_mnist1d_ctx_init(st_mnist1d_ctx *c, const st_mnist1d_args *a);
void st_mnist1d_ctx_free(st_mnist1d_ctx *c);

/* One example of class `label` (steps 0-8 of spec 1.3): final_seq_length float64 values
 * into out, before the data-set normalisation. Writes the draws to d if d != NULL. */
void st_mnist1d_example(st_mnist1d_ctx *c, int label, st_mt19937 *rng, double *out,
                        st_mnist1d_draws *d);

#endif
