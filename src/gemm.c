/* gemm.c - single-precision matrix multiply, C = beta*C + op(A) op(B), row-major.
 *
 * The fast path follows the usual packed design: B is copied block by block into
 * panels of NR columns, A into panels of MR rows, and a register-tiled micro-kernel
 * computes an MR x NR tile of C with the k loop innermost. The micro-kernel is
 * written with GCC vector extensions, so the compiler emits AVX-512, AVX2 or SSE
 * for the target (-march). Every C element is summed over k in increasing order by
 * one thread, whatever the thread count: results are identical for 1 and N threads.
 *
 * Small products (M*N*K up to 16 M: the linear layers of the MNIST-1D models, 100 x 10
 * x 60 to 100 x 135 x 285) skip most of that: packing A and blocking cost more than the
 * multiply. gemm_small reads A in place, reads B in place too when it is not
 * transposed (the last vector of a row masked, with AVX-512), else packs op(B) into
 * rows of whole vectors (zero-padded), and keeps a tile of up to 6 rows x 4 vectors
 * of C in registers over the whole k loop. Which path runs depends on the shape
 * alone, never on the thread count.
 */
#include "internal.h"

#include <string.h>
#include <stdlib.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---------------------------------------------------------------- reference */
void st_sgemm_ref(int transA, int transB, int M, int N, int K,
                  const float *A, int lda, const float *B, int ldb,
                  float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = (beta == 0.0f ? 0.0f : beta * *c) + (float)acc;
        }
}

/* ---------------------------------------------------------------- blocked, packed */
#if defined(__AVX512F__)
#define VLEN 16
#define MR 6
#define NV 2 /* vectors per row of the tile: NR = 32 */
#elif defined(__AVX__)
#define VLEN 8
#define MR 6
#define NV 2 /* NR = 16 */
#else
#define VLEN 4
#define MR 4
#define NV 2 /* NR = 8 */
#endif
#define NR (VLEN * NV)
#define KC 256
#define MC (MR * 16)
#define NC (NR * 32)

typedef float vf __attribute__((vector_size(VLEN * sizeof(float)), aligned(4)));

/* unaligned vector load and store (a vector of floats may alias floats in GCC) */
static inline vf vload(const float *p) { return *(const vf *)p; }
static inline void vstore(float *p, vf v) { *(vf *)p = v; }

/* Ap: MR x kc panel stored k-major (Ap[k*MR + i]); Bp: kc x NR panel (Bp[k*NR + j]).
 * Computes the tile and adds it to C (m x n valid part, row stride ldc). */
static void micro_kernel(int kc, const float *restrict Ap, const float *restrict Bp,
                         float *restrict C, int ldc, int m, int n) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};
    for (int k = 0; k < kc; k++) {
        vf b[NV];
        for (int v = 0; v < NV; v++) b[v] = vload(Bp + k * NR + v * VLEN);
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++) acc[i][v] += Ap[k * MR + i] * b[v];
    }
    if (m == MR && n == NR) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++) {
                float *c = C + (size_t)i * ldc + v * VLEN;
                vstore(c, vload(c) + acc[i][v]);
            }
    } else {
        float tile[MR][NR];
        memcpy(tile, acc, sizeof tile);
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) C[(size_t)i * ldc + j] += tile[i][j];
    }
}

/* Packs rows [i0, i0+mc) x cols [p0, p0+kc) of op(A) into MR-row panels, zero-padded. */
static void pack_a(int transA, const float *A, int lda, int i0, int mc, int p0, int kc, float *Ap) {
    for (int ip = 0; ip < mc; ip += MR) {
        int m = mc - ip < MR ? mc - ip : MR;
        float *dst = Ap + (size_t)ip * kc;
        for (int k = 0; k < kc; k++) {
            for (int i = 0; i < m; i++) {
                size_t r = (size_t)(i0 + ip + i), c = (size_t)(p0 + k);
                dst[k * MR + i] = transA ? A[c * lda + r] : A[r * lda + c];
            }
            for (int i = m; i < MR; i++) dst[k * MR + i] = 0.0f;
        }
    }
}

