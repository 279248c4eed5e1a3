/* conv_direct_kernels.h - the direct convolution's forward, input-gradient and
 * bias-gradient kernels for one vector width.
 *
 * Included by conv_direct.c once per width, with VW (lanes: 16, 8 or 4) defined: full
 * columns of the batch use the widest vectors, the last, partial column the narrowest
 * that holds it (a batch of 50 is 3 x 16 + 4 lanes rather than 4 x 16). Every name
 * defined here gets the suffix _VW (vec_16, fwd_block_16, fwd_fns_16, ...). The
 * weight-gradient tiles, which sum over all columns, are in conv_direct.c.
 *
 * Layout (see conv_direct.c): a column block holds one row of VW lanes per (channel,
 * row, column) of a plane; toff[r] is the offset of tap r = (ci, i, j) from a window's
 * origin in a block of the padded input, in floats, for VW = 1 (multiply by VW).
 *
 * Each kernel is written once with its register block size as a compile-time argument
 * (COB, CIB) and compiled for every size by the tables at the end; the loops over a
 * block are unrolled completely (UNROLL) so that its accumulators are registers.
 */
#define KCAT_(a, b) a##_##b
#define KCAT(a, b) KCAT_(a, b)
#define KN(name) KCAT(name, VW)
#define V KN(vec)

typedef float V __attribute__((vector_size(VW * sizeof(float)), aligned(4)));

/* unaligned load and store (a vector of floats may alias floats in GCC) */
INLINE V KN(vload)(const float *p) { return *(const V *)p; }
INLINE void KN(vstore)(float *p, V v) { *(V *)p = v; }

/* the lanes' sum, as a fixed tree */
INLINE float KN(hsum)(V v) {
#if VW == 16
    return hsum4(fold8(fold16((v16f)v)));
#elif VW == 8
    return hsum4(fold8((v8f)v));
#else
    return hsum4((v4f)v);
#endif
}

/* Forward, one block of COB output channels, one column block, every position.
 * yt: the block's first channel (channel stride P*VW); xt: the group's first input
 * channel; wk: the packed block (biases, then [r][c]); nc: real channels in the block. */
INLINE void KN(fwd_block)(const int COB, const dplan *d, const int *toff, float *yt, const float *xt,
                          const float *wk, int nc) {
    const st_conv_geom *g = d->g;
    size_t ycs = (size_t)d->P * VW;
    for (int y = 0; y < g->oh; y++)
        for (int x = 0; x < g->ow; x++) {
            const float *xo = xt + ((size_t)y * g->sh * d->wp + (size_t)x * g->sw) * VW;
            const float *wr = wk + COB;
            V acc[MAXB]; /* fixed size: COB is a constant here, the array lives in registers */
            UNROLL
            for (int c = 0; c < COB; c++) acc[c] = (V){0} + wk[c];
            for (int r = 0; r < d->K; r++, wr += COB) {
                V xv = KN(vload)(xo + (size_t)toff[r] * VW);
                UNROLL
                for (int c = 0; c < COB; c++) acc[c] += wr[c] * xv;
            }
            float *yo = yt + (size_t)(y * g->ow + x) * VW;
            UNROLL
            for (int c = 0; c < COB; c++)
                if (c < nc) KN(vstore)(yo + c * ycs, acc[c]);
        }
}

/* Input gradient, one block of CIB input channels, one column block, every input
 * position (p, q): the sum over the taps (i, j) whose output (y, x) read it.
 * dxt: the block's first channel (channel stride ih*iw*VW); gt: the group's first
 * output channel of dL/dout; wk: the packed block ([t][co][c]). */
INLINE void KN(dx_block)(const int CIB, const dplan *d, float *dxt, const float *gt, const float *wk, int nc) {
    const st_conv_geom *g = d->g;
    size_t dcs = (size_t)g->ih * g->iw * VW, ycs = (size_t)d->P * VW;
    for (int p = 0; p < g->ih; p++)
        for (int q = 0; q < g->iw; q++) {
            V acc[MAXB];
            UNROLL
            for (int c = 0; c < CIB; c++) acc[c] = (V){0};
            for (int i = 0; i < g->kh; i++) {
                int ty = p + g->pt - i * g->dh; /* = y * sh */
                if (ty < 0) break;
                if (ty % g->sh || ty / g->sh >= g->oh) continue;
                for (int j = 0; j < g->kw; j++) {
                    int tx = q + g->pl - j * g->dw;
                    if (tx < 0) break;
                    if (tx % g->sw || tx / g->sw >= g->ow) continue;
                    const float *go = gt + (size_t)(ty / g->sh * g->ow + tx / g->sw) * VW;
                    const float *wr = wk + (size_t)(i * g->kw + j) * d->opg * CIB;
                    for (int co = 0; co < d->opg; co++, wr += CIB) {
                        V gv = KN(vload)(go + co * ycs);
                        UNROLL
                        for (int c = 0; c < CIB; c++) acc[c] += wr[c] * gv;
                    }
                }
            }
            float *o = dxt + (size_t)(p * g->iw + q) * VW;
            UNROLL
            for (int c = 0; c < CIB; c++)
                if (c < nc) KN(vstore)(o + c * dcs, acc[c]);
        }
}

/* Bias gradient of nch channels (gt: the first, in the first of `ncols` column blocks
 * of block stride yblk): out[i] += hsum(sum of dout[i] over every position and lane). */
static void KN(db_cols)(const dplan *d, float *out, const float *gt, int nch, int ncols, size_t yblk) {
    for (int i = 0; i < nch; i++) {
        V acc[4] = {{0}}; /* four chains, so that the adds do not wait on each other */
        for (int col = 0; col < ncols; col++) {
            const float *p = gt + col * yblk + (size_t)i * d->P * VW;
            int q = 0;
            for (; q + 4 <= d->P; q += 4)
                for (int u = 0; u < 4; u++) acc[u] += KN(vload)(p + (size_t)(q + u) * VW);
            for (; q < d->P; q++) acc[0] += KN(vload)(p + (size_t)q * VW);
        }
        out[i] += KN(hsum)((acc[0] + acc[1]) + (acc[2] + acc[3]));
    }
}

/* the tables: fwd_fns_VW[b] / dx_fns_VW[b] for block size b = 1..MAXB */
#define X(B)                                                                                            \
    static void KCAT(KN(fwd), B)(const dplan *d, const int *t, float *y, const float *x, const float *w, \
                                 int nc) {                                                              \
        KN(fwd_block)(B, d, t, y, x, w, nc);                                                            \
    }                                                                                                   \
    static void KCAT(KN(dx), B)(const dplan *d, float *dx, const float *gy, const float *w, int nc) {   \
        KN(dx_block)(B, d, dx, gy, w, nc);                                                              \
    }
BLOCK_SIZES(X)
#undef X
#define X(B) KCAT(KN(fwd), B),
static const fwd_fn KN(fwd_fns)[MAXB + 1] = {NULL, BLOCK_SIZES(X)};
#undef X
#define X(B) KCAT(KN(dx), B),
static const dx_fn KN(dx_fns)[MAXB + 1] = {NULL, BLOCK_SIZES(X)};
#undef X
static const kernel_set KN(kernels) = {KN(fwd_fns), KN(dx_fns), KN(db_cols)};

#undef V
#undef KN
#undef KCAT
#undef KCAT_
