// Kernel sets of the network runtime: AVX2+FMA and SSE2 versions built side by side with GCC target attributes
// (no -march flag needed), a portable scalar set elsewhere, and the run-time choice between them.
//
// Layout contract (see PackedMatrix): panel p holds rows 8p..8p+7; inside it, column chunk c holds for each of
// the 8 rows the 8 floats of columns 8c..8c+7, so a panel is read as one contiguous stream.
#include "idaw/nn/kernels.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define IDAW_NN_X86 1
#else
#define IDAW_NN_X86 0
#endif

namespace idaw::nn {
namespace {

// exp: Cephes expf range reduction and polynomial (relative error about 1e-7 on [-88, 88]).
constexpr float kExpHi = 88.3762626647949f;
constexpr float kExpLo = -88.3762626647949f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f;
constexpr float kLn2Lo = -2.12194440e-4f;
constexpr float kExpP0 = 1.9875691500e-4f;
constexpr float kExpP1 = 1.3981999507e-3f;
constexpr float kExpP2 = 8.3334519073e-3f;
constexpr float kExpP3 = 4.1665795894e-2f;
constexpr float kExpP4 = 1.6666665459e-1f;
constexpr float kExpP5 = 5.0000001201e-1f;
// tanh: Cephes tanhf odd polynomial below 0.625, 1 - 2 / (exp(2|x|) + 1) above (no cancellation there).
constexpr float kTanhSmall = 0.625f;
constexpr float kTanhClamp = 10.0f;  // tanh(10) rounds to 1.0f
constexpr float kTanhP0 = -5.70498872745e-3f;
constexpr float kTanhP1 = 2.06390887954e-2f;
constexpr float kTanhP2 = -5.37397155531e-2f;
constexpr float kTanhP3 = 1.33314422036e-1f;
constexpr float kTanhP4 = -3.33332819422e-1f;

// ---------------------------------------------------------------------------------------------------------------
// Scalar versions: the reference the vector versions follow lane by lane, and the whole set off x86.

float exp_scalar(float x) noexcept {
    if (std::isnan(x)) return x;
    x = std::fmin(std::fmax(x, kExpLo), kExpHi);
    const float n = std::nearbyint(x * kLog2e);
    const float r = x - n * kLn2Hi - n * kLn2Lo;
    float p = kExpP0;
    p = p * r + kExpP1;
    p = p * r + kExpP2;
    p = p * r + kExpP3;
    p = p * r + kExpP4;
    p = p * r + kExpP5;
    const float y = p * r * r + r + 1.0f;
    return std::ldexp(y, static_cast<int>(n));
}

float tanh_scalar(float x) noexcept {
    const float ax = std::fabs(x);
    if (ax < kTanhSmall) {
        const float z = x * x;
        float p = kTanhP0;
        p = p * z + kTanhP1;
        p = p * z + kTanhP2;
        p = p * z + kTanhP3;
        p = p * z + kTanhP4;
        return p * z * x + x;
    }
    if (std::isnan(x)) return x;
    const float e = exp_scalar(2.0f * std::fmin(ax, kTanhClamp));
    return std::copysign(1.0f - 2.0f / (e + 1.0f), x);
}

[[maybe_unused]] void tanh_generic(float* v, int n) noexcept {
    for (int i = 0; i < n; ++i) v[i] = tanh_scalar(v[i]);
}

[[maybe_unused]] void sigmoid_generic(float* v, int n) noexcept {
    for (int i = 0; i < n; ++i) v[i] = 1.0f / (1.0f + exp_scalar(-v[i]));
}

[[maybe_unused]] void exp_generic(float* v, int n) noexcept {
    for (int i = 0; i < n; ++i) v[i] = exp_scalar(v[i]);
}

[[maybe_unused]] void matvec_generic(const float* w, const float* x, const float* bias, float* y, int panels,
                                     int chunks) noexcept {
    for (int p = 0; p < panels; ++p) {
        float acc[kPanelRows][kChunk] = {};
        const float* wp = w + static_cast<long>(p) * chunks * kPanelRows * kChunk;
        for (int c = 0; c < chunks; ++c)
            for (int r = 0; r < kPanelRows; ++r)
                for (int l = 0; l < kChunk; ++l) acc[r][l] += wp[(c * kPanelRows + r) * kChunk + l] * x[c * kChunk + l];
        for (int r = 0; r < kPanelRows; ++r) {
            float s = bias ? bias[p * kPanelRows + r] : 0.0f;
            for (int l = 0; l < kChunk; ++l) s += acc[r][l];
            y[p * kPanelRows + r] = s;
        }
    }
}

#if IDAW_NN_X86

/// Applies `vec` to whole groups of `width` floats and to the tail through a zero-padded copy.
template <int width, typename Vec>
inline void for_each_group(float* v, int n, Vec&& vec) noexcept {
    int i = 0;
    for (; i + width <= n; i += width) vec(v + i);
    if (i < n) {
        alignas(64) float tail[width] = {};
        std::memcpy(tail, v + i, static_cast<std::size_t>(n - i) * sizeof(float));
        vec(tail);
        std::memcpy(v + i, tail, static_cast<std::size_t>(n - i) * sizeof(float));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// SSE2: the x86-64 baseline.

inline __m128 exp_sse2(__m128 x) noexcept {
    // max/min with the constant first return x when it is NaN, so NaN propagates.
    x = _mm_min_ps(_mm_set1_ps(kExpHi), _mm_max_ps(_mm_set1_ps(kExpLo), x));
    const __m128i ni = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(kLog2e)));  // round to nearest
    const __m128 n = _mm_cvtepi32_ps(ni);
    __m128 r = _mm_sub_ps(x, _mm_mul_ps(n, _mm_set1_ps(kLn2Hi)));
    r = _mm_sub_ps(r, _mm_mul_ps(n, _mm_set1_ps(kLn2Lo)));
    __m128 p = _mm_set1_ps(kExpP0);
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kExpP1));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kExpP2));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kExpP3));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kExpP4));
    p = _mm_add_ps(_mm_mul_ps(p, r), _mm_set1_ps(kExpP5));
    const __m128 y = _mm_add_ps(_mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, r), r), r), _mm_set1_ps(1.0f));
    // 2^n through the exponent field; n is in [-127, 127], and n = -127 gives 0 (the true value is subnormal).
    const __m128i bits = _mm_slli_epi32(_mm_add_epi32(ni, _mm_set1_epi32(127)), 23);
    return _mm_mul_ps(y, _mm_castsi128_ps(bits));
}

