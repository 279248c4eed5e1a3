/* test_gemm.c - st_sgemm against st_sgemm_ref on every micro-kernel this CPU runs.
 *
 * For each ISA path the CPU supports (portable, AVX2 + FMA, AVX-512; forced with
 * st_gemm_force_isa) and for the blocked path, the small-product path and the default
 * choice between them (st_gemm_force_small 0, 1, -1):
 * 1. Edge shapes: M, N and K around the register tile and the cache blocks (1, MR-1,
 *    MR, MR+1, NR-1, NR+1, KC-1, KC+1, ...), all four transpose combinations, beta 0, 1
 *    and 0.5, row strides larger than the matrix.
 * 2. Random shapes, small and medium, with the same random choices.
 * 3. Bit-identical results with 1, 2 and 3 threads, on shapes large enough for the
 *    threads to split the rows, the columns, or (small path) vectors of columns.
 * 4. In every check, st_sgemm_packed with op(A), op(B) or both packed beforehand
 *    (st_sgemm_pack) gives st_sgemm's result bit for bit, with any thread count; a
 *    packed copy made for another shape or another ISA is ignored.
 * 5. On the blocked path, st_sgemm_implicit (B's rows from a callback, as implicit im2col
 *    gives them) gives st_sgemm's result bit for bit, with any thread count.
 * 6. With an epilogue (st_gemm_epi: scale, shift, an added matrix, ReLU or leaky ReLU),
 *    st_sgemm_packed and st_sgemm_implicit give st_sgemm's result followed by
 *    st_epilogue_span on each row, bit for bit, with any thread count.
 * C starts as NaN where beta is 0 (beta 0 must overwrite, never multiply). The tolerance
 * is the rounding bound of any summation order: (K + 2) * FLT_EPSILON times
 * sum_k |a_ik b_kj| + |beta c_ij| (a wrong element is off by far more).
 * Everything is seeded: the same run on every machine.
 */
#include "internal.h"
#include "test.h"
#define TEST_SEED 0x9e3779b97f4a7c15ULL
#include "rand.h"

#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


static const char *isa_names[] = {"portable", "avx2", "avx512"};
static int cur_isa, cur_small; /* for the messages */
static const char *path_name(void) { return cur_small < 0 ? "" : cur_small ? " small" : " blocked"; }

/* One product: st_sgemm (1 thread, and 2 threads when threads_too) against the
 * reference. extra: added to every row stride. */
static float *packed_copy(int which, int trans, int rows, int K, const float *X, int ld) {
    float *p = st_aligned_alloc(sizeof(float) * st_sgemm_pack_size(which, rows, K));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    st_sgemm_pack(which, trans, rows, K, X, ld, p);
    return p;
}

/* 4: st_sgemm_packed against st_sgemm's result C (bit for bit) */
static void check_packed(int tA, int tB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float beta, const float *C0, const float *C, int ldc, int threads_too) {
    size_t nc = (size_t)M * ldc;
    float *C3 = alloc_f(nc);
    for (int which = 1; which <= 4; which++) {
        /* 1: A packed, 2: B packed, 3: both, 4: both packed for another shape (ignored) */
        int other = which == 4;
        /* (another shape: one k fewer, so that packing reads only inside the operand) */
        float *Ap = which & 1 || other ? packed_copy(0, tA, M, other ? K - 1 : K, A, lda) : NULL;
        float *Bp = which & 2 || other ? packed_copy(1, tB, N, other ? K - 1 : K, B, ldb) : NULL;
        for (int threads = 1; threads <= (threads_too ? 3 : 1); threads++) {
            memcpy(C3, C0, nc * sizeof(float));
            st_set_threads(threads);
            st_sgemm_packed(tA, tB, M, N, K, A, lda, Ap, B, ldb, Bp, beta, C3, ldc, NULL);
            st_set_threads(1);
            CHECK(!memcmp(C, C3, nc * sizeof(float)), "%s%s tA=%d tB=%d M=%d N=%d K=%d beta=%g: packed (%d) with %d threads differs",
                  isa_names[cur_isa], path_name(), tA, tB, M, N, K, beta, which, threads);
        }
        st_aligned_free(Ap);
        st_aligned_free(Bp);
    }
    free(C3);
}

