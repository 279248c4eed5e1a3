/* gemm.c - single-precision matrix multiply, C = beta*C + op(A) op(B), row-major.
 *
 * The blocked path is the classic packed design (Goto and van de Geijn; BLIS):
 *
 *   for jc over N in blocks of NC columns
 *     for pc over K in blocks of KC             pack op(B)[pc.., jc..] into NR-column panels
 *       for ic over M in blocks of MC           pack op(A)[ic.., pc..] into MR-row panels
 *         for jr over the NC columns by NR
 *           for ir over the MC rows by MR       micro-kernel: MR x NR tile of C
 *
 * The micro-kernel keeps the MR x NR tile in registers over kc steps; each step loads NR
 * values of B (NR/16 vectors) and broadcasts MR values of A. The packed B panel (kc x NR,
 * 32 KB) is reused by all the tiles of a column, the A block (MC x KC, 128 KB) stays in
 * L2, B's block in L2/L3. Packing puts both operands in the order the kernel reads them,
 * whatever their transposition: rows copied as vectors, or transposed 8 x 8 in AVX2
 * registers. beta is folded into the first K block's stores (C = tile, C += tile or
 * C = beta*C + tile), so C is read and written once per K block and never zeroed first.
 *
 * Micro-kernels, chosen once at run time (__builtin_cpu_supports; the environment
 * variable ST_GEMM_ISA=avx512|avx2|portable overrides; st_gemm_force_isa for tests), so
 * a build without -march=native still runs the fast ones:
 *   avx512    8 x 32 (16 zmm accumulators), intrinsics in a target("avx512f") function
 *   avx2      6 x 16 (12 ymm accumulators), target("avx2,fma")
 *   portable  6 x 2 vectors, GCC vector extensions as wide as the compiler's target
 * On Zen 4 (AVX-512 on 256-bit units: 32 FLOP per cycle, about 115 GFLOP/s a core) the
 * AVX-512 tiles of 6 to 14 rows tried (6, 8, 12, 14 x 32; 6, 8 x 48; 6 x 64) all run at
 * 111-117 GFLOP/s with their panels in cache (4-row tiles: 88-94); inside whole products
 * 8 x 32 did best, by 3-15 %, and it divides the channel counts of CNNs (M = 64..512)
 * exactly. kc = 128..384, MC = 64..512 and NC = 512..4096 were within noise of each
 * other; software prefetching in the kernel gained nothing.
 *
 * Threads: a tm x tn grid of cells (whole tiles) over C, chosen to minimise each thread's
 * multiply-adds plus its packing; every thread packs its own A rows and B columns, so
 * there is no barrier inside a product, only the join at the end. (A version sharing
 * one packed B between threads needed a barrier per K block; on this shared, loaded
 * machine a thread paused by the OS then stalled the other, down to 6-20 GFLOP/s.)
 * Called from inside a parallel region, st_sgemm runs on the calling thread alone.
 *
 * Small products (M*N*K up to 16 M: the linear layers of the MNIST-1D models, 100 x 10
 * x 60 to 100 x 135 x 285) and narrow ones (N under two tiles) skip most of that:
 * gemm_small (gemm_small.h, compiled once per ISA as well) reads A in place, reads B in
 * place too when it is not transposed (the last vector of a row masked), else packs
 * op(B) into rows of whole vectors, and keeps up to 6 rows x 4 vectors of C in registers
 * over the whole k loop. Which path runs depends on the shape alone.
 *
 * Every C element is summed over k in increasing order by one thread (within a K block
 * from zero, then added to C), whatever the thread count and the element's place in a
 * tile (edge tiles run the same kernel on a copy; multiply-adds are explicit FMAs, or
 * without them a multiply and an add, never left to the compiler's contraction, so all
 * tile shapes round alike): results are identical for 1 and N threads. They may differ
 * between ISAs, in the last bits.
 *
 * Measured, GFLOP/s on AMD EPYC (Zen 4), before = the previous gemm.c (6 x 32 tile
 * compiled for -march, every thread packing all of A), A/B in the same run, best of 20.
 * 1 thread timed by its CPU time (the machine was shared and loaded: wall time was not
 * reproducible); 2 threads as the larger of the two threads' CPU times for their cells
 * (wall time was clean only for short products: e.g. 64 x 576 x 1024 weight gradient
 * 80 -> 201, 576 x 1024 x 64 input gradient 131 -> 211).
 *                                        1 thread         2 threads
 *   M x N x K                        before  after     before  after
 *   1024 x 1024 x 1024                   93    105        181    203
 *   conv forward, W (M x K) col (K x N), beta 0
 *     64 x 1024 x  576                   94    100        173    188
 *    128 x  256 x 1152                   96    109
 *    256 x  256 x 2304                   92    104
 *    512 x  256 x 4608                   93    105        162    193
 *     64 x 4096 x  576                   72     82        141    155
 *   weight gradient, dy col^T (B transposed), beta 1
 *     64 x  576 x 1024                   41    102         80    195
 *    128 x 1152 x  256                   89    108
 *    512 x 4608 x  256                   89    104        170    194
 *   input gradient, W^T dy (A transposed), beta 0
 *    576 x 1024 x   64                   99    110        160    198
 *   1152 x  256 x  128                  101    108
 *   4608 x  256 x  512                   90    104        162    197
 *   narrow, 512 x 16 x 4608 (small path)  30    116
 * A CIFAR resnet18 training step (batch 32, 1 thread) spends about half its time in
 * these products, all at 96-104 GFLOP/s in place; 4 steps took 8 % less CPU time
 * (6.06 -> 5.54 s).
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ST_X86 1
#else
#define ST_X86 0
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "simd.h" /* INLINE, UNROLL */

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

