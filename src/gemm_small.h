/* gemm_small.h - the small-product path of gemm.c, written once for any vector width.
 *
 * gemm.c includes this file once per instruction set, each time with
 *   SV   floats per vector (4, 8 or 16), SNV vectors per tile row (2 or 4),
 *   SFX  the suffix of every name defined here (portable, avx2, avx512),
 *   SMASK 0, or 8 / 16 for AVX2 / AVX-512 masked loads and stores,
 *   SFMA(a, b, c) a*b + c on vectors, as one explicit FMA where there is one, and
 *   SSPLAT(x) a vector of x,
 * and, for AVX2 and AVX-512, inside a target pragma, so that the same C becomes code for
 * each; the one chosen at run time is reached through gemm_isa.small.
 *
 * gemm_small reads A in place, reads B in place too when it is not transposed and its
 * rows can be read in whole or masked vectors, else packs op(B) into rows of whole
 * vectors (zero-padded); it keeps a tile of up to 6 rows x SNV vectors of C in registers
 * over the whole k loop (k in increasing order, like the blocked path).
 */
#define SN_(name, sfx) name##_##sfx
#define SN(name, sfx) SN_(name, sfx)
#define S(name) SN(name, SFX)

typedef float S(sv) __attribute__((vector_size(SV * sizeof(float)), aligned(4)));
INLINE S(sv) S(sload)(const float *p) { return *(const S(sv) *)p; }
INLINE void S(sstore)(float *p, S(sv) v) { *(S(sv) *)p = v; }

/* Partial vectors: the first m lanes of p (the rest zero), and storing the first m
 * lanes of v to p (+= when add). Masked where the ISA has it, through a buffer otherwise. */