/* 5: st_sgemm_implicit, B's rows handed over by a callback, against the blocked path's C
 * (bit for bit), with A packed beforehand or not, on 1 to 3 threads */
typedef struct { const float *B; int ldb; } stored_b;
static void rows_of_b(const void *ctx, int r, int x0, int n, float *dst) {
    const stored_b *sb = ctx;
    memcpy(dst, sb->B + (size_t)r * sb->ldb + x0, sizeof(float) * n);
}

static void check_implicit(int tA, int tB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, const float *C0, const float *C, int ldc, int threads_too) {
    size_t nc = (size_t)M * ldc;
    float *C3 = alloc_f(nc), *Ap = packed_copy(0, tA, M, K, A, lda);
    stored_b sb = {B, ldb};
    for (int packed = 0; packed <= 1; packed++)
        for (int threads = 1; threads <= (threads_too ? 3 : 1); threads++) {
            memcpy(C3, C0, nc * sizeof(float));
            st_set_threads(threads);
            st_sgemm_implicit(tA, tB, M, N, K, A, lda, packed ? Ap : NULL, rows_of_b, &sb, beta, C3, ldc, NULL);
            st_set_threads(1);
            CHECK(!memcmp(C, C3, nc * sizeof(float)), "%s tA=%d tB=%d M=%d N=%d K=%d beta=%g: implicit B (A packed: %d) with %d threads differs",
                  isa_names[cur_isa], tA, tB, M, N, K, beta, packed, threads);
        }
    st_aligned_free(Ap);
    free(C3);
}

/* 6: the epilogue applied by the product against st_sgemm's C then the epilogue, row by
 * row (bit for bit); the rows are channels c0 + i, the activation and the added matrix
 * vary with the shape */
static void check_epilogue(int tA, int tB, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float beta, const float *C0, const float *C, int ldc, int threads_too) {
    enum { C0_ROW = 3 };
    size_t nc = (size_t)M * ldc;
    float *E = alloc_f(nc), *C3 = alloc_f(nc), *add = alloc_f(nc), *scale = alloc_f((size_t)M + C0_ROW);
    float *shift = alloc_f((size_t)M + C0_ROW);
    for (int i = 0; i < M + C0_ROW; i++) { scale[i] = runif_pm1(); shift[i] = runif_pm1(); }
    for (size_t i = 0; i < nc; i++) add[i] = runif_pm1();
    int act = (M + N + K) % 3, with_add = (M + K) % 2;
    st_epilogue e = {scale, shift, NULL, act, 0.125f};
    st_gemm_epi q = {&e, C0_ROW, with_add ? add : NULL};
    memcpy(E, C, nc * sizeof(float));
    for (int i = 0; i < M; i++)
        st_epilogue_span(&e, E + (size_t)i * ldc, with_add ? add + (size_t)i * ldc : NULL, (size_t)N, C0_ROW + i);
    stored_b sb = {B, ldb};
    for (int implicit = 0; implicit <= (cur_small == 0); implicit++)
        for (int threads = 1; threads <= (threads_too ? 3 : 1); threads++) {
            memcpy(C3, C0, nc * sizeof(float));
            st_set_threads(threads);
            if (implicit) st_sgemm_implicit(tA, tB, M, N, K, A, lda, NULL, rows_of_b, &sb, beta, C3, ldc, &q);
            else st_sgemm_packed(tA, tB, M, N, K, A, lda, NULL, B, ldb, NULL, beta, C3, ldc, &q);
            st_set_threads(1);
            CHECK(!memcmp(E, C3, nc * sizeof(float)), "%s%s tA=%d tB=%d M=%d N=%d K=%d beta=%g act %d add %d: epilogue "
                  "(implicit %d) with %d threads differs", isa_names[cur_isa], path_name(), tA, tB, M, N, K, beta, act,
                  with_add, implicit, threads);
        }
    free(E); free(C3); free(add); free(scale); free(shift);
}