static void scale_c(int M, int N, float beta, float *C, int ldc) {
    if (beta == 1.0f) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, (size_t)N * sizeof(float));
        else for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* ---------------------------------------------------------------- micro-kernels
 * A kernel computes one MR x NR tile of C from a packed A panel (Ap[k*MR + i]) and a
 * packed B panel (Bp[k*NR + j], 64-byte aligned), k = 0 .. kc-1 in order, and stores it:
 * mode 0: C = tile, mode 1: C += tile, mode 2: C = beta*C + tile. */
enum { STORE_SET, STORE_ADD, STORE_BETA };
typedef void (*kernel_fn)(int kc, const float *Ap, const float *Bp, float *C, size_t ldc, int mode, float beta);

/* The portable kernel: GCC vector extensions, as wide as the compiler's target. */
#if defined(__AVX512F__)
#define VLEN 16
#elif defined(__AVX__)
#define VLEN 8
#else
#define VLEN 4
#endif
typedef float vf __attribute__((vector_size(VLEN * sizeof(float)), aligned(4)));
INLINE vf vload(const float *p) { return *(const vf *)p; }
INLINE void vstore(float *p, vf v) { *(vf *)p = v; }

/* x in every lane (x - 0 is exactly x, so no arithmetic is left: just a broadcast) */
INLINE vf vsplat(float x) { return x - (vf){0}; }

/* a*b + c, written out rather than left to -ffp-contract: GCC's tuning for Zen keeps some
 * 256-bit accumulation chains as a multiply and an add, so two tile shapes could round
 * differently, and the result would depend on where a thread's share begins. */
INLINE vf vfma(vf a, vf b, vf c) {
#if defined(__AVX512F__) && VLEN == 16
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && VLEN == 8
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__FMA__) && VLEN == 4
    return (vf)_mm_fmadd_ps((__m128)a, (__m128)b, (__m128)c);
#elif !ST_X86
    vf r;
    for (int l = 0; l < VLEN; l++) r[l] = __builtin_fmaf(a[l], b[l], c[l]);
    return r;
#else
    return a * b + c; /* no FMA instructions: never contracted */
#endif
}

#define PMR 6  /* portable tile: 6 rows x 2 vectors */
#define PNV 2
static void kernel_portable(int kc, const float *restrict Ap, const float *restrict Bp, float *restrict C,
                            size_t ldc, int mode, float beta) {
    vf acc[PMR][PNV];
    UNROLL for (int i = 0; i < PMR; i++)
        UNROLL for (int v = 0; v < PNV; v++) acc[i][v] = (vf){0};
    for (int k = 0; k < kc; k++, Ap += PMR, Bp += PNV * VLEN) {
        vf b[PNV];
        UNROLL for (int v = 0; v < PNV; v++) b[v] = vload(Bp + v * VLEN);
        UNROLL for (int i = 0; i < PMR; i++) {
            vf a = vsplat(Ap[i]);
            UNROLL for (int v = 0; v < PNV; v++) acc[i][v] = vfma(a, b[v], acc[i][v]);
        }
    }
    UNROLL for (int i = 0; i < PMR; i++)
        UNROLL for (int v = 0; v < PNV; v++) {
            float *c = C + i * ldc + v * VLEN;
            vstore(c, mode == STORE_SET ? acc[i][v] : mode == STORE_ADD ? vload(c) + acc[i][v]
                                                              : vfma(vsplat(beta), vload(c), acc[i][v]));
        }
}

#if ST_X86
/* AVX-512: 8 rows x 2 vectors of 16 (16 accumulators in zmm registers); each k loads two
 * vectors of B and broadcasts 8 values of A, each feeding 2 FMAs. */
#define A512_MR 8
#define A512_NV 2
__attribute__((target("avx512f"))) static void kernel_avx512(int kc, const float *restrict Ap, const float *restrict Bp,
                                                            float *restrict C, size_t ldc, int mode, float beta) {
    enum { MR = A512_MR, NV = A512_NV };
    __m512 acc[MR][NV];
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_setzero_ps();
    for (int i = 0; i < MR; i++)
        for (int v = 0; v < NV; v++) _mm_prefetch((const char *)(C + i * ldc + v * 16), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, Ap += MR, Bp += NV * 16) {
        __m512 b[NV];
        UNROLL for (int v = 0; v < NV; v++) b[v] = _mm512_load_ps(Bp + v * 16);
        UNROLL for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(Ap[i]);
            UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm512_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    __m512 vb = _mm512_set1_ps(beta);
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *c = C + i * ldc + v * 16;
            __m512 r = acc[i][v];
            if (mode == STORE_ADD) r = _mm512_add_ps(_mm512_loadu_ps(c), r);
            else if (mode == STORE_BETA) r = _mm512_fmadd_ps(vb, _mm512_loadu_ps(c), r);
            _mm512_storeu_ps(c, r);
        }
}

/* AVX2 + FMA: 6 rows x 2 vectors of 8 (12 accumulators of the 16 registers). */
__attribute__((target("avx2,fma"))) static void kernel_avx2(int kc, const float *restrict Ap, const float *restrict Bp,
                                                           float *restrict C, size_t ldc, int mode, float beta) {
    enum { MR = 6, NV = 2 };
    __m256 acc[MR][NV];
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_setzero_ps();
    for (int i = 0; i < MR; i++) _mm_prefetch((const char *)(C + i * ldc), _MM_HINT_T0);
    for (int k = 0; k < kc; k++, Ap += MR, Bp += NV * 8) {
        __m256 b[NV];
        UNROLL for (int v = 0; v < NV; v++) b[v] = _mm256_load_ps(Bp + v * 8);
        UNROLL for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(Ap + i);
            UNROLL for (int v = 0; v < NV; v++) acc[i][v] = _mm256_fmadd_ps(a, b[v], acc[i][v]);
        }
    }
    __m256 vb = _mm256_set1_ps(beta);
    UNROLL for (int i = 0; i < MR; i++)
        UNROLL for (int v = 0; v < NV; v++) {
            float *c = C + i * ldc + v * 8;
            __m256 r = acc[i][v];
            if (mode == STORE_ADD) r = _mm256_add_ps(_mm256_loadu_ps(c), r);
            else if (mode == STORE_BETA) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(c), r);
            _mm256_storeu_ps(c, r);
        }
}
#endif

