/* simd.h - what the hand-vectorised kernels share (conv_direct.c, conv_depthwise.c,
 * conv_stem.c, gemm.c, conv.c, pool.c): VL, the floats in the widest vector the build targets (16 with
 * AVX-512, 8 with AVX, else 4 for portable code; -DST_VL=8 for experiments), INLINE, and
 * UNROLL, the full unrolling of a loop over a register block (so that its accumulators
 * become registers). */
#ifndef ST_SIMD_H
#define ST_SIMD_H

#if defined(ST_VL)
#define VL ST_VL
#elif defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif

#define INLINE static inline __attribute__((always_inline))

#if defined(__AVX512F__)
#include <immintrin.h>
/* The even elements of 32 consecutive floats, a (the first 16) and b (the next 16): the
 * inputs of 16 outputs of a stride-2 window (im2col's gather, max pooling). */
INLINE __m512 even_lanes(__m512 a, __m512 b) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(a, even, b);
}
#endif

#ifndef UNROLL
#if defined(__clang__)
#define UNROLL _Pragma("unroll")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#endif

#endif