inline __m128 tanh_sse2(__m128 x) noexcept {
    const __m128 sign_mask = _mm_set1_ps(-0.0f);
    const __m128 ax = _mm_andnot_ps(sign_mask, x);
    const __m128 z = _mm_mul_ps(x, x);
    __m128 p = _mm_set1_ps(kTanhP0);
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(kTanhP1));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(kTanhP2));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(kTanhP3));
    p = _mm_add_ps(_mm_mul_ps(p, z), _mm_set1_ps(kTanhP4));
    const __m128 small = _mm_add_ps(_mm_mul_ps(_mm_mul_ps(p, z), x), x);
    const __m128 e = exp_sse2(_mm_mul_ps(_mm_set1_ps(2.0f), _mm_min_ps(_mm_set1_ps(kTanhClamp), ax)));
    const __m128 t = _mm_sub_ps(_mm_set1_ps(1.0f), _mm_div_ps(_mm_set1_ps(2.0f), _mm_add_ps(e, _mm_set1_ps(1.0f))));
    const __m128 large = _mm_or_ps(t, _mm_and_ps(sign_mask, x));
    const __m128 is_small = _mm_cmplt_ps(ax, _mm_set1_ps(kTanhSmall));
    return _mm_or_ps(_mm_and_ps(is_small, small), _mm_andnot_ps(is_small, large));
}

void tanh_sse2_n(float* v, int n) noexcept {
    for_each_group<4>(v, n, [](float* g) { _mm_storeu_ps(g, tanh_sse2(_mm_loadu_ps(g))); });
}

void sigmoid_sse2_n(float* v, int n) noexcept {
    for_each_group<4>(v, n, [](float* g) {
        const __m128 e = exp_sse2(_mm_sub_ps(_mm_setzero_ps(), _mm_loadu_ps(g)));
        _mm_storeu_ps(g, _mm_div_ps(_mm_set1_ps(1.0f), _mm_add_ps(_mm_set1_ps(1.0f), e)));
    });
}

void exp_sse2_n(float* v, int n) noexcept {
    for_each_group<4>(v, n, [](float* g) { _mm_storeu_ps(g, exp_sse2(_mm_loadu_ps(g))); });
}