/* ---------------------------------------------------------------- transposing */
#if ST_X86
/* dst[c*ds + r] = src[r*ss + c] for an 8 x 8 block, in registers (AVX2). */
__attribute__((target("avx2"))) static void transpose8(const float *src, size_t ss, float *dst, size_t ds) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * ss);
    for (int i = 0; i < 8; i += 2) { /* interleave pairs of rows */
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) { /* then pairs of pairs */
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) { /* and the 128-bit halves */
        _mm256_storeu_ps(dst + i * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(dst + (i + 4) * ds, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}
#endif

/* dst[c*ds + r] = src[r*ss + c] for a rows x cols block; simd: 8 x 8 tiles in AVX2. */
static void transpose(const float *src, size_t ss, int rows, int cols, float *dst, size_t ds, int simd) {
    int r = 0;
#if ST_X86
    for (; simd && r + 8 <= rows; r += 8) {
        int c = 0;
        for (; c + 8 <= cols; c += 8) transpose8(src + r * ss + c, ss, dst + c * ds + r, ds);
        for (int i = r; i < r + 8; i++)
            for (int j = c; j < cols; j++) dst[j * ds + i] = src[i * ss + j];
    }
#else
    (void)simd;
#endif
    for (; r < rows; r++)
        for (int c = 0; c < cols; c++) dst[c * ds + r] = src[r * ss + c];
}

/* ---------------------------------------------------------------- small products */
#define SMALL_MR 6   /* rows of C per tile */
/* M*N*K up to which gemm_small runs (while op(B) is at most 1 MB). Measured on Zen 4
 * (AVX-512): 1.1 to 1.3 times the blocked path's speed on the MNIST-1D shapes (2.8 on
 * 100 x 10 x 60), and no slower up to 134 M (2048 x 256 x 256); 16 M leaves room for
 * smaller caches. Narrow products (N < 2 NR) run here at any size: 100-110 GFLOP/s for
 * 512 x 16..48 x 4608, against 37-73 on the blocked path. */
#ifndef SMALL_MAX_MACS
#define SMALL_MAX_MACS 16.0e6
#endif
#define SMALL_MAX_B ((size_t)1 << 18) /* floats of op(B) it may pack (1 MB) */
#define PAR_MIN_MACS 200000.0

typedef void (*small_tile_fn)(int K, const float *A, size_t ars, size_t aks, const float *B, int ldb, int nb,
                              float *C, int ldc, int n, int add);
typedef void (*small_fn)(int transA, int transB, int i0, int i1, int j0, int j1, int K, const float *A, int lda,
                         const float *B, int ldb, float *C, int ldc, int add, float *Bp);

/* The portable one, as wide as the compiler's target */
#define SV VLEN
#define SFX portable
#if VLEN == 16
#define SNV 4
#else
#define SNV 2
#endif
#if defined(__AVX512F__) && VLEN == 16
#define SMASK 16
#elif defined(__AVX2__) && VLEN == 8
#define SMASK 8
#else
#define SMASK 0
#endif
#define SFMA(a, b, c) vfma(a, b, c)
#define SSPLAT(x) vsplat(x)
#include "gemm_small.h"
#undef SV
#undef SFX
#undef SNV
#undef SMASK
#undef SFMA
#undef SSPLAT

#if ST_X86
#define SFX avx2
#define SV 8
#define SNV 2
#define SMASK 8
#define SFMA(a, b, c) (sv_avx2) _mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c))
#define SSPLAT(x) (sv_avx2) _mm256_set1_ps(x)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "gemm_small.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#undef SV
#undef SFX
#undef SNV
#undef SMASK
#undef SFMA
#undef SSPLAT

#define SFX avx512
#define SV 16
#define SNV 4
#define SMASK 16
#define SFMA(a, b, c) (sv_avx512) _mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c))
#define SSPLAT(x) (sv_avx512) _mm512_set1_ps(x)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
#include "gemm_small.h"
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#undef SV
#undef SFX
#undef SNV
#undef SMASK
#undef SFMA
#undef SSPLAT
#endif

/* ---------------------------------------------------------------- ISA choice */
typedef struct {
    const char *name;
    int mr, nr;     /* register tile */
    int kc, mc, nc; /* cache blocks: kc x nr panel of B in L1, mc x kc block of A in L2 */
    kernel_fn kernel;
    small_fn small; /* the small-product path, vectors of svlen floats */
    int svlen;
} gemm_isa;

/* Blocks (see the header for the measurements): kc = 256 (a 32 KB B panel for AVX-512),
 * A blocks of 96 to 128 rows (96 to 128 KB, in L2), B blocks of 1024 columns. */
static const gemm_isa isas[] = {
    {"portable", PMR, PNV * VLEN, 256, PMR * 16, 1024, kernel_portable, gemm_small_portable, VLEN},
#if ST_X86
    {"avx2", 6, 16, 256, 120, 1024, kernel_avx2, gemm_small_avx2, 8},
    {"avx512", A512_MR, 16 * A512_NV, 256, 128, 1024, kernel_avx512, gemm_small_avx512, 16},
#endif
};
#define MAX_MR 16
#define MAX_NR 64

static int isa_supported(int isa) {
    if (isa == ST_GEMM_PORTABLE) return 1;
#if ST_X86
    __builtin_cpu_init();
    if (isa == ST_GEMM_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == ST_GEMM_AVX512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2");
#endif
    return 0;
}

static int chosen_isa = -1; /* -1: not chosen yet */

static int best_isa(void) {
    const char *env = getenv("ST_GEMM_ISA");
    if (env) {
        int want = !strcmp(env, "avx512") ? ST_GEMM_AVX512 : !strcmp(env, "avx2") ? ST_GEMM_AVX2
                 : !strcmp(env, "portable") ? ST_GEMM_PORTABLE : -1;
        if (want >= 0 && isa_supported(want)) return want;
    }
    for (int isa = ST_GEMM_AVX512; isa > ST_GEMM_PORTABLE; isa--)
        if (isa_supported(isa)) return isa;
    return ST_GEMM_PORTABLE;
}

static const gemm_isa *current_isa(void) {
    int isa = __atomic_load_n(&chosen_isa, __ATOMIC_RELAXED);
    if (isa < 0) {
        isa = best_isa();
        __atomic_store_n(&chosen_isa, isa, __ATOMIC_RELAXED);
    }
    return &isas[isa];
}

int st_gemm_force_isa(int isa) {
    if (isa < 0) {
        __atomic_store_n(&chosen_isa, best_isa(), __ATOMIC_RELAXED);
        return 0;
    }
    if (isa > ST_GEMM_AVX512 || !isa_supported(isa)) return -1;
    __atomic_store_n(&chosen_isa, isa, __ATOMIC_RELAXED);
    return 0;
}

const char *st_gemm_isa_name(void) { return current_isa()->name; }

void st_gemm_blocking(int *mr, int *nr, int *kc) {
    const gemm_isa *isa = current_isa();
    *mr = isa->mr;
    *nr = isa->nr;
    *kc = isa->kc;
}

/* ---------------------------------------------------------------- packing */
/* Both operands are packed the same way. Seen as a kc x n block X of op(A)^T or op(B)
 * (k down, the n rows of op(A) or columns of op(B) across), X is cut into panels of W
 * columns, each stored k by k (panel[k*W + j]) and the last one zero-padded: the order
 * in which the micro-kernel reads them. The source holds X either k-major
 * (X[k][x] = src[k*ld + x]: B, or A transposed) or x-major (src[x*ld + k]: A, or B
 * transposed), from row p0 and column x0. */

/* k-major: row by row of the source (sequential reads), each row into every panel; W is
 * a constant at each call, so the copies are a few vector moves. pack_row places one
 * row (n values at s) at row k of every panel (d = the first panel's row k). */
INLINE void pack_row(const int W, const float *s, int kc, int n, float *restrict d) {
    int full = n / W * W;
    for (int x = 0; x < full; x += W) {
        if (W % VLEN == 0)
            for (int j = 0; j < W; j += VLEN) vstore(d + (size_t)x * kc + j, vload(s + x + j));
        else
            for (int j = 0; j < W; j++) d[(size_t)x * kc + j] = s[x + j];
    }
    if (full < n) {
        d += (size_t)full * kc;
        for (int j = 0; j < W; j++) d[j] = full + j < n ? s[full + j] : 0.0f;
    }
}

INLINE void pack_rows(const int W, const float *src, size_t ld, int p0, int kc, int x0, int n, float *restrict dst) {
    for (int k = 0; k < kc; k++) pack_row(W, src + (size_t)(p0 + k) * ld + x0, kc, n, dst + (size_t)k * W);
}

/* pack_row for the panel widths in use, each compiled with its constant. */
static void pack_row_w(int w, const float *s, int kc, int n, float *restrict d) {
    switch (w) {
    case 8: pack_row(8, s, kc, n, d); return;
    case 16: pack_row(16, s, kc, n, d); return;
    case 32: pack_row(32, s, kc, n, d); return;
    default: pack_row(w, s, kc, n, d); return;
    }
}

static void pack(int w, int simd, int kmajor, const float *src, size_t ld, int p0, int kc, int x0, int n,
                 float *restrict dst) {
    if (kmajor) {
        switch (w) {
        case 6: pack_rows(6, src, ld, p0, kc, x0, n, dst); return;
        case 8: pack_rows(8, src, ld, p0, kc, x0, n, dst); return;
        case 16: pack_rows(16, src, ld, p0, kc, x0, n, dst); return;
        case 32: pack_rows(32, src, ld, p0, kc, x0, n, dst); return;
        default: pack_rows(w, src, ld, p0, kc, x0, n, dst); return;
        }
    }
    for (int x = 0; x < n; x += w) { /* x-major: a panel is the transpose of w source rows */
        int m = n - x < w ? n - x : w;
        float *d = dst + (size_t)x * kc;
        transpose(src + (size_t)(x0 + x) * ld + p0, ld, m, kc, d, w, simd);
        if (m < w)
            for (int k = 0; k < kc; k++) memset(d + (size_t)k * w + m, 0, sizeof(float) * (w - m));
    }
}

/* An operand B that is never stored (implicit im2col, conv.c): rows(ctx, r, x0, n, dst)
 * writes what B[r][x0 .. x0+n) would hold, one row of B as the product would read it
 * (k-major: row k of op(B); transposed: column r of op(B)). Each row goes through `tmp`
 * (in L1) into the panels, the rows of a k-major block one by one, the rows of an x-major
 * panel W at a time, transposed like a stored operand's. */
static void pack_implicit(st_gemm_rows_fn rows, const void *ctx, int w, int simd, int kmajor, int p0, int kc,
                          int x0, int n, float *restrict dst, float *restrict tmp) {
    if (kmajor) {
        for (int k = 0; k < kc; k++) {
            rows(ctx, p0 + k, x0, n, tmp);
            pack_row_w(w, tmp, kc, n, dst + (size_t)k * w);
        }
        return;
    }
    for (int x = 0; x < n; x += w) {
        int m = n - x < w ? n - x : w;
        for (int j = 0; j < m; j++) rows(ctx, x0 + x + j, p0, kc, tmp + (size_t)j * kc);
        pack(w, simd, 0, tmp, (size_t)kc, 0, kc, 0, m, dst + (size_t)x * kc);
    }
}

/* ---------------------------------------------------------------- blocked driver */
/* One tile: the kernel straight on C when the tile is whole; otherwise on a copy of
 * C's m x n corner in a full-size tile, so that edge elements see the same arithmetic. */
static void run_tile(const gemm_isa *isa, int kc, const float *Ap, const float *Bp, float *C, size_t ldc, int m,
                     int n, int mode, float beta) {
    if (m == isa->mr && n == isa->nr) {
        isa->kernel(kc, Ap, Bp, C, ldc, mode, beta);
        return;
    }
    float tile[MAX_MR * MAX_NR] __attribute__((aligned(64)));
    int nr = isa->nr;
    if (mode != STORE_SET)
        for (int i = 0; i < m; i++) memcpy(tile + i * nr, C + i * ldc, sizeof(float) * n);
    isa->kernel(kc, Ap, Bp, tile, nr, mode, beta);
    for (int i = 0; i < m; i++) memcpy(C + i * ldc, tile + i * nr, sizeof(float) * n);
}

/* Packing buffers, per thread, grown on demand and kept (no per-call malloc); freed when
 * the thread ends (a thread-specific key's destructor), as OpenMP's workers may when the
 * thread count changes. */
static _Thread_local float *tl_ap, *tl_bp, *tl_as; /* tl_as: all of A, packed by a team (below) */
static _Thread_local float *tl_rt;                  /* rows of an implicit B on their way */
static _Thread_local size_t tl_ap_size, tl_bp_size, tl_as_size, tl_rt_size;
static pthread_key_t buffers_key;
static pthread_once_t buffers_once = PTHREAD_ONCE_INIT;

static void free_buffers(void *unused) {
    (void)unused;
    st_aligned_free(tl_ap);
    st_aligned_free(tl_bp);
    st_aligned_free(tl_as);
    st_aligned_free(tl_rt);
    tl_ap = tl_bp = tl_as = tl_rt = NULL;
    tl_ap_size = tl_bp_size = tl_as_size = tl_rt_size = 0;
}
static void make_buffers_key(void) { pthread_key_create(&buffers_key, free_buffers); }

static float *grow(float **buf, size_t *have, size_t need) {
    if (*have >= need) return *buf;
    if (!tl_ap && !tl_bp && !tl_as && !tl_rt) { /* this thread's first buffer: have it freed at exit */
        pthread_once(&buffers_once, make_buffers_key);
        pthread_setspecific(buffers_key, &tl_ap_size); /* any non-NULL value */
    }
    st_aligned_free(*buf);
    *buf = st_aligned_alloc(sizeof(float) * need);
    *have = *buf ? need : 0;
    return *buf;
}

typedef struct {
    const gemm_isa *isa;
    int transA, transB, M, N, K;
    const float *A, *B;
    size_t lda, ldb, ldc;
    float beta;
    float *C;
    int tm, tn;  /* the threads' grid: tm groups of rows x tn groups of columns */
    const float *Ap, *Bp; /* operands packed beforehand (st_sgemm_pack), or NULL */
    int share_a;  /* the team packs all of A together first, into Ap (tm = 1) */
    st_gemm_rows_fn rows; /* B never stored: its rows made on demand (B is NULL) */
    const void *rows_ctx;
    const st_gemm_epi *epi; /* applied to each tile once its sums are complete, or NULL */
} gemm_job;

/* The epilogue on rows [i0, i1) x columns [j0, j1) of C. */
static void epi_rect(const st_gemm_epi *q, float *C, size_t ldc, int i0, int i1, int j0, int j1) {
    for (int i = i0; i < i1; i++)
        st_epilogue_span(q->e, C + (size_t)i * ldc + j0, q->add ? q->add + (size_t)i * ldc + j0 : NULL,
                         (size_t)(j1 - j0), q->c0 + i);
}

/* Without memory for the packing buffers: plain loops over B's rows made STEP values at
 * a time (slowly, rounded differently from the packed path). */
static void implicit_plain(const gemm_job *job, int i_lo, int i_hi, int j_lo, int j_hi) {
    enum { STEP = 256 };
    float buf[STEP];
    const float *A = job->A;
    size_t ars = job->transA ? 1 : job->lda, aks = job->transA ? job->lda : 1;
    scale_c(i_hi - i_lo, j_hi - j_lo, job->beta, job->C + (size_t)i_lo * job->ldc + j_lo, (int)job->ldc);
    for (int j0 = j_lo; j0 < j_hi; j0 += (job->transB ? 1 : STEP))
        for (int k0 = 0; k0 < job->K; k0 += (job->transB ? STEP : 1)) {
            int len = job->transB ? (job->K - k0 < STEP ? job->K - k0 : STEP) : (j_hi - j0 < STEP ? j_hi - j0 : STEP);
            job->rows(job->rows_ctx, job->transB ? j0 : k0, job->transB ? k0 : j0, len, buf);
            for (int i = i_lo; i < i_hi; i++) {
                float *c = job->C + (size_t)i * job->ldc + j0;
                if (job->transB) { /* column j0 of op(B), k0 .. k0+len */
                    float acc = 0.0f;
                    for (int k = 0; k < len; k++) acc += A[i * ars + (size_t)(k0 + k) * aks] * buf[k];
                    c[0] += acc;
                } else { /* row k0 of op(B), columns j0 .. j0+len */
                    float a = A[i * ars + (size_t)k0 * aks];
                    for (int j = 0; j < len; j++) c[j] += a * buf[j];
                }
            }
        }
}

/* The blocked product for rows [i_lo, i_hi) and columns [j_lo, j_hi) of C, with this
 * thread's own packing buffers: no other thread reads or writes them. */
static void gemm_block(gemm_job *job, int i_lo, int i_hi, int j_lo, int j_hi) {
    const gemm_isa *isa = job->isa;
    int mr = isa->mr, nr = isa->nr, KC = isa->kc, MC = isa->mc, NC = isa->nc, K = job->K;
    int simd = isa->kernel != kernel_portable;
    float *ap = grow(&tl_ap, &tl_ap_size, (size_t)MC * KC), *bp = grow(&tl_bp, &tl_bp_size, (size_t)KC * NC);
    float *rt = job->rows ? grow(&tl_rt, &tl_rt_size, (size_t)(NC > nr * KC ? NC : nr * KC)) : NULL;
    if (job->rows && (!ap || !bp || !rt)) { /* no memory: B's rows one by one into plain loops */
        implicit_plain(job, i_lo, i_hi, j_lo, j_hi);
        if (job->epi) epi_rect(job->epi, job->C, job->ldc, i_lo, i_hi, j_lo, j_hi);
        return;
    }
    if (!ap || !bp) { /* no memory for packing: plain loops, slowly, rounded differently */
        float *c = job->C + (size_t)i_lo * job->ldc + j_lo;
        scale_c(i_hi - i_lo, j_hi - j_lo, job->beta, c, (int)job->ldc);
        gemm_plain(job->transA, job->transB, i_lo, i_hi, j_lo, j_hi, K, job->A, (int)job->lda, job->B, (int)job->ldb,
                   job->C, (int)job->ldc, 1);
        if (job->epi) epi_rect(job->epi, job->C, job->ldc, i_lo, i_hi, j_lo, j_hi);
        return;
    }
    int first_mode = job->beta == 0.0f ? STORE_SET : job->beta == 1.0f ? STORE_ADD : STORE_BETA;
    /* a packed operand holds, per K block, all its panels: block pc starts at pc * (rows
     * rounded up to whole panels), and the panel of row (column) x at x * kc in it */
    size_t mpad = (size_t)(job->M + mr - 1) / mr * mr, npad = (size_t)(job->N + nr - 1) / nr * nr;
    for (int jc = j_lo; jc < j_hi; jc += NC) {
        int nc = j_hi - jc < NC ? j_hi - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            if (job->Bp) bp = (float *)job->Bp + pc * npad + (size_t)jc * kc;
            else if (job->rows) pack_implicit(job->rows, job->rows_ctx, nr, simd, !job->transB, pc, kc, jc, nc, bp, rt);
            else pack(nr, simd, !job->transB, job->B, job->ldb, pc, kc, jc, nc, bp);
            int mode = pc == 0 ? first_mode : STORE_ADD;
            for (int ic = i_lo; ic < i_hi; ic += MC) {
                int mc = i_hi - ic < MC ? i_hi - ic : MC;
                if (job->Ap) ap = (float *)job->Ap + pc * mpad + (size_t)ic * kc;
                else pack(mr, simd, job->transA, job->A, job->lda, pc, kc, ic, mc, ap);
                for (int jr = 0; jr < nc; jr += nr)
                    for (int ir = 0; ir < mc; ir += mr)
                        run_tile(isa, kc, ap + (size_t)ir * kc, bp + (size_t)jr * kc,
                                 job->C + (size_t)(ic + ir) * job->ldc + jc + jr, job->ldc,
                                 mc - ir < mr ? mc - ir : mr, nc - jr < nr ? nc - jr : nr, mode, job->beta);
                /* the block's sums are complete: its epilogue while it is in the L2 cache
                 * (tile by tile, in L1, the calls on rows of 32 cost more than they saved:
                 * resnet50 at batch 8, 7 % more CPU time) */
                if (job->epi && pc + kc == K) epi_rect(job->epi, job->C, job->ldc, ic, ic + mc, jc, jc + nc);
            }
        }
    }
}

/* Thread t's cell of the tm x tn grid: whole register tiles, split as evenly as they go. */
static void gemm_thread(gemm_job *job, int t) {
    int mr = job->isa->mr, nr = job->isa->nr;
    int pm = (job->M + mr - 1) / mr, pn = (job->N + nr - 1) / nr, r = t / job->tn, c = t % job->tn;
    int i_lo = (int)((long)pm * r / job->tm) * mr, i_hi = (int)((long)pm * (r + 1) / job->tm) * mr;
    int j_lo = (int)((long)pn * c / job->tn) * nr, j_hi = (int)((long)pn * (c + 1) / job->tn) * nr;
    if (i_hi > job->M) i_hi = job->M;
    if (j_hi > job->N) j_hi = job->N;
    if (i_lo < i_hi && j_lo < j_hi) gemm_block(job, i_lo, i_hi, j_lo, j_hi);
}

/* The grid for up to `threads` threads: every thread packs the A rows and B columns of
 * its cell itself (no barriers: a thread that the OS pauses holds up no one but the final
 * join), so the grid minimises the largest cell's multiply-adds (in whole tiles) plus its
 * packing (an element packed costs about PACK_COST multiply-adds; none for an operand
 * packed beforehand); on a tie, fewer threads. One exception: a grid of one row of cells
 * (tm = 1) has every thread pack all of A, so there the team may pack A together first,
 * each thread a share of its panels, and wait for the others once (SYNC_COST): the
 * products of batch-1 inference with many columns per thread (resnet50's 1x1
 * convolutions, W of 256 x 64 against 3136 columns; resnet18's last 3x3, col^T of 49 x
 * 4608 against 512) spent 3-7 % more CPU time on 2 threads than on 1. */
#define PACK_COST 8.0
#define SYNC_COST 100000.0
static void choose_grid(gemm_job *job, int threads) {
    int mr = job->isa->mr, nr = job->isa->nr, nc = job->isa->nc;
    int pm = (job->M + mr - 1) / mr, pn = (job->N + nr - 1) / nr;
    double best = -1;
    job->tm = job->tn = 1;
    job->share_a = 0;
    /* with B packed beforehand (a layer's weights in batch-1 inference, the product
     * transposed), the threads split the rows only: each reads all of B, which stays in
     * the shared L3 cache, and packs only its own rows of A. Splitting the columns
     * instead (packing A together, or each all of it) cost 12-20 % more: resnet50's
     * 1024 -> 256 on 14x14 at batch 1 (M = 196, N = 256, K = 1024) 0.536 against
     * 0.60-0.63 ms on 2 threads, and even 512 -> 2048 on 7x7 (7 row tiles, 4 + 3) 0.80
     * against 0.82-0.84. With few row tiles (7 on 7x7 planes: 4 + 3) the cost below
     * chooses (512 -> 2048 on 7x7: 0.58 ms, against 0.64 for the small path). */
    int rows_only = job->Bp && pm >= 4 * threads;
    for (int tm = 1; tm <= threads && tm <= pm; tm++)
        for (int tn = 1; tm * tn <= threads && tn <= (rows_only ? 1 : pn); tn++)
            for (int share = 0; share <= (tm == 1 && tn > 1 && !job->Ap); share++) {
                int rows = (pm + tm - 1) / tm * mr, cols = (pn + tn - 1) / tn * nr, blocks = (cols + nc - 1) / nc;
                double pa = job->Ap ? 0.0 : share ? (double)(pm + tn - 1) / tn * mr : (double)rows * blocks;
                double cost = (double)rows * cols * job->K + PACK_COST * job->K * (pa + (job->Bp ? 0.0 : cols)) +
                              (share ? SYNC_COST : 0.0);
                if (best < 0 || cost < best || (cost == best && tm * tn < job->tm * job->tn))
                    best = cost, job->tm = tm, job->tn = tn, job->share_a = share;
            }
}

#ifdef _OPENMP
/* Thread t of nt's share of packing all of A into `packed` (the panels' layout of
 * st_sgemm_pack): its panels of every K block. */
static void pack_a_share(const gemm_job *job, float *packed, int t, int nt) {
    const gemm_isa *isa = job->isa;
    int mr = isa->mr, pm = (job->M + mr - 1) / mr, simd = isa->kernel != kernel_portable;
    int x0 = (int)((long)pm * t / nt) * mr, x1 = (int)((long)pm * (t + 1) / nt) * mr;
    if (x1 > job->M) x1 = job->M;
    if (x0 >= x1) return;
    size_t mpad = (size_t)pm * mr;
    for (int pc = 0; pc < job->K; pc += isa->kc) {
        int kc = job->K - pc < isa->kc ? job->K - pc : isa->kc;
        pack(mr, simd, job->transA, job->A, job->lda, pc, kc, x0, x1 - x0, packed + pc * mpad + (size_t)x0 * kc);
    }
}
#endif

/* ---------------------------------------------------------------- entry point */
static void run_blocked(gemm_job *job);

/* Thread t of nt's share of a small product: disjoint column slices (whole vectors), or
 * row slices when N is narrow or A has more rows than B has columns (each thread then
 * reads half of A, not all of it: resnet50's 7x7 layers at batch 1, whose A is the
 * weights, up to 9 MB, ran 9-18 % faster on 2 threads, e.g. 512 -> 2048 0.67-0.71
 * against 0.80-0.82 ms); each C element is still one thread's k loop, in order. */
static void small_slice(const gemm_isa *isa, int t, int nt, int transA, int transB, int M, int N, int K,
                        const float *A, int lda, const float *B, int ldb, float *C, int ldc, int add,
                        const st_gemm_epi *epi) {
    int sv = isa->svlen, nvec = (N + sv - 1) / sv;
    int i0 = 0, i1 = M, j0 = 0, j1 = N;
    if (nvec >= 2 * nt && (N >= M || M < 2 * SMALL_MR * nt)) {
        j0 = (int)((long)nvec * t / nt) * sv;
        j1 = (int)((long)nvec * (t + 1) / nt) * sv;
        if (j1 > N) j1 = N;
    } else {
        i0 = (int)((long)M * t / nt);
        i1 = (int)((long)M * (t + 1) / nt);
    }
    if (i0 >= i1 || j0 >= j1) return;
    size_t ldp = (size_t)(j1 - j0 + sv - 1) / sv * sv;
    float *bp = grow(&tl_bp, &tl_bp_size, (size_t)K * ldp);
    if (bp) isa->small(transA, transB, i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, add, bp);
    else gemm_plain(transA, transB, i0, i1, j0, j1, K, A, lda, B, ldb, C, ldc, add);
    if (epi) epi_rect(epi, C, (size_t)ldc, i0, i1, j0, j1);
}

/* Threads for a product of M*N*K multiply-adds: all of them from the outermost level,
 * one inside a parallel region (the caller already splits the work). */
static int threads_for(double macs) {
#ifdef _OPENMP
    if (!omp_in_parallel() && macs > PAR_MIN_MACS) return omp_get_max_threads();
#else
    (void)macs;
#endif
    return 1;
}

static int force_small = -1;
void st_gemm_force_small(int small) { force_small = small; }

/* ---------------------------------------------------------------- operands packed once
 * An operand that many products share (a layer's weights in inference) can be packed
 * once: a header (what it was packed for) and then, K block by K block, all its panels in
 * the order gemm_block reads them, so those products skip its packing. The panels are
 * those of the ISA chosen when packing; a product under another ISA (tests force one),
 * or with another shape, ignores the packed copy and packs as usual. */
enum { PACK_MAGIC = 0x5354504b, PACK_HEADER = 16 }; /* "STPK"; the header's floats (64 bytes) */
typedef struct { int magic, isa, which, rows, K; } pack_header;

static int panel_width(const gemm_isa *isa, int which) { return which ? isa->nr : isa->mr; }

size_t st_sgemm_pack_size(int which, int rows, int K) {
    int w = panel_width(current_isa(), which);
    return PACK_HEADER + (size_t)(rows + w - 1) / w * w * (size_t)(K > 0 ? K : 0);
}

void st_sgemm_pack(int which, int trans, int rows, int K, const float *X, int ld, float *packed) {
    const gemm_isa *isa = current_isa();
    int w = panel_width(isa, which), simd = isa->kernel != kernel_portable;
    pack_header h = {PACK_MAGIC, (int)(isa - isas), which, rows, K};
    memset(packed, 0, sizeof(float) * PACK_HEADER);
    memcpy(packed, &h, sizeof h);
    size_t pad = (size_t)(rows + w - 1) / w * w;
    /* A is k-major when transposed, B when not (see pack) */
    int kmajor = which ? !trans : trans;
    for (int pc = 0; pc < K; pc += isa->kc) {
        int kc = K - pc < isa->kc ? K - pc : isa->kc;
        pack(w, simd, kmajor, X, (size_t)ld, pc, kc, 0, rows, packed + PACK_HEADER + pc * pad);
    }
}

/* The panels of a packed operand if it fits this product, else NULL. */
static const float *packed_panels(const float *packed, const gemm_isa *isa, int which, int rows, int K) {
    if (!packed) return NULL;
    pack_header h;
    memcpy(&h, packed, sizeof h);
    int ok = h.magic == PACK_MAGIC && h.isa == (int)(isa - isas) && h.which == which && h.rows == rows && h.K == K;
    return ok ? packed + PACK_HEADER : NULL;
}

void st_transpose(const float *src, size_t ss, int rows, int cols, float *dst, size_t ds) {
    transpose(src, ss, rows, cols, dst, ds, current_isa()->kernel != kernel_portable);
}

void st_sgemm(int transA, int transB, int M, int N, int K,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc) {
    st_sgemm_packed(transA, transB, M, N, K, A, lda, NULL, B, ldb, NULL, beta, C, ldc, NULL);
}

void st_sgemm_packed(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *Ap,
                     const float *B, int ldb, const float *Bp, float beta, float *C, int ldc, const st_gemm_epi *epi) {
    if (M <= 0 || N <= 0) return;
    const gemm_isa *isa = current_isa();
    double macs = (double)M * N * K;
    Ap = packed_panels(Ap, isa, 0, M, K);
    Bp = packed_panels(Bp, isa, 1, N, K);
    /* small products, and narrow ones (under two register tiles wide) of any size */
    int small = K > 0 && (size_t)K * N <= SMALL_MAX_B &&
                (force_small < 0 ? macs <= SMALL_MAX_MACS || N < 2 * isa->nr : force_small);
    if (small) {
        /* beta 0 or 1 is folded into the stores; any other is applied first */
        if (beta != 0.0f && beta != 1.0f) scale_c(M, N, beta, C, ldc);
        int add = beta != 0.0f, threads = threads_for(macs);
        if (threads > 1) {
#pragma omp parallel num_threads(threads)
            {
#ifdef _OPENMP
                small_slice(isa, omp_get_thread_num(), omp_get_num_threads(), transA, transB, M, N, K, A, lda, B, ldb, C,
                            ldc, add, epi);
#endif
            }
        } else {
            small_slice(isa, 0, 1, transA, transB, M, N, K, A, lda, B, ldb, C, ldc, add, epi);
        }
        return;
    }
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        if (epi) epi_rect(epi, C, (size_t)ldc, 0, M, 0, N);
        return;
    }
    gemm_job job = {isa, transA, transB, M, N, K, A, B, (size_t)lda, (size_t)ldb, (size_t)ldc, beta, C,
                    1, 1, Ap, Bp, 0, NULL, NULL, epi};
    run_blocked(&job);
}

void st_sgemm_implicit(int transA, int transB, int M, int N, int K, const float *A, int lda, const float *Ap,
                       st_gemm_rows_fn rows, const void *ctx, float beta, float *C, int ldc, const st_gemm_epi *epi) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        scale_c(M, N, beta, C, ldc);
        if (epi) epi_rect(epi, C, (size_t)ldc, 0, M, 0, N);
        return;
    }
    const gemm_isa *isa = current_isa();
    gemm_job job = {isa, transA, transB, M, N, K, A, NULL, (size_t)lda, 0, (size_t)ldc, beta, C,
                    1, 1, packed_panels(Ap, isa, 0, M, K), NULL, 0, rows, ctx, epi};
    run_blocked(&job);
}

/* The blocked path: the threads' grid, then each cell (and the team's share of A). */
static void run_blocked(gemm_job *job) {
    const gemm_isa *isa = job->isa;
    int M = job->M, K = job->K;
    int threads = threads_for((double)M * job->N * K);
    choose_grid(job, threads);
    threads = job->tm * job->tn;
    float *shared = NULL;
    if (job->share_a) { /* the calling thread's buffer; without memory, every thread packs its own */
        shared = grow(&tl_as, &tl_as_size, (size_t)(M + isa->mr - 1) / isa->mr * isa->mr * K);
        job->Ap = shared;
    }
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        {
#ifdef _OPENMP
            if (shared) {
                pack_a_share(job, shared, omp_get_thread_num(), omp_get_num_threads());
#pragma omp barrier
            }
            /* (a team smaller than asked for still covers every cell) */
            for (int cell = omp_get_thread_num(); cell < threads; cell += omp_get_num_threads())
                gemm_thread(job, cell);
#endif
        }
    } else {
        gemm_thread(job, 0);
    }
}