/* Packs rows [p0, p0+kc) x cols [j0, j0+nc) of op(B) into NR-column panels, zero-padded. */
static void pack_b(int transB, const float *B, int ldb, int p0, int kc, int j0, int nc, float *Bp) {
    for (int jp = 0; jp < nc; jp += NR) {
        int n = nc - jp < NR ? nc - jp : NR;
        float *dst = Bp + (size_t)jp * kc;
        for (int k = 0; k < kc; k++) {
            size_t r = (size_t)(p0 + k);
            if (!transB && n == NR) {
                memcpy(dst + k * NR, B + r * ldb + j0 + jp, NR * sizeof(float));
                continue;
            }
            for (int j = 0; j < n; j++) {
                size_t c = (size_t)(j0 + jp + j);
                dst[k * NR + j] = transB ? B[c * ldb + r] : B[r * ldb + c];
            }
            for (int j = n; j < NR; j++) dst[k * NR + j] = 0.0f;
        }
    }
}

/* Packing buffers, one pair per thread, grown on demand and kept (no per-call malloc). */
static _Thread_local float *tl_ap, *tl_bp;

static int ensure_buffers(void) {
    if (!tl_ap) tl_ap = st_aligned_alloc(sizeof(float) * (size_t)MC * KC);
    if (!tl_bp) tl_bp = st_aligned_alloc(sizeof(float) * (size_t)KC * NC);
    return tl_ap && tl_bp;
}

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* Serial blocked GEMM over the column range [j_begin, j_end). */
static void gemm_serial(int transA, int transB, int M, int j_begin, int j_end, int K,
                        const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    for (int jc = j_begin; jc < j_end; jc += NC) {
        int nc = j_end - jc < NC ? j_end - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            pack_b(transB, B, ldb, pc, kc, jc, nc, tl_bp);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                pack_a(transA, A, lda, ic, mc, pc, kc, tl_ap);
                for (int jr = 0; jr < nc; jr += NR)
                    for (int ir = 0; ir < mc; ir += MR)
                        micro_kernel(kc, tl_ap + (size_t)ir * kc, tl_bp + (size_t)jr * kc,
                                     C + (size_t)(ic + ir) * ldc + jc + jr, ldc,
                                     mc - ir < MR ? mc - ir : MR, nc - jr < NR ? nc - jr : NR);
            }
        }
    }
}

/* C (+)= op(A) op(B) for rows [i0, i1) and columns [j0, j1) with plain loops: what runs
 * when there is no memory for the packing buffers. */
static void gemm_plain(int transA, int transB, int i0, int i1, int j0, int j1, int K,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc, int add) {
    for (int i = i0; i < i1; i++) {
        float *c = C + (size_t)i * ldc;
        if (!add)
            for (int j = j0; j < j1; j++) c[j] = 0.0f;
        for (int k = 0; k < K; k++) {
            float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
            for (int j = j0; j < j1; j++) c[j] += a * (transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
        }
    }
}

/* ---------------------------------------------------------------- small products */
#define SMALL_MR 6   /* rows of C per tile */
#define SMALL_NV 4   /* vectors of C per tile row */
/* M*N*K up to which gemm_small runs (while op(B) fits the 1 MB packing buffer).
 * Measured on Zen 4: 1.1 to 1.4 times the blocked path's speed on the MNIST-1D shapes,
 * and no slower up to 134 M (2048 x 256 x 256); 16 M leaves room for smaller caches. */
#ifndef SMALL_MAX_MACS
#define SMALL_MAX_MACS 16.0e6
#endif

#define INLINE static inline __attribute__((always_inline))
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 8")
#endif

/* Partial vectors: the first m lanes of p (the rest zero), and storing the first m
 * lanes of v to p (+= when add). Masked with AVX-512, through a buffer otherwise. */
#if defined(__AVX512F__) && VLEN == 16
#define MASKED_LOADS 1
#else
#define MASKED_LOADS 0
#endif
INLINE vf load_lanes(const float *p, int m) {
#if MASKED_LOADS
    return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), p);
#else
    float t[VLEN] = {0};
    memcpy(t, p, sizeof(float) * m);
    return vload(t);
#endif
}
INLINE void store_lanes(float *p, vf v, int m, int add) {
    if (m == VLEN) {
        vstore(p, add ? vload(p) + v : v);
        return;
    }
#if MASKED_LOADS
    __mmask16 k = (__mmask16)((1u << m) - 1);
    if (add) v += (vf)_mm512_maskz_loadu_ps(k, p);
    _mm512_mask_storeu_ps(p, k, (__m512)v);
#else
    float t[VLEN];
    memcpy(t, &v, sizeof t);
    for (int j = 0; j < m; j++) p[j] = add ? p[j] + t[j] : t[j];
#endif
}