static void check(int tA, int tB, int M, int N, int K, int extra, float beta, int threads_too) {
    int lda = (tA ? M : K) + extra, ldb = (tB ? K : N) + extra, ldc = N + extra;
    size_t na = (size_t)(tA ? K : M) * lda, nb = (size_t)(tB ? N : K) * ldb, nc = (size_t)M * ldc;
    float *A = alloc_f(na), *B = alloc_f(nb), *C0 = alloc_f(nc), *C = alloc_f(nc), *R = alloc_f(nc);
    float *Aabs = alloc_f(na), *Babs = alloc_f(nb), *S = alloc_f(nc);
    for (size_t i = 0; i < na; i++) Aabs[i] = fabsf(A[i] = runif_pm1());
    for (size_t i = 0; i < nb; i++) Babs[i] = fabsf(B[i] = runif_pm1());
    for (size_t i = 0; i < nc; i++) C0[i] = beta == 0.0f ? NAN : runif_pm1();
    memcpy(C, C0, nc * sizeof(float));
    memcpy(R, C0, nc * sizeof(float));
    st_sgemm(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc);
    st_sgemm_ref(tA, tB, M, N, K, A, lda, B, ldb, beta, R, ldc);
    st_sgemm_ref(tA, tB, M, N, K, Aabs, lda, Babs, ldb, 0.0f, S, ldc);
    double worst = 0; /* error / bound */
    int bad_i = -1, bad_j = -1, untouched = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            size_t at = (size_t)i * ldc + j;
            double bound = (K + 2) * (double)FLT_EPSILON * (S[at] + (beta == 0.0f ? 0 : fabs(beta * C0[at]))) + 1e-30;
            double e = fabs((double)C[at] - R[at]) / bound;
            if (!(e <= worst)) { worst = e != e ? INFINITY : e; bad_i = i; bad_j = j; }
        }
        for (int j = N; j < ldc; j++) { /* the padding of each row is left alone */
            size_t at = (size_t)i * ldc + j;
            if (memcmp(&C[at], &C0[at], sizeof(float))) untouched = 0;
        }
    }
    CHECK(worst <= 1, "%s%s tA=%d tB=%d M=%d N=%d K=%d ld+%d beta=%g: C[%d][%d] off by %.3g x the bound",
          isa_names[cur_isa], path_name(), tA, tB, M, N, K, extra, beta, bad_i, bad_j, worst);
    CHECK(untouched, "%s%s tA=%d tB=%d M=%d N=%d K=%d ld+%d: wrote past N", isa_names[cur_isa], path_name(), tA, tB, M,
          N, K, extra);
    check_packed(tA, tB, M, N, K, A, lda, B, ldb, beta, C0, C, ldc, threads_too);
    if (cur_small == 0) check_implicit(tA, tB, M, N, K, A, lda, B, ldb, beta, C0, C, ldc, threads_too);
    check_epilogue(tA, tB, M, N, K, A, lda, B, ldb, beta, C0, C, ldc, threads_too);
    for (int threads = 2; threads_too && threads <= 3; threads++) {
        float *C2 = alloc_f(nc);
        memcpy(C2, C0, nc * sizeof(float));
        st_set_threads(threads);
        st_sgemm(tA, tB, M, N, K, A, lda, B, ldb, beta, C2, ldc);
        st_set_threads(1);
        CHECK(!memcmp(C, C2, nc * sizeof(float)), "%s%s tA=%d tB=%d M=%d N=%d K=%d beta=%g: %d threads differ from 1",
              isa_names[cur_isa], path_name(), tA, tB, M, N, K, beta, threads);
        free(C2);
    }
    free(A); free(B); free(C0); free(C); free(R); free(Aabs); free(Babs); free(S);
}

static float pick_beta(void) {
    int r = rint_in(0, 2);
    return r == 0 ? 0.0f : r == 1 ? 1.0f : 0.5f;
}

/* Sizes around a tile or block size t: 1, t-1, t, t+1, 2t+1 (positive ones). */
static int around(int t) {
    int c[5] = {1, t - 1, t, t + 1, 2 * t + 1};
    int v = c[rint_in(0, 4)];
    return v < 1 ? 1 : v;
}