INLINE S(sv) S(load_lanes)(const float *p, int m) {
#if SMASK == 16
    return (S(sv))_mm512_maskz_loadu_ps((__mmask16)((1u << m) - 1), p);
#elif SMASK == 8
    return (S(sv))_mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
#else
    float t[SV] = {0};
    memcpy(t, p, sizeof(float) * m);
    return S(sload)(t);
#endif
}
INLINE void S(store_lanes)(float *p, S(sv) v, int m, int add) {
    if (m == SV) {
        S(sstore)(p, add ? S(sload)(p) + v : v);
        return;
    }
#if SMASK == 16
    __mmask16 k = (__mmask16)((1u << m) - 1);
    if (add) v += (S(sv))_mm512_maskz_loadu_ps(k, p);
    _mm512_mask_storeu_ps(p, k, (__m512)v);
#elif SMASK == 8
    __m256i k = _mm256_cmpgt_epi32(_mm256_set1_epi32(m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (add) v += (S(sv))_mm256_maskload_ps(p, k);
    _mm256_maskstore_ps(p, k, (__m256)v);
#else
    float t[SV];
    memcpy(t, &v, sizeof t);
    for (int j = 0; j < m; j++) p[j] = add ? p[j] + t[j] : t[j];
#endif
}

/* C[0..MT) x [0..NT*SV) (+)= A (rows at stride ars, k at stride aks) x B (K rows of
 * stride ldb, of which the first nb columns are read); only the first n columns of C
 * are stored. MT, NT are constants at each call. */
INLINE void S(small_tile)(const int MT, const int NT, int K, const float *A, size_t ars, size_t aks,
                          const float *B, int ldb, int nb, float *C, int ldc, int n, int add) {
    S(sv) acc[SMALL_MR][SNV];
    UNROLL
    for (int i = 0; i < MT; i++)
        UNROLL
        for (int v = 0; v < NT; v++) acc[i][v] = (S(sv)){0};
    int last = nb - (NT - 1) * SV; /* lanes of the last vector of a row */
    for (int k = 0; k < K; k++) {
        const float *brow = B + (size_t)k * ldb;
        S(sv) b[SNV];
        UNROLL
        for (int v = 0; v < NT; v++)
            b[v] = v < NT - 1 || last >= SV ? S(sload)(brow + v * SV) : S(load_lanes)(brow + v * SV, last);
        UNROLL
        for (int i = 0; i < MT; i++) {
            S(sv) a = SSPLAT(A[i * ars + k * aks]);
            UNROLL
            for (int v = 0; v < NT; v++) acc[i][v] = SFMA(a, b[v], acc[i][v]);
        }
    }
    UNROLL
    for (int i = 0; i < MT; i++)
        UNROLL
        for (int v = 0; v < NT; v++) {
            int m = n - v * SV;
            if (m > 0) S(store_lanes)(C + (size_t)i * ldc + v * SV, acc[i][v], m < SV ? m : SV, add);
        }
}

/* One function per tile shape (MT rows x NT vectors), in a table. */
#define SMALL_TILE(MT, NT)                                                                          \
    static void S(small_##MT##_##NT)(int K, const float *A, size_t ars, size_t aks, const float *B, \
                                     int ldb, int nb, float *C, int ldc, int n, int add) {          \
        S(small_tile)(MT, NT, K, A, ars, aks, B, ldb, nb, C, ldc, n, add);                          \
    }
#if SNV == 4
#define SMALL_ROW(MT) SMALL_TILE(MT, 1) SMALL_TILE(MT, 2) SMALL_TILE(MT, 3) SMALL_TILE(MT, 4)
#define SMALL_REF(MT) {S(small_##MT##_1), S(small_##MT##_2), S(small_##MT##_3), S(small_##MT##_4)},
#else
#define SMALL_ROW(MT) SMALL_TILE(MT, 1) SMALL_TILE(MT, 2)
#define SMALL_REF(MT) {S(small_##MT##_1), S(small_##MT##_2)},
#endif
SMALL_ROW(1) SMALL_ROW(2) SMALL_ROW(3) SMALL_ROW(4) SMALL_ROW(5) SMALL_ROW(6)
static const small_tile_fn S(small_fns)[SMALL_MR][SNV] = {
    SMALL_REF(1) SMALL_REF(2) SMALL_REF(3) SMALL_REF(4) SMALL_REF(5) SMALL_REF(6)};
#undef SMALL_TILE
#undef SMALL_ROW
#undef SMALL_REF

/* Columns [j0, j1) of C (j0 a multiple of SV) for rows [i0, i1). B is read in place
 * when it is not transposed and its rows can be read in whole or masked vectors;
 * otherwise op(B)'s columns are first packed into Bp (K x ldp, ldp = the columns
 * rounded up to whole vectors, zeros past N). add: C += the product, else C = it. */
static void S(gemm_small)(int transA, int transB, int i0, int i1, int j0, int j1, int K,
                          const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                          int add, float *Bp) {
    int nj = j1 - j0;
    const float *Bsrc;
    int ldp, direct = !transB && (SMASK || nj % SV == 0);
    if (direct) {
        Bsrc = B + j0;
        ldp = ldb;
    } else {
        ldp = (nj + SV - 1) / SV * SV;
        for (int k = 0; k < K; k++) {
            float *dst = Bp + (size_t)k * ldp;
            S(sstore)(dst + ldp - SV, (S(sv)){0}); /* the padding; the values overwrite the rest */
            if (!transB) memcpy(dst, B + (size_t)k * ldb + j0, sizeof(float) * nj);
        }
        if (transB) transpose(B + (size_t)j0 * ldb, ldb, nj, K, Bp, ldp, SMASK != 0);
        Bsrc = Bp;
    }
    size_t ars = transA ? 1 : (size_t)lda, aks = transA ? (size_t)lda : 1;
    int nvec = (nj + SV - 1) / SV;
    for (int jv = 0; jv < nvec * SV; jv += SNV * SV) {
        int nt = nvec - jv / SV < SNV ? nvec - jv / SV : SNV;
        int nb = direct ? nj - jv : nt * SV; /* columns that may be read */
        for (int i = i0; i < i1; i += SMALL_MR) {
            int mt = i1 - i < SMALL_MR ? i1 - i : SMALL_MR;
            S(small_fns)[mt - 1][nt - 1](K, A + i * ars, ars, aks, Bsrc + jv, ldp, nb,
                                         C + (size_t)i * ldc + j0 + jv, ldc, nj - jv, add);
        }
    }
}

#undef S
#undef SN
#undef SN_