/* C[0..MT) x [0..NT*VLEN) (+)= A (rows at stride ars, k at stride aks) x B (K rows of
 * stride ldb, of which the first nb columns are read); only the first n columns of C
 * are stored. MT, NT are constants at each call. */
INLINE void small_tile(const int MT, const int NT, int K, const float *A, size_t ars, size_t aks,
                       const float *B, int ldb, int nb, float *C, int ldc, int n, int add) {
    vf acc[SMALL_MR][SMALL_NV];
    UNROLL
    for (int i = 0; i < MT; i++)
        UNROLL
        for (int v = 0; v < NT; v++) acc[i][v] = (vf){0};
    int last = nb - (NT - 1) * VLEN; /* lanes of the last vector of a row */
    for (int k = 0; k < K; k++) {
        const float *brow = B + (size_t)k * ldb;
        vf b[SMALL_NV];
        UNROLL
        for (int v = 0; v < NT; v++)
            b[v] = v < NT - 1 || last >= VLEN ? vload(brow + v * VLEN) : load_lanes(brow + v * VLEN, last);
        UNROLL
        for (int i = 0; i < MT; i++)
            UNROLL
            for (int v = 0; v < NT; v++) acc[i][v] += A[i * ars + k * aks] * b[v];
    }
    UNROLL
    for (int i = 0; i < MT; i++)
        UNROLL
        for (int v = 0; v < NT; v++) {
            int m = n - v * VLEN;
            if (m > 0) store_lanes(C + (size_t)i * ldc + v * VLEN, acc[i][v], m < VLEN ? m : VLEN, add);
        }
}

typedef void (*small_fn)(int, const float *, size_t, size_t, const float *, int, int, float *, int, int, int);
#define SMALL_TILE(MT, NT)                                                                          \
    static void small_##MT##_##NT(int K, const float *A, size_t ars, size_t aks, const float *B,    \
                                  int ldb, int nb, float *C, int ldc, int n, int add) {             \
        small_tile(MT, NT, K, A, ars, aks, B, ldb, nb, C, ldc, n, add);                             \
    }
#define SMALL_ROW(MT) SMALL_TILE(MT, 1) SMALL_TILE(MT, 2) SMALL_TILE(MT, 3) SMALL_TILE(MT, 4)
SMALL_ROW(1) SMALL_ROW(2) SMALL_ROW(3) SMALL_ROW(4) SMALL_ROW(5) SMALL_ROW(6)
#define SMALL_REF(MT) {small_##MT##_1, small_##MT##_2, small_##MT##_3, small_##MT##_4},
static const small_fn small_fns[SMALL_MR][SMALL_NV] = {
    SMALL_REF(1) SMALL_REF(2) SMALL_REF(3) SMALL_REF(4) SMALL_REF(5) SMALL_REF(6)};

/* Columns [j0, j1) of C (j0 a multiple of VLEN) for rows [i0, i1). B is read in place
 * when it is not transposed and its rows can be read in whole or masked vectors;
 * otherwise op(B)'s columns are first packed into Bp (K x ldp, ldp = the columns
 * rounded up to whole vectors, zeros past N). add: C += the product, else C = it. */
static void gemm_small(int transA, int transB, int i0, int i1, int j0, int j1, int K,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                       int add, float *Bp) {
    int nj = j1 - j0;
    const float *Bsrc;
    int ldp, direct = !transB && (MASKED_LOADS || nj % VLEN == 0);
    if (direct) {
        Bsrc = B + j0;
        ldp = ldb;
    } else {
        ldp = (nj + VLEN - 1) / VLEN * VLEN;
        for (int k = 0; k < K; k++) {
            float *dst = Bp + (size_t)k * ldp;
            vstore(dst + ldp - VLEN, (vf){0}); /* the padding; the values overwrite the rest */
            if (!transB) memcpy(dst, B + (size_t)k * ldb + j0, sizeof(float) * nj);
            else
                for (int j = 0; j < nj; j++) dst[j] = B[(size_t)(j0 + j) * ldb + k];
        }
        Bsrc = Bp;
    }
    size_t ars = transA ? 1 : (size_t)lda, aks = transA ? (size_t)lda : 1;
    int nvec = (nj + VLEN - 1) / VLEN;
    for (int jv = 0; jv < nvec * VLEN; jv += SMALL_NV * VLEN) {
        int nt = nvec - jv / VLEN < SMALL_NV ? nvec - jv / VLEN : SMALL_NV;
        int nb = direct ? nj - jv : nt * VLEN; /* columns that may be read */
        for (int i = i0; i < i1; i += SMALL_MR) {
            int mt = i1 - i < SMALL_MR ? i1 - i : SMALL_MR;
            small_fns[mt - 1][nt - 1](K, A + i * ars, ars, aks, Bsrc + jv, ldp, nb,
                                      C + (size_t)i * ldc + j0 + jv, ldc, nj - jv, add);
        }
    }
}