static void one_path(int isa, int small) {
    int mr, nr, kc;
    st_gemm_blocking(&mr, &nr, &kc);
    cur_isa = isa;
    cur_small = small;
    /* 1. edges: one of M, N, K near its tile or block size, the others random */
    for (int i = 0; i < 120; i++) {
        int M = rint_in(1, 3 * mr), N = rint_in(1, 3 * nr), K = rint_in(1, 40);
        switch (i % 3) {
        case 0: M = around(mr); break;
        case 1: N = around(nr); break;
        default: K = around(kc); break;
        }
        if (i % 10 == 0) M = around(mr), N = around(nr);
        check(i & 1, (i >> 1) & 1, M, N, K, rint_in(0, 1) ? 0 : rint_in(1, 5), pick_beta(), 0);
    }
    /* 2. random shapes */
    for (int i = 0; i < 60; i++) {
        int big = i % 6 == 0;
        int M = rint_in(1, big ? 200 : 40), N = rint_in(1, big ? 200 : 80), K = rint_in(1, big ? 600 : 80);
        check(rint_in(0, 1), rint_in(0, 1), M, N, K, rint_in(0, 1) ? 0 : rint_in(1, 5), pick_beta(), 0);
    }
    /* 3. 1, 2 and 3 threads: rows split (M large), columns split (M small, N large; the
     * fourth also with A packed by the team together, choose_grid's share_a), a narrow
     * product, all with more than one K block */
    for (int t = 0; t < 4; t++) {
        check(t & 1, t >> 1, 4 * mr + 3, 3 * nr + 5, kc + 7, 2, pick_beta(), 1);
        check(t & 1, t >> 1, mr + 1, 8 * nr + 3, 2 * kc + 1, 0, pick_beta(), 1);
        check(t & 1, t >> 1, 7 * mr + 1, 32 * nr + 5, 4 * kc + 5, 1, pick_beta(), 1);
        check(t & 1, t >> 1, 2 * mr * 2 + 1, nr - 1, 300, 1, pick_beta(), 1);
        check(t & 1, t >> 1, 130, 257, 129, 0, pick_beta(), 1);
        check(t & 1, t >> 1, 300, nr + 3, 2 * kc + 5, 3, pick_beta(), 1);
    }
}

int main(void) {
    st_set_threads(1);
    printf("gemm: %s by default\n", st_gemm_isa_name());
    int paths = 0;
    for (int isa = ST_GEMM_PORTABLE; isa <= ST_GEMM_AVX512; isa++) {
        if (st_gemm_force_isa(isa) != 0) {
            printf("gemm: %s not supported by this CPU, skipped\n", isa_names[isa]);
            continue;
        }
        CHECK(!strcmp(st_gemm_isa_name(), isa_names[isa]), "forced %s, got %s", isa_names[isa], st_gemm_isa_name());
        for (int small = -1; small <= 1; small++) {
            st_gemm_force_small(small);
            one_path(isa, small);
        }
        st_gemm_force_small(-1);
        paths++;
        printf("gemm: %s checked\n", isa_names[isa]);
    }
    /* a copy packed under one ISA is ignored under another (its panels differ) */
    if (st_gemm_force_isa(ST_GEMM_AVX2) == 0) {
        int M = 50, N = 70, K = 300;
        float *A = alloc_f((size_t)M * K), *B = alloc_f((size_t)K * N), *C = alloc_f((size_t)M * N), *R = alloc_f((size_t)M * N);
        for (int i = 0; i < M * K; i++) A[i] = runif_pm1();
        for (int i = 0; i < K * N; i++) B[i] = runif_pm1();
        float *Ap = packed_copy(0, 0, M, K, A, K), *Bp = packed_copy(1, 0, N, K, B, N);
        for (int isa = ST_GEMM_PORTABLE; isa <= ST_GEMM_AVX512; isa++) {
            if (st_gemm_force_isa(isa) != 0) continue;
            st_sgemm(0, 0, M, N, K, A, K, B, N, 0.0f, R, N);
            st_sgemm_packed(0, 0, M, N, K, A, K, Ap, B, N, Bp, 0.0f, C, N, NULL);
            CHECK(!memcmp(C, R, sizeof(float) * M * N), "packed under avx2, run under %s: differs", isa_names[isa]);
        }
        st_aligned_free(Ap), st_aligned_free(Bp), free(A), free(B), free(C), free(R);
    }
    CHECK(st_gemm_force_isa(99) == -1, "an unknown ISA is refused");
    st_gemm_force_isa(-1);
    CHECK(paths >= 1, "the portable path always runs");
    st_set_threads(0);
    return test_done("test_gemm");
}
