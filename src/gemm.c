/* gemm.c - single-precision matrix multiply, C = beta*C + op(A) op(B), row-major.
 *
 * The fast path follows the usual packed design: B is copied block by block into
 * panels of NR columns, A into panels of MR rows, and a register-tiled micro-kernel
 * computes an MR x NR tile of C with the k loop innermost. The micro-kernel is
 * written with GCC vector extensions, so the compiler emits AVX-512, AVX2 or SSE
 * for the target (-march). Every C element is summed over k in increasing order by
 * one thread, whatever the thread count: results are identical for 1 and N threads.
 */
#include "internal.h"

#include <string.h>
#include <stdlib.h>
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

/* Ap: MR x kc panel stored k-major (Ap[k*MR + i]); Bp: kc x NR panel (Bp[k*NR + j]).
 * Computes the tile and adds it to C (m x n valid part, row stride ldc). */
static void micro_kernel(int kc, const float *restrict Ap, const float *restrict Bp,
                         float *restrict C, int ldc, int m, int n) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) acc[i][v] = (vf){0};
    for (int k = 0; k < kc; k++) {
        vf b[NV];
        for (int v = 0; v < NV; v++) memcpy(&b[v], Bp + k * NR + v * VLEN, sizeof(vf));
        for (int i = 0; i < MR; i++) {
            vf a = (vf){0} + Ap[k * MR + i];
            for (int v = 0; v < NV; v++) acc[i][v] += a * b[v];
        }
    }
    if (m == MR && n == NR) {
        for (int i = 0; i < MR; i++)
            for (int v = 0; v < NV; v++) {
                vf c;
                memcpy(&c, C + (size_t)i * ldc + v * VLEN, sizeof c);
                c += acc[i][v];
                memcpy(C + (size_t)i * ldc + v * VLEN, &c, sizeof c);
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

void st_sgemm(int transA, int transB, int M, int N, int K,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    scale_c(M, N, beta, C, ldc);
    if (K <= 0) return;
    int threads = 1;
#ifdef _OPENMP
    if (!omp_in_parallel() && (double)M * N * K > 200000.0) threads = omp_get_max_threads();
#endif
    /* Threads split the columns (or the rows when N is small) into disjoint slices:
     * each thread owns its C elements outright, so no reduction order changes. */
    if (threads > 1 && N >= NR * threads) {
        int panels = (N + NR - 1) / NR;
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            int t = 0, nt = 1;
#endif
            int p0 = (int)((long)panels * t / nt), p1 = (int)((long)panels * (t + 1) / nt);
            int j0 = p0 * NR, j1 = p1 * NR < N ? p1 * NR : N;
            if (j0 < j1 && ensure_buffers())
                gemm_serial(transA, transB, M, j0, j1, K, A, lda, B, ldb, C, ldc);
        }
        return;
    }
    if (threads > 1 && M >= MR * threads) {
        int panels = (M + MR - 1) / MR;
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
            int t = 0, nt = 1;
#endif
            int p0 = (int)((long)panels * t / nt), p1 = (int)((long)panels * (t + 1) / nt);
            int i0 = p0 * MR, i1 = p1 * MR < M ? p1 * MR : M;
            if (i0 < i1 && ensure_buffers()) {
                const float *Asub = transA ? A + i0 : A + (size_t)i0 * lda;
                gemm_serial(transA, transB, i1 - i0, 0, N, K, Asub, lda, B, ldb,
                            C + (size_t)i0 * ldc, ldc);
            }
        }
        return;
    }
    if (ensure_buffers()) {
        gemm_serial(transA, transB, M, 0, N, K, A, lda, B, ldb, C, ldc);
    } else {
        /* no memory for packing: the plain loops still give the right answer */
        for (int i = 0; i < M; i++)
            for (int k = 0; k < K; k++) {
                float a = transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                for (int j = 0; j < N; j++)
                    C[(size_t)i * ldc + j] += a * (transB ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            }
    }
}