/// Sum of each of four vectors, as one vector.
inline __m128 sum4_sse2(__m128 a, __m128 b, __m128 c, __m128 d) noexcept {
    _MM_TRANSPOSE4_PS(a, b, c, d);
    return _mm_add_ps(_mm_add_ps(a, b), _mm_add_ps(c, d));
}

void matvec_sse2(const float* w, const float* x, const float* bias, float* y, int panels, int chunks) noexcept {
    const long panel_floats = static_cast<long>(chunks) * kPanelRows * kChunk;
    for (int p = 0; p < panels; ++p) {
        const float* wp = w + p * panel_floats;
        // Four rows at a time: eight accumulators plus two x registers fit the sixteen XMM registers.
        for (int half = 0; half < 2; ++half) {
            __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            const float* wc = wp + half * 4 * kChunk;
            for (int c = 0; c < chunks; ++c, wc += kPanelRows * kChunk) {
                const __m128 x0 = _mm_loadu_ps(x + c * kChunk);
                const __m128 x1 = _mm_loadu_ps(x + c * kChunk + 4);
                a0 = _mm_add_ps(a0, _mm_mul_ps(_mm_load_ps(wc + 0), x0));
                b0 = _mm_add_ps(b0, _mm_mul_ps(_mm_load_ps(wc + 4), x1));
                a1 = _mm_add_ps(a1, _mm_mul_ps(_mm_load_ps(wc + 8), x0));
                b1 = _mm_add_ps(b1, _mm_mul_ps(_mm_load_ps(wc + 12), x1));
                a2 = _mm_add_ps(a2, _mm_mul_ps(_mm_load_ps(wc + 16), x0));
                b2 = _mm_add_ps(b2, _mm_mul_ps(_mm_load_ps(wc + 20), x1));
                a3 = _mm_add_ps(a3, _mm_mul_ps(_mm_load_ps(wc + 24), x0));
                b3 = _mm_add_ps(b3, _mm_mul_ps(_mm_load_ps(wc + 28), x1));
            }
            __m128 s = sum4_sse2(_mm_add_ps(a0, b0), _mm_add_ps(a1, b1), _mm_add_ps(a2, b2), _mm_add_ps(a3, b3));
            float* out = y + p * kPanelRows + half * 4;
            if (bias) s = _mm_add_ps(s, _mm_loadu_ps(bias + p * kPanelRows + half * 4));
            _mm_storeu_ps(out, s);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// AVX2 + FMA: selected at run time, so these functions carry their own target attribute.

#define IDAW_AVX2 __attribute__((target("avx2,fma")))

IDAW_AVX2 inline __m256 exp_avx2(__m256 x) noexcept {
    x = _mm256_min_ps(_mm256_set1_ps(kExpHi), _mm256_max_ps(_mm256_set1_ps(kExpLo), x));
    const __m256i ni = _mm256_cvtps_epi32(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)));
    const __m256 n = _mm256_cvtepi32_ps(ni);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kExpP0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP5));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), _mm256_set1_ps(1.0f));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(ni, _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(bits));
}

IDAW_AVX2 inline __m256 tanh_avx2(__m256 x) noexcept {
    const __m256 sign_mask = _mm256_set1_ps(-0.0f);
    const __m256 ax = _mm256_andnot_ps(sign_mask, x);
    const __m256 z = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(kTanhP0);
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(kTanhP1));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(kTanhP2));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(kTanhP3));
    p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(kTanhP4));
    const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
    const __m256 e = exp_avx2(_mm256_mul_ps(_mm256_set1_ps(2.0f), _mm256_min_ps(_mm256_set1_ps(kTanhClamp), ax)));
    const __m256 t = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                   _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    const __m256 large = _mm256_or_ps(t, _mm256_and_ps(sign_mask, x));
    return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(kTanhSmall), _CMP_LT_OQ));
}

IDAW_AVX2 void tanh_avx2_n(float* v, int n) noexcept {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, tanh_avx2(_mm256_loadu_ps(v + i)));
    if (i < n) tanh_sse2_n(v + i, n - i);
}

IDAW_AVX2 void sigmoid_avx2_n(float* v, int n) noexcept {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_loadu_ps(v + i)));
        _mm256_storeu_ps(v + i, _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e)));
    }
    if (i < n) sigmoid_sse2_n(v + i, n - i);
}

IDAW_AVX2 void exp_avx2_n(float* v, int n) noexcept {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(v + i, exp_avx2(_mm256_loadu_ps(v + i)));
    if (i < n) exp_sse2_n(v + i, n - i);
}