/* Thread t of nt's share of a small product: disjoint column slices (whole vectors), or
 * row slices when N is narrow; each C element is still one thread's k loop, in order. */
static void small_slice(int t, int nt, int transA, int transB, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, float *C, int ldc, int add) {
    int nvec = (N + VLEN - 1) / VLEN;
    int i0 = 0, i1 = M, j0 = 0, j1 = N;
    if (nvec >= 2 * nt) {
        j0 = (int)((long)nvec * t / nt) * VLEN;
        j1 = (int)((long)nvec * (t + 1) / nt) * VLEN;
        if (j1 > N) j1 = N;
    } else {
        i0 = (int)((long)M * t / nt);
        i1 = (int)((long)M * (t + 1) / nt);
    }
    if (i0 >= i1 || j0 >= j1) return;
    if (ensure_buffers()) gemm_small(transA, transB, i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, add, tl_bp);
    else gemm_plain(transA, transB, i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, add);
}

/* The rectangle [i0, i1) x [j0, j1) of C, packed when the buffers exist (plain loops
 * otherwise: the right answer even without memory for packing). */
static void gemm_rect(int transA, int transB, int i0, int i1, int j0, int j1, int K, const float *A, int lda,
                      const float *B, int ldb, float *C, int ldc) {
    if (i0 >= i1 || j0 >= j1) return;
    const float *Asub = transA ? A + i0 : A + (size_t)i0 * lda;
    if (ensure_buffers()) gemm_serial(transA, transB, i1 - i0, j0, j1, K, Asub, lda, B, ldb, C + (size_t)i0 * ldc, ldc);
    else gemm_plain(transA, transB, i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, 1);
}

void st_sgemm(int transA, int transB, int M, int N, int K,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int padded_n = (N + VLEN - 1) / VLEN * VLEN;
    if (K > 0 && (double)M * N * K <= SMALL_MAX_MACS && (size_t)K * padded_n <= (size_t)KC * NC) {
        /* beta 0 or 1 is folded into the stores; any other is applied first */
        if (beta != 0.0f && beta != 1.0f) scale_c(M, N, beta, C, ldc);
        int add = beta != 0.0f, threads = 1;
#ifdef _OPENMP
        if (!omp_in_parallel() && (double)M * N * K > 200000.0) threads = omp_get_max_threads();
#endif
        if (threads > 1) {
#pragma omp parallel num_threads(threads)
            {
#ifdef _OPENMP
                small_slice(omp_get_thread_num(), omp_get_num_threads(), transA, transB, M, N, K, A, lda, B, ldb, C, ldc, add);
#endif
            }
        } else {
            small_slice(0, 1, transA, transB, M, N, K, A, lda, B, ldb, C, ldc, add);
        }
        return;
    }
    scale_c(M, N, beta, C, ldc);
    if (K <= 0) return;
    int threads = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * K > 200000.0) threads = omp_get_max_threads();
#endif
    /* Threads split the columns (or the rows when N is small) into disjoint slices:
     * each thread owns its C elements outright, so no reduction order changes. */
    int by_cols = threads > 1 && N >= NR * threads, by_rows = !by_cols && threads > 1 && M >= MR * threads;
    if (!by_cols && !by_rows) {
        gemm_rect(transA, transB, 0, M, 0, N, K, A, lda, B, ldb, C, ldc);
        return;
    }
    int unit = by_cols ? NR : MR, extent = by_cols ? N : M, panels = (extent + unit - 1) / unit;
#pragma omp parallel num_threads(threads)
    {
#ifdef _OPENMP
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        int t = 0, nt = 1;
#endif
        int lo = (int)((long)panels * t / nt) * unit, hi = (int)((long)panels * (t + 1) / nt) * unit;
        if (hi > extent) hi = extent;
        if (by_cols) gemm_rect(transA, transB, 0, M, lo, hi, K, A, lda, B, ldb, C, ldc);
        else gemm_rect(transA, transB, lo, hi, 0, N, K, A, lda, B, ldb, C, ldc);
    }
}