/// Sums of each of eight vectors, as one vector (element r = sum of a_r).
IDAW_AVX2 inline __m256 sum8_avx2(__m256 a0, __m256 a1, __m256 a2, __m256 a3, __m256 a4, __m256 a5, __m256 a6,
                                  __m256 a7) noexcept {
    const __m256 t0 = _mm256_hadd_ps(a0, a1);
    const __m256 t1 = _mm256_hadd_ps(a2, a3);
    const __m256 t2 = _mm256_hadd_ps(a4, a5);
    const __m256 t3 = _mm256_hadd_ps(a6, a7);
    const __m256 u0 = _mm256_hadd_ps(t0, t1);  // lanes: s0 s1 s2 s3 (low halves) | s0 s1 s2 s3 (high halves)
    const __m256 u1 = _mm256_hadd_ps(t2, t3);
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

/// Floats (2 KB) ahead of the current chunk that the matrix stream prefetches into L1. Measured on the dev machine:
/// other distances and L2 hints change nothing, warm or cold; the product is bound by cache/DRAM bandwidth.
constexpr int kPrefetchFloats = 512;

IDAW_AVX2 void matvec_avx2(const float* w, const float* x, const float* bias, float* y, int panels,
                           int chunks) noexcept {
    const float* wc = w;
    for (int p = 0; p < panels; ++p) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
        for (int c = 0; c < chunks; ++c, wc += kPanelRows * kChunk) {
            _mm_prefetch(reinterpret_cast<const char*>(wc + kPrefetchFloats), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(wc + kPrefetchFloats + 16), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(wc + kPrefetchFloats + 32), _MM_HINT_T0);
            _mm_prefetch(reinterpret_cast<const char*>(wc + kPrefetchFloats + 48), _MM_HINT_T0);
            const __m256 xv = _mm256_loadu_ps(x + c * kChunk);
            a0 = _mm256_fmadd_ps(_mm256_load_ps(wc + 0), xv, a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(wc + 8), xv, a1);
            a2 = _mm256_fmadd_ps(_mm256_load_ps(wc + 16), xv, a2);
            a3 = _mm256_fmadd_ps(_mm256_load_ps(wc + 24), xv, a3);
            a4 = _mm256_fmadd_ps(_mm256_load_ps(wc + 32), xv, a4);
            a5 = _mm256_fmadd_ps(_mm256_load_ps(wc + 40), xv, a5);
            a6 = _mm256_fmadd_ps(_mm256_load_ps(wc + 48), xv, a6);
            a7 = _mm256_fmadd_ps(_mm256_load_ps(wc + 56), xv, a7);
        }
        __m256 s = sum8_avx2(a0, a1, a2, a3, a4, a5, a6, a7);
        if (bias) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + p * kPanelRows));
        _mm256_storeu_ps(y + p * kPanelRows, s);
    }
}

#undef IDAW_AVX2

bool cpu_has_avx2_fma() noexcept {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

constexpr Kernels kSse2{"sse2", Isa::Sse2, &matvec_sse2, &tanh_sse2_n, &sigmoid_sse2_n, &exp_sse2_n};
constexpr Kernels kAvx2{"avx2+fma", Isa::Avx2, &matvec_avx2, &tanh_avx2_n, &sigmoid_avx2_n, &exp_avx2_n};

#else  // not x86: the portable scalar set stands in for the baseline.

bool cpu_has_avx2_fma() noexcept { return false; }

constexpr Kernels kSse2{"scalar", Isa::Sse2, &matvec_generic, &tanh_generic, &sigmoid_generic, &exp_generic};
constexpr Kernels kAvx2 = kSse2;

#endif

const Kernels* pick_best() noexcept {
    const char* forced = std::getenv("IDAW_NN_ISA");
    if (forced && std::strcmp(forced, "sse2") == 0) return &kSse2;
    return cpu_has_avx2_fma() ? &kAvx2 : &kSse2;
}

}  // namespace

const Kernels& best_kernels() noexcept {
    static const Kernels* const best = pick_best();
    return *best;
}

const Kernels* kernels_for(Isa isa) noexcept {
    switch (isa) {
        case Isa::Sse2:
            return &kSse2;
        case Isa::Avx2:
            return cpu_has_avx2_fma() ? &kAvx2 : nullptr;
        case Isa::Auto:
            break;
    }
    return &best_kernels();
}

}  // namespace idaw::nn
